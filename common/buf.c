/* buf.c - cursor, output buffer and arena, see buf.h. */
#include "buf.h"

#include <stdlib.h>

#include "assert.h"

/* ---- cursor ---- */

const uint8_t *tl_cursor_take(struct tl_cursor *cursor, size_t len)
{
	if (cursor->failed || (size_t)(cursor->end - cursor->pos) < len) {
		tl_cursor_fail(cursor);
		return NULL;
	}
	const uint8_t *p = cursor->pos;
	cursor->pos += len;
	return p;
}

int8_t tl_cursor_i8(struct tl_cursor *cursor)
{
	const uint8_t *p = tl_cursor_take(cursor, 1);
	return p ? (int8_t)p[0] : 0;
}

int16_t tl_cursor_i16(struct tl_cursor *cursor)
{
	const uint8_t *p = tl_cursor_take(cursor, 2);
	return p ? (int16_t)tl_be16_get(p) : 0;
}

int32_t tl_cursor_i32(struct tl_cursor *cursor)
{
	const uint8_t *p = tl_cursor_take(cursor, 4);
	return p ? (int32_t)tl_be32_get(p) : 0;
}

int64_t tl_cursor_i64(struct tl_cursor *cursor)
{
	const uint8_t *p = tl_cursor_take(cursor, 8);
	return p ? (int64_t)tl_be64_get(p) : 0;
}

double tl_cursor_f64(struct tl_cursor *cursor)
{
	uint64_t bits = (uint64_t)tl_cursor_i64(cursor);
	double v;
	memcpy(&v, &bits, sizeof(v));
	return v;
}

static uint64_t cursor_uvar(struct tl_cursor *cursor, unsigned max_bytes)
{
	if (cursor->failed)
		return 0;
	const uint8_t *p = cursor->pos;
	size_t left = (size_t)(cursor->end - p);
	uint64_t v = 0;
	for (unsigned i = 0; i < max_bytes && i < left; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			cursor->pos = p + i + 1;
			return v;
		}
	}
	tl_cursor_fail(cursor);
	return 0;
}

uint32_t tl_cursor_uvarint(struct tl_cursor *cursor)
{
	uint64_t v = cursor_uvar(cursor, 5);
	if (v > UINT32_MAX) {
		tl_cursor_fail(cursor);
		return 0;
	}
	return (uint32_t)v;
}

uint64_t tl_cursor_uvarlong(struct tl_cursor *cursor)
{
	return cursor_uvar(cursor, 10);
}

/* Reads a length prefix: classic int16/int32 or compact uvarint N+1. Returns -1 for null. */
static int64_t cursor_len(struct tl_cursor *cursor, bool compact, bool wide)
{
	if (compact)
		return (int64_t)tl_cursor_uvarint(cursor) - 1;
	return wide ? tl_cursor_i32(cursor) : tl_cursor_i16(cursor);
}

struct tl_str tl_cursor_string(struct tl_cursor *cursor, bool compact, bool nullable)
{
	struct tl_str str = {NULL, -1};
	int64_t len = cursor_len(cursor, compact, false);
	if (cursor->failed)
		return str;
	if (len < 0) {
		if (len != -1 || !nullable)
			tl_cursor_fail(cursor);
		return str;
	}
	if (len > 0x7fff) {
		tl_cursor_fail(cursor);
		return str;
	}
	const uint8_t *p = tl_cursor_take(cursor, (size_t)len);
	if (!p)
		return str;
	str.ptr = (const char *)p;
	str.len = (int32_t)len;
	return str;
}

struct tl_bytes tl_cursor_bytes(struct tl_cursor *cursor, bool compact, bool nullable)
{
	struct tl_bytes bytes = {NULL, -1};
	int64_t len = cursor_len(cursor, compact, true);
	if (cursor->failed)
		return bytes;
	if (len < 0) {
		if (len != -1 || !nullable)
			tl_cursor_fail(cursor);
		return bytes;
	}
	const uint8_t *p = tl_cursor_take(cursor, (size_t)len);
	if (!p)
		return bytes;
	bytes.ptr = p;
	bytes.len = (int32_t)len;
	return bytes;
}

int32_t tl_cursor_array_len(struct tl_cursor *cursor, bool compact, bool nullable, int32_t max)
{
	int64_t len = cursor_len(cursor, compact, true);
	if (cursor->failed)
		return 0;
	if (len < 0) {
		if (len != -1 || !nullable)
			tl_cursor_fail(cursor);
		return -1;
	}
	if ((size_t)len > tl_cursor_left(cursor) || len > max) {
		tl_cursor_fail(cursor);
		return 0;
	}
	return (int32_t)len;
}

