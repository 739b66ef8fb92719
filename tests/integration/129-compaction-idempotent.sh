#!/usr/bin/env bash
# Idempotent producer rules over a compacted topic (issue 17; 301's checks with keys).
# rawproto writes 40 idempotent batches of one producer on keys k0-k3 (each batch
# supersedes the one before it), then kcat overwrites k0-k3 and writes other keys
# until a cleaner pass has cleaned past them: the producer's batches are compacted
# away, its last one kept empty for dedupe (as Kafka's cleaner keeps it). Then, before
# and after a kill -9 and restart, and after a restart with the producer snapshots
# deleted (producer state rebuilt from the compacted batches alone):
# exact retries of the last batch are answered with its original base offset and not
# stored; a retry of a batch compacted away is a duplicate (while cached) or
# OUT_OF_ORDER_SEQUENCE_NUMBER, never stored; a sequence gap is refused; the next batch
# in order lands at the log end. `tally log check` passes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rawproto

topic=idc
batches=40
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=100
"$TL_BIN/tally" -b "$TL_BROKER" topic create "$topic" -p 1 --config cleanup.policy=compact \
	--config segment.bytes=2048 --config min.cleanable.dirty.ratio=0.01 \
	--config delete.retention.ms=0 >/dev/null || tl_fail "topic create failed"
pid=$(timeout 30 "$TL_PROGS/rawproto" "$TL_BROKER" compact-write "$topic" $batches) ||
	tl_fail "rawproto compact-write failed"
tl_log "producer $pid wrote $batches batches (offsets 0-$((batches * 4 - 1)))"

first_dirty()
{
	tl_log_text "$TL_TMP/tallyd.log" | grep "log: compacted dir=.*/$topic-0 " |
		grep -o 'first_dirty=[0-9]*' | cut -d= -f2 | sort -n | tail -n 1
}
# k0-k3 overwritten, then other keys round after round until a pass cleaned past the
# overwrite (the producer's last batch is then empty).
want=$((batches * 4 + 4))
round=0
deadline=$((SECONDS + 15))
while [ "$(first_dirty)" = "" ] || [ "$(first_dirty)" -lt $want ]; do
	[ $SECONDS -lt $deadline ] ||
		tl_fail "no cleaner pass reached offset $want within 15 s (first_dirty=$(first_dirty))"
	awk -v r=$round 'BEGIN { for (k = 0; k < 4; k++) print "k" k ":z" r;
		for (k = 0; k < 60; k++) print "f" k ":f" k "-" r }' |
		timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -K: -X linger.ms=1 ||
		tl_fail "kcat -P failed"
	round=$((round + 1))
	sleep 0.3
done
tl_log "a pass cleaned to $(first_dirty) after $round rounds of other writes"

timeout 30 "$TL_PROGS/rawproto" "$TL_BROKER" compact-check "$topic" "$pid" $batches live >&2 ||
	tl_fail "idempotence broken over the compacted log (no restart)"
tl_kill9_broker
tl_start_broker
timeout 30 "$TL_PROGS/rawproto" "$TL_BROKER" compact-check "$topic" "$pid" $batches \
	restarted >&2 || tl_fail "idempotence broken over the compacted log after kill -9"
# Without snapshots the producer state comes from the compacted batches alone: what
# the cleaner kept of the producer (its last batch) must be enough.
tl_stop_broker
snapshots=$(find "$TL_DATA/$topic-0" -name '*.snapshot' | wc -l)
[ "$snapshots" -gt 0 ] || tl_fail "no producer snapshot in $TL_DATA/$topic-0"
find "$TL_DATA/$topic-0" -name '*.snapshot' -delete
tl_start_broker
timeout 30 "$TL_PROGS/rawproto" "$TL_BROKER" compact-check "$topic" "$pid" $batches \
	restarted-next >&2 ||
	tl_fail "idempotence broken over the compacted log, producer state rebuilt without snapshots"
tl_stop_broker
"$TL_BIN/tally" log check "$TL_DATA/$topic-0" >"$TL_TMP/check" 2>&1 || {
	cat "$TL_TMP/check" >&2
	tl_fail "tally log check fails on the compacted partition"
}
tl_log "ok"
