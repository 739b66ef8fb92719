/* producer_state.h - per-partition state of idempotent and transactional producers
 * (private to log/). For each producer id: its epoch and the metadata of its last five
 * batches, so a retried batch is recognised and answered with its original offsets.
 * The state is derived from batch headers alone, so it is rebuilt from the log (a
 * snapshot plus a replay of the headers after it) after a restart or on a new leader.
 *
 * Rules (Kafka's, ProducerAppendInfo / UnifiedLog.findDuplicateBatch):
 *   epoch < current                 INVALID_PRODUCER_EPOCH
 *   unknown producer, first seq != 0 UNKNOWN_PRODUCER_ID
 *   epoch > current (a bump)        first seq must be 0, else OUT_OF_ORDER_SEQUENCE_NUMBER
 *   same epoch, (first,last) seq equal to a cached batch   duplicate: append nothing
 *   same epoch, first == last seq of newest + 1 (mod 2^31) append
 *   otherwise                       OUT_OF_ORDER_SEQUENCE_NUMBER
 * Invariants:
 * (1) At most TL_PSTATE_BATCHES batches per producer, newest last.
 * (2) Cached batches of one producer have increasing offsets.
 * (3) An entry with an open transaction (txn_first_offset >= 0) never expires. */
#ifndef TL_LOG_PRODUCER_STATE_H
#define TL_LOG_PRODUCER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/batch.h"
#include "tally/error.h"

#define TL_PSTATE_BATCHES 5

struct tl_pstate_batch {
	int32_t first_seq;
	int32_t last_seq;
	int64_t first_offset;
	int64_t last_offset;
	int64_t max_timestamp;
};

struct tl_pstate_entry {
	int64_t producer_id;
	int16_t epoch;             /* -1: known only through a marker so far */
	int32_t coordinator_epoch; /* of the last transaction marker, -1 if none */
	int64_t txn_first_offset;  /* first offset of the open transaction, -1 if none */
	int64_t last_timestamp;    /* newest batch's maxTimestamp, for expiry */
	uint8_t batch_count;
	struct tl_pstate_batch batches[TL_PSTATE_BATCHES]; /* oldest first */
	struct tl_pstate_entry *next;                      /* hash chain */
};

struct tl_pstate {
	struct tl_pstate_entry **buckets;
	uint32_t bucket_count; /* power of two */
	uint32_t count;
};

tl_err tl_pstate_init(struct tl_pstate *ps);
void tl_pstate_deinit(struct tl_pstate *ps);
void tl_pstate_clear(struct tl_pstate *ps);

struct tl_pstate_entry *tl_pstate_find(const struct tl_pstate *ps, int64_t producer_id);

/* The last sequence of a batch: base + delta, wrapping from INT32_MAX to 0. */
int32_t tl_pstate_last_seq(int32_t base_sequence, int32_t last_offset_delta);

/* Checks a data batch with producer_id >= 0 (header offsets not yet assigned).
 * Returns TL_OK (append it), TL_ERR_EXISTS with *dup_out set (a duplicate of a cached
 * batch: answer with its offsets, append nothing), or a Kafka error. */
tl_err tl_pstate_check(const struct tl_pstate *ps, const struct tl_batch_header *h,
		       struct tl_pstate_batch *dup_out);

/* Records an appended batch (offsets assigned). Used after tl_pstate_check on the
 * append path and, unchecked, when replaying the log. Control batches end the
 * producer's open transaction. Returns TL_ERR_NOMEM only. */
tl_err tl_pstate_update(struct tl_pstate *ps, const struct tl_batch_header *h);

/* Drops producers whose newest batch is older than @expiration_ms before @now_ms,
 * except those with an open transaction. Returns how many were dropped. */
uint32_t tl_pstate_expire(struct tl_pstate *ps, int64_t now_ms, int64_t expiration_ms);
/* The newest last_timestamp of any producer (a data batch's: markers do not move it),
 * or -1 when there is none. */
int64_t tl_pstate_newest_timestamp(const struct tl_pstate *ps);

/* The smallest first offset of an open transaction, or -1 when none is open. */
int64_t tl_pstate_first_open_txn(const struct tl_pstate *ps);

/* Serialises the table (with the log offset it reflects) into a malloc'd buffer:
 * "TLPS" magic, u16 version, i64 offset, u32 count, entries, CRC-32C of all before it. */
tl_err tl_pstate_encode(const struct tl_pstate *ps, int64_t offset, uint8_t **data_out,
			size_t *len_out);
/* Replaces the table with a snapshot's contents. TL_ERR_CORRUPT when the bytes are
 * truncated or fail their CRC (the caller then falls back to an older snapshot or to
 * a full replay). */
tl_err tl_pstate_decode(struct tl_pstate *ps, const uint8_t *data, size_t len, int64_t *offset_out);

#endif
