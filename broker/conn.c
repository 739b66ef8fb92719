/* conn.c - client connections: framing, the in-order request FIFO, and sending.
 * (1) Responses leave in request order: only the FIFO head is ever written.
 * (2) conn->refs = requests alive that point at the conn + 1 while the socket is open
 *     + 1 while an epoll batch holding an event for it is being handled (and while
 *     tl_conn_on_event runs); the conn is freed when it drops to 0, never while a
 *     request or a pending event can still reach it.
 * (3) A frame larger than socket.request.max.bytes, or a malformed header, closes the
 *     connection with one diag line naming the peer and the first bytes; nothing of it
 *     reaches a log.
 * (4) Bytes move through conn->transport: plain TCP, or TLS on SSL and SASL_SSL
 *     listeners. A TLS connection handshakes first (tls_handshaking: nothing is read as
 *     a request until it is done) and is closed if that takes ssl.handshake.timeout.ms.
 *     TLS may hold decrypted bytes epoll cannot see: whoever stops reading early
 *     (rounds, pause, mute, suspension) reads again when it resumes
 *     (conn_resume_reading).
 * (5) A connection whose reads are suspended (tl_conn_suspend_reads: its PLAIN login
 *     runs on a worker thread) reads no request until they resume: the next request
 *     must see the login's outcome.
 * (6) A Metadata request that arrives while earlier requests of its connection are
 *     still unanswered (a Produce waiting for the ISR) is deferred: it is dispatched
 *     when it heads the FIFO, so its answer describes the cluster when it is sent.
 *     Kafka reads a connection's next request only after the previous response went
 *     out, so its answers are never older than the ones before them. Computed on
 *     arrival, an answer held seconds behind a Produce (a dead follower stays in the
 *     ISR for replica.lag.time.max.ms) names the leader of before a failover, and
 *     arriving after fresher answers from other brokers it moves librdkafka 2.0.2's
 *     partition back to the old leader, where it stays (test 902, issue 15). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"
#include "common/tls.h"

#define CONN_RBUF_BYTES   (64 * 1024)
#define CONN_IOV_MAX      64
#define REQUEST_ARENA_MAX (64u * 1024 * 1024) /* decoded form of one request */

/* ---- lifetime ---- */

static void conn_unref(struct tl_conn *conn)
{
	TL_ASSERT(conn->refs > 0);
	if (--conn->refs > 0)
		return;
	TL_ASSERT(conn->closed);
	TL_ASSERT(!conn->head);
	tl_sasl_conn_free(conn);
	free(conn->rbuf);
	free(conn);
}

static void conn_unthrottle_unlink(struct tl_conn *conn);
static void conn_ip_release(struct tl_broker *broker, struct tl_conn_ip **ip_ref);

void tl_request_free(struct tl_request *req)
{
	TL_ASSERT(req->waits == 0);
	TL_ASSERT(!req->on_abandon);
	struct tl_conn *conn = req->conn;
	tl_buf_deinit(&req->response);
	tl_arena_deinit(&req->arena);
	free(req->frame);
	free(req);
	conn_unref(conn);
}

static struct tl_request *request_create(struct tl_conn *conn, uint32_t frame_len)
{
	struct tl_request *req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->frame = malloc(frame_len ? frame_len : 1);
	if (!req->frame) {
		free(req);
		return NULL;
	}
	req->frame_len = frame_len;
	req->conn = conn;
	tl_arena_init(&req->arena, REQUEST_ARENA_MAX);
	tl_buf_init(&req->response);
	conn->refs++;
	return req;
}

void tl_conn_close(struct tl_conn *conn, const char *why)
{
	if (conn->closed)
		return;
	struct tl_broker *broker = conn->broker;
	tl_debug("broker: connection closed peer=%s why=\"%s\"", conn->peer, why);
	conn->closed = true;
	epoll_ctl(broker->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
	tl_transport_deinit(&conn->transport);
	close(conn->fd);
	conn->fd = -1;
	conn_ip_release(broker, &conn->ip_count);
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		broker->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	broker->conn_count--;
	if (conn->throttled)
		conn_unthrottle_unlink(conn);
	if (conn->reading) {
		tl_request_free(conn->reading);
		conn->reading = NULL;
	}
	/* Requests still waiting on the log stay alive (they own batches the log borrows)
	 * and free themselves when their waits end; the rest go now. */
	struct tl_request *req = conn->head;
	conn->head = conn->tail = NULL;
	while (req) {
		struct tl_request *next = req->next;
		req->next = NULL;
		if (req->on_abandon) {
			req->on_abandon(req);
			req->on_abandon = NULL;
		}
		if (req->waits == 0)
			tl_request_free(req);
		req = next;
	}
	conn->queued = 0;
	conn_unref(conn);
}

static void conn_unthrottle_unlink(struct tl_conn *conn)
{
	struct tl_broker *broker = conn->broker;
	if (conn->throttle_prev)
		conn->throttle_prev->throttle_next = conn->throttle_next;
	else
		broker->throttled = conn->throttle_next;
	if (conn->throttle_next)
		conn->throttle_next->throttle_prev = conn->throttle_prev;
	conn->throttle_prev = conn->throttle_next = NULL;
	conn->throttled = false;
}

/* ---- accepting ---- */

static uint32_t ip_hash(const struct in6_addr *addr)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < sizeof(addr->s6_addr); i++)
		h = (h ^ addr->s6_addr[i]) * 16777619u;
	return h % TL_CONN_IP_BUCKETS;
}

