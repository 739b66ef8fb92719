/* admin.h - libtally admin client for a Kafka-compatible cluster (tallyd or Kafka):
 * topics (create, delete, list, describe, add partitions), partition offsets, the
 * cluster's brokers, consumer groups (list, describe, committed offsets, commit, delete)
 * and transactions (list, describe, producers of a partition, abort).
 *
 * Results that point to strings live in one allocation each, freed by the matching
 * *_destroy call.
 *
 * Threads: an admin client is used by one thread at a time; every call blocks up to its
 * @timeout_ms and does its own I/O. Configuration keys: bootstrap.servers, client.id,
 * request.timeout.ms, reconnect.backoff.ms, allow.auto.create.topics (false; true lets
 * tl_admin_describe_topics ask the broker to auto-create missing topics, as a producer's
 * metadata request does). Unknown keys are errors.
 *
 * Routing, as Kafka's AdminClient: topic changes (create, delete, add partitions, alter
 * configs) go to the controller; a try there that gets no answer (the broker died or
 * cannot be reached: a try waits at most 3 s for its connection) or NOT_CONTROLLER
 * asks metadata again from another broker and goes to the controller it names, until
 * @timeout_ms. ACL, client quota and SCRAM credential writes go to any broker that
 * answers. */
#ifndef TALLY_ADMIN_H
#define TALLY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tl_admin;
struct tl_admin_conf;

/* A topic configuration for tl_admin_create_topic ("retention.ms", "604800000"). */
struct tl_admin_config_entry {
	const char *name;
	const char *value;
};

struct tl_admin_partition_info {
	int32_t partition;
	tl_err err;
	int32_t leader; /* node id, -1 = none */
	int32_t leader_epoch;
	int32_t replica_count;
	const int32_t *replicas;
	int32_t isr_count;
	const int32_t *isr;
};

struct tl_admin_topic_info {
	const char *name;
	tl_err err; /* TL_ERR_UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist */
	bool is_internal;
	int32_t partition_count;
	const struct tl_admin_partition_info *partitions; /* by partition index */
};

/* Result of list/describe; everything it points to lives until tl_admin_topics_destroy. */
struct tl_admin_topics {
	int32_t count;
	const struct tl_admin_topic_info *topics;
};

struct tl_admin_conf *tl_admin_conf_create(void);
void tl_admin_conf_destroy(struct tl_admin_conf *conf);
tl_err tl_admin_conf_set(struct tl_admin_conf *conf, const char *key, const char *value,
			 char *errstr, size_t errstr_size);

tl_err tl_admin_create(const struct tl_admin_conf *conf, struct tl_admin **out, char *errstr,
		       size_t errstr_size);
void tl_admin_destroy(struct tl_admin *admin);

/* Creates @topic with @partitions (-1: the broker's num.partitions) and
 * @replication_factor (-1: the broker's default). TL_ERR_TOPIC_ALREADY_EXISTS if it
 * exists. */
tl_err tl_admin_create_topic(struct tl_admin *admin, const char *topic, int32_t partitions,
			     int16_t replication_factor,
			     const struct tl_admin_config_entry *configs, int32_t config_count,
			     int timeout_ms);
/* Deletes @topic. TL_ERR_UNKNOWN_TOPIC_OR_PARTITION if it does not exist. */
tl_err tl_admin_delete_topic(struct tl_admin *admin, const char *topic, int timeout_ms);
/* Every topic of the cluster, sorted by name. */
tl_err tl_admin_list_topics(struct tl_admin *admin, struct tl_admin_topics **out, int timeout_ms);
/* The named topics, in the order given (missing ones have err set). */
tl_err tl_admin_describe_topics(struct tl_admin *admin, const char *const *topics, int32_t count,
				struct tl_admin_topics **out, int timeout_ms);
void tl_admin_topics_destroy(struct tl_admin_topics *topics);
/* Raises @topic's partition count to @total (CreatePartitions, to the controller).
 * TL_ERR_UNSUPPORTED_VERSION when the broker lacks the API, with a detail saying
 * so. */
