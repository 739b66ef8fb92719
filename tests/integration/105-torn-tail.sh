#!/usr/bin/env bash
# Torn tail: recovery after the last segment file was cut short or garbled.
# Produces a few hundred batches (plain and gzip'ed) into a 1-partition topic with small
# segments, stops tallyd cleanly and keeps that data dir as the base. Then, ITERATIONS
# times (40; 500 under make test-long): copy the base, damage the last segment's .log at a random position -
# truncate it there, or XOR 1-8 bytes there with random non-zero bytes - delete
# .clean-shutdown, and start tallyd on the copy. It must start; serve exactly the records
# of every batch that lies wholly before the damage (earlier segments included), byte
# for byte; append a new record at the next offset; and stop with exit status 0.
# Garbling skips the baseOffset and partitionLeaderEpoch fields, which the batch CRC
# does not cover (damage there is not detectable from that batch alone).
# TL_SEED=N replays a run (TL_ITERATIONS=N sets the count); each iteration notes what it
# did in tallyd.log.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

iterations=${TL_ITERATIONS:-40}
[ "$TL_LONG" = 1 ] && iterations=${TL_ITERATIONS:-500}
seed=${TL_SEED:-$(($(date +%s) % 100000))}
RANDOM=$seed
topic=torn
tl_log "seed=$seed iterations=$iterations"

tl_start_broker --override num.partitions=1 --override log.segment.bytes=16384
seq -f 'plain-%g-abcdefghijklmnopqrstuvwxyz' 1 1500 |
	timeout 60 kcat -P -q -b "$TL_BROKER" -t "$topic" -X batch.num.messages=7 || tl_fail "kcat -P failed"
seq -f 'gzip-%g-abcdefghijklmnopqrstuvwxyz' 1 1500 |
	timeout 60 kcat -P -q -b "$TL_BROKER" -t "$topic" -z gzip -X batch.num.messages=11 || tl_fail "kcat -P failed"
timeout 60 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -X fetch.wait.max.ms=10 -f '%o %s\n' >"$TL_TMP/ref" ||
	tl_fail "kcat -C failed"
[ "$(wc -l <"$TL_TMP/ref")" -eq 3000 ] || tl_fail "read $(wc -l <"$TL_TMP/ref") records before any damage, want 3000"
tl_stop_broker

cp -a "$TL_DATA" "$TL_TMP/base"
part_dir=$topic-0
last=$(cd "$TL_TMP/base/$part_dir" && ls -- *.log | LC_ALL=C sort | tail -n 1)
segments=$(cd "$TL_TMP/base/$part_dir" && ls -- *.log | wc -l)
[ "$segments" -ge 2 ] || tl_fail "want several segments, have $segments"
size=$(stat -c %s "$TL_TMP/base/$part_dir/$last")
[ "$size" -gt 0 ] || tl_fail "last segment $last is empty"

# Batches of the last segment: "start end base_offset" (end = start + 12 + batchLength).
od -An -v -tu1 "$TL_TMP/base/$part_dir/$last" | awk '
	{ for (i = 1; i <= NF; i++) b[n++] = $i }
	END {
		pos = 0;
		while (pos + 12 <= n) {
			base = 0; for (i = 0; i < 8; i++) base = base * 256 + b[pos + i];
			len = 0; for (i = 8; i < 12; i++) len = len * 256 + b[pos + i];
			print pos, pos + 12 + len, base;
			pos += 12 + len;
		}
		if (pos != n) { print "segment does not end on a batch boundary" > "/dev/stderr"; exit 1 }
	}' >"$TL_TMP/batches" || tl_fail "cannot parse $last"
tl_log "$segments segments; last $last: $size bytes, $(wc -l <"$TL_TMP/batches") batches"

# Prints "start base_offset" of the batch holding byte @1 of the last segment.
batch_at()
{
	awk -v x="$1" '$1 <= x && x < $2 { print $1, $3; exit }' "$TL_TMP/batches"
}

# XORs @3 bytes of file @1 from position @2 with random non-zero bytes.
garble()
{
	local file=$1 pos=$2 n=$3 esc="" b
	for b in $(od -An -v -tu1 -j "$pos" -N "$n" "$file"); do
		esc+=$(printf '\\x%02x' $((b ^ (1 + RANDOM % 255))))
	done
	printf "$esc" | dd of="$file" bs=1 seek="$pos" conv=notrunc status=none
}

for it in $(seq 1 "$iterations"); do
	rm -rf "$TL_DATA"
	cp -a "$TL_TMP/base" "$TL_DATA"
	rm -f "$TL_DATA/$part_dir/.clean-shutdown"
	file=$TL_DATA/$part_dir/$last
	pos=$(((RANDOM * 32768 + RANDOM) % size))
	read -r start expect < <(batch_at "$pos")
	if [ $((RANDOM % 2)) -eq 0 ]; then
		# On a batch boundary now and then: then nothing before it may be lost.
		[ $((RANDOM % 8)) -eq 0 ] && pos=$start
		truncate -s "$pos" "$file"
		what="truncate at $pos"
	else
		rel=$((pos - start))
		if [ $rel -lt 8 ]; then
			pos=$((start + 8))
		elif [ $rel -ge 12 ] && [ $rel -lt 16 ]; then
			pos=$((start + 16))
		fi
		n=$((1 + RANDOM % 8))
		[ $((pos + n)) -le "$size" ] || n=$((size - pos))
		garble "$file" "$pos" "$n"
		what="garble $n bytes at $pos"
	fi
	# Into tallyd.log, whose tail a failure prints, and now and then to the test's output.
	note="iteration $it: $last: $what (batch at $start), expect offsets 0..$((expect - 1))"
	echo "=== $note" >>"$TL_TMP/tallyd.log"
	[ $((it % 25)) -eq 1 ] && tl_log "$note"

	tl_start_broker
	echo "new-$it" | timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -X acks=all ||
		tl_fail "iteration $it: produce after recovery failed"
	timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -X fetch.wait.max.ms=10 -f '%o %s\n' >"$TL_TMP/got" ||
		tl_fail "iteration $it: kcat -C failed"
	{
		head -n "$expect" "$TL_TMP/ref"
		echo "$expect new-$it"
	} >"$TL_TMP/want"
	if ! cmp -s "$TL_TMP/want" "$TL_TMP/got"; then
		# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
		diff "$TL_TMP/want" "$TL_TMP/got" | head -n 10 >&2 || true
		tl_fail "iteration $it ($what; seed $seed): read $(wc -l <"$TL_TMP/got") records, want $((expect + 1))"
	fi
	tl_stop_broker
done
tl_log "ok: $iterations iterations"
