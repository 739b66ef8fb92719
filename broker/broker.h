/* broker.h - tallyd internals shared by the files of broker/.
 *
 * One event loop per broker (per core later): epoll for sockets, a tl_ring for disk,
 * whose completion fd sits in the same epoll set, and a signalfd. Nothing below is
 * global: partitions and connections hang off struct tl_broker so they can be sharded
 * per core later.
 *
 * Requests on a connection are answered in order (Kafka's rule), but pipelined: a
 * produce waiting for its fdatasync does not stop the next request from being read and
 * handled; its response simply waits its turn in the connection's FIFO.
 *
 * Lifetimes:
 * (1) A request owns its frame bytes and an arena for its decoded form. Produce batches
 *     point into the frame and are borrowed by the log until durable, so a request with
 *     pending log waiters outlives its connection (conn->refs counts them).
 * (2) A parked fetch sits on its partitions' watch lists until it completes, expires,
 *     or its connection closes. */
#ifndef TL_BROKER_BROKER_H
#define TL_BROKER_BROKER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/acl.h"
#include "broker/cluster.h"
#include "broker/config.h"
#include "broker/metrics.h"
#include "broker/peer.h"
#include "broker/quota.h"
#include "common/buf.h"
#include "common/histogram.h"
#include "common/ring.h"
#include "common/scram.h"
#include "common/tls.h"
#include "log/log.h"
#include "protocol/api.h"
#include "protocol/messages.h"
#include "protocol/records.h"
#include "protocol/validate.h"

#define TL_TOPIC_NAME_MAX   249
#define TL_DIRECTORY_ID_LEN 22 /* meta.properties' directory.id, as Kafka's Uuid in base64 */

struct tl_broker;
struct tl_conn;
struct tl_request;
struct tl_fetch_watch;
struct tl_workers;

/* One parked fetch waiting on one partition; lives in the request's arena. */
struct tl_fetch_watch {
	struct tl_request *req;
	struct tl_partition *partition;
	struct tl_fetch_watch *next, *prev; /* the partition's list */
	struct tl_fetch_watch *req_next;    /* the request's list */
};

struct tl_partition {
	struct tl_topic *topic;
	int32_t index;
	struct tl_log *log;             /* NULL in cluster mode when not a replica here */
	bool dirty;                     /* appended this turn; flush at the turn's end */
	struct tl_fetch_watch *watches; /* parked fetches waiting for data here */
	/* Cluster mode (replica.c); all zero on a single node. */
	enum tl_replica_role role;
	int32_t replica_count;
	int32_t replicas[TL_REPL_REPLICAS_MAX];
	bool has_state;
	struct tl_repl_state state;    /* as the newest applied view has it */
	int64_t state_revision;        /* its key's mod_revision */
	struct tl_repl_leader *leader; /* while LEADER */
	int64_t isr_change_ms;         /* when the ISR change in flight was asked, 0: none */
	int64_t isr_change_revision;   /* the state revision it was asked against */
	int64_t leader_high_watermark; /* FOLLOWER: the leader's, from its last response */
	/* LEADER: each replica's log start as its last fetch said (-1: not known yet), by
	 * position in replicas; DeleteRecords waits on the smallest (Kafka's low
	 * watermark). */
	int64_t replica_log_start[TL_REPL_REPLICAS_MAX];
	struct tl_delete_wait *delete_waits; /* DeleteRecords waiting for the followers */
};

struct tl_topic {
	char name[TL_TOPIC_NAME_MAX + 1];
	struct tl_uuid id;
	int32_t partition_count;
	struct tl_partition *partitions;
	struct tl_topic_config config;
	bool internal;
	bool cluster; /* from the cluster view (cluster mode), not a local topic file */
	uint64_t cluster_configs_hash; /* of the view's configs text last applied */
	struct tl_topic_metrics metrics;
	struct tl_broker *broker;
	struct tl_topic *next; /* hash chain */
};

#define TL_TOPIC_BUCKETS        1024
#define TL_TOPIC_PARTITIONS_MAX 100000 /* per topic, as Kafka's CreateTopics limit */

struct tl_topics {
	struct tl_topic *buckets[TL_TOPIC_BUCKETS];
	int32_t count;
};

enum tl_request_state {
	TL_REQUEST_WORKING = 0, /* being handled or waiting for the log / data */
	TL_REQUEST_DONE = 1,    /* response encoded, waiting its turn to be sent */
	TL_REQUEST_SILENT = 2,  /* finished, no response (acks=0) */
	TL_REQUEST_SENT = 3,    /* answered before its log waits ended (a Produce past its
				 * timeout_ms): off the FIFO, freed when the last one ends */
};

