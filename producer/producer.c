/* producer.c - the libtally producer, see include/tally/producer.h.
 *
 * Threads: application threads append records under `lock`; one I/O thread (io_main)
 * owns the tl_client, closes batches when full or lingered, sends them and completes
 * them. Completed batches wait in the done queue until tl_producer_poll() runs their
 * callbacks on the caller's thread.
 *
 * Batch states: OPEN (part->open, records being appended) -> QUEUED (part queue, bytes
 * finished) -> IN FLIGHT (part->in_flight list) -> RETRY (part->retry list) and QUEUED
 * again on a retriable error, or DONE (done queue) -> freed after its callbacks ran.
 *
 * Invariants:
 * (1) Up to max.in.flight.requests.per.connection batches of a partition are in flight
 *     (one with spool.dir), each in its own Produce request, in queue order. Once one of
 *     them fails, the partition sends nothing until all are answered ("draining"); the
 *     ones to send again collect in the retry list in send order and then go back to the
 *     head of the queue, so a retry resends them in their original order. With
 *     idempotence the broker stores a partition's batches only in sequence order, so
 *     records of one partition are stored in send order: a batch that follows a failed
 *     one is answered OUT_OF_ORDER_SEQUENCE_NUMBER (or UNKNOWN_PRODUCER_ID), which is
 *     then a consequence, not an error of its own. Without idempotence a retry may
 *     reorder (as in Kafka); max.in.flight.requests.per.connection=1 keeps the order.
 *     An open batch whose linger.ms has passed stays open (and keeps growing) while its
 *     partition's window is full.
 * (2) A batch's sequence is assigned once, at its first send, from part->next_sequence
 *     (with spool.dir: when its first record is spooled, since the spool stores each
 *     record's sequence); a retry resends identical bytes, so the broker drops duplicates.
 *     Two exceptions, both for batches known not to be stored: after a batch fails for
 *     good, the later batches of its window get new sequences starting at its base
 *     sequence; and a new producer id (or epoch) restarts every partition at 0, once no
 *     batch is in flight anywhere.
 *
 * Transactions live in txn.c (a batch waits for its partition to join the transaction),
 * the spool's files in spool.c; the spool's I/O-thread side (resend after a restart,
 * DescribeProducers) is the "I/O thread: spool" section below.
 * (3) buffered_bytes == sum of bytes of batches not yet DONE; outstanding == records
 *     whose report has not been handed out yet.
 * (4) Everything reachable from `topics`, the queues and the counters is guarded by lock;
 *     the builder and wire bytes of a QUEUED/IN FLIGHT batch are touched only by the I/O
 *     thread. */
#include "tally/producer.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zstd.h>

#include "common/assert.h"
#include "common/time.h"
#include "internal.h"
#include "protocol/messages.h"
#include "spool.h"

/* ---- configuration ---- */

