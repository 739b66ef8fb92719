#!/usr/bin/env bash
# libtally round trip (tests/progs/tally_roundtrip.c): 1,000,000 records with keys and
# three headers, zstd, libtally producer -> tallyd -> libtally consumer (assign, from the
# beginning) over 4 partitions created with tl_admin. Checks every record byte for byte,
# its partition against murmur2(key), send order per partition, and that each arrives
# exactly once. Then smaller runs: uncompressed with the first 100 records sent by
# tl_producer_send_sync, and a group consumer (tl_consumer_subscribe) that commits.
# The check itself is checked: a second record 0 appended after the last original record
# of its partition must fail it as a duplicate (issue #23: it stopped reading once every
# record was seen, and missed exactly such a tail duplicate).
# 5,000,000 records under make test-long.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog tally_roundtrip

count=1000000
[ "$TL_LONG" = 1 ] && count=5000000
prog=$TL_PROGS/tally_roundtrip

tl_start_broker --override group.initial.rebalance.delay.ms=0

tl_log "zstd: $count records with keys and headers"
timeout 240 "$prog" -b "$TL_BROKER" -t libtally-million -n "$count" -p 4 -s 100 -z zstd >&2 ||
	tl_fail "tally_roundtrip (zstd, $count records) failed"

tl_log "none, send_sync for the first 100: 50000 records"
timeout 120 "$prog" -b "$TL_BROKER" -t libtally-sync -n 50000 -p 3 -s 300 -z none -C >&2 ||
	tl_fail "tally_roundtrip (none, send_sync) failed"

tl_log "group consumer: 50000 records"
timeout 120 "$prog" -b "$TL_BROKER" -t libtally-group -n 50000 -p 3 -s 50 -z zstd -G >&2 ||
	tl_fail "tally_roundtrip (group consumer) failed"

tl_log "a duplicate at the tail of a partition must fail the check"
timeout 60 "$prog" -b "$TL_BROKER" -t libtally-sync -n 1 -p 3 -s 300 -z none -m produce >&2 ||
	tl_fail "could not append a second record 0"
if timeout 120 "$prog" -b "$TL_BROKER" -t libtally-sync -n 50000 -p 3 -s 300 -m consume \
	2>"$TL_TMP/tail-dup.err"; then
	tl_fail "tally_roundtrip passed with a duplicate record 0 after the last record"
fi
grep -q '^record 0: duplicate' "$TL_TMP/tail-dup.err" ||
	tl_fail "tally_roundtrip failed, but not on the tail duplicate: $(tail -n 3 "$TL_TMP/tail-dup.err")"

# Everything is still there after a clean restart.
tl_stop_broker
tl_start_broker
tl_log "consume the $count records again after a restart"
timeout 240 "$prog" -b "$TL_BROKER" -t libtally-million -n "$count" -p 4 -s 100 -m consume >&2 ||
	tl_fail "tally_roundtrip (consume after restart) failed"
tl_stop_broker
tl_log "ok"
