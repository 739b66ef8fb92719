/* produce.c - the Produce API.
 * Idempotence: batches with a producer id are checked against the partition's producer
 * state inside tl_log_append, where offsets are assigned, so two batches of one
 * producer never race. A retried duplicate is not appended; it is answered with the
 * original batch's base offset once that batch is durable.
 * Per partition: every batch is checked (framing, magic 2, CRC, size limits) before any
 * is appended, so a partition takes all of a request's batches or none. Appended
 * batches stay in the request's frame (the log borrows them); acks=1/-1 are answered
 * only once the partition's fdatasync covering them completes: acknowledged means
 * durable. acks=0 gets no response, and an error then closes the connection, as Kafka
 * does. On one node acks=1 and acks=-1 wait for the same thing.
 * Cluster mode: only the leader takes writes (NOT_LEADER_OR_FOLLOWER elsewhere), and a
 * replicated log's waiters fire when the high watermark passes the batch, i.e. once it
 * is fdatasync'ed on every ISR member. Decision: acks=1 waits for that too, not only
 * for the leader: "acknowledged means durable" must hold across a failover, and an
 * acks=1 write on the leader alone is lost when the leader dies before replicating
 * it. acks=-1 also refuses to start below min.insync.replicas (NOT_ENOUGH_REPLICAS)
 * and reports NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank meanwhile.
 * Timeout (Kafka's DelayedProduce): a request waiting for the ISR of a replicated
 * partition is answered at its timeout_ms at the latest; the partitions still waiting
 * get REQUEST_TIMED_OUT. Their batches stay in the leader's log and may still be
 * committed, as in Kafka, and the log keeps borrowing them from the request's frame, so
 * the request outlives its answer (TL_REQUEST_SENT) until its last waiter fires. The
 * timers are a list on the broker sorted by deadline, linked through the request's
 * state in its arena: no allocation. One node does not time out: there the wait is the
 * local fdatasync, which Kafka does not wait for at all.
 * Invariants:
 * (1) A request is on broker->produce_timers exactly while its timer is armed: it has
 *     waits left and has not timed out.
 * (2) Once timed out, no waiter changes the answer; the last one frees the request if
 *     the answer already left (SENT) or the connection closed. */
#include <string.h>

#include <zstd.h>

#include "broker/broker.h"
#include "broker/txn.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"
#include "protocol/batch.h"
#include "protocol/records.h"
#include "protocol/validate.h"

struct produce_wait {
	struct tl_log_waiter waiter;
	struct tl_request *req;
	struct tl_partition *partition;
	struct tl_produce_response_partition_produce_response *result;
	struct produce_wait *next; /* the request's other waits */
	bool pending;              /* its waiter has not fired yet */
};

struct tl_produce_state {
	struct tl_produce_request msg;
	struct tl_produce_response resp;
	bool any_error;
	bool waits_remote;          /* a wait is on a replicated partition's ISR (RemoteTimeMs) */
	bool replicated;            /* some wait is for a replicated partition's ISR */
	struct produce_wait *waits; /* one per partition appended to */
	struct tl_request *req;
	int64_t deadline_ms; /* monotonic: answer by then */
	bool timer_armed;    /* on broker->produce_timers */
	bool timed_out;      /* answered at the deadline (invariant 2) */
	struct tl_produce_state *timer_prev;
	struct tl_produce_state *timer_next;
};

static void produce_respond(struct tl_request *req)
{
	struct tl_produce_state *st = req->state_data;
	if (req->conn->closed) {
		req->state = TL_REQUEST_SILENT;
		tl_request_finished(req);
		return;
	}
	if (st->msg.acks == 0) {
		req->state = TL_REQUEST_SILENT;
		tl_request_finished(req);
		return;
	}
	struct tl_broker *broker = req->conn->broker;
	if (broker->config.test_fault_drop_produce_response > 0 &&
	    tl_broker_random(broker) < broker->config.test_fault_drop_produce_response) {
		/* Test fault: the batches are durable, the answer is lost. */
		tl_info("broker: test fault, dropping a produce response peer=%s", req->conn->peer);
		req->state = TL_REQUEST_SILENT;
		tl_conn_close(req->conn, "test fault: produce response dropped");
		return;
	}
	tl_response_begin(req);
	tl_produce_response_encode(&req->response, req->header.api_version, &st->resp);
	tl_response_end(req);
}

