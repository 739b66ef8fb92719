/* group_store.c - durable consumer group state in the internal topic __consumer_offsets.
 *
 * Every decision of the coordinator that must survive a restart is a record appended
 * through the topic's partition logs (tl_log_append), in record batches built with
 * protocol/records.h, and durable once the log's group commit has fsynced it. At
 * start-up the coordinator replays each partition from its start and keeps, for every
 * key, its last value: the topic is read the way Kafka reads a compacted topic.
 *
 * Record format: Kafka's own schemas (group-coordinator's OffsetCommitKey/Value and
 * GroupMetadataKey/Value), so Kafka's tools can read Tally's topic and the other way
 * round. Keys and values start with an int16 schema version, then the fields in the
 * classic (non-flexible) encoding: int16-length strings (-1 = null), int32-length
 * bytes, int32 array counts, big-endian integers.
 *   key v0, v1   OffsetCommitKey    group string, topic string, partition int32
 *   key v2       GroupMetadataKey   group string
 *   offset value (written as v3):
 *     v0, v2     offset int64, metadata string, commit_timestamp int64
 *     v1         offset int64, metadata string, commit_timestamp int64,
 *                expire_timestamp int64 (ignored: expiry follows offsets.retention.minutes)
 *     v3         offset int64, leader_epoch int32, metadata string, commit_timestamp int64
 *   group value (written as v3):
 *     protocol_type string, generation int32, protocol nullable string, leader nullable
 *     string, current_state_timestamp int64 (v2+), members int32 count of [member_id
 *     string, group_instance_id nullable string (v3+), client_id string, client_host
 *     string, rebalance_timeout int32 (v1+), session_timeout int32, subscription bytes,
 *     assignment bytes]
 *   A null value is a tombstone: for an offset key the offset is gone; for a group key
 *   the whole group is gone, offsets included. Tally (like Kafka) writes a group
 *   tombstone only in the same batch as tombstones for every offset of the group, so
 *   both readings of it agree.
 *   Other versions (Kafka 3.7+'s new-protocol consumer group records, keys v3+, and
 *   flexible values v4+) are skipped with a warning.
 *
 * Partitions: a group's records all go to partition abs(hashCode(group id)) % count,
 * like Kafka's GroupCoordinator.partitionFor, so one log holds them in the order the
 * coordinator appended them.
 *
 * Retention: the topic is created with cleanup.policy=compact (as Kafka does), and also
 * retention.ms=-1 and retention.bytes=-1: time or size retention must never delete the
 * only record of a live offset. The log cleaner keeps the latest record per key and
 * drops tombstones after delete.retention.ms, so the topic stays bounded.
 *
 * Invariants:
 * (1) A written batch stays allocated until its log waiter fires (the log borrows it);
 *     until then it is on the store's `writes` list.
 * (2) Waiters of one log fire in offset order, so the callbacks of one group's writes
 *     run in the order the writes were appended.
 */
#include "broker/group_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/internal.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"
#include "protocol/batch.h"

#define KEY_VERSION_OFFSET     1
#define KEY_VERSION_GROUP      2
#define VALUE_VERSION_OFFSET   3
#define VALUE_VERSION_GROUP    3
/* Arena for the members of one decoded record. */
#define DECODE_ARENA_BYTES_MAX (64u << 20)

struct store_write {
	struct tl_log_waiter waiter;
	struct tl_group_store *store; /* NULL once the store closed */
	tl_group_store_done_fn done;
	void *ctx;
	struct tl_buf batch; /* the appended bytes, borrowed by the log */
	struct store_write *prev, *next;
};

struct tl_group_store {
	struct tl_broker *broker;
	struct tl_topic *topic;     /* single node; NULL in cluster mode (store_topic) */
	int64_t create_asked_ms;    /* cluster mode: when we last asked to create the topic */
	struct store_write *writes; /* in flight */
	int32_t write_count;
};

/* ---- codec ---- */

/* A non-null string: tl_buf_string writes a NULL pointer as null even with length 0. */
static void put_string(struct tl_buf *buf, struct tl_str s)
{
	if (s.len <= 0)
		s = tl_str_of("");
	tl_buf_string(buf, s, false);
}

