#!/usr/bin/env bash
# libtally against other clients (tests/progs/tally_interop.c, kcat): records produced by
# librdkafka (partitioner=murmur2_random, the Java client's) are read back by the
# libtally consumer and vice versa, byte-exact with headers, each on the partition the
# other client's murmur2 gives its key. kcat then reads libtally's topic and must see
# every key on the partition tl_producer_partition_for_key computes; records kcat
# produces with murmur2_random are read by libtally, each on its key's partition.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog tally_interop
tl_require_cmd kcat

count=20000
[ "$TL_LONG" = 1 ] && count=200000
prog=$TL_PROGS/tally_interop
tl_start_broker

tl_log "librdkafka -> libtally: $count records, zstd, 5 partitions"
timeout 120 "$prog" -b "$TL_BROKER" -t rdk-to-tally -m rdk2tally -n "$count" -p 5 -z zstd >&2 ||
	tl_fail "records produced by librdkafka did not come back right through libtally"

tl_log "libtally -> librdkafka: $count records, zstd, 5 partitions"
timeout 120 "$prog" -b "$TL_BROKER" -t tally-to-rdk -m tally2rdk -n "$count" -p 5 -z zstd >&2 ||
	tl_fail "records produced by libtally did not come back right through librdkafka"

tl_log "kcat reads libtally's topic"
timeout 60 kcat -C -b "$TL_BROKER" -t tally-to-rdk -e -q -f '%p %k\n' | sort >"$TL_TMP/kcat-keys" ||
	tl_fail "kcat -C failed"
"$prog" -m keys -n "$count" -p 5 | sort >"$TL_TMP/want-keys"
cmp -s "$TL_TMP/kcat-keys" "$TL_TMP/want-keys" ||
	tl_fail "kcat sees other (partition, key) pairs than libtally's partitioner: $(diff "$TL_TMP/want-keys" "$TL_TMP/kcat-keys" | head -5)"

tl_log "kcat (murmur2_random) -> libtally: $count keyed records into 7 partitions"
kcat_topic=kcat-to-tally
timeout 60 "$prog" -b "$TL_BROKER" -t "$kcat_topic" -m create -p 7 >&2 ||
	tl_fail "tl_admin_create_topic failed"
awk -v n="$count" 'BEGIN { for (i = 0; i < n; i++) printf "k%d:value-%d\n", i, i }' >"$TL_TMP/kcat-in"
timeout 120 kcat -P -b "$TL_BROKER" -t "$kcat_topic" -K: -X partitioner=murmur2_random \
	-X topic.partitioner=murmur2_random -l "$TL_TMP/kcat-in" 2>"$TL_TMP/kcat.err" ||
	tl_fail "kcat -P failed: $(cat "$TL_TMP/kcat.err")"
timeout 120 "$prog" -b "$TL_BROKER" -t "$kcat_topic" -m check -n "$count" -p 7 >&2 ||
	tl_fail "records kcat produced are not on the partitions libtally's murmur2 gives"
tl_stop_broker
tl_log "ok"