static const struct tl_conf_key producer_keys[] = {
	{"bootstrap.servers", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	TL_CLIENT_SECURITY_KEYS,
	{"client.id", TL_CONF_STR, "libtally", 0, 0, NULL, NULL},
	{"acks", TL_CONF_ENUM, "all", 0, 0, "all|-1|0|1", NULL},
	{"enable.idempotence", TL_CONF_BOOL, "true", 0, 0, NULL, NULL},
	{"batch.size", TL_CONF_INT, "1000000", 1, 1 << 30, NULL, NULL},
	{"linger.ms", TL_CONF_INT, "5", 0, 900000, NULL, NULL},
	{"buffer.memory", TL_CONF_INT, "33554432", 1024, INT64_MAX / 2, NULL, NULL},
	{"max.block.ms", TL_CONF_INT, "60000", 0, INT32_MAX, NULL, NULL},
	{"max.request.size", TL_CONF_INT, "1048576", 1024, 1 << 30, NULL, NULL},
	{"compression.type", TL_CONF_ENUM, "none", 0, 0, "none|zstd|gzip|snappy|lz4", NULL},
	{"retries", TL_CONF_INT, "2147483647", 0, INT32_MAX, NULL, NULL},
	{"retry.backoff.ms", TL_CONF_INT, "100", 0, 3600000, NULL, NULL},
	{"retry.backoff.max.ms", TL_CONF_INT, "1000", 0, 3600000, NULL, NULL},
	{"delivery.timeout.ms", TL_CONF_INT, "120000", 1, INT32_MAX, NULL, NULL},
	{"request.timeout.ms", TL_CONF_INT, "30000", 1, INT32_MAX, NULL, NULL},
	{"reconnect.backoff.ms", TL_CONF_INT, "50", 0, 3600000, NULL, NULL},
	{"metadata.max.age.ms", TL_CONF_INT, "300000", 1, INT32_MAX, NULL, NULL},
	{"max.in.flight.requests.per.connection", TL_CONF_INT, "5", 1, 5, NULL, NULL},
	{"allow.auto.create.topics", TL_CONF_BOOL, "true", 0, 0, NULL, NULL},
	{"transactional.id", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	{"transaction.timeout.ms", TL_CONF_INT, "60000", 1, INT32_MAX, NULL, NULL},
	{"spool.dir", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	{"spool.segment.bytes", TL_CONF_INT, "16777216", 4096, 1 << 30, NULL, NULL},
	{"spool.fsync", TL_CONF_BOOL, "false", 0, 0, NULL, NULL},
};

TL_EXPORT struct tl_producer_conf *tl_producer_conf_create(void)
{
	struct tl_producer_conf *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	if (tl_conf_init(&pc->conf, producer_keys, TL_ARRAY_SIZE(producer_keys)) != TL_OK) {
		free(pc);
		return NULL;
	}
	return pc;
}

TL_EXPORT void tl_producer_conf_destroy(struct tl_producer_conf *pc)
{
	if (!pc)
		return;
	tl_conf_deinit(&pc->conf);
	free(pc);
}

/* compression.type's values (the conf table admits only these) as batch codecs. */
static enum tl_compression compression_of(const char *name)
{
	static const char *const names[] = {
		[TL_COMPRESSION_NONE] = "none",     [TL_COMPRESSION_GZIP] = "gzip",
		[TL_COMPRESSION_SNAPPY] = "snappy", [TL_COMPRESSION_LZ4] = "lz4",
		[TL_COMPRESSION_ZSTD] = "zstd",
	};
	for (size_t i = 0; i < TL_ARRAY_SIZE(names); i++)
		if (strcmp(name, names[i]) == 0)
			return (enum tl_compression)i;
	TL_ASSERT(!"compression.type outside its enum");
	return TL_COMPRESSION_NONE;
}

TL_EXPORT tl_err tl_producer_conf_set(struct tl_producer_conf *pc, const char *key,
				      const char *value, char *errstr, size_t errstr_size)
{
	return tl_conf_set(&pc->conf, key, value, errstr, errstr_size);
}

TL_EXPORT void tl_producer_conf_set_delivery_cb(struct tl_producer_conf *pc,
						tl_producer_delivery_fn cb, void *conf_opaque)
{
	pc->cb = cb;
	pc->cb_opaque = conf_opaque;
}

/* ---- batches ---- */

#define SPARE_BYTES_MIN (64 << 10) /* smaller buffers are left to malloc */

/* Gives empty @buf the memory of a spare buffer, when there is one. */
static void spare_take(struct tl_producer *producer, struct tl_buf *buf)
{
	TL_ASSERT(buf->len == 0 && buf->span_count == 0);
	if (buf->data)
		return;
	pthread_mutex_lock(&producer->spare_lock);
	if (producer->spare_count > 0) {
		struct spare_buf *spare = &producer->spares[--producer->spare_count];
		buf->data = spare->data;
		buf->cap = spare->cap;
	}
	pthread_mutex_unlock(&producer->spare_lock);
}

/* Frees @buf, keeping its memory as a spare when it is big and there is room. */
static void spare_give(struct tl_producer *producer, struct tl_buf *buf)
{
	if (buf->cap >= SPARE_BYTES_MIN && buf->span_count == 0 && !buf->failed) {
		pthread_mutex_lock(&producer->spare_lock);
		if (producer->spare_count < (int)TL_ARRAY_SIZE(producer->spares)) {
			producer->spares[producer->spare_count++] =
				(struct spare_buf){buf->data, buf->cap};
			buf->data = NULL;
			buf->cap = 0;
			buf->len = 0;
		}
		pthread_mutex_unlock(&producer->spare_lock);
	}
	tl_buf_deinit(buf);
}

static void spares_free(struct tl_producer *producer)
{
	for (int i = 0; i < producer->spare_count; i++)
		free(producer->spares[i].data);
	producer->spare_count = 0;
}

static struct batch *batch_create(struct tl_producer *producer, struct partition_state *part)
{
	struct batch *batch = calloc(1, sizeof(*batch));
	if (!batch)
		return NULL;
	tl_records_builder_init(&batch->builder, producer->compression);
	spare_take(producer, &batch->builder.records);
	tl_buf_init(&batch->wire);
	batch->part = part;
	batch->created_ns = tl_mono_ns();
	batch->base_offset = -1;
	batch->log_append_time_ms = -1;
	batch->base_sequence = -1;
	return batch;
}

static void batch_free(struct tl_producer *producer, struct batch *batch)
{
	spare_give(producer, &batch->builder.records);
	tl_records_builder_deinit(&batch->builder);
	spare_give(producer, &batch->wire);
	free(batch->records);
	free(batch);
}

static void part_push_tail(struct partition_state *part, struct batch *batch)
{
	batch->next = NULL;
	if (part->tail)
		part->tail->next = batch;
	else
		part->head = batch;
	part->tail = batch;
}

static void part_push_head(struct partition_state *part, struct batch *batch)
{
	batch->next = part->head;
	part->head = batch;
	if (!part->tail)
		part->tail = batch;
}

static struct batch *part_pop(struct partition_state *part)
{
	struct batch *batch = part->head;
	if (batch) {
		part->head = batch->next;
		if (!part->head)
			part->tail = NULL;
		batch->next = NULL;
	}
	return batch;
}

/* ---- a partition's in-flight window (invariant 1); lock held ---- */

static void part_send(struct tl_producer *producer, struct partition_state *part,
		      struct batch *batch, int32_t node)
{
	TL_ASSERT(!part->draining);
	TL_ASSERT(part->in_flight_count == 0 || part->in_flight_node == node);
	part->in_flight_node = node;
	if (!batch->sent) {
		batch->sent = true;
		batch->send_order = part->sends++;
	}
	batch->next = NULL;
	if (part->in_flight_tail)
		part->in_flight_tail->next = batch;
	else
		part->in_flight = batch;
	part->in_flight_tail = batch;
	part->in_flight_count++;
	producer->batches_in_flight++;
}

/* Takes answered @batch out of the window (answers come in send order on one
 * connection, but the leader may have moved between two sends). */
static void part_answered(struct tl_producer *producer, struct partition_state *part,
			  struct batch *batch)
{
	struct batch **link = &part->in_flight;
	struct batch *prev = NULL;
	while (*link != batch) {
		TL_ASSERT(*link);
		prev = *link;
		link = &(*link)->next;
	}
	*link = batch->next;
	if (part->in_flight_tail == batch)
		part->in_flight_tail = prev;
	batch->next = NULL;
	TL_ASSERT(part->in_flight_count > 0 && producer->batches_in_flight > 0);
	part->in_flight_count--;
	producer->batches_in_flight--;
}

/* Notes that a batch of the window failed: nothing more is sent until it drained. */
static void part_failed(struct partition_state *part, const struct batch *batch)
{
	if (!part->draining || batch->send_order < part->failed_order)
		part->failed_order = batch->send_order;
	part->draining = true;
}

/* Keeps answered @batch for another try once the window has drained, in send order. */
static void part_retry_later(struct partition_state *part, struct batch *batch)
{
	part_failed(part, batch);
	struct batch **link = &part->retry_head;
	while (*link && (*link)->send_order < batch->send_order)
		link = &(*link)->next;
	batch->next = *link;
	*link = batch;
	if (!batch->next)
		part->retry_tail = batch;
}

/* Once every batch of a failed window is answered, the retry list goes back to the head
 * of the queue; after a batch failed for good, the retried ones get new sequences. */
static void part_window_check(struct partition_state *part)
{
	if (part->in_flight_count > 0 || !part->draining)
		return;
	if (part->retry_head) {
		part->retry_tail->next = part->head;
		part->head = part->retry_head;
		if (!part->tail)
			part->tail = part->retry_tail;
		part->retry_head = part->retry_tail = NULL;
	}
	if (part->resequence) {
		/* Batches sent before the failed one keep their bytes: they may be stored. */
		TL_ASSERT(!part->spool);
		for (struct batch *b = part->head; b && b->sequenced; b = b->next) {
			if (b->sent && b->send_order < part->resequence_order)
				continue;
			b->sequenced = false; /* renumbered at its next send */
		}
		part->next_sequence = part->resequence_from;
		part->resequence = false;
	}
	part->draining = false;
}

/* Moves the open batch of @part to its queue. Lock held. */
static void part_close_open(struct topic_state *topic, struct partition_state *part)
{
	if (!part->open)
		return;
	part_push_tail(part, part->open);
	part->open = NULL;
	/* Sticky partitioning moves on once the sticky partition's batch is closed. */
	if (topic->partition_count > 0 && topic->sticky == part->index)
		topic->sticky = (topic->sticky + 1) % topic->partition_count;
}

/* Completes @batch with @err. Lock held. Sync waiters are answered here; the other
 * records go to the done queue for tl_producer_poll(). */
void tl_producer_batch_complete(struct tl_producer *producer, struct batch *batch, tl_err err,
				const char *detail)
{
	if (err != TL_OK && producer->txn.state != TXN_NONE)
		tl_producer_txn_batch_failed(producer, batch, err, detail);
	if (err == TL_OK && batch->part->spool && batch->record_count > 0)
		tl_spool_acked(producer->spool, batch->part->spool,
			       batch->records[batch->record_count - 1].spool_index + 1);
	batch->err = err;
	batch->detail = detail;
	TL_ASSERT(producer->buffered_bytes >= batch->bytes);
	producer->buffered_bytes -= batch->bytes;
	batch->bytes = 0;
	bool any_async = false;
	for (int32_t i = 0; i < batch->record_count; i++) {
		struct pending_record *rec = &batch->records[i];
		if (!rec->sync) {
			any_async = true;
			continue;
		}
		struct tl_producer_delivery *d = &rec->sync->delivery;
		d->err = err;
		d->partition = batch->part->index;
		d->offset = err == TL_OK && batch->base_offset >= 0 ? batch->base_offset + i : -1;
		d->timestamp_ms = batch->log_append_time_ms >= 0 ? batch->log_append_time_ms
								 : rec->timestamp_ms;
		d->opaque = rec->opaque;
		d->detail = detail;
		rec->sync->done = true;
		producer->outstanding--;
	}
	if (any_async) {
		batch->next = NULL;
		if (producer->done_tail)
			producer->done_tail->next = batch;
		else
			producer->done_head = batch;
		producer->done_tail = batch;
		uint64_t one = 1;
		ssize_t n = write(producer->event_fd, &one, sizeof(one));
		TL_UNUSED(n);
	} else {
		batch_free(producer, batch);
	}
	pthread_cond_broadcast(&producer->cond);
}

/* ---- topics ---- */

static struct topic_state *topic_find(struct tl_producer *producer, const char *name)
{
	for (int32_t i = 0; i < producer->topic_count; i++)
		if (strcmp(producer->topics[i]->name, name) == 0)
			return producer->topics[i];
	return NULL;
}

static struct topic_state *topic_add(struct tl_producer *producer, const char *name)
{
	struct topic_state **topics =
		realloc(producer->topics, (size_t)(producer->topic_count + 1) * sizeof(*topics));
	if (!topics)
		return NULL;
	producer->topics = topics;
	struct topic_state *topic = calloc(1, sizeof(*topic));
	if (!topic)
		return NULL;
	topic->name = strdup(name);
	if (!topic->name) {
		free(topic);
		return NULL;
	}
	producer->topics[producer->topic_count++] = topic;
	return topic;
}

/* Grows @topic to @count partitions (Kafka never shrinks a topic). Lock held. */
static tl_err topic_resize(struct topic_state *topic, int32_t count)
{
	if (count <= topic->partition_count)
		return TL_OK;
	struct partition_state **parts = realloc(topic->parts, (size_t)count * sizeof(*parts));
	if (!parts)
		return TL_ERR_NOMEM;
	topic->parts = parts;
	for (int32_t i = topic->partition_count; i < count; i++) {
		parts[i] = calloc(1, sizeof(**parts));
		if (!parts[i])
			return TL_ERR_NOMEM; /* partition_count stays at i */
		parts[i]->topic = topic;
		parts[i]->index = i;
		topic->partition_count = i + 1;
	}
	topic->sticky = (int32_t)((uint64_t)tl_mono_ns() % (uint64_t)count);
	return TL_OK;
}

/* Gives each partition of @topic its spool, and the sequence it goes on with. Lock held,
 * in the same step that makes the partition count known, so no record of this producer
 * is queued before the recovered ones. */
static void spool_attach(struct tl_producer *producer, struct topic_state *topic)
{
	for (int32_t p = 0; p < topic->partition_count; p++) {
		struct partition_state *part = topic->parts[p];
		if (part->spool)
			continue;
		part->spool = tl_spool_part(producer->spool, topic->name, p);
		if (!part->spool)
			continue; /* sends fail with TL_ERR_NOMEM */
		part->next_sequence = tl_spool_part_next_sequence(part->spool);
		part->spool_resync = tl_spool_part_has_recovered(part->spool);
		part->spool_recovering = part->spool_resync;
	}
	for (int32_t i = 0; i < tl_spool_recovered_count(producer->spool); i++) {
		const char *name;
		int32_t partition;
		tl_spool_recovered(producer->spool, i, &name, &partition);
		if (strcmp(name, topic->name) != 0 || partition < topic->partition_count)
			continue;
		char msg[400];
		snprintf(
			msg, sizeof(msg),
			"spool.dir holds records of %s-%d, but the topic has %d partitions now; they cannot be resent",
			name, partition, topic->partition_count);
		tl_producer_set_fatal(producer, TL_ERR_FATAL, msg);
	}
}

/* Copies partition counts from the client's metadata. I/O thread, lock held. */
static void topics_sync_metadata(struct tl_producer *producer)
{
	uint64_t version = tl_client_metadata_version(producer->client);
	if (version == producer->metadata_seen)
		return;
	producer->metadata_seen = version;
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		const struct tl_client_topic *t = tl_client_topic(producer->client, topic->name);
		if (!t)
			continue;
		if (t->error != 0 && t->partition_count == 0) {
			topic->error = (tl_err)t->error;
			continue;
		}
		topic->error = TL_OK;
		(void)topic_resize(topic, t->partition_count);
		if (producer->spool)
			spool_attach(producer, topic);
	}
	pthread_cond_broadcast(&producer->cond);
}

/* ---- send ---- */

tl_err tl_producer_fatal(const struct tl_producer *producer)
{
	return producer->pid_state == PID_FAILED ? producer->fatal_err : TL_OK;
}

bool tl_producer_wait(struct tl_producer *producer, int64_t deadline_ns)
{
	int64_t now = tl_mono_ns();
	if (now >= deadline_ns)
		return false;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t wait_ns = TL_MIN(deadline_ns - now, 100 * 1000000LL);
	int64_t ns = ts.tv_nsec + wait_ns;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_cond_timedwait(&producer->cond, &producer->lock, &ts);
	return true;
}

/* Finds the topic and waits for its partition count. Lock held. */
static tl_err send_topic(struct tl_producer *producer, const char *name, int64_t deadline_ns,
			 struct topic_state **out)
{
	struct topic_state *topic = topic_find(producer, name);
	if (!topic) {
		topic = topic_add(producer, name);
		if (!topic)
			return TL_ERR_NOMEM;
		tl_client_wakeup(producer->client);
	}
	while (topic->partition_count == 0) {
		if (tl_producer_fatal(producer) != TL_OK)
			return tl_producer_fatal(producer);
		if (producer->max_block_ms == 0 || !tl_producer_wait(producer, deadline_ns))
			return topic->error != TL_OK ? topic->error : TL_ERR_TIMED_OUT;
	}
	*out = topic;
	return TL_OK;
}

static int32_t send_partition(struct topic_state *topic, const struct tl_producer_record *record)
{
	if (record->partition != TL_PRODUCER_PARTITION_ANY)
		return record->partition;
	if (record->key)
		return tl_producer_partition_for_key(record->key, record->key_len,
						     topic->partition_count);
	return topic->sticky;
}

#define RECORD_HEADERS_MAX 64 /* headers per record copied on the stack */

/* Appends @record to @part's open batch. Lock held. */
static tl_err send_append(struct tl_producer *producer, struct topic_state *topic,
			  struct partition_state *part, const struct tl_producer_record *record,
			  int64_t timestamp_ms, size_t size, struct sync_wait *sync,
			  int64_t spool_index, int32_t sequence)
{
	struct tl_record_header headers[RECORD_HEADERS_MAX];
	for (int32_t i = 0; i < record->header_count; i++) {
		const struct tl_producer_header *h = &record->headers[i];
		headers[i].key = tl_str_of(h->key);
		headers[i].value.ptr = h->value;
		headers[i].value.len = h->value ? h->value_len : -1;
	}
	struct batch *batch = part->open;
	if (batch && tl_records_builder_bytes(&batch->builder) + size > producer->batch_size) {
		part_close_open(topic, part);
		tl_client_wakeup(producer->client);
		batch = NULL;
	}
	bool created = false;
	if (!batch) {
		batch = batch_create(producer, part);
		if (!batch)
			return TL_ERR_NOMEM;
		part->open = batch;
		created = true;
	}
	if (batch->record_count == batch->record_cap) {
		int32_t cap = batch->record_cap ? batch->record_cap * 2 : 16;
		struct pending_record *r = realloc(batch->records, (size_t)cap * sizeof(*r));
		if (!r)
			return TL_ERR_NOMEM;
		batch->records = r;
		batch->record_cap = cap;
	}
	struct tl_bytes key = {record->key, record->key ? record->key_len : -1};
	struct tl_bytes value = {record->value, record->value ? record->value_len : -1};
	tl_err err = tl_records_builder_append(&batch->builder, timestamp_ms, key, value, headers,
					       record->header_count);
	if (err != TL_OK)
		return err;
	if (batch->record_count == 0)
		batch->base_sequence = sequence;
	struct pending_record *rec = &batch->records[batch->record_count++];
	rec->spool_index = spool_index;
	rec->opaque = record->opaque;
	rec->sync = sync;
	rec->timestamp_ms = timestamp_ms;
	batch->bytes += size;
	producer->buffered_bytes += size;
	producer->outstanding++;
	if (tl_records_builder_bytes(&batch->builder) >= producer->batch_size) {
		part_close_open(topic, part);
		tl_client_wakeup(producer->client);
	} else if (created) {
		tl_client_wakeup(producer->client); /* the I/O thread learns the linger deadline */
	}
	return TL_OK;
}

static tl_err send_check(const struct tl_producer_record *record)
{
	if (!record || !record->topic || !record->topic[0])
		return TL_ERR_INVALID;
	if ((record->key && record->key_len < 0) || (record->value && record->value_len < 0))
		return TL_ERR_INVALID;
	if (record->header_count < 0 || record->header_count > RECORD_HEADERS_MAX ||
	    (record->header_count > 0 && !record->headers))
		return TL_ERR_INVALID;
	for (int32_t i = 0; i < record->header_count; i++)
		if (!record->headers[i].key ||
		    (record->headers[i].value && record->headers[i].value_len < 0))
			return TL_ERR_INVALID;
	return TL_OK;
}

/* Why the calling thread's last send failed, for tl_producer_last_error(). */
static __thread char send_error[512];

static tl_err send_fail(tl_err err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static tl_err send_fail(tl_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(send_error, sizeof(send_error), fmt, ap);
	va_end(ap);
	return err;
}

/* A spooled record carries its producer id: wait for one. Lock held. */
static tl_err send_wait_producer_id(struct tl_producer *producer, int64_t deadline_ns)
{
	while (producer->pid_state != PID_READY) {
		if (tl_producer_fatal(producer) != TL_OK)
			return send_fail(producer->fatal_err, "%s", producer->fatal_msg);
		if (producer->max_block_ms == 0 || !tl_producer_wait(producer, deadline_ns))
			return send_fail(
				TL_ERR_TIMED_OUT,
				"no producer id from the broker within max.block.ms=%lld (spool.dir needs one before it writes a record); check bootstrap.servers",
				(long long)producer->max_block_ms);
	}
	return TL_OK;
}

/* Writes @record to the partition's spool with the next sequence (spool invariant 1).
 * Lock held: records of a partition reach the disk in sequence order. */
static tl_err send_spool(struct tl_producer *producer, struct partition_state *part,
			 const struct tl_producer_record *record, int64_t timestamp_ms,
			 int64_t *index_out, int32_t *sequence_out)
{
	if (!part->spool)
		return send_fail(TL_ERR_NOMEM, "out of memory attaching the partition's spool");
	struct tl_record_header headers[RECORD_HEADERS_MAX];
	for (int32_t i = 0; i < record->header_count; i++) {
		headers[i].key = tl_str_of(record->headers[i].key);
		headers[i].value.ptr = record->headers[i].value;
		headers[i].value.len = record->headers[i].value ? record->headers[i].value_len : -1;
	}
	struct tl_bytes key = {record->key, record->key ? record->key_len : -1};
	struct tl_bytes value = {record->value, record->value ? record->value_len : -1};
	int32_t sequence = part->next_sequence;
	tl_err err = tl_spool_append(producer->spool, part->spool, producer->producer_id,
				     producer->producer_epoch, sequence, timestamp_ms, key, value,
				     headers, record->header_count, index_out);
	if (err != TL_OK)
		return send_fail(err, "the record was not sent: writing it to the spool failed: %s",
				 tl_spool_last_error(producer->spool));
	*sequence_out = sequence;
	return TL_OK;
}

tl_err tl_producer_fail_call(tl_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(send_error, sizeof(send_error), fmt, ap);
	va_end(ap);
	return err;
}

void tl_producer_clear_call_error(void)
{
	send_error[0] = '\0';
}

static tl_err send_locked(struct tl_producer *producer, const struct tl_producer_record *record,
			  struct sync_wait *sync)
{
	send_error[0] = '\0';
	tl_err err = send_check(record);
	if (err != TL_OK)
		return send_fail(
			err,
			"bad record: it needs a topic, key/value lengths >= 0 when set, and at most %d headers with non-NULL keys",
			RECORD_HEADERS_MAX);
	int64_t deadline_ns = tl_mono_ns() + producer->max_block_ms * 1000000;
	if (producer->stop)
		return send_fail(TL_ERR_CLOSED, "the producer is being destroyed");
	err = tl_producer_fatal(producer);
	if (err != TL_OK)
		return send_fail(err, "%s", producer->fatal_msg);
	if (producer->txn.state != TXN_NONE) {
		err = tl_producer_txn_send_check(producer);
		if (err != TL_OK)
			return err;
	}
	struct topic_state *topic;
	err = send_topic(producer, record->topic, deadline_ns, &topic);
	if (err == TL_ERR_TIMED_OUT)
		return send_fail(
			err,
			"no metadata for topic %s within max.block.ms=%lld; check bootstrap.servers and that the topic exists (or the broker auto-creates it)",
			record->topic, (long long)producer->max_block_ms);
	if (err != TL_OK)
		return send_fail(err, "topic %s: %s", record->topic, tl_producer_detail_for(err));
	int32_t index = send_partition(topic, record);
	if (index < 0 || index >= topic->partition_count)
		return send_fail(TL_ERR_UNKNOWN_TOPIC_OR_PARTITION,
				 "topic %s has %d partitions; partition %d does not exist",
				 record->topic, topic->partition_count, index);
	struct partition_state *part = topic->parts[index];
	int64_t timestamp_ms = record->timestamp_ms ? record->timestamp_ms : tl_wall_ms();
	if (producer->spool) {
		err = send_wait_producer_id(producer, deadline_ns);
		if (err != TL_OK)
			return err;
	}

	struct tl_record_header headers[RECORD_HEADERS_MAX];
	for (int32_t i = 0; i < record->header_count; i++) {
		headers[i].key = tl_str_of(record->headers[i].key);
		headers[i].value.ptr = record->headers[i].value;
		headers[i].value.len = record->headers[i].value ? record->headers[i].value_len : -1;
	}
	struct tl_bytes key = {record->key, record->key ? record->key_len : -1};
	struct tl_bytes value = {record->value, record->value ? record->value_len : -1};
	/* Worst-case deltas: the record may become the first of a new batch or not. */
	size_t size = tl_records_record_size(INT32_MAX, INT32_MAX, key, value, headers,
					     record->header_count);
	if (size + TL_BATCH_HEADER_BYTES + 256 > producer->max_request_size ||
	    size > producer->buffer_memory)
		return send_fail(
			TL_ERR_MESSAGE_TOO_LARGE,
			"the record takes %zu bytes, more than max.request.size (%zu) or buffer.memory (%zu) allow; raise them or send a smaller record",
			size, producer->max_request_size, producer->buffer_memory);
	while (producer->buffered_bytes + size > producer->buffer_memory) {
		if (producer->max_block_ms == 0)
			return send_fail(
				TL_ERR_LIMIT,
				"buffer.memory (%zu bytes) is full and max.block.ms=0; poll, flush, or raise buffer.memory",
				producer->buffer_memory);
		if (!tl_producer_wait(producer, deadline_ns))
			return send_fail(
				TL_ERR_TIMED_OUT,
				"buffer.memory (%zu bytes) stayed full for max.block.ms=%lld; the broker is slow or unreachable, or raise buffer.memory",
				producer->buffer_memory, (long long)producer->max_block_ms);
		if (producer->stop)
			return send_fail(TL_ERR_CLOSED, "the producer is being destroyed");
	}
	int64_t spool_index = -1;
	int32_t sequence = -1;
	if (producer->spool) {
		err = send_spool(producer, part, record, timestamp_ms, &spool_index, &sequence);
		if (err != TL_OK)
			return err;
	}
	err = send_append(producer, topic, part, record, timestamp_ms, size, sync, spool_index,
			  sequence);
	if (err != TL_OK && producer->spool) {
		/* On disk but not queued: the sequences after it would have a gap. */
		tl_producer_set_fatal(
			producer, TL_ERR_FATAL,
			"out of memory queueing a spooled record; it is resent by the next producer on spool.dir");
		return send_fail(TL_ERR_FATAL, "%s", producer->fatal_msg);
	}
	if (err != TL_OK)
		return send_fail(err, "appending the record failed: %s", tl_err_message(err));
	if (producer->spool)
		part->next_sequence = (int32_t)(((int64_t)sequence + 1) % 2147483648LL);
	return TL_OK;
}

TL_EXPORT tl_err tl_producer_send(struct tl_producer *producer,
				  const struct tl_producer_record *record)
{
	pthread_mutex_lock(&producer->lock);
	tl_err err = send_locked(producer, record, NULL);
	pthread_mutex_unlock(&producer->lock);
	return err;
}

TL_EXPORT tl_err tl_producer_send_sync(struct tl_producer *producer,
				       const struct tl_producer_record *record,
				       struct tl_producer_delivery *delivery_out)
{
	struct sync_wait sync;
	memset(&sync, 0, sizeof(sync));
	pthread_mutex_lock(&producer->lock);
	tl_err err = send_locked(producer, record, &sync);
	if (err == TL_OK) {
		/* Don't wait out linger.ms: nobody else may ever fill this batch. */
		struct topic_state *topic = topic_find(producer, record->topic);
		for (int32_t i = 0; topic && i < topic->partition_count; i++)
			if (topic->parts[i]->open)
				part_close_open(topic, topic->parts[i]);
		tl_client_wakeup(producer->client);
		while (!sync.done)
			pthread_cond_wait(&producer->cond, &producer->lock);
		err = sync.delivery.err;
	}
	pthread_mutex_unlock(&producer->lock);
	if (delivery_out) {
		*delivery_out = sync.delivery;
		delivery_out->err = err;
		delivery_out->topic = NULL;
	}
	return err;
}

/* ---- delivery reports ---- */

TL_EXPORT int tl_producer_poll(struct tl_producer *producer, int timeout_ms)
{
	int64_t deadline_ns = tl_mono_ns() + (int64_t)timeout_ms * 1000000;
	pthread_mutex_lock(&producer->lock);
	while (!producer->done_head && timeout_ms > 0 && tl_producer_wait(producer, deadline_ns))
		;
	struct batch *done = producer->done_head;
	producer->done_head = producer->done_tail = NULL;
	uint64_t v;
	ssize_t r = read(producer->event_fd, &v, sizeof(v));
	TL_UNUSED(r);
	pthread_mutex_unlock(&producer->lock);

	int ran = 0;
	int64_t reported = 0;
	while (done) {
		struct batch *batch = done;
		done = batch->next;
		for (int32_t i = 0; i < batch->record_count; i++) {
			struct pending_record *rec = &batch->records[i];
			if (rec->sync)
				continue;
			reported++;
			if (!producer->cb)
				continue;
			struct tl_producer_delivery d;
			d.err = batch->err;
			d.topic = batch->part->topic->name;
			d.partition = batch->part->index;
			d.offset = batch->err == TL_OK && batch->base_offset >= 0
					   ? batch->base_offset + i
					   : -1;
			d.timestamp_ms = batch->log_append_time_ms >= 0 ? batch->log_append_time_ms
									: rec->timestamp_ms;
			d.opaque = rec->opaque;
			d.detail = batch->detail;
			producer->cb(&d, producer->cb_opaque);
			ran++;
		}
		batch_free(producer, batch);
	}
	if (reported) {
		pthread_mutex_lock(&producer->lock);
		producer->outstanding -= reported;
		pthread_cond_broadcast(&producer->cond);
		pthread_mutex_unlock(&producer->lock);
	}
	return ran;
}

TL_EXPORT tl_err tl_producer_flush(struct tl_producer *producer, int timeout_ms)
{
	int64_t deadline_ns = tl_mono_ns() + (int64_t)timeout_ms * 1000000;
	pthread_mutex_lock(&producer->lock);
	producer->flushing++;
	pthread_mutex_unlock(&producer->lock);
	tl_client_wakeup(producer->client);
	tl_err err = TL_OK;
	for (;;) {
		(void)tl_producer_poll(producer, 10);
		pthread_mutex_lock(&producer->lock);
		/* Recovered spool records count from the start, before they are queued. */
		bool empty = producer->outstanding == 0 &&
			     (producer->spool_unsettled == 0 || producer->pid_state == PID_FAILED);
		pthread_mutex_unlock(&producer->lock);
		if (empty)
			break;
		if (tl_mono_ns() >= deadline_ns) {
			err = TL_ERR_TIMED_OUT;
			break;
		}
	}
	pthread_mutex_lock(&producer->lock);
	producer->flushing--;
	pthread_mutex_unlock(&producer->lock);
	return err;
}

TL_EXPORT int tl_producer_event_fd(const struct tl_producer *producer)
{
	return producer->event_fd;
}

TL_EXPORT int64_t tl_producer_outstanding(struct tl_producer *producer)
{
	pthread_mutex_lock(&producer->lock);
	int64_t n = producer->outstanding;
	pthread_mutex_unlock(&producer->lock);
	return n;
}

TL_EXPORT const char *tl_producer_last_error(struct tl_producer *producer)
{
	return send_error[0] ? send_error : producer->fatal_msg;
}

/* ---- I/O thread: producer id ---- */

void tl_producer_set_fatal(struct tl_producer *producer, tl_err err, const char *msg)
{
	if (producer->pid_state == PID_FAILED)
		return; /* the first cause stays */
	producer->pid_state = PID_FAILED;
	producer->fatal_err = err;
	snprintf(producer->fatal_msg, sizeof(producer->fatal_msg), "%s (%s)", msg,
		 tl_err_name(err));
	pthread_cond_broadcast(&producer->cond);
	tl_client_wakeup(producer->client);
}

/* The cause @err is named in the message; callers see TL_ERR_FATAL. */
static void pid_fail(struct tl_producer *producer, tl_err err, const char *msg)
{
	char text[400];
	snprintf(text, sizeof(text), "%s (%s)", msg, tl_err_name(err));
	tl_producer_set_fatal(producer, TL_ERR_FATAL, text);
}

/* Lock held. Fails the batches of list @head..@tail that may be stored under the
 * producer id being given up: numbered anew they would be stored again (Java's producer
 * does not retry a batch of an earlier producer id either). */
static void fail_maybe_stored(struct tl_producer *producer, struct batch **head,
			      struct batch **tail)
{
	struct batch **link = head, *prev = NULL;
	while (*link) {
		struct batch *b = *link;
		if (!b->maybe_stored) {
			prev = b;
			link = &b->next;
			continue;
		}
		*link = b->next;
		if (*tail == b)
			*tail = prev;
		b->next = NULL;
		tl_producer_batch_complete(
			producer, b, b->maybe_err,
			"not sent again: an earlier try may be stored, and the producer id it was numbered under was given up when another batch failed (a retry could store it twice)");
	}
}

void tl_producer_pid_adopt(struct tl_producer *producer, int64_t producer_id, int16_t epoch)
{
	producer->producer_id = producer_id;
	producer->producer_epoch = epoch;
	producer->pid_state = PID_READY;
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++) {
			struct partition_state *part = topic->parts[p];
			part->next_sequence =
				part->spool ? tl_spool_part_next_sequence(part->spool) : 0;
			/* New ids come only once nothing is in flight (pid_maybe_request). */
			TL_ASSERT_DEBUG(part->in_flight_count == 0);
			if (!part->spool) {
				fail_maybe_stored(producer, &part->head, &part->tail);
				fail_maybe_stored(producer, &part->retry_head, &part->retry_tail);
			}
			for (struct batch *b = part->head; b; b = b->next)
				b->sequenced = false; /* renumbered at its next send */
		}
	}
}

static void init_pid_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct tl_producer *producer = arg;
	TL_UNUSED(version);
	int16_t error_code = 0;
	int64_t producer_id = -1;
	int16_t epoch = -1;
	if (err == TL_OK) {
		(void)tl_cursor_i32(body); /* throttle_time_ms */
		error_code = tl_cursor_i16(body);
		producer_id = tl_cursor_i64(body);
		epoch = tl_cursor_i16(body);
		if (body->failed)
			err = TL_ERR_CORRUPT_MESSAGE;
		else
			err = (tl_err)error_code;
	}
	pthread_mutex_lock(&producer->lock);
	if (producer->pid_state != PID_REQUESTING) {
		/* Not the answer asked for (the producer failed, or moved on): an id adopted
		 * now would renumber batches in flight under the id before it. */
		pthread_mutex_unlock(&producer->lock);
		return;
	}
	if (err == TL_OK && producer->spool &&
	    tl_spool_set_producer(producer->spool, producer_id, epoch) != TL_OK) {
		char msg[400];
		snprintf(msg, sizeof(msg), "spool.dir: %s", tl_spool_last_error(producer->spool));
		tl_producer_set_fatal(producer, TL_ERR_FATAL, msg);
	} else if (err == TL_OK) {
		tl_producer_pid_adopt(producer, producer_id, epoch);
	} else if (tl_err_is_retriable(err) || err == TL_ERR_NETWORK_EXCEPTION ||
		   err == TL_ERR_REQUEST_TIMED_OUT || err == TL_ERR_CORRUPT_MESSAGE) {
		producer->pid_state = PID_UNKNOWN;
		producer->pid_retry_at_ns = tl_mono_ns() + producer->retry_backoff_ns;
	} else {
		pid_fail(
			producer, err,
			"InitProducerId failed, so the idempotent producer cannot start; check the broker's log or set enable.idempotence=false");
	}
	pthread_mutex_unlock(&producer->lock);
}

