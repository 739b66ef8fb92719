/* group_store_test.c - the __consumer_offsets record format and group partitioning. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "broker/group_store.h"
#include "common/tests/check_run.h"

static struct tl_bytes buf_bytes(const struct tl_buf *buf)
{
	struct tl_bytes b = {buf->data, (int32_t)buf->len};
	return b;
}

static bool str_is(struct tl_str s, const char *c)
{
	return tl_str_eq(s, tl_str_of(c));
}

START_TEST(offset_record_round_trips_in_kafkas_v1_key_and_v3_value)
{
	struct tl_buf key, value;
	tl_buf_init(&key);
	tl_buf_init(&value);
	struct tl_group_record rec = {
		.type = TL_GROUP_RECORD_OFFSET,
		.group_id = tl_str_of("g"),
		.topic = tl_str_of("t"),
		.partition = 3,
		.offset = 42,
		.leader_epoch = 7,
		.metadata = tl_str_of("md"),
		.commit_ms = 1700000000000,
	};
	tl_group_record_encode(&rec, &key, &value);
	/* key: version 1, "g", "t", partition 3 */
	static const uint8_t want_key[] = {0, 1, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 3};
	ck_assert_uint_eq(key.len, sizeof(want_key));
	ck_assert_mem_eq(key.data, want_key, sizeof(want_key));
	/* value: version 3, offset, leader epoch, metadata, commit timestamp */
	ck_assert_uint_eq(value.len, 2 + 8 + 4 + 2 + 2 + 8);
	ck_assert_int_eq(value.data[1], 3);

	struct tl_arena arena;
	tl_arena_init(&arena, 1 << 20);
	struct tl_group_record out;
	ck_assert_int_eq(tl_group_record_decode(buf_bytes(&key), buf_bytes(&value), &arena, &out),
			 TL_OK);
	ck_assert_int_eq(out.type, TL_GROUP_RECORD_OFFSET);
	ck_assert(!out.tombstone);
	ck_assert(str_is(out.group_id, "g"));
	ck_assert(str_is(out.topic, "t"));
	ck_assert_int_eq(out.partition, 3);
	ck_assert_int_eq(out.offset, 42);
	ck_assert_int_eq(out.leader_epoch, 7);
	ck_assert(str_is(out.metadata, "md"));
	ck_assert_int_eq(out.commit_ms, 1700000000000);

	struct tl_bytes null_value = {NULL, -1};
	ck_assert_int_eq(tl_group_record_decode(buf_bytes(&key), null_value, &arena, &out), TL_OK);
	ck_assert(out.tombstone);
	ck_assert_int_eq(out.partition, 3);
	tl_arena_deinit(&arena);
	tl_buf_deinit(&key);
	tl_buf_deinit(&value);
}
END_TEST

START_TEST(group_record_round_trips_with_members)
{
	struct tl_buf key, value;
	tl_buf_init(&key);
	tl_buf_init(&value);
	static const uint8_t sub[] = {0, 1, 0, 0, 0, 0};
	static const uint8_t assign[] = {0, 0, 0, 0, 0, 1, 9};
	struct tl_group_record_member members[2] = {
		{.member_id = tl_str_of("m1"),
		 .group_instance_id = {NULL, -1},
		 .client_id = tl_str_of("c1"),
		 .client_host = tl_str_of("/127.0.0.1"),
		 .rebalance_timeout_ms = 300000,
		 .session_timeout_ms = 6000,
		 .subscription = {sub, sizeof(sub)},
		 .assignment = {assign, sizeof(assign)}},
		{.member_id = tl_str_of("m2"),
		 .group_instance_id = tl_str_of("static-1"),
		 .client_id = tl_str_of(""),
		 .client_host = tl_str_of("/127.0.0.2"),
		 .rebalance_timeout_ms = 1,
		 .session_timeout_ms = 2,
		 .subscription = {NULL, 0},
		 .assignment = {NULL, 0}},
	};
	struct tl_group_record rec = {
		.type = TL_GROUP_RECORD_GROUP,
		.group_id = tl_str_of("grp"),
		.protocol_type = tl_str_of("consumer"),
		.generation_id = 5,
		.protocol_name = tl_str_of("range"),
		.leader_id = tl_str_of("m1"),
		.state_ms = 123,
		.member_count = 2,
		.members = members,
	};
	tl_group_record_encode(&rec, &key, &value);
	static const uint8_t want_key[] = {0, 2, 0, 3, 'g', 'r', 'p'};
	ck_assert_uint_eq(key.len, sizeof(want_key));
	ck_assert_mem_eq(key.data, want_key, sizeof(want_key));

	struct tl_arena arena;
	tl_arena_init(&arena, 1 << 20);
	struct tl_group_record out;
	ck_assert_int_eq(tl_group_record_decode(buf_bytes(&key), buf_bytes(&value), &arena, &out),
			 TL_OK);
	ck_assert_int_eq(out.type, TL_GROUP_RECORD_GROUP);
	ck_assert(str_is(out.group_id, "grp"));
	ck_assert(str_is(out.protocol_type, "consumer"));
	ck_assert_int_eq(out.generation_id, 5);
	ck_assert(str_is(out.protocol_name, "range"));
	ck_assert(str_is(out.leader_id, "m1"));
	ck_assert_int_eq(out.state_ms, 123);
	ck_assert_int_eq(out.member_count, 2);
	ck_assert(str_is(out.members[0].member_id, "m1"));
	ck_assert_int_eq(out.members[0].group_instance_id.len, -1);
	ck_assert_int_eq(out.members[0].rebalance_timeout_ms, 300000);
	ck_assert_int_eq(out.members[0].session_timeout_ms, 6000);
	ck_assert_int_eq(out.members[0].subscription.len, (int32_t)sizeof(sub));
	ck_assert_mem_eq(out.members[0].assignment.ptr, assign, sizeof(assign));
	ck_assert(str_is(out.members[1].group_instance_id, "static-1"));
	ck_assert(str_is(out.members[1].client_id, ""));
	ck_assert_int_eq(out.members[1].assignment.len, 0);
	tl_arena_deinit(&arena);
	tl_buf_deinit(&key);
	tl_buf_deinit(&value);
}
END_TEST

