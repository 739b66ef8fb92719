/* rawproto.c - a Kafka client that writes raw frames, for broker conformance tests.
 *   rawproto BROKER dedupe TOPIC             idempotent producer rules, on the wire
 *   rawproto BROKER restart-write TOPIC      two idempotent batches; prints the pid
 *   rawproto BROKER restart-check TOPIC PID  after a restart, their retries dedupe
 *   rawproto BROKER compact-write TOPIC N    N idempotent batches on keys k0-k3 (batch b:
 *                                            values p<b>-0..3, seq 4b); prints the pid
 *   rawproto BROKER compact-check TOPIC PID N live|restarted[-next]
 *                                            after compaction removed older batches of
 *                                            that producer: retries dedupe with their
 *                                            original offsets, a gap is refused
 *   rawproto BROKER txn-open TOPIC TXN_ID    opens a transaction (timeout 3 s) with one
 *                                            batch in it on a new TOPIC, checks that a
 *                                            read_committed Fetch stops before it, and
 *                                            leaves; prints "PID EPOCH"
 *   rawproto BROKER txn-fenced TOPIC TXN_ID PID EPOCH
 *                                            after the coordinator aborted that transaction:
 *                                            the old epoch is fenced (Produce, EndTxn) and
 *                                            a new InitProducerId gets a bumped epoch
 *   rawproto BROKER pids N                   N idempotent InitProducerIds; prints each pid
 *   rawproto BROKER badinput [SEED]          hostile frames, then a clean round trip
 *   rawproto BROKER bad-records TOPIC        batches with a right CRC but lying records: a
 *                                            corrupt zstd/gzip body (CORRUPT_MESSAGE), a
 *                                            recordsCount above the records (INVALID_RECORD),
 *                                            a wrong offsetDelta (INVALID_RECORD); after a
 *                                            good 3-record batch, the end offset stays 3
 *   rawproto BROKER describe-broker ID       DescribeConfigs v4 of broker resource ID;
 *                                            prints "error CODE configs N"
 *   rawproto BROKER list-offsets TOPIC       ListOffsets v8 special timestamps: -1, -2,
 *                                            -3 (max timestamp, KIP-734), -4 (local
 *                                            log start) and a time inside a batch
 *   rawproto BROKER leader-epoch TOPIC EPOCH  Fetch and ListOffsets of TOPIC-0 on its
 *                                            leader at EPOCH: served; at EPOCH-1
 *                                            FENCED_LEADER_EPOCH; at EPOCH+1
 *                                            UNKNOWN_LEADER_EPOCH
 *   rawproto BROKER isr-wait TOPIC LEADER TIMEOUT_MS LAG_MS
 *                                            on TOPIC-0's leader, followers paused: a
 *                                            Produce past TIMEOUT_MS gets
 *                                            REQUEST_TIMED_OUT; a Metadata request behind
 *                                            a waiting Produce is answered with the ISR
 *                                            of its answer time (see run_isr_wait)
 *   rawproto BROKER not-leader TOPIC         Produce and Fetch of TOPIC-0 on a follower:
 *                                            NOT_LEADER_OR_FOLLOWER
 *   rawproto BROKER pipeline TOPIC N WAIT_MS  N pipelined Produce (acks=1), then N
 *                                            pipelined Fetch at the log end that wait
 *                                            out WAIT_MS (request time split, #18)
 *   rawproto BROKER delete-records TOPIC PARTITION OFFSET [TIMEOUT_MS]
 *                                            one DeleteRecords v1 on BROKER itself (no
 *                                            routing to the leader, unlike librdkafka;
 *                                            timeout_ms 10000 unless given); prints
 *                                            "error CODE low-watermark N"
 *   rawproto BROKER metadata TOPIC VERSION   one Metadata request at VERSION (1..12) for
 *                                            TOPIC; prints "broker ID HOST:PORT" for each
 *                                            broker, then "partition I leader L error E"
 *   rawproto BROKER hold-member GROUP SESSION_MS SECONDS
 *                                            joins GROUP on BROKER (its coordinator) as
 *                                            its one member and heartbeats every 500 ms
 *                                            for SECONDS: NOT_COORDINATOR is counted and
 *                                            waited out, any other error fails (the
 *                                            member's session was lost); prints
 *                                            "heartbeats ok N not-coordinator M
 *                                            ok-after K unavailable U" (K: answered
 *                                            after the last refusal; U: refusals after
 *                                            which FindCoordinator and ListGroups were
 *                                            COORDINATOR_NOT_AVAILABLE too)
 *   rawproto BROKER pid-expiry TOPIC write|restarted|crash-write|crash-retry [PID EPOCH [BASE]]
 *                                            producer.id.expiration.ms and its check
 *                                            interval (run_pid_expiry)
 *   rawproto BROKER batches-whole TOPIC    a partition takes a request's batches all or
 *                                            none (run_batches_whole)
 *   rawproto BROKER timestamps CT_TOPIC LAT_TOPIC  batch timestamps as Kafka's
 *                                            LogValidator sets them (run_timestamps)
 *   rawproto BROKER txn-bump TXN_ID          KIP-360 epoch bumps by a running instance,
 *                                            a retried one, a fenced one (run_txn_bump)
 *   rawproto BROKER txn-ids TOPIC TXN_ID     a transaction's batches need its own id in
 *                                            the Produce request (run_txn_ids)
 *   rawproto BROKER authorized-ops TOPIC GROUP  the authorized_operations bit fields of
 *                                            Metadata, DescribeCluster, DescribeGroups
 *                                            (run_authorized_ops; RAWPROTO_CLIENT_ID
 *                                            sets the client.id)
 *   rawproto BROKER group-rules TOPIC PREFIX  group coordinator rules (run_group_rules):
 *                                            group.max.size with KIP-394 ids, the
 *                                            initial delay of an emptied group, a
 *                                            member parked in SyncGroup, staged
 *                                            transaction offsets and the expiry check
 *   rawproto BROKER offset-fetch GROUP TOPIC PARTITION
 *                                            one OffsetFetch v7 (require_stable) sent
 *                                            straight to BROKER, no FindCoordinator;
 *                                            prints "committed N" or "error NAME"
 *   rawproto seeds REQUEST_DIR BATCH_DIR [BROKER_DIR]
 *                                           seed corpora for tests/fuzz/ targets
 * Requests are built with the generated codec (protocol/messages.h) and batches with
 * protocol/records.h, so every byte sent is chosen here, wrong ones included.
 * Exits 0 when the broker behaved as Kafka does; otherwise prints one FAIL line saying
 * what differed and exits 1. badinput expects auto.create.topics.enable=false and the
 * default socket.request.max.bytes and message.max.bytes. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/time.h"
#include "protocol/api.h"
#include "protocol/batch.h"
#include "protocol/messages.h"
#include "protocol/records.h"
#include "rawclient.h"
#include "tally/error.h"

#define IO_TIMEOUT_MS      15000       /* one request's answer, fsync included */
#define RESPONSE_BYTES_MAX (64u << 20) /* larger answers mean a framing bug */
#define ARENA_BYTES_MAX    (64u << 20)
#define FETCH_BYTES_MAX    (32 << 20)
#define STORED_VALUE_MAX   64 /* bytes of each fetched value kept for checks */
#define GARBAGE_ROUNDS     400
#define GARBAGE_WAIT_MS    30        /* how long a garbage frame may take to be answered */
#define GARBAGE_HISTORY    16        /* frames remembered to explain a broker death */
#define REQUEST_MAX_BYTES  104857600 /* socket.request.max.bytes default */
#define MESSAGE_MAX_BYTES  1048588   /* message.max.bytes default */

static const char *broker_addr;

/* ---- reporting ---- */

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fputs("rawproto: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	fputs("rawproto: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void expect_code(const char *what, int got, int want)
{
	if (got != want)
		fail("%s: error code %d (%s), expected %d (%s)", what, got,
		     tl_err_name((tl_err)got), want, tl_err_name((tl_err)want));
}

/* xorshift64*: the garbage frames are a function of the seed. */
static uint64_t rng_state = 1;
static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}
static uint32_t rng_below(uint32_t n)
{
	return n ? (uint32_t)(rng_next() % n) : 0;
}

/* ---- connection (rawclient.h; here every failure but a closed peer fails the run) ---- */

struct client {
	int fd;
	int32_t correlation_id;
};

static int connect_fd(void)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", broker_addr);
	char *colon = strrchr(host, ':');
	if (!colon)
		fail("broker address \"%s\" is not HOST:PORT", broker_addr);
	*colon = '\0';
	const char *call = NULL;
	int gai = 0;
	int fd = raw_connect(host, colon + 1, -1, &call, &gai);
	if (fd == -1 && gai != 0)
		fail("getaddrinfo %s: %s", broker_addr, gai_strerror(gai));
	if (fd == -1 && strcmp(call, "socket") == 0)
		fail("socket: %s", strerror(errno));
	return fd;
}

static void client_open(struct client *c)
{
	c->fd = connect_fd();
	if (c->fd == -1)
		fail("cannot connect to %s: %s (broker dead?)", broker_addr, strerror(errno));
	c->correlation_id = 1;
}

static void client_close(struct client *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

/* False when the peer has closed (EPIPE, ECONNRESET). */
static bool send_all(int fd, const void *data, size_t len)
{
	enum raw_io io = raw_send_all(fd, data, len);
	if (io == RAW_IO_ERROR)
		fail("send: %s", strerror(errno));
	return io == RAW_IO_OK;
}

static enum raw_io recv_exact(int fd, uint8_t *p, size_t len, int timeout_ms)
{
	const char *call = NULL;
	enum raw_io io = raw_recv_exact(fd, p, len, tl_mono_ms() + timeout_ms, &call);
	if (io == RAW_IO_ERROR)
		fail("%s: %s", call, strerror(errno));
	return io;
}

/* The broker must close the connection (Kafka's answer to a frame it cannot serve). */
static void expect_closed(struct client *c, const char *what)
{
	uint8_t byte;
	enum raw_io io = recv_exact(c->fd, &byte, 1, IO_TIMEOUT_MS);
	if (io == RAW_IO_OK)
		fail("%s: the broker answered; expected it to close the connection", what);
	if (io == RAW_IO_TIMEOUT)
		fail("%s: the connection stayed open %d ms; expected the broker to close it", what,
		     IO_TIMEOUT_MS);
	client_close(c);
}

/* ---- requests and responses ---- */

/* The client.id of requests made with request_begin(): RAWPROTO_CLIENT_ID, for the
 * broker's test-only principal hook, or "rawproto". */
static const char *client_id = "rawproto";

static int32_t request_begin(struct client *c, struct tl_buf *frame, int16_t key, int16_t version)
{
	return raw_request_begin(frame, &c->correlation_id, client_id, key, version);
}

static void request_finish(struct tl_buf *frame)
{
	if (!raw_request_finish(frame))
		fail("out of memory encoding a request");
}

static bool request_send(struct client *c, struct tl_buf *frame)
{
	request_finish(frame);
	return send_all(c->fd, frame->data, frame->len);
}

static enum raw_io reply_recv(struct client *c, int16_t key, int16_t version,
			      int32_t correlation_id, struct raw_reply *r)
{
	uint8_t size[4];
	memset(r, 0, sizeof(*r));
	enum raw_io io = recv_exact(c->fd, size, 4, IO_TIMEOUT_MS);
	if (io != RAW_IO_OK)
		return io;
	uint32_t len = tl_be32_get(size);
	if (len < 4 || len > RESPONSE_BYTES_MAX)
		fail("api %d: response size %" PRIu32 " out of range", key, len);
	uint8_t *frame = malloc(len);
	if (!frame)
		fail("out of memory");
	io = recv_exact(c->fd, frame, len, IO_TIMEOUT_MS);
	if (io != RAW_IO_OK)
		fail("api %d: response of %" PRIu32 " bytes cut short", key, len);
	int32_t got = -1;
	if (!raw_reply_open(r, frame, len, key, version, &got))
		fail("api %d v%d: response header does not decode", key, version);
	if (got != correlation_id)
		fail("api %d v%d: correlation id %d, expected %d (answers out of order?)", key,
		     version, got, correlation_id);
	tl_arena_init(&r->arena, ARENA_BYTES_MAX);
	return RAW_IO_OK;
}

static void reply_must(struct client *c, int16_t key, int16_t version, int32_t correlation_id,
		       struct raw_reply *r)
{
	enum raw_io io = reply_recv(c, key, version, correlation_id, r);
	if (io == RAW_IO_CLOSED)
		fail("api %d v%d: the broker closed the connection instead of answering", key,
		     version);
	if (io == RAW_IO_TIMEOUT)
		fail("api %d v%d: no answer within %d ms", key, version, IO_TIMEOUT_MS);
}

/* Sends the request in @frame (begun with request_begin, which gave @correlation_id),
 * frees it and waits for its answer; fails the run naming @what if either goes wrong. */
static void roundtrip(struct client *c, struct tl_buf *frame, int16_t key, int16_t version,
		      int32_t correlation_id, const char *what, struct raw_reply *r)
{
	if (!request_send(c, frame))
		fail("%s: connection closed while sending", what);
	tl_buf_deinit(frame);
	reply_must(c, key, version, correlation_id, r);
}

static void decoded(tl_err err, const struct raw_reply *r, const char *what)
{
	if (err != TL_OK)
		fail("%s response does not decode (%s)", what, tl_err_name(err));
	if (tl_cursor_left(&r->body) != 0)
		fail("%s response has %zu bytes left over after decoding", what,
		     tl_cursor_left(&r->body));
}

/* ---- API calls ---- */

static void encode_api_versions(struct client *c, struct tl_buf *frame, int16_t version,
				int32_t *corr)
{
	struct tl_api_versions_request msg;
	tl_api_versions_request_defaults(&msg);
	msg.client_software_name = tl_str_of("rawproto");
	msg.client_software_version = tl_str_of("1.0");
	*corr = request_begin(c, frame, TL_API_API_VERSIONS, version);
	tl_api_versions_request_encode(frame, version, &msg);
}

/* ApiVersions v3 must answer with no error and advertise Produce v9 and Fetch v12.
 * Returns the first Kafka API (in protocol/messages.h's table) the broker does not
 * advertise, or -1 when it serves them all. */
static int16_t check_api_versions(struct client *c, const char *when)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr;
	encode_api_versions(c, &frame, 3, &corr);
	if (!request_send(c, &frame))
		fail("ApiVersions %s: connection closed while sending", when);
	tl_buf_deinit(&frame);
	struct raw_reply r;
	reply_must(c, TL_API_API_VERSIONS, 3, corr, &r);
	struct tl_api_versions_response resp;
	decoded(tl_api_versions_response_decode(&r.body, 3, &r.arena, &resp), &r, "ApiVersions");
	expect_code("ApiVersions", resp.error_code, 0);
	bool produce = false, fetch = false;
	for (int32_t i = 0; i < resp.api_keys_count; i++) {
		const struct tl_api_versions_response_api_version *k = &resp.api_keys[i];
		produce |= k->api_key == TL_API_PRODUCE && k->max_version >= 9;
		fetch |= k->api_key == TL_API_FETCH && k->max_version >= 12;
	}
	if (!produce || !fetch)
		fail("ApiVersions %s: Produce v9 or Fetch v12 not advertised", when);
	int16_t unserved = -1;
	for (int i = 0; i < tl_api_spec_count && unserved < 0; i++) {
		bool served = false;
		for (int32_t k = 0; k < resp.api_keys_count; k++)
			served |= resp.api_keys[k].api_key == tl_api_specs[i].key;
		if (!served)
			unserved = tl_api_specs[i].key;
	}
	raw_reply_free(&r);
	return unserved;
}

static int16_t create_topic(struct client *c, const char *name, int32_t partitions)
{
	struct tl_create_topics_request_creatable_topic topic;
	tl_create_topics_request_creatable_topic_defaults(&topic);
	topic.name = tl_str_of(name);
	topic.num_partitions = partitions;
	topic.replication_factor = 1;
	topic.assignments_count = 0;
	topic.configs_count = 0;
	struct tl_create_topics_request msg;
	tl_create_topics_request_defaults(&msg);
	msg.topics_count = 1;
	msg.topics = &topic;
	msg.timeout_ms = 10000;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_CREATE_TOPICS, 7);
	tl_create_topics_request_encode(&frame, 7, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_CREATE_TOPICS, 7, corr, "CreateTopics", &r);
	struct tl_create_topics_response resp;
	decoded(tl_create_topics_response_decode(&r.body, 7, &r.arena, &resp), &r, "CreateTopics");
	if (resp.topics_count != 1)
		fail("CreateTopics: %d topic results, expected 1", resp.topics_count);
	int16_t code = resp.topics[0].error_code;
	raw_reply_free(&r);
	return code;
}

static void ensure_topic(struct client *c, const char *name, int32_t partitions)
{
	int16_t code = create_topic(c, name, partitions);
	if (code != 0 && code != TL_ERR_TOPIC_ALREADY_EXISTS)
		fail("CreateTopics %s: error %d (%s)", name, code, tl_err_name((tl_err)code));
}

/* InitProducerId v4 for @txn_id (NULL: idempotent only) with @timeout_ms, naming the
 * instance it was (@pid, @epoch: KIP-360; -1 and -1 for none); returns the error code,
 * the answer in @pid_out and @epoch_out. */
static int16_t init_producer_id_with(struct client *c, const char *txn_id, int32_t timeout_ms,
				     int64_t pid, int16_t epoch, int64_t *pid_out,
				     int16_t *epoch_out)
{
	struct tl_init_producer_id_request msg;
	tl_init_producer_id_request_defaults(&msg);
	msg.transactional_id = txn_id ? tl_str_of(txn_id) : (struct tl_str){NULL, -1};
	msg.transaction_timeout_ms = timeout_ms;
	msg.producer_id = pid;
	msg.producer_epoch = epoch;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_INIT_PRODUCER_ID, 4);
	tl_init_producer_id_request_encode(&frame, 4, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_INIT_PRODUCER_ID, 4, corr, "InitProducerId", &r);
	struct tl_init_producer_id_response resp;
	decoded(tl_init_producer_id_response_decode(&r.body, 4, &r.arena, &resp), &r,
		"InitProducerId");
	*pid_out = resp.producer_id;
	*epoch_out = resp.producer_epoch;
	int16_t code = resp.error_code;
	raw_reply_free(&r);
	return code;
}

static int16_t init_producer_id_as(struct client *c, const char *txn_id, int64_t pid, int16_t epoch,
				   int64_t *pid_out, int16_t *epoch_out)
{
	return init_producer_id_with(c, txn_id, 60000, pid, epoch, pid_out, epoch_out);
}

static void init_producer_id_for(struct client *c, const char *txn_id, int32_t timeout_ms,
				 int64_t *pid_out, int16_t *epoch_out)
{
	expect_code("InitProducerId",
		    init_producer_id_with(c, txn_id, timeout_ms, -1, -1, pid_out, epoch_out), 0);
	if (*pid_out < 0 || *epoch_out < 0)
		fail("InitProducerId: producer id %" PRId64 " epoch %d", *pid_out, *epoch_out);
}

/* KIP-360 bumps of @txn_id's epoch by its running instance, as Kafka answers them: a
 * bump naming the current epoch bumps; a retry naming the epoch before the last bump
 * (its answer lost) gets the current epoch again, no second bump; an older epoch is
 * PRODUCER_FENCED; a producer id without an epoch is INVALID_REQUEST. And ListTransactions
 * names the state filters it does not know. */
static int run_txn_bump(const char *txn_id)
{
	struct client c;
	client_open(&c);
	int64_t pid, got_pid;
	int16_t epoch, got;
	init_producer_id_for(&c, txn_id, 60000, &pid, &epoch);
	expect_code("InitProducerId naming the current epoch",
		    init_producer_id_as(&c, txn_id, pid, epoch, &got_pid, &got), 0);
	if (got_pid != pid || got != epoch + 1)
		fail("a bump of epoch %d gave producer %" PRId64 " epoch %d", epoch, got_pid, got);
	expect_code("the same InitProducerId again (its answer lost)",
		    init_producer_id_as(&c, txn_id, pid, epoch, &got_pid, &got), 0);
	if (got_pid != pid || got != epoch + 1)
		fail("a retried bump of epoch %d gave producer %" PRId64 " epoch %d, want epoch %d "
		     "again",
		     epoch, got_pid, got, epoch + 1);
	expect_code("InitProducerId naming the new epoch",
		    init_producer_id_as(&c, txn_id, pid, (int16_t)(epoch + 1), &got_pid, &got), 0);
	if (got != epoch + 2)
		fail("a bump of epoch %d gave epoch %d", epoch + 1, got);
	expect_code("InitProducerId naming an epoch two bumps old",
		    init_producer_id_as(&c, txn_id, pid, epoch, &got_pid, &got),
		    TL_ERR_PRODUCER_FENCED);
	expect_code("InitProducerId with a producer id and no epoch",
		    init_producer_id_as(&c, txn_id, pid, -1, &got_pid, &got),
		    TL_ERR_INVALID_REQUEST);
	/* ListTransactions echoes a state filter naming no state (UnknownStateFilters). */
	struct tl_str filters[2] = {tl_str_of("Bogus"), tl_str_of("Ongoing")};
	struct tl_list_transactions_request lt;
	tl_list_transactions_request_defaults(&lt);
	lt.state_filters = filters;
	lt.state_filters_count = 2;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(&c, &frame, TL_API_LIST_TRANSACTIONS, 1);
	tl_list_transactions_request_encode(&frame, 1, &lt);
	struct raw_reply r;
	roundtrip(&c, &frame, TL_API_LIST_TRANSACTIONS, 1, corr, "ListTransactions", &r);
	struct tl_list_transactions_response resp;
	decoded(tl_list_transactions_response_decode(&r.body, 1, &r.arena, &resp), &r,
		"ListTransactions");
	expect_code("ListTransactions", resp.error_code, 0);
	if (resp.unknown_state_filters_count != 1 ||
	    !tl_str_eq_c(resp.unknown_state_filters[0], "Bogus"))
		fail("ListTransactions with state filters Bogus and Ongoing: %d unknown filters, "
		     "want Bogus alone",
		     resp.unknown_state_filters_count);
	raw_reply_free(&r);
	client_close(&c);
	printf("txn-bump: ok\n");
	return 0;
}

static void init_producer_id(struct client *c, int64_t *pid_out, int16_t *epoch_out)
{
	init_producer_id_for(c, NULL, 60000, pid_out, epoch_out);
}

/* Encodes a Produce of @len bytes of records to one partition into @frame. */
/* The transactional.id Produce requests carry (NULL: none); set by the txn-* modes. */
static const char *produce_txn_id;
static int32_t produce_timeout_ms = 10000; /* the Produce requests' timeout_ms */