/* Lock held. */
static void pid_maybe_request(struct tl_producer *producer)
{
	if (producer->pid_state != PID_UNKNOWN || tl_mono_ns() < producer->pid_retry_at_ns)
		return;
	if (producer->batches_in_flight > 0)
		return; /* new sequences restart at 0 only once every answer is in */
	if (producer->txn.state != TXN_NONE)
		return; /* txn.c asks the transaction coordinator */
	if (!producer->idempotence) {
		tl_producer_pid_adopt(producer, TL_RECORDS_NO_PRODUCER_ID, -1);
		return;
	}
	int32_t node = tl_client_any_ready_node(producer->client);
	if (node == TL_CLIENT_NODE_ANY)
		return;
	int16_t version =
		tl_client_api_version(producer->client, node, TL_CLIENT_API_INIT_PRODUCER_ID);
	if (version < 0) {
		if (producer->idempotence_explicit) {
			pid_fail(
				producer, TL_ERR_UNSUPPORTED_VERSION,
				"enable.idempotence=true but the broker does not support InitProducerId (API 22); upgrade the broker or set enable.idempotence=false");
			return;
		}
		producer->idempotence = false; /* documented fallback */
		tl_producer_pid_adopt(producer, TL_RECORDS_NO_PRODUCER_ID, -1);
		return;
	}
	struct tl_buf body;
	tl_buf_init(&body);
	tl_buf_string(&body, tl_str_of(NULL), false); /* transactional_id: none */
	tl_buf_i32(&body, 60000);                     /* transaction_timeout_ms, unused */
	/* Before the send: a connection that fails in it answers (init_pid_done) at once. */
	producer->pid_state = PID_REQUESTING;
	if (tl_client_send(producer->client, node, TL_CLIENT_API_INIT_PRODUCER_ID, version, &body,
			   true, init_pid_done, producer) != TL_OK)
		producer->pid_state = PID_UNKNOWN;
	tl_buf_deinit(&body);
}

