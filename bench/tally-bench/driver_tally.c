/* driver_tally.c - the workload's producer and consumer on libtally.
 *
 * A record's intended send time and size ride in its delivery opaque: the upper 43 bits
 * hold the intended time in ns after the driver was opened (2.4 h, longer than
 * TB_DURATION_MAX_S plus set-up), the lower 21 bits its key + value bytes (at most
 * 2 MiB - 1, more than TB_RECORD_MAX plus a key). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally/admin.h"
#include "tally/consumer.h"
#include "tally/producer.h"
#include "tb.h"

#define OPAQUE_SIZE_BITS 21
#define OPAQUE_SIZE_MASK ((1ULL << OPAQUE_SIZE_BITS) - 1)
#define OPAQUE_TIME_MAX  ((1ULL << (64 - OPAQUE_SIZE_BITS)) - 1)
#define ADMIN_TIMEOUT_MS 15000
#define TXN_TIMEOUT_MS   60000

_Static_assert(TB_RECORD_MAX + 64 < OPAQUE_SIZE_MASK, "record bytes fit the opaque");

struct tb_producer_driver {
	struct tl_producer *producer;
	tb_ack_fn ack;
	void *ctx;
	int64_t base_ns; /* intended times are stored relative to this */
	const char *topic;
	bool transactional;
};

struct tb_consumer_driver {
	struct tl_consumer *consumer;
};

/* ---- producer ---- */

static void on_delivery(const struct tl_producer_delivery *d, void *conf_opaque)
{
	struct tb_producer_driver *drv = conf_opaque;
	uint64_t packed = (uint64_t)(uintptr_t)d->opaque;
	int64_t intended = drv->base_ns + (int64_t)(packed >> OPAQUE_SIZE_BITS);
	uint32_t bytes = (uint32_t)(packed & OPAQUE_SIZE_MASK);
	if (d->err == TL_OK) {
		drv->ack(drv->ctx, intended, bytes, true, NULL);
		return;
	}
	char why[512];
	snprintf(why, sizeof(why), "delivery failed: %s: %s", tl_err_name(d->err),
		 d->detail ? d->detail : tl_err_message(d->err));
	drv->ack(drv->ctx, intended, bytes, false, why);
}

static int conf_set(struct tl_producer_conf *conf, const char *key, const char *value, char *err,
		    size_t err_size)
{
	char why[512];
	if (tl_producer_conf_set(conf, key, value, why, sizeof(why)) == TL_OK)
		return 0;
	snprintf(err, err_size, "producer %s=%s: %s", key, value, why);
	return -1;
}

static int conf_set_kv(struct tl_producer_conf *conf, const char *kv, char *err, size_t err_size)
{
	char key[256];
	const char *eq = strchr(kv, '=');
	size_t len = (size_t)(eq - kv);
	if (len >= sizeof(key)) {
		snprintf(err, err_size, "-X %s: key too long", kv);
		return -1;
	}
	memcpy(key, kv, len);
	key[len] = '\0';
	return conf_set(conf, key, eq + 1, err, err_size);
}

static int producer_configure(struct tl_producer_conf *conf, const struct tb_opts *o,
			      const struct tb_target *t, int index, char *err, size_t err_size)
{
	char client_id[64];
	snprintf(client_id, sizeof(client_id), "tally-bench-p%d", index);
	if (conf_set(conf, "bootstrap.servers", t->bootstrap, err, err_size) ||
	    conf_set(conf, "client.id", client_id, err, err_size) ||
	    conf_set(conf, "acks", o->acks, err, err_size) ||
	    conf_set(conf, "compression.type", o->compression, err, err_size))
		return -1;
	const char *idem = NULL;
	if (o->idempotence == 1 || o->transactions)
		idem = "true";
	else if (o->idempotence == 0 || strcmp(o->acks, "all") != 0)
		idem = "false";
	if (idem && conf_set(conf, "enable.idempotence", idem, err, err_size))
		return -1;
	if (o->transactions) {
		/* Unique per run and producer: no other instance is fenced. */
		char id[96];
		snprintf(id, sizeof(id), "tally-bench-%d-%lld-%d", (int)getpid(),
			 (long long)(tb_now_ns() / TB_NS_PER_MS), index);
		if (conf_set(conf, "transactional.id", id, err, err_size))
			return -1;
	}
	for (int i = 0; i < o->producer_prop_count; i++)
		if (conf_set_kv(conf, o->producer_props[i], err, err_size))
			return -1;
	return 0;
}

