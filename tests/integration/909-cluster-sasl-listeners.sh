#!/usr/bin/env bash
# Security in cluster mode (issue #16): 2 brokers with etcd, each serving PLAINTEXT and
# SASL_PLAINTEXT listeners.
#  (1) SCRAM credentials live in etcd (key scram-credentials, salted only): --add-scram
#      on both brokers stores admin once; a user created through broker 1 logs in on
#      broker 2 (kcat, SCRAM-SHA-512); etcd holds no clear password; a deletion through
#      broker 2 locks the user out of broker 1.
#  (2) Metadata per listener: a client on the SASL listener is given the SASL ports of
#      both brokers (never the PLAINTEXT ones), and produce/consume through the SASL
#      listener works across brokers (partitions led by each), a consumer group too
#      (FindCoordinator answers the coordinator's SASL port).
#  (3) An unknown user gets the same made-up salt from both brokers (the secret it
#      derives from is the cluster's, in etcd): per broker, it told a name that has no
#      account from one that has.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat etcdctl python3

ADMIN_PW='admin-Secret-1'
CAROL_PW='carol,pw=2'
TL_CLISTENER2=SASL_PLAINTEXT
tl_cluster_start 2 --override sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512 \
	--override offsets.topic.replication.factor=2 \
	--add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PW]"
S1=127.0.0.1:${TL_CPORT2[1]}
S2=127.0.0.1:${TL_CPORT2[2]}

kc()
{
	local user=$1 pw=$2
	shift 2
	timeout 20 kcat -X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-512 \
		-X sasl.username="$user" -X sasl.password="$pw" "$@"
}

# Polls until "kc ... -L" on broker $3 succeeds (want ok) or fails (want fail).
login_until()
{
	local user=$1 pw=$2 at=$3 want=$4 deadline=$((SECONDS + 10)) rc
	while :; do
		rc=0
		kc "$user" "$pw" -b "$at" -L -m 3 >/dev/null 2>&1 || rc=$?
		{ [ "$want" = ok ] && [ $rc -eq 0 ]; } && return 0
		{ [ "$want" = fail ] && [ $rc -ne 0 ]; } && return 0
		[ $SECONDS -lt $deadline ] || tl_fail "$user on $at: login did not become $want within 10 s"
		sleep 0.2
	done
}

tl_log "(1) SCRAM credentials in etcd"
login_until admin "$ADMIN_PW" "$S1" ok
login_until admin "$ADMIN_PW" "$S2" ok
tl_cgrep 1 'sasl: --add-scram in the metadata store user=admin' || tl_fail "broker 1: no --add-scram outcome line"
tl_cgrep 2 'sasl: --add-scram in the metadata store user=admin' || tl_fail "broker 2: no --add-scram outcome line"
tally_admin=("$TL_TALLY" -b "$S1" --timeout 10s -X security.protocol=sasl_plaintext
	-X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X sasl.password="$ADMIN_PW")
"${tally_admin[@]}" user create carol --mechanism SCRAM-SHA-512 --iterations 4096 \
	--password "$CAROL_PW" >"$TL_TMP/uc.out" 2>&1 || { cat "$TL_TMP/uc.out" >&2; tl_fail "user create through broker 1 failed"; }
# Read your writes on broker 1, then broker 2 from its view.
kc carol "$CAROL_PW" -b "$S1" -L -m 3 >/dev/null 2>&1 || tl_fail "carol cannot log in on broker 1 right after user create"
login_until carol "$CAROL_PW" "$S2" ok
kc carol wrong-pw -b "$S2" -L -m 3 >/dev/null 2>&1 && tl_fail "carol logged in on broker 2 with a wrong password"
ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get /tally/scram-credentials --print-value-only >"$TL_TMP/etcd.scram"
grep -Eq '^carol SCRAM-SHA-512 4096 ' "$TL_TMP/etcd.scram" || tl_fail "etcd has no credential for carol: $(cat "$TL_TMP/etcd.scram")"
grep -Eq '^admin SCRAM-SHA-512 4096 ' "$TL_TMP/etcd.scram" || tl_fail "etcd has no credential for admin"
[ "$(grep -c '^admin ' "$TL_TMP/etcd.scram")" = 1 ] || tl_fail "admin stored more than once"
grep -qF -e "$CAROL_PW" -e "$ADMIN_PW" "$TL_TMP/etcd.scram" && tl_fail "etcd holds a clear password"
for i in 1 2; do
	[ ! -e "$TL_TMP/b$i/.tally-meta/scram-credentials" ] || tl_fail "broker $i wrote a local credentials file in cluster mode"