static int32_t encode_produce(struct client *c, struct tl_buf *frame, int16_t version, int16_t acks,
			      const char *topic, int32_t partition, const uint8_t *data, size_t len)
{
	return raw_encode_produce(frame, &c->correlation_id, "rawproto", version, produce_txn_id,
				  acks, produce_timeout_ms, topic, partition, data, len);
}

static int32_t produce_send(struct client *c, int16_t version, int16_t acks, const char *topic,
			    int32_t partition, const struct tl_buf *batch)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr =
		encode_produce(c, &frame, version, acks, topic, partition, batch->data, batch->len);
	if (!request_send(c, &frame))
		fail("Produce: connection closed while sending");
	tl_buf_deinit(&frame);
	return corr;
}

/* Reads one single-partition Produce answer; returns its error code. */
static int64_t produce_log_append_time; /* the last Produce answer's log_append_time_ms */

static int16_t produce_recv(struct client *c, int16_t version, int32_t corr, const char *topic,
			    int32_t partition, int64_t *base_offset_out)
{
	struct raw_reply r;
	reply_must(c, TL_API_PRODUCE, version, corr, &r);
	struct tl_produce_response resp;
	decoded(tl_produce_response_decode(&r.body, version, &r.arena, &resp), &r, "Produce");
	if (resp.responses_count != 1 || resp.responses[0].partition_responses_count != 1)
		fail("Produce: expected one topic with one partition in the answer");
	if (!tl_str_eq_c(resp.responses[0].name, topic))
		fail("Produce: answer names topic \"%.*s\", expected \"%s\"",
		     resp.responses[0].name.len, resp.responses[0].name.ptr, topic);
	const struct tl_produce_response_partition_produce_response *p =
		&resp.responses[0].partition_responses[0];
	if (p->index != partition)
		fail("Produce: answer for partition %d, expected %d", p->index, partition);
	int16_t code = p->error_code;
	*base_offset_out = p->base_offset;
	produce_log_append_time = p->log_append_time_ms;
	if (code == 0 && p->base_offset < 0)
		fail("Produce: no error but base offset %" PRId64, p->base_offset);
	raw_reply_free(&r);
	return code;
}

static int16_t produce(struct client *c, int16_t version, const char *topic, int32_t partition,
		       const struct tl_buf *batch, int64_t *base_offset_out)
{
	int32_t corr = produce_send(c, version, -1, topic, partition, batch);
	return produce_recv(c, version, corr, topic, partition, base_offset_out);
}

/* ---- batches ---- */

/* A batch of @count records whose values are "<prefix>-<i>". */
/* Whether build_batch() marks its batches transactional; set by the txn-* modes. */
static bool batch_transactional;
/* With N > 0, build_batch() gives record i the key "k<i % N>" (a compacted topic
 * refuses keyless records); 0: null keys. Set by the compact-* modes. */
static int32_t batch_key_count;

static void build_batch(struct tl_buf *out, const char *prefix, int32_t count,
			enum tl_compression compression, int64_t pid, int16_t epoch, int32_t seq)
{
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, compression);
	int64_t now = tl_wall_ms();
	for (int32_t i = 0; i < count; i++) {
		char value[STORED_VALUE_MAX];
		int n = snprintf(value, sizeof(value), "%s-%d", prefix, i);
		char key_text[16];
		struct tl_bytes key = {NULL, -1};
		if (batch_key_count > 0) {
			key.len = snprintf(key_text, sizeof(key_text), "k%d", i % batch_key_count);
			key.ptr = (const uint8_t *)key_text;
		}
		struct tl_bytes v = {(const uint8_t *)value, n};
		if (tl_records_builder_append(&builder, now, key, v, NULL, 0) != TL_OK)
			fail("builder append failed");
	}
	if (pid >= 0)
		tl_records_builder_set_producer(&builder, pid, epoch, seq, batch_transactional);
	tl_buf_init(out);
	tl_err err = tl_records_builder_finish(&builder, NULL, out);
	if (err != TL_OK)
		fail("builder finish: %s", tl_err_name(err));
	tl_records_builder_deinit(&builder);
}

/* A batch of @count records "<prefix>-<i>" whose timestamps are @timestamps_ms. */
static void build_batch_at(struct tl_buf *out, const char *prefix, int32_t count,
			   const int64_t *timestamps_ms)
{
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, TL_COMPRESSION_NONE);
	for (int32_t i = 0; i < count; i++) {
		char value[STORED_VALUE_MAX];
		int n = snprintf(value, sizeof(value), "%s-%d", prefix, i);
		struct tl_bytes key = {NULL, -1};
		struct tl_bytes v = {(const uint8_t *)value, n};
		if (tl_records_builder_append(&builder, timestamps_ms[i], key, v, NULL, 0) != TL_OK)
			fail("builder append failed");
	}
	tl_buf_init(out);
	tl_err err = tl_records_builder_finish(&builder, NULL, out);
	if (err != TL_OK)
		fail("builder finish: %s", tl_err_name(err));
	tl_records_builder_deinit(&builder);
}

/* ---- fetching ---- */

struct stored {
	int64_t offset;
	int64_t batch_base_offset;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t sequence;
	char value[STORED_VALUE_MAX + 1]; /* NUL-terminated prefix of the value */
	int32_t value_len;
};

struct stored_list {
	struct stored *items;
	size_t count;
	size_t cap;
	int64_t high_watermark;
};

static void stored_push(struct stored_list *list, const struct tl_batch_header *batch,
			const struct tl_record *record)
{
	if (list->count == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 256;
		list->items = realloc(list->items, list->cap * sizeof(*list->items));
		if (!list->items)
			fail("out of memory");
	}
	struct stored *s = &list->items[list->count++];
	memset(s, 0, sizeof(*s));
	s->offset = record->offset;
	s->batch_base_offset = batch->base_offset;
	s->producer_id = batch->producer_id;
	s->producer_epoch = batch->producer_epoch;
	s->sequence = record->sequence;
	s->value_len = record->value.len;
	if (record->value.len > 0) {
		size_t n = (size_t)record->value.len;
		if (n > STORED_VALUE_MAX)
			n = STORED_VALUE_MAX;
		memcpy(s->value, record->value.ptr, n);
	}
}

/* Whether fetch_all() accepts offset holes (a compacted log); set by compact-*. */
static bool fetch_holes;

/* The isolation level of Fetch requests: 0 read_uncommitted, 1 read_committed. */
static int8_t fetch_isolation;
/* The current_leader_epoch of Fetch requests (-1: none, as a client without KIP-320). */
static int32_t fetch_leader_epoch = -1;
/* The Fetch's min_bytes and max_bytes encode_fetch sends (1 and FETCH_BYTES_MAX). */
static int32_t fetch_min_bytes = 1;
static int32_t fetch_max_bytes = FETCH_BYTES_MAX;

static int32_t encode_fetch(struct client *c, struct tl_buf *frame, int16_t version,
			    const char *topic, int32_t partition, int64_t offset, int32_t wait_ms)
{
	struct tl_fetch_request_fetch_partition fp;
	tl_fetch_request_fetch_partition_defaults(&fp);
	fp.partition = partition;
	fp.current_leader_epoch = fetch_leader_epoch;
	fp.fetch_offset = offset;
	fp.last_fetched_epoch = -1;
	fp.log_start_offset = -1;
	fp.partition_max_bytes = FETCH_BYTES_MAX;
	struct tl_fetch_request_fetch_topic ft;
	tl_fetch_request_fetch_topic_defaults(&ft);
	ft.topic = tl_str_of(topic);
	ft.partitions_count = 1;
	ft.partitions = &fp;
	struct tl_fetch_request msg;
	tl_fetch_request_defaults(&msg);
	msg.replica_id = -1;
	msg.max_wait_ms = wait_ms;
	msg.min_bytes = fetch_min_bytes;
	msg.max_bytes = fetch_max_bytes;
	msg.isolation_level = fetch_isolation;
	msg.session_id = 0;
	msg.session_epoch = -1;
	msg.topics_count = 1;
	msg.topics = &ft;
	msg.forgotten_topics_data_count = 0;
	msg.rack_id = tl_str_of("");
	int32_t corr = request_begin(c, frame, TL_API_FETCH, version);
	tl_fetch_request_encode(frame, version, &msg);
	return corr;
}

/* Appends the records of one fetched blob at or after @offset to @list; returns the
 * next offset to fetch. Every batch's CRC is checked. */
static int64_t collect_records(const struct tl_records *records, int64_t offset,
			       struct stored_list *list)
{
	if (records->len <= 0)
		return offset;
	struct tl_records_iter iter;
	tl_records_iter_init(&iter, records->ptr, (size_t)records->len);
	iter.verify_crc = true;
	struct tl_batch_header h;
	tl_err err;
	while ((err = tl_records_iter_next_batch(&iter, &h, NULL, NULL)) == TL_OK) {
		struct tl_record rec;
		while ((err = tl_records_iter_next(&iter, &rec)) == TL_OK) {
			if (rec.offset < offset)
				continue;
			if (rec.offset != offset && offset >= 0 && !fetch_holes)
				fail("fetched record at offset %" PRId64 ", expected %" PRId64
				     " (gap or disorder in the log)",
				     rec.offset, offset);
			stored_push(list, &h, &rec);
			offset = rec.offset + 1;
		}
		if (err != TL_ERR_NOT_FOUND)
			fail("fetched batch at %" PRId64 " has a bad record: %s", h.base_offset,
			     tl_err_name(err));
		if (tl_batch_last_offset(&h) + 1 > offset)
			offset = tl_batch_last_offset(&h) + 1;
	}
	if (err != TL_ERR_NOT_FOUND)
		fail("fetched data does not parse as record batches: %s", tl_err_name(err));
	tl_records_iter_deinit(&iter);
	return offset;
}

/* Reads the whole partition from offset 0 up to its high watermark. */
static void fetch_all(struct client *c, const char *topic, int32_t partition,
		      struct stored_list *list)
{
	memset(list, 0, sizeof(*list));
	int64_t offset = 0;
	struct tl_buf frame;
	tl_buf_init(&frame);
	for (int round = 0;; round++) {
		if (round > 10000)
			fail("Fetch %s-%d: no end after 10000 rounds", topic, partition);
		int32_t corr = encode_fetch(c, &frame, 12, topic, partition, offset, 0);
		if (!request_send(c, &frame))
			fail("Fetch: connection closed while sending");
		struct raw_reply r;
		reply_must(c, TL_API_FETCH, 12, corr, &r);
		struct tl_fetch_response resp;
		decoded(tl_fetch_response_decode(&r.body, 12, &r.arena, &resp), &r, "Fetch");
		expect_code("Fetch", resp.error_code, 0);
		if (resp.responses_count != 1 || resp.responses[0].partitions_count != 1)
			fail("Fetch: expected one topic with one partition in the answer");
		const struct tl_fetch_response_partition_data *p = &resp.responses[0].partitions[0];
		expect_code("Fetch partition", p->error_code, 0);
		list->high_watermark = p->high_watermark;
		int64_t next = collect_records(&p->records, offset, list);
		raw_reply_free(&r);
		if (next >= list->high_watermark)
			break;
		if (next == offset)
			fail("Fetch %s-%d at %" PRId64
			     ": no progress below high watermark %" PRId64,
			     topic, partition, offset, list->high_watermark);
		offset = next;
	}
	tl_buf_deinit(&frame);
	if (!fetch_holes && (int64_t)list->count != list->high_watermark)
		fail("Fetch %s-%d: %zu records below high watermark %" PRId64, topic, partition,
		     list->count, list->high_watermark);
}

static void stored_free(struct stored_list *list)
{
	free(list->items);
	memset(list, 0, sizeof(*list));
}

/* Checks that records [@from, @from + @count) of @list are "<prefix>-0".. in order. */
static void expect_values(const struct stored_list *list, size_t from, const char *prefix,
			  int32_t count)
{
	for (int32_t i = 0; i < count; i++) {
		char want[STORED_VALUE_MAX];
		snprintf(want, sizeof(want), "%s-%d", prefix, i);
		size_t at = from + (size_t)i;
		if (at >= list->count)
			fail("log ends at %zu records; expected \"%s\" at offset %zu", list->count,
			     want, at);
		if (strcmp(list->items[at].value, want) != 0)
			fail("offset %" PRId64 " holds \"%s\", expected \"%s\"",
			     list->items[at].offset, list->items[at].value, want);
	}
}

/* ---- dedupe: idempotent producer rules ---- */

static void dedupe_retries(struct client *c, const char *topic, int64_t pid, int16_t epoch)
{
	/* The same batch three times, one after the other: one copy, one offset. */
	struct tl_buf a;
	build_batch(&a, "a", 10, TL_COMPRESSION_NONE, pid, epoch, 0);
	int64_t base_a = -1;
	for (int i = 0; i < 3; i++) {
		int64_t base;
		expect_code("idempotent batch seq 0 (sent again)",
			    produce(c, 9, topic, 0, &a, &base), 0);
		if (i == 0)
			base_a = base;
		else if (base != base_a)
			fail("retry %d of batch seq 0 answered base offset %" PRId64
			     ", the original has %" PRId64,
			     i, base, base_a);
	}
	if (base_a != 0)
		fail("first batch of a new topic got base offset %" PRId64, base_a);
	/* Three copies pipelined on one connection: the retries arrive before the original
	 * is durable, and must still be answered with its offset, in order. */
	struct tl_buf b;
	build_batch(&b, "b", 5, TL_COMPRESSION_ZSTD, pid, epoch, 10);
	int32_t corr[3];
	for (int i = 0; i < 3; i++)
		corr[i] = produce_send(c, 9, -1, topic, 0, &b);
	for (int i = 0; i < 3; i++) {
		int64_t base;
		expect_code("pipelined copy of batch seq 10",
			    produce_recv(c, 9, corr[i], topic, 0, &base), 0);
		if (base != 10)
			fail("pipelined copy %d of batch seq 10 answered base offset %" PRId64
			     ", expected 10",
			     i, base);
	}
	/* An older cached batch (one of the last five) is still a duplicate. */
	int64_t base;
	expect_code("retry of an older cached batch", produce(c, 9, topic, 0, &a, &base), 0);
	if (base != 0)
		fail("retry of batch seq 0 after seq 10 answered base offset %" PRId64, base);
	tl_buf_deinit(&a);
	tl_buf_deinit(&b);

	struct stored_list list;
	fetch_all(c, topic, 0, &list);
	if (list.count != 15)
		fail("after 7 sends of 2 batches the log holds %zu records, expected 15",
		     list.count);
	expect_values(&list, 0, "a", 10);
	expect_values(&list, 10, "b", 5);
	for (size_t i = 0; i < list.count; i++)
		if (list.items[i].producer_id != pid || list.items[i].sequence != (int32_t)i)
			fail("offset %zu: producer %" PRId64 " sequence %d, expected %" PRId64
			     " and %zu",
			     i, list.items[i].producer_id, list.items[i].sequence, pid, i);
	stored_free(&list);
}

static void dedupe_errors(struct client *c, const char *topic, int64_t pid)
{
	int64_t base;
	struct tl_buf batch;
	/* Next expected sequence is 15. */
	build_batch(&batch, "gap", 2, TL_COMPRESSION_NONE, pid, 0, 20);
	expect_code("sequence gap (20 after 14)", produce(c, 9, topic, 0, &batch, &base),
		    TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	tl_buf_deinit(&batch);
	build_batch(&batch, "c", 2, TL_COMPRESSION_NONE, pid, 0, 15);
	expect_code("in-order batch after a refused gap", produce(c, 9, topic, 0, &batch, &base),
		    0);
	if (base != 15)
		fail("batch seq 15 got base offset %" PRId64 ", expected 15", base);
	tl_buf_deinit(&batch);
	/* A higher epoch starts over at sequence 0. */
	build_batch(&batch, "d", 3, TL_COMPRESSION_NONE, pid, 1, 0);
	expect_code("epoch bump to 1 at seq 0", produce(c, 9, topic, 0, &batch, &base), 0);
	if (base != 17)
		fail("epoch 1 batch got base offset %" PRId64 ", expected 17", base);
	tl_buf_deinit(&batch);
	build_batch(&batch, "old", 1, TL_COMPRESSION_NONE, pid, 0, 17);
	expect_code("batch of the fenced epoch 0", produce(c, 9, topic, 0, &batch, &base),
		    TL_ERR_INVALID_PRODUCER_EPOCH);
	tl_buf_deinit(&batch);
	build_batch(&batch, "bump", 1, TL_COMPRESSION_NONE, pid, 2, 5);
	expect_code("epoch bump to 2 at seq 5", produce(c, 9, topic, 0, &batch, &base),
		    TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	tl_buf_deinit(&batch);
}

static void dedupe_new_producer(struct client *c, const char *topic)
{
	int64_t pid, base;
	int16_t epoch;
	init_producer_id(c, &pid, &epoch);
	struct tl_buf batch;
	/* log/producer_state.h: a producer unknown to the partition must start at 0. */
	build_batch(&batch, "unknown", 1, TL_COMPRESSION_NONE, pid, epoch, 7);
	expect_code("new producer id with first sequence 7", produce(c, 9, topic, 0, &batch, &base),
		    TL_ERR_UNKNOWN_PRODUCER_ID);
	tl_buf_deinit(&batch);
	build_batch(&batch, "e", 2, TL_COMPRESSION_NONE, pid, epoch, 0);
	expect_code("new producer id at sequence 0", produce(c, 3, topic, 0, &batch, &base), 0);
	if (base != 20)
		fail("second producer's batch got base offset %" PRId64 ", expected 20", base);
	tl_buf_deinit(&batch);
}

static int run_dedupe(const char *topic)
{
	struct client c;
	client_open(&c);
	check_api_versions(&c, "at start");
	ensure_topic(&c, topic, 1);
	int64_t pid;
	int16_t epoch;
	init_producer_id(&c, &pid, &epoch);
	if (epoch != 0)
		fail("InitProducerId without a transactional id gave epoch %d, expected 0", epoch);
	note("producer id %" PRId64 " epoch %d", pid, epoch);
	dedupe_retries(&c, topic, pid, epoch);
	note("retried batches stored once");
	dedupe_errors(&c, topic, pid);
	note("sequence gap and fenced epoch refused");
	dedupe_new_producer(&c, topic);
	struct stored_list list;
	fetch_all(&c, topic, 0, &list);
	if (list.count != 22)
		fail("log holds %zu records at the end, expected 22", list.count);
	expect_values(&list, 0, "a", 10);
	expect_values(&list, 10, "b", 5);
	expect_values(&list, 15, "c", 2);
	expect_values(&list, 17, "d", 3);
	expect_values(&list, 20, "e", 2);
	for (size_t i = 17; i < 20; i++)
		if (list.items[i].producer_epoch != 1)
			fail("offset %zu: epoch %d, expected 1", i, list.items[i].producer_epoch);
	stored_free(&list);
	client_close(&c);
	note("dedupe: all checks passed");
	return 0;
}

/* ---- restart: producer state survives the broker ---- */

/* Writes batches seq 0 (10 records) and seq 10 (5 records) of a fresh producer to an
 * empty topic and prints the producer id. */
static int run_restart_write(const char *topic)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, topic, 1);
	int64_t pid, base;
	int16_t epoch;
	init_producer_id(&c, &pid, &epoch);
	struct tl_buf batch;
	build_batch(&batch, "ra", 10, TL_COMPRESSION_NONE, pid, epoch, 0);
	expect_code("restart-write seq 0", produce(&c, 9, topic, 0, &batch, &base), 0);
	if (base != 0)
		fail("restart-write: first batch at offset %" PRId64 ", topic not empty?", base);
	tl_buf_deinit(&batch);
	build_batch(&batch, "rb", 5, TL_COMPRESSION_ZSTD, pid, epoch, 10);
	expect_code("restart-write seq 10", produce(&c, 9, topic, 0, &batch, &base), 0);
	tl_buf_deinit(&batch);
	client_close(&c);
	printf("%" PRId64 "\n", pid);
	return 0;
}

/* ---- compact: idempotent producer rules over a compacted topic (issue 17) ---- */

/* Four keys a batch, so each batch supersedes its producer's previous one whole. */
#define COMPACT_KEYS 4

/* Writes @batches batches of a fresh idempotent producer to the compacted @topic
 * (empty): batch b holds "p<b>-0".."p<b>-3" on keys k0-k3, at sequence and offset 4b.
 * Prints the producer id. */
static int run_compact_write(const char *topic, int32_t batches)
{
	batch_key_count = COMPACT_KEYS;
	struct client c;
	client_open(&c);
	int64_t pid, base;
	int16_t epoch;
	init_producer_id(&c, &pid, &epoch);
	for (int32_t b = 0; b < batches; b++) {
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "p%d", b);
		struct tl_buf batch;
		build_batch(&batch, prefix, COMPACT_KEYS, TL_COMPRESSION_NONE, pid, epoch,
			    b * COMPACT_KEYS);
		expect_code("compact-write", produce(&c, 9, topic, 0, &batch, &base), 0);
		if (base != (int64_t)b * COMPACT_KEYS)
			fail("compact-write: batch %d at offset %" PRId64 ", expected %d", b, base,
			     b * COMPACT_KEYS);
		tl_buf_deinit(&batch);
	}
	client_close(&c);
	printf("%" PRId64 "\n", pid);
	return 0;
}

/* Sends batch @b of run_compact_write's producer again; returns the error code and
 * the answered base offset in @base_out. */
static int16_t compact_retry(struct client *c, const char *topic, int64_t pid, int32_t b,
			     int32_t seq, int64_t *base_out)
{
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "p%d", b);
	struct tl_buf batch;
	build_batch(&batch, prefix, COMPACT_KEYS, TL_COMPRESSION_NONE, pid, 0, seq);
	*base_out = -1;
	int16_t code = produce(c, 9, topic, 0, &batch, base_out);
	tl_buf_deinit(&batch);
	return code;
}

/* Fails unless @a and @b hold the same records at the same offsets. */
static void compact_same(const struct stored_list *a, const struct stored_list *b)
{
	if (a->high_watermark != b->high_watermark || a->count != b->count)
		fail("the retries changed the log: %zu records below %" PRId64 " before, %zu "
		     "below %" PRId64 " after",
		     a->count, a->high_watermark, b->count, b->high_watermark);
	for (size_t i = 0; i < a->count; i++)
		if (a->items[i].offset != b->items[i].offset ||
		    strcmp(a->items[i].value, b->items[i].value) != 0)
			fail("the retries changed offset %" PRId64, a->items[i].offset);
}

/* After a compaction pass removed the older batches of run_compact_write's producer
 * @pid (@batches of them): exact retries of its last batch are answered with the
 * original offset and not stored, an older retry is a duplicate or OUT_OF_ORDER (never
 * stored), a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER. @restarted: the broker was
 * restarted since the writes (its producer state came from the compacted log). With
 * @next, then sends the next batch in order and expects it at the log end. */
