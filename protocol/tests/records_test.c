/* records_test.c - RecordBatch v2 builder, iterator and control markers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/tests/check_run.h"
#include "protocol/batch.h"
#include "protocol/records.h"
#include "protocol/validate.h"

static size_t hex_decode(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (const char *p = hex; *p; p++) {
		int v;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			ck_assert_uint_lt(n, cap);
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

static struct tl_bytes bytes_of(const char *s)
{
	struct tl_bytes b = {(const uint8_t *)s, s ? (int32_t)strlen(s) : -1};
	return b;
}

/* A data batch made with kafkajs 2.2.4's encoder (src/protocol/recordBatch/v0), its CRC
 * checked by an independent bit-wise CRC-32C. */
static const char *vector_data =
	"0000000000000000 00000048 ffffffff 02 a3a4e714 0000 00000001"
	"0000018bcfe56800 0000018bcfe56805 ffffffffffffffff ffff ffffffff 00000002"
	"1a 00 00 00 02 6b 04 6869 02 02 68 02 76"
	"10 00 0a 02 01 04 796f 00";

static const char *vector_commit =
	"000000000000000a 00000042 ffffffff 02 fc84b034 0030 00000000"
	"0000018bcfe56800 0000018bcfe56800 00000000000003e8 0000 ffffffff 00000001"
	"20 00 00 00 08 00000001 0c 000000000005 00";

START_TEST(builder_matches_kafkajs_vector_byte_for_byte)
{
	uint8_t want[128];
	size_t want_len = hex_decode(vector_data, want, sizeof(want));
	ck_assert_uint_eq(want_len, 84);

	struct tl_records_builder b;
	tl_records_builder_init(&b, TL_COMPRESSION_NONE);
	struct tl_record_header h = {{"h", 1}, {(const uint8_t *)"v", 1}};
	struct tl_bytes null_key = {NULL, -1};
	ck_assert_int_eq(
		tl_records_builder_append(&b, 1700000000000, bytes_of("k"), bytes_of("hi"), &h, 1),
		TL_OK);
	ck_assert_int_eq(
		tl_records_builder_append(&b, 1700000000005, null_key, bytes_of("yo"), NULL, 0),
		TL_OK);
	struct tl_buf out;
	tl_buf_init(&out);
	ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &out), TL_OK);
	ck_assert_uint_eq(out.len, want_len);
	/* kafkajs writes partitionLeaderEpoch -1 like we do; compare every byte. */
	ck_assert_mem_eq(out.data, want, want_len);

	struct tl_batch_header hdr;
	ck_assert_int_eq(tl_batch_validate(out.data, out.len, &hdr, NULL), TL_OK);
	tl_buf_deinit(&out);
	tl_records_builder_deinit(&b);
}
END_TEST

/* The same two records as the kafkajs vector, with @compression. */
static void builder_of_vector(struct tl_records_builder *b, enum tl_compression compression)
{
	tl_records_builder_init(b, compression);
	struct tl_record_header h = {{"h", 1}, {(const uint8_t *)"v", 1}};
	struct tl_bytes null_key = {NULL, -1};
	ck_assert_int_eq(
		tl_records_builder_append(b, 1700000000000, bytes_of("k"), bytes_of("hi"), &h, 1),
		TL_OK);
	ck_assert_int_eq(
		tl_records_builder_append(b, 1700000000005, null_key, bytes_of("yo"), NULL, 0),
		TL_OK);
	tl_records_builder_set_producer(b, 5, 1, 7, false);
}

/* finish_move gives the bytes finish gives; uncompressed, in the builder's own memory
 * (no copy), leaving the builder empty and reusable. */
