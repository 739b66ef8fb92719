/* cluster.h - cluster mode: the metadata thread (etcd through broker/metastore.h) and
 * what the event loop does with its view. Off on a single node (no
 * metadata.etcd.endpoints): then nothing here runs and partitions are all local.
 *
 * Keys under metadata.etcd.prefix (default /tally):
 *   cluster_id                 the cluster id, created once by the first broker
 *   brokers/<id>               "host=H port=P rack=R listener.NAME=HOST:PORT ...", bound
 *                              to the broker's lease: host/port is the inter-broker
 *                              listener, then one advertised endpoint per served listener
 *   controller                 "<id>", bound to the controller's lease
 *   topics/<name>              "id=<hex> partitions=N replicas=1,2,3;2,3,1;...\nkey=value"
 *   partitions/<name>/<index>  "leader=1 leader_epoch=4 isr=1,2,3" (replication.h)
 *   acls                       every ACL, one a line (acl.h's text form), changed by
 *                              compare-and-swap on its mod_revision (issue #16)
 *   scram-credentials          every SCRAM credential, one a line (sasl.c's file form:
 *                              salt, iterations, StoredKey, ServerKey; never a password),
 *                              changed by compare-and-swap as acls (issue #16)
 *   client-quotas              every client quota entity, one a line (quota.h's text
 *                              form), changed by compare-and-swap as acls (issue #20)
 * A partition key is written only by compare-and-swap on its mod_revision: by the
 * controller (elections), by the partition's leader (ISR changes) and by a broker
 * moving its own leadership away (controlled shutdown). Its mod_revision is the
 * fencing token: a leader whose CAS fails has been replaced and learns so from the
 * next view.
 *
 * Threads. The metadata thread owns the store connection and blocks on it (every call
 * bounded by metadata.etcd.timeout.ms). It keeps a copy of every key under the prefix
 * (list once, then watch from the list's revision), and after each change publishes an
 * immutable view (struct tl_cluster_view) to the event loop through an eventfd. The
 * loop posts commands (ISR changes, topic creation and deletion, resigning
 * leadership) to a queue the thread drains; their outcome comes back as a new view.
 * If etcd goes away, the loop keeps the last view: leaders keep serving, ISR changes
 * and topic changes fail with a retriable error.
 * Invariants:
 * (1) Views are published in revision order; the loop applies only a newer one.
 * (2) A view is never changed after it is published; the loop frees the old one once
 *     it has applied the new. */
#ifndef TL_BROKER_CLUSTER_H
#define TL_BROKER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/messages.h"
#include "replication/replication.h"
#include "tally/error.h"

struct tl_broker;
struct tl_partition;
struct tl_cluster;

/* One advertised endpoint of a broker, by listener name (Kafka's endpoints map). */
#define TL_CLUSTER_ENDPOINTS_MAX 8 /* TL_CONFIG_LISTENERS_MAX */
struct tl_cluster_endpoint {
	char listener[32];
	char host[256];
	int32_t port;
};

struct tl_cluster_broker {
	int32_t id;
	char host[256]; /* the inter-broker listener's address (replication, txn markers) */
	int32_t port;
	char rack[TL_REPL_RACK_MAX];
	int32_t endpoint_count; /* 0: registered by a build that had no listener.NAME= */
	struct tl_cluster_endpoint endpoints[TL_CLUSTER_ENDPOINTS_MAX];
};

struct tl_cluster_partition {
	int32_t replica_count;
	int32_t replicas[TL_REPL_REPLICAS_MAX]; /* the first is the preferred leader */
	bool has_state;                         /* the controller has written its state */
	struct tl_repl_state state;
	int64_t revision; /* the state key's mod_revision: the CAS token */
};

struct tl_cluster_topic {
	char name[250];
	int64_t revision; /* its key's mod_revision */
	struct tl_uuid id;
	int32_t partition_count;
	struct tl_cluster_partition *partitions;
	char *configs; /* "key=value\n" lines, explicit topic configs; "" when none */
};

struct tl_cluster_view {
	int64_t revision;   /* the store revision it reflects */
	int32_t controller; /* -1 when none */
	char cluster_id[64];
	int32_t broker_count;
	struct tl_cluster_broker *brokers; /* by id */
	int32_t topic_count;
	struct tl_cluster_topic *topics; /* by name */
	char *acls;                      /* the acls key's text; "" when absent */
	char *scram;                     /* the scram-credentials key's text; "" when absent */
	char *quotas;                    /* the client-quotas key's text; "" when absent */
};

/* Connects to etcd, registers this broker, and starts the metadata thread. Returns
 * once the first view is applied, or an error naming the endpoints (etcd down at start
 * is fatal: the broker does not know what it hosts). Thread: the event loop's. */
tl_err tl_cluster_start(struct tl_broker *broker);
/* Controlled shutdown: moves leadership of every partition this broker leads to
 * another ISR member (if controlled.shutdown.enable), waits up to
 * controlled.shutdown.max.ms for it, then stops the thread and revokes the lease. */
