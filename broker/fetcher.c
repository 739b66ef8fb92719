/* fetcher.c - a follower's replica fetchers: one connection per leader broker, one Fetch
 * in flight on it covering every partition this broker follows from that leader
 * (Kafka's ReplicaFetcherThread, on the event loop instead of a thread).
 *
 * A session's cycle:
 *   CONNECTING (TCP) -> SECURING (TLS and SASL of the inter-broker listener, peer.c,
 *   never blocking the loop; again from READY when the leader's SASL session is due for
 *   re-authentication, KIP-368) -> READY -> send Fetch (replica_id = node.id, fetch
 *   offset = log end, the epoch of the last batch as last_fetched_epoch, the leader
 *   epoch we know as current_leader_epoch) -> IN_FLIGHT -> response: per partition, truncate where
 *   the leader reports a diverging epoch (KIP-595's truncation on fetch, which
 *   replaces the separate OffsetsForLeaderEpoch round of KIP-101), else append the
 *   batches as the leader wrote them (tl_log_append_replica) -> DURABLE_WAIT until
 *   every partition appended to is fdatasync'ed -> READY.
 * So a follower's next fetch offset is always its durable end: the leader may count
 * it towards the high watermark, and acks=all means fdatasync'ed on every ISR member.
 * Invariants:
 * (1) The response buffer is freed only once every batch appended from it is
 *     durable (or its log failed or was removed): the logs borrow those bytes.
 * (2) One request in flight per session; a partition is in at most one session.
 * (3) A partition whose leader or epoch changed while its fetch was in flight ignores
 *     that response's data for it. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/cluster.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

#define FETCH_VERSION      12
#define RESPONSE_SLACK     (1024 * 1024) /* headers around the records' bytes */
#define SESSION_PARTS_INIT 16

enum session_state {
	SESSION_IDLE = 0, /* no connection; connect at retry_at_ms */
	SESSION_CONNECTING = 1,
	SESSION_READY = 2, /* connected, nothing in flight */
	SESSION_IN_FLIGHT = 3,
	SESSION_DURABLE_WAIT = 4,
	SESSION_SECURING = 5, /* TCP connected; TLS handshake and SASL login under way */
};

/* A refused login is retried every replica.fetch.backoff.ms; its warn line at most
 * this often per leader, with the count of failures in between. */
#define LOGIN_WARN_INTERVAL_MS 10000

struct session_part {
	struct tl_partition *partition;
	int32_t leader_epoch; /* as of the request in flight */
	int64_t wait_offset;  /* durable end that releases the response buffer; -1 none */
	bool detached;        /* no longer followed from this leader: kept only for the wait */
};

struct session {
	int32_t leader_id;
	int fd;
	struct tl_peer_link link; /* valid while fd != -1 */
	enum session_state state;
	struct session_part *parts;
	int32_t part_count;
	int32_t part_cap;
	uint8_t *wbuf; /* the request being sent */
	size_t wlen;
	size_t wsent;
	uint8_t *rbuf; /* the response being read, then borrowed by the logs */
	size_t rlen;
	size_t rhave;
	uint8_t size_prefix[4];
	int32_t correlation_id;
	int64_t retry_at_ms;
	int64_t sent_ms;             /* when the request in flight was sent */
	int64_t login_warn_ms;       /* the last login failure's warn line */
	int32_t login_fail_unlogged; /* failures since it */
	bool answered;               /* a response came on this connection */
	struct session *next;
};

struct tl_fetchers {
	int epoll_fd;
	struct session *sessions;
};

tl_err tl_fetchers_create(struct tl_broker *broker, struct tl_fetchers **out)
{
	TL_UNUSED(broker);
	struct tl_fetchers *f = calloc(1, sizeof(*f));
	if (!f)
		return TL_ERR_NOMEM;
	f->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (f->epoll_fd == -1) {
		free(f);
		return TL_ERR_IO;
	}
	*out = f;
	return TL_OK;
}

int tl_fetchers_fd(const struct tl_fetchers *fetchers)
{
	return fetchers->epoll_fd;
}

