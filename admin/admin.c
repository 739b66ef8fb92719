/* admin.c - the libtally admin client, see include/tally/admin.h. Each call is one or
 * more blocking requests over the client core (client/client.h), sent through one
 * table-driven path, admin_call(): a row per request says where it goes (any broker, the
 * controller, a coordinator, a given node) and which answers it asks again; a mapper per
 * request turns the decoded response into the call's result. Thread: the caller's; a
 * tl_admin is used by one thread at a time. */
#include "tally/admin.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "common/assert.h"
#include "common/scram.h"
#include "common/time.h"
#include "protocol/messages.h"

#define ADMIN_ARENA_MAX       (64u << 20)
#define ADMIN_CONFIG_MAX      1000
/* A call that goes elsewhere when a try fails (admin_call()): a try waits this long for
 * a given broker's connection (a stopped broker never finishes the handshake), a broker
 * whose connection failed is not asked again for ADMIN_NODE_BACKOFF_MS, and the next
 * try starts ADMIN_RETRY_MS after the failed one. */
#define ADMIN_CONNECT_TRY_MS  3000
#define ADMIN_NODE_BACKOFF_MS 500
#define ADMIN_RETRY_MS        100

static const struct tl_conf_key admin_keys[] = {
	{"bootstrap.servers", TL_CONF_STR, NULL, 0, 0, NULL, NULL},
	TL_CLIENT_SECURITY_KEYS,
	{"client.id", TL_CONF_STR, "libtally-admin", 0, 0, NULL, NULL},
	{"request.timeout.ms", TL_CONF_INT, "30000", 1, INT32_MAX, NULL, NULL},
	{"reconnect.backoff.ms", TL_CONF_INT, "50", 0, 3600000, NULL, NULL},
	{"allow.auto.create.topics", TL_CONF_BOOL, "false", 0, 0, NULL, NULL},
};

struct tl_admin_conf {
	struct tl_conf conf;
};