/* Kafka's RequestMetrics for one API key, in microseconds. For an answered request
 * total = queue + local + remote + response_queue + response_send (+ a KIP-219 hold,
 * which is throttle time); a request with no response (acks=0) counts its response
 * queue time up to its turn in the connection's FIFO and a send time of 0. */
struct tl_request_metrics {
	struct tl_hist total;          /* TotalTimeMs: frame in to its last byte written */
	struct tl_hist queue;          /* RequestQueueTimeMs: frame in to handler start */
	struct tl_hist local;          /* LocalTimeMs: handler start to DONE, less remote */
	struct tl_hist remote;         /* RemoteTimeMs: waiting on the ISR, or in max_wait */
	struct tl_hist throttle;       /* ThrottleTimeMs: quota throttle applied */
	struct tl_hist response_queue; /* ResponseQueueTimeMs: DONE to its first write */
	struct tl_hist response_send;  /* ResponseSendTimeMs: first write to last byte */
};

struct tl_request {
	struct tl_conn *conn;
	struct tl_request *next; /* connection FIFO */
	uint8_t *frame;          /* the request bytes after the size prefix; owned */
	uint32_t frame_len;
	struct tl_request_header header;
	struct tl_arena arena;  /* decoded request and handler state */
	struct tl_buf response; /* size prefix + header + body, file spans included */
	enum tl_request_state state;
	int32_t waits;    /* outstanding log waiters */
	void *state_data; /* handler state (in the arena) */
	/* Set while a handler keeps the request waiting on something other than the log
	 * (a long-poll, a group rebalance): called if the connection closes first, to
	 * unlink it from wherever it waits. The request is freed right after. */
	void (*on_abandon)(struct tl_request *req);
	int64_t deadline_ms; /* parked fetch: when to answer anyway; 0 = not parked */
	struct tl_request *parked_next, *parked_prev;
	uint64_t wake_gen; /* the partition wake-up that last retried this fetch */
	/* Request times (conn.c, request_split(); Kafka's RequestMetrics), monotonic ns.
	 * received <= started <= done <= send_started <= last byte written; remote_ns is
	 * the part of started..done spent waiting on others (the ISR, a fetch's max_wait). */
	int64_t received_ns;     /* the read that brought the frame's last byte returned */
	int64_t started_ns;      /* the handler was called */
	int64_t remote_since_ns; /* waiting on others since then; 0 when not waiting */
	int64_t remote_ns;       /* time waited on others so far */
	int64_t done_ns;         /* the response was encoded (DONE), or SILENT was decided */
	int64_t send_started_ns; /* the first write of its response was tried; 0 not yet */
	int64_t throttle_ms;     /* quota throttle applied to this request (ThrottleTimeMs) */
	int64_t hold_until_ms;   /* quota: an old client's response waits until then (KIP-219) */
	/* A Metadata request that arrived behind unanswered requests of its connection:
	 * dispatched only once it heads the FIFO (conn.c, invariant 6). */
	bool deferred;
};

/* SCRAM credentials of one user (sasl.c): index mechanism - 1. */
#define TL_PRINCIPAL_MAX TL_ACL_NAME_MAX /* bytes of a principal, as an ACL's may be */
#define TL_SASL_USER_MAX 120 /* bytes of a user name; "User:" + it fits tl_conn.principal */
struct tl_sasl_user {
	char name[TL_SASL_USER_MAX + 1];
	bool has[2];
	struct tl_scram_credential cred[2];
};
struct tl_sasl_users {
	struct tl_sasl_user *users;
	int32_t count;
	int32_t cap;
};
struct tl_sasl_exchange;
/* A listener tallyd serves (listeners=, all but KRaft controller listeners): its
 * socket, the address Metadata answers to clients that connected on it (as Kafka
 * does), and on SSL and SASL_SSL its TLS context. */
struct tl_broker_listener {
	const struct tl_listener *config; /* in broker->config.listener_list */
	enum tl_security_protocol security_protocol;
	int fd;
	char advertised_host[256];
	int32_t advertised_port;
	struct ssl_ctx_st *ssl_ctx; /* NULL unless tl_security_protocol_is_tls */
	bool ktls_logged;           /* "kTLS on/off" said once for this listener */
	bool ktls_active;           /* the first TLS session's sends went through kTLS */
};

/* Connections from one IP address (max.connections.per.ip); freed at zero. */
struct tl_conn_ip {
	struct in6_addr addr; /* IPv4 as v4-mapped */
	int32_t count;
	struct tl_conn_ip *next;
};

