#!/usr/bin/env bash
# max.compaction.lag.ms rolls the active segment (review of log compaction, finding 5).
# Key k written twice on a compacted topic with max.compaction.lag.ms=2000: both stay in
# the active segment, which the cleaner never takes, so the superseded value outlived
# the promised lag until segment.ms (7 days) rolled it. Kafka's roll time on a compacted
# topic is min(segment.ms, max.compaction.lag.ms) (KIP-354): within a few seconds the
# segment rolls, a pass runs, and offset 0 is gone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_keyed_producer

topic=lag
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=100
"$TL_BIN/tally" -b "$TL_BROKER" topic create $topic -p 1 --config cleanup.policy=compact \
	--config max.compaction.lag.ms=2000 >/dev/null || tl_fail "topic create failed"
printf 'k v0\nk v1\n' | timeout 30 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" $topic \
	>/dev/null || tl_fail "produce failed"
deadline=$((SECONDS + 15))
until [ "$(timeout 30 kcat -C -q -b "$TL_BROKER" -t $topic -p 0 -o beginning -e -f '%o %s\n')" = "1 v1" ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "offset 0 still read 15 s after it was superseded"
	sleep 0.5
done
tl_grep_log "log: compacted dir=.*/$topic-0 " || tl_fail "no pass logged"
tl_log "the superseded value was cleaned within max.compaction.lag.ms plus a pass"
tl_stop_broker