static int run_compact_check(const char *topic, int64_t pid, int32_t batches, bool restarted,
			     bool next)
{
	batch_key_count = COMPACT_KEYS;
	fetch_holes = true;
	struct client c;
	client_open(&c);
	struct stored_list before;
	fetch_all(&c, topic, 0, &before);
	for (size_t i = 0; i < before.count; i++)
		if (strcmp(before.items[i].value, "p0-0") == 0)
			fail("offset %" PRId64 " still holds p0-0: no compaction pass removed "
			     "the producer's first batch, nothing is tested",
			     before.items[i].offset);
	int32_t last = batches - 1;
	int64_t base;
	for (int i = 0; i < 2; i++) {
		expect_code("exact retry of the producer's last batch",
			    compact_retry(&c, topic, pid, last, last * COMPACT_KEYS, &base), 0);
		if (base != (int64_t)last * COMPACT_KEYS)
			fail("retry of the last batch (seq %d) answered base offset %" PRId64
			     ", the original has %d",
			     last * COMPACT_KEYS, base, last * COMPACT_KEYS);
	}
	/* Batches compacted away: a duplicate while the producer's cache still has it
	 * (no restart: the last five), else OUT_OF_ORDER as in Kafka; never stored. */
	int32_t older[2] = {last - 1, 0};
	for (int i = 0; i < 2; i++) {
		int32_t b = older[i];
		int16_t code = compact_retry(&c, topic, pid, b, b * COMPACT_KEYS, &base);
		if (!restarted && b >= last - 4) {
			expect_code("retry of a cached batch compacted away", code, 0);
			if (base != (int64_t)b * COMPACT_KEYS)
				fail("retry of batch %d answered base offset %" PRId64
				     ", the original has %d",
				     b, base, b * COMPACT_KEYS);
		} else if (code == 0) {
			if (base != (int64_t)b * COMPACT_KEYS)
				fail("retry of compacted batch %d answered base offset %" PRId64
				     ", the original has %d",
				     b, base, b * COMPACT_KEYS);
		} else {
			expect_code("retry of a batch compacted away", code,
				    TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
		}
	}
	expect_code("sequence gap after compaction",
		    compact_retry(&c, topic, pid, batches + 1, (batches + 1) * COMPACT_KEYS, &base),
		    TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	struct stored_list after;
	fetch_all(&c, topic, 0, &after);
	compact_same(&before, &after);
	note("compact: %zu records below %" PRId64 "; retries deduplicated, gap refused%s",
	     after.count, after.high_watermark, restarted ? " (after restart)" : "");
	if (next) {
		expect_code("the next batch in order",
			    compact_retry(&c, topic, pid, batches, batches * COMPACT_KEYS, &base),
			    0);
		if (base != after.high_watermark)
			fail("the next batch got base offset %" PRId64 ", the log end was %" PRId64,
			     base, after.high_watermark);
	}
	stored_free(&before);
	stored_free(&after);
	client_close(&c);
	return 0;
}

/* ---- transactions abandoned and fenced ---- */

static void add_partition_to_txn(struct client *c, const char *txn_id, int64_t pid, int16_t epoch,
				 const char *topic)
{
	int32_t partition = 0;
	struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic topic_msg;
	tl_add_partitions_to_txn_request_add_partitions_to_txn_topic_defaults(&topic_msg);
	topic_msg.name = tl_str_of(topic);
	topic_msg.partitions_count = 1;
	topic_msg.partitions = &partition;
	struct tl_add_partitions_to_txn_request msg;
	tl_add_partitions_to_txn_request_defaults(&msg);
	msg.v3_and_below_transactional_id = tl_str_of(txn_id);
	msg.v3_and_below_producer_id = pid;
	msg.v3_and_below_producer_epoch = epoch;
	msg.v3_and_below_topics_count = 1;
	msg.v3_and_below_topics = &topic_msg;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_ADD_PARTITIONS_TO_TXN, 3);
	tl_add_partitions_to_txn_request_encode(&frame, 3, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_ADD_PARTITIONS_TO_TXN, 3, corr, "AddPartitionsToTxn", &r);
	struct tl_add_partitions_to_txn_response resp;
	decoded(tl_add_partitions_to_txn_response_decode(&r.body, 3, &r.arena, &resp), &r,
		"AddPartitionsToTxn");
	if (resp.results_by_topic_v3_and_below_count != 1 ||
	    resp.results_by_topic_v3_and_below[0].results_by_partition_count != 1)
		fail("AddPartitionsToTxn: expected one topic with one partition in the answer");
	expect_code(
		"AddPartitionsToTxn",
		resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
		0);
	raw_reply_free(&r);
}

/* Sends EndTxn (commit) for @pid/@epoch; returns its error code. */
static int16_t end_txn(struct client *c, const char *txn_id, int64_t pid, int16_t epoch)
{
	struct tl_end_txn_request msg;
	tl_end_txn_request_defaults(&msg);
	msg.transactional_id = tl_str_of(txn_id);
	msg.producer_id = pid;
	msg.producer_epoch = epoch;
	msg.committed = true;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_END_TXN, 3);
	tl_end_txn_request_encode(&frame, 3, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_END_TXN, 3, corr, "EndTxn", &r);
	struct tl_end_txn_response resp;
	decoded(tl_end_txn_response_decode(&r.body, 3, &r.arena, &resp), &r, "EndTxn");
	int16_t code = resp.error_code;
	raw_reply_free(&r);
	return code;
}

static bool is_fenced_code(int16_t code)
{
	return code == TL_ERR_PRODUCER_FENCED || code == TL_ERR_INVALID_PRODUCER_EPOCH;
}

/* A read_committed Fetch of @topic's partition 0 from offset 0, while its first batch
 * (at offset 0) belongs to an open transaction: the broker must stop at the LSO (0) and
 * return no record. A client library hides a broker that serves past the LSO, since it
 * drops such records itself; on the wire it shows. */
static void expect_fetch_stops_at_lso(struct client *c, const char *topic)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	fetch_isolation = 1;
	int32_t corr = encode_fetch(c, &frame, 12, topic, 0, 0, 0);
	fetch_isolation = 0;
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_FETCH, 12, corr, "Fetch", &r);
	struct tl_fetch_response resp;
	decoded(tl_fetch_response_decode(&r.body, 12, &r.arena, &resp), &r, "Fetch");
	if (resp.responses_count != 1 || resp.responses[0].partitions_count != 1)
		fail("Fetch: expected one topic with one partition in the answer");
	const struct tl_fetch_response_partition_data *p = &resp.responses[0].partitions[0];
	expect_code("read_committed Fetch", p->error_code, 0);
	if (p->last_stable_offset != 0)
		fail("read_committed Fetch: last stable offset %" PRId64 " with a transaction open "
		     "at offset 0",
		     p->last_stable_offset);
	if (p->records.len > 0)
		fail("read_committed Fetch returned %d bytes of records past the last stable "
		     "offset 0",
		     p->records.len);
	raw_reply_free(&r);
}

/* Opens a transaction on partition 0 of @topic holding one batch of 10 records, checks
 * that a read_committed Fetch stops before it, and leaves it open: the connection
 * closes with the process. Prints "PID EPOCH". */
static int run_txn_open(const char *topic, const char *txn_id)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, topic, 1);
	int64_t pid;
	int16_t epoch;
	init_producer_id_for(&c, txn_id, 3000, &pid, &epoch);
	add_partition_to_txn(&c, txn_id, pid, epoch, topic);
	produce_txn_id = txn_id;
	batch_transactional = true;
	struct tl_buf batch;
	build_batch(&batch, "abandoned", 10, TL_COMPRESSION_NONE, pid, epoch, 0);
	int64_t base;
	expect_code("Produce in the transaction", produce(&c, 9, topic, 0, &batch, &base), 0);
	tl_buf_deinit(&batch);
	if (base != 0)
		fail("txn-open needs a new topic: the transaction's batch is at offset %" PRId64,
		     base);
	expect_fetch_stops_at_lso(&c, topic);
	printf("%" PRId64 " %d\n", pid, epoch);
	client_close(&c);
	return 0;
}

/* Transactional records need the request's transactional_id (Kafka's
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED without one, with or without an authorizer), and
 * it must be the id whose producer wrote them (INVALID_PRODUCER_ID_MAPPING): else anyone
 * allowed to write the topic could write into another's open transaction. Plain records
 * under an id pass. Then the transaction commits holding only its own batch. */
static int run_txn_ids(const char *topic, const char *txn_id)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, topic, 1);
	int64_t pid;
	int16_t epoch;
	init_producer_id_for(&c, txn_id, 60000, &pid, &epoch);
	add_partition_to_txn(&c, txn_id, pid, epoch, topic);
	struct tl_buf batch;
	int64_t base;
	batch_transactional = true;
	build_batch(&batch, "no-id", 3, TL_COMPRESSION_NONE, pid, epoch, 0);
	produce_txn_id = NULL;
	expect_code("transactional records without a transactional_id",
		    produce(&c, 9, topic, 0, &batch, &base),
		    TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
	tl_buf_deinit(&batch);
	build_batch(&batch, "other-id", 3, TL_COMPRESSION_NONE, pid, epoch, 0);
	produce_txn_id = "rawproto-another-id";
	expect_code("transactional records under another transactional_id",
		    produce(&c, 9, topic, 0, &batch, &base), TL_ERR_INVALID_PRODUCER_ID_MAPPING);
	tl_buf_deinit(&batch);
	batch_transactional = false;
	build_batch(&batch, "plain", 2, TL_COMPRESSION_NONE, -1, -1, -1);
	produce_txn_id = txn_id;
	expect_code("plain records under a transactional_id",
		    produce(&c, 9, topic, 0, &batch, &base), 0);
	tl_buf_deinit(&batch);
	batch_transactional = true;
	build_batch(&batch, "own", 3, TL_COMPRESSION_NONE, pid, epoch, 0);
	expect_code("the transaction's own records", produce(&c, 9, topic, 0, &batch, &base), 0);
	tl_buf_deinit(&batch);
	expect_code("EndTxn commit", end_txn(&c, txn_id, pid, epoch), 0);
	struct stored_list got = {0};
	fetch_all(&c, topic, 0, &got);
	if (got.count != 5)
		fail("txn-ids: the log holds %zu records, want 5 (2 plain, 3 of the transaction)",
		     got.count);
	expect_values(&got, 0, "plain", 2);
	expect_values(&got, 2, "own", 3);
	stored_free(&got);
	client_close(&c);
	printf("txn-ids: ok\n");
	return 0;
}

/* After the coordinator aborted @pid/@epoch's transaction for its timeout: that abort
 * bumped the epoch, so the old one is fenced before any new producer comes, and a new
 * InitProducerId for @txn_id gets the same id with a later epoch than the bumped one. */
static int run_txn_fenced(const char *topic, const char *txn_id, int64_t pid, int16_t epoch)
{
	struct client c;
	client_open(&c);
	produce_txn_id = txn_id;
	batch_transactional = true;
	struct tl_buf batch;
	build_batch(&batch, "zombie", 3, TL_COMPRESSION_NONE, pid, epoch, 10);
	int64_t base;
	int16_t code = produce(&c, 9, topic, 0, &batch, &base);
	tl_buf_deinit(&batch);
	if (!is_fenced_code(code))
		fail("Produce with the aborted transaction's epoch %d: error %d, expected %d or %d "
		     "(PRODUCER_FENCED, INVALID_PRODUCER_EPOCH)",
		     epoch, code, TL_ERR_PRODUCER_FENCED, TL_ERR_INVALID_PRODUCER_EPOCH);
	note("Produce with the old epoch %d: error %d", epoch, code);
	code = end_txn(&c, txn_id, pid, epoch);
	if (!is_fenced_code(code))
		fail("EndTxn with the aborted transaction's epoch %d: error %d, expected %d or %d",
		     epoch, code, TL_ERR_PRODUCER_FENCED, TL_ERR_INVALID_PRODUCER_EPOCH);
	note("EndTxn with the old epoch %d: error %d", epoch, code);
	int64_t new_pid;
	int16_t new_epoch;
	init_producer_id_for(&c, txn_id, 3000, &new_pid, &new_epoch);
	if (new_pid != pid || new_epoch < epoch + 2)
		fail("InitProducerId after the timeout abort: producer %" PRId64
		     " epoch %d, expected "
		     "producer %" PRId64 " with epoch at least %d (bumped by the abort, then by "
		     "this call)",
		     new_pid, new_epoch, pid, epoch + 2);
	note("InitProducerId after the abort: epoch %d (was %d)", new_epoch, epoch);
	client_close(&c);
	return 0;
}

/* AddOffsetsToTxn of @group to @pid/@epoch's transaction; returns its error code. */
static int16_t add_offsets_to_txn(struct client *c, const char *txn_id, int64_t pid, int16_t epoch,
				  const char *group)
{
	struct tl_add_offsets_to_txn_request msg;
	tl_add_offsets_to_txn_request_defaults(&msg);
	msg.transactional_id = tl_str_of(txn_id);
	msg.producer_id = pid;
	msg.producer_epoch = epoch;
	msg.group_id = tl_str_of(group);
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_ADD_OFFSETS_TO_TXN, 3);
	tl_add_offsets_to_txn_request_encode(&frame, 3, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_ADD_OFFSETS_TO_TXN, 3, corr, "AddOffsetsToTxn", &r);
	struct tl_add_offsets_to_txn_response resp;
	decoded(tl_add_offsets_to_txn_response_decode(&r.body, 3, &r.arena, &resp), &r,
		"AddOffsetsToTxn");
	int16_t code = resp.error_code;
	raw_reply_free(&r);
	return code;
}

/* TxnOffsetCommit (v3) of @offset for @topic partition 0 by @member of @generation
 * ("" and -1: a producer outside the group); returns the partition's error code. */
static int16_t txn_offset_commit_as(struct client *c, const char *txn_id, int64_t pid,
				    int16_t epoch, const char *group, const char *topic,
				    int64_t offset, const char *member, int32_t generation)
{
	struct tl_txn_offset_commit_request_txn_offset_commit_request_partition part;
	tl_txn_offset_commit_request_txn_offset_commit_request_partition_defaults(&part);
	part.partition_index = 0;
	part.committed_offset = offset;
	struct tl_txn_offset_commit_request_txn_offset_commit_request_topic topic_msg;
	tl_txn_offset_commit_request_txn_offset_commit_request_topic_defaults(&topic_msg);
	topic_msg.name = tl_str_of(topic);
	topic_msg.partitions_count = 1;
	topic_msg.partitions = &part;
	struct tl_txn_offset_commit_request msg;
	tl_txn_offset_commit_request_defaults(&msg);
	msg.transactional_id = tl_str_of(txn_id);
	msg.group_id = tl_str_of(group);
	msg.producer_id = pid;
	msg.producer_epoch = epoch;
	msg.generation_id = generation;
	msg.member_id = tl_str_of(member);
	msg.topics_count = 1;
	msg.topics = &topic_msg;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_TXN_OFFSET_COMMIT, 3);
	tl_txn_offset_commit_request_encode(&frame, 3, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_TXN_OFFSET_COMMIT, 3, corr, "TxnOffsetCommit", &r);
	struct tl_txn_offset_commit_response resp;
	decoded(tl_txn_offset_commit_response_decode(&r.body, 3, &r.arena, &resp), &r,
		"TxnOffsetCommit");
	if (resp.topics_count != 1 || resp.topics[0].partitions_count != 1)
		fail("TxnOffsetCommit: expected one topic with one partition in the answer");
	int16_t code = resp.topics[0].partitions[0].error_code;
	raw_reply_free(&r);
	return code;
}

static int16_t txn_offset_commit(struct client *c, const char *txn_id, int64_t pid, int16_t epoch,
				 const char *group, const char *topic, int64_t offset)
{
	return txn_offset_commit_as(c, txn_id, pid, epoch, group, topic, offset, "", -1);
}

/* Opens a transaction holding only @group (AddOffsetsToTxn), leaves it open for the
 * test to restart the broker, and prints "PID EPOCH" (eos906). */
static int run_txn_offsets_open(const char *topic, const char *txn_id, const char *group)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, topic, 1);
	int64_t pid;
	int16_t epoch;
	init_producer_id_for(&c, txn_id, 60000, &pid, &epoch);
	expect_code("AddOffsetsToTxn", add_offsets_to_txn(&c, txn_id, pid, epoch, group), 0);
	/* KIP-447 as Kafka checks it: a member the coordinator does not know, or a
	 * generation the group does not have, is refused even though the group has no
	 * members here (chaos 914: a member of a replaced coordinator's group). */
	expect_code(
		"TxnOffsetCommit by a member the coordinator does not know",
		txn_offset_commit_as(&c, txn_id, pid, epoch, group, topic, 3, "ghost-member", 1),
		TL_ERR_UNKNOWN_MEMBER_ID);
	expect_code("TxnOffsetCommit of a generation the group does not have",
		    txn_offset_commit_as(&c, txn_id, pid, epoch, group, topic, 3, "", 4),
		    TL_ERR_ILLEGAL_GENERATION);
	printf("%" PRId64 " %d\n", pid, epoch);
	client_close(&c);
	return 0;
}

/* Sends JoinGroup v5 of @group as @member ("" first: the coordinator answers
 * MEMBER_ID_REQUIRED with the id to use); returns the correlation id for join_recv. */
static int32_t join_send(struct client *c, const char *group, const char *member,
			 const char *instance, int32_t session_ms, int32_t rebalance_ms)
{
	static const uint8_t meta[] = {0,   0,   0,   0,   0,    1,    0,    4,
				       'h', 'e', 'l', 'd', 0xff, 0xff, 0xff, 0xff};
	struct tl_join_group_request_join_group_request_protocol jp;
	tl_join_group_request_join_group_request_protocol_defaults(&jp);
	jp.name = tl_str_of("range");
	jp.metadata.ptr = meta;
	jp.metadata.len = (int32_t)sizeof(meta);
	struct tl_join_group_request jg;
	tl_join_group_request_defaults(&jg);
	jg.group_id = tl_str_of(group);
	jg.session_timeout_ms = session_ms;
	jg.rebalance_timeout_ms = rebalance_ms;
	jg.member_id = tl_str_of(member);
	jg.group_instance_id = instance ? tl_str_of(instance) : (struct tl_str){NULL, -1};
	jg.protocol_type = tl_str_of("consumer");
	jg.protocols_count = 1;
	jg.protocols = &jp;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_JOIN_GROUP, 5);
	tl_join_group_request_encode(&frame, 5, &jg);
	if (!request_send(c, &frame))
		fail("JoinGroup: connection closed while sending");
	tl_buf_deinit(&frame);
	return corr;
}

/* The answer to join_send's request: the error code, the generation, the member id
 * (copied into @member_out) and whether this member leads. */
static int16_t join_recv(struct client *c, int32_t corr, int32_t *generation, char *member_out,
			 size_t size, bool *leader)
{
	struct raw_reply r;
	reply_must(c, TL_API_JOIN_GROUP, 5, corr, &r);
	struct tl_join_group_response resp;
	decoded(tl_join_group_response_decode(&r.body, 5, &r.arena, &resp), &r, "JoinGroup");
	*generation = resp.generation_id;
	snprintf(member_out, size, "%.*s", resp.member_id.len > 0 ? (int)resp.member_id.len : 0,
		 resp.member_id.ptr ? resp.member_id.ptr : "");
	if (leader)
		*leader = resp.member_id.len > 0 && resp.leader.len == resp.member_id.len &&
			  memcmp(resp.leader.ptr, resp.member_id.ptr, (size_t)resp.leader.len) == 0;
	int16_t code = resp.error_code;
	raw_reply_free(&r);
	return code;
}

static int16_t hold_join(struct client *c, const char *group, const char *member,
			 int32_t session_ms, int32_t *generation, char *member_out, size_t size)
{
	return join_recv(c, join_send(c, group, member, NULL, session_ms, session_ms), generation,
			 member_out, size, NULL);
}

/* Sends SyncGroup v5 (no assignments) or Heartbeat v4; returns the correlation id. */
static int32_t group_request_send(struct client *c, int16_t key, const char *group,
				  const char *member, int32_t generation)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr;
	if (key == TL_API_SYNC_GROUP) {
		struct tl_sync_group_request sg;
		tl_sync_group_request_defaults(&sg);
		sg.group_id = tl_str_of(group);
		sg.generation_id = generation;
		sg.member_id = tl_str_of(member);
		sg.group_instance_id.ptr = NULL;
		sg.group_instance_id.len = -1;
		sg.protocol_type = tl_str_of("consumer");
		sg.protocol_name = tl_str_of("range");
		corr = request_begin(c, &frame, TL_API_SYNC_GROUP, 5);
		tl_sync_group_request_encode(&frame, 5, &sg);
	} else {
		struct tl_heartbeat_request hb;
		tl_heartbeat_request_defaults(&hb);
		hb.group_id = tl_str_of(group);
		hb.generation_id = generation;
		hb.member_id = tl_str_of(member);
		hb.group_instance_id.ptr = NULL;
		hb.group_instance_id.len = -1;
		corr = request_begin(c, &frame, TL_API_HEARTBEAT, 4);
		tl_heartbeat_request_encode(&frame, 4, &hb);
	}
	if (!request_send(c, &frame))
		fail("group request: connection closed while sending");
	tl_buf_deinit(&frame);
	return corr;
}

static int16_t group_request_recv(struct client *c, int16_t key, int32_t corr)
{
	struct raw_reply r;
	int16_t code;
	if (key == TL_API_SYNC_GROUP) {
		reply_must(c, TL_API_SYNC_GROUP, 5, corr, &r);
		struct tl_sync_group_response resp;
		decoded(tl_sync_group_response_decode(&r.body, 5, &r.arena, &resp), &r,
			"SyncGroup");
		code = resp.error_code;
	} else {
		reply_must(c, TL_API_HEARTBEAT, 4, corr, &r);
		struct tl_heartbeat_response resp;
		decoded(tl_heartbeat_response_decode(&r.body, 4, &r.arena, &resp), &r, "Heartbeat");
		code = resp.error_code;
	}
	raw_reply_free(&r);
	return code;
}

static int16_t hold_request(struct client *c, int16_t key, const char *group, const char *member,
			    int32_t generation)
{
	return group_request_recv(c, key, group_request_send(c, key, group, member, generation));
}

/* While its leaderships are not current, does the broker also keep clients from its
 * stale view: FindCoordinator of @group and ListGroups both COORDINATOR_NOT_AVAILABLE? */
