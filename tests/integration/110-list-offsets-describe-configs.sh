#!/usr/bin/env bash
# ListOffsets' special timestamps (tests/progs/rawproto.c list-offsets): -3 answers the
# first record with the largest timestamp (KIP-734), -4 the log start (no remote tier);
# batch timestamps as the records say, and no client-set delete horizon (rawproto
# timestamps).
# DescribeConfigs through librdkafka (tests/progs/rdk_admin.c): the broker resource
# answers Kafka's broker key names with their sources (STATIC_BROKER_CONFIG for what the
# configuration gave, DEFAULT_CONFIG otherwise) and synonyms in Kafka's order, and only
# for its own id (rawproto describe-broker: another id is INVALID_REQUEST); a topic's
# keys name the broker synonym they inherit from.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rawproto rdk_admin

tl_start_broker --override node.id=7 --override log.retention.hours=100 \
	--override log.segment.bytes=1048576
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" list-offsets special >&2 ||
	tl_fail "ListOffsets special timestamps"
# Batch timestamps as Kafka's LogValidator sets them: a client's maxTimestamp or
# LogAppendTime bit on a CreateTime topic, and a LogAppendTime topic's duplicate.
"$TL_BIN/tally" topic create lat -p 1 -c message.timestamp.type=LogAppendTime -b "$TL_BROKER" ||
	tl_fail "topic create lat failed"
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" timestamps created lat >&2 ||
	tl_fail "batch timestamps"

want()
{
	grep -qxF -- "$1" <<<"$out" || tl_fail "DescribeConfigs $2: no line \"$1\" in: $out"
}
out=$(timeout 60 "$TL_PROGS/rdk_admin" "$TL_BROKER" describe-configs broker 7 include-synonyms) ||
	tl_fail "rdk_admin describe-configs broker failed: $out"
want 'config log.segment.bytes=1048576 source STATIC_BROKER_CONFIG default 0 readonly 1' broker
want 'config log.retention.hours=100 source STATIC_BROKER_CONFIG default 0 readonly 1' broker
want 'config log.retention.ms=(null) source DEFAULT_CONFIG default 1 readonly 1' broker
want 'synonym log.retention.hours=100 source STATIC_BROKER_CONFIG' broker
want 'config node.id=7 source STATIC_BROKER_CONFIG default 0 readonly 1' broker
want 'config num.partitions=1 source DEFAULT_CONFIG default 1 readonly 1' broker
grep -q '^config retention.ms=' <<<"$out" && tl_fail "the broker resource answers topic key names: $out"
# Another broker's id is refused as Kafka does; "" (cluster-wide dynamic defaults) is empty.
out=$(timeout 30 "$TL_PROGS/rawproto" "$TL_BROKER" describe-broker 8)
[ "$out" = "error 42 configs 0" ] || tl_fail "DescribeConfigs of broker 8 at broker 7: $out"
out=$(timeout 30 "$TL_PROGS/rawproto" "$TL_BROKER" describe-broker '')
[ "$out" = "error 0 configs 0" ] || tl_fail "DescribeConfigs of broker '': $out"

out=$(timeout 60 "$TL_PROGS/rdk_admin" "$TL_BROKER" describe-configs topic special include-synonyms) ||
	tl_fail "rdk_admin describe-configs topic failed: $out"
want 'config retention.ms=360000000 source STATIC_BROKER_CONFIG default 0 readonly 0' topic
want 'synonym log.retention.hours=100 source STATIC_BROKER_CONFIG' topic
want 'config segment.bytes=1048576 source STATIC_BROKER_CONFIG default 0 readonly 0' topic
want 'config max.message.bytes=1048588 source DEFAULT_CONFIG default 1 readonly 0' topic
want 'synonym message.max.bytes=1048588 source DEFAULT_CONFIG' topic
tl_stop_broker

# rawproto timestamps' third batch claimed a delete horizon (bit 6): only the cleaner
# sets one, so it is stored without (else its tombstones would go at the first pass).
"$TL_BIN/tally" log dump "$TL_DATA/created-0" >"$TL_TMP/dump" || tl_fail "log dump failed"
[ "$(grep -c '^baseOffset' "$TL_TMP/dump")" = 3 ] || tl_fail "created-0: $(cat "$TL_TMP/dump")"
grep -q deleteHorizon "$TL_TMP/dump" && tl_fail "a client's delete horizon was stored: $(cat "$TL_TMP/dump")"
tl_log "a client's delete horizon bit is not stored"