START_TEST(finish_move_equals_finish)
{
	static const enum tl_compression codecs[] = {TL_COMPRESSION_NONE, TL_COMPRESSION_ZSTD};
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		struct tl_records_builder b;
		builder_of_vector(&b, codecs[i]);
		struct tl_buf copied, moved;
		tl_buf_init(&copied);
		tl_buf_init(&moved);
		ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &copied), TL_OK);
		const uint8_t *built = b.records.data;
		ck_assert_int_eq(tl_records_builder_finish_move(&b, NULL, &moved), TL_OK);
		ck_assert_uint_eq(moved.len, copied.len);
		ck_assert_mem_eq(moved.data, copied.data, copied.len);
		if (codecs[i] == TL_COMPRESSION_NONE)
			ck_assert_ptr_eq(moved.data, built);
		ck_assert_int_eq(b.record_count, 0);
		ck_assert_uint_eq(tl_records_builder_bytes(&b), TL_BATCH_HEADER_BYTES);
		struct tl_batch_header hdr;
		ck_assert_int_eq(tl_batch_validate(moved.data, moved.len, &hdr, NULL), TL_OK);
		ck_assert_int_eq(hdr.producer_id, 5);
		ck_assert_int_eq(hdr.base_sequence, 7);
		ck_assert_int_eq(hdr.records_count, 2);
		/* The emptied builder takes records again. */
		ck_assert_int_eq(
			tl_records_builder_append(&b, 1, bytes_of("a"), bytes_of("b"), NULL, 0),
			TL_OK);
		tl_buf_reset(&copied);
		ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &copied), TL_OK);
		ck_assert_int_eq(tl_batch_validate(copied.data, copied.len, &hdr, NULL), TL_OK);
		ck_assert_int_eq(hdr.records_count, 1);
		tl_buf_deinit(&copied);
		tl_buf_deinit(&moved);
		tl_records_builder_deinit(&b);
	}
}
END_TEST

START_TEST(iterator_decodes_kafkajs_vector)
{
	uint8_t data[128];
	size_t len = hex_decode(vector_data, data, sizeof(data));
	struct tl_records_iter it;
	tl_records_iter_init(&it, data, len);
	struct tl_batch_header h;
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	ck_assert_int_eq(h.records_count, 2);
	struct tl_record r;
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_OK);
	ck_assert_int_eq(r.offset, 0);
	ck_assert_int_eq(r.timestamp_ms, 1700000000000);
	ck_assert_int_eq(r.key.len, 1);
	ck_assert_mem_eq(r.key.ptr, "k", 1);
	ck_assert_int_eq(r.value.len, 2);
	ck_assert_int_eq(r.header_count, 1);
	ck_assert_int_eq(r.headers[0].key.len, 1);
	ck_assert_mem_eq(r.headers[0].value.ptr, "v", 1);
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_OK);
	ck_assert_int_eq(r.offset, 1);
	ck_assert_int_eq(r.timestamp_ms, 1700000000005);
	ck_assert_int_eq(r.key.len, -1);
	ck_assert_mem_eq(r.value.ptr, "yo", 2);
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_ERR_NOT_FOUND);
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_ERR_NOT_FOUND);
	tl_records_iter_deinit(&it);
}
END_TEST

START_TEST(control_marker_matches_vector)
{
	uint8_t want[128];
	size_t want_len = hex_decode(vector_commit, want, sizeof(want));
	ck_assert_uint_eq(want_len, 78);
	struct tl_buf out;
	tl_buf_init(&out);
	ck_assert_int_eq(tl_records_control_marker_build(&out, true, 1000, 0, 5, 1700000000000),
			 TL_OK);
	ck_assert_uint_eq(out.len, 78);
	tl_batch_assign(out.data, 10, -1); /* the leader assigns the offset */
	ck_assert_mem_eq(out.data, want, want_len);

	struct tl_records_iter it;
	tl_records_iter_init(&it, out.data, out.len);
	struct tl_batch_header h;
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	ck_assert(tl_batch_is_control(&h));
	ck_assert(tl_batch_is_transactional(&h));
	struct tl_record r;
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_OK);
	ck_assert_int_eq(tl_records_control_type(&r), TL_CONTROL_COMMIT);
	ck_assert_int_eq(r.offset, 10);
	tl_records_iter_deinit(&it);

	tl_buf_reset(&out);
	ck_assert_int_eq(tl_records_control_marker_build(&out, false, 7, 3, 1, 5), TL_OK);
	tl_records_iter_init(&it, out.data, out.len);
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	ck_assert_int_eq(h.producer_id, 7);
	ck_assert_int_eq(h.producer_epoch, 3);
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_OK);
	ck_assert_int_eq(tl_records_control_type(&r), TL_CONTROL_ABORT);
	tl_records_iter_deinit(&it);
	tl_buf_deinit(&out);
}
END_TEST

