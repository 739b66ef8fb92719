/* client.c - connections, request plumbing, ApiVersions and metadata, see client.h.
 * (1) A node's requests in flight form a FIFO in send order; Kafka answers in order, so
 *     every response must carry the head's correlation id or the connection is broken.
 * (2) node->in holds at most one frame: reads never go past the frame being assembled.
 * (3) versions[] of a node is meaningful only in CONN_READY and CONN_REAUTH, and in
 *     CONN_SASL once the connection has been READY (a re-authentication).
 * (4) Each request's callback runs exactly once: on its response, on its deadline, on
 *     disconnect, or at destroy.
 * (5) SaslHandshake goes out only when no request waits for its answer: while
 *     CONN_SASL every response is taken for the exchange's (KIP-368 re-authentication
 *     drains the connection first). Requests sent while a node re-authenticates wait
 *     in held/held_head, out of the FIFO, and go out after the login: to callers the
 *     node stays ready (node_usable) and re-authentication is invisible. */
#include "client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/time.h"
#include "common/tls.h"
#include "protocol/api.h"
#include "protocol/messages.h"
#include "protocol/sasl_client.h"

/* ---- tables and types ---- */

/* The versions this client can encode and decode, all non-flexible (see client.h). */
static const struct {
	int16_t key;
	int16_t min;
	int16_t max;
} client_apis[] = {
	{TL_CLIENT_API_PRODUCE, 3, 8},
	{TL_CLIENT_API_FETCH, 4, 11},
	{TL_CLIENT_API_LIST_OFFSETS, 1, 5},
	{TL_CLIENT_API_METADATA, 1, 8},
	{TL_CLIENT_API_OFFSET_COMMIT, 2, 7},
	/* v7 (flexible) carries require_stable (KIP-447). */
	{TL_CLIENT_API_OFFSET_FETCH, 1, 7},
	{TL_CLIENT_API_FIND_COORDINATOR, 0, 2},
	{TL_CLIENT_API_API_VERSIONS, 0, 0},
	{TL_CLIENT_API_CREATE_TOPICS, 0, 4},
	{TL_CLIENT_API_DELETE_TOPICS, 0, 3},
	{TL_CLIENT_API_INIT_PRODUCER_ID, 0, 1},
	/* v3 names the asker (replica_id -1); v4 is flexible (KIP-320). */
	{TL_CLIENT_API_OFFSET_FOR_LEADER_EPOCH, 3, 4},
	{TL_CLIENT_API_JOIN_GROUP, 0, 5},
	{TL_CLIENT_API_HEARTBEAT, 0, 3},
	{TL_CLIENT_API_LEAVE_GROUP, 0, 3},
	{TL_CLIENT_API_SYNC_GROUP, 0, 3},
	{TL_CLIENT_API_DESCRIBE_GROUPS, 0, 4},
	{TL_CLIENT_API_LIST_GROUPS, 0, 2},
	{TL_CLIENT_API_DELETE_GROUPS, 0, 1},
	{TL_CLIENT_API_CREATE_PARTITIONS, 0, 1},
	{TL_CLIENT_API_DELETE_RECORDS, 0, 1},
	{TL_CLIENT_API_DESCRIBE_LOG_DIRS, 0, 1},
	{TL_CLIENT_API_INCREMENTAL_ALTER_CONFIGS, 0, 0},
	{TL_CLIENT_API_DESCRIBE_CLIENT_QUOTAS, 0, 0},
	{TL_CLIENT_API_ALTER_CLIENT_QUOTAS, 0, 0},
	/* v1 carries the pattern type (PREFIXED); v2 is flexible. */
	{TL_CLIENT_API_DESCRIBE_ACLS, 1, 1},
	{TL_CLIENT_API_CREATE_ACLS, 1, 1},
	{TL_CLIENT_API_DELETE_ACLS, 1, 1},
	{TL_CLIENT_API_WRITE_TXN_MARKERS, 0, 0},
	{TL_CLIENT_API_ADD_PARTITIONS_TO_TXN, 0, 2},
	{TL_CLIENT_API_ADD_OFFSETS_TO_TXN, 0, 2},
	{TL_CLIENT_API_END_TXN, 0, 2},
	/* v3 (flexible) carries KIP-447's generation and member id. */
	{TL_CLIENT_API_TXN_OFFSET_COMMIT, 0, 3},
	/* Flexible only (see client_api_flexible). */
	{TL_CLIENT_API_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0},
	{TL_CLIENT_API_ALTER_USER_SCRAM_CREDENTIALS, 0, 0},
	{TL_CLIENT_API_DESCRIBE_PRODUCERS, 0, 0},
	{TL_CLIENT_API_DESCRIBE_TRANSACTIONS, 0, 0},
	{TL_CLIENT_API_LIST_TRANSACTIONS, 0, 0},
};

/* True for the API versions above that are flexible (request header v2, response
 * header v1). */
static bool client_api_flexible(int16_t api_key, int16_t version)
{
	return api_key == TL_CLIENT_API_DESCRIBE_PRODUCERS ||
	       api_key == TL_CLIENT_API_DESCRIBE_USER_SCRAM_CREDENTIALS ||
	       api_key == TL_CLIENT_API_ALTER_USER_SCRAM_CREDENTIALS ||
	       api_key == TL_CLIENT_API_DESCRIBE_TRANSACTIONS ||
	       api_key == TL_CLIENT_API_LIST_TRANSACTIONS ||
	       (api_key == TL_CLIENT_API_TXN_OFFSET_COMMIT && version >= 3) ||
	       (api_key == TL_CLIENT_API_OFFSET_FOR_LEADER_EPOCH && version >= 4) ||
	       (api_key == TL_CLIENT_API_OFFSET_FETCH && version >= 6);
}

#define CLIENT_NODES_MAX      1024 /* brokers we keep addresses for */
#define CLIENT_TOPICS_MAX     100000
#define CLIENT_PARTITIONS_MAX 100000 /* per topic */
#define CLIENT_READ_CHUNK     (1 << 20)
#define CLIENT_RESERVE_MAX    (16 << 20) /* a frame's memory reserved before its bytes come */

enum conn_state {
	CONN_DOWN,
	CONN_CONNECTING,
	CONN_TLS,       /* TCP up, TLS handshake under way (security.protocol=ssl) */
	CONN_HANDSHAKE, /* ApiVersions under way */
	CONN_SASL,      /* SaslHandshake / SaslAuthenticate in flight (protocol/sasl_client.c) */
	CONN_READY,
	CONN_REAUTH, /* KIP-368: the session nears its end; new requests are held,
		      * SaslHandshake once the answers in flight are in (invariant 5) */
};

struct client_req {
	struct client_req *next;
	int32_t correlation_id;
	int16_t api_key;
	int16_t version;
	int64_t deadline_ns; /* monotonic */
	tl_client_response_fn fn;
	void *arg;
};

struct client_node {
	int32_t node_id; /* bootstrap entries: -1, -2, ... */
	char *host;
	int32_t port;
	enum conn_state state;
	int fd;
	struct tl_transport transport; /* the byte stream on fd: plain or TLS */
	int64_t retry_at_ns;           /* no connect attempt before this */
	struct tl_buf out;             /* frames not yet written */
	size_t out_pos;                /* bytes of out already written */
	struct tl_buf in;              /* the frame being read, size prefix included */
	struct client_req *head;
	struct client_req *tail;
	int in_flight;
	int16_t versions[TL_CLIENT_API_KEY_MAX]; /* -1: unsupported */
	/* the frame being encoded into out (tl_client_frame_begin), SIZE_MAX when none */
	size_t frame_at;
	int32_t frame_correlation_id;
	int16_t frame_api_key;
	int16_t frame_version;
	struct tl_client_sasl *sasl;  /* the exchange while CONN_SASL; owned */
	int64_t reauth_at_ns;         /* KIP-368: re-authenticate from then on; 0 = never */
	bool reauthing;               /* REAUTH, or SASL again after READY: requests held */
	struct tl_buf held;           /* frames sent while reauthing, written after the login */
	struct client_req *held_head; /* their requests, in order; in_flight counts them */
	struct client_req *held_tail;
	struct tl_buf *frame_buf; /* out or held: where the open frame is */
	uint32_t failures;        /* connection attempts that failed and connections lost, ever */
};

