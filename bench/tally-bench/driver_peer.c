/* driver_peer.c - producers for the peer systems, so the same workload (threads, sizes,
 * keys, pacing, warm-up, histograms) runs against them. Each speaks its server's own text
 * protocol over one TCP connection per producer, pipelined up to o->window records.
 *
 * Redis Streams: XADD <topic>-<partition> * [k <key>] v <value>. Replies come in command
 * order, so in-flight records are a FIFO. Durability is the server's appendfsync.
 *
 * NATS JetStream: HPUB <topic>.<partition> <inbox>.<seq> with a Nats-Msg-Id header
 * (the stream's duplicate window drops a resent id), acknowledged by a PubAck message on
 * the reply subject; acks may come out of order, so in-flight records sit in a table
 * indexed by seq. prepare() (re)creates the stream <topic> on subjects <topic>.>, file
 * storage.
 *
 * Partition: murmur-free here: keyed records go to a FNV-1a hash of the key, unkeyed
 * ones move to the next partition every STICKY_RECORDS records (like a sticky
 * partitioner with small batches). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tb.h"

#define STICKY_RECORDS   64
#define IO_CHUNK_BYTES   (256u << 10)
#define SETUP_TIMEOUT_MS 10000
#define LINE_MAX_BYTES   4096

struct pending {
	int64_t intended_ns;
	uint32_t bytes;
	bool used;
};

struct tb_producer_driver {
	bool nats;
	int fd;
	tb_ack_fn ack;
	void *ctx;
	const struct tb_opts *o;
	char topic[256];
	char inbox[64];
	/* output: bytes [out_off, out_len) not yet written */
	char *out;
	size_t out_len;
	size_t out_off;
	size_t out_cap;
	/* input: bytes [0, in_len) not yet parsed */
	char *in;
	size_t in_len;
	size_t in_cap;
	/* in flight: a FIFO (redis) or a table by seq % cap (nats) */
	struct pending *pend;
	uint32_t cap;
	uint64_t head; /* redis: oldest unanswered */
	uint64_t seq;  /* records sent */
	uint64_t in_flight;
	uint64_t sticky;
	char error[256];
	bool failed;
	/* nats set-up replies */
	char *setup_reply;
	bool pong;
};

/* ---- connection and buffers ---- */

static int tcp_connect(const char *hostport, char *err, size_t err_size)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
		snprintf(err, err_size, "bad address %s (want HOST:PORT)", hostport);
		return -1;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_size, "%s: %s", hostport, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *a = res; a && fd == -1; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd != -1 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			snprintf(err, err_size, "connect %s: %s", hostport, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd != -1) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

static bool out_reserve(struct tb_producer_driver *d, size_t more)
{
	if (d->out_off > 0 && d->out_off == d->out_len)
		d->out_off = d->out_len = 0;
	if (d->out_len + more <= d->out_cap)
		return true;
	if (d->out_off > 0) {
		memmove(d->out, d->out + d->out_off, d->out_len - d->out_off);
		d->out_len -= d->out_off;
		d->out_off = 0;
		if (d->out_len + more <= d->out_cap)
			return true;
	}
	size_t cap = d->out_cap ? d->out_cap : IO_CHUNK_BYTES;
	while (cap < d->out_len + more)
		cap *= 2;
	char *grown = realloc(d->out, cap);
	if (!grown)
		return false;
	d->out = grown;
	d->out_cap = cap;
	return true;
}

static void out_put(struct tb_producer_driver *d, const void *bytes, size_t len)
{
	memcpy(d->out + d->out_len, bytes, len);
	d->out_len += len;
}

static void out_printf(struct tb_producer_driver *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void out_printf(struct tb_producer_driver *d, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(line) && out_reserve(d, (size_t)n))
		out_put(d, line, (size_t)n);
}

static void driver_fail(struct tb_producer_driver *d, const char *why)
{
	if (!d->failed)
		snprintf(d->error, sizeof(d->error), "%.250s", why);
	d->failed = true;
}

static void parse_input(struct tb_producer_driver *d);

