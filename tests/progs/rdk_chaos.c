/* rdk_chaos.c - librdkafka workloads for the chaos harness (tests/chaos/); each writes
 * its history, one JSON object a line, in the format tests/chaos/check.py reads.
 *
 *   rdk_chaos produce BROKERS TOPIC NAME SECONDS RATE HISTORY
 *       An idempotent producer (acks=all, enable.idempotence, max.in.flight 5) writes
 *       the values "NAME:0", "NAME:1", ... at RATE records/s for SECONDS, value i to
 *       partition i % partitions. It records an invoke when it hands a record to
 *       librdkafka and, from the delivery report, ok with the acknowledged offset, fail
 *       when librdkafka says NOT_PERSISTED, info otherwise (outcome unknown). Then it
 *       waits up to 60 s for outstanding reports.
 *   rdk_chaos txn BROKERS TOPIC NAME SECONDS HISTORY
 *       A transactional producer (transactional.id NAME) writes transactions of 5 values
 *       "NAME:i" spread over the partitions; every 4th transaction is aborted on purpose.
 *       A transaction whose commit fails is aborted when possible (type fail) and
 *       recorded as info when not even that is known. Fatal errors make a new producer.
 *   rdk_chaos group BROKERS TOPIC NAME SECONDS HISTORY
 *       A read_committed consumer in group "chaos-group" (subscribe, rebalances as a
 *       service sees them) records each record as a read ok (with its group, for the
 *       checker's group-skip) and commits its position synchronously about every
 *       200 ms, recording each partition's committed offset as a commit ok (or the
 *       error as info).
 *   rdk_chaos copy BROKERS IN OUT NAME SECONDS HISTORY
 *       A transactional consume-transform-produce copier (tests/progs/rdk_txn_copier.c's
 *       loop): a read_committed consumer of IN in group NAME and a producer with
 *       transactional.id NAME copy each record's value to the same partition of OUT,
 *       and send the consumed positions with send_offsets_to_transaction, in
 *       transactions of up to COPY_WINDOW_MS; every COPY_ABORT_EVERY-th is aborted on
 *       purpose, and one during which partitions were revoked (rdk_revoke.h) is aborted
 *       too. After an abort, or a fatal error (a new producer), the consumer
 *       rewinds to the group's committed offsets; a rewind that fails is retried and
 *       then the consumer is made anew (it starts at the committed offsets), never
 *       skipped. History: first {"f":"copier","group":NAME,"output":OUT}, then txn
 *       invoke/ok/fail/info, a commit ok (group NAME, partition of IN, offset = next to
 *       read) per partition of each committed transaction, and at the end the group's
 *       committed offsets as commit ok with "final":true (these count the transactions
 *       whose commit had an unknown outcome).
 *   rdk_chaos read BROKERS TOPIC HISTORY ISOLATION [topic]
 *       Reads every partition of TOPIC from its start to its end (the end offsets read
 *       when it starts), with isolation.level ISOLATION, and records each record as a
 *       read ok, with "topic":TOPIC when the last argument is "topic" (a copier's
 *       output, kept apart by check.py). Gives up after 60 s without progress (exit 1).
 * Exit status: 0 done, 1 could not finish, 2 usage. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rdk_revoke.h"

#define PARTITIONS_MAX   64
#define TXN_RECORDS      5
#define TXN_ABORT_EVERY  4
#define FLUSH_MS         60000
#define IDLE_MS          60000
#define TIMEOUT_MS       15000
#define COPY_WINDOW_MS   200
#define COPY_RECORDS     500
#define COPY_ABORT_EVERY 5
#define REWIND_TRIES_MAX 6

static FILE *history;
static const char *name;

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char err[256];
	if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "rdk_chaos: %s=%s: %s\n", key, value, err);
		exit(2);
	}
}

/* One history line; partition/offset < 0 and txn < 0 are left out. */
static void record(const char *type, const char *f, int32_t partition, int64_t offset,
		   const char *value, int64_t txn, const char *extra)
{
	fprintf(history, "{\"t\":%.6f,\"process\":\"%s\",\"type\":\"%s\",\"f\":\"%s\"", wall_s(),
		name, type, f);
	if (partition >= 0)
		fprintf(history, ",\"partition\":%" PRId32, partition);
	if (offset >= 0)
		fprintf(history, ",\"offset\":%" PRId64, offset);
	if (value)
		fprintf(history, ",\"value\":\"%s\"", value);
	if (txn >= 0)
		fprintf(history, ",\"txn\":\"%s-%" PRId64 "\"", name, txn);
	if (extra)
		fprintf(history, ",%s", extra);
	fputs("}\n", history);
}

