/* rdk_produce_consume.c - a librdkafka round trip through a broker: produce COUNT records,
 * then consume them back and check every one, byte for byte.
 *   rdk_produce_consume -b BROKER -t TOPIC [-n COUNT] [-p PARTITIONS] [-s VALUE_BYTES_MAX]
 *                       [-z none|gzip|snappy|lz4|zstd] [-a ACKS] [-I] [-m both|produce|consume]
 * Record i goes to partition i % PARTITIONS, with key "k<i>", one header "i" (i as 4 bytes
 * big-endian) and a value computed from i alone (record_value()). The topic must be empty
 * (or absent, then auto-created) when producing starts, so that:
 * (1) record i lies at offset i / PARTITIONS of partition i % PARTITIONS; the producer's
 *     delivery reports and the consumer both check exactly that. So each partition holds
 *     its records in send order, from offset 0, with no gap and no duplicate.
 * (2) The consumer recomputes key, header and value of each record and compares bytes.
 * Both sides print the record count and an order-independent checksum of the values.
 * -I enables idempotence. Exit status: 0 all checks passed, 1 a check failed, 2 usage. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VALUE_BYTES_MIN  8
#define PARTITIONS_MAX   1024
#define IDLE_TIMEOUT_MS  30000 /* consumer: give up after this long without a record */
#define FLUSH_TIMEOUT_MS 120000
#define ERRORS_SHOWN_MAX 10

struct options {
	const char *brokers;
	const char *topic;
	const char *codec;
	const char *acks;
	const char *mode;
	uint32_t count;
	int32_t partitions;
	uint32_t value_bytes_max;
	bool idempotence;
};

struct produce_state {
	const struct options *opts;
	uint64_t delivered;
	uint64_t failed;
	uint64_t misplaced;
	uint64_t checksum;
};

/* ---- records ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Writes record @index's value into @out (room for @bytes_max) and returns its length:
 * between VALUE_BYTES_MIN and @bytes_max, an 8-byte pattern varied along the value, so
 * compression has something to find but every record differs. */
static size_t record_value(uint32_t index, uint32_t bytes_max, uint8_t *out)
{
	uint64_t h = mix64(index + 1u);
	size_t len = VALUE_BYTES_MIN + (size_t)(h % (bytes_max - VALUE_BYTES_MIN + 1u));
	for (size_t j = 0; j < len; j++)
		out[j] = (uint8_t)((h >> ((j % 8u) * 8u)) ^ (j / 8u));
	return len;
}

static int record_key(uint32_t index, char *out, size_t out_size)
{
	return snprintf(out, out_size, "k%" PRIu32, index);
}

static uint64_t value_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char why[512];
	if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "rdk_produce_consume: %s=%s: %s\n", key, value, why);
		return false;
	}
	return true;
}

/* ---- producing ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct produce_state *st = opaque;
	uint32_t index = (uint32_t)(uintptr_t)msg->_private;
	(void)rk;
	if (msg->err) {
		if (st->failed++ < ERRORS_SHOWN_MAX)
			fprintf(stderr,
				"rdk_produce_consume: record %" PRIu32 " not delivered: %s\n",
				index, rd_kafka_err2str(msg->err));
		return;
	}
	int32_t partitions = st->opts->partitions;
	int64_t want = (int64_t)(index / (uint32_t)partitions);
	if (msg->partition != (int32_t)(index % (uint32_t)partitions) || msg->offset != want) {
		if (st->misplaced++ < ERRORS_SHOWN_MAX)
			fprintf(stderr,
				"rdk_produce_consume: record %" PRIu32
				" acknowledged at partition %" PRId32 " offset %" PRId64
				", want offset %" PRId64 "\n",
				index, msg->partition, msg->offset, want);
	}
	st->checksum += value_checksum(msg->payload, msg->len);
	st->delivered++;
}

static rd_kafka_t *producer_create(const struct options *opts, struct produce_state *st)
{
	char why[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf_set(conf, "bootstrap.servers", opts->brokers) ||
	    !conf_set(conf, "acks", opts->acks) ||
	    !conf_set(conf, "compression.type", opts->codec) ||
	    !conf_set(conf, "enable.idempotence", opts->idempotence ? "true" : "false") ||
	    !conf_set(conf, "linger.ms", "5") ||
	    !conf_set(conf, "queue.buffering.max.messages", "500000")) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, st);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!rk) {
		fprintf(stderr, "rdk_produce_consume: producer: %s\n", why);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, const struct options *opts, uint32_t index,
				       uint8_t *value)
{
	char key[16];
	uint8_t header[4] = {(uint8_t)(index >> 24), (uint8_t)(index >> 16), (uint8_t)(index >> 8),
			     (uint8_t)index};
	int key_len = record_key(index, key, sizeof(key));
	size_t len = record_value(index, opts->value_bytes_max, value);
	for (;;) {
		rd_kafka_resp_err_t err = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(opts->topic),
			RD_KAFKA_V_PARTITION((int32_t)(index % (uint32_t)opts->partitions)),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value, len),
			RD_KAFKA_V_KEY(key, (size_t)key_len),
			RD_KAFKA_V_HEADER("i", header, (ssize_t)sizeof(header)),
			RD_KAFKA_V_OPAQUE((void *)(uintptr_t)index), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return err;
		rd_kafka_poll(rk, 10);
	}
}

static bool run_produce(const struct options *opts)
{
	struct produce_state st = {.opts = opts};
	rd_kafka_t *rk = producer_create(opts, &st);
	if (!rk)
		return false;
	uint8_t *value = malloc(opts->value_bytes_max);
	if (!value) {
		rd_kafka_destroy(rk);
		return false;
	}
	double start = now_s();
	bool ok = true;
	for (uint32_t i = 0; i < opts->count; i++) {
		rd_kafka_resp_err_t err = produce_one(rk, opts, i, value);
		if (err) {
			fprintf(stderr, "rdk_produce_consume: produce record %" PRIu32 ": %s\n", i,
				rd_kafka_err2str(err));
			ok = false;
			break;
		}
		if (i % 1024u == 0)
			rd_kafka_poll(rk, 0);
	}
	rd_kafka_resp_err_t err = rd_kafka_flush(rk, FLUSH_TIMEOUT_MS);
	if (err) {
		fprintf(stderr, "rdk_produce_consume: flush: %s (%d still queued)\n",
			rd_kafka_err2str(err), rd_kafka_outq_len(rk));
		ok = false;
	}
	double secs = now_s() - start;
	printf("produced %" PRIu64 " of %" PRIu32 " records in %.2f s (%.0f/s) failed=%" PRIu64
	       " misplaced=%" PRIu64 " checksum=%016" PRIx64 "\n",
	       st.delivered, opts->count, secs, (double)st.delivered / secs, st.failed,
	       st.misplaced, st.checksum);
	fflush(stdout);
	free(value);
	rd_kafka_destroy(rk);
	return ok && st.delivered == opts->count && st.failed == 0 && st.misplaced == 0;
}

/* ---- consuming ---- */

