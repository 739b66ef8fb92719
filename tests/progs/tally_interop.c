/* tally_interop.c - libtally against librdkafka through a broker, in one process.
 *   tally_interop -b BROKER -t TOPIC -m MODE [-n COUNT] [-p PARTITIONS] [-z none|zstd]
 * Modes:
 *   rdk2tally  librdkafka produces COUNT keyed records (partitioner=murmur2_random, the
 *              Java client's), the libtally consumer reads them back;
 *   tally2rdk  libtally produces them, a librdkafka consumer (assign, from the beginning)
 *              reads them back;
 *   keys       prints "PARTITION KEY" for every record as tl_producer_partition_for_key
 *              places it (the test compares this with kcat's view);
 *   check      the libtally consumer reads COUNT records produced by anyone with keys
 *              "k<i>" and checks only the key's partition and that each i comes once;
 *   create     creates TOPIC with PARTITIONS (tl_admin_create_topic);
 *   admin      creates TOPIC, checks describe and list, deletes it, checks it is gone;
 *   offsets    produces COUNT records to partition 0 with timestamps 1e12 + 10 * i, then
 *              checks the consumer's start offsets BEGINNING, END and TIMESTAMP.
 * Record i: key "k<i>", value "value-<i>" repeated up to 64 bytes, headers "i" (i as
 * text) and "origin". Every record read must be byte-exact, sit on the partition
 * murmur2(key) % PARTITIONS computed by the other client's partitioner, and arrive once;
 * once all arrived, both consumers read on to each partition's high watermark
 * (tally_tail.h), so a duplicate after the last original record counts too.
 * Exit status: 0 all checks passed, 1 a check failed, 2 usage. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
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

#define IDLE_TIMEOUT_S   20
#define ERRORS_SHOWN_MAX 10

struct options {
	const char *brokers;
	const char *topic;
	const char *mode;
	const char *codec;
	uint32_t count;
	int32_t partitions;
};

static int errors;

static void complain(const char *what, uint32_t i)
{
	if (errors++ < ERRORS_SHOWN_MAX)
		fprintf(stderr, "tally_interop: record %" PRIu32 ": %s\n", i, what);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int key_of(uint32_t i, char *out, size_t size)
{
	return snprintf(out, size, "k%" PRIu32, i);
}

static size_t value_of(uint32_t i, char *out, size_t size)
{
	char unit[32];
	int n = snprintf(unit, sizeof(unit), "value-%" PRIu32 ";", i);
	size_t len = 0;
	while (len + (size_t)n < size && len < 64) {
		memcpy(out + len, unit, (size_t)n);
		len += (size_t)n;
	}
	return len;
}

/* The index of a record whose key is "k<i>", or UINT32_MAX. */
static uint32_t index_of(const void *key, size_t len, uint32_t count)
{
	char buf[16];
	if (!key || len < 2 || len > 11 || ((const char *)key)[0] != 'k')
		return UINT32_MAX;
	memcpy(buf, key, len);
	buf[len] = '\0';
	char *end;
	unsigned long i = strtoul(buf + 1, &end, 10);
	return *end || i >= count ? UINT32_MAX : (uint32_t)i;
}

static int topic_create(const struct options *o)
{
	char err[512];
	struct tl_admin_conf *conf = tl_admin_conf_create();
	struct tl_admin *admin = NULL;
	if (tl_admin_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) != TL_OK ||
	    tl_admin_create(conf, &admin, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "tally_interop: admin: %s\n", err);
		tl_admin_conf_destroy(conf);
		return 1;
	}
	tl_admin_conf_destroy(conf);
	tl_err e = tl_admin_create_topic(admin, o->topic, o->partitions, -1, NULL, 0, 10000);
	int rc = e == TL_OK || e == TL_ERR_TOPIC_ALREADY_EXISTS ? 0 : 1;
	if (rc)
		fprintf(stderr, "tally_interop: %s\n", tl_admin_last_error(admin));
	tl_admin_destroy(admin);
	return rc;
}

/* ---- librdkafka side ---- */

static bool rdk_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char why[512];
	if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
		return true;
	fprintf(stderr, "tally_interop: %s=%s: %s\n", key, value, why);
	return false;
}

