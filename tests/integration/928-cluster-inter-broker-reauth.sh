#!/usr/bin/env bash
# Inter-broker re-authentication (issue #16, KIP-368): 2 brokers whose only listener,
# also the inter-broker one, is SASL_PLAINTEXT (SCRAM-SHA-256, User:broker, its login
# given as Kafka's JAAS text in listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config)
# with connections.max.reauth.ms=3000. A broker closes a connection whose session ended at
# its next request other than SaslHandshake/SaslAuthenticate/ApiVersions; the replica
# fetcher and the marker sender must log in again (85-95% into the session lifetime
# SaslAuthenticate gave them) on the same connection instead.
#  - over ~11 s of replication (an rf=2 topic of 2 partitions, one led by each broker,
#    so both fetchers run; acks=all records), each follower re-authenticates at least 3
#    times, each leader logs User:broker's re-authentications, no broker closes a
#    connection for an expired session, no fetcher loses its connection, no ISR shrinks;
#  - a transaction whose marker crosses brokers, then another more than a session
#    lifetime later on the same marker connection: the marker sender re-authenticated
#    (logged), read_committed sees exactly the committed records.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat etcdctl
tl_require_prog rdk_txn_once

ADMIN_PW='admin-928-pw'
BROKER_PW='broker-928-pw'
mapfile -t as_admin < <(printf '%s\n' -X security.protocol=sasl_plaintext \
	-X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=admin -X "sasl.password=$ADMIN_PW")
TL_CLISTENER1=SASL_PLAINTEXT
TL_CTALLY_ARGS=(--timeout 10s "${as_admin[@]}")
tl_cluster_start 2 --override inter.broker.listener.name=SASL_PLAINTEXT \
	--override sasl.enabled.mechanisms=SCRAM-SHA-256 \
	--override sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256 \
	--override "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"$BROKER_PW\";" \
	--override connections.max.reauth.ms=3000 \
	--override offsets.topic.replication.factor=2 \
	--override transaction.state.log.replication.factor=2 \
	--override transaction.state.log.num.partitions=1 \
	--add-scram "SCRAM-SHA-256=[name=admin,password=$ADMIN_PW]" \
	--add-scram "SCRAM-SHA-256=[name=broker,password=$BROKER_PW]"
tally() { "$TL_TALLY" -b "$TL_BOOTSTRAP" "${TL_CTALLY_ARGS[@]}" "$@"; }
deadline=$((SECONDS + 15))
until tally topic create t928 --partitions 2 --replication-factor 2 >"$TL_TMP/tc.out" 2>&1; do
	[ $SECONDS -lt $deadline ] || { cat "$TL_TMP/tc.out" >&2; tl_fail "topic create over SASL_PLAINTEXT"; }
	sleep 0.3 # admin's credential reaches the views asynchronously (--add-scram)
done
tl_cluster_wait_isr t928 2 2 20
start=$SECONDS
[ "$(tl_cluster_leader t928 0)" != "$(tl_cluster_leader t928 1)" ] ||
	tl_log "note: both partitions are led by broker $(tl_cluster_leader t928 0); one fetcher only"

export RDK_CONF="security.protocol=sasl_plaintext sasl.mechanisms=SCRAM-SHA-256 sasl.username=admin sasl.password=$ADMIN_PW"
txn_on() # partition: 5 committed and 3 aborted records there, read back read_committed
{
	RDK_PARTITION=$1 timeout 30 "$TL_PROGS/rdk_txn_once" "$TL_BOOTSTRAP" t928 "tx928-$2" 5 3 2>"$TL_TMP/tx.err" ||
		{ cat "$TL_TMP/tx.err" >&2; tl_fail "the transaction on partition $1 failed"; }
	timeout 30 kcat -b "$TL_BOOTSTRAP" "${as_admin[@]}" -X isolation.level=read_committed -C -q -t t928 \
		-p "$1" -o beginning -e >"$TL_TMP/tx.got" 2>"$TL_TMP/txc.err" || { cat "$TL_TMP/txc.err" >&2; tl_fail "read_committed consume failed"; }
	[ "$(grep -c '^txn-commit-' "$TL_TMP/tx.got")" = "$3" ] && ! grep -q '^txn-abort-' "$TL_TMP/tx.got" ||
		tl_fail "read_committed on t928/$1 got $(grep -c '^txn-commit-' "$TL_TMP/tx.got") committed and $(grep -c '^txn-abort-' "$TL_TMP/tx.got") aborted records, want $3 and 0"
}
tl_log "a first transaction creates __transaction_state"
txn_on 0 a 5
coord=$(tl_cluster_leader __transaction_state 0)
cross=
for p in 0 1; do [ "$(tl_cluster_leader t928 $p)" != "$coord" ] && cross=$p; done
if [ -n "$cross" ]; then
	tl_log "a transaction on t928/$cross (led by broker $(tl_cluster_leader t928 $cross), coordinator $coord): marker over the network"
	want=5
	[ "$cross" != 0 ] || want=10
	txn_on "$cross" b "$want"