struct tl_client {
	char *client_id;
	struct ssl_ctx_st *ssl_ctx; /* security.protocol=ssl: every connection's TLS; else NULL */
	int32_t request_timeout_ms;
	int32_t reconnect_backoff_ms;
	int32_t metadata_max_age_ms;
	bool allow_auto_create_topics;
	struct client_node **nodes;
	int node_count;
	int wake_fd;
	int32_t next_correlation_id;
	struct pollfd *pfds;
	int pfds_cap;
	/* metadata cache */
	struct tl_client_topic *topics;
	int32_t topic_count;
	int32_t controller_id;
	uint64_t metadata_version;
	char **wanted;
	int32_t wanted_count;
	bool metadata_wanted; /* refresh at the next chance */
	bool metadata_in_flight;
	int64_t metadata_next_ns; /* periodic refresh */
	char last_error[256];
	struct tl_client_sasl_conf sasl_conf; /* mechanism NULL: no SASL */
	tl_err sasl_failed; /* the broker refused our credentials: calls fail at once */
	struct client_node *dispatching; /* whose response a callback is reading, or NULL */
};

static void node_close(struct tl_client *client, struct client_node *node, tl_err err,
		       const char *why);

char *tl_client_strdup(struct tl_str str)
{
	if (!str.ptr || str.len < 0)
		return NULL;
	char *s = malloc((size_t)str.len + 1);
	if (!s)
		return NULL;
	memcpy(s, str.ptr, (size_t)str.len);
	s[str.len] = '\0';
	return s;
}

/* ---- create and destroy ---- */

static struct client_node *node_find(const struct tl_client *client, int32_t node_id)
{
	for (int i = 0; i < client->node_count; i++)
		if (client->nodes[i]->node_id == node_id)
			return client->nodes[i];
	return NULL;
}

static tl_err node_add(struct tl_client *client, int32_t node_id, const char *host, size_t host_len,
		       int32_t port)
{
	if (client->node_count >= CLIENT_NODES_MAX)
		return TL_ERR_LIMIT;
	struct client_node **nodes =
		realloc(client->nodes, (size_t)(client->node_count + 1) * sizeof(*nodes));
	if (!nodes)
		return TL_ERR_NOMEM;
	client->nodes = nodes;
	struct client_node *node = calloc(1, sizeof(*node));
	if (!node)
		return TL_ERR_NOMEM;
	node->host = strndup(host, host_len);
	if (!node->host) {
		free(node);
		return TL_ERR_NOMEM;
	}
	node->node_id = node_id;
	node->port = port;
	node->fd = -1;
	node->state = CONN_DOWN;
	node->frame_at = SIZE_MAX;
	tl_buf_init(&node->out);
	tl_buf_init(&node->in);
	tl_buf_init(&node->held);
	client->nodes[client->node_count++] = node;
	return TL_OK;
}

static void node_free(struct tl_client *client, struct client_node *node)
{
	node_close(client, node, TL_ERR_CLOSED, "client destroyed");
	free(node->sasl);
	tl_buf_deinit(&node->out);
	tl_buf_deinit(&node->in);
	tl_buf_deinit(&node->held);
	free(node->host);
	free(node);
}