static int partition_count(rd_kafka_t *rk, const char *topic)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	int n = -1;
	for (int tries = 0; tries < 30 && n <= 0; tries++) {
		if (rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (md->topic_cnt == 1 && md->topics[0].err == 0)
				n = md->topics[0].partition_cnt;
			rd_kafka_metadata_destroy(md);
		}
		if (n <= 0)
			sleep(1);
	}
	rd_kafka_topic_destroy(rkt);
	if (n > PARTITIONS_MAX)
		n = PARTITIONS_MAX;
	return n;
}

static uint64_t outstanding;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	char value[64];
	size_t n = m->len < sizeof(value) - 1 ? m->len : sizeof(value) - 1;
	memcpy(value, m->payload, n);
	value[n] = '\0';
	outstanding--;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		record("ok", "send", m->partition, m->offset, value, -1, NULL);
		return;
	}
	char extra[160];
	snprintf(extra, sizeof(extra), "\"error\":\"%s\"", rd_kafka_err2name(m->err));
	bool definite = rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
	record(definite ? "fail" : "info", "send", m->partition, -1, value, -1, extra);
}

static int do_produce(const char *brokers, const char *topic, double seconds, double rate)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	set(conf, "bootstrap.servers", brokers);
	set(conf, "enable.idempotence", "true");
	set(conf, "acks", "all");
	set(conf, "linger.ms", "5");
	set(conf, "message.timeout.ms", "30000");
	set(conf, "request.timeout.ms", "5000");
	/* RDK_CHAOS_DEBUG=eos,msg,protocol follows each batch through its epochs and
	 * sequences; librdkafka logs to stderr, which chaos.sh keeps as producer-N.err. */
	const char *debug = getenv("RDK_CHAOS_DEBUG");
	if (debug && *debug)
		set(conf, "debug", debug);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_chaos: %s\n", err);
		return 1;
	}
	int parts = partition_count(rk, topic);
	if (parts <= 0) {
		fprintf(stderr, "rdk_chaos: no metadata for %s\n", topic);
		return 1;
	}
	double start = mono_s();
	uint64_t i = 0;
	while (mono_s() - start < seconds) {
		uint64_t due = (uint64_t)((mono_s() - start) * rate);
		for (; i < due; i++) {
			char value[64];
			int32_t p = (int32_t)(i % (uint64_t)parts);
			snprintf(value, sizeof(value), "%s:%" PRIu64, name, i);
			record("invoke", "send", p, -1, value, -1, NULL);
			rd_kafka_resp_err_t e = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
				RD_KAFKA_V_VALUE(value, strlen(value)),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
			if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
				char extra[160];
				snprintf(extra, sizeof(extra), "\"error\":\"%s\"",
					 rd_kafka_err2name(e));
				record("fail", "send", p, -1, value, -1, extra);
				if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
					rd_kafka_poll(rk, 100);
					continue;
				}
			} else {
				outstanding++;
			}
		}
		rd_kafka_poll(rk, 5);
		char fatal[256];
		if (rd_kafka_fatal_error(rk, fatal, sizeof(fatal))) {
			fprintf(stderr, "rdk_chaos: %s: fatal: %s\n", name, fatal);
			break;
		}
	}
	rd_kafka_flush(rk, FLUSH_MS);
	fprintf(stderr, "rdk_chaos: %s: %" PRIu64 " sent, %" PRIu64 " without a report\n", name, i,
		outstanding);
	fflush(history);
	rd_kafka_destroy(rk);
	return 0;
}