static uint64_t rdk_failed;

static void rdk_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (msg->err && rdk_failed++ < ERRORS_SHOWN_MAX)
		fprintf(stderr, "tally_interop: librdkafka delivery: %s\n",
			rd_kafka_err2str(msg->err));
}

static int rdk_produce(const struct options *o)
{
	char why[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!rdk_set(conf, "bootstrap.servers", o->brokers) ||
	    !rdk_set(conf, "partitioner", "murmur2_random") ||
	    !rdk_set(conf, "compression.type", o->codec) ||
	    !rdk_set(conf, "enable.idempotence", "true") || !rdk_set(conf, "linger.ms", "5"))
		return 2;
	rd_kafka_conf_set_dr_msg_cb(conf, rdk_on_delivery);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!rk) {
		fprintf(stderr, "tally_interop: %s\n", why);
		return 1;
	}
	for (uint32_t i = 0; i < o->count; i++) {
		char key[16], value[128], seq[16];
		int key_len = key_of(i, key, sizeof(key));
		size_t len = value_of(i, value, sizeof(value));
		int seq_len = snprintf(seq, sizeof(seq), "%" PRIu32, i);
		rd_kafka_resp_err_t err;
		do {
			err = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(o->topic),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_KEY(key, (size_t)key_len), RD_KAFKA_V_VALUE(value, len),
				RD_KAFKA_V_HEADER("i", seq, (ssize_t)seq_len),
				RD_KAFKA_V_HEADER("origin", "librdkafka", (ssize_t)10),
				RD_KAFKA_V_END);
			if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 10);
		} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
		if (err) {
			fprintf(stderr, "tally_interop: producev: %s\n", rd_kafka_err2str(err));
			rd_kafka_destroy(rk);
			return 1;
		}
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_resp_err_t err = rd_kafka_flush(rk, 60000);
	rd_kafka_destroy(rk);
	if (err || rdk_failed) {
		fprintf(stderr,
			"tally_interop: librdkafka produce failed: %s, %" PRIu64 " failed\n",
			rd_kafka_err2str(err), rdk_failed);
		return 1;
	}
	return 0;
}

static bool rdk_header_is(rd_kafka_headers_t *hdrs, const char *name, const char *want)
{
	const void *value;
	size_t size;
	if (!hdrs ||
	    rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return false;
	return size == strlen(want) && memcmp(value, want, size) == 0;
}

/* Sets each entry of @list's offset to its partition's high watermark. */
static bool rdk_end_offsets(rd_kafka_t *rk, const struct options *o,
			    rd_kafka_topic_partition_list_t *list)
{
	for (int i = 0; i < list->cnt; i++) {
		int64_t low, high;
		rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
			rk, o->topic, list->elems[i].partition, &low, &high, 10000);
		if (err) {
			fprintf(stderr, "tally_interop: watermarks: %s\n", rd_kafka_err2str(err));
			return false;
		}
		list->elems[i].offset = high;
	}
	return true;
}