static void put_nullable_string(struct tl_buf *buf, struct tl_str s)
{
	if (s.len < 0) {
		tl_buf_string(buf, s, false);
		return;
	}
	put_string(buf, s);
}

static void put_bytes(struct tl_buf *buf, struct tl_bytes b)
{
	if (b.len <= 0) {
		b.ptr = (const uint8_t *)"";
		b.len = 0;
	}
	tl_buf_bytes(buf, b, false);
}

static void encode_group_value(const struct tl_group_record *record, struct tl_buf *value)
{
	tl_buf_i16(value, VALUE_VERSION_GROUP);
	put_string(value, record->protocol_type);
	tl_buf_i32(value, record->generation_id);
	put_nullable_string(value, record->protocol_name);
	put_nullable_string(value, record->leader_id);
	tl_buf_i64(value, record->state_ms);
	tl_buf_i32(value, record->member_count);
	for (int32_t i = 0; i < record->member_count; i++) {
		const struct tl_group_record_member *m = &record->members[i];
		put_string(value, m->member_id);
		put_nullable_string(value, m->group_instance_id);
		put_string(value, m->client_id);
		put_string(value, m->client_host);
		tl_buf_i32(value, m->rebalance_timeout_ms);
		tl_buf_i32(value, m->session_timeout_ms);
		put_bytes(value, m->subscription);
		put_bytes(value, m->assignment);
	}
}

void tl_group_record_encode(const struct tl_group_record *record, struct tl_buf *key,
			    struct tl_buf *value)
{
	if (record->type == TL_GROUP_RECORD_OFFSET) {
		tl_buf_i16(key, KEY_VERSION_OFFSET);
		put_string(key, record->group_id);
		put_string(key, record->topic);
		tl_buf_i32(key, record->partition);
		if (record->tombstone)
			return;
		tl_buf_i16(value, VALUE_VERSION_OFFSET);
		tl_buf_i64(value, record->offset);
		tl_buf_i32(value, record->leader_epoch);
		put_string(value, record->metadata);
		tl_buf_i64(value, record->commit_ms);
		return;
	}
	TL_ASSERT(record->type == TL_GROUP_RECORD_GROUP);
	tl_buf_i16(key, KEY_VERSION_GROUP);
	put_string(key, record->group_id);
	if (!record->tombstone)
		encode_group_value(record, value);
}

static void decode_offset_value(struct tl_cursor *c, int16_t version, struct tl_group_record *out)
{
	out->offset = tl_cursor_i64(c);
	out->leader_epoch = version >= 3 ? tl_cursor_i32(c) : -1;
	out->metadata = tl_cursor_string(c, false, false);
	out->commit_ms = tl_cursor_i64(c);
	if (version == 1)
		(void)tl_cursor_i64(c); /* expire_timestamp */
}

static tl_err decode_group_value(struct tl_cursor *c, int16_t version, struct tl_arena *arena,
				 struct tl_group_record *out)
{
	out->protocol_type = tl_cursor_string(c, false, false);
	out->generation_id = tl_cursor_i32(c);
	out->protocol_name = tl_cursor_string(c, false, true);
	out->leader_id = tl_cursor_string(c, false, true);
	out->state_ms = version >= 2 ? tl_cursor_i64(c) : -1;
	int32_t count = tl_cursor_array_len(c, false, false, TL_GROUP_STORE_MEMBERS_MAX);
	if (c->failed)
		return TL_ERR_CORRUPT;
	struct tl_group_record_member *members =
		tl_arena_array(arena, (size_t)TL_MAX(count, 1), sizeof(*members));
	if (!members)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count && !c->failed; i++) {
		struct tl_group_record_member *m = &members[i];
		m->member_id = tl_cursor_string(c, false, false);
		m->group_instance_id =
			version >= 3 ? tl_cursor_string(c, false, true) : (struct tl_str){NULL, -1};
		m->client_id = tl_cursor_string(c, false, false);
		m->client_host = tl_cursor_string(c, false, false);
		m->rebalance_timeout_ms = version >= 1 ? tl_cursor_i32(c) : -1;
		m->session_timeout_ms = tl_cursor_i32(c);
		if (version == 0)
			m->rebalance_timeout_ms = m->session_timeout_ms;
		m->subscription = tl_cursor_bytes(c, false, false);
		m->assignment = tl_cursor_bytes(c, false, false);
	}
	out->member_count = count;
	out->members = members;
	return c->failed ? TL_ERR_CORRUPT : TL_OK;
}

