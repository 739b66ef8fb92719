/* batch.h - RecordBatch v2 (magic 2): header view, validation, offset assignment.
 * Kafka stores batches exactly as they arrive, so the broker never decodes records
 * on the produce path: it checks the header and the CRC, then rewrites baseOffset
 * (and partitionLeaderEpoch), which sit outside the CRC.
 * Layout (61-byte header, big-endian):
 *   0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
 *  17 crc u32 (CRC-32C of bytes 21..end) | 21 attributes i16 | 23 lastOffsetDelta i32
 *  27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
 *  53 baseSequence i32 | 57 recordsCount i32 | 61 records... */
#ifndef TL_PROTOCOL_BATCH_H
#define TL_PROTOCOL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/error.h"

#define TL_BATCH_HEADER_BYTES 61
#define TL_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define TL_BATCH_MAGIC        2

#define TL_BATCH_OFF_BASE_OFFSET       0
#define TL_BATCH_OFF_LENGTH            8
#define TL_BATCH_OFF_LEADER_EPOCH      12
#define TL_BATCH_OFF_MAGIC             16
#define TL_BATCH_OFF_CRC               17
#define TL_BATCH_OFF_ATTRIBUTES        21
#define TL_BATCH_OFF_LAST_OFFSET_DELTA 23
#define TL_BATCH_OFF_BASE_TIMESTAMP    27
#define TL_BATCH_OFF_MAX_TIMESTAMP     35
#define TL_BATCH_OFF_PRODUCER_ID       43
#define TL_BATCH_OFF_PRODUCER_EPOCH    51
#define TL_BATCH_OFF_BASE_SEQUENCE     53
#define TL_BATCH_OFF_RECORDS_COUNT     57

#define TL_BATCH_ATTR_COMPRESSION_MASK 0x07
#define TL_BATCH_ATTR_LOG_APPEND_TIME  0x08
#define TL_BATCH_ATTR_TRANSACTIONAL    0x10
#define TL_BATCH_ATTR_CONTROL          0x20
#define TL_BATCH_ATTR_DELETE_HORIZON   0x40

enum tl_compression {
	TL_COMPRESSION_NONE = 0,
	TL_COMPRESSION_GZIP = 1,
	TL_COMPRESSION_SNAPPY = 2,
	TL_COMPRESSION_LZ4 = 3,
	TL_COMPRESSION_ZSTD = 4,
};

/* Decoded header fields of one batch. Points at nothing: a plain copy. */
struct tl_batch_header {
	int64_t base_offset;
	int32_t batch_length; /* bytes after the length field: whole size - 12 */
	int32_t partition_leader_epoch;
	int8_t magic;
	uint32_t crc;
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t records_count;
};

/* Whole size of the batch that starts at @data (12 + batchLength), read from the first
 * 12 bytes; @len must be >= 12. Returns -1 when the length field is < 49 (too small to
 * hold a v2 header). */
int64_t tl_batch_size(const uint8_t *data, size_t len);

/* Parses the 61-byte header at @data. Checks only that @len >= 61 and magic == 2.
 * Returns TL_OK, TL_ERR_AGAIN (fewer than 61 bytes), or TL_ERR_CORRUPT_MESSAGE. */
tl_err tl_batch_header_decode(const uint8_t *data, size_t len, struct tl_batch_header *out);

/* Full check of one batch occupying exactly @len bytes: length field matches @len,
 * magic 2, CRC-32C matches, lastOffsetDelta >= 0, recordsCount >= 0,
 * lastOffsetDelta + 1 == recordsCount for non-empty producer batches, codec known.
 * Returns TL_OK or TL_ERR_CORRUPT_MESSAGE (INVALID_RECORD for a semantic problem),
 * with a static reason in *why_out if not NULL. */
tl_err tl_batch_validate(const uint8_t *data, size_t len, struct tl_batch_header *out,
			 const char **why_out);

/* tl_batch_validate() for a batch read back from a log, which compaction may have
 * thinned (Kafka's cleaner does the same): recordsCount may be below lastOffsetDelta + 1,
 * and 0 (a header-only batch kept for its offsets and producer). */
tl_err tl_batch_validate_stored(const uint8_t *data, size_t len, struct tl_batch_header *out,
				const char **why_out);

/* Sets baseOffset (and partitionLeaderEpoch) in place; neither is covered by the CRC. */
void tl_batch_assign(uint8_t *data, int64_t base_offset, int32_t leader_epoch);

/* Sets maxTimestamp and the timestamp type (the LogAppendTime attribute bit when
 * @log_append_time, else CreateTime) and recomputes the CRC (both are covered by it):
 * the broker's stamp on a LogAppendTime topic, or on a CreateTime topic what the
 * records say (Kafka's LogValidator). */
void tl_batch_set_max_timestamp(uint8_t *data, size_t len, int64_t max_timestamp_ms,
				bool log_append_time);

/* The control type of a control batch (0 ABORT, 1 COMMIT: the key of its first record,
 * which is never compressed), or -1 when @data holds no readable control record. Reads
 * at most the first record. */
#define TL_BATCH_CONTROL_ABORT  0
#define TL_BATCH_CONTROL_COMMIT 1
int tl_batch_control_type(const uint8_t *data, size_t len);
/* As tl_batch_control_type, and sets *@coordinator_epoch to the coordinatorEpoch of the
 * EndTxnMarker value (-1 when the record has no readable value). */
int tl_batch_control_parse(const uint8_t *data, size_t len, int32_t *coordinator_epoch);

/* Recomputes and stores the CRC of a batch of @len bytes. */
void tl_batch_crc_update(uint8_t *data, size_t len);

static inline int64_t tl_batch_last_offset(const struct tl_batch_header *h)
{
	return h->base_offset + h->last_offset_delta;
}
static inline bool tl_batch_is_control(const struct tl_batch_header *h)
{
	return (h->attributes & TL_BATCH_ATTR_CONTROL) != 0;
}
static inline bool tl_batch_is_transactional(const struct tl_batch_header *h)
{
	return (h->attributes & TL_BATCH_ATTR_TRANSACTIONAL) != 0;
}
static inline enum tl_compression tl_batch_compression(const struct tl_batch_header *h)
{
	return (enum tl_compression)(h->attributes & TL_BATCH_ATTR_COMPRESSION_MASK);
}

#endif