/* Counts a connection from @addr unless max.connections.per.ip is reached: its entry,
 * or NULL (refused, or out of memory). */
static struct tl_conn_ip *conn_ip_take(struct tl_broker *broker, const struct in6_addr *addr,
				       bool *refused_out)
{
	struct tl_conn_ip **head = &broker->conn_ips[ip_hash(addr)];
	struct tl_conn_ip *ip = *head;
	while (ip && memcmp(&ip->addr, addr, sizeof(*addr)) != 0)
		ip = ip->next;
	*refused_out = ip && ip->count >= broker->config.max_connections_per_ip;
	if (*refused_out)
		return NULL;
	if (!ip) {
		ip = calloc(1, sizeof(*ip));
		if (!ip)
			return NULL;
		ip->addr = *addr;
		ip->next = *head;
		*head = ip;
	}
	ip->count++;
	return ip;
}

/* Uncounts the connection *@ip_ref counted (if any) and clears it. */
static void conn_ip_release(struct tl_broker *broker, struct tl_conn_ip **ip_ref)
{
	struct tl_conn_ip *ip = *ip_ref;
	if (!ip)
		return;
	*ip_ref = NULL;
	TL_ASSERT(ip->count > 0);
	if (--ip->count > 0)
		return;
	struct tl_conn_ip **link = &broker->conn_ips[ip_hash(&ip->addr)];
	while (*link != ip)
		link = &(*link)->next;
	*link = ip->next;
	free(ip);
}

/* Whether a new connection from @addr may stay; counts it in *@ip_out when it may. */
static bool accept_allowed(struct tl_broker *broker, const struct sockaddr_in *addr,
			   struct tl_conn_ip **ip_out)
{
	*ip_out = NULL;
	if (broker->conn_count >= broker->config.max_connections || broker->stopping) {
		broker->connections_refused_total++;
		tl_warn("broker: connection refused, max.connections reached count=%d",
			broker->conn_count);
		return false;
	}
	struct in6_addr v6 = {0};
	v6.s6_addr[10] = v6.s6_addr[11] = 0xff;
	memcpy(&v6.s6_addr[12], &addr->sin_addr, 4);
	bool refused;
	*ip_out = conn_ip_take(broker, &v6, &refused);
	if (refused) {
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &addr->sin_addr, ip, sizeof(ip));
		broker->connections_refused_total++;
		tl_warn("broker: connection refused, max.connections.per.ip reached ip=%s limit=%d",
			ip, broker->config.max_connections_per_ip);
		return false;
	}
	return true;
}

/* Sets up @conn's byte stream for @listener: plain, or a TLS session to handshake. */
static tl_err conn_transport_init(struct tl_conn *conn, struct tl_broker_listener *listener)
{
	conn->listener = listener;
	conn->security_protocol = listener->security_protocol;
	if (!listener->ssl_ctx) {
		tl_transport_init_plain(&conn->transport, conn->fd);
		return TL_OK;
	}
	tl_err err =
		tl_transport_init_tls(&conn->transport, conn->fd, listener->ssl_ctx, true, NULL);
	conn->tls_handshaking = err == TL_OK;
	return err;
}

