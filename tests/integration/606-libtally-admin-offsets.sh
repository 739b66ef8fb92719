#!/usr/bin/env bash
# libtally admin and start offsets (tests/progs/tally_interop.c -m admin|offsets):
# create (twice: TOPIC_ALREADY_EXISTS), describe, list (sorted), delete (twice:
# UNKNOWN_TOPIC_OR_PARTITION) and describe again; then 1,000 records with timestamps
# 10 ms apart and a consumer starting at BEGINNING, END, an offset, and a timestamp,
# which must start at the first record at or after it (Kafka's ListOffsets semantics).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog tally_interop

tl_start_broker
timeout 60 "$TL_PROGS/tally_interop" -b "$TL_BROKER" -t libtally-admin -m admin -p 3 >&2 ||
	tl_fail "tl_admin create/describe/list/delete misbehaved"
timeout 60 "$TL_PROGS/tally_interop" -b "$TL_BROKER" -t libtally-offsets -m offsets -n 1000 -p 1 >&2 ||
	tl_fail "a consumer start offset was wrong"
tl_stop_broker
tl_log "ok"
