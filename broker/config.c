/* config.c - Kafka-style server.properties for tallyd, see config.h.
 * Keys are table-driven. Precedence follows Kafka: log.retention.ms over
 * log.retention.minutes over log.retention.hours; log.roll.ms over log.roll.hours;
 * log.dirs over log.dir; node.id and broker.id are the same key. */
#include "broker/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

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

static const struct key_def broker_keys[] = {
	{"advertised.listeners", KEY_STRING, OFF(advertised_listeners), 0, 0},
	{"auto.create.topics.enable", KEY_BOOL, OFF(auto_create_topics_enable), 0, 1},
	{"auto.leader.rebalance.enable", KEY_BOOL, OFF(auto_leader_rebalance_enable), 0, 1},
	{"broker.id", KEY_INT32, OFF(node_id), 0, INT32_MAX},
	{"broker.rack", KEY_STRING, OFF(broker_rack), 0, 0},
	{"broker.session.timeout.ms", KEY_INT32, OFF(broker_session_timeout_ms), 1000, 3600000},
	{"cluster.id", KEY_STRING, OFF(cluster_id), 0, 0},
	{"connections.max.idle.ms", KEY_INT64, OFF(connections_max_idle_ms), -1, INT64_MAX},
	{"controlled.shutdown.enable", KEY_BOOL, OFF(controlled_shutdown_enable), 0, 1},
	{"controlled.shutdown.max.ms", KEY_INT64, OFF(controlled_shutdown_max_ms), 0, 3600000},
	{"default.replication.factor", KEY_INT16, OFF(default_replication_factor), 1, INT16_MAX},
	{"delete.topic.enable", KEY_BOOL, OFF(delete_topic_enable), 0, 1},
	{"group.initial.rebalance.delay.ms", KEY_INT32, OFF(group_initial_rebalance_delay_ms), 0,
	 INT32_MAX},
	{"group.max.session.timeout.ms", KEY_INT32, OFF(group_max_session_timeout_ms), 1,
	 INT32_MAX},
	{"group.max.size", KEY_INT32, OFF(group_max_size), 1, INT32_MAX},
	{"group.min.session.timeout.ms", KEY_INT32, OFF(group_min_session_timeout_ms), 1,
	 INT32_MAX},
	{"leader.imbalance.check.interval.seconds", KEY_SPECIAL, 0, 0, 0},
	{"listeners", KEY_STRING, OFF(listeners), 0, 0},
	{"log.dir", KEY_SPECIAL, 0, 0, 0},
	{"log.dirs", KEY_STRING, OFF(log_dirs), 0, 0},
	{"log.index.interval.bytes", KEY_INT32, OFF(log.index_interval_bytes), 0, INT32_MAX},
	{"log.index.size.max.bytes", KEY_INT32, OFF(log.index_bytes_max), 4096, INT32_MAX},
	{"log.io.engine", KEY_SPECIAL, 0, 0, 0},
	{"log.level", KEY_SPECIAL, 0, 0, 0},
	{"log.message.timestamp.type", KEY_SPECIAL, 0, 0, 0},
	{"log.retention.bytes", KEY_INT64, OFF(log.retention_bytes), -1, INT64_MAX},
	{"log.retention.check.interval.ms", KEY_INT64, OFF(log_retention_check_interval_ms), 1,
	 INT64_MAX},
	{"log.retention.hours", KEY_SPECIAL, 0, 0, 0},
	{"log.retention.minutes", KEY_SPECIAL, 0, 0, 0},
	{"log.retention.ms", KEY_SPECIAL, 0, 0, 0},
	{"log.roll.hours", KEY_SPECIAL, 0, 0, 0},
	{"log.roll.ms", KEY_SPECIAL, 0, 0, 0},
	{"log.segment.bytes", KEY_INT64, OFF(log.segment_bytes), 14, INT32_MAX},
	{"max.connections", KEY_INT32, OFF(max_connections), 1, 1000000},
	{"message.max.bytes", KEY_INT32, OFF(message_max_bytes), 0, INT32_MAX},
	{"metadata.etcd.endpoints", KEY_STRING, OFF(metadata_etcd_endpoints), 0, 0},
	{"metadata.etcd.prefix", KEY_STRING, OFF(metadata_etcd_prefix), 0, 0},
	{"metadata.etcd.timeout.ms", KEY_INT32, OFF(metadata_etcd_timeout_ms), 100, 600000},
	{"min.insync.replicas", KEY_INT32, OFF(min_insync_replicas), 1, 16},
	{"node.id", KEY_INT32, OFF(node_id), 0, INT32_MAX},
	{"num.partitions", KEY_INT32, OFF(num_partitions), 1, 100000},
	{"offset.metadata.max.bytes", KEY_INT32, OFF(offset_metadata_max_bytes), 0, INT32_MAX},
	{"offsets.retention.check.interval.ms", KEY_INT64, OFF(offsets_retention_check_interval_ms),
	 1, INT64_MAX},
	{"offsets.retention.minutes", KEY_INT64, OFF(offsets_retention_minutes), 1, INT32_MAX},
	{"offsets.topic.num.partitions", KEY_INT32, OFF(offsets_topic_num_partitions), 1, 1000},
	{"transaction.state.log.num.partitions", KEY_INT32,
	 OFF(transaction_state_log_num_partitions), 1, 1000},
	{"offsets.topic.replication.factor", KEY_INT16, OFF(offsets_topic_replication_factor), 1,
	 16},
	{"producer.id.expiration.ms", KEY_INT64, OFF(producer_id_expiration_ms), 1, INT64_MAX},
	{"queued.max.requests", KEY_INT32, OFF(queued_max_requests), 1, 100000},
	{"replica.fetch.backoff.ms", KEY_INT32, OFF(replica_fetch_backoff_ms), 0, 600000},
	{"replica.fetch.max.bytes", KEY_INT32, OFF(replica_fetch_max_bytes), 1024, INT32_MAX},
	{"replica.fetch.response.max.bytes", KEY_INT32, OFF(replica_fetch_response_max_bytes), 1024,
	 INT32_MAX},
	{"replica.fetch.wait.max.ms", KEY_INT32, OFF(replica_fetch_wait_max_ms), 0, 600000},
	{"replica.lag.time.max.ms", KEY_INT64, OFF(replica_lag_time_max_ms), 100, INT32_MAX},
	{"socket.request.max.bytes", KEY_INT32, OFF(socket_request_max_bytes), 1, INT32_MAX},
	{"test.fault.drop.produce.response.ratio", KEY_SPECIAL, 0, 0, 0},
	{"transaction.max.timeout.ms", KEY_INT32, OFF(transaction_max_timeout_ms), 1, INT32_MAX},
	{"transaction.state.log.replication.factor", KEY_INT16,
	 OFF(transaction_state_log_replication_factor), 1, 16},
	{"transactional.id.expiration.ms", KEY_INT64, OFF(transactional_id_expiration_ms), 1,
	 INT32_MAX},
	{"unclean.leader.election.enable", KEY_BOOL, OFF(unclean_leader_election_enable), 0, 1},
};