#define TL_CONN_IP_BUCKETS 4096

/* TLS scratch: the user-space fallback of sendfile reads this much of a file span per
 * SSL_write (one TLS record). */
#define TL_TLS_SENDFILE_SCRATCH_BYTES (16 * 1024)

struct tl_conn {
	struct tl_broker *broker;
	int fd;
	char peer[64];
	/* Transport: the listener it came in on and its protocol (SASL_* listeners require
	 * SASL before any other request: the SASL code checks security_protocol), and the
	 * byte stream, TLS on SSL and SASL_SSL listeners. */
	struct tl_broker_listener *listener; /* NULL only for conns made by tests */
	enum tl_security_protocol security_protocol;
	struct tl_transport transport;
	bool tls_handshaking;        /* TLS handshake not finished: no request is read yet */
	bool tls_read_wants_write;   /* a TLS read waits for the socket to take a write */
	int64_t accepted_ms;         /* monotonic; ssl.handshake.timeout.ms counts from it */
	int64_t read_ns;             /* the last read that returned bytes ended then */
	bool read_fresh;             /* no frame of that read dispatched yet (its first's start) */
	int64_t frame_started_ms;    /* a frame is partly in since then; 0 none */
	struct tl_conn_ip *ip_count; /* max.connections.per.ip bookkeeping */
	uint8_t *rbuf;               /* bytes read but not yet framed */
	uint32_t rlen;
	uint32_t rcap;
	struct tl_request *reading; /* large frame being read straight into its buffer */
	uint32_t reading_have;
	struct tl_request *head, *tail; /* in-order requests, answered from the head */
	int32_t queued;                 /* requests in the FIFO */
	int64_t sent;                   /* bytes of head's response already written */
	int32_t refs; /* FIFO requests + requests detached with pending waits + 1 while open */
	bool closed;
	bool want_write;  /* EPOLLOUT armed */
	bool read_paused; /* queue full: stop reading until it drains */
	/* Unpaused by a response sent outside its own event (a disk completion): the
	 * frames already read wait in rbuf, which no EPOLLIN will report, so the loop parses
	 * them at the end of its turn (broker->resume_head, tl_conn_resume_due). */
	bool resume_queued;
	struct tl_conn *resume_next;
	bool throttled;       /* quota: muted (not read) until throttled_until_ms */
	bool reads_suspended; /* not read until tl_conn_resume_reads: a PLAIN login runs */
	int64_t throttled_until_ms;
	struct tl_conn *throttle_prev, *throttle_next; /* broker->throttled */
	int64_t last_active_ms;
	/* KafkaPrincipal the authorizer checks: "User:ANONYMOUS" until SASL or a TLS
	 * client certificate authenticates the connection (issue #16); with a client
	 * certificate "User:" + its subject DN in RFC 2253 form ("User:CN=app,O=Org"), as
	 * long as an ACL's principal may be; a longer one is refused, never anonymous. */
	char principal[TL_PRINCIPAL_MAX + 1];
	char peer_ip[INET6_ADDRSTRLEN]; /* the host an ACL names */
	/* SASL (sasl.c): where the exchange stands, the mechanism the handshake chose
	 * (TL_SASL_MECHANISM_*), and the session's end (KIP-368; 0 = none). */
	bool sasl_authenticated;
	uint8_t sasl_step;
	uint32_t sasl_mechanism;
	int64_t sasl_expiry_ms;
	struct tl_sasl_exchange *sasl; /* a SCRAM exchange in progress; owned */
	bool close_when_flushed;       /* a failed authentication: close once answered */
	struct tl_conn *prev, *next;
};

/* The authorizer (acl_admin.c, issue #16). */
struct tl_authorizer {
	bool enabled;               /* authorizer.class.name names one */
	struct tl_acls acls;        /* as the .tally-meta/acls file has them */
	int64_t denied_logged_ms;   /* denial log lines: start of the current second */
	int32_t denied_logged;      /* lines in that second */
	uint64_t denied_suppressed; /* not logged since the last line (rate limit) */
	uint64_t denied_total;
	char *view_text; /* cluster mode: the view's acls text last applied */
};

#define TL_BROKER_API_SLOTS 68 /* API keys 0..67 are timed */

/* The secret unknown users' made-up SCRAM credentials derive from (sasl.c). */
#define TL_SASL_MOCK_SECRET_BYTES 32
#define TL_SASL_MOCK_SECRET_TEXT  48