/* Builds a batch of @n records "key-i" / "value-i" x @pad with header "i". */
static void build_numbered(struct tl_buf *out, enum tl_compression codec, int n, int pad,
			   int64_t pid, int32_t seq)
{
	struct tl_records_builder b;
	tl_records_builder_init(&b, codec);
	char key[32], hv[32];
	char *value = malloc((size_t)pad * 16 + 32);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(hv, sizeof(hv), "%d", i);
		int vl = 0;
		for (int j = 0; j < pad; j++)
			vl += snprintf(value + vl, 32, "value-%d", i);
		struct tl_record_header h[2] = {{{"idx", 3}, bytes_of(hv)},
						{{"nul", 3}, {NULL, -1}}};
		struct tl_bytes v = {(const uint8_t *)value, vl};
		ck_assert_int_eq(tl_records_builder_append(&b, 1000 + i, bytes_of(key), v, h, 2),
				 TL_OK);
	}
	tl_records_builder_set_producer(&b, pid, 2, seq, false);
	ck_assert_int_eq(tl_records_builder_finish(&b, NULL, out), TL_OK);
	tl_records_builder_deinit(&b);
	free(value);
}

static void check_numbered(struct tl_records_iter *it, int n, int pad, int64_t base)
{
	struct tl_record r;
	char key[32];
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(tl_records_iter_next(it, &r), TL_OK);
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_int_eq(r.key.len, (int)strlen(key));
		ck_assert_mem_eq(r.key.ptr, key, strlen(key));
		ck_assert_int_eq(r.offset, base + i);
		ck_assert_int_eq(r.timestamp_ms, 1000 + i);
		ck_assert_int_eq(r.header_count, 2);
		ck_assert_int_eq(r.headers[1].value.len, -1);
		char v[32];
		int vl = snprintf(v, sizeof(v), "value-%d", i);
		ck_assert_int_eq(r.value.len, vl * pad);
		ck_assert_mem_eq(r.value.ptr + (pad - 1) * vl, v, (size_t)vl);
	}
	ck_assert_int_eq(tl_records_iter_next(it, &r), TL_ERR_NOT_FOUND);
}

START_TEST(zstd_round_trip_of_many_batches)
{
	struct tl_buf blob;
	tl_buf_init(&blob);
	build_numbered(&blob, TL_COMPRESSION_ZSTD, 5000, 20, 42, 100);
	size_t first = blob.len;
	build_numbered(&blob, TL_COMPRESSION_NONE, 10, 1, -1, -1);
	build_numbered(&blob, TL_COMPRESSION_ZSTD, 1, 1, -1, -1);
	tl_batch_assign(blob.data + first, 5000, 0);
	/* Uncompressed, 5000 records are ~900 KB; zstd must shrink them a lot. */
	ck_assert_uint_lt(first, 100000);

	struct tl_batch_header h;
	ck_assert_int_eq(tl_batch_validate(blob.data, first, &h, NULL), TL_OK);
	ck_assert_int_eq(tl_batch_compression(&h), TL_COMPRESSION_ZSTD);

	struct tl_records_iter it;
	tl_records_iter_init(&it, blob.data, blob.len);
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	ck_assert_int_eq(h.producer_id, 42);
	ck_assert_int_eq(h.base_sequence, 100);
	check_numbered(&it, 5000, 20, 0);
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	check_numbered(&it, 10, 1, 5000);
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	check_numbered(&it, 1, 1, 0);
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_ERR_NOT_FOUND);
	tl_records_iter_deinit(&it);
	tl_buf_deinit(&blob);
}
END_TEST

START_TEST(partial_trailing_batch_ends_iteration)
{
	struct tl_buf blob;
	tl_buf_init(&blob);
	build_numbered(&blob, TL_COMPRESSION_NONE, 3, 1, -1, -1);
	size_t first = blob.len;
	build_numbered(&blob, TL_COMPRESSION_NONE, 3, 1, -1, -1);
	struct tl_records_iter it;
	tl_records_iter_init(&it, blob.data, first + 30);
	struct tl_batch_header h;
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	check_numbered(&it, 3, 1, 0);
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_ERR_NOT_FOUND);
	tl_records_iter_deinit(&it);
	tl_buf_deinit(&blob);
}
END_TEST

START_TEST(bad_crc_is_corrupt_message)
{
	struct tl_buf blob;
	tl_buf_init(&blob);
	build_numbered(&blob, TL_COMPRESSION_NONE, 3, 1, -1, -1);
	blob.data[blob.len - 1] ^= 1;
	struct tl_records_iter it;
	tl_records_iter_init(&it, blob.data, blob.len);
	struct tl_batch_header h;
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_ERR_CORRUPT_MESSAGE);
	tl_records_iter_deinit(&it);
	tl_buf_deinit(&blob);
}
END_TEST