static bool st_acks_all(const struct tl_request *req)
{
	const struct tl_produce_state *st = req->state_data;
	return st->msg.acks == -1;
}

/* ---- timeout ---- */

static void timer_arm(struct tl_broker *broker, struct tl_produce_state *st)
{
	TL_ASSERT(!st->timer_armed);
	TL_ASSERT(!st->timed_out);
	/* Clients send one timeout_ms, so a new deadline is almost always the latest. */
	struct tl_produce_state *after = broker->produce_timers_tail;
	while (after && after->deadline_ms > st->deadline_ms)
		after = after->timer_prev;
	st->timer_prev = after;
	st->timer_next = after ? after->timer_next : broker->produce_timers;
	if (st->timer_next)
		st->timer_next->timer_prev = st;
	else
		broker->produce_timers_tail = st;
	if (after)
		after->timer_next = st;
	else
		broker->produce_timers = st;
	st->timer_armed = true;
}

static void timer_disarm(struct tl_broker *broker, struct tl_produce_state *st)
{
	if (!st->timer_armed)
		return;
	if (st->timer_prev)
		st->timer_prev->timer_next = st->timer_next;
	else
		broker->produce_timers = st->timer_next;
	if (st->timer_next)
		st->timer_next->timer_prev = st->timer_prev;
	else
		broker->produce_timers_tail = st->timer_prev;
	st->timer_prev = st->timer_next = NULL;
	st->timer_armed = false;
}

/* The deadline passed with waits left: answer now (invariant 2). */
static void produce_time_out(struct tl_produce_state *st)
{
	struct tl_request *req = st->req;
	TL_ASSERT(req->waits > 0);
	TL_ASSERT(req->state == TL_REQUEST_WORKING);
	st->timed_out = true;
	int32_t partitions = 0;
	for (struct produce_wait *wait = st->waits; wait; wait = wait->next) {
		if (!wait->pending)
			continue;
		wait->result->error_code = (int16_t)TL_ERR_REQUEST_TIMED_OUT;
		wait->result->base_offset = -1;
		wait->result->error_message =
			tl_str_of("the ISR did not replicate the batch within timeout_ms; it stays "
				  "in the leader's log and may still be committed");
		partitions++;
	}
	TL_ASSERT(partitions > 0);
	req->conn->broker->produce_timeouts++;
	tl_debug("broker: produce timed out waiting for the ISR partitions=%d timeout_ms=%d "
		 "peer=%s",
		 partitions, st->msg.timeout_ms, req->conn->peer);
	produce_respond(req);
}

void tl_produce_expire(struct tl_broker *broker, int64_t now_ms)
{
	while (broker->produce_timers && broker->produce_timers->deadline_ms <= now_ms) {
		struct tl_produce_state *st = broker->produce_timers;
		timer_disarm(broker, st);
		produce_time_out(st);
	}
}

int64_t tl_produce_next_deadline(const struct tl_broker *broker)
{
	return broker->produce_timers ? broker->produce_timers->deadline_ms : INT64_MAX;
}

/* ---- waiting for the log ---- */

static void produce_durable(struct tl_log_waiter *waiter, tl_err err)
{
	struct produce_wait *wait = (struct produce_wait *)waiter;
	struct tl_request *req = wait->req;
	struct tl_produce_state *st = req->state_data;
	TL_ASSERT(wait->pending);
	wait->pending = false;
	if (st->timed_out) {
		/* Invariant (2): answered already; only the request's lifetime is left. */
		TL_ASSERT(req->waits > 0);
		if (--req->waits == 0 && (req->conn->closed || req->state == TL_REQUEST_SENT))
			tl_request_free(req);
		return;
	}
	if (err != TL_OK) {
		wait->result->error_code = (int16_t)TL_ERR_KAFKA_STORAGE_ERROR;
		wait->result->base_offset = -1;
		wait->result->error_message = tl_str_of("the partition's log failed to write or "
							"sync; it is offline until the broker "
							"reopens it");
		if (err == TL_ERR_NOT_LEADER_OR_FOLLOWER) {
			/* Truncated by a new leader: never acknowledged, the client retries. */
			wait->result->error_code = (int16_t)err;
			wait->result->error_message =
				tl_str_of("leadership moved before the batch was replicated");
		}
	} else if (wait->partition->topic->cluster && st_acks_all(req) &&
		   !tl_replica_has_min_isr(wait->partition)) {
		/* Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND: stored, but the ISR shrank. */
		wait->result->error_code = (int16_t)TL_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
		wait->result->error_message =
			tl_str_of("the ISR shrank below min.insync.replicas after the append");
	}
	TL_ASSERT(req->waits > 0);
	if (--req->waits > 0)
		return;
	timer_disarm(req->conn->broker, st);
	produce_respond(req);
}

