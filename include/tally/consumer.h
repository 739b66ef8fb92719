/* consumer.h - libtally consumer: reads records of assigned partitions from a
 * Kafka-compatible cluster (tallyd or Kafka), with fetch pipelining (the next Fetch is in
 * flight while the application works through the previous response), zstd
 * decompression, read_committed isolation (control batches and aborted transactions are
 * skipped) and offset commits, sync or async.
 *
 * Threads: a consumer is used by one thread at a time; it has no background thread.
 * tl_consumer_poll() does all network I/O and runs the commit and rebalance callbacks. A record
 * returned by poll stays valid until the next tl_consumer_poll() or
 * tl_consumer_destroy(), whatever is called in between (a commit that finds the group
 * rebalanced, tl_consumer_assign(), tl_consumer_seek()).
 *
 * Two ways to get partitions: tl_consumer_assign() names them (no group membership;
 * group.id is then only used for commits), or tl_consumer_subscribe() joins group.id
 * (JoinGroup/SyncGroup/Heartbeat, range assignment) and receives them; the assignment
 * is then managed by the group and starts from the committed offsets.
 *
 * Defaults follow the Java client where that is safe: isolation.level=read_committed,
 * auto.offset.reset=latest, enable.auto.commit=true (commits the position of returned
 * records every auto.commit.interval.ms and at destroy, so a crash re-delivers: at least
 * once), fetch.max.wait.ms=500, max.partition.fetch.bytes=1048576. Unknown keys are
 * errors. */
#ifndef TALLY_CONSUMER_H
#define TALLY_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Start positions for tl_consumer_partition.offset and tl_consumer_seek(). */
#define TL_CONSUMER_OFFSET_BEGINNING (-2) /* earliest offset */
#define TL_CONSUMER_OFFSET_END       (-1) /* latest: only records produced from now on */
#define TL_CONSUMER_OFFSET_COMMITTED                                                               \
	(-1001) /* group.id's committed offset, else auto.offset.reset */
#define TL_CONSUMER_OFFSET_TIMESTAMP (-1002) /* first offset with timestamp >= timestamp_ms */

struct tl_consumer;
struct tl_consumer_conf;

struct tl_consumer_partition {
	const char *topic;
	int32_t partition;
	int64_t offset;       /* >= 0, or TL_CONSUMER_OFFSET_* */
	int64_t timestamp_ms; /* for TL_CONSUMER_OFFSET_TIMESTAMP */
};

struct tl_consumer_header {
	const char *key; /* not NUL-terminated */
	int32_t key_len;
	const void *value; /* NULL = null */
	int32_t value_len;
};

struct tl_consumer_record {
	const char *topic; /* NUL-terminated */
	int32_t partition;
	int64_t offset;
	int64_t timestamp_ms;
	const void *key; /* NULL = null key */
	int32_t key_len;
	const void *value; /* NULL = null value */
	int32_t value_len;
	int32_t header_count;
	const struct tl_consumer_header *headers;
	/* From the record's batch header: */
	int64_t producer_id;    /* -1 when not idempotent */
	int16_t producer_epoch; /* -1 when not idempotent */
	int32_t sequence;       /* baseSequence + offset delta, -1 when none */
	bool is_transactional;
	/* TL_CONSUMER_CONTROL_NONE for data; for a control record (only returned with
	 * return.control.records=true) its type. A control record has a null key and value,
	 * the batch's base offset and its maxTimestamp. */
	int8_t control_type;
};

#define TL_CONSUMER_CONTROL_NONE   (-1)
#define TL_CONSUMER_CONTROL_ABORT  0
#define TL_CONSUMER_CONTROL_COMMIT 1
#define TL_CONSUMER_CONTROL_OTHER  2 /* a control batch of a type this library does not know */

/* The consumer's place in its group, for tl_producer_send_offsets_to_transaction().
 * Strings stay valid until tl_consumer_destroy(), or until a tl_consumer_group_metadata()
 * call finds another member id (after a rejoin), whatever the group does meanwhile (a
 * rejoin inside a commit frees nothing handed out). */
struct tl_consumer_group_metadata {
	const char *group_id;
	int32_t generation_id;         /* -1: not a member (tl_consumer_assign()) */
	const char *member_id;         /* "" when not a member */
	const char *group_instance_id; /* NULL unless group.instance.id is set */
};

