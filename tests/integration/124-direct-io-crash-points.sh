#!/usr/bin/env bash
# Direct I/O crash points (issue 22): tallyd writes its segments with O_DIRECT, one round of
# whole 4 KiB blocks at a time that rewrites the block holding the previous round's tail.
# tests/progs/rdk_acked_producer writes numbered records (acks=all, no retries) and logs
# each acknowledged one as "id partition offset" while tallyd runs with the test-only
# switch test.fault.log.crash.point, which makes it SIGKILL itself at one point of a
# random write round: after fallocate with nothing written (1), after writing half of the
# rewritten tail block through the page cache (2: a torn rewrite), after writing all of
# the round but its last block (3), after the whole round but before its fdatasync (4).
# After each self-kill tallyd restarts with the next point; at the end, reading everything
# back:
#   (1) every acknowledged record is at the partition and offset its ack named, once;
#   (2) each partition's offsets run 0,1,2,... with no gap and no garbage: the crash
#       left no byte after the recovered end that a consumer could read;
#   (3) every point was reached (tallyd.log has its crit line).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_acked_producer

# tmpfs (no O_DIRECT) would run the buffered path, where the points never fire.
if ! dd if=/dev/zero of="$TL_TMP/dio-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
	tl_skip "$TL_TMP does not take O_DIRECT"
fi
export TALLY_TEST_FAULTS=1
topic=dio-crash
acked=$TL_TMP/acked
failed=$TL_TMP/failed
count=1000000 # more than it sends: it is stopped once the broker took writes after point 4
rate=8000

lines()
{
	if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

crash_args()
{
	echo --override num.partitions=2 --override log.segment.bytes=262144 \
		--override test.fault.log.crash.point="$1" \
		--override test.fault.log.crash.round=$((20 + RANDOM % 100))
}

# shellcheck disable=SC2046 # word splitting of crash_args is meant
tl_start_broker $(crash_args 1)
"$TL_PROGS/rdk_acked_producer" -b "$TL_BROKER" -t "$topic" -o "$acked" -f "$failed" \
	-n "$count" -p 2 -r "$rate" >"$TL_TMP/producer.out" 2>"$TL_TMP/producer.err" &
producer=$!

for point in 1 2 3 4; do
	deadline=$((SECONDS + 20))
	while tl_broker_alive; do
		[ $SECONDS -lt $deadline ] || tl_fail "tallyd did not reach crash point $point within 20 s"
		sleep 0.05
	done
	rc=0
	wait "$TL_PID" 2>/dev/null || rc=$?
	TL_PID=
	[ $rc -eq 137 ] || tl_fail "tallyd exited with status $rc at crash point $point (want 137, SIGKILL)"
	tl_grep_log "test fault, killing the process point=$point " ||
		tl_fail "tallyd died but not at crash point $point"
	tl_log "point $point: killed after $(lines "$acked") acknowledgements"
	next=$((point + 1))
	[ $next -le 4 ] || next=0
	# shellcheck disable=SC2046
	tl_start_broker $(crash_args $next)
done

# The recovered broker takes writes; then the producer stops (its acks are flushed line
# by line: an ack it had no time to log is only not checked).
want=$(($(lines "$acked") + 4000))
deadline=$((SECONDS + 20))
while [ "$(lines "$acked")" -lt "$want" ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "only $(lines "$acked") of $want acknowledged after the last restart"
	tl_pid_alive "$producer" || tl_fail "producer exited early: $(head -n 5 "$TL_TMP/producer.err")"
	sleep 0.05
done
kill -9 "$producer" 2>/dev/null
wait "$producer" 2>/dev/null || true
tl_log "$(lines "$acked") records acknowledged, $(lines "$failed") failed"

timeout 60 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -X fetch.wait.max.ms=10 \
	-f '%p %o %s\n' >"$TL_TMP/got" || tl_fail "kcat -C failed"
{
	awk '{ split($3, v, ":"); print "S", $1, $2, v[1] }' "$TL_TMP/got"
	awk '{ print "A", $1, $2, $3 }' "$acked"
} | awk '
	$1 == "S" {
		p = $2; o = $3; id = $4; key = p " " o;
		if (key in stored) { print "offset " key " read twice"; bad++ }
		stored[key] = id;
		if (id in where) { print "record " id " stored twice"; bad++ }
		where[id] = key;
		if (!(p in max) || o > max[p]) max[p] = o;
		n[p]++;
		next;
	}
	$1 == "A" {
		key = $3 " " $4; acks++;
		if (!(key in stored)) { print "acknowledged record " $2 " missing at " key; bad++ }
		else if (stored[key] != $2) { print "acknowledged record " $2 " at " key " but " stored[key] " is there"; bad++ }
	}
	bad > 20 { exit 1 }
	END {
		for (p in n)
			if (max[p] + 1 != n[p]) { print "partition " p ": " n[p] " records but last offset " max[p]; bad++ }
		printf "checked %d acknowledgements against %d stored records\n", acks, NR - acks;
		exit bad > 0;
	}' >&2 || tl_fail "acknowledged records lost, moved or duplicated after the crash points"
tl_stop_broker
