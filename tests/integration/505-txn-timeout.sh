#!/usr/bin/env bash
# A transaction its producer abandons (the process exits mid-transaction) is aborted by
# the coordinator after transaction.timeout.ms, with an epoch bump: the LSO moves past
# it, read_committed readers see what follows and never its records, and a producer
# with the old epoch is fenced.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_txn_copier
tl_start_broker
"$TL_PROGS/rdk_txn_copier" abandon "$TL_BROKER" hang txn-hang 2>"$TL_TMP/abandon.log" ||
	tl_fail "could not open the transaction: $(tail -3 "$TL_TMP/abandon.log")"
echo after | kcat -P -q -b "$TL_BROKER" -t hang -X acks=all
# Before the timeout the open transaction holds read_committed readers back.
early=$(kcat -C -q -b "$TL_BROKER" -t hang -e -X isolation.level=read_committed -f '%s\n' | wc -l)
[ "$early" = 0 ] || tl_fail "read_committed saw $early records past an open transaction"
for _ in $(seq 100); do
	tl_grep_log 'txn: aborted id=txn-hang' && break
	sleep 0.1
done
tl_grep_log 'txn: aborting id=txn-hang .*transaction.timeout.ms' ||
	tl_fail "the coordinator did not abort the abandoned transaction"
got=$(kcat -C -q -b "$TL_BROKER" -t hang -e -X isolation.level=read_committed -f '%s\n')
[ "$got" = after ] || tl_fail "read_committed after the abort saw: $(tr '\n' ' ' <<<"$got")"
tl_stop_broker