struct tl_admin {
	struct tl_client *client;
	bool allow_auto_create; /* describe_topics lets the broker create missing topics */
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
		.conf = &ac->conf,
		.bootstrap_servers = tl_conf_str(&ac->conf, "bootstrap.servers"),
		.client_id = tl_conf_str(&ac->conf, "client.id"),
		TL_CLIENT_CONF_SECURITY(&ac->conf),
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
	admin->allow_auto_create = tl_conf_bool(&ac->conf, "allow.auto.create.topics");
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

/* ---- the request path ----
 *
 * Every admin call goes through admin_call(): a row of admin_apis says where the request
 * goes and which answers are worth asking again; client/request.c's row for the same API
 * key encodes and decodes it. admin_call() finds the node, sends, waits, decodes, and
 * hands the response to the call's mapper, which fills the result and returns the call's
 * error (its message written with admin_fail()). A new API is a row here, a row in
 * client/request.c and a mapper. */

/* Where a request goes. ROUTE_ANY and ROUTE_CONTROLLER go elsewhere when a try fails
 * (admin_call()), as Kafka's AdminClient: its least-loaded-node and controller calls.
 * Writes that any broker can make, because every broker posts them to the cluster's
 * metadata store (ACLs, client quotas, SCRAM credentials: broker/acl_admin.c,
 * quota_admin.c, sasl.c), are ROUTE_ANY, as Kafka sends them; topic changes go to the
 * controller. */
enum admin_route {
	ROUTE_ANY,        /* any ready broker */
	ROUTE_CONTROLLER, /* the controller, as a metadata refresh names it */
	ROUTE_GROUP,      /* the coordinator of the group named by the call */
	ROUTE_TXN,        /* the coordinator of the transactional id named by the call */
	ROUTE_NODE,       /* the node the call names: a partition's leader, each broker */
};

/* The requests of the admin client, indexes into admin_apis. */
enum admin_api_id {
	API_METADATA,
	API_FIND_COORDINATOR,
	API_CREATE_TOPICS,
	API_DELETE_TOPICS,
	API_CREATE_PARTITIONS,
	API_LIST_OFFSETS,
	API_LIST_GROUPS,
	API_DESCRIBE_GROUPS,    /* one group, at its coordinator */
	API_DESCRIBE_GROUPS_AT, /* the groups of one broker's listing, at that broker */
	API_OFFSET_FETCH,
	API_OFFSET_COMMIT,
	API_DELETE_GROUPS,
	API_LIST_TRANSACTIONS,
	API_DESCRIBE_TRANSACTIONS,
	API_DESCRIBE_PRODUCERS,
	API_WRITE_TXN_MARKERS,
	API_INIT_PRODUCER_ID,
	API_INCREMENTAL_ALTER_CONFIGS,
	API_DELETE_RECORDS,
	API_DESCRIBE_LOG_DIRS,
	API_DESCRIBE_CLIENT_QUOTAS,
	API_ALTER_CLIENT_QUOTAS,
	API_DESCRIBE_ACLS,
	API_CREATE_ACLS,
	API_DELETE_ACLS,
	API_DESCRIBE_USER_SCRAM_CREDENTIALS,
	API_ALTER_USER_SCRAM_CREDENTIALS,
};

struct admin_api {
	int16_t api_key;
	enum admin_route route;
	int16_t version_min;              /* lowest version the call can use; 0: any */
	bool (*is_retriable)(tl_err err); /* answers worth asking again; NULL: none */
	const char *what;                 /* the call in messages, before its key: "create topic" */
	tl_err known_err;                 /* an answer said in the call's own words: */
	const char *known_text;           /* "it already exists" for TOPIC_ALREADY_EXISTS */
};

static bool err_is_coordinator_retriable(tl_err err)
{
	return err == TL_ERR_COORDINATOR_NOT_AVAILABLE ||
	       err == TL_ERR_COORDINATOR_LOAD_IN_PROGRESS || err == TL_ERR_NOT_COORDINATOR;
}

/* InitProducerId also waits out a transaction that is still ending. */
static bool err_is_init_retriable(tl_err err)
{
	return err == TL_ERR_CONCURRENT_TRANSACTIONS || err_is_coordinator_retriable(err);
}

static const struct admin_api admin_apis[] = {
	[API_METADATA] = {TL_CLIENT_API_METADATA, ROUTE_ANY, 0, NULL},
	[API_FIND_COORDINATOR] = {TL_CLIENT_API_FIND_COORDINATOR, ROUTE_ANY, 0,
				  err_is_coordinator_retriable},
	[API_CREATE_TOPICS] = {TL_CLIENT_API_CREATE_TOPICS, ROUTE_CONTROLLER, 0, NULL,
			       "create topic", TL_ERR_TOPIC_ALREADY_EXISTS, "it already exists"},
	[API_DELETE_TOPICS] = {TL_CLIENT_API_DELETE_TOPICS, ROUTE_CONTROLLER, 0, NULL,
			       "delete topic", TL_ERR_UNKNOWN_TOPIC_OR_PARTITION,
			       "it does not exist"},
	[API_CREATE_PARTITIONS] = {TL_CLIENT_API_CREATE_PARTITIONS, ROUTE_CONTROLLER, 0, NULL,
				   "add partitions to"},
	[API_LIST_OFFSETS] = {TL_CLIENT_API_LIST_OFFSETS, ROUTE_NODE, 0, NULL},
	[API_LIST_GROUPS] = {TL_CLIENT_API_LIST_GROUPS, ROUTE_NODE, 0,
			     err_is_coordinator_retriable},
	[API_DESCRIBE_GROUPS] = {TL_CLIENT_API_DESCRIBE_GROUPS, ROUTE_GROUP, 0, NULL},
	[API_DESCRIBE_GROUPS_AT] = {TL_CLIENT_API_DESCRIBE_GROUPS, ROUTE_NODE, 0, NULL},
	/* Version 2 is the first that answers "every topic" (topics = null). */
	[API_OFFSET_FETCH] = {TL_CLIENT_API_OFFSET_FETCH, ROUTE_GROUP, 2, NULL},
	[API_OFFSET_COMMIT] = {TL_CLIENT_API_OFFSET_COMMIT, ROUTE_GROUP, 0, NULL},
	[API_DELETE_GROUPS] = {TL_CLIENT_API_DELETE_GROUPS, ROUTE_GROUP, 0, NULL, "delete group"},
	[API_LIST_TRANSACTIONS] = {TL_CLIENT_API_LIST_TRANSACTIONS, ROUTE_NODE, 0, NULL},
	[API_DESCRIBE_TRANSACTIONS] = {TL_CLIENT_API_DESCRIBE_TRANSACTIONS, ROUTE_TXN, 0, NULL},
	[API_DESCRIBE_PRODUCERS] = {TL_CLIENT_API_DESCRIBE_PRODUCERS, ROUTE_NODE, 0, NULL},
	[API_WRITE_TXN_MARKERS] = {TL_CLIENT_API_WRITE_TXN_MARKERS, ROUTE_NODE, 0, NULL},
	[API_INIT_PRODUCER_ID] = {TL_CLIENT_API_INIT_PRODUCER_ID, ROUTE_TXN, 0,
				  err_is_init_retriable, "InitProducerId for"},
	[API_INCREMENTAL_ALTER_CONFIGS] = {TL_CLIENT_API_INCREMENTAL_ALTER_CONFIGS,
					   ROUTE_CONTROLLER, 0, NULL, "alter configs of"},
	[API_DELETE_RECORDS] = {TL_CLIENT_API_DELETE_RECORDS, ROUTE_NODE, 0, NULL,
				"delete records of"},
	[API_DESCRIBE_LOG_DIRS] = {TL_CLIENT_API_DESCRIBE_LOG_DIRS, ROUTE_NODE, 0, NULL},
	[API_DESCRIBE_CLIENT_QUOTAS] = {TL_CLIENT_API_DESCRIBE_CLIENT_QUOTAS, ROUTE_ANY, 0, NULL,
					"describe client quotas"},
	[API_ALTER_CLIENT_QUOTAS] = {TL_CLIENT_API_ALTER_CLIENT_QUOTAS, ROUTE_ANY, 0, NULL,
				     "alter client quotas"},
	[API_DESCRIBE_ACLS] = {TL_CLIENT_API_DESCRIBE_ACLS, ROUTE_ANY, 0, NULL, "describe ACLs"},
	[API_CREATE_ACLS] = {TL_CLIENT_API_CREATE_ACLS, ROUTE_ANY, 0, NULL, "create ACLs"},
	[API_DELETE_ACLS] = {TL_CLIENT_API_DELETE_ACLS, ROUTE_ANY, 0, NULL, "delete ACLs"},
	[API_DESCRIBE_USER_SCRAM_CREDENTIALS] = {TL_CLIENT_API_DESCRIBE_USER_SCRAM_CREDENTIALS,
						 ROUTE_ANY, 0, NULL, "describe SCRAM credentials"},
	[API_ALTER_USER_SCRAM_CREDENTIALS] = {TL_CLIENT_API_ALTER_USER_SCRAM_CREDENTIALS, ROUTE_ANY,
					      0, NULL, "alter SCRAM credentials"},
};

struct admin_call;

/* Turns a decoded response (borrowed) into @call's result, through call->arg, and
 * returns the call's error, its message written with admin_fail(). */
typedef tl_err (*admin_map_fn)(struct tl_admin *admin, const struct admin_call *call,
			       const void *response);

/* One admin request: what to send, to whom, and where the answer goes. */
struct admin_call {
	enum admin_api_id api;
	const void *req; /* the generated codec's request struct, borrowed */
	const char *key; /* ROUTE_GROUP, ROUTE_TXN: the group or transactional id */
	int32_t node;    /* ROUTE_NODE: the node; after admin_call(): the node asked last */
	admin_map_fn map;
	void *arg; /* the mapper's: the result to fill */
};

static int admin_left_ms(int64_t deadline_ns)
{
	int64_t left = (deadline_ns - tl_mono_ns()) / 1000000;
	return (int)TL_MAX(TL_MIN(left, INT32_MAX), 1);
}

static tl_err admin_decode_fail(struct tl_admin *admin, const char *what)
{
	return admin_fail(admin, TL_ERR_CORRUPT_MESSAGE, "%s: the response could not be decoded",
			  what);
}

/* The error of the one entry that a response about one thing holds (a topic, a quota
 * entity), and the broker's words about it. */
struct admin_entry {
	bool is_one; /* false: the response held another number of entries */
	tl_err err;
	struct tl_str message; /* null when the broker sent none */
};

/* The admin_entry of @entries, an array of @count generated response entries with the
 * fields error_code and error_message. An expression; it hides no control flow. */
#define ADMIN_ONE_ENTRY(count, entries)                                                            \
	((count) == 1 ? (struct admin_entry){true, (tl_err)(entries)[0].error_code,                \
					     (entries)[0].error_message}                           \
		      : (struct admin_entry){false, TL_OK, {NULL, -1}})

/* Maps @entry to @call's result: TL_OK, or the entry's error with the message
 * "<what> <key>: <text>[: <the broker's words>]", where @text NULL is the row's
 * known_text for its known_err, else the code's own text. A response without exactly
 * one entry is TL_ERR_CORRUPT_MESSAGE. */
static tl_err admin_entry_map(struct tl_admin *admin, const struct admin_call *call,
			      struct admin_entry entry, const char *text)
{
	const struct admin_api *api = &admin_apis[call->api];
	TL_ASSERT(api->what);
	if (!entry.is_one)
		return admin_decode_fail(admin, tl_client_rpc_find(api->api_key)->name);
	if (entry.err == TL_OK)
		return TL_OK;
	if (!text && api->known_text && entry.err == api->known_err)
		text = api->known_text;
	struct tl_str msg = entry.message;
	return admin_fail(admin, entry.err, "%s%s%s: %s%s%.*s", api->what, call->key ? " " : "",
			  call->key ? call->key : "", text ? text : tl_err_message(entry.err),
			  msg.len > 0 ? ": " : "", msg.len > 0 ? (int)msg.len : 0,
			  msg.len > 0 ? msg.ptr : "");
}

/* Defines @name, the mapper of a call about one thing whose response, a struct @type,
 * holds @count entries at @entries: admin_entry_map() of the one entry. */
#define ADMIN_ONE_ENTRY_MAPPER(name, type, count, entries)                                         \
	static tl_err name(struct tl_admin *admin, const struct admin_call *call,                  \
			   const void *response)                                                   \
	{                                                                                          \
		const struct type *resp = response;                                                \
		return admin_entry_map(admin, call, ADMIN_ONE_ENTRY(resp->count, resp->entries),   \
				       NULL);                                                      \
	}

/* Defines the mapper of a call that describes one thing at its coordinator
 * (DescribeGroups, DescribeTransactions), @fn: the response, a struct @type, holds @count
 * entries at @entries; @copy(arena, entry, out) copies the one entry into the result,
 * call->arg, at pub.@member, whose coordinator_id is then call->node. */
#define ADMIN_DESCRIBE_MAPPER(fn, type, count, entries, copy, member)                              \
	static tl_err fn(struct tl_admin *admin, const struct admin_call *call,                    \
			 const void *response)                                                     \
	{                                                                                          \
		const struct type *resp = response;                                                \
		struct admin_result *result = call->arg;                                           \
		if (resp->count != 1)                                                              \
			return admin_decode_fail(                                                  \
				admin, tl_client_rpc_find(admin_apis[call->api].api_key)->name);   \
		if (!copy(&result->arena, &resp->entries[0], &result->pub.member))                 \
			return TL_ERR_NOMEM;                                                       \
		result->pub.member.coordinator_id = call->node;                                    \
		return TL_OK;                                                                      \
	}

static tl_err admin_call(struct tl_admin *admin, struct admin_call *call, int64_t deadline_ns);

/* The controller's node id after a metadata refresh. */
static tl_err admin_controller(struct tl_admin *admin, int64_t deadline_ns, int32_t *node_out)
{
	tl_err err =
		tl_client_metadata_refresh_sync(admin->client, false, admin_left_ms(deadline_ns));
	if (err != TL_OK)
		return admin_call_fail(admin, err, "Metadata");
	int32_t node = tl_client_controller(admin->client);
	*node_out = node >= 0 ? node : TL_CLIENT_NODE_ANY;
	return TL_OK;
}

struct coordinator_arg {
	int8_t key_type; /* 0: group, 1: transactional id */
	int32_t node;
};

static tl_err find_coordinator_map(struct tl_admin *admin, const struct admin_call *call,
				   const void *response)
{
	const struct tl_find_coordinator_response *resp = response;
	struct coordinator_arg *arg = call->arg;
	tl_err err = (tl_err)resp->error_code;
	if (err == TL_OK) {
		err = tl_client_broker_add(admin->client, resp->node_id, resp->host.ptr,
					   TL_MAX(resp->host.len, 0), resp->port);
		arg->node = resp->node_id;
	}
	if (err != TL_OK)
		admin_fail(admin, err, "FindCoordinator for %s %s: %s",
			   arg->key_type ? "transactional id" : "group", call->key,
			   tl_err_message(err));
	return err;
}

/* The coordinator of group (@key_type 0) or transactional id (1) @key; its address is
 * added to the client. Retries while the coordinator is loading, until @deadline_ns. */
static tl_err admin_coordinator(struct tl_admin *admin, const char *key, int8_t key_type,
				int64_t deadline_ns, int32_t *node_out)
{
	struct tl_find_coordinator_request req;
	tl_find_coordinator_request_defaults(&req);
	req.key = tl_str_of(key);
	req.key_type = key_type;
	struct coordinator_arg arg = {key_type, -1};
	struct admin_call call = {API_FIND_COORDINATOR, &req, key, TL_CLIENT_NODE_ANY,
				  find_coordinator_map, &arg};
	tl_err err = admin_call(admin, &call, deadline_ns);
	if (err == TL_OK)
		*node_out = arg.node;
	return err;
}

/* Where @api's request goes for @call. */
static tl_err admin_route(struct tl_admin *admin, const struct admin_api *api,
			  const struct admin_call *call, int64_t deadline_ns, int32_t *node_out)
{
	switch (api->route) {
	case ROUTE_ANY:
		*node_out = TL_CLIENT_NODE_ANY;
		return TL_OK;
	case ROUTE_NODE:
		*node_out = call->node;
		return TL_OK;
	case ROUTE_CONTROLLER:
		return admin_controller(admin, deadline_ns, node_out);
	case ROUTE_GROUP:
		return admin_coordinator(admin, call->key, 0, deadline_ns, node_out);
	case ROUTE_TXN:
		return admin_coordinator(admin, call->key, 1, deadline_ns, node_out);
	}
	TL_ASSERT(!"admin_route: unknown route");
	return TL_ERR_INVALID;
}

/* One try of @call at @node: send, wait, decode, map. A try of a call that goes
 * elsewhere when it fails (@is_try) waits at most ADMIN_CONNECT_TRY_MS for a given
 * node's connection and ends as soon as connecting to it fails, and its request waits
 * at most until @deadline_ns; *@transport_out says whether the try failed for want of
 * an answer (a connection failed or was lost, a wait ran out) rather than with one. */
static tl_err admin_send(struct tl_admin *admin, const struct admin_api *api,
			 const struct admin_call *call, int32_t node, int64_t deadline_ns,
			 bool is_try, bool *transport_out)
{
	const struct tl_client_rpc *rpc = tl_client_rpc_find(api->api_key);
	*transport_out = false;
	if (api->version_min > 0 && tl_client_node_ready(admin->client, node) &&
	    tl_client_api_version(admin->client, node, api->api_key) < api->version_min)
		return admin_fail(admin, TL_ERR_UNSUPPORTED_VERSION,
				  "%s needs version %d or later; the broker is too old", rpc->name,
				  api->version_min);
	struct tl_arena arena;
	tl_arena_init(&arena, ADMIN_ARENA_MAX);
	void *response;
	int left_ms = admin_left_ms(deadline_ns);
	int connect_ms =
		node == TL_CLIENT_NODE_ANY ? left_ms : TL_MIN(left_ms, ADMIN_CONNECT_TRY_MS);
	tl_err err = is_try ? tl_client_rpc_try(admin->client, node, rpc, call->req, connect_ms,
						left_ms, &arena, &response, NULL)
			    : tl_client_rpc_call(admin->client, node, rpc, call->req, left_ms,
						 &arena, &response, NULL);
	*transport_out = err == TL_ERR_NETWORK_EXCEPTION || err == TL_ERR_REQUEST_TIMED_OUT ||
			 err == TL_ERR_TIMED_OUT;
	if (err == TL_OK)
		err = call->map(admin, call, response);
	else if (err == TL_ERR_CORRUPT_MESSAGE)
		admin_decode_fail(admin, rpc->name);
	else if (err == TL_ERR_UNSUPPORTED_VERSION)
		admin_fail(
			admin, err,
			"%s is not supported by this broker (it advertises no version of API key %d that libtally speaks)",
			rpc->name, api->api_key);
	else
		admin_call_fail(admin, err, rpc->name);
	tl_arena_deinit(&arena);
	return err;
}

/* Where @api's request goes after a failed try: any broker, or the controller that a
 * metadata refresh from a broker that answers names, after ADMIN_RETRY_MS. While it
 * names a broker whose connection just failed (etcd keeps a killed controller named
 * until its lease ends), asks again. TL_ERR_TIMED_OUT once @deadline_ns passes. */
static tl_err admin_reroute(struct tl_admin *admin, const struct admin_api *api,
			    int64_t deadline_ns, int32_t *node_out)
{
	for (;;) {
		tl_client_poll(admin->client, TL_MIN(ADMIN_RETRY_MS, admin_left_ms(deadline_ns)));
		if (tl_mono_ns() >= deadline_ns)
			return TL_ERR_TIMED_OUT;
		if (api->route == ROUTE_ANY) {
			*node_out = TL_CLIENT_NODE_ANY;
			return TL_OK;
		}
		TL_ASSERT(api->route == ROUTE_CONTROLLER);
		if (tl_client_metadata_refresh_sync(admin->client, false,
						    admin_left_ms(deadline_ns)) != TL_OK)
			continue;
		int32_t node = tl_client_controller(admin->client);
		if (node >= 0 && tl_client_node_is_backing_off(admin->client, node))
			continue;
		*node_out = node >= 0 ? node : TL_CLIENT_NODE_ANY;
		return TL_OK;
	}
}

/* Sends @call where its row routes it and maps the answer, until @deadline_ns:
 * - a call to any broker or the controller whose try got no answer (the broker died,
 *   is stopped, cannot be reached), or got NOT_CONTROLLER, goes elsewhere
 *   (admin_reroute(): metadata is asked again for the controller);
 *   a broker whose connection failed is not asked again for ADMIN_NODE_BACKOFF_MS;
 * - an answer the row retries is asked again after 100 ms (a coordinator that moved is
 *   looked up again).
 * call->node is left at the node asked last. */
static tl_err admin_call(struct tl_admin *admin, struct admin_call *call, int64_t deadline_ns)
{
	const struct admin_api *api = &admin_apis[call->api];
	TL_ASSERT(call->map);
	bool reroutes = api->route == ROUTE_ANY || api->route == ROUTE_CONTROLLER;
	int32_t node = TL_CLIENT_NODE_ANY;
	/* FindCoordinator goes round the brokers: one that cannot vouch for its view
	 * answers COORDINATOR_NOT_AVAILABLE until it can, another may know. */
	bool rotates = call->api == API_FIND_COORDINATOR, listed = false;
	int32_t asked = TL_CLIENT_NODE_ANY;
	tl_err err = admin_route(admin, api, call, deadline_ns, &node);
	while (err == TL_OK) {
		if (rotates) {
			node = tl_client_next_ready_node(admin->client, asked);
			if (node != TL_CLIENT_NODE_ANY)
				asked = node;
		}
		call->node = node;
		bool transport;
		err = admin_send(admin, api, call, node, deadline_ns, reroutes, &transport);
		if (err == TL_OK || tl_mono_ns() >= deadline_ns)
			return err;
		if (reroutes && (transport || err == TL_ERR_NOT_CONTROLLER)) {
			if (node != TL_CLIENT_NODE_ANY)
				tl_client_node_backoff(admin->client, node, ADMIN_NODE_BACKOFF_MS);
			err = admin_reroute(admin, api, deadline_ns, &node);
			if (err != TL_OK)
				return admin_call_fail(admin, err,
						       tl_client_rpc_find(api->api_key)->name);
			continue;
		}
		if (!api->is_retriable || !api->is_retriable(err))
			return err;
		if (rotates && !listed) {
			/* The brokers to go round (once: any of them may answer it). */
			(void)tl_client_metadata_refresh_sync(admin->client, false,
							      admin_left_ms(deadline_ns));
			listed = true;
		}
		tl_client_poll(admin->client, 100);
		bool moved = err == TL_ERR_NOT_COORDINATOR &&
			     (api->route == ROUTE_GROUP || api->route == ROUTE_TXN);
		err = moved ? admin_route(admin, api, call, deadline_ns, &node) : TL_OK;
	}
	return err;
}

static int64_t admin_deadline(int timeout_ms)
{
	return tl_mono_ns() + (int64_t)timeout_ms * 1000000;
}

/* ---- create and delete ---- */

ADMIN_ONE_ENTRY_MAPPER(create_topic_map, tl_create_topics_response, topics_count, topics)

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
	int64_t deadline = admin_deadline(timeout_ms);
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
	struct admin_call call = {API_CREATE_TOPICS, &req, topic, -1, create_topic_map, NULL};
	tl_err err = admin_call(admin, &call, deadline);
	free(cfg);
	return err;
}

ADMIN_ONE_ENTRY_MAPPER(delete_topic_map, tl_delete_topics_response, responses_count, responses)

TL_EXPORT tl_err tl_admin_delete_topic(struct tl_admin *admin, const char *topic, int timeout_ms)
{
	if (!topic || !topic[0])
		return admin_fail(admin, TL_ERR_INVALID, "delete_topic: needs a topic name");
	struct tl_str name = tl_str_of(topic);
	struct tl_delete_topics_request req;
	tl_delete_topics_request_defaults(&req);
	req.topic_names_count = 1;
	req.topic_names = &name;
	req.topics_count = 0;
	req.timeout_ms = timeout_ms;
	struct admin_call call = {API_DELETE_TOPICS, &req, topic, -1, delete_topic_map, NULL};
	return admin_call(admin, &call, admin_deadline(timeout_ms));
}

/* ---- list and describe ---- */

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

/* What admin_metadata() asks for and fills. */
struct metadata_arg {
	const char *const *names; /* NULL: every topic */
	int32_t count;
	struct admin_topics *result;
};

