#!/usr/bin/env bash
# ACLs (issue #16) through `tally acl`, kcat and librdkafka, with the broker's test-only
# principal hook (tally.test.principal.from.client.id: client.id "User:x" is principal
# User:x on PLAINTEXT; SASL replaces it):
#   (1) without super.users or Alter on the cluster, `tally acl add` is refused
#       (CLUSTER_AUTHORIZATION_FAILED); the super user adds and lists ACLs;
#   (2) alice, with only Read on t1, consumes t1 but cannot produce to it
#       (TOPIC_AUTHORIZATION_FAILED), read t2, or join/commit for group g1
#       (GROUP_AUTHORIZATION_FAILED) until she gets Read on g1; the authorized_operations
#       of Metadata, DescribeCluster and DescribeGroups show what she and a super user
#       may do;
#   (3) a DENY overrides her ALLOW; PREFIXED patterns allow app.* and not others;
#   (4) a denied transactional id cannot InitProducerId (librdkafka's
#       init_transactions fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and
#       succeeds once allowed;
#   (5) the ACLs survive a restart; denials are logged with principal and resource;
#   (6) with allow.everyone.if.no.acl.found=true the idempotent producer may write an
#       ACL-less topic although the cluster and other topics have ACLs (Kafka's
#       authorizeByResourceType; its ACL rules in acl_test).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat curl
tl_require_prog rdk_txn_once
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"

