/* config.h - tallyd configuration: Kafka's server.properties syntax, key names and
 * defaults. `tallyd --config FILE --override key=value ...` loads the file, then the
 * overrides. An unknown key or a bad value is a start-up error that names it. */
#ifndef TL_BROKER_CONFIG_H
#define TL_BROKER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/ring.h"
#include "log/log.h"
#include "tally/error.h"

#define TL_CONFIG_STR_MAX        512
#define TL_CONFIG_LISTENERS_MAX  8
/* Kafka 3.8 defines 313 broker keys (config_kafka.c); room for a few more. */
#define TL_CONFIG_KAFKA_KEYS_MAX 384

/* A listener's security protocol (listener.security.protocol.map), as Kafka's
 * SecurityProtocol: TLS on SSL and SASL_SSL, SASL required on SASL_PLAINTEXT and
 * SASL_SSL. */
enum tl_security_protocol {
	TL_SECURITY_PLAINTEXT = 0,
	TL_SECURITY_SSL = 1,
	TL_SECURITY_SASL_PLAINTEXT = 2,
	TL_SECURITY_SASL_SSL = 3,
};

static inline bool tl_security_protocol_is_tls(enum tl_security_protocol p)
{
	return p == TL_SECURITY_SSL || p == TL_SECURITY_SASL_SSL;
}

static inline bool tl_security_protocol_is_sasl(enum tl_security_protocol p)
{
	return p == TL_SECURITY_SASL_PLAINTEXT || p == TL_SECURITY_SASL_SSL;
}

/* One entry of `listeners` / `advertised.listeners`: NAME://host:port. */
struct tl_listener {
	char name[32];     /* listener name, e.g. PLAINTEXT, CONTROLLER */
	char protocol[16]; /* its security protocol, from listener.security.protocol.map */
	enum tl_security_protocol security_protocol; /* the same, parsed */
	char host[256]; /* "" in the text means every address (listen) / this host */
	int32_t port;   /* 0 = any free port */
	bool served;    /* tallyd listens on it (not a KRaft controller listener) */
	/* From advertised.listeners when it names this listener (has_advertised). */
	bool has_advertised;
	char advertised_host[256]; /* "": the bound address */
	int32_t advertised_port;   /* 0: the bound port */
};

/* Which precedence-ordered keys were given while loading, so the stronger one wins
 * whatever the order in the file (0 = not given; values stored +1 so 0 stays distinct). */
struct tl_config_precedence {
	int64_t retention_ms, retention_minutes, retention_hours;
	int64_t roll_ms, roll_hours;
	bool has_log_dirs;
};

#define TL_CONFIG_JAAS_MAX      8
#define TL_CONFIG_JAAS_TEXT_MAX 1024

struct tl_config_jaas {
	char key[160]; /* as given: sasl.jaas.config or listener.name.*.sasl.jaas.config */
	char text[TL_CONFIG_JAAS_TEXT_MAX];
};

/* One JAAS login module entry, as Kafka's sasl.jaas.config holds it:
 *   <LoginModuleClass> <required|requisite|sufficient|optional> [name=value ...];
 * values bare words or "quoted" (\" \\ \n \t \r escapes). Only username and password
 * are kept; other options (user_<name> accounts of Kafka's PLAIN server side,
 * serviceName, ...) are skipped. */
struct tl_jaas_login {
	char module[160];
	char username[256];
	char password[256];
	bool has_username;
	bool has_password;
};