tl_err tl_group_record_decode(struct tl_bytes key, struct tl_bytes value, struct tl_arena *arena,
			      struct tl_group_record *out)
{
	memset(out, 0, sizeof(*out));
	if (key.len < 0)
		return TL_ERR_CORRUPT;
	struct tl_cursor c;
	tl_cursor_init(&c, key.ptr, (size_t)key.len);
	int16_t key_version = tl_cursor_i16(&c);
	if (c.failed)
		return TL_ERR_CORRUPT;
	if (key_version < 0 || key_version > KEY_VERSION_GROUP)
		return TL_ERR_NOT_FOUND;
	out->type = key_version <= 1 ? TL_GROUP_RECORD_OFFSET : TL_GROUP_RECORD_GROUP;
	out->group_id = tl_cursor_string(&c, false, false);
	if (out->type == TL_GROUP_RECORD_OFFSET) {
		out->topic = tl_cursor_string(&c, false, false);
		out->partition = tl_cursor_i32(&c);
	}
	if (c.failed)
		return TL_ERR_CORRUPT;
	out->tombstone = value.len < 0;
	if (out->tombstone)
		return TL_OK;
	tl_cursor_init(&c, value.ptr, (size_t)value.len);
	int16_t version = tl_cursor_i16(&c);
	if (c.failed)
		return TL_ERR_CORRUPT;
	if (version < 0 || version > 3)
		return TL_ERR_NOT_FOUND;
	if (out->type == TL_GROUP_RECORD_OFFSET) {
		decode_offset_value(&c, version, out);
		return c.failed ? TL_ERR_CORRUPT : TL_OK;
	}
	return decode_group_value(&c, version, arena, out);
}

/* Next code point of UTF-8 text at *p (before @end); a malformed byte is U+FFFD. */
static uint32_t utf8_next(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *s = *p;
	uint32_t c = s[0];
	int extra = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;
	if (c < 0x80 || (c < 0xc2 || c >= 0xf5)) {
		*p = s + 1;
		return c < 0x80 ? c : 0xfffd;
	}
	if (end - s <= extra) {
		*p = s + 1;
		return 0xfffd;
	}
	uint32_t cp = c & (0x3fu >> extra);
	for (int i = 1; i <= extra; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*p = s + 1;
			return 0xfffd;
		}
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
	if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
		*p = s + 1;
		return 0xfffd;
	}
	*p = s + extra + 1;
	return cp;
}

int32_t tl_group_store_java_hash(struct tl_str s)
{
	uint32_t h = 0;
	const uint8_t *p = (const uint8_t *)s.ptr;
	const uint8_t *end = p + TL_MAX(s.len, 0);
	while (p < end) {
		uint32_t cp = utf8_next(&p, end);
		if (cp >= 0x10000) {
			cp -= 0x10000;
			h = h * 31u + (0xd800u + (cp >> 10));
			h = h * 31u + (0xdc00u + (cp & 0x3ffu));
		} else {
			h = h * 31u + cp;
		}
	}
	return (int32_t)h;
}

/* ---- opening ---- */

/* The configs __consumer_offsets is created with: its records are the coordinator's
 * state, kept until deleted (a tombstone), never by age or size. */
static tl_err store_topic_config(struct tl_topic_config *config,
				 const struct tl_config *broker_config)
{
	char why[256], segment_bytes[32];
	tl_topic_config_from_broker(config, broker_config);
	snprintf(segment_bytes, sizeof(segment_bytes), "%d",
		 broker_config->offsets_topic_segment_bytes);
	tl_err err = tl_topic_config_set(config, "retention.ms", "-1", why, sizeof(why));
	if (err == TL_OK)
		err = tl_topic_config_set(config, "retention.bytes", "-1", why, sizeof(why));
	if (err == TL_OK)
		err = tl_topic_config_set(config, "segment.bytes", segment_bytes, why, sizeof(why));
	if (err == TL_OK)
		err = tl_topic_config_set(config, "cleanup.policy", "compact", why, sizeof(why));
	return err;
}

