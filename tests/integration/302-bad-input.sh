#!/usr/bin/env bash
# Hostile input must not hurt the broker (tests/progs/rawproto.c, badinput): size
# prefixes above socket.request.max.bytes or below a header, truncated frames, unknown
# API keys and versions (connection closed, as Kafka), ApiVersions v99 (a v0 answer with
# UNSUPPORTED_VERSION), bodies that do not decode, batches with a bad CRC (2), cut short
# (2), above message.max.bytes (10), for an unknown topic or partition (3), acks=2 (21),
# acks=0 errors (connection closed), 50 pipelined produces abandoned by their client,
# then 400 seeded garbage frames (random, random bodies behind valid headers, mutated
# valid requests). Afterwards ApiVersions still answers, the log holds only what was
# accepted, and a produce/fetch round trip (v3, v7 zstd, v9) reads back intact.
# The broker must then stop cleanly. RAWPROTO_SEED picks the garbage (default 1); under
# make test-long three more seeds run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rawproto

seeds=${RAWPROTO_SEED:-1}
[ "$TL_LONG" = 1 ] && seeds="$seeds 2 3 4"

tl_start_broker --override auto.create.topics.enable=false
for seed in $seeds; do
	tl_log "badinput seed $seed"
	timeout 120 "$TL_PROGS/rawproto" "$TL_BROKER" badinput "$seed" >&2 ||
		tl_fail "rawproto badinput failed (seed $seed; rerun: RAWPROTO_SEED=$seed tests/run.sh 302)"
	tl_broker_alive || tl_fail "tallyd died during bad input (seed $seed)"
done
if tl_grep_log 'crit '; then
	# (|| true: past 5 lines head's exit can SIGPIPE grep, and set -e would end the test
	# before tl_fail says why)
	tl_log_text "$TL_TMP/tallyd.log" | grep 'crit ' | head -n 5 >&2 || true
	tl_fail "tallyd logged crit lines on bad input"
fi
tl_stop_broker
tl_log "ok"
