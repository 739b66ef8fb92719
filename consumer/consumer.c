/* consumer.c - the libtally consumer, see include/tally/consumer.h and internal.h for the
 * partition states and invariants.
 *
 * Everything runs on the caller's thread inside tl_consumer_poll(): the poll first hands
 * out a buffered record if it has one, and between records (at least every
 * CONSUMER_IO_INTERVAL_NS, and whenever a chunk runs out) does a non-blocking I/O round,
 * so the next Fetch of a partition leaves as soon as the previous response arrived
 * (pipelining) while the application is still working through it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/time.h"
#include "internal.h"
#include "protocol/messages.h"

#define CONSUMER_IO_INTERVAL_NS  (1000 * 1000LL) /* between I/O rounds while records flow */
#define CONSUMER_PARTS_MAX       100000          /* partitions in one assignment */
#define CONSUMER_ARENA_MAX       (64u << 20)     /* decoded form of one response */
#define CONSUMER_FETCH_NODES_MAX 1024

/* ---- configuration ---- */

static const struct tl_conf_key consumer_keys[] = {
	{"bootstrap.servers", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	TL_CLIENT_SECURITY_KEYS,
	{"client.id", TL_CONF_STR, "libtally", 0, 0, NULL, NULL},
	{"group.id", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	{"group.instance.id", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	{"isolation.level", TL_CONF_ENUM, "read_committed", 0, 0, "read_committed|read_uncommitted",
	 NULL},
	{"auto.offset.reset", TL_CONF_ENUM, "latest", 0, 0, "earliest|latest|none", NULL},
	{"enable.auto.commit", TL_CONF_BOOL, "true", 0, 0, NULL, NULL},
	{"auto.commit.interval.ms", TL_CONF_INT, "5000", 1, INT32_MAX, NULL, NULL},
	{"fetch.min.bytes", TL_CONF_INT, "1", 0, 1 << 30, NULL, NULL},
	{"fetch.max.bytes", TL_CONF_INT, "52428800", 1024, 1 << 30, NULL, NULL},
	{"max.partition.fetch.bytes", TL_CONF_INT, "1048576", 1024, 1 << 30, NULL, NULL},
	{"fetch.max.wait.ms", TL_CONF_INT, "500", 0, 300000, NULL, NULL},
	{"request.timeout.ms", TL_CONF_INT, "30000", 1, INT32_MAX, NULL, NULL},
	{"retry.backoff.ms", TL_CONF_INT, "100", 0, 3600000, NULL, NULL},
	{"reconnect.backoff.ms", TL_CONF_INT, "50", 0, 3600000, NULL, NULL},
	{"metadata.max.age.ms", TL_CONF_INT, "300000", 1, INT32_MAX, NULL, NULL},
	{"check.crcs", TL_CONF_BOOL, "true", 0, 0, NULL, NULL},
	{"allow.auto.create.topics", TL_CONF_BOOL, "true", 0, 0, NULL, NULL},
	{"session.timeout.ms", TL_CONF_INT, "45000", 1, INT32_MAX, NULL, NULL},
	{"heartbeat.interval.ms", TL_CONF_INT, "3000", 1, INT32_MAX, NULL, NULL},
	{"max.poll.interval.ms", TL_CONF_INT, "300000", 1, INT32_MAX, NULL, NULL},
	{"partition.assignment.strategy", TL_CONF_ENUM, "range", 0, 0, "range", NULL},
	{"return.control.records", TL_CONF_BOOL, "false", 0, 0, NULL, NULL},
};

TL_EXPORT struct tl_consumer_conf *tl_consumer_conf_create(void)
{
	struct tl_consumer_conf *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return NULL;
	if (tl_conf_init(&cc->conf, consumer_keys, TL_ARRAY_SIZE(consumer_keys)) != TL_OK) {
		free(cc);
		return NULL;
	}
	return cc;
}

TL_EXPORT void tl_consumer_conf_destroy(struct tl_consumer_conf *cc)
{
	if (!cc)
		return;
	tl_conf_deinit(&cc->conf);
	free(cc);
}

TL_EXPORT tl_err tl_consumer_conf_set(struct tl_consumer_conf *cc, const char *key,
				      const char *value, char *errstr, size_t errstr_size)
{
	return tl_conf_set(&cc->conf, key, value, errstr, errstr_size);
}

TL_EXPORT void tl_consumer_conf_set_commit_cb(struct tl_consumer_conf *cc, tl_consumer_commit_fn cb,
					      void *conf_opaque)
{
	cc->commit_cb = cb;
	cc->commit_opaque = conf_opaque;
}

TL_EXPORT void tl_consumer_conf_set_rebalance_cb(struct tl_consumer_conf *cc,
						 tl_consumer_rebalance_fn cb, void *conf_opaque)
{
	cc->rebalance_cb = cb;
	cc->rebalance_opaque = conf_opaque;
}

/* ---- helpers ---- */

tl_err tl_consumer_fail(struct tl_consumer *consumer, tl_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(consumer->last_error, sizeof(consumer->last_error), fmt, ap);
	va_end(ap);
	return err;
}

tl_err tl_consumer_send(struct tl_consumer *consumer, int32_t node, int16_t api_key,
			tl_consumer_encode_fn encode, void *arg, tl_client_response_fn done,
			void *done_arg)
{
	return tl_consumer_send_timeout(consumer, node, api_key, encode, arg,
					consumer->request_timeout_ms, done, done_arg);
}

tl_err tl_consumer_send_timeout(struct tl_consumer *consumer, int32_t node, int16_t api_key,
				tl_consumer_encode_fn encode, void *arg, int32_t timeout_ms,
				tl_client_response_fn done, void *done_arg)
{
	if (!tl_client_node_ready(consumer->client, node))
		return TL_ERR_AGAIN;
	int16_t version = tl_client_api_version(consumer->client, node, api_key);
	if (version < 0)
		return TL_ERR_UNSUPPORTED_VERSION;
	struct tl_buf body;
	tl_buf_init(&body);
	encode(&body, version, arg);
	tl_err err = tl_client_send_timeout(consumer->client, node, api_key, version, &body, true,
					    timeout_ms, done, done_arg);
	tl_buf_deinit(&body);
	return err;
}

static int part_cmp(const char *topic_a, int32_t part_a, const char *topic_b, int32_t part_b)
{
	int c = strcmp(topic_a, topic_b);
	if (c != 0)
		return c;
	return part_a < part_b ? -1 : part_a > part_b;
}

/* The index of @topic/@partition in the (sorted) assignment, or -1. */
static int32_t part_find(const struct tl_consumer *consumer, const char *topic, size_t topic_len,
			 int32_t partition)
{
	int32_t lo = 0, hi = consumer->part_count - 1;
	while (lo <= hi) {
		int32_t mid = lo + (hi - lo) / 2;
		const struct consumer_part *part = &consumer->parts[mid];
		int c = strncmp(part->topic, topic, topic_len);
		if (c == 0 && part->topic[topic_len] != '\0')
			c = 1;
		if (c == 0)
			c = part->partition < partition ? -1 : part->partition > partition;
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int32_t part_find_str(const struct tl_consumer *consumer, struct tl_str topic,
			     int32_t partition)
{
	if (topic.len < 0 || memchr(topic.ptr, '\0', (size_t)topic.len))
		return -1;
	return part_find(consumer, topic.ptr, (size_t)topic.len, partition);
}

/* Puts @part in PAUSED with @err, to be reported by the next poll. */
static void part_pause(struct tl_consumer *consumer, struct consumer_part *part, tl_err err,
		       const char *detail)
{
	part->state = PART_PAUSED;
	part->error = err;
	part->error_reported = false;
	part->epoch++;
	free(part->error_detail); /* the poll that reports it says why, not just what */
	part->error_detail = strdup(detail);
	tl_consumer_fail(consumer, err, "%s [%d]: %s", part->topic, part->partition, detail);
}

/* Sets where @part starts: an offset (>= 0) is the position at once, as Java's seek(),
 * so position() and a commit see it before the next poll; TL_CONSUMER_OFFSET_* are
 * resolved by the next polls (ListOffsets, OffsetFetch), the position -1 until then. */
static void part_start_at(struct consumer_part *part, int64_t offset, int64_t timestamp_ms)
{
	part->start = offset;
	part->start_timestamp_ms = timestamp_ms;
	part->state = offset >= 0 ? PART_FETCHING : PART_NEED_OFFSET;
	part->position = offset >= 0 ? offset : -1;
	part->fetch_offset = offset >= 0 ? offset : -1;
	part->position_epoch = -1; /* an offset without an epoch is not validated */
	part->leader_epoch = -1;
}

static void part_retry_later(struct tl_consumer *consumer, struct consumer_part *part)
{
	part->retry_at_ns = tl_mono_ns() + consumer->retry_backoff_ns;
}

/* ---- assignment ---- */

static void frame_unref(struct fetch_frame *frame)
{
	if (!frame)
		return;
	TL_ASSERT(frame->refs > 0);
	if (--frame->refs == 0) {
		free(frame->data);
		free(frame);
	}
}

static void chunk_free(struct fetch_chunk *chunk)
{
	if (chunk->started)
		tl_records_iter_deinit(&chunk->iter);
	frame_unref(chunk->frame);
	free(chunk->aborted);
	free(chunk->open_aborts);
	free(chunk);
}

static void parts_free(struct consumer_part *parts, int32_t count);

/* Puts @chunk aside until the next poll: the record handed out last may point into it
 * (invariant 4). */
static void chunk_park(struct tl_consumer *consumer, struct fetch_chunk *chunk)
{
	chunk->next = consumer->chunk_done;
	consumer->chunk_done = chunk;
}

/* Frees what the previous poll's record could point into; called by poll before it
 * hands out another record. */
static void retired_free(struct tl_consumer *consumer)
{
	while (consumer->chunk_done) {
		struct fetch_chunk *next = consumer->chunk_done->next;
		chunk_free(consumer->chunk_done);
		consumer->chunk_done = next;
	}
	while (consumer->parts_done) {
		struct parts_retired *next = consumer->parts_done->next;
		parts_free(consumer->parts_done->parts, consumer->parts_done->count);
		free(consumer->parts_done);
		consumer->parts_done = next;
	}
}

static void chunks_drop_all(struct tl_consumer *consumer)
{
	struct fetch_chunk *chunk = consumer->chunk_head;
	while (chunk) {
		struct fetch_chunk *next = chunk->next;
		chunk_free(chunk);
		chunk = next;
	}
	consumer->chunk_head = consumer->chunk_tail = NULL;
	consumer->buffered_bytes = 0;
}

static void parts_free(struct consumer_part *parts, int32_t count)
{
	for (int32_t i = 0; i < count; i++) {
		free(parts[i].topic);
		free(parts[i].error_detail);
	}
	free(parts);
}

/* Drops the buffered chunks and the assignment, keeping what the record handed out last
 * points into until the next poll: the head chunk, once records came from it, and the
 * topic names (invariant 4). */
static void assignment_retire(struct tl_consumer *consumer, struct parts_retired *retired)
{
	struct fetch_chunk *head = consumer->chunk_head;
	if (head && head->started) {
		consumer->chunk_head = head->next;
		chunk_park(consumer, head);
	}
	chunks_drop_all(consumer);
	retired->parts = consumer->parts;
	retired->count = consumer->part_count;
	retired->next = consumer->parts_done;
	consumer->parts_done = retired;
}

static int part_sort_cmp(const void *a, const void *b)
{
	const struct consumer_part *pa = a, *pb = b;
	return part_cmp(pa->topic, pa->partition, pb->topic, pb->partition);
}

tl_err tl_consumer_assignment_set(struct tl_consumer *consumer,
				  const struct tl_consumer_partition *parts, int32_t count)
{
	if (count < 0 || count > CONSUMER_PARTS_MAX || (count > 0 && !parts))
		return tl_consumer_fail(consumer, TL_ERR_INVALID,
					"assign: between 0 and %d partitions, got %d",
					CONSUMER_PARTS_MAX, count);
	struct consumer_part *next = calloc((size_t)count + 1, sizeof(*next));
	struct parts_retired *retired = calloc(1, sizeof(*retired));
	if (!next || !retired) {
		free(next);
		free(retired);
		return TL_ERR_NOMEM;
	}
	for (int32_t i = 0; i < count; i++) {
		const struct tl_consumer_partition *p = &parts[i];
		bool start_ok = p->offset >= 0 || p->offset == TL_CONSUMER_OFFSET_BEGINNING ||
				p->offset == TL_CONSUMER_OFFSET_END ||
				p->offset == TL_CONSUMER_OFFSET_COMMITTED ||
				p->offset == TL_CONSUMER_OFFSET_TIMESTAMP;
		if (!p->topic || !p->topic[0] || p->partition < 0 || !start_ok) {
			parts_free(next, i);
			free(retired);
			return tl_consumer_fail(
				consumer, TL_ERR_INVALID,
				"assign: entry %d needs a topic, a partition >= 0 and an offset >= 0 or TL_CONSUMER_OFFSET_*",
				i);
		}
		next[i].topic = strdup(p->topic);
		if (!next[i].topic) {
			parts_free(next, i);
			free(retired);
			return TL_ERR_NOMEM;
		}
		next[i].partition = p->partition;
		part_start_at(&next[i], p->offset, p->timestamp_ms);
		next[i].committed = -1;
		next[i].skip_before_ms = -1;
	}
	qsort(next, (size_t)count, sizeof(*next), part_sort_cmp);
	for (int32_t i = 1; i < count; i++) {
		if (part_sort_cmp(&next[i - 1], &next[i]) == 0) {
			tl_err err = tl_consumer_fail(consumer, TL_ERR_INVALID,
						      "assign: %s [%d] is listed twice",
						      next[i].topic, next[i].partition);
			parts_free(next, count);
			free(retired);
			return err;
		}
	}
	for (int32_t i = 0; i < count; i++)
		if (tl_client_want_topic(consumer->client, next[i].topic) != TL_OK) {
			parts_free(next, count);
			free(retired);
			return TL_ERR_NOMEM;
		}
	assignment_retire(consumer, retired);
	consumer->parts = next;
	consumer->part_count = count;
	consumer->assign_gen++; /* invariant 1: responses for the old assignment are dropped */
	return TL_OK;
}

TL_EXPORT tl_err tl_consumer_assign(struct tl_consumer *consumer,
				    const struct tl_consumer_partition *parts, int32_t count)
{
	if (consumer->subscribed)
		return tl_consumer_fail(
			consumer, TL_ERR_INVALID,
			"assign: this consumer is subscribed; the group assigns its partitions");
	return tl_consumer_assignment_set(consumer, parts, count);
}

TL_EXPORT int32_t tl_consumer_assignment(struct tl_consumer *consumer,
					 struct tl_consumer_partition *out, int32_t out_count)
{
	for (int32_t i = 0; out && i < consumer->part_count && i < out_count; i++) {
		out[i].topic = consumer->parts[i].topic;
		out[i].partition = consumer->parts[i].partition;
		out[i].offset = consumer->parts[i].position;
		out[i].timestamp_ms = 0;
	}
	return consumer->part_count;
}

TL_EXPORT tl_err tl_consumer_seek(struct tl_consumer *consumer, const char *topic,
				  int32_t partition, int64_t offset, int64_t timestamp_ms)
{
	if (!topic)
		return TL_ERR_INVALID;
	int32_t index = part_find(consumer, topic, strlen(topic), partition);
	if (index < 0)
		return tl_consumer_fail(consumer, TL_ERR_INVALID,
					"seek: %s [%d] is not assigned to this consumer", topic,
					partition);
	if (offset < 0 && offset != TL_CONSUMER_OFFSET_BEGINNING &&
	    offset != TL_CONSUMER_OFFSET_END && offset != TL_CONSUMER_OFFSET_COMMITTED &&
	    offset != TL_CONSUMER_OFFSET_TIMESTAMP)
		return tl_consumer_fail(consumer, TL_ERR_INVALID,
					"seek: offset must be >= 0 or TL_CONSUMER_OFFSET_*");
	struct consumer_part *part = &consumer->parts[index];
	part_start_at(part, offset, timestamp_ms);
	part->error = TL_OK;
	part->error_reported = false;
	free(part->error_detail);
	part->error_detail = NULL;
	part->retry_at_ns = 0;
	part->skip_before_ms = -1;
	part->epoch++; /* invariant 1 */
	return TL_OK;
}

TL_EXPORT int64_t tl_consumer_position(struct tl_consumer *consumer, const char *topic,
				       int32_t partition)
{
	if (!topic)
		return -1;
	int32_t index = part_find(consumer, topic, strlen(topic), partition);
	return index < 0 ? -1 : consumer->parts[index].position;
}

/* ---- coordinator ---- */

struct coordinator_req {
	struct tl_consumer *consumer;
};

static void find_coordinator_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct tl_consumer *consumer = arg;
	struct tl_find_coordinator_request req;
	tl_find_coordinator_request_defaults(&req);
	req.key = tl_str_of(consumer->group_id);
	req.key_type = 0;
	tl_find_coordinator_request_encode(body, version, &req);
}

static void find_coordinator_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct tl_consumer *consumer = arg;
	consumer->coordinator_in_flight = false;
	if (err != TL_OK) {
		consumer->coordinator_retry_ns = tl_mono_ns() + consumer->retry_backoff_ns;
		return;
	}
	struct tl_arena arena;
	tl_arena_init(&arena, CONSUMER_ARENA_MAX);
	struct tl_find_coordinator_response resp;
	err = tl_find_coordinator_response_decode(body, version, &arena, &resp);
	if (err == TL_OK)
		err = (tl_err)resp.error_code;
	/* Its own connection, as Java's: a parked JoinGroup must not hold up fetches
	 * answered in order on the same connection. */
	int32_t node = INT32_MAX - resp.node_id;
	if (err == TL_OK && resp.node_id >= 0 && resp.host.len > 0 &&
	    tl_client_broker_add(consumer->client, node, resp.host.ptr, resp.host.len, resp.port) ==
		    TL_OK)
		consumer->coordinator = node;
	else
		consumer->coordinator_retry_ns = tl_mono_ns() + consumer->retry_backoff_ns;
	if (err != TL_OK && !tl_err_is_retriable(err))
		tl_consumer_fail(consumer, err,
				 "FindCoordinator for group.id=%s failed: %s; check group.id",
				 consumer->group_id, tl_err_name(err));
	tl_arena_deinit(&arena);
}

bool tl_consumer_coordinator_ready(struct tl_consumer *consumer)
{
	if (!consumer->group_id)
		return false;
	if (consumer->coordinator >= 0)
		return tl_client_node_ready(consumer->client, consumer->coordinator);
	if (consumer->coordinator_in_flight || tl_mono_ns() < consumer->coordinator_retry_ns)
		return false;
	int32_t node = tl_client_next_ready_node(consumer->client, consumer->coordinator_asked);
	if (node == TL_CLIENT_NODE_ANY)
		return false;
	if (tl_consumer_send(consumer, node, TL_CLIENT_API_FIND_COORDINATOR,
			     find_coordinator_encode, consumer, find_coordinator_done,
			     consumer) == TL_OK) {
		consumer->coordinator_in_flight = true;
		consumer->coordinator_asked = node;
	}
	return false;
}

void tl_consumer_coordinator_lost(struct tl_consumer *consumer)
{
	consumer->coordinator = -1;
}

static bool err_is_coordinator_moved(tl_err err)
{
	return err == TL_ERR_NOT_COORDINATOR || err == TL_ERR_COORDINATOR_NOT_AVAILABLE ||
	       err == TL_ERR_NETWORK_EXCEPTION || err == TL_ERR_REQUEST_TIMED_OUT;
}

/* ---- start offsets: ListOffsets ---- */

/* The partitions of one request and their epochs when sent (invariant 1). */
struct part_req {
	struct tl_consumer *consumer;
	uint32_t assign_gen;
	int32_t node;
	int32_t count;
	int32_t *indexes;
	uint32_t *epochs;
	int32_t *leader_epochs; /* per entry: the leader epoch sent with it, or -1 */
};

static struct part_req *part_req_create(struct tl_consumer *consumer, int32_t node,
					int32_t capacity)
{
	struct part_req *req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->indexes = calloc((size_t)capacity + 1, sizeof(*req->indexes));
	req->epochs = calloc((size_t)capacity + 1, sizeof(*req->epochs));
	req->leader_epochs = calloc((size_t)capacity + 1, sizeof(*req->leader_epochs));
	if (!req->indexes || !req->epochs || !req->leader_epochs) {
		free(req->indexes);
		free(req->epochs);
		free(req->leader_epochs);
		free(req);
		return NULL;
	}
	req->consumer = consumer;
	req->assign_gen = consumer->assign_gen;
	req->node = node;
	return req;
}

static void part_req_add(struct part_req *req, int32_t index, int32_t leader_epoch)
{
	req->indexes[req->count] = index;
	req->epochs[req->count] = req->consumer->parts[index].epoch;
	req->leader_epochs[req->count] = leader_epoch;
	req->count++;
}

static void part_req_free(struct part_req *req)
{
	free(req->indexes);
	free(req->epochs);
	free(req->leader_epochs);
	free(req);
}

/* The leader epoch Metadata names for @part: sent as current_leader_epoch, so that a
 * leader deposed since (or one we know too little of) answers FENCED_LEADER_EPOCH or
 * UNKNOWN_LEADER_EPOCH rather than records (KIP-320). */
static int32_t part_leader_epoch(const struct tl_consumer *consumer,
				 const struct consumer_part *part)
{
	return tl_client_leader_epoch(consumer->client, part->topic, part->partition);
}

/* The request's entry for @index still current? */
static struct consumer_part *part_req_current(struct part_req *req, int32_t index)
{
	struct tl_consumer *consumer = req->consumer;
	if (req->assign_gen != consumer->assign_gen || index < 0 || index >= consumer->part_count)
		return NULL;
	for (int32_t i = 0; i < req->count; i++)
		if (req->indexes[i] == index)
			return consumer->parts[index].epoch == req->epochs[i]
				       ? &consumer->parts[index]
				       : NULL;
	return NULL;
}

/* The leader epoch the request sent for @index, or -1. */
static int32_t part_req_leader_epoch(const struct part_req *req, int32_t index)
{
	for (int32_t i = 0; i < req->count; i++)
		if (req->indexes[i] == index)
			return req->leader_epochs[i];
	return -1;
}

/* Number of topics among the request's partitions (sorted, so runs of one topic). */
static int32_t part_req_topic_count(const struct part_req *req)
{
	int32_t topics = 0;
	for (int32_t i = 0; i < req->count; i++)
		if (i == 0 || strcmp(req->consumer->parts[req->indexes[i - 1]].topic,
				     req->consumer->parts[req->indexes[i]].topic) != 0)
			topics++;
	return topics;
}

static void list_offsets_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct part_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	int32_t topic_count = part_req_topic_count(req);
	struct tl_list_offsets_request lo;
	tl_list_offsets_request_defaults(&lo);
	lo.replica_id = -1;
	lo.isolation_level = consumer->isolation_level;
	lo.topics_count = topic_count;
	lo.topics = calloc((size_t)topic_count + 1, sizeof(*lo.topics));
	struct tl_list_offsets_request_list_offsets_partition *ps =
		calloc((size_t)req->count + 1, sizeof(*ps));
	if (!lo.topics || !ps) {
		body->failed = true;
		goto out;
	}
	int32_t t = -1;
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = &consumer->parts[req->indexes[i]];
		if (t < 0 || !tl_str_eq_c(lo.topics[t].name, part->topic)) {
			t++;
			tl_list_offsets_request_list_offsets_topic_defaults(&lo.topics[t]);
			lo.topics[t].name = tl_str_of(part->topic);
			lo.topics[t].partitions = &ps[i];
		}
		lo.topics[t].partitions_count++;
		tl_list_offsets_request_list_offsets_partition_defaults(&ps[i]);
		ps[i].partition_index = part->partition;
		ps[i].current_leader_epoch = req->leader_epochs[i];
		ps[i].max_num_offsets = 1;
		ps[i].timestamp = part->start == TL_CONSUMER_OFFSET_TIMESTAMP
					  ? part->start_timestamp_ms
					  : part->start; /* -2 earliest, -1 latest */
	}
	tl_list_offsets_request_encode(body, version, &lo);
out:
	free(lo.topics);
	free(ps);
}

static void
list_offsets_apply(struct tl_consumer *consumer, struct consumer_part *part,
		   const struct tl_list_offsets_response_list_offsets_partition_response *r,
		   int32_t leader_epoch)
{
	tl_err err = (tl_err)r->error_code;
	if (err == TL_OK && r->offset < 0 && part->start == TL_CONSUMER_OFFSET_TIMESTAMP) {
		/* No record at or after the timestamp: start at the end, as Java's seek to
		 * offsetsForTimes' null does. */
		part->start = TL_CONSUMER_OFFSET_END;
		part->state = PART_NEED_OFFSET;
		return;
	}
	if (err == TL_OK && r->offset >= 0) {
		part->position = r->offset;
		part->fetch_offset = r->offset;
		part->position_epoch = r->leader_epoch; /* v4+, else -1 */
		part->leader_epoch = leader_epoch;      /* the leader answered under it */
		part->state = PART_FETCHING;
		/* Kafka answers a timestamp with the first record at or after it; a broker
		 * that answers with its batch's base offset is corrected here. */
		if (part->start == TL_CONSUMER_OFFSET_TIMESTAMP)
			part->skip_before_ms = part->start_timestamp_ms;
		return;
	}
	part->state = PART_NEED_OFFSET;
	if (err == TL_OK)
		err = TL_ERR_CORRUPT_MESSAGE;
	if (tl_err_is_retriable(err) || err == TL_ERR_FENCED_LEADER_EPOCH ||
	    err == TL_ERR_UNKNOWN_LEADER_EPOCH) {
		tl_client_metadata_request(consumer->client);
		part_retry_later(consumer, part);
		return;
	}
	part_pause(consumer, part, err, "ListOffsets failed; check that the topic exists");
}

static void list_offsets_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct part_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	consumer->list_offsets_in_flight--;
	struct tl_arena arena;
	tl_arena_init(&arena, CONSUMER_ARENA_MAX);
	struct tl_list_offsets_response resp;
	if (err == TL_OK)
		err = tl_list_offsets_response_decode(body, version, &arena, &resp);
	if (err == TL_OK) {
		for (int32_t t = 0; t < resp.topics_count; t++) {
			const struct tl_list_offsets_response_list_offsets_topic_response *topic =
				&resp.topics[t];
			for (int32_t p = 0; p < topic->partitions_count; p++) {
				int32_t index = part_find_str(consumer, topic->name,
							      topic->partitions[p].partition_index);
				struct consumer_part *part = part_req_current(req, index);
				if (part && part->state == PART_RESOLVING)
					list_offsets_apply(consumer, part, &topic->partitions[p],
							   part_req_leader_epoch(req, index));
			}
		}
	}
	/* Partitions the response did not answer try again. */
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = part_req_current(req, req->indexes[i]);
		if (part && part->state == PART_RESOLVING) {
			part->state = PART_NEED_OFFSET;
			part_retry_later(consumer, part);
		}
	}
	tl_arena_deinit(&arena);
	part_req_free(req);
}

