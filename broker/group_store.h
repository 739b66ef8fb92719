/* group_store.h - durable consumer group state in the internal topic __consumer_offsets,
 * for the group coordinator (group.c). The record format is described at the top of
 * group_store.c. Thread: the broker's event loop. */
#ifndef TL_BROKER_GROUP_STORE_H
#define TL_BROKER_GROUP_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "protocol/records.h"
#include "tally/error.h"

#define TL_GROUP_STORE_TOPIC       "__consumer_offsets"
/* Members in one stored group (a bound on what a record may make us allocate). */
#define TL_GROUP_STORE_MEMBERS_MAX 100000

struct tl_broker;
struct tl_group_store;
struct tl_partition;

enum tl_group_record_type {
	TL_GROUP_RECORD_OFFSET = 1,     /* OffsetCommitKey / OffsetCommitValue */
	TL_GROUP_RECORD_GROUP = 2,      /* GroupMetadataKey / GroupMetadataValue */
	TL_GROUP_RECORD_TXN_MARKER = 3, /* replay only: a COMMIT or ABORT marker */
};

/* One member in a group record. Strings and bytes point into the record (decode) or
 * into the coordinator's memory (encode). */
struct tl_group_record_member {
	struct tl_str member_id;
	struct tl_str group_instance_id; /* null unless static */
	struct tl_str client_id;
	struct tl_str client_host;
	int32_t rebalance_timeout_ms;
	int32_t session_timeout_ms;
	struct tl_bytes subscription; /* the member's metadata for the group's protocol */
	struct tl_bytes assignment;
};

/* A decoded (or to-be-encoded) record of __consumer_offsets. */
struct tl_group_record {
	enum tl_group_record_type type;
	struct tl_str group_id;
	bool tombstone; /* null value: delete the offset, or the group and all its offsets */
	/* Replay: >= 0 when the record was written inside this producer's transaction
	 * (TxnOffsetCommit); it counts only once a COMMIT marker for it follows. */
	int64_t producer_id;
	int32_t log_partition; /* replay: the offsets partition the record was read from */
	bool commit;           /* TL_GROUP_RECORD_TXN_MARKER: COMMIT (else ABORT) of producer_id */
	/* TL_GROUP_RECORD_OFFSET: key */
	struct tl_str topic;
	int32_t partition;
	/* TL_GROUP_RECORD_OFFSET: value */
	int64_t offset;
	int32_t leader_epoch; /* -1 = none */
	struct tl_str metadata;
	int64_t commit_ms; /* wall clock */
	/* TL_GROUP_RECORD_GROUP: value */
	struct tl_str protocol_type;
	int32_t generation_id;
	struct tl_str protocol_name; /* null while no generation was chosen */
	struct tl_str leader_id;     /* null without members */
	int64_t state_ms;            /* wall clock of the last state change; -1 = unknown */
	int32_t member_count;
	const struct tl_group_record_member *members;
};

/* ---- codec (pure; exposed for unit tests) ---- */

/* Appends the key, and unless a tombstone the value, of @record to @key and @value in
 * Kafka's schemas (key v1 or v2, value v3). */
void tl_group_record_encode(const struct tl_group_record *record, struct tl_buf *key,
			    struct tl_buf *value);

/* Decodes one record; @value.len -1 is a tombstone. Strings point into @key/@value;
 * members are allocated from @arena. Returns TL_OK, TL_ERR_NOT_FOUND for a key or
 * value version Tally does not read (the caller skips it), TL_ERR_CORRUPT for bytes that
 * do not parse, TL_ERR_NOMEM. */
tl_err tl_group_record_decode(struct tl_bytes key, struct tl_bytes value, struct tl_arena *arena,
			      struct tl_group_record *out);

/* Java's String.hashCode of the UTF-8 string @s (as UTF-16 code units; a malformed
 * byte counts as U+FFFD), so group ids map to the partitions Kafka would pick. */
int32_t tl_group_store_java_hash(struct tl_str s);
/* abs(hashCode(@group_id)) % @partition_count, as Kafka's GroupCoordinator.partitionFor
 * (Kafka's Utils.abs maps Integer.MIN_VALUE to 0). */
