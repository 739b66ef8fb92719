/* cleaner.c - log compaction's worker: the offset map and the rewrite of sealed segments.
 * See cleaner.h for the rules. Invariants:
 * (1) The job reads only its inputs (sealed, durable, never written again) through its
 *     own descriptors and writes only `.cleaned` files, which nothing else reads until
 *     the log thread renames them: a crash at any point leaves the log as it was.
 * (2) Every output batch passes the stored-batch check (tl_batch_validate_stored): its
 *     CRC is recomputed after recordsCount and batchLength change.
 * (3) Output offsets are a subsequence of input offsets, in order; the first and last
 *     batch of every group survive, so the output starts at the group's base offset and
 *     ends at its end offset. */
#include "log/cleaner.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/time.h"
#include "protocol/batch.h"
#include "protocol/records.h"
#include "protocol/validate.h"

#define READ_BUFFER_BYTES  (1 << 20)
#define WRITE_BUFFER_BYTES (1 << 20)
#define BATCH_BYTES_MAX    (64 << 20) /* a stored batch larger than this is corrupt */
#define MAP_SLOTS_MIN      16
#define MAP_SLOTS_START    (1 << 14)   /* 384 KiB; tl_cleaner_map_reserve grows it */
#define RECORDS_BYTES_MAX  (256 << 20) /* a compressed batch's records, decompressed */

/* ---- the offset map ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* Two 64-bit hashes of @key, eight bytes a step (the last word zero-padded), each
 * finalised: a false match needs both to collide, about 2^-128 per pair of keys. Each
 * step is a bijection of its state and of its word; the length goes into the second
 * chain only, so keys of up to 8 bytes never collide (the first chain tells their
 * padded words apart, the second their lengths). Every record of the dirty range is
 * hashed by the map pass: byte at a time this was a fifth of the cleaner's CPU. */
static void key_hash(const uint8_t *key, size_t len, uint64_t *h1, uint64_t *h2)
{
	uint64_t a = 0xcbf29ce484222325ULL;
	uint64_t b = 0x243f6a8885a308d3ULL + len;
	uint64_t w;
	size_t i = 0;
	for (; len - i > 8; i += 8) {
		memcpy(&w, key + i, 8);
		a = (a ^ w) * 0x9e3779b97f4a7c15ULL;
		b = (b + w) * 0xbf58476d1ce4e5b9ULL;
		b ^= b >> 29;
	}
	w = 0;
	memcpy(&w, key + i, len - i);
	a = (a ^ w) * 0x9e3779b97f4a7c15ULL;
	b = (b + w) * 0xbf58476d1ce4e5b9ULL;
	*h1 = mix64(a);
	*h2 = mix64(b ^ (b >> 29));
}

/* Empty slots for @n slots at @slots. */
static void slots_clear(struct tl_cleaner_slot *slots, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		slots[i].offset = -1;
}

tl_err tl_cleaner_map_init(struct tl_cleaner_map *map, uint64_t keys_hint, int64_t buffer_bytes)
{
	uint64_t max_slots = buffer_bytes > 0 ? (uint64_t)buffer_bytes / TL_CLEANER_SLOT_BYTES : 0;
	/* The hint is an upper bound (every record a new key); start at most at
	 * MAP_SLOTS_START and grow by doubling (tl_cleaner_map_reserve), so that a pass over
	 * few keys neither allocates nor clears a buffer sized for a record per key. */
	uint64_t want = TL_MIN(keys_hint + keys_hint / 8 + 16, (uint64_t)MAP_SLOTS_START);
	uint64_t n = MAP_SLOTS_MIN;
	while (n < want && n * 2 <= max_slots)
		n *= 2;
	memset(map, 0, sizeof(*map));
	map->slots = malloc(n * sizeof(*map->slots));
	if (!map->slots)
		return TL_ERR_NOMEM;
	slots_clear(map->slots, n);
	map->slot_count = n;
	map->slot_count_max = TL_MAX(n, max_slots);
	map->used_max = n / 10 * 9;
	return TL_OK;
}

void tl_cleaner_map_deinit(struct tl_cleaner_map *map)
{
	free(map->slots);
	memset(map, 0, sizeof(*map));
}

static struct tl_cleaner_slot *map_find(const struct tl_cleaner_map *map, uint64_t h1, uint64_t h2)
{
	uint64_t mask = map->slot_count - 1;
	for (uint64_t i = h1 & mask;; i = (i + 1) & mask) {
		struct tl_cleaner_slot *slot = &map->slots[i];
		if (slot->offset < 0 || (slot->h1 == h1 && slot->h2 == h2))
			return slot;
	}
}

bool tl_cleaner_map_has_room(const struct tl_cleaner_map *map, uint64_t count)
{
	return map->used + count <= map->used_max;
}

/* Doubles the slots until @count more keys fit, within the buffer. */
tl_err tl_cleaner_map_reserve(struct tl_cleaner_map *map, uint64_t count)
{
	uint64_t n = map->slot_count;
	while (map->used + count > n / 10 * 9 && n * 2 <= map->slot_count_max)
		n *= 2;
	if (n == map->slot_count)
		return tl_cleaner_map_has_room(map, count) ? TL_OK : TL_ERR_LIMIT;
	struct tl_cleaner_slot *slots = malloc(n * sizeof(*slots));
	if (!slots)
		return TL_ERR_NOMEM;
	slots_clear(slots, n);
	struct tl_cleaner_map bigger = {.slots = slots, .slot_count = n, .used_max = n / 10 * 9};
	for (uint64_t i = 0; i < map->slot_count; i++) {
		const struct tl_cleaner_slot *old = &map->slots[i];
		if (old->offset < 0)
			continue;
		struct tl_cleaner_slot *slot = map_find(&bigger, old->h1, old->h2);
		TL_ASSERT(slot->offset < 0);
		*slot = *old;
		bigger.used++;
	}
	TL_ASSERT(bigger.used == map->used);
	bigger.slot_count_max = map->slot_count_max;
	free(map->slots);
	*map = bigger;
	return tl_cleaner_map_has_room(map, count) ? TL_OK : TL_ERR_LIMIT;
}

bool tl_cleaner_map_put(struct tl_cleaner_map *map, const uint8_t *key, size_t len, int64_t offset)
{
	uint64_t h1, h2;
	key_hash(key, len, &h1, &h2);
	struct tl_cleaner_slot *slot = map_find(map, h1, h2);
	if (slot->offset < 0) {
		if (map->used >= map->used_max)
			return false;
		map->used++;
		slot->h1 = h1;
		slot->h2 = h2;
	}
	if (offset > slot->offset)
		slot->offset = offset;
	return true;
}

