#!/usr/bin/env bash
# Inter-broker security (issue #16): 3 brokers whose only listener is SASL_SSL, which is
# also the inter-broker listener (inter.broker.listener.name=SASL_SSL): the replica
# fetchers and the marker sender log in with SCRAM-SHA-512 over TLS as User:broker
# (sasl.mechanism.inter.broker.protocol, inter.broker.sasl.username/.password), with the
# authorizer on and User:broker holding only ClusterAction on the Cluster, as Kafka needs.
#  - an rf=3 topic of 3 partitions gets all three replicas in every ISR (followers
#    fetch over SASL_SSL);
#  - a librdkafka transaction over SASL_SSL on partition 1 or 2, whichever is led by
#    another broker than its coordinator: read_committed sees exactly the committed records, so the marker
#    went broker to broker (the marker sender, as User:broker over SASL_SSL);
#  - kcat over SASL_SSL produces to partition 0 with acks=all; kill -9 of its leader;
#    every record is consumed back, byte for byte, from the new leader.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
. "$TL_ROOT/tests/certs.sh"
tl_require_cmd kcat etcdctl openssl
tl_require_prog rdk_txn_once

certs=$TL_TMP/certs
tl_make_certs "$certs" || tl_fail "cannot make test certificates"
ADMIN_PW='admin-921-pw'
BROKER_PW='broker-921-pw'
N=2000

sasl_ssl() # user password: librdkafka/libtally keys for SASL_SSL with SCRAM-SHA-512
{
	printf '%s\n' -X security.protocol=sasl_ssl -X "ssl.ca.location=$certs/ca.pem" \
		-X sasl.mechanisms=SCRAM-SHA-512 -X "sasl.username=$1" -X "sasl.password=$2"
}
mapfile -t as_admin < <(sasl_ssl admin "$ADMIN_PW")
TL_CLISTENER1=SASL_SSL
TL_CTALLY_ARGS=(--timeout 10s "${as_admin[@]}")
tl_cluster_start 3 --override inter.broker.listener.name=SASL_SSL \
	--override "ssl.keystore.location=$certs/broker.pem" \
	--override "ssl.truststore.location=$certs/ca.pem" \
	--override sasl.enabled.mechanisms=SCRAM-SHA-512 \
	--override sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512 \
	--override inter.broker.sasl.username=broker \
	--override "inter.broker.sasl.password=$BROKER_PW" \
	--override authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
	--override super.users=User:admin \
	--override offsets.topic.replication.factor=3 \
	--override transaction.state.log.replication.factor=3 \
	--override transaction.state.log.num.partitions=1 \
	--add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PW]" \
	--add-scram "SCRAM-SHA-512=[name=broker,password=$BROKER_PW]"
for i in 1 2 3; do
	tl_cgrep "$i" "listening on 127.0.0.1:${TL_CPORT[$i]} .*listener=SASL_SSL security.protocol=SASL_SSL" ||
		tl_fail "broker $i does not serve SASL_SSL"
	tl_cgrep "$i" 'inter-broker connections listener=SASL_SSL security.protocol=SASL_SSL principal=User:broker' ||
		tl_fail "broker $i: no inter-broker SASL_SSL client line"
done
tally() { "$TL_TALLY" -b "$TL_BOOTSTRAP" "${TL_CTALLY_ARGS[@]}" "$@"; }
kc() { timeout 30 kcat -b "$TL_BOOTSTRAP" "${as_admin[@]}" "$@"; }

tl_log "the brokers' principal gets ClusterAction on the Cluster (and nothing else)"
deadline=$((SECONDS + 15))
until tally acl add --allow-principal User:broker --operation ClusterAction --cluster >"$TL_TMP/acl.out" 2>&1; do
	[ $SECONDS -lt $deadline ] || { cat "$TL_TMP/acl.out" >&2; tl_fail "acl add ClusterAction for User:broker"; }
	sleep 0.3 # admin's credential reaches the views asynchronously (--add-scram)
done
# Partition 0 carries the acks=all records and the failover; 1 and 2 the transaction.
tally topic create t921 --partitions 3 --replication-factor 3 >/dev/null || tl_fail "topic create over SASL_SSL"
tl_cluster_wait_isr t921 3 3 30
for i in 1 2 3; do
	[ "$(tl_cluster_leader t921 0)" = "$i" ] && continue
	tl_cgrep "$i" 'fetcher: connected to leader leader=[0-9]+ security.protocol=SASL_SSL principal=User:broker' ||
		tl_fail "broker $i: the fetcher did not log in over SASL_SSL"
