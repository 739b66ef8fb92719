#!/usr/bin/env bash
# kill -9 in the middle of a replica's compaction pass (issue 17, 114's fault switch on
# a cluster). 3 brokers, a compacted topic with replication factor 3, half its data
# written and compacted everywhere. Then both followers of
# the first leader restart with the test fault switch (TALLY_TEST_FAULTS=1,
# TALLY_TEST_CLEANER_CRASH_POINT=P: the broker _exits at point P of its first swap, as
# a kill -9 would there); the first leader then stops cleanly, so an armed broker
# leads, and restarts armed too. An idempotent kcat (acks=all) writes the second half
# of 250 keys x 16 rounds; each broker dies at its first swap, leader or follower as their passes fall,
# so no replica is left to heal another's disk. All restart unarmed and rejoin the
# ISR (no
# .cleaned or .swap file left after the final clean stops), no broker's log ends below where it ended before its crash,
# a consumer sees every key's latest value with offsets increasing, every broker holds
# each key's latest value at the same offset, and `tally log check` passes everywhere.
# Points from the clock (three a run); TL_POINTS="P1 P2 P3" chooses them.
# tally-test: long-only
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat

keys=250
rounds=16
topic=kvc
s=$(date +%s)
read -r p1 p2 p3 <<<"${TL_POINTS:-$((1 + s % 5)) $((1 + (s + 2) % 5)) $((1 + (s + 4) % 5))}"
tl_cluster_start 3 --override log.cleaner.backoff.ms=100
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" \
	-c cleanup.policy=compact -c segment.bytes=8192 -c min.cleanable.dirty.ratio=0.1 ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3
first=$(tl_cluster_leader "$topic" 0)
[ -n "$first" ] && [ "$first" -ge 1 ] || tl_fail "no leader for $topic-0"
awk -v keys=$keys -v rounds=$rounds 'BEGIN {
	for (r = 0; r < rounds; r++)
		for (k = 0; k < keys; k++) print "k" k ":v" k "-" r
}' >"$TL_TMP/input"
written=$(wc -l <"$TL_TMP/input")
half=$((written / 2))
# First half with every cleaner unarmed: after a pass the segments are small, so the
# passes during the second half merge several segments a group (a crash then falls
# between unlinking a group's segments and renaming its swap).
head -n $half "$TL_TMP/input" | timeout 60 kcat -P -q -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -K: \
	-X acks=all -X enable.idempotence=true -X batch.num.messages=20 -X linger.ms=1 ||
	tl_fail "kcat -P (first half) failed"
deadline=$((SECONDS + 20))
until tl_cgrep 1 "log: compacted dir=.*/$topic-0 " && tl_cgrep 2 "log: compacted dir=.*/$topic-0 " &&
	tl_cgrep 3 "log: compacted dir=.*/$topic-0 "; do
	[ $SECONDS -lt $deadline ] || tl_fail "not every broker compacted the first half within 20 s"
	sleep 0.2
done
armed=$(for b in 1 2 3; do if [ "$b" != "$first" ]; then echo "$b"; fi; done | tr '\n' ' ')
read -r a1 a2 <<<"$armed"
tl_cbroker_stop "$a1"
TALLY_TEST_FAULTS=1 TALLY_TEST_CLEANER_CRASH_POINT=$p1 tl_cbroker_start "$a1"
tl_cbroker_stop "$a2"
TALLY_TEST_FAULTS=1 TALLY_TEST_CLEANER_CRASH_POINT=$p2 tl_cbroker_start "$a2"
tl_cluster_wait_isr "$topic" 1 3
tl_cbroker_stop "$first"
deadline=$((SECONDS + 20))
until leader=$(tl_cluster_leader "$topic" 0) && { [ "$leader" = "$a1" ] || [ "$leader" = "$a2" ]; }; do
	[ $SECONDS -lt $deadline ] || tl_fail "no armed broker took the leadership within 20 s"
	sleep 0.2
done
TALLY_TEST_FAULTS=1 TALLY_TEST_CLEANER_CRASH_POINT=$p3 tl_cbroker_start "$first"
tl_cluster_wait_isr "$topic" 1 3
tl_log "armed: broker $a1 (point $p1), broker $a2 (point $p2), broker $first (point $p3); leader $leader"

tail -n +$((half + 1)) "$TL_TMP/input" |
	timeout 120 kcat -P -q -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -K: -X acks=all \
	-X enable.idempotence=true -X message.timeout.ms=100000 -X batch.num.messages=20 \
	-X linger.ms=1 >"$TL_TMP/kcat.log" 2>&1 &
kcat_pid=$!

# Each armed broker exits with 86 at its crash point; log end it had reached just before.
declare -A rc point=([$a1]=$p1 [$a2]=$p2 [$first]=$p3)
for b in $a1 $a2 $first; do
	deadline=$((SECONDS + 60))
	while tl_pid_alive "${TL_CPID[$b]}"; do
		[ $SECONDS -lt $deadline ] || tl_fail "broker $b did not reach its crash point within 60 s"
		sleep 0.05
	done
	rc[$b]=0
	wait "${TL_CPID[$b]}" 2>/dev/null || rc[$b]=$?
	TL_CPID[$b]=
	[ "${rc[$b]}" -eq 86 ] || tl_fail "broker $b exited with ${rc[$b]}, want 86 (the fault switch)"
done
tl_cgrep "$a1" "test fault switch on" && tl_cgrep "$a2" "test fault switch on" &&
	tl_cgrep "$first" "test fault switch on" || tl_fail "the fault switch was not on"
