/* config.c - Kafka-style server.properties for tallyd, see config.h.
 * Keys are table-driven. Precedence follows Kafka: log.retention.ms over
 * log.retention.minutes over log.retention.hours; log.roll.ms over log.roll.hours;
 * log.dirs over log.dir; node.id and broker.id are the same key. */
#include "broker/config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/assert.h"
#include "common/diag.h"
#include "common/tls.h"

enum key_type {
	KEY_INT32,
	KEY_INT16,
	KEY_INT64,
	KEY_BOOL,
	KEY_STRING,
	KEY_SPECIAL, /* handled in config_set_special() */
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;
	int64_t min;
	int64_t max;
};

#define OFF(field) offsetof(struct tl_config, field)
/* A string key's max is its field's size. */
#define STR(field) KEY_STRING, OFF(field), 0, (int64_t)sizeof(((struct tl_config *)0)->field)

static const struct key_def broker_keys[] = {
	{"advertised.listeners", STR(advertised_listeners)},
	{"allow.everyone.if.no.acl.found", KEY_BOOL, OFF(allow_everyone_if_no_acl_found), 0, 1},
	{"authorizer.class.name", STR(authorizer_class_name)},
	{"auto.create.topics.enable", KEY_BOOL, OFF(auto_create_topics_enable), 0, 1},
	{"auto.leader.rebalance.enable", KEY_BOOL, OFF(auto_leader_rebalance_enable), 0, 1},
	{"broker.id", KEY_INT32, OFF(node_id), 0, INT32_MAX},
	{"broker.rack", STR(broker_rack)},
	{"broker.session.timeout.ms", KEY_INT32, OFF(broker_session_timeout_ms), 1000, 3600000},
	{"cluster.id", STR(cluster_id)},
	{"connections.max.idle.ms", KEY_INT64, OFF(connections_max_idle_ms), -1, INT64_MAX},
	{"connections.max.reauth.ms", KEY_INT64, OFF(connections_max_reauth_ms), 0, INT64_MAX},
	{"controlled.shutdown.enable", KEY_BOOL, OFF(controlled_shutdown_enable), 0, 1},
	{"controlled.shutdown.max.ms", KEY_INT64, OFF(controlled_shutdown_max_ms), 0, 3600000},
	{"default.replication.factor", KEY_INT16, OFF(default_replication_factor), 1, INT16_MAX},
	{"controller.listener.names", STR(controller_listener_names)},
	{"delete.topic.enable", KEY_BOOL, OFF(delete_topic_enable), 0, 1},
	{"group.initial.rebalance.delay.ms", KEY_INT32, OFF(group_initial_rebalance_delay_ms), 0,
	 INT32_MAX},
	{"group.max.session.timeout.ms", KEY_INT32, OFF(group_max_session_timeout_ms), 1,
	 INT32_MAX},
	{"group.max.size", KEY_INT32, OFF(group_max_size), 1, INT32_MAX},
	{"group.min.session.timeout.ms", KEY_INT32, OFF(group_min_session_timeout_ms), 1,
	 INT32_MAX},
	{"inter.broker.listener.name", STR(inter_broker_listener_name)},
	{"inter.broker.sasl.password", STR(inter_broker_sasl_password)},
	{"inter.broker.sasl.username", STR(inter_broker_sasl_username)},
	{"leader.imbalance.check.interval.seconds", KEY_SPECIAL, 0, 0, 0},
	{"listener.security.protocol.map", STR(listener_security_protocol_map)},
	{"listeners", STR(listeners)},
	{"log.cache.bytes", KEY_INT64, OFF(log.cache_bytes), 0, (int64_t)1 << 40},
	{"log.cleaner.backoff.ms", KEY_INT64, OFF(log.cleaner_backoff_ms), 0, INT64_MAX},
	{"log.cleaner.dedupe.buffer.size", KEY_INT64, OFF(log.cleaner_dedupe_buffer_bytes), 1024,
	 INT64_MAX},
	{"log.cleaner.delete.retention.ms", KEY_INT64, OFF(log.delete_retention_ms), 0, INT64_MAX},
	{"log.cleaner.enable", KEY_BOOL, OFF(log.cleaner_enable), 0, 1},
	{"log.cleaner.io.max.bytes.per.second", KEY_SPECIAL, 0, 0, 0},
	{"log.cleaner.max.compaction.lag.ms", KEY_INT64, OFF(log.max_compaction_lag_ms), 1,
	 INT64_MAX},
	{"log.cleaner.min.cleanable.ratio", KEY_SPECIAL, 0, 0, 0},
	{"log.cleaner.min.compaction.lag.ms", KEY_INT64, OFF(log.min_compaction_lag_ms), 0,
	 INT64_MAX},
	{"log.cleaner.nice", KEY_INT32, OFF(log.cleaner_nice), 0, 19},
	{"log.cleaner.threads", KEY_INT32, OFF(log.cleaner_threads), 1, 64},
	{"log.cleanup.policy", KEY_SPECIAL, 0, 0, 0},
	{"log.dir", KEY_SPECIAL, 0, 0, 0},
	{"log.direct.io", KEY_BOOL, OFF(log.direct_io), 0, 1},
	{"log.dirs", STR(log_dirs)},
	{"log.format", KEY_SPECIAL, 0, 0, 0},
	{"log.index.interval.bytes", KEY_INT32, OFF(log.index_interval_bytes), 0, INT32_MAX},
	{"log.index.size.max.bytes", KEY_INT32, OFF(log.index_bytes_max), 4096, INT32_MAX},
	{"log.io.engine", KEY_SPECIAL, 0, 0, 0},
	{"log.level", KEY_SPECIAL, 0, 0, 0},
	{"log.message.timestamp.type", KEY_SPECIAL, 0, 0, 0},
	{"log.preallocate", KEY_BOOL, OFF(log.preallocate), 0, 1},
	{"log.preallocate.bytes", KEY_SPECIAL, 0, 0, 0},
	{"log.retention.bytes", KEY_INT64, OFF(log.retention_bytes), -1, INT64_MAX},
	{"log.retention.check.interval.ms", KEY_INT64, OFF(log.retention_check_interval_ms), 1,
	 INT64_MAX},
	{"log.retention.hours", KEY_SPECIAL, 0, 0, 0},
	{"log.retention.minutes", KEY_SPECIAL, 0, 0, 0},
	{"log.retention.ms", KEY_SPECIAL, 0, 0, 0},
	{"log.roll.hours", KEY_SPECIAL, 0, 0, 0},
	{"log.roll.ms", KEY_SPECIAL, 0, 0, 0},
	{"log.segment.bytes", KEY_INT64, OFF(log.segment_bytes), 14, INT32_MAX},
	{"log.slow.request.ms", KEY_INT64, OFF(log_slow_request_ms), 0, INT32_MAX},
	{"max.connections", KEY_INT32, OFF(max_connections), 1, 1000000},
	{"max.connections.per.ip", KEY_INT32, OFF(max_connections_per_ip), 1, INT32_MAX},
	{"message.max.bytes", KEY_INT32, OFF(message_max_bytes), 0, INT32_MAX},
	{"metadata.etcd.endpoints", STR(metadata_etcd_endpoints)},
	{"metadata.etcd.prefix", STR(metadata_etcd_prefix)},
	{"metadata.etcd.timeout.ms", KEY_INT32, OFF(metadata_etcd_timeout_ms), 100, 600000},
	{"metrics.listener", STR(metrics_listener)},
	{"min.insync.replicas", KEY_INT32, OFF(min_insync_replicas), 1, 16},
	{"node.id", KEY_INT32, OFF(node_id), 0, INT32_MAX},
	{"num.partitions", KEY_INT32, OFF(num_partitions), 1, 100000},
	{"offset.metadata.max.bytes", KEY_INT32, OFF(offset_metadata_max_bytes), 0, INT32_MAX},
	{"offsets.retention.check.interval.ms", KEY_INT64, OFF(offsets_retention_check_interval_ms),
	 1, INT64_MAX},
	{"offsets.retention.minutes", KEY_INT64, OFF(offsets_retention_minutes), 1, INT32_MAX},
	{"offsets.topic.num.partitions", KEY_INT32, OFF(offsets_topic_num_partitions), 1, 1000},
	{"offsets.topic.segment.bytes", KEY_INT32, OFF(offsets_topic_segment_bytes), 14, INT32_MAX},
	{"transaction.state.log.segment.bytes", KEY_INT32, OFF(transaction_state_log_segment_bytes),
	 14, INT32_MAX},
	{"transaction.state.log.num.partitions", KEY_INT32,
	 OFF(transaction_state_log_num_partitions), 1, 1000},
	{"offsets.topic.replication.factor", KEY_INT16, OFF(offsets_topic_replication_factor), 1,
	 16},
	{"producer.id.expiration.check.interval.ms", KEY_INT64,
	 OFF(log.producer_id_expiration_check_interval_ms), 1, INT64_MAX},
	{"producer.id.expiration.ms", KEY_INT64, OFF(log.producer_id_expiration_ms), 1, INT64_MAX},
	{"queued.max.requests", KEY_INT32, OFF(queued_max_requests), 1, 100000},
	{"quota.window.num", KEY_INT32, OFF(quota_window_num), 2, 64},
	{"quota.window.size.seconds", KEY_INT32, OFF(quota_window_size_seconds), 1, 3600},
	{"replica.fetch.backoff.ms", KEY_INT32, OFF(replica_fetch_backoff_ms), 0, 600000},
	{"replica.fetch.max.bytes", KEY_INT32, OFF(replica_fetch_max_bytes), 1024, INT32_MAX},
	{"replica.fetch.response.max.bytes", KEY_INT32, OFF(replica_fetch_response_max_bytes), 1024,
	 INT32_MAX},
	{"replica.fetch.wait.max.ms", KEY_INT32, OFF(replica_fetch_wait_max_ms), 0, 600000},
	{"replica.lag.time.max.ms", KEY_INT64, OFF(replica_lag_time_max_ms), 100, INT32_MAX},
	{"sasl.enabled.mechanisms", STR(sasl_enabled_mechanisms)},
	{"sasl.mechanism.inter.broker.protocol", STR(sasl_mechanism_inter_broker_protocol)},
	{"sasl.server.max.receive.size", KEY_INT32, OFF(sasl_server_max_receive_size), 8,
	 INT32_MAX},
	{"security.inter.broker.protocol", STR(security_inter_broker_protocol)},
	{"socket.request.max.bytes", KEY_INT32, OFF(socket_request_max_bytes), 1, INT32_MAX},
	{"super.users", STR(super_users)},
	/* TEST ONLY: principal from client.id "User:..." on PLAINTEXT (acl_admin.c). */
	{"tally.test.principal.from.client.id", KEY_BOOL, OFF(tally_test_principal_from_client_id),
	 0, 1},
	{"socket.request.read.timeout.ms", KEY_INT64, OFF(socket_request_read_timeout_ms), 100,
	 INT32_MAX},
	{"ssl.cipher.suites", STR(ssl_cipher_suites)},
	{"ssl.client.auth", STR(ssl_client_auth)},
	{"ssl.enabled.protocols", STR(ssl_enabled_protocols)},
	{"ssl.endpoint.identification.algorithm", STR(ssl_endpoint_identification_algorithm)},
	{"ssl.handshake.timeout.ms", KEY_INT64, OFF(ssl_handshake_timeout_ms), 100, INT32_MAX},
	{"ssl.key.password", STR(ssl_key_password)},
	{"ssl.keystore.location", STR(ssl_keystore_location)},
	{"ssl.keystore.type", STR(ssl_keystore_type)},
	{"ssl.ktls.enable", KEY_BOOL, OFF(ssl_ktls_enable), 0, 1},
	{"ssl.truststore.location", STR(ssl_truststore_location)},
	{"ssl.truststore.type", STR(ssl_truststore_type)},
	{"test.fault.drop.produce.response.ratio", KEY_SPECIAL, 0, 0, 0},
	{"test.fault.isr.echo.ignore.ms", KEY_INT32, OFF(test_fault_isr_echo_ignore_ms), 0,
	 INT32_MAX},
	/* Chaos harness (tests/chaos/): test-only faults in log/. */
	{"test.fault.dedupe.off", KEY_BOOL, OFF(log.test_dedupe_off), 0, 1},
	{"test.fault.fdatasync.fail.after", KEY_INT64, OFF(log.test_fdatasync_fail_after), 0,
	 INT64_MAX},
	{"test.fault.log.crash.point", KEY_INT32, OFF(log.test_crash_point), 0,
	 TL_LOG_CRASH_POINT_MAX},
	{"test.fault.log.crash.round", KEY_INT32, OFF(log.test_crash_round), 1, INT32_MAX},
	{"transaction.max.timeout.ms", KEY_INT32, OFF(transaction_max_timeout_ms), 1, INT32_MAX},
	{"transaction.state.log.replication.factor", KEY_INT16,
	 OFF(transaction_state_log_replication_factor), 1, 16},
	{"transactional.id.expiration.ms", KEY_INT64, OFF(transactional_id_expiration_ms), 1,
	 INT32_MAX},
	{"unclean.leader.election.enable", KEY_BOOL, OFF(unclean_leader_election_enable), 0, 1},
};

