#!/usr/bin/env bash
# Smoke run of the libFuzzer targets (tests/fuzz/): each for 5 s (60 s under make
# test-long, which also runs tests/fuzz/run.sh 120 itself) on the corpus kept in
# build/fuzz/corpus/. Builds them with `make fuzz` first when they are missing or older
# than their sources (about 40 s on 2 cores), so the suite always fuzzes current code.
# Skipped when clang or its libFuzzer runtime is missing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd clang

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$TL_TMP/probe.c"
clang -fsanitize=fuzzer,address,undefined "$TL_TMP/probe.c" -o "$TL_TMP/probe" 2>"$TL_TMP/probe.err" ||
	tl_skip "clang cannot link -fsanitize=fuzzer: $(head -n 1 "$TL_TMP/probe.err")"

secs=5
[ "$TL_LONG" = 1 ] && secs=60
tests/fuzz/run.sh "$secs" --build >&2 || tl_fail "a fuzz target failed (see above; tests/fuzz/run.sh $secs)"
tl_log "ok"
