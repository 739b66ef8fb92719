#!/usr/bin/env bash
# libtally clients ride out a broker crash: a consumer (assign, from the beginning) and
# a paced idempotent producer (30,000 records at 10,000/s over 3 partitions) run while
# tallyd is killed with SIGKILL and restarted on the same port and data. Both reconnect;
# the producer retries what was not acknowledged with the same sequences, and the
# consumer, resuming at its own positions, must see every record exactly once, each
# partition in send order.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog tally_roundtrip tally_interop

count=30000
topic=libtally-restart
prog=$TL_PROGS/tally_roundtrip
tl_start_broker
"$TL_PROGS/tally_interop" -b "$TL_BROKER" -t "$topic" -m create -p 3 >&2 ||
	tl_fail "topic create failed"

"$prog" -b "$TL_BROKER" -t "$topic" -n "$count" -p 3 -s 100 -m consume \
	>"$TL_TMP/consume.log" 2>&1 &
consumer=$!
"$prog" -b "$TL_BROKER" -t "$topic" -n "$count" -p 3 -s 100 -m produce -R 10000 -L 1 \
	-X reconnect.backoff.ms=20 -X retry.backoff.ms=20 >"$TL_TMP/produce.log" 2>&1 &
producer=$!

sleep 1
tl_log "kill -9 tallyd while both run"
tl_kill9_broker
sleep 0.5
tl_start_broker
tl_log "restarted"

rc=0
wait "$producer" || rc=$?
cat "$TL_TMP/produce.log" >&2
[ $rc -eq 0 ] || tl_fail "the producer did not deliver every record across the restart"
rc=0
wait "$consumer" || rc=$?
cat "$TL_TMP/consume.log" >&2
[ $rc -eq 0 ] || tl_fail "the consumer did not read every record exactly once across the restart"
tl_stop_broker
tl_log "ok"