TL_STATIC_ASSERT(TL_ARRAY_SIZE(broker_keys) <=
			 64 * TL_ARRAY_SIZE(((struct tl_config *)0)->keys_set),
		 "keys_set has a bit per broker key");

void tl_config_defaults(struct tl_config *config)
{
	memset(config, 0, sizeof(*config));
	config->node_id = 1;
	snprintf(config->listeners, sizeof(config->listeners), "PLAINTEXT://127.0.0.1:9092");
	snprintf(config->log_dirs, sizeof(config->log_dirs), "./tally-data");
	snprintf(config->listener_security_protocol_map,
		 sizeof(config->listener_security_protocol_map),
		 "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL");
	config->num_partitions = 1;
	config->default_replication_factor = 1;
	config->auto_create_topics_enable = true;
	config->delete_topic_enable = true;
	tl_log_config_defaults(&config->log);
	config->log.retention_check_interval_ms = 300000;
	config->message_max_bytes = 1048588;
	config->socket_request_max_bytes = 104857600;
	config->max_connections = 4096;
	config->max_connections_per_ip = INT32_MAX;
	snprintf(config->ssl_keystore_type, sizeof(config->ssl_keystore_type), "PEM");
	snprintf(config->ssl_truststore_type, sizeof(config->ssl_truststore_type), "PEM");
	snprintf(config->ssl_client_auth, sizeof(config->ssl_client_auth), "none");
	snprintf(config->ssl_endpoint_identification_algorithm,
		 sizeof(config->ssl_endpoint_identification_algorithm), "https");
	snprintf(config->ssl_enabled_protocols, sizeof(config->ssl_enabled_protocols),
		 "TLSv1.2,TLSv1.3");
	config->ssl_ktls_enable = true;
	config->ssl_handshake_timeout_ms = 10000;
	config->socket_request_read_timeout_ms = 60000;
	config->queued_max_requests = 500;
	config->quota_window_num = 11;
	config->quota_window_size_seconds = 1;
	config->connections_max_idle_ms = 600000;
	/* Kafka's default is GSSAPI, which Tally lacks; SCRAM sends no password, PLAIN
	 * does (in clear on SASL_PLAINTEXT), so PLAIN is opt-in. */
	snprintf(config->sasl_enabled_mechanisms, sizeof(config->sasl_enabled_mechanisms),
		 "SCRAM-SHA-256,SCRAM-SHA-512");
	config->sasl_server_max_receive_size = 524288;
	config->io_engine = TL_RING_MODE_AUTO;
	config->group_min_session_timeout_ms = 6000;
	config->group_max_session_timeout_ms = 1800000;
	config->group_initial_rebalance_delay_ms = 3000;
	config->group_max_size = INT32_MAX;
	config->offset_metadata_max_bytes = 4096;
	config->offsets_retention_minutes = 10080;
	config->offsets_retention_check_interval_ms = 600000;
	/* Kafka's default is 50. On one node with one event loop more partitions buy no
	 * parallelism, only directories, open files and fsyncs (commits of groups in
	 * different partitions cannot share one fdatasync). The count is fixed once the
	 * topic exists (a group's partition follows from it), so 8 leaves room for the
	 * per-core split of the loop. */
	config->offsets_topic_num_partitions = 8;
	config->transaction_state_log_num_partitions = 8;
	config->offsets_topic_segment_bytes = 104857600;
	config->transaction_state_log_segment_bytes = 104857600;
	config->transaction_max_timeout_ms = 900000;
	config->transactional_id_expiration_ms = 604800000;
	snprintf(config->log_level, sizeof(config->log_level), "info");
	snprintf(config->log_format, sizeof(config->log_format), "logfmt");
	snprintf(config->metadata_etcd_prefix, sizeof(config->metadata_etcd_prefix), "/tally");
	config->metadata_etcd_timeout_ms = 5000;
	config->broker_session_timeout_ms = 9000;
	config->min_insync_replicas = 1;
	config->replica_lag_time_max_ms = 30000;
	config->replica_fetch_max_bytes = 1048576;
	config->replica_fetch_response_max_bytes = 10485760;
	config->replica_fetch_wait_max_ms = 500;
	config->replica_fetch_backoff_ms = 1000;
	config->unclean_leader_election_enable = false;
	config->offsets_topic_replication_factor = 3;
	config->transaction_state_log_replication_factor = 3;
	config->controlled_shutdown_enable = true;
	config->controlled_shutdown_max_ms = 30000;
	config->auto_leader_rebalance_enable = true;
	config->leader_imbalance_check_interval_ms = 300000;
}

size_t tl_config_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = TL_MIN(sub, TL_MIN(del, ins));
		}
		memcpy(prev, cur, sizeof(size_t) * (lb + 1));
	}
	return prev[lb];
}

static const char *closest_key(const char *key, const char *const *names, size_t count)
{
	const char *best = NULL;
	size_t best_distance = SIZE_MAX;
	for (size_t i = 0; i < count; i++) {
		size_t d = tl_config_distance(key, names[i]);
		if (d < best_distance) {
			best_distance = d;
			best = names[i];
		}
	}
	return best_distance <= TL_MAX(strlen(key) / 3, (size_t)2) ? best : NULL;
}

static tl_err parse_int(const char *key, const char *value, int64_t min, int64_t max, int64_t *out,
			char *why, size_t why_size)
{
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno || end == value || *end != '\0') {
		snprintf(why, why_size, "config %s: \"%s\" is not an integer", key, value);
		return TL_ERR_INVALID;
	}
	if (v < min || v > max) {
		snprintf(why, why_size,
			 "config %s: %lld is out of range [%" PRId64 ", %" PRId64 "]", key, v, min,
			 max);
		return TL_ERR_INVALID;
	}
	*out = v;
	return TL_OK;
}

const char *tl_config_cleanup_policy_name(const struct tl_log_config *log)
{
	if (log->cleanup_compact && log->cleanup_delete)
		return "compact,delete";
	return log->cleanup_compact ? "compact" : "delete";
}

static tl_err parse_double(const char *key, const char *value, double min, double max, double *out,
			   char *why, size_t why_size)
{
	char *end;
	errno = 0;
	double v = strtod(value, &end);
	if (errno || end == value || *end != '\0' || !(v >= min && v <= max)) {
		snprintf(why, why_size, "config %s: \"%s\" is not a number in [%g, %g]", key, value,
			 min, max);
		return TL_ERR_INVALID;
	}
	*out = v;
	return TL_OK;
}

tl_err tl_config_parse_cleanup_policy(const char *key, const char *value, struct tl_log_config *log,
				      char *why, size_t why_size)
{
	bool compact = false, del = false;
	const char *p = value;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len > 0 && p[0] == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == 7 && strncmp(p, "compact", 7) == 0) {
			compact = true;
		} else if (len == 6 && strncmp(p, "delete", 6) == 0) {
			del = true;
		} else {
			snprintf(why, why_size,
				 "config %s: \"%s\" is not a list of compact and delete", key,
				 value);
			return TL_ERR_INVALID;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!compact && !del) {
		snprintf(why, why_size, "config %s: empty list", key);
		return TL_ERR_INVALID;
	}
	log->cleanup_compact = compact;
	log->cleanup_delete = del;
	return TL_OK;
}

