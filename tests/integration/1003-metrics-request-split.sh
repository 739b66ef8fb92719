#!/usr/bin/env bash
# Request time split as Kafka's RequestMetrics (issue #18). tests/progs/rawproto writes
# N Produce requests (acks=1) in one send, then N Fetch requests at the log end with
# max_wait 200 ms in one send. Then, for Produce and Fetch, every family of the split
# (total, queue, local, remote, throttle, response queue, response send) exists and
# counts exactly N; the parts add up to the total (to 10 us a request, the truncation of
# five parts to whole microseconds); pipelined Produce requests show queue time (most
# of them wait above 16 us behind the handlers ahead of them, counted from the read
# that brought them in); each Fetch waited its max_wait as remote time; a single
# node's produce has no remote time (its wait is its own fdatasync: local).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd curl python3
tl_require_prog rawproto
check=$TL_ROOT/tests/progs/prom_check.py
py_bin=python3
[ -x /usr/bin/python3 ] && py_bin=/usr/bin/python3
py() { "$py_bin" -I -S "$@"; }
n=20
wait_ms=200

tl_start_broker --override metrics.listener=http://127.0.0.1:0
tl_metrics_port

timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" pipeline split "$n" "$wait_ms" >&2 ||
	tl_fail "rawproto pipeline failed"
curl -sf --max-time 5 "http://127.0.0.1:$TL_MPORT/metrics" >"$TL_TMP/m.txt" ||
	tl_fail "GET /metrics failed"
py "$check" "$TL_TMP/m.txt" >/dev/null 2>"$TL_TMP/check.err" ||
	tl_fail "/metrics does not parse: $(cat "$TL_TMP/check.err")"

py - "$TL_TMP/m.txt" "$n" "$wait_ms" <<'PY' || tl_fail "request time split is wrong (above)"
import re, sys
text, n, wait_s = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3]) / 1000
parts = ["queue", "local", "remote", "response_queue", "response_send"]
fams = ["total", "throttle"] + parts
def get(fam, api, suffix, le=None):
    name = f"tally_request_{fam}_time_seconds_{suffix}"
    out = []
    for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("request") == api:
            out.append((labels.get("le"), float(m.group(2))))
    if suffix == "bucket":
        return out
    if len(out) != 1:
        sys.exit(f"{name}{{request={api}}}: {len(out)} samples, want 1")
    return out[0][1]
bad = []
for api in ("Produce", "Fetch"):
    for fam in fams:
        c = get(fam, api, "count")
        if c != n:
            bad.append(f"{api} {fam} count {c:g}, want {n}")
    total = get("total", api, "sum")
    split = sum(get(p, api, "sum") for p in parts)
    print(f"{api}: total {total * 1e3:.3f} ms, parts " +
          ", ".join(f"{p} {get(p, api, 'sum') * 1e3:.3f}" for p in parts) + " ms",
          file=sys.stderr)
    if not (total - n * 10e-6 <= split <= total + 1e-9):
        bad.append(f"{api}: parts sum to {split:.6f} s, total is {total:.6f} s")
# Pipelined produces wait behind the handlers ahead of them.
buckets = get("queue", "Produce", "bucket")
above = n - buckets[0][1]  # the first bucket is le = 16 us
if above < n // 2:
    bad.append(f"Produce queue time: {above:g} of {n} above 16 us, want >= {n // 2}")
fetch_remote = get("remote", "Fetch", "sum")
if fetch_remote < 0.8 * n * wait_s:
    bad.append(f"Fetch remote time {fetch_remote:.3f} s, want >= {0.8 * n * wait_s:.3f}")
if get("remote", "Produce", "sum") != 0:
    bad.append("Produce on one node has remote time")
# Zeros are rendered from the total's count (conn.c, split_add_ns): every bucket of a
# family whose values are all 0 holds all n, its first bucket included.
for api, fam in (("Produce", "remote"), ("Produce", "throttle"), ("Fetch", "throttle")):
    low = [c for le, c in get(fam, api, "bucket") if c != n]
    if low:
        bad.append(f"{api} {fam}: buckets {low}, want every bucket = {n} (all values 0)")
for b in bad:
    print("FAIL:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
tl_stop_broker
tl_log "ok"