/* Sends ListOffsets for the partitions led by @node that need a start offset. */
static void offsets_list_for_node(struct tl_consumer *consumer, int32_t node, int64_t now)
{
	struct part_req *req = NULL;
	for (int32_t i = 0; i < consumer->part_count; i++) {
		struct consumer_part *part = &consumer->parts[i];
		if (part->state != PART_NEED_OFFSET || part->retry_at_ns > now ||
		    part->start >= 0 || part->start == TL_CONSUMER_OFFSET_COMMITTED)
			continue;
		if (tl_client_leader(consumer->client, part->topic, part->partition) != node)
			continue;
		if (!req) {
			req = part_req_create(consumer, node, consumer->part_count);
			if (!req)
				return;
		}
		part_req_add(req, i, part_leader_epoch(consumer, part));
	}
	if (!req)
		return;
	tl_err err = tl_consumer_send(consumer, node, TL_CLIENT_API_LIST_OFFSETS,
				      list_offsets_encode, req, list_offsets_done, req);
	if (err != TL_OK) {
		part_req_free(req);
		return;
	}
	consumer->list_offsets_in_flight++;
	for (int32_t i = 0; i < req->count; i++)
		consumer->parts[req->indexes[i]].state = PART_RESOLVING;
}

/* ---- start offsets: committed (OffsetFetch) ---- */

