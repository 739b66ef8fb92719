/* buf.h - bytes in and bytes out.
 * tl_cursor reads big-endian integers, varints and Kafka strings from a borrowed
 * byte range. Its failure is sticky: the first overrun sets `failed` and every later
 * read returns 0 / empty, so a decoder checks once at the end.
 * tl_buf is a growable output buffer. It may also hold "file spans": byte ranges of
 * an open file that the sender transmits with sendfile(2) in place, so fetch
 * responses carry log bytes without copying them through user space.
 * tl_arena is a bump allocator that lives as long as one request. */
#ifndef TL_COMMON_BUF_H
#define TL_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tally/error.h"

/* ---- big-endian integers ---- */

static inline uint16_t tl_be16_get(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t tl_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t tl_be64_get(const uint8_t *p)
{
	return (uint64_t)tl_be32_get(p) << 32 | tl_be32_get(p + 4);
}
static inline void tl_be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void tl_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void tl_be64_put(uint8_t *p, uint64_t v)
{
	tl_be32_put(p, (uint32_t)(v >> 32));
	tl_be32_put(p + 4, (uint32_t)v);
}

/* ---- byte ranges ---- */

/* A Kafka string or bytes value pointing into someone else's memory. len -1 = null. */
struct tl_str {
	const char *ptr;
	int32_t len;
};
struct tl_bytes {
	const uint8_t *ptr;
	int32_t len;
};

static inline struct tl_str tl_str_of(const char *s)
{
	struct tl_str str = {s, s ? (int32_t)strlen(s) : -1};
	return str;
}
static inline bool tl_str_eq(struct tl_str a, struct tl_str b)
{
	return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}
static inline bool tl_str_eq_c(struct tl_str a, const char *c)
{
	return tl_str_eq(a, tl_str_of(c));
}

/* ---- cursor (decoding) ---- */

struct tl_cursor {
	const uint8_t *pos;
	const uint8_t *end;
	bool failed; /* set by the first overrun or malformed value; later reads return 0 */
};

static inline void tl_cursor_init(struct tl_cursor *cursor, const void *data, size_t len)
{
	cursor->pos = data;
	cursor->end = (const uint8_t *)data + len;
	cursor->failed = false;
}
static inline size_t tl_cursor_left(const struct tl_cursor *cursor)
{
	return cursor->failed ? 0 : (size_t)(cursor->end - cursor->pos);
}
static inline void tl_cursor_fail(struct tl_cursor *cursor)
{
	cursor->failed = true;
	cursor->pos = cursor->end;
}

int8_t tl_cursor_i8(struct tl_cursor *cursor);
int16_t tl_cursor_i16(struct tl_cursor *cursor);
int32_t tl_cursor_i32(struct tl_cursor *cursor);
int64_t tl_cursor_i64(struct tl_cursor *cursor);
double tl_cursor_f64(struct tl_cursor *cursor);
/* Returns a pointer to @len bytes and advances, or NULL (and fails) on overrun. */
const uint8_t *tl_cursor_take(struct tl_cursor *cursor, size_t len);
static inline void tl_cursor_skip(struct tl_cursor *cursor, size_t len)
{
	if (cursor->failed || (size_t)(cursor->end - cursor->pos) < len)
		tl_cursor_fail(cursor);
	else
		cursor->pos += len;
}
/* Protobuf-style unsigned varint, at most 5 bytes (uvarint) or 10 (uvarlong). */
uint32_t tl_cursor_uvarint(struct tl_cursor *cursor);
uint64_t tl_cursor_uvarlong(struct tl_cursor *cursor);
/* Zig-zag signed varint / varlong (record batch fields). Inline for the one-byte case,
 * most of a record's fields: the record walks of validation and compaction read
 * several per record. */
static inline int32_t tl_cursor_varint(struct tl_cursor *cursor)
{
	uint32_t v;
	if (!cursor->failed && cursor->pos < cursor->end && cursor->pos[0] < 0x80)
		v = *cursor->pos++;
	else
		v = tl_cursor_uvarint(cursor);
	return (int32_t)((v >> 1) ^ (~(v & 1) + 1));
}
static inline int64_t tl_cursor_varlong(struct tl_cursor *cursor)
{
	uint64_t v;
	if (!cursor->failed && cursor->pos < cursor->end && cursor->pos[0] < 0x80)
		v = *cursor->pos++;
	else
		v = tl_cursor_uvarlong(cursor);
	return (int64_t)((v >> 1) ^ (~(v & 1) + 1));
}
/* Kafka strings and bytes. @compact selects the flexible-version encoding. A null
 * where !@nullable fails the cursor. */
struct tl_str tl_cursor_string(struct tl_cursor *cursor, bool compact, bool nullable);
struct tl_bytes tl_cursor_bytes(struct tl_cursor *cursor, bool compact, bool nullable);
/* Array length: -1 for null (only if @nullable), else 0..n. A count larger than the
 * bytes left (every element takes at least one byte) or than @max fails the cursor. */
int32_t tl_cursor_array_len(struct tl_cursor *cursor, bool compact, bool nullable, int32_t max);

/* ---- buf (encoding) ---- */

/* A range of an open file, sent with sendfile(2), or (@mem set, @fd -1) a run of memory
 * the buf does not own, sent in place with writev. The holder of @ref keeps the file
 * open (the memory alive and unchanged) until @release runs (once, when the buf is
 * reset or freed). */
struct tl_file_span {
	size_t at; /* offset in the buf's memory bytes where the span is inserted */
	int fd;
	const uint8_t *mem; /* a memory span's bytes; NULL for a file span */
	int64_t offset;     /* file position */
	int64_t bytes;
	void (*release)(void *ref);
	void *ref;
};

struct tl_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	struct tl_file_span *spans;
	uint32_t span_count;
	uint32_t span_cap;
	int64_t span_bytes; /* sum of spans' bytes */
	bool failed;        /* an allocation failed; the contents are unusable */
};