static tl_err metadata_map(struct tl_admin *admin, const struct admin_call *call,
			   const void *response)
{
	const struct tl_metadata_response *resp = response;
	struct metadata_arg *arg = call->arg;
	struct admin_topics *result = arg->result;
	TL_UNUSED(admin);
	int32_t n = TL_MAX(resp->topics_count, 0);
	result->topics = calloc((size_t)n + 1, sizeof(*result->topics));
	if (!result->topics)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < n; i++)
		if (!topic_info_copy(&result->arena, &resp->topics[i], &result->topics[i]))
			return TL_ERR_NOMEM;
	/* Describe answers in the order asked; list sorts by name. */
	if (!arg->names)
		qsort(result->topics, (size_t)n, sizeof(*result->topics), topic_info_cmp);
	for (int32_t i = 0; arg->names && i < n && i < arg->count; i++) {
		for (int32_t j = i; j < n; j++) {
			if (strcmp(result->topics[j].name, arg->names[i]) == 0) {
				struct tl_admin_topic_info tmp = result->topics[i];
				result->topics[i] = result->topics[j];
				result->topics[j] = tmp;
				break;
			}
		}
	}
	result->pub.count = n;
	result->pub.topics = result->topics;
	return TL_OK;
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
	req.allow_auto_topic_creation = names && admin->allow_auto_create;
	struct metadata_arg arg = {names, count, result};
	struct admin_call call = {API_METADATA, &req, NULL, -1, metadata_map, &arg};
	tl_err err = admin_call(admin, &call, admin_deadline(timeout_ms));
	free(ts);
	if (err != TL_OK) {
		tl_admin_topics_destroy(&result->pub);
		return err;
	}
	*out = &result->pub;
	return TL_OK;
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

/* ---- shared by the calls below ---- */

/* The storage behind each result struct below: one arena owns its strings and arrays. */
struct admin_result {
	struct tl_arena arena;
	union {
		struct tl_admin_cluster cluster;
		struct tl_admin_groups groups;
		struct tl_admin_group_description group;
		struct tl_admin_group_offsets offsets;
		struct tl_admin_txns txns;
		struct tl_admin_txn_description txn;
		struct tl_admin_producers producers;
		struct tl_admin_log_dirs log_dirs;
		struct tl_admin_quotas quotas;
		struct tl_admin_acls acls;
		struct tl_admin_scram_users scram_users;
	} pub;
};

static struct admin_result *result_create(void)
{
	struct admin_result *result = calloc(1, sizeof(*result));
	if (result)
		tl_arena_init(&result->arena, ADMIN_ARENA_MAX);
	return result;
}

/* Frees the result whose public part is at @pub (NULL is ignored). */
static void result_destroy(void *pub)
{
	if (!pub)
		return;
	struct admin_result *result =
		(struct admin_result *)((char *)pub - offsetof(struct admin_result, pub));
	tl_arena_deinit(&result->arena);
	free(result);
}

/* Hands the public part of @result to the caller: @out is the address of the caller's
 * pointer to one of the structs of result->pub (struct tl_admin_cluster **, ...), which
 * all start at &result->pub. Through memcpy, as the pointer's type is the caller's. */
static void result_publish(struct admin_result *result, void *out)
{
	void *pub = &result->pub;
	memcpy(out, &pub, sizeof(pub));
}

/* An array of @count items of @size bytes (at least one) from @result's arena, or NULL. */
static void *result_array(struct admin_result *result, int32_t count, size_t size)
{
	return tl_arena_array(&result->arena, (size_t)TL_MAX(count, 1), size);
}

/* Runs @call with a new result as its mapper's argument; when the call succeeds, the
 * pointer at @out (see result_publish()) gets the result's public part, the caller's to
 * free with result_destroy(); when it fails, the result is freed and @out left alone. */
static tl_err admin_call_result(struct tl_admin *admin, struct admin_call *call, int timeout_ms,
				void *out)
{
	struct admin_result *result = result_create();
	if (!result)
		return TL_ERR_NOMEM;
	call->arg = result;
	tl_err err = admin_call(admin, call, admin_deadline(timeout_ms));
	if (err != TL_OK) {
		result_destroy(&result->pub);
		return err;
	}
	result_publish(result, out);
	return TL_OK;
}

/* Like arena_strdup, but a null wire string stays NULL. */
static char *arena_strdup_null(struct tl_arena *arena, struct tl_str s)
{
	return s.len < 0 ? NULL : arena_strdup(arena, s);
}

/* Index order for grouping partitions into one request per leader: by leader, then
 * topic, then partition. */
struct leader_sort {
	const int32_t *leaders;
	const char *const *topics;
	const int32_t *partitions;
};

static int leader_sort_cmp(const void *a, const void *b, void *arg)
{
	const struct leader_sort *ls = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	if (ls->leaders[x] != ls->leaders[y])
		return ls->leaders[x] < ls->leaders[y] ? -1 : 1;
	int c = strcmp(ls->topics[x], ls->topics[y]);
	if (c != 0)
		return c;
	return ls->partitions[x] < ls->partitions[y] ? -1 : ls->partitions[x] > ls->partitions[y];
}

/* Looks up the leader of each (topic, partition) after a metadata refresh: a node id, or
 * -1 with the reason in @errs. */
static tl_err admin_leaders(struct tl_admin *admin, const char *const *topics,
			    const int32_t *partitions, int32_t count, int64_t deadline_ns,
			    int32_t *leaders, tl_err *errs)
{
	for (int32_t i = 0; i < count; i++)
		if (tl_client_want_topic(admin->client, topics[i]) != TL_OK)
			return TL_ERR_NOMEM;
	tl_err err =
		tl_client_metadata_refresh_sync(admin->client, false, admin_left_ms(deadline_ns));
	if (err != TL_OK)
		return admin_call_fail(admin, err, "Metadata");
	for (int32_t i = 0; i < count; i++) {
		const struct tl_client_topic *t = tl_client_topic(admin->client, topics[i]);
		leaders[i] = -1;
		if (!t)
			errs[i] = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		else if (t->error != 0)
			errs[i] = (tl_err)t->error;
		else if (partitions[i] < 0 || partitions[i] >= t->partition_count)
			errs[i] = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		else if ((leaders[i] = t->partitions[partitions[i]].leader_id) < 0)
			errs[i] = TL_ERR_LEADER_NOT_AVAILABLE;
		else
			errs[i] = TL_OK;
	}
	return TL_OK;
}

/* Asks each leader about its entries: calls @fn once per leader in @leaders (from
 * admin_leaders()) with the indexes of the entries it leads, sorted by topic then
 * partition. Entries without a leader (-1) are left out. */
typedef tl_err (*admin_leader_fn)(struct tl_admin *admin, int32_t node, int32_t *idx, int32_t n,
				  int64_t deadline_ns, void *arg);

static tl_err admin_by_leader(struct tl_admin *admin, const int32_t *leaders,
			      const char *const *topics, const int32_t *partitions, int32_t count,
			      int64_t deadline_ns, admin_leader_fn fn, void *arg)
{
	int32_t *idx = calloc((size_t)count, sizeof(*idx));
	if (!idx)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count; i++)
		idx[i] = i;
	struct leader_sort ls = {leaders, topics, partitions};
	qsort_r(idx, (size_t)count, sizeof(*idx), leader_sort_cmp, &ls);
	tl_err err = TL_OK;
	for (int32_t start = 0; start < count && err == TL_OK;) {
		int32_t end = start + 1;
		while (end < count && leaders[idx[end]] == leaders[idx[start]])
			end++;
		if (leaders[idx[start]] >= 0)
			err = fn(admin, leaders[idx[start]], idx + start, end - start, deadline_ns,
				 arg);
		start = end;
	}
	free(idx);
	return err;
}

/* Entries that a call asks partition leaders about (struct tl_admin_offset_query, struct
 * tl_admin_partition_producers) start as a struct tl_admin_topic_partition does. */
TL_STATIC_ASSERT(offsetof(struct tl_admin_offset_query, topic) == 0 &&
			 offsetof(struct tl_admin_offset_query, partition) ==
				 offsetof(struct tl_admin_topic_partition, partition) &&
			 offsetof(struct tl_admin_partition_producers, topic) == 0 &&
			 offsetof(struct tl_admin_partition_producers, partition) ==
				 offsetof(struct tl_admin_topic_partition, partition),
		 "leader entries start with topic and partition");

/* Asks the leader of each of @count entries at @entries (@stride bytes apart, each
 * starting with a topic and a partition, see above): looks the leaders up
 * (admin_leaders()), writes each entry's lookup error into its tl_err at @err_at (TL_OK
 * where it has a leader), then calls @fn once per leader (admin_by_leader()). */
static tl_err admin_to_leaders(struct tl_admin *admin, void *entries, int32_t count, size_t stride,
			       size_t err_at, int64_t deadline_ns, admin_leader_fn fn, void *arg)
{
	const char **topics = calloc((size_t)count, sizeof(*topics));
	int32_t *partitions = calloc((size_t)count, sizeof(*partitions));
	int32_t *leaders = calloc((size_t)count, sizeof(*leaders));
	tl_err *errs = calloc((size_t)count, sizeof(*errs));
	tl_err err = TL_ERR_NOMEM;
	if (!topics || !partitions || !leaders || !errs)
		goto out;
	for (int32_t i = 0; i < count; i++) {
		const char *entry = (const char *)entries + (size_t)i * stride;
		memcpy(&topics[i], entry, sizeof(topics[i]));
		memcpy(&partitions[i], entry + offsetof(struct tl_admin_topic_partition, partition),
		       sizeof(partitions[i]));
	}
	err = admin_leaders(admin, topics, partitions, count, deadline_ns, leaders, errs);
	if (err != TL_OK)
		goto out;
	for (int32_t i = 0; i < count; i++)
		memcpy((char *)entries + (size_t)i * stride + err_at, &errs[i], sizeof(errs[i]));
	err = admin_by_leader(admin, leaders, topics, partitions, count, deadline_ns, fn, arg);
out:
	free(topics);
	free(partitions);
	free(leaders);
	free(errs);
	return err;
}

/* The next of the entries @idx[*k..n) of @entries (@stride bytes apart, each starting
 * with a topic and a partition) that is @topic's @partition, with *k moved past it; NULL
 * when none is left. */
static void *leader_entry_next(void *entries, size_t stride, const int32_t *idx, int32_t n,
			       int32_t *k, struct tl_str topic, int32_t partition)
{
	while (*k < n) {
		char *entry = (char *)entries + (size_t)idx[(*k)++] * stride;
		const char *entry_topic;
		int32_t entry_partition;
		memcpy(&entry_topic, entry, sizeof(entry_topic));
		memcpy(&entry_partition,
		       entry + offsetof(struct tl_admin_topic_partition, partition),
		       sizeof(entry_partition));
		if (entry_partition == partition && tl_str_eq_c(topic, entry_topic))
			return entry;
	}
	return NULL;
}

/* What a request to one partition leader is for. */
struct leader_arg {
	void *entries;          /* the call's, as admin_to_leaders() takes them */
	const int32_t *idx;     /* this request's: indexes into @entries */
	int32_t n;              /* how many */
	int8_t isolation_level; /* ListOffsets' */
	struct tl_arena *arena; /* DescribeProducers': the result's */
};

/* Defines @fn, the mapper of a request to one partition leader: for each partition
 * answer in the response, a struct @type with topics[].name and topics[].partitions[],
 * calls @apply(arg, entry, answer) for each of the request's entries (a struct
 * leader_arg, call->arg; struct @entry_type each) that it answers; @apply returns false
 * when out of memory. */
#define ADMIN_LEADER_MAPPER(fn, type, entry_type, apply)                                           \
	static tl_err fn(struct tl_admin *admin, const struct admin_call *call,                    \
			 const void *response)                                                     \
	{                                                                                          \
		const struct type *resp = response;                                                \
		const struct leader_arg *arg = call->arg;                                          \
		TL_UNUSED(admin);                                                                  \
		for (int32_t t = 0; t < resp->topics_count; t++) {                                 \
			for (int32_t p = 0; p < resp->topics[t].partitions_count; p++) {           \
				struct entry_type *e;                                              \
				int32_t k = 0;                                                     \
				while ((e = leader_entry_next(                                     \
						arg->entries, sizeof(*e), arg->idx, arg->n, &k,    \
						resp->topics[t].name,                              \
						resp->topics[t].partitions[p].partition_index)))   \
					if (!apply(arg, e, &resp->topics[t].partitions[p]))        \
						return TL_ERR_NOMEM;                               \
			}                                                                          \
		}                                                                                  \
		return TL_OK;                                                                      \
	}

/* Frees @a and @b unless both are there (two arrays a request is built in): true when
 * both are. */
static bool both_or_free(void *a, void *b)
{
	if (a && b)
		return true;
	free(a);
	free(b);
	return false;
}

/* ---- add partitions ---- */

ADMIN_ONE_ENTRY_MAPPER(create_partitions_map, tl_create_partitions_response, results_count, results)

TL_EXPORT tl_err tl_admin_create_partitions(struct tl_admin *admin, const char *topic,
					    int32_t total, int timeout_ms)
{
	if (!topic || !topic[0] || total <= 0)
		return admin_fail(admin, TL_ERR_INVALID,
				  "create_partitions: needs a topic name and a count > 0");
	struct tl_create_partitions_request_create_partitions_topic t;
	tl_create_partitions_request_create_partitions_topic_defaults(&t);
	t.name = tl_str_of(topic);
	t.count = total;
	t.assignments_count = -1;
	struct tl_create_partitions_request req;
	tl_create_partitions_request_defaults(&req);
	req.topics_count = 1;
	req.topics = &t;
	req.timeout_ms = timeout_ms;
	struct admin_call call = {API_CREATE_PARTITIONS, &req, topic, -1,
				  create_partitions_map, NULL};
	return admin_call(admin, &call, admin_deadline(timeout_ms));
}

/* ---- offsets ---- */

/* Copies the ListOffsets answer @p into the query @q it answers. */
static bool
list_offsets_apply(const struct leader_arg *arg, struct tl_admin_offset_query *q,
		   const struct tl_list_offsets_response_list_offsets_partition_response *p)
{
	TL_UNUSED(arg);
	q->err = (tl_err)p->error_code;
	q->offset = p->offset;
	q->offset_timestamp = q->timestamp >= 0 ? p->timestamp : -1;
	if (q->err == TL_OK && q->offset < 0 && q->timestamp < 0)
		q->err = TL_ERR_CORRUPT_MESSAGE;
	return true;
}

