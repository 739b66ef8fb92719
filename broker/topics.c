/* topics.c - the topic registry and its durable metadata.
 * On disk, under log.dirs:
 *   meta.properties                       cluster.id, node.id, directory.id (as Kafka's)
 *   .tally-meta/topics/<topic>.properties topic.id, partitions, explicit topic configs
 *   <topic>-<partition>/                  one tl_log per partition
 * Ordering makes every crash point recoverable:
 * (1) create: open (create) every partition log, then write the metadata file
 *     atomically. A crash before the rename leaves partition dirs without metadata; the
 *     topic was never acknowledged, so start-up removes them.
 * (2) delete: remove the metadata file (fsync the dir), then the partition logs. A crash
 *     in between leaves orphans that start-up removes.
 * (3) add partitions: open (create) the new partition logs, then rewrite the metadata
 *     file with the new count. A crash before the rename leaves partition dirs past the
 *     stored count, which start-up removes as orphans.
 * (4) alter configs: rewrite the metadata file, then apply to the open logs.
 * A topic's partition array never moves (requests, parked fetches, the dirty list and
 * log listeners point into it): it is an address range reserved for
 * TL_TOPIC_PARTITIONS_MAX entries, of which the first partition_count are mapped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/diag.h"

#define META_DIR   "/.tally-meta"
#define TOPICS_DIR META_DIR "/topics"

/* ---- partition arrays ---- */

static size_t partitions_bytes(int32_t count)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = (size_t)count * sizeof(struct tl_partition);
	return (bytes + page - 1) / page * page;
}

/* Reserves room for TL_TOPIC_PARTITIONS_MAX partitions and maps the first @count,
 * zeroed. PROT_NONE address space costs no memory and no commit charge. */
static struct tl_partition *partitions_alloc(int32_t count)
{
	if (count < 1 || count > TL_TOPIC_PARTITIONS_MAX)
		return NULL;
	void *p = mmap(NULL, partitions_bytes(TL_TOPIC_PARTITIONS_MAX), PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p, partitions_bytes(count), PROT_READ | PROT_WRITE) != 0) {
		munmap(p, partitions_bytes(TL_TOPIC_PARTITIONS_MAX));
		return NULL;
	}
	return p;
}

/* Maps entries up to @count (zeroed); the existing ones stay where they are. */
static tl_err partitions_grow(struct tl_partition *partitions, int32_t count)
{
	TL_ASSERT(count <= TL_TOPIC_PARTITIONS_MAX);
	return mprotect(partitions, partitions_bytes(count), PROT_READ | PROT_WRITE) == 0
		       ? TL_OK
		       : TL_ERR_NOMEM;
}

static void partitions_free(struct tl_partition *partitions)
{
	if (partitions)
		munmap(partitions, partitions_bytes(TL_TOPIC_PARTITIONS_MAX));
}

/* ---- lookup ---- */

