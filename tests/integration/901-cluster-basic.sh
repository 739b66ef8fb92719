#!/usr/bin/env bash
# A 3-broker cluster with etcd on loopback: topics are created with replication factor
# 3, every partition gets a leader and 3 replicas in its ISR; kcat produces with
# acks=all through any broker and consumes everything back exactly once, in order per
# partition; each follower's log ends where the leader's does (the batches were
# replicated byte for byte, checked with tally log dump's offsets and CRCs). Producer
# ids handed out by different brokers never collide (every replica dedupes by id). A
# deleted topic leaves no partition state in etcd; re-created, it starts afresh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat
tl_require_prog rawproto rdk_admin

count=20000
[ "$TL_LONG" = 1 ] && count=200000
topic=replicated

tl_cluster_start 3 --override min.insync.replicas=2 --override default.replication.factor=3
"$TL_TALLY" topic create "$topic" --partitions 3 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "tally topic create --replication-factor 3 failed"
tl_cluster_wait_isr "$topic" 3 3
tl_cluster_describe "$topic" >&2

seq 1 "$count" | sed 's/^/k&:v&/' >"$TL_TMP/sent"
tl_log "producing $count records with acks=all"
timeout 120 kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -K: -X acks=all -X enable.idempotence=true \
	-l "$TL_TMP/sent" 2>"$TL_TMP/produce.err" || { cat "$TL_TMP/produce.err" >&2; tl_fail "kcat -P failed"; }
grep -Eq 'ERROR|Delivery failed' "$TL_TMP/produce.err" && { cat "$TL_TMP/produce.err" >&2; tl_fail "kcat -P reported errors"; }

tl_log "consuming"
timeout 60 kcat -C -q -b "$TL_BOOTSTRAP" -t "$topic" -o beginning -e -f '%p %o %k:%s\n' >"$TL_TMP/got" ||
	tl_fail "kcat -C failed"
got=$(wc -l <"$TL_TMP/got")
[ "$got" -eq "$count" ] || tl_fail "consumed $got records, produced $count"
sort -t' ' -k3 "$TL_TMP/got" | awk '{ print $3 }' | sort >"$TL_TMP/got.values"
sort "$TL_TMP/sent" >"$TL_TMP/sent.sorted"
cmp -s "$TL_TMP/got.values" "$TL_TMP/sent.sorted" || tl_fail "consumed records differ from those sent"
awk '{ if ($2 != next_off[$1] + 0) { print "partition " $1 " offset " $2 " expected " next_off[$1] + 0; exit 1 } next_off[$1] = $2 + 1 }' \
	"$TL_TMP/got" || tl_fail "offsets are not dense per partition"

# Every replica holds the same batches: compare (offset, crc) lists of each partition.
tl_log "comparing replicas"
deadline=$(($(date +%s) + 20))
for p in 0 1 2; do
	while :; do
		same=1
		"$TL_TALLY" log dump "$TL_TMP/b1/$topic-$p" 2>/dev/null | grep -Eo 'baseOffset [0-9]+|crc 0x[0-9a-f]+|leaderEpoch [0-9]+' >"$TL_TMP/d1" || true
		for b in 2 3; do
			"$TL_TALLY" log dump "$TL_TMP/b$b/$topic-$p" 2>/dev/null | grep -Eo 'baseOffset [0-9]+|crc 0x[0-9a-f]+|leaderEpoch [0-9]+' >"$TL_TMP/d$b" || true
			cmp -s "$TL_TMP/d1" "$TL_TMP/d$b" || same=0
		done
		cat "$TL_TMP/d1" >>"$TL_TMP/compared"
		[ $same = 1 ] && break
		[ "$(date +%s)" -lt "$deadline" ] || tl_fail "partition $p: replicas' logs differ"
		sleep 0.5
	done
done
[ "$(grep -c baseOffset "$TL_TMP/compared")" -gt 0 ] || tl_fail "no batches found in the replicas' logs"

# Producer ids are unique across the cluster: 5 InitProducerIds through each broker.
for b in 1 2 3; do
	"$TL_PROGS/rawproto" "127.0.0.1:${TL_CPORT[$b]}" pids 5 >>"$TL_TMP/pids" ||
		tl_fail "InitProducerId through broker $b failed"
done
[ "$(sort -u "$TL_TMP/pids" | wc -l)" -eq 15 ] ||
	tl_fail "brokers handed out the same producer id twice: $(sort "$TL_TMP/pids" | uniq -d | head -n 3 | tr '\n' ' ')"

# min.insync.replicas as a topic config: 4 of 3 replicas can never be in sync, so an
# acks=all produce there fails with NOT_ENOUGH_REPLICAS, while acks=1 is taken.
"$TL_TALLY" topic create strict --partitions 1 --replication-factor 3 -c min.insync.replicas=4 \
	-b "$TL_BOOTSTRAP" || tl_fail "topic create strict failed"
