/* rdk_idempotent.c - an idempotent librdkafka producer through a faulty broker, then a
 * consumer that checks exactly-once, in-order storage.
 *   rdk_idempotent BROKER TOPIC COUNT [-r RECORDS_PER_S] [-P PROGRESS_FILE]
 *                  [-T MESSAGE_TIMEOUT_MS]
 * The topic must be empty or absent (auto-created with 3 partitions). Record i goes to
 * partition i % 3 with key "k<i>" and a value that starts with "rec-<i>-" followed by
 * bytes computed from i. Settings: enable.idempotence=true, acks=all,
 * max.in.flight=5, enable.gapless.guarantee=true (so a broker that loses or reorders
 * a batch makes librdkafka fail fatally instead of bumping the epoch quietly).
 * Checks:
 * (1) every delivery report succeeds, and record i was stored at offset i / 3 of
 *     partition i % 3 (so none was stored twice and none before its predecessor);
 * (2) the consumer reads each partition from 0 to its end and finds exactly the
 *     records i = 3 * offset + partition, byte for byte: COUNT records, no duplicate,
 *     no loss, per-partition order = send order.
 * -r paces production (0: as fast as possible); -P writes the number of delivered
 * records to a file about every 2% (for tests that kill the broker mid-run).
 * RDK_IDEMPOTENT_DEBUG, when set, is the producer's librdkafka `debug` (e.g.
 * broker,topic,metadata,msg,eos); its lines go to stderr.
 * Exit status: 0 all checks passed, 1 a check failed, 2 usage. */
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

#define PARTITIONS       3
#define VALUE_BYTES      100
#define IDLE_TIMEOUT_MS  30000 /* consumer: give up after this long without progress */
#define ERRORS_SHOWN_MAX 10

struct state {
	uint32_t count;
	uint64_t delivered;
	uint64_t failed;
	uint64_t misplaced;
	const char *progress_file;
	uint64_t progress_step;
	uint64_t progress_next;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- records ---- */

static size_t record_value(uint32_t i, char *out, size_t cap)
{
	int n = snprintf(out, cap, "rec-%" PRIu32 "-", i);
	size_t len = (size_t)n;
	uint32_t x = i * 2654435761u + 1;
	while (len < VALUE_BYTES && len + 1 < cap) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[len++] = (char)('a' + x % 26);
	}
	out[len] = '\0';
	return len;
}

/* ---- producing ---- */

static void progress_write(const struct state *st)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", st->progress_file);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%" PRIu64 "\n", st->delivered);
	fclose(f);
	rename(tmp, st->progress_file);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void)rk;
	struct state *st = opaque;
	uint32_t i = (uint32_t)(uintptr_t)msg->_private;
	if (msg->err) {
		if (st->failed++ < ERRORS_SHOWN_MAX)
			fprintf(stderr,
				"rdk_idempotent: FAIL: delivery of record %" PRIu32 ": %s\n", i,
				rd_kafka_err2str(msg->err));
		return;
	}
	int64_t want_offset = (int64_t)(i / PARTITIONS);
	int32_t want_partition = (int32_t)(i % PARTITIONS);
	if (msg->partition != want_partition || msg->offset != want_offset) {
		if (st->misplaced++ < ERRORS_SHOWN_MAX)
			fprintf(stderr,
				"rdk_idempotent: FAIL: record %" PRIu32 " acknowledged at %" PRId32
				"/%" PRId64 ", expected %" PRId32 "/%" PRId64
				" (duplicate or lost batch before it)\n",
				i, msg->partition, msg->offset, want_partition, want_offset);
	}
	st->delivered++;
	if (st->progress_file && st->delivered >= st->progress_next) {
		progress_write(st);
		st->progress_next += st->progress_step;
	}
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	/* Transport errors are expected: the broker drops connections on purpose. */
	if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		return;
	fprintf(stderr, "rdk_idempotent: error: %s: %s\n",
		rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static bool conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char why[512];
	if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "rdk_idempotent: %s=%s: %s\n", key, value, why);
		return false;
	}
	return true;
}

