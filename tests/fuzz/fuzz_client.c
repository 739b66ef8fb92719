/* fuzz_client.c - libFuzzer target for libtally's consumer (consumer/, client/): what a
 * broker answers, byte for byte. A broker is a peer libtally does not control; a bad or
 * hostile answer must come back as an error, never as a crash, an assertion, a read
 * out of bounds or a leak in the service that links libtally.
 * Input: byte 0 picks the consumer's mode (bit 0 subscribe to "t" in group "g", else
 * assign t[0] and t[1]; bit 1 check.crcs=false, so mutated records get past the CRC;
 * bit 2 read_uncommitted; bit 3 an async commit every few polls; bit 4 a rebalance
 * callback that commits; bit 5 start at the committed offsets, else the beginning),
 * then answers: [api key][length: 2 bytes, big endian][response body]. Each request
 * the consumer sends is answered with the next body the input has for its API key
 * (the last one again once they ran out; none if it has none), framed by the harness
 * (size, correlation id, and the tag byte of a flexible response header).
 * The harness is the consumer's only peer: getaddrinfo() is replaced, so every broker
 * address (bootstrap, Metadata's nodes, the coordinator) resolves to its listener on
 * 127.0.0.1 and nothing leaves the machine. Single-threaded and in lock step: the
 * harness answers what arrived, then the consumer polls with timeout 0, 150 times;
 * then the consumer is destroyed (the harness serving from a thread meanwhile: destroy
 * waits for LeaveGroup's answer). Records handed out are read whole (ASan checks
 * their bounds).
 * FUZZ_CLIENT_VERBOSE=1 says what each input did (records, errors, position).
 * With FUZZ_CLIENT_SEEDS=DIR set, the target writes valid sessions (the generated
 * codec's encoders) into DIR and exits: tests/fuzz/run.sh seeds it that way. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/diag.h"
#include "protocol/messages.h"
#include "protocol/records.h"
#include "tally/consumer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TURNS       150
#define CONNS_MAX   16
#define ANSWERS_MAX 64
#define API_KEYS    70
#define FRAME_MAX   (1u << 20)

static bool verbose; /* FUZZ_CLIENT_VERBOSE: what each input did */
static int listen_fd = -1;
static uint16_t listen_port;

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_client: %s: %s\n", what, strerror(errno));
	abort();
}

/* ---- every name resolves to the harness ---- */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	(void)node;
	(void)service;
	(void)hints;
	struct resolved {
		struct addrinfo ai; /* first: freeaddrinfo frees it */
		struct sockaddr_in sin;
	} *r = calloc(1, sizeof(*r));
	if (!r)
		return EAI_MEMORY;
	r->sin.sin_family = AF_INET;
	r->sin.sin_port = htons(listen_port);
	r->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->ai.ai_family = AF_INET;
	r->ai.ai_socktype = SOCK_STREAM;
	r->ai.ai_protocol = IPPROTO_TCP;
	r->ai.ai_addr = (struct sockaddr *)&r->sin;
	r->ai.ai_addrlen = sizeof(r->sin);
	*res = &r->ai;
	return 0;
}

void freeaddrinfo(struct addrinfo *res)
{
	free(res);
}

/* ---- the input's answers ---- */

struct answers {
	const uint8_t *body[API_KEYS][ANSWERS_MAX];
	uint16_t len[API_KEYS][ANSWERS_MAX];
	int count[API_KEYS];
	int next[API_KEYS];
};

static void answers_parse(struct answers *a, const uint8_t *data, size_t size)
{
	memset(a, 0, sizeof(*a));
	size_t at = 0;
	while (size - at >= 3) {
		uint8_t key = data[at];
		uint16_t len = (uint16_t)(data[at + 1] << 8 | data[at + 2]);
		at += 3;
		if (len > size - at)
			len = (uint16_t)(size - at);
		if (key < API_KEYS && a->count[key] < ANSWERS_MAX) {
			a->body[key][a->count[key]] = data + at;
			a->len[key][a->count[key]] = len;
			a->count[key]++;
		}
		at += len;
	}
}