static void offset_fetch_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct part_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	int32_t topic_count = part_req_topic_count(req);
	struct tl_offset_fetch_request of;
	tl_offset_fetch_request_defaults(&of);
	of.group_id = tl_str_of(consumer->group_id);
	/* KIP-447: a read_committed consumer must not start from a committed offset that an
	 * open transaction is about to replace, or it processes again what the transaction
	 * already accounted for. The coordinator answers UNSTABLE_OFFSET_COMMIT until the
	 * transaction ends; offset_fetch_apply retries it. Below v7 the field is dropped. */
	of.require_stable = consumer->isolation_level == 1;
	of.topics_count = topic_count;
	of.topics = calloc((size_t)topic_count + 1, sizeof(*of.topics));
	int32_t *indexes = calloc((size_t)req->count + 1, sizeof(*indexes));
	if (!of.topics || !indexes) {
		body->failed = true;
		goto out;
	}
	int32_t t = -1;
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = &consumer->parts[req->indexes[i]];
		if (t < 0 || !tl_str_eq_c(of.topics[t].name, part->topic)) {
			t++;
			tl_offset_fetch_request_offset_fetch_request_topic_defaults(&of.topics[t]);
			of.topics[t].name = tl_str_of(part->topic);
			of.topics[t].partition_indexes = &indexes[i];
		}
		of.topics[t].partition_indexes_count++;
		indexes[i] = part->partition;
	}
	tl_offset_fetch_request_encode(body, version, &of);
out:
	free(of.topics);
	free(indexes);
}

static void offset_fetch_apply(struct tl_consumer *consumer, struct consumer_part *part,
			       int64_t committed, int32_t committed_epoch, tl_err err)
{
	part->state = PART_NEED_OFFSET;
	if (err != TL_OK) {
		if (err_is_coordinator_moved(err))
			tl_consumer_coordinator_lost(consumer);
		if (tl_err_is_retriable(err) || err_is_coordinator_moved(err) ||
		    err == TL_ERR_UNSTABLE_OFFSET_COMMIT) {
			part_retry_later(consumer, part);
			return;
		}
		part_pause(consumer, part, err, "OffsetFetch failed; check group.id");
		return;
	}
	if (committed >= 0) {
		part->position = committed;
		part->fetch_offset = committed;
		part->committed = committed;
		/* Validated against the leader before the first fetch, where the committer
		 * knew the epoch: records it read may since have been lost uncleanly. */
		part->position_epoch = committed_epoch;
		part->leader_epoch = -1;
		part->state = PART_FETCHING;
		return;
	}
	if (consumer->reset_to == 0) {
		part_pause(
			consumer, part, TL_ERR_NOT_FOUND,
			"no committed offset and auto.offset.reset=none; commit one, seek, or set auto.offset.reset=earliest|latest");
		return;
	}
	part->start = consumer->reset_to;
}

static void offset_fetch_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct part_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	consumer->offset_fetch_in_flight = false;
	struct tl_arena arena;
	tl_arena_init(&arena, CONSUMER_ARENA_MAX);
	struct tl_offset_fetch_response resp;
	if (err == TL_OK)
		err = tl_offset_fetch_response_decode(body, version, &arena, &resp);
	if (err == TL_OK && resp.error_code != 0)
		err = (tl_err)resp.error_code;
	for (int32_t t = 0; err == TL_OK && t < resp.topics_count; t++) {
		const struct tl_offset_fetch_response_offset_fetch_response_topic *topic =
			&resp.topics[t];
		for (int32_t p = 0; p < topic->partitions_count; p++) {
			const struct tl_offset_fetch_response_offset_fetch_response_partition *r =
				&topic->partitions[p];
			struct consumer_part *part = part_req_current(
				req, part_find_str(consumer, topic->name, r->partition_index));
			if (part && part->state == PART_RESOLVING)
				offset_fetch_apply(consumer, part, r->committed_offset,
						   r->committed_leader_epoch,
						   (tl_err)r->error_code);
		}
	}
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = part_req_current(req, req->indexes[i]);
		if (part && part->state == PART_RESOLVING)
			offset_fetch_apply(consumer, part, -1, -1,
					   err != TL_OK ? err : TL_ERR_NETWORK_EXCEPTION);
	}
	tl_arena_deinit(&arena);
	part_req_free(req);
}