ADMIN_LEADER_MAPPER(list_offsets_map, tl_list_offsets_response, tl_admin_offset_query,
		    list_offsets_apply)

/* One ListOffsets request to @node for the queries @arg->idx[0..n) (sorted by topic). */
static tl_err list_offsets_at(struct tl_admin *admin, int32_t node, struct leader_arg *arg,
			      int64_t deadline_ns)
{
	const struct tl_admin_offset_query *queries = arg->entries;
	int32_t n = arg->n;
	struct tl_list_offsets_request_list_offsets_topic *ts = calloc((size_t)n, sizeof(*ts));
	struct tl_list_offsets_request_list_offsets_partition *ps = calloc((size_t)n, sizeof(*ps));
	if (!both_or_free(ts, ps))
		return TL_ERR_NOMEM;
	struct tl_list_offsets_request req;
	tl_list_offsets_request_defaults(&req);
	req.replica_id = -1;
	req.isolation_level = arg->isolation_level;
	req.topics = ts;
	req.topics_count = 0;
	for (int32_t k = 0; k < n; k++) {
		const struct tl_admin_offset_query *q = &queries[arg->idx[k]];
		if (k == 0 || strcmp(q->topic, queries[arg->idx[k - 1]].topic) != 0) {
			tl_list_offsets_request_list_offsets_topic_defaults(&ts[req.topics_count]);
			ts[req.topics_count].name = tl_str_of(q->topic);
			ts[req.topics_count].partitions = &ps[k];
			ts[req.topics_count].partitions_count = 0;
			req.topics_count++;
		}
		tl_list_offsets_request_list_offsets_partition_defaults(&ps[k]);
		ps[k].partition_index = q->partition;
		ps[k].current_leader_epoch = -1;
		ps[k].max_num_offsets = 1;
		ps[k].timestamp = q->timestamp;
		ts[req.topics_count - 1].partitions_count++;
	}
	struct admin_call call = {API_LIST_OFFSETS, &req, NULL, node, list_offsets_map, arg};
	tl_err err = admin_call(admin, &call, deadline_ns);
	free(ts);
	free(ps);
	return err;
}

/* The queries @idx[0..n) of one leader, sorted: a partition may appear more than once
 * (earliest and latest), but a broker answers each partition of a request once, so each
 * request takes at most one query per partition. */
static tl_err list_offsets_leader(struct tl_admin *admin, int32_t node, int32_t *idx, int32_t n,
				  int64_t deadline_ns, void *varg)
{
	const struct leader_arg *all = varg;
	struct tl_admin_offset_query *queries = all->entries;
	int32_t *round = calloc((size_t)n, sizeof(*round));
	bool *sent = calloc((size_t)n, sizeof(*sent));
	tl_err err = round && sent ? TL_OK : TL_ERR_NOMEM;
	for (int32_t left = n; err == TL_OK && left > 0;) {
		int32_t k = 0;
		for (int32_t i = 0; i < n; i++) {
			if (sent[i])
				continue;
			const struct tl_admin_offset_query *q = &queries[idx[i]];
			if (k > 0 && queries[round[k - 1]].partition == q->partition &&
			    strcmp(queries[round[k - 1]].topic, q->topic) == 0)
				continue;
			round[k++] = idx[i];
			sent[i] = true;
		}
		struct leader_arg arg = {queries, round, k, all->isolation_level, NULL};
		err = list_offsets_at(admin, node, &arg, deadline_ns);
		left -= k;
	}
	free(round);
	free(sent);
	return err;
}

TL_EXPORT tl_err tl_admin_list_offsets(struct tl_admin *admin,
				       struct tl_admin_offset_query *queries, int32_t count,
				       int8_t isolation_level, int timeout_ms)
{
	if (count <= 0 || !queries)
		return admin_fail(admin, TL_ERR_INVALID, "list_offsets: needs partitions");
	for (int32_t i = 0; i < count; i++) {
		if (!queries[i].topic || !queries[i].topic[0])
			return admin_fail(admin, TL_ERR_INVALID,
					  "list_offsets: query %d has no topic", i);
		queries[i].err = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		queries[i].offset = -1;
		queries[i].offset_timestamp = -1;
	}
	struct leader_arg arg = {queries, NULL, count, isolation_level, NULL};
	return admin_to_leaders(admin, queries, count, sizeof(*queries),
				offsetof(struct tl_admin_offset_query, err),
				admin_deadline(timeout_ms), list_offsets_leader, &arg);
}

/* ---- cluster ---- */

