/* fuzz_group_record.c - libFuzzer target for the records of __consumer_offsets
 * (broker/group_store.h tl_group_record_decode), which the group coordinator replays
 * from disk at start-up: offset commits, group metadata with its members, transaction
 * markers, tombstones.
 * Input: u16 key length, the key, then the value (a value of exactly 0xff 0xff is a
 * tombstone: length -1). A record that decodes must encode again and decode to a record
 * of the same type, group and (for offsets) topic, partition and offset.
 * Any crash, overrun, leak or failed property aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/group_store.h"
#include "common/buf.h"

#define ARENA_BYTES_MAX (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_group_record: %s\n", what);
	abort();
}

static bool str_same(struct tl_str a, struct tl_str b)
{
	return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static void check_round_trip(const struct tl_group_record *rec)
{
	if (rec->type == TL_GROUP_RECORD_TXN_MARKER)
		return; /* markers come from control batches, not from this codec */
	struct tl_buf key, value;
	tl_buf_init(&key);
	tl_buf_init(&value);
	tl_group_record_encode(rec, &key, &value);
	struct tl_arena arena;
	tl_arena_init(&arena, ARENA_BYTES_MAX);
	struct tl_group_record again;
	struct tl_bytes k = {key.data, (int32_t)key.len};
	struct tl_bytes v = {value.data, rec->tombstone ? -1 : (int32_t)value.len};
	tl_err err = tl_group_record_decode(k, v, &arena, &again);
	if (err != TL_OK && err != TL_ERR_NOMEM)
		fuzz_fail("a decoded record does not decode after encoding");
	if (err == TL_OK) {
		if (again.type != rec->type || again.tombstone != rec->tombstone ||
		    !str_same(again.group_id, rec->group_id))
			fuzz_fail("the round trip changed the type, tombstone or group");
		if (rec->type == TL_GROUP_RECORD_OFFSET &&
		    (!str_same(again.topic, rec->topic) || again.partition != rec->partition ||
		     (!rec->tombstone && again.offset != rec->offset)))
			fuzz_fail("the round trip changed an offset record");
		if (rec->type == TL_GROUP_RECORD_GROUP && !rec->tombstone &&
		    again.member_count != rec->member_count)
			fuzz_fail("the round trip changed the member count");
	}
	tl_arena_deinit(&arena);
	tl_buf_deinit(&value);
	tl_buf_deinit(&key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t key_len = (size_t)data[0] << 8 | data[1];
	if (key_len > size - 2)
		return 0;
	size_t value_len = size - 2 - key_len;
	/* Exact-size copies, so ASan sees any read past either end. */
	uint8_t *key = malloc(key_len ? key_len : 1);
	uint8_t *value = malloc(value_len ? value_len : 1);
	if (!key || !value) {
		free(key);
		free(value);
		return 0;
	}
	memcpy(key, data + 2, key_len);
	memcpy(value, data + 2 + key_len, value_len);
	bool tombstone = value_len == 2 && value[0] == 0xff && value[1] == 0xff;
	struct tl_bytes k = {key, (int32_t)key_len};
	struct tl_bytes v = {value, tombstone ? -1 : (int32_t)value_len};
	struct tl_arena arena;
	tl_arena_init(&arena, ARENA_BYTES_MAX);
	struct tl_group_record rec;
	if (tl_group_record_decode(k, v, &arena, &rec) == TL_OK)
		check_round_trip(&rec);
	tl_arena_deinit(&arena);
	free(value);
	free(key);
	return 0;
}
