#!/usr/bin/env bash
# Bad input through the command-line clients and tallyd's own command line:
#   tallyd refuses an unknown key (naming it, with a suggestion), a bad value, the test
#   fault switch without TALLY_TEST_FAULTS=1, an unknown argument, a missing config file;
#   with auto.create.topics.enable=false, kcat -L/-P/-C on an unknown topic get
#   UNKNOWN_TOPIC_OR_PARTITION and nothing is created;
#   with auto-create on: an invalid topic name gets INVALID_TOPIC_EXCEPTION, a record
#   over message.max.bytes gets MESSAGE_TOO_LARGE (and the broker keeps serving), a fetch
#   past the end gets OFFSET_OUT_OF_RANGE.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat

# Runs tallyd with @2..., wants exit status 2 and stderr matching ERE @1.
refused()
{
	local want=$1 rc=0
	shift
	"$TL_BIN/tallyd" --override "log.dirs=$TL_TMP/never" "$@" >"$TL_TMP/out" 2>&1 || rc=$?
	[ $rc -eq 2 ] || tl_fail "tallyd $* exited $rc, want 2: $(cat "$TL_TMP/out")"
	grep -Eq -- "$want" "$TL_TMP/out" || tl_fail "tallyd $*: output lacks /$want/: $(cat "$TL_TMP/out")"
}
refused 'unknown key "log.segmnt.bytes".*did you mean "log.segment.bytes"' --override log.segmnt.bytes=1
refused 'num.partitions.*abc' --override num.partitions=abc
refused 'TALLY_TEST_FAULTS' --override test.fault.drop.produce.response.ratio=0.5
refused 'unknown argument "--bogus"' --bogus
refused '/nonexistent' --config "$TL_TMP/nonexistent"
[ ! -e "$TL_TMP/never" ] || tl_fail "a refused start-up created log.dirs"

kc()
{
	kcat -b "$TL_BROKER" -X topic.metadata.propagation.max.ms=1000 "$@"
}

# Unknown topic, auto-create off.
tl_start_broker --override auto.create.topics.enable=false --override message.max.bytes=2000
out=$(kc -L -t nope 2>&1) || true
grep -q 'topic "nope" with 0 partitions: Broker: Unknown topic or partition' <<<"$out" ||
	tl_fail "kcat -L on an unknown topic: want UNKNOWN_TOPIC_OR_PARTITION: $out"
out=$(echo hi | kc -P -t nope 2>&1) && tl_fail "kcat -P to an unknown topic succeeded: $out"
grep -q 'Unknown topic or partition' <<<"$out" || tl_fail "kcat -P to an unknown topic: $out"
out=$(timeout 20 kcat -C -b "$TL_BROKER" -t nope -e 2>&1) && tl_fail "kcat -C on an unknown topic succeeded: $out"
grep -q 'Unknown topic or partition' <<<"$out" || tl_fail "kcat -C on an unknown topic: $out"
ls -d "$TL_DATA"/nope-* >/dev/null 2>&1 && tl_fail "an unknown topic was created with auto-create off"
tl_stop_broker

# Auto-create on.
tl_start_broker --override message.max.bytes=2000
out=$(kc -L -t 'bad topic!' 2>&1) || true
grep -q 'with 0 partitions: Broker: Invalid topic' <<<"$out" ||
	tl_fail "kcat -L on an invalid topic name: want INVALID_TOPIC_EXCEPTION: $out"
# A full metadata refresh that lists every topic but this one can come first;
# librdkafka then declares it missing itself (Local: Unknown topic) once
# topic.metadata.propagation.max.ms has passed: long enough for its own request.
out=$(echo hi | kc -P -t 'bad topic!' -X topic.metadata.propagation.max.ms=15000 2>&1) &&
	tl_fail "kcat -P to an invalid topic name succeeded"
grep -q 'Invalid topic' <<<"$out" || tl_fail "kcat -P to an invalid topic name: $out"

out=$(head -c 5000 /dev/zero | tr '\0' a | kc -P -t big 2>&1) && tl_fail "a 5000-byte record passed message.max.bytes=2000"
grep -q 'Message size too large' <<<"$out" || tl_fail "kcat -P of a too-large record: $out"
echo small | kc -P -t big || tl_fail "kcat -P of a small record after a refused one failed"
got=$(kcat -C -q -b "$TL_BROKER" -t big -o beginning -e -X fetch.wait.max.ms=10 -f '%o %s\n')
[ "$got" = "0 small" ] || tl_fail "topic big holds \"$got\", want \"0 small\""

out=$(timeout 20 kcat -C -b "$TL_BROKER" -t big -o 100 -e -X auto.offset.reset=error 2>&1) &&
	tl_fail "fetching offset 100 of a 1-record topic succeeded: $out"
grep -q 'Offset out of range' <<<"$out" || tl_fail "fetch past the end: $out"
tl_stop_broker