void tl_config_defaults(struct tl_config *config)
{
	memset(config, 0, sizeof(*config));
	config->node_id = 1;
	snprintf(config->listeners, sizeof(config->listeners), "PLAINTEXT://127.0.0.1:9092");
	snprintf(config->log_dirs, sizeof(config->log_dirs), "./tally-data");
	config->num_partitions = 1;
	config->default_replication_factor = 1;
	config->auto_create_topics_enable = true;
	config->delete_topic_enable = true;
	tl_log_config_defaults(&config->log);
	config->log_retention_check_interval_ms = 300000;
	config->message_max_bytes = 1048588;
	config->socket_request_max_bytes = 104857600;
	config->max_connections = 4096;
	config->queued_max_requests = 500;
	config->connections_max_idle_ms = 600000;
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
	config->producer_id_expiration_ms = 86400000;
	config->transaction_max_timeout_ms = 900000;
	config->transactional_id_expiration_ms = 604800000;
	snprintf(config->log_level, sizeof(config->log_level), "info");
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
	const char *names[TL_ARRAY_SIZE(broker_keys)];
	for (size_t i = 0; i < TL_ARRAY_SIZE(broker_keys); i++)
		names[i] = broker_keys[i].name;
	const char *hint = closest_key(key, names, TL_ARRAY_SIZE(broker_keys));
	if (hint)
		snprintf(why, why_size, "config: unknown key \"%s\"; did you mean \"%s\"?", key,
			 hint);
	else
		snprintf(why, why_size, "config: unknown key \"%s\"", key);
}

