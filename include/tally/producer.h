/* producer.h - libtally producer: sends records to a Kafka-compatible cluster (tallyd or
 * Kafka) with batching, compression (gzip, snappy, lz4, zstd), retries that keep order, and
 * per-record delivery reports.
 *
 * Threads: a producer owns one background I/O thread. tl_producer_send*(),
 * tl_producer_flush() and tl_producer_poll() may be called from any thread. Delivery
 * callbacks run only inside tl_producer_poll() / tl_producer_flush(), on the calling
 * thread. tl_producer_event_fd() becomes readable when reports are waiting.
 *
 * Defaults follow the Java client: acks=all, enable.idempotence=true (quietly off when
 * the broker lacks InitProducerId and the user did not ask for it), linger.ms=5,
 * buffer.memory=33554432, max.block.ms=60000, delivery.timeout.ms=120000, retry.backoff.ms=100
 * (doubling up to retry.backoff.max.ms=1000), compression.type=none; except batch.size=1000000
 * (librdkafka's; Java's 16384 caps a partition at five 16 KiB batches per round trip, and a broker
 * that acks after fsync has long round trips). See docs/libtally.md for every key.
 *
 * Transactions (transactional.id set): tl_producer_init_transactions() once, then per
 * transaction tl_producer_begin_transaction(), sends, optionally
 * tl_producer_send_offsets_to_transaction(), and tl_producer_commit_transaction() or
 * tl_producer_abort_transaction(). Records sent in a transaction become visible to
 * read_committed consumers only when it commits.
 *
 * Durable spool (spool.dir set): every record is written to an on-disk spool, with its
 * producer id, epoch and sequence, before tl_producer_send() returns; a producer created
 * on the same spool.dir after a crash resends what the broker did not acknowledge, with
 * the same ids, so nothing is lost or duplicated (see docs/libtally.md for the limits).
 * Keys: spool.dir, spool.segment.bytes (16777216), spool.fsync (false). */
#ifndef TALLY_PRODUCER_H
#define TALLY_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/consumer.h" /* struct tl_consumer_partition, tl_consumer_group_metadata */
#include "tally/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Partition value letting the partitioner choose (murmur2 of the key, like Java). */
#define TL_PRODUCER_PARTITION_ANY (-1)

struct tl_producer;
struct tl_producer_conf;

/* One record header. @value may be NULL (null value); @key must not be. */
struct tl_producer_header {
	const char *key;
	const void *value;
	int32_t value_len;
};

/* A record to send. Everything is copied by tl_producer_send(); nothing is kept. */
struct tl_producer_record {
	const char *topic;
	int32_t partition; /* TL_PRODUCER_PARTITION_ANY or an index */
	const void *key;   /* NULL = null key */
	int32_t key_len;
	const void *value; /* NULL = null value (tombstone) */
	int32_t value_len;
	int64_t timestamp_ms; /* 0 = now */
	const struct tl_producer_header *headers;
	int32_t header_count;
	void *opaque; /* handed back in the delivery report */
};

/* What happened to one record. @topic is valid during the callback only. */
struct tl_producer_delivery {
	tl_err err; /* TL_OK: stored at @offset */
	const char *topic;
	int32_t partition;
	int64_t offset; /* -1 if not stored */
	int64_t timestamp_ms;
	void *opaque;       /* from the record */
	const char *detail; /* why it failed, naming the fix; NULL when ok */
};

typedef void (*tl_producer_delivery_fn)(const struct tl_producer_delivery *delivery,
					void *conf_opaque);

/* Configuration. Keys are the Java client's names. */
struct tl_producer_conf *tl_producer_conf_create(void);
void tl_producer_conf_destroy(struct tl_producer_conf *conf);
/* Sets @key. An unknown key or bad value returns TL_ERR_INVALID and writes a message
 * naming the problem (and the closest known key) to @errstr. */
tl_err tl_producer_conf_set(struct tl_producer_conf *conf, const char *key, const char *value,
			    char *errstr, size_t errstr_size);
void tl_producer_conf_set_delivery_cb(struct tl_producer_conf *conf, tl_producer_delivery_fn cb,
				      void *conf_opaque);

/* Creates a producer from @conf (borrowed; may be destroyed right after). Connects in
 * the background. On error writes a message to @errstr. */
tl_err tl_producer_create(const struct tl_producer_conf *conf, struct tl_producer **out,
			  char *errstr, size_t errstr_size);
/* Fails every record not yet delivered with TL_ERR_CLOSED (their callbacks run here),
 * stops the I/O thread and frees the producer. Records already sent and not yet
 * answered may be stored all the same (as Java's close without a timeout). Call
 * tl_producer_flush() first to deliver instead. */
void tl_producer_destroy(struct tl_producer *producer);

/* Queues @record for sending. Blocks up to max.block.ms when buffer.memory is full or
 * the topic's metadata is not known yet; with max.block.ms=0 it fails at once with
 * TL_ERR_LIMIT. Returns TL_ERR_TIMED_OUT, TL_ERR_UNKNOWN_TOPIC_OR_PARTITION,
 * TL_ERR_MESSAGE_TOO_LARGE, TL_ERR_INVALID, TL_ERR_FATAL (see tl_producer_last_error). */
tl_err tl_producer_send(struct tl_producer *producer, const struct tl_producer_record *record);
/* Sends @record and waits for its delivery. Returns its error; fills @delivery_out
 * (topic NULL, detail valid until the next call on this thread) if not NULL. The
 * delivery callback is not called for it. */