static bool hold_probe_unavailable(struct client *c, const char *group)
{
	struct tl_buf frame;
	struct raw_reply r;
	struct tl_find_coordinator_request fc;
	tl_find_coordinator_request_defaults(&fc);
	fc.key = tl_str_of(group);
	fc.key_type = 0;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_FIND_COORDINATOR, 3);
	tl_find_coordinator_request_encode(&frame, 3, &fc);
	roundtrip(c, &frame, TL_API_FIND_COORDINATOR, 3, corr, "FindCoordinator", &r);
	struct tl_find_coordinator_response fresp;
	decoded(tl_find_coordinator_response_decode(&r.body, 3, &r.arena, &fresp), &r,
		"FindCoordinator");
	int16_t find_code = fresp.error_code;
	raw_reply_free(&r);
	struct tl_list_groups_request lg;
	tl_list_groups_request_defaults(&lg);
	tl_buf_init(&frame);
	corr = request_begin(c, &frame, TL_API_LIST_GROUPS, 4);
	tl_list_groups_request_encode(&frame, 4, &lg);
	roundtrip(c, &frame, TL_API_LIST_GROUPS, 4, corr, "ListGroups", &r);
	struct tl_list_groups_response lresp;
	decoded(tl_list_groups_response_decode(&r.body, 4, &r.arena, &lresp), &r, "ListGroups");
	bool unavailable = find_code == TL_ERR_COORDINATOR_NOT_AVAILABLE &&
			   lresp.error_code == TL_ERR_COORDINATOR_NOT_AVAILABLE &&
			   lresp.groups_count == 0;
	raw_reply_free(&r);
	return unavailable;
}

/* One member that keeps its session across a time its coordinator cannot vouch for
 * itself (etcd away: NOT_COORDINATOR): the sessions stand still meanwhile, so when the
 * coordinator answers again the member is still there (stop 33). */
static int run_hold_member(const char *group, int32_t session_ms, int32_t seconds)
{
	struct client c;
	client_open(&c);
	char member[256] = "";
	int32_t generation = -1;
	int16_t code = TL_ERR_NOT_COORDINATOR;
	for (int attempt = 0; attempt < 100 && code != 0; attempt++) {
		code = hold_join(&c, group, member, session_ms, &generation, member,
				 sizeof(member));
		if (code == TL_ERR_MEMBER_ID_REQUIRED)
			continue;
		if (code == TL_ERR_NOT_COORDINATOR || code == TL_ERR_COORDINATOR_NOT_AVAILABLE ||
		    code == TL_ERR_COORDINATOR_LOAD_IN_PROGRESS)
			usleep(200 * 1000);
		else if (code != 0)
			fail("JoinGroup: error code %d (%s)", code, tl_err_name((tl_err)code));
	}
	expect_code("JoinGroup", code, 0);
	expect_code("SyncGroup", hold_request(&c, TL_API_SYNC_GROUP, group, member, generation), 0);
	int64_t ok = 0, refused = 0, ok_after = 0; /* ok_after: answered since the last refusal */
	int64_t unavailable = 0; /* refusals while FindCoordinator and ListGroups also refused */
	int64_t end = tl_mono_ms() + (int64_t)seconds * 1000;
	while (tl_mono_ms() < end) {
		code = hold_request(&c, TL_API_HEARTBEAT, group, member, generation);
		if (code == 0) {
			ok++;
			ok_after++;
		} else if (code == TL_ERR_NOT_COORDINATOR) {
			refused++;
			ok_after = 0;
			unavailable += hold_probe_unavailable(&c, group);
		} else
			fail("Heartbeat after %" PRId64 " ok and %" PRId64
			     " NOT_COORDINATOR: error code %d (%s): the member lost its session",
			     ok, refused, code, tl_err_name((tl_err)code));
		usleep(500 * 1000);
	}
	printf("heartbeats ok %" PRId64 " not-coordinator %" PRId64 " ok-after %" PRId64
	       " unavailable %" PRId64 "\n",
	       ok, refused, ok_after, unavailable);
	client_close(&c);
	return 0;
}

/* One OffsetFetch v7 (require_stable) of @group's @topic-@partition: the error code (the
 * group's, else the partition's) and the committed offset in @committed. */
static int16_t offset_fetch_stable(struct client *c, const char *group, const char *topic,
				   int32_t partition, int64_t *committed)
{
	struct tl_offset_fetch_request_offset_fetch_request_topic ft;
	tl_offset_fetch_request_offset_fetch_request_topic_defaults(&ft);
	ft.name = tl_str_of(topic);
	ft.partition_indexes_count = 1;
	ft.partition_indexes = &partition;
	struct tl_offset_fetch_request of;
	tl_offset_fetch_request_defaults(&of);
	of.group_id = tl_str_of(group);
	of.topics_count = 1;
	of.topics = &ft;
	of.require_stable = true;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_OFFSET_FETCH, 7);
	tl_offset_fetch_request_encode(&frame, 7, &of);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_OFFSET_FETCH, 7, corr, "OffsetFetch", &r);
	struct tl_offset_fetch_response resp;
	decoded(tl_offset_fetch_response_decode(&r.body, 7, &r.arena, &resp), &r, "OffsetFetch");
	int16_t code = resp.error_code;
	*committed = -1;
	for (int32_t t = 0; t < resp.topics_count; t++)
		for (int32_t p = 0; p < resp.topics[t].partitions_count; p++) {
			const struct tl_offset_fetch_response_offset_fetch_response_partition *pr =
				&resp.topics[t].partitions[p];
			if (pr->partition_index != partition)
				continue;
			if (code == 0)
				code = pr->error_code;
			*committed = pr->committed_offset;
		}
	raw_reply_free(&r);
	return code;
}

/* What BROKER itself answers to an OffsetFetch of @group's @topic-@partition, whoever
 * FindCoordinator would name: a broker cut off etcd must not answer from its stale
 * state (test 930). */
static int run_offset_fetch(const char *group, const char *topic, int32_t partition)
{
	struct client c;
	client_open(&c);
	int64_t committed;
	int16_t code = offset_fetch_stable(&c, group, topic, partition, &committed);
	if (code != 0)
		printf("error %s\n", tl_err_name((tl_err)code));
	else
		printf("committed %" PRId64 "\n", committed);
	client_close(&c);
	return 0;
}

#define RULES_SESSION_MS   1000
#define RULES_REBALANCE_MS 5000 /* the leader may take 1.8 s to sync */
#define RULES_MEMBER_MAX   128

/* @count members join @group at once (KIP-394: each is handed an id, then all join with
 * theirs, answered together); fills @code, @generation, @member and @leader per member. */
static void join_together(struct client *c, int count, const char *group, int16_t *code,
			  int32_t *generation, char (*member)[RULES_MEMBER_MAX], bool *leader)
{
	for (int i = 0; i < count; i++) {
		int16_t e = join_recv(
			&c[i],
			join_send(&c[i], group, "", NULL, RULES_SESSION_MS, RULES_REBALANCE_MS),
			&generation[i], member[i], RULES_MEMBER_MAX, NULL);
		expect_code("JoinGroup without a member id", e, TL_ERR_MEMBER_ID_REQUIRED);
	}
	int32_t corr[3];
	if (count > 3)
		fail("join_together: at most 3 members");
	for (int i = 0; i < count; i++)
		corr[i] = join_send(&c[i], group, member[i], NULL, RULES_SESSION_MS,
				    RULES_REBALANCE_MS);
	for (int i = 0; i < count; i++)
		code[i] = join_recv(&c[i], corr[i], &generation[i], member[i], RULES_MEMBER_MAX,
				    &leader[i]);
}

static int16_t leave_group(struct client *c, const char *group, const char *member)
{
	struct tl_leave_group_request msg;
	tl_leave_group_request_defaults(&msg);
	msg.group_id = tl_str_of(group);
	msg.member_id = tl_str_of(member);
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_LEAVE_GROUP, 1);
	tl_leave_group_request_encode(&frame, 1, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_LEAVE_GROUP, 1, corr, "LeaveGroup", &r);
	struct tl_leave_group_response resp;
	decoded(tl_leave_group_response_decode(&r.body, 1, &r.arena, &resp), &r, "LeaveGroup");
	int16_t code = resp.error_code;
	raw_reply_free(&r);
	return code;
}

/* OffsetCommit v7 of @topic-0 at @offset for @group, as a client outside the group
 * (generation -1, no member id); returns the partition's error code. */
static int16_t offset_commit_one(struct client *c, const char *group, const char *topic,
				 int64_t offset)
{
	struct tl_offset_commit_request_offset_commit_request_partition part;
	tl_offset_commit_request_offset_commit_request_partition_defaults(&part);
	part.partition_index = 0;
	part.committed_offset = offset;
	struct tl_offset_commit_request_offset_commit_request_topic topic_msg;
	tl_offset_commit_request_offset_commit_request_topic_defaults(&topic_msg);
	topic_msg.name = tl_str_of(topic);
	topic_msg.partitions_count = 1;
	topic_msg.partitions = &part;
	struct tl_offset_commit_request msg;
	tl_offset_commit_request_defaults(&msg);
	msg.group_id = tl_str_of(group);
	msg.generation_id_or_member_epoch = -1;
	msg.member_id = tl_str_of("");
	msg.topics_count = 1;
	msg.topics = &topic_msg;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_OFFSET_COMMIT, 7);
	tl_offset_commit_request_encode(&frame, 7, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_OFFSET_COMMIT, 7, corr, "OffsetCommit", &r);
	struct tl_offset_commit_response resp;
	decoded(tl_offset_commit_response_decode(&r.body, 7, &r.arena, &resp), &r, "OffsetCommit");
	if (resp.topics_count != 1 || resp.topics[0].partitions_count != 1)
		fail("OffsetCommit: expected one topic with one partition in the answer");
	int16_t code = resp.topics[0].partitions[0].error_code;
	raw_reply_free(&r);
	return code;
}

/* The committed offset of @group's @topic-0, asked with require_stable until no
 * transaction's offset of it is pending (the COMMIT marker is written after EndTxn
 * answers), for up to 5 s. */
static int64_t offset_fetch_one(struct client *c, const char *group, const char *topic)
{
	int64_t committed;
	int16_t code;
	for (int attempt = 0; (code = offset_fetch_stable(c, group, topic, 0, &committed)) ==
				      TL_ERR_UNSTABLE_OFFSET_COMMIT &&
			      attempt < 50;
	     attempt++)
		usleep(100 * 1000);
	expect_code("OffsetFetch (require_stable)", code, 0);
	return committed;
}

/* Group coordinator rules a review found broken (stop 36), against a broker started with
 * group.max.size=2, group.initial.rebalance.delay.ms=1000 and
 * offsets.retention.check.interval.ms=100:
 * (1) three members joining at once, each with the id KIP-394 handed it: the third gets
 *     GROUP_MAX_SIZE_REACHED (the limit held only for joins without an id);
 * (2) after both members left (Empty), a member joining again waits out the initial
 *     delay, as Kafka's InitialDelayedJoin does whenever the group is Empty (it did
 *     only for generation 0);
 * (3) a follower parked in SyncGroup past its 1 s session while the leader heartbeats
 *     and syncs after 1.8 s is not expired: both syncs succeed (a member waiting for its
 *     sync was expired, answered UNKNOWN_MEMBER_ID);
 * (4) a group holding only offsets staged by an open transaction is not removed by the
 *     expiry check: after EndTxn(commit) OffsetFetch gives the staged offset (it gave
 *     -1: the group was gone when the marker came);
 * (5) the static leader of a Stable group, restarting (JoinGroup without a member id,
 *     its group.instance.id), is not told it leads, so it does not assign (a Stable
 *     group ignores that assignment), and the group does not rebalance;
 * (6) a plain OffsetCommit made while a transaction holds a staged offset of the same
 *     partition stays when the transaction commits (Kafka keeps the record appended
 *     last; the transaction's offset replaced it);
 * (7) a static member silent through a rebalance (the dynamic member left and joined
 *     again) stays in the group for its session: returning, it gets the new
 *     generation at once, without another rebalance (it was removed when the join
 *     completed, and its return started a rebalance of its own). */
static int run_group_rules(const char *topic, const char *prefix)
{
	struct client c[3];
	for (int i = 0; i < 3; i++)
		client_open(&c[i]);
	ensure_topic(&c[0], topic, 1);
	char group[128];
	int16_t code[3];
	int32_t gen[3];
	char member[3][RULES_MEMBER_MAX];
	bool leader[3];

	snprintf(group, sizeof(group), "%s-max", prefix);
	join_together(c, 3, group, code, gen, member, leader);
	/* The connections' joins arrive in any order: one of the three is refused. */
	int joined = 0, refused = -1;
	for (int i = 0; i < 3; i++) {
		if (code[i] == 0)
			joined++;
		else if (code[i] == TL_ERR_GROUP_MAX_SIZE_REACHED)
			refused = i;
		else
			expect_code("JoinGroup of a group with group.max.size 2", code[i], 0);
	}
	if (joined != 2 || refused < 0)
		fail("three members joining a group of group.max.size 2: %d joined, want 2 and "
		     "one GROUP_MAX_SIZE_REACHED",
		     joined);
	note("(1) the third member joining with its KIP-394 id: GROUP_MAX_SIZE_REACHED");

	for (int i = 0; i < 3; i++)
		if (i != refused)
			expect_code("LeaveGroup", leave_group(&c[i], group, member[i]), 0);
	int64_t t0 = tl_mono_ms();
	join_together(c, 1, group, code, gen, member, leader);
	int64_t waited = tl_mono_ms() - t0;
	expect_code("JoinGroup after the group emptied", code[0], 0);
	if (waited < 800)
		fail("a join to a group that was Empty completed after %" PRId64
		     " ms: the 1000 ms initial delay applies whenever the group is Empty",
		     waited);
	note("(2) a join to the emptied group waited out the initial delay (%" PRId64 " ms)",
	     waited);
	expect_code("LeaveGroup", leave_group(&c[0], group, member[0]), 0);

	snprintf(group, sizeof(group), "%s-sync", prefix);
	join_together(c, 2, group, code, gen, member, leader);
	expect_code("JoinGroup", code[0], 0);
	expect_code("JoinGroup", code[1], 0);
	int l = leader[0] ? 0 : 1, f = 1 - l;
	if (!leader[l])
		fail("neither member of %s leads", group);
	int32_t parked = group_request_send(&c[f], TL_API_SYNC_GROUP, group, member[f], gen[f]);
	for (int i = 0; i < 3; i++) {
		usleep(600 * 1000);
		expect_code("the leader's Heartbeat while the follower waits in SyncGroup",
			    hold_request(&c[l], TL_API_HEARTBEAT, group, member[l], gen[l]), 0);
	}
	expect_code("the leader's SyncGroup 1.8 s later",
		    hold_request(&c[l], TL_API_SYNC_GROUP, group, member[l], gen[l]), 0);
	expect_code("the follower's SyncGroup, parked past its session timeout",
		    group_request_recv(&c[f], TL_API_SYNC_GROUP, parked), 0);
	note("(3) a follower waiting 1.8 s in SyncGroup with a 1 s session was kept");

	snprintf(group, sizeof(group), "%s-txn", prefix);
	char txn_id[160];
	snprintf(txn_id, sizeof(txn_id), "%s-txn-id", prefix);
	int64_t pid;
	int16_t epoch;
	init_producer_id_for(&c[2], txn_id, 60000, &pid, &epoch);
	expect_code("AddOffsetsToTxn", add_offsets_to_txn(&c[2], txn_id, pid, epoch, group), 0);
	expect_code("TxnOffsetCommit",
		    txn_offset_commit(&c[2], txn_id, pid, epoch, group, topic, 42), 0);
	usleep(1000 * 1000); /* ten expiry checks */
	expect_code("EndTxn(commit)", end_txn(&c[2], txn_id, pid, epoch), 0);
	int64_t committed = offset_fetch_one(&c[2], group, topic);
	if (committed != 42)
		fail("OffsetFetch after the transaction committed offset 42 gives %" PRId64
		     ": the expiry check removed the group holding its staged offsets",
		     committed);
	note("(4) staged transaction offsets survived the expiry check and became committed");

	snprintf(group, sizeof(group), "%s-static", prefix);
	const char *instance[2] = {"instance-a", "instance-b"};
	int32_t corr[2];
	for (int i = 0; i < 2; i++)
		corr[i] = join_send(&c[i], group, "", instance[i], 30000, RULES_REBALANCE_MS);
	for (int i = 0; i < 2; i++)
		expect_code(
			"a static member's JoinGroup",
			join_recv(&c[i], corr[i], &gen[i], member[i], RULES_MEMBER_MAX, &leader[i]),
			0);
	l = leader[0] ? 0 : 1;
	f = 1 - l;
	parked = group_request_send(&c[f], TL_API_SYNC_GROUP, group, member[f], gen[f]);
	expect_code("the static leader's SyncGroup",
		    hold_request(&c[l], TL_API_SYNC_GROUP, group, member[l], gen[l]), 0);
	expect_code("the static follower's SyncGroup",
		    group_request_recv(&c[f], TL_API_SYNC_GROUP, parked), 0);
	int32_t back_gen;
	char back[RULES_MEMBER_MAX];
	bool back_leads = true;
	expect_code("the static leader's JoinGroup after a restart",
		    join_recv(&c[2],
			      join_send(&c[2], group, "", instance[l], 30000, RULES_REBALANCE_MS),
			      &back_gen, back, sizeof(back), &back_leads),
		    0);
	if (back_leads)
		fail("a static leader returning to its Stable group was told it leads: it would "
		     "assign, and the group would ignore the assignment");
	if (back_gen != gen[l] || strcmp(back, member[l]) == 0)
		fail("the returning static leader got generation %d member %s, want generation %d "
		     "and a new member id",
		     back_gen, back, gen[l]);
	expect_code("the other member's Heartbeat after the leader returned",
		    hold_request(&c[f], TL_API_HEARTBEAT, group, member[f], gen[f]), 0);
	note("(5) a returning static leader of a Stable group is not told to assign");

	snprintf(group, sizeof(group), "%s-order", prefix);
	snprintf(txn_id, sizeof(txn_id), "%s-order-id", prefix);
	init_producer_id_for(&c[2], txn_id, 60000, &pid, &epoch);
	expect_code("AddOffsetsToTxn", add_offsets_to_txn(&c[2], txn_id, pid, epoch, group), 0);
	expect_code("TxnOffsetCommit of 42",
		    txn_offset_commit(&c[2], txn_id, pid, epoch, group, topic, 42), 0);
	expect_code("OffsetCommit of 100 meanwhile", offset_commit_one(&c[0], group, topic, 100),
		    0);
	expect_code("EndTxn(commit)", end_txn(&c[2], txn_id, pid, epoch), 0);
	committed = offset_fetch_one(&c[0], group, topic);
	if (committed != 100)
		fail("OffsetFetch gives %" PRId64 " after a transaction staged 42 and a plain "
		     "commit of 100 came after it: the later record must stay",
		     committed);
	note("(6) a plain commit appended after a transaction's offset stays when it commits");

	/* (7): S static, D dynamic, both with 10 s sessions and 2 s rebalance timeouts. */
	snprintf(group, sizeof(group), "%s-absent", prefix);
	const int32_t session = 10000, rebalance = 2000;
	struct client *cs = &c[0], *cd = &c[1];
	char ms[RULES_MEMBER_MAX], md[RULES_MEMBER_MAX];
	int32_t gs, gd;
	bool ls, ld;
	int32_t cs_corr = join_send(cs, group, "", "instance-s", session, rebalance);
	expect_code("JoinGroup of the dynamic member without an id",
		    join_recv(cd, join_send(cd, group, "", NULL, session, rebalance), &gd, md,
			      sizeof(md), NULL),
		    TL_ERR_MEMBER_ID_REQUIRED);
	int32_t cd_corr = join_send(cd, group, md, NULL, session, rebalance);
	expect_code("JoinGroup of the static member",
		    join_recv(cs, cs_corr, &gs, ms, sizeof(ms), &ls), 0);
	expect_code("JoinGroup of the dynamic member",
		    join_recv(cd, cd_corr, &gd, md, sizeof(md), &ld), 0);
	struct client *cl = ls ? cs : cd, *cf = ls ? cd : cs;
	const char *ml = ls ? ms : md, *mf = ls ? md : ms;
	parked = group_request_send(cf, TL_API_SYNC_GROUP, group, mf, gs);
	expect_code("the leader's SyncGroup", hold_request(cl, TL_API_SYNC_GROUP, group, ml, gs),
		    0);
	expect_code("the follower's SyncGroup", group_request_recv(cf, TL_API_SYNC_GROUP, parked),
		    0);
	/* The static member falls silent; the dynamic one leaves and joins again (as a new
	 * member: a rebalance the static member does not take part in). */
	expect_code("LeaveGroup of the dynamic member", leave_group(cd, group, md), 0);
	expect_code("JoinGroup of the returning dynamic member without an id",
		    join_recv(cd, join_send(cd, group, "", NULL, session, rebalance), &gd, md,
			      sizeof(md), NULL),
		    TL_ERR_MEMBER_ID_REQUIRED);
	expect_code("JoinGroup of the returning dynamic member",
		    join_recv(cd, join_send(cd, group, md, NULL, session, rebalance), &gd, md,
			      sizeof(md), &ld),
		    0);
	if (!ld)
		fail("the only member that rejoined does not lead generation %d of %s", gd, group);
	expect_code("the new leader's SyncGroup",
		    hold_request(cd, TL_API_SYNC_GROUP, group, md, gd), 0);
	int64_t t1 = tl_mono_ms();
	expect_code("the static member's JoinGroup on its return",
		    join_recv(cs, join_send(cs, group, "", "instance-s", session, rebalance), &gs,
			      ms, sizeof(ms), &ls),
		    0);
	if (gs != gd)
		fail("the static member returning within its session got generation %d after %" PRId64
		     " ms, want %d at once: it was dropped when the join completed",
		     gs, tl_mono_ms() - t1, gd);
	note("(7) a static member silent through a rebalance kept its place (generation %d)", gd);
	for (int i = 0; i < 3; i++)
		client_close(&c[i]);
	return 0;
}

/* Goes on with the transaction txn-offsets-open opened, after a restart: the group's
 * offset and the commit are accepted, whatever the coordinator kept in memory. */
static int run_txn_offsets_commit(const char *topic, const char *txn_id, const char *group,
				  int64_t pid, int16_t epoch)
{
	struct client c;
	client_open(&c);
	expect_code("TxnOffsetCommit after a restart",
		    txn_offset_commit(&c, txn_id, pid, epoch, group, topic, 7), 0);
	expect_code("EndTxn after a restart", end_txn(&c, txn_id, pid, epoch), 0);
	note("TxnOffsetCommit and EndTxn of a transaction opened before the restart: accepted");
	client_close(&c);
	return 0;
}

