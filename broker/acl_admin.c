/* acl_admin.c - the authorizer in tallyd (issue #16): turning it on, deciding a request,
 * logging denials, CreateAcls / DescribeAcls / DeleteAcls, and the ACL file.
 *
 *   .tally-meta/acls   one ACL a line (tl_acls_format), replaced atomically (temp file,
 *                      fsync, rename, fsync of the directory) on every change: a kill -9
 *                      leaves the old or the new set, never a torn one.
 *
 * On when authorizer.class.name names Kafka's StandardAuthorizer or AclAuthorizer (any
 * of the class names below); with it off every request is allowed and the ACL APIs
 * answer SECURITY_DISABLED, as Kafka does.
 *
 * Cluster mode: the ACLs live in the metadata store, one key (cluster.h: "acls"), and
 * no file is read. CreateAcls and DeleteAcls send the change to the metadata thread,
 * which merges it into the key by compare-and-swap, and answer once it is stored; every
 * broker applies the key from its view (tl_acl_apply_view), this one at once too.
 *
 * TEST ONLY: tally.test.principal.from.client.id=true makes a PLAINTEXT connection's
 * principal the request header's client.id when it starts with "User:" (see
 * tl_acl_request_principal). Off by default; SASL replaces it. */
#include <errno.h>
#include <fcntl.h>
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

#define ACL_FILE         "acls"
#define ACL_FILE_MAX     (64 * 1024 * 1024)
#define DENIED_LOG_PER_S 10 /* denial lines per second at most; the rest are counted */

static const char *const authorizer_classes[] = {
	"org.apache.kafka.metadata.authorizer.StandardAuthorizer",
	"kafka.security.authorizer.AclAuthorizer",
	"kafka.security.auth.SimpleAclAuthorizer",
};

static void meta_dir(const struct tl_broker *broker, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s/.tally-meta", broker->data_dir);
}

