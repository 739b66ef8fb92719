#!/usr/bin/env bash
# chaos.sh - one Jepsen-style run against a 3-broker cluster with etcd on loopback
# (tests/cluster.sh): real librdkafka clients (tests/progs/rdk_chaos.c) write while a
# nemesis injects faults chosen from a seed, then everything heals, a read_committed
# reader reads every partition, and tests/chaos/check.py judges the histories.
#
#   tests/chaos/chaos.sh SEED SECONDS [SCENARIO]
#
# SCENARIO (default mixed):
#   mixed       nemeses drawn at random from the seed: kill -9 of a broker, kill -9 of
#               the leader of a partition, SIGSTOP/SIGCONT of a leader (a zombie whose
#               lease expires), kill -9 of etcd, fsync failure (a broker restarted with
#               test.fault.fdatasync.fail.after, whose logs fail their next syncs: it
#               must stop acknowledging rather than ack what it could not sync)
#   kill        only kill -9 of brokers and leaders
#   pause       only SIGSTOP/SIGCONT of leaders
#   etcd        only kill -9 of etcd
#   fsync       only fsync failure
#   dedupe-off  brokers run with test.fault.dedupe.off (producer retries are appended
#               again) and test.fault.drop.produce.response.ratio (responses lost
#               after the append, so producers retry), while leaders are paused:
#               the checker MUST report duplicates; the run passes only if it does.
# Workloads: two idempotent producers (rdk_chaos produce) and a transactional writer
# that aborts every 4th transaction (rdk_chaos txn), all on topic "chaos" (3 partitions,
# replication factor 3, min.insync.replicas 2).
# The same SEED gives the same schedule of faults (bash's RANDOM seeded with it); the
# timing of the system under test is not replayable, so neither is the exact history.
# Results (histories, broker logs, check.out, report.json, report.html) go to
# CHAOS_OUT (default build/chaos/SCENARIO-SEED). Exit 0 when the verdict is the one
# wanted (VALID, or duplicates for dedupe-off), 1 otherwise.
set -euo pipefail
seed=${1:?usage: chaos.sh SEED SECONDS [SCENARIO]}
secs=${2:?usage: chaos.sh SEED SECONDS [SCENARIO]}
scenario=${3:-mixed}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_prog rdk_chaos
tl_require_cmd python3
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

out=${CHAOS_OUT:-$TL_ROOT/build/chaos/$scenario-$seed}
rm -rf "$out"
mkdir -p "$out"
hist=$TL_TMP/hist
mkdir -p "$hist"
topic=chaos
RANDOM=$seed
tl_log "chaos: seed $seed, $secs s, scenario $scenario (replay: tests/chaos/chaos.sh $seed $secs $scenario)"

# The test-only fault keys (test.fault.*) are refused without this.
export TALLY_TEST_FAULTS=1
extra=()
# Dedupe off, and 2 % of produce responses dropped after the append so that producers
# retry batches the log already holds.
[ "$scenario" = dedupe-off ] &&
	extra=(--override test.fault.dedupe.off=true --override test.fault.drop.produce.response.ratio=0.02)
tl_cluster_start 3 --override min.insync.replicas=2 "${extra[@]}"
"$TL_TALLY" topic create "$topic" --partitions 3 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 3 3

now()
{
	date +%s.%N
}

nemesis()
{
	printf '{"t":%s,"process":"nemesis","type":"info","f":"nemesis","value":"%s"}\n' \
		"$(now)" "$1" >>"$hist/nemesis.jsonl"
	tl_log "nemesis: $1"
}

# A broker that is running, drawn from the seed; or the leader of a partition.
pick_broker()
{
	local i tries=0
	while [ $tries -lt 10 ]; do
		i=$((RANDOM % 3 + 1))
		tl_cbroker_alive "$i" && { echo "$i"; return 0; }
		tries=$((tries + 1))
	done
	return 1
}

pick_leader()
{
	local p=$((RANDOM % 3)) l
	l=$(tl_cluster_leader "$topic" "$p")
	if [ -n "$l" ] && [ "$l" -ge 1 ] && tl_cbroker_alive "$l"; then
		echo "$l"
	else
		pick_broker
	fi
}

# Restarts a dead broker with the cluster's normal settings.
restart_broker()
{
	local i=$1
	tl_cbroker_alive "$i" && return 0
	tl_cbroker_start "$i"
}

fault_kill()
{
	local b hold=$1 how=$2
	if [ "$how" = leader ]; then b=$(pick_leader) || return 0; else b=$(pick_broker) || return 0; fi
	nemesis "start kill -9 broker $b ($how)"
	tl_cbroker_kill9 "$b"
	sleep "$hold"
	restart_broker "$b"
	nemesis "stop kill -9 broker $b ($how)"
}