static int broker_cmp(const void *a, const void *b)
{
	const struct tl_admin_broker *x = a, *y = b;
	return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

static bool cluster_copy(struct tl_arena *arena, const struct tl_metadata_response *resp,
			 struct tl_admin_cluster *out)
{
	int32_t n = TL_MAX(resp->brokers_count, 0);
	struct tl_admin_broker *brokers = tl_arena_array(arena, (size_t)n + 1, sizeof(*brokers));
	if (!brokers)
		return false;
	for (int32_t i = 0; i < n; i++) {
		brokers[i].node_id = resp->brokers[i].node_id;
		brokers[i].host = arena_strdup(arena, resp->brokers[i].host);
		brokers[i].port = resp->brokers[i].port;
		brokers[i].rack = arena_strdup_null(arena, resp->brokers[i].rack);
		if (!brokers[i].host)
			return false;
	}
	qsort(brokers, (size_t)n, sizeof(*brokers), broker_cmp);
	out->cluster_id = arena_strdup_null(arena, resp->cluster_id);
	out->controller_id = resp->controller_id;
	out->broker_count = n;
	out->brokers = brokers;
	out->topic_count = TL_MAX(resp->topics_count, 0);
	out->partition_count = 0;
	for (int32_t i = 0; i < out->topic_count; i++)
		out->partition_count += TL_MAX(resp->topics[i].partitions_count, 0);
	return true;
}

static tl_err cluster_map(struct tl_admin *admin, const struct admin_call *call,
			  const void *response)
{
	const struct tl_metadata_response *resp = response;
	struct admin_result *result = call->arg;
	if (!cluster_copy(&result->arena, resp, &result->pub.cluster))
		return TL_ERR_NOMEM;
	/* The client learns the brokers too, for tl_admin_probe_broker. */
	tl_err err = TL_OK;
	for (int32_t i = 0; err == TL_OK && i < resp->brokers_count; i++)
		err = tl_client_broker_add(
			admin->client, resp->brokers[i].node_id, resp->brokers[i].host.ptr,
			TL_MAX(resp->brokers[i].host.len, 0), resp->brokers[i].port);
	return err;
}

TL_EXPORT tl_err tl_admin_describe_cluster(struct tl_admin *admin, struct tl_admin_cluster **out,
					   int timeout_ms)
{
	struct tl_metadata_request req;
	tl_metadata_request_defaults(&req);
	req.topics_count = -1;
	req.allow_auto_topic_creation = false;
	struct admin_call call = {API_METADATA, &req, NULL, -1, cluster_map, NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}

TL_EXPORT tl_err tl_admin_probe_broker(struct tl_admin *admin, int32_t node_id, int timeout_ms)
{
	int64_t deadline = tl_mono_ns() + (int64_t)timeout_ms * 1000000;
	while (!tl_client_node_ready(admin->client, node_id)) {
		if (tl_mono_ns() >= deadline) {
			const char *conn = tl_client_last_error(admin->client);
			return admin_fail(admin, TL_ERR_TIMED_OUT,
					  "broker %d did not answer within %d ms%s%s", node_id,
					  timeout_ms, conn[0] ? ": " : "", conn);
		}
		tl_client_poll(admin->client, 20);
	}
	return TL_OK;
}

/* The node ids of every broker (Metadata), for calls that go to each of them. */
static tl_err admin_all_brokers(struct tl_admin *admin, int64_t deadline_ns, int32_t **nodes_out,
				int32_t *count_out)
{
	struct tl_admin_cluster *cluster;
	tl_err err = tl_admin_describe_cluster(admin, &cluster, admin_left_ms(deadline_ns));
	if (err != TL_OK)
		return err;
	int32_t *nodes = calloc((size_t)cluster->broker_count + 1, sizeof(*nodes));
	if (!nodes) {
		tl_admin_cluster_destroy(cluster);
		return TL_ERR_NOMEM;
	}
	for (int32_t i = 0; i < cluster->broker_count; i++)
		nodes[i] = cluster->brokers[i].node_id;
	*count_out = cluster->broker_count;
	*nodes_out = nodes;
	tl_admin_cluster_destroy(cluster);
	return TL_OK;
}

/* Listings gathered from every broker (ListGroups, ListTransactions): a growing array
 * of @size-byte items in @arena. */
struct broker_listing {
	struct tl_arena *arena;
	void *items;
	size_t size;
	int32_t count;
	int32_t cap;
	int32_t from; /* the first item from the broker being asked */
};

/* A new zeroed item at the end of @list, or NULL when out of memory. */
static void *listing_add(struct broker_listing *list)
{
	if (list->count == list->cap) {
		int32_t cap = list->cap ? list->cap * 2 : 16;
		void *items = tl_arena_array(list->arena, (size_t)cap, list->size);
		if (!items)
			return NULL;
		if (list->count)
			memcpy(items, list->items, (size_t)list->count * list->size);
		list->items = items;
		list->cap = cap;
	}
	TL_ASSERT(list->count < list->cap);
	return (char *)list->items + (size_t)list->count++ * list->size;
}

/* Asks one broker for more of a listing. */
typedef tl_err (*admin_broker_fn)(struct tl_admin *admin, int32_t node, int64_t deadline_ns,
				  struct broker_listing *list);

/* A listing gathered from every broker (ListGroups, ListTransactions). Its public struct
 * is { int32_t count; const T *items; } and each item starts with its id, a const char *
 * (asserted below). */
struct listing_kind {
	enum admin_api_id api;
	admin_map_fn map;     /* adds one broker's answer to the listing, call->arg */
	admin_broker_fn then; /* NULL, or what else to ask the same broker */
	size_t size;          /* of an item */
};

#define LISTING_ITEMS_AT offsetof(struct tl_admin_groups, groups)
TL_STATIC_ASSERT(offsetof(struct tl_admin_groups, count) == 0 &&
			 offsetof(struct tl_admin_txns, count) == 0 &&
			 offsetof(struct tl_admin_txns, txns) == LISTING_ITEMS_AT,
		 "listing results share one layout");
TL_STATIC_ASSERT(offsetof(struct tl_admin_group_listing, group_id) == 0 &&
			 offsetof(struct tl_admin_txn_listing, transactional_id) == 0,
		 "listing items start with their id");

/* Orders listing items by the id each starts with. */
static int listing_id_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds the @count items at @items (@stride bytes apart) of one broker's answer to the
 * listing call->arg, each copied by @add into a new listing item (false: out of memory),
 * after the answer's top-level error @code: TL_OK, or @code
 * with the message "<API> at broker <node>: <text>". */
static tl_err listing_fill(struct tl_admin *admin, const struct admin_call *call, int16_t code,
			   const void *items, int32_t count, size_t stride,
			   bool (*add)(struct tl_arena *arena, void *out, const void *item))
{
	tl_err err = (tl_err)code;
	if (err != TL_OK)
		return admin_fail(admin, err, "%s at broker %d: %s",
				  tl_client_rpc_find(admin_apis[call->api].api_key)->name,
				  call->node, tl_err_message(err));
	struct broker_listing *list = call->arg;
	for (int32_t i = 0; i < count; i++) {
		void *out = listing_add(list);
		if (!out || !add(list->arena, out, (const char *)items + (size_t)i * stride))
			return TL_ERR_NOMEM;
	}
	return TL_OK;
}

/* Asks every broker in turn (Metadata names them) with @req, @kind's request, into a
 * listing kept in a new result, sorted by id; on success the pointer at @out (see
 * result_publish()) gets the result's public part. */
static tl_err admin_list_brokers(struct tl_admin *admin, int timeout_ms,
				 const struct listing_kind *kind, const void *req, void *out)
{
	int64_t deadline = admin_deadline(timeout_ms);
	struct admin_result *result = result_create();
	if (!result)
		return TL_ERR_NOMEM;
	struct broker_listing list = {&result->arena, NULL, kind->size, 0, 0, 0};
	int32_t *nodes = NULL, node_count = 0;
	tl_err err = admin_all_brokers(admin, deadline, &nodes, &node_count);
	for (int32_t i = 0; err == TL_OK && i < node_count; i++) {
		list.from = list.count;
		struct admin_call call = {kind->api, req, NULL, nodes[i], kind->map, &list};
		err = admin_call(admin, &call, deadline);
		if (err == TL_OK && kind->then)
			err = kind->then(admin, nodes[i], deadline, &list);
	}
	free(nodes);
	if (err != TL_OK) {
		result_destroy(&result->pub);
		return err;
	}
	if (list.count > 0)
		qsort(list.items, (size_t)list.count, kind->size, listing_id_cmp);
	memcpy(&result->pub, &list.count, sizeof(list.count));
	memcpy((char *)&result->pub + LISTING_ITEMS_AT, &list.items, sizeof(list.items));
	result_publish(result, out);
	return TL_OK;
}

/* ---- consumer groups ---- */

/* The @index-th group of @list. */
static struct tl_admin_group_listing *group_listing(const struct broker_listing *list,
						    int32_t index)
{
	TL_ASSERT(index >= 0 && index < list->count);
	return (struct tl_admin_group_listing *)list->items + index;
}

static bool group_list_add(struct tl_arena *arena, void *out, const void *item)
{
	const struct tl_list_groups_response_listed_group *in = item;
	struct tl_admin_group_listing *g = out;
	g->group_id = arena_strdup(arena, in->group_id);
	g->protocol_type = arena_strdup(arena, in->protocol_type);
	g->state = "";
	return g->group_id && g->protocol_type;
}

static tl_err group_states_map(struct tl_admin *admin, const struct admin_call *call,
			       const void *response)
{
	const struct tl_describe_groups_response *resp = response;
	struct broker_listing *list = call->arg;
	TL_UNUSED(admin);
	for (int32_t g = 0; g < resp->groups_count; g++) {
		for (int32_t i = list->from; i < list->count; i++) {
			struct tl_admin_group_listing *item = group_listing(list, i);
			if (!tl_str_eq_c(resp->groups[g].group_id, item->group_id))
				continue;
			const char *state = arena_strdup(list->arena, resp->groups[g].group_state);
			if (!state)
				return TL_ERR_NOMEM;
			item->state = state;
		}
	}
	return TL_OK;
}

/* Fills in the states of @list's entries [from, count) with one DescribeGroups to @node. */
static tl_err group_list_states(struct tl_admin *admin, int32_t node, int64_t deadline_ns,
				struct broker_listing *list)
{
	int32_t n = list->count - list->from;
	if (n <= 0)
		return TL_OK;
	struct tl_str *names = calloc((size_t)n, sizeof(*names));
	if (!names)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < n; i++)
		names[i] = tl_str_of(group_listing(list, list->from + i)->group_id);
	struct tl_describe_groups_request req;
	tl_describe_groups_request_defaults(&req);
	req.groups_count = n;
	req.groups = names;
	struct admin_call call = {API_DESCRIBE_GROUPS_AT, &req, NULL, node, group_states_map, list};
	tl_err err = admin_call(admin, &call, deadline_ns);
	free(names);
	return err;
}

static tl_err list_groups_map(struct tl_admin *admin, const struct admin_call *call,
			      const void *response)
{
	const struct tl_list_groups_response *resp = response;
	return listing_fill(admin, call, resp->error_code, resp->groups, resp->groups_count,
			    sizeof(resp->groups[0]), group_list_add);
}

/* ListGroups, then DescribeGroups at the same broker for the states. */
TL_EXPORT tl_err tl_admin_list_groups(struct tl_admin *admin, struct tl_admin_groups **out,
				      int timeout_ms)
{
	static const struct listing_kind groups = {API_LIST_GROUPS, list_groups_map,
						   group_list_states,
						   sizeof(struct tl_admin_group_listing)};
	struct tl_list_groups_request req;
	tl_list_groups_request_defaults(&req);
	req.states_filter_count = 0;
	req.types_filter_count = 0;
	return admin_list_brokers(admin, timeout_ms, &groups, &req, out);
}

/* Decodes a ConsumerProtocolAssignment (version, [topic, [partition]], user data) into
 * @member. False when malformed (the member then shows no assignment). */
static bool assignment_decode(struct tl_arena *arena, struct tl_bytes bytes,
			      struct tl_admin_group_member *member)
{
	if (bytes.len <= 0)
		return true;
	struct tl_cursor c;
	tl_cursor_init(&c, bytes.ptr, (size_t)bytes.len);
	(void)tl_cursor_i16(&c);
	int32_t topics = tl_cursor_array_len(&c, false, false, 100000);
	struct tl_cursor scan = c;
	int32_t total = 0;
	for (int32_t t = 0; t < topics && !scan.failed; t++) {
		(void)tl_cursor_string(&scan, false, false);
		int32_t n = tl_cursor_array_len(&scan, false, false, 1000000);
		tl_cursor_skip(&scan, (size_t)TL_MAX(n, 0) * 4);
		total += TL_MAX(n, 0);
	}
	if (c.failed || scan.failed)
		return false;
	struct tl_admin_topic_partition *tps =
		tl_arena_array(arena, (size_t)total + 1, sizeof(*tps));
	if (!tps)
		return false;
	int32_t k = 0;
	for (int32_t t = 0; t < topics; t++) {
		const char *name = arena_strdup(arena, tl_cursor_string(&c, false, false));
		int32_t n = tl_cursor_array_len(&c, false, false, 1000000);
		for (int32_t p = 0; p < n && k < total; p++) {
			tps[k].topic = name;
			tps[k].partition = tl_cursor_i32(&c);
			k++;
		}
		if (!name)
			return false;
	}
	member->assignment = tps;
	member->assignment_count = k;
	return !c.failed;
}

static bool group_copy(struct tl_arena *arena,
		       const struct tl_describe_groups_response_described_group *g,
		       struct tl_admin_group_description *out)
{
	out->group_id = arena_strdup(arena, g->group_id);
	out->err = (tl_err)g->error_code;
	out->state = arena_strdup(arena, g->group_state);
	out->protocol_type = arena_strdup(arena, g->protocol_type);
	out->protocol = arena_strdup(arena, g->protocol_data);
	int32_t n = TL_MAX(g->members_count, 0);
	struct tl_admin_group_member *members =
		tl_arena_array(arena, (size_t)n + 1, sizeof(*members));
	if (!out->group_id || !out->state || !out->protocol_type || !out->protocol || !members)
		return false;
	bool consumer = tl_str_eq_c(g->protocol_type, "consumer");
	for (int32_t i = 0; i < n; i++) {
		const struct tl_describe_groups_response_described_group_member *m = &g->members[i];
		members[i].member_id = arena_strdup(arena, m->member_id);
		members[i].group_instance_id = arena_strdup_null(arena, m->group_instance_id);
		members[i].client_id = arena_strdup(arena, m->client_id);
		members[i].client_host = arena_strdup(arena, m->client_host);
		if (!members[i].member_id || !members[i].client_id || !members[i].client_host)
			return false;
		if (consumer && !assignment_decode(arena, m->member_assignment, &members[i]))
			members[i].assignment_count = 0;
	}
	out->member_count = n;
	out->members = members;
	return true;
}

ADMIN_DESCRIBE_MAPPER(describe_group_map, tl_describe_groups_response, groups_count, groups,
		      group_copy, group)

TL_EXPORT tl_err tl_admin_describe_group(struct tl_admin *admin, const char *group,
					 struct tl_admin_group_description **out, int timeout_ms)
{
	if (!group || !group[0])
		return admin_fail(admin, TL_ERR_INVALID, "describe_group: needs a group id");
	struct tl_str name = tl_str_of(group);
	struct tl_describe_groups_request req;
	tl_describe_groups_request_defaults(&req);
	req.groups_count = 1;
	req.groups = &name;
	struct admin_call call = {API_DESCRIBE_GROUPS, &req, group, -1, describe_group_map, NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}

static int committed_cmp(const void *a, const void *b)
{
	const struct tl_admin_committed_offset *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	if (c != 0)
		return c;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static bool offsets_copy(struct tl_arena *arena, const struct tl_offset_fetch_response *resp,
			 struct tl_admin_group_offsets *out)
{
	int32_t total = 0;
	for (int32_t t = 0; t < resp->topics_count; t++)
		total += TL_MAX(resp->topics[t].partitions_count, 0);
	struct tl_admin_committed_offset *offsets =
		tl_arena_array(arena, (size_t)total + 1, sizeof(*offsets));
	if (!offsets)
		return false;
	int32_t k = 0;
	for (int32_t t = 0; t < resp->topics_count; t++) {
		const char *name = arena_strdup(arena, resp->topics[t].name);
		if (!name)
			return false;
		for (int32_t p = 0; p < resp->topics[t].partitions_count; p++) {
			const struct tl_offset_fetch_response_offset_fetch_response_partition *r =
				&resp->topics[t].partitions[p];
			offsets[k].topic = name;
			offsets[k].partition = r->partition_index;
			offsets[k].offset = r->committed_offset;
			offsets[k].metadata = arena_strdup(arena, r->metadata);
			offsets[k].err = (tl_err)r->error_code;
			if (!offsets[k].metadata)
				return false;
			k++;
		}
	}
	qsort(offsets, (size_t)k, sizeof(*offsets), committed_cmp);
	out->count = k;
	out->offsets = offsets;
	return true;
}

static tl_err group_offsets_map(struct tl_admin *admin, const struct admin_call *call,
				const void *response)
{
	const struct tl_offset_fetch_response *resp = response;
	struct admin_result *result = call->arg;
	if (resp->error_code != 0)
		return admin_fail(admin, (tl_err)resp->error_code, "OffsetFetch for group %s: %s",
				  call->key, tl_err_message((tl_err)resp->error_code));
	if (!offsets_copy(&result->arena, resp, &result->pub.offsets))
		return TL_ERR_NOMEM;
	return TL_OK;
}

TL_EXPORT tl_err tl_admin_list_group_offsets(struct tl_admin *admin, const char *group,
					     struct tl_admin_group_offsets **out, int timeout_ms)
{
	if (!group || !group[0])
		return admin_fail(admin, TL_ERR_INVALID, "list_group_offsets: needs a group id");
	struct tl_offset_fetch_request req;
	tl_offset_fetch_request_defaults(&req);
	req.group_id = tl_str_of(group);
	req.topics_count = -1; /* every topic */
	struct admin_call call = {API_OFFSET_FETCH, &req, group, -1, group_offsets_map, NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}

/* Builds the topics of an OffsetCommit from @offsets (runs of one topic are merged when
 * adjacent). */
static tl_err commit_request_build(const struct tl_admin_offset_commit *offsets, int32_t count,
				   struct tl_offset_commit_request *req)
{
	struct tl_offset_commit_request_offset_commit_request_topic *ts =
		calloc((size_t)count, sizeof(*ts));
	struct tl_offset_commit_request_offset_commit_request_partition *ps =
		calloc((size_t)count, sizeof(*ps));
	if (!both_or_free(ts, ps))
		return TL_ERR_NOMEM;
	req->topics = ts;
	req->topics_count = 0;
	for (int32_t i = 0; i < count; i++) {
		if (i == 0 || strcmp(offsets[i].topic, offsets[i - 1].topic) != 0) {
			tl_offset_commit_request_offset_commit_request_topic_defaults(
				&ts[req->topics_count]);
			ts[req->topics_count].name = tl_str_of(offsets[i].topic);
			ts[req->topics_count].partitions = &ps[i];
			ts[req->topics_count].partitions_count = 0;
			req->topics_count++;
		}
		tl_offset_commit_request_offset_commit_request_partition_defaults(&ps[i]);
		ps[i].partition_index = offsets[i].partition;
		ps[i].committed_offset = offsets[i].offset;
		ps[i].committed_leader_epoch = -1;
		ps[i].commit_timestamp = -1;
		ps[i].committed_metadata = tl_str_of("");
		ts[req->topics_count - 1].partitions_count++;
	}
	return TL_OK;
}

/* The entries one OffsetCommit is for. */
struct commit_arg {
	struct tl_admin_offset_commit *offsets;
	int32_t count;
};

static tl_err commit_offsets_map(struct tl_admin *admin, const struct admin_call *call,
				 const void *response)
{
	const struct tl_offset_commit_response *resp = response;
	struct commit_arg *arg = call->arg;
	for (int32_t t = 0; t < resp->topics_count; t++) {
		for (int32_t p = 0; p < resp->topics[t].partitions_count; p++) {
			const struct tl_offset_commit_response_offset_commit_response_partition *r =
				&resp->topics[t].partitions[p];
			for (int32_t i = 0; i < arg->count; i++)
				if (arg->offsets[i].partition == r->partition_index &&
				    tl_str_eq_c(resp->topics[t].name, arg->offsets[i].topic))
					arg->offsets[i].err = (tl_err)r->error_code;
		}
	}
	tl_err first = TL_OK;
	for (int32_t i = 0; i < arg->count && first == TL_OK; i++)
		first = arg->offsets[i].err;
	if (first == TL_OK)
		return TL_OK;
	return admin_fail(admin, first, "OffsetCommit for group %s: %s%s", call->key,
			  tl_err_message(first),
			  first == TL_ERR_UNKNOWN_MEMBER_ID || first == TL_ERR_ILLEGAL_GENERATION ||
					  first == TL_ERR_REBALANCE_IN_PROGRESS
				  ? " (the group has active members; stop them first)"
				  : "");
}

TL_EXPORT tl_err tl_admin_commit_group_offsets(struct tl_admin *admin, const char *group,
					       struct tl_admin_offset_commit *offsets,
					       int32_t count, int timeout_ms)
{
	if (!group || !group[0] || !offsets || count <= 0)
		return admin_fail(admin, TL_ERR_INVALID,
				  "commit_group_offsets: needs a group id and offsets");
	for (int32_t i = 0; i < count; i++) {
		if (!offsets[i].topic || !offsets[i].topic[0] || offsets[i].offset < 0)
			return admin_fail(
				admin, TL_ERR_INVALID,
				"commit_group_offsets: entry %d needs a topic and an offset >= 0",
				i);
		offsets[i].err = TL_ERR_UNKNOWN_SERVER_ERROR;
	}
	struct tl_offset_commit_request req;
	tl_offset_commit_request_defaults(&req);
	req.group_id = tl_str_of(group);
	req.generation_id_or_member_epoch = -1;
	req.member_id = tl_str_of("");
	req.group_instance_id = tl_str_of(NULL);
	req.retention_time_ms = -1;
	tl_err err = commit_request_build(offsets, count, &req);
	if (err != TL_OK)
		return err;
	struct commit_arg arg = {offsets, count};
	struct admin_call call = {API_OFFSET_COMMIT, &req, group, -1, commit_offsets_map, &arg};
	err = admin_call(admin, &call, admin_deadline(timeout_ms));
	free(req.topics[0].partitions);
	free(req.topics);
	return err;
}

static tl_err delete_group_map(struct tl_admin *admin, const struct admin_call *call,
			       const void *response)
{
	const struct tl_delete_groups_response *resp = response;
	if (resp->results_count != 1)
		return admin_decode_fail(admin, "DeleteGroups");
	tl_err err = (tl_err)resp->results[0].error_code;
	if (err == TL_ERR_NON_EMPTY_GROUP)
		admin_fail(admin, err, "group %s still has members; stop them first", call->key);
	else if (err == TL_ERR_GROUP_ID_NOT_FOUND)
		admin_fail(admin, err, "group %s does not exist", call->key);
	else if (err != TL_OK)
		admin_fail(admin, err, "delete group %s: %s", call->key, tl_err_message(err));
	return err;
}

TL_EXPORT tl_err tl_admin_delete_group(struct tl_admin *admin, const char *group, int timeout_ms)
{
	if (!group || !group[0])
		return admin_fail(admin, TL_ERR_INVALID, "delete_group: needs a group id");
	struct tl_str name = tl_str_of(group);
	struct tl_delete_groups_request req;
	tl_delete_groups_request_defaults(&req);
	req.groups_names_count = 1;
	req.groups_names = &name;
	struct admin_call call = {API_DELETE_GROUPS, &req, group, -1, delete_group_map, NULL};
	return admin_call(admin, &call, admin_deadline(timeout_ms));
}

/* ---- transactions ---- */

static bool txn_list_add(struct tl_arena *arena, void *item_out, const void *item)
{
	const struct tl_list_transactions_response_transaction_state *t = item;
	struct tl_admin_txn_listing *out = item_out;
	out->transactional_id = arena_strdup(arena, t->transactional_id);
	out->producer_id = t->producer_id;
	out->state = arena_strdup(arena, t->transaction_state);
	return out->transactional_id && out->state;
}

static tl_err list_transactions_map(struct tl_admin *admin, const struct admin_call *call,
				    const void *response)
{
	const struct tl_list_transactions_response *resp = response;
	return listing_fill(admin, call, resp->error_code, resp->transaction_states,
			    resp->transaction_states_count, sizeof(resp->transaction_states[0]),
			    txn_list_add);
}

TL_EXPORT tl_err tl_admin_list_transactions(struct tl_admin *admin, struct tl_admin_txns **out,
					    int timeout_ms)
{
	static const struct listing_kind txns = {API_LIST_TRANSACTIONS, list_transactions_map, NULL,
						 sizeof(struct tl_admin_txn_listing)};
	struct tl_list_transactions_request req;
	tl_list_transactions_request_defaults(&req);
	req.state_filters_count = 0;
	req.producer_id_filters_count = 0;
	req.duration_filter = -1;
	return admin_list_brokers(admin, timeout_ms, &txns, &req, out);
}

static bool txn_copy(struct tl_arena *arena,
		     const struct tl_describe_transactions_response_transaction_state *t,
		     struct tl_admin_txn_description *out)
{
	out->transactional_id = arena_strdup(arena, t->transactional_id);
	out->err = (tl_err)t->error_code;
	out->state = arena_strdup(arena, t->transaction_state);
	out->timeout_ms = t->transaction_timeout_ms;
	out->start_time_ms = t->transaction_start_time_ms;
	out->producer_id = t->producer_id;
	out->producer_epoch = t->producer_epoch;
	int32_t total = 0;
	for (int32_t i = 0; i < t->topics_count; i++)
		total += TL_MAX(t->topics[i].partitions_count, 0);
	struct tl_admin_topic_partition *tps =
		tl_arena_array(arena, (size_t)total + 1, sizeof(*tps));
	if (!out->transactional_id || !out->state || !tps)
		return false;
	int32_t k = 0;
	for (int32_t i = 0; i < t->topics_count; i++) {
		const char *name = arena_strdup(arena, t->topics[i].topic);
		if (!name)
			return false;
		for (int32_t p = 0; p < t->topics[i].partitions_count; p++) {
			tps[k].topic = name;
			tps[k].partition = t->topics[i].partitions[p];
			k++;
		}
	}
	out->partition_count = k;
	out->partitions = tps;
	return true;
}

ADMIN_DESCRIBE_MAPPER(describe_transaction_map, tl_describe_transactions_response,
		      transaction_states_count, transaction_states, txn_copy, txn)

TL_EXPORT tl_err tl_admin_describe_transaction(struct tl_admin *admin, const char *transactional_id,
					       struct tl_admin_txn_description **out,
					       int timeout_ms)
{
	if (!transactional_id || !transactional_id[0])
		return admin_fail(admin, TL_ERR_INVALID,
				  "describe_transaction: needs a transactional id");
	struct tl_str id = tl_str_of(transactional_id);
	struct tl_describe_transactions_request req;
	tl_describe_transactions_request_defaults(&req);
	req.transactional_ids_count = 1;
	req.transactional_ids = &id;
	struct admin_call call = {API_DESCRIBE_TRANSACTIONS, &req, transactional_id, -1,
				  describe_transaction_map,  NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}

/* Copies the DescribeProducers answer @r into the entry @out it answers. */
static bool producers_apply(const struct leader_arg *arg, struct tl_admin_partition_producers *out,
			    const struct tl_describe_producers_response_partition_response *r)
{
	out->err = (tl_err)r->error_code;
	int32_t count = TL_MAX(r->active_producers_count, 0);
	struct tl_admin_producer_state *ps =
		tl_arena_array(arg->arena, (size_t)count + 1, sizeof(*ps));
	if (!ps)
		return false;
	for (int32_t i = 0; i < count; i++) {
		const struct tl_describe_producers_response_producer_state *s =
			&r->active_producers[i];
		ps[i].producer_id = s->producer_id;
		ps[i].producer_epoch = s->producer_epoch;
		ps[i].last_sequence = s->last_sequence;
		ps[i].last_timestamp = s->last_timestamp;
		ps[i].coordinator_epoch = s->coordinator_epoch;
		ps[i].txn_start_offset = s->current_txn_start_offset;
	}
	out->count = count;
	out->producers = ps;
	return true;
}

ADMIN_LEADER_MAPPER(describe_producers_map, tl_describe_producers_response,
		    tl_admin_partition_producers, producers_apply)

/* One DescribeProducers to @node for the partitions @idx[0..n) (sorted by topic). */
static tl_err describe_producers_at(struct tl_admin *admin, int32_t node, int32_t *idx, int32_t n,
				    int64_t deadline_ns, void *varg)
{
	const struct leader_arg *all = varg;
	const struct tl_admin_partition_producers *parts = all->entries;
	struct tl_describe_producers_request_topic_request *ts = calloc((size_t)n, sizeof(*ts));
	int32_t *ps = calloc((size_t)n, sizeof(*ps));
	if (!both_or_free(ts, ps))
		return TL_ERR_NOMEM;
	struct tl_describe_producers_request req;
	tl_describe_producers_request_defaults(&req);
	req.topics = ts;
	req.topics_count = 0;
	for (int32_t k = 0; k < n; k++) {
		const struct tl_admin_partition_producers *p = &parts[idx[k]];
		if (k == 0 || strcmp(p->topic, parts[idx[k - 1]].topic) != 0) {
			tl_describe_producers_request_topic_request_defaults(&ts[req.topics_count]);
			ts[req.topics_count].name = tl_str_of(p->topic);
			ts[req.topics_count].partition_indexes = &ps[k];
			ts[req.topics_count].partition_indexes_count = 0;
			req.topics_count++;
		}
		ps[k] = p->partition;
		ts[req.topics_count - 1].partition_indexes_count++;
	}
	struct leader_arg arg = {all->entries, idx, n, 0, all->arena};
	struct admin_call call = {API_DESCRIBE_PRODUCERS, &req, NULL, node,
				  describe_producers_map, &arg};
	tl_err err = admin_call(admin, &call, deadline_ns);
	free(ts);
	free(ps);
	return err;
}

TL_EXPORT tl_err tl_admin_describe_producers(struct tl_admin *admin,
					     const struct tl_admin_topic_partition *partitions,
					     int32_t count, struct tl_admin_producers **out,
					     int timeout_ms)
{
	if (!partitions || count <= 0)
		return admin_fail(admin, TL_ERR_INVALID, "describe_producers: needs partitions");
	for (int32_t i = 0; i < count; i++)
		if (!partitions[i].topic || !partitions[i].topic[0])
			return admin_fail(admin, TL_ERR_INVALID,
					  "describe_producers: entry %d has no topic", i);
	int64_t deadline = admin_deadline(timeout_ms);
	struct admin_result *result = result_create();
	if (!result)
		return TL_ERR_NOMEM;
	struct tl_admin_partition_producers *parts =
		tl_arena_array(&result->arena, (size_t)count, sizeof(*parts));
	tl_err err = parts ? TL_OK : TL_ERR_NOMEM;
	for (int32_t i = 0; err == TL_OK && i < count; i++) {
		parts[i].topic = arena_strdup(&result->arena, tl_str_of(partitions[i].topic));
		parts[i].partition = partitions[i].partition;
		err = parts[i].topic ? TL_OK : TL_ERR_NOMEM;
	}
	struct leader_arg arg = {parts, NULL, count, 0, &result->arena};
	if (err == TL_OK)
		err = admin_to_leaders(admin, parts, count, sizeof(*parts),
				       offsetof(struct tl_admin_partition_producers, err), deadline,
				       describe_producers_at, &arg);
	if (err != TL_OK) {
		result_destroy(&result->pub);
		return err;
	}
	result->pub.producers = (struct tl_admin_producers){count, parts};
	result_publish(result, out);
	return TL_OK;
}

/* The partition a WriteTxnMarkers request is for, for its messages. */
struct abort_arg {
	const char *topic;
	int32_t partition;
};

static tl_err abort_transaction_map(struct tl_admin *admin, const struct admin_call *call,
				    const void *response)
{
	const struct tl_write_txn_markers_response *resp = response;
	const struct abort_arg *arg = call->arg;
	if (resp->markers_count != 1 || resp->markers[0].topics_count != 1 ||
	    resp->markers[0].topics[0].partitions_count != 1)
		return admin_decode_fail(admin, "WriteTxnMarkers");
	tl_err err = (tl_err)resp->markers[0].topics[0].partitions[0].error_code;
	if (err != TL_OK)
		admin_fail(admin, err, "WriteTxnMarkers %s [%d]: %s", arg->topic, arg->partition,
			   tl_err_message(err));
	return err;
}

TL_EXPORT tl_err tl_admin_abort_transaction(struct tl_admin *admin, const char *topic,
					    int32_t partition, int64_t producer_id,
					    int16_t producer_epoch, int32_t coordinator_epoch,
					    int timeout_ms)
{
	if (!topic || !topic[0] || partition < 0 || producer_id < 0)
		return admin_fail(
			admin, TL_ERR_INVALID,
			"abort_transaction: needs a topic, a partition and a producer id");
	int64_t deadline = admin_deadline(timeout_ms);
	int32_t leader;
	tl_err perr;
	tl_err err = admin_leaders(admin, &topic, &partition, 1, deadline, &leader, &perr);
	if (err != TL_OK)
		return err;
	if (perr != TL_OK)
		return admin_fail(admin, perr, "%s [%d]: %s", topic, partition,
				  tl_err_message(perr));
	struct tl_write_txn_markers_request_writable_txn_marker_topic t;
	tl_write_txn_markers_request_writable_txn_marker_topic_defaults(&t);
	t.name = tl_str_of(topic);
	t.partition_indexes_count = 1;
	t.partition_indexes = &partition;
	struct tl_write_txn_markers_request_writable_txn_marker marker;
	tl_write_txn_markers_request_writable_txn_marker_defaults(&marker);
	marker.producer_id = producer_id;
	marker.producer_epoch = producer_epoch;
	marker.transaction_result = false;
	marker.topics_count = 1;
	marker.topics = &t;
	marker.coordinator_epoch = coordinator_epoch;
	struct tl_write_txn_markers_request req;
	tl_write_txn_markers_request_defaults(&req);
	req.markers_count = 1;
	req.markers = &marker;
	struct abort_arg arg = {topic, partition};
	struct admin_call call = {API_WRITE_TXN_MARKERS, &req, NULL, leader,
				  abort_transaction_map, &arg};
	return admin_call(admin, &call, deadline);
}

static tl_err fence_transaction_map(struct tl_admin *admin, const struct admin_call *call,
				    const void *response)
{
	const struct tl_init_producer_id_response *resp = response;
	struct admin_entry entry = {true, (tl_err)resp->error_code, {NULL, -1}};
	return admin_entry_map(admin, call, entry, NULL);
}

TL_EXPORT tl_err tl_admin_fence_transaction(struct tl_admin *admin, const char *transactional_id,
					    int timeout_ms)
{
	if (!transactional_id || !transactional_id[0])
		return admin_fail(admin, TL_ERR_INVALID,
				  "fence_transaction: needs a transactional id");
	struct tl_init_producer_id_request req;
	tl_init_producer_id_request_defaults(&req);
	req.transactional_id = tl_str_of(transactional_id);
	req.transaction_timeout_ms = 60000;
	req.producer_id = -1;
	req.producer_epoch = -1;
	struct admin_call call = {API_INIT_PRODUCER_ID,  &req, transactional_id, -1,
				  fence_transaction_map, NULL};
	return admin_call(admin, &call, admin_deadline(timeout_ms));
}

/* ---- topic configs ---- */

ADMIN_ONE_ENTRY_MAPPER(alter_configs_map, tl_incremental_alter_configs_response, responses_count,
		       responses)

TL_EXPORT tl_err tl_admin_alter_topic_configs(struct tl_admin *admin, const char *topic,
					      const struct tl_admin_config_change *changes,
					      int32_t count, int timeout_ms)
{
	if (!topic || !topic[0] || !changes || count <= 0 || count > 1000)
		return admin_fail(admin, TL_ERR_INVALID,
				  "alter_topic_configs: needs a topic name and 1 to 1000 changes");
	struct tl_incremental_alter_configs_request_alterable_config *configs =
		calloc((size_t)count, sizeof(*configs));
	if (!configs)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count; i++) {
		tl_incremental_alter_configs_request_alterable_config_defaults(&configs[i]);
		if (!changes[i].name || !changes[i].name[0] ||
		    (changes[i].op == TL_ADMIN_CONFIG_SET && !changes[i].value)) {
			free(configs);
			return admin_fail(admin, TL_ERR_INVALID,
					  "alter_topic_configs: change %d lacks a name or value",
					  i);
		}
		configs[i].name = tl_str_of(changes[i].name);
		configs[i].config_operation = (int8_t)changes[i].op;
		configs[i].value =
			changes[i].value ? tl_str_of(changes[i].value) : (struct tl_str){NULL, -1};
	}
	struct tl_incremental_alter_configs_request_alter_configs_resource resource;
	tl_incremental_alter_configs_request_alter_configs_resource_defaults(&resource);
	resource.resource_type = 2; /* TOPIC */
	resource.resource_name = tl_str_of(topic);
	resource.configs = configs;
	resource.configs_count = count;
	struct tl_incremental_alter_configs_request req;
	tl_incremental_alter_configs_request_defaults(&req);
	req.resources = &resource;
	req.resources_count = 1;
	struct admin_call call = {
		API_INCREMENTAL_ALTER_CONFIGS, &req, topic, -1, alter_configs_map, NULL};
	tl_err err = admin_call(admin, &call, admin_deadline(timeout_ms));
	free(configs);
	return err;
}

/* ---- delete records ---- */

static tl_err delete_records_map(struct tl_admin *admin, const struct admin_call *call,
				 const void *response)
{
	const struct tl_delete_records_response *resp = response;
	const struct tl_delete_records_response_delete_records_partition_result *p =
		resp->topics_count == 1 && resp->topics[0].partitions_count == 1
			? &resp->topics[0].partitions[0]
			: NULL;
	struct admin_entry entry = {p != NULL, p ? (tl_err)p->error_code : TL_OK, {NULL, -1}};
	tl_err err = admin_entry_map(admin, call, entry, NULL);
	if (err == TL_OK)
		*(int64_t *)call->arg = p->low_watermark;
	return err;
}

TL_EXPORT tl_err tl_admin_delete_records(struct tl_admin *admin, const char *topic,
					 int32_t partition, int64_t offset,
					 int64_t *low_watermark_out, int timeout_ms)
{
	if (!topic || !topic[0] || partition < 0 || offset < -1 || !low_watermark_out)
		return admin_fail(admin, TL_ERR_INVALID,
				  "delete_records: needs a topic, a partition and an offset");
	int64_t deadline = admin_deadline(timeout_ms);
	int32_t leader;
	tl_err part_err;
	tl_err err = admin_leaders(admin, &topic, &partition, 1, deadline, &leader, &part_err);
	if (err != TL_OK)
		return err;
	if (part_err != TL_OK)
		return admin_fail(admin, part_err, "delete records of %s partition %d: %s", topic,
				  partition, tl_err_message(part_err));
	struct tl_delete_records_request_delete_records_partition p;
	tl_delete_records_request_delete_records_partition_defaults(&p);
	p.partition_index = partition;
	p.offset = offset;
	struct tl_delete_records_request_delete_records_topic t;
	tl_delete_records_request_delete_records_topic_defaults(&t);
	t.name = tl_str_of(topic);
	t.partitions = &p;
	t.partitions_count = 1;
	struct tl_delete_records_request req;
	tl_delete_records_request_defaults(&req);
	req.topics = &t;
	req.topics_count = 1;
	req.timeout_ms = timeout_ms;
	struct admin_call call = {API_DELETE_RECORDS, &req, topic, leader, delete_records_map,
				  low_watermark_out};
	return admin_call(admin, &call, deadline);
}

/* ---- log directories ---- */

static tl_err log_dirs_map(struct tl_admin *admin, const struct admin_call *call,
			   const void *response)
{
	const struct tl_describe_log_dirs_response *resp = response;
	struct admin_result *result = call->arg;
	struct tl_admin_log_dirs *out = &result->pub.log_dirs;
	TL_UNUSED(admin);
	int32_t count = 0;
	for (int32_t d = 0; d < resp->results_count; d++)
		for (int32_t t = 0; t < resp->results[d].topics_count; t++)
			count += TL_MAX(resp->results[d].topics[t].partitions_count, 0);
	struct tl_admin_log_dir_entry *entries = result_array(result, count, sizeof(*entries));
	if (!entries)
		return TL_ERR_NOMEM;
	int32_t n = 0;
	for (int32_t d = 0; d < resp->results_count; d++) {
		const struct tl_describe_log_dirs_response_describe_log_dirs_result *dir =
			&resp->results[d];
		const char *dir_name = arena_strdup(&result->arena, dir->log_dir);
		for (int32_t t = 0; t < dir->topics_count; t++) {
			const char *topic = arena_strdup(&result->arena, dir->topics[t].name);
			for (int32_t i = 0; i < dir->topics[t].partitions_count; i++) {
				struct tl_admin_log_dir_entry *e = &entries[n++];
				e->node_id = call->node;
				e->dir = dir_name;
				e->dir_err = (tl_err)dir->error_code;
				e->topic = topic;
				e->partition = dir->topics[t].partitions[i].partition_index;
				e->size_bytes = dir->topics[t].partitions[i].partition_size;
				e->total_bytes = dir->total_bytes;
				e->usable_bytes = dir->usable_bytes;
			}
		}
	}
	out->entries = entries;
	out->count = n;
	return TL_OK;
}

TL_EXPORT tl_err tl_admin_describe_log_dirs(struct tl_admin *admin, int32_t node_id,
					    struct tl_admin_log_dirs **out, int timeout_ms)
{
	if (node_id < 0 || !out)
		return admin_fail(admin, TL_ERR_INVALID, "describe_log_dirs: needs a node id");
	struct tl_describe_log_dirs_request req;
	tl_describe_log_dirs_request_defaults(&req);
	req.topics_count = -1; /* every partition */
	struct admin_call call = {API_DESCRIBE_LOG_DIRS, &req, NULL, node_id, log_dirs_map, NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}

/* ---- client quotas (KIP-546) ---- */

#define QUOTA_TYPE_USER   "user"
#define QUOTA_TYPE_CLIENT "client-id"

static bool quota_entity_valid(const struct tl_admin_quota_entity *e)
{
	bool user = e->user_default || (e->user && e->user[0]);
	bool client = e->client_id_default || (e->client_id && e->client_id[0]);
	return (user || client) && !(e->user_default && e->user) &&
	       !(e->client_id_default && e->client_id);
}

static tl_err alter_quotas_map(struct tl_admin *admin, const struct admin_call *call,
			       const void *response)
{
	const struct tl_alter_client_quotas_response *resp = response;
	struct admin_entry entry = ADMIN_ONE_ENTRY(resp->entries_count, resp->entries);
	/* The broker's words say more than the code's generic text: the code's name then. */
	return admin_entry_map(admin, call, entry,
			       entry.message.len > 0 ? tl_err_name(entry.err) : NULL);
}

TL_EXPORT tl_err tl_admin_alter_client_quotas(struct tl_admin *admin,
					      const struct tl_admin_quota_entity *entity,
					      const struct tl_admin_quota_value *values,
					      int32_t count, int timeout_ms)
{
	if (!entity || !quota_entity_valid(entity) || !values || count <= 0 || count > 64)
		return admin_fail(admin, TL_ERR_INVALID,
				  "alter_client_quotas: needs a user and/or client id (named or "
				  "default) and 1 to 64 values");
	struct tl_alter_client_quotas_request_entity_data parts[2];
	int32_t part_count = 0;
	if (entity->user || entity->user_default) {
		tl_alter_client_quotas_request_entity_data_defaults(&parts[part_count]);
		parts[part_count].entity_type = tl_str_of(QUOTA_TYPE_USER);
		parts[part_count++].entity_name =
			entity->user ? tl_str_of(entity->user) : (struct tl_str){NULL, -1};
	}
	if (entity->client_id || entity->client_id_default) {
		tl_alter_client_quotas_request_entity_data_defaults(&parts[part_count]);
		parts[part_count].entity_type = tl_str_of(QUOTA_TYPE_CLIENT);
		parts[part_count++].entity_name = entity->client_id ? tl_str_of(entity->client_id)
								    : (struct tl_str){NULL, -1};
	}
	struct tl_alter_client_quotas_request_op_data ops[64];
	for (int32_t i = 0; i < count; i++) {
		if (!values[i].key || !values[i].key[0])
			return admin_fail(admin, TL_ERR_INVALID,
					  "alter_client_quotas: value %d lacks a key", i);
		tl_alter_client_quotas_request_op_data_defaults(&ops[i]);
		ops[i].key = tl_str_of(values[i].key);
		ops[i].value = values[i].value;
		ops[i].remove = values[i].remove;
	}
	struct tl_alter_client_quotas_request_entry_data entry;
	tl_alter_client_quotas_request_entry_data_defaults(&entry);
	entry.entity = parts;
	entry.entity_count = part_count;
	entry.ops = ops;
	entry.ops_count = count;
	struct tl_alter_client_quotas_request req;
	tl_alter_client_quotas_request_defaults(&req);
	req.entries = &entry;
	req.entries_count = 1;
	struct admin_call call = {API_ALTER_CLIENT_QUOTAS, &req, NULL, -1, alter_quotas_map, NULL};
	return admin_call(admin, &call, admin_deadline(timeout_ms));
}

static tl_err describe_quotas_map(struct tl_admin *admin, const struct admin_call *call,
				  const void *response)
{
	const struct tl_describe_client_quotas_response *resp = response;
	struct admin_result *result = call->arg;
	struct tl_admin_quotas *out = &result->pub.quotas;
	struct admin_entry entry = {true, (tl_err)resp->error_code, resp->error_message};
	if (entry.err != TL_OK)
		return admin_entry_map(admin, call, entry, NULL);
	int32_t count = TL_MAX(resp->entries_count, 0);
	struct tl_admin_quota_entry *entries = result_array(result, count, sizeof(*entries));
	if (!entries)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count; i++) {
		const struct tl_describe_client_quotas_response_entry_data *in = &resp->entries[i];
		struct tl_admin_quota_entry *e = &entries[i];
		memset(e, 0, sizeof(*e));
		for (int32_t j = 0; j < in->entity_count; j++) {
			struct tl_str type = in->entity[j].entity_type;
			struct tl_str name = in->entity[j].entity_name;
			if (tl_str_eq_c(type, QUOTA_TYPE_USER)) {
				e->entity.user = arena_strdup_null(&result->arena, name);
				e->entity.user_default = name.len < 0;
			} else if (tl_str_eq_c(type, QUOTA_TYPE_CLIENT)) {
				e->entity.client_id = arena_strdup_null(&result->arena, name);
				e->entity.client_id_default = name.len < 0;
			}
		}
		struct tl_admin_quota_value *values =
			result_array(result, in->values_count, sizeof(*values));
		if (!values)
			return TL_ERR_NOMEM;
		for (int32_t j = 0; j < in->values_count; j++) {
			values[j].key = arena_strdup(&result->arena, in->values[j].key);
			values[j].value = in->values[j].value;
			values[j].remove = false;
		}
		e->values = values;
		e->value_count = TL_MAX(in->values_count, 0);
	}
	out->entries = entries;
	out->count = count;
	return TL_OK;
}

TL_EXPORT tl_err tl_admin_describe_client_quotas(struct tl_admin *admin,
						 struct tl_admin_quotas **out, int timeout_ms)
{
	if (!out)
		return admin_fail(admin, TL_ERR_INVALID, "describe_client_quotas: needs @out");
	struct tl_describe_client_quotas_request req;
	tl_describe_client_quotas_request_defaults(&req);
	req.components_count = 0; /* no filter, not strict: every entity */
	req.strict = false;
	struct admin_call call = {API_DESCRIBE_CLIENT_QUOTAS, &req, NULL, -1,
				  describe_quotas_map,        NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}

/* ---- freeing results ---- */

/* Defines the exported tl_admin_<name>_destroy(struct tl_admin_<name> *) of a result kept
 * in a struct admin_result: it frees the whole result. */
#define ADMIN_RESULT_DESTROY(name)                                                                 \
	TL_EXPORT void tl_admin_##name##_destroy(struct tl_admin_##name *name)                     \
	{                                                                                          \
		result_destroy(name);                                                              \
	}

ADMIN_RESULT_DESTROY(cluster)
ADMIN_RESULT_DESTROY(groups)
ADMIN_RESULT_DESTROY(group_description)
ADMIN_RESULT_DESTROY(group_offsets)
ADMIN_RESULT_DESTROY(txns)
ADMIN_RESULT_DESTROY(txn_description)
ADMIN_RESULT_DESTROY(producers)
ADMIN_RESULT_DESTROY(log_dirs)
ADMIN_RESULT_DESTROY(quotas)
ADMIN_RESULT_DESTROY(acls)
ADMIN_RESULT_DESTROY(scram_users)

/* ---- ACLs (issue #16) ---- */

static struct tl_str str_or_null(const char *s)
{
	return s ? tl_str_of(s) : (struct tl_str){NULL, -1};
}

/* Sets the filter fields of @dst from @filter (a const struct tl_admin_acl *): DescribeAcls'
 * request and each of DeleteAcls' filters name them alike. An expression. */
#define ACL_FILTER_SET(dst, filter)                                                                \
	((dst).resource_type_filter = (filter)->resource_type,                                     \
	 (dst).resource_name_filter = str_or_null((filter)->resource_name),                        \
	 (dst).pattern_type_filter = (filter)->pattern_type,                                       \
	 (dst).principal_filter = str_or_null((filter)->principal),                                \
	 (dst).host_filter = str_or_null((filter)->host), (dst).operation = (filter)->operation,   \
	 (dst).permission_type = (filter)->permission)

static tl_err acl_error(struct tl_admin *admin, const char *what, tl_err err, struct tl_str msg)
{
	if (msg.len > 0) /* the broker's words say more than the code's generic text */
		return admin_fail(admin, err, "%s: %s: %.*s", what, tl_err_name(err), (int)msg.len,
				  msg.ptr);
	return admin_fail(admin, err, "%s: %s: %s", what, tl_err_name(err), tl_err_message(err));
}

static tl_err create_acls_map(struct tl_admin *admin, const struct admin_call *call,
			      const void *response)
{
	const struct tl_create_acls_response *resp = response;
	const struct tl_create_acls_request *req = call->req;
	if (resp->results_count != req->creations_count)
		return admin_decode_fail(admin, "CreateAcls");
	for (int32_t i = 0; i < resp->results_count; i++) {
		tl_err err = (tl_err)resp->results[i].error_code;
		if (err != TL_OK)
			return acl_error(admin, "create ACLs", err, resp->results[i].error_message);
	}
	return TL_OK;
}

TL_EXPORT tl_err tl_admin_create_acls(struct tl_admin *admin, const struct tl_admin_acl *acls,
				      int32_t count, int timeout_ms)
{
	if (!acls || count <= 0 || count > 1000)
		return admin_fail(admin, TL_ERR_INVALID, "create_acls: needs 1 to 1000 ACLs");
	struct tl_create_acls_request_acl_creation *creations =
		calloc((size_t)count, sizeof(*creations));
	if (!creations)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count; i++) {
		const struct tl_admin_acl *a = &acls[i];
		struct tl_create_acls_request_acl_creation *c = &creations[i];
		tl_create_acls_request_acl_creation_defaults(c);
		c->resource_type = a->resource_type;
		c->resource_name = str_or_null(a->resource_name);
		c->resource_pattern_type = a->pattern_type;
		c->principal = str_or_null(a->principal);
		c->host = str_or_null(a->host ? a->host : "*");
		c->operation = a->operation;
		c->permission_type = a->permission;
	}
	struct tl_create_acls_request req;
	tl_create_acls_request_defaults(&req);
	req.creations = creations;
	req.creations_count = count;
	struct admin_call call = {API_CREATE_ACLS, &req, NULL, -1, create_acls_map, NULL};
	tl_err err = admin_call(admin, &call, admin_deadline(timeout_ms));
	free(creations);
	return err;
}

static tl_err acl_copy(struct tl_arena *arena, struct tl_admin_acl *out, int8_t type,
		       struct tl_str name, int8_t pattern, struct tl_str principal,
		       struct tl_str host, int8_t op, int8_t permission)
{
	out->resource_type = type;
	out->resource_name = arena_strdup_null(arena, name);
	out->pattern_type = pattern;
	out->principal = arena_strdup_null(arena, principal);
	out->host = arena_strdup_null(arena, host);
	out->operation = op;
	out->permission = permission;
	return (name.len >= 0 && !out->resource_name) || (principal.len >= 0 && !out->principal) ||
			       (host.len >= 0 && !out->host)
		       ? TL_ERR_NOMEM
		       : TL_OK;
}

static tl_err describe_acls_map(struct tl_admin *admin, const struct admin_call *call,
				const void *response)
{
	const struct tl_describe_acls_response *resp = response;
	struct admin_result *result = call->arg;
	tl_err err = (tl_err)resp->error_code;
	if (err != TL_OK)
		return acl_error(admin, "describe ACLs", err, resp->error_message);
	int32_t total = 0;
	for (int32_t r = 0; r < resp->resources_count; r++)
		total += TL_MAX(resp->resources[r].acls_count, 0);
	struct tl_admin_acl *acls = result_array(result, total, sizeof(*acls));
	if (!acls)
		return TL_ERR_NOMEM;
	int32_t n = 0;
	for (int32_t r = 0; r < resp->resources_count; r++) {
		const struct tl_describe_acls_response_describe_acls_resource *res =
			&resp->resources[r];
		for (int32_t i = 0; i < res->acls_count; i++) {
			const struct tl_describe_acls_response_acl_description *d = &res->acls[i];
			if (acl_copy(&result->arena, &acls[n++], res->resource_type,
				     res->resource_name, res->pattern_type, d->principal, d->host,
				     d->operation, d->permission_type) != TL_OK)
				return TL_ERR_NOMEM;
		}
	}
	result->pub.acls.acls = acls;
	result->pub.acls.count = n;
	return TL_OK;
}

TL_EXPORT tl_err tl_admin_describe_acls(struct tl_admin *admin, const struct tl_admin_acl *filter,
					struct tl_admin_acls **out, int timeout_ms)
{
	if (!filter || !out)
		return admin_fail(admin, TL_ERR_INVALID, "describe_acls: needs @filter and @out");
	struct tl_describe_acls_request req;
	tl_describe_acls_request_defaults(&req);
	ACL_FILTER_SET(req, filter);
	struct admin_call call = {API_DESCRIBE_ACLS, &req, NULL, -1, describe_acls_map, NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}

static tl_err delete_acls_map(struct tl_admin *admin, const struct admin_call *call,
			      const void *response)
{
	const struct tl_delete_acls_response *resp = response;
	struct admin_result *result = call->arg;
	if (resp->filter_results_count != 1)
		return admin_decode_fail(admin, "DeleteAcls");
	const struct tl_delete_acls_response_delete_acls_filter_result *fr =
		&resp->filter_results[0];
	tl_err err = (tl_err)fr->error_code;
	if (err != TL_OK)
		return acl_error(admin, "delete ACLs", err, fr->error_message);
	int32_t count = TL_MAX(fr->matching_acls_count, 0);
	struct tl_admin_acl *acls = result_array(result, count, sizeof(*acls));
	if (!acls)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count; i++) {
		const struct tl_delete_acls_response_delete_acls_matching_acl *m =
			&fr->matching_acls[i];
		if (m->error_code != 0)
			return acl_error(admin, "delete ACLs", (tl_err)m->error_code,
					 m->error_message);
		if (acl_copy(&result->arena, &acls[i], m->resource_type, m->resource_name,
			     m->pattern_type, m->principal, m->host, m->operation,
			     m->permission_type) != TL_OK)
			return TL_ERR_NOMEM;
	}
	result->pub.acls.acls = acls;
	result->pub.acls.count = count;
	return TL_OK;
}

TL_EXPORT tl_err tl_admin_delete_acls(struct tl_admin *admin, const struct tl_admin_acl *filter,
				      struct tl_admin_acls **out, int timeout_ms)
{
	if (!filter)
		return admin_fail(admin, TL_ERR_INVALID, "delete_acls: needs @filter");
	struct tl_delete_acls_request_delete_acls_filter f;
	tl_delete_acls_request_delete_acls_filter_defaults(&f);
	ACL_FILTER_SET(f, filter);
	struct tl_delete_acls_request req;
	tl_delete_acls_request_defaults(&req);
	req.filters = &f;
	req.filters_count = 1;
	struct admin_call call = {API_DELETE_ACLS, &req, NULL, -1, delete_acls_map, NULL};
	void *pub;
	tl_err err = admin_call_result(admin, &call, timeout_ms, &pub);
	if (err != TL_OK)
		return err;
	if (out)
		*out = pub;
	else
		result_destroy(pub);
	return TL_OK;
}

/* ---- SCRAM credentials (KIP-554) ---- */

static tl_err alter_scram_map(struct tl_admin *admin, const struct admin_call *call,
			      const void *response)
{
	const struct tl_alter_user_scram_credentials_response *resp = response;
	TL_UNUSED(call);
	if (resp->results_count != 1)
		return admin_decode_fail(admin, "AlterUserScramCredentials");
	tl_err err = (tl_err)resp->results[0].error_code;
	if (err == TL_OK)
		return TL_OK;
	struct tl_str msg = resp->results[0].error_message;
	return admin_fail(admin, err, "alter SCRAM credentials: %s%s%.*s", tl_err_name(err),
			  msg.len > 0 ? ": " : "", msg.len > 0 ? (int)msg.len : 0,
			  msg.len > 0 ? msg.ptr : "");
}

static bool scram_args_ok(const char *user, int mechanism)
{
	return user && user[0] &&
	       (mechanism == TL_ADMIN_SCRAM_SHA_256 || mechanism == TL_ADMIN_SCRAM_SHA_512);
}

TL_EXPORT tl_err tl_admin_upsert_scram_credential(struct tl_admin *admin, const char *user,
						  int mechanism, const char *password,
						  int32_t iterations, int timeout_ms)
{
	if (!scram_args_ok(user, mechanism) || !password)
		return admin_fail(admin, TL_ERR_INVALID,
				  "upsert_scram_credential: needs a user, a password and "
				  "TL_ADMIN_SCRAM_SHA_256 or _512");
	if (iterations == 0)
		iterations = TL_SCRAM_ITERATIONS_MIN;
	uint8_t salt[32], salted[TL_SCRAM_KEY_MAX];
	enum tl_scram_mechanism m = (enum tl_scram_mechanism)mechanism;
	if (!tl_scram_random(salt, sizeof(salt)) ||
	    !tl_scram_salted_password(m, password, strlen(password), salt, sizeof(salt),
				      TL_MAX(iterations, 1), salted))
		return admin_fail(admin, TL_ERR_INVALID, "upsert_scram_credential: OpenSSL failed");
	struct tl_alter_user_scram_credentials_request_scram_credential_upsertion up;
	tl_alter_user_scram_credentials_request_scram_credential_upsertion_defaults(&up);
	up.name = tl_str_of(user);
	up.mechanism = (int8_t)mechanism;
	up.iterations = iterations;
	up.salt = (struct tl_bytes){salt, (int32_t)sizeof(salt)};
	up.salted_password = (struct tl_bytes){salted, (int32_t)tl_scram_key_len(m)};
	struct tl_alter_user_scram_credentials_request req;
	tl_alter_user_scram_credentials_request_defaults(&req);
	req.deletions_count = 0;
	req.upsertions = &up;
	req.upsertions_count = 1;
	struct admin_call call = {
		API_ALTER_USER_SCRAM_CREDENTIALS, &req, NULL, -1, alter_scram_map, NULL};
	tl_err err = admin_call(admin, &call, admin_deadline(timeout_ms));
	tl_scram_wipe(salted, sizeof(salted));
	return err;
}

TL_EXPORT tl_err tl_admin_delete_scram_credential(struct tl_admin *admin, const char *user,
						  int mechanism, int timeout_ms)
{
	if (!scram_args_ok(user, mechanism))
		return admin_fail(admin, TL_ERR_INVALID,
				  "delete_scram_credential: needs a user and "
				  "TL_ADMIN_SCRAM_SHA_256 or _512");
	struct tl_alter_user_scram_credentials_request_scram_credential_deletion del;
	tl_alter_user_scram_credentials_request_scram_credential_deletion_defaults(&del);
	del.name = tl_str_of(user);
	del.mechanism = (int8_t)mechanism;
	struct tl_alter_user_scram_credentials_request req;
	tl_alter_user_scram_credentials_request_defaults(&req);
	req.deletions = &del;
	req.deletions_count = 1;
	req.upsertions_count = 0;
	struct admin_call call = {
		API_ALTER_USER_SCRAM_CREDENTIALS, &req, NULL, -1, alter_scram_map, NULL};
	return admin_call(admin, &call, admin_deadline(timeout_ms));
}

static tl_err describe_scram_map(struct tl_admin *admin, const struct admin_call *call,
				 const void *response)
{
	const struct tl_describe_user_scram_credentials_response *resp = response;
	struct admin_result *result = call->arg;
	tl_err err = (tl_err)resp->error_code;
	if (err != TL_OK)
		return admin_fail(admin, err, "describe SCRAM credentials: %s",
				  tl_err_message(err));
	int32_t count = TL_MAX(resp->results_count, 0);
	struct tl_admin_scram_user *users = result_array(result, count, sizeof(*users));
	if (!users)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count; i++) {
		const struct
			tl_describe_user_scram_credentials_response_describe_user_scram_credentials_result
				*in = &resp->results[i];
		int32_t n = TL_MAX(in->credential_infos_count, 0);
		struct tl_admin_scram_credential *creds = result_array(result, n, sizeof(*creds));
		users[i].name = arena_strdup(&result->arena, in->user);
		if (!creds || !users[i].name)
			return TL_ERR_NOMEM;
		for (int32_t j = 0; j < n; j++) {
			creds[j].mechanism = in->credential_infos[j].mechanism;
			creds[j].iterations = in->credential_infos[j].iterations;
		}
		users[i].credentials = creds;
		users[i].credential_count = n;
	}
	result->pub.scram_users.users = users;
	result->pub.scram_users.count = count;
	return TL_OK;
}

TL_EXPORT tl_err tl_admin_describe_scram_credentials(struct tl_admin *admin,
						     struct tl_admin_scram_users **out,
						     int timeout_ms)
{
	if (!out)
		return admin_fail(admin, TL_ERR_INVALID, "describe_scram_credentials: needs @out");
	struct tl_describe_user_scram_credentials_request req;
	tl_describe_user_scram_credentials_request_defaults(&req);
	req.users_count = -1; /* null: every user */
	struct admin_call call = {
		API_DESCRIBE_USER_SCRAM_CREDENTIALS, &req, NULL, -1, describe_scram_map, NULL};
	return admin_call_result(admin, &call, timeout_ms, out);
}