/* True when the consumer's position on each partition of @list reached its offset. */
static bool rdk_tail_reached(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *list)
{
	rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(list);
	bool reached = rd_kafka_position(rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR;
	for (int i = 0; reached && i < pos->cnt; i++)
		reached = pos->elems[i].offset >= list->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(pos);
	return reached;
}

static int rdk_consume(const struct options *o, uint8_t *seen)
{
	char why[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!rdk_set(conf, "bootstrap.servers", o->brokers) ||
	    !rdk_set(conf, "group.id", "tally-interop") ||
	    !rdk_set(conf, "enable.auto.commit", "false"))
		return 2;
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!rk) {
		fprintf(stderr, "tally_interop: %s\n", why);
		return 1;
	}
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(o->partitions);
	for (int32_t p = 0; p < o->partitions; p++)
		rd_kafka_topic_partition_list_add(list, o->topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, list);
	uint32_t received = 0;
	double last = now_s();
	bool tail = false; /* every record arrived; reading on to the high watermarks */
	while (now_s() - last < IDLE_TIMEOUT_S) {
		if (received == o->count && !tail) {
			if (!rdk_end_offsets(rk, o, list))
				break;
			tail = true;
			last = now_s();
		}
		if (tail && rdk_tail_reached(rk, list))
			break;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				fprintf(stderr, "tally_interop: librdkafka consume: %s\n",
					rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		last = now_s();
		uint32_t i = index_of(m->key, m->key_len, o->count);
		char value[128], seq[16];
		rd_kafka_headers_t *hdrs = NULL;
		(void)rd_kafka_message_headers(m, &hdrs);
		if (i == UINT32_MAX) {
			complain("bad key", 0);
		} else if (seen[i]++) {
			complain("duplicate", i);
		} else {
			size_t len = value_of(i, value, sizeof(value));
			snprintf(seq, sizeof(seq), "%" PRIu32, i);
			int32_t want = rd_kafka_msg_partitioner_murmur2(NULL, m->key, m->key_len,
									o->partitions, NULL, NULL);
			if (m->partition != want)
				complain("not on librdkafka's murmur2 partition", i);
			else if (m->len != len || memcmp(m->payload, value, len) != 0)
				complain("value differs", i);
			else if (!rdk_header_is(hdrs, "i", seq) ||
				 !rdk_header_is(hdrs, "origin", "libtally"))
				complain("headers differ", i);
			received++;
		}
		rd_kafka_message_destroy(m);
	}
	bool reached = tail && rdk_tail_reached(rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	fprintf(stderr, "tally_interop: librdkafka consumed %" PRIu32 " of %" PRIu32 "%s\n",
		received, o->count, reached ? "" : ", short of a high watermark");
	return received == o->count && reached && errors == 0 ? 0 : 1;
}

/* ---- libtally side ---- */

static uint64_t tl_failed;

static void tl_on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	(void)opaque;
	if (d->err != TL_OK && tl_failed++ < ERRORS_SHOWN_MAX)
		fprintf(stderr, "tally_interop: libtally delivery: %s: %s\n", tl_err_name(d->err),
			d->detail ? d->detail : "");
}

static int tally_produce(const struct options *o)
{
	char err[512];
	struct tl_producer_conf *conf = tl_producer_conf_create();
	if (tl_producer_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) ||
	    tl_producer_conf_set(conf, "compression.type", o->codec, err, sizeof(err))) {
		fprintf(stderr, "tally_interop: %s\n", err);
		return 2;
	}
	tl_producer_conf_set_delivery_cb(conf, tl_on_delivery, NULL);
	struct tl_producer *producer;
	tl_err e = tl_producer_create(conf, &producer, err, sizeof(err));
	tl_producer_conf_destroy(conf);
	if (e != TL_OK) {
		fprintf(stderr, "tally_interop: %s\n", err);
		return 1;
	}
	for (uint32_t i = 0; i < o->count && e == TL_OK; i++) {
		char key[16], value[128], seq[16];
		int key_len = key_of(i, key, sizeof(key));
		size_t len = value_of(i, value, sizeof(value));
		int seq_len = snprintf(seq, sizeof(seq), "%" PRIu32, i);
		struct tl_producer_header headers[2] = {{"i", seq, seq_len},
							{"origin", "libtally", 8}};
		struct tl_producer_record rec = {.topic = o->topic,
						 .partition = TL_PRODUCER_PARTITION_ANY,
						 .key = key,
						 .key_len = key_len,
						 .value = value,
						 .value_len = (int32_t)len,
						 .headers = headers,
						 .header_count = 2};
		e = tl_producer_send(producer, &rec);
		if ((i & 1023) == 0)
			(void)tl_producer_poll(producer, 0);
	}
	if (e == TL_OK)
		e = tl_producer_flush(producer, 60000);
	tl_producer_destroy(producer);
	if (e != TL_OK || tl_failed) {
		fprintf(stderr, "tally_interop: libtally produce failed: %s\n", tl_err_name(e));
		return 1;
	}
	return 0;
}

static bool tl_header_is(const struct tl_consumer_record *r, int32_t index, const char *name,
			 const char *want)
{
	if (index >= r->header_count)
		return false;
	const struct tl_consumer_header *h = &r->headers[index];
	return h->key_len == (int32_t)strlen(name) && memcmp(h->key, name, strlen(name)) == 0 &&
	       h->value_len == (int32_t)strlen(want) && memcmp(h->value, want, strlen(want)) == 0;
}