/* ---- I/O thread: produce ---- */

#define PRODUCE_NODES_MAX 64 /* leaders one I/O round sends to */

/* One Produce request in flight: a single allocation with its batches and answers. */
struct produce_req {
	struct tl_producer *producer;
	int32_t count;
	int32_t next_answer;     /* where produce_find() looks first */
	bool *answered;          /* [count], after batches */
	struct batch *batches[]; /* [count] */
};

static struct produce_req *produce_req_create(struct tl_producer *producer, struct batch **batches,
					      int32_t count)
{
	size_t n = (size_t)count;
	struct produce_req *req =
		calloc(1, sizeof(*req) + n * sizeof(req->batches[0]) + n * sizeof(bool));
	if (!req)
		return NULL;
	req->producer = producer;
	req->count = count;
	memcpy(req->batches, batches, n * sizeof(req->batches[0]));
	req->answered = (bool *)(req->batches + n);
	return req;
}

const char *tl_producer_detail_for(tl_err err)
{
	switch (err) {
	case TL_ERR_TIMED_OUT:
		return "not delivered within delivery.timeout.ms; check that the broker is reachable and the topic has a leader, or raise delivery.timeout.ms";
	case TL_ERR_MESSAGE_TOO_LARGE:
	case TL_ERR_RECORD_LIST_TOO_LARGE:
		return "the broker refused the batch as too large; lower batch.size / max.request.size or raise the topic's max.message.bytes";
	case TL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
		return "the topic or partition does not exist; create it first or enable auto.create.topics.enable on the broker";
	case TL_ERR_CLOSED:
		return "the producer was destroyed before delivery; call tl_producer_flush() first";
	case TL_ERR_UNSUPPORTED_COMPRESSION_TYPE:
		return "the broker does not accept this compression; set compression.type=none";
	case TL_ERR_FATAL:
		return "the producer hit a fatal error; see tl_producer_last_error()";
	default:
		return tl_err_message(err);
	}
}