int64_t tl_cleaner_map_get(const struct tl_cleaner_map *map, const uint8_t *key, size_t len)
{
	uint64_t h1, h2;
	key_hash(key, len, &h1, &h2);
	return map_find(map, h1, h2)->offset;
}

/* ---- names ---- */

void tl_cleaner_file_name(char *out, size_t out_bytes, int64_t base, int64_t end,
			  const char *suffix)
{
	snprintf(out, out_bytes, "%020" PRId64 ".%020" PRId64 ".%s", base, end, suffix);
}

bool tl_cleaner_file_parse(const char *name, const char *suffix, int64_t *base_out,
			   int64_t *end_out)
{
	char *end;
	long long base = strtoll(name, &end, 10);
	if (end != name + 20 || *end != '.' || base < 0)
		return false;
	const char *p = end + 1;
	long long last = strtoll(p, &end, 10);
	if (end != p + 20 || *end != '.' || strcmp(end + 1, suffix) != 0 || last < base)
		return false;
	*base_out = base;
	*end_out = last;
	return true;
}

/* ---- reading batches ---- */

struct reader {
	int fd;
	int64_t file_bytes;
	int64_t position; /* of the next batch */
	uint8_t *buf;
	size_t cap;
	int64_t buf_pos;
	size_t buf_len;
	bool header_only; /* skip the CRC check: the map pass (see reader_next) */
};

/* The next whole batch: TL_OK with *data and *h set, TL_ERR_NOT_FOUND at the end,
 * TL_ERR_CORRUPT or TL_ERR_IO. @data stays valid until the next call. A header_only
 * reader checks the header, not the CRC: the map pass reads no byte that the rewrite
 * pass (a full reader, over every batch below map_end) does not check before any output
 * is used, and decoding untrusted records is bounded by the cursor. */
static tl_err reader_next(struct reader *r, const uint8_t **data, size_t *len,
			  struct tl_batch_header *h)
{
	if (r->position >= r->file_bytes)
		return TL_ERR_NOT_FOUND;
	for (int pass = 0; pass < 3; pass++) {
		int64_t have = r->buf_pos + (int64_t)r->buf_len - r->position;
		if (r->position >= r->buf_pos && have >= TL_BATCH_LOG_OVERHEAD) {
			const uint8_t *p = r->buf + (r->position - r->buf_pos);
			int64_t size = tl_batch_size(p, (size_t)have);
			if (size < TL_BATCH_HEADER_BYTES || size > BATCH_BYTES_MAX ||
			    size > r->file_bytes - r->position)
				return TL_ERR_CORRUPT;
			if (have >= size) {
				const char *why;
				tl_err checked =
					r->header_only ? tl_batch_header_decode(p, (size_t)size, h)
						       : tl_batch_validate_stored(p, (size_t)size,
										  h, &why);
				if (checked != TL_OK || h->records_count < 0)
					return TL_ERR_CORRUPT;
				*data = p;
				*len = (size_t)size;
				r->position += size;
				return TL_OK;
			}
			if ((size_t)size > r->cap) {
				uint8_t *bigger = realloc(r->buf, (size_t)size);
				if (!bigger)
					return TL_ERR_NOMEM;
				r->buf = bigger;
				r->cap = (size_t)size;
			}
		}
		size_t want = (size_t)TL_MIN((int64_t)r->cap, r->file_bytes - r->position);
		ssize_t n = pread(r->fd, r->buf, want, (off_t)r->position);
		if (n < 0)
			return TL_ERR_IO;
		r->buf_pos = r->position;
		r->buf_len = (size_t)n;
	}
	return TL_ERR_CORRUPT;
}

/* ---- one record at a time ---- */

struct record {
	const uint8_t *raw; /* length varint included */
	size_t raw_len;
	int8_t attributes;
	int64_t timestamp_delta;
	const uint8_t *tail; /* from offsetDelta to the record's end */
	int32_t offset_delta;
	const uint8_t *key;
	int32_t key_len; /* -1: null */
	int32_t value_len;
};

/* Decodes the next record of a batch's records (decompressed). False on malformed bytes. */
static bool record_next(struct tl_cursor *c, struct record *rec)
{
	const uint8_t *start = c->pos;
	int32_t len = tl_cursor_varint(c);
	if (c->failed || len < 0 || (size_t)len > tl_cursor_left(c))
		return false;
	struct tl_cursor body;
	tl_cursor_init(&body, c->pos, (size_t)len);
	tl_cursor_skip(c, (size_t)len);
	rec->attributes = tl_cursor_i8(&body);
	rec->timestamp_delta = tl_cursor_varlong(&body);
	rec->tail = body.pos;
	rec->offset_delta = tl_cursor_varint(&body);
	rec->key_len = tl_cursor_varint(&body);
	rec->key = NULL;
	if (rec->key_len > 0)
		rec->key = tl_cursor_take(&body, (size_t)rec->key_len);
	rec->value_len = tl_cursor_varint(&body);
	if (body.failed || rec->key_len < -1 || rec->value_len < -1 || rec->offset_delta < 0)
		return false;
	rec->raw = start;
	rec->raw_len = (size_t)(c->pos - start);
	return true;
}

/* ---- the delete horizon (KIP-534) ----
 * A tombstone must outlive, by delete.retention.ms, the pass that removed the older values
 * of its key: a consumer that read one of them before that pass must still find the
 * tombstone after it. Its own timestamp says nothing of that (a producer sets it, and a
 * pass may come much later), so, as Kafka does, the first pass that keeps a batch holding
 * tombstones (or the marker of a transaction with no batch left) writes the batch again
 * with attribute bit 6 set and the horizon, now + delete.retention.ms, as its
 * baseTimestamp; every record's timestamp delta is re-expressed against it, so readers
 * (baseTimestamp + delta) see the timestamps they saw before. A later pass at or past the
 * horizon drops the tombstones and the marker. */

/* Whether batch @h holds a delete horizon that @now_ms has reached. */
static bool horizon_passed(const struct tl_batch_header *h, int64_t now_ms)
{
	return (h->attributes & TL_BATCH_ATTR_DELETE_HORIZON) && h->base_timestamp <= now_ms;
}

/* Appends to @out (emptied first) the @count records at @records (@len bytes, as a batch
 * holds them uncompressed) with each timestamp delta taken against @new_base instead of
 * @old_base. TL_ERR_LIMIT when a timestamp cannot be expressed so (int64 overflow: a
 * client's absurd timestamps), TL_ERR_NOMEM, TL_ERR_CORRUPT on malformed records. */
