/* metrics.c - the metrics listener (/metrics, /health) and what it renders.
 * (1) Everything runs on the broker's loop: a scrape reads counters the loop itself
 *     writes, so there is nothing to lock, and the snapshot is consistent.
 * (2) A connection slot is free iff its fd is -1. Its buffers keep their memory across
 *     scrapes, so a steady scrape costs no allocation once the body has been seen.
 * (3) One request per connection; the answer is written without blocking (EPOLLOUT for
 *     the rest), then the socket is shut for writing and read to EOF before it closes
 *     (a lingering close, as nginx does: closing with unread bytes would send a reset
 *     that can destroy the answer before the client reads it). The request must arrive
 *     within TL_METRICS_HTTP_IDLE_MS of the accept (a silent or trickling client frees
 *     its slot); the answer, and the drain after it, may take longer as long as no
 *     TL_METRICS_HTTP_IDLE_MS passes without a byte written (a slow reader of a large
 *     body is not cut while it progresses). A head over TL_METRICS_HTTP_HEAD_MAX bytes, or
 *     one that does not parse, is answered 400: the broker's Kafka side never notices. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

struct http_conn {
	int fd;            /* -1: the slot is free */
	int64_t opened_ms; /* accepted: the whole request must arrive within the limit */
	int64_t active_ms; /* last wrote a byte of the answer */
	uint32_t in_len;
	char in[TL_METRICS_HTTP_HEAD_MAX];
	char head[256]; /* status line and headers of the answer */
	size_t head_len;
	struct tl_buf body;
	size_t sent; /* bytes of head + body written */
	bool answering;
	bool draining; /* answered and shut for writing: reading to the peer's EOF */
};

struct tl_metrics_server {
	int listen_fd;
	bool listen_paused; /* every slot taken: the listener is out of epoll's interest */
	uint64_t source_base;
	struct http_conn conns[TL_METRICS_HTTP_CONNS];
	struct tl_hist sync_us; /* the log dir's histograms, merged from its logs at scrape */
	struct tl_hist write_us;
};

/* ---- listener ---- */

/* "http://host:port", "host:port" or ":port". */
static tl_err listener_parse(const char *spec, char *host, size_t host_size, int *port)
{
	const char *p = spec;
	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	const char *colon = strrchr(p, ':');
	if (!colon || (size_t)(colon - p) >= host_size)
		return TL_ERR_INVALID;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	char *end;
	long v = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || (*end != '\0' && strcmp(end, "/") != 0) || v < 0 || v > 65535)
		return TL_ERR_INVALID;
	*port = (int)v;
	return TL_OK;
}

static tl_err listener_open(struct tl_metrics_server *server, const char *spec)
{
	char host[256];
	int port;
	if (listener_parse(spec, host, sizeof(host), &port) != TL_OK) {
		tl_crit("metrics: cannot parse metrics.listener value=\"%s\"; want "
			"http://host:port",
			spec);
		return TL_ERR_INVALID;
	}
	int fd;
	struct sockaddr_in addr;
	tl_err err = tl_tcp_listen(host, port, 64, &fd, &addr);
	if (err == TL_ERR_INVALID) {
		tl_crit("metrics: cannot resolve metrics.listener host=%s", host);
		return err;
	}
	if (err != TL_OK) {
		tl_crit("metrics: cannot listen metrics.listener=%s err=%s", spec,
			strerrorname_np(errno));
		return err;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
	tl_info("metrics: listening on http://%s:%d", ip, ntohs(addr.sin_port));
	server->listen_fd = fd;
	return TL_OK;
}

tl_err tl_metrics_start(struct tl_broker *broker, uint64_t source_base)
{
	if (!broker->config.metrics_listener[0])
		return TL_OK; /* nobody can read the counts: do not count (metrics_on) */
	broker->metrics_on = true;
	tl_proto_error_counts = broker->metrics.errors; /* the response encoders count */
	struct tl_metrics_server *server = calloc(1, sizeof(*server));
	if (!server)
		return TL_ERR_NOMEM;
	server->source_base = source_base;
	server->listen_fd = -1;
	for (uint32_t i = 0; i < TL_METRICS_HTTP_CONNS; i++) {
		server->conns[i].fd = -1;
		tl_buf_init(&server->conns[i].body);
	}
	broker->metrics_server = server;
	tl_err err = listener_open(server, broker->config.metrics_listener);
	if (err != TL_OK)
		return err;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = source_base};
	if (epoll_ctl(broker->epoll_fd, EPOLL_CTL_ADD, server->listen_fd, &ev) == -1) {
		tl_crit("metrics: epoll_ctl failed err=%s", strerrorname_np(errno));
		return TL_ERR_IO;
	}
	return TL_OK;
}