/* The response header of these is v1 (a tag byte), as client.c's client_api_flexible. */
static bool flexible(int16_t key, int16_t version)
{
	return (key == 9 && version >= 6) || (key == 23 && version >= 4) ||
	       (key == 28 && version >= 3) || key == 50 || key == 51 || key == 61 || key == 65 ||
	       key == 66;
}

/* ---- the harness's side of the connections ---- */

struct conn {
	int fd;
	uint8_t *in;
	size_t len;
};

static struct conn conns[CONNS_MAX];
static int conn_count;

static void conn_close(int i)
{
	close(conns[i].fd);
	free(conns[i].in);
	conns[i] = conns[--conn_count];
}

/* Answers one request; false when the input has nothing for it. */
static bool answer(struct answers *a, int fd, const uint8_t *frame, size_t len)
{
	if (len < 8)
		return false;
	int16_t key = (int16_t)(frame[0] << 8 | frame[1]);
	int16_t version = (int16_t)(frame[2] << 8 | frame[3]);
	if (verbose)
		fprintf(stderr, "fuzz_client: fd %d asks api %d v%d\n", fd, key, version);
	if (key < 0 || key >= API_KEYS || a->count[key] == 0)
		return false; /* never answered: the request times out */
	int n = a->next[key] < a->count[key] ? a->next[key]++ : a->count[key] - 1;
	uint8_t head[9];
	size_t head_len = flexible(key, version) ? 9 : 8;
	uint32_t size = (uint32_t)(head_len - 4 + a->len[key][n]);
	head[0] = (uint8_t)(size >> 24);
	head[1] = (uint8_t)(size >> 16);
	head[2] = (uint8_t)(size >> 8);
	head[3] = (uint8_t)size;
	memcpy(head + 4, frame + 4, 4); /* correlation id */
	head[8] = 0;
	struct iovec iov[2] = {{head, head_len}, {(void *)a->body[key][n], a->len[key][n]}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (verbose)
		fprintf(stderr, "fuzz_client: fd %d answered api %d with %zd bytes\n", fd, key,
			sent);
	return true;
}

/* Accepts, reads every whole request that arrived and answers it. With @closing (the
 * consumer is being destroyed), a request the input has no answer for closes its
 * connection, so that destroy does not wait out its deadline. */
static void serve(struct answers *a, bool closing)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			break;
		if (conn_count == CONNS_MAX) {
			close(fd);
			continue;
		}
		/* Two answers in a row must not wait for the client's delayed ACK (Nagle). */
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conns[conn_count++] = (struct conn){fd, NULL, 0};
	}
	for (int i = conn_count - 1; i >= 0; i--) {
		struct conn *c = &conns[i];
		uint8_t buf[64 * 1024];
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			conn_close(i);
			continue;
		}
		if (n < 0)
			continue;
		uint8_t *in = realloc(c->in, c->len + (size_t)n);
		if (!in)
			fuzz_fail("realloc");
		memcpy(in + c->len, buf, (size_t)n);
		c->in = in;
		c->len += (size_t)n;
		size_t at = 0;
		bool oversize = false, unanswered = false;
		while (c->len - at >= 4) {
			uint32_t size = (uint32_t)c->in[at] << 24 | (uint32_t)c->in[at + 1] << 16 |
					(uint32_t)c->in[at + 2] << 8 | c->in[at + 3];
			if (size > FRAME_MAX) {
				oversize = true; /* libtally never sends this: a bug of its own */
				break;
			}
			if (c->len - at - 4 < size)
				break;
			if (!answer(a, c->fd, c->in + at + 4, size) && closing) {
				unanswered = true;
				break;
			}
			at += 4 + size;
		}
		if (oversize)
			fuzz_fail("libtally sent a frame over 1 MiB");
		if (unanswered) {
			conn_close(i);
			continue;
		}
		memmove(c->in, c->in + at, c->len - at);
		c->len -= at;
	}
}

