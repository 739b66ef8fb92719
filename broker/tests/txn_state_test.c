/* txn_state_test.c - the transaction coordinator's state machine: one test per
 * transition, and the refusals (busy, deciding, wrong decision, Dead). */
#include <stdlib.h>

#include <check.h>

#include "broker/txn_state.h"
#include "common/tests/check_run.h"

static struct tl_txn_step step(enum tl_txn_state state, enum tl_txn_event event)
{
	return tl_txn_step(state, false, event);
}

#define ck_assert_step(s, next_, change_, bump_, err_)                                             \
	do {                                                                                       \
		struct tl_txn_step got_ = (s);                                                     \
		ck_assert_int_eq(got_.next, (next_));                                              \
		ck_assert_int_eq(got_.change, (change_));                                          \
		ck_assert_int_eq(got_.bump_epoch, (bump_));                                        \
		ck_assert_int_eq(got_.err, (err_));                                                \
	} while (0)

START_TEST(init_bumps_the_epoch_of_an_idle_transaction)
{
	ck_assert_step(step(TL_TXN_EMPTY, TL_TXN_EV_INIT), TL_TXN_EMPTY, true, true, TL_OK);
	ck_assert_step(step(TL_TXN_COMPLETE_COMMIT, TL_TXN_EV_INIT), TL_TXN_EMPTY, true, true,
		       TL_OK);
	ck_assert_step(step(TL_TXN_COMPLETE_ABORT, TL_TXN_EV_INIT), TL_TXN_EMPTY, true, true,
		       TL_OK);
}
END_TEST

START_TEST(init_during_an_ongoing_transaction_fences_and_aborts_it)
{
	ck_assert_step(step(TL_TXN_ONGOING, TL_TXN_EV_INIT), TL_TXN_PREPARE_ABORT, true, true,
		       TL_ERR_CONCURRENT_TRANSACTIONS);
}
END_TEST

START_TEST(add_starts_or_extends_a_transaction)
{
	ck_assert_step(step(TL_TXN_EMPTY, TL_TXN_EV_ADD), TL_TXN_ONGOING, true, false, TL_OK);
	ck_assert_step(step(TL_TXN_COMPLETE_COMMIT, TL_TXN_EV_ADD), TL_TXN_ONGOING, true, false,
		       TL_OK);
	ck_assert_step(step(TL_TXN_COMPLETE_ABORT, TL_TXN_EV_ADD), TL_TXN_ONGOING, true, false,
		       TL_OK);
	ck_assert_step(step(TL_TXN_ONGOING, TL_TXN_EV_ADD), TL_TXN_ONGOING, false, false, TL_OK);
}
END_TEST

START_TEST(end_txn_prepares_the_decision)
{
	ck_assert_step(step(TL_TXN_ONGOING, TL_TXN_EV_COMMIT), TL_TXN_PREPARE_COMMIT, true, false,
		       TL_OK);
	ck_assert_step(step(TL_TXN_ONGOING, TL_TXN_EV_ABORT), TL_TXN_PREPARE_ABORT, true, false,
		       TL_OK);
}
END_TEST

START_TEST(end_txn_retry_of_a_completed_decision_succeeds_and_the_opposite_is_refused)
{
	ck_assert_step(step(TL_TXN_COMPLETE_COMMIT, TL_TXN_EV_COMMIT), TL_TXN_COMPLETE_COMMIT,
		       false, false, TL_OK);
	ck_assert_step(step(TL_TXN_COMPLETE_ABORT, TL_TXN_EV_ABORT), TL_TXN_COMPLETE_ABORT, false,
		       false, TL_OK);
	ck_assert_step(step(TL_TXN_COMPLETE_COMMIT, TL_TXN_EV_ABORT), TL_TXN_COMPLETE_COMMIT, false,
		       false, TL_ERR_INVALID_TXN_STATE);
	ck_assert_step(step(TL_TXN_COMPLETE_ABORT, TL_TXN_EV_COMMIT), TL_TXN_COMPLETE_ABORT, false,
		       false, TL_ERR_INVALID_TXN_STATE);
	ck_assert_step(step(TL_TXN_EMPTY, TL_TXN_EV_COMMIT), TL_TXN_EMPTY, false, false,
		       TL_ERR_INVALID_TXN_STATE);
}
END_TEST