tl_err tl_admin_create_partitions(struct tl_admin *admin, const char *topic, int32_t total,
				  int timeout_ms);
/* The detail of the last error ("" if none). */
const char *tl_admin_last_error(struct tl_admin *admin);

/* One change of tl_admin_alter_topic_configs (IncrementalAlterConfigs' operations). */
enum tl_admin_config_op {
	TL_ADMIN_CONFIG_SET = 0,    /* set name to value */
	TL_ADMIN_CONFIG_DELETE = 1, /* back to the broker's default; value unused */
};
struct tl_admin_config_change {
	const char *name;
	const char *value;
	enum tl_admin_config_op op;
};
/* Changes only the named keys of @topic (IncrementalAlterConfigs, to the controller);
 * the others keep their settings. TL_ERR_INVALID_CONFIG with the broker's message for
 * an unknown key or a bad value. */
tl_err tl_admin_alter_topic_configs(struct tl_admin *admin, const char *topic,
				    const struct tl_admin_config_change *changes, int32_t count,
				    int timeout_ms);
/* Deletes the records of @topic/@partition below @offset (-1: the high watermark)
 * (DeleteRecords, to the leader); *@low_watermark_out gets the new log start.
 * TL_ERR_OFFSET_OUT_OF_RANGE past the high watermark. */
tl_err tl_admin_delete_records(struct tl_admin *admin, const char *topic, int32_t partition,
			       int64_t offset, int64_t *low_watermark_out, int timeout_ms);

/* One partition's replica in a log directory of a broker (DescribeLogDirs). */
struct tl_admin_log_dir_entry {
	int32_t node_id;
	const char *dir;
	tl_err dir_err; /* the directory's error: TL_OK, or KAFKA_STORAGE_ERROR */
	const char *topic;
	int32_t partition;
	int64_t size_bytes;
	int64_t total_bytes;  /* the directory's volume, -1 if not known */
	int64_t usable_bytes; /* free to use on it, -1 if not known */
};
struct tl_admin_log_dirs {
	int32_t count;
	const struct tl_admin_log_dir_entry *entries;
};
/* Every partition replica in broker @node_id's log directories. */
tl_err tl_admin_describe_log_dirs(struct tl_admin *admin, int32_t node_id,
				  struct tl_admin_log_dirs **out, int timeout_ms);
void tl_admin_log_dirs_destroy(struct tl_admin_log_dirs *log_dirs);

/* ---- client quotas (KIP-546) ---- */

/* A quota entity: a user, a client id, or both, each named or the default one (the
 * `<default>` that applies to every name without its own). */
struct tl_admin_quota_entity {
	const char *user;       /* NULL: no named user */
	bool user_default;      /* the default user (user NULL) */
	const char *client_id;  /* NULL: no named client id */
	bool client_id_default; /* the default client id (client_id NULL) */
};
/* One quota key: producer_byte_rate, consumer_byte_rate, request_percentage or
 * controller_mutation_rate. */
struct tl_admin_quota_value {
	const char *key;
	double value;
	bool remove; /* alter: remove the key (value unused) */
};
/* Sets or removes quota keys of one entity (AlterClientQuotas). TL_ERR_INVALID_REQUEST
 * with the broker's message for an unknown key or a bad value. */
tl_err tl_admin_alter_client_quotas(struct tl_admin *admin,
				    const struct tl_admin_quota_entity *entity,
				    const struct tl_admin_quota_value *values, int32_t count,
				    int timeout_ms);
struct tl_admin_quota_entry {
	struct tl_admin_quota_entity entity;
	int32_t value_count;
	const struct tl_admin_quota_value *values;
};
struct tl_admin_quotas {
	int32_t count;
	const struct tl_admin_quota_entry *entries;
};
/* Every quota entity with its keys (DescribeClientQuotas, no filter). */
tl_err tl_admin_describe_client_quotas(struct tl_admin *admin, struct tl_admin_quotas **out,
				       int timeout_ms);
void tl_admin_quotas_destroy(struct tl_admin_quotas *quotas);

/* ---- ACLs (issue #16) ---- */