/* Every codec both ways: the builder compresses as Kafka's Java client frames it, the
 * iterator (what libtally's consumer and the CLI read with) and the broker's validator
 * decompress it; 5000 records span several lz4 and snappy blocks. A corrupt body is
 * CORRUPT_MESSAGE, not a crash. */
START_TEST(every_codec_round_trips)
{
	const enum tl_compression codecs[] = {TL_COMPRESSION_GZIP, TL_COMPRESSION_SNAPPY,
					      TL_COMPRESSION_LZ4, TL_COMPRESSION_ZSTD};
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		struct tl_buf blob;
		tl_buf_init(&blob);
		build_numbered(&blob, codecs[i], 5000, 20, 42, 100);
		ck_assert_uint_lt(blob.len, 200000); /* ~900 KB uncompressed */
		struct tl_batch_header h;
		ck_assert_int_eq(tl_batch_validate(blob.data, blob.len, &h, NULL), TL_OK);
		ck_assert_int_eq(tl_batch_compression(&h), codecs[i]);
		struct tl_batch_scratch scratch;
		tl_batch_scratch_init(&scratch, 8u << 20);
		const char *why = NULL;
		ck_assert_int_eq(
			tl_batch_validate_records(blob.data, blob.len, &h, false, &scratch, &why),
			TL_OK);
		tl_batch_scratch_deinit(&scratch);
		struct tl_records_iter it;
		tl_records_iter_init(&it, blob.data, blob.len);
		ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
		check_numbered(&it, 5000, 20, 0);
		tl_records_iter_deinit(&it);

		/* Flip bytes in the middle of the compressed body, CRC fixed up. */
		size_t mid = TL_BATCH_HEADER_BYTES + (blob.len - TL_BATCH_HEADER_BYTES) / 2;
		for (size_t k = 0; k < 16; k++)
			blob.data[mid + k] ^= 0x5a;
		tl_batch_crc_update(blob.data, blob.len);
		tl_records_iter_init(&it, blob.data, blob.len);
		ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
		struct tl_record r;
		tl_err err;
		while ((err = tl_records_iter_next(&it, &r)) == TL_OK)
			;
		ck_assert_int_ne(err, TL_ERR_NOT_FOUND); /* lz4/snappy/gzip/zstd all detect it */
		tl_records_iter_deinit(&it);
		tl_buf_deinit(&blob);
	}
}
END_TEST

/* A compacted topic refuses a record without a key, as Kafka's LogValidator does, in a
 * plain and a compressed batch; keyed records pass, and other topics take null keys. */
START_TEST(null_key_is_invalid_record_only_when_a_key_is_required)
{
	const enum tl_compression codecs[] = {TL_COMPRESSION_NONE, TL_COMPRESSION_LZ4};
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		struct tl_records_builder b;
		tl_records_builder_init(&b, codecs[i]);
		struct tl_bytes v = bytes_of("v");
		ck_assert_int_eq(tl_records_builder_append(&b, 1000, bytes_of("k"), v, NULL, 0),
				 TL_OK);
		ck_assert_int_eq(tl_records_builder_append(&b, 1001, (struct tl_bytes){NULL, -1}, v,
							   NULL, 0),
				 TL_OK);
		struct tl_buf keyless, keyed;
		tl_buf_init(&keyless);
		tl_buf_init(&keyed);
		ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &keyless), TL_OK);
		tl_records_builder_deinit(&b);
		build_numbered(&keyed, codecs[i], 10, 1, -1, -1);
		struct tl_batch_header h, hk;
		ck_assert_int_eq(tl_batch_validate(keyless.data, keyless.len, &h, NULL), TL_OK);
		ck_assert_int_eq(tl_batch_validate(keyed.data, keyed.len, &hk, NULL), TL_OK);
		struct tl_batch_scratch scratch;
		tl_batch_scratch_init(&scratch, 1u << 20);
		const char *why = NULL;
		ck_assert_int_eq(tl_batch_validate_records(keyless.data, keyless.len, &h, true,
							   &scratch, &why),
				 TL_ERR_INVALID_RECORD);
		ck_assert_ptr_nonnull(strstr(why, "without a key"));
		ck_assert_int_eq(tl_batch_validate_records(keyless.data, keyless.len, &h, false,
							   &scratch, &why),
				 TL_OK);
		ck_assert_int_eq(
			tl_batch_validate_records(keyed.data, keyed.len, &hk, true, &scratch, &why),
			TL_OK);
		tl_batch_scratch_deinit(&scratch);
		tl_buf_deinit(&keyless);
		tl_buf_deinit(&keyed);
	}
}
END_TEST