START_TEST(older_kafka_value_versions_decode)
{
	/* OffsetCommitValue v1: offset, metadata, commit timestamp, expire timestamp. */
	static const uint8_t key[] = {0, 0, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 0};
	static const uint8_t v1[] = {0,    1,    0,    0,    0,    0,    0,    0,   0, 9,
				     0,    0,    0,    0,    0,    0,    0,    0,   0, 5,
				     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct tl_arena arena;
	tl_arena_init(&arena, 1 << 20);
	struct tl_group_record out;
	struct tl_bytes k = {key, sizeof(key)}, v = {v1, sizeof(v1)};
	ck_assert_int_eq(tl_group_record_decode(k, v, &arena, &out), TL_OK);
	ck_assert_int_eq(out.offset, 9);
	ck_assert_int_eq(out.leader_epoch, -1);
	ck_assert_int_eq(out.commit_ms, 5);
	/* GroupMetadataValue v0 of an empty group. */
	static const uint8_t gkey[] = {0, 2, 0, 1, 'g'};
	static const uint8_t g0[] = {0, 0, 0, 8, 'c',  'o',  'n',  's',  'u', 'm', 'e', 'r',
				     0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff, 0,   0,   0,   0};
	k = (struct tl_bytes){gkey, sizeof(gkey)};
	v = (struct tl_bytes){g0, sizeof(g0)};
	ck_assert_int_eq(tl_group_record_decode(k, v, &arena, &out), TL_OK);
	ck_assert_int_eq(out.generation_id, 4);
	ck_assert_int_eq(out.protocol_name.len, -1);
	ck_assert_int_eq(out.state_ms, -1);
	ck_assert_int_eq(out.member_count, 0);
	tl_arena_deinit(&arena);
}
END_TEST

START_TEST(unknown_versions_are_skipped_and_garbage_is_corrupt)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1 << 20);
	struct tl_group_record out;
	static const uint8_t new_key[] = {0, 3, 0, 1, 'g'};
	static const uint8_t key[] = {0, 2, 0, 1, 'g'};
	static const uint8_t v4[] = {0, 4, 0};
	static const uint8_t short_value[] = {0, 3, 0, 8, 'c'};
	/* v3: "", generation 0, null, null, timestamp 0, then 2^31-1 members in 0 bytes. */
	static const uint8_t members_lie[] = {0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
					      0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff};
	struct tl_bytes none = {NULL, -1};
	ck_assert_int_eq(tl_group_record_decode((struct tl_bytes){new_key, 5}, none, &arena, &out),
			 TL_ERR_NOT_FOUND);
	ck_assert_int_eq(tl_group_record_decode((struct tl_bytes){key, 5},
						(struct tl_bytes){v4, sizeof(v4)}, &arena, &out),
			 TL_ERR_NOT_FOUND);
	ck_assert_int_eq(tl_group_record_decode((struct tl_bytes){key, 5},
						(struct tl_bytes){short_value, sizeof(short_value)},
						&arena, &out),
			 TL_ERR_CORRUPT);
	ck_assert_int_eq(tl_group_record_decode((struct tl_bytes){key, 5},
						(struct tl_bytes){members_lie, sizeof(members_lie)},
						&arena, &out),
			 TL_ERR_CORRUPT);
	ck_assert_int_eq(tl_group_record_decode((struct tl_bytes){key, 1}, none, &arena, &out),
			 TL_ERR_CORRUPT);
	ck_assert_int_eq(tl_group_record_decode(none, none, &arena, &out), TL_ERR_CORRUPT);
	tl_arena_deinit(&arena);
}
END_TEST

START_TEST(group_ids_hash_like_java_strings)
{
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("")), 0);
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("a")), 97);
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("hello")), 99162322);
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("my-group")), -1906497762);
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("\xc3\xa9")), 233);
	/* U+1F600 is the surrogate pair D83D DE00 in Java. */
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("\xf0\x9f\x98\x80")), 1772899);
	/* A malformed byte counts as U+FFFD. */
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("\xff")), 0xfffd);
	/* Kafka's Utils.abs(Integer.MIN_VALUE) is 0. */
	ck_assert_int_eq(tl_group_store_java_hash(tl_str_of("polygenelubricants")), INT32_MIN);
	ck_assert_int_eq(tl_group_store_partition_of(tl_str_of("polygenelubricants"), 50), 0);
	ck_assert_int_eq(tl_group_store_partition_of(tl_str_of("my-group"), 50), 1906497762 % 50);
	ck_assert_int_eq(tl_group_store_partition_of(tl_str_of("hello"), 8), 99162322 % 8);
}
END_TEST

static Suite *group_store_suite(void)
{
	Suite *s = suite_create("group_store");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, offset_record_round_trips_in_kafkas_v1_key_and_v3_value);
	tcase_add_test(tc, group_record_round_trips_with_members);
	tcase_add_test(tc, older_kafka_value_versions_decode);
	tcase_add_test(tc, unknown_versions_are_skipped_and_garbage_is_corrupt);
	suite_add_tcase(s, tc);
	tc = tcase_create("partition");
	tcase_add_test(tc, group_ids_hash_like_java_strings);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(group_store_suite());
}
