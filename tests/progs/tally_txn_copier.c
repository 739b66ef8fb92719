/* tally_txn_copier.c - exactly-once consume-transform-produce with libtally: a
 * read_committed consumer in a group, a transactional producer and
 * tl_producer_send_offsets_to_transaction(), so each transaction holds its output and
 * the input offsets it consumed.
 *
 *   tally_txn_copier copy BROKERS IN OUT GROUP TXN_ID COUNT ABORT_EVERY SECONDS
 *       Copies IN to OUT in transactions of up to 500 records; every ABORT_EVERY-th
 *       transaction is flushed (its copies reach the log) and aborted on purpose
 *       (0 = never), and the consumer goes back to where the transaction started, so
 *       those records are copied again; so is one during which the group's generation
 *       changed (a rebalance). Abortable
 *       errors abort, fatal ones (fenced) make a new producer. Once COUNT records were
 *       copied in committed transactions, checks (with librdkafka) that the group's
 *       committed offsets reached IN's end offsets. Exits 0 if so, 1 otherwise or after
 *       SECONDS.
 *   tally_txn_copier fence BROKERS TOPIC TXN_ID
 *       Producer A opens a transaction and delivers "zombie"; producer B with the same
 *       TXN_ID initialises (fencing A and aborting its transaction); A sends
 *       "zombie-late", whose delivery report and A's commit must fail with
 *       TL_ERR_PRODUCER_FENCED, as must every later call of A; B then commits "fresh".
 *       Exits 0 if all of that holds.
 * Progress goes to stderr. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/consumer.h"
#include "tally/producer.h"

#define TXN_RECORDS_MAX 500
#define TIMEOUT_MS      10000
#define PARTS_MAX       64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "copier: %s: %s\n", what, detail);
	exit(2);
}

static void pset(struct tl_producer_conf *conf, const char *key, const char *value)
{
	char err[256];
	if (tl_producer_conf_set(conf, key, value, err, sizeof(err)) != TL_OK)
		die("producer config", err);
}

static void cset(struct tl_consumer_conf *conf, const char *key, const char *value)
{
	char err[256];
	if (tl_consumer_conf_set(conf, key, value, err, sizeof(err)) != TL_OK)
		die("consumer config", err);
}

/* Delivery reports: counts, and the last error. */
struct reports {
	int64_t ok;
	int64_t failed;
	int64_t fenced;
};

static void on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	struct reports *r = opaque;
	if (d->err == TL_OK) {
		r->ok++;
		return;
	}
	r->failed++;
	r->fenced += d->err == TL_ERR_PRODUCER_FENCED;
}

static struct tl_producer *producer_new(const char *brokers, const char *txn_id,
					struct reports *reports)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	pset(conf, "bootstrap.servers", brokers);
	pset(conf, "transactional.id", txn_id);
	pset(conf, "transaction.timeout.ms", "10000");
	pset(conf, "linger.ms", "5");
	tl_producer_conf_set_delivery_cb(conf, on_delivery, reports);
	struct tl_producer *producer;
	char err[256];
	if (tl_producer_create(conf, &producer, err, sizeof(err)) != TL_OK)
		die("tl_producer_create", err);
	tl_producer_conf_destroy(conf);
	for (int attempt = 0; attempt < 30; attempt++) {
		tl_err e = tl_producer_init_transactions(producer, TIMEOUT_MS);
		if (e == TL_OK)
			return producer;
		fprintf(stderr, "copier: init_transactions: %s\n",
			tl_producer_last_error(producer));
		if (tl_err_is_fatal(e))
			exit(1);
	}
	die("init_transactions", "never succeeded");
	return NULL;
}

static struct tl_consumer *consumer_new(const char *brokers, const char *group, const char *topic)
{
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	cset(conf, "bootstrap.servers", brokers);
	cset(conf, "group.id", group);
	cset(conf, "isolation.level", "read_committed");
	cset(conf, "enable.auto.commit", "false");
	cset(conf, "auto.offset.reset", "earliest");
	cset(conf, "session.timeout.ms", "10000");
	struct tl_consumer *consumer;
	char err[256];
	if (tl_consumer_create(conf, &consumer, err, sizeof(err)) != TL_OK)
		die("tl_consumer_create", err);
	tl_consumer_conf_destroy(conf);
	if (tl_consumer_subscribe(consumer, &topic, 1) != TL_OK)
		die("subscribe", tl_consumer_last_error(consumer));
	return consumer;
}

