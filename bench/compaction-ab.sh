#!/usr/bin/env bash
# PAIRS (default 5) pairs, alternating order: A = cleaner off, B = cleaner on; same compacted topic config.
# B_ARGS adds tally-bench options to B only, e.g. B_ARGS="--broker-arg log.cleaner.backoff.ms=2000"
# (the later --broker-arg wins; a backoff longer than the run means no pass at all).
# SEGMENT_BYTES (default 1 MiB: a roll and a pass about every second at full speed, the
# worst case) sets log.segment.bytes on both sides.
# Ends with the pairs' B/A of records/s and of broker CPU-s per GB, median [min-max], and
# the other processes' CPU-s per run (what ran beside the bench).
cd "$(dirname "$0")/.."
out=${OUT:-$(mktemp -d /var/tmp/compaction-ab.XXXXXX)}
mkdir -p "$out"
common=(produce -k 1000 -s 200 -d 6s -w 2s --broker-arg log.cleanup.policy=compact
	--broker-arg log.segment.bytes=${SEGMENT_BYTES:-1048576} --broker-arg log.cleaner.backoff.ms=100
	--broker-arg log.cleaner.min.cleanable.ratio=0.1 -q --keep-data)
for i in $(seq 1 "${PAIRS:-5}"); do
	if [ $((i % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
	for side in $order; do
		[ $side = A ] && extra=(--broker-arg log.cleaner.enable=false) || extra=(--broker-arg log.cleaner.enable=true ${B_ARGS:-})
		d=/var/tmp/compact-bench-$side-$i
		rm -rf $d; mkdir -p $d
		sleep 3
		build/bin/tally-bench "${common[@]}" "${extra[@]}" --data-dir $d --json $out/$side-$i.json >$out/$side-$i.txt 2>&1
		ck=$(find $d -name cleaner-offset-checkpoint | head -1)
		rps=$(python3 -c "import json;d=json.load(open('$out/$side-$i.json'));print(d['produce'].get('records_per_s', d['produce']))" 2>&1 | head -c 200)
		size=$(du -sk $d | cut -f1)
		echo "$side $i rps=$rps checkpoint=${ck:+yes} data_kb=$size"
		rm -rf $d
	done
done
python3 - "$out" "${PAIRS:-5}" <<'PY'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
def load(side, i):
    try:
        return json.load(open(f"{out}/{side}-{i}.json"))
    except (OSError, ValueError):
        return None
def fmt(xs):
    return f"{statistics.median(xs):.3f} [{min(xs):.3f}-{max(xs):.3f}]" if xs else "none"
rps, cpu, other = [], [], []
for i in range(1, pairs + 1):
    a, b = load("A", i), load("B", i)
    if not a or not b:
        print(f"pair {i}: a run failed, left out")
        continue
    rps.append(b["produce"]["records_per_s"] / a["produce"]["records_per_s"])
    cpu.append(b["resources"]["broker_cpu_s_per_gb"] / a["resources"]["broker_cpu_s_per_gb"])
    other += [a["resources"]["other_cpu_s"], b["resources"]["other_cpu_s"]]
print(f"B/A records/s: {fmt(rps)} over {len(rps)} pairs")
print(f"B/A broker CPU-s per GB: {fmt(cpu)}")
print(f"other processes, CPU-s per run: {fmt(other)}")
PY
