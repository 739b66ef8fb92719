/* producer_state.c - idempotent producer table, see producer_state.h. */
#include "log/producer_state.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/crc32c.h"

#define PSTATE_MAGIC           "TLPS"
#define PSTATE_VERSION         1
#define PSTATE_HEADER_BYTES    (4 + 2 + 8 + 4)
#define PSTATE_ENTRY_BYTES     (8 + 2 + 4 + 8 + 8 + 1)
#define PSTATE_BATCH_BYTES     (4 + 4 + 8 + 8 + 8)
#define PSTATE_INITIAL_BUCKETS 64

static uint32_t pid_hash(int64_t producer_id)
{
	uint64_t x = (uint64_t)producer_id * 0x9e3779b97f4a7c15ull;
	return (uint32_t)(x >> 32);
}

tl_err tl_pstate_init(struct tl_pstate *ps)
{
	ps->bucket_count = PSTATE_INITIAL_BUCKETS;
	ps->count = 0;
	ps->buckets = calloc(ps->bucket_count, sizeof(*ps->buckets));
	return ps->buckets ? TL_OK : TL_ERR_NOMEM;
}

void tl_pstate_clear(struct tl_pstate *ps)
{
	for (uint32_t b = 0; b < ps->bucket_count; b++) {
		struct tl_pstate_entry *e = ps->buckets[b];
		while (e) {
			struct tl_pstate_entry *next = e->next;
			free(e);
			e = next;
		}
		ps->buckets[b] = NULL;
	}
	ps->count = 0;
}

void tl_pstate_deinit(struct tl_pstate *ps)
{
	if (!ps->buckets)
		return;
	tl_pstate_clear(ps);
	free(ps->buckets);
	ps->buckets = NULL;
}

struct tl_pstate_entry *tl_pstate_find(const struct tl_pstate *ps, int64_t producer_id)
{
	struct tl_pstate_entry *e = ps->buckets[pid_hash(producer_id) & (ps->bucket_count - 1)];
	while (e && e->producer_id != producer_id)
		e = e->next;
	return e;
}

static void pstate_grow(struct tl_pstate *ps)
{
	uint32_t count = ps->bucket_count * 2;
	struct tl_pstate_entry **buckets = calloc(count, sizeof(*buckets));
	if (!buckets)
		return; /* longer chains, still correct */
	for (uint32_t b = 0; b < ps->bucket_count; b++) {
		struct tl_pstate_entry *e = ps->buckets[b];
		while (e) {
			struct tl_pstate_entry *next = e->next;
			uint32_t nb = pid_hash(e->producer_id) & (count - 1);
			e->next = buckets[nb];
			buckets[nb] = e;
			e = next;
		}
	}
	free(ps->buckets);
	ps->buckets = buckets;
	ps->bucket_count = count;
}

static struct tl_pstate_entry *pstate_insert(struct tl_pstate *ps, int64_t producer_id)
{
	if (ps->count >= ps->bucket_count * 2)
		pstate_grow(ps);
	struct tl_pstate_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->producer_id = producer_id;
	e->epoch = -1;
	e->coordinator_epoch = -1;
	e->txn_first_offset = -1;
	uint32_t b = pid_hash(producer_id) & (ps->bucket_count - 1);
	e->next = ps->buckets[b];
	ps->buckets[b] = e;
	ps->count++;
	return e;
}

int32_t tl_pstate_last_seq(int32_t base_sequence, int32_t last_offset_delta)
{
	int64_t last = (int64_t)base_sequence + last_offset_delta;
	if (last > INT32_MAX)
		last -= (int64_t)INT32_MAX + 1;
	return (int32_t)last;
}

static int32_t next_seq(int32_t seq)
{
	return seq == INT32_MAX ? 0 : seq + 1;
}

