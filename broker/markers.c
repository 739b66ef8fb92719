/* markers.c - see markers.h.
 * One lane per destination broker (Kafka's per-broker queues of its
 * TransactionMarkerChannelManager): a thread, started at the first marker for that
 * broker, sends its markers one WriteTxnMarkers request at a time over a cached
 * connection, secured as the inter-broker listener says (peer.c: TLS, SASL), every wait
 * bounded by poll timeouts; a failed connection is dropped and the job answers
 * TL_ERR_NETWORK_EXCEPTION (the coordinator retries on its tick). A broker that stops
 * answering holds up only its own lane: with one thread for all, every transaction's
 * markers waited behind its 3-15 s timeouts (a review measured a healthy partition's LSO
 * 14.6 s late). Results go back to the loop through an eventfd. Markers are rare (one
 * per partition per transaction), so threads with plain blocking I/O are simpler than a
 * second non-blocking client in the loop, and never make the loop wait.
 * Invariants: (1) a job is on exactly one list (a lane's queue, in its thread's hands,
 * results); (2) a job's callback runs exactly once, on the loop thread. */
#include "broker/markers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/cluster.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"
#include "protocol/api.h"
#include "protocol/messages.h"

#define MARKERS_VERSION    1
#define IO_TIMEOUT_MS      15000 /* the leader answers once the ISR has the marker */
#define CONNECT_TIMEOUT_MS 3000
#define LANES_MAX          64 /* destination brokers */
#define RESPONSE_BYTES_MAX (1 << 20)

struct job {
	int32_t leader;
	char host[256];
	int32_t port;
	char topic[TL_TOPIC_NAME_MAX + 1];
	int32_t partition;
	int64_t producer_id;
	int16_t producer_epoch;
	bool commit;
	int32_t coordinator_epoch;
	tl_markers_done_fn done;
	void *ctx;
	tl_err err;
	struct job *next;
};

struct conn {
	int32_t broker_id;
	char host[256];
	int32_t port;
	int fd;
	struct tl_peer_link link; /* valid while fd != -1 */
};

struct lane {
	struct tl_markers *markers;
	int32_t broker_id;
	pthread_t thread;
	pthread_cond_t wake;
	struct job *queue, *queue_tail; /* markers->lock */
	/* The lane's thread's own. */
	struct conn conn;
	int32_t correlation_id;
	int64_t login_warn_ms; /* the last login failure's warn line */
};

struct tl_markers {
	pthread_mutex_t lock;
	struct job *results; /* lock */
	bool stopping;       /* lock */
	int event_fd;
	struct lane *lanes[LANES_MAX]; /* created by the loop, under lock */
	int32_t lane_count;
	int32_t node_id;
	const struct tl_peer_security *security; /* the broker's, read-only while running */
};

/* ---- the thread ---- */

static void conn_drop(struct conn *c)
{
	if (c->fd != -1) {
		tl_peer_link_deinit(&c->link);
		memset(&c->link, 0, sizeof(c->link));
		close(c->fd);
	}
	c->fd = -1;
}

static int connect_to(const char *host, int32_t port)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return -1;
	struct sockaddr_in addr = *(struct sockaddr_in *)(void *)ai->ai_addr;
	freeaddrinfo(ai);
	addr.sin_port = htons((uint16_t)port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof(err);
		if (errno != EINPROGRESS || poll(&pfd, 1, CONNECT_TIMEOUT_MS) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			close(fd);
			return -1;
		}
	}
	/* Non-blocking from here (the TLS layer needs it); waits are polls with timeouts. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Drives the link to READY, waiting on the socket: true once there. */
static bool conn_login(struct conn *c)
{
	for (;;) {
		tl_err err = tl_peer_link_advance(&c->link);
		if (err == TL_OK)
			return true;
		if (err != TL_ERR_AGAIN)
			return false;
		if (!tl_peer_link_wait(&c->link, IO_TIMEOUT_MS)) {
			snprintf(c->link.why, sizeof(c->link.why), "timed out");
			c->link.failure = TL_ERR_REQUEST_TIMED_OUT;
			return false;
		}
	}
}

