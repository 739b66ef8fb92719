#!/usr/bin/env bash
# A stock Apache Kafka 3.8.0 server.properties starts tallyd: the settings of the
# distribution's config/server.properties (ZooKeeper mode) and config/kraft/server.properties
# (combined KRaft mode), their comments left out. Kafka's keys that Tally does not use are
# logged once as ignored; the KRaft controller listener is parsed and not served; the keys
# Tally does use take effect (log.retention.hours); kcat produces and consumes through it.
# Like kafka-server-start, the test's --override after --config moves the ports and the
# data directory.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

cat >"$TL_TMP/zk.properties" <<'PROPS'
broker.id=0
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kafka-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.retention.check.interval.ms=300000
zookeeper.connect=localhost:2181
zookeeper.connection.timeout.ms=18000
group.initial.rebalance.delay.ms=0
PROPS

cat >"$TL_TMP/kraft.properties" <<'PROPS'
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
PROPS

# The effective configuration, as tallyd would run it.
out=$("$TL_TALLYD" --config "$TL_TMP/kraft.properties" --print-config 2>&1) ||
	tl_fail "tallyd --print-config with Kafka's kraft/server.properties failed: $out"
grep -qx 'log.retention.ms=604800000' <<<"$out" || tl_fail "log.retention.hours=168 not applied: $out"
grep -qx 'node.id=1' <<<"$out" || tl_fail "node.id=1 not applied: $out"

TL_PORT=$(tl_pick_port) || tl_fail "no free port"
TL_BROKER=127.0.0.1:$TL_PORT
TL_DATA=$TL_TMP/data
mkdir -p "$TL_DATA"
export TL_PORT TL_BROKER TL_DATA

roundtrip()
{
	local topic=$1 got
	echo "hello-$topic" | kcat -P -b "$TL_BROKER" -t "$topic" || tl_fail "kcat -P to $topic failed"
	got=$(timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -f '%s\n') ||
		tl_fail "kcat -C of $topic failed"
	[ "$got" = "hello-$topic" ] || tl_fail "topic $topic holds \"$got\", want hello-$topic"
}

# ZooKeeper-mode file: one listener (Kafka's default, PLAINTEXT://:9092), moved.
tl_start_broker --config "$TL_TMP/zk.properties" \
	--override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT" --override "log.dirs=$TL_DATA"
for key in zookeeper.connect num.network.threads transaction.state.log.min.isr; do
	[ "$(grep -c "config: ignored key=$key " <(tl_log_text "$TL_TMP/tallyd.log"))" = 1 ] ||
		tl_fail "tallyd did not log once that it ignores $key"
done
tl_grep_log 'config: ignored key=num.partitions' && tl_fail "num.partitions is used, not ignored"
roundtrip zk
tl_stop_broker

# KRaft file: two listeners, the controller one not served.
tl_start_broker --config "$TL_TMP/kraft.properties" \
	--override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT,CONTROLLER://127.0.0.1:0" \
	--override "advertised.listeners=PLAINTEXT://127.0.0.1:$TL_PORT" \
	--override "log.dirs=$TL_DATA"
tl_grep_log 'config: ignored key=process.roles ' || tl_fail "process.roles not logged as ignored"
tl_grep_log 'listener CONTROLLER is a KRaft controller listener; not served' ||
	tl_fail "the controller listener was not reported as not served"
tl_grep_log "listening on 127.0.0.1:$TL_PORT advertised=127.0.0.1:$TL_PORT" ||
	tl_fail "tallyd does not serve the PLAINTEXT listener"
roundtrip kraft
tl_stop_broker

# Neither Kafka's key nor Tally's: still refused, with a suggestion.
echo 'num.netwrk.threads=3' >>"$TL_TMP/zk.properties"
rc=0
out=$("$TL_TALLYD" --config "$TL_TMP/zk.properties" 2>&1) || rc=$?
[ $rc -eq 2 ] || tl_fail "a misspelt key: tallyd exited $rc, want 2: $out"
grep -q 'unknown key "num.netwrk.threads"; did you mean "num.network.threads"' <<<"$out" ||
	tl_fail "a misspelt key: $out"

# Per-listener keys: one Tally does not implement is ignored (logged), but one that sets
# how a listener authenticates or encrypts is refused: ignored, that listener would run
# with weaker settings than written (no client certificate asked for, say).
rc=0
out=$("$TL_TALLYD" --print-config --override listener.name.external.max.connections=10 2>&1) || rc=$?
[ $rc -eq 0 ] || tl_fail "listener.name.external.max.connections: tallyd exited $rc: $out"
for key in listener.name.ssl.ssl.client.auth listener.name.sasl_ssl.sasl.enabled.mechanisms \
	listener.name.sasl_ssl.scram-sha-256.sasl.server.callback.handler.class; do
	rc=0
	out=$("$TL_TALLYD" --print-config --override "$key=required" 2>&1) || rc=$?
	[ $rc -eq 2 ] || tl_fail "$key: tallyd exited $rc, want 2: $out"
	grep -q "config $key: per-listener security settings are not supported" <<<"$out" ||
		tl_fail "$key: $out"
done
