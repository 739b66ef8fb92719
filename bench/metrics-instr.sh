#!/usr/bin/env bash
# metrics-instr.sh - what metrics cost in broker instructions (issue #18), a figure the
# machine's load does not move: tallyd under valgrind's callgrind (no hardware counters
# on this VM, so no perf stat), a fixed workload (kcat produces RECORDS records of SIZE
# bytes with acks=all, then reads them back once; log.io.engine=sync: valgrind does not
# run io_uring), metrics off (metrics.listener unset: the hot-path counting is off) and
# on (set, not scraped: a scrape's own cost is separate), PAIRS pairs alternating which
# goes first. Prints each run's instructions and instructions per GB produced, each
# pair's on/off ratio, and the median ratio with min-max.
#
#   bench/metrics-instr.sh [PAIRS] [RECORDS] [SIZE]      default 7 20000 512
#   PRODUCE_ARGS="-X batch.num.messages=1 -X linger.ms=0" bench/metrics-instr.sh 3 5000 100
#                                     one record a request: the per-request worst case
#   TALLYD=/path/to/tallyd ...        measure another build (default build/bin/tallyd)
# Manual, not part of make test.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-7}
records=${2:-20000}
size=${3:-512}
if ! command -v valgrind >/dev/null || ! command -v kcat >/dev/null; then
	echo "metrics-instr.sh: needs valgrind and kcat" >&2
	exit 2
fi
out=$(mktemp -d /var/tmp/tally-metrics-instr.XXXXXX)
python3 -c "import sys; sys.stdout.write(('x' * $size + '\n') * $records)" >"$out/records"
bytes=$((records * size))

run() { # SIDE PAIR
	local side=$1 pair=$2 dir=$out/$1-$2 pid port args=()
	mkdir -p "$dir/data"
	[ "$side" = on ] && args=(--override metrics.listener=http://127.0.0.1:0)
	valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
		"${TALLYD:-build/bin/tallyd}" --override listeners=PLAINTEXT://127.0.0.1:0 \
		--override "log.dirs=$dir/data" --override log.io.engine=sync \
		"${args[@]}" >"$dir/tallyd.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 600); do
		port=$(grep -oE 'broker: listening on [0-9.]+:[0-9]+' "$dir/tallyd.log" 2>/dev/null |
			grep -oE '[0-9]+$' || true)
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { echo "tallyd did not start: $dir/tallyd.log" >&2; kill -9 "$pid"; exit 1; }
	# shellcheck disable=SC2086 # PRODUCE_ARGS is split into words on purpose
	kcat -P -q -b "127.0.0.1:$port" -t m -X acks=all -X linger.ms=5 \
		${PRODUCE_ARGS:-} <"$out/records"
	kcat -C -q -b "127.0.0.1:$port" -t m -o beginning -e >/dev/null
	kill -TERM "$pid"
	wait "$pid" || true
	sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$dir/callgrind.out" | head -1 >"$dir/ir"
	rm -rf "$dir/data"
	# Where the difference lies: the request path's functions, inclusive.
	callgrind_annotate --inclusive=yes --threshold=100 "$dir/callgrind.out" 2>/dev/null |
		grep -E 'conn_frame_ready|conn_pop_head|tl_conn_flush|tl_hist_add|request_split' \
		>"$dir/functions" || true
	printf '  %-3s pair %d: %s instructions, %.1f G instructions per GB\n' "$side" "$pair" \
		"$(cat "$dir/ir")" "$(echo "$(cat "$dir/ir") / $bytes" | bc -l)"
}

echo "metrics-instr.sh: $pairs pairs, $records records of $size bytes; files in $out"
for ((i = 1; i <= pairs; i++)); do
	if ((i % 2)); then run off "$i"; run on "$i"; else run on "$i"; run off "$i"; fi
done
python3 - "$out" "$pairs" <<'PY'
import sys
out, pairs = sys.argv[1], int(sys.argv[2])
ir = lambda s, i: int(open(f"{out}/{s}-{i}/ir").read())
r = sorted(ir("on", i) / ir("off", i) for i in range(1, pairs + 1))
n = len(r)
med = r[n // 2] if n % 2 else (r[n // 2 - 1] + r[n // 2]) / 2
print(f"on/off instructions: median {med:.4f} [{r[0]:.4f}-{r[-1]:.4f}] over {n} pairs"
      f" ({(med - 1) * 100:+.2f} %)")
PY
