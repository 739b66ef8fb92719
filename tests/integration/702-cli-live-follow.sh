#!/usr/bin/env bash
# tally tail follows live (acceptance 2): started first (from the end, the default), it
# prints records produced afterwards within 1 s, each time; with -g it does so as a group
# member, says on stderr which partition it was assigned and, at exit, revoked, and
# commits, so a second -g ... -e run starts after them; -n stops it; SIGINT
# ends it with 130.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }
now_ms() { date +%s%3N; }

tl_start_broker --override num.partitions=2 --override group.initial.rebalance.delay.ms=0
tally topic create live -p 2
echo old | tally produce live

# Waits until file @1 has @2 lines; fails after 1 s.
wait_lines()
{
	local deadline=$(($(now_ms) + 1000))
	while [ "$(wc -l <"$1")" -lt "$2" ]; do
		[ "$(now_ms)" -lt "$deadline" ] || tl_fail "$1 has $(wc -l <"$1") lines 1 s after producing, want $2"
		sleep 0.02
	done
}

"$TL_BIN/tally" -b "$TL_BROKER" tail live >"$TL_TMP/out" 2>"$TL_TMP/err" &
tail_pid=$!
sleep 1.5 # let it resolve its start (the end) before producing
for i in 1 2 3; do
	echo "live-$i" | tally produce live
	start=$(now_ms)
	wait_lines "$TL_TMP/out" "$i"
	tl_log "record $i shown after $(($(now_ms) - start)) ms"
done
grep -q old "$TL_TMP/out" && tl_fail "tail (from the end) printed a record produced before it started"
kill -INT "$tail_pid"
rc=0
wait "$tail_pid" || rc=$?
[ $rc = 130 ] || tl_fail "tail exited $rc after SIGINT, want 130: $(cat "$TL_TMP/err")"

tl_log "as a group member"
"$TL_BIN/tally" -b "$TL_BROKER" tail live -g followers >"$TL_TMP/gout" 2>"$TL_TMP/gerr" &
tail_pid=$!
deadline=$(($(now_ms) + 10000))
until tally group describe followers --format json 2>/dev/null | grep -q '"assignment":\[{'; do
	[ "$(now_ms)" -lt "$deadline" ] || tl_fail "the group member got no assignment within 10 s"
	sleep 0.1
done
echo g-1 | tally produce live
wait_lines "$TL_TMP/gout" 1
kill -INT "$tail_pid"
wait "$tail_pid" || true
grep -q 'group followers: assigned live \[0,1\]$' "$TL_TMP/gerr" ||
	tl_fail "tail -g did not say which partition it got: $(cat "$TL_TMP/gerr")"
grep -q 'group followers: revoked live \[0,1\]$' "$TL_TMP/gerr" ||
	tl_fail "tail -g did not say its partition went at exit: $(cat "$TL_TMP/gerr")"
echo g-2 | tally produce live
got=$(tally tail live -g followers -e)
[ "$got" = g-2 ] || tl_fail "group resumed at the wrong place: \"$got\" (want g-2)"

tl_log "-n stops after N records"
seq 1 50 | tally produce live
[ "$(tally tail live -o beginning -n 7 | wc -l)" = 7 ] || tl_fail "-n 7 did not print 7"
tl_stop_broker
tl_log "ok"
