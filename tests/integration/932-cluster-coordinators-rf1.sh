#!/usr/bin/env bash
# Coordinators serve partitions they do not host. A topic with replication factor 1 on a
# 3-broker cluster puts each partition on one broker, so the group coordinator and the
# transaction coordinator (leaders of a __consumer_offsets / __transaction_state
# partition) lack at least two of its three partitions. Kafka's coordinators store
# offsets of any partition and send markers to each partition's leader; Tally's once
# answered UNKNOWN_TOPIC_OR_PARTITION for a partition without a local log.
#   (0) a librdkafka transaction sends offsets for a group never coordinated before (no
#       __consumer_offsets yet: AddOffsetsToTxn once answered INVALID_REQUEST), and the
#       group's offset is 5 after the commit;
#   (1) a libtally producer (tally produce --txn-id) writes 60 keyed records over the
#       three partitions in three transactions; a read_committed kcat reads all 60 (a
#       partition whose COMMIT marker never came would stop at its open transaction);
#       `tally txn producers` lists the producer on each partition (from its leader);
#   (2) a librdkafka consumer group (kcat -G) reads the topic and commits at close; for
#       six more groups (so several coordinators) `tally group seek --execute` commits
#       offsets of all three partitions; `tally group describe` shows each group's
#       offset of every partition.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat
tl_require_prog rdk_txn_once

topic=rf1
tl_cluster_start 3 --override group.initial.rebalance.delay.ms=0
"$TL_TALLY" topic create "$topic" --partitions 3 --replication-factor 1 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 3 1
tl_cluster_describe "$topic" >&2

tl_log "(1) transactions over partitions on three brokers"
# First, before any group was ever coordinated (no __consumer_offsets yet): offsets sent
# inside a transaction for a group, as a consumer that assigns its partitions does.
"$TL_TALLY" topic create rf1-in --partitions 1 --replication-factor 1 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create rf1-in failed"
RDK_TXN_OFFSETS_GROUP=rf1-assigned timeout 60 "$TL_PROGS/rdk_txn_once" "$TL_BOOTSTRAP" rf1-in \
	rf1-offsets-txn 5 0 2>"$TL_TMP/txn-offsets.err" ||
	tl_fail "offsets in a transaction before the offsets topic existed: $(cat "$TL_TMP/txn-offsets.err")"
seq 1 60 | sed 's/.*/k&:v&/' | timeout 60 "$TL_TALLY" produce "$topic" -K: --txn-id rf1-txn \
	--txn-every 20 -b "$TL_BOOTSTRAP" 2>"$TL_TMP/produce.err" ||
	tl_fail "transactional produce failed: $(cat "$TL_TMP/produce.err")"
timeout 60 kcat -C -q -b "$TL_BOOTSTRAP" -t "$topic" -o beginning -e \
	-X isolation.level=read_committed -f '%p %s\n' >"$TL_TMP/read" 2>"$TL_TMP/read.err" ||
	tl_fail "read_committed kcat failed: $(cat "$TL_TMP/read.err")"
n=$(wc -l <"$TL_TMP/read")
parts=$(cut -d' ' -f1 "$TL_TMP/read" | sort -u | wc -l)
[ "$n" = 60 ] || tl_fail "read_committed read $n of 60 committed records (per partition: $(cut -d' ' -f1 "$TL_TMP/read" | sort | uniq -c | tr '\n' ' '))"
[ "$parts" = 3 ] || tl_fail "the records landed on $parts partitions, want 3"
tl_log "60 records in 3 transactions read back read_committed from 3 partitions"
# DescribeProducers is answered by each partition's leader (the admin routes it there;
# another broker answers NOT_LEADER_OR_FOLLOWER): the transactional producer on all three.
"$TL_TALLY" txn producers "$topic" -b "$TL_BOOTSTRAP" >"$TL_TMP/producers" 2>&1 ||
	tl_fail "tally txn producers failed: $(cat "$TL_TMP/producers")"
for p in 0 1 2; do
	awk -v p=$p '$1 == "'"$topic"'" && $2 == p { ok = 1 } END { exit !ok }' "$TL_TMP/producers" ||
		tl_fail "no producer listed on partition $p: $(cat "$TL_TMP/producers")"
done

tl_log "(2) offsets committed for partitions the coordinator does not host"
# librdkafka's consumer commits at close what it read (kcat -G -e: to the end).
timeout 60 kcat -b "$TL_BOOTSTRAP" -G rf1-kcat "$topic" -o beginning -e -q -f '%s\n' \
	-X isolation.level=read_committed >/dev/null 2>"$TL_TMP/kcat-g.err" ||
	tl_fail "kcat -G failed: $(cat "$TL_TMP/kcat-g.err")"
grep -q 'Commit failed\|UNKNOWN_TOPIC_OR_PART' "$TL_TMP/kcat-g.err" &&
	tl_fail "kcat -G could not commit: $(cat "$TL_TMP/kcat-g.err")"
"$TL_TALLY" group describe rf1-assigned -b "$TL_BOOTSTRAP" >"$TL_TMP/describe-assigned" 2>&1 ||
	tl_fail "group describe rf1-assigned failed: $(cat "$TL_TMP/describe-assigned")"
awk -F'\t' '$1 == "rf1-in" && $2 == 0 && $3 == 5 { ok = 1 } END { exit !ok }' \
	"$TL_TMP/describe-assigned" ||
	tl_fail "the offset committed in the transaction is not 5: $(cat "$TL_TMP/describe-assigned")"
for g in rf1-kcat rf1-a rf1-b rf1-c rf1-d rf1-e rf1-f; do
	if [ "$g" != rf1-kcat ]; then
		"$TL_TALLY" group seek "$g" -o end -t "$topic" --execute -b "$TL_BOOTSTRAP" \
			>"$TL_TMP/seek-$g" 2>&1 || tl_fail "group seek $g failed: $(cat "$TL_TMP/seek-$g")"
	fi
	"$TL_TALLY" group describe "$g" -b "$TL_BOOTSTRAP" >"$TL_TMP/describe-$g" 2>&1 ||
		tl_fail "group describe $g failed: $(cat "$TL_TMP/describe-$g")"
	# TOPIC PARTITION COMMITTED END LAG CLIENT, tab-separated: committed at the end.
	for p in 0 1 2; do
		awk -F'\t' -v t="$topic" -v p=$p '$1 == t && $2 == p && $3 ~ /^[0-9]+$/ && $3 == $4 { ok = 1 }
			END { exit !ok }' "$TL_TMP/describe-$g" ||
			tl_fail "group $g has no committed offset at the end of partition $p: $(cat "$TL_TMP/seek-$g" "$TL_TMP/describe-$g" 2>/dev/null)"
	done
done
tl_log "ok: seven groups' offsets stored for all three partitions"