# The log end each crashed broker left on disk, read before any restart.
for b in $a1 $a2 $first; do
	"$TL_TALLY" log dump "$TL_TMP/b$b/$topic-0" 2>/dev/null |
		sed -n 's/^baseOffset [0-9]* lastOffset \([0-9]*\) .*/\1/p' | sort -n | tail -n 1 \
		>"$TL_TMP/end-$b" || true # dump exits 1 on what a restart would finish
	tl_log "broker $b crashed at point ${point[$b]}; last offset on disk $(cat "$TL_TMP/end-$b"); files: $(ls "$TL_TMP/b$b/$topic-0" | grep -cE '\.(cleaned|swap)$') .cleaned/.swap"
done
for b in $a1 $a2 $first; do tl_cbroker_start "$b"; done
tl_cluster_wait_isr "$topic" 1 3 40
# kcat gives up when all three brokers are down at once; then the second half is sent
# again (a key's latest value is still its last line's).
if ! wait "$kcat_pid"; then
	grep -q 'brokers are down' "$TL_TMP/kcat.log" || {
		cat "$TL_TMP/kcat.log" >&2
		tl_fail "kcat -P failed through the crashes"
	}
	tl_log "kcat gave up while every broker was down; sending the second half again"
	tail -n +$((half + 1)) "$TL_TMP/input" | timeout 60 kcat -P -q -b "$TL_BOOTSTRAP" -t "$topic" \
		-p 0 -K: -X acks=all -X enable.idempotence=true -X batch.num.messages=20 \
		-X linger.ms=1 || tl_fail "kcat -P (second half, again) failed"
fi
for b in 1 2 3; do
	tl_cgrep "$b" "batch from leader refused topic=$topic" &&
		tl_fail "broker $b refused a batch from its leader"
done
leader=$(tl_cluster_leader "$topic" 0)
echo "k7:after" | timeout 30 kcat -P -q -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -K: -X acks=all ||
	tl_fail "produce after the restarts failed"
tl_cluster_wait_isr "$topic" 1 3 40

awk -F: '{ val[$1] = $2 } END { for (k in val) if (k != "k7") print k, val[k] }' \
	"$TL_TMP/input" >"$TL_TMP/want"
echo "k7 after" >>"$TL_TMP/want"
sort "$TL_TMP/want" -o "$TL_TMP/want"
timeout 30 kcat -C -q -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -o beginning -e \
	-X fetch.wait.max.ms=10 -f '%o %k %s\n' >"$TL_TMP/got" || tl_fail "kcat -C failed"
awk 'NR > 1 && $1 <= prev { print "offset " $1 " after " prev; exit 1 } { prev = $1 }' \
	"$TL_TMP/got" || tl_fail "offsets do not increase"
awk '{ last[$2] = $3 } END { for (k in last) print k, last[k] }' "$TL_TMP/got" | sort >"$TL_TMP/latest"
if ! cmp -s "$TL_TMP/want" "$TL_TMP/latest"; then
	# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
	diff "$TL_TMP/want" "$TL_TMP/latest" | head -n 10 >&2 || true
	tl_fail "latest values differ after the crashes"
fi
tl_log "leader $leader: $(wc -l <"$TL_TMP/got") records read of $((written + 1)) written, latest of all $keys keys right"

for b in 1 2 3; do tl_cbroker_stop "$b"; done
for b in 1 2 3; do
	# (ls captured: under pipefail, ls killed by SIGPIPE after a match would hide it.)
	if grep -qE '\.(cleaned|swap)$' <<<"$(ls "$TL_TMP/b$b/$topic-0")"; then
		tl_fail "broker $b: a .cleaned or .swap file is left after a clean stop"
	fi
	"$TL_TALLY" log check "$TL_TMP/b$b/$topic-0" >"$TL_TMP/check-$b" 2>&1 || {
		cat "$TL_TMP/check-$b" >&2
		tl_fail "tally log check fails on broker $b"
	}
	# Each key's latest (offset, value) on this broker's disk.
	"$TL_TALLY" log dump --records "$TL_TMP/b$b/$topic-0" |
		awk '$1 == "|" && $2 == "offset" { last[$9] = $3 " " $11 } END { for (k in last) print k, last[k] }' |
		sort >"$TL_TMP/disk-$b"
	[ "$(wc -l <"$TL_TMP/disk-$b")" -eq "$keys" ] || tl_fail "broker $b holds $(wc -l <"$TL_TMP/disk-$b") keys, want $keys"
	end=$(awk '{ print $2 }' "$TL_TMP/disk-$b" | sort -n | tail -n 1)
	if [ -f "$TL_TMP/end-$b" ] && [ -s "$TL_TMP/end-$b" ]; then
		[ "$end" -ge "$(cat "$TL_TMP/end-$b")" ] ||
			tl_fail "broker $b: log ends at $end, below its $(cat "$TL_TMP/end-$b") before the crash"
	fi
done
cmp -s "$TL_TMP/disk-1" "$TL_TMP/disk-2" && cmp -s "$TL_TMP/disk-1" "$TL_TMP/disk-3" || {
	# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
	diff "$TL_TMP/disk-1" "$TL_TMP/disk-2" | head -n 5 >&2 || true
	diff "$TL_TMP/disk-1" "$TL_TMP/disk-3" | head -n 5 >&2 || true
	tl_fail "the brokers disagree on a key's latest offset or value"
}
tl_log "ok: points $p1, $p2 and $p3; every broker holds each key's latest value at the same offset"
