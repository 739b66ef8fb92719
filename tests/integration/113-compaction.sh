#!/usr/bin/env bash
# Log compaction (issue 17): a topic created with cleanup.policy=compact and small
# segments gets 200 keys written 20 times each by kcat (librdkafka), every 10th key's last
# write a tombstone (NULL value). The cleaner runs from the broker's tick: a consumer from
# offset 0 then sees, for every key, its latest value (or its tombstone, inside
# delete.retention.ms) at its original offset, offsets strictly increasing, and far
# fewer records than were written; a key written after compaction is never lost; a record
# without a key is refused with INVALID_RECORD, as Kafka refuses it; lz4 batches from
# kcat are cleaned too (a batch that keeps some of its records is compressed again) and
# read back by kcat with every key's latest value; DescribeConfigs
# shows the policy; `tally log check` passes on the compacted partition; and a restart
# serves the same records.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_admin

keys=200
rounds=20
topic=kv
tl_start_broker --override num.partitions=1 --override log.cleaner.backoff.ms=100
"$TL_BIN/tally" -b "$TL_BROKER" topic create "$topic" -p 1 --config cleanup.policy=compact \
	--config segment.bytes=8192 --config min.cleanable.dirty.ratio=0.1 >/dev/null ||
	tl_fail "topic create failed"
out=$(timeout 60 "$TL_PROGS/rdk_admin" "$TL_BROKER" describe-configs topic "$topic" include-synonyms) ||
	tl_fail "rdk_admin describe-configs topic failed: $out"
for want in 'config cleanup.policy=compact source DYNAMIC_TOPIC_CONFIG' \
	'config min.cleanable.dirty.ratio=0.1 source DYNAMIC_TOPIC_CONFIG' \
	'config delete.retention.ms=86400000 source DEFAULT_CONFIG' \
	'synonym log.cleaner.delete.retention.ms=86400000 source DEFAULT_CONFIG'; do
	grep -qF "$want" <<<"$out" || {
		echo "$out" >&2
		tl_fail "describe-configs lacks: $want"
	}
done

# Line i (from 0) goes to offset i: key k<i % keys>, value v<key>-<round>, or a tombstone.
awk -v keys=$keys -v rounds=$rounds 'BEGIN {
	for (r = 0; r < rounds; r++)
		for (k = 0; k < keys; k++)
			if (r == rounds - 1 && k % 10 == 0) print "k" k ":"
			else print "k" k ":v" k "-" r
}' >"$TL_TMP/input"
timeout 60 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -K: -Z -X batch.num.messages=20 \
	-X linger.ms=1 <"$TL_TMP/input" || tl_fail "kcat -P failed"
written=$(wc -l <"$TL_TMP/input")

# Latest per key: "offset key value" ("-" for a tombstone), by offset.
awk -F: '{ last[$1] = NR - 1; val[$1] = ($2 == "" ? "-" : $2) }
	END { for (k in last) print last[k], k, val[k] }' "$TL_TMP/input" | sort -n >"$TL_TMP/want"

# compacted_to TOPIC: how far the passes over TOPIC's partition 0 have cleaned (the
# highest first_dirty they logged; 0 before any).
compacted_to()
{
	local to
	to=$(tl_log_text "$TL_TMP/tallyd.log" | grep "log: compacted dir=.*/$1-0 " |
		grep -o 'first_dirty=[0-9]*' | cut -d= -f2 | sort -n | tail -n 1) || true
	echo "${to:-0}"
}

