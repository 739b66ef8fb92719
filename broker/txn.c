/* txn.c - the transaction coordinator, see txn.h.
 *
 * States (Kafka's names and numbers, as stored):
 *   Empty(0) -> Ongoing(1)              first AddPartitionsToTxn / AddOffsetsToTxn
 *   Ongoing -> PrepareCommit(2) | PrepareAbort(3)   EndTxn, or a timeout / a newer
 *                                        instance (abort with an epoch bump: fencing)
 *   Prepare* -> CompleteCommit(4) | CompleteAbort(5)   every marker is durable
 *   Complete* -> Ongoing                 the producer's next transaction
 *   Empty | Complete* -> Empty           InitProducerId (epoch bump)
 *   Dead(6): expired id (a tombstone is written); PrepareEpochFence(7) is read as
 *   PrepareAbort.
 * Every state change is a record in __transaction_state, and the coordinator acts on a
 * change (answers, writes markers) only once that record is durable. A decision
 * (Prepare*) is therefore never lost: after a crash the replay finds it and writes the
 * markers again; a partition that already has its marker ignores the second one (no
 * transaction is open there any more).
 *
 * Record format: Kafka's TransactionLogKey v0 (int16 version 0, string transactional
 * id) and TransactionLogValue v0 (int64 producer id, int16 epoch, int32 timeout ms,
 * int8 state, array of (string topic, array of int32 partition), int64 last update ms,
 * int64 start ms), classic encoding; a null value is a tombstone. One partition on one
 * node: there is nothing to spread. In cluster mode __transaction_state is a replicated
 * cluster topic of transaction.state.log.num.partitions partitions (created on the
 * first FindCoordinator, as Kafka does); a transactional id lives in partition
 * abs(hashCode(id)) % partitions, and its coordinator is that partition's leader,
 * which loads the partition's transactions when it becomes leader (and resumes the
 * markers of those deciding) and drops them when it stops (tl_txns_on_leadership).
 * Markers for partitions led by other brokers go there as WriteTxnMarkers
 * (markers.c); a broker appends the markers it is sent (tl_handle_write_txn_markers).
 * A marker appended to __consumer_offsets, here or there, decides the offsets the
 * transaction staged for the groups of that partition (tl_groups_txn_complete_partition).
 *
 * Invariants:
 * (1) At most one state record of a transaction is in flight (txn->writing); requests
 *     that would change the state meanwhile get CONCURRENT_TRANSACTIONS (retriable).
 * (2) markers_left > 0 only in Prepare*.
 * (3) A transaction is in the pid hash iff it has a producer id; ids change only in
 *     Empty/Complete* (epoch exhaustion), never with markers in flight. */
#include "broker/txn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/internal.h"
#include "broker/markers.h"
#include "broker/txn_state.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"
#include "protocol/records.h"

#define TXN_BUCKETS            256
#define TXN_RECORD_VERSION     0
#define TXN_PARTITIONS_MAX     100000
#define TXN_EPOCH_MAX          (INT16_MAX - 1) /* one bump left for a fencing abort */
#define TXN_REPLAY_ARENA_BYTES (16 << 20)

struct txn_partition {
	char topic[TL_TOPIC_NAME_MAX + 1];
	int32_t index;
	bool marked; /* its marker for the deciding transaction is durable */
	bool marking;
};

struct txn;
/* Answers the request waiting on a state record, once it is durable (or failed). */
typedef void (*txn_respond_fn)(struct tl_request *req, struct txn *txn, tl_err err);

struct txn {
	char *id;
	int32_t id_len;
	int64_t producer_id;
	int16_t epoch;
	/* The epoch before the last bump a running instance asked for (KIP-360, its id and
	 * epoch in InitProducerId), -1 if none: a retry of that call, whose answer was
	 * lost, gets the current epoch again instead of PRODUCER_FENCED, as Kafka's
	 * lastProducerEpoch. Memory only, as Kafka's. */
	int16_t last_epoch;
	int32_t timeout_ms;
	enum tl_txn_state state;
	int64_t start_ms;  /* wall clock when the transaction became Ongoing */
	int64_t update_ms; /* wall clock of the last state change */
	struct txn_partition *partitions;
	uint32_t partition_count;
	uint32_t partition_cap;
	bool writing;          /* a state record is in flight */
	uint32_t markers_left; /* markers in flight */
	struct tl_request *waiting;
	txn_respond_fn respond;
	bool unloaded; /* another broker coordinates it now: freed once nothing is in flight */
	struct txn *next_id;  /* hash by transactional id */
	struct txn *next_pid; /* hash by producer id */
	struct tl_txns *txns;
};

struct tl_txns {
	struct tl_broker *broker;
	struct tl_topic *topic;  /* one node; NULL in cluster mode (txns_topic) */
	int64_t create_asked_ms; /* cluster mode: when we last asked to create the topic */
	struct txn *by_id[TXN_BUCKETS];
	struct txn *by_pid[TXN_BUCKETS];
	uint32_t count;
};

/* ---- lookup ---- */

/* One node: the topic opened. Cluster mode: the cluster's, from the view. */
static struct tl_topic *txns_topic(const struct tl_txns *txns)
{
	if (txns->topic)
		return txns->topic;
	struct tl_topic *topic = tl_topic_find(txns->broker, tl_str_of(TL_TXN_TOPIC));
	return topic && topic->cluster && topic->partition_count > 0 ? topic : NULL;
}

struct tl_partition *tl_txns_partition(const struct tl_txns *txns, struct tl_str id)
{
	struct tl_topic *topic = txns_topic(txns);
	if (!topic || id.len < 0)
		return NULL;
	return &topic->partitions[tl_group_store_partition_of(id, topic->partition_count)];
}

static int32_t txn_partition_index(const struct tl_txns *txns, struct tl_str id)
{
	const struct tl_partition *p = tl_txns_partition(txns, id);
	return p ? p->index : -1;
}

/* Is this broker @id's coordinator? Always on one node; in cluster mode while it leads
 * the id's partition of __transaction_state. */
static tl_err coordinator_error(const struct tl_txns *txns, struct tl_str id)
{
	if (!txns->broker->cluster)
		return TL_OK;
	const struct tl_partition *p = tl_txns_partition(txns, id);
	if (!p)
		return TL_ERR_COORDINATOR_NOT_AVAILABLE;
	return p->role == TL_REPLICA_LEADER ? TL_OK : TL_ERR_NOT_COORDINATOR;
}

void tl_txns_ensure_topic(struct tl_txns *txns)
{
	struct tl_broker *broker = txns->broker;
	if (!broker->cluster || txns_topic(txns))
		return;
	int64_t now = tl_mono_ms();
	if (txns->create_asked_ms && now - txns->create_asked_ms < 1000)
		return;
	txns->create_asked_ms = now;
	tl_info("txn: creating the transaction state topic topic=%s partitions=%d "
		"replication_factor=%d",
		TL_TXN_TOPIC, broker->config.transaction_state_log_num_partitions,
		broker->config.transaction_state_log_replication_factor);
	char configs[160];
	snprintf(configs, sizeof(configs),
		 "retention.ms=-1\nretention.bytes=-1\ncleanup.policy=compact\nsegment.bytes=%d\n",
		 broker->config.transaction_state_log_segment_bytes);
	tl_cluster_create_topic(broker, tl_str_of(TL_TXN_TOPIC),
				broker->config.transaction_state_log_num_partitions,
				broker->config.transaction_state_log_replication_factor, configs,
				NULL, NULL);
}

