/* metrics_test.c - the Prometheus text writer: families, escaped labels, cumulative
 * histogram buckets ending in +Inf. */
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "broker/metrics.h"
#include "common/tests/check_run.h"

static struct tl_buf out;

static void setup(void)
{
	tl_buf_init(&out);
}

static void teardown(void)
{
	tl_buf_deinit(&out);
}

/* The buf's bytes as a NUL-terminated string. */
static const char *text(void)
{
	tl_buf_put(&out, "", 1);
	ck_assert(!out.failed);
	out.len--; /* keep the NUL out of later appends */
	return (const char *)out.data;
}

START_TEST(family_writes_help_then_type)
{
	tl_prom_family(&out, "tally_x_total", "counter", "Things.\nMore \\ things.");
	tl_prom_u64(&out, "tally_x_total", NULL, 42);
	ck_assert_str_eq(text(), "# HELP tally_x_total Things.\\nMore \\\\ things.\n"
				 "# TYPE tally_x_total counter\n"
				 "tally_x_total 42\n");
}
END_TEST

START_TEST(label_values_are_escaped)
{
	char labels[64] = "";
	ck_assert(tl_prom_label(labels, sizeof(labels), "topic", "a\"b\\c\nd"));
	ck_assert(tl_prom_label(labels, sizeof(labels), "code", "6"));
	ck_assert_str_eq(labels, "topic=\"a\\\"b\\\\c\\nd\",code=\"6\"");
	tl_prom_u64(&out, "m", labels, 1);
	ck_assert_str_eq(text(), "m{topic=\"a\\\"b\\\\c\\nd\",code=\"6\"} 1\n");
}
END_TEST

START_TEST(a_label_that_does_not_fit_leaves_the_labels_unchanged)
{
	char labels[16] = "";
	ck_assert(tl_prom_label(labels, sizeof(labels), "a", "b"));
	ck_assert(!tl_prom_label(labels, sizeof(labels), "topic", "far-too-long-a-name"));
	ck_assert_str_eq(labels, "a=\"b\"");
}
END_TEST

START_TEST(histogram_buckets_are_cumulative_and_end_in_inf)
{
	struct tl_hist h;
	memset(&h, 0, sizeof(h));
	tl_hist_add(&h, 3);    /* below 4 us */
	tl_hist_add(&h, 5);    /* below 8 us */
	tl_hist_add(&h, 7);    /* below 8 us */
	tl_hist_add(&h, 1000); /* past the top bucket */
	tl_prom_hist(&out, "t_seconds", "api=\"P\"", &h, 1e-6, false, 2, 3);
	ck_assert_str_eq(text(), "t_seconds_bucket{api=\"P\",le=\"4e-06\"} 1\n"
				 "t_seconds_bucket{api=\"P\",le=\"8e-06\"} 3\n"
				 "t_seconds_bucket{api=\"P\",le=\"+Inf\"} 4\n"
				 "t_seconds_sum{api=\"P\"} 0.001015\n"
				 "t_seconds_count{api=\"P\"} 4\n");
}
END_TEST

/* Bytes are whole numbers: bucket k holds the values up to 2^k - 1, exactly. */
START_TEST(integral_histograms_bound_buckets_at_two_to_the_k_minus_one)
{
	struct tl_hist h;
	memset(&h, 0, sizeof(h));
	tl_hist_add(&h, 63);
	tl_hist_add(&h, 64);
	tl_hist_add(&h, 127);
	tl_prom_hist(&out, "b_bytes", NULL, &h, 1, true, 6, 7);
	ck_assert_str_eq(text(), "b_bytes_bucket{le=\"63\"} 1\n"
				 "b_bytes_bucket{le=\"127\"} 3\n"
				 "b_bytes_bucket{le=\"+Inf\"} 3\n"
				 "b_bytes_sum 254\n"
				 "b_bytes_count 3\n");
}
END_TEST

START_TEST(gauges_print_as_floats)
{
	tl_prom_f64(&out, "g", "", 0.5);
	tl_prom_f64(&out, "g", NULL, 12345678);
	ck_assert_str_eq(text(), "g 0.5\ng 12345678\n");
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("text");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, family_writes_help_then_type);
	tcase_add_test(tc, label_values_are_escaped);
	tcase_add_test(tc, a_label_that_does_not_fit_leaves_the_labels_unchanged);
	tcase_add_test(tc, histogram_buckets_are_cumulative_and_end_in_inf);
	tcase_add_test(tc, integral_histograms_bound_buckets_at_two_to_the_k_minus_one);
	tcase_add_test(tc, gauges_print_as_floats);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(metrics_suite());
}