void tl_conn_accept(struct tl_broker *broker, struct tl_broker_listener *listener)
{
	for (;;) {
		struct sockaddr_in addr;
		socklen_t addr_len = sizeof(addr);
		int fd = accept4(listener->fd, (struct sockaddr *)&addr, &addr_len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			tl_crit("broker: accept failed err=%s", strerrorname_np(errno));
			return;
		}
		struct tl_conn_ip *ip;
		if (!accept_allowed(broker, &addr, &ip)) {
			close(fd);
			continue;
		}
		struct tl_conn *conn = calloc(1, sizeof(*conn));
		uint8_t *rbuf = malloc(CONN_RBUF_BYTES);
		if (!conn || !rbuf || !ip) {
			conn_ip_release(broker, &ip);
			free(conn);
			free(rbuf);
			close(fd);
			tl_crit("broker: out of memory accepting a connection");
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn->broker = broker;
		conn->fd = fd;
		conn->ip_count = ip;
		conn->rbuf = rbuf;
		conn->rcap = CONN_RBUF_BYTES;
		conn->refs = 1;
		conn->last_active_ms = conn->accepted_ms = tl_mono_ms();
		inet_ntop(AF_INET, &addr.sin_addr, conn->peer_ip, sizeof(conn->peer_ip));
		snprintf(conn->peer, sizeof(conn->peer), "%s:%u", conn->peer_ip,
			 ntohs(addr.sin_port));
		snprintf(conn->principal, sizeof(conn->principal), "User:ANONYMOUS");
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = conn};
		if (conn_transport_init(conn, listener) != TL_OK ||
		    epoll_ctl(broker->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			tl_crit("broker: cannot set up a connection err=%s",
				strerrorname_np(errno));
			tl_transport_deinit(&conn->transport);
			conn_ip_release(broker, &conn->ip_count);
			close(fd);
			free(rbuf);
			free(conn);
			continue;
		}
		conn->next = broker->conns;
		if (broker->conns)
			broker->conns->prev = conn;
		broker->conns = conn;
		broker->conn_count++;
		tl_debug("broker: connection accepted peer=%s listener=%s", conn->peer,
			 listener->config->name);
	}
}

void tl_conn_advertised(const struct tl_conn *conn, const char **host_out, int32_t *port_out)
{
	const struct tl_broker *broker = conn->broker;
	*host_out = conn->listener ? conn->listener->advertised_host : broker->advertised_host;
	*port_out = conn->listener ? conn->listener->advertised_port : broker->advertised_port;
}

/* ---- reading ---- */

static void conn_malformed(struct tl_conn *conn, const uint8_t *bytes, size_t len, const char *what)
{
	char esc[32 * 4 + 1];
	tl_diag_escape(bytes, TL_MIN(len, (size_t)32), esc, sizeof(esc));
	conn->broker->malformed_total++;
	tl_warn("broker: malformed request, closing connection peer=%s problem=\"%s\" "
		"first_bytes=\"%s\"",
		conn->peer, what, esc);
	tl_conn_close(conn, what);
}

void tl_request_reject(struct tl_request *req, const char *what)
{
	conn_malformed(req->conn, req->frame, req->frame_len, what); /* frees req */
}

/* A whole frame is in req->frame: parse its header and hand it to the dispatcher. */
static void conn_frame_ready(struct tl_conn *conn, struct tl_request *req)
{
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, req->frame, req->frame_len);
	if (tl_request_header_decode(&cursor, &req->header) != TL_OK || cursor.failed) {
		conn_malformed(conn, req->frame, req->frame_len, "bad request header");
		tl_request_free(req);
		return;
	}
	if (conn->tail)
		conn->tail->next = req;
	else
		conn->head = req;
	conn->tail = req;
	conn->queued++;
	conn->broker->requests_total++;
	/* Every read stops at a frame boundary's worth of unparsed bytes (conn_parse frames
	 * all it can before the next read), so the last read completed this frame: its
	 * queue time counts from then, including any wait for the requests ahead of it in
	 * this read or for the connection's pause (queued.max.requests, quota mute). */
	TL_ASSERT_DEBUG(conn->read_ns > 0);
	req->received_ns = conn->read_ns;
	if (req->header.api_key == TL_API_METADATA && conn->head != req) {
		req->deferred = true; /* invariant (6): tl_conn_flush dispatches it */
		return;
	}
	if (conn->broker->metrics_on) {
		/* The first frame of a read starts at the read's own clock reading: its
		 * queue time is 0, its framing (header decode, the copy out of the 64 KiB
		 * read buffer) counts as local time. Later frames of the same read waited
		 * for the handlers ahead of them: read the clock. */
		req->started_ns = conn->read_fresh ? conn->read_ns : tl_mono_ns();
		conn->read_fresh = false;
	}
	tl_dispatch(req);
}

/* Starts or restarts the clock of a frame that is partly in (socket.request.read.timeout.ms);
 * @progressed: a whole frame just came in, so the one in progress starts now. */
static void conn_frame_clock(struct tl_conn *conn, bool progressed)
{
	if (!conn->reading && conn->rlen == 0)
		conn->frame_started_ms = 0;
	else if (progressed || !conn->frame_started_ms)
		conn->frame_started_ms = tl_mono_ms();
}

static void conn_update_events(struct tl_conn *conn)
{
	if (conn->closed)
		return;
	bool want_read = !conn->read_paused && !conn->throttled && !conn->reads_suspended;
	bool want_write = conn->want_write || conn->tls_read_wants_write;
	if (conn->tls_handshaking) {
		want_read = !conn->transport.want_write;
		want_write = conn->transport.want_write;
	}
	uint32_t events = EPOLLRDHUP | (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0);
	struct epoll_event ev = {.events = events, .data.ptr = conn};
	epoll_ctl(conn->broker->epoll_fd, EPOLL_CTL_MOD, conn->fd, &ev);
}

/* Frames whole requests out of rbuf; a large frame gets its own buffer and the rest of
 * it is read straight into that. Returns false if the connection was closed. */