tl_err tl_group_store_open(struct tl_broker *broker, struct tl_group_store **store_out)
{
	struct tl_group_store *store = calloc(1, sizeof(*store));
	if (!store)
		return TL_ERR_NOMEM;
	store->broker = broker;
	if (tl_config_is_cluster(&broker->config)) {
		/* The cluster's topic: it comes with the view (tl_group_store_ensure_topic). */
		*store_out = store;
		return TL_OK;
	}
	struct tl_str name = tl_str_of(TL_GROUP_STORE_TOPIC);
	store->topic = tl_topic_find(broker, name);
	if (!store->topic) {
		struct tl_topic_config config;
		char why[256];
		tl_err err = store_topic_config(&config, &broker->config);
		TL_ASSERT(err == TL_OK); /* constant, valid values */
		err = tl_topic_create(broker, name, broker->config.offsets_topic_num_partitions,
				      &config, &store->topic, why, sizeof(why));
		if (err != TL_OK) {
			tl_crit("group: cannot create the offsets topic topic=%s err=%s why=\"%s\"",
				TL_GROUP_STORE_TOPIC, tl_err_name(err), why);
			free(store);
			return err;
		}
	}
	TL_ASSERT(store->topic->partition_count >= 1);
	*store_out = store;
	return TL_OK;
}

void tl_group_store_close(struct tl_group_store *store)
{
	if (!store)
		return;
	if (store->write_count > 0)
		tl_warn("group: offsets topic writes still in flight at close count=%d",
			store->write_count);
	for (struct store_write *w = store->writes; w; w = w->next) {
		w->store = NULL;
		w->done = NULL;
	}
	free(store);
}

/* The topic in use: single node, the one opened; cluster mode, the cluster's topic
 * from the view, looked up each time (it appears, and its partitions change role). */
static struct tl_topic *store_topic(const struct tl_group_store *store)
{
	if (store->topic)
		return store->topic;
	struct tl_topic *topic = tl_topic_find(store->broker, tl_str_of(TL_GROUP_STORE_TOPIC));
	return topic && topic->cluster && topic->partition_count > 0 ? topic : NULL;
}

int32_t tl_group_store_partition_count(const struct tl_group_store *store)
{
	const struct tl_topic *topic = store_topic(store);
	return topic ? topic->partition_count : 0;
}

int32_t tl_group_store_partition_of(struct tl_str group_id, int32_t partition_count)
{
	TL_ASSERT(partition_count > 0);
	int32_t h = tl_group_store_java_hash(group_id);
	int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
	return a % partition_count;
}

struct tl_partition *tl_group_store_partition(const struct tl_group_store *store,
					      struct tl_str group_id)
{
	struct tl_topic *topic = store_topic(store);
	if (!topic)
		return NULL;
	return &topic->partitions[tl_group_store_partition_of(group_id, topic->partition_count)];
}

bool tl_group_store_is_writable(const struct tl_group_store *store, struct tl_str group_id)
{
	const struct tl_partition *p = tl_group_store_partition(store, group_id);
	return p && p->log && tl_log_is_writable(p->log) &&
	       (!p->topic->cluster || p->role == TL_REPLICA_LEADER);
}

void tl_group_store_ensure_topic(struct tl_group_store *store)
{
	struct tl_broker *broker = store->broker;
	if (!broker->cluster || store_topic(store))
		return;
	int64_t now = tl_mono_ms();
	if (store->create_asked_ms && now - store->create_asked_ms < 1000)
		return;
	store->create_asked_ms = now;
	char configs[128];
	snprintf(configs, sizeof(configs),
		 "retention.ms=-1\nretention.bytes=-1\nsegment.bytes=%d\ncleanup.policy=compact\n",
		 broker->config.offsets_topic_segment_bytes);
	tl_info("group: creating the offsets topic topic=%s partitions=%d replication_factor=%d",
		TL_GROUP_STORE_TOPIC, broker->config.offsets_topic_num_partitions,
		broker->config.offsets_topic_replication_factor);
	tl_cluster_create_topic(broker, tl_str_of(TL_GROUP_STORE_TOPIC),
				broker->config.offsets_topic_num_partitions,
				broker->config.offsets_topic_replication_factor, configs, NULL,
				NULL);
}