void tl_cluster_stop(struct tl_broker *broker);
/* The eventfd the loop watches; when readable call tl_cluster_on_event(). */
int tl_cluster_fd(const struct tl_cluster *cluster);
void tl_cluster_on_event(struct tl_broker *broker);
/* Periodic work of the loop: ISR shrink and expand of partitions it leads. */
void tl_cluster_tick(struct tl_broker *broker, int64_t now_ms);

const struct tl_cluster_view *tl_cluster_view(const struct tl_cluster *cluster);
const struct tl_cluster_broker *tl_cluster_find_broker(const struct tl_cluster_view *view,
						       int32_t id);
struct tl_conn;
/* The address of @b for a client connected on @conn's listener, as Kafka answers
 * Metadata, FindCoordinator and DescribeCluster: this broker's own is the listener's
 * advertised address; another's is its endpoint of the same listener name. False when
 * @b has no such listener (the caller leaves it out, as Kafka does). A broker that
 * registered no endpoints (an older build) is given by its inter-broker address. */
bool tl_cluster_broker_address(const struct tl_cluster_broker *b, const struct tl_conn *conn,
			       const char **host_out, int32_t *port_out);
/* Controlled shutdown began: followers stop fetching, so they stay out of the ISR. */
bool tl_cluster_is_shutting_down(const struct tl_cluster *cluster);
/* Whether this broker can trust the leaderships in its view at @now_ms (monotonic):
 * its lease, renewed by a request sent less than broker.session.timeout.ms ago, and
 * after a lapse a view read once the lease was back. False while it may have been
 * replaced without knowing it: an isolated broker whose lease ran out still leads in
 * its last view until etcd answers again. Coordinators answer NOT_COORDINATOR then,
 * rather than serve reads of state a new coordinator may have moved past. True on a
 * single node (@cluster NULL). */
bool tl_cluster_leaderships_current(const struct tl_cluster *cluster, int64_t now_ms);

/* Asks the controller side to create a topic: the thread assigns replicas (rack-aware,
 * over the live brokers) and writes the topic key if absent. @done runs on the loop
 * thread with the outcome (TL_OK, TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR,
 * or a retriable REQUEST_TIMED_OUT when etcd cannot be reached) and a message. */
typedef void (*tl_cluster_done_fn)(void *ctx, tl_err err, const char *message);
tl_err tl_cluster_create_topic(struct tl_broker *broker, struct tl_str name, int32_t partitions,
			       int16_t replication_factor, const char *configs,
			       tl_cluster_done_fn done, void *ctx);
/* Changes the explicit configs of @topic in the metadata store: with @replace, @sets
 * ("key=value\n" lines) becomes the whole set; otherwise @sets are set and @deletes
 * ("key\n" lines) dropped, the other keys kept as the store has them. Every broker
 * applies the result from its view. Copies the strings. */
tl_err tl_cluster_alter_topic(struct tl_broker *broker, const char *topic, bool replace,
			      const char *sets, const char *deletes, tl_cluster_done_fn done,
			      void *ctx);
/* CreatePartitions: gives @topic @count partitions in the metadata store; the new ones
 * get @assignments' replicas ("1,2,3;2,3,1", one row a new partition) or, with "",
 * replicas assigned over the live brokers at the topic's replication factor. @done gets
 * TL_OK, INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICATION_FACTOR,
 * UNKNOWN_TOPIC_OR_PARTITION or a retriable REQUEST_TIMED_OUT. Copies the strings. */
tl_err tl_cluster_add_partitions(struct tl_broker *broker, const char *topic, int32_t count,
				 const char *assignments, tl_cluster_done_fn done, void *ctx);
/* Changes the cluster's client quotas: sets the keys of @sets' entities and drops those
 * of @removes' (both quota.h's text form; removes' values are ignored), merged into the
 * client-quotas key by compare-and-swap. Every broker applies the result from its view.
 * Copies the strings. */
tl_err tl_cluster_change_quotas(struct tl_broker *broker, const char *sets, const char *removes,
				tl_cluster_done_fn done, void *ctx);
tl_err tl_cluster_delete_topic(struct tl_broker *broker, struct tl_str name,
			       tl_cluster_done_fn done, void *ctx);
/* Changes the cluster's ACLs: adds the ACLs of @adds and removes those of @removes
 * (both acl.h's text form, exact ACLs), merged into the acls key by compare-and-swap so
 * that concurrent changes by other brokers are kept. Every broker applies the result
 * from its view. Copies the strings. */
tl_err tl_cluster_change_acls(struct tl_broker *broker, const char *adds, const char *removes,
			      tl_cluster_done_fn done, void *ctx);
/* Changes the cluster's SCRAM credentials: sets those of @upserts (sasl.c's file form)
 * -- all of them with @replace, else only those the store lacks (--add-scram) -- and
 * removes those of @deletes ("<user> <mechanism>" lines), merged into the key by
 * compare-and-swap. @done's message says "kept" when nothing needed writing. */
tl_err tl_cluster_change_scram(struct tl_broker *broker, const char *upserts, const char *deletes,
			       bool replace, tl_cluster_done_fn done, void *ctx);