bool tl_producer_is_retriable(tl_err err)
{
	return tl_err_is_retriable(err) || err == TL_ERR_NETWORK_EXCEPTION ||
	       err == TL_ERR_REQUEST_TIMED_OUT;
}

/* Lock held. Fails answered @batch, which may or may not be stored (a timeout, retries
 * used up): the batches behind it wait for the window to drain, and since its sequence
 * numbers are now unknown to us, the producer id starts over (a transaction bumps its
 * epoch after the abort, txn.c). */
static void batch_give_up(struct tl_producer *producer, struct batch *batch, tl_err err,
			  const char *detail)
{
	struct partition_state *part = batch->part;
	part_failed(part, batch);
	if (batch->sequenced && producer->idempotence && !part->spool &&
	    producer->txn.state == TXN_NONE && producer->pid_state == PID_READY)
		producer->pid_state = PID_UNKNOWN;
	tl_producer_batch_complete(producer, batch, err, detail);
}

/* Lock held. Puts @batch back for another try, or fails it when out of retries. */
static void batch_retry(struct tl_producer *producer, struct batch *batch, tl_err err)
{
	/* A spooled batch is retried for as long as it takes: dropping it would leave a gap
	 * in the sequences already on disk after it. */
	if (producer->stop || (++batch->attempts > producer->retries && !batch->part->spool)) {
		batch_give_up(producer, batch, err, tl_producer_detail_for(err));
		return;
	}
	/* Exponential, as Java's: retry.backoff.ms doubling up to retry.backoff.max.ms. */
	int64_t backoff = producer->retry_backoff_ns;
	for (int32_t i = 1; i < batch->attempts && backoff < producer->retry_backoff_max_ns; i++)
		backoff *= 2;
	batch->retry_at_ns = tl_mono_ns() + TL_MIN(backoff, TL_MAX(producer->retry_backoff_max_ns,
								   producer->retry_backoff_ns));
	part_retry_later(batch->part, batch);
}

/* Lock held. A spooled batch the broker did not take and will not take as it is. */
static void spool_refused(struct tl_producer *producer, struct batch *batch, tl_err err)
{
	struct partition_state *part = batch->part;
	char msg[400];
	if (err == TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER) {
		/* After a crash the dead producer's last batch may land late: ask the broker
		 * where our sequences stand, then go on from there. */
		part_push_head(part, batch);
		part->spool_resync = true;
		return;
	}
	if (err == TL_ERR_UNKNOWN_PRODUCER_ID)
		snprintf(
			msg, sizeof(msg),
			"the broker forgot producer id %lld on %s-%d (idle longer than producer.id.expiration.ms); the spooled records stay in spool.dir, which of them it stored cannot be known",
			(long long)producer->producer_id, part->topic->name, part->index);
	else
		snprintf(
			msg, sizeof(msg),
			"the broker refused spooled records of %s-%d for good (%s); they stay in spool.dir and are resent by the next producer on it: fix the cause (e.g. the topic's max.message.bytes) or remove that partition's spool directory",
			part->topic->name, part->index, tl_err_name(err));
	tl_producer_set_fatal(producer, TL_ERR_FATAL, msg);
	tl_producer_batch_complete(producer, batch, TL_ERR_FATAL, producer->fatal_msg);
}

/* Lock held. One partition's answer, @batch already out of the window. */
static void produce_settle(struct tl_producer *producer, struct batch *batch, tl_err err,
			   int64_t base_offset, int64_t log_append_time)
{
	struct partition_state *part = batch->part;
	bool transactional = producer->txn.state != TXN_NONE;
	if (transactional && tl_producer_txn_is_fenced_err(err))
		tl_producer_txn_fence(producer, err, "Produce");
	if (transactional && producer->pid_state == PID_FAILED) {
		/* Fenced or failed: the coordinator aborts this transaction, whatever the
		 * partition answered. */
		tl_producer_batch_complete(producer, batch, producer->fatal_err,
					   producer->fatal_msg);
		return;
	}
	if (part->spool && err != TL_OK && err != TL_ERR_DUPLICATE_SEQUENCE_NUMBER &&
	    !tl_producer_is_retriable(err) && !producer->stop) {
		spool_refused(producer, batch, err);
		return;
	}
	/* A duplicate means an earlier try was stored: Java counts it as delivered. */
	if (err == TL_OK || err == TL_ERR_DUPLICATE_SEQUENCE_NUMBER) {
		batch->base_offset = base_offset;
		batch->log_append_time_ms = log_append_time;
		tl_producer_batch_complete(producer, batch, TL_OK, NULL);
		return;
	}
	bool consequence =
		producer->idempotence && !part->spool && part->draining &&
		batch->send_order > part->failed_order &&
		(err == TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER || err == TL_ERR_UNKNOWN_PRODUCER_ID);
	if (transactional && producer->txn.state == TXN_ABORTING) {
		/* Nothing of an aborted transaction is sent again (txn.c bumps the epoch). */
		bool again = consequence || tl_producer_is_retriable(err);
		part_failed(part, batch);
		tl_producer_batch_complete(producer, batch,
					   again ? TL_ERR_OPERATION_NOT_ATTEMPTED : err,
					   again ? "not sent: the transaction was aborted"
						 : tl_producer_detail_for(err));
		return;
	}
	if (consequence) {
		/* An earlier batch of the window was not stored, so neither was this one. */
		part_retry_later(part, batch);
		return;
	}
	if (err == TL_ERR_NOT_LEADER_OR_FOLLOWER || err == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION ||
	    err == TL_ERR_LEADER_NOT_AVAILABLE || err == TL_ERR_NETWORK_EXCEPTION ||
	    err == TL_ERR_REQUEST_TIMED_OUT)
		tl_client_metadata_request(producer->client);
	if (err == TL_ERR_UNKNOWN_PRODUCER_ID && producer->idempotence && !transactional) {
		/* The broker forgot us (retention); start over with a new id (once). */
		part_retry_later(part, batch);
		if (producer->pid_state == PID_READY)
			producer->pid_state = PID_UNKNOWN;
		return;
	}
	if (tl_producer_is_retriable(err)) {
		/* Refused before any append (the rest may come after one: a lost answer, a
		 * leader that lost its place while waiting for the ISR). */
		if (err != TL_ERR_NOT_ENOUGH_REPLICAS && err != TL_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
			batch->maybe_stored = true;
			batch->maybe_err = err;
		}
		batch_retry(producer, batch, err);
		return;
	}
	if (err == TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER && producer->idempotence && !part->spool) {
		/* Not behind a failed batch: the broker's sequences and ours disagree, so
		 * renumbering from ours cannot help; a new producer id (epoch) starts over. */
		batch_give_up(producer, batch, err, tl_producer_detail_for(err));
		return;
	}
	/* Not stored, for good: the later batches of the window take over its sequence
	 * numbers (invariant 2). */
	part_failed(part, batch);
	if (batch->sequenced && producer->idempotence && !part->spool &&
	    (!part->resequence || batch->send_order < part->resequence_order)) {
		part->resequence = true;
		part->resequence_order = batch->send_order;
		part->resequence_from =
			(int32_t)tl_be32_get(batch->wire.data + TL_BATCH_OFF_BASE_SEQUENCE);
	}
	tl_producer_batch_complete(producer, batch, err, tl_producer_detail_for(err));
}

/* Lock held. One partition's answer to @batch. */
static void produce_partition_result(struct tl_producer *producer, struct batch *batch, tl_err err,
				     int64_t base_offset, int64_t log_append_time)
{
	struct partition_state *part = batch->part;
	part_answered(producer, part, batch);
	produce_settle(producer, batch, err, base_offset, log_append_time);
	part_window_check(part);
}

/* The batch an answer is for. Brokers answer in request order, so the search starts
 * after the last one found: linear in the request, not quadratic. */
static struct batch *produce_find(struct produce_req *req, struct tl_str topic, int32_t index)
{
	for (int32_t n = 0; n < req->count; n++) {
		int32_t i = (req->next_answer + n) % req->count;
		struct batch *b = req->batches[i];
		if (!req->answered[i] && b->part->index == index &&
		    tl_str_eq_c(topic, b->part->topic->name)) {
			req->answered[i] = true;
			req->next_answer = i + 1;
			return b;
		}
	}
	return NULL;
}

static void produce_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct produce_req *req = arg;
	struct tl_producer *producer = req->producer;
	pthread_mutex_lock(&producer->lock);
	if (err == TL_OK && body) {
		int32_t topics = tl_cursor_array_len(body, false, false, 100000);
		for (int32_t t = 0; t < topics && !body->failed; t++) {
			struct tl_str name = tl_cursor_string(body, false, false);
			int32_t parts = tl_cursor_array_len(body, false, false, 100000);
			for (int32_t p = 0; p < parts && !body->failed; p++) {
				int32_t index = tl_cursor_i32(body);
				int16_t code = tl_cursor_i16(body);
				int64_t base_offset = tl_cursor_i64(body);
				int64_t append_time = tl_cursor_i64(body); /* v2+ */
				if (version >= 5)
					(void)tl_cursor_i64(body); /* log_start_offset */
				if (version >= 8) {
					int32_t n = tl_cursor_array_len(body, false, false, 100000);
					for (int32_t e = 0; e < n && !body->failed; e++) {
						(void)tl_cursor_i32(body);
						(void)tl_cursor_string(body, false, true);
					}
					(void)tl_cursor_string(body, false, true);
				}
				if (body->failed)
					break;
				struct batch *batch = produce_find(req, name, index);
				if (batch)
					produce_partition_result(producer, batch, (tl_err)code,
								 base_offset, append_time);
			}
		}
	}
	for (int32_t i = 0; i < req->count; i++)
		if (!req->answered[i])
			produce_partition_result(producer, req->batches[i],
						 err != TL_OK ? err : TL_ERR_NETWORK_EXCEPTION, -1,
						 -1);
	pthread_cond_broadcast(&producer->cond);
	pthread_mutex_unlock(&producer->lock);
	free(req);
}

