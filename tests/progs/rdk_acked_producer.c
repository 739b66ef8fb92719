/* rdk_acked_producer.c - produces numbered records and logs which ones were acknowledged,
 * for crash tests: kill the broker while this runs, restart it, then check that every
 * acknowledged record is where its acknowledgement said.
 *   rdk_acked_producer -b BROKER -t TOPIC -o ACKED_FILE [-f FAILED_FILE] [-n COUNT]
 *                      [-p PARTITIONS] [-r RECORDS_PER_S] [-z CODEC]
 * Record id i (0 <= i < COUNT) goes to partition i % PARTITIONS with value "<i>:" plus
 * filler; ACKED_FILE gets the line "<i> <partition> <offset>" for each successful
 * delivery report, flushed at once, so a line exists only after the broker answered;
 * FAILED_FILE, if given, gets "<i>" for each failed one, so a test can bound them.
 * acks=all, no idempotence and no retries: a record is written at most once by this
 * producer, so the log may hold records that were never acknowledged (their answer was
 * lost in the crash) but must never hold one twice. Records queued while the broker is
 * down wait for it (message.timeout.ms 60 s).
 * Exit status: 0 when every record got a delivery report (success or failure), 1 when
 * some were still queued at the end, 2 usage. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILLER_BYTES     48
#define FLUSH_TIMEOUT_MS 90000
#define ERRORS_SHOWN_MAX 5
#define TICK_NS          10000000L /* pace in 10 ms steps */

struct options {
	const char *brokers;
	const char *topic;
	const char *acked_path;
	const char *failed_path; /* NULL: failures are only counted */
	const char *codec;
	uint32_t count;
	uint32_t partitions;
	uint32_t rate;
};

struct acked_state {
	FILE *acked;
	FILE *failed_file; /* NULL without -f */
	uint64_t delivered;
	uint64_t failed;
	bool write_failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct acked_state *st = opaque;
	uint32_t id = (uint32_t)(uintptr_t)msg->_private;
	(void)rk;
	if (msg->err) {
		if (st->failed_file && (fprintf(st->failed_file, "%" PRIu32 "\n", id) < 0 ||
					fflush(st->failed_file) != 0))
			st->write_failed = true;
		if (st->failed++ < ERRORS_SHOWN_MAX)
			fprintf(stderr,
				"rdk_acked_producer: record %" PRIu32 " not acknowledged: %s\n", id,
				rd_kafka_err2str(msg->err));
		return;
	}
	st->delivered++;
	if (fprintf(st->acked, "%" PRIu32 " %" PRId32 " %" PRId64 "\n", id, msg->partition,
		    msg->offset) < 0 ||
	    fflush(st->acked) != 0)
		st->write_failed = true;
}

static bool conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char why[512];
	if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "rdk_acked_producer: %s=%s: %s\n", key, value, why);
		return false;
	}
	return true;
}

static rd_kafka_t *producer_create(const struct options *opts, struct acked_state *st)
{
	char why[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf_set(conf, "bootstrap.servers", opts->brokers) || !conf_set(conf, "acks", "all") ||
	    !conf_set(conf, "enable.idempotence", "false") || !conf_set(conf, "retries", "0") ||
	    !conf_set(conf, "compression.type", opts->codec) || !conf_set(conf, "linger.ms", "2") ||
	    !conf_set(conf, "message.timeout.ms", "60000") ||
	    !conf_set(conf, "request.timeout.ms", "5000") ||
	    !conf_set(conf, "reconnect.backoff.ms", "20") ||
	    !conf_set(conf, "reconnect.backoff.max.ms", "200")) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, st);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!rk) {
		fprintf(stderr, "rdk_acked_producer: %s\n", why);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, const struct options *opts, uint32_t id)
{
	char value[32 + FILLER_BYTES];
	int len = snprintf(value, sizeof(value), "%" PRIu32 ":", id);
	for (int j = 0; j < FILLER_BYTES; j++)
		value[len++] = (char)('a' + (int)((id + (uint32_t)j) % 26u));
	for (;;) {
		rd_kafka_resp_err_t err =
			rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(opts->topic),
					  RD_KAFKA_V_PARTITION((int32_t)(id % opts->partitions)),
					  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					  RD_KAFKA_V_VALUE(value, (size_t)len),
					  RD_KAFKA_V_OPAQUE((void *)(uintptr_t)id), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return err;
		rd_kafka_poll(rk, 10);
	}
}

