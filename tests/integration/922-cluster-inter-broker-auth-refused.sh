#!/usr/bin/env bash
# Inter-broker security refused (issue #16): 2 brokers, SASL_SSL only, the authorizer on.
#  (1) User:broker without ClusterAction: the leader denies its followers' Fetch
#      (replica_id >= 0 needs ClusterAction on the Cluster, as Kafka), so the follower
#      drops out of the ISR (a new topic's ISR starts full) and the leader logs the
#      denial naming User:broker; once the ACL is added it joins again.
#  (2) a follower restarted with a wrong inter.broker.sasl.password cannot log in: it
#      stays out of the ISR, it logs SASL_AUTHENTICATION_FAILED naming User:broker, the
#      leader logs the failed login naming User:broker, and neither logs the password.
#  (3) Metadata per listener with a broker lacking a listener: the restarted follower
#      also serves PLAINTEXT, which the leader lacks. A PLAINTEXT client is given the
#      follower alone and, for the partition the leader leads, no leader with
#      LISTENER_NOT_FOUND (Metadata v6+; LEADER_NOT_AVAILABLE before, which kcat's
#      librdkafka 2.0.2 gets), as Kafka's MetadataCache; a SASL_SSL client is given both brokers'
#      SASL_SSL ports.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
. "$TL_ROOT/tests/certs.sh"
tl_require_cmd kcat etcdctl openssl

certs=$TL_TMP/certs
tl_make_certs "$certs" || tl_fail "cannot make test certificates"
ADMIN_PW='admin-922-pw'
BROKER_PW='broker-922-pw'
WRONG_PW='not-the-922-pw'
mapfile -t as_admin < <(printf '%s\n' -X security.protocol=sasl_ssl -X "ssl.ca.location=$certs/ca.pem" \
	-X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X "sasl.password=$ADMIN_PW")
TL_CLISTENER1=SASL_SSL
TL_CTALLY_ARGS=(--timeout 10s "${as_admin[@]}")
tl_cluster_start 2 --override inter.broker.listener.name=SASL_SSL \
	--override "ssl.keystore.location=$certs/broker.pem" \
	--override "ssl.truststore.location=$certs/ca.pem" \
	--override sasl.enabled.mechanisms=SCRAM-SHA-512 \
	--override sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512 \
	--override inter.broker.sasl.username=broker \
	--override "inter.broker.sasl.password=$BROKER_PW" \
	--override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
	--override super.users=User:admin \
	--override replica.lag.time.max.ms=2000 \
	--add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PW]" \
	--add-scram "SCRAM-SHA-512=[name=broker,password=$BROKER_PW]"
tally() { "$TL_TALLY" -b "$TL_BOOTSTRAP" "${TL_CTALLY_ARGS[@]}" "$@"; }
# The ISR as etcd holds it: a Metadata answer comes from one broker's view, which may
# lag the leader's own write (a run saw '2' from one broker right after the kill while
# etcd, and the next broker asked, still had '2,1').
isr_of()
{
	ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get /tally/partitions/t922/0 \
		--print-value-only 2>/dev/null | sed -n 's/.* isr=\([0-9,]*\).*/\1/p'
}

tl_log "(1) no ClusterAction for User:broker: the follower's Fetch is denied"
deadline=$((SECONDS + 15))
until tally topic create t922 --partitions 1 --replication-factor 2 >"$TL_TMP/tc.out" 2>&1; do
	[ $SECONDS -lt $deadline ] || { cat "$TL_TMP/tc.out" >&2; tl_fail "topic create over SASL_SSL"; }
	sleep 0.3 # admin's credential reaches the views asynchronously (--add-scram)