/* zstd bodies decode to the same records whether the frame states its size (one call)
 * or not (streamed), or comes as two frames; the records validation decompressed stay
 * available for recompression until the scratch decompresses something else. */
START_TEST(zstd_sized_unsized_and_split_frames_validate_alike)
{
	struct tl_buf plain, zipped;
	tl_buf_init(&plain);
	tl_buf_init(&zipped);
	build_numbered(&plain, TL_COMPRESSION_NONE, 3000, 30, -1, -1);
	build_numbered(&zipped, TL_COMPRESSION_ZSTD, 3000, 30, -1, -1);
	const uint8_t *records = plain.data + TL_BATCH_HEADER_BYTES;
	size_t records_len = plain.len - TL_BATCH_HEADER_BYTES;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	ck_assert_ptr_nonnull(cctx);
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
	size_t bound = ZSTD_compressBound(records_len) * 2 + 64;
	for (int variant = 0; variant < 3; variant++) {
		struct tl_buf blob;
		tl_buf_init(&blob);
		tl_buf_put(&blob, zipped.data, TL_BATCH_HEADER_BYTES);
		if (variant == 0) {
			tl_buf_put(&blob, zipped.data + TL_BATCH_HEADER_BYTES,
				   zipped.len - TL_BATCH_HEADER_BYTES);
		} else {
			uint8_t *dst = malloc(bound);
			ck_assert_ptr_nonnull(dst);
			size_t half = variant == 2 ? records_len / 2 : records_len;
			size_t n = ZSTD_compress2(cctx, dst, bound, records, half);
			ck_assert(!ZSTD_isError(n));
			if (variant == 2) {
				size_t m = ZSTD_compress2(cctx, dst + n, bound - n, records + half,
							  records_len - half);
				ck_assert(!ZSTD_isError(m));
				n += m;
			}
			tl_buf_put(&blob, dst, n);
			free(dst);
		}
		tl_be32_put(blob.data + TL_BATCH_OFF_LENGTH,
			    (uint32_t)(blob.len - TL_BATCH_LOG_OVERHEAD));
		tl_batch_crc_update(blob.data, blob.len);
		struct tl_batch_header h;
		ck_assert_int_eq(tl_batch_validate(blob.data, blob.len, &h, NULL), TL_OK);
		struct tl_batch_scratch scratch;
		tl_batch_scratch_init(&scratch, 8u << 20);
		const char *why = NULL;
		ck_assert_int_eq(
			tl_batch_validate_records(blob.data, blob.len, &h, false, &scratch, &why),
			TL_OK);
		const uint8_t *body = blob.data + TL_BATCH_HEADER_BYTES;
		size_t body_len = blob.len - TL_BATCH_HEADER_BYTES, got_len = 0;
		const uint8_t *got = tl_batch_scratch_records(&scratch, body, body_len, &got_len);
		ck_assert_ptr_nonnull(got);
		ck_assert_uint_eq(got_len, records_len);
		ck_assert_int_eq(memcmp(got, records, records_len), 0);
		ck_assert_ptr_null(
			tl_batch_scratch_records(&scratch, body, body_len - 1, &got_len));
		size_t n;
		ck_assert_int_eq(
			tl_batch_decompress(&scratch, TL_COMPRESSION_ZSTD, body, body_len, &n),
			TL_OK);
		ck_assert_ptr_null(tl_batch_scratch_records(&scratch, body, body_len, &got_len));
		/* Truncated: the one-call and the streamed decoders both refuse it. */
		ck_assert_int_eq(
			tl_batch_decompress(&scratch, TL_COMPRESSION_ZSTD, body, body_len - 3, &n),
			TL_ERR_CORRUPT_MESSAGE);
		tl_batch_scratch_deinit(&scratch);
		tl_buf_deinit(&blob);
	}
	ZSTD_freeCCtx(cctx);
	tl_buf_deinit(&plain);
	tl_buf_deinit(&zipped);
}
END_TEST