static int txn_fail(struct tb_producer_driver *drv, const char *what, tl_err e, char *err,
		    size_t err_size)
{
	snprintf(err, err_size, "%s: %s: %s", what, tl_err_name(e),
		 tl_producer_last_error(drv->producer));
	return -1;
}

/* init_transactions, then the first transaction. */
static int txn_start(struct tb_producer_driver *drv, char *err, size_t err_size)
{
	tl_err e = tl_producer_init_transactions(drv->producer, TXN_TIMEOUT_MS);
	if (e != TL_OK)
		return txn_fail(drv, "tl_producer_init_transactions", e, err, err_size);
	e = tl_producer_begin_transaction(drv->producer);
	if (e != TL_OK)
		return txn_fail(drv, "tl_producer_begin_transaction", e, err, err_size);
	drv->transactional = true;
	return 0;
}

static int tally_txn_commit(struct tb_producer_driver *drv, bool begin_next, char *err,
			    size_t err_size)
{
	tl_err e = tl_producer_commit_transaction(drv->producer, TXN_TIMEOUT_MS);
	if (e != TL_OK)
		return txn_fail(drv, "tl_producer_commit_transaction", e, err, err_size);
	if (!begin_next)
		return 0;
	e = tl_producer_begin_transaction(drv->producer);
	if (e != TL_OK)
		return txn_fail(drv, "tl_producer_begin_transaction", e, err, err_size);
	return 0;
}

static int tally_producer_open(const struct tb_opts *o, const struct tb_target *t, int index,
			       tb_ack_fn ack, void *ctx, struct tb_producer_driver **out, char *err,
			       size_t err_size)
{
	struct tb_producer_driver *drv = calloc(1, sizeof(*drv));
	struct tl_producer_conf *conf = tl_producer_conf_create();
	if (!drv || !conf) {
		snprintf(err, err_size, "out of memory");
		goto out_free;
	}
	drv->ack = ack;
	drv->ctx = ctx;
	drv->topic = t->topic;
	drv->base_ns = tb_now_ns();
	if (producer_configure(conf, o, t, index, err, err_size))
		goto out_free;
	tl_producer_conf_set_delivery_cb(conf, on_delivery, drv);
	char why[512];
	if (tl_producer_create(conf, &drv->producer, why, sizeof(why)) != TL_OK) {
		snprintf(err, err_size, "tl_producer_create: %s", why);
		goto out_free;
	}
	tl_producer_conf_destroy(conf);
	conf = NULL;
	if (o->transactions && txn_start(drv, err, err_size) != 0) {
		tl_producer_destroy(drv->producer);
		goto out_free;
	}
	*out = drv;
	return 0;
out_free:
	if (conf)
		tl_producer_conf_destroy(conf);
	free(drv);
	return -1;
}

static int tally_send(struct tb_producer_driver *drv, const struct tb_send *s, char *err,
		      size_t err_size)
{
	uint64_t rel =
		s->intended_ns > drv->base_ns ? (uint64_t)(s->intended_ns - drv->base_ns) : 0;
	if (rel > OPAQUE_TIME_MAX)
		rel = OPAQUE_TIME_MAX;
	uint64_t bytes = (uint64_t)s->key_len + s->value_len;
	struct tl_producer_record rec = {
		.topic = drv->topic,
		.partition = s->partition >= 0 ? s->partition : TL_PRODUCER_PARTITION_ANY,
		.key = s->key,
		.key_len = s->key ? (int32_t)s->key_len : 0,
		.value = s->value,
		.value_len = (int32_t)s->value_len,
		.opaque =
			(void *)(uintptr_t)((rel << OPAQUE_SIZE_BITS) | (bytes & OPAQUE_SIZE_MASK)),
	};
	tl_err e = tl_producer_send(drv->producer, &rec);
	if (e == TL_OK)
		return 0;
	snprintf(err, err_size, "tl_producer_send: %s: %s", tl_err_name(e),
		 tl_producer_last_error(drv->producer));
	return -1;
}

static void tally_poll(struct tb_producer_driver *drv, int timeout_ms)
{
	(void)tl_producer_poll(drv->producer, timeout_ms);
}

static int tally_flush(struct tb_producer_driver *drv, int timeout_ms, char *err, size_t err_size)
{
	tl_err e = tl_producer_flush(drv->producer, timeout_ms);
	if (e == TL_OK)
		return 0;
	snprintf(err, err_size, "tl_producer_flush: %s, %" PRId64 " records outstanding",
		 tl_err_name(e), tl_producer_outstanding(drv->producer));
	return -1;
}