tl_cluster_wait_isr strict 1 3
if echo x | kcat -P -b "$TL_BOOTSTRAP" -t strict -X acks=all -X message.timeout.ms=3000 \
	-X retries=0 >"$TL_TMP/strict.out" 2>&1; then
	grep -qi 'not enough\|NOT_ENOUGH_REPLICAS' "$TL_TMP/strict.out" ||
		tl_fail "acks=all was taken below the topic's min.insync.replicas: $(cat "$TL_TMP/strict.out")"
fi
grep -qi 'not enough\|NOT_ENOUGH_REPLICAS' "$TL_TMP/strict.out" ||
	tl_fail "acks=all below min.insync.replicas did not answer NOT_ENOUGH_REPLICAS: $(cat "$TL_TMP/strict.out")"
echo y | kcat -P -b "$TL_BOOTSTRAP" -t strict -X acks=1 >"$TL_TMP/strict1.out" 2>&1 ||
	tl_fail "acks=1 to a topic with min.insync.replicas above its ISR failed: $(cat "$TL_TMP/strict1.out")"

# Topic configs change cluster-wide: AlterConfigs (librdkafka) through broker 1 and
# IncrementalAlterConfigs (tally topic alter) through broker 3 are written to etcd and
# every broker's DescribeConfigs shows both once its view has them.
[ "$(timeout 30 "$TL_PROGS/rdk_admin" "127.0.0.1:${TL_CPORT[1]}" alter-configs strict retention.ms=123456 min.insync.replicas=3)" = ok ] ||
	tl_fail "AlterConfigs of a cluster topic failed"
"$TL_TALLY" topic alter strict -c max.message.bytes=5000 -b "127.0.0.1:${TL_CPORT[3]}" >&2 ||
	tl_fail "tally topic alter of a cluster topic failed"
for b in 1 2 3; do
	deadline=$(($(date +%s) + 10))
	while :; do
		out=$(timeout 30 "$TL_PROGS/rdk_admin" "127.0.0.1:${TL_CPORT[$b]}" describe-configs topic strict)
		grep -qx 'config retention.ms=123456 source DYNAMIC_TOPIC_CONFIG default 0 readonly 0' <<<"$out" &&
			grep -qx 'config max.message.bytes=5000 source DYNAMIC_TOPIC_CONFIG default 0 readonly 0' <<<"$out" &&
			break
		[ "$(date +%s)" -lt "$deadline" ] || tl_fail "broker $b does not show the altered configs: $out"
		sleep 0.2
	done
done
tl_log "topic configs altered through two brokers, shown by all three"

# DeleteTopics: the topic key and its partition states go together (one etcd
# transaction); re-created, the topic starts afresh (epoch 0) and serves.
"$TL_TALLY" topic create doomed -p 2 -r 3 -b "$TL_BOOTSTRAP" >/dev/null || tl_fail "create doomed"
tl_cluster_wait_isr doomed 2 3
"$TL_TALLY" topic delete doomed -b "$TL_BOOTSTRAP" >/dev/null || tl_fail "delete doomed"
left=$(ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get --prefix --keys-only /tally/partitions/doomed/ | grep -c . || true)
[ "$left" = 0 ] || tl_fail "$left partition states of a deleted topic are left in etcd"
"$TL_TALLY" topic create doomed -p 2 -r 3 -b "$TL_BOOTSTRAP" >/dev/null || tl_fail "re-create doomed"
tl_cluster_wait_isr doomed 2 3
[ "$(tl_cluster_epoch doomed 0)" = 0 ] || tl_fail "a re-created topic's partition has epoch $(tl_cluster_epoch doomed 0)"
echo again | timeout 30 kcat -P -b "$TL_BOOTSTRAP" -t doomed -p 1 -X acks=all || tl_fail "produce to the re-created topic"

# kafkajs: createTopics with replication factor 3, produce with acks=-1 and a
# consumer group reading everything back, against one broker of the cluster.
if [ -d tests/interop/node_modules/kafkajs ]; then
	tl_log "kafkajs admin, produce, consume"
	TOPIC=kjs-replicated COUNT=2000 REPLICATION_FACTOR=3 timeout 120 node tests/interop/kafkajs_basic.js \
		"127.0.0.1:${TL_CPORT[2]}" admin produce consume >"$TL_TMP/kafkajs.out" 2>&1 ||
		{ cat "$TL_TMP/kafkajs.out" >&2; tl_fail "kafkajs against the cluster failed"; }
	cat "$TL_TMP/kafkajs.out" >&2
	tl_cluster_wait_isr kjs-replicated 3 3
else
	tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop)"
fi
tl_log "ok: $count records replicated to 3 brokers and read back once each"
