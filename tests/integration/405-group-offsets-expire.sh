#!/usr/bin/env bash
# offsets.retention.minutes (1 here, the smallest Kafka allows; checked every 500 ms):
#   (1) an Empty group's offsets expire one retention after it became empty, and then
#       the group itself is removed (Dead); the tombstones are durable: after a kill -9
#       and restart the offsets stay gone;
#   (2) a group whose member is still consuming the topic keeps its offsets past the
#       retention: checked once its own commit time plus the retention has surely
#       passed (issue #23: checked any earlier, a broker that expires a live group's
#       offsets on the same clock as an empty group's passes by chance).
# Takes about 70 s, nearly all of it waiting out the retention.
# tally-test: slow
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_group

topic=grp-expire
tl_start_broker --override num.partitions=2 --override group.initial.rebalance.delay.ms=0 \
	--override offsets.retention.minutes=1 --override offsets.retention.check.interval.ms=500
for p in 0 1; do
	seq 1 10 | kcat -P -b "$TL_BROKER" -t "$topic" -p "$p" 2>"$TL_TMP/produce.err" ||
		tl_fail "kcat -P failed: $(cat "$TL_TMP/produce.err")"
done

rdk() { timeout 30 "$TL_PROGS/rdk_group" "$@" -b "$TL_BROKER"; }
committed_is() # GROUP N: true when GROUP has a committed offset on exactly N partitions
{
	rdk committed -g "$1" -t "$topic" -p 2 >"$TL_TMP/committed" 2>&1 ||
		tl_fail "OffsetFetch failed: $(cat "$TL_TMP/committed")"
	[ "$(awk '$3 >= 0' "$TL_TMP/committed" | wc -l)" -eq "$2" ]
}

# Group "gone" reads everything, commits, leaves: it is Empty from now on.
rdk consume -g grp-expire-gone -t "$topic" -n 20 >"$TL_TMP/gone.out" 2>&1 ||
	tl_fail "consumer of grp-expire-gone failed: $(tail -n 3 "$TL_TMP/gone.out")"
empty_at=$SECONDS
# Group "live" commits, then keeps a member subscribed to the topic.
rdk consume -g grp-expire-live -t "$topic" -n 20 >"$TL_TMP/live1.out" 2>&1 ||
	tl_fail "consumer of grp-expire-live failed"
# The live group's last commit (rdk_group -a below commits nothing) is before this.
live_committed_at=$SECONDS
"$TL_PROGS/rdk_group" consume -b "$TL_BROKER" -g grp-expire-live -t "$topic" -a \
	>"$TL_TMP/live2.out" 2>&1 &
live=$!
committed_is grp-expire-gone 2 || tl_fail "grp-expire-gone has no offsets to expire"

# Not yet at 45 s...
sleep $((45 - (SECONDS - empty_at)))
committed_is grp-expire-gone 2 || tl_fail "offsets expired before offsets.retention.minutes"
# ...gone by 62 s.
deadline=$((empty_at + 75))
until committed_is grp-expire-gone 0; do
	[ $SECONDS -lt $deadline ] || tl_fail "offsets of the empty group did not expire within 75 s"
	sleep 0.5
done
tl_log "empty group's offsets expired after $((SECONDS - empty_at)) s"
tl_grep_log 'offsets expired group=grp-expire-gone offsets=2 removed=yes' ||
	tl_fail "tallyd did not log the expiry and removal of grp-expire-gone"
rdk describe -g grp-expire-gone >"$TL_TMP/describe" 2>&1
grep -q 'state Dead' "$TL_TMP/describe" || tl_fail "expired group not removed: $(cat "$TL_TMP/describe")"

# (2) At 63 s after the live group's commit (SECONDS counts whole seconds, so at least
# 62 s): the retention (60 s) has run out and at least three sweeps (500 ms) ran since.
wait_s=$((live_committed_at + 63 - SECONDS))
[ $wait_s -le 0 ] || sleep $wait_s
tl_pid_alive "$live" || tl_fail "the live group's member exited early: $(tail -n 3 "$TL_TMP/live2.out")"
grep -q '^assigned 2 ' "$TL_TMP/live2.out" ||
	tl_fail "the live group's member holds no assignment: $(cat "$TL_TMP/live2.out")"
committed_is grp-expire-live 2 || tl_fail "the live group lost its offsets"
kill -TERM "$live"
wait "$live" || true

tl_kill9_broker
tl_start_broker
committed_is grp-expire-gone 0 || tl_fail "expired offsets came back after kill -9"
committed_is grp-expire-live 2 || tl_fail "the live group's offsets were lost in the restart"
tl_stop_broker
