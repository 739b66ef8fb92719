/* fetch.c - the Fetch API with long-poll.
 * A fetch is evaluated against every partition it names; if the bytes found reach
 * min_bytes (or max_wait_ms is 0, or an error needs reporting) it is answered at once
 * with file spans: the log bytes go out with sendfile(2), never copied. Otherwise it
 * parks: a watch on each partition, woken by the log's high-watermark listener (no
 * polling), and a deadline after which it is answered with whatever is there.
 * Only data below the high watermark (durable on disk) is ever returned; read_committed
 * (isolation_level 1) stops at the last stable offset and lists the aborted
 * transactions in the range, so clients drop their records. */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

struct fetch_state {
	struct tl_fetch_request msg;
	struct tl_fetch_response resp;
	struct tl_fetch_watch *watches; /* while parked */
	bool expired;                   /* deadline passed: answer whatever there is */
	bool *denied;                   /* per topic: not authorized (decided once) */
	uint64_t *topic_offsets;        /* per request topic: offsets in the ranges read */
};

static void fetch_release_reads(struct fetch_state *st)
{
	for (int32_t t = 0; t < st->resp.responses_count; t++) {
		struct tl_fetch_response_fetchable_topic_response *tr = &st->resp.responses[t];
		for (int32_t i = 0; i < tr->partitions_count; i++) {
			struct tl_records *rec = &tr->partitions[i].records;
			if (rec->from_file && rec->release)
				rec->release(rec->ref);
			rec->from_file = false;
			rec->release = NULL;
		}
	}
}

/* Lists the aborted transactions overlapping [@from, @to) for a read_committed fetch. */
static void fetch_aborted(struct tl_request *req, struct tl_partition *p, int64_t from, int64_t to,
			  struct tl_fetch_response_partition_data *pd)
{
	uint32_t count = tl_log_aborted_txns(p->log, from, to, NULL, 0);
	if (count == 0)
		return;
	struct tl_log_aborted_txn *found = tl_arena_array(&req->arena, count, sizeof(*found));
	struct tl_fetch_response_aborted_transaction *out =
		tl_arena_array(&req->arena, count, sizeof(*out));
	TL_ASSERT(found && out); /* bounded by the partition's aborted transactions */
	count = tl_log_aborted_txns(p->log, from, to, found, count);
	for (uint32_t i = 0; i < count; i++) {
		out[i].producer_id = found[i].producer_id;
		out[i].first_offset = found[i].first_offset;
	}
	pd->aborted_transactions = out;
	pd->aborted_transactions_count = (int32_t)count;
}

/* Cluster mode checks for one partition: this broker must lead it, at the epoch the
 * client knows (KIP-320), and a follower's fetch must not follow a diverged log
 * (KIP-595: answered with the diverging epoch, no records). Returns the error to put
 * in the response, TL_OK to read, or TL_ERR_AGAIN when @pd is complete without
 * records (diverging). Sets *max_offset for a follower: what is written, past the HW. */
static tl_err fetch_cluster_check(struct tl_request *req, const struct fetch_state *st,
				  struct tl_partition *p,
				  const struct tl_fetch_request_fetch_partition *fp,
				  struct tl_fetch_response_partition_data *pd, int64_t *max_offset)
{
	tl_err err = tl_replica_check_client(p, fp->current_leader_epoch);
	if (err != TL_OK)
		return err;
	int32_t replica =
		st->msg.replica_id >= 0 ? st->msg.replica_id : st->msg.replica_state.replica_id;
	if (replica < 0)
		return TL_OK;
	if (fp->last_fetched_epoch >= 0) {
		int32_t epoch;
		int64_t end;
		if (tl_log_end_offset_for_epoch(p->log, fp->last_fetched_epoch, &epoch, &end) ==
			    TL_OK &&
		    (epoch != fp->last_fetched_epoch || end < fp->fetch_offset)) {
			pd->diverging_epoch.epoch = epoch;
			pd->diverging_epoch.end_offset = end;
			pd->log_start_offset = tl_log_start_offset(p->log);
			return TL_ERR_AGAIN;
		}
	}
	/* Past our end: the follower holds records we never had (an unclean election,
	 * or a log it started afresh at an old leader's log start, with no epochs to
	 * compare). Kafka's follower would ask ListOffsets for our end after
	 * OFFSET_OUT_OF_RANGE; ours learns it here, as a divergence at our end. */
	int64_t end = tl_log_end_offset(p->log);
	int32_t latest = tl_log_latest_epoch(p->log);
	if (fp->fetch_offset > end && latest >= 0) {
		pd->diverging_epoch.epoch = latest;
		pd->diverging_epoch.end_offset = end;
		pd->log_start_offset = tl_log_start_offset(p->log);
		return TL_ERR_AGAIN;
	}
	err = tl_replica_on_follower_fetch(req->conn->broker, p, replica, fp->fetch_offset,
					   fp->log_start_offset);
	if (err != TL_OK)
		return err;
	*max_offset = tl_log_written_offset(p->log);
	return TL_OK;
}

