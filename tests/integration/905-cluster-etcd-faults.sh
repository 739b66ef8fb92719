#!/usr/bin/env bash
# The metadata store's faults:
# (1) etcd down at start: tallyd exits non-zero with a message naming the endpoints.
# (2) etcd lost while running: the brokers keep serving the partitions they hold with
#     the metadata they have (acks=all produce and consume go on), and a change that
#     needs the store (creating a topic) fails with a retriable error, not a hang.
# (3) etcd back: the brokers register again and the change goes through.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat

# (1) Nothing listens on this port.
dead=$(tl_pick_port)
rc=0
timeout 30 "$TL_TALLYD" --override "listeners=PLAINTEXT://127.0.0.1:0" \
	--override "log.dirs=$TL_TMP/lonely" --override "metadata.etcd.endpoints=http://127.0.0.1:$dead" \
	--override metadata.etcd.timeout.ms=1000 >"$TL_TMP/lonely.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || tl_fail "tallyd without etcd: exit $rc, want a start-up error"
grep -q "cannot reach the metadata store endpoints=http://127.0.0.1:$dead" <(tl_log_text "$TL_TMP/lonely.log") ||
	{ cat "$TL_TMP/lonely.log" >&2; tl_fail "the start-up error does not name the etcd endpoint"; }
tl_log "(1) start-up without etcd refused: $(grep -o 'crit cluster: .*' <(tl_log_text "$TL_TMP/lonely.log") | head -c 200)"

tl_cluster_start 3 --override min.insync.replicas=2 --override metadata.etcd.timeout.ms=1000
"$TL_TALLY" topic create held --partitions 2 --replication-factor 3 -b "$TL_BOOTSTRAP" || tl_fail "topic create failed"
tl_cluster_wait_isr held 2 3

tl_etcd_kill9
tl_log "(2) etcd killed"
sleep 1
seq 1 2000 | sed 's/^/during-/' | timeout 60 kcat -P -b "$TL_BOOTSTRAP" -t held -X acks=all 2>"$TL_TMP/p.err" ||
	{ cat "$TL_TMP/p.err" >&2; tl_fail "acks=all produce failed while etcd was down"; }
n=$(timeout 30 kcat -C -q -b "$TL_BOOTSTRAP" -t held -o beginning -e | grep -c '^during-')
[ "$n" -eq 2000 ] || tl_fail "read $n of 2000 records while etcd was down"
rc=0
timeout 60 "$TL_TALLY" topic create refused --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" \
	>"$TL_TMP/create.out" 2>&1 || rc=$?
cat "$TL_TMP/create.out" >&2
[ $rc -ne 0 ] || tl_fail "topic create succeeded with etcd down"
[ $rc -ne 124 ] || tl_fail "topic create hung with etcd down"
for b in 1 2 3; do tl_cbroker_alive "$b" || tl_fail "broker $b died while etcd was down"; done
tl_cgrep 1 'metadata store unreachable, serving from the last view' || tl_fail "broker 1 did not say etcd is unreachable"

tl_etcd_start
tl_log "(3) etcd back"
deadline=$(($(date +%s) + 30))
until "$TL_TALLY" topic create after --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" >/dev/null 2>&1; do
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "topic create still fails 30 s after etcd came back"
	sleep 0.5
done
tl_cluster_wait_isr after 1 3 30
tl_cluster_wait_isr held 2 3 30
tl_log "ok"
