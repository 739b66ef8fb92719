/* producer_state_test.c - the idempotent producer table: window of five, sequence
 * wrap-around, epochs, expiry, snapshot round trip and damaged snapshots. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "common/tests/check_run.h"
#include "log/producer_state.h"

static struct tl_pstate ps;

static void setup(void)
{
	ck_assert_int_eq(tl_pstate_init(&ps), TL_OK);
}

static void teardown(void)
{
	tl_pstate_deinit(&ps);
}

/* A header of @count records from @pid/@epoch starting at @seq, placed at @offset. */
static struct tl_batch_header batch(int64_t pid, int16_t epoch, int32_t seq, int32_t count,
				    int64_t offset)
{
	struct tl_batch_header h;
	memset(&h, 0, sizeof(h));
	h.producer_id = pid;
	h.producer_epoch = epoch;
	h.base_sequence = seq;
	h.last_offset_delta = count - 1;
	h.records_count = count;
	h.base_offset = offset;
	h.max_timestamp = 1000;
	h.magic = 2;
	return h;
}

/* Checks then records, as the append path does; returns the check's verdict. */
static tl_err append(struct tl_batch_header h)
{
	struct tl_pstate_batch dup;
	tl_err err = tl_pstate_check(&ps, &h, &dup);
	if (err == TL_OK)
		ck_assert_int_eq(tl_pstate_update(&ps, &h), TL_OK);
	return err;
}

START_TEST(new_producer_must_start_at_sequence_zero)
{
	ck_assert_int_eq(append(batch(7, 0, 5, 1, 0)), TL_ERR_UNKNOWN_PRODUCER_ID);
	ck_assert_int_eq(append(batch(7, 0, 0, 3, 0)), TL_OK);
}
END_TEST