static void offsets_fetch_committed(struct tl_consumer *consumer, int64_t now)
{
	if (consumer->offset_fetch_in_flight)
		return;
	bool wanted = false;
	for (int32_t i = 0; i < consumer->part_count && !wanted; i++) {
		struct consumer_part *part = &consumer->parts[i];
		wanted = part->state == PART_NEED_OFFSET && part->retry_at_ns <= now &&
			 part->start == TL_CONSUMER_OFFSET_COMMITTED;
	}
	if (!wanted)
		return;
	if (!consumer->group_id) {
		for (int32_t i = 0; i < consumer->part_count; i++)
			if (consumer->parts[i].state == PART_NEED_OFFSET &&
			    consumer->parts[i].start == TL_CONSUMER_OFFSET_COMMITTED)
				part_pause(
					consumer, &consumer->parts[i], TL_ERR_INVALID,
					"TL_CONSUMER_OFFSET_COMMITTED needs group.id; set group.id or start from another offset");
		return;
	}
	if (!tl_consumer_coordinator_ready(consumer))
		return;
	struct part_req *req =
		part_req_create(consumer, consumer->coordinator, consumer->part_count);
	if (!req)
		return;
	for (int32_t i = 0; i < consumer->part_count; i++) {
		struct consumer_part *part = &consumer->parts[i];
		if (part->state == PART_NEED_OFFSET && part->retry_at_ns <= now &&
		    part->start == TL_CONSUMER_OFFSET_COMMITTED)
			part_req_add(req, i, -1);
	}
	tl_err err = tl_consumer_send(consumer, consumer->coordinator, TL_CLIENT_API_OFFSET_FETCH,
				      offset_fetch_encode, req, offset_fetch_done, req);
	if (err != TL_OK) {
		part_req_free(req);
		return;
	}
	consumer->offset_fetch_in_flight = true;
	for (int32_t i = 0; i < req->count; i++)
		consumer->parts[req->indexes[i]].state = PART_RESOLVING;
}

/* ---- fetch ---- */

static bool fetch_node_busy(const struct tl_consumer *consumer, int32_t node)
{
	for (int32_t i = 0; i < consumer->fetch_node_count; i++)
		if (consumer->fetch_nodes[i] == node)
			return true;
	return false;
}

static void fetch_node_done(struct tl_consumer *consumer, int32_t node)
{
	for (int32_t i = 0; i < consumer->fetch_node_count; i++) {
		if (consumer->fetch_nodes[i] == node) {
			consumer->fetch_nodes[i] =
				consumer->fetch_nodes[--consumer->fetch_node_count];
			return;
		}
	}
}

struct fetch_req {
	struct part_req *parts;
	int64_t *offsets; /* fetch_offset per entry */
};

static void fetch_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct fetch_req *freq = arg;
	struct part_req *req = freq->parts;
	struct tl_consumer *consumer = req->consumer;
	int32_t topic_count = part_req_topic_count(req);
	struct tl_fetch_request fr;
	tl_fetch_request_defaults(&fr);
	fr.replica_id = -1;
	fr.max_wait_ms = consumer->fetch_max_wait_ms;
	fr.min_bytes = consumer->fetch_min_bytes;
	fr.max_bytes = consumer->fetch_max_bytes;
	fr.isolation_level = consumer->isolation_level;
	fr.session_id = 0;
	fr.session_epoch = -1; /* full fetches, no session */
	fr.topics_count = topic_count;
	fr.topics = calloc((size_t)topic_count + 1, sizeof(*fr.topics));
	fr.forgotten_topics_data_count = 0;
	struct tl_fetch_request_fetch_partition *ps = calloc((size_t)req->count + 1, sizeof(*ps));
	if (!fr.topics || !ps) {
		body->failed = true;
		goto out;
	}
	int32_t t = -1;
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = &consumer->parts[req->indexes[i]];
		if (t < 0 || !tl_str_eq_c(fr.topics[t].topic, part->topic)) {
			t++;
			tl_fetch_request_fetch_topic_defaults(&fr.topics[t]);
			fr.topics[t].topic = tl_str_of(part->topic);
			fr.topics[t].partitions = &ps[i];
		}
		fr.topics[t].partitions_count++;
		tl_fetch_request_fetch_partition_defaults(&ps[i]);
		ps[i].partition = part->partition;
		ps[i].current_leader_epoch = req->leader_epochs[i];
		ps[i].fetch_offset = freq->offsets[i];
		ps[i].partition_max_bytes = consumer->partition_max_bytes;
	}
	tl_fetch_request_encode(body, version, &fr);
out:
	free(fr.topics);
	free(ps);
}

/* The offset after the last complete batch of @data, or @from if there is none. */
static int64_t records_next_offset(const uint8_t *data, size_t len, int64_t from, bool *partial_out)
{
	int64_t next = from;
	size_t at = 0;
	*partial_out = false;
	while (len - at >= TL_BATCH_LOG_OVERHEAD) {
		int64_t size = tl_batch_size(data + at, len - at);
		if (size < 0)
			break; /* corrupt: the iterator reports it */
		if ((uint64_t)size > len - at) {
			*partial_out = true;
			break;
		}
		struct tl_batch_header h;
		if (tl_batch_header_decode(data + at, (size_t)size, &h) != TL_OK)
			break;
		if (tl_batch_last_offset(&h) + 1 > next)
			next = tl_batch_last_offset(&h) + 1;
		at += (size_t)size;
	}
	if (at == 0 && len > 0)
		*partial_out = true;
	return next;
}

static int aborted_cmp(const void *a, const void *b)
{
	const struct aborted_txn *x = a, *y = b;
	return x->first_offset < y->first_offset ? -1 : x->first_offset > y->first_offset;
}

/* The response being dispatched, as a frame @fetch_done holds one reference to (*@frame
 * until then NULL: taken only once some partition keeps records). */
static tl_err fetch_frame_take(struct tl_consumer *consumer, struct fetch_frame **frame)
{
	if (*frame)
		return TL_OK;
	struct fetch_frame *f = malloc(sizeof(*f));
	if (!f)
		return TL_ERR_NOMEM;
	f->data = tl_client_response_take(consumer->client);
	TL_ASSERT(f->data); /* fetch_done runs as the response's callback */
	f->refs = 1;
	*frame = f;
	return TL_OK;
}

/* Queues the records of one partition's answer: they stay where the response put them
 * (in *@frame), no copy. */
static tl_err fetch_queue_chunk(struct tl_consumer *consumer, int32_t index,
				const struct tl_fetch_response_partition_data *pd,
				struct fetch_frame **frame)
{
	struct consumer_part *part = &consumer->parts[index];
	size_t len = (size_t)pd->records.len;
	if (fetch_frame_take(consumer, frame) != TL_OK)
		return TL_ERR_NOMEM;
	struct fetch_chunk *chunk = calloc(1, sizeof(*chunk));
	if (!chunk)
		return TL_ERR_NOMEM;
	int32_t aborted = pd->aborted_transactions_count > 0 ? pd->aborted_transactions_count : 0;
	chunk->aborted = calloc((size_t)aborted + 1, sizeof(*chunk->aborted));
	if (!chunk->aborted) {
		free(chunk);
		return TL_ERR_NOMEM;
	}
	chunk->frame = *frame;
	chunk->frame->refs++;
	chunk->data = pd->records.ptr;
	chunk->len = len;
	for (int32_t i = 0; i < aborted; i++) {
		chunk->aborted[i].producer_id = pd->aborted_transactions[i].producer_id;
		chunk->aborted[i].first_offset = pd->aborted_transactions[i].first_offset;
	}
	qsort(chunk->aborted, (size_t)aborted, sizeof(*chunk->aborted), aborted_cmp);
	chunk->aborted_count = aborted;
	chunk->part_index = index;
	chunk->part_epoch = part->epoch;
	chunk->assign_gen = consumer->assign_gen;
	if (consumer->chunk_tail)
		consumer->chunk_tail->next = chunk;
	else
		consumer->chunk_head = chunk;
	consumer->chunk_tail = chunk;
	part->buffered_bytes += len;
	consumer->buffered_bytes += len;
	return TL_OK;
}

static void fetch_partition_error(struct tl_consumer *consumer, struct consumer_part *part,
				  tl_err err)
{
	if (err == TL_ERR_OFFSET_OUT_OF_RANGE && consumer->reset_to != 0) {
		part->state = PART_NEED_OFFSET;
		part->start = consumer->reset_to;
		part->epoch++;
		return;
	}
	if (err == TL_ERR_OFFSET_OUT_OF_RANGE) {
		part_pause(
			consumer, part, err,
			"fetch offset is out of range and auto.offset.reset=none; seek to a valid offset");
		return;
	}
	if (tl_err_is_retriable(err) || err == TL_ERR_FENCED_LEADER_EPOCH ||
	    err == TL_ERR_UNKNOWN_LEADER_EPOCH || err == TL_ERR_OFFSET_NOT_AVAILABLE) {
		tl_client_metadata_request(consumer->client);
		part_retry_later(consumer, part);
		return;
	}
	part_pause(consumer, part, err, tl_err_message(err));
}

static void fetch_apply_partition(struct tl_consumer *consumer, struct fetch_req *freq,
				  int32_t entry, const struct tl_fetch_response_partition_data *pd,
				  struct fetch_frame **frame)
{
	struct part_req *req = freq->parts;
	struct consumer_part *part = part_req_current(req, req->indexes[entry]);
	if (!part || part->state != PART_FETCHING || part->fetch_offset != freq->offsets[entry])
		return; /* moved on meanwhile (invariant 1) */
	tl_err err = (tl_err)pd->error_code;
	if (err != TL_OK) {
		fetch_partition_error(consumer, part, err);
		return;
	}
	if (pd->records.len <= 0)
		return;
	bool partial;
	int64_t next = records_next_offset(pd->records.ptr, (size_t)pd->records.len,
					   part->fetch_offset, &partial);
	if (next == part->fetch_offset && partial) {
		part_pause(
			consumer, part, TL_ERR_MESSAGE_TOO_LARGE,
			"a record batch is larger than max.partition.fetch.bytes; raise max.partition.fetch.bytes");
		return;
	}
	if (next == part->fetch_offset)
		return;
	if (fetch_queue_chunk(consumer, req->indexes[entry], pd, frame) != TL_OK) {
		part_retry_later(consumer, part);
		return;
	}
	part->fetch_offset = next;
}

