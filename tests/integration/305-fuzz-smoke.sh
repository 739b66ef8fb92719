#!/usr/bin/env bash
# Smoke run of the libFuzzer targets (tests/fuzz/): each for 3 s from its seeds alone
# (tests/fuzz/run.sh --smoke: a kept corpus would make the slow targets' start longer
# every run); 60 s on the corpus kept in build/fuzz/corpus/ under make test-long, which
# also runs tests/fuzz/run.sh 120 itself. Builds them with `make fuzz` first when they
# are missing or older than their sources (about a minute on 2 cores), so the suite
# always fuzzes current code.
# Skipped when clang or its libFuzzer runtime is missing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd clang

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$TL_TMP/probe.c"
clang -fsanitize=fuzzer,address,undefined "$TL_TMP/probe.c" -o "$TL_TMP/probe" 2>"$TL_TMP/probe.err" ||
	tl_skip "clang cannot link -fsanitize=fuzzer: $(head -n 1 "$TL_TMP/probe.err")"

secs=3
smoke=--smoke
if [ "$TL_LONG" = 1 ]; then
	secs=60
	smoke=
fi
tests/fuzz/run.sh "$secs" --build $smoke >&2 ||
	tl_fail "a fuzz target failed (see above; tests/fuzz/run.sh $secs $smoke)"
tl_log "ok"
