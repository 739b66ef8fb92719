#!/usr/bin/env bash
# The idempotent librdkafka producer (tests/progs/rdk_idempotent.c) sends 200,000
# records over 3 partitions, paced over a few seconds; when 30 % are acknowledged the
# broker is killed with SIGKILL and restarted on the same port and data dir while the
# producer keeps retrying (message.timeout.ms 120 s). Recovery must rebuild each
# partition's producer state from the log, so retries of batches written before the
# kill are recognised. Checks: every delivery report succeeds at the offset the
# record's index predicts; the consumer reads exactly 200,000 records, no duplicate,
# no loss of an acknowledged record, each partition in send order. Under make
# test-long: 2,000,000 records and a kill at 20, 40, 60 and 80 %.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rdk_idempotent

count=200000
rate=50000
kills="30"
if [ "$TL_LONG" = 1 ]; then
	count=2000000
	rate=100000
	kills="20 40 60 80"
fi
progress=$TL_TMP/progress

tl_start_broker --override num.partitions=3
tl_log "producing $count idempotent records at about $rate/s"
"$TL_PROGS/rdk_idempotent" "$TL_BROKER" idempotent-kill9 "$count" -r "$rate" \
	-P "$progress" -T 120000 >"$TL_TMP/producer.out" 2>&1 &
producer=$!

delivered()
{
	cat "$progress" 2>/dev/null || echo 0
}

for pct in $kills; do
	want=$((count * pct / 100))
	deadline=$(($(date +%s) + 60))
	while [ "$(delivered)" -lt "$want" ]; do
		tl_pid_alive "$producer" || break
		[ "$(date +%s)" -lt "$deadline" ] || tl_fail "fewer than $want records acknowledged after 60 s"
		sleep 0.02
	done
	tl_pid_alive "$producer" || break
	tl_log "kill -9 at $(delivered) acknowledged records"
	tl_kill9_broker
	sleep 0.3
	tl_start_broker
	tl_log "broker restarted"
done

rc=0
wait "$producer" || rc=$?
cat "$TL_TMP/producer.out" >&2
if [ $rc -ne 0 ]; then
	tl_broker_alive || tl_fail "tallyd is gone after its restart (crashed, or killed from outside)"
	tl_fail "rdk_idempotent failed across kill -9 (exit $rc)"
fi
grep -q 'ok: ' "$TL_TMP/producer.out" || tl_fail "rdk_idempotent did not report success"
tl_stop_broker
tl_log "ok: $count records exactly once across kill -9"