tl_err tl_config_set(struct tl_config *config, const char *key, const char *value, char *why,
		     size_t why_size)
{
	const struct key_def *def = NULL;
	for (size_t i = 0; i < TL_ARRAY_SIZE(broker_keys); i++)
		if (strcmp(broker_keys[i].name, key) == 0)
			def = &broker_keys[i];
	if (!def) {
		unknown_key_message(key, why, why_size);
		return TL_ERR_INVALID;
	}
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
		if (strlen(value) >= TL_CONFIG_STR_MAX) {
			snprintf(why, why_size, "config %s: value longer than %d bytes", key,
				 TL_CONFIG_STR_MAX - 1);
			return TL_ERR_INVALID;
		}
		snprintf(field, TL_CONFIG_STR_MAX, "%s", value);
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

tl_err tl_config_load_file(struct tl_config *config, const char *path, char *why, size_t why_size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, why_size, "config: cannot open %s: %s", path, strerror(errno));
		return TL_ERR_IO;
	}
	char line[2048];
	int line_no = 0;
	tl_err err = TL_OK;
	while (err == TL_OK && fgets(line, sizeof(line), f)) {
		line_no++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == '!')
			continue;
		char *sep = strpbrk(s, "=:");
		if (!sep) {
			snprintf(why, why_size, "config %s:%d: expected key=value", path, line_no);
			err = TL_ERR_INVALID;
			break;
		}
		*sep = '\0';
		char *key = trim(s), *value = trim(sep + 1);
		err = tl_config_set(config, key, value, why, why_size);
		if (err != TL_OK) {
			size_t n = strlen(why);
			snprintf(why + n, why_size - n, " (%s:%d)", path, line_no);
		}
	}
	fclose(f);
	return err;
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

	char host[256];
	int port;
	if (tl_config_parse_listener(config->listeners, host, sizeof(host), &port) != TL_OK) {
		snprintf(why, why_size,
			 "config listeners: \"%s\" is not PLAINTEXT://host:port (only PLAINTEXT "
			 "is supported)",
			 config->listeners);
		return TL_ERR_INVALID;
	}
	if (config->advertised_listeners[0] &&
	    tl_config_parse_listener(config->advertised_listeners, host, sizeof(host), &port) !=
		    TL_OK) {
		snprintf(why, why_size,
			 "config advertised.listeners: \"%s\" is not PLAINTEXT://host:port",
			 config->advertised_listeners);
		return TL_ERR_INVALID;
	}
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

tl_err tl_config_parse_listener(const char *listeners, char *host, size_t host_size, int *port_out)
{
	const char *prefix = "PLAINTEXT://";
	if (strncmp(listeners, prefix, strlen(prefix)) != 0)
		return TL_ERR_INVALID;
	const char *h = listeners + strlen(prefix);
	const char *end = strchr(h, ',');
	size_t len = end ? (size_t)(end - h) : strlen(h);
	const char *colon = NULL;
	for (size_t i = 0; i < len; i++)
		if (h[i] == ':')
			colon = h + i;
	if (!colon)
		return TL_ERR_INVALID;
	size_t host_len = (size_t)(colon - h);
	if (host_len >= host_size)
		return TL_ERR_INVALID;
	memcpy(host, h, host_len);
	host[host_len] = '\0';
	if (host_len == 0)
		snprintf(host, host_size, "0.0.0.0");
	char portbuf[16];
	size_t port_len = len - host_len - 1;
	if (port_len == 0 || port_len >= sizeof(portbuf))
		return TL_ERR_INVALID;
	memcpy(portbuf, colon + 1, port_len);
	portbuf[port_len] = '\0';
	char *e;
	long port = strtol(portbuf, &e, 10);
	if (*e || port < 0 || port > 65535)
		return TL_ERR_INVALID;
	*port_out = (int)port;
	return TL_OK;
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
	fprintf(out, "controlled.shutdown.enable=%s\n",
		config->controlled_shutdown_enable ? "true" : "false");
	fprintf(out, "controlled.shutdown.max.ms=%" PRId64 "\n",
		config->controlled_shutdown_max_ms);
	fprintf(out, "default.replication.factor=%d\n", config->default_replication_factor);
	fprintf(out, "delete.topic.enable=%s\n", config->delete_topic_enable ? "true" : "false");
	fprintf(out, "group.initial.rebalance.delay.ms=%d\n",
		config->group_initial_rebalance_delay_ms);
	fprintf(out, "group.max.session.timeout.ms=%d\n", config->group_max_session_timeout_ms);
	fprintf(out, "group.max.size=%d\n", config->group_max_size);
	fprintf(out, "group.min.session.timeout.ms=%d\n", config->group_min_session_timeout_ms);
	fprintf(out, "leader.imbalance.check.interval.seconds=%" PRId64 "\n",
		config->leader_imbalance_check_interval_ms / 1000);
	fprintf(out, "listeners=%s\n", config->listeners);
	fprintf(out, "log.dirs=%s\n", config->log_dirs);
	fprintf(out, "log.index.interval.bytes=%d\n", config->log.index_interval_bytes);
	fprintf(out, "log.index.size.max.bytes=%d\n", config->log.index_bytes_max);
	fprintf(out, "log.io.engine=%s\n", engines[config->io_engine]);
	fprintf(out, "log.level=%s\n", config->log_level);
	fprintf(out, "log.message.timestamp.type=%s\n",
		config->log_message_timestamp_log_append_time ? "LogAppendTime" : "CreateTime");
	fprintf(out, "log.retention.bytes=%" PRId64 "\n", config->log.retention_bytes);
	fprintf(out, "log.retention.check.interval.ms=%" PRId64 "\n",
		config->log_retention_check_interval_ms);
	fprintf(out, "log.retention.ms=%" PRId64 "\n", config->log.retention_ms);
	fprintf(out, "log.roll.ms=%" PRId64 "\n", config->log.segment_ms);
	fprintf(out, "log.segment.bytes=%" PRId64 "\n", config->log.segment_bytes);
	fprintf(out, "max.connections=%d\n", config->max_connections);
	fprintf(out, "message.max.bytes=%d\n", config->message_max_bytes);
	fprintf(out, "metadata.etcd.endpoints=%s\n", config->metadata_etcd_endpoints);
	fprintf(out, "metadata.etcd.prefix=%s\n", config->metadata_etcd_prefix);
	fprintf(out, "metadata.etcd.timeout.ms=%d\n", config->metadata_etcd_timeout_ms);
	fprintf(out, "min.insync.replicas=%d\n", config->min_insync_replicas);
	fprintf(out, "node.id=%d\n", config->node_id);
	fprintf(out, "num.partitions=%d\n", config->num_partitions);
	fprintf(out, "offset.metadata.max.bytes=%d\n", config->offset_metadata_max_bytes);
	fprintf(out, "offsets.retention.check.interval.ms=%" PRId64 "\n",
		config->offsets_retention_check_interval_ms);
	fprintf(out, "offsets.retention.minutes=%" PRId64 "\n", config->offsets_retention_minutes);
	fprintf(out, "offsets.topic.num.partitions=%d\n", config->offsets_topic_num_partitions);
	fprintf(out, "transaction.state.log.num.partitions=%d\n",
		config->transaction_state_log_num_partitions);
	fprintf(out, "offsets.topic.replication.factor=%d\n",
		config->offsets_topic_replication_factor);
	fprintf(out, "producer.id.expiration.ms=%" PRId64 "\n", config->producer_id_expiration_ms);
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
	fprintf(out, "socket.request.max.bytes=%d\n", config->socket_request_max_bytes);
	fprintf(out, "unclean.leader.election.enable=%s\n",
		config->unclean_leader_election_enable ? "true" : "false");
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
	TOPIC_KEY_COUNT,
};

