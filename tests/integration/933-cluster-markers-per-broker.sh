#!/usr/bin/env bash
# A stopped leader delays only its own transaction markers (broker/markers.c: one
# sender lane per destination broker, as Kafka's per-broker queues). One transaction
# coordinator (transaction.state.log.num.partitions=1, replication factor 1), a topic
# with one partition on each broker. Transaction 1 writes to the partition of broker S
# and, once S is stopped (SIGSTOP: connections open, nothing answered), commits: its
# COMMIT marker waits on S. Transaction 2 then writes to the partition of another broker
# O and commits; a read_committed reader sees its record at once. With one sender for
# all brokers it waited behind S's 15 s I/O timeout (a review measured 14.6 s); the
# bound here is 8 s.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat
tl_require_prog rdk_txn_once

tl_cluster_start 3 --override transaction.state.log.num.partitions=1 \
	--override transaction.state.log.replication.factor=1 \
	--override broker.session.timeout.ms=60000 --override replica.lag.time.max.ms=60000
"$TL_TALLY" topic create ds --partitions 3 --replication-factor 1 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr ds 3 1
# The coordinator: the state topic is created by the first transactional producer.
"$TL_TALLY" topic create warm --partitions 1 --replication-factor 1 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create warm failed"
timeout 60 "$TL_PROGS/rdk_txn_once" "$TL_BOOTSTRAP" warm warm-up 1 0 2>"$TL_TMP/warm.err" ||
	tl_fail "a first transaction failed: $(cat "$TL_TMP/warm.err")"
coord=$(tl_cluster_leader __transaction_state 0)
[ -n "$coord" ] || tl_fail "no leader of __transaction_state-0"
ps=-1 po=-1
for p in 0 1 2; do
	l=$(tl_cluster_leader ds $p)
	[ "$l" = "$coord" ] && continue
	if [ $ps = -1 ]; then ps=$p s=$l; else po=$p o=$l; fi
done
[ $po != -1 ] || tl_fail "the partitions of ds are not on three brokers: $(tl_cluster_describe ds)"
tl_log "coordinator $coord; broker $s (ds-$ps) will be stopped, broker $o (ds-$po) not"

# Transaction 1, held open with its record on S, committed once S is stopped.
RDK_PARTITION=$ps RDK_TXN_PAUSE=$TL_TMP/go timeout 60 "$TL_PROGS/rdk_txn_once" \
	"$TL_BOOTSTRAP" ds txn-s 1 0 >"$TL_TMP/txn-s.out" 2>"$TL_TMP/txn-s.err" &
txn_s=$!
deadline=$((SECONDS + 30))
until grep -q ready "$TL_TMP/txn-s.out"; do
	[ $SECONDS -lt $deadline ] || tl_fail "transaction 1 did not get ready: $(cat "$TL_TMP/txn-s.err")"
	sleep 0.1
done
kill -STOP "${TL_CPID[$s]}"
touch "$TL_TMP/go"
sleep 1.5 # transaction 1 commits: its marker is on its way to S, which does not answer

# Transaction 2 on O: committed, then read back read_committed.
RDK_PARTITION=$po timeout 60 "$TL_PROGS/rdk_txn_once" "$TL_BOOTSTRAP" ds txn-o 1 0 \
	2>"$TL_TMP/txn-o.err" || { kill -CONT "${TL_CPID[$s]}"; tl_fail "transaction 2 failed: $(cat "$TL_TMP/txn-o.err")"; }
start=$(date +%s%N)
seen=
while [ $(( ($(date +%s%N) - start) / 1000000 )) -lt 20000 ]; do
	if timeout 10 kcat -C -q -b "127.0.0.1:${TL_CPORT[$o]}" -t ds -p "$po" -o beginning -e \
		-X isolation.level=read_committed -f '%s\n' 2>/dev/null | grep -q '^txn-commit-0$'; then
		seen=$(( ($(date +%s%N) - start) / 1000000 ))
		break
	fi
	sleep 0.2
done
kill -CONT "${TL_CPID[$s]}"
wait "$txn_s" 2>/dev/null || true
[ -n "$seen" ] || tl_fail "transaction 2's record was not visible read_committed within 20 s"
tl_log "transaction 2's record visible read_committed ${seen} ms after its commit (broker $s stopped)"
[ "$seen" -lt 8000 ] ||
	tl_fail "transaction 2's marker waited ${seen} ms behind the stopped broker's (want < 8000)"
tl_log "ok"