/* After a restart: retries of both batches are recognised (original offsets, nothing
 * appended), a gap is still refused, and the log still holds the 15 records. */
static int run_restart_check(const char *topic, int64_t pid)
{
	struct client c;
	client_open(&c);
	int64_t base;
	struct tl_buf batch;
	build_batch(&batch, "ra", 10, TL_COMPRESSION_NONE, pid, 0, 0);
	expect_code("retry of seq 0 after restart", produce(&c, 9, topic, 0, &batch, &base), 0);
	if (base != 0)
		fail("retry of seq 0 after restart answered base offset %" PRId64
		     ", expected 0 (producer state lost: the batch was appended again?)",
		     base);
	tl_buf_deinit(&batch);
	build_batch(&batch, "rb", 5, TL_COMPRESSION_ZSTD, pid, 0, 10);
	expect_code("retry of seq 10 after restart", produce(&c, 9, topic, 0, &batch, &base), 0);
	if (base != 10)
		fail("retry of seq 10 after restart answered base offset %" PRId64 ", expected 10",
		     base);
	tl_buf_deinit(&batch);
	build_batch(&batch, "rgap", 1, TL_COMPRESSION_NONE, pid, 0, 20);
	expect_code("sequence gap after restart", produce(&c, 9, topic, 0, &batch, &base),
		    TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	tl_buf_deinit(&batch);
	struct stored_list list;
	fetch_all(&c, topic, 0, &list);
	if (list.count != 15)
		fail("after restart and retries the log holds %zu records, expected 15",
		     list.count);
	expect_values(&list, 0, "ra", 10);
	expect_values(&list, 10, "rb", 5);
	stored_free(&list);
	client_close(&c);
	note("restart: retries recognised from rebuilt producer state");
	return 0;
}

/* ---- badinput: framing ---- */

/* ---- ListOffsets ---- */

/* ListOffsets v8 for @timestamp on @topic partition 0; fails unless the answer is
 * (@want_offset, @want_timestamp). */
/* One ListOffsets v8 of @topic-0 at @timestamp carrying @leader_epoch (-1: none);
 * returns the partition's error code and its offset and timestamp in @offset_out and
 * @timestamp_out. */
static int16_t delete_records_one(struct client *c, const char *topic, int32_t partition,
				  int64_t offset, int32_t timeout_ms, int64_t *low);

static int8_t list_offsets_isolation; /* the next list_offsets_one's isolation_level */
static int32_t list_offsets_epoch;    /* the last list_offsets_one's answered leader_epoch */

static int16_t list_offsets_one(struct client *c, const char *topic, int64_t timestamp,
				int32_t leader_epoch, int64_t *offset_out, int64_t *timestamp_out)
{
	struct tl_list_offsets_request_list_offsets_partition part;
	tl_list_offsets_request_list_offsets_partition_defaults(&part);
	part.partition_index = 0;
	part.current_leader_epoch = leader_epoch;
	part.timestamp = timestamp;
	struct tl_list_offsets_request_list_offsets_topic t;
	tl_list_offsets_request_list_offsets_topic_defaults(&t);
	t.name = tl_str_of(topic);
	t.partitions = &part;
	t.partitions_count = 1;
	struct tl_list_offsets_request msg;
	tl_list_offsets_request_defaults(&msg);
	msg.replica_id = -1;
	msg.isolation_level = list_offsets_isolation;
	msg.topics = &t;
	msg.topics_count = 1;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_LIST_OFFSETS, 8);
	tl_list_offsets_request_encode(&frame, 8, &msg);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_LIST_OFFSETS, 8, corr, "ListOffsets", &r);
	struct tl_list_offsets_response resp;
	decoded(tl_list_offsets_response_decode(&r.body, 8, &r.arena, &resp), &r, "ListOffsets");
	if (resp.topics_count != 1 || resp.topics[0].partitions_count != 1)
		fail("ListOffsets %" PRId64 ": not one partition in the answer", timestamp);
	const struct tl_list_offsets_response_list_offsets_partition_response *p =
		&resp.topics[0].partitions[0];
	int16_t code = p->error_code;
	*offset_out = p->offset;
	*timestamp_out = p->timestamp;
	list_offsets_epoch = p->leader_epoch;
	raw_reply_free(&r);
	return code;
}

static void expect_list_offsets(struct client *c, const char *topic, int64_t timestamp,
				int64_t want_offset, int64_t want_timestamp)
{
	int64_t offset, ts;
	int16_t code = list_offsets_one(c, topic, timestamp, -1, &offset, &ts);
	if (code != 0 || offset != want_offset || ts != want_timestamp)
		fail("ListOffsets %" PRId64 ": error %d offset %" PRId64 " timestamp %" PRId64
		     ", want offset %" PRId64 " timestamp %" PRId64,
		     timestamp, code, offset, ts, want_offset, want_timestamp);
}

static void check_read_rules(struct client *c, const char *topic, int64_t end);

/* One idempotent record of @pid/@epoch at sequence @seq stamped @timestamp_ms. */
static int16_t produce_idempotent_at(struct client *c, const char *topic, int64_t pid,
				     int16_t epoch, int32_t seq, int64_t timestamp_ms,
				     int64_t *base_out)
{
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, TL_COMPRESSION_NONE);
	struct tl_bytes key = {NULL, -1}, value = {(const uint8_t *)"expiry", 6};
	if (tl_records_builder_append(&builder, timestamp_ms, key, value, NULL, 0) != TL_OK)
		fail("builder append failed");
	tl_records_builder_set_producer(&builder, pid, epoch, seq, false);
	struct tl_buf batch;
	tl_buf_init(&batch);
	if (tl_records_builder_finish(&builder, NULL, &batch) != TL_OK)
		fail("builder finish failed");
	tl_records_builder_deinit(&builder);
	int64_t base;
	int16_t code = produce(c, 9, topic, 0, &batch, &base);
	tl_buf_deinit(&batch);
	if (base_out)
		*base_out = base;
	return code;
}

/* Producer expiry on a broker with producer.id.expiration.ms=2000 (and the default
 * 10 min check interval). "write": producer A writes sequence 0 stamped 10 s ago (old
 * CreateTime, as a mirror of old data), producer B a record stamped now (so A's last
 * batch is past the expiration against the newest one); 2.5 s later A's sequence 1
 * (stamped as old) is still taken: expiry runs every
 * producer.id.expiration.check.interval.ms, not at each tick (it ran each tick: a
 * producer beside a newer-stamped one lost its state within seconds). Prints A's "PID
 * EPOCH". "restarted PID EPOCH": after a restart (expiry at open), A's sequence 2 is
 * UNKNOWN_PRODUCER_ID: producer.id.expiration.ms is applied (the key was parsed and
 * ignored). "crash-write": on a new @topic, A's sequence 0 stamped 10 s ago, then B's
 * record stamped now; prints "PID EPOCH BASE". "crash-retry PID EPOCH BASE", after a
 * kill -9: A's retry of sequence 0 (its first answer lost in the crash) is answered
 * with BASE, not appended again: a producer the recovery replayed stays until the next
 * periodic check, as in Kafka (it was expired at open). */
static int run_pid_expiry(const char *topic, const char *phase, int64_t pid, int16_t epoch,
			  int64_t base)
{
	struct client c;
	client_open(&c);
	int64_t now = tl_wall_ms();
	if (strcmp(phase, "crash-write") == 0) {
		ensure_topic(&c, topic, 1);
		int64_t b_pid, a_base;
		int16_t b_epoch;
		init_producer_id(&c, &pid, &epoch);
		init_producer_id(&c, &b_pid, &b_epoch);
		expect_code("A's sequence 0 stamped 10 s ago",
			    produce_idempotent_at(&c, topic, pid, epoch, 0, now - 10000, &a_base),
			    0);
		expect_code("B's record stamped now",
			    produce_idempotent_at(&c, topic, b_pid, b_epoch, 0, now, NULL), 0);
		printf("%" PRId64 " %d %" PRId64 "\n", pid, epoch, a_base);
	} else if (strcmp(phase, "crash-retry") == 0) {
		int64_t got = -1;
		expect_code("A's retried sequence 0 after kill -9",
			    produce_idempotent_at(&c, topic, pid, epoch, 0, now - 10000, &got), 0);
		if (got != base)
			fail("A's retried sequence 0 after kill -9 was appended again at %" PRId64
			     " (first at %" PRId64 "): the recovery expired a replayed producer",
			     got, base);
	} else if (strcmp(phase, "write") == 0) {
		ensure_topic(&c, topic, 1);
		int64_t b_pid;
		int16_t b_epoch;
		init_producer_id(&c, &pid, &epoch);
		init_producer_id(&c, &b_pid, &b_epoch);
		expect_code("A's sequence 0 stamped 10 s ago",
			    produce_idempotent_at(&c, topic, pid, epoch, 0, now - 10000, NULL), 0);
		expect_code("B's record stamped now",
			    produce_idempotent_at(&c, topic, b_pid, b_epoch, 0, now, NULL), 0);
		usleep(2500 * 1000); /* two ticks (1 s apart) at least: each expired, once */
		expect_code("A's sequence 1, 2.5 s later (before the next expiry check)",
			    produce_idempotent_at(&c, topic, pid, epoch, 1, now - 10000, NULL), 0);
		printf("%" PRId64 " %d\n", pid, epoch);
	} else {
		expect_code("A's sequence 2 after a restart (expired at open)",
			    produce_idempotent_at(&c, topic, pid, epoch, 2, tl_wall_ms(), NULL),
			    TL_ERR_UNKNOWN_PRODUCER_ID);
	}
	client_close(&c);
	return 0;
}

/* A partition takes all the batches of a Produce v2 request or none (Kafka validates
 * them whole): on @topic (compression.type=uncompressed, max.message.bytes=4000, new)
 * a small gzip batch then one whose 100 KB of records compress to a few hundred bytes
 * but stored uncompressed exceed the limit: MESSAGE_TOO_LARGE, and the log stays empty
 * (the first batch was appended, and a client's retry would duplicate it). */
static int run_batches_whole(const char *topic)
{
	struct client c;
	client_open(&c);
	static uint8_t big[100 * 1024];
	memset(big, 'A', sizeof(big));
	struct tl_buf small, large, both;
	build_batch(&small, "small", 1, TL_COMPRESSION_GZIP, -1, -1, -1);
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, TL_COMPRESSION_GZIP);
	struct tl_bytes key = {NULL, -1}, value = {big, (int32_t)sizeof(big)};
	if (tl_records_builder_append(&builder, tl_wall_ms(), key, value, NULL, 0) != TL_OK)
		fail("builder append failed");
	tl_buf_init(&large);
	if (tl_records_builder_finish(&builder, NULL, &large) != TL_OK)
		fail("builder finish failed");
	tl_records_builder_deinit(&builder);
	tl_buf_init(&both);
	tl_buf_put(&both, small.data, small.len);
	tl_buf_put(&both, large.data, large.len);
	int64_t base;
	expect_code("Produce v2 of two batches, the second too large once uncompressed",
		    produce(&c, 2, topic, 0, &both, &base), TL_ERR_MESSAGE_TOO_LARGE);
	tl_buf_deinit(&small);
	tl_buf_deinit(&large);
	tl_buf_deinit(&both);
	expect_list_offsets(&c, topic, -1, 0, -1);
	client_close(&c);
	printf("batches-whole: ok\n");
	return 0;
}

/* The batch header's maxTimestamp under CreateTime is what the records say, whatever the
 * client wrote (Kafka's LogValidator): on @ct_topic (new) a batch claiming maxTimestamp 1
 * and one setting the LogAppendTime bit with a time 10^9 ms ahead, both of records
 * stamped now, are found by ListOffsets by time and MAX_TIMESTAMP at their records'
 * time. On @lat_topic (message.timestamp.type=LogAppendTime) an idempotent batch sent
 * again 1.1 s later is answered with the first append's time, as Kafka answers a
 * duplicate. (A review of the produce path, stop 36.) */
static int run_timestamps(const char *ct_topic, const char *lat_topic)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, ct_topic, 1);
	int64_t now = tl_wall_ms();
	const int64_t at[] = {now};
	struct tl_buf low, ahead;
	build_batch_at(&low, "ts-low", 1, at);
	tl_be64_put(low.data + TL_BATCH_OFF_MAX_TIMESTAMP, 1);
	tl_batch_crc_update(low.data, low.len);
	build_batch_at(&ahead, "ts-ahead", 1, at);
	tl_be16_put(ahead.data + TL_BATCH_OFF_ATTRIBUTES,
		    (uint16_t)(tl_be16_get(ahead.data + TL_BATCH_OFF_ATTRIBUTES) |
			       TL_BATCH_ATTR_LOG_APPEND_TIME));
	tl_be64_put(ahead.data + TL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)(now + 1000000000));
	tl_batch_crc_update(ahead.data, ahead.len);
	int64_t base;
	expect_code("Produce of a batch claiming maxTimestamp 1",
		    produce(&c, 9, ct_topic, 0, &low, &base), 0);
	expect_code("Produce of a batch claiming LogAppendTime",
		    produce(&c, 9, ct_topic, 0, &ahead, &base), 0);
	/* A delete horizon (attribute bit 6, KIP-534) is the cleaner's to set: stored
	 * without it (110 reads the log). */
	struct tl_buf horizon;
	build_batch_at(&horizon, "ts-horizon", 1, at);
	tl_be16_put(horizon.data + TL_BATCH_OFF_ATTRIBUTES,
		    (uint16_t)(tl_be16_get(horizon.data + TL_BATCH_OFF_ATTRIBUTES) |
			       TL_BATCH_ATTR_DELETE_HORIZON));
	tl_batch_crc_update(horizon.data, horizon.len);
	expect_code("Produce of a batch claiming a delete horizon",
		    produce(&c, 9, ct_topic, 0, &horizon, &base), 0);
	tl_buf_deinit(&horizon);
	tl_buf_deinit(&low);
	tl_buf_deinit(&ahead);
	expect_list_offsets(&c, ct_topic, now - 60000, 0, now);
	expect_list_offsets(&c, ct_topic, -3, 0, now);

	int64_t pid;
	int16_t epoch;
	init_producer_id(&c, &pid, &epoch);
	struct tl_buf batch;
	build_batch(&batch, "lat", 1, TL_COMPRESSION_NONE, pid, epoch, 0);
	int64_t first_base, again_base;
	expect_code("Produce to a LogAppendTime topic",
		    produce(&c, 9, lat_topic, 0, &batch, &first_base), 0);
	int64_t first_time = produce_log_append_time;
	usleep(1100 * 1000);
	expect_code("the same idempotent batch again",
		    produce(&c, 9, lat_topic, 0, &batch, &again_base), 0);
	tl_buf_deinit(&batch);
	if (again_base != first_base || produce_log_append_time != first_time)
		fail("a duplicate on a LogAppendTime topic was answered base %" PRId64
		     " time %" PRId64 ", want the original's base %" PRId64 " time %" PRId64,
		     again_base, produce_log_append_time, first_base, first_time);
	client_close(&c);
	printf("timestamps: ok\n");
	return 0;
}

/* Two batches; the largest timestamp is carried by offsets 1 and 3: MAX_TIMESTAMP is
 * the first of them, whatever the batches' order. */
static int run_list_offsets(const char *topic)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, topic, 1);
	int64_t t0 = tl_wall_ms() - 60000;
	const int64_t first[] = {t0, t0 + 5000, t0 + 1000};
	const int64_t second[] = {t0 + 5000, t0 + 2000};
	struct tl_buf a, b;
	build_batch_at(&a, "lo-a", 3, first);
	build_batch_at(&b, "lo-b", 2, second);
	int64_t base;
	expect_code("Produce of the first batch", produce(&c, 9, topic, 0, &a, &base), 0);
	expect_code("Produce of the second batch", produce(&c, 9, topic, 0, &b, &base), 0);
	tl_buf_deinit(&a);
	tl_buf_deinit(&b);
	expect_list_offsets(&c, topic, -1, 5, -1);
	expect_list_offsets(&c, topic, -2, 0, -1);
	expect_list_offsets(&c, topic, -3, 1, t0 + 5000);
	expect_list_offsets(&c, topic, -4, 0, -1);
	expect_list_offsets(&c, topic, t0 + 1500, 1, t0 + 5000);
	expect_list_offsets(&c, topic, t0 + 5001, -1, -1);
	/* By time after DeleteRecords: the first record at or after the new log start
	 * (offset 2, t0+1000), not one of the deleted records of its batch. */
	int64_t low;
	expect_code("DeleteRecords to 2", delete_records_one(&c, topic, 0, 2, 10000, &low), 0);
	expect_list_offsets(&c, topic, t0, 2, t0 + 1000);
	expect_list_offsets(&c, topic, -2, 2, -1);
	/* Only what a consumer may fetch: an open transaction's records (offsets 5-6, stamped
	 * now) are found read_uncommitted, not read_committed (they are at the LSO). */
	int64_t pid;
	int16_t epoch;
	init_producer_id_for(&c, "list-offsets-txn", 60000, &pid, &epoch);
	add_partition_to_txn(&c, "list-offsets-txn", pid, epoch, topic);
	produce_txn_id = "list-offsets-txn";
	batch_transactional = true;
	struct tl_buf open_txn;
	build_batch(&open_txn, "lo-txn", 2, TL_COMPRESSION_NONE, pid, epoch, 0);
	expect_code("Produce in a transaction", produce(&c, 9, topic, 0, &open_txn, &base), 0);
	tl_buf_deinit(&open_txn);
	produce_txn_id = NULL;
	batch_transactional = false;
	int64_t offset, ts;
	expect_code("ListOffsets by time read_uncommitted",
		    list_offsets_one(&c, topic, t0 + 30000, -1, &offset, &ts), 0);
	if (offset != 5)
		fail("ListOffsets by time read_uncommitted: offset %" PRId64 ", want 5", offset);
	list_offsets_isolation = 1;
	expect_list_offsets(&c, topic, t0 + 30000, -1, -1);
	expect_list_offsets(&c, topic, -3, -1, -1); /* the largest timestamp is the txn's */
	expect_list_offsets(&c, topic, -1, 5, -1);
	list_offsets_isolation = 0;
	check_read_rules(&c, topic, 7);
	client_close(&c);
	printf("list-offsets: ok\n");
	return 0;
}

/* ---- leader epochs (KIP-320) ---- */

/* One Fetch of @topic-0 from offset 0 carrying @leader_epoch; returns the partition's
 * error code. */
static int16_t fetch_with_epoch(struct client *c, const char *topic, int32_t leader_epoch)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	fetch_leader_epoch = leader_epoch;
	int32_t corr = encode_fetch(c, &frame, 12, topic, 0, 0, 0);
	fetch_leader_epoch = -1;
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_FETCH, 12, corr, "Fetch", &r);
	struct tl_fetch_response resp;
	decoded(tl_fetch_response_decode(&r.body, 12, &r.arena, &resp), &r, "Fetch");
	expect_code("Fetch", resp.error_code, 0);
	if (resp.responses_count != 1 || resp.responses[0].partitions_count != 1)
		fail("Fetch: expected one topic with one partition in the answer");
	int16_t code = resp.responses[0].partitions[0].error_code;
	raw_reply_free(&r);
	return code;
}

/* One ListOffsets (latest) of @topic-0 carrying @leader_epoch; returns its error code. */
static int16_t list_offsets_with_epoch(struct client *c, const char *topic, int32_t leader_epoch)
{
	int64_t offset, ts;
	return list_offsets_one(c, topic, -1, leader_epoch, &offset, &ts);
}

/* One Fetch v12 of @topic-0 at @offset (max_wait @wait_ms, min_bytes and max_bytes as
 * fetch_min_bytes and fetch_max_bytes say); returns the error code, the records' bytes
 * in @bytes and the size of their first batch in @first (0 when none). */
static int16_t fetch_sized(struct client *c, const char *topic, int64_t offset, int32_t wait_ms,
			   int32_t *bytes, int64_t *first)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = encode_fetch(c, &frame, 12, topic, 0, offset, wait_ms);
	struct raw_reply r;
	roundtrip(c, &frame, TL_API_FETCH, 12, corr, "Fetch", &r);
	struct tl_fetch_response resp;
	decoded(tl_fetch_response_decode(&r.body, 12, &r.arena, &resp), &r, "Fetch");
	expect_code("Fetch", resp.error_code, 0);
	if (resp.responses_count != 1 || resp.responses[0].partitions_count != 1)
		fail("Fetch: expected one topic with one partition in the answer");
	const struct tl_fetch_response_partition_data *pd = &resp.responses[0].partitions[0];
	*bytes = pd->records.len > 0 ? pd->records.len : 0;
	*first = *bytes >= 12 ? tl_batch_size(pd->records.ptr, (size_t)*bytes) : 0;
	int16_t code = pd->error_code;
	raw_reply_free(&r);
	return code;
}

/* Read-path rules of a single node (a review of the read path, stop 36), on @topic-0
 * whose log starts at 2 and holds batches [2..]: Fetch with min_bytes 0 is answered at
 * once, not after max_wait; max_bytes 0 returns the first batch only (KIP-74); a
 * current_leader_epoch above the node's (0) is UNKNOWN_LEADER_EPOCH for Fetch and
 * ListOffsets, as OffsetForLeaderEpoch answered. */
static void check_read_rules(struct client *c, const char *topic, int64_t end)
{
	int32_t bytes;
	int64_t first;
	fetch_min_bytes = 0;
	int64_t t0 = tl_mono_ms();
	expect_code("Fetch at the end, min_bytes 0, max_wait 3000",
		    fetch_sized(c, topic, end, 3000, &bytes, &first), 0);
	int64_t waited = tl_mono_ms() - t0;
	fetch_min_bytes = 1;
	if (waited >= 1500)
		fail("Fetch with min_bytes 0 was answered after %" PRId64
		     " ms: nothing to wait for, Kafka answers at once",
		     waited);
	fetch_max_bytes = 0;
	expect_code("Fetch with max_bytes 0", fetch_sized(c, topic, 2, 0, &bytes, &first), 0);
	fetch_max_bytes = FETCH_BYTES_MAX;
	if (bytes <= 0 || first != bytes)
		fail("Fetch with max_bytes 0 returned %d bytes (first batch %" PRId64
		     "): want exactly the first batch",
		     bytes, first);
	expect_code("Fetch at leader epoch 1 of a single node", fetch_with_epoch(c, topic, 1),
		    TL_ERR_UNKNOWN_LEADER_EPOCH);
	expect_code("ListOffsets at leader epoch 1 of a single node",
		    list_offsets_with_epoch(c, topic, 1), TL_ERR_UNKNOWN_LEADER_EPOCH);
}

/* Against the leader of @topic-0 at @epoch: the current epoch is served, an older one is
 * FENCED_LEADER_EPOCH (the client's metadata is stale), a newer one
 * UNKNOWN_LEADER_EPOCH (the broker's is), for Fetch and ListOffsets alike. */
