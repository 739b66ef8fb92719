#!/usr/bin/env bash
# Runs every executable tests/integration/*.sh in name order, each under a timeout, and
# prints one line per test with its time; ends with the line `N passed, N failed, N
# skipped`. Exit status of a test: 0 pass, 77 skip, anything else (timeout included)
# fail; a test marked "# tally-test: long-only" runs only with TALLY_TEST_LONG=1.
# Exits 1 if any test failed, or, in CI (CI=true, as .ci/run runs) or with
# TALLY_TEST_STRICT=1, if any test skipped: there a missing tool is a broken set-up, and
# a skipped test proves nothing.
#   tests/run.sh                 every test
#   tests/run.sh 101 kcat        only tests whose file name contains one of the words
# TALLY_TEST_TIMEOUT_S overrides the per-test limit (default 300 s, 1800 s when
# TALLY_TEST_LONG=1). The output of a test is shown only when it fails, or always
# with TALLY_TEST_VERBOSE=1.
# TALLY_TEST_JOBS tests run at once (default 2: most of a test's time is waiting on
# brokers, clients and timers, so two share this 2-core machine well; every test picks
# its own ports, temp dir and namespaces). A test marked "# tally-test: serial" runs
# alone, after the others; one marked "# tally-test: slow" starts before the others.
# Lines are printed as tests end, so their order varies.
set -uo pipefail
cd "$(dirname "$0")/.."

strict=${TALLY_TEST_STRICT:-0}
case "${CI:-}" in
1 | true | yes) strict=1 ;;
esac

if [ "${TALLY_TEST_LONG:-0}" = 1 ]; then
	limit=${TALLY_TEST_TIMEOUT_S:-1800}
else
	limit=${TALLY_TEST_TIMEOUT_S:-300}
fi

out_dir=$(mktemp -d "${TMPDIR:-/tmp}/tally-run.XXXXXX") || exit 1
trap 'rm -rf "$out_dir"' EXIT

selected()
{
	local name=$1 word
	[ $# -eq 1 ] && return 0
	shift
	for word in "$@"; do
		case "$name" in *"$word"*) return 0 ;; esac
	done
	return 1
}

jobs_max=${TALLY_TEST_JOBS:-2}
[ "$jobs_max" -ge 1 ] 2>/dev/null || jobs_max=1

passed=0
failed=0
skipped=0
failed_names=()
skipped_names=()

# Prints a finished test's line (and its output when it failed) and counts it.
report()
{
	local name=$1 rc=$2 secs=$3 out=$out_dir/$1.out lines why
	case $rc in
	0)
		passed=$((passed + 1))
		printf 'PASS  %-40s %7ss\n' "$name" "$secs"
		;;
	77)
		skipped=$((skipped + 1))
		skipped_names+=("$name")
		why=$(grep -m1 'SKIP:' "$out" | sed 's/.*SKIP: //')
		printf 'SKIP  %-40s %7ss  %s\n' "$name" "$secs" "$why"
		;;
	*)
		failed=$((failed + 1))
		failed_names+=("$name")
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			printf 'FAIL  %-40s %7ss  (timed out after %ss)\n' "$name" "$secs" "$limit"
		else
			printf 'FAIL  %-40s %7ss  (exit %d)\n' "$name" "$secs" "$rc"
		fi
		lines=$(wc -l <"$out")
		[ "$lines" -le 300 ] || echo "    | ... (first $((lines - 300)) lines left out)"
		tail -n 300 "$out" | sed 's/^/    | /'
		;;
	esac
	if [ "${TALLY_TEST_VERBOSE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
		sed 's/^/    | /' "$out"
	fi
}

# Runs one test in the background; its exit status and time land in $out_dir/NAME.rc.
declare -A running=()
start_test()
{
	local t=$1 name
	name=$(basename "$t" .sh)
	(
		start=$(date +%s%N)
		timeout --kill-after=15 "$limit" "$t" >"$out_dir/$name.out" 2>&1 </dev/null
		rc=$?
		echo "$rc $(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')" \
			>"$out_dir/$name.rc"
	) &
	running[$!]=$name
}

# Waits for one running test to end and reports it.
reap_one()
{
	local pid name rc secs
	wait -n -p pid "${!running[@]}"
	name=${running[$pid]}
	unset "running[$pid]"
	read -r rc secs <"$out_dir/$name.rc"
	report "$name" "$rc" "$secs"
}

parallel=()
slow=()
serial=()
for t in tests/integration/*.sh; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t" .sh)
	selected "$name" "$@" || continue
	# A test marked "# tally-test: long-only" (minutes of soak or packaging) belongs to
	# make test-long; the fast suite lists it without running it (not a skip).
	if [ "${TALLY_TEST_LONG:-0}" != 1 ] && grep -q '^# tally-test: long-only' "$t"; then
		printf 'LONG  %-40s          runs under make test-long\n' "$name"
		continue
	fi
	if grep -q '^# tally-test: serial' "$t"; then
		serial+=("$t")
	elif grep -q '^# tally-test: slow' "$t"; then
		slow+=("$t")
	else
		parallel+=("$t")
	fi
done
# Tests marked "# tally-test: slow" (a minute or more, mostly waiting) start first, so
# none of them is left running alone at the end.
parallel=("${slow[@]}" "${parallel[@]}")

start_all=$(date +%s%N)
for t in "${parallel[@]}"; do
	[ ${#running[@]} -lt "$jobs_max" ] || reap_one
	start_test "$t"
done
while [ ${#running[@]} -gt 0 ]; do
	reap_one
done
for t in "${serial[@]}"; do
	start_test "$t"
	reap_one
done
total=$(awk -v ns=$(($(date +%s%N) - start_all)) 'BEGIN { printf "%.1f", ns / 1e9 }')
if [ $failed -ne 0 ]; then
	echo "failed: ${failed_names[*]} (total ${total}s)"
else
	echo "total ${total}s"
fi
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$strict" = 1 ] && [ $skipped -ne 0 ]; then
	echo "skipped: ${skipped_names[*]}: a skip fails the run in CI (CI=true or TALLY_TEST_STRICT=1)"
	exit 1
fi
[ $failed -eq 0 ]