/* The result of a commit, for tl_consumer_commit_async(). @err is the first partition
 * error (TL_OK when every offset was stored); @detail names the fix, NULL when ok. */
typedef void (*tl_consumer_commit_fn)(tl_err err, const char *detail, void *conf_opaque);

/* What a rebalance callback is told, as Java's ConsumerRebalanceListener. */
#define TL_CONSUMER_ASSIGNED 1 /* the group gave these partitions to this member */
#define TL_CONSUMER_REVOKED  2 /* it takes them back; this member still owns them */
#define TL_CONSUMER_LOST     3 /* they may be another member's already */

/* Called only inside tl_consumer_poll() (and tl_consumer_destroy()), on its thread, for a
 * consumer that subscribed (tl_consumer_subscribe()); @parts (@count entries, topics
 * valid during the call) name the partitions:
 * - TL_CONSUMER_ASSIGNED: after each rebalance, before any record of them is returned,
 *   with offset TL_CONSUMER_OFFSET_COMMITTED (or the committed offset, once known): the
 *   start, unless tl_consumer_seek() here moves it. Also with @count 0 when the group
 *   gave this member nothing.
 * - TL_CONSUMER_REVOKED: before this member rejoins (a rebalance) or leaves
 *   (tl_consumer_destroy()), with their positions as offsets. No record of them comes
 *   after it; the member is still in its generation, so tl_consumer_commit() here
 *   stores them (exactly where the next owner starts), and
 *   tl_consumer_group_metadata() names the generation for a transaction's offsets.
 *   With enable.auto.commit the positions are committed after the callback returns,
 *   waiting up to request.timeout.ms, before the member rejoins.
 * - TL_CONSUMER_LOST: the group went on without this member (its session expired, an
 *   unknown member id or old generation, or another member fenced it): nothing can be
 *   committed for them any more; only undo local work. No record of them comes after it.
 * In every event an offset is the position, or, where none is known yet, how the
 * partition starts (TL_CONSUMER_OFFSET_*, with timestamp_ms for _TIMESTAMP).
 * Every partition given by ASSIGNED is taken back by exactly one REVOKED or LOST before
 * the next ASSIGNED (neither is told for an empty assignment). The callback may call
 * tl_consumer_commit(), _commit_async(), _seek(), _position(), _assignment() and
 * _group_metadata(), and use producers; not tl_consumer_poll() (it returns
 * TL_ERR_INVALID) or tl_consumer_destroy(). */
typedef void (*tl_consumer_rebalance_fn)(struct tl_consumer *consumer, int event,
					 const struct tl_consumer_partition *parts, int32_t count,
					 void *conf_opaque);

struct tl_consumer_conf *tl_consumer_conf_create(void);
void tl_consumer_conf_destroy(struct tl_consumer_conf *conf);
/* Keys: bootstrap.servers, client.id, group.id, group.instance.id, isolation.level
 * (read_committed | read_uncommitted), auto.offset.reset (earliest | latest | none),
 * enable.auto.commit, auto.commit.interval.ms, fetch.min.bytes, fetch.max.bytes,
 * max.partition.fetch.bytes, fetch.max.wait.ms, request.timeout.ms, retry.backoff.ms,
 * reconnect.backoff.ms, metadata.max.age.ms, check.crcs, allow.auto.create.topics,
 * session.timeout.ms, heartbeat.interval.ms, max.poll.interval.ms,
 * partition.assignment.strategy (range), return.control.records (false; true hands out
 * transaction markers as records with control_type set, for inspection tools). An
 * unknown key or a bad value returns
 * TL_ERR_INVALID with a message naming it (and the closest known key) in @errstr. */
tl_err tl_consumer_conf_set(struct tl_consumer_conf *conf, const char *key, const char *value,
			    char *errstr, size_t errstr_size);
/* Called inside tl_consumer_poll() when an async commit completes. */
void tl_consumer_conf_set_commit_cb(struct tl_consumer_conf *conf, tl_consumer_commit_fn cb,
				    void *conf_opaque);

