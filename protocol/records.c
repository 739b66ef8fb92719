/* records.c - RecordBatch v2 builder, iterator and control markers, see records.h.
 * (1) A builder's `records` holds exactly record_count well-formed records whose
 *     offsetDelta runs 0..record_count-1 and whose timestampDelta is relative to
 *     base_timestamp.
 * (2) An iterator never reads past its blob: every length comes through a sticky
 *     cursor and is checked against the bytes left before it sizes anything.
 * (3) In a finished batch lastOffsetDelta + 1 == recordsCount (tl_batch_validate's rule). */
#include "records.h"

#include <stdlib.h>

#include "common/assert.h"
#include "common/crc32c.h"

/* ---- builder ---- */

void tl_records_builder_init(struct tl_records_builder *builder, enum tl_compression compression)
{
	memset(builder, 0, sizeof(*builder));
	tl_buf_init(&builder->records);
	builder->compression = compression;
	tl_records_builder_reset(builder);
}

void tl_records_builder_deinit(struct tl_records_builder *builder)
{
	tl_buf_deinit(&builder->records);
}

void tl_records_builder_reset(struct tl_records_builder *builder)
{
	tl_buf_reset(&builder->records);
	builder->record_count = 0;
	builder->base_timestamp = TL_RECORDS_NO_TIMESTAMP;
	builder->max_timestamp = TL_RECORDS_NO_TIMESTAMP;
	builder->producer_id = TL_RECORDS_NO_PRODUCER_ID;
	builder->producer_epoch = -1;
	builder->base_sequence = TL_RECORDS_NO_SEQUENCE;
	builder->transactional = false;
}

static size_t bytes_field_size(struct tl_bytes b)
{
	if (b.len < 0)
		return tl_varint_size(-1);
	return tl_varint_size(b.len) + (size_t)b.len;
}

/* Size of a record's body: everything after its length varint. */
static size_t record_body_size(int64_t timestamp_delta, int32_t offset_delta, struct tl_bytes key,
			       struct tl_bytes value, const struct tl_record_header *headers,
			       int32_t header_count)
{
	size_t n = 1; /* attributes */
	n += tl_varlong_size(timestamp_delta);
	n += tl_varint_size(offset_delta);
	n += bytes_field_size(key);
	n += bytes_field_size(value);
	n += tl_varint_size(header_count);
	for (int32_t i = 0; i < header_count; i++) {
		n += tl_varint_size(headers[i].key.len) + (size_t)headers[i].key.len;
		n += bytes_field_size(headers[i].value);
	}
	return n;
}

size_t tl_records_record_size(int64_t timestamp_delta, int32_t offset_delta, struct tl_bytes key,
			      struct tl_bytes value, const struct tl_record_header *headers,
			      int32_t header_count)
{
	size_t body =
		record_body_size(timestamp_delta, offset_delta, key, value, headers, header_count);
	return tl_varint_size((int32_t)body) + body;
}

static void buf_varbytes(struct tl_buf *buf, struct tl_bytes b)
{
	if (b.len < 0) {
		tl_buf_varint(buf, -1);
		return;
	}
	tl_buf_varint(buf, b.len);
	tl_buf_put(buf, b.ptr, (size_t)b.len);
}

