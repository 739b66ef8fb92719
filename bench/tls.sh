#!/usr/bin/env bash
# tls.sh - consume and produce over TLS vs plaintext, in one run (issue #16):
#   bench/tls.sh [-n RUNS] [--fill SIZE] [--produce-time T] [--out DIR]
# Starts two tallyds on loopback with a CA and certificates made here:
#   A: PLAINTEXT and SSL listeners, ssl.ktls.enable=true (kernel TLS when the kernel has
#      the tls module: Fetch's file spans leave with SSL_sendfile);
#   B: an SSL listener with ssl.ktls.enable=false (user-space TLS: spans are read into
#      memory and encrypted by OpenSSL).
# Each run, in this order: tally-bench consume (--fill SIZE produced, then read from the
# page cache) over A's PLAINTEXT, A's SSL and B's SSL; tally-bench produce (acks=all,
# 1 KiB records, for --produce-time) over A's PLAINTEXT and A's SSL. Prints each figure
# as median [min-max] of the runs, the ratios to plaintext, and which send path each
# broker logged ("sendfile=kernel-tls" or "user-space-tls"). Markdown table on stdout's
# end; per-run JSON under --out (default a temp dir, removed).
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/certs.sh

runs=5 fill=256m produce_time=5s out=
while [ $# -gt 0 ]; do
	case $1 in
	-n) runs=$2; shift 2 ;;
	--fill) fill=$2; shift 2 ;;
	--produce-time) produce_time=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: bench/tls.sh [-n RUNS] [--fill SIZE] [--produce-time T] [--out DIR]" >&2; exit 2 ;;
	esac
done
bin=build/bin
[ -x $bin/tallyd ] && [ -x $bin/tally-bench ] || { echo "tls.sh: make release first" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/tally-tls-bench.XXXXXX")
keep_out=1
[ -n "$out" ] || { out=$dir/out; keep_out=0; }
mkdir -p "$out"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
tl_make_certs "$dir/certs"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # NAME LISTENERS KTLS
	mkdir -p "$dir/$1"
	$bin/tallyd --override "log.dirs=$dir/$1" --override "listeners=$2" \
		--override "ssl.keystore.location=$dir/certs/broker.pem" --override "ssl.ktls.enable=$3" \
		>"$dir/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do grep -q 'listening on' "$dir/$1.log" && return 0; sleep 0.1; done
	echo "tls.sh: tallyd $1 did not start" >&2
	cat "$dir/$1.log" >&2
	exit 1
}
pa=$(free_port) sa=$(free_port) sb=$(free_port)
start a "PLAINTEXT://127.0.0.1:$pa,SSL://127.0.0.1:$sa" true
start b "SSL://127.0.0.1:$sb" false
ssl=(security.protocol=ssl "ssl.ca.location=$dir/certs/ca.pem")
xs=() cs=()
for kv in "${ssl[@]}"; do xs+=(-X "$kv"); cs+=(-C "$kv"); done

bench() { # LABEL RUN MODE BROKER [args]
	local label=$1 run=$2 mode=$3 broker=$4
	shift 4
	local args=(-q --json "$out/$label-$run.json" -b "$broker")
	if [ "$mode" = consume ]; then args+=(--fill "$fill"); else args+=(-d "$produce_time" -w 1s); fi
	$bin/tally-bench "$mode" "${args[@]}" "$@" >"$out/$label-$run.txt" 2>&1 ||
		{ cat "$out/$label-$run.txt" >&2; echo "tls.sh: $label run $run failed" >&2; exit 1; }
}

for run in $(seq 1 "$runs"); do
	echo "run $run/$runs" >&2
	bench consume-plaintext "$run" consume "127.0.0.1:$pa"
	bench consume-tls-ktls-enabled "$run" consume "localhost:$sa" "${xs[@]}" "${cs[@]}"
	bench consume-tls-user-space "$run" consume "localhost:$sb" "${xs[@]}" "${cs[@]}"
	bench produce-plaintext "$run" produce "127.0.0.1:$pa"
	bench produce-tls "$run" produce "localhost:$sa" "${xs[@]}"
done

path_a=$(grep -o 'sendfile=[a-z-]*' "$dir/a.log" | head -n 1)
path_b=$(grep -o 'sendfile=[a-z-]*' "$dir/b.log" | head -n 1)
python3 - "$out" "$runs" "$path_a" "$path_b" "$fill" "$produce_time" <<'EOF'
import json, os, statistics, sys
out, runs, path_a, path_b, fill, ptime = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
def figures(label, mode):
    v = []
    for r in range(1, runs + 1):
        d = json.load(open(os.path.join(out, "%s-%d.json" % (label, r))))
        assert d["ok"], d.get("error")
        v.append(d[mode]["mb_per_s"])
    return v
def fmt(v):
    return "%.0f [%.0f-%.0f]" % (statistics.median(v), min(v), max(v))
rows = [
    ("consume, plaintext", "consume-plaintext", "consume", "sendfile"),
    ("consume, SSL, ssl.ktls.enable=true", "consume-tls-ktls-enabled", "consume", path_a),
    ("consume, SSL, ssl.ktls.enable=false", "consume-tls-user-space", "consume", path_b),
    ("produce, plaintext", "produce-plaintext", "produce", "-"),
    ("produce, SSL", "produce-tls", "produce", "-"),
]
base = {"consume": statistics.median(figures("consume-plaintext", "consume")),
        "produce": statistics.median(figures("produce-plaintext", "produce"))}
print("\n| workload | send path (tallyd's log) | MB/s, median [min-max] of %d | vs plaintext |" % runs)
print("| --- | --- | --- | --- |")
for name, label, mode, path in rows:
    v = figures(label, mode)
    print("| %s | %s | %s | %.2fx |" % (name, path, fmt(v), statistics.median(v) / base[mode]))
print("\nconsume: --fill %s of 1 KiB records read from the page cache; produce: acks=all, "
      "1 KiB records, %s after 1 s warm-up; one partition, one client." % (fill, ptime))
EOF
[ "$keep_out" = 1 ] && echo "per-run JSON in $out" >&2
exit 0