static rd_kafka_t *txn_producer(const char *brokers)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	set(conf, "bootstrap.servers", brokers);
	set(conf, "transactional.id", name);
	set(conf, "transaction.timeout.ms", "10000");
	set(conf, "message.timeout.ms", "10000");
	set(conf, "linger.ms", "5");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_chaos: %s\n", err);
		exit(1);
	}
	return rk;
}

static bool txn_try(rd_kafka_error_t *error, const char *what)
{
	if (!error)
		return true;
	fprintf(stderr, "rdk_chaos: %s: %s: %s\n", name, what, rd_kafka_error_string(error));
	rd_kafka_error_destroy(error);
	return false;
}

static int do_txn(const char *brokers, const char *topic, double seconds)
{
	rd_kafka_t *rk = txn_producer(brokers);
	int parts = partition_count(rk, topic);
	if (parts <= 0)
		return 1;
	bool ready = false;
	double start = mono_s();
	uint64_t value_index = 0;
	int64_t txn = 0;
	while (mono_s() - start < seconds) {
		if (!ready) {
			if (!txn_try(rd_kafka_init_transactions(rk, TIMEOUT_MS), "init")) {
				rd_kafka_destroy(rk);
				rk = txn_producer(brokers);
				sleep(1);
				continue;
			}
			ready = true;
		}
		if (!txn_try(rd_kafka_begin_transaction(rk), "begin")) {
			rd_kafka_destroy(rk);
			rk = txn_producer(brokers);
			ready = false;
			continue;
		}
		record("invoke", "txn", -1, -1, NULL, txn, NULL);
		bool failed = false;
		for (int j = 0; j < TXN_RECORDS; j++) {
			char value[64];
			int32_t p = (int32_t)((value_index + (uint64_t)j) % (uint64_t)parts);
			snprintf(value, sizeof(value), "%s:%" PRIu64, name,
				 value_index + (uint64_t)j);
			record("invoke", "send", p, -1, value, txn, NULL);
			if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
					      RD_KAFKA_V_VALUE(value, strlen(value)),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR)
				failed = true;
		}
		value_index += TXN_RECORDS;
		bool abort_on_purpose = txn % TXN_ABORT_EVERY == TXN_ABORT_EVERY - 1;
		rd_kafka_error_t *error = NULL;
		if (!failed && !abort_on_purpose) {
			error = rd_kafka_commit_transaction(rk, TIMEOUT_MS);
			if (!error) {
				record("ok", "txn", -1, -1, NULL, txn, NULL);
				txn++;
				continue;
			}
			fprintf(stderr, "rdk_chaos: %s: commit: %s\n", name,
				rd_kafka_error_string(error));
			bool fatal = rd_kafka_error_is_fatal(error) ||
				     !rd_kafka_error_txn_requires_abort(error);
			rd_kafka_error_destroy(error);
			if (fatal) {
				/* The commit may or may not have happened. */
				record("info", "txn", -1, -1, NULL, txn, NULL);
				rd_kafka_destroy(rk);
				rk = txn_producer(brokers);
				ready = false;
				txn++;
				continue;
			}
		}
		if (txn_try(rd_kafka_abort_transaction(rk, TIMEOUT_MS), "abort")) {
			record("fail", "txn", -1, -1, NULL, txn, NULL);
		} else {
			record("info", "txn", -1, -1, NULL, txn, NULL);
			rd_kafka_destroy(rk);
			rk = txn_producer(brokers);
			ready = false;
		}
		txn++;
	}
	fprintf(stderr, "rdk_chaos: %s: %" PRId64 " transactions\n", name, txn);
	fflush(history);
	rd_kafka_destroy(rk);
	return 0;
}

