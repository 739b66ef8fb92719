/* replication_test.c - ISR, high watermark, elections and assignment (replication.h). */
#include <string.h>

#include <check.h>

#include "common/tests/check_run.h"
#include "replication/replication.h"

static tl_err decode_str(const char *s, struct tl_repl_state *out)
{
	return tl_repl_state_decode((const uint8_t *)s, strlen(s), out);
}

START_TEST(state_round_trips_through_its_text_form)
{
	struct tl_repl_state in = {
		.leader = 2, .leader_epoch = 7, .isr_count = 3, .isr = {2, 3, 1}};
	char text[128];
	int n = tl_repl_state_encode(&in, text, sizeof(text));
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(text, "leader=2 leader_epoch=7 isr=2,3,1");
	struct tl_repl_state out;
	ck_assert_int_eq(tl_repl_state_decode((const uint8_t *)text, (size_t)n, &out), TL_OK);
	ck_assert_int_eq(out.leader, 2);
	ck_assert_int_eq(out.leader_epoch, 7);
	ck_assert_int_eq(out.isr_count, 3);
	ck_assert_int_eq(out.isr[2], 1);
}
END_TEST

START_TEST(offline_state_has_no_leader_and_keeps_its_isr)
{
	struct tl_repl_state out;
	ck_assert_int_eq(decode_str("leader=-1 leader_epoch=3 isr=1", &out), TL_OK);
	ck_assert_int_eq(out.leader, -1);
	ck_assert_int_eq(decode_str("leader=-1 leader_epoch=0 isr=", &out), TL_OK);
	ck_assert_int_eq(out.isr_count, 0);
}
END_TEST

START_TEST(malformed_state_is_refused_not_trusted)
{
	static const char *bad[] = {
		"",
		"leader=1",
		"leader=1 leader_epoch=2",
		"leader=1 leader_epoch=2 isr=2",     /* leader outside its ISR */
		"leader=1 leader_epoch=2 isr=1,1",   /* duplicate */
		"leader=1 leader_epoch=-2 isr=1",    /* negative epoch */
		"leader=1 leader_epoch=2 isr=1 x=3", /* unknown field */
		"leader=1 leader=1 leader_epoch=2 isr=1",
		"leader=99999999999 leader_epoch=2 isr=1",
		"leader=1 leader_epoch=2 isr=1,",
		"leader=1  leader_epoch=2 isr=1",
		"leader=a leader_epoch=2 isr=1",
		"leader=1 leader_epoch=2 isr=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tl_repl_state out;
		ck_assert_msg(decode_str(bad[i], &out) == TL_ERR_CORRUPT, "accepted \"%s\"",
			      bad[i]);
	}
}
END_TEST

/* Brokers 1..5 alive unless listed in the mask (bit = id). */
static bool alive_mask(void *ctx, int32_t id)
{
	unsigned dead = *(unsigned *)ctx;
	return id >= 1 && id <= 5 && !(dead & (1u << id));
}

START_TEST(election_picks_the_first_live_isr_member_in_assignment_order)
{
	int32_t replicas[] = {1, 2, 3};
	struct tl_repl_state state = {
		.leader = 1, .leader_epoch = 4, .isr_count = 2, .isr = {1, 3}};
	unsigned dead = 1u << 1;
	ck_assert_int_eq(tl_repl_elect(replicas, 3, &state, alive_mask, &dead, -1, false), 3);
	/* 2 is alive but out of the ISR: never a clean choice. */
	dead = (1u << 1) | (1u << 3);
	ck_assert_int_eq(tl_repl_elect(replicas, 3, &state, alive_mask, &dead, -1, false), -1);
	ck_assert_int_eq(tl_repl_elect(replicas, 3, &state, alive_mask, &dead, -1, true), 2);
	/* Controlled shutdown of the leader excludes it. */
	dead = 0;
	ck_assert_int_eq(tl_repl_elect(replicas, 3, &state, alive_mask, &dead, 1, false), 3);
}
END_TEST