int32_t tl_group_store_partition_of(struct tl_str group_id, int32_t partition_count);

/* ---- the store ---- */

/* Single node: finds __consumer_offsets, creating it with offsets.topic.num.partitions
 * partitions when absent. Cluster mode: the topic is the cluster's (replicated,
 * offsets.topic.replication.factor), known once the view has it; see
 * tl_group_store_ensure_topic. Returns TL_OK, TL_ERR_NOMEM, or the topic creation's
 * error. */
tl_err tl_group_store_open(struct tl_broker *broker, struct tl_group_store **store_out);
/* Frees the store. Writes still in flight finish without their callbacks. */
void tl_group_store_close(struct tl_group_store *store);

/* 0 in cluster mode while the view has no offsets topic. */
int32_t tl_group_store_partition_count(const struct tl_group_store *store);
/* The partition of @group_id's records (tl_group_store_partition_of), or NULL in
 * cluster mode while the offsets topic does not exist. */
struct tl_partition *tl_group_store_partition(const struct tl_group_store *store,
					      struct tl_str group_id);
/* False when the group's partition log failed (storage error until reopened), or in
 * cluster mode when this broker does not lead the group's partition. */
bool tl_group_store_is_writable(const struct tl_group_store *store, struct tl_str group_id);
/* Cluster mode: asks the controller to create the offsets topic if the view lacks it
 * (Kafka creates it on the first FindCoordinator). At most once a second. */
void tl_group_store_ensure_topic(struct tl_group_store *store);

/* Calls @fn for every record of every partition, oldest first within a partition. A
 * record's strings are valid during the call only. Batches that fail their CRC, and
 * records that do not decode, are skipped with a warning. Returns TL_OK or TL_ERR_IO. */
typedef void (*tl_group_store_replay_fn)(void *ctx, const struct tl_group_record *record);
tl_err tl_group_store_replay(struct tl_group_store *store, tl_group_store_replay_fn fn, void *ctx);
/* The same for partition @index only (a coordinator taking over that partition). */
tl_err tl_group_store_replay_partition(struct tl_group_store *store, int32_t index,
				       tl_group_store_replay_fn fn, void *ctx);

/* Records of one group, gathered into one batch for one atomic append. */
struct tl_group_store_batch {
	struct tl_records_builder builder;
	struct tl_buf key;
	struct tl_buf value;
	int64_t timestamp_ms;
	bool failed; /* out of memory while adding */
};

void tl_group_store_batch_init(struct tl_group_store_batch *batch);
/* Makes the batch part of @producer_id/@producer_epoch's transaction (TxnOffsetCommit):
 * its records count only once the coordinator's COMMIT marker follows them. */
void tl_group_store_batch_set_transactional(struct tl_group_store_batch *batch, int64_t producer_id,
					    int16_t producer_epoch);
void tl_group_store_batch_deinit(struct tl_group_store_batch *batch);
void tl_group_store_batch_add(struct tl_group_store_batch *batch,
			      const struct tl_group_record *record);
static inline int32_t tl_group_store_batch_count(const struct tl_group_store_batch *batch)
{
	return batch->builder.record_count;
}

/* Called once the batch is durable (TL_OK) or its log failed (TL_ERR_KAFKA_STORAGE_ERROR). */
typedef void (*tl_group_store_done_fn)(void *ctx, tl_err err);

/* Appends @batch (at least one record, all of group @group_id) to the group's partition
 * and calls @done when it is durable. The store copies the batch; the caller may deinit
 * it at once. Returns TL_OK (then @done will run, never before this returns),
 * TL_ERR_MESSAGE_TOO_LARGE (past the topic's max.message.bytes), TL_ERR_NOMEM,
 * TL_ERR_NOT_COORDINATOR (cluster mode: this broker does not lead the group's
 * partition) or TL_ERR_KAFKA_STORAGE_ERROR; on error @done never runs. */
tl_err tl_group_store_write(struct tl_group_store *store, struct tl_str group_id,
			    const struct tl_group_store_batch *batch, tl_group_store_done_fn done,
			    void *ctx);

#endif
