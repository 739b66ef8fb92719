/* fuzz_request.c - libFuzzer target for request decoding, as the broker does it.
 * Input: one request frame without its size prefix (what broker/conn.c hands to
 * tl_dispatch). The header is decoded (tl_request_header_decode), then the body through
 * the generated decoder of its API and version (tl_request_decode_any), in an arena
 * bounded like the broker's. No input may crash, overrun or leak.
 * For the APIs tallyd serves, a body that decodes is re-encoded and decoded again: the
 * second encoding must equal the first (encode . decode is stable on encoder output),
 * else the target aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "protocol/api.h"
#include "protocol/messages.h"

#define ARENA_BYTES_MAX (64u * 1024 * 1024) /* broker/conn.c REQUEST_ARENA_MAX */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef void (*encode_fn)(struct tl_buf *buf, int16_t version, const void *msg);

/* Typed wrappers, so the generated encoders are called through their own types. */
#define ENCODER(name)                                                                              \
	static void encode_##name(struct tl_buf *buf, int16_t version, const void *msg)            \
	{                                                                                          \
		tl_##name##_encode(buf, version, (const struct tl_##name *)msg);                   \
	}
ENCODER(produce_request)
ENCODER(fetch_request)
ENCODER(list_offsets_request)
ENCODER(metadata_request)
ENCODER(offset_commit_request)
ENCODER(offset_fetch_request)
ENCODER(find_coordinator_request)
ENCODER(join_group_request)
ENCODER(heartbeat_request)
ENCODER(leave_group_request)
ENCODER(sync_group_request)
ENCODER(describe_groups_request)
ENCODER(list_groups_request)
ENCODER(api_versions_request)
ENCODER(create_topics_request)
ENCODER(delete_topics_request)
ENCODER(describe_configs_request)
ENCODER(init_producer_id_request)
ENCODER(delete_groups_request)
ENCODER(offset_delete_request)
ENCODER(describe_client_quotas_request)
ENCODER(alter_client_quotas_request)

static encode_fn encoder_for(int16_t key)
{
	switch (key) {
	case TL_API_PRODUCE:
		return encode_produce_request;
	case TL_API_FETCH:
		return encode_fetch_request;
	case TL_API_LIST_OFFSETS:
		return encode_list_offsets_request;
	case TL_API_METADATA:
		return encode_metadata_request;
	case TL_API_OFFSET_COMMIT:
		return encode_offset_commit_request;
	case TL_API_OFFSET_FETCH:
		return encode_offset_fetch_request;
	case TL_API_FIND_COORDINATOR:
		return encode_find_coordinator_request;
	case TL_API_JOIN_GROUP:
		return encode_join_group_request;
	case TL_API_HEARTBEAT:
		return encode_heartbeat_request;
	case TL_API_LEAVE_GROUP:
		return encode_leave_group_request;
	case TL_API_SYNC_GROUP:
		return encode_sync_group_request;
	case TL_API_DESCRIBE_GROUPS:
		return encode_describe_groups_request;
	case TL_API_LIST_GROUPS:
		return encode_list_groups_request;
	case TL_API_API_VERSIONS:
		return encode_api_versions_request;
	case TL_API_CREATE_TOPICS:
		return encode_create_topics_request;
	case TL_API_DELETE_TOPICS:
		return encode_delete_topics_request;
	case TL_API_DESCRIBE_CONFIGS:
		return encode_describe_configs_request;
	case TL_API_INIT_PRODUCER_ID:
		return encode_init_producer_id_request;
	case TL_API_DELETE_GROUPS:
		return encode_delete_groups_request;
	case TL_API_OFFSET_DELETE:
		return encode_offset_delete_request;
	case TL_API_DESCRIBE_CLIENT_QUOTAS:
		return encode_describe_client_quotas_request;
	case TL_API_ALTER_CLIENT_QUOTAS:
		return encode_alter_client_quotas_request;
	default:
		return NULL;
	}
}

static void round_trip(int16_t key, int16_t version, const void *msg)
{
	encode_fn encode = encoder_for(key);
	if (!encode)
		return;
	struct tl_buf first, second;
	tl_buf_init(&first);
	tl_buf_init(&second);
	encode(&first, version, msg);
	if (first.failed)
		goto out;
	struct tl_arena arena;
	tl_arena_init(&arena, ARENA_BYTES_MAX);
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, first.data, first.len);
	void *again = NULL;
	tl_err err = tl_request_decode_any(key, version, &cursor, &arena, &again);
	if (err != TL_OK || cursor.failed) {
		fprintf(stderr, "api %d v%d: our own encoding does not decode (%s)\n", key, version,
			tl_err_name(err));
		abort();
	}
	if (tl_cursor_left(&cursor) != 0) {
		fprintf(stderr, "api %d v%d: %zu bytes left after decoding our own encoding\n", key,
			version, tl_cursor_left(&cursor));
		abort();
	}
	encode(&second, version, again);
	if (!second.failed &&
	    (second.len != first.len || memcmp(second.data, first.data, first.len) != 0)) {
		fprintf(stderr, "api %d v%d: re-encoding differs (%zu vs %zu bytes)\n", key,
			version, first.len, second.len);
		abort();
	}
	tl_arena_deinit(&arena);
out:
	tl_buf_deinit(&first);
	tl_buf_deinit(&second);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, data, size);
	struct tl_request_header header;
	if (tl_request_header_decode(&cursor, &header) != TL_OK || cursor.failed)
		return 0;
	if (header.client_id.len > 0 && !header.client_id.ptr)
		abort();
	struct tl_arena arena;
	tl_arena_init(&arena, ARENA_BYTES_MAX);
	void *msg = NULL;
	tl_err err =
		tl_request_decode_any(header.api_key, header.api_version, &cursor, &arena, &msg);
	if (err == TL_OK && !cursor.failed)
		round_trip(header.api_key, header.api_version, msg);
	tl_arena_deinit(&arena);
	return 0;
}