static void tally_producer_close(struct tb_producer_driver *drv)
{
	tl_producer_destroy(drv->producer);
	free(drv);
}

/* ---- consumer ---- */

static int consumer_conf_set(struct tl_consumer_conf *conf, const char *key, const char *value,
			     char *err, size_t err_size)
{
	char why[512];
	if (tl_consumer_conf_set(conf, key, value, why, sizeof(why)) == TL_OK)
		return 0;
	snprintf(err, err_size, "consumer %s=%s: %s", key, value, why);
	return -1;
}

static int consumer_configure(struct tl_consumer_conf *conf, const struct tb_opts *o,
			      const struct tb_target *t, int index, char *err, size_t err_size)
{
	char client_id[64];
	snprintf(client_id, sizeof(client_id), "tally-bench-c%d", index);
	if (consumer_conf_set(conf, "bootstrap.servers", t->bootstrap, err, err_size) ||
	    consumer_conf_set(conf, "client.id", client_id, err, err_size) ||
	    consumer_conf_set(conf, "enable.auto.commit", "false", err, err_size) ||
	    consumer_conf_set(conf, "auto.offset.reset", "earliest", err, err_size))
		return -1;
	for (int i = 0; i < o->consumer_prop_count; i++) {
		char key[256];
		const char *kv = o->consumer_props[i];
		const char *eq = strchr(kv, '=');
		size_t len = (size_t)(eq - kv);
		if (len >= sizeof(key)) {
			snprintf(err, err_size, "-C %s: key too long", kv);
			return -1;
		}
		memcpy(key, kv, len);
		key[len] = '\0';
		if (consumer_conf_set(conf, key, eq + 1, err, err_size))
			return -1;
	}
	return 0;
}

/* Consumer @index of o->consumers reads partitions p with p % consumers == index, from
 * the beginning. */