struct tl_broker {
	struct tl_config config;
	char advertised_host[256];
	int advertised_port;
	int epoll_fd;
	struct tl_broker_listener listeners[TL_CONFIG_LISTENERS_MAX];
	int32_t listener_count;
	int signal_fd;
	struct tl_ring *ring;
	struct tl_topics topics;
	char data_dir[TL_CONFIG_STR_MAX];
	char directory_id[TL_DIRECTORY_ID_LEN + 1]; /* meta.properties' directory.id */
	struct tl_conn *conns;
	int32_t conn_count;
	struct tl_partition **dirty; /* partitions appended to this turn */
	int32_t dirty_count;
	int32_t dirty_cap;
	struct tl_request *parked; /* fetches in long-poll */
	/* Produce requests waiting for the ISR, by deadline (their timeout_ms); produce.c */
	struct tl_produce_state *produce_timers;
	struct tl_produce_state *produce_timers_tail;
	struct tl_groups *groups;     /* consumer group coordinator */
	struct tl_txns *txns;         /* transaction coordinator */
	struct tl_cluster *cluster;   /* cluster mode: metadata thread and view; else NULL */
	struct tl_fetchers *fetchers; /* cluster mode: replica fetchers; else NULL */
	struct tl_markers *markers;   /* cluster mode: txn markers to other brokers; else NULL */
	/* Cluster mode: how the fetchers and the marker sender log in to other brokers. */
	struct tl_peer_security peer_security;
	int64_t pid_next;        /* next producer id to hand out */
	int64_t pid_block_end;   /* end of the durable block; pid_next < pid_block_end */
	int64_t pid_spare_start; /* cluster mode: the next block, asked ahead; -1 none */
	bool pid_block_asked;    /* cluster mode: a block request is in flight */
	uint64_t random_state;   /* xorshift64*, for test faults */
	bool test_isr_echo_held; /* test.fault.isr.echo.ignore.ms left a state unapplied */
	int64_t next_tick_ms;
	bool stopping;
	uint64_t topic_id_seed;
	/* Counters (exported later through metrics). */
	uint64_t requests_total;
	uint64_t produce_timeouts; /* Produce requests answered REQUEST_TIMED_OUT (metrics) */
	/* Request times by API key (Kafka's RequestMetrics); allocated on an API's first
	 * request, total time logged at shutdown. The split past total is kept only while
	 * metrics_on. */
	struct tl_request_metrics *request_metrics[TL_BROKER_API_SLOTS];
	/* metrics.listener is set: the hot-path counting (request time split, topic
	 * counters, error codes, batch sizes) is done. Unset, only what the shutdown log
	 * and the broker itself need is kept. Fixed at start-up. */
	bool metrics_on;
	/* tl_response_end's DONE reading while it calls tl_request_finished, else 0: a flush
	 * run from there starts the send then (conn.c, tl_conn_flush). */
	int64_t fresh_ns;
	/* metrics.c: a split family's histogram with its zeros, while it is rendered */
	struct tl_hist metrics_scratch_hist;
	struct tl_metrics metrics; /* the rest of /metrics' counters */
	int diag_level_saved;      /* log level to go back to when SIGUSR1 turns debug off */
	int64_t slow_logged_ms;    /* log.slow.request.ms: start of the current second */
	int32_t slow_logged;       /* slow requests logged in that second */
	uint64_t slow_suppressed;  /* slow requests not logged (over the rate limit) */
	struct tl_metrics_server *metrics_server; /* metrics.listener; NULL when unset */
	uint64_t malformed_total;
	uint64_t sasl_failed_total;      /* failed SASL authentications */
	uint64_t sasl_auth_total;        /* first logins of connections */
	uint64_t sasl_reauth_total;      /* re-authentications (KIP-368) */
	uint64_t sasl_expired_total;     /* connections closed for a session that ended */
	struct tl_sasl_users sasl_users; /* SCRAM credentials (sasl.c) */
	uint8_t sasl_mock_secret[TL_SASL_MOCK_SECRET_BYTES]; /* keys the credentials shown
							      * for unknown users */
	struct tl_workers *sasl_workers; /* PBKDF2 of PLAIN logins, off the loop; or NULL */
	char *sasl_view_text;            /* cluster mode: the store's text last applied */
	uint64_t connections_refused_total;
	uint64_t tls_handshake_failed_total;
	int64_t tls_fail_logged_ms; /* handshake failure lines: start of the current second */
	int32_t tls_fail_logged;    /* lines in that second */
	/* Connections per peer IP, for max.connections.per.ip. */
	struct tl_conn_ip *conn_ips[TL_CONN_IP_BUCKETS];
	/* The sendfile fallback under user-space TLS: one loop, one buffer (re-read on retry). */
	uint8_t tls_scratch[TL_TLS_SENDFILE_SCRATCH_BYTES];
	/* Client quotas (quota.h) and the connections they mute. */
	struct tl_quotas quotas;
	struct tl_conn *throttled;
	struct tl_conn *resume_head; /* connections to parse on (tl_conn.resume_queued) */
	struct tl_authorizer authz;
	/* Produce's record validation: decompression contexts and buffer, reused. */
	struct tl_batch_scratch batch_scratch;
	/* Produce's recompression to a topic's compression.type: the batch being built
	 * and zstd's context, reused (made on first use). */
	struct tl_buf recompress_buf;
	void *recompress_zstd;
};