static bool produce_all(const char *brokers, const char *topic, struct state *st, uint32_t rate,
			const char *message_timeout_ms)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	bool ok = conf_set(conf, "bootstrap.servers", brokers) &&
		  conf_set(conf, "enable.idempotence", "true") && conf_set(conf, "acks", "all") &&
		  conf_set(conf, "max.in.flight.requests.per.connection", "5") &&
		  conf_set(conf, "enable.gapless.guarantee", "true") &&
		  conf_set(conf, "message.timeout.ms", message_timeout_ms) &&
		  conf_set(conf, "linger.ms", "2") && conf_set(conf, "batch.num.messages", "100") &&
		  conf_set(conf, "retry.backoff.ms", "20") &&
		  conf_set(conf, "reconnect.backoff.ms", "20") &&
		  conf_set(conf, "reconnect.backoff.max.ms", "500") &&
		  conf_set(conf, "log.connection.close", "false") &&
		  conf_set(conf, "queue.buffering.max.messages", "100000");
	const char *debug = getenv("RDK_IDEMPOTENT_DEBUG");
	if (ok && debug && *debug)
		ok = conf_set(conf, "debug", debug);
	if (!ok)
		return false;
	rd_kafka_conf_set_opaque(conf, st);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	char why[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!rk) {
		fprintf(stderr, "rdk_idempotent: rd_kafka_new: %s\n", why);
		return false;
	}
	int64_t start = mono_ms();
	char value[VALUE_BYTES + 32];
	char key[16];
	for (uint32_t i = 0; i < st->count; i++) {
		if (rate > 0 && i % 100 == 0) {
			int64_t due = start + (int64_t)i * 1000 / rate;
			int64_t now = mono_ms();
			if (due > now)
				rd_kafka_poll(rk, (int)(due - now));
		}
		size_t len = record_value(i, value, sizeof(value));
		int klen = snprintf(key, sizeof(key), "k%" PRIu32, i);
		for (;;) {
			rd_kafka_resp_err_t err = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(topic),
				RD_KAFKA_V_PARTITION((int32_t)(i % PARTITIONS)),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_KEY(key, (size_t)klen), RD_KAFKA_V_VALUE(value, len),
				RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i), RD_KAFKA_V_END);
			if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
				break;
			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr,
					"rdk_idempotent: FAIL: produce record %" PRIu32 ": %s\n", i,
					rd_kafka_err2str(err));
				rd_kafka_destroy(rk);
				return false;
			}
			rd_kafka_poll(rk, 10);
		}
		rd_kafka_poll(rk, 0);
	}
	while (rd_kafka_outq_len(rk) > 0 && !rd_kafka_fatal_error(rk, NULL, 0))
		rd_kafka_flush(rk, 1000);
	char fatal[512];
	rd_kafka_resp_err_t fatal_err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
	if (fatal_err) {
		fprintf(stderr, "rdk_idempotent: FAIL: producer fatal error %s: %s\n",
			rd_kafka_err2name(fatal_err), fatal);
		rd_kafka_flush(rk, 5000);
	}
	rd_kafka_destroy(rk);
	if (st->progress_file)
		progress_write(st);
	printf("rdk_idempotent: produced %" PRIu32 " records in %.1f s: %" PRIu64
	       " delivered, %" PRIu64 " failed, %" PRIu64 " misplaced\n",
	       st->count, (double)(mono_ms() - start) / 1000.0, st->delivered, st->failed,
	       st->misplaced);
	return !fatal_err && st->failed == 0 && st->misplaced == 0 && st->delivered == st->count;
}

/* ---- consuming ---- */

struct verify {
	uint32_t count;
	int64_t next_offset[PARTITIONS]; /* next offset expected per partition */
	int64_t end_offset[PARTITIONS];  /* records the partition must hold */
	uint64_t bad;
};

static void verify_message(struct verify *v, const rd_kafka_message_t *m)
{
	int32_t p = m->partition;
	if (p < 0 || p >= PARTITIONS) {
		if (v->bad++ < ERRORS_SHOWN_MAX)
			fprintf(stderr, "rdk_idempotent: FAIL: record on partition %" PRId32 "\n",
				p);
		return;
	}
	if (m->offset != v->next_offset[p]) {
		if (v->bad++ < ERRORS_SHOWN_MAX)
			fprintf(stderr,
				"rdk_idempotent: FAIL: partition %" PRId32 ": offset %" PRId64
				" after %" PRId64 " (gap or repeat)\n",
				p, m->offset, v->next_offset[p] - 1);
		if (m->offset < v->next_offset[p])
			return;
	}
	v->next_offset[p] = m->offset + 1;
	int64_t i64 = m->offset * PARTITIONS + p;
	if (m->offset >= v->end_offset[p] || i64 >= v->count) {
		if (v->bad++ < ERRORS_SHOWN_MAX)
			fprintf(stderr,
				"rdk_idempotent: FAIL: partition %" PRId32 " offset %" PRId64
				" is past the %" PRIu32 " records sent (a duplicate)\n",
				p, m->offset, v->count);
		return;
	}
	uint32_t i = (uint32_t)i64;
	char value[VALUE_BYTES + 32];
	char key[16];
	size_t len = record_value(i, value, sizeof(value));
	int klen = snprintf(key, sizeof(key), "k%" PRIu32, i);
	bool same = m->len == len && memcmp(m->payload, value, len) == 0 &&
		    m->key_len == (size_t)klen && memcmp(m->key, key, (size_t)klen) == 0;
	if (!same && v->bad++ < ERRORS_SHOWN_MAX)
		fprintf(stderr,
			"rdk_idempotent: FAIL: partition %" PRId32 " offset %" PRId64
			" holds \"%.*s\", expected record %" PRIu32 " \"%.24s\"\n",
			p, m->offset, (int)(m->len < 24 ? m->len : 24), (const char *)m->payload, i,
			value);
}