done

tl_log "(2) Metadata per listener"
kc carol "$CAROL_PW" -b "$S1" -L -J >"$TL_TMP/md.json" 2>"$TL_TMP/md.err" || { cat "$TL_TMP/md.err" >&2; tl_fail "kcat -L on the SASL listener failed"; }
for i in 1 2; do
	grep -q "{\"id\":$i,\"name\":\"127.0.0.1:${TL_CPORT2[$i]}\"}" "$TL_TMP/md.json" ||
		tl_fail "Metadata on the SASL listener lacks broker $i's SASL port: $(cat "$TL_TMP/md.json")"
	grep -q ":${TL_CPORT[$i]}\"" "$TL_TMP/md.json" &&
		tl_fail "Metadata on the SASL listener names broker $i's PLAINTEXT port"
done
kcat -b "127.0.0.1:${TL_CPORT[2]}" -L -J >"$TL_TMP/md-plain.json" 2>/dev/null || tl_fail "kcat -L on PLAINTEXT failed"
grep -q "{\"id\":1,\"name\":\"127.0.0.1:${TL_CPORT[1]}\"}" "$TL_TMP/md-plain.json" ||
	tl_fail "Metadata on the PLAINTEXT listener lacks broker 1's PLAINTEXT port"
"${tally_admin[@]}" topic create s1 --partitions 2 --replication-factor 2 >/dev/null || tl_fail "topic create over SASL"
tl_cluster_wait_isr s1 2 2
# Only SASL ports in the bootstrap: reaching each partition's leader needs the SASL ports.
seq 1 200 | sed 's/^/r/' | kc carol "$CAROL_PW" -b "$S2" -P -t s1 -X acks=all 2>"$TL_TMP/p.err" ||
	{ cat "$TL_TMP/p.err" >&2; tl_fail "produce through the SASL listener failed"; }
grep -Eq 'ERROR|Delivery failed' "$TL_TMP/p.err" && { cat "$TL_TMP/p.err" >&2; tl_fail "produce reported errors"; }
n=$(kc carol "$CAROL_PW" -b "$S1" -C -q -t s1 -o beginning -e | wc -l)
[ "$n" = 200 ] || tl_fail "consumed $n records through the SASL listener, want 200"
leaders=$(tl_cluster_leader s1 0),$(tl_cluster_leader s1 1)
tl_log "leaders of s1: $leaders"
# A group through the SASL listener: FindCoordinator must name the coordinator's SASL port.
n=$({ kc carol "$CAROL_PW" -b "$S2" -G g909 -X auto.offset.reset=earliest -q -c 200 s1 2>"$TL_TMP/g.err" || true; } | wc -l)
[ "$n" = 200 ] || { cat "$TL_TMP/g.err" >&2; tl_fail "group consumer read $n records through the SASL listener, want 200"; }

tl_log "(1b) a deletion through broker 2 reaches broker 1"
tally2=("${tally_admin[@]}")
tally2[2]=$S2
"${tally2[@]}" user delete carol >/dev/null 2>&1 || tl_fail "user delete through broker 2 failed"
login_until carol "$CAROL_PW" "$S1" fail
login_until admin "$ADMIN_PW" "$S1" ok
tl_log "ok: SCRAM credentials shared through etcd; Metadata answers per listener"

tl_log "(3) an unknown user's made-up salt is the cluster's"
probe=("$TL_ROOT/tests/progs/sasl_probe.py" salt)
salt1=$(python3 "${probe[@]}" "${S1##*:}" SCRAM-SHA-512 mallory) || tl_fail "probe of broker 1 failed"
salt2=$(python3 "${probe[@]}" "${S2##*:}" SCRAM-SHA-512 mallory) || tl_fail "probe of broker 2 failed"
real1=$(python3 "${probe[@]}" "${S1##*:}" SCRAM-SHA-512 admin) || tl_fail "probe of admin failed"
[ -n "$salt1" ] && [ "$salt1" = "$salt2" ] ||
	tl_fail "mallory's made-up salt differs between brokers: $salt1 / $salt2"
[ "$salt1" != "$real1" ] || tl_fail "mallory's salt is admin's"
tl_log "ok: mallory's salt is $salt1 on both brokers"