static tl_err records_rebase(const uint8_t *records, size_t len, int32_t count, int64_t old_base,
			     int64_t new_base, struct tl_buf *out)
{
	out->len = 0;
	out->failed = false;
	struct tl_cursor c;
	tl_cursor_init(&c, records, len);
	for (int32_t k = 0; k < count; k++) {
		struct record rec;
		if (!record_next(&c, &rec))
			return TL_ERR_CORRUPT;
		int64_t timestamp, delta;
		if (__builtin_add_overflow(old_base, rec.timestamp_delta, &timestamp) ||
		    __builtin_sub_overflow(timestamp, new_base, &delta))
			return TL_ERR_LIMIT;
		size_t tail_len = (size_t)(rec.raw + rec.raw_len - rec.tail);
		size_t body_len = 1 + tl_varlong_size(delta) + tail_len;
		if (body_len > INT32_MAX)
			return TL_ERR_LIMIT;
		tl_buf_varint(out, (int32_t)body_len);
		tl_buf_put(out, &rec.attributes, 1);
		tl_buf_varlong(out, delta);
		tl_buf_put(out, rec.tail, tail_len);
	}
	return out->failed ? TL_ERR_NOMEM : TL_OK;
}

/* ---- compressed batches ---- */

/* What reading and writing compressed batches takes, for one pass; the cleaner's
 * thread owns it. Buffers keep their memory from batch to batch. */
struct codecs {
	struct tl_batch_scratch scratch; /* a batch's records, decompressed */
	struct tl_buf kept;              /* the records that survive, uncompressed */
	struct tl_buf rebased;           /* ... their timestamps against a delete horizon */
	struct tl_buf body;              /* ... compressed again with the batch's codec */
	ZSTD_CCtx *zstd;                 /* created on first use */
};

static void codecs_init(struct codecs *cx)
{
	tl_batch_scratch_init(&cx->scratch, RECORDS_BYTES_MAX);
	tl_buf_init(&cx->kept);
	tl_buf_init(&cx->rebased);
	tl_buf_init(&cx->body);
	cx->zstd = NULL;
}

static void codecs_deinit(struct codecs *cx)
{
	tl_batch_scratch_deinit(&cx->scratch);
	tl_buf_deinit(&cx->kept);
	tl_buf_deinit(&cx->rebased);
	tl_buf_deinit(&cx->body);
	ZSTD_freeCCtx(cx->zstd);
}

/* The records of the batch @data (@len bytes, header @h): in place when uncompressed,
 * else decompressed into cx->scratch (valid until the next call). TL_ERR_CORRUPT when
 * they do not decompress: the batch passed its CRC, so the bytes are ours and wrong. */
static tl_err batch_records(struct codecs *cx, const uint8_t *data, size_t len,
			    const struct tl_batch_header *h, const uint8_t **records_out,
			    size_t *records_len_out)
{
	const uint8_t *body = data + TL_BATCH_HEADER_BYTES;
	size_t body_len = len - TL_BATCH_HEADER_BYTES;
	enum tl_compression codec = tl_batch_compression(h);
	if (codec == TL_COMPRESSION_NONE) {
		*records_out = body;
		*records_len_out = body_len;
		return TL_OK;
	}
	tl_err err = tl_batch_decompress(&cx->scratch, codec, body, body_len, records_len_out);
	if (err == TL_ERR_NOMEM)
		return err;
	if (err != TL_OK)
		return TL_ERR_CORRUPT;
	*records_out = cx->scratch.buf;
	return TL_OK;
}

/* @records (@len bytes) compressed with @codec into cx->body (replaced). */
static tl_err records_compress(struct codecs *cx, enum tl_compression codec, const uint8_t *records,
			       size_t len)
{
	cx->body.len = 0;
	cx->body.failed = false;
	if (codec != TL_COMPRESSION_ZSTD) {
		tl_err err = tl_batch_compress(codec, records, len, &cx->body);
		return err != TL_OK || cx->body.failed ? TL_ERR_NOMEM : TL_OK;
	}
	if (!cx->zstd && !(cx->zstd = ZSTD_createCCtx()))
		return TL_ERR_NOMEM;
	size_t n;
	return tl_records_zstd_compress(cx->zstd, records, len, &cx->body, &n);
}

/* ---- the job ---- */

static bool batch_is_aborted(const struct tl_cleaner_job *job, const struct tl_batch_header *h)
{
	if (!tl_batch_is_transactional(h) || tl_batch_is_control(h))
		return false;
	/* Entries are few; each names a producer and the range its transaction spanned. */
	for (uint32_t i = 0; i < job->aborted_count; i++) {
		const struct tl_cleaner_aborted *a = &job->aborted[i];
		if (a->producer_id == h->producer_id && a->first_offset <= h->base_offset &&
		    h->base_offset < a->last_offset)
			return true;
	}
	return false;
}

static bool batch_is_producers_last(const struct tl_cleaner_job *job,
				    const struct tl_batch_header *h)
{
	if (h->producer_id < 0)
		return false;
	int64_t last = tl_batch_last_offset(h);
	uint32_t lo = 0, hi = job->last_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (job->lasts[mid].last_offset < last)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < job->last_count && job->lasts[lo].last_offset == last; lo++)
		if (job->lasts[lo].producer_id == h->producer_id)
			return true;
	return false;
}

static void job_error(struct tl_cleaner_job *job, tl_err err, const char *what, int64_t base)
{
	if (job->err != TL_OK)
		return;
	job->err = err;
	snprintf(job->error, sizeof(job->error), "%s %020" PRId64 ": %s", what, base,
		 err == TL_ERR_IO ? (strerrorname_np(errno) ? strerrorname_np(errno) : "?")
				  : tl_err_name(err));
}

/* Sleeps as long as the job is ahead of io_bytes_per_sec. */
static void throttle(const struct tl_cleaner_job *job, int64_t started_ns)
{
	if (job->io_bytes_per_sec <= 0)
		return;
	int64_t bytes = job->bytes_read + job->bytes_written;
	int64_t due_ns = (int64_t)((double)bytes * 1e9 / (double)job->io_bytes_per_sec);
	int64_t ahead_ns = due_ns - (tl_mono_ns() - started_ns);
	if (ahead_ns > 1000000) {
		struct timespec ts = {.tv_sec = ahead_ns / 1000000000,
				      .tv_nsec = ahead_ns % 1000000000};
		nanosleep(&ts, NULL);
	}
}

