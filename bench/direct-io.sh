#!/usr/bin/env bash
# direct-io.sh - tallyd's direct I/O log (log.direct.io=true, the default) against the
# buffered one (log.direct.io=false): PAIRS alternating pairs (D B, B D, ...) of
#   tally-bench produce -d 10s -w 3s --baseline [COMMON...]
# with SETTLE_S (5) idle seconds before each, then, per variant, the median [min-max] of
# produce MB/s, its ratio to the buffered and to the O_DIRECT disk baseline (both at the
# broker's own bytes per fdatasync), the broker's and the client's CPU-s per GB and the
# other processes' CPU. Where tracefs is writable (root) it also counts, per run, the
# broker's io_uring requests punted to io-wq workers (lines of the
# io_uring_queue_async_work tracepoint from the broker's pid, by opcode).
#
#   bench/direct-io.sh [-n PAIRS] [-o DIR] [-- COMMON...]
#   bench/direct-io.sh -n 5 -- -p 4 -P 4
#
# Manual, not part of make test.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/pairs-lib.sh
pairs_options dio "$@"
set -- "${pairs_rest[@]}"

tr=/sys/kernel/tracing
ev=$tr/events/io_uring/io_uring_queue_async_work
# tracefs is not always mounted (this VM after boot): mount it where root may.
if [ ! -e "$tr/events" ] && [ "$(id -u)" = 0 ]; then
	mount -t tracefs nodev "$tr" 2>/dev/null || true
fi
trace=0
if [ -w "$ev/enable" ] && echo 1 >"$ev/enable" 2>/dev/null; then
	trace=1
	echo 16384 >"$tr/buffer_size_kb" 2>/dev/null
	trap 'echo 0 >"$ev/enable" 2>/dev/null' EXIT
fi

run()
{
	local variant=$1 i=$2 extra=()
	shift 2
	[ "$variant" = buffered ] && extra=(--broker-arg log.direct.io=false)
	sleep "$settle"
	[ $trace = 1 ] && : >"$tr/trace"
	$bench produce -d 10s -w 3s --baseline --quiet --json "$out/$variant-$i.json" "${extra[@]}" "$@" \
		>"$out/$variant-$i.txt" 2>&1 || echo "run $variant-$i failed (see $out/$variant-$i.txt)" >&2
	if [ $trace = 1 ]; then
		pid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resources']['broker_pid'])" \
			"$out/$variant-$i.json" 2>/dev/null)
		grep -E "^ *tallyd-$pid .*io_uring_queue_async_work" "$tr/trace" |
			grep -oE 'opcode [A-Z_]+' | sort | uniq -c >"$out/$variant-$i.iowq"
	fi
}

pairs_alternate direct buffered "$@"

python3 - "$out" "$trace" <<'PY'
import glob, json, re, statistics, sys
out, trace = sys.argv[1], sys.argv[2] == "1"
def get(d, path):
    for k in path.split("."):
        d = d.get(k) if isinstance(d, dict) else None
    return d
rows = [("produce MB/s", "produce.mb_per_s"),
        ("/ disk baseline (buffered)", "ratios.produce_vs_disk"),
        ("/ disk baseline (O_DIRECT)", "ratios.produce_vs_disk_direct"),
        ("disk baseline MB/s (buffered)", "baseline.disk.mb_per_s"),
        ("disk baseline MB/s (O_DIRECT)", "baseline.disk_direct.mb_per_s"),
        ("broker CPU-s/GB", "resources.broker_cpu_s_per_gb"),
        ("client CPU-s/GB", "resources.client_cpu_s_per_gb"),
        ("other processes CPU-s", "resources.other_cpu_s"),
        ("broker bytes per fdatasync", "broker.bytes_per_fdatasync")]
print(f"{out}: median [min-max] of n runs")
print("| figure | direct (log.direct.io=true) | buffered (log.direct.io=false) |")
print("| --- | --- | --- |")
def cell(vals):
    vals = [v for v in vals if isinstance(v, (int, float))]
    if not vals:
        return "-"
    f = (lambda v: f"{v:.3f}") if max(vals) < 10 else (lambda v: f"{v:.1f}")
    return f"{f(statistics.median(vals))} [{f(min(vals))}-{f(max(vals))}] n={len(vals)}"
runs = {v: [json.load(open(p)) for p in sorted(glob.glob(f"{out}/{v}-*.json"))]
        for v in ("direct", "buffered")}
for name, path in rows:
    print(f"| {name} | {cell([get(r, path) for r in runs['direct']])} | "
          f"{cell([get(r, path) for r in runs['buffered']])} |")
if trace:
    for v in ("direct", "buffered"):
        counts = {}
        for p in sorted(glob.glob(f"{out}/{v}-*.iowq")):
            for line in open(p):
                m = re.search(r"(\d+) opcode (\w+)", line)
                if m:
                    counts.setdefault(m.group(2), []).append(int(m.group(1)))
        print(f"io-wq punts ({v}), per run, by opcode: {counts}")
PY