/* TLS and SASL of the inter-broker listener on a fresh connection (@fresh), or SASL
 * again on one whose session is due (KIP-368): true once ready. */
static bool conn_secure(struct lane *l, struct conn *c, bool fresh)
{
	const struct tl_markers *m = l->markers;
	if (fresh && tl_peer_link_init(&c->link, m->security, c->fd, c->host) != TL_OK)
		c->link.failure = TL_ERR_NOMEM;
	else if (conn_login(c))
		return true;
	/* The lane owns login_warn_ms; markers are rare, one line per 10 s is plenty. */
	int64_t now = tl_mono_ms();
	if (l->login_warn_ms == 0 || now - l->login_warn_ms >= 10000) {
		tl_warn("txn: cannot connect to a broker over the inter-broker listener broker=%d "
			"principal=%s security.protocol=%s err=%s why=\"%s\"",
			c->broker_id, m->security->principal, m->security->protocol_name,
			tl_err_name(c->link.failure), c->link.why);
		l->login_warn_ms = now;
	}
	conn_drop(c);
	return false;
}

static struct conn *conn_for(struct lane *l, const struct job *job)
{
	struct conn *c = &l->conn;
	if (c->fd != -1 && (c->port != job->port || strcmp(c->host, job->host) != 0))
		conn_drop(c); /* the broker moved */
	if (c->fd == -1) {
		c->fd = connect_to(job->host, job->port);
		snprintf(c->host, sizeof(c->host), "%s", job->host);
		c->port = job->port;
		if (c->fd != -1 && !conn_secure(l, c, true))
			return NULL;
	} else if (tl_peer_link_reauth_due(&c->link, tl_mono_ms())) {
		/* Nothing is in flight between two jobs: the peer would close the connection
		 * at our next request once the session ended. */
		tl_peer_link_reauth_start(&c->link);
		if (!conn_secure(l, c, false))
			return NULL;
		tl_info("txn: re-authenticated with broker=%d principal=%s logins=%d", c->broker_id,
			l->markers->security->principal, c->link.logins);
	}
	return c->fd == -1 ? NULL : c;
}

/* Plain sockets say nothing of a direction; a would-block send waits for POLLOUT. */
static bool conn_wait(struct conn *c, bool sending)
{
	if (!c->link.transport.ssl)
		c->link.transport.want_write = sending;
	return tl_peer_link_wait(&c->link, IO_TIMEOUT_MS);
}

