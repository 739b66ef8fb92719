#!/usr/bin/env bash
# A second tallyd started with a live broker's node.id (its own, empty log.dirs) must not
# take over that broker's registration: it says so and waits for the registration to
# lapse, while the original keeps its registration, keeps leading and keeps acking
# acks=all writes, and every acknowledged record stays readable. Before the fix the
# newcomer revoked the original's lease, reclaimed its leaderships with an empty log
# and both brokers led (split brain; the follower truncated the acked records).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
topic=dup
E() { ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" "$@"; }

tl_cluster_start 2 --override min.insync.replicas=2
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 2 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 2
seq 1 100 | "$TL_TALLY" produce "$topic" --acks all -b "$TL_BOOTSTRAP" || tl_fail "produce failed"
L=$(tl_cluster_leader "$topic" 0)
before=$(E get "/tally/partitions/$topic/0" --print-value-only)
reg=$(E get "/tally/brokers/$L" --print-value-only)
case "$reg" in *" dir="*) ;; *) tl_fail "registration of broker $L names no directory: $reg" ;; esac

# The newcomer: node.id L, another port, an empty log.dirs.
port=$(tl_pick_port) || tl_fail "no free port"
mkdir -p "$TL_TMP/dup"
"$TL_TALLYD" --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$TL_TMP/dup" \
	--override "node.id=$L" --override "metadata.etcd.endpoints=$TL_ETCD" \
	--override broker.session.timeout.ms=3000 --override replica.lag.time.max.ms=5000 \
	--override min.insync.replicas=2 >"$TL_TMP/dup.log" 2>&1 &
dup=$!
TL_CPID[9]=$dup
deadline=$((SECONDS + 20))
until grep -q "node.id $L is registered by another broker process" "$TL_TMP/dup.log"; do
	[ $SECONDS -lt $deadline ] || { cat "$TL_TMP/dup.log" >&2; tl_fail "the newcomer did not refuse"; }
	tl_pid_alive "$dup" || { cat "$TL_TMP/dup.log" >&2; tl_fail "the newcomer exited"; }
	sleep 0.1
done
sleep 4 # past the session timeout: the original's lease must still be its own
grep -q "revoking" "$TL_TMP/dup.log" && tl_fail "the newcomer revoked a lease"
grep -q "cluster: registered" "$TL_TMP/dup.log" && tl_fail "the newcomer registered"
tl_cbroker_alive "$L" || tl_fail "the original broker $L died"
[ "$(E get "/tally/brokers/$L" --print-value-only)" = "$reg" ] ||
	tl_fail "brokers/$L changed: $(E get "/tally/brokers/$L" --print-value-only)"
[ "$(E get "/tally/partitions/$topic/0" --print-value-only)" = "$before" ] ||
	tl_fail "the partition state changed: $before -> $(E get "/tally/partitions/$topic/0" --print-value-only)"
tl_cgrep "$L" "lease expired|registered by another broker" &&
	tl_fail "the original broker $L lost its lease"

# The original still leads and acks; nothing acknowledged is lost.
seq 101 150 | "$TL_TALLY" produce "$topic" --acks all -b "127.0.0.1:${TL_CPORT[$L]}" ||
	tl_fail "acks=all produce to the original leader failed"
got=$("$TL_TALLY" tail "$topic" -o beginning -e -b "$TL_BOOTSTRAP" | sort -n | uniq | wc -l)
[ "$got" = 150 ] || tl_fail "expected the 150 acknowledged records, read $got"

# The newcomer stops on SIGTERM while it waits.
kill -TERM "$dup"
rc=0
wait "$dup" || rc=$?
TL_CPID[9]=
[ "$rc" != 0 ] || tl_fail "the newcomer exited 0 without ever registering"
grep -q "stopped while node.id $L was registered by another broker" "$TL_TMP/dup.log" ||
	tl_fail "the newcomer did not say why it stopped"
tl_log "ok: the duplicate node.id $L waited and the original kept leading"
