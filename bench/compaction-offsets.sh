#!/usr/bin/env bash
# __consumer_offsets under commits every 10 ms: disk size and restart replay as commits
# accumulate. Four phases of 20 s, a broker restart after each.
# EXTRA="--override log.cleaner.enable=false" gives the figures without compaction.
set -u
cd "$(dirname "$0")/.."
B=build/bin
P=build/release/tests/progs
d=$(mktemp -d /var/tmp/compact-offsets.XXXXXX); port=$((20000 + RANDOM % 20000))
pid=
start() { : >$d/tallyd.log; local t0=$(date +%s%N)
	$B/tallyd --override listeners=PLAINTEXT://127.0.0.1:$port --override log.dirs=$d/data \
	--override offsets.topic.segment.bytes=65536 --override offsets.topic.num.partitions=1 \
	--override log.cleaner.backoff.ms=1000 ${EXTRA:-} >>$d/tallyd.log 2>&1 & pid=$!
	until grep -q "listening on" $d/tallyd.log 2>/dev/null; do sleep 0.02; done
	echo "  start: listening after $(( ($(date +%s%N) - t0) / 1000000 )) ms; $(grep -o 'offsets topic replayed.*' $d/tallyd.log)"; }
trap 'kill $pid 2>/dev/null' EXIT
start
$B/tally -b 127.0.0.1:$port topic create load -p 1 >/dev/null
total=0
for phase in 1 2 3 4; do
	out=$($P/rdk_committer 127.0.0.1:$port g1 load 20 10)
	n=$(echo "$out" | awk '{print $2}'); total=$((total + n))
	sleep 2
	size=$(du -sk $d/data/__consumer_offsets-0 | cut -f1)
	echo "phase $phase: $out; commits so far $total; __consumer_offsets-0 on disk ${size} KiB; passes $(grep -c 'compacted.*dir=.*__consumer_offsets' $d/tallyd.log)"
	kill -TERM $pid; wait $pid
	start
done
kill -TERM $pid; wait $pid; pid=
rm -rf $d
