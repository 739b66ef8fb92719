/* txn_test.c - transactions of the libtally producer against the scripted fake broker
 * (fake_broker.h): configuration conflicts, calls in the wrong state, InitProducerId
 * retries, AddPartitionsToTxn before the first batch of each partition, commit and
 * abort (EndTxn), abortable errors, fencing (every pending report and every later call
 * fail with PRODUCER_FENCED), and send_offsets_to_transaction with KIP-447 metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "client/tests/fake_broker.h"
#include "common/tests/check_run.h"
#include "tally/producer.h"
#include "test_producer.h"

#define WAIT_MS 10000

static struct fake_broker fb;
static char fb_address[64];

static void fake_setup(void)
{
	fake_broker_start(&fb, 2);
	fake_broker_address(&fb, fb_address, sizeof(fb_address));
}

static void fake_teardown(void)
{
	fake_broker_stop(&fb);
}

/* A transactional producer on the fake broker, with extra key=value pairs. */
static struct tl_producer *txn_producer(struct reports *reports, const char *const *kv)
{
	const char *const base[] = {"transactional.id", "tx-1", NULL};
	return test_producer(fb_address, reports, base, kv);
}

static tl_err send_to(struct tl_producer *producer, int32_t partition, const char *value)
{
	struct tl_producer_record rec = {.topic = "t",
					 .partition = partition,
					 .value = value,
					 .value_len = (int32_t)strlen(value)};
	return tl_producer_send(producer, &rec);
}

static int fake_get(const int *field)
{
	pthread_mutex_lock(&fb.lock);
	int v = *field;
	pthread_mutex_unlock(&fb.lock);
	return v;
}

/* ---- configuration and state ---- */

START_TEST(transactional_id_conflicts_are_errors)
{
	const char *cases[][4] = {
		{"enable.idempotence", "false", "requires enable.idempotence=true", NULL},
		{"acks", "1", "requires acks=all", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tl_producer_conf *conf = tl_producer_conf_create();
		char err[256];
		ck_assert_int_eq(tl_producer_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err,
						      sizeof(err)),
				 TL_OK);
		ck_assert_int_eq(
			tl_producer_conf_set(conf, "transactional.id", "x", err, sizeof(err)),
			TL_OK);
		ck_assert_int_eq(
			tl_producer_conf_set(conf, cases[i][0], cases[i][1], err, sizeof(err)),
			TL_OK);
		struct tl_producer *producer = NULL;
		ck_assert_int_eq(tl_producer_create(conf, &producer, err, sizeof(err)),
				 TL_ERR_INVALID);
		ck_assert_msg(strstr(err, cases[i][2]) != NULL, "%s", err);
		tl_producer_conf_destroy(conf);
	}
}
END_TEST

START_TEST(transaction_calls_need_a_transactional_id)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	char err[256];
	ck_assert_int_eq(
		tl_producer_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
		TL_OK);
	struct tl_producer *producer = NULL;
	ck_assert_int_eq(tl_producer_create(conf, &producer, err, sizeof(err)), TL_OK);
	tl_producer_conf_destroy(conf);
	ck_assert_int_eq(tl_producer_init_transactions(producer, 100), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(tl_producer_last_error(producer), "transactional.id"));
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_ERR_INVALID);
	ck_assert_int_eq(tl_producer_commit_transaction(producer, 100), TL_ERR_INVALID);
	ck_assert_int_eq(tl_producer_abort_transaction(producer, 100), TL_ERR_INVALID);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(calls_out_of_order_fail_with_invalid_txn_state)
{
	struct tl_producer *producer = txn_producer(NULL, NULL);
	ck_assert_int_eq(send_to(producer, 0, "early"), TL_ERR_INVALID_TXN_STATE);
	ck_assert_ptr_nonnull(
		strstr(tl_producer_last_error(producer), "tl_producer_init_transactions"));
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_ERR_INVALID_TXN_STATE);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(send_to(producer, 0, "no txn"), TL_ERR_INVALID_TXN_STATE);
	ck_assert_ptr_nonnull(
		strstr(tl_producer_last_error(producer), "tl_producer_begin_transaction"));
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS),
			 TL_ERR_INVALID_TXN_STATE);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_ERR_INVALID_TXN_STATE);
	/* Nothing was sent: the commit needs no coordinator round trip. */
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(fake_get(&fb.end_requests), 0);
	tl_producer_destroy(producer);
}
END_TEST

