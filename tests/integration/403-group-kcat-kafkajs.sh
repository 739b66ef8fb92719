#!/usr/bin/env bash
# Other group clients: `kcat -G` (librdkafka's balanced consumer, auto-commit) and a
# kafkajs 2.2.4 consumer group (tests/interop/kafkajs_group.js).
#   (1) kcat -G reads 40 of 100 records and exits; a second kcat -G in the same group
#       reads exactly the other 60: its auto-commit on close was stored;
#   (2) kafkajs joins a group, commits what it handled, fetchOffsets and describeGroups
#       agree, and a second kafkajs consumer reads exactly the rest.
# When node or the pinned kafkajs is missing, (1) still runs and the test then exits 77
# (skipped, not passed: half of it did not run).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

tl_start_broker --override num.partitions=3 --override group.initial.rebalance.delay.ms=0
topic=grp-kcat
seq 1 100 | sed 's/^/k/' | kcat -P -b "$TL_BROKER" -t "$topic" 2>"$TL_TMP/produce.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/produce.err")"

# (1) kcat -G
kcat_group() # COUNT OUT
{
	timeout 30 kcat -b "$TL_BROKER" -G grp-kcat-g -q -c "$1" -f '%p %o %s\n' \
		-X auto.offset.reset=earliest -X session.timeout.ms=6000 "$topic" \
		>"$2" 2>"$2.err" || tl_fail "kcat -G -c $1 failed: $(tail -n 5 "$2.err")"
}
kcat_group 40 "$TL_TMP/kcat1"
kcat_group 60 "$TL_TMP/kcat2"
cat "$TL_TMP/kcat1" "$TL_TMP/kcat2" | awk '{ print $3 }' | sort -u >"$TL_TMP/kcat.seen"
n1=$(wc -l <"$TL_TMP/kcat1")
n2=$(wc -l <"$TL_TMP/kcat2")
seen=$(wc -l <"$TL_TMP/kcat.seen")
[ "$n1" -eq 40 ] && [ "$n2" -eq 60 ] || tl_fail "kcat -G read $n1 then $n2 records, want 40 then 60"
[ "$seen" -eq 100 ] || tl_fail "the two kcat -G runs read $seen distinct records, want 100 (a resume repeated or skipped records)"
tl_log "kcat -G: 40 + 60 records, all distinct"

# (2) kafkajs
if ! command -v node >/dev/null 2>&1 || [ ! -d tests/interop/node_modules/kafkajs ]; then
	tl_stop_broker
	tl_skip "kafkajs part not run: node or tests/interop/node_modules/kafkajs missing (make deps)"
fi
topic=grp-kafkajs
seq 1 100 | sed 's/^/j/' | kcat -P -b "$TL_BROKER" -t "$topic" 2>"$TL_TMP/produce.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/produce.err")"
KAFKAJS_NO_PARTITIONER_WARNING=1 timeout 120 node tests/interop/kafkajs_group.js \
	"$TL_BROKER" "$topic" grp-kafkajs-g 100 37 >&2 || tl_fail "kafkajs consumer group failed"
tl_stop_broker