/* ---- buf ---- */

void tl_buf_init(struct tl_buf *buf)
{
	memset(buf, 0, sizeof(*buf));
}

static void buf_release_spans(struct tl_buf *buf)
{
	for (uint32_t i = 0; i < buf->span_count; i++)
		if (buf->spans[i].release)
			buf->spans[i].release(buf->spans[i].ref);
	buf->span_count = 0;
	buf->span_bytes = 0;
}

void tl_buf_deinit(struct tl_buf *buf)
{
	buf_release_spans(buf);
	free(buf->data);
	free(buf->spans);
	memset(buf, 0, sizeof(*buf));
}

uint8_t *tl_buf_release(struct tl_buf *buf)
{
	uint8_t *data = buf->data;
	buf->data = NULL;
	tl_buf_deinit(buf);
	return data;
}

bool tl_buf_reserve(struct tl_buf *buf, size_t cap)
{
	if (buf->failed)
		return false;
	if (buf->cap >= cap)
		return true;
	uint8_t *data = realloc(buf->data, cap);
	if (!data) {
		buf->failed = true;
		return false;
	}
	buf->data = data;
	buf->cap = cap;
	return true;
}

void tl_buf_reset(struct tl_buf *buf)
{
	buf_release_spans(buf);
	buf->len = 0;
	buf->failed = false;
}

uint8_t *tl_buf_extend(struct tl_buf *buf, size_t len)
{
	if (buf->failed)
		return NULL;
	if (buf->cap - buf->len < len) {
		size_t cap = buf->cap ? buf->cap : 256;
		while (cap - buf->len < len)
			cap *= 2;
		if (!tl_buf_reserve(buf, cap))
			return NULL;
	}
	uint8_t *p = buf->data + buf->len;
	buf->len += len;
	return p;
}

void tl_buf_put(struct tl_buf *buf, const void *data, size_t len)
{
	uint8_t *p = tl_buf_extend(buf, len);
	if (p && len)
		memcpy(p, data, len);
}

void tl_buf_i8(struct tl_buf *buf, int8_t v)
{
	uint8_t *p = tl_buf_extend(buf, 1);
	if (p)
		p[0] = (uint8_t)v;
}

void tl_buf_i16(struct tl_buf *buf, int16_t v)
{
	uint8_t *p = tl_buf_extend(buf, 2);
	if (p)
		tl_be16_put(p, (uint16_t)v);
}

void tl_buf_i32(struct tl_buf *buf, int32_t v)
{
	uint8_t *p = tl_buf_extend(buf, 4);
	if (p)
		tl_be32_put(p, (uint32_t)v);
}

void tl_buf_i64(struct tl_buf *buf, int64_t v)
{
	uint8_t *p = tl_buf_extend(buf, 8);
	if (p)
		tl_be64_put(p, (uint64_t)v);
}

void tl_buf_f64(struct tl_buf *buf, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	tl_buf_i64(buf, (int64_t)bits);
}

void tl_buf_uvarlong(struct tl_buf *buf, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	tl_buf_put(buf, tmp, n);
}

void tl_buf_uvarint(struct tl_buf *buf, uint32_t v)
{
	tl_buf_uvarlong(buf, v);
}

/* Zig-zag, on unsigned values only: 0 - sign bit is all ones for a negative value, and
 * no signed shift (implementation-defined in C for negative values) is involved. */
static uint32_t zigzag32(int32_t v)
{
	uint32_t u = (uint32_t)v;
	return (u << 1) ^ (0u - (u >> 31));
}

static uint64_t zigzag64(int64_t v)
{
	uint64_t u = (uint64_t)v;
	return (u << 1) ^ (0u - (u >> 63));
}

void tl_buf_varint(struct tl_buf *buf, int32_t v)
{
	tl_buf_uvarlong(buf, zigzag32(v));
}

void tl_buf_varlong(struct tl_buf *buf, int64_t v)
{
	tl_buf_uvarlong(buf, zigzag64(v));
}

static void buf_len(struct tl_buf *buf, int64_t len, bool compact, bool wide)
{
	if (compact)
		tl_buf_uvarint(buf, (uint32_t)(len + 1));
	else if (wide)
		tl_buf_i32(buf, (int32_t)len);
	else
		tl_buf_i16(buf, (int16_t)len);
}

