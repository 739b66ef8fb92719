#!/usr/bin/env bash
# AlterClientQuotas / DescribeClientQuotas on the wire (tests/progs/quota_raw, v0 and
# v1) and through `tally quota set|list|delete`: set, describe with filters, remove; bad input (unknown key, negative rate,
# fractional byte rate, unknown entity type) refused with INVALID_REQUEST and a message;
# validate-only changes nothing; the quotas survive a restart. Then a pre-KIP-219
# client (Produce v5) over its quota gets throttle_time_ms > 0 and its answer is held
# for that long, while another client id is answered at once.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog quota_raw
raw() { timeout 20 "$TL_PROGS/quota_raw" "$TL_BROKER" "$@"; }

tl_start_broker
"$TL_BIN/tally" -b "$TL_BROKER" topic create qa -p 1 >/dev/null 2>&1 || tl_fail "topic create"

tl_log "set and describe"
[ "$(raw 1 alter client-id=slow producer_byte_rate=50000)" = ok ] || tl_fail "alter client-id=slow"
[ "$(raw 0 alter user=alice,client-id='<default>' consumer_byte_rate=2048 request_percentage=12.5)" = ok ] ||
	tl_fail "alter user+default client (v0)"
[ "$(raw 1 alter client-id='<default>' producer_byte_rate=50000000)" = ok ] || tl_fail "alter default client"
out=$(raw 1 describe)
[ "$(wc -l <<<"$out")" = 3 ] || tl_fail "describe all: $out"
grep -qx 'client-id=slow producer_byte_rate=50000' <<<"$out" || tl_fail "describe all: $out"
grep -qx 'user=alice client-id=<default> consumer_byte_rate=2048 request_percentage=12.5' <<<"$out" || tl_fail "describe all: $out"
[ "$(raw 0 describe client-id=slow)" = 'client-id=slow producer_byte_rate=50000' ] || tl_fail "describe exact: $(raw 0 describe client-id=slow)"
[ "$(raw 1 describe -s client-id='*' | wc -l)" = 2 ] || tl_fail "strict client-id=*: $(raw 1 describe -s client-id='*')"
[ "$(raw 1 describe user='<default>')" = '' ] || tl_fail "no default user entity"

tl_log "bad input"
raw 1 alter client-id=x producer_byte_ratee=1 | grep -q '^error 42 Unknown quota configuration key: producer_byte_ratee' ||
	tl_fail "unknown key: $(raw 1 alter client-id=x producer_byte_ratee=1)"
raw 1 alter client-id=x producer_byte_rate=-5 | grep -q '^error 42 Invalid value -5 .*must be positive' ||
	tl_fail "negative rate: $(raw 1 alter client-id=x producer_byte_rate=-5)"
raw 1 alter client-id=x producer_byte_rate=1.5 | grep -q '^error 42 .*whole number' || tl_fail "fractional byte rate"
raw 1 alter group=x producer_byte_rate=1 | grep -q '^error 42 Unknown quota entity type: group' || tl_fail "unknown entity type"
[ "$(raw 1 alter -n client-id=x producer_byte_rate=7)" = ok ] || tl_fail "validate-only"
[ "$(raw 1 describe client-id=x)" = '' ] || tl_fail "validate-only or refused alters changed something"

