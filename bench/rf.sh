#!/usr/bin/env bash
# rf.sh - replication factor 3 against 1 in one run (acks=all), with the baselines.
#
#   bench/rf.sh [-n REPS] [-d DURATION] [-w WARMUP] [-o DIR] [-- TALLY-BENCH-ARGS...]
#
# Each repetition runs, for RF 1 and for RF 3 (in alternating order: 1 3, 3 1, 1 3, ...,
# so that a drift of the machine falls on both):
#   peak  tally-bench produce --replication-factor RF -d D -w W --baseline
#         (closed loop; the disk baseline writes with RF writers at once at the
#         replicas' mean bytes per fdatasync and reports MB/s of one copy)
#   half  the same at half of that repetition's peak records/s, open loop (-r), with the
#         group commit floor at that rate and record size
# and then prints medians with min-max over the repetitions:
#   - RF 3 produce MB/s / the three-writer disk baseline (target >= 0.8), beside RF 1's
#     produce MB/s / the one-writer baseline;
#   - produce p99 at half of the RF 3 peak, beside RF 1's p99 at half of its peak and
#     the group commit floor's p99 (the RF 1 half run's);
#   - the load average and other processes' CPU during the runs.
# Defaults: 5 repetitions, 8 s runs with 2 s warm-up, SETTLE_S (3) idle seconds before
# each run; about 2 minutes per repetition. Reports (JSON and text) stay in DIR.
# Manual, not part of make test (tests/integration/805-bench-rf3.sh is the smoke test).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
reps=5 duration=8s warmup=2s out=
while [ $# -gt 0 ]; do
	case $1 in
	-n) reps=$2; shift 2 ;;
	-d) duration=$2; shift 2 ;;
	-w) warmup=$2; shift 2 ;;
	-o) out=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "rf.sh: unknown option $1 (see the header)" >&2; exit 2 ;;
	esac
done
out=${out:-$(mktemp -d /var/tmp/tally-bench-rf-runs.XXXXXX)}
mkdir -p "$out"
bench=${TALLY_BENCH:-build/bin/tally-bench}
[ -x "$bench" ] || make -s release >/dev/null
settle=${SETTLE_S:-3}
started=$(date +%s)

run() { # NAME TALLY-BENCH-ARGS...
	local name=$1 rc=0
	shift
	sleep "$settle"
	printf '%s %s\n' "$name" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/loadavg"
	"$bench" produce "$@" -d "$duration" -w "$warmup" --baseline -q -l "$name" \
		--json "$out/$name.json" >"$out/$name.txt" 2>&1 </dev/null || rc=$?
	[ $rc -eq 0 ] || echo "  $name failed (rc $rc): $(grep -m1 'tally-bench:' "$out/$name.txt")"
	return $rc
}

peak_rate() { # JSON -> records/s
	python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["produce"]["records_per_s"]))' "$1" 2>/dev/null
}

one() { # RF REP [TALLY-BENCH-ARGS...]
	local rf=$1 i=$2 rate
	shift 2
	run "rf$rf-peak-$i" --replication-factor "$rf" "$@" || return 0
	rate=$(peak_rate "$out/rf$rf-peak-$i.json")
	[ -n "$rate" ] && [ "$rate" -gt 1 ] || return 0
	run "rf$rf-half-$i" --replication-factor "$rf" -r $((rate / 2)) "$@" || true
}

extra=("$@")
echo "rf.sh: $reps repetitions of RF 1 and RF 3, produce -d $duration -w $warmup ${extra[*]}; reports in $out"
for ((i = 1; i <= reps; i++)); do
	if ((i % 2)); then
		one 1 "$i" "${extra[@]}"
		one 3 "$i" "${extra[@]}"
	else
		one 3 "$i" "${extra[@]}"
		one 1 "$i" "${extra[@]}"
	fi
	echo "  repetition $i done ($(($(date +%s) - started)) s)"
done

