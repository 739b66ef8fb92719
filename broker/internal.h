/* internal.h - appending to and replaying the broker's internal topics
 * (__transaction_state in txn.c; __consumer_offsets' replay in group_store.c).
 * Coordinators keep their state as records in a partition log: a change is acted on
 * only once its batch is durable, and at start-up the log is replayed from its start.
 * Thread: the broker's event loop. */
#ifndef TL_BROKER_INTERNAL_H
#define TL_BROKER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "protocol/batch.h"
#include "tally/error.h"

struct tl_broker;
struct tl_partition;

/* Called once the batch is durable (TL_OK) or its log failed (KAFKA_STORAGE_ERROR). */
typedef void (*tl_internal_done_fn)(void *ctx, tl_err err);

/* Appends the finished batch in @batch to @partition and calls @done once it is durable,
 * never before returning. Takes @batch's bytes (the log borrows them until durable;
 * @batch is left empty). Returns TL_OK, or an append error (then @done never runs and
 * the bytes are freed): TL_ERR_NOT_LEADER_OR_FOLLOWER in cluster mode where this broker
 * does not lead @partition. */
tl_err tl_internal_append(struct tl_broker *broker, struct tl_partition *partition,
			  struct tl_buf *batch, tl_internal_done_fn done, void *ctx);

/* Calls @fn for every whole batch of @partition below its log end, oldest first,
 * with the batch's bytes (valid during the call). Batches that fail their CRC are
 * skipped with a warning. Returns TL_OK, TL_ERR_IO or TL_ERR_NOMEM. */
typedef void (*tl_internal_batch_fn)(void *ctx, const struct tl_batch_header *h,
				     const uint8_t *data, size_t len);
tl_err tl_internal_replay(struct tl_partition *partition, tl_internal_batch_fn fn, void *ctx);

#endif