struct consume_state {
	const struct options *opts;
	int64_t next_offset[PARTITIONS_MAX];
	uint64_t received;
	uint64_t bad;
	uint64_t checksum;
	uint8_t *value;
};

static void consume_bad(struct consume_state *st, const rd_kafka_message_t *msg, const char *what)
{
	if (st->bad++ < ERRORS_SHOWN_MAX)
		fprintf(stderr,
			"rdk_produce_consume: partition %" PRId32 " offset %" PRId64 ": %s\n",
			msg->partition, msg->offset, what);
}

static bool consume_header_is(const rd_kafka_message_t *msg, uint32_t index)
{
	rd_kafka_headers_t *headers = NULL;
	const void *data = NULL;
	size_t len = 0;
	if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return false;
	if (rd_kafka_header_get_last(headers, "i", &data, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return false;
	const uint8_t *p = data;
	return len == 4 && ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
			    (uint32_t)p[3]) == index;
}

/* Checks one record against (1) and (2). */
static void consume_check(struct consume_state *st, const rd_kafka_message_t *msg)
{
	const struct options *opts = st->opts;
	int32_t p = msg->partition;
	if (p < 0 || p >= opts->partitions) {
		consume_bad(st, msg, "unexpected partition");
		return;
	}
	if (msg->offset != st->next_offset[p]) {
		consume_bad(st, msg,
			    msg->offset < st->next_offset[p] ? "offset repeats"
							     : "offset skips ahead");
		st->next_offset[p] = msg->offset;
	}
	st->next_offset[p]++;
	uint64_t index = (uint64_t)msg->offset * (uint64_t)opts->partitions + (uint64_t)p;
	if (index >= opts->count) {
		consume_bad(st, msg, "record beyond COUNT");
		return;
	}
	char key[16];
	int key_len = record_key((uint32_t)index, key, sizeof(key));
	size_t len = record_value((uint32_t)index, opts->value_bytes_max, st->value);
	if (msg->key_len != (size_t)key_len || memcmp(msg->key, key, (size_t)key_len) != 0)
		consume_bad(st, msg, "key differs");
	else if (msg->len != len || memcmp(msg->payload, st->value, len) != 0)
		consume_bad(st, msg, "value differs");
	else if (!consume_header_is(msg, (uint32_t)index))
		consume_bad(st, msg, "header \"i\" differs");
	st->checksum += value_checksum(msg->payload, msg->len);
	st->received++;
}

static rd_kafka_t *consumer_create(const struct options *opts)
{
	char why[512];
	char group[300];
	snprintf(group, sizeof(group), "rdk-produce-consume-%s", opts->topic);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf_set(conf, "bootstrap.servers", opts->brokers) ||
	    !conf_set(conf, "group.id", group) || !conf_set(conf, "enable.auto.commit", "false") ||
	    !conf_set(conf, "auto.offset.reset", "error") ||
	    !conf_set(conf, "enable.partition.eof", "false")) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!rk) {
		fprintf(stderr, "rdk_produce_consume: consumer: %s\n", why);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

/* Assigns every partition from its first offset: no group membership involved. */
static bool consumer_assign(rd_kafka_t *rk, const struct options *opts)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(opts->partitions);
	for (int32_t p = 0; p < opts->partitions; p++)
		rd_kafka_topic_partition_list_add(list, opts->topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (err) {
		fprintf(stderr, "rdk_produce_consume: assign: %s\n", rd_kafka_err2str(err));
		return false;
	}
	return true;
}

static void consume_loop(rd_kafka_t *rk, struct consume_state *st)
{
	double last_progress = now_s();
	while (st->received < st->opts->count) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
		if (!msg) {
			if ((now_s() - last_progress) * 1000.0 > IDLE_TIMEOUT_MS) {
				fprintf(stderr, "rdk_produce_consume: no record for %d ms\n",
					IDLE_TIMEOUT_MS);
				break;
			}
			continue;
		}
		if (msg->err) {
			fprintf(stderr, "rdk_produce_consume: consume error: %s\n",
				rd_kafka_message_errstr(msg));
			st->bad++;
		} else {
			consume_check(st, msg);
			last_progress = now_s();
		}
		rd_kafka_message_destroy(msg);
		if (st->bad > ERRORS_SHOWN_MAX * 10)
			break;
	}
}

