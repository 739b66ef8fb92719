#!/usr/bin/env bash
# Index files of sealed segments are written without fsync, so a power loss can leave
# one empty or cut short (review r2, r3b). Each ends with a trailer (count, end offset,
# CRC-32C): such a file is bad, `tally log check` says so, and the next open rebuilds it
# from the segment.
#   r2:  an emptied .txnindex of the segment holding an ABORT marker, after an unclean
#        stop: read_committed consumers must still not see the aborted records.
#   r3b: a .timeindex cut to its first entry: the segment's max timestamp must stay its
#        newest record's, so retention.ms does not delete it early.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_txn_copier
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
logcheck() { "$TL_BIN/tally" log check "$@"; }
pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

tl_log "r2: an empty .txnindex after an unclean stop"
tl_start_broker --override num.partitions=1 --override log.segment.bytes=2048
"$TL_PROGS/rdk_txn_copier" abandon "$TL_BROKER" hang txn-hang 2>"$TL_TMP/abandon.log" ||
	tl_fail "abandon: $(tail -3 "$TL_TMP/abandon.log")"
for _ in $(seq 150); do tl_grep_log 'txn: aborted id=txn-hang' && break; sleep 0.1; done
tl_grep_log 'txn: aborted id=txn-hang' || tl_fail "the transaction was not aborted"
seq -f "after-%g-$pad" 1 200 | kcat -P -q -b "$TL_BROKER" -t hang -X acks=all -X batch.num.messages=5
aborted() { kcat -C -q -b "$TL_BROKER" -t hang -e -X isolation.level="$1" -f '%s\n' | grep -vc '^after-' || true; }
rc_before=$(aborted read_committed)
all=$(aborted read_uncommitted)
[ "$all" -gt "$rc_before" ] || tl_fail "no aborted records to hide ($all, $rc_before)"
tl_stop_broker
d=$TL_DATA/hang-0
emptied=0
for f in "$d"/*.txnindex; do
	# Trailer only: 24 bytes. More holds an aborted transaction.
	if [ "$(stat -c %s "$f")" -gt 24 ] && [ "$f" != "$(ls "$d"/*.txnindex | tail -1)" ]; then
		: >"$f"
		emptied=$((emptied + 1))
	fi
done
[ $emptied -ge 1 ] || tl_fail "no sealed segment's .txnindex holds the abort: $(ls -l "$d")"
rc=0
logcheck "$d" >"$TL_TMP/check" || rc=$?
[ $rc -ne 0 ] || tl_fail "log check passed an empty .txnindex"
grep -q 'txnindex: bad trailer: empty' "$TL_TMP/check" || tl_fail "log check: $(cat "$TL_TMP/check")"
rm -f "$d/.clean-shutdown"
tl_start_broker
rc_after=$(aborted read_committed)
tl_stop_broker
[ "$rc_after" = "$rc_before" ] ||
	tl_fail "read_committed sees $rc_after non-'after' records after the restart, $rc_before before"
logcheck "$d" >"$TL_TMP/check" || tl_fail "log check after the rebuild: $(cat "$TL_TMP/check")"

tl_log "r3b: a .timeindex cut short after an unclean stop"
ret=9000
tl_start_broker --override num.partitions=1 --override log.segment.bytes=16384 \
	--override log.index.interval.bytes=200
t0=$(date +%s)
gen() { seq -f "$1-%g-$pad" 1 "$2"; }
gen early 60 | kcat -P -q -b "$TL_BROKER" -t rt -X acks=all -X batch.num.messages=10
sleep 5
gen late 60 | kcat -P -q -b "$TL_BROKER" -t rt -X acks=all -X batch.num.messages=10
gen next 200 | kcat -P -q -b "$TL_BROKER" -t rt -X acks=all -X batch.num.messages=10
n1=$(kcat -C -q -b "$TL_BROKER" -t rt -e -f '%o\n' | wc -l)
tl_stop_broker
d=$TL_DATA/rt-0
f=$d/00000000000000000000.timeindex
[ "$(stat -c %s "$f")" -gt $((2 * 12 + 24)) ] || tl_fail "$f has too few entries"
truncate -s 12 "$f"
rc=0
logcheck "$d" >"$TL_TMP/check" || rc=$?
[ $rc -ne 0 ] || tl_fail "log check passed a cut .timeindex"
grep -q 'timeindex: bad trailer' "$TL_TMP/check" || tl_fail "log check: $(cat "$TL_TMP/check")"
rm -f "$d/.clean-shutdown"
tl_start_broker --override log.retention.ms=$ret
# Segment 0's newest record is ~t0+5 s: it lives until ~t0+14 s; the first entry alone
# (~t0) would have it deleted at ~t0+9 s.
while [ "$(date +%s)" -lt $((t0 + 12)) ]; do sleep 0.5; done
n2=$(kcat -C -q -b "$TL_BROKER" -t rt -e -o beginning -f '%o\n' | wc -l)
tl_stop_broker
[ "$n2" = "$n1" ] || tl_fail "retention deleted records inside retention after the restart ($n2 of $n1 left)"
tl_grep_log 'bad index file, rebuilding it' || tl_fail "no rebuild logged"
"$TL_BIN/tally" log dump "$f" | grep -q '^trailer: [0-9]* entries, segment end offset [0-9]*, CRC-32C ok$' ||
	tl_fail "dump: $("$TL_BIN/tally" log dump "$f")"
logcheck "$TL_DATA" >"$TL_TMP/check" || tl_fail "log check after the rebuild: $(cat "$TL_TMP/check")"
tl_log "ok"