/* ---- writing ---- */

void tl_group_store_batch_set_transactional(struct tl_group_store_batch *batch, int64_t producer_id,
					    int16_t producer_epoch)
{
	/* No sequence: the coordinator writes it, there is no retry to dedupe. */
	tl_records_builder_set_producer(&batch->builder, producer_id, producer_epoch, -1, true);
}

void tl_group_store_batch_init(struct tl_group_store_batch *batch)
{
	memset(batch, 0, sizeof(*batch));
	tl_records_builder_init(&batch->builder, TL_COMPRESSION_NONE);
	tl_buf_init(&batch->key);
	tl_buf_init(&batch->value);
	batch->timestamp_ms = tl_wall_ms();
}

void tl_group_store_batch_deinit(struct tl_group_store_batch *batch)
{
	tl_records_builder_deinit(&batch->builder);
	tl_buf_deinit(&batch->key);
	tl_buf_deinit(&batch->value);
}

void tl_group_store_batch_add(struct tl_group_store_batch *batch,
			      const struct tl_group_record *record)
{
	tl_buf_reset(&batch->key);
	tl_buf_reset(&batch->value);
	tl_group_record_encode(record, &batch->key, &batch->value);
	if (batch->key.failed || batch->value.failed) {
		batch->failed = true;
		return;
	}
	struct tl_bytes key = {batch->key.data, (int32_t)batch->key.len};
	struct tl_bytes value = {batch->value.data, (int32_t)batch->value.len};
	if (record->tombstone)
		value = (struct tl_bytes){NULL, -1};
	if (batch->value.len > INT32_MAX ||
	    tl_records_builder_append(&batch->builder, batch->timestamp_ms, key, value, NULL, 0) !=
		    TL_OK)
		batch->failed = true;
}

static void write_durable(struct tl_log_waiter *waiter, tl_err err)
{
	struct store_write *w = (struct store_write *)waiter;
	struct tl_group_store *store = w->store;
	if (store) {
		if (w->prev)
			w->prev->next = w->next;
		else
			store->writes = w->next;
		if (w->next)
			w->next->prev = w->prev;
		store->write_count--;
	}
	if (err != TL_OK)
		tl_warn("group: offsets topic write failed err=%s", tl_err_name(err));
	if (w->done)
		w->done(w->ctx, err == TL_OK ? TL_OK : TL_ERR_KAFKA_STORAGE_ERROR);
	tl_buf_deinit(&w->batch);
	free(w);
}

tl_err tl_group_store_write(struct tl_group_store *store, struct tl_str group_id,
			    const struct tl_group_store_batch *batch, tl_group_store_done_fn done,
			    void *ctx)
{
	TL_ASSERT(tl_group_store_batch_count(batch) > 0);
	if (batch->failed)
		return TL_ERR_NOMEM;
	struct tl_partition *partition = tl_group_store_partition(store, group_id);
	if (!partition || !partition->log ||
	    (partition->topic->cluster && partition->role != TL_REPLICA_LEADER))
		return TL_ERR_NOT_COORDINATOR; /* leadership moved: the client looks again */
	struct store_write *w = calloc(1, sizeof(*w));
	if (!w)
		return TL_ERR_NOMEM;
	tl_buf_init(&w->batch);
	tl_err err = tl_records_builder_finish(&batch->builder, NULL, &w->batch);
	if (err == TL_OK && w->batch.len > (size_t)partition->topic->config.max_message_bytes)
		err = TL_ERR_MESSAGE_TOO_LARGE;
	struct tl_batch_header h;
	const char *why = NULL;
	if (err == TL_OK) {
		/* Our own bytes: a batch that does not validate is a bug here. */
		TL_ASSERT(tl_batch_validate(w->batch.data, w->batch.len, &h, &why) == TL_OK);
		struct tl_log_append_result appended;
		err = tl_log_append(partition->log, w->batch.data, w->batch.len, &h, &appended);
		w->waiter.offset = appended.last_offset;
	}
	if (err != TL_OK) {
		tl_buf_deinit(&w->batch);
		free(w);
		return err;
	}
	w->store = store;
	w->done = done;
	w->ctx = ctx;
	w->waiter.done = write_durable;
	w->next = store->writes;
	if (w->next)
		w->next->prev = w;
	store->writes = w;
	store->write_count++;
	tl_broker_mark_dirty(store->broker, partition);
	tl_log_wait_durable(partition->log, &w->waiter);
	return TL_OK;
}