/* Where the transaction started: the positions it must go back to if it aborts. The
 * committed offsets are not used for that, because those of the transaction committed
 * just before may not be visible yet (its markers are written after EndTxn's answer). */
struct snapshot {
	struct tl_consumer_partition parts[PARTS_MAX];
	char topics[PARTS_MAX][128];
	int32_t count;
};

static void snapshot_take(struct tl_consumer *consumer, struct snapshot *snap)
{
	snap->count = tl_consumer_assignment(consumer, snap->parts, PARTS_MAX);
	if (snap->count > PARTS_MAX)
		snap->count = PARTS_MAX;
	for (int32_t i = 0; i < snap->count; i++) {
		snprintf(snap->topics[i], sizeof(snap->topics[i]), "%s", snap->parts[i].topic);
		snap->parts[i].topic = snap->topics[i];
	}
}

static void snapshot_rewind(struct tl_consumer *consumer, const struct snapshot *snap)
{
	for (int32_t i = 0; i < snap->count; i++) {
		int64_t offset = snap->parts[i].offset >= 0 ? snap->parts[i].offset
							    : TL_CONSUMER_OFFSET_COMMITTED;
		if (tl_consumer_seek(consumer, snap->parts[i].topic, snap->parts[i].partition,
				     offset, 0) != TL_OK)
			fprintf(stderr, "copier: seek: %s\n", tl_consumer_last_error(consumer));
	}
}

/* After a rebalance the snapshot may name partitions no longer assigned, or none (the
 * first transaction starts before the first assignment): every partition assigned now
 * goes back to the group's committed offset (libtally waits out an offset a transaction
 * still holds, UNSTABLE_OFFSET_COMMIT). */
static void rewind_to_committed(struct tl_consumer *consumer)
{
	struct snapshot now;
	snapshot_take(consumer, &now);
	for (int32_t i = 0; i < now.count; i++)
		now.parts[i].offset = -1;
	snapshot_rewind(consumer, &now);
}

/* Commits or aborts; returns true if committed. Retries what may be retried; an
 * abortable error aborts; a fatal one sets *fatal. */
static bool txn_end(struct tl_producer *producer, bool commit, bool *fatal)
{
	for (int attempt = 0; attempt < 30; attempt++) {
		tl_err err = commit ? tl_producer_commit_transaction(producer, TIMEOUT_MS)
				    : tl_producer_abort_transaction(producer, TIMEOUT_MS);
		if (err == TL_OK)
			return commit;
		fprintf(stderr, "copier: %s: %s\n", commit ? "commit" : "abort",
			tl_producer_last_error(producer));
		if (tl_err_is_fatal(err)) {
			*fatal = true;
			return false;
		}
		if (err == TL_ERR_TRANSACTION_ABORTABLE)
			commit = false;
	}
	*fatal = true;
	return false;
}

/* True when the group's committed offsets equal the end offsets of every partition of
 * @topic (asked with librdkafka, an independent client). */
static bool committed_at_end(const char *brokers, const char *group, const char *topic)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)))
		die("rdkafka config", err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk)
		die("rd_kafka_new", err);
	const rd_kafka_metadata_t *md;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	bool done = false;
	if (rd_kafka_metadata(rk, 0, t, &md, TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		int partitions = md->topic_cnt ? md->topics[0].partition_cnt : 0;
		rd_kafka_metadata_destroy(md);
		rd_kafka_topic_partition_list_t *list =
			rd_kafka_topic_partition_list_new(partitions);
		for (int p = 0; p < partitions; p++)
			rd_kafka_topic_partition_list_add(list, topic, p);
		done = partitions > 0 && rd_kafka_committed(rk, list, TIMEOUT_MS) == 0;
		for (int p = 0; p < partitions && done; p++) {
			int64_t low, high;
			done = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high,
								TIMEOUT_MS) == 0 &&
			       list->elems[p].offset == high;
			if (!done)
				fprintf(stderr,
					"copier: partition %d committed %" PRId64 " end %" PRId64
					"\n",
					p, list->elems[p].offset, high);
		}
		rd_kafka_topic_partition_list_destroy(list);
	}
	rd_kafka_topic_destroy(t);
	rd_kafka_destroy(rk);
	return done;
}