static int run_leader_epoch(const char *topic, int32_t epoch)
{
	struct client c;
	client_open(&c);
	expect_code("Fetch at the current leader epoch", fetch_with_epoch(&c, topic, epoch), 0);
	expect_code("Fetch at no leader epoch (-1)", fetch_with_epoch(&c, topic, -1), 0);
	if (epoch > 0)
		expect_code("Fetch at an older leader epoch",
			    fetch_with_epoch(&c, topic, epoch - 1), TL_ERR_FENCED_LEADER_EPOCH);
	expect_code("Fetch at a newer leader epoch", fetch_with_epoch(&c, topic, epoch + 1),
		    TL_ERR_UNKNOWN_LEADER_EPOCH);
	expect_code("ListOffsets at the current leader epoch",
		    list_offsets_with_epoch(&c, topic, epoch), 0);
	if (list_offsets_epoch != epoch)
		fail("ListOffsets (latest) at leader epoch %d answered leader_epoch %d (KIP-320: the "
		     "epoch a consumer validates its position with)",
		     epoch, list_offsets_epoch);
	if (epoch > 0)
		expect_code("ListOffsets at an older leader epoch",
			    list_offsets_with_epoch(&c, topic, epoch - 1),
			    TL_ERR_FENCED_LEADER_EPOCH);
	expect_code("ListOffsets at a newer leader epoch",
		    list_offsets_with_epoch(&c, topic, epoch + 1), TL_ERR_UNKNOWN_LEADER_EPOCH);
	client_close(&c);
	printf("leader-epoch: ok\n");
	return 0;
}

/* Request time split (issue #18): @count Produce requests (acks=1, one record each)
 * written in one send, so each waits behind the ones before it, then @count Fetch
 * requests at the log end with max_wait @wait_ms, written in one send, so each waits
 * out its max_wait (Kafka's RemoteTimeMs). Every answer is checked. Prints "pipeline:
 * produce N fetch N". */
static int run_pipeline(const char *topic, int32_t count, int32_t wait_ms)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, topic, 1);
	struct tl_buf batch, frame, all;
	build_batch(&batch, "pipelined", 1, TL_COMPRESSION_NONE, -1, -1, -1);
	tl_buf_init(&frame);
	tl_buf_init(&all);
	int32_t *corr = calloc((size_t)count, sizeof(*corr));
	if (!corr)
		fail("out of memory");
	for (int32_t i = 0; i < count; i++) {
		corr[i] = encode_produce(&c, &frame, 9, 1, topic, 0, batch.data, batch.len);
		request_finish(&frame);
		tl_buf_put(&all, frame.data, frame.len);
	}
	if (all.failed || !send_all(c.fd, all.data, all.len))
		fail("Produce: connection closed while sending the pipeline");
	int64_t end = -1;
	for (int32_t i = 0; i < count; i++) {
		int64_t base;
		expect_code("pipelined Produce", produce_recv(&c, 9, corr[i], topic, 0, &base), 0);
		end = base + 1;
	}
	tl_buf_reset(&all);
	for (int32_t i = 0; i < count; i++) {
		corr[i] = encode_fetch(&c, &frame, 12, topic, 0, end, wait_ms);
		request_finish(&frame);
		tl_buf_put(&all, frame.data, frame.len);
	}
	if (all.failed || !send_all(c.fd, all.data, all.len))
		fail("Fetch: connection closed while sending the pipeline");
	for (int32_t i = 0; i < count; i++) {
		struct raw_reply r;
		reply_must(&c, TL_API_FETCH, 12, corr[i], &r);
		struct tl_fetch_response resp;
		decoded(tl_fetch_response_decode(&r.body, 12, &r.arena, &resp), &r, "Fetch");
		expect_code("pipelined Fetch", resp.error_code, 0);
		if (resp.responses_count != 1 || resp.responses[0].partitions_count != 1)
			fail("Fetch: expected one topic with one partition in the answer");
		expect_code("pipelined Fetch partition", resp.responses[0].partitions[0].error_code,
			    0);
		raw_reply_free(&r);
	}
	free(corr);
	tl_buf_deinit(&all);
	tl_buf_deinit(&frame);
	tl_buf_deinit(&batch);
	client_close(&c);
	printf("pipeline: produce %d fetch %d\n", count, count);
	return 0;
}

/* One DeleteRecords v1 of @topic-@partition to @offset, on the broker given, whatever
 * it leads: prints its error code and low watermark. */
/* One DeleteRecords v1 on @c itself; returns the error code, the low watermark in @low. */
static int16_t delete_records_one(struct client *c, const char *topic, int32_t partition,
				  int64_t offset, int32_t timeout_ms, int64_t *low)
{
	struct tl_delete_records_request_delete_records_partition part;
	tl_delete_records_request_delete_records_partition_defaults(&part);
	part.partition_index = partition;
	part.offset = offset;
	struct tl_delete_records_request_delete_records_topic t;
	tl_delete_records_request_delete_records_topic_defaults(&t);
	t.name = tl_str_of(topic);
	t.partitions = &part;
	t.partitions_count = 1;
	struct tl_delete_records_request msg;
	tl_delete_records_request_defaults(&msg);
	msg.topics = &t;
	msg.topics_count = 1;
	msg.timeout_ms = timeout_ms;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(c, &frame, TL_API_DELETE_RECORDS, 1);
	tl_delete_records_request_encode(&frame, 1, &msg);
	if (!request_send(c, &frame))
		fail("DeleteRecords: connection closed while sending");
	tl_buf_deinit(&frame);
	struct raw_reply r;
	reply_must(c, TL_API_DELETE_RECORDS, 1, corr, &r);
	struct tl_delete_records_response resp;
	decoded(tl_delete_records_response_decode(&r.body, 1, &r.arena, &resp), &r,
		"DeleteRecords");
	if (resp.topics_count != 1 || resp.topics[0].partitions_count != 1)
		fail("DeleteRecords: not one partition in the answer");
	int16_t code = resp.topics[0].partitions[0].error_code;
	*low = resp.topics[0].partitions[0].low_watermark;
	raw_reply_free(&r);
	return code;
}

static int run_delete_records(const char *topic, int32_t partition, int64_t offset,
			      int32_t timeout_ms)
{
	struct client c;
	client_open(&c);
	int64_t low;
	int16_t code = delete_records_one(&c, topic, partition, offset, timeout_ms, &low);
	printf("error %d low-watermark %" PRId64 "\n", code, low);
	client_close(&c);
	return 0;
}

/* The ISR of @topic-@partition in a Metadata v12 answer on @c, answering @corr; -1 when
 * the answer lacks the partition. Copies at most @max node ids into @isr. */
static int32_t metadata_isr_recv(struct client *c, int32_t corr, const char *topic,
				 int32_t partition, int32_t *isr, int32_t max)
{
	struct raw_reply r;
	reply_must(c, TL_API_METADATA, 12, corr, &r);
	struct tl_metadata_response resp;
	decoded(tl_metadata_response_decode(&r.body, 12, &r.arena, &resp), &r, "Metadata");
	int32_t count = -1;
	for (int32_t t = 0; t < resp.topics_count; t++) {
		const struct tl_metadata_response_metadata_response_topic *mt = &resp.topics[t];
		if (!tl_str_eq_c(mt->name, topic))
			continue;
		for (int32_t i = 0; i < mt->partitions_count; i++) {
			if (mt->partitions[i].partition_index != partition)
				continue;
			count = mt->partitions[i].isr_nodes_count;
			for (int32_t k = 0; k < count && k < max; k++)
				isr[k] = mt->partitions[i].isr_nodes[k];
		}
	}
	raw_reply_free(&r);
	return count;
}

static int32_t metadata_send(struct client *c, const char *topic, int16_t version)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = raw_encode_metadata(&frame, &c->correlation_id, "rawproto", version, topic);
	if (!request_send(c, &frame))
		fail("Metadata: connection closed while sending");
	tl_buf_deinit(&frame);
	return corr;
}

/* One Metadata request at @version for @topic on BROKER; prints its brokers and each
 * partition's leader and error code (issue #16: LISTENER_NOT_FOUND needs v6+, which
 * kcat's librdkafka never asks). */
static int run_metadata(const char *topic, int16_t version)
{
	if (version < 1 || version > 12)
		fail("metadata: version %d is not in 1..12", version);
	struct client c;
	client_open(&c);
	int32_t corr = metadata_send(&c, topic, version);
	struct raw_reply r;
	reply_must(&c, TL_API_METADATA, version, corr, &r);
	struct tl_metadata_response resp;
	decoded(tl_metadata_response_decode(&r.body, version, &r.arena, &resp), &r, "Metadata");
	for (int32_t b = 0; b < resp.brokers_count; b++)
		printf("broker %d %.*s:%d\n", resp.brokers[b].node_id, resp.brokers[b].host.len,
		       resp.brokers[b].host.ptr, resp.brokers[b].port);
	for (int32_t t = 0; t < resp.topics_count; t++) {
		const struct tl_metadata_response_metadata_response_topic *rt = &resp.topics[t];
		if (!tl_str_eq_c(rt->name, topic))
			continue;
		if (rt->error_code != 0)
			printf("topic error %d\n", rt->error_code);
		for (int32_t i = 0; i < rt->partitions_count; i++)
			printf("partition %d leader %d error %d\n",
			       rt->partitions[i].partition_index, rt->partitions[i].leader_id,
			       rt->partitions[i].error_code);
	}
	raw_reply_free(&r);
	client_close(&c);
	return 0;
}

/* The authorized_operations bit fields of @topic (Metadata v10), the cluster (Metadata
 * v10 and DescribeCluster v0) and @group (DescribeGroups v5), asked for and not: prints
 * "topic T cluster C describe-cluster D group G", then fails unless the fields not asked
 * for are INT32_MIN, as Kafka answers. */
static int run_authorized_ops(const char *topic, const char *group)
{
	struct client c;
	client_open(&c);
	int32_t ops[4];
	for (int ask = 1; ask >= 0; ask--) {
		struct tl_buf frame;
		tl_buf_init(&frame);
		struct tl_metadata_request_metadata_request_topic mt;
		tl_metadata_request_metadata_request_topic_defaults(&mt);
		mt.name = tl_str_of(topic);
		struct tl_metadata_request md;
		tl_metadata_request_defaults(&md);
		md.topics_count = 1;
		md.topics = &mt;
		md.allow_auto_topic_creation = false;
		md.include_cluster_authorized_operations = ask;
		md.include_topic_authorized_operations = ask;
		int32_t corr = request_begin(&c, &frame, TL_API_METADATA, 10);
		tl_metadata_request_encode(&frame, 10, &md);
		struct raw_reply r;
		roundtrip(&c, &frame, TL_API_METADATA, 10, corr, "Metadata", &r);
		struct tl_metadata_response mresp;
		decoded(tl_metadata_response_decode(&r.body, 10, &r.arena, &mresp), &r, "Metadata");
		if (mresp.topics_count != 1)
			fail("Metadata: %d topics in the answer, want 1", mresp.topics_count);
		ops[0] = mresp.topics[0].topic_authorized_operations;
		ops[1] = mresp.cluster_authorized_operations;
		raw_reply_free(&r);

		struct tl_describe_cluster_request dc;
		tl_describe_cluster_request_defaults(&dc);
		dc.include_cluster_authorized_operations = ask;
		corr = request_begin(&c, &frame, TL_API_DESCRIBE_CLUSTER, 0);
		tl_describe_cluster_request_encode(&frame, 0, &dc);
		roundtrip(&c, &frame, TL_API_DESCRIBE_CLUSTER, 0, corr, "DescribeCluster", &r);
		struct tl_describe_cluster_response dresp;
		decoded(tl_describe_cluster_response_decode(&r.body, 0, &r.arena, &dresp), &r,
			"DescribeCluster");
		ops[2] = dresp.cluster_authorized_operations;
		raw_reply_free(&r);

		struct tl_str groups[1] = {tl_str_of(group)};
		struct tl_describe_groups_request dg;
		tl_describe_groups_request_defaults(&dg);
		dg.groups_count = 1;
		dg.groups = groups;
		dg.include_authorized_operations = ask;
		corr = request_begin(&c, &frame, TL_API_DESCRIBE_GROUPS, 5);
		tl_describe_groups_request_encode(&frame, 5, &dg);
		roundtrip(&c, &frame, TL_API_DESCRIBE_GROUPS, 5, corr, "DescribeGroups", &r);
		struct tl_describe_groups_response gresp;
		decoded(tl_describe_groups_response_decode(&r.body, 5, &r.arena, &gresp), &r,
			"DescribeGroups");
		if (gresp.groups_count != 1)
			fail("DescribeGroups: %d groups in the answer, want 1", gresp.groups_count);
		ops[3] = gresp.groups[0].authorized_operations;
		raw_reply_free(&r);
		tl_buf_deinit(&frame);
		if (ask) {
			printf("topic %d cluster %d describe-cluster %d group %d\n", ops[0], ops[1],
			       ops[2], ops[3]);
			continue;
		}
		for (int i = 0; i < 4; i++)
			if (ops[i] != INT32_MIN)
				fail("authorized operations not asked for, answer %d is %d, want "
				     "INT32_MIN",
				     i, ops[i]);
	}
	client_close(&c);
	return 0;
}

/* Against LEADER, the leader of @topic-0, whose followers are paused (SIGSTOP) so that
 * acks=all waits until replica.lag.time.max.ms (@lag_ms) drops them from the ISR:
 * (1) a Produce with timeout_ms @timeout_ms is answered REQUEST_TIMED_OUT, no sooner
 *     than @timeout_ms and before the ISR shrinks (Kafka's DelayedProduce expiry);
 * (2) a Produce with a timeout past the lag, then on the same connection a Metadata
 *     request: the Produce succeeds once the ISR shrank, and the Metadata answer, sent
 *     after it, lists @leader alone in the ISR: it describes the cluster when it is
 *     answered, not when it arrived behind the Produce (issue 15, test 902's stall).
 * Both batches stay in the log ("isr-wait-timed-out-0", "isr-wait-late-0"). */
static int run_isr_wait(const char *topic, int32_t leader, int32_t timeout_ms, int32_t lag_ms)
{
	struct client c;
	client_open(&c);
	struct tl_buf batch;
	int64_t base;
	build_batch(&batch, "isr-wait-timed-out", 1, TL_COMPRESSION_NONE, -1, -1, -1);
	produce_timeout_ms = timeout_ms;
	int64_t start = tl_mono_ms();
	int16_t code = produce(&c, 9, topic, 0, &batch, &base);
	int64_t took = tl_mono_ms() - start;
	tl_buf_deinit(&batch);
	expect_code("Produce acks=all past timeout_ms with the followers paused", code,
		    TL_ERR_REQUEST_TIMED_OUT);
	if (took < timeout_ms - 5) /* the monotonic clocks' milliseconds round apart */
		fail("REQUEST_TIMED_OUT after %" PRId64 " ms, before timeout_ms %d", took,
		     timeout_ms);
	if (took >= lag_ms)
		fail("REQUEST_TIMED_OUT after %" PRId64 " ms, not before the ISR shrinks (%d ms)",
		     took, lag_ms);
	printf("isr-wait: REQUEST_TIMED_OUT after %" PRId64 " ms (timeout_ms %d)\n", took,
	       timeout_ms);

	build_batch(&batch, "isr-wait-late", 1, TL_COMPRESSION_NONE, -1, -1, -1);
	produce_timeout_ms = 4 * lag_ms;
	start = tl_mono_ms();
	int32_t produce_corr = produce_send(&c, 9, -1, topic, 0, &batch);
	int32_t metadata_corr = metadata_send(&c, topic, 12);
	code = produce_recv(&c, 9, produce_corr, topic, 0, &base);
	took = tl_mono_ms() - start;
	tl_buf_deinit(&batch);
	expect_code("Produce acks=all waiting for the ISR to shrink", code, 0);
	int32_t isr[8];
	int32_t isr_count = metadata_isr_recv(&c, metadata_corr, topic, 0, isr, 8);
	if (isr_count != 1 || isr[0] != leader) {
		char text[64] = "";
		for (int32_t k = 0, n = 0; k < isr_count && k < 8; k++)
			n += snprintf(text + n, sizeof(text) - (size_t)n, "%s%d", k ? "," : "",
				      isr[k]);
		fail("Metadata answered after the Produce (%" PRId64 " ms) lists ISR [%s] for "
		     "%s-0, expected [%d]: computed when it arrived, not when it was answered",
		     took, text, topic, leader);
	}
	printf("isr-wait: Produce answered after %" PRId64 " ms, then Metadata with ISR [%d]\n",
	       took, leader);
	client_close(&c);
	printf("isr-wait: ok\n");
	return 0;
}

/* Against a broker that follows @topic-0: Produce and a consumer's Fetch are
 * NOT_LEADER_OR_FOLLOWER, so that clients refresh their metadata. */
static int run_not_leader(const char *topic)
{
	struct client c;
	client_open(&c);
	struct tl_buf batch;
	build_batch(&batch, "misdirected", 1, TL_COMPRESSION_NONE, -1, -1, -1);
	int64_t base;
	expect_code("Produce to a follower", produce(&c, 9, topic, 0, &batch, &base),
		    TL_ERR_NOT_LEADER_OR_FOLLOWER);
	tl_buf_deinit(&batch);
	expect_code("Fetch from a follower", fetch_with_epoch(&c, topic, -1),
		    TL_ERR_NOT_LEADER_OR_FOLLOWER);
	client_close(&c);
	printf("not-leader: ok\n");
	return 0;
}

/* ---- DescribeConfigs ---- */

static int run_describe_broker(const char *id)
{
	struct client c;
	client_open(&c);
	struct tl_describe_configs_request_describe_configs_resource res;
	tl_describe_configs_request_describe_configs_resource_defaults(&res);
	res.resource_type = 4; /* BROKER */
	res.resource_name = tl_str_of(id);
	res.configuration_keys_count = -1;
	struct tl_describe_configs_request msg;
	tl_describe_configs_request_defaults(&msg);
	msg.resources = &res;
	msg.resources_count = 1;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = request_begin(&c, &frame, TL_API_DESCRIBE_CONFIGS, 4);
	tl_describe_configs_request_encode(&frame, 4, &msg);
	if (!request_send(&c, &frame))
		fail("DescribeConfigs: connection closed while sending");
	tl_buf_deinit(&frame);
	struct raw_reply r;
	reply_must(&c, TL_API_DESCRIBE_CONFIGS, 4, corr, &r);
	struct tl_describe_configs_response resp;
	decoded(tl_describe_configs_response_decode(&r.body, 4, &r.arena, &resp), &r,
		"DescribeConfigs");
	if (resp.results_count != 1)
		fail("DescribeConfigs: %d results, want 1", resp.results_count);
	printf("error %d configs %d\n", resp.results[0].error_code, resp.results[0].configs_count);
	raw_reply_free(&r);
	client_close(&c);
	return 0;
}

/* ---- record validation ---- */

/* Produces @batch (CRC recomputed after the caller's edits) and wants error @want. */
static void expect_refused(struct client *c, const char *topic, struct tl_buf *batch, int want,
			   const char *what)
{
	tl_batch_crc_update(batch->data, batch->len);
	int64_t base;
	int16_t code = produce(c, 9, topic, 0, batch, &base);
	if (code != want)
		fail("%s: Produce answered %d (%s), want %d (%s)", what, code,
		     tl_err_name((tl_err)code), want, tl_err_name((tl_err)want));
	note("%s: refused with %s", what, tl_err_name((tl_err)code));
	tl_buf_deinit(batch);
}

static int run_bad_records(const char *topic)
{
	struct client c;
	client_open(&c);
	ensure_topic(&c, topic, 1);
	struct tl_buf b;
	int64_t base;
	build_batch(&b, "good", 3, TL_COMPRESSION_NONE, -1, 0, 0);
	expect_code("Produce of a good batch", produce(&c, 9, topic, 0, &b, &base), 0);
	tl_buf_deinit(&b);

	/* A zstd body whose frame magic is gone: the CRC covers the damage. */
	build_batch(&b, "zstd", 20, TL_COMPRESSION_ZSTD, -1, 0, 0);
	memset(b.data + TL_BATCH_HEADER_BYTES, 0xee, 4);
	expect_refused(&c, topic, &b, TL_ERR_CORRUPT_MESSAGE, "corrupt zstd body");

	/* The zstd batch's last compressed bytes cut off (length fixed up). */
	build_batch(&b, "zstd", 20, TL_COMPRESSION_ZSTD, -1, 0, 0);
	b.len -= 6;
	tl_be32_put(b.data + TL_BATCH_OFF_LENGTH, (uint32_t)(b.len - TL_BATCH_LOG_OVERHEAD));
	expect_refused(&c, topic, &b, TL_ERR_CORRUPT_MESSAGE, "truncated zstd body");

	/* recordsCount 5 (and lastOffsetDelta 4) over 3 records. */
	build_batch(&b, "count", 3, TL_COMPRESSION_NONE, -1, 0, 0);
	tl_be32_put(b.data + TL_BATCH_OFF_RECORDS_COUNT, 5);
	tl_be32_put(b.data + TL_BATCH_OFF_LAST_OFFSET_DELTA, 4);
	expect_refused(&c, topic, &b, TL_ERR_INVALID_RECORD, "recordsCount 5 over 3 records");

	/* recordsCount 2 over 3 records: bytes follow the last counted one. */
	build_batch(&b, "count", 3, TL_COMPRESSION_NONE, -1, 0, 0);
	tl_be32_put(b.data + TL_BATCH_OFF_RECORDS_COUNT, 2);
	tl_be32_put(b.data + TL_BATCH_OFF_LAST_OFFSET_DELTA, 1);
	expect_refused(&c, topic, &b, TL_ERR_INVALID_RECORD, "recordsCount 2 over 3 records");

	/* Record 1's offsetDelta 5 (zigzag 10): length, attributes, timestampDelta 0 are one
	 * byte each. */
	build_batch(&b, "delta", 2, TL_COMPRESSION_NONE, -1, 0, 0);
	uint8_t *r0 = b.data + TL_BATCH_HEADER_BYTES;
	uint8_t *r1 = r0 + 1 + (r0[0] >> 1); /* length is a small zigzag varint */
	if (r1[1] != 0 || r1[2] != 0 || r1[3] != 2)
		fail("record 1 is not laid out as expected");
	r1[3] = 10;
	expect_refused(&c, topic, &b, TL_ERR_INVALID_RECORD, "offsetDelta 5 in record 1");

	expect_list_offsets(&c, topic, -1, 3, -1);
	client_close(&c);
	printf("bad-records: ok\n");
	return 0;
}