/* Produces every record, @rate per second (0: as fast as possible). */
static bool produce_all(rd_kafka_t *rk, const struct options *opts)
{
	uint32_t per_tick = opts->rate ? opts->rate / (uint32_t)(1000000000L / TICK_NS) : 0;
	if (opts->rate && per_tick == 0)
		per_tick = 1;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (uint32_t id = 0; id < opts->count; id++) {
		rd_kafka_resp_err_t err = produce_one(rk, opts, id);
		if (err) {
			fprintf(stderr, "rdk_acked_producer: produce %" PRIu32 ": %s\n", id,
				rd_kafka_err2str(err));
			return false;
		}
		if (per_tick && (id + 1) % per_tick == 0) {
			rd_kafka_poll(rk, 0);
			next.tv_nsec += TICK_NS;
			if (next.tv_nsec >= 1000000000L) {
				next.tv_nsec -= 1000000000L;
				next.tv_sec++;
			}
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		} else if (id % 1024u == 0) {
			rd_kafka_poll(rk, 0);
		}
	}
	return true;
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
	int c;
	*opts = (struct options){.codec = "none", .count = 10000, .partitions = 1};
	while ((c = getopt(argc, argv, "b:t:o:f:n:p:r:z:")) != -1) {
		bool ok = true;
		switch (c) {
		case 'b':
			opts->brokers = optarg;
			break;
		case 't':
			opts->topic = optarg;
			break;
		case 'f':
			opts->failed_path = optarg;
			break;
		case 'o':
			opts->acked_path = optarg;
			break;
		case 'z':
			opts->codec = optarg;
			break;
		case 'n':
			ok = parse_u32(optarg, 1, UINT32_MAX / 2, &opts->count);
			break;
		case 'p':
			ok = parse_u32(optarg, 1, 1024, &opts->partitions);
			break;
		case 'r':
			ok = parse_u32(optarg, 0, 10000000, &opts->rate);
			break;
		default:
			ok = false;
			break;
		}
		if (!ok)
			return false;
	}
	return opts->brokers && opts->topic && opts->acked_path && optind == argc;
}

int main(int argc, char **argv)
{
	struct options opts;
	if (!parse_args(argc, argv, &opts)) {
		fprintf(stderr,
			"usage: rdk_acked_producer -b BROKER -t TOPIC -o ACKED_FILE [-f FAILED_FILE]\n"
			"           [-n COUNT] [-p PARTITIONS] [-r RECORDS_PER_S] [-z CODEC]\n");
		return 2;
	}
	struct acked_state st = {0};
	st.acked = fopen(opts.acked_path, "a");
	if (!st.acked) {
		fprintf(stderr, "rdk_acked_producer: %s: %s\n", opts.acked_path, strerror(errno));
		return 1;
	}
	if (opts.failed_path && !(st.failed_file = fopen(opts.failed_path, "a"))) {
		fprintf(stderr, "rdk_acked_producer: %s: %s\n", opts.failed_path, strerror(errno));
		fclose(st.acked);
		return 1;
	}
	rd_kafka_t *rk = producer_create(&opts, &st);
	if (!rk) {
		fclose(st.acked);
		return 1;
	}
	bool ok = produce_all(rk, &opts);
	rd_kafka_resp_err_t err = rd_kafka_flush(rk, FLUSH_TIMEOUT_MS);
	if (err) {
		fprintf(stderr, "rdk_acked_producer: flush: %s (%d still queued)\n",
			rd_kafka_err2str(err), rd_kafka_outq_len(rk));
		ok = false;
	}
	printf("rdk_acked_producer: %" PRIu32 " records, acknowledged=%" PRIu64
	       " not acknowledged=%" PRIu64 "\n",
	       opts.count, st.delivered, st.failed);
	rd_kafka_destroy(rk);
	if (st.failed_file && fclose(st.failed_file) != 0)
		st.write_failed = true;
	if (fclose(st.acked) != 0 || st.write_failed) {
		fprintf(stderr, "rdk_acked_producer: writing %s failed\n", opts.acked_path);
		ok = false;
	}
	return ok && st.delivered + st.failed == opts.count ? 0 : 1;
}