static void session_disconnect(struct tl_fetchers *f, struct session *s, int64_t backoff_ms)
{
	if (s->fd != -1) {
		epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
		tl_peer_link_deinit(&s->link);
		memset(&s->link, 0, sizeof(s->link));
		close(s->fd);
		s->fd = -1;
	}
	free(s->wbuf);
	s->wbuf = NULL;
	/* A response buffer still borrowed by the logs stays (invariant 1). */
	if (s->state != SESSION_DURABLE_WAIT) {
		free(s->rbuf);
		s->rbuf = NULL;
		s->state = SESSION_IDLE;
	}
	s->rhave = s->rlen = 0;
	s->retry_at_ms = tl_mono_ms() + backoff_ms;
}

static bool parts_pending(const struct session *s)
{
	for (int32_t i = 0; i < s->part_count; i++)
		if (s->parts[i].wait_offset >= 0)
			return true;
	return false;
}

static void session_free(struct tl_fetchers *f, struct session *s)
{
	TL_ASSERT(!parts_pending(s));
	session_disconnect(f, s, 0);
	free(s->rbuf);
	free(s->parts);
	free(s);
}

void tl_fetchers_destroy(struct tl_fetchers *fetchers)
{
	if (!fetchers)
		return;
	while (fetchers->sessions) {
		struct session *s = fetchers->sessions;
		fetchers->sessions = s->next;
		for (int32_t i = 0; i < s->part_count; i++)
			s->parts[i].wait_offset = -1; /* the logs are closed by now */
		session_free(fetchers, s);
	}
	close(fetchers->epoll_fd);
	free(fetchers);
}

static struct session *session_find(struct tl_fetchers *f, int32_t leader_id)
{
	for (struct session *s = f->sessions; s; s = s->next)
		if (s->leader_id == leader_id)
			return s;
	return NULL;
}

static int32_t part_index(const struct session *s, const struct tl_partition *p)
{
	for (int32_t i = 0; i < s->part_count; i++)
		if (s->parts[i].partition == p)
			return i;
	return -1;
}

/* ---- connecting ---- */

static void session_connect(struct tl_broker *broker, struct session *s)
{
	struct tl_fetchers *f = broker->fetchers;
	const struct tl_cluster_broker *leader =
		tl_cluster_find_broker(tl_cluster_view(broker->cluster), s->leader_id);
	if (!leader) {
		s->retry_at_ms = tl_mono_ms() + broker->config.replica_fetch_backoff_ms;
		return;
	}
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(leader->host, NULL, &hints, &ai) != 0) {
		tl_warn("fetcher: cannot resolve leader host=%s leader=%d", leader->host,
			s->leader_id);
		s->retry_at_ms = tl_mono_ms() + broker->config.replica_fetch_backoff_ms;
		return;
	}
	struct sockaddr_in addr = *(struct sockaddr_in *)(void *)ai->ai_addr;
	freeaddrinfo(ai);
	addr.sin_port = htons((uint16_t)leader->port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		s->retry_at_ms = tl_mono_ms() + broker->config.replica_fetch_backoff_ms;
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 && errno != EINPROGRESS) {
		close(fd);
		s->retry_at_ms = tl_mono_ms() + broker->config.replica_fetch_backoff_ms;
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
	if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		close(fd);
		s->retry_at_ms = tl_mono_ms() + broker->config.replica_fetch_backoff_ms;
		return;
	}
	s->fd = fd;
	s->state = SESSION_CONNECTING;
	tl_debug("fetcher: connecting to leader leader=%d host=%s port=%d", s->leader_id,
		 leader->host, leader->port);
}

static void session_secure(struct tl_broker *broker, struct session *s);

/* The TCP connect finished: TLS and SASL of the inter-broker listener next. */
static void session_secure_start(struct tl_broker *broker, struct session *s)
{
	const struct tl_cluster_broker *leader =
		tl_cluster_find_broker(tl_cluster_view(broker->cluster), s->leader_id);
	if (!leader ||
	    tl_peer_link_init(&s->link, &broker->peer_security, s->fd, leader->host) != TL_OK) {
		session_disconnect(broker->fetchers, s, broker->config.replica_fetch_backoff_ms);
		return;
	}
	s->state = SESSION_SECURING;
	s->answered = false;
	s->sent_ms = tl_mono_ms(); /* a peer that never finishes the login is given up on */
	session_secure(broker, s);
}