struct server {
	struct answers *answers;
	bool stop;
};

static void *server_main(void *arg)
{
	struct server *server = arg;
	while (!__atomic_load_n(&server->stop, __ATOMIC_ACQUIRE)) {
		serve(server->answers, true);
		struct pollfd pfd = {listen_fd, POLLIN, 0};
		(void)poll(&pfd, 1, 1);
	}
	return NULL;
}

/* ---- the consumer ---- */

static void on_rebalance(struct tl_consumer *consumer, int event,
			 const struct tl_consumer_partition *parts, int32_t count, void *opaque)
{
	(void)parts;
	(void)count;
	(void)opaque;
	if (event == TL_CONSUMER_REVOKED)
		(void)tl_consumer_commit_async(consumer);
}

static void conf_set(struct tl_consumer_conf *conf, const char *key, const char *value)
{
	char err[256];
	if (tl_consumer_conf_set(conf, key, value, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "fuzz_client: %s=%s: %s\n", key, value, err);
		abort();
	}
}

static struct tl_consumer *consumer_make(uint8_t mode)
{
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	if (!conf)
		fuzz_fail("tl_consumer_conf_create");
	char bootstrap[32];
	snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%u", listen_port);
	conf_set(conf, "bootstrap.servers", bootstrap);
	conf_set(conf, "client.id", "fuzz");
	conf_set(conf, "group.id", "g");
	conf_set(conf, "enable.auto.commit", "false"); /* destroy would wait for it */
	conf_set(conf, "retry.backoff.ms", "0");
	conf_set(conf, "reconnect.backoff.ms", "0");
	conf_set(conf, "fetch.max.wait.ms", "0");
	conf_set(conf, "auto.offset.reset", "earliest");
	if (mode & 2)
		conf_set(conf, "check.crcs", "false");
	if (mode & 4)
		conf_set(conf, "isolation.level", "read_uncommitted");
	if (mode & 16)
		tl_consumer_conf_set_rebalance_cb(conf, on_rebalance, NULL);
	struct tl_consumer *consumer = NULL;
	char err[256];
	if (tl_consumer_create(conf, &consumer, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "fuzz_client: tl_consumer_create: %s\n", err);
		abort();
	}
	tl_consumer_conf_destroy(conf);
	return consumer;
}

static volatile uint8_t record_sink;

