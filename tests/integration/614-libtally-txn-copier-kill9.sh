#!/usr/bin/env bash
# The libtally transactional copier (611) with tallyd kill -9'd and restarted twice
# mid-run: the producer finds the coordinator again and retries, the output is still
# each input exactly once and no transaction is left hanging.
export TL_TXN_KILLS=2
exec "$(dirname "${BASH_SOURCE[0]}")/611-libtally-txn-copier.sh"