static void session_login_failed(struct tl_broker *broker, struct session *s)
{
	int64_t now = tl_mono_ms();
	s->login_fail_unlogged++;
	if (s->login_warn_ms == 0 || now - s->login_warn_ms >= LOGIN_WARN_INTERVAL_MS) {
		tl_warn("fetcher: cannot connect to the leader over the inter-broker listener "
			"leader=%d principal=%s security.protocol=%s err=%s failures=%d why=\"%s\"",
			s->leader_id, broker->peer_security.principal,
			broker->peer_security.protocol_name, tl_err_name(s->link.failure),
			s->login_fail_unlogged, s->link.why);
		s->login_warn_ms = now;
		s->login_fail_unlogged = 0;
	}
	session_disconnect(broker->fetchers, s, broker->config.replica_fetch_backoff_ms);
}

static void session_send(struct tl_broker *broker, struct session *s);
static void session_want_write(struct tl_fetchers *f, struct session *s, bool on);

/* Drives TLS and SASL; READY and the first Fetch once both are through. */
static void session_secure(struct tl_broker *broker, struct session *s)
{
	TL_ASSERT(s->state == SESSION_SECURING);
	tl_err err = tl_peer_link_advance(&s->link);
	if (err == TL_ERR_AGAIN) {
		session_want_write(broker->fetchers, s, s->link.transport.want_write);
		return;
	}
	if (err != TL_OK) {
		session_login_failed(broker, s);
		return;
	}
	if (s->link.logins > 1)
		tl_info("fetcher: re-authenticated with leader leader=%d principal=%s "
			"session_lifetime_ms=%lld logins=%d",
			s->leader_id, broker->peer_security.principal,
			(long long)s->link.session_lifetime_ms, s->link.logins);
	else if (s->login_warn_ms == 0) /* quiet while failures are being counted */
		tl_info("fetcher: connected to leader leader=%d security.protocol=%s principal=%s "
			"session_lifetime_ms=%lld",
			s->leader_id, broker->peer_security.protocol_name,
			broker->peer_security.principal, (long long)s->link.session_lifetime_ms);
	session_want_write(broker->fetchers, s, false);
	s->state = SESSION_READY;
	session_send(broker, s);
}

/* ---- requests ---- */

static void session_want_write(struct tl_fetchers *f, struct session *s, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u), .data.ptr = s};
	epoll_ctl(f->epoll_fd, EPOLL_CTL_MOD, s->fd, &ev);
}

static void session_flush(struct tl_broker *broker, struct session *s)
{
	while (s->wsent < s->wlen) {
		struct iovec iov = {.iov_base = s->wbuf + s->wsent, .iov_len = s->wlen - s->wsent};
		ssize_t n = tl_transport_writev(&s->link.transport, &iov, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			session_want_write(broker->fetchers, s, true);
			return;
		}
		if (n <= 0) {
			session_disconnect(broker->fetchers, s,
					   broker->config.replica_fetch_backoff_ms);
			return;
		}
		s->wsent += (size_t)n;
	}
	free(s->wbuf);
	s->wbuf = NULL;
	session_want_write(broker->fetchers, s, false);
}