tl_log "tally quota"
tally() { timeout 20 "$TL_BIN/tally" -b "$TL_BROKER" "$@"; }
tally quota set --user bob --client-id-default producer_byte_rate=4096 || tl_fail "tally quota set"
tally quota list | grep -qP '^bob\t<default>\tproducer_byte_rate\t4096$' || tl_fail "tally quota list: $(tally quota list)"
[ "$(raw 1 describe user=bob)" = 'user=bob client-id=<default> producer_byte_rate=4096' ] || tl_fail "the CLI's quota on the wire: $(raw 1 describe user=bob)"
err=$(tally quota set --client-id x producer_byte_rate=-1 2>&1) && tl_fail "the CLI set a negative rate"
grep -q 'INVALID_REQUEST: Invalid value -1 .*must be positive' <<<"$err" || tl_fail "the CLI's message: $err"
err=$(tally quota set --client-id x colour=1 2>&1) && tl_fail "the CLI set an unknown key"
grep -q 'Unknown quota configuration key: colour' <<<"$err" || tl_fail "the CLI's message: $err"
tally quota delete --user bob --client-id-default || tl_fail "tally quota delete"
[ "$(raw 1 describe user=bob)" = '' ] || tl_fail "tally quota delete left: $(raw 1 describe user=bob)"
rc=0; tally quota delete --user bob 2>/dev/null || rc=$?
[ "$rc" = 3 ] || tl_fail "deleting a quota that is not there: exit $rc, want 3"

tl_log "restart"
tl_stop_broker
tl_start_broker
[ "$(raw 1 describe | sort)" = "$(sort <<<"$out")" ] || tl_fail "after a restart: $(raw 1 describe)"
[ "$(raw 1 alter client-id='<default>' producer_byte_rate=-)" = ok ] || tl_fail "remove"
[ "$(raw 1 describe | wc -l)" = 2 ] || tl_fail "remove left: $(raw 1 describe)"

# 100 kB over the 1 s floor is 100000 B/s: (100000 - 50000) / 50000 * 1 s = 1000 ms.
tl_log "throttling a pre-KIP-219 client"
read -r t d < <(raw 1 produce-old slow qa | sed -E 's/throttle_ms=([0-9]+) delay_ms=([0-9]+)/\1 \2/')
[ "$t" -gt 0 ] || tl_fail "over its quota, Produce v5 got throttle_time_ms=$t"
[ "$d" -ge $((t * 9 / 10)) ] || tl_fail "the answer came after $d ms, the throttle was $t ms"
read -r t2 d2 < <(raw 1 produce-old other qa | sed -E 's/throttle_ms=([0-9]+) delay_ms=([0-9]+)/\1 \2/')
[ "$t2" = 0 ] || tl_fail "another client id was throttled ($t2 ms)"
tl_log "slow: throttle_ms=$t delay_ms=$d; other: throttle_ms=$t2 delay_ms=$d2"

# consumer_byte_rate: 400 kB read by kcat with client.id slowc at 200000 B/s takes
# at least 1 s (one window's worth comes at once, Kafka caps a fetch there); another
# client id reads it at once.
tl_log "consumer_byte_rate"
tl_require_cmd kcat
v=$(printf '%01000d' 0)
for i in $(seq 400); do echo "$v"; done |
	kcat -P -b "$TL_BROKER" -t qf -p 0 -X linger.ms=20 || tl_fail "kcat produce"
[ "$(raw 1 alter client-id=slowc consumer_byte_rate=200000)" = ok ] || tl_fail "alter consumer_byte_rate"
consume() {
	local start=$(date +%s%N) n
	n=$(timeout 30 kcat -C -q -b "$TL_BROKER" -t qf -p 0 -o beginning -e -X client.id="$1" -f '%o\n' | wc -l)
	echo "$n $((($(date +%s%N) - start) / 1000000))"
}
read -r n_slow ms_slow < <(consume slowc)
read -r n_fast ms_fast < <(consume fastc)
tl_log "slowc: $n_slow records in $ms_slow ms; fastc: $n_fast records in $ms_fast ms"
[ "$n_slow" = 400 ] && [ "$n_fast" = 400 ] || tl_fail "consumers read $n_slow and $n_fast records, not 400"
[ "$ms_slow" -ge 900 ] || tl_fail "the throttled consumer read 400 kB in $ms_slow ms (quota 200000 B/s)"
# kcat's start-up is in both times and grows with the machine's load (1.9 s with other
# tests beside it): compare the difference, which the throttle alone makes.
[ $((ms_slow - ms_fast)) -ge 900 ] ||
	tl_fail "the unthrottled consumer took $ms_fast ms, the throttled one $ms_slow ms"
tl_stop_broker