/* Kafka's wire numbers (ResourceType, PatternType, AclOperation, AclPermissionType). */
#define TL_ADMIN_ACL_ANY              1 /* filters: any resource type, operation, permission */
#define TL_ADMIN_ACL_TOPIC            2
#define TL_ADMIN_ACL_GROUP            3
#define TL_ADMIN_ACL_CLUSTER          4
#define TL_ADMIN_ACL_TRANSACTIONAL_ID 5
#define TL_ADMIN_ACL_PATTERN_ANY      1 /* filters: any pattern type, exact name */
#define TL_ADMIN_ACL_PATTERN_MATCH    2 /* filters: every pattern that matches the name */
#define TL_ADMIN_ACL_LITERAL          3
#define TL_ADMIN_ACL_PREFIXED         4
#define TL_ADMIN_ACL_DENY             2
#define TL_ADMIN_ACL_ALLOW            3
/* One ACL binding, or a filter (NULL strings and the *_ANY values match anything).
 * operation: 2 All, 3 Read, 4 Write, 5 Create, 6 Delete, 7 Alter, 8 Describe,
 * 9 ClusterAction, 10 DescribeConfigs, 11 AlterConfigs, 12 IdempotentWrite. */
struct tl_admin_acl {
	int8_t resource_type;
	const char *resource_name; /* the Cluster's is "kafka-cluster" */
	int8_t pattern_type;
	const char *principal; /* "User:alice", "User:*" */
	const char *host;      /* "*" or an address */
	int8_t operation;
	int8_t permission;
};
struct tl_admin_acls {
	int32_t count;
	const struct tl_admin_acl *acls;
};
/* Creates @count ACLs (CreateAcls). The first refused one's error with the broker's
 * message: SECURITY_DISABLED without an authorizer, CLUSTER_AUTHORIZATION_FAILED,
 * INVALID_REQUEST. */
tl_err tl_admin_create_acls(struct tl_admin *admin, const struct tl_admin_acl *acls, int32_t count,
			    int timeout_ms);
/* The ACLs matching @filter (DescribeAcls). */
tl_err tl_admin_describe_acls(struct tl_admin *admin, const struct tl_admin_acl *filter,
			      struct tl_admin_acls **out, int timeout_ms);
/* Deletes the ACLs matching @filter (DeleteAcls); @out (may be NULL) gets those deleted. */
tl_err tl_admin_delete_acls(struct tl_admin *admin, const struct tl_admin_acl *filter,
			    struct tl_admin_acls **out, int timeout_ms);
void tl_admin_acls_destroy(struct tl_admin_acls *acls);
/* ---- SCRAM credentials (KIP-554) ---- */

/* Kafka's ScramMechanism ids. */
#define TL_ADMIN_SCRAM_SHA_256 1
#define TL_ADMIN_SCRAM_SHA_512 2

/* Sets @user's credential for @mechanism (AlterUserScramCredentials): the password is
 * salted here (a random salt, @iterations rounds of PBKDF2; 0 = 4096, Kafka's minimum)
 * and only the salted password goes to the broker. */
tl_err tl_admin_upsert_scram_credential(struct tl_admin *admin, const char *user, int mechanism,
					const char *password, int32_t iterations, int timeout_ms);
/* Removes @user's credential for @mechanism; TL_ERR_RESOURCE_NOT_FOUND when none. */
tl_err tl_admin_delete_scram_credential(struct tl_admin *admin, const char *user, int mechanism,
					int timeout_ms);
struct tl_admin_scram_credential {
	int mechanism; /* TL_ADMIN_SCRAM_SHA_* */
	int32_t iterations;
};
struct tl_admin_scram_user {
	const char *name;
	int32_t credential_count;
	const struct tl_admin_scram_credential *credentials;
};
struct tl_admin_scram_users {
	int32_t count;
	const struct tl_admin_scram_user *users;
};
/* Every user with SCRAM credentials (DescribeUserScramCredentials, all users). */
tl_err tl_admin_describe_scram_credentials(struct tl_admin *admin,
					   struct tl_admin_scram_users **out, int timeout_ms);
