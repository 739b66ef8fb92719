#!/usr/bin/env bash
# /metrics of a 3-broker cluster (issue #18). Topic m: 6 partitions, replication factor
# 3. After a produce (acks=all), scraped on every broker: the leader counts sum to 6
# (tally_replica_leader_count), nothing is under-replicated or offline, and the
# replication byte counters moved: the followers appended (replication bytes in) twice
# the bytes the leaders took in, and the leaders sent at least that (replication bytes
# out). Then one broker is SIGSTOPped while records keep coming: on the two others,
# under-replicated partitions go above 0 once the ISR shrinks and the ISR shrink
# counter moves (committed shrinks, not requests); after SIGCONT it catches up, the
# expand counter moves and under-replicated partitions are 0 again. Offline partitions
# stay 0 throughout.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat curl python3
check=$TL_ROOT/tests/progs/prom_check.py
py_bin=python3
[ -x /usr/bin/python3 ] && py_bin=/usr/bin/python3
topic=m
parts=6

# A stopped broker must not lose its session (the controller would then take over its
# partitions): sessions outlive the pause; the ISR lag limit is short to keep the test so.
tl_cluster_start 3 --override metrics.listener=http://127.0.0.1:0 \
	--override broker.session.timeout.ms=20000 --override replica.lag.time.max.ms=1000
declare -a mport
for b in 1 2 3; do
	tl_metrics_port "$TL_TMP/tallyd-$b.log"
	mport[b]=$TL_MPORT
done
"$TL_TALLY" topic create "$topic" --partitions "$parts" --replication-factor 3 \
	-b "$TL_BOOTSTRAP" || tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" "$parts" 3

# sums B... SERIES...: scrapes brokers B (one word, e.g. "123"), checks each parses and
# prints each SERIES summed over them, one a line.
sums()
{
	local brokers=$1 b files=()
	shift
	for b in $(echo "$brokers" | grep -o .); do
		curl -sf --max-time 5 "http://127.0.0.1:${mport[$b]}/metrics" >"$TL_TMP/s$b.txt" ||
			tl_fail "GET /metrics of broker $b failed"
		files+=("$TL_TMP/s$b.txt")
	done
	"$py_bin" -I -S -B - "$check" "$@" -- "${files[@]}" <<'PY' || tl_fail "a scrape does not parse"
import importlib.util, sys
args = sys.argv[1:]
cut = args.index("--")
series, files = args[1:cut], args[cut + 1:]
# prom_check's parser in this process: one python start per scrape round, not per file.
spec = importlib.util.spec_from_file_location("prom_check", args[0])
pc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pc)
total = [0.0] * len(series)
for f in files:
    try:
        samples = pc.parse(open(f, encoding="utf-8").read())
    except pc.Bad as e:
        sys.exit(f"{f}: {e}")
    for i, q in enumerate(series):
        v = pc.query(samples, q)
        total[i] += 0 if v == "absent" else float(v)
for t in total:
    print(int(t))
PY
}

seq 1 3000 | sed 's/^/r-/' | timeout 60 kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -X acks=all \
	-X linger.ms=5 || tl_fail "produce failed"
mapfile -t v < <(sums 123 tally_replica_leader_count tally_replica_under_replicated_partitions \
	tally_replica_offline_partitions "tally_broker_topic_bytes_in_total{topic=\"$topic\"}" \
	"tally_broker_topic_replication_bytes_in_total{topic=\"$topic\"}" \
	"tally_broker_topic_replication_bytes_out_total{topic=\"$topic\"}" \
	"tally_broker_topic_messages_in_total{topic=\"$topic\"}")