static int tally_consumer_open(const struct tb_opts *o, const struct tb_target *t, int index,
			       struct tb_consumer_driver **out, char *err, size_t err_size)
{
	struct tb_consumer_driver *drv = calloc(1, sizeof(*drv));
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	struct tl_consumer_partition *parts = calloc((size_t)o->partitions, sizeof(*parts));
	int rc = -1;
	if (!drv || !conf || !parts) {
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	if (consumer_configure(conf, o, t, index, err, err_size))
		goto out;
	char why[512];
	if (tl_consumer_create(conf, &drv->consumer, why, sizeof(why)) != TL_OK) {
		snprintf(err, err_size, "tl_consumer_create: %s", why);
		goto out;
	}
	int32_t count = 0;
	for (int p = index; p < o->partitions; p += o->consumers) {
		parts[count].topic = t->topic;
		parts[count].partition = p;
		parts[count].offset = TL_CONSUMER_OFFSET_BEGINNING;
		count++;
	}
	if (tl_consumer_assign(drv->consumer, parts, count) != TL_OK) {
		snprintf(err, err_size, "tl_consumer_assign: %s",
			 tl_consumer_last_error(drv->consumer));
		tl_consumer_destroy(drv->consumer);
		goto out;
	}
	*out = drv;
	drv = NULL;
	rc = 0;
out:
	free(parts);
	if (conf)
		tl_consumer_conf_destroy(conf);
	free(drv);
	return rc;
}

static int tally_consume(struct tb_consumer_driver *drv, int timeout_ms, const void **value,
			 uint32_t *value_len, uint32_t *key_len, char *err, size_t err_size)
{
	const struct tl_consumer_record *rec;
	tl_err e = tl_consumer_poll(drv->consumer, timeout_ms, &rec);
	if (e == TL_ERR_TIMED_OUT)
		return 0;
	if (e != TL_OK) {
		snprintf(err, err_size, "tl_consumer_poll: %s: %s", tl_err_name(e),
			 tl_consumer_last_error(drv->consumer));
		return -1;
	}
	*value = rec->value;
	*value_len = rec->value && rec->value_len > 0 ? (uint32_t)rec->value_len : 0;
	*key_len = rec->key && rec->key_len > 0 ? (uint32_t)rec->key_len : 0;
	return 1;
}

static void tally_consumer_close(struct tb_consumer_driver *drv)
{
	tl_consumer_destroy(drv->consumer);
	free(drv);
}

/* ---- topic ---- */

#define CREATE_RETRY_NS (15 * TB_NS_PER_S)

/* Creates t->topic with o->partitions (and with o->replication_factor and
 * o->min_insync_replicas when replicated); an existing topic must have that many
 * partitions. */
static int tally_prepare(const struct tb_opts *o, const struct tb_target *t, char *err,
			 size_t err_size)
{
	char why[512];
	struct tl_admin_conf *conf = tl_admin_conf_create();
	struct tl_admin *admin = NULL;
	bool ok = conf && tl_admin_conf_set(conf, "bootstrap.servers", t->bootstrap, why,
					    sizeof(why)) == TL_OK;
	/* The producer's security keys (-X security.protocol=ssl ...) are the admin's too. */
	for (int i = 0; ok && i < o->producer_prop_count; i++) {
		const char *kv = o->producer_props[i];
		const char *eq = strchr(kv, '=');
		char key[128];
		if (!eq || (size_t)(eq - kv) >= sizeof(key))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
		if (strncmp(key, "security.", 9) == 0 || strncmp(key, "ssl.", 4) == 0 ||
		    strcmp(key, "enable.ssl.certificate.verification") == 0)
			ok = tl_admin_conf_set(conf, key, eq + 1, why, sizeof(why)) == TL_OK;
	}
	if (!ok || tl_admin_create(conf, &admin, why, sizeof(why)) != TL_OK) {
		snprintf(err, err_size, "admin client: %s", conf ? why : "out of memory");
		if (conf)
			tl_admin_conf_destroy(conf);
		return -1;
	}
	tl_admin_conf_destroy(conf);
	int rc = 0;
	/* Replication factor 1 leaves it to the broker (-b may name one with its own). */
	char min_insync[16];
	snprintf(min_insync, sizeof(min_insync), "%d", o->min_insync_replicas);
	const struct tl_admin_config_entry configs[] = {{"min.insync.replicas", min_insync}};
	bool replicated = o->replication_factor > 1;
	int64_t deadline = tb_now_ns() + CREATE_RETRY_NS;
	tl_err e;
	for (;;) {
		e = tl_admin_create_topic(admin, t->topic, o->partitions,
					  replicated ? (int16_t)o->replication_factor : -1,
					  replicated ? configs : NULL, replicated ? 1 : 0,
					  ADMIN_TIMEOUT_MS);
		/* Brokers that just registered reach the controller's view through an etcd
		 * watch a moment later: until then it counts fewer live brokers. */
		bool early = e == TL_ERR_INVALID_REPLICATION_FACTOR || e == TL_ERR_NOT_CONTROLLER;
		if (!replicated || !early || tb_now_ns() > deadline || tb_stop_requested)
			break;
		tb_sleep_until(tb_now_ns() + 100 * TB_NS_PER_MS);
	}
	if (e == TL_ERR_TOPIC_ALREADY_EXISTS) {
		struct tl_admin_topics *topics = NULL;
		const char *names[] = {t->topic};
		e = tl_admin_describe_topics(admin, names, 1, &topics, ADMIN_TIMEOUT_MS);
		if (e == TL_OK && topics->count == 1 &&
		    topics->topics[0].partition_count != o->partitions) {
			snprintf(err, err_size,
				 "topic %s exists with %d partitions, not %d (pick another -t)",
				 t->topic, topics->topics[0].partition_count, o->partitions);
			rc = -1;
		}
		if (topics)
			tl_admin_topics_destroy(topics);
	} else if (e != TL_OK) {
		snprintf(err, err_size, "create topic %s: %s: %s", t->topic, tl_err_name(e),
			 tl_admin_last_error(admin));
		rc = -1;
	}
	tl_admin_destroy(admin);
	return rc;
}

const struct tb_driver_ops tb_driver_tally = {
	.producer_open = tally_producer_open,
	.send = tally_send,
	.poll = tally_poll,
	.flush = tally_flush,
	.txn_commit = tally_txn_commit,
	.producer_close = tally_producer_close,
	.consumer_open = tally_consumer_open,
	.consume = tally_consume,
	.consumer_close = tally_consumer_close,
	.prepare = tally_prepare,
};

const struct tb_driver_ops *tb_driver_for(enum tb_system system)
{
	switch (system) {
	case TB_SYSTEM_TALLY:
		return &tb_driver_tally;
	case TB_SYSTEM_REDIS:
		return &tb_driver_redis;
	case TB_SYSTEM_NATS:
		return &tb_driver_nats;
	}
	return &tb_driver_tally;
}
