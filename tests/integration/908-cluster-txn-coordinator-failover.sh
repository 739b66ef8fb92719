#!/usr/bin/env bash
# Transaction coordinator failover: the transactional copier of 502 (read_committed
# consumer, transactional producer, send_offsets_to_transaction, every 4th transaction
# aborted on purpose) runs against 3 brokers; __transaction_state and
# __consumer_offsets are replicated (factor 3), and the transaction coordinator is the
# leader of the transactional id's partition. Mid-run that broker is killed with
# kill -9 (it may also lead data partitions and the group): a new leader of the
# partition loads the transaction state from its replica, finishes or aborts what was
# in flight (markers to partitions on other brokers go as WriteTxnMarkers), and the
# copier carries on there. The killed broker comes back.
# Checks: the copier finishes (the group's offsets reach the input's end); a
# read_committed reader of the output sees each input exactly once; the aborted copies
# are there for read_uncommitted; no transaction is left hanging (LSO = high watermark
# on every output partition); the new coordinator logged loading the transaction.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat python3
tl_require_prog rdk_txn_copier

count=20000
[ "$TL_LONG" = 1 ] && count=200000
txn_id=txn-copier
tstate_partitions=4
tl_cluster_start 3 --override min.insync.replicas=2 \
	--override "transaction.state.log.num.partitions=$tstate_partitions" \
	--override "offsets.topic.num.partitions=4" --override group.initial.rebalance.delay.ms=0
for t in input output; do
	"$TL_TALLY" topic create "$t" --partitions 3 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
		tl_fail "topic create $t failed"
	tl_cluster_wait_isr "$t" 3 3
done
# Markers must cross brokers for this to prove anything: the output's leaders differ.
leaders=$(for p in 0 1 2; do tl_cluster_leader output "$p"; echo; done | sort -u | grep -c .)
[ "$leaders" -ge 2 ] || tl_fail "every output partition has the same leader; markers would stay local"
seq -f 'in-%06g' 1 "$count" | kcat -P -q -b "$TL_BOOTSTRAP" -t input -K: -X acks=all ||
	tl_fail "could not produce the input"

tpart=$(python3 -c '
import sys
h = 0
for ch in sys.argv[1]:
    h = (31 * h + ord(ch)) & 0xffffffff
h = h - (1 << 32) if h >= 1 << 31 else h
print((0 if h == -(1 << 31) else abs(h)) % int(sys.argv[2]))' "$txn_id" "$tstate_partitions")

COPIER_WINDOW_MS=100 "$TL_PROGS/rdk_txn_copier" copy "$TL_BOOTSTRAP" input output copier "$txn_id" 4 240 \
	2>"$TL_TMP/copier.log" &
copier=$!
# Kill once the copier is well into the run, with transactions going on.
deadline=$(($(date +%s) + 60))
output_end()
{
	local p n sum=0
	for p in 0 1 2; do
		n=$(kcat -Q -b "$TL_BOOTSTRAP" -t "output:$p:-1" 2>/dev/null | awk '{print $NF}') || n=0
		sum=$((sum + ${n:-0}))
	done
	echo "$sum"
}
until [ "$(output_end)" -ge $((count / 5)) ]; do
	tl_pid_alive "$copier" || tl_fail "the copier exited early: $(tail -n 5 "$TL_TMP/copier.log")"
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "the copier committed nothing in 60 s: $(tail -n 5 "$TL_TMP/copier.log")"
	sleep 0.1
done
coordinator=$(tl_cluster_leader __transaction_state "$tpart")
[ -n "$coordinator" ] && [ "$coordinator" -ge 1 ] || tl_fail "no leader for __transaction_state-$tpart"
tl_cgrep "$coordinator" "txn: coordinating partition=$tpart " ||
	tl_fail "broker $coordinator did not log that it coordinates partition $tpart"
tl_log "kill -9 of the transaction coordinator, broker $coordinator (partition $tpart)"
tl_cbroker_kill9 "$coordinator"
deadline=$(($(date +%s) + 30))
while :; do
	leader=$(tl_cluster_leader __transaction_state "$tpart")
	[ -n "$leader" ] && [ "$leader" != "$coordinator" ] && [ "$leader" -ge 1 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "__transaction_state-$tpart has no new leader 30 s after the kill"
	sleep 0.2
done
tl_log "new transaction coordinator: broker $leader"
sleep 2
tl_cbroker_start "$coordinator"

wait "$copier" || tl_fail "the copier did not finish: $(tail -5 "$TL_TMP/copier.log")"
tl_log "$(grep 'copier: done' "$TL_TMP/copier.log")"
tl_cgrep "$leader" "txn: coordinating partition=$tpart transactional_ids=[1-9]" ||
	tl_fail "broker $leader did not load the transaction from its replica"

read_all() { kcat -C -q -b "$TL_BOOTSTRAP" -t output -e -X isolation.level="$1" -f '%s\n'; }
read_all read_committed | sort >"$TL_TMP/committed.txt"
dups=$(uniq -d "$TL_TMP/committed.txt" | wc -l)
[ "$dups" = 0 ] || tl_fail "read_committed output has $dups duplicated inputs, e.g. $(uniq -d "$TL_TMP/committed.txt" | head -3 | tr '\n' ' ')"
seq -f 'in-%06g' 1 "$count" | diff -q - "$TL_TMP/committed.txt" >/dev/null ||
	tl_fail "read_committed output is not the input exactly once ($(wc -l <"$TL_TMP/committed.txt") lines)"
uncommitted=$(read_all read_uncommitted | wc -l)
[ "$uncommitted" -gt "$count" ] ||
	tl_fail "read_uncommitted saw $uncommitted records; the aborted copies should be there too"
tl_log "output: $count committed, $uncommitted read_uncommitted"
for p in 0 1 2; do
	lso_end=$(kcat -Q -b "$TL_BOOTSTRAP" -t "output:$p:-1" -X isolation.level=read_committed 2>/dev/null | awk '{print $NF}') || true
	hw_end=$(kcat -Q -b "$TL_BOOTSTRAP" -t "output:$p:-1" -X isolation.level=read_uncommitted 2>/dev/null | awk '{print $NF}') || true
	[ -n "$lso_end" ] && [ "$lso_end" = "$hw_end" ] ||
		tl_fail "output partition $p: LSO $lso_end != high watermark $hw_end"
done
tl_log "ok"