START_TEST(election_bumps_the_epoch_and_drops_dead_members_from_the_isr)
{
	struct tl_repl_state state = {
		.leader = 1, .leader_epoch = 4, .isr_count = 3, .isr = {1, 2, 3}};
	unsigned dead = 1u << 1;
	struct tl_repl_state next;
	tl_repl_state_after_election(&state, 2, alive_mask, &dead, -1, &next);
	ck_assert_int_eq(next.leader, 2);
	ck_assert_int_eq(next.leader_epoch, 5);
	ck_assert_int_eq(next.isr_count, 2);
	ck_assert(!tl_repl_isr_contains(&next, 1));
	/* Offline: no leader, epoch bumped, last ISR kept. */
	tl_repl_state_after_election(&state, -1, alive_mask, &dead, -1, &next);
	ck_assert_int_eq(next.leader, -1);
	ck_assert_int_eq(next.leader_epoch, 5);
	ck_assert_int_eq(next.isr_count, 3);
	/* Unclean: the ISR is the new leader alone. */
	state = (struct tl_repl_state){.leader = 1, .leader_epoch = 4, .isr_count = 1, .isr = {1}};
	tl_repl_state_after_election(&state, 3, alive_mask, &dead, -1, &next);
	ck_assert_int_eq(next.isr_count, 1);
	ck_assert_int_eq(next.isr[0], 3);
}
END_TEST

static void check_rows(const int32_t *rows, int32_t partitions, int32_t rf)
{
	for (int32_t p = 0; p < partitions; p++)
		for (int32_t i = 0; i < rf; i++)
			for (int32_t j = i + 1; j < rf; j++)
				ck_assert_int_ne(rows[p * rf + i], rows[p * rf + j]);
}

START_TEST(assignment_spreads_leaders_and_replicas_evenly)
{
	struct tl_repl_broker brokers[] = {{.id = 3}, {.id = 1}, {.id = 2}};
	int32_t rows[6 * 3];
	ck_assert_int_eq(tl_repl_assign(brokers, 3, 6, 3, 0, rows), TL_OK);
	check_rows(rows, 6, 3);
	int leaders[4] = {0};
	for (int p = 0; p < 6; p++)
		leaders[rows[p * 3]]++;
	ck_assert_int_eq(leaders[1], 2);
	ck_assert_int_eq(leaders[2], 2);
	ck_assert_int_eq(leaders[3], 2);
	ck_assert_int_eq(tl_repl_assign(brokers, 3, 1, 4, 0, rows),
			 TL_ERR_INVALID_REPLICATION_FACTOR);
	ck_assert_int_eq(tl_repl_assign(brokers, 3, 1, 0, 0, rows),
			 TL_ERR_INVALID_REPLICATION_FACTOR);
}
END_TEST

START_TEST(assignment_puts_replicas_on_distinct_racks)
{
	struct tl_repl_broker brokers[] = {
		{.id = 1, .rack = "a"}, {.id = 2, .rack = "a"}, {.id = 3, .rack = "b"},
		{.id = 4, .rack = "b"}, {.id = 5, .rack = "c"}, {.id = 6, .rack = "c"},
	};
	int32_t rows[12 * 3];
	for (uint32_t start = 0; start < 6; start++) {
		ck_assert_int_eq(tl_repl_assign(brokers, 6, 12, 3, start, rows), TL_OK);
		check_rows(rows, 12, 3);
		for (int p = 0; p < 12; p++) {
			char racks[3] = {0};
			for (int i = 0; i < 3; i++)
				racks[i] = brokers[rows[p * 3 + i] - 1].rack[0];
			ck_assert_msg(racks[0] != racks[1] && racks[1] != racks[2] &&
					      racks[0] != racks[2],
				      "partition %d on racks %c%c%c", p, racks[0], racks[1],
				      racks[2]);
		}
	}
}
END_TEST

static struct tl_repl_leader leader;

static void leader_setup(void)
{
	int32_t replicas[] = {1, 2, 3};
	struct tl_repl_state state = {
		.leader = 1, .leader_epoch = 2, .isr_count = 3, .isr = {1, 2, 3}};
	tl_repl_leader_init(&leader, 1, replicas, 3, &state, 100, 100, 1000);
}

START_TEST(high_watermark_is_the_slowest_isr_member)
{
	/* Followers unknown yet: the high watermark stays. */
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 100);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 150, 150, 1001), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 100);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, 120, 150, 1001), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 120);
	/* The leader's own durable end bounds it too. */
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, 150, 150, 1002), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 140), 140);
	/* Never backwards, even if a follower's fetch offset is lower (it truncated). */
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, 130, 150, 1003), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 140);
}
END_TEST

