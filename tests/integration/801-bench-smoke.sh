#!/usr/bin/env bash
# tally-bench runs short workloads and writes valid reports (no timing is checked):
# (1) e2e against the test's tallyd (-b), open loop, keys, 2 partitions, with the disk,
#     group commit and loopback baselines: JSON parses and has its figures, the group
#     commit acknowledged records with fdatasyncs, the HTML has inline SVG charts and
#     loads nothing from the network;
# (2) produce with two producer processes (--processes): every record acked and seen by
#     the parent; (3) consume with a tallyd that tally-bench starts itself (fill, then
#     read back); (4) compare of the two reports; (5) bad options are refused with
#     status 2.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd python3
bench=$TL_BIN/tally-bench
[ -x "$bench" ] || tl_fail "$bench is missing (make release)"

json_ok() { # FILE: parses, and every dotted path given after it holds a number
	python3 - "$@" <<'EOF' || tl_fail "$1: not the JSON expected"
import json, sys
doc = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    v = doc
    for k in path.split('.'):
        v = v[int(k)] if isinstance(v, list) else v[k]
    assert isinstance(v, (int, float)), path
assert doc["ok"] is True, doc.get("error")
EOF
}

html_ok() {
	grep -q '<svg' "$1" || tl_fail "$1 has no <svg> chart"
	grep -q '</html>' "$1" || tl_fail "$1 is cut short"
	! grep -Eq '<(script|link|img)[ >]|src="http' "$1" || tl_fail "$1 loads something"
}

tl_start_broker --override num.partitions=2
tl_log "e2e against $TL_BROKER with baselines"
timeout 120 "$bench" e2e -b "$TL_BROKER" -t bench-smoke -p 2 -c 2 -k 100 -r 2000 -d 3s -w 1s \
	-s uniform:64-512 --baseline --baseline-time 500ms --fsync-bytes 64k \
	--data-dir "$TL_TMP" -l smoke-e2e --json "$TL_TMP/e2e.json" --html "$TL_TMP/e2e.html" \
	>"$TL_TMP/e2e.out" 2>&1 || { cat "$TL_TMP/e2e.out" >&2; tl_fail "tally-bench e2e failed"; }
json_ok "$TL_TMP/e2e.json" produce.records_per_s produce.latency_ms.p99 e2e.latency_ms.p99 \
	consume.mb_per_s resources.broker_cpu_s_per_gb resources.write_amplification \
	baseline.disk.mb_per_s baseline.loopback.mb_per_s series.0.produce_mb_per_s \
	baseline.group_commit.latency_ms.p99 ratios.produce_p99_vs_group_commit_p99
python3 - "$TL_TMP/e2e.json" <<'EOF' || tl_fail "the group commit baseline is not what ran"
import json, sys
g = json.load(open(sys.argv[1]))["baseline"]["group_commit"]
assert g["ok"] and g["records_per_s"] == 2000 and g["jobs"] == 2, g
assert g["fdatasyncs_in_flight"] == 1, g
assert g["records"] > 0 and g["fdatasyncs"] > 0, g
assert g["bytes"] >= g["records"] * g["record_bytes"], g
assert g["latency_ms"]["min"] >= g["fdatasync_ms"]["min"], g  # a record waits for its sync
EOF
html_ok "$TL_TMP/e2e.html"
grep -q 'group commit floor' "$TL_TMP/e2e.html" || tl_fail "the HTML has no group commit curve"
grep -q 'end-to-end' "$TL_TMP/e2e.out" || tl_fail "no end-to-end row in the table"
tl_log "produce with each producer in its own process"
timeout 120 "$bench" produce -b "$TL_BROKER" -t bench-processes -p 2 -P 2 --processes -n 4000 \
	-w 0 -q --json "$TL_TMP/processes.json" >"$TL_TMP/processes.out" 2>&1 ||
	{ cat "$TL_TMP/processes.out" >&2; tl_fail "tally-bench produce --processes failed"; }
json_ok "$TL_TMP/processes.json" produce.records_per_s resources.client_cpu_s_per_gb
python3 - "$TL_TMP/processes.json" <<'EOF' || tl_fail "--processes: not every record acked"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["config"]["processes"] is True
assert doc["produce"]["total_records"] == 4000, doc["produce"]
EOF
tl_stop_broker

tl_log "consume with a tallyd started by tally-bench"
timeout 120 "$bench" consume --tallyd "$TL_BIN/tallyd" --data-dir "$TL_TMP" --fill 8m \
	-s 1k -l smoke-consume --baseline --baseline-time 500ms --json "$TL_TMP/consume.json" \
	--html "$TL_TMP/consume.html" >"$TL_TMP/consume.out" 2>&1 ||
	{ cat "$TL_TMP/consume.out" >&2; tl_fail "tally-bench consume failed"; }
json_ok "$TL_TMP/consume.json" fill.produce.mb_per_s consume.records_per_s fill.broker.fdatasyncs \
	fill.broker.fdatasync_ms.p99 fill.broker.write_ms.max fill.broker.produce_request_ms.p99 \
	baseline.loopback.mb_per_s baseline.disk_read.mb_per_s ratios.consume_vs_loopback \
	ratios.consume_vs_disk_read ratios.consume_vs_limit
html_ok "$TL_TMP/consume.html"
if ls -d "$TL_TMP"/tally-bench.* >/dev/null 2>&1; then
	tl_fail "tally-bench left its broker's data behind"
fi

"$bench" compare "$TL_TMP/e2e.json" "$TL_TMP/consume.json" >"$TL_TMP/compare.out" ||
	tl_fail "tally-bench compare failed"
grep -q 'smoke-e2e' "$TL_TMP/compare.out" || tl_fail "compare shows no labels"
grep -q 'B/A' "$TL_TMP/compare.out" || tl_fail "compare shows no ratio column"

rc=0
"$bench" produce --acks 2 >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || tl_fail "a bad --acks exited $rc, want 2"
rc=0
"$bench" produce --baseline-syncs 9 >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || tl_fail "a bad --baseline-syncs exited $rc, want 2"
tl_log "ok"
