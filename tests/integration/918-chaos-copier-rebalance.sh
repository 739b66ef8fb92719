#!/usr/bin/env bash
# The chaos run's transactional copier (rdk_chaos copy) under rebalances, on one broker
# without faults: while it copies, a second member joins its group and leaves again,
# a few times, so librdkafka revokes the copier's partitions in the middle of its
# transactions. A transaction during which its partitions were revoked must abort
# (rdk_revoke.h): committed without the positions, its copies stood alone and the next
# assignment copied the same records again. tests/chaos/check.py's copy-once must find
# each input record below the committed offsets exactly once in the read_committed
# output. (The copier lacked the callback: chaos run 913 of stop 37 found 500 records
# doubled back to back; this test is what proves it is installed.)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd python3
tl_require_prog rdk_chaos
tl_require_prog rdk_group
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
secs=${TL_COPIER_SECS:-16}
tl_start_broker --override num.partitions=3 --override group.initial.rebalance.delay.ms=0
hist=$TL_TMP/hist
mkdir -p "$hist"
"$TL_PROGS/rdk_chaos" produce "$TL_BROKER" input producer-1 "$((secs + 2))" 3000 \
	"$hist/producer.jsonl" 2>"$TL_TMP/producer.err" &
producer=$!
sleep 1
"$TL_PROGS/rdk_chaos" copy "$TL_BROKER" input output copier-1 "$secs" "$hist/copier.jsonl" \
	2>"$TL_TMP/copier.err" &
copier=$!
sleep 2
# A member that reads nothing for itself: it joins, takes partitions, commits nothing.
for i in 1 2 3 4; do
	timeout 2 "$TL_PROGS/rdk_group" consume -b "$TL_BROKER" -g copier-1 -t input -a \
		>/dev/null 2>&1 || true
	sleep 1.5
done
wait "$copier" || tl_fail "the copier failed: $(tail -5 "$TL_TMP/copier.err")"
wait "$producer" || tl_fail "the producer failed: $(tail -5 "$TL_TMP/producer.err")"
"$TL_PROGS/rdk_chaos" read "$TL_BROKER" output "$hist/copy-reader.jsonl" read_committed topic \
	2>"$TL_TMP/reader.err" || tl_fail "the output reader failed"
"$TL_PROGS/rdk_chaos" read "$TL_BROKER" input "$hist/reader.jsonl" read_committed \
	2>>"$TL_TMP/reader.err" || tl_fail "the input reader failed"
"$py" "$TL_ROOT/tests/chaos/check.py" "$hist"/*.jsonl >"$TL_TMP/check.out" || {
	cat "$TL_TMP/check.out" >&2
	tl_fail "check.py: $(grep -E '^(FAIL|INVALID)' "$TL_TMP/check.out" | head -3 | tr '\n' ' ')"
}
grep -q "partitions revoked during the transaction" "$TL_TMP/copier.err" ||
	tl_fail "no transaction saw a revocation: nothing was tested"
tl_log "$(tail -1 "$TL_TMP/check.out"); $(grep -c "partitions revoked during" "$TL_TMP/copier.err") transactions aborted for a revocation"
