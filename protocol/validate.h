/* validate.h - record-level checks of a RecordBatch v2 on produce, as Kafka's
 * LogValidator does them: the records are decompressed (gzip, snappy, lz4, zstd) and
 * walked; recordsCount, every offsetDelta, every record's length and fields must agree
 * with the bytes. Bytes in, verdict out; no I/O.
 * The scratch holds the decompression contexts and one output buffer, reused from batch
 * to batch (one per event loop), so validating allocates only while the buffer grows
 * to the largest batch seen. */
#ifndef TL_PROTOCOL_VALIDATE_H
#define TL_PROTOCOL_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "protocol/batch.h"
#include "tally/error.h"

struct tl_batch_scratch {
	uint8_t *buf;     /* decompressed records */
	size_t cap;       /* bytes allocated at buf */
	size_t max_bytes; /* decompressed size above which a batch is refused */
	void *zstd;       /* ZSTD_DCtx, created on first use */
	void *lz4;        /* LZ4F_dctx, created on first use */
	void *zlib;       /* z_stream, created on first use */
	/* The compressed body whose records buf holds, as validated last (NULL: none). */
	const uint8_t *body;
	size_t body_bytes;
	size_t records_bytes; /* its decompressed records at buf */
	/* The largest record timestamp (baseTimestamp + timestampDelta) of the batch
	 * tl_batch_validate_records() last passed: what its header's maxTimestamp must say
	 * under CreateTime (Kafka's LogValidator sets it from the records). */
	int64_t max_timestamp;
};

/* @max_bytes bounds a batch's decompressed records (a zip bomb costs no more). */
void tl_batch_scratch_init(struct tl_batch_scratch *scratch, size_t max_bytes);
void tl_batch_scratch_deinit(struct tl_batch_scratch *scratch);

/* Checks the records of the batch at @data (@len bytes) whose header @h passed
 * tl_batch_validate. TL_ERR_CORRUPT_MESSAGE when the compressed body does not
 * decompress or a record's framing overruns; TL_ERR_INVALID_RECORD when recordsCount or
 * an offsetDelta lies, bytes follow the last record, or, with @key_required (a compacted
 * topic, as Kafka's LogValidator), a record has a null key; *@why_out says which
 * (static text). Borrows @scratch. */
tl_err tl_batch_validate_records(const uint8_t *data, size_t len, const struct tl_batch_header *h,
				 bool key_required, struct tl_batch_scratch *scratch,
				 const char **why_out);

/* The decompressed records of the compressed batch body at @body (@body_bytes), when
 * the last tl_batch_validate_records() of @scratch validated exactly those bytes and
 * nothing has decompressed since (recompression then decompresses nothing again);
 * NULL otherwise. The caller must not have changed the bytes at @body since. */
const uint8_t *tl_batch_scratch_records(const struct tl_batch_scratch *scratch, const uint8_t *body,
					size_t body_bytes, size_t *records_bytes_out);

/* Decompresses @in_len bytes of @codec's framing into scratch->buf (*@out_len bytes).
 * TL_ERR_CORRUPT_MESSAGE when they do not decompress, TL_ERR_LIMIT past
 * scratch->max_bytes, TL_ERR_UNSUPPORTED_COMPRESSION_TYPE for an unknown codec,
 * TL_ERR_NOMEM. */
tl_err tl_batch_decompress(struct tl_batch_scratch *scratch, enum tl_compression codec,
			   const uint8_t *in, size_t in_len, size_t *out_len);

/* Appends @len bytes at @in compressed with @codec (gzip, snappy or lz4; zstd goes
 * through the caller's ZSTD_CCtx) to @out, framed as Kafka's Java client frames them.
 * gzip allocates its deflate state per call. */
tl_err tl_batch_compress(enum tl_compression codec, const uint8_t *in, size_t len,
			 struct tl_buf *out);

#endif