/* Parses "host:port[,host:port...]" into bootstrap nodes -1, -2, ... */
static tl_err client_bootstrap(struct tl_client *client, const char *list, char *errstr,
			       size_t errstr_size)
{
	int32_t next_id = -1;
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *end = p + strcspn(p, ", ");
		const char *colon = NULL;
		for (const char *q = p; q < end; q++)
			if (*q == ':')
				colon = q;
		if (!colon || colon == p || colon + 1 == end) {
			tl_conf_errstr(errstr, errstr_size,
				       "bootstrap.servers: '%.*s' is not host:port", (int)(end - p),
				       p);
			return TL_ERR_INVALID;
		}
		long port = strtol(colon + 1, NULL, 10);
		if (port <= 0 || port > 65535) {
			tl_conf_errstr(errstr, errstr_size, "bootstrap.servers: bad port in '%.*s'",
				       (int)(end - p), p);
			return TL_ERR_INVALID;
		}
		const char *host = p;
		size_t host_len = (size_t)(colon - p);
		if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') {
			host++;
			host_len -= 2;
		}
		tl_err err = node_add(client, next_id--, host, host_len, (int32_t)port);
		if (err != TL_OK)
			return err;
		p = end;
	}
	if (client->node_count == 0) {
		tl_conf_errstr(errstr, errstr_size,
			       "bootstrap.servers is empty; set it to host:port of a broker");
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

/* security.protocol: plaintext, ssl (the ssl.* keys of conf->conf: a TLS context for every
 * connection), sasl_plaintext or sasl_ssl (sasl.mechanisms, sasl.username and sasl.password,
 * librdkafka's names, spoken after ApiVersions). */
static tl_err client_security(struct tl_client *client, const struct tl_client_conf *conf,
			      char *errstr, size_t errstr_size)
{
	const char *protocol = conf->security_protocol ? conf->security_protocol : "plaintext";
	bool tls = strcasecmp(protocol, "ssl") == 0 || strcasecmp(protocol, "sasl_ssl") == 0;
	bool sasl = strcasecmp(protocol, "sasl_plaintext") == 0 ||
		    strcasecmp(protocol, "sasl_ssl") == 0;
	if (!tls && !sasl) {
		if (strcasecmp(protocol, "plaintext") == 0)
			return TL_OK;
		tl_conf_errstr(errstr, errstr_size,
			       "security.protocol=%s is not supported (plaintext, ssl, "
			       "sasl_plaintext, sasl_ssl)",
			       protocol);
		return TL_ERR_INVALID;
	}
	if (tls) {
		const struct tl_conf *keys = conf->conf;
		const char *ca = keys ? tl_conf_str(keys, "ssl.ca.location") : NULL;
		const char *cert = keys ? tl_conf_str(keys, "ssl.certificate.location") : NULL;
		const char *key = keys ? tl_conf_str(keys, "ssl.key.location") : NULL;
		const char *password = keys ? tl_conf_str(keys, "ssl.key.password") : NULL;
		struct tl_tls_client_conf tls_conf = {
			.ca_location = ca ? ca : "",
			.certificate_location = cert ? cert : "",
			.key_location = key ? key : "",
			.key_password = password ? password : "",
			.verify = keys ? tl_conf_bool(keys, "enable.ssl.certificate.verification")
				       : true,
		};
		char why[512];
		client->ssl_ctx = tl_tls_client_ctx_create(&tls_conf, why, sizeof(why));
		if (!client->ssl_ctx) {
			tl_conf_errstr(errstr, errstr_size, "security.protocol=%s: %s", protocol,
				       why);
			return TL_ERR_INVALID;
		}
	}
	if (!sasl)
		return TL_OK;
	if (!conf->sasl_mechanism) {
		tl_conf_errstr(errstr, errstr_size,
			       "security.protocol=%s needs sasl.mechanisms (PLAIN, "
			       "SCRAM-SHA-256 or SCRAM-SHA-512)",
			       protocol);
		return TL_ERR_INVALID;
	}
	struct tl_client_sasl_conf check = {
		.mechanism = (char *)(uintptr_t)conf->sasl_mechanism,
		.username = (char *)(uintptr_t)conf->sasl_username,
		.password = (char *)(uintptr_t)conf->sasl_password,
	};
	tl_err err = tl_client_sasl_conf_check(&check, errstr, errstr_size);
	if (err != TL_OK)
		return err;
	client->sasl_conf.mechanism = strdup(conf->sasl_mechanism);
	client->sasl_conf.username = strdup(conf->sasl_username);
	client->sasl_conf.password = strdup(conf->sasl_password);
	if (!client->sasl_conf.mechanism || !client->sasl_conf.username ||
	    !client->sasl_conf.password)
		return TL_ERR_NOMEM;
	return TL_OK;
}

tl_err tl_client_create(const struct tl_client_conf *conf, struct tl_client **out, char *errstr,
			size_t errstr_size)
{
	if (!conf->bootstrap_servers) {
		tl_conf_errstr(errstr, errstr_size,
			       "bootstrap.servers is not set; set it to host:port of a broker");
		return TL_ERR_INVALID;
	}
	struct tl_client *client = calloc(1, sizeof(*client));
	if (!client)
		return TL_ERR_NOMEM;
	tl_err err = TL_ERR_NOMEM;
	client->client_id = strdup(conf->client_id ? conf->client_id : "libtally");
	if (!client->client_id)
		goto out_free;
	client->request_timeout_ms = conf->request_timeout_ms;
	client->reconnect_backoff_ms = conf->reconnect_backoff_ms;
	client->metadata_max_age_ms = conf->metadata_max_age_ms;
	client->allow_auto_create_topics = conf->allow_auto_create_topics;
	client->controller_id = -1;
	client->next_correlation_id = 1;
	client->metadata_next_ns = tl_mono_ns();
	client->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (client->wake_fd == -1) {
		tl_conf_errstr(errstr, errstr_size, "eventfd: %s", strerror(errno));
		err = TL_ERR_IO;
		goto out_free;
	}
	err = client_bootstrap(client, conf->bootstrap_servers, errstr, errstr_size);
	if (err != TL_OK)
		goto out_destroy;
	err = client_security(client, conf, errstr, errstr_size);
	if (err != TL_OK)
		goto out_destroy;
	*out = client;
	return TL_OK;

out_destroy:
	tl_client_destroy(client);
	return err;
out_free:
	free(client->client_id);
	free(client);
	return err;
}

static void topic_free(struct tl_client_topic *topic)
{
	free(topic->name);
	free(topic->partitions);
}

void tl_client_destroy(struct tl_client *client)
{
	if (!client)
		return;
	for (int i = 0; i < client->node_count; i++)
		node_free(client, client->nodes[i]);
	free(client->nodes);
	for (int32_t i = 0; i < client->topic_count; i++)
		topic_free(&client->topics[i]);
	free(client->topics);
	for (int32_t i = 0; i < client->wanted_count; i++)
		free(client->wanted[i]);
	free(client->wanted);
	free(client->pfds);
	if (client->wake_fd != -1)
		close(client->wake_fd);
	tl_tls_ctx_free(client->ssl_ctx);
	free(client->client_id);
	free(client->sasl_conf.mechanism);
	free(client->sasl_conf.username);
	if (client->sasl_conf.password) {
		tl_scram_wipe(client->sasl_conf.password, strlen(client->sasl_conf.password));
		free(client->sasl_conf.password);
	}
	free(client);
}

const char *tl_client_last_error(const struct tl_client *client)
{
	return client->last_error;
}

/* ---- connections ---- */

static void node_close(struct tl_client *client, struct client_node *node, tl_err err,
		       const char *why)
{
	if (node->fd != -1) {
		tl_transport_deinit(&node->transport);
		close(node->fd);
		node->fd = -1;
		snprintf(client->last_error, sizeof(client->last_error), "%s:%d: %s", node->host,
			 node->port, why);
	}
	if (node->state != CONN_DOWN) {
		node->retry_at_ns = tl_mono_ns() + (int64_t)client->reconnect_backoff_ms * 1000000;
		node->failures++;
	}
	node->state = CONN_DOWN;
	node->reauth_at_ns = 0;
	node->reauthing = false;
	TL_ASSERT(node->frame_at == SIZE_MAX);
	tl_buf_reset(&node->out);
	node->out_pos = 0;
	tl_buf_reset(&node->in);
	tl_buf_reset(&node->held);
	/* Detach the lists first (the held after the sent): a callback may send again (to
	 * another node). */
	struct client_req *req = node->head;
	if (node->tail)
		node->tail->next = node->held_head;
	else
		req = node->held_head;
	node->head = node->tail = NULL;
	node->held_head = node->held_tail = NULL;
	node->in_flight = 0;
	/* These callbacks have no response: none of them may take the one being
	 * dispatched (when a response's callback closed this node, or another). */
	struct client_node *dispatching = client->dispatching;
	client->dispatching = NULL;
	while (req) {
		struct client_req *next = req->next;
		if (req->fn)
			req->fn(req->arg, err, NULL, req->version);
		free(req);
		req = next;
	}
	client->dispatching = dispatching;
}

/* Where a caller's request goes: the node's output, or while it re-authenticates the
 * held frames (invariant 5). The client's own ApiVersions and SASL frames always go to
 * the output. */
static struct tl_buf *node_sink(struct client_node *node)
{
	return node->reauthing ? &node->held : &node->out;
}

/* Starts a request frame (size placeholder, header v1 or v2) at the end of @buf
 * (node->out or node->held); the body is appended after it and frame_finish() completes
 * it. */
static void frame_start(struct tl_client *client, struct client_node *node, struct tl_buf *buf,
			int16_t api_key, int16_t version)
{
	TL_ASSERT(node->frame_at == SIZE_MAX);
	node->frame_buf = buf;
	node->frame_at = buf->len;
	node->frame_correlation_id = client->next_correlation_id++;
	if (client->next_correlation_id == INT32_MAX)
		client->next_correlation_id = 1;
	node->frame_api_key = api_key;
	node->frame_version = version;
	tl_buf_i32(buf, 0); /* the size, once the body is known */
	tl_buf_i16(buf, api_key);
	tl_buf_i16(buf, version);
	tl_buf_i32(buf, node->frame_correlation_id);
	tl_buf_string(buf, tl_str_of(client->client_id), false);
	if (client_api_flexible(api_key, version))
		tl_buf_uvarint(buf, 0); /* header v2: no tagged fields */
}

/* Completes the frame frame_start() began: its size, and the request awaiting an answer
 * when @expect_response. On failure the frame is taken back out of the output. */
static tl_err frame_finish(struct client_node *node, bool expect_response, int32_t timeout_ms,
			   tl_client_response_fn fn, void *arg)
{
	size_t at = node->frame_at;
	TL_ASSERT(at != SIZE_MAX);
	node->frame_at = SIZE_MAX;
	struct tl_buf *buf = node->frame_buf;
	bool held = buf == &node->held;
	struct client_req *req = NULL;
	if (expect_response && !buf->failed)
		req = calloc(1, sizeof(*req));
	size_t size = buf->len - at - 4;
	if (buf->failed || (expect_response && !req) || size > INT32_MAX) {
		buf->failed = false;
		buf->len = at;
		free(req);
		return TL_ERR_NOMEM;
	}
	tl_be32_put(buf->data + at, (uint32_t)size);
	if (req) {
		req->correlation_id = node->frame_correlation_id;
		req->api_key = node->frame_api_key;
		req->version = node->frame_version;
		req->deadline_ns = tl_mono_ns() + (int64_t)timeout_ms * 1000000;
		req->fn = fn;
		req->arg = arg;
		struct client_req **head = held ? &node->held_head : &node->head;
		struct client_req **tail = held ? &node->held_tail : &node->tail;
		if (*tail)
			(*tail)->next = req;
		else
			*head = req;
		*tail = req;
		node->in_flight++;
	}
	return TL_OK;
}

/* Appends one request frame (size, header, @body) to @buf, as frame_start(). */
static tl_err node_enqueue(struct tl_client *client, struct client_node *node, struct tl_buf *buf,
			   int16_t api_key, int16_t version, const struct tl_buf *body,
			   bool expect_response, int32_t timeout_ms, tl_client_response_fn fn,
			   void *arg)
{
	frame_start(client, node, buf, api_key, version);
	if (body)
		tl_buf_put(buf, body->data, body->len);
	return frame_finish(node, expect_response, timeout_ms, fn, arg);
}

static void api_versions_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version);

