#!/usr/bin/env bash
# Runs each libFuzzer target built by `make fuzz` (build/fuzz/NAME, from
# tests/fuzz/NAME.c) for SECONDS, on a corpus kept across runs in
# build/fuzz/corpus/NAME/ and seeded from build/fuzz/seeds/NAME/ (request frames,
# batches and client sessions written by build/release/tests/progs/rawproto when it was
# built; damage recipes for fuzz_log). Fails on the
# first crash, sanitizer report, leak, timeout or out-of-memory: the input that caused it
# is kept in build/fuzz/artifacts/NAME/ and the command that reproduces it is printed.
#   tests/fuzz/run.sh SECONDS [--build] [--smoke] [NAME...]
#   --build   run `make fuzz` first when a target is missing or older than its sources
#             (otherwise a stale target is an error)
#   --smoke   start from the seeds only, in a scratch corpus that is thrown away: libFuzzer
#             first runs every input it is given, and a kept corpus of a slow target
#             (fuzz_broker runs some 50 inputs a second) would make a short run longer
#             every time (test 305 uses this)
# Exit status: 0 every target ran clean, 1 otherwise (never 77: libFuzzer's default
# crash status would read as "skipped" in tests/run.sh).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

secs=${1:-}
case "$secs" in
'' | *[!0-9]*)
	echo "usage: tests/fuzz/run.sh SECONDS [--build] [NAME...]" >&2
	exit 1
	;;
esac
shift
build=0
smoke=0
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=1 ;;
	--smoke) smoke=1 ;;
	*) break ;;
	esac
	shift
done
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in tests/fuzz/*.c; do
		names+=("$(basename "$f" .c)")
	done
fi

# A target is stale when any source it is built from is newer than it.
stale()
{
	local bin=build/fuzz/$1
	[ -x "$bin" ] || return 0
	[ -n "$(find common protocol log replication broker client producer consumer admin \
		include tests/fuzz -name '*.[ch]' \
		-newer "$bin" 2>/dev/null | head -n 1)" ]
}

need_build=0
for n in "${names[@]}"; do
	[ -f "tests/fuzz/$n.c" ] || { echo "fuzz: no target tests/fuzz/$n.c" >&2; exit 1; }
	stale "$n" && need_build=1
done
if [ $need_build = 1 ]; then
	if [ $build = 0 ]; then
		echo "fuzz: targets missing or older than their sources; run make fuzz (or pass --build)" >&2
		exit 1
	fi
	echo "fuzz: building targets (make fuzz)"
	make --no-print-directory fuzz >build/fuzz-build.log 2>&1 || {
		tail -n 30 build/fuzz-build.log >&2
		echo "fuzz: make fuzz failed (full log: build/fuzz-build.log)" >&2
		exit 1
	}
fi

# Seeds: real requests, batches and client sessions from the codec, when rawproto is
# built; written once (again when rawproto is newer than them).
rawproto=build/release/tests/progs/rawproto
seeds=build/fuzz/seeds
if [ -x "$rawproto" ] && { [ ! -f "$seeds/.done" ] || [ "$rawproto" -nt "$seeds/.done" ]; }; then
	mkdir -p "$seeds/fuzz_request" "$seeds/fuzz_batch" "$seeds/fuzz_broker"
	if "$rawproto" seeds "$seeds/fuzz_request" "$seeds/fuzz_batch" "$seeds/fuzz_broker"; then
		touch "$seeds/.done"
	else
		echo "fuzz: rawproto seeds failed; running without seeds" >&2
	fi
fi
# fuzz_log: its byte 0 names files to remove (bit 0 the clean-shutdown marker, 1 the
# .index files, 2 the snapshot), then 6-byte edits (tests/fuzz/fuzz_log.c).
if [ ! -d "$seeds/fuzz_log" ]; then
	mkdir -p "$seeds/fuzz_log"
	for flags in 00 01 02 03 04 05 07; do
		printf "%b" "\\x$flags" >"$seeds/fuzz_log/remove-$flags"
	done
	# Truncate, xor, delete, overwrite, append: file 2 and 5 of the sorted template
	# list, at the first bytes, crash recovery (marker removed).
	printf '\x01\x02\x01\x00\x30\x00\x00' >"$seeds/fuzz_log/truncate"
	printf '\x01\x05\x00\x00\x20\x40\x00' >"$seeds/fuzz_log/xor"
	printf '\x00\x03\x02\x00\x00\x00\x00' >"$seeds/fuzz_log/delete"
	printf '\x01\x05\x03\x00\x10\xff\x08' >"$seeds/fuzz_log/overwrite"
	printf '\x01\x02\x04\x00\x00\x00\x30' >"$seeds/fuzz_log/append"
fi

# fuzz_client, fuzz_admin, fuzz_producer: valid answers their own seed writers encode
# (FUZZ_CLIENT_SEEDS=DIR and so on; tests/fuzz/fake_peer.h).
for t in client admin producer; do
	bin=build/fuzz/fuzz_$t dir=$seeds/fuzz_$t
	if [ -x "$bin" ] && { [ ! -d "$dir" ] || [ "$bin" -nt "$dir" ]; }; then
		rm -rf "$dir"
		mkdir -p "$dir"
		env "FUZZ_${t^^}_SEEDS=$dir" "$bin" >/dev/null 2>&1 ||
			echo "fuzz: fuzz_$t seeds failed; running without seeds" >&2
	fi
done

failed=0
for n in "${names[@]}"; do
	corpus=build/fuzz/corpus/$n
	[ $smoke = 1 ] && corpus=build/fuzz/smoke/$n && rm -rf "$corpus"
	artifacts=build/fuzz/artifacts/$n
	log=build/fuzz/$n.log
	mkdir -p "$corpus" "$artifacts"
	dirs=("$corpus")
	[ -d "build/fuzz/seeds/$n" ] && dirs+=("build/fuzz/seeds/$n")
	start=$(date +%s)
	"build/fuzz/$n" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ $rc -ne 0 ]; then
		failed=1
		echo "FAIL  fuzz $n (exit $rc after $(($(date +%s) - start)) s)"
		grep -E -m 20 'ERROR|SUMMARY|runtime error|fuzz_|Test unit written' "$log" | sed 's/^/    | /'
		artifact=$(ls -t "$artifacts" 2>/dev/null | head -n 1)
		if [ -n "$artifact" ]; then
			echo "    reproduce: build/fuzz/$n $artifacts/$artifact"
		fi
		echo "    full log: $log"
	else
		echo "ok    fuzz $n: ${runs:-?} runs in $secs s, corpus $(ls "$corpus" | wc -l) inputs"
	fi
done
exit $failed
