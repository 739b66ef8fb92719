#!/usr/bin/env bash
# A leader killed with kill -9 and restarted at once, within the session timeout, with an
# empty log.dirs (disk replaced, container without its volume) must not lead: its log is
# not the one that earned its leaderships and ISR places. It waits for its previous
# registration to lapse, another ISR member leads, it rejoins as a follower and catches
# up, and every acknowledged record stays readable. Before the fix it revoked its old
# lease, reclaimed leadership with the empty log and the followers truncated to 0.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
topic=wiped
E() { ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" "$@"; }

tl_cluster_start 3 --override min.insync.replicas=2
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3
seq 1 200 | "$TL_TALLY" produce "$topic" --acks all -b "$TL_BOOTSTRAP" || tl_fail "produce failed"
L=$(tl_cluster_leader "$topic" 0)
tl_cbroker_kill9 "$L"
rm -rf "$TL_TMP/b$L"
tl_cbroker_start "$L" # returns once registered: after its old registration lapsed
tl_cgrep "$L" "registered by another broker process" ||
	tl_fail "broker $L did not wait for its previous registration to lapse"
tl_cgrep "$L" "revoking" && tl_fail "broker $L revoked its previous registration"
sleep 2
state=$(E get "/tally/partitions/$topic/0" --print-value-only)
now=$(tl_cluster_leader "$topic" 0)
[ "$now" != "$L" ] || tl_fail "broker $L leads with an empty log: $state"
[ "$now" -ge 1 ] || tl_fail "no leader: $state"
for i in 1 2 3; do
	[ "$i" = "$L" ] || ! tl_cgrep "$i" "truncate_to=0( |$)" ||
		tl_fail "broker $i truncated its log to 0"
done
got=$("$TL_TALLY" tail "$topic" -o beginning -e -b "$TL_BOOTSTRAP" | sort -n | uniq | wc -l)
[ "$got" = 200 ] || tl_fail "expected the 200 acknowledged records, read $got"

# It catches up as a follower and rejoins the ISR; writes go on.
tl_cluster_wait_isr "$topic" 1 3 60
seq 201 250 | "$TL_TALLY" produce "$topic" --acks all -b "$TL_BOOTSTRAP" ||
	tl_fail "produce after the restart failed"
got=$("$TL_TALLY" tail "$topic" -o beginning -e -b "$TL_BOOTSTRAP" | sort -n | uniq | wc -l)
[ "$got" = 250 ] || tl_fail "expected 250 acknowledged records, read $got"
tl_log "ok: broker $L came back with an empty log as a follower; $got records kept"
