#!/usr/bin/env bash
# __consumer_offsets under commits every 10 ms in cluster mode (issue 17; the one-node
# figures are bench/compaction-offsets.sh). 3 brokers, the offsets topic with one
# partition, replication factor 3 and 64 KiB segments. One group commits a new offset
# every 10 ms (tests/progs/rdk_committer, synchronous) for PHASES phases of 15 s; after
# each, the offsets partition's leader (the group coordinator) is stopped and started
# again, so another replica takes the partition over and replays it. Checks, after the
# first phase: every replica's __consumer_offsets-0 stays under 256 KiB on disk (a
# phase's commits alone fill about 120 KiB uncompacted), and each takeover replays fewer
# records than one phase committed (the log is compacted on every replica, not only the
# leader), so restart work stays flat as commits accumulate.
# tally-test: long-only
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_prog rdk_committer

phases=${PHASES:-4}
seconds=15
tl_cluster_start 3 --override offsets.topic.num.partitions=1 \
	--override offsets.topic.replication.factor=3 --override offsets.topic.segment.bytes=65536 \
	--override log.cleaner.backoff.ms=1000
"$TL_TALLY" topic create load --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" >/dev/null ||
	tl_fail "topic create failed"
tl_cluster_wait_isr load 1 3
total=0
for phase in $(seq 1 "$phases"); do
	out=$(timeout $((seconds + 60)) "$TL_PROGS/rdk_committer" "$TL_BOOTSTRAP" g1 load $seconds 10) ||
		tl_fail "phase $phase: rdk_committer failed"
	commits=$(echo "$out" | awk '{ print $2 }')
	total=$((total + commits))
	tl_cluster_wait_isr __consumer_offsets 1 3 30
	sleep 2 # a cleaner pass (backoff 1 s) over the last sealed segment
	sizes=
	for b in 1 2 3; do
		kib=$(du -sk "$TL_TMP/b$b/__consumer_offsets-0" | cut -f1)
		sizes="$sizes b$b=${kib}KiB"
		if [ "$phase" -gt 1 ] && [ "$kib" -gt 256 ]; then
			tl_fail "phase $phase: broker $b's __consumer_offsets-0 holds $kib KiB after $total commits"
		fi
	done
	coordinator=$(tl_cluster_leader __consumer_offsets 0)
	[ -n "$coordinator" ] && [ "$coordinator" -ge 1 ] || tl_fail "no leader for __consumer_offsets-0"
	tl_cbroker_stop "$coordinator"
	deadline=$((SECONDS + 20))
	until next=$(tl_cluster_leader __consumer_offsets 0) && [ -n "$next" ] && [ "$next" -ge 1 ] &&
		[ "$next" != "$coordinator" ]; do
		[ $SECONDS -lt $deadline ] || tl_fail "phase $phase: no new coordinator within 20 s"
		sleep 0.2
	done
	deadline=$((SECONDS + 20))
	until replay=$(tl_log_text "$TL_TMP/tallyd-$next.log" |
		grep 'group: offsets topic partition replayed partition=0 ' | tail -n 1) &&
		[ -n "$replay" ] && [ "$(echo "$replay" | cut -c1-23)" \> "$(date -u -d "-25 sec" +%Y-%m-%dT%H:%M:%S)" ]; do
		[ $SECONDS -lt $deadline ] || tl_fail "phase $phase: broker $next logged no replay"
		sleep 0.2
	done
	records=$(echo "$replay" | grep -o ' records=[0-9]*' | cut -d= -f2)
	ms=$(echo "$replay" | grep -o ' ms=[0-9]*' | cut -d= -f2)
	tl_cbroker_start "$coordinator"
	tl_log "phase $phase: $commits commits ($total in all);$sizes; broker $next took over, replayed $records records in $ms ms"
	if [ "$phase" -gt 1 ] && [ "$records" -ge "$commits" ]; then
		tl_fail "phase $phase: the new coordinator replayed $records records, more than the phase's $commits commits"
	fi
done
tl_log "ok: $total commits; __consumer_offsets-0 bounded on every replica"