struct tl_config {
	int32_t node_id;                              /* node.id (alias broker.id) */
	char listeners[TL_CONFIG_STR_MAX];            /* listeners: PLAINTEXT://host:port */
	char advertised_listeners[TL_CONFIG_STR_MAX]; /* advertised.listeners, "" = listeners */
	char listener_security_protocol_map[TL_CONFIG_STR_MAX]; /* listener.security.protocol.map */
	char controller_listener_names[128]; /* controller.listener.names: never served */
	char inter_broker_listener_name[32]; /* inter.broker.listener.name: the served one */
	/* security.inter.broker.protocol: the listener named after this protocol is the
	 * inter-broker one (Kafka's older key; exclusive with inter.broker.listener.name). */
	char security_inter_broker_protocol[32];
	/* The broker's own client side toward other brokers (fetcher, marker sender), when
	 * the inter-broker listener is SASL_*: sasl.mechanism.inter.broker.protocol (Kafka's
	 * key; PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and, where Kafka reads the listener's
	 * JAAS login module, two Tally keys: inter.broker.sasl.username / .password. */
	char sasl_mechanism_inter_broker_protocol[32];
	char inter_broker_sasl_username[256];
	char inter_broker_sasl_password[256];
	/* Kafka's JAAS text, the other way to give that login: sasl.jaas.config and
	 * listener.name.<listener>.<mechanism>.sasl.jaas.config, kept as given (never
	 * printed); tl_config_finish reads the inter-broker listener's into the two keys
	 * above (both given and disagreeing: a start-up error). */
	struct tl_config_jaas jaas[TL_CONFIG_JAAS_MAX];
	int32_t jaas_count;
	/* ssl.endpoint.identification.algorithm: "https" (Kafka's default) makes the
	 * inter-broker TLS client check the peer certificate's name against the registered
	 * host; "" checks only its chain. */
	char ssl_endpoint_identification_algorithm[16];
	char log_dirs[TL_CONFIG_STR_MAX];   /* log.dirs (alias log.dir); first dir is used */
	int32_t num_partitions;             /* num.partitions */
	int16_t default_replication_factor; /* default.replication.factor */
	bool auto_create_topics_enable;     /* auto.create.topics.enable */
	bool delete_topic_enable;           /* delete.topic.enable */
	struct tl_log_config log;           /* log.segment.bytes, log.roll.*, log.retention.* ... */
	int32_t message_max_bytes;          /* message.max.bytes: largest batch accepted */
	int32_t socket_request_max_bytes;   /* socket.request.max.bytes: largest frame */
	int32_t max_connections;            /* max.connections */
	int32_t max_connections_per_ip;     /* max.connections.per.ip */
	/* TLS of the SSL and SASL_SSL listeners (Kafka's ssl.* keys, PEM files only). */
	char ssl_keystore_type[16];                      /* ssl.keystore.type: PEM */
	char ssl_keystore_location[TL_CONFIG_STR_MAX];   /* certificate chain + private key */
	char ssl_key_password[256];                      /* ssl.key.password */
	char ssl_truststore_type[16];                    /* ssl.truststore.type: PEM */
	char ssl_truststore_location[TL_CONFIG_STR_MAX]; /* CAs of client certificates */
	char ssl_client_auth[16];       /* ssl.client.auth: none | requested | required */
	char ssl_enabled_protocols[64]; /* ssl.enabled.protocols: TLSv1.2,TLSv1.3 */
	char ssl_cipher_suites[TL_CONFIG_STR_MAX]; /* ssl.cipher.suites; "" OpenSSL's */
	bool ssl_ktls_enable;             /* ssl.ktls.enable: kernel TLS for sendfile (tally) */
	int64_t ssl_handshake_timeout_ms; /* ssl.handshake.timeout.ms (tally) */
	/* socket.request.read.timeout.ms: a frame begun must be whole within this (tally) */
	int64_t socket_request_read_timeout_ms;
	int32_t queued_max_requests;       /* queued.max.requests: per connection, pipelined */
	int32_t quota_window_num;          /* quota.window.num: samples a client rate spans */
	int32_t quota_window_size_seconds; /* quota.window.size.seconds: one sample */
	int64_t connections_max_idle_ms;   /* connections.max.idle.ms */
	/* SASL (issue #16): sasl.enabled.mechanisms as given, and parsed into
	 * TL_SASL_MECHANISM_* bits by tl_config_finish. */
	char sasl_enabled_mechanisms[128];
	uint32_t sasl_mechanisms;
	int64_t connections_max_reauth_ms;    /* connections.max.reauth.ms: 0 = never (KIP-368) */
	int32_t sasl_server_max_receive_size; /* sasl.server.max.receive.size: frame cap before
					       * a SASL connection is authenticated */
	bool log_message_timestamp_log_append_time;  /* log.message.timestamp.type=LogAppendTime */
	enum tl_ring_mode io_engine;                 /* log.io.engine: auto | io_uring | sync */
	int32_t group_min_session_timeout_ms;        /* group.min.session.timeout.ms */
	int32_t group_max_session_timeout_ms;        /* group.max.session.timeout.ms */
	int32_t group_initial_rebalance_delay_ms;    /* group.initial.rebalance.delay.ms */
	int32_t group_max_size;                      /* group.max.size */
	int32_t offset_metadata_max_bytes;           /* offset.metadata.max.bytes */
	int64_t offsets_retention_minutes;           /* offsets.retention.minutes */
	int64_t offsets_retention_check_interval_ms; /* offsets.retention.check.interval.ms */
	int32_t offsets_topic_num_partitions; /* offsets.topic.num.partitions (at creation) */
	int32_t transaction_state_log_num_partitions; /* cluster mode, at creation */
	int32_t offsets_topic_segment_bytes;         /* offsets.topic.segment.bytes (at creation) */
	int32_t transaction_state_log_segment_bytes; /* transaction.state.log.segment.bytes */
	int32_t transaction_max_timeout_ms;          /* transaction.max.timeout.ms */
	int64_t transactional_id_expiration_ms;      /* transactional.id.expiration.ms */
	/* test.fault.drop.produce.response.ratio: after a produce is durable, close the
	 * connection instead of answering with this probability. Refused at start-up unless
	 * the environment has TALLY_TEST_FAULTS=1, so no production config can carry it. */
	double test_fault_drop_produce_response;
	/* test.fault.isr.echo.ignore.ms: a leader leaves a newer state of its own epoch
	 * unapplied for this long after it asked for an ISR change, as if its watch were
	 * late or it were cut off the store right after its change committed (test 935).
	 * Refused like the one above without TALLY_TEST_FAULTS=1. */
	int32_t test_fault_isr_echo_ignore_ms;
	struct tl_config_precedence precedence; /* private to config.c */
	/* Set by tl_config_finish: every listener parsed (each served but KRaft controller
	 * ones, with its advertised address), the inter-broker one (registered in cluster
	 * mode) and the address advertised for it. */
	struct tl_listener listener_list[TL_CONFIG_LISTENERS_MAX];
	int32_t listener_count;
	int32_t listener_served;       /* the inter-broker listener: index into listener_list */
	struct tl_listener advertised; /* port 0 / host "": the bound ones */
	bool has_advertised;           /* advertised.listeners names the served listener */
	bool has_tls_listener;         /* an SSL or SASL_SSL listener is served */
	/* Kafka keys given that Tally does not implement, for tl_config_report. */
	uint64_t kafka_keys_ignored[TL_CONFIG_KAFKA_KEYS_MAX / 64];
	int32_t listener_prefixed_ignored; /* listener.name.<name>.<key> entries */
	uint64_t keys_set[3]; /* bit per Tally key (config.c's table) given in file or override */
	char cluster_id[64];  /* cluster.id (default: generated once, stored) */
	char log_level[16];   /* log.level: crit|warn|info|debug (tally) */
	char log_format[16];  /* log.format: text|logfmt|json (tally) */
	int64_t log_slow_request_ms; /* log.slow.request.ms: warn above; 0 = off (tally) */
	char metrics_listener[256];  /* metrics.listener: http://host:port; "" = off (tally) */
	/* Cluster mode: on when metadata.etcd.endpoints is set. */
	char metadata_etcd_endpoints[TL_CONFIG_STR_MAX]; /* metadata.etcd.endpoints (tally) */
	char metadata_etcd_prefix[128];           /* metadata.etcd.prefix: key prefix (tally) */
	int32_t metadata_etcd_timeout_ms;         /* metadata.etcd.timeout.ms: per call (tally) */
	int32_t broker_session_timeout_ms;        /* broker.session.timeout.ms: lease TTL */
	char broker_rack[64];                     /* broker.rack */
	int32_t min_insync_replicas;              /* min.insync.replicas */
	int64_t replica_lag_time_max_ms;          /* replica.lag.time.max.ms */
	int32_t replica_fetch_max_bytes;          /* replica.fetch.max.bytes (per partition) */
	int32_t replica_fetch_response_max_bytes; /* replica.fetch.response.max.bytes */
	int32_t replica_fetch_wait_max_ms;        /* replica.fetch.wait.max.ms */
	int32_t replica_fetch_backoff_ms;         /* replica.fetch.backoff.ms */
	bool unclean_leader_election_enable;      /* unclean.leader.election.enable */
	int16_t offsets_topic_replication_factor; /* offsets.topic.replication.factor */
	int16_t transaction_state_log_replication_factor; /* transaction.state.log.replication.factor
							   */
	bool controlled_shutdown_enable;                  /* controlled.shutdown.enable */
	int64_t controlled_shutdown_max_ms; /* how long SIGTERM waits for leadership to move */
	bool auto_leader_rebalance_enable;  /* auto.leader.rebalance.enable */
	int64_t leader_imbalance_check_interval_ms; /* leader.imbalance.check.interval.seconds */
	/* Authorization (issue #16, acl_admin.c). */
	char authorizer_class_name[256];     /* authorizer.class.name: "" = none */
	char super_users[TL_CONFIG_STR_MAX]; /* super.users: "User:a;User:b" */
	bool allow_everyone_if_no_acl_found; /* allow.everyone.if.no.acl.found */
	/* tally.test.principal.from.client.id: TEST ONLY. A PLAINTEXT client whose
	 * client.id starts with "User:" gets that principal. Off by default. */
	bool tally_test_principal_from_client_id;
};