/* Fills st->resp from the logs. Returns the bytes found; *errors_out says whether any
 * partition carries an error. */
static int64_t fetch_collect(struct tl_request *req, struct fetch_state *st, bool *errors_out)
{
	struct tl_broker *broker = req->conn->broker;
	const struct tl_fetch_request *msg = &st->msg;
	/* As Kafka: 0 (or less) still returns the first batch (KIP-74), nothing more. */
	int64_t budget = TL_MAX(msg->max_bytes, 0);
	if (msg->replica_id < 0 && msg->replica_state.replica_id < 0) /* quota: as Kafka */
		budget = TL_MIN(budget, tl_quota_window_bytes(req, TL_QUOTA_CONSUMER_BYTE_RATE));
	int64_t total = 0;
	*errors_out = false;
	/* A cold read may park this fetch only if it can wait at all. */
	bool may_wait = !st->expired && msg->max_wait_ms > 0 && msg->min_bytes > 0 &&
			!(req->deadline_ms && tl_mono_ms() >= req->deadline_ms);
	for (int32_t t = 0; t < msg->topics_count; t++) {
		const struct tl_fetch_request_fetch_topic *ft = &msg->topics[t];
		struct tl_fetch_response_fetchable_topic_response *tr = &st->resp.responses[t];
		st->topic_offsets[t] = 0;
		for (int32_t i = 0; i < ft->partitions_count; i++) {
			const struct tl_fetch_request_fetch_partition *fp = &ft->partitions[i];
			struct tl_fetch_response_partition_data *pd = &tr->partitions[i];
			tl_fetch_response_partition_data_defaults(pd);
			pd->partition_index = fp->partition;
			pd->records.len = 0;
			if (msg->isolation_level == 1)
				pd->aborted_transactions_count = 0;
			if (st->denied && st->denied[t]) {
				pd->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				pd->high_watermark = -1;
				*errors_out = true;
				continue;
			}
			struct tl_partition *p =
				tl_partition_find_any(broker, ft->topic, fp->partition);
			if (!p || (!p->topic->cluster && !p->log)) {
				pd->error_code = (int16_t)TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				pd->high_watermark = -1;
				*errors_out = true;
				continue;
			}
			int64_t max_offset = -1;
			tl_err check =
				p->topic->cluster
					? fetch_cluster_check(req, st, p, fp, pd, &max_offset)
					: tl_replica_check_client(p, fp->current_leader_epoch);
			if (check == TL_ERR_AGAIN) {
				*errors_out = true; /* answer now: the follower truncates */
				continue;
			}
			if (check != TL_OK) {
				pd->error_code = (int16_t)check;
				pd->high_watermark = -1;
				*errors_out = true;
				continue;
			}
			int64_t hw = tl_log_high_watermark(p->log);
			int64_t lso = tl_log_last_stable_offset(p->log);
			bool committed = msg->isolation_level == 1;
			pd->high_watermark = hw;
			pd->last_stable_offset = lso;
			pd->log_start_offset = tl_log_start_offset(p->log);
			int32_t max =
				(int32_t)TL_MIN((int64_t)fp->partition_max_bytes, budget - total);
			struct tl_log_read read;
			if (max_offset < 0)
				max_offset = committed ? lso : hw;
			tl_err err =
				tl_log_read_cached(p->log, fp->fetch_offset, max_offset,
						   TL_MAX(max, 0), total == 0, may_wait, &read);
			if (err != TL_OK) {
				pd->error_code = (int16_t)err;
				*errors_out = true;
				continue;
			}
			if (read.bytes == 0)
				continue;
			if (committed)
				fetch_aborted(req, p, fp->fetch_offset, lso, pd);
			pd->records.from_file = true;
			pd->records.fd = read.fd; /* -1: memory at ptr (the log's read cache) */
			pd->records.ptr = read.data;
			pd->records.file_offset = read.position;
			pd->records.len = (int32_t)read.bytes;
			pd->records.release = read.release;
			pd->records.ref = read.ref;
			total += read.bytes;
			/* Records out, without parsing what sendfile sends: the offsets of the
			 * range from the one asked for (transaction markers count too). */
			st->topic_offsets[t] += (uint64_t)TL_MAX(
				read.next_offset - TL_MAX(fp->fetch_offset, read.first_offset), 0);
		}
	}
	return total;
}

