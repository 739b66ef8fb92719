/* internal.h - the consumer's state, shared by consumer.c (assignment, offsets, fetch,
 * commit) and group.c (group membership for subscribe). Private to consumer/.
 *
 * Partition states: NEED_OFFSET (start offset to resolve) -> RESOLVING (ListOffsets or
 * OffsetFetch in flight) -> FETCHING (position known; fetches are sent) -> PAUSED (an
 * error was reported; only tl_consumer_seek() leaves it). An offset reset moves
 * FETCHING back to NEED_OFFSET; an assignment or seek to an offset >= 0 starts in
 * FETCHING, with that offset as the position. FETCHING <-> VALIDATING (KIP-320): when
 * the partition's leader epoch in Metadata is newer than the one its position was read
 * under, and the position's own epoch is known, OffsetForLeaderEpoch asks the leader
 * where that epoch ends; an end below the position is a log truncation (an unclean
 * election lost records the consumer read), and the position moves back to it.
 * Invariants:
 * (1) Every request in flight records consumer->assign_gen and each partition's epoch
 *     when sent; a response whose generation or epoch no longer matches is dropped, so a
 *     seek or a new assignment never sees records of the old position.
 * (2) At most one Fetch per partition is in flight, and chunks of one partition are
 *     queued in fetch order: records come out in offset order.
 * (3) position <= fetch_offset while FETCHING: fetch_offset runs ahead by the chunks
 *     buffered (pipelining), position follows the records handed out.
 * (4) What the record handed out last points into (its chunk's response and iterator, its
 *     partition's topic) is freed only by the next poll or destroy, whatever happens in
 *     between (a commit, a rebalance answered meanwhile, a new assignment): chunks and
 *     assignments put aside wait in chunk_done and parts_done until then. */
#ifndef TL_CONSUMER_INTERNAL_H
#define TL_CONSUMER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "client/client.h"
#include "common/buf.h"
#include "protocol/records.h"
#include "tally/consumer.h"

enum part_state {
	PART_NEED_OFFSET,
	PART_RESOLVING,
	PART_FETCHING,
	PART_VALIDATING,
	PART_PAUSED,
};

struct consumer_part {
	char *topic;
	int32_t partition;
	int64_t start;              /* >= 0 or TL_CONSUMER_OFFSET_*: how to resolve */
	int64_t start_timestamp_ms; /* for TL_CONSUMER_OFFSET_TIMESTAMP */
	enum part_state state;
	uint32_t epoch;         /* bumped on seek and reset (invariant 1) */
	int64_t position;       /* next offset to return; -1 until resolved */
	int32_t position_epoch; /* leader epoch of the record before position; -1 unknown */
	int32_t leader_epoch;   /* the leader's epoch the position is known good under, -1 */
	int64_t fetch_offset;   /* next offset to fetch */
	bool fetch_in_flight;
	int64_t retry_at_ns;    /* no request before this (backoff) */
	size_t buffered_bytes;  /* records bytes queued in chunks */
	int64_t committed;      /* last offset we committed, -1 */
	int64_t skip_before_ms; /* >= 0: skip records older than this (see consumer.c) */
	tl_err error;           /* reported once by poll, then PAUSED */
	char *error_detail;     /* what part_pause said of it (NULL if out of memory) */
	bool error_reported;
};

struct aborted_txn {
	int64_t producer_id;
	int64_t first_offset;
};

/* One partition's records from one Fetch response. */
/* A Fetch response's memory, taken from the client (tl_client_response_take): the
 * chunks cut from it point into it instead of copying their records; freed with the
 * last of them. */
struct fetch_frame {
	int32_t refs;
	void *data;
};

struct fetch_chunk {
	struct fetch_chunk *next;
	int32_t part_index;
	uint32_t part_epoch;
	uint32_t assign_gen;
	struct fetch_frame *frame; /* the response the records lie in (a reference) */
	const uint8_t *data;       /* the records field, inside frame */
	size_t len;
	struct tl_records_iter iter;
	bool started;
	bool in_batch;
	bool batch_is_control;
	int64_t batch_last_offset;
	struct aborted_txn *aborted; /* the response's aborted transactions, by first_offset */
	int32_t aborted_count;
	int32_t aborted_next;
	int64_t *open_aborts; /* producers whose aborted transaction is being skipped */
	int32_t open_abort_count;
};