static bool send_all(struct conn *c, const uint8_t *p, size_t len)
{
	while (len > 0) {
		struct iovec iov = {.iov_base = (void *)(uintptr_t)p, .iov_len = len};
		ssize_t n = tl_transport_writev(&c->link.transport, &iov, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (!conn_wait(c, true))
				return false;
			continue;
		}
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool recv_all(struct conn *c, uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = tl_transport_read(&c->link.transport, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (!conn_wait(c, false))
				return false;
			continue;
		}
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* One request, one answer: the partition's error code, or TL_ERR_NETWORK_EXCEPTION. */
static tl_err job_run(struct lane *l, struct job *job)
{
	struct conn *c = conn_for(l, job);
	if (!c)
		return TL_ERR_NETWORK_EXCEPTION;
	int32_t partition = job->partition;
	struct tl_write_txn_markers_request_writable_txn_marker_topic topic = {
		.name = tl_str_of(job->topic),
		.partition_indexes_count = 1,
		.partition_indexes = &partition};
	struct tl_write_txn_markers_request_writable_txn_marker marker = {
		.producer_id = job->producer_id,
		.producer_epoch = job->producer_epoch,
		.transaction_result = job->commit,
		.topics_count = 1,
		.topics = &topic,
		.coordinator_epoch = job->coordinator_epoch};
	struct tl_write_txn_markers_request req = {.markers_count = 1, .markers = &marker};
	struct tl_buf buf;
	tl_buf_init(&buf);
	tl_buf_i32(&buf, 0);
	struct tl_request_header header = {.api_key = TL_API_WRITE_TXN_MARKERS,
					   .api_version = MARKERS_VERSION,
					   .correlation_id = ++l->correlation_id,
					   .client_id = tl_str_of("tallyd-txn-markers")};
	tl_request_header_encode(&buf, &header);
	tl_write_txn_markers_request_encode(&buf, MARKERS_VERSION, &req);
	if (buf.failed) {
		tl_buf_deinit(&buf);
		return TL_ERR_NOMEM;
	}
	tl_be32_put(buf.data, (uint32_t)(buf.len - 4));
	bool sent = send_all(c, buf.data, buf.len);
	tl_buf_deinit(&buf);
	uint8_t size_bytes[4];
	if (!sent || !recv_all(c, size_bytes, 4)) {
		conn_drop(c);
		return TL_ERR_NETWORK_EXCEPTION;
	}
	uint32_t size = tl_be32_get(size_bytes);
	uint8_t *body = size >= 4 && size <= RESPONSE_BYTES_MAX ? malloc(size) : NULL;
	if (!body || !recv_all(c, body, size)) {
		free(body);
		conn_drop(c);
		return TL_ERR_NETWORK_EXCEPTION;
	}
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, body, size);
	struct tl_arena arena;
	tl_arena_init(&arena, 0);
	struct tl_write_txn_markers_response resp;
	int32_t correlation_id;
	tl_err err = TL_ERR_NETWORK_EXCEPTION;
	if (tl_response_header_decode(&cursor, TL_API_WRITE_TXN_MARKERS, MARKERS_VERSION,
				      &correlation_id) == TL_OK &&
	    correlation_id == l->correlation_id &&
	    tl_write_txn_markers_response_decode(&cursor, MARKERS_VERSION, &arena, &resp) ==
		    TL_OK &&
	    resp.markers_count == 1 && resp.markers[0].topics_count == 1 &&
	    resp.markers[0].topics[0].partitions_count == 1)
		err = (tl_err)resp.markers[0].topics[0].partitions[0].error_code;
	else
		conn_drop(c); /* out of step with the peer */
	tl_arena_deinit(&arena);
	free(body);
	return err;
}

static void signal_loop(struct tl_markers *m)
{
	uint64_t one = 1;
	ssize_t n = write(m->event_fd, &one, sizeof(one));
	TL_UNUSED(n); /* a full counter is still readable */
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct tl_markers *m = l->markers;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!l->queue && !m->stopping)
			pthread_cond_wait(&l->wake, &m->lock);
		if (m->stopping)
			break;
		struct job *job = l->queue;
		l->queue = job->next;
		if (!l->queue)
			l->queue_tail = NULL;
		pthread_mutex_unlock(&m->lock);
		job->err = job_run(l, job);
		pthread_mutex_lock(&m->lock);
		job->next = m->results;
		m->results = job;
		signal_loop(m);
	}
	pthread_mutex_unlock(&m->lock);
	conn_drop(&l->conn);
	return NULL;
}

/* The lane of broker @leader, started on first use (the loop's thread; @m->lock held).
 * NULL when LANES_MAX brokers have one or no thread can start. */
static struct lane *lane_for(struct tl_markers *m, int32_t leader)
{
	for (int32_t i = 0; i < m->lane_count; i++)
		if (m->lanes[i]->broker_id == leader)
			return m->lanes[i];
	if (m->lane_count == LANES_MAX)
		return NULL;
	struct lane *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->markers = m;
	l->broker_id = leader;
	l->conn.broker_id = leader;
	l->conn.fd = -1;
	pthread_cond_init(&l->wake, NULL);
	if (pthread_create(&l->thread, NULL, lane_main, l) != 0) {
		pthread_cond_destroy(&l->wake);
		free(l);
		return NULL;
	}
	m->lanes[m->lane_count++] = l;
	return l;
}