tl_err tl_producer_send_sync(struct tl_producer *producer, const struct tl_producer_record *record,
			     struct tl_producer_delivery *delivery_out);

/* Runs waiting delivery callbacks, waiting up to @timeout_ms for one. Returns how
 * many ran. */
int tl_producer_poll(struct tl_producer *producer, int timeout_ms);
/* Waits until every queued record is delivered (running callbacks), or @timeout_ms.
 * Returns TL_OK or TL_ERR_TIMED_OUT. */
tl_err tl_producer_flush(struct tl_producer *producer, int timeout_ms);
/* An eventfd that is readable while delivery reports wait for tl_producer_poll(). */
int tl_producer_event_fd(const struct tl_producer *producer);
/* Records queued or in flight, not yet reported. */
int64_t tl_producer_outstanding(struct tl_producer *producer);
/* Why the calling thread's last tl_producer_send*() failed, else the producer's fatal
 * error ("" if none). */
const char *tl_producer_last_error(struct tl_producer *producer);

/* ---- transactions ----
 *
 * Every call below returns TL_ERR_INVALID when transactional.id is not set, and, once the
 * producer is fenced or failed, that fatal error (tl_err_is_fatal(): destroy the
 * producer). Calls that take @timeout_ms may return TL_ERR_TIMED_OUT; the work goes on in
 * the background and calling the same function again resumes it. A call made in the
 * wrong state (send or commit outside a transaction, begin twice) returns
 * TL_ERR_INVALID_TXN_STATE. Details are in tl_producer_last_error().
 *
 * Fencing: when another instance with the same transactional.id calls
 * tl_producer_init_transactions() (or the broker aborts a transaction that outlived
 * transaction.timeout.ms), this producer is fenced: every pending delivery report fires
 * with TL_ERR_PRODUCER_FENCED and every later call returns it.
 *
 * Abortable errors: when a record of the open transaction fails (too large, topic gone,
 * a produce or coordinator error that is neither retriable nor fatal), the transaction
 * can no longer commit: tl_producer_commit_transaction() and
 * tl_producer_send_offsets_to_transaction() return TL_ERR_TRANSACTION_ABORTABLE, with the
 * cause in tl_producer_last_error(); call tl_producer_abort_transaction() and start
 * again. */

/* Finds the transaction coordinator and registers transactional.id (InitProducerId):
 * fences older instances with the same id and completes or aborts whatever transaction
 * they left open. Call once, before the first transaction. */
tl_err tl_producer_init_transactions(struct tl_producer *producer, int timeout_ms);
/* Opens a transaction (locally; the coordinator learns of it with the first record or
 * offsets). TL_ERR_INVALID_TXN_STATE if one is open or init was not done. */
tl_err tl_producer_begin_transaction(struct tl_producer *producer);
/* Adds the consumer positions @offsets (@count entries; .offset is the next offset to
 * consume, as tl_consumer_assignment() and tl_consumer_position() give it; entries with
 * .offset < 0 are skipped; .timestamp_ms is ignored) of the consumer group @group to the
 * open transaction (AddOffsetsToTxn, then TxnOffsetCommit to the group coordinator):
 * they are committed for the group if and only if the transaction commits. @group comes
 * from tl_consumer_group_metadata(); with a generation_id >= 0 the group coordinator
 * refuses commits from a member that is no longer in the group (KIP-447). */
tl_err tl_producer_send_offsets_to_transaction(struct tl_producer *producer,
					       const struct tl_consumer_partition *offsets,
					       int32_t count,
					       const struct tl_consumer_group_metadata *group,
					       int timeout_ms);
/* Sends every record of the open transaction, waits for their delivery (running
 * delivery callbacks on this thread, as tl_producer_flush()), then commits it (EndTxn).
 * TL_ERR_TRANSACTION_ABORTABLE when a record or the offsets failed: abort instead. */
tl_err tl_producer_commit_transaction(struct tl_producer *producer, int timeout_ms);
/* Aborts the open transaction: records not yet sent fail with
 * TL_ERR_OPERATION_NOT_ATTEMPTED, records in flight are waited for, then EndTxn(abort).
 * Allowed after an abortable error. */
tl_err tl_producer_abort_transaction(struct tl_producer *producer, int timeout_ms);

/* ---- durable spool (spool.dir) ---- */

/* Called by tl_producer_spool_scan() for each record; return false to stop. The
 * record's pointers are valid during the call; its opaque is NULL. */
typedef bool (*tl_producer_spool_fn)(const struct tl_producer_record *record, void *arg);

/* With spool.dir set: calls @fn, on this thread, for every record in the spool's files,
 * each partition's oldest first. These are the records the producer found at create
 * (those the broker had not stored are resent; their delivery reports have opaque NULL),
 * some already stored, and those sent since. The newest record of each partition is
 * always there, so a service finds what its last tl_producer_send() before a crash
 * persisted and goes on after it. Do not call the producer from @fn. Returns
 * TL_ERR_INVALID without spool.dir, TL_ERR_IO, TL_ERR_NOMEM. */
tl_err tl_producer_spool_scan(struct tl_producer *producer, tl_producer_spool_fn fn, void *arg);

/* Java's default partitioner for a keyed record: toPositive(murmur2(key)) % count. */
int32_t tl_producer_partition_for_key(const void *key, int32_t key_len, int32_t partition_count);
/* Kafka's murmur2 (Utils.murmur2), seed 0x9747b28c. */
int32_t tl_producer_murmur2(const void *data, int32_t len);

#ifdef __cplusplus
}
#endif
#endif
