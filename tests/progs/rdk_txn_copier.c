/* rdk_txn_copier.c - exactly-once consume-transform-produce with librdkafka, the way a
 * service does it: a read_committed consumer in a group, a transactional producer, and
 * send_offsets_to_transaction, so each transaction holds its output and the input
 * offsets it consumed.
 *
 *   rdk_txn_copier copy BROKERS IN OUT GROUP TXN_ID ABORT_EVERY SECONDS
 *       Copies IN to OUT in transactions of up to 500 records; every ABORT_EVERY-th
 *       transaction is aborted on purpose (0 = never) and the consumer rewinds to the
 *       group's committed offsets, so those records are copied again; so is one during
 *       which partitions were revoked (rdk_revoke.h). Errors from a
 *       broker that restarts are handled as a service would: abortable errors abort
 *       and rewind, fatal ones (fenced) make a new producer. Exits 0 once the group's
 *       committed offsets equal IN's end offsets, 1 after SECONDS.
 *       COPIER_WINDOW_MS (env, default 200) is how long one transaction collects, and
 *       COPIER_TXN_MAX (env, default 500) how many records it takes at most.
 *   rdk_txn_copier plain BROKERS IN OUT GROUP SECONDS
 *       The same copy without transactions, for comparison: an idempotent producer,
 *       flushed, then a synchronous offset commit every COPIER_WINDOW_MS (at least once;
 *       a crash between the two duplicates output). Exits 0 once IN is consumed.
 *   rdk_txn_copier fence BROKERS TOPIC TXN_ID
 *       Producer A opens a transaction; producer B with the same TXN_ID initialises;
 *       A's next transactional call must fail as fenced (fatal). Exits 0 if so.
 *   rdk_txn_copier abandon BROKERS TOPIC TXN_ID
 *       Opens a transaction (timeout 3 s), writes 10 records to TOPIC and exits without
 *       ending it, as a crashed service would; the coordinator must abort it.
 *   rdk_txn_copier straddle BROKERS TOPIC GROUP TXN_ID commit|abort GO_FILE
 *       A transaction that outlives its coordinator (eos906): commits offset 5 of
 *       TOPIC partition 0 for GROUP in a first transaction; opens a second one with a
 *       record to TOPIC and offset 10 sent to the transaction, prints "staged" and
 *       waits for GO_FILE to exist (the test restarts or moves the coordinators
 *       meanwhile); then commits or aborts it and reads the group's committed offset
 *       the way a read_committed consumer does (OffsetFetch with require_stable).
 *       Exits 0 when that answer comes within 10 s and is 10 after commit, 5 after
 *       abort.
 * Progress goes to stderr. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rdk_revoke.h"

#define TXN_RECORDS_MAX  500
#define TIMEOUT_MS       10000
#define REWIND_TRIES_MAX 6

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
		fprintf(stderr, "copier: %s\n", err);
		exit(2);
	}
}

static const char *txn_timeout_ms = "10000";
static const char *reconnect_backoff_max_ms = "10000"; /* librdkafka's default */

static rd_kafka_t *producer_new(const char *brokers, const char *txn_id)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", brokers);
	set(conf, "transactional.id", txn_id);
	set(conf, "transaction.timeout.ms", txn_timeout_ms);
	set(conf, "reconnect.backoff.max.ms", reconnect_backoff_max_ms);
	set(conf, "linger.ms", "5");
	char err[256];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "copier: %s\n", err);
		exit(2);
	}
	return rk;
}

/* Retries init_transactions across broker restarts; exits on a fatal error. */
static void producer_init(rd_kafka_t *rk)
{
	for (int attempt = 0; attempt < 60; attempt++) {
		rd_kafka_error_t *error = rd_kafka_init_transactions(rk, TIMEOUT_MS);
		if (!error)
			return;
		fprintf(stderr, "copier: init_transactions: %s\n", rd_kafka_error_string(error));
		int fatal = rd_kafka_error_is_fatal(error);
		rd_kafka_error_destroy(error);
		if (fatal)
			exit(1);
	}
	fprintf(stderr, "copier: init_transactions never succeeded\n");
	exit(1);
}