static int do_read(const char *brokers, const char *topic, const char *isolation, bool topic_field)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256], extra[192];
	set(conf, "bootstrap.servers", brokers);
	set(conf, "group.id", "rdk-chaos-reader");
	set(conf, "enable.auto.commit", "false");
	set(conf, "enable.partition.eof", "true");
	set(conf, "isolation.level", isolation);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_chaos: %s\n", err);
		return 1;
	}
	int parts = partition_count(rk, topic);
	if (parts <= 0)
		return 1;
	int64_t end[PARTITIONS_MAX];
	int64_t pos[PARTITIONS_MAX];
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
	for (int p = 0; p < parts; p++) {
		int64_t lo = 0, hi = -1;
		while (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, TIMEOUT_MS) !=
		       RD_KAFKA_RESP_ERR_NO_ERROR)
			sleep(1);
		end[p] = hi;
		pos[p] = 0;
		rd_kafka_topic_partition_list_add(list, topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	}
	rd_kafka_assign(rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (topic_field)
		snprintf(extra, sizeof(extra), "\"isolation\":\"%s\",\"topic\":\"%s\"", isolation,
			 topic);
	else
		snprintf(extra, sizeof(extra), "\"isolation\":\"%s\"", isolation);
	double last = mono_s();
	int done = 0;
	bool at_end[PARTITIONS_MAX] = {0};
	while (done < parts) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
		if (mono_s() - last > IDLE_MS / 1000.0) {
			fprintf(stderr, "rdk_chaos: read: no progress for %d s\n", IDLE_MS / 1000);
			fflush(history);
			return 1;
		}
		if (!m)
			continue;
		int32_t p = m->partition;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (p >= 0 && p < parts && !at_end[p] && m->offset >= end[p]) {
				at_end[p] = true;
				done++;
			}
		} else if (m->err) {
			fprintf(stderr, "rdk_chaos: read: %s\n", rd_kafka_message_errstr(m));
		} else if (p >= 0 && p < parts) {
			char value[64];
			size_t n = m->len < sizeof(value) - 1 ? m->len : sizeof(value) - 1;
			memcpy(value, m->payload, n);
			value[n] = '\0';
			record("ok", "read", p, m->offset, value, -1, extra);
			pos[p] = m->offset + 1;
			last = mono_s();
		}
		rd_kafka_message_destroy(m);
	}
	for (int p = 0; p < parts; p++)
		fprintf(stderr,
			"rdk_chaos: read: partition %d up to %" PRId64 " (end %" PRId64 ")\n", p,
			pos[p], end[p]);
	fflush(history);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}

static void group_commit(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *list = NULL;
	if (rd_kafka_assignment(rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR || !list)
		return;
	if (list->cnt > 0 && rd_kafka_position(rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* Only partitions with a known position: the others have nothing to commit. */
		rd_kafka_topic_partition_list_t *commit =
			rd_kafka_topic_partition_list_new(list->cnt);
		for (int i = 0; i < list->cnt; i++)
			if (list->elems[i].offset >= 0)
				rd_kafka_topic_partition_list_add(commit, list->elems[i].topic,
								  list->elems[i].partition)
					->offset = list->elems[i].offset;
		if (commit->cnt > 0) {
			rd_kafka_resp_err_t err = rd_kafka_commit(rk, commit, 0);
			for (int i = 0; i < commit->cnt; i++) {
				char extra[160];
				snprintf(extra, sizeof(extra),
					 "\"group\":\"chaos-group\",\"error\":\"%s\"",
					 rd_kafka_err2name(err ? err : commit->elems[i].err));
				bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR &&
					  commit->elems[i].err == 0;
				record(ok ? "ok" : "info", "commit", commit->elems[i].partition,
				       commit->elems[i].offset, NULL, -1,
				       ok ? "\"group\":\"chaos-group\"" : extra);
			}
		}
		rd_kafka_topic_partition_list_destroy(commit);
	}
	rd_kafka_topic_partition_list_destroy(list);
}

static int do_group(const char *brokers, const char *topic, double seconds)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	set(conf, "bootstrap.servers", brokers);
	set(conf, "group.id", "chaos-group");
	set(conf, "enable.auto.commit", "false");
	set(conf, "auto.offset.reset", "earliest");
	set(conf, "isolation.level", "read_committed");
	set(conf, "session.timeout.ms", "10000");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_chaos: %s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	double start = mono_s(), last_commit = start;
	uint64_t reads = 0;
	while (mono_s() - start < seconds) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (m) {
			if (!m->err) {
				char value[64];
				size_t n = m->len < sizeof(value) - 1 ? m->len : sizeof(value) - 1;
				memcpy(value, m->payload, n);
				value[n] = '\0';
				record("ok", "read", m->partition, m->offset, value, -1,
				       "\"isolation\":\"read_committed\",\"group\":\"chaos-group\"");
				reads++;
			}
			rd_kafka_message_destroy(m);
		}
		if (mono_s() - last_commit > 0.2) {
			group_commit(rk);
			last_commit = mono_s();
		}
	}
	group_commit(rk);
	fprintf(stderr, "rdk_chaos: %s: %" PRIu64 " records read\n", name, reads);
	fflush(history);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}

