/* tally_chaos.c - libtally workloads for the chaos harness (tests/chaos/): each writes its
 * history, one JSON object a line, in the format tests/chaos/check.py reads, as
 * rdk_chaos.c does for librdkafka.
 *   tally_chaos produce BROKERS TOPIC NAME SECONDS RATE HISTORY
 *       An idempotent libtally producer (its defaults: acks=all, enable.idempotence)
 *       sends "NAME.G:i" at RATE records/s for SECONDS, record i to partition
 *       i % partitions. Each gets an invoke before tl_producer_send(); its delivery
 *       report an ok at the acknowledged offset, or an info (outcome unknown: retries
 *       ran out, the record may be stored); a send refused at once a fail (never
 *       queued). A fatal producer error (tl_err_is_fatal) ends the producer: it is
 *       flushed and destroyed, and a new one goes on under generation G+1, a writer of
 *       its own for the checker's reorder property.
 *   tally_chaos group BROKERS TOPIC NAME SECONDS HISTORY
 *       A member of read_committed group "lt-group" (tl_consumer_subscribe; chaos.sh
 *       starts two, so partitions move between them at each rebalance), from the
 *       beginning, records each record it is given as a read ok naming its group, and
 *       commits synchronously about every 200 ms: when tl_consumer_commit() succeeds,
 *       each assigned partition's position (taken just before, as the commit does) is
 *       a commit ok. The checker's offsets-back and group-skip judge them.
 * Exit status: 0 done, 1 error, 2 usage. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/time.h"
#include "tally/admin.h"
#include "tally/consumer.h"
#include "tally/producer.h"

#define PARTITIONS_MAX  64
#define TIMEOUT_MS      15000
#define FLUSH_MS        60000
#define COMMIT_EVERY_S  0.2
#define GROUP           "lt-group"
#define VALUE_BYTES_MAX 64

static FILE *history;
static const char *name;
static char writer[VALUE_BYTES_MAX / 2]; /* NAME.G, the prefix of the values */

static double wall_s(void)
{
	return (double)tl_clock_ns(CLOCK_REALTIME) / 1e9;
}

static double mono_s(void)
{
	return (double)tl_mono_ns() / 1e9;
}

/* One history line; partition/offset < 0 are left out; @extra is more JSON members. */
static void record(const char *type, const char *f, int32_t partition, int64_t offset,
		   const char *value, const char *extra)
{
	fprintf(history, "{\"t\":%.6f,\"process\":\"%s\",\"type\":\"%s\",\"f\":\"%s\"", wall_s(),
		name, type, f);
	if (partition >= 0)
		fprintf(history, ",\"partition\":%" PRId32, partition);
	if (offset >= 0)
		fprintf(history, ",\"offset\":%" PRId64, offset);
	if (value)
		fprintf(history, ",\"value\":\"%s\"", value);
	if (extra)
		fprintf(history, ",%s", extra);
	fputs("}\n", history);
}

static void record_error(const char *type, int32_t partition, const char *value, tl_err err)
{
	char extra[96];
	snprintf(extra, sizeof(extra), "\"error\":\"%s\"", tl_err_name(err));
	record(type, "send", partition, -1, value, extra);
}

/* The topic's partition count from Metadata, asked until the cluster answers. */
static int32_t partition_count(const char *brokers, const char *topic)
{
	struct tl_admin_conf *conf = tl_admin_conf_create();
	struct tl_admin *admin = NULL;
	char err[256];
	if (!conf || tl_admin_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    tl_admin_create(conf, &admin, err, sizeof(err))) {
		fprintf(stderr, "tally_chaos: admin: %s\n", err);
		tl_admin_conf_destroy(conf);
		return -1;
	}
	tl_admin_conf_destroy(conf);
	int32_t n = -1;
	for (int tries = 0; tries < 30 && n <= 0; tries++) {
		struct tl_admin_topics *topics = NULL;
		if (tl_admin_describe_topics(admin, &topic, 1, &topics, TIMEOUT_MS) == TL_OK &&
		    topics->count == 1 && topics->topics[0].err == TL_OK)
			n = topics->topics[0].partition_count;
		tl_admin_topics_destroy(topics);
		if (n <= 0)
			nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
	}
	tl_admin_destroy(admin);
	return n > PARTITIONS_MAX ? PARTITIONS_MAX : n;
}

static uint64_t acked, unknown;

