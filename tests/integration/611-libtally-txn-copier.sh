#!/usr/bin/env bash
# Exactly-once consume-transform-produce with libtally (tests/progs/tally_txn_copier.c):
# a read_committed libtally consumer in a group, a transactional libtally producer and
# tl_producer_send_offsets_to_transaction() copy 20,000 records, aborting every 4th
# transaction and going back to where it started. Then: kcat with read_committed sees
# each input exactly once in the output; read_uncommitted sees the aborted copies too;
# the group's committed offsets equal the input's end offsets (the copier checks); no
# output partition is left with an open transaction (LSO = high watermark).
# With TL_TXN_KILLS=N (614 uses it) tallyd is kill -9'd and restarted N times mid-run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog tally_txn_copier
count=20000
tl_start_broker --override num.partitions=3 --override group.initial.rebalance.delay.ms=0
seq -f 'in-%06g' 1 "$count" | kcat -P -q -b "$TL_BROKER" -t input -K: -X acks=all ||
	tl_fail "could not produce the input"

kills=${TL_TXN_KILLS:-0}
timeout 60 "$TL_PROGS/tally_txn_copier" copy "$TL_BROKER" input output copier tally-copier \
	"$count" 4 50 2>"$TL_TMP/copier.log" &
copier=$!
for ((k = 0; k < kills; k++)); do
	sleep 3
	tl_pid_alive "$copier" || break
	tl_log "kill -9 tallyd ($((k + 1))/$kills)"
	tl_kill9_broker
	sleep 1
	tl_start_broker
done
wait "$copier" || tl_fail "the copier did not finish: $(tail -5 "$TL_TMP/copier.log")"
tl_log "$(grep 'copier: done' "$TL_TMP/copier.log")"
grep -q 'aborted=[1-9]' "$TL_TMP/copier.log" || tl_fail "the copier aborted no transaction"

read_all() { timeout 30 kcat -C -q -b "$TL_BROKER" -t output -e -X isolation.level="$1" -f '%s\n'; }
read_all read_committed | sort >"$TL_TMP/committed.txt"
dups=$(uniq -d "$TL_TMP/committed.txt" | wc -l)
[ "$dups" = 0 ] || tl_fail "read_committed output has $dups duplicated inputs, e.g. $(uniq -d "$TL_TMP/committed.txt" | head -3 | tr '\n' ' ')"
seq -f 'in-%06g' 1 "$count" | diff -q - "$TL_TMP/committed.txt" >/dev/null ||
	tl_fail "read_committed output is not the input exactly once ($(wc -l <"$TL_TMP/committed.txt") lines)"
uncommitted=$(read_all read_uncommitted | wc -l)
[ "$uncommitted" -gt "$count" ] ||
	tl_fail "read_uncommitted saw $uncommitted records; the aborted copies should be there too"
tl_log "output: $count committed, $uncommitted read_uncommitted"

for p in 0 1 2; do
	lso_end=$(kcat -Q -b "$TL_BROKER" -t "output:$p:-1" -X isolation.level=read_committed 2>/dev/null | awk '{print $NF}') || true
	hw_end=$(kcat -Q -b "$TL_BROKER" -t "output:$p:-1" -X isolation.level=read_uncommitted 2>/dev/null | awk '{print $NF}') || true
	[ -n "$lso_end" ] && [ "$lso_end" = "$hw_end" ] ||
		tl_fail "output partition $p: LSO $lso_end != high watermark $hw_end"
done
tl_stop_broker
