#!/usr/bin/env bash
# A group coordinator cut off from etcd, while clients and the other brokers still reach
# it (chaos 914, stop 32: a broker isolated and healed; before it heard that its lease
# had run out, it answered a copier's OffsetFetch from the group it still held - no
# offset, where the new coordinator had four transactional commits - and the copier
# copied those records again). A broker whose lease may have lapsed must not act as
# coordinator: the controller may have given its partitions to another broker, which
# takes commits it never sees.
#   (1) 3 brokers, one __consumer_offsets partition (RF 3); the group commits 3;
#   (2) its coordinator C is cut off etcd; the controller moves the offsets partition
#       to another broker once C's lease expires; C, unaware, still leads in its view;
#   (3) the group commits 7 at the new coordinator;
#   (4) OffsetFetch sent straight to C: NOT_COORDINATOR, never 3; a client bootstrapped
#       at C (tally group describe) gets COORDINATOR_NOT_AVAILABLE from FindCoordinator
#       there, asks the next broker C's metadata names and reads 7 from the new
#       coordinator;
#   (5) C reconnects: its log says the lease came back after a lapse, it follows; the
#       group's offset is 7 whichever broker a client starts from.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat python3 etcdctl
tl_require_prog rawproto

topic=cut
group=cut-group
tl_etcd_cuttable 3
tl_cluster_start 3 --override offsets.topic.num.partitions=1 \
	--override group.initial.rebalance.delay.ms=0
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" \
	>/dev/null || tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3
seq 1 10 | kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -X acks=all 2>"$TL_TMP/kcat.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/kcat.err")"

seek() # OFFSET BOOTSTRAP: commits OFFSET for the group (retried: a coordinator moves)
{
	local out=$TL_TMP/seek-$1.out
	for _ in $(seq 40); do
		"$TL_TALLY" group seek "$group" -o "$1" -t "$topic" --execute -b "$2" \
			--timeout 5s >"$out" 2>&1 && return 0
		sleep 0.5
	done
	tl_fail "group seek $1 through $2 failed: $(tail -3 "$out")"
}
committed() # BOOTSTRAP: the group's committed offset of partition 0, or the error
{
	"$TL_TALLY" group describe "$group" -b "$1" --format json --timeout 3s 2>&1 |
		python3 -c '
import json, sys
text = sys.stdin.read()
try:
    doc = json.loads(text)
except ValueError:
    print("error: " + " ".join(text.split())[:200])
    sys.exit(0)
rows = [r for r in doc.get("offsets", doc.get("partitions", [])) if r.get("partition") == 0]
print(rows[0]["committed"] if rows else "none")' || true
}

seek 3 "$TL_BOOTSTRAP"
tl_cluster_wait_isr __consumer_offsets 1 3
c=$(tl_cluster_leader __consumer_offsets 0)
[ -n "$c" ] || tl_fail "no leader of __consumer_offsets-0 in etcd"
at_c=127.0.0.1:${TL_CPORT[$c]}
others=
for i in 1 2 3; do
	[ "$i" = "$c" ] || others=${others:+$others,}127.0.0.1:${TL_CPORT[$i]}
done
got=$(committed "$at_c")
[ "$got" = 3 ] || tl_fail "before the cut, the coordinator (broker $c) answered '$got', expected 3"
tl_log "(1) broker $c coordinates the group; committed 3"

tl_etcd_cut "$c"
deadline=$(($(date +%s) + 30))
new=
while [ -z "$new" ] || [ "$new" = "$c" ]; do
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "the offsets partition did not move off broker $c"
	sleep 0.2
	new=$(tl_cluster_leader __consumer_offsets 0)
done
tl_log "(2) broker $c cut off etcd; broker $new leads __consumer_offsets-0 now"

seek 7 "$others"
got=$(committed "$others")
[ "$got" = 7 ] || tl_fail "the new coordinator (broker $new) answered '$got', expected 7"
tl_log "(3) committed 7 at broker $new"

# C still leads in its own view: nothing told it otherwise (else this proves nothing).
tl_cgrep "$c" 'group: resigned as coordinator' &&
	tl_fail "broker $c heard of the move while cut off etcd: the check below would prove nothing"
raw=$("$TL_PROGS/rawproto" "$at_c" offset-fetch "$group" "$topic" 0 2>&1) ||
	tl_fail "rawproto offset-fetch at broker $c failed: $raw"
case $raw in
"committed 3") tl_fail "broker $c, cut off etcd past its lease, answered the group's old offset 3 (the new coordinator has 7)" ;;
"error NOT_COORDINATOR") ;;
*) tl_fail "broker $c, cut off etcd past its lease, answered OffsetFetch with '$raw' (expected NOT_COORDINATOR)" ;;
esac
got=$(committed "$at_c")
case $got in
3) tl_fail "tally group describe through broker $c, cut off etcd past its lease, showed the group's old offset 3" ;;
7) ;;
*) tl_fail "tally group describe through broker $c, cut off etcd past its lease: '$got' (expected 7: FindCoordinator goes round the brokers)" ;;
esac
tl_cgrep "$c" 'group: resigned as coordinator' &&
	tl_fail "broker $c heard of the move while cut off etcd"
tl_log "(4) broker $c, cut off, refuses the group: OffsetFetch $raw; tally through it reads $got from the new coordinator"

tl_etcd_heal "$c"
tl_cwait_log "$c" 'group: resigned as coordinator' 30 \
	"broker $c did not give the group up after reconnecting"
tl_cgrep "$c" 'lease (renewed after a lapse|expired, registering again)' ||
	tl_fail "broker $c's log does not say its lease lapsed"
for b in "$at_c" "$TL_BOOTSTRAP"; do
	got=
	for _ in $(seq 40); do
		got=$(committed "$b")
		[ "$got" = 7 ] && break
		sleep 0.25
	done
	[ "$got" = 7 ] || tl_fail "after the heal, through $b: '$got', expected 7"
done
tl_log "(5) broker $c reconnected and follows; the group's offset is 7 everywhere"
tl_log "ok"
