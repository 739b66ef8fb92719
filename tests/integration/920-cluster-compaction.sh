#!/usr/bin/env bash
# Compaction of a replicated log (issue 17): a 3-broker cluster with a compacted topic,
# replication factor 3. One follower is stopped before any write; 200 keys are written
# 20 times each with acks=all (every 10th key's last write a tombstone) while the leader
# and the running follower each clean their own log. The stopped follower then restarts
# and catches up from offset 0 over the leader's compacted range, whose offset holes it
# must take (before, it was refused at the first hole and never rejoined the ISR). With
# the other follower stopped, the leader is killed with SIGKILL, so the caught-up
# follower leads: a consumer from the beginning sees the latest value of every key at its
# original offset, offsets increasing, far fewer records than were written; a key written
# after the failover is kept; `tally log check` passes on every broker's partition.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat

keys=200
rounds=20
topic=kvr
tl_cluster_start 3 --override min.insync.replicas=2 --override log.cleaner.backoff.ms=100
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" \
	-c cleanup.policy=compact -c segment.bytes=8192 -c min.cleanable.dirty.ratio=0.1 ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3
leader=$(tl_cluster_leader "$topic" 0)
[ -n "$leader" ] && [ "$leader" -ge 1 ] || tl_fail "no leader for $topic-0"
others=$(for b in 1 2 3; do if [ "$b" != "$leader" ]; then echo "$b"; fi; done)
late=$(echo "$others" | head -n 1)
other=$(echo "$others" | tail -n 1)
tl_log "leader $leader; stopping follower $late before any write"
tl_cbroker_stop "$late"

# Line i (from 0) goes to offset i: key k<i % keys>, value v<key>-<round>, or a tombstone.
awk -v keys=$keys -v rounds=$rounds 'BEGIN {
	for (r = 0; r < rounds; r++)
		for (k = 0; k < keys; k++)
			if (r == rounds - 1 && k % 10 == 0) print "k" k ":"
			else print "k" k ":v" k "-" r
}' >"$TL_TMP/input"
written=$(wc -l <"$TL_TMP/input")
timeout 60 kcat -P -q -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -K: -Z -X acks=all \
	-X batch.num.messages=20 -X linger.ms=1 <"$TL_TMP/input" || tl_fail "kcat -P failed"

# compacted_to BROKER: how far broker's passes over the partition have cleaned.
compacted_to()
{
	local to
	to=$(tl_log_text "$TL_TMP/tallyd-$1.log" | grep "log: compacted dir=.*/$topic-0 " |
		grep -o 'first_dirty=[0-9]*' | cut -d= -f2 | sort -n | tail -n 1) || true
	echo "${to:-0}"
}
deadline=$((SECONDS + 20))
until [ "$(compacted_to "$leader")" -ge $((written / 2)) ] &&
	[ "$(compacted_to "$other")" -ge $((written / 2)) ]; do
	[ $SECONDS -lt $deadline ] ||
		tl_fail "leader $leader or follower $other did not compact half the log within 20 s"
	sleep 0.2
done
tl_log "leader and follower $other compacted to $(compacted_to "$leader") and $(compacted_to "$other")"

# The stopped follower catches up over the holes and rejoins the ISR.
tl_cbroker_start "$late"
tl_cluster_wait_isr "$topic" 1 3 30
tl_cgrep "$late" "batch from leader refused topic=$topic" &&
	tl_fail "follower $late refused a batch from its compacted leader"
batches=$("$TL_TALLY" log dump "$TL_TMP/b$late/$topic-0" 2>/dev/null | grep -c baseOffset) || true
tl_log "follower $late caught up with $batches batches ($((written / 20)) were written)"

# Failover to it: the other follower stops cleanly, the leader is killed.
tl_cbroker_stop "$other"
tl_log "kill -9 of leader $leader"
tl_cbroker_kill9 "$leader"
tl_cluster_wait_leader "$topic" 0 "$late" 20 "follower $late did not become the leader within 20 s"
echo "k7:after" | timeout 30 kcat -P -q -b "127.0.0.1:${TL_CPORT[$late]}" -t "$topic" -p 0 -K: \
	-X acks=1 || tl_fail "produce after the failover failed"

awk -F: '{ last[$1] = NR - 1; val[$1] = ($2 == "" ? "-" : $2) }
	END { for (k in last) if (k != "k7") print last[k], k, val[k] }' "$TL_TMP/input" >"$TL_TMP/want"
echo "$written k7 after" >>"$TL_TMP/want"
sort -n "$TL_TMP/want" >"$TL_TMP/want.sorted"
timeout 30 kcat -C -q -b "127.0.0.1:${TL_CPORT[$late]}" -t "$topic" -p 0 -o beginning -e \
	-X fetch.wait.max.ms=10 -f '%o %k %S %s\n' >"$TL_TMP/got.raw" || tl_fail "kcat -C failed"
awk '{ print $1, $2, ($3 == -1 ? "-" : $4) }' "$TL_TMP/got.raw" >"$TL_TMP/got"
awk 'NR > 1 && $1 <= prev { print "offset " $1 " after " prev; exit 1 } { prev = $1 }' \
	"$TL_TMP/got" || tl_fail "offsets do not increase"
awk '{ last[$2] = $0 } END { for (k in last) print last[k] }' "$TL_TMP/got" | sort -n >"$TL_TMP/latest"
if ! cmp -s "$TL_TMP/want.sorted" "$TL_TMP/latest"; then
	# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
	diff "$TL_TMP/want.sorted" "$TL_TMP/latest" | head -n 10 >&2 || true
	tl_fail "latest values differ on the new leader $late"
fi
count=$(wc -l <"$TL_TMP/got")
[ "$count" -lt $((written / 3)) ] ||
	tl_fail "read $count records of $written written; the replica's log was not compacted"
tl_log "new leader $late: $count records of $((written + 1)) written, latest of all $keys keys right"

tl_cbroker_stop "$late"
for b in 1 2 3; do
	"$TL_TALLY" log check "$TL_TMP/b$b/$topic-0" >"$TL_TMP/check-$b" 2>&1 || {
		cat "$TL_TMP/check-$b" >&2
		tl_fail "tally log check fails on broker $b"
	}
done
