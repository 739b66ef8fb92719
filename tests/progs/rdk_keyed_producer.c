/* rdk_keyed_producer.c - produces keyed records with chosen timestamps, one batch each.
 *   rdk_keyed_producer BROKER TOPIC [idempotent]
 * Reads lines "KEY VALUE [TIMESTAMP_MS]" from stdin and sends each to partition 0 of
 * TOPIC as its own batch (a flush after each), so that the tests decide what each batch
 * holds: VALUE "-" is a tombstone (null value); TIMESTAMP_MS, when given and not 0, is
 * the record's CreateTime (kcat cannot set one per record). With "idempotent", the
 * producer is (enable.idempotence=true). Prints each record's offset.
 * Exit status: 0 every record delivered, 1 one failed, 2 usage. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_BYTES       4096
#define FLUSH_TIMEOUT_MS 10000

static int failed;

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (msg->err) {
		fprintf(stderr, "rdk_keyed_producer: delivery failed: %s\n",
			rd_kafka_err2str(msg->err));
		failed = 1;
		return;
	}
	printf("%lld\n", (long long)msg->offset);
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "idempotent") != 0)) {
		fprintf(stderr, "usage: rdk_keyed_producer BROKER TOPIC [idempotent]\n");
		return 2;
	}
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", argc == 4 ? "true" : "false", errstr,
			      sizeof(errstr))) {
		fprintf(stderr, "rdk_keyed_producer: %s\n", errstr);
		return 2;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, delivered);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "rdk_keyed_producer: %s\n", errstr);
		return 2;
	}
	char line[LINE_BYTES];
	while (!failed && fgets(line, sizeof(line), stdin)) {
		char key[1024], value[2048];
		long long timestamp_ms = 0;
		if (sscanf(line, "%1023s %2047s %lld", key, value, &timestamp_ms) < 2)
			continue;
		int tombstone = strcmp(value, "-") == 0;
		rd_kafka_resp_err_t err = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION(0),
			RD_KAFKA_V_KEY(key, strlen(key)),
			RD_KAFKA_V_VALUE(tombstone ? NULL : value, tombstone ? 0 : strlen(value)),
			RD_KAFKA_V_TIMESTAMP(timestamp_ms),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (err) {
			fprintf(stderr, "rdk_keyed_producer: produce: %s\n", rd_kafka_err2str(err));
			failed = 1;
			break;
		}
		rd_kafka_flush(rk, FLUSH_TIMEOUT_MS);
	}
	if (rd_kafka_flush(rk, FLUSH_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
		failed = 1;
	rd_kafka_destroy(rk);
	return failed;
}