/* Starts a nonblocking connect. Name resolution is blocking (getaddrinfo). */
static void node_connect(struct tl_client *client, struct client_node *node)
{
	TL_ASSERT(node->state == CONN_DOWN);
	TL_ASSERT(node->fd == -1);
	if (tl_mono_ns() < node->retry_at_ns)
		return;
	char port[16];
	snprintf(port, sizeof(port), "%d", node->port);
	struct addrinfo hints = {0};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(node->host, port, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(client->last_error, sizeof(client->last_error),
			 "%s:%d: cannot resolve host: %s", node->host, node->port,
			 gai_strerror(rc));
		node->retry_at_ns = tl_mono_ns() + (int64_t)client->reconnect_backoff_ms * 1000000;
		node->failures++;
		return;
	}
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd == -1) {
		freeaddrinfo(ai);
		snprintf(client->last_error, sizeof(client->last_error), "socket: %s",
			 strerror(errno));
		node->retry_at_ns = tl_mono_ns() + (int64_t)client->reconnect_backoff_ms * 1000000;
		node->failures++;
		return;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	int connect_errno = errno;
	freeaddrinfo(ai);
	node->fd = fd;
	tl_transport_init_plain(&node->transport, fd);
	node->state = CONN_CONNECTING;
	if (rc == -1 && connect_errno != EINPROGRESS) {
		node_close(client, node, TL_ERR_NETWORK_EXCEPTION, strerror(connect_errno));
		return;
	}
	for (int i = 0; i < TL_CLIENT_API_KEY_MAX; i++)
		node->versions[i] = -1;
	/* ApiVersions v0 goes first; every broker answers it. */
	if (node_enqueue(client, node, &node->out, TL_CLIENT_API_API_VERSIONS, 0, NULL, true,
			 client->request_timeout_ms, api_versions_done, node) != TL_OK)
		node_close(client, node, TL_ERR_NOMEM, "out of memory");
}

static void api_versions_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct client_node *node = arg;
	TL_UNUSED(version);
	if (err != TL_OK)
		return; /* the connection is already closing */
	int16_t error_code = tl_cursor_i16(body);
	int32_t count = tl_cursor_array_len(body, false, false, 1000);
	for (int32_t i = 0; i < count && !body->failed; i++) {
		int16_t key = tl_cursor_i16(body);
		int16_t min = tl_cursor_i16(body);
		int16_t max = tl_cursor_i16(body);
		for (size_t j = 0; j < TL_ARRAY_SIZE(client_apis); j++) {
			if (client_apis[j].key != key || key >= TL_CLIENT_API_KEY_MAX)
				continue;
			int16_t hi = TL_MIN(max, client_apis[j].max);
			int16_t lo = TL_MAX(min, client_apis[j].min);
			node->versions[key] = hi >= lo ? hi : -1;
		}
	}
	/* The node becomes READY in node_read once this returns without error. */
	if (body->failed || error_code != 0)
		node->versions[TL_CLIENT_API_API_VERSIONS] = -2;
}

/* Skips the tagged fields of response header v1; a malformed section fails @cursor,
 * which the response decoder then reports. */
static void response_header_skip_tags(struct tl_cursor *cursor)
{
	uint32_t count = tl_cursor_uvarint(cursor);
	for (uint32_t i = 0; i < count && !cursor->failed; i++) {
		(void)tl_cursor_uvarint(cursor);
		tl_cursor_skip(cursor, tl_cursor_uvarint(cursor));
	}
}

/* After ApiVersions: SaslHandshake goes out; the connection is READY once
 * node_sasl_step has seen the exchange through. */
static void node_sasl_start(struct tl_client *client, struct client_node *node)
{
	if (!node->sasl && !(node->sasl = malloc(sizeof(*node->sasl)))) {
		node_close(client, node, TL_ERR_NOMEM, "out of memory");
		return;
	}
	struct tl_buf body;
	tl_buf_init(&body);
	tl_client_sasl_start(node->sasl, &client->sasl_conf, &body);
	node->state = CONN_SASL;
	if (body.failed || node_enqueue(client, node, &node->out, TL_API_SASL_HANDSHAKE,
					TL_CLIENT_SASL_HANDSHAKE_VERSION, &body, true,
					client->request_timeout_ms, NULL, NULL) != TL_OK)
		node_close(client, node, TL_ERR_NOMEM, "out of memory");
	tl_buf_deinit(&body);
}

/* When to re-authenticate a session the broker gave @lifetime_ms (SaslAuthenticate v1's
 * session_lifetime_ms; 0 = no limit): at 85-95 % of it, as Java's client, so that the
 * connections a client opened together do not all drain at once. */
static int64_t reauth_at(int64_t lifetime_ms)
{
	if (lifetime_ms <= 0 || lifetime_ms > INT64_MAX / 2000000) /* 0, or over a century */
		return 0;
	int64_t now = tl_mono_ns();
	int64_t permille = 850 + (now / 1000) % 100; /* the microseconds: jitter enough */
	return now + lifetime_ms * 1000 * permille;
}

static void node_reauth_maybe(struct tl_client *client, struct client_node *node, int64_t now);

/* After a re-authentication: the requests held meanwhile go out, behind the exchange's
 * (invariant 5); in_flight already counts them. */
static void node_release_held(struct tl_client *client, struct client_node *node)
{
	node->reauthing = false;
	tl_buf_put(&node->out, node->held.data, node->held.len);
	if (node->out.failed) {
		node->out.failed = false;
		node_close(client, node, TL_ERR_NOMEM, "out of memory"); /* fails them all */
		return;
	}
	tl_buf_reset(&node->held);
	if (node->tail)
		node->tail->next = node->held_head;
	else
		node->head = node->held_head;
	if (node->held_tail)
		node->tail = node->held_tail;
	node->held_head = node->held_tail = NULL;
}

/* Whether callers may send to @node: READY, or re-authenticating (their requests are
 * held until the login is through). A READY node past its re-authentication time
 * starts it here, so that nothing is sent on a session that may have ended. */
static bool node_usable(struct tl_client *client, struct client_node *node)
{
	if (node->state == CONN_READY && node->reauth_at_ns != 0)
		node_reauth_maybe(client, node, tl_mono_ns());
	return node->state == CONN_READY || node->reauthing;
}

/* KIP-368: a READY connection whose session is due holds new requests (REAUTH) and
 * re-authenticates on the same connection once no answer is owed (invariant 5); the
 * broker closes a connection whose session ended at its next request. */
static void node_reauth_maybe(struct tl_client *client, struct client_node *node, int64_t now)
{
	if (node->state == CONN_READY && node->reauth_at_ns != 0 && now >= node->reauth_at_ns) {
		node->state = CONN_REAUTH;
		node->reauthing = true;
	}
	if (node->state == CONN_REAUTH && !node->head) {
		node->reauth_at_ns = 0;
		node_sasl_start(client, node);
	}
}

static void node_sasl_step(struct tl_client *client, struct client_node *node, int16_t api_key,
			   int16_t version, struct tl_cursor *cursor)
{
	struct tl_buf next;
	tl_buf_init(&next);
	char why[384];
	tl_err err =
		tl_client_sasl_step(node->sasl, api_key, cursor, version, &next, why, sizeof(why));
	if (err == TL_ERR_AGAIN) {
		if (next.failed || node_enqueue(client, node, &node->out, TL_API_SASL_AUTHENTICATE,
						TL_CLIENT_SASL_AUTHENTICATE_VERSION, &next, true,
						client->request_timeout_ms, NULL, NULL) != TL_OK)
			node_close(client, node, TL_ERR_NOMEM, "out of memory");
	} else if (err == TL_OK) {
		node->state = CONN_READY;
		client->sasl_failed = TL_OK;
		node->reauth_at_ns = reauth_at(node->sasl->session_lifetime_ms);
		if (node->reauthing)
			node_release_held(client, node);
	} else {
		/* Retrying cannot help (librdkafka calls it fatal too). */
		if (err > 0)
			client->sasl_failed = err;
		node_close(client, node, err, why);
	}
	if (next.data)
		tl_scram_wipe(next.data, next.cap); /* PLAIN's token holds the password */
	tl_buf_deinit(&next);
	if (err != TL_ERR_AGAIN)
		tl_client_sasl_reset(node->sasl);
}

