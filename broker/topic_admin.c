/* topic_admin.c - CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
 * DeleteRecords, DescribeLogDirs and DescribeCluster.
 * One node: topic changes are made here, durably (topics.c writes the metadata file
 * before anything is answered) and take effect at once. Cluster mode: topic configs are
 * written to the metadata store (compare-and-swap on the topic's key) and answered once
 * written; every broker applies them from its view (replica.c). CreatePartitions in
 * cluster mode rewrites the topic's key (the new partitions' replicas assigned by the
 * metadata thread) and is answered once this broker's view has a leader for each new
 * partition; every broker opens the logs it hosts from its view. DeleteRecords is
 * served by each partition's leader (NOT_LEADER_OR_FOLLOWER elsewhere); followers take
 * the new log start from the log_start_offset of the leader's fetch responses
 * (fetcher.c), as Kafka's do, and the leader answers once every live replica's start
 * has reached it (replica.c's low watermark). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

#define RESOURCE_TOPIC  2
#define RESOURCE_BROKER 4

#define OP_SET      0
#define OP_DELETE   1
#define OP_APPEND   2
#define OP_SUBTRACT 3

#define CREATE_AWAIT_MS 10000 /* longest wait for the new partitions' leaders */

static struct tl_str arena_str(struct tl_arena *arena, const char *s)
{
	size_t n = strlen(s);
	char *p = tl_arena_alloc(arena, n + 1);
	if (p)
		memcpy(p, s, n + 1);
	return (struct tl_str){p, p ? (int32_t)n : -1};
}

/* ---- CreatePartitions ---- */

/* A CreatePartitions request in flight (cluster mode: each topic's change waits for the
 * metadata store, then for the new partitions' leaders in the view). */
struct partitions_wait {
	struct tl_request *req;
	struct tl_create_partitions_response *resp;
	struct tl_create_partitions_response_create_partitions_topic_result *out;
	char topic[TL_TOPIC_NAME_MAX + 1];
	int32_t count;
};

static void create_partitions_respond(struct tl_request *req,
				      const struct tl_create_partitions_response *resp)
{
	tl_response_begin(req);
	tl_create_partitions_response_encode(&req->response, req->header.api_version, resp);
	tl_response_end(req);
}

static void partitions_led(void *ctx, tl_err err, const char *message)
{
	struct partitions_wait *w = ctx;
	struct tl_request *req = w->req;
	if (err <= TL_ERR_IO)
		err = TL_ERR_UNKNOWN_SERVER_ERROR; /* an internal code (out of memory) */
	w->out->error_code = (int16_t)err;
	if (err != TL_OK && message[0])
		w->out->error_message = arena_str(&req->arena, message);
	if (tl_request_wait_end(req))
		create_partitions_respond(req, w->resp);
}

/* Stored: answer once this broker's view leads every new partition (as CreateTopics). */
static void partitions_stored(void *ctx, tl_err err, const char *message)
{
	struct partitions_wait *w = ctx;
	if (err != TL_OK) {
		partitions_led(ctx, err, message);
		return;
	}
	tl_cluster_await_partitions(w->req->conn->broker, w->topic, w->count, CREATE_AWAIT_MS,
				    partitions_led, w);
}

/* Cluster mode: posts the change of @topic to the metadata thread, which checks the
 * count and the assignments against the store's record. */
static tl_err
create_partitions_cluster(struct tl_request *req, struct tl_create_partitions_response *resp,
			  const struct tl_create_partitions_request_create_partitions_topic *in,
			  struct tl_create_partitions_response_create_partitions_topic_result *out,
			  char *why, size_t why_size)
{
	struct partitions_wait *w = tl_arena_alloc(&req->arena, sizeof(*w));
	size_t text_size = (size_t)TL_MAX(in->assignments_count, 0) * TL_REPL_REPLICAS_MAX * 12 + 1;
	char *text = tl_arena_alloc(&req->arena, text_size);
	if (!w || !text)
		return TL_ERR_NOMEM;
	size_t n = 0;
	text[0] = '\0';
	for (int32_t i = 0; i < in->assignments_count; i++) {
		const struct tl_create_partitions_request_create_partitions_assignment *a =
			&in->assignments[i];
		if (a->broker_ids_count < 1 || a->broker_ids_count > TL_REPL_REPLICAS_MAX) {
			snprintf(why, why_size, "Assignment %d has %d replicas.", i,
				 a->broker_ids_count);
			return TL_ERR_INVALID_REPLICA_ASSIGNMENT;
		}
		for (int32_t j = 0; j < a->broker_ids_count; j++)
			n += (size_t)snprintf(text + n, text_size - n, "%s%d",
					      j ? "," : (i ? ";" : ""), a->broker_ids[j]);
	}
	*w = (struct partitions_wait){.req = req, .resp = resp, .out = out, .count = in->count};
	snprintf(w->topic, sizeof(w->topic), "%.*s", in->name.len, in->name.ptr);
	req->waits++;
	tl_err err = tl_cluster_add_partitions(req->conn->broker, w->topic, in->count, text,
					       partitions_stored, w);
	if (err != TL_OK)
		req->waits--;
	return err;
}

