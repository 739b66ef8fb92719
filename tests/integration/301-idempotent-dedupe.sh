#!/usr/bin/env bash
# Idempotent producer rules on the wire (tests/progs/rawproto.c, dedupe): the same
# batch (pid, epoch, seq 0) sent three times, and three pipelined copies of the next,
# are each answered with the original base offset and stored once; a sequence gap gets
# OUT_OF_ORDER_SEQUENCE_NUMBER (45), an epoch older than the partition's
# INVALID_PRODUCER_EPOCH (47), a bumped epoch not starting at 0 OUT_OF_ORDER (45), a
# producer id new to the partition with sequence 7 UNKNOWN_PRODUCER_ID (59, the rule in
# log/producer_state.h). Then the broker is restarted (clean, then kill -9) and the
# retry must still be recognised: the producer state is rebuilt from the log.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rawproto

tl_start_broker --override auto.create.topics.enable=false
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" dedupe dedupe >&2 || tl_fail "rawproto dedupe failed"

pid=$(timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" restart-write restart) ||
	tl_fail "rawproto restart-write failed"
tl_log "producer $pid wrote seq 0 and seq 10; clean restart"
tl_stop_broker
tl_start_broker
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" restart-check restart "$pid" >&2 ||
	tl_fail "retries not recognised after a clean restart"
tl_log "kill -9 and restart"
tl_kill9_broker
tl_start_broker
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" restart-check restart "$pid" >&2 ||
	tl_fail "retries not recognised after kill -9 and recovery"
tl_stop_broker
tl_log "ok"