static void on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	(void)opaque;
	char value[VALUE_BYTES_MAX];
	snprintf(value, sizeof(value), "%s:%" PRIuPTR, writer, (uintptr_t)d->opaque);
	if (d->err == TL_OK) {
		record("ok", "send", d->partition, d->offset, value, NULL);
		acked++;
		return;
	}
	record_error("info", d->partition, value, d->err);
	unknown++;
}

static struct tl_producer *new_producer(const char *brokers)
{
	static const char *const keys[][2] = {
		{"linger.ms", "5"},
		{"request.timeout.ms", "5000"},
		{"delivery.timeout.ms", "30000"},
		{"max.block.ms", "1000"},
	};
	struct tl_producer_conf *conf = tl_producer_conf_create();
	struct tl_producer *producer = NULL;
	char err[256] = "out of memory";
	bool ok = conf && tl_producer_conf_set(conf, "bootstrap.servers", brokers, err,
					       sizeof(err)) == TL_OK;
	for (size_t i = 0; ok && i < sizeof(keys) / sizeof(keys[0]); i++)
		ok = tl_producer_conf_set(conf, keys[i][0], keys[i][1], err, sizeof(err)) == TL_OK;
	if (ok) {
		tl_producer_conf_set_delivery_cb(conf, on_delivery, NULL);
		ok = tl_producer_create(conf, &producer, err, sizeof(err)) == TL_OK;
	}
	tl_producer_conf_destroy(conf);
	if (!ok) {
		fprintf(stderr, "tally_chaos: %s: producer: %s\n", name, err);
		exit(1);
	}
	return producer;
}

static int do_produce(const char *brokers, const char *topic, double seconds, double rate)
{
	int32_t parts = partition_count(brokers, topic);
	if (parts <= 0) {
		fprintf(stderr, "tally_chaos: no metadata for %s\n", topic);
		return 1;
	}
	int gen = 0;
	snprintf(writer, sizeof(writer), "%s.%d", name, gen);
	struct tl_producer *producer = new_producer(brokers);
	double start = mono_s();
	uint64_t i = 0, refused = 0;
	while (mono_s() - start < seconds) {
		uint64_t due = (uint64_t)((mono_s() - start) * rate);
		tl_err fatal = TL_OK;
		for (; i < due && fatal == TL_OK; i++) {
			char value[VALUE_BYTES_MAX];
			int32_t p = (int32_t)(i % (uint64_t)parts);
			int n = snprintf(value, sizeof(value), "%s:%" PRIu64, writer, i);
			record("invoke", "send", p, -1, value, NULL);
			struct tl_producer_record rec = {
				.topic = topic,
				.partition = p,
				.value = value,
				.value_len = n,
				.opaque = (void *)(uintptr_t)i,
			};
			tl_err err = tl_producer_send(producer, &rec);
			if (err != TL_OK) {
				/* Refused before it was queued: never written. */
				record_error("fail", p, value, err);
				refused++;
				if (tl_err_is_fatal(err))
					fatal = err;
			}
		}
		tl_producer_poll(producer, 5);
		if (fatal != TL_OK) {
			fprintf(stderr, "tally_chaos: %s: fatal: %s: %s\n", writer,
				tl_err_name(fatal), tl_producer_last_error(producer));
			tl_producer_flush(producer, FLUSH_MS);
			tl_producer_destroy(producer);
			snprintf(writer, sizeof(writer), "%s.%d", name, ++gen);
			producer = new_producer(brokers);
		}
	}
	tl_err err = tl_producer_flush(producer, FLUSH_MS);
	fprintf(stderr,
		"tally_chaos: %s: %" PRIu64 " sent, %" PRIu64 " acked, %" PRIu64
		" of unknown outcome, %" PRIu64 " refused, %d producers replaced%s\n",
		name, i, acked, unknown, refused, gen, err == TL_OK ? "" : ", flush timed out");
	tl_producer_destroy(producer);
	return 0;
}

static void consumer_set(struct tl_consumer_conf *conf, const char *key, const char *value)
{
	char err[256];
	if (tl_consumer_conf_set(conf, key, value, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "tally_chaos: %s=%s: %s\n", key, value, err);
		exit(2);
	}
}

static uint64_t commits, commit_errors;

/* Commits the assignment's positions; records each as a commit ok when it succeeded,
 * else the error as a commit info. */
