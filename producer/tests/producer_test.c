/* producer_test.c - partitioner (murmur2 against Java's and librdkafka's values),
 * configuration errors, and the producer against a scripted fake broker
 * (fake_broker.h): bounded memory (block, then fail), retries keeping the sequence,
 * sequence reuse after a refused batch, delivery reports, the event fd, destroy. */
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "client/tests/fake_broker.h"
#include "common/tests/check_run.h"
#include "tally/producer.h"
#include "test_producer.h"

/* Kafka's UtilsTest.testMurmur2 (clients/src/test/java/.../utils/UtilsTest.java). */
START_TEST(murmur2_matches_java_test_values)
{
	struct {
		const char *key;
		int32_t want;
	} cases[] = {
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_int_eq(tl_producer_murmur2(cases[i].key, (int32_t)strlen(cases[i].key)),
				 cases[i].want);
}
END_TEST

/* librdkafka's murmur2 partitioner computes (murmur2(key) & 0x7fffffff) % count, the
 * same as Java's; compare on many keys of every tail length and several counts. */
START_TEST(partition_for_key_matches_librdkafka_murmur2)
{
	char key[64];
	int32_t counts[] = {1, 2, 3, 7, 12, 100, 2147483647};
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(key, sizeof(key), "key-%d-%.*s", i, i % 9, "xxxxxxxxx");
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			int32_t want = rd_kafka_msg_partitioner_murmur2(NULL, key, (size_t)len,
									counts[c], NULL, NULL);
			ck_assert_int_eq(tl_producer_partition_for_key(key, len, counts[c]), want);
		}
	}
	ck_assert_int_eq(tl_producer_partition_for_key("", 0, 10),
			 rd_kafka_msg_partitioner_murmur2(NULL, "", 0, 10, NULL, NULL));
}
END_TEST

START_TEST(errors_carry_retriable_and_fatal_flags)
{
	ck_assert(tl_err_is_retriable(TL_ERR_NOT_LEADER_OR_FOLLOWER));
	ck_assert(!tl_err_is_fatal(TL_ERR_NOT_LEADER_OR_FOLLOWER));
	ck_assert(tl_err_is_fatal(TL_ERR_PRODUCER_FENCED));
	ck_assert(!tl_err_is_retriable(TL_ERR_PRODUCER_FENCED));
	ck_assert(tl_err_is_fatal(TL_ERR_FATAL));
	ck_assert(!tl_err_is_fatal(TL_ERR_MESSAGE_TOO_LARGE));
	ck_assert_str_eq(tl_err_name(TL_ERR_MESSAGE_TOO_LARGE), "MESSAGE_TOO_LARGE");
}
END_TEST

START_TEST(unknown_key_is_an_error_with_a_suggestion)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	char err[256];
	ck_assert_int_eq(tl_producer_conf_set(conf, "linger.msec", "5", err, sizeof(err)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "unknown configuration key 'linger.msec'"));
	ck_assert_ptr_nonnull(strstr(err, "did you mean 'linger.ms'"));
	ck_assert_int_eq(
		tl_producer_conf_set(conf, "completely.unrelated.thing", "1", err, sizeof(err)),
		TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "unknown configuration key"));
	tl_producer_conf_destroy(conf);
}
END_TEST

START_TEST(bad_values_are_errors_naming_the_key)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	char err[256];
	ck_assert_int_eq(tl_producer_conf_set(conf, "batch.size", "big", err, sizeof(err)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "batch.size=big"));
	ck_assert_int_eq(tl_producer_conf_set(conf, "acks", "2", err, sizeof(err)), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "all|-1|0|1"));
	ck_assert_int_eq(tl_producer_conf_set(conf, "linger.ms", "-1", err, sizeof(err)),
			 TL_ERR_INVALID);
	ck_assert_int_eq(tl_producer_conf_set(conf, "compression.type", "gzip", err, sizeof(err)),
			 TL_OK);
	ck_assert_int_eq(tl_producer_conf_set(conf, "compression.type", "brotli", err, sizeof(err)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "none|zstd|gzip|snappy|lz4"));
	ck_assert_int_eq(tl_producer_conf_set(conf, "transactional.id", "t", err, sizeof(err)),
			 TL_OK);
	ck_assert_int_eq(
		tl_producer_conf_set(conf, "transaction.timeout.ms", "0", err, sizeof(err)),
		TL_ERR_INVALID);
	ck_assert_int_eq(tl_producer_conf_set(conf, "compression.type", "zstd", err, sizeof(err)),
			 TL_OK);
	ck_assert_int_eq(tl_producer_conf_set(conf, "acks", "all", err, sizeof(err)), TL_OK);
	tl_producer_conf_destroy(conf);
}
END_TEST

