#!/usr/bin/env bash
# check.sh - runs spin on replication/model/replication.pml (make model; test 911):
#   the protocol as Tally runs it (truncation by leader epoch, producer dedupe) must
#   pass every assertion in its whole state space;
#   -DTRUNCATE_BY_HW (the KIP-101 bug) must give a counterexample;
#   -DNO_DEDUPE (no producer sequence check) must give a counterexample;
#   -DHW_FROM_LOG_END (a restarted replica's HW = its log end, no checkpoint: the bug
#   behind chaos seed 914) must give a counterexample;
#   -DNO_MAXIMAL_ISR (the HW counts the leader's applied ISR, not the additions it
#   asked for that the store may hold already: review R5) must give a counterexample.
# Prints one line per variant and the counterexample's steps (breadth-first search, so
# the shortest); exit 0 when all four come out as they must.
set -euo pipefail
model=$(cd "$(dirname "$0")" && pwd)/replication.pml
command -v spin >/dev/null || { echo "check.sh: spin is not installed (apt install spin)" >&2; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/tally-model.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
fail=0

# variant: "" (correct) or a -D flag; want: pass or counterexample
run()
{
	local flag=$1 want=$2 name=${1:-correct} out errors
	rm -f ./*.trail pan pan.*
	spin $flag -a "$model" >/dev/null
	if [ "$want" = pass ]; then
		gcc -O2 -w -DSAFETY -o pan pan.c
		out=$(./pan -m100000 2>&1)
	else
		gcc -O2 -w -DSAFETY -DBFS -o pan pan.c
		out=$(./pan 2>&1)
	fi
	errors=$(echo "$out" | sed -n 's/.*errors: \([0-9]*\).*/\1/p')
	states=$(echo "$out" | sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p')
	if [ "$want" = pass ] && [ "$errors" = 0 ] && ! echo "$out" | grep -q 'Search not completed'; then
		echo "model $name: no assertion violated in $states states (as it must)"
	elif [ "$want" = counterexample ] && [ "${errors:-0}" -ge 1 ] && [ -f replication.pml.trail ]; then
		echo "model $name: counterexample, as it must: $(echo "$out" | grep -m1 'violated')"
		spin $flag -t replication.pml 2>/dev/null | grep -E '^ *(r[0-9]|value) ' |
			sed 's/^ */    /' | head -n 40
	else
		echo "model $name: WRONG (want $want)"
		echo "$out" >&2
		fail=1
	fi
}

cp "$model" replication.pml
model=replication.pml
run "" pass
run -DTRUNCATE_BY_HW counterexample
run -DNO_DEDUPE counterexample
run -DHW_FROM_LOG_END counterexample
run -DNO_MAXIMAL_ISR counterexample
exit $fail
