#!/usr/bin/env bash
# The idempotent libtally producer (its defaults: enable.idempotence=true, acks=all) sends
# 100,000 records in small batches (batch.size=2000, linger.ms=0, so several thousand
# Produce requests) over 4 partitions while the broker drops about 1 % of produce
# responses after the batch is durable and closes the connection
# (test.fault.drop.produce.response.ratio). The producer retries with the same sequence
# numbers; the libtally consumer must then read every record exactly once, each
# partition in send order. The fault must have fired. 1,000,000 records under
# make test-long.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog tally_roundtrip

count=100000
[ "$TL_LONG" = 1 ] && count=1000000
export TALLY_TEST_FAULTS=1
tl_start_broker --override test.fault.drop.produce.response.ratio=0.01
tl_log "producing $count records with ~1 % of produce responses dropped"
timeout 240 "$TL_PROGS/tally_roundtrip" -b "$TL_BROKER" -t libtally-faults -n "$count" -p 4 \
	-s 100 -z zstd -B 2000 -L 0 -X retry.backoff.ms=10 -X reconnect.backoff.ms=10 -x >&2 ||
	tl_fail "libtally did not deliver exactly once under dropped produce responses"
drops=$(grep -c 'test fault, dropping a produce response' "$TL_TMP/tallyd.log" || true)
tl_log "produce responses dropped: $drops"
[ "$drops" -gt 0 ] || tl_fail "the fault switch never fired: nothing was tested"
tl_stop_broker
tl_log "ok: $count records exactly once through $drops dropped responses"
