/* rdk_quota_producer.c - a librdkafka producer as fast as it can go, for quota tests.
 *   rdk_quota_producer BROKER TOPIC CLIENT_ID SECONDS [MAX_BYTES [WARMUP_S [BATCH_MSGS]]]
 * Produces 1000-byte values (acks=1) with client.id CLIENT_ID for WARMUP_S (default 0)
 * then SECONDS more, or until MAX_BYTES of values were acknowledged, and prints one
 * line about the SECONDS after the warm-up (batch.num.messages BATCH_MSGS, default
 * librdkafka's):
 *   bytes=B seconds=S rate=B/S throttled=N throttle_max_ms=M
 * where B counts acknowledged value bytes, N is how many responses carried
 * throttle_time_ms > 0 (librdkafka's throttle callback) and M the largest. What is
 * still queued at the end is purged, not counted. Exit 0, 2 on usage. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VALUE_BYTES 1000

static int64_t acked_bytes;
static int64_t throttled;
static int throttle_max_ms;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (!msg->err)
		acked_bytes += (int64_t)msg->len;
}

static void on_throttle(rd_kafka_t *rk, const char *broker_name, int32_t broker_id, int throttle_ms,
			void *opaque)
{
	(void)rk;
	(void)broker_name;
	(void)broker_id;
	(void)opaque;
	if (throttle_ms > 0) {
		throttled++;
		if (throttle_ms > throttle_max_ms)
			throttle_max_ms = throttle_ms;
	}
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s BROKER TOPIC CLIENT_ID SECONDS [MAX_BYTES]\n", argv[0]);
		return 2;
	}
	double seconds = atof(argv[4]);
	int64_t max_bytes = argc > 5 ? strtoll(argv[5], NULL, 10) : INT64_MAX;
	double warmup = argc > 6 ? atof(argv[6]) : 0;
	const char *batch_msgs = argc > 7 ? argv[7] : "10000";
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *settings[][2] = {
		{"bootstrap.servers", argv[1]},
		{"client.id", argv[3]},
		{"acks", "1"},
		{"linger.ms", "5"},
		{"queue.buffering.max.kbytes", "4096"},
		{"batch.num.messages", batch_msgs},
	};
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK) {
			fprintf(stderr, "config %s: %s\n", settings[i][0], err);
			return 2;
		}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_throttle_cb(conf, on_throttle);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rd_kafka_new: %s\n", err);
		return 2;
	}
	static char value[VALUE_BYTES];
	memset(value, 'q', sizeof(value));
	double start = now_s(), measure_from = start + warmup, end = measure_from + seconds;
	int64_t queued_bytes = 0, warm_bytes = -1;
	while (now_s() < end && acked_bytes < max_bytes) {
		if (warm_bytes < 0 && now_s() >= measure_from)
			warm_bytes = acked_bytes;
		if (queued_bytes - acked_bytes < max_bytes - acked_bytes &&
		    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION(0),
				      RD_KAFKA_V_VALUE(value, sizeof(value)),
				      RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			queued_bytes += VALUE_BYTES;
			rd_kafka_poll(rk, 0);
			continue;
		}
		rd_kafka_poll(rk, 5); /* queue full: wait for deliveries */
	}
	double elapsed = now_s() - measure_from;
	/* Only what was acknowledged inside the window counts; the rest is purged. */
	int64_t bytes = acked_bytes - (warm_bytes < 0 ? 0 : warm_bytes);
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_flush(rk, 5000);
	printf("bytes=%" PRId64 " seconds=%.2f rate=%.0f throttled=%" PRId64
	       " throttle_max_ms=%d\n",
	       bytes, elapsed, (double)bytes / elapsed, throttled, throttle_max_ms);
	rd_kafka_destroy(rk);
	return 0;
}
