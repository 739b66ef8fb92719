/* fuzz_batch.c - libFuzzer target for RecordBatch v2: protocol/batch.h checks, the
 * protocol/records.h builder and iterator, and protocol/validate.h's record checks with
 * its four decompressors (gzip, snappy, lz4, zstd: the codec bits come from the input).
 * The first input byte picks a mode, the rest is its material:
 *   0  raw bytes: tl_batch_validate, then the iterator walks every batch and record
 *      without CRC checks (so records of any shape reach the record decoder);
 *   1  the same bytes with the batch length and CRC fixed up, so validation passes the
 *      framing and the semantic checks and the iterator run on "valid" batches; a
 *      batch that validates must still validate after tl_batch_assign and
 *      tl_batch_set_max_timestamp (both timestamp types);
 *   2  a record list: built with the builder (uncompressed or zstd), the finished batch
 *      must validate and iterate back to exactly the records appended.
 * Any crash, overrun, leak or failed property aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/buf.h"
#include "protocol/batch.h"
#include "protocol/records.h"
#include "protocol/validate.h"

#define DECOMPRESSED_BYTES_MAX (8u << 20) /* keeps zip bombs cheap */
#define BUILD_RECORDS_MAX      64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_batch: %s\n", what);
	abort();
}

/* Reads every byte a record points at, so a bad pointer or length trips ASan. */
static uint32_t touch(const struct tl_record *rec)
{
	uint32_t sum = 0;
	for (int32_t i = 0; i < rec->key.len; i++)
		sum += rec->key.ptr[i];
	for (int32_t i = 0; i < rec->value.len; i++)
		sum += rec->value.ptr[i];
	for (int32_t h = 0; h < rec->header_count; h++) {
		for (int32_t i = 0; i < rec->headers[h].key.len; i++)
			sum += (uint8_t)rec->headers[h].key.ptr[i];
		for (int32_t i = 0; i < rec->headers[h].value.len; i++)
			sum += rec->headers[h].value.ptr[i];
	}
	return sum;
}

static void walk(const uint8_t *data, size_t size, bool verify_crc)
{
	struct tl_records_iter iter;
	tl_records_iter_init(&iter, data, size);
	iter.verify_crc = verify_crc;
	iter.decompressed_max = DECOMPRESSED_BYTES_MAX;
	struct tl_batch_header h;
	const uint8_t *batch;
	size_t batch_len;
	volatile uint32_t sink = 0;
	while (tl_records_iter_next_batch(&iter, &h, &batch, &batch_len) == TL_OK) {
		if (batch < data || batch + batch_len > data + size)
			fuzz_fail("iterator returned a batch outside its blob");
		struct tl_record rec;
		while (tl_records_iter_next(&iter, &rec) == TL_OK) {
			sink += touch(&rec);
			if (tl_batch_is_control(&h))
				sink += (uint32_t)tl_records_control_type(&rec);
		}
	}
	(void)sink;
	tl_records_iter_deinit(&iter);
}

/* The record walk as it was written on common/buf.c's cursor readers, before
 * protocol/validate.c inlined its own (issue #20's cost): both must give every
 * uncompressed record list the same verdict. */
static int32_t ref_skip_varbytes(struct tl_cursor *c, bool nullable)
{
	int32_t len = tl_cursor_varint(c);
	if (len < -1 || (len == -1 && !nullable)) {
		tl_cursor_fail(c);
		return -1;
	}
	if (len > 0 && !tl_cursor_take(c, (size_t)len))
		tl_cursor_fail(c);
	return len;
}