done

tl_log "a transaction whose marker goes to another broker"
export RDK_CONF="security.protocol=sasl_ssl ssl.ca.location=$certs/ca.pem sasl.mechanisms=SCRAM-SHA-512 sasl.username=admin sasl.password=$ADMIN_PW"
# __transaction_state has 1 partition here, so its leader coordinates every
# transaction; it exists once the first transaction ran. If that one's partition was
# led by the coordinator itself (its marker stayed local), run one on another.
txn_on() # partition: 5 committed and 3 aborted records there, read back read_committed
{
	RDK_PARTITION=$1 timeout 30 "$TL_PROGS/rdk_txn_once" "$TL_BOOTSTRAP" t921 tx921 5 3 2>"$TL_TMP/tx.err" ||
		{ cat "$TL_TMP/tx.err" >&2; tl_fail "the transaction on partition $1 failed"; }
	timeout 30 kcat -b "$TL_BOOTSTRAP" "${as_admin[@]}" -X isolation.level=read_committed -C -q -t t921 \
		-p "$1" -o beginning -e >"$TL_TMP/tx.got" 2>"$TL_TMP/txc.err" || { cat "$TL_TMP/txc.err" >&2; tl_fail "read_committed consume failed"; }
	[ "$(grep -c '^txn-commit-' "$TL_TMP/tx.got")" = 5 ] && ! grep -q '^txn-abort-' "$TL_TMP/tx.got" ||
		tl_fail "read_committed on t921/$1 (leader $(tl_cluster_leader t921 "$1"), coordinator $(tl_cluster_leader __transaction_state 0)) got: $(tr '\n' ' ' <"$TL_TMP/tx.got"), want txn-commit-0..4 only"
}
txn_on 1
coord=$(tl_cluster_leader __transaction_state 0)
if [ "$(tl_cluster_leader t921 1)" = "$coord" ]; then
	[ "$(tl_cluster_leader t921 2)" != "$coord" ] ||
		tl_fail "partitions 1 and 2 of t921 are both led by the coordinator (broker $coord)"
	txn_on 2
fi
unset RDK_CONF

tl_log "produce $N records with acks=all over SASL_SSL"
seq 1 "$N" | sed 's/^/rec-921-/' >"$TL_TMP/want"
kc -P -t t921 -p 0 -X acks=all <"$TL_TMP/want" 2>"$TL_TMP/p.err" || { cat "$TL_TMP/p.err" >&2; tl_fail "kcat produce failed"; }
grep -Eq 'ERROR|Delivery failed' "$TL_TMP/p.err" && { cat "$TL_TMP/p.err" >&2; tl_fail "produce reported errors"; }
tl_cluster_wait_isr t921 3 3 30

leader=$(tl_cluster_leader t921 0)
tl_log "kill -9 the leader (broker $leader)"
tl_cbroker_kill9 "$leader"
deadline=$((SECONDS + 20))
while :; do
	now=$(tl_cluster_leader t921 0)
	[ -n "$now" ] && [ "$now" != "$leader" ] && [ "$now" != -1 ] && break
	[ $SECONDS -lt $deadline ] || tl_fail "no new leader within 20 s (leader=$now)"
	sleep 0.2
done
tl_log "new leader: broker $now"
# Only the survivors in the bootstrap list.
boot=
for i in 1 2 3; do [ "$i" = "$leader" ] || boot=${boot:+$boot,}127.0.0.1:${TL_CPORT[$i]}; done
timeout 30 kcat -b "$boot" "${as_admin[@]}" -C -q -t t921 -p 0 -o beginning -e >"$TL_TMP/got" 2>"$TL_TMP/c.err" ||
	{ cat "$TL_TMP/c.err" >&2; tl_fail "consume from the new leader failed"; }
cmp -s "$TL_TMP/want" "$TL_TMP/got" ||
	tl_fail "consumed $(wc -l <"$TL_TMP/got") records from the new leader, want the $N produced in order"
tl_log "ok: replication over SASL_SSL (SCRAM-SHA-512) as User:broker; $N records survived the leader's kill -9"
