#!/usr/bin/env bash
# ab.sh - is B faster or slower than A, beyond the noise? Runs the same tally-bench
# workload PAIRS times with A's options and with B's, alternating which goes first (A B,
# B A, A B, ...: a drift of the machine over the runs falls on both), SETTLE_S (5) idle
# seconds before each run, and prints each pair's B/A ratio and their mean with a 95 %
# confidence interval (Student's t over the pairs' ratios) and median for throughput,
# produce p99, the broker's Produce request and fdatasync p99, and the broker's and the
# client's CPU-seconds per GB.
#
#   bench/ab.sh [-n PAIRS] [-o DIR] -A "A's options" -B "B's options" -- COMMON...
#   bench/ab.sh -n 20 -A "--idempotence on" -B "--idempotence off" -- produce -d 8s -w 2s
#
# A and B may also be two builds: BENCH_A and BENCH_B name their tally-bench (default
# build/bin/tally-bench for both; -A and -B may then be ""). Works for produce and for
# consume (whose runs have no latency: those rows stay empty).
#   BENCH_A=/work/base/build/bin/tally-bench bench/ab.sh -n 5 -A "" -B "" -- consume --fill 4g
#
# A run whose "other processes" took over 10 % of a CPU (OTHER_CPU_MAX, a fraction of
# the run's wall time) is reported and left out, with its partner; on a machine shared
# with other work, raise it and say so next to the figures. Manual, not part of make test.
set -uo pipefail
cd "$(dirname "$0")/.."
pairs=10 out= a_args= b_args=
while [ $# -gt 0 ]; do
	case $1 in
	-n) pairs=$2; shift 2 ;;
	-o) out=$2; shift 2 ;;
	-A) a_args=$2; shift 2 ;;
	-B) b_args=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "ab.sh: unknown option $1 (see the header)" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "ab.sh: no tally-bench command after --" >&2; exit 2; }
out=${out:-$(mktemp -d /var/tmp/tally-bench-ab.XXXXXX)}
mkdir -p "$out"
bench=build/bin/tally-bench
[ -x "$bench" ] || make -s release >/dev/null
bench_a=${BENCH_A:-$bench} bench_b=${BENCH_B:-$bench}
settle=${SETTLE_S:-5}

run() { # SIDE PAIR TALLY-BENCH-ARGS...
	local name=$1-$2 tool=$bench_a
	[ "$1" = b ] && tool=$bench_b
	shift 2
	sleep "$settle"
	"$tool" "$@" -q -l "$name" --json "$out/$name.json" >"$out/$name.txt" 2>&1 </dev/null
}

echo "ab.sh: $pairs pairs; A: $bench_a $a_args; B: $bench_b $b_args; common: $*; reports in $out"
for ((i = 1; i <= pairs; i++)); do
	# shellcheck disable=SC2086 # a side's options are split into words on purpose
	if ((i % 2)); then
		run a "$i" "$@" $a_args
		run b "$i" "$@" $b_args
	else
		run b "$i" "$@" $b_args
		run a "$i" "$@" $a_args
	fi
	echo "  pair $i done"
done

python3 - "$out" "$pairs" "${OTHER_CPU_MAX:-0.1}" <<'EOF'
import json, math, os, sys
out, pairs, other_max = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
# two-sided 95 % Student's t by degrees of freedom; 1.96 past the table
T95 = [12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042]

def load(side, i):
    path = os.path.join(out, f"{side}-{i}.json")
    try:
        j = json.load(open(path))
    except (OSError, ValueError) as e:
        return None, f"{path}: {e}"
    if not j.get("ok"):
        return None, f"{path}: {j.get('error')}"
    res = j.get("resources", {})
    if res.get("other_cpu_s", 0) > other_max * res.get("wall_s", 0):
        return None, f"{path}: machine not idle ({res['other_cpu_s']:.2f} CPU-s of others)"
    broker = j.get("broker", {})
    side = j.get("produce") or j["consume"]
    return {"mb": side["mb_per_s"],
            "p99": side.get("latency_ms", {}).get("p99"),
            "req_p99": broker.get("produce_request_ms", {}).get("p99"),
            "sync_p99": broker.get("fdatasync_ms", {}).get("p99"),
            "broker": res.get("broker_cpu_s_per_gb"),
            "client": res.get("client_cpu_s_per_gb")}, None

rows = []
for i in range(1, pairs + 1):
    a, ea = load("a", i)
    b, eb = load("b", i)
    if ea or eb:
        print(f"  pair {i} left out: {ea or eb}")
        continue
    rows.append((i, a, b))

def summary(name, key):
    r = [b[key] / a[key] for _, a, b in rows if a.get(key) and b.get(key)]
    if len(r) < 2:
        print(f"  {name}: fewer than 2 pairs")
        return
    n = len(r)
    mean = sum(r) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (n - 1))
    t = T95[n - 2] if n - 2 < len(T95) else 1.96
    half = t * sd / math.sqrt(n)
    median = sorted(r)[n // 2] if n % 2 else sum(sorted(r)[n // 2 - 1:n // 2 + 1]) / 2
    print(f"  {name}: B/A mean {mean:.4f}, 95 % CI [{mean - half:.4f}, {mean + half:.4f}],"
          f" median {median:.4f} [{min(r):.4f}-{max(r):.4f}] over {n} pairs"
          f" (sd of a ratio {sd:.4f})")

def ms(v):
    return f"{v:.2f}" if v is not None else "-"

print(f"{'pair':>4} {'A MB/s':>8} {'B MB/s':>8} {'B/A':>6} {'A p99':>7} {'B p99':>7}"
      f" {'A brk p99':>9} {'B brk p99':>9} {'A sync p99':>10} {'B sync p99':>10}"
      f" {'A brk CPU/GB':>10} {'B':>6} {'A cli CPU/GB':>10} {'B':>6}")
for i, a, b in rows:
    print(f"{i:>4} {a['mb']:>8.1f} {b['mb']:>8.1f} {b['mb'] / a['mb']:>6.3f}"
          f" {ms(a['p99']):>7} {ms(b['p99']):>7} {ms(a['req_p99']):>9} {ms(b['req_p99']):>9}"
          f" {ms(a['sync_p99']):>10} {ms(b['sync_p99']):>10}"
          f" {a['broker'] or 0:>10.3f} {b['broker'] or 0:>6.3f}"
          f" {a['client'] or 0:>10.3f} {b['client'] or 0:>6.3f}")
summary("throughput (MB/s)", "mb")
summary("produce p99 (client)", "p99")
summary("Produce request p99 (broker)", "req_p99")
summary("fdatasync p99 (broker)", "sync_p99")
summary("broker CPU-s/GB", "broker")
summary("client CPU-s/GB", "client")
EOF
