#!/usr/bin/env bash
# Review R5: an ISR expansion committed in etcd before the leader applied it. The leader
# went on acknowledging acks=all with the old ISR {B,C} while etcd said {B,C,A}; the
# controller could then elect A, which lacked those records, and C truncated to it:
# acknowledged records lost. The rule (Kafka's maximal ISR, KIP-497): from the moment a
# leader asks to add a replica, its high watermark counts that replica, until a newer
# state is applied. The window is made deterministic by a test fault switch:
# test.fault.isr.echo.ignore.ms keeps the leader from applying a newer state of its own
# epoch for 20 s after it asked for an ISR change (as a late watch, or a leader cut off
# etcd right after its CAS, would).
#   (1) 3 brokers, min.insync.replicas 2, topic expand RF 3 with replicas [A,B,C];
#       100 records; A stops (SIGTERM): B leads with ISR {B,C};
#   (2) A starts again and catches up; B's expansion to {B,C,A} commits in etcd, B
#       does not apply it; A is paused (SIGSTOP);
#   (3) an acks=all produce to B is not acknowledged: A, in B's maximal ISR, does not
#       fetch (min.insync.replicas counts the applied ISR {B,C}: no NOT_ENOUGH_REPLICAS);
#   (4) B is killed, A resumes; a new leader (A or C) serves every acknowledged record.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat etcdctl

topic=expand
export TALLY_TEST_FAULTS=1
state() { ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get "/tally/partitions/$topic/0" \
	--print-value-only 2>/dev/null; }
isr_count() { state | sed -n 's/.* isr=\([0-9,]*\).*/\1/p' | awk -F, '{ print NF }'; }

tl_cluster_start 3 --override min.insync.replicas=2 \
	--override test.fault.isr.echo.ignore.ms=20000
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" \
	>/dev/null || tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3
seq 1 100 | kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -X acks=all 2>"$TL_TMP/kcat.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/kcat.err")"
replicas=$(ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get "/tally/topics/$topic" \
	--print-value-only | head -1 | sed 's/.*replicas=\([0-9,]*\).*/\1/')
IFS=, read -r a b c <<<"$replicas"
[ -n "$c" ] || tl_fail "cannot read the replicas of $topic from etcd: '$replicas'"

tl_cbroker_stop "$a"
deadline=$((SECONDS + 20))
until [ "$(tl_cluster_leader "$topic" 0)" = "$b" ] && [ "$(isr_count)" = 2 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "after stopping $a, no leader $b with ISR 2: $(state)"
	sleep 0.1
done
tl_log "(1) replicas [$a,$b,$c]; broker $a stopped: $(state)"

tl_cbroker_start "$a"
deadline=$((SECONDS + 20))
until [ "$(isr_count)" = 3 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "broker $a did not rejoin the ISR: $(state)"
	sleep 0.05
done
tl_cbroker_sigstop "$a"
tl_log "(2) the expansion committed: $(state); broker $b does not apply it yet, $a paused"

# One acks=all produce straight to B, no retries past 3 s.
seq 1001 1010 | kcat -P -b "127.0.0.1:${TL_CPORT[$b]}" -t "$topic" -p 0 -X acks=all \
	-X message.timeout.ms=3000 -X enable.idempotence=false >"$TL_TMP/kcat-window.out" 2>&1 ||
	true
failed=$(grep -ci 'delivery failed' "$TL_TMP/kcat-window.out" || true)
if [ "$failed" -lt 10 ]; then
	cat "$TL_TMP/kcat-window.out" >&2
	tl_fail "(3) broker $b acknowledged acks=all records without broker $a, which etcd's ISR" \
		"holds and an election may pick ($failed of 10 failed)"
fi
grep -qi 'not enough replicas' "$TL_TMP/kcat-window.out" &&
	tl_fail "(3) NOT_ENOUGH_REPLICAS: min.insync.replicas must count the applied ISR {$b,$c}"
tl_log "(3) acks=all to broker $b waited for broker $a (not acknowledged within 3 s)"

tl_cbroker_kill9 "$b"
tl_cbroker_sigcont "$a"
deadline=$((SECONDS + 30))
while :; do
	leader=$(tl_cluster_leader "$topic" 0)
	[ -n "$leader" ] && [ "$leader" != "$b" ] && [ "$leader" != -1 ] && break
	[ $SECONDS -lt $deadline ] || tl_fail "no new leader after broker $b died: $(state)"
	sleep 0.2
done
others=127.0.0.1:${TL_CPORT[$a]},127.0.0.1:${TL_CPORT[$c]}
deadline=$((SECONDS + 30))
while :; do
	"$TL_TALLY" tail "$topic" -o beginning -e -b "$others" >"$TL_TMP/read.out" 2>/dev/null || true
	missing=$(seq 1 100 | grep -cvxFf "$TL_TMP/read.out" || true)
	[ "$missing" = 0 ] && break
	[ $SECONDS -lt $deadline ] ||
		tl_fail "(4) $missing acknowledged records lost after broker $leader took over: $(state)"
	sleep 0.5
done
tl_log "(4) broker $leader leads ($(state)); all 100 acknowledged records are there"
tl_log "ok"
