#!/usr/bin/env bash
# A deleted key stays deleted when retention runs beside a compaction pass (review of
# log compaction, finding 1). A compact,delete topic: key K written at offset 20, its
# tombstone at 40, filler keys around them, in 1 KiB segments. A slow pass (the cleaner
# throttled to 4 KB/s) over all of it is in flight when DeleteRecords moves the log start
# into the second segment. Retention used to delete the first segment under the pass,
# which then discarded its one group but still moved its checkpoint past the group's
# dirty records; the next pass took the tombstone for clean, dropped it once expired and
# kept K's first value: K came back. Now retention waits for the pass (as Kafka's does)
# and a discarded group keeps its records dirty: after a second pass K reads as nothing,
# or as its tombstone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_admin rdk_keyed_producer

topic=t
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=100 \
	--override log.cleaner.io.max.bytes.per.second=4000
"$TL_BIN/tally" -b "$TL_BROKER" topic create $topic -p 1 --config segment.bytes=1024 \
	--config retention.ms=-1 >/dev/null || tl_fail "topic create failed"
pad=$(head -c 100 /dev/zero | tr '\0' x)
{
	for i in $(seq 0 19); do echo "a$i $pad"; done
	echo "K old-value-of-K" # offset 20
	for i in $(seq 21 39); do echo "a$i $pad"; done
	echo "K -" # offset 40: its tombstone
	for i in $(seq 41 60); do echo "a$i $pad"; done
} | timeout 60 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" $topic >/dev/null ||
	tl_fail "produce failed"
second=$(ls "$TL_DATA/$topic-0/" | grep '\.log$' | sed -n 2p | sed 's/\.log//; s/^0*//')
[ -n "$second" ] || tl_fail "the log has one segment"

# passes: how many passes over the topic's partition have finished.
passes()
{
	tl_log_text "$TL_TMP/tallyd.log" | grep -c "log: compacted dir=.*/$topic-0 " || true
}
settings="cleanup.policy=compact,delete retention.ms=-1 delete.retention.ms=1000 min.cleanable.dirty.ratio=0.01"
timeout 30 "$TL_PROGS/rdk_admin" "$TL_BROKER" alter-configs $topic $settings \
	segment.bytes=1048576 >/dev/null || tl_fail "alter-configs failed"
sleep 1.5 # the pass is under way: about 20 KB to read at 4 KB/s
[ "$(passes)" -eq 0 ] || tl_fail "the first pass ended before DeleteRecords; too fast to test"
timeout 30 "$TL_PROGS/rdk_admin" "$TL_BROKER" delete-records $topic 0 "$second" >/dev/null ||
	tl_fail "delete-records failed"
deadline=$((SECONDS + 40))
until [ "$(passes)" -ge 1 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "no first pass within 40 s"
	sleep 0.2
done
sleep 1.5 # the tombstone is now older than delete.retention.ms
# Small segments again, so that new writes roll and make the log dirty for a second pass.
timeout 30 "$TL_PROGS/rdk_admin" "$TL_BROKER" alter-configs $topic $settings \
	segment.bytes=1024 >/dev/null || tl_fail "alter-configs failed"
for i in $(seq 61 80); do echo "b$i $pad"; done |
	timeout 60 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" $topic >/dev/null ||
	tl_fail "produce failed"
deadline=$((SECONDS + 90))
until [ "$(passes)" -ge 2 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "no second pass within 90 s"
	sleep 0.2
done
timeout 30 kcat -C -q -b "$TL_BROKER" -t $topic -p 0 -o beginning -e -X fetch.wait.max.ms=10 \
	-f '%o %k %S %s\n' >"$TL_TMP/got" || tl_fail "kcat -C failed"
if awk '$2 == "K" && $3 != -1 { found = 1 } END { exit !found }' "$TL_TMP/got"; then
	grep ' K ' "$TL_TMP/got" >&2 || true
	tl_fail "key K, deleted by its tombstone, came back after compaction"
fi
tl_log "K stays deleted after two passes: $(awk '$2 == "K"' "$TL_TMP/got" | wc -l) tombstone(s) left"
tl_stop_broker