/* ---- copy: the transactional copier ---- */

static rd_kafka_t *copy_consumer(const char *brokers, const char *in)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	set(conf, "bootstrap.servers", brokers);
	set(conf, "group.id", name);
	set(conf, "isolation.level", "read_committed");
	set(conf, "enable.auto.commit", "false");
	set(conf, "auto.offset.reset", "earliest");
	set(conf, "session.timeout.ms", "10000");
	rdk_revoke_conf(conf); /* a transaction during which partitions were revoked aborts */
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_chaos: %s\n", err);
		exit(1);
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, in, RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	return rk;
}

/* A transactional producer whose init_transactions succeeded; retries (a new producer
 * after a fatal error) until @deadline (monotonic s); NULL past it. */
static rd_kafka_t *copy_producer(const char *brokers, double deadline)
{
	while (mono_s() < deadline) {
		rd_kafka_t *rk = txn_producer(brokers);
		for (int attempt = 0; attempt < 10 && mono_s() < deadline; attempt++) {
			rd_kafka_error_t *error = rd_kafka_init_transactions(rk, TIMEOUT_MS);
			if (!error)
				return rk;
			bool fatal = rd_kafka_error_is_fatal(error);
			txn_try(error, "copy init");
			if (fatal)
				break;
		}
		rd_kafka_destroy(rk);
		sleep(1);
	}
	return NULL;
}

/* Moves the consumer back to the group's committed offsets. False when that failed
 * REWIND_TRIES_MAX times: going on from the current position would skip the records of
 * the aborted transaction (eos906), so the caller makes a new consumer instead. */
static bool copy_rewind(rd_kafka_t *consumer)
{
	rd_kafka_topic_partition_list_t *assigned = NULL;
	if (rd_kafka_assignment(consumer, &assigned) || !assigned)
		return false;
	bool ok = assigned->cnt == 0; /* a rebalance is on: the next assignment starts there */
	for (int attempt = 1; !ok && attempt <= REWIND_TRIES_MAX; attempt++) {
		rd_kafka_resp_err_t e = rd_kafka_committed(consumer, assigned, TIMEOUT_MS);
		rd_kafka_error_t *error = NULL;
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			for (int i = 0; i < assigned->cnt; i++)
				if (assigned->elems[i].offset < 0)
					assigned->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
			error = rd_kafka_seek_partitions(consumer, assigned, TIMEOUT_MS);
			ok = error == NULL;
		}
		if (!ok)
			fprintf(stderr, "rdk_chaos: %s: rewind: %s (attempt %d)\n", name,
				error ? rd_kafka_error_string(error) : rd_kafka_err2str(e),
				attempt);
		if (error)
			rd_kafka_error_destroy(error);
	}
	rd_kafka_topic_partition_list_destroy(assigned);
	return ok;
}

