#!/usr/bin/env bash
# tally-test: long-only
# Issue 17's scale acceptance run: 1,000 keys written 1,000 times each (1,000,000
# records, kcat) to a compacted topic with 1 MiB segments. segment.ms rolls the active
# segment once the writes stop, so the cleaner can reach every record; the test waits
# until a pass has cleaned the whole log, then checks that about 1,000 records remain
# (at most 1,000 plus those of the active segment, which is never cleaned) and that a
# consumer from the beginning sees the latest value of every key, offsets increasing;
# `tally log check` passes. Prints the time of each phase (docs/bench.md has figures).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

keys=${TL_COMPACT_KEYS:-1000}
rounds=${TL_COMPACT_ROUNDS:-1000}
topic=million
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=200
"$TL_BIN/tally" -b "$TL_BROKER" topic create "$topic" -p 1 --config cleanup.policy=compact \
	--config segment.bytes=1048576 --config segment.ms=2000 \
	--config min.cleanable.dirty.ratio=0.1 >/dev/null || tl_fail "topic create failed"

# Line i (from 0) goes to offset i: key k<i % keys>, value v<key>-<round>.
awk -v keys="$keys" -v rounds="$rounds" 'BEGIN {
	for (r = 0; r < rounds; r++)
		for (k = 0; k < keys; k++)
			print "k" k ":v" k "-" r
}' >"$TL_TMP/input"
written=$((keys * rounds))
t0=$(date +%s%N)
timeout 300 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -K: -X acks=1 -X linger.ms=20 \
	-X batch.num.messages=5000 -X queue.buffering.max.messages=1000000 \
	-l "$TL_TMP/input" 2>"$TL_TMP/produce.err" || {
	cat "$TL_TMP/produce.err" >&2
	tl_fail "kcat -P failed"
}
t1=$(date +%s%N)
end=$(timeout 30 kcat -Q -b "$TL_BROKER" -t "$topic:0:-1" 2>/dev/null | awk '{ print $NF }') || true
[ "$end" = "$written" ] || tl_fail "log end is ${end:-unknown} after $written records"
tl_log "produced $written records in $(((t1 - t0) / 1000000)) ms"

# Wait until a pass has cleaned up to the log end (first_dirty = end): every record below
# the (empty) active segment is compacted.
compacted_to()
{
	local to
	to=$(tl_log_text "$TL_TMP/tallyd.log" | grep "log: compacted dir=.*/$topic-0 " |
		grep -o 'first_dirty=[0-9]*' | cut -d= -f2 | sort -n | tail -n 1) || true
	echo "${to:-0}"
}
deadline=$((SECONDS + 240))
until [ "$(compacted_to)" -ge "$written" ]; do
	[ $SECONDS -lt $deadline ] ||
		tl_fail "the cleaner reached $(compacted_to) of $written within 240 s"
	sleep 0.5
done
t2=$(date +%s%N)
passes=$(tl_log_text "$TL_TMP/tallyd.log" | grep -c "log: compacted dir=.*/$topic-0 ") || true
tl_log "compacted to the end in $(((t2 - t1) / 1000000)) ms after the writes ($passes passes)"

timeout 120 kcat -C -q -b "$TL_BROKER" -t "$topic" -p 0 -o beginning -e -X fetch.wait.max.ms=10 \
	-f '%o %k %s\n' >"$TL_TMP/got" || tl_fail "kcat -C failed"
t3=$(date +%s%N)
count=$(wc -l <"$TL_TMP/got")
awk 'NR > 1 && $1 <= prev { print "offset " $1 " after " prev; exit 1 } { prev = $1 }' \
	"$TL_TMP/got" || tl_fail "offsets do not increase"
awk '{ last[$2] = $3 } END { for (k in last) print k, last[k] }' "$TL_TMP/got" | sort >"$TL_TMP/latest"
awk -v keys="$keys" -v rounds="$rounds" 'BEGIN {
	for (k = 0; k < keys; k++) print "k" k, "v" k "-" rounds - 1 }' | sort >"$TL_TMP/want"
if ! cmp -s "$TL_TMP/want" "$TL_TMP/latest"; then
	# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
	diff "$TL_TMP/want" "$TL_TMP/latest" | head -n 10 >&2 || true
	tl_fail "latest values differ"
fi
# The active segment (never cleaned) may hold records written after its roll: none
# here, unless the roll came before the last write.
active=$(ls "$TL_DATA/$topic-0"/*.log | sort | tail -n 1)
active_records=$("$TL_BIN/tally" log dump "$active" 2>/dev/null |
	awk '$1 == "baseOffset" { for (i = 1; i < NF; i++) if ($i == "count") n += $(i + 1) }
		END { print n + 0 }')
[ "$count" -le $((keys + active_records)) ] ||
	tl_fail "$count records remain of $written; want at most $keys + $active_records (active segment)"
tl_log "$count records of $written remain (active segment $active_records); latest of all $keys keys right; read in $(((t3 - t2) / 1000000)) ms"
tl_log "total $(((t3 - t0) / 1000000)) ms"

tl_stop_broker
"$TL_BIN/tally" log check "$TL_DATA/$topic-0" >"$TL_TMP/check" 2>&1 || {
	cat "$TL_TMP/check" >&2
	tl_fail "tally log check fails on the compacted partition"
}