void tl_admin_scram_users_destroy(struct tl_admin_scram_users *users);

/* ---- offsets ---- */

#define TL_ADMIN_OFFSET_EARLIEST (-2)
#define TL_ADMIN_OFFSET_LATEST   (-1)

/* One partition to look up with tl_admin_list_offsets. The caller sets topic,
 * partition and timestamp; the call fills in the rest. */
struct tl_admin_offset_query {
	const char *topic;
	int32_t partition;
	int64_t timestamp; /* TL_ADMIN_OFFSET_EARLIEST, TL_ADMIN_OFFSET_LATEST, or ms */
	tl_err err;
	int64_t offset;           /* -1 when no record has a timestamp at or after @timestamp */
	int64_t offset_timestamp; /* for a timestamp lookup, -1 otherwise */
};

/* ListOffsets, one request per partition leader. With @isolation_level 1
 * (read_committed) LATEST is the last stable offset, with 0 the high watermark.
 * Returns TL_OK when every leader answered (per-partition errors are in each query's
 * err), else the first failure. */
tl_err tl_admin_list_offsets(struct tl_admin *admin, struct tl_admin_offset_query *queries,
			     int32_t count, int8_t isolation_level, int timeout_ms);

/* ---- cluster ---- */

struct tl_admin_broker {
	int32_t node_id;
	const char *host;
	int32_t port;
	const char *rack; /* NULL if none */
};

struct tl_admin_cluster {
	const char *cluster_id; /* NULL if the broker did not say */
	int32_t controller_id;  /* -1 if unknown */
	int32_t broker_count;
	const struct tl_admin_broker *brokers; /* sorted by node id */
	int32_t topic_count;                   /* internal topics included */
	int32_t partition_count;
};

/* Metadata for the whole cluster. */
tl_err tl_admin_describe_cluster(struct tl_admin *admin, struct tl_admin_cluster **out,
				 int timeout_ms);
void tl_admin_cluster_destroy(struct tl_admin_cluster *cluster);
/* Connects to broker @node_id at the address the cluster advertises for it (after
 * tl_admin_describe_cluster) and waits until it answers ApiVersions. On failure the
 * detail names the address and what went wrong. */
tl_err tl_admin_probe_broker(struct tl_admin *admin, int32_t node_id, int timeout_ms);

/* ---- consumer groups ---- */

struct tl_admin_topic_partition {
	const char *topic;
	int32_t partition;
};

struct tl_admin_group_listing {
	const char *group_id;
	const char *protocol_type; /* "consumer" for Kafka consumers; "" if none */
	const char *state;         /* "" when the broker does not report it (ListGroups < v4) */
};

struct tl_admin_groups {
	int32_t count;
	const struct tl_admin_group_listing *groups; /* sorted by id */
};

/* ListGroups on every broker. */
tl_err tl_admin_list_groups(struct tl_admin *admin, struct tl_admin_groups **out, int timeout_ms);
void tl_admin_groups_destroy(struct tl_admin_groups *groups);

struct tl_admin_group_member {
	const char *member_id;
	const char *group_instance_id; /* NULL unless static */
	const char *client_id;
	const char *client_host;
	int32_t assignment_count; /* decoded for protocol type "consumer" only */
	const struct tl_admin_topic_partition *assignment;
};

struct tl_admin_group_description {
	const char *group_id;
	tl_err err;
	const char *state; /* Empty, Stable, PreparingRebalance, CompletingRebalance, Dead */
	const char *protocol_type;
	const char *protocol; /* the assignor, e.g. "range" */
	int32_t coordinator_id;
	int32_t member_count;
	const struct tl_admin_group_member *members;
};

/* FindCoordinator, then DescribeGroups. A group the coordinator does not know comes
 * back with state "Dead" and no members (or err GROUP_ID_NOT_FOUND, by version). */
tl_err tl_admin_describe_group(struct tl_admin *admin, const char *group,
			       struct tl_admin_group_description **out, int timeout_ms);
void tl_admin_group_description_destroy(struct tl_admin_group_description *group);

