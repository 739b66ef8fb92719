#!/usr/bin/env bash
# The only in-sync replica comes back on an empty log.dirs (disk replaced): the records
# it acknowledged alone are gone, and its empty log must not lead, or the followers, who
# hold the older records, would truncate to nothing. Two followers are killed, the
# leader takes records alone (min.insync.replicas=1) and is killed, its log.dirs wiped;
# the followers come back, then it does. Checks: the partition stays offline (leader -1,
# empty ISR) and no follower truncates; with unclean.leader.election.enable=true an
# out-of-sync replica leads with the records it has. Before the fix the wiped broker,
# still the whole ISR, led and the followers truncated to 0.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
topic=soleisr
E() { ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" "$@"; }
state() { E get "/tally/partitions/$topic/0" --print-value-only; }
offline() { case "$1" in "leader=-1 "*" isr=") true ;; *) false ;; esac; }

tl_cluster_start 3 --override min.insync.replicas=1
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3
seq 1 100 | "$TL_TALLY" produce "$topic" --acks all -b "$TL_BOOTSTRAP" || tl_fail "produce failed"
L=$(tl_cluster_leader "$topic" 0)
F=()
for b in 1 2 3; do [ "$b" = "$L" ] || F+=("$b"); done
for b in "${F[@]}"; do tl_cbroker_kill9 "$b"; done
deadline=$((SECONDS + 30))
until state | grep -Eq "isr=$L( |$)"; do
	[ $SECONDS -lt $deadline ] || tl_fail "the ISR did not shrink to $L: $(state)"
	sleep 0.2
done
seq 101 150 | "$TL_TALLY" produce "$topic" --acks all -b "$TL_BOOTSTRAP" ||
	tl_fail "produce to the ISR of one failed"
tl_cbroker_kill9 "$L"
rm -rf "$TL_TMP/b$L"
for b in "${F[@]}"; do tl_cbroker_start "$b"; done
tl_cbroker_start "$L" # once its previous registration lapsed
# It gives its place up before it serves; nothing may elect it, then or later.
deadline=$((SECONDS + 20))
until st=$(state) && offline "$st"; do
	case "$st" in "leader=$L "*) tl_fail "the wiped broker $L leads: $st" ;; esac
	[ $SECONDS -lt $deadline ] ||
		tl_fail "expected an offline partition with an empty ISR, etcd has: $st"
	sleep 0.2
done
sleep 3 # a few controller rounds
st=$(state)
offline "$st" || tl_fail "expected the partition to stay offline with an empty ISR, etcd has: $st"
for b in 1 2 3; do
	! tl_cgrep "$b" "truncate_to=0( |$)" || tl_fail "broker $b truncated its log to 0"
done
tl_cgrep "$L" "replaces the only in-sync replica's log: the partition stays offline" ||
	tl_fail "broker $L did not say why the partition is offline"

# The operator accepts the loss: an out-of-sync replica leads with what it holds. The
# wiped broker comes back only after that (the controller's unclean choice is the first
# live replica in assignment order, which may be it: documented).
for b in 1 2 3; do tl_cbroker_kill9 "$b"; done
deadline=$((SECONDS + 20)) # their sessions lapse: a live-looking registration is electable
until [ -z "$(E get /tally/brokers/ --prefix --keys-only)" ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "registrations left: $(E get /tally/brokers/ --prefix --keys-only)"
	sleep 0.2
done
TL_CARGS+=(--override unclean.leader.election.enable=true)
for b in "${F[@]}"; do tl_cbroker_start "$b"; done
deadline=$((SECONDS + 30))
until now=$(tl_cluster_leader "$topic" 0) && [ "${now:--1}" -ge 1 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "no unclean election: $(state)"
	sleep 0.2
done
[ "$now" != "$L" ] || tl_fail "the wiped broker $L was elected: $(state)"
tl_cbroker_start "$L"
got=$("$TL_TALLY" tail "$topic" -o beginning -e -b "$TL_BOOTSTRAP" | sort -n | uniq)
[ "$(echo "$got" | wc -l)" = 100 ] && [ "$(echo "$got" | tail -1)" = 100 ] ||
	tl_fail "expected records 1-100 from the out-of-sync replica, read $(echo "$got" | wc -l)"
tl_log "ok: offline while the only in-sync log was gone; unclean election kept 1-100"