tl_log "leaders=${v[0]} under_replicated=${v[1]} offline=${v[2]} bytes_in=${v[3]} repl_in=${v[4]} repl_out=${v[5]} records_in=${v[6]}"
[ "${v[0]}" = "$parts" ] || tl_fail "leader counts sum to ${v[0]}, want $parts"
[ "${v[2]}" = 0 ] || tl_fail "offline partitions ${v[2]}, want 0"
[ "${v[6]}" = 3000 ] || tl_fail "records in ${v[6]}, want 3000"
[ "${v[3]}" -gt 0 ] || tl_fail "no bytes in"
# acks=all answered: every follower in the ISR holds the batches (the wait above saw 3).
deadline=$(($(date +%s) + 15))
until [ "${v[4]}" = $((2 * v[3])) ] && [ "${v[1]}" = 0 ]; do
	[ "$(date +%s)" -lt "$deadline" ] ||
		tl_fail "replication bytes in ${v[4]}, want 2 x bytes in = $((2 * v[3])); under-replicated ${v[1]}"
	sleep 0.2
	mapfile -t v < <(sums 123 tally_replica_leader_count \
		tally_replica_under_replicated_partitions tally_replica_offline_partitions \
		"tally_broker_topic_bytes_in_total{topic=\"$topic\"}" \
		"tally_broker_topic_replication_bytes_in_total{topic=\"$topic\"}" \
		"tally_broker_topic_replication_bytes_out_total{topic=\"$topic\"}")
done
[ "${v[5]}" -ge "${v[4]}" ] || tl_fail "replication bytes out ${v[5]} < replication bytes in ${v[4]}"

# Stop a broker that follows at least one partition (with 6 partitions over 3 brokers,
# any does): broker 3.
stopped=3
others=12
# Counters of the running brokers: shrinks as broker 3 will not see them, expands of
# all three (broker 3 may, once resumed, find its own followers lagging).
mapfile -t before < <(sums $others tally_replica_isr_shrinks_total)
mapfile -t v < <(sums 123 tally_replica_isr_expands_total)
before[1]=${v[0]}
tl_cbroker_sigstop $stopped
tl_log "broker $stopped stopped; shrinks=${before[0]} expands=${before[1]} before"
# Records keep coming to the partitions the others lead (acks=1 waits for the ISR, so
# it is answered once the stopped broker left it).
(for i in $(seq 1 30); do echo "during-$i"; sleep 0.1; done |
	timeout 30 kcat -P -b "127.0.0.1:${TL_CPORT[1]},127.0.0.1:${TL_CPORT[2]}" -t "$topic" \
		-X acks=1 -X topic.metadata.refresh.interval.ms=100000 2>/dev/null || true) &
writer=$!
deadline=$(($(date +%s) + 15))
while :; do
	mapfile -t v < <(sums $others tally_replica_under_replicated_partitions \
		tally_replica_isr_shrinks_total tally_replica_offline_partitions)
	[ "${v[2]}" = 0 ] || tl_fail "offline partitions ${v[2]} while broker $stopped is stopped"
	[ "${v[0]}" -gt 0 ] && [ "${v[1]}" -gt "${before[0]}" ] && break
	[ "$(date +%s)" -lt "$deadline" ] ||
		tl_fail "15 s after SIGSTOP: under-replicated ${v[0]}, ISR shrinks ${v[1]} (were ${before[0]})"
	sleep 0.2
done
tl_log "under-replicated ${v[0]}, ISR shrinks ${v[1]} with broker $stopped stopped"
tl_cbroker_sigcont $stopped
deadline=$(($(date +%s) + 15))
while :; do
	mapfile -t v < <(sums 123 tally_replica_under_replicated_partitions \
		tally_replica_isr_expands_total tally_replica_offline_partitions \
		tally_replica_leader_count)
	[ "${v[2]}" = 0 ] || tl_fail "offline partitions ${v[2]} after SIGCONT"
	[ "${v[0]}" = 0 ] && [ "${v[1]}" -gt "${before[1]}" ] && break
	[ "$(date +%s)" -lt "$deadline" ] ||
		tl_fail "15 s after SIGCONT: under-replicated ${v[0]}, ISR expands ${v[1]} (were ${before[1]})"
	sleep 0.2
done
[ "${v[3]}" = "$parts" ] || tl_fail "leader counts sum to ${v[3]} after SIGCONT, want $parts"
wait "$writer" || true
tl_log "ok: ISR expands ${v[1]}, leaders ${v[3]}"
