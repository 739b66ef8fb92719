#!/usr/bin/env bash
# ACLs against kafkajs 2.2.4 (tests/interop/kafkajs_acl.js) and the answers of a broker
# without an authorizer:
#   (1) no authorizer.class.name: `tally acl list` and `acl add` get SECURITY_DISABLED
#       and every client may still do everything;
#   (2) with the authorizer (super.users=User:admin, the test-only principal hook),
#       kafkajs sees CLUSTER_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED,
#       TRANSACTIONAL_ID_AUTHORIZATION_FAILED and GROUP_AUTHORIZATION_FAILED as Kafka
#       sends them, commits an allowed transaction, and creates, describes (MATCH
#       filters) and deletes ACLs; PREFIXED transactional ids, DENY over ALLOW;
#   (3) a corrupt ACL file stops the broker at start with a message naming it;
#   (4) cluster mode (2 brokers, etcd): ACLs created through one broker are stored in
#       etcd and enforced by both, survive a broker's restart, and are removed for all.
#       The brokers' own principal (User:ANONYMOUS on PLAINTEXT) is a super user, as
#       Kafka's inter-broker principal must be (replica fetches need ClusterAction).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"

tl_log "(1) no authorizer"
tl_start_broker
rc=0; "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s acl list 2>"$TL_TMP/err" >/dev/null || rc=$?
[ $rc != 0 ] && grep -q 'SECURITY_DISABLED' "$TL_TMP/err" || tl_fail "acl list without an authorizer: rc=$rc $(cat "$TL_TMP/err")"
rc=0; "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s acl add --allow-principal User:a --topic t 2>"$TL_TMP/err" || rc=$?
[ $rc != 0 ] && grep -q 'SECURITY_DISABLED' "$TL_TMP/err" || tl_fail "acl add without an authorizer: rc=$rc $(cat "$TL_TMP/err")"
tl_stop_broker

tl_log "(3) a corrupt ACL file"
mkdir -p "$TL_DATA/.tally-meta"
printf '2 3 3 3 User:a * t\n2 9 3 3 User:a * t\n' >"$TL_DATA/.tally-meta/acls"
rc=0; "$TL_TALLYD" --override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT" --override "log.dirs=$TL_DATA" \
	--override authorizer.class.name=kafka.security.authorizer.AclAuthorizer >"$TL_TMP/corrupt.log" 2>&1 || rc=$?
[ $rc != 0 ] || tl_fail "tallyd started with a corrupt ACL file"
grep -q 'acl: corrupt file .*acls problem="line 2' <(tl_log_text "$TL_TMP/corrupt.log") || tl_fail "corrupt file: $(tail -3 "$TL_TMP/corrupt.log")"
rm "$TL_DATA/.tally-meta/acls"

tl_log "(4) cluster mode"
if command -v etcd >/dev/null 2>&1 && command -v kcat >/dev/null 2>&1; then
	tl_cluster_start 2 --override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
		--override super.users='User:admin;User:ANONYMOUS' --override tally.test.principal.from.client.id=true
	cadmin() { timeout 20 "$TL_BIN/tally" -b "$TL_BOOTSTRAP" --timeout 10s -X client.id=User:admin "$@"; }
	applied() # BROKER COUNT: waits until broker BROKER applied COUNT ACLs from its view
	{
		tl_cwait_log "$1" "acl: applied the cluster.s ACLs acls=$2\$" 10 \
			"broker $1 did not apply $2 ACLs from etcd"
	}
	cadmin topic create c1 -p 2 --replication-factor 2 >/dev/null || tl_fail "cluster topic create"
	tl_cluster_wait_isr c1 2 2
	cadmin acl add --allow-principal User:alice --operation Read --topic c1 || tl_fail "acl add in cluster mode"
	applied 1 1
	applied 2 1
	seq 1 4 | kcat -P -b "$TL_BOOTSTRAP" -X client.id=User:admin -t c1 || tl_fail "cluster produce"
	n=$(timeout 20 kcat -C -b "$TL_BOOTSTRAP" -X client.id=User:alice -t c1 -o beginning -e -q | wc -l)
	[ "$n" = 4 ] || tl_fail "alice read $n records from the cluster, want 4"
	timeout 20 kcat -P -b "$TL_BOOTSTRAP" -X client.id=User:alice -t c1 <<<"x" 2>"$TL_TMP/err" &&
		tl_fail "alice produced to c1 in the cluster"
	grep -qi 'Topic authorization failed' "$TL_TMP/err" || tl_fail "cluster produce: $(cat "$TL_TMP/err")"
	tl_cbroker_stop 2
	tl_cbroker_start 2
	applied 2 1
	cadmin acl remove --topic c1 || tl_fail "acl remove in cluster mode"
	applied 1 0
	applied 2 0
	[ "$(cadmin acl list | wc -l)" = 1 ] || tl_fail "ACLs left in the cluster: $(cadmin acl list)"
else
	tl_log "(4) not run: etcd or kcat missing"
fi

if ! command -v node >/dev/null 2>&1 || [ ! -d tests/interop/node_modules/kafkajs ]; then
	tl_skip "kafkajs part not run: node or tests/interop/node_modules/kafkajs missing (make deps)"
fi
tl_log "(2) kafkajs"
tl_start_broker --override authorizer.class.name=kafka.security.authorizer.AclAuthorizer \
	--override super.users=User:admin --override tally.test.principal.from.client.id=true \
	--override group.initial.rebalance.delay.ms=0
KAFKAJS_NO_PARTITIONER_WARNING=1 timeout 60 node tests/interop/kafkajs_acl.js "$TL_BROKER" >&2 ||
	tl_fail "kafkajs ACL checks failed"
tl_grep_log 'acl: denied principal=User:kal .*operation=Write resource=TransactionalId:ktx-denied' ||
	tl_fail "no denial line for the transactional id"
tl_stop_broker
