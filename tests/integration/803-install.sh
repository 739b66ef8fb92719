#!/usr/bin/env bash
# make install / uninstall (issue #24): `make install DESTDIR=D PREFIX=/usr` installs the
# binaries, libtally (soname libtally.so.1), headers, tally.pc, man pages, completion,
# config and unit, and writes nothing outside D (strace, when it works here); the
# README's "Use libtally from your C service" example, built outside the tree with
# `pkg-config --cflags --libs tally` against D, delivers records to the installed tallyd
# (which sends READY=1 to $NOTIFY_SOCKET once it listens);
# `make uninstall` with the same variables leaves no file or link in D.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd pkg-config readelf cc

dest=$TL_TMP/root
mk() { nice make --no-print-directory "$@" DESTDIR="$dest" PREFIX=/usr; }

# What must be installed, as paths under DESTDIR.
{
	printf '/usr/bin/%s\n' tallyd tally tally-bench
	printf '/usr/lib/%s\n' libtally.so.1.4.0 libtally.so.1 libtally.so libtally.a pkgconfig/tally.pc \
		systemd/system/tallyd.service
	for h in include/tally/*.h; do echo "/usr/$h"; done
	for m in man/*.1; do echo "/usr/share/man/man1/${m#man/}"; done
	for m in man/*.8; do echo "/usr/share/man/man8/${m#man/}"; done
	echo /usr/share/bash-completion/completions/tally
	echo /usr/etc/tally/server.properties
} | sort >"$TL_TMP/want"
# The same paths outside DESTDIR, before: install must leave them as they are.
snapshot() { while read -r path; do echo "$path $(stat -c '%Y %s' "$path" 2>&1 | head -c 80)"; done <"$TL_TMP/want"; }
snapshot >"$TL_TMP/outside.before"

tl_log "make install DESTDIR=$dest PREFIX=/usr"
if strace -f -qq -o /dev/null true 2>/dev/null; then
	strace -f -qq -o "$TL_TMP/strace" -e trace=open,openat,creat,mkdir,mkdirat,symlink,symlinkat,link,linkat,rename,renameat,renameat2,unlink,unlinkat,rmdir,chmod,fchmodat,chown,fchownat,truncate \
		make --no-print-directory install DESTDIR="$dest" PREFIX=/usr >"$TL_TMP/install.out" 2>&1 ||
		tl_fail "make install failed: $(tail -20 "$TL_TMP/install.out")"
	# Every absolute path a writing call names must be under $dest; a symlink's first
	# argument is its target text, not a path written. (Relative paths come from
	# mkdir -p walking directories; the snapshot below covers them.)
	outside=$(perl -ne '
		next unless /^\d+\s+(\w+)\((.*)\)\s+=\s+\d/;
		my ($call, $args) = ($1, $2);
		next if $call =~ /^(open|openat)$/ && $args !~ /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/;
		my @paths = $args =~ /"((?:[^"\\]|\\.)*)"/g;
		shift @paths if $call =~ /^symlink/;
		for (@paths) { print "$call $_\n" if m{^/} && !m{^\Q'"$dest"'\E/} && !m{^/dev/(null|tty)$} }
	' "$TL_TMP/strace" | sort -u)
	[ -z "$outside" ] || tl_fail "make install wrote outside DESTDIR: $outside"
	tl_log "strace: every write of make install was under DESTDIR"
else
	tl_log "strace cannot trace here; the file list alone is checked"
	mk install >"$TL_TMP/install.out" 2>&1 || tl_fail "make install failed: $(tail -20 "$TL_TMP/install.out")"
fi

(cd "$dest" && find . \( -type f -o -type l \) | sed 's|^\./|/|' | sort) >"$TL_TMP/files"
snapshot >"$TL_TMP/outside.after"
diff -u "$TL_TMP/outside.before" "$TL_TMP/outside.after" >&2 ||
	tl_fail "make install changed an installed path outside DESTDIR"
diff -u "$TL_TMP/want" "$TL_TMP/files" >&2 || tl_fail "installed files differ from the list above"

lib=$dest/usr/lib
grep -q 'Library soname: \[libtally\.so\.1\]' <<<"$(readelf -d "$lib/libtally.so.1.4.0")" ||
	tl_fail "installed library's SONAME: $(readelf -d "$lib/libtally.so.1.4.0" | grep SONAME)"
[ "$(readlink "$lib/libtally.so.1")" = libtally.so.1.4.0 ] || tl_fail "libtally.so.1 link wrong"
[ "$(readlink "$lib/libtally.so")" = libtally.so.1 ] || tl_fail "libtally.so link wrong"
grep -q '^ExecStart=/usr/bin/tallyd --config /usr/etc/tally/server.properties$' \
	"$lib/systemd/system/tallyd.service" || tl_fail "unit's ExecStart does not name the installed paths"

tl_log "build the README's example outside the tree with pkg-config"
app=$TL_TMP/app
mkdir -p "$app"
awk '/^## Use libtally from your C service/ { in_section = 1 }
     in_section && /^```c$/ { in_code = 1; next }
     in_code && /^```$/ { exit }
     in_code { print }' README.md >"$app/hello_tally.c"
grep -q 'int main' "$app/hello_tally.c" || tl_fail "no C example found in README.md's section"
# tally.pc requires libzstd (privately): the system's .pc files stay on the path.
export PKG_CONFIG_SYSROOT_DIR=$dest
system_pc_path=$(pkg-config --variable pc_path pkg-config)
export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$system_pc_path
flags=$(pkg-config --cflags --libs tally) || tl_fail "pkg-config --cflags --libs tally failed"
tl_log "pkg-config --cflags --libs tally: $flags"
[ "$(pkg-config --modversion tally)" = "$(cat VERSION)" ] || tl_fail "tally.pc's version is not VERSION"
(cd "$app" && cc -std=c11 -Wall -Wextra -Werror hello_tally.c $flags -o hello_tally) ||
	tl_fail "the README example does not build against the installed tree"
# Outputs captured first: with pipefail, grep -q quitting at its first match can kill
# the writer with SIGPIPE and fail the pipeline (CI run 8 failed here that way).
needed=$(readelf -d "$app/hello_tally")
grep -q 'Shared library: \[libtally\.so\.1\]' <<<"$needed" ||
	tl_fail "the example does not need libtally.so.1: $(readelf -d "$app/hello_tally" | grep NEEDED)"
loaded=$(LD_LIBRARY_PATH=$lib ldd "$app/hello_tally")
grep -q "libtally.so.1 => $lib/libtally.so.1 " <<<"$loaded" ||
	tl_fail "the example would not load the installed library: $(LD_LIBRARY_PATH=$lib ldd "$app/hello_tally")"

TL_TALLYD=$dest/usr/bin/tallyd
if command -v python3 >/dev/null; then
	tl_log "the installed tallyd tells \$NOTIFY_SOCKET READY=1 (systemd Type=notify)"
	notify=$TL_TMP/notify.sock
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
open(sys.argv[2], "wb").write(s.recv(256))
' "$notify" "$TL_TMP/notified" &
	notify_pid=$!
	for _ in $(seq 1 100); do [ -S "$notify" ] && break; sleep 0.05; done
	[ -S "$notify" ] || tl_fail "the notify socket listener did not start"
	NOTIFY_SOCKET=$notify tl_start_broker --override num.partitions=1
	wait "$notify_pid" || tl_fail "no datagram on NOTIFY_SOCKET within 30 s"
	[ "$(cat "$TL_TMP/notified")" = READY=1 ] || tl_fail "NOTIFY_SOCKET got: $(cat "$TL_TMP/notified")"
else
	tl_log "python3 is missing: READY=1 is not checked here (broker/tests/notify_test.c does)"
	tl_start_broker --override num.partitions=1
fi

tl_log "the README example delivers records to the installed tallyd"
out=$(cd "$app" && LD_LIBRARY_PATH=$lib timeout 60 ./hello_tally "$TL_BROKER" installed one two three) ||
	tl_fail "hello_tally failed: $out"
[ "$out" = "3 of 3 records stored" ] || tl_fail "hello_tally said: $out"
got=$(LD_LIBRARY_PATH=$lib timeout 30 "$dest/usr/bin/tally" -b "$TL_BROKER" --timeout 10s \
	tail installed -o beginning -e | tr '\n' ' ')
[ "$got" = "one two three " ] || tl_fail "installed tally tail read: $got"
tl_stop_broker

tl_log "make uninstall leaves no file in DESTDIR"
mk uninstall >"$TL_TMP/uninstall.out" 2>&1 || tl_fail "make uninstall failed: $(cat "$TL_TMP/uninstall.out")"
left=$(find "$dest" \( -type f -o -type l \))
[ -z "$left" ] || tl_fail "left after make uninstall: $left"
tl_log "ok"
