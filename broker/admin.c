/* admin.c - Metadata, ListOffsets, CreateTopics, DeleteTopics and DescribeConfigs.
 * One node: it is every partition's leader, the only replica, the controller, and
 * every ISR. Replication factors above the number of live brokers are refused with
 * INVALID_REPLICATION_FACTOR, as Kafka does. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/diag.h"
#include "protocol/records.h"

#define LIST_OFFSETS_LATEST         (-1)
#define LIST_OFFSETS_EARLIEST       (-2)
#define LIST_OFFSETS_MAX_TS         (-3) /* KIP-734 */
#define LIST_OFFSETS_EARLIEST_LOCAL (-4) /* KIP-405: no remote tier, so the log start */

static char *arena_strdup(struct tl_arena *arena, const char *s)
{
	size_t n = strlen(s);
	char *p = tl_arena_alloc(arena, n + 1);
	if (p)
		memcpy(p, s, n + 1);
	return p;
}

static struct tl_str arena_str(struct tl_arena *arena, const char *s)
{
	char *p = arena_strdup(arena, s);
	struct tl_str str = {p, p ? (int32_t)strlen(p) : -1};
	return str;
}

/* ---- Metadata ---- */

/* Cluster mode: leaders, replicas and ISR as the view has them (LEADER_NOT_AVAILABLE
 * while a partition has no leader, LISTENER_NOT_FOUND when its leader has no endpoint
 * of the client's listener, as Kafka answers). */
static void metadata_cluster_partitions(struct tl_request *req, struct tl_topic *topic,
					struct tl_metadata_response_metadata_response_topic *out)
{
	for (int32_t i = 0; i < topic->partition_count; i++) {
		struct tl_metadata_response_metadata_response_partition *mp = &out->partitions[i];
		const struct tl_partition *p = &topic->partitions[i];
		tl_metadata_response_metadata_response_partition_defaults(mp);
		mp->partition_index = i;
		mp->leader_id = p->has_state ? p->state.leader : -1;
		mp->leader_epoch = p->state.leader_epoch;
		int32_t *ids =
			tl_arena_array(&req->arena, (size_t)TL_REPL_REPLICAS_MAX * 2, sizeof(*ids));
		if (!ids) {
			mp->error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
			continue;
		}
		memcpy(ids, p->replicas, (size_t)p->replica_count * sizeof(*ids));
		mp->replica_nodes = ids;
		mp->replica_nodes_count = p->replica_count;
		memcpy(ids + TL_REPL_REPLICAS_MAX, p->state.isr,
		       (size_t)p->state.isr_count * sizeof(*ids));
		mp->isr_nodes = ids + TL_REPL_REPLICAS_MAX;
		mp->isr_nodes_count = p->state.isr_count;
		mp->offline_replicas_count = 0;
		const struct tl_cluster_broker *leader =
			mp->leader_id < 0 || mp->leader_id == req->conn->broker->config.node_id
				? NULL
				: tl_cluster_find_broker(
					  tl_cluster_view(req->conn->broker->cluster),
					  mp->leader_id);
		const char *host;
		int32_t port;
		if (mp->leader_id < 0)
			mp->error_code = (int16_t)TL_ERR_LEADER_NOT_AVAILABLE;
		else if (leader && !tl_cluster_broker_address(leader, req->conn, &host, &port)) {
			/* Kafka's MetadataCache: the leader is alive but lacks the client's
			 * listener, so no leader is named; LISTENER_NOT_FOUND from v6. */
			mp->error_code = (int16_t)(req->header.api_version >= 6
							   ? TL_ERR_LISTENER_NOT_FOUND
							   : TL_ERR_LEADER_NOT_AVAILABLE);
			mp->leader_id = -1;
		} else if (p->log && p->role == TL_REPLICA_LEADER && !tl_log_is_writable(p->log))
			mp->error_code = (int16_t)TL_ERR_KAFKA_STORAGE_ERROR;
	}
}

/* Cluster mode: every registered broker, and the real controller. */
static void metadata_cluster_brokers(struct tl_request *req, struct tl_metadata_response *resp)
{
	const struct tl_cluster_view *view = tl_cluster_view(req->conn->broker->cluster);
	if (!view || view->broker_count == 0)
		return;
	struct tl_metadata_response_metadata_response_broker *brokers =
		tl_arena_array(&req->arena, (size_t)view->broker_count, sizeof(*brokers));
	if (!brokers)
		return;
	int32_t count = 0;
	for (int32_t i = 0; i < view->broker_count; i++) {
		/* Each broker's endpoint of the listener the client came in on; one without
		 * that listener is left out, as Kafka does. */
		const char *host;
		int32_t port;
		if (!tl_cluster_broker_address(&view->brokers[i], req->conn, &host, &port))
			continue;
		struct tl_metadata_response_metadata_response_broker *b = &brokers[count++];
		tl_metadata_response_metadata_response_broker_defaults(b);
		b->node_id = view->brokers[i].id;
		b->host = tl_str_of(host);
		b->port = port;
		if (view->brokers[i].rack[0])
			b->rack = tl_str_of(view->brokers[i].rack);
	}
	resp->brokers = brokers;
	resp->brokers_count = count;
	resp->controller_id = view->controller;
}

