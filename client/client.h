/* client.h - the client core of libtally, the interface of client/, shared by the producer,
 * the consumer and the admin client: configuration (conf.h), the export macro (export.h)
 * and the connection layer:
 * bootstrap, one nonblocking TCP connection per broker, request/response plumbing with
 * pipelining, ApiVersions negotiation and the cluster metadata cache.
 *
 * Model: a tl_client is driven by exactly one thread, which calls tl_client_poll() in a
 * loop (the producer's I/O thread; the consumer's and admin's caller thread). Only
 * tl_client_wakeup() may be called from other threads. Response callbacks run inside
 * tl_client_poll().
 *
 * Wire versions: the client speaks non-flexible versions of each API (request header
 * v1, response header v0), choosing per API the highest version both it and the broker
 * support; DescribeProducers, DescribeTransactions and ListTransactions exist only as
 * flexible versions, sent with request header v2 and read with response header v1, as are
 * TxnOffsetCommit v3, OffsetFetch v6-7 and OffsetForLeaderEpoch v4. The ranges are
 * in client.c's `client_apis`. When protocol/messages.h (the generated codec) is complete these
 * hand-written encoders can move onto it.
 *
 * Connection states: DOWN -> CONNECTING -> HANDSHAKE (ApiVersions v0 in flight) -> READY;
 * any error -> DOWN, with reconnect.backoff.ms before the next try. Requests are sent
 * only on READY connections; every request in flight on a connection that goes DOWN
 * completes with TL_ERR_NETWORK_EXCEPTION (retriable). */
#ifndef TL_CLIENT_CLIENT_H
#define TL_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "client/conf.h"
#include "client/export.h"
#include "common/buf.h"
#include "tally/error.h"

/* API keys the clients use. */
enum tl_client_api {
	TL_CLIENT_API_PRODUCE = 0,
	TL_CLIENT_API_FETCH = 1,
	TL_CLIENT_API_LIST_OFFSETS = 2,
	TL_CLIENT_API_METADATA = 3,
	TL_CLIENT_API_OFFSET_COMMIT = 8,
	TL_CLIENT_API_OFFSET_FETCH = 9,
	TL_CLIENT_API_FIND_COORDINATOR = 10,
	TL_CLIENT_API_JOIN_GROUP = 11,
	TL_CLIENT_API_HEARTBEAT = 12,
	TL_CLIENT_API_LEAVE_GROUP = 13,
	TL_CLIENT_API_SYNC_GROUP = 14,
	TL_CLIENT_API_DESCRIBE_GROUPS = 15,
	TL_CLIENT_API_LIST_GROUPS = 16,
	TL_CLIENT_API_API_VERSIONS = 18,
	TL_CLIENT_API_CREATE_TOPICS = 19,
	TL_CLIENT_API_DELETE_TOPICS = 20,
	TL_CLIENT_API_DELETE_RECORDS = 21,
	TL_CLIENT_API_INIT_PRODUCER_ID = 22,
	TL_CLIENT_API_OFFSET_FOR_LEADER_EPOCH = 23,
	TL_CLIENT_API_ADD_PARTITIONS_TO_TXN = 24,
	TL_CLIENT_API_ADD_OFFSETS_TO_TXN = 25,
	TL_CLIENT_API_END_TXN = 26,
	TL_CLIENT_API_WRITE_TXN_MARKERS = 27,
	TL_CLIENT_API_TXN_OFFSET_COMMIT = 28,
	TL_CLIENT_API_DESCRIBE_ACLS = 29,
	TL_CLIENT_API_CREATE_ACLS = 30,
	TL_CLIENT_API_DELETE_ACLS = 31,
	TL_CLIENT_API_DESCRIBE_LOG_DIRS = 35,
	TL_CLIENT_API_CREATE_PARTITIONS = 37,
	TL_CLIENT_API_DELETE_GROUPS = 42,
	TL_CLIENT_API_INCREMENTAL_ALTER_CONFIGS = 44,
	TL_CLIENT_API_DESCRIBE_CLIENT_QUOTAS = 48,
	TL_CLIENT_API_ALTER_CLIENT_QUOTAS = 49,
	TL_CLIENT_API_DESCRIBE_USER_SCRAM_CREDENTIALS = 50,
	TL_CLIENT_API_ALTER_USER_SCRAM_CREDENTIALS = 51,
	TL_CLIENT_API_DESCRIBE_PRODUCERS = 61,
	TL_CLIENT_API_DESCRIBE_TRANSACTIONS = 65,
	TL_CLIENT_API_LIST_TRANSACTIONS = 66,
};
#define TL_CLIENT_API_KEY_MAX 80 /* keys below this are tracked */

