#!/usr/bin/env bash
# The admin APIs through librdkafka 2.0.2 (tests/progs/rdk_admin.c) and kafkajs 2.2.4
# (tests/interop/kafkajs_admin.js), and what clients see after them:
#   CreatePartitions 2 -> 4: kcat produces to partition 3; a smaller count is refused.
#   AlterConfigs segment.bytes / retention.ms: the next appends roll segments and the
#   retention check deletes them, without a restart; the setting survives a restart and
#   DescribeConfigs shows it as DYNAMIC_TOPIC_CONFIG; an unknown key is INVALID_CONFIG.
#   DeleteRecords to offset 50: a consumer from the beginning starts at 50, also after a
#   restart; past the high watermark is OFFSET_OUT_OF_RANGE; `tally log check` passes;
#   refused on a compact-only topic (POLICY_VIOLATION) and __consumer_offsets
#   (INVALID_TOPIC_EXCEPTION).
#   tally topic alter (-c, --delete-config), topic delete-records, cluster log-dirs.
#   kafkajs: createPartitions, alterConfigs, deleteTopicRecords, describeCluster (exits 77
#   after the librdkafka part when kafkajs is not installed).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_admin

admin() { timeout 60 "$TL_PROGS/rdk_admin" "$TL_BROKER" "$@"; }
first_offset() { timeout 30 kcat -C -q -b "$TL_BROKER" -t "$1" -p "$2" -o beginning -c 1 -f '%o\n'; }

tl_start_broker --override log.retention.check.interval.ms=200
"$TL_BIN/tally" -b "$TL_BROKER" topic create adm -p 2 >/dev/null 2>&1 || tl_fail "topic create"

tl_log "CreatePartitions"
[ "$(admin create-partitions adm 4)" = ok ] || tl_fail "create-partitions adm 4"
out=$(admin create-partitions adm 3)
grep -q '^error 37 .*higher than the requested 3' <<<"$out" || tl_fail "a smaller count: $out"
echo p3 | kcat -P -b "$TL_BROKER" -t adm -p 3 || tl_fail "kcat could not produce to the new partition 3"
[ "$(first_offset adm 3)" = 0 ] || tl_fail "partition 3 does not hold the record"

tl_log "AlterConfigs"
out=$(admin alter-configs adm retention.mss=1)
grep -q '^error 40 .*did you mean "retention.ms"' <<<"$out" || tl_fail "an unknown key: $out"
[ "$(admin alter-configs adm segment.bytes=1000)" = ok ] || tl_fail "alter-configs segment.bytes"
seq 1 100 | kcat -P -b "$TL_BROKER" -t adm -p 0 -X linger.ms=0 -X batch.num.messages=5
segments=$(ls "$TL_DATA/adm-0/" | grep -c '\.log$')
[ "$segments" -ge 2 ] || tl_fail "segment.bytes=1000 did not roll segments without a restart ($segments)"
out=$(admin describe-configs topic adm)
grep -qx 'config segment.bytes=1000 source DYNAMIC_TOPIC_CONFIG default 0 readonly 0' <<<"$out" ||
	tl_fail "describe after alter: $out"

tl_log "DeleteRecords"
[ "$(admin delete-records adm 0 50)" = 'low-watermark 50' ] || tl_fail "delete-records adm 0 50"
grep -q '^error 1 ' <<<"$(admin delete-records adm 0 1000)" || tl_fail "delete-records past the end"
[ "$(first_offset adm 0)" = 50 ] || tl_fail "after DeleteRecords a consumer starts at $(first_offset adm 0), want 50"
[ ! -e "$TL_DATA/adm-0/00000000000000000000.log" ] || tl_fail "the first segment, wholly deleted, remains"
# As Kafka: not on a topic only compacted (POLICY_VIOLATION), nor on an internal one
# (INVALID_TOPIC_EXCEPTION: committed offsets would be gone after a restart).
"$TL_BIN/tally" -b "$TL_BROKER" topic create adm-compact -p 1 -c cleanup.policy=compact >/dev/null 2>&1 ||
	tl_fail "topic create adm-compact"