static rd_kafka_t *consumer_new(const char *brokers, const char *group, const char *topic)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", brokers);
	set(conf, "group.id", group);
	set(conf, "isolation.level", "read_committed");
	set(conf, "enable.auto.commit", "false");
	set(conf, "auto.offset.reset", "earliest");
	set(conf, "session.timeout.ms", "10000");
	rdk_revoke_conf(conf);
	char err[256];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "copier: %s\n", err);
		exit(2);
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (e) {
		fprintf(stderr, "copier: subscribe: %s\n", rd_kafka_err2str(e));
		exit(2);
	}
	return rk;
}

/* Moves the consumer back to the group's committed offsets (after an abort). A
 * failed fetch or seek is retried: going on from the current position would skip the
 * aborted records (eos906: a committed() that timed out was ignored, and 500 records
 * were never copied). Exits after REWIND_TRIES_MAX failures. */
static void rewind_to_committed(rd_kafka_t *consumer)
{
	rd_kafka_topic_partition_list_t *assigned = NULL;
	if (rd_kafka_assignment(consumer, &assigned) || !assigned)
		return;
	/* Nothing assigned (a rebalance is on): the next assignment starts at the
	 * committed offsets anyway. */
	for (int attempt = 1; assigned->cnt > 0; attempt++) {
		rd_kafka_resp_err_t e = rd_kafka_committed(consumer, assigned, TIMEOUT_MS);
		rd_kafka_error_t *error = NULL;
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			for (int i = 0; i < assigned->cnt; i++)
				if (assigned->elems[i].offset < 0)
					assigned->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
			error = rd_kafka_seek_partitions(consumer, assigned, TIMEOUT_MS);
			if (!error)
				break;
		}
		fprintf(stderr, "copier: rewind: %s (attempt %d)\n",
			error ? rd_kafka_error_string(error) : rd_kafka_err2str(e), attempt);
		if (error)
			rd_kafka_error_destroy(error);
		if (attempt == REWIND_TRIES_MAX) {
			fprintf(stderr, "copier: cannot rewind to the committed offsets\n");
			exit(1);
		}
	}
	rd_kafka_topic_partition_list_destroy(assigned);
}