/* @full: check value and headers too (records made by rdk_produce). */
static int tally_consume(const struct options *o, uint8_t *seen, bool full)
{
	char err[512];
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	if (tl_consumer_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err))) {
		fprintf(stderr, "tally_interop: %s\n", err);
		return 2;
	}
	struct tl_consumer *consumer;
	tl_err e = tl_consumer_create(conf, &consumer, err, sizeof(err));
	tl_consumer_conf_destroy(conf);
	if (e != TL_OK) {
		fprintf(stderr, "tally_interop: %s\n", err);
		return 1;
	}
	struct tl_consumer_partition parts[256];
	int32_t n = o->partitions < 256 ? o->partitions : 256;
	for (int32_t p = 0; p < n; p++)
		parts[p] = (struct tl_consumer_partition){o->topic, p, TL_CONSUMER_OFFSET_BEGINNING,
							  0};
	(void)tl_consumer_assign(consumer, parts, n);
	uint32_t received = 0;
	double last = now_s();
	int64_t end[TAIL_PARTITIONS_MAX];
	bool tail = false; /* every record arrived; reading on to the high watermarks */
	bool reached = false;
	while (now_s() - last < IDLE_TIMEOUT_S) {
		if (received == o->count && !tail) {
			if (!tail_end_offsets(o->brokers, o->topic, n, end))
				break;
			tail = true;
			last = now_s();
		}
		if (tail)
			reached = tail_reached(consumer, o->topic, n, end);
		if (reached)
			break;
		const struct tl_consumer_record *r;
		e = tl_consumer_poll(consumer, 100, &r);
		if (e == TL_ERR_TIMED_OUT)
			continue;
		if (e != TL_OK) {
			fprintf(stderr, "tally_interop: poll: %s\n",
				tl_consumer_last_error(consumer));
			break;
		}
		last = now_s();
		uint32_t i = index_of(r->key, (size_t)r->key_len, o->count);
		if (i == UINT32_MAX) {
			complain("bad key", 0);
			continue;
		}
		if (seen[i]++) {
			complain("duplicate", i);
			continue;
		}
		received++;
		if (r->partition !=
		    tl_producer_partition_for_key(r->key, r->key_len, o->partitions)) {
			complain("not on libtally's murmur2 partition", i);
			continue;
		}
		if (!full)
			continue;
		char value[128], seq[16];
		size_t len = value_of(i, value, sizeof(value));
		snprintf(seq, sizeof(seq), "%" PRIu32, i);
		if ((size_t)r->value_len != len || memcmp(r->value, value, len) != 0)
			complain("value differs", i);
		else if (r->header_count != 2 || !tl_header_is(r, 0, "i", seq) ||
			 !tl_header_is(r, 1, "origin", "librdkafka"))
			complain("headers differ", i);
	}
	if (tail && !reached)
		tail_report(consumer, o->topic, n, end);
	tl_consumer_destroy(consumer);
	fprintf(stderr, "tally_interop: libtally consumed %" PRIu32 " of %" PRIu32 "\n", received,
		o->count);
	return received == o->count && reached && errors == 0 ? 0 : 1;
}

static struct tl_admin *admin_open(const struct options *o)
{
	char err[512];
	struct tl_admin_conf *conf = tl_admin_conf_create();
	struct tl_admin *admin = NULL;
	if (tl_admin_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) != TL_OK ||
	    tl_admin_create(conf, &admin, err, sizeof(err)) != TL_OK)
		fprintf(stderr, "tally_interop: admin: %s\n", err);
	tl_admin_conf_destroy(conf);
	return admin;
}