/* Makes the wire bytes of @batch at its first send, or renumbers them for a send after
 * one of invariant 2's exceptions. I/O thread, lock held. */
static tl_err batch_prepare(struct tl_producer *producer, struct batch *batch)
{
	if (batch->sequenced)
		return TL_OK;
	struct partition_state *part = batch->part;
	int32_t base_sequence = TL_RECORDS_NO_SEQUENCE;
	if (part->spool) {
		base_sequence = batch->base_sequence; /* fixed when it was spooled */
	} else if (producer->producer_id >= 0) {
		base_sequence = part->next_sequence;
		int64_t next = (int64_t)base_sequence + batch->record_count;
		part->next_sequence = (int32_t)(next % 2147483648LL);
	}
	batch->sequenced = true;
	if (batch->wire.len > 0) {
		/* Made for an earlier send and numbered anew since (a new producer id, or a
		 * failed batch ahead): only the header's producer fields and CRC change. */
		TL_ASSERT_DEBUG(((tl_be16_get(batch->wire.data + TL_BATCH_OFF_ATTRIBUTES) &
				  TL_BATCH_ATTR_TRANSACTIONAL) != 0) ==
				(producer->txn.state != TXN_NONE));
		tl_records_batch_set_producer(batch->wire.data, batch->wire.len,
					      producer->producer_id, producer->producer_epoch,
					      base_sequence);
		return TL_OK;
	}
	tl_records_builder_set_producer(&batch->builder, producer->producer_id,
					producer->producer_epoch, base_sequence,
					producer->txn.state != TXN_NONE);
	/* An uncompressed batch becomes the wire bytes where it was built (no copy); a
	 * compressed one goes into a spare buffer. */
	if (producer->compression != TL_COMPRESSION_NONE)
		spare_take(producer, &batch->wire);
	tl_err err = tl_records_builder_finish_move(&batch->builder, producer->cctx, &batch->wire);
	if (err != TL_OK) {
		tl_buf_reset(&batch->wire);
		batch->sequenced = false;
		if (!part->spool && producer->producer_id >= 0)
			part->next_sequence = base_sequence; /* never sent: no gap */
	}
	return err;
}

static void produce_encode(struct tl_producer *producer, struct tl_buf *body,
			   struct batch **batches, int32_t count)
{
	tl_buf_string(body, tl_str_of(producer->txn.id), false); /* transactional_id (v3+) */
	tl_buf_i16(body, producer->acks);
	tl_buf_i32(body, producer->request_timeout_ms);
	/* Kafka keys the topics array by name. io_round() collects partitions topic by
	 * topic, so each topic's batches are one run of @batches. */
	int32_t topics = 0;
	for (int32_t i = 0; i < count; i++)
		topics += i == 0 || batches[i]->part->topic != batches[i - 1]->part->topic;
	tl_buf_array_len(body, topics, false);
	for (int32_t i = 0; i < count;) {
		struct topic_state *topic = batches[i]->part->topic;
		int32_t end = i;
		while (end < count && batches[end]->part->topic == topic)
			end++;
		for (int32_t k = 0; k < i; k++) /* no topic in two runs (debug builds) */
			TL_ASSERT_DEBUG(batches[k]->part->topic != topic);
		tl_buf_string(body, tl_str_of(topic->name), false);
		tl_buf_array_len(body, end - i, false);
		for (; i < end; i++) {
			tl_buf_i32(body, batches[i]->part->index);
			struct tl_bytes records = {batches[i]->wire.data,
						   (int32_t)batches[i]->wire.len};
			tl_buf_bytes(body, records, false);
		}
	}
}

/* Sends @count batches (all led by @node) in one Produce request. Lock held. */
static void produce_send(struct tl_producer *producer, int32_t node, struct batch **batches,
			 int32_t count)
{
	int16_t version = tl_client_api_version(producer->client, node, TL_CLIENT_API_PRODUCE);
	struct produce_req *req = produce_req_create(producer, batches, count);
	tl_err err = TL_ERR_NOMEM;
	if (!req)
		goto out_fail;
	if (version < 0) {
		err = TL_ERR_UNSUPPORTED_VERSION;
		goto out_fail;
	}
	/* Encoded straight into the connection's output: the batches are copied once. */
	struct tl_buf *body =
		tl_client_frame_begin(producer->client, node, TL_CLIENT_API_PRODUCE, version);
	err = TL_ERR_NETWORK_EXCEPTION;
	if (!body)
		goto out_fail;
	produce_encode(producer, body, batches, count);
	bool acks_zero = producer->acks == 0;
	err = tl_client_frame_end(producer->client, node, !acks_zero,
				  acks_zero ? NULL : produce_done, req);
	if (err != TL_OK)
		goto out_fail;
	if (acks_zero) {
		/* No response comes: written counts as delivered, offset unknown. The lock
		 * is held here, so complete inline rather than through produce_done. */
		for (int32_t i = 0; i < count; i++)
			produce_partition_result(producer, batches[i], TL_OK, -1, -1);
		free(req);
	}
	return;

out_fail:
	free(req);
	for (int32_t i = 0; i < count; i++) {
		struct partition_state *part = batches[i]->part;
		part_answered(producer, part, batches[i]);
		if (err == TL_ERR_UNSUPPORTED_VERSION) {
			part_failed(part, batches[i]);
			tl_producer_batch_complete(
				producer, batches[i], err,
				"the broker supports no Produce version libtally speaks (v3-v8)");
		} else {
			batch_retry(producer, batches[i], err); /* never sent: try again */
		}
		part_window_check(part);
	}
}

/* ---- I/O thread: spool ---- */

/* Builds batches of recovered records in the order tl_spool_replay() hands them out. */
struct replay_ctx {
	struct tl_producer *producer;
	struct partition_state *part;
	struct batch *head;
	struct batch *tail;
};

static tl_err replay_record(void *arg, const struct tl_spool_record *rec)
{
	struct replay_ctx *ctx = arg;
	struct tl_producer *producer = ctx->producer;
	size_t size = tl_records_record_size(INT32_MAX, INT32_MAX, rec->key, rec->value,
					     rec->headers, rec->header_count);
	struct batch *batch = ctx->tail;
	if (!batch || tl_records_builder_bytes(&batch->builder) + size > producer->batch_size) {
		batch = batch_create(producer, ctx->part);
		if (!batch)
			return TL_ERR_NOMEM;
		batch->recovered = true;
		batch->base_sequence = rec->sequence;
		if (ctx->tail)
			ctx->tail->next = batch;
		else
			ctx->head = batch;
		ctx->tail = batch;
	}
	TL_ASSERT(tl_spool_seq_diff(rec->sequence, batch->base_sequence) == batch->record_count);
	if (batch->record_count == batch->record_cap) {
		int32_t cap = batch->record_cap ? batch->record_cap * 2 : 16;
		struct pending_record *r = realloc(batch->records, (size_t)cap * sizeof(*r));
		if (!r)
			return TL_ERR_NOMEM;
		batch->records = r;
		batch->record_cap = cap;
	}
	tl_err err = tl_records_builder_append(&batch->builder, rec->timestamp_ms, rec->key,
					       rec->value, rec->headers, rec->header_count);
	if (err != TL_OK)
		return err;
	struct pending_record *pr = &batch->records[batch->record_count++];
	memset(pr, 0, sizeof(*pr));
	pr->timestamp_ms = rec->timestamp_ms;
	pr->spool_index = rec->index;
	batch->bytes += size;
	producer->buffered_bytes += size;
	producer->outstanding++;
	return TL_OK;
}

/* Takes the queued recovered batches back (without reports): the spool hands their
 * records out again. Lock held. */
static void spool_drop_recovered(struct tl_producer *producer, struct partition_state *part)
{
	while (part->head && part->head->recovered) {
		struct batch *batch = part_pop(part);
		TL_ASSERT(producer->buffered_bytes >= batch->bytes);
		producer->buffered_bytes -= batch->bytes;
		producer->outstanding -= batch->record_count;
		batch_free(producer, batch);
	}
}

/* The head batch of this producer's own records after a resync: it must start right
 * after the broker's last sequence, or be stored already. Lock held. */
static bool spool_check_live_head(struct tl_producer *producer, struct partition_state *part,
				  bool have_last, int32_t last_sequence)
{
	while (part->head && part->head->base_sequence >= 0) {
		struct batch *batch = part->head;
		int64_t first = have_last ? tl_spool_seq_diff(batch->base_sequence, last_sequence)
					  : (batch->base_sequence == 0 ? 1 : -1);
		if (first == 1)
			return true;
		int64_t last = first + batch->record_count - 1;
		if (!have_last || first > 1 || last > 0)
			return false; /* a gap, or a batch half stored */
		/* Stored by an earlier try whose answer was lost. */
		batch = part_pop(part);
		tl_producer_batch_complete(producer, batch, TL_OK, NULL);
	}
	return true;
}

/* The broker's last sequence of our producer id on @part is known: settle the spool's
 * recovered records and queue the unstored ones first. Lock held. */
static void spool_resync(struct tl_producer *producer, struct partition_state *part, bool have_last,
			 int32_t last_sequence)
{
	spool_drop_recovered(producer, part);
	struct replay_ctx ctx = {producer, part, NULL, NULL};
	tl_err err = tl_spool_replay(producer->spool, part->spool, have_last, last_sequence,
				     replay_record, &ctx);
	const char *why = tl_spool_last_error(producer->spool);
	if (err == TL_OK && !ctx.head &&
	    !spool_check_live_head(producer, part, have_last, last_sequence)) {
		err = TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
		why = "the broker's last sequence does not fit the next batch queued";
	}
	if (err != TL_OK) {
		char msg[400];
		snprintf(msg, sizeof(msg), "spool.dir: resending to %s-%d failed: %s",
			 part->topic->name, part->index, why);
		while (ctx.head) {
			struct batch *b = ctx.head;
			ctx.head = b->next;
			producer->buffered_bytes -= b->bytes;
			producer->outstanding -= b->record_count;
			batch_free(producer, b);
		}
		tl_producer_set_fatal(producer, TL_ERR_FATAL, msg);
		return;
	}
	if (ctx.head) {
		ctx.tail->next = part->head;
		part->head = ctx.head;
		if (!part->tail)
			part->tail = ctx.tail;
	}
	part->spool_resync = false;
	if (part->spool_recovering) {
		part->spool_recovering = false;
		producer->spool_unsettled--;
	}
}

struct describe_req {
	struct tl_producer *producer;
	struct partition_state *part;
};