static bool conn_parse(struct tl_conn *conn)
{
	uint32_t pos = 0;
	uint32_t max = tl_sasl_frame_max(conn);
	while (!conn->closed && conn->rlen - pos >= 4) {
		if (conn->throttled || conn->reads_suspended)
			break; /* quota: muted, as Kafka mutes the channel; or a login runs */
		if (conn->queued >= conn->broker->config.queued_max_requests) {
			conn->read_paused = true;
			break;
		}
		uint32_t size = tl_be32_get(conn->rbuf + pos);
		if ((int32_t)size < 8 || size > max) {
			char what[192];
			snprintf(what, sizeof(what),
				 "frame size %d outside [8, %u] (socket.request.max.bytes, or "
				 "sasl.server.max.receive.size before SASL authentication)",
				 (int32_t)size, max);
			conn_malformed(conn, conn->rbuf + pos, conn->rlen - pos, what);
			return false;
		}
		struct tl_request *req = request_create(conn, size);
		if (!req) {
			tl_crit("broker: out of memory for a request bytes=%u peer=%s", size,
				conn->peer);
			tl_conn_close(conn, "out of memory");
			return false;
		}
		uint32_t have = TL_MIN(size, conn->rlen - pos - 4);
		memcpy(req->frame, conn->rbuf + pos + 4, have);
		pos += 4 + have;
		if (have < size) {
			conn->reading = req;
			conn->reading_have = have;
			break;
		}
		conn_frame_ready(conn, req);
	}
	if (conn->closed)
		return false;
	memmove(conn->rbuf, conn->rbuf + pos, conn->rlen - pos);
	conn->rlen -= pos;
	conn_frame_clock(conn, pos > 0);
	return true;
}

