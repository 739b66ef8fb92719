#!/usr/bin/env bash
# Group sessions while etcd is down past the lease (stop 33). A broker that cannot reach
# etcd for longer than broker.session.timeout.ms does not act as group coordinator (it
# cannot tell etcd down from itself cut off, test 930): its group APIs answer
# NOT_COORDINATOR. Its members cannot heartbeat then, so their sessions must stand
# still, not run out: when etcd is back and the broker trusts its leadership again,
# the member is still in the group.
#   (1) one broker (offsets RF 1), a member (rawproto hold-member: JoinGroup, SyncGroup,
#       a Heartbeat every 500 ms) with a 6 s session;
#   (2) etcd down for 12 s: the heartbeats get NOT_COORDINATOR for longer than the
#       session, and FindCoordinator and ListGroups COORDINATOR_NOT_AVAILABLE (the
#       broker's view may be stale: it neither points clients at a coordinator nor
#       lists groups it may no longer hold);
#   (3) etcd back: the heartbeats are answered again, the member never lost its
#       session, and the broker's log has no session expiry.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd etcdctl
tl_require_prog rawproto

group=held-group
tl_cluster_start 1 --override offsets.topic.replication.factor=1 \
	--override offsets.topic.num.partitions=1 --override group.initial.rebalance.delay.ms=0 \
	--override metadata.etcd.timeout.ms=1000
# FindCoordinator creates __consumer_offsets (JoinGroup alone does not).
for _ in $(seq 50); do
	"$TL_TALLY" group describe "$group" -b "$TL_BOOTSTRAP" --timeout 3s >/dev/null 2>&1 && break
	sleep 0.2
done
"$TL_PROGS/rawproto" "127.0.0.1:${TL_CPORT[1]}" hold-member "$group" 6000 25 \
	>"$TL_TMP/hold.out" 2>&1 &
hold=$!
deadline=$(($(date +%s) + 30))
until tl_cgrep 1 "group: rebalance complete group=$group"; do
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "the member did not join: $(tail -3 "$TL_TMP/hold.out")"
	tl_pid_alive "$hold" || tl_fail "hold-member ended: $(tail -3 "$TL_TMP/hold.out")"
	sleep 0.2
done
sleep 1
tl_log "(1) a member holds $group, session 6 s"

# A key outside the cluster's prefix (another application sharing etcd): the store's
# revision moves past what the broker's watch of its prefix sees, so after the lapse
# the broker must read its prefix again, not wait for its model to reach that revision.
ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" put /elsewhere/931 x >/dev/null ||
	tl_fail "etcdctl put failed"
tl_etcd_kill9
sleep 12
tl_etcd_start
tl_log "(2) etcd was down for 12 s"

wait "$hold" || tl_fail "the member lost its session: $(tail -3 "$TL_TMP/hold.out")"
read -r _ _ ok _ refused _ after _ unavailable <<<"$(grep '^heartbeats' "$TL_TMP/hold.out")"
[ "${refused:-0}" -ge 12 ] ||
	tl_fail "only ${refused:-0} heartbeats got NOT_COORDINATOR: the broker went on coordinating without etcd for less than the session"
# Nor did it send clients to a coordinator from its stale view, or list the groups it
# held: FindCoordinator and ListGroups answered COORDINATOR_NOT_AVAILABLE (the probe
# follows a refused heartbeat; the fence may lift in between, so most, not all).
[ "${unavailable:-0}" -ge $((refused * 3 / 4)) ] ||
	tl_fail "only ${unavailable:-0} of $refused refusals had FindCoordinator and ListGroups answer COORDINATOR_NOT_AVAILABLE: the fenced broker answered from its stale view"
# Answered again, for seconds, after the last refusal: the fence lifted and the member
# was still there (a heartbeat of a lost member would have failed hold-member).
[ "${after:-0}" -ge 6 ] ||
	tl_fail "only ${after:-0} heartbeats answered after the last NOT_COORDINATOR: the broker did not coordinate again once etcd was back"
tl_cgrep 1 'member session expired' && tl_fail "the broker expired a member while it could not coordinate"
tl_cgrep 1 'lease renewed after a lapse' || tl_fail "the broker's log does not say its lease lapsed"
tl_log "(3) heartbeats: $ok answered ($after after the last refusal), $refused NOT_COORDINATOR ($unavailable with FindCoordinator and ListGroups unavailable); the member kept its session"
tl_log "ok"