/* ---- init ---- */

START_TEST(init_retries_busy_coordinator_answers_and_finds_it_again)
{
	fb.init_script[0] = TL_ERR_CONCURRENT_TRANSACTIONS;
	fb.init_script[1] = TL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
	fb.init_script[2] = TL_ERR_NOT_COORDINATOR;
	fb.init_script_count = 3;
	struct tl_producer *producer = txn_producer(NULL, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.init_requests, 4);
	ck_assert_int_ge(fb.find_txn_requests, 2); /* NOT_COORDINATOR: looked up again */
	ck_assert_int_eq(fb.seen_find_key_type, 1);
	ck_assert_str_eq(fb.seen_transactional_id, "tx-1");
	pthread_mutex_unlock(&fb.lock);
	/* A second call finds it done. */
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(init_with_a_refused_timeout_is_fatal)
{
	fb.init_script[0] = TL_ERR_INVALID_TRANSACTION_TIMEOUT;
	fb.init_script_count = 1;
	struct tl_producer *producer = txn_producer(NULL, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_ERR_FATAL);
	ck_assert_ptr_nonnull(strstr(tl_producer_last_error(producer), "transaction.timeout.ms"));
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_ERR_FATAL);
	tl_producer_destroy(producer);
}
END_TEST

/* ---- commit and abort ---- */