/* sasl.enabled.mechanisms bits. */
#define TL_SASL_MECHANISM_PLAIN         (1u << 0)
#define TL_SASL_MECHANISM_SCRAM_SHA_256 (1u << 1)
#define TL_SASL_MECHANISM_SCRAM_SHA_512 (1u << 2)

/* Cluster mode: partitions replicated, metadata in etcd. */
static inline bool tl_config_is_cluster(const struct tl_config *config)
{
	return config->metadata_etcd_endpoints[0] != '\0';
}

void tl_config_defaults(struct tl_config *config);

/* Applies one "key=value" or key/value pair. On error writes a message naming the key
 * (with a did-you-mean suggestion for an unknown key) into @why of @why_size bytes. */
tl_err tl_config_set(struct tl_config *config, const char *key, const char *value, char *why,
		     size_t why_size);
/* Reads a properties file (# and ! comments, key=value or key: value, trimmed). */
tl_err tl_config_load_file(struct tl_config *config, const char *path, char *why, size_t why_size);
/* Cross-key checks after everything is loaded. */
tl_err tl_config_finish(struct tl_config *config, char *why, size_t why_size);
/* Parses @text, exactly one JAAS login module entry ending in ';'. On error a reason
 * in @why that never quotes an option's value (a password may be one). */
