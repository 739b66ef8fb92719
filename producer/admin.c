/* admin.c - the libtally admin client, see include/tally/admin.h. Each call is one
 * blocking request over the shared connection layer (client.h), encoded and decoded
 * with the generated codec; CreateTopics and DeleteTopics go to the controller. */
#include "tally/admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "common/assert.h"
#include "conf.h"
#include "export.h"
#include "protocol/messages.h"

#define ADMIN_ARENA_MAX  (64u << 20)
#define ADMIN_CONFIG_MAX 1000

static const struct tl_conf_key admin_keys[] = {
	{"bootstrap.servers", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	{"client.id", TL_CONF_STR, "libtally-admin", 0, 0, NULL, NULL},
	{"request.timeout.ms", TL_CONF_INT, "30000", 1, INT32_MAX, NULL, NULL},
	{"reconnect.backoff.ms", TL_CONF_INT, "50", 0, 3600000, NULL, NULL},
};

struct tl_admin_conf {
	struct tl_conf conf;
};

struct tl_admin {
	struct tl_client *client;
	char last_error[512];
};

/* The storage behind a struct tl_admin_topics. */
struct admin_topics {
	struct tl_admin_topics pub;
	struct tl_admin_topic_info *topics;
	struct tl_arena arena; /* names, partitions, node arrays */
};

/* ---- configuration, create, destroy ---- */

TL_EXPORT struct tl_admin_conf *tl_admin_conf_create(void)
{
	struct tl_admin_conf *ac = calloc(1, sizeof(*ac));
	if (!ac)
		return NULL;
	if (tl_conf_init(&ac->conf, admin_keys, TL_ARRAY_SIZE(admin_keys)) != TL_OK) {
		free(ac);
		return NULL;
	}
	return ac;
}

TL_EXPORT void tl_admin_conf_destroy(struct tl_admin_conf *ac)
{
	if (!ac)
		return;
	tl_conf_deinit(&ac->conf);
	free(ac);
}

TL_EXPORT tl_err tl_admin_conf_set(struct tl_admin_conf *ac, const char *key, const char *value,
				   char *errstr, size_t errstr_size)
{
	return tl_conf_set(&ac->conf, key, value, errstr, errstr_size);
}

TL_EXPORT tl_err tl_admin_create(const struct tl_admin_conf *ac, struct tl_admin **out,
				 char *errstr, size_t errstr_size)
{
	tl_conf_errstr(errstr, errstr_size, "%s", "");
	struct tl_admin *admin = calloc(1, sizeof(*admin));
	if (!admin)
		return TL_ERR_NOMEM;
	struct tl_client_conf cc = {
		.bootstrap_servers = tl_conf_str(&ac->conf, "bootstrap.servers"),
		.client_id = tl_conf_str(&ac->conf, "client.id"),
		.request_timeout_ms = (int32_t)tl_conf_int(&ac->conf, "request.timeout.ms"),
		.reconnect_backoff_ms = (int32_t)tl_conf_int(&ac->conf, "reconnect.backoff.ms"),
		.metadata_max_age_ms = 300000,
		.allow_auto_create_topics = false,
	};
	tl_err err = tl_client_create(&cc, &admin->client, errstr, errstr_size);
	if (err != TL_OK) {
		free(admin);
		return err;
	}
	*out = admin;
	return TL_OK;
}

TL_EXPORT void tl_admin_destroy(struct tl_admin *admin)
{
	if (!admin)
		return;
	tl_client_destroy(admin->client);
	free(admin);
}

TL_EXPORT const char *tl_admin_last_error(struct tl_admin *admin)
{
	return admin->last_error;
}

static tl_err admin_fail(struct tl_admin *admin, tl_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static tl_err admin_fail(struct tl_admin *admin, tl_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(admin->last_error, sizeof(admin->last_error), fmt, ap);
	va_end(ap);
	return err;
}

static tl_err admin_call_fail(struct tl_admin *admin, tl_err err, const char *what)
{
	const char *conn = tl_client_last_error(admin->client);
	if (err == TL_ERR_TIMED_OUT)
		return admin_fail(admin, err,
				  "%s: no broker answered in time%s%s; check bootstrap.servers",
				  what, conn[0] ? ": " : "", conn);
	return admin_fail(admin, err, "%s failed: %s%s%s", what, tl_err_name(err),
			  conn[0] ? "; " : "", conn);
}

/* The controller's node id after a metadata refresh. */
static tl_err admin_controller(struct tl_admin *admin, int timeout_ms, int32_t *node_out)
{
	tl_err err = tl_client_metadata_refresh_sync(admin->client, false, timeout_ms);
	if (err != TL_OK)
		return admin_call_fail(admin, err, "Metadata");
	int32_t node = tl_client_controller(admin->client);
	*node_out = node >= 0 ? node : TL_CLIENT_NODE_ANY;
	return TL_OK;
}

/* ---- create and delete ---- */

static void create_encode(struct tl_buf *body, int16_t version, const void *arg)
{
	tl_create_topics_request_encode(body, version, arg);
}

TL_EXPORT tl_err tl_admin_create_topic(struct tl_admin *admin, const char *topic,
				       int32_t partitions, int16_t replication_factor,
				       const struct tl_admin_config_entry *configs,
				       int32_t config_count, int timeout_ms)
{
	if (!topic || !topic[0] || partitions == 0 || partitions < -1 || config_count < 0 ||
	    config_count > ADMIN_CONFIG_MAX || (config_count > 0 && !configs))
		return admin_fail(
			admin, TL_ERR_INVALID,
			"create_topic: needs a topic name, partitions > 0 (or -1) and valid configs");
	int32_t node = TL_CLIENT_NODE_ANY;
	tl_err err = admin_controller(admin, timeout_ms, &node);
	if (err != TL_OK)
		return err;
	struct tl_create_topics_request_createable_topic_config *cfg =
		calloc((size_t)config_count + 1, sizeof(*cfg));
	if (!cfg)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < config_count; i++) {
		tl_create_topics_request_createable_topic_config_defaults(&cfg[i]);
		cfg[i].name = tl_str_of(configs[i].name);
		cfg[i].value = tl_str_of(configs[i].value);
	}
	struct tl_create_topics_request_creatable_topic t;
	tl_create_topics_request_creatable_topic_defaults(&t);
	t.name = tl_str_of(topic);
	t.num_partitions = partitions;
	t.replication_factor = replication_factor;
	t.assignments_count = 0;
	t.configs_count = config_count;
	t.configs = cfg;
	struct tl_create_topics_request req;
	tl_create_topics_request_defaults(&req);
	req.topics_count = 1;
	req.topics = &t;
	req.timeout_ms = timeout_ms;
	struct tl_buf resp_bytes;
	tl_buf_init(&resp_bytes);
	int16_t version;
	err = tl_client_call(admin->client, node, TL_CLIENT_API_CREATE_TOPICS, create_encode, &req,
			     timeout_ms, &resp_bytes, &version);
	free(cfg);
	if (err != TL_OK) {
		tl_buf_deinit(&resp_bytes);
		return admin_call_fail(admin, err, "CreateTopics");
	}
	struct tl_arena arena;
	tl_arena_init(&arena, ADMIN_ARENA_MAX);
	struct tl_cursor c;
	tl_cursor_init(&c, resp_bytes.data, resp_bytes.len);
	struct tl_create_topics_response resp;
	err = tl_create_topics_response_decode(&c, version, &arena, &resp);
	if (err == TL_OK)
		err = resp.topics_count == 1 ? (tl_err)resp.topics[0].error_code
					     : TL_ERR_CORRUPT_MESSAGE;
	if (err != TL_OK) {
		struct tl_str msg =
			resp.topics_count == 1 ? resp.topics[0].error_message : tl_str_of(NULL);
		admin_fail(admin, err, "create topic %s: %s%s%.*s", topic,
			   err == TL_ERR_TOPIC_ALREADY_EXISTS ? "it already exists"
							      : tl_err_message(err),
			   msg.len > 0 ? ": " : "", msg.len > 0 ? (int)msg.len : 0,
			   msg.len > 0 ? msg.ptr : "");
	}
	tl_arena_deinit(&arena);
	tl_buf_deinit(&resp_bytes);
	return err;
}

static void delete_encode(struct tl_buf *body, int16_t version, const void *arg)
{
	tl_delete_topics_request_encode(body, version, arg);
}

TL_EXPORT tl_err tl_admin_delete_topic(struct tl_admin *admin, const char *topic, int timeout_ms)
{
	if (!topic || !topic[0])
		return admin_fail(admin, TL_ERR_INVALID, "delete_topic: needs a topic name");
	int32_t node = TL_CLIENT_NODE_ANY;
	tl_err err = admin_controller(admin, timeout_ms, &node);
	if (err != TL_OK)
		return err;
	struct tl_str name = tl_str_of(topic);
	struct tl_delete_topics_request req;
	tl_delete_topics_request_defaults(&req);
	req.topic_names_count = 1;
	req.topic_names = &name;
	req.topics_count = 0;
	req.timeout_ms = timeout_ms;
	struct tl_buf resp_bytes;
	tl_buf_init(&resp_bytes);
	int16_t version;
	err = tl_client_call(admin->client, node, TL_CLIENT_API_DELETE_TOPICS, delete_encode, &req,
			     timeout_ms, &resp_bytes, &version);
	if (err != TL_OK) {
		tl_buf_deinit(&resp_bytes);
		return admin_call_fail(admin, err, "DeleteTopics");
	}
	struct tl_arena arena;
	tl_arena_init(&arena, ADMIN_ARENA_MAX);
	struct tl_cursor c;
	tl_cursor_init(&c, resp_bytes.data, resp_bytes.len);
	struct tl_delete_topics_response resp;
	err = tl_delete_topics_response_decode(&c, version, &arena, &resp);
	if (err == TL_OK)
		err = resp.responses_count == 1 ? (tl_err)resp.responses[0].error_code
						: TL_ERR_CORRUPT_MESSAGE;
	if (err != TL_OK)
		admin_fail(admin, err, "delete topic %s: %s", topic,
			   err == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION ? "it does not exist"
								    : tl_err_message(err));
	tl_arena_deinit(&arena);
	tl_buf_deinit(&resp_bytes);
	return err;
}

/* ---- list and describe ---- */

static void metadata_encode(struct tl_buf *body, int16_t version, const void *arg)
{
	tl_metadata_request_encode(body, version, arg);
}

static int topic_info_cmp(const void *a, const void *b)
{
	const struct tl_admin_topic_info *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static char *arena_strdup(struct tl_arena *arena, struct tl_str s)
{
	size_t len = s.len > 0 ? (size_t)s.len : 0;
	char *p = tl_arena_alloc(arena, len + 1);
	if (p && len)
		memcpy(p, s.ptr, len);
	return p;
}

static int32_t *arena_ints(struct tl_arena *arena, const int32_t *src, int32_t count)
{
	size_t n = count > 0 ? (size_t)count : 0;
	int32_t *p = tl_arena_array(arena, n + 1, sizeof(*p));
	if (p && n)
		memcpy(p, src, n * sizeof(*p));
	return p;
}

/* Copies one metadata topic into @out (storage from @arena). */
static bool topic_info_copy(struct tl_arena *arena,
			    const struct tl_metadata_response_metadata_response_topic *t,
			    struct tl_admin_topic_info *out)
{
	out->name = arena_strdup(arena, t->name);
	out->err = (tl_err)t->error_code;
	out->is_internal = t->is_internal;
	int32_t count = t->partitions_count > 0 ? t->partitions_count : 0;
	struct tl_admin_partition_info *parts =
		tl_arena_array(arena, (size_t)count + 1, sizeof(*parts));
	if (!out->name || !parts)
		return false;
	for (int32_t i = 0; i < count; i++) {
		const struct tl_metadata_response_metadata_response_partition *p =
			&t->partitions[i];
		if (p->partition_index < 0 || p->partition_index >= count)
			return false;
		struct tl_admin_partition_info *o = &parts[p->partition_index];
		o->partition = p->partition_index;
		o->err = (tl_err)p->error_code;
		o->leader = p->leader_id;
		o->leader_epoch = p->leader_epoch;
		o->replica_count = TL_MAX(p->replica_nodes_count, 0);
		o->replicas = arena_ints(arena, p->replica_nodes, p->replica_nodes_count);
		o->isr_count = TL_MAX(p->isr_nodes_count, 0);
		o->isr = arena_ints(arena, p->isr_nodes, p->isr_nodes_count);
		if (!o->replicas || !o->isr)
			return false;
	}
	out->partition_count = count;
	out->partitions = parts;
	return true;
}

/* One Metadata request for @names (NULL: every topic); results in @out. */
static tl_err admin_metadata(struct tl_admin *admin, const char *const *names, int32_t count,
			     int timeout_ms, struct tl_admin_topics **out)
{
	struct tl_metadata_request_metadata_request_topic *ts =
		calloc((size_t)count + 1, sizeof(*ts));
	struct admin_topics *result = calloc(1, sizeof(*result));
	if (!ts || !result) {
		free(ts);
		free(result);
		return TL_ERR_NOMEM;
	}
	tl_arena_init(&result->arena, ADMIN_ARENA_MAX);
	for (int32_t i = 0; names && i < count; i++) {
		tl_metadata_request_metadata_request_topic_defaults(&ts[i]);
		ts[i].name = tl_str_of(names[i]);
	}
	struct tl_metadata_request req;
	tl_metadata_request_defaults(&req);
	req.topics_count = names ? count : -1;
	req.topics = ts;
	req.allow_auto_topic_creation = false;
	struct tl_buf resp_bytes;
	tl_buf_init(&resp_bytes);
	int16_t version;
	tl_err err = tl_client_call(admin->client, TL_CLIENT_NODE_ANY, TL_CLIENT_API_METADATA,
				    metadata_encode, &req, timeout_ms, &resp_bytes, &version);
	free(ts);
	struct tl_arena arena;
	tl_arena_init(&arena, ADMIN_ARENA_MAX);
	struct tl_metadata_response resp;
	if (err == TL_OK) {
		struct tl_cursor c;
		tl_cursor_init(&c, resp_bytes.data, resp_bytes.len);
		err = tl_metadata_response_decode(&c, version, &arena, &resp);
	}
	if (err != TL_OK) {
		admin_call_fail(admin, err, "Metadata");
		goto out;
	}
	int32_t n = TL_MAX(resp.topics_count, 0);
	result->topics = calloc((size_t)n + 1, sizeof(*result->topics));
	err = TL_ERR_NOMEM;
	if (!result->topics)
		goto out;
	for (int32_t i = 0; i < n; i++)
		if (!topic_info_copy(&result->arena, &resp.topics[i], &result->topics[i]))
			goto out;
	/* Describe answers in the order asked; list sorts by name. */
	if (!names)
		qsort(result->topics, (size_t)n, sizeof(*result->topics), topic_info_cmp);
	for (int32_t i = 0; names && i < n && i < count; i++) {
		for (int32_t j = i; j < n; j++) {
			if (strcmp(result->topics[j].name, names[i]) == 0) {
				struct tl_admin_topic_info tmp = result->topics[i];
				result->topics[i] = result->topics[j];
				result->topics[j] = tmp;
				break;
			}
		}
	}
	result->pub.count = n;
	result->pub.topics = result->topics;
	*out = &result->pub;
	result = NULL;
	err = TL_OK;
out:
	if (result) {
		tl_arena_deinit(&result->arena);
		free(result->topics);
		free(result);
	}
	tl_arena_deinit(&arena);
	tl_buf_deinit(&resp_bytes);
	return err;
}

TL_EXPORT tl_err tl_admin_list_topics(struct tl_admin *admin, struct tl_admin_topics **out,
				      int timeout_ms)
{
	return admin_metadata(admin, NULL, 0, timeout_ms, out);
}

TL_EXPORT tl_err tl_admin_describe_topics(struct tl_admin *admin, const char *const *topics,
					  int32_t count, struct tl_admin_topics **out,
					  int timeout_ms)
{
	if (!topics || count <= 0)
		return admin_fail(admin, TL_ERR_INVALID, "describe_topics: needs topic names");
	for (int32_t i = 0; i < count; i++)
		if (!topics[i] || !topics[i][0])
			return admin_fail(admin, TL_ERR_INVALID,
					  "describe_topics: topic %d is empty", i);
	return admin_metadata(admin, topics, count, timeout_ms, out);
}

TL_EXPORT void tl_admin_topics_destroy(struct tl_admin_topics *topics)
{
	if (!topics)
		return;
	struct admin_topics *result = (struct admin_topics *)topics;
	tl_arena_deinit(&result->arena);
	free(result->topics);
	free(result);
}