/* Moves bytes both ways, waiting up to @timeout_ms (-1 forever) for the socket. */
static void pump(struct tb_producer_driver *d, int timeout_ms)
{
	if (d->failed)
		return;
	struct pollfd pfd = {.fd = d->fd, .events = POLLIN};
	if (d->out_off < d->out_len)
		pfd.events |= POLLOUT;
	int n = poll(&pfd, 1, timeout_ms);
	if (n <= 0)
		return;
	if (pfd.revents & POLLOUT) {
		ssize_t w = send(d->fd, d->out + d->out_off, d->out_len - d->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0)
			d->out_off += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			driver_fail(d, strerror(errno));
	}
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
		if (d->in_cap - d->in_len < IO_CHUNK_BYTES) {
			size_t cap = d->in_cap ? d->in_cap * 2 : 2 * IO_CHUNK_BYTES;
			char *grown = realloc(d->in, cap);
			if (!grown) {
				driver_fail(d, "out of memory");
				return;
			}
			d->in = grown;
			d->in_cap = cap;
		}
		ssize_t r = recv(d->fd, d->in + d->in_len, d->in_cap - d->in_len - 1, MSG_DONTWAIT);
		if (r > 0) {
			d->in_len += (size_t)r;
			parse_input(d);
		} else if (r == 0) {
			driver_fail(d, "the server closed the connection");
		} else if (errno != EAGAIN && errno != EINTR) {
			driver_fail(d, strerror(errno));
		}
	}
}

/* Consumes @len parsed bytes from the front of the input. */
static void in_consume(struct tb_producer_driver *d, size_t len)
{
	memmove(d->in, d->in + len, d->in_len - len);
	d->in_len -= len;
}

static void complete(struct tb_producer_driver *d, struct pending *p, bool ok, const char *why)
{
	if (!p->used)
		return;
	p->used = false;
	d->in_flight--;
	if (d->ack)
		d->ack(d->ctx, p->intended_ns, p->bytes, ok, why);
}

/* ---- redis ---- */

/* Parses whole replies: $len bulk (the entry id), +simple, :integer, -error. */
static void redis_parse(struct tb_producer_driver *d)
{
	size_t at = 0;
	while (at < d->in_len) {
		char *start = d->in + at;
		char *crlf = memmem(start, d->in_len - at, "\r\n", 2);
		if (!crlf)
			break;
		size_t line = (size_t)(crlf - start) + 2;
		size_t total = line;
		if (start[0] == '$') {
			long len = strtol(start + 1, NULL, 10);
			if (len >= 0)
				total += (size_t)len + 2;
			if (at + total > d->in_len)
				break;
		}
		if (d->head == d->seq) {
			driver_fail(d, "redis: a reply with no command in flight");
			return;
		}
		struct pending *p = &d->pend[d->head % d->cap];
		d->head++;
		if (start[0] == '-') {
			char why[256];
			snprintf(why, sizeof(why), "redis: %.*s", (int)(line - 2), start + 1);
			complete(d, p, false, why);
		} else {
			complete(d, p, start[0] != '*', "redis: unexpected reply");
		}
		at += total;
	}
	in_consume(d, at);
}

static void redis_append_xadd(struct tb_producer_driver *d, const struct tb_send *s, int part)
{
	char stream[300];
	int slen = snprintf(stream, sizeof(stream), "%s-%d", d->topic, part);
	if (s->key) {
		out_printf(d, "*7\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\nk\r\n$%u\r\n",
			   slen, stream, s->key_len);
		out_put(d, s->key, s->key_len);
		out_put(d, "\r\n", 2);
	} else {
		out_printf(d, "*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n", slen, stream);
	}
	out_printf(d, "$1\r\nv\r\n$%u\r\n", s->value_len);
	out_put(d, s->value, s->value_len);
	out_put(d, "\r\n", 2);
}

/* ---- nats ---- */

/* The seq at the end of a reply subject "<inbox>.<seq>", or UINT64_MAX. */
static uint64_t nats_seq_of(const struct tb_producer_driver *d, const char *subject, size_t len)
{
	size_t inbox_len = strlen(d->inbox);
	if (len <= inbox_len + 1 || memcmp(subject, d->inbox, inbox_len) != 0 ||
	    subject[inbox_len] != '.')
		return UINT64_MAX;
	const char *p = subject + inbox_len + 1;
	if (len - inbox_len - 1 == 5 && memcmp(p, "setup", 5) == 0)
		return UINT64_MAX - 1;
	uint64_t seq = 0;
	for (; p < subject + len; p++) {
		if (*p < '0' || *p > '9')
			return UINT64_MAX;
		seq = seq * 10 + (uint64_t)(*p - '0');
	}
	return seq;
}