static void conn_read(struct tl_conn *conn)
{
	/* TLS may hold a decrypted record that epoll will not report: drain it. */
	for (int rounds = 0;
	     (rounds < 16 || tl_transport_has_pending(&conn->transport)) && !conn->closed &&
	     !conn->read_paused && !conn->throttled && !conn->reads_suspended;
	     rounds++) {
		ssize_t n;
		if (conn->reading) {
			struct tl_request *req = conn->reading;
			n = tl_transport_read(&conn->transport, req->frame + conn->reading_have,
					      req->frame_len - conn->reading_have);
			if (n > 0) {
				conn->read_ns = tl_mono_ns();
				conn->read_fresh = true;
				conn->reading_have += (uint32_t)n;
				if (conn->reading_have == req->frame_len) {
					conn->reading = NULL;
					conn_frame_clock(conn, true);
					conn_frame_ready(conn, req);
				}
				conn->read_fresh = false;
				continue;
			}
		} else {
			n = tl_transport_read(&conn->transport, conn->rbuf + conn->rlen,
					      conn->rcap - conn->rlen);
			if (n > 0) {
				conn->read_ns = tl_mono_ns();
				conn->read_fresh = true;
				conn->rlen += (uint32_t)n;
				bool open = conn_parse(conn);
				/* A frame left for after a pause or a mute waited: it reads
				 * the clock when it is parsed (conn_resume_reading). */
				conn->read_fresh = false;
				if (!open)
					return;
				continue;
			}
		}
		if (n == 0) {
			tl_conn_close(conn, "peer closed");
			return;
		}
		if (errno == EAGAIN && conn->transport.want_write) {
			/* TLS must send before it can read on (a KeyUpdate answer): wake on
			 * EPOLLOUT and read again then. */
			conn->tls_read_wants_write = true;
			conn_update_events(conn);
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			return;
		if (errno == EPROTO) {
			char detail[256];
			tl_transport_error(&conn->transport, detail, sizeof(detail));
			tl_warn("broker: TLS error, closing connection peer=%s detail=\"%s\"",
				conn->peer, detail);
		}
		tl_conn_close(conn, strerrorname_np(errno));
		return;
	}
}

/* Reading resumes after a pause or a mute: frames already in rbuf first, then what
 * TLS holds decrypted. */
static void conn_resume_reading(struct tl_conn *conn)
{
	if (!conn_parse(conn))
		return;
	if (tl_transport_has_pending(&conn->transport))
		conn_read(conn);
}

#define TLS_FAIL_LOG_PER_S 10 /* handshake failure lines per second at most */

static void conn_tls_failed(struct tl_conn *conn)
{
	struct tl_broker *broker = conn->broker;
	broker->tls_handshake_failed_total++;
	int64_t now_ms = tl_mono_ms();
	if (now_ms - broker->tls_fail_logged_ms >= 1000) {
		broker->tls_fail_logged_ms = now_ms;
		broker->tls_fail_logged = 0;
	}
	if (broker->tls_fail_logged++ < TLS_FAIL_LOG_PER_S) {
		char detail[256];
		tl_transport_error(&conn->transport, detail, sizeof(detail));
		tl_warn("broker: TLS handshake failed, closing connection peer=%s listener=%s "
			"detail=\"%s\" failed_total=%llu",
			conn->peer, conn->listener->config->name, detail,
			(unsigned long long)broker->tls_handshake_failed_total);
	}
	tl_conn_close(conn, "TLS handshake failed");
}

/* Says once per listener whether its TLS sends go through the kernel (sendfile stays
 * zero-copy) or through OpenSSL (file spans are read into memory, then encrypted). */
static void conn_tls_log_ktls(struct tl_conn *conn)
{
	struct tl_broker_listener *listener = conn->listener;
	if (listener->ktls_logged)
		return;
	listener->ktls_logged = true;
	listener->ktls_active = conn->transport.ktls_send;
	char version[96];
	tl_transport_describe(&conn->transport, version, sizeof(version));
	const char *why = "";
	if (!conn->transport.ktls_send)
		why = conn->broker->config.ssl_ktls_enable
			      ? " (kTLS unavailable for this session: is the kernel's tls module "
				"loaded? modprobe tls; AES-GCM ciphers only)"
			      : " (ssl.ktls.enable=false)";
	tl_info("broker: TLS on listener=%s sendfile=%s tls=\"%s\"%s", listener->config->name,
		conn->transport.ktls_send ? "kernel-tls" : "user-space-tls", version, why);
}

/* Drives a TLS handshake; true once it is done and requests may be read. */
static bool conn_handshake(struct tl_conn *conn)
{
	tl_err err = tl_transport_handshake(&conn->transport);
	if (err == TL_ERR_AGAIN) {
		conn_update_events(conn);
		return false;
	}
	if (err != TL_OK) {
		conn_tls_failed(conn);
		return false;
	}
	conn->tls_handshaking = false;
	if (tl_transport_peer_principal(&conn->transport, conn->principal,
					sizeof(conn->principal)) < 0) {
		/* Anonymous would skip every DENY on the real name (and its super user). */
		tl_warn("broker: TLS client certificate refused: its subject is longer than a "
			"principal may be (%d bytes) peer=%s",
			TL_PRINCIPAL_MAX, conn->peer);
		tl_conn_close(conn, "client certificate subject too long");
		return false;
	}
	conn_tls_log_ktls(conn);
	tl_debug("broker: TLS handshake done peer=%s principal=\"%s\" ktls_send=%d", conn->peer,
		 conn->principal, conn->transport.ktls_send);
	conn_update_events(conn);
	return true;
}

/* ---- writing ---- */

/* Splits a response into wire pieces: memory runs (the buf's own and memory spans) and
 * file spans, in order. Fills @iov with up to @iov_max memory pieces starting at wire
 * position @from; stops at the first file span (returned in *span_out) or the end.
 * Returns the number of iovecs. */
static int response_pieces(const struct tl_buf *buf, int64_t from, struct iovec *iov, int iov_max,
			   const struct tl_file_span **span_out, int64_t *span_skip_out)
{
	int64_t wire = 0;
	size_t mem = 0;
	int count = 0;
	*span_out = NULL;
	for (uint32_t i = 0; i <= buf->span_count && count < iov_max; i++) {
		size_t mem_end = i < buf->span_count ? buf->spans[i].at : buf->len;
		int64_t run = (int64_t)(mem_end - mem);
		if (run > 0 && from < wire + run) {
			int64_t skip = TL_MAX(from - wire, (int64_t)0);
			iov[count].iov_base = buf->data + mem + skip;
			iov[count].iov_len = (size_t)(run - skip);
			count++;
		}
		wire += run;
		mem = mem_end;
		if (i == buf->span_count)
			break;
		const struct tl_file_span *span = &buf->spans[i];
		if (span->mem) {
			/* A memory span goes out with the memory around it. */
			if (from < wire + span->bytes) {
				if (count == iov_max)
					break;
				int64_t skip = TL_MAX(from - wire, (int64_t)0);
				iov[count].iov_base = (void *)(uintptr_t)(span->mem + skip);
				iov[count].iov_len = (size_t)(span->bytes - skip);
				count++;
			}
			wire += span->bytes;
			continue;
		}
		if (from < wire + span->bytes) {
			if (count == 0) {
				*span_out = span;
				*span_skip_out = from - wire;
			}
			break;
		}
		wire += span->bytes;
	}
	return count;
}

#define SLOW_LOG_PER_S 10 /* slow-request lines per second at most; the rest are counted */

/* One warn line for a request slower than log.slow.request.ms, with its split. */
static void request_slow(struct tl_broker *broker, const struct tl_request *req, int64_t now_ns)
{
	int64_t now_ms = now_ns / 1000000;
	if (now_ms - broker->slow_logged_ms >= 1000) {
		broker->slow_logged_ms = now_ms;
		broker->slow_logged = 0;
	}
	if (broker->slow_logged >= SLOW_LOG_PER_S) {
		broker->slow_suppressed++;
		return;
	}
	broker->slow_logged++;
	const struct tl_api_info *info = tl_api_info(req->header.api_key);
	bool done = req->state == TL_REQUEST_DONE;
	tl_warn("broker: slow request api=%s api_version=%d correlation_id=%d total_ms=%.3f "
		"local_ms=%.3f send_ms=%.3f peer=%s suppressed_before=%llu",
		info ? info->name : "unknown", req->header.api_version, req->header.correlation_id,
		(double)(now_ns - req->received_ns) / 1e6,
		done ? (double)(req->done_ns - req->received_ns) / 1e6 : 0.0,
		done ? (double)(now_ns - req->done_ns) / 1e6 : 0.0, req->conn->peer,
		(unsigned long long)broker->slow_suppressed);
	broker->slow_suppressed = 0;
}

static void hist_add_ns(struct tl_hist *h, int64_t ns)
{
	tl_hist_add(h, (uint64_t)TL_MAX(ns, (int64_t)0) / 1000);
}

/* Adds @ns to a split family unless it is under 1 us: the zeros of the split families
 * are not added one by one but derived when rendered, as the total family's count less
 * theirs (metrics.c, render_request_hist; every request counted in total is counted in
 * every split family). Most parts of most requests are 0 (remote, throttle, and with
 * the clock reuse queue and response queue), and this is the per-request hot path. */
static inline void split_add_ns(struct tl_hist *h, int64_t ns)
{
	if (ns >= 1000)
		tl_hist_add(h, (uint64_t)ns / 1000);
}

/* Kafka's split of an answered (or silent) request's time, see struct
 * tl_request_metrics. The response queue time starts when the response was DONE, or at
 * the end of a KIP-219 hold, whichever is later: a hold is throttle time. */
static void request_split(struct tl_request_metrics *m, const struct tl_request *req, int64_t now)
{
	TL_ASSERT_DEBUG(req->remote_since_ns == 0);
	TL_ASSERT_DEBUG(req->started_ns >= req->received_ns);
	int64_t send_started = req->send_started_ns ? req->send_started_ns : now;
	int64_t queued_from = TL_MAX(req->done_ns, req->hold_until_ms * 1000000);
	split_add_ns(&m->queue, req->started_ns - req->received_ns);
	split_add_ns(&m->local, req->done_ns - req->started_ns - req->remote_ns);
	split_add_ns(&m->remote, req->remote_ns);
	if (req->throttle_ms > 0)
		tl_hist_add(&m->throttle, (uint64_t)req->throttle_ms * 1000);
	split_add_ns(&m->response_queue, send_started - queued_from);
	split_add_ns(&m->response_send, now - send_started);
}

/* Request time, frame in to the response's last byte written (or, for a request that
 * is not answered, to its turn in the FIFO); with metrics on, also split as Kafka's
 * RequestMetrics. Returns the clock reading it took, 0 if none. */
static int64_t request_timed(struct tl_broker *broker, const struct tl_request *req)
{
	int16_t key = req->header.api_key;
	if (key < 0 || key >= TL_BROKER_API_SLOTS)
		return 0;
	struct tl_request_metrics *m = broker->request_metrics[key];
	if (!m && !(m = broker->request_metrics[key] = calloc(1, sizeof(*m))))
		return 0; /* the figures are lost, nothing else */
	int64_t now = tl_mono_ns();
	hist_add_ns(&m->total, now - req->received_ns);
	bool logged = tl_diag_level() == TL_DIAG_DEBUG;
	if (logged) {
		const struct tl_api_info *info = tl_api_info(key);
		tl_debug("broker: request done api=%s api_version=%d correlation_id=%d "
			 "total_us=%lld response_bytes=%lld peer=%s",
			 info ? info->name : "unknown", req->header.api_version,
			 req->header.correlation_id, (long long)(now - req->received_ns) / 1000,
			 (long long)tl_buf_total(&req->response), req->conn->peer);
	}
	if (broker->config.log_slow_request_ms > 0 &&
	    now - req->received_ns >= broker->config.log_slow_request_ms * 1000000) {
		request_slow(broker, req, now);
		logged = true;
	}
	if (broker->metrics_on)
		request_split(m, req, now);
	return logged ? 0 : now; /* a diag line was written since the reading */
}

void tl_request_remote_begin(struct tl_request *req)
{
	TL_ASSERT(req->remote_since_ns == 0);
	if (req->conn->broker->metrics_on)
		req->remote_since_ns = tl_mono_ns();
}

void tl_request_remote_end(struct tl_request *req)
{
	if (req->remote_since_ns == 0)
		return; /* metrics off, or not waiting */
	req->remote_ns += tl_mono_ns() - req->remote_since_ns;
	req->remote_since_ns = 0;
}

/* Retires the head request; returns the clock reading that timed it, 0 if none. */
static int64_t conn_pop_head(struct tl_conn *conn)
{
	struct tl_request *req = conn->head;
	int64_t now = request_timed(conn->broker, req);
	conn->head = req->next;
	if (!conn->head)
		conn->tail = NULL;
	conn->queued--;
	conn->sent = 0;
	req->next = NULL;
	if (req->waits == 0)
		tl_request_free(req);
	else
		req->state = TL_REQUEST_SENT; /* its last wait frees it (produce.c) */
	if (conn->read_paused && conn->queued < conn->broker->config.queued_max_requests) {
		conn->read_paused = false;
		conn_update_events(conn);
		/* Not parsed here, inside a flush: at the end of the loop's turn. */
		if (!conn->resume_queued) {
			conn->resume_queued = true;
			conn->refs++;
			conn->resume_next = conn->broker->resume_head;
			conn->broker->resume_head = conn;
		}
		return 0; /* epoll_ctl: the reading is no longer now */
	}
	return now;
}

void tl_conn_resume_due(struct tl_broker *broker)
{
	while (broker->resume_head) {
		struct tl_conn *conn = broker->resume_head;
		broker->resume_head = conn->resume_next;
		conn->resume_next = NULL;
		conn->resume_queued = false;
		if (!conn->closed && !conn->read_paused && !conn->throttled &&
		    !conn->reads_suspended && !conn->tls_handshaking)
			conn_resume_reading(conn);
		conn_unref(conn);
	}
}

/* Writes finished responses from the head of the FIFO until the socket would block. */
void tl_conn_flush(struct tl_conn *conn)
{
	/* A clock reading taken just before, with no I/O or handler since (tl_response_end's
	 * DONE, the previous response's last byte): a response's send starts then, so
	 * one written in the pass that finished it has a response queue time of 0 (< 1 us
	 * in truth). 0: read the clock. */
	int64_t fresh_ns = conn->broker->fresh_ns;
	conn->broker->fresh_ns = 0;
	while (!conn->closed && conn->head &&
	       (conn->head->state != TL_REQUEST_WORKING || conn->head->deferred)) {
		struct tl_request *req = conn->head;
		if (req->deferred) {
			/* Invariant (6): its turn. The handler may answer at once, and
			 * answering flushes (re-entering here) or closes the connection.
			 * Its queue time ran from its frame until now. */
			req->deferred = false;
			if (conn->broker->metrics_on)
				req->started_ns = fresh_ns ? fresh_ns : tl_mono_ns();
			fresh_ns = 0; /* the handler runs */
			tl_conn_hold(conn);
			tl_dispatch(req);
			bool closed = conn->closed;
			tl_conn_release(conn);
			if (closed)
				return;
			continue;
		}
		if (req->hold_until_ms && tl_mono_ms() < req->hold_until_ms)
			break; /* quota: sent when the connection is unmuted */
		if (req->state == TL_REQUEST_SILENT) {
			fresh_ns = conn_pop_head(conn);
			continue;
		}
		if (req->send_started_ns == 0 && conn->broker->metrics_on)
			req->send_started_ns = fresh_ns ? fresh_ns : tl_mono_ns();
		fresh_ns = 0; /* the write below takes time */
		int64_t total = tl_buf_total(&req->response);
		struct iovec iov[CONN_IOV_MAX];
		const struct tl_file_span *span;
		int64_t span_skip = 0;
		int count = response_pieces(&req->response, conn->sent, iov, CONN_IOV_MAX, &span,
					    &span_skip);
		ssize_t n;
		if (count > 0) {
			n = tl_transport_writev(&conn->transport, iov, count);
		} else {
			TL_ASSERT(span);
			off_t off = (off_t)(span->offset + span_skip);
			n = tl_transport_sendfile(
				&conn->transport, span->fd, off, (size_t)(span->bytes - span_skip),
				conn->broker->tls_scratch, sizeof(conn->broker->tls_scratch));
			if (n == 0) {
				/* The file is shorter than the span: never send a short frame. */
				tl_crit("broker: sendfile hit end of file fd=%d offset=%lld",
					span->fd, (long long)off);
				tl_conn_close(conn, "sendfile short");
				return;
			}
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				if (!conn->want_write) {
					conn->want_write = true;
					conn_update_events(conn);
				}
				return;
			}
			if (errno == EPROTO) {
				char detail[256];
				tl_transport_error(&conn->transport, detail, sizeof(detail));
				tl_warn("broker: TLS error, closing connection peer=%s detail=\"%s\"",
					conn->peer, detail);
			}
			tl_conn_close(conn, strerrorname_np(errno));
			return;
		}
		conn->sent += n;
		if (conn->sent == total)
			fresh_ns = conn_pop_head(conn);
	}
	if (!conn->closed && conn->close_when_flushed && !conn->head) {
		tl_conn_close(conn, "SASL authentication failed"); /* as Kafka, once answered */
		return;
	}
	if (!conn->closed && conn->want_write) {
		conn->want_write = false;
		conn_update_events(conn);
	}
}