void tl_buf_string(struct tl_buf *buf, struct tl_str str, bool compact)
{
	if (!str.ptr || str.len < 0) {
		buf_len(buf, -1, compact, false);
		return;
	}
	buf_len(buf, str.len, compact, false);
	tl_buf_put(buf, str.ptr, (size_t)str.len);
}

void tl_buf_bytes(struct tl_buf *buf, struct tl_bytes bytes, bool compact)
{
	if (bytes.len < 0) {
		buf_len(buf, -1, compact, true);
		return;
	}
	buf_len(buf, bytes.len, compact, true);
	tl_buf_put(buf, bytes.ptr, (size_t)bytes.len);
}

void tl_buf_array_len(struct tl_buf *buf, int32_t count, bool compact)
{
	buf_len(buf, count < 0 ? -1 : count, compact, true);
}

static void buf_span(struct tl_buf *buf, int fd, const uint8_t *mem, int64_t offset, int64_t bytes,
		     void (*release)(void *ref), void *ref)
{
	if (!buf->failed && buf->span_count == buf->span_cap) {
		uint32_t cap = buf->span_cap ? buf->span_cap * 2 : 8;
		struct tl_file_span *spans = realloc(buf->spans, cap * sizeof(*spans));
		if (!spans)
			buf->failed = true;
		else {
			buf->spans = spans;
			buf->span_cap = cap;
		}
	}
	if (buf->failed) {
		if (release)
			release(ref);
		return;
	}
	struct tl_file_span *span = &buf->spans[buf->span_count++];
	span->at = buf->len;
	span->fd = fd;
	span->mem = mem;
	span->offset = offset;
	span->bytes = bytes;
	span->release = release;
	span->ref = ref;
	buf->span_bytes += bytes;
}

void tl_buf_file_span(struct tl_buf *buf, int fd, int64_t offset, int64_t bytes,
		      void (*release)(void *ref), void *ref)
{
	buf_span(buf, fd, NULL, offset, bytes, release, ref);
}

void tl_buf_mem_span(struct tl_buf *buf, const uint8_t *mem, int64_t bytes,
		     void (*release)(void *ref), void *ref)
{
	TL_ASSERT(mem || bytes == 0);
	buf_span(buf, -1, mem, 0, bytes, release, ref);
}

size_t tl_uvarint_size(uint32_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t tl_varint_size(int32_t v)
{
	return tl_uvarint_size(zigzag32(v));
}

size_t tl_varlong_size(int64_t v)
{
	uint64_t u = zigzag64(v);
	size_t n = 1;
	while (u >= 0x80) {
		u >>= 7;
		n++;
	}
	return n;
}

/* ---- arena ---- */

struct tl_arena_chunk {
	struct tl_arena_chunk *next;
	size_t used;
	size_t cap;
	_Alignas(16) uint8_t data[];
};

void tl_arena_init(struct tl_arena *arena, size_t bytes_max)
{
	arena->head = NULL;
	arena->bytes = 0;
	arena->bytes_max = bytes_max;
}

void tl_arena_deinit(struct tl_arena *arena)
{
	struct tl_arena_chunk *chunk = arena->head;
	while (chunk) {
		struct tl_arena_chunk *next = chunk->next;
		free(chunk);
		chunk = next;
	}
	arena->head = NULL;
	arena->bytes = 0;
}

void *tl_arena_alloc(struct tl_arena *arena, size_t bytes)
{
	bytes = (bytes + 7) & ~(size_t)7;
	if (bytes == 0)
		bytes = 8;
	if (arena->bytes_max && arena->bytes + bytes > arena->bytes_max)
		return NULL;
	struct tl_arena_chunk *chunk = arena->head;
	if (!chunk || chunk->cap - chunk->used < bytes) {
		size_t cap = TL_MAX(bytes, (size_t)4096 - sizeof(*chunk));
		chunk = malloc(sizeof(*chunk) + cap);
		if (!chunk)
			return NULL;
		chunk->next = arena->head;
		chunk->used = 0;
		chunk->cap = cap;
		arena->head = chunk;
	}
	void *p = chunk->data + chunk->used;
	chunk->used += bytes;
	arena->bytes += bytes;
	memset(p, 0, bytes);
	return p;
}

void *tl_arena_array(struct tl_arena *arena, size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		return NULL;
	return tl_arena_alloc(arena, count * size);
}