/* broker.c */
/* A non-blocking IPv4 TCP listener on @host ("" = any) and @port (0 = any free one):
 * its fd, and the address it bound. TL_ERR_INVALID when @host does not resolve,
 * TL_ERR_IO with errno set when socket, bind or listen fails. */
struct sockaddr_in;
tl_err tl_tcp_listen(const char *host, int port, int backlog, int *fd_out,
		     struct sockaddr_in *bound_out);
tl_err tl_broker_init(struct tl_broker *broker, const struct tl_config *config);
tl_err tl_broker_run(struct tl_broker *broker);
void tl_broker_deinit(struct tl_broker *broker);
void tl_broker_mark_dirty(struct tl_broker *broker, struct tl_partition *partition);
/* A uniform number in [0, 1) from the broker's own generator. */
double tl_broker_random(struct tl_broker *broker);
/* Runs one turn of the loop, waiting at most @max_wait_ms (controlled shutdown keeps
 * serving while leadership moves away). */
tl_err tl_broker_poll(struct tl_broker *broker, int max_wait_ms);

/* conn.c */
void tl_conn_accept(struct tl_broker *broker, struct tl_broker_listener *listener);
void tl_conn_on_event(struct tl_conn *conn, uint32_t events);
/* The address Metadata and FindCoordinator give a client on @conn: that of the listener
 * it connected on, as Kafka answers. */
void tl_conn_advertised(const struct tl_conn *conn, const char **host_out, int32_t *port_out);
/* Keep a connection's memory valid (not its socket) across an epoll batch. */
void tl_conn_hold(struct tl_conn *conn);
void tl_conn_release(struct tl_conn *conn);
void tl_conn_close(struct tl_conn *conn, const char *why);
/* Called when a request reaches DONE or SILENT: sends what can be sent. */
void tl_request_finished(struct tl_request *req);
/* One of @req's waits (req->waits) ended: true when it was the last and the response
 * is due now; when the client has gone meanwhile, finishes the request without one
 * and returns false. */
bool tl_request_wait_end(struct tl_request *req);
/* @req starts (ends) waiting on others: the ISR for a replicated produce, new data for
 * a fetch in long-poll (Kafka's RemoteTimeMs). Pairs; a request may wait several times. */
void tl_request_remote_begin(struct tl_request *req);
void tl_request_remote_end(struct tl_request *req);
void tl_conn_flush(struct tl_conn *conn);
/* Closes idle connections (connections.max.idle.ms), TLS handshakes past
 * ssl.handshake.timeout.ms and frames begun longer than socket.request.read.timeout.ms. */
void tl_conn_close_idle(struct tl_broker *broker, int64_t now_ms);
/* Stops reading requests from @conn until tl_conn_resume_reads (a no-op once it is closed),
 * which reads on from the bytes already in. */
void tl_conn_suspend_reads(struct tl_conn *conn);
void tl_conn_resume_reads(struct tl_conn *conn);
/* Quota: mutes @conn (no reads) until @until_ms; @req's response, if @hold, waits too. */
void tl_conn_throttle(struct tl_conn *conn, struct tl_request *req, int64_t until_ms, bool hold);
/* When the next muted connection is due, or INT64_MAX. */
int64_t tl_conn_next_unthrottle(const struct tl_broker *broker);
/* Unmutes the connections due at @now_ms: reads resume, held responses go. */
void tl_conn_unthrottle_due(struct tl_broker *broker, int64_t now_ms);
/* Parses on the connections whose pause lifted outside their own event. */
void tl_conn_resume_due(struct tl_broker *broker);

/* dispatch.c */
void tl_dispatch(struct tl_request *req);
/* Starts the response: size placeholder and response header. */
void tl_response_begin(struct tl_request *req);
/* Fills in the size and marks the request DONE. */
void tl_response_end(struct tl_request *req);

