#!/usr/bin/env bash
# Direct I/O on and off (issue 22):
#   (1) while tallyd takes writes, its open segment file is open with O_DIRECT
#       (/proc/PID/fdinfo flags have 040000), and preallocated ahead;
#   (2) a clean stop cuts the preallocated space: the file ends at its last batch;
#   (3) log.direct.io=false on the same data: no O_DIRECT descriptor, "direct I/O off"
#       logged once, the records of both runs read back in order;
#   (4) on a file system without O_DIRECT (tmpfs before Linux 6.6, else ramfs; mounted
#       here when root may, else left out and logged) open with O_DIRECT fails with
#       EINVAL: the buffered path takes over, logged, and a kill -9 and restart there
#       loses no acknowledged record.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

if ! dd if=/dev/zero of="$TL_TMP/dio-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
	tl_skip "$TL_TMP does not take O_DIRECT"
fi
topic=dio

# Prints the fdinfo flags (octal) of each descriptor tallyd holds on a .log of $topic-0.
log_fd_flags()
{
	local fd target
	for fd in /proc/"$TL_PID"/fd/*; do
		target=$(readlink "$fd" 2>/dev/null) || continue
		case $target in
		*/"$topic"-0/*.log) awk '$1 == "flags:" { print $2 }' "/proc/$TL_PID/fdinfo/${fd##*/}" ;;
		esac
	done
}

has_direct()
{
	local f
	for f in $(log_fd_flags); do
		if [ $((8#$f & 8#040000)) -ne 0 ]; then return 0; fi
	done
	return 1
}

produce()
{
	seq -f "$1-%g" 1 "$2" | timeout 60 kcat -P -q -b "$TL_BROKER" -t "$topic" -X acks=all \
		-X batch.num.messages=13 || tl_fail "kcat -P failed"
}

# (1)
tl_start_broker --override num.partitions=1
produce a 2000
has_direct || tl_fail "no O_DIRECT descriptor of the open segment; flags: $(log_fd_flags | tr '\n' ' ')"
segs=("$TL_DATA/$topic-0/"*.log)
seg=${segs[-1]}
size=$(stat -c %s "$seg")
[ "$size" -ge 33554432 ] || tl_fail "open segment is $size bytes, want the 32 MiB preallocation"
tl_grep_log 'direct I/O off' && tl_fail "direct I/O logged off on a file system that takes it"
# (2)
tl_stop_broker
size=$(stat -c %s "$seg")
[ "$size" -lt 1048576 ] || tl_fail "segment is $size bytes after a clean stop: preallocation not cut"
tl_log "O_DIRECT while open; $size bytes after a clean stop"

# (3)
tl_start_broker --override log.direct.io=false
produce b 2000
has_direct && tl_fail "O_DIRECT descriptor with log.direct.io=false: $(log_fd_flags | tr '\n' ' ')"
[ "$(grep -c 'direct I/O off.*log.direct.io=false' "$TL_TMP/tallyd.log")" -eq 1 ] ||
	tl_fail "want one 'direct I/O off' line for log.direct.io=false"
timeout 60 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -f '%o %s\n' >"$TL_TMP/got" ||
	tl_fail "kcat -C failed"
{ seq -f 'a-%g' 1 2000; seq -f 'b-%g' 1 2000; } | awk '{ print NR - 1, $0 }' >"$TL_TMP/want"
cmp -s "$TL_TMP/want" "$TL_TMP/got" || tl_fail "records differ after switching direct I/O off"
tl_stop_broker

# (4) A file system without O_DIRECT: tmpfs before Linux 6.6; on later kernels tmpfs takes
# O_DIRECT, and ramfs (which never does) stands in for it.
mnt=$TL_TMP/ramdisk
mkdir -p "$mnt"
fs=
if [ "$(id -u)" -eq 0 ]; then
	for try in tmpfs ramfs; do
		mount -t "$try" -o size=256m tally-test "$mnt" 2>/dev/null || continue
		if ! dd if=/dev/zero of="$mnt/dio-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
			fs=$try
			break
		fi
		tl_log "$try takes O_DIRECT on $(uname -r)"
		umount "$mnt"
	done
fi
if [ -z "$fs" ]; then
	tl_log "fallback part left out: cannot mount a file system without O_DIRECT here"
	exit 0
fi
rc=0
trap 'rc=$?; umount -l "$mnt" 2>/dev/null; (exit $rc); tl_on_exit' EXIT
rm -f "$mnt/dio-probe"
TL_DATA=$mnt
: >"$TL_TMP/tallyd.log"
tl_start_broker --override num.partitions=1
produce c 3000
has_direct && tl_fail "O_DIRECT descriptor on $fs"
tl_grep_log 'direct I/O off.*EINVAL' || tl_fail "no 'direct I/O off ... EINVAL' line on $fs"
tl_kill9_broker
tl_start_broker
produce d 10
timeout 60 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -f '%o %s\n' >"$TL_TMP/got" ||
	tl_fail "kcat -C failed"
{ seq -f 'c-%g' 1 3000; seq -f 'd-%g' 1 10; } | awk '{ print NR - 1, $0 }' >"$TL_TMP/want"
cmp -s "$TL_TMP/want" "$TL_TMP/got" || tl_fail "records differ on $fs after kill -9"
tl_stop_broker
tl_log "$fs: buffered fallback, kill -9 and restart kept every record"
