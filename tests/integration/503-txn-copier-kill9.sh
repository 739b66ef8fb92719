#!/usr/bin/env bash
# The transactional copier (502) with tallyd kill -9'd and restarted twice mid-run:
# the output is still exactly once and no transaction is left hanging.
# tally-test: slow
export TL_TXN_KILLS=2
exec "$(dirname "${BASH_SOURCE[0]}")/502-txn-copier.sh"
