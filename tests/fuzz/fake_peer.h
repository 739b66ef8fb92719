/* fake_peer.h - the broker side of the libtally fuzz targets (fuzz_client, fuzz_admin,
 * fuzz_producer): a listener on 127.0.0.1 that answers each request with the input's
 * next response body for its API key, and seed writers built on the generated codec.
 * Header-only: static functions for one target, except getaddrinfo()/freeaddrinfo(),
 * which it replaces so that every broker address libtally resolves (bootstrap,
 * Metadata's nodes, a coordinator) is this listener and nothing leaves the machine.
 * Input answers: [api key][length: 2 bytes, big endian][response body], repeated. A
 * request gets the next body the input has for its key (the last one again once they
 * ran out; none if it has none), framed here: size, correlation id, and the tag byte
 * of a flexible response header. */
#ifndef TL_TESTS_FUZZ_FAKE_PEER_H
#define TL_TESTS_FUZZ_FAKE_PEER_H

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
#include "protocol/api.h"
#include "protocol/messages.h"

#define CONNS_MAX   16
#define ANSWERS_MAX 64
#define API_KEYS    70
#define FRAME_MAX   (1u << 20)

static bool verbose; /* FUZZ_*_VERBOSE: what each input did */
static int listen_fd = -1;
static uint16_t listen_port;

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: %s: %s\n", what, strerror(errno));
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
		fprintf(stderr, "fuzz: fd %d asks api %d v%d\n", fd, key, version);
	if (key < 0 || key >= API_KEYS || a->count[key] == 0)
		return false; /* never answered: the request times out */
	int n = a->next[key] < a->count[key] ? a->next[key]++ : a->count[key] - 1;
	uint8_t head[9];
	size_t head_len = tl_api_is_flexible(key, version) ? 9 : 8; /* response header v1 */
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
		fprintf(stderr, "fuzz: fd %d answered api %d with %zd bytes\n", fd, key, sent);
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
		/* Until a connection or a request comes (or 2 ms, to see stop). */
		struct pollfd pfds[CONNS_MAX + 1];
		pfds[0] = (struct pollfd){listen_fd, POLLIN, 0};
		for (int i = 0; i < conn_count; i++)
			pfds[i + 1] = (struct pollfd){conns[i].fd, POLLIN, 0};
		(void)poll(pfds, (nfds_t)conn_count + 1, 2);
	}
	return NULL;
}

static struct server serving;
static pthread_t serving_thread;

/* Serves @a from a thread until peer_serve_stop(); the harness's state is the
 * thread's alone meanwhile. */
static void peer_serve_start(struct answers *a)
{
	serving = (struct server){a, false};
	if (pthread_create(&serving_thread, NULL, server_main, &serving) != 0)
		fuzz_fail("pthread_create");
}

static void peer_serve_stop(void)
{
	__atomic_store_n(&serving.stop, true, __ATOMIC_RELEASE);
	pthread_join(serving_thread, NULL);
}

/* ---- seeds: valid answers from the generated codec ---- */

static void seed_add(struct tl_buf *seed, uint8_t key, const struct tl_buf *body)
{
	tl_buf_i8(seed, (int8_t)key);
	tl_buf_i8(seed, (int8_t)(body->len >> 8));
	tl_buf_i8(seed, (int8_t)body->len);
	tl_buf_put(seed, body->data, body->len);
}

/* Appends @msg, encoded by the generated codec's tl_@api_response_encode at @version,
 * to @seed as the answer for API @key. */
#define SEED_ENCODE(seed, key, api, version, msg)                                                  \
	do {                                                                                       \
		struct tl_buf body_;                                                               \
		tl_buf_init(&body_);                                                               \
		tl_##api##_response_encode(&body_, version, msg);                                  \
		seed_add(seed, key, &body_);                                                       \
		tl_buf_deinit(&body_);                                                             \
	} while (0)

/* The versions the seeds speak: the highest libtally asks for. */
static void seed_api_versions(struct tl_buf *seed)
{
	static const int16_t apis[][2] = {{0, 8},  {1, 11}, {2, 5},  {3, 8},  {8, 7},  {9, 7},
					  {10, 2}, {11, 5}, {12, 3}, {13, 3}, {14, 3}, {15, 4},
					  {16, 2}, {18, 0}, {22, 1}, {23, 4}, {29, 1}, {35, 1},
					  {48, 0}, {50, 0}, {61, 0}, {65, 0}, {66, 0}};
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
	SEED_ENCODE(seed, 18, api_versions, 0, &resp);
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
	SEED_ENCODE(seed, 3, metadata, 8, &resp);
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
	SEED_ENCODE(seed, 2, list_offsets, 5, &resp);
}

/* A ConsumerProtocolAssignment v0 of t [0, 1] into @out (initialized here). */
static void seed_assignment(struct tl_buf *out)
{
	tl_buf_init(out);
	tl_buf_i16(out, 0);
	tl_buf_i32(out, 1);
	tl_buf_string(out, tl_str_of("t"), false);
	tl_buf_i32(out, 2);
	tl_buf_i32(out, 0);
	tl_buf_i32(out, 1);
	tl_buf_i32(out, -1);
}

/* FindCoordinator: node 0 coordinates. */
static void seed_find_coordinator(struct tl_buf *seed)
{
	struct tl_find_coordinator_response resp;
	tl_find_coordinator_response_defaults(&resp);
	resp.node_id = 0;
	resp.host = tl_str_of("broker0");
	resp.port = 9092;
	SEED_ENCODE(seed, 10, find_coordinator, 2, &resp);
}

/* OffsetFetch: t[0] and t[1] committed at 3, in leader epoch 0. */
static void seed_offset_fetch(struct tl_buf *seed)
{
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
	SEED_ENCODE(seed, 9, offset_fetch, 7, &of);
}

/* Opens the listener every address resolves to. */
static void peer_listen(void)
{
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
}

/* Closes what the harness accepted for the last input. */
static void peer_reset(void)
{
	while (conn_count > 0)
		conn_close(conn_count - 1);
}

/* The target's LLVMFuzzerInitialize: with $@seeds_env=DIR set, writes the seeds into
 * DIR and exits; else opens the listener. $@verbose_env makes the target say what each
 * input did. */
static void peer_init(const char *verbose_env, const char *seeds_env,
		      void (*seeds_write)(const char *dir))
{
	tl_diag_set_level(TL_DIAG_CRIT);
	verbose = getenv(verbose_env) != NULL;
	const char *seeds = getenv(seeds_env);
	if (seeds) {
		seeds_write(seeds);
		exit(0);
	}
	peer_listen();
}

static void seed_write(const char *dir, const char *name, const struct tl_buf *seed)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(seed->data, 1, seed->len, f) != seed->len || fclose(f) != 0)
		fuzz_fail(path);
}

#endif
