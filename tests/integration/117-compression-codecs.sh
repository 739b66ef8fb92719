#!/usr/bin/env bash
# Every Kafka codec both ways between Tally's clients and librdkafka (issue #20):
# (1) kcat writes gzip, snappy, lz4 and zstd batches; tally tail (libtally's consumer)
#     reads every record back, in order, and `tally log dump` shows the codec stored.
# (2) tally produce writes each codec (libtally's encoders: gzip, xerial-framed snappy,
#     an LZ4 frame, zstd); the broker validates them and kcat (librdkafka's decoders)
#     reads every record back.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }

tl_start_broker --override num.partitions=1
for codec in gzip snappy lz4 zstd; do
	seq 1 20000 | sed "s/^/$codec-from-kcat-/" |
		timeout 60 kcat -P -b "$TL_BROKER" -t "k-$codec" -z "$codec" -X linger.ms=50 ||
		tl_fail "kcat -z $codec produce failed"
	tally tail "k-$codec" -o beginning -e >"$TL_TMP/k-$codec" ||
		tl_fail "tally tail could not read kcat's $codec batches"
	seq 1 20000 | sed "s/^/$codec-from-kcat-/" | cmp -s - "$TL_TMP/k-$codec" ||
		tl_fail "tally tail of kcat's $codec batches: $(wc -l <"$TL_TMP/k-$codec") lines, not the 20000 sent in order"
	"$TL_BIN/tally" log dump "$TL_DATA/k-$codec-0" | grep -q "codec $codec" ||
		tl_fail "the log of k-$codec holds no $codec batch"

	seq 1 20000 | sed "s/^/$codec-from-tally-/" | tally produce "t-$codec" -z "$codec" ||
		tl_fail "tally produce -z $codec failed"
	timeout 60 kcat -C -q -b "$TL_BROKER" -t "t-$codec" -o beginning -e >"$TL_TMP/t-$codec" ||
		tl_fail "kcat could not read libtally's $codec batches"
	seq 1 20000 | sed "s/^/$codec-from-tally-/" | cmp -s - "$TL_TMP/t-$codec" ||
		tl_fail "kcat read $(wc -l <"$TL_TMP/t-$codec") lines of libtally's $codec batches, not the 20000 sent in order"
	"$TL_BIN/tally" log dump "$TL_DATA/t-$codec-0" | grep -q "codec $codec" ||
		tl_fail "the log of t-$codec holds no $codec batch"
	tl_log "$codec: kcat -> tally tail and tally produce -> kcat, 20000 records each"
done
"$TL_BIN/tally" log check "$TL_DATA/t-snappy-0" >&2 || tl_fail "tally log check of t-snappy failed"
tl_log "ok"