static void group_commit(struct tl_consumer *consumer)
{
	struct tl_consumer_partition parts[PARTITIONS_MAX];
	int32_t n = tl_consumer_assignment(consumer, parts, PARTITIONS_MAX);
	if (n <= 0)
		return;
	if (n > PARTITIONS_MAX)
		n = PARTITIONS_MAX;
	tl_err err = tl_consumer_commit(consumer, TIMEOUT_MS);
	if (err != TL_OK) {
		char extra[128];
		snprintf(extra, sizeof(extra), "\"group\":\"" GROUP "\",\"error\":\"%s\"",
			 tl_err_name(err));
		record("info", "commit", -1, -1, NULL, extra);
		commit_errors++;
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		if (parts[i].offset < 0)
			continue;
		record("ok", "commit", parts[i].partition, parts[i].offset, NULL,
		       "\"group\":\"" GROUP "\"");
		commits++;
	}
}

static int do_group(const char *brokers, const char *topic, double seconds)
{
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	if (!conf)
		return 1;
	consumer_set(conf, "bootstrap.servers", brokers);
	consumer_set(conf, "group.id", GROUP);
	consumer_set(conf, "enable.auto.commit", "false");
	consumer_set(conf, "auto.offset.reset", "earliest");
	consumer_set(conf, "isolation.level", "read_committed");
	consumer_set(conf, "session.timeout.ms", "10000");
	struct tl_consumer *consumer = NULL;
	char err[256];
	tl_err e = tl_consumer_create(conf, &consumer, err, sizeof(err));
	tl_consumer_conf_destroy(conf);
	if (e != TL_OK || tl_consumer_subscribe(consumer, &topic, 1) != TL_OK) {
		fprintf(stderr, "tally_chaos: %s: consumer: %s\n", name,
			e != TL_OK ? err : tl_consumer_last_error(consumer));
		tl_consumer_destroy(consumer);
		return 1;
	}
	double start = mono_s(), last_commit = start;
	uint64_t reads = 0, errors = 0;
	while (mono_s() - start < seconds) {
		const struct tl_consumer_record *r = NULL;
		e = tl_consumer_poll(consumer, 100, &r);
		if (e == TL_OK && r->control_type == TL_CONSUMER_CONTROL_NONE) {
			char value[VALUE_BYTES_MAX];
			int32_t n = r->value && r->value_len > 0 ? r->value_len : 0;
			if (n > (int32_t)sizeof(value) - 1)
				n = (int32_t)sizeof(value) - 1;
			memcpy(value, n ? r->value : "", (size_t)n);
			value[n] = '\0';
			record("ok", "read", r->partition, r->offset, value,
			       "\"isolation\":\"read_committed\",\"group\":\"" GROUP "\"");
			reads++;
		} else if (e != TL_OK && e != TL_ERR_TIMED_OUT && errors++ < 20) {
			fprintf(stderr, "tally_chaos: %s: poll: %s: %s\n", name, tl_err_name(e),
				tl_consumer_last_error(consumer));
		}
		if (mono_s() - last_commit > COMMIT_EVERY_S) {
			group_commit(consumer);
			last_commit = mono_s();
		}
	}
	group_commit(consumer);
	fprintf(stderr,
		"tally_chaos: %s: %" PRIu64 " records read, %" PRIu64 " partition commits, %" PRIu64
		" commits failed, %" PRIu64 " poll errors\n",
		name, reads, commits, commit_errors, errors);
	tl_consumer_destroy(consumer);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	bool produce = strcmp(mode, "produce") == 0 && argc == 8;
	bool group = strcmp(mode, "group") == 0 && argc == 7;
	if (!produce && !group) {
		fprintf(stderr,
			"usage: tally_chaos produce BROKERS TOPIC NAME SECONDS RATE HISTORY\n"
			"       tally_chaos group BROKERS TOPIC NAME SECONDS HISTORY\n");
		return 2;
	}
	name = argv[4];
	history = fopen(argv[argc - 1], "a");
	if (!history) {
		perror(argv[argc - 1]);
		return 1;
	}
	setvbuf(history, NULL, _IOLBF, 0); /* a workload killed as hung keeps its history */
	int rc = produce ? do_produce(argv[2], argv[3], atof(argv[5]), atof(argv[6]))
			 : do_group(argv[2], argv[3], atof(argv[5]));
	if (fclose(history) != 0) {
		perror("history");
		rc = 1;
	}
	return rc;
}
