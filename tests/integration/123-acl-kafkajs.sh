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
#   (3) a corrupt ACL file stops the broker at start with a message naming it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"

tl_log "(1) no authorizer"
tl_start_broker
rc=0; "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s acl list 2>"$TL_TMP/err" >/dev/null || rc=$?
[ $rc != 0 ] && grep -q 'SECURITY_DISABLED' "$TL_TMP/err" || tl_fail "acl list without an authorizer: rc=$rc $(cat "$TL_TMP/err")"
rc=0; "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s acl add --allow-principal User:a --topic t 2>"$TL_TMP/err" || rc=$?
[ $rc != 0 ] && grep -q 'SECURITY_DISABLED' "$TL_TMP/err" || tl_fail "acl add without an authorizer: rc=$rc $(cat "$TL_TMP/err")"
tl_stop_broker

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

tl_log "(3) a corrupt ACL file"
printf '2 3 3 3 User:a * t\n2 9 3 3 User:a * t\n' >"$TL_DATA/.tally-meta/acls"
rc=0; "$TL_TALLYD" --override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT" --override "log.dirs=$TL_DATA" \
	--override authorizer.class.name=kafka.security.authorizer.AclAuthorizer >"$TL_TMP/corrupt.log" 2>&1 || rc=$?
[ $rc != 0 ] || tl_fail "tallyd started with a corrupt ACL file"
grep -q 'acl: corrupt file .*acls problem="line 2' "$TL_TMP/corrupt.log" || tl_fail "corrupt file: $(tail -3 "$TL_TMP/corrupt.log")"