START_TEST(fetch_from_a_non_replica_or_past_the_end_is_refused)
{
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 9, 100, 100, 1001),
			 TL_ERR_NOT_LEADER_OR_FOLLOWER);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 101, 100, 1001),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
}
END_TEST

START_TEST(a_lagging_follower_leaves_the_isr_and_rejoins_when_caught_up)
{
	struct tl_repl_state next;
	ck_assert(!tl_repl_leader_isr_change(&leader, 1000 + 30000, 30000, -1, &next));
	/* 2 keeps up, 3 never fetches. */
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 100, 100, 31000), TL_OK);
	ck_assert(tl_repl_leader_isr_change(&leader, 31001, 30000, -1, &next));
	ck_assert_int_eq(next.isr_count, 2);
	ck_assert(!tl_repl_isr_contains(&next, 3));
	tl_repl_leader_set_state(&leader, &next);
	/* HW now ignores 3. */
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 100), 100);
	/* 3 fetches, behind the high watermark: stays out. */
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, 50, 100, 31002), TL_OK);
	ck_assert(!tl_repl_leader_isr_change(&leader, 31003, 30000, 3, &next));
	/* Caught up: back in, but only on its own fetch (not from a periodic check). */
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, 100, 100, 31004), TL_OK);
	ck_assert(!tl_repl_leader_isr_change(&leader, 31005, 30000, -1, &next));
	ck_assert(tl_repl_leader_isr_change(&leader, 31005, 30000, 3, &next));
	ck_assert_int_eq(next.isr_count, 3);
	ck_assert(tl_repl_leader_has_min_isr(&leader, 2));
}
END_TEST

START_TEST(a_follower_behind_but_keeping_pace_stays_in_the_isr)
{
	struct tl_repl_state next;
	/* Each fetch reaches the log end the leader had at the previous fetch. */
	int64_t leo = 100;
	for (int64_t t = 1000; t < 70000; t += 500) {
		ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, leo, leo + 10, t), TL_OK);
		ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, leo, leo + 10, t), TL_OK);
		leo += 10;
	}
	ck_assert(!tl_repl_leader_isr_change(&leader, 70000, 30000, -1, &next));
}
END_TEST

/* Leader of {1,2,3} whose ISR is {1,2} (3 was dropped), everyone at @at. */
static void leader_with_3_out(int64_t at, int64_t now)
{
	struct tl_repl_state two = {.leader = 1, .leader_epoch = 2, .isr_count = 2, .isr = {1, 2}};
	tl_repl_leader_set_state(&leader, &two);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, at, at, now), TL_OK);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, at, at, now), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, at), at);
}

/* Review R5: an expansion committed in the store but not yet back at the leader (late
 * watch, or the leader cut off) lets an election pick the added replica; what the
 * leader acknowledged meanwhile must be on it (Kafka's maximal ISR, KIP-497). */
START_TEST(an_isr_addition_counts_in_the_high_watermark_from_the_moment_it_is_asked)
{
	struct tl_repl_state next;
	leader_with_3_out(100, 1001);
	ck_assert(tl_repl_leader_isr_change(&leader, 1002, 30000, 3, &next));
	ck_assert_int_eq(next.isr_count, 3);
	tl_repl_leader_proposed(&leader, &next);
	ck_assert(tl_repl_leader_in_maximal_isr(&leader, 3));
	/* 2 has 150, 3 does not: nothing past 100 is committed, though the applied ISR
	 * {1,2} has it all. */
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 150, 150, 1003), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 100);
	/* min.insync.replicas counts the applied ISR, as Kafka's NOT_ENOUGH_REPLICAS. */
	ck_assert(tl_repl_leader_has_min_isr(&leader, 2));
	ck_assert(!tl_repl_leader_has_min_isr(&leader, 3));
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, 150, 150, 1004), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 150);
	/* The change comes back: 3 is in the applied ISR now. */
	tl_repl_leader_set_state(&leader, &next);
	ck_assert_int_eq(leader.pending_count, 0);
	ck_assert(tl_repl_leader_has_min_isr(&leader, 3));
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 160, 160, 1005), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 160), 150);
}
END_TEST

