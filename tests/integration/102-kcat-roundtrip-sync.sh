#!/usr/bin/env bash
# 101-kcat-roundtrip.sh on the other disk engine: TALLY_IO_ENGINE=sync makes
# log.io.engine=auto use pwritev+fdatasync instead of io_uring.
export TALLY_IO_ENGINE=sync
. "$(dirname "${BASH_SOURCE[0]}")/101-kcat-roundtrip.sh"