# Wait for a pass that covers most of the log (one may run while kcat still writes).
deadline=$((SECONDS + 15))
until [ "$(compacted_to "$topic")" -ge $((written / 2)) ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "no compaction pass over half the log within 15 s"
	sleep 0.2
done
tl_log "$(grep -o "log: compacted dir=.*/$topic-0 .*" <(tl_log_text "$TL_TMP/tallyd.log") | head -n 1)"

# One more write after compaction: never lost.
echo "k7:after" | timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" -p 0 -K: -X acks=all ||
	tl_fail "produce after compaction failed"
echo "$written k7 after" >>"$TL_TMP/want"
# A record without a key: refused with INVALID_RECORD (librdkafka: "Broker failed to
# validate record"; Kafka: "Compacted topic cannot accept message without
# key"), and not stored: the read below finds nothing after k7's.
echo "keyless" | timeout 30 kcat -P -b "$TL_BROKER" -t "$topic" -p 0 -X acks=all \
	-X message.send.max.retries=0 2>"$TL_TMP/keyless.err" || true
grep -q 'Broker failed to validate record' "$TL_TMP/keyless.err" ||
	tl_fail "a keyless record on a compacted topic was not refused: $(cat "$TL_TMP/keyless.err")"
grep -v ' k7 ' "$TL_TMP/want" | sort -n >"$TL_TMP/want.sorted"

# Reads every record from offset 0 as "offset key value", "-" for a NULL value, and
# checks it against the latest-per-key list.
check_read()
{
	local what=$1
	timeout 30 kcat -C -q -b "$TL_BROKER" -t "$topic" -p 0 -o beginning -e \
		-X fetch.wait.max.ms=10 -f '%o %k %S %s\n' >"$TL_TMP/got.raw" ||
		tl_fail "$what: kcat -C failed"
	awk '{ print $1, $2, ($3 == -1 ? "-" : $4) }' "$TL_TMP/got.raw" >"$TL_TMP/got"
	local count
	count=$(wc -l <"$TL_TMP/got")
	awk 'NR > 1 && $1 <= prev { print "offset " $1 " after " prev; exit 1 } { prev = $1 }' \
		"$TL_TMP/got" || tl_fail "$what: offsets do not increase"
	# The last record of every key is its latest, at the offset it was written at.
	awk '{ last[$2] = $0 } END { for (k in last) print last[k] }' "$TL_TMP/got" |
		sort -n >"$TL_TMP/latest"
	{
		grep -v ' k7 ' "$TL_TMP/want"
		echo "$written k7 after"
	} | sort -n >"$TL_TMP/want.all"
	if ! cmp -s "$TL_TMP/want.all" "$TL_TMP/latest"; then
		# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
		diff "$TL_TMP/want.all" "$TL_TMP/latest" | head -n 10 >&2 || true
		tl_fail "$what: latest values differ"
	fi
	# Far fewer records than written: only the dirty tail keeps duplicates.
	[ "$count" -lt $((written / 3)) ] ||
		tl_fail "$what: read $count records of $written written; compaction did not shrink the log"
	tl_log "$what: $count records of $((written + 1)) written, latest of all $keys keys right"
}
check_read "after compaction"

# Compressed batches: 50 keys written 10 times in lz4 batches of 20, then keys 0-24 once
# more, so the round-9 batch holding keys 20-39 keeps 25-39 only.
z=kvz
"$TL_BIN/tally" -b "$TL_BROKER" topic create $z -p 1 --config cleanup.policy=compact \
	--config segment.bytes=1024 --config min.cleanable.dirty.ratio=0.1 >/dev/null ||
	tl_fail "topic create $z failed"
awk 'BEGIN { for (r = 0; r <= 10; r++) for (k = 0; k < 50; k++)
	if (r < 10 || k < 25) print "k" k ":v" k "-" r }' >"$TL_TMP/zinput"
timeout 60 kcat -P -q -b "$TL_BROKER" -t $z -p 0 -K: -z lz4 -X batch.num.messages=20 \
	-X linger.ms=5 <"$TL_TMP/zinput" || tl_fail "kcat -P -z lz4 failed"
deadline=$((SECONDS + 15))
until [ "$(compacted_to $z)" -ge $(($(wc -l <"$TL_TMP/zinput") / 2)) ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "no compaction pass over half of $z within 15 s"
	sleep 0.2
done
timeout 30 kcat -C -q -b "$TL_BROKER" -t $z -p 0 -o beginning -e -X fetch.wait.max.ms=10 \
	-f '%k %s\n' >"$TL_TMP/zgot" || tl_fail "kcat -C of $z failed"
awk '{ last[$1] = $2 } END { for (k in last) print k, last[k] }' "$TL_TMP/zgot" | sort >"$TL_TMP/zlatest"
awk -F: '{ last[$1] = $2 } END { for (k in last) print k, last[k] }' "$TL_TMP/zinput" |
	sort >"$TL_TMP/zwant"
cmp -s "$TL_TMP/zwant" "$TL_TMP/zlatest" || {
	# (|| true: diff exits 1, and set -e would end the test before tl_fail says why)
	diff "$TL_TMP/zwant" "$TL_TMP/zlatest" | head -n 10 >&2 || true
	tl_fail "$z: latest values differ after compaction"
}
zcount=$(wc -l <"$TL_TMP/zgot")
[ "$zcount" -lt $(($(wc -l <"$TL_TMP/zinput") / 2)) ] ||
	tl_fail "$z: read $zcount records of $(wc -l <"$TL_TMP/zinput"); lz4 batches were not cleaned"
tl_log "$z (lz4): $zcount records of $(wc -l <"$TL_TMP/zinput") written, latest of all 50 keys right"

tl_stop_broker
"$TL_BIN/tally" log check "$TL_DATA/$topic-0" >"$TL_TMP/check" 2>&1 || {
	cat "$TL_TMP/check" >&2
	tl_fail "tally log check fails on the compacted partition"
}
tl_start_broker
check_read "after a restart"
tl_stop_broker
