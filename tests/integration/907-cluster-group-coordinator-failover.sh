#!/usr/bin/env bash
# Group coordinator failover: __consumer_offsets is a replicated topic (replication
# factor 3 here) and a group's coordinator is the leader of the group's partition of it.
#   (1) a librdkafka consumer (tests/progs/rdk_group) reads part of a 4-partition topic
#       and commits synchronously, then leaves;
#   (2) a second consumer joins and reads the rest, then waits; the coordinator's
#       broker is killed with kill -9 while it is a member;
#   (3) a new coordinator (the new leader of that offsets partition, which loaded the
#       group from its replica of the log) answers OffsetFetch with the offsets of (1);
#   (4) the live consumer keeps its membership at the new coordinator (the group came
#       back Stable with its members, as in Kafka); a second consumer joins there, the
#       group rebalances on the new coordinator (both get new assignments), they read
#       the records produced after the kill, commit there, and leave;
#   (5) a third consumer, after the killed broker is back, reads nothing new;
#   (6) over all runs every record is read, none twice below an offset committed before
#       it was read again.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat python3
tl_require_prog rdk_group

topic=gcf
group=gcf-group
offsets_partitions=4
tl_cluster_start 3 --override "offsets.topic.num.partitions=$offsets_partitions" \
	--override group.initial.rebalance.delay.ms=0
"$TL_TALLY" topic create "$topic" --partitions 4 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 4 3
seq 1 1000 | sed 's/^/a/' | kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -X acks=all 2>"$TL_TMP/kcat.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/kcat.err")"