START_TEST(in_sequence_batches_append_and_gaps_are_rejected)
{
	ck_assert_int_eq(append(batch(7, 0, 0, 3, 0)), TL_OK);
	ck_assert_int_eq(append(batch(7, 0, 3, 2, 3)), TL_OK);
	ck_assert_int_eq(append(batch(7, 0, 6, 1, 5)), TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	ck_assert_int_eq(append(batch(7, 0, 5, 1, 5)), TL_OK);
}
END_TEST

START_TEST(duplicate_of_each_of_last_five_batches_returns_original_offsets)
{
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(append(batch(7, 0, i * 2, 2, 100 + i * 2)), TL_OK);
	/* Batches 2..6 are cached; 0 and 1 fell out of the window. */
	for (int i = 2; i < 7; i++) {
		struct tl_batch_header h = batch(7, 0, i * 2, 2, -1);
		struct tl_pstate_batch dup;
		ck_assert_int_eq(tl_pstate_check(&ps, &h, &dup), TL_ERR_EXISTS);
		ck_assert_int_eq(dup.first_offset, 100 + i * 2);
		ck_assert_int_eq(dup.last_offset, 101 + i * 2);
	}
	struct tl_batch_header old = batch(7, 0, 2, 2, -1);
	struct tl_pstate_batch dup;
	ck_assert_int_eq(tl_pstate_check(&ps, &old, &dup), TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
}
END_TEST

START_TEST(sequence_wraps_from_int32_max_to_zero)
{
	ck_assert_int_eq(tl_pstate_last_seq(INT32_MAX - 1, 3), 1);
	ck_assert_int_eq(append(batch(9, 0, 0, 1, 0)), TL_OK);
	/* Pretend the producer got near the top: bump with a batch ending at INT32_MAX. */
	struct tl_pstate_entry *e = tl_pstate_find(&ps, 9);
	e->batches[0].last_seq = INT32_MAX - 2;
	ck_assert_int_eq(append(batch(9, 0, INT32_MAX - 1, 4, 1)), TL_OK); /* ends at 1 */
	ck_assert_int_eq(append(batch(9, 0, 2, 1, 5)), TL_OK);
	struct tl_batch_header again = batch(9, 0, INT32_MAX - 1, 4, -1);
	struct tl_pstate_batch dup;
	ck_assert_int_eq(tl_pstate_check(&ps, &again, &dup), TL_ERR_EXISTS);
	ck_assert_int_eq(dup.first_offset, 1);
}
END_TEST

START_TEST(older_epoch_is_fenced_and_newer_epoch_restarts_at_zero)
{
	ck_assert_int_eq(append(batch(3, 1, 0, 1, 0)), TL_OK);
	ck_assert_int_eq(append(batch(3, 0, 1, 1, 1)), TL_ERR_INVALID_PRODUCER_EPOCH);
	ck_assert_int_eq(append(batch(3, 2, 5, 1, 1)), TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	ck_assert_int_eq(append(batch(3, 2, 0, 1, 1)), TL_OK);
	/* The old epoch's batches cannot be matched as duplicates any more. */
	struct tl_batch_header h = batch(3, 1, 0, 1, -1);
	struct tl_pstate_batch dup;
	ck_assert_int_eq(tl_pstate_check(&ps, &h, &dup), TL_ERR_INVALID_PRODUCER_EPOCH);
}
END_TEST

START_TEST(idle_producers_expire_but_open_transactions_do_not)
{
	ck_assert_int_eq(append(batch(1, 0, 0, 1, 0)), TL_OK);
	struct tl_batch_header txn = batch(2, 0, 0, 1, 1);
	txn.attributes = TL_BATCH_ATTR_TRANSACTIONAL;
	ck_assert_int_eq(append(txn), TL_OK);
	ck_assert_int_eq(tl_pstate_first_open_txn(&ps), 1);
	ck_assert_uint_eq(tl_pstate_expire(&ps, 1000 + 86400001, 86400000), 1);
	ck_assert_ptr_null(tl_pstate_find(&ps, 1));
	ck_assert_ptr_nonnull(tl_pstate_find(&ps, 2));
	/* After expiry the producer is unknown again. */
	ck_assert_int_eq(append(batch(1, 0, 1, 1, 2)), TL_ERR_UNKNOWN_PRODUCER_ID);
}
END_TEST

START_TEST(control_batch_closes_the_open_transaction)
{
	struct tl_batch_header txn = batch(2, 0, 0, 1, 10);
	txn.attributes = TL_BATCH_ATTR_TRANSACTIONAL;
	ck_assert_int_eq(append(txn), TL_OK);
	struct tl_batch_header marker = batch(2, 0, -1, 1, 11);
	marker.attributes = TL_BATCH_ATTR_TRANSACTIONAL | TL_BATCH_ATTR_CONTROL;
	ck_assert_int_eq(tl_pstate_update(&ps, &marker), TL_OK);
	ck_assert_int_eq(tl_pstate_first_open_txn(&ps), -1);
}
END_TEST

START_TEST(snapshot_round_trip_keeps_every_entry)
{
	for (int64_t pid = 0; pid < 300; pid++)
		for (int i = 0; i < (int)(pid % 7); i++)
			ck_assert_int_eq(append(batch(pid, (int16_t)(pid % 3), i, 1, pid * 10 + i)),
					 TL_OK);
	uint8_t *data;
	size_t len;
	ck_assert_int_eq(tl_pstate_encode(&ps, 4242, &data, &len), TL_OK);
	struct tl_pstate copy;
	ck_assert_int_eq(tl_pstate_init(&copy), TL_OK);
	int64_t offset = 0;
	ck_assert_int_eq(tl_pstate_decode(&copy, data, len, &offset), TL_OK);
	ck_assert_int_eq(offset, 4242);
	ck_assert_uint_eq(copy.count, ps.count);
	for (int64_t pid = 0; pid < 300; pid++) {
		struct tl_pstate_entry *a = tl_pstate_find(&ps, pid),
				       *b = tl_pstate_find(&copy, pid);
		if (!a) {
			ck_assert_ptr_null(b);
			continue;
		}
		ck_assert_ptr_nonnull(b);
		ck_assert_int_eq(a->epoch, b->epoch);
		ck_assert_uint_eq(a->batch_count, b->batch_count);
		ck_assert_mem_eq(a->batches, b->batches, sizeof(a->batches[0]) * a->batch_count);
	}
	tl_pstate_deinit(&copy);
	free(data);
}
END_TEST

START_TEST(truncated_or_garbled_snapshot_is_refused)
{
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(append(batch(5, 0, i, 1, i)), TL_OK);
	uint8_t *data;
	size_t len;
	ck_assert_int_eq(tl_pstate_encode(&ps, 4, &data, &len), TL_OK);
	struct tl_pstate copy;
	ck_assert_int_eq(tl_pstate_init(&copy), TL_OK);
	int64_t offset;
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_int_eq(tl_pstate_decode(&copy, data, cut, &offset), TL_ERR_CORRUPT);
	for (size_t i = 0; i < len; i++) {
		data[i] ^= 0x40;
		ck_assert_int_eq(tl_pstate_decode(&copy, data, len, &offset), TL_ERR_CORRUPT);
		data[i] ^= 0x40;
	}
	ck_assert_int_eq(tl_pstate_decode(&copy, data, len, &offset), TL_OK);
	tl_pstate_deinit(&copy);
	free(data);
}
END_TEST

static Suite *pstate_suite(void)
{
	Suite *s = suite_create("producer_state");
	TCase *tc = tcase_create("window");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, new_producer_must_start_at_sequence_zero);
	tcase_add_test(tc, in_sequence_batches_append_and_gaps_are_rejected);
	tcase_add_test(tc, duplicate_of_each_of_last_five_batches_returns_original_offsets);
	tcase_add_test(tc, sequence_wraps_from_int32_max_to_zero);
	tcase_add_test(tc, older_epoch_is_fenced_and_newer_epoch_restarts_at_zero);
	suite_add_tcase(s, tc);
	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, idle_producers_expire_but_open_transactions_do_not);
	tcase_add_test(tc, control_batch_closes_the_open_transaction);
	suite_add_tcase(s, tc);
	tc = tcase_create("snapshot");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, snapshot_round_trip_keeps_every_entry);
	tcase_add_test(tc, truncated_or_garbled_snapshot_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(pstate_suite());
}