/* Kafka's ProduceRequest.hasTransactionalRecords: any batch with the transactional
 * attribute (only headers are read; the batches are validated later). */
static bool has_transactional_records(const struct tl_produce_request *msg)
{
	for (int32_t t = 0; t < msg->topic_data_count; t++) {
		const struct tl_produce_request_topic_produce_data *td = &msg->topic_data[t];
		for (int32_t i = 0; i < td->partition_data_count; i++) {
			const uint8_t *at = td->partition_data[i].records.ptr;
			int64_t left = td->partition_data[i].records.len;
			while (left >= TL_BATCH_OFF_ATTRIBUTES + 2) {
				if (at[TL_BATCH_OFF_MAGIC] == 2 &&
				    (tl_be16_get(at + TL_BATCH_OFF_ATTRIBUTES) &
				     TL_BATCH_ATTR_TRANSACTIONAL))
					return true;
				int64_t size = tl_batch_size(at, (size_t)left);
				if (size <= 0 || size > left)
					break;
				at += size;
				left -= size;
			}
		}
	}
	return false;
}

static void partition_error(struct tl_produce_state *st,
			    struct tl_produce_response_partition_produce_response *result,
			    tl_err err, const char *message)
{
	result->error_code = (int16_t)err;
	result->base_offset = -1;
	if (message)
		result->error_message = tl_str_of(message);
	st->any_error = true;
}

/* Checks every batch in @records; returns TL_OK or the error for the whole partition. */
static tl_err records_check(const struct tl_request *req, const struct tl_topic *topic,
			    struct tl_records records, const char **why)
{
	int16_t version = req->header.api_version;
	const uint8_t *p = records.ptr;
	int64_t left = records.len;
	int batches = 0;
	if (!p || left <= 0) {
		*why = "no records";
		return TL_ERR_INVALID_RECORD;
	}
	while (left > 0) {
		if (left < TL_BATCH_LOG_OVERHEAD + 5) {
			*why = "truncated batch";
			return TL_ERR_CORRUPT_MESSAGE;
		}
		if (p[TL_BATCH_OFF_MAGIC] != TL_BATCH_MAGIC) {
			*why = "only record batch format v2 (magic 2) is supported";
			return TL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
		}
		int64_t size = tl_batch_size(p, (size_t)left);
		if (size < 0 || size > left) {
			*why = "batch length exceeds the bytes sent";
			return TL_ERR_CORRUPT_MESSAGE;
		}
		if (size > topic->config.max_message_bytes) {
			*why = "batch larger than max.message.bytes";
			return TL_ERR_MESSAGE_TOO_LARGE;
		}
		struct tl_batch_header h;
		tl_err err = tl_batch_validate(p, (size_t)size, &h, why);
		if (err != TL_OK)
			return err;
			/* Every record, decompressed, as Kafka's LogValidator: a batch whose CRC is
			 * right but whose records lie is refused, and nothing of it is stored.
			 * (TL_NO_RECORD_VALIDATION: a build without, only to measure the cost.) */
#ifndef TL_NO_RECORD_VALIDATION
		struct tl_batch_scratch *scratch = &req->conn->broker->batch_scratch;
		err = tl_batch_validate_records(p, (size_t)size, &h,
						topic->config.log.cleanup_compact, scratch, why);
		if (err != TL_OK)
			return err;
		/* CreateTime: the header says what the records say, as Kafka's LogValidator
		 * sets it (the time index, ListOffsets by time and retention read it). A
		 * client's maxTimestamp or LogAppendTime bit is not trusted; a correct
		 * batch is not rewritten. The request owns its frame (see below). */
		if (!topic->config.log_append_time && h.records_count > 0 &&
		    (h.max_timestamp != scratch->max_timestamp ||
		     (h.attributes & TL_BATCH_ATTR_LOG_APPEND_TIME)))
			tl_batch_set_max_timestamp(req->frame + (p - req->frame), (size_t)size,
						   scratch->max_timestamp, false);
#endif
		/* Attribute bit 6 (a delete horizon, KIP-534) is the cleaner's to set: a
		 * client's would make its tombstones go at the first pass, or never. */
		if (h.attributes & TL_BATCH_ATTR_DELETE_HORIZON) {
			uint8_t *own = req->frame + (p - req->frame);
			h.attributes = (int16_t)(h.attributes & ~TL_BATCH_ATTR_DELETE_HORIZON);
			tl_be16_put(own + TL_BATCH_OFF_ATTRIBUTES, (uint16_t)h.attributes);
			tl_batch_crc_update(own, (size_t)size);
		}
		if (tl_batch_is_control(&h)) {
			*why = "clients may not write control batches";
			return TL_ERR_INVALID_RECORD;
		}
		if (tl_batch_is_transactional(&h) && h.producer_id < 0) {
			*why = "a transactional batch needs a producer id";
			return TL_ERR_INVALID_RECORD;
		}
		if (h.producer_id >= 0 && h.base_sequence < 0) {
			*why = "a batch with a producer id needs a base sequence";
			return TL_ERR_INVALID_RECORD;
		}
		if (h.producer_id >= 0 && batches > 0) {
			*why = "an idempotent producer sends one batch per partition";
			return TL_ERR_INVALID_RECORD;
		}
		if (tl_batch_compression(&h) == TL_COMPRESSION_ZSTD && version < 7) {
			*why = "zstd needs Produce v7 or later";
			return TL_ERR_UNSUPPORTED_COMPRESSION_TYPE;
		}
		batches++;
		p += size;
		left -= size;
	}
	if (version >= 3 && batches != 1) {
		*why = "Produce v3+ must carry exactly one record batch per partition";
		return TL_ERR_INVALID_RECORD;
	}
	return TL_OK;
}

