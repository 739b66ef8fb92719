#!/usr/bin/env bash
# kill -9 durability: tests/progs/rdk_acked_producer writes numbered records (acks=all,
# no idempotence, no retries) to a 2-partition topic and logs each acknowledged one as
# "id partition offset". tallyd is killed with SIGKILL three times while it runs and
# restarted on the same data dir and port; the producer carries on through each outage.
# Then, reading everything back:
#   (1) every acknowledged record is at the partition and offset its ack named;
#   (2) no record id is stored twice (the producer never retries);
#   (3) each partition's offsets run 0,1,2,... with no gap: appends after each
#       recovery continued at the next offset;
#   (4) a record appended after the producer finished lands at the end offset;
#   (5) failed deliveries come only from the kills: each id lies in [A - RATE/4,
#       A + RATE/2) for the highest id A acknowledged at one of the kills (in flight
#       then: up to half a second of sending past A; the other partition's a little
#       below A), so a broker that refuses records between the kills or after the last
#       one fails here. (Before, the window was one second past the last kill only,
#       and ran past the last id: nothing could fail it.)
# Unacknowledged records may or may not be present (their answer was lost in a crash).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_acked_producer

count=60000
rate=15000
kills=3
if [ "$TL_LONG" = 1 ]; then
	count=600000
	rate=20000
	kills=10
fi
topic=crash-acked
acked=$TL_TMP/acked

tl_start_broker --override num.partitions=2 --override log.segment.bytes=1048576

lines()
{
	if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

failed=$TL_TMP/failed
"$TL_PROGS/rdk_acked_producer" -b "$TL_BROKER" -t "$topic" -o "$acked" -f "$failed" \
	-n "$count" -p 2 -r "$rate" >"$TL_TMP/producer.out" 2>"$TL_TMP/producer.err" &
producer=$!

kill_acked=() # the highest id acknowledged at each kill
for k in $(seq 1 "$kills"); do
	want=$((count * k / (kills + 1)))
	deadline=$((SECONDS + 60))
	while [ "$(lines "$acked")" -lt "$want" ]; do
		[ $SECONDS -lt $deadline ] || tl_fail "only $(lines "$acked") of $want records acknowledged after 60 s"
		tl_pid_alive "$producer" || tl_fail "producer exited early: $(cat "$TL_TMP/producer.err")"
		sleep 0.05
	done
	tl_log "kill -9 #$k after $(lines "$acked") acknowledgements"
	tl_kill9_broker
	kill_acked+=("$(awk '$1 > max { max = $1 } END { print max + 0 }' "$acked")")
	sleep 0.3
	tl_start_broker
done

rc=0
wait "$producer" || rc=$?
cat "$TL_TMP/producer.out" >&2
head -n 5 "$TL_TMP/producer.err" >&2
[ $rc -eq 0 ] || tl_fail "producer exited with status $rc"
tl_log "$(lines "$acked") of $count records acknowledged, $(lines "$failed") failed"

# (5)
below=$((rate / 4))
above=$((rate / 2))
touch "$failed"
# (sed -n, not head: it reads all its input, so a long list cannot SIGPIPE the writer and
# end the test under set -e before tl_fail says why)
late=$(awk -v b=$below -v a=$above -v kills="${kill_acked[*]}" '
	BEGIN { n = split(kills, k, " ") }
	{ ok = 0; for (i = 1; i <= n; i++) if ($1 >= k[i] - b && $1 < k[i] + a) ok = 1; if (!ok) print $1 }' \
	"$failed" | sed -n 1,5p | tr '\n' ' ')
tl_log "failed ids $(sort -n "$failed" | awk 'NR == 1 { f = $1 } { l = $1 } END { printf "%s..%s", f, l }'), highest acknowledged at the kills: ${kill_acked[*]}"
[ -z "$late" ] || tl_fail "deliveries failed away from every kill (ids outside [A - $below, A + $above) for the highest A acknowledged at each: ${kill_acked[*]}): $late"

timeout 120 kcat -C -q -b "$TL_BROKER" -t "$topic" -o beginning -e -X fetch.wait.max.ms=10 -f '%p %o %s\n' >"$TL_TMP/got" ||
	tl_fail "kcat -C failed"
tl_log "$(lines "$TL_TMP/got") records stored"

# (1)-(3). Stored lines come first ("S p o id"), then acknowledgements ("A id p o").
{
	awk '{ split($3, v, ":"); print "S", $1, $2, v[1] }' "$TL_TMP/got"
	awk '{ print "A", $1, $2, $3 }' "$acked"
} | awk '
	$1 == "S" {
		p = $2; o = $3; id = $4;
		key = p " " o;
		if (key in stored) { print "offset " key " read twice"; bad++ }
		stored[key] = id;
		if (id in where) { print "record " id " stored twice: at " where[id] " and " key; bad++ }
		else distinct++;
		where[id] = key;
		if (id % 2 != p) { print "record " id " on partition " p; bad++ }
		if (!(p in max) || o > max[p]) max[p] = o;
		n[p]++;
		next;
	}
	$1 == "A" {
		id = $2; key = $3 " " $4; acks++;
		if (!(key in stored)) { print "acknowledged record " id " missing: nothing at " key; bad++ }
		else if (stored[key] != id) { print "acknowledged record " id " at " key " but " stored[key] " is there"; bad++ }
	}
	bad > 20 { exit 1 }
	END {
		for (p in n)
			if (max[p] + 1 != n[p]) { print "partition " p ": " n[p] " records but last offset " max[p] " (gap)"; bad++ }
		printf "checked %d acknowledgements against %d stored records\n", acks, distinct;
		exit bad > 0;
	}' >&2 || tl_fail "acknowledged records lost, moved or duplicated"

# (4) The next append goes right after the last stored offset.
for p in 0 1; do
	end=$(awk -v p=$p '$1 == p { n++ } END { print n + 0 }' "$TL_TMP/got")
	echo "after-$p" | timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" -p "$p" -X acks=all ||
		tl_fail "produce after recovery failed"
	got=$(timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -p "$p" -o "$end" -c 1 -e -f '%o %s\n')
	[ "$got" = "$end after-$p" ] || tl_fail "partition $p: new record read as \"$got\", want \"$end after-$p\""
done

tl_stop_broker