/* topics.c */
tl_err tl_topics_load(struct tl_broker *broker);
void tl_topics_close_all(struct tl_broker *broker);
struct tl_topic *tl_topic_find(struct tl_broker *broker, struct tl_str name);
struct tl_topic *tl_topic_find_id(struct tl_broker *broker, const struct tl_uuid *id);
struct tl_partition *tl_partition_find(struct tl_broker *broker, struct tl_str topic,
				       int32_t partition);
/* Checks a topic name as Kafka does; returns NULL or a reason. */
const char *tl_topic_name_invalid(struct tl_str name);
/* Creates a topic durably. @config may be NULL (broker defaults). */
tl_err tl_topic_create(struct tl_broker *broker, struct tl_str name, int32_t partitions,
		       const struct tl_topic_config *config, struct tl_topic **topic_out, char *why,
		       size_t why_size);
tl_err tl_topic_delete(struct tl_broker *broker, struct tl_topic *topic);
/* Single node: raises @topic's partition count to @count durably (new logs first, then
 * the metadata file). INVALID_PARTITIONS (with @why) unless @count is larger. */
tl_err tl_topic_add_partitions(struct tl_broker *broker, struct tl_topic *topic, int32_t count,
			       char *why, size_t why_size);
/* Single node: replaces @topic's configuration durably, then applies it to the open
 * logs (segment and retention settings take effect without a restart). */
tl_err tl_topic_set_config(struct tl_broker *broker, struct tl_topic *topic,
			   const struct tl_topic_config *config);
void tl_topics_tick(struct tl_broker *broker, int64_t now_ms);
/* Cluster mode: a topic as the view has it, with no local file and no logs open yet;
 * @configs is "key=value\n" lines. NULL on failure (logged). */
/* Cluster mode: applies the view's explicit configs of @topic ("key=value" lines) when
 * they differ from those last applied, as AlterConfigs on one node does. */
void tl_topic_apply_cluster_configs(struct tl_broker *broker, struct tl_topic *topic,
				    const char *configs);
struct tl_topic *tl_topic_attach(struct tl_broker *broker, const char *name,
				 const struct tl_uuid *id, int32_t partitions, const char *configs);
/* Cluster mode: the view has more partitions of @topic (CreatePartitions): adds them,
 * without logs (replica.c opens those this broker hosts). TL_ERR_NOMEM when they cannot
 * be mapped. */
tl_err tl_topic_grow(struct tl_topic *topic, int32_t partitions);
/* Cluster mode: drops a topic and removes its local logs (deleted in the view). */
void tl_topic_remove_local(struct tl_broker *broker, struct tl_topic *topic);
/* Opens (creating) the local log of @p, as tl_topic_create does for every partition. */
tl_err tl_partition_open_log(struct tl_broker *broker, struct tl_partition *p);
/* Removes the local log of @p and its files. */
void tl_partition_remove_log(struct tl_broker *broker, struct tl_partition *p);
/* Cluster mode: the partition, or NULL when not hosted here (no local log). */
struct tl_partition *tl_partition_find_any(struct tl_broker *broker, struct tl_str topic,
					   int32_t partition);
/* Replaces @dir/@name with @text atomically and durably (temp file with @mode, fsync,
 * rename, fsync of @dir), as the topic metadata files are written. */
tl_err tl_broker_write_file_atomic(const char *dir, const char *name, const char *text,
				   mode_t mode);
/* Reads @path whole into *@text_out (malloc'd, NUL-terminated, *@len_out bytes); a missing
 * file is TL_OK with *@text_out NULL. Larger than @max_bytes or unreadable: TL_ERR_IO,
 * logged (crit) under @who ("acl", "quota", "sasl"). */
tl_err tl_broker_read_file(const char *path, size_t max_bytes, const char *who, char **text_out,
			   size_t *len_out);
/* Iteration over all topics, in no particular order. */
struct tl_topic *tl_topic_next(struct tl_broker *broker, struct tl_topic *prev);

/* produce.c, fetch.c, admin.c: handlers */
void tl_handle_produce(struct tl_request *req, struct tl_cursor *body);
/* Answers REQUEST_TIMED_OUT for the partitions of every Produce whose timeout_ms ran out
 * at @now_ms while waiting for the ISR (Kafka's DelayedProduce expiry). */