static void nats_reply(struct tb_producer_driver *d, uint64_t seq, const char *payload, size_t len,
		       bool status_only)
{
	if (seq == UINT64_MAX - 1) {
		free(d->setup_reply);
		d->setup_reply = strndup(payload, len);
		return;
	}
	if (seq == UINT64_MAX || seq >= d->seq)
		return;
	struct pending *p = &d->pend[seq % d->cap];
	if (status_only) {
		complete(d, p, false, "nats: no stream answers this subject (503)");
		return;
	}
	const char *error = memmem(payload, len, "\"error\"", 7);
	if (error) {
		char why[256];
		snprintf(why, sizeof(why), "nats: %.*s", (int)(len < 200 ? len : 200), payload);
		complete(d, p, false, why);
	} else {
		complete(d, p, true, NULL);
	}
}

/* One protocol line at @start (without CRLF, @line_len bytes). Returns the bytes the
 * whole message takes (line + CRLF + payload + CRLF), or 0 if it is not all here. */
static size_t nats_message(struct tb_producer_driver *d, char *start, size_t line_len, size_t avail)
{
	char line[LINE_MAX_BYTES];
	if (line_len >= sizeof(line)) {
		driver_fail(d, "nats: protocol line too long");
		return avail;
	}
	memcpy(line, start, line_len);
	line[line_len] = '\0';
	if (strncmp(line, "PING", 4) == 0) {
		out_printf(d, "PONG\r\n");
		return line_len + 2;
	}
	if (strncmp(line, "-ERR", 4) == 0) {
		char why[256];
		snprintf(why, sizeof(why), "nats: %.200s", line);
		driver_fail(d, why);
		return line_len + 2;
	}
	if (strncmp(line, "PONG", 4) == 0)
		d->pong = true;
	bool hmsg = strncmp(line, "HMSG ", 5) == 0;
	if (!hmsg && strncmp(line, "MSG ", 4) != 0)
		return line_len + 2; /* +OK, PONG, INFO */
	/* MSG <subject> <sid> [reply] <bytes> | HMSG <subject> <sid> [reply] <hdr> <total> */
	char *tok[6];
	int n = 0;
	for (char *t = strtok(line, " "); t && n < 6; t = strtok(NULL, " "))
		tok[n++] = t;
	if (n < 4) {
		driver_fail(d, "nats: bad MSG line");
		return avail;
	}
	size_t total = (size_t)strtoul(tok[n - 1], NULL, 10);
	size_t need = line_len + 2 + total + 2;
	if (need > avail)
		return 0;
	const char *payload = start + line_len + 2;
	size_t hdr = hmsg ? (size_t)strtoul(tok[n - 2], NULL, 10) : 0;
	bool status_only = hmsg && total <= hdr;
	if (hdr > total)
		hdr = total;
	nats_reply(d, nats_seq_of(d, tok[1], strlen(tok[1])), payload + hdr, total - hdr,
		   status_only);
	return need;
}

static void nats_parse(struct tb_producer_driver *d)
{
	size_t at = 0;
	while (at < d->in_len && !d->failed) {
		char *start = d->in + at;
		char *crlf = memmem(start, d->in_len - at, "\r\n", 2);
		if (!crlf)
			break;
		size_t used = nats_message(d, start, (size_t)(crlf - start), d->in_len - at);
		if (used == 0)
			break;
		at += used;
	}
	in_consume(d, at < d->in_len ? at : d->in_len);
}

static void parse_input(struct tb_producer_driver *d)
{
	if (d->nats)
		nats_parse(d);
	else
		redis_parse(d);
}

static void nats_append_pub(struct tb_producer_driver *d, const struct tb_send *s, int part,
			    uint64_t seq)
{
	char hdr[512];
	int hlen;
	if (s->key)
		hlen = snprintf(hdr, sizeof(hdr),
				"NATS/1.0\r\nNats-Msg-Id: %s-%llu\r\nTb-Key: %.*s\r\n\r\n",
				d->inbox, (unsigned long long)seq, (int)s->key_len,
				(const char *)s->key);
	else
		hlen = snprintf(hdr, sizeof(hdr), "NATS/1.0\r\nNats-Msg-Id: %s-%llu\r\n\r\n",
				d->inbox, (unsigned long long)seq);
	out_printf(d, "HPUB %s.%d %s.%llu %d %llu\r\n", d->topic, part, d->inbox,
		   (unsigned long long)seq, hlen, (unsigned long long)hlen + s->value_len);
	out_put(d, hdr, (size_t)hlen);
	out_put(d, s->value, s->value_len);
	out_put(d, "\r\n", 2);
}

