#!/usr/bin/env bash
# metrics-ab.sh - what metrics cost (issue #18): produce throughput and the broker's
# CPU-seconds per GB with metrics off (A: metrics.listener unset, so the hot-path
# counting is off too: broker->metrics_on) and on (B: metrics.listener set, scraped
# every second, 15 times as often as Prometheus' default), in paired alternating runs
# (bench/ab.sh). The scraper runs through both sides; against A it finds no listener.
#
#   bench/metrics-ab.sh [PAIRS] [tally-bench produce options...]
#   bench/metrics-ab.sh 9 -d 5s -w 1s
#
# OTHER_CPU_MAX (default: keep every run) is passed to ab.sh. Manual, not in make test.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
pairs=${1:-9}
shift || true
[ $# -gt 0 ] || set -- -d 5s -w 1s
port=${METRICS_PORT:-$((20000 + RANDOM % 20000))}
(while :; do
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/metrics"
	sleep 1
done) &
scraper=$!
trap 'kill "$scraper" 2>/dev/null' EXIT
OTHER_CPU_MAX=${OTHER_CPU_MAX:-1000} bench/ab.sh -n "$pairs" -A "" \
	-B "--broker-arg metrics.listener=http://127.0.0.1:$port" -- produce "$@"