static int check_admin(const struct options *o)
{
	struct tl_admin *admin = admin_open(o);
	if (!admin)
		return 1;
	int rc = 1;
	struct tl_admin_topics *topics = NULL;
	const char *names[] = {o->topic};
	if (tl_admin_create_topic(admin, o->topic, o->partitions, -1, NULL, 0, 10000) != TL_OK) {
		fprintf(stderr, "tally_interop: create: %s\n", tl_admin_last_error(admin));
		goto out;
	}
	if (tl_admin_create_topic(admin, o->topic, o->partitions, -1, NULL, 0, 10000) !=
	    TL_ERR_TOPIC_ALREADY_EXISTS) {
		fprintf(stderr, "tally_interop: a second create did not say it exists\n");
		goto out;
	}
	if (tl_admin_describe_topics(admin, names, 1, &topics, 10000) != TL_OK ||
	    topics->count != 1 || strcmp(topics->topics[0].name, o->topic) != 0 ||
	    topics->topics[0].err != TL_OK || topics->topics[0].partition_count != o->partitions ||
	    topics->topics[0].partitions[0].leader < 0 ||
	    topics->topics[0].partitions[0].replica_count < 1) {
		fprintf(stderr, "tally_interop: describe is wrong: %s\n",
			tl_admin_last_error(admin));
		goto out;
	}
	tl_admin_topics_destroy(topics);
	topics = NULL;
	if (tl_admin_list_topics(admin, &topics, 10000) != TL_OK) {
		fprintf(stderr, "tally_interop: list: %s\n", tl_admin_last_error(admin));
		goto out;
	}
	bool listed = false;
	for (int32_t i = 0; i < topics->count; i++)
		listed |= strcmp(topics->topics[i].name, o->topic) == 0;
	for (int32_t i = 1; i < topics->count; i++)
		if (strcmp(topics->topics[i - 1].name, topics->topics[i].name) >= 0)
			listed = false; /* must be sorted */
	tl_admin_topics_destroy(topics);
	topics = NULL;
	if (!listed) {
		fprintf(stderr, "tally_interop: list does not show the topic (sorted)\n");
		goto out;
	}
	if (tl_admin_delete_topic(admin, o->topic, 10000) != TL_OK) {
		fprintf(stderr, "tally_interop: delete: %s\n", tl_admin_last_error(admin));
		goto out;
	}
	if (tl_admin_delete_topic(admin, o->topic, 10000) != TL_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
		fprintf(stderr, "tally_interop: a second delete did not fail\n");
		goto out;
	}
	if (tl_admin_describe_topics(admin, names, 1, &topics, 10000) != TL_OK ||
	    topics->count != 1 || topics->topics[0].err != TL_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
		fprintf(stderr, "tally_interop: the deleted topic is still described\n");
		goto out;
	}
	rc = 0;
out:
	tl_admin_topics_destroy(topics);
	tl_admin_destroy(admin);
	return rc;
}

/* The first offset a consumer starting at @start returns (-1: none within 2 s), and its
 * position then. */
static int64_t first_offset(const struct options *o, int64_t start, int64_t timestamp_ms,
			    int64_t *position_out)
{
	char err[512];
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	struct tl_consumer *consumer;
	if (tl_consumer_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) ||
	    tl_consumer_create(conf, &consumer, err, sizeof(err))) {
		fprintf(stderr, "tally_interop: %s\n", err);
		tl_consumer_conf_destroy(conf);
		return -2;
	}
	tl_consumer_conf_destroy(conf);
	struct tl_consumer_partition part = {o->topic, 0, start, timestamp_ms};
	(void)tl_consumer_assign(consumer, &part, 1);
	const struct tl_consumer_record *r;
	int64_t offset = -1;
	double deadline = now_s() + 2;
	while (offset < 0 && now_s() < deadline) {
		tl_err e = tl_consumer_poll(consumer, 100, &r);
		if (e == TL_OK)
			offset = r->offset;
		else if (e != TL_ERR_TIMED_OUT)
			break;
	}
	*position_out = tl_consumer_position(consumer, o->topic, 0);
	tl_consumer_destroy(consumer);
	return offset;
}