/* Records @positions (next offsets to read) as commit ok of group NAME. */
static void copy_record_commits(const rd_kafka_topic_partition_list_t *positions, bool final)
{
	char extra[128];
	snprintf(extra, sizeof(extra), "\"group\":\"%s\"%s", name, final ? ",\"final\":true" : "");
	for (int i = 0; i < positions->cnt; i++)
		if (positions->elems[i].offset >= 0)
			record("ok", "commit", positions->elems[i].partition,
			       positions->elems[i].offset, NULL, -1, extra);
}

/* Copies what one transaction takes from @consumer to @out; returns the records copied,
 * -1 when a produce failed (the transaction must abort). */
static int copy_batch(rd_kafka_t *consumer, rd_kafka_t *producer, const char *out)
{
	int n = 0;
	double until = mono_s() + COPY_WINDOW_MS / 1000.0;
	while (n < COPY_RECORDS && mono_s() < until) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 50);
		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				fprintf(stderr, "rdk_chaos: %s: consume: %s\n", name,
					rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		rd_kafka_resp_err_t e = rd_kafka_producev(
			producer, RD_KAFKA_V_TOPIC(out), RD_KAFKA_V_PARTITION(m->partition),
			RD_KAFKA_V_VALUE(m->payload, m->len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		rd_kafka_message_destroy(m);
		if (e) {
			fprintf(stderr, "rdk_chaos: %s: produce: %s\n", name, rd_kafka_err2str(e));
			return -1;
		}
		n++;
	}
	return n;
}

/* Ends the open transaction: commit (when @commit) or abort. Returns "ok" (committed),
 * "fail" (aborted) or "info" (unknown: the producer must be replaced). */
static const char *copy_end(rd_kafka_t *producer, bool commit)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		rd_kafka_error_t *error = commit ? rd_kafka_commit_transaction(producer, TIMEOUT_MS)
						 : rd_kafka_abort_transaction(producer, TIMEOUT_MS);
		if (!error)
			return commit ? "ok" : "fail";
		bool fatal = rd_kafka_error_is_fatal(error);
		if (rd_kafka_error_txn_requires_abort(error))
			commit = false;
		txn_try(error, commit ? "copy commit" : "copy abort");
		if (fatal)
			return "info";
	}
	return "info";
}

/* The positions one transaction consumed, sent to it; false on an error. */
static bool copy_send_offsets(rd_kafka_t *consumer, rd_kafka_t *producer,
			      rd_kafka_topic_partition_list_t **positions_out)
{
	rd_kafka_topic_partition_list_t *positions = NULL;
	if (rd_kafka_assignment(consumer, &positions) || !positions)
		return false;
	rd_kafka_position(consumer, positions);
	rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(consumer);
	rd_kafka_error_t *error =
		rd_kafka_send_offsets_to_transaction(producer, positions, cgmd, TIMEOUT_MS);
	rd_kafka_consumer_group_metadata_destroy(cgmd);
	*positions_out = positions;
	return txn_try(error, "copy send_offsets");
}

/* The group's committed offsets of every partition of @in, recorded as final. */
static void copy_final(rd_kafka_t *consumer, const char *in, int parts)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
	for (int p = 0; p < parts; p++)
		rd_kafka_topic_partition_list_add(list, in, p);
	for (int attempt = 0; attempt < 10; attempt++) {
		if (rd_kafka_committed(consumer, list, TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			copy_record_commits(list, true);
			break;
		}
		sleep(1);
	}
	rd_kafka_topic_partition_list_destroy(list);
}