tl_err tl_pstate_check(const struct tl_pstate *ps, const struct tl_batch_header *h,
		       struct tl_pstate_batch *dup_out)
{
	TL_ASSERT(h->producer_id >= 0);
	int32_t first = h->base_sequence;
	int32_t last = tl_pstate_last_seq(first, h->last_offset_delta);
	const struct tl_pstate_entry *e = tl_pstate_find(ps, h->producer_id);
	if (first < 0)
		return TL_ERR_INVALID_RECORD; /* an idempotent batch must carry a sequence */
	/* Unknown producer (never seen, or expired): only a fresh start is safe. */
	if (!e || (e->epoch < 0 && e->batch_count == 0))
		return first == 0 ? TL_OK : TL_ERR_UNKNOWN_PRODUCER_ID;
	if (h->producer_epoch < e->epoch)
		return TL_ERR_INVALID_PRODUCER_EPOCH;
	if (h->producer_epoch > e->epoch)
		return first == 0 ? TL_OK : TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	for (uint8_t i = 0; i < e->batch_count; i++) {
		const struct tl_pstate_batch *b = &e->batches[i];
		if (b->first_seq == first && b->last_seq == last) {
			*dup_out = *b;
			return TL_ERR_EXISTS;
		}
	}
	if (e->batch_count == 0) /* epoch set by a marker: its sequence restarts at 0 */
		return first == 0 ? TL_OK : TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	const struct tl_pstate_batch *newest = &e->batches[e->batch_count - 1];
	if (first != next_seq(newest->last_seq))
		return TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	return TL_OK;
}

tl_err tl_pstate_update(struct tl_pstate *ps, const struct tl_batch_header *h)
{
	if (h->producer_id < 0)
		return TL_OK;
	struct tl_pstate_entry *e = tl_pstate_find(ps, h->producer_id);
	if (!e && !(e = pstate_insert(ps, h->producer_id)))
		return TL_ERR_NOMEM;
	if (h->producer_epoch > e->epoch) {
		/* A new epoch starts a new sequence space: old batches can no longer match. */
		e->epoch = h->producer_epoch;
		e->batch_count = 0;
	}
	/* A marker carries its coordinator's clock, which may be stepped ahead of the
	 * producers' (chaos test 916): data batches date a producer; a marker only one
	 * that has no data batch yet (0: calloc'ed), so that it does not expire at once. */
	if (!tl_batch_is_control(h) || e->last_timestamp == 0)
		e->last_timestamp = TL_MAX(e->last_timestamp, h->max_timestamp);
	if (tl_batch_is_control(h)) {
		e->txn_first_offset = -1;
		return TL_OK;
	}
	if (tl_batch_is_transactional(h) && e->txn_first_offset < 0)
		e->txn_first_offset = h->base_offset;
	if (h->base_sequence < 0)
		return TL_OK; /* a coordinator's batch: no sequence to remember */
	if (e->batch_count == TL_PSTATE_BATCHES) {
		memmove(&e->batches[0], &e->batches[1],
			sizeof(e->batches[0]) * (TL_PSTATE_BATCHES - 1));
		e->batch_count--;
	}
	struct tl_pstate_batch *b = &e->batches[e->batch_count++];
	b->first_seq = h->base_sequence;
	b->last_seq = tl_pstate_last_seq(h->base_sequence, h->last_offset_delta);
	b->first_offset = h->base_offset;
	b->last_offset = h->base_offset + h->last_offset_delta;
	b->max_timestamp = h->max_timestamp;
	return TL_OK;
}

int64_t tl_pstate_newest_timestamp(const struct tl_pstate *ps)
{
	int64_t newest = -1;
	for (uint32_t b = 0; b < ps->bucket_count; b++)
		for (const struct tl_pstate_entry *e = ps->buckets[b]; e; e = e->next)
			newest = TL_MAX(newest, e->last_timestamp);
	return newest;
}

uint32_t tl_pstate_expire(struct tl_pstate *ps, int64_t now_ms, int64_t expiration_ms)
{
	uint32_t dropped = 0;
	for (uint32_t b = 0; b < ps->bucket_count; b++) {
		struct tl_pstate_entry **pp = &ps->buckets[b];
		while (*pp) {
			struct tl_pstate_entry *e = *pp;
			if (e->txn_first_offset < 0 && now_ms - e->last_timestamp > expiration_ms) {
				*pp = e->next;
				free(e);
				ps->count--;
				dropped++;
			} else {
				pp = &e->next;
			}
		}
	}
	return dropped;
}

int64_t tl_pstate_first_open_txn(const struct tl_pstate *ps)
{
	int64_t first = -1;
	for (uint32_t b = 0; b < ps->bucket_count; b++)
		for (const struct tl_pstate_entry *e = ps->buckets[b]; e; e = e->next)
			if (e->txn_first_offset >= 0 && (first < 0 || e->txn_first_offset < first))
				first = e->txn_first_offset;
	return first;
}