/* Groups the session's partitions by topic into a Fetch request and sends it. */
static void session_send(struct tl_broker *broker, struct session *s)
{
	TL_ASSERT(s->state == SESSION_READY);
	if (tl_cluster_is_shutting_down(broker->cluster))
		return;
	if (tl_peer_link_reauth_due(&s->link, tl_mono_ms())) {
		/* KIP-368: the leader would close the connection at our first request after
		 * the session's end; log in again between two fetches instead. */
		tl_peer_link_reauth_start(&s->link);
		s->state = SESSION_SECURING;
		s->sent_ms = tl_mono_ms();
		session_secure(broker, s);
		return;
	}
	int32_t followed = 0;
	for (int32_t i = 0; i < s->part_count; i++)
		followed += !s->parts[i].detached;
	if (followed == 0)
		return;
	struct tl_arena arena;
	tl_arena_init(&arena, 0);
	struct tl_fetch_request req;
	tl_fetch_request_defaults(&req);
	req.replica_id = broker->config.node_id;
	req.max_wait_ms = broker->config.replica_fetch_wait_max_ms;
	req.min_bytes = 1;
	req.max_bytes = broker->config.replica_fetch_response_max_bytes;
	req.isolation_level = 0;
	req.topics = tl_arena_array(&arena, (size_t)s->part_count, sizeof(*req.topics));
	TL_ASSERT(req.topics);
	req.topics_count = 0;
	for (int32_t i = 0; i < s->part_count; i++) {
		struct tl_partition *p = s->parts[i].partition;
		/* A failed log takes nothing more, and its end may be past what the disk
		 * took: asked for, it would go on counting for the leader's high watermark
		 * while this replica is still in the ISR. The lag check drops it instead. */
		if (s->parts[i].detached || !tl_log_is_writable(p->log))
			continue;
		struct tl_fetch_request_fetch_topic *ft = NULL;
		for (int32_t t = 0; t < req.topics_count && !ft; t++)
			if (tl_str_eq_c(req.topics[t].topic, p->topic->name))
				ft = &req.topics[t];
		if (!ft) {
			ft = &req.topics[req.topics_count++];
			tl_fetch_request_fetch_topic_defaults(ft);
			ft->topic = tl_str_of(p->topic->name);
			ft->partitions = tl_arena_array(&arena, (size_t)s->part_count,
							sizeof(*ft->partitions));
			TL_ASSERT(ft->partitions);
			ft->partitions_count = 0;
		}
		struct tl_fetch_request_fetch_partition *fp =
			&ft->partitions[ft->partitions_count++];
		tl_fetch_request_fetch_partition_defaults(fp);
		fp->partition = p->index;
		fp->current_leader_epoch = p->state.leader_epoch;
		fp->fetch_offset = tl_log_end_offset(p->log);
		fp->last_fetched_epoch = tl_log_latest_epoch(p->log);
		fp->log_start_offset = tl_log_start_offset(p->log);
		fp->partition_max_bytes = broker->config.replica_fetch_max_bytes;
		s->parts[i].leader_epoch = p->state.leader_epoch;
	}
	struct tl_buf buf;
	tl_buf_init(&buf);
	tl_buf_i32(&buf, 0);
	struct tl_request_header header = {.api_key = TL_API_FETCH,
					   .api_version = FETCH_VERSION,
					   .correlation_id = ++s->correlation_id,
					   .client_id = tl_str_of("tallyd-replica-fetcher")};
	tl_request_header_encode(&buf, &header);
	tl_fetch_request_encode(&buf, FETCH_VERSION, &req);
	tl_arena_deinit(&arena);
	if (buf.failed) {
		tl_buf_deinit(&buf);
		session_disconnect(broker->fetchers, s, broker->config.replica_fetch_backoff_ms);
		return;
	}
	tl_be32_put(buf.data, (uint32_t)(buf.len - 4));
	s->wbuf = buf.data; /* taken from the buf */
	s->wlen = buf.len;
	s->wsent = 0;
	buf.data = NULL;
	tl_buf_deinit(&buf);
	s->state = SESSION_IN_FLIGHT;
	s->sent_ms = tl_mono_ms();
	s->rhave = s->rlen = 0;
	session_flush(broker, s);
}

/* ---- responses ---- */

static void follower_set_high_watermark(struct tl_partition *p)
{
	int64_t hw = TL_MIN(p->leader_high_watermark, tl_log_durable_offset(p->log));
	if (hw > tl_log_high_watermark(p->log))
		tl_log_set_high_watermark(p->log, hw);
}

/* DeleteRecords on the leader: its log start comes in every fetch response and a
 * follower moves its own up to it (Kafka's maybeIncrementLogStartOffset), no further
 * than its high watermark; a follower still behind gets the rest with a later fetch. */
static void follower_set_start(struct tl_partition *p, int64_t leader_start)
{
	int64_t to = TL_MIN(leader_start, tl_log_high_watermark(p->log));
	if (to <= tl_log_start_offset(p->log))
		return;
	int64_t start;
	tl_err err = tl_log_delete_records(p->log, to, &start);
	if (err == TL_OK)
		tl_log_tick(p->log, tl_wall_ms()); /* drop the segments wholly below now */
	else
		tl_warn("fetcher: cannot move the log start to the leader's topic=%s "
			"partition=%d start=%" PRId64 " err=%s",
			p->topic->name, p->index, to, tl_err_name(err));
}

/* KIP-595 truncation: the leader says our log diverged at (epoch, end_offset); its
 * log starts at @leader_start. */
