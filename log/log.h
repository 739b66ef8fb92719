/* log.h - one partition's commit log on disk: the interface of log/.
 * A partition is a directory (`<topic>-<partition>` under log.dirs) of segments:
 *   <20-digit base offset>.log        record batches exactly as on the wire
 *   <20-digit base offset>.index      sparse offset index: (u32 relative offset, u32 position)
 *   <20-digit base offset>.timeindex  (i64 max timestamp, u32 relative offset)
 *   <20-digit base offset>.txnindex   aborted transactions whose ABORT marker is in the
 *                                     segment: (u16 version 0, i64 producer id, i64 first
 *                                     offset, i64 marker offset, i64 LSO then)
 *   <20-digit offset>.snapshot        producer state as of that offset
 * plus `.clean-shutdown` while the log is closed cleanly.
 *
 * Writes go through a tl_ring (io_uring or the sync fallback) owned by the caller's
 * event loop. Group commit: tl_log_append() assigns offsets and queues the batch;
 * tl_log_flush() (called once per loop turn) writes every queued batch with one writev
 * per segment, and every written batch is then covered by one fdatasync per segment;
 * waiters fire when the sync covering them completes. The two stages overlap: the next
 * write runs while the previous fdatasync is in flight.
 *
 * Offsets:
 *   start_offset <= high_watermark <= end_offset
 *   end_offset      next offset to assign (log end offset, LEO)
 *   high_watermark  every offset below it is on stable storage; on one node this is
 *                   what fetch may return and what acks=1/-1 wait for
 * (1) Only the last (active) segment is written; sealed segments never change.
 * (2) Base offsets strictly increase along the segment list.
 * (3) A failed write or fdatasync makes the log FAILED: appends answer
 *     KAFKA_STORAGE_ERROR and waiters fire with it until the log is reopened. A failed
 *     fsync is never retried: the kernel may already have dropped the dirty pages.
 * Thread: a log belongs to one event loop thread; no call is thread-safe. */
#ifndef TL_LOG_LOG_H
#define TL_LOG_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ring.h"
#include "protocol/batch.h"
#include "tally/error.h"

struct tl_log_config {
	int64_t producer_id_expiration_ms; /* producer.id.expiration.ms */
	int64_t segment_bytes;   /* log.segment.bytes: roll when the next batch would pass it */
	int64_t segment_ms;      /* log.roll.ms: roll a non-empty segment older than this */
	int64_t retention_bytes; /* log.retention.bytes: -1 = no size limit */
	int64_t retention_ms;    /* log.retention.ms: -1 = keep forever */
	int32_t index_interval_bytes; /* log.index.interval.bytes: bytes between index entries */
	int32_t index_bytes_max; /* log.index.size.max.bytes: roll when an index is this full */
};

/* Kafka's defaults. */
void tl_log_config_defaults(struct tl_log_config *config);

struct tl_log;
struct tl_log_segment;

/* Opens the partition directory @dir, creating it if absent, and recovers it: with the
 * clean-shutdown marker present, trusts the indexes; otherwise scans the active segment
 * batch by batch (length, magic, CRC) and truncates at the first bad byte, and rebuilds
 * any missing or unreadable index. Copies @config. Borrows @ring for the log's life.
 * Returns TL_OK, TL_ERR_IO or TL_ERR_NOMEM; *log_out is set only on TL_OK. */
tl_err tl_log_open(const char *dir, const struct tl_log_config *config, struct tl_ring *ring,
		   struct tl_log **log_out);

/* Waits for queued writes, fsyncs, writes the clean-shutdown marker (if the log is not
 * FAILED) and frees the log. Pending waiters fire before it returns. */
void tl_log_close(struct tl_log *log);

/* Closes the log without a marker and deletes its directory and files (DeleteTopics). */
tl_err tl_log_remove(struct tl_log *log);

/* Changes the roll/retention settings of an open log. */
void tl_log_set_config(struct tl_log *log, const struct tl_log_config *config);

/* ---- appending ---- */

struct tl_log_append_result {
	int64_t base_offset; /* of the batch appended, or of the original for a duplicate */
	int64_t last_offset;
	bool duplicate; /* a producer retry of a cached batch: nothing was appended */
};

/* Appends one batch that passed tl_batch_validate(): @data holds exactly @len bytes and
 * @header its decoded header. A batch with a producer id is first checked against the
 * partition's producer state (log/producer_state.h): a duplicate of one of the
 * producer's last five batches is not appended and returns the original offsets with
 * `duplicate` set; a sequence or epoch problem returns its Kafka error.
 * Otherwise assigns offsets end_offset .. end_offset + lastOffsetDelta by rewriting
 * baseOffset in @data (the CRC does not cover it), updates the indexes and producer
 * state, and queues the write. Borrows @data until the batch is durable: the caller
 * keeps it alive until a waiter covering last_offset fires. Rolls a new segment first
 * when needed. Returns TL_OK, a producer-state error (OUT_OF_ORDER_SEQUENCE_NUMBER,
 * INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID, INVALID_RECORD), or
 * TL_ERR_KAFKA_STORAGE_ERROR when FAILED. A control batch (a COMMIT or ABORT marker from
 * the transaction coordinator) closes its producer's open transaction; an ABORT enters
 * it in the aborted-transaction index. */