static int check_offsets(struct options *o)
{
	if (topic_create(o) != 0)
		return 1;
	char err[512];
	struct tl_producer_conf *conf = tl_producer_conf_create();
	struct tl_producer *producer;
	if (tl_producer_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)) ||
	    tl_producer_create(conf, &producer, err, sizeof(err))) {
		fprintf(stderr, "tally_interop: %s\n", err);
		return 1;
	}
	tl_producer_conf_destroy(conf);
	/* An hour ago: timestamps of 2001 would be past retention.ms (7 days), and the
	 * broker deletes a wholly expired log, its active segment too (as Kafka). */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	const int64_t base_ms = ((int64_t)ts.tv_sec - 3600) * 1000;
	for (uint32_t i = 0; i < o->count; i++) {
		struct tl_producer_record rec = {.topic = o->topic,
						 .partition = 0,
						 .value = "v",
						 .value_len = 1,
						 .timestamp_ms = base_ms + 10 * (int64_t)i};
		if (tl_producer_send(producer, &rec) != TL_OK)
			return 1;
	}
	tl_err e = tl_producer_flush(producer, 30000);
	tl_producer_destroy(producer);
	if (e != TL_OK)
		return 1;
	int64_t half = o->count / 2, position;
	int64_t got = first_offset(o, TL_CONSUMER_OFFSET_BEGINNING, 0, &position);
	if (got != 0)
		return fprintf(stderr, "tally_interop: BEGINNING gave %lld\n", (long long)got), 1;
	got = first_offset(o, TL_CONSUMER_OFFSET_TIMESTAMP, base_ms + 10 * half - 5, &position);
	if (got != half)
		return fprintf(stderr, "tally_interop: TIMESTAMP gave %lld, want %lld\n",
			       (long long)got, (long long)half),
		       1;
	got = first_offset(o, TL_CONSUMER_OFFSET_END, 0, &position);
	if (got != -1 || position != (int64_t)o->count)
		return fprintf(stderr, "tally_interop: END gave %lld at position %lld\n",
			       (long long)got, (long long)position),
		       1;
	got = first_offset(o, 7, 0, &position);
	if (got != 7)
		return fprintf(stderr, "tally_interop: offset 7 gave %lld\n", (long long)got), 1;
	return 0;
}

static int print_keys(const struct options *o)
{
	for (uint32_t i = 0; i < o->count; i++) {
		char key[16];
		int len = key_of(i, key, sizeof(key));
		printf("%d %s\n", tl_producer_partition_for_key(key, len, o->partitions), key);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {NULL, NULL, NULL, "zstd", 10000, 4};
	int c;
	while ((c = getopt(argc, argv, "b:t:m:n:p:z:")) != -1) {
		switch (c) {
		case 'b':
			o.brokers = optarg;
			break;
		case 't':
			o.topic = optarg;
			break;
		case 'm':
			o.mode = optarg;
			break;
		case 'n':
			o.count = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o.partitions = (int32_t)strtol(optarg, NULL, 10);
			break;
		case 'z':
			o.codec = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (!o.mode || o.count == 0 || o.partitions <= 0 || o.partitions > 256)
		goto usage;
	if (strcmp(o.mode, "keys") == 0)
		return print_keys(&o);
	if (!o.brokers || !o.topic)
		goto usage;
	uint8_t *seen = calloc(o.count, 1);
	if (!seen)
		return 1;
	int rc = 2;
	if (strcmp(o.mode, "rdk2tally") == 0) {
		rc = topic_create(&o);
		if (rc == 0)
			rc = rdk_produce(&o);
		if (rc == 0)
			rc = tally_consume(&o, seen, true);
	} else if (strcmp(o.mode, "tally2rdk") == 0) {
		rc = topic_create(&o);
		if (rc == 0)
			rc = tally_produce(&o);
		if (rc == 0)
			rc = rdk_consume(&o, seen);
	} else if (strcmp(o.mode, "admin") == 0) {
		rc = check_admin(&o);
	} else if (strcmp(o.mode, "offsets") == 0) {
		rc = check_offsets(&o);
	} else if (strcmp(o.mode, "create") == 0) {
		rc = topic_create(&o);
	} else if (strcmp(o.mode, "check") == 0) {
		rc = tally_consume(&o, seen, false);
	}
	free(seen);
	return rc;

usage:
	fprintf(stderr,
		"usage: tally_interop -b BROKER -t TOPIC -m rdk2tally|tally2rdk|check|create|admin|offsets|keys "
		"[-n COUNT] [-p PARTITIONS] [-z none|zstd]\n");
	return 2;
}
