/* rdk_committer.c - a librdkafka consumer that only commits, for compaction figures.
 *   rdk_committer BROKER GROUP TOPIC SECONDS INTERVAL_MS
 * Commits offset 0, 1, 2, ... of TOPIC partition 0 for GROUP synchronously every
 * INTERVAL_MS for SECONDS (no subscription, no fetch), then prints
 * "commits N failed F". Exits 0, or 1 if the client cannot be made. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: rdk_committer BROKER GROUP TOPIC SECONDS INTERVAL_MS\n");
		return 2;
	}
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", argv[2], err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err))) {
		fprintf(stderr, "rdk_committer: %s\n", err);
		return 1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_committer: %s\n", err);
		return 1;
	}
	time_t end = time(NULL) + atoi(argv[4]);
	useconds_t interval_us = (useconds_t)atoi(argv[5]) * 1000;
	long commits = 0, failed = 0;
	while (time(NULL) < end) {
		rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(list, argv[3], 0)->offset = commits;
		if (rd_kafka_commit(rk, list, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
			failed++;
		rd_kafka_topic_partition_list_destroy(list);
		commits++;
		usleep(interval_us);
	}
	printf("commits %ld failed %ld\n", commits, failed);
	rd_kafka_destroy(rk);
	return 0;
}
