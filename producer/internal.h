/* internal.h - the producer's state, shared by producer.c (records, batches, the I/O
 * thread), txn.c (transactions) and spool.c (the on-disk spool). Private to producer/.
 * The states and invariants are described at the top of producer.c and txn.c. */
#ifndef TL_PRODUCER_INTERNAL_H
#define TL_PRODUCER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <zstd.h>

#include "client/client.h"
#include "common/buf.h"
#include "protocol/records.h"
#include "tally/producer.h"

struct tl_producer_conf {
	struct tl_conf conf;
	tl_producer_delivery_fn cb;
	void *cb_opaque;
};

/* Per-record bookkeeping beyond the encoded bytes. */
struct pending_record {
	void *opaque;
	struct sync_wait *sync; /* send_sync waiter, or NULL */
	int64_t timestamp_ms;
	int64_t spool_index; /* the record's place in its partition's spool, -1 without */
};

struct sync_wait {
	bool done;
	struct tl_producer_delivery delivery;
};

struct partition_state;

struct batch {
	struct batch *next;
	struct partition_state *part;
	struct tl_records_builder builder;
	struct pending_record *records;
	int32_t record_count;
	int32_t record_cap;
	struct tl_buf wire; /* finished bytes, made at first send */
	size_t bytes;       /* counted against buffer.memory */
	int64_t created_ns;
	int64_t retry_at_ns;
	int32_t attempts;
	bool sequenced;        /* base_sequence assigned (invariant 2) */
	bool sent;             /* went on the wire at least once */
	bool maybe_stored;     /* an answer left it unknown whether it is stored */
	tl_err maybe_err;      /* that answer */
	uint64_t send_order;   /* its partition's count of first sends, at its first send */
	bool recovered;        /* spool: records an earlier producer spooled, resent */
	int32_t base_sequence; /* spool: the first record's, fixed when it was spooled */
	/* result */
	tl_err err;
	const char *detail;
	int64_t base_offset;
	int64_t log_append_time_ms;
};

struct topic_state;
struct spool_part;

struct partition_state {
	struct topic_state *topic;
	int32_t index;
	struct batch *open;
	struct batch *head; /* queued, oldest first */
	struct batch *tail;
	struct batch *in_flight; /* sent, not answered yet, in send order (linked by next) */
	struct batch *in_flight_tail;
	int32_t in_flight_count;
	int32_t in_flight_node; /* the leader they went to (all to one, invariant 1) */
	/* A batch of the in-flight window failed: nothing more is sent until every batch
	 * in flight is answered; those to send again wait in the retry list (in send
	 * order), which then goes back to the head of the queue (producer.c, invariant 1). */
	bool draining;
	uint64_t failed_order; /* send_order of the window's first failed batch */
	struct batch *retry_head;
	struct batch *retry_tail;
	bool resequence;         /* a batch failed for good: later ones get new sequences */
	int32_t resequence_from; /* ... starting at the failed batch's base sequence */
	uint64_t resequence_order;
	uint64_t sends; /* batches sent for the first time */
	int32_t next_sequence;
	bool txn_added;           /* registered with the coordinator in the open transaction */
	bool txn_adding;          /* in the AddPartitionsToTxn request in flight */
	struct spool_part *spool; /* NULL without spool.dir */
	bool spool_resync;        /* ask the broker where our sequences stand before sending */
	bool spool_describing;    /* DescribeProducers in flight */
	bool spool_recovering;    /* holds records an earlier producer spooled, not settled */
};

struct topic_state {
	char *name;
	int32_t partition_count; /* 0 = not known yet */
	struct partition_state **parts;
	int32_t sticky; /* partition for null keys */
	tl_err error;   /* metadata error while count is 0 */
};

enum pid_state {
	PID_UNKNOWN, /* not asked yet */
	PID_REQUESTING,
	PID_READY,  /* producer_id valid, or -1 when not idempotent */
	PID_FAILED, /* fatal: see fatal_err */
};

/* The transaction manager's states (txn.c has the transitions). */
enum txn_state {
	TXN_NONE,       /* not transactional */
	TXN_UNINIT,     /* tl_producer_init_transactions() not called yet */
	TXN_INIT,       /* getting (or, after a failed transaction, bumping) the producer id */
	TXN_READY,      /* no transaction open */
	TXN_OPEN,       /* begun: records and offsets may be added */
	TXN_COMMITTING, /* sending every batch, then EndTxn(commit) */
	TXN_ABORTING,   /* waiting for batches in flight, then EndTxn(abort) */
	TXN_ABORTABLE,  /* a record or the offsets failed: only abort is allowed */
};

/* Steps of tl_producer_send_offsets_to_transaction() in the I/O thread. */
enum txn_offsets_step {
	OFFSETS_NONE,
	OFFSETS_ADD,        /* AddOffsetsToTxn to the transaction coordinator */
	OFFSETS_FIND_GROUP, /* FindCoordinator for the group */
	OFFSETS_COMMIT,     /* TxnOffsetCommit to the group coordinator */
	OFFSETS_DONE,
};

struct txn_offset {
	char *topic;
	int32_t partition;
	int64_t offset;
};