static void part_truncate(struct tl_partition *p,
			  const struct tl_fetch_response_epoch_end_offset *d, int64_t leader_start)
{
	int64_t end = tl_log_end_offset(p->log);
	int64_t to;
	int32_t our_epoch;
	int64_t our_end;
	if (d->end_offset < 0) {
		to = tl_log_high_watermark(p->log);
	} else if (tl_log_end_offset_for_epoch(p->log, d->epoch, &our_epoch, &our_end) != TL_OK ||
		   our_epoch < 0) {
		to = TL_MIN(d->end_offset, end);
	} else if (our_epoch != d->epoch) {
		to = TL_MIN(our_end, end);
	} else {
		to = TL_MIN(TL_MIN(d->end_offset, our_end), end);
	}
	tl_info("fetcher: truncating a diverged log topic=%s partition=%d leader_epoch=%d "
		"leader_end_offset=%" PRId64 " log_end=%" PRId64 " truncate_to=%" PRId64,
		p->topic->name, p->index, d->epoch, d->end_offset, end, to);
	/* Below our log start (the leader was elected uncleanly and never had what a
	 * DeleteRecords removed): nothing we hold is the leader's, and a truncation that
	 * stopped at our log start would diverge again at once. Kafka's follower starts
	 * afresh at the divergence; ours at the leader's log start, to copy all it has. */
	tl_err err;
	if (to < tl_log_start_offset(p->log))
		err = tl_log_truncate_fully(p->log,
					    leader_start >= 0 ? TL_MIN(leader_start, to) : to);
	else
		err = tl_log_truncate_to(p->log, to);
	if (err != TL_OK)
		tl_crit("fetcher: truncation failed topic=%s partition=%d err=%s", p->topic->name,
			p->index, tl_err_name(err));
}

/* Appends the whole batches of @records; returns the end offset appended, or -1.
 * Sets *@refused when the log refused a batch. */
static int64_t part_append(struct tl_broker *broker, struct tl_partition *p, uint8_t *data,
			   int64_t len, bool *refused)
{
	int64_t appended = -1;
	while (len >= TL_BATCH_LOG_OVERHEAD) {
		int64_t size = tl_batch_size(data, (size_t)len);
		if (size < 0 || size > len)
			break; /* a partial batch at the end of a response: fetched again */
		struct tl_batch_header h;
		const char *why = NULL;
		/* Stored, not produced: the leader's cleaner may have thinned it. */
		tl_err err = tl_batch_validate_stored(data, (size_t)size, &h, &why);
		int64_t end = tl_log_end_offset(p->log);
		if (err == TL_OK && h.base_offset < end && tl_batch_last_offset(&h) < end) {
			data += size; /* already have it (a fetch raced a truncation) */
			len -= size;
			continue;
		}
		/* A leader's batch across our end: the logs differ there. Refused, never
		 * skipped, or the next batch would pass for one after a compacted hole. */
		if (err == TL_OK && h.base_offset < end)
			err = TL_ERR_OFFSET_OUT_OF_RANGE;
		if (err == TL_OK)
			err = tl_log_append_replica(p->log, data, (size_t)size, &h);
		if (err != TL_OK) {
			tl_warn("fetcher: batch from leader refused topic=%s partition=%d offset=%" PRId64
				" err=%s why=\"%s\"",
				p->topic->name, p->index, h.base_offset, tl_err_name(err),
				why ? why : "");
			*refused = true;
			break;
		}
		appended = tl_batch_last_offset(&h) + 1;
		if (broker->metrics_on)
			p->topic->metrics.replication_bytes_in += (uint64_t)size;
		data += size;
		len -= size;
	}
	if (appended >= 0)
		tl_broker_mark_dirty(broker, p);
	return appended;
}

static struct session_part *response_part(struct session *s, struct tl_str topic, int32_t index)
{
	for (int32_t i = 0; i < s->part_count; i++) {
		struct tl_partition *p = s->parts[i].partition;
		if (!s->parts[i].detached && p->index == index &&
		    tl_str_eq_c(topic, p->topic->name))
			return &s->parts[i];
	}
	return NULL;
}

static void session_after_durable(struct tl_broker *broker, struct session *s)
{
	if (parts_pending(s))
		return;
	free(s->rbuf);
	s->rbuf = NULL;
	if (s->fd == -1) {
		s->state = SESSION_IDLE;
		return;
	}
	s->state = SESSION_READY;
	session_send(broker, s);
}