#define TL_CLIENT_NODE_ANY  INT32_MIN   /* tl_client_call: any ready broker */
#define TL_CLIENT_FRAME_MAX (128 << 20) /* largest response frame accepted, bytes */

struct tl_conf;

struct tl_client_conf {
	const struct tl_conf *conf;    /* the user's keys: ssl.* (security.protocol=ssl|sasl_ssl) */
	const char *bootstrap_servers; /* "host:port[,host:port...]" */
	const char *client_id;
	int32_t request_timeout_ms;
	int32_t reconnect_backoff_ms;
	int32_t metadata_max_age_ms;
	bool allow_auto_create_topics;
	/* librdkafka's security.protocol (NULL = plaintext), sasl.mechanisms,
	 * sasl.username, sasl.password. */
	const char *security_protocol;
	const char *sasl_mechanism;
	const char *sasl_username;
	const char *sasl_password;
};

/* librdkafka's security keys, in every client's key table (producer, consumer, admin);
 * fill tl_client_conf's fields from them with TL_CLIENT_CONF_SECURITY. */
#define TL_CLIENT_SECURITY_KEYS                                                                    \
	{"security.protocol",                                                                      \
	 TL_CONF_ENUM,                                                                             \
	 "plaintext",                                                                              \
	 0,                                                                                        \
	 0,                                                                                        \
	 "plaintext|ssl|sasl_plaintext|sasl_ssl",                                                  \
	 NULL},                                                                                    \
		{"ssl.ca.location", TL_CONF_STR, NULL, 0, 0, NULL, NULL},                          \
		{"ssl.certificate.location", TL_CONF_STR, NULL, 0, 0, NULL, NULL},                 \
		{"ssl.key.location", TL_CONF_STR, NULL, 0, 0, NULL, NULL},                         \
		{"ssl.key.password", TL_CONF_STR, NULL, 0, 0, NULL, NULL},                         \
		{"enable.ssl.certificate.verification", TL_CONF_BOOL, "true", 0, 0, NULL, NULL},   \
		{"sasl.mechanisms", TL_CONF_STR, NULL, 0, 0, NULL, NULL},                          \
		{"sasl.mechanism", TL_CONF_STR, NULL, 0, 0, NULL, NULL},                           \
		{"sasl.username", TL_CONF_STR, NULL, 0, 0, NULL, NULL},                            \
	{                                                                                          \
		"sasl.password", TL_CONF_STR, NULL, 0, 0, NULL, NULL                               \
	}
#define TL_CLIENT_CONF_SECURITY(conf)                                                              \
	.security_protocol = tl_conf_str((conf), "security.protocol"),                             \
	.sasl_mechanism = tl_conf_str((conf), "sasl.mechanisms")                                   \
				  ? tl_conf_str((conf), "sasl.mechanisms")                         \
				  : tl_conf_str((conf), "sasl.mechanism"),                         \
	.sasl_username = tl_conf_str((conf), "sasl.username"),                                     \
	.sasl_password = tl_conf_str((conf), "sasl.password")

struct tl_client_partition {
	int32_t index;
	int16_t error;
	int32_t leader_id; /* -1 = none */
	int32_t leader_epoch;
	int32_t replica_count;
	int32_t isr_count;
};

struct tl_client_topic {
	char *name;
	int16_t error;
	bool is_internal;
	int32_t partition_count;
	struct tl_client_partition *partitions; /* sorted by index, 0..count-1 */
};

/* Called with the response body (after the correlation id), or err != TL_OK and a
 * NULL cursor when the request failed locally (timeout, disconnect). */
typedef void (*tl_client_response_fn)(void *arg, tl_err err, struct tl_cursor *body,
				      int16_t version);

struct tl_client;

/* Parses the bootstrap list; connects lazily. Writes a message to @errstr on error. */
tl_err tl_client_create(const struct tl_client_conf *conf, struct tl_client **out, char *errstr,
			size_t errstr_size);
/* Fails every request in flight (callbacks run) and frees the client. */
void tl_client_destroy(struct tl_client *client);

/* Runs I/O for up to @timeout_ms (0 = do what is ready, don't wait). Thread: owner. */
void tl_client_poll(struct tl_client *client, int timeout_ms);
/* Makes a blocked tl_client_poll() return early. Any thread. */
void tl_client_wakeup(struct tl_client *client);

/* True when @node_id's connection is READY; otherwise starts connecting. */
bool tl_client_node_ready(struct tl_client *client, int32_t node_id);
/* Any READY node, connecting to one if none is; TL_CLIENT_NODE_ANY if none yet. */
int32_t tl_client_any_ready_node(struct tl_client *client);
/* The same, but the first READY broker after @after in the client's order, round robin
 * (@after TL_CLIENT_NODE_ANY or unknown: from the first): a question that one broker
 * cannot answer yet (FindCoordinator answered COORDINATOR_NOT_AVAILABLE by a broker
 * that cannot vouch for its view) goes to the next one at the retry, as Kafka's
 * clients ask their least loaded node. The first learned broker after @after that is
 * down starts connecting, for the retry. Bootstrap entries only when no broker learned
 * from metadata is READY. */