START_TEST(markers_complete_the_decision)
{
	ck_assert_step(step(TL_TXN_PREPARE_COMMIT, TL_TXN_EV_MARKERS_DONE), TL_TXN_COMPLETE_COMMIT,
		       true, false, TL_OK);
	ck_assert_step(step(TL_TXN_PREPARE_ABORT, TL_TXN_EV_MARKERS_DONE), TL_TXN_COMPLETE_ABORT,
		       true, false, TL_OK);
	ck_assert_step(step(TL_TXN_PREPARE_EPOCH_FENCE, TL_TXN_EV_MARKERS_DONE),
		       TL_TXN_COMPLETE_ABORT, true, false, TL_OK);
	ck_assert_step(step(TL_TXN_ONGOING, TL_TXN_EV_MARKERS_DONE), TL_TXN_ONGOING, false, false,
		       TL_ERR_INVALID_TXN_STATE);
}
END_TEST

START_TEST(client_calls_while_deciding_or_busy_are_retried_later)
{
	enum tl_txn_event events[] = {TL_TXN_EV_INIT, TL_TXN_EV_ADD, TL_TXN_EV_COMMIT,
				      TL_TXN_EV_ABORT};
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		ck_assert_step(step(TL_TXN_PREPARE_COMMIT, events[i]), TL_TXN_PREPARE_COMMIT, false,
			       false, TL_ERR_CONCURRENT_TRANSACTIONS);
		ck_assert_step(step(TL_TXN_PREPARE_ABORT, events[i]), TL_TXN_PREPARE_ABORT, false,
			       false, TL_ERR_CONCURRENT_TRANSACTIONS);
		ck_assert_step(tl_txn_step(TL_TXN_ONGOING, true, events[i]), TL_TXN_ONGOING, false,
			       false, TL_ERR_CONCURRENT_TRANSACTIONS);
	}
}
END_TEST

START_TEST(timeout_aborts_only_an_ongoing_transaction_with_a_bump)
{
	ck_assert_step(step(TL_TXN_ONGOING, TL_TXN_EV_TIMEOUT), TL_TXN_PREPARE_ABORT, true, true,
		       TL_OK);
	ck_assert_step(step(TL_TXN_EMPTY, TL_TXN_EV_TIMEOUT), TL_TXN_EMPTY, false, false, TL_OK);
	ck_assert_step(tl_txn_step(TL_TXN_ONGOING, true, TL_TXN_EV_TIMEOUT), TL_TXN_ONGOING, false,
		       false, TL_OK);
}
END_TEST

START_TEST(idle_ids_expire_and_dead_ids_refuse_clients)
{
	ck_assert_step(step(TL_TXN_EMPTY, TL_TXN_EV_EXPIRE), TL_TXN_DEAD, true, false, TL_OK);
	ck_assert_step(step(TL_TXN_COMPLETE_ABORT, TL_TXN_EV_EXPIRE), TL_TXN_DEAD, true, false,
		       TL_OK);
	ck_assert_step(step(TL_TXN_ONGOING, TL_TXN_EV_EXPIRE), TL_TXN_ONGOING, false, false, TL_OK);
	ck_assert_step(step(TL_TXN_DEAD, TL_TXN_EV_ADD), TL_TXN_DEAD, false, false,
		       TL_ERR_INVALID_PRODUCER_ID_MAPPING);
	ck_assert_step(step(TL_TXN_DEAD, TL_TXN_EV_INIT), TL_TXN_DEAD, false, false,
		       TL_ERR_CONCURRENT_TRANSACTIONS);
}
END_TEST

START_TEST(states_have_kafkas_names)
{
	ck_assert_str_eq(tl_txn_state_name(TL_TXN_PREPARE_COMMIT), "PrepareCommit");
	ck_assert_str_eq(tl_txn_state_name(TL_TXN_COMPLETE_ABORT), "CompleteAbort");
	ck_assert_str_eq(tl_txn_state_name((enum tl_txn_state)42), "Unknown");
	ck_assert(tl_txn_state_is_deciding(TL_TXN_PREPARE_EPOCH_FENCE));
	ck_assert(!tl_txn_state_is_deciding(TL_TXN_ONGOING));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("txn_state");
	TCase *tc = tcase_create("transitions");
	tcase_add_test(tc, init_bumps_the_epoch_of_an_idle_transaction);
	tcase_add_test(tc, init_during_an_ongoing_transaction_fences_and_aborts_it);
	tcase_add_test(tc, add_starts_or_extends_a_transaction);
	tcase_add_test(tc, end_txn_prepares_the_decision);
	tcase_add_test(tc,
		       end_txn_retry_of_a_completed_decision_succeeds_and_the_opposite_is_refused);
	tcase_add_test(tc, markers_complete_the_decision);
	tcase_add_test(tc, client_calls_while_deciding_or_busy_are_retried_later);
	tcase_add_test(tc, timeout_aborts_only_an_ongoing_transaction_with_a_bump);
	tcase_add_test(tc, idle_ids_expire_and_dead_ids_refuse_clients);
	tcase_add_test(tc, states_have_kafkas_names);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
