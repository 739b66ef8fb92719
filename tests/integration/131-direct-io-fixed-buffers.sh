#!/usr/bin/env bash
# Direct writes from registered (fixed) buffers (issue 22): each direct log registers its
# aligned write stage with the broker's io_uring once per allocation and writes its rounds
# with WRITE_FIXED; where the ring refuses (RLIMIT_MEMLOCK without CAP_IPC_LOCK, the
# sync engine) it writes plain writevs of the same stage.
#   (1) defaults: "direct writes from registered buffers" logged; every log write the
#       ring sent was a fixed one (tally_log_ring_fixed_writes_total equals
#       tally_log_ring_writes_total, > 0); a 3 MiB record grows the stage past its
#       first 1 MiB, so the stage is registered again (fixed buffer bytes >= 3 MiB) and
#       the records written before, with and after it read back byte for byte;
#   (2) tallyd without CAP_IPC_LOCK and with a 768 KiB memlock limit (room for the ring, not for a 1 MiB stage): registration is
#       refused (ENOMEM), logged once, no fixed write, the same records read back
#       (left out, and logged, where setpriv/prlimit cannot drop the capability).
# Planted: stage-not-reregistered (a grown stage keeps the old slot: its fixed writes
# fail with EFAULT, caught by 1), fixed-despite-refusal (a refused stage still written
# with WRITE_FIXED, caught by 2).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat curl base64

if ! dd if=/dev/zero of="$TL_TMP/dio-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
	tl_skip "$TL_TMP does not take O_DIRECT"
fi
if [ "${TALLY_IO_ENGINE:-}" = sync ]; then
	tl_skip "TALLY_IO_ENGINE=sync: no io_uring, no registered buffers"
fi
# One line each: small, small, a 3 MiB line (one record, one batch, one round), small.
head -c 2359296 /dev/urandom | base64 -w0 >"$TL_TMP/big"
echo >>"$TL_TMP/big"
{
	echo first
	echo second
	cat "$TL_TMP/big"
	echo last
} >"$TL_TMP/want"

# run NAME: starts tallyd (TL_TALLYD as set), writes the records one kcat at a time (so
# the small ones come first, in rounds of their own), reads them back; sets fixed, writes,
# fixed_bytes from /metrics.
run()
{
	local name=$1 topic=fixed-$1
	tl_start_broker --override num.partitions=1 --override message.max.bytes=8388608 \
		--override metrics.listener=http://127.0.0.1:0
	tl_metrics_port
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line" | timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" \
			-X acks=all -X message.max.bytes=8388608 ||
			tl_fail "kcat -P failed ($name, a ${#line}-byte record)"
	done <"$TL_TMP/want"
	timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -c 4 -f '%s\n' \
		-X fetch.message.max.bytes=8388608 -X fetch.max.bytes=8388608 \
		-X receive.message.max.bytes=16777216 \
		>"$TL_TMP/got-$name" || tl_fail "kcat -C failed ($name)"
	cmp -s "$TL_TMP/want" "$TL_TMP/got-$name" || tl_fail "records differ ($name)"
	fixed=$(tl_metric tally_log_ring_fixed_writes_total) || tl_fail "no /metrics ($name)"
	writes=$(tl_metric tally_log_ring_writes_total)
	fixed_bytes=$(tl_metric tally_log_ring_fixed_buffer_bytes)
	tl_stop_broker
	tl_log "$name: ring writes=$writes fixed=$fixed fixed_buffer_bytes=$fixed_bytes"
}

# (1)
run fixed
tl_grep_log 'log: direct writes from registered buffers' ||
	tl_fail "tallyd did not log that it writes from registered buffers"
[ "${writes:-0}" -gt 0 ] || tl_fail "the ring sent no write"
[ "$fixed" = "$writes" ] || tl_fail "$fixed of $writes writes were fixed ones"
awk -v b="$fixed_bytes" 'BEGIN { exit !(b + 0 >= 3 * 1048576) }' ||
	tl_fail "registered stage bytes $fixed_bytes: the grown stage was not registered"

# (2)
if ! setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock prlimit --memlock=786432:786432 \
	true 2>/dev/null; then
	tl_log "setpriv/prlimit cannot drop CAP_IPC_LOCK here: the refused registration is not tested"
	exit 0
fi
real=$TL_TALLYD
TL_TALLYD=$TL_TMP/tallyd-memlock
printf '#!/bin/sh\nexec setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock prlimit --memlock=786432:786432 %q "$@"\n' \
	"$real" >"$TL_TALLYD"
chmod +x "$TL_TALLYD"
: >"$TL_TMP/tallyd.log" # the first run's lines are checked; (2) looks at its own
run refused
tl_grep_log 'log: registered buffers off, direct writes are plain writevs .*err=ENOMEM' ||
	tl_fail "tallyd did not log the refused registration (ENOMEM)"
[ "$(grep -c 'registered buffers off' "$TL_TMP/tallyd.log")" = 1 ] ||
	tl_fail "the refusal was not logged exactly once"
[ "$fixed" = 0 ] || tl_fail "$fixed fixed writes though registration was refused"
[ "${writes:-0}" -gt 0 ] || tl_fail "the ring sent no write"
tl_log "fixed writes by default, the grown stage re-registered; refused: plain writes, same records"