static tl_err parse_bool(const char *key, const char *value, bool *out, char *why, size_t why_size)
{
	if (strcmp(value, "true") == 0)
		*out = true;
	else if (strcmp(value, "false") == 0)
		*out = false;
	else {
		snprintf(why, why_size, "config %s: \"%s\" is not true or false", key, value);
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

static tl_err parse_timestamp_type(const char *key, const char *value, bool *log_append_time,
				   char *why, size_t why_size)
{
	if (strcmp(value, "CreateTime") == 0)
		*log_append_time = false;
	else if (strcmp(value, "LogAppendTime") == 0)
		*log_append_time = true;
	else {
		snprintf(why, why_size, "config %s: \"%s\" is not CreateTime or LogAppendTime", key,
			 value);
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

static tl_err config_set_special(struct tl_config *config, const char *key, const char *value,
				 char *why, size_t why_size)
{
	int64_t v;
	tl_err err = TL_OK;
	struct tl_config_precedence *p = &config->precedence;
	if (strcmp(key, "log.dir") == 0) {
		if (!p->has_log_dirs)
			snprintf(config->log_dirs, sizeof(config->log_dirs), "%s", value);
	} else if (strcmp(key, "leader.imbalance.check.interval.seconds") == 0) {
		if ((err = parse_int(key, value, 1, INT32_MAX, &v, why, why_size)) == TL_OK)
			config->leader_imbalance_check_interval_ms = v * 1000;
	} else if (strcmp(key, "log.io.engine") == 0) {
		if (strcmp(value, "auto") == 0)
			config->io_engine = TL_RING_MODE_AUTO;
		else if (strcmp(value, "io_uring") == 0)
			config->io_engine = TL_RING_MODE_URING;
		else if (strcmp(value, "sync") == 0)
			config->io_engine = TL_RING_MODE_SYNC;
		else {
			snprintf(why, why_size,
				 "config log.io.engine: \"%s\" is not auto, io_uring or sync",
				 value);
			err = TL_ERR_INVALID;
		}
	} else if (strcmp(key, "log.format") == 0) {
		if (strcmp(value, "text") && strcmp(value, "logfmt") && strcmp(value, "json")) {
			snprintf(why, why_size,
				 "config log.format: \"%s\" is not text, logfmt or json", value);
			return TL_ERR_INVALID;
		}
		snprintf(config->log_format, sizeof(config->log_format), "%s", value);
	} else if (strcmp(key, "log.cleaner.io.max.bytes.per.second") == 0) {
		double rate;
		if ((err = parse_double(key, value, 1, DBL_MAX, &rate, why, why_size)) == TL_OK)
			config->log.cleaner_io_bytes_per_sec =
				rate >= 9.2e18 ? -1 : (int64_t)rate; /* Kafka's default: no limit */
	} else if (strcmp(key, "log.cleaner.min.cleanable.ratio") == 0) {
		err = parse_double(key, value, 0, 1, &config->log.min_cleanable_dirty_ratio, why,
				   why_size);
	} else if (strcmp(key, "log.cleanup.policy") == 0) {
		err = tl_config_parse_cleanup_policy(key, value, &config->log, why, why_size);
	} else if (strcmp(key, "log.level") == 0) {
		if (strcmp(value, "crit") && strcmp(value, "warn") && strcmp(value, "info") &&
		    strcmp(value, "debug")) {
			snprintf(why, why_size,
				 "config log.level: \"%s\" is not crit, warn, info or debug",
				 value);
			return TL_ERR_INVALID;
		}
		snprintf(config->log_level, sizeof(config->log_level), "%s", value);
	} else if (strcmp(key, "log.message.timestamp.type") == 0) {
		err = parse_timestamp_type(
			key, value, &config->log_message_timestamp_log_append_time, why, why_size);
	} else if (strcmp(key, "log.preallocate.bytes") == 0) {
		/* Tally's: the step of log.preallocate, whole 4 KiB blocks (direct writes). */
		if ((err = parse_int(key, value, 0, (int64_t)1 << 40, &v, why, why_size)) ==
			    TL_OK &&
		    v % 4096 != 0) {
			snprintf(why, why_size, "config %s: %" PRId64 " is not a multiple of 4096",
				 key, v);
			err = TL_ERR_INVALID;
		} else if (err == TL_OK) {
			config->log.preallocate_bytes = v;
		}
	} else if (strcmp(key, "log.retention.ms") == 0) {
		if ((err = parse_int(key, value, -1, INT64_MAX, &v, why, why_size)) == TL_OK)
			p->retention_ms =
				v == -1 ? -1 : v + 1; /* +1: 0 stays distinct from unset */
	} else if (strcmp(key, "log.retention.minutes") == 0) {
		if ((err = parse_int(key, value, -1, INT32_MAX, &v, why, why_size)) == TL_OK)
			p->retention_minutes = v == -1 ? -1 : v + 1;
	} else if (strcmp(key, "log.retention.hours") == 0) {
		if ((err = parse_int(key, value, -1, INT32_MAX, &v, why, why_size)) == TL_OK)
			p->retention_hours = v == -1 ? -1 : v + 1;
	} else if (strcmp(key, "log.roll.ms") == 0) {
		if ((err = parse_int(key, value, 1, INT64_MAX, &v, why, why_size)) == TL_OK)
			p->roll_ms = v;
	} else if (strcmp(key, "log.roll.hours") == 0) {
		if ((err = parse_int(key, value, 1, INT32_MAX, &v, why, why_size)) == TL_OK)
			p->roll_hours = v;
	} else if (strcmp(key, "test.fault.drop.produce.response.ratio") == 0) {
		const char *env = getenv("TALLY_TEST_FAULTS");
		char *end;
		double ratio = strtod(value, &end);
		if (!env || strcmp(env, "1") != 0) {
			snprintf(why, why_size,
				 "config %s is a test fault switch; it is refused unless the "
				 "environment sets TALLY_TEST_FAULTS=1",
				 key);
			err = TL_ERR_INVALID;
		} else if (*end || end == value || ratio < 0 || ratio > 1) {
			snprintf(why, why_size, "config %s: \"%s\" is not a ratio in [0, 1]", key,
				 value);
			err = TL_ERR_INVALID;
		} else {
			config->test_fault_drop_produce_response = ratio;
		}
	} else {
		TL_ASSERT(!"special key without a handler");
	}
	return err;
}

static void unknown_key_message(const char *key, char *why, size_t why_size)
{
	const char *names[TL_ARRAY_SIZE(broker_keys) + TL_CONFIG_KAFKA_KEYS_MAX];
	size_t count = 0;
	for (size_t i = 0; i < TL_ARRAY_SIZE(broker_keys); i++)
		names[count++] = broker_keys[i].name;
	for (int i = 0; i < tl_config_kafka_key_count(); i++)
		names[count++] = tl_config_kafka_key_name(i);
	const char *hint = closest_key(key, names, count);
	if (hint)
		snprintf(why, why_size, "config: unknown key \"%s\"; did you mean \"%s\"?", key,
			 hint);
	else
		snprintf(why, why_size, "config: unknown key \"%s\"", key);
}

static bool is_jaas_key(const char *key)
{
	static const char suffix[] = ".sasl.jaas.config";
	size_t len = strlen(key);
	if (strcmp(key, "sasl.jaas.config") == 0)
		return true;
	return strncmp(key, "listener.name.", strlen("listener.name.")) == 0 &&
	       len > strlen("listener.name.") + strlen(suffix) &&
	       strcmp(key + len - strlen(suffix), suffix) == 0;
}

/* A per-listener key (listener.name.<listener>.@suffix) that sets how clients are
 * authenticated or encrypted: Kafka's ssl.*, sasl.*, <mechanism>.sasl.* and
 * connections.max.reauth.ms. */
static bool listener_key_is_security(const char *suffix)
{
	return strncmp(suffix, "ssl.", 4) == 0 || strncmp(suffix, "sasl.", 5) == 0 ||
	       strstr(suffix, ".sasl.") != NULL ||
	       strcmp(suffix, "connections.max.reauth.ms") == 0 ||
	       strcmp(suffix, "principal.builder.class") == 0;
}

/* ---- JAAS text (sasl.jaas.config) ---- */

struct jaas_lexer {
	const char *p;
	char token[TL_CONFIG_JAAS_TEXT_MAX];
	bool quoted;
};

static bool jaas_word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '$' ||
	       c == '/' || c == ':' || c == '@' || c == '+' || c == '*';
}

/* The next token into lexer->token: a word, a quoted string, or one of '=' ';'.
 * 0 at the end, 'w' a word or string, '=' or ';', or -1 with a reason in @why. */
static int jaas_next(struct jaas_lexer *lx, char *why, size_t why_size)
{
	while (isspace((unsigned char)*lx->p))
		lx->p++;
	lx->quoted = false;
	lx->token[0] = '\0';
	char c = *lx->p;
	if (c == '\0')
		return 0;
	if (c == '=' || c == ';') {
		lx->p++;
		lx->token[0] = c;
		lx->token[1] = '\0';
		return c;
	}
	size_t n = 0;
	if (c == '"') {
		lx->quoted = true;
		lx->p++;
		for (;;) {
			c = *lx->p++;
			if (c == '\0') {
				snprintf(why, why_size, "a quoted value has no closing '\"'");
				return -1;
			}
			if (c == '"')
				break;
			if (c == '\\') {
				c = *lx->p++;
				if (c == '\0') {
					snprintf(why, why_size,
						 "a quoted value ends in a lone '\\'");
					return -1;
				}
				c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
			}
			if (n + 1 >= sizeof(lx->token)) {
				snprintf(why, why_size, "a value is too long");
				return -1;
			}
			lx->token[n++] = c;
		}
		lx->token[n] = '\0';
		return 'w';
	}
	if (!jaas_word_char(c)) {
		snprintf(why, why_size, "unexpected character '%c' (quote values with \"...\")",
			 isprint((unsigned char)c) ? c : '?');
		return -1;
	}
	while (jaas_word_char(*lx->p)) {
		if (n + 1 >= sizeof(lx->token)) {
			snprintf(why, why_size, "a word is too long");
			return -1;
		}
		lx->token[n++] = *lx->p++;
	}
	lx->token[n] = '\0';
	return 'w';
}

tl_err tl_config_jaas_parse(const char *text, struct tl_jaas_login *out, char *why, size_t why_size)
{
	memset(out, 0, sizeof(*out));
	struct jaas_lexer lx = {.p = text};
	tl_err err = TL_ERR_INVALID;
	char detail[160];
	int t = jaas_next(&lx, detail, sizeof(detail));
	if (t == 0) {
		snprintf(why, why_size,
			 "no login module (want e.g. "
			 "org.apache.kafka.common.security.scram.ScramLoginModule "
			 "required username=\"...\" password=\"...\";)");
		goto out;
	}
	if (t != 'w' || lx.quoted) {
		snprintf(why, why_size, "%s", t < 0 ? detail : "a login module class name first");
		goto out;
	}
	if (strlen(lx.token) >= sizeof(out->module)) {
		snprintf(why, why_size, "the login module class name is too long");
		goto out;
	}
	memcpy(out->module, lx.token, strlen(lx.token) + 1); /* length checked above */
	t = jaas_next(&lx, detail, sizeof(detail));
	if (t != 'w' || lx.quoted ||
	    (strcasecmp(lx.token, "required") != 0 && strcasecmp(lx.token, "requisite") != 0 &&
	     strcasecmp(lx.token, "sufficient") != 0 && strcasecmp(lx.token, "optional") != 0)) {
		snprintf(why, why_size,
			 "%s: after the login module a control flag: required, requisite, "
			 "sufficient or optional",
			 t < 0 ? detail : out->module);
		goto out;
	}
	for (;;) {
		t = jaas_next(&lx, detail, sizeof(detail));
		if (t < 0) {
			snprintf(why, why_size, "%s: %s", out->module, detail);
			goto out;
		}
		if (t == ';')
			break;
		if (t == 0) {
			snprintf(why, why_size,
				 "%s: missing ';' at the end of the login module's options",
				 out->module);
			goto out;
		}
		if (t != 'w' || lx.quoted) {
			snprintf(why, why_size, "%s: an option name expected, not '%s'",
				 out->module, lx.token);
			goto out;
		}
		char name[64];
		if (strlen(lx.token) >= sizeof(name)) {
			snprintf(why, why_size, "%s: an option name is too long", out->module);
			goto out;
		}
		memcpy(name, lx.token, strlen(lx.token) + 1); /* length checked above */
		t = jaas_next(&lx, detail, sizeof(detail));
		if (t != '=') {
			snprintf(why, why_size, "%s: option %s has no '=' and value%s%s",
				 out->module, name, t < 0 ? ": " : "", t < 0 ? detail : "");
			goto out;
		}
		t = jaas_next(&lx, detail, sizeof(detail));
		if (t != 'w') {
			snprintf(why, why_size, "%s: option %s has no value%s%s", out->module, name,
				 t < 0 ? ": " : "", t < 0 ? detail : "");
			goto out;
		}
		char *field = NULL;
		bool *has = NULL;
		size_t field_size = 0;
		if (strcmp(name, "username") == 0) {
			field = out->username;
			has = &out->has_username;
			field_size = sizeof(out->username);
		} else if (strcmp(name, "password") == 0) {
			field = out->password;
			has = &out->has_password;
			field_size = sizeof(out->password);
		}
		if (!field)
			continue; /* user_<name>, serviceName, ...: not Tally's */
		if (strlen(lx.token) >= field_size) {
			snprintf(why, why_size, "%s: option %s is longer than %zu bytes",
				 out->module, name, field_size - 1);
			goto out;
		}
		memcpy(field, lx.token, strlen(lx.token) + 1); /* length checked above */
		*has = true;
	}
	t = jaas_next(&lx, detail, sizeof(detail));
	if (t != 0) {
		snprintf(why, why_size,
			 "%s: text after its ';': one login module only (as Kafka's "
			 "sasl.jaas.config)",
			 out->module);
		goto out;
	}
	err = TL_OK;
out:
	explicit_bzero(lx.token, sizeof(lx.token));
	if (err != TL_OK)
		explicit_bzero(out, sizeof(*out));
	return err;
}

tl_err tl_config_set(struct tl_config *config, const char *key, const char *value, char *why,
		     size_t why_size)
{
	const struct key_def *def = NULL;
	for (size_t i = 0; i < TL_ARRAY_SIZE(broker_keys); i++)
		if (strcmp(broker_keys[i].name, key) == 0)
			def = &broker_keys[i];
	if (!def && is_jaas_key(key)) {
		if (strlen(value) >= TL_CONFIG_JAAS_TEXT_MAX ||
		    strlen(key) >= sizeof(config->jaas[0].key)) {
			snprintf(why, why_size, "config %s: longer than %d bytes", key,
				 TL_CONFIG_JAAS_TEXT_MAX - 1);
			return TL_ERR_INVALID;
		}
		struct tl_config_jaas *j = NULL;
		for (int32_t i = 0; i < config->jaas_count && !j; i++)
			if (strcasecmp(config->jaas[i].key, key) == 0)
				j = &config->jaas[i]; /* given again: the last one counts */
		if (!j && config->jaas_count == TL_CONFIG_JAAS_MAX) {
			snprintf(why, why_size, "config %s: more than %d JAAS entries", key,
				 TL_CONFIG_JAAS_MAX);
			return TL_ERR_INVALID;
		}
		if (!j)
			j = &config->jaas[config->jaas_count++];
		snprintf(j->key, sizeof(j->key), "%s", key);
		snprintf(j->text, sizeof(j->text), "%s", value);
		return TL_OK;
	}
	if (!def) {
		/* Kafka's keys that Tally does not implement start the broker (a stock
		 * server.properties must), and tl_config_report names them once. */
		int kafka_index = tl_config_kafka_key_index(key);
		if (kafka_index >= 0) {
			config->kafka_keys_ignored[kafka_index / 64] |= 1ull << (kafka_index % 64);
			return TL_OK;
		}
		const char *rest = strncmp(key, "listener.name.", strlen("listener.name.")) == 0
					   ? strchr(key + strlen("listener.name."), '.')
					   : NULL;
		if (rest && listener_key_is_security(rest + 1)) {
			/* Ignored, a listener would run with weaker settings than its
			 * operator wrote (no client certificate asked for, say). */
			snprintf(why, why_size,
				 "config %s: per-listener security settings are not supported; "
				 "set %s for the whole broker (only "
				 "listener.name.<listener>.<mechanism>.sasl.jaas.config is per "
				 "listener)",
				 key, rest + 1);
			return TL_ERR_INVALID;
		}
		if (rest) {
			config->listener_prefixed_ignored++;
			return TL_OK;
		}
		unknown_key_message(key, why, why_size);
		return TL_ERR_INVALID;
	}
	if (def->type != KEY_SPECIAL && strncmp(key, "test.fault.", strlen("test.fault.")) == 0) {
		const char *env = getenv("TALLY_TEST_FAULTS");
		if (!env || strcmp(env, "1") != 0) {
			snprintf(why, why_size,
				 "config %s is a test fault switch; it is refused unless the "
				 "environment sets TALLY_TEST_FAULTS=1",
				 key);
			return TL_ERR_INVALID;
		}
	}
	size_t def_index = (size_t)(def - broker_keys);
	config->keys_set[def_index / 64] |= 1ull << (def_index % 64);
	char *field = (char *)config + def->offset;
	int64_t v;
	tl_err err = TL_OK;
	switch (def->type) {
	case KEY_INT16:
	case KEY_INT32:
	case KEY_INT64:
		err = parse_int(key, value, def->min, def->max, &v, why, why_size);
		if (err != TL_OK)
			break;
		if (def->type == KEY_INT16)
			*(int16_t *)(void *)field = (int16_t)v;
		else if (def->type == KEY_INT32)
			*(int32_t *)(void *)field = (int32_t)v;
		else
			*(int64_t *)(void *)field = v;
		break;
	case KEY_BOOL:
		err = parse_bool(key, value, (bool *)(void *)field, why, why_size);
		break;
	case KEY_STRING:
		if (strlen(value) >= (size_t)def->max) {
			snprintf(why, why_size, "config %s: value longer than %" PRId64 " bytes",
				 key, def->max - 1);
			return TL_ERR_INVALID;
		}
		snprintf(field, (size_t)def->max, "%s", value);
		if (strcmp(key, "log.dirs") == 0)
			config->precedence.has_log_dirs = true;
		break;
	case KEY_SPECIAL:
		err = config_set_special(config, key, value, why, why_size);
		break;
	}
	return err;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* A physical line ending in an odd number of backslashes goes on on the next one, whose
 * leading white space is dropped, as in Java's .properties (Kafka's JAAS examples are
 * written so). Other backslash escapes are kept as they are. */
static bool line_continues(char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	size_t backslashes = 0;
	while (backslashes < n && line[n - 1 - backslashes] == '\\')
		backslashes++;
	if (backslashes % 2 == 0)
		return false;
	line[n - 1] = '\0';
	return true;
}

tl_err tl_config_load_file(struct tl_config *config, const char *path, char *why, size_t why_size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, why_size, "config: cannot open %s: %s", path, strerror(errno));
		return TL_ERR_IO;
	}
	char line[2048];
	char logical[8192];
	size_t logical_len = 0;
	bool continued = false;
	int line_no = 0, first_line_no = 0;
	tl_err err = TL_OK;
	while (err == TL_OK && fgets(line, sizeof(line), f)) {
		line_no++;
		char *part = line;
		if (!continued) {
			first_line_no = line_no;
			logical_len = 0;
			char *s = trim(line);
			if (*s == '\0' || *s == '#' || *s == '!')
				continue;
		} else {
			while (isspace((unsigned char)*part))
				part++;
		}
		continued = line_continues(part);
		size_t n = strlen(part);
		if (logical_len + n >= sizeof(logical)) {
			snprintf(why, why_size, "config %s:%d: a line longer than %zu bytes", path,
				 first_line_no, sizeof(logical) - 1);
			err = TL_ERR_INVALID;
			break;
		}
		memcpy(logical + logical_len, part, n + 1);
		logical_len += n;
		if (continued)
			continue;
		char *s = trim(logical);
		char *sep = strpbrk(s, "=:");
		if (!sep) {
			snprintf(why, why_size, "config %s:%d: expected key=value", path,
				 first_line_no);
			err = TL_ERR_INVALID;
			break;
		}
		*sep = '\0';
		char *key = trim(s), *value = trim(sep + 1);
		err = tl_config_set(config, key, value, why, why_size);
		if (err != TL_OK) {
			size_t len = strlen(why);
			snprintf(why + len, why_size - len, " (%s:%d)", path, first_line_no);
		}
	}
	if (err == TL_OK && continued) {
		snprintf(why, why_size,
			 "config %s:%d: the last line ends in a '\\' with no line after it", path,
			 first_line_no);
		err = TL_ERR_INVALID;
	}
	explicit_bzero(logical, sizeof(logical)); /* JAAS text holds passwords */
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return err;
}

static tl_err config_finish_listeners(struct tl_config *config, char *why, size_t why_size);

/* sasl.enabled.mechanisms: a comma list of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512. */
static tl_err config_finish_sasl(struct tl_config *config, char *why, size_t why_size)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} known[] = {
		{"PLAIN", TL_SASL_MECHANISM_PLAIN},
		{"SCRAM-SHA-256", TL_SASL_MECHANISM_SCRAM_SHA_256},
		{"SCRAM-SHA-512", TL_SASL_MECHANISM_SCRAM_SHA_512},
	};
	config->sasl_mechanisms = 0;
	const char *p = config->sasl_enabled_mechanisms;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ", ");
		if (len == 0)
			break;
		uint32_t bit = 0;
		for (size_t i = 0; i < TL_ARRAY_SIZE(known); i++)
			if (strlen(known[i].name) == len && strncasecmp(p, known[i].name, len) == 0)
				bit = known[i].bit;
		if (!bit) {
			snprintf(why, why_size,
				 "config sasl.enabled.mechanisms: \"%.*s\" is not supported "
				 "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
				 (int)len, p);
			return TL_ERR_INVALID;
		}
		config->sasl_mechanisms |= bit;
		p += len;
	}
	return TL_OK;
}