static void
create_partitions_one(struct tl_request *req, struct tl_create_partitions_response *resp,
		      bool validate_only,
		      const struct tl_create_partitions_request_create_partitions_topic *in,
		      struct tl_create_partitions_response_create_partitions_topic_result *out)
{
	struct tl_broker *broker = req->conn->broker;
	char why[512] = "";
	tl_err err = TL_OK;
	struct tl_topic *topic = tl_topic_find(broker, in->name);
	if (!topic) {
		snprintf(why, sizeof(why), "The topic '%.*s' does not exist.", in->name.len,
			 in->name.ptr);
		err = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	} else if (topic->internal) {
		/* A group's or transaction's partition follows from the count. */
		snprintf(why, sizeof(why), "Cannot add partitions to the internal topic %s.",
			 topic->name);
		err = TL_ERR_INVALID_REQUEST;
	} else if (in->count > TL_TOPIC_PARTITIONS_MAX) {
		snprintf(why, sizeof(why), "number of partitions must be at most %d",
			 TL_TOPIC_PARTITIONS_MAX);
		err = TL_ERR_INVALID_PARTITIONS;
	} else if (in->count <= topic->partition_count && !topic->cluster) {
		err = tl_topic_add_partitions(broker, topic, in->count, why, sizeof(why));
		TL_ASSERT(err != TL_OK);
	} else if (in->assignments_count >= 0 &&
		   in->assignments_count != in->count - topic->partition_count) {
		snprintf(why, sizeof(why),
			 "Increasing the number of partitions by %d but %d assignments provided.",
			 in->count - topic->partition_count, in->assignments_count);
		err = TL_ERR_INVALID_REPLICA_ASSIGNMENT;
	} else if (topic->cluster && validate_only) {
		if (in->count <= topic->partition_count) {
			snprintf(why, sizeof(why),
				 "Topic currently has %d partitions, which is not lower than the "
				 "requested %d.",
				 topic->partition_count, in->count);
			err = TL_ERR_INVALID_PARTITIONS;
		}
	} else if (topic->cluster) {
		err = create_partitions_cluster(req, resp, in, out, why, sizeof(why));
		if (err == TL_ERR_NOMEM)
			err = TL_ERR_UNKNOWN_SERVER_ERROR; /* a Kafka code on the wire */
	} else {
		/* One node: every new partition's only replica is this broker. */
		for (int32_t i = 0; i < in->assignments_count && err == TL_OK; i++) {
			const struct tl_create_partitions_request_create_partitions_assignment *a =
				&in->assignments[i];
			if (a->broker_ids_count != 1 ||
			    a->broker_ids[0] != broker->config.node_id) {
				snprintf(why, sizeof(why),
					 "Assignment %d names brokers other than the only one, %d.",
					 i, broker->config.node_id);
				err = TL_ERR_INVALID_REPLICA_ASSIGNMENT;
			}
		}
		if (err == TL_OK && !validate_only)
			err = tl_topic_add_partitions(broker, topic, in->count, why, sizeof(why));
	}
	out->error_code = (int16_t)err;
	if (err != TL_OK && why[0])
		out->error_message = arena_str(&req->arena, why);
}

void tl_handle_create_partitions(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_create_partitions_request msg;
	if (tl_create_partitions_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed CreatePartitions request");
		return;
	}
	struct tl_create_partitions_response *resp = tl_arena_alloc(&req->arena, sizeof(*resp));
	if (!resp) {
		tl_request_reject(req, "CreatePartitions request too large");
		return;
	}
	tl_create_partitions_response_defaults(resp);
	resp->results_count = TL_MAX(msg.topics_count, 0);
	resp->results =
		tl_arena_array(&req->arena, (size_t)resp->results_count, sizeof(*resp->results));
	if (resp->results_count > 0 && !resp->results) {
		tl_request_reject(req, "CreatePartitions request too large");
		return;
	}
	for (int32_t i = 0; i < resp->results_count; i++) {
		struct tl_create_partitions_response_create_partitions_topic_result *out =
			&resp->results[i];
		tl_create_partitions_response_create_partitions_topic_result_defaults(out);
		out->name = msg.topics[i].name;
		bool duplicate = false;
		for (int32_t j = 0; j < msg.topics_count; j++)
			duplicate |= j != i && tl_str_eq(msg.topics[j].name, msg.topics[i].name);
		if (duplicate) {
			out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
			out->error_message = tl_str_of("Duplicate topic name in the request.");
			continue;
		}
		if (!tl_authorize_topic(req, TL_ACL_OP_ALTER, out->name)) {
			out->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
			continue;
		}
		create_partitions_one(req, resp, msg.validate_only, &msg.topics[i], out);
	}
	if (req->waits == 0)
		create_partitions_respond(req, resp);
}

