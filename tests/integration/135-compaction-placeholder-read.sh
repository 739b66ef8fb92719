#!/usr/bin/env bash
# A consumer reads through the placeholder batches a compaction pass leaves (review of
# log compaction, finding 2). Five hot keys updated 2000 times, one record a batch, in
# 4 KiB segments: a pass leaves most segments holding only their first and last batch,
# header-only (recordsCount 0, no producer). A Fetch used to answer from one segment, so
# a consumer from the beginning got responses without a record, and librdkafka gave up
# ("Message at offset N might be too large to fetch"). Now a read that meets only
# placeholders goes on to the next batch with records, into later segments: kcat reads
# the five latest values from offset 0, with default and with tiny fetch sizes, before
# and after a restart (indexes loaded from disk).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_keyed_producer

topic=hot
# Written with the cleaner off, so that the pass below sees the whole log at once.
tl_start_broker --override num.partitions=1 --override log.cleaner.enable=false
"$TL_BIN/tally" -b "$TL_BROKER" topic create $topic -p 1 --config cleanup.policy=compact \
	--config segment.bytes=4096 >/dev/null || tl_fail "topic create failed"
awk 'BEGIN { for (i = 0; i < 2000; i++) print "k" (i % 5), "value-" i }' |
	timeout 120 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" $topic >/dev/null ||
	tl_fail "produce failed"
tl_stop_broker
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=100
deadline=$((SECONDS + 30))
until tl_log_text "$TL_TMP/tallyd.log" | grep -q "log: compacted dir=.*/$topic-0 .*first_dirty=19[0-9][0-9]"; do
	[ $SECONDS -lt $deadline ] || tl_fail "no pass over most of the log within 30 s"
	sleep 0.2
done
sleep 1 # the pass's swap, on the next tick
segments=$(ls "$TL_DATA/$topic-0" | grep -c '\.log$')
tl_log "after compaction: $segments segments"

# read WHAT [KCAT ARGS...]: every record from offset 0 must be one of the five latest.
read_all()
{
	local what=$1
	shift
	timeout 60 kcat -C -q -b "$TL_BROKER" -t $topic -p 0 -o beginning -e \
		-X fetch.wait.max.ms=10 "$@" -f '%o %k %s\n' >"$TL_TMP/got" 2>"$TL_TMP/err" || {
		cat "$TL_TMP/err" >&2
		tl_fail "$what: kcat -C failed after $(wc -l <"$TL_TMP/got") records"
	}
	awk '{ last[$2] = $1 " " $2 " " $3 } END { for (k in last) print last[k] }' \
		"$TL_TMP/got" | sort -n >"$TL_TMP/latest"
	printf '1995 k0 value-1995\n1996 k1 value-1996\n1997 k2 value-1997\n1998 k3 value-1998\n1999 k4 value-1999\n' >"$TL_TMP/want"
	cmp -s "$TL_TMP/want" "$TL_TMP/latest" || {
		diff "$TL_TMP/want" "$TL_TMP/latest" >&2 || true
		tl_fail "$what: not the five latest values"
	}
	tl_log "$what: $(wc -l <"$TL_TMP/got") records read, the five latest values right"
}
read_all "default fetch sizes"
read_all "256-byte fetches" -X message.max.bytes=1000 -X fetch.max.bytes=1000 \
	-X max.partition.fetch.bytes=256
tl_stop_broker
tl_start_broker --override num.partitions=1 --override log.cleaner.enable=false
read_all "after a restart"
tl_stop_broker
