/* codec_test.c - base64 round trips and refusals; the JSON reader on etcd gateway shapes;
 * percent-hex names as the ACL and quota files write them; CRC-32C's two paths. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "common/base64.h"
#include "common/crc32c.h"
#include "common/json.h"
#include "common/percent.h"
#include "common/tests/check_run.h"

START_TEST(crc32c_matches_the_standard_check_value)
{
	ck_assert_uint_eq(tl_crc32c(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(tl_crc32c_sw(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(tl_crc32c(0, "", 0), 0);
}
END_TEST

/* The hardware path (three interleaved streams over long buffers, see crc32c.c) gives
 * the table's CRC at every length around its block sizes, every alignment, any start
 * value, and in pieces. */
START_TEST(crc32c_hardware_path_matches_the_table_at_every_block_boundary)
{
	if (!tl_crc32c_is_hw())
		return; /* then both are the table */
	enum { BYTES = 3 * 3 * 8192 + 3 * 256 + 64 };
	uint8_t *data = malloc(BYTES + 8);
	ck_assert_ptr_nonnull(data);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < BYTES + 8; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		data[i] = (uint8_t)x;
	}
	size_t lens[200];
	size_t n = 0;
	for (size_t len = 0; len <= 64; len++)
		lens[n++] = len;
	const size_t blocks[] = {
		3 * 256,      2 * 3 * 256,           3 * 8192, 3 * 8192 + 3 * 256, 2 * 3 * 8192,
		3 * 3 * 8192, 3 * 3 * 8192 + 3 * 256};
	for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++)
		for (int d = -9; d <= 9; d += 3)
			lens[n++] = (size_t)((int)blocks[b] + d);
	lens[n++] = BYTES;
	for (size_t i = 0; i < n; i++)
		for (size_t align = 0; align < 8; align += 3)
			for (uint32_t start = 0; start < 2; start++) {
				uint32_t init = start ? 0xdeadbeefu : 0;
				const uint8_t *p = data + align;
				uint32_t want = tl_crc32c_sw(init, p, lens[i]);
				ck_assert_uint_eq(tl_crc32c(init, p, lens[i]), want);
				size_t half = lens[i] / 3;
				uint32_t split = tl_crc32c(tl_crc32c(init, p, half), p + half,
							   lens[i] - half);
				ck_assert_uint_eq(split, want);
			}
	free(data);
}
END_TEST

START_TEST(base64_round_trips_every_length_and_byte)
{
	uint8_t data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(data); len++) {
		char text[4 * 101 + 1];
		tl_base64_encode(data, len, text);
		ck_assert_uint_eq(strlen(text), tl_base64_encoded_len(len));
		uint8_t back[sizeof(data) + 3];
		size_t back_len = 0;
		ck_assert(tl_base64_decode(text, strlen(text), back, &back_len));
		ck_assert_uint_eq(back_len, len);
		ck_assert(memcmp(back, data, len) == 0);
	}
}
END_TEST

START_TEST(base64_matches_rfc4648_vectors)
{
	char text[16];
	tl_base64_encode("foob", 4, text);
	ck_assert_str_eq(text, "Zm9vYg==");
	tl_base64_encode("fooba", 5, text);
	ck_assert_str_eq(text, "Zm9vYmE=");
	uint8_t out[8];
	size_t n = 0;
	ck_assert(tl_base64_decode("Zm9vYg", 6, out, &n)); /* padding optional */
	ck_assert_uint_eq(n, 4);
	ck_assert(memcmp(out, "foob", 4) == 0);
	ck_assert(tl_base64_decode("-_8=", 4, out, &n)); /* URL-safe alphabet */
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[0], 0xfb);
	ck_assert_uint_eq(out[1], 0xff);
}
END_TEST

START_TEST(base64_refuses_what_is_not_base64)
{
	uint8_t out[16];
	size_t n = 99;
	ck_assert(!tl_base64_decode("Zm9v!", 5, out, &n));
	ck_assert(!tl_base64_decode("Z", 1, out, &n));
	ck_assert(!tl_base64_decode("Zm9vY===", 8, out, &n));
	ck_assert(!tl_base64_decode("Zm 9v", 5, out, &n));
	ck_assert_uint_eq(n, 99);
}
END_TEST

START_TEST(json_reads_an_etcd_range_response)
{
	const char *text =
		"{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"YS8x\","
		"\"mod_revision\":\"2\",\"value\":\"aGk=\"}],\"more\":false,\"count\":\"1\"}";
	struct tl_json_value doc;
	char why[128];
	ck_assert(tl_json_parse(text, strlen(text), &doc, why, sizeof(why)));
	const struct tl_json_value *kvs = tl_json_get(&doc, "kvs");
	ck_assert_ptr_nonnull(kvs);
	ck_assert_int_eq(kvs->type, TL_JSON_ARRAY);
	ck_assert_uint_eq(kvs->count, 1);
	const struct tl_json_value *rev = tl_json_get(tl_json_get(&doc, "header"), "revision");
	ck_assert_int_eq(rev->type, TL_JSON_STRING);
	ck_assert_str_eq(rev->str, "7");
	ck_assert_int_eq(tl_json_get(&doc, "more")->type, TL_JSON_BOOL);
	ck_assert_ptr_null(tl_json_get(&doc, "absent"));
	tl_json_free(&doc);
}
END_TEST