fi

tl_log "11 s of replication with acks=all records, sessions of 3 s"
for round in 1 2 3 4 5; do
	seq 1 200 | sed "s/^/rec-928-$round-/" |
		timeout 30 kcat -b "$TL_BOOTSTRAP" "${as_admin[@]}" -P -t t928 -X acks=all 2>"$TL_TMP/p.err" ||
		{ cat "$TL_TMP/p.err" >&2; tl_fail "kcat produce round $round failed"; }
	grep -Eq 'ERROR|Delivery failed' "$TL_TMP/p.err" && { cat "$TL_TMP/p.err" >&2; tl_fail "produce round $round reported errors"; }
	while [ $((SECONDS - start)) -lt $((round * 2 + 1)) ]; do sleep 0.2; done
done
if [ -n "$cross" ]; then
	tl_log "a transaction on t928/$cross more than a session later: the marker connection logs in again"
	txn_on "$cross" c $((want + 5))
fi
tl_cluster_wait_isr t928 2 2 5

for i in 1 2; do
	other=$((3 - i))
	log=$(tl_log_text "$TL_TMP/tallyd-$i.log")
	n=$(grep -c "fetcher: re-authenticated with leader leader=$other principal=User:broker session_lifetime_ms=3000" <<<"$log" || true)
	led=$(for p in 0 1; do tl_cluster_leader t928 $p; done | grep -c "^$other$" || true)
	if [ "$led" -gt 0 ] || grep -q "fetcher: connected to leader leader=$other" <<<"$log"; then
		[ "$n" -ge 3 ] || tl_fail "broker $i re-authenticated $n times with leader $other in ~11 s of 3 s sessions, want >= 3"
	fi
	grep -q "SASL session expired, closing connection" <<<"$log" &&
		tl_fail "broker $i closed a connection for an expired session: $(grep -m1 'SASL session expired' <<<"$log")"
	grep -q "fetcher: connection to leader lost\|fetcher: cannot connect" <<<"$log" &&
		tl_fail "broker $i's fetcher lost its connection: $(grep -m1 'fetcher: c' <<<"$log" | grep -v 'connected to')"
	grep -q "replica: asking for an ISR change topic=t928 .*isr_from=2 isr_to=1" <<<"$log" &&
		tl_fail "broker $i shrank an ISR of t928"
done
tl_cgrep 1 "SASL re-authenticated principal=User:broker mechanism=SCRAM-SHA-256 .*session_lifetime_ms=3000" ||
	tl_cgrep 2 "SASL re-authenticated principal=User:broker mechanism=SCRAM-SHA-256 .*session_lifetime_ms=3000" ||
	tl_fail "no broker logged a re-authentication of User:broker"
if [ -n "$cross" ]; then
	tl_cgrep "$coord" "txn: re-authenticated with broker=$(tl_cluster_leader t928 "$cross") principal=User:broker" ||
		tl_fail "broker $coord's marker sender did not re-authenticate before its second marker"
fi
for i in 1 2; do
	grep -qF "$BROKER_PW" "$TL_TMP/tallyd-$i.log" && tl_fail "broker $i logged the inter-broker password"
done
tl_log "ok: the fetchers and the marker sender re-authenticated within 3 s sessions; no connection closed for expiry, no ISR shrink"