/* Stops (@on false) or resumes watching the listener. While every slot is taken the
 * backlog must not wake the loop on every turn (epoll is level-triggered). */
static void listener_watch(struct tl_broker *broker, struct tl_metrics_server *server, bool on)
{
	if (server->listen_paused == !on)
		return;
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.u64 = server->source_base};
	epoll_ctl(broker->epoll_fd, EPOLL_CTL_MOD, server->listen_fd, &ev);
	server->listen_paused = !on;
}

static void http_close(struct tl_broker *broker, struct http_conn *hc)
{
	if (hc->fd == -1)
		return;
	epoll_ctl(broker->epoll_fd, EPOLL_CTL_DEL, hc->fd, NULL);
	close(hc->fd);
	hc->fd = -1;
	tl_buf_reset(&hc->body);
	listener_watch(broker, broker->metrics_server, true);
}

void tl_metrics_stop(struct tl_broker *broker)
{
	if (tl_proto_error_counts == broker->metrics.errors)
		tl_proto_error_counts = NULL;
	struct tl_metrics_server *server = broker->metrics_server;
	if (!server)
		return;
	for (uint32_t i = 0; i < TL_METRICS_HTTP_CONNS; i++) {
		http_close(broker, &server->conns[i]);
		tl_buf_deinit(&server->conns[i].body);
	}
	if (server->listen_fd != -1)
		close(server->listen_fd);
	free(server);
	broker->metrics_server = NULL;
}

void tl_metrics_tick(struct tl_broker *broker, int64_t now_ms)
{
	struct tl_metrics_server *server = broker->metrics_server;
	if (!server)
		return;
	for (uint32_t i = 0; i < TL_METRICS_HTTP_CONNS; i++) {
		struct http_conn *hc = &server->conns[i];
		int64_t since = hc->answering || hc->draining ? hc->active_ms : hc->opened_ms;
		if (hc->fd != -1 && now_ms - since > TL_METRICS_HTTP_IDLE_MS) {
			tl_debug("metrics: connection timed out, closing slot=%u", i);
			http_close(broker, hc);
		}
	}
}

static void http_accept(struct tl_broker *broker, struct tl_metrics_server *server)
{
	for (;;) {
		uint32_t slot = 0;
		while (slot < TL_METRICS_HTTP_CONNS && server->conns[slot].fd != -1)
			slot++;
		if (slot == TL_METRICS_HTTP_CONNS) {
			/* The rest wait in the backlog until a slot frees. */
			listener_watch(broker, server, false);
			return;
		}
		int fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				tl_warn("metrics: accept failed err=%s", strerrorname_np(errno));
			return;
		}
		struct http_conn *hc = &server->conns[slot];
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
					 .data.u64 = server->source_base + 1 + slot};
		if (epoll_ctl(broker->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			return;
		}
		hc->fd = fd;
		hc->opened_ms = tl_mono_ms();
		hc->in_len = 0;
		hc->sent = 0;
		hc->answering = false;
		hc->draining = false;
		tl_buf_reset(&hc->body);
	}
}

/* ---- answering ---- */

static void http_set_events(struct tl_broker *broker, struct http_conn *hc, uint32_t events)
{
	struct tl_metrics_server *server = broker->metrics_server;
	struct epoll_event ev = {.events = events,
				 .data.u64 =
					 server->source_base + 1 + (uint64_t)(hc - server->conns)};
	epoll_ctl(broker->epoll_fd, EPOLL_CTL_MOD, hc->fd, &ev);
}

/* Reads and drops what the peer still sends; closes at its EOF or on an error. */
static void http_drain(struct tl_broker *broker, struct http_conn *hc)
{
	for (;;) {
		ssize_t n = recv(hc->fd, hc->in, sizeof(hc->in), 0);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		http_close(broker, hc);
		return;
	}
}

static void http_write(struct tl_broker *broker, struct http_conn *hc)
{
	size_t total = hc->head_len + hc->body.len;
	while (hc->sent < total) {
		struct iovec iov[2];
		int count = 0;
		if (hc->sent < hc->head_len) {
			iov[count].iov_base = hc->head + hc->sent;
			iov[count++].iov_len = hc->head_len - hc->sent;
		}
		size_t body_from = hc->sent > hc->head_len ? hc->sent - hc->head_len : 0;
		if (body_from < hc->body.len) {
			iov[count].iov_base = hc->body.data + body_from;
			iov[count++].iov_len = hc->body.len - body_from;
		}
		ssize_t n = writev(hc->fd, iov, count);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				http_set_events(broker, hc, EPOLLOUT);
				return;
			}
			http_close(broker, hc);
			return;
		}
		hc->sent += (size_t)n;
		hc->active_ms = tl_mono_ms();
	}
	hc->answering = false;
	hc->draining = true;
	shutdown(hc->fd, SHUT_WR);
	http_set_events(broker, hc, EPOLLIN | EPOLLRDHUP);
	http_drain(broker, hc);
}