static uint32_t id_hash(const char *p, int32_t len)
{
	uint32_t h = 2166136261u;
	for (int32_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h % TXN_BUCKETS;
}

static uint32_t pid_hash(int64_t pid)
{
	return (uint32_t)(((uint64_t)pid * 0x9e3779b97f4a7c15ull) >> 40) % TXN_BUCKETS;
}

static struct txn *txn_find(const struct tl_txns *txns, struct tl_str id)
{
	for (struct txn *t = txns->by_id[id_hash(id.ptr, id.len)]; t; t = t->next_id)
		if (t->id_len == id.len && memcmp(t->id, id.ptr, (size_t)id.len) == 0)
			return t;
	return NULL;
}

static struct txn *txn_find_pid(const struct tl_txns *txns, int64_t pid)
{
	for (struct txn *t = txns->by_pid[pid_hash(pid)]; t; t = t->next_pid)
		if (t->producer_id == pid)
			return t;
	return NULL;
}

static void pid_unlink(struct tl_txns *txns, struct txn *txn)
{
	struct txn **at = &txns->by_pid[pid_hash(txn->producer_id)];
	while (*at && *at != txn)
		at = &(*at)->next_pid;
	if (*at)
		*at = txn->next_pid;
	txn->next_pid = NULL;
}

static void pid_link(struct tl_txns *txns, struct txn *txn)
{
	uint32_t b = pid_hash(txn->producer_id);
	txn->next_pid = txns->by_pid[b];
	txns->by_pid[b] = txn;
}

static struct txn *txn_create(struct tl_txns *txns, struct tl_str id)
{
	struct txn *txn = calloc(1, sizeof(*txn));
	if (!txn)
		return NULL;
	txn->id = malloc((size_t)id.len + 1);
	if (!txn->id) {
		free(txn);
		return NULL;
	}
	memcpy(txn->id, id.ptr, (size_t)id.len);
	txn->id[id.len] = '\0';
	txn->id_len = id.len;
	txn->producer_id = -1;
	txn->epoch = -1;
	txn->last_epoch = -1;
	txn->txns = txns;
	uint32_t b = id_hash(id.ptr, id.len);
	txn->next_id = txns->by_id[b];
	txns->by_id[b] = txn;
	txns->count++;
	return txn;
}

static void txn_clear_partitions(struct txn *txn)
{
	txn->partition_count = 0;
}

static void txn_free(struct txn *txn)
{
	txn_clear_partitions(txn);
	free(txn->partitions);
	free(txn->id);
	free(txn);
}

static void txn_remove(struct tl_txns *txns, struct txn *txn)
{
	struct txn **at = &txns->by_id[id_hash(txn->id, txn->id_len)];
	while (*at != txn)
		at = &(*at)->next_id;
	*at = txn->next_id;
	if (txn->producer_id >= 0)
		pid_unlink(txns, txn);
	txns->count--;
	txn_free(txn);
}

static bool txn_has_partition(const struct txn *txn, struct tl_str topic, int32_t index)
{
	for (uint32_t i = 0; i < txn->partition_count; i++) {
		const struct txn_partition *p = &txn->partitions[i];
		if (p->index == index && tl_str_eq_c(topic, p->topic))
			return true;
	}
	return false;
}

static tl_err txn_add_partition(struct txn *txn, struct tl_str topic, int32_t index)
{
	if (txn_has_partition(txn, topic, index))
		return TL_OK;
	if (topic.len <= 0 || topic.len > TL_TOPIC_NAME_MAX ||
	    txn->partition_count >= TXN_PARTITIONS_MAX)
		return TL_ERR_INVALID_REQUEST;
	if (txn->partition_count == txn->partition_cap) {
		uint32_t cap = txn->partition_cap ? txn->partition_cap * 2 : 8;
		struct txn_partition *p = realloc(txn->partitions, cap * sizeof(*p));
		if (!p)
			return TL_ERR_NOMEM;
		txn->partitions = p;
		txn->partition_cap = cap;
	}
	struct txn_partition *p = &txn->partitions[txn->partition_count++];
	memset(p, 0, sizeof(*p));
	memcpy(p->topic, topic.ptr, (size_t)topic.len);
	p->index = index;
	return TL_OK;
}

/* The partition of __consumer_offsets that holds @group's records, or -1 while the
 * topic is not known here. */
static int32_t offsets_partition_of(struct tl_broker *broker, struct tl_str group)
{
	const struct tl_topic *offsets = tl_topic_find(broker, tl_str_of(TL_GROUP_STORE_TOPIC));
	if (!offsets || offsets->partition_count <= 0 || group.len <= 0)
		return -1;
	return tl_group_store_partition_of(group, offsets->partition_count);
}

/* Did AddOffsetsToTxn add @group to the transaction? Asked of the durable partition
 * list (as Kafka's KIP-890 verification does), not of a list of group ids: a
 * coordinator that reloads the transaction after a restart or a move must give the
 * same answer (eos906). */
static bool txn_has_group(const struct txn *txn, struct tl_str group)
{
	int32_t index = offsets_partition_of(txn->txns->broker, group);
	return index >= 0 && txn_has_partition(txn, tl_str_of(TL_GROUP_STORE_TOPIC), index);
}

static bool is_deciding(const struct txn *txn)
{
	return tl_txn_state_is_deciding(txn->state);
}

/* A state record or markers are in flight. */
static bool is_busy(const struct txn *txn)
{
	return txn->writing || txn->markers_left > 0;
}

/* ---- the state record ---- */

static void record_encode(const struct txn *txn, struct tl_buf *key, struct tl_buf *value)
{
	tl_buf_i16(key, TXN_RECORD_VERSION);
	tl_buf_i16(key, (int16_t)txn->id_len);
	tl_buf_put(key, txn->id, (size_t)txn->id_len);
	if (txn->state == TL_TXN_DEAD)
		return;
	tl_buf_i16(value, TXN_RECORD_VERSION);
	tl_buf_i64(value, txn->producer_id);
	tl_buf_i16(value, txn->epoch);
	tl_buf_i32(value, txn->timeout_ms);
	tl_buf_i8(value, (int8_t)txn->state);
	/* Partitions grouped by topic, in the order they were added. */
	size_t count_at = value->len;
	tl_buf_i32(value, 0);
	int32_t topics = 0;
	for (uint32_t i = 0; i < txn->partition_count; i++) {
		const char *topic = txn->partitions[i].topic;
		bool seen = false;
		for (uint32_t j = 0; j < i && !seen; j++)
			seen = strcmp(txn->partitions[j].topic, topic) == 0;
		if (seen)
			continue;
		topics++;
		tl_buf_i16(value, (int16_t)strlen(topic));
		tl_buf_put(value, topic, strlen(topic));
		int32_t n = 0;
		for (uint32_t j = i; j < txn->partition_count; j++)
			n += strcmp(txn->partitions[j].topic, topic) == 0;
		tl_buf_i32(value, n);
		for (uint32_t j = i; j < txn->partition_count; j++)
			if (strcmp(txn->partitions[j].topic, topic) == 0)
				tl_buf_i32(value, txn->partitions[j].index);
	}
	if (!value->failed)
		tl_be32_put(value->data + count_at, (uint32_t)topics);
	tl_buf_i64(value, txn->update_ms);
	tl_buf_i64(value, txn->start_ms);
}

/* Applies a replayed record: the last one per transactional id wins. */
static void record_apply(struct tl_txns *txns, struct tl_bytes key, struct tl_bytes value)
{
	struct tl_cursor c;
	tl_cursor_init(&c, key.ptr, (size_t)TL_MAX(key.len, 0));
	int16_t version = tl_cursor_i16(&c);
	struct tl_str id = tl_cursor_string(&c, false, false);
	if (c.failed || version != TXN_RECORD_VERSION || id.len <= 0) {
		tl_warn("txn: skipping an unreadable transaction state key");
		return;
	}
	struct txn *txn = txn_find(txns, id);
	if (value.len < 0) {
		if (txn)
			txn_remove(txns, txn);
		return;
	}
	tl_cursor_init(&c, value.ptr, (size_t)value.len);
	version = tl_cursor_i16(&c);
	int64_t pid = tl_cursor_i64(&c);
	int16_t epoch = tl_cursor_i16(&c);
	int32_t timeout = tl_cursor_i32(&c);
	int8_t state = tl_cursor_i8(&c);
	int32_t topics = tl_cursor_i32(&c);
	if (c.failed || version != TXN_RECORD_VERSION || state < 0 ||
	    state > TL_TXN_PREPARE_EPOCH_FENCE || topics < 0) {
		tl_warn("txn: skipping an unreadable transaction state value id=%.*s", id.len,
			id.ptr);
		return;
	}
	if (!txn && !(txn = txn_create(txns, id)))
		return;
	if (txn->producer_id >= 0)
		pid_unlink(txns, txn);
	txn->producer_id = pid;
	txn->epoch = epoch;
	txn->timeout_ms = timeout;
	txn->state = (enum tl_txn_state)state;
	txn_clear_partitions(txn);
	for (int32_t t = 0; t < topics && !c.failed; t++) {
		struct tl_str topic = tl_cursor_string(&c, false, false);
		int32_t n = tl_cursor_i32(&c);
		for (int32_t i = 0; i < n && !c.failed; i++) {
			int32_t index = tl_cursor_i32(&c);
			if (!c.failed)
				txn_add_partition(txn, topic, index);
		}
	}
	txn->update_ms = tl_cursor_i64(&c);
	txn->start_ms = tl_cursor_i64(&c);
	if (pid >= 0)
		pid_link(txns, txn);
}

static void txn_write_done(void *ctx, tl_err err);

/* Makes the transaction's current state durable; its `respond` (with `waiting`) runs
 * once it is. */
static tl_err txn_persist(struct txn *txn)
{
	TL_ASSERT(!txn->writing);
	struct tl_txns *txns = txn->txns;
	struct tl_records_builder builder;
	struct tl_buf key, value, batch;
	tl_records_builder_init(&builder, TL_COMPRESSION_NONE);
	tl_buf_init(&key);
	tl_buf_init(&value);
	tl_buf_init(&batch);
	txn->update_ms = tl_wall_ms();
	record_encode(txn, &key, &value);
	struct tl_bytes k = {.ptr = key.data, .len = (int32_t)key.len};
	struct tl_bytes v = {.ptr = value.data,
			     .len = txn->state == TL_TXN_DEAD ? -1 : (int32_t)value.len};
	tl_err err = key.failed || value.failed ? TL_ERR_NOMEM : TL_OK;
	if (err == TL_OK)
		err = tl_records_builder_append(&builder, txn->update_ms, k, v, NULL, 0);
	if (err == TL_OK)
		err = tl_records_builder_finish(&builder, NULL, &batch);
	tl_records_builder_deinit(&builder);
	tl_buf_deinit(&key);
	tl_buf_deinit(&value);
	struct tl_partition *partition =
		tl_txns_partition(txns, (struct tl_str){txn->id, txn->id_len});
	if (err == TL_OK && !partition)
		err = TL_ERR_NOT_COORDINATOR;
	if (err == TL_OK)
		err = tl_internal_append(txns->broker, partition, &batch, txn_write_done, txn);
	else
		tl_buf_deinit(&batch);
	if (err == TL_OK)
		txn->writing = true;
	else
		tl_warn("txn: cannot write transaction state id=%s err=%s", txn->id,
			tl_err_name(err));
	return err;
}

/* Parks @req until the state record now being written is durable. */
static void txn_wait(struct txn *txn, struct tl_request *req, txn_respond_fn respond)
{
	TL_ASSERT(!txn->waiting);
	txn->waiting = req;
	txn->respond = respond;
	req->waits++;
}

static void txn_answer(struct txn *txn, tl_err err)
{
	struct tl_request *req = txn->waiting;
	if (!req)
		return;
	txn->waiting = NULL;
	TL_ASSERT(req->waits > 0);
	req->waits--;
	if (req->conn->closed) {
		req->state = TL_REQUEST_SILENT;
		tl_request_finished(req);
		return;
	}
	txn->respond(req, txn, err);
}

/* ---- markers ---- */

static void markers_write(struct txn *txn);

static void markers_complete(struct txn *txn)
{
	bool commit = txn->state == TL_TXN_PREPARE_COMMIT;
	tl_info("txn: %s id=%s producer_id=%" PRId64 " epoch=%d partitions=%u",
		commit ? "committed" : "aborted", txn->id, txn->producer_id, txn->epoch,
		txn->partition_count);
	if (commit)
		txn->txns->broker->metrics.txn_committed++;
	else
		txn->txns->broker->metrics.txn_aborted++;
	struct tl_txn_step step = tl_txn_step(txn->state, false, TL_TXN_EV_MARKERS_DONE);
	TL_ASSERT(step.change && step.err == TL_OK);
	txn->state = step.next;
	txn_clear_partitions(txn);
	if (txn_persist(txn) != TL_OK)
		tl_warn("txn: completion not recorded, it is redone after a restart id=%s",
			txn->id);
}

struct marker_ctx {
	struct txn *txn;
	uint32_t index;
	int32_t offsets_partition; /* >= 0: appended here to __consumer_offsets, for its groups */
	bool commit;
};

/* An unloaded transaction goes once its last write or marker in flight is back. */
static bool txn_unloaded_release(struct txn *txn)
{
	if (!txn->unloaded)
		return false;
	if (!txn->writing && txn->markers_left == 0)
		txn_free(txn);
	return true;
}

static int32_t coordinator_epoch(const struct txn *txn);

static void marker_written(void *ctx, tl_err err)
{
	struct marker_ctx *m = ctx;
	struct txn *txn = m->txn;
	/* The partition array does not move while markers are in flight (invariant 2). */
	struct txn_partition *p = &txn->partitions[m->index];
	/* The marker in the offsets log decides the offsets the transaction staged there,
	 * as it does in a replay of the log (group.c load_record) and on a broker that
	 * gets it by WriteTxnMarkers (marker_appended): whatever this coordinator
	 * remembers of the transaction, and even once it no longer coordinates it. */
	if (err == TL_OK && m->offsets_partition >= 0 && txn->txns->broker->groups)
		tl_groups_txn_complete_partition(txn->txns->broker->groups, m->offsets_partition,
						 txn->producer_id, m->commit);
	free(m);
	if (txn->unloaded) {
		txn->markers_left--;
		txn_unloaded_release(txn);
		return;
	}
	p->marking = false;
	p->marked = err == TL_OK;
	if (err == TL_ERR_TRANSACTION_COORDINATOR_FENCED)
		/* A newer coordinator wrote this producer's markers: this one is a zombie
		 * about to learn it lost the state partition, which unloads the
		 * transaction. Retrying is harmless, the partition refuses again. */
		tl_warn("txn: marker fenced by a newer coordinator id=%s topic=%s partition=%d "
			"coordinator_epoch=%d",
			txn->id, p->topic, p->index, coordinator_epoch(txn));
	else if (err != TL_OK)
		tl_warn("txn: marker write failed, retried later id=%s topic=%s partition=%d err=%s",
			txn->id, p->topic, p->index, tl_err_name(err));
	TL_ASSERT(txn->markers_left > 0);
	if (--txn->markers_left > 0 || txn->txns->broker->stopping)
		return;
	for (uint32_t i = 0; i < txn->partition_count; i++)
		if (!txn->partitions[i].marked)
			return; /* the tick retries */
	markers_complete(txn);
}

/* True when @topic is gone for good: on a single node when the broker does not have
 * it, in a cluster when the metadata view does not list it either. */
static bool topic_gone(struct tl_broker *broker, const char *topic)
{
	if (!broker->cluster)
		return true;
	const struct tl_cluster_view *view = tl_cluster_view(broker->cluster);
	if (!view)
		return false;
	for (int32_t t = 0; t < view->topic_count; t++)
		if (strcmp(view->topics[t].name, topic) == 0)
			return false;
	return true;
}

/* Kafka's coordinator epoch: the leader epoch of the transaction's state partition. */
static int32_t coordinator_epoch(const struct txn *txn)
{
	const struct tl_partition *p =
		tl_txns_partition(txn->txns, (struct tl_str){txn->id, txn->id_len});
	return p && p->topic->cluster && p->has_state ? p->state.leader_epoch : 0;
}

/* Writes a COMMIT or ABORT marker (per the Prepare* state) to every partition of the
 * transaction that does not have one yet. */
static void markers_write(struct txn *txn)
{
	TL_ASSERT(is_deciding(txn) && !txn->writing);
	struct tl_broker *broker = txn->txns->broker;
	bool commit = txn->state == TL_TXN_PREPARE_COMMIT;
	int64_t now = tl_wall_ms();
	for (uint32_t i = 0; i < txn->partition_count; i++) {
		struct txn_partition *p = &txn->partitions[i];
		if (p->marked || p->marking)
			continue;
		/* Any partition of the topic: in a cluster the coordinator hosts only some;
		 * the others' markers go to their leaders. */
		struct tl_partition *partition =
			tl_partition_find_any(broker, tl_str_of(p->topic), p->index);
		if (!partition) {
			/* The topic was deleted: nothing left to decide. Not so when it is
			 * only not attached yet: a restarted coordinator resumes a
			 * PrepareCommit while it applies its first view, internal topics
			 * first; marking those partitions done completed the commit with no
			 * marker anywhere, and the next transaction's ABORT then aborted a
			 * committed transaction's records (chaos seed 31, clock scenario). */
			if (!topic_gone(broker, p->topic))
				continue; /* the tick retries */
			p->marked = true;
			continue;
		}
		struct marker_ctx *m = malloc(sizeof(*m));
		tl_err err = m ? TL_OK : TL_ERR_NOMEM;
		if (m) {
			m->txn = txn;
			m->index = i;
			m->offsets_partition = -1;
			m->commit = commit;
		}
		if (err == TL_OK && partition->topic->cluster &&
		    (partition->role != TL_REPLICA_LEADER || !partition->log)) {
			/* Led elsewhere (or by nobody yet: markers.c answers retriably). */
			int32_t leader = partition->has_state ? partition->state.leader : -1;
			err = tl_markers_send(broker, leader, p->topic, p->index, txn->producer_id,
					      txn->epoch, commit, coordinator_epoch(txn),
					      marker_written, m);
		} else if (err == TL_OK) {
			if (strcmp(p->topic, TL_GROUP_STORE_TOPIC) == 0)
				m->offsets_partition = p->index;
			struct tl_buf marker;
			tl_buf_init(&marker);
			err = tl_records_control_marker_build(&marker, commit, txn->producer_id,
							      txn->epoch, coordinator_epoch(txn),
							      now);
			if (err == TL_OK)
				err = tl_internal_append(broker, partition, &marker, marker_written,
							 m);
			else
				tl_buf_deinit(&marker);
		}
		if (err != TL_OK) {
			free(m);
			tl_warn("txn: cannot write a marker, retried later id=%s topic=%s "
				"partition=%d err=%s",
				txn->id, p->topic, p->index, tl_err_name(err));
			continue;
		}
		p->marking = true;
		txn->markers_left++;
	}
	if (txn->markers_left > 0)
		return;
	for (uint32_t i = 0; i < txn->partition_count; i++)
		if (!txn->partitions[i].marked)
			return;
	markers_complete(txn);
}

static void txn_write_done(void *ctx, tl_err err)
{
	struct txn *txn = ctx;
	txn->writing = false;
	if (txn_unloaded_release(txn))
		return;
	txn_answer(txn, err);
	if (err != TL_OK || txn->txns->broker->stopping)
		return;
	if (is_deciding(txn))
		markers_write(txn);
}

/* Aborts the ongoing transaction of an older instance or past its timeout, with an
 * epoch bump: the markers carry the new epoch, so the old producer is fenced at every
 * partition of the transaction, and at the coordinator. */
static tl_err txn_fence_abort(struct txn *txn, const struct tl_txn_step *step, const char *why)
{
	TL_ASSERT(step->change && step->bump_epoch && step->next == TL_TXN_PREPARE_ABORT);
	tl_info("txn: aborting id=%s producer_id=%" PRId64 " epoch=%d why=\"%s\"", txn->id,
		txn->producer_id, txn->epoch, why);
	txn->epoch++;
	txn->last_epoch = -1; /* a fence, not the instance's own bump: no retry of it */
	txn->state = step->next;
	for (uint32_t i = 0; i < txn->partition_count; i++)
		txn->partitions[i].marked = false;
	return txn_persist(txn);
}

/* ---- opening, ticking ---- */

static void replay_batch(void *ctx, const struct tl_batch_header *h, const uint8_t *data,
			 size_t len)
{
	struct tl_txns *txns = ctx;
	if (tl_batch_is_control(h))
		return;
	struct tl_records_iter iter;
	struct tl_batch_header bh;
	struct tl_record record;
	tl_records_iter_init(&iter, data, len);
	if (tl_records_iter_next_batch(&iter, &bh, NULL, NULL) == TL_OK)
		while (tl_records_iter_next(&iter, &record) == TL_OK)
			record_apply(txns, record.key, record.value);
	tl_records_iter_deinit(&iter);
}

static uint32_t txns_resume(struct tl_txns *txns, int32_t partition);

tl_err tl_txns_open(struct tl_broker *broker, struct tl_txns **txns_out)
{
	struct tl_txns *txns = calloc(1, sizeof(*txns));
	if (!txns)
		return TL_ERR_NOMEM;
	txns->broker = broker;
	if (tl_config_is_cluster(&broker->config)) {
		/* The cluster's topic; its partitions load as this broker leads them. */
		*txns_out = txns;
		return TL_OK;
	}
	struct tl_str name = tl_str_of(TL_TXN_TOPIC);
	txns->topic = tl_topic_find(broker, name);
	if (!txns->topic) {
		struct tl_topic_config config;
		char why[256];
		tl_topic_config_from_broker(&config, &broker->config);
		/* Compacted, as Kafka's: retention must never delete the only record of an id,
		 * the cleaner keeps the latest per id. */
		tl_err err = tl_topic_config_set(&config, "retention.ms", "-1", why, sizeof(why));
		if (err == TL_OK)
			err = tl_topic_config_set(&config, "retention.bytes", "-1", why,
						  sizeof(why));
		if (err == TL_OK)
			err = tl_topic_config_set(&config, "cleanup.policy", "compact", why,
						  sizeof(why));
		char segment_bytes[32];
		snprintf(segment_bytes, sizeof(segment_bytes), "%d",
			 broker->config.transaction_state_log_segment_bytes);
		if (err == TL_OK)
			err = tl_topic_config_set(&config, "segment.bytes", segment_bytes, why,
						  sizeof(why));
		TL_ASSERT(err == TL_OK);
		err = tl_topic_create(broker, name, 1, &config, &txns->topic, why, sizeof(why));
		if (err != TL_OK) {
			tl_crit("txn: cannot create the transaction state topic err=%s why=\"%s\"",
				tl_err_name(err), why);
			free(txns);
			return err;
		}
	}
	tl_err err = tl_internal_replay(&txns->topic->partitions[0], replay_batch, txns);
	if (err != TL_OK) {
		tl_txns_close(txns);
		return err;
	}
	uint32_t resumed = txns_resume(txns, -1);
	tl_info("txn: coordinator loaded transactional_ids=%u resumed=%u", txns->count, resumed);
	*txns_out = txns;
	return TL_OK;
}

/* Resumes the markers of every loaded transaction of @partition (-1: all) that was
 * deciding: its decision is durable, its markers may not all be. */
static uint32_t txns_resume(struct tl_txns *txns, int32_t partition)
{
	uint32_t resumed = 0;
	for (uint32_t b = 0; b < TXN_BUCKETS; b++)
		for (struct txn *t = txns->by_id[b]; t; t = t->next_id)
			if (is_deciding(t) && !is_busy(t) &&
			    (partition < 0 ||
			     txn_partition_index(txns, (struct tl_str){t->id, t->id_len}) ==
				     partition)) {
				if (t->state == TL_TXN_PREPARE_EPOCH_FENCE)
					t->state = TL_TXN_PREPARE_ABORT;
				markers_write(t);
				resumed++;
			}
	return resumed;
}

/* Drops @txn from the coordinator: its waiting request gets NOT_COORDINATOR (the
 * client finds the new coordinator); what it has in flight finishes on a detached
 * copy, freed after (txn_unloaded_release). */
static void txn_unload(struct tl_txns *txns, struct txn *txn)
{
	struct txn **at = &txns->by_id[id_hash(txn->id, txn->id_len)];
	while (*at != txn)
		at = &(*at)->next_id;
	*at = txn->next_id;
	if (txn->producer_id >= 0)
		pid_unlink(txns, txn);
	txns->count--;
	txn_answer(txn, TL_ERR_NOT_COORDINATOR);
	txn->unloaded = true;
	txn_unloaded_release(txn);
}

void tl_txns_on_leadership(struct tl_txns *txns, int32_t partition, bool leading)
{
	const struct tl_topic *topic = txns_topic(txns);
	if (!topic || partition < 0 || partition >= topic->partition_count)
		return;
	if (!leading) {
		uint32_t unloaded = 0;
		for (uint32_t b = 0; b < TXN_BUCKETS; b++) {
			struct txn *t = txns->by_id[b];
			while (t) {
				struct txn *next = t->next_id;
				if (txn_partition_index(txns, (struct tl_str){t->id, t->id_len}) ==
				    partition) {
					txn_unload(txns, t);
					unloaded++;
				}
				t = next;
			}
		}
		tl_info("txn: resigned as coordinator partition=%d transactional_ids=%u", partition,
			unloaded);
		return;
	}
	uint32_t before = txns->count;
	tl_err err = tl_internal_replay(&topic->partitions[partition], replay_batch, txns);
	if (err != TL_OK) {
		tl_crit("txn: cannot load transactions, not coordinating partition=%d err=%s",
			partition, tl_err_name(err));
		tl_txns_on_leadership(txns, partition, false);
		return;
	}
	uint32_t resumed = txns_resume(txns, partition);
	tl_info("txn: coordinating partition=%d transactional_ids=%u resumed=%u", partition,
		txns->count - before, resumed);
}

void tl_txns_close(struct tl_txns *txns)
{
	if (!txns)
		return;
	for (uint32_t b = 0; b < TXN_BUCKETS; b++) {
		struct txn *t = txns->by_id[b];
		while (t) {
			struct txn *next = t->next_id;
			TL_ASSERT(!t->waiting);
			txn_free(t);
			t = next;
		}
	}
	free(txns);
}

void tl_txns_tick(struct tl_txns *txns, int64_t now_ms)
{
	int64_t expiration = txns->broker->config.transactional_id_expiration_ms;
	for (uint32_t b = 0; b < TXN_BUCKETS; b++) {
		struct txn *t = txns->by_id[b];
		while (t) {
			struct txn *next = t->next_id;
			if (is_busy(t)) {
				t = next;
				continue;
			}
			struct tl_txn_step step = {.change = false};
			if (t->state == TL_TXN_ONGOING && now_ms - t->start_ms > t->timeout_ms) {
				step = tl_txn_step(t->state, false, TL_TXN_EV_TIMEOUT);
				txn_fence_abort(t, &step, "transaction.timeout.ms passed");
			} else if (is_deciding(t)) {
				markers_write(t); /* a marker failed: try again */
			} else if (t->state == TL_TXN_DEAD) {
				txn_remove(txns, t); /* its tombstone is durable */
			} else if (now_ms - t->update_ms > expiration) {
				step = tl_txn_step(t->state, false, TL_TXN_EV_EXPIRE);
				if (step.change) {
					tl_info("txn: transactional id expired id=%s", t->id);
					t->state = step.next;
					txn_persist(t);
				}
			}
			t = next;
		}
	}
}

/* ---- checks shared by the handlers ---- */

/* The error for a request naming @pid/@epoch of @txn (or of no transaction). */
static tl_err txn_check_producer(const struct txn *txn, int64_t pid, int16_t epoch, int16_t version,
				 int16_t fenced_from_version)
{
	if (!txn || txn->producer_id != pid)
		return TL_ERR_INVALID_PRODUCER_ID_MAPPING;
	if (epoch != txn->epoch)
		return version >= fenced_from_version ? TL_ERR_PRODUCER_FENCED
						      : TL_ERR_INVALID_PRODUCER_EPOCH;
	return TL_OK;
}

tl_err tl_txn_verify(struct tl_txns *txns, struct tl_str transactional_id, int64_t producer_id,
		     int16_t producer_epoch, struct tl_str topic, int32_t partition)
{
	const struct txn *txn = txn_find_pid(txns, producer_id);
	if (txn && !tl_str_eq(tl_str_of(txn->id), transactional_id))
		return TL_ERR_INVALID_PRODUCER_ID_MAPPING; /* another id's producer */
	/* Cluster mode: the producer's coordinator may be another broker, which this
	 * partition cannot ask yet (KIP-890's verification round trip is not built): the
	 * batch is taken as Kafka before 3.6 takes it. */
	if (!txn && txns->broker->cluster)
		return TL_OK;
	if (!txn)
		return TL_ERR_INVALID_TXN_STATE;
	if (producer_epoch < txn->epoch)
		return TL_ERR_INVALID_PRODUCER_EPOCH;
	if (producer_epoch != txn->epoch || txn->state != TL_TXN_ONGOING ||
	    !txn_has_partition(txn, topic, partition))
		return TL_ERR_INVALID_TXN_STATE;
	return TL_OK;
}

tl_err tl_txn_verify_offsets(struct tl_txns *txns, struct tl_str transactional_id,
			     int64_t producer_id, int16_t producer_epoch, struct tl_str group_id)
{
	const struct txn *txn = txn_find(txns, transactional_id);
	if (!txn && txns->broker->cluster && coordinator_error(txns, transactional_id) != TL_OK)
		return TL_OK; /* coordinated elsewhere: as tl_txn_verify */
	if (!txn || txn->producer_id != producer_id)
		return TL_ERR_INVALID_PRODUCER_ID_MAPPING;
	if (producer_epoch != txn->epoch)
		return TL_ERR_PRODUCER_FENCED;
	if (txn->state != TL_TXN_ONGOING || !txn_has_group(txn, group_id))
		return TL_ERR_INVALID_TXN_STATE;
	return TL_OK;
}

/* ---- InitProducerId ---- */

static void init_respond(struct tl_request *req, struct txn *txn, tl_err err)
{
	struct tl_init_producer_id_response resp;
	tl_init_producer_id_response_defaults(&resp);
	resp.error_code =
		(int16_t)(err == TL_OK                        ? TL_OK
			  : err == TL_ERR_KAFKA_STORAGE_ERROR ? TL_ERR_COORDINATOR_NOT_AVAILABLE
							      : err);
	resp.producer_id = err == TL_OK ? txn->producer_id : -1;
	resp.producer_epoch = err == TL_OK ? txn->epoch : -1;
	tl_response_begin(req);
	tl_init_producer_id_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

void tl_txn_init_producer_id(struct tl_request *req, const struct tl_init_producer_id_request *msg)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_txns *txns = broker->txns;
	struct tl_str id = msg->transactional_id;
	tl_err err = TL_OK;
	struct txn *txn = id.len > 0 ? txn_find(txns, id) : NULL;
	struct tl_txn_step step =
		tl_txn_step(txn ? txn->state : TL_TXN_EMPTY, txn && is_busy(txn), TL_TXN_EV_INIT);
	if (id.len <= 0 || (msg->producer_id < 0) != (msg->producer_epoch < 0)) {
		/* No transactional id, or only one of producer id and epoch (Kafka's check). */
		err = TL_ERR_INVALID_REQUEST;
	} else if ((err = coordinator_error(txns, id)) != TL_OK) {
		/* err says where to go */
	} else if (msg->transaction_timeout_ms <= 0 ||
		   msg->transaction_timeout_ms > broker->config.transaction_max_timeout_ms) {
		err = TL_ERR_INVALID_TRANSACTION_TIMEOUT;
	} else if (!step.change) {
		err = step.err;
	} else if (txn && msg->producer_id >= 0 && msg->producer_id == txn->producer_id &&
		   txn->last_epoch >= 0 && msg->producer_epoch == txn->last_epoch &&
		   step.next != TL_TXN_PREPARE_ABORT) {
		/* KIP-360: a retry of the bump this instance asked for, its answer lost: the
		 * current epoch again, not a second bump (Kafka's lastProducerEpoch rule). */
		init_respond(req, txn, TL_OK);
		return;
	} else if (txn && msg->producer_id >= 0 &&
		   (msg->producer_id != txn->producer_id || msg->producer_epoch != txn->epoch)) {
		/* KIP-360: the caller names the instance it was; a newer one took over. */
		err = req->header.api_version >= 4 ? TL_ERR_PRODUCER_FENCED
						   : TL_ERR_INVALID_PRODUCER_EPOCH;
	} else if (step.next == TL_TXN_PREPARE_ABORT) {
		/* A new instance: abort what the old one left open, then let it retry. */
		err = txn_fence_abort(txn, &step, "a newer instance called InitProducerId");
		err = err == TL_OK ? step.err : TL_ERR_COORDINATOR_NOT_AVAILABLE;
	}
	if (err != TL_OK) {
		struct txn dummy = {.producer_id = -1, .epoch = -1};
		init_respond(req, &dummy, err);
		return;
	}
	if (!txn && !(txn = txn_create(txns, id))) {
		struct txn dummy = {.producer_id = -1, .epoch = -1};
		init_respond(req, &dummy, TL_ERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	if (txn->producer_id < 0 || txn->epoch >= TXN_EPOCH_MAX) {
		int64_t pid;
		tl_err pid_err = tl_producer_id_allocate(broker, &pid);
		if (pid_err != TL_OK) {
			init_respond(req, txn,
				     pid_err == TL_ERR_COORDINATOR_LOAD_IN_PROGRESS
					     ? pid_err
					     : TL_ERR_COORDINATOR_NOT_AVAILABLE);
			return;
		}
		if (txn->producer_id >= 0)
			pid_unlink(txns, txn);
		txn->producer_id = pid;
		txn->epoch = 0;
		txn->last_epoch = -1;
		pid_link(txns, txn);
	} else {
		/* Remembered only for a running instance's own bump (it named its epoch). */
		txn->last_epoch = msg->producer_id >= 0 ? txn->epoch : -1;
		txn->epoch++;
	}
	txn->timeout_ms = msg->transaction_timeout_ms;
	txn->state = step.next;
	txn->start_ms = -1;
	txn_clear_partitions(txn);
	if (txn_persist(txn) != TL_OK) {
		init_respond(req, txn, TL_ERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	txn_wait(txn, req, init_respond);
}

/* AddPartitionsToTxn / AddOffsetsToTxn: moves an idle transaction to Ongoing, or
 * answers why it cannot. */
static tl_err txn_begin(struct txn *txn)
{
	struct tl_txn_step step = tl_txn_step(txn->state, is_busy(txn), TL_TXN_EV_ADD);
	if (step.err != TL_OK || !step.change)
		return step.err;
	txn_clear_partitions(txn);
	txn->state = step.next;
	txn->start_ms = tl_wall_ms();
	return TL_OK;
}

/* ---- AddPartitionsToTxn (v0-3) ---- */

struct add_partitions_state {
	struct tl_add_partitions_to_txn_request msg;
};

static void add_partitions_respond_err(struct tl_request *req,
				       const struct tl_add_partitions_to_txn_request *msg,
				       tl_err err, tl_err unknown_err)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_add_partitions_to_txn_response resp;
	tl_add_partitions_to_txn_response_defaults(&resp);
	int32_t topics = TL_MAX(msg->v3_and_below_topics_count, 0);
	resp.results_by_topic_v3_and_below_count = topics;
	resp.results_by_topic_v3_and_below = tl_arena_array(
		&req->arena, (size_t)topics, sizeof(*resp.results_by_topic_v3_and_below));
	for (int32_t t = 0; t < topics && resp.results_by_topic_v3_and_below; t++) {
		const struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic *in =
			&msg->v3_and_below_topics[t];
		struct tl_add_partitions_to_txn_response_add_partitions_to_txn_topic_result *out =
			&resp.results_by_topic_v3_and_below[t];
		tl_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_defaults(out);
		out->name = in->name;
		int32_t n = TL_MAX(in->partitions_count, 0);
		out->results_by_partition_count = n;
		out->results_by_partition =
			tl_arena_array(&req->arena, (size_t)n, sizeof(*out->results_by_partition));
		for (int32_t i = 0; i < n && out->results_by_partition; i++) {
			out->results_by_partition[i].partition_index = in->partitions[i];
			tl_err e = err;
			if (unknown_err == TL_ERR_TOPIC_AUTHORIZATION_FAILED)
				e = tl_authorize_quiet(req, TL_ACL_OP_WRITE, TL_ACL_RESOURCE_TOPIC,
						       in->name)
					    ? TL_ERR_OPERATION_NOT_ATTEMPTED
					    : unknown_err;
			else if (unknown_err != TL_OK)
				e = tl_partition_find_any(broker, in->name, in->partitions[i])
					    ? TL_ERR_OPERATION_NOT_ATTEMPTED
					    : unknown_err;
			out->results_by_partition[i].partition_error_code = (int16_t)e;
		}
	}
	tl_response_begin(req);
	tl_add_partitions_to_txn_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

static void add_partitions_respond(struct tl_request *req, struct txn *txn, tl_err err)
{
	(void)txn;
	const struct add_partitions_state *st = req->state_data;
	add_partitions_respond_err(
		req, &st->msg,
		err == TL_ERR_KAFKA_STORAGE_ERROR ? TL_ERR_COORDINATOR_NOT_AVAILABLE : err, TL_OK);
}

void tl_handle_add_partitions_to_txn(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct add_partitions_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st || tl_add_partitions_to_txn_request_decode(body, req->header.api_version,
							   &req->arena, &st->msg) != TL_OK) {
		tl_request_reject(req, "malformed AddPartitionsToTxn request");
		return;
	}
	req->state_data = st;
	const struct tl_add_partitions_to_txn_request *msg = &st->msg;
	struct txn *txn = txn_find(broker->txns, msg->v3_and_below_transactional_id);
	/* Kafka: Write on the transactional id, then on every topic (the others answer
	 * OPERATION_NOT_ATTEMPTED). */
	if (!tl_authorize_txn(req, TL_ACL_OP_WRITE, msg->v3_and_below_transactional_id)) {
		add_partitions_respond_err(req, msg, TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
					   TL_OK);
		return;
	}
	bool topics_ok = true;
	for (int32_t t = 0; t < msg->v3_and_below_topics_count; t++)
		topics_ok &=
			tl_authorize_topic(req, TL_ACL_OP_WRITE, msg->v3_and_below_topics[t].name);
	if (!topics_ok) {
		add_partitions_respond_err(req, msg, TL_OK, TL_ERR_TOPIC_AUTHORIZATION_FAILED);
		return;
	}
	tl_err err = coordinator_error(broker->txns, msg->v3_and_below_transactional_id);
	if (err == TL_OK)
		err = txn_check_producer(txn, msg->v3_and_below_producer_id,
					 msg->v3_and_below_producer_epoch, req->header.api_version,
					 2);
	if (err != TL_OK) {
		add_partitions_respond_err(req, msg, err, TL_OK);
		return;
	}
	/* Every partition must exist, or none is added (anywhere in the cluster: the
	 * coordinator need not host it). */
	bool unknown = false, added = false;
	for (int32_t t = 0; t < msg->v3_and_below_topics_count; t++) {
		const struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic *in =
			&msg->v3_and_below_topics[t];
		for (int32_t i = 0; i < in->partitions_count; i++)
			if (!tl_partition_find_any(broker, in->name, in->partitions[i]))
				unknown = true;
	}
	if (unknown) {
		add_partitions_respond_err(req, msg, TL_OK, TL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
		return;
	}
	bool was_ongoing = txn->state == TL_TXN_ONGOING;
	err = txn_begin(txn);
	if (err != TL_OK) {
		add_partitions_respond_err(req, msg, err, TL_OK);
		return;
	}
	for (int32_t t = 0; t < msg->v3_and_below_topics_count && err == TL_OK; t++) {
		const struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic *in =
			&msg->v3_and_below_topics[t];
		for (int32_t i = 0; i < in->partitions_count && err == TL_OK; i++) {
			if (txn_has_partition(txn, in->name, in->partitions[i]))
				continue;
			err = txn_add_partition(txn, in->name, in->partitions[i]);
			added = true;
		}
	}
	if (err == TL_OK && !added && was_ongoing) {
		add_partitions_respond_err(req, msg, TL_OK, TL_OK);
		return;
	}
	if (err == TL_OK)
		err = txn_persist(txn);
	if (err != TL_OK) {
		add_partitions_respond_err(req, msg, TL_ERR_COORDINATOR_NOT_AVAILABLE, TL_OK);
		return;
	}
	txn_wait(txn, req, add_partitions_respond);
}

/* ---- AddOffsetsToTxn ---- */

static void simple_error_respond(struct tl_request *req, tl_err err)
{
	if (err == TL_ERR_KAFKA_STORAGE_ERROR)
		err = TL_ERR_COORDINATOR_NOT_AVAILABLE;
	tl_response_begin(req);
	if (req->header.api_key == TL_API_END_TXN) {
		struct tl_end_txn_response resp;
		tl_end_txn_response_defaults(&resp);
		resp.error_code = (int16_t)err;
		tl_end_txn_response_encode(&req->response, req->header.api_version, &resp);
	} else {
		struct tl_add_offsets_to_txn_response resp;
		tl_add_offsets_to_txn_response_defaults(&resp);
		resp.error_code = (int16_t)err;
		tl_add_offsets_to_txn_response_encode(&req->response, req->header.api_version,
						      &resp);
	}
	tl_response_end(req);
}

static void simple_respond(struct tl_request *req, struct txn *txn, tl_err err)
{
	(void)txn;
	simple_error_respond(req, err);
}

void tl_handle_add_offsets_to_txn(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_add_offsets_to_txn_request msg;
	if (tl_add_offsets_to_txn_request_decode(body, req->header.api_version, &req->arena,
						 &msg) != TL_OK) {
		tl_request_reject(req, "malformed AddOffsetsToTxn request");
		return;
	}
	struct txn *txn = txn_find(broker->txns, msg.transactional_id);
	/* Kafka: Write on the transactional id, Read on the group. */
	if (!tl_authorize_txn(req, TL_ACL_OP_WRITE, msg.transactional_id)) {
		simple_error_respond(req, TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
		return;
	}
	if (!tl_authorize_group(req, TL_ACL_OP_READ, msg.group_id)) {
		simple_error_respond(req, TL_ERR_GROUP_AUTHORIZATION_FAILED);
		return;
	}
	tl_err err = coordinator_error(broker->txns, msg.transactional_id);
	if (err == TL_OK)
		err = txn_check_producer(txn, msg.producer_id, msg.producer_epoch,
					 req->header.api_version, 2);
	if (err == TL_OK && msg.group_id.len <= 0)
		err = TL_ERR_INVALID_REQUEST;
	if (err != TL_OK) {
		simple_error_respond(req, err);
		return;
	}
	/* The group's offsets partition. In a cluster the offsets topic is created by the
	 * first FindCoordinator of a group, which may not have come yet (a consumer that
	 * assigns its partitions): as Kafka, the configured count decides, and the
	 * TxnOffsetCommit that follows finds the coordinator (creating the topic). */
	struct tl_topic *offsets = tl_topic_find(broker, tl_str_of(TL_GROUP_STORE_TOPIC));
	int32_t partition = tl_group_store_partition_of(
		msg.group_id,
		offsets ? offsets->partition_count : broker->config.offsets_topic_num_partitions);
	bool known = txn->state == TL_TXN_ONGOING &&
		     txn_has_partition(txn, tl_str_of(TL_GROUP_STORE_TOPIC), partition);
	if (!known)
		err = txn_begin(txn);
	if (known || err != TL_OK) {
		simple_error_respond(req, err);
		return;
	}
	err = txn_add_partition(txn, tl_str_of(TL_GROUP_STORE_TOPIC), partition);
	if (err == TL_OK)
		err = txn_persist(txn);
	if (err != TL_OK) {
		simple_error_respond(req, TL_ERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	txn_wait(txn, req, simple_respond);
}

/* ---- EndTxn ---- */

void tl_handle_end_txn(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_end_txn_request msg;
	if (tl_end_txn_request_decode(body, req->header.api_version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed EndTxn request");
		return;
	}
	struct txn *txn = txn_find(broker->txns, msg.transactional_id);
	if (!tl_authorize_txn(req, TL_ACL_OP_WRITE, msg.transactional_id)) {
		simple_error_respond(req, TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
		return;
	}
	tl_err err = coordinator_error(broker->txns, msg.transactional_id);
	if (err == TL_OK)
		err = txn_check_producer(txn, msg.producer_id, msg.producer_epoch,
					 req->header.api_version, 2);
	struct tl_txn_step step = {.err = err};
	if (err == TL_OK)
		step = tl_txn_step(txn->state, is_busy(txn),
				   msg.committed ? TL_TXN_EV_COMMIT : TL_TXN_EV_ABORT);
	if (step.err != TL_OK || !step.change) {
		/* Also a retry of the decision just completed: it succeeds again. */
		/* Said at info, as Kafka's coordinator logs an invalid transition: mostly
		 * librdkafka's abort racing its own AddPartitionsToTxn retry (its issue
		 * 4849: EndTxn(abort) while the coordinator still holds the last commit). */
		if (step.err == TL_ERR_INVALID_TXN_STATE)
			tl_info("txn: EndTxn refused id=%s producer_id=%" PRId64 " epoch=%d "
				"decision=%s state=%s partitions=%u: INVALID_TXN_STATE",
				txn->id, txn->producer_id, txn->epoch,
				msg.committed ? "commit" : "abort", tl_txn_state_name(txn->state),
				txn->partition_count);
		simple_error_respond(req, step.err);
		return;
	}
	txn->state = step.next;
	for (uint32_t i = 0; i < txn->partition_count; i++)
		txn->partitions[i].marked = false;
	if (txn_persist(txn) != TL_OK) {
		txn->state = TL_TXN_ONGOING;
		simple_error_respond(req, TL_ERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	txn_wait(txn, req, simple_respond);
}

/* ---- DescribeTransactions, ListTransactions ---- */

void tl_handle_describe_transactions(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_describe_transactions_request msg;
	if (tl_describe_transactions_request_decode(body, req->header.api_version, &req->arena,
						    &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeTransactions request");
		return;
	}
	struct tl_describe_transactions_response resp;
	tl_describe_transactions_response_defaults(&resp);
	int32_t n = TL_MAX(msg.transactional_ids_count, 0);
	resp.transaction_states_count = n;
	resp.transaction_states =
		tl_arena_array(&req->arena, (size_t)n, sizeof(*resp.transaction_states));
	for (int32_t i = 0; i < n && resp.transaction_states; i++) {
		struct tl_describe_transactions_response_transaction_state *out =
			&resp.transaction_states[i];
		tl_describe_transactions_response_transaction_state_defaults(out);
		out->transactional_id = msg.transactional_ids[i];
		const struct txn *txn = txn_find(broker->txns, msg.transactional_ids[i]);
		tl_err cerr = tl_authorize_txn(req, TL_ACL_OP_DESCRIBE, msg.transactional_ids[i])
				      ? coordinator_error(broker->txns, msg.transactional_ids[i])
				      : TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
		if (cerr != TL_OK) {
			out->error_code = (int16_t)cerr;
			continue;
		}
		if (!txn || txn->state == TL_TXN_DEAD) {
			out->error_code = (int16_t)TL_ERR_TRANSACTIONAL_ID_NOT_FOUND;
			continue;
		}
		out->transaction_state = tl_str_of(tl_txn_state_name(txn->state));
		out->transaction_timeout_ms = txn->timeout_ms;
		out->transaction_start_time_ms =
			txn->state == TL_TXN_ONGOING || is_deciding(txn) ? txn->start_ms : -1;
		out->producer_id = txn->producer_id;
		out->producer_epoch = txn->epoch;
		out->topics_count = 0;
		out->topics =
			tl_arena_array(&req->arena, txn->partition_count + 1, sizeof(*out->topics));
		for (uint32_t p = 0; p < txn->partition_count && out->topics; p++) {
			struct tl_str topic = tl_str_of(txn->partitions[p].topic);
			struct tl_describe_transactions_response_topic_data *td = NULL;
			for (int32_t k = 0; k < out->topics_count && !td; k++)
				if (tl_str_eq(out->topics[k].topic, topic))
					td = &out->topics[k];
			if (!td) {
				td = &out->topics[out->topics_count++];
				tl_describe_transactions_response_topic_data_defaults(td);
				td->topic = topic;
				td->partitions_count = 0;
				td->partitions = tl_arena_array(&req->arena, txn->partition_count,
								sizeof(int32_t));
			}
			if (td->partitions)
				td->partitions[td->partitions_count++] = txn->partitions[p].index;
		}
	}
	tl_response_begin(req);
	tl_describe_transactions_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

static bool list_filter_match(const struct tl_list_transactions_request *msg, const struct txn *txn,
			      int64_t now_ms)
{
	if (txn->state == TL_TXN_DEAD)
		return false;
	bool ok = msg->state_filters_count <= 0;
	for (int32_t i = 0; i < msg->state_filters_count && !ok; i++)
		ok = tl_str_eq_c(msg->state_filters[i], tl_txn_state_name(txn->state));
	if (!ok)
		return false;
	ok = msg->producer_id_filters_count <= 0;
	for (int32_t i = 0; i < msg->producer_id_filters_count && !ok; i++)
		ok = msg->producer_id_filters[i] == txn->producer_id;
	if (!ok)
		return false;
	/* v1: only transactions running longer than the duration. */
	if (msg->duration_filter >= 0 &&
	    !(txn->state == TL_TXN_ONGOING && now_ms - txn->start_ms > msg->duration_filter))
		return false;
	return true;
}

void tl_handle_list_transactions(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_list_transactions_request msg;
	if (tl_list_transactions_request_decode(body, req->header.api_version, &req->arena, &msg) !=
	    TL_OK) {
		tl_request_reject(req, "malformed ListTransactions request");
		return;
	}
	struct tl_list_transactions_response resp;
	tl_list_transactions_response_defaults(&resp);
	/* Filters naming no state Kafka knows are echoed back (Kafka's UnknownStateFilters). */
	resp.unknown_state_filters = tl_arena_array(
		&req->arena, (size_t)TL_MAX(msg.state_filters_count, 1), sizeof(struct tl_str));
	resp.unknown_state_filters_count = 0;
	for (int32_t i = 0; i < msg.state_filters_count && resp.unknown_state_filters; i++) {
		bool known = false;
		for (int st = 0; st < TL_TXN_STATE_COUNT && !known; st++)
			known = tl_str_eq_c(msg.state_filters[i],
					    tl_txn_state_name((enum tl_txn_state)st));
		if (!known)
			resp.unknown_state_filters[resp.unknown_state_filters_count++] =
				msg.state_filters[i];
	}
	resp.transaction_states = tl_arena_array(&req->arena, broker->txns->count + 1,
						 sizeof(*resp.transaction_states));
	resp.transaction_states_count = 0;
	int64_t now = tl_wall_ms();
	for (uint32_t b = 0; b < TXN_BUCKETS && resp.transaction_states; b++)
		for (const struct txn *t = broker->txns->by_id[b]; t; t = t->next_id) {
			if (!list_filter_match(&msg, t, now))
				continue;
			/* Kafka lists only the ids the principal may Describe. */
			if (!tl_authorize_quiet(req, TL_ACL_OP_DESCRIBE,
						TL_ACL_RESOURCE_TRANSACTIONAL_ID,
						(struct tl_str){.ptr = t->id, .len = t->id_len}))
				continue;
			struct tl_list_transactions_response_transaction_state *out =
				&resp.transaction_states[resp.transaction_states_count++];
			tl_list_transactions_response_transaction_state_defaults(out);
			out->transactional_id = (struct tl_str){.ptr = t->id, .len = t->id_len};
			out->producer_id = t->producer_id;
			out->transaction_state = tl_str_of(tl_txn_state_name(t->state));
		}
	tl_response_begin(req);
	tl_list_transactions_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

/* ---- DescribeProducers ---- */

void tl_handle_describe_producers(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_describe_producers_request msg;
	if (tl_describe_producers_request_decode(body, req->header.api_version, &req->arena,
						 &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeProducers request");
		return;
	}
	struct tl_describe_producers_response resp;
	tl_describe_producers_response_defaults(&resp);
	int32_t topics = TL_MAX(msg.topics_count, 0);
	resp.topics_count = topics;
	resp.topics = tl_arena_array(&req->arena, (size_t)topics, sizeof(*resp.topics));
	for (int32_t t = 0; t < topics && resp.topics; t++) {
		const struct tl_describe_producers_request_topic_request *in = &msg.topics[t];
		struct tl_describe_producers_response_topic_response *out = &resp.topics[t];
		tl_describe_producers_response_topic_response_defaults(out);
		out->name = in->name;
		int32_t n = TL_MAX(in->partition_indexes_count, 0);
		out->partitions_count = n;
		out->partitions = tl_arena_array(&req->arena, (size_t)n, sizeof(*out->partitions));
		bool topic_ok = tl_authorize_topic(req, TL_ACL_OP_READ, in->name);
		for (int32_t i = 0; i < n && out->partitions; i++) {
			struct tl_describe_producers_response_partition_response *pr =
				&out->partitions[i];
			tl_describe_producers_response_partition_response_defaults(pr);
			pr->partition_index = in->partition_indexes[i];
			if (!topic_ok) {
				pr->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			struct tl_partition *p =
				tl_partition_find_any(broker, in->name, in->partition_indexes[i]);
			if (!p) {
				pr->error_code = (int16_t)TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			/* The leader's producer state, as Kafka: a follower's or a broker
			 * without the partition sends the admin to the leader. */
			tl_err check = p->log || p->topic->cluster
					       ? tl_replica_check_client(p, -1)
					       : TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (check != TL_OK) {
				pr->error_code = (int16_t)check;
				continue;
			}
			uint32_t count = tl_log_producers(p->log, NULL, 0);
			struct tl_log_producer *found =
				tl_arena_array(&req->arena, count + 1, sizeof(*found));
			pr->active_producers = tl_arena_array(&req->arena, count + 1,
							      sizeof(*pr->active_producers));
			if (!found || !pr->active_producers) {
				pr->error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			count = tl_log_producers(p->log, found, count);
			pr->active_producers_count = (int32_t)count;
			for (uint32_t k = 0; k < count; k++) {
				struct tl_describe_producers_response_producer_state *ps =
					&pr->active_producers[k];
				tl_describe_producers_response_producer_state_defaults(ps);
				ps->producer_id = found[k].producer_id;
				ps->producer_epoch = found[k].producer_epoch;
				ps->last_sequence = found[k].last_sequence;
				ps->last_timestamp = found[k].last_timestamp;
				ps->coordinator_epoch = found[k].coordinator_epoch;
				ps->current_txn_start_offset = found[k].txn_first_offset;
			}
		}
	}
	tl_response_begin(req);
	tl_describe_producers_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

/* ---- WriteTxnMarkers (from a coordinator on another broker) ---- */

struct marker_wait {
	struct tl_request *req;
	int16_t *error_code;
	int32_t offsets_partition; /* >= 0: a marker of __consumer_offsets, for its groups */
	int64_t producer_id;
	bool commit;
};

static void write_markers_respond(struct tl_request *req)
{
	const struct tl_write_txn_markers_response *resp = req->state_data;
	tl_response_begin(req);
	tl_write_txn_markers_response_encode(&req->response, req->header.api_version, resp);
	tl_response_end(req);
}

static void marker_appended(void *ctx, tl_err err)
{
	struct marker_wait *w = ctx;
	struct tl_request *req = w->req;
	struct tl_broker *broker = req->conn->broker;
	*w->error_code =
		(int16_t)(err == TL_ERR_KAFKA_STORAGE_ERROR ? TL_ERR_KAFKA_STORAGE_ERROR : err);
	if (err == TL_OK && w->offsets_partition >= 0 && broker->groups)
		tl_groups_txn_complete_partition(broker->groups, w->offsets_partition,
						 w->producer_id, w->commit);
	if (!tl_request_wait_end(req))
		return;
	write_markers_respond(req);
}

static tl_err marker_append_one(struct tl_request *req,
				const struct tl_write_txn_markers_request_writable_txn_marker *in,
				struct tl_str topic, int32_t index, int16_t *error_code)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_partition *partition = tl_partition_find(broker, topic, index);
	if (!partition || !partition->log)
		return partition ? TL_ERR_NOT_LEADER_OR_FOLLOWER
				 : TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	if (partition->topic->cluster && partition->role != TL_REPLICA_LEADER)
		return TL_ERR_NOT_LEADER_OR_FOLLOWER;
	struct marker_wait *w = tl_arena_alloc(&req->arena, sizeof(*w));
	if (!w)
		return TL_ERR_NOMEM;
	w->req = req;
	w->error_code = error_code;
	w->offsets_partition = tl_str_eq_c(topic, TL_GROUP_STORE_TOPIC) ? index : -1;
	w->producer_id = in->producer_id;
	w->commit = in->transaction_result;
	struct tl_buf marker;
	tl_buf_init(&marker);
	tl_err err = tl_records_control_marker_build(&marker, in->transaction_result,
						     in->producer_id, in->producer_epoch,
						     in->coordinator_epoch, tl_wall_ms());
	if (err != TL_OK) {
		tl_buf_deinit(&marker);
		return err;
	}
	err = tl_internal_append(broker, partition, &marker, marker_appended, w);
	if (err == TL_OK)
		req->waits++;
	return err;
}

void tl_handle_write_txn_markers(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_write_txn_markers_request msg;
	struct tl_write_txn_markers_response *resp = tl_arena_alloc(&req->arena, sizeof(*resp));
	if (!resp ||
	    tl_write_txn_markers_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed WriteTxnMarkers request");
		return;
	}
	tl_write_txn_markers_response_defaults(resp);
	req->state_data = resp;
	int32_t markers = TL_MAX(msg.markers_count, 0);
	resp->markers_count = markers;
	resp->markers = tl_arena_array(&req->arena, (size_t)markers, sizeof(*resp->markers));
	if (markers > 0 && !resp->markers) {
		tl_request_reject(req, "WriteTxnMarkers request too large");
		return;
	}
	/* Only brokers write markers: ClusterAction on the Cluster, as Kafka. */
	bool cluster_ok = tl_authorize_cluster(req, TL_ACL_OP_CLUSTER_ACTION);
	for (int32_t m = 0; m < markers; m++) {
		const struct tl_write_txn_markers_request_writable_txn_marker *in = &msg.markers[m];
		struct tl_write_txn_markers_response_writable_txn_marker_result *out =
			&resp->markers[m];
		tl_write_txn_markers_response_writable_txn_marker_result_defaults(out);
		out->producer_id = in->producer_id;
		out->topics_count = TL_MAX(in->topics_count, 0);
		out->topics = tl_arena_array(&req->arena, (size_t)out->topics_count,
					     sizeof(*out->topics));
		for (int32_t t = 0; t < out->topics_count && out->topics; t++) {
			const struct tl_write_txn_markers_request_writable_txn_marker_topic *it =
				&in->topics[t];
			struct tl_write_txn_markers_response_writable_txn_marker_topic_result *ot =
				&out->topics[t];
			tl_write_txn_markers_response_writable_txn_marker_topic_result_defaults(ot);
			ot->name = it->name;
			ot->partitions_count = TL_MAX(it->partition_indexes_count, 0);
			ot->partitions = tl_arena_array(&req->arena, (size_t)ot->partitions_count,
							sizeof(*ot->partitions));
			for (int32_t i = 0; i < ot->partitions_count && ot->partitions; i++) {
				struct tl_write_txn_markers_response_writable_txn_marker_partition_result
					*op = &ot->partitions[i];
				tl_write_txn_markers_response_writable_txn_marker_partition_result_defaults(
					op);
				op->partition_index = it->partition_indexes[i];
				if (!cluster_ok) {
					op->error_code =
						(int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
					continue;
				}
				tl_err err = marker_append_one(
					req, in, it->name, op->partition_index, &op->error_code);
				if (err != TL_OK)
					op->error_code = (int16_t)err;
			}
			if (ot->partitions_count > 0 && !ot->partitions) {
				tl_request_reject(req, "WriteTxnMarkers request too large");
				return;
			}
		}
	}
	if (req->waits == 0)
		write_markers_respond(req);
}
