#!/usr/bin/env bash
# tally log check|dump (acceptance 5) on a stopped broker's data directory: clean data
# exits 0; one garbled byte inside a batch is reported with the segment file, the batch's
# offset and position and a CRC error, and exits non-zero, for the whole log.dirs, the
# partition directory and the segment file alike; a torn tail (a cut last batch) and a
# corrupt producer snapshot are reported too, and a leader-epoch entry inside a batch. dump shows batch headers with producer
# id/epoch/base sequence and transactional/control flags, index entries, snapshots, and
# --json parses. A failed log's marker (log-failed-durable-offset) is shown by dump and
# noted on stderr by check, which still exits 0.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }
command -v python3 >/dev/null || tl_skip "python3 is not installed"

tl_start_broker --override num.partitions=1 --override log.segment.bytes=40000
# 40 runs of 500 records: each run ends with a flush, so the segments hold several
# batches whatever batch.size is (one run's records fit in one batch).
for i in $(seq 0 39); do seq $((i * 500 + 1)) $((i * 500 + 500)) | tally produce data; done
seq 1 10 | tally produce txn --txn-id log-check-txn
tl_stop_broker

tl_log "clean: exit 0"
"$TL_BIN/tally" log check "$TL_DATA" >"$TL_TMP/clean" || tl_fail "log check of clean data failed: $(cat "$TL_TMP/clean")"
grep -q '^ok: .* 0 problems' "$TL_TMP/clean" || tl_fail "clean summary: $(cat "$TL_TMP/clean")"
segs=("$TL_DATA"/data-0/*.log)
segments=${#segs[@]}
[ "$segments" -ge 3 ] || tl_fail "want several segments, got $segments"

tl_log "a failed log's marker: dump shows it, check notes it and stays ok"
printf '1000\n' >"$TL_DATA/data-0/log-failed-durable-offset"
"$TL_BIN/tally" log dump "$TL_DATA/data-0" >"$TL_TMP/marker" 2>/dev/null || true
grep -q '^durableEndOffset 1000: a write or sync failed' "$TL_TMP/marker" ||
	tl_fail "dump does not show the failed-log marker"
"$TL_BIN/tally" log check "$TL_DATA/data-0" >/dev/null 2>"$TL_TMP/marker.err" ||
	tl_fail "check failed on a failed-log marker"
grep -q '^note: .*log-failed-durable-offset' "$TL_TMP/marker.err" ||
	tl_fail "check does not note the failed-log marker: $(cat "$TL_TMP/marker.err")"
rm "$TL_DATA/data-0/log-failed-durable-offset"

tl_log "dump"
"$TL_BIN/tally" log dump "$TL_DATA/txn-0" >"$TL_TMP/dump"
grep -q 'producerId [0-9]* producerEpoch 0 baseSequence 0' "$TL_TMP/dump" || tl_fail "dump lacks producer fields"
grep -q 'transactional control=COMMIT' "$TL_TMP/dump" || tl_fail "dump lacks the COMMIT marker: $(cat "$TL_TMP/dump")"
grep -q '^offset 0 position 0$' "$TL_TMP/dump" || tl_fail "dump lacks index entries"
grep -q '^producerId .* batches \[seq 0..9' "$TL_TMP/dump" || tl_fail "dump lacks the producer snapshot"
# (Captured, not piped to grep -q: see 803.)
dump=$("$TL_BIN/tally" log dump "$TL_DATA/txn-0" --records) &&
	grep -q '| offset 9 .* value 10$' <<<"$dump" || tl_fail "dump --records"
"$TL_BIN/tally" log dump "$TL_DATA/data-0" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
n = sum(len(f.get("batches", [])) for f in d["files"] if f["type"] == "segment")
recs = sum(b["count"] for f in d["files"] if f["type"] == "segment" for b in f["batches"])
assert n > 0 and recs == 20000, (n, recs)' || tl_fail "dump --json"

tl_log "one garbled byte"
seg=${segs[1]}
read -r pos offset < <("$TL_BIN/tally" log dump "$seg" | awk '/^baseOffset/ && n++ == 1 { print $8 + 100, $2 }')
cp "$seg" "$TL_TMP/seg.bak"
printf '\x5a' | dd of="$seg" bs=1 seek="$pos" conv=notrunc status=none
cmp -s "$seg" "$TL_TMP/seg.bak" && printf '\xa5' | dd of="$seg" bs=1 seek="$pos" conv=notrunc status=none
for target in "$TL_DATA" "$TL_DATA/data-0" "$seg"; do
	rc=0
	"$TL_BIN/tally" log check "$target" >"$TL_TMP/bad" || rc=$?
	[ $rc -ne 0 ] || tl_fail "log check $target exited 0 on a garbled segment"
	grep -q "$(basename "$seg"): offset $offset (position [0-9]*): CRC error: stored crc 0x[0-9a-f]*, computed 0x" "$TL_TMP/bad" ||
		tl_fail "log check $target: want the segment, offset $offset and a CRC error: $(cat "$TL_TMP/bad")"
	[ "$(grep -c 'CRC error' "$TL_TMP/bad")" = 1 ] || tl_fail "one bad byte, more than one report: $(cat "$TL_TMP/bad")"
done
"$TL_BIN/tally" log check "$TL_DATA" --json >"$TL_TMP/bad.json" || true
python3 -c '
import json, sys
d = json.load(sys.stdin)
assert not d["ok"] and len(d["problems"]) == 1 and "CRC" in d["problems"][0]["error"], d["problems"]' <"$TL_TMP/bad.json" ||
	tl_fail "check --json"
cp "$TL_TMP/seg.bak" "$seg"
"$TL_BIN/tally" log check "$TL_DATA" >/dev/null || tl_fail "restored data not clean"

tl_log "leader-epoch entry inside a batch"
# (Inside a hole the cleaner left is fine, tests/integration/808; inside a batch is not.)
ck=$TL_DATA/data-0/leader-epoch-checkpoint
cp "$ck" "$TL_TMP/ck.bak"
printf '0\n2\n0 0\n1 1\n' >"$ck"
rc=0
"$TL_BIN/tally" log check "$TL_DATA/data-0" >"$TL_TMP/epoch" || rc=$?
[ $rc -ne 0 ] || tl_fail "log check exited 0 on an epoch starting inside a batch"
grep -q 'epoch 1 starts at 1, inside a batch' "$TL_TMP/epoch" ||
	tl_fail "epoch inside a batch not reported: $(head -n 5 "$TL_TMP/epoch")"
cp "$TL_TMP/ck.bak" "$ck"

tl_log "torn tail and corrupt snapshot"
last=${segs[${#segs[@]} - 1]}
truncate -s -7 "$last"
rc=0
"$TL_BIN/tally" log check "$TL_DATA/data-0" >"$TL_TMP/torn" || rc=$?
[ $rc -ne 0 ] || tl_fail "log check exited 0 on a torn tail"
grep -q 'truncated batch' "$TL_TMP/torn" || tl_fail "torn tail not reported: $(cat "$TL_TMP/torn")"
snaps=("$TL_DATA"/txn-0/*.snapshot)
snap=${snaps[0]}
printf 'XXXX' | dd of="$snap" bs=1 seek=10 conv=notrunc status=none
rc=0
"$TL_BIN/tally" log check "$TL_DATA/txn-0" >"$TL_TMP/snap" || rc=$?
[ $rc -ne 0 ] || tl_fail "log check exited 0 on a corrupt snapshot"
grep -q 'snapshot.*CRC' "$TL_TMP/snap" || tl_fail "bad snapshot not reported: $(cat "$TL_TMP/snap")"
rc=0
"$TL_BIN/tally" log check "$TL_TMP/nonexistent" 2>/dev/null || rc=$?
[ $rc = 3 ] || tl_fail "a missing path exited $rc, want 3"
tl_log "ok"