/* ---- AlterConfigs and IncrementalAlterConfigs ---- */

/* A topic's explicit settings as key/value text, the form both requests edit. */
struct config_edit {
	int32_t count;
	const char *keys[64];
	char values[64][TL_CONFIG_STR_MAX];
	bool is_null[64];
};

static int32_t edit_find(const struct config_edit *edit, struct tl_str key)
{
	for (int32_t i = 0; i < edit->count; i++)
		if (tl_str_eq_c(key, edit->keys[i]))
			return i;
	return -1;
}

/* Sets @key (a topic key name, else INVALID_CONFIG) to @value (len -1: null). */
static tl_err edit_set(struct config_edit *edit, struct tl_str key, struct tl_str value, char *why,
		       size_t why_size)
{
	int index = -1;
	for (int i = 0; i < tl_topic_config_key_count(); i++)
		if (tl_str_eq_c(key, tl_topic_config_key_name(i)))
			index = i;
	if (index < 0) {
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)TL_MIN(TL_MAX(key.len, 0), 100), key.ptr);
		struct tl_topic_config scratch;
		memset(&scratch, 0, sizeof(scratch));
		tl_topic_config_set(&scratch, name, "", why, why_size); /* names the key */
		return TL_ERR_INVALID_CONFIG;
	}
	if (value.len >= TL_CONFIG_STR_MAX) {
		snprintf(why, why_size, "value of %.*s is too long", key.len, key.ptr);
		return TL_ERR_INVALID_CONFIG;
	}
	int32_t at = edit_find(edit, key);
	if (at < 0) {
		TL_ASSERT(edit->count < (int32_t)TL_ARRAY_SIZE(edit->keys));
		at = edit->count++;
		edit->keys[at] = tl_topic_config_key_name(index);
	}
	edit->is_null[at] = value.len < 0;
	snprintf(edit->values[at], TL_CONFIG_STR_MAX, "%.*s", TL_MAX(value.len, 0), value.ptr);
	return TL_OK;
}

static void edit_remove(struct config_edit *edit, struct tl_str key)
{
	int32_t at = edit_find(edit, key);
	if (at < 0)
		return;
	edit->count--;
	edit->keys[at] = edit->keys[edit->count];
	edit->is_null[at] = edit->is_null[edit->count];
	memcpy(edit->values[at], edit->values[edit->count], TL_CONFIG_STR_MAX);
}

static void edit_from_topic(struct config_edit *edit, const struct tl_topic *topic)
{
	edit->count = 0;
	TL_ASSERT(tl_topic_config_key_count() <= (int)TL_ARRAY_SIZE(edit->keys));
	for (int i = 0; i < tl_topic_config_key_count(); i++) {
		if (!tl_topic_config_key_is_set(&topic->config, i))
			continue;
		edit->keys[edit->count] = tl_topic_config_key_name(i);
		edit->is_null[edit->count] = false;
		tl_topic_config_key_value(&topic->config, i, edit->values[edit->count],
					  TL_CONFIG_STR_MAX);
		edit->count++;
	}
}

/* The broker's defaults with @edit's settings on top; INVALID_CONFIG naming the bad
 * one. */
static tl_err edit_build(const struct config_edit *edit, const struct tl_config *broker_config,
			 struct tl_topic_config *out, char *why, size_t why_size)
{
	tl_topic_config_from_broker(out, broker_config);
	for (int32_t i = 0; i < edit->count; i++) {
		if (edit->is_null[i]) {
			snprintf(why, why_size, "Null value not supported for : %s", edit->keys[i]);
			return TL_ERR_INVALID_REQUEST;
		}
		tl_err err =
			tl_topic_config_set(out, edit->keys[i], edit->values[i], why, why_size);
		if (err != TL_OK)
			return err;
	}
	return TL_OK;
}