static void node_dispatch(struct tl_client *client, struct client_node *node)
{
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, node->in.data + 4, node->in.len - 4);
	int32_t correlation_id = tl_cursor_i32(&cursor);
	struct client_req *req = node->head;
	if (!req || cursor.failed || req->correlation_id != correlation_id) {
		node_close(client, node, TL_ERR_NETWORK_EXCEPTION,
			   "response with an unexpected correlation id");
		return;
	}
	node->head = req->next;
	if (!node->head)
		node->tail = NULL;
	node->in_flight--;
	if (client_api_flexible(req->api_key, req->version))
		response_header_skip_tags(&cursor);
	if (req->api_key == TL_CLIENT_API_API_VERSIONS && node->state == CONN_HANDSHAKE) {
		req->fn(req->arg, TL_OK, &cursor, req->version);
		if (node->versions[TL_CLIENT_API_API_VERSIONS] == -2)
			node_close(client, node, TL_ERR_UNSUPPORTED_VERSION,
				   "ApiVersions failed; is this a Kafka-compatible broker?");
		else if (client->sasl_conf.mechanism)
			node_sasl_start(client, node);
		else
			node->state = CONN_READY;
	} else if (node->state == CONN_SASL) {
		node_sasl_step(client, node, req->api_key, req->version, &cursor);
	} else if (req->fn) {
		struct client_node *outer = client->dispatching;
		client->dispatching = node;
		req->fn(req->arg, TL_OK, &cursor, req->version);
		client->dispatching = outer;
	}
	free(req);
	tl_buf_reset(&node->in);
}

void *tl_client_response_take(struct tl_client *client)
{
	struct client_node *node = client->dispatching;
	if (!node || !node->in.data)
		return NULL;
	return tl_buf_release(&node->in);
}

/* Reads at most up to the end of the current frame (invariant 2). */
static void node_read(struct tl_client *client, struct client_node *node)
{
	/* TLS may hold decrypted bytes poll cannot see: drain them too. */
	for (int rounds = 0;
	     (rounds < 64 || tl_transport_has_pending(&node->transport)) && node->fd != -1;
	     rounds++) {
		size_t need = 4;
		if (node->in.len >= 4) {
			int32_t size = (int32_t)tl_be32_get(node->in.data);
			if (size < 4 || size > TL_CLIENT_FRAME_MAX) {
				node_close(client, node, TL_ERR_NETWORK_EXCEPTION,
					   "response frame size out of range");
				return;
			}
			need = 4 + (size_t)size;
			/* The frame's size at once (up to CLIENT_RESERVE_MAX, so that a
			 * size prefix alone cannot claim TL_CLIENT_FRAME_MAX): growing by
			 * doubling would copy what was read so far, and a taken frame starts
			 * from nothing. */
			size_t reserve = TL_MIN(need, (size_t)CLIENT_RESERVE_MAX);
			if (node->in.cap < reserve && !tl_buf_reserve(&node->in, reserve)) {
				node_close(client, node, TL_ERR_NOMEM, "out of memory");
				return;
			}
		}
		size_t want = TL_MIN(need - node->in.len, (size_t)CLIENT_READ_CHUNK);
		size_t at = node->in.len;
		uint8_t *p = tl_buf_extend(&node->in, want);
		if (!p) {
			node_close(client, node, TL_ERR_NOMEM, "out of memory");
			return;
		}
		ssize_t n = tl_transport_read(&node->transport, p, want);
		if (n <= 0) {
			node->in.len = at;
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				return;
			node_close(client, node, TL_ERR_NETWORK_EXCEPTION,
				   n == 0 ? "connection closed by broker" : strerror(errno));
			return;
		}
		node->in.len = at + (size_t)n;
		if (node->in.len == need && need > 4)
			node_dispatch(client, node);
	}
}

/* Drops the written prefix of the output once it is most of it, so a socket that stays
 * behind (acks=0) does not make the buffer grow without end. Not inside a frame. */
static void node_compact(struct client_node *node)
{
	if (node->out_pos < 65536 || node->out_pos < node->out.len / 2)
		return;
	TL_ASSERT(node->frame_at == SIZE_MAX);
	size_t left = node->out.len - node->out_pos;
	memmove(node->out.data, node->out.data + node->out_pos, left);
	node->out.len = left;
	node->out_pos = 0;
}

/* A library must not kill its host program: a TLS write goes through write(2), which
 * raises SIGPIPE on a socket the broker closed, so SIGPIPE is blocked around it and a
 * pending one taken back. */
static void sigpipe_block(sigset_t *old)
{
	sigset_t pipe_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

static void sigpipe_restore(const sigset_t *old, bool had_epipe)
{
	if (had_epipe && !sigismember(old, SIGPIPE)) {
		sigset_t pipe_set;
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		struct timespec zero = {0, 0};
		(void)sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static ssize_t node_send(struct client_node *node, const uint8_t *data, size_t len)
{
	if (!node->transport.ssl)
		return send(node->fd, data, len, MSG_NOSIGNAL);
	struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = len};
	sigset_t old;
	sigpipe_block(&old);
	ssize_t n = tl_transport_writev(&node->transport, &iov, 1);
	int saved = errno;
	sigpipe_restore(&old, n == -1 && saved == EPIPE);
	errno = saved;
	return n;
}

/* Writes what the socket takes. A failed write closes the node only with @may_close:
 * tl_client_send() passes false, because closing runs the callbacks of every request in
 * flight and its caller may hold a lock those callbacks take (the producer does); the
 * failure then shows at the next tl_client_poll() (POLLERR/POLLHUP), which closes. */
static void node_write(struct tl_client *client, struct client_node *node, bool may_close)
{
	if (node->state == CONN_TLS)
		return; /* nothing goes out before the TLS handshake is done */
	while (node->out_pos < node->out.len) {
		ssize_t n = node_send(node, node->out.data + node->out_pos,
				      node->out.len - node->out_pos);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR || !may_close) {
				node_compact(node);
				return;
			}
			node_close(client, node, TL_ERR_NETWORK_EXCEPTION, strerror(errno));
			return;
		}
		node->out_pos += (size_t)n;
	}
	tl_buf_reset(&node->out);
	node->out_pos = 0;
}

/* Moves the TLS handshake on; once done, ApiVersions (queued at connect) goes out. */
static void node_tls(struct tl_client *client, struct client_node *node)
{
	TL_ASSERT(node->state == CONN_TLS);
	sigset_t old;
	sigpipe_block(&old);
	tl_err err = tl_transport_handshake(&node->transport);
	int saved = errno;
	sigpipe_restore(&old, err == TL_ERR_IO && saved == EPIPE);
	if (err == TL_ERR_AGAIN)
		return;
	if (err != TL_OK) {
		char detail[256], why[320];
		tl_transport_error(&node->transport, detail, sizeof(detail));
		snprintf(why, sizeof(why), "TLS handshake failed: %s", detail);
		node_close(client, node, TL_ERR_NETWORK_EXCEPTION, why);
		return;
	}
	node->state = CONN_HANDSHAKE;
	node_write(client, node, true);
}

static void node_connected(struct tl_client *client, struct client_node *node)
{
	int so_error = 0;
	socklen_t len = sizeof(so_error);
	if (getsockopt(node->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) == -1)
		so_error = errno;
	if (so_error != 0) {
		node_close(client, node, TL_ERR_NETWORK_EXCEPTION, strerror(so_error));
		return;
	}
	if (!client->ssl_ctx) {
		node->state = CONN_HANDSHAKE;
		return;
	}
	if (tl_transport_init_tls(&node->transport, node->fd, client->ssl_ctx, false, node->host) !=
	    TL_OK) {
		node_close(client, node, TL_ERR_NOMEM, "out of memory for TLS");
		return;
	}
	node->state = CONN_TLS;
	node_tls(client, node);
}