# The offsets partition of the group: abs(Java String.hashCode) % partitions, as Kafka.
gpart=$(python3 -c '
import sys
h = 0
for ch in sys.argv[1]:
    h = (31 * h + ord(ch)) & 0xffffffff
h = h - (1 << 32) if h >= 1 << 31 else h
print((0 if h == -(1 << 31) else abs(h)) % int(sys.argv[2]))' "$group" "$offsets_partitions")

consume() # RUN [rdk_group args...]
{
	local run=$1
	shift
	timeout 90 "$TL_PROGS/rdk_group" consume -b "$TL_BOOTSTRAP" -g "$group" -t "$topic" -s 6000 "$@" \
		>"$TL_TMP/run$run.out" 2>"$TL_TMP/run$run.err"
}
commits_of() { awk '$1 == "committed" && $3 >= 0 { print $2, $3 }' "$1" | sort; }
positions_of() { awk '$1 == "position" && $3 >= 0 { print $2, $3 }' "$1" | sort; }
fetched()
{
	"$TL_PROGS/rdk_group" committed -b "$TL_BOOTSTRAP" -g "$group" -t "$topic" -p 4 |
		awk '$3 >= 0 { print $2, $3 }' | sort
}

# (1)
consume 1 -n 400 || tl_fail "consumer run 1 failed: $(tail -n 5 "$TL_TMP/run1.err")"
[ "$(grep -c '^record ' "$TL_TMP/run1.out")" -ge 400 ] || tl_fail "run 1 read fewer than 400 records"
positions_of "$TL_TMP/run1.out" >"$TL_TMP/pos1"
[ -s "$TL_TMP/pos1" ] || tl_fail "run 1 committed nothing"
fetched >"$TL_TMP/fetch1"
diff "$TL_TMP/pos1" "$TL_TMP/fetch1" >&2 || tl_fail "OffsetFetch differs from run 1's positions"

coordinator=$(tl_cluster_leader __consumer_offsets "$gpart")
[ -n "$coordinator" ] && [ "$coordinator" -ge 1 ] || tl_fail "no leader for __consumer_offsets-$gpart"
tl_cluster_wait_isr __consumer_offsets "$offsets_partitions" 3
tl_log "group $group: offsets partition $gpart, coordinator broker $coordinator"
tl_cgrep "$coordinator" "group: coordinating partition=$gpart " ||
	tl_fail "broker $coordinator did not log that it coordinates partition $gpart"

# (2)
consume 2 -I 25000 &
live=$!
deadline=$(($(date +%s) + 60))
reads() { grep -c '^record ' "$TL_TMP/run2.out" 2>/dev/null || true; }
until [ "$(reads)" -ge 600 ]; do
	tl_pid_alive "$live" || tl_fail "consumer run 2 exited early: $(tail -n 5 "$TL_TMP/run2.err")"
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "run 2 did not read the remaining 600 records in 60 s"
	sleep 0.1
done
tl_log "run 2 read the rest; kill -9 of the coordinator, broker $coordinator"
tl_cbroker_kill9 "$coordinator"

# (3)
deadline=$(($(date +%s) + 30))
while :; do
	leader=$(tl_cluster_leader __consumer_offsets "$gpart")
	[ -n "$leader" ] && [ "$leader" != "$coordinator" ] && [ "$leader" -ge 1 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "__consumer_offsets-$gpart has no new leader 30 s after the kill"
	sleep 0.2
done
tl_log "new coordinator: broker $leader"
tl_cwait_log "$leader" "group: coordinating partition=$gpart " 20 \
	"broker $leader did not load partition $gpart"

# (4) A second member joins at the new coordinator: a rebalance there.
consume 4 -I 15000 &
second=$!
deadline=$(($(date +%s) + 30))
until [ "$(grep -c '^assigned ' "$TL_TMP/run2.out")" -ge 2 ]; do
	tl_pid_alive "$live" || tl_fail "consumer run 2 exited early: $(tail -n 5 "$TL_TMP/run2.err")"
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "the group did not rebalance at the new coordinator"
	sleep 0.1
done
tl_cgrep "$leader" "rebalance complete group=$group" || tl_fail "broker $leader did not run the rebalance"
seq 1 200 | sed 's/^/b/' | kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -X acks=all 2>"$TL_TMP/kcat.err" ||
	tl_fail "kcat -P after the failover failed: $(cat "$TL_TMP/kcat.err")"
rc=0
wait "$live" || rc=$?
[ $rc -eq 0 ] || tl_fail "consumer run 2 failed across the failover (exit $rc): $(tail -n 5 "$TL_TMP/run2.err")"
rc=0
wait "$second" || rc=$?
[ $rc -eq 0 ] || tl_fail "consumer run 4 failed (exit $rc): $(tail -n 5 "$TL_TMP/run4.err")"
grep -q '^assigned [1-9]' "$TL_TMP/run4.out" || tl_fail "the second consumer got no partitions"
# (grep reads the files itself: `cat | grep -q` fails under pipefail when grep exits
# before cat has written the second file.)
grep -q '^record [0-9]* [0-9]* b200$' "$TL_TMP/run2.out" "$TL_TMP/run4.out" ||
	tl_fail "the consumers did not read the records produced after the failover"

# (5)
tl_cbroker_start "$coordinator"
consume 3 -I 5000 || tl_fail "consumer run 3 failed: $(tail -n 5 "$TL_TMP/run3.err")"
[ "$(grep -c '^record ' "$TL_TMP/run3.out")" -eq 0 ] ||
	tl_fail "run 3 read records below the committed offsets: $(grep '^record ' "$TL_TMP/run3.out" | head -n 3)"

# (6) Every record read; a record read twice only at or past run 1's commit (run 2 may
# reread what it had not committed when its coordinator died), never below it.
cat "$TL_TMP"/run[1234].out | awk '$1 == "record" { print $4 }' | sort >"$TL_TMP/all"
total=$(sort -u "$TL_TMP/all" | wc -l)
[ "$total" -eq 1200 ] || tl_fail "read $total distinct records, expected 1200"
cat "$TL_TMP/run2.out" "$TL_TMP/run4.out" >"$TL_TMP/run24"
awk 'NR == FNR { c[$1] = $2; next } $1 == "record" && $3 < c[$2] { print; bad = 1 } END { exit bad }' \
	"$TL_TMP/pos1" "$TL_TMP/run24" >&2 || tl_fail "runs 2 and 4 reread records below run 1's committed offsets"
fetched >"$TL_TMP/fetch_end"
awk '{ n += $2 } END { print n }' "$TL_TMP/fetch_end" | grep -qx 1200 ||
	tl_fail "committed offsets at the end do not cover all 1200 records: $(tr '\n' ' ' <"$TL_TMP/fetch_end")"
tl_log "ok: $(wc -l <"$TL_TMP/all") reads of 1200 records; coordinator moved $coordinator -> $leader"