/* APPEND and SUBTRACT edit a list value; cleanup.policy is the only list key. */
static tl_err edit_list(struct config_edit *edit, const struct tl_topic *topic, struct tl_str key,
			struct tl_str item, bool append, char *why, size_t why_size)
{
	if (!tl_str_eq_c(key, "cleanup.policy")) {
		snprintf(why, why_size, "Config value %s is not allowed for config key %.*s",
			 append ? "append" : "subtract", key.len, key.ptr);
		return TL_ERR_INVALID_CONFIG;
	}
	char current[TL_CONFIG_STR_MAX];
	int32_t at = edit_find(edit, key);
	if (at >= 0)
		snprintf(current, sizeof(current), "%s", edit->values[at]);
	else
		snprintf(current, sizeof(current), "%s", topic->config.cleanup_policy);
	char next[TL_CONFIG_STR_MAX] = "";
	bool present = false;
	size_t n = 0;
	for (char *save, *tok = strtok_r(current, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		bool same = tl_str_eq_c(item, tok);
		present |= same;
		if (same && !append)
			continue;
		n += (size_t)snprintf(next + n, sizeof(next) - TL_MIN(n, sizeof(next)), "%s%s",
				      n ? "," : "", tok);
	}
	if (append && !present)
		n += (size_t)snprintf(next + n, sizeof(next) - TL_MIN(n, sizeof(next)), "%s%.*s",
				      n ? "," : "", TL_MAX(item.len, 0), item.ptr);
	return edit_set(edit, key, (struct tl_str){next, (int32_t)strlen(next)}, why, why_size);
}

/* Checks the resource of an alter request; the topic, or NULL with an error set. */
static struct tl_topic *alter_target(struct tl_request *req, int8_t type, struct tl_str name,
				     int16_t *error_code, const char **message)
{
	struct tl_broker *broker = req->conn->broker;
	if (type == RESOURCE_BROKER && !tl_authorize_cluster(req, TL_ACL_OP_ALTER_CONFIGS)) {
		*error_code = (int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		*message = NULL;
		return NULL;
	}
	if (type == RESOURCE_TOPIC && !tl_authorize_topic(req, TL_ACL_OP_ALTER_CONFIGS, name)) {
		*error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
		*message = NULL;
		return NULL;
	}
	if (type == RESOURCE_BROKER) {
		*error_code = (int16_t)TL_ERR_INVALID_REQUEST;
		*message = "Tally has no dynamic broker configs: change server.properties and "
			   "restart";
		return NULL;
	}
	if (type != RESOURCE_TOPIC) {
		*error_code = (int16_t)TL_ERR_INVALID_REQUEST;
		*message = "unsupported resource type";
		return NULL;
	}
	struct tl_topic *topic = tl_topic_find(broker, name);
	if (!topic) {
		*error_code = (int16_t)TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		*message = "unknown topic";
	}
	return topic;
}

/* An AlterConfigs or IncrementalAlterConfigs request in flight (cluster mode: each
 * topic's change waits for the metadata store). */
struct alter_state {
	bool incremental;
	struct tl_alter_configs_response plain;
	struct tl_incremental_alter_configs_response inc;
};

static void alter_respond(struct tl_request *req)
{
	const struct alter_state *st = req->state_data;
	int16_t version = req->header.api_version;
	tl_response_begin(req);
	if (st->incremental)
		tl_incremental_alter_configs_response_encode(&req->response, version, &st->inc);
	else
		tl_alter_configs_response_encode(&req->response, version, &st->plain);
	tl_response_end(req);
}

struct alter_wait {
	struct tl_request *req;
	int16_t *error_code;
	struct tl_str *message;
};

static void alter_stored(void *ctx, tl_err err, const char *message)
{
	struct alter_wait *w = ctx;
	struct tl_request *req = w->req;
	*w->error_code = (int16_t)err;
	if (err != TL_OK && message[0])
		*w->message = arena_str(&req->arena, message);
	if (!tl_request_wait_end(req))
		return;
	alter_respond(req);
}

/* Cluster mode: what @next changes against @topic's current settings, as "key=value\n"
 * lines to set (all set keys with @replace) and "key\n" lines to drop. False when the
 * text does not fit. */
static bool alter_diff(const struct tl_topic *topic, const struct tl_topic_config *next,
		       bool replace, char *sets, char *deletes, size_t size)
{
	size_t s = 0, d = 0;
	sets[0] = deletes[0] = '\0';
	for (int i = 0; i < tl_topic_config_key_count(); i++) {
		bool was = tl_topic_config_key_is_set(&topic->config, i);
		bool is = tl_topic_config_key_is_set(next, i);
		char now[TL_CONFIG_STR_MAX], before[TL_CONFIG_STR_MAX];
		tl_topic_config_key_value(next, i, now, sizeof(now));
		tl_topic_config_key_value(&topic->config, i, before, sizeof(before));
		if (is && (replace || !was || strcmp(now, before) != 0))
			s += (size_t)snprintf(sets + s, size - TL_MIN(s, size), "%s=%s\n",
					      tl_topic_config_key_name(i), now);
		else if (!is && was)
			d += (size_t)snprintf(deletes + d, size - TL_MIN(d, size), "%s\n",
					      tl_topic_config_key_name(i));
	}
	return s < size && d < size;
}

/* Builds and (unless @validate_only) applies @edit to @topic: at once on one node; in
 * cluster mode through the metadata store, answered from alter_stored(). @replace: the
 * edit is the topic's whole set (AlterConfigs), else a change of the keys it names. */
static int16_t alter_apply(struct tl_request *req, struct tl_topic *topic,
			   const struct config_edit *edit, bool replace, bool validate_only,
			   int16_t *error_code, struct tl_str *message)
{
	struct tl_broker *broker = req->conn->broker;
	char why[256] = "";
	struct tl_topic_config next;
	tl_err err = edit_build(edit, &broker->config, &next, why, sizeof(why));
	if (err == TL_OK && !validate_only && topic->cluster) {
		char sets[4096], deletes[4096];
		struct alter_wait *w = tl_arena_alloc(&req->arena, sizeof(*w));
		if (!alter_diff(topic, &next, replace, sets, deletes, sizeof(sets)) || !w)
			return (int16_t)TL_ERR_INVALID_REQUEST;
		*w = (struct alter_wait){req, error_code, message};
		req->waits++;
		err = tl_cluster_alter_topic(broker, topic->name, replace, sets, deletes,
					     alter_stored, w);
		if (err == TL_OK)
			return (int16_t)TL_OK; /* for now; alter_stored sets the outcome */
		req->waits--;
	} else if (err == TL_OK && !validate_only) {
		err = tl_topic_set_config(broker, topic, &next);
		if (err != TL_OK)
			snprintf(why, sizeof(why), "cannot write the topic metadata");
	}
	if (err != TL_OK && why[0])
		*message = arena_str(&req->arena, why);
	return (int16_t)err;
}

void tl_handle_alter_configs(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_alter_configs_request msg;
	if (tl_alter_configs_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed AlterConfigs request");
		return;
	}
	struct alter_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st) {
		tl_request_reject(req, "AlterConfigs request too large");
		return;
	}
	req->state_data = st;
	struct tl_alter_configs_response *resp = &st->plain;
	tl_alter_configs_response_defaults(resp);
	resp->responses_count = TL_MAX(msg.resources_count, 0);
	resp->responses = tl_arena_array(&req->arena, (size_t)resp->responses_count,
					 sizeof(*resp->responses));
	struct config_edit *edit = tl_arena_alloc(&req->arena, sizeof(*edit));
	if ((resp->responses_count > 0 && !resp->responses) || !edit) {
		tl_request_reject(req, "AlterConfigs request too large");
		return;
	}
	for (int32_t r = 0; r < resp->responses_count; r++) {
		const struct tl_alter_configs_request_alter_configs_resource *in =
			&msg.resources[r];
		struct tl_alter_configs_response_alter_configs_resource_response *out =
			&resp->responses[r];
		tl_alter_configs_response_alter_configs_resource_response_defaults(out);
		out->resource_type = in->resource_type;
		out->resource_name = in->resource_name;
		const char *message = NULL;
		struct tl_topic *topic = alter_target(req, in->resource_type, in->resource_name,
						      &out->error_code, &message);
		if (!topic) {
			out->error_message = tl_str_of(message);
			continue;
		}
		/* The whole set: keys not named go back to the broker's defaults. */
		edit->count = 0;
		char why[256] = "";
		tl_err err = TL_OK;
		for (int32_t i = 0; i < in->configs_count && err == TL_OK; i++)
			err = edit_set(edit, in->configs[i].name, in->configs[i].value, why,
				       sizeof(why));
		if (err != TL_OK) {
			out->error_code = (int16_t)err;
			out->error_message = arena_str(&req->arena, why);
			continue;
		}
		out->error_code = alter_apply(req, topic, edit, true, msg.validate_only,
					      &out->error_code, &out->error_message);
	}
	if (req->waits == 0)
		alter_respond(req);
}

void tl_handle_incremental_alter_configs(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_incremental_alter_configs_request msg;
	if (tl_incremental_alter_configs_request_decode(body, version, &req->arena, &msg) !=
	    TL_OK) {
		tl_request_reject(req, "malformed IncrementalAlterConfigs request");
		return;
	}
	struct alter_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st) {
		tl_request_reject(req, "IncrementalAlterConfigs request too large");
		return;
	}
	st->incremental = true;
	req->state_data = st;
	struct tl_incremental_alter_configs_response *resp = &st->inc;
	tl_incremental_alter_configs_response_defaults(resp);
	resp->responses_count = TL_MAX(msg.resources_count, 0);
	resp->responses = tl_arena_array(&req->arena, (size_t)resp->responses_count,
					 sizeof(*resp->responses));
	struct config_edit *edit = tl_arena_alloc(&req->arena, sizeof(*edit));
	if ((resp->responses_count > 0 && !resp->responses) || !edit) {
		tl_request_reject(req, "IncrementalAlterConfigs request too large");
		return;
	}
	for (int32_t r = 0; r < resp->responses_count; r++) {
		const struct tl_incremental_alter_configs_request_alter_configs_resource *in =
			&msg.resources[r];
		struct tl_incremental_alter_configs_response_alter_configs_resource_response *out =
			&resp->responses[r];
		tl_incremental_alter_configs_response_alter_configs_resource_response_defaults(out);
		out->resource_type = in->resource_type;
		out->resource_name = in->resource_name;
		const char *message = NULL;
		struct tl_topic *topic = alter_target(req, in->resource_type, in->resource_name,
						      &out->error_code, &message);
		if (!topic) {
			out->error_message = tl_str_of(message);
			continue;
		}
		/* Only the keys named change; the others keep their settings. */
		edit_from_topic(edit, topic);
		char why[256] = "";
		tl_err err = TL_OK;
		for (int32_t i = 0; i < in->configs_count && err == TL_OK; i++) {
			const struct tl_incremental_alter_configs_request_alterable_config *c =
				&in->configs[i];
			switch (c->config_operation) {
			case OP_SET:
				err = edit_set(edit, c->name, c->value, why, sizeof(why));
				break;
			case OP_DELETE:
				edit_remove(edit, c->name);
				break;
			case OP_APPEND:
			case OP_SUBTRACT:
				err = edit_list(edit, topic, c->name, c->value,
						c->config_operation == OP_APPEND, why, sizeof(why));
				break;
			default:
				snprintf(why, sizeof(why), "unknown config operation %d",
					 c->config_operation);
				err = TL_ERR_INVALID_REQUEST;
			}
		}
		if (err != TL_OK) {
			out->error_code = (int16_t)err;
			out->error_message = arena_str(&req->arena, why);
			continue;
		}
		out->error_code = alter_apply(req, topic, edit, false, msg.validate_only,
					      &out->error_code, &out->error_message);
	}
	if (req->waits == 0)
		alter_respond(req);
}