static void describe_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct describe_req *req = arg;
	struct tl_producer *producer = req->producer;
	struct partition_state *part = req->part;
	struct tl_arena arena;
	tl_arena_init(&arena, 8u << 20);
	struct tl_describe_producers_response resp;
	tl_describe_producers_response_defaults(&resp);
	if (err == TL_OK &&
	    tl_describe_producers_response_decode(body, version, &arena, &resp) != TL_OK)
		err = TL_ERR_CORRUPT_MESSAGE;
	const struct tl_describe_producers_response_partition_response *pr = NULL;
	for (int32_t t = 0; err == TL_OK && t < resp.topics_count; t++)
		for (int32_t i = 0; i < resp.topics[t].partitions_count; i++)
			if (resp.topics[t].partitions[i].partition_index == part->index &&
			    tl_str_eq_c(resp.topics[t].name, part->topic->name))
				pr = &resp.topics[t].partitions[i];
	if (err == TL_OK)
		err = pr ? (tl_err)pr->error_code : TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	pthread_mutex_lock(&producer->lock);
	part->spool_describing = false;
	if (err == TL_OK && !producer->stop && producer->pid_state == PID_READY) {
		bool have_last = false;
		int32_t last_sequence = -1;
		for (int32_t k = 0; k < pr->active_producers_count; k++)
			if (pr->active_producers[k].producer_id == producer->producer_id &&
			    pr->active_producers[k].last_sequence >= 0) {
				have_last = true;
				last_sequence = pr->active_producers[k].last_sequence;
			}
		spool_resync(producer, part, have_last, last_sequence);
	} else if (err != TL_OK && !producer->stop) {
		tl_client_metadata_request(producer->client); /* asked again next round */
	}
	pthread_cond_broadcast(&producer->cond);
	pthread_mutex_unlock(&producer->lock);
	tl_arena_deinit(&arena);
	free(req);
}

/* Asks @part's leader for our producer's state there (DescribeProducers). Lock held. */
static void describe_send(struct tl_producer *producer, struct partition_state *part)
{
	int32_t leader = tl_client_leader(producer->client, part->topic->name, part->index);
	if (leader < 0) {
		tl_client_metadata_request(producer->client);
		return;
	}
	if (!tl_client_node_ready(producer->client, leader))
		return;
	int16_t version =
		tl_client_api_version(producer->client, leader, TL_CLIENT_API_DESCRIBE_PRODUCERS);
	if (version < 0) {
		tl_producer_set_fatal(
			producer, TL_ERR_UNSUPPORTED_VERSION,
			"spool.dir needs DescribeProducers (Kafka 3.0+, tallyd) to resend spooled records without duplicates");
		return;
	}
	struct describe_req *req = calloc(1, sizeof(*req));
	if (!req)
		return;
	req->producer = producer;
	req->part = part;
	int32_t index = part->index;
	struct tl_describe_producers_request_topic_request topic = {tl_str_of(part->topic->name), 1,
								    &index};
	struct tl_describe_producers_request msg = {1, &topic};
	struct tl_buf body;
	tl_buf_init(&body);
	tl_describe_producers_request_encode(&body, version, &msg);
	if (tl_client_send(producer->client, leader, TL_CLIENT_API_DESCRIBE_PRODUCERS, version,
			   &body, true, describe_done, req) == TL_OK)
		part->spool_describing = true;
	else
		free(req);
	tl_buf_deinit(&body);
}

/* Resyncs partitions that need it: recovered ones, and any whose batch the broker
 * found out of order. Lock held. */
static void spool_io(struct tl_producer *producer)
{
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++) {
			struct partition_state *part = topic->parts[p];
			if (part->spool_resync && !part->spool_describing &&
			    part->in_flight_count == 0)
				describe_send(producer, part);
		}
	}
}

struct node_batches {
	int32_t node;
	int32_t count;
	size_t bytes;
	struct batch **batches;
};

/* Lock held. Closes lingered batches, expires old ones, and picks sendable batches into
 * @nodes. Returns the nanoseconds until something becomes due. */
static int64_t io_collect_partition(struct tl_producer *producer, struct partition_state *part,
				    struct node_batches *nodes, int32_t *node_count, int64_t now)
{
	struct topic_state *topic = part->topic;
	int64_t due = INT64_MAX;
	int32_t window = part->spool ? 1 : producer->max_in_flight;
	bool can_send = !part->draining && part->in_flight_count < window;
	if (part->open) {
		int64_t close_at = part->open->created_ns + producer->linger_ns;
		if (producer->flushing || producer->stop || producer->txn.state == TXN_COMMITTING ||
		    (close_at <= now && can_send && !part->head))
			part_close_open(topic, part);
		else if (close_at > now)
			due = close_at - now;
		/* else lingered with the window full: it grows until an answer frees a slot
		 * (the answer wakes this loop) */
	}
	/* Once a numbered batch expires, the numbered ones behind it go too: they may be
	 * stored (sent in its window), and the new producer id would store them again. */
	bool unsure = false;
	while (part->head && part->in_flight_count == 0 && !part->spool &&
	       (now - part->head->created_ns > producer->delivery_timeout_ns ||
		(unsure && part->head->sequenced))) {
		struct batch *batch = part_pop(part);
		if (batch->sequenced && producer->idempotence) {
			unsure = true;
			/* Its sequence may be stored: a new id, unless one is already asked
			 * for (a second InitProducerId could be answered after the first id
			 * numbered batches in flight). */
			if (producer->txn.state == TXN_NONE) {
				if (producer->pid_state == PID_READY)
					producer->pid_state = PID_UNKNOWN;
			} else {
				producer->txn.bump_epoch = true; /* the same, after the abort */
			}
		}
		tl_producer_batch_complete(producer, batch, TL_ERR_TIMED_OUT,
					   tl_producer_detail_for(TL_ERR_TIMED_OUT));
	}
	if (!part->head || !can_send || producer->pid_state != PID_READY)
		return due;
	if (producer->txn.state != TXN_NONE && !tl_producer_txn_part_ready(producer, part))
		return due; /* AddPartitionsToTxn first; its answer wakes the loop */
	if (part->spool_resync)
		return due; /* DescribeProducers first (spool_io) */
	if (part->head->retry_at_ns > now)
		return TL_MIN(due, part->head->retry_at_ns - now);
	int32_t leader = tl_client_leader(producer->client, topic->name, part->index);
	if (leader < 0) {
		tl_client_metadata_request(producer->client);
		return TL_MIN(due, 100 * 1000000LL);
	}
	if (part->in_flight_count > 0 && leader != part->in_flight_node)
		return due; /* the leader moved: answers from the old one first (invariant 1) */
	if (!tl_client_node_ready(producer->client, leader))
		return TL_MIN(due, 50 * 1000000LL);
	if (tl_client_unsent(producer->client, leader) >= producer->max_request_size)
		return TL_MIN(due, 10 * 1000000LL); /* the socket is behind (acks=0) */
	int32_t n;
	for (n = 0; n < *node_count; n++)
		if (nodes[n].node == leader)
			break;
	if (n == *node_count) {
		if (n == PRODUCE_NODES_MAX ||
		    tl_client_in_flight(producer->client, leader) >= producer->max_in_flight)
			return TL_MIN(due, 10 * 1000000LL);
		nodes[n].node = leader;
		nodes[n].count = 0;
		nodes[n].bytes = 0;
		(*node_count)++;
	}
	struct batch *batch = part->head;
	if (batch_prepare(producer, batch) != TL_OK) {
		batch = part_pop(part);
		tl_producer_batch_complete(producer, batch, TL_ERR_NOMEM,
					   "out of memory compressing a batch");
		return 0;
	}
	if (nodes[n].count > 0 && nodes[n].bytes + batch->wire.len > producer->max_request_size)
		return TL_MIN(due, 1000000LL);
	batch = part_pop(part);
	part_send(producer, part, batch, leader);
	nodes[n].batches[nodes[n].count++] = batch;
	nodes[n].bytes += batch->wire.len;
	return due;
}

void tl_producer_fail_unsent(struct tl_producer *producer, tl_err err, const char *detail)
{
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++) {
			part_close_open(topic, topic->parts[p]);
			struct batch *b;
			while ((b = part_pop(topic->parts[p])))
				tl_producer_batch_complete(producer, b, err, detail);
		}
	}
}

bool tl_producer_is_idle(const struct tl_producer *producer)
{
	for (int32_t i = 0; i < producer->topic_count; i++) {
		const struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++) {
			const struct partition_state *part = topic->parts[p];
			if (part->open || part->head || part->in_flight_count > 0 ||
			    part->retry_head)
				return false;
		}
	}
	return true;
}

/* One round of the I/O loop's producer work. Returns the poll timeout in ms. */
static int io_round(struct tl_producer *producer, struct node_batches *nodes,
		    int32_t slots_per_node)
{
	pthread_mutex_lock(&producer->lock);
	topics_sync_metadata(producer);
	for (int32_t i = 0; i < producer->topic_count; i++)
		if (producer->topics[i]->partition_count == 0)
			(void)tl_client_want_topic(producer->client, producer->topics[i]->name);
	pid_maybe_request(producer);
	int64_t due = 100 * 1000000LL;
	if (producer->txn.state != TXN_NONE)
		due = TL_MIN(due, tl_producer_txn_io(producer));
	if (producer->spool && producer->pid_state == PID_READY)
		spool_io(producer);
	if (producer->pid_state == PID_FAILED)
		tl_producer_fail_unsent(producer, producer->fatal_err, producer->fatal_msg);
	/* One Produce request per leader a pass; passes go on while they send something,
	 * so each partition fills its window in one round. */
	bool sent = false;
	for (int pass = 0; pass < 64; pass++) {
		int32_t node_count = 0;
		int64_t now = tl_mono_ns();
		for (int32_t i = 0; i < producer->topic_count; i++) {
			struct topic_state *topic = producer->topics[i];
			for (int32_t p = 0; p < topic->partition_count; p++) {
				bool full = false;
				for (int32_t n = 0; n < node_count; n++)
					full |= nodes[n].count == slots_per_node;
				if (full)
					break;
				int64_t d = io_collect_partition(producer, topic->parts[p], nodes,
								 &node_count, now);
				due = TL_MIN(due, d);
			}
		}
		for (int32_t n = 0; n < node_count; n++)
			if (nodes[n].count > 0)
				produce_send(producer, nodes[n].node, nodes[n].batches,
					     nodes[n].count);
		if (node_count == 0)
			break;
		sent = true;
	}
	pthread_mutex_unlock(&producer->lock);
	return (int)TL_MAX(due / 1000000, sent ? 0 : 1);
}