/* ---- the survivors ----
 * The offsets the rewrite pass keeps in the mapped range [first_dirty, map_end): each
 * map slot's (the newest record of its key) and those of the records the map pass could
 * not map (null key, map full), ascending. A mapped batch holding none of them loses
 * every record, so the rewrite pass drops it from its header alone, without
 * decompressing it and hashing its keys a second time. That is most batches of a log
 * whose keys are rewritten often, the case compaction is for. 8 bytes per key (a third
 * of its map slot); without them (no memory, or more unmapped records than the map has
 * slots) every batch is walked record by record, with the same result. */
struct survivors {
	int64_t *offsets;
	size_t count;
	size_t cap;
	size_t cap_max;
	size_t next;        /* first offset not below the last batch asked about */
	int64_t asked_last; /* that batch's last offset (asks come in order) */
	bool usable;
};

static void survivors_drop(struct survivors *sv)
{
	free(sv->offsets);
	sv->offsets = NULL;
	sv->count = sv->cap = 0;
	sv->usable = false;
}

static bool survivors_grow(struct survivors *sv, size_t need)
{
	if (need <= sv->cap)
		return true;
	size_t cap = sv->cap ? sv->cap : 1024;
	while (cap < need)
		cap *= 2;
	int64_t *grown = need <= sv->cap_max ? realloc(sv->offsets, cap * sizeof(*grown)) : NULL;
	if (!grown) {
		survivors_drop(sv);
		return false;
	}
	sv->offsets = grown;
	sv->cap = cap;
	return true;
}

/* A record the map pass could not map: kept by the rewrite pass whatever the map says. */
static void survivors_push(struct survivors *sv, int64_t offset)
{
	if (sv->usable && survivors_grow(sv, sv->count + 1))
		sv->offsets[sv->count++] = offset;
}

static int offset_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Adds the map's offsets and sorts; after this the set is only asked. */
static void survivors_seal(struct survivors *sv, const struct tl_cleaner_map *map)
{
	if (!sv->usable || !survivors_grow(sv, sv->count + map->used))
		return;
	for (uint64_t i = 0; i < map->slot_count; i++)
		if (map->slots[i].offset >= 0)
			sv->offsets[sv->count++] = map->slots[i].offset;
	if (sv->count > 1) /* none: a pass with nothing dirty */
		qsort(sv->offsets, sv->count, sizeof(*sv->offsets), offset_cmp);
}

/* Whether the mapped batch [@base, @last] holds no survivor (false when unknown). Asked
 * for batches in offset order. */
static bool survivors_none_in(struct survivors *sv, int64_t base, int64_t last)
{
	if (!sv->usable)
		return false;
	TL_ASSERT(base > sv->asked_last);
	sv->asked_last = last;
	while (sv->next < sv->count && sv->offsets[sv->next] < base)
		sv->next++;
	return sv->next == sv->count || sv->offsets[sv->next] > last;
}

/* Pass 1: the map over [first_dirty, clean_end); sets map_end. */
static tl_err map_build(struct tl_cleaner_job *job, struct tl_cleaner_map *map, struct codecs *cx,
			struct survivors *sv, int64_t started_ns)
{
	job->map_end = job->clean_end;
	struct reader r = {.cap = READ_BUFFER_BYTES, .header_only = true};
	r.buf = malloc(r.cap);
	if (!r.buf)
		return TL_ERR_NOMEM;
	tl_err err = TL_OK;
	for (uint32_t i = 0; i < job->input_count && err == TL_OK; i++) {
		const struct tl_cleaner_input *in = &job->inputs[i];
		if (in->next_offset <= job->first_dirty)
			continue;
		r.fd = in->fd;
		r.file_bytes = in->bytes;
		r.position = 0;
		r.buf_len = 0;
		const uint8_t *data;
		size_t len;
		struct tl_batch_header h;
		while ((err = reader_next(&r, &data, &len, &h)) == TL_OK) {
			if (atomic_load(&job->cancel))
				err = TL_ERR_AGAIN;
			if (err != TL_OK)
				break;
			if (h.base_offset < job->first_dirty)
				continue;
			job->bytes_read += (int64_t)len;
			if (tl_batch_is_control(&h) || batch_is_aborted(job, &h))
				continue;
			/* A batch bigger than the whole map still makes progress: what fits is
			 * mapped and the pass ends after it. Safe: a record goes only when a
			 * mapped (hence kept) newer record of its key exists. */
			bool last_batch = false;
			err = tl_cleaner_map_reserve(map, (uint64_t)h.records_count);
			if (err == TL_ERR_NOMEM)
				break;
			if (err == TL_ERR_LIMIT) {
				err = TL_OK;
				if (map->used > 0) {
					job->map_end = h.base_offset;
					goto out;
				}
				last_batch = true;
			}
			const uint8_t *records;
			size_t records_len;
			err = batch_records(cx, data, len, &h, &records, &records_len);
			if (err != TL_OK)
				break;
			struct tl_cursor c;
			tl_cursor_init(&c, records, records_len);
			for (int32_t k = 0; k < h.records_count; k++) {
				struct record rec;
				if (!record_next(&c, &rec)) {
					err = TL_ERR_CORRUPT;
					break;
				}
				int64_t offset = h.base_offset + rec.offset_delta;
				if (rec.key_len < 0 ||
				    !tl_cleaner_map_put(map, rec.key, (size_t)rec.key_len, offset))
					survivors_push(sv, offset);
			}
			throttle(job, started_ns);
			if (last_batch && err == TL_OK) {
				job->map_end = tl_batch_last_offset(&h) + 1;
				goto out;
			}
		}
		if (err == TL_ERR_NOT_FOUND)
			err = TL_OK;
		else if (err != TL_OK)
			job_error(job, err, "map", in->base_offset);
	}
out:
	free(r.buf);
	return err;
}

/* ---- transactions met by a pass ----
 * The producers whose transactional batches the pass met since their last marker (an
 * open-addressing set of producer ids, grown by doubling): a marker whose producer is
 * not in it closes a transaction with no batch left. */

#define TXNS_EMPTY   (-1)
#define TXNS_REMOVED (-2)

struct txns {
	int64_t *ids;
	uint32_t cap;  /* power of two */
	uint32_t used; /* ids and REMOVED slots */
};

static uint32_t txns_slot(const struct txns *t, int64_t producer_id, bool for_insert)
{
	uint32_t mask = t->cap - 1;
	uint32_t i = (uint32_t)mix64((uint64_t)producer_id) & mask;
	uint32_t free_slot = UINT32_MAX;
	for (uint32_t n = 0; n < t->cap; n++, i = (i + 1) & mask) {
		if (t->ids[i] == producer_id)
			return i;
		if (t->ids[i] == TXNS_REMOVED && free_slot == UINT32_MAX)
			free_slot = i;
		if (t->ids[i] == TXNS_EMPTY)
			return for_insert && free_slot != UINT32_MAX ? free_slot : i;
	}
	return free_slot; /* full of REMOVED: the caller grows first, so never UINT32_MAX */
}

