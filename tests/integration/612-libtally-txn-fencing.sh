#!/usr/bin/env bash
# Fencing with libtally (tests/progs/tally_txn_copier.c fence): a second producer with
# the same transactional.id fences the first. The first's pending delivery report and
# its commit fail with TL_ERR_PRODUCER_FENCED, and so does every later call; its open
# transaction is aborted (read_uncommitted sees "zombie", read_committed does not), and
# the new instance commits "fresh".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog tally_txn_copier
tl_start_broker
timeout 60 "$TL_PROGS/tally_txn_copier" fence "$TL_BROKER" fenced tally-fence 2>"$TL_TMP/fence.log" ||
	tl_fail "the zombie was not fenced, or the new instance failed: $(grep -E 'FAILED|copier:' "$TL_TMP/fence.log" | tail -4)"
read_all() { timeout 30 kcat -C -q -b "$TL_BROKER" -t fenced -e -X isolation.level="$1" -f '%s\n'; }
[ "$(read_all read_committed)" = fresh ] || tl_fail "read_committed saw: $(read_all read_committed | tr '\n' ' ')"
[ "$(read_all read_uncommitted | sort | tr '\n' ' ')" = "fresh zombie " ] ||
	tl_fail "read_uncommitted saw: $(read_all read_uncommitted | tr '\n' ' ')"
tl_grep_log 'txn: aborting id=tally-fence .*newer instance' || tl_fail "no abort of the fenced transaction in the log"
tl_stop_broker