START_TEST(commit_adds_each_partition_before_its_first_batch)
{
	fb.add_partitions_script[0] = TL_ERR_CONCURRENT_TRANSACTIONS;
	fb.add_partitions_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = txn_producer(&reports, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
		for (int i = 0; i < 10; i++) {
			ck_assert_int_eq(send_to(producer, 0, "a"), TL_OK);
			ck_assert_int_eq(send_to(producer, 1, "b"), TL_OK);
		}
		ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS), TL_OK);
		ck_assert_int_eq(reports.ok, 20 * (round + 1));
		ck_assert_int_eq(fake_get(&fb.commits), round + 1);
	}
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_ge(fb.add_partitions_requests, 3); /* one retry, then once per txn */
	ck_assert_int_gt(fb.transactional_batches, 0);
	ck_assert_int_eq(fb.unregistered_batches, 0);
	ck_assert_int_eq(fb.aborts, 0);
	pthread_mutex_unlock(&fb.lock);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(failed_record_makes_commit_abortable_and_abort_bumps_the_epoch)
{
	fb.produce_script[0] = TL_ERR_MESSAGE_TOO_LARGE;
	fb.produce_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = txn_producer(&reports, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	ck_assert_int_eq(send_to(producer, 0, "refused"), TL_OK);
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS),
			 TL_ERR_TRANSACTION_ABORTABLE);
	ck_assert_msg(strstr(tl_producer_last_error(producer), "MESSAGE_TOO_LARGE") != NULL, "%s",
		      tl_producer_last_error(producer));
	ck_assert_ptr_nonnull(
		strstr(tl_producer_last_error(producer), "tl_producer_abort_transaction"));
	ck_assert_int_eq(reports.failed, 1);
	ck_assert_int_eq(send_to(producer, 0, "more"), TL_ERR_TRANSACTION_ABORTABLE);
	ck_assert_int_eq(tl_producer_abort_transaction(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(fake_get(&fb.aborts), 1);
	ck_assert_int_eq(fake_get(&fb.init_requests), 2); /* a new epoch after the failure */
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	ck_assert_int_eq(send_to(producer, 0, "fits"), TL_OK);
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(reports.ok, 1);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_batch_epoch, 1);
	ck_assert_int_eq(fb.seen_base_sequence[fb.batches_seen - 1], 0);
	ck_assert_int_eq(fb.commits, 1);
	pthread_mutex_unlock(&fb.lock);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(abort_fails_unsent_records_with_operation_not_attempted)
{
	const char *kv[] = {"linger.ms", "60000", NULL}; /* the batch stays open */
	struct reports reports = {0};
	struct tl_producer *producer = txn_producer(&reports, kv);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(send_to(producer, 1, "v"), TL_OK);
	ck_assert_int_eq(tl_producer_abort_transaction(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(reports.failed, 3);
	ck_assert_int_eq(reports.last_err, TL_ERR_OPERATION_NOT_ATTEMPTED);
	ck_assert_ptr_nonnull(strstr(reports.last_detail, "aborted"));
	ck_assert_int_eq(fake_get(&fb.batches_seen), 0);
	ck_assert_int_eq(tl_producer_outstanding(producer), 0);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	tl_producer_destroy(producer);
}
END_TEST

/* ---- fencing ---- */

START_TEST(fenced_fails_every_pending_report_and_every_later_call)
{
	fb.add_partitions_script[0] = TL_ERR_PRODUCER_FENCED;
	fb.add_partitions_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = txn_producer(&reports, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(send_to(producer, i % 2, "zombie"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(reports.failed, 5);
	ck_assert_int_eq(reports.last_err, TL_ERR_PRODUCER_FENCED);
	ck_assert_ptr_nonnull(strstr(reports.last_detail, "fenced"));
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS), TL_ERR_PRODUCER_FENCED);
	ck_assert(tl_err_is_fatal(TL_ERR_PRODUCER_FENCED));
	ck_assert_int_eq(send_to(producer, 0, "late"), TL_ERR_PRODUCER_FENCED);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_ERR_PRODUCER_FENCED);
	ck_assert_int_eq(tl_producer_abort_transaction(producer, WAIT_MS), TL_ERR_PRODUCER_FENCED);
	ck_assert_ptr_nonnull(strstr(tl_producer_last_error(producer), "tx-1"));
	ck_assert_int_eq(fake_get(&fb.batches_seen), 0);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(fenced_end_txn_fails_the_commit)
{
	fb.end_script[0] = TL_ERR_INVALID_PRODUCER_EPOCH;
	fb.end_script_count = 1;
	struct reports reports = {0};
	struct tl_producer *producer = txn_producer(&reports, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	ck_assert_int_eq(send_to(producer, 0, "v"), TL_OK);
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS), TL_ERR_PRODUCER_FENCED);
	ck_assert_ptr_nonnull(strstr(tl_producer_last_error(producer), "INVALID_PRODUCER_EPOCH"));
	ck_assert_int_eq(send_to(producer, 0, "v"), TL_ERR_PRODUCER_FENCED);
	tl_producer_destroy(producer);
}
END_TEST

/* ---- offsets ---- */

START_TEST(send_offsets_adds_the_group_and_commits_with_its_metadata)
{
	fb.txn_commit_script[0] = TL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
	fb.txn_commit_script_count = 1;
	struct tl_producer *producer = txn_producer(NULL, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	ck_assert_int_eq(send_to(producer, 0, "copy"), TL_OK);
	struct tl_consumer_partition offsets[3] = {
		{"in", 0, 17, 0}, {"in", 1, -1, 0} /* not resolved: skipped */, {"in", 1, 4, 0}};
	struct tl_consumer_group_metadata group = {"g", 5, "m-1", NULL};
	ck_assert_int_eq(
		tl_producer_send_offsets_to_transaction(producer, offsets, 3, &group, WAIT_MS),
		TL_OK);
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.add_offsets_requests, 1);
	ck_assert_str_eq(fb.seen_offsets_group, "g");
	ck_assert_int_eq(fb.txn_commit_requests, 2);
	ck_assert_int_eq(fb.seen_txn_commit_version, 3); /* flexible, with KIP-447 fields */
	ck_assert_int_eq(fb.seen_generation_id, 5);
	ck_assert_str_eq(fb.seen_member_id, "m-1");
	ck_assert_int_eq(fb.txn_committed[0], 17);
	ck_assert_int_eq(fb.txn_committed[1], 4);
	ck_assert_int_eq(fb.commits, 1);
	pthread_mutex_unlock(&fb.lock);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(send_offsets_of_a_stale_member_is_abortable)
{
	fb.txn_commit_script[0] = TL_ERR_ILLEGAL_GENERATION;
	fb.txn_commit_script_count = 1;
	struct tl_producer *producer = txn_producer(NULL, NULL);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	struct tl_consumer_partition offsets[1] = {{"in", 0, 3, 0}};
	struct tl_consumer_group_metadata group = {"g", 1, "old", NULL};
	ck_assert_int_eq(
		tl_producer_send_offsets_to_transaction(producer, offsets, 1, &group, WAIT_MS),
		TL_ERR_TRANSACTION_ABORTABLE);
	ck_assert_ptr_nonnull(strstr(tl_producer_last_error(producer), "ILLEGAL_GENERATION"));
	ck_assert_int_eq(tl_producer_commit_transaction(producer, WAIT_MS),
			 TL_ERR_TRANSACTION_ABORTABLE);
	ck_assert_int_eq(tl_producer_abort_transaction(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(fake_get(&fb.aborts), 1);        /* AddOffsetsToTxn registered the txn */
	ck_assert_int_eq(fake_get(&fb.init_requests), 1); /* no record failed: same epoch */
	tl_producer_destroy(producer);
}
END_TEST

/* Answers the held Produce requests after 200 ms (while the abort waits for them). */
static void *release_held_later(void *arg)
{
	TL_UNUSED(arg);
	usleep(200 * 1000);
	pthread_mutex_lock(&fb.lock);
	for (int i = 0; i < fb.held_count; i++) {
		fake_send(fb.held[i].fd, fb.held[i].correlation_id, false, &fb.held[i].out);
		tl_buf_deinit(&fb.held[i].out);
	}
	fb.held_count = 0;
	fb.produce_gate = 0;
	pthread_mutex_unlock(&fb.lock);
	return NULL;
}

START_TEST(abort_fails_batches_answered_retriable_instead_of_resending)
{
	/* Two batches in flight when the abort starts; both come back NOT_LEADER. They are
	 * not sent again: they fail with OPERATION_NOT_ATTEMPTED and the abort goes on
	 * (it used to wait for delivery.timeout.ms, then fail them TIMED_OUT). */
	const char *kv[] = {"linger.ms",           "0",    "batch.size", "120",
			    "delivery.timeout.ms", "4000", NULL};
	struct reports reports = {0};
	struct tl_producer *producer = txn_producer(&reports, kv);
	ck_assert_int_eq(tl_producer_init_transactions(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(tl_producer_begin_transaction(producer), TL_OK);
	pthread_mutex_lock(&fb.lock);
	fb.produce_gate = 3; /* never reached: the thread below answers */
	fb.produce_script[0] = TL_ERR_NOT_LEADER_OR_FOLLOWER;
	fb.produce_script[1] = TL_ERR_NOT_LEADER_OR_FOLLOWER;
	fb.produce_script_count = 2;
	pthread_mutex_unlock(&fb.lock);
	char value[100];
	for (int i = 0; i < 2; i++) {
		memset(value, 'a' + i, sizeof(value) - 1);
		value[sizeof(value) - 1] = '\0';
		ck_assert_int_eq(send_to(producer, 0, value), TL_OK);
	}
	for (int i = 0; i < 500 && fake_get(&fb.held_count) < 2; i++)
		usleep(10000);
	ck_assert_int_eq(fake_get(&fb.held_count), 2);
	pthread_t releaser;
	pthread_create(&releaser, NULL, release_held_later, NULL);
	ck_assert_int_eq(tl_producer_abort_transaction(producer, WAIT_MS), TL_OK);
	pthread_join(releaser, NULL);
	(void)tl_producer_poll(producer, 0);
	ck_assert_int_eq(reports.failed, 2);
	ck_assert_int_eq(reports.last_err, TL_ERR_OPERATION_NOT_ATTEMPTED);
	tl_producer_destroy(producer);
}
END_TEST

static Suite *txn_suite(void)
{
	Suite *s = suite_create("producer_txn");
	TCase *tc = tcase_create("config");
	tcase_add_test(tc, transactional_id_conflicts_are_errors);
	tcase_add_test(tc, transaction_calls_need_a_transactional_id);
	suite_add_tcase(s, tc);
	tc = tcase_create("fake_broker");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, calls_out_of_order_fail_with_invalid_txn_state);
	tcase_add_test(tc, init_retries_busy_coordinator_answers_and_finds_it_again);
	tcase_add_test(tc, init_with_a_refused_timeout_is_fatal);
	tcase_add_test(tc, commit_adds_each_partition_before_its_first_batch);
	tcase_add_test(tc, failed_record_makes_commit_abortable_and_abort_bumps_the_epoch);
	tcase_add_test(tc, abort_fails_unsent_records_with_operation_not_attempted);
	tcase_add_test(tc, fenced_fails_every_pending_report_and_every_later_call);
	tcase_add_test(tc, fenced_end_txn_fails_the_commit);
	tcase_add_test(tc, send_offsets_adds_the_group_and_commits_with_its_metadata);
	tcase_add_test(tc, send_offsets_of_a_stale_member_is_abortable);
	tcase_add_test(tc, abort_fails_batches_answered_retriable_instead_of_resending);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(txn_suite());
}
