/* admin.h - libtally admin client: create, delete, list and describe topics on a
 * Kafka-compatible cluster (tallyd or Kafka).
 *
 * Threads: an admin client is used by one thread at a time; every call blocks up to its
 * @timeout_ms and does its own I/O. Configuration keys: bootstrap.servers, client.id,
 * request.timeout.ms, reconnect.backoff.ms. Unknown keys are errors. */
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
/* The detail of the last error ("" if none). */
const char *tl_admin_last_error(struct tl_admin *admin);

#ifdef __cplusplus
}
#endif
#endif
