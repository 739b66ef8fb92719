/* histogram_test.c - bucket bounds, quantile ranks, the exact max, values past the top. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "common/histogram.h"
#include "common/tests/check_run.h"

static struct tl_hist h;

static void setup(void)
{
	memset(&h, 0, sizeof(h));
}

START_TEST(empty_histogram_has_no_quantiles)
{
	ck_assert_uint_eq(tl_hist_quantile(&h, 0.5), 0);
	ck_assert_uint_eq(tl_hist_quantile(&h, 1.0), 0);
}
END_TEST

START_TEST(small_values_are_exact)
{
	for (uint64_t v = 0; v < 2 * TL_HIST_SUB; v++)
		tl_hist_add(&h, v);
	ck_assert_uint_eq(h.count, 2 * TL_HIST_SUB);
	ck_assert_uint_eq(tl_hist_quantile(&h, 0.0), 0);
	ck_assert_uint_eq(tl_hist_quantile(&h, 0.5), TL_HIST_SUB - 1);
	ck_assert_uint_eq(tl_hist_quantile(&h, 1.0), 2 * TL_HIST_SUB - 1);
}
END_TEST

/* Every quantile of 1..100000 lies in [exact, exact * 1.125]. */
START_TEST(quantiles_are_within_one_bucket_above_the_exact_value)
{
	const uint64_t n = 100000;
	for (uint64_t v = 1; v <= n; v++)
		tl_hist_add(&h, v);
	const double qs[] = {0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999};
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		uint64_t exact = (uint64_t)(qs[i] * (double)n);
		uint64_t got = tl_hist_quantile(&h, qs[i]);
		ck_assert_msg(got >= exact && (double)got <= (double)exact * 1.125,
			      "q=%g exact=%llu got=%llu", qs[i], (unsigned long long)exact,
			      (unsigned long long)got);
	}
	ck_assert_uint_eq(tl_hist_quantile(&h, 1.0), n);
}
END_TEST

START_TEST(max_is_exact_and_caps_the_top_quantile)
{
	tl_hist_add(&h, 1000);
	tl_hist_add(&h, 1001);
	ck_assert_uint_eq(h.max, 1001);
	/* 1000 and 1001 share a bucket whose top is above both. */
	ck_assert_uint_eq(tl_hist_quantile(&h, 0.5), 1001);
	ck_assert_uint_eq(tl_hist_quantile(&h, 1.0), 1001);
}
END_TEST

START_TEST(values_past_the_top_count_in_the_last_bucket)
{
	tl_hist_add(&h, 5);
	tl_hist_add(&h, UINT64_MAX);
	ck_assert_uint_eq(h.count, 2);
	ck_assert_uint_eq(h.max, UINT64_MAX);
	ck_assert_uint_eq(tl_hist_quantile(&h, 0.5), 5);
	ck_assert_uint_ge(tl_hist_quantile(&h, 1.0), TL_HIST_VALUE_MAX);
	ck_assert_uint_eq(h.buckets[TL_HIST_BUCKETS - 1], 1);
}
END_TEST

/* Every power of two starts a bucket, so cumulative counts below it are exact. */
START_TEST(counts_below_powers_of_two_are_exact)
{
	for (uint64_t v = 0; v < 5000; v++)
		tl_hist_add(&h, v);
	for (uint64_t bound = 1; bound <= 8192; bound *= 2)
		ck_assert_uint_eq(tl_hist_count_below(&h, bound), bound < 5000 ? bound : 5000);
	ck_assert_uint_eq(tl_hist_count_below(&h, UINT64_MAX), 5000);
	ck_assert_uint_eq(h.sum, 5000 * 4999 / 2);
}
END_TEST

START_TEST(merge_adds_counts_sums_and_keeps_the_larger_max)
{
	struct tl_hist other;
	memset(&other, 0, sizeof(other));
	tl_hist_add(&h, 3);
	tl_hist_add(&other, 100);
	tl_hist_add(&other, 7);
	tl_hist_merge(&h, &other);
	ck_assert_uint_eq(h.count, 3);
	ck_assert_uint_eq(h.sum, 110);
	ck_assert_uint_eq(h.max, 100);
	ck_assert_uint_eq(tl_hist_count_below(&h, 8), 2);
}
END_TEST

START_TEST(zeros_added_at_once_equal_zeros_added_one_by_one)
{
	struct tl_hist one_by_one;
	memset(&one_by_one, 0, sizeof(one_by_one));
	tl_hist_add(&h, 40);
	tl_hist_add(&one_by_one, 40);
	tl_hist_add_zeros(&h, 5);
	for (int i = 0; i < 5; i++)
		tl_hist_add(&one_by_one, 0);
	ck_assert_mem_eq(&h, &one_by_one, sizeof(h));
	ck_assert_uint_eq(tl_hist_count_below(&h, 1), 5);
}
END_TEST

static Suite *hist_suite(void)
{
	Suite *s = suite_create("histogram");
	TCase *tc = tcase_create("quantiles");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, empty_histogram_has_no_quantiles);
	tcase_add_test(tc, small_values_are_exact);
	tcase_add_test(tc, quantiles_are_within_one_bucket_above_the_exact_value);
	tcase_add_test(tc, max_is_exact_and_caps_the_top_quantile);
	tcase_add_test(tc, values_past_the_top_count_in_the_last_bucket);
	tcase_add_test(tc, counts_below_powers_of_two_are_exact);
	tcase_add_test(tc, merge_adds_counts_sums_and_keeps_the_larger_max);
	tcase_add_test(tc, zeros_added_at_once_equal_zeros_added_one_by_one);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(hist_suite());
}