START_TEST(a_refused_isr_addition_ends_with_the_newer_state)
{
	struct tl_repl_state next;
	leader_with_3_out(100, 1001);
	ck_assert(tl_repl_leader_isr_change(&leader, 1002, 30000, 3, &next));
	tl_repl_leader_proposed(&leader, &next);
	/* Asked again (a timeout): still one pending addition. */
	tl_repl_leader_proposed(&leader, &next);
	ck_assert_int_eq(leader.pending_count, 1);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 150, 150, 1003), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 100);
	/* Another writer won the CAS with {1,2}: the addition never committed. */
	struct tl_repl_state two = {.leader = 1, .leader_epoch = 2, .isr_count = 2, .isr = {1, 2}};
	tl_repl_leader_set_state(&leader, &two);
	ck_assert(!tl_repl_leader_in_maximal_isr(&leader, 3));
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 150);
}
END_TEST

START_TEST(a_lagging_pending_addition_is_ended_by_writing_the_state_again)
{
	struct tl_repl_state next, again;
	leader_with_3_out(100, 1001);
	ck_assert(tl_repl_leader_isr_change(&leader, 1002, 30000, 3, &next));
	tl_repl_leader_proposed(&leader, &next);
	/* 3 stops fetching; the answer to the addition never comes (the store was
	 * unreachable). The high watermark cannot wait on it forever: the leader writes
	 * its applied state again, a newer revision that ends the addition. */
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 100, 100, 40000), TL_OK);
	ck_assert(tl_repl_leader_isr_change(&leader, 40000, 30000, -1, &again));
	ck_assert_int_eq(again.isr_count, 2);
	ck_assert(!tl_repl_isr_contains(&again, 3));
	tl_repl_leader_proposed(&leader, &again);
	ck_assert(tl_repl_leader_in_maximal_isr(&leader, 3)); /* until it comes back */
	tl_repl_leader_set_state(&leader, &again);
	ck_assert(!tl_repl_leader_in_maximal_isr(&leader, 3));
	ck_assert(!tl_repl_leader_isr_change(&leader, 40001, 30000, -1, &again));
}
END_TEST

/* Shrinks are safe the other way round: the applied, larger ISR counts until the shrink
 * comes back. */
START_TEST(an_isr_shrink_counts_only_once_applied)
{
	struct tl_repl_state next;
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 100, 100, 31000), TL_OK);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 3, 100, 100, 1000), TL_OK);
	ck_assert(tl_repl_leader_isr_change(&leader, 31001, 30000, -1, &next));
	ck_assert_int_eq(next.isr_count, 2);
	tl_repl_leader_proposed(&leader, &next);
	ck_assert_int_eq(tl_repl_leader_on_fetch(&leader, 2, 150, 150, 31002), TL_OK);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 100);
	tl_repl_leader_set_state(&leader, &next);
	ck_assert_int_eq(tl_repl_leader_advance(&leader, 150), 150);
}
END_TEST

static Suite *replication_suite(void)
{
	Suite *s = suite_create("replication");
	TCase *tc = tcase_create("state");
	tcase_add_test(tc, state_round_trips_through_its_text_form);
	tcase_add_test(tc, offline_state_has_no_leader_and_keeps_its_isr);
	tcase_add_test(tc, malformed_state_is_refused_not_trusted);
	suite_add_tcase(s, tc);
	tc = tcase_create("controller");
	tcase_add_test(tc, election_picks_the_first_live_isr_member_in_assignment_order);
	tcase_add_test(tc, election_bumps_the_epoch_and_drops_dead_members_from_the_isr);
	tcase_add_test(tc, assignment_spreads_leaders_and_replicas_evenly);
	tcase_add_test(tc, assignment_puts_replicas_on_distinct_racks);
	suite_add_tcase(s, tc);
	tc = tcase_create("leader");
	tcase_add_checked_fixture(tc, leader_setup, NULL);
	tcase_add_test(tc, high_watermark_is_the_slowest_isr_member);
	tcase_add_test(tc, fetch_from_a_non_replica_or_past_the_end_is_refused);
	tcase_add_test(tc, a_lagging_follower_leaves_the_isr_and_rejoins_when_caught_up);
	tcase_add_test(tc, a_follower_behind_but_keeping_pace_stays_in_the_isr);
	tcase_add_test(tc,
		       an_isr_addition_counts_in_the_high_watermark_from_the_moment_it_is_asked);
	tcase_add_test(tc, a_refused_isr_addition_ends_with_the_newer_state);
	tcase_add_test(tc, a_lagging_pending_addition_is_ended_by_writing_the_state_again);
	tcase_add_test(tc, an_isr_shrink_counts_only_once_applied);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(replication_suite());
}
