#!/usr/bin/env bash
# A consumer reading across an unclean election (KIP-320). Two brokers,
# unclean.leader.election.enable=true, one partition on both. 10 records reach both;
# the follower F is killed and the leader L takes 100 more alone, which `tally tail`
# (libtally) reads: its position is 110. The tail is stopped (SIGSTOP), L is killed, F
# comes back and is elected uncleanly with 10 records, and takes 150 new ones at
# offsets 10-159. The tail resumes: its position 110 is inside F's log, so a consumer
# that fetched from it would print new-101..new-150 and silently skip new-1..new-100.
# libtally asks F where the position's leader epoch ends (OffsetForLeaderEpoch), learns
# 10, and reads from there: every new record exactly once, at its offset; the tail says
# on stderr that the offsets went back, and why.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat

tl_cluster_start 2 --override unclean.leader.election.enable=true
topic=trunc
produce() # PREFIX COUNT ACKS
{
	seq 1 "$2" | sed "s/^/$1-/" | timeout 60 kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -p 0 \
		-X acks="$3" -X message.timeout.ms=30000 || tl_fail "produce $1 failed"
}
lines() { grep -c "$1" "$TL_TMP/tail.out" || true; }
wait_lines() # PATTERN COUNT SECONDS
{
	local deadline=$((SECONDS + $3))
	until [ "$(lines "$1")" -ge "$2" ]; do
		[ $SECONDS -lt $deadline ] || {
			tail -n 5 "$TL_TMP/tail.err" >&2
			tl_fail "tail printed $(lines "$1") lines matching $1, want $2"
		}
		sleep 0.2
	done
}

"$TL_TALLY" topic create "$topic" -p 1 -r 2 -b "$TL_BOOTSTRAP" || tl_fail "create $topic"
tl_cluster_wait_isr "$topic" 1 2 60
l=$(tl_cluster_leader "$topic" 0)
[ -n "$l" ] && [ "$l" -ge 1 ] || tl_fail "no leader"
f=$((3 - l))
produce base 10 all

"$TL_TALLY" tail "$topic" -o beginning -f '%o %v\n' -b "$TL_BOOTSTRAP" \
	-X metadata.max.age.ms=1000 >"$TL_TMP/tail.out" 2>"$TL_TMP/tail.err" &
tail_pid=$!
wait_lines ' base-' 10 30
tl_cbroker_kill9 "$f"
produce old 100 1 # answered once the ISR shrinks to L
wait_lines '^109 old-100$' 1 30

kill -STOP "$tail_pid"
tl_cbroker_kill9 "$l"
tl_cbroker_start "$f"
tl_cluster_wait_leader "$topic" 0 "$f" 30 "broker $f was not elected uncleanly"
produce new 150 all
kill -CONT "$tail_pid"

wait_lines ' new-' 150 60
sleep 1 # nothing more may come
kill "$tail_pid"
wait "$tail_pid" 2>/dev/null || true
grep ' new-' "$TL_TMP/tail.out" >"$TL_TMP/new"
seq 10 159 | paste -d' ' - <(seq 1 150 | sed 's/^/new-/') >"$TL_TMP/want"
cmp -s "$TL_TMP/new" "$TL_TMP/want" || {
	diff "$TL_TMP/want" "$TL_TMP/new" | head -n 10 >&2
	tl_fail "the tail did not print each new record once, at its offset"
}
grep -q 'trunc \[0\]: offsets went back from 109 to 10: the partition.s log was truncated' \
	"$TL_TMP/tail.err" || {
	cat "$TL_TMP/tail.err" >&2
	tl_fail "the tail did not say that the offsets went back"
}
tl_cbroker_stop "$f"
tl_log "ok"
