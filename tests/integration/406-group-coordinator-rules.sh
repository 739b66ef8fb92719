#!/usr/bin/env bash
# Group coordinator rules, on the wire (rawproto group-rules, see its comment): the
# group.max.size limit also holds for members that come back with their KIP-394 id; a
# group that was Empty waits out group.initial.rebalance.delay.ms again; a follower
# parked in SyncGroup is not expired by its session timeout while the leader takes
# longer; offsets staged by an open transaction keep an otherwise empty group alive
# through the offsets expiry check, so its commit marker finds them. Each was broken
# until stop 36 (found by a review of broker/group.c).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rawproto

tl_start_broker --override group.max.size=2 --override group.initial.rebalance.delay.ms=1000 \
	--override group.min.session.timeout.ms=500 \
	--override offsets.retention.check.interval.ms=100
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" group-rules rules rules >&2 ||
	tl_fail "rawproto group-rules failed"
tl_log "ok"
