#!/usr/bin/env bash
# /metrics counts what real clients did (issue #18). tallyd serves metrics.listener on a
# port of its choosing; while kcat produces 10,000 records, scrapes must parse under
# Prometheus' rules (tests/progs/prom_check.py: families, escaping, cumulative `le`
# buckets ending in +Inf) and records-in must never go backwards. Then, exactly:
#   records in = records produced, bytes in = the bytes the partition logs hold,
#   bytes out = bytes in and records out = records produced after one kcat read,
#   produce batch sizes sum to bytes in, one committed and one aborted transaction
#   (librdkafka), their 12 records in, one MESSAGE_TOO_LARGE: error counted by code,
#   failed produce and rejected bytes; one TOPIC_ALREADY_EXISTS (a CreateTopics error:
#   errors are counted in every response, not only Produce and Fetch).
# `tally top --once --format json` during the run reports records/s above 0 for it.
# The broker logs JSON (log.format=json) with log.slow.request.ms=1: every line parses,
# the slow fetches at the log end are there with their API, and SIGUSR1 turns
# request-level debug lines on, a second SIGUSR1 off.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat curl python3
tl_require_prog rdk_txn_once
check=$TL_ROOT/tests/progs/prom_check.py
# Python starts slowly on a loaded machine: the system one if there is one (not a
# version manager's shim), without site packages (only the standard library is used).
py_bin=python3
[ -x /usr/bin/python3 ] && py_bin=/usr/bin/python3
py() { "$py_bin" -I -S "$@"; }
count=10000

tl_start_broker --override num.partitions=3 --override metrics.listener=http://127.0.0.1:0 \
	--override log.format=json --override log.slow.request.ms=1
tl_metrics_port
url=http://127.0.0.1:$TL_MPORT

# scrape FILE [SERIES...]: fetch /metrics, check it parses (one python3 run: its start
# is slow on a loaded machine) and print each SERIES' value, one a line ("absent").
scrape()
{
	local file=$1
	shift
	curl -sf --max-time 5 "$url/metrics" >"$file" || tl_fail "GET /metrics failed"
	py "$check" "$file" "$@" 2>"$TL_TMP/check.err" ||
		tl_fail "/metrics does not parse: $(cat "$TL_TMP/check.err")"
}

[ "$(scrape "$TL_TMP/m0.txt" tally_up)" = 1 ] || tl_fail "tally_up is not 1"
# docs/metrics.md lists every metric a single broker exports from the start (its tables
# name them in backquotes); a metric added without a line there fails here.
undocumented=$(awk '$1 == "#" && $2 == "TYPE" { print $3 }' "$TL_TMP/m0.txt" | sort -u |
	while read -r name; do
		grep -qE "\`$name(\`|\{)" docs/metrics.md ||
			echo "$name"
	done)
[ -z "$undocumented" ] || tl_fail "metrics missing from docs/metrics.md: $(echo $undocumented)"

tl_log "producing $count records while scraping"
# Ten bursts 0.1 s apart, so the scrapes land in the middle of the run.
for ((b = 0; b < 10; b++)); do
	seq -f 'record-%06g' $((b * count / 10 + 1)) $(((b + 1) * count / 10))
	sleep 0.1
done |
	kcat -P -q -b "$TL_BROKER" -t m1 -X acks=all -X linger.ms=5 -X batch.size=16384 &
producer=$!
# tally top, as a script would run it, sees the records flow (in the background: the
# scrapes below go on meanwhile).
"$TL_BIN/tally" top -m "127.0.0.1:$TL_MPORT" --once -i 500ms --format json >"$TL_TMP/top.json" &
top=$!
prev=0
scrapes=0
while tl_pid_alive "$producer"; do
	now=$(scrape "$TL_TMP/mid.txt" 'tally_broker_topic_messages_in_total{topic="m1"}')
	[ "$now" = absent ] && now=0
	[ "$now" -ge "$prev" ] || tl_fail "records in went back from $prev to $now"
	prev=$now
	scrapes=$((scrapes + 1))
	sleep 0.05
done
wait "$producer" || tl_fail "kcat could not produce"
wait "$top" || tl_fail "tally top --once failed"
top_rate=$(py -c 'import json,sys; d=json.load(open(sys.argv[1])); t=[t for t in d["topics"] if t["topic"]=="m1"][0]; assert t["records_out_per_s"] >= 0; print(t["records_in_per_s"])' "$TL_TMP/top.json") ||
	tl_fail "tally top's JSON has no m1: $(cat "$TL_TMP/top.json")"
[ "$top_rate" -gt 0 ] || tl_fail "tally top reports $top_rate records/s for m1 during the run"
tl_log "$scrapes scrapes during the run parsed; records in rose to $prev; tally top saw $top_rate records/s"

tl_log "consuming, with request-level debug logging on (SIGUSR1) meanwhile"
kill -USR1 "$TL_PID"
# Its last fetches, at the log end, wait fetch.wait.max.ms: slow requests, surely.
got=$(kcat -C -q -b "$TL_BROKER" -t m1 -e -f '%s\n' -X fetch.wait.max.ms=100 | wc -l)
kill -USR1 "$TL_PID"
[ "$got" = "$count" ] || tl_fail "consumed $got records, want $count"

tl_log "transactions"
"$TL_PROGS/rdk_txn_once" "$TL_BROKER" tx metrics-txn 7 5 2>"$TL_TMP/txn.log" ||
	tl_fail "transactions failed: $(cat "$TL_TMP/txn.log")"

tl_log "too large"
# A batch larger than the topic's max.message.bytes: refused, and counted as such.
"$TL_BIN/tally" topic create big -p 1 -c max.message.bytes=1000 -b "$TL_BROKER" >/dev/null ||
	tl_fail "cannot create topic big"
