#!/usr/bin/env bash
# eos906: a transaction's offsets (TxnOffsetCommit) staged before the broker restarts,
# decided after it. The restarted broker finds them pending in __consumer_offsets and
# the transaction Ongoing in __transaction_state; the client's EndTxn then writes the
# marker to the offsets partition on this same broker. That marker must decide the
# pending offsets, as Kafka's group coordinator does for every marker appended to
# __consumer_offsets: after an abort, a read_committed consumer (OffsetFetch with
# require_stable) reads the offset of the transaction before; after a commit, the
# transaction's. Before the fix only the transaction coordinator's in-memory list of
# AddOffsetsToTxn groups decided them, a list a restart (or a coordinator move) loses:
# the offsets stayed pending for good, OffsetFetch answered UNSTABLE_OFFSET_COMMIT
# until librdkafka's timeout, and 906's copier, failing to rewind after its abort,
# skipped a whole transaction of input.
# Then, on the wire (rawproto): AddOffsetsToTxn before a restart, TxnOffsetCommit and
# EndTxn after it. The check that the group is in the transaction must survive the
# restart too; it asked the same lost list and answered INVALID_TXN_STATE.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rdk_txn_copier rawproto
tl_start_broker
"$TL_BIN/tally" topic create straddle --partitions 1 -b "$TL_BROKER" >/dev/null ||
	tl_fail "topic create failed"
# Opened now, decided after the first restart.
"$TL_PROGS/rawproto" "$TL_BROKER" txn-offsets-open straddle t-raw g-raw >"$TL_TMP/raw-open.out" \
	2>&1 || tl_fail "could not open the raw transaction: $(tail -3 "$TL_TMP/raw-open.out")"
read -r raw_pid raw_epoch <"$TL_TMP/raw-open.out"

for action in abort commit; do
	go=$TL_TMP/go-$action
	log=$TL_TMP/straddle-$action.log
	"$TL_PROGS/rdk_txn_copier" straddle "$TL_BROKER" straddle "g-$action" "t-$action" \
		"$action" "$go" 2>"$log" &
	prog=$!
	for _ in $(seq 300); do
		grep -q 'copier: staged' "$log" && break
		tl_pid_alive "$prog" || break
		sleep 0.05
	done
	grep -q 'copier: staged' "$log" ||
		tl_fail "$action: the transaction was not staged: $(tail -3 "$log")"
	tl_stop_broker
	tl_start_broker
	touch "$go"
	if [ "$action" = abort ]; then
		"$TL_PROGS/rawproto" "$TL_BROKER" txn-offsets-commit straddle t-raw g-raw "$raw_pid" \
			"$raw_epoch" >"$TL_TMP/raw-commit.out" 2>&1 ||
			tl_fail "raw transaction after a restart: $(tail -3 "$TL_TMP/raw-commit.out")"
	fi
	wait "$prog" || tl_fail "$action after a restart: $(grep -v '^%' "$log" | tail -3 | tr '\n' ' ')"
	tl_log "$action: $(grep 'committed offset' "$log" | tail -1)"
done
tl_stop_broker
tl_log "ok"