/* ---- the loop's side ---- */

tl_err tl_markers_create(struct tl_broker *broker, struct tl_markers **out)
{
	struct tl_markers *m = calloc(1, sizeof(*m));
	if (!m)
		return TL_ERR_NOMEM;
	m->node_id = broker->config.node_id;
	m->security = &broker->peer_security;
	m->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->event_fd == -1) {
		free(m);
		return TL_ERR_IO;
	}
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return TL_OK;
}

int tl_markers_fd(const struct tl_markers *markers)
{
	return markers->event_fd;
}

static void results_run(struct job *list)
{
	while (list) {
		struct job *next = list->next;
		if (list->err != TL_OK)
			tl_info("txn: marker not written on another broker, retried later "
				"leader=%d topic=%s partition=%d err=%s",
				list->leader, list->topic, list->partition, tl_err_name(list->err));
		list->done(list->ctx, list->err);
		free(list);
		list = next;
	}
}

void tl_markers_on_event(struct tl_broker *broker)
{
	struct tl_markers *m = broker->markers;
	uint64_t count;
	ssize_t n = read(m->event_fd, &count, sizeof(count));
	TL_UNUSED(n);
	pthread_mutex_lock(&m->lock);
	struct job *list = m->results;
	m->results = NULL;
	pthread_mutex_unlock(&m->lock);
	results_run(list);
}

void tl_markers_destroy(struct tl_broker *broker, struct tl_markers *markers)
{
	TL_UNUSED(broker);
	if (!markers)
		return;
	pthread_mutex_lock(&markers->lock);
	markers->stopping = true;
	for (int32_t i = 0; i < markers->lane_count; i++)
		pthread_cond_signal(&markers->lanes[i]->wake);
	pthread_mutex_unlock(&markers->lock);
	for (int32_t i = 0; i < markers->lane_count; i++)
		pthread_join(markers->lanes[i]->thread, NULL);
	results_run(markers->results);
	for (int32_t i = 0; i < markers->lane_count; i++) {
		struct lane *l = markers->lanes[i];
		for (struct job *j = l->queue; j; j = j->next)
			j->err = TL_ERR_NETWORK_EXCEPTION;
		results_run(l->queue);
		pthread_cond_destroy(&l->wake);
		free(l);
	}
	close(markers->event_fd);
	pthread_mutex_destroy(&markers->lock);
	free(markers);
}

tl_err tl_markers_send(struct tl_broker *broker, int32_t leader, const char *topic,
		       int32_t partition, int64_t producer_id, int16_t producer_epoch, bool commit,
		       int32_t coordinator_epoch, tl_markers_done_fn done, void *ctx)
{
	struct tl_markers *m = broker->markers;
	const struct tl_cluster_broker *b =
		leader >= 0 ? tl_cluster_find_broker(tl_cluster_view(broker->cluster), leader)
			    : NULL;
	if (!m || !b)
		return TL_ERR_NOT_LEADER_OR_FOLLOWER;
	struct job *job = calloc(1, sizeof(*job));
	if (!job)
		return TL_ERR_NOMEM;
	job->leader = leader;
	snprintf(job->host, sizeof(job->host), "%s", b->host);
	job->port = b->port;
	snprintf(job->topic, sizeof(job->topic), "%s", topic);
	job->partition = partition;
	job->producer_id = producer_id;
	job->producer_epoch = producer_epoch;
	job->commit = commit;
	job->coordinator_epoch = coordinator_epoch;
	job->done = done;
	job->ctx = ctx;
	pthread_mutex_lock(&m->lock);
	struct lane *l = lane_for(m, leader);
	if (!l) {
		pthread_mutex_unlock(&m->lock);
		free(job);
		return TL_ERR_NOMEM;
	}
	if (l->queue_tail)
		l->queue_tail->next = job;
	else
		l->queue = job;
	l->queue_tail = job;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&m->lock);
	return TL_OK;
}