static void session_on_response(struct tl_broker *broker, struct session *s)
{
	if (!s->answered) {
		/* The login held (TLS 1.3 tells a refused certificate only now). */
		s->answered = true;
		s->login_warn_ms = 0;
		s->login_fail_unlogged = 0;
	}
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, s->rbuf, s->rlen);
	int32_t correlation_id;
	struct tl_arena arena;
	tl_arena_init(&arena, 0);
	struct tl_fetch_response resp;
	if (tl_response_header_decode(&cursor, TL_API_FETCH, FETCH_VERSION, &correlation_id) !=
		    TL_OK ||
	    correlation_id != s->correlation_id ||
	    tl_fetch_response_decode(&cursor, FETCH_VERSION, &arena, &resp) != TL_OK) {
		tl_warn("fetcher: malformed fetch response from leader leader=%d", s->leader_id);
		tl_arena_deinit(&arena);
		session_disconnect(broker->fetchers, s, broker->config.replica_fetch_backoff_ms);
		return;
	}
	bool progress = false, advanced = false, refused = false;
	for (int32_t t = 0; t < resp.responses_count; t++) {
		const struct tl_fetch_response_fetchable_topic_response *tr = &resp.responses[t];
		for (int32_t i = 0; i < tr->partitions_count; i++) {
			const struct tl_fetch_response_partition_data *pd = &tr->partitions[i];
			struct session_part *sp = response_part(s, tr->topic, pd->partition_index);
			if (!sp)
				continue;
			struct tl_partition *p = sp->partition;
			if (p->role != TL_REPLICA_FOLLOWER || p->state.leader != s->leader_id ||
			    p->state.leader_epoch != sp->leader_epoch)
				continue; /* invariant (3) */
			if (pd->error_code != 0) {
				if (pd->error_code == TL_ERR_OFFSET_OUT_OF_RANGE &&
				    pd->log_start_offset > tl_log_end_offset(p->log)) {
					tl_log_truncate_fully(p->log, pd->log_start_offset);
					progress = true;
				}
				tl_debug("fetcher: partition error topic=%s partition=%d err=%d",
					 p->topic->name, p->index, pd->error_code);
				continue;
			}
			/* A log that failed (an fdatasync error) refuses every batch: fetching
			 * it again at once would spin; it waits for a restart. */
			if (!p->log || !tl_log_is_writable(p->log))
				continue;
			if (pd->diverging_epoch.epoch >= 0) {
				part_truncate(p, &pd->diverging_epoch, pd->log_start_offset);
				progress = advanced = true;
				continue;
			}
			p->leader_high_watermark = pd->high_watermark;
			if (pd->records.len > 0) {
				uint8_t *data = s->rbuf + (pd->records.ptr - s->rbuf);
				bool refused_here = false;
				int64_t end = part_append(broker, p, data, pd->records.len,
							  &refused_here);
				/* Refused with the log still writable (its leader-epoch
				 * checkpoint could not be written: ENOSPC): unless another
				 * partition advanced, the same batch is not fetched again
				 * at once (a full disk made 11,000 refusals in 20 s). */
				if (end >= 0) {
					sp->wait_offset = end;
					advanced = true;
				}
				refused = refused || (refused_here && end < 0);
			}
			progress = true;
			follower_set_high_watermark(p);
			follower_set_start(p, pd->log_start_offset);
		}
	}
	tl_arena_deinit(&arena);
	if (parts_pending(s)) {
		s->state = SESSION_DURABLE_WAIT;
		return;
	}
	free(s->rbuf);
	s->rbuf = NULL;
	s->state = SESSION_READY;
	if (progress && (advanced || !refused))
		session_send(broker, s);
	else
		s->retry_at_ms = tl_mono_ms() + broker->config.replica_fetch_backoff_ms;
}

