#!/usr/bin/env bash
# tally-test: long-only
# Client quotas, the acceptance of issue #20: a librdkafka producer (client.id "slow")
# over producer_byte_rate is held to within 10 % of the quota measured over 30 s, and
# librdkafka's throttle callback sees throttle_time_ms > 0 in the responses; a producer
# with another client.id on the same broker at the same time is not slowed (it sends
# 40 MB at well over 4x the quota). The quota is set with AlterClientQuotas on the wire
# (tests/progs/quota_raw). The 30 s are measured from the producer's start, no
# warm-up. About 33 s, so it runs under make test-long.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rdk_quota_producer
tl_require_prog quota_raw

QUOTA=1048576
SECONDS_MEASURED=30

tl_start_broker
"$TL_BIN/tally" -b "$TL_BROKER" topic create q -p 1 >/dev/null 2>&1 || tl_fail "topic create"
out=$("$TL_PROGS/quota_raw" "$TL_BROKER" 1 alter client-id=slow producer_byte_rate=$QUOTA)
[ "$out" = ok ] || tl_fail "AlterClientQuotas: $out"

tl_log "throttled producer for ${SECONDS_MEASURED}s, quota $QUOTA B/s; a free one beside it"
timeout 60 "$TL_PROGS/rdk_quota_producer" "$TL_BROKER" q slow "$SECONDS_MEASURED" >"$TL_TMP/slow" &
slow_pid=$!
timeout 60 "$TL_PROGS/rdk_quota_producer" "$TL_BROKER" q free "$SECONDS_MEASURED" 40000000 >"$TL_TMP/free" ||
	tl_fail "the unthrottled producer failed"
wait "$slow_pid" || tl_fail "the throttled producer failed"
tl_log "slow: $(cat "$TL_TMP/slow")"
tl_log "free: $(cat "$TL_TMP/free")"

read -r rate throttled tmax < <(sed -E 's/.*rate=([0-9]+) throttled=([0-9]+) throttle_max_ms=([0-9]+).*/\1 \2 \3/' "$TL_TMP/slow")
low=$((QUOTA * 90 / 100))
high=$((QUOTA * 110 / 100))
[ "$rate" -ge "$low" ] && [ "$rate" -le "$high" ] ||
	tl_fail "throttled rate $rate B/s is not within 10 % of the quota $QUOTA"
[ "$throttled" -gt 0 ] && [ "$tmax" -gt 0 ] || tl_fail "no response carried throttle_time_ms > 0"

read -r free_rate free_throttled < <(sed -E 's/.*rate=([0-9]+) throttled=([0-9]+).*/\1 \2/' "$TL_TMP/free")
[ "$free_rate" -ge $((QUOTA * 4)) ] || tl_fail "the unthrottled client was slowed: $free_rate B/s"
[ "$free_throttled" -eq 0 ] || tl_fail "the unthrottled client saw throttle_time_ms > 0"
echo "rate=$rate quota=$QUOTA ratio=$(awk "BEGIN{printf \"%.3f\", $rate/$QUOTA}") throttle_max_ms=$tmax free_rate=$free_rate" >"$TL_TMP/figures"
tl_log "$(cat "$TL_TMP/figures")"
tl_stop_broker