fault_pause()
{
	local b hold=$1
	b=$(pick_leader) || return 0
	nemesis "start SIGSTOP broker $b"
	tl_cbroker_sigstop "$b"
	sleep "$hold"
	tl_cbroker_sigcont "$b"
	nemesis "stop SIGSTOP broker $b"
}

fault_etcd()
{
	local hold=$1
	nemesis "start kill -9 etcd"
	tl_etcd_kill9
	sleep "$hold"
	tl_etcd_start
	nemesis "stop kill -9 etcd"
}

# The broker comes back with every log failing its syncs after N more: it must stop
# acknowledging (KAFKA_STORAGE_ERROR) and the others take over its partitions.
fault_fsync()
{
	local b hold=$1 after=$((RANDOM % 20 + 1)) saved
	b=$(pick_broker) || return 0
	nemesis "start fsync failure broker $b (after $after syncs)"
	tl_cbroker_kill9 "$b"
	saved=("${TL_CARGS[@]}")
	TL_CARGS+=(--override "test.fault.fdatasync.fail.after=$after")
	tl_cbroker_start "$b"
	TL_CARGS=("${saved[@]}")
	sleep "$hold"
	tl_cbroker_alive "$b" && tl_cbroker_kill9 "$b"
	TL_CPID[$b]=
	restart_broker "$b"
	nemesis "stop fsync failure broker $b"
}

run_nemesis()
{
	local hold=$((RANDOM % 4 + 2)) kinds
	case $scenario in
	mixed) kinds=(kill-any kill-leader pause etcd fsync) ;;
	kill) kinds=(kill-any kill-leader) ;;
	pause) kinds=(pause) ;;
	etcd) kinds=(etcd) ;;
	fsync) kinds=(fsync) ;;
	dedupe-off) kinds=(pause) hold=$((RANDOM % 3 + 7)) ;;
	*) tl_fail "unknown scenario $scenario" ;;
	esac
	case ${kinds[$((RANDOM % ${#kinds[@]}))]} in
	kill-any) fault_kill "$hold" any ;;
	kill-leader) fault_kill "$hold" leader ;;
	pause) fault_pause "$hold" ;;
	etcd) fault_etcd "$hold" ;;
	fsync) fault_fsync "$hold" ;;
	esac
}

rate=${CHAOS_RATE:-300}
pids=()
for w in 1 2; do
	"$TL_PROGS/rdk_chaos" produce "$TL_BOOTSTRAP" "$topic" "producer-$w" "$secs" "$rate" \
		"$hist/producer-$w.jsonl" 2>"$TL_TMP/producer-$w.err" &
	pids+=($!)
done
"$TL_PROGS/rdk_chaos" txn "$TL_BOOTSTRAP" "$topic" txn-1 "$secs" "$hist/txn-1.jsonl" \
	2>"$TL_TMP/txn-1.err" &
pids+=($!)

start=$(date +%s)
sleep 2
while [ $(($(date +%s) - start)) -lt $((secs - 4)) ]; do
	run_nemesis
	sleep $((RANDOM % 3 + 1))
done

# Heal: everything running, then let the clients finish.
for b in 1 2 3; do
	restart_broker "$b"
done
nemesis "healed"
rc=0
for pid in "${pids[@]}"; do
	wait "$pid" || rc=$?
done
[ $rc -eq 0 ] || tl_log "a workload exited with status $rc"
tl_cluster_wait_isr "$topic" 3 3 60
"$TL_PROGS/rdk_chaos" read "$TL_BOOTSTRAP" "$topic" "$hist/reader.jsonl" read_committed \
	2>"$TL_TMP/reader.err" || tl_log "the reader did not finish (see reader.err)"
cat "$TL_TMP"/*.err >&2

rc=0
"$py" "$TL_ROOT/tests/chaos/check.py" --json "$out/report.json" --html "$out/report.html" \
	"$hist"/*.jsonl >"$out/check.out" || rc=$?
cp -r "$hist" "$TL_TMP"/*.err "$TL_TMP"/tallyd-*.log "$out/" 2>/dev/null || true
cat "$out/check.out" >&2
tl_log "results in $out"
if [ "$scenario" = dedupe-off ]; then
	grep -q '^FAIL duplicate ' "$out/check.out" ||
		tl_fail "dedupe off, yet the checker found no duplicate: it cannot fail"
	tl_log "ok: with dedupe off the checker reports duplicates, as it must"
	exit 0
fi
[ $rc -eq 0 ] || tl_fail "seed $seed: the checker found anomalies (see $out)"
tl_log "ok: seed $seed VALID"
