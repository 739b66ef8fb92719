#!/usr/bin/env bash
# validation-instr.sh - what Produce's record validation (issue #20) costs the broker
# in instructions, a figure the machine's load does not move: tallyd as built and
# built with -DTL_NO_RECORD_VALIDATION (build/noval, as validation-cost.sh), each under
# valgrind's callgrind (no hardware counters on this VM; user-space instructions only:
# the kernel's receive, write and fsync are not counted), the same fixed workload
# (tally-bench produce -n RECORDS of 1 KiB, zstd, PAYLOAD text or json;
# log.io.engine=sync: valgrind does not run io_uring). Prints each build's
# instructions per GB of records, the difference, and the part of it inside
# ZSTD_decompressDCtx (the decoder: the floor of any validation that decompresses).
#   bench/validation-instr.sh [RECORDS] [PAYLOAD]        default 20000 text
# Manual, not part of make test.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-20000}
payload=${2:-text}
command -v valgrind >/dev/null || { echo "validation-instr.sh: needs valgrind" >&2; exit 2; }
make -s -j2 B=build/noval CFLAGS=-DTL_NO_RECORD_VALIDATION build/noval/tallyd
out=$(mktemp -d /var/tmp/tally-valinstr.XXXXXX)
trap 'rm -rf "$out"' EXIT

run() { # NAME TALLYD
	local dir=$out/$1 pid port
	mkdir -p "$dir/data"
	valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$2" \
		--override listeners=PLAINTEXT://127.0.0.1:0 --override "log.dirs=$dir/data" \
		--override log.io.engine=sync >"$dir/tallyd.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 600); do
		port=$(grep -oE 'broker: listening on [0-9.]+:[0-9]+' "$dir/tallyd.log" 2>/dev/null |
			grep -oE '[0-9]+$' || true)
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { echo "tallyd did not start: $dir/tallyd.log" >&2; kill -9 "$pid"; exit 1; }
	build/bin/tally-bench produce -b "127.0.0.1:$port" --broker-pid "$pid" -z zstd \
		--payload "$payload" -s 1024 -n "$records" -w 0 -q -j "$dir/bench.json" >/dev/null
	kill -TERM "$pid"
	wait "$pid" || true
	local ir bytes zstd
	ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$dir/callgrind.out" | head -1)
	bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resources"]["bytes"])' "$dir/bench.json")
	callgrind_annotate --inclusive=yes --threshold=100 "$dir/callgrind.out" >"$dir/annotate" 2>/dev/null || true
	zstd=$(awk '/ZSTD_decompressDCtx/ { gsub(",", "", $1); print $1; exit }' "$dir/annotate")
	echo "$1 $ir $bytes ${zstd:-0}" >>"$out/results"
	python3 -c 'import sys; n, ir, b, z = sys.argv[1], *map(int, sys.argv[2:])
print(f"  {n:8} {ir} instructions for {b} bytes of records: {ir / b:.2f} G/GB; "
      f"inside ZSTD_decompressDCtx {z / b:.2f} G/GB")' "$1" "$ir" "$bytes" "${zstd:-0}"
}
run with build/release/tallyd
run without build/noval/tallyd
python3 - "$out/results" <<'PY'
import sys
r = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
w, n = r["with"], r["without"]
wg, ng = w[0] / w[1], n[0] / n[1]
print(f"with/without {wg / ng:.3f} (user-space instructions); added {wg - ng:.2f} G/GB, "
      f"of which ZSTD_decompressDCtx {w[2] / w[1]:.2f} G/GB ({100 * (w[2] / w[1]) / (wg - ng):.0f} %)")
PY