struct tl_admin_committed_offset {
	const char *topic;
	int32_t partition;
	int64_t offset; /* -1: none */
	const char *metadata;
	tl_err err;
};

struct tl_admin_group_offsets {
	int32_t count;
	const struct tl_admin_committed_offset *offsets; /* sorted by topic, partition */
};

/* Every offset @group has committed (OffsetFetch for all topics). */
tl_err tl_admin_list_group_offsets(struct tl_admin *admin, const char *group,
				   struct tl_admin_group_offsets **out, int timeout_ms);
void tl_admin_group_offsets_destroy(struct tl_admin_group_offsets *offsets);

struct tl_admin_offset_commit {
	const char *topic;
	int32_t partition;
	int64_t offset;
	tl_err err; /* filled in */
};

/* Commits offsets for @group as a client outside the group (generation -1, no member
 * id), which the coordinator accepts only while the group has no active members.
 * Returns the first partition error (each entry has its own). */
tl_err tl_admin_commit_group_offsets(struct tl_admin *admin, const char *group,
				     struct tl_admin_offset_commit *offsets, int32_t count,
				     int timeout_ms);
/* DeleteGroups: NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if unknown. */
tl_err tl_admin_delete_group(struct tl_admin *admin, const char *group, int timeout_ms);

/* ---- transactions ---- */

struct tl_admin_txn_listing {
	const char *transactional_id;
	int64_t producer_id;
	const char *state; /* Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit... */
};

struct tl_admin_txns {
	int32_t count;
	const struct tl_admin_txn_listing *txns; /* sorted by transactional id */
};

/* ListTransactions on every broker. */
tl_err tl_admin_list_transactions(struct tl_admin *admin, struct tl_admin_txns **out,
				  int timeout_ms);
void tl_admin_txns_destroy(struct tl_admin_txns *txns);

struct tl_admin_txn_description {
	const char *transactional_id;
	tl_err err;
	const char *state;
	int32_t timeout_ms;
	int64_t start_time_ms; /* -1 when no transaction is open */
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t coordinator_id;
	int32_t partition_count;
	const struct tl_admin_topic_partition *partitions;
};

/* FindCoordinator (transaction), then DescribeTransactions. */
tl_err tl_admin_describe_transaction(struct tl_admin *admin, const char *transactional_id,
				     struct tl_admin_txn_description **out, int timeout_ms);
void tl_admin_txn_description_destroy(struct tl_admin_txn_description *txn);

struct tl_admin_producer_state {
	int64_t producer_id;
	int32_t producer_epoch;
	int32_t last_sequence;
	int64_t last_timestamp;
	int32_t coordinator_epoch;
	int64_t txn_start_offset; /* first offset of its open transaction, -1 if none */
};

struct tl_admin_partition_producers {
	const char *topic;
	int32_t partition;
	tl_err err;
	int32_t count;
	const struct tl_admin_producer_state *producers;
};

struct tl_admin_producers {
	int32_t count;
	const struct tl_admin_partition_producers *partitions; /* in the order asked */
};

/* DescribeProducers at each partition's leader. */
tl_err tl_admin_describe_producers(struct tl_admin *admin,
				   const struct tl_admin_topic_partition *partitions, int32_t count,
				   struct tl_admin_producers **out, int timeout_ms);
void tl_admin_producers_destroy(struct tl_admin_producers *producers);

/* Writes an ABORT marker for @producer_id/@producer_epoch into one partition
 * (WriteTxnMarkers at its leader), closing a hanging transaction the coordinator no
 * longer knows. TL_ERR_UNSUPPORTED_VERSION when the broker lacks WriteTxnMarkers
 * (tallyd serves it, v0-1). */
tl_err tl_admin_abort_transaction(struct tl_admin *admin, const char *topic, int32_t partition,
				  int64_t producer_id, int16_t producer_epoch,
				  int32_t coordinator_epoch, int timeout_ms);
/* Fences @transactional_id: InitProducerId at its coordinator bumps the epoch, which
 * aborts its open transaction and fences the producer using it. */
tl_err tl_admin_fence_transaction(struct tl_admin *admin, const char *transactional_id,
				  int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