tl_err tl_records_builder_append(struct tl_records_builder *builder, int64_t timestamp_ms,
				 struct tl_bytes key, struct tl_bytes value,
				 const struct tl_record_header *headers, int32_t header_count)
{
	if (builder->record_count >= TL_RECORDS_COUNT_MAX)
		return TL_ERR_LIMIT;
	if (header_count < 0 || (header_count > 0 && !headers))
		return TL_ERR_INVALID;
	for (int32_t i = 0; i < header_count; i++)
		if (!headers[i].key.ptr || headers[i].key.len < 0)
			return TL_ERR_INVALID;
	if (builder->record_count == 0) {
		builder->base_timestamp = timestamp_ms;
		builder->max_timestamp = timestamp_ms;
	}
	int64_t timestamp_delta = timestamp_ms - builder->base_timestamp;
	int32_t offset_delta = builder->record_count;
	size_t body =
		record_body_size(timestamp_delta, offset_delta, key, value, headers, header_count);
	if (body > INT32_MAX)
		return TL_ERR_LIMIT;
	struct tl_buf *buf = &builder->records;
	/* The batch header's room, so that tl_records_builder_finish_move can write the
	 * header in front of the records where they are. */
	if (buf->len == 0 && !tl_buf_extend(buf, TL_BATCH_HEADER_BYTES))
		return TL_ERR_NOMEM;
	size_t len_before = buf->len;
	tl_buf_varint(buf, (int32_t)body);
	tl_buf_i8(buf, 0);
	tl_buf_varlong(buf, timestamp_delta);
	tl_buf_varint(buf, offset_delta);
	buf_varbytes(buf, key);
	buf_varbytes(buf, value);
	tl_buf_varint(buf, header_count);
	for (int32_t i = 0; i < header_count; i++) {
		tl_buf_varint(buf, headers[i].key.len);
		tl_buf_put(buf, headers[i].key.ptr, (size_t)headers[i].key.len);
		buf_varbytes(buf, headers[i].value);
	}
	if (buf->failed)
		return TL_ERR_NOMEM;
	TL_ASSERT(buf->len - len_before == tl_varint_size((int32_t)body) + body);
	if (timestamp_ms > builder->max_timestamp)
		builder->max_timestamp = timestamp_ms;
	builder->record_count++;
	return TL_OK;
}

void tl_records_builder_set_producer(struct tl_records_builder *builder, int64_t producer_id,
				     int16_t producer_epoch, int32_t base_sequence,
				     bool transactional)
{
	builder->producer_id = producer_id;
	builder->producer_epoch = producer_epoch;
	builder->base_sequence = base_sequence;
	builder->transactional = transactional;
}

/* Writes the 61-byte header at @p with a zero CRC; the caller stores the CRC last. */
static void header_write(uint8_t *p, int32_t batch_length, int16_t attributes,
			 int32_t last_offset_delta, int64_t base_timestamp, int64_t max_timestamp,
			 int64_t producer_id, int16_t producer_epoch, int32_t base_sequence,
			 int32_t records_count)
{
	tl_be64_put(p + TL_BATCH_OFF_BASE_OFFSET, 0);
	tl_be32_put(p + TL_BATCH_OFF_LENGTH, (uint32_t)batch_length);
	tl_be32_put(p + TL_BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
	p[TL_BATCH_OFF_MAGIC] = TL_BATCH_MAGIC;
	tl_be32_put(p + TL_BATCH_OFF_CRC, 0);
	tl_be16_put(p + TL_BATCH_OFF_ATTRIBUTES, (uint16_t)attributes);
	tl_be32_put(p + TL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)last_offset_delta);
	tl_be64_put(p + TL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_timestamp);
	tl_be64_put(p + TL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_timestamp);
	tl_be64_put(p + TL_BATCH_OFF_PRODUCER_ID, (uint64_t)producer_id);
	tl_be16_put(p + TL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)producer_epoch);
	tl_be32_put(p + TL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)base_sequence);
	tl_be32_put(p + TL_BATCH_OFF_RECORDS_COUNT, (uint32_t)records_count);
}

tl_err tl_records_zstd_compress(ZSTD_CCtx *cctx, const uint8_t *src, size_t len, struct tl_buf *out,
				size_t *written_out)
{
	size_t bound = ZSTD_compressBound(len);
	size_t at = out->len;
	uint8_t *dst = tl_buf_extend(out, bound);
	if (!dst)
		return TL_ERR_NOMEM;
	ZSTD_CCtx *own = NULL;
	if (!cctx) {
		own = ZSTD_createCCtx();
		if (!own) {
			out->len = at;
			return TL_ERR_NOMEM;
		}
		cctx = own;
	}
	size_t n = ZSTD_compressCCtx(cctx, dst, bound, src, len, ZSTD_CLEVEL_DEFAULT);
	ZSTD_freeCCtx(own);
	if (ZSTD_isError(n)) {
		out->len = at;
		return TL_ERR_NOMEM;
	}
	out->len = at + n;
	*written_out = n;
	return TL_OK;
}

/* Writes the header of @builder's batch of @total bytes at @p (its records follow it)
 * and its CRC. */
