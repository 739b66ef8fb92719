#!/usr/bin/env bash
# Group administration and bad input:
#   (1) DescribeGroups (librdkafka admin API) of a Stable group shows both members,
#       their client id and host, and assignments that cover the topic's 4 partitions
#       once each;
#   (2) DeleteGroups of a group with members fails with NON_EMPTY_GROUP;
#   (3) once the members left it is Empty, keeps its committed offsets, and
#       DeleteGroups removes it with its offsets: OffsetFetch finds none, also after a
#       kill -9 and restart (the tombstones were durable), and the group is Dead;
#   (4) JoinGroup with malformed consumer subscription metadata is answered with
#       INVALID_REQUEST (42), five kinds of it on one connection, and a well-formed
#       join on that same connection still gets MEMBER_ID_REQUIRED (79): no crash, no
#       disconnect;
#   (5) __consumer_offsets is internal: Metadata lists it, produce to it is refused.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_group

topic=grp-admin
group=grp-admin-g
tl_start_broker --override num.partitions=4 --override group.initial.rebalance.delay.ms=0
for p in 0 1 2 3; do
	seq 1 20 | kcat -P -b "$TL_BROKER" -t "$topic" -p "$p" 2>"$TL_TMP/produce.err" ||
		tl_fail "kcat -P failed: $(cat "$TL_TMP/produce.err")"
done

rdk() { timeout 30 "$TL_PROGS/rdk_group" "$@" -b "$TL_BROKER" -g "$group"; }
wait_for() # SECONDS WHAT COMMAND...
{
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$(($(date +%s%N) + limit * 1000000000))
	until "$@"; do
		[ "$(date +%s%N)" -lt "$deadline" ] || tl_fail "not within ${limit}s: $what"
		sleep 0.1
	done
}
stable_with_two()
{
	rdk describe >"$TL_TMP/describe" 2>&1 || return 1
	grep -q "^group $group state Stable members 2$" "$TL_TMP/describe" &&
		[ "$(grep -c '^member .* assignment .\+' "$TL_TMP/describe")" -eq 2 ]
}

for c in a b; do
	"$TL_PROGS/rdk_group" consume -b "$TL_BROKER" -g "$group" -t "$topic" \
		>"$TL_TMP/$c.out" 2>"$TL_TMP/$c.err" &
	eval "pid_$c=$!"
done

# (1)
wait_for 30 "DescribeGroups shows a Stable group with two assigned members" stable_with_two
cat "$TL_TMP/describe" >&2
grep -c '^member rdk_group-[0-9a-f]* client rdk_group host /127.0.0.1 ' "$TL_TMP/describe" |
	grep -qx 2 || tl_fail "members lack their id, client id or host"
awk '$1 == "member" { print $8 }' "$TL_TMP/describe" | tr ',' '\n' | sort >"$TL_TMP/assigned"
printf '%s\n' "$topic":{0,1,2,3} | sort >"$TL_TMP/want"
cmp -s "$TL_TMP/assigned" "$TL_TMP/want" ||
	tl_fail "assignments cover $(paste -sd' ' "$TL_TMP/assigned"), want each of 4 partitions once"

# (2)
rdk delete >"$TL_TMP/delete1" 2>&1 || true
grep -q "^delete-error $group NON_EMPTY_GROUP$" "$TL_TMP/delete1" ||
	tl_fail "DeleteGroups of a live group: $(cat "$TL_TMP/delete1"), want NON_EMPTY_GROUP"

# (3) both read everything, then leave, committing what they read on the way out
all_read() { [ "$(cat "$TL_TMP/a.out" "$TL_TMP/b.out" | grep -c '^record ')" -ge 80 ]; }
wait_for 30 "the two consumers read all 80 records" all_read
kill -TERM "$pid_a" "$pid_b"
wait "$pid_a" || tl_fail "consumer a failed: $(cat "$TL_TMP/a.err")"
wait "$pid_b" || tl_fail "consumer b failed: $(cat "$TL_TMP/b.err")"
rdk describe >"$TL_TMP/describe" 2>&1
grep -q "^group $group state Empty members 0$" "$TL_TMP/describe" ||
	tl_fail "after both left: $(cat "$TL_TMP/describe"), want Empty"
rdk committed -t "$topic" -p 4 >"$TL_TMP/committed" 2>&1 || tl_fail "OffsetFetch failed"
[ "$(awk '$3 == 20' "$TL_TMP/committed" | wc -l)" -eq 4 ] ||
	tl_fail "the empty group should keep 4 committed offsets: $(paste -sd' ' "$TL_TMP/committed")"
rdk delete >"$TL_TMP/delete2" 2>&1 || tl_fail "DeleteGroups failed: $(cat "$TL_TMP/delete2")"
grep -q "^deleted $group$" "$TL_TMP/delete2" || tl_fail "DeleteGroups: $(cat "$TL_TMP/delete2")"
no_offsets()
{
	rdk committed -t "$topic" -p 4 >"$TL_TMP/committed" 2>&1 || tl_fail "OffsetFetch failed"
	[ "$(awk '$3 == -1001' "$TL_TMP/committed" | wc -l)" -eq 4 ] ||
		tl_fail "$1: offsets remain: $(paste -sd' ' "$TL_TMP/committed")"
	rdk describe >"$TL_TMP/describe" 2>&1
	grep -q "^group $group state Dead members 0$" "$TL_TMP/describe" ||
		tl_fail "$1: $(cat "$TL_TMP/describe"), want Dead"
}
no_offsets "after DeleteGroups"
rdk delete >"$TL_TMP/delete3" 2>&1 || true
grep -q "^delete-error $group GROUP_ID_NOT_FOUND$" "$TL_TMP/delete3" ||
	tl_fail "DeleteGroups of a deleted group: $(cat "$TL_TMP/delete3"), want GROUP_ID_NOT_FOUND"
tl_kill9_broker
tl_start_broker
no_offsets "after DeleteGroups and kill -9"

# (4)
rdk badjoin >"$TL_TMP/badjoin" 2>&1 || tl_fail "badjoin failed: $(cat "$TL_TMP/badjoin")"
cat "$TL_TMP/badjoin" >&2
[ "$(grep -c '^badjoin .* error 42$' "$TL_TMP/badjoin")" -eq 5 ] ||
	tl_fail "malformed subscriptions were not all refused with INVALID_REQUEST"
grep -q '^badjoin valid error 79$' "$TL_TMP/badjoin" ||
	tl_fail "a valid join after the malformed ones did not get MEMBER_ID_REQUIRED"
tl_broker_alive || tl_fail "tallyd died on malformed member metadata"

# (5)
kcat -L -b "$TL_BROKER" -t __consumer_offsets >"$TL_TMP/meta" 2>&1 || true
grep -q 'topic "__consumer_offsets" with 8 partitions' "$TL_TMP/meta" ||
	tl_fail "Metadata does not list __consumer_offsets with 8 partitions: $(head -n 3 "$TL_TMP/meta")"
echo intruder | timeout 20 kcat -P -b "$TL_BROKER" -t __consumer_offsets -p 0 \
	-X message.timeout.ms=5000 >"$TL_TMP/intrude" 2>&1 || true
grep -qi 'invalid topic\|INVALID_TOPIC' "$TL_TMP/intrude" ||
	tl_fail "a produce to __consumer_offsets was not refused: $(cat "$TL_TMP/intrude")"
tl_stop_broker
tl_start_broker
tl_grep_log 'offsets topic replayed partitions=8 records=[0-9]+ skipped=0' ||
	tl_fail "the offsets topic did not replay cleanly after the refused produce"
tl_stop_broker
