#!/usr/bin/env bash
# Reproducible-build check (`make repro-check`): builds what `make install` installs
# twice, from copies of the tree's files in two directories of different names and
# depths, at different times, under different time zones, locales and umasks, then
# compares the SHA-256 of the programs and libraries. Exits 1 on any difference (and
# names the files); the two builds are kept then, for diffoscope.
#   tools/repro-check.sh           REPRO_JOBS=N sets make -j (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${REPRO_JOBS:-2}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tally-repro.XXXXXX")
keep=0
trap '[ $keep = 1 ] || rm -rf "$tmp"' EXIT

copy_tree()
{
	mkdir -p "$1"
	git ls-files -z -co --exclude-standard | grep -zv '^build/' | tar --null -T - -cf - |
		tar -C "$1" -xf -
}

one=$tmp/one
two=$tmp/second/build-two
copy_tree "$one"
copy_tree "$two"
echo "repro-check: building in $one"
(cd "$one" && umask 022 && TZ=UTC LC_ALL=C nice make -j"$jobs" --no-print-directory \
	installable >"$tmp/one.log" 2>&1) || {
	tail -20 "$tmp/one.log"
	exit 1
}
echo "repro-check: building in $two"
(cd "$two" && umask 077 && TZ=Asia/Tokyo LC_ALL=C.UTF-8 nice make -j"$jobs" --no-print-directory \
	installable >"$tmp/two.log" 2>&1) || {
	tail -20 "$tmp/two.log"
	exit 1
}

files=(build/release/tallyd build/release/tally build/release/tally-bench build/release/lib/libtally.a)
files+=("$(cd "$one" && ls build/release/lib/libtally.so.*.*.*)")
(cd "$one" && sha256sum "${files[@]}") >"$tmp/one.sha256"
(cd "$two" && sha256sum "${files[@]}") >"$tmp/two.sha256"
if ! diff -u "$tmp/one.sha256" "$tmp/two.sha256"; then
	keep=1
	echo "repro-check: the builds differ; both are kept in $tmp" >&2
	exit 1
fi
echo "repro-check: ok, $(wc -l <"$tmp/one.sha256") files identical:"
sed 's/^/    /' "$tmp/one.sha256"