static const char *append_error_message(tl_err err)
{
	switch (err) {
	case TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
		return "sequence gap: an earlier batch of this producer is missing";
	case TL_ERR_INVALID_PRODUCER_EPOCH:
		return "producer epoch is older than the partition's: fenced";
	case TL_ERR_UNKNOWN_PRODUCER_ID:
		return "producer id unknown to this partition (expired?) and sequence is not 0";
	case TL_ERR_KAFKA_STORAGE_ERROR:
		return "append failed: partition offline";
	default:
		return tl_err_message(err);
	}
}

/* A topic with compression.type other than "producer" stores its codec, as Kafka's
 * LogValidator does: a batch of another codec is decompressed and its records (bytes
 * unchanged: offsets deltas, timestamps, producer id and sequence are kept) encoded
 * again. The new batch lives in the request's arena, which outlives the append (the
 * request ends once the batch is durable). Returns TL_OK with *@data, *@size and @h
 * replaced, or untouched when nothing changes. */
static tl_err recompress(struct tl_request *req, const struct tl_topic *topic, uint8_t **data,
			 int64_t *size, struct tl_batch_header *h)
{
	int target = topic->config.compression_codec;
	enum tl_compression codec = tl_batch_compression(h);
	if (target < 0 || (enum tl_compression)target == codec)
		return TL_OK;
	struct tl_broker *broker = req->conn->broker;
	const uint8_t *records = *data + TL_BATCH_HEADER_BYTES;
	size_t records_len = (size_t)*size - TL_BATCH_HEADER_BYTES;
	/* Validation decompressed this very batch just before: its records are still in
	 * the scratch buffer. */
	const uint8_t *validated =
		codec == TL_COMPRESSION_NONE
			? NULL
			: tl_batch_scratch_records(&broker->batch_scratch, records, records_len,
						   &records_len);
	if (validated) {
		records = validated;
	} else if (codec != TL_COMPRESSION_NONE) {
		tl_err err = tl_batch_decompress(&broker->batch_scratch, codec, records,
						 records_len, &records_len);
		if (err != TL_OK)
			return err == TL_ERR_LIMIT ? TL_ERR_RECORD_LIST_TOO_LARGE
						   : TL_ERR_CORRUPT_MESSAGE;
		records = broker->batch_scratch.buf;
	}
	struct tl_buf *out = &broker->recompress_buf;
	out->len = 0;
	out->failed = false;
	tl_buf_put(out, *data, TL_BATCH_HEADER_BYTES);
	tl_err err = TL_OK;
	if (target == TL_COMPRESSION_NONE) {
		tl_buf_put(out, records, records_len);
	} else if (target == TL_COMPRESSION_ZSTD) {
		if (!broker->recompress_zstd && !(broker->recompress_zstd = ZSTD_createCCtx()))
			return TL_ERR_NOMEM;
		size_t n;
		err = tl_records_zstd_compress(broker->recompress_zstd, records, records_len, out,
					       &n);
	} else {
		err = tl_batch_compress((enum tl_compression)target, records, records_len, out);
	}
	if (err != TL_OK || out->failed)
		return TL_ERR_NOMEM;
	if ((int64_t)out->len > topic->config.max_message_bytes)
		return TL_ERR_MESSAGE_TOO_LARGE;
	uint8_t *batch = tl_arena_alloc(&req->arena, out->len);
	if (!batch)
		return TL_ERR_RECORD_LIST_TOO_LARGE;
	memcpy(batch, out->data, out->len);
	uint16_t attributes = tl_be16_get(batch + TL_BATCH_OFF_ATTRIBUTES);
	attributes = (uint16_t)((attributes & ~TL_BATCH_ATTR_COMPRESSION_MASK) | (uint16_t)target);
	tl_be16_put(batch + TL_BATCH_OFF_ATTRIBUTES, attributes);
	tl_be32_put(batch + TL_BATCH_OFF_LENGTH, (uint32_t)(out->len - TL_BATCH_LOG_OVERHEAD));
	tl_batch_crc_update(batch, out->len);
	*data = batch;
	*size = (int64_t)out->len;
	tl_batch_header_decode(batch, out->len, h);
	return TL_OK;
}

