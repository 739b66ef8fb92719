#!/usr/bin/env bash
# The three parts of issue #16 together, as a Kafka user deploys them: a SASL_SSL
# listener (TLS, then SCRAM-SHA-512) beside a PLAINTEXT one, with the authorizer on and
# the principals coming from SASL (no test-only hook):
#  - kcat and the tally CLI produce and consume over SASL_SSL as alice, who holds
#    Write and Read on topic orders (and Read on her group);
#  - bob, authenticated but without ACLs, is refused (TOPIC_AUTHORIZATION_FAILED);
#  - a wrong password over TLS gets SASL_AUTHENTICATION_FAILED;
#  - an unauthenticated client on the PLAINTEXT listener is User:ANONYMOUS and is
#    refused too (allow.everyone.if.no.acl.found=false).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$TL_ROOT/tests/certs.sh"
tl_require_cmd kcat openssl
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"

certs=$TL_TMP/certs
tl_make_certs "$certs" || tl_fail "cannot make test certificates"
A_PW='alice-over-tls-1'
B_PW='bob-over-tls-2'
tl_pick_two_ports
sasl_port=$TL_PORT2
tl_start_broker --override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT,SASL_SSL://127.0.0.1:$sasl_port" \
	--override "advertised.listeners=SASL_SSL://localhost:$sasl_port" \
	--override "ssl.keystore.location=$certs/broker.pem" \
	--override sasl.enabled.mechanisms=SCRAM-SHA-512 \
	--override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
	--override super.users=User:admin \
	--add-scram "SCRAM-SHA-512=[name=alice,password=$A_PW]" \
	--add-scram "SCRAM-SHA-512=[name=bob,password=$B_PW]" \
	--add-scram "SCRAM-SHA-512=[name=admin,password=admin-pw]"
tl_grep_log "listening on 127.0.0.1:$sasl_port advertised=localhost:$sasl_port listener=SASL_SSL security.protocol=SASL_SSL" ||
	tl_fail "the SASL_SSL listener is not served"

sasl_ssl() # user password: librdkafka/libtally keys for SASL_SSL with SCRAM-SHA-512
{
	printf '%s\n' -X security.protocol=sasl_ssl -X "ssl.ca.location=$certs/ca.pem" \
		-X sasl.mechanisms=SCRAM-SHA-512 -X "sasl.username=$1" -X "sasl.password=$2"
}
mapfile -t as_admin < <(sasl_ssl admin admin-pw)
mapfile -t as_alice < <(sasl_ssl alice "$A_PW")
mapfile -t as_bob < <(sasl_ssl bob "$B_PW")
mapfile -t as_wrong < <(sasl_ssl alice not-her-password)
kc() { timeout 20 kcat -b "localhost:$sasl_port" "$@"; }
tally() { "$TL_BIN/tally" -b "localhost:$sasl_port" --timeout 10s "$@"; }

tl_log "(1) the super user, over SASL_SSL, creates the topic and alice's ACLs"
tally "${as_admin[@]}" topic create orders -p 1 >/dev/null || tl_fail "admin cannot create topic orders"
for op in Write Read Describe; do
	tally "${as_admin[@]}" acl add --allow-principal User:alice --operation "$op" --topic orders >/dev/null ||
		tl_fail "acl add $op for alice"
done
tally "${as_admin[@]}" acl add --allow-principal User:alice --operation Read --group g-alice >/dev/null ||
	tl_fail "acl add group Read for alice"

tl_log "(2) alice produces with kcat and tally, and reads both back, over SASL_SSL"
seq 1 50 | sed 's/^/kcat-/' | kc "${as_alice[@]}" -P -t orders -X acks=all 2>"$TL_TMP/err" ||
	{ cat "$TL_TMP/err" >&2; tl_fail "alice: kcat produce over SASL_SSL failed"; }
seq 1 50 | sed 's/^/tally-/' | tally "${as_alice[@]}" produce orders ||
	tl_fail "alice: tally produce over SASL_SSL failed"
got=$(kc "${as_alice[@]}" -C -q -t orders -o beginning -e) || tl_fail "alice: kcat consume failed"
want=$(seq 1 50 | sed 's/^/kcat-/'; seq 1 50 | sed 's/^/tally-/')
[ "$got" = "$want" ] || tl_fail "alice read $(wc -l <<<"$got") lines, not the 100 produced in order"
n=$(tally "${as_alice[@]}" tail orders -o beginning -e -g g-alice | wc -l)
[ "$n" = 100 ] || tl_fail "alice: tally tail in group g-alice read $n records, want 100"
tl_grep_log 'SASL authenticated principal=User:alice mechanism=SCRAM-SHA-512' ||
	tl_fail "no authentication line for User:alice"

tl_log "(3) bob is authenticated but has no ACL; a wrong password; ANONYMOUS on PLAINTEXT"
echo x | kc "${as_bob[@]}" -P -t orders 2>"$TL_TMP/err" && tl_fail "bob produced to orders without an ACL"
grep -qi 'Topic authorization failed' "$TL_TMP/err" || tl_fail "bob's produce: $(cat "$TL_TMP/err")"
kc "${as_wrong[@]}" -L -m 5 >/dev/null 2>"$TL_TMP/err" && tl_fail "a wrong password was accepted over SASL_SSL"
grep -qiE 'authentication failed|SASL_AUTHENTICATION_FAILED|Invalid' "$TL_TMP/err" ||
	tl_fail "wrong password: $(cat "$TL_TMP/err")"
echo y | timeout 20 kcat -b "$TL_BROKER" -P -t orders 2>"$TL_TMP/err" && tl_fail "User:ANONYMOUS produced to orders"
grep -qi 'Topic authorization failed' "$TL_TMP/err" || tl_fail "anonymous produce: $(cat "$TL_TMP/err")"
n=$(kc "${as_alice[@]}" -C -q -t orders -o beginning -e | wc -l)
[ "$n" = 100 ] || tl_fail "orders holds $n records after the refusals, want 100"
tl_log "ok"
