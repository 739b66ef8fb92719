/* hist.c - a compact log-bucketed latency histogram (HdrHistogram's layout, 64
 * sub-buckets per power of two, about 19 KiB).
 * (1) Index of value v: v itself below 2 * TB_HIST_SUB; else with e = msb(v) -
 *     TB_HIST_SUB_BITS, e * TB_HIST_SUB + (v >> e), and v >> e lies in [SUB, 2 SUB).
 * (2) count == sum of buckets; min <= max when count > 0.
 * (3) One thread writes; counters are stored with relaxed atomics so a sampler thread
 *     may snapshot them at any time and see each counter whole. */
#include <math.h>
#include <string.h>

#include "tb.h"

_Static_assert(TB_HIST_BUCKETS > (TB_HIST_MAX_BITS - 1 - TB_HIST_SUB_BITS) * TB_HIST_SUB +
					 2 * TB_HIST_SUB - 1,
	       "the top value's bucket is inside the array");

static inline void store_u64(uint64_t *at, uint64_t value)
{
	__atomic_store_n(at, value, __ATOMIC_RELAXED);
}

static inline uint64_t load_u64(const uint64_t *at)
{
	return __atomic_load_n(at, __ATOMIC_RELAXED);
}

static uint32_t bucket_of(uint64_t value)
{
	if (value > TB_HIST_VALUE_MAX)
		value = TB_HIST_VALUE_MAX;
	if (value < 2 * TB_HIST_SUB)
		return (uint32_t)value;
	uint32_t msb = 63u - (uint32_t)__builtin_clzll(value);
	uint32_t e = msb - TB_HIST_SUB_BITS;
	return e * TB_HIST_SUB + (uint32_t)(value >> e);
}

/* The highest value that falls in bucket @index. */
static uint64_t bucket_high(uint32_t index)
{
	if (index < 2 * TB_HIST_SUB)
		return index;
	uint32_t e = index / TB_HIST_SUB - 1;
	uint64_t m = index % TB_HIST_SUB + TB_HIST_SUB;
	return ((m + 1) << e) - 1;
}

static uint64_t bucket_low(uint32_t index)
{
	if (index < 2 * TB_HIST_SUB)
		return index;
	uint32_t e = index / TB_HIST_SUB - 1;
	uint64_t m = index % TB_HIST_SUB + TB_HIST_SUB;
	return m << e;
}

void tb_hist_reset(struct tb_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void tb_hist_add(struct tb_hist *h, uint64_t value)
{
	uint32_t index = bucket_of(value);
	store_u64(&h->buckets[index], h->buckets[index] + 1);
	if (h->count == 0 || value < h->min)
		store_u64(&h->min, value);
	if (value > h->max)
		store_u64(&h->max, value);
	h->sum += (double)value;
	store_u64(&h->count, h->count + 1);
}

void tb_hist_merge(struct tb_hist *into, const struct tb_hist *from)
{
	if (from->count == 0)
		return;
	for (uint32_t i = 0; i < TB_HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	if (into->count == 0 || from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
	into->sum += from->sum;
	into->count += from->count;
}

void tb_hist_snapshot(struct tb_hist *out, const struct tb_hist *from)
{
	uint64_t count = 0;
	for (uint32_t i = 0; i < TB_HIST_BUCKETS; i++) {
		out->buckets[i] = load_u64(&from->buckets[i]);
		count += out->buckets[i];
	}
	/* Count from the buckets, so (2) holds even if a writer was half-way. */
	out->count = count;
	out->min = load_u64(&from->min);
	out->max = load_u64(&from->max);
	out->sum = 0;
}

void tb_hist_diff(struct tb_hist *out, const struct tb_hist *now, const struct tb_hist *before)
{
	uint64_t count = 0;
	uint32_t lowest = TB_HIST_BUCKETS, highest = 0;
	for (uint32_t i = 0; i < TB_HIST_BUCKETS; i++) {
		uint64_t n = now->buckets[i] >= before->buckets[i]
				     ? now->buckets[i] - before->buckets[i]
				     : 0;
		out->buckets[i] = n;
		count += n;
		if (n > 0) {
			if (lowest == TB_HIST_BUCKETS)
				lowest = i;
			highest = i;
		}
	}
	out->count = count;
	out->sum = 0;
	if (count == 0) {
		out->min = out->max = 0;
		return;
	}
	out->min = bucket_low(lowest);
	out->max = bucket_high(highest);
	if (out->max > now->max && now->max >= out->min)
		out->max = now->max;
}

uint64_t tb_hist_percentile(const struct tb_hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	double want = ceil(p / 100.0 * (double)h->count);
	uint64_t rank = want < 1 ? 1 : (uint64_t)want;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < TB_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double tb_hist_mean(const struct tb_hist *h)
{
	if (h->count == 0)
		return 0;
	if (h->sum > 0)
		return h->sum / (double)h->count;
	/* A snapshot has no sum: use bucket midpoints. */
	double total = 0;
	for (uint32_t i = 0; i < TB_HIST_BUCKETS; i++)
		if (h->buckets[i])
			total += (double)h->buckets[i] *
				 ((double)bucket_low(i) + (double)bucket_high(i)) / 2;
	return total / (double)h->count;
}

/* Percentile curve points: 1 - 10^-x for x = 0, 0.1, ... up to what the count
 * supports (a point at 99.99 % needs at least 10^4 values), then 100. */
void tb_latency_from_hist(struct tb_latency *out, const struct tb_hist *h)
{
	memset(out, 0, sizeof(*out));
	out->count = h->count;
	if (h->count == 0)
		return;
	out->mean_ns = tb_hist_mean(h);
	out->min_ns = h->min;
	out->p50_ns = tb_hist_percentile(h, 50);
	out->p90_ns = tb_hist_percentile(h, 90);
	out->p99_ns = tb_hist_percentile(h, 99);
	out->p999_ns = tb_hist_percentile(h, 99.9);
	out->p9999_ns = tb_hist_percentile(h, 99.99);
	out->max_ns = h->max;
	double x_max = log10((double)h->count);
	if (x_max > 6)
		x_max = 6;
	int n = 0;
	for (int step = 0; n < TB_CURVE_POINTS_MAX - 1; step++) {
		double x = step * 0.1;
		if (x > x_max + 1e-9)
			break;
		double p = 100.0 * (1.0 - pow(10.0, -x));
		out->curve_p[n] = p;
		out->curve_ns[n] = tb_hist_percentile(h, p);
		n++;
	}
	out->curve_p[n] = 100.0;
	out->curve_ns[n] = h->max;
	out->curve_count = n + 1;
}
