/* fuzz_broker.c - libFuzzer target for the broker's request handlers (broker/), from the
 * connection's framing (broker/conn.c) through tl_dispatch to every handler: Produce
 * (batch and record validation, idempotent dedupe, transactions), Fetch, the group
 * coordinator (JoinGroup protocol metadata, SyncGroup assignments, OffsetCommit and
 * OffsetFetch), the transaction coordinator, the admin APIs.
 * Input: bytes as a client sends them on one connection (size-prefixed request frames).
 * For each input a single-node broker starts in an empty directory on tmpfs (as
 * tl_broker_init, but with no listener and no signal handling; the sync I/O engine;
 * __consumer_offsets with one partition, no initial rebalance delay) with the topic
 * "seed-topic" of two partitions. The input is written to one end of a socketpair
 * whose other end is a connection of the broker, and the broker's loop turns until
 * it is quiet; then the connection closes (parked fetches and joins are abandoned) and
 * the broker shuts down cleanly. Checked:
 *   - responses are whole frames, and their correlation ids are those of the requests,
 *     in request order (a request may go unanswered: acks=0, or a close);
 *   - where the coordinators wrote to __consumer_offsets or __transaction_state, the
 *     broker starts again on the directory it left (the coordinators replay those
 *     records; a restart costs about 25 ms, so only then) and shuts down.
 * Member ids are deterministic: getrandom is replaced while an input runs, so the n-th
 * member id of an input is CLIENTID-<30 zeros><n as 2 hex digits> and a seed can carry a
 * whole group session. Any crash, assertion, sanitizer report or leak aborts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "broker/txn.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_BYTES_MAX    (256u * 1024)
#define RESPONSE_BYTES_MAX (64u * 1024 * 1024)
#define CONN_RBUF_BYTES    (64 * 1024) /* as broker/conn.c */
#define TURNS_QUIET        4           /* loop turns with nothing new before the end */
#define TURNS_MAX          200
#define FDS_MAX            512 /* open files: logs of some 100 partitions */

static char root[128];
static char data_dir[192];
static struct tl_config config;
static struct tl_broker broker; /* large: not on the stack */
static bool verbose;            /* FUZZ_BROKER_VERBOSE: the broker's diag lines */

/* ---- deterministic randomness while an input runs ---- */

static bool fixed_random;
static uint8_t random_count;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	if (!fixed_random)
		return syscall(SYS_getrandom, buf, len, flags);
	memset(buf, 0, len);
	if (len > 0)
		((uint8_t *)buf)[len - 1] = ++random_count;
	return (ssize_t)len;
}

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_broker: %s\n", what);
	abort();
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
	remove_tree(root);
}

static void setup(void)
{
	verbose = getenv("FUZZ_BROKER_VERBOSE") != NULL;
	tl_diag_set_level(verbose ? TL_DIAG_DEBUG : TL_DIAG_CRIT);
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(root, sizeof(root), "%s/tally-fuzz-broker-XXXXXX", base);
	if (!mkdtemp(root))
		fuzz_fail("mkdtemp");
	atexit(cleanup);
	snprintf(data_dir, sizeof(data_dir), "%s/data", root);
	/* A CreateTopics of 100000 partitions would open as many logs (minutes); with few
	 * descriptors it fails early, through the broker's own error paths. A descriptor
	 * leaked per input shows up here too, as a start that fails. */
	struct rlimit nofile = {FDS_MAX, FDS_MAX};
	if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
		fuzz_fail("setrlimit");
	static const char *const settings[][2] = {
		{"log.dirs", NULL},
		{"listeners", "PLAINTEXT://127.0.0.1:0"},
		{"log.io.engine", "sync"},
		{"offsets.topic.num.partitions", "1"},
		{"group.initial.rebalance.delay.ms", "0"},
		{"num.partitions", "1"},
	};
	char why[512];
	tl_config_defaults(&config);
	for (size_t i = 0; i < TL_ARRAY_SIZE(settings); i++) {
		const char *value = settings[i][1] ? settings[i][1] : data_dir;
		if (tl_config_set(&config, settings[i][0], value, why, sizeof(why)) != TL_OK) {
			fprintf(stderr, "fuzz_broker: %s=%s: %s\n", settings[i][0], value, why);
			fuzz_fail("a setting is refused");
		}
	}
	if (tl_config_finish(&config, why, sizeof(why)) != TL_OK) {
		fprintf(stderr, "fuzz_broker: %s\n", why);
		fuzz_fail("the configuration is refused");
	}
}

