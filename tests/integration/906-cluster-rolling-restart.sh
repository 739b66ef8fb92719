#!/usr/bin/env bash
# Rolling restart under idempotent produce: while the librdkafka idempotent producer
# writes to a 3-partition, replication-factor-3 topic (min.insync.replicas 2), each
# broker in turn is stopped with SIGTERM (controlled shutdown: it hands its
# leaderships to another ISR member first) and started again, waiting for the ISR to
# be whole before the next. Checks: every broker exits 0 on SIGTERM; every record is
# acknowledged and stored exactly once, in order per partition; the ISR is whole at
# the end and the replicas hold the same batches. Meanwhile the transactional copier
# of 502 (tests/progs/rdk_txn_copier) copies another topic, its transaction and group
# coordinators moving with each restart: its read_committed output holds every input
# exactly once. Under make test-long: 2,000,000 records, a 200,000-record copy and
# three rounds.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_prog rdk_idempotent
tl_require_prog rdk_txn_copier
tl_require_cmd kcat

count=300000
rate=30000
rounds=1
copy=20000
if [ "$TL_LONG" = 1 ]; then
	count=2000000
	rate=40000
	rounds=3
	copy=200000
fi
topic=rolling

tl_cluster_start 3 --override min.insync.replicas=2
"$TL_TALLY" topic create "$topic" --partitions 3 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 3 3
for t in copy-in copy-out; do
	"$TL_TALLY" topic create "$t" --partitions 3 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
		tl_fail "topic create $t failed"
	tl_cluster_wait_isr "$t" 3 3
done
seq -f 'in-%07g' 1 "$copy" | kcat -P -q -b "$TL_BOOTSTRAP" -t copy-in -K: -X acks=all ||
	tl_fail "could not produce the copier's input"
"$TL_PROGS/rdk_txn_copier" copy "$TL_BOOTSTRAP" copy-in copy-out copier rolling-copier 4 600 \
	2>"$TL_TMP/copier.log" &
copier=$!

"$TL_PROGS/rdk_idempotent" "$TL_BOOTSTRAP" "$topic" "$count" -r "$rate" -P "$TL_TMP/progress" \
	-T 120000 >"$TL_TMP/producer.out" 2>&1 &
producer=$!
sleep 1
for round in $(seq 1 "$rounds"); do
	for b in 1 2 3; do
		tl_pid_alive "$producer" || break 2
		tl_log "round $round: restarting broker $b at $(cat "$TL_TMP/progress" 2>/dev/null || echo 0) acknowledged"
		tl_cbroker_stop "$b"
		tl_cgrep "$b" 'cluster: deregistered' || tl_fail "broker $b did not deregister on SIGTERM"
		tl_cbroker_start "$b"
		tl_cluster_wait_isr "$topic" 3 3 60
	done
done
rc=0
wait "$producer" || rc=$?
cat "$TL_TMP/producer.out" >&2
[ $rc -eq 0 ] || tl_fail "rdk_idempotent failed across rolling restarts (exit $rc)"
grep -q 'ok: ' "$TL_TMP/producer.out" || tl_fail "rdk_idempotent did not report success"
grep -h 'controlled shutdown' "$TL_TMP"/tallyd-*.log >&2 || true
wait "$copier" || tl_fail "the copier did not finish: $(tail -5 "$TL_TMP/copier.log")"
kcat -C -q -b "$TL_BOOTSTRAP" -t copy-out -e -X isolation.level=read_committed -f '%s\n' |
	sort >"$TL_TMP/copied.txt"
seq -f 'in-%07g' 1 "$copy" | diff -q - "$TL_TMP/copied.txt" >/dev/null ||
	tl_fail "the copy is not its input exactly once: $(wc -l <"$TL_TMP/copied.txt") lines, $(uniq -d "$TL_TMP/copied.txt" | wc -l) duplicated"
tl_log "copier: $copy records copied exactly once across the restarts"
tl_cluster_wait_isr "$topic" 3 3 60
for b in 1 2 3; do tl_cbroker_stop "$b"; done
for p in 0 1 2; do
	for b in 1 2 3; do
		"$TL_TALLY" log dump "$TL_TMP/b$b/$topic-$p" | grep -Eo 'baseOffset [0-9]+|crc 0x[0-9a-f]+' >"$TL_TMP/d$b"
	done
	cmp -s "$TL_TMP/d1" "$TL_TMP/d2" && cmp -s "$TL_TMP/d1" "$TL_TMP/d3" ||
		tl_fail "partition $p: the replicas' logs differ after the rolling restart"
done
tl_log "ok"