static void fetch_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct fetch_req *freq = arg;
	struct part_req *req = freq->parts;
	struct tl_consumer *consumer = req->consumer;
	fetch_node_done(consumer, req->node);
	/* Also after a seek (epoch changed): the partition may fetch again (invariant 2). */
	for (int32_t i = 0; i < req->count && req->assign_gen == consumer->assign_gen; i++)
		consumer->parts[req->indexes[i]].fetch_in_flight = false;
	struct tl_arena arena;
	tl_arena_init(&arena, CONSUMER_ARENA_MAX);
	struct fetch_frame *frame = NULL; /* the response, once a chunk keeps records */
	struct tl_fetch_response resp;
	if (err == TL_OK)
		err = tl_fetch_response_decode(body, version, &arena, &resp);
	if (err == TL_OK && resp.error_code != 0)
		err = (tl_err)resp.error_code;
	if (err != TL_OK) {
		tl_client_metadata_request(consumer->client);
		for (int32_t i = 0; i < req->count; i++) {
			struct consumer_part *part = part_req_current(req, req->indexes[i]);
			if (part)
				part_retry_later(consumer, part);
		}
	}
	for (int32_t t = 0; err == TL_OK && t < resp.responses_count; t++) {
		const struct tl_fetch_response_fetchable_topic_response *topic = &resp.responses[t];
		for (int32_t p = 0; p < topic->partitions_count; p++) {
			const struct tl_fetch_response_partition_data *pd = &topic->partitions[p];
			int32_t index = part_find_str(consumer, topic->topic, pd->partition_index);
			for (int32_t i = 0; index >= 0 && i < req->count; i++)
				if (req->indexes[i] == index)
					fetch_apply_partition(consumer, freq, i, pd, &frame);
		}
	}
	frame_unref(frame);
	tl_arena_deinit(&arena);
	part_req_free(req);
	free(freq->offsets);
	free(freq);
}

/* A partition takes part in the next Fetch while less than a response's worth of its
 * records waits (pipelining without unbounded memory). */
static bool part_wants_fetch(const struct tl_consumer *consumer, const struct consumer_part *part,
			     int64_t now)
{
	return part->state == PART_FETCHING && !part->fetch_in_flight && part->retry_at_ns <= now &&
	       part->buffered_bytes < (size_t)consumer->partition_max_bytes &&
	       consumer->buffered_bytes < (size_t)consumer->fetch_max_bytes;
}

/* ---- log truncation (KIP-320) ---- */

/* Must @part ask the leader whether its position survived before it fetches again? When
 * Metadata names a leader epoch newer than the one the position is known good under,
 * and the position's own epoch is known (a seek to a bare offset has none, as in Java). */
static bool part_needs_validation(const struct consumer_part *part, int32_t leader_epoch)
{
	return part->position_epoch >= 0 && leader_epoch >= 0 && leader_epoch > part->leader_epoch;
}

static void validate_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct part_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	int32_t topic_count = part_req_topic_count(req);
	struct tl_offset_for_leader_epoch_request msg;
	tl_offset_for_leader_epoch_request_defaults(&msg);
	msg.replica_id = -1; /* a consumer, not a follower */
	msg.topics_count = topic_count;
	msg.topics = calloc((size_t)topic_count + 1, sizeof(*msg.topics));
	struct tl_offset_for_leader_epoch_request_offset_for_leader_partition *ps =
		calloc((size_t)req->count + 1, sizeof(*ps));
	if (!msg.topics || !ps) {
		body->failed = true;
		goto out;
	}
	int32_t t = -1;
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = &consumer->parts[req->indexes[i]];
		if (t < 0 || !tl_str_eq_c(msg.topics[t].topic, part->topic)) {
			t++;
			tl_offset_for_leader_epoch_request_offset_for_leader_topic_defaults(
				&msg.topics[t]);
			msg.topics[t].topic = tl_str_of(part->topic);
			msg.topics[t].partitions = &ps[i];
		}
		msg.topics[t].partitions_count++;
		tl_offset_for_leader_epoch_request_offset_for_leader_partition_defaults(&ps[i]);
		ps[i].partition = part->partition;
		ps[i].current_leader_epoch = req->leader_epochs[i];
		ps[i].leader_epoch = part->position_epoch;
	}
	tl_offset_for_leader_epoch_request_encode(body, version, &msg);
out:
	free(msg.topics);
	free(ps);
}

/* The leader's answer for @part, asked under @leader_epoch: where the position's epoch
 * ends in the leader's log (Kafka's SubscriptionState.maybeCompleteValidation). */
static void validate_apply(struct tl_consumer *consumer, struct consumer_part *part,
			   int32_t leader_epoch,
			   const struct tl_offset_for_leader_epoch_response_epoch_end_offset *r,
			   tl_err err)
{
	part->state = PART_FETCHING;
	if (err == TL_OK && r->error_code != 0)
		err = (tl_err)r->error_code;
	if (err != TL_OK) {
		if (tl_err_is_retriable(err) || err == TL_ERR_FENCED_LEADER_EPOCH ||
		    err == TL_ERR_UNKNOWN_LEADER_EPOCH) {
			tl_client_metadata_request(consumer->client);
			part_retry_later(consumer, part); /* asked again: leader_epoch unchanged */
			return;
		}
		part_pause(consumer, part, err, "OffsetForLeaderEpoch failed");
		return;
	}
	if (r->end_offset >= 0 && r->leader_epoch >= 0 && r->end_offset >= part->position) {
		part->leader_epoch = leader_epoch; /* the position survived */
		return;
	}
	if (r->end_offset < 0 || r->leader_epoch < 0) {
		/* The leader knows no epoch at or below the position's: nothing to go back
		 * to but the reset policy, as Java's consumer does. */
		if (consumer->reset_to == 0) {
			part_pause(
				consumer, part, TL_ERR_OFFSET_OUT_OF_RANGE,
				"log truncation detected: the leader holds no record of the position's leader epoch and auto.offset.reset=none; seek to a valid offset");
			return;
		}
		part->state = PART_NEED_OFFSET;
		part->start = consumer->reset_to;
		part->epoch++;
		return;
	}
	/* Truncated below the position: records this consumer handed out were lost by an
	 * unclean election, and the offsets from the end on hold other records now. */
	if (consumer->reset_to == 0) {
		char detail[192];
		snprintf(
			detail, sizeof(detail),
			"log truncation detected: the leader's log ends at %lld for leader epoch %d, below the position %lld, and auto.offset.reset=none; seek to continue",
			(long long)r->end_offset, r->leader_epoch, (long long)part->position);
		part_pause(consumer, part, TL_ERR_OFFSET_OUT_OF_RANGE, detail);
		return;
	}
	/* Go back to the first offset known to diverge: every record the new leader
	 * holds there is read, none skipped (Java and librdkafka do the same). */
	part->position = r->end_offset;
	part->fetch_offset = r->end_offset;
	part->position_epoch = r->leader_epoch;
	part->leader_epoch = leader_epoch;
	part->epoch++; /* invariant 1 */
}

static void validate_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct part_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	struct tl_arena arena;
	tl_arena_init(&arena, CONSUMER_ARENA_MAX);
	struct tl_offset_for_leader_epoch_response resp;
	if (err == TL_OK)
		err = tl_offset_for_leader_epoch_response_decode(body, version, &arena, &resp);
	for (int32_t t = 0; err == TL_OK && t < resp.topics_count; t++) {
		const struct tl_offset_for_leader_epoch_response_offset_for_leader_topic_result
			*topic = &resp.topics[t];
		for (int32_t p = 0; p < topic->partitions_count; p++) {
			const struct tl_offset_for_leader_epoch_response_epoch_end_offset *r =
				&topic->partitions[p];
			int32_t index = part_find_str(consumer, topic->topic, r->partition);
			struct consumer_part *part = part_req_current(req, index);
			if (part && part->state == PART_VALIDATING)
				validate_apply(consumer, part, part_req_leader_epoch(req, index), r,
					       TL_OK);
		}
	}
	/* Partitions the response did not answer ask again. */
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = part_req_current(req, req->indexes[i]);
		if (part && part->state == PART_VALIDATING)
			validate_apply(consumer, part, req->leader_epochs[i], NULL,
				       err != TL_OK ? err : TL_ERR_NETWORK_EXCEPTION);
	}
	tl_arena_deinit(&arena);
	part_req_free(req);
}

/* Sends OffsetForLeaderEpoch for the partitions led by @node whose position needs it.
 * Each drops what it buffered (a seek to its position): records fetched from the old
 * leader past the position may be the lost ones. */
static void validate_for_node(struct tl_consumer *consumer, int32_t node, int64_t now)
{
	struct part_req *req = NULL;
	for (int32_t i = 0; i < consumer->part_count; i++) {
		struct consumer_part *part = &consumer->parts[i];
		if (part->state != PART_FETCHING || part->retry_at_ns > now ||
		    tl_client_leader(consumer->client, part->topic, part->partition) != node)
			continue;
		int32_t leader_epoch = part_leader_epoch(consumer, part);
		if (!part_needs_validation(part, leader_epoch))
			continue;
		if (!req) {
			req = part_req_create(consumer, node, consumer->part_count);
			if (!req)
				return;
		}
		part->epoch++; /* invariant 1: buffered chunks and the Fetch in flight go */
		part->fetch_offset = part->position;
		part_req_add(req, i, leader_epoch);
	}
	if (!req)
		return;
	tl_err err = tl_consumer_send(consumer, node, TL_CLIENT_API_OFFSET_FOR_LEADER_EPOCH,
				      validate_encode, req, validate_done, req);
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = &consumer->parts[req->indexes[i]];
		if (err == TL_OK)
			part->state = PART_VALIDATING;
		else if (err == TL_ERR_UNSUPPORTED_VERSION)
			part->leader_epoch = req->leader_epochs[i]; /* a broker without KIP-320 */
		else
			part_retry_later(consumer, part);
	}
	if (err != TL_OK)
		part_req_free(req);
}

static void fetch_send_to_node(struct tl_consumer *consumer, int32_t node, int64_t now)
{
	struct fetch_req *freq = calloc(1, sizeof(*freq));
	if (!freq)
		return;
	freq->parts = part_req_create(consumer, node, consumer->part_count);
	freq->offsets = calloc((size_t)consumer->part_count + 1, sizeof(*freq->offsets));
	if (!freq->parts || !freq->offsets)
		goto out_free;
	for (int32_t i = 0; i < consumer->part_count; i++) {
		struct consumer_part *part = &consumer->parts[i];
		if (!part_wants_fetch(consumer, part, now) ||
		    tl_client_leader(consumer->client, part->topic, part->partition) != node)
			continue;
		int32_t leader_epoch = part_leader_epoch(consumer, part);
		if (part_needs_validation(part, leader_epoch))
			continue;
		freq->offsets[freq->parts->count] = part->fetch_offset;
		part_req_add(freq->parts, i, leader_epoch);
	}
	if (freq->parts->count == 0)
		goto out_free;
	if (tl_consumer_send(consumer, node, TL_CLIENT_API_FETCH, fetch_encode, freq, fetch_done,
			     freq) != TL_OK)
		goto out_free;
	for (int32_t i = 0; i < freq->parts->count; i++) {
		struct consumer_part *part = &consumer->parts[freq->parts->indexes[i]];
		part->fetch_in_flight = true;
		/* What this Fetch returns is read under its epoch (a deposed leader answers
		 * FENCED_LEADER_EPOCH instead), so the position is good under it. */
		part->leader_epoch = TL_MAX(part->leader_epoch, freq->parts->leader_epochs[i]);
	}
	consumer->fetch_nodes[consumer->fetch_node_count++] = node;
	return;

out_free:
	if (freq->parts)
		part_req_free(freq->parts);
	free(freq->offsets);
	free(freq);
}

