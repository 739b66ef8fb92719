#!/usr/bin/env bash
# Client quotas in cluster mode (issue #20): 2 brokers with etcd. The quotas live in
# etcd (key client-quotas, quota.h's text form), not in a broker's file:
#  (1) AlterClientQuotas through the broker that does not lead qa-0 is stored in etcd and
#      described by the other broker; a change through each broker merges (neither
#      undoes the other).
#  (2) The leader of qa-0 throttles client id "slow" by it (Produce v5 over the quota:
#      throttle_time_ms > 0, the answer held), another client id not at all.
#  (3) A removal through the leader reaches the other broker; no broker wrote a file.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd etcdctl
tl_require_prog quota_raw

tl_cluster_start 2
"$TL_TALLY" topic create qa --partitions 1 --replication-factor 2 -b "$TL_BOOTSTRAP" ||
	tl_fail "tally topic create failed"
tl_cluster_wait_isr qa 1 2
leader=$(tl_cluster_leader qa 0)
[ -n "$leader" ] && [ "$leader" -ge 1 ] || tl_fail "no leader for qa-0"
other=$((3 - leader))
raw() { local at=$1; shift; timeout 20 "$TL_PROGS/quota_raw" "127.0.0.1:${TL_CPORT[$at]}" 1 "$@"; }
# Polls until "raw AT describe ARGS" prints WANT.
describe_until()
{
	local at=$1 want=$2 deadline=$((SECONDS + 10)) got
	shift 2
	while :; do
		got=$(raw "$at" describe "$@")
		[ "$got" = "$want" ] && return 0
		[ $SECONDS -lt $deadline ] || tl_fail "broker $at describes '$got', want '$want'"
		sleep 0.1
	done
}

tl_log "(1) set through broker $other, seen by broker $leader"
[ "$(raw "$other" alter client-id=slow producer_byte_rate=50000)" = ok ] || tl_fail "alter through broker $other"
# Read your writes on the broker that took the change.
[ "$(raw "$other" describe client-id=slow)" = 'client-id=slow producer_byte_rate=50000' ] ||
	tl_fail "broker $other right after its alter: $(raw "$other" describe client-id=slow)"
ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get /tally/client-quotas --print-value-only >"$TL_TMP/etcd.quotas"
grep -qx 'client-id=slow producer_byte_rate=50000' "$TL_TMP/etcd.quotas" || tl_fail "etcd holds: $(cat "$TL_TMP/etcd.quotas")"
describe_until "$leader" 'client-id=slow producer_byte_rate=50000' client-id=slow
[ "$(raw "$leader" alter user=alice consumer_byte_rate=2048)" = ok ] || tl_fail "alter through broker $leader"
[ "$(raw "$other" alter client-id=slow producer_byte_rate=50000 request_percentage=20)" = ok ] ||
	tl_fail "second alter through broker $other"
want=$'client-id=slow producer_byte_rate=50000 request_percentage=20\nuser=alice consumer_byte_rate=2048'
for b in 1 2; do
	deadline=$((SECONDS + 10))
	until [ "$(raw "$b" describe | sort)" = "$want" ]; do
		[ $SECONDS -lt $deadline ] || tl_fail "broker $b after two brokers' changes: $(raw "$b" describe)"
		sleep 0.1
	done
done

tl_log "(2) the leader, broker $leader, throttles by it"
read -r t d < <(raw "$leader" produce-old slow qa | sed -E 's/throttle_ms=([0-9]+) delay_ms=([0-9]+)/\1 \2/')
[ "$t" -gt 0 ] || tl_fail "over its quota, Produce v5 got throttle_time_ms=$t"
[ "$d" -ge $((t * 9 / 10)) ] || tl_fail "the answer came after $d ms, the throttle was $t ms"
read -r t2 d2 < <(raw "$leader" produce-old other qa | sed -E 's/throttle_ms=([0-9]+) delay_ms=([0-9]+)/\1 \2/')
[ "$t2" = 0 ] || tl_fail "another client id was throttled ($t2 ms)"
tl_log "slow: throttle_ms=$t delay_ms=$d; other: throttle_ms=$t2 delay_ms=$d2"

tl_log "(3) removed through broker $leader, gone on broker $other"
[ "$(raw "$leader" alter client-id=slow producer_byte_rate=- request_percentage=-)" = ok ] || tl_fail "remove"
describe_until "$other" 'user=alice consumer_byte_rate=2048'
for b in 1 2; do
	[ ! -e "$TL_TMP/b$b/.tally-meta/client-quotas" ] || tl_fail "broker $b wrote a local quota file in cluster mode"
done
tl_log "ok: client quotas shared through etcd"
