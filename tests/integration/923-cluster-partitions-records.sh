#!/usr/bin/env bash
# CreatePartitions and DeleteRecords in cluster mode (issue #20): 3 brokers with etcd.
#  (1) librdkafka's CreatePartitions takes an rf=3 topic from 2 to 4 partitions through
#      one broker: the topic's key in etcd has 4 rows of 3 replicas, the new partitions
#      get leaders and a full ISR, every broker creates their logs; a smaller count is
#      INVALID_PARTITIONS; kcat produces to the new partitions with acks=all.
#  (2) DeleteRecords before offset 40 of partition 3: refused by a follower
#      (NOT_LEADER_OR_FOLLOWER, raw request), done by the leader (librdkafka routes it)
#      and answered only once both followers moved their log start to 40 (from the
#      leader's fetch responses; the leader waits for their low watermark, as Kafka).
#  (3) The leader of partition 3 is killed right away: the new leader serves from 40, the 60
#      records after it, and partition 2 is readable.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat etcdctl
tl_require_prog rawproto rdk_admin

topic=grow
tl_cluster_start 3 --override min.insync.replicas=2
"$TL_TALLY" topic create "$topic" --partitions 2 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "tally topic create failed"
tl_cluster_wait_isr "$topic" 2 3

tl_log "(1) CreatePartitions 2 -> 4"
admin() { timeout 30 "$TL_PROGS/rdk_admin" "127.0.0.1:${TL_CPORT[1]}" "$@"; }
out=$(admin create-partitions "$topic" 4)
[ "$out" = ok ] || tl_fail "create-partitions $topic 4: $out"
value=$(ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get "/tally/topics/$topic" --print-value-only | head -1)
grep -Eq ' partitions=4 replicas=([0-9]+,[0-9]+,[0-9]+;){3}[0-9]+,[0-9]+,[0-9]+$' <<<"$value" ||
	tl_fail "the topic key after CreatePartitions: $value"
tl_cluster_wait_isr "$topic" 4 3 15
for b in 1 2 3; do
	for p in 2 3; do
		[ -d "$TL_TMP/b$b/$topic-$p" ] || tl_fail "broker $b has no log of the new partition $p"
	done
done
out=$(admin create-partitions "$topic" 3)
grep -q '^error 37 ' <<<"$out" || tl_fail "a smaller count: $out"

for p in 2 3; do
	seq 1 100 | sed "s/^/p$p-/" | timeout 30 kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -p "$p" \
		-X acks=all -X linger.ms=0 -X batch.num.messages=10 2>"$TL_TMP/produce.err" ||
		{ cat "$TL_TMP/produce.err" >&2; tl_fail "kcat could not produce to the new partition $p"; }
done

tl_log "(2) DeleteRecords before 40 on partition 3"
leader=$(tl_cluster_leader "$topic" 3)
[ -n "$leader" ] && [ "$leader" -ge 1 ] || tl_fail "no leader for partition 3"
follower=$((leader % 3 + 1))
out=$(timeout 30 "$TL_PROGS/rawproto" "127.0.0.1:${TL_CPORT[$follower]}" delete-records "$topic" 3 40)
[ "$out" = 'error 6 low-watermark -1' ] || tl_fail "DeleteRecords on follower $follower: $out"
out=$(admin delete-records "$topic" 3 40)
[ "$out" = 'low-watermark 40' ] || tl_fail "delete-records $topic 3 40: $out"
# Answered once every live replica's log start reached 40 (Kafka's low watermark):
# no polling, the followers' checkpoints hold it already.
for b in 1 2 3; do
	[ "$(cat "$TL_TMP/b$b/$topic-3/log-start-offset-checkpoint" 2>/dev/null)" = 40 ] ||
		tl_fail "broker $b: the log start of partition 3 is not 40 when DeleteRecords answered"
done

tl_log "(3) kill -9 of broker $leader, the leader of partition 3"
tl_cbroker_kill9 "$leader"
deadline=$((SECONDS + 15))
while :; do
	now=$(tl_cluster_leader "$topic" 3)
	[ -n "$now" ] && [ "$now" != "$leader" ] && [ "$now" -ge 1 ] && break
	[ $SECONDS -lt $deadline ] || tl_fail "partition 3 has no new leader after its leader was killed"
	sleep 0.2
done
tl_log "new leader of partition 3: broker $now"
alive=127.0.0.1:${TL_CPORT[$now]}
consume() { timeout 20 kcat -C -q -b "$alive" -t "$topic" -p "$1" -o beginning -e -f '%o %s\n' 2>/dev/null || true; }
deadline=$((SECONDS + 10))
until consume 3 >"$TL_TMP/p3" && [ "$(wc -l <"$TL_TMP/p3")" = 60 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "partition 3 from the new leader: $(wc -l <"$TL_TMP/p3") records, want 60; first: $(head -1 "$TL_TMP/p3")"
	sleep 0.2
done
[ "$(head -1 "$TL_TMP/p3")" = '40 p3-41' ] || tl_fail "partition 3 starts at '$(head -1 "$TL_TMP/p3")', want '40 p3-41'"
[ "$(tail -1 "$TL_TMP/p3")" = '99 p3-100' ] || tl_fail "partition 3 ends at '$(tail -1 "$TL_TMP/p3")'"
deadline=$((SECONDS + 10))
until consume 2 >"$TL_TMP/p2" && [ "$(wc -l <"$TL_TMP/p2")" = 100 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "partition 2 after the failover: $(wc -l <"$TL_TMP/p2") records, want 100"
	sleep 0.2
done
tl_log "ok: partitions added and records deleted across the cluster"
