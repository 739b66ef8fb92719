/* api.c - API facts and headers, see api.h. */
#include "protocol/api.h"

#include <stddef.h>

static const struct tl_api_info *api_find(int16_t key)
{
	/* tl_api_specs is sorted by key and has the same layout as tl_api_info. */
	_Static_assert(sizeof(struct tl_api_info) == sizeof(struct tl_api_spec),
		       "api table layouts must match");
	int lo = 0, hi = tl_api_spec_count - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (tl_api_specs[mid].key == key)
			return (const struct tl_api_info *)(const void *)&tl_api_specs[mid];
		if (tl_api_specs[mid].key < key)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

const struct tl_api_info *tl_api_info(int16_t key)
{
	return api_find(key);
}

bool tl_api_is_flexible(int16_t key, int16_t version)
{
	const struct tl_api_info *info = api_find(key);
	return info && info->flexible_min >= 0 && version >= info->flexible_min;
}

static void skip_tagged_fields(struct tl_cursor *cursor)
{
	uint32_t count = tl_cursor_uvarint(cursor);
	for (uint32_t i = 0; i < count && !cursor->failed; i++) {
		(void)tl_cursor_uvarint(cursor);
		tl_cursor_skip(cursor, tl_cursor_uvarint(cursor));
	}
}

tl_err tl_request_header_decode(struct tl_cursor *cursor, struct tl_request_header *out)
{
	out->api_key = tl_cursor_i16(cursor);
	out->api_version = tl_cursor_i16(cursor);
	out->correlation_id = tl_cursor_i32(cursor);
	out->client_id = tl_cursor_string(cursor, false, true);
	if (out->client_id.len < 0) {
		out->client_id.ptr = "";
		out->client_id.len = 0;
	}
	if (!cursor->failed && tl_api_is_flexible(out->api_key, out->api_version))
		skip_tagged_fields(cursor);
	return cursor->failed ? TL_ERR_CORRUPT : TL_OK;
}

void tl_request_header_encode(struct tl_buf *buf, const struct tl_request_header *header)
{
	tl_buf_i16(buf, header->api_key);
	tl_buf_i16(buf, header->api_version);
	tl_buf_i32(buf, header->correlation_id);
	tl_buf_string(buf, header->client_id, false);
	if (tl_api_is_flexible(header->api_key, header->api_version))
		tl_buf_uvarint(buf, 0);
}

static bool response_header_v1(int16_t api_key, int16_t api_version)
{
	return api_key != TL_API_API_VERSIONS && tl_api_is_flexible(api_key, api_version);
}

void tl_response_header_encode(struct tl_buf *buf, int16_t api_key, int16_t api_version,
			       int32_t correlation_id)
{
	tl_buf_i32(buf, correlation_id);
	if (response_header_v1(api_key, api_version))
		tl_buf_uvarint(buf, 0);
}

tl_err tl_response_header_decode(struct tl_cursor *cursor, int16_t api_key, int16_t api_version,
				 int32_t *correlation_id_out)
{
	*correlation_id_out = tl_cursor_i32(cursor);
	if (response_header_v1(api_key, api_version))
		skip_tagged_fields(cursor);
	return cursor->failed ? TL_ERR_CORRUPT : TL_OK;
}