/* Sends what is due: ListOffsets, OffsetFetch, one Fetch per leader without one. */
static void consumer_requests(struct tl_consumer *consumer)
{
	int64_t now = tl_mono_ns();
	offsets_fetch_committed(consumer, now);
	for (int32_t i = 0; i < consumer->part_count; i++) {
		struct consumer_part *part = &consumer->parts[i];
		bool wants = (part->state == PART_NEED_OFFSET && part->retry_at_ns <= now &&
			      part->start != TL_CONSUMER_OFFSET_COMMITTED) ||
			     part_wants_fetch(consumer, part, now);
		if (!wants)
			continue;
		int32_t leader = tl_client_leader(consumer->client, part->topic, part->partition);
		if (leader < 0) {
			const struct tl_client_topic *topic =
				tl_client_topic(consumer->client, part->topic);
			if (topic && topic->partition_count > 0 &&
			    part->partition >= topic->partition_count)
				part_pause(
					consumer, part, TL_ERR_UNKNOWN_TOPIC_OR_PARTITION,
					"the topic has fewer partitions; assign an existing partition");
			else
				tl_client_metadata_request(consumer->client);
			continue;
		}
		if (!tl_client_node_ready(consumer->client, leader))
			continue;
		if (part->state == PART_NEED_OFFSET) {
			offsets_list_for_node(consumer, leader, now);
		} else if (part_needs_validation(part, part_leader_epoch(consumer, part))) {
			validate_for_node(consumer, leader, now);
		} else if (!fetch_node_busy(consumer, leader) &&
			   consumer->fetch_node_count < CONSUMER_FETCH_NODES_MAX) {
			fetch_send_to_node(consumer, leader, now);
		}
	}
}

/* ---- records ---- */

static bool chunk_producer_aborting(const struct fetch_chunk *chunk, int64_t producer_id)
{
	for (int32_t i = 0; i < chunk->open_abort_count; i++)
		if (chunk->open_aborts[i] == producer_id)
			return true;
	return false;
}

static void chunk_abort_open(struct fetch_chunk *chunk, int64_t producer_id)
{
	if (chunk_producer_aborting(chunk, producer_id))
		return;
	int64_t *p =
		realloc(chunk->open_aborts, (size_t)(chunk->open_abort_count + 1) * sizeof(*p));
	if (!p)
		return;
	chunk->open_aborts = p;
	chunk->open_aborts[chunk->open_abort_count++] = producer_id;
}

static void chunk_abort_close(struct fetch_chunk *chunk, int64_t producer_id)
{
	for (int32_t i = 0; i < chunk->open_abort_count; i++) {
		if (chunk->open_aborts[i] == producer_id) {
			chunk->open_aborts[i] = chunk->open_aborts[--chunk->open_abort_count];
			return;
		}
	}
}

/* Decides whether the batch just read is handed out (read_committed filtering, as
 * Kafka's Fetcher does): aborted transactions whose first offset is at or before the
 * batch's last offset become open; a transactional batch of an open producer is
 * skipped; its ABORT marker closes it. Control batches are never handed out. */
static bool chunk_batch_visible(struct tl_consumer *consumer, struct fetch_chunk *chunk,
				const struct tl_batch_header *h)
{
	if (consumer->isolation_level == 0)
		return !tl_batch_is_control(h);
	while (chunk->aborted_next < chunk->aborted_count &&
	       chunk->aborted[chunk->aborted_next].first_offset <= tl_batch_last_offset(h)) {
		chunk_abort_open(chunk, chunk->aborted[chunk->aborted_next].producer_id);
		chunk->aborted_next++;
	}
	if (tl_batch_is_control(h)) {
		struct tl_record rec;
		if (tl_records_iter_next(&chunk->iter, &rec) == TL_OK &&
		    tl_records_control_type(&rec) == TL_CONTROL_ABORT)
			chunk_abort_close(chunk, h->producer_id);
		return false;
	}
	return !(tl_batch_is_transactional(h) && chunk_producer_aborting(chunk, h->producer_id));
}

/* The batch-level fields of the record handed out next. */
static void record_fill_batch(struct tl_consumer_record *out, const struct tl_batch_header *h)
{
	out->producer_id = h->producer_id;
	out->producer_epoch = h->producer_id >= 0 ? h->producer_epoch : -1;
	out->is_transactional = tl_batch_is_transactional(h);
	out->control_type = TL_CONSUMER_CONTROL_NONE;
}

/* Hands out a control batch as one record (return.control.records=true). */
static void control_fill(struct tl_consumer *consumer, const struct consumer_part *part,
			 const struct tl_batch_header *h, int control_type)
{
	struct tl_consumer_record *out = &consumer->record;
	memset(out, 0, sizeof(*out));
	out->topic = part->topic;
	out->partition = part->partition;
	out->offset = h->base_offset;
	out->timestamp_ms = h->max_timestamp;
	out->key_len = -1;
	out->value_len = -1;
	out->headers = consumer->headers;
	record_fill_batch(out, h);
	out->sequence = -1;
	out->control_type = control_type == TL_BATCH_CONTROL_ABORT    ? TL_CONSUMER_CONTROL_ABORT
			    : control_type == TL_BATCH_CONTROL_COMMIT ? TL_CONSUMER_CONTROL_COMMIT
								      : TL_CONSUMER_CONTROL_OTHER;
}

static tl_err record_fill(struct tl_consumer *consumer, const struct consumer_part *part,
			  const struct tl_batch_header *batch, const struct tl_record *rec)
{
	if (rec->header_count > consumer->headers_cap) {
		struct tl_consumer_header *h =
			realloc(consumer->headers, (size_t)rec->header_count * sizeof(*h));
		if (!h)
			return TL_ERR_NOMEM;
		consumer->headers = h;
		consumer->headers_cap = rec->header_count;
	}
	for (int32_t i = 0; i < rec->header_count; i++) {
		consumer->headers[i].key = rec->headers[i].key.ptr;
		consumer->headers[i].key_len = rec->headers[i].key.len;
		consumer->headers[i].value =
			rec->headers[i].value.len >= 0 ? rec->headers[i].value.ptr : NULL;
		consumer->headers[i].value_len = rec->headers[i].value.len;
	}
	struct tl_consumer_record *out = &consumer->record;
	out->topic = part->topic;
	out->partition = part->partition;
	out->offset = rec->offset;
	out->timestamp_ms = rec->timestamp_ms;
	out->key = rec->key.len >= 0 ? rec->key.ptr : NULL;
	out->key_len = rec->key.len;
	out->value = rec->value.len >= 0 ? rec->value.ptr : NULL;
	out->value_len = rec->value.len;
	out->header_count = rec->header_count;
	out->headers = consumer->headers;
	record_fill_batch(out, batch);
	out->sequence = rec->sequence;
	return TL_OK;
}

/* Retires the head chunk; it is freed at the next poll (its records may be in use). */
static void chunk_retire(struct tl_consumer *consumer, struct fetch_chunk *chunk, bool current)
{
	consumer->chunk_head = chunk->next;
	if (!consumer->chunk_head)
		consumer->chunk_tail = NULL;
	TL_ASSERT(consumer->buffered_bytes >= chunk->len);
	consumer->buffered_bytes -= chunk->len;
	if (current) {
		struct consumer_part *part = &consumer->parts[chunk->part_index];
		TL_ASSERT(part->buffered_bytes >= chunk->len);
		part->buffered_bytes -= chunk->len;
	}
	chunk_park(consumer, chunk);
}

/* The next record of @chunk at or past its partition's position: TL_OK, TL_ERR_NOT_FOUND
 * when the chunk is exhausted, or an error that pauses the partition. */
static tl_err chunk_next(struct tl_consumer *consumer, struct fetch_chunk *chunk,
			 struct consumer_part *part)
{
	if (!chunk->started) {
		tl_records_iter_init(&chunk->iter, chunk->data, chunk->len);
		chunk->iter.verify_crc = consumer->check_crcs;
		chunk->started = true;
	}
	for (;;) {
		if (!chunk->in_batch) {
			struct tl_batch_header h;
			const uint8_t *batch_data;
			size_t batch_len;
			tl_err err = tl_records_iter_next_batch(&chunk->iter, &h, &batch_data,
								&batch_len);
			if (err != TL_OK)
				return err;
			chunk->batch_last_offset = tl_batch_last_offset(&h);
			if (chunk->batch_last_offset < part->position)
				continue; /* before the position: Fetch returns whole batches */
			bool visible = chunk_batch_visible(consumer, chunk, &h);
			if (!visible) {
				part->position = chunk->batch_last_offset + 1;
				part->position_epoch = h.partition_leader_epoch;
				if (consumer->return_control && tl_batch_is_control(&h)) {
					control_fill(consumer, part, &h,
						     tl_batch_control_type(batch_data, batch_len));
					return TL_OK;
				}
				continue;
			}
			chunk->in_batch = true;
		}
		struct tl_record rec;
		tl_err err = tl_records_iter_next(&chunk->iter, &rec);
		if (err == TL_ERR_NOT_FOUND) {
			chunk->in_batch = false;
			if (chunk->batch_last_offset + 1 > part->position) {
				part->position = chunk->batch_last_offset + 1;
				part->position_epoch = chunk->iter.batch.partition_leader_epoch;
			}
			continue;
		}
		if (err != TL_OK)
			return err;
		if (rec.offset < part->position)
			continue;
		if (part->skip_before_ms >= 0) {
			if (rec.timestamp_ms < part->skip_before_ms) {
				part->position = rec.offset + 1;
				part->position_epoch = chunk->iter.batch.partition_leader_epoch;
				continue;
			}
			part->skip_before_ms = -1;
		}
		err = record_fill(consumer, part, &chunk->iter.batch, &rec);
		if (err != TL_OK)
			return err;
		part->position = rec.offset + 1;
		part->position_epoch = chunk->iter.batch.partition_leader_epoch;
		return TL_OK;
	}
}

/* Hands out the next buffered record, if any. */
static tl_err records_next(struct tl_consumer *consumer, const struct tl_consumer_record **out)
{
	while (consumer->chunk_head) {
		struct fetch_chunk *chunk = consumer->chunk_head;
		bool current = chunk->assign_gen == consumer->assign_gen &&
			       chunk->part_epoch == consumer->parts[chunk->part_index].epoch;
		if (!current) {
			/* Stale since the partition's seek or reset (invariant 1). */
			if (chunk->assign_gen == consumer->assign_gen) {
				struct consumer_part *part = &consumer->parts[chunk->part_index];
				TL_ASSERT(part->buffered_bytes >= chunk->len);
				part->buffered_bytes -= chunk->len;
			}
			consumer->chunk_head = chunk->next;
			if (!consumer->chunk_head)
				consumer->chunk_tail = NULL;
			consumer->buffered_bytes -= chunk->len;
			chunk_free(chunk);
			continue;
		}
		struct consumer_part *part = &consumer->parts[chunk->part_index];
		tl_err err = chunk_next(consumer, chunk, part);
		if (err == TL_OK) {
			*out = &consumer->record;
			return TL_OK;
		}
		chunk_retire(consumer, chunk, true);
		if (err != TL_ERR_NOT_FOUND) {
			part_pause(
				consumer, part, err,
				err == TL_ERR_UNSUPPORTED_COMPRESSION_TYPE
					? "records use a compression libtally cannot read (it reads none, gzip, snappy, lz4 and zstd)"
					: "a fetched record batch is corrupt or too large");
			part->error_reported = true;
			return err;
		}
		return TL_ERR_AGAIN; /* a chunk ran out: time for an I/O round */
	}
	return TL_ERR_NOT_FOUND;
}

