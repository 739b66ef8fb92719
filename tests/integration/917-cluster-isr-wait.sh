#!/usr/bin/env bash
# Issue 15: what a Produce waiting for the ISR does to its connection. A 3-broker
# cluster; topic isr-wait has 1 partition, replication factor 3, min.insync.replicas 1.
# Both followers of partition 0 are paused (SIGSTOP), so an acks=all Produce waits
# until replica.lag.time.max.ms (5 s, tests/cluster.sh) drops them from the ISR.
# rawproto isr-wait, on the leader:
# (1) a Produce with timeout_ms 1500 is answered REQUEST_TIMED_OUT (7) after 1.5 s,
#     not at the ISR shrink: Kafka's DelayedProduce expiry;
# (2) a Produce with a timeout past the lag, then a Metadata request on the same
#     connection: the Produce succeeds once the ISR shrank, and the Metadata answer
#     that follows it lists the leader alone, i.e. it was computed when answered, as
#     Kafka (one request at a time per connection) computes it. Computed on arrival,
#     such answers named the pre-failover leader seconds after a failover and stalled
#     librdkafka's producer on the old leader (test 902).
# Then the followers resume and rejoin the ISR, and both batches are in the log: a
# timed-out Produce's records stay, as in Kafka. Last, every broker stops on SIGTERM
# with exit 0 (under TALLYD=build/asan/tallyd, LeakSanitizer then checks that the
# request answered before its waits ended was freed).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_prog rawproto

topic=isr-wait
tl_cluster_start 3
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3
leader=$(tl_cluster_leader "$topic" 0)
[ -n "$leader" ] && [ "$leader" -ge 1 ] || tl_fail "no leader for $topic-0"
followers=()
for b in 1 2 3; do [ "$b" = "$leader" ] || followers+=("$b"); done
tl_log "leader $leader; pausing followers ${followers[*]}"
for b in "${followers[@]}"; do tl_cbroker_sigstop "$b"; done

"$TL_PROGS/rawproto" "127.0.0.1:${TL_CPORT[$leader]}" isr-wait "$topic" "$leader" 1500 5000 ||
	tl_fail "rawproto isr-wait failed"

for b in "${followers[@]}"; do tl_cbroker_sigcont "$b"; done
tl_log "followers resumed"
tl_cluster_wait_isr "$topic" 1 3 30
"$TL_TALLY" tail "$topic" -o beginning -e -b "$TL_BOOTSTRAP" >"$TL_TMP/records" 2>"$TL_TMP/tail.err" ||
	{ cat "$TL_TMP/tail.err" >&2; tl_fail "tally tail failed"; }
cat "$TL_TMP/records" >&2
printf 'isr-wait-timed-out-0\nisr-wait-late-0\n' | cmp -s - "$TL_TMP/records" ||
	tl_fail "the log does not hold exactly the timed-out batch, then the late one"
for b in 1 2 3; do tl_cbroker_stop "$b"; done
tl_log "ok"
