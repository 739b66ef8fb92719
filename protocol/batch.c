/* batch.c - RecordBatch v2 header view and validation, see batch.h. */
#include "batch.h"

#include "common/assert.h"
#include "common/buf.h"
#include "common/crc32c.h"

int64_t tl_batch_size(const uint8_t *data, size_t len)
{
	TL_ASSERT(len >= TL_BATCH_LOG_OVERHEAD);
	int32_t batch_length = (int32_t)tl_be32_get(data + TL_BATCH_OFF_LENGTH);
	if (batch_length < TL_BATCH_HEADER_BYTES - TL_BATCH_LOG_OVERHEAD)
		return -1;
	return (int64_t)batch_length + TL_BATCH_LOG_OVERHEAD;
}

tl_err tl_batch_header_decode(const uint8_t *data, size_t len, struct tl_batch_header *out)
{
	if (len < TL_BATCH_HEADER_BYTES)
		return TL_ERR_AGAIN;
	out->base_offset = (int64_t)tl_be64_get(data + TL_BATCH_OFF_BASE_OFFSET);
	out->batch_length = (int32_t)tl_be32_get(data + TL_BATCH_OFF_LENGTH);
	out->partition_leader_epoch = (int32_t)tl_be32_get(data + TL_BATCH_OFF_LEADER_EPOCH);
	out->magic = (int8_t)data[TL_BATCH_OFF_MAGIC];
	out->crc = tl_be32_get(data + TL_BATCH_OFF_CRC);
	out->attributes = (int16_t)tl_be16_get(data + TL_BATCH_OFF_ATTRIBUTES);
	out->last_offset_delta = (int32_t)tl_be32_get(data + TL_BATCH_OFF_LAST_OFFSET_DELTA);
	out->base_timestamp = (int64_t)tl_be64_get(data + TL_BATCH_OFF_BASE_TIMESTAMP);
	out->max_timestamp = (int64_t)tl_be64_get(data + TL_BATCH_OFF_MAX_TIMESTAMP);
	out->producer_id = (int64_t)tl_be64_get(data + TL_BATCH_OFF_PRODUCER_ID);
	out->producer_epoch = (int16_t)tl_be16_get(data + TL_BATCH_OFF_PRODUCER_EPOCH);
	out->base_sequence = (int32_t)tl_be32_get(data + TL_BATCH_OFF_BASE_SEQUENCE);
	out->records_count = (int32_t)tl_be32_get(data + TL_BATCH_OFF_RECORDS_COUNT);
	if (out->magic != TL_BATCH_MAGIC)
		return TL_ERR_CORRUPT_MESSAGE;
	return TL_OK;
}

static tl_err batch_reject(const char **why_out, const char *why, tl_err err)
{
	if (why_out)
		*why_out = why;
	return err;
}

static tl_err batch_validate(const uint8_t *data, size_t len, struct tl_batch_header *out,
			     const char **why_out, bool stored)
{
	if (why_out)
		*why_out = NULL;
	if (len < TL_BATCH_HEADER_BYTES)
		return batch_reject(why_out, "batch shorter than the 61-byte header",
				    TL_ERR_CORRUPT_MESSAGE);
	tl_err err = tl_batch_header_decode(data, len, out);
	if (err != TL_OK)
		return batch_reject(why_out, "magic is not 2", TL_ERR_CORRUPT_MESSAGE);
	if ((int64_t)out->batch_length + TL_BATCH_LOG_OVERHEAD != (int64_t)len)
		return batch_reject(why_out, "batchLength does not match the bytes sent",
				    TL_ERR_CORRUPT_MESSAGE);
	uint32_t crc = tl_crc32c(0, data + TL_BATCH_OFF_ATTRIBUTES, len - TL_BATCH_OFF_ATTRIBUTES);
	if (crc != out->crc)
		return batch_reject(why_out, "CRC-32C mismatch", TL_ERR_CORRUPT_MESSAGE);
	if (out->last_offset_delta < 0 || out->records_count < 0)
		return batch_reject(why_out, "negative lastOffsetDelta or recordsCount",
				    TL_ERR_INVALID_RECORD);
	if (out->records_count == 0 && !tl_batch_is_control(out) && !stored)
		return batch_reject(why_out, "batch holds no records", TL_ERR_INVALID_RECORD);
	if (out->records_count > 0 && out->last_offset_delta + 1 != out->records_count &&
	    (!stored || out->records_count > out->last_offset_delta + 1))
		return batch_reject(why_out, "lastOffsetDelta + 1 != recordsCount",
				    TL_ERR_INVALID_RECORD);
	if ((out->attributes & TL_BATCH_ATTR_COMPRESSION_MASK) > TL_COMPRESSION_ZSTD)
		return batch_reject(why_out, "unknown compression codec",
				    TL_ERR_UNSUPPORTED_COMPRESSION_TYPE);
	return TL_OK;
}