bool tl_request_wait_end(struct tl_request *req)
{
	TL_ASSERT(req->waits > 0);
	if (--req->waits > 0)
		return false;
	if (req->conn->closed) {
		req->state = TL_REQUEST_SILENT;
		tl_request_finished(req);
		return false;
	}
	return true;
}

void tl_request_finished(struct tl_request *req)
{
	TL_ASSERT(req->state != TL_REQUEST_WORKING);
	struct tl_conn *conn = req->conn;
	tl_request_remote_end(req);
	if (req->done_ns == 0 && conn->broker->metrics_on)
		req->done_ns = tl_mono_ns(); /* SILENT: no response was encoded */
	if (conn->closed) {
		/* Detached by tl_conn_close: nobody will send it. */
		if (req->waits == 0)
			tl_request_free(req);
		return;
	}
	if (conn->head == req)
		tl_conn_flush(conn);
}

void tl_conn_hold(struct tl_conn *conn)
{
	conn->refs++;
}

void tl_conn_release(struct tl_conn *conn)
{
	conn_unref(conn);
}

void tl_conn_on_event(struct tl_conn *conn, uint32_t events)
{
	if (conn->closed)
		return; /* closed by an earlier event of the same epoll batch */
	conn->refs++;   /* keep conn valid across callbacks that may close it */
	conn->last_active_ms = tl_mono_ms();
	if (conn->tls_handshaking) {
		/* Either direction may move it on; a request may follow the Finished. */
		if (conn_handshake(conn))
			conn_read(conn);
		goto out;
	}
	if (events & EPOLLOUT)
		tl_conn_flush(conn);
	bool read_now = conn->tls_read_wants_write && (events & EPOLLOUT);
	if (read_now) {
		conn->tls_read_wants_write = false;
		conn_update_events(conn);
	}
	if (!conn->closed && (read_now || (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))))
		conn_read(conn);
	if (!conn->closed && (events & (EPOLLHUP | EPOLLERR)))
		tl_conn_close(conn, "socket error");
	if (!conn->closed && conn->read_paused &&
	    conn->queued < conn->broker->config.queued_max_requests) {
		conn->read_paused = false;
		conn_update_events(conn);
		conn_resume_reading(conn);
	}