static void record_touch(const struct tl_consumer_record *r)
{
	uint8_t x = 0;
	for (int32_t i = 0; r->key && i < r->key_len; i++)
		x ^= ((const uint8_t *)r->key)[i];
	for (int32_t i = 0; r->value && i < r->value_len; i++)
		x ^= ((const uint8_t *)r->value)[i];
	for (int32_t h = 0; h < r->header_count; h++) {
		for (int32_t i = 0; i < r->headers[h].key_len; i++)
			x ^= (uint8_t)r->headers[h].key[i];
		for (int32_t i = 0; r->headers[h].value && i < r->headers[h].value_len; i++)
			x ^= ((const uint8_t *)r->headers[h].value)[i];
	}
	x ^= (uint8_t)strlen(r->topic);
	record_sink = x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	struct answers *a = malloc(sizeof(*a));
	if (!a)
		fuzz_fail("malloc");
	answers_parse(a, data + 1, size - 1);
	struct tl_consumer *consumer = consumer_make(mode);
	if (mode & 1) {
		const char *topics[] = {"t"};
		(void)tl_consumer_subscribe(consumer, topics, 1);
	} else {
		int64_t start =
			mode & 32 ? TL_CONSUMER_OFFSET_COMMITTED : TL_CONSUMER_OFFSET_BEGINNING;
		struct tl_consumer_partition parts[2] = {{"t", 0, start, 0}, {"t", 1, start, 0}};
		(void)tl_consumer_assign(consumer, parts, 2);
	}
	int records = 0, errors = 0;
	for (int turn = 0; turn < TURNS; turn++) {
		serve(a, false);
		const struct tl_consumer_record *r;
		tl_err err = tl_consumer_poll(consumer, 0, &r);
		if (err == TL_OK) {
			record_touch(r);
			records++;
		} else if (err != TL_ERR_TIMED_OUT) {
			errors++;
			if (verbose)
				fprintf(stderr, "fuzz_client: poll: %s\n",
					tl_consumer_last_error(consumer));
			if (tl_err_is_fatal(err))
				break;
		}
		if ((mode & 8) && turn % 16 == 15)
			(void)tl_consumer_commit_async(consumer);
		if (turn % 32 == 31) {
			struct tl_consumer_partition out[8];
			(void)tl_consumer_assignment(consumer, out, 8);
			(void)tl_consumer_position(consumer, "t", 0);
		}
	}
	if (verbose)
		fprintf(stderr, "fuzz_client: mode %#x: %d records, %d errors, position %lld\n",
			mode, records, errors, (long long)tl_consumer_position(consumer, "t", 0));
	/* Destroy waits for LeaveGroup's answer (up to 2 s): the harness serves meanwhile,
	 * from a thread of its own (the only one touching its state until joined). */
	struct server server = {a, false};
	pthread_t thread;
	if (pthread_create(&thread, NULL, server_main, &server) != 0)
		fuzz_fail("pthread_create");
	tl_consumer_destroy(consumer);
	__atomic_store_n(&server.stop, true, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	while (conn_count > 0)
		conn_close(conn_count - 1);
	free(a);
	return 0;
}

/* ---- seeds: valid sessions from the generated codec ---- */

static void seed_add(struct tl_buf *seed, uint8_t key, const struct tl_buf *body)
{
	tl_buf_i8(seed, (int8_t)key);
	tl_buf_i8(seed, (int8_t)(body->len >> 8));
	tl_buf_i8(seed, (int8_t)body->len);
	tl_buf_put(seed, body->data, body->len);
}

/* The versions the seeds speak: the highest libtally's consumer asks for. */
static void seed_api_versions(struct tl_buf *seed)
{
	static const int16_t apis[][2] = {{1, 11}, {2, 5},  {3, 8},  {8, 7},  {9, 7},  {10, 2},
					  {11, 5}, {12, 3}, {13, 3}, {14, 3}, {18, 0}, {23, 4}};
	enum { N = sizeof(apis) / sizeof(apis[0]) };
	struct tl_api_versions_response_api_version keys[N];
	for (int i = 0; i < N; i++) {
		keys[i].api_key = apis[i][0];
		keys[i].min_version = 0;
		keys[i].max_version = apis[i][1];
	}
	struct tl_api_versions_response resp;
	tl_api_versions_response_defaults(&resp);
	resp.api_keys_count = N;
	resp.api_keys = keys;
	struct tl_buf body;
	tl_buf_init(&body);
	tl_api_versions_response_encode(&body, 0, &resp);
	seed_add(seed, 18, &body);
	tl_buf_deinit(&body);
}

static void seed_metadata(struct tl_buf *seed, int32_t leader_epoch)
{
	struct tl_metadata_response_metadata_response_broker broker;
	tl_metadata_response_metadata_response_broker_defaults(&broker);
	broker.node_id = 0;
	broker.host = tl_str_of("broker0");
	broker.port = 9092;
	int32_t replicas[1] = {0};
	struct tl_metadata_response_metadata_response_partition parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_metadata_response_metadata_response_partition_defaults(&parts[p]);
		parts[p].partition_index = p;
		parts[p].leader_id = 0;
		parts[p].leader_epoch = leader_epoch;
		parts[p].replica_nodes_count = 1;
		parts[p].replica_nodes = replicas;
		parts[p].isr_nodes_count = 1;
		parts[p].isr_nodes = replicas;
	}
	struct tl_metadata_response_metadata_response_topic topic;
	tl_metadata_response_metadata_response_topic_defaults(&topic);
	topic.name = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_metadata_response resp;
	tl_metadata_response_defaults(&resp);
	resp.brokers_count = 1;
	resp.brokers = &broker;
	resp.controller_id = 0;
	resp.topics_count = 1;
	resp.topics = &topic;
	struct tl_buf body;
	tl_buf_init(&body);
	tl_metadata_response_encode(&body, 8, &resp);
	seed_add(seed, 3, &body);
	tl_buf_deinit(&body);
}

