#!/usr/bin/env bash
# kcat round trip: 100,000 keyed records with headers into an auto-created 3-partition
# topic, read back byte-exact. Checks: kcat -L lists 3 partitions; every record comes
# back once with its key, value and headers; each partition's offsets run 0,1,2,...
# with no gap and hold their records in send order; all records of a key share a
# partition. 102-kcat-roundtrip-sync.sh runs this file again with TALLY_IO_ENGINE=sync.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

count=100000
[ "$TL_LONG" = 1 ] && count=1000000
topic=kcat-roundtrip

tl_start_broker --override num.partitions=3
# The engine this run claims to test must be the one tallyd runs: sync when asked for,
# else io_uring (skipped where the kernel refuses io_uring, failed in CI then).
if [ "${TALLY_IO_ENGINE:-}" = sync ]; then
	tl_grep_log 'disk I/O engine=sync' || tl_fail "TALLY_IO_ENGINE=sync but tallyd did not pick the sync engine"
elif ! tl_grep_log 'disk I/O engine=io_uring'; then
	if tl_grep_log 'io_uring_queue_init failed'; then
		tl_stop_broker
		tl_skip "io_uring is unavailable here: $(grep -o 'io_uring_queue_init failed.*' <(tl_log_text "$TL_TMP/tallyd.log") | head -n 1)"
	fi
	tl_fail "tallyd did not run the io_uring engine: $(grep -o 'disk I/O engine=.*' <(tl_log_text "$TL_TMP/tallyd.log") | tail -n 1)"
fi
tl_log "$(grep -o 'disk I/O engine=.*' <(tl_log_text "$TL_TMP/tallyd.log") | tail -n 1)"

# Record i: key "key-<i % 61>", value "<i>~" plus 1..200 printable bytes (no tab,
# backslash or newline), with ':' among them: only the first ':' splits key and value.
awk -v n=$count 'BEGIN {
	srand(7);
	for (i = 0; i < n; i++) {
		len = 1 + int(rand() * 200);
		v = "";
		for (j = 0; j < len; j++) {
			c = 32 + int(rand() * 95);
			if (c == 92) c = 58;
			v = v sprintf("%c", c);
		}
		printf "key-%d:%d~%s\n", i % 61, i, v;
	}
}' >"$TL_TMP/sent"

tl_log "producing $count records"
timeout 240 kcat -P -b "$TL_BROKER" -t "$topic" -K: -H trace=abc -H app=tally -X acks=all \
	-l "$TL_TMP/sent" 2>"$TL_TMP/produce.err" || { cat "$TL_TMP/produce.err" >&2; tl_fail "kcat -P failed"; }
if grep -Eq 'ERROR|Delivery failed' "$TL_TMP/produce.err"; then
	cat "$TL_TMP/produce.err" >&2
	tl_fail "kcat -P reported errors"
fi

timeout 30 kcat -L -b "$TL_BROKER" -t "$topic" >"$TL_TMP/meta"
grep -q "topic \"$topic\" with 3 partitions:" "$TL_TMP/meta" || { cat "$TL_TMP/meta" >&2; tl_fail "kcat -L does not list $topic with 3 partitions"; }

tl_log "consuming"
timeout 240 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -f '%p\t%o\t%h\t%k:%s\n' >"$TL_TMP/got" ||
	tl_fail "kcat -C failed"

got=$(wc -l <"$TL_TMP/got")
[ "$got" -eq "$count" ] || tl_fail "consumed $got records, want $count"

# Byte-exact: the multiset of key:value lines read equals the one sent.
cut -f4- "$TL_TMP/got" | LC_ALL=C sort >"$TL_TMP/got.sorted"
LC_ALL=C sort "$TL_TMP/sent" >"$TL_TMP/sent.sorted"
cmp -s "$TL_TMP/sent.sorted" "$TL_TMP/got.sorted" || {
	# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
	diff "$TL_TMP/sent.sorted" "$TL_TMP/got.sorted" | head -n 10 >&2 || true
	tl_fail "records read back differ from those sent"
}

# Headers, partition offsets and per-partition order.
LC_ALL=C sort -t "$(printf '\t')" -k1,1n -k2,2n "$TL_TMP/got" | awk -F'\t' '
	$3 != "trace=abc,app=tally" { print "offset " $2 " of partition " $1 ": headers \"" $3 "\""; bad++; next }
	{
		p = $1; o = $2;
		if (!(p in next_offset)) next_offset[p] = 0;
		if (o != next_offset[p]) { print "partition " p ": offset " o ", want " next_offset[p]; bad++ }
		next_offset[p] = o + 1;
		split($4, kv, ":"); key = kv[1];
		split(substr($4, length(key) + 2), iv, "~"); i = iv[1] + 0;
		if ((p in last) && i <= last[p]) { print "partition " p ": record " i " after " last[p]; bad++ }
		last[p] = i;
		if ((key in part) && part[key] != p) { print "key " key " on partitions " part[key] " and " p; bad++ }
		part[key] = p;
	}
	bad > 10 { exit 1 }
	END {
		n = 0; for (p in next_offset) n++;
		if (n != 3) { print "records on " n " partitions, want 3"; bad++ }
		exit bad > 0;
	}' >&2 || tl_fail "partition order or headers wrong"

tl_stop_broker
tl_log "ok: $count records"
