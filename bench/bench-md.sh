#!/usr/bin/env bash
# bench-md.sh - the runs behind the figures in docs/bench.md, one after the other with
# SETTLE_S (15) idle seconds before each (a VM hands fresh memory out slowly, see
# docs/bench.md). About 28 minutes; reports (JSON, HTML, table) go to OUT_DIR.
#
#   bench/bench-md.sh [OUT_DIR]
#
# Check each table's "other processes" line: runs on a machine that was not idle are not
# comparable. Manual, not part of make test.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d /var/tmp/tally-bench-md.XXXXXX)}
mkdir -p "$out"
bench=build/bin/tally-bench
[ -x "$bench" ] || make -s release >/dev/null
big=(-X batch.size=1048576)
settle=${SETTLE_S:-15}

run() { # NAME ARGS...
	local name=$1
	shift
	sleep "$settle"
	echo "== $name: $* (load $(cut -d' ' -f1-3 /proc/loadavg))"
	"$bench" "$@" -q -l "$name" --json "$out/$name.json" --html "$out/$name.html" \
		>"$out/$name.txt" 2>&1
	echo "   exit $?; $(grep -m1 'other processes' "$out/$name.txt")"
}

half_rate() { # JSON... -> half their mean produce records/s
	python3 -c 'import json, sys
v = [json.load(open(f))["produce"]["records_per_s"] for f in sys.argv[1:]]
print(int(sum(v) / len(v) / 2))' "$@"
}

for i in 1 2; do
	run "default-idem-$i" produce -d 20s -w 3s --idempotence on --baseline
	run "16k-idem-$i" produce -d 20s -w 3s --idempotence on -X batch.size=16384 --baseline
	run "default-noidem-$i" produce -d 20s -w 3s --idempotence off --baseline
	run "1m-idem-$i" produce -d 20s -w 3s --idempotence on "${big[@]}" --baseline
	run "1m-noidem-$i" produce -d 20s -w 3s --idempotence off "${big[@]}" --baseline
	run "1m-idem-sync-$i" produce -d 20s -w 3s --idempotence on "${big[@]}" \
		--broker-arg log.io.engine=sync --baseline
done
run consume consume --fill 4g "${big[@]}" --baseline
half=$(half_rate "$out"/1m-idem-[12].json)
half_default=$(half_rate "$out"/default-idem-[12].json)
run half-peak produce -d 20s -w 3s --idempotence on "${big[@]}" -r "$half" --baseline
run half-peak-linger1 produce -d 20s -w 3s --idempotence on "${big[@]}" -X linger.ms=1 \
	-r "$half" --baseline
run half-peak-e2e e2e -d 20s -w 3s --idempotence on "${big[@]}" -r "$half"
run half-peak-default produce -d 20s -w 3s --idempotence on -r "$half_default" --baseline
# linger.ms=0 at half of the defaults' peak, with the group commit floor after it; then the
# floor alone (a 1 s broker run gives it the rate) over zero-filled files, 1 and 2 syncs
run half-peak-linger0 produce -d 15s -w 3s --idempotence on -X linger.ms=0 \
	-r "$half_default" --baseline
for syncs in 1 2; do
	run "floor-overwrite-$syncs" produce -d 1s -w 0 -X linger.ms=0 -r "$half_default" \
		--baseline --baseline-time 15s --baseline-overwrite --baseline-syncs "$syncs"
done
run sweep sweep --steps 8 -d 8s -w 2s --idempotence on "${big[@]}" --baseline
run txn produce -d 20s -w 3s "${big[@]}" --transactions --txn-interval 100ms
run txn-e2e e2e -d 20s -w 3s "${big[@]}" --transactions --txn-interval 100ms \
	-r "$((half / 2))"
sleep "$settle"
bench/peers/compare.sh -d 20s "${big[@]}" -o "$out/peers" >"$out/peers.txt" 2>&1
echo "== peers: exit $? (table at the end of $out/peers.txt)"
"$bench" compare "$out"/1m-idem-1.json "$out"/1m-noidem-1.json "$out"/1m-idem-2.json \
	"$out"/1m-noidem-2.json
echo "reports in $out"