/* An error waiting to be reported, or TL_OK. */
static tl_err pending_error(struct tl_consumer *consumer)
{
	if (consumer->group.error != TL_OK && !consumer->group.error_reported) {
		consumer->group.error_reported = true;
		return consumer->group.error;
	}
	for (int32_t i = 0; i < consumer->part_count; i++) {
		struct consumer_part *part = &consumer->parts[i];
		if (part->state == PART_PAUSED && !part->error_reported) {
			part->error_reported = true;
			tl_consumer_fail(consumer, part->error, "%s [%d]: %s", part->topic,
					 part->partition,
					 part->error_detail ? part->error_detail
							    : tl_err_message(part->error));
			return part->error;
		}
	}
	return TL_OK;
}

/* ---- commit ---- */

/* A tl_consumer_commit() waiting for its answer. Shared by the waiter and the callback;
 * whoever comes last frees it: a commit that timed out returns first and leaves it
 * abandoned to the late answer. */
struct commit_wait {
	bool done;
	bool abandoned;
	tl_err result;
};

struct commit_req {
	struct part_req *parts;
	int64_t *offsets;
	int32_t generation_id; /* the group's, when sent by a member; else -1 */
	bool async;
	struct commit_wait *wait; /* sync only */
};

static void commit_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct commit_req *creq = arg;
	struct part_req *req = creq->parts;
	struct tl_consumer *consumer = req->consumer;
	int32_t topic_count = part_req_topic_count(req);
	struct tl_offset_commit_request oc;
	tl_offset_commit_request_defaults(&oc);
	oc.group_id = tl_str_of(consumer->group_id);
	if (tl_consumer_group_member(consumer)) {
		oc.generation_id_or_member_epoch = consumer->group.generation_id;
		oc.member_id = tl_str_of(consumer->group.member_id);
		oc.group_instance_id = tl_str_of(consumer->group_instance_id);
	}
	oc.topics_count = topic_count;
	oc.topics = calloc((size_t)topic_count + 1, sizeof(*oc.topics));
	struct tl_offset_commit_request_offset_commit_request_partition *ps =
		calloc((size_t)req->count + 1, sizeof(*ps));
	if (!oc.topics || !ps) {
		body->failed = true;
		goto out;
	}
	int32_t t = -1;
	for (int32_t i = 0; i < req->count; i++) {
		struct consumer_part *part = &consumer->parts[req->indexes[i]];
		if (t < 0 || !tl_str_eq_c(oc.topics[t].name, part->topic)) {
			t++;
			tl_offset_commit_request_offset_commit_request_topic_defaults(
				&oc.topics[t]);
			oc.topics[t].name = tl_str_of(part->topic);
			oc.topics[t].partitions = &ps[i];
		}
		oc.topics[t].partitions_count++;
		tl_offset_commit_request_offset_commit_request_partition_defaults(&ps[i]);
		ps[i].partition_index = part->partition;
		ps[i].committed_offset = creq->offsets[i];
		/* KIP-320: whoever starts from it can ask whether it survived (v6+). */
		ps[i].committed_leader_epoch = req->leader_epochs[i];
	}
	tl_offset_commit_request_encode(body, version, &oc);
out:
	free(oc.topics);
	free(ps);
}

static const char *commit_detail(tl_err err)
{
	switch (err) {
	case TL_ERR_ILLEGAL_GENERATION:
	case TL_ERR_UNKNOWN_MEMBER_ID:
	case TL_ERR_REBALANCE_IN_PROGRESS:
		return "the group rebalanced; the partitions may belong to another member now, so records since the last commit may be delivered again";
	case TL_ERR_FENCED_INSTANCE_ID:
		return "another consumer joined with the same group.instance.id and fenced this one; give each consumer its own group.instance.id and destroy this one";
	case TL_ERR_COORDINATOR_NOT_AVAILABLE:
	case TL_ERR_NOT_COORDINATOR:
	case TL_ERR_NETWORK_EXCEPTION:
	case TL_ERR_REQUEST_TIMED_OUT:
		return "the group coordinator could not be reached; commit again";
	case TL_ERR_TIMED_OUT:
		return "the commit did not complete within the timeout; commit again or raise the timeout";
	default:
		return tl_err_message(err);
	}
}

static void commit_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct commit_req *creq = arg;
	struct part_req *req = creq->parts;
	struct tl_consumer *consumer = req->consumer;
	consumer->commits_in_flight--;
	struct tl_arena arena;
	tl_arena_init(&arena, CONSUMER_ARENA_MAX);
	struct tl_offset_commit_response resp;
	if (err == TL_OK)
		err = tl_offset_commit_response_decode(body, version, &arena, &resp);
	tl_err first = err;
	for (int32_t t = 0; err == TL_OK && t < resp.topics_count; t++) {
		const struct tl_offset_commit_response_offset_commit_response_topic *topic =
			&resp.topics[t];
		for (int32_t p = 0; p < topic->partitions_count; p++) {
			tl_err perr = (tl_err)topic->partitions[p].error_code;
			int32_t index = part_find_str(consumer, topic->name,
						      topic->partitions[p].partition_index);
			if (perr != TL_OK && first == TL_OK)
				first = perr;
			for (int32_t i = 0; perr == TL_OK && index >= 0 && i < req->count; i++)
				if (req->indexes[i] == index &&
				    req->assign_gen == consumer->assign_gen)
					consumer->parts[index].committed = creq->offsets[i];
		}
	}
	if (err_is_coordinator_moved(first))
		tl_consumer_coordinator_lost(consumer);
	/* Only about the generation it was sent in: a late answer from an earlier one must
	 * not take this generation's partitions (ILLEGAL_GENERATION is a loss). */
	if (first == TL_ERR_FENCED_INSTANCE_ID ||
	    ((first == TL_ERR_ILLEGAL_GENERATION || first == TL_ERR_UNKNOWN_MEMBER_ID ||
	      first == TL_ERR_REBALANCE_IN_PROGRESS) &&
	     creq->generation_id == consumer->group.generation_id))
		tl_consumer_group_rejoin(consumer, first);
	if (first != TL_OK)
		tl_consumer_fail(consumer, first, "commit for group.id=%s failed: %s (%s)",
				 consumer->group_id, commit_detail(first), tl_err_name(first));
	if (creq->async) {
		if (consumer->commit_cb && err != TL_ERR_CLOSED)
			consumer->commit_cb(first, first == TL_OK ? NULL : consumer->last_error,
					    consumer->commit_opaque);
	} else if (creq->wait->abandoned) {
		free(creq->wait);
	} else {
		creq->wait->done = true;
		creq->wait->result = first;
	}
	tl_arena_deinit(&arena);
	part_req_free(req);
	free(creq->offsets);
	free(creq);
}

/* Sends one OffsetCommit of every resolved position. TL_ERR_AGAIN: coordinator not ready;
 * TL_ERR_NOT_FOUND: nothing to commit. */
static tl_err commit_send(struct tl_consumer *consumer, bool async, bool only_changed,
			  struct commit_wait *wait)
{
	if (!consumer->group_id)
		return tl_consumer_fail(consumer, TL_ERR_INVALID,
					"commit needs group.id; set group.id in the configuration");
	if (consumer->group.fatal)
		return tl_consumer_group_fatal(consumer);
	if (!tl_consumer_coordinator_ready(consumer))
		return TL_ERR_AGAIN;
	struct commit_req *creq = calloc(1, sizeof(*creq));
	if (!creq)
		return TL_ERR_NOMEM;
	creq->parts = part_req_create(consumer, consumer->coordinator, consumer->part_count);
	creq->offsets = calloc((size_t)consumer->part_count + 1, sizeof(*creq->offsets));
	tl_err err = TL_ERR_NOMEM;
	if (!creq->parts || !creq->offsets)
		goto out_free;
	for (int32_t i = 0; i < consumer->part_count; i++) {
		struct consumer_part *part = &consumer->parts[i];
		if (part->position < 0 || (only_changed && part->position == part->committed))
			continue;
		creq->offsets[creq->parts->count] = part->position;
		part_req_add(creq->parts, i, part->position_epoch);
	}
	err = TL_ERR_NOT_FOUND;
	if (creq->parts->count == 0)
		goto out_free;
	creq->async = async;
	creq->wait = wait;
	creq->generation_id =
		tl_consumer_group_member(consumer) ? consumer->group.generation_id : -1;
	err = tl_consumer_send(consumer, consumer->coordinator, TL_CLIENT_API_OFFSET_COMMIT,
			       commit_encode, creq, commit_done, creq);
	if (err != TL_OK)
		goto out_free;
	consumer->commits_in_flight++;
	return TL_OK;

out_free:
	if (creq->parts)
		part_req_free(creq->parts);
	free(creq->offsets);
	free(creq);
	return err;
}

static tl_err commit_timed_out(struct tl_consumer *consumer)
{
	return tl_consumer_fail(consumer, TL_ERR_TIMED_OUT, "commit: %s%s%s",
				commit_detail(TL_ERR_TIMED_OUT),
				tl_client_last_error(consumer->client)[0] ? "; " : "",
				tl_client_last_error(consumer->client));
}

TL_EXPORT tl_err tl_consumer_commit(struct tl_consumer *consumer, int timeout_ms)
{
	int64_t deadline = tl_mono_ns() + (int64_t)TL_MAX(timeout_ms, 0) * 1000000;
	struct commit_wait *wait = calloc(1, sizeof(*wait));
	if (!wait)
		return TL_ERR_NOMEM;
	for (;;) {
		tl_err err = commit_send(consumer, false, false, wait);
		if (err == TL_OK)
			break;
		if (err != TL_ERR_AGAIN) {
			free(wait);
			return err == TL_ERR_NOT_FOUND ? TL_OK : err;
		}
		if (tl_mono_ns() >= deadline) {
			free(wait);
			return commit_timed_out(consumer);
		}
		tl_client_poll(consumer->client, 10);
		consumer_requests(consumer);
	}
	/* The caller's deadline bounds the wait, as Java's commitSync(Duration): the answer
	 * may come later (or the request time out after request.timeout.ms); commit_done
	 * then frees the abandoned wait. */
	for (;;) {
		if (wait->done) {
			tl_err result = wait->result;
			free(wait);
			return result;
		}
		int64_t left_ms = (deadline - tl_mono_ns()) / 1000000;
		if (left_ms <= 0) {
			wait->abandoned = true;
			return commit_timed_out(consumer);
		}
		tl_client_poll(consumer->client, (int)TL_MIN(left_ms, 100));
	}
}