/* True when the group's committed offsets reached the end of every input partition. */
static int input_done(rd_kafka_t *consumer, const char *topic)
{
	const rd_kafka_metadata_t *md;
	rd_kafka_topic_t *t = rd_kafka_topic_new(consumer, topic, NULL);
	if (rd_kafka_metadata(consumer, 0, t, &md, TIMEOUT_MS)) {
		rd_kafka_topic_destroy(t);
		return 0;
	}
	int partitions = md->topic_cnt ? md->topics[0].partition_cnt : 0;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	if (partitions == 0)
		return 0;
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(list, topic, p);
	int done = rd_kafka_committed(consumer, list, TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;
	for (int p = 0; p < partitions && done; p++) {
		int64_t low, high;
		if (rd_kafka_query_watermark_offsets(consumer, topic, p, &low, &high, TIMEOUT_MS)) {
			done = 0;
			break;
		}
		int64_t committed = list->elems[p].offset < 0 ? 0 : list->elems[p].offset;
		done = committed == high;
	}
	rd_kafka_topic_partition_list_destroy(list);
	return done;
}

/* Commits or aborts the current transaction; returns 1 if committed. Handles errors as
 * librdkafka documents: retriable -> retry, abortable -> abort, fatal -> *fatal. */
static int txn_end(rd_kafka_t *producer, int commit, int *fatal)
{
	for (int attempt = 0; attempt < 30; attempt++) {
		rd_kafka_error_t *error = commit ? rd_kafka_commit_transaction(producer, TIMEOUT_MS)
						 : rd_kafka_abort_transaction(producer, TIMEOUT_MS);
		if (!error)
			return commit;
		fprintf(stderr, "copier: %s: %s\n", commit ? "commit" : "abort",
			rd_kafka_error_string(error));
		if (rd_kafka_error_is_fatal(error)) {
			*fatal = 1;
			rd_kafka_error_destroy(error);
			return 0;
		}
		if (rd_kafka_error_txn_requires_abort(error))
			commit = 0;
		rd_kafka_error_destroy(error);
	}
	*fatal = 1;
	return 0;
}

static int txn_records_max(void)
{
	const char *env = getenv("COPIER_TXN_MAX");
	return env ? atoi(env) : TXN_RECORDS_MAX;
}

static double window_s(void)
{
	const char *env = getenv("COPIER_WINDOW_MS");
	return (env ? atof(env) : 200.0) / 1000.0;
}

static int copy(const char *brokers, const char *in, const char *out, const char *group,
		const char *txn_id, int abort_every, double seconds)
{
	rd_kafka_t *consumer = consumer_new(brokers, group, in);
	rd_kafka_t *producer = producer_new(brokers, txn_id);
	producer_init(producer);
	double deadline = now_s() + seconds;
	int64_t txns = 0, committed = 0, aborted = 0, copied = 0;
	while (now_s() < deadline) {
		rd_kafka_error_t *error = rd_kafka_begin_transaction(producer);
		if (error) {
			fprintf(stderr, "copier: begin: %s\n", rd_kafka_error_string(error));
			rd_kafka_error_destroy(error);
			return 1;
		}
		int n = 0, failed = 0;
		rdk_revoked = false;
		double until = now_s() + window_s();
		int max = txn_records_max();
		while (n < max && now_s() < until) {
			rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 50);
			if (!msg)
				continue;
			if (msg->err) {
				if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					fprintf(stderr, "copier: consume: %s\n",
						rd_kafka_message_errstr(msg));
				rd_kafka_message_destroy(msg);
				continue;
			}
			rd_kafka_resp_err_t e = rd_kafka_producev(
				producer, RD_KAFKA_V_TOPIC(out),
				RD_KAFKA_V_KEY(msg->key, msg->key_len),
				RD_KAFKA_V_VALUE(msg->payload, msg->len),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
			rd_kafka_message_destroy(msg);
			if (e) {
				fprintf(stderr, "copier: produce: %s\n", rd_kafka_err2str(e));
				failed = 1;
				break;
			}
			n++;
		}
		int fatal = 0;
		if (n > 0 && !failed && rdk_revoked) {
			fprintf(stderr,
				"copier: partitions revoked during the transaction: abort\n");
			failed = 1;
		}
		if (n > 0 && !failed) {
			rd_kafka_topic_partition_list_t *positions = NULL;
			rd_kafka_assignment(consumer, &positions);
			rd_kafka_position(consumer, positions);
			rd_kafka_consumer_group_metadata_t *cgmd =
				rd_kafka_consumer_group_metadata(consumer);
			error = rd_kafka_send_offsets_to_transaction(producer, positions, cgmd,
								     TIMEOUT_MS);
			rd_kafka_consumer_group_metadata_destroy(cgmd);
			rd_kafka_topic_partition_list_destroy(positions);
			if (error) {
				fprintf(stderr, "copier: send_offsets: %s\n",
					rd_kafka_error_string(error));
				fatal = rd_kafka_error_is_fatal(error);
				rd_kafka_error_destroy(error);
				failed = 1;
			}
		}
		txns++;
		int want_commit = !failed && !(abort_every > 0 && txns % abort_every == 0);
		int ok = fatal ? 0 : txn_end(producer, want_commit, &fatal);
		if (ok) {
			committed++;
			copied += n;
		} else {
			aborted++;
			rewind_to_committed(consumer);
		}
		if (fatal) {
			fprintf(stderr,
				"copier: fatal producer error: a new producer takes over\n");
			rd_kafka_destroy(producer);
			producer = producer_new(brokers, txn_id);
			producer_init(producer);
			rewind_to_committed(consumer);
		}
		if (n == 0 && input_done(consumer, in)) {
			fprintf(stderr,
				"copier: done txns=%" PRId64 " committed=%" PRId64
				" aborted=%" PRId64 " copied=%" PRId64 "\n",
				txns, committed, aborted, copied);
			rd_kafka_consumer_close(consumer);
			rd_kafka_destroy(consumer);
			rd_kafka_destroy(producer);
			return 0;
		}
	}
	fprintf(stderr, "copier: out of time txns=%" PRId64 " committed=%" PRId64 "\n", txns,
		committed);
	return 1;
}

static int plain(const char *brokers, const char *in, const char *out, const char *group,
		 double seconds)
{
	rd_kafka_t *consumer = consumer_new(brokers, group, in);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", brokers);
	set(conf, "enable.idempotence", "true");
	set(conf, "linger.ms", "5");
	char err[256];
	rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!producer)
		return 2;
	double start = now_s(), deadline = start + seconds;
	int64_t copied = 0;
	while (now_s() < deadline) {
		int n = 0;
		double until = now_s() + window_s();
		while (now_s() < until) {
			rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 50);
			if (!msg)
				continue;
			if (!msg->err) {
				while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(out),
							 RD_KAFKA_V_KEY(msg->key, msg->key_len),
							 RD_KAFKA_V_VALUE(msg->payload, msg->len),
							 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							 RD_KAFKA_V_END) ==
				       RD_KAFKA_RESP_ERR__QUEUE_FULL)
					rd_kafka_poll(producer, 10);
				n++;
			}
			rd_kafka_message_destroy(msg);
		}
		rd_kafka_flush(producer, TIMEOUT_MS);
		if (n > 0)
			rd_kafka_commit(consumer, NULL, 0);
		copied += n;
		if (n == 0 && input_done(consumer, in)) {
			fprintf(stderr, "copier: plain done copied=%" PRId64 "\n", copied);
			rd_kafka_consumer_close(consumer);
			rd_kafka_destroy(consumer);
			rd_kafka_destroy(producer);
			return 0;
		}
	}
	return 1;
}

