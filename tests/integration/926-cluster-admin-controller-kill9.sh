#!/usr/bin/env bash
# libtally's admin calls across a kill -9 of the controller (the tally CLI): 3 brokers,
# broker.session.timeout.ms=6000, so etcd keeps naming the killed broker controller
# for up to 6 s after the kill, and every Metadata answer says so meanwhile.
#  (1) Right after the kill, writes that any broker makes (each posts them to etcd):
#      `tally acl add`, `tally quota set`, `tally user create` (CreateAcls,
#      AlterClientQuotas, AlterUserScramCredentials) succeed within their 3 s timeout
#      while etcd still names the dead broker controller (its lease ends 4-6 s after
#      the kill: it is renewed every third of its TTL): libtally sends them to any
#      broker that answers, as Kafka's AdminClient sends them to the least-loaded node.
#  (2) Then `tally topic create` and `tally topic add-partitions` (CreateTopics,
#      CreatePartitions: to the controller) with a 30 s timeout succeed well inside it
#      (< 15 s measured from the kill; ~5.5 s here): libtally's try at the dead
#      controller fails at once, that broker is left alone for a backoff, metadata is
#      asked again from another broker until it names the new controller, and the call
#      goes there.
#  (3) The effects are visible through the live brokers: the ACL, the quota, the user,
#      the topic's 3 partitions with live leaders.
# Planted (tests/mutations/list): `admin-try-unbounded` (a try waits for the
# controller's connection until the call's deadline, as before: topic create fails
# after its whole 30 s) and `admin-acls-to-controller` (CreateAcls routed to the
# controller again: acl add times out at 3 s); each fails this test.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd etcdctl

tl_cluster_start 3 --override broker.session.timeout.ms=6000 \
	--override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
	--override super.users=User:ANONYMOUS
tally() { "$TL_TALLY" -b "$TL_BOOTSTRAP" "$@"; }
controller() { ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get /tally/controller --print-value-only 2>/dev/null; }
now_ms() { date +%s%3N; }

# Every broker has the first view (and the controller key exists) before the kill.
deadline=$((SECONDS + 15))
until tally topic create warm --partitions 1 --replication-factor 3 >/dev/null 2>&1; do
	[ $SECONDS -lt $deadline ] || tl_fail "cannot create a topic before the kill"
	sleep 0.2
done
tl_cluster_wait_isr warm 1 3
dead=$(controller)
[ -n "$dead" ] && [ "$dead" -ge 1 ] && [ "$dead" -le 3 ] || tl_fail "no controller in etcd: '$dead'"
tl_log "(1) kill -9 of the controller, broker $dead"
killed_at=$(now_ms)
tl_cbroker_kill9 "$dead"

t0=$(now_ms)
tally --timeout 3s acl add --allow-principal User:alice --operation Read --topic t926 \
	>/dev/null 2>"$TL_TMP/acl.err" || tl_fail "acl add with the controller dead: $(cat "$TL_TMP/acl.err")"
tally --timeout 3s quota set --client-id c926 producer_byte_rate=4096 \
	>/dev/null 2>"$TL_TMP/quota.err" || tl_fail "quota set with the controller dead: $(cat "$TL_TMP/quota.err")"
tally --timeout 3s user create u926 --password pw926 --iterations 4096 \
	>/dev/null 2>"$TL_TMP/user.err" || tl_fail "user create with the controller dead: $(cat "$TL_TMP/user.err")"
t1=$(now_ms)
named=$(controller)
tl_log "acl add, quota set, user create: $((t1 - t0)) ms; etcd names controller '$named'"
# Else the lease ran out before the writes ended and they proved nothing (a machine
# too slow for this test), not a libtally failure.
[ "$named" = "$dead" ] || tl_fail "the dead broker's lease ended before the three writes were done ($((t1 - killed_at)) ms after the kill); the test cannot tell where they went"

tl_log "(2) topic create and add-partitions (to the controller)"
t0=$(now_ms)
tally --timeout 30s topic create t926 --partitions 2 --replication-factor 2 \
	>/dev/null 2>"$TL_TMP/create.err" || tl_fail "topic create after the controller's kill -9: $(cat "$TL_TMP/create.err")"
tally --timeout 30s topic add-partitions t926 -p 3 \
	>/dev/null 2>"$TL_TMP/add.err" || tl_fail "topic add-partitions after the controller's kill -9: $(cat "$TL_TMP/add.err")"
t1=$(now_ms)
tl_log "topic create + add-partitions: $((t1 - t0)) ms, done $((t1 - killed_at)) ms after the kill; controller now $(controller)"
[ $((t1 - killed_at)) -lt 15000 ] ||
	tl_fail "topic create and add-partitions took until $((t1 - killed_at)) ms after the kill (timeout 30 s, want < 15 s)"

tl_log "(3) the effects, through the live brokers"
deadline=$((SECONDS + 10))
while :; do
	acls=$(tally acl list --topic t926 2>&1 || true)
	quotas=$(tally quota list 2>&1 || true)
	users=$(tally user list 2>&1 || true)
	grep -q 'User:alice' <<<"$acls" && grep -q 'c926' <<<"$quotas" && grep -q 'u926' <<<"$users" && break
	[ $SECONDS -lt $deadline ] || tl_fail "writes not visible: acls '$acls' quotas '$quotas' users '$users'"
	sleep 0.2
done
deadline=$((SECONDS + 10))
while :; do
	d=$(tl_cluster_describe t926)
	n=$(awk -v dead="$dead" '$2 ~ /^[0-9]+$/ && $3 >= 1 && $3 != dead { c++ } END { print c + 0 }' <<<"$d")
	[ "$n" = 3 ] && break
	[ $SECONDS -lt $deadline ] || tl_fail "t926 lacks 3 partitions led by live brokers: $d"
	sleep 0.2
done
tl_log "ok: admin writes go to any broker at once; topic changes reach the new controller well inside their timeout"