tl_err tl_config_finish(struct tl_config *config, char *why, size_t why_size)
{
	struct tl_config_precedence *p = &config->precedence;
	int64_t retention = config->log.retention_ms;
	if (p->retention_ms)
		retention = p->retention_ms == -1 ? -1 : p->retention_ms - 1;
	else if (p->retention_minutes)
		retention = p->retention_minutes == -1 ? -1 : (p->retention_minutes - 1) * 60000;
	else if (p->retention_hours)
		retention = p->retention_hours == -1 ? -1 : (p->retention_hours - 1) * 3600000;
	config->log.retention_ms = retention;
	if (p->roll_ms)
		config->log.segment_ms = p->roll_ms;
	else if (p->roll_hours)
		config->log.segment_ms = p->roll_hours * 3600000;

	/* Every JAAS text given must parse, used or not, as Kafka refuses a broken one. */
	for (int32_t i = 0; i < config->jaas_count; i++) {
		struct tl_jaas_login login;
		char detail[320];
		if (tl_config_jaas_parse(config->jaas[i].text, &login, detail, sizeof(detail)) !=
		    TL_OK) {
			snprintf(why, why_size, "config %s: %s", config->jaas[i].key, detail);
			return TL_ERR_INVALID;
		}
		explicit_bzero(&login, sizeof(login));
	}
	tl_err err = config_finish_listeners(config, why, why_size);
	if (err != TL_OK)
		return err;
	err = config_finish_sasl(config, why, why_size);
	if (err != TL_OK)
		return err;
	if (config->message_max_bytes > config->socket_request_max_bytes) {
		snprintf(why, why_size,
			 "config message.max.bytes (%d) exceeds socket.request.max.bytes (%d)",
			 config->message_max_bytes, config->socket_request_max_bytes);
		return TL_ERR_INVALID;
	}
	if (strchr(config->log_dirs, ',')) {
		/* One event loop, one data directory for now: say so rather than ignore it. */
		snprintf(why, why_size,
			 "config log.dirs: several directories are not supported yet (\"%s\")",
			 config->log_dirs);
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

/* Parses one "NAME://host:port" of @len bytes at @text. */
static tl_err parse_one_listener(const char *text, size_t len, struct tl_listener *out)
{
	memset(out, 0, sizeof(*out));
	const char *sep = memmem(text, len, "://", 3);
	if (!sep || sep == text || (size_t)(sep - text) >= sizeof(out->name))
		return TL_ERR_INVALID;
	for (const char *c = text; c < sep; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
			return TL_ERR_INVALID;
	memcpy(out->name, text, (size_t)(sep - text));
	const char *h = sep + 3, *end = text + len;
	const char *host_end, *colon;
	if (h < end && *h == '[') { /* [v6]:port */
		const char *close = memchr(h, ']', (size_t)(end - h));
		if (!close || close + 1 >= end || close[1] != ':')
			return TL_ERR_INVALID;
		h++;
		host_end = close;
		colon = close + 1;
	} else {
		colon = NULL;
		for (const char *c = h; c < end; c++)
			if (*c == ':')
				colon = c;
		if (!colon)
			return TL_ERR_INVALID;
		host_end = colon;
	}
	size_t host_len = (size_t)(host_end - h);
	if (host_len >= sizeof(out->host))
		return TL_ERR_INVALID;
	memcpy(out->host, h, host_len);
	char portbuf[8];
	size_t port_len = (size_t)(end - colon - 1);
	if (port_len == 0 || port_len >= sizeof(portbuf))
		return TL_ERR_INVALID;
	memcpy(portbuf, colon + 1, port_len);
	portbuf[port_len] = '\0';
	char *e;
	long port = strtol(portbuf, &e, 10);
	if (*e || port < 0 || port > 65535)
		return TL_ERR_INVALID;
	out->port = (int32_t)port;
	return TL_OK;
}

tl_err tl_config_parse_listeners(const char *text, struct tl_listener *out, int32_t *count_out,
				 char *why, size_t why_size)
{
	int32_t count = 0;
	const char *p = text;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (count == TL_CONFIG_LISTENERS_MAX) {
			snprintf(why, why_size, "more than %d listeners", TL_CONFIG_LISTENERS_MAX);
			return TL_ERR_INVALID;
		}
		if (parse_one_listener(p, len, &out[count]) != TL_OK) {
			snprintf(why, why_size, "\"%.*s\" is not NAME://host:port", (int)len, p);
			return TL_ERR_INVALID;
		}
		for (int32_t i = 0; i < count; i++)
			if (strcmp(out[i].name, out[count].name) == 0) {
				snprintf(why, why_size, "listener name %s appears twice",
					 out[count].name);
				return TL_ERR_INVALID;
			}
		count++;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (count == 0) {
		snprintf(why, why_size, "no listener");
		return TL_ERR_INVALID;
	}
	*count_out = count;
	return TL_OK;
}

/* Looks up @name in a "NAME:PROTOCOL,..." map; writes the protocol to @out. */
static bool protocol_of(const char *map, const char *name, char *out, size_t out_size)
{
	size_t name_len = strlen(name);
	for (const char *p = map; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *colon = memchr(p, ':', len);
		if (colon && (size_t)(colon - p) == name_len &&
		    strncasecmp(p, name, name_len) == 0) {
			size_t proto_len = len - name_len - 1;
			while (proto_len && colon[proto_len] == ' ')
				proto_len--;
			if (proto_len >= out_size)
				return false;
			memcpy(out, colon + 1, proto_len);
			out[proto_len] = '\0';
			return true;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* True when @name is one of the comma-separated @names. */
static bool name_in_list(const char *names, const char *name)
{
	size_t name_len = strlen(name);
	for (const char *p = names; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && p[len - 1] == ' ')
			len--;
		if (len == name_len && strncasecmp(p, name, len) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

static bool security_protocol_parse(const char *text, enum tl_security_protocol *out)
{
	static const char *const names[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
	for (size_t i = 0; i < TL_ARRAY_SIZE(names); i++)
		if (strcmp(text, names[i]) == 0) {
			*out = (enum tl_security_protocol)i;
			return true;
		}
	return false;
}

/* The ssl.* keys, checked when an SSL or SASL_SSL listener is served; the files are
 * read when the broker starts (common/tls.c). */
static tl_err config_finish_ssl(const struct tl_config *config, char *why, size_t why_size)
{
	enum tl_tls_client_auth auth;
	if (!config->ssl_keystore_location[0]) {
		snprintf(why, why_size,
			 "config ssl.keystore.location: an SSL or SASL_SSL listener needs a PEM "
			 "file with the broker's certificate chain and private key");
		return TL_ERR_INVALID;
	}
	if (strcasecmp(config->ssl_keystore_type, "PEM") != 0 ||
	    strcasecmp(config->ssl_truststore_type, "PEM") != 0) {
		snprintf(why, why_size,
			 "config ssl.keystore.type / ssl.truststore.type: only PEM is supported "
			 "(\"%s\" / \"%s\")",
			 config->ssl_keystore_type, config->ssl_truststore_type);
		return TL_ERR_INVALID;
	}
	if (!tl_tls_client_auth_parse(config->ssl_client_auth, &auth)) {
		snprintf(why, why_size,
			 "config ssl.client.auth: \"%s\" is not none, requested or required",
			 config->ssl_client_auth);
		return TL_ERR_INVALID;
	}
	if (auth != TL_TLS_CLIENT_AUTH_NONE && !config->ssl_truststore_location[0]) {
		snprintf(why, why_size,
			 "config ssl.client.auth=%s needs ssl.truststore.location (the CAs that "
			 "sign client certificates)",
			 config->ssl_client_auth);
		return TL_ERR_INVALID;
	}
	if (!tl_tls_protocols_valid(config->ssl_enabled_protocols)) {
		snprintf(why, why_size,
			 "config ssl.enabled.protocols: \"%s\"; TLSv1.2 and TLSv1.3 are supported",
			 config->ssl_enabled_protocols);
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

/* The JAAS text Kafka would use for the broker's login on @listener with @mechanism:
 * listener.name.<listener>.<mechanism>.sasl.jaas.config (lower case in Kafka; any
 * case here), else sasl.jaas.config; NULL when neither is given. */
static const struct tl_config_jaas *jaas_for(const struct tl_config *config, const char *listener,
					     const char *mechanism)
{
	char key[160];
	snprintf(key, sizeof(key), "listener.name.%s.%s.sasl.jaas.config", listener, mechanism);
	for (int32_t i = 0; i < config->jaas_count; i++)
		if (strcasecmp(config->jaas[i].key, key) == 0)
			return &config->jaas[i];
	for (int32_t i = 0; i < config->jaas_count; i++)
		if (strcmp(config->jaas[i].key, "sasl.jaas.config") == 0)
			return &config->jaas[i];
	return NULL;
}

/* The inter-broker login from the listener's JAAS text, where given: its module must
 * fit the mechanism, and inter.broker.sasl.username / .password, if also given, must
 * say the same. */
static tl_err config_finish_jaas(struct tl_config *config, const struct tl_listener *inter,
				 const char *mech, char *why, size_t why_size)
{
	const struct tl_config_jaas *j = jaas_for(config, inter->name, mech);
	if (!j)
		return TL_OK;
	struct tl_jaas_login login;
	char detail[320];
	tl_err err = tl_config_jaas_parse(j->text, &login, detail, sizeof(detail));
	if (err != TL_OK) {
		snprintf(why, why_size, "config %s: %s", j->key, detail);
		return err;
	}
	err = TL_ERR_INVALID;
	const char *want = strcmp(mech, "PLAIN") == 0
				   ? "org.apache.kafka.common.security.plain.PlainLoginModule"
				   : "org.apache.kafka.common.security.scram.ScramLoginModule";
	if (strcmp(login.module, want) != 0) {
		snprintf(why, why_size,
			 "config %s: login module %s does not log in with %s "
			 "(sasl.mechanism.inter.broker.protocol); want %s",
			 j->key, login.module, mech, want);
		goto out;
	}
	if (!login.has_username || !login.has_password || !login.username[0] ||
	    !login.password[0]) {
		snprintf(why, why_size,
			 "config %s: the broker's inter-broker login needs username=\"...\" and "
			 "password=\"...\" options",
			 j->key);
		goto out;
	}
	if (config->inter_broker_sasl_username[0] &&
	    strcmp(config->inter_broker_sasl_username, login.username) != 0) {
		snprintf(why, why_size,
			 "config %s and inter.broker.sasl.username disagree on the user (\"%s\" "
			 "vs \"%s\"): give one of them",
			 j->key, login.username, config->inter_broker_sasl_username);
		goto out;
	}
	if (config->inter_broker_sasl_password[0] &&
	    strcmp(config->inter_broker_sasl_password, login.password) != 0) {
		snprintf(why, why_size,
			 "config %s and inter.broker.sasl.password disagree on the password: "
			 "give one of them",
			 j->key);
		goto out;
	}
	snprintf(config->inter_broker_sasl_username, sizeof(config->inter_broker_sasl_username),
		 "%s", login.username);
	snprintf(config->inter_broker_sasl_password, sizeof(config->inter_broker_sasl_password),
		 "%s", login.password);
	err = TL_OK;
out:
	explicit_bzero(&login, sizeof(login));
	return err;
}

/* The broker's own SASL login toward the other brokers' inter-broker listener. */
static tl_err config_finish_inter_broker_sasl(struct tl_config *config,
					      const struct tl_listener *inter, char *why,
					      size_t why_size)
{
	const char *mech = config->sasl_mechanism_inter_broker_protocol;
	if (strcmp(mech, "PLAIN") != 0 && strcmp(mech, "SCRAM-SHA-256") != 0 &&
	    strcmp(mech, "SCRAM-SHA-512") != 0) {
		snprintf(
			why, why_size,
			"config sasl.mechanism.inter.broker.protocol: \"%s\"; the inter-broker "
			"listener %s is %s, so name PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's "
			"default GSSAPI is not supported)",
			mech, inter->name, inter->protocol);
		return TL_ERR_INVALID;
	}
	tl_err err = config_finish_jaas(config, inter, mech, why, why_size);
	if (err != TL_OK)
		return err;
	if (!config->inter_broker_sasl_username[0] || !config->inter_broker_sasl_password[0]) {
		char prefix[96]; /* Kafka writes the key's listener and mechanism in lower case */
		snprintf(prefix, sizeof(prefix), "%s.%s", inter->name, mech);
		for (char *c = prefix; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		snprintf(why, why_size,
			 "config inter.broker.sasl.username / inter.broker.sasl.password: the "
			 "inter-broker listener %s is %s; the broker logs in to the others with "
			 "these credentials, or with username and password of Kafka's JAAS text "
			 "in listener.name.%s.sasl.jaas.config or sasl.jaas.config",
			 inter->name, inter->protocol, prefix);
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

/* Gives each listener its protocol; picks the inter-broker one (registered in cluster
 * mode): inter.broker.listener.name if set, else the first PLAINTEXT listener, else the
 * first one, never a KRaft controller listener. */
static tl_err config_finish_protocols(struct tl_config *config, char *why, size_t why_size)
{
	config->listener_served = -1;
	config->has_tls_listener = false;
	int32_t first_any = -1;
	if (config->security_inter_broker_protocol[0] && config->inter_broker_listener_name[0]) {
		snprintf(why, why_size,
			 "config: only one of inter.broker.listener.name and "
			 "security.inter.broker.protocol may be set (as in Kafka)");
		return TL_ERR_INVALID;
	}
	/* security.inter.broker.protocol: Kafka takes the listener named after it. */
	const char *inter_name = config->inter_broker_listener_name[0]
					 ? config->inter_broker_listener_name
					 : config->security_inter_broker_protocol;
	for (int32_t i = 0; i < config->listener_count; i++) {
		struct tl_listener *l = &config->listener_list[i];
		if (!protocol_of(config->listener_security_protocol_map, l->name, l->protocol,
				 sizeof(l->protocol))) {
			snprintf(why, why_size,
				 "config listeners: listener %s has no security protocol in "
				 "listener.security.protocol.map (\"%s\")",
				 l->name, config->listener_security_protocol_map);
			return TL_ERR_INVALID;
		}
		if (!security_protocol_parse(l->protocol, &l->security_protocol)) {
			snprintf(why, why_size,
				 "config listener.security.protocol.map: \"%s\" (listener %s) is "
				 "not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
				 l->protocol, l->name);
			return TL_ERR_INVALID;
		}
		l->served = !name_in_list(config->controller_listener_names, l->name);
		if (!l->served)
			continue;
		config->has_tls_listener |= tl_security_protocol_is_tls(l->security_protocol);
		if (first_any < 0)
			first_any = i;
		bool named = inter_name[0] && strcasecmp(l->name, inter_name) == 0;
		if (named || (!inter_name[0] && config->listener_served < 0 &&
			      l->security_protocol == TL_SECURITY_PLAINTEXT))
			config->listener_served = i;
	}
	if (config->listener_served < 0 && !inter_name[0])
		config->listener_served = first_any;
	if (config->listener_served < 0) {
		snprintf(why, why_size, "config listeners: no listener to serve in \"%s\"%s%s",
			 config->listeners,
			 inter_name[0] ? " named by inter.broker.listener.name / "
					 "security.inter.broker.protocol="
				       : "",
			 inter_name);
		return TL_ERR_INVALID;
	}
	const struct tl_listener *inter = &config->listener_list[config->listener_served];
	if (tl_config_is_cluster(config) && tl_security_protocol_is_sasl(inter->security_protocol))
		return config_finish_inter_broker_sasl(config, inter, why, why_size);
	return TL_OK;
}

/* Parses listeners and advertised.listeners: each listener gets its protocol and its
 * advertised address, and every one but KRaft controller listeners is served. */
static tl_err config_finish_listeners(struct tl_config *config, char *why, size_t why_size)
{
	char detail[256];
	if (tl_config_parse_listeners(config->listeners, config->listener_list,
				      &config->listener_count, detail, sizeof(detail)) != TL_OK) {
		snprintf(why, why_size, "config listeners: %s in \"%s\"", detail,
			 config->listeners);
		return TL_ERR_INVALID;
	}
	tl_err err = config_finish_protocols(config, why, why_size);
	if (err != TL_OK)
		return err;
	if (config->has_tls_listener && (err = config_finish_ssl(config, why, why_size)) != TL_OK)
		return err;
	const struct tl_listener *served = &config->listener_list[config->listener_served];
	config->has_advertised = false;
	if (!config->advertised_listeners[0])
		return TL_OK;
	struct tl_listener adv[TL_CONFIG_LISTENERS_MAX];
	int32_t adv_count;
	if (tl_config_parse_listeners(config->advertised_listeners, adv, &adv_count, detail,
				      sizeof(detail)) != TL_OK) {
		snprintf(why, why_size, "config advertised.listeners: %s in \"%s\"", detail,
			 config->advertised_listeners);
		return TL_ERR_INVALID;
	}
	for (int32_t i = 0; i < adv_count; i++) {
		struct tl_listener *l = NULL;
		for (int32_t j = 0; j < config->listener_count; j++)
			if (strcasecmp(adv[i].name, config->listener_list[j].name) == 0)
				l = &config->listener_list[j];
		if (!l) {
			snprintf(why, why_size,
				 "config advertised.listeners: listener %s is not in listeners "
				 "(\"%s\")",
				 adv[i].name, config->listeners);
			return TL_ERR_INVALID;
		}
		l->has_advertised = true;
		snprintf(l->advertised_host, sizeof(l->advertised_host), "%s", adv[i].host);
		l->advertised_port = adv[i].port;
		if (l == served) {
			config->advertised = adv[i];
			snprintf(config->advertised.protocol, sizeof(config->advertised.protocol),
				 "%s", served->protocol);
			config->has_advertised = true;
		}
	}
	return TL_OK;
}

void tl_config_report(const struct tl_config *config)
{
	for (int i = 0; i < tl_config_kafka_key_count(); i++)
		if ((config->kafka_keys_ignored[i / 64] >> (i % 64)) & 1)
			tl_info("config: ignored key=%s (a Kafka key Tally does not use)",
				tl_config_kafka_key_name(i));
	if (config->listener_prefixed_ignored)
		tl_info("config: ignored count=%d per-listener keys (listener.name.*)",
			config->listener_prefixed_ignored);
	for (int32_t i = 0; i < config->listener_count; i++) {
		const struct tl_listener *l = &config->listener_list[i];
		if (!l->served)
			tl_info("config: listener %s is a KRaft controller listener; not served "
				"(Tally keeps its metadata in etcd)",
				l->name);
	}
}

void tl_config_print(const struct tl_config *config, FILE *out)
{
	const char *engines[] = {"auto", "io_uring", "sync"};
	fprintf(out, "advertised.listeners=%s\n", config->advertised_listeners);
	fprintf(out, "auto.create.topics.enable=%s\n",
		config->auto_create_topics_enable ? "true" : "false");
	fprintf(out, "auto.leader.rebalance.enable=%s\n",
		config->auto_leader_rebalance_enable ? "true" : "false");
	fprintf(out, "broker.rack=%s\n", config->broker_rack);
	fprintf(out, "broker.session.timeout.ms=%d\n", config->broker_session_timeout_ms);
	fprintf(out, "cluster.id=%s\n", config->cluster_id);
	fprintf(out, "connections.max.idle.ms=%" PRId64 "\n", config->connections_max_idle_ms);
	fprintf(out, "connections.max.reauth.ms=%" PRId64 "\n", config->connections_max_reauth_ms);
	fprintf(out, "controlled.shutdown.enable=%s\n",
		config->controlled_shutdown_enable ? "true" : "false");
	fprintf(out, "controlled.shutdown.max.ms=%" PRId64 "\n",
		config->controlled_shutdown_max_ms);
	fprintf(out, "controller.listener.names=%s\n", config->controller_listener_names);
	fprintf(out, "default.replication.factor=%d\n", config->default_replication_factor);
	fprintf(out, "delete.topic.enable=%s\n", config->delete_topic_enable ? "true" : "false");
	fprintf(out, "group.initial.rebalance.delay.ms=%d\n",
		config->group_initial_rebalance_delay_ms);
	fprintf(out, "group.max.session.timeout.ms=%d\n", config->group_max_session_timeout_ms);
	fprintf(out, "group.max.size=%d\n", config->group_max_size);
	fprintf(out, "group.min.session.timeout.ms=%d\n", config->group_min_session_timeout_ms);
	fprintf(out, "inter.broker.listener.name=%s\n", config->inter_broker_listener_name);
	fprintf(out, "inter.broker.sasl.password=%s\n",
		config->inter_broker_sasl_password[0] ? "[hidden]" : "");
	fprintf(out, "inter.broker.sasl.username=%s\n", config->inter_broker_sasl_username);
	fprintf(out, "leader.imbalance.check.interval.seconds=%" PRId64 "\n",
		config->leader_imbalance_check_interval_ms / 1000);
	fprintf(out, "listener.security.protocol.map=%s\n", config->listener_security_protocol_map);
	fprintf(out, "listeners=%s\n", config->listeners);
	fprintf(out, "log.cleaner.backoff.ms=%" PRId64 "\n", config->log.cleaner_backoff_ms);
	fprintf(out, "log.cleaner.dedupe.buffer.size=%" PRId64 "\n",
		config->log.cleaner_dedupe_buffer_bytes);
	fprintf(out, "log.cleaner.delete.retention.ms=%" PRId64 "\n",
		config->log.delete_retention_ms);
	fprintf(out, "log.cleaner.enable=%s\n", config->log.cleaner_enable ? "true" : "false");
	if (config->log.cleaner_io_bytes_per_sec > 0)
		fprintf(out, "log.cleaner.io.max.bytes.per.second=%" PRId64 "\n",
			config->log.cleaner_io_bytes_per_sec);
	else
		fprintf(out, "log.cleaner.io.max.bytes.per.second=1.7976931348623157E308\n");
	fprintf(out, "log.cleaner.max.compaction.lag.ms=%" PRId64 "\n",
		config->log.max_compaction_lag_ms);
	fprintf(out, "log.cleaner.min.cleanable.ratio=%g\n", config->log.min_cleanable_dirty_ratio);
	fprintf(out, "log.cleaner.min.compaction.lag.ms=%" PRId64 "\n",
		config->log.min_compaction_lag_ms);
	fprintf(out, "log.cleaner.nice=%d\n", config->log.cleaner_nice);
	fprintf(out, "log.cleaner.threads=%d\n", config->log.cleaner_threads);
	fprintf(out, "log.cleanup.policy=%s\n", tl_config_cleanup_policy_name(&config->log));
	fprintf(out, "log.direct.io=%s\n", config->log.direct_io ? "true" : "false");
	fprintf(out, "log.cache.bytes=%" PRId64 "\n", config->log.cache_bytes);
	fprintf(out, "log.dirs=%s\n", config->log_dirs);
	fprintf(out, "log.index.interval.bytes=%d\n", config->log.index_interval_bytes);
	fprintf(out, "log.index.size.max.bytes=%d\n", config->log.index_bytes_max);
	fprintf(out, "log.io.engine=%s\n", engines[config->io_engine]);
	fprintf(out, "log.format=%s\n", config->log_format);
	fprintf(out, "log.level=%s\n", config->log_level);
	fprintf(out, "log.preallocate=%s\n", config->log.preallocate ? "true" : "false");
	fprintf(out, "log.preallocate.bytes=%" PRId64 "\n", config->log.preallocate_bytes);
	fprintf(out, "log.message.timestamp.type=%s\n",
		config->log_message_timestamp_log_append_time ? "LogAppendTime" : "CreateTime");
	fprintf(out, "log.retention.bytes=%" PRId64 "\n", config->log.retention_bytes);
	fprintf(out, "log.retention.check.interval.ms=%" PRId64 "\n",
		config->log.retention_check_interval_ms);
	fprintf(out, "log.retention.ms=%" PRId64 "\n", config->log.retention_ms);
	fprintf(out, "log.roll.ms=%" PRId64 "\n", config->log.segment_ms);
	fprintf(out, "log.segment.bytes=%" PRId64 "\n", config->log.segment_bytes);
	fprintf(out, "log.slow.request.ms=%" PRId64 "\n", config->log_slow_request_ms);
	fprintf(out, "max.connections=%d\n", config->max_connections);
	fprintf(out, "max.connections.per.ip=%d\n", config->max_connections_per_ip);
	fprintf(out, "message.max.bytes=%d\n", config->message_max_bytes);
	fprintf(out, "metadata.etcd.endpoints=%s\n", config->metadata_etcd_endpoints);
	fprintf(out, "metadata.etcd.prefix=%s\n", config->metadata_etcd_prefix);
	fprintf(out, "metadata.etcd.timeout.ms=%d\n", config->metadata_etcd_timeout_ms);
	fprintf(out, "metrics.listener=%s\n", config->metrics_listener);
	fprintf(out, "min.insync.replicas=%d\n", config->min_insync_replicas);
	fprintf(out, "node.id=%d\n", config->node_id);
	fprintf(out, "num.partitions=%d\n", config->num_partitions);
	fprintf(out, "offset.metadata.max.bytes=%d\n", config->offset_metadata_max_bytes);
	fprintf(out, "offsets.retention.check.interval.ms=%" PRId64 "\n",
		config->offsets_retention_check_interval_ms);
	fprintf(out, "offsets.retention.minutes=%" PRId64 "\n", config->offsets_retention_minutes);
	fprintf(out, "offsets.topic.num.partitions=%d\n", config->offsets_topic_num_partitions);
	fprintf(out, "offsets.topic.segment.bytes=%d\n", config->offsets_topic_segment_bytes);
	fprintf(out, "transaction.state.log.num.partitions=%d\n",
		config->transaction_state_log_num_partitions);
	fprintf(out, "transaction.state.log.segment.bytes=%d\n",
		config->transaction_state_log_segment_bytes);
	fprintf(out, "offsets.topic.replication.factor=%d\n",
		config->offsets_topic_replication_factor);
	fprintf(out, "producer.id.expiration.ms=%" PRId64 "\n",
		config->log.producer_id_expiration_ms);
	fprintf(out, "producer.id.expiration.check.interval.ms=%" PRId64 "\n",
		config->log.producer_id_expiration_check_interval_ms);
	fprintf(out, "replica.fetch.backoff.ms=%d\n", config->replica_fetch_backoff_ms);
	fprintf(out, "replica.fetch.max.bytes=%d\n", config->replica_fetch_max_bytes);
	fprintf(out, "replica.fetch.response.max.bytes=%d\n",
		config->replica_fetch_response_max_bytes);
	fprintf(out, "replica.fetch.wait.max.ms=%d\n", config->replica_fetch_wait_max_ms);
	fprintf(out, "replica.lag.time.max.ms=%" PRId64 "\n", config->replica_lag_time_max_ms);
	fprintf(out, "transaction.max.timeout.ms=%d\n", config->transaction_max_timeout_ms);
	fprintf(out, "transaction.state.log.replication.factor=%d\n",
		config->transaction_state_log_replication_factor);
	fprintf(out, "transactional.id.expiration.ms=%" PRId64 "\n",
		config->transactional_id_expiration_ms);
	if (config->test_fault_drop_produce_response > 0)
		fprintf(out, "test.fault.drop.produce.response.ratio=%g\n",
			config->test_fault_drop_produce_response);
	fprintf(out, "queued.max.requests=%d\n", config->queued_max_requests);
	fprintf(out, "quota.window.num=%d\n", config->quota_window_num);
	fprintf(out, "quota.window.size.seconds=%d\n", config->quota_window_size_seconds);
	fprintf(out, "sasl.enabled.mechanisms=%s\n", config->sasl_enabled_mechanisms);
	fprintf(out, "sasl.mechanism.inter.broker.protocol=%s\n",
		config->sasl_mechanism_inter_broker_protocol);
	fprintf(out, "security.inter.broker.protocol=%s\n", config->security_inter_broker_protocol);
	fprintf(out, "sasl.server.max.receive.size=%d\n", config->sasl_server_max_receive_size);
	fprintf(out, "socket.request.max.bytes=%d\n", config->socket_request_max_bytes);
	fprintf(out, "socket.request.read.timeout.ms=%" PRId64 "\n",
		config->socket_request_read_timeout_ms);
	fprintf(out, "ssl.cipher.suites=%s\n", config->ssl_cipher_suites);
	fprintf(out, "ssl.client.auth=%s\n", config->ssl_client_auth);
	fprintf(out, "ssl.enabled.protocols=%s\n", config->ssl_enabled_protocols);
	fprintf(out, "ssl.endpoint.identification.algorithm=%s\n",
		config->ssl_endpoint_identification_algorithm);
	fprintf(out, "ssl.handshake.timeout.ms=%" PRId64 "\n", config->ssl_handshake_timeout_ms);
	/* A password never leaves the process, as Kafka's sensitive configs. */
	fprintf(out, "ssl.key.password=%s\n", config->ssl_key_password[0] ? "[hidden]" : "");
	fprintf(out, "ssl.keystore.location=%s\n", config->ssl_keystore_location);
	fprintf(out, "ssl.keystore.type=%s\n", config->ssl_keystore_type);
	fprintf(out, "ssl.ktls.enable=%s\n", config->ssl_ktls_enable ? "true" : "false");
	fprintf(out, "ssl.truststore.location=%s\n", config->ssl_truststore_location);
	fprintf(out, "ssl.truststore.type=%s\n", config->ssl_truststore_type);
	fprintf(out, "unclean.leader.election.enable=%s\n",
		config->unclean_leader_election_enable ? "true" : "false");
	fprintf(out, "allow.everyone.if.no.acl.found=%s\n",
		config->allow_everyone_if_no_acl_found ? "true" : "false");
	fprintf(out, "authorizer.class.name=%s\n", config->authorizer_class_name);
	fprintf(out, "super.users=%s\n", config->super_users);
	if (config->tally_test_principal_from_client_id)
		fprintf(out, "tally.test.principal.from.client.id=true\n");
}

/* ---- describing (DescribeConfigs) ---- */

int tl_config_key_count(void)
{
	return (int)TL_ARRAY_SIZE(broker_keys);
}

const char *tl_config_key_name(int index)
{
	TL_ASSERT(index >= 0 && index < (int)TL_ARRAY_SIZE(broker_keys));
	return broker_keys[index].name;
}

/* Kafka's broker synonyms, strongest first (DynamicBrokerConfig's synonym lists). */
static const char *const synonym_groups[][4] = {
	{"log.retention.ms", "log.retention.minutes", "log.retention.hours", NULL},
	{"log.roll.ms", "log.roll.hours", NULL, NULL},
	{"log.dirs", "log.dir", NULL, NULL},
};

const char *const *tl_config_synonyms(const char *key)
{
	for (size_t g = 0; g < TL_ARRAY_SIZE(synonym_groups); g++)
		for (size_t i = 0; i < 4 && synonym_groups[g][i]; i++)
			if (strcmp(synonym_groups[g][i], key) == 0)
				return synonym_groups[g];
	return NULL;
}

/* Value of a precedence key as given (@stored is value + 1, -1 or 0 = not given). */
static bool given_value(int64_t stored, int64_t fallback, char *out, size_t out_size)
{
	if (stored == 0 && fallback < 0)
		return false;
	int64_t v = stored == 0 ? fallback : stored == -1 ? -1 : stored - 1;
	snprintf(out, out_size, "%" PRId64, v);
	return true;
}

bool tl_config_describe_key(const struct tl_config *config, const char *printed, const char *key,
			    char *value, size_t value_size, bool *has_value_out, bool *is_set_out)
{
	int index = -1;
	for (size_t i = 0; i < TL_ARRAY_SIZE(broker_keys); i++)
		if (strcmp(broker_keys[i].name, key) == 0)
			index = (int)i;
	if (index < 0 || strncmp(key, "test.fault.", strlen("test.fault.")) == 0)
		return false;
	const struct tl_config_precedence *p = &config->precedence;
	*is_set_out = (config->keys_set[index / 64] >> (index % 64)) & 1;
	*has_value_out = true;
	value[0] = '\0';
	/* The weaker synonyms are not printed: their value is what was given, or Kafka's
	 * default (168 hours), or none. */
	if (strcmp(key, "broker.id") == 0)
		key = "node.id"; /* the same setting under its older name */
	if (strcmp(key, "log.retention.ms") == 0 && !p->retention_ms)
		*has_value_out = false; /* Kafka's default is null: the hours give it */
	else if (strcmp(key, "log.roll.ms") == 0 && !p->roll_ms)
		*has_value_out = false;
	else if (strcmp(key, "log.retention.minutes") == 0)
		*has_value_out = given_value(p->retention_minutes, -1, value, value_size);
	else if (strcmp(key, "log.retention.hours") == 0)
		*has_value_out = given_value(p->retention_hours, 168, value, value_size);
	else if (strcmp(key, "log.roll.hours") == 0)
		*has_value_out =
			given_value(p->roll_hours ? p->roll_hours + 1 : 0, 168, value, value_size);
	else if (strcmp(key, "log.dir") == 0)
		*has_value_out = false;
	else {
		/* Everything else as --print-config shows it: one source of truth. */
		size_t key_len = strlen(key);
		for (const char *line = printed; line && *line;) {
			const char *nl = strchr(line, '\n');
			size_t len = nl ? (size_t)(nl - line) : strlen(line);
			if (len > key_len && line[key_len] == '=' &&
			    strncmp(line, key, key_len) == 0) {
				size_t n = TL_MIN(len - key_len - 1, value_size - 1);
				memcpy(value, line + key_len + 1, n);
				value[n] = '\0';
				return true;
			}
			line = nl ? nl + 1 : NULL;
		}
		*has_value_out = false;
	}
	return true;
}

/* ---- topic configs ---- */

enum topic_key {
	TOPIC_CLEANUP_POLICY,
	TOPIC_COMPRESSION_TYPE,
	TOPIC_MAX_MESSAGE_BYTES,
	TOPIC_MESSAGE_TIMESTAMP_TYPE,
	TOPIC_RETENTION_BYTES,
	TOPIC_RETENTION_MS,
	TOPIC_SEGMENT_BYTES,
	TOPIC_SEGMENT_INDEX_BYTES,
	TOPIC_SEGMENT_MS,
	TOPIC_INDEX_INTERVAL_BYTES,
	TOPIC_MIN_INSYNC_REPLICAS,
	TOPIC_DELETE_RETENTION_MS,
	TOPIC_MIN_CLEANABLE_DIRTY_RATIO,
	TOPIC_MIN_COMPACTION_LAG_MS,
	TOPIC_MAX_COMPACTION_LAG_MS,
	TOPIC_KEY_COUNT,
};

/* Each topic key and its broker synonyms, strongest first (Kafka's
 * ServerTopicConfigSynonyms): a topic that does not set the key takes the first
 * synonym the broker's configuration gives, else the default. */
struct topic_key_def {
	const char *name;
	const char *synonyms[4]; /* NULL-terminated */
};

static const struct topic_key_def topic_key_defs[TOPIC_KEY_COUNT] = {
	[TOPIC_CLEANUP_POLICY] = {"cleanup.policy", {"log.cleanup.policy"}},
	[TOPIC_COMPRESSION_TYPE] = {"compression.type", {"compression.type"}},
	[TOPIC_MAX_MESSAGE_BYTES] = {"max.message.bytes", {"message.max.bytes"}},
	[TOPIC_MESSAGE_TIMESTAMP_TYPE] = {"message.timestamp.type", {"log.message.timestamp.type"}},
	[TOPIC_RETENTION_BYTES] = {"retention.bytes", {"log.retention.bytes"}},
	[TOPIC_RETENTION_MS] = {"retention.ms",
				{"log.retention.ms", "log.retention.minutes",
				 "log.retention.hours"}},
	[TOPIC_SEGMENT_BYTES] = {"segment.bytes", {"log.segment.bytes"}},
	[TOPIC_SEGMENT_INDEX_BYTES] = {"segment.index.bytes", {"log.index.size.max.bytes"}},
	[TOPIC_SEGMENT_MS] = {"segment.ms", {"log.roll.ms", "log.roll.hours"}},
	[TOPIC_INDEX_INTERVAL_BYTES] = {"index.interval.bytes", {"log.index.interval.bytes"}},
	[TOPIC_MIN_INSYNC_REPLICAS] = {"min.insync.replicas", {"min.insync.replicas"}},
	[TOPIC_DELETE_RETENTION_MS] = {"delete.retention.ms", {"log.cleaner.delete.retention.ms"}},
	[TOPIC_MIN_CLEANABLE_DIRTY_RATIO] = {"min.cleanable.dirty.ratio",
					     {"log.cleaner.min.cleanable.ratio"}},
	[TOPIC_MIN_COMPACTION_LAG_MS] = {"min.compaction.lag.ms",
					 {"log.cleaner.min.compaction.lag.ms"}},
	[TOPIC_MAX_COMPACTION_LAG_MS] = {"max.compaction.lag.ms",
					 {"log.cleaner.max.compaction.lag.ms"}},
};

const char *const *tl_topic_config_key_synonyms(int index)
{
	TL_ASSERT(index >= 0 && index < TOPIC_KEY_COUNT);
	return topic_key_defs[index].synonyms;
}

void tl_topic_config_from_broker(struct tl_topic_config *topic, const struct tl_config *broker)
{
	memset(topic, 0, sizeof(*topic));
	topic->log = broker->log;
	topic->max_message_bytes = broker->message_max_bytes;
	topic->log_append_time = broker->log_message_timestamp_log_append_time;
	snprintf(topic->cleanup_policy, sizeof(topic->cleanup_policy), "%s",
		 tl_config_cleanup_policy_name(&broker->log));
	snprintf(topic->compression_type, sizeof(topic->compression_type), "producer");
	topic->compression_codec = -1;
	topic->min_insync_replicas = broker->min_insync_replicas;
}

int tl_topic_config_key_count(void)
{
	return TOPIC_KEY_COUNT;
}

const char *tl_topic_config_key_name(int index)
{
	TL_ASSERT(index >= 0 && index < TOPIC_KEY_COUNT);
	return topic_key_defs[index].name;
}

bool tl_topic_config_key_is_set(const struct tl_topic_config *topic, int index)
{
	return (topic->set_mask >> index) & 1;
}

tl_err tl_topic_config_set(struct tl_topic_config *topic, const char *key, const char *value,
			   char *why, size_t why_size)
{
	int index = -1;
	for (int i = 0; i < TOPIC_KEY_COUNT; i++)
		if (strcmp(topic_key_defs[i].name, key) == 0)
			index = i;
	if (index < 0) {
		const char *names[TOPIC_KEY_COUNT];
		for (int i = 0; i < TOPIC_KEY_COUNT; i++)
			names[i] = topic_key_defs[i].name;
		const char *hint = closest_key(key, names, TOPIC_KEY_COUNT);
		if (hint)
			snprintf(why, why_size, "unknown topic config \"%s\"; did you mean \"%s\"?",
				 key, hint);
		else
			snprintf(why, why_size, "unknown topic config \"%s\"", key);
		return TL_ERR_INVALID_CONFIG;
	}
	if (!value) {
		snprintf(why, why_size, "topic config %s: null value", key);
		return TL_ERR_INVALID_CONFIG;
	}
	int64_t v = 0;
	tl_err err = TL_OK;
	switch ((enum topic_key)index) {
	case TOPIC_CLEANUP_POLICY:
		err = tl_config_parse_cleanup_policy(key, value, &topic->log, why, why_size);
		if (err == TL_OK)
			snprintf(topic->cleanup_policy, sizeof(topic->cleanup_policy), "%s",
				 tl_config_cleanup_policy_name(&topic->log));
		break;
	case TOPIC_COMPRESSION_TYPE: {
		/* Kafka's values; "producer" stores batches as sent, any other makes
		 * Produce recompress batches of another codec (broker/produce.c). */
		static const char *const codecs[] = {"uncompressed", "gzip", "snappy", "lz4",
						     "zstd"};
		int codec = strcmp(value, "producer") == 0 ? -1 : -2;
		for (int i = 0; i < (int)TL_ARRAY_SIZE(codecs); i++)
			if (strcmp(value, codecs[i]) == 0)
				codec = i;
		if (codec == -2) {
			snprintf(why, why_size,
				 "topic config compression.type: \"%s\" is not one of producer, "
				 "uncompressed, gzip, snappy, lz4, zstd",
				 value);
			err = TL_ERR_INVALID_CONFIG;
			break;
		}
		topic->compression_codec = (int8_t)codec;
		snprintf(topic->compression_type, sizeof(topic->compression_type), "%s", value);
		break;
	}
	case TOPIC_MAX_MESSAGE_BYTES:
		err = parse_int(key, value, 0, INT32_MAX, &v, why, why_size);
		topic->max_message_bytes = (int32_t)v;
		break;
	case TOPIC_MESSAGE_TIMESTAMP_TYPE:
		err = parse_timestamp_type(key, value, &topic->log_append_time, why, why_size);
		break;
	case TOPIC_RETENTION_BYTES:
		err = parse_int(key, value, -1, INT64_MAX, &topic->log.retention_bytes, why,
				why_size);
		break;
	case TOPIC_RETENTION_MS:
		err = parse_int(key, value, -1, INT64_MAX, &topic->log.retention_ms, why, why_size);
		break;
	case TOPIC_SEGMENT_BYTES:
		err = parse_int(key, value, 14, INT32_MAX, &topic->log.segment_bytes, why,
				why_size);
		break;
	case TOPIC_SEGMENT_INDEX_BYTES:
		err = parse_int(key, value, 4096, INT32_MAX, &v, why, why_size);
		topic->log.index_bytes_max = (int32_t)v;
		break;
	case TOPIC_SEGMENT_MS:
		err = parse_int(key, value, 1, INT64_MAX, &topic->log.segment_ms, why, why_size);
		break;
	case TOPIC_INDEX_INTERVAL_BYTES:
		err = parse_int(key, value, 0, INT32_MAX, &v, why, why_size);
		topic->log.index_interval_bytes = (int32_t)v;
		break;
	case TOPIC_MIN_INSYNC_REPLICAS:
		err = parse_int(key, value, 1, INT16_MAX, &v, why, why_size);
		topic->min_insync_replicas = (int32_t)v;
		break;
	case TOPIC_DELETE_RETENTION_MS:
		err = parse_int(key, value, 0, INT64_MAX, &topic->log.delete_retention_ms, why,
				why_size);
		break;
	case TOPIC_MIN_CLEANABLE_DIRTY_RATIO:
		err = parse_double(key, value, 0, 1, &topic->log.min_cleanable_dirty_ratio, why,
				   why_size);
		break;
	case TOPIC_MIN_COMPACTION_LAG_MS:
		err = parse_int(key, value, 0, INT64_MAX, &topic->log.min_compaction_lag_ms, why,
				why_size);
		break;
	case TOPIC_MAX_COMPACTION_LAG_MS:
		err = parse_int(key, value, 1, INT64_MAX, &topic->log.max_compaction_lag_ms, why,
				why_size);
		break;
	case TOPIC_KEY_COUNT:
		TL_ASSERT(!"unreachable");
	}
	if (err != TL_OK)
		return TL_ERR_INVALID_CONFIG;
	topic->set_mask |= 1u << index;
	return TL_OK;
}

void tl_topic_config_key_value(const struct tl_topic_config *topic, int index, char *out,
			       size_t out_size)
{
	switch ((enum topic_key)index) {
	case TOPIC_CLEANUP_POLICY:
		snprintf(out, out_size, "%s", topic->cleanup_policy);
		break;
	case TOPIC_COMPRESSION_TYPE:
		snprintf(out, out_size, "%s", topic->compression_type);
		break;
	case TOPIC_MAX_MESSAGE_BYTES:
		snprintf(out, out_size, "%d", topic->max_message_bytes);
		break;
	case TOPIC_MESSAGE_TIMESTAMP_TYPE:
		snprintf(out, out_size, "%s",
			 topic->log_append_time ? "LogAppendTime" : "CreateTime");
		break;
	case TOPIC_RETENTION_BYTES:
		snprintf(out, out_size, "%" PRId64, topic->log.retention_bytes);
		break;
	case TOPIC_RETENTION_MS:
		snprintf(out, out_size, "%" PRId64, topic->log.retention_ms);
		break;
	case TOPIC_SEGMENT_BYTES:
		snprintf(out, out_size, "%" PRId64, topic->log.segment_bytes);
		break;
	case TOPIC_SEGMENT_INDEX_BYTES:
		snprintf(out, out_size, "%d", topic->log.index_bytes_max);
		break;
	case TOPIC_SEGMENT_MS:
		snprintf(out, out_size, "%" PRId64, topic->log.segment_ms);
		break;
	case TOPIC_INDEX_INTERVAL_BYTES:
		snprintf(out, out_size, "%d", topic->log.index_interval_bytes);
		break;
	case TOPIC_MIN_INSYNC_REPLICAS:
		snprintf(out, out_size, "%d", topic->min_insync_replicas);
		break;
	case TOPIC_DELETE_RETENTION_MS:
		snprintf(out, out_size, "%" PRId64, topic->log.delete_retention_ms);
		break;
	case TOPIC_MIN_CLEANABLE_DIRTY_RATIO:
		snprintf(out, out_size, "%g", topic->log.min_cleanable_dirty_ratio);
		break;
	case TOPIC_MIN_COMPACTION_LAG_MS:
		snprintf(out, out_size, "%" PRId64, topic->log.min_compaction_lag_ms);
		break;
	case TOPIC_MAX_COMPACTION_LAG_MS:
		snprintf(out, out_size, "%" PRId64, topic->log.max_compaction_lag_ms);
		break;
	case TOPIC_KEY_COUNT:
		TL_ASSERT(!"unreachable");
	}
}
