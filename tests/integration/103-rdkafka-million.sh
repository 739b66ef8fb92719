#!/usr/bin/env bash
# librdkafka round trip: 1,000,000 records (acks=all, compression.type=zstd) into a
# 4-partition topic, then consumed back by partition assignment (no group) and checked
# record by record: key, header and value byte-exact, each partition in send order
# from offset 0 with no gap or duplicate (see tests/progs/rdk_produce_consume.c).
# A second, smaller run does the same with enable.idempotence=true and lz4.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog rdk_produce_consume

count=1000000
[ "$TL_LONG" = 1 ] && count=5000000

tl_start_broker --override num.partitions=4
prog=$TL_PROGS/rdk_produce_consume

tl_log "zstd, acks=all: $count records"
"$prog" -b "$TL_BROKER" -t million-zstd -n "$count" -p 4 -s 200 -z zstd -a all >&2 ||
	tl_fail "rdk_produce_consume (zstd) failed"

tl_log "lz4, idempotent: 100000 records"
"$prog" -b "$TL_BROKER" -t idempotent-lz4 -n 100000 -p 4 -s 200 -z lz4 -a all -I >&2 ||
	tl_fail "rdk_produce_consume (idempotent lz4) failed"

# Everything is still there, in order, after a clean restart.
tl_stop_broker
tl_start_broker
tl_log "consume again after restart"
"$prog" -b "$TL_BROKER" -t million-zstd -n "$count" -p 4 -s 200 -m consume >&2 ||
	tl_fail "rdk_produce_consume (consume after restart) failed"
tl_stop_broker