/* ---- snapshots ---- */

tl_err tl_pstate_encode(const struct tl_pstate *ps, int64_t offset, uint8_t **data_out,
			size_t *len_out)
{
	struct tl_buf buf;
	tl_buf_init(&buf);
	tl_buf_put(&buf, PSTATE_MAGIC, 4);
	tl_buf_i16(&buf, PSTATE_VERSION);
	tl_buf_i64(&buf, offset);
	tl_buf_i32(&buf, (int32_t)ps->count);
	for (uint32_t b = 0; b < ps->bucket_count; b++)
		for (const struct tl_pstate_entry *e = ps->buckets[b]; e; e = e->next) {
			tl_buf_i64(&buf, e->producer_id);
			tl_buf_i16(&buf, e->epoch);
			tl_buf_i32(&buf, e->coordinator_epoch);
			tl_buf_i64(&buf, e->txn_first_offset);
			tl_buf_i64(&buf, e->last_timestamp);
			tl_buf_i8(&buf, (int8_t)e->batch_count);
			for (uint8_t i = 0; i < e->batch_count; i++) {
				const struct tl_pstate_batch *bt = &e->batches[i];
				tl_buf_i32(&buf, bt->first_seq);
				tl_buf_i32(&buf, bt->last_seq);
				tl_buf_i64(&buf, bt->first_offset);
				tl_buf_i64(&buf, bt->last_offset);
				tl_buf_i64(&buf, bt->max_timestamp);
			}
		}
	tl_buf_i32(&buf, (int32_t)tl_crc32c(0, buf.data, buf.len));
	if (buf.failed) {
		tl_buf_deinit(&buf);
		return TL_ERR_NOMEM;
	}
	*data_out = buf.data; /* the caller frees it */
	*len_out = buf.len;
	buf.data = NULL;
	tl_buf_deinit(&buf);
	return TL_OK;
}

tl_err tl_pstate_decode(struct tl_pstate *ps, const uint8_t *data, size_t len, int64_t *offset_out)
{
	if (len < PSTATE_HEADER_BYTES + 4 || memcmp(data, PSTATE_MAGIC, 4) != 0)
		return TL_ERR_CORRUPT;
	if (tl_crc32c(0, data, len - 4) != tl_be32_get(data + len - 4))
		return TL_ERR_CORRUPT;
	struct tl_cursor c;
	tl_cursor_init(&c, data + 4, len - 4 - 4);
	if (tl_cursor_i16(&c) != PSTATE_VERSION)
		return TL_ERR_CORRUPT;
	int64_t offset = tl_cursor_i64(&c);
	int32_t count = tl_cursor_i32(&c);
	if (c.failed || count < 0 || (size_t)count > tl_cursor_left(&c) / PSTATE_ENTRY_BYTES)
		return TL_ERR_CORRUPT;
	tl_pstate_clear(ps);
	for (int32_t i = 0; i < count; i++) {
		int64_t pid = tl_cursor_i64(&c);
		if (c.failed || pid < 0 || tl_pstate_find(ps, pid))
			goto corrupt;
		struct tl_pstate_entry *e = pstate_insert(ps, pid);
		if (!e) {
			tl_pstate_clear(ps);
			return TL_ERR_NOMEM;
		}
		e->epoch = tl_cursor_i16(&c);
		e->coordinator_epoch = tl_cursor_i32(&c);
		e->txn_first_offset = tl_cursor_i64(&c);
		e->last_timestamp = tl_cursor_i64(&c);
		int8_t batches = tl_cursor_i8(&c);
		if (batches < 0 || batches > TL_PSTATE_BATCHES)
			goto corrupt;
		e->batch_count = (uint8_t)batches;
		for (int8_t b = 0; b < batches; b++) {
			struct tl_pstate_batch *bt = &e->batches[b];
			bt->first_seq = tl_cursor_i32(&c);
			bt->last_seq = tl_cursor_i32(&c);
			bt->first_offset = tl_cursor_i64(&c);
			bt->last_offset = tl_cursor_i64(&c);
			bt->max_timestamp = tl_cursor_i64(&c);
		}
	}
	if (c.failed || tl_cursor_left(&c) != 0)
		goto corrupt;
	*offset_out = offset;
	return TL_OK;
corrupt:
	tl_pstate_clear(ps);
	return TL_ERR_CORRUPT;
}