/* ---- public connection API ---- */

bool tl_client_node_ready(struct tl_client *client, int32_t node_id)
{
	struct client_node *node = node_find(client, node_id);
	if (!node)
		return false;
	if (node->state == CONN_DOWN)
		node_connect(client, node);
	return node_usable(client, node);
}

int32_t tl_client_next_ready_node(struct tl_client *client, int32_t after)
{
	int start = 0;
	for (int i = 0; i < client->node_count; i++)
		if (after != TL_CLIENT_NODE_ANY && client->nodes[i]->node_id == after)
			start = i + 1;
	bool connecting = false;
	for (int k = 0; k < client->node_count; k++) {
		struct client_node *node = client->nodes[(start + k) % client->node_count];
		if (node->node_id < 0)
			continue;
		if (node_usable(client, node))
			return node->node_id;
		/* Connect the next one that is down, so that the retry can go there. */
		if (!connecting && node->state == CONN_DOWN && tl_mono_ns() >= node->retry_at_ns) {
			node_connect(client, node);
			connecting = true;
		}
	}
	return tl_client_any_ready_node(client);
}

int32_t tl_client_any_ready_node(struct tl_client *client)
{
	/* Prefer brokers learned from metadata over bootstrap entries. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < client->node_count; i++) {
			struct client_node *node = client->nodes[i];
			if ((pass == 0) != (node->node_id >= 0))
				continue;
			if (node_usable(client, node))
				return node->node_id;
		}
	for (int i = 0; i < client->node_count; i++) {
		struct client_node *node = client->nodes[i];
		if (node->state == CONN_CONNECTING || node->state == CONN_TLS ||
		    node->state == CONN_HANDSHAKE || node->state == CONN_SASL)
			return TL_CLIENT_NODE_ANY;
	}
	for (int i = 0; i < client->node_count; i++) {
		struct client_node *node = client->nodes[i];
		if (node->state == CONN_DOWN && tl_mono_ns() >= node->retry_at_ns) {
			node_connect(client, node);
			break;
		}
	}
	return TL_CLIENT_NODE_ANY;
}

int16_t tl_client_api_version(struct tl_client *client, int32_t node_id, int16_t api_key)
{
	struct client_node *node = node_find(client, node_id);
	if (!node || (node->state != CONN_READY && !node->reauthing) || api_key < 0 ||
	    api_key >= TL_CLIENT_API_KEY_MAX)
		return -1;
	return node->versions[api_key];
}

int tl_client_in_flight(struct tl_client *client, int32_t node_id)
{
	struct client_node *node = node_find(client, node_id);
	return node ? node->in_flight : 0;
}

tl_err tl_client_send(struct tl_client *client, int32_t node_id, int16_t api_key, int16_t version,
		      const struct tl_buf *body, bool expect_response, tl_client_response_fn fn,
		      void *arg)
{
	return tl_client_send_timeout(client, node_id, api_key, version, body, expect_response,
				      client->request_timeout_ms, fn, arg);
}

tl_err tl_client_send_timeout(struct tl_client *client, int32_t node_id, int16_t api_key,
			      int16_t version, const struct tl_buf *body, bool expect_response,
			      int32_t timeout_ms, tl_client_response_fn fn, void *arg)
{
	struct client_node *node = node_find(client, node_id);
	if (!node || !node_usable(client, node))
		return TL_ERR_AGAIN;
	if (body && body->failed)
		return TL_ERR_NOMEM;
	tl_err err = node_enqueue(client, node, node_sink(node), api_key, version, body,
				  expect_response, timeout_ms, fn, arg);
	if (err != TL_OK)
		return err;
	node_write(client, node, false);
	if (!expect_response && fn)
		fn(arg, TL_OK, NULL, version);
	return TL_OK;
}

struct tl_buf *tl_client_frame_begin(struct tl_client *client, int32_t node_id, int16_t api_key,
				     int16_t version)
{
	struct client_node *node = node_find(client, node_id);
	if (!node || !node_usable(client, node))
		return NULL;
	frame_start(client, node, node_sink(node), api_key, version);
	return node->frame_buf;
}

tl_err tl_client_frame_end(struct tl_client *client, int32_t node_id, bool expect_response,
			   tl_client_response_fn fn, void *arg)
{
	struct client_node *node = node_find(client, node_id);
	TL_ASSERT(node && (node->state == CONN_READY || node->reauthing));
	tl_err err = frame_finish(node, expect_response, client->request_timeout_ms, fn, arg);
	if (err != TL_OK)
		return err;
	node_write(client, node, false);
	if (!expect_response && fn)
		fn(arg, TL_OK, NULL, node->frame_version);
	return TL_OK;
}

size_t tl_client_unsent(struct tl_client *client, int32_t node_id)
{
	struct client_node *node = node_find(client, node_id);
	return node ? node->out.len - node->out_pos + node->held.len : 0;
}

void tl_client_wakeup(struct tl_client *client)
{
	uint64_t one = 1;
	ssize_t n = write(client->wake_fd, &one, sizeof(one));
	TL_UNUSED(n); /* EAGAIN: the counter is already non-zero, a wakeup is pending */
}

/* ---- metadata ---- */

static void metadata_maybe_request(struct tl_client *client);

static void client_expire(struct tl_client *client)
{
	int64_t now = tl_mono_ns();
	for (int i = 0; i < client->node_count; i++) {
		struct client_node *node = client->nodes[i];
		if ((node->head && node->head->deadline_ns <= now) ||
		    (node->held_head && node->held_head->deadline_ns <= now))
			node_close(client, node, TL_ERR_REQUEST_TIMED_OUT,
				   "request timed out (request.timeout.ms)");
	}
}

static int client_poll_timeout(struct tl_client *client, int timeout_ms)
{
	int64_t now = tl_mono_ns();
	int64_t until = now + (int64_t)timeout_ms * 1000000;
	for (int i = 0; i < client->node_count; i++) {
		struct client_node *node = client->nodes[i];
		if (node->head && node->head->deadline_ns < until)
			until = node->head->deadline_ns;
		if (node->held_head && node->held_head->deadline_ns < until)
			until = node->held_head->deadline_ns;
		if (node->state == CONN_READY && node->reauth_at_ns != 0 &&
		    node->reauth_at_ns < until)
			until = node->reauth_at_ns;
	}
	if (until <= now)
		return 0;
	return (int)((until - now + 999999) / 1000000);
}