static void metadata_topic(struct tl_request *req, struct tl_topic *topic,
			   struct tl_metadata_response_metadata_response_topic *out)
{
	struct tl_broker *broker = req->conn->broker;
	out->name = tl_str_of(topic->name);
	out->topic_id = topic->id;
	out->is_internal = topic->internal;
	out->partitions_count = topic->partition_count;
	out->partitions = tl_arena_array(&req->arena, (size_t)topic->partition_count,
					 sizeof(*out->partitions));
	int32_t *node = tl_arena_alloc(&req->arena, sizeof(*node));
	if (!out->partitions || !node) {
		out->partitions_count = 0;
		out->error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
		return;
	}
	*node = broker->config.node_id;
	if (topic->cluster) {
		metadata_cluster_partitions(req, topic, out);
		return;
	}
	for (int32_t i = 0; i < topic->partition_count; i++) {
		struct tl_metadata_response_metadata_response_partition *p = &out->partitions[i];
		tl_metadata_response_metadata_response_partition_defaults(p);
		p->partition_index = i;
		p->leader_id = broker->config.node_id;
		p->leader_epoch = 0;
		p->replica_nodes_count = 1;
		p->replica_nodes = node;
		p->isr_nodes_count = 1;
		p->isr_nodes = node;
		p->offline_replicas_count = 0;
		if (!tl_log_is_writable(topic->partitions[i].log))
			p->error_code = (int16_t)TL_ERR_KAFKA_STORAGE_ERROR;
	}
}