python3 - "$out" "$reps" "$(($(date +%s) - started))" <<'EOF'
import json, os, statistics, sys
out, reps, elapsed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def load(name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def get(j, path):
    for k in path.split("."):
        if not isinstance(j, dict) or k not in j:
            return None
        j = j[k]
    return j

def col(kind, rf, path):
    vals = []
    for i in range(1, reps + 1):
        j = load(f"rf{rf}-{kind}-{i}")
        v = get(j, path) if j else None
        if isinstance(v, (int, float)):
            vals.append(float(v))
    return vals

def ratio_col(kind, rf, num, den):
    vals = []
    for i in range(1, reps + 1):
        j = load(f"rf{rf}-{kind}-{i}")
        a, b = (get(j, num), get(j, den)) if j else (None, None)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
            vals.append(a / b)
    return vals

def fmt(vals, digits=2):
    if not vals:
        return "-"
    m = statistics.median(vals)
    lo, hi = min(vals), max(vals)
    spread = (hi - lo) / m * 100 if m else 0
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f}, n={len(vals)}, spread {spread:.0f} %)"

rows = [
    ("RF 1 peak produce MB/s", col("peak", 1, "produce.mb_per_s"), 1),
    ("RF 3 peak produce MB/s", col("peak", 3, "produce.mb_per_s"), 1),
    ("RF 3 / RF 1 peak MB/s", [b / a for a, b in zip(col("peak", 1, "produce.mb_per_s"),
                                                    col("peak", 3, "produce.mb_per_s")) if a > 0], 3),
    ("disk, 1 writer, MB/s (RF 1 cadence)", col("peak", 1, "baseline.disk.mb_per_s"), 1),
    ("disk, 3 writers, MB/s of one copy (RF 3 cadence)", col("peak", 3, "baseline.disk.mb_per_s"), 1),
    ("disk, 3 writers, MB/s in all", col("peak", 3, "baseline.disk.total_mb_per_s"), 1),
    ("RF 1 bytes per fdatasync (KiB)", [v / 1024 for v in col("peak", 1, "broker.bytes_per_fdatasync")], 0),
    ("RF 3 bytes per fdatasync, mean of replicas (KiB)", [v / 1024 for v in col("peak", 3, "replication.bytes_per_fdatasync")], 0),
    ("RF 1 produce MB/s / 1-writer disk", ratio_col("peak", 1, "produce.mb_per_s", "baseline.disk.mb_per_s"), 3),
    ("RF 3 produce MB/s / 3-writer disk (target >= 0.8)", ratio_col("peak", 3, "produce.mb_per_s", "baseline.disk.mb_per_s"), 3),
    ("RF 1 half-peak rate, records/s", col("half", 1, "config.rate"), 0),
    ("RF 3 half-peak rate, records/s", col("half", 3, "config.rate"), 0),
    ("RF 1 p50 at half its peak, ms", col("half", 1, "produce.latency_ms.p50"), 2),
    ("RF 1 p99 at half its peak, ms", col("half", 1, "produce.latency_ms.p99"), 2),
    ("RF 3 p50 at half its peak, ms", col("half", 3, "produce.latency_ms.p50"), 2),
    ("RF 3 p99 at half its peak, ms", col("half", 3, "produce.latency_ms.p99"), 2),
    ("group commit floor p99 at RF 1's half rate, ms", col("half", 1, "baseline.group_commit.latency_ms.p99"), 2),
    ("group commit floor p99 at RF 3's half rate, ms", col("half", 3, "baseline.group_commit.latency_ms.p99"), 2),
    ("RF 1 half: broker fdatasync p99, ms", col("half", 1, "broker.fdatasync_ms.p99"), 2),
    ("RF 3 half: leader fdatasync p99, ms", col("half", 3, "broker.fdatasync_ms.p99"), 2),
    ("RF 3 half: leader Produce request p99, ms", col("half", 3, "broker.produce_request_ms.p99"), 2),
    ("other processes, CPU-s per s (all runs)", [a / b for a, b in zip(
        [v for k in ("peak", "half") for rf in (1, 3) for v in col(k, rf, "resources.other_cpu_s")],
        [v for k in ("peak", "half") for rf in (1, 3) for v in col(k, rf, "resources.wall_s")]) if b > 0], 2),
]
print()
print(f"rf.sh: medians over {reps} repetitions (min-max, runs counted, (max-min)/median); {elapsed} s in all")
w = max(len(r[0]) for r in rows)
for name, vals, digits in rows:
    print(f"  {name:<{w}}  {fmt(vals, digits)}")
loads = []
try:
    with open(os.path.join(out, "loadavg")) as f:
        loads = [float(line.split()[1]) for line in f if len(line.split()) >= 2]
except OSError:
    pass
if loads:
    print(f"  {'load average (1 min) before each run':<{w}}  {fmt(loads, 2)}")
EOF