int32_t tl_client_next_ready_node(struct tl_client *client, int32_t after);
/* The version to use for @api_key on @node_id, or -1 when the node does not support any
 * version this client speaks (or is not READY). */
int16_t tl_client_api_version(struct tl_client *client, int32_t node_id, int16_t api_key);
/* Requests in flight on @node_id. */
int tl_client_in_flight(struct tl_client *client, int32_t node_id);

/* Sends a request whose body is @body to a READY @node_id. @fn runs once with the
 * response (or the failure). With !@expect_response (Produce acks=0) @fn runs as soon as
 * the request is queued, with a NULL cursor. Returns TL_ERR_AGAIN if the node is not
 * ready (then @fn is not called). */
tl_err tl_client_send(struct tl_client *client, int32_t node_id, int16_t api_key, int16_t version,
		      const struct tl_buf *body, bool expect_response, tl_client_response_fn fn,
		      void *arg);
/* Same with its own deadline instead of request.timeout.ms (JoinGroup waits for the
 * whole group, up to the rebalance timeout). */
tl_err tl_client_send_timeout(struct tl_client *client, int32_t node_id, int16_t api_key,
			      int16_t version, const struct tl_buf *body, bool expect_response,
			      int32_t timeout_ms, tl_client_response_fn fn, void *arg);

/* The same without a copy of the body: tl_client_frame_begin() starts the request's
 * frame in @node_id's output and returns the buffer to append the body to (NULL when
 * the node is not READY); tl_client_frame_end() finishes and sends it like
 * tl_client_send() (a failed buffer makes it return TL_ERR_NOMEM and takes the frame
 * back). Nothing else may use the client between the two calls. */
struct tl_buf *tl_client_frame_begin(struct tl_client *client, int32_t node_id, int16_t api_key,
				     int16_t version);
tl_err tl_client_frame_end(struct tl_client *client, int32_t node_id, bool expect_response,
			   tl_client_response_fn fn, void *arg);
/* Inside a response callback only (NULL elsewhere): hands the callback the memory that
 * holds the response being dispatched. Every pointer its cursor yields stays valid
 * until the caller free()s what this returns, so records can be kept without a copy
 * (the consumer's fetched batches). The client reads its next frame into new memory. */
void *tl_client_response_take(struct tl_client *client);
/* Bytes queued for @node_id that its socket has not taken yet (backpressure for requests
 * without a response). */
size_t tl_client_unsent(struct tl_client *client, int32_t node_id);

/* Blocking request helper for the consumer and admin (drives tl_client_poll itself):
 * waits for @node_id (or any node) to be ready, encodes the body with @encode at the
 * negotiated version, sends, and waits for the response, whose body is copied into
 * @response (caller-initialized). *version_out gets the version used. Returns
 * TL_ERR_TIMED_OUT, TL_ERR_UNSUPPORTED_VERSION (no common version), network errors. */
typedef void (*tl_client_encode_fn)(struct tl_buf *body, int16_t version, const void *arg);
tl_err tl_client_call(struct tl_client *client, int32_t node_id, int16_t api_key,
		      tl_client_encode_fn encode, const void *arg, int timeout_ms,
		      struct tl_buf *response, int16_t *version_out);

/* One bounded try, for a caller that sends the request elsewhere when a broker fails
 * (the admin client): tl_client_call() that waits at most @connect_timeout_ms for
 * @node_id's connection and returns TL_ERR_NETWORK_EXCEPTION as soon as an attempt to
 * connect to it fails (TL_ERR_TIMED_OUT when it is still not ready); the request, once
 * sent, waits at most @timeout_ms (request.timeout.ms if less): its deadline closes the
 * connection and returns TL_ERR_REQUEST_TIMED_OUT, as request.timeout.ms does. */
tl_err tl_client_call_try(struct tl_client *client, int32_t node_id, int16_t api_key,
			  tl_client_encode_fn encode, const void *arg, int connect_timeout_ms,
			  int timeout_ms, struct tl_buf *response, int16_t *version_out);
/* Keeps @node_id's connection down for @backoff_ms (longer than reconnect.backoff.ms)
 * when it is down now: no attempt to connect to it before, and tl_client_any_ready_node()
 * passes it over meanwhile. */
void tl_client_node_backoff(struct tl_client *client, int32_t node_id, int backoff_ms);
/* True while @node_id's connection is down and waits out its backoff. */
bool tl_client_node_is_backing_off(const struct tl_client *client, int32_t node_id);