static tl_err builder_header_put(const struct tl_records_builder *builder, uint8_t *p, size_t total)
{
	if (total - TL_BATCH_LOG_OVERHEAD > INT32_MAX)
		return TL_ERR_LIMIT;
	int16_t attributes = (int16_t)builder->compression;
	if (builder->transactional)
		attributes |= TL_BATCH_ATTR_TRANSACTIONAL;
	header_write(p, (int32_t)(total - TL_BATCH_LOG_OVERHEAD), attributes,
		     builder->record_count - 1, builder->base_timestamp, builder->max_timestamp,
		     builder->producer_id, builder->producer_epoch, builder->base_sequence,
		     builder->record_count);
	tl_batch_crc_update(p, total);
	return TL_OK;
}

static tl_err builder_finish_check(const struct tl_records_builder *builder)
{
	if (builder->record_count == 0)
		return TL_ERR_INVALID;
	if (builder->compression > TL_COMPRESSION_ZSTD)
		return TL_ERR_UNSUPPORTED_COMPRESSION_TYPE;
	if (builder->records.failed)
		return TL_ERR_NOMEM;
	TL_ASSERT(builder->records.len > TL_BATCH_HEADER_BYTES);
	return TL_OK;
}

tl_err tl_records_builder_finish(const struct tl_records_builder *builder, ZSTD_CCtx *cctx,
				 struct tl_buf *out)
{
	tl_err err = builder_finish_check(builder);
	if (err != TL_OK)
		return err;
	const uint8_t *records = builder->records.data + TL_BATCH_HEADER_BYTES;
	size_t records_len = builder->records.len - TL_BATCH_HEADER_BYTES;
	size_t start = out->len;
	if (!tl_buf_extend(out, TL_BATCH_HEADER_BYTES))
		return TL_ERR_NOMEM;
	size_t records_bytes = records_len;
	if (builder->compression == TL_COMPRESSION_ZSTD) {
		err = tl_records_zstd_compress(cctx, records, records_len, out, &records_bytes);
	} else if (builder->compression != TL_COMPRESSION_NONE) {
		err = tl_batch_compress(builder->compression, records, records_len, out);
		records_bytes = out->len - start - TL_BATCH_HEADER_BYTES;
	} else {
		tl_buf_put(out, records, records_len);
		err = out->failed ? TL_ERR_NOMEM : TL_OK;
	}
	if (err == TL_OK)
		err = builder_header_put(builder, out->data + start,
					 TL_BATCH_HEADER_BYTES + records_bytes);
	if (err != TL_OK)
		out->len = start;
	return err;
}

tl_err tl_records_builder_finish_move(struct tl_records_builder *builder, ZSTD_CCtx *cctx,
				      struct tl_buf *out)
{
	TL_ASSERT(out->len == 0 && out->span_count == 0);
	if (builder->compression != TL_COMPRESSION_NONE) {
		tl_err err = tl_records_builder_finish(builder, cctx, out);
		if (err == TL_OK)
			tl_records_builder_reset(builder);
		return err;
	}
	tl_err err = builder_finish_check(builder);
	if (err != TL_OK)
		return err;
	err = builder_header_put(builder, builder->records.data, builder->records.len);
	if (err != TL_OK)
		return err;
	tl_buf_deinit(out);
	*out = builder->records;
	tl_buf_init(&builder->records);
	tl_records_builder_reset(builder);
	return TL_OK;
}

void tl_records_batch_set_producer(uint8_t *data, size_t len, int64_t producer_id,
				   int16_t producer_epoch, int32_t base_sequence)
{
	TL_ASSERT(len >= TL_BATCH_HEADER_BYTES);
	tl_be64_put(data + TL_BATCH_OFF_PRODUCER_ID, (uint64_t)producer_id);
	tl_be16_put(data + TL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)producer_epoch);
	tl_be32_put(data + TL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)base_sequence);
	tl_batch_crc_update(data, len);
}

