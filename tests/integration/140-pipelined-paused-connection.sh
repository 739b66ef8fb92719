#!/usr/bin/env bash
# A connection paused at queued.max.requests goes on once its responses drain, also
# when the last of them is answered from a disk completion rather than from an event of
# its own connection: the frames it had already read wait in its buffer, which no
# EPOLLIN reports (kcat stalled for message.timeout.ms, then failed with "All broker
# connections are down", on about 1 run in 5 with the default queued.max.requests=500
# and 2,000 single-record requests). Here queued.max.requests=4 makes it pause all the
# time: 3,000 pipelined single-record requests with acks=all, on both disk engines, all
# answered and stored once.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

seq 1 3000 | sed 's/^/rec-/' >"$TL_TMP/sent"
for engine in io_uring sync; do
	TALLY_IO_ENGINE=$engine tl_start_broker --override queued.max.requests=4 --override num.partitions=1
	tl_grep_log "disk I/O engine=$engine" || tl_fail "tallyd did not run the $engine engine"
	topic=paused-$engine
	timeout 60 kcat -P -b "$TL_BROKER" -t "$topic" -p 0 -X acks=all -X batch.num.messages=1 \
		-X linger.ms=0 -X message.timeout.ms=20000 -l "$TL_TMP/sent" 2>"$TL_TMP/kcat.err" ||
		{ cat "$TL_TMP/kcat.err" >&2; tl_fail "$engine: kcat -P failed: a paused connection stalled"; }
	grep -Eq 'ERROR|Delivery failed' "$TL_TMP/kcat.err" && { cat "$TL_TMP/kcat.err" >&2; tl_fail "$engine: kcat -P reported errors"; }
	timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -p 0 -o beginning -e >"$TL_TMP/got"
	cmp -s "$TL_TMP/sent" "$TL_TMP/got" || tl_fail "$engine: read back $(wc -l <"$TL_TMP/got") records, not the 3000 sent in order"
	tl_stop_broker
done
tl_log "ok"