void tl_buf_init(struct tl_buf *buf);
void tl_buf_deinit(struct tl_buf *buf);
/* Hands the buf's memory to the caller (who free()s it) and leaves the buf empty, as
 * after tl_buf_init. */
uint8_t *tl_buf_release(struct tl_buf *buf);
/* Makes the buf's capacity at least @cap bytes, in one allocation. False (and `failed`
 * set) if memory runs out. */
bool tl_buf_reserve(struct tl_buf *buf, size_t cap);
/* Empties the buf (releasing spans) but keeps its memory. */
void tl_buf_reset(struct tl_buf *buf);
/* Total bytes the buf will put on the wire: memory plus file spans. */
static inline int64_t tl_buf_total(const struct tl_buf *buf)
{
	return (int64_t)buf->len + buf->span_bytes;
}
/* Makes room for @len more bytes and returns a pointer to them; the caller writes
 * them. Returns NULL and sets `failed` if memory runs out. */
uint8_t *tl_buf_extend(struct tl_buf *buf, size_t len);
void tl_buf_put(struct tl_buf *buf, const void *data, size_t len);
void tl_buf_i8(struct tl_buf *buf, int8_t v);
void tl_buf_i16(struct tl_buf *buf, int16_t v);
void tl_buf_i32(struct tl_buf *buf, int32_t v);
void tl_buf_i64(struct tl_buf *buf, int64_t v);
void tl_buf_f64(struct tl_buf *buf, double v);
void tl_buf_uvarint(struct tl_buf *buf, uint32_t v);
void tl_buf_uvarlong(struct tl_buf *buf, uint64_t v);
void tl_buf_varint(struct tl_buf *buf, int32_t v);
void tl_buf_varlong(struct tl_buf *buf, int64_t v);
void tl_buf_string(struct tl_buf *buf, struct tl_str str, bool compact);
void tl_buf_bytes(struct tl_buf *buf, struct tl_bytes bytes, bool compact);
/* Array length prefix: -1 writes null. */
void tl_buf_array_len(struct tl_buf *buf, int32_t count, bool compact);
/* Appends a file span at the current end. Takes @ref: @release is called even on
 * failure. */
void tl_buf_file_span(struct tl_buf *buf, int fd, int64_t offset, int64_t bytes,
		      void (*release)(void *ref), void *ref);

/* Appends a memory span at the current end: @bytes at @mem, borrowed until @release
 * runs; takes @ref like tl_buf_file_span. */
void tl_buf_mem_span(struct tl_buf *buf, const uint8_t *mem, int64_t bytes,
		     void (*release)(void *ref), void *ref);

/* Bytes a uvarint / zig-zag varint takes. */
size_t tl_uvarint_size(uint32_t v);
size_t tl_varint_size(int32_t v);
size_t tl_varlong_size(int64_t v);

/* ---- arena ---- */

struct tl_arena_chunk;
struct tl_arena {
	struct tl_arena_chunk *head;
	size_t bytes;     /* allocated so far */
	size_t bytes_max; /* limit; 0 = none */
};

void tl_arena_init(struct tl_arena *arena, size_t bytes_max);
void tl_arena_deinit(struct tl_arena *arena);
/* Zeroed, 8-byte aligned memory valid until deinit. NULL past bytes_max or on OOM. */
void *tl_arena_alloc(struct tl_arena *arena, size_t bytes);
/* Allocates @count elements of @size, checking the product. */
void *tl_arena_array(struct tl_arena *arena, size_t count, size_t size);

#endif