static uint32_t name_hash(const char *p, int32_t len)
{
	uint32_t h = 2166136261u;
	for (int32_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

struct tl_topic *tl_topic_find(struct tl_broker *broker, struct tl_str name)
{
	if (name.len <= 0 || name.len > TL_TOPIC_NAME_MAX)
		return NULL;
	struct tl_topic *topic =
		broker->topics.buckets[name_hash(name.ptr, name.len) % TL_TOPIC_BUCKETS];
	for (; topic; topic = topic->next)
		if ((int32_t)strlen(topic->name) == name.len &&
		    memcmp(topic->name, name.ptr, (size_t)name.len) == 0)
			return topic;
	return NULL;
}

struct tl_topic *tl_topic_find_id(struct tl_broker *broker, const struct tl_uuid *id)
{
	for (struct tl_topic *topic = tl_topic_next(broker, NULL); topic;
	     topic = tl_topic_next(broker, topic))
		if (memcmp(topic->id.bytes, id->bytes, sizeof(id->bytes)) == 0)
			return topic;
	return NULL;
}

struct tl_partition *tl_partition_find_any(struct tl_broker *broker, struct tl_str name,
					   int32_t partition)
{
	struct tl_topic *topic = tl_topic_find(broker, name);
	if (!topic || partition < 0 || partition >= topic->partition_count)
		return NULL;
	return &topic->partitions[partition];
}

struct tl_partition *tl_partition_find(struct tl_broker *broker, struct tl_str name,
				       int32_t partition)
{
	struct tl_partition *p = tl_partition_find_any(broker, name, partition);
	return p && p->log ? p : NULL;
}

struct tl_topic *tl_topic_next(struct tl_broker *broker, struct tl_topic *prev)
{
	uint32_t bucket = 0;
	if (prev) {
		if (prev->next)
			return prev->next;
		bucket = name_hash(prev->name, (int32_t)strlen(prev->name)) % TL_TOPIC_BUCKETS + 1;
	}
	for (; bucket < TL_TOPIC_BUCKETS; bucket++)
		if (broker->topics.buckets[bucket])
			return broker->topics.buckets[bucket];
	return NULL;
}

/* Kafka's Topic.isInternal: only the coordinators' own topics. */
static bool topic_name_is_internal(struct tl_str name)
{
	return tl_str_eq_c(name, "__consumer_offsets") || tl_str_eq_c(name, "__transaction_state");
}

const char *tl_topic_name_invalid(struct tl_str name)
{
	if (name.len <= 0)
		return "topic name is empty";
	if (name.len > TL_TOPIC_NAME_MAX)
		return "topic name is longer than 249 characters";
	if ((name.len == 1 && name.ptr[0] == '.') ||
	    (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
		return "topic name cannot be \".\" or \"..\"";
	for (int32_t i = 0; i < name.len; i++) {
		char c = name.ptr[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return "topic name may only contain ASCII alphanumerics, '.', '_' and '-'";
	}
	return NULL;
}

/* ---- files ---- */

static tl_err fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return TL_ERR_IO;
	int rc = fsync(fd);
	close(fd);
	return rc == 0 ? TL_OK : TL_ERR_IO;
}

/* Metadata files change atomically: temp file (@mode), fsync, rename, fsync the
 * directory. */
static tl_err write_file_atomic(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[TL_CONFIG_STR_MAX + 512], tmp[TL_CONFIG_STR_MAX + 520];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd == -1)
		goto out_err;
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		close(fd);
		goto out_unlink;
	}
	close(fd);
	if (rename(tmp, path) != 0)
		goto out_unlink;
	if (fsync_dir(dir) != TL_OK)
		goto out_err;
	return TL_OK;
out_unlink:
	unlink(tmp);
out_err:
	tl_warn("broker: metadata write failed path=%s err=%s", path, strerrorname_np(errno));
	return TL_ERR_IO;
}

static void partition_dir(const struct tl_broker *broker, const char *topic, int32_t index,
			  char *out, size_t out_size)
{
	snprintf(out, out_size, "%s/%s-%d", broker->data_dir, topic, index);
}

static void topic_config_text(const struct tl_topic *topic, char *out, size_t out_size)
{
	size_t n = (size_t)snprintf(out, out_size, "topic.id=");
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(out + n, out_size - n, "%02x", topic->id.bytes[i]);
	n += (size_t)snprintf(out + n, out_size - n, "\npartitions=%d\n", topic->partition_count);
	for (int i = 0; i < tl_topic_config_key_count(); i++) {
		if (!tl_topic_config_key_is_set(&topic->config, i))
			continue;
		char value[64];
		tl_topic_config_key_value(&topic->config, i, value, sizeof(value));
		n += (size_t)snprintf(out + n, out_size - n, "%s=%s\n", tl_topic_config_key_name(i),
				      value);
		TL_ASSERT(n < out_size);
	}
}

/* Rewrites @topic's metadata file (see (3) and (4) above). */
static tl_err topic_store(struct tl_broker *broker, const struct tl_topic *topic)
{
	char text[4096], dir[TL_CONFIG_STR_MAX + 64], file[TL_TOPIC_NAME_MAX + 32];
	topic_config_text(topic, text, sizeof(text));
	snprintf(dir, sizeof(dir), "%s" TOPICS_DIR, broker->data_dir);
	snprintf(file, sizeof(file), "%s.properties", topic->name);
	return write_file_atomic(dir, file, text, 0644);
}

/* ---- registry ---- */

static void topic_insert(struct tl_broker *broker, struct tl_topic *topic)
{
	uint32_t b = name_hash(topic->name, (int32_t)strlen(topic->name)) % TL_TOPIC_BUCKETS;
	topic->next = broker->topics.buckets[b];
	broker->topics.buckets[b] = topic;
	broker->topics.count++;
}

static void topic_unlink(struct tl_broker *broker, struct tl_topic *topic)
{
	uint32_t b = name_hash(topic->name, (int32_t)strlen(topic->name)) % TL_TOPIC_BUCKETS;
	struct tl_topic **pp = &broker->topics.buckets[b];
	while (*pp != topic)
		pp = &(*pp)->next;
	*pp = topic->next;
	broker->topics.count--;
}

/* Opens the partition logs of @topic. On failure closes those already open. */
static tl_err topic_open_logs(struct tl_broker *broker, struct tl_topic *topic)
{
	topic->partitions = partitions_alloc(topic->partition_count);
	if (!topic->partitions)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < topic->partition_count; i++) {
		struct tl_partition *p = &topic->partitions[i];
		char dir[TL_CONFIG_STR_MAX + 300];
		partition_dir(broker, topic->name, i, dir, sizeof(dir));
		p->topic = topic;
		p->index = i;
		topic->broker = broker;
		tl_err err = tl_log_open(dir, &topic->config.log, broker->ring, &p->log);
		if (err != TL_OK) {
			tl_crit("broker: cannot open partition log dir=%s err=%s", dir,
				tl_err_name(err));
			for (int32_t j = 0; j < i; j++)
				tl_log_close(topic->partitions[j].log);
			partitions_free(topic->partitions);
			topic->partitions = NULL;
			return err;
		}
		tl_log_set_listener(p->log, tl_fetch_on_data, p);
	}
	return TL_OK;
}

tl_err tl_topic_create(struct tl_broker *broker, struct tl_str name, int32_t partitions,
		       const struct tl_topic_config *config, struct tl_topic **topic_out, char *why,
		       size_t why_size)
{
	const char *invalid = tl_topic_name_invalid(name);
	if (invalid) {
		snprintf(why, why_size, "%s", invalid);
		return TL_ERR_INVALID_TOPIC_EXCEPTION;
	}
	if (tl_topic_find(broker, name)) {
		snprintf(why, why_size, "topic '%.*s' already exists", name.len, name.ptr);
		return TL_ERR_TOPIC_ALREADY_EXISTS;
	}
	if (partitions < 1 || partitions > TL_TOPIC_PARTITIONS_MAX) {
		snprintf(why, why_size, "number of partitions must be between 1 and %d",
			 TL_TOPIC_PARTITIONS_MAX);
		return TL_ERR_INVALID_PARTITIONS;
	}
	struct tl_topic *topic = calloc(1, sizeof(*topic));
	if (!topic)
		return TL_ERR_NOMEM;
	memcpy(topic->name, name.ptr, (size_t)name.len);
	topic->partition_count = partitions;
	if (config)
		topic->config = *config;
	else
		tl_topic_config_from_broker(&topic->config, &broker->config);
	topic->internal = topic_name_is_internal(name);
	if (getrandom(topic->id.bytes, sizeof(topic->id.bytes), 0) != sizeof(topic->id.bytes)) {
		free(topic);
		return TL_ERR_IO;
	}
	tl_err err = topic_open_logs(broker, topic);
	if (err != TL_OK) {
		free(topic);
		snprintf(why, why_size, "cannot create the partition logs on disk");
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	if (topic_store(broker, topic) != TL_OK) {
		for (int32_t i = 0; i < topic->partition_count; i++)
			tl_log_remove(topic->partitions[i].log);
		partitions_free(topic->partitions);
		free(topic);
		snprintf(why, why_size, "cannot write the topic metadata");
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	topic_insert(broker, topic);
	tl_info("broker: topic created topic=%s partitions=%d", topic->name, partitions);
	if (topic_out)
		*topic_out = topic;
	return TL_OK;
}

static void partition_detach(struct tl_broker *broker, struct tl_partition *p)
{
	for (int32_t i = 0; i < broker->dirty_count; i++) {
		if (broker->dirty[i] == p) {
			broker->dirty[i] = broker->dirty[--broker->dirty_count];
			break;
		}
	}
	/* Parked fetches re-read their partitions by name and will see the topic gone. */
	while (p->watches) {
		struct tl_request *req = p->watches->req;
		tl_fetch_unpark(req);
		tl_fetch_retry(req);
	}
}

tl_err tl_topic_delete(struct tl_broker *broker, struct tl_topic *topic)
{
	char path[TL_CONFIG_STR_MAX + 400], dir[TL_CONFIG_STR_MAX + 64];
	snprintf(dir, sizeof(dir), "%s" TOPICS_DIR, broker->data_dir);
	snprintf(path, sizeof(path), "%s/%s.properties", dir, topic->name);
	if (unlink(path) != 0 || fsync_dir(dir) != TL_OK) {
		tl_warn("broker: cannot delete topic metadata path=%s err=%s", path,
			strerrorname_np(errno));
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	topic_unlink(broker, topic);
	for (int32_t i = 0; i < topic->partition_count; i++) {
		struct tl_partition *p = &topic->partitions[i];
		tl_log_set_listener(p->log, NULL, NULL);
		partition_detach(broker, p);
		tl_err err = tl_log_remove(p->log);
		if (err != TL_OK)
			tl_warn("broker: partition files not fully removed topic=%s partition=%d",
				topic->name, i);
	}
	tl_info("broker: topic deleted topic=%s", topic->name);
	partitions_free(topic->partitions);
	free(topic);
	return TL_OK;
}

tl_err tl_topic_add_partitions(struct tl_broker *broker, struct tl_topic *topic, int32_t count,
			       char *why, size_t why_size)
{
	TL_ASSERT(!topic->cluster);
	int32_t old = topic->partition_count;
	if (count > TL_TOPIC_PARTITIONS_MAX) {
		snprintf(why, why_size, "number of partitions must be at most %d",
			 TL_TOPIC_PARTITIONS_MAX);
		return TL_ERR_INVALID_PARTITIONS;
	}
	if (count <= old) {
		if (count == old)
			snprintf(why, why_size, "Topic already has %d partitions.", old);
		else
			snprintf(why, why_size,
				 "Topic currently has %d partitions, which is higher than the "
				 "requested %d.",
				 old, count);
		return TL_ERR_INVALID_PARTITIONS;
	}
	if (partitions_grow(topic->partitions, count) != TL_OK) {
		snprintf(why, why_size, "out of memory");
		return TL_ERR_UNKNOWN_SERVER_ERROR;
	}
	for (int32_t i = old; i < count; i++) {
		struct tl_partition *p = &topic->partitions[i];
		memset(p, 0, sizeof(*p));
		p->topic = topic;
		p->index = i;
		if (tl_partition_open_log(broker, p) != TL_OK) {
			for (int32_t j = old; j < i; j++)
				tl_partition_remove_log(broker, &topic->partitions[j]);
			snprintf(why, why_size, "cannot create the partition logs on disk");
			return TL_ERR_KAFKA_STORAGE_ERROR;
		}
	}
	topic->partition_count = count;
	if (topic_store(broker, topic) != TL_OK) {
		topic->partition_count = old;
		for (int32_t j = old; j < count; j++)
			tl_partition_remove_log(broker, &topic->partitions[j]);
		snprintf(why, why_size, "cannot write the topic metadata");
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	tl_info("broker: partitions added topic=%s partitions=%d was=%d", topic->name, count, old);
	return TL_OK;
}

tl_err tl_topic_set_config(struct tl_broker *broker, struct tl_topic *topic,
			   const struct tl_topic_config *config)
{
	TL_ASSERT(!topic->cluster);
	struct tl_topic_config old = topic->config;
	topic->config = *config;
	if (topic_store(broker, topic) != TL_OK) {
		topic->config = old;
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	/* Segment and retention settings apply from the next append and the next
	 * retention check, as Kafka's do. */
	for (int32_t i = 0; i < topic->partition_count; i++)
		if (topic->partitions[i].log)
			tl_log_set_config(topic->partitions[i].log, &topic->config.log);
	tl_info("broker: topic configs changed topic=%s", topic->name);
	return TL_OK;
}

/* ---- cluster mode ---- */

static uint64_t text_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	for (; s && *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* The broker's defaults overridden by @configs' "key=value" lines. */
static void cluster_configs_parse(const struct tl_broker *broker, const char *name,
				  const char *configs, struct tl_topic_config *out)
{
	tl_topic_config_from_broker(out, &broker->config);
	char line[512], why[256];
	for (const char *p = configs; p && *p;) {
		size_t n = strcspn(p, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)TL_MIN(n, sizeof(line) - 1), p);
		p += n + (p[n] == '\n');
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (tl_topic_config_set(out, line, eq + 1, why, sizeof(why)) != TL_OK)
			tl_warn("broker: topic config from the cluster ignored topic=%s why=\"%s\"",
				name, why);
	}
}

void tl_topic_apply_cluster_configs(struct tl_broker *broker, struct tl_topic *topic,
				    const char *configs)
{
	TL_ASSERT(topic->cluster);
	uint64_t hash = text_hash(configs);
	if (hash == topic->cluster_configs_hash)
		return;
	topic->cluster_configs_hash = hash;
	cluster_configs_parse(broker, topic->name, configs, &topic->config);
	/* As on one node: segment and retention settings apply from the next append and
	 * the next retention check. */
	for (int32_t i = 0; i < topic->partition_count; i++)
		if (topic->partitions[i].log)
			tl_log_set_config(topic->partitions[i].log, &topic->config.log);
	tl_info("broker: topic configs changed topic=%s", topic->name);
}

struct tl_topic *tl_topic_attach(struct tl_broker *broker, const char *name,
				 const struct tl_uuid *id, int32_t partitions, const char *configs)
{
	struct tl_topic *topic = calloc(1, sizeof(*topic));
	if (!topic)
		return NULL;
	snprintf(topic->name, sizeof(topic->name), "%s", name);
	topic->id = *id;
	topic->partition_count = partitions;
	topic->cluster = true;
	topic->broker = broker;
	topic->internal = topic_name_is_internal(tl_str_of(name));
	cluster_configs_parse(broker, name, configs, &topic->config);
	topic->cluster_configs_hash = text_hash(configs);
	topic->partitions = partitions_alloc(partitions);
	if (!topic->partitions) {
		free(topic);
		return NULL;
	}
	for (int32_t i = 0; i < partitions; i++) {
		topic->partitions[i].topic = topic;
		topic->partitions[i].index = i;
	}
	topic_insert(broker, topic);
	return topic;
}

tl_err tl_topic_grow(struct tl_topic *topic, int32_t partitions)
{
	TL_ASSERT(topic->cluster);
	TL_ASSERT(partitions > topic->partition_count);
	if (partitions > TL_TOPIC_PARTITIONS_MAX ||
	    partitions_grow(topic->partitions, partitions) != TL_OK)
		return TL_ERR_NOMEM;
	for (int32_t i = topic->partition_count; i < partitions; i++) {
		struct tl_partition *p = &topic->partitions[i];
		memset(p, 0, sizeof(*p));
		p->topic = topic;
		p->index = i;
	}
	tl_info("broker: partitions added topic=%s partitions=%d was=%d", topic->name, partitions,
		topic->partition_count);
	topic->partition_count = partitions;
	return TL_OK;
}

tl_err tl_partition_open_log(struct tl_broker *broker, struct tl_partition *p)
{
	char dir[TL_CONFIG_STR_MAX + 300];
	partition_dir(broker, p->topic->name, p->index, dir, sizeof(dir));
	/* A cluster topic's replica takes the offset holes its leader's cleaner leaves. */
	struct tl_log_config config = p->topic->config.log;
	config.offset_holes = p->topic->cluster;
	tl_err err = tl_log_open(dir, &config, broker->ring, &p->log);
	if (err != TL_OK) {
		tl_crit("broker: cannot open partition log dir=%s err=%s", dir, tl_err_name(err));
		p->log = NULL;
		return err;
	}
	tl_log_set_listener(p->log, tl_fetch_on_data, p);
	return TL_OK;
}

void tl_partition_remove_log(struct tl_broker *broker, struct tl_partition *p)
{
	if (!p->log)
		return;
	tl_log_set_listener(p->log, NULL, NULL);
	partition_detach(broker, p);
	struct tl_log *log = p->log;
	p->log = NULL;
	if (tl_log_remove(log) != TL_OK)
		tl_warn("broker: partition files not fully removed topic=%s partition=%d",
			p->topic->name, p->index);
}

void tl_topic_remove_local(struct tl_broker *broker, struct tl_topic *topic)
{
	topic_unlink(broker, topic);
	for (int32_t i = 0; i < topic->partition_count; i++) {
		struct tl_partition *p = &topic->partitions[i];
		tl_replica_close(broker, p);
		tl_partition_remove_log(broker, p);
	}
	tl_info("broker: topic deleted topic=%s", topic->name);
	partitions_free(topic->partitions);
	free(topic);
}

/* ---- start-up ---- */

static tl_err random_id(char *out, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t rnd[64];
	TL_ASSERT(len <= sizeof(rnd));
	if (getrandom(rnd, len, 0) != (ssize_t)len)
		return TL_ERR_IO;
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[rnd[i] & 63];
	out[len] = '\0';
	return TL_OK;
}

/* meta.properties: cluster.id, node.id and directory.id, the identity of this log
 * directory (Kafka's KIP-858): drawn at random when the file has none (a new or wiped
 * directory, or one written by a build without it) and written durably before the
 * broker registers, so that a registration names the log it serves (cluster.c). */
static tl_err load_meta_properties(struct tl_broker *broker)
{
	char path[TL_CONFIG_STR_MAX + 64];
	snprintf(path, sizeof(path), "%s/meta.properties", broker->data_dir);
	char text[1024] = "";
	size_t n = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\r\n")] = '\0';
			if (strncmp(line, "cluster.id=", 11) == 0 && !broker->config.cluster_id[0])
				snprintf(broker->config.cluster_id,
					 sizeof(broker->config.cluster_id), "%.63s", line + 11);
			else if (strncmp(line, "directory.id=", 13) == 0 && line[13])
				snprintf(broker->directory_id, sizeof(broker->directory_id), "%.*s",
					 TL_DIRECTORY_ID_LEN, line + 13);
			if (n < sizeof(text))
				n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n", line);
		}
		fclose(f);
		if (broker->directory_id[0])
			return TL_OK;
		if (n >= sizeof(text) - 64)
			return TL_ERR_IO;
	} else {
		if (!broker->config.cluster_id[0] &&
		    random_id(broker->config.cluster_id, 22) != TL_OK)
			return TL_ERR_IO;
		n = (size_t)snprintf(text, sizeof(text), "version=1\ncluster.id=%s\nnode.id=%d\n",
				     broker->config.cluster_id, broker->config.node_id);
	}
	if (random_id(broker->directory_id, TL_DIRECTORY_ID_LEN) != TL_OK)
		return TL_ERR_IO;
	snprintf(text + n, sizeof(text) - n, "directory.id=%s\n", broker->directory_id);
	return write_file_atomic(broker->data_dir, "meta.properties", text, 0644);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static tl_err load_topic_file(struct tl_broker *broker, const char *dir, const char *file)
{
	size_t len = strlen(file);
	const char *suffix = ".properties";
	if (len <= strlen(suffix) || strcmp(file + len - strlen(suffix), suffix) != 0)
		return TL_OK;
	struct tl_topic *topic = calloc(1, sizeof(*topic));
	if (!topic)
		return TL_ERR_NOMEM;
	struct tl_str name = {file, (int32_t)(len - strlen(suffix))};
	if (tl_topic_name_invalid(name)) {
		free(topic);
		return TL_OK;
	}
	memcpy(topic->name, file, (size_t)name.len);
	topic->internal = topic_name_is_internal(name);
	tl_topic_config_from_broker(&topic->config, &broker->config);
	char path[TL_CONFIG_STR_MAX + 400];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	tl_err err = TL_OK;
	if (!f) {
		free(topic);
		return TL_ERR_IO;
	}
	char line[512], why[256];
	while (err == TL_OK && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *key = line, *value = eq + 1;
		if (strcmp(key, "partitions") == 0) {
			topic->partition_count = atoi(value);
		} else if (strcmp(key, "topic.id") == 0 && strlen(value) == 32) {
			for (int i = 0; i < 16; i++)
				topic->id.bytes[i] = (uint8_t)(hexval(value[2 * i]) << 4 |
							       hexval(value[2 * i + 1]));
		} else if (tl_topic_config_set(&topic->config, key, value, why, sizeof(why)) !=
			   TL_OK) {
			tl_crit("broker: bad topic metadata path=%s problem=\"%s\"", path, why);
			err = TL_ERR_CORRUPT;
		}
	}
	fclose(f);
	if (err == TL_OK && topic->partition_count < 1) {
		tl_crit("broker: bad topic metadata path=%s problem=\"no partitions\"", path);
		err = TL_ERR_CORRUPT;
	}
	if (err == TL_OK)
		err = topic_open_logs(broker, topic);
	if (err != TL_OK) {
		free(topic);
		return err;
	}
	topic_insert(broker, topic);
	return TL_OK;
}

/* Removes partition directories that belong to no topic (see (1) and (2) above). */
static void remove_orphans(struct tl_broker *broker)
{
	DIR *d = opendir(broker->data_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *dash = strrchr(e->d_name, '-');
		if (e->d_name[0] == '.' || !dash || dash == e->d_name || !dash[1])
			continue;
		char *end;
		long index = strtol(dash + 1, &end, 10);
		if (*end || index < 0)
			continue;
		struct tl_str name = {e->d_name, (int32_t)(dash - e->d_name)};
		struct tl_topic *topic = tl_topic_find(broker, name);
		if (topic && index < topic->partition_count)
			continue;
		char dir[TL_CONFIG_STR_MAX + 300];
		snprintf(dir, sizeof(dir), "%s/%s", broker->data_dir, e->d_name);
		struct stat st;
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		tl_warn("broker: removing partition directory of no topic dir=%s", dir);
		struct tl_log *log;
		if (tl_log_open(dir, &broker->config.log, broker->ring, &log) == TL_OK)
			tl_log_remove(log);
	}
	closedir(d);
}

static tl_err mkdir_p(const char *path)
{
	char tmp[TL_CONFIG_STR_MAX + 64];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return TL_ERR_IO;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return TL_ERR_IO;
	return TL_OK;
}

tl_err tl_topics_load(struct tl_broker *broker)
{
	char dir[TL_CONFIG_STR_MAX + 64];
	snprintf(dir, sizeof(dir), "%s" TOPICS_DIR, broker->data_dir);
	if (mkdir_p(dir) != TL_OK) {
		tl_crit("broker: cannot create the data directory dir=%s err=%s", dir,
			strerrorname_np(errno));
		return TL_ERR_IO;
	}
	tl_err err = load_meta_properties(broker);
	if (err != TL_OK) {
		tl_crit("broker: cannot read or write meta.properties dir=%s", broker->data_dir);
		return err;
	}
	DIR *d = opendir(dir);
	if (!d)
		return TL_ERR_IO;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		err = load_topic_file(broker, dir, e->d_name);
		if (err != TL_OK) {
			tl_crit("broker: cannot load topic file=%s err=%s", e->d_name,
				tl_err_name(err));
			break;
		}
	}
	closedir(d);
	if (err != TL_OK)
		return err;
	/* In cluster mode the view says which partition directories are ours. */
	if (!tl_config_is_cluster(&broker->config))
		remove_orphans(broker);
	tl_info("broker: topics loaded count=%d", broker->topics.count);
	return TL_OK;
}

void tl_topics_close_all(struct tl_broker *broker)
{
	for (uint32_t b = 0; b < TL_TOPIC_BUCKETS; b++) {
		struct tl_topic *topic = broker->topics.buckets[b];
		while (topic) {
			struct tl_topic *next = topic->next;
			for (int32_t i = 0; i < topic->partition_count; i++) {
				if (topic->partitions[i].log)
					tl_log_close(topic->partitions[i].log);
				free(topic->partitions[i].leader);
			}
			partitions_free(topic->partitions);
			free(topic);
			topic = next;
		}
		broker->topics.buckets[b] = NULL;
	}
	broker->topics.count = 0;
}

void tl_topics_tick(struct tl_broker *broker, int64_t now_ms)
{
	for (struct tl_topic *topic = tl_topic_next(broker, NULL); topic;
	     topic = tl_topic_next(broker, topic))
		for (int32_t i = 0; i < topic->partition_count; i++)
			if (topic->partitions[i].log)
				tl_log_tick(topic->partitions[i].log, now_ms);
}

tl_err tl_broker_write_file_atomic(const char *dir, const char *name, const char *text, mode_t mode)
{
	return write_file_atomic(dir, name, text, mode);
}

tl_err tl_broker_read_file(const char *path, size_t max_bytes, const char *who, char **text_out,
			   size_t *len_out)
{
	*text_out = NULL;
	*len_out = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return TL_OK;
		tl_crit("%s: cannot open path=%s err=%s", who, path, strerrorname_np(errno));
		return TL_ERR_IO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max_bytes) {
		close(fd);
		tl_crit("%s: cannot read path=%s (too large or unreadable)", who, path);
		return TL_ERR_IO;
	}
	char *text = malloc((size_t)st.st_size + 1);
	ssize_t n = text ? read(fd, text, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		free(text);
		tl_crit("%s: cannot read path=%s", who, path);
		return TL_ERR_IO;
	}
	text[n] = '\0';
	*text_out = text;
	*len_out = (size_t)n;
	return TL_OK;
}
