/* spool.h - the producer's durable spool (spool.dir): every record is written to disk,
 * with its producer id, epoch and sequence, before tl_producer_send() returns, so that a
 * producer created on the same directory after a crash can resend what the broker did
 * not store, with the same ids, and the broker's sequence check keeps it exactly once.
 *
 * On disk (log/'s segment format: baseOffset, then the batch as produced):
 *   DIR/lock                         flock'ed by the producer that owns the spool
 *   DIR/producer                     "tally-spool 1 <producer id> <epoch>", atomic
 *   DIR/<topic>-<partition>/acked    the last acknowledged index end (8 bytes, hint)
 *   DIR/<topic>-<partition>/<20-digit index>.log
 *                                    RecordBatch v2 batches of one record each; the
 *                                    batch's baseOffset is the record's index in the
 *                                    partition's spool (0, 1, 2, ...), its producer id,
 *                                    epoch and base sequence are the record's.
 * Invariants:
 * (1) Within a partition, index i+1's sequence is index i's plus one (mod 2^31): every
 *     record of the partition is spooled, in send order, under one producer id.
 * (2) A segment is deleted only when every record in it is acknowledged, and the newest
 *     segment of a partition is never deleted, so its last record (and sequence) is
 *     always known.
 * Thread: every call with the producer's lock held, except tl_spool_scan(). */
#ifndef TL_PRODUCER_SPOOL_H
#define TL_PRODUCER_SPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/records.h"
#include "tally/producer.h"

struct tl_spool;
struct spool_part;

struct tl_spool_conf {
	const char *dir;
	int64_t segment_bytes; /* roll the active segment past this size */
	bool fsync;            /* fdatasync before tl_spool_append() returns */
};

/* Locks and reads @conf->dir (created if missing): the producer file, every partition's
 * segments (a torn tail is cut off). Writes a message to @errstr on error. */
tl_err tl_spool_open(const struct tl_spool_conf *conf, struct tl_spool **out, char *errstr,
		     size_t errstr_size);
void tl_spool_close(struct tl_spool *spool);
/* Why the last call failed, for error messages. */
const char *tl_spool_last_error(const struct tl_spool *spool);

/* The producer id and epoch the spool's records carry; false for a new spool. */
bool tl_spool_producer(const struct tl_spool *spool, int64_t *producer_id, int16_t *epoch);
/* Records them (atomically, fsync'ed) before the first record is spooled. */
tl_err tl_spool_set_producer(struct tl_spool *spool, int64_t producer_id, int16_t epoch);

/* The partitions the spool held records of at open: names valid until close. */
int32_t tl_spool_recovered_count(const struct tl_spool *spool);
void tl_spool_recovered(const struct tl_spool *spool, int32_t i, const char **topic_out,
			int32_t *partition_out);

/* The spool of @topic/@partition (made on first use; files are made at the first
 * append). NULL on out of memory. */
struct spool_part *tl_spool_part(struct tl_spool *spool, const char *topic, int32_t partition);
/* The sequence the next record of the partition gets: the last spooled one's plus one
 * (0 for a partition without records). */
int32_t tl_spool_part_next_sequence(const struct spool_part *part);
/* True while records spooled by an earlier producer may be unacknowledged. */
bool tl_spool_part_has_recovered(const struct spool_part *part);
/* Index of the first record this producer spooled (records below are recovered). */
int64_t tl_spool_part_live_index(const struct spool_part *part);

/* Writes one record as a one-record batch with @producer_id/@epoch/@sequence; on
 * success *@index_out is its index. Nothing is left on disk on failure. */
tl_err tl_spool_append(struct tl_spool *spool, struct spool_part *part, int64_t producer_id,
		       int16_t epoch, int32_t sequence, int64_t timestamp_ms, struct tl_bytes key,
		       struct tl_bytes value, const struct tl_record_header *headers,
		       int32_t header_count, int64_t *index_out);

/* Every record below @index_end is stored by the broker: deletes segments that hold
 * only such records (invariant 2). */
void tl_spool_acked(struct tl_spool *spool, struct spool_part *part, int64_t index_end);

/* A recovered record to resend; pointers valid during the call. */
struct tl_spool_record {
	int64_t index;
	int32_t sequence;
	int64_t timestamp_ms;
	struct tl_bytes key;
	struct tl_bytes value;
	const struct tl_record_header *headers;
	int32_t header_count;
};
typedef tl_err (*tl_spool_record_fn)(void *arg, const struct tl_spool_record *record);

/* Settles the recovered records of @part with the broker's state for our producer id:
 * @have_last false when the broker knows no sequence of it on the partition, else
 * @last_sequence is the last one stored. Records up to it are acknowledged; @fn gets
 * every later recovered record (index below the live index), oldest first. Fails with
 * TL_ERR_UNKNOWN_PRODUCER_ID (the broker forgot the producer: expiry) or
 * TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER (the broker misses records before the spooled
 * ones), with the detail in tl_spool_last_error(). */
tl_err tl_spool_replay(struct tl_spool *spool, struct spool_part *part, bool have_last,
		       int32_t last_sequence, tl_spool_record_fn fn, void *arg);

/* Calls @fn for every record in the spool's files (see tl_producer_spool_scan()). Takes
 * the producer's @lock briefly to list the files. */
tl_err tl_spool_scan(struct tl_spool *spool, pthread_mutex_t *lock, tl_producer_spool_fn fn,
		     void *arg);

/* Sequence arithmetic mod 2^31: @a - @b in [-2^30, 2^30). */
int64_t tl_spool_seq_diff(int32_t a, int32_t b);

#endif
