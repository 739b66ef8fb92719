#!/usr/bin/env bash
# Producer state expiry as Kafka runs it (rawproto pid-expiry, see its comment): with
# producer.id.expiration.ms=2000, a producer whose batches are stamped 10 s before
# another producer's keeps its state between expiry checks (every
# producer.id.expiration.check.interval.ms, 10 min by default; it was every tick), and
# loses it at the next open after a restart (the expiration key is applied; it was
# parsed and ignored until stop 36); after a kill -9 a producer the recovery replays is
# kept until the next check, so its retry is still deduplicated (stop 37).
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

# After a kill -9 the producers the recovery replays (past the last snapshot) stay
# until the next periodic check: A's retried sequence 0 is recognised, not appended
# again (only the snapshot's expired producers go at open, as Kafka's loadFromSnapshot).
out=$(timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" pid-expiry crash crash-write) ||
	tl_fail "rawproto pid-expiry crash-write failed: $out"
read -r pid epoch base <<<"$out"
tl_kill9_broker
tl_start_broker
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" pid-expiry crash crash-retry "$pid" "$epoch" "$base" >&2 ||
	tl_fail "rawproto pid-expiry crash-retry failed"
tl_stop_broker
tl_log "ok"