/* Takes the next block of @size producer ids from the cluster-wide counter in etcd.
 * @done runs on the loop with TL_OK and the block's first id, or a retriable
 * COORDINATOR_LOAD_IN_PROGRESS (etcd away or contended) or KAFKA_STORAGE_ERROR. */
typedef void (*tl_cluster_block_fn)(void *ctx, tl_err err, int64_t start);
tl_err tl_cluster_allocate_pid_block(struct tl_broker *broker, int64_t size,
				     tl_cluster_block_fn done, void *ctx);
/* Calls @done (TL_OK) once the applied view has @topic with a leader for every
 * partition, or after @max_wait_ms (TL_OK too: the topic exists, leaders come later).
 * Copies @topic. */
void tl_cluster_await_topic(struct tl_broker *broker, const char *topic, int64_t max_wait_ms,
			    tl_cluster_done_fn done, void *ctx);
/* The same, once the view has at least @partitions partitions of @topic, each led
 * (CreatePartitions). */
void tl_cluster_await_partitions(struct tl_broker *broker, const char *topic, int32_t partitions,
				 int64_t max_wait_ms, tl_cluster_done_fn done, void *ctx);
void tl_cluster_awaits_tick(struct tl_broker *broker, int64_t now_ms);

/* ---- partition roles (replica.c) ---- */

/* The loop's side of a partition in cluster mode. */
enum tl_replica_role {
	TL_REPLICA_NONE = 0, /* not a replica here: no local log */
	TL_REPLICA_LEADER = 1,
	TL_REPLICA_FOLLOWER = 2,
	TL_REPLICA_OFFLINE = 3, /* a replica here, but the partition has no leader */
};

/* Applies a view to the partitions: opens logs of new local replicas, and makes this
 * broker leader or follower as the states say. */
void tl_replica_apply(struct tl_broker *broker, const struct tl_cluster_view *view);
/* A follower fetch reached the leader: records its progress, advances the high
 * watermark and maybe asks for an ISR expansion. */
tl_err tl_replica_on_follower_fetch(struct tl_broker *broker, struct tl_partition *p,
				    int32_t replica_id, int64_t fetch_offset, int64_t log_start);
/* A DeleteRecords of @p waiting until every live replica's log start reaches @offset
 * (Kafka's DelayedDeleteRecords). Lives in the request's arena. */
struct tl_delete_wait;
typedef void (*tl_delete_wait_fn)(struct tl_delete_wait *wait, tl_err err, int64_t low_watermark);
struct tl_delete_wait {
	int64_t offset;
	int64_t deadline_ms;
	tl_delete_wait_fn done; /* TL_OK with the low watermark, REQUEST_TIMED_OUT or
				 * NOT_LEADER_OR_FOLLOWER (leadership moved) */
	void *ctx;
	struct tl_delete_wait *next;
};
/* Leader: the smallest log start of its own log and of the live replicas that told it
 * theirs. */
int64_t tl_replica_low_watermark(struct tl_broker *broker, const struct tl_partition *p);
/* Parks @wait on @p (a partition this broker leads) until the low watermark reaches
 * wait->offset, its deadline passes, or this broker stops leading @p. */
void tl_replica_wait_low_watermark(struct tl_partition *p, struct tl_delete_wait *wait);
/* A client's request for @p (KIP-320): in cluster mode this broker must lead it; the
 * client's epoch (-1: any) must be the leader's (0 on a single node). Returns TL_OK,
 * NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH (the client knows a newer one) or
 * FENCED_LEADER_EPOCH (an older one: its metadata is stale). */
tl_err tl_replica_check_client(const struct tl_partition *p, int32_t current_leader_epoch);
/* Leader: the ISR as it stands is big enough for acks=all. */
bool tl_replica_has_min_isr(const struct tl_partition *p);
void tl_replica_close(struct tl_broker *broker, struct tl_partition *p);

/* ---- the follower's fetcher (fetcher.c) ---- */

struct tl_fetchers;
tl_err tl_fetchers_create(struct tl_broker *broker, struct tl_fetchers **out);
void tl_fetchers_destroy(struct tl_fetchers *fetchers);
int tl_fetchers_fd(const struct tl_fetchers *fetchers);
void tl_fetchers_on_event(struct tl_broker *broker);
/* Follows @p from its leader (p->leader_id), or stops following when it is not a
 * follower any more. */
void tl_fetchers_update(struct tl_broker *broker, struct tl_partition *p);
/* A follower's log became durable further: maybe send the next fetch. */
void tl_fetchers_on_durable(struct tl_broker *broker, struct tl_partition *p);
void tl_fetchers_tick(struct tl_broker *broker, int64_t now_ms);
/* @p's log is going away: drop it from every session. */
void tl_fetchers_forget(struct tl_broker *broker, struct tl_partition *p);
/* A leader asks the metadata thread for a new ISR (replica.c). */
void tl_cluster_post_isr(struct tl_broker *broker, const char *topic, int32_t partition,
			 int64_t revision, const struct tl_repl_state *state);
/* This broker's log of a partition failed: it gives up leading it, or leaves its ISR. */
void tl_cluster_post_resign_partition(struct tl_broker *broker, const char *topic,
				      int32_t partition);

#endif
