#!/usr/bin/env bash
# The cleaner's thread CPU per GB produced: RUNS (default 5) runs of the compaction-ab.sh
# workload with the cleaner on, summing the cpu_us= of every "log: compacted" line.
# BIN: the folder holding tally-bench and tallyd (default build/bin). Robust under load:
# it counts the cleaner thread's own CPU time, not throughput.
cd "$(dirname "$0")/.."
bin=${BIN:-build/bin}
out=${OUT:-$(mktemp -d /var/tmp/cleaner-cpu.XXXXXX)}
mkdir -p "$out"
for i in $(seq 1 "${RUNS:-5}"); do
	d=/var/tmp/cleaner-cpu-$$-$i
	rm -rf $d; mkdir -p $d
	$bin/tally-bench produce -k 1000 -s 200 -d 6s -w 2s --broker-arg log.cleanup.policy=compact \
		--broker-arg log.segment.bytes=1048576 --broker-arg log.cleaner.backoff.ms=100 \
		--broker-arg log.cleaner.min.cleanable.ratio=0.1 --broker-arg log.cleaner.enable=true \
		${EXTRA:-} -q --keep-data --data-dir $d --json $out/$i.json >$out/$i.txt 2>&1
	log=$(find $d -name tallyd.log | head -1)
	python3 - "$out/$i.json" "$log" "$i" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
p = j['produce']
produced = p.get('total_bytes') or 0  # the cleaner runs through the warm-up too
cpu = passes = read = 0
for line in open(sys.argv[2], errors='replace'):
    if 'log: compacted' in line or 'log: compaction pass cancelled' in line:
        m = re.search(r'cpu_us=(\d+)', line); cpu += int(m.group(1)) if m else 0
        m = re.search(r'bytes_read=(\d+)', line); read += int(m.group(1)) if m else 0
        passes += 'log: compacted' in line
gb = produced / 1e9
print(f"run {sys.argv[3]} produced_mb={produced/1e6:.1f} rps={p.get('records_per_s',0):.0f} passes={passes} "
      f"cleaner_read_mb={read/1e6:.1f} cleaner_cpu_s={cpu/1e6:.3f} "
      f"cleaner_cpu_s_per_gb={cpu/1e6/gb if gb else 0:.3f} cleaner_cpu_us_per_mb_read={cpu/(read/1e6) if read else 0:.0f}")
PY
	rm -rf $d
done
