#!/usr/bin/env bash
# Fails when libtally's exports and its version script disagree, so that no function
# is exported, or stops being exported, by accident (`make export-check` runs it).
#   tools/check-exports.sh MAP LIBRARY.so OBJECT.o...
# Three lists must be the same set of names:
#   the map      every name under `global:` in MAP (wildcards are refused);
#   the objects  every defined global symbol of default visibility in OBJECT.o... (what
#                TL_EXPORT marks, plus common/error.c's tl_err_* functions);
#   the library  every defined dynamic symbol of LIBRARY.so, each of which must carry a
#                version node of MAP (name@@LIBTALLY_x.y).
# With SYMBOLS=FILE (a dpkg symbols file, debian/libtally1.symbols), its name@NODE
# entries must also be the library's versioned symbols, node symbols included, so the
# Debian package's ABI record cannot fall behind the map.
# With ABI=MAJOR.MINOR.PATCH (the Makefile's LIBTALLY_ABI), MAJOR.MINOR must be the map's
# newest node: each node adds functions, so it raises the library's minor version.
# Prints `export-check: ok N symbols` or each difference with what to do; exits 1 on any.
set -euo pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 MAP LIBRARY.so OBJECT.o..." >&2
	exit 2
fi
map=$1
lib=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The map: comments dropped, then `NODE {`, `global:`/`local:` and `name;` tokens.
perl -0777 -ne '
	s{/\*.*?\*/}{}gs;
	s{#[^\n]*}{}g;
	my ($section, $bad) = ("", 0);
	for my $tok (split /[\s;]+/) {
		next if $tok eq "" || $tok eq "}" || $tok =~ /^LIBTALLY_\d+\.\d+$/;
		if ($tok eq "{") { next }
		if ($tok =~ /^(global|local):$/) { $section = $1; next }
		if ($section eq "global") {
			if ($tok !~ /^[A-Za-z_][A-Za-z0-9_]*$/) {
				print STDERR "export-check: $ARGV: \"$tok\" under global: is not a plain name (no wildcards)\n";
				$bad = 1;
				next;
			}
			print "$tok\n";
		} elsif ($section eq "local" && $tok ne "*") {
			print STDERR "export-check: $ARGV: unexpected \"$tok\" under local: (want only *)\n";
			$bad = 1;
		}
	}
	exit $bad;
' "$map" | sort >"$tmp/map"
nodes=$(grep -oE '^[[:space:]]*LIBTALLY_[0-9]+\.[0-9]+[[:space:]]*\{' "$map" |
	grep -oE 'LIBTALLY_[0-9]+\.[0-9]+' | sort -u)
[ -n "$nodes" ] || {
	echo "export-check: $map has no LIBTALLY_MAJOR.MINOR node" >&2
	exit 1
}

# The objects: readelf -s columns are Num Value Size Type Bind Vis Ndx Name.
for obj in "$@"; do
	readelf -sW "$obj" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $6 == "DEFAULT" &&
		$7 != "UND" && $4 != "FILE" && $4 != "SECTION" { print $8 }'
done | sort -u >"$tmp/objects"

# The library: the dynamic symbols it defines, with their versions.
touch "$tmp/library.unsorted"
readelf --dyn-syms -W "$lib" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" &&
	NF >= 8 { print $8 }' >"$tmp/dyn"
fail=0
while read -r sym; do
	name=${sym%%@*}
	version=${sym#"$name"}
	version=${version#@}
	version=${version#@}
	if [ "$name" = "$version" ] || grep -qx "$name" <<<"$nodes"; then
		continue # the version node's own symbol
	fi
	if ! grep -qx "$version" <<<"$nodes"; then
		echo "export-check: $lib exports $name with version '${version:-none}', not a node of $map" >&2
		fail=1
	fi
	echo "$name" >>"$tmp/library.unsorted"
done <"$tmp/dyn"
sort -u "$tmp/library.unsorted" >"$tmp/library"

report()
{
	local what=$1 file=$2
	if [ -s "$file" ]; then
		echo "export-check: $what:" >&2
		sed 's/^/    /' "$file" >&2
		fail=1
	fi
}
if [ -n "${SYMBOLS:-}" ]; then
	# dpkg's entries are " name@VERSION MINVER"; the library's name@@VERSION.
	awk '/^ / { print $1 }' "$SYMBOLS" | sort -u >"$tmp/dpkg"
	# (a node's own symbol is listed bare: NODE, in dpkg's file NODE@NODE)
	sed -E 's/@@/@/; /@/!s/^(.*)$/\1@\1/' "$tmp/dyn" | sort -u >"$tmp/versioned"
	comm -13 "$tmp/dpkg" "$tmp/versioned" >"$tmp/dpkg-missing"
	comm -23 "$tmp/dpkg" "$tmp/versioned" >"$tmp/dpkg-extra"
fi
comm -13 "$tmp/map" "$tmp/objects" >"$tmp/unlisted"
comm -23 "$tmp/map" "$tmp/objects" >"$tmp/unmarked"
comm -13 "$tmp/map" "$tmp/library" >"$tmp/extra"
comm -23 "$tmp/map" "$tmp/library" >"$tmp/missing"
report "marked for export (TL_EXPORT or default visibility) but not in $map; add each to a new version node (docs/libtally.md, \"ABI promise\") or drop the mark" "$tmp/unlisted"
report "listed in $map but no object defines it with default visibility (TL_EXPORT missing, or the function is gone: that breaks the ABI)" "$tmp/unmarked"
report "exported by $lib but not listed in $map" "$tmp/extra"
report "listed in $map but not exported by $lib" "$tmp/missing"
if [ -n "${SYMBOLS:-}" ]; then
	report "exported by $lib but not in $SYMBOLS; add \" name@NODE VERSION\" lines (the package version that first has it)" "$tmp/dpkg-missing"
	report "in $SYMBOLS but not exported by $lib (dropping an exported symbol breaks the ABI)" "$tmp/dpkg-extra"
fi
if [ -n "${ABI:-}" ]; then
	newest=$(sed 's/^LIBTALLY_//' <<<"$nodes" | sort -t. -k1,1n -k2,2n | tail -n 1)
	if [ "${ABI%.*}" != "$newest" ]; then
		echo "export-check: LIBTALLY_ABI is $ABI but the newest node of $map is LIBTALLY_$newest; set it to $newest.0 (docs/libtally.md, \"ABI promise\")" >&2
		fail=1
	fi
fi
[ $fail -eq 0 ] || exit 1
echo "export-check: ok $(wc -l <"$tmp/map") symbols in ${nodes//$'\n'/ }"
