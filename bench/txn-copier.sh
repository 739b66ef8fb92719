#!/usr/bin/env bash
# txn-copier.sh - exactly-once copy throughput: the librdkafka transactional copier
# (read_committed consumer, transactional producer, send_offsets_to_transaction, one
# commit every 100 ms) next to a plain idempotent copy that commits offsets every 100 ms
# (at-least-once), against the same tallyd, in one run.
#
#   bench/txn-copier.sh [COUNT] [SIZE]      (default 200000 records of 100 bytes)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
size=${2:-100}
copier=build/release/tests/progs/rdk_txn_copier
load=build/release/bench/rdkafka_load
[ -x "$copier" ] && [ -x "$load" ] && [ -x build/bin/tallyd ] || make -s release >/dev/null
dir=$(mktemp -d /var/tmp/tally-txn-bench-XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
port=$(( 20000 + RANDOM % 20000 ))
build/bin/tallyd --config config/server.properties --override listeners=PLAINTEXT://127.0.0.1:$port \
  --override "log.dirs=$dir" --override num.partitions=3 >"$dir/tallyd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$dir/tallyd.log" && break; sleep 0.1; done
b=127.0.0.1:$port
"$load" "$b" input "$count" "$size" >/dev/null
now() { date +%s.%N; }
t0=$(now)
COPIER_WINDOW_MS=100 "$copier" plain "$b" input out-plain g-plain 600 2>"$dir/plain.log"
t1=$(now)
COPIER_WINDOW_MS=100 COPIER_TXN_MAX=1000000 "$copier" copy "$b" input out-txn g-txn txn-bench 0 600 2>"$dir/txn.log"
t2=$(now)
awk -v n="$count" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  p = n / (b - a); t = n / (c - b);
  printf "records=%d: idempotent copy %.0f rec/s, transactional copy (commit every 100 ms) %.0f rec/s, ratio %.2f\n", n, p, t, t / p }'