static void session_read(struct tl_broker *broker, struct session *s)
{
	for (;;) {
		uint8_t *dst;
		size_t want;
		if (s->rhave < 4) {
			dst = s->size_prefix + s->rhave;
			want = 4 - s->rhave;
		} else {
			dst = s->rbuf + (s->rhave - 4);
			want = s->rlen - (s->rhave - 4);
		}
		ssize_t n = tl_transport_read(&s->link.transport, dst, want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* TLS may need to write to read on (a key update). */
			if (s->link.transport.want_write)
				session_want_write(broker->fetchers, s, true);
			return;
		}
		if (n <= 0 && !s->answered && s->link.transport.ssl) {
			/* Under TLS 1.3 the client's handshake ends before the server checked
			 * its certificate: a refused one shows here, as the server's alert. */
			char detail[200];
			tl_transport_error(&s->link.transport, detail, sizeof(detail));
			snprintf(
				s->link.why, sizeof(s->link.why),
				"TLS: the leader closed the connection before its first answer: %s",
				detail);
			s->link.failure = TL_ERR_IO;
			session_login_failed(broker, s);
			return;
		}
		if (n <= 0) {
			tl_info("fetcher: connection to leader lost leader=%d", s->leader_id);
			session_disconnect(broker->fetchers, s,
					   broker->config.replica_fetch_backoff_ms);
			return;
		}
		s->rhave += (size_t)n;
		if (s->rhave == 4) {
			uint32_t size = tl_be32_get(s->size_prefix);
			uint64_t max = (uint64_t)broker->config.replica_fetch_response_max_bytes +
				       RESPONSE_SLACK;
			if (size < 8 || size > max || s->state != SESSION_IN_FLIGHT) {
				tl_warn("fetcher: bad response size from leader leader=%d size=%u",
					s->leader_id, size);
				session_disconnect(broker->fetchers, s,
						   broker->config.replica_fetch_backoff_ms);
				return;
			}
			s->rlen = size;
			s->rbuf = malloc(size);
			if (!s->rbuf) {
				session_disconnect(broker->fetchers, s,
						   broker->config.replica_fetch_backoff_ms);
				return;
			}
		}
		if (s->rhave >= 4 && s->rhave - 4 == s->rlen) {
			s->rhave = 0;
			session_on_response(broker, s);
			return;
		}
	}
}

void tl_fetchers_on_event(struct tl_broker *broker)
{
	struct tl_fetchers *f = broker->fetchers;
	struct epoll_event events[32];
	int n = epoll_wait(f->epoll_fd, events, 32, 0);
	for (int i = 0; i < n; i++) {
		struct session *s = events[i].data.ptr;
		if (s->fd == -1)
			continue;
		if (s->state == SESSION_CONNECTING) {
			int err = 0;
			socklen_t len = sizeof(err);
			getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err != 0 || (events[i].events & (EPOLLERR | EPOLLHUP))) {
				session_disconnect(f, s, broker->config.replica_fetch_backoff_ms);
				continue;
			}
			session_secure_start(broker, s);
			continue;
		}
		if (s->state == SESSION_SECURING) {
			session_secure(broker, s);
			continue;
		}
		bool read_wants_out = s->link.transport.want_write && !s->wbuf;
		if ((events[i].events & EPOLLOUT) && s->wbuf)
			session_flush(broker, s);
		if (s->fd != -1 && ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ||
				    (read_wants_out && (events[i].events & EPOLLOUT)))) {
			if (read_wants_out)
				session_want_write(f, s, false);
			session_read(broker, s);
		}
	}
}

/* ---- membership ---- */

static void part_remove(struct tl_broker *broker, struct session *s, int32_t i)
{
	/* Its borrowed bytes: the caller only removes a partition whose log still runs, and
	 * the wait is dropped since role changes keep the log (durable end still grows). */
	s->parts[i] = s->parts[--s->part_count];
	if (s->part_count == 0 && !parts_pending(s)) {
		struct tl_fetchers *f = broker->fetchers;
		struct session **pp = &f->sessions;
		while (*pp != s)
			pp = &(*pp)->next;
		*pp = s->next;
		session_free(f, s);
	}
}

void tl_fetchers_update(struct tl_broker *broker, struct tl_partition *p)
{
	struct tl_fetchers *f = broker->fetchers;
	bool follow = p->role == TL_REPLICA_FOLLOWER && p->log;
	int32_t leader = follow ? p->state.leader : -1;
	for (struct session *s = f->sessions; s;) {
		struct session *next = s->next;
		int32_t i = part_index(s, p);
		if (i >= 0 && s->leader_id != leader) {
			if (s->parts[i].wait_offset >= 0 && p->log) {
				/* Still borrowed: keep it until durable, but fetch no more. */
				s->parts[i].detached = true;
			} else {
				part_remove(broker, s, i);
			}
		}
		s = next;
	}
	if (!follow)
		return;
	struct session *s = session_find(f, leader);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return;
		s->leader_id = leader;
		s->fd = -1;
		s->next = f->sessions;
		f->sessions = s;
	}
	int32_t have = part_index(s, p);
	if (have >= 0) {
		s->parts[have].detached = false; /* back to a leader it had left */
	} else {
		if (s->part_count == s->part_cap) {
			int32_t cap = s->part_cap ? s->part_cap * 2 : SESSION_PARTS_INIT;
			struct session_part *parts =
				realloc(s->parts, (size_t)cap * sizeof(*parts));
			if (!parts)
				return;
			s->parts = parts;
			s->part_cap = cap;
		}
		s->parts[s->part_count++] = (struct session_part){
			.partition = p, .leader_epoch = -1, .wait_offset = -1};
	}
	if (s->state == SESSION_IDLE && s->fd == -1)
		session_connect(broker, s);
}