done
deadline=$((SECONDS + 15))
until leader=$(tl_cluster_leader t922 0) && [ -n "$leader" ] && [ "$leader" -ge 1 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "t922 has no leader"
	sleep 0.2
done
follower=$((3 - leader))
tl_cwait_log "$leader" "acl: denied principal=User:broker .*operation=ClusterAction" 15
tl_cwait_log "$follower" "fetcher: connected to leader leader=$leader security.protocol=SASL_SSL principal=User:broker" 5
# A new topic starts with every replica in its ISR; one that cannot fetch drops out
# after replica.lag.time.max.ms (2 s here).
deadline=$((SECONDS + 15))
until [ "$(isr_of)" = "$leader" ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "ISR still '$(isr_of)' 15 s into a follower lacking ClusterAction, want '$leader'"
	sleep 0.2
done
tl_cgrep "$follower" "fetcher: cannot connect" && tl_fail "broker $follower: the login failed, not the Fetch's authorization"
tally acl add --allow-principal User:broker --operation ClusterAction --cluster >/dev/null ||
	tl_fail "acl add ClusterAction for User:broker"
tl_cluster_wait_isr t922 1 2 20

tl_log "(2) broker $follower restarted with a wrong inter-broker password"
tl_cbroker_kill9 "$follower"
deadline=$((SECONDS + 20))
until [ "$(isr_of)" = "$leader" ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "ISR still '$(isr_of)' 20 s after the follower's kill -9"
	sleep 0.2
done
args=()
for a in "${TL_CARGS[@]}"; do args+=("${a/inter.broker.sasl.password=$BROKER_PW/inter.broker.sasl.password=$WRONG_PW}"); done
TL_CARGS=("${args[@]}")
# Right after the kill: CreateAcls goes to any broker that answers (libtally, as Kafka's
# AdminClient), not to the controller etcd may still name (the killed broker, until its
# lease ends).
tally acl add --allow-principal User:ANONYMOUS --operation Describe --topic t922 >/dev/null ||
	tl_fail "acl add Describe for User:ANONYMOUS"
TL_CLISTENER2=PLAINTEXT
TL_CPORT2[$follower]=$(tl_pick_port) || tl_fail "no free port"
tl_cbroker_start "$follower"
tl_cwait_log "$follower" "fetcher: cannot connect to the leader over the inter-broker listener leader=$leader principal=User:broker security.protocol=SASL_SSL err=SASL_AUTHENTICATION_FAILED" 15
tl_cwait_log "$leader" "SASL authentication failed principal=User:broker " 5
isr=$(isr_of)
[ "$isr" = "$leader" ] || tl_fail "ISR is '$isr' with a wrong inter-broker password, want '$leader'"

tl_log "(3) Metadata on a listener the leader lacks"
plain=127.0.0.1:${TL_CPORT2[$follower]}
deadline=$((SECONDS + 10))
while :; do
	timeout 20 kcat -b "$plain" -L -J -t t922 >"$TL_TMP/md-plain.json" 2>"$TL_TMP/md.err" || true
	grep -Eq '"error":"Broker: (Listener not found|Leader not available)"' "$TL_TMP/md-plain.json" && break
	[ $SECONDS -lt $deadline ] || tl_fail "Metadata on PLAINTEXT: t922/0 has no error: $(cat "$TL_TMP/md-plain.json" "$TL_TMP/md.err")"
	sleep 0.3
done
python3 - "$TL_TMP/md-plain.json" "$leader" "$follower" "${TL_CPORT2[$follower]}" <<'PY' || tl_fail "Metadata on PLAINTEXT: $(cat "$TL_TMP/md-plain.json")"
import json, sys
md = json.load(open(sys.argv[1]))
leader, follower, port = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ids = {b["id"]: b["name"] for b in md["brokers"]}
assert ids == {follower: "127.0.0.1:" + port}, ids
p = md["topics"][0]["partitions"][0]
assert p["leader"] == -1, p
PY
timeout 20 kcat -b "127.0.0.1:${TL_CPORT[$leader]}" "${as_admin[@]}" -L -J >"$TL_TMP/md-sasl.json" 2>/dev/null ||
	tl_fail "kcat -L over SASL_SSL failed"
for i in 1 2; do
	grep -q "{\"id\":$i,\"name\":\"127.0.0.1:${TL_CPORT[$i]}\"}" "$TL_TMP/md-sasl.json" ||
		tl_fail "Metadata on SASL_SSL lacks broker $i's SASL_SSL port: $(cat "$TL_TMP/md-sasl.json")"
done
grep -q ":${TL_CPORT2[$follower]}\"" "$TL_TMP/md-sasl.json" && tl_fail "Metadata on SASL_SSL names a PLAINTEXT port"
for i in 1 2; do
	grep -qF -e "$WRONG_PW" -e "$BROKER_PW" "$TL_TMP/tallyd-$i.log" && tl_fail "broker $i logged an inter-broker password"
done
tl_log "ok: ClusterAction and the inter-broker login are enforced, failures logged by principal; Metadata leaves out a broker lacking the listener"
