#!/usr/bin/env bash
# Log compaction survives a crash in the middle of its swap (issue 17). A compacted topic
# with small segments gets 150 keys written 12 times each while the cleaner is off
# (log.cleaner.enable=false); that data dir is the base. Then for each swap point of
# log.c's "Compaction" section (1: .cleaned written, 2: renamed to .swap, 3: old files
# unlinked, 4: swap renamed to .log, 5: new indexes written, checkpoint not yet), a copy
# of the base is served by a tallyd whose test fault switch (TALLY_TEST_FAULTS=1,
# TALLY_TEST_CLEANER_CRASH_POINT) makes it _exit at that point of its first pass, as a
# kill -9 would. A plain tallyd then restarts on what is left: no .cleaned or .swap file
# may remain, a consumer from offset 0 sees every key's latest value at its original
# offset with offsets increasing, a new record gets the next offset, and after a clean
# stop `tally log check` passes. The base is written uncompressed and, for the compressed
# path (batches that lose records are compressed again with their codec), with lz4 and
# zstd batches: the fast suite runs one (point, codec) pair, make test-long every one.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

keys=150
rounds=12
topic=kv
part=$topic-0
overrides=(--override num.partitions=1 --override log.cleaner.backoff.ms=100)

awk -v keys=$keys -v rounds=$rounds 'BEGIN {
	for (r = 0; r < rounds; r++)
		for (k = 0; k < keys; k++) print "k" k ":v" k "-" r
}' >"$TL_TMP/input"
written=$(wc -l <"$TL_TMP/input")

# make_base CODEC: the data dir written with the cleaner off, kept as base-CODEC.
make_base()
{
	rm -rf "$TL_DATA"
	tl_start_broker "${overrides[@]}" --override log.cleaner.enable=false
	"$TL_BIN/tally" -b "$TL_BROKER" topic create "$topic" -p 1 --config cleanup.policy=compact \
		--config segment.bytes=4096 --config min.cleanable.dirty.ratio=0.1 >/dev/null ||
		tl_fail "topic create failed"
	timeout 60 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -K: -X batch.num.messages=10 \
		-X linger.ms=1 -z "$1" <"$TL_TMP/input" || tl_fail "kcat -P -z $1 failed"
	tl_stop_broker
	if [ "$1" != none ]; then
		# (Captured, not piped to grep -q: see 803.)
		dump=$("$TL_BIN/tally" log dump "$TL_DATA/$part") &&
			grep -q "codec $1" <<<"$dump" ||
			tl_fail "no $1 batch in the base written with kcat -z $1"
	fi
	cp -a "$TL_DATA" "$TL_TMP/base-$1"
}
# Latest per key: "offset key value", by offset.
awk -F: '{ last[$1] = NR - 1; val[$1] = $2 } END { for (k in last) print last[k], k, val[k] }' \
	"$TL_TMP/input" | sort -n >"$TL_TMP/want"

# The fast suite (20 s budget) runs one point after the commit point: 3 (old files gone,
# swap not yet renamed) uncompressed, or 4 (renamed, no index yet) with lz4, by the
# clock's parity, or TL_POINTS and TL_CODECS; all five points with every codec run under
# make test-long. log/tests/cleaner_test.c covers every point on every run.
points=${TL_POINTS:-$((3 + $(date +%s) % 2))}
codecs=${TL_CODECS:-$([ "$points" = 4 ] && echo lz4 || echo none)}
[ "$TL_LONG" = 1 ] && points=${TL_POINTS:-"1 2 3 4 5"} && codecs=${TL_CODECS:-"none lz4 zstd"}
tl_log "crash points: $points; codecs: $codecs"
for codec in $codecs; do
make_base "$codec"
for point in $points; do
	rm -rf "$TL_DATA"
	cp -a "$TL_TMP/base-$codec" "$TL_DATA"
	echo "=== crash point $point codec $codec" >>"$TL_TMP/tallyd.log"
	TALLY_TEST_FAULTS=1 TALLY_TEST_CLEANER_CRASH_POINT=$point tl_start_broker "${overrides[@]}"
	deadline=$((SECONDS + 10))
	while tl_pid_alive "$TL_PID"; do
		[ $SECONDS -lt $deadline ] || tl_fail "point $point: tallyd did not stop at its crash point"
		sleep 0.05
	done
	rc=0
	wait "$TL_PID" 2>/dev/null || rc=$?
	TL_PID=
	[ $rc -eq 86 ] || tl_fail "point $point: tallyd exited with $rc, want 86 (the fault switch)"
	left=$(cd "$TL_DATA/$part" && ls)
	tl_start_broker "${overrides[@]}" --override log.cleaner.enable=false
	# (ls captured: under pipefail, ls killed by SIGPIPE after a match would hide it.)
	if grep -qE '\.(cleaned|swap)$' <<<"$(ls "$TL_DATA/$part")"; then
		tl_fail "point $point: a .cleaned or .swap file survived the restart"
	fi
	echo "k1:new" | timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -K: -X acks=all ||
		tl_fail "point $point: produce failed"
	timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -p 0 -o beginning -e \
		-X fetch.wait.max.ms=10 -f '%o %k %s\n' >"$TL_TMP/got.all" || tl_fail "point $point: kcat -C failed"
	got=$(tail -n 1 "$TL_TMP/got.all")
	[ "$got" = "$written k1 new" ] || tl_fail "point $point: the new record reads \"$got\", want \"$written k1 new\""
	head -n -1 "$TL_TMP/got.all" >"$TL_TMP/got"
	awk 'NR > 1 && $1 <= prev { print "offset " $1 " after " prev; exit 1 } { prev = $1 }' \
		"$TL_TMP/got" || tl_fail "point $point: offsets do not increase"
	awk '{ last[$2] = $0 } END { for (k in last) print last[k] }' "$TL_TMP/got" | sort -n >"$TL_TMP/latest"
	if ! cmp -s "$TL_TMP/want" "$TL_TMP/latest"; then
		# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
		diff "$TL_TMP/want" "$TL_TMP/latest" | head -n 10 >&2 || true
		tl_fail "point $point: latest values differ after the crash"
	fi
	tl_stop_broker
	"$TL_BIN/tally" log check "$TL_DATA/$part" >"$TL_TMP/check" 2>&1 || {
		cat "$TL_TMP/check" >&2
		tl_fail "point $point: tally log check fails"
	}
	tl_log "point $point ($codec): $(wc -l <"$TL_TMP/got") records read; files after the crash: $(echo $left | tr '\n' ' ' | cut -c1-200)"
done
done