/* An assignment replaced since the last poll (invariant 4). */
struct parts_retired {
	struct parts_retired *next;
	struct consumer_part *parts;
	int32_t count;
};

/* A member's subscription from JoinGroup, kept by the leader. */
struct member_sub {
	char *member_id;
	char *instance_id; /* NULL if not static */
	char **topics;
	int32_t topic_count;
};

enum group_state {
	GROUP_NONE,     /* not subscribed */
	GROUP_FIND,     /* looking for the coordinator */
	GROUP_JOIN,     /* JoinGroup to send */
	GROUP_JOINING,  /* JoinGroup in flight */
	GROUP_SYNCING,  /* SyncGroup in flight */
	GROUP_STABLE,   /* assignment received; heartbeats */
	GROUP_REVOKING, /* rebalance: the next poll revokes the assignment, then JOIN */
};

struct consumer_group {
	enum group_state state;
	char **topics; /* subscription */
	int32_t topic_count;
	char *member_id;
	char *leader_id;
	char *protocol_name;
	int32_t generation_id;
	bool request_in_flight;
	bool heartbeat_in_flight;
	int64_t next_heartbeat_ns;
	int64_t retry_at_ns;
	bool assign_pending;        /* leader: compute the assignment once metadata is known */
	struct member_sub *members; /* leader: the JoinGroup members */
	int32_t member_count;
	int32_t *partition_counts; /* per subscribed topic, as last assigned; rejoin on change */
	tl_err error;              /* a group failure the next poll reports */
	bool error_reported;
	bool fatal; /* fenced (FENCED_INSTANCE_ID): error is returned by every poll and commit */
	/* The rebalance callback's events, told by the next poll (never from a response
	 * handler): ASSIGNED for a new assignment, then at most one of REVOKED (state
	 * REVOKING) or LOST (lost_untold; the assignment is gone). lost is the list a LOST
	 * tells, made when ASSIGNED is told, so that a loss allocates nothing. */
	bool assigned_untold; /* the assignment has not been told yet */
	bool told;            /* ASSIGNED was told: its end is told too */
	bool revoke_commit;   /* REVOKING: auto-commit after the callback */
	struct tl_consumer_partition *lost;
	char **lost_topics; /* lost[i].topic, owned */
	int32_t lost_count;
	bool lost_untold;
};

struct tl_consumer_conf {
	struct tl_conf conf;
	tl_consumer_commit_fn commit_cb;
	void *commit_opaque;
	tl_consumer_rebalance_fn rebalance_cb;
	void *rebalance_opaque;
};

struct tl_consumer {
	/* settings */
	char *group_id; /* NULL: none */
	char *group_instance_id;
	/* The member id tl_consumer_group_metadata() handed out last: its own copy, so that
	 * a rejoin (which frees group.member_id) cannot pull it from under the caller. */
	char *metadata_member_id;
	int8_t isolation_level; /* 0 read_uncommitted, 1 read_committed */
	int64_t reset_to;       /* TL_CONSUMER_OFFSET_BEGINNING/END, or 0 for none */
	bool auto_commit;
	int64_t auto_commit_interval_ns;
	int32_t fetch_min_bytes;
	int32_t fetch_max_bytes;
	int32_t partition_max_bytes;
	int32_t fetch_max_wait_ms;
	int32_t request_timeout_ms;
	int64_t retry_backoff_ns;
	int32_t session_timeout_ms;
	int32_t heartbeat_interval_ms;
	int32_t max_poll_interval_ms;
	bool check_crcs;
	bool return_control; /* return.control.records: hand out COMMIT/ABORT markers */
	tl_consumer_commit_fn commit_cb;
	void *commit_opaque;
	tl_consumer_rebalance_fn rebalance_cb;
	void *rebalance_opaque;
	bool in_rebalance_cb;

