/* records.h - RecordBatch v2 records: a builder for producers, an iterator for consumers,
 * and the COMMIT/ABORT control batch the transaction coordinator asks leaders to write.
 * batch.h owns the 61-byte header; this file owns what follows it.
 *
 * Builder: records are appended uncompressed into the builder's own memory (the key,
 * value and headers are copied). finish() writes the header, compresses the records
 * (zstd) if asked, and stores the CRC-32C. The producer id, epoch and base sequence may
 * be set at any time before finish(), or patched later in the finished bytes with
 * tl_records_batch_set_producer() (they sit in the header, outside the compressed part).
 *
 * Iterator: walks the batches of a records blob (a Fetch response's `records` field),
 * then the records of each batch, decompressing zstd with the streaming API. A blob may
 * end with a partial batch (Fetch truncates at max bytes): that is the end, not an error.
 * Record keys, values and headers point into the blob or into the iterator's
 * decompression buffer, valid until the next call on the iterator. */
#ifndef TL_PROTOCOL_RECORDS_H
#define TL_PROTOCOL_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zstd.h>

#include "common/buf.h"
#include "protocol/batch.h"
#include "protocol/validate.h"
#include "tally/error.h"

#define TL_RECORDS_NO_PRODUCER_ID   (-1LL)
#define TL_RECORDS_NO_SEQUENCE      (-1)
#define TL_RECORDS_NO_TIMESTAMP     (-1LL)
/* A record batch holds at most this many records: one Produce request per partition
 * carries one batch, and Kafka's own producer never writes more. */
#define TL_RECORDS_COUNT_MAX        (1 << 24)
/* Headers per record accepted by the iterator (Kafka has no limit; ours protects memory). */
#define TL_RECORDS_HEADERS_MAX      65536
/* Default bound on one batch's decompressed records (a zip bomb stops here). */
#define TL_RECORDS_DECOMPRESSED_MAX (256u << 20)

/* Control record types (ControlRecordType.java). */
#define TL_CONTROL_ABORT  0
#define TL_CONTROL_COMMIT 1

/* One record header: key is a non-null string, value nullable bytes (len -1 = null). */
struct tl_record_header {
	struct tl_str key;
	struct tl_bytes value;
};

/* ---- builder ---- */

struct tl_records_builder {
	struct tl_buf records; /* room for the batch header, then the encoded records,
				  uncompressed (empty before the first record) */
	enum tl_compression compression;
	int32_t record_count;
	int64_t base_timestamp; /* first record's timestamp, ms */
	int64_t max_timestamp;  /* largest record timestamp, ms */
	int64_t producer_id;    /* -1 = not idempotent */
	int16_t producer_epoch;
	int32_t base_sequence; /* -1 = none */
	bool transactional;
};

void tl_records_builder_init(struct tl_records_builder *builder, enum tl_compression compression);
void tl_records_builder_deinit(struct tl_records_builder *builder);
/* Empties the builder for the next batch, keeping its memory and compression. */
void tl_records_builder_reset(struct tl_records_builder *builder);

/* Bytes one record adds to the uncompressed batch (length prefix included). A null
 * key or value has len -1. @timestamp_delta and @offset_delta as they will be written. */
size_t tl_records_record_size(int64_t timestamp_delta, int32_t offset_delta, struct tl_bytes key,
			      struct tl_bytes value, const struct tl_record_header *headers,
			      int32_t header_count);

/* Appends one record. Copies @key, @value and @headers. Returns TL_ERR_LIMIT past
 * TL_RECORDS_COUNT_MAX records, TL_ERR_INVALID for a negative header count or a null
 * header key, TL_ERR_NOMEM. */
tl_err tl_records_builder_append(struct tl_records_builder *builder, int64_t timestamp_ms,
				 struct tl_bytes key, struct tl_bytes value,
				 const struct tl_record_header *headers, int32_t header_count);

/* Uncompressed size the finished batch would have now: header plus records. (Once a
 * record is in, `records` starts with the header's room.) */
static inline size_t tl_records_builder_bytes(const struct tl_records_builder *builder)
{
	return builder->records.len > 0 ? builder->records.len : TL_BATCH_HEADER_BYTES;
}

void tl_records_builder_set_producer(struct tl_records_builder *builder, int64_t producer_id,
				     int16_t producer_epoch, int32_t base_sequence,
				     bool transactional);

/* Appends the finished batch (header, records compressed if so configured, CRC) to
 * @out. baseOffset 0, partitionLeaderEpoch -1. @cctx is a zstd context to reuse (NULL:
 * one is made for this call). The builder is unchanged. Returns TL_ERR_INVALID for an
 * empty builder, TL_ERR_UNSUPPORTED_COMPRESSION_TYPE for a codec other than none/zstd,
 * TL_ERR_NOMEM. */