/* The log of @p is going away (topic deleted, replica removed): forget it everywhere. */
void tl_fetchers_forget(struct tl_broker *broker, struct tl_partition *p)
{
	struct tl_fetchers *f = broker->fetchers;
	for (struct session *s = f->sessions; s;) {
		struct session *next = s->next;
		int32_t i = part_index(s, p);
		if (i >= 0) {
			s->parts[i].wait_offset = -1;
			part_remove(broker, s, i);
			if (session_find(f, s->leader_id) == s && s->state == SESSION_DURABLE_WAIT)
				session_after_durable(broker, s);
		}
		s = next;
	}
}

void tl_fetchers_on_durable(struct tl_broker *broker, struct tl_partition *p)
{
	follower_set_high_watermark(p);
	struct tl_fetchers *f = broker->fetchers;
	/* @p may wait in two sessions at once: detached from its old leader's and
	 * appended to by its new leader's. Every one of them must hear of it. */
	for (struct session *s = f->sessions; s;) {
		struct session *next = s->next;
		int32_t i = part_index(s, p);
		if (i < 0 || s->parts[i].wait_offset < 0) {
			s = next;
			continue;
		}
		if (tl_log_durable_offset(p->log) >= s->parts[i].wait_offset ||
		    !tl_log_is_writable(p->log))
			s->parts[i].wait_offset = -1;
		if (s->parts[i].wait_offset < 0 && s->parts[i].detached) {
			int32_t leader = s->leader_id;
			part_remove(broker, s, i); /* may free @s */
			if (session_find(f, leader) != s) {
				s = next;
				continue;
			}
		}
		if (s->state == SESSION_DURABLE_WAIT)
			session_after_durable(broker, s);
		s = next;
	}
}

/* A response not here this long after replica.fetch.wait.max.ms is given up on. */
#define FETCH_RESPONSE_GRACE_MS 5000

/* Re-checks the waits of a session in DURABLE_WAIT: a durable end that moved without
 * reaching this session (or a log that failed) must not hold it for ever. */
static void session_recheck(struct tl_broker *broker, struct session *s)
{
	for (int32_t i = 0; i < s->part_count; i++) {
		struct session_part *sp = &s->parts[i];
		if (sp->wait_offset >= 0 &&
		    (!sp->partition->log ||
		     tl_log_durable_offset(sp->partition->log) >= sp->wait_offset ||
		     !tl_log_is_writable(sp->partition->log)))
			sp->wait_offset = -1;
	}
	session_after_durable(broker, s);
}

void tl_fetchers_tick(struct tl_broker *broker, int64_t now_ms)
{
	struct tl_fetchers *f = broker->fetchers;
	for (struct session *s = f->sessions; s; s = s->next) {
		if (s->state == SESSION_DURABLE_WAIT) {
			session_recheck(broker, s);
			continue;
		}
		if (s->state == SESSION_IN_FLIGHT &&
		    now_ms - s->sent_ms >
			    broker->config.replica_fetch_wait_max_ms + FETCH_RESPONSE_GRACE_MS) {
			tl_warn("fetcher: no answer from leader, reconnecting leader=%d",
				s->leader_id);
			session_disconnect(f, s, 0);
			continue;
		}
		if (s->state == SESSION_SECURING &&
		    now_ms - s->sent_ms > broker->config.ssl_handshake_timeout_ms) {
			tl_warn("fetcher: TLS handshake or SASL login with the leader not done in "
				"time, reconnecting leader=%d timeout_ms=%lld",
				s->leader_id, (long long)broker->config.ssl_handshake_timeout_ms);
			session_disconnect(f, s, broker->config.replica_fetch_backoff_ms);
			continue;
		}
		if (s->retry_at_ms > now_ms)
			continue;
		if (s->state == SESSION_IDLE && s->fd == -1 && s->part_count > 0)
			session_connect(broker, s);
		else if (s->state == SESSION_READY)
			session_send(broker, s);
	}
}
