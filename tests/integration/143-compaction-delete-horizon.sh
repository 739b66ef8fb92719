#!/usr/bin/env bash
# Compaction's delete horizon (KIP-534): a tombstone stays for delete.retention.ms after
# the pass that first keeps it, whatever its own timestamp. Key A is written, then
# deleted by a tombstone stamped an hour ago (delete.retention.ms is 12 s), then key B; a
# pass drops A's value and keeps the tombstone, writing its batch with the horizon
# (bit 6, baseTimestamp = pass time + 12 s): kcat (librdkafka) and kafkajs still read
# the tombstone and every record's own timestamp (the deltas were taken again against
# the horizon), and `tally log dump` shows the horizon. Measured from the tombstone's
# timestamp, as Tally did before, it went in that first pass, and a consumer that had
# read A's value never saw it deleted. With nothing written since, the broker starts
# another pass once the horizon has passed, and that one drops the tombstone; B stays.
# /metrics counts the passes, the horizon and the records removed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat node
tl_require_prog rdk_keyed_producer
[ -d tests/interop/node_modules/kafkajs ] || tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop)"

topic=dh
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=100 \
	--override group.initial.rebalance.delay.ms=0 --override metrics.listener=http://127.0.0.1:0
tl_metrics_port
"$TL_BIN/tally" -b "$TL_BROKER" topic create $topic -p 1 --config cleanup.policy=compact \
	--config segment.bytes=100 --config min.cleanable.dirty.ratio=0.01 \
	--config delete.retention.ms=12000 >/dev/null || tl_fail "topic create failed"
base=$(($(date +%s) * 1000 - 3600000))
now=$(($(date +%s) * 1000))
printf 'A a1 %s\nA - %s\nB b1 %s\nf1 x %s\nf2 x %s\n' $base $((base + 1)) $((base + 2)) \
	$now $now | timeout 30 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" $topic >/dev/null ||
	tl_fail "produce failed"

# read: "offset key value-size timestamp" of every record, by kcat.
read_all()
{
	timeout 30 kcat -C -q -b "$TL_BROKER" -t $topic -p 0 -o beginning -e \
		-X fetch.wait.max.ms=10 -f '%o %k %S %T\n' >"$TL_TMP/got" || tl_fail "kcat -C failed"
}

# A pass over the tombstone and B (first_dirty past 2).
deadline=$((SECONDS + 30))
until tl_grep_log "log: compacted dir=.*/$topic-0 .*first_dirty=([3-9]|[1-9][0-9])"; do
	[ $SECONDS -lt $deadline ] || tl_fail "no pass over the tombstone within 30 s"
	sleep 0.1
done
sleep 0.3 # the swap, on the next tick
read_all
grep -q '^0 ' "$TL_TMP/got" && tl_fail "A's value survived the pass: $(cat "$TL_TMP/got")"
grep -qx "1 A -1 $((base + 1))" "$TL_TMP/got" || {
	cat "$TL_TMP/got" >&2
	tl_fail "the tombstone (an hour old) did not survive the first pass with its timestamp"
}
grep -qx "2 B 2 $((base + 2))" "$TL_TMP/got" || tl_fail "B: $(cat "$TL_TMP/got")"
tl_log "after the first pass: $(tr '\n' ';' <"$TL_TMP/got")"
# kafkajs reads the same records and timestamps (it adds each delta to baseTimestamp too).
KAFKAJS_NO_PARTITIONER_WARNING=1 timeout 60 node tests/interop/kafkajs_read_all.js \
	"$TL_BROKER" $topic "$(wc -l <"$TL_TMP/got")" >"$TL_TMP/kafkajs" || tl_fail "kafkajs read failed"
cmp -s "$TL_TMP/got" "$TL_TMP/kafkajs" || {
	diff "$TL_TMP/got" "$TL_TMP/kafkajs" >&2 || true
	tl_fail "kafkajs reads other records or timestamps than kcat"
}
"$TL_BIN/tally" log dump "$TL_DATA/$topic-0" >"$TL_TMP/dump" 2>&1 || tl_fail "log dump failed"
grep -q '^baseOffset 1 .* deleteHorizon ' "$TL_TMP/dump" || {
	cat "$TL_TMP/dump" >&2
	tl_fail "the tombstone's batch shows no delete horizon"
}

# No write from here on: the horizon alone starts the pass that drops the tombstone.
deadline=$((SECONDS + 40))
while read_all && grep -q ' A ' "$TL_TMP/got"; do
	[ $SECONDS -lt $deadline ] || tl_fail "the tombstone is still there 40 s after its pass"
	sleep 0.5
done
grep -qx "2 B 2 $((base + 2))" "$TL_TMP/got" || tl_fail "B after the tombstone went: $(cat "$TL_TMP/got")"
tl_log "the tombstone went once its horizon passed; B stays"
# /metrics: the cleaner's work, summed over the logs (the consumer offsets' logs
# included): the horizon given, A's value and then its tombstone removed.
for m in passes_total:2 delete_horizons_total:1 records_removed_total:2; do
	got=$(tl_metric "tally_log_cleaner_${m%%:*}") || tl_fail "GET /metrics failed"
	[ -n "$got" ] && [ "${got%%.*}" -ge "${m##*:}" ] ||
		tl_fail "tally_log_cleaner_${m%%:*} is '$got', want at least ${m##*:}"
done
[ "$(tl_metric tally_log_cleaner_running)" = 0 ] || tl_fail "a pass is still counted running"
tl_stop_broker
"$TL_BIN/tally" log check "$TL_DATA/$topic-0" >"$TL_TMP/check" 2>&1 || {
	cat "$TL_TMP/check" >&2
	tl_fail "tally log check fails on the compacted partition"
}
