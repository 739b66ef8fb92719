#!/usr/bin/env bash
# tally-test: long-only (make deb takes minutes)
# make deb (issue #24), under `make test-long` only (it builds everything again, in
# minutes): the three packages build with dpkg-buildpackage and pass lintian (make deb
# fails otherwise); their contents and control data are what the issue asks for, read
# with dpkg-deb (nothing is installed on this machine); the unit passes
# `systemd-analyze verify` (systemd need not be PID 1 for that).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd dpkg-buildpackage dh lintian dpkg-deb systemd-analyze readelf # make deps-long

nice make --no-print-directory deb >"$TL_TMP/deb.out" 2>&1 ||
	tl_fail "make deb failed: $(tail -40 "$TL_TMP/deb.out")"
version=$(cat VERSION)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for pkg in tally libtally1 libtally-dev; do
	deb=build/deb/${pkg}_${version}_${arch}.deb
	[ -f "$deb" ] || tl_fail "$deb was not built"
	dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$TL_TMP/$pkg.files"
	dpkg-deb -e "$deb" "$TL_TMP/$pkg.control"
done
has() { grep -qx -- "$2" "$TL_TMP/$1.files" || tl_fail "$1 lacks $2"; }

tl_log "tally: programs, unit, config (a conffile), user and data directory"
for f in /usr/bin/tallyd /usr/bin/tally /usr/bin/tally-bench /lib/systemd/system/tallyd.service \
	/etc/tally/server.properties /usr/share/man/man8/tallyd.8.gz \
	/usr/share/bash-completion/completions/tally; do
	has tally "$f"
done
grep -qx /etc/tally/server.properties "$TL_TMP/tally.control/conffiles" ||
	tl_fail "server.properties is not a conffile"
grep -q 'adduser --system' "$TL_TMP/tally.control/postinst" || tl_fail "postinst creates no user"
grep -q 'install -d -o tally -g tally -m 0750 /var/lib/tally' "$TL_TMP/tally.control/postinst" ||
	tl_fail "postinst creates no /var/lib/tally"
if grep -Eq 'deb-systemd-invoke (start|restart)|deb-systemd-helper enable' \
	<(sed '/was-enabled/,/fi/d' "$TL_TMP/tally.control/postinst"); then
	tl_fail "postinst starts or enables tallyd unasked: $(cat "$TL_TMP/tally.control/postinst")"
fi
grep -q 'rm -rf /var/lib/tally' "$TL_TMP/tally.control/postrm" || tl_fail "purge keeps /var/lib/tally"

tl_log "libtally1 and libtally-dev"
has libtally1 "/usr/lib/$multiarch/libtally.so.1.4.0"
has libtally1 "/usr/lib/$multiarch/libtally.so.1"
for f in libtally.so libtally.a pkgconfig/tally.pc; do has libtally-dev "/usr/lib/$multiarch/$f"; done
for h in include/tally/*.h; do has libtally-dev "/usr/$h"; done
grep -q "^Depends: .*libtally1 (= $version)" "$TL_TMP/libtally-dev.control/control" ||
	tl_fail "libtally-dev does not depend on libtally1 (= $version)"
grep -q '^tl_producer_create@LIBTALLY_1.0 ' "$TL_TMP/libtally1.control/symbols" 2>/dev/null ||
	grep -q ' tl_producer_create@LIBTALLY_1.0 ' "$TL_TMP/libtally1.control/symbols" ||
	tl_fail "libtally1's symbols file lacks tl_producer_create@LIBTALLY_1.0"
root=$TL_TMP/root
dpkg-deb -x "build/deb/libtally1_${version}_${arch}.deb" "$root"
dpkg-deb -x "build/deb/tally_${version}_${arch}.deb" "$root"
# (readelf captured first: grep -q quitting at its first match can SIGPIPE it, see 803.)
grep -q 'Library soname: \[libtally\.so\.1\]' <<<"$(readelf -d "$root/usr/lib/$multiarch/libtally.so.1.4.0")" ||
	tl_fail "packaged library's SONAME is not libtally.so.1"

tl_log "systemd-analyze verify tallyd.service"
unit=$root/lib/systemd/system/tallyd.service
for line in Type=notify User=tally Group=tally 'ExecStart=/usr/bin/tallyd --config /etc/tally/server.properties' \
	NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=/var/lib/tally PrivateTmp=yes \
	KillSignal=SIGTERM LimitNOFILE=524288; do
	grep -qx -- "$line" "$unit" || tl_fail "tallyd.service lacks $line"
done
# verify checks that ExecStart's program exists and that man tallyd(8) resolves: point
# both at the extracted package, in a copy named as the unit.
mkdir -p "$TL_TMP/unit"
sed "s|^ExecStart=/usr/bin/tallyd|ExecStart=$root/usr/bin/tallyd|" "$unit" >"$TL_TMP/unit/tallyd.service"
MANPATH=$root/usr/share/man systemd-analyze verify "$TL_TMP/unit/tallyd.service" >"$TL_TMP/verify" 2>&1 ||
	tl_fail "systemd-analyze verify failed: $(cat "$TL_TMP/verify")"
[ ! -s "$TL_TMP/verify" ] || tl_fail "systemd-analyze verify warned: $(cat "$TL_TMP/verify")"
tl_log "ok"
