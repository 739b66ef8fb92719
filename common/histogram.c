/* histogram.c - see histogram.h.
 * (1) tl_hist_bucket_of(v) = v below 2 * SUB; else, with e = msb(v) - SUB_BITS,
 *     e * SUB + (v >> e), where v >> e lies in [SUB, 2 SUB).
 * (2) count == the sum of the buckets. */
#include "common/histogram.h"

#include "common/assert.h"

_Static_assert((TL_HIST_VALUE_BITS - 1 - TL_HIST_SUB_BITS) * TL_HIST_SUB + 2 * TL_HIST_SUB - 1 <
		       TL_HIST_BUCKETS,
	       "the top value's bucket is inside the array");

static uint64_t bucket_high(uint32_t index)
{
	if (index < 2 * TL_HIST_SUB)
		return index;
	uint32_t e = index / TL_HIST_SUB - 1;
	uint64_t m = index % TL_HIST_SUB + TL_HIST_SUB;
	return ((m + 1) << e) - 1;
}

void tl_hist_add_zeros(struct tl_hist *h, uint64_t count)
{
	h->buckets[0] += count;
	h->count += count;
}

uint64_t tl_hist_quantile(const struct tl_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	double r = q * (double)h->count;
	uint64_t rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < TL_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t high = bucket_high(i);
			return high < h->max ? high : h->max;
		}
	}
	return h->max;
}

uint64_t tl_hist_count_below(const struct tl_hist *h, uint64_t bound)
{
	if (bound > TL_HIST_VALUE_MAX)
		return h->count;
	uint32_t end = tl_hist_bucket_of(bound);
	uint64_t seen = 0;
	for (uint32_t i = 0; i < end; i++)
		seen += h->buckets[i];
	return seen;
}

void tl_hist_merge(struct tl_hist *into, const struct tl_hist *from)
{
	for (uint32_t i = 0; i < TL_HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
}
