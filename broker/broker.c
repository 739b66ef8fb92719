/* broker.c - tallyd's event loop.
 *
 * One thread runs one loop. Each turn:
 *   1. epoll_wait: sockets, the disk ring's completion fd, a signalfd; the timeout is
 *      the nearest fetch deadline or the next maintenance tick.
 *   2. Readable sockets are read and every whole request is handled at once; produce
 *      requests append to partition logs (offsets assigned, writes queued, not yet
 *      issued) and mark the partitions dirty.
 *   3. Disk completions are reaped: a finished fdatasync fires its log's waiters, which
 *      answer produce requests, and the high-watermark listener, which wakes fetches.
 *   4. End of turn - group commit: every dirty partition's log is flushed (one writev
 *      and one fdatasync for everything appended this turn), and the ring is submitted
 *      once for all of them.
 * So N producers writing to a partition in the same turn share one fdatasync, and the
 * loop never blocks on the disk unless io_uring is unavailable (the sync fallback).
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting, stop reading, flush and wait for every
 * queued write, send the answers, close the logs cleanly (fsync + clean-shutdown
 * marker), exit 0. */
#include "broker/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zstd.h>

#include "broker/group.h"
#include "broker/markers.h"
#include "broker/txn.h"
#include "broker/workers.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

#define SOURCE_SASL      1u /* the PLAIN login threads have results */
#define SOURCE_RING      2u
#define SOURCE_SIGNAL    3u
#define SOURCE_CLUSTER   4u /* the metadata thread published a view or results */
#define SOURCE_FETCHERS  5u /* the replica fetchers' own epoll set */
#define SOURCE_MARKERS   6u /* the txn marker sender thread has results */
#define SOURCE_METRICS   7u /* metrics.listener, then its connection slots */
#define SOURCE_LISTENERS (SOURCE_METRICS + TL_METRICS_HTTP_CONNS + 1) /* one per listener */
#define SOURCE_LAST      (SOURCE_LISTENERS + TL_CONFIG_LISTENERS_MAX - 1)
#define TICK_MS          1000
#define EPOLL_EVENTS     256

/* An epoll event's data is one of the SOURCE_ tags or a struct tl_conn pointer. */
static bool is_connection(uint64_t source)
{
	return source > SOURCE_LAST;
}

void tl_broker_mark_dirty(struct tl_broker *broker, struct tl_partition *partition)
{
	if (partition->dirty)
		return;
	if (broker->dirty_count == broker->dirty_cap) {
		int32_t cap = broker->dirty_cap ? broker->dirty_cap * 2 : 64;
		struct tl_partition **dirty = realloc(broker->dirty, (size_t)cap * sizeof(*dirty));
		if (!dirty) {
			/* Flush now rather than lose track of the partition. */
			tl_log_flush(partition->log);
			return;
		}
		broker->dirty = dirty;
		broker->dirty_cap = cap;
	}
	partition->dirty = true;
	broker->dirty[broker->dirty_count++] = partition;
}

double tl_broker_random(struct tl_broker *broker)
{
	uint64_t x = broker->random_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	broker->random_state = x;
	return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / (double)(1ull << 53);
}

static void broker_group_commit(struct tl_broker *broker)
{
	for (int32_t i = 0; i < broker->dirty_count; i++) {
		broker->dirty[i]->dirty = false;
		tl_log_flush(broker->dirty[i]->log);
	}
	broker->dirty_count = 0;
	tl_ring_submit(broker->ring);
}

static tl_err epoll_add(struct tl_broker *broker, int fd, uint64_t source)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = source};
	if (epoll_ctl(broker->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		tl_crit("broker: epoll_ctl failed err=%s", strerrorname_np(errno));
		return TL_ERR_IO;
	}
	return TL_OK;
}

tl_err tl_tcp_listen(const char *host, int port, int backlog, int *fd_out,
		     struct sockaddr_in *bound_out)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(host[0] ? host : "0.0.0.0", NULL, &hints, &ai) != 0)
		return TL_ERR_INVALID;
	struct sockaddr_in addr = *(struct sockaddr_in *)(void *)ai->ai_addr;
	freeaddrinfo(ai);
	addr.sin_port = htons((uint16_t)port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return TL_ERR_IO;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 || listen(fd, backlog) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return TL_ERR_IO;
	}
	socklen_t len = sizeof(addr);
	getsockname(fd, (struct sockaddr *)&addr, &len);
	*fd_out = fd;
	*bound_out = addr;
	return TL_OK;
}