static void fetch_abandon(struct tl_request *req)
{
	tl_fetch_unpark(req);
	req->deadline_ms = 0;
}

static void fetch_park(struct tl_request *req, struct fetch_state *st)
{
	struct tl_broker *broker = req->conn->broker;
	const struct tl_fetch_request *msg = &st->msg;
	for (int32_t t = 0; t < msg->topics_count; t++) {
		for (int32_t i = 0; i < msg->topics[t].partitions_count; i++) {
			struct tl_partition *p =
				tl_partition_find(broker, msg->topics[t].topic,
						  msg->topics[t].partitions[i].partition);
			if (!p)
				continue;
			struct tl_fetch_watch *w = tl_arena_alloc(&req->arena, sizeof(*w));
			TL_ASSERT(w);
			w->req = req;
			w->partition = p;
			w->prev = NULL;
			w->next = p->watches;
			if (p->watches)
				p->watches->prev = w;
			p->watches = w;
			w->req_next = st->watches;
			st->watches = w;
		}
	}
	if (req->deadline_ms == 0)
		req->deadline_ms = tl_mono_ms() + TL_MAX(msg->max_wait_ms, 0);
	req->on_abandon = fetch_abandon;
	tl_request_remote_begin(req);
	req->parked_prev = NULL;
	req->parked_next = broker->parked;
	if (broker->parked)
		broker->parked->parked_prev = req;
	broker->parked = req;
}

void tl_fetch_unpark(struct tl_request *req)
{
	struct fetch_state *st = req->state_data;
	struct tl_broker *broker = req->conn->broker;
	for (struct tl_fetch_watch *w = st->watches; w; w = w->req_next) {
		if (w->prev)
			w->prev->next = w->next;
		else
			w->partition->watches = w->next;
		if (w->next)
			w->next->prev = w->prev;
	}
	st->watches = NULL;
	if (req->parked_prev)
		req->parked_prev->parked_next = req->parked_next;
	else if (broker->parked == req)
		broker->parked = req->parked_next;
	if (req->parked_next)
		req->parked_next->parked_prev = req->parked_prev;
	req->parked_next = req->parked_prev = NULL;
	req->on_abandon = NULL;
	tl_request_remote_end(req);
	/* deadline_ms stays set until the fetch answers, so a retry keeps the original one */
}

/* Counts an answered fetch for /metrics: bytes out by topic (to consumers, or to
 * followers: Kafka's ReplicationBytesOut), partitions, errors. One topic lookup per
 * topic of the response. */
static void fetch_count(struct tl_broker *broker, const struct fetch_state *st)
{
	bool follower = st->msg.replica_id >= 0;
	for (int32_t t = 0; t < st->resp.responses_count; t++) {
		const struct tl_fetch_response_fetchable_topic_response *tr =
			&st->resp.responses[t];
		struct tl_topic *topic = tl_topic_find(broker, st->msg.topics[t].topic);
		if (topic && !follower)
			topic->metrics.messages_out += st->topic_offsets[t];
		for (int32_t i = 0; i < tr->partitions_count; i++) {
			const struct tl_fetch_response_partition_data *pd = &tr->partitions[i];
			if (!topic)
				continue;
			topic->metrics.fetch_requests++;
			if (pd->error_code != 0)
				topic->metrics.failed_fetch_requests++;
			uint64_t bytes = (uint64_t)TL_MAX(pd->records.len, 0);
			if (follower)
				topic->metrics.replication_bytes_out += bytes;
			else
				topic->metrics.bytes_out += bytes;
		}
	}
}

