/* tally_roundtrip.c - a libtally round trip through a broker: produce COUNT keyed records
 * with headers, then consume them back with the libtally consumer and check every one.
 *   tally_roundtrip -b BROKER -t TOPIC [-n COUNT] [-p PARTITIONS] [-s VALUE_BYTES]
 *                   [-z none|zstd] [-m both|produce|consume] [-B BATCH_BYTES] [-L LINGER_MS]
 *                   [-X producer.key=value]... [-R RECORDS_PER_S] [-x] [-C] [-G] [-F]
 * Record i has key "k<i>" (8 digits), a value computed from i alone (record_value()) and
 * three headers: "seq" (i in decimal), "src" ("libtally") and "nul" (null value). The
 * producer creates the topic with PARTITIONS (tl_admin) unless it exists; the default
 * partitioner places record i by murmur2 of its key. The consumer checks:
 * (1) key, value and headers of each record, byte for byte;
 * (2) its partition is tl_producer_partition_for_key(key) (Java's and librdkafka's);
 * (3) within a partition, records come in send order (i increases);
 * (4) every i from 0 to COUNT-1 arrives exactly once (no loss, no duplicate): with -x this
 *     is the exactly-once check of a run with the broker's fault switch on. Once all have
 *     arrived it reads on to each partition's high watermark (tally_tail.h), so a
 *     duplicate after the last original record counts too.
 * -F (with -m both: a producer with finite retries under faults): a record whose delivery
 * failed may be stored once or not at all; (4) holds for the delivered ones, none is
 * stored twice, and the consumer reads to the high watermarks from the start.
 * -C uses tl_producer_send_sync for the first 100 records. -G consumes through a group
 * (tl_consumer_subscribe) instead of tl_consumer_assign. -R paces the producer (for tests
 * that restart the broker meanwhile). Exit status: 0 all checks
 * passed, 1 a check failed, 2 usage. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tally/admin.h"
#include "tally/consumer.h"
#include "tally/producer.h"
#include "tally_tail.h"

#define IDLE_TIMEOUT_MS  30000 /* consumer: give up after this long without a record */
#define FLUSH_TIMEOUT_MS 120000
#define ERRORS_SHOWN_MAX 10
#define VALUE_BYTES_MAX  (1 << 20)

struct options {
	const char *brokers;
	const char *topic;
	const char *codec;
	const char *mode;
	const char *batch_size;
	const char *linger_ms;
	uint32_t count;
	int32_t partitions;
	uint32_t value_bytes;
	bool sync_first;
	bool group;
	bool failures_allowed;
	const char *extra[16]; /* -X key=value for the producer */
	int extra_count;
	uint32_t rate; /* records per second, 0 = as fast as possible */
};

static uint64_t delivered, failed;
static uint8_t *delivery_failed; /* [count]: -F's record of which ones failed */
static int errors_shown;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void complain(uint64_t i, const char *what)
{
	if (errors_shown++ < ERRORS_SHOWN_MAX)
		fprintf(stderr, "record %" PRIu64 ": %s\n", i, what);
}

/* ---- records ---- */

static void record_key(uint32_t i, char *out, size_t size)
{
	snprintf(out, size, "k%08" PRIu32, i);
}

/* Value of record i: "v<i>:" then bytes from a xorshift stream seeded by i. */
static uint32_t record_value(uint32_t i, uint32_t bytes, uint8_t *out)
{
	int n = snprintf((char *)out, bytes + 1, "v%08" PRIu32 ":", i);
	uint32_t len = (uint32_t)n < bytes ? bytes : (uint32_t)n;
	uint64_t x = 0x9e3779b97f4a7c15ull ^ i;
	for (uint32_t at = (uint32_t)n; at < len; at++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		out[at] = (uint8_t)('a' + x % 26); /* compressible, as real payloads are */
	}
	return len;
}

/* ---- produce ---- */

static void on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	(void)opaque;
	if (d->err == TL_OK) {
		delivered++;
		return;
	}
	failed++;
	if (delivery_failed)
		delivery_failed[(uintptr_t)d->opaque] = 1;
	if (errors_shown++ < ERRORS_SHOWN_MAX)
		fprintf(stderr, "delivery failed: %s: %s\n", tl_err_name(d->err),
			d->detail ? d->detail : "");
}