tl_err tl_log_append(struct tl_log *log, uint8_t *data, size_t len,
		     const struct tl_batch_header *header, struct tl_log_append_result *out);

/* Starts writing everything queued, unless a write is already in flight (then the queued
 * batches go in the next one, started when it completes); written batches are synced as
 * soon as no fdatasync is in flight. Fires waiters already durable. Call once per loop
 * turn for each log that was appended to; cheap when nothing is queued. */
void tl_log_flush(struct tl_log *log);

struct tl_log_waiter;
typedef void (*tl_log_waiter_fn)(struct tl_log_waiter *waiter, tl_err err);

/* Fires once high_watermark > @offset (err TL_OK), or the log fails (err
 * TL_ERR_KAFKA_STORAGE_ERROR), or the log closes. Waiters fire in offset order. */
struct tl_log_waiter {
	int64_t offset;
	tl_log_waiter_fn done;
	void *ctx;
	struct tl_log_waiter *next; /* private */
};
void tl_log_wait_durable(struct tl_log *log, struct tl_log_waiter *waiter);

/* Called after every advance of the high watermark (after waiters), e.g. to wake fetches
 * waiting in long-poll. One listener per log; NULL removes it. */
typedef void (*tl_log_listener_fn)(void *ctx, struct tl_log *log);
void tl_log_set_listener(struct tl_log *log, tl_log_listener_fn fn, void *ctx);

/* ---- reading ---- */

/* A range of one segment file holding whole batches. Holds a reference on the segment
 * so retention cannot close its file while a response is being sent. */
struct tl_log_read {
	int fd;
	int64_t position;               /* file offset of the first byte */
	int64_t bytes;                  /* 0 when there is nothing to read yet */
	int64_t first_offset;           /* base offset of the first batch in the range */
	struct tl_log_segment *segment; /* reference; NULL when bytes == 0 */
};

/* Finds the batch holding @offset (or the first batch after it) and returns a file range
 * of whole batches, ending before any batch whose last offset >= @max_offset, at most
 * @max_bytes long except that with @min_one the first batch is returned whatever its
 * size (KIP-74). @max_offset is the high watermark (or the LSO for read_committed).
 * Returns TL_OK (bytes may be 0 when @offset == @max_offset), or
 * TL_ERR_OFFSET_OUT_OF_RANGE when @offset < start_offset or > high_watermark. */
tl_err tl_log_read(struct tl_log *log, int64_t offset, int64_t max_offset, int32_t max_bytes,
		   bool min_one, struct tl_log_read *out);
/* Drops the reference taken by tl_log_read (signature fits tl_buf_file_span's release). */
void tl_log_read_release(void *segment);

int64_t tl_log_start_offset(const struct tl_log *log);
int64_t tl_log_end_offset(const struct tl_log *log);
int64_t tl_log_high_watermark(const struct tl_log *log);
/* Bytes on disk over all segments. */
int64_t tl_log_size_bytes(const struct tl_log *log);

/* ListOffsets by timestamp: the base offset of the first batch whose maxTimestamp >=
 * @timestamp_ms, with that maxTimestamp. TL_ERR_NOT_FOUND when no batch qualifies. */
tl_err tl_log_offset_for_timestamp(struct tl_log *log, int64_t timestamp_ms, int64_t *offset_out,
				   int64_t *timestamp_out);

/* ---- transactions ---- */

/* The last stable offset: the first offset of the oldest transaction that no durable
 * COMMIT or ABORT marker has closed yet, or the high watermark when none is open.
 * read_committed fetches and ListOffsets stop here. */
int64_t tl_log_last_stable_offset(struct tl_log *log);

/* One aborted transaction, from the aborted-transaction index (`.txnindex`). */
struct tl_log_aborted_txn {
	int64_t producer_id;
	int64_t first_offset; /* of the transaction's first batch in this partition */
	int64_t last_offset;  /* of its ABORT marker */
};

/* The aborted transactions whose records may lie in [@from, @to) (first_offset < @to and
 * last_offset >= @from), in marker order: copies at most @max into @out and returns how
 * many there are in all, so a caller can size its buffer with a first call (@max 0). */
uint32_t tl_log_aborted_txns(const struct tl_log *log, int64_t from, int64_t to,
			     struct tl_log_aborted_txn *out, uint32_t max);

/* One producer known to the partition (DescribeProducers). */
struct tl_log_producer {
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t last_sequence;  /* of its newest batch, -1 if none */
	int64_t last_timestamp; /* its newest batch's maxTimestamp */
	int32_t coordinator_epoch;
	int64_t txn_first_offset; /* of its open transaction, -1 if none */
};

/* Copies up to @max of the partition's producers into @out; returns how many there are. */
uint32_t tl_log_producers(const struct tl_log *log, struct tl_log_producer *out, uint32_t max);

/* ---- maintenance ---- */

/* Periodic work, about once a second: roll by log.roll.ms, delete whole segments past
 * retention (never the active one). Returns the number of segments deleted. */
int tl_log_tick(struct tl_log *log, int64_t now_ms);

bool tl_log_is_writable(const struct tl_log *log);
/* "fdatasync 00000000000004096000.log: EIO", or "" when healthy. */
const char *tl_log_last_error(const struct tl_log *log);

#endif
