#!/usr/bin/env bash
# Mutation check: proves that each test in tests/mutations/list can fail. For every line
# of the list (or only those whose name contains one of the words given), it plants that
# bug in a scratch copy of this tree, rebuilds only what the bug touches and runs the
# named test there, then puts the file back. A planted bug "survives" when its test
# passes (or skips: a test that did not run caught nothing). Prints one line per bug;
# exits 1 if any survived or could not be planted or built.
#   tests/mutations/run.sh                      every planted bug
#   tests/mutations/run.sh dedupe 405           only bugs whose name or test has a word
#   MUTATION_BASELINE=1 tests/mutations/run.sh  also run each test on the unchanged copy
#                                               first; it must pass there
# The scratch copy takes the working tree (tracked and untracked, not ignored files),
# build/ (so only the mutated objects are rebuilt) and tests/interop/node_modules. It
# lives under $TMPDIR and is removed at the end, unless MUTATION_KEEP=1.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
list=tests/mutations/list
make_jobs=${MUTATION_MAKE_JOBS:-2}

selected()
{
	local name=$1 test=$2 word
	shift 2
	[ $# -eq 0 ] && return 0
	for word in "$@"; do
		case "$name $test" in *"$word"*) return 0 ;; esac
	done
	return 1
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/tally-mutation.XXXXXX") || exit 1
cleanup()
{
	if [ "${MUTATION_KEEP:-0}" = 1 ]; then
		echo "mutation: kept $scratch"
	else
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT

echo "mutation: copying the tree to $scratch"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$scratch" || exit 1
[ -d build ] && cp -a build "$scratch/"
[ -d tests/interop/node_modules ] && ln -s "$root/tests/interop/node_modules" \
	"$scratch/tests/interop/node_modules"

# Builds what TEST needs in the scratch copy; its output goes to $2.
build_for()
{
	local test=$1 out=$2
	case "$test" in
	unit:*) nice make -C "$scratch" -j"$make_jobs" MODE=asan "build/asan/${test#unit:}" ;;
	*) nice make -C "$scratch" -j"$make_jobs" release ;;
	esac >"$out" 2>&1
}

# Runs TEST in the scratch copy; output to $2. Returns the test's exit status.
run_test()
{
	local test=$1 out=$2 scripts
	case "$test" in
	unit:*)
		(cd "$scratch" && CK_DEFAULT_TIMEOUT=15 CK_TIMEOUT_MULTIPLIER=4 \
			timeout --kill-after=10 900 "build/asan/${test#unit:}") >"$out" 2>&1
		;;
	*)
		scripts=("$scratch"/tests/integration/"$test"-*.sh)
		if [ ${#scripts[@]} -ne 1 ] || [ ! -x "${scripts[0]}" ]; then
			echo "no single test tests/integration/$test-*.sh" >"$out"
			return 2
		fi
		timeout --kill-after=15 600 "${scripts[0]}" >"$out" 2>&1 </dev/null
		;;
	esac
}

caught=0
survived=0
broken=0
problems=()
logs=$scratch/logs
mkdir -p "$logs"
while read -r name file test script <&3; do
	case "$name" in '' | '#'*) continue ;; esac
	selected "$name" "$test" "$@" || continue
	start=$(date +%s)
	target=$scratch/$file
	if [ ! -f "$target" ]; then
		printf 'BROKEN    %-28s %s: no such file\n' "$name" "$file"
		broken=$((broken + 1))
		problems+=("$name")
		continue
	fi
	if [ "${MUTATION_BASELINE:-0}" = 1 ]; then
		if ! build_for "$test" "$logs/$name.base-build" ||
			! run_test "$test" "$logs/$name.base"; then
			printf 'BROKEN    %-28s %s fails without the bug; see below\n' "$name" "$test"
			tail -n 20 "$logs/$name.base" "$logs/$name.base-build" 2>/dev/null | sed 's/^/    | /'
			broken=$((broken + 1))
			problems+=("$name")
			continue
		fi
	fi
	cp "$target" "$logs/$name.orig"
	sed -e "$script" "$logs/$name.orig" >"$target"
	if cmp -s "$target" "$logs/$name.orig"; then
		printf 'BROKEN    %-28s the sed script changed nothing in %s\n' "$name" "$file"
		broken=$((broken + 1))
		problems+=("$name")
		continue
	fi
	diff -u "$logs/$name.orig" "$target" | sed -n '3,$p' | grep '^[-+]' >"$logs/$name.diff"
	rc=0
	if ! build_for "$test" "$logs/$name.build"; then
		printf 'BROKEN    %-28s does not build; see below\n' "$name"
		tail -n 20 "$logs/$name.build" | sed 's/^/    | /'
		broken=$((broken + 1))
		problems+=("$name")
	else
		run_test "$test" "$logs/$name.out" || rc=$?
		secs=$(($(date +%s) - start))
		if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then
			printf 'SURVIVED  %-28s %s %s (exit %d, %ss)\n' "$name" "$file" "$test" "$rc" "$secs"
			sed 's/^/    | /' "$logs/$name.diff"
			survived=$((survived + 1))
			problems+=("$name")
		else
			# The test's own verdict first (tl_fail, the test programs' "FAIL:"),
			# then a unit test's; a client's log line may say FAIL too.
			why=$(grep -m1 -E 'FAIL: ' "$logs/$name.out" ||
				grep -m1 -E 'FAILED|Failures: [1-9]|Errors: [1-9]|ERROR|FAIL' "$logs/$name.out")
			why=$(printf '%s' "$why" | cut -c1-150)
			printf 'CAUGHT    %-28s %s %s (exit %d, %ss): %s\n' "$name" "$file" "$test" \
				"$rc" "$secs" "$why"
			caught=$((caught + 1))
		fi
	fi
	# Back to the original, with a new mtime so make rebuilds the object again.
	cp "$logs/$name.orig" "$target"
done 3<"$list"

echo "mutation: $caught caught, $survived survived, $broken broken"
if [ ${#problems[@]} -ne 0 ]; then
	echo "mutation: not proven: ${problems[*]}"
	exit 1
fi
[ $caught -gt 0 ]
