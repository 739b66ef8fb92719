#!/usr/bin/env bash
# examples/producer.c, built by make against libtally.so: lines from stdin become
# records that kcat reads back in order. Also checks that libtally.so exports only the
# public API (tl_producer_*, tl_consumer_*, tl_admin_*, tl_err_*).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
example=$TL_ROOT/build/release/examples/producer
lib=$TL_ROOT/build/lib/libtally.so
[ -x "$example" ] || tl_fail "$example is missing (make release)"
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
tl_stop_broker
tl_log "ok"
