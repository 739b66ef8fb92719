/* fuzz_pstate.c - libFuzzer target for producer-state snapshots (log/producer_state.h),
 * which recovery reads from disk after a crash.
 * The first input byte picks a mode, the rest is the snapshot:
 *   0  raw bytes: almost always refused by the CRC, which must not be read past the end;
 *   1  the same bytes with the trailing CRC-32C fixed up, so the decoder proper runs on
 *      every shape of count, entry and batch list.
 * A snapshot that decodes must encode again and decode to the same offset and the same
 * table: every producer with the same fields (entries may come out in another order,
 * that of the hash table), and the table must answer tl_pstate_first_open_txn.
 * Any crash, overrun, leak or failed property aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/crc32c.h"
#include "log/producer_state.h"

#define SNAPSHOT_BYTES_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_pstate: %s\n", what);
	abort();
}

/* True when @a and @b hold the same producers with the same state. */
static bool tables_equal(const struct tl_pstate *a, const struct tl_pstate *b)
{
	if (a->count != b->count)
		return false;
	for (uint32_t i = 0; i < a->bucket_count; i++)
		for (const struct tl_pstate_entry *e = a->buckets[i]; e; e = e->next) {
			const struct tl_pstate_entry *f = tl_pstate_find(b, e->producer_id);
			if (!f || f->epoch != e->epoch ||
			    f->coordinator_epoch != e->coordinator_epoch ||
			    f->txn_first_offset != e->txn_first_offset ||
			    f->last_timestamp != e->last_timestamp ||
			    f->batch_count != e->batch_count ||
			    memcmp(f->batches, e->batches,
				   e->batch_count * sizeof(e->batches[0])) != 0)
				return false;
		}
	return true;
}

/* Decodes @bytes into a fresh table; on success checks the re-encoding round trip. */
static void decode_and_check(const uint8_t *bytes, size_t len)
{
	struct tl_pstate ps;
	if (tl_pstate_init(&ps) != TL_OK)
		return;
	int64_t offset = -1;
	if (tl_pstate_decode(&ps, bytes, len, &offset) == TL_OK) {
		(void)tl_pstate_first_open_txn(&ps);
		uint8_t *again = NULL;
		size_t again_len = 0;
		if (tl_pstate_encode(&ps, offset, &again, &again_len) != TL_OK)
			fuzz_fail("a decoded table does not encode");
		struct tl_pstate ps2;
		if (tl_pstate_init(&ps2) != TL_OK) {
			free(again);
			tl_pstate_deinit(&ps);
			return;
		}
		int64_t offset2 = -1;
		if (tl_pstate_decode(&ps2, again, again_len, &offset2) != TL_OK)
			fuzz_fail("a re-encoded snapshot does not decode");
		if (offset2 != offset)
			fuzz_fail("the re-encoded snapshot names another offset");
		if (!tables_equal(&ps, &ps2))
			fuzz_fail("decode(encode(table)) differs from the table");
		free(again);
		tl_pstate_deinit(&ps2);
	}
	tl_pstate_deinit(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > SNAPSHOT_BYTES_MAX)
		return 0;
	uint8_t mode = data[0] % 2;
	size_t len = size - 1;
	/* A copy of exactly the snapshot's bytes, so ASan sees any read past its end. */
	uint8_t *bytes = malloc(len ? len : 1);
	if (!bytes)
		return 0;
	memcpy(bytes, data + 1, len);
	if (mode == 1 && len >= 4)
		tl_be32_put(bytes + len - 4, tl_crc32c(0, bytes, len - 4));
	decode_and_check(bytes, len);
	free(bytes);
	return 0;
}