/* Polls up to TXN_RECORDS_MAX records for 200 ms and sends a copy of each to @out. */
static int copy_batch(struct tl_consumer *consumer, struct tl_producer *producer, const char *out,
		      bool *failed)
{
	int n = 0;
	double until = now_s() + 0.2;
	while (n < TXN_RECORDS_MAX && now_s() < until) {
		const struct tl_consumer_record *rec;
		tl_err err = tl_consumer_poll(consumer, 50, &rec);
		if (err == TL_ERR_TIMED_OUT)
			continue;
		if (err != TL_OK) {
			fprintf(stderr, "copier: consume: %s\n", tl_consumer_last_error(consumer));
			continue;
		}
		struct tl_producer_record copy = {.topic = out,
						  .partition = TL_PRODUCER_PARTITION_ANY,
						  .key = rec->key,
						  .key_len = rec->key_len,
						  .value = rec->value,
						  .value_len = rec->value_len};
		if (tl_producer_send(producer, &copy) != TL_OK) {
			fprintf(stderr, "copier: send: %s\n", tl_producer_last_error(producer));
			*failed = true;
			break;
		}
		n++;
	}
	return n;
}

static int copy(const char *brokers, const char *in, const char *out, const char *group,
		const char *txn_id, int64_t count, int abort_every, double seconds)
{
	struct reports reports = {0};
	struct tl_consumer *consumer = consumer_new(brokers, group, in);
	struct tl_producer *producer = producer_new(brokers, txn_id, &reports);
	double deadline = now_s() + seconds;
	int64_t txns = 0, committed = 0, aborted = 0, copied = 0;
	struct snapshot snap;
	while (now_s() < deadline && copied < count) {
		if (tl_producer_begin_transaction(producer) != TL_OK)
			die("begin", tl_producer_last_error(producer));
		snapshot_take(consumer, &snap);
		struct tl_consumer_group_metadata gm;
		if (tl_consumer_group_metadata(consumer, &gm) != TL_OK)
			die("group metadata", tl_consumer_last_error(consumer));
		int32_t generation = gm.generation_id;
		bool failed = false, fatal = false, rebalanced = false;
		int n = copy_batch(consumer, producer, out, &failed);
		if (tl_consumer_group_metadata(consumer, &gm) != TL_OK)
			die("group metadata", tl_consumer_last_error(consumer));
		if (n > 0 && !failed && gm.generation_id != generation) {
			/* A rebalance during the batch: the positions are no longer those of
			 * the records copied (see rdk_revoke.h). */
			fprintf(stderr,
				"copier: generation %" PRId32 " -> %" PRId32
				" during the transaction: abort\n",
				generation, gm.generation_id);
			failed = rebalanced = true;
		}
		if (n > 0 && !failed) {
			struct tl_consumer_partition positions[PARTS_MAX];
			int32_t parts = tl_consumer_assignment(consumer, positions, PARTS_MAX);
			tl_err err = tl_producer_send_offsets_to_transaction(
				producer, positions, parts > PARTS_MAX ? PARTS_MAX : parts, &gm,
				TIMEOUT_MS);
			if (err != TL_OK) {
				fprintf(stderr, "copier: send_offsets: %s\n",
					tl_producer_last_error(producer));
				fatal = tl_err_is_fatal(err);
				failed = true;
			}
		}
		txns++;
		bool want_commit = !failed && !(abort_every > 0 && txns % abort_every == 0);
		/* An abort on purpose first lets the copies reach the broker, so that the log
		 * holds aborted records for read_committed readers to skip (an abort fails
		 * records not sent yet). */
		if (!want_commit && !failed && tl_producer_flush(producer, TIMEOUT_MS) != TL_OK)
			fprintf(stderr, "copier: flush before abort timed out\n");
		bool ok = !fatal && txn_end(producer, want_commit, &fatal);
		if (ok) {
			committed++;
			copied += n;
		} else {
			aborted++;
			if (rebalanced)
				rewind_to_committed(consumer);
			else
				snapshot_rewind(consumer, &snap);
		}
		if (fatal) {
			fprintf(stderr,
				"copier: fatal producer error: a new producer takes over\n");
			tl_producer_destroy(producer);
			producer = producer_new(brokers, txn_id, &reports);
		}
	}
	fprintf(stderr,
		"copier: %s txns=%" PRId64 " committed=%" PRId64 " aborted=%" PRId64
		" copied=%" PRId64 " reports_ok=%" PRId64 " reports_failed=%" PRId64 "\n",
		copied >= count ? "done" : "out of time", txns, committed, aborted, copied,
		reports.ok, reports.failed);
	tl_producer_destroy(producer);
	tl_consumer_destroy(consumer);
	if (copied != count)
		return 1;
	/* The last commit's offsets become visible once its markers are durable. */
	for (int attempt = 0; attempt < 20; attempt++) {
		if (committed_at_end(brokers, group, in))
			return 0;
		struct timespec pause = {0, 250 * 1000000L};
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "copier: the group's committed offsets never reached the input's end\n");
	return 1;
}