static bool run_consume(const struct options *opts)
{
	struct consume_state *st = calloc(1, sizeof(*st));
	if (!st)
		return false;
	st->opts = opts;
	st->value = malloc(opts->value_bytes_max);
	rd_kafka_t *rk = st->value ? consumer_create(opts) : NULL;
	if (!rk) {
		free(st->value);
		free(st);
		return false;
	}
	double start = now_s();
	if (consumer_assign(rk, opts))
		consume_loop(rk, st);
	/* Anything after the last record is an extra: wait briefly for one. */
	rd_kafka_message_t *extra = rd_kafka_consumer_poll(rk, 500);
	if (extra) {
		if (!extra->err)
			consume_bad(st, extra, "record beyond COUNT");
		rd_kafka_message_destroy(extra);
	}
	double secs = now_s() - start;
	printf("consumed %" PRIu64 " of %" PRIu32 " records in %.2f s (%.0f/s) bad=%" PRIu64
	       " checksum=%016" PRIx64 "\n",
	       st->received, opts->count, secs, (double)st->received / secs, st->bad, st->checksum);
	fflush(stdout);
	bool ok = st->received == opts->count && st->bad == 0;
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	free(st->value);
	free(st);
	return ok;
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: rdk_produce_consume -b BROKER -t TOPIC [-n COUNT] [-p PARTITIONS]\n"
			"           [-s VALUE_BYTES_MAX] [-z CODEC] [-a ACKS] [-I]\n"
			"           [-m both|produce|consume]\n");
}

static bool parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool parse_args(int argc, char **argv, struct options *opts)
{
	uint32_t partitions = 1;
	int c;
	*opts = (struct options){.codec = "none",
				 .acks = "all",
				 .mode = "both",
				 .count = 1000,
				 .value_bytes_max = 100};
	while ((c = getopt(argc, argv, "b:t:n:p:s:z:a:m:I")) != -1) {
		switch (c) {
		case 'b':
			opts->brokers = optarg;
			break;
		case 't':
			opts->topic = optarg;
			break;
		case 'z':
			opts->codec = optarg;
			break;
		case 'a':
			opts->acks = optarg;
			break;
		case 'm':
			opts->mode = optarg;
			break;
		case 'I':
			opts->idempotence = true;
			break;
		case 'n':
			if (!parse_u32(optarg, 1, UINT32_MAX / 2, &opts->count))
				return false;
			break;
		case 'p':
			if (!parse_u32(optarg, 1, PARTITIONS_MAX, &partitions))
				return false;
			break;
		case 's':
			if (!parse_u32(optarg, VALUE_BYTES_MIN, 1u << 20, &opts->value_bytes_max))
				return false;
			break;
		default:
			return false;
		}
	}
	opts->partitions = (int32_t)partitions;
	return opts->brokers && opts->topic && optind == argc &&
	       (strcmp(opts->mode, "both") == 0 || strcmp(opts->mode, "produce") == 0 ||
		strcmp(opts->mode, "consume") == 0);
}

int main(int argc, char **argv)
{
	struct options opts;
	if (!parse_args(argc, argv, &opts)) {
		usage();
		return 2;
	}
	bool ok = true;
	if (strcmp(opts.mode, "consume") != 0)
		ok = run_produce(&opts);
	if (ok && strcmp(opts.mode, "produce") != 0)
		ok = run_consume(&opts);
	return ok ? 0 : 1;
}
