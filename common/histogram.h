/* histogram.h - a small log-bucketed histogram of durations, for the broker's and the
 * log's own timings (fdatasync rounds, request times: Kafka's LogFlushRateAndTimeMs and
 * RequestMetrics TotalTimeMs).
 * Values are microseconds. Below 2 * TL_HIST_SUB a value has its own bucket; above, each
 * power of two is split into TL_HIST_SUB buckets, so a value is known to 1/8 (12.5 %).
 * Values past TL_HIST_VALUE_MAX (about 71 minutes) count in the top bucket; max is
 * kept exactly, and so is the sum (for Prometheus' _sum). 2 KiB; one writer, no locking.
 * Values need not be durations: the broker also keeps produce batch sizes in bytes. */
#ifndef TL_COMMON_HISTOGRAM_H
#define TL_COMMON_HISTOGRAM_H

#include <stdint.h>

#include "common/assert.h"

#define TL_HIST_SUB_BITS   3
#define TL_HIST_SUB        (1u << TL_HIST_SUB_BITS)
#define TL_HIST_VALUE_BITS 32
#define TL_HIST_VALUE_MAX  ((UINT64_C(1) << TL_HIST_VALUE_BITS) - 1)
#define TL_HIST_BUCKETS    ((TL_HIST_VALUE_BITS - TL_HIST_SUB_BITS + 1) * TL_HIST_SUB)

struct tl_hist {
	uint64_t buckets[TL_HIST_BUCKETS];
	uint64_t count;
	uint64_t max;
	uint64_t sum; /* of the values added, unclamped */
};

/* Bucket of @value: see histogram.c (1). Inline with tl_hist_add: the broker adds up to
 * eight values per request with metrics on (issue #18's per-request cost). */
static inline uint32_t tl_hist_bucket_of(uint64_t value)
{
	if (value > TL_HIST_VALUE_MAX)
		value = TL_HIST_VALUE_MAX;
	if (value < 2 * TL_HIST_SUB)
		return (uint32_t)value;
	uint32_t e = 63u - (uint32_t)__builtin_clzll(value) - TL_HIST_SUB_BITS;
	return e * TL_HIST_SUB + (uint32_t)(value >> e);
}

static inline void tl_hist_add(struct tl_hist *h, uint64_t value_us)
{
	uint32_t index = tl_hist_bucket_of(value_us);
	TL_ASSERT_DEBUG(index < TL_HIST_BUCKETS);
	h->buckets[index]++;
	h->count++;
	h->sum += value_us;
	if (value_us > h->max)
		h->max = value_us;
}

/* Counts @count more values of 0 (the zeros a caller chose not to add one by one). */
void tl_hist_add_zeros(struct tl_hist *h, uint64_t count);
/* The highest value of the bucket holding the value of rank ceil(q * count), at most
 * max; 0 for an empty histogram. @q in [0, 1]. */
uint64_t tl_hist_quantile(const struct tl_hist *h, double q);
/* How many values are below @bound. Exact when @bound starts a bucket: any value up to
 * 2 * TL_HIST_SUB, and every power of two (Prometheus' cumulative `le` buckets). */
uint64_t tl_hist_count_below(const struct tl_hist *h, uint64_t bound);
/* Adds every value of @from into @into (one log dir's histogram from its partitions'). */
void tl_hist_merge(struct tl_hist *into, const struct tl_hist *from);

#endif
