#!/usr/bin/env bash
# compare.sh - the same produce workload against tallyd, Redis 7 Streams and NATS JetStream,
# plus tallyd driven by librdkafka (bench/rdkafka_load.c) to show the libtally client is
# not the limit; prints one comparison table (tally-bench compare). Manual, not in make test.
#
#   bench/peers/compare.sh [-d DURATION] [-s RECORD_SIZE] [-P PRODUCERS] [-p PARTITIONS]
#                          [-r RATE] [-o OUT_DIR] [-X libtally.key=value ...]
#
# Defaults: 10s (2s warm-up), 1024-byte records, 1 producer, 1 partition, max rate, reports
# in a fresh directory under /var/tmp. Every system gets the same tally-bench workload
# (threads, sizes, pacing, histograms); only the wire client differs:
#   tally          tallyd started by tally-bench, libtally, acks=all, idempotent (its
#                  defaults), with -X for producer properties (e.g. -X batch.size=1048576);
#                  also runs the disk and loopback baselines
#   rdkafka        tallyd again, librdkafka producer (acks=all, idempotent, linger 5 ms,
#                  batch.size 1000000): as many records as tally delivered in its window,
#                  and at least 1 GiB
#   redis-always   redis-server, AOF appendfsync always (fsync before each reply batch)
#   redis-everysec redis-server, AOF appendfsync everysec (acks before fsync)
#   nats           nats-server -js, file storage, Nats-Msg-Id dedupe. Debian 12's 2.9.10
#                  has no sync_interval: JetStream acks before any fsync (it syncs on a
#                  timer), so its figures are not at the same durability.
# Servers come from Debian packages: apt-get install redis-server nats-server. A missing
# one is skipped, and the table says so. SETTLE_S (default 15) seconds pass before each
# run: on a VM, memory freed by the previous run is faster to write into for a few
# seconds (docs/bench.md), which would favour whoever runs next.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=10s
size=1024
producers=1
partitions=1
rate=max
out=
props=()
while getopts "d:s:P:p:r:o:X:h" opt; do
	case $opt in
	d) duration=$OPTARG ;;
	s) size=$OPTARG ;;
	P) producers=$OPTARG ;;
	p) partitions=$OPTARG ;;
	r) rate=$OPTARG ;;
	o) out=$OPTARG ;;
	X) props+=(-X "$OPTARG") ;;
	*) sed -n '2,25p' "$0"; exit 2 ;;
	esac
done
[ -n "$out" ] || out=$(mktemp -d /var/tmp/tally-peers.XXXXXX)
mkdir -p "$out"
work=$(mktemp -d /var/tmp/tally-peers-data.XXXXXX)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

bench=build/bin/tally-bench
[ -x "$bench" ] || bench=build/release/tally-bench
load=build/release/bench/rdkafka_load
[ -x "$bench" ] && [ -x "$load" ] && [ -x build/bin/tallyd ] || {
	echo "compare.sh: build first (make release)" >&2
	exit 2
}
settle=${SETTLE_S:-15}
common=(produce -d "$duration" -s "$size" -P "$producers" -p "$partitions" -r "$rate" -q)
skipped=()

free_port() {
	local port
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 12000))
		ss -Htan "sport = :$port" | grep -q . || { echo "$port"; return; }
	done
	return 1
}

wait_port() { # PORT: until something listens on it (10 s)
	for _ in $(seq 200); do
		ss -Htln "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

cpu_of() { # PID -> utime + stime in clock ticks
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

echo "reports in $out"

# ---- tally (libtally) ----
sleep "$settle"
echo "== tally: tallyd + libtally"
"$bench" "${common[@]}" "${props[@]}" --baseline --data-dir "$work" -l tally \
	--json "$out/tally.json" --html "$out/tally.html"
tally_rps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["produce"]["records_per_s"]))' "$out/tally.json")

# ---- tally (librdkafka) ----
sleep "$settle"
echo "== rdkafka: tallyd + librdkafka"
secs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["produce"]["window_s"])' "$out/tally.json")
count=$(python3 -c "print(max(int($tally_rps * $secs), (1 << 30) // max(1, int('$size'))))")
port=$(free_port)
mkdir -p "$work/rdk"
build/bin/tallyd --override "listeners=PLAINTEXT://127.0.0.1:$port" \
	--override "log.dirs=$work/rdk" --override "num.partitions=$partitions" \
	>"$work/rdk.log" 2>&1 &
tpid=$!
pids+=("$tpid")
wait_port "$port"
cpu0=$(cpu_of "$tpid")
line=$("$load" "127.0.0.1:$port" rdk-bench "$count" "$size" enable.idempotence=true)
cpu1=$(cpu_of "$tpid")
kill -TERM "$tpid"
wait "$tpid" || true
python3 - "$line" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" >"$out/rdkafka.json" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); ticks = float(sys.argv[4])
gb = r["bytes"] / 1e9
broker = (float(sys.argv[3]) - float(sys.argv[2])) / ticks
json.dump({"tool": "rdkafka_load", "label": "rdkafka", "mode": "produce", "ok": r["failed"] == 0,
           "config": {"system": "tally"},
           "produce": {"records_per_s": r["records_per_s"], "mb_per_s": r["mb_per_s"],
                       "records": r["records"], "window_s": r["seconds"]},
           "resources": {"broker_cpu_s_per_gb": broker / gb if gb else None,
                         "client_cpu_s_per_gb": r["cpu_s"] / gb if gb else None}},
          sys.stdout, indent=2)
EOF

# ---- redis ----
reports=("$out/tally.json" "$out/rdkafka.json")
if command -v redis-server >/dev/null; then
	for mode in always everysec; do
		sleep "$settle"
		echo "== redis-$mode: Redis Streams XADD, appendfsync $mode"
		port=$(free_port)
		mkdir -p "$work/redis-$mode"
		redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis-$mode" --save '' \
			--appendonly yes --appendfsync "$mode" --auto-aof-rewrite-percentage 0 \
			--daemonize no --logfile "$work/redis-$mode.log" &
		pids+=("$!")
		wait_port "$port"
		"$bench" "${common[@]}" --system redis -b "127.0.0.1:$port" -l "redis-$mode" \
			--json "$out/redis-$mode.json" --html "$out/redis-$mode.html"
		kill -TERM "${pids[-1]}"
		wait "${pids[-1]}" || true
		reports+=("$out/redis-$mode.json")
	done
else
	skipped+=("redis (apt-get install redis-server)")
fi

# ---- nats ----
if command -v nats-server >/dev/null; then
	sleep "$settle"
	echo "== nats: JetStream, file storage, Nats-Msg-Id (acks before fsync on 2.9)"
	port=$(free_port)
	nats-server -js -sd "$work/nats" -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
	pids+=("$!")
	wait_port "$port"
	"$bench" "${common[@]}" --system nats -b "127.0.0.1:$port" -l nats \
		--json "$out/nats.json" --html "$out/nats.html"
	kill -TERM "${pids[-1]}"
	wait "${pids[-1]}" || true
	reports+=("$out/nats.json")
else
	skipped+=("nats (apt-get install nats-server; absent from some mirrors)")
fi

echo
echo "== comparison (A = tally; durability: tally and redis-always fsync before the ack;"
echo "   redis-everysec and nats acknowledge before fsync)"
"$bench" compare "${reports[@]}"
for s in "${skipped[@]}"; do echo "skipped: $s"; done
echo "reports in $out"
