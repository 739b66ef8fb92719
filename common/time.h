/* time.h - clocks. Wall time for timestamps that leave the process, monotonic for timeouts. */
#ifndef TL_COMMON_TIME_H
#define TL_COMMON_TIME_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (Kafka timestamps). */
static inline int64_t tl_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* @ms + @delta_ms (delta >= 0), saturating at INT64_MAX: a time plus a configured
 * interval, which may be "forever". */
static inline int64_t tl_ms_after(int64_t ms, int64_t delta_ms)
{
	int64_t sum;
	return __builtin_add_overflow(ms, delta_ms, &sum) ? INT64_MAX : sum;
}

static inline int64_t tl_clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Monotonic nanoseconds, for deadlines and latency. */
static inline int64_t tl_mono_ns(void)
{
	return tl_clock_ns(CLOCK_MONOTONIC);
}

/* The same clock at its tick (1-4 ms here) for a fraction of the cost (3 ns instead of
 * 27 under kvm-clock): for per-record checks of millisecond intervals. */
static inline int64_t tl_mono_coarse_ns(void)
{
	return tl_clock_ns(CLOCK_MONOTONIC_COARSE);
}

static inline int64_t tl_mono_ms(void)
{
	return tl_mono_ns() / 1000000;
}

#endif