tl_err tl_records_control_marker_build(struct tl_buf *out, bool commit, int64_t producer_id,
				       int16_t producer_epoch, int32_t coordinator_epoch,
				       int64_t timestamp_ms)
{
	/* Record: key = version 0 + type (4 bytes), value = version 0 + coordinator
	 * epoch (6 bytes), no headers; 16 body bytes, 17 with the length. */
	uint8_t key[4];
	uint8_t value[6];
	tl_be16_put(key, 0);
	tl_be16_put(key + 2, commit ? TL_CONTROL_COMMIT : TL_CONTROL_ABORT);
	tl_be16_put(value, 0);
	tl_be32_put(value + 2, (uint32_t)coordinator_epoch);
	size_t start = out->len;
	uint8_t *p = tl_buf_extend(out, TL_BATCH_HEADER_BYTES);
	if (!p)
		return TL_ERR_NOMEM;
	tl_buf_varint(out, 16);
	tl_buf_i8(out, 0);
	tl_buf_varlong(out, 0);
	tl_buf_varint(out, 0);
	tl_buf_varint(out, (int32_t)sizeof(key));
	tl_buf_put(out, key, sizeof(key));
	tl_buf_varint(out, (int32_t)sizeof(value));
	tl_buf_put(out, value, sizeof(value));
	tl_buf_varint(out, 0);
	if (out->failed)
		return TL_ERR_NOMEM;
	size_t total = out->len - start;
	TL_ASSERT(total == 78);
	p = out->data + start; /* the buf may have moved */
	header_write(p, (int32_t)(total - TL_BATCH_LOG_OVERHEAD),
		     TL_BATCH_ATTR_TRANSACTIONAL | TL_BATCH_ATTR_CONTROL, 0, timestamp_ms,
		     timestamp_ms, producer_id, producer_epoch, TL_RECORDS_NO_SEQUENCE, 1);
	tl_batch_crc_update(p, total);
	return TL_OK;
}

/* ---- iterator ---- */

void tl_records_iter_init(struct tl_records_iter *iter, const uint8_t *data, size_t len)
{
	memset(iter, 0, sizeof(*iter));
	tl_cursor_init(&iter->blob, data, len);
	iter->decompressed_max = TL_RECORDS_DECOMPRESSED_MAX;
	tl_batch_scratch_init(&iter->scratch, TL_RECORDS_DECOMPRESSED_MAX);
	iter->verify_crc = true;
}

void tl_records_iter_deinit(struct tl_records_iter *iter)
{
	tl_batch_scratch_deinit(&iter->scratch);
	free(iter->headers);
	memset(iter, 0, sizeof(*iter));
}

tl_err tl_records_iter_next_batch(struct tl_records_iter *iter, struct tl_batch_header *out,
				  const uint8_t **batch_data_out, size_t *batch_len_out)
{
	iter->in_batch = false;
	size_t left = tl_cursor_left(&iter->blob);
	if (left < TL_BATCH_LOG_OVERHEAD)
		return TL_ERR_NOT_FOUND;
	const uint8_t *data = iter->blob.pos;
	int64_t size = tl_batch_size(data, left);
	if (size < 0)
		return TL_ERR_CORRUPT_MESSAGE;
	if ((uint64_t)size > left)
		return TL_ERR_NOT_FOUND; /* partial trailing batch */
	if (data[TL_BATCH_OFF_MAGIC] != TL_BATCH_MAGIC)
		return TL_ERR_CORRUPT_MESSAGE;
	tl_err err = tl_batch_header_decode(data, (size_t)size, &iter->batch);
	if (err != TL_OK)
		return TL_ERR_CORRUPT_MESSAGE;
	if (iter->verify_crc) {
		uint32_t crc = tl_crc32c(0, data + TL_BATCH_OFF_ATTRIBUTES,
					 (size_t)size - TL_BATCH_OFF_ATTRIBUTES);
		if (crc != iter->batch.crc)
			return TL_ERR_CORRUPT_MESSAGE;
	}
	if (iter->batch.records_count < 0)
		return TL_ERR_CORRUPT_MESSAGE;
	tl_cursor_skip(&iter->blob, (size_t)size);
	tl_cursor_init(&iter->records, data + TL_BATCH_HEADER_BYTES,
		       (size_t)size - TL_BATCH_HEADER_BYTES);
	iter->records_left = iter->batch.records_count;
	iter->in_batch = true;
	if (tl_batch_compression(&iter->batch) != TL_COMPRESSION_NONE)
		iter->records_left = -1 - iter->records_left; /* marks "not yet decompressed" */
	*out = iter->batch;
	if (batch_data_out)
		*batch_data_out = data;
	if (batch_len_out)
		*batch_len_out = (size_t)size;
	return TL_OK;
}

/* Decompresses the current batch's records into the iterator's scratch (gzip, snappy,
 * lz4 or zstd, framed as Kafka's clients write them). */