static bool verify_done(const struct verify *v)
{
	for (int p = 0; p < PARTITIONS; p++)
		if (v->next_offset[p] < v->end_offset[p])
			return false;
	return true;
}

static bool consume_all(const char *brokers, const char *topic, uint32_t count)
{
	struct verify v = {.count = count};
	for (int p = 0; p < PARTITIONS; p++)
		v.end_offset[p] = (int64_t)((count + (uint32_t)(PARTITIONS - 1 - p)) / PARTITIONS);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf_set(conf, "bootstrap.servers", brokers) ||
	    !conf_set(conf, "group.id", "rdk-idempotent-verify") ||
	    !conf_set(conf, "enable.auto.commit", "false") ||
	    !conf_set(conf, "enable.partition.eof", "false") ||
	    !conf_set(conf, "fetch.wait.max.ms", "100"))
		return false;
	char why[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!rk) {
		fprintf(stderr, "rdk_idempotent: rd_kafka_new: %s\n", why);
		return false;
	}
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
	for (int p = 0; p < PARTITIONS; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset = 0;
	rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		fprintf(stderr, "rdk_idempotent: assign: %s\n", rd_kafka_err2str(err));
		rd_kafka_destroy(rk);
		return false;
	}
	int64_t last_progress = mono_ms();
	uint64_t consumed = 0;
	while (!verify_done(&v) && mono_ms() - last_progress < IDLE_TIMEOUT_MS) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m)
			continue;
		if (m->err) {
			fprintf(stderr, "rdk_idempotent: consumer: %s\n",
				rd_kafka_message_errstr(m));
		} else {
			verify_message(&v, m);
			consumed++;
			last_progress = mono_ms();
		}
		rd_kafka_message_destroy(m);
	}
	/* Anything past the end would be a duplicate: read briefly for stragglers. */
	int64_t tail_until = mono_ms() + 500;
	while (mono_ms() < tail_until) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err) {
			verify_message(&v, m);
			consumed++;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	for (int p = 0; p < PARTITIONS; p++)
		if (v.next_offset[p] != v.end_offset[p]) {
			fprintf(stderr,
				"rdk_idempotent: FAIL: partition %d ends at offset %" PRId64
				", expected %" PRId64 "\n",
				p, v.next_offset[p], v.end_offset[p]);
			v.bad++;
		}
	printf("rdk_idempotent: consumed %" PRIu64 " records, %" PRIu64 " problems\n", consumed,
	       v.bad);
	return v.bad == 0 && consumed == count;
}

static int usage(void)
{
	fprintf(stderr, "usage: rdk_idempotent BROKER TOPIC COUNT [-r RECORDS_PER_S] "
			"[-P PROGRESS_FILE] [-T MESSAGE_TIMEOUT_MS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	const char *brokers = argv[1];
	const char *topic = argv[2];
	struct state st = {0};
	st.count = (uint32_t)strtoul(argv[3], NULL, 10);
	uint32_t rate = 0;
	const char *timeout_ms = "180000";
	for (int i = 4; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "-r") == 0)
			rate = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "-P") == 0)
			st.progress_file = argv[i + 1];
		else if (strcmp(argv[i], "-T") == 0)
			timeout_ms = argv[i + 1];
		else
			return usage();
	}
	if (st.count == 0)
		return usage();
	st.progress_step = st.count / 50 ? st.count / 50 : 1;
	st.progress_next = st.progress_step;
	bool produced = produce_all(brokers, topic, &st, rate, timeout_ms);
	if (!produced)
		fprintf(stderr,
			"rdk_idempotent: FAIL: producing did not succeed for every record\n");
	bool consumed = consume_all(brokers, topic, st.count);
	if (produced && consumed)
		printf("rdk_idempotent: ok: %" PRIu32 " records, exactly once, in order\n",
		       st.count);
	return produced && consumed ? 0 : 1;
}
