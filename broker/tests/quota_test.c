/* quota_test.c - Kafka's rate and throttle arithmetic, entity precedence, the text form. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "broker/quota.h"
#include "common/tests/check_run.h"

static const struct tl_quota_part absent = {0};
static const struct tl_quota_part any_default = {.present = true, .is_default = true};

static struct tl_quota_part named(const char *name)
{
	return (struct tl_quota_part){.present = true, .name = (char *)(uintptr_t)name};
}

START_TEST(a_new_rate_counts_at_least_one_window)
{
	struct tl_quota_rate rate;
	tl_quota_rate_init(&rate, 11, 1000, 5000);
	tl_quota_rate_record(&rate, 10000, 5000);
	/* 10000 bytes at once: over the 1 s floor, not the 0 s elapsed; 500 ms later the
	 * span is 1.5 s (Kafka's padding: elapsed plus the missing whole windows). */
	ck_assert_int_eq(tl_quota_rate_window_ms(&rate, 5000), 1000);
	ck_assert(fabs(tl_quota_rate_measure(&rate, 5000) - 10000.0) < 1e-9);
	ck_assert_int_eq(tl_quota_rate_window_ms(&rate, 5500), 1500);
	ck_assert_int_eq(tl_quota_rate_window_ms(&rate, 7500), 2500);
	/* 12 s later every sample is older than 11 windows: all reset. */
	ck_assert(fabs(tl_quota_rate_measure(&rate, 17000)) < 1e-9);
}
END_TEST

START_TEST(a_steady_rate_is_measured_over_the_elapsed_samples)
{
	struct tl_quota_rate rate;
	tl_quota_rate_init(&rate, 11, 1000, 0);
	/* 1000 bytes every 100 ms for 30 s: 10000 B/s. */
	for (int64_t t = 0; t < 30000; t += 100)
		tl_quota_rate_record(&rate, 1000, t);
	double r = tl_quota_rate_measure(&rate, 29950);
	ck_assert_msg(fabs(r - 10000) < 1000, "rate %f", r);
	ck_assert_int_ge(tl_quota_rate_window_ms(&rate, 29950), 10000);
	ck_assert_int_le(tl_quota_rate_window_ms(&rate, 29950), 11000);
}
END_TEST

START_TEST(throttle_time_is_kafkas_formula)
{
	/* QuotaUtilsTest: (observed - quota) / quota * window. */
	ck_assert_int_eq(tl_quota_throttle_ms(16.5, 16.5, 1000), 0);
	ck_assert_int_eq(tl_quota_throttle_ms(10, 20, 1000), 0);
	ck_assert_int_eq(tl_quota_throttle_ms(30, 20, 1000), 500);
	ck_assert_int_eq(tl_quota_throttle_ms(2000, 1000, 11000), 11000);
	ck_assert_int_eq(tl_quota_throttle_ms(1100, 1000, 10000), 1000);
}
END_TEST

START_TEST(precedence_follows_kafkas_eight_levels)
{
	struct tl_quotas q;
	tl_quotas_init(&q, 11, 1000);
	struct tl_quota_part alice = named("alice"), app = named("app");
	struct tl_str user = tl_str_of("alice"), client = tl_str_of("app");
	double v;
	struct tl_str ut, ct;
	ck_assert(!tl_quotas_resolve(&q, user, client, TL_QUOTA_PRODUCER_BYTE_RATE, &v, &ut, &ct));
	const struct {
		const struct tl_quota_part *u, *c;
		double value;
	} levels[] = {
		{&absent, &any_default, 8}, {&absent, &app, 7},
		{&any_default, &absent, 6}, {&any_default, &any_default, 5},
		{&any_default, &app, 4},    {&alice, &absent, 3},
		{&alice, &any_default, 2},  {&alice, &app, 1},
	};
	/* Added weakest first: each new one wins. */
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		ck_assert_int_eq(tl_quotas_set(&q, levels[i].u, levels[i].c,
					       TL_QUOTA_PRODUCER_BYTE_RATE, levels[i].value, false),
				 TL_OK);
		ck_assert(tl_quotas_resolve(&q, user, client, TL_QUOTA_PRODUCER_BYTE_RATE, &v, &ut,
					    &ct));
		ck_assert(v == levels[i].value);
	}
	/* Another client of alice: user+<default> (2); another user: <default>+<default>
	 * is beaten by <default>+client-id (4) for app. */
	ck_assert(tl_quotas_resolve(&q, user, tl_str_of("other"), TL_QUOTA_PRODUCER_BYTE_RATE, &v,
				    &ut, &ct));
	ck_assert(v == 2);
	ck_assert(tl_quotas_resolve(&q, tl_str_of("bob"), client, TL_QUOTA_PRODUCER_BYTE_RATE, &v,
				    &ut, &ct));
	ck_assert(v == 4);
	/* Keys resolve separately: no consumer quota anywhere. */
	ck_assert(!tl_quotas_resolve(&q, user, client, TL_QUOTA_CONSUMER_BYTE_RATE, &v, &ut, &ct));
	/* Removing the last key drops the entity. */
	ck_assert_int_eq(q.entity_count, 8);
	tl_quotas_set(&q, &alice, &app, TL_QUOTA_PRODUCER_BYTE_RATE, 0, true);
	ck_assert_int_eq(q.entity_count, 7);
	tl_quotas_deinit(&q);
}
END_TEST