printf 'k1:a\nk2:b\n' | kcat -P -b "$TL_BROKER" -t adm-compact -K: || tl_fail "produce to adm-compact"
grep -q '^error 44 ' <<<"$(admin delete-records adm-compact 0 1)" || tl_fail "delete-records on a compacted topic"
[ "$(first_offset adm-compact 0)" = 0 ] || tl_fail "a refused DeleteRecords moved the compacted topic's start"
timeout 30 kcat -C -q -b "$TL_BROKER" -G adm-group adm-compact -c 2 -X auto.offset.reset=earliest >/dev/null ||
	tl_fail "kcat -G adm-group"
grep -q '^error 17 ' <<<"$(admin delete-records __consumer_offsets 0 1)" ||
	tl_fail "delete-records on __consumer_offsets"

tl_stop_broker
"$TL_BIN/tally" log check "$TL_DATA/adm-0" >"$TL_TMP/check" || tl_fail "log check after DeleteRecords: $(cat "$TL_TMP/check")"
tl_start_broker
[ "$(first_offset adm 0)" = 50 ] || tl_fail "after a restart a consumer starts at $(first_offset adm 0), want 50"
out=$(admin describe-configs topic adm)
grep -qx 'config segment.bytes=1000 source DYNAMIC_TOPIC_CONFIG default 0 readonly 0' <<<"$out" ||
	tl_fail "segment.bytes did not survive a restart: $out"
# The whole set: retention.ms alone, segment.bytes back to the default.
[ "$(admin alter-configs adm retention.ms=1)" = ok ] || tl_fail "alter-configs retention.ms"
grep -qx 'config segment.bytes=1073741824 source DEFAULT_CONFIG default 1 readonly 0' <<<"$(admin describe-configs topic adm)" ||
	tl_fail "AlterConfigs did not reset segment.bytes"
echo late | kcat -P -b "$TL_BROKER" -t adm -p 0
deadline=$((SECONDS + 20))
while [ "$(ls "$TL_DATA/adm-0/" | grep -c '\.log$')" -gt 1 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "retention.ms=1 did not delete the old segments without a restart"
	sleep 0.2
done

tl_log "tally CLI"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }
tally topic alter adm -c max.message.bytes=5000 -c segment.ms=600000 2>/dev/null || tl_fail "tally topic alter -c"
tally topic alter adm --delete-config segment.ms 2>/dev/null || tl_fail "tally topic alter --delete-config"
out=$(admin describe-configs topic adm)
grep -qx 'config max.message.bytes=5000 source DYNAMIC_TOPIC_CONFIG default 0 readonly 0' <<<"$out" &&
	grep -qx 'config retention.ms=1 source DYNAMIC_TOPIC_CONFIG default 0 readonly 0' <<<"$out" &&
	grep -q '^config segment.ms=[0-9]* source DEFAULT_CONFIG' <<<"$out" ||
	tl_fail "after tally topic alter (only the named keys change): $out"
rc=0
tally topic alter adm -c no.such.key=1 2>"$TL_TMP/err" || rc=$?
[ $rc = 1 ] && grep -q 'unknown topic config "no.such.key"' "$TL_TMP/err" || tl_fail "alter with a bad key: $rc $(cat "$TL_TMP/err")"
# retention.ms=1 would take the whole partition, the active segment too (as Kafka).
tally topic alter adm --delete-config retention.ms 2>/dev/null || tl_fail "tally topic alter --delete-config retention.ms"
seq 1 10 | kcat -P -b "$TL_BROKER" -t adm -p 1
[ "$(tally topic delete-records adm 1 4 2>/dev/null)" = 4 ] || tl_fail "tally topic delete-records adm 1 4"
[ "$(first_offset adm 1)" = 4 ] || tl_fail "after tally topic delete-records a consumer starts at $(first_offset adm 1)"
tally cluster log-dirs | grep -Eq $'^1\t'"$TL_DATA"$'\tadm\t1\t[1-9][0-9]*$' ||
	tl_fail "tally cluster log-dirs: $(tally cluster log-dirs)"

command -v node >/dev/null && [ -d tests/interop/node_modules/kafkajs ] ||
	tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop); the librdkafka part passed"
tl_log "kafkajs"
KAFKAJS_NO_PARTITIONER_WARNING=1 timeout 120 node tests/interop/kafkajs_admin.js "$TL_BROKER" kjs-admin ||
	tl_fail "kafkajs admin"
tl_stop_broker