static void seed_list_offsets(struct tl_buf *seed)
{
	struct tl_list_offsets_response_list_offsets_partition_response parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_list_offsets_response_list_offsets_partition_response_defaults(&parts[p]);
		parts[p].partition_index = p;
		parts[p].offset = 0;
		parts[p].timestamp = -1;
		parts[p].leader_epoch = 1;
	}
	struct tl_list_offsets_response_list_offsets_topic_response topic;
	tl_list_offsets_response_list_offsets_topic_response_defaults(&topic);
	topic.name = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_list_offsets_response resp;
	tl_list_offsets_response_defaults(&resp);
	resp.topics_count = 1;
	resp.topics = &topic;
	struct tl_buf body;
	tl_buf_init(&body);
	tl_list_offsets_response_encode(&body, 5, &resp);
	seed_add(seed, 2, &body);
	tl_buf_deinit(&body);
}

/* Records 0-4 of t[0] and t[1] (one batch each, @compression), and an aborted
 * transaction's marker. */
static void seed_fetch(struct tl_buf *seed, enum tl_compression compression, int32_t epoch)
{
	struct tl_buf records;
	tl_buf_init(&records);
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, compression);
	for (int i = 0; i < 5; i++) {
		char key[8], value[16];
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(value, sizeof(value), "value-%d", i);
		struct tl_record_header h = {tl_str_of("h"), {(const uint8_t *)"x", 1}};
		struct tl_bytes k = {(const uint8_t *)key, (int32_t)strlen(key)};
		struct tl_bytes v = {(const uint8_t *)value, (int32_t)strlen(value)};
		(void)tl_records_builder_append(&builder, 1000 + i, k, v, &h, 1);
	}
	tl_records_builder_set_producer(&builder, 7, 0, 0, true);
	(void)tl_records_builder_finish(&builder, NULL, &records);
	tl_batch_assign(records.data, 0, epoch);
	tl_records_builder_deinit(&builder);
	size_t at = records.len;
	(void)tl_records_control_marker_build(&records, false, 7, 0, 0, 1);
	tl_batch_assign(records.data + at, 5, epoch);
	struct tl_fetch_response_aborted_transaction aborted = {7, 0};
	struct tl_fetch_response_partition_data parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_fetch_response_partition_data_defaults(&parts[p]);
		parts[p].partition_index = p;
		parts[p].high_watermark = 6;
		parts[p].last_stable_offset = 6;
		parts[p].log_start_offset = 0;
		parts[p].aborted_transactions_count = p;
		parts[p].aborted_transactions = &aborted;
		parts[p].records.ptr = records.data;
		parts[p].records.len = (int32_t)records.len;
	}
	struct tl_fetch_response_fetchable_topic_response topic;
	tl_fetch_response_fetchable_topic_response_defaults(&topic);
	topic.topic = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_fetch_response resp;
	tl_fetch_response_defaults(&resp);
	resp.responses_count = 1;
	resp.responses = &topic;
	struct tl_buf body;
	tl_buf_init(&body);
	tl_fetch_response_encode(&body, 11, &resp);
	seed_add(seed, 1, &body);
	tl_buf_deinit(&body);
	tl_buf_deinit(&records);
}