static void fetch_evaluate(struct tl_request *req)
{
	struct fetch_state *st = req->state_data;
	bool errors;
	int64_t bytes = fetch_collect(req, st, &errors);
	bool ready = st->expired || errors || st->msg.max_wait_ms <= 0 ||
		     bytes >= st->msg.min_bytes || st->msg.topics_count == 0;
	if (!ready && req->deadline_ms && tl_mono_ms() >= req->deadline_ms)
		ready = true;
	if (!ready) {
		fetch_release_reads(st);
		fetch_park(req, st);
		return;
	}
	req->deadline_ms = 0;
	if (st->msg.replica_id < 0 && st->msg.replica_state.replica_id < 0) {
		/* Quota (consumers only): a throttled fetch is answered empty, as Kafka does. */
		st->resp.throttle_time_ms =
			tl_quota_charge(req, TL_QUOTA_CONSUMER_BYTE_RATE, bytes, true);
		if (st->resp.throttle_time_ms > 0) {
			fetch_release_reads(st);
			st->resp.responses_count = 0;
		}
	}
	if (req->conn->broker->metrics_on)
		fetch_count(req->conn->broker, st);
	tl_response_begin(req);
	/* The encoder hands each file span's reference to the response buffer. */
	tl_fetch_response_encode(&req->response, req->header.api_version, &st->resp);
	tl_response_end(req);
}

void tl_fetch_retry(struct tl_request *req)
{
	fetch_evaluate(req);
}

void tl_handle_fetch(struct tl_request *req, struct tl_cursor *body)
{
	struct fetch_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st || tl_fetch_request_decode(body, req->header.api_version, &req->arena, &st->msg) !=
			   TL_OK) {
		tl_request_reject(req, "malformed Fetch request");
		return;
	}
	req->state_data = st;
	const struct tl_fetch_request *msg = &st->msg;
	struct tl_fetch_response *resp = &st->resp;
	tl_fetch_response_defaults(resp);
	resp->session_id = 0; /* KIP-227: declining sessions is legal; every fetch is full */
	resp->responses_count = msg->topics_count;
	resp->responses = tl_arena_array(&req->arena, (size_t)TL_MAX(msg->topics_count, 0),
					 sizeof(*resp->responses));
	st->topic_offsets = tl_arena_array(&req->arena, (size_t)TL_MAX(msg->topics_count, 0),
					   sizeof(*st->topic_offsets));
	for (int32_t t = 0; t < msg->topics_count; t++) {
		struct tl_fetch_response_fetchable_topic_response *tr = &resp->responses[t];
		tl_fetch_response_fetchable_topic_response_defaults(tr);
		tr->topic = msg->topics[t].topic;
		tr->topic_id = msg->topics[t].topic_id;
		tr->partitions_count = msg->topics[t].partitions_count;
		tr->partitions =
			tl_arena_array(&req->arena, (size_t)TL_MAX(tr->partitions_count, 0),
				       sizeof(*tr->partitions));
		if (!tr->partitions) {
			tl_request_reject(req, "Fetch request too large to decode");
			return;
		}
	}
	if (msg->topics_count > 0 && (!resp->responses || !st->topic_offsets)) {
		tl_request_reject(req, "Fetch request too large to decode");
		return;
	}
	/* Kafka: a follower needs ClusterAction on the Cluster (else every partition is
	 * TOPIC_AUTHORIZATION_FAILED), a consumer Read on each topic. Decided once, not
	 * on every long-poll wake-up. */
	if (req->conn->broker->authz.enabled && msg->topics_count > 0) {
		st->denied =
			tl_arena_array(&req->arena, (size_t)msg->topics_count, sizeof(*st->denied));
		if (!st->denied) {
			tl_request_reject(req, "Fetch request too large to decode");
			return;
		}
		bool follower = msg->replica_id >= 0 || msg->replica_state.replica_id >= 0;
		bool cluster_ok = !follower || tl_authorize_cluster(req, TL_ACL_OP_CLUSTER_ACTION);
		for (int32_t t = 0; t < msg->topics_count; t++)
			st->denied[t] = !cluster_ok ||
					(!follower && !tl_authorize_topic(req, TL_ACL_OP_READ,
									  msg->topics[t].topic));
	}
	fetch_evaluate(req);
}

