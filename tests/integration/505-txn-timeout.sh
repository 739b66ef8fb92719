#!/usr/bin/env bash
# A transaction its producer abandons (the process exits mid-transaction) is aborted by
# the coordinator after transaction.timeout.ms, with an epoch bump: the LSO moves past
# it, read_committed readers see what follows and never its records, and a producer
# with the old epoch is fenced. The epoch is checked on a second transaction opened
# on the wire (rawproto txn-open, whose producer id and epoch are known): after its
# timeout abort, Produce and EndTxn with the old epoch answer PRODUCER_FENCED or
# INVALID_PRODUCER_EPOCH, and a new InitProducerId gets a bumped epoch (issue #23).
# While that one is open, a raw read_committed Fetch must stop at the LSO: kcat cannot
# show a broker serving past it, as librdkafka drops such records itself.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_txn_copier rawproto
tl_start_broker
"$TL_PROGS/rdk_txn_copier" abandon "$TL_BROKER" hang txn-hang 2>"$TL_TMP/abandon.log" ||
	tl_fail "could not open the transaction: $(tail -3 "$TL_TMP/abandon.log")"
"$TL_PROGS/rawproto" "$TL_BROKER" txn-open hang-raw txn-raw >"$TL_TMP/raw-open.out" 2>&1 ||
	tl_fail "could not open the raw transaction: $(tail -3 "$TL_TMP/raw-open.out")"
read -r raw_pid raw_epoch <"$TL_TMP/raw-open.out"
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

# The raw transaction (same 3 s timeout, opened just after) is aborted too.
for _ in $(seq 100); do
	tl_grep_log 'txn: aborted id=txn-raw' && break
	sleep 0.1
done
tl_grep_log 'txn: aborted id=txn-raw' || tl_fail "the coordinator did not abort txn-raw"
"$TL_PROGS/rawproto" "$TL_BROKER" txn-fenced hang-raw txn-raw "$raw_pid" "$raw_epoch" \
	>"$TL_TMP/raw-fenced.out" 2>&1 || tl_fail "old epoch not fenced: $(cat "$TL_TMP/raw-fenced.out")"
cat "$TL_TMP/raw-fenced.out" >&2
tl_stop_broker
