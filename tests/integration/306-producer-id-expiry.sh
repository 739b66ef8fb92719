#!/usr/bin/env bash
# Producer state expiry as Kafka runs it (rawproto pid-expiry, see its comment): with
# producer.id.expiration.ms=2000, a producer whose batches are stamped 10 s before
# another producer's keeps its state between expiry checks (every
# producer.id.expiration.check.interval.ms, 10 min by default; it was every tick), and
# loses it at the next open after a restart (the expiration key is applied; it was
# parsed and ignored until stop 36).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rawproto

tl_start_broker --override producer.id.expiration.ms=2000
out=$(timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" pid-expiry expiry write) ||
	tl_fail "rawproto pid-expiry write failed: $out"
read -r pid epoch <<<"$out"
tl_stop_broker
tl_start_broker
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" pid-expiry expiry restarted "$pid" "$epoch" >&2 ||
	tl_fail "rawproto pid-expiry restarted failed"
tl_log "ok"