static int do_copy(const char *brokers, const char *in, const char *out, double seconds)
{
	char extra[256];
	snprintf(extra, sizeof(extra), "\"group\":\"%s\",\"output\":\"%s\"", name, out);
	record("info", "copier", -1, -1, NULL, -1, extra);
	double start = mono_s();
	rd_kafka_t *consumer = copy_consumer(brokers, in);
	rd_kafka_t *producer = copy_producer(brokers, start + seconds);
	int parts = partition_count(consumer, in);
	int64_t txn = 0, copied = 0;
	while (producer && mono_s() - start < seconds) {
		if (!txn_try(rd_kafka_begin_transaction(producer), "copy begin")) {
			rd_kafka_destroy(producer);
			producer = copy_producer(brokers, start + seconds);
			continue;
		}
		record("invoke", "txn", -1, -1, NULL, txn, NULL);
		rd_kafka_topic_partition_list_t *positions = NULL;
		rdk_revoked = false;
		int n = copy_batch(consumer, producer, out);
		if (n > 0 && rdk_revoked)
			fprintf(stderr,
				"rdk_chaos: %s: partitions revoked during the transaction: abort\n",
				name);
		bool sent =
			n > 0 && !rdk_revoked && copy_send_offsets(consumer, producer, &positions);
		bool commit = n == 0 || (sent && txn % COPY_ABORT_EVERY != COPY_ABORT_EVERY - 1);
		const char *outcome = copy_end(producer, commit);
		record(outcome, "txn", -1, -1, NULL, txn, NULL);
		if (strcmp(outcome, "ok") == 0 && sent) {
			copy_record_commits(positions, false);
			copied += n;
		}
		if (positions)
			rd_kafka_topic_partition_list_destroy(positions);
		txn++;
		if (strcmp(outcome, "info") == 0) {
			rd_kafka_destroy(producer);
			producer = copy_producer(brokers, start + seconds);
		}
		if (strcmp(outcome, "ok") != 0 && !copy_rewind(consumer)) {
			fprintf(stderr, "rdk_chaos: %s: cannot rewind: a new consumer\n", name);
			rd_kafka_consumer_close(consumer);
			rd_kafka_destroy(consumer);
			consumer = copy_consumer(brokers, in);
		}
	}
	if (parts > 0)
		copy_final(consumer, in, parts);
	fprintf(stderr, "rdk_chaos: %s: %" PRId64 " transactions, %" PRId64 " records copied\n",
		name, txn, copied);
	fflush(history);
	if (producer)
		rd_kafka_destroy(producer);
	rd_kafka_consumer_close(consumer);
	rd_kafka_destroy(consumer);
	return 0;
}

static FILE *open_history(const char *path)
{
	FILE *f = fopen(path, "a");
	if (!f) {
		perror(path);
		exit(2);
	}
	/* Line by line: a workload chaos.sh kills as hung leaves its whole history. */
	setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "produce") == 0) {
		name = argv[4];
		history = open_history(argv[7]);
		return do_produce(argv[2], argv[3], atof(argv[5]), atof(argv[6]));
	}
	if (argc == 7 && strcmp(argv[1], "txn") == 0) {
		name = argv[4];
		history = open_history(argv[6]);
		return do_txn(argv[2], argv[3], atof(argv[5]));
	}
	if (argc == 7 && strcmp(argv[1], "group") == 0) {
		name = argv[4];
		history = open_history(argv[6]);
		return do_group(argv[2], argv[3], atof(argv[5]));
	}
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "read") == 0) {
		name = "reader";
		history = open_history(argv[4]);
		return do_read(argv[2], argv[3], argv[5],
			       argc == 7 && strcmp(argv[6], "topic") == 0);
	}
	if (argc == 8 && strcmp(argv[1], "copy") == 0) {
		name = argv[5];
		history = open_history(argv[7]);
		return do_copy(argv[2], argv[3], argv[4], atof(argv[6]));
	}
	fprintf(stderr, "usage: rdk_chaos produce BROKERS TOPIC NAME SECONDS RATE HISTORY\n"
			"       rdk_chaos txn BROKERS TOPIC NAME SECONDS HISTORY\n"
			"       rdk_chaos group BROKERS TOPIC NAME SECONDS HISTORY\n"
			"       rdk_chaos copy BROKERS IN OUT NAME SECONDS HISTORY\n"
			"       rdk_chaos read BROKERS TOPIC HISTORY ISOLATION [topic]\n");
	return 2;
}