void tl_client_poll(struct tl_client *client, int timeout_ms)
{
	metadata_maybe_request(client);
	if (client->pfds_cap < client->node_count + 1) {
		struct pollfd *p =
			realloc(client->pfds, (size_t)(client->node_count + 1) * sizeof(*p));
		if (!p)
			return;
		client->pfds = p;
		client->pfds_cap = client->node_count + 1;
	}
	struct pollfd *pfds = client->pfds;
	int map[CLIENT_NODES_MAX + 1];
	nfds_t n = 0;
	pfds[n].fd = client->wake_fd;
	pfds[n].events = POLLIN;
	pfds[n].revents = 0;
	map[n++] = -1;
	for (int i = 0; i < client->node_count; i++) {
		struct client_node *node = client->nodes[i];
		if (node->fd == -1)
			continue;
		pfds[n].fd = node->fd;
		pfds[n].events = POLLIN;
		if (node->state == CONN_TLS)
			pfds[n].events = node->transport.want_write ? POLLOUT : POLLIN;
		else if (node->state == CONN_CONNECTING || node->out_pos < node->out.len ||
			 node->transport.want_write) /* a TLS read may wait on a write */
			pfds[n].events |= POLLOUT;
		pfds[n].revents = 0;
		map[n++] = i;
	}
	int rc = poll(pfds, n, client_poll_timeout(client, timeout_ms));
	if (rc > 0) {
		for (nfds_t i = 0; i < n; i++) {
			if (!pfds[i].revents)
				continue;
			if (map[i] == -1) {
				uint64_t v;
				ssize_t r = read(client->wake_fd, &v, sizeof(v));
				TL_UNUSED(r);
				continue;
			}
			struct client_node *node = client->nodes[map[i]];
			if (node->fd != pfds[i].fd)
				continue; /* closed by a callback meanwhile */
			if (node->state == CONN_CONNECTING) {
				node_connected(client, node);
				if (node->fd == -1 || node->state == CONN_TLS)
					continue;
			}
			if (node->state == CONN_TLS) {
				node_tls(client, node);
				if (node->fd == -1 || node->state == CONN_TLS)
					continue;
			}
			if (pfds[i].revents & (POLLOUT | POLLERR | POLLHUP))
				node_write(client, node, true);
			bool tls_read = node->transport.want_write && (pfds[i].revents & POLLOUT);
			if (node->fd != -1 &&
			    (tls_read || (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))))
				node_read(client, node);
		}
	}
	client_expire(client);
	int64_t now = tl_mono_ns();
	for (int i = 0; i < client->node_count; i++)
		node_reauth_maybe(client, client->nodes[i], now);
	metadata_maybe_request(client);
}

tl_err tl_client_want_topic(struct tl_client *client, const char *topic)
{
	for (int32_t i = 0; i < client->wanted_count; i++)
		if (strcmp(client->wanted[i], topic) == 0)
			return TL_OK;
	char **wanted =
		realloc(client->wanted, (size_t)(client->wanted_count + 1) * sizeof(char *));
	if (!wanted)
		return TL_ERR_NOMEM;
	client->wanted = wanted;
	client->wanted[client->wanted_count] = strdup(topic);
	if (!client->wanted[client->wanted_count])
		return TL_ERR_NOMEM;
	client->wanted_count++;
	client->metadata_wanted = true;
	return TL_OK;
}

void tl_client_metadata_request(struct tl_client *client)
{
	client->metadata_wanted = true;
}

uint64_t tl_client_metadata_version(const struct tl_client *client)
{
	return client->metadata_version;
}

const struct tl_client_topic *tl_client_topic(const struct tl_client *client, const char *topic)
{
	for (int32_t i = 0; i < client->topic_count; i++)
		if (strcmp(client->topics[i].name, topic) == 0)
			return &client->topics[i];
	return NULL;
}

const struct tl_client_topic *tl_client_topics(const struct tl_client *client, int32_t *count_out)
{
	*count_out = client->topic_count;
	return client->topics;
}

int32_t tl_client_leader(const struct tl_client *client, const char *topic, int32_t partition)
{
	const struct tl_client_topic *t = tl_client_topic(client, topic);
	if (!t || partition < 0 || partition >= t->partition_count)
		return -1;
	return t->partitions[partition].leader_id;
}

int32_t tl_client_leader_epoch(const struct tl_client *client, const char *topic, int32_t partition)
{
	const struct tl_client_topic *t = tl_client_topic(client, topic);
	if (!t || partition < 0 || partition >= t->partition_count)
		return -1;
	return t->partitions[partition].leader_epoch;
}

int32_t tl_client_controller(const struct tl_client *client)
{
	return client->controller_id;
}

tl_err tl_client_broker_add(struct tl_client *client, int32_t node_id, const char *host,
			    int32_t host_len, int32_t port)
{
	struct client_node *node = node_find(client, node_id);
	if (!node)
		return node_add(client, node_id, host, (size_t)host_len, port);
	if (node->port == port && strlen(node->host) == (size_t)host_len &&
	    memcmp(node->host, host, (size_t)host_len) == 0)
		return TL_OK;
	char *h = strndup(host, (size_t)host_len);
	if (!h)
		return TL_ERR_NOMEM;
	node_close(client, node, TL_ERR_NETWORK_EXCEPTION, "broker address changed");
	free(node->host);
	node->host = h;
	node->port = port;
	return TL_OK;
}

struct metadata_encode_arg {
	const struct tl_client *client;
	bool all;
};

static void metadata_encode(struct tl_buf *body, int16_t version, const void *varg)
{
	const struct metadata_encode_arg *arg = varg;
	const struct tl_client *client = arg->client;
	if (arg->all) {
		tl_buf_array_len(body, -1, false);
	} else {
		tl_buf_array_len(body, client->wanted_count, false);
		for (int32_t i = 0; i < client->wanted_count; i++)
			tl_buf_string(body, tl_str_of(client->wanted[i]), false);
	}
	if (version >= 4)
		tl_buf_i8(body, client->allow_auto_create_topics ? 1 : 0);
	if (version >= 8) {
		tl_buf_i8(body, 0); /* include_cluster_authorized_operations */
		tl_buf_i8(body, 0); /* include_topic_authorized_operations */
	}
}

/* Decodes one topic of a Metadata response into @topic (owned by the caller). */
static void metadata_decode_topic(struct tl_cursor *c, int16_t version,
				  struct tl_client_topic *topic)
{
	memset(topic, 0, sizeof(*topic));
	topic->error = tl_cursor_i16(c);
	topic->name = tl_client_strdup(tl_cursor_string(c, false, false));
	topic->is_internal = tl_cursor_i8(c) != 0;
	int32_t count = tl_cursor_array_len(c, false, false, CLIENT_PARTITIONS_MAX);
	if (!topic->name || c->failed) {
		tl_cursor_fail(c);
		return;
	}
	struct tl_client_partition *parts = calloc((size_t)count + 1, sizeof(*parts));
	if (!parts) {
		tl_cursor_fail(c);
		return;
	}
	int32_t max_index = -1;
	for (int32_t i = 0; i < count && !c->failed; i++) {
		struct tl_client_partition p = {0};
		p.error = tl_cursor_i16(c);
		p.index = tl_cursor_i32(c);
		p.leader_id = tl_cursor_i32(c);
		p.leader_epoch = version >= 7 ? tl_cursor_i32(c) : -1;
		p.replica_count = tl_cursor_array_len(c, false, false, 10000);
		tl_cursor_skip(c, (size_t)p.replica_count * 4);
		p.isr_count = tl_cursor_array_len(c, false, false, 10000);
		tl_cursor_skip(c, (size_t)p.isr_count * 4);
		if (version >= 5) {
			int32_t offline = tl_cursor_array_len(c, false, false, 10000);
			tl_cursor_skip(c, (size_t)offline * 4);
		}
		if (p.index < 0 || p.index >= count) {
			tl_cursor_fail(c); /* indexes must be 0..count-1 */
			break;
		}
		parts[p.index] = p;
		max_index = TL_MAX(max_index, p.index);
	}
	if (version >= 8)
		(void)tl_cursor_i32(c); /* topic_authorized_operations */
	topic->partitions = parts;
	topic->partition_count = c->failed ? 0 : count;
}

/* Replaces or adds @topic in the cache; takes its memory. */
static void metadata_store_topic(struct tl_client *client, struct tl_client_topic *topic)
{
	for (int32_t i = 0; i < client->topic_count; i++) {
		if (strcmp(client->topics[i].name, topic->name) == 0) {
			topic_free(&client->topics[i]);
			client->topics[i] = *topic;
			return;
		}
	}
	struct tl_client_topic *topics =
		realloc(client->topics, (size_t)(client->topic_count + 1) * sizeof(*topics));
	if (!topics) {
		topic_free(topic);
		return;
	}
	client->topics = topics;
	client->topics[client->topic_count++] = *topic;
}