static bool expect(bool ok, const char *what)
{
	fprintf(stderr, "copier: %s: %s\n", what, ok ? "ok" : "FAILED");
	return ok;
}

static int fence(const char *brokers, const char *topic, const char *txn_id)
{
	struct reports ra = {0}, rb = {0};
	struct tl_producer *a = producer_new(brokers, txn_id, &ra);
	bool ok = tl_producer_begin_transaction(a) == TL_OK;
	struct tl_producer_record rec = {
		.topic = topic, .partition = 0, .value = "zombie", .value_len = 6};
	ok = ok && tl_producer_send(a, &rec) == TL_OK;
	ok = expect(ok && tl_producer_flush(a, TIMEOUT_MS) == TL_OK && ra.ok == 1,
		    "A delivered its first record");
	struct tl_producer *b = producer_new(brokers, txn_id, &rb); /* fences A */
	rec.value = "zombie-late";
	rec.value_len = 11;
	ok = expect(ok && tl_producer_send(a, &rec) == TL_OK, "A's send is queued") && ok;
	tl_err err = tl_producer_commit_transaction(a, TIMEOUT_MS);
	fprintf(stderr, "copier: zombie commit: %s (%s)\n", tl_err_name(err),
		tl_producer_last_error(a));
	ok = expect(err == TL_ERR_PRODUCER_FENCED && tl_err_is_fatal(err),
		    "A's commit is fenced") &&
	     ok;
	ok = expect(ra.fenced == 1 && ra.failed == 1, "A's pending report failed as fenced") && ok;
	ok = expect(tl_producer_send(a, &rec) == TL_ERR_PRODUCER_FENCED &&
			    tl_producer_begin_transaction(a) == TL_ERR_PRODUCER_FENCED &&
			    tl_producer_abort_transaction(a, TIMEOUT_MS) == TL_ERR_PRODUCER_FENCED,
		    "A's later calls fail as fenced") &&
	     ok;
	tl_producer_destroy(a);
	rec.value = "fresh";
	rec.value_len = 5;
	err = tl_producer_begin_transaction(b);
	if (err == TL_OK)
		err = tl_producer_send(b, &rec);
	if (err == TL_OK)
		err = tl_producer_commit_transaction(b, TIMEOUT_MS);
	ok = expect(err == TL_OK && rb.ok == 1, "B commits") && ok;
	if (err != TL_OK)
		fprintf(stderr, "copier: new instance: %s\n", tl_producer_last_error(b));
	tl_producer_destroy(b);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 10 && strcmp(argv[1], "copy") == 0)
		return copy(argv[2], argv[3], argv[4], argv[5], argv[6], atoll(argv[7]),
			    atoi(argv[8]), atof(argv[9]));
	if (argc == 5 && strcmp(argv[1], "fence") == 0)
		return fence(argv[2], argv[3], argv[4]);
	fprintf(stderr,
		"usage: tally_txn_copier copy BROKERS IN OUT GROUP TXN_ID COUNT "
		"ABORT_EVERY SECONDS\n       tally_txn_copier fence BROKERS TOPIC TXN_ID\n");
	return 2;
}