void tl_produce_expire(struct tl_broker *broker, int64_t now_ms);
/* The earliest such deadline, or INT64_MAX. */
int64_t tl_produce_next_deadline(const struct tl_broker *broker);
void tl_handle_fetch(struct tl_request *req, struct tl_cursor *body);
void tl_handle_offset_for_leader_epoch(struct tl_request *req, struct tl_cursor *body);
void tl_handle_list_offsets(struct tl_request *req, struct tl_cursor *body);
void tl_handle_metadata(struct tl_request *req, struct tl_cursor *body);
void tl_handle_create_topics(struct tl_request *req, struct tl_cursor *body);
void tl_handle_delete_topics(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_configs(struct tl_request *req, struct tl_cursor *body);
/* topic_admin.c */
void tl_handle_create_partitions(struct tl_request *req, struct tl_cursor *body);
void tl_handle_alter_configs(struct tl_request *req, struct tl_cursor *body);
void tl_handle_incremental_alter_configs(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_cluster(struct tl_request *req, struct tl_cursor *body);
void tl_handle_delete_records(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_log_dirs(struct tl_request *req, struct tl_cursor *body);

/* quota_admin.c */
/* Loads the persisted quotas (single node); TL_OK when there are none. */
tl_err tl_quotas_load(struct tl_broker *broker);
/* Cluster mode: makes @text (the view's client-quotas key) the quotas, when it changed;
 * the sensors and their rates stay. */
void tl_quota_apply_view(struct tl_broker *broker, const char *text);
/* Records @bytes of @req's client against @key's quota; over it, mutes the connection
 * (and holds the response of clients older than KIP-219) and returns throttle_time_ms.
 * @refund: a throttled request is answered empty, so its bytes are taken back. */
int32_t tl_quota_charge(struct tl_request *req, enum tl_quota_key key, int64_t bytes, bool refund);
/* The most bytes one response may carry without going over @key's quota on its own
 * (Kafka's getMaxValueInQuotaWindow, which caps fetch sizes); INT64_MAX without one. */
int64_t tl_quota_window_bytes(struct tl_request *req, enum tl_quota_key key);
void tl_handle_describe_client_quotas(struct tl_request *req, struct tl_cursor *body);
void tl_handle_alter_client_quotas(struct tl_request *req, struct tl_cursor *body);

/* acl_admin.c: the authorizer */
/* Turns the authorizer on per the configuration and loads the ACL file (single node). */
tl_err tl_acl_start(struct tl_broker *broker);
void tl_acl_stop(struct tl_broker *broker);
/* Cluster mode: makes @text (the view's acls key) the ACLs, when it changed. */
void tl_acl_apply_view(struct tl_broker *broker, const char *text);
/* TEST ONLY (tally.test.principal.from.client.id): takes @req's principal from its
 * client.id when it starts with "User:". Called by tl_dispatch before every handler. */
void tl_acl_request_principal(struct tl_request *req);
/* May @req's principal (from its host) do @op on resource @type/@name? Always true with
 * no authorizer or for a super user. tl_authorize logs a denial (rate-limited) at info;
 * tl_authorize_quiet does not (Metadata filtering unnamed topics, as Kafka). */
bool tl_authorize(struct tl_request *req, int8_t op, int8_t type, struct tl_str name);
bool tl_authorize_quiet(struct tl_request *req, int8_t op, int8_t type, struct tl_str name);
/* @op on the Cluster resource ("kafka-cluster"). */
bool tl_authorize_cluster(struct tl_request *req, int8_t op);
/* @op on some resource of @type (Kafka's authorizeByResourceType). */
bool tl_authorize_any_of_type(struct tl_request *req, int8_t op, int8_t type);
/* The bit field (1 << operation) of the operations @req's principal may do on
 * @type/@name, among those Kafka supports for @type: the authorized_operations of
 * Metadata, DescribeCluster and DescribeGroups, when the client asks. */
int32_t tl_authorized_operations(struct tl_request *req, int8_t type, struct tl_str name);
static inline bool tl_authorize_topic(struct tl_request *req, int8_t op, struct tl_str topic)
{
	return tl_authorize(req, op, TL_ACL_RESOURCE_TOPIC, topic);
}
static inline bool tl_authorize_group(struct tl_request *req, int8_t op, struct tl_str group)
{
	return tl_authorize(req, op, TL_ACL_RESOURCE_GROUP, group);
}
static inline bool tl_authorize_txn(struct tl_request *req, int8_t op, struct tl_str txn_id)
{
	return tl_authorize(req, op, TL_ACL_RESOURCE_TRANSACTIONAL_ID, txn_id);
}
void tl_handle_describe_acls(struct tl_request *req, struct tl_cursor *body);
void tl_handle_create_acls(struct tl_request *req, struct tl_cursor *body);
void tl_handle_delete_acls(struct tl_request *req, struct tl_cursor *body);
/* sasl.c: SASL authentication and the SCRAM credential store (issue #16) */
/* Whether @conn must authenticate with SASL before anything but ApiVersions,
 * SaslHandshake and SaslAuthenticate: its listener's protocol is SASL_*. The one place
 * that decides it (per-connection listeners will re-point it). */
bool tl_conn_requires_sasl(const struct tl_conn *conn);
/* Largest frame @conn may send now: sasl.server.max.receive.size until authenticated. */
uint32_t tl_sasl_frame_max(const struct tl_conn *conn);
/* Dispatch's gate: true when @req may be served; otherwise closes the connection
 * (frees @req) and returns false. */
bool tl_sasl_allows(struct tl_request *req);
void tl_sasl_conn_free(struct tl_conn *conn);
/* The unknown-user secret as stored (.tally-meta, the metadata store): base64 and a
 * newline, TL_SASL_MOCK_SECRET_TEXT bytes with the NUL at most. */
void tl_sasl_mock_secret_format(const uint8_t *secret, char *out);
bool tl_sasl_mock_secret_parse(const char *text, size_t len, uint8_t *secret);
/* Loads .tally-meta/scram-credentials (none is fine). */
tl_err tl_sasl_load(struct tl_broker *broker);
/* With PLAIN enabled, starts the threads that check PLAIN passwords
 * (broker->sasl_workers; the loop watches tl_workers_fd). Stop calls back every login
 * still pending (the connections are closed by then); NULL-safe, idempotent. */
tl_err tl_sasl_workers_start(struct tl_broker *broker);
void tl_sasl_workers_stop(struct tl_broker *broker);
void tl_sasl_deinit(struct tl_broker *broker);
/* tallyd --add-scram 'SCRAM-SHA-512=[name=alice,password=secret(,iterations=N)]': sets
 * and stores one credential (kafka-storage's format). */
tl_err tl_sasl_add_scram(struct tl_broker *broker, const char *spec, char *why, size_t why_size);
/* The credentials file's text, and back (exposed for tests). */
char *tl_sasl_users_format(const struct tl_sasl_users *users);
tl_err tl_sasl_users_parse(struct tl_sasl_users *users, char *text, int32_t *bad_line_out);
/* Cluster mode (issue #16): the credentials live in the metadata store, key
 * "scram-credentials" (cluster.h), in the file's text form. These run on any thread. */
void tl_sasl_users_deinit(struct tl_sasl_users *users);
/* Copies every credential of @from into @users: all of them with @replace, else only
 * those (user, mechanism) @users lacks. Returns the number copied, -1 out of memory. */
int32_t tl_sasl_users_merge(struct tl_sasl_users *users, const struct tl_sasl_users *from,
			    bool replace);
/* Removes the credentials named by @text's "<user> <mechanism>" lines; false if malformed. */
bool tl_sasl_users_remove_lines(struct tl_sasl_users *users, const char *text);
/* Every broker applies the store's text from its view (the loop's thread). */
void tl_sasl_apply_view(struct tl_broker *broker, const char *text);
void tl_handle_sasl_handshake(struct tl_request *req, struct tl_cursor *body);
void tl_handle_sasl_authenticate(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_user_scram_credentials(struct tl_request *req, struct tl_cursor *body);
void tl_handle_alter_user_scram_credentials(struct tl_request *req, struct tl_cursor *body);

/* producer_ids.c */
/* A fresh producer id: TL_OK, TL_ERR_COORDINATOR_LOAD_IN_PROGRESS (cluster mode, the
 * next block is on its way: retriable) or a storage error. */
tl_err tl_producer_id_allocate(struct tl_broker *broker, int64_t *pid_out);
/* After tl_cluster_start: asks for the first block in cluster mode. */
void tl_producer_ids_start(struct tl_broker *broker);
void tl_handle_init_producer_id(struct tl_request *req, struct tl_cursor *body);

/* fetch.c: long-poll bookkeeping */
void tl_fetch_expire(struct tl_broker *broker, int64_t now_ms);
int64_t tl_fetch_next_deadline(const struct tl_broker *broker);
/* Removes a parked fetch from every list (its connection is closing). */
void tl_fetch_unpark(struct tl_request *req);
/* Re-runs a parked fetch after unparking it (data arrived, or its topic went away). */
void tl_fetch_retry(struct tl_request *req);
/* Log listener: a partition's high watermark moved. */
void tl_fetch_on_data(void *ctx, struct tl_log *log);

/* request lifetime (conn.c) */
void tl_request_free(struct tl_request *req);
/* A request body that does not decode: one diag line, then the connection closes (as
 * Kafka does). Frees @req unless it has pending log waits. */
void tl_request_reject(struct tl_request *req, const char *what);

#endif