START_TEST(zstd_bomb_stops_at_decompressed_max)
{
	struct tl_buf blob;
	tl_buf_init(&blob);
	build_numbered(&blob, TL_COMPRESSION_ZSTD, 2000, 50, -1, -1);
	struct tl_records_iter it;
	tl_records_iter_init(&it, blob.data, blob.len);
	it.decompressed_max = 100000;
	struct tl_batch_header h;
	struct tl_record r;
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_ERR_LIMIT);
	tl_records_iter_deinit(&it);
	tl_buf_deinit(&blob);
}
END_TEST

START_TEST(set_producer_patches_header_and_crc)
{
	struct tl_buf blob;
	tl_buf_init(&blob);
	build_numbered(&blob, TL_COMPRESSION_ZSTD, 4, 1, -1, -1);
	tl_records_batch_set_producer(blob.data, blob.len, 77, 9, 2147483646);
	struct tl_batch_header h;
	ck_assert_int_eq(tl_batch_validate(blob.data, blob.len, &h, NULL), TL_OK);
	ck_assert_int_eq(h.producer_id, 77);
	ck_assert_int_eq(h.producer_epoch, 9);
	struct tl_records_iter it;
	tl_records_iter_init(&it, blob.data, blob.len);
	struct tl_record r;
	ck_assert_int_eq(tl_records_iter_next_batch(&it, &h, NULL, NULL), TL_OK);
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_OK);
	ck_assert_int_eq(r.sequence, 2147483646);
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_OK);
	ck_assert_int_eq(r.sequence, 2147483647);
	ck_assert_int_eq(tl_records_iter_next(&it, &r), TL_OK);
	ck_assert_int_eq(r.sequence, 0); /* sequences wrap like Kafka's incrementSequence */
	tl_records_iter_deinit(&it);
	tl_buf_deinit(&blob);
}
END_TEST

START_TEST(record_size_matches_appended_bytes)
{
	struct tl_records_builder b;
	tl_records_builder_init(&b, TL_COMPRESSION_NONE);
	struct tl_record_header h = {{"hk", 2}, {(const uint8_t *)"hv", 2}};
	size_t before = tl_records_builder_bytes(&b);
	ck_assert_uint_eq(before, TL_BATCH_HEADER_BYTES);
	size_t want = tl_records_record_size(0, 0, bytes_of("key"), bytes_of("value"), &h, 1);
	ck_assert_int_eq(
		tl_records_builder_append(&b, 5, bytes_of("key"), bytes_of("value"), &h, 1), TL_OK);
	ck_assert_uint_eq(tl_records_builder_bytes(&b) - before, want);
	struct tl_record_header bad = {{NULL, -1}, {NULL, -1}};
	ck_assert_int_eq(tl_records_builder_append(&b, 5, bytes_of("k"), bytes_of("v"), &bad, 1),
			 TL_ERR_INVALID);
	tl_records_builder_deinit(&b);
}
END_TEST

/* Validates one uncompressed record whose body is @rec (@len bytes) behind a zeroed
 * batch header claiming one record; returns the verdict. */
static tl_err walk_one(const uint8_t *rec, size_t len)
{
	uint8_t data[TL_BATCH_HEADER_BYTES + 64] = {0};
	ck_assert_uint_le(len, 64);
	memcpy(data + TL_BATCH_HEADER_BYTES, rec, len);
	struct tl_batch_header h;
	memset(&h, 0, sizeof(h));
	h.records_count = 1;
	struct tl_batch_scratch scratch;
	tl_batch_scratch_init(&scratch, 1 << 20);
	const char *why = NULL;
	tl_err err = tl_batch_validate_records(data, TL_BATCH_HEADER_BYTES + len, &h, false,
					       &scratch, &why);
	tl_batch_scratch_deinit(&scratch);
	return err;
}

/* The walk's inlined varint readers keep the cursor's limits: a varint of 5 bytes
 * (offsetDelta 0 written long) passes, one of 6 bytes does not; a varlong (timestamp
 * delta) of 10 bytes passes, of 11 does not; a 5-byte varint above 32 bits does not. */