void tl_handle_metadata(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_metadata_request msg;
	if (tl_metadata_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed Metadata request");
		return;
	}
	struct tl_metadata_response resp;
	tl_metadata_response_defaults(&resp);
	struct tl_metadata_response_metadata_response_broker self;
	tl_metadata_response_metadata_response_broker_defaults(&self);
	self.node_id = broker->config.node_id;
	const char *advertised_host;
	tl_conn_advertised(req->conn, &advertised_host, &self.port);
	self.host = tl_str_of(advertised_host);
	resp.brokers_count = 1;
	resp.brokers = &self;
	resp.cluster_id = tl_str_of(broker->config.cluster_id);
	resp.controller_id = broker->config.node_id;
	if (broker->cluster)
		metadata_cluster_brokers(req, &resp);

	bool all = msg.topics_count < 0 || (version == 0 && msg.topics_count == 0);
	int32_t count = all ? broker->topics.count : msg.topics_count;
	resp.topics = tl_arena_array(&req->arena, (size_t)TL_MAX(count, 0), sizeof(*resp.topics));
	if (count > 0 && !resp.topics) {
		tl_request_reject(req, "Metadata request too large");
		return;
	}
	int32_t n = 0;
	if (all) {
		for (struct tl_topic *t = tl_topic_next(broker, NULL); t && n < count;
		     t = tl_topic_next(broker, t)) {
			/* Kafka leaves out, silently, the topics the client may not see. */
			if (!tl_authorize_quiet(req, TL_ACL_OP_DESCRIBE, TL_ACL_RESOURCE_TOPIC,
						tl_str_of(t->name)))
				continue;
			tl_metadata_response_metadata_response_topic_defaults(&resp.topics[n]);
			metadata_topic(req, t, &resp.topics[n]);
			if (msg.include_topic_authorized_operations)
				resp.topics[n].topic_authorized_operations =
					tl_authorized_operations(req, TL_ACL_RESOURCE_TOPIC,
								 tl_str_of(t->name));
			n++;
		}
	} else {
		/* allow_auto_topic_creation defaults to true before v4, as Kafka reads it. */
		bool may_create = broker->config.auto_create_topics_enable &&
				  (version < 4 || msg.allow_auto_topic_creation);
		for (int32_t i = 0; i < msg.topics_count; i++) {
			struct tl_metadata_response_metadata_response_topic *out =
				&resp.topics[n++];
			tl_metadata_response_metadata_response_topic_defaults(out);
			struct tl_str name = msg.topics[i].name;
			struct tl_topic *topic =
				name.len >= 0 ? tl_topic_find(broker, name)
					      : tl_topic_find_id(broker, &msg.topics[i].topic_id);
			out->name = name;
			out->topic_id = msg.topics[i].topic_id;
			struct tl_str acl_name = topic ? tl_str_of(topic->name) : name;
			if ((topic || name.len >= 0) &&
			    !tl_authorize_topic(req, TL_ACL_OP_DESCRIBE, acl_name)) {
				out->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			/* Auto-creation needs Create on the Cluster or on the topic. */
			if (!topic && name.len >= 0 && may_create &&
			    !tl_authorize_quiet(req, TL_ACL_OP_CREATE, TL_ACL_RESOURCE_CLUSTER,
						tl_str_of(TL_ACL_CLUSTER_NAME)) &&
			    !tl_authorize_topic(req, TL_ACL_OP_CREATE, name)) {
				out->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			if (!topic && name.len >= 0 && may_create && broker->cluster) {
				/* Kafka's answer while the new topic has no leader yet. */
				if (!tl_topic_name_invalid(name))
					tl_cluster_create_topic(
						broker, name, broker->config.num_partitions,
						broker->config.default_replication_factor, "", NULL,
						NULL);
				out->error_code = (int16_t)(tl_topic_name_invalid(name)
								    ? TL_ERR_INVALID_TOPIC_EXCEPTION
								    : TL_ERR_LEADER_NOT_AVAILABLE);
				continue;
			}
			if (!topic && name.len >= 0 && may_create) {
				char why[256];
				tl_err err =
					tl_topic_create(broker, name, broker->config.num_partitions,
							NULL, &topic, why, sizeof(why));
				if (err != TL_OK) {
					out->error_code =
						(int16_t)(err == TL_ERR_INVALID_TOPIC_EXCEPTION
								  ? err
								  : TL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
					continue;
				}
			}
			if (!topic) {
				out->error_code =
					(int16_t)(name.len >= 0 ? TL_ERR_UNKNOWN_TOPIC_OR_PARTITION
								: TL_ERR_UNKNOWN_TOPIC_ID);
				continue;
			}
			metadata_topic(req, topic, out);
			if (msg.include_topic_authorized_operations)
				out->topic_authorized_operations = tl_authorized_operations(
					req, TL_ACL_RESOURCE_TOPIC, tl_str_of(topic->name));
		}
	}
	resp.topics_count = n;
	if (msg.include_cluster_authorized_operations)
		resp.cluster_authorized_operations = tl_authorized_operations(
			req, TL_ACL_RESOURCE_CLUSTER, tl_str_of(TL_ACL_CLUSTER_NAME));
	tl_response_begin(req);
	tl_metadata_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- ListOffsets ---- */

#define LIST_OFFSETS_SCAN_BYTES (1 << 20)
#define LIST_OFFSETS_SCAN_READS 16 /* of up to LIST_OFFSETS_SCAN_BYTES each */

/* One read of list_offsets_scan() from *@next, which it moves to the read's end (-1
 * when nothing was read). */
static bool list_offsets_scan_read(struct tl_log *log, int64_t target, int64_t bound, int64_t *next,
				   int64_t *offset, int64_t *timestamp, int32_t *epoch)
{
	int64_t start = tl_log_start_offset(log);
	struct tl_log_read range;
	if (tl_log_read(log, *next, bound, LIST_OFFSETS_SCAN_BYTES, true, &range) != TL_OK ||
	    range.bytes == 0) {
		*next = -1;
		return false;
	}
	*next = range.next_offset;
	uint8_t *data = malloc((size_t)range.bytes);
	bool ok = data && pread(range.fd, data, (size_t)range.bytes, (off_t)range.position) ==
				  (ssize_t)range.bytes;
	tl_log_read_release(range.segment);
	bool found = false;
	if (ok) {
		struct tl_records_iter iter;
		struct tl_batch_header h;
		struct tl_record record;
		tl_records_iter_init(&iter, data, (size_t)range.bytes);
		while (!found && tl_records_iter_next_batch(&iter, &h, NULL, NULL) == TL_OK)
			while (tl_records_iter_next(&iter, &record) == TL_OK)
				if (record.offset >= start && record.offset < bound &&
				    record.timestamp_ms >= target) {
					*offset = record.offset;
					*timestamp = record.timestamp_ms;
					*epoch = h.partition_leader_epoch;
					found = true;
					break;
				}
		tl_records_iter_deinit(&iter);
	}
	free(data);
	return found;
}

/* Kafka answers the first *record* at or after the log start whose timestamp is at or
 * after @target, below @bound (what a consumer may fetch: the high watermark, or the
 * LSO for read_committed), with its batch's leader epoch. The log names the first batch
 * whose maxTimestamp qualifies (@from); this reads on from there (or from the log start,
 * when that batch began before it: DeleteRecords) and walks the records, read after read
 * (each answers from one segment): a batch compaction thinned keeps the maxTimestamp of
 * the records it lost, so the answer may lie segments later. Returns false when none
 * qualifies in the first LIST_OFFSETS_SCAN_READS reads. Not a hot path: ListOffsets by
 * time is rare. */
static bool list_offsets_scan(struct tl_log *log, int64_t target, int64_t from, int64_t bound,
			      int64_t *offset, int64_t *timestamp, int32_t *epoch)
{
	int64_t next = TL_MAX(from, tl_log_start_offset(log));
	bool found = false;
	for (int reads = 0; !found && next >= 0 && next < bound && reads < LIST_OFFSETS_SCAN_READS;
	     reads++)
		found = list_offsets_scan_read(log, target, bound, &next, offset, timestamp, epoch);
	return found;
}

static void
list_offsets_partition(struct tl_request *req, struct tl_partition *p, int64_t timestamp,
		       int8_t isolation_level,
		       struct tl_list_offsets_response_list_offsets_partition_response *out)
{
	int16_t version = req->header.api_version;
	int64_t offset = -1, ts = -1;
	int32_t epoch = -1;
	/* What a consumer of this isolation level can fetch ends here. */
	int64_t bound = isolation_level == 1 ? tl_log_last_stable_offset(p->log)
					     : tl_log_high_watermark(p->log);
	if (timestamp == LIST_OFFSETS_LATEST) {
		offset = bound;
		epoch = tl_log_latest_epoch(p->log);
	} else if (timestamp == LIST_OFFSETS_EARLIEST || timestamp == LIST_OFFSETS_EARLIEST_LOCAL) {
		offset = tl_log_start_offset(p->log);
		epoch = tl_log_epoch_at(p->log, offset);
	} else if (timestamp >= 0 || timestamp == LIST_OFFSETS_MAX_TS) {
		/* By time, or the first record carrying the largest timestamp (KIP-734), as
		 * Kafka 3.8 answers: only what a consumer could fetch counts. */
		int64_t target = timestamp >= 0 ? timestamp : tl_log_max_timestamp(p->log);
		int64_t from, batch_ts;
		if (target < 0 ||
		    tl_log_offset_for_timestamp(p->log, target, &from, &batch_ts) != TL_OK ||
		    !list_offsets_scan(p->log, target, from, bound, &offset, &ts, &epoch))
			offset = ts = epoch = -1;
	}
	if (version == 0) {
		int64_t *old = tl_arena_alloc(&req->arena, sizeof(*old));
		if (old && offset >= 0) {
			*old = offset;
			out->old_style_offsets = old;
			out->old_style_offsets_count = 1;
		}
		return;
	}
	out->offset = offset;
	out->timestamp = ts;
	out->leader_epoch = epoch;
}

void tl_handle_list_offsets(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_list_offsets_request msg;
	if (tl_list_offsets_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed ListOffsets request");
		return;
	}
	struct tl_list_offsets_response resp;
	tl_list_offsets_response_defaults(&resp);
	resp.topics_count = msg.topics_count;
	resp.topics = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.topics_count, 0),
				     sizeof(*resp.topics));
	for (int32_t t = 0; t < msg.topics_count; t++) {
		const struct tl_list_offsets_request_list_offsets_topic *in = &msg.topics[t];
		struct tl_list_offsets_response_list_offsets_topic_response *out = &resp.topics[t];
		tl_list_offsets_response_list_offsets_topic_response_defaults(out);
		out->name = in->name;
		out->partitions_count = in->partitions_count;
		out->partitions =
			tl_arena_array(&req->arena, (size_t)TL_MAX(in->partitions_count, 0),
				       sizeof(*out->partitions));
		if (!out->partitions && in->partitions_count > 0) {
			tl_request_reject(req, "ListOffsets request too large");
			return;
		}
		bool topic_ok = tl_authorize_topic(req, TL_ACL_OP_DESCRIBE, in->name);
		for (int32_t i = 0; i < in->partitions_count; i++) {
			struct tl_list_offsets_response_list_offsets_partition_response *po =
				&out->partitions[i];
			tl_list_offsets_response_list_offsets_partition_response_defaults(po);
			po->partition_index = in->partitions[i].partition_index;
			if (!topic_ok) {
				po->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			struct tl_partition *p = tl_partition_find_any(
				broker, in->name, in->partitions[i].partition_index);
			if (!p || (!p->topic->cluster && !p->log)) {
				po->error_code = (int16_t)TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			/* Only the leader answers (cluster mode), at the client's epoch
			 * (KIP-320), as Fetch. */
			tl_err check =
				tl_replica_check_client(p, in->partitions[i].current_leader_epoch);
			if (check != TL_OK) {
				po->error_code = (int16_t)check;
				continue;
			}
			list_offsets_partition(req, p, in->partitions[i].timestamp,
					       msg.isolation_level, po);
		}
	}
	tl_response_begin(req);
	tl_list_offsets_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- CreateTopics ---- */

/* Cluster mode: a topic change goes through the metadata thread; the request waits. */
#define CREATE_AWAIT_MS 10000 /* longest wait for a created topic's leaders */

struct cluster_change {
	char topic[TL_TOPIC_NAME_MAX + 1];
	struct tl_request *req;
	int16_t *error_code;
	struct tl_str *error_message;
	void (*respond)(struct tl_request *req);
};

static void cluster_change_done(void *ctx, tl_err err, const char *message)
{
	struct cluster_change *change = ctx;
	struct tl_request *req = change->req;
	*change->error_code = (int16_t)err;
	if (err != TL_OK && message[0])
		*change->error_message = arena_str(&req->arena, message);
	if (!tl_request_wait_end(req))
		return;
	change->respond(req);
}

static struct cluster_change *cluster_change_new(struct tl_request *req, int16_t *error_code,
						 struct tl_str *error_message,
						 void (*respond)(struct tl_request *req))
{
	struct cluster_change *change = tl_arena_alloc(&req->arena, sizeof(*change));
	if (!change)
		return NULL;
	change->req = req;
	change->error_code = error_code;
	change->error_message = error_message;
	change->respond = respond;
	return change;
}

static void create_topics_respond(struct tl_request *req);

/* The topic is in the store: answer once this broker's view has a leader for every
 * partition (Kafka's CreateTopics waits for the same), so a client's next Metadata
 * finds it. */
static void create_stored(void *ctx, tl_err err, const char *message)
{
	struct cluster_change *change = ctx;
	if (err != TL_OK) {
		cluster_change_done(ctx, err, message);
		return;
	}
	struct tl_broker *broker = change->req->conn->broker;
	tl_cluster_await_topic(broker, change->topic, CREATE_AWAIT_MS, cluster_change_done, change);
}

static tl_err create_in_cluster(struct tl_request *req,
				const struct tl_create_topics_request_creatable_topic *in,
				int32_t partitions, int16_t rf,
				struct tl_create_topics_response_creatable_topic_result *out)
{
	char configs[4096];
	size_t n = 0;
	configs[0] = '\0';
	for (int32_t i = 0; i < in->configs_count && n < sizeof(configs); i++)
		n += (size_t)snprintf(configs + n, sizeof(configs) - n, "%.*s=%.*s\n",
				      in->configs[i].name.len, in->configs[i].name.ptr,
				      in->configs[i].value.len, in->configs[i].value.ptr);
	struct cluster_change *change = cluster_change_new(
		req, &out->error_code, &out->error_message, create_topics_respond);
	if (!change || n >= sizeof(configs))
		return TL_ERR_NOMEM;
	out->num_partitions = partitions;
	out->replication_factor = rf;
	snprintf(change->topic, sizeof(change->topic), "%.*s", in->name.len, in->name.ptr);
	req->waits++;
	tl_err err = tl_cluster_create_topic(req->conn->broker, in->name, partitions, rf, configs,
					     create_stored, change);
	if (err != TL_OK)
		req->waits--;
	return err;
}

static tl_err create_one(struct tl_request *req, const struct tl_create_topics_request *msg,
			 const struct tl_create_topics_request_creatable_topic *in,
			 struct tl_create_topics_response_creatable_topic_result *out)
{
	struct tl_broker *broker = req->conn->broker;
	char why[256] = "";
	int32_t partitions =
		in->num_partitions == -1 ? broker->config.num_partitions : in->num_partitions;
	int16_t rf = in->replication_factor == -1 ? broker->config.default_replication_factor
						  : in->replication_factor;
	tl_err err = TL_OK;
	const char *invalid = tl_topic_name_invalid(in->name);
	if (invalid) {
		snprintf(why, sizeof(why), "%s", invalid);
		err = TL_ERR_INVALID_TOPIC_EXCEPTION;
	} else if (tl_topic_find(broker, in->name)) {
		snprintf(why, sizeof(why), "Topic '%.*s' already exists.", in->name.len,
			 in->name.ptr);
		err = TL_ERR_TOPIC_ALREADY_EXISTS;
	} else if (in->assignments_count > 0) {
		snprintf(why, sizeof(why), "manual replica assignment is not supported");
		err = TL_ERR_INVALID_REQUEST;
	} else if (partitions < 1) {
		snprintf(why, sizeof(why), "Number of partitions must be larger than 0.");
		err = TL_ERR_INVALID_PARTITIONS;
	} else if (!broker->cluster && (rf < 1 || rf > 1)) {
		snprintf(why, sizeof(why),
			 "Replication factor: %d larger than available brokers: 1.", rf);
		err = TL_ERR_INVALID_REPLICATION_FACTOR;
	} else if (rf < 1 || rf > TL_REPL_REPLICAS_MAX) {
		snprintf(why, sizeof(why), "Replication factor must be between 1 and %d.",
			 TL_REPL_REPLICAS_MAX);
		err = TL_ERR_INVALID_REPLICATION_FACTOR;
	}
	struct tl_topic_config config;
	tl_topic_config_from_broker(&config, &broker->config);
	for (int32_t i = 0; err == TL_OK && i < in->configs_count; i++) {
		char key[128], value[128];
		const struct tl_create_topics_request_createable_topic_config *c = &in->configs[i];
		if (c->name.len <= 0 || c->name.len >= (int32_t)sizeof(key) || c->value.len < 0 ||
		    c->value.len >= (int32_t)sizeof(value)) {
			snprintf(why, sizeof(why), "invalid config entry");
			err = TL_ERR_INVALID_CONFIG;
			break;
		}
		snprintf(key, sizeof(key), "%.*s", c->name.len, c->name.ptr);
		snprintf(value, sizeof(value), "%.*s", c->value.len, c->value.ptr);
		err = tl_topic_config_set(&config, key, value, why, sizeof(why));
	}
	if (err == TL_OK && !msg->validate_only && broker->cluster) {
		err = create_in_cluster(req, in, partitions, rf, out);
		if (err == TL_OK)
			return TL_OK; /* answered when the metadata store has it */
		snprintf(why, sizeof(why), "out of memory");
	} else if (err == TL_OK && !msg->validate_only) {
		struct tl_topic *topic;
		err = tl_topic_create(broker, in->name, partitions, &config, &topic, why,
				      sizeof(why));
		if (err == TL_OK)
			out->topic_id = topic->id;
	}
	if (err != TL_OK) {
		out->error_message = arena_str(&req->arena, why);
		return err;
	}
	out->num_partitions = partitions;
	out->replication_factor = rf;
	return TL_OK;
}

static void create_topics_respond(struct tl_request *req)
{
	tl_response_begin(req);
	tl_create_topics_response_encode(&req->response, req->header.api_version, req->state_data);
	tl_response_end(req);
}

void tl_handle_create_topics(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_create_topics_request msg;
	if (tl_create_topics_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed CreateTopics request");
		return;
	}
	struct tl_create_topics_response *respp = tl_arena_alloc(&req->arena, sizeof(*respp));
	if (!respp) {
		tl_request_reject(req, "CreateTopics request too large");
		return;
	}
	req->state_data = respp;
	struct tl_create_topics_response resp;
	tl_create_topics_response_defaults(&resp);
	resp.topics_count = msg.topics_count;
	resp.topics = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.topics_count, 0),
				     sizeof(*resp.topics));
	if (msg.topics_count > 0 && !resp.topics) {
		tl_request_reject(req, "CreateTopics request too large");
		return;
	}
	bool cluster_create = tl_authorize_quiet(req, TL_ACL_OP_CREATE, TL_ACL_RESOURCE_CLUSTER,
						 tl_str_of(TL_ACL_CLUSTER_NAME));
	for (int32_t i = 0; i < msg.topics_count; i++) {
		struct tl_create_topics_response_creatable_topic_result *out = &resp.topics[i];
		tl_create_topics_response_creatable_topic_result_defaults(out);
		out->name = msg.topics[i].name;
		/* A name listed twice is an error for every copy (Kafka's rule). */
		bool duplicate = false;
		for (int32_t j = 0; j < msg.topics_count; j++)
			if (j != i && tl_str_eq(msg.topics[j].name, msg.topics[i].name))
				duplicate = true;
		if (duplicate) {
			out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
			out->error_message = tl_str_of("Duplicate topic name in the request.");
			continue;
		}
		/* Kafka: Create on the Cluster, or else on the topic. */
		if (!cluster_create &&
		    !tl_authorize_topic(req, TL_ACL_OP_CREATE, msg.topics[i].name)) {
			out->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
			out->error_message = tl_str_of("Authorization failed.");
			continue;
		}
		out->error_code = (int16_t)create_one(req, &msg, &msg.topics[i], out);
	}
	*respp = resp;
	if (req->waits == 0)
		create_topics_respond(req);
}

/* ---- DeleteTopics ---- */

static void delete_topics_respond(struct tl_request *req)
{
	tl_response_begin(req);
	tl_delete_topics_response_encode(&req->response, req->header.api_version, req->state_data);
	tl_response_end(req);
}

static tl_err delete_one(struct tl_request *req, struct tl_topic *topic,
			 struct tl_delete_topics_response_deletable_topic_result *out)
{
	struct tl_broker *broker = req->conn->broker;
	if (!topic)
		return TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	if (!broker->config.delete_topic_enable)
		return TL_ERR_TOPIC_DELETION_DISABLED;
	if (topic->internal)
		return TL_ERR_INVALID_REQUEST; /* the coordinators hold its partitions open */
	if (topic->cluster) {
		struct cluster_change *change = cluster_change_new(
			req, &out->error_code, &out->error_message, delete_topics_respond);
		if (!change)
			return TL_ERR_NOMEM;
		req->waits++;
		tl_err err = tl_cluster_delete_topic(broker, tl_str_of(topic->name),
						     cluster_change_done, change);
		if (err != TL_OK)
			req->waits--;
		return err;
	}
	return tl_topic_delete(broker, topic);
}

void tl_handle_delete_topics(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_delete_topics_request msg;
	if (tl_delete_topics_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DeleteTopics request");
		return;
	}
	int32_t count = version >= 6 ? msg.topics_count : msg.topic_names_count;
	struct tl_delete_topics_response resp;
	tl_delete_topics_response_defaults(&resp);
	resp.responses_count = TL_MAX(count, 0);
	resp.responses =
		tl_arena_array(&req->arena, (size_t)TL_MAX(count, 0), sizeof(*resp.responses));
	if (count > 0 && !resp.responses) {
		tl_request_reject(req, "DeleteTopics request too large");
		return;
	}
	for (int32_t i = 0; i < count; i++) {
		struct tl_delete_topics_response_deletable_topic_result *out = &resp.responses[i];
		tl_delete_topics_response_deletable_topic_result_defaults(out);
		struct tl_topic *topic;
		if (version >= 6) {
			out->name = msg.topics[i].name;
			out->topic_id = msg.topics[i].topic_id;
			topic = msg.topics[i].name.len >= 0
					? tl_topic_find(broker, msg.topics[i].name)
					: tl_topic_find_id(broker, &msg.topics[i].topic_id);
		} else {
			out->name = msg.topic_names[i];
			topic = tl_topic_find(broker, msg.topic_names[i]);
		}
		if (topic && version >= 6)
			out->name = arena_str(&req->arena, topic->name);
		struct tl_str acl_name = topic ? tl_str_of(topic->name) : out->name;
		if (acl_name.len >= 0 && !tl_authorize_topic(req, TL_ACL_OP_DELETE, acl_name)) {
			out->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
			continue;
		}
		out->error_code = (int16_t)delete_one(req, topic, out);
	}
	struct tl_delete_topics_response *respp = tl_arena_alloc(&req->arena, sizeof(*respp));
	if (!respp) {
		tl_request_reject(req, "DeleteTopics request too large");
		return;
	}
	*respp = resp;
	req->state_data = respp;
	if (req->waits == 0)
		delete_topics_respond(req);
}

/* ---- DescribeConfigs ---- */

#define RESOURCE_TOPIC  2
#define RESOURCE_BROKER 4
#define SOURCE_TOPIC    1 /* DYNAMIC_TOPIC_CONFIG */
#define SOURCE_STATIC   4 /* STATIC_BROKER_CONFIG */
#define SOURCE_DEFAULT  5 /* DEFAULT_CONFIG */

static bool key_wanted(const struct tl_describe_configs_request_describe_configs_resource *in,
		       const char *key)
{
	if (in->configuration_keys_count < 0)
		return true;
	for (int32_t i = 0; i < in->configuration_keys_count; i++)
		if (tl_str_eq_c(in->configuration_keys[i], key))
			return true;
	return false;
}

/* The broker's configuration as --print-config shows it, for tl_config_describe_key;
 * the caller frees it. NULL when out of memory. */
static char *config_printed(const struct tl_config *config)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return NULL;
	tl_config_print(config, mem);
	fclose(mem);
	return text;
}

struct synonym_list {
	struct tl_describe_configs_response_describe_configs_synonym *items;
	int32_t count;
	int32_t max;
};

static void synonym_add(struct tl_request *req, struct synonym_list *list, const char *name,
			const char *value, int8_t source)
{
	if (!list->items || list->count == list->max)
		return;
	struct tl_describe_configs_response_describe_configs_synonym *s =
		&list->items[list->count++];
	tl_describe_configs_response_describe_configs_synonym_defaults(s);
	s->name = tl_str_of(name);
	s->value = value ? arena_str(&req->arena, value) : (struct tl_str){NULL, -1};
	s->source = source;
}

#define SYNONYMS_MAX 8

/* Topic key @index: its value on @topic, the source (DYNAMIC_TOPIC_CONFIG when the
 * topic sets it, STATIC_BROKER_CONFIG when a broker synonym was given, else
 * DEFAULT_CONFIG) and, when asked, the synonyms in Kafka's order. */
static void describe_topic(struct tl_request *req, struct tl_topic *topic, const char *printed,
			   bool include_synonyms,
			   const struct tl_describe_configs_request_describe_configs_resource *in,
			   struct tl_describe_configs_response_describe_configs_result *out)
{
	const struct tl_config *config = &req->conn->broker->config;
	int n = tl_topic_config_key_count();
	out->configs = tl_arena_array(&req->arena, (size_t)n, sizeof(*out->configs));
	if (!out->configs)
		return;
	int32_t count = 0;
	for (int i = 0; i < n; i++) {
		const char *key = tl_topic_config_key_name(i);
		if (!key_wanted(in, key))
			continue;
		struct tl_describe_configs_response_describe_configs_resource_result *c =
			&out->configs[count++];
		tl_describe_configs_response_describe_configs_resource_result_defaults(c);
		char value[TL_CONFIG_STR_MAX];
		tl_topic_config_key_value(&topic->config, i, value, sizeof(value));
		bool set = tl_topic_config_key_is_set(&topic->config, i);
		struct synonym_list list = {NULL, 0, SYNONYMS_MAX};
		if (include_synonyms)
			list.items = tl_arena_array(&req->arena, SYNONYMS_MAX, sizeof(*list.items));
		if (set)
			synonym_add(req, &list, key, value, SOURCE_TOPIC);
		int8_t source = set ? SOURCE_TOPIC : SOURCE_DEFAULT;
		bool default_listed = false;
		for (const char *const *syn = tl_topic_config_key_synonyms(i); *syn; syn++) {
			char broker_value[TL_CONFIG_STR_MAX];
			bool has_value, is_set;
			if (!tl_config_describe_key(config, printed, *syn, broker_value,
						    sizeof(broker_value), &has_value, &is_set) ||
			    !has_value)
				continue;
			if (is_set) {
				synonym_add(req, &list, *syn, broker_value, SOURCE_STATIC);
				if (!set && source == SOURCE_DEFAULT)
					source = SOURCE_STATIC;
			} else if (!default_listed) {
				synonym_add(req, &list, *syn, broker_value, SOURCE_DEFAULT);
				default_listed = true;
			}
		}
		c->name = tl_str_of(key);
		c->value = arena_str(&req->arena, value);
		c->is_default = source == SOURCE_DEFAULT;
		c->config_source = source;
		c->synonyms = list.items;
		c->synonyms_count = list.count;
	}
	out->configs_count = count;
}

/* The broker resource: Tally's keys under Kafka's names, each read-only (no dynamic
 * broker configs), STATIC_BROKER_CONFIG when the file or an override gave it, else
 * DEFAULT_CONFIG. Kafka answers only for its own id ("" means the cluster-wide dynamic
 * defaults, of which Tally has none). */
static void describe_broker(struct tl_request *req, const char *printed, bool include_synonyms,
			    const struct tl_describe_configs_request_describe_configs_resource *in,
			    struct tl_describe_configs_response_describe_configs_result *out)
{
	const struct tl_config *config = &req->conn->broker->config;
	if (in->resource_name.len <= 0)
		return;
	char id[16];
	snprintf(id, sizeof(id), "%d", config->node_id);
	if (!tl_str_eq_c(in->resource_name, id)) {
		char message[128];
		snprintf(message, sizeof(message),
			 "Unexpected broker id, expected %s or empty string, but received %.*s", id,
			 (int)TL_MIN(in->resource_name.len, 32), in->resource_name.ptr);
		out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
		out->error_message = arena_str(&req->arena, message);
		return;
	}
	int n = tl_config_key_count();
	out->configs = tl_arena_array(&req->arena, (size_t)n, sizeof(*out->configs));
	if (!out->configs)
		return;
	int32_t count = 0;
	for (int i = 0; i < n; i++) {
		const char *key = tl_config_key_name(i);
		char value[TL_CONFIG_STR_MAX];
		bool has_value, is_set;
		if (!key_wanted(in, key) ||
		    !tl_config_describe_key(config, printed, key, value, sizeof(value), &has_value,
					    &is_set))
			continue;
		struct tl_describe_configs_response_describe_configs_resource_result *c =
			&out->configs[count++];
		tl_describe_configs_response_describe_configs_resource_result_defaults(c);
		int8_t source = is_set ? SOURCE_STATIC : SOURCE_DEFAULT;
		c->name = tl_str_of(key);
		c->value = has_value ? arena_str(&req->arena, value) : (struct tl_str){NULL, -1};
		c->read_only = true;
		c->is_default = !is_set;
		c->config_source = source;
		struct synonym_list list = {NULL, 0, SYNONYMS_MAX};
		if (include_synonyms)
			list.items = tl_arena_array(&req->arena, SYNONYMS_MAX, sizeof(*list.items));
		const char *const *group = tl_config_synonyms(key);
		if (!group) {
			if (has_value)
				synonym_add(req, &list, key, value, source);
		} else {
			/* From @key on: a stronger synonym is not a synonym of a weaker one. */
			bool from_here = false;
			for (size_t g = 0; g < 4 && group[g]; g++) {
				char syn_value[TL_CONFIG_STR_MAX];
				bool syn_has, syn_set;
				from_here |= strcmp(group[g], key) == 0;
				if (from_here &&
				    tl_config_describe_key(config, printed, group[g], syn_value,
							   sizeof(syn_value), &syn_has, &syn_set) &&
				    syn_has)
					synonym_add(req, &list, group[g], syn_value,
						    syn_set ? SOURCE_STATIC : SOURCE_DEFAULT);
			}
		}
		c->synonyms = list.items;
		c->synonyms_count = list.count;
	}
	out->configs_count = count;
}

void tl_handle_describe_configs(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_describe_configs_request msg;
	if (tl_describe_configs_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeConfigs request");
		return;
	}
	struct tl_describe_configs_response resp;
	tl_describe_configs_response_defaults(&resp);
	resp.results_count = msg.resources_count;
	resp.results = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.resources_count, 0),
				      sizeof(*resp.results));
	if (msg.resources_count > 0 && !resp.results) {
		tl_request_reject(req, "DescribeConfigs request too large");
		return;
	}
	char *printed = config_printed(&broker->config);
	bool include_synonyms = version >= 1 && msg.include_synonyms;
	for (int32_t i = 0; i < msg.resources_count; i++) {
		const struct tl_describe_configs_request_describe_configs_resource *in =
			&msg.resources[i];
		struct tl_describe_configs_response_describe_configs_result *out = &resp.results[i];
		tl_describe_configs_response_describe_configs_result_defaults(out);
		out->resource_type = in->resource_type;
		out->resource_name = in->resource_name;
		out->configs_count = 0;
		if (in->resource_type == RESOURCE_TOPIC &&
		    !tl_authorize_topic(req, TL_ACL_OP_DESCRIBE_CONFIGS, in->resource_name)) {
			out->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
			continue;
		}
		if (in->resource_type == RESOURCE_BROKER &&
		    !tl_authorize_cluster(req, TL_ACL_OP_DESCRIBE_CONFIGS)) {
			out->error_code = (int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
			continue;
		}
		if (in->resource_type == RESOURCE_TOPIC) {
			struct tl_topic *topic = tl_topic_find(broker, in->resource_name);
			if (!topic) {
				out->error_code = (int16_t)TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				out->error_message = tl_str_of("unknown topic");
				continue;
			}
			describe_topic(req, topic, printed, include_synonyms, in, out);
		} else if (in->resource_type == RESOURCE_BROKER) {
			describe_broker(req, printed, include_synonyms, in, out);
		} else {
			out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
			out->error_message = tl_str_of("unsupported resource type");
		}
	}
	free(printed);
	tl_response_begin(req);
	tl_describe_configs_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}
