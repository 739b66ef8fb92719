/* quota_admin.c - client quotas in tallyd: charging requests (KIP-219 throttling),
 * DescribeClientQuotas and AlterClientQuotas (KIP-546), and their file.
 *
 *   .tally-meta/client-quotas   one entity a line (tl_quotas_format), replaced
 *                               atomically on every change
 *
 * Throttling as Kafka does it: the response goes out at once with throttle_time_ms and
 * the connection is not read for that long; a client older than KIP-219 (Produce < v6,
 * Fetch < v8) does not back off by itself, so its response is held for the time
 * instead. A throttled Fetch is answered with no records and its bytes are not counted
 * (KafkaApis.handleFetchRequest).
 *
 * Cluster mode: the quotas live in the metadata store (the client-quotas key, see
 * cluster.h), the same on every broker; there is no file. AlterClientQuotas sends the
 * request's sets and removals to the metadata thread, which merges them into the key by
 * compare-and-swap, and answers once stored; this broker applies the change at once,
 * every broker (this one too) the key from its view (tl_quota_apply_view). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

#define QUOTA_FILE      "client-quotas"
#define QUOTA_FILE_MAX  (64 * 1024 * 1024)
#define ENTITY_USER     "user"
#define ENTITY_CLIENT   "client-id"
#define ENTITY_IP       "ip"
#define MATCH_EXACT     0
#define MATCH_DEFAULT   1
#define MATCH_SPECIFIED 2

static void meta_dir(const struct tl_broker *broker, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s/.tally-meta", broker->data_dir);
}

tl_err tl_quotas_load(struct tl_broker *broker)
{
	if (tl_config_is_cluster(&broker->config))
		return TL_OK; /* the view brings them (tl_quota_apply_view) */
	char dir[TL_CONFIG_STR_MAX + 32], path[TL_CONFIG_STR_MAX + 64];
	meta_dir(broker, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/" QUOTA_FILE, dir);
	char *text;
	size_t len;
	tl_err err = tl_broker_read_file(path, QUOTA_FILE_MAX, "quota", &text, &len);
	if (err != TL_OK || !text)
		return err;
	err = tl_quotas_parse(&broker->quotas, text);
	free(text);
	if (err != TL_OK) {
		tl_crit("quota: corrupt file path=%s problem=\"%s\"", path, broker->quotas.why);
		return err;
	}
	tl_info("quota: loaded entities=%d", broker->quotas.entity_count);
	return TL_OK;
}

void tl_quota_apply_view(struct tl_broker *broker, const char *text)
{
	struct tl_quotas *quotas = &broker->quotas;
	if (quotas->view_text && strcmp(quotas->view_text, text) == 0)
		return;
	char *copy = strdup(text);
	if (!copy || tl_quotas_replace(quotas, text) != TL_OK) {
		tl_crit("quota: cannot apply the cluster's client quotas, keeping the previous "
			"ones problem=\"%s\"",
			copy ? quotas->why : "out of memory");
		free(copy);
		return;
	}
	free(quotas->view_text);
	quotas->view_text = copy;
	tl_info("quota: applied the cluster's client quotas entities=%d", quotas->entity_count);
}

static tl_err quotas_save(struct tl_broker *broker)
{
	char dir[TL_CONFIG_STR_MAX + 32];
	meta_dir(broker, dir, sizeof(dir));
	char *text = tl_quotas_format(&broker->quotas);
	if (!text)
		return TL_ERR_IO;
	tl_err err = tl_broker_write_file_atomic(dir, QUOTA_FILE, text, 0644);
	free(text);
	return err;
}

int32_t tl_quota_charge(struct tl_request *req, enum tl_quota_key key, int64_t bytes, bool refund)
{
	struct tl_broker *broker = req->conn->broker;
	if (tl_quotas_is_empty(&broker->quotas) || req->conn->closed)
		return 0;
	int64_t now = tl_mono_ms();
	struct tl_str user = tl_str_of(TL_QUOTA_USER_ANONYMOUS);
	struct tl_str client = req->header.client_id;
	client.len = TL_MAX(client.len, 0);
	int32_t ms = tl_quotas_record(&broker->quotas, key, user, client, (double)bytes, now);
	if (ms <= 0)
		return 0;
	if (refund)
		tl_quotas_unrecord(&broker->quotas, key, user, client, (double)bytes, now);
	int16_t version = req->header.api_version;
	bool backs_off = (req->header.api_key == TL_API_PRODUCE && version >= 6) ||
			 (req->header.api_key == TL_API_FETCH && version >= 8);
	req->throttle_ms = TL_MAX(req->throttle_ms, (int64_t)ms);
	tl_conn_throttle(req->conn, req, now + ms, !backs_off);
	tl_debug("quota: throttled peer=%s client_id=%.*s key=%s throttle_ms=%d", req->conn->peer,
		 client.len, client.ptr, tl_quota_key_name(key), ms);
	return ms;
}