/* Reads the INFO line, sends CONNECT and a PING, waits for the PONG, subscribes to the
 * inbox. */
static int nats_handshake(struct tb_producer_driver *d, char *err, size_t err_size)
{
	out_printf(d, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,"
		      "\"no_responders\":true,\"name\":\"tally-bench\",\"lang\":\"c\","
		      "\"version\":\"1\",\"protocol\":1}\r\nPING\r\n");
	int64_t deadline = tb_now_ns() + SETUP_TIMEOUT_MS * TB_NS_PER_MS;
	while (!d->pong && !d->failed && tb_now_ns() < deadline)
		pump(d, 100);
	if (!d->pong) {
		snprintf(err, err_size, "nats: no PONG after CONNECT: %s",
			 d->failed ? d->error : "timed out");
		return -1;
	}
	out_printf(d, "SUB %s.* 1\r\n", d->inbox);
	return 0;
}

/* Sends a request on @subject with @body and waits for its reply (set-up only). */
static int nats_request(struct tb_producer_driver *d, const char *subject, const char *body,
			char *err, size_t err_size)
{
	free(d->setup_reply);
	d->setup_reply = NULL;
	out_printf(d, "PUB %s %s.setup %zu\r\n%s\r\n", subject, d->inbox, strlen(body), body);
	int64_t deadline = tb_now_ns() + SETUP_TIMEOUT_MS * TB_NS_PER_MS;
	while (!d->setup_reply && !d->failed && tb_now_ns() < deadline)
		pump(d, 100);
	if (!d->setup_reply) {
		snprintf(err, err_size,
			 "nats: no reply on %s: %s (is JetStream on? nats-server -js)", subject,
			 d->failed ? d->error : "timed out");
		return -1;
	}
	return 0;
}

/* ---- the driver ---- */

static int peer_open(const struct tb_opts *o, const struct tb_target *t, int index, tb_ack_fn ack,
		     void *ctx, struct tb_producer_driver **out, char *err, size_t err_size)
{
	struct tb_producer_driver *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	d->nats = o->system == TB_SYSTEM_NATS;
	d->o = o;
	d->ack = ack;
	d->ctx = ctx;
	d->cap = d->nats ? 2 * o->window : o->window;
	d->pend = calloc(d->cap, sizeof(*d->pend));
	tb_strlcpy(d->topic, sizeof(d->topic), t->topic);
	snprintf(d->inbox, sizeof(d->inbox), "_INBOX.tb%d.%d.%lld", (int)getpid(), index,
		 (long long)(tb_now_ns() % 1000000007));
	d->fd = d->pend ? tcp_connect(t->bootstrap, err, err_size) : -1;
	if (d->fd == -1 || (d->nats && nats_handshake(d, err, err_size) != 0)) {
		if (!d->pend)
			snprintf(err, err_size, "out of memory");
		if (d->fd != -1)
			close(d->fd);
		free(d->pend);
		free(d->out);
		free(d->in);
		free(d);
		return -1;
	}
	*out = d;
	return 0;
}

static int pick_partition(struct tb_producer_driver *d, const struct tb_send *s)
{
	int parts = d->o->partitions;
	if (s->partition >= 0)
		return s->partition % parts;
	if (s->key) {
		uint32_t h = 2166136261u;
		for (uint32_t i = 0; i < s->key_len; i++)
			h = (h ^ ((const uint8_t *)s->key)[i]) * 16777619u;
		return (int)(h % (uint32_t)parts);
	}
	return (int)((d->sticky++ / STICKY_RECORDS) % (uint64_t)parts);
}

static int peer_send(struct tb_producer_driver *d, const struct tb_send *s, char *err,
		     size_t err_size)
{
	while (!d->failed && (d->in_flight >= d->o->window || d->pend[d->seq % d->cap].used))
		pump(d, -1);
	if (d->failed) {
		tb_strlcpy(err, err_size, d->error);
		return -1;
	}
	if (!out_reserve(d, (size_t)s->value_len + s->key_len + 1024)) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	int part = pick_partition(d, s);
	uint64_t seq = d->seq;
	if (d->nats)
		nats_append_pub(d, s, part, seq);
	else
		redis_append_xadd(d, s, part);
	struct pending *p = &d->pend[seq % d->cap];
	p->intended_ns = s->intended_ns;
	p->bytes = s->key_len + s->value_len;
	p->used = true;
	d->seq++;
	d->in_flight++;
	pump(d, 0);
	return 0;
}

