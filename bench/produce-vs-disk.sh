#!/usr/bin/env bash
# produce-vs-disk.sh - produce throughput of tallyd (librdkafka client, acks=all) next to
# what the same disk does with fio at the broker's own fsync cadence, in one run.
#
#   bench/produce-vs-disk.sh [DIR] [COUNT] [SIZE] [extra rdkafka key=value ...]
#
# DIR (default: a temporary directory under /var/tmp) must be on the disk to measure.
# Steps: start tallyd with its data in DIR; produce COUNT records of SIZE bytes (default
# 300000 x 1024) with acks=all; stop it cleanly and read, from its log, how many bytes
# each fdatasync covered on average (group commit); then run fio writing the same
# number of bytes sequentially with one fdatasync per that many bytes. Prints both
# figures and their ratio. Also runs with enable.idempotence=true to show its cost.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-}
count=${2:-300000}
size=${3:-1024}
shift $(( $# > 3 ? 3 : $# )) || true
[ -n "$dir" ] || dir=$(mktemp -d /var/tmp/tally-bench-XXXXXX)
mkdir -p "$dir"
command -v fio >/dev/null || { echo "produce-vs-disk: fio is not installed (apt-get install fio)" >&2; exit 2; }
load=build/release/bench/rdkafka_load
[ -x "$load" ] && [ -x build/bin/tallyd ] || make -s release >/dev/null

port=$(( 20000 + RANDOM % 20000 ))
run_one() { # $1 = label, rest = rdkafka properties
  local label=$1; shift
  local data="$dir/data-$label"
  rm -rf "$data"; mkdir -p "$data"
  build/bin/tallyd --config config/server.properties \
    --override listeners=PLAINTEXT://127.0.0.1:$port --override "log.dirs=$data" \
    --override num.partitions=1 >"$dir/tallyd-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$dir/tallyd-$label.log" && break; sleep 0.1; done
  local result
  result=$("$load" "127.0.0.1:$port" bench "$count" "$size" "$@")
  kill -TERM $pid; wait $pid || true
  local per_flush
  per_flush=$(grep -o 'bytes_per_flush=[0-9]*' "$dir/tallyd-$label.log" | head -1 | cut -d= -f2)
  echo "$label $result per_flush=${per_flush:-0}"
}

tally=$(run_one plain "$@")
idem=$(run_one idempotent enable.idempotence=true "$@")
mbps() { sed -E 's/.*"mb_per_s": ([0-9.]+).*/\1/' <<<"$1"; }
cadence() { sed -E 's/.*per_flush=([0-9]+).*/\1/' <<<"$1"; }
total=$(( count * size ))
# fio writing the same bytes with one fdatasync per $1 bytes (rounded up to 4 KiB).
fio_at() {
  local per_flush=$1 bs out kib
  [ "$per_flush" -gt 4096 ] || per_flush=4096
  bs=$(( (per_flush + 4095) / 4096 * 4096 ))
  out=$(fio --name=seqwrite --directory="$dir" --rw=write --bs="$bs" --size="$total" \
    --fdatasync=1 --ioengine=psync --fallocate=none --end_fsync=1 --output-format=terse --terse-version=3 \
    --unlink=1 2>/dev/null)
  kib=$(cut -d';' -f48 <<<"$out") # terse v3: write bandwidth, KiB/s
  awk -v k="$kib" 'BEGIN { printf "%.2f", k * 1024 / 1e6 }'
}
t=$(mbps "$tally"); i=$(mbps "$idem")
tc=$(cadence "$tally"); ic=$(cadence "$idem")
ft=$(fio_at "$tc"); fi_=$(fio_at "$ic")
echo "records=$count size=$size dir=$dir"
echo "tallyd acks=all            : $t MB/s, $tc bytes per fdatasync; fio at that cadence: $ft MB/s"
echo "tallyd acks=all idempotent : $i MB/s, $ic bytes per fdatasync; fio at that cadence: $fi_ MB/s"
awk -v t="$t" -v i="$i" -v ft="$ft" -v fi="$fi_" 'BEGIN {
  printf "ratio to the disk at the same fsync cadence: plain %.2f, idempotent %.2f; idempotent/plain throughput %.2f\n",
    t / ft, i / fi, i / t }'
rm -rf "$dir"/data-*