static int topic_create(const struct options *o)
{
	char err[512];
	struct tl_admin_conf *conf = tl_admin_conf_create();
	struct tl_admin *admin;
	if (tl_admin_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) != TL_OK ||
	    tl_admin_create(conf, &admin, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "admin: %s\n", err);
		tl_admin_conf_destroy(conf);
		return 1;
	}
	tl_admin_conf_destroy(conf);
	tl_err e = tl_admin_create_topic(admin, o->topic, o->partitions, -1, NULL, 0, 10000);
	int rc = 0;
	if (e != TL_OK && e != TL_ERR_TOPIC_ALREADY_EXISTS) {
		fprintf(stderr, "create topic: %s\n", tl_admin_last_error(admin));
		rc = 1;
	}
	tl_admin_destroy(admin);
	return rc;
}

static int produce(const struct options *o)
{
	char err[512];
	if (topic_create(o) != 0)
		return 1;
	struct tl_producer_conf *conf = tl_producer_conf_create();
	if (tl_producer_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) ||
	    tl_producer_conf_set(conf, "compression.type", o->codec, err, sizeof(err)) ||
	    tl_producer_conf_set(conf, "linger.ms", o->linger_ms, err, sizeof(err)) ||
	    tl_producer_conf_set(conf, "batch.size", o->batch_size, err, sizeof(err))) {
		fprintf(stderr, "producer conf: %s\n", err);
		return 2;
	}
	for (int i = 0; i < o->extra_count; i++) {
		char kv[256];
		snprintf(kv, sizeof(kv), "%s", o->extra[i]);
		char *eq = strchr(kv, '=');
		if (!eq || tl_producer_conf_set(conf, kv, (*eq = '\0', eq + 1), err, sizeof(err))) {
			fprintf(stderr, "producer conf -X %s: %s\n", o->extra[i],
				eq ? err : "expected key=value");
			return 2;
		}
	}
	tl_producer_conf_set_delivery_cb(conf, on_delivery, NULL);
	struct tl_producer *producer;
	if (tl_producer_create(conf, &producer, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "producer: %s\n", err);
		return 1;
	}
	tl_producer_conf_destroy(conf);
	uint8_t *value = malloc(o->value_bytes + 32);
	if (!value)
		return 1;
	double start = now_s();
	int rc = 0;
	for (uint32_t i = 0; i < o->count; i++) {
		char key[16], seq[16];
		record_key(i, key, sizeof(key));
		int seq_len = snprintf(seq, sizeof(seq), "%" PRIu32, i);
		uint32_t len = record_value(i, o->value_bytes, value);
		struct tl_producer_header headers[3] = {
			{"seq", seq, seq_len},
			{"src", "libtally", 8},
			{"nul", NULL, 0},
		};
		struct tl_producer_record rec = {
			.topic = o->topic,
			.partition = TL_PRODUCER_PARTITION_ANY,
			.key = key,
			.key_len = (int32_t)strlen(key),
			.value = value,
			.value_len = (int32_t)len,
			.headers = headers,
			.header_count = 3,
			.opaque = (void *)(uintptr_t)i,
		};
		tl_err e;
		if (o->sync_first && i < 100) {
			struct tl_producer_delivery d;
			e = tl_producer_send_sync(producer, &rec, &d);
			if (e == TL_OK)
				delivered++;
			else
				fprintf(stderr, "send_sync %u: %s\n", i, tl_err_name(e));
		} else {
			e = tl_producer_send(producer, &rec);
		}
		if (e != TL_OK) {
			fprintf(stderr, "send %u: %s (%s)\n", i, tl_err_name(e),
				tl_producer_last_error(producer));
			rc = 1;
			break;
		}
		if ((i & 1023) == 0)
			(void)tl_producer_poll(producer, 0);
		if (o->rate && (i % 100) == 99) {
			double ahead = (double)(i + 1) / o->rate - (now_s() - start);
			if (ahead > 0)
				usleep((useconds_t)(ahead * 1e6));
		}
	}
	if (tl_producer_flush(producer, FLUSH_TIMEOUT_MS) != TL_OK) {
		fprintf(stderr, "flush timed out, %" PRId64 " outstanding\n",
			tl_producer_outstanding(producer));
		rc = 1;
	}
	tl_producer_destroy(producer);
	free(value);
	double secs = now_s() - start;
	fprintf(stderr, "produced %" PRIu64 " records (%" PRIu64 " failed) in %.2fs, %.0f/s\n",
		delivered, failed, secs, (double)delivered / secs);
	if (o->failures_allowed ? delivered + failed != o->count : failed || delivered != o->count)
		rc = 1;
	return rc;
}

/* ---- consume ---- */

