#!/usr/bin/env bash
# retention.ms and retention.bytes delete the active segment too (review of log
# retention, finding 4). Five records in a fresh topic stay in its one (active) segment;
# they used to outlive retention.ms until segment.ms (7 days) rolled it. Kafka rolls a
# non-empty active segment wholly below the high watermark once retention would delete
# it, then deletes it: after retention.ms the log start is 5 and nothing is left to read.
# The same for retention.bytes=0 on a second topic. Then log.retention.check.interval.ms
# is honoured: nothing expires between two checks.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_keyed_producer

tl_start_broker --override num.partitions=1 --override log.retention.check.interval.ms=200
"$TL_BIN/tally" -b "$TL_BROKER" topic create bytime -p 1 --config retention.ms=2000 >/dev/null ||
	tl_fail "topic create failed"
"$TL_BIN/tally" -b "$TL_BROKER" topic create bysize -p 1 --config retention.bytes=0 >/dev/null ||
	tl_fail "topic create failed"
for topic in bytime bysize; do
	for i in $(seq 0 4); do echo "k$i v$i"; done |
		timeout 30 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" $topic >/dev/null ||
		tl_fail "produce to $topic failed"
done
for topic in bytime bysize; do
	deadline=$((SECONDS + 15))
	until [ "$(timeout 10 kcat -Q -b "$TL_BROKER" -t $topic:0:-2)" = "$topic [0] offset 5" ]; do
		[ $SECONDS -lt $deadline ] ||
			tl_fail "$topic: log start still $(kcat -Q -b "$TL_BROKER" -t $topic:0:-2) after 15 s"
		sleep 0.2
	done
	got=$(timeout 30 kcat -C -q -b "$TL_BROKER" -t $topic -p 0 -o beginning -e -f '%o\n' | wc -l)
	[ "$got" = 0 ] || tl_fail "$topic: $got records still read after retention"
	[ "$(timeout 10 kcat -Q -b "$TL_BROKER" -t $topic:0:-1)" = "$topic [0] offset 5" ] ||
		tl_fail "$topic: the log end moved"
done
# The log goes on from 5.
echo "k5 v5" | timeout 30 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" bysize >"$TL_TMP/off" ||
	tl_fail "produce after retention failed"
[ "$(cat "$TL_TMP/off")" = 5 ] || tl_fail "the next record went to $(cat "$TL_TMP/off"), not 5"
tl_log "the active segment expired by time and by size; the log goes on from offset 5"
tl_stop_broker

# log.retention.check.interval.ms is honoured (it was parsed and ignored: retention ran
# every second): with a 10 min interval, records past retention.ms=500 are still there
# 3 s later, deleted segments below a DeleteRecords start still go at once.
rm -rf "$TL_DATA"
tl_start_broker --override num.partitions=1 --override log.retention.check.interval.ms=600000
"$TL_BIN/tally" -b "$TL_BROKER" topic create later -p 1 --config retention.ms=500 \
	--config segment.bytes=100 >/dev/null || tl_fail "topic create failed"
for i in $(seq 0 4); do echo "k$i v$i"; done |
	timeout 30 "$TL_PROGS/rdk_keyed_producer" "$TL_BROKER" later >/dev/null || tl_fail "produce to later failed"
sleep 3
[ "$(timeout 10 kcat -Q -b "$TL_BROKER" -t later:0:-2)" = "later [0] offset 0" ] ||
	tl_fail "retention ran before log.retention.check.interval.ms: start $(kcat -Q -b "$TL_BROKER" -t later:0:-2)"
"$TL_BIN/tally" -b "$TL_BROKER" topic delete-records later 0 2 >/dev/null || tl_fail "delete-records later"
[ ! -e "$TL_DATA/later-0/00000000000000000000.log" ] ||
	tl_fail "a segment below the DeleteRecords start waited for the retention check"
tl_stop_broker