static tl_err ref_walk(const uint8_t *p, size_t len, int32_t count, bool key_required)
{
	struct tl_cursor c;
	tl_cursor_init(&c, p, len);
	for (int32_t i = 0; i < count; i++) {
		if (tl_cursor_left(&c) == 0)
			return TL_ERR_INVALID_RECORD;
		int32_t length = tl_cursor_varint(&c);
		if (c.failed || length <= 0 || (size_t)length > tl_cursor_left(&c))
			return TL_ERR_CORRUPT_MESSAGE;
		struct tl_cursor rec;
		tl_cursor_init(&rec, c.pos, (size_t)length);
		tl_cursor_skip(&c, (size_t)length);
		(void)tl_cursor_i8(&rec);
		(void)tl_cursor_varlong(&rec);
		int32_t offset_delta = tl_cursor_varint(&rec);
		if (!rec.failed && offset_delta != i)
			return TL_ERR_INVALID_RECORD;
		int32_t key_len = ref_skip_varbytes(&rec, true);
		ref_skip_varbytes(&rec, true);
		int32_t headers = tl_cursor_varint(&rec);
		if (headers < 0 || (size_t)headers > tl_cursor_left(&rec))
			tl_cursor_fail(&rec);
		for (int32_t h = 0; h < headers && !rec.failed; h++) {
			ref_skip_varbytes(&rec, false);
			ref_skip_varbytes(&rec, true);
		}
		if (rec.failed || tl_cursor_left(&rec) != 0)
			return TL_ERR_CORRUPT_MESSAGE;
		if (key_required && key_len < 0)
			return TL_ERR_INVALID_RECORD;
	}
	return tl_cursor_left(&c) != 0 ? TL_ERR_INVALID_RECORD : TL_OK;
}

/* One scratch for every input, as the broker keeps one per loop. */
static struct tl_batch_scratch scratch;
static bool scratch_ready;

static tl_err validate_records(const uint8_t *data, size_t size, const struct tl_batch_header *h)
{
	if (!scratch_ready) {
		tl_batch_scratch_init(&scratch, DECOMPRESSED_BYTES_MAX);
		scratch_ready = true;
	}
	const char *why = NULL;
	/* With and without the compacted topic's key rule, by the input's parity. */
	tl_err err = tl_batch_validate_records(data, size, h, size % 2 == 0, &scratch, &why);
	if (err != TL_OK && !why)
		fuzz_fail("tl_batch_validate_records refused without saying why");
	if (tl_batch_compression(h) == TL_COMPRESSION_NONE &&
	    ref_walk(data + TL_BATCH_HEADER_BYTES, size - TL_BATCH_HEADER_BYTES, h->records_count,
		     size % 2 == 0) != err)
		fuzz_fail("the record walk and the cursor-based reference walk disagree");
	return err;
}

static void mode_raw(const uint8_t *data, size_t size)
{
	struct tl_batch_header h;
	const char *why = NULL;
	(void)tl_batch_validate(data, size, &h, &why);
	if (size >= TL_BATCH_LOG_OVERHEAD)
		(void)tl_batch_size(data, size);
	(void)tl_batch_header_decode(data, size, &h);
	walk(data, size, false);
}

static void mode_fixed(const uint8_t *input, size_t size)
{
	if (size < TL_BATCH_HEADER_BYTES || size > INT32_MAX)
		return;
	uint8_t *data = malloc(size);
	if (!data)
		return;
	memcpy(data, input, size);
	tl_be32_put(data + TL_BATCH_OFF_LENGTH, (uint32_t)(size - TL_BATCH_LOG_OVERHEAD));
	data[TL_BATCH_OFF_MAGIC] = TL_BATCH_MAGIC;
	tl_batch_crc_update(data, size);
	struct tl_batch_header h;
	const char *why = NULL;
	if (tl_batch_validate(data, size, &h, &why) == TL_OK) {
		(void)validate_records(data, size, &h);
		/* What the broker does to an accepted batch must keep it valid. */
		tl_batch_assign(data, 1234567, 7);
		if (tl_batch_validate(data, size, &h, &why) != TL_OK)
			fuzz_fail("tl_batch_assign broke a valid batch");
		if (h.base_offset != 1234567 || h.partition_leader_epoch != 7)
			fuzz_fail("tl_batch_assign did not set offset and epoch");
		tl_batch_set_max_timestamp(data, size, 1700000000000, true);
		if (tl_batch_validate(data, size, &h, &why) != TL_OK)
			fuzz_fail("tl_batch_set_max_timestamp broke a valid batch");
		if (h.max_timestamp != 1700000000000 ||
		    !(h.attributes & TL_BATCH_ATTR_LOG_APPEND_TIME))
			fuzz_fail("tl_batch_set_max_timestamp did not set LogAppendTime");
		tl_batch_set_max_timestamp(data, size, 1600000000000, false);
		if (tl_batch_validate(data, size, &h, &why) != TL_OK ||
		    h.max_timestamp != 1600000000000 ||
		    (h.attributes & TL_BATCH_ATTR_LOG_APPEND_TIME))
			fuzz_fail("tl_batch_set_max_timestamp did not set CreateTime");
	}
	walk(data, size, true);
	free(data);
}