	struct tl_client *client;
	/* assignment */
	struct consumer_part *parts;
	int32_t part_count;
	uint32_t assign_gen;
	bool subscribed;
	/* fetched data, oldest first (invariant 2) */
	struct fetch_chunk *chunk_head;
	struct fetch_chunk *chunk_tail;
	struct fetch_chunk *chunk_done;   /* put aside, a list; freed at the next poll */
	struct parts_retired *parts_done; /* replaced assignments; freed at the next poll */
	size_t buffered_bytes;
	int32_t *fetch_nodes; /* nodes with a Fetch in flight */
	int32_t fetch_node_count;
	int32_t list_offsets_in_flight;
	/* coordinator */
	int32_t coordinator; /* -1 unknown */
	bool coordinator_in_flight;
	int64_t coordinator_retry_ns;
	int32_t coordinator_asked; /* the broker asked last for the coordinator: next, the next */
	bool offset_fetch_in_flight;
	int32_t commits_in_flight;
	int64_t next_auto_commit_ns;
	struct consumer_group group;
	/* the record handed out last */
	struct tl_consumer_record record;
	struct tl_consumer_header *headers;
	int32_t headers_cap;
	int64_t last_io_ns;
	char last_error[512];
};

/* Sets the last error detail (printf-style) and returns @err. */
tl_err tl_consumer_fail(struct tl_consumer *consumer, tl_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Replaces the assignment; start offsets all @start (group: COMMITTED). */
tl_err tl_consumer_assignment_set(struct tl_consumer *consumer,
				  const struct tl_consumer_partition *parts, int32_t count);
/* Does the coordinator lookup if needed; true when consumer->coordinator is ready. */
bool tl_consumer_coordinator_ready(struct tl_consumer *consumer);
void tl_consumer_coordinator_lost(struct tl_consumer *consumer);
/* Encodes with the generated codec into @body at @version; see client.h. */
typedef void (*tl_consumer_encode_fn)(struct tl_buf *body, int16_t version, void *arg);
/* Sends a request built by @encode to @node. Returns TL_ERR_AGAIN when the node is not
 * ready, TL_ERR_UNSUPPORTED_VERSION when it speaks no version we do. */
tl_err tl_consumer_send(struct tl_consumer *consumer, int32_t node, int16_t api_key,
			tl_consumer_encode_fn encode, void *arg, tl_client_response_fn done,
			void *done_arg);
/* Same with its own timeout instead of request.timeout.ms. */
tl_err tl_consumer_send_timeout(struct tl_consumer *consumer, int32_t node, int16_t api_key,
				tl_consumer_encode_fn encode, void *arg, int32_t timeout_ms,
				tl_client_response_fn done, void *done_arg);
/* Commits the positions (enable.auto.commit), waiting up to request.timeout.ms, before
 * a rebalance gives the partitions away. Only where the callback could run. */
void tl_consumer_commit_for_rebalance(struct tl_consumer *consumer);

/* group.c */
void tl_consumer_group_io(struct tl_consumer *consumer);
void tl_consumer_group_leave(struct tl_consumer *consumer);
void tl_consumer_group_deinit(struct consumer_group *group);
/* A commit or fetch learned that the group moved on (rebalance, unknown member), or
 * that another member with our group.instance.id fenced us (FENCED_INSTANCE_ID: the group
 * becomes fatal, no rejoin). */
void tl_consumer_group_rejoin(struct tl_consumer *consumer, tl_err why);
/* TL_OK, or the fatal group error with its detail in last_error. */
tl_err tl_consumer_group_fatal(struct tl_consumer *consumer);
/* Tells the rebalance callback what the group did since the last poll, and finishes a
 * revocation (REVOKING -> JOIN). Only at the top of a poll: the callback may commit.
 * TL_ERR_NOMEM: nothing was told; the next poll tries again. */
tl_err tl_consumer_group_events(struct tl_consumer *consumer);
/* tl_consumer_destroy(): tells REVOKED (or a LOST not told yet) before the last commit. */
void tl_consumer_group_close(struct tl_consumer *consumer);
/* A member of a generation: STABLE, or REVOKING until its callback returned. */
bool tl_consumer_group_member(const struct tl_consumer *consumer);

#endif