static void send_bytes_expect_closed(const void *data, size_t len, const char *what)
{
	struct client c;
	client_open(&c);
	if (send_all(c.fd, data, len))
		expect_closed(&c, what);
	client_close(&c);
}

static void bad_framing(void)
{
	uint8_t frame[64];
	tl_be32_put(frame, (uint32_t)REQUEST_MAX_BYTES + 1);
	send_bytes_expect_closed(frame, 4, "size prefix above socket.request.max.bytes");
	tl_be32_put(frame, 0x7fffffffu);
	send_bytes_expect_closed(frame, 4, "size prefix 2^31-1");
	tl_be32_put(frame, 0xffffffffu);
	send_bytes_expect_closed(frame, 4, "size prefix -1");
	tl_be32_put(frame, 0);
	send_bytes_expect_closed(frame, 4, "size prefix 0");
	tl_be32_put(frame, 3);
	memset(frame + 4, 0, 3);
	send_bytes_expect_closed(frame, 7, "frame of 3 bytes");
	/* A header whose client id runs past the frame. */
	memset(frame, 0, sizeof(frame));
	tl_be32_put(frame, 12);
	tl_be16_put(frame + 4, TL_API_METADATA);
	tl_be16_put(frame + 6, 1);
	tl_be32_put(frame + 8, 7);
	tl_be16_put(frame + 12, 500);
	send_bytes_expect_closed(frame, 16, "client id longer than the frame");

	/* Truncated frames: the peer goes away mid-frame, small and large. */
	struct client c;
	client_open(&c);
	tl_be32_put(frame, 100);
	send_all(c.fd, frame, 54);
	client_close(&c);
	client_open(&c);
	tl_be32_put(frame, 50u << 20);
	uint8_t *big = calloc(1, 1u << 20);
	if (!big)
		fail("out of memory");
	send_all(c.fd, frame, 4);
	send_all(c.fd, big, 1u << 20);
	free(big);
	client_close(&c);
	client_open(&c);
	check_api_versions(&c, "after truncated frames");
	client_close(&c);
	note("framing: oversize, undersize and truncated frames handled");
}

/* A request for @key at @version whose body is @body_len zero bytes. */
static void header_only_frame(struct tl_buf *frame, int16_t key, int16_t version, size_t body_len)
{
	tl_buf_reset(frame);
	tl_buf_i32(frame, 0);
	struct tl_request_header header = {key, version, 42, tl_str_of("rawproto")};
	tl_request_header_encode(frame, &header);
	uint8_t *body = tl_buf_extend(frame, body_len);
	if (body_len && body)
		memset(body, 0, body_len);
	request_finish(frame);
}

static void bad_versions(void)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	struct client c;
	client_open(&c);
	int16_t unserved = check_api_versions(&c, "before bad versions");
	client_close(&c);
	char unserved_what[96];
	snprintf(unserved_what, sizeof(unserved_what),
		 "Kafka API %d, which the broker does not advertise", unserved);
	struct {
		int16_t key;
		int16_t version;
		const char *what;
	} cases[] = {
		{999, 0, "unknown api key 999"},
		{-1, 0, "api key -1"},
		{unserved >= 0 ? unserved : 999, 0, unserved_what},
		{TL_API_PRODUCE, 99, "Produce v99"},
		{TL_API_PRODUCE, -1, "Produce v-1"},
		{TL_API_FETCH, 17, "Fetch v17"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		header_only_frame(&frame, cases[i].key, cases[i].version, 16);
		send_bytes_expect_closed(frame.data, frame.len, cases[i].what);
	}
	/* ApiVersions at a version the broker does not know: a v0 answer with
	 * UNSUPPORTED_VERSION and the supported ApiVersions range; the connection stays. */
	client_open(&c);
	int32_t corr;
	encode_api_versions(&c, &frame, 3, &corr);
	tl_be16_put(frame.data + 6, 99); /* api_version field of the header */
	if (!request_send(&c, &frame))
		fail("ApiVersions v99: connection closed while sending");
	struct raw_reply r;
	reply_must(&c, TL_API_API_VERSIONS, 0, corr, &r);
	struct tl_api_versions_response resp;
	decoded(tl_api_versions_response_decode(&r.body, 0, &r.arena, &resp), &r,
		"ApiVersions v99 (read as v0)");
	expect_code("ApiVersions v99", resp.error_code, TL_ERR_UNSUPPORTED_VERSION);
	bool listed = false;
	for (int32_t i = 0; i < resp.api_keys_count; i++)
		listed |= resp.api_keys[i].api_key == TL_API_API_VERSIONS &&
			  resp.api_keys[i].min_version == 0 && resp.api_keys[i].max_version >= 3;
	if (!listed)
		fail("ApiVersions v99: the answer does not give the supported ApiVersions range");
	raw_reply_free(&r);
	check_api_versions(&c, "on the connection that sent ApiVersions v99");
	client_close(&c);
	/* A known request whose body does not decode. */
	header_only_frame(&frame, TL_API_PRODUCE, 9, 3);
	send_bytes_expect_closed(frame.data, frame.len, "Produce v9 with a 3-byte body");
	header_only_frame(&frame, TL_API_FETCH, 12, 1);
	send_bytes_expect_closed(frame.data, frame.len, "Fetch v12 with a 1-byte body");
	tl_buf_deinit(&frame);
	note("versions: unknown keys and versions close, ApiVersions answers v0 with error 35");
}

/* ---- badinput: produce errors ---- */

static void bad_batches(const char *topic)
{
	struct client c;
	client_open(&c);
	int64_t base;
	struct tl_buf batch;

	build_batch(&batch, "crc", 3, TL_COMPRESSION_NONE, -1, -1, -1);
	batch.data[batch.len - 1] ^= 0x01;
	expect_code("batch with a bad CRC", produce(&c, 9, topic, 0, &batch, &base),
		    TL_ERR_CORRUPT_MESSAGE);
	batch.data[batch.len - 1] ^= 0x01;
	/* batchLength says more than was sent. */
	batch.len -= 5;
	expect_code("batch cut short", produce(&c, 9, topic, 0, &batch, &base),
		    TL_ERR_CORRUPT_MESSAGE);
	tl_buf_deinit(&batch);

	/* One record above message.max.bytes, in a request well under the frame limit. */
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, TL_COMPRESSION_NONE);
	size_t big_len = MESSAGE_MAX_BYTES + 4096;
	uint8_t *big = calloc(1, big_len);
	if (!big)
		fail("out of memory");
	struct tl_bytes no_key = {NULL, -1};
	struct tl_bytes value = {big, (int32_t)big_len};
	if (tl_records_builder_append(&builder, tl_wall_ms(), no_key, value, NULL, 0) != TL_OK)
		fail("builder append failed");
	tl_buf_init(&batch);
	if (tl_records_builder_finish(&builder, NULL, &batch) != TL_OK)
		fail("builder finish failed");
	tl_records_builder_deinit(&builder);
	free(big);
	expect_code("batch above message.max.bytes", produce(&c, 9, topic, 0, &batch, &base),
		    TL_ERR_MESSAGE_TOO_LARGE);
	tl_buf_deinit(&batch);

	build_batch(&batch, "lost", 2, TL_COMPRESSION_NONE, -1, -1, -1);
	expect_code("topic that does not exist (auto-create off)",
		    produce(&c, 9, "no-such-topic", 0, &batch, &base),
		    TL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
	expect_code("partition 7 of a 1-partition topic", produce(&c, 9, topic, 7, &batch, &base),
		    TL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
	expect_code("partition -1", produce(&c, 3, topic, -1, &batch, &base),
		    TL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
	int32_t corr = produce_send(&c, 9, 2, topic, 0, &batch);
	expect_code("acks=2", produce_recv(&c, 9, corr, topic, 0, &base),
		    TL_ERR_INVALID_REQUIRED_ACKS);
	check_api_versions(&c, "after refused batches, same connection");

	/* acks=0: a valid batch gets no answer, so the next answer is the next request's. */
	build_batch(&batch, "acks0", 2, TL_COMPRESSION_NONE, -1, -1, -1);
	produce_send(&c, 9, 0, topic, 0, &batch);
	check_api_versions(&c, "after an acks=0 produce");
	/* acks=0 with an error: the broker closes the connection (Kafka's only signal). */
	produce_send(&c, 9, 0, "no-such-topic", 0, &batch);
	expect_closed(&c, "acks=0 produce to an unknown topic");
	tl_buf_deinit(&batch);
	note("produce: CRC, truncation, size, topic, partition and acks errors as Kafka");
}

/* Pipelines produces and disconnects before any answer: the broker must finish the
 * writes it took (their waiters outlive the connection) without crashing. */
static void abandoned_produces(const char *topic)
{
	struct client c;
	client_open(&c);
	struct tl_buf batch;
	build_batch(&batch, "pipe", 4, TL_COMPRESSION_NONE, -1, -1, -1);
	for (int i = 0; i < 50; i++)
		produce_send(&c, 9, -1, topic, 0, &batch);
	client_close(&c);
	tl_buf_deinit(&batch);
	client_open(&c);
	check_api_versions(&c, "after abandoned produces");
	client_close(&c);
}

/* ---- badinput: garbage frames ---- */

struct garbage {
	uint8_t bytes[2048];
	size_t len;
	int mode;
};

static struct garbage history[GARBAGE_HISTORY];

/* Templates for mutation: valid requests of several APIs, size prefix included. */
struct templates {
	struct tl_buf frames[12];
	int count;
};

static void templates_build(struct templates *t, const char *topic)
{
	struct client fake = {-1, 1000};
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < sizeof(t->frames) / sizeof(t->frames[0]); i++)
		tl_buf_init(&t->frames[i]);
	struct tl_buf batch;
	build_batch(&batch, "mut", 3, TL_COMPRESSION_NONE, -1, -1, -1);
	encode_produce(&fake, &t->frames[t->count++], 9, -1, topic, 0, batch.data, batch.len);
	encode_produce(&fake, &t->frames[t->count++], 3, 1, topic, 0, batch.data, batch.len);
	tl_buf_deinit(&batch);
	build_batch(&batch, "mutz", 3, TL_COMPRESSION_ZSTD, -1, -1, -1);
	encode_produce(&fake, &t->frames[t->count++], 7, -1, topic, 0, batch.data, batch.len);
	tl_buf_deinit(&batch);
	encode_fetch(&fake, &t->frames[t->count++], 12, topic, 0, 0, 5);
	encode_fetch(&fake, &t->frames[t->count++], 4, topic, 0, 0, 5);

	raw_encode_metadata(&t->frames[t->count++], &fake.correlation_id, "rawproto", 12, topic);
	raw_encode_metadata(&t->frames[t->count++], &fake.correlation_id, "rawproto", 1, topic);

	struct tl_list_offsets_request_list_offsets_partition lp;
	tl_list_offsets_request_list_offsets_partition_defaults(&lp);
	lp.partition_index = 0;
	lp.timestamp = -1;
	struct tl_list_offsets_request_list_offsets_topic lt;
	tl_list_offsets_request_list_offsets_topic_defaults(&lt);
	lt.name = tl_str_of(topic);
	lt.partitions_count = 1;
	lt.partitions = &lp;
	struct tl_list_offsets_request lo;
	tl_list_offsets_request_defaults(&lo);
	lo.replica_id = -1;
	lo.topics_count = 1;
	lo.topics = &lt;
	request_begin(&fake, &t->frames[t->count], TL_API_LIST_OFFSETS, 7);
	tl_list_offsets_request_encode(&t->frames[t->count++], 7, &lo);

	struct tl_join_group_request_join_group_request_protocol jp;
	tl_join_group_request_join_group_request_protocol_defaults(&jp);
	static const uint8_t meta[] = {0,   0,   0,   0,   0,   1,   0,    18,   'z',  'z',
				       '-', 'm', 'u', 't', 'a', 't', 'i',  'o',  'n',  '-',
				       't', 'a', 'r', 'g', 'e', 't', 0xff, 0xff, 0xff, 0xff};
	jp.name = tl_str_of("range");
	jp.metadata.ptr = meta;
	jp.metadata.len = (int32_t)sizeof(meta);
	struct tl_join_group_request jg;
	tl_join_group_request_defaults(&jg);
	jg.group_id = tl_str_of("mut-group");
	jg.session_timeout_ms = 10000;
	jg.rebalance_timeout_ms = 10000;
	jg.member_id = tl_str_of("");
	jg.group_instance_id.ptr = NULL;
	jg.group_instance_id.len = -1;
	jg.protocol_type = tl_str_of("consumer");
	jg.protocols_count = 1;
	jg.protocols = &jp;
	request_begin(&fake, &t->frames[t->count], TL_API_JOIN_GROUP, 7);
	tl_join_group_request_encode(&t->frames[t->count++], 7, &jg);

	struct tl_init_producer_id_request ip;
	tl_init_producer_id_request_defaults(&ip);
	ip.transactional_id.ptr = NULL;
	ip.transactional_id.len = -1;
	ip.producer_id = -1;
	ip.producer_epoch = -1;
	request_begin(&fake, &t->frames[t->count], TL_API_INIT_PRODUCER_ID, 4);
	tl_init_producer_id_request_encode(&t->frames[t->count++], 4, &ip);

	int32_t corr;
	encode_api_versions(&fake, &t->frames[t->count++], 3, &corr);
	for (int i = 0; i < t->count; i++)
		request_finish(&t->frames[i]);
}

static void templates_free(struct templates *t)
{
	for (size_t i = 0; i < sizeof(t->frames) / sizeof(t->frames[0]); i++)
		tl_buf_deinit(&t->frames[i]);
}

/* APIs the random-header mode may name: never CreateTopics or DeleteTopics, so garbage
 * cannot make the broker create 100000 partitions or delete the test's topics. */
static const int16_t garbage_keys[] = {
	TL_API_PRODUCE,          TL_API_FETCH,         TL_API_LIST_OFFSETS,
	TL_API_METADATA,         TL_API_OFFSET_COMMIT, TL_API_OFFSET_FETCH,
	TL_API_FIND_COORDINATOR, TL_API_JOIN_GROUP,    TL_API_HEARTBEAT,
	TL_API_LEAVE_GROUP,      TL_API_SYNC_GROUP,    TL_API_DESCRIBE_GROUPS,
	TL_API_LIST_GROUPS,      TL_API_API_VERSIONS,  TL_API_DESCRIBE_CONFIGS,
	TL_API_INIT_PRODUCER_ID, TL_API_DELETE_GROUPS, TL_API_OFFSET_DELETE,
};

static void garbage_make(struct garbage *g, const struct templates *t)
{
	g->mode = (int)rng_below(4);
	if (g->mode == 0) {
		/* Random bytes behind a truthful size prefix. */
		g->len = 4 + rng_below(300);
		for (size_t i = 4; i < g->len; i++)
			g->bytes[i] = (uint8_t)rng_next();
		tl_be32_put(g->bytes, (uint32_t)(g->len - 4));
	} else if (g->mode == 1) {
		/* A valid header for a served API, then a random body. */
		int16_t key =
			garbage_keys[rng_below(sizeof(garbage_keys) / sizeof(garbage_keys[0]))];
		int16_t version = (int16_t)rng_below(13);
		struct tl_buf frame;
		tl_buf_init(&frame);
		header_only_frame(&frame, key, version, 0);
		size_t body = rng_below(400);
		memcpy(g->bytes, frame.data, frame.len);
		g->len = frame.len + body;
		tl_buf_deinit(&frame);
		for (size_t i = g->len - body; i < g->len; i++)
			g->bytes[i] = (uint8_t)(rng_below(4) == 0 ? 0 : rng_next());
		tl_be32_put(g->bytes, (uint32_t)(g->len - 4));
	} else {
		/* A valid request with a few bytes changed, sometimes cut or lying about its
		 * size (mode 3). */
		const struct tl_buf *frame = &t->frames[rng_below((uint32_t)t->count)];
		g->len = frame->len < sizeof(g->bytes) ? frame->len : sizeof(g->bytes);
		memcpy(g->bytes, frame->data, g->len);
		uint32_t changes = 1 + rng_below(6);
		for (uint32_t i = 0; i < changes; i++) {
			size_t at = 4 + rng_below((uint32_t)(g->len - 4));
			static const uint8_t special[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
			switch (rng_below(3)) {
			case 0:
				g->bytes[at] ^= (uint8_t)(1u << rng_below(8));
				break;
			case 1:
				g->bytes[at] = special[rng_below(sizeof(special))];
				break;
			default:
				g->bytes[at] = (uint8_t)rng_next();
				break;
			}
		}
		if (g->mode == 3) {
			if (rng_below(2))
				g->len = 4 + rng_below((uint32_t)(g->len - 4));
			else
				tl_be32_put(g->bytes, tl_be32_get(g->bytes) + rng_below(64));
		}
	}
}

static void garbage_report_death(int round, uint64_t seed)
{
	fprintf(stderr,
		"rawproto: the broker stopped answering after garbage frame %d "
		"(seed %" PRIu64 "); last frames sent, newest last:\n",
		round, seed);
	for (int back = GARBAGE_HISTORY - 1; back >= 0; back--) {
		int r = round - back;
		if (r < 0)
			continue;
		const struct garbage *g = &history[r % GARBAGE_HISTORY];
		fprintf(stderr, "  #%d mode %d len %zu:", r, g->mode, g->len);
		for (size_t i = 0; i < g->len && i < 96; i++)
			fprintf(stderr, " %02x", g->bytes[i]);
		fputc('\n', stderr);
	}
}

static void garbage_frames(const char *mut_topic, uint64_t seed)
{
	struct templates t;
	templates_build(&t, mut_topic);
	rng_state = seed ? seed : 1;
	for (int round = 0; round < GARBAGE_ROUNDS; round++) {
		struct garbage *g = &history[round % GARBAGE_HISTORY];
		garbage_make(g, &t);
		int fd = connect_fd();
		if (fd == -1) {
			garbage_report_death(round - 1, seed);
			fail("cannot connect after garbage frame %d: %s", round - 1,
			     strerror(errno));
		}
		if (send_all(fd, g->bytes, g->len)) {
			/* Read whatever comes (an answer or the close), briefly. */
			uint8_t sink[4096];
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			int64_t deadline = tl_mono_ms() + GARBAGE_WAIT_MS;
			while (tl_mono_ms() < deadline &&
			       poll(&pfd, 1, (int)(deadline - tl_mono_ms())) > 0) {
				ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
				if (n <= 0 && !(n == -1 && errno == EAGAIN))
					break;
			}
		}
		close(fd);
		if (round % 50 == 49) {
			struct client c;
			c.fd = connect_fd();
			c.correlation_id = 1;
			if (c.fd == -1) {
				garbage_report_death(round, seed);
				fail("cannot connect after garbage frame %d: %s", round,
				     strerror(errno));
			}
			check_api_versions(&c, "during garbage frames");
			client_close(&c);
		}
	}
	templates_free(&t);
	note("garbage: %d seeded frames (seed %" PRIu64 ") survived", GARBAGE_ROUNDS, seed);
}

/* ---- seeds for the fuzz targets (tests/fuzz/) ---- */

static void seed_write(const char *dir, const char *name, uint8_t mode, bool with_mode,
		       const uint8_t *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		fail("cannot write %s: %s", path, strerror(errno));
	if (with_mode)
		fputc(mode, f);
	fwrite(data, 1, len, f);
	if (fclose(f) != 0)
		fail("cannot write %s: %s", path, strerror(errno));
}

/* ---- sessions for fuzz_broker: whole connections, size prefixes included ---- */

/* Appends the finished @frame to @session and empties it. */
static void session_add(struct tl_buf *session, struct tl_buf *frame)
{
	request_finish(frame);
	tl_buf_put(session, frame->data, frame->len);
	tl_buf_reset(frame);
}

/* fuzz_broker makes member ids deterministic: the n-th of an input is
 * "rawproto-" + 30 zeros + n in two hex digits. */
#define SEED_MEMBER "rawproto-00000000000000000000000000000001"

/* A consumer group's life on one connection: JoinGroup (MEMBER_ID_REQUIRED, then again
 * with the id), SyncGroup as the leader, Heartbeat, OffsetCommit, OffsetFetch,
 * LeaveGroup. */
static void seed_group_session(struct tl_buf *session, struct client *c)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	static const uint8_t meta[] = {0,   0,   0,   0,   0,   1,   0,   10,   's',  'e',  'e',
				       'd', '-', 't', 'o', 'p', 'i', 'c', 0xff, 0xff, 0xff, 0xff};
	struct tl_join_group_request_join_group_request_protocol jp;
	tl_join_group_request_join_group_request_protocol_defaults(&jp);
	jp.name = tl_str_of("range");
	jp.metadata.ptr = meta;
	jp.metadata.len = (int32_t)sizeof(meta);
	struct tl_join_group_request jg;
	tl_join_group_request_defaults(&jg);
	jg.group_id = tl_str_of("seed-group");
	jg.session_timeout_ms = 10000;
	jg.rebalance_timeout_ms = 10000;
	jg.member_id = tl_str_of("");
	jg.group_instance_id.ptr = NULL;
	jg.group_instance_id.len = -1;
	jg.protocol_type = tl_str_of("consumer");
	jg.protocols_count = 1;
	jg.protocols = &jp;
	request_begin(c, &frame, TL_API_JOIN_GROUP, 5);
	tl_join_group_request_encode(&frame, 5, &jg);
	session_add(session, &frame);
	jg.member_id = tl_str_of(SEED_MEMBER);
	request_begin(c, &frame, TL_API_JOIN_GROUP, 5);
	tl_join_group_request_encode(&frame, 5, &jg);
	session_add(session, &frame);

	static const uint8_t assignment[] = {
		0,   0, 0, 0, 0, 1, 0, 10, 's', 'e', 'e', 'd', '-', 't',  'o',  'p',  'i',
		'c', 0, 0, 0, 2, 0, 0, 0,  0,   0,   0,   0,   1,   0xff, 0xff, 0xff, 0xff};
	struct tl_sync_group_request_sync_group_request_assignment sa;
	tl_sync_group_request_sync_group_request_assignment_defaults(&sa);
	sa.member_id = tl_str_of(SEED_MEMBER);
	sa.assignment.ptr = assignment;
	sa.assignment.len = (int32_t)sizeof(assignment);
	struct tl_sync_group_request sg;
	tl_sync_group_request_defaults(&sg);
	sg.group_id = tl_str_of("seed-group");
	sg.generation_id = 1;
	sg.member_id = tl_str_of(SEED_MEMBER);
	sg.group_instance_id.ptr = NULL;
	sg.group_instance_id.len = -1;
	sg.protocol_type = tl_str_of("consumer");
	sg.protocol_name = tl_str_of("range");
	sg.assignments_count = 1;
	sg.assignments = &sa;
	request_begin(c, &frame, TL_API_SYNC_GROUP, 5);
	tl_sync_group_request_encode(&frame, 5, &sg);
	session_add(session, &frame);

	struct tl_heartbeat_request hb;
	tl_heartbeat_request_defaults(&hb);
	hb.group_id = tl_str_of("seed-group");
	hb.generation_id = 1;
	hb.member_id = tl_str_of(SEED_MEMBER);
	hb.group_instance_id.ptr = NULL;
	hb.group_instance_id.len = -1;
	request_begin(c, &frame, TL_API_HEARTBEAT, 4);
	tl_heartbeat_request_encode(&frame, 4, &hb);
	session_add(session, &frame);

	struct tl_offset_commit_request_offset_commit_request_partition cp[2];
	for (int i = 0; i < 2; i++) {
		tl_offset_commit_request_offset_commit_request_partition_defaults(&cp[i]);
		cp[i].partition_index = i;
		cp[i].committed_offset = 3 + i;
		cp[i].committed_leader_epoch = -1;
		cp[i].committed_metadata = tl_str_of("m");
	}
	struct tl_offset_commit_request_offset_commit_request_topic ct;
	tl_offset_commit_request_offset_commit_request_topic_defaults(&ct);
	ct.name = tl_str_of("seed-topic");
	ct.partitions_count = 2;
	ct.partitions = cp;
	struct tl_offset_commit_request oc;
	tl_offset_commit_request_defaults(&oc);
	oc.group_id = tl_str_of("seed-group");
	oc.generation_id_or_member_epoch = 1;
	oc.member_id = tl_str_of(SEED_MEMBER);
	oc.group_instance_id.ptr = NULL;
	oc.group_instance_id.len = -1;
	oc.topics_count = 1;
	oc.topics = &ct;
	request_begin(c, &frame, TL_API_OFFSET_COMMIT, 7);
	tl_offset_commit_request_encode(&frame, 7, &oc);
	session_add(session, &frame);

	int32_t parts[2] = {0, 1};
	struct tl_offset_fetch_request_offset_fetch_request_topic ft;
	tl_offset_fetch_request_offset_fetch_request_topic_defaults(&ft);
	ft.name = tl_str_of("seed-topic");
	ft.partition_indexes_count = 2;
	ft.partition_indexes = parts;
	struct tl_offset_fetch_request of;
	tl_offset_fetch_request_defaults(&of);
	of.group_id = tl_str_of("seed-group");
	of.topics_count = 1;
	of.topics = &ft;
	request_begin(c, &frame, TL_API_OFFSET_FETCH, 7);
	tl_offset_fetch_request_encode(&frame, 7, &of);
	session_add(session, &frame);

	struct tl_leave_group_request lg;
	tl_leave_group_request_defaults(&lg);
	lg.group_id = tl_str_of("seed-group");
	lg.member_id = tl_str_of(SEED_MEMBER);
	request_begin(c, &frame, TL_API_LEAVE_GROUP, 2);
	tl_leave_group_request_encode(&frame, 2, &lg);
	session_add(session, &frame);
	tl_buf_deinit(&frame);
}

/* An idempotent producer (its id is 0 on a new broker): InitProducerId, a batch, its
 * retry (a duplicate), the next batch, one out of sequence, then a Fetch. */
static void seed_produce_session(struct tl_buf *session, struct client *c)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	struct tl_init_producer_id_request ip;
	tl_init_producer_id_request_defaults(&ip);
	ip.transactional_id.ptr = NULL;
	ip.transactional_id.len = -1;
	ip.producer_id = -1;
	ip.producer_epoch = -1;
	request_begin(c, &frame, TL_API_INIT_PRODUCER_ID, 4);
	tl_init_producer_id_request_encode(&frame, 4, &ip);
	session_add(session, &frame);
	static const int32_t seqs[] = {0, 0, 3, 9};
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		struct tl_buf batch;
		build_batch(&batch, "idem", 3, i == 2 ? TL_COMPRESSION_ZSTD : TL_COMPRESSION_NONE,
			    0, 0, seqs[i]);
		encode_produce(c, &frame, 9, -1, "seed-topic", 0, batch.data, batch.len);
		session_add(session, &frame);
		tl_buf_deinit(&batch);
	}
	encode_fetch(c, &frame, 12, "seed-topic", 0, 0, 0);
	session_add(session, &frame);
	tl_buf_deinit(&frame);
}