"$TL_BIN/tally" topic create big -p 1 -b "$TL_BROKER" >/dev/null 2>&1 &&
	tl_fail "topic big was created twice"
head -c 3000 /dev/zero | tr '\0' x | kcat -P -b "$TL_BROKER" -t big -X linger.ms=0 \
	2>"$TL_TMP/big.log" || true

tl_log "final scrape"
# The batches' bytes, not the files' (log.preallocate grows them ahead with zeros).
log_bytes=$("$TL_BIN/tally" log dump --json "$TL_DATA"/m1-*/*.log |
	python3 -c 'import json,sys; print(sum(b["size"] for f in json.load(sys.stdin)["files"] for b in f.get("batches", [])))')
mapfile -t v < <(scrape "$TL_TMP/m1.txt" \
	'tally_broker_topic_messages_in_total{topic="m1"}' \
	'tally_broker_topic_bytes_in_total{topic="m1"}' \
	'tally_broker_topic_bytes_out_total{topic="m1"}' \
	'tally_broker_topic_messages_in_total{topic="tx"}' \
	'tally_broker_topic_bytes_in_total{topic="tx"}' \
	tally_produce_batch_size_bytes_sum \
	'tally_txn_completed_total{outcome="commit"}' \
	'tally_txn_completed_total{outcome="abort"}' \
	'tally_errors_total{error="MESSAGE_TOO_LARGE",code="10"}' \
	'tally_broker_topic_failed_produce_requests_total{topic="big"}' \
	'tally_broker_topic_bytes_rejected_total{topic="big"}' \
	'tally_request_total_time_seconds_count{request="Produce"}' \
	'tally_broker_topic_messages_out_total{topic="m1"}' \
	'tally_errors_total{error="TOPIC_ALREADY_EXISTS",code="36"}')
[ "${#v[@]}" = 14 ] || tl_fail "the final scrape did not parse"
m=$TL_TMP/m1.txt
in_m1=${v[0]} bytes_m1=${v[1]} out_m1=${v[2]} in_tx=${v[3]} bytes_tx=${v[4]}
batch_sum=${v[5]} commits=${v[6]} aborts=${v[7]} too_large=${v[8]}
failed_big=${v[9]} rejected_big=${v[10]} produce_count=${v[11]}
records_out_m1=${v[12]} exists=${v[13]}
tl_log "m1: in=$in_m1 bytes_in=$bytes_m1 log_bytes=$log_bytes bytes_out=$out_m1 records_out=$records_out_m1; tx: in=$in_tx; txns: $commits committed, $aborts aborted; big: errors=$too_large failed=$failed_big rejected=$rejected_big"

[ "$in_m1" = "$count" ] || tl_fail "records in for m1 = $in_m1, want $count"
[ "$bytes_m1" = "$log_bytes" ] || tl_fail "bytes in for m1 = $bytes_m1, the logs hold $log_bytes"
[ "$out_m1" = "$bytes_m1" ] || tl_fail "bytes out for m1 = $out_m1 after one read of $bytes_m1"
[ "$records_out_m1" = "$count" ] ||
	tl_fail "records out for m1 = $records_out_m1 after one read of $count records"
[ "$exists" = 1 ] || tl_fail "TOPIC_ALREADY_EXISTS counted $exists times, want 1"
[ "$in_tx" = 12 ] || tl_fail "records in for tx = $in_tx, want 7 committed + 5 aborted"
[ "$batch_sum" = $((bytes_m1 + bytes_tx)) ] ||
	tl_fail "produce batch sizes sum to $batch_sum, bytes in are $((bytes_m1 + bytes_tx))"
[ "$commits" = 1 ] || tl_fail "committed transactions = $commits, want 1"
[ "$aborts" = 1 ] || tl_fail "aborted transactions = $aborts, want 1"
[ "$too_large" = 1 ] || tl_fail "MESSAGE_TOO_LARGE counted $too_large times, want 1"
[ "$failed_big" = 1 ] || tl_fail "failed produce for big = $failed_big, want 1"
[ "$rejected_big" -gt 3000 ] || tl_fail "rejected bytes for big = $rejected_big, want the batch (> 3000)"
[ "$produce_count" -gt 0 ] || tl_fail "no Produce request time recorded"
for h in tally_log_flush_time_seconds tally_request_local_time_seconds; do
	grep -q "^${h}_bucket{.*le=\"+Inf\"}" "$m" || tl_fail "$h has no +Inf bucket"
done
tl_stop_broker

# The log: JSON lines (log.format=json), slow requests (log.slow.request.ms=1) and the
# request-level debug lines between the two SIGUSR1s.
py - "$TL_TMP/tallyd.log" <<'EOF' || tl_fail "log.format=json: $(tail -3 "$TL_TMP/tallyd.log")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and not l.startswith("===")]
msgs = [l["msg"] for l in lines]
assert all({"ts", "level", "msg"} <= set(l) for l in lines), "a line lacks ts, level or msg"
slow = [l for l in lines if l["msg"] == "broker: slow request"]
assert any(l.get("api") == "Fetch" and float(l["total_ms"]) >= 1 for l in slow), "no slow Fetch"
on = msgs.index("broker: debug logging on (SIGUSR1 again turns it off)")
off = msgs.index("broker: debug logging off")
done = [i for i, l in enumerate(lines) if l["msg"] == "broker: request done" and l.get("api") == "Fetch"]
assert any(on < i < off for i in done), "no request-level debug line between the SIGUSR1s"
assert not any(l["level"] == "debug" for l in lines[off + 1:]), "debug lines after SIGUSR1 off"
print(f"{len(lines)} JSON log lines, {len(slow)} slow requests, {len(done)} Fetch debug lines", file=sys.stderr)
EOF