static void *io_main(void *arg)
{
	struct tl_producer *producer = arg;
	const int32_t slots = 4096; /* partitions per Produce request */
	struct node_batches nodes[PRODUCE_NODES_MAX];
	for (int32_t n = 0; n < PRODUCE_NODES_MAX; n++)
		nodes[n].batches = NULL;
	bool ok = true;
	for (int32_t n = 0; n < PRODUCE_NODES_MAX && ok; n++) {
		nodes[n].batches = calloc((size_t)slots, sizeof(struct batch *));
		ok = nodes[n].batches != NULL;
	}
	if (!ok) {
		pthread_mutex_lock(&producer->lock);
		pid_fail(producer, TL_ERR_NOMEM, "out of memory starting the I/O thread");
		pthread_mutex_unlock(&producer->lock);
	}
	for (;;) {
		pthread_mutex_lock(&producer->lock);
		bool stop = producer->stop;
		pthread_mutex_unlock(&producer->lock);
		if (stop)
			break;
		int timeout_ms = ok ? io_round(producer, nodes, slots) : 100;
		tl_client_poll(producer->client, timeout_ms);
	}
	for (int32_t n = 0; n < PRODUCE_NODES_MAX; n++)
		free(nodes[n].batches);
	return NULL;
}

/* ---- create and destroy ---- */

static int16_t acks_of(const char *s)
{
	if (strcmp(s, "0") == 0)
		return 0;
	if (strcmp(s, "1") == 0)
		return 1;
	return -1;
}

static tl_err producer_settings(struct tl_producer *producer, const struct tl_producer_conf *pc,
				char *errstr, size_t errstr_size)
{
	const struct tl_conf *conf = &pc->conf;
	producer->acks = acks_of(tl_conf_str(conf, "acks"));
	producer->idempotence_explicit = tl_conf_is_set(conf, "enable.idempotence");
	producer->idempotence = tl_conf_bool(conf, "enable.idempotence");
	if (producer->acks != -1 && producer->idempotence) {
		if (producer->idempotence_explicit) {
			tl_conf_errstr(
				errstr, errstr_size,
				"enable.idempotence=true requires acks=all; set acks=all or enable.idempotence=false");
			return TL_ERR_INVALID;
		}
		producer->idempotence = false; /* Java does the same for an implicit default */
	}
	producer->batch_size = (size_t)tl_conf_int(conf, "batch.size");
	producer->linger_ns = tl_conf_int(conf, "linger.ms") * 1000000;
	producer->buffer_memory = (size_t)tl_conf_int(conf, "buffer.memory");
	producer->max_block_ms = tl_conf_int(conf, "max.block.ms");
	producer->max_request_size = (size_t)tl_conf_int(conf, "max.request.size");
	producer->compression = compression_of(tl_conf_str(conf, "compression.type"));
	producer->retries = tl_conf_int(conf, "retries");
	producer->retry_backoff_ns = tl_conf_int(conf, "retry.backoff.ms") * 1000000;
	producer->retry_backoff_max_ns = tl_conf_int(conf, "retry.backoff.max.ms") * 1000000;
	producer->delivery_timeout_ns = tl_conf_int(conf, "delivery.timeout.ms") * 1000000;
	producer->request_timeout_ms = (int32_t)tl_conf_int(conf, "request.timeout.ms");
	producer->max_in_flight =
		(int32_t)tl_conf_int(conf, "max.in.flight.requests.per.connection");
	producer->cb = pc->cb;
	producer->cb_opaque = pc->cb_opaque;
	if (!tl_conf_str(conf, "bootstrap.servers")) {
		tl_conf_errstr(errstr, errstr_size,
			       "bootstrap.servers is not set; set it to host:port of a broker");
		return TL_ERR_INVALID;
	}
	tl_err err = tl_producer_txn_settings(producer, conf, errstr, errstr_size);
	if (err != TL_OK || !tl_conf_str(conf, "spool.dir"))
		return err;
	if (producer->txn.id) {
		tl_conf_errstr(
			errstr, errstr_size,
			"spool.dir cannot be combined with transactional.id; leave one unset");
		return TL_ERR_INVALID;
	}
	if ((producer->idempotence_explicit && !producer->idempotence) || producer->acks != -1) {
		tl_conf_errstr(
			errstr, errstr_size,
			"spool.dir needs the idempotent producer (it resends with the same producer id and sequences): set acks=all and leave enable.idempotence=true");
		return TL_ERR_INVALID;
	}
	producer->idempotence = true;
	producer->idempotence_explicit = true; /* no quiet fallback without InitProducerId */
	return TL_OK;
}

/* Opens spool.dir: its producer id (if any) is ours, its topics are wanted. Before
 * the I/O thread starts. */
static tl_err producer_open_spool(struct tl_producer *producer, const struct tl_conf *conf,
				  char *errstr, size_t errstr_size)
{
	struct tl_spool_conf sc = {
		.dir = tl_conf_str(conf, "spool.dir"),
		.segment_bytes = tl_conf_int(conf, "spool.segment.bytes"),
		.fsync = tl_conf_bool(conf, "spool.fsync"),
	};
	tl_err err = tl_spool_open(&sc, &producer->spool, errstr, errstr_size);
	if (err != TL_OK)
		return err;
	int64_t producer_id;
	int16_t epoch;
	if (tl_spool_producer(producer->spool, &producer_id, &epoch))
		tl_producer_pid_adopt(producer, producer_id, epoch);
	producer->spool_unsettled = tl_spool_recovered_count(producer->spool);
	for (int32_t i = 0; i < tl_spool_recovered_count(producer->spool); i++) {
		const char *name;
		int32_t partition;
		tl_spool_recovered(producer->spool, i, &name, &partition);
		if (!topic_find(producer, name) && !topic_add(producer, name)) {
			tl_conf_errstr(errstr, errstr_size, "out of memory");
			return TL_ERR_NOMEM;
		}
	}
	return TL_OK;
}

static void topics_free(struct tl_producer *producer)
{
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++)
			free(topic->parts[p]);
		free(topic->parts);
		free(topic->name);
		free(topic);
	}
	free(producer->topics);
	producer->topics = NULL;
	producer->topic_count = 0;
}

TL_EXPORT tl_err tl_producer_create(const struct tl_producer_conf *pc, struct tl_producer **out,
				    char *errstr, size_t errstr_size)
{
	tl_conf_errstr(errstr, errstr_size, "%s", "");
	struct tl_producer *producer = calloc(1, sizeof(*producer));
	if (!producer)
		return TL_ERR_NOMEM;
	tl_err err = producer_settings(producer, pc, errstr, errstr_size);
	if (err != TL_OK)
		goto out_free;
	struct tl_client_conf cc = {
		.conf = &pc->conf,
		.bootstrap_servers = tl_conf_str(&pc->conf, "bootstrap.servers"),
		.client_id = tl_conf_str(&pc->conf, "client.id"),
		TL_CLIENT_CONF_SECURITY(&pc->conf),
		.request_timeout_ms = producer->request_timeout_ms,
		.reconnect_backoff_ms = (int32_t)tl_conf_int(&pc->conf, "reconnect.backoff.ms"),
		.metadata_max_age_ms = (int32_t)tl_conf_int(&pc->conf, "metadata.max.age.ms"),
		.allow_auto_create_topics = tl_conf_bool(&pc->conf, "allow.auto.create.topics"),
	};
	err = tl_client_create(&cc, &producer->client, errstr, errstr_size);
	if (err != TL_OK)
		goto out_free;
	err = TL_ERR_IO;
	producer->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (producer->event_fd == -1) {
		tl_conf_errstr(errstr, errstr_size, "eventfd: %s", strerror(errno));
		goto out_client;
	}
	err = TL_ERR_NOMEM;
	producer->cctx = ZSTD_createCCtx();
	if (!producer->cctx)
		goto out_eventfd;
	pthread_mutex_init(&producer->lock, NULL);
	pthread_mutex_init(&producer->spare_lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&producer->cond, &attr);
	pthread_condattr_destroy(&attr);
	producer->pid_state = PID_UNKNOWN;
	producer->producer_id = TL_RECORDS_NO_PRODUCER_ID;
	producer->producer_epoch = -1;
	if (tl_conf_str(&pc->conf, "spool.dir")) {
		err = producer_open_spool(producer, &pc->conf, errstr, errstr_size);
		if (err != TL_OK)
			goto out_sync;
	}
	int rc = pthread_create(&producer->thread, NULL, io_main, producer);
	if (rc != 0) {
		tl_conf_errstr(errstr, errstr_size, "pthread_create: %s", strerror(rc));
		err = TL_ERR_IO;
		goto out_sync;
	}
	*out = producer;
	return TL_OK;

out_sync:
	tl_spool_close(producer->spool);
	topics_free(producer);
	pthread_cond_destroy(&producer->cond);
	pthread_mutex_destroy(&producer->lock);
	spares_free(producer);
	pthread_mutex_destroy(&producer->spare_lock);
	ZSTD_freeCCtx(producer->cctx);
out_eventfd:
	close(producer->event_fd);
out_client:
	tl_client_destroy(producer->client);
out_free:
	tl_producer_txn_deinit(producer);
	free(producer);
	return err;
}

TL_EXPORT tl_err tl_producer_spool_scan(struct tl_producer *producer, tl_producer_spool_fn fn,
					void *arg)
{
	tl_producer_clear_call_error();
	if (!producer->spool || !fn)
		return tl_producer_fail_call(
			TL_ERR_INVALID, "tl_producer_spool_scan needs spool.dir and a callback");
	tl_err err = tl_spool_scan(producer->spool, &producer->lock, fn, arg);
	if (err != TL_OK)
		return tl_producer_fail_call(err, "spool.dir: %s",
					     tl_spool_last_error(producer->spool));
	return TL_OK;
}

TL_EXPORT void tl_producer_destroy(struct tl_producer *producer)
{
	if (!producer)
		return;
	pthread_mutex_lock(&producer->lock);
	producer->stop = true;
	pthread_cond_broadcast(&producer->cond);
	pthread_mutex_unlock(&producer->lock);
	tl_client_wakeup(producer->client);
	pthread_join(producer->thread, NULL);
	/* The I/O thread is gone: in-flight requests fail here, on this thread. */
	tl_client_destroy(producer->client);
	pthread_mutex_lock(&producer->lock);
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++) {
			struct partition_state *part = topic->parts[p];
			part_close_open(topic, part);
			struct batch *b;
			while ((b = part_pop(part)))
				tl_producer_batch_complete(producer, b, TL_ERR_CLOSED,
							   tl_producer_detail_for(TL_ERR_CLOSED));
		}
	}
	pthread_mutex_unlock(&producer->lock);
	(void)tl_producer_poll(producer, 0);
	topics_free(producer);
	tl_spool_close(producer->spool);
	tl_producer_txn_deinit(producer);
	ZSTD_freeCCtx(producer->cctx);
	close(producer->event_fd);
	pthread_cond_destroy(&producer->cond);
	pthread_mutex_destroy(&producer->lock);
	spares_free(producer);
	pthread_mutex_destroy(&producer->spare_lock);
	free(producer);
}