/* A transaction: InitProducerId with a transactional id, AddPartitionsToTxn, a
 * transactional batch, EndTxn (commit). */
static void seed_txn_session(struct tl_buf *session, struct client *c)
{
	struct tl_buf frame;
	tl_buf_init(&frame);
	struct tl_init_producer_id_request ip;
	tl_init_producer_id_request_defaults(&ip);
	ip.transactional_id = tl_str_of("seed-txn");
	ip.transaction_timeout_ms = 60000;
	ip.producer_id = -1;
	ip.producer_epoch = -1;
	request_begin(c, &frame, TL_API_INIT_PRODUCER_ID, 4);
	tl_init_producer_id_request_encode(&frame, 4, &ip);
	session_add(session, &frame);
	int32_t partition = 1;
	struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic at;
	tl_add_partitions_to_txn_request_add_partitions_to_txn_topic_defaults(&at);
	at.name = tl_str_of("seed-topic");
	at.partitions_count = 1;
	at.partitions = &partition;
	struct tl_add_partitions_to_txn_request ap;
	tl_add_partitions_to_txn_request_defaults(&ap);
	ap.v3_and_below_transactional_id = tl_str_of("seed-txn");
	ap.v3_and_below_producer_id = 0;
	ap.v3_and_below_producer_epoch = 0;
	ap.v3_and_below_topics_count = 1;
	ap.v3_and_below_topics = &at;
	request_begin(c, &frame, TL_API_ADD_PARTITIONS_TO_TXN, 3);
	tl_add_partitions_to_txn_request_encode(&frame, 3, &ap);
	session_add(session, &frame);
	bool was = batch_transactional;
	batch_transactional = true;
	struct tl_buf batch;
	build_batch(&batch, "txn", 2, TL_COMPRESSION_NONE, 0, 0, 0);
	batch_transactional = was;
	produce_txn_id = "seed-txn";
	encode_produce(c, &frame, 9, -1, "seed-topic", 1, batch.data, batch.len);
	produce_txn_id = NULL;
	session_add(session, &frame);
	tl_buf_deinit(&batch);
	struct tl_end_txn_request et;
	tl_end_txn_request_defaults(&et);
	et.transactional_id = tl_str_of("seed-txn");
	et.producer_id = 0;
	et.producer_epoch = 0;
	et.committed = true;
	request_begin(c, &frame, TL_API_END_TXN, 3);
	tl_end_txn_request_encode(&frame, 3, &et);
	session_add(session, &frame);
	tl_buf_deinit(&frame);
}

/* Seeds for fuzz_broker: each template frame alone, all of them on one connection, and
 * the group, idempotent-producer and transaction sessions. */
static void seeds_broker(const char *dir)
{
	struct templates t;
	templates_build(&t, "seed-topic");
	char name[64];
	struct tl_buf all;
	tl_buf_init(&all);
	for (int i = 0; i < t.count; i++) {
		snprintf(name, sizeof(name), "template-%02d", i);
		seed_write(dir, name, 0, false, t.frames[i].data, t.frames[i].len);
		tl_buf_put(&all, t.frames[i].data, t.frames[i].len);
	}
	seed_write(dir, "templates-all", 0, false, all.data, all.len);
	tl_buf_deinit(&all);
	templates_free(&t);
	static const struct {
		const char *name;
		void (*build)(struct tl_buf *session, struct client *c);
	} sessions[] = {
		{"session-group", seed_group_session},
		{"session-produce", seed_produce_session},
		{"session-txn", seed_txn_session},
	};
	for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++) {
		struct client fake = {-1, 1};
		struct tl_buf session;
		tl_buf_init(&session);
		sessions[i].build(&session, &fake);
		if (session.failed)
			fail("out of memory building a seed");
		seed_write(dir, sessions[i].name, 0, false, session.data, session.len);
		tl_buf_deinit(&session);
	}
}

/* Request frames (no size prefix) for fuzz_request: the badinput templates, and a
 * header with a small zero body for every API and version in the specs. Batches for
 * fuzz_batch, behind its mode byte. */
static int run_seeds(const char *request_dir, const char *batch_dir, const char *broker_dir)
{
	if (broker_dir)
		seeds_broker(broker_dir);
	struct templates t;
	templates_build(&t, "seed-topic");
	char name[64];
	for (int i = 0; i < t.count; i++) {
		snprintf(name, sizeof(name), "template-%02d", i);
		seed_write(request_dir, name, 0, false, t.frames[i].data + 4, t.frames[i].len - 4);
	}
	templates_free(&t);
	struct tl_buf frame;
	tl_buf_init(&frame);
	for (int i = 0; i < tl_api_spec_count; i++) {
		const struct tl_api_spec *spec = &tl_api_specs[i];
		for (int16_t v = spec->version_min; v <= spec->version_max; v++) {
			header_only_frame(&frame, spec->key, v, 8);
			snprintf(name, sizeof(name), "header-%d-v%d", spec->key, v);
			seed_write(request_dir, name, 0, false, frame.data + 4, frame.len - 4);
		}
	}
	tl_buf_deinit(&frame);
	static const struct {
		enum tl_compression compression;
		int64_t pid;
		int32_t count;
	} batches[] = {
		{TL_COMPRESSION_NONE, -1, 1},
		{TL_COMPRESSION_NONE, 77, 5},
		{TL_COMPRESSION_ZSTD, -1, 20},
	};
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		struct tl_buf batch;
		build_batch(&batch, "seed", batches[i].count, batches[i].compression,
			    batches[i].pid, 0, 0);
		for (uint8_t mode = 0; mode < 2; mode++) {
			snprintf(name, sizeof(name), "batch-%zu-mode%d", i, mode);
			seed_write(batch_dir, name, mode, true, batch.data, batch.len);
		}
		tl_buf_deinit(&batch);
	}
	struct tl_buf control;
	tl_buf_init(&control);
	if (tl_records_control_marker_build(&control, true, 77, 1, 3, 1700000000000) != TL_OK)
		fail("control marker build failed");
	seed_write(batch_dir, "control-mode0", 0, true, control.data, control.len);
	tl_buf_deinit(&control);
	static const uint8_t build[] = {2,   3, 0,   0,   0, 1,   1, 2,    1,    'k', 'v',
					'w', 2, 'h', 'i', 1, 'x', 5, 0xff, 0xff, 0};
	seed_write(batch_dir, "build-mode2", 2, true, build, sizeof(build));
	return 0;
}

/* ---- badinput: the round trip afterwards ---- */

static void round_trip(const char *topic)
{
	struct client c;
	client_open(&c);
	check_api_versions(&c, "after bad input");
	static const struct {
		int16_t version;
		enum tl_compression compression;
		int32_t count;
		const char *prefix;
	} sends[] = {
		{3, TL_COMPRESSION_NONE, 1, "rt3"},
		{7, TL_COMPRESSION_ZSTD, 500, "rt7z"},
		{9, TL_COMPRESSION_NONE, 1000, "rt9"},
		{9, TL_COMPRESSION_ZSTD, 7, "rt9z"},
	};
	/* What is in the log already: acks=0 and abandoned batches (and round trips of
	 * earlier runs on the same broker), nothing else; the acks=0 batch for sure. */
	struct stored_list before;
	fetch_all(&c, topic, 0, &before);
	size_t acks0 = 0;
	for (size_t i = 0; i < before.count; i++) {
		const char *v = before.items[i].value;
		acks0 += strncmp(v, "acks0-", 6) == 0;
		bool known = strncmp(v, "acks0-", 6) == 0 || strncmp(v, "pipe-", 5) == 0;
		for (size_t k = 0; k < sizeof(sends) / sizeof(sends[0]); k++)
			known |= strncmp(v, sends[k].prefix, strlen(sends[k].prefix)) == 0 &&
				 v[strlen(sends[k].prefix)] == '-';
		if (!known)
			fail("offset %" PRId64 " holds \"%s\", which no accepted produce sent",
			     before.items[i].offset, v);
	}
	/* The acks=0 batch (2 records) was followed by an answered request on its connection:
	 * a broker handles a connection's requests in order, so it was appended. */
	if (acks0 < 2 || acks0 % 2 != 0)
		fail("the log holds %zu records of the acks=0 batches, expected 2 per run", acks0);
	int64_t expect_base = before.high_watermark;
	for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
		struct tl_buf batch;
		build_batch(&batch, sends[i].prefix, sends[i].count, sends[i].compression, -1, -1,
			    -1);
		int64_t base;
		expect_code("round-trip produce",
			    produce(&c, sends[i].version, topic, 0, &batch, &base), 0);
		if (base != expect_base)
			fail("round-trip batch %zu got base offset %" PRId64 ", expected %" PRId64,
			     i, base, expect_base);
		expect_base += sends[i].count;
		tl_buf_deinit(&batch);
	}
	struct stored_list after;
	fetch_all(&c, topic, 0, &after);
	if (after.high_watermark != expect_base)
		fail("high watermark %" PRId64 ", expected %" PRId64, after.high_watermark,
		     expect_base);
	for (size_t i = 0; i < before.count; i++)
		if (strcmp(before.items[i].value, after.items[i].value) != 0)
			fail("offset %zu changed from \"%s\" to \"%s\"", i, before.items[i].value,
			     after.items[i].value);
	size_t at = before.count;
	for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
		expect_values(&after, at, sends[i].prefix, sends[i].count);
		at += (size_t)sends[i].count;
	}
	note("round trip: %zu records read back intact (%zu from earlier accepted sends)",
	     after.count, before.count);
	stored_free(&before);
	stored_free(&after);
	client_close(&c);
}

static int run_badinput(uint64_t seed)
{
	const char *topic = "rt-main";
	const char *mut_topic = "zz-mutation-target";
	struct client c;
	client_open(&c);
	check_api_versions(&c, "at start");
	ensure_topic(&c, topic, 1);
	ensure_topic(&c, mut_topic, 1);
	client_close(&c);
	bad_framing();
	bad_versions();
	bad_batches(topic);
	abandoned_produces(topic);
	garbage_frames(mut_topic, seed);
	round_trip(topic);
	note("badinput: all checks passed");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (getenv("RAWPROTO_CLIENT_ID"))
		client_id = getenv("RAWPROTO_CLIENT_ID");
	if (argc >= 4 && strcmp(argv[2], "dedupe") == 0) {
		broker_addr = argv[1];
		return run_dedupe(argv[3]);
	}
	if (argc >= 4 && strcmp(argv[1], "seeds") == 0)
		return run_seeds(argv[2], argv[3], argc >= 5 ? argv[4] : NULL);
	if (argc >= 4 && strcmp(argv[2], "pids") == 0) {
		broker_addr = argv[1];
		struct client c;
		client_open(&c);
		for (long i = 0, n = strtol(argv[3], NULL, 10); i < n; i++) {
			int64_t pid;
			int16_t epoch;
			init_producer_id(&c, &pid, &epoch);
			printf("%" PRId64 "\n", pid);
		}
		client_close(&c);
		return 0;
	}
	if (argc >= 4 && strcmp(argv[2], "restart-write") == 0) {
		broker_addr = argv[1];
		return run_restart_write(argv[3]);
	}
	if (argc >= 5 && strcmp(argv[2], "restart-check") == 0) {
		broker_addr = argv[1];
		return run_restart_check(argv[3], strtoll(argv[4], NULL, 10));
	}
	if (argc >= 5 && strcmp(argv[2], "compact-write") == 0) {
		broker_addr = argv[1];
		return run_compact_write(argv[3], (int32_t)strtol(argv[4], NULL, 10));
	}
	if (argc >= 7 && strcmp(argv[2], "compact-check") == 0) {
		broker_addr = argv[1];
		const char *when = argv[6];
		return run_compact_check(
			argv[3], strtoll(argv[4], NULL, 10), (int32_t)strtol(argv[5], NULL, 10),
			strncmp(when, "restarted", 9) == 0, strstr(when, "next") != NULL);
	}
	if (argc >= 5 && strcmp(argv[2], "txn-open") == 0) {
		broker_addr = argv[1];
		return run_txn_open(argv[3], argv[4]);
	}
	if (argc >= 7 && strcmp(argv[2], "txn-fenced") == 0) {
		broker_addr = argv[1];
		return run_txn_fenced(argv[3], argv[4], strtoll(argv[5], NULL, 10),
				      (int16_t)strtol(argv[6], NULL, 10));
	}
	if (argc >= 6 && strcmp(argv[2], "txn-offsets-open") == 0) {
		broker_addr = argv[1];
		return run_txn_offsets_open(argv[3], argv[4], argv[5]);
	}
	if (argc >= 8 && strcmp(argv[2], "txn-offsets-commit") == 0) {
		broker_addr = argv[1];
		return run_txn_offsets_commit(argv[3], argv[4], argv[5], strtoll(argv[6], NULL, 10),
					      (int16_t)strtol(argv[7], NULL, 10));
	}
	if (argc >= 6 && strcmp(argv[2], "hold-member") == 0) {
		broker_addr = argv[1];
		return run_hold_member(argv[3], (int32_t)strtol(argv[4], NULL, 10),
				       (int32_t)strtol(argv[5], NULL, 10));
	}
	if (argc >= 5 && strcmp(argv[2], "pid-expiry") == 0) {
		broker_addr = argv[1];
		return run_pid_expiry(argv[3], argv[4], argc >= 7 ? strtoll(argv[5], NULL, 10) : -1,
				      argc >= 7 ? (int16_t)strtol(argv[6], NULL, 10) : -1,
				      argc >= 8 ? strtoll(argv[7], NULL, 10) : -1);
	}
	if (argc >= 4 && strcmp(argv[2], "batches-whole") == 0) {
		broker_addr = argv[1];
		return run_batches_whole(argv[3]);
	}
	if (argc >= 5 && strcmp(argv[2], "timestamps") == 0) {
		broker_addr = argv[1];
		return run_timestamps(argv[3], argv[4]);
	}
	if (argc >= 4 && strcmp(argv[2], "txn-bump") == 0) {
		broker_addr = argv[1];
		return run_txn_bump(argv[3]);
	}
	if (argc >= 5 && strcmp(argv[2], "authorized-ops") == 0) {
		broker_addr = argv[1];
		return run_authorized_ops(argv[3], argv[4]);
	}
	if (argc >= 5 && strcmp(argv[2], "txn-ids") == 0) {
		broker_addr = argv[1];
		return run_txn_ids(argv[3], argv[4]);
	}
	if (argc >= 5 && strcmp(argv[2], "group-rules") == 0) {
		broker_addr = argv[1];
		return run_group_rules(argv[3], argv[4]);
	}
	if (argc >= 6 && strcmp(argv[2], "offset-fetch") == 0) {
		broker_addr = argv[1];
		return run_offset_fetch(argv[3], argv[4], (int32_t)strtol(argv[5], NULL, 10));
	}
	if (argc >= 4 && strcmp(argv[2], "describe-broker") == 0) {
		broker_addr = argv[1];
		return run_describe_broker(argv[3]);
	}
	if (argc >= 4 && strcmp(argv[2], "bad-records") == 0) {
		broker_addr = argv[1];
		return run_bad_records(argv[3]);
	}
	if (argc >= 6 && strcmp(argv[2], "delete-records") == 0) {
		broker_addr = argv[1];
		return run_delete_records(argv[3], atoi(argv[4]), atoll(argv[5]),
					  argc >= 7 ? atoi(argv[6]) : 10000);
	}
	if (argc >= 4 && strcmp(argv[2], "list-offsets") == 0) {
		broker_addr = argv[1];
		return run_list_offsets(argv[3]);
	}
	if (argc >= 5 && strcmp(argv[2], "leader-epoch") == 0) {
		broker_addr = argv[1];
		return run_leader_epoch(argv[3], (int32_t)strtol(argv[4], NULL, 10));
	}
	if (argc >= 6 && strcmp(argv[2], "pipeline") == 0) {
		broker_addr = argv[1];
		return run_pipeline(argv[3], (int32_t)strtol(argv[4], NULL, 10),
				    (int32_t)strtol(argv[5], NULL, 10));
	}
	if (argc >= 7 && strcmp(argv[2], "isr-wait") == 0) {
		broker_addr = argv[1];
		return run_isr_wait(argv[3], (int32_t)strtol(argv[4], NULL, 10),
				    (int32_t)strtol(argv[5], NULL, 10),
				    (int32_t)strtol(argv[6], NULL, 10));
	}
	if (argc >= 5 && strcmp(argv[2], "metadata") == 0) {
		broker_addr = argv[1];
		return run_metadata(argv[3], (int16_t)strtol(argv[4], NULL, 10));
	}
	if (argc >= 4 && strcmp(argv[2], "not-leader") == 0) {
		broker_addr = argv[1];
		return run_not_leader(argv[3]);
	}
	if (argc >= 3 && strcmp(argv[2], "badinput") == 0) {
		broker_addr = argv[1];
		uint64_t seed = argc >= 4 ? strtoull(argv[3], NULL, 10) : 1;
		return run_badinput(seed);
	}
	fprintf(stderr,
		"usage: rawproto BROKER dedupe TOPIC\n"
		"       rawproto BROKER restart-write TOPIC      (prints the producer id)\n"
		"       rawproto BROKER restart-check TOPIC PID\n"
		"       rawproto BROKER compact-write TOPIC N     (prints the producer id)\n"
		"       rawproto BROKER compact-check TOPIC PID N live|restarted[-next]\n"
		"       rawproto BROKER txn-open TOPIC TXN_ID      (prints PID EPOCH)\n"
		"       rawproto BROKER txn-fenced TOPIC TXN_ID PID EPOCH\n"
		"       rawproto BROKER txn-offsets-open TOPIC TXN_ID GROUP  (prints PID EPOCH)\n"
		"       rawproto BROKER hold-member GROUP SESSION_MS SECONDS\n"
		"       rawproto BROKER txn-offsets-commit TOPIC TXN_ID GROUP PID EPOCH\n"
		"       rawproto BROKER offset-fetch GROUP TOPIC PARTITION\n"
		"       rawproto BROKER group-rules TOPIC PREFIX\n"
		"       rawproto BROKER txn-bump TXN_ID\n"
		"       rawproto BROKER timestamps CT_TOPIC LAT_TOPIC\n"
		"       rawproto BROKER batches-whole TOPIC\n"
		"       rawproto BROKER pid-expiry TOPIC write|restarted [PID EPOCH]\n"
		"       rawproto BROKER badinput [SEED]\n"
		"       rawproto seeds REQUEST_DIR BATCH_DIR [BROKER_DIR] (fuzz corpus seeds)\n");
	return 2;
}
