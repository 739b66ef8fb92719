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

# retries=1: a batch whose try and retry both lose their answers fails (it may be
# stored), and the producer takes a new producer id. The batches behind it in its window
# may be stored too: they must fail rather than go out again under the new id (stored
# twice, some of them reported delivered). Every delivered record once, none twice.
tl_stop_broker
tl_start_broker --override test.fault.drop.produce.response.ratio=0.05
tl_log "retries=1, ~5 % of produce responses dropped"
timeout 240 "$TL_PROGS/tally_roundtrip" -b "$TL_BROKER" -t libtally-retries -n 20000 -p 1 \
	-s 10 -z none -B 300 -L 0 -X retries=1 -X retry.backoff.ms=5 -X reconnect.backoff.ms=5 -F 2>"$TL_TMP/retries.err" ||
	{ tail -20 "$TL_TMP/retries.err" >&2; tl_fail "a record was stored twice or lost with retries=1"; }
grep -E 'produced|consumed' "$TL_TMP/retries.err" >&2
grep -q 'records ([1-9][0-9]* failed)' "$TL_TMP/retries.err" ||
	tl_fail "no delivery failed with retries=1: the given-up path was not exercised"
tl_stop_broker
tl_log "ok: $count records exactly once through $drops dropped responses"