static void produce_partition(struct tl_request *req, struct tl_produce_state *st,
			      const struct tl_topic *topic, struct tl_partition *partition,
			      const struct tl_produce_request_partition_produce_data *data,
			      struct tl_produce_response_partition_produce_response *result)
{
	const char *why = NULL;
	struct tl_topic_metrics *metrics = &partition->topic->metrics;
	metrics->produce_requests++;
	tl_err err = records_check(req, topic, data->records, &why);
	if (err != TL_OK) {
		metrics->failed_produce_requests++;
		metrics->bytes_rejected += (uint64_t)TL_MAX(data->records.len, 0);
		tl_debug("broker: produce rejected topic=%s partition=%d err=%s why=\"%s\" peer=%s",
			 topic->name, partition->index, tl_err_name(err), why, req->conn->peer);
		partition_error(st, result, err, why);
		return;
	}
	if (!tl_log_is_writable(partition->log)) {
		metrics->failed_produce_requests++;
		partition_error(st, result, TL_ERR_KAFKA_STORAGE_ERROR,
				"the partition's log is offline after a write or sync failure");
		return;
	}
	struct tl_batch_header head;
	tl_batch_header_decode(data->records.ptr, (size_t)data->records.len, &head);
	if (tl_batch_is_transactional(&head)) {
		/* KIP-890: only for a transaction the coordinator added this partition to,
		 * so a late batch of a finished transaction cannot open a hanging one. */
		err = tl_txn_verify(req->conn->broker->txns, st->msg.transactional_id,
				    head.producer_id, head.producer_epoch, tl_str_of(topic->name),
				    partition->index);
		if (err != TL_OK) {
			metrics->failed_produce_requests++;
			partition_error(st, result, err,
					err == TL_ERR_INVALID_PRODUCER_EPOCH
						? "producer epoch is older than the transaction's: "
						  "fenced"
					: err == TL_ERR_INVALID_PRODUCER_ID_MAPPING
						? "the producer id is not the transactional.id's"
						: "no ongoing transaction added this partition "
						  "(AddPartitionsToTxn first)");
			return;
		}
	}
	/* The decoded records point into req->frame, which this request owns and may
	 * rewrite: recover a mutable pointer from the offset. */
	uint8_t *p = req->frame + (data->records.ptr - req->frame);
	int64_t left = data->records.len;
	int64_t now = tl_wall_ms();
	/* Every batch is made ready (recompressed, stamped) before any is appended: a
	 * partition takes all its batches or none, as Kafka validates a partition's
	 * records whole (several batches come only from Produce v0-2 clients). */
	int32_t count = 0;
	for (int64_t at = 0; at < left; at += tl_batch_size(p + at, (size_t)(left - at)))
		count++;
	struct ready_batch {
		uint8_t *data;
		int64_t size, wire_size;
		struct tl_batch_header h;
	} *ready = tl_arena_array(&req->arena, (size_t)count, sizeof(*ready));
	if (!ready) { /* the request's memory limit: millions of tiny batches */
		partition_error(st, result, TL_ERR_INVALID_RECORD,
				"too many record batches for one partition");
		return;
	}
	for (int32_t i = 0; i < count; i++) {
		struct ready_batch *rb = &ready[i];
		rb->wire_size = tl_batch_size(p, (size_t)left);
		tl_batch_header_decode(p, (size_t)rb->wire_size, &rb->h);
		rb->data = p;
		rb->size = rb->wire_size;
		err = recompress(req, topic, &rb->data, &rb->size, &rb->h);
		if (err != TL_OK) {
			partition_error(st, result, err,
					"cannot recompress the batch to the topic's "
					"compression.type");
			return;
		}
		if (topic->config.log_append_time) {
			tl_batch_set_max_timestamp(rb->data, (size_t)rb->size, now, true);
			rb->h.max_timestamp = now;
			rb->h.attributes |= TL_BATCH_ATTR_LOG_APPEND_TIME;
		}
		p += rb->wire_size;
		left -= rb->wire_size;
	}
	bool first = true;
	int64_t last_offset = -1;
	for (int32_t i = 0; i < count; i++) {
		uint8_t *batch = ready[i].data;
		int64_t batch_size = ready[i].size, size = ready[i].wire_size;
		struct tl_batch_header h = ready[i].h;
		struct tl_log_append_result appended;
		err = tl_log_append(partition->log, batch, (size_t)batch_size, &h, &appended);
		if (err != TL_OK) {
			/* Earlier batches of this request may be queued: they still complete. */
			metrics->failed_produce_requests++;
			partition_error(st, result, err, append_error_message(err));
			break;
		}
		if (!appended.duplicate && req->conn->broker->metrics_on) {
			metrics->messages_in += (uint64_t)TL_MAX(h.records_count, 0);
			metrics->bytes_in += (uint64_t)size;
			tl_hist_add(&req->conn->broker->metrics.produce_batch_bytes,
				    (uint64_t)size);
		}
		if (first) {
			result->base_offset = appended.base_offset;
			/* A duplicate's is the original's append time, as Kafka answers. */
			if (topic->config.log_append_time)
				result->log_append_time_ms = appended.max_timestamp;
		}
		first = false;
		last_offset = appended.last_offset;
	}
	if (!topic->config.log_append_time)
		result->log_append_time_ms = -1;
	result->log_start_offset = tl_log_start_offset(partition->log);
	if (last_offset < 0)
		return;
	tl_broker_mark_dirty(req->conn->broker, partition);
	struct produce_wait *wait = tl_arena_alloc(&req->arena, sizeof(*wait));
	TL_ASSERT(wait); /* the arena limit is far above one wait per partition */
	wait->req = req;
	wait->partition = partition;
	wait->result = result;
	wait->waiter.offset = last_offset;
	wait->waiter.done = produce_durable;
	/* A replicated partition's high watermark waits for every ISR member: Kafka's
	 * purgatory wait. One replica's wait is for its own fdatasync: local time. */
	if (topic->cluster && partition->replica_count > 1)
		st->waits_remote = true;
	wait->pending = true;
	wait->next = st->waits;
	st->waits = wait;
	st->replicated |= partition->topic->cluster;
	req->waits++;
	tl_log_wait_durable(partition->log, &wait->waiter);
}

