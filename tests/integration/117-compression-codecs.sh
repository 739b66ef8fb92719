#!/usr/bin/env bash
# Every Kafka codec both ways between Tally's clients and librdkafka (issue #20):
# (1) kcat writes gzip, snappy, lz4 and zstd batches; tally tail (libtally's consumer)
#     reads every record back, in order, and `tally log dump` shows the codec stored.
# (2) tally produce writes each codec (libtally's encoders: gzip, xerial-framed snappy,
#     an LZ4 frame, zstd); the broker validates them and kcat (librdkafka's decoders)
#     reads every record back.
# (3) A topic's compression.type recompresses as Kafka's LogValidator does: kcat's gzip
#     batches are stored as zstd (or uncompressed), idempotence intact, and a changed
#     compression.type (tally topic alter) takes effect for the next batch; a codec
#     Kafka does not know is refused with INVALID_CONFIG naming the choices; a Produce
#     v2 whose second batch is too large once recompressed stores neither (rawproto
#     batches-whole).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rawproto
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
	"$TL_BIN/tally" log dump "$TL_DATA/k-$codec-0" >"$TL_TMP/dump"
	grep -q "codec $codec" "$TL_TMP/dump" ||
		tl_fail "the log of k-$codec holds no $codec batch"

	seq 1 20000 | sed "s/^/$codec-from-tally-/" | tally produce "t-$codec" -z "$codec" ||
		tl_fail "tally produce -z $codec failed"
	timeout 60 kcat -C -q -b "$TL_BROKER" -t "t-$codec" -o beginning -e >"$TL_TMP/t-$codec" ||
		tl_fail "kcat could not read libtally's $codec batches"
	seq 1 20000 | sed "s/^/$codec-from-tally-/" | cmp -s - "$TL_TMP/t-$codec" ||
		tl_fail "kcat read $(wc -l <"$TL_TMP/t-$codec") lines of libtally's $codec batches, not the 20000 sent in order"
	"$TL_BIN/tally" log dump "$TL_DATA/t-$codec-0" >"$TL_TMP/dump"
	grep -q "codec $codec" "$TL_TMP/dump" ||
		tl_fail "the log of t-$codec holds no $codec batch"
	tl_log "$codec: kcat -> tally tail and tally produce -> kcat, 20000 records each"
done
"$TL_BIN/tally" log check "$TL_DATA/t-snappy-0" >&2 || tl_fail "tally log check of t-snappy failed"

tally topic create recomp -p 1 -c compression.type=zstd >&2
seq 1 5000 | sed 's/^/recomp-/' |
	timeout 60 kcat -P -b "$TL_BROKER" -t recomp -z gzip -X enable.idempotence=true || tl_fail "kcat into recomp failed"
"$TL_BIN/tally" log dump "$TL_DATA/recomp-0" >"$TL_TMP/recomp.dump"
grep -q "codec zstd" "$TL_TMP/recomp.dump" || tl_fail "compression.type=zstd stored no zstd batch"
grep -q "codec gzip" "$TL_TMP/recomp.dump" && tl_fail "compression.type=zstd stored a gzip batch"
grep -Eq "producerId [0-9]+ producerEpoch 0 baseSequence 0 " "$TL_TMP/recomp.dump" ||
	tl_fail "the recompressed batch lost its producer id or sequence"
tally topic alter recomp -c compression.type=uncompressed >&2
seq 5001 6000 | sed 's/^/recomp-/' | timeout 60 kcat -P -b "$TL_BROKER" -t recomp -z lz4 ||
	tl_fail "kcat into recomp (uncompressed) failed"
"$TL_BIN/tally" log dump "$TL_DATA/recomp-0" | grep baseOffset | tail -n 1 | grep -q "codec none" ||
	tl_fail "after compression.type=uncompressed the last batch is not uncompressed"
timeout 60 kcat -C -q -b "$TL_BROKER" -t recomp -o beginning -e >"$TL_TMP/recomp"
seq 1 6000 | sed 's/^/recomp-/' | cmp -s - "$TL_TMP/recomp" || tl_fail "recomp does not read back the 6000 records in order"
"$TL_BIN/tally" log check "$TL_DATA/recomp-0" >&2 || tl_fail "tally log check of recomp failed"
rc=0
tally topic create badcodec -c compression.type=brotli >"$TL_TMP/bad.out" 2>&1 || rc=$?
cat "$TL_TMP/bad.out" >&2
[ $rc -ne 0 ] && grep -q "producer, uncompressed, gzip, snappy, lz4, zstd" "$TL_TMP/bad.out" ||
	tl_fail "compression.type=brotli was not refused with the list of codecs"
tl_log "compression.type recompresses: gzip -> zstd, lz4 -> uncompressed after an alter"
# A Produce v2 of two batches whose second, stored uncompressed, passes
# max.message.bytes: MESSAGE_TOO_LARGE and nothing of it stored (all or none).
tally topic create whole -c compression.type=uncompressed -c max.message.bytes=4000 >&2
timeout 60 "$TL_PROGS/rawproto" "$TL_BROKER" batches-whole whole >&2 ||
	tl_fail "a partition kept part of a refused request's batches"
tl_log "ok"