/* tl_broker_init without the listener and the signalfd; the ring is reaped by
 * loop_turn(), not through epoll. @fresh: an empty directory with seed-topic. */
static void broker_start(bool fresh)
{
	memset(&broker, 0, sizeof(broker));
	broker.config = config;
	tl_batch_scratch_init(&broker.batch_scratch, TL_RECORDS_DECOMPRESSED_MAX);
	broker.signal_fd = -1;
	snprintf(broker.data_dir, sizeof(broker.data_dir), "%s", config.log_dirs);
	snprintf(broker.advertised_host, sizeof(broker.advertised_host), "localhost");
	broker.advertised_port = 9092;
	broker.random_state = 0x9e3779b97f4a7c15ull;
	broker.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (broker.epoll_fd == -1)
		fuzz_fail("epoll_create1");
	tl_err err;
	broker.ring = tl_ring_create(4096, TL_RING_MODE_SYNC, &err);
	if (!broker.ring)
		fuzz_fail("tl_ring_create");
	if ((err = tl_topics_load(&broker)) != TL_OK ||
	    (err = tl_groups_create(&broker, &broker.groups)) != TL_OK ||
	    (err = tl_txns_open(&broker, &broker.txns)) != TL_OK) {
		fprintf(stderr, "fuzz_broker: start: %s\n", tl_err_name(err));
		fuzz_fail(fresh ? "the broker does not start in an empty directory"
				: "the broker does not start again on the directory it left");
	}
	if (fresh) {
		char why[256];
		struct tl_topic *topic;
		if (tl_topic_create(&broker, tl_str_of("seed-topic"), 2, NULL, &topic, why,
				    sizeof(why)) != TL_OK)
			fuzz_fail("cannot create seed-topic");
	}
}

/* The rest of tl_broker_run once stopping: controlled shutdown, the queued writes
 * finished, connections closed, coordinators and logs closed. */
static void broker_stop(void)
{
	broker.stopping = true;
	if (tl_broker_run(&broker) != TL_OK)
		fuzz_fail("shutdown failed");
	tl_broker_deinit(&broker);
}

/* True when the coordinators wrote to __consumer_offsets or __transaction_state. */
static bool internal_topics_written(void)
{
	static const char *const names[] = {"__consumer_offsets", "__transaction_state"};
	for (size_t i = 0; i < TL_ARRAY_SIZE(names); i++) {
		struct tl_topic *topic = tl_topic_find(&broker, tl_str_of(names[i]));
		for (int32_t p = 0; topic && p < topic->partition_count; p++)
			if (topic->partitions[p].log &&
			    tl_log_end_offset(topic->partitions[p].log) > 0)
				return true;
	}
	return false;
}

/* A connection of the broker on one end of a socketpair, as tl_conn_accept makes. */
static struct tl_conn *conn_attach(int fd)
{
	struct tl_conn *conn = calloc(1, sizeof(*conn));
	uint8_t *rbuf = malloc(CONN_RBUF_BYTES);
	if (!conn || !rbuf)
		fuzz_fail("out of memory");
	conn->broker = &broker;
	conn->fd = fd;
	tl_transport_init_plain(&conn->transport, fd);
	snprintf(conn->principal, sizeof(conn->principal), "User:ANONYMOUS");
	conn->rbuf = rbuf;
	conn->rcap = CONN_RBUF_BYTES;
	conn->refs = 1;
	conn->last_active_ms = tl_mono_ms();
	snprintf(conn->peer, sizeof(conn->peer), "fuzz");
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = conn};
	if (epoll_ctl(broker.epoll_fd, EPOLL_CTL_ADD, fd, &ev) == -1)
		fuzz_fail("epoll_ctl");
	conn->next = broker.conns;
	if (broker.conns)
		broker.conns->prev = conn;
	broker.conns = conn;
	broker.conn_count++;
	return conn;
}

