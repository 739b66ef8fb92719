#!/usr/bin/env bash
# Open finishes every interrupted compaction swap, however many (review of log
# compaction, finding 7). A pass that swaps in more than 1024 groups and dies after its
# commit point leaves that many `<base>.<end>.swap` files; open used to finish only the
# first 1024 it listed and leave the rest, which a later open would apply to segments
# later passes had rewritten. Here 1100 segments each get a .swap copy of themselves
# (as a pass whose groups changed nothing would leave them): after a restart none is
# left, the records read back whole and `tally log check` passes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_keyed_producer

topic=swaps
n=1100
tl_start_broker --override num.partitions=1 --override log.cleaner.enable=false
"$TL_BIN/tally" -b "$TL_BROKER" topic create $topic -p 1 --config cleanup.policy=compact \
	--config segment.bytes=100 >/dev/null || tl_fail "topic create failed"
for i in $(seq 0 $((n - 1))); do echo "k$i v$i"; done |
	timeout 120 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" $topic >/dev/null ||
	tl_fail "produce failed"
tl_stop_broker
dir=$TL_DATA/$topic-0
for f in "$dir"/*.log; do
	base=$(basename "$f" .log)
	next=$(printf %020d $((10#$base + 1)))
	[ -e "$dir/$next.log" ] || continue # the active segment is never swapped
	cp "$f" "$dir/$base.$next.swap"
done
swaps=$(find "$dir" -name '*.swap' | wc -l)
[ "$swaps" -gt 1024 ] || tl_fail "only $swaps .swap files made"
# Finishing 1100 swaps (each a rename and a directory fsync) takes seconds: more on a
# loaded machine than the default start timeout.
TL_START_TIMEOUT_S=90 tl_start_broker --override num.partitions=1 --override log.cleaner.enable=false
left=$(find "$dir" -name '*.swap' | wc -l)
[ "$left" = 0 ] || tl_fail "$left of $swaps .swap files left after open"
got=$(timeout 60 kcat -C -q -b "$TL_BROKER" -t $topic -p 0 -o beginning -e -f '%o\n' | wc -l)
[ "$got" = $n ] || tl_fail "read $got records of $n"
tl_stop_broker
"$TL_BIN/tally" log check "$dir" >"$TL_TMP/check" 2>&1 || {
	cat "$TL_TMP/check" >&2
	tl_fail "tally log check fails after the swaps"
}
tl_log "open finished all $swaps interrupted swaps"
