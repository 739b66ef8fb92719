#!/usr/bin/env bash
# libtally's ABI check (issue #24): `make export-check` passes on the tree, and fails in
# a scratch copy of it when a TL_EXPORT function is added without a line in
# producer/libtally.map (or, listed there, without one in debian/libtally1.symbols), or
# when the map names a function the library does not export.
# The copy carries build/release's libtally objects, so each case recompiles one file.
# tally-test: slow
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd readelf perl

out=$(nice make --no-print-directory export-check 2>&1) || tl_fail "make export-check failed: $out"
tl_log "$out"
grep -q '^export-check: ok ' <<<"$out" || tl_fail "make export-check did not say ok: $out"
so=$(readlink -f build/release/lib/libtally.so)
# (readelf captured first: grep -q quitting at its first match can SIGPIPE it, see 803.)
grep -q 'Library soname: \[libtally\.so\.1\]' <<<"$(readelf -d "$so")" ||
	tl_fail "$so: SONAME is not libtally.so.1: $(readelf -d "$so" | grep SONAME)"

src=$TL_TMP/src
mkdir -p "$src/build/release"
git ls-files -z -co --exclude-standard | grep -zv '^build/' | tar --null -T - -cf - | tar -C "$src" -xf -
cp -a build/release/pic build/release/lib "$src/build/release/"

tl_log "plant a TL_EXPORT function that the map does not list"
cat >>"$src/producer/partitioner.c" <<'C'

int tl_producer_planted_for_issue_24(void);
TL_EXPORT int tl_producer_planted_for_issue_24(void)
{
	return 24;
}
C
if out=$(nice make --no-print-directory -C "$src" export-check 2>&1); then
	tl_fail "export-check passed with an unlisted TL_EXPORT function: $out"
fi
grep -q 'not in producer/libtally.map' <<<"$out" || tl_fail "unexpected failure: $out"
grep -q '^    tl_producer_planted_for_issue_24$' <<<"$out" ||
	tl_fail "the failure does not name the planted function: $out"
tl_log "fails as it should: $(grep -A1 'not in producer' <<<"$out" | tr -s ' \n' ' ')"

tl_log "with the function listed (a new node), the check passes again"
# The planted function goes into a node after the last one (a new version).
last=$(grep -Eo '^LIBTALLY_[0-9.]+' "$src/producer/libtally.map" | tail -n 1)
nodes=$(grep -Eo '^LIBTALLY_[0-9.]+' "$src/producer/libtally.map" | tr '\n' ' ')
printf '\nLIBTALLY_1.9 {\n\tglobal:\n\t\ttl_producer_planted_for_issue_24;\n} %s;\n' "$last" >>"$src/producer/libtally.map"
want=$(($(grep -Eo 'ok [0-9]+ symbols' <<<"$(nice make --no-print-directory export-check 2>&1)" | grep -Eo '[0-9]+') + 1))
# ... once the Debian symbols file has it too (the package's ABI record) and the
# library's minor version is the new node's.
if out=$(nice make --no-print-directory -C "$src" export-check 2>&1); then
	tl_fail "export-check passed with a new symbol that debian/libtally1.symbols lacks: $out"
fi
grep -q '^    tl_producer_planted_for_issue_24@LIBTALLY_1.9$' <<<"$out" ||
	tl_fail "the failure does not name the symbol the Debian symbols file lacks: $out"
grep -Eq 'LIBTALLY_ABI is [0-9.]+ but the newest node of producer/libtally.map is LIBTALLY_1\.9' <<<"$out" ||
	tl_fail "the failure does not say the library's minor version must go up: $out"
printf ' LIBTALLY_1.9@LIBTALLY_1.9 9.9.0\n tl_producer_planted_for_issue_24@LIBTALLY_1.9 9.9.0\n' \
	>>"$src/debian/libtally1.symbols"
out=$(nice make --no-print-directory -C "$src" LIBTALLY_ABI=1.9.0 export-check 2>&1) ||
	tl_fail "export-check failed with the function in a new node, the minor version raised: $out"
grep -q "ok $want symbols in ${nodes}LIBTALLY_1.9" <<<"$out" || tl_fail "unexpected: $out"

tl_log "drop a listed function's TL_EXPORT mark: the map names what the library lacks"
sed -i 's/^TL_EXPORT int32_t tl_producer_partition_for_key(/int32_t tl_producer_partition_for_key(/' \
	"$src/producer/partitioner.c"
grep -q '^int32_t tl_producer_partition_for_key(' "$src/producer/partitioner.c" ||
	tl_fail "could not find tl_producer_partition_for_key's definition to unmark"
if out=$(nice make --no-print-directory -C "$src" LIBTALLY_ABI=1.9.0 export-check 2>&1); then
	tl_fail "export-check passed with a listed function no longer exported: $out"
fi
grep -q 'not exported by' <<<"$out" || tl_fail "unexpected failure: $out"
grep -q '^    tl_producer_partition_for_key$' <<<"$out" || tl_fail "does not name it: $out"
tl_log "ok"