struct responses {
	uint8_t *data;
	size_t len, cap;
};

/* Reads what the broker answered so far. Returns true if anything came. */
static bool responses_drain(int fd, struct responses *r)
{
	bool any = false;
	for (;;) {
		if (r->cap - r->len < 65536) {
			if (r->cap >= RESPONSE_BYTES_MAX)
				fuzz_fail("more than 64 MiB of responses");
			size_t cap = r->cap ? r->cap * 2 : 1 << 20;
			uint8_t *data = realloc(r->data, cap);
			if (!data)
				fuzz_fail("out of memory");
			r->data = data;
			r->cap = cap;
		}
		ssize_t n = recv(fd, r->data + r->len, r->cap - r->len, MSG_DONTWAIT);
		if (n <= 0)
			return any;
		r->len += (size_t)n;
		any = true;
	}
}

/* One turn of the broker's loop, then the disk completions (the sync engine has done
 * the work at submit). */
static void loop_turn(void)
{
	if (tl_broker_poll(&broker, 0) != TL_OK)
		fuzz_fail("tl_broker_poll failed");
	tl_ring_reap(broker.ring);
}

/* The correlation ids of the whole frames in @data (the input), in order. */
static size_t request_ids(const uint8_t *data, size_t size, int32_t *ids, size_t max)
{
	size_t count = 0;
	for (size_t at = 0; at + 4 <= size && count < max;) {
		uint32_t len = tl_be32_get(data + at);
		if (len < 8 || len > size - at - 4)
			break;
		ids[count++] = (int32_t)tl_be32_get(data + at + 8);
		at += 4 + (size_t)len;
	}
	return count;
}

/* Every response is a whole frame answering a request, in request order. */
static void responses_check(const struct responses *r, const int32_t *ids, size_t id_count)
{
	size_t next = 0;
	for (size_t at = 0; at < r->len;) {
		if (r->len - at < 8)
			fuzz_fail("a response shorter than its size and correlation id");
		uint32_t len = tl_be32_get(r->data + at);
		if (len < 4 || len > r->len - at - 4)
			fuzz_fail("a response frame is cut or its size is wrong");
		int32_t corr = (int32_t)tl_be32_get(r->data + at + 4);
		while (next < id_count && ids[next] != corr)
			next++;
		if (next == id_count)
			fuzz_fail("a response's correlation id is no request's, or out of order");
		next++;
		at += 4 + (size_t)len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup();
		ready = true;
	}
	if (size > INPUT_BYTES_MAX)
		return 0;
	remove_tree(data_dir);
	fixed_random = true;
	random_count = 0;
	broker_start(true);
	random_count = 0; /* member ids count from 1 whatever the start-up drew */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		fuzz_fail("socketpair");
	struct tl_conn *conn = conn_attach(sv[0]);
	tl_conn_hold(conn); /* so it can be checked after the broker closed it */
	struct responses r = {0};
	size_t sent = 0;
	int quiet = 0;
	for (int turn = 0; turn < TURNS_MAX && quiet < TURNS_QUIET; turn++) {
		bool progress = false;
		if (sent < size) {
			ssize_t n =
				send(sv[1], data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				sent += (size_t)n;
				progress = true;
			}
		}
		loop_turn();
		progress |= responses_drain(sv[1], &r);
		progress |= tl_ring_pending(broker.ring) > 0;
		quiet = progress ? 0 : quiet + 1;
	}
	if (!conn->closed)
		tl_conn_close(conn, "fuzz input done");
	tl_conn_release(conn);
	responses_drain(sv[1], &r);
	bool internal_written = internal_topics_written();
	broker_stop();
	responses_drain(sv[1], &r);
	close(sv[1]);
	int32_t ids[4096];
	size_t id_count = request_ids(data, size, ids, TL_ARRAY_SIZE(ids));
	responses_check(&r, ids, id_count);
	free(r.data);
	/* What the input made the broker write, it must read again. */
	if (internal_written) {
		broker_start(false);
		broker_stop();
	}
	fixed_random = false;
	return 0;
}