/* ---- requests by table row (request.c) ---- */

/* Decodes a response body at @version into @response (storage from @arena). */
typedef tl_err (*tl_client_decode_fn)(struct tl_cursor *cursor, int16_t version,
				      struct tl_arena *arena, void *response);

/* One API of the request table in request.c: how to encode its request and decode its
 * response with the generated codec. The producer's transactions and the admin client
 * send through these rows; a new API is a new row. */
struct tl_client_rpc {
	int16_t api_key;
	const char *name; /* Kafka's name, for messages: "CreateTopics" */
	tl_client_encode_fn encode;
	tl_client_decode_fn decode;
	size_t response_bytes; /* sizeof the decoded response struct */
};

/* The row for @api_key. Asserts that the table has one: asking for a missing row is a
 * bug in libtally, not a peer's fault. */
const struct tl_client_rpc *tl_client_rpc_find(int16_t api_key);

/* Blocking: tl_client_call() with @rpc's encoder, then decodes the response into
 * *@response_out. The response and the bytes it points into are allocated from @arena
 * (the caller's), so they live until the caller deinits it.
 * *@version_out (may be NULL) gets the version used. Returns TL_ERR_CORRUPT_MESSAGE when
 * the response does not decode, TL_ERR_NOMEM, or what tl_client_call() returns. */
tl_err tl_client_rpc_call(struct tl_client *client, int32_t node_id,
			  const struct tl_client_rpc *rpc, const void *request, int timeout_ms,
			  struct tl_arena *arena, void **response_out, int16_t *version_out);
/* The same through tl_client_call_try(). */
tl_err tl_client_rpc_try(struct tl_client *client, int32_t node_id, const struct tl_client_rpc *rpc,
			 const void *request, int connect_timeout_ms, int timeout_ms,
			 struct tl_arena *arena, void **response_out, int16_t *version_out);

/* Runs once with the decoded response (borrowed for the call), or with err != TL_OK and
 * a NULL response: the request failed locally (timeout, disconnect), the response did not
 * decode (TL_ERR_CORRUPT_MESSAGE) or memory ran out (TL_ERR_NOMEM). */
typedef void (*tl_client_rpc_done_fn)(void *arg, tl_err err, const void *response);

/* Asynchronous: encodes @request (borrowed for the call) at the version negotiated with
 * READY @node_id and sends it; @fn runs inside tl_client_poll(), its response decoded
 * into an arena of at most @arena_bytes_max bytes. Returns TL_ERR_UNSUPPORTED_VERSION
 * when the node speaks no version of the API that libtally does, TL_ERR_AGAIN when it is
 * not READY, TL_ERR_NOMEM; then @fn is not called. Thread: owner. */
tl_err tl_client_rpc_send(struct tl_client *client, int32_t node_id,
			  const struct tl_client_rpc *rpc, const void *request,
			  size_t arena_bytes_max, tl_client_rpc_done_fn fn, void *arg);

/* ---- metadata ---- */

/* Adds @topic to the topics the client keeps metadata for (refreshes soon if new). */
tl_err tl_client_want_topic(struct tl_client *client, const char *topic);
/* Asks for a refresh of the wanted topics at the next poll. */
void tl_client_metadata_request(struct tl_client *client);
/* Blocking refresh of all topics (@all) or of the wanted ones. */
tl_err tl_client_metadata_refresh_sync(struct tl_client *client, bool all, int timeout_ms);
/* Increases whenever new metadata arrives. */
uint64_t tl_client_metadata_version(const struct tl_client *client);
/* The cached topic, or NULL. Valid until the next tl_client_poll(). */
const struct tl_client_topic *tl_client_topic(const struct tl_client *client, const char *topic);
/* All cached topics (after a refresh with @all). */
const struct tl_client_topic *tl_client_topics(const struct tl_client *client, int32_t *count_out);
/* Leader of @topic/@partition, or -1 when unknown. */
int32_t tl_client_leader(const struct tl_client *client, const char *topic, int32_t partition);
/* Its leader epoch as Metadata last told it (v7+), or -1 when unknown. */
int32_t tl_client_leader_epoch(const struct tl_client *client, const char *topic,
			       int32_t partition);
int32_t tl_client_controller(const struct tl_client *client);
/* Adds or updates a broker address learned outside Metadata (FindCoordinator). */
tl_err tl_client_broker_add(struct tl_client *client, int32_t node_id, const char *host,
			    int32_t host_len, int32_t port);
/* A description of the last connection failure, for error messages ("" if none). */
const char *tl_client_last_error(const struct tl_client *client);

/* Copies a wire string into a NUL-terminated malloc'd string (NULL on OOM or null). */
char *tl_client_strdup(struct tl_str str);

#endif