struct producer_txn {
	char *id; /* transactional.id; NULL: not transactional */
	int32_t timeout_ms;
	enum txn_state state;
	int32_t coordinator; /* node id, -1 while unknown */
	int32_t find_asked;  /* the broker asked last for a coordinator: next, the next */
	bool find_in_flight;
	bool request_in_flight; /* one coordinator request at a time */
	int64_t retry_at_ns;    /* no coordinator request before this */
	bool registered;        /* the coordinator holds an Ongoing transaction of ours */
	bool end_sent;          /* EndTxn for the current commit/abort went out */
	bool bump_epoch;        /* sequences unsure: InitProducerId again after the abort */
	uint32_t round;         /* counts ended transactions; stale answers are dropped */
	/* send_offsets_to_transaction */
	enum txn_offsets_step offsets_step;
	char *group_id;
	char *member_id;
	char *group_instance_id;
	int32_t generation_id;
	struct txn_offset *offsets;
	int32_t offset_count;
	int32_t group_coordinator;
	bool group_in_flight;
	int64_t group_retry_at_ns;
	/* why the open transaction cannot commit (TXN_ABORTABLE) */
	tl_err abort_err;
	char abort_msg[512];
};

struct tl_spool;

struct tl_producer {
	/* settings, fixed after create */
	int16_t acks;
	bool idempotence;
	bool idempotence_explicit;
	size_t batch_size;
	int64_t linger_ns;
	size_t buffer_memory;
	int64_t max_block_ms;
	size_t max_request_size;
	enum tl_compression compression;
	int64_t retries;
	int64_t retry_backoff_ns;
	int64_t retry_backoff_max_ns;
	int64_t delivery_timeout_ns;
	int32_t request_timeout_ms;
	int32_t max_in_flight; /* max.in.flight.requests.per.connection */
	tl_producer_delivery_fn cb;
	void *cb_opaque;
	/* shared state (invariant 4) */
	/* Spare batch buffers (builder records and wire bytes of freed batches), reused by
	 * new batches: a fresh ~1 MiB buffer per batch was fresh memory, page-faulted in on
	 * every copy into it (23-30 % of the client's CPU samples). Own lock: batches are
	 * freed both under `lock` and after delivery callbacks, outside it. */
	pthread_mutex_t spare_lock;
	struct spare_buf {
		uint8_t *data;
		size_t cap;
	} spares[8];
	int spare_count;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct topic_state **topics;
	int32_t topic_count;
	size_t buffered_bytes;
	int64_t outstanding;
	int32_t batches_in_flight; /* over all partitions */
	struct batch *done_head;
	struct batch *done_tail;
	int flushing;
	bool stop;
	enum pid_state pid_state;
	int64_t producer_id;
	int16_t producer_epoch;
	tl_err fatal_err;
	char fatal_msg[512];
	struct producer_txn txn;
	struct tl_spool *spool;  /* NULL without spool.dir */
	int32_t spool_unsettled; /* recovered partitions not yet resynced (flush waits) */
	/* I/O thread only */
	struct tl_client *client;
	pthread_t thread;
	ZSTD_CCtx *cctx;
	uint64_t metadata_seen;
	int64_t pid_retry_at_ns;
	int event_fd;
};

/* ---- producer.c ---- */

/* Completes @batch with @err (TL_OK: stored). Lock held. */
void tl_producer_batch_complete(struct tl_producer *producer, struct batch *batch, tl_err err,
				const char *detail);
/* Fails every batch not sent yet (open and queued) with @err. Lock held. */
void tl_producer_fail_unsent(struct tl_producer *producer, tl_err err, const char *detail);
/* True when no batch is open, queued or in flight. Lock held. */
bool tl_producer_is_idle(const struct tl_producer *producer);
/* Takes @producer_id/@epoch; sequences restart at 0. Lock held. */
void tl_producer_pid_adopt(struct tl_producer *producer, int64_t producer_id, int16_t epoch);
/* Makes the producer fail for good with @err and the message @msg (plus @err's name):
 * queued batches fail with @err in the next I/O round, later calls return it. Lock
 * held. */
void tl_producer_set_fatal(struct tl_producer *producer, tl_err err, const char *msg);
/* The fatal error, or TL_OK. Lock held. */
tl_err tl_producer_fatal(const struct tl_producer *producer);
/* Waits on producer->cond until @deadline_ns; false once it has passed. Lock held. */
bool tl_producer_wait(struct tl_producer *producer, int64_t deadline_ns);
/* Stores the message for tl_producer_last_error() on this thread; returns @err. */
tl_err tl_producer_fail_call(tl_err err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Clears this thread's last error. */
void tl_producer_clear_call_error(void);
/* The detail naming the fix for a failed record. */
const char *tl_producer_detail_for(tl_err err);
/* True for errors worth another try of the same request. */
bool tl_producer_is_retriable(tl_err err);

/* ---- txn.c (I/O thread and callbacks: lock held) ---- */

tl_err tl_producer_txn_settings(struct tl_producer *producer, const struct tl_conf *conf,
				char *errstr, size_t errstr_size);
void tl_producer_txn_deinit(struct tl_producer *producer);
/* Sends whatever the transaction needs next: FindCoordinator, InitProducerId,
 * AddPartitionsToTxn, the offsets steps, EndTxn. I/O thread. Returns the nanoseconds
 * until it wants to run again (INT64_MAX: when an answer comes). */
int64_t tl_producer_txn_io(struct tl_producer *producer);
/* True when a batch of @part may be sent now (the partition is in the transaction). */
bool tl_producer_txn_part_ready(struct tl_producer *producer, struct partition_state *part);
/* Called for every batch that completes with an error while transactional. */
void tl_producer_txn_batch_failed(struct tl_producer *producer, struct batch *batch, tl_err err,
				  const char *detail);
/* Why a record may not be sent now (TL_OK if it may); sets the call error. */
tl_err tl_producer_txn_send_check(struct tl_producer *producer);
/* Handles a fencing error (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) from any request. */
void tl_producer_txn_fence(struct tl_producer *producer, tl_err err, const char *where);
bool tl_producer_txn_is_fenced_err(tl_err err);

#endif