out:
	conn_unref(conn);
}

void tl_conn_close_idle(struct tl_broker *broker, int64_t now_ms)
{
	const struct tl_config *config = &broker->config;
	int64_t idle = config->connections_max_idle_ms;
	struct tl_conn *conn = broker->conns;
	while (conn) {
		struct tl_conn *next = conn->next;
		if (conn->tls_handshaking) {
			if (now_ms - conn->accepted_ms > config->ssl_handshake_timeout_ms) {
				broker->tls_handshake_failed_total++;
				tl_warn("broker: TLS handshake timed out, closing connection peer=%s "
					"ssl.handshake.timeout.ms=%lld",
					conn->peer, (long long)config->ssl_handshake_timeout_ms);
				tl_conn_close(conn, "TLS handshake timeout");
			}
		} else if (conn->frame_started_ms && !conn->read_paused && !conn->throttled &&
			   !conn->reads_suspended &&
			   now_ms - conn->frame_started_ms >
				   config->socket_request_read_timeout_ms) {
			tl_warn("broker: request frame not finished in time, closing connection "
				"peer=%s socket.request.read.timeout.ms=%lld",
				conn->peer, (long long)config->socket_request_read_timeout_ms);
			tl_conn_close(conn, "frame read timeout");
		} else if (idle >= 0 && !conn->head && now_ms - conn->last_active_ms > idle) {
			tl_conn_close(conn, "idle");
		}
		conn = next;
	}
}