tl_err tl_records_builder_finish(const struct tl_records_builder *builder, ZSTD_CCtx *cctx,
				 struct tl_buf *out);
/* The same into an empty @out, without copying an uncompressed batch: its header is
 * written in the room the builder left before the records, and the builder's memory
 * becomes @out's. A compressed batch is written to @out as tl_records_builder_finish
 * does. Either way the builder is then empty, as after reset (an uncompressed one
 * holding no memory). */
tl_err tl_records_builder_finish_move(struct tl_records_builder *builder, ZSTD_CCtx *cctx,
				      struct tl_buf *out);

/* Appends @len bytes at @src to @out compressed as one zstd frame (default level);
 * *@written_out gets its size. @cctx is a context to reuse (NULL: one is made for this
 * call). TL_ERR_NOMEM; @out is then as it was. Also the broker's recompression and the
 * log cleaner's. */
tl_err tl_records_zstd_compress(ZSTD_CCtx *cctx, const uint8_t *src, size_t len, struct tl_buf *out,
				size_t *written_out);

/* Rewrites producer id, epoch and base sequence of the finished batch at @data (@len
 * bytes) and recomputes its CRC. For a producer whose id or epoch changed before the
 * batch was first sent. */
void tl_records_batch_set_producer(uint8_t *data, size_t len, int64_t producer_id,
				   int16_t producer_epoch, int32_t base_sequence);

/* Appends a 78-byte control batch holding one COMMIT (@commit) or ABORT marker, written
 * as Kafka's MemoryRecords.writeEndTransactionalMarker does: attributes transactional |
 * control, baseSequence -1, baseOffset 0, partitionLeaderEpoch -1 (the leader assigns
 * both with tl_batch_assign). Returns TL_ERR_NOMEM if @out failed. */
tl_err tl_records_control_marker_build(struct tl_buf *out, bool commit, int64_t producer_id,
				       int16_t producer_epoch, int32_t coordinator_epoch,
				       int64_t timestamp_ms);

/* ---- iterator ---- */

/* One decoded record. Pointers are valid until the next call on the iterator. */
struct tl_record {
	int64_t offset;
	int64_t timestamp_ms;
	int32_t sequence;      /* baseSequence + offsetDelta, or -1 */
	struct tl_bytes key;   /* len -1 = null */
	struct tl_bytes value; /* len -1 = null (tombstone) */
	int32_t header_count;
	const struct tl_record_header *headers;
};

struct tl_records_iter {
	struct tl_cursor blob;        /* remaining batches */
	struct tl_batch_header batch; /* the current batch */
	bool in_batch;                /* batch is set and its records are being read */
	struct tl_cursor records;     /* remaining records of the current batch */
	int32_t records_left;
	size_t decompressed_max;          /* limit on one batch's decompressed bytes */
	struct tl_batch_scratch scratch;  /* owned: decoders and the current batch's
					     records if compressed */
	struct tl_record_header *headers; /* owned scratch for the current record */
	int32_t headers_cap;
	bool verify_crc; /* check each batch's CRC before reading it */
};

/* Iterates over the @len bytes at @data (borrowed until deinit). */
void tl_records_iter_init(struct tl_records_iter *iter, const uint8_t *data, size_t len);
void tl_records_iter_deinit(struct tl_records_iter *iter);

/* Moves to the next batch and copies its header to @out. Returns TL_OK,
 * TL_ERR_NOT_FOUND at the end (including a partial trailing batch),
 * TL_ERR_CORRUPT_MESSAGE (bad length, magic or CRC). The raw batch bytes are
 * available as @batch_data_out/@batch_len_out if not NULL. */
tl_err tl_records_iter_next_batch(struct tl_records_iter *iter, struct tl_batch_header *out,
				  const uint8_t **batch_data_out, size_t *batch_len_out);

/* Decodes the next record of the current batch. Returns TL_OK, TL_ERR_NOT_FOUND when
 * the batch has no more records, TL_ERR_CORRUPT_MESSAGE for a malformed record,
 * TL_ERR_UNSUPPORTED_COMPRESSION_TYPE (an unknown codec), TL_ERR_LIMIT when the
 * decompressed records exceed decompressed_max, TL_ERR_NOMEM. */
tl_err tl_records_iter_next(struct tl_records_iter *iter, struct tl_record *out);

/* For a record of a control batch: its control type (TL_CONTROL_*), or -1 if the key
 * is not a valid control key. */
int tl_records_control_type(const struct tl_record *record);

#endif