tl_err tl_config_jaas_parse(const char *text, struct tl_jaas_login *out, char *why,
			    size_t why_size);
/* Prints the effective configuration, one `key=value` per line, sorted. */
void tl_config_print(const struct tl_config *config, FILE *out);

/* DescribeConfigs of the broker: Tally's keys (count, name of @index), Kafka's
 * synonyms of @key strongest first (NULL-terminated, itself included; NULL when it has
 * none), and the value of @key given @printed, the output of tl_config_print: false
 * when Tally has no such key; @has_value_out false for a key with no value (Kafka's
 * null); @is_set_out when the file or an override gave it. */
int tl_config_key_count(void);
const char *tl_config_key_name(int index);
const char *const *tl_config_synonyms(const char *key);
bool tl_config_describe_key(const struct tl_config *config, const char *printed, const char *key,
			    char *value, size_t value_size, bool *has_value_out, bool *is_set_out);

/* Logs, once at start, the Kafka keys given but not implemented and the listeners
 * not served. */
void tl_config_report(const struct tl_config *config);

/* Parses a comma-separated list of NAME://host:port (host empty or [v6] allowed) into
 * @out (at most TL_CONFIG_LISTENERS_MAX), without protocols. Duplicate names are
 * refused, as Kafka does. */
tl_err tl_config_parse_listeners(const char *text, struct tl_listener *out, int32_t *count_out,
				 char *why, size_t why_size);

/* Apache Kafka 3.8's broker key names (config_kafka.c): index of @key or -1, the
 * count, and the name of @index. */
int tl_config_kafka_key_index(const char *key);
int tl_config_kafka_key_count(void);
const char *tl_config_kafka_key_name(int index);

/* Topic-level configuration keys (CreateTopics configs, DescribeConfigs). */
struct tl_topic_config {
	struct tl_log_config
		log; /* segment.bytes, segment.ms, retention.bytes, retention.ms, ... */
	int32_t max_message_bytes;   /* max.message.bytes */
	bool log_append_time;        /* message.timestamp.type */
	char cleanup_policy[16];     /* cleanup.policy: delete, compact or compact,delete (the
				      * flags live in log) */
	char compression_type[16];   /* compression.type, as set */
	int8_t compression_codec;    /* its codec (enum tl_compression), -1 for "producer" */
	int32_t min_insync_replicas; /* min.insync.replicas: acks=all needs this many in ISR */
	/* Which keys were set explicitly (bit per key, in topic_keys order). */
	uint32_t set_mask;
};

void tl_topic_config_from_broker(struct tl_topic_config *topic, const struct tl_config *broker);
tl_err tl_topic_config_set(struct tl_topic_config *topic, const char *key, const char *value,
			   char *why, size_t why_size);
/* Number of topic keys, and the name / current value / explicitly-set flag of key @index. */
int tl_topic_config_key_count(void);
const char *tl_topic_config_key_name(int index);
void tl_topic_config_key_value(const struct tl_topic_config *topic, int index, char *out,
			       size_t out_size);
bool tl_topic_config_key_is_set(const struct tl_topic_config *topic, int index);
/* Broker keys that give key @index its default, strongest first, NULL-terminated. */
const char *const *tl_topic_config_key_synonyms(int index);

/* Parses a cleanup.policy list ("compact", "delete", both in either order) into @log's
 * cleanup_compact / cleanup_delete. TL_ERR_INVALID with a reason in @why otherwise. */
tl_err tl_config_parse_cleanup_policy(const char *key, const char *value, struct tl_log_config *log,
				      char *why, size_t why_size);
/* "delete", "compact" or "compact,delete" for @log's flags. */
const char *tl_config_cleanup_policy_name(const struct tl_log_config *log);

/* Edit distance, for did-you-mean suggestions. */
size_t tl_config_distance(const char *a, const char *b);

#endif
