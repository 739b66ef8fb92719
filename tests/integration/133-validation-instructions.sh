#!/usr/bin/env bash
# Produce's record validation (issue #20) costs the zstd decoder and almost nothing
# more: under callgrind (instruction counts, which the machine's load does not move),
# tl_batch_validate_records on a ~1 MB zstd batch of JSON-like records (~5x) must take
# at most 1.10x the instructions of ZSTD_decompressDCtx alone on the same batch, with a
# warm context and a reused output buffer (tests/progs/validate_bench instr: the floor
# any validation that decompresses pays). 1.025x when written (the record walk, the
# frame checks and the scratch's first growth). Anything above the floor is Tally's:
# decompressing twice, a cold context or buffer per batch, a second walk.
# Planted: validation decompressing every batch twice (tests/mutations/list,
# validation-decompresses-twice) reads 2.0x.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd valgrind
tl_require_prog validate_bench

count() { # MODE: instructions inside run_floor / run_validate
	valgrind --tool=callgrind --callgrind-out-file="$TL_TMP/cg.$1" --collect-atstart=no \
		--toggle-collect='run_*' "$TL_PROGS/validate_bench" instr "$1" 4 \
		>"$TL_TMP/out.$1" 2>&1 || tl_fail "validate_bench instr $1: $(tail -5 "$TL_TMP/out.$1")"
	sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$TL_TMP/cg.$1" | head -1
}
floor=$(count floor)
validate=$(count validate)
[ -n "$floor" ] && [ "$floor" -gt 1000000 ] || tl_fail "no instruction count for the floor: '$floor'"
ratio=$(python3 -c "print(f'{$validate / $floor:.3f}')")
tl_log "instructions: ZSTD_decompressDCtx alone $floor, tl_batch_validate_records $validate, ratio $ratio"
python3 -c "import sys; sys.exit(0 if $validate <= 1.10 * $floor else 1)" ||
	tl_fail "validation takes ${ratio}x the zstd decoder's instructions (limit 1.10x): $validate vs $floor"
true
