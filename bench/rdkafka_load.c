/* rdkafka_load.c - a librdkafka producer as a load generator, so Tally's figures can be
 * shown with a client that is not Tally's own (and that the client is not the limit).
 *
 *   rdkafka_load BROKERS TOPIC COUNT SIZE [key=value ...]
 *
 * Sends COUNT records of SIZE bytes as fast as librdkafka takes them; every key=value
 * is a librdkafka property (acks, enable.idempotence, compression.type, linger.ms ...).
 * Prints one JSON line: records, bytes, seconds, records_per_s, mb_per_s, failed, cpu_s
 * (this process: user + system, librdkafka's threads included). Exits 1 if any delivery
 * failed. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static int64_t delivered;
static int64_t failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (msg->err) {
		if (failed++ < 5)
			fprintf(stderr, "rdkafka_load: delivery failed: %s\n",
				rd_kafka_err2str(msg->err));
	} else {
		delivered++;
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char err[256];
	if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "rdkafka_load: %s\n", err);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: rdkafka_load BROKERS TOPIC COUNT SIZE [key=value ...]\n");
		return 2;
	}
	const char *topic = argv[2];
	int64_t count = strtoll(argv[3], NULL, 10);
	size_t size = (size_t)strtoul(argv[4], NULL, 10);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", argv[1]);
	set(conf, "acks", "all");
	set(conf, "linger.ms", "5");
	set(conf, "batch.size", "1000000");
	set(conf, "queue.buffering.max.kbytes", "1048576");
	for (int i = 5; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			fprintf(stderr, "rdkafka_load: expected key=value, got %s\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		set(conf, argv[i], eq + 1);
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	char err[256];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdkafka_load: %s\n", err);
		return 2;
	}
	char *payload = malloc(size);
	for (size_t i = 0; i < size; i++)
		payload[i] = (char)('a' + i % 26);
	double start = now_s();
	for (int64_t i = 0; i < count; i++) {
		for (;;) {
			rd_kafka_resp_err_t e = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(payload, size),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				break;
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr, "rdkafka_load: produce: %s\n", rd_kafka_err2str(e));
				return 1;
			}
			rd_kafka_poll(rk, 10);
		}
		rd_kafka_poll(rk, 0);
	}
	while (rd_kafka_outq_len(rk) > 0)
		rd_kafka_poll(rk, 50);
	double seconds = now_s() - start;
	double bytes = (double)delivered * (double)size;
	struct rusage ru;
	double cpu_s = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("{\"records\": %" PRId64 ", \"bytes\": %.0f, \"seconds\": %.3f, "
	       "\"records_per_s\": %.0f, \"mb_per_s\": %.2f, \"failed\": %" PRId64
	       ", \"cpu_s\": %.3f}\n",
	       delivered, bytes, seconds, (double)delivered / seconds, bytes / seconds / 1e6,
	       failed, cpu_s);
	rd_kafka_destroy(rk);
	free(payload);
	return failed ? 1 : 0;
}