static int fence(const char *brokers, const char *topic, const char *txn_id)
{
	rd_kafka_t *a = producer_new(brokers, txn_id);
	producer_init(a);
	rd_kafka_error_t *error = rd_kafka_begin_transaction(a);
	if (error)
		return 1;
	rd_kafka_producev(a, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE("zombie", 6),
			  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	rd_kafka_flush(a, TIMEOUT_MS);
	rd_kafka_t *b = producer_new(brokers, txn_id);
	producer_init(b); /* fences A and aborts its open transaction */
	error = rd_kafka_commit_transaction(a, TIMEOUT_MS);
	int fenced = error && rd_kafka_error_is_fatal(error);
	fprintf(stderr, "copier: zombie commit: %s\n", error ? rd_kafka_error_string(error) : "ok");
	if (error)
		rd_kafka_error_destroy(error);
	/* B works normally. */
	error = rd_kafka_begin_transaction(b);
	if (!error) {
		rd_kafka_producev(b, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE("fresh", 5),
				  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		error = rd_kafka_commit_transaction(b, TIMEOUT_MS);
	}
	int b_ok = error == NULL;
	if (error) {
		fprintf(stderr, "copier: new instance: %s\n", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	rd_kafka_destroy(a);
	rd_kafka_destroy(b);
	return fenced && b_ok ? 0 : 1;
}

static int abandon(const char *brokers, const char *topic, const char *txn_id)
{
	txn_timeout_ms = "3000";
	rd_kafka_t *rk = producer_new(brokers, txn_id);
	producer_init(rk);
	rd_kafka_error_t *error = rd_kafka_begin_transaction(rk);
	if (error)
		return 1;
	for (int i = 0; i < 10; i++)
		rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE("abandoned", 9),
				  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	if (rd_kafka_flush(rk, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 1;
	_exit(0); /* no commit, no abort, no goodbye */
}

/* Sends @offset of @topic partition 0 for @group inside the open transaction. */
static int straddle_send_offset(rd_kafka_t *producer, const char *topic, const char *group,
				int64_t offset)
{
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(offsets, topic, 0)->offset = offset;
	rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata_new(group);
	rd_kafka_error_t *error =
		rd_kafka_send_offsets_to_transaction(producer, offsets, cgmd, TIMEOUT_MS);
	rd_kafka_consumer_group_metadata_destroy(cgmd);
	rd_kafka_topic_partition_list_destroy(offsets);
	if (error) {
		fprintf(stderr, "copier: send_offsets: %s\n", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		return 1;
	}
	return 0;
}

/* The group's committed offset of @topic partition 0 as a read_committed consumer
 * fetches it (require_stable: a pending transactional offset is retried, not
 * answered); -2 when no answer came within TIMEOUT_MS. */
static int64_t straddle_committed(const char *brokers, const char *topic, const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", brokers);
	set(conf, "group.id", group);
	set(conf, "isolation.level", "read_committed");
	set(conf, "enable.auto.commit", "false");
	char err[256];
	rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!consumer) {
		fprintf(stderr, "copier: %s\n", err);
		exit(2);
	}
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, topic, 0);
	double start = now_s();
	rd_kafka_resp_err_t e = rd_kafka_committed(consumer, list, TIMEOUT_MS);
	int64_t offset = e ? -2 : list->elems[0].err ? -2 : list->elems[0].offset;
	fprintf(stderr, "copier: committed offset %" PRId64 " (%s) after %.1f s\n", offset,
		rd_kafka_err2str(e ? e : list->elems[0].err), now_s() - start);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_destroy(consumer);
	return offset;
}

static int straddle(const char *brokers, const char *topic, const char *group, const char *txn_id,
		    int commit, const char *go_file)
{
	/* The transaction must outlive the restart and the client's reconnection: no
	 * timeout abort, and no reconnect backoff grown to seconds while the broker is
	 * down. */
	txn_timeout_ms = "60000";
	reconnect_backoff_max_ms = "500";
	rd_kafka_t *producer = producer_new(brokers, txn_id);
	producer_init(producer);
	int fatal = 0;
	for (int step = 0; step < 2; step++) {
		rd_kafka_error_t *error = rd_kafka_begin_transaction(producer);
		if (error) {
			fprintf(stderr, "copier: begin: %s\n", rd_kafka_error_string(error));
			return 1;
		}
		rd_kafka_resp_err_t e =
			rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
					  RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE("straddle", 8),
					  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (e || straddle_send_offset(producer, topic, group, step == 0 ? 5 : 10))
			return 1;
		if (step == 0) {
			if (!txn_end(producer, 1, &fatal))
				return 1;
			if (straddle_committed(brokers, topic, group) != 5)
				return 1;
		}
	}
	fprintf(stderr, "copier: staged\n");
	while (access(go_file, F_OK) != 0)
		usleep(20000);
	if (txn_end(producer, commit, &fatal) != commit || fatal) {
		fprintf(stderr, "copier: the second transaction did not %s\n",
			commit ? "commit" : "abort");
		return 1;
	}
	rd_kafka_destroy(producer);
	int64_t want = commit ? 10 : 5;
	int64_t got = straddle_committed(brokers, topic, group);
	if (got != want) {
		fprintf(stderr,
			"copier: committed offset after %s is %" PRId64 ", want %" PRId64 "\n",
			commit ? "commit" : "abort", got, want);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 9 && strcmp(argv[1], "copy") == 0)
		return copy(argv[2], argv[3], argv[4], argv[5], argv[6], atoi(argv[7]),
			    atof(argv[8]));
	if (argc == 5 && strcmp(argv[1], "fence") == 0)
		return fence(argv[2], argv[3], argv[4]);
	if (argc == 7 && strcmp(argv[1], "plain") == 0)
		return plain(argv[2], argv[3], argv[4], argv[5], atof(argv[6]));
	if (argc == 8 && strcmp(argv[1], "straddle") == 0)
		return straddle(argv[2], argv[3], argv[4], argv[5], strcmp(argv[6], "commit") == 0,
				argv[7]);
	if (argc == 5 && strcmp(argv[1], "abandon") == 0)
		return abandon(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: rdk_txn_copier copy BROKERS IN OUT GROUP TXN_ID ABORT_EVERY "
			"SECONDS\n       rdk_txn_copier fence BROKERS TOPIC TXN_ID\n");
	return 2;
}
