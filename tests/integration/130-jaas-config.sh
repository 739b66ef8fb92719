#!/usr/bin/env bash
# Kafka's JAAS text in server.properties (issue #16), written as Kafka's documentation
# does: over lines ending in '\', with PLAIN's user_<name> accounts beside the broker's
# own username and password.
#  - cluster mode (--print-config, which stops before etcd): the inter-broker listener's
#    listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config gives the broker's login
#    (inter.broker.sasl.username=broker, the password [hidden]), before sasl.jaas.config;
#  - start-up errors naming the key and never the password: a missing ';', a PLAIN module
#    for a SCRAM mechanism, inter.broker.sasl.password disagreeing with the JAAS text;
#  - a single node starts with such a file and serves SCRAM logins (its users are its
#    SCRAM credentials; the JAAS accounts are not Tally's); no password in its log.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

BROKER_PW='broker-130-Secret'
PLAIN_PW='plain-130-account'
ADMIN_PW='admin-130-pw'
props() # extra lines of the listener's JAAS entry (after username/password)
{
	cat <<PROPS
listeners=SASL_PLAINTEXT://127.0.0.1:9092
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\
    username="fallback" password="fallback-pw";
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\
    username="broker" \\
    password="$BROKER_PW"$1
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\
    username="broker" password="$BROKER_PW" \\
    user_broker="$BROKER_PW" user_alice="$PLAIN_PW";
PROPS
}
print_config() # file [args]: tallyd --print-config in cluster mode, output in $out
{
	local f=$1 rc=0
	shift
	out=$("$TL_TALLYD" --config "$f" --override metadata.etcd.endpoints=http://127.0.0.1:1 \
		--override node.id=1 "$@" --print-config 2>&1) || rc=$?
	grep -qF -e "$BROKER_PW" -e "$PLAIN_PW" <<<"$out" && tl_fail "tallyd printed a JAAS password: $out"
	return $rc
}

props ';' >"$TL_TMP/ok.properties"
print_config "$TL_TMP/ok.properties" || tl_fail "tallyd refused Kafka-style JAAS text: $out"
grep -qx 'inter.broker.sasl.username=broker' <<<"$out" ||
	tl_fail "the listener's JAAS username is not the inter-broker login: $(grep inter.broker <<<"$out")"
grep -qx 'inter.broker.sasl.password=\[hidden\]' <<<"$out" || tl_fail "no hidden inter-broker password: $out"

props '' >"$TL_TMP/nosemi.properties"
print_config "$TL_TMP/nosemi.properties" && tl_fail "a JAAS entry without ';' was accepted"
grep -q "config listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config: .*missing ';'" <<<"$out" ||
	tl_fail "missing ';': unclear error: $out"

sed 's/^listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule/listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule/' \
	"$TL_TMP/ok.properties" >"$TL_TMP/module.properties"
print_config "$TL_TMP/module.properties" && tl_fail "a PLAIN login module for SCRAM-SHA-512 was accepted"
grep -q "does not log in with SCRAM-SHA-512" <<<"$out" || tl_fail "wrong module: unclear error: $out"

print_config "$TL_TMP/ok.properties" --override inter.broker.sasl.password=something-else &&
	tl_fail "inter.broker.sasl.password disagreeing with the JAAS text was accepted"
grep -q "disagree on the password" <<<"$out" || tl_fail "disagreeing password: unclear error: $out"
grep -q "something-else" <<<"$out" && tl_fail "tallyd printed the disagreeing password: $out"
print_config "$TL_TMP/ok.properties" --override inter.broker.sasl.username=broker ||
	tl_fail "an agreeing inter.broker.sasl.username was refused: $out"

tl_log "a single node with the file serves SCRAM logins"
props ';' | grep -v '^listeners=' >"$TL_TMP/single.properties"
tl_start_broker --config "$TL_TMP/single.properties" \
	--override listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT \
	--override inter.broker.listener.name=PLAINTEXT \
	--add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PW]"
echo hello-130 | timeout 20 kcat -b "$TL_BROKER" -X security.protocol=sasl_plaintext \
	-X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X "sasl.password=$ADMIN_PW" \
	-P -t t130 -X acks=all 2>"$TL_TMP/p.err" || { cat "$TL_TMP/p.err" >&2; tl_fail "SCRAM produce failed"; }
grep -qF -e "$BROKER_PW" -e "$PLAIN_PW" -e fallback-pw "$TL_TMP/tallyd.log" && tl_fail "tallyd logged a JAAS password"
tl_log "ok: JAAS text gives the inter-broker login, its errors are clear and never show a password"