/* ---- suspended reads ---- */

void tl_conn_suspend_reads(struct tl_conn *conn)
{
	TL_ASSERT(!conn->reads_suspended);
	TL_ASSERT(!conn->closed);
	conn->reads_suspended = true;
	conn_update_events(conn);
}

void tl_conn_resume_reads(struct tl_conn *conn)
{
	if (conn->closed)
		return;
	TL_ASSERT(conn->reads_suspended);
	conn->reads_suspended = false;
	conn_update_events(conn);
	conn->refs++; /* parsing may close it */
	if (!conn->throttled && !conn->read_paused)
		conn_resume_reading(conn);
	conn_unref(conn);
}

/* ---- quota throttling (KIP-219) ---- */

void tl_conn_throttle(struct tl_conn *conn, struct tl_request *req, int64_t until_ms, bool hold)
{
	if (conn->closed)
		return;
	if (hold)
		req->hold_until_ms = until_ms;
	if (conn->throttled) {
		conn->throttled_until_ms = TL_MAX(conn->throttled_until_ms, until_ms);
		return;
	}
	struct tl_broker *broker = conn->broker;
	conn->throttled = true;
	conn->throttled_until_ms = until_ms;
	conn->throttle_prev = NULL;
	conn->throttle_next = broker->throttled;
	if (broker->throttled)
		broker->throttled->throttle_prev = conn;
	broker->throttled = conn;
	conn_update_events(conn);
}

int64_t tl_conn_next_unthrottle(const struct tl_broker *broker)
{
	int64_t next = INT64_MAX;
	for (const struct tl_conn *conn = broker->throttled; conn; conn = conn->throttle_next)
		next = TL_MIN(next, conn->throttled_until_ms);
	return next;
}

void tl_conn_unthrottle_due(struct tl_broker *broker, int64_t now_ms)
{
	struct tl_conn *conn = broker->throttled;
	while (conn) {
		if (conn->throttled_until_ms > now_ms) {
			conn = conn->throttle_next;
			continue;
		}
		conn_unthrottle_unlink(conn);
		conn->refs++; /* parsing or flushing may close it */
		conn_update_events(conn);
		tl_conn_flush(conn);
		if (!conn->closed)
			conn_resume_reading(conn);
		conn_unref(conn);
		conn = broker->throttled; /* the list may have changed; restart */
	}
}