START_TEST(a_user_quota_is_shared_by_its_clients_a_default_one_is_not)
{
	struct tl_quotas q;
	tl_quotas_init(&q, 11, 1000);
	struct tl_quota_part alice = named("alice");
	tl_quotas_set(&q, &alice, &absent, TL_QUOTA_PRODUCER_BYTE_RATE, 1000, false);
	tl_quotas_set(&q, &absent, &any_default, TL_QUOTA_PRODUCER_BYTE_RATE, 1000, false);
	/* alice's two clients share one sensor: 600 + 600 bytes over the 1 s floor is
	 * 1200 B/s, over the quota. */
	ck_assert_int_eq(tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("alice"),
					  tl_str_of("a"), 600, 0),
			 0);
	int32_t t = tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("alice"),
				     tl_str_of("b"), 600, 0);
	ck_assert_int_eq(t, 200); /* (1200 - 1000) / 1000 * 1000 */
	/* Under the client-id default each id has its own. */
	ck_assert_int_eq(tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("bob"),
					  tl_str_of("a"), 600, 0),
			 0);
	ck_assert_int_eq(tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("bob"),
					  tl_str_of("b"), 600, 0),
			 0);
	ck_assert_int_eq(q.sensor_count, 3);
	/* Unrecording takes it back. */
	tl_quotas_unrecord(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("alice"), tl_str_of("b"), 600,
			   0);
	ck_assert_int_eq(tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("alice"),
					  tl_str_of("b"), 1, 0),
			 0);
	/* An hour idle: the sensors go. */
	tl_quotas_expire(&q, TL_QUOTA_SENSOR_IDLE_MS + 1);
	ck_assert_int_eq(q.sensor_count, 0);
	tl_quotas_deinit(&q);
}
END_TEST

START_TEST(a_client_held_to_its_throttle_averages_the_quota)
{
	/* A client that sends whenever it is not throttled, in requests of 16 kB, 100 kB
	 * or 1 MB against 1 MB/s, for 70 s: every 30 s span holds the quota to 5 %, from
	 * the start or later (Kafka's num - 1 window floor gives 0.74-1.20 here). */
	static const double sizes[] = {16e3, 1e5, 1e6};
	static double sent_ms[70000];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct tl_quotas q;
		tl_quotas_init(&q, 11, 1000);
		tl_quotas_set(&q, &absent, &(struct tl_quota_part){.present = true, .name = "fast"},
			      TL_QUOTA_PRODUCER_BYTE_RATE, 1e6, false);
		memset(sent_ms, 0, sizeof(sent_ms));
		for (int64_t t = 0; t < 70000;) {
			sent_ms[t] += sizes[i];
			int32_t throttle = tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE,
							    tl_str_of("ANONYMOUS"),
							    tl_str_of("fast"), sizes[i], t);
			t += throttle > 0 ? throttle : 1;
		}
		for (int start = 0; start + 30000 <= 70000; start += 250) {
			double sum = 0;
			for (int t = start; t < start + 30000; t++)
				sum += sent_ms[t];
			double ratio = sum / 30e6;
			ck_assert_msg(ratio > 0.95 && ratio < 1.05, "size %g from %d ms: %f",
				      sizes[i], start, ratio);
		}
		tl_quotas_deinit(&q);
	}
}
END_TEST