static const char *const topic_keys[TOPIC_KEY_COUNT] = {
	"cleanup.policy",  "compression.type",     "max.message.bytes",   "message.timestamp.type",
	"retention.bytes", "retention.ms",         "segment.bytes",       "segment.index.bytes",
	"segment.ms",      "index.interval.bytes", "min.insync.replicas",
};

void tl_topic_config_from_broker(struct tl_topic_config *topic, const struct tl_config *broker)
{
	memset(topic, 0, sizeof(*topic));
	topic->log = broker->log;
	topic->max_message_bytes = broker->message_max_bytes;
	topic->log_append_time = broker->log_message_timestamp_log_append_time;
	snprintf(topic->cleanup_policy, sizeof(topic->cleanup_policy), "delete");
	snprintf(topic->compression_type, sizeof(topic->compression_type), "producer");
	topic->min_insync_replicas = broker->min_insync_replicas;
}

int tl_topic_config_key_count(void)
{
	return TOPIC_KEY_COUNT;
}

const char *tl_topic_config_key_name(int index)
{
	TL_ASSERT(index >= 0 && index < TOPIC_KEY_COUNT);
	return topic_keys[index];
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
		if (strcmp(topic_keys[i], key) == 0)
			index = i;
	if (index < 0) {
		const char *hint = closest_key(key, topic_keys, TOPIC_KEY_COUNT);
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
		if (strcmp(value, "delete") != 0) {
			snprintf(why, why_size,
				 "topic config cleanup.policy: only \"delete\" is supported, not "
				 "\"%s\"",
				 value);
			err = TL_ERR_INVALID_CONFIG;
		}
		break;
	case TOPIC_COMPRESSION_TYPE:
		if (strcmp(value, "producer") != 0) {
			snprintf(why, why_size,
				 "topic config compression.type: only \"producer\" is supported "
				 "(batches are stored as sent), not \"%s\"",
				 value);
			err = TL_ERR_INVALID_CONFIG;
		}
		break;
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
	case TOPIC_KEY_COUNT:
		TL_ASSERT(!"unreachable");
	}
}
