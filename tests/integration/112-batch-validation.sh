#!/usr/bin/env bash
# Produce validates every batch's records as Kafka's LogValidator does
# (tests/progs/rawproto.c bad-records): batches whose CRC is right but whose zstd body is
# corrupt or cut short are refused with CORRUPT_MESSAGE, a lying recordsCount or a wrong
# offsetDelta with INVALID_RECORD, and none of them is stored (the end offset stays at
# the good batch's 3; `tally log check` passes and the log holds 3 records). Good
# batches of every codec (kcat -z gzip, snappy, lz4, zstd) pass validation and read back.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rawproto

tl_start_broker
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" bad-records lying >&2 || tl_fail "rawproto bad-records"
for codec in gzip snappy lz4 zstd; do
	seq 1 500 | kcat -P -b "$TL_BROKER" -t "z-$codec" -z "$codec" -X linger.ms=20 ||
		tl_fail "kcat -z $codec: produce failed"
	n=$(timeout 30 kcat -C -q -b "$TL_BROKER" -t "z-$codec" -o beginning -e | wc -l)
	[ "$n" = 500 ] || tl_fail "kcat -z $codec: $n of 500 records read back"
done
tl_stop_broker
"$TL_BIN/tally" log check "$TL_DATA/lying-0" >"$TL_TMP/check" 2>&1 ||
	tl_fail "log check after refused batches: $(cat "$TL_TMP/check")"
records=$("$TL_BIN/tally" log dump "$TL_DATA/lying-0" --records | grep -c 'good-' || true)
[ "$records" = 3 ] || tl_fail "the log holds $records good records, want 3: $("$TL_BIN/tally" log dump "$TL_DATA/lying-0" --records)"
# (Not a pipe: a match with a failed writer, SIGPIPE or dump's own exit 1, would be a pass.)
grep -Eq 'zstd-|count-|delta-' <("$TL_BIN/tally" log dump "$TL_DATA/lying-0" --records) &&
	tl_fail "a refused batch's records are in the log"
true