static void seed_epoch_end(struct tl_buf *seed, int64_t end_offset)
{
	struct tl_offset_for_leader_epoch_response_epoch_end_offset parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_offset_for_leader_epoch_response_epoch_end_offset_defaults(&parts[p]);
		parts[p].partition = p;
		parts[p].leader_epoch = 1;
		parts[p].end_offset = end_offset;
	}
	struct tl_offset_for_leader_epoch_response_offset_for_leader_topic_result topic;
	tl_offset_for_leader_epoch_response_offset_for_leader_topic_result_defaults(&topic);
	topic.topic = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_offset_for_leader_epoch_response resp;
	tl_offset_for_leader_epoch_response_defaults(&resp);
	resp.topics_count = 1;
	resp.topics = &topic;
	struct tl_buf body;
	tl_buf_init(&body);
	tl_offset_for_leader_epoch_response_encode(&body, 4, &resp);
	seed_add(seed, 23, &body);
	tl_buf_deinit(&body);
}

static void seed_coordinator(struct tl_buf *seed)
{
	struct tl_find_coordinator_response resp;
	tl_find_coordinator_response_defaults(&resp);
	resp.node_id = 0;
	resp.host = tl_str_of("broker0");
	resp.port = 9092;
	struct tl_buf body;
	tl_buf_init(&body);
	tl_find_coordinator_response_encode(&body, 2, &resp);
	seed_add(seed, 10, &body);
	tl_buf_deinit(&body);

	struct tl_offset_fetch_response_offset_fetch_response_partition parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_offset_fetch_response_offset_fetch_response_partition_defaults(&parts[p]);
		parts[p].partition_index = p;
		parts[p].committed_offset = 3;
		parts[p].committed_leader_epoch = 0;
		parts[p].metadata = tl_str_of("");
	}
	struct tl_offset_fetch_response_offset_fetch_response_topic topic;
	tl_offset_fetch_response_offset_fetch_response_topic_defaults(&topic);
	topic.name = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_offset_fetch_response of;
	tl_offset_fetch_response_defaults(&of);
	of.topics_count = 1;
	of.topics = &topic;
	tl_buf_init(&body);
	tl_offset_fetch_response_encode(&body, 7, &of);
	seed_add(seed, 9, &body);
	tl_buf_deinit(&body);

	struct tl_offset_commit_response_offset_commit_response_partition cparts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_offset_commit_response_offset_commit_response_partition_defaults(&cparts[p]);
		cparts[p].partition_index = p;
	}
	struct tl_offset_commit_response_offset_commit_response_topic ctopic;
	tl_offset_commit_response_offset_commit_response_topic_defaults(&ctopic);
	ctopic.name = tl_str_of("t");
	ctopic.partitions_count = 2;
	ctopic.partitions = cparts;
	struct tl_offset_commit_response oc;
	tl_offset_commit_response_defaults(&oc);
	oc.topics_count = 1;
	oc.topics = &ctopic;
	tl_buf_init(&body);
	tl_offset_commit_response_encode(&body, 7, &oc);
	seed_add(seed, 8, &body);
	tl_buf_deinit(&body);
}

/* JoinGroup (this member leads, alone), SyncGroup (t[0] and t[1]), Heartbeat. */
static void seed_group(struct tl_buf *seed)
{
	struct tl_buf meta;
	tl_buf_init(&meta); /* ConsumerProtocolSubscription v0: topics ["t"], no user data */
	tl_buf_i16(&meta, 0);
	tl_buf_i32(&meta, 1);
	tl_buf_string(&meta, tl_str_of("t"), false);
	tl_buf_i32(&meta, -1);
	struct tl_join_group_response_join_group_response_member member;
	tl_join_group_response_join_group_response_member_defaults(&member);
	member.member_id = tl_str_of("fuzz-1");
	member.metadata.ptr = meta.data;
	member.metadata.len = (int32_t)meta.len;
	struct tl_join_group_response join;
	tl_join_group_response_defaults(&join);
	join.generation_id = 1;
	join.protocol_name = tl_str_of("range");
	join.leader = tl_str_of("fuzz-1");
	join.member_id = tl_str_of("fuzz-1");
	join.members_count = 1;
	join.members = &member;
	struct tl_buf body;
	tl_buf_init(&body);
	tl_join_group_response_encode(&body, 5, &join);
	seed_add(seed, 11, &body);
	tl_buf_deinit(&body);

	struct tl_buf assignment; /* ConsumerProtocolAssignment v0: t [0, 1] */
	tl_buf_init(&assignment);
	tl_buf_i16(&assignment, 0);
	tl_buf_i32(&assignment, 1);
	tl_buf_string(&assignment, tl_str_of("t"), false);
	tl_buf_i32(&assignment, 2);
	tl_buf_i32(&assignment, 0);
	tl_buf_i32(&assignment, 1);
	tl_buf_i32(&assignment, -1);
	struct tl_sync_group_response sync;
	tl_sync_group_response_defaults(&sync);
	sync.assignment.ptr = assignment.data;
	sync.assignment.len = (int32_t)assignment.len;
	tl_buf_init(&body);
	tl_sync_group_response_encode(&body, 3, &sync);
	seed_add(seed, 14, &body);
	tl_buf_deinit(&body);

	struct tl_heartbeat_response hb;
	tl_heartbeat_response_defaults(&hb);
	tl_buf_init(&body);
	tl_heartbeat_response_encode(&body, 3, &hb);
	seed_add(seed, 12, &body);
	tl_buf_deinit(&body);
	tl_buf_deinit(&meta);
	tl_buf_deinit(&assignment);
}