void tl_fetch_on_data(void *ctx, struct tl_log *log)
{
	struct tl_partition *p = ctx;
	TL_UNUSED(log);
	if (!p->watches)
		return;
	/* Rescan from the head after each retry: a retry may answer (and free) requests, or
	 * park them again on this very list. The generation mark skips those already done. */
	static _Thread_local uint64_t wake_gen; /* per loop thread; unique across partitions */
	uint64_t gen = ++wake_gen;
	for (;;) {
		struct tl_fetch_watch *w = p->watches;
		while (w && w->req->wake_gen == gen)
			w = w->next;
		if (!w)
			break;
		struct tl_request *req = w->req;
		req->wake_gen = gen;
		tl_fetch_unpark(req);
		fetch_evaluate(req);
	}
}

void tl_fetch_expire(struct tl_broker *broker, int64_t now_ms)
{
	struct tl_request *req = broker->parked;
	while (req) {
		struct tl_request *next = req->parked_next;
		if (req->deadline_ms <= now_ms) {
			struct fetch_state *st = req->state_data;
			tl_fetch_unpark(req);
			st->expired = true;
			fetch_evaluate(req);
			next = broker->parked; /* the list may have changed; restart */
		}
		req = next;
	}
}

int64_t tl_fetch_next_deadline(const struct tl_broker *broker)
{
	int64_t next = INT64_MAX;
	for (const struct tl_request *req = broker->parked; req; req = req->parked_next)
		next = TL_MIN(next, req->deadline_ms);
	return next;
}

/* ---- OffsetForLeaderEpoch (KIP-101, KIP-320) ---- */

/* For each partition: the end offset of the requested epoch on this leader (the start of
 * the next epoch, or the log end for the current one), so a consumer or a follower that
 * saw an older leader can find where its log may have diverged. */
void tl_handle_offset_for_leader_epoch(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_offset_for_leader_epoch_request msg;
	if (tl_offset_for_leader_epoch_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed OffsetForLeaderEpoch request");
		return;
	}
	struct tl_offset_for_leader_epoch_response resp;
	tl_offset_for_leader_epoch_response_defaults(&resp);
	resp.topics_count = TL_MAX(msg.topics_count, 0);
	resp.topics = tl_arena_array(&req->arena, (size_t)resp.topics_count, sizeof(*resp.topics));
	if (resp.topics_count > 0 && !resp.topics) {
		tl_request_reject(req, "OffsetForLeaderEpoch request too large");
		return;
	}
	for (int32_t t = 0; t < resp.topics_count; t++) {
		const struct tl_offset_for_leader_epoch_request_offset_for_leader_topic *in =
			&msg.topics[t];
		struct tl_offset_for_leader_epoch_response_offset_for_leader_topic_result *out =
			&resp.topics[t];
		tl_offset_for_leader_epoch_response_offset_for_leader_topic_result_defaults(out);
		out->topic = in->topic;
		/* Kafka: a follower (replica_id >= 0) needs ClusterAction, a client Describe. */
		bool topic_ok = msg.replica_id >= 0
					? tl_authorize_cluster(req, TL_ACL_OP_CLUSTER_ACTION)
					: tl_authorize_topic(req, TL_ACL_OP_DESCRIBE, in->topic);
		out->partitions_count = TL_MAX(in->partitions_count, 0);
		out->partitions = tl_arena_array(&req->arena, (size_t)out->partitions_count,
						 sizeof(*out->partitions));
		if (out->partitions_count > 0 && !out->partitions) {
			tl_request_reject(req, "OffsetForLeaderEpoch request too large");
			return;
		}
		for (int32_t i = 0; i < out->partitions_count; i++) {
			const struct tl_offset_for_leader_epoch_request_offset_for_leader_partition
				*ip = &in->partitions[i];
			struct tl_offset_for_leader_epoch_response_epoch_end_offset *op =
				&out->partitions[i];
			tl_offset_for_leader_epoch_response_epoch_end_offset_defaults(op);
			op->partition = ip->partition;
			op->leader_epoch = -1;
			op->end_offset = -1;
			if (!topic_ok) {
				op->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			struct tl_partition *p =
				tl_partition_find_any(broker, in->topic, ip->partition);
			tl_err check = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (p && (p->topic->cluster || p->log))
				check = tl_replica_check_client(p, ip->current_leader_epoch);
			if (check != TL_OK)
				op->error_code = (int16_t)check;
			else
				tl_log_end_offset_for_epoch(p->log, ip->leader_epoch,
							    &op->leader_epoch, &op->end_offset);
		}
	}
	tl_response_begin(req);
	tl_offset_for_leader_epoch_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}