static tl_err metadata_apply(struct tl_client *client, struct tl_cursor *c, int16_t version,
			     bool all)
{
	if (version >= 3)
		(void)tl_cursor_i32(c); /* throttle_time_ms */
	int32_t broker_count = tl_cursor_array_len(c, false, false, CLIENT_NODES_MAX);
	for (int32_t i = 0; i < broker_count && !c->failed; i++) {
		int32_t node_id = tl_cursor_i32(c);
		struct tl_str host = tl_cursor_string(c, false, false);
		int32_t port = tl_cursor_i32(c);
		(void)tl_cursor_string(c, false, true); /* rack */
		if (!c->failed && node_id >= 0)
			(void)tl_client_broker_add(client, node_id, host.ptr, host.len, port);
	}
	if (version >= 2)
		(void)tl_cursor_string(c, false, true); /* cluster_id */
	int32_t controller_id = tl_cursor_i32(c);
	int32_t topic_count = tl_cursor_array_len(c, false, false, CLIENT_TOPICS_MAX);
	if (c->failed)
		return TL_ERR_CORRUPT_MESSAGE;
	client->controller_id = controller_id;
	if (all) {
		for (int32_t i = 0; i < client->topic_count; i++)
			topic_free(&client->topics[i]);
		client->topic_count = 0;
	}
	for (int32_t i = 0; i < topic_count && !c->failed; i++) {
		struct tl_client_topic topic;
		metadata_decode_topic(c, version, &topic);
		if (c->failed) {
			topic_free(&topic);
			break;
		}
		metadata_store_topic(client, &topic);
	}
	client->metadata_version++;
	return c->failed ? TL_ERR_CORRUPT_MESSAGE : TL_OK;
}

static void metadata_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct tl_client *client = arg;
	client->metadata_in_flight = false;
	if (err != TL_OK || metadata_apply(client, body, version, false) != TL_OK) {
		client->metadata_wanted = true;
		return;
	}
	/* Refresh soon while some wanted topic has no leader yet. */
	for (int32_t i = 0; i < client->wanted_count; i++) {
		const struct tl_client_topic *t = tl_client_topic(client, client->wanted[i]);
		bool ok = t && t->error == 0 && t->partition_count > 0;
		for (int32_t p = 0; ok && p < t->partition_count; p++)
			ok = t->partitions[p].leader_id >= 0;
		if (!ok) {
			client->metadata_next_ns = tl_mono_ns() + 100 * 1000000LL;
			return;
		}
	}
	client->metadata_next_ns = tl_mono_ns() + (int64_t)client->metadata_max_age_ms * 1000000;
}

static void metadata_maybe_request(struct tl_client *client)
{
	if (client->metadata_in_flight || client->wanted_count == 0)
		return;
	if (!client->metadata_wanted && tl_mono_ns() < client->metadata_next_ns)
		return;
	int32_t node_id = tl_client_any_ready_node(client);
	if (node_id == TL_CLIENT_NODE_ANY)
		return;
	int16_t version = tl_client_api_version(client, node_id, TL_CLIENT_API_METADATA);
	if (version < 0)
		return;
	struct tl_buf body;
	tl_buf_init(&body);
	struct metadata_encode_arg arg = {client, false};
	metadata_encode(&body, version, &arg);
	if (tl_client_send(client, node_id, TL_CLIENT_API_METADATA, version, &body, true,
			   metadata_done, client) == TL_OK) {
		client->metadata_in_flight = true;
		client->metadata_wanted = false;
	}
	tl_buf_deinit(&body);
}

tl_err tl_client_metadata_refresh_sync(struct tl_client *client, bool all, int timeout_ms)
{
	struct tl_buf resp;
	tl_buf_init(&resp);
	int16_t version;
	struct metadata_encode_arg arg = {client, all};
	tl_err err = tl_client_call(client, TL_CLIENT_NODE_ANY, TL_CLIENT_API_METADATA,
				    metadata_encode, &arg, timeout_ms, &resp, &version);
	if (err == TL_OK) {
		struct tl_cursor c;
		tl_cursor_init(&c, resp.data, resp.len);
		err = metadata_apply(client, &c, version, all);
	}
	tl_buf_deinit(&resp);
	return err;
}

/* ---- blocking calls ---- */

struct call_state {
	bool done;
	tl_err err;
	struct tl_buf *response;
};

static void call_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct call_state *state = arg;
	TL_UNUSED(version);
	state->done = true;
	state->err = err;
	if (err == TL_OK && body) {
		tl_buf_put(state->response, body->pos, tl_cursor_left(body));
		if (state->response->failed)
			state->err = TL_ERR_NOMEM;
	}
}

/* tl_client_call() and tl_client_call_try(): waits up to @connect_timeout_ms for
 * @node_id (or any node) to be READY, ending the wait at once when @fail_fast and a
 * connection attempt to @node_id fails meanwhile; the request, once sent, has its own
 * deadline of @request_timeout_ms. */
static tl_err client_call(struct tl_client *client, int32_t node_id, int16_t api_key,
			  tl_client_encode_fn encode, const void *arg, int connect_timeout_ms,
			  int32_t request_timeout_ms, bool fail_fast, struct tl_buf *response,
			  int16_t *version_out)
{
	int64_t deadline = tl_mono_ns() + (int64_t)connect_timeout_ms * 1000000;
	const struct client_node *node =
		node_id == TL_CLIENT_NODE_ANY ? NULL : node_find(client, node_id);
	uint32_t failures = node ? node->failures : 0;
	int32_t target = node_id;
	for (;;) {
		if (node_id == TL_CLIENT_NODE_ANY)
			target = tl_client_any_ready_node(client);
		if (target != TL_CLIENT_NODE_ANY && tl_client_node_ready(client, target))
			break;
		if (client->sasl_failed != TL_OK)
			return client->sasl_failed;
		if (fail_fast && node && node->failures != failures)
			return TL_ERR_NETWORK_EXCEPTION;
		if (tl_mono_ns() >= deadline)
			return TL_ERR_TIMED_OUT;
		tl_client_poll(client, 20);
	}
	int16_t version = tl_client_api_version(client, target, api_key);
	if (version < 0)
		return TL_ERR_UNSUPPORTED_VERSION;
	struct tl_buf body;
	tl_buf_init(&body);
	encode(&body, version, arg);
	struct call_state state = {false, TL_OK, response};
	tl_err err = tl_client_send_timeout(client, target, api_key, version, &body, true,
					    request_timeout_ms, call_done, &state);
	tl_buf_deinit(&body);
	if (err != TL_OK)
		return err;
	while (!state.done)
		tl_client_poll(client, 100); /* the request's deadline ends the wait */
	if (version_out)
		*version_out = version;
	return state.err;
}

tl_err tl_client_call(struct tl_client *client, int32_t node_id, int16_t api_key,
		      tl_client_encode_fn encode, const void *arg, int timeout_ms,
		      struct tl_buf *response, int16_t *version_out)
{
	/* The request keeps its own deadline (request.timeout.ms); @timeout_ms only
	 * bounds how long we wait to send. */
	return client_call(client, node_id, api_key, encode, arg, timeout_ms,
			   client->request_timeout_ms, false, response, version_out);
}

tl_err tl_client_call_try(struct tl_client *client, int32_t node_id, int16_t api_key,
			  tl_client_encode_fn encode, const void *arg, int connect_timeout_ms,
			  int timeout_ms, struct tl_buf *response, int16_t *version_out)
{
	return client_call(client, node_id, api_key, encode, arg, connect_timeout_ms,
			   TL_MAX(TL_MIN(timeout_ms, client->request_timeout_ms), 1), true,
			   response, version_out);
}

void tl_client_node_backoff(struct tl_client *client, int32_t node_id, int backoff_ms)
{
	struct client_node *node = node_find(client, node_id);
	int64_t until = tl_mono_ns() + (int64_t)backoff_ms * 1000000;
	if (node && node->state == CONN_DOWN && node->retry_at_ns < until)
		node->retry_at_ns = until;
}

bool tl_client_node_is_backing_off(const struct tl_client *client, int32_t node_id)
{
	const struct client_node *node = node_find(client, node_id);
	return node && node->state == CONN_DOWN && tl_mono_ns() < node->retry_at_ns;
}