/* Installs the rebalance callback (above); none by default. */
void tl_consumer_conf_set_rebalance_cb(struct tl_consumer_conf *conf, tl_consumer_rebalance_fn cb,
				       void *conf_opaque);

/* Creates a consumer from @conf (borrowed). Connects lazily, in tl_consumer_poll(). */
tl_err tl_consumer_create(const struct tl_consumer_conf *conf, struct tl_consumer **out,
			  char *errstr, size_t errstr_size);
/* Commits (enable.auto.commit), leaves the group (subscribe) and frees the consumer. */
void tl_consumer_destroy(struct tl_consumer *consumer);

/* Replaces the assignment with @count partitions (copied). Start offsets are resolved
 * by the next polls. Fails with TL_ERR_INVALID after tl_consumer_subscribe(). */
tl_err tl_consumer_assign(struct tl_consumer *consumer, const struct tl_consumer_partition *parts,
			  int32_t count);
/* Joins group.id for @topics (copied); partitions come with the next polls. */
tl_err tl_consumer_subscribe(struct tl_consumer *consumer, const char *const *topics,
			     int32_t count);
/* Moves an assigned partition to @offset (>= 0 or TL_CONSUMER_OFFSET_*, with
 * @timestamp_ms for TL_CONSUMER_OFFSET_TIMESTAMP); clears its error. An offset >= 0 is
 * the position at once, as Java's seek(): tl_consumer_position() returns it and
 * tl_consumer_commit() commits it; TL_CONSUMER_OFFSET_* are resolved by the next polls
 * (the position is -1 until then). */
tl_err tl_consumer_seek(struct tl_consumer *consumer, const char *topic, int32_t partition,
			int64_t offset, int64_t timestamp_ms);

/* Returns the next record in @out: TL_OK, TL_ERR_TIMED_OUT when none came within
 * @timeout_ms, or a partition error (TL_ERR_OFFSET_OUT_OF_RANGE with
 * auto.offset.reset=none, also when an unclean leader election truncated the log below
 * the position (KIP-320; with a reset policy the position moves back to where the
 * logs diverged instead), TL_ERR_CORRUPT_MESSAGE, TL_ERR_UNSUPPORTED_COMPRESSION_TYPE,
 * TL_ERR_UNKNOWN_TOPIC_OR_PARTITION...) with the detail in tl_consumer_last_error().
 * A partition that reported an error is paused until tl_consumer_seek().
 * TL_ERR_FENCED_INSTANCE_ID (tl_err_is_fatal()) says another consumer joined the group
 * with the same group.instance.id: this one left the group for good, and every later
 * poll, commit and subscribe returns it; destroy it. */
tl_err tl_consumer_poll(struct tl_consumer *consumer, int timeout_ms,
			const struct tl_consumer_record **out);
/* The next offset the consumer will return for @topic/@partition, or -1. */
int64_t tl_consumer_position(struct tl_consumer *consumer, const char *topic, int32_t partition);
/* The partitions assigned now (by assign or by the group), with their positions as
 * offsets (-1 if not yet resolved); topic names stay valid until the assignment
 * changes. Returns the count; @out may be NULL to count only. */
int32_t tl_consumer_assignment(struct tl_consumer *consumer, struct tl_consumer_partition *out,
			       int32_t out_count);
/* Commits the positions of all assigned partitions for group.id (OffsetCommit, with
 * the group's generation when subscribed, else generation -1). Blocks up to
 * @timeout_ms: TL_OK once every offset is stored, TL_ERR_TIMED_OUT when no answer came
 * in time (the offsets may still be stored later: commit again), or the first partition
 * error, with the detail in tl_consumer_last_error(). */
tl_err tl_consumer_commit(struct tl_consumer *consumer, int timeout_ms);
/* Same, without waiting: the commit callback reports the result from a later poll. */
tl_err tl_consumer_commit_async(struct tl_consumer *consumer);
/* Fills @out with group.id and, while subscribed and in the group, the generation and
 * member id. TL_ERR_INVALID when group.id is not set. */
tl_err tl_consumer_group_metadata(struct tl_consumer *consumer,
				  struct tl_consumer_group_metadata *out);
/* The detail of the last error ("" if none). */
const char *tl_consumer_last_error(struct tl_consumer *consumer);

#ifdef __cplusplus
}
#endif
#endif