static tl_err iter_decompress(struct tl_records_iter *iter, enum tl_compression codec)
{
	iter->scratch.max_bytes = iter->decompressed_max;
	size_t used;
	tl_err err = tl_batch_decompress(&iter->scratch, codec, iter->records.pos,
					 tl_cursor_left(&iter->records), &used);
	if (err != TL_OK)
		return err;
	tl_cursor_init(&iter->records, iter->scratch.buf, used);
	return TL_OK;
}

static tl_err iter_prepare_records(struct tl_records_iter *iter)
{
	iter->records_left = -1 - iter->records_left;
	enum tl_compression codec = tl_batch_compression(&iter->batch);
	if (codec == TL_COMPRESSION_NONE)
		return TL_OK;
	return iter_decompress(iter, codec);
}

static struct tl_bytes cursor_varbytes(struct tl_cursor *cursor)
{
	struct tl_bytes b = {NULL, -1};
	int32_t len = tl_cursor_varint(cursor);
	if (len < -1) {
		tl_cursor_fail(cursor);
		return b;
	}
	if (len == -1)
		return b;
	const uint8_t *p = tl_cursor_take(cursor, (size_t)len);
	if (p) {
		b.ptr = p;
		b.len = len;
	}
	return b;
}

static tl_err iter_headers_reserve(struct tl_records_iter *iter, int32_t count)
{
	if (count <= iter->headers_cap)
		return TL_OK;
	struct tl_record_header *h = realloc(iter->headers, (size_t)count * sizeof(*h));
	if (!h)
		return TL_ERR_NOMEM;
	iter->headers = h;
	iter->headers_cap = count;
	return TL_OK;
}

tl_err tl_records_iter_next(struct tl_records_iter *iter, struct tl_record *out)
{
	if (!iter->in_batch)
		return TL_ERR_NOT_FOUND;
	if (iter->records_left < 0) {
		tl_err err = iter_prepare_records(iter);
		if (err != TL_OK) {
			iter->in_batch = false;
			return err;
		}
	}
	if (iter->records_left == 0)
		return TL_ERR_NOT_FOUND;
	struct tl_cursor *c = &iter->records;
	int32_t length = tl_cursor_varint(c);
	if (c->failed || length < 0 || (size_t)length > tl_cursor_left(c))
		return TL_ERR_CORRUPT_MESSAGE;
	struct tl_cursor rec;
	tl_cursor_init(&rec, c->pos, (size_t)length);
	tl_cursor_skip(c, (size_t)length);

	(void)tl_cursor_i8(&rec); /* attributes, unused */
	int64_t timestamp_delta = tl_cursor_varlong(&rec);
	int32_t offset_delta = tl_cursor_varint(&rec);
	out->key = cursor_varbytes(&rec);
	out->value = cursor_varbytes(&rec);
	int32_t header_count = tl_cursor_varint(&rec);
	if (rec.failed || header_count < 0 || header_count > TL_RECORDS_HEADERS_MAX ||
	    (size_t)header_count > tl_cursor_left(&rec))
		return TL_ERR_CORRUPT_MESSAGE;
	if (iter_headers_reserve(iter, header_count) != TL_OK)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < header_count; i++) {
		struct tl_bytes key = cursor_varbytes(&rec);
		if (key.len < 0)
			tl_cursor_fail(&rec); /* a null header key is invalid */
		iter->headers[i].key.ptr = (const char *)key.ptr;
		iter->headers[i].key.len = key.len;
		iter->headers[i].value = cursor_varbytes(&rec);
	}
	if (rec.failed || tl_cursor_left(&rec) != 0)
		return TL_ERR_CORRUPT_MESSAGE;

	const struct tl_batch_header *b = &iter->batch;
	out->offset = b->base_offset + offset_delta;
	if (b->attributes & TL_BATCH_ATTR_LOG_APPEND_TIME)
		out->timestamp_ms = b->max_timestamp;
	else
		out->timestamp_ms = b->base_timestamp + timestamp_delta;
	if (b->base_sequence < 0)
		out->sequence = -1;
	else
		out->sequence =
			(int32_t)(((int64_t)b->base_sequence + offset_delta) % 2147483648LL);
	out->header_count = header_count;
	out->headers = iter->headers;
	iter->records_left--;
	return TL_OK;
}

int tl_records_control_type(const struct tl_record *record)
{
	if (record->key.len < 4)
		return -1;
	int16_t version = (int16_t)tl_be16_get(record->key.ptr);
	if (version < 0)
		return -1;
	return (int16_t)tl_be16_get(record->key.ptr + 2);
}
