#!/usr/bin/env bash
# tally-test: long-only (spin explores millions of states: over a minute on 2 cores)
# The Promela model of replication and idempotent produce (replication/model/,
# replication/model/check.sh, `make model`): spin must find no violation of "no
# acknowledged record lost, no record stored twice, logs agree below the high
# watermark" in the protocol as Tally runs it (truncation by leader epoch, sequence
# dedupe), and must produce a counterexample for truncation by high watermark (the
# KIP-101 bug), for a leader without dedupe, and for a restarted replica taking its
# log end as its high watermark (the bug chaos seed 914 found), and for a leader whose
# high watermark counts only the ISR it has applied, not the additions it asked for
# that the store (and so an election) may already hold (review R5).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd spin gcc
"$TL_ROOT/replication/model/check.sh" >"$TL_TMP/model.out" 2>&1 || {
	cat "$TL_TMP/model.out" >&2
	tl_fail "replication/model/check.sh failed"
}
cat "$TL_TMP/model.out" >&2
grep -q '^model correct: no assertion violated' "$TL_TMP/model.out" || tl_fail "the correct model did not pass"
grep -q '^model -DTRUNCATE_BY_HW: counterexample' "$TL_TMP/model.out" ||
	tl_fail "no counterexample for truncation by high watermark"
grep -q '^model -DNO_DEDUPE: counterexample' "$TL_TMP/model.out" || tl_fail "no counterexample without dedupe"
grep -q '^model -DHW_FROM_LOG_END: counterexample' "$TL_TMP/model.out" ||
	tl_fail "no counterexample for a high watermark restored as the log end"
grep -q '^model -DNO_MAXIMAL_ISR: counterexample' "$TL_TMP/model.out" ||
	tl_fail "no counterexample for a high watermark without the pending ISR additions"
tl_log "ok"