tl_err tl_batch_validate(const uint8_t *data, size_t len, struct tl_batch_header *out,
			 const char **why_out)
{
	return batch_validate(data, len, out, why_out, false);
}

tl_err tl_batch_validate_stored(const uint8_t *data, size_t len, struct tl_batch_header *out,
				const char **why_out)
{
	return batch_validate(data, len, out, why_out, true);
}

void tl_batch_assign(uint8_t *data, int64_t base_offset, int32_t leader_epoch)
{
	tl_be64_put(data + TL_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
	tl_be32_put(data + TL_BATCH_OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
}

void tl_batch_crc_update(uint8_t *data, size_t len)
{
	TL_ASSERT(len >= TL_BATCH_HEADER_BYTES);
	uint32_t crc = tl_crc32c(0, data + TL_BATCH_OFF_ATTRIBUTES, len - TL_BATCH_OFF_ATTRIBUTES);
	tl_be32_put(data + TL_BATCH_OFF_CRC, crc);
}

void tl_batch_set_max_timestamp(uint8_t *data, size_t len, int64_t max_timestamp_ms,
				bool log_append_time)
{
	uint16_t attributes = tl_be16_get(data + TL_BATCH_OFF_ATTRIBUTES);
	attributes = log_append_time ? (uint16_t)(attributes | TL_BATCH_ATTR_LOG_APPEND_TIME)
				     : (uint16_t)(attributes & ~TL_BATCH_ATTR_LOG_APPEND_TIME);
	tl_be16_put(data + TL_BATCH_OFF_ATTRIBUTES, attributes);
	tl_be64_put(data + TL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_timestamp_ms);
	tl_batch_crc_update(data, len);
}

int tl_batch_control_type(const uint8_t *data, size_t len)
{
	int32_t coordinator_epoch;
	return tl_batch_control_parse(data, len, &coordinator_epoch);
}

int tl_batch_control_parse(const uint8_t *data, size_t len, int32_t *coordinator_epoch)
{
	*coordinator_epoch = -1;
	if (len <= TL_BATCH_HEADER_BYTES)
		return -1;
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, data + TL_BATCH_HEADER_BYTES, len - TL_BATCH_HEADER_BYTES);
	tl_cursor_varint(&cursor);  /* record length */
	tl_cursor_i8(&cursor);      /* attributes */
	tl_cursor_varlong(&cursor); /* timestamp delta */
	tl_cursor_varint(&cursor);  /* offset delta */
	int32_t key_len = tl_cursor_varint(&cursor);
	if (cursor.failed || key_len < 4)
		return -1;
	int16_t version = tl_cursor_i16(&cursor);
	int16_t type = tl_cursor_i16(&cursor);
	if (cursor.failed || version < 0 ||
	    (type != TL_BATCH_CONTROL_ABORT && type != TL_BATCH_CONTROL_COMMIT))
		return -1;
	/* The value: EndTxnMarker {version int16, coordinatorEpoch int32}. */
	tl_cursor_skip(&cursor, (size_t)key_len - 4);
	int32_t value_len = tl_cursor_varint(&cursor);
	if (!cursor.failed && value_len >= 6) {
		tl_cursor_i16(&cursor);
		int32_t epoch = tl_cursor_i32(&cursor);
		if (!cursor.failed)
			*coordinator_epoch = epoch;
	}
	return type;
}
