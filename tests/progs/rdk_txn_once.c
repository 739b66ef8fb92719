/* rdk_txn_once.c - one committed and one aborted transaction, for tests that count
 * what the broker saw (1001: /metrics' transaction and record counters).
 *
 *   rdk_txn_once BROKERS TOPIC TXN_ID COMMIT_RECORDS ABORT_RECORDS
 *       Initialises a transactional producer, writes COMMIT_RECORDS records to TOPIC
 *       (partition 0) and commits, then ABORT_RECORDS records and aborts. Values are
 *       "txn-commit-N" and "txn-abort-N"; with RDK_TXN_KEY_PREFIX set, record N has the key
 *       "<prefix>N" (a compacted topic refuses records without one; 128). Exits 0 when both
 *       ends succeeded.
 *   Environment: RDK_PARTITION writes that partition instead of 0; RDK_CONF adds
 *   librdkafka properties, "key=value" separated by spaces (921: SASL_SSL);
 *   RDK_TXN_OFFSETS_GROUP=G also sends offset COMMIT_RECORDS of the partition for group
 *   G inside the committed transaction, as a consumer with assigned partitions would
 *   (no group membership, no FindCoordinator of G before: 932);
 *   RDK_TXN_PAUSE=FILE holds the committed transaction open after its records are
 *   flushed: prints "ready" on stdout and commits once FILE exists (933). */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIMEOUT_MS 10000

static void set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char err[256];
	if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "txn_once: %s\n", err);
		exit(2);
	}
}

static int check(rd_kafka_error_t *error, const char *what)
{
	if (!error)
		return 0;
	fprintf(stderr, "txn_once: %s: %s\n", what, rd_kafka_error_string(error));
	rd_kafka_error_destroy(error);
	return 1;
}

static int32_t partition;

static int one(rd_kafka_t *rk, const char *topic, int count, int commit)
{
	if (check(rd_kafka_begin_transaction(rk), "begin"))
		return 1;
	for (int i = 0; i < count; i++) {
		char value[64];
		int len =
			snprintf(value, sizeof(value), "txn-%s-%d", commit ? "commit" : "abort", i);
		const char *prefix = getenv("RDK_TXN_KEY_PREFIX");
		char key[64];
		int key_len = prefix ? snprintf(key, sizeof(key), "%s%d", prefix, i) : 0;
		rd_kafka_resp_err_t e = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
			RD_KAFKA_V_KEY(prefix ? key : NULL, (size_t)key_len),
			RD_KAFKA_V_VALUE(value, (size_t)len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (e) {
			fprintf(stderr, "txn_once: produce: %s\n", rd_kafka_err2str(e));
			return 1;
		}
	}
	const char *pause = getenv("RDK_TXN_PAUSE");
	if (commit && pause) {
		if (rd_kafka_flush(rk, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "txn_once: flush timed out\n");
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		while (access(pause, F_OK) != 0)
			usleep(50 * 1000);
	}
	const char *group = getenv("RDK_TXN_OFFSETS_GROUP");
	if (commit && group) {
		rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(offsets, topic, partition)->offset = count;
		rd_kafka_consumer_group_metadata_t *cgmd =
			rd_kafka_consumer_group_metadata_new(group);
		int rc = check(rd_kafka_send_offsets_to_transaction(rk, offsets, cgmd, TIMEOUT_MS),
			       "send_offsets_to_transaction");
		rd_kafka_consumer_group_metadata_destroy(cgmd);
		rd_kafka_topic_partition_list_destroy(offsets);
		if (rc)
			return rc;
	}
	if (commit)
		return check(rd_kafka_commit_transaction(rk, TIMEOUT_MS), "commit");
	/* Flush first so the aborted records reach the log: the test counts them in. */
	if (rd_kafka_flush(rk, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "txn_once: flush timed out\n");
		return 1;
	}
	return check(rd_kafka_abort_transaction(rk, TIMEOUT_MS), "abort");
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr,
			"usage: rdk_txn_once BROKERS TOPIC TXN_ID COMMIT_RECORDS ABORT_RECORDS\n");
		return 2;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", argv[1]);
	set(conf, "transactional.id", argv[3]);
	set(conf, "linger.ms", "5");
	if (getenv("RDK_CLIENT_ID")) /* 122: the broker's test-only principal from client.id */
		set(conf, "client.id", getenv("RDK_CLIENT_ID"));
	if (getenv("RDK_PARTITION"))
		partition = atoi(getenv("RDK_PARTITION"));
	char extra[1024];
	snprintf(extra, sizeof(extra), "%s", getenv("RDK_CONF") ? getenv("RDK_CONF") : "");
	char *save = NULL;
	for (char *kv = strtok_r(extra, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			fprintf(stderr, "txn_once: RDK_CONF: \"%s\" is not key=value\n", kv);
			return 2;
		}
		*eq = '\0';
		set(conf, kv, eq + 1);
	}
	char err[256];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "txn_once: %s\n", err);
		return 2;
	}
	int rc = check(rd_kafka_init_transactions(rk, TIMEOUT_MS), "init_transactions") ||
		 one(rk, argv[2], atoi(argv[4]), 1) || one(rk, argv[2], atoi(argv[5]), 0);
	rd_kafka_destroy(rk);
	if (rc == 0)
		fprintf(stderr, "txn_once: committed %s, aborted %s\n", argv[4], argv[5]);
	return rc;
}