as() { local who=$1; shift; timeout 20 "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s -X "client.id=User:$who" "$@"; }
admin() { as admin "$@"; }
kc() { local who=$1; shift; timeout 20 kcat -b "$TL_BROKER" -X "client.id=User:$who" "$@"; }

tl_start_broker --override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
	--override super.users='User:admin;User:root' --override tally.test.principal.from.client.id=true \
	--override group.initial.rebalance.delay.ms=0 --override metrics.listener=http://127.0.0.1:0
tl_grep_log 'acl: authorizer on acls=0' || tl_fail "the authorizer did not say it is on"
tl_metrics_port
denied_total() { tl_metric tally_authorization_denied_total; }

tl_log "(1) who may change ACLs"
for t in t1 t2 app.orders app.secret other t3; do admin topic create "$t" -p 1 >/dev/null || tl_fail "topic create $t"; done
rc=0; as mallory acl add --allow-principal User:mallory --operation All --topic t1 2>"$TL_TMP/err" || rc=$?
[ $rc != 0 ] || tl_fail "a principal without Alter on the cluster added an ACL"
grep -q 'CLUSTER_AUTHORIZATION_FAILED' "$TL_TMP/err" || tl_fail "no CLUSTER_AUTHORIZATION_FAILED: $(cat "$TL_TMP/err")"
admin acl add --allow-principal User:alice --operation Read --topic t1 || tl_fail "super user acl add"
admin acl list --topic t1 | grep -P '^User:alice\s+\*\s+Read\s+ALLOW\s+Topic\s+t1\s+LITERAL' >/dev/null ||
	tl_fail "acl list: $(admin acl list --topic t1)"

seq 1 5 | kc admin -P -t t1 || tl_fail "the super user could not produce to t1"
seq 1 5 | kc root -P -t t2 || tl_fail "the second super user could not produce to t2"

tl_log "(2) Read on t1 only"
n=$(kc alice -C -t t1 -o beginning -e -q | wc -l)
[ "$n" = 5 ] || tl_fail "alice read $n records of t1, want 5"
kc alice -P -t t1 <<<"x" 2>"$TL_TMP/err" && tl_fail "alice produced to t1 with only Read"
grep -qi 'Topic authorization failed' "$TL_TMP/err" || tl_fail "produce to t1: $(cat "$TL_TMP/err")"
kc alice -C -t t2 -o beginning -e -q >/dev/null 2>"$TL_TMP/err" && tl_fail "alice read t2"
grep -qi 'Topic authorization failed' "$TL_TMP/err" || tl_fail "consume t2: $(cat "$TL_TMP/err")"
# Describe on g1 lets FindCoordinator, DescribeGroups and OffsetFetch through; the
# commit itself (OffsetCommit) and JoinGroup need Read.
admin acl add --allow-principal User:alice --operation Describe --group g1 || tl_fail "acl add group Describe"
rc=0; as alice group seek g1 -o beginning -t t1 --execute >/dev/null 2>"$TL_TMP/err" || rc=$?
[ $rc != 0 ] || tl_fail "alice committed offsets for g1 without Read on it"
grep -qi 'Group authorization failed' "$TL_TMP/err" || tl_fail "group seek: $(cat "$TL_TMP/err")"
kc alice -G g1 -c 5 -q -X auto.offset.reset=earliest -X session.timeout.ms=6000 t1 >/dev/null 2>"$TL_TMP/err" &&
	tl_fail "alice consumed in group g1 without Read on it"
grep -qi 'Group authorization failed' "$TL_TMP/err" || tl_fail "kcat -G g1: $(cat "$TL_TMP/err")"
admin acl add --allow-principal User:alice --operation Read --group g1 || tl_fail "acl add group"
# The authorized_operations bit fields (1 << operation), as Kafka's clients show them:
# Read(3) and the Describe(8) it implies on t1 and g1, nothing on the cluster; the super
# user every operation Kafka supports for each type.
got=$(RAWPROTO_CLIENT_ID=User:alice timeout 20 "$TL_PROGS/rawproto" "$TL_BROKER" authorized-ops t1 g1) ||
	tl_fail "rawproto authorized-ops as alice failed"
[ "$got" = "topic 264 cluster 0 describe-cluster 0 group 264" ] || tl_fail "alice's authorized operations: $got"
got=$(RAWPROTO_CLIENT_ID=User:admin timeout 20 "$TL_PROGS/rawproto" "$TL_BROKER" authorized-ops t1 g1) ||
	tl_fail "rawproto authorized-ops as admin failed"
[ "$got" = "topic 3576 cluster 8096 describe-cluster 8096 group 328" ] || tl_fail "admin's authorized operations: $got"
n=$(kc alice -G g1 -c 5 -q -X auto.offset.reset=earliest -X session.timeout.ms=6000 t1 | wc -l)
[ "$n" = 5 ] || tl_fail "alice read $n records in group g1, want 5"
as alice group seek g1 -o beginning -t t1 --execute >/dev/null || tl_fail "alice could not commit offsets for g1 once allowed"
# Metadata of every topic shows her only t1.
topics=$(kc alice -L -J | python3 -c 'import json,sys; print(" ".join(sorted(t["topic"] for t in json.load(sys.stdin)["topics"])))')
[ "$topics" = t1 ] || tl_fail "alice's metadata lists: $topics"

tl_log "(3) DENY wins, PREFIXED"
admin acl add --deny-principal User:alice --operation Read --topic t1 || tl_fail "acl add deny"
kc alice -C -t t1 -o beginning -e -q >/dev/null 2>"$TL_TMP/err" && tl_fail "a DENY did not override alice's ALLOW"
grep -qi 'Topic authorization failed' "$TL_TMP/err" || tl_fail "denied consume: $(cat "$TL_TMP/err")"
admin acl add --allow-principal User:bob --operation Write --topic app. --resource-pattern-type prefixed || tl_fail "acl add prefixed"
admin acl add --deny-principal User:bob --operation Write --topic app.secret || tl_fail "acl add deny literal"
kc bob -P -t app.orders <<<"o1" || tl_fail "bob could not produce to app.orders"
kc bob -P -t other <<<"o1" 2>"$TL_TMP/err" && tl_fail "bob produced to other"
kc bob -P -t app.secret <<<"s1" 2>"$TL_TMP/err" && tl_fail "bob produced to app.secret despite the DENY"
grep -qi 'Topic authorization failed' "$TL_TMP/err" || tl_fail "app.secret: $(cat "$TL_TMP/err")"

tl_log "(4) transactional ids"
# Describe finds the coordinator (FindCoordinator); InitProducerId needs Write.
admin acl add --allow-principal User:carol --operation Describe --transactional-id tx1 || tl_fail "acl add txn Describe"
RDK_CLIENT_ID=User:carol timeout 30 "$TL_PROGS/rdk_txn_once" "$TL_BROKER" t3 tx1 2 1 2>"$TL_TMP/err" &&
	tl_fail "carol initialised transactional id tx1 without Write on it"
grep -qi 'Transactional Id authorization failed' "$TL_TMP/err" || tl_fail "init_transactions: $(cat "$TL_TMP/err")"
admin acl add --allow-principal User:carol --operation Write --transactional-id tx1 --topic t3 || tl_fail "acl add txn"
RDK_CLIENT_ID=User:carol timeout 30 "$TL_PROGS/rdk_txn_once" "$TL_BROKER" t3 tx1 2 1 2>"$TL_TMP/err" ||
	tl_fail "carol's transaction failed once allowed: $(cat "$TL_TMP/err")"

d=$(denied_total)
[ -n "$d" ] && [ "$d" -ge 8 ] || tl_fail "tally_authorization_denied_total=$d, want at least 8"

tl_log "(5) restart"
admin acl list >"$TL_TMP/before"
[ "$(grep -c ALLOW "$TL_TMP/before")" = 7 ] && [ "$(grep -c DENY "$TL_TMP/before")" = 2 ] ||
	tl_fail "acl list before the restart: $(cat "$TL_TMP/before")"
tl_stop_broker
tl_start_broker
tl_grep_log 'acl: authorizer on acls=9' || tl_fail "the ACLs did not come back"
admin acl list >"$TL_TMP/after"
[ "$(sort "$TL_TMP/before")" = "$(sort "$TL_TMP/after")" ] || tl_fail "ACLs after the restart: $(cat "$TL_TMP/after")"
kc alice -C -t t2 -o beginning -e -q >/dev/null 2>&1 && tl_fail "alice read t2 after the restart"
admin acl remove --topic t1 --deny-principal User:alice --operation Read || tl_fail "acl remove"
n=$(kc alice -C -t t1 -o beginning -e -q | wc -l)
[ "$n" = 5 ] || tl_fail "alice read $n records of t1 after the DENY went, want 5"
rc=0; admin acl remove --topic nothing-here 2>/dev/null || rc=$?
[ $rc = 3 ] || tl_fail "removing ACLs that are not there exited $rc, want 3"
tl_grep_log 'acl: denied principal=User:alice host=127.0.0.1 operation=Write resource=Topic:t1' ||
	tl_fail "no denial line for alice's Write on t1"
tl_grep_log 'acl: denied principal=User:alice .*operation=Read resource=Group:g1 api=OffsetCommit' ||
	tl_fail "no denial line for alice's OffsetCommit"
tl_grep_log 'acl: denied principal=User:carol .*operation=Write resource=TransactionalId:tx1 api=InitProducerId' ||
	tl_fail "no denial line for carol's InitProducerId"
tl_stop_broker

tl_log "(6) allow.everyone.if.no.acl.found=true and the idempotent producer"
# IdempotentWrite on the cluster is denied to dave (the cluster has ACLs, none his);
# Kafka's fallback, Write on some topic (authorizeByResourceType), first checks a
# made-up topic name, which no ACL covers, so allow.everyone lets him through, as it
# lets him write the ACL-less topic itself. An ACL on some other topic must not change
# that.
tl_start_broker --override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
	--override super.users=User:admin --override tally.test.principal.from.client.id=true \
	--override allow.everyone.if.no.acl.found=true
admin acl add --allow-principal User:ops --operation Alter --cluster >/dev/null || tl_fail "acl add cluster"
admin acl add --allow-principal User:bob --operation Read --topic t1 >/dev/null || tl_fail "acl add topic"
admin topic create free -p 1 >/dev/null || tl_fail "topic create free"
echo one | kc dave -P -t free -X enable.idempotence=true 2>"$TL_TMP/err" ||
	tl_fail "dave's idempotent produce to an ACL-less topic failed: $(cat "$TL_TMP/err")"
grep -qi 'authorization failed' "$TL_TMP/err" && tl_fail "dave's idempotent produce: $(cat "$TL_TMP/err")"
n=$(kc dave -C -t free -o beginning -e -q | wc -l)
[ "$n" = 1 ] || tl_fail "topic free holds $n records, want 1"
tl_stop_broker