/* Binds one served listener and, on SSL and SASL_SSL, loads its TLS context. */
static tl_err listener_open(struct tl_broker *broker, const struct tl_listener *config,
			    struct tl_broker_listener *listener)
{
	const char *host = config->host[0] ? config->host : "0.0.0.0";
	struct sockaddr_in addr;
	listener->config = config;
	listener->security_protocol = config->security_protocol;
	tl_err err = tl_tcp_listen(host, config->port, 1024, &listener->fd, &addr);
	if (err == TL_ERR_INVALID) {
		tl_crit("broker: cannot resolve listener host=%s", host);
		return err;
	}
	if (err != TL_OK) {
		tl_crit("broker: cannot listen listener=%s://%s:%d err=%s", config->name, host,
			config->port, strerrorname_np(errno));
		listener->fd = -1;
		return err;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
	int bound_port = ntohs(addr.sin_port);
	if (config->has_advertised && config->advertised_host[0]) {
		/* memmove, not snprintf: config may be the broker's own copy, which GCC's
		 * -Wrestrict (make asan, -O1) takes for an overlap with the listener. */
		size_t n = strnlen(config->advertised_host, sizeof(listener->advertised_host) - 1);
		memmove(listener->advertised_host, config->advertised_host, n);
		listener->advertised_host[n] = '\0';
		listener->advertised_port =
			config->advertised_port ? config->advertised_port : bound_port;
	} else {
		snprintf(listener->advertised_host, sizeof(listener->advertised_host), "%s",
			 strcmp(ip, "0.0.0.0") == 0 ? "localhost" : ip);
		listener->advertised_port = bound_port;
	}
	if (!tl_security_protocol_is_tls(config->security_protocol))
		return TL_OK;
	const struct tl_config *c = &broker->config;
	struct tl_tls_server_conf tls = {
		.keystore_location = c->ssl_keystore_location,
		.key_password = c->ssl_key_password,
		.truststore_location = c->ssl_truststore_location,
		.enabled_protocols = c->ssl_enabled_protocols,
		.cipher_suites = c->ssl_cipher_suites,
		.ktls = c->ssl_ktls_enable,
	};
	if (!tl_tls_client_auth_parse(c->ssl_client_auth, &tls.client_auth))
		TL_ASSERT(!"tl_config_finish checked ssl.client.auth");
	char why[512];
	listener->ssl_ctx = tl_tls_server_ctx_create(&tls, why, sizeof(why));
	if (!listener->ssl_ctx) {
		tl_crit("broker: cannot set up TLS listener=%s detail=\"%s\"", config->name, why);
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

/* Binds every served listener first, then logs them, so a client that saw the first
 * "listening on" line finds them all bound. */
static tl_err broker_listen(struct tl_broker *broker)
{
	const struct tl_config *config = &broker->config;
	TL_ASSERT(config->listener_served >= 0 && config->listener_served < config->listener_count);
	for (int32_t i = 0; i < config->listener_count; i++) {
		const struct tl_listener *l = &config->listener_list[i];
		if (!l->served)
			continue;
		struct tl_broker_listener *listener = &broker->listeners[broker->listener_count];
		listener->fd = -1;
		broker->listener_count++;
		tl_err err = listener_open(broker, l, listener);
		if (err != TL_OK)
			return err;
		if (i == config->listener_served) {
			snprintf(broker->advertised_host, sizeof(broker->advertised_host), "%s",
				 listener->advertised_host);
			broker->advertised_port = listener->advertised_port;
		}
	}
	TL_ASSERT(broker->advertised_host[0]);
	for (int32_t i = 0; i < broker->listener_count; i++) {
		struct tl_broker_listener *listener = &broker->listeners[i];
		struct sockaddr_in addr;
		socklen_t len = sizeof(addr);
		getsockname(listener->fd, (struct sockaddr *)&addr, &len);
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
		tl_info("broker: listening on %s:%d advertised=%s:%d listener=%s "
			"security.protocol=%s",
			ip, ntohs(addr.sin_port), listener->advertised_host,
			listener->advertised_port, listener->config->name,
			listener->config->protocol);
		tl_err err = epoll_add(broker, listener->fd, SOURCE_LISTENERS + (uint64_t)i);
		if (err != TL_OK)
			return err;
	}
	return TL_OK;
}

static void broker_listeners_close(struct tl_broker *broker)
{
	for (int32_t i = 0; i < broker->listener_count; i++) {
		struct tl_broker_listener *listener = &broker->listeners[i];
		if (listener->fd != -1) {
			close(listener->fd);
			listener->fd = -1;
		}
	}
}

static tl_err broker_signals(struct tl_broker *broker)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1); /* debug logging on/off at run time */
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
		return TL_ERR_IO;
	signal(SIGPIPE, SIG_IGN);
	broker->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (broker->signal_fd == -1)
		return TL_ERR_IO;
	return epoll_add(broker, broker->signal_fd, SOURCE_SIGNAL);
}

tl_err tl_broker_init(struct tl_broker *broker, const struct tl_config *config)
{
	memset(broker, 0, sizeof(*broker));
	broker->config = *config;
	tl_batch_scratch_init(&broker->batch_scratch, TL_RECORDS_DECOMPRESSED_MAX);
	tl_buf_init(&broker->recompress_buf);
	broker->signal_fd = -1;
	broker->diag_level_saved = (int)TL_DIAG_INFO;
	snprintf(broker->data_dir, sizeof(broker->data_dir), "%s", config->log_dirs);
	if (getrandom(&broker->random_state, sizeof(broker->random_state), 0) !=
		    sizeof(broker->random_state) ||
	    broker->random_state == 0)
		broker->random_state = 0x9e3779b97f4a7c15ull;
	broker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (broker->epoll_fd == -1)
		return TL_ERR_IO;
	tl_err err;
	broker->ring = tl_ring_create(4096, config->io_engine, &err);
	if (!broker->ring) {
		tl_crit("broker: cannot set up disk I/O engine err=%s; set log.io.engine=sync to "
			"use pwritev+fdatasync",
			tl_err_name(err));
		return err;
	}
	tl_info("broker: disk I/O engine=%s",
		tl_ring_is_uring(broker->ring) ? "io_uring" : "sync (pwritev+fdatasync)");
	if ((err = epoll_add(broker, tl_ring_fd(broker->ring), SOURCE_RING)) != TL_OK)
		return err;
	if ((err = tl_topics_load(broker)) != TL_OK)
		return err;
	tl_quotas_init(&broker->quotas, config->quota_window_num,
		       (int64_t)config->quota_window_size_seconds * 1000);
	if ((err = tl_quotas_load(broker)) != TL_OK)
		return err;
	if ((err = tl_acl_start(broker)) != TL_OK)
		return err;
	if ((err = tl_sasl_load(broker)) != TL_OK)
		return err;
	if ((err = tl_sasl_workers_start(broker)) != TL_OK)
		return err;
	if (broker->sasl_workers &&
	    (err = epoll_add(broker, tl_workers_fd(broker->sasl_workers), SOURCE_SASL)) != TL_OK)
		return err;
	if ((err = tl_groups_create(broker, &broker->groups)) != TL_OK)
		return err;
	if ((err = tl_txns_open(broker, &broker->txns)) != TL_OK)
		return err;
	if ((err = broker_signals(broker)) != TL_OK)
		return err;
	if ((err = broker_listen(broker)) != TL_OK)
		return err;
	if ((err = tl_metrics_start(broker, SOURCE_METRICS)) != TL_OK)
		return err;
	if (!tl_config_is_cluster(config))
		return TL_OK;
	/* Cluster mode: the listener is bound (its address is registered), then the view
	 * says what this broker hosts; requests wait in the backlog until the loop runs. */
	char why[512];
	if ((err = tl_peer_security_init(&broker->peer_security, config, why, sizeof(why))) !=
	    TL_OK) {
		tl_crit("broker: cannot set up the inter-broker client listener=%s why=\"%s\"",
			config->listener_list[config->listener_served].name, why);
		return err;
	}
	tl_info("broker: inter-broker connections listener=%s security.protocol=%s principal=%s",
		config->listener_list[config->listener_served].name,
		config->listener_list[config->listener_served].protocol,
		broker->peer_security.principal);
	if ((err = tl_fetchers_create(broker, &broker->fetchers)) != TL_OK ||
	    (err = epoll_add(broker, tl_fetchers_fd(broker->fetchers), SOURCE_FETCHERS)) != TL_OK)
		return err;
	if ((err = tl_cluster_start(broker)) != TL_OK)
		return err;
	tl_producer_ids_start(broker);
	if ((err = tl_markers_create(broker, &broker->markers)) != TL_OK ||
	    (err = epoll_add(broker, tl_markers_fd(broker->markers), SOURCE_MARKERS)) != TL_OK)
		return err;
	return epoll_add(broker, tl_cluster_fd(broker->cluster), SOURCE_CLUSTER);
}

static void request_times_log(const struct tl_broker *broker)
{
	for (int16_t key = 0; key < TL_BROKER_API_SLOTS; key++) {
		const struct tl_hist *h =
			broker->request_metrics[key] ? &broker->request_metrics[key]->total : NULL;
		if (!h || h->count == 0)
			continue;
		const struct tl_api_info *info = tl_api_info(key);
		tl_info("broker: request time api=%s count=%" PRIu64 " p50_us=%" PRIu64
			" p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64,
			info ? info->name : "unknown", h->count, tl_hist_quantile(h, 0.5),
			tl_hist_quantile(h, 0.99), tl_hist_quantile(h, 0.999), h->max);
	}
}

static void broker_shutdown(struct tl_broker *broker)
{
	/* Controlled shutdown first, while still serving: leadership moves away. */
	tl_cluster_stop(broker);
	tl_info("broker: shutting down connections=%d", broker->conn_count);
	broker_listeners_close(broker);
	/* Finish what was accepted: write and sync it, answer it. */
	broker_group_commit(broker);
	while (tl_ring_pending(broker->ring) > 0) {
		tl_ring_wait(broker->ring);
		broker_group_commit(broker);
	}
	tl_fetch_expire(broker, INT64_MAX);
	for (struct tl_conn *conn = broker->conns; conn; conn = conn->next)
		tl_conn_flush(conn);
	while (broker->conns)
		tl_conn_close(broker->conns, "shutdown");
	tl_conn_resume_due(broker);   /* all closed: only drops their references */
	tl_sasl_workers_stop(broker); /* logins still pending end with their connections */
	request_times_log(broker);
	tl_metrics_stop(broker);
	/* Before the coordinator: markers in flight call back into it. */
	tl_markers_destroy(broker, broker->markers);
	broker->markers = NULL;
	tl_txns_close(broker->txns);
	broker->txns = NULL;
	tl_groups_destroy(broker->groups);
	broker->groups = NULL;
	tl_topics_close_all(broker);
	tl_fetchers_destroy(broker->fetchers);
	broker->fetchers = NULL;
	tl_peer_security_deinit(&broker->peer_security);
}

/* SIGTERM, SIGINT: stop. SIGUSR1: request-level debug logging on, or back off (to
 * log.level), without a restart. */
static void broker_on_signal(struct tl_broker *broker, int signo)
{
	if (signo == SIGUSR1) {
		if (tl_diag_level() != TL_DIAG_DEBUG) {
			broker->diag_level_saved = (int)tl_diag_level();
			tl_diag_set_level(TL_DIAG_DEBUG);
			tl_info("broker: debug logging on (SIGUSR1 again turns it off)");
		} else {
			tl_info("broker: debug logging off");
			tl_diag_set_level((enum tl_diag_level)broker->diag_level_saved);
		}
		return;
	}
	tl_info("broker: signal received signal=%s", sigabbrev_np(signo));
	broker->stopping = true;
}

tl_err tl_broker_poll(struct tl_broker *broker, int max_wait_ms)
{
	struct epoll_event events[EPOLL_EVENTS];
	int64_t now = tl_mono_ms();
	int64_t wake = TL_MIN(broker->next_tick_ms, tl_fetch_next_deadline(broker));
	wake = TL_MIN(wake, tl_groups_next_deadline(broker->groups));
	wake = TL_MIN(wake, tl_conn_next_unthrottle(broker));
	wake = TL_MIN(wake, tl_produce_next_deadline(broker));
	int timeout = (int)TL_MAX(TL_MIN(wake - now, (int64_t)max_wait_ms), (int64_t)0);
	if (broker->dirty_count > 0)
		timeout = 0; /* appended after the last group commit (timers): flush now */
	int n = epoll_wait(broker->epoll_fd, events, EPOLL_EVENTS, timeout);
	if (n == -1 && errno != EINTR) {
		tl_crit("broker: epoll_wait failed err=%s", strerrorname_np(errno));
		return TL_ERR_IO;
	}
	/* A ring completion (or another connection) may close and free a connection whose
	 * event is later in this batch: hold each until the batch is done. */
	for (int i = 0; i < n; i++)
		if (is_connection(events[i].data.u64))
			tl_conn_hold(events[i].data.ptr);
	for (int i = 0; i < n; i++) {
		uint64_t source = events[i].data.u64;
		if (source >= SOURCE_LISTENERS && source <= SOURCE_LAST) {
			tl_conn_accept(broker, &broker->listeners[source - SOURCE_LISTENERS]);
		} else if (source == SOURCE_RING) {
			tl_ring_reap(broker->ring);
		} else if (source == SOURCE_SIGNAL) {
			struct signalfd_siginfo si;
			if (read(broker->signal_fd, &si, sizeof(si)) == sizeof(si))
				broker_on_signal(broker, (int)si.ssi_signo);
		} else if (source == SOURCE_CLUSTER) {
			tl_cluster_on_event(broker);
		} else if (source == SOURCE_FETCHERS) {
			tl_fetchers_on_event(broker);
		} else if (source == SOURCE_MARKERS) {
			tl_markers_on_event(broker);
		} else if (source == SOURCE_SASL) {
			tl_workers_on_event(broker->sasl_workers);
		} else if (source >= SOURCE_METRICS && source < SOURCE_LISTENERS) {
			tl_metrics_on_event(broker, (uint32_t)(source - SOURCE_METRICS),
					    events[i].events);
		} else {
			tl_conn_on_event(events[i].data.ptr, events[i].events);
		}
	}
	for (int i = 0; i < n; i++)
		if (is_connection(events[i].data.u64))
			tl_conn_release(events[i].data.ptr);
	tl_conn_resume_due(broker); /* before the commit: their appends join this turn's */
	broker_group_commit(broker);
	now = tl_mono_ms();
	tl_fetch_expire(broker, now);
	tl_produce_expire(broker, now);
	tl_conn_unthrottle_due(broker, now);
	tl_groups_tick(broker->groups, now);
	if (broker->cluster)
		tl_cluster_tick(broker, now);
	if (now >= broker->next_tick_ms) {
		tl_topics_tick(broker, tl_wall_ms());
		tl_txns_tick(broker->txns, tl_wall_ms());
		tl_conn_close_idle(broker, now);
		tl_metrics_tick(broker, now);
		tl_quotas_expire(&broker->quotas, now);
		broker->next_tick_ms = now + TICK_MS;
	}
	return TL_OK;
}

tl_err tl_broker_run(struct tl_broker *broker)
{
	broker->next_tick_ms = tl_mono_ms() + TICK_MS;
	while (!broker->stopping) {
		tl_err err = tl_broker_poll(broker, TICK_MS);
		if (err != TL_OK)
			return err;
	}
	broker_shutdown(broker);
	return TL_OK;
}

void tl_broker_deinit(struct tl_broker *broker)
{
	if (broker->ring)
		tl_ring_destroy(broker->ring);
	if (broker->signal_fd != -1)
		close(broker->signal_fd);
	broker_listeners_close(broker);
	for (int32_t i = 0; i < broker->listener_count; i++)
		tl_tls_ctx_free(broker->listeners[i].ssl_ctx);
	if (broker->epoll_fd != -1)
		close(broker->epoll_fd);
	free(broker->dirty);
	tl_quotas_deinit(&broker->quotas);
	tl_acl_stop(broker);
	tl_sasl_workers_stop(broker);
	tl_sasl_deinit(broker);
	tl_batch_scratch_deinit(&broker->batch_scratch);
	tl_buf_deinit(&broker->recompress_buf);
	ZSTD_freeCCtx(broker->recompress_zstd);
	tl_metrics_stop(broker);
	for (int32_t key = 0; key < TL_BROKER_API_SLOTS; key++)
		free(broker->request_metrics[key]);
}
