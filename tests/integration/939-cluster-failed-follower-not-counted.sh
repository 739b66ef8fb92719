#!/usr/bin/env bash
# A follower whose log failed (an fdatasync error) must not count for the leader's high
# watermark (stop 38's fetcher guard): its log end is past what its disk took, so a
# fetch at that end would let acks=all acknowledge a record the follower never made
# durable while it is still in the ISR. Kafka takes such a log directory offline.
#   (1) 2 brokers; topic ff, 1 partition, RF 2; the follower F restarts with
#       test.fault.fdatasync.fail.after=1 (its partition log's second sync fails) and is
#       cut off etcd, so that it cannot hand its ISR seat back itself and the ISR
#       changes only through the leader's lag check or F's lapsed lease (seconds);
#   (2) records are produced one at a time, acks=all, until F logs its log offline
#       (durable=D): the record at offset D is the one F wrote but never synced;
#   (3) when that record was acknowledged, etcd's ISR must no longer hold F.
# Without the guard F fetches at its end right after the failure and the record is
# acknowledged at once with F still in the ISR.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat etcdctl python3

topic=ff
export TALLY_TEST_FAULTS=1
tl_etcd_cuttable 2
tl_cluster_start 2
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 2 -b "$TL_BOOTSTRAP" \
	>/dev/null || tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 2
leader=$(tl_cluster_leader "$topic" 0)
follower=$((3 - leader))
tl_log "leader $leader, follower $follower"
tl_cbroker_stop "$follower"
TL_CARGS=(--override test.fault.fdatasync.fail.after=1)
tl_cbroker_start "$follower"
tl_cluster_wait_isr "$topic" 1 2
[ "$(tl_cluster_leader "$topic" 0)" = "$leader" ] || tl_fail "the leader moved"
tl_etcd_cut "$follower"

isr() # the ISR in etcd
{
	ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get "/tally/partitions/$topic/0" \
		--print-value-only | sed -n 's/.* isr=\([0-9,]*\).*/\1/p'
}
durable=
for i in $(seq 1 6); do
	start=$(date +%s%3N)
	printf 'r%d\n' "$i" | kcat -P -b "127.0.0.1:${TL_CPORT[$leader]}" -t "$topic" -p 0 \
		-X acks=all -X message.timeout.ms=30000 2>"$TL_TMP/kcat.err" ||
		tl_fail "kcat -P of record $i failed: $(cat "$TL_TMP/kcat.err")"
	acked_isr[$i]=$(isr)
	tl_log "record $i (offset $((i - 1))) acknowledged after $(($(date +%s%3N) - start)) ms; ISR then ${acked_isr[$i]}"
	line=$(tl_log_text "$TL_TMP/tallyd-$follower.log" | grep -m1 'partition offline after an I/O error.*/ff-0' || true)
	if [ -n "$line" ]; then
		durable=$(sed -n 's/.* durable=\([0-9]*\).*/\1/p' <<<"$line")
		break
	fi
done
[ -n "$durable" ] || tl_fail "the follower's log never failed (no 'partition offline' line)"
tl_log "follower: $line"
d=$((durable + 1)) # the record at offset $durable
[ "$d" -le "$i" ] || tl_fail "the follower failed at durable=$durable, past the $i records produced"
case ",${acked_isr[$d]}," in
*",$follower,"*)
	tl_fail "record $d (offset $durable), which the failed follower never synced, was acknowledged while it was in the ISR (${acked_isr[$d]})" ;;
esac
tl_etcd_heal "$follower"
tl_cbroker_stop "$leader"
tl_log "ok"
