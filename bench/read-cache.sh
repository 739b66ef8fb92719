#!/usr/bin/env bash
# read-cache.sh - tallyd's log read cache (log.cache.bytes, default 4 MiB per partition)
# against none (log.cache.bytes=0), both with direct I/O: PAIRS alternating pairs (C N,
# N C, ...) of one tally-bench run (default: the tailing consumer of issue 22,
#   tally-bench e2e -r 50k -d 10s -w 3s
# ), SETTLE_S (5) idle seconds before each, then per variant the median [min-max] of
# end-to-end p50 and p99, consume MB/s, the broker's bytes read from storage
# (/proc/PID/io read_bytes) and its CPU-s per GB.
#
#   bench/read-cache.sh [-n PAIRS] [-o DIR] [-- TALLY-BENCH-ARGS...]
#   bench/read-cache.sh -n 5 -- consume --fill 512m     (data older than the cache)
#
# Manual, not part of make test.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/pairs-lib.sh
pairs_options cache "$@"
set -- "${pairs_rest[@]}"
[ $# -gt 0 ] || set -- e2e -r 50k -d 10s -w 3s

run()
{
	local variant=$1 i=$2 extra=()
	shift 2
	[ "$variant" = nocache ] && extra=(--broker-arg log.cache.bytes=0)
	sleep "$settle"
	$bench "$@" --quiet --json "$out/$variant-$i.json" "${extra[@]}" \
		>"$out/$variant-$i.txt" 2>&1 || echo "run $variant-$i failed (see $out/$variant-$i.txt)" >&2
}

pairs_alternate cache nocache "$@"

python3 - "$out" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d
rows = [("e2e p50 ms", ("e2e", "latency_ms", "p50")), ("e2e p99 ms", ("e2e", "latency_ms", "p99")),
        ("consume MB/s", ("consume", "mb_per_s")), ("produce MB/s", ("produce", "mb_per_s")),
        ("broker read MB", ("resources", "broker_read_bytes")),
        ("broker CPU-s/GB", ("resources", "broker_cpu_s_per_gb")),
        ("other CPU-s", ("resources", "other_cpu_s"))]
print(f"{'':18} {'cache (4 MiB)':>28} {'log.cache.bytes=0':>28}")
for name, path in rows:
    cells = []
    for v in ("cache", "nocache"):
        xs = []
        for f in sorted(glob.glob(f"{out}/{v}-*.json")):
            x = get(json.load(open(f)), *path)
            if x is not None:
                xs.append(x / 1e6 if "read MB" in name else x)
        cells.append(f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}] n={len(xs)}" if xs else "-")
    print(f"{name:18} {cells[0]:>28} {cells[1]:>28}")
print(f"(runs in {out})")
PY