static void seed_write(const char *dir, const char *name, const struct tl_buf *seed)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(seed->data, 1, seed->len, f) != seed->len || fclose(f) != 0)
		fuzz_fail(path);
}

static void seeds_write(const char *dir)
{
	static const struct {
		const char *name;
		uint8_t mode;
		enum tl_compression compression;
		int64_t epoch_end; /* < 0: no leader change (the epoch ends past the records) */
	} seeds[] = {
		{"assign-plain", 0, TL_COMPRESSION_NONE, -1},
		{"assign-zstd-nocrc", 2, TL_COMPRESSION_ZSTD, -1},
		{"assign-gzip-uncommitted", 2 | 4, TL_COMPRESSION_GZIP, -1},
		{"assign-lz4", 2, TL_COMPRESSION_LZ4, -1},
		{"assign-snappy", 2, TL_COMPRESSION_SNAPPY, -1},
		{"assign-committed-truncated", 2 | 8 | 32, TL_COMPRESSION_NONE, 2},
		{"subscribe", 1 | 2 | 8 | 16, TL_COMPRESSION_NONE, -1},
		{"subscribe-truncated", 1 | 2 | 16 | 32, TL_COMPRESSION_ZSTD, 1},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct tl_buf seed;
		tl_buf_init(&seed);
		tl_buf_i8(&seed, (int8_t)seeds[i].mode);
		for (int c = 0; c < 3; c++) /* bootstrap, node 0, coordinator */
			seed_api_versions(&seed);
		seed_metadata(&seed, 0);
		seed_list_offsets(&seed);
		seed_coordinator(&seed);
		if (seeds[i].mode & 1)
			seed_group(&seed);
		seed_fetch(&seed, seeds[i].compression, 0);
		if (seeds[i].epoch_end >= 0) {
			seed_metadata(&seed, 1); /* a new leader epoch: validate */
			seed_epoch_end(&seed, seeds[i].epoch_end);
			seed_fetch(&seed, seeds[i].compression, 1);
		} else {
			seed_epoch_end(&seed, 100); /* a committed offset's epoch holds */
		}
		seed_write(dir, seeds[i].name, &seed);
		tl_buf_deinit(&seed);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tl_diag_set_level(TL_DIAG_CRIT);
	verbose = getenv("FUZZ_CLIENT_VERBOSE") != NULL;
	const char *seeds = getenv("FUZZ_CLIENT_SEEDS");
	if (seeds) {
		seeds_write(seeds);
		exit(0);
	}
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {0};
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(addr);
	if (listen_fd == -1 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(listen_fd, 64) != 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&addr, &len) != 0)
		fuzz_fail("listener on 127.0.0.1");
	listen_port = ntohs(addr.sin_port);
	return 0;
}