void tl_handle_produce(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_produce_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st || tl_produce_request_decode(body, req->header.api_version, &req->arena,
					     &st->msg) != TL_OK) {
		tl_request_reject(req, "malformed Produce request");
		return;
	}
	req->state_data = st;
	st->req = req;
	st->waits = NULL;
	st->replicated = false;
	st->timer_armed = false;
	st->timed_out = false;
	st->timer_prev = st->timer_next = NULL;
	struct tl_produce_request *msg = &st->msg;
	struct tl_produce_response *resp = &st->resp;
	tl_produce_response_defaults(resp);
	/* Quota: the request's bytes count as it is read, so a pipelining client is muted
	 * before its next request is parsed; the response carries the throttle time. */
	resp->throttle_time_ms = tl_quota_charge(req, TL_QUOTA_PRODUCER_BYTE_RATE,
						 (int64_t)req->frame_len + 4, false);
	resp->responses_count = msg->topic_data_count;
	resp->responses = tl_arena_array(&req->arena, (size_t)TL_MAX(msg->topic_data_count, 0),
					 sizeof(*resp->responses));
	bool acks_ok = msg->acks == 0 || msg->acks == 1 || msg->acks == -1;
	/* Kafka: transactional records need a transactional_id and Write on it, whatever
	 * the request names (so no one writes into another's transaction by leaving it
	 * out), then every topic Write, checked before the topic's existence is revealed.
	 * An id with plain records is not checked, as Kafka. */
	bool txn_ok = !has_transactional_records(msg) ||
		      (msg->transactional_id.len >= 0 &&
		       tl_authorize_txn(req, TL_ACL_OP_WRITE, msg->transactional_id));
	for (int32_t t = 0; t < msg->topic_data_count; t++) {
		const struct tl_produce_request_topic_produce_data *td = &msg->topic_data[t];
		struct tl_produce_response_topic_produce_response *tr = &resp->responses[t];
		tl_produce_response_topic_produce_response_defaults(tr);
		tr->name = td->name;
		tr->partition_responses_count = td->partition_data_count;
		tr->partition_responses =
			tl_arena_array(&req->arena, (size_t)TL_MAX(td->partition_data_count, 0),
				       sizeof(*tr->partition_responses));
		if (!resp->responses || !tr->partition_responses) {
			tl_request_reject(req, "Produce request too large to decode");
			return;
		}
		struct tl_topic *topic = tl_topic_find(broker, td->name);
		bool topic_ok = txn_ok && tl_authorize_topic(req, TL_ACL_OP_WRITE, td->name);
		for (int32_t i = 0; i < td->partition_data_count; i++) {
			const struct tl_produce_request_partition_produce_data *pd =
				&td->partition_data[i];
			struct tl_produce_response_partition_produce_response *pr =
				&tr->partition_responses[i];
			tl_produce_response_partition_produce_response_defaults(pr);
			pr->index = pd->index;
			if (!acks_ok) {
				partition_error(st, pr, TL_ERR_INVALID_REQUIRED_ACKS,
						"acks must be 0, 1 or -1");
				continue;
			}
			if (!txn_ok) {
				partition_error(st, pr,
						TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, NULL);
				continue;
			}
			if (!topic_ok) {
				partition_error(st, pr, TL_ERR_TOPIC_AUTHORIZATION_FAILED, NULL);
				continue;
			}
			if (!topic || pd->index < 0 || pd->index >= topic->partition_count) {
				partition_error(st, pr, TL_ERR_UNKNOWN_TOPIC_OR_PARTITION,
						"this server does not host this topic-partition");
				continue;
			}
			if (topic->internal) {
				/* Only the coordinators write there, as in Kafka. */
				partition_error(st, pr, TL_ERR_INVALID_TOPIC_EXCEPTION,
						"cannot append to internal topic");
				continue;
			}
			struct tl_partition *partition = &topic->partitions[pd->index];
			if (topic->cluster && partition->role != TL_REPLICA_LEADER) {
				partition_error(st, pr, TL_ERR_NOT_LEADER_OR_FOLLOWER,
						"this broker is not the partition's leader");
				continue;
			}
			if (topic->cluster && msg->acks == -1 &&
			    !tl_replica_has_min_isr(partition)) {
				partition_error(st, pr, TL_ERR_NOT_ENOUGH_REPLICAS,
						"the ISR is smaller than min.insync.replicas");
				continue;
			}
			produce_partition(req, st, topic, &topic->partitions[pd->index], pd, pr);
		}
	}
	if (msg->acks == 0 && st->any_error) {
		/* Kafka closes the connection: the client has no other way to learn. */
		tl_warn("broker: acks=0 produce failed, closing connection peer=%s",
			req->conn->peer);
		tl_conn_close(req->conn, "acks=0 produce error");
		return;
	}
	if (req->waits == 0) {
		produce_respond(req);
		return;
	}
	if (st->waits_remote)
		tl_request_remote_begin(req);
	if (st->replicated && msg->acks != 0) {
		/* Waiters never fire from tl_log_wait_durable, so all are still pending. */
		st->deadline_ms = tl_mono_ms() + TL_MAX(msg->timeout_ms, 0);
		timer_arm(broker, st);
	}
}