tl_err tl_acl_start(struct tl_broker *broker)
{
	struct tl_authorizer *authz = &broker->authz;
	const struct tl_config *config = &broker->config;
	tl_acls_init(&authz->acls);
	authz->enabled = false;
	if (config->authorizer_class_name[0] != '\0') {
		for (size_t i = 0; i < TL_ARRAY_SIZE(authorizer_classes); i++)
			if (strcmp(config->authorizer_class_name, authorizer_classes[i]) == 0)
				authz->enabled = true;
		if (!authz->enabled) {
			tl_crit("acl: authorizer.class.name=%s is not an authorizer Tally has; use "
				"%s (or leave it empty for none)",
				config->authorizer_class_name, authorizer_classes[0]);
			return TL_ERR_INVALID;
		}
	}
	char dir[TL_CONFIG_STR_MAX + 32], path[TL_CONFIG_STR_MAX + 64];
	meta_dir(broker, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/" ACL_FILE, dir);
	/* Cluster mode: no file; the view brings them (tl_acl_apply_view). */
	bool from_file = !tl_config_is_cluster(config);
	char *text = NULL;
	size_t len = 0;
	if (from_file) {
		tl_err err = tl_broker_read_file(path, ACL_FILE_MAX, "acl", &text, &len);
		if (err != TL_OK)
			return err;
	}
	if (text) {
		tl_err err = tl_acls_parse(&authz->acls, text);
		free(text);
		if (err != TL_OK) {
			tl_crit("acl: corrupt file path=%s problem=\"%s\"", path, authz->acls.why);
			return err;
		}
	}
	if (authz->enabled)
		tl_info("acl: authorizer on acls=%d super.users=\"%s\" "
			"allow.everyone.if.no.acl.found=%s",
			authz->acls.acl_count, config->super_users,
			config->allow_everyone_if_no_acl_found ? "true" : "false");
	if (config->tally_test_principal_from_client_id)
		tl_warn("acl: tally.test.principal.from.client.id=true: a PLAINTEXT client "
			"chooses its own principal with its client.id. TEST ONLY, never in "
			"production");
	return TL_OK;
}

void tl_acl_stop(struct tl_broker *broker)
{
	tl_acls_deinit(&broker->authz.acls);
	free(broker->authz.view_text);
	broker->authz.view_text = NULL;
}

void tl_acl_apply_view(struct tl_broker *broker, const char *text)
{
	struct tl_authorizer *authz = &broker->authz;
	if (authz->view_text && strcmp(authz->view_text, text) == 0)
		return;
	struct tl_acls fresh;
	tl_acls_init(&fresh);
	char *copy = strdup(text);
	if (!copy || tl_acls_parse(&fresh, text) != TL_OK) {
		tl_crit("acl: cannot apply the cluster's ACLs, keeping the previous ones: %s",
			copy ? fresh.why : "out of memory");
		tl_acls_deinit(&fresh);
		free(copy);
		return;
	}
	tl_acls_deinit(&authz->acls);
	authz->acls = fresh;
	free(authz->view_text);
	authz->view_text = copy;
	tl_info("acl: applied the cluster's ACLs acls=%d", authz->acls.acl_count);
}

static tl_err acls_save(struct tl_broker *broker)
{
	char dir[TL_CONFIG_STR_MAX + 32];
	meta_dir(broker, dir, sizeof(dir));
	char *text = tl_acls_format(&broker->authz.acls);
	if (!text)
		return TL_ERR_NOMEM;
	tl_err err = tl_broker_write_file_atomic(dir, ACL_FILE, text, 0644);
	free(text);
	return err;
}

/* Puts the table back to what the file (or nothing) holds, after a failed save. */
static void acls_restore(struct tl_broker *broker, const char *before)
{
	tl_acls_deinit(&broker->authz.acls);
	tl_acls_init(&broker->authz.acls);
	if (before && tl_acls_parse(&broker->authz.acls, before) != TL_OK)
		tl_crit("acl: cannot restore the ACLs after a failed write: %s",
			broker->authz.acls.why);
}

/* ---- deciding ---- */

void tl_acl_request_principal(struct tl_request *req)
{
	struct tl_conn *conn = req->conn;
	const struct tl_config *config = &conn->broker->config;
	if (!config->tally_test_principal_from_client_id)
		return;
	/* Never where a client authenticates (SSL, SASL_*): PLAINTEXT only. */
	if (conn->security_protocol != TL_SECURITY_PLAINTEXT)
		return;
	struct tl_str id = req->header.client_id;
	size_t len = (size_t)TL_MAX(id.len, 0);
	if (len <= 5 || memcmp(id.ptr, "User:", 5) != 0 || len >= sizeof(conn->principal))
		return;
	if (len == strlen(conn->principal) && memcmp(conn->principal, id.ptr, len) == 0)
		return;
	memcpy(conn->principal, id.ptr, len);
	conn->principal[len] = '\0';
}

static bool is_super_user(const char *list, const char *principal)
{
	size_t plen = strlen(principal);
	for (const char *s = list; *s;) {
		const char *end = strchr(s, ';');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		/* Kafka trims each entry. */
		const char *a = s;
		size_t m = n;
		while (m > 0 && (*a == ' ' || *a == '\t'))
			a++, m--;
		while (m > 0 && (a[m - 1] == ' ' || a[m - 1] == '\t'))
			m--;
		if (m == plen && memcmp(a, principal, plen) == 0)
			return true;
		if (!end)
			break;
		s = end + 1;
	}
	return false;
}

static void denied_log(struct tl_request *req, int8_t op, int8_t type, struct tl_str name)
{
	struct tl_authorizer *authz = &req->conn->broker->authz;
	int64_t now_ms = tl_mono_ms();
	authz->denied_total++;
	if (now_ms - authz->denied_logged_ms >= 1000) {
		authz->denied_logged_ms = now_ms;
		authz->denied_logged = 0;
	}
	if (authz->denied_logged >= DENIED_LOG_PER_S) {
		authz->denied_suppressed++;
		return;
	}
	authz->denied_logged++;
	const struct tl_api_info *info = tl_api_info(req->header.api_key);
	tl_info("acl: denied principal=%s host=%s operation=%s resource=%s:%.*s api=%s "
		"suppressed_before=%llu",
		req->conn->principal, req->conn->peer_ip, tl_acl_operation_name(op),
		tl_acl_resource_type_name(type), TL_MAX(name.len, 0), name.ptr ? name.ptr : "",
		info ? info->name : "unknown", (unsigned long long)authz->denied_suppressed);
	authz->denied_suppressed = 0;
}

bool tl_authorize_quiet(struct tl_request *req, int8_t op, int8_t type, struct tl_str name)
{
	const struct tl_broker *broker = req->conn->broker;
	const struct tl_authorizer *authz = &broker->authz;
	if (!authz->enabled)
		return true;
	const struct tl_conn *conn = req->conn;
	if (is_super_user(broker->config.super_users, conn->principal))
		return true;
	enum tl_acl_decision d = tl_acls_authorize(&authz->acls, tl_str_of(conn->principal),
						   tl_str_of(conn->peer_ip), op, type, name);
	if (d == TL_ACL_NO_ACLS)
		return broker->config.allow_everyone_if_no_acl_found;
	return d == TL_ACL_ALLOWED;
}

bool tl_authorize(struct tl_request *req, int8_t op, int8_t type, struct tl_str name)
{
	if (tl_authorize_quiet(req, op, type, name))
		return true;
	denied_log(req, op, type, name);
	return false;
}

int32_t tl_authorized_operations(struct tl_request *req, int8_t type, struct tl_str name)
{
	/* Kafka's AclEntry.supportedOperations, per resource type. */
	static const int8_t topic[] = {TL_ACL_OP_READ,
				       TL_ACL_OP_WRITE,
				       TL_ACL_OP_CREATE,
				       TL_ACL_OP_DESCRIBE,
				       TL_ACL_OP_DELETE,
				       TL_ACL_OP_ALTER,
				       TL_ACL_OP_DESCRIBE_CONFIGS,
				       TL_ACL_OP_ALTER_CONFIGS};
	static const int8_t group[] = {TL_ACL_OP_READ, TL_ACL_OP_DESCRIBE, TL_ACL_OP_DELETE};
	static const int8_t cluster[] = {TL_ACL_OP_CREATE,           TL_ACL_OP_CLUSTER_ACTION,
					 TL_ACL_OP_DESCRIBE_CONFIGS, TL_ACL_OP_ALTER_CONFIGS,
					 TL_ACL_OP_IDEMPOTENT_WRITE, TL_ACL_OP_ALTER,
					 TL_ACL_OP_DESCRIBE};
	const int8_t *ops = type == TL_ACL_RESOURCE_TOPIC   ? topic
			    : type == TL_ACL_RESOURCE_GROUP ? group
							    : cluster;
	size_t count = type == TL_ACL_RESOURCE_TOPIC   ? TL_ARRAY_SIZE(topic)
		       : type == TL_ACL_RESOURCE_GROUP ? TL_ARRAY_SIZE(group)
						       : TL_ARRAY_SIZE(cluster);
	TL_ASSERT(type == TL_ACL_RESOURCE_TOPIC || type == TL_ACL_RESOURCE_GROUP ||
		  type == TL_ACL_RESOURCE_CLUSTER);
	uint32_t bits = 0;
	for (size_t i = 0; i < count; i++)
		if (tl_authorize_quiet(req, ops[i], type, name))
			bits |= 1u << ops[i];
	return (int32_t)bits;
}

bool tl_authorize_cluster(struct tl_request *req, int8_t op)
{
	return tl_authorize(req, op, TL_ACL_RESOURCE_CLUSTER, tl_str_of(TL_ACL_CLUSTER_NAME));
}

bool tl_authorize_any_of_type(struct tl_request *req, int8_t op, int8_t type)
{
	const struct tl_broker *broker = req->conn->broker;
	const struct tl_authorizer *authz = &broker->authz;
	if (!authz->enabled)
		return true;
	/* Kafka's authorizeByResourceType: first an ordinary check on a made-up name (super
	 * users, allow.everyone.if.no.acl.found and wildcard ACLs answer it), then the ACLs
	 * of the type. */
	if (tl_authorize_quiet(req, op, type, tl_str_of("hardcode")))
		return true;
	return tl_acls_allow_any_of_type(&authz->acls, tl_str_of(req->conn->principal),
					 tl_str_of(req->conn->peer_ip), op, type);
}

/* ---- the APIs ---- */

static struct tl_str security_disabled_message(void)
{
	return tl_str_of("No Authorizer is configured on the broker");
}

void tl_handle_describe_acls(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_describe_acls_request msg;
	if (tl_describe_acls_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeAcls request");
		return;
	}
	struct tl_describe_acls_response resp;
	tl_describe_acls_response_defaults(&resp);
	resp.resources_count = 0;
	struct tl_acl_binding filter = {
		.resource_type = msg.resource_type_filter,
		.pattern_type = msg.pattern_type_filter,
		.resource_name = msg.resource_name_filter,
		.principal = msg.principal_filter,
		.host = msg.host_filter,
		.operation = msg.operation,
		.permission = msg.permission_type,
	};
	const char *why = tl_acl_filter_invalid(&filter);
	if (!broker->authz.enabled) {
		resp.error_code = (int16_t)TL_ERR_SECURITY_DISABLED;
		resp.error_message = security_disabled_message();
	} else if (!tl_authorize_cluster(req, TL_ACL_OP_DESCRIBE)) {
		resp.error_code = (int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
	} else if (why) {
		resp.error_code = (int16_t)TL_ERR_INVALID_REQUEST;
		resp.error_message = tl_str_of(why);
	} else {
		const struct tl_acls *acls = &broker->authz.acls;
		resp.resources =
			tl_arena_array(&req->arena, (size_t)TL_MAX(acls->resource_count, 1),
				       sizeof(*resp.resources));
		if (!resp.resources) {
			tl_request_reject(req, "DescribeAcls answer too large");
			return;
		}
		for (const struct tl_acl_resource *r = tl_acls_next(acls, NULL); r;
		     r = tl_acls_next(acls, r)) {
			if (!tl_acl_filter_matches(&filter, r, NULL))
				continue;
			struct tl_describe_acls_response_describe_acls_resource *out =
				&resp.resources[resp.resources_count];
			tl_describe_acls_response_describe_acls_resource_defaults(out);
			out->resource_type = r->type;
			out->resource_name = (struct tl_str){r->name, r->name_len};
			out->pattern_type = r->pattern;
			out->acls = tl_arena_array(&req->arena, (size_t)r->entry_count,
						   sizeof(*out->acls));
			if (!out->acls) {
				tl_request_reject(req, "DescribeAcls answer too large");
				return;
			}
			out->acls_count = 0;
			for (int32_t i = 0; i < r->entry_count; i++) {
				const struct tl_acl_entry *e = &r->entries[i];
				if (!tl_acl_filter_matches(&filter, r, e))
					continue;
				struct tl_describe_acls_response_acl_description *d =
					&out->acls[out->acls_count++];
				tl_describe_acls_response_acl_description_defaults(d);
				d->principal = tl_str_of(e->principal);
				d->host = tl_str_of(e->host);
				d->operation = e->operation;
				d->permission_type = e->permission;
			}
			if (out->acls_count > 0)
				resp.resources_count++;
		}
	}
	tl_response_begin(req);
	tl_describe_acls_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

struct removed_list {
	struct tl_arena *arena;
	struct tl_delete_acls_response_delete_acls_filter_result *result;
	int32_t cap;
	bool failed;
};

static struct tl_str arena_copy(struct tl_arena *arena, const char *s, int32_t len)
{
	char *p = tl_arena_alloc(arena, (size_t)len + 1);
	if (!p)
		return (struct tl_str){"", 0};
	memcpy(p, s, (size_t)len);
	p[len] = '\0';
	return (struct tl_str){p, len};
}

static void removed_one(void *ctx, const struct tl_acl_resource *r, const struct tl_acl_entry *e)
{
	struct removed_list *list = ctx;
	struct tl_delete_acls_response_delete_acls_filter_result *res = list->result;
	if (res->matching_acls_count == list->cap) {
		int32_t cap = list->cap ? list->cap * 2 : 16;
		void *n = tl_arena_array(list->arena, (size_t)cap, sizeof(*res->matching_acls));
		if (!n) {
			list->failed = true;
			return;
		}
		if (list->cap)
			memcpy(n, res->matching_acls,
			       (size_t)list->cap * sizeof(*res->matching_acls));
		res->matching_acls = n;
		list->cap = cap;
	}
	struct tl_delete_acls_response_delete_acls_matching_acl *m =
		&res->matching_acls[res->matching_acls_count++];
	tl_delete_acls_response_delete_acls_matching_acl_defaults(m);
	m->resource_type = r->type;
	m->resource_name = arena_copy(list->arena, r->name, r->name_len);
	m->pattern_type = r->pattern;
	m->principal = arena_copy(list->arena, e->principal, (int32_t)strlen(e->principal));
	m->host = arena_copy(list->arena, e->host, (int32_t)strlen(e->host));
	m->operation = e->operation;
	m->permission_type = e->permission;
}

/* Cluster mode: a CreateAcls or DeleteAcls change on its way to the metadata store. */
struct acl_change {
	struct tl_acls adds;
	struct tl_acls removes;
};

static void acl_change_init(struct acl_change *change)
{
	tl_acls_init(&change->adds);
	tl_acls_init(&change->removes);
}

static void acl_change_deinit(struct acl_change *change)
{
	tl_acls_deinit(&change->adds);
	tl_acls_deinit(&change->removes);
}

/* Encodes the response kept in req->state_data. */
static void acl_respond(struct tl_request *req)
{
	tl_response_begin(req);
	if (req->header.api_key == TL_API_CREATE_ACLS)
		tl_create_acls_response_encode(&req->response, req->header.api_version,
					       req->state_data);
	else
		tl_delete_acls_response_encode(&req->response, req->header.api_version,
					       req->state_data);
	tl_response_end(req);
}

/* The results a change covers (those without an error yet) get @err and @message. */
static void acl_results_fail(struct tl_request *req, tl_err err, const char *message)
{
	struct tl_str msg = arena_copy(&req->arena, message, (int32_t)strlen(message));
	if (req->header.api_key == TL_API_CREATE_ACLS) {
		struct tl_create_acls_response *resp = req->state_data;
		for (int32_t i = 0; i < resp->results_count; i++) {
			if (resp->results[i].error_code != 0)
				continue;
			resp->results[i].error_code = (int16_t)err;
			resp->results[i].error_message = msg;
		}
	} else {
		struct tl_delete_acls_response *resp = req->state_data;
		for (int32_t i = 0; i < resp->filter_results_count; i++) {
			struct tl_delete_acls_response_delete_acls_filter_result *out =
				&resp->filter_results[i];
			if (out->error_code != 0)
				continue;
			out->error_code = (int16_t)err;
			out->error_message = msg;
			out->matching_acls_count = 0;
		}
	}
}

struct acl_change_wait {
	struct tl_request *req;
	char *adds, *removes; /* text form, applied here once stored */
};

static void acl_change_done(void *ctx, tl_err err, const char *message)
{
	struct acl_change_wait *wait = ctx;
	struct tl_request *req = wait->req;
	struct tl_broker *broker = req->conn->broker;
	if (err == TL_OK) {
		/* Read your writes: this broker's table has the change before its view. */
		struct tl_acls *acls = &broker->authz.acls;
		if (tl_acls_parse(acls, wait->adds) != TL_OK)
			tl_warn("acl: cannot apply created ACLs before the view: %s", acls->why);
		struct tl_acls gone;
		tl_acls_init(&gone);
		if (tl_acls_parse(&gone, wait->removes) == TL_OK)
			for (const struct tl_acl_resource *r = tl_acls_next(&gone, NULL); r;
			     r = tl_acls_next(&gone, r))
				for (int32_t i = 0; i < r->entry_count; i++) {
					struct tl_acl_binding exact = {
						.resource_type = r->type,
						.pattern_type = r->pattern,
						.resource_name = {r->name, r->name_len},
						.principal = tl_str_of(r->entries[i].principal),
						.host = tl_str_of(r->entries[i].host),
						.operation = r->entries[i].operation,
						.permission = r->entries[i].permission,
					};
					tl_acls_remove(acls, &exact, NULL, NULL);
				}
		tl_acls_deinit(&gone);
		tl_info("acl: changed in the metadata store acls=%d principal=%s peer=%s",
			acls->acl_count, req->conn->principal, req->conn->peer);
	} else {
		acl_results_fail(req, err == TL_ERR_NOMEM ? TL_ERR_UNKNOWN_SERVER_ERROR : err,
				 message[0] ? message
					    : "the metadata store did not take the change");
	}
	free(wait->adds);
	free(wait->removes);
	free(wait);
	if (tl_request_wait_end(req))
		acl_respond(req);
}

/* Sends @change to the metadata thread; the response waits for it (req->waits). */
static void acl_change_post(struct tl_request *req, const struct acl_change *change)
{
	struct acl_change_wait *wait = calloc(1, sizeof(*wait));
	if (wait) {
		wait->req = req;
		wait->adds = tl_acls_format(&change->adds);
		wait->removes = tl_acls_format(&change->removes);
	}
	tl_err err = TL_ERR_NOMEM;
	if (wait && wait->adds && wait->removes) {
		req->waits++;
		err = tl_cluster_change_acls(req->conn->broker, wait->adds, wait->removes,
					     acl_change_done, wait);
		if (err == TL_OK)
			return;
		req->waits--;
	}
	if (wait) {
		free(wait->adds);
		free(wait->removes);
		free(wait);
	}
	acl_results_fail(req, err == TL_ERR_NOMEM ? TL_ERR_UNKNOWN_SERVER_ERROR : err,
			 "the change could not be sent to the metadata store");
}

/* Where one CreateAcls creation or DeleteAcls filter goes. */
enum acl_route {
	ACL_ROUTE_REFUSED = 0, /* answered with the error set */
	ACL_ROUTE_CLUSTER = 1, /* to the metadata store */
	ACL_ROUTE_LOCAL = 2,   /* to this broker's table, then the file */
};

/* The per-entry ladder both APIs share: authorizer on, cluster Alter allowed (@allowed,
 * asked once per request), the entry valid (@why is its problem), then cluster or local.
 * Local: *@before keeps the table's text for a failed save (made on first use). Sets
 * *@error_code_out and *@error_message_out when refused. Thread: the loop. */
static enum acl_route acl_route(struct tl_broker *broker, bool allowed, const char *why,
				char **before, int16_t *error_code_out,
				struct tl_str *error_message_out)
{
	if (!broker->authz.enabled) {
		*error_code_out = (int16_t)TL_ERR_SECURITY_DISABLED;
		*error_message_out = security_disabled_message();
		return ACL_ROUTE_REFUSED;
	}
	if (!allowed) {
		*error_code_out = (int16_t)TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		return ACL_ROUTE_REFUSED;
	}
	if (why) {
		*error_code_out = (int16_t)TL_ERR_INVALID_REQUEST;
		*error_message_out = tl_str_of(why);
		return ACL_ROUTE_REFUSED;
	}
	if (broker->cluster)
		return ACL_ROUTE_CLUSTER;
	if (!*before)
		*before = tl_acls_format(&broker->authz.acls);
	if (!*before) {
		*error_code_out = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
		return ACL_ROUTE_REFUSED;
	}
	return ACL_ROUTE_LOCAL;
}

void tl_handle_create_acls(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_create_acls_request msg;
	if (tl_create_acls_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed CreateAcls request");
		return;
	}
	struct tl_create_acls_response resp;
	tl_create_acls_response_defaults(&resp);
	resp.results_count = TL_MAX(msg.creations_count, 0);
	resp.results = tl_arena_array(&req->arena, (size_t)TL_MAX(resp.results_count, 1),
				      sizeof(*resp.results));
	if (!resp.results) {
		tl_request_reject(req, "CreateAcls request too large");
		return;
	}
	bool allowed = broker->authz.enabled && tl_authorize_cluster(req, TL_ACL_OP_ALTER);
	char *before = NULL;
	int32_t added = 0;
	struct acl_change change;
	acl_change_init(&change);
	for (int32_t i = 0; i < resp.results_count; i++) {
		const struct tl_create_acls_request_acl_creation *in = &msg.creations[i];
		struct tl_create_acls_response_acl_creation_result *out = &resp.results[i];
		tl_create_acls_response_acl_creation_result_defaults(out);
		struct tl_acl_binding b = {
			.resource_type = in->resource_type,
			.pattern_type = in->resource_pattern_type,
			.resource_name = in->resource_name,
			.principal = in->principal,
			.host = in->host,
			.operation = in->operation,
			.permission = in->permission_type,
		};
		enum acl_route route = acl_route(broker, allowed, tl_acl_binding_invalid(&b),
						 &before, &out->error_code, &out->error_message);
		if (route == ACL_ROUTE_CLUSTER) {
			if (tl_acls_add(&change.adds, &b) != TL_OK) {
				out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
				out->error_message = tl_str_of("too many ACLs");
			}
		} else if (route == ACL_ROUTE_LOCAL) {
			tl_err err = tl_acls_add(&broker->authz.acls, &b);
			if (err != TL_OK) {
				out->error_code = (int16_t)TL_ERR_INVALID_REQUEST;
				out->error_message = tl_str_of(
					err == TL_ERR_LIMIT ? "too many ACLs" : "out of memory");
				continue;
			}
			added++;
		}
	}
	if (added > 0 && acls_save(broker) != TL_OK) {
		acls_restore(broker, before);
		for (int32_t i = 0; i < resp.results_count; i++) {
			if (resp.results[i].error_code != 0)
				continue;
			resp.results[i].error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
			resp.results[i].error_message =
				tl_str_of("the ACLs could not be written to disk");
		}
	} else if (added > 0) {
		tl_info("acl: created count=%d acls=%d principal=%s peer=%s", added,
			broker->authz.acls.acl_count, req->conn->principal, req->conn->peer);
	}
	free(before);
	struct tl_create_acls_response *respp = tl_arena_alloc(&req->arena, sizeof(*respp));
	if (!respp) {
		acl_change_deinit(&change);
		tl_request_reject(req, "CreateAcls request too large");
		return;
	}
	*respp = resp;
	req->state_data = respp;
	if (change.adds.acl_count > 0)
		acl_change_post(req, &change);
	acl_change_deinit(&change);
	if (req->waits == 0)
		acl_respond(req);
}

void tl_handle_delete_acls(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_delete_acls_request msg;
	if (tl_delete_acls_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DeleteAcls request");
		return;
	}
	struct tl_delete_acls_response resp;
	tl_delete_acls_response_defaults(&resp);
	resp.filter_results_count = TL_MAX(msg.filters_count, 0);
	resp.filter_results =
		tl_arena_array(&req->arena, (size_t)TL_MAX(resp.filter_results_count, 1),
			       sizeof(*resp.filter_results));
	if (!resp.filter_results) {
		tl_request_reject(req, "DeleteAcls request too large");
		return;
	}
	bool allowed = broker->authz.enabled && tl_authorize_cluster(req, TL_ACL_OP_ALTER);
	char *before = NULL;
	int32_t removed = 0;
	struct acl_change change;
	acl_change_init(&change);
	for (int32_t i = 0; i < resp.filter_results_count; i++) {
		const struct tl_delete_acls_request_delete_acls_filter *in = &msg.filters[i];
		struct tl_delete_acls_response_delete_acls_filter_result *out =
			&resp.filter_results[i];
		tl_delete_acls_response_delete_acls_filter_result_defaults(out);
		out->matching_acls_count = 0;
		struct tl_acl_binding filter = {
			.resource_type = in->resource_type_filter,
			.pattern_type = in->pattern_type_filter,
			.resource_name = in->resource_name_filter,
			.principal = in->principal_filter,
			.host = in->host_filter,
			.operation = in->operation,
			.permission = in->permission_type,
		};
		enum acl_route route = acl_route(broker, allowed, tl_acl_filter_invalid(&filter),
						 &before, &out->error_code, &out->error_message);
		if (route == ACL_ROUTE_CLUSTER) {
			/* The matches as this broker's view has them; the store removes
			 * exactly those. */
			struct removed_list list = {&req->arena, out, 0, false};
			for (const struct tl_acl_resource *r =
				     tl_acls_next(&broker->authz.acls, NULL);
			     r; r = tl_acls_next(&broker->authz.acls, r))
				for (int32_t j = 0; j < r->entry_count; j++)
					if (tl_acl_filter_matches(&filter, r, &r->entries[j]))
						removed_one(&list, r, &r->entries[j]);
			for (int32_t j = 0; j < out->matching_acls_count && !list.failed; j++) {
				const struct tl_delete_acls_response_delete_acls_matching_acl *m =
					&out->matching_acls[j];
				struct tl_acl_binding exact = {
					.resource_type = m->resource_type,
					.pattern_type = m->pattern_type,
					.resource_name = m->resource_name,
					.principal = m->principal,
					.host = m->host,
					.operation = m->operation,
					.permission = m->permission_type,
				};
				list.failed = tl_acls_add(&change.removes, &exact) != TL_OK;
			}
			if (list.failed) {
				out->error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
				out->error_message = tl_str_of("out of memory listing the ACLs");
				out->matching_acls_count = 0;
			}
		} else if (route == ACL_ROUTE_LOCAL) {
			struct removed_list list = {&req->arena, out, 0, false};
			removed += tl_acls_remove(&broker->authz.acls, &filter, removed_one, &list);
			if (list.failed) {
				out->error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
				out->error_message = tl_str_of("out of memory listing the ACLs");
			}
		}
	}
	if (removed > 0 && acls_save(broker) != TL_OK) {
		acls_restore(broker, before);
		for (int32_t i = 0; i < resp.filter_results_count; i++) {
			struct tl_delete_acls_response_delete_acls_filter_result *out =
				&resp.filter_results[i];
			if (out->error_code != 0)
				continue;
			out->error_code = (int16_t)TL_ERR_UNKNOWN_SERVER_ERROR;
			out->error_message = tl_str_of("the ACLs could not be written to disk");
			out->matching_acls_count = 0;
		}
	} else if (removed > 0) {
		tl_info("acl: deleted count=%d acls=%d principal=%s peer=%s", removed,
			broker->authz.acls.acl_count, req->conn->principal, req->conn->peer);
	}
	free(before);
	struct tl_delete_acls_response *respp = tl_arena_alloc(&req->arena, sizeof(*respp));
	if (!respp) {
		acl_change_deinit(&change);
		tl_request_reject(req, "DeleteAcls request too large");
		return;
	}
	*respp = resp;
	req->state_data = respp;
	if (change.removes.acl_count > 0)
		acl_change_post(req, &change);
	acl_change_deinit(&change);
	if (req->waits == 0)
		acl_respond(req);
}
