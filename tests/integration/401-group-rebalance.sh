#!/usr/bin/env bash
# Consumer group rebalances: two librdkafka consumers (tests/progs/rdk_group) in one
# group on a 4-partition topic split its partitions 2 and 2, disjoint. Then:
#   (1) one leaves (SIGTERM: rd_kafka_consumer_close sends LeaveGroup): the other owns
#       all 4 well within the rebalance timeout (max.poll.interval.ms=20000);
#   (2) it joins again and the split comes back;
#   (3) it is killed with kill -9 (no LeaveGroup): the other owns all 4 once the
#       broker expires its session (session.timeout.ms=6000), not before about 6 s and
#       within 6 s + two heartbeat intervals + slack;
#   (4) a static member (group.instance.id) that restarts within its session timeout
#       gets its partitions back without a rebalance of the group (KIP-345).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_group

topic=grp-rebalance
group=grp-rebalance-g
tl_start_broker --override num.partitions=4 --override group.initial.rebalance.delay.ms=0
seq 1 40 | kcat -P -b "$TL_BROKER" -t "$topic" 2>"$TL_TMP/produce.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/produce.err")"

start_consumer() # NAME [args...]
{
	local name=$1
	shift
	"$TL_PROGS/rdk_group" consume -b "$TL_BROKER" -g "$group" -t "$topic" -s 6000 "$@" \
		>"$TL_TMP/$name.out" 2>"$TL_TMP/$name.err" &
	eval "pid_$name=$!"
}

# The partitions of NAME's last assignment, sorted, comma-separated ("" before any).
owned()
{
	awk '$1 == "assigned" { last = $3 } $1 == "revoked" { last = "" } END { print last }' \
		"$TL_TMP/$1.out" | tr ',' '\n' | sort | paste -sd, -
}

count_owned()
{
	local o
	o=$(owned "$1")
	if [ -z "$o" ]; then echo 0; else tr ',' '\n' <<<"$o" | wc -l; fi
}

wait_for() # SECONDS WHAT COMMAND...
{
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$(($(date +%s%N) + limit * 1000000000))
	until "$@"; do
		[ "$(date +%s%N)" -lt "$deadline" ] || tl_fail "not within ${limit}s: $what"
		sleep 0.05
	done
}

owns() { [ "$(count_owned "$1")" -eq "$2" ]; }
split_2_2()
{
	owns a 2 && owns b 2 || return 1
	local all
	all=$( (owned a | tr ',' '\n'; owned b | tr ',' '\n') | sort -u | wc -l)
	[ "$all" -eq 4 ]
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

start_consumer a
wait_for 20 "consumer a owns all 4 partitions" owns a 4
start_consumer b
wait_for 25 "the group splits 2+2 between a and b" split_2_2
tl_log "split: a=$(owned a) b=$(owned b)"

# (1) b leaves.
t0=$(date +%s%N)
kill -TERM "$pid_b"
wait_for 15 "a owns all 4 after b left" owns a 4
leave_ms=$(ms_since "$t0")
wait "$pid_b" || tl_fail "consumer b exited with an error after SIGTERM: $(cat "$TL_TMP/b.err")"
grep -q '^done ' "$TL_TMP/b.out" || tl_fail "consumer b did not close cleanly"
tl_log "after LeaveGroup a owns $(owned a) in ${leave_ms} ms"

# (2) b comes back.
start_consumer b
wait_for 25 "the group splits 2+2 again" split_2_2

# (3) b dies without leaving.
t0=$(date +%s%N)
kill -9 "$pid_b"
wait "$pid_b" 2>/dev/null || true
wait_for 20 "a owns all 4 after b was killed" owns a 4
kill_ms=$(ms_since "$t0")
tl_log "after kill -9 a owns $(owned a) in ${kill_ms} ms"
[ "$kill_ms" -ge 4500 ] || tl_fail "a took over after ${kill_ms} ms, before b's 6 s session could expire"
[ "$kill_ms" -le 12000 ] || tl_fail "a took over after ${kill_ms} ms, want at most 12000 (session timeout 6000)"
tl_grep_log 'member session expired group=grp-rebalance-g' || tl_fail "tallyd did not log the session expiry"

kill -TERM "$pid_a"
wait "$pid_a" || tl_fail "consumer a failed: $(cat "$TL_TMP/a.err")"

# (4) Static membership: a restart within the session keeps the assignment.
group=grp-static-g
start_consumer a -i static-a
wait_for 20 "static consumer a owns all 4" owns a 4
start_consumer b -i static-b
wait_for 25 "static members split 2+2" split_2_2
before=$(owned b)
gen_lines=$(grep -c 'rebalance complete group=grp-static-g' <(tl_log_text "$TL_TMP/tallyd.log"))
kill -9 "$pid_b"
wait "$pid_b" 2>/dev/null || true
start_consumer b -i static-b
wait_for 15 "restarted static member b is assigned" owns b 2
[ "$(owned b)" = "$before" ] || tl_fail "static member b got $(owned b), had $before"
owns a 2 || tl_fail "static member a lost partitions when b restarted: $(owned a)"
now_lines=$(grep -c 'rebalance complete group=grp-static-g' <(tl_log_text "$TL_TMP/tallyd.log"))
[ "$now_lines" -eq "$gen_lines" ] ||
	tl_fail "the static member's restart caused a rebalance ($gen_lines -> $now_lines generations)"
tl_grep_log 'static member returned group=grp-static-g instance=static-b' ||
	tl_fail "tallyd did not log the static member's return"
kill -TERM "$pid_a" "$pid_b"
wait "$pid_a" || true
wait "$pid_b" || true
tl_stop_broker
tl_log "ok: leave ${leave_ms} ms, kill -9 ${kill_ms} ms"
