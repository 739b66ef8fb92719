#!/usr/bin/env bash
# The idempotent librdkafka producer (tests/progs/rdk_idempotent.c: acks=all,
# max.in.flight=5, gapless guarantee) sends 200,000 records over 3 partitions while the
# broker drops about 1 % of produce responses after the batch is durable, closing the
# connection (test.fault.drop.produce.response.ratio). librdkafka retries every
# in-flight batch on a new connection; the broker must recognise each retry. Checks:
# every delivery report succeeds at the offset the record's index predicts; the
# consumer then reads exactly 200,000 records, no duplicate, each partition in send
# order; the fault fired at least once. 2,000,000 records under make test-long.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rdk_idempotent

count=200000
[ "$TL_LONG" = 1 ] && count=2000000
export TALLY_TEST_FAULTS=1
tl_start_broker --override num.partitions=3 \
	--override test.fault.drop.produce.response.ratio=0.01
tl_log "producing $count idempotent records with ~1 % of produce responses dropped"
timeout $((TL_LONG ? 1500 : 240)) "$TL_PROGS/rdk_idempotent" "$TL_BROKER" idempotent-faults \
	"$count" -T 60000 >&2 || {
	tl_broker_alive || tl_fail "tallyd is gone (crashed, or killed from outside; see its log)"
	tl_fail "rdk_idempotent failed under dropped produce responses"
}
drops=$(grep -c 'test fault, dropping a produce response' "$TL_TMP/tallyd.log" || true)
tl_log "produce responses dropped: $drops"
[ "$drops" -gt 0 ] || tl_fail "the fault switch never fired: nothing was tested"
tl_stop_broker
tl_log "ok: $count records exactly once through $drops dropped responses"