struct expected {
	struct tl_bytes key;
	struct tl_bytes value;
	int64_t timestamp_ms;
	int32_t header_count;
	struct tl_record_header headers[3];
};

/* Takes @len bytes from @cursor, or a null (len -1) when @len is 0xff. */
static struct tl_bytes take_bytes(struct tl_cursor *cursor, uint8_t len)
{
	struct tl_bytes b = {NULL, -1};
	if (len == 0xff)
		return b;
	const uint8_t *p = tl_cursor_take(cursor, len);
	if (p) {
		b.ptr = p;
		b.len = len;
	}
	return b;
}

static bool bytes_equal(struct tl_bytes a, struct tl_bytes b)
{
	return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static void check_built(const uint8_t *batch, size_t len, const struct expected *want,
			int32_t count, int64_t pid)
{
	struct tl_batch_header h;
	const char *why = NULL;
	if (tl_batch_validate(batch, len, &h, &why) != TL_OK) {
		fprintf(stderr, "fuzz_batch: built batch invalid: %s\n", why ? why : "?");
		abort();
	}
	if (!scratch_ready) {
		tl_batch_scratch_init(&scratch, DECOMPRESSED_BYTES_MAX);
		scratch_ready = true;
	}
	if (tl_batch_validate_records(batch, len, &h, false, &scratch, &why) != TL_OK)
		fuzz_fail("a built batch's records fail validation");
	/* A compacted topic's rule (a key on every record) refuses exactly the batches
	 * holding a null key. */
	bool keyless = false;
	for (int32_t i = 0; i < count; i++)
		keyless |= want[i].key.len < 0;
	tl_err keyed = tl_batch_validate_records(batch, len, &h, true, &scratch, &why);
	if (keyless ? keyed != TL_ERR_INVALID_RECORD : keyed != TL_OK)
		fuzz_fail("the compacted topic's key rule misjudged a built batch");
	if (h.records_count != count || h.producer_id != pid)
		fuzz_fail("built batch header does not match");
	struct tl_records_iter iter;
	tl_records_iter_init(&iter, batch, len);
	iter.verify_crc = true;
	if (tl_records_iter_next_batch(&iter, &h, NULL, NULL) != TL_OK)
		fuzz_fail("iterator refuses a built batch");
	for (int32_t i = 0; i < count; i++) {
		struct tl_record rec;
		if (tl_records_iter_next(&iter, &rec) != TL_OK)
			fuzz_fail("built batch has fewer records than appended");
		if (rec.offset != i || rec.timestamp_ms != want[i].timestamp_ms)
			fuzz_fail("record offset or timestamp differs");
		if (!bytes_equal(rec.key, want[i].key) || !bytes_equal(rec.value, want[i].value))
			fuzz_fail("record key or value differs");
		if (rec.header_count != want[i].header_count)
			fuzz_fail("record header count differs");
		for (int32_t k = 0; k < rec.header_count; k++)
			if (!tl_str_eq(rec.headers[k].key, want[i].headers[k].key) ||
			    !bytes_equal(rec.headers[k].value, want[i].headers[k].value))
				fuzz_fail("record header differs");
	}
	struct tl_record rec;
	if (tl_records_iter_next(&iter, &rec) != TL_ERR_NOT_FOUND)
		fuzz_fail("built batch has more records than appended");
	if (tl_records_iter_next_batch(&iter, &h, NULL, NULL) != TL_ERR_NOT_FOUND)
		fuzz_fail("built blob has a second batch");
	tl_records_iter_deinit(&iter);
}

static void mode_build(const uint8_t *data, size_t size)
{
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, data, size);
	uint8_t flags = (uint8_t)tl_cursor_i8(&cursor);
	enum tl_compression compression = flags & 1 ? TL_COMPRESSION_ZSTD : TL_COMPRESSION_NONE;
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, compression);
	int64_t pid = -1;
	if (flags & 2) {
		pid = tl_cursor_i32(&cursor) & 0x7fffffff;
		tl_records_builder_set_producer(&builder, pid, (int16_t)(flags >> 4), 0, false);
	}
	struct expected want[BUILD_RECORDS_MAX];
	int32_t count = 0;
	int64_t ts = 1600000000000;
	while (count < BUILD_RECORDS_MAX && tl_cursor_left(&cursor) >= 4) {
		struct expected *e = &want[count];
		ts += tl_cursor_i8(&cursor); /* timestamps may go backwards */
		e->timestamp_ms = ts;
		uint8_t klen = (uint8_t)tl_cursor_i8(&cursor);
		uint8_t vlen = (uint8_t)tl_cursor_i8(&cursor);
		e->header_count = (uint8_t)tl_cursor_i8(&cursor) % 4;
		e->key = take_bytes(&cursor, klen);
		e->value = take_bytes(&cursor, vlen);
		for (int32_t k = 0; k < e->header_count; k++) {
			uint8_t hk = (uint8_t)tl_cursor_i8(&cursor) % 16;
			struct tl_bytes key = take_bytes(&cursor, hk);
			e->headers[k].key.ptr = key.ptr ? (const char *)key.ptr : "";
			e->headers[k].key.len = key.ptr ? key.len : 0;
			e->headers[k].value = take_bytes(&cursor, (uint8_t)tl_cursor_i8(&cursor));
		}
		if (cursor.failed)
			break;
		if (tl_records_builder_append(&builder, e->timestamp_ms, e->key, e->value,
					      e->headers, e->header_count) != TL_OK)
			fuzz_fail("builder refused a record");
		count++;
	}
	if (count > 0) {
		struct tl_buf out;
		tl_buf_init(&out);
		if (tl_records_builder_finish(&builder, NULL, &out) != TL_OK)
			fuzz_fail("builder finish failed");
		check_built(out.data, out.len, want, count, pid);
		/* The same batch without the copy: byte for byte what finish wrote. */
		struct tl_buf moved;
		tl_buf_init(&moved);
		if (tl_records_builder_finish_move(&builder, NULL, &moved) != TL_OK)
			fuzz_fail("builder finish_move failed");
		if (moved.len != out.len || memcmp(moved.data, out.data, out.len) != 0)
			fuzz_fail("finish_move wrote another batch than finish");
		if (tl_records_builder_bytes(&builder) != TL_BATCH_HEADER_BYTES)
			fuzz_fail("finish_move left records in the builder");
		tl_buf_deinit(&moved);
		if (pid >= 0) {
			tl_records_batch_set_producer(out.data, out.len, pid + 1, 3, 100);
			struct tl_batch_header h;
			if (tl_batch_validate(out.data, out.len, &h, NULL) != TL_OK ||
			    h.producer_id != pid + 1 || h.producer_epoch != 3 ||
			    h.base_sequence != 100)
				fuzz_fail("tl_records_batch_set_producer broke the batch");
		}
		tl_buf_deinit(&out);
	}
	tl_records_builder_deinit(&builder);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		mode_raw(data + 1, size - 1);
		break;
	case 1:
		mode_fixed(data + 1, size - 1);
		break;
	default:
		mode_build(data + 1, size - 1);
		break;
	}
	return 0;
}