START_TEST(json_refuses_truncated_and_too_deep_documents)
{
	struct tl_json_value doc;
	char why[128];
	ck_assert(!tl_json_parse("{\"a\":[1,2", 9, &doc, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "at byte"));
	char deep[2 * (TL_JSON_DEPTH_MAX + 2)];
	size_t n = 0;
	for (int i = 0; i < TL_JSON_DEPTH_MAX + 2; i++)
		deep[n++] = '[';
	for (int i = 0; i < TL_JSON_DEPTH_MAX + 2; i++)
		deep[n++] = ']';
	ck_assert(!tl_json_parse(deep, n, &doc, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "nested too deeply"));
}
END_TEST

START_TEST(percent_writes_each_file_format_as_before)
{
	/* The ACL file escapes white space, controls, '%' and bytes above '~'; the quota
	 * file everything outside A-Z a-z 0-9 . _ - (files written before this codec). */
	const char name[] = "User:a b%c\x01\xc3\xa9";
	char out[64];
	size_t n = tl_percent_encode(TL_PERCENT_PLAIN_PRINTABLE, name, strlen(name), out);
	ck_assert_str_eq(out, "User:a%20b%25c%01%C3%A9");
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_uint_eq(tl_percent_encoded_len(TL_PERCENT_PLAIN_PRINTABLE, name, strlen(name)),
			  n);
	n = tl_percent_encode(TL_PERCENT_PLAIN_NAME, "app.v1_x-y/z:w", 14, out);
	ck_assert_str_eq(out, "app.v1_x-y%2Fz%3Aw");
	ck_assert_uint_eq(n, 18);
	ck_assert_uint_eq(tl_percent_encoded_len(TL_PERCENT_PLAIN_NAME, "app.v1_x-y/z:w", 14), 18);
}
END_TEST

START_TEST(percent_round_trips_every_byte_in_both_sets)
{
	char name[255];
	for (size_t i = 0; i < sizeof(name); i++)
		name[i] = (char)(i + 1);
	enum tl_percent_plain sets[] = {TL_PERCENT_PLAIN_PRINTABLE, TL_PERCENT_PLAIN_NAME};
	for (size_t s = 0; s < 2; s++) {
		char text[3 * sizeof(name) + 1];
		size_t n = tl_percent_encode(sets[s], name, sizeof(name), text);
		ck_assert_uint_eq(n, tl_percent_encoded_len(sets[s], name, sizeof(name)));
		ck_assert(strpbrk(text, " \n") == NULL); /* the files split on these */
		char back[sizeof(name) + 1];
		size_t back_len = 0;
		ck_assert(tl_percent_decode(text, n, back, sizeof(back), &back_len));
		ck_assert_uint_eq(back_len, sizeof(name));
		ck_assert(memcmp(back, name, sizeof(name)) == 0);
		ck_assert_int_eq(back[back_len], '\0');
	}
}
END_TEST

START_TEST(percent_refuses_bad_escapes_nul_and_overlong_names)
{
	char out[4];
	size_t n = 99;
	ck_assert(!tl_percent_decode("a%4", 3, out, sizeof(out), &n));  /* cut short */
	ck_assert(!tl_percent_decode("%G0", 3, out, sizeof(out), &n));  /* not hex */
	ck_assert(!tl_percent_decode("a%00", 4, out, sizeof(out), &n)); /* a NUL in a name */
	ck_assert(!tl_percent_decode("abcd", 4, out, sizeof(out), &n)); /* 4 bytes, room for 3 */
	ck_assert_uint_eq(n, 99);
	ck_assert(tl_percent_decode("a%2fb", 5, out, sizeof(out), &n)); /* either case */
	ck_assert_str_eq(out, "a/b");
	ck_assert_uint_eq(n, 3);
	ck_assert(tl_percent_decode("", 0, out, sizeof(out), &n));
	ck_assert_uint_eq(n, 0);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("base64");
	tcase_add_test(tc, base64_round_trips_every_length_and_byte);
	tcase_add_test(tc, base64_matches_rfc4648_vectors);
	tcase_add_test(tc, base64_refuses_what_is_not_base64);
	suite_add_tcase(s, tc);
	tc = tcase_create("json");
	tcase_add_test(tc, json_reads_an_etcd_range_response);
	tcase_add_test(tc, json_refuses_truncated_and_too_deep_documents);
	suite_add_tcase(s, tc);
	tc = tcase_create("crc32c");
	tcase_add_test(tc, crc32c_matches_the_standard_check_value);
	tcase_add_test(tc, crc32c_hardware_path_matches_the_table_at_every_block_boundary);
	suite_add_tcase(s, tc);
	tc = tcase_create("percent");
	tcase_add_test(tc, percent_writes_each_file_format_as_before);
	tcase_add_test(tc, percent_round_trips_every_byte_in_both_sets);
	tcase_add_test(tc, percent_refuses_bad_escapes_nul_and_overlong_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(codec_suite());
}