TL_EXPORT tl_err tl_consumer_commit_async(struct tl_consumer *consumer)
{
	for (int tries = 0; tries < 2; tries++) {
		tl_err err = commit_send(consumer, true, false, NULL);
		if (err == TL_ERR_NOT_FOUND)
			return TL_OK;
		if (err != TL_ERR_AGAIN)
			return err;
		tl_client_poll(consumer->client, 0);
	}
	return tl_consumer_fail(
		consumer, TL_ERR_AGAIN,
		"commit_async: the group coordinator is not known yet; poll and try again");
}

void tl_consumer_commit_for_rebalance(struct tl_consumer *consumer)
{
	/* Waited for, as Java's onJoinPrepare: the next owner starts where it ends. */
	if (consumer->auto_commit)
		(void)tl_consumer_commit(consumer, consumer->request_timeout_ms);
}

static void auto_commit_maybe(struct tl_consumer *consumer, int64_t now)
{
	if (!consumer->auto_commit || !consumer->group_id || now < consumer->next_auto_commit_ns ||
	    consumer->commits_in_flight > 0)
		return;
	tl_err err = commit_send(consumer, true, true, NULL);
	if (err == TL_OK || err == TL_ERR_NOT_FOUND)
		consumer->next_auto_commit_ns = now + consumer->auto_commit_interval_ns;
}

/* ---- poll ---- */

static void consumer_io(struct tl_consumer *consumer, int timeout_ms)
{
	consumer_requests(consumer);
	tl_consumer_group_io(consumer);
	auto_commit_maybe(consumer, tl_mono_ns());
	tl_client_poll(consumer->client, timeout_ms);
	consumer_requests(consumer);
	consumer->last_io_ns = tl_mono_coarse_ns();
}

TL_EXPORT tl_err tl_consumer_poll(struct tl_consumer *consumer, int timeout_ms,
				  const struct tl_consumer_record **out)
{
	*out = NULL;
	if (consumer->in_rebalance_cb)
		return tl_consumer_fail(
			consumer, TL_ERR_INVALID,
			"poll: called from the rebalance callback; return from it first");
	retired_free(consumer);
	/* One coarse clock reading a record on the fast path: the I/O interval is a
	 * millisecond, the coarse clock's tick at most a few. */
	if (tl_mono_coarse_ns() - consumer->last_io_ns > CONSUMER_IO_INTERVAL_NS)
		consumer_io(consumer, 0);
	int64_t deadline = 0; /* read once no record is ready */
	for (;;) {
		/* Before any record: none of a partition not told, none of one taken back. */
		tl_err err = tl_consumer_group_events(consumer);
		if (err != TL_OK)
			return err;
		err = tl_consumer_group_fatal(consumer);
		if (err != TL_OK)
			return err;
		err = records_next(consumer, out);
		if (err == TL_OK)
			return TL_OK;
		if (err == TL_ERR_AGAIN) {
			consumer_io(consumer, 0);
			retired_free(consumer);
			continue;
		}
		if (err != TL_ERR_NOT_FOUND)
			return err;
		err = pending_error(consumer);
		if (err != TL_OK)
			return err;
		int64_t now = tl_mono_ns();
		if (deadline == 0)
			deadline = now + (int64_t)TL_MAX(timeout_ms, 0) * 1000000;
		int64_t left_ms = (deadline - now) / 1000000;
		if (left_ms <= 0 && now >= deadline) {
			consumer_io(consumer, 0);
			if (consumer->chunk_head)
				continue;
			return TL_ERR_TIMED_OUT;
		}
		consumer_io(consumer, (int)TL_MIN(left_ms, 100));
	}
}

TL_EXPORT tl_err tl_consumer_group_metadata(struct tl_consumer *consumer,
					    struct tl_consumer_group_metadata *out)
{
	if (!consumer->group_id)
		return TL_ERR_INVALID;
	out->group_id = consumer->group_id;
	out->generation_id = -1;
	out->member_id = "";
	out->group_instance_id = consumer->group_instance_id;
	/* Only a member of the current generation names it: that is what lets the group
	 * coordinator refuse a zombie's transactional commit (KIP-447). */
	if (tl_consumer_group_member(consumer) && consumer->group.member_id) {
		/* The same member id: the copy handed out before stays (and stays valid). */
		if (!consumer->metadata_member_id ||
		    strcmp(consumer->metadata_member_id, consumer->group.member_id) != 0) {
			char *copy = strdup(consumer->group.member_id);
			if (!copy)
				return TL_ERR_NOMEM;
			free(consumer->metadata_member_id);
			consumer->metadata_member_id = copy;
		}
		out->generation_id = consumer->group.generation_id;
		out->member_id = consumer->metadata_member_id;
	}
	return TL_OK;
}

TL_EXPORT const char *tl_consumer_last_error(struct tl_consumer *consumer)
{
	return consumer->last_error;
}

/* ---- create and destroy ---- */

static tl_err consumer_settings(struct tl_consumer *consumer, const struct tl_consumer_conf *cc,
				char *errstr, size_t errstr_size)
{
	const struct tl_conf *conf = &cc->conf;
	const char *group_id = tl_conf_str(conf, "group.id");
	if (group_id && !group_id[0]) {
		tl_conf_errstr(errstr, errstr_size,
			       "group.id is empty; set a group name or leave group.id unset");
		return TL_ERR_INVALID;
	}
	if (group_id && !(consumer->group_id = strdup(group_id)))
		return TL_ERR_NOMEM;
	const char *instance = tl_conf_str(conf, "group.instance.id");
	if (instance && !(consumer->group_instance_id = strdup(instance)))
		return TL_ERR_NOMEM;
	consumer->isolation_level =
		strcmp(tl_conf_str(conf, "isolation.level"), "read_committed") == 0 ? 1 : 0;
	const char *reset = tl_conf_str(conf, "auto.offset.reset");
	consumer->reset_to = strcmp(reset, "earliest") == 0 ? TL_CONSUMER_OFFSET_BEGINNING
			     : strcmp(reset, "latest") == 0 ? TL_CONSUMER_OFFSET_END
							    : 0;
	consumer->auto_commit = tl_conf_bool(conf, "enable.auto.commit");
	consumer->auto_commit_interval_ns = tl_conf_int(conf, "auto.commit.interval.ms") * 1000000;
	consumer->fetch_min_bytes = (int32_t)tl_conf_int(conf, "fetch.min.bytes");
	consumer->fetch_max_bytes = (int32_t)tl_conf_int(conf, "fetch.max.bytes");
	consumer->partition_max_bytes = (int32_t)tl_conf_int(conf, "max.partition.fetch.bytes");
	consumer->fetch_max_wait_ms = (int32_t)tl_conf_int(conf, "fetch.max.wait.ms");
	consumer->request_timeout_ms = (int32_t)tl_conf_int(conf, "request.timeout.ms");
	consumer->retry_backoff_ns = tl_conf_int(conf, "retry.backoff.ms") * 1000000;
	consumer->session_timeout_ms = (int32_t)tl_conf_int(conf, "session.timeout.ms");
	consumer->heartbeat_interval_ms = (int32_t)tl_conf_int(conf, "heartbeat.interval.ms");
	consumer->max_poll_interval_ms = (int32_t)tl_conf_int(conf, "max.poll.interval.ms");
	consumer->check_crcs = tl_conf_bool(conf, "check.crcs");
	consumer->return_control = tl_conf_bool(conf, "return.control.records");
	consumer->commit_cb = cc->commit_cb;
	consumer->commit_opaque = cc->commit_opaque;
	consumer->rebalance_cb = cc->rebalance_cb;
	consumer->rebalance_opaque = cc->rebalance_opaque;
	if (consumer->request_timeout_ms <= consumer->fetch_max_wait_ms) {
		tl_conf_errstr(
			errstr, errstr_size,
			"request.timeout.ms (%d) must be larger than fetch.max.wait.ms (%d); raise request.timeout.ms",
			consumer->request_timeout_ms, consumer->fetch_max_wait_ms);
		return TL_ERR_INVALID;
	}
	if (!tl_conf_str(conf, "bootstrap.servers")) {
		tl_conf_errstr(errstr, errstr_size,
			       "bootstrap.servers is not set; set it to host:port of a broker");
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

TL_EXPORT tl_err tl_consumer_create(const struct tl_consumer_conf *cc, struct tl_consumer **out,
				    char *errstr, size_t errstr_size)
{
	tl_conf_errstr(errstr, errstr_size, "%s", "");
	if (!cc || !out) {
		tl_conf_errstr(errstr, errstr_size,
			       "tl_consumer_create: conf and out are required");
		return TL_ERR_INVALID;
	}
	struct tl_consumer *consumer = calloc(1, sizeof(*consumer));
	if (!consumer)
		return TL_ERR_NOMEM;
	consumer->coordinator = -1;
	consumer->coordinator_asked = TL_CLIENT_NODE_ANY;
	consumer->fetch_nodes = calloc(CONSUMER_FETCH_NODES_MAX, sizeof(*consumer->fetch_nodes));
	tl_err err = TL_ERR_NOMEM;
	if (!consumer->fetch_nodes)
		goto out_free;
	err = consumer_settings(consumer, cc, errstr, errstr_size);
	if (err != TL_OK)
		goto out_free;
	struct tl_client_conf client_conf = {
		.conf = &cc->conf,
		.bootstrap_servers = tl_conf_str(&cc->conf, "bootstrap.servers"),
		.client_id = tl_conf_str(&cc->conf, "client.id"),
		TL_CLIENT_CONF_SECURITY(&cc->conf),
		.request_timeout_ms = consumer->request_timeout_ms,
		.reconnect_backoff_ms = (int32_t)tl_conf_int(&cc->conf, "reconnect.backoff.ms"),
		.metadata_max_age_ms = (int32_t)tl_conf_int(&cc->conf, "metadata.max.age.ms"),
		.allow_auto_create_topics = tl_conf_bool(&cc->conf, "allow.auto.create.topics"),
	};
	err = tl_client_create(&client_conf, &consumer->client, errstr, errstr_size);
	if (err != TL_OK)
		goto out_free;
	consumer->next_auto_commit_ns = tl_mono_ns() + consumer->auto_commit_interval_ns;
	*out = consumer;
	return TL_OK;

out_free:
	free(consumer->fetch_nodes);
	free(consumer->group_id);
	free(consumer->group_instance_id);
	free(consumer);
	return err;
}

TL_EXPORT void tl_consumer_destroy(struct tl_consumer *consumer)
{
	if (!consumer)
		return;
	TL_ASSERT(!consumer->in_rebalance_cb); /* consumer.h: not from the callback */
	tl_consumer_group_close(consumer);
	if (consumer->auto_commit && consumer->group_id)
		(void)tl_consumer_commit(consumer, 5000);
	tl_consumer_group_leave(consumer);
	/* Requests in flight fail here (TL_ERR_CLOSED) while the state still exists. */
	tl_client_destroy(consumer->client);
	chunks_drop_all(consumer);
	retired_free(consumer);
	parts_free(consumer->parts, consumer->part_count);
	tl_consumer_group_deinit(&consumer->group);
	free(consumer->headers);
	free(consumer->fetch_nodes);
	free(consumer->group_id);
	free(consumer->group_instance_id);
	free(consumer->metadata_member_id);
	free(consumer);
}