START_TEST(record_walk_varints_keep_the_cursor_limits)
{
	/* length, attributes, timestampDelta, offsetDelta, key -1, value 0, headers 0 */
	const uint8_t ok5[] = {2 * 10, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01, 0x00, 0x00};
	const uint8_t long6[] = {2 * 11, 0,    0,    0x80, 0x80, 0x80,
				 0x80,   0x80, 0x00, 0x01, 0x00, 0x00};
	const uint8_t wide5[] = {2 * 10, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01, 0x00, 0x00};
	const uint8_t ok10[] = {2 * 15, 0,    0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
				0x80,   0x80, 0x80, 0x00, 0,    0x01, 0x00, 0x00};
	const uint8_t long11[] = {2 * 16, 0,    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
				  0x80,   0x80, 0x80, 0x00, 0,    0x01, 0x00, 0x00};
	const uint8_t plain[] = {2 * 6, 0, 0, 0, 0x01, 0x00, 0x00};
	ck_assert_int_eq(walk_one(plain, sizeof(plain)), TL_OK);
	ck_assert_int_eq(walk_one(ok5, sizeof(ok5)), TL_OK);
	ck_assert_int_eq(walk_one(long6, sizeof(long6)), TL_ERR_CORRUPT_MESSAGE);
	ck_assert_int_eq(walk_one(wide5, sizeof(wide5)), TL_ERR_CORRUPT_MESSAGE);
	ck_assert_int_eq(walk_one(ok10, sizeof(ok10)), TL_OK);
	ck_assert_int_eq(walk_one(long11, sizeof(long11)), TL_ERR_CORRUPT_MESSAGE);
}
END_TEST

START_TEST(zigzag_varints_round_trip_at_the_extremes)
{
	/* Protobuf's zig-zag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, ... (one byte up to 63). */
	const int64_t values[] = {0,  -1,        1,         -2,        63,       -64,
				  64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
	struct tl_buf buf;
	tl_buf_init(&buf);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		int64_t v = values[i];
		tl_buf_reset(&buf);
		tl_buf_varlong(&buf, v);
		ck_assert_uint_eq(buf.len, tl_varlong_size(v));
		struct tl_cursor c;
		tl_cursor_init(&c, buf.data, buf.len);
		ck_assert_int_eq(tl_cursor_varlong(&c), v);
		ck_assert(!c.failed);
		if (v < INT32_MIN || v > INT32_MAX)
			continue;
		tl_buf_reset(&buf);
		tl_buf_varint(&buf, (int32_t)v);
		ck_assert_uint_eq(buf.len, tl_varint_size((int32_t)v));
		tl_cursor_init(&c, buf.data, buf.len);
		ck_assert_int_eq(tl_cursor_varint(&c), v);
	}
	tl_buf_reset(&buf);
	tl_buf_varint(&buf, -1);
	ck_assert_uint_eq(buf.len, 1);
	ck_assert_uint_eq(buf.data[0], 1);
	tl_buf_reset(&buf);
	tl_buf_varint(&buf, -64);
	ck_assert_uint_eq(buf.data[0], 127);
	tl_buf_deinit(&buf);
}
END_TEST

static Suite *records_suite(void)
{
	Suite *s = suite_create("records");
	TCase *tc = tcase_create("vectors");
	tcase_add_test(tc, builder_matches_kafkajs_vector_byte_for_byte);
	tcase_add_test(tc, zigzag_varints_round_trip_at_the_extremes);
	tcase_add_test(tc, record_walk_varints_keep_the_cursor_limits);
	tcase_add_test(tc, iterator_decodes_kafkajs_vector);
	tcase_add_test(tc, control_marker_matches_vector);
	suite_add_tcase(s, tc);
	tc = tcase_create("round_trip");
	tcase_add_test(tc, zstd_round_trip_of_many_batches);
	tcase_add_test(tc, partial_trailing_batch_ends_iteration);
	tcase_add_test(tc, set_producer_patches_header_and_crc);
	tcase_add_test(tc, record_size_matches_appended_bytes);
	tcase_add_test(tc, finish_move_equals_finish);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, bad_crc_is_corrupt_message);
	tcase_add_test(tc, every_codec_round_trips);
	tcase_add_test(tc, zstd_bomb_stops_at_decompressed_max);
	tcase_add_test(tc, zstd_sized_unsized_and_split_frames_validate_alike);
	tcase_add_test(tc, null_key_is_invalid_record_only_when_a_key_is_required);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(records_suite());
}