/* ---- replay ---- */

struct replay {
	tl_group_store_replay_fn fn;
	void *ctx;
	int32_t partition;
	int64_t records;
	int64_t skipped;
};

static void replay_batch(struct replay *rp, const uint8_t *data, size_t len)
{
	struct tl_records_iter iter;
	struct tl_batch_header h;
	struct tl_record record;
	tl_records_iter_init(&iter, data, len);
	if (tl_records_iter_next_batch(&iter, &h, NULL, NULL) != TL_OK) {
		tl_records_iter_deinit(&iter);
		return;
	}
	tl_err err;
	while ((err = tl_records_iter_next(&iter, &record)) == TL_OK) {
		struct tl_arena arena;
		struct tl_group_record rec;
		tl_arena_init(&arena, DECODE_ARENA_BYTES_MAX);
		tl_err derr = tl_group_record_decode(record.key, record.value, &arena, &rec);
		rec.producer_id = tl_batch_is_transactional(&h) ? h.producer_id : -1;
		rec.log_partition = rp->partition;
		if (derr == TL_OK) {
			rp->fn(rp->ctx, &rec);
			rp->records++;
		} else {
			rp->skipped++;
			tl_warn("group: skipping an offsets topic record partition=%d offset=%" PRId64
				" err=%s",
				rp->partition, record.offset, tl_err_name(derr));
		}
		tl_arena_deinit(&arena);
	}
	if (err != TL_ERR_NOT_FOUND)
		tl_warn("group: unreadable records in an offsets topic batch partition=%d "
			"offset=%" PRId64 " err=%s",
			rp->partition, h.base_offset, tl_err_name(err));
	tl_records_iter_deinit(&iter);
}

/* One validated batch of the offsets topic (tl_internal_replay checked its CRC). */
static void replay_one(void *ctx, const struct tl_batch_header *h, const uint8_t *data, size_t len)
{
	struct replay *rp = ctx;
	if (!tl_batch_is_control(h)) {
		replay_batch(rp, data, len);
		return;
	}
	struct tl_group_record marker = {
		.type = TL_GROUP_RECORD_TXN_MARKER,
		.producer_id = h->producer_id,
		.log_partition = rp->partition,
		.commit = tl_batch_control_type(data, len) == TL_BATCH_CONTROL_COMMIT,
	};
	rp->fn(rp->ctx, &marker);
}

tl_err tl_group_store_replay_partition(struct tl_group_store *store, int32_t index,
				       tl_group_store_replay_fn fn, void *ctx)
{
	struct tl_topic *topic = store_topic(store);
	TL_ASSERT(topic && index >= 0 && index < topic->partition_count);
	struct replay rp = {.fn = fn, .ctx = ctx, .partition = index};
	int64_t started = tl_mono_ms();
	tl_err err = tl_internal_replay(&topic->partitions[index], replay_one, &rp);
	tl_info("group: offsets topic partition replayed partition=%d records=%" PRId64
		" skipped=%" PRId64 " ms=%" PRId64,
		index, rp.records, rp.skipped, tl_mono_ms() - started);
	return err;
}

tl_err tl_group_store_replay(struct tl_group_store *store, tl_group_store_replay_fn fn, void *ctx)
{
	struct replay rp = {.fn = fn, .ctx = ctx};
	struct tl_topic *topic = store_topic(store);
	int64_t started = tl_mono_ms();
	tl_err err = TL_OK;
	for (int32_t i = 0; topic && i < topic->partition_count && err == TL_OK; i++) {
		rp.partition = i;
		err = tl_internal_replay(&topic->partitions[i], replay_one, &rp);
	}
	tl_info("group: offsets topic replayed partitions=%d records=%" PRId64 " skipped=%" PRId64
		" ms=%" PRId64,
		topic ? topic->partition_count : 0, rp.records, rp.skipped, tl_mono_ms() - started);
	return err;
}
