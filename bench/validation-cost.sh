#!/usr/bin/env bash
# The broker CPU that Produce's record validation (issue #20: decompress and walk every
# record, as Kafka's LogValidator) costs: tally-bench produce with zstd batches against
# tallyd as built and against a tallyd built with -DTL_NO_RECORD_VALIDATION, in
# alternating pairs (the order flips each pair), the same workload each time. Prints
# each pair's broker CPU-s per GB and the ratio with/without, then the median ratio
# with its min-max over the pairs. Needs `make` done; builds build/noval/tallyd.
#   bench/validation-cost.sh [PAIRS] [DURATION]        defaults 5 pairs, 8s each
#   PAYLOAD=json bench/validation-cost.sh ...   tally-bench's payload (default text:
#       random letters, ~1.8x in zstd; json: event-like JSON lines, ~5x)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-5}
duration=${2:-8s}
payload=${PAYLOAD:-text}
make -s -j2 B=build/noval CFLAGS=-DTL_NO_RECORD_VALIDATION build/noval/tallyd
out=$(mktemp -d "${TMPDIR:-/tmp}/tally-valcost.XXXXXX")
trap 'rm -rf "$out"' EXIT
run()
{
	build/bin/tally-bench produce -z zstd --payload "$payload" -s 1024 -d "$duration" -w 2s -q \
		--tallyd "$1" -j "$2" >/dev/null
}
cpu_per_gb()
{
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resources"]["broker_cpu_s_per_gb"])' "$1"
}
ratios=()
for i in $(seq 1 "$pairs"); do
	if [ $((i % 2)) = 1 ]; then
		run build/release/tallyd "$out/with-$i.json"
		run build/noval/tallyd "$out/without-$i.json"
	else
		run build/noval/tallyd "$out/without-$i.json"
		run build/release/tallyd "$out/with-$i.json"
	fi
	w=$(cpu_per_gb "$out/with-$i.json")
	n=$(cpu_per_gb "$out/without-$i.json")
	r=$(python3 -c "print(f'{$w / $n:.3f}')")
	ratios+=("$r")
	printf '%s pair %d: broker CPU-s/GB with validation %s, without %s, ratio %s (load %s)\n' \
		"$payload" "$i" "$w" "$n" "$r" "$(cut -d' ' -f1 /proc/loadavg)"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END {
	m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
	printf "validation cost ('"$payload"'), broker CPU with/without: median %.3f [%.3f-%.3f] over %d pairs\n", m, a[1], a[NR], NR }'