static void peer_poll(struct tb_producer_driver *d, int timeout_ms)
{
	pump(d, d->out_off < d->out_len || d->in_flight > 0 ? timeout_ms : 0);
	if (timeout_ms > 0 && d->in_flight == 0 && d->out_off == d->out_len)
		usleep((useconds_t)timeout_ms * 1000);
}

static int peer_flush(struct tb_producer_driver *d, int timeout_ms, char *err, size_t err_size)
{
	int64_t deadline = tb_now_ns() + timeout_ms * TB_NS_PER_MS;
	while (!d->failed && d->in_flight > 0 && tb_now_ns() < deadline)
		pump(d, 100);
	if (d->failed || d->in_flight > 0) {
		snprintf(err, err_size, "%s: %llu records unanswered",
			 d->failed ? d->error : "flush timed out",
			 (unsigned long long)d->in_flight);
		return -1;
	}
	return 0;
}

static void peer_close(struct tb_producer_driver *d)
{
	for (uint32_t i = 0; i < d->cap; i++)
		complete(d, &d->pend[i], false, "connection closed");
	close(d->fd);
	free(d->pend);
	free(d->out);
	free(d->in);
	free(d->setup_reply);
	free(d);
}

static int redis_prepare(const struct tb_opts *o, const struct tb_target *t, char *err,
			 size_t err_size)
{
	/* DEL the streams so a run starts empty; replies are checked by the FIFO. */
	int fd = tcp_connect(t->bootstrap, err, err_size);
	if (fd == -1)
		return -1;
	char cmd[512];
	char reply[256];
	for (int p = 0; p < o->partitions; p++) {
		char stream[300];
		int slen = snprintf(stream, sizeof(stream), "%s-%d", t->topic, p);
		int n = snprintf(cmd, sizeof(cmd), "*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n", slen,
				 stream);
		if (write(fd, cmd, (size_t)n) != n || read(fd, reply, sizeof(reply)) <= 0 ||
		    reply[0] != ':') {
			snprintf(err, err_size, "redis at %s does not answer DEL", t->bootstrap);
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

static int nats_prepare(const struct tb_opts *o, const struct tb_target *t, char *err,
			size_t err_size)
{
	(void)o;
	struct tb_producer_driver *d;
	if (peer_open(o, t, 999, NULL, NULL, &d, err, err_size) != 0)
		return -1;
	char subject[300], body[1024];
	snprintf(subject, sizeof(subject), "$JS.API.STREAM.DELETE.%s", t->topic);
	int rc = nats_request(d, subject, "", err, err_size);
	if (rc == 0) {
		snprintf(subject, sizeof(subject), "$JS.API.STREAM.CREATE.%s", t->topic);
		snprintf(body, sizeof(body),
			 "{\"name\":\"%s\",\"subjects\":[\"%s.>\"],\"storage\":\"file\","
			 "\"retention\":\"limits\",\"discard\":\"old\",\"num_replicas\":1,"
			 "\"duplicate_window\":120000000000}",
			 t->topic, t->topic);
		rc = nats_request(d, subject, body, err, err_size);
	}
	if (rc == 0 && strstr(d->setup_reply, "\"error\"")) {
		snprintf(err, err_size, "nats: stream create: %.300s", d->setup_reply);
		rc = -1;
	}
	peer_close(d);
	return rc;
}

static int no_txn(struct tb_producer_driver *d, bool begin_next, char *err, size_t err_size)
{
	(void)d;
	(void)begin_next;
	snprintf(err, err_size, "--transactions is for tally only");
	return -1;
}

static int no_consumer(const struct tb_opts *o, const struct tb_target *t, int index,
		       struct tb_consumer_driver **out, char *err, size_t err_size)
{
	(void)o;
	(void)t;
	(void)index;
	(void)out;
	snprintf(err, err_size, "consumers are for tally only");
	return -1;
}

const struct tb_driver_ops tb_driver_redis = {
	.producer_open = peer_open,
	.send = peer_send,
	.poll = peer_poll,
	.flush = peer_flush,
	.txn_commit = no_txn,
	.producer_close = peer_close,
	.consumer_open = no_consumer,
	.prepare = redis_prepare,
};

const struct tb_driver_ops tb_driver_nats = {
	.producer_open = peer_open,
	.send = peer_send,
	.poll = peer_poll,
	.flush = peer_flush,
	.txn_commit = no_txn,
	.producer_close = peer_close,
	.consumer_open = no_consumer,
	.prepare = nats_prepare,
};