START_TEST(the_text_form_round_trips_odd_names_and_defaults)
{
	struct tl_quotas q;
	tl_quotas_init(&q, 11, 1000);
	struct tl_quota_part odd = named("a b=%<default>\n");
	tl_quotas_set(&q, &odd, &any_default, TL_QUOTA_CONSUMER_BYTE_RATE, 2048, false);
	tl_quotas_set(&q, &odd, &any_default, TL_QUOTA_REQUEST_PERCENTAGE, 12.5, false);
	tl_quotas_set(&q, &absent, &any_default, TL_QUOTA_PRODUCER_BYTE_RATE, 1024, false);
	char *text = tl_quotas_format(&q);
	ck_assert_ptr_nonnull(text);
	struct tl_quotas back;
	tl_quotas_init(&back, 11, 1000);
	ck_assert_int_eq(tl_quotas_parse(&back, text), TL_OK);
	ck_assert_int_eq(back.entity_count, 2);
	struct tl_quota_entity *e = tl_quotas_find(&back, &odd, &any_default);
	ck_assert_ptr_nonnull(e);
	ck_assert(e->has[TL_QUOTA_CONSUMER_BYTE_RATE] &&
		  e->value[TL_QUOTA_CONSUMER_BYTE_RATE] == 2048);
	ck_assert(e->has[TL_QUOTA_REQUEST_PERCENTAGE] &&
		  e->value[TL_QUOTA_REQUEST_PERCENTAGE] == 12.5);
	ck_assert(!e->has[TL_QUOTA_PRODUCER_BYTE_RATE]);
	ck_assert_int_eq(tl_quotas_parse(&back, "user=x bogus_key=1\n"), TL_ERR_CORRUPT);
	free(text);
	tl_quotas_deinit(&back);
	tl_quotas_deinit(&q);
}
END_TEST

START_TEST(cluster_changes_merge_and_a_replace_keeps_the_sensors)
{
	/* The metadata thread's merge: removals then sets, other entities kept. */
	struct tl_quotas q;
	tl_quotas_init(&q, 11, 1000);
	ck_assert_int_eq(tl_quotas_parse(&q,
					 "client-id=slow producer_byte_rate=100 "
					 "request_percentage=5\nuser=alice consumer_byte_rate=7\n"),
			 TL_OK);
	ck_assert_int_eq(tl_quotas_apply_text(&q, "client-id=slow request_percentage=1\n", true),
			 TL_OK);
	ck_assert_int_eq(tl_quotas_apply_text(&q, "user=bob producer_byte_rate=9\n", false), TL_OK);
	ck_assert_int_eq(q.entity_count, 3);
	struct tl_quota_part slow = {.present = true, .name = "slow"};
	struct tl_quota_entity *e = tl_quotas_find(&q, &absent, &slow);
	ck_assert_ptr_nonnull(e);
	ck_assert(e->has[TL_QUOTA_PRODUCER_BYTE_RATE] && !e->has[TL_QUOTA_REQUEST_PERCENTAGE]);
	ck_assert_int_eq(tl_quotas_apply_text(&q, "user=x bogus=1\n", false), TL_ERR_CORRUPT);
	/* A view's replace: the entities are the text's, a sensor's rate goes on. */
	ck_assert_int_eq(tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("u"),
					  tl_str_of("slow"), 60, 0),
			 0);
	ck_assert_int_eq(tl_quotas_replace(&q, "client-id=slow producer_byte_rate=100\n"), TL_OK);
	ck_assert_int_eq(q.entity_count, 1);
	ck_assert_int_eq(q.sensor_count, 1);
	ck_assert_int_gt(tl_quotas_record(&q, TL_QUOTA_PRODUCER_BYTE_RATE, tl_str_of("u"),
					  tl_str_of("slow"), 60, 0),
			 0);
	ck_assert_int_eq(tl_quotas_replace(&q, "nonsense\n"), TL_ERR_CORRUPT);
	ck_assert_int_eq(q.entity_count, 1);
	tl_quotas_deinit(&q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("broker_quota");
	TCase *tc = tcase_create("quota");
	tcase_add_test(tc, a_new_rate_counts_at_least_one_window);
	tcase_add_test(tc, a_steady_rate_is_measured_over_the_elapsed_samples);
	tcase_add_test(tc, throttle_time_is_kafkas_formula);
	tcase_add_test(tc, precedence_follows_kafkas_eight_levels);
	tcase_add_test(tc, a_user_quota_is_shared_by_its_clients_a_default_one_is_not);
	tcase_add_test(tc, a_client_held_to_its_throttle_averages_the_quota);
	tcase_add_test(tc, the_text_form_round_trips_odd_names_and_defaults);
	tcase_add_test(tc, cluster_changes_merge_and_a_replace_keeps_the_sensors);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