int64_t tl_quota_window_bytes(struct tl_request *req, enum tl_quota_key key)
{
	struct tl_quotas *quotas = &req->conn->broker->quotas;
	if (tl_quotas_is_empty(quotas))
		return INT64_MAX;
	struct tl_str client = req->header.client_id;
	client.len = TL_MAX(client.len, 0);
	double quota;
	struct tl_str user_tag, client_tag;
	if (!tl_quotas_resolve(quotas, tl_str_of(TL_QUOTA_USER_ANONYMOUS), client, key, &quota,
			       &user_tag, &client_tag))
		return INT64_MAX;
	double bytes = quota * TL_QUOTA_MIN_FULL_WINDOWS * (double)quotas->window_ms / 1000.0;
	return (int64_t)TL_MAX(TL_MIN(bytes, (double)INT32_MAX), 1.0);
}

/* ---- shared ---- */

static struct tl_str arena_printf(struct tl_arena *arena, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static struct tl_str arena_printf(struct tl_arena *arena, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	size_t n = strlen(text);
	char *p = tl_arena_alloc(arena, n + 1);
	if (!p)
		return tl_str_of("out of memory");
	memcpy(p, text, n + 1);
	return (struct tl_str){p, (int32_t)n};
}

static char *arena_cstr(struct tl_arena *arena, struct tl_str s)
{
	char *p = tl_arena_alloc(arena, (size_t)TL_MAX(s.len, 0) + 1);
	if (!p)
		return NULL;
	if (s.len > 0)
		memcpy(p, s.ptr, (size_t)s.len);
	p[TL_MAX(s.len, 0)] = '\0';
	return p;
}

/* ---- DescribeClientQuotas ---- */

static bool component_matches(const struct tl_quota_part *part, int8_t match_type,
			      struct tl_str match)
{
	if (!part->present)
		return false;
	switch (match_type) {
	case MATCH_EXACT:
		return !part->is_default && tl_str_eq_c(match, part->name);
	case MATCH_DEFAULT:
		return part->is_default;
	default:
		return true;
	}
}

static bool entity_matches(const struct tl_quota_entity *e,
			   const struct tl_describe_client_quotas_request *msg)
{
	bool wants_user = false, wants_client = false;
	for (int32_t i = 0; i < msg->components_count; i++) {
		const struct tl_describe_client_quotas_request_component_data *c =
			&msg->components[i];
		const struct tl_quota_part *part;
		if (tl_str_eq_c(c->entity_type, ENTITY_USER)) {
			part = &e->user;
			wants_user = true;
		} else if (tl_str_eq_c(c->entity_type, ENTITY_CLIENT)) {
			part = &e->client;
			wants_client = true;
		} else {
			return false; /* ip: no such entities here */
		}
		if (!component_matches(part, c->match_type, c->match))
			return false;
	}
	if (msg->strict &&
	    ((e->user.present && !wants_user) || (e->client.present && !wants_client)))
		return false;
	return true;
}

static const char *describe_invalid(const struct tl_describe_client_quotas_request *msg)
{
	for (int32_t i = 0; i < msg->components_count; i++) {
		const struct tl_describe_client_quotas_request_component_data *c =
			&msg->components[i];
		if (!tl_str_eq_c(c->entity_type, ENTITY_USER) &&
		    !tl_str_eq_c(c->entity_type, ENTITY_CLIENT) &&
		    !tl_str_eq_c(c->entity_type, ENTITY_IP))
			return "unknown entity type in the filter";
		if (c->match_type < MATCH_EXACT || c->match_type > MATCH_SPECIFIED)
			return "unknown match type in the filter";
		if (c->match_type == MATCH_EXACT && c->match.len < 0)
			return "an exact match needs a name";
		for (int32_t j = 0; j < i; j++)
			if (tl_str_eq(msg->components[j].entity_type, c->entity_type))
				return "duplicate entity type in the filter";
	}
	return NULL;
}

static void describe_entity(struct tl_arena *arena, const struct tl_quota_entity *e,
			    struct tl_describe_client_quotas_response_entry_data *out)
{
	tl_describe_client_quotas_response_entry_data_defaults(out);
	int32_t parts = (e->user.present ? 1 : 0) + (e->client.present ? 1 : 0);
	out->entity = tl_arena_array(arena, (size_t)parts, sizeof(*out->entity));
	out->values = tl_arena_array(arena, TL_QUOTA_KEYS, sizeof(*out->values));
	if (!out->entity || !out->values)
		return;
	const struct tl_quota_part *list[2] = {&e->user, &e->client};
	const char *types[2] = {ENTITY_USER, ENTITY_CLIENT};
	for (int i = 0; i < 2; i++) {
		if (!list[i]->present)
			continue;
		struct tl_describe_client_quotas_response_entity_data *d =
			&out->entity[out->entity_count++];
		tl_describe_client_quotas_response_entity_data_defaults(d);
		d->entity_type = tl_str_of(types[i]);
		d->entity_name =
			list[i]->is_default ? (struct tl_str){NULL, -1} : tl_str_of(list[i]->name);
	}
	for (int k = 0; k < TL_QUOTA_KEYS; k++) {
		if (!e->has[k])
			continue;
		struct tl_describe_client_quotas_response_value_data *v =
			&out->values[out->values_count++];
		tl_describe_client_quotas_response_value_data_defaults(v);
		v->key = tl_str_of(tl_quota_key_name((enum tl_quota_key)k));
		v->value = e->value[k];
	}
}

void tl_handle_describe_client_quotas(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_describe_client_quotas_request msg;
	if (tl_describe_client_quotas_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeClientQuotas request");
		return;
	}
	struct tl_describe_client_quotas_response resp;
	tl_describe_client_quotas_response_defaults(&resp);
	const char *why = describe_invalid(&msg);
	if (!tl_authorize_cluster(req, TL_ACL_OP_DESCRIBE_CONFIGS)) {
		resp.error_code = (int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.entries_count = -1;
	} else if (why) {
		resp.error_code = (int16_t)TL_ERR_INVALID_REQUEST;
		resp.error_message = tl_str_of(why);
		resp.entries_count = -1;
	} else {
		const struct tl_quotas *q = &broker->quotas;
		resp.entries = tl_arena_array(&req->arena, (size_t)TL_MAX(q->entity_count, 1),
					      sizeof(*resp.entries));
		if (!resp.entries) {
			tl_request_reject(req, "DescribeClientQuotas answer too large");
			return;
		}
		resp.entries_count = 0;
		for (int32_t i = 0; i < q->entity_count; i++)
			if (entity_matches(&q->entities[i], &msg))
				describe_entity(&req->arena, &q->entities[i],
						&resp.entries[resp.entries_count++]);
	}
	tl_response_begin(req);
	tl_describe_client_quotas_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- AlterClientQuotas ---- */

/* Checks one entry; fills the parts (names in the arena). NULL or why not. */
static struct tl_str alter_check(struct tl_request *req,
				 const struct tl_alter_client_quotas_request_entry_data *in,
				 struct tl_quota_part *user, struct tl_quota_part *client)
{
	struct tl_arena *arena = &req->arena;
	memset(user, 0, sizeof(*user));
	memset(client, 0, sizeof(*client));
	if (in->entity_count <= 0)
		return tl_str_of("The quota entity is empty.");
	for (int32_t i = 0; i < in->entity_count; i++) {
		const struct tl_alter_client_quotas_request_entity_data *d = &in->entity[i];
		struct tl_quota_part *part;
		if (tl_str_eq_c(d->entity_type, ENTITY_USER))
			part = user;
		else if (tl_str_eq_c(d->entity_type, ENTITY_CLIENT))
			part = client;
		else if (tl_str_eq_c(d->entity_type, ENTITY_IP))
			return tl_str_of("ip quotas (connection_creation_rate) are not supported");
		else
			return arena_printf(arena, "Unknown quota entity type: %.*s",
					    TL_MAX(d->entity_type.len, 0), d->entity_type.ptr);
		if (part->present)
			return arena_printf(arena, "Duplicate quota entity type: %.*s",
					    d->entity_type.len, d->entity_type.ptr);
		part->present = true;
		part->is_default = d->entity_name.len < 0;
		if (!part->is_default) {
			if (d->entity_name.len == 0)
				return tl_str_of("An entity name may not be empty; null means the "
						 "default.");
			if (d->entity_name.len > TL_QUOTA_NAME_MAX)
				return tl_str_of("The entity name is too long.");
			part->name = arena_cstr(arena, d->entity_name);
			if (!part->name)
				return tl_str_of("out of memory");
		}
	}
	for (int32_t i = 0; i < in->ops_count; i++) {
		const struct tl_alter_client_quotas_request_op_data *op = &in->ops[i];
		int key = tl_quota_key_find(op->key);
		if (key < 0)
			return arena_printf(arena, "Unknown quota configuration key: %.*s",
					    TL_MAX(op->key.len, 0), op->key.ptr);
		for (int32_t j = 0; j < i; j++)
			if (tl_str_eq(in->ops[j].key, op->key))
				return arena_printf(arena,
						    "Duplicate quota configuration key: %.*s",
						    op->key.len, op->key.ptr);
		if (op->remove)
			continue;
		if (!isfinite(op->value) || op->value <= 0)
			return arena_printf(arena,
					    "Invalid value %g for quota configuration %s: it "
					    "must be positive",
					    op->value, tl_quota_key_name((enum tl_quota_key)key));
		bool integral =
			key == TL_QUOTA_PRODUCER_BYTE_RATE || key == TL_QUOTA_CONSUMER_BYTE_RATE;
		if (integral && (fabs(op->value - rint(op->value)) > 1e-6 || op->value > 9.2e18))
			return arena_printf(arena,
					    "Invalid value %g for quota configuration %s: it "
					    "must be a whole number of bytes per second",
					    op->value, tl_quota_key_name((enum tl_quota_key)key));
	}
	return (struct tl_str){NULL, -1};
}

/* An AlterClientQuotas request in flight to the metadata store (cluster mode). */
struct alter_wait {
	struct tl_request *req;
	struct tl_alter_client_quotas_response resp;
	struct tl_quotas sets;    /* the request's sets, as entities */
	struct tl_quotas removes; /* the keys it removes (values unused) */
};

static void alter_respond(struct tl_request *req,
			  const struct tl_alter_client_quotas_response *resp)
{
	tl_response_begin(req);
	tl_alter_client_quotas_response_encode(&req->response, req->header.api_version, resp);
	tl_response_end(req);
}

/* The metadata store took the change (or not): apply it here at once (read your
 * writes; the view brings the merged key to every broker) and answer. */
static void alter_stored(void *ctx, tl_err err, const char *message)
{
	struct alter_wait *w = ctx;
	struct tl_request *req = w->req;
	struct tl_broker *broker = req->conn->broker;
	if (err == TL_OK) {
		char *sets = tl_quotas_format(&w->sets), *removes = tl_quotas_format(&w->removes);
		if (!sets || !removes ||
		    tl_quotas_apply_text(&broker->quotas, removes, true) != TL_OK ||
		    tl_quotas_apply_text(&broker->quotas, sets, false) != TL_OK)
			tl_warn("quota: the change is stored, applied here with the next view");
		free(sets);
		free(removes);
		/* A view with this change (and maybe a later one of another broker) may have
		 * been applied already: the next view is applied whatever its text. */
		free(broker->quotas.view_text);
		broker->quotas.view_text = NULL;
		tl_info("quota: altered in the metadata store entries=%d peer=%s",
			w->resp.entries_count, req->conn->peer);
	}
	if (err <= TL_ERR_IO)
		err = TL_ERR_UNKNOWN_SERVER_ERROR; /* an internal code (out of memory) */
	for (int32_t i = 0; err != TL_OK && i < w->resp.entries_count; i++) {
		struct tl_alter_client_quotas_response_entry_data *out = &w->resp.entries[i];
		if (out->error_code != 0)
			continue;
		out->error_code = (int16_t)err;
		out->error_message = arena_printf(&req->arena, "%s", message);
	}
	tl_quotas_deinit(&w->sets);
	tl_quotas_deinit(&w->removes);
	if (tl_request_wait_end(req))
		alter_respond(req, &w->resp);
}

/* Cluster mode: posts @w's change to the metadata thread; false when it could not. */
static bool alter_post(struct alter_wait *w)
{
	struct tl_request *req = w->req;
	char *sets = tl_quotas_format(&w->sets), *removes = tl_quotas_format(&w->removes);
	tl_err err = TL_ERR_NOMEM;
	req->waits++;
	if (sets && removes)
		err = tl_cluster_change_quotas(req->conn->broker, sets, removes, alter_stored, w);
	free(sets);
	free(removes);
	if (err == TL_OK)
		return true;
	req->waits--;
	return false;
}

void tl_handle_alter_client_quotas(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_alter_client_quotas_request msg;
	if (tl_alter_client_quotas_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed AlterClientQuotas request");
		return;
	}
	struct alter_wait *w = tl_arena_alloc(&req->arena, sizeof(*w));
	if (!w) {
		tl_request_reject(req, "AlterClientQuotas request too large");
		return;
	}
	w->req = req;
	struct tl_alter_client_quotas_response resp;
	tl_alter_client_quotas_response_defaults(&resp);
	resp.entries_count = TL_MAX(msg.entries_count, 0);
	resp.entries = tl_arena_array(&req->arena, (size_t)TL_MAX(resp.entries_count, 1),
				      sizeof(*resp.entries));
	if (!resp.entries) {
		tl_request_reject(req, "AlterClientQuotas request too large");
		return;
	}
	bool cluster = broker->cluster != NULL;
	/* Cluster mode: the change is gathered here and applied once stored. */
	struct tl_quotas *sets = cluster ? &w->sets : &broker->quotas;
	tl_quotas_init(&w->sets, 2, 1000);
	tl_quotas_init(&w->removes, 2, 1000);
	char *before = NULL;
	bool changed = false;
	bool allowed = tl_authorize_cluster(req, TL_ACL_OP_ALTER_CONFIGS);
	for (int32_t i = 0; i < resp.entries_count; i++) {
		const struct tl_alter_client_quotas_request_entry_data *in = &msg.entries[i];
		struct tl_alter_client_quotas_response_entry_data *out = &resp.entries[i];
		tl_alter_client_quotas_response_entry_data_defaults(out);
		out->entity_count = TL_MAX(in->entity_count, 0);
		out->entity = tl_arena_array(&req->arena, (size_t)TL_MAX(out->entity_count, 1),
					     sizeof(*out->entity));
		if (!out->entity) {
			tl_request_reject(req, "AlterClientQuotas request too large");
			free(before);
			tl_quotas_deinit(&w->sets);
			tl_quotas_deinit(&w->removes);
			return;
		}
		for (int32_t j = 0; j < out->entity_count; j++) {
			tl_alter_client_quotas_response_entity_data_defaults(&out->entity[j]);
			out->entity[j].entity_type = in->entity[j].entity_type;
			out->entity[j].entity_name = in->entity[j].entity_name;
		}
		if (!allowed) {
			out->error_code = (int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
			continue;
		}
		struct tl_quota_part user, client;
		struct tl_str why = alter_check(req, in, &user, &client);
		if (why.len >= 0) {
			out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
			out->error_message = why;
			continue;
		}
		if (msg.validate_only || in->ops_count <= 0)
			continue;
		if (!changed && !cluster)
			before = tl_quotas_format(&broker->quotas);
		changed = true;
		for (int32_t j = 0; j < in->ops_count; j++) {
			const struct tl_alter_client_quotas_request_op_data *op = &in->ops[j];
			enum tl_quota_key key = (enum tl_quota_key)tl_quota_key_find(op->key);
			tl_err err =
				cluster && op->remove
					? tl_quotas_set(&w->removes, &user, &client, key, 1, false)
					: tl_quotas_set(sets, &user, &client, key, op->value,
							op->remove);
			if (err != TL_OK) {
				out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
				out->error_message = tl_str_of("too many quota entities");
				break;
			}
		}
	}
	if (changed && cluster) {
		w->resp = resp;
		if (alter_post(w))
			return; /* alter_stored answers */
		for (int32_t i = 0; i < resp.entries_count; i++)
			if (resp.entries[i].error_code == 0) {
				resp.entries[i].error_code = (int16_t)TL_ERR_BROKER_NOT_AVAILABLE;
				resp.entries[i].error_message = tl_str_of("the broker is stopping");
			}
	} else if (changed && quotas_save(broker) != TL_OK) {
		/* Not durable: back to what the file holds, and say so. */
		tl_quotas_deinit(&broker->quotas);
		tl_quotas_init(&broker->quotas, broker->config.quota_window_num,
			       (int64_t)broker->config.quota_window_size_seconds * 1000);
		if (before)
			tl_quotas_parse(&broker->quotas, before);
		for (int32_t i = 0; i < resp.entries_count; i++) {
			if (resp.entries[i].error_code != 0)
				continue;
			resp.entries[i].error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
			resp.entries[i].error_message =
				tl_str_of("the quotas could not be written to disk");
		}
	} else if (changed) {
		tl_info("quota: altered entries=%d entities=%d peer=%s", resp.entries_count,
			broker->quotas.entity_count, req->conn->peer);
	}
	free(before);
	tl_quotas_deinit(&w->sets);
	tl_quotas_deinit(&w->removes);
	alter_respond(req, &resp);
}