static tl_err txns_grow(struct txns *t)
{
	struct txns bigger = {.cap = t->cap ? t->cap * 2 : 64};
	bigger.ids = malloc(bigger.cap * sizeof(*bigger.ids));
	if (!bigger.ids)
		return TL_ERR_NOMEM;
	for (uint32_t i = 0; i < bigger.cap; i++)
		bigger.ids[i] = TXNS_EMPTY;
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->ids[i] >= 0) {
			bigger.ids[txns_slot(&bigger, t->ids[i], true)] = t->ids[i];
			bigger.used++;
		}
	free(t->ids);
	*t = bigger;
	return TL_OK;
}

/* A transactional batch of @producer_id was met. */
static tl_err txns_begin(struct txns *t, int64_t producer_id)
{
	TL_ASSERT(producer_id >= 0);
	if (t->cap == 0 || (t->used + 1) * 2 > t->cap) {
		tl_err err = txns_grow(t);
		if (err != TL_OK)
			return err;
	}
	uint32_t i = txns_slot(t, producer_id, true);
	TL_ASSERT(i != UINT32_MAX);
	if (t->ids[i] != producer_id) {
		if (t->ids[i] == TXNS_EMPTY)
			t->used++;
		t->ids[i] = producer_id;
	}
	return TL_OK;
}

/* A marker of @producer_id: whether a batch of its transaction was met (then forgotten). */
static bool txns_end(struct txns *t, int64_t producer_id)
{
	if (t->cap == 0 || producer_id < 0)
		return false;
	uint32_t i = txns_slot(t, producer_id, false);
	if (i == UINT32_MAX || t->ids[i] != producer_id)
		return false;
	t->ids[i] = TXNS_REMOVED;
	return true;
}

/* What stays of a batch left with no record. */
enum keep_empty {
	KEEP_NONE,     /* dropped */
	KEEP_BOUNDARY, /* header only, stripped of its producer: a group's first or last */
	KEEP_PRODUCER, /* header only, producer fields kept: its producer's last batch */
};

struct writer {
	int fd;
	uint8_t *buf;
	size_t len;
	int64_t position;
	bool changed; /* something was not copied byte for byte */
};

