#!/usr/bin/env bash
# Committed offsets are durable: a librdkafka consumer (tests/progs/rdk_group) reads
# part of a 4-partition topic and commits synchronously (the broker answers once the
# commit's batch in __consumer_offsets is fsynced), then closes. Checks:
#   (1) OffsetFetch returns exactly what the consumer committed: its own positions at
#       the commit (rdk_group's "position" lines), not a read-back of the broker;
#   (2) a restarted consumer resumes at exactly the committed offset of every partition;
#   (3) after tallyd is killed with kill -9 and restarted, the offsets are still there
#       and the next consumer again resumes exactly after the last commit;
#   (4) after a clean stop and start as well;
#   (5) over all runs every record is read exactly once.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_group

topic=grp-commit
group=grp-commit-g
count=400
tl_start_broker --override num.partitions=4 --override group.initial.rebalance.delay.ms=0
seq 1 "$count" | sed 's/^/v/' | kcat -P -b "$TL_BROKER" -t "$topic" 2>"$TL_TMP/produce.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/produce.err")"

run=0
consume() # [rdk_group args...]: one consumer run; its output is $TL_TMP/run<N>.out
{
	run=$((run + 1))
	timeout 60 "$TL_PROGS/rdk_group" consume -b "$TL_BROKER" -g "$group" -t "$topic" "$@" \
		>"$TL_TMP/run$run.out" 2>"$TL_TMP/run$run.err" ||
		tl_fail "consumer run $run failed: $(tail -n 5 "$TL_TMP/run$run.err")"
	tl_log "run $run: $(grep -c '^record ' "$TL_TMP/run$run.out") records," \
		"committed $(awk '$1 == "committed" { printf "%s:%s ", $2, $3 }' "$TL_TMP/run$run.out")"
}

# "P OFFSET" per partition with a commit, sorted; from a run's output or from OffsetFetch.
commits_of() { awk '$1 == "committed" && $3 >= 0 { print $2, $3 }' "$1" | sort; }
# "P OFFSET" per partition the consumer had a position on when it committed, sorted.
positions_of() { awk '$1 == "position" && $3 >= 0 { print $2, $3 }' "$1" | sort; }
fetched()
{
	"$TL_PROGS/rdk_group" committed -b "$TL_BROKER" -g "$group" -t "$topic" -p 4 \
		>"$TL_TMP/fetched" 2>"$TL_TMP/fetched.err" ||
		tl_fail "OffsetFetch failed: $(cat "$TL_TMP/fetched.err")"
	commits_of "$TL_TMP/fetched"
}

# Every partition in run N's records starts at the offset committed before it (run
# N-1's commit, or 0 without one).
check_resume() # N
{
	local n=$1 prev=$TL_TMP/run$(($1 - 1)).out
	awk -v prev="$prev" '
		BEGIN { while ((getline line < prev) > 0) { split(line, f, " ");
			if (f[1] == "committed" && f[3] >= 0) want[f[2]] = f[3] } }
		$1 == "record" && !($2 in first) { first[$2] = $3 }
		END { for (p in first) { w = (p in want) ? want[p] : 0;
			if (first[p] != w) { print "partition " p ": resumed at " first[p] ", committed " w; bad = 1 } }
			exit bad }' "$TL_TMP/run$n.out" >&2 || tl_fail "run $n did not resume at the committed offsets"
}

consume -n 100
positions_of "$TL_TMP/run1.out" >"$TL_TMP/want1"
[ -s "$TL_TMP/want1" ] || tl_fail "run 1 committed nothing"
fetched >"$TL_TMP/got1"
# Every partition the consumer had a position on is fetched at exactly that offset.
[ -z "$(comm -23 "$TL_TMP/want1" "$TL_TMP/got1")" ] ||
	tl_fail "OffsetFetch after run 1: $(cat "$TL_TMP/got1"), committed $(cat "$TL_TMP/want1")"

# (2) consumer restart
consume -n 100
check_resume 2

# (3) kill -9 right after the commit was acknowledged
tl_kill9_broker
tl_start_broker
fetched >"$TL_TMP/got2"
positions_of "$TL_TMP/run2.out" >"$TL_TMP/want2"
[ -s "$TL_TMP/want2" ] && [ -z "$(comm -23 "$TL_TMP/want2" "$TL_TMP/got2")" ] ||
	tl_fail "after kill -9: OffsetFetch $(cat "$TL_TMP/got2"), committed $(cat "$TL_TMP/want2")"
tl_grep_log 'coordinator loaded groups=[1-9]' || tl_fail "tallyd did not reload the group on restart"
consume -n 100
check_resume 3

# (4) clean restart
tl_stop_broker
tl_start_broker
consume -I 4000
check_resume 4

# (5) exactly once over the four runs
cat "$TL_TMP"/run[1-4].out | awk '$1 == "record" { print $4 }' | sort >"$TL_TMP/seen"
# (sed -n, not head: it reads all its input, so a long list cannot SIGPIPE the writer and
# end the test under set -e before tl_fail says why)
dups=$(uniq -d "$TL_TMP/seen" | sed -n 1,3p | paste -sd' ' -)
[ -z "$dups" ] || tl_fail "records read twice: $dups"
seen=$(wc -l <"$TL_TMP/seen")
[ "$seen" -eq "$count" ] || tl_fail "read $seen distinct records over all runs, want $count"
tl_stop_broker
tl_log "ok: $count records over 4 runs, resumed exactly at the commits"