static bool header_is(const struct tl_consumer_header *h, const char *key, const void *value,
		      int32_t value_len)
{
	if (h->key_len != (int32_t)strlen(key) || memcmp(h->key, key, (size_t)h->key_len) != 0)
		return false;
	if (!value)
		return h->value == NULL && h->value_len == -1;
	return h->value && h->value_len == value_len &&
	       memcmp(h->value, value, (size_t)value_len) == 0;
}

/* Checks one record; returns its index i, or UINT32_MAX when it is wrong. */
static uint32_t record_check(const struct options *o, const struct tl_consumer_record *r,
			     uint8_t *expect)
{
	if (!r->key || r->key_len != 9 || ((const char *)r->key)[0] != 'k') {
		complain((uint64_t)r->offset, "bad key");
		return UINT32_MAX;
	}
	char key[16];
	memcpy(key, r->key, 9);
	key[9] = '\0';
	uint32_t i = (uint32_t)strtoul(key + 1, NULL, 10);
	if (i >= o->count) {
		complain((uint64_t)i, "index out of range");
		return UINT32_MAX;
	}
	uint32_t len = record_value(i, o->value_bytes, expect);
	if (!r->value || (uint32_t)r->value_len != len || memcmp(r->value, expect, len) != 0) {
		complain((uint64_t)i, "value differs");
		return UINT32_MAX;
	}
	char seq[16];
	int seq_len = snprintf(seq, sizeof(seq), "%" PRIu32, i);
	if (r->header_count != 3 || !header_is(&r->headers[0], "seq", seq, seq_len) ||
	    !header_is(&r->headers[1], "src", "libtally", 8) ||
	    !header_is(&r->headers[2], "nul", NULL, -1)) {
		complain((uint64_t)i, "headers differ");
		return UINT32_MAX;
	}
	int32_t want = tl_producer_partition_for_key(r->key, r->key_len, o->partitions);
	if (r->partition != want) {
		complain((uint64_t)i, "partition is not murmur2(key) % partitions");
		return UINT32_MAX;
	}
	return i;
}

static struct tl_consumer *consumer_open(const struct options *o)
{
	char err[512];
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	char group[256];
	snprintf(group, sizeof(group), "roundtrip-%s", o->topic);
	if (tl_consumer_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "group.id", group, err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "heartbeat.interval.ms", "500", err, sizeof(err))) {
		fprintf(stderr, "consumer conf: %s\n", err);
		tl_consumer_conf_destroy(conf);
		return NULL;
	}
	struct tl_consumer *consumer;
	if (tl_consumer_create(conf, &consumer, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "consumer: %s\n", err);
		tl_consumer_conf_destroy(conf);
		return NULL;
	}
	tl_consumer_conf_destroy(conf);
	tl_err e;
	if (o->group) {
		const char *topics[] = {o->topic};
		e = tl_consumer_subscribe(consumer, topics, 1);
	} else {
		struct tl_consumer_partition *parts = calloc((size_t)o->partitions, sizeof(*parts));
		for (int32_t p = 0; p < o->partitions; p++) {
			parts[p].topic = o->topic;
			parts[p].partition = p;
			parts[p].offset = TL_CONSUMER_OFFSET_BEGINNING;
		}
		e = tl_consumer_assign(consumer, parts, o->partitions);
		free(parts);
	}
	if (e != TL_OK) {
		fprintf(stderr, "assign/subscribe: %s\n", tl_consumer_last_error(consumer));
		tl_consumer_destroy(consumer);
		return NULL;
	}
	return consumer;
}