/* ---- DeleteRecords ---- */

/* A DeleteRecords in flight: cluster mode answers a partition once every live replica's
 * log start has reached the new one (Kafka's DelayedDeleteRecords), so that no leader
 * elected after the answer serves the deleted records again. */
struct delete_state {
	struct tl_request *req;
	struct tl_delete_records_response resp;
};

struct delete_partition_wait {
	struct tl_delete_wait wait; /* first: the callback gets it */
	struct delete_state *st;
	struct tl_delete_records_response_delete_records_partition_result *out;
};

static void delete_records_respond(struct tl_request *req,
				   const struct tl_delete_records_response *resp)
{
	tl_response_begin(req);
	tl_delete_records_response_encode(&req->response, req->header.api_version, resp);
	tl_response_end(req);
}

static void delete_waited(struct tl_delete_wait *wait, tl_err err, int64_t low_watermark)
{
	struct delete_partition_wait *w = (struct delete_partition_wait *)wait;
	w->out->error_code = (int16_t)err;
	w->out->low_watermark = err == TL_OK ? low_watermark : -1;
	struct tl_request *req = w->st->req;
	if (tl_request_wait_end(req))
		delete_records_respond(req, &w->st->resp);
}

static void
delete_records_one(struct tl_request *req, struct delete_state *st, int32_t timeout_ms,
		   struct tl_str topic_name,
		   const struct tl_delete_records_request_delete_records_partition *in,
		   struct tl_delete_records_response_delete_records_partition_result *out)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_partition *p = tl_partition_find_any(broker, topic_name, in->partition_index);
	if (!p) {
		out->error_code = (int16_t)TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	/* As Kafka: the coordinators' state is not for deleting (committed offsets and
	 * transactions would be gone after a restart), nor a topic only compacted. */
	if (p->topic->internal) {
		out->error_code = (int16_t)TL_ERR_INVALID_TOPIC_EXCEPTION;
		return;
	}
	if (!p->topic->config.log.cleanup_delete) {
		out->error_code = (int16_t)TL_ERR_POLICY_VIOLATION;
		return;
	}
	/* Cluster mode: the leader's start is the partition's; followers take it from
	 * the leader's fetch responses. */
	if (p->topic->cluster && tl_replica_check_client(p, -1) != TL_OK) {
		out->error_code = (int16_t)TL_ERR_NOT_LEADER_OR_FOLLOWER;
		return;
	}
	if (!p->log) {
		out->error_code = (int16_t)TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	int64_t start = -1;
	tl_err err = tl_log_delete_records(p->log, in->offset, &start);
	out->error_code = (int16_t)err;
	if (err != TL_OK)
		return;
	tl_log_tick(p->log, tl_wall_ms()); /* drop the segments wholly below now */
	out->low_watermark = start;
	if (!p->topic->cluster)
		return;
	int64_t low = tl_replica_low_watermark(broker, p);
	if (low >= start) {
		out->low_watermark = low;
		return;
	}
	struct delete_partition_wait *w = tl_arena_alloc(&req->arena, sizeof(*w));
	if (!w) {
		out->error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
		return;
	}
	memset(w, 0, sizeof(*w));
	w->wait.offset = start;
	w->wait.deadline_ms = tl_mono_ms() + TL_MAX(timeout_ms, 0);
	w->wait.done = delete_waited;
	w->st = st;
	w->out = out;
	req->waits++;
	tl_replica_wait_low_watermark(p, &w->wait);
}

void tl_handle_delete_records(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_delete_records_request msg;
	if (tl_delete_records_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DeleteRecords request");
		return;
	}
	struct delete_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st) {
		tl_request_reject(req, "DeleteRecords request too large");
		return;
	}
	st->req = req;
	struct tl_delete_records_response *resp = &st->resp;
	tl_delete_records_response_defaults(resp);
	resp->topics_count = TL_MAX(msg.topics_count, 0);
	resp->topics =
		tl_arena_array(&req->arena, (size_t)resp->topics_count, sizeof(*resp->topics));
	if (resp->topics_count > 0 && !resp->topics) {
		tl_request_reject(req, "DeleteRecords request too large");
		return;
	}
	for (int32_t t = 0; t < resp->topics_count; t++) {
		const struct tl_delete_records_request_delete_records_topic *in = &msg.topics[t];
		struct tl_delete_records_response_delete_records_topic_result *out =
			&resp->topics[t];
		tl_delete_records_response_delete_records_topic_result_defaults(out);
		out->name = in->name;
		out->partitions_count = TL_MAX(in->partitions_count, 0);
		out->partitions = tl_arena_array(&req->arena, (size_t)out->partitions_count,
						 sizeof(*out->partitions));
		if (out->partitions_count > 0 && !out->partitions) {
			/* Nothing waits yet: a wait is only parked after every array exists. */
			tl_request_reject(req, "DeleteRecords request too large");
			return;
		}
		for (int32_t i = 0; i < out->partitions_count; i++) {
			tl_delete_records_response_delete_records_partition_result_defaults(
				&out->partitions[i]);
			out->partitions[i].partition_index = in->partitions[i].partition_index;
			out->partitions[i].low_watermark = -1;
		}
	}
	for (int32_t t = 0; t < resp->topics_count; t++) {
		const struct tl_delete_records_request_delete_records_topic *in = &msg.topics[t];
		struct tl_delete_records_response_delete_records_topic_result *out =
			&resp->topics[t];
		bool topic_ok = tl_authorize_topic(req, TL_ACL_OP_DELETE, in->name);
		for (int32_t i = 0; i < out->partitions_count; i++) {
			if (topic_ok)
				delete_records_one(req, st, msg.timeout_ms, in->name,
						   &in->partitions[i], &out->partitions[i]);
			else
				out->partitions[i].error_code =
					(int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
		}
	}
	if (req->waits == 0)
		delete_records_respond(req, resp);
}

/* ---- DescribeLogDirs ---- */

/* True when the request asks about partition @index of @topic (topics null: all). */
static bool log_dirs_wanted(const struct tl_describe_log_dirs_request *msg,
			    const struct tl_topic *topic, int32_t index)
{
	if (msg->topics_count < 0)
		return true;
	for (int32_t t = 0; t < msg->topics_count; t++) {
		if (!tl_str_eq_c(msg->topics[t].topic, topic->name))
			continue;
		for (int32_t i = 0; i < msg->topics[t].partitions_count; i++)
			if (msg->topics[t].partitions[i] == index)
				return true;
	}
	return false;
}

/* One log directory (log.dirs has one): every hosted partition's size on disk. */
void tl_handle_describe_log_dirs(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_describe_log_dirs_request msg;
	if (tl_describe_log_dirs_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeLogDirs request");
		return;
	}
	struct tl_describe_log_dirs_response resp;
	tl_describe_log_dirs_response_defaults(&resp);
	struct tl_describe_log_dirs_response_describe_log_dirs_result *dir =
		tl_arena_alloc(&req->arena, sizeof(*dir));
	struct tl_describe_log_dirs_response_describe_log_dirs_topic *topics = tl_arena_array(
		&req->arena, (size_t)TL_MAX(broker->topics.count, 1), sizeof(*topics));
	if (!dir || !topics) {
		tl_request_reject(req, "DescribeLogDirs answer too large");
		return;
	}
	if (!tl_authorize_cluster(req, TL_ACL_OP_DESCRIBE)) {
		/* Kafka: an empty answer (with the error from v3). */
		resp.error_code = (int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.results_count = 0;
		tl_response_begin(req);
		tl_describe_log_dirs_response_encode(&req->response, version, &resp);
		tl_response_end(req);
		return;
	}
	tl_describe_log_dirs_response_describe_log_dirs_result_defaults(dir);
	dir->log_dir = tl_str_of(broker->data_dir);
	struct statvfs fs;
	if (statvfs(broker->data_dir, &fs) == 0) {
		dir->total_bytes = (int64_t)(fs.f_blocks * fs.f_frsize);
		dir->usable_bytes = (int64_t)(fs.f_bavail * fs.f_frsize);
	}
	int32_t topic_count = 0;
	for (struct tl_topic *topic = tl_topic_next(broker, NULL); topic;
	     topic = tl_topic_next(broker, topic)) {
		struct tl_describe_log_dirs_response_describe_log_dirs_topic *out =
			&topics[topic_count];
		tl_describe_log_dirs_response_describe_log_dirs_topic_defaults(out);
		out->name = tl_str_of(topic->name);
		out->partitions = tl_arena_array(&req->arena, (size_t)topic->partition_count,
						 sizeof(*out->partitions));
		if (!out->partitions) {
			tl_request_reject(req, "DescribeLogDirs answer too large");
			return;
		}
		out->partitions_count = 0;
		for (int32_t i = 0; i < topic->partition_count; i++) {
			const struct tl_partition *p = &topic->partitions[i];
			if (!p->log || !log_dirs_wanted(&msg, topic, i))
				continue;
			struct tl_describe_log_dirs_response_describe_log_dirs_partition *po =
				&out->partitions[out->partitions_count++];
			tl_describe_log_dirs_response_describe_log_dirs_partition_defaults(po);
			po->partition_index = i;
			po->partition_size = tl_log_size_bytes(p->log);
			po->offset_lag = 0; /* no future (moving) replica */
		}
		if (out->partitions_count > 0 && topic_count < TL_MAX(broker->topics.count, 1))
			topic_count++;
	}
	dir->topics = topics;
	dir->topics_count = topic_count;
	resp.results = dir;
	resp.results_count = 1;
	tl_response_begin(req);
	tl_describe_log_dirs_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- DescribeCluster ---- */

void tl_handle_describe_cluster(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_describe_cluster_request msg;
	if (tl_describe_cluster_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeCluster request");
		return;
	}
	struct tl_describe_cluster_response resp;
	tl_describe_cluster_response_defaults(&resp);
	resp.cluster_id = tl_str_of(broker->config.cluster_id);
	resp.controller_id = broker->config.node_id;
	resp.cluster_authorized_operations =
		msg.include_cluster_authorized_operations
			? tl_authorized_operations(req, TL_ACL_RESOURCE_CLUSTER,
						   tl_str_of(TL_ACL_CLUSTER_NAME))
			: INT32_MIN; /* not asked */
	struct tl_describe_cluster_response_describe_cluster_broker self;
	tl_describe_cluster_response_describe_cluster_broker_defaults(&self);
	self.broker_id = broker->config.node_id;
	const char *advertised_host;
	tl_conn_advertised(req->conn, &advertised_host, &self.port);
	self.host = tl_str_of(advertised_host);
	if (broker->config.broker_rack[0])
		self.rack = tl_str_of(broker->config.broker_rack);
	resp.brokers = &self;
	resp.brokers_count = 1;
	const struct tl_cluster_view *view =
		broker->cluster ? tl_cluster_view(broker->cluster) : NULL;
	if (view && view->broker_count > 0) {
		struct tl_describe_cluster_response_describe_cluster_broker *brokers =
			tl_arena_array(&req->arena, (size_t)view->broker_count, sizeof(*brokers));
		if (brokers) {
			int32_t count = 0;
			for (int32_t i = 0; i < view->broker_count; i++) {
				/* The client's listener's endpoint; none: left out (Kafka) */
				const char *host;
				int32_t port;
				if (!tl_cluster_broker_address(&view->brokers[i], req->conn, &host,
							       &port))
					continue;
				tl_describe_cluster_response_describe_cluster_broker_defaults(
					&brokers[count]);
				brokers[count].broker_id = view->brokers[i].id;
				brokers[count].host = tl_str_of(host);
				brokers[count].port = port;
				if (view->brokers[i].rack[0])
					brokers[count].rack = tl_str_of(view->brokers[i].rack);
				count++;
			}
			resp.brokers = brokers;
			resp.brokers_count = count;
		}
		resp.controller_id = view->controller;
	}
	tl_response_begin(req);
	tl_describe_cluster_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}
