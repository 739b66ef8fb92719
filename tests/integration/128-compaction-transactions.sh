#!/usr/bin/env bash
# Transactions over a compacted topic (issue 17): three runs of a librdkafka
# transactional producer (one transactional.id) each commit 5 records on keys t0-t4 and
# then abort 5 more on the same keys; kcat keeps writing other keys so the cleaner passes
# again and again (delete.retention.ms=0). As Kafka's cleaner does, the aborted records
# go, and a COMMIT or ABORT marker goes once a pass met no batch of its transaction: the
# first two runs' four markers (their committed records were superseded by the third
# run's); the third run's two stay (its committed records are the latest; its aborted
# batch is the producer's last, kept for dedupe). Then read_committed and
# read_uncommitted consumers from the beginning see the third run's committed value of
# every t key and never an aborted one, and every other key's latest value; after a
# kill -9 and restart (recovery replays the compacted log) the LSO is not held by a
# transaction whose marker went: read_committed still reads to the end; `tally log
# check` passes.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_txn_once

topic=kvt
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=100
"$TL_BIN/tally" -b "$TL_BROKER" topic create "$topic" -p 1 --config cleanup.policy=compact \
	--config segment.bytes=2048 --config min.cleanable.dirty.ratio=0.01 \
	--config delete.retention.ms=0 >/dev/null || tl_fail "topic create failed"

for run in 1 2 3; do
	RDK_TXN_KEY_PREFIX=t timeout 60 "$TL_PROGS/rdk_txn_once" "$TL_BROKER" "$topic" compact-txn 5 5 \
		2>"$TL_TMP/txn-$run.log" || {
		cat "$TL_TMP/txn-$run.log" >&2
		tl_fail "transactional run $run failed"
	}
done

markers_removed()
{
	tl_log_text "$TL_TMP/tallyd.log" | grep "log: compacted dir=.*/$topic-0 " |
		grep -o 'markers_removed=[0-9]*' | cut -d= -f2 | awk '{ n += $1 } END { print n + 0 }'
}
# Other keys, round after round, until the passes removed the four markers.
round=0
deadline=$((SECONDS + 15))
while [ "$(markers_removed)" -lt 4 ]; do
	[ $SECONDS -lt $deadline ] ||
		tl_fail "the cleaner removed $(markers_removed) markers within 15 s (want 4)"
	awk -v r=$round 'BEGIN { for (k = 0; k < 150; k++) print "z" k ":z" k "-" r }' |
		timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -K: -X linger.ms=1 ||
		tl_fail "kcat -P failed"
	round=$((round + 1))
	sleep 0.3
done
sleep 1 # one more pass must not remove the third run's markers
[ "$(markers_removed)" -eq 4 ] || tl_fail "the cleaner removed $(markers_removed) markers, want 4"
tl_log "4 markers removed after $round rounds of other keys"

# check_read ISOLATION WHAT: every t key's third-run committed value, no aborted value,
# every z key's latest.
check_read()
{
	timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -p 0 -o beginning -e -X isolation.level="$1" \
		-X fetch.wait.max.ms=10 -f '%o %k %s\n' >"$TL_TMP/got" || tl_fail "$2: kcat -C failed"
	grep -q 'txn-abort' "$TL_TMP/got" && tl_fail "$2 ($1): an aborted record is still read"
	awk '{ last[$2] = $3 } END { for (k in last) print k, last[k] }' "$TL_TMP/got" | sort >"$TL_TMP/latest"
	{
		for k in 0 1 2 3 4; do echo "t$k txn-commit-$k"; done
		for k in $(seq 0 149); do echo "z$k z$k-$((round - 1))"; done
	} | sort >"$TL_TMP/want"
	cmp -s "$TL_TMP/want" "$TL_TMP/latest" || {
		# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
		diff "$TL_TMP/want" "$TL_TMP/latest" | head -n 10 >&2 || true
		tl_fail "$2 ($1): latest values differ"
	}
}
check_read read_committed "after compaction"
check_read read_uncommitted "after compaction"

kill -9 "$TL_PID"
wait "$TL_PID" 2>/dev/null || true
TL_PID=
tl_start_broker
check_read read_committed "after kill -9 and restart"
tl_stop_broker
"$TL_BIN/tally" log check "$TL_DATA/$topic-0" >"$TL_TMP/check" 2>&1 || {
	cat "$TL_TMP/check" >&2
	tl_fail "tally log check fails on the compacted partition"
}