static int consume(const struct options *o)
{
	struct tl_consumer *consumer = consumer_open(o);
	if (!consumer)
		return 1;
	uint8_t *seen = calloc(o->count, 1);
	int64_t *last = malloc((size_t)o->partitions * sizeof(*last));
	uint8_t *expect = malloc(o->value_bytes + 32);
	if (!seen || !last || !expect)
		return 1;
	for (int32_t p = 0; p < o->partitions; p++)
		last[p] = -1;
	uint64_t received = 0, bad = 0, dups = 0, misordered = 0;
	double start = now_s(), last_record = start, tail_start = 0;
	int64_t end[TAIL_PARTITIONS_MAX];
	bool tail = false; /* every record arrived; reading on to the high watermarks */
	for (;;) {
		if ((received == o->count || o->failures_allowed) && !tail) {
			if (!tail_end_offsets(o->brokers, o->topic, o->partitions, end)) {
				bad++;
				break;
			}
			tail = true;
			tail_start = now_s();
		}
		if (tail && tail_reached(consumer, o->topic, o->partitions, end))
			break;
		if (tail && (now_s() - tail_start) * 1000 > TAIL_TIMEOUT_MS) {
			tail_report(consumer, o->topic, o->partitions, end);
			fprintf(stderr, "did not reach the high watermarks within %ds\n",
				TAIL_TIMEOUT_MS / 1000);
			bad++;
			break;
		}
		const struct tl_consumer_record *r;
		tl_err e = tl_consumer_poll(consumer, 100, &r);
		if (e == TL_ERR_TIMED_OUT) {
			if ((now_s() - last_record) * 1000 > IDLE_TIMEOUT_MS) {
				fprintf(stderr, "no record for %ds, giving up\n",
					IDLE_TIMEOUT_MS / 1000);
				break;
			}
			continue;
		}
		if (e != TL_OK) {
			fprintf(stderr, "poll: %s: %s\n", tl_err_name(e),
				tl_consumer_last_error(consumer));
			bad++;
			break;
		}
		last_record = now_s();
		uint32_t i = record_check(o, r, expect);
		if (i == UINT32_MAX) {
			bad++;
			continue;
		}
		if (seen[i]++) {
			dups++;
			complain(i, "duplicate");
			continue;
		}
		if ((int64_t)i <= last[r->partition]) {
			misordered++;
			complain(i, "out of send order");
		}
		last[r->partition] = i;
		received++;
	}
	double secs = now_s() - start;
	uint64_t missing = 0;
	for (uint32_t i = 0; i < o->count; i++)
		missing += !seen[i] && !(delivery_failed && delivery_failed[i]);
	fprintf(stderr,
		"consumed %" PRIu64 " records in %.2fs, %.0f/s: %" PRIu64 " bad, %" PRIu64
		" duplicate, %" PRIu64 " out of order, %" PRIu64 " missing\n",
		received, secs, (double)received / secs, bad, dups, misordered, missing);
	if (o->group && tl_consumer_commit(consumer, 10000) != TL_OK) {
		fprintf(stderr, "commit: %s\n", tl_consumer_last_error(consumer));
		bad++;
	}
	tl_consumer_destroy(consumer);
	free(seen);
	free(last);
	free(expect);
	return bad || dups || misordered || missing ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: tally_roundtrip -b BROKER -t TOPIC [-n COUNT] [-p PARTITIONS] "
		"[-s VALUE_BYTES] [-z none|zstd] [-m both|produce|consume] [-B BATCH_BYTES] "
		"[-L LINGER_MS] [-x] [-C] [-G] [-F]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct options o = {.codec = "zstd",
			    .mode = "both",
			    .batch_size = "262144",
			    .linger_ms = "10",
			    .count = 1000000,
			    .partitions = 4,
			    .value_bytes = 100};
	int c;
	while ((c = getopt(argc, argv, "b:t:n:p:s:z:m:B:L:X:R:xCGF")) != -1) {
		switch (c) {
		case 'b':
			o.brokers = optarg;
			break;
		case 't':
			o.topic = optarg;
			break;
		case 'n':
			o.count = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o.partitions = (int32_t)strtol(optarg, NULL, 10);
			break;
		case 's':
			o.value_bytes = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'z':
			o.codec = optarg;
			break;
		case 'm':
			o.mode = optarg;
			break;
		case 'B':
			o.batch_size = optarg;
			break;
		case 'L':
			o.linger_ms = optarg;
			break;
		case 'R':
			o.rate = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'X':
			if (o.extra_count == 16)
				return usage();
			o.extra[o.extra_count++] = optarg;
			break;
		case 'x':
			break; /* exactly-once is always checked; kept for the scripts' clarity */
		case 'C':
			o.sync_first = true;
			break;
		case 'F':
			o.failures_allowed = true;
			break;
		case 'G':
			o.group = true;
			break;
		default:
			return usage();
		}
	}
	if (!o.brokers || !o.topic || o.count == 0 || o.partitions <= 0 ||
	    o.partitions > TAIL_PARTITIONS_MAX || o.value_bytes > VALUE_BYTES_MAX)
		return usage();
	if (o.failures_allowed && strcmp(o.mode, "both") != 0)
		return usage(); /* which ones failed is known only to this process */
	if (o.failures_allowed && !(delivery_failed = calloc(o.count, 1)))
		return 1;
	int rc = 0;
	if (strcmp(o.mode, "both") == 0 || strcmp(o.mode, "produce") == 0)
		rc = produce(&o);
	if (rc == 0 && (strcmp(o.mode, "both") == 0 || strcmp(o.mode, "consume") == 0))
		rc = consume(&o);
	return rc;
}