START_TEST(create_without_bootstrap_or_with_conflicts_fails)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	struct tl_producer *producer = NULL;
	char err[256];
	ck_assert_int_eq(tl_producer_create(conf, &producer, err, sizeof(err)), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "bootstrap.servers"));
	ck_assert_int_eq(
		tl_producer_conf_set(conf, "bootstrap.servers", "nohostport", err, sizeof(err)),
		TL_OK);
	ck_assert_int_eq(tl_producer_create(conf, &producer, err, sizeof(err)), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "host:port"));
	ck_assert_int_eq(
		tl_producer_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
		TL_OK);
	ck_assert_int_eq(tl_producer_conf_set(conf, "acks", "1", err, sizeof(err)), TL_OK);
	ck_assert_int_eq(tl_producer_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)),
			 TL_OK);
	ck_assert_int_eq(tl_producer_create(conf, &producer, err, sizeof(err)), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "requires acks=all"));
	tl_producer_conf_destroy(conf);
}
END_TEST

/* No broker listens on port 1: a send with max.block.ms=0 must not block on metadata,
 * and destroy must return promptly. */
START_TEST(send_without_broker_fails_fast_with_max_block_zero)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	char err[256];
	ck_assert_int_eq(
		tl_producer_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
		TL_OK);
	ck_assert_int_eq(tl_producer_conf_set(conf, "max.block.ms", "0", err, sizeof(err)), TL_OK);
	struct tl_producer *producer = NULL;
	ck_assert_int_eq(tl_producer_create(conf, &producer, err, sizeof(err)), TL_OK);
	tl_producer_conf_destroy(conf);
	struct tl_producer_record rec = {
		.topic = "t", .partition = TL_PRODUCER_PARTITION_ANY, .value = "v", .value_len = 1};
	ck_assert_int_eq(tl_producer_send(producer, &rec), TL_ERR_TIMED_OUT);
	ck_assert_ptr_nonnull(strstr(tl_producer_last_error(producer), "bootstrap.servers"));
	ck_assert_int_eq(tl_producer_outstanding(producer), 0);
	tl_producer_destroy(producer);
}
END_TEST

/* ---- against the fake broker ---- */

static struct fake_broker fb;
static char fb_address[64];

static void fake_setup(void)
{
	fake_broker_start(&fb, 1);
	fake_broker_address(&fb, fb_address, sizeof(fb_address));
}

static void fake_teardown(void)
{
	fake_broker_stop(&fb);
}

/* A producer on the fake broker, with extra key=value pairs (NULL-terminated). */
static struct tl_producer *fake_producer(struct reports *reports, const char *const *kv)
{
	return test_producer(fb_address, reports, NULL, kv);
}

static tl_err send_value(struct tl_producer *producer, const char *value)
{
	struct tl_producer_record rec = {.topic = "t",
					 .partition = TL_PRODUCER_PARTITION_ANY,
					 .key = "k",
					 .key_len = 1,
					 .value = value,
					 .value_len = (int32_t)strlen(value)};
	return tl_producer_send(producer, &rec);
}

static double elapsed_ms(const struct timespec *from)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - from->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - from->tv_nsec) / 1e6;
}

