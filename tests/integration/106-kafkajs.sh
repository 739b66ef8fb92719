#!/usr/bin/env bash
# kafkajs 2.2.4 (pinned in tests/interop/package-lock.json) against tallyd: admin
# createTopics / listTopics / fetchTopicMetadata, produce (plain and gzip, acks=-1),
# fetchTopicOffsets, a consumer group reading everything back byte-exact, committed
# offsets, deleteTopics. See tests/interop/kafkajs_basic.js. When the group step fails,
# kcat still reads the topic, so the log tells a broken group path from a broken fetch.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd node
[ -d tests/interop/node_modules/kafkajs ] || tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop)"

tl_start_broker --override auto.create.topics.enable=false
export TOPIC=kafkajs-basic COUNT=1000 KAFKAJS_NO_PARTITIONER_WARNING=1
js=tests/interop/kafkajs_basic.js

timeout 120 node "$js" "$TL_BROKER" admin produce || tl_fail "kafkajs admin/produce failed"
if ! timeout 120 node "$js" "$TL_BROKER" consume; then
	got=$(timeout 30 kcat -C -q -b "$TL_BROKER" -t "$TOPIC" -o beginning -e -X fetch.wait.max.ms=10 -f '%o\n' | wc -l) || true
	tl_fail "kafkajs consumer group failed (kcat reads $got of $COUNT records of the topic)"
fi
timeout 120 node "$js" "$TL_BROKER" delete || tl_fail "kafkajs deleteTopics failed"

# The topic is gone for other clients too, and the data dir no longer holds it.
out=$(kcat -L -b "$TL_BROKER" -t "$TOPIC" 2>&1) || true
grep -q "topic \"$TOPIC\" with 0 partitions" <<<"$out" ||
	tl_fail "kcat -L still lists $TOPIC after deleteTopics: $out"
ls -d "$TL_DATA/$TOPIC"-* >/dev/null 2>&1 && tl_fail "partition directories of $TOPIC remain after deleteTopics"
tl_stop_broker
