#!/usr/bin/env bash
# Runs every unit-test binary DIR/*/tests/*_test (check suites, built by
# `make MODE=asan unit-bins`), one after the other, and prints one line per binary.
# A binary that leaves a case out because it cannot run here prints "SKIP: why" on a line
# of its own; those lines are shown after its PASS line, and in CI (CI=true, as .ci/run
# runs) or with TALLY_TEST_STRICT=1 they fail the run. Exits 1 if any binary fails or
# none is found.
#   tests/run-unit.sh build/asan
# check's own knobs pass through: CK_RUN_SUITE, CK_RUN_CASE, CK_FORK=no, CK_VERBOSITY.
set -uo pipefail

dir=${1:-build/asan}
strict=${TALLY_TEST_STRICT:-0}
case "${CI:-}" in
1 | true | yes) strict=1 ;;
esac
# Sanitized builds run several times slower than release: a test case gets 15 s (check's
# default is 4 s), and every timeout, a case's own tcase_set_timeout() included, is
# multiplied by 4 - so 60 s by default - unless the caller chose otherwise.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-15}
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-4}
export CK_VERBOSITY=${CK_VERBOSITY:-normal}
# A whole binary, should it hang outside check's per-test timer (CK_FORK=no, a fixture).
binary_timeout_s=${UNIT_BINARY_TIMEOUT_S:-900}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

shopt -s nullglob
bins=("$dir"/*/tests/*_test)
if [ ${#bins[@]} -eq 0 ]; then
	echo "run-unit: no unit-test binaries under $dir/*/tests/" >&2
	exit 1
fi

passed=0
failed=0
skipped=0
failed_names=()
for bin in "${bins[@]}"; do
	[ -x "$bin" ] || continue
	name=${bin#"$dir"/}
	start=$(date +%s.%N)
	out=$(timeout --kill-after=10 "$binary_timeout_s" "$bin" 2>&1)
	rc=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks:' | tail -n 1)
		printf 'PASS %-40s %6ss  %s\n' "$name" "$secs" "$summary"
		skips=$(printf '%s\n' "$out" | grep -E '^SKIP: ' || true)
		if [ -n "$skips" ]; then
			skipped=$((skipped + $(printf '%s\n' "$skips" | wc -l)))
			printf '%s\n' "$skips" | sed 's/^/    /'
		fi
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			printf 'FAIL %-40s %6ss  (timed out after %ss)\n' "$name" "$secs" "$binary_timeout_s"
		else
			printf 'FAIL %-40s %6ss  (exit %d)\n' "$name" "$secs" "$rc"
		fi
		printf '%s\n' "$out" | sed 's/^/    /'
	fi
done

echo "unit: $passed passed, $failed failed, $skipped cases skipped"
if [ $failed -ne 0 ]; then
	echo "unit: failed: ${failed_names[*]}"
	exit 1
fi
if [ "$strict" = 1 ] && [ $skipped -ne 0 ]; then
	echo "unit: a skipped case fails the run in CI (CI=true or TALLY_TEST_STRICT=1)"
	exit 1
fi
exit 0