static void http_answer(struct tl_broker *broker, struct http_conn *hc, int status,
			const char *reason, const char *content_type)
{
	if (hc->body.failed) {
		tl_buf_reset(&hc->body);
		status = 500;
		reason = "Internal Server Error";
	}
	int n = snprintf(hc->head, sizeof(hc->head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, reason, content_type, hc->body.len);
	TL_ASSERT(n > 0 && (size_t)n < sizeof(hc->head));
	hc->head_len = (size_t)n;
	hc->sent = 0;
	hc->answering = true;
	hc->active_ms = tl_mono_ms();
	http_write(broker, hc);
}

static void http_plain(struct tl_broker *broker, struct http_conn *hc, int status,
		       const char *reason, const char *text)
{
	tl_buf_reset(&hc->body);
	tl_buf_put(&hc->body, text, strlen(text));
	http_answer(broker, hc, status, reason, "text/plain; charset=utf-8");
}

/* The request head is whole in hc->in (NUL-terminated): route it. */
static void http_route(struct tl_broker *broker, struct http_conn *hc)
{
	char method[8], path[128], version[16];
	char extra;
	char *eol = strpbrk(hc->in, "\r\n");
	if (eol)
		*eol = '\0';
	if (sscanf(hc->in, "%7s %127s %15s %c", method, path, version, &extra) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 || path[0] != '/') {
		broker->metrics.http_bad_requests++;
		http_plain(broker, hc, 400, "Bad Request", "bad request\n");
		return;
	}
	bool head_only = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !head_only) {
		http_plain(broker, hc, 405, "Method Not Allowed", "only GET\n");
		return;
	}
	char *query = strchr(path, '?');
	if (query)
		*query = '\0';
	if (strcmp(path, "/metrics") == 0) {
		broker->metrics.scrapes++;
		tl_buf_reset(&hc->body);
		tl_metrics_render(broker, &hc->body);
		http_answer(broker, hc, 200, "OK", "text/plain; version=0.0.4; charset=utf-8");
	} else if (strcmp(path, "/health") == 0) {
		char why[256], text[300];
		bool ok = tl_metrics_healthy(broker, why, sizeof(why));
		snprintf(text, sizeof(text), "%s\n", ok ? "status=ok" : why);
		http_plain(broker, hc, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", text);
	} else {
		http_plain(broker, hc, 404, "Not Found", "not found: try /metrics or /health\n");
	}
	(void)head_only; /* HEAD gets the body too: no client of ours sends it */
}

static void http_read(struct tl_broker *broker, struct http_conn *hc)
{
	for (;;) {
		size_t room = sizeof(hc->in) - 1 - hc->in_len;
		if (room == 0) {
			broker->metrics.http_bad_requests++;
			tl_warn("metrics: request head too large, answering 400 max_bytes=%d",
				TL_METRICS_HTTP_HEAD_MAX);
			http_plain(broker, hc, 400, "Bad Request", "request head too large\n");
			return;
		}
		ssize_t n = recv(hc->fd, hc->in + hc->in_len, room, 0);
		if (n == 0) {
			http_close(broker, hc);
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				http_close(broker, hc);
			return;
		}
		hc->in_len += (uint32_t)n;
		hc->in[hc->in_len] = '\0';
		if (memchr(hc->in, '\0', hc->in_len)) {
			broker->metrics.http_bad_requests++;
			http_plain(broker, hc, 400, "Bad Request", "bad request\n");
			return;
		}
		if (strstr(hc->in, "\r\n\r\n") || strstr(hc->in, "\n\n")) {
			http_route(broker, hc);
			return;
		}
	}
}

void tl_metrics_on_event(struct tl_broker *broker, uint32_t index, uint32_t events)
{
	struct tl_metrics_server *server = broker->metrics_server;
	TL_ASSERT(server);
	if (index == 0) {
		http_accept(broker, server);
		return;
	}
	TL_ASSERT(index <= TL_METRICS_HTTP_CONNS);
	struct http_conn *hc = &server->conns[index - 1];
	if (hc->fd == -1)
		return; /* closed earlier in this epoll batch */
	if (hc->draining)
		http_drain(broker, hc);
	else if (hc->answering)
		http_write(broker, hc);
	else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		http_read(broker, hc);
}

/* ---- rendering ---- */

/* A per-topic counter family: one sample per topic (internal ones included). */
static void render_topic_counter(struct tl_broker *broker, struct tl_buf *out, const char *name,
				 const char *help, size_t field)
{
	tl_prom_family(out, name, "counter", help);
	for (struct tl_topic *t = tl_topic_next(broker, NULL); t; t = tl_topic_next(broker, t)) {
		char labels[600] = "";
		tl_prom_label(labels, sizeof(labels), "topic", t->name);
		uint64_t value;
		memcpy(&value, (const char *)&t->metrics + field, sizeof(value));
		tl_prom_u64(out, name, labels, value);
	}
}

#define TOPIC_COUNTER(name, field, help)                                                           \
	render_topic_counter(broker, out, name, help, offsetof(struct tl_topic_metrics, field))

static void render_topics(struct tl_broker *broker, struct tl_buf *out)
{
	TOPIC_COUNTER("tally_broker_topic_messages_in_total", messages_in,
		      "Records appended by produce requests (Kafka MessagesInPerSec).");
	TOPIC_COUNTER("tally_broker_topic_bytes_in_total", bytes_in,
		      "Record batch bytes appended by produce requests (Kafka BytesInPerSec).");
	TOPIC_COUNTER("tally_broker_topic_bytes_out_total", bytes_out,
		      "Record bytes sent to consumers (Kafka BytesOutPerSec).");
	TOPIC_COUNTER("tally_broker_topic_messages_out_total", messages_out,
		      "Offsets of the record batches sent to consumers, from the offset each "
		      "fetch asked for (records, and transaction markers).");
	TOPIC_COUNTER("tally_broker_topic_replication_bytes_out_total", replication_bytes_out,
		      "Record bytes sent to follower brokers (Kafka ReplicationBytesOutPerSec).");
	TOPIC_COUNTER("tally_broker_topic_replication_bytes_in_total", replication_bytes_in,
		      "Record batch bytes this broker appended as a follower, fetched from the "
		      "leader (Kafka ReplicationBytesInPerSec).");
	TOPIC_COUNTER(
		"tally_broker_topic_bytes_rejected_total", bytes_rejected,
		"Produced bytes refused as invalid or too large (Kafka BytesRejectedPerSec).");
	TOPIC_COUNTER("tally_broker_topic_produce_requests_total", produce_requests,
		      "Partitions named in produce requests (Kafka TotalProduceRequestsPerSec).");
	TOPIC_COUNTER("tally_broker_topic_failed_produce_requests_total", failed_produce_requests,
		      "Produce partitions answered with an error (Kafka "
		      "FailedProduceRequestsPerSec).");
	TOPIC_COUNTER("tally_broker_topic_fetch_requests_total", fetch_requests,
		      "Partitions in answered fetch requests (Kafka TotalFetchRequestsPerSec).");
	TOPIC_COUNTER("tally_broker_topic_failed_fetch_requests_total", failed_fetch_requests,
		      "Fetch partitions answered with an error (Kafka FailedFetchRequestsPerSec).");
}

struct partition_counts {
	int64_t partitions; /* with a local log */
	int64_t leaders;
	int64_t under_replicated;
	int64_t under_min_isr;
	int64_t offline;
	int64_t log_bytes;
	struct tl_log_cache_stats cache;     /* summed over the open logs */
	struct tl_log_cleaner_stats cleaner; /* the same; running: passes in flight */
	int64_t cleaners_running;
};

static void count_partitions(struct tl_broker *broker, struct tl_metrics_server *server,
			     struct partition_counts *c)
{
	memset(c, 0, sizeof(*c));
	memset(&server->sync_us, 0, sizeof(server->sync_us));
	memset(&server->write_us, 0, sizeof(server->write_us));
	for (struct tl_topic *t = tl_topic_next(broker, NULL); t; t = tl_topic_next(broker, t)) {
		for (int32_t i = 0; i < t->partition_count; i++) {
			struct tl_partition *p = &t->partitions[i];
			if (t->cluster && p->has_state && p->state.leader == -1)
				c->offline++;
			if (!p->log)
				continue;
			c->partitions++;
			c->log_bytes += tl_log_size_bytes(p->log);
			struct tl_log_cache_stats cs;
			tl_log_cache_stats(p->log, &cs);
			c->cache.hits += cs.hits;
			c->cache.misses += cs.misses;
			c->cache.hit_bytes += cs.hit_bytes;
			c->cache.direct_reads += cs.direct_reads;
			c->cache.direct_read_bytes += cs.direct_read_bytes;
			c->cache.bytes += cs.bytes;
			struct tl_log_cleaner_stats ls;
			tl_log_cleaner_stats(p->log, &ls);
			c->cleaner.passes += ls.passes;
			c->cleaner.segments_cleaned += ls.segments_cleaned;
			c->cleaner.bytes_read += ls.bytes_read;
			c->cleaner.bytes_written += ls.bytes_written;
			c->cleaner.records_read += ls.records_read;
			c->cleaner.records_kept += ls.records_kept;
			c->cleaner.markers_removed += ls.markers_removed;
			c->cleaner.horizons_set += ls.horizons_set;
			c->cleaner.duration_ms += ls.duration_ms;
			c->cleaners_running += ls.running;
			tl_hist_merge(&server->sync_us, tl_log_sync_hist(p->log));
			tl_hist_merge(&server->write_us, tl_log_write_hist(p->log));
			if (!tl_log_is_writable(p->log)) {
				c->offline++;
				continue;
			}
			if (!t->cluster) {
				c->leaders++;
				continue;
			}
			if (p->role != TL_REPLICA_LEADER)
				continue;
			c->leaders++;
			if (p->state.isr_count < p->replica_count)
				c->under_replicated++;
			if (!tl_replica_has_min_isr(p))
				c->under_min_isr++;
		}
	}
}

static void gauge(struct tl_buf *out, const char *name, const char *help, double value)
{
	tl_prom_family(out, name, "gauge", help);
	tl_prom_f64(out, name, NULL, value);
}

static void counter(struct tl_buf *out, const char *name, const char *help, uint64_t value)
{
	tl_prom_family(out, name, "counter", help);
	tl_prom_u64(out, name, NULL, value);
}

static void render_partitions(struct tl_broker *broker, struct tl_buf *out)
{
	struct tl_metrics_server *server = broker->metrics_server;
	struct partition_counts c;
	count_partitions(broker, server, &c);
	gauge(out, "tally_replica_partitions", "Partitions with a log on this broker.",
	      (double)c.partitions);
	gauge(out, "tally_replica_leader_count",
	      "Partitions this broker leads (Kafka LeaderCount).", (double)c.leaders);
	gauge(out, "tally_replica_under_replicated_partitions",
	      "Led partitions whose ISR is smaller than their replica set (Kafka "
	      "UnderReplicatedPartitions).",
	      (double)c.under_replicated);
	gauge(out, "tally_replica_under_min_isr_partitions",
	      "Led partitions whose ISR is below min.insync.replicas (Kafka "
	      "UnderMinIsrPartitionCount).",
	      (double)c.under_min_isr);
	gauge(out, "tally_replica_offline_partitions",
	      "Partitions with no leader, or whose local log failed a write or fdatasync (Kafka "
	      "OfflinePartitionsCount).",
	      (double)c.offline);
	gauge(out, "tally_log_size_bytes",
	      "Bytes of the partition logs on this broker (Kafka Size).", (double)c.log_bytes);
	counter(out, "tally_log_cache_hits_total",
		"Fetch reads served from the logs' read cache (log.cache.bytes), summed over the "
		"open logs.",
		c.cache.hits);
	counter(out, "tally_log_cache_misses_total",
		"Fetch reads of a cached (direct I/O) log that went to the file, summed over the "
		"open logs.",
		c.cache.misses);
	counter(out, "tally_log_cache_hit_bytes_total",
		"Bytes sent from the logs' read cache, summed over the open logs.",
		c.cache.hit_bytes);
	gauge(out, "tally_log_cache_bytes", "Bytes held in the logs' read caches.",
	      (double)c.cache.bytes);
	counter(out, "tally_log_direct_reads_total",
		"Fetch reads of a direct I/O log that missed the read cache and were read with "
		"O_DIRECT into memory, summed over the open logs.",
		c.cache.direct_reads);
	counter(out, "tally_log_direct_read_bytes_total",
		"Bytes sent from such O_DIRECT reads, summed over the open logs.",
		c.cache.direct_read_bytes);
	counter(out, "tally_log_cleaner_passes_total",
		"Compaction passes swapped in, summed over the open logs.", c.cleaner.passes);
	counter(out, "tally_log_cleaner_segments_cleaned_total",
		"Segments the passes wrote and swapped in.", (uint64_t)c.cleaner.segments_cleaned);
	counter(out, "tally_log_cleaner_read_bytes_total",
		"Bytes the compaction passes read (Kafka cleaner-recopy-percent: written / read).",
		(uint64_t)c.cleaner.bytes_read);
	counter(out, "tally_log_cleaner_written_bytes_total", "Bytes the compaction passes wrote.",
		(uint64_t)c.cleaner.bytes_written);
	counter(out, "tally_log_cleaner_records_removed_total",
		"Records the compaction passes removed (superseded, expired tombstones, aborted).",
		(uint64_t)(c.cleaner.records_read - c.cleaner.records_kept));
	counter(out, "tally_log_cleaner_markers_removed_total",
		"Transaction markers removed once their transaction was empty and their delete "
		"horizon passed.",
		(uint64_t)c.cleaner.markers_removed);
	counter(out, "tally_log_cleaner_delete_horizons_total",
		"Batches given a delete horizon (KIP-534): kept tombstones and empty "
		"transactions' markers, removed once it passes.",
		(uint64_t)c.cleaner.horizons_set);
	tl_prom_family(out, "tally_log_cleaner_seconds_total", "counter",
		       "Time the compaction passes took, in their threads.");
	tl_prom_f64(out, "tally_log_cleaner_seconds_total", NULL,
		    (double)c.cleaner.duration_ms / 1000.0);
	gauge(out, "tally_log_cleaner_running", "Compaction passes in flight.",
	      (double)c.cleaners_running);
	struct tl_ring_stats ring = {0};
	if (broker->ring)
		tl_ring_stats(broker->ring, &ring);
	counter(out, "tally_log_ring_writes_total",
		"Log write ops sent to the kernel by the broker's ring (resubmits of short "
		"writes included).",
		ring.writes);
	counter(out, "tally_log_ring_fixed_writes_total",
		"Of those, direct writes from registered buffers (io_uring WRITE_FIXED).",
		ring.fixed_writes);
	gauge(out, "tally_log_ring_fixed_buffer_bytes",
	      "Bytes of the logs' write stages registered with the ring (pinned).",
	      (double)ring.fixed_bytes);
	counter(out, "tally_replica_isr_shrinks_total",
		"ISR shrinks committed while this broker led the partition (Kafka "
		"IsrShrinksPerSec).",
		broker->metrics.isr_shrinks);
	counter(out, "tally_replica_isr_expands_total",
		"ISR expansions committed while this broker led the partition (Kafka "
		"IsrExpandsPerSec).",
		broker->metrics.isr_expands);
	char labels[TL_CONFIG_STR_MAX + 32] = "";
	tl_prom_label(labels, sizeof(labels), "log_dir", broker->data_dir);
	tl_prom_family(out, "tally_log_flush_time_seconds", "histogram",
		       "fdatasync rounds of the partition logs, per log dir (Kafka "
		       "LogFlushRateAndTimeMs).");
	tl_prom_hist(out, "tally_log_flush_time_seconds", labels, &server->sync_us, 1e-6, false, 4,
		     25);
	tl_prom_family(out, "tally_log_write_time_seconds", "histogram",
		       "Write rounds of the partition logs, submit to last completion, per log "
		       "dir.");
	tl_prom_hist(out, "tally_log_write_time_seconds", labels, &server->write_us, 1e-6, false, 4,
		     25);
}

/* One histogram family of Kafka's RequestMetrics, by API (@field of struct
 * tl_request_metrics); only APIs seen since start-up. */
static void render_request_hist(struct tl_broker *broker, struct tl_buf *out, const char *name,
				const char *help, size_t field)
{
	tl_prom_family(out, name, "histogram", help);
	for (int16_t key = 0; key < TL_BROKER_API_SLOTS; key++) {
		const struct tl_request_metrics *m = broker->request_metrics[key];
		if (!m)
			continue;
		const struct tl_api_info *info = tl_api_info(key);
		char labels[128] = "";
		tl_prom_label(labels, sizeof(labels), "request", info ? info->name : "Unknown");
		const struct tl_hist *hist = (const struct tl_hist *)((const char *)m + field);
		if (field == offsetof(struct tl_request_metrics, total)) {
			tl_prom_hist(out, name, labels, hist, 1e-6, false, 4, 25);
			continue;
		}
		/* A split family holds only its values of 1 us and more (conn.c,
		 * split_add_ns): every other request of this API counted 0. */
		TL_ASSERT(hist->count <= m->total.count);
		struct tl_hist *split = &broker->metrics_scratch_hist;
		*split = *hist;
		tl_hist_add_zeros(split, m->total.count - hist->count);
		tl_prom_hist(out, name, labels, split, 1e-6, false, 4, 25);
	}
}

#define REQUEST_HIST(name, field, help)                                                            \
	render_request_hist(broker, out, name, help, offsetof(struct tl_request_metrics, field))

static void render_requests(struct tl_broker *broker, struct tl_buf *out)
{
	counter(out, "tally_requests_total", "Requests received, all APIs.",
		broker->requests_total);
	counter(out, "tally_produce_timeouts_total",
		"Produce requests answered REQUEST_TIMED_OUT at their timeout_ms while waiting "
		"for the ISR.",
		broker->produce_timeouts);
	REQUEST_HIST("tally_request_total_time_seconds", total,
		     "Frame in to the response's last byte written, by API (Kafka RequestMetrics "
		     "TotalTimeMs).");
	REQUEST_HIST("tally_request_queue_time_seconds", queue,
		     "Frame in (the read that completed it) to its handler's start, waiting "
		     "behind the requests ahead of it or a paused connection included, by API "
		     "(Kafka RequestQueueTimeMs).");
	REQUEST_HIST("tally_request_local_time_seconds", local,
		     "Handler start to the response encoded, less the remote time: decoding, "
		     "the log, and one replica's own fdatasync, by API (Kafka LocalTimeMs).");
	REQUEST_HIST("tally_request_remote_time_seconds", remote,
		     "Waiting on others: a produce to a replicated partition for its ISR, a "
		     "fetch in its max_wait for data, by API (Kafka RemoteTimeMs).");
	REQUEST_HIST("tally_request_throttle_time_seconds", throttle,
		     "Quota throttle time applied to the request, by API (Kafka "
		     "ThrottleTimeMs).");
	REQUEST_HIST("tally_request_response_queue_time_seconds", response_queue,
		     "Response encoded (or its quota hold over) to its first write: its turn in "
		     "the connection's FIFO, by API (Kafka ResponseQueueTimeMs).");
	REQUEST_HIST("tally_request_response_send_time_seconds", response_send,
		     "First write of the response to its last byte written, by API (Kafka "
		     "ResponseSendTimeMs).");
	tl_prom_family(out, "tally_errors_total", "counter",
		       "Error codes sent in responses (every ErrorCode field: request, topic "
		       "and partition level), by Kafka error (Kafka ErrorsPerSec).");
	for (int16_t code = 1; code < TL_PROTO_ERROR_CODES; code++) {
		if (!broker->metrics.errors[code])
			continue;
		char labels[128] = "", num[8];
		snprintf(num, sizeof(num), "%d", code);
		tl_prom_label(labels, sizeof(labels), "error", tl_err_name((tl_err)code));
		tl_prom_label(labels, sizeof(labels), "code", num);
		tl_prom_u64(out, "tally_errors_total", labels, broker->metrics.errors[code]);
	}
	tl_prom_family(out, "tally_produce_batch_size_bytes", "histogram",
		       "Size of each record batch appended by a produce request.");
	tl_prom_hist(out, "tally_produce_batch_size_bytes", NULL,
		     &broker->metrics.produce_batch_bytes, 1, true, 6, 24);
}

struct lag_walk {
	struct tl_broker *broker;
	struct tl_buf *out;
	bool lag_pass; /* false: the group state pass */
	char group[256];
	char state[32];
	int64_t lag;
	bool open;
};

static void lag_flush(struct lag_walk *w)
{
	if (!w->open)
		return;
	char labels[600] = "";
	tl_prom_label(labels, sizeof(labels), "group", w->group);
	if (w->lag_pass) {
		tl_prom_u64(w->out, "tally_group_lag", labels, (uint64_t)w->lag);
	} else {
		tl_prom_label(labels, sizeof(labels), "state", w->state);
		tl_prom_u64(w->out, "tally_group_state", labels, 1);
	}
	w->open = false;
}

static void lag_visit(void *ctx, const char *group, const char *state, const char *topic,
		      int32_t partition, int64_t offset)
{
	struct lag_walk *w = ctx;
	if (!topic) {
		lag_flush(w);
		snprintf(w->group, sizeof(w->group), "%s", group);
		snprintf(w->state, sizeof(w->state), "%s", state);
		w->lag = 0;
		w->open = true;
		return;
	}
	struct tl_partition *p = tl_partition_find_any(w->broker, tl_str_of(topic), partition);
	if (!p || !p->log || offset < 0)
		return;
	int64_t hw = tl_log_high_watermark(p->log);
	if (hw > offset)
		w->lag += hw - offset;
}

static void render_groups(struct tl_broker *broker, struct tl_buf *out)
{
	gauge(out, "tally_group_count", "Consumer groups this broker coordinates.",
	      (double)tl_groups_count(broker->groups));
	struct lag_walk w = {.broker = broker, .out = out};
	tl_prom_family(out, "tally_group_state", "gauge",
		       "1 for each group this broker coordinates, labelled with its state.");
	tl_groups_each_offset(broker->groups, lag_visit, &w);
	lag_flush(&w);
	w.lag_pass = true;
	tl_prom_family(out, "tally_group_lag", "gauge",
		       "Records between a group's committed offsets and the high watermarks of "
		       "the partitions hosted here, summed over its partitions.");
	tl_groups_each_offset(broker->groups, lag_visit, &w);
	lag_flush(&w);
	tl_prom_family(out, "tally_txn_completed_total", "counter",
		       "Transactions this coordinator completed, by outcome.");
	tl_prom_u64(out, "tally_txn_completed_total", "outcome=\"commit\"",
		    broker->metrics.txn_committed);
	tl_prom_u64(out, "tally_txn_completed_total", "outcome=\"abort\"",
		    broker->metrics.txn_aborted);
}

static void render_process(struct tl_broker *broker, struct tl_buf *out)
{
	char labels[128] = "";
	tl_prom_label(labels, sizeof(labels), "version", TL_VERSION);
	tl_prom_family(out, "tally_build_info", "gauge", "Always 1; the version is a label.");
	tl_prom_u64(out, "tally_build_info", labels, 1);
	char why[256];
	gauge(out, "tally_up", "1 while /health would answer 200.",
	      tl_metrics_healthy(broker, why, sizeof(why)) ? 1 : 0);
	gauge(out, "tally_connections", "Open Kafka client connections.",
	      (double)broker->conn_count);
	counter(out, "tally_connections_refused_total",
		"Connections refused at max.connections, max.connections.per.ip or while stopping.",
		broker->connections_refused_total);
	counter(out, "tally_tls_handshakes_failed_total",
		"TLS handshakes that failed (bad certificate, not TLS, cut short) or timed out.",
		broker->tls_handshake_failed_total);
	counter(out, "tally_malformed_requests_total",
		"Malformed requests (each closed its connection).", broker->malformed_total);
	counter(out, "tally_authorization_denied_total",
		"Authorizations the ACLs denied (logged ones and rate-limited ones).",
		broker->authz.denied_total);
	counter(out, "tally_failed_authentication_total",
		"Failed SASL authentications (Kafka's failed-authentication-total).",
		broker->sasl_failed_total);
	counter(out, "tally_successful_authentication_total",
		"SASL logins of new connections (Kafka's successful-authentication-total).",
		broker->sasl_auth_total);
	counter(out, "tally_successful_reauthentication_total",
		"SASL re-authentications on live connections (KIP-368; Kafka's "
		"successful-reauthentication-total).",
		broker->sasl_reauth_total);
	counter(out, "tally_expired_connections_killed_total",
		"Connections closed at a request after their SASL session ended "
		"(connections.max.reauth.ms; Kafka's expired-connections-killed-count).",
		broker->sasl_expired_total);
	struct mallinfo2 mi = mallinfo2();
	gauge(out, "tally_memory_heap_bytes", "Heap bytes in use (malloc's arenas and mmaps).",
	      (double)(mi.uordblks + mi.hblkhd));
	gauge(out, "tally_io_queue_depth",
	      "Disk operations submitted to the ring (io_uring) and not yet completed.",
	      (double)tl_ring_pending(broker->ring));
	counter(out, "tally_metrics_scrapes_total", "Answers to /metrics, this one included.",
		broker->metrics.scrapes);
	counter(out, "tally_metrics_bad_requests_total",
		"Requests to the metrics listener answered 400.",
		broker->metrics.http_bad_requests);
}

void tl_metrics_render(struct tl_broker *broker, struct tl_buf *out)
{
	render_process(broker, out);
	render_topics(broker, out);
	render_partitions(broker, out);
	render_requests(broker, out);
	render_groups(broker, out);
}

bool tl_metrics_healthy(struct tl_broker *broker, char *why, size_t why_size)
{
	if (broker->stopping) {
		snprintf(why, why_size, "status=stopping");
		return false;
	}
	if (broker->cluster) {
		const struct tl_cluster_view *view = tl_cluster_view(broker->cluster);
		if (tl_cluster_is_shutting_down(broker->cluster)) {
			snprintf(why, why_size, "status=stopping reason=\"controlled shutdown\"");
			return false;
		}
		if (!view || !tl_cluster_find_broker(view, broker->config.node_id)) {
			snprintf(
				why, why_size,
				"status=unavailable reason=\"not registered in the cluster view\"");
			return false;
		}
	}
	int64_t failed = 0;
	for (struct tl_topic *t = tl_topic_next(broker, NULL); t; t = tl_topic_next(broker, t))
		for (int32_t i = 0; i < t->partition_count; i++)
			if (t->partitions[i].log && !tl_log_is_writable(t->partitions[i].log))
				failed++;
	if (failed) {
		snprintf(why, why_size,
			 "status=degraded reason=\"partition logs failed; restart to recover\" "
			 "failed_partitions=%lld",
			 (long long)failed);
		return false;
	}
	return true;
}
