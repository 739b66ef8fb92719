#!/usr/bin/env bash
# examples/producer.c, built by make against libtally.so: lines from stdin become
# records that kcat reads back in order. examples/consumer.c, a group member, prints
# them, told of its partition by the rebalance callback, and on SIGTERM is told it is
# revoked, commits and exits 0; a second run in the group prints exactly the lines sent
# after (from the committed offset). Also checks that libtally.so exports only the
# public API (tl_producer_*, tl_consumer_*, tl_admin_*, tl_err_*).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
example=$TL_ROOT/build/release/examples/producer
consumer=$TL_ROOT/build/release/examples/consumer
lib=$TL_ROOT/build/lib/libtally.so
[ -x "$example" ] || tl_fail "$example is missing (make release)"
[ -x "$consumer" ] || tl_fail "$consumer is missing (make release)"
[ -f "$lib" ] || tl_fail "$lib is missing (make release)"
[ -f "$TL_ROOT/build/lib/libtally.a" ] || tl_fail "build/lib/libtally.a is missing (make release)"

bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sed 's/@.*//' |
	grep -Ev '^(tl_producer_|tl_consumer_|tl_admin_|tl_err_)' || true)
[ -z "$bad" ] || tl_fail "libtally.so exports more than the public API: $(echo $bad | head -c 300)"

tl_start_broker --override num.partitions=1
seq 1 1000 | sed 's/^/line-/' >"$TL_TMP/in"
timeout 60 "$example" "$TL_BROKER" example-lines <"$TL_TMP/in" || tl_fail "examples/producer failed"
timeout 60 kcat -C -b "$TL_BROKER" -t example-lines -p 0 -e -q >"$TL_TMP/out" ||
	tl_fail "kcat -C failed"
cmp -s "$TL_TMP/in" "$TL_TMP/out" || tl_fail "kcat read other lines than the example sent"

# Runs examples/consumer in group ex until it printed $1 lines into $2, then SIGTERM.
consume()
{
	local want=$1 out=$2 pid deadline=$((SECONDS + 60)) rc=0
	"$consumer" "$TL_BROKER" ex example-lines >"$out" 2>"$out.err" &
	pid=$!
	until [ "$(wc -l <"$out")" -ge "$want" ]; do
		[ $SECONDS -lt $deadline ] || { cat "$out.err" >&2; tl_fail "examples/consumer printed $(wc -l <"$out") of $want lines"; }
		kill -0 "$pid" 2>/dev/null || { cat "$out.err" >&2; tl_fail "examples/consumer exited early"; }
		sleep 0.1
	done
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	cat "$out.err" >&2
	[ $rc -eq 0 ] || tl_fail "examples/consumer exited with $rc after SIGTERM (want 0)"
	grep -qx 'assigned example-lines \[0\]' "$out.err" || tl_fail "the consumer was not told its partition"
	grep -qx 'revoked example-lines \[0\]' "$out.err" || tl_fail "the consumer was not told its partition went at exit"
}
consume 1000 "$TL_TMP/c1"
cmp -s "$TL_TMP/in" "$TL_TMP/c1" || tl_fail "examples/consumer printed other lines than were sent"
seq 1001 1500 | sed 's/^/line-/' >"$TL_TMP/in2"
timeout 60 "$example" "$TL_BROKER" example-lines <"$TL_TMP/in2" || tl_fail "examples/producer failed"
consume 500 "$TL_TMP/c2"
cmp -s "$TL_TMP/in2" "$TL_TMP/c2" || tl_fail "the second run did not print exactly the lines sent after the first's commit"
tl_stop_broker
tl_log "ok"