START_TEST(full_buffer_blocks_up_to_max_block_ms_then_times_out)
{
	fb.produce_hold = true; /* nothing is ever acknowledged: memory stays in use */
	const char *kv[] = {"buffer.memory", "4096", "max.block.ms", "300", "linger.ms", "0", NULL};
	struct tl_producer *producer = fake_producer(NULL, kv);
	char value[200];
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	tl_err err = TL_OK;
	int sent = 0;
	struct timespec start;
	while (err == TL_OK && sent < 100) {
		clock_gettime(CLOCK_MONOTONIC, &start);
		err = send_value(producer, value);
		sent += err == TL_OK;
	}
	ck_assert_int_eq(err, TL_ERR_TIMED_OUT);
	ck_assert_double_ge(elapsed_ms(&start), 250);
	ck_assert_int_gt(sent, 5); /* about 4096 / 220 fit */
	ck_assert_int_lt(sent, 30);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(full_buffer_fails_at_once_with_max_block_ms_zero)
{
	fb.produce_hold = true;
	const char *kv[] = {"buffer.memory", "4096", "max.block.ms", "0", "linger.ms", "0", NULL};
	struct tl_producer *producer = fake_producer(NULL, kv);
	/* max.block.ms=0 also means no wait for metadata: retry until the topic is known. */
	tl_err err = TL_ERR_TIMED_OUT;
	for (int i = 0; i < 500 && err == TL_ERR_TIMED_OUT; i++) {
		err = send_value(producer, "first");
		if (err == TL_ERR_TIMED_OUT)
			usleep(10000);
	}
	ck_assert_int_eq(err, TL_OK);
	char value[200];
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	struct timespec start;
	for (int i = 0; i < 100 && err == TL_OK; i++) {
		clock_gettime(CLOCK_MONOTONIC, &start);
		err = send_value(producer, value);
	}
	ck_assert_int_eq(err, TL_ERR_LIMIT);
	ck_assert_double_lt(elapsed_ms(&start), 50);
	ck_assert_ptr_nonnull(strstr(tl_producer_last_error(producer), "buffer.memory"));
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(retriable_errors_are_retried_with_the_same_sequence)
{
	fb.produce_script[0] = TL_ERR_NOT_LEADER_OR_FOLLOWER;
	fb.produce_script[1] = TL_ERR_REQUEST_TIMED_OUT;
	fb.produce_script_count = 2;
	struct reports reports = {0};
	struct tl_producer *producer = fake_producer(&reports, NULL);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(send_value(producer, "v"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 10000), TL_OK);
	ck_assert_int_eq(reports.ok, 10);
	ck_assert_int_eq(reports.failed, 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(reports.offsets[i], i);
	ck_assert_int_eq(send_value(producer, "next"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 10000), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.batches_seen, 4);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(fb.seen_producer_id[i], 42);
		ck_assert_int_eq(fb.seen_base_sequence[i], 0);
		ck_assert_int_eq(fb.seen_record_count[i], 10);
	}
	ck_assert_int_eq(fb.seen_base_sequence[3], 10);
	ck_assert_int_eq(fb.seen_acks, -1); /* acks=all by default */
	pthread_mutex_unlock(&fb.lock);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(refused_batch_fails_with_a_detail_and_frees_its_sequence)
{
	fb.produce_script[0] = TL_ERR_MESSAGE_TOO_LARGE;
	fb.produce_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = fake_producer(&reports, NULL);
	ck_assert_int_eq(send_value(producer, "too big"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 10000), TL_OK);
	ck_assert_int_eq(reports.failed, 1);
	ck_assert_int_eq(reports.last_err, TL_ERR_MESSAGE_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(reports.last_detail, "max.request.size"));
	ck_assert_int_eq(send_value(producer, "fits"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 10000), TL_OK);
	ck_assert_int_eq(reports.ok, 1);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.batches_seen, 2);
	ck_assert_int_eq(fb.seen_base_sequence[1], 0); /* the refused batch was not stored */
	pthread_mutex_unlock(&fb.lock);
	tl_producer_destroy(producer);
}
END_TEST

/* The fake saw exactly @n batches, with these base sequences. */
static void assert_sequences_seen(const int32_t *expect, int n)
{
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.batches_seen, n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(fb.seen_base_sequence[i], expect[i]);
	pthread_mutex_unlock(&fb.lock);
}

/* Three one-record batches in flight at once on a broker that checks sequences; with
 * @retries set, that retries value. */
static struct tl_producer *window_of_three(struct reports *reports, const char *retries)
{
	fb.check_sequences = true;
	fb.produce_gate = 3;
	const char *kv[] = {"linger.ms", "0", "batch.size", "120", retries ? "retries" : NULL,
			    retries,     NULL};
	struct tl_producer *producer = fake_producer(reports, kv);
	char value[100];
	for (int i = 0; i < 3; i++) {
		memset(value, 'a' + i, sizeof(value) - 1);
		value[sizeof(value) - 1] = '\0';
		ck_assert_int_eq(send_value(producer, value), TL_OK);
	}
	ck_assert_int_eq(tl_producer_flush(producer, 10000), TL_OK);
	return producer;
}

START_TEST(retriable_error_mid_window_resends_the_window_in_order)
{
	fb.produce_script[0] = TL_ERR_NOT_LEADER_OR_FOLLOWER;
	fb.produce_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = window_of_three(&reports, NULL);
	ck_assert_int_eq(reports.failed, 0);
	ck_assert_int_eq(reports.ok, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(reports.offsets[i], i); /* stored in send order */
	/* NOT_LEADER, then OUT_OF_ORDER twice (consequences), then all three again. */
	const int32_t expect[] = {0, 1, 2, 0, 1, 2};
	assert_sequences_seen(expect, 6);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(refused_batch_mid_window_gives_its_sequences_to_the_next)
{
	fb.produce_script[0] = TL_ERR_MESSAGE_TOO_LARGE;
	fb.produce_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = window_of_three(&reports, NULL);
	ck_assert_int_eq(reports.failed, 1);
	ck_assert_int_eq(reports.last_err, TL_ERR_MESSAGE_TOO_LARGE);
	ck_assert_int_eq(reports.ok, 2);
	ck_assert_int_eq(reports.offsets[0], 0);
	ck_assert_int_eq(reports.offsets[1], 1);
	const int32_t expect[] = {0, 1, 2, 0, 1}; /* the two after it, renumbered */
	assert_sequences_seen(expect, 5);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(retriable_and_refused_in_one_window_keep_the_earlier_sequence)
{
	/* A: NOT_LEADER (not stored, or maybe stored), B: refused for good, C: behind them.
	 * A is resent with its own sequence; only C takes over B's. */
	fb.produce_script[0] = TL_ERR_NOT_LEADER_OR_FOLLOWER;
	fb.produce_script[1] = TL_ERR_MESSAGE_TOO_LARGE;
	fb.produce_script_count = 2;
	struct reports reports = {0};
	struct tl_producer *producer = window_of_three(&reports, NULL);
	ck_assert_int_eq(reports.failed, 1);
	ck_assert_int_eq(reports.last_err, TL_ERR_MESSAGE_TOO_LARGE);
	ck_assert_int_eq(reports.ok, 2);
	const int32_t expect[] = {0, 1, 2, 0, 1};
	assert_sequences_seen(expect, 5);
	ck_assert_int_eq(send_value(producer, "later"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 10000), TL_OK);
	ck_assert_int_eq(reports.ok, 3); /* the partition still works */
	ck_assert_int_eq(reports.failed, 1);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(retries_used_up_mid_window_start_a_new_producer_id)
{
	/* With retries=0, A's NOT_LEADER fails it; its sequences are unknown now, so B and
	 * C (answered OUT_OF_ORDER behind it) go out again under a new producer id, from 0. */
	fb.produce_script[0] = TL_ERR_NOT_LEADER_OR_FOLLOWER;
	fb.produce_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = window_of_three(&reports, "0");
	ck_assert_int_eq(reports.failed, 1);
	ck_assert_int_eq(reports.last_err, TL_ERR_NOT_LEADER_OR_FOLLOWER);
	ck_assert_int_eq(reports.ok, 2);
	const int32_t expect[] = {0, 1, 2, 0, 1};
	assert_sequences_seen(expect, 5);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(acks_zero_reports_every_record_promptly)
{
	/* No answers come with acks=0: every record is reported once written, however many
	 * batches the queue holds (a regression: batches behind the first waited for the
	 * 100 ms idle tick, one per tick, and ~400 batches outlived delivery.timeout.ms). */
	const char *kv[] = {"acks",       "0",    "linger.ms",           "0",
			    "batch.size", "1024", "delivery.timeout.ms", "5000",
			    NULL};
	struct reports reports = {0};
	struct tl_producer *producer = fake_producer(&reports, kv);
	char value[200];
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(send_value(producer, value), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 20000), TL_OK);
	ck_assert_int_eq(reports.ok + reports.failed, 2000);
	ck_assert_int_eq(reports.failed, 0);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(send_sync_returns_the_offset_and_event_fd_signals_reports)
{
	struct reports reports = {0};
	struct tl_producer *producer = fake_producer(&reports, NULL);
	struct tl_producer_record rec = {
		.topic = "t", .partition = 0, .value = "a", .value_len = 1};
	struct tl_producer_delivery d;
	ck_assert_int_eq(tl_producer_send_sync(producer, &rec, &d), TL_OK);
	ck_assert_int_eq(d.offset, 0);
	ck_assert_int_eq(d.partition, 0);
	ck_assert_int_eq(reports.ok, 0); /* no callback for send_sync */
	ck_assert_int_eq(send_value(producer, "b"), TL_OK);
	struct pollfd pfd = {tl_producer_event_fd(producer), POLLIN, 0};
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert_int_eq(tl_producer_poll(producer, 0), 1);
	ck_assert_int_eq(reports.ok, 1);
	ck_assert_int_eq(reports.offsets[0], 1);
	ck_assert_int_eq(tl_producer_outstanding(producer), 0);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(destroy_fails_undelivered_records_with_closed)
{
	fb.produce_hold = true;
	struct reports reports = {0};
	struct tl_producer *producer = fake_producer(&reports, NULL);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(send_value(producer, "v"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 200), TL_ERR_TIMED_OUT);
	tl_producer_destroy(producer);
	ck_assert_int_eq(reports.failed, 5);
	ck_assert_int_eq(reports.last_err, TL_ERR_CLOSED);
	ck_assert_ptr_nonnull(strstr(reports.last_detail, "tl_producer_flush"));
}
END_TEST

START_TEST(acks_zero_turns_idempotence_off_quietly)
{
	const char *kv[] = {"acks", "0", NULL};
	struct reports reports = {0};
	struct tl_producer *producer = fake_producer(&reports, kv);
	ck_assert_int_eq(send_value(producer, "v"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 10000), TL_OK);
	ck_assert_int_eq(reports.ok, 1);
	ck_assert_int_eq(reports.offsets[0], -1); /* acks=0: no offset known */
	tl_producer_destroy(producer);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_producer_id[0], -1);
	ck_assert_int_eq(fb.seen_acks, 0);
	pthread_mutex_unlock(&fb.lock);
}
END_TEST

static Suite *producer_suite(void)
{
	Suite *s = suite_create("producer");
	TCase *tc = tcase_create("partitioner");
	tcase_add_test(tc, murmur2_matches_java_test_values);
	tcase_add_test(tc, partition_for_key_matches_librdkafka_murmur2);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, errors_carry_retriable_and_fatal_flags);
	suite_add_tcase(s, tc);
	tc = tcase_create("config");
	tcase_add_test(tc, unknown_key_is_an_error_with_a_suggestion);
	tcase_add_test(tc, bad_values_are_errors_naming_the_key);
	tcase_add_test(tc, create_without_bootstrap_or_with_conflicts_fails);
	tcase_add_test(tc, send_without_broker_fails_fast_with_max_block_zero);
	suite_add_tcase(s, tc);
	tc = tcase_create("fake_broker");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, full_buffer_blocks_up_to_max_block_ms_then_times_out);
	tcase_add_test(tc, full_buffer_fails_at_once_with_max_block_ms_zero);
	tcase_add_test(tc, retriable_errors_are_retried_with_the_same_sequence);
	tcase_add_test(tc, refused_batch_fails_with_a_detail_and_frees_its_sequence);
	tcase_add_test(tc, send_sync_returns_the_offset_and_event_fd_signals_reports);
	tcase_add_test(tc, destroy_fails_undelivered_records_with_closed);
	tcase_add_test(tc, acks_zero_turns_idempotence_off_quietly);
	tcase_add_test(tc, retriable_error_mid_window_resends_the_window_in_order);
	tcase_add_test(tc, refused_batch_mid_window_gives_its_sequences_to_the_next);
	tcase_add_test(tc, acks_zero_reports_every_record_promptly);
	tcase_add_test(tc, retriable_and_refused_in_one_window_keep_the_earlier_sequence);
	tcase_add_test(tc, retries_used_up_mid_window_start_a_new_producer_id);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(producer_suite());
}