static tl_err writer_flush(struct writer *w)
{
	size_t done = 0;
	while (done < w->len) {
		ssize_t n = pwrite(w->fd, w->buf + done, w->len - done,
				   (off_t)(w->position + (int64_t)done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return TL_ERR_IO;
		done += (size_t)n;
	}
	w->position += (int64_t)w->len;
	w->len = 0;
	return TL_OK;
}

/* Room for @need bytes at w->buf + w->len. */
static tl_err writer_reserve(struct writer *w, size_t need)
{
	if (w->len + need <= WRITE_BUFFER_BYTES)
		return TL_OK;
	tl_err err = writer_flush(w);
	if (err != TL_OK)
		return err;
	if (need > WRITE_BUFFER_BYTES) {
		uint8_t *bigger = realloc(w->buf, need);
		if (!bigger)
			return TL_ERR_NOMEM;
		w->buf = bigger;
	}
	return TL_OK;
}

/* Writes @data (@len bytes) to @w. */
static tl_err writer_put(struct writer *w, const uint8_t *data, size_t len)
{
	tl_err err = writer_reserve(w, len);
	if (err != TL_OK)
		return err;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return TL_OK;
}

/* A header-only batch kept for its offsets alone: no producer, no transaction. */
static void placeholder_strip(uint8_t *out)
{
	uint16_t attributes = tl_be16_get(out + TL_BATCH_OFF_ATTRIBUTES);
	TL_ASSERT(!(attributes & TL_BATCH_ATTR_CONTROL));
	tl_be16_put(out + TL_BATCH_OFF_ATTRIBUTES,
		    (uint16_t)(attributes &
			       (TL_BATCH_ATTR_LOG_APPEND_TIME | TL_BATCH_ATTR_DELETE_HORIZON)));
	tl_be64_put(out + TL_BATCH_OFF_PRODUCER_ID, (uint64_t)-1);
	tl_be16_put(out + TL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)-1);
	tl_be32_put(out + TL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
}

/* Writes to @w the header of batch @data as a batch with no record (no codec, the
 * length and count set, the CRC again), stripped of its producer when @strip. */
static tl_err writer_put_header_only(struct writer *w, const uint8_t *data, bool strip)
{
	tl_err err = writer_reserve(w, TL_BATCH_HEADER_BYTES);
	if (err != TL_OK)
		return err;
	uint8_t *out = w->buf + w->len;
	memcpy(out, data, TL_BATCH_HEADER_BYTES);
	uint16_t attributes = tl_be16_get(out + TL_BATCH_OFF_ATTRIBUTES);
	tl_be16_put(out + TL_BATCH_OFF_ATTRIBUTES,
		    (uint16_t)(attributes & ~TL_BATCH_ATTR_COMPRESSION_MASK));
	tl_be32_put(out + TL_BATCH_OFF_LENGTH,
		    (uint32_t)(TL_BATCH_HEADER_BYTES - TL_BATCH_LOG_OVERHEAD));
	tl_be32_put(out + TL_BATCH_OFF_RECORDS_COUNT, 0);
	if (strip)
		placeholder_strip(out);
	tl_batch_crc_update(out, TL_BATCH_HEADER_BYTES);
	w->len += TL_BATCH_HEADER_BYTES;
	return TL_OK;
}

/* Writes to @w batch @data (header @h) with @count records, @records (@len bytes,
 * uncompressed; none: a header-only batch without a codec): compressed again with the
 * batch's own codec, stripped of its producer when @strip, with @horizon as its delete
 * horizon when >= 0 (see "the delete horizon"). */
static tl_err batch_write(struct codecs *cx, struct writer *w, const uint8_t *data,
			  const struct tl_batch_header *h, const uint8_t *records, size_t len,
			  int32_t count, bool strip, int64_t horizon)
{
	TL_ASSERT(count > 0 || horizon < 0);
	w->changed = true;
	if (count == 0)
		return writer_put_header_only(w, data, strip);
	enum tl_compression codec = tl_batch_compression(h);
	if (codec != TL_COMPRESSION_NONE) {
		tl_err err = records_compress(cx, codec, records, len);
		if (err != TL_OK)
			return err;
		records = cx->body.data;
		len = cx->body.len;
	}
	size_t out_len = TL_BATCH_HEADER_BYTES + len;
	tl_err err = writer_reserve(w, out_len);
	if (err != TL_OK)
		return err;
	uint8_t *out = w->buf + w->len;
	memcpy(out, data, TL_BATCH_HEADER_BYTES);
	memcpy(out + TL_BATCH_HEADER_BYTES, records, len);
	tl_be32_put(out + TL_BATCH_OFF_LENGTH, (uint32_t)(out_len - TL_BATCH_LOG_OVERHEAD));
	tl_be32_put(out + TL_BATCH_OFF_RECORDS_COUNT, (uint32_t)count);
	if (horizon >= 0) {
		uint16_t attributes = tl_be16_get(out + TL_BATCH_OFF_ATTRIBUTES);
		tl_be16_put(out + TL_BATCH_OFF_ATTRIBUTES,
			    (uint16_t)(attributes | TL_BATCH_ATTR_DELETE_HORIZON));
		tl_be64_put(out + TL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)horizon);
	}
	if (strip)
		placeholder_strip(out);
	tl_batch_crc_update(out, out_len);
	w->len += out_len;
	return TL_OK;
}

/* Notes that a batch with @horizon stays: the pass at that time may drop something.
 * One at this pass's time counts (delete.retention.ms=0: due at the next tick); one
 * already past does not, or a marker kept for its batches would start a pass a tick. */
static void horizon_note(struct tl_cleaner_job *job, int64_t horizon)
{
	if (horizon >= job->now_ms && horizon < job->horizon_next)
		job->horizon_next = horizon;
}

/* Writes batch @data (header @h), whose @count records at @records (@len bytes,
 * uncompressed, not in @w's buffer) survive, some of them tombstones (or its marker, when
 * a control batch), with a new delete horizon. TL_ERR_LIMIT, nothing written, when a
 * timestamp cannot be expressed against it: the caller writes the batch as it would
 * without one, and its tombstones stay until a newer record of their key. */
static tl_err batch_write_with_horizon(struct tl_cleaner_job *job, struct codecs *cx,
				       struct writer *w, const uint8_t *data,
				       const struct tl_batch_header *h, const uint8_t *records,
				       size_t len, int32_t count)
{
	int64_t horizon = tl_ms_after(job->now_ms, job->delete_retention_ms);
	tl_err err = records_rebase(records, len, count, h->base_timestamp, horizon, &cx->rebased);
	if (err != TL_OK)
		return err;
	job->horizons_set++;
	horizon_note(job, horizon);
	return batch_write(cx, w, data, h, cx->rebased.data, cx->rebased.len, count, false,
			   horizon);
}

/* Records the removed ABORT marker at @offset (ascending: the pass reads in order). */
static tl_err aborts_removed_push(struct tl_cleaner_job *job, int64_t offset)
{
	if (job->aborts_removed_count == job->aborts_removed_cap) {
		uint32_t cap = job->aborts_removed_cap ? job->aborts_removed_cap * 2 : 16;
		int64_t *grown = realloc(job->aborts_removed, cap * sizeof(*grown));
		if (!grown)
			return TL_ERR_NOMEM;
		job->aborts_removed = grown;
		job->aborts_removed_cap = cap;
	}
	if (job->aborts_removed_count > 0)
		TL_ASSERT(job->aborts_removed[job->aborts_removed_count - 1] < offset);
	job->aborts_removed[job->aborts_removed_count++] = offset;
	return TL_OK;
}

/* What a pass does with a transaction marker (a control batch). */
enum marker_action {
	MARKER_KEEP,    /* written whole */
	MARKER_HORIZON, /* its transaction has no batch left: written with a delete horizon */
	MARKER_DROP,    /* ... and its horizon has passed: removed */
};

/* Writes what survives of the batch @data (header @h) to @w; a compressed batch that
 * loses records is compressed again with its own codec; one that keeps a tombstone and
 * has no delete horizon gets one. @empty: whether the batch stays when no record does,
 * and as what. A control batch is handled as @marker says. */
static tl_err batch_clean(struct tl_cleaner_job *job, const struct tl_cleaner_map *map,
			  struct survivors *sv, struct codecs *cx, struct writer *w,
			  const uint8_t *data, size_t len, const struct tl_batch_header *h,
			  enum keep_empty empty, enum marker_action marker)
{
	job->records_read += h->records_count;
	if (tl_batch_is_control(h)) {
		if (marker == MARKER_DROP) {
			TL_ASSERT(empty == KEEP_NONE);
			if (tl_batch_control_type(data, len) == TL_BATCH_CONTROL_ABORT &&
			    aborts_removed_push(job, h->base_offset) != TL_OK)
				return TL_ERR_NOMEM;
			job->markers_removed++;
			job->marker_removed_last = tl_batch_last_offset(h);
			w->changed = true;
			return TL_OK;
		}
		job->records_kept += h->records_count;
		if (marker == MARKER_HORIZON && tl_batch_compression(h) == TL_COMPRESSION_NONE &&
		    h->records_count > 0) {
			tl_err err = batch_write_with_horizon(
				job, cx, w, data, h, data + TL_BATCH_HEADER_BYTES,
				len - TL_BATCH_HEADER_BYTES, h->records_count);
			if (err != TL_ERR_LIMIT)
				return err;
		}
		return writer_put(w, data, len);
	}
	bool compressed = tl_batch_compression(h) != TL_COMPRESSION_NONE;
	bool aborted = batch_is_aborted(job, h);
	/* Emptied from the header: an aborted batch, or a mapped one with no survivor (see
	 * struct survivors), whose records the walk below would all drop. It goes, or
	 * stays as its header alone, as the walk would leave it (a batch that had no
	 * record goes through the walk, which keeps it byte for byte). */
	bool none = aborted ||
		    (h->base_offset >= job->first_dirty && tl_batch_last_offset(h) < job->map_end &&
		     survivors_none_in(sv, h->base_offset, tl_batch_last_offset(h)));
	if (none && (empty == KEEP_NONE || h->records_count > 0)) {
		job->batches_emptied_unread++;
		w->changed = true;
		return empty == KEEP_NONE ? TL_OK
					  : writer_put_header_only(w, data, empty == KEEP_BOUNDARY);
	}
	bool has_horizon = (h->attributes & TL_BATCH_ATTR_DELETE_HORIZON) != 0;
	bool tombstones_go = horizon_passed(h, job->now_ms);
	const uint8_t *records;
	size_t records_len;
	tl_err err = batch_records(cx, data, len, h, &records, &records_len);
	if (err != TL_OK)
		return err;
	/* Uncompressed: at most len bytes, the header then the surviving records' raw
	 * bytes, straight into the writer. Compressed: the survivors gather in cx->kept. */
	err = writer_reserve(w, len);
	if (err != TL_OK)
		return err;
	uint8_t *out = w->buf + w->len;
	memcpy(out, data, TL_BATCH_HEADER_BYTES);
	size_t out_len = TL_BATCH_HEADER_BYTES;
	cx->kept.len = 0;
	cx->kept.failed = false;
	int32_t kept = 0, tombstones = 0;
	struct tl_cursor c;
	tl_cursor_init(&c, records, records_len);
	for (int32_t k = 0; k < h->records_count && !aborted; k++) {
		struct record rec;
		if (!record_next(&c, &rec))
			return TL_ERR_CORRUPT;
		int64_t offset = h->base_offset + rec.offset_delta;
		bool keep = true;
		if (rec.key_len >= 0) {
			int64_t latest = tl_cleaner_map_get(map, rec.key, (size_t)rec.key_len);
			keep = latest < 0 || latest <= offset;
			if (keep && rec.value_len < 0) {
				keep = !tombstones_go;
				tombstones += keep;
			}
		}
		if (!keep)
			continue;
		if (compressed) {
			tl_buf_put(&cx->kept, rec.raw, rec.raw_len);
		} else {
			memcpy(out + out_len, rec.raw, rec.raw_len);
			out_len += rec.raw_len;
		}
		kept++;
	}
	if (cx->kept.failed)
		return TL_ERR_NOMEM;
	if (kept < h->records_count || (kept == 0 && empty == KEEP_NONE))
		w->changed = true;
	if (kept == 0 && empty == KEEP_NONE)
		return TL_OK;
	job->records_kept += kept;
	if (tombstones > 0 && has_horizon)
		horizon_note(job, h->base_timestamp);
	if (tombstones > 0 && !has_horizon) {
		err = compressed ? batch_write_with_horizon(job, cx, w, data, h, cx->kept.data,
							    cx->kept.len, kept)
				 : batch_write_with_horizon(job, cx, w, data, h,
							    out + TL_BATCH_HEADER_BYTES,
							    out_len - TL_BATCH_HEADER_BYTES, kept);
		if (err != TL_ERR_LIMIT)
			return err;
	}
	bool strip = kept == 0 && empty == KEEP_BOUNDARY;
	if (compressed && kept < h->records_count)
		return batch_write(cx, w, data, h, cx->kept.data, cx->kept.len, kept, strip, -1);
	if (kept == h->records_count) {
		memcpy(out, data, len); /* untouched: byte for byte */
		out_len = len;
	} else {
		tl_be32_put(out + TL_BATCH_OFF_LENGTH, (uint32_t)(out_len - TL_BATCH_LOG_OVERHEAD));
		tl_be32_put(out + TL_BATCH_OFF_RECORDS_COUNT, (uint32_t)kept);
		if (strip)
			placeholder_strip(out);
		tl_batch_crc_update(out, out_len);
	}
	TL_ASSERT(out_len <= len);
	w->len += out_len;
	return TL_OK;
}

/* Whether group @g, whose output so far is @bytes_out, goes on with the next input: one
 * below map_end that fits in segment_bytes_max even if nothing of it goes. Grouping by
 * output (Kafka groups by input) lets the small files a pass leaves behind merge at once,
 * so a pass swaps in a few files, not one per dirty segment. */
static bool group_takes_next(const struct tl_cleaner_job *job, const struct tl_cleaner_group *g,
			     int64_t bytes_out)
{
	uint32_t next = g->first + g->count;
	if (next >= job->input_count)
		return false;
	const struct tl_cleaner_input *in = &job->inputs[next];
	return in->base_offset < job->map_end && bytes_out + in->bytes <= job->segment_bytes_max &&
	       in->next_offset - g->base_offset <= INT32_MAX;
}

/* Rewrites one group, from input g->first on, into its .cleaned file (fsynced); sets
 * its count, bytes_in and end_offset (group_takes_next() decides, as the output grows);
 * unlinks the file when nothing changed. The last batch of every input is kept as if it
 * ended the group (its end is not yet known): an empty header at worst, which the next
 * pass drops. */
static tl_err group_write(struct tl_cleaner_job *job, const struct tl_cleaner_map *map,
			  struct survivors *sv, struct codecs *cx, struct txns *txns,
			  struct tl_cleaner_group *g, int64_t started_ns)
{
	/* Named <base>.<base>.cleaned until the group's end is known, then renamed; a
	 * crash leaves either name, and recovery deletes both. */
	char name[96];
	tl_cleaner_file_name(name, sizeof(name), g->base_offset, g->base_offset, "cleaned");
	struct writer w = {.buf = malloc(WRITE_BUFFER_BYTES)};
	struct reader r = {.cap = READ_BUFFER_BYTES, .buf = malloc(READ_BUFFER_BYTES)};
	tl_err err = TL_ERR_NOMEM;
	if (!w.buf || !r.buf)
		goto out_free;
	w.fd = openat(job->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	err = TL_ERR_IO;
	if (w.fd == -1)
		goto out_free;
	err = TL_OK;
	for (uint32_t i = 0; err == TL_OK; i++) {
		const struct tl_cleaner_input *in = &job->inputs[g->first + i];
		g->bytes_in += in->bytes;
		g->end_offset = in->next_offset;
		g->count++;
		r.fd = in->fd;
		r.file_bytes = in->bytes;
		r.position = 0;
		r.buf_len = 0;
		const uint8_t *data;
		size_t len;
		struct tl_batch_header h;
		while ((err = reader_next(&r, &data, &len, &h)) == TL_OK) {
			if (atomic_load(&job->cancel)) {
				err = TL_ERR_AGAIN;
				break;
			}
			job->bytes_read += (int64_t)len;
			bool first = i == 0 && h.base_offset == g->base_offset;
			bool last = tl_batch_last_offset(&h) + 1 == g->end_offset;
			enum keep_empty keep = batch_is_producers_last(job, &h) ? KEEP_PRODUCER
					       : first || last                  ? KEEP_BOUNDARY
										: KEEP_NONE;
			enum marker_action marker = MARKER_KEEP;
			if (tl_batch_is_control(&h)) {
				/* Kafka's rule: a marker whose transaction has no batch left gets
				 * a horizon, and goes once it has passed. */
				bool had_batches = txns_end(txns, h.producer_id);
				bool has_horizon = h.attributes & TL_BATCH_ATTR_DELETE_HORIZON;
				if (!had_batches && !has_horizon)
					marker = MARKER_HORIZON;
				else if (!had_batches && horizon_passed(&h, job->now_ms) &&
					 keep == KEEP_NONE)
					marker = MARKER_DROP;
				else if (!had_batches)
					horizon_note(job, h.base_timestamp);
			} else if (tl_batch_is_transactional(&h) && h.producer_id >= 0) {
				err = txns_begin(txns, h.producer_id);
				if (err != TL_OK)
					break;
			}
			err = batch_clean(job, map, sv, cx, &w, data, len, &h, keep, marker);
			if (err == TL_OK && w.position + (int64_t)w.len > UINT32_MAX)
				err = TL_ERR_LIMIT; /* the index holds u32 positions; only new
						     * horizons make a group's output grow */
			if (err != TL_OK)
				break;
			throttle(job, started_ns);
		}
		if (err == TL_ERR_NOT_FOUND)
			err = TL_OK;
		if (!group_takes_next(job, g, w.position + (int64_t)w.len))
			break;
	}
	if (err == TL_OK)
		err = writer_flush(&w);
	g->bytes_out = w.position;
	if (err == TL_OK)
		TL_ASSERT(w.changed || g->bytes_out == g->bytes_in);
	g->written = err == TL_OK && w.changed;
	if (g->written) {
		char final[96];
		tl_cleaner_file_name(final, sizeof(final), g->base_offset, g->end_offset,
				     "cleaned");
		if (renameat(job->dir_fd, name, job->dir_fd, final) == -1)
			err = TL_ERR_IO;
		else
			memcpy(name, final, sizeof(name));
	}
	if (err == TL_OK && g->written && fdatasync(w.fd) == -1)
		err = TL_ERR_IO;
	if (err != TL_OK)
		job_error(job, err, "clean", g->base_offset);
	close(w.fd);
	if (err != TL_OK || !g->written) {
		g->written = false;
		unlinkat(job->dir_fd, name, 0);
	} else {
		job->bytes_written += g->bytes_out;
	}
out_free:
	if (err == TL_ERR_NOMEM || err == TL_ERR_IO)
		job_error(job, err, "clean", g->base_offset);
	free(w.buf);
	free(r.buf);
	return err;
}

/* Writes the inputs below map_end as groups (see group_write) from the log start, in
 * order, so every batch of a transaction is met before its marker. */
static tl_err groups_write(struct tl_cleaner_job *job, const struct tl_cleaner_map *map,
			   struct survivors *sv, struct codecs *cx, struct txns *txns,
			   int64_t started_ns)
{
	job->groups = calloc(job->input_count ? job->input_count : 1, sizeof(*job->groups));
	if (!job->groups)
		return TL_ERR_NOMEM;
	tl_err err = TL_OK;
	for (uint32_t i = 0; err == TL_OK && i < job->input_count;) {
		if (job->inputs[i].base_offset >= job->map_end)
			break;
		struct tl_cleaner_group *g = &job->groups[job->group_count++];
		g->first = i;
		g->base_offset = job->inputs[i].base_offset;
		err = group_write(job, map, sv, cx, txns, g, started_ns);
		if (err == TL_OK)
			TL_ASSERT(g->count >= 1);
		i += g->count;
	}
	return err;
}

/* Counts the records of the dirty range from the batch headers, to size the map. */
static uint64_t dirty_records(const struct tl_cleaner_job *job)
{
	uint64_t count = 0;
	for (uint32_t i = 0; i < job->input_count; i++) {
		const struct tl_cleaner_input *in = &job->inputs[i];
		if (in->next_offset <= job->first_dirty)
			continue;
		/* An upper bound without reading: every record is at least 7 bytes. */
		count += (uint64_t)TL_MIN(in->bytes / 7, in->next_offset - in->base_offset);
	}
	return count;
}

/* CPU time the calling thread has used, in microseconds (0 if unknown). */
static int64_t thread_cpu_us(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) == -1)
		return 0;
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

void tl_cleaner_run(struct tl_cleaner_job *job)
{
	int64_t started_ns = tl_mono_ns();
	int64_t started_cpu_us = thread_cpu_us();
	struct tl_cleaner_map map;
	job->err = tl_cleaner_map_init(&map, dirty_records(job), job->dedupe_buffer_bytes);
	if (job->err != TL_OK) {
		job_error(job, job->err, "map", job->first_dirty);
		atomic_store(&job->done, true);
		return;
	}
	struct codecs cx;
	codecs_init(&cx);
	/* The survivors take at most a third of the map's buffer (8 of 24 bytes a key). */
	struct survivors sv = {.usable = true,
			       .asked_last = -1,
			       .cap_max = TL_MAX(map.slot_count_max, (uint64_t)1024)};
	job->horizon_next = INT64_MAX;
	tl_err err = map_build(job, &map, &cx, &sv, started_ns);
	/* A pass with no dirty record (one a delete horizon is due for) maps nothing. */
	if (err == TL_OK && job->map_end <= job->first_dirty && job->first_dirty < job->clean_end) {
		err = TL_ERR_LIMIT; /* not even one batch fits log.cleaner.dedupe.buffer.size */
		job_error(job, err, "map", job->first_dirty);
	}
	struct txns txns = {0};
	job->marker_removed_last = -1;
	if (err == TL_OK) {
		survivors_seal(&sv, &map);
		err = groups_write(job, &map, &sv, &cx, &txns, started_ns);
	}
	survivors_drop(&sv);
	free(txns.ids);
	tl_cleaner_map_deinit(&map);
	codecs_deinit(&cx);
	if (err != TL_OK && job->err == TL_OK)
		job_error(job, err, "clean", job->first_dirty);
	job->duration_ms = (tl_mono_ns() - started_ns) / 1000000;
	job->cpu_us += thread_cpu_us() - started_cpu_us;
	atomic_store(&job->done, true);
}

void tl_cleaner_job_deinit(struct tl_cleaner_job *job)
{
	for (uint32_t i = 0; i < job->input_count; i++)
		if (job->inputs[i].fd >= 0)
			close(job->inputs[i].fd);
	if (job->dir_fd >= 0)
		close(job->dir_fd);
	free(job->inputs);
	free(job->aborted);
	free(job->lasts);
	free(job->groups);
	free(job->aborts_removed);
	job->aborts_removed = NULL;
	job->aborts_removed_count = 0;
	job->inputs = NULL;
	job->aborted = NULL;
	job->lasts = NULL;
	job->groups = NULL;
	job->input_count = 0;
	job->dir_fd = -1;
}
