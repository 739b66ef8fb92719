/* workload.c - one phase of a benchmark: producer and consumer threads (or processes),
 * open-loop pacing, per-interval sampling, and the summary.
 *
 * Timeline: workers open their clients, then wait at a start barrier; t0 is taken when
 * all are ready. [t0, warmup_end) is warm-up; the measurement window is [warmup_end,
 * deadline] in a timed phase and [warmup_end, last event] in a counted one.
 *
 * (1) Open loop (rate > 0): producer i's k-th record is due at t0 + k / (rate /
 *     producers). Its latency is measured from that intended time, so a stall in the
 *     broker or the client shows up in every record that should have been sent during
 *     it (coordinated omission corrected). Overdue records are sent back to back. A
 *     producer that is ahead sleeps to the next PACE_TICK_NS boundary, then sends all
 *     that is due: a sleep per record would cost more CPU than the sending (a VM's timer
 *     wake-ups are slow), and the up to 100 us of waiting counts in the latency.
 * (2) Closed loop (rate 0): a record's intended time is the moment it is handed to send.
 * (3) A record counts in the latency figures when its intended time is at or after
 *     warmup_end; in throughput when its acknowledgement (or receipt) falls in the
 *     measurement window.
 * (4) Every counter of a worker has one writer (that worker's thread; delivery callbacks
 *     run on it) and is read by the sampler with relaxed atomics.
 * (5) With --processes the phase and its workers live in one MAP_SHARED mapping and the
 *     barrier's mutex and condition are process-shared, so each worker runs unchanged in
 *     a forked child (its client opened there) and the sampler reads it as it reads a
 *     thread. A child that dies without finishing is reaped and counted as a failed
 *     worker, so the phase still ends. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tb.h"

#define FLUSH_TIMEOUT_MS   120000
#define CONSUME_POLL_MS    100
#define CONSUMER_IDLE_NS   (15 * TB_NS_PER_S) /* give up when nothing arrives this long */
#define POOL_BYTES         (4u << 20)
#define SAMPLER_TICK_NS    (20 * TB_NS_PER_MS)
#define POLL_EVERY_RECORDS 32
#define PACE_TICK_NS       (100 * 1000) /* open loop: wake-ups at most every 100 us */

struct phase;

struct worker {
	struct phase *ph;
	int index;
	bool consumer;
	pthread_t thread;
	pid_t pid;       /* --processes: the child running it; 0 once reaped */
	bool finished;   /* its main function returned (a dead child's did not) */
	bool at_barrier; /* counted in ph->ready */
	/* (4): counters */
	uint64_t records; /* acknowledged (producer) or received (consumer) */
	uint64_t bytes;
	uint64_t win_records;
	uint64_t win_bytes;
	uint64_t errors;
	uint64_t sent;
	int64_t last_ns;
	struct tb_hist hist_all; /* every record: the time series */
	struct tb_hist hist;     /* after warm-up: the summary (3) */
	char error[256];
	bool failed;
	/* producer */
	struct tb_producer_driver *pd;
	/* This worker's copy of the payload pool: a record's value is a slice of it, its
	 * first TB_RECORD_HEADER bytes overwritten with the header while the record is
	 * sent (every driver copies the value before send returns) and put back after. */
	uint8_t *pool;
	uint8_t *patched; /* the slice whose header bytes are in saved, or NULL */
	uint8_t saved[TB_RECORD_HEADER];
	uint64_t rng;
	uint64_t quota; /* records to send; UINT64_MAX = until the deadline */
	/* sampler's previous snapshot */
	struct tb_hist prev;
	uint64_t prev_records;
	uint64_t prev_bytes;
};

struct phase {
	const struct tb_opts *o;
	const struct tb_target *t;
	const struct tb_driver_ops *ops;
	enum tb_phase_kind kind;
	double rate;
	int64_t t0_ns;
	int64_t warmup_end_ns;
	int64_t deadline_ns; /* 0: counted phase */
	int nprod;
	int ncons;
	struct worker *w; /* nprod producers, then ncons consumers */
	uint8_t *pool;
	/* shared state, atomics */
	int stop;
	int workers_done;
	int producers_left;
	uint64_t expect; /* consumers stop once they received this many in all */
	int64_t last_sample_ns;
	/* start barrier */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready;
	bool go;
	bool abort;
};

/* ---- helpers ---- */

/* @ns on CLOCK_MONOTONIC (tb_now_ns()) as the timespec that clock's waits take. */
static struct timespec timespec_at(int64_t ns)
{
	return (struct timespec){.tv_sec = ns / TB_NS_PER_S, .tv_nsec = ns % TB_NS_PER_S};
}

void tb_sleep_until(int64_t deadline_ns)
{
	struct timespec ts = timespec_at(deadline_ns);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static inline uint64_t ld(const uint64_t *at)
{
	return __atomic_load_n(at, __ATOMIC_RELAXED);
}

static inline void st(uint64_t *at, uint64_t value)
{
	__atomic_store_n(at, value, __ATOMIC_RELAXED);
}

static uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static double rng_unit(uint64_t *state)
{
	return ((double)(rng_next(state) >> 11) + 0.5) / 9007199254740992.0;
}

static uint32_t draw_size(const struct tb_size_dist *d, uint64_t *rng)
{
	double v;
	switch (d->kind) {
	case TB_SIZE_FIXED:
		return d->a;
	case TB_SIZE_UNIFORM:
		return d->a + (uint32_t)(rng_next(rng) % ((uint64_t)d->b - d->a + 1));
	case TB_SIZE_NORMAL:
		v = (double)d->a +
		    (double)d->b * sqrt(-2 * log(rng_unit(rng))) * cos(2 * M_PI * rng_unit(rng));
		break;
	case TB_SIZE_EXP:
		v = -(double)d->a * log(rng_unit(rng));
		break;
	default:
		return d->a;
	}
	if (v < 0)
		v = 0;
	if (v > TB_RECORD_MAX)
		v = TB_RECORD_MAX;
	return (uint32_t)v;
}

/* Appends one event-like JSON line (a click stream's: fixed field names, values from
 * small vocabularies, ids, counters and a random session) at @p, at most @room bytes;
 * returns its length. zstd compresses a stream of them about 4-5x (JSON event logs: 3-10x), as real
 * event payloads. */
static size_t json_event(uint64_t *rng, char *p, size_t room)
{
	static const char *const events[] = {"page_view", "add_to_cart", "search", "click",
					     "purchase",  "login",       "scroll", "video_play"};
	static const char *const countries[] = {"DE", "US", "FR", "GB", "JP",
						"BR", "IN", "NL", "SE", "ES"};
	static const char *const devices[] = {"mobile", "desktop", "tablet"};
	static const char *const paths[] = {"/products/", "/category/",     "/search?q=item",
					    "/cart",      "/checkout/step", "/account/orders/"};
	uint64_t r = rng_next(rng), s = rng_next(rng);
	int n = snprintf(
		p, room,
		"{\"ts\":%llu,\"event\":\"%s\",\"user_id\":%llu,\"session\":"
		"\"%08llx%04llx\",\"trace\":\"%016llx\",\"country\":\"%s\",\"device\":\"%s\",\"path\":"
		"\"%s%llu\",\"referrer\":\"https://www.example.com/\",\"items\":%llu,"
		"\"amount\":%llu.%02llu,\"ok\":%s}\n",
		1700000000000ULL + (r >> 40), events[r % 8], (unsigned long long)(s % 100000),
		(unsigned long long)(s >> 32), (unsigned long long)((r >> 8) & 0xffff),
		(unsigned long long)rng_next(rng), countries[(r >> 3) % 10], devices[(r >> 7) % 3],
		paths[(r >> 9) % 6], (unsigned long long)((r >> 12) % 5000),
		(unsigned long long)((r >> 24) % 7), (unsigned long long)((s >> 17) % 500),
		(unsigned long long)((s >> 9) % 100), (r >> 30) & 1 ? "true" : "false");
	return n < 0 ? 0 : (size_t)n < room ? (size_t)n : room - 1;
}

static uint8_t *pool_create(enum tb_payload payload)
{
	uint8_t *pool = malloc(POOL_BYTES + TB_RECORD_MAX);
	if (!pool)
		return NULL;
	uint64_t rng = 0x243f6a8885a308d3ULL;
	if (payload == TB_PAYLOAD_JSON) {
		char line[512];
		for (size_t i = 0; i < POOL_BYTES + TB_RECORD_MAX;) {
			size_t n = json_event(&rng, line, sizeof(line));
			if (n > POOL_BYTES + TB_RECORD_MAX - i)
				n = POOL_BYTES + TB_RECORD_MAX - i;
			memcpy(pool + i, line, n);
			i += n;
		}
		return pool;
	}
	for (size_t i = 0; i < POOL_BYTES + TB_RECORD_MAX; i++) {
		if (payload == TB_PAYLOAD_ZEROS)
			pool[i] = 0;
		else if (payload == TB_PAYLOAD_RANDOM)
			pool[i] = (uint8_t)(rng_next(&rng) >> 24);
		else
			pool[i] = (uint8_t)('a' + (rng_next(&rng) >> 24) % 26);
	}
	return pool;
}

/* Under --processes the lock is robust: a child killed while holding it leaves it to
 * the next locker, who takes it over (the state it guards is counters and flags, each
 * written whole). */
static void phase_lock(struct phase *ph)
{
	if (pthread_mutex_lock(&ph->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&ph->lock);
}

/* Waits on the barrier's condition, until @until (CLOCK_MONOTONIC) unless NULL. */
static void phase_wait(struct phase *ph, const struct timespec *until)
{
	int rc = until ? pthread_cond_timedwait(&ph->cond, &ph->lock, until)
		       : pthread_cond_wait(&ph->cond, &ph->lock);
	if (rc == EOWNERDEAD)
		pthread_mutex_consistent(&ph->lock);
}

static void worker_fail(struct worker *w, const char *why)
{
	if (!w->failed)
		tb_strlcpy(w->error, sizeof(w->error), why);
	w->failed = true;
}

/* Start barrier: returns false when the phase was aborted (another worker failed). */
static bool worker_ready_and_wait(struct worker *w, bool ok)
{
	struct phase *ph = w->ph;
	phase_lock(ph);
	ph->ready++;
	w->at_barrier = true;
	if (!ok)
		ph->abort = true;
	pthread_cond_broadcast(&ph->cond);
	while (!ph->go && !ph->abort)
		phase_wait(ph, NULL);
	bool go = ph->go && !ph->abort;
	pthread_mutex_unlock(&ph->lock);
	return go;
}

static bool stopping(struct phase *ph)
{
	return __atomic_load_n(&ph->stop, __ATOMIC_RELAXED) != 0 || tb_stop_requested;
}

static bool in_window(const struct phase *ph, int64_t now)
{
	return now >= ph->warmup_end_ns && (ph->deadline_ns == 0 || now <= ph->deadline_ns);
}

/* ---- producer ---- */

static void on_ack(void *ctx, int64_t intended_ns, uint32_t bytes, bool ok, const char *error)
{
	struct worker *w = ctx;
	struct phase *ph = w->ph;
	int64_t now = tb_now_ns();
	if (!ok) {
		st(&w->errors, w->errors + 1);
		if (!w->error[0])
			tb_strlcpy(w->error, sizeof(w->error), error ? error : "failed");
		return;
	}
	uint64_t latency = now > intended_ns ? (uint64_t)(now - intended_ns) : 0;
	tb_hist_add(&w->hist_all, latency);
	if (intended_ns >= ph->warmup_end_ns)
		tb_hist_add(&w->hist, latency);
	st(&w->records, w->records + 1);
	st(&w->bytes, w->bytes + bytes);
	if (in_window(ph, now)) {
		st(&w->win_records, w->win_records + 1);
		st(&w->win_bytes, w->win_bytes + bytes);
	}
	__atomic_store_n(&w->last_ns, now, __ATOMIC_RELAXED);
}

/* Waits for @due_ns, running acknowledgements meanwhile. */
static void wait_due(struct worker *w, int64_t due_ns)
{
	const struct tb_driver_ops *ops = w->ph->ops;
	for (;;) {
		ops->poll(w->pd, 0);
		int64_t now = tb_now_ns();
		if (now >= due_ns || stopping(w->ph))
			return;
		int64_t left = due_ns - now;
		if (left > 2 * TB_NS_PER_MS)
			ops->poll(w->pd, 1);
		else
			tb_sleep_until(due_ns);
	}
}

/* The first pacing tick at or after @intended_ns: a producer that is ahead sleeps until
 * then and sends everything due by it (1), so it wakes at most every PACE_TICK_NS. */
static int64_t pace_tick_after(const struct phase *ph, int64_t intended_ns)
{
	int64_t ticks = (intended_ns - ph->t0_ns + PACE_TICK_NS - 1) / PACE_TICK_NS;
	return ph->t0_ns + ticks * PACE_TICK_NS;
}

static void build_record(struct worker *w, struct tb_send *s, char *key, size_t key_size,
			 int64_t intended)
{
	const struct tb_opts *o = w->ph->o;
	uint32_t size = draw_size(&o->size, &w->rng);
	if (w->ph->kind == TB_PHASE_E2E && size < TB_RECORD_HEADER)
		size = TB_RECORD_HEADER;
	size_t at = (size_t)(rng_next(&w->rng) % POOL_BYTES);
	uint8_t *value = w->pool + at; /* no copy: the client's own is the one measured */
	if (size >= TB_RECORD_HEADER) {
		uint64_t magic = TB_RECORD_MAGIC;
		memcpy(w->saved, value, TB_RECORD_HEADER);
		w->patched = value;
		memcpy(value, &magic, 8);
		memcpy(value + 8, &intended, 8);
	}
	s->partition = -1;
	s->key = NULL;
	s->key_len = 0;
	if (o->keys > 0) {
		int n = snprintf(key, key_size, "key-%010u",
				 (unsigned)(rng_next(&w->rng) % o->keys));
		s->key = key;
		s->key_len = (uint32_t)n;
	}
	s->value = value;
	s->value_len = size;
	s->intended_ns = intended;
}

static void producer_loop(struct worker *w)
{
	struct phase *ph = w->ph;
	const struct tb_driver_ops *ops = ph->ops;
	double period = ph->rate > 0 ? 1e9 * ph->nprod / ph->rate : 0;
	int64_t txn_interval = ph->o->txn_interval_ms * TB_NS_PER_MS;
	int64_t next_commit = ph->t0_ns + txn_interval;
	char err[512], key[32];
	for (uint64_t i = 0; !stopping(ph); i++) {
		if (i >= w->quota)
			break;
		int64_t now = tb_now_ns(), intended;
		if (period > 0) {
			intended = ph->t0_ns + (int64_t)((double)i * period);
			if (ph->deadline_ns && intended >= ph->deadline_ns)
				break;
			if (intended > now)
				wait_due(w, pace_tick_after(ph, intended));
		} else {
			if (ph->deadline_ns && now >= ph->deadline_ns)
				break;
			intended = now;
		}
		if (ph->o->transactions && now >= next_commit) {
			if (ops->txn_commit(w->pd, true, err, sizeof(err))) {
				worker_fail(w, err);
				return;
			}
			next_commit += txn_interval;
		}
		struct tb_send s;
		build_record(w, &s, key, sizeof(key), intended);
		int failed = ops->send(w->pd, &s, err, sizeof(err));
		if (w->patched) {
			memcpy(w->patched, w->saved, TB_RECORD_HEADER);
			w->patched = NULL;
		}
		if (failed) {
			worker_fail(w, err);
			return;
		}
		st(&w->sent, w->sent + 1);
		if (i % POLL_EVERY_RECORDS == 0)
			ops->poll(w->pd, 0);
	}
}

static void producer_finish(struct worker *w)
{
	struct phase *ph = w->ph;
	char err[512];
	if (ph->ops->flush(w->pd, FLUSH_TIMEOUT_MS, err, sizeof(err)))
		worker_fail(w, err);
	else if (ph->o->transactions && ph->ops->txn_commit(w->pd, false, err, sizeof(err)))
		worker_fail(w, err);
	/* The last producer tells consumers how many records to expect (e2e). */
	if (__atomic_sub_fetch(&ph->producers_left, 1, __ATOMIC_ACQ_REL) == 0 &&
	    ph->kind == TB_PHASE_E2E) {
		uint64_t total = 0;
		for (int i = 0; i < ph->nprod; i++)
			total += ld(&ph->w[i].records);
		__atomic_store_n(&ph->expect, total, __ATOMIC_RELEASE);
	}
}

static void *producer_main(void *arg)
{
	struct worker *w = arg;
	struct phase *ph = w->ph;
	char err[512];
	w->pool = malloc(POOL_BYTES + TB_RECORD_MAX);
	bool ok = w->pool != NULL;
	if (ok)
		memcpy(w->pool, ph->pool, POOL_BYTES + TB_RECORD_MAX);
	if (!ok)
		worker_fail(w, "out of memory");
	if (ok && ph->ops->producer_open(ph->o, ph->t, w->index, on_ack, w, &w->pd, err,
					 sizeof(err)) != 0) {
		worker_fail(w, err);
		ok = false;
	}
	if (worker_ready_and_wait(w, ok)) {
		producer_loop(w);
		producer_finish(w);
	} else if (ok) {
		__atomic_sub_fetch(&ph->producers_left, 1, __ATOMIC_ACQ_REL);
	}
	if (w->pd)
		ph->ops->producer_close(w->pd);
	free(w->pool);
	__atomic_store_n(&w->finished, true, __ATOMIC_RELEASE);
	__atomic_add_fetch(&ph->workers_done, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

/* ---- consumer ---- */

static uint64_t consumed_total(struct phase *ph)
{
	uint64_t total = 0;
	for (int i = 0; i < ph->ncons; i++)
		total += ld(&ph->w[ph->nprod + i].records);
	return total;
}

/* @now: read just after the record was handed over. */
static void on_record(struct worker *w, const void *value, uint32_t value_len, uint32_t key_len,
		      int64_t now)
{
	struct phase *ph = w->ph;
	uint64_t bytes = (uint64_t)value_len + key_len;
	st(&w->records, w->records + 1);
	st(&w->bytes, w->bytes + bytes);
	if (in_window(ph, now)) {
		st(&w->win_records, w->win_records + 1);
		st(&w->win_bytes, w->win_bytes + bytes);
	}
	__atomic_store_n(&w->last_ns, now, __ATOMIC_RELAXED);
	if (ph->kind != TB_PHASE_E2E || value_len < TB_RECORD_HEADER)
		return;
	uint64_t magic;
	int64_t intended;
	memcpy(&magic, value, 8);
	memcpy(&intended, (const uint8_t *)value + 8, 8);
	if (magic != TB_RECORD_MAGIC)
		return;
	uint64_t latency = now > intended ? (uint64_t)(now - intended) : 0;
	tb_hist_add(&w->hist_all, latency);
	if (intended >= ph->warmup_end_ns)
		tb_hist_add(&w->hist, latency);
}

static void consumer_loop(struct worker *w, struct tb_consumer_driver *cd)
{
	struct phase *ph = w->ph;
	char err[512];
	int64_t last_record = tb_now_ns();
	for (uint64_t n = 0; !stopping(ph);) {
		const void *value;
		uint32_t value_len, key_len;
		int rc = ph->ops->consume(cd, CONSUME_POLL_MS, &value, &value_len, &key_len, err,
					  sizeof(err));
		if (rc < 0) {
			worker_fail(w, err);
			return;
		}
		int64_t now = tb_now_ns();
		if (rc == 1) {
			on_record(w, value, value_len, key_len, now);
			last_record = now;
			if (++n % 256 != 0)
				continue;
		}
		uint64_t expect = __atomic_load_n(&ph->expect, __ATOMIC_ACQUIRE);
		if (consumed_total(ph) >= expect)
			return;
		if (ph->kind == TB_PHASE_E2E && ph->deadline_ns && now > ph->deadline_ns &&
		    __atomic_load_n(&ph->producers_left, __ATOMIC_ACQUIRE) > 0)
			continue; /* producers are still flushing */
		if (now - last_record > CONSUMER_IDLE_NS &&
		    (ph->kind == TB_PHASE_CONSUME || expect != UINT64_MAX)) {
			snprintf(err, sizeof(err),
				 "consumer %d: nothing for %llds with %llu of %llu records read",
				 w->index, (long long)(CONSUMER_IDLE_NS / TB_NS_PER_S),
				 (unsigned long long)consumed_total(ph),
				 (unsigned long long)expect);
			worker_fail(w, err);
			return;
		}
		if (ph->kind == TB_PHASE_CONSUME && ph->deadline_ns && now >= ph->deadline_ns)
			return;
	}
}

static void *consumer_main(void *arg)
{
	struct worker *w = arg;
	struct phase *ph = w->ph;
	struct tb_consumer_driver *cd = NULL;
	char err[512];
	bool ok = ph->ops->consumer_open(ph->o, ph->t, w->index, &cd, err, sizeof(err)) == 0;
	if (!ok)
		worker_fail(w, err);
	if (worker_ready_and_wait(w, ok))
		consumer_loop(w, cd);
	if (cd)
		ph->ops->consumer_close(cd);
	__atomic_store_n(&w->finished, true, __ATOMIC_RELEASE);
	__atomic_add_fetch(&ph->workers_done, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

/* ---- sampler and summary ---- */

static void sample_add(struct tb_phase_result *r, const struct tb_sample *s)
{
	if (r->sample_count == r->sample_cap) {
		int cap = r->sample_cap ? r->sample_cap * 2 : 64;
		struct tb_sample *grown = realloc(r->samples, (size_t)cap * sizeof(*grown));
		if (!grown)
			return;
		r->samples = grown;
		r->sample_cap = cap;
	}
	r->samples[r->sample_count++] = *s;
}

/* Takes one sample: the deltas of every worker since the previous one. */
static void sample_take(struct phase *ph, struct tb_phase_result *r, int64_t now,
			struct tb_hist *scratch, struct tb_hist *interval)
{
	struct tb_sample s = {.t_s = (double)(now - ph->t0_ns) / 1e9,
			      .dt_s = (double)(now - ph->last_sample_ns) / 1e9,
			      .warmup = now <= ph->warmup_end_ns};
	ph->last_sample_ns = now;
	tb_hist_reset(interval);
	struct tb_hist e2e;
	tb_hist_reset(&e2e);
	for (int i = 0; i < ph->nprod + ph->ncons; i++) {
		struct worker *w = &ph->w[i];
		uint64_t records = ld(&w->records), bytes = ld(&w->bytes);
		uint64_t d_records = records - w->prev_records, d_bytes = bytes - w->prev_bytes;
		w->prev_records = records;
		w->prev_bytes = bytes;
		tb_hist_snapshot(scratch, &w->hist_all);
		struct tb_hist *diff = malloc(sizeof(*diff));
		if (diff) {
			tb_hist_diff(diff, scratch, &w->prev);
			tb_hist_merge(w->consumer ? &e2e : interval, diff);
			free(diff);
		}
		w->prev = *scratch;
		if (w->consumer) {
			s.consumed_records += d_records;
			s.consumed_bytes += d_bytes;
		} else {
			s.produced_records += d_records;
			s.produced_bytes += d_bytes;
		}
	}
	s.produce_p50_ns = tb_hist_percentile(interval, 50);
	s.produce_p99_ns = tb_hist_percentile(interval, 99);
	s.produce_max_ns = interval->max;
	s.e2e_p99_ns = tb_hist_percentile(&e2e, 99);
	sample_add(r, &s);
	if (ph->o->progress)
		tb_print_sample(stdout, &s, ph->kind);
}

/* --processes: reaps the workers' children (@block: waits for all). One that died
 * before its main function returned counts as done and failed, so nothing waits for
 * it. */
static void workers_reap(struct phase *ph, bool block)
{
	if (!ph->o->processes)
		return;
	for (int i = 0; i < ph->nprod + ph->ncons; i++) {
		struct worker *w = &ph->w[i];
		if (w->pid <= 0)
			continue;
		int status = 0;
		pid_t got = waitpid(w->pid, &status, block ? 0 : WNOHANG);
		if (got == 0 || (got < 0 && errno == EINTR))
			continue;
		w->pid = 0;
		if (__atomic_load_n(&w->finished, __ATOMIC_ACQUIRE))
			continue;
		char why[96];
		if (got > 0 && WIFSIGNALED(status))
			snprintf(why, sizeof(why), "worker process died: %s",
				 strsignal(WTERMSIG(status)));
		else
			snprintf(why, sizeof(why), "worker process exited early (status %d)",
				 got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		worker_fail(w, why);
		if (!w->consumer)
			__atomic_sub_fetch(&ph->producers_left, 1, __ATOMIC_ACQ_REL);
		/* A child that dies at the barrier never counted itself ready. */
		phase_lock(ph);
		if (!w->at_barrier)
			ph->ready++;
		ph->abort |= !ph->go;
		pthread_cond_broadcast(&ph->cond);
		pthread_mutex_unlock(&ph->lock);
		__atomic_add_fetch(&ph->workers_done, 1, __ATOMIC_ACQ_REL);
	}
}

static void sampler_run(struct phase *ph, struct tb_phase_result *r)
{
	struct tb_hist *scratch = malloc(sizeof(*scratch));
	struct tb_hist *interval = malloc(sizeof(*interval));
	if (!scratch || !interval) {
		free(scratch);
		free(interval);
		while (__atomic_load_n(&ph->workers_done, __ATOMIC_ACQUIRE) <
		       ph->nprod + ph->ncons) {
			workers_reap(ph, false);
			usleep(10000);
		}
		return;
	}
	int64_t next = ph->t0_ns + ph->o->interval_ns, last = ph->t0_ns;
	ph->last_sample_ns = ph->t0_ns;
	for (;;) {
		workers_reap(ph, false);
		bool done = __atomic_load_n(&ph->workers_done, __ATOMIC_ACQUIRE) ==
			    ph->nprod + ph->ncons;
		int64_t now = tb_now_ns();
		if (done) {
			/* The partial last interval, unless it is a sliver; a phase shorter
			 * than one interval still gets its one sample (and the report its
			 * chart). */
			if (now - last > ph->o->interval_ns / 10 || r->sample_count == 0)
				sample_take(ph, r, now, scratch, interval);
			break;
		}
		if (now >= next) {
			sample_take(ph, r, next, scratch, interval);
			last = next;
			next += ph->o->interval_ns;
			continue;
		}
		int64_t until = now + SAMPLER_TICK_NS < next ? now + SAMPLER_TICK_NS : next;
		tb_sleep_until(until);
	}
	free(scratch);
	free(interval);
}

static void flow_summarize(struct phase *ph, bool consumers, struct tb_flow *f, int64_t end_ns)
{
	int first = consumers ? ph->nprod : 0, n = consumers ? ph->ncons : ph->nprod;
	int64_t last = 0;
	f->present = n > 0;
	for (int i = first; i < first + n; i++) {
		struct worker *w = &ph->w[i];
		f->records += w->win_records;
		f->bytes += w->win_bytes;
		f->total_records += w->records;
		f->total_bytes += w->bytes;
		f->errors += w->errors + (w->failed ? 1 : 0);
		if (w->last_ns > last)
			last = w->last_ns;
		if (!f->first_error[0] && w->error[0])
			tb_strlcpy(f->first_error, sizeof(f->first_error), w->error);
	}
	int64_t window_end = ph->deadline_ns ? ph->deadline_ns : last;
	if (window_end <= ph->warmup_end_ns)
		window_end = end_ns;
	f->window_s = (double)(window_end - ph->warmup_end_ns) / 1e9;
	if (f->window_s > 0) {
		f->records_per_s = (double)f->records / f->window_s;
		f->mb_per_s = (double)f->bytes / f->window_s / 1e6;
	}
}

static void latency_summarize(struct phase *ph, bool consumers, struct tb_latency *out)
{
	struct tb_hist *all = calloc(1, sizeof(*all));
	if (!all)
		return;
	int first = consumers ? ph->nprod : 0, n = consumers ? ph->ncons : ph->nprod;
	for (int i = first; i < first + n; i++)
		tb_hist_merge(all, &ph->w[i].hist);
	tb_latency_from_hist(out, all);
	free(all);
}

static void resources_summarize(const struct tb_target *t, const struct tb_proc_sample *b0,
				const struct tb_proc_sample *b1, double c0, double c1,
				uint64_t bytes, int64_t wall_ns, struct tb_resources *res)
{
	res->wall_s = (double)wall_ns / 1e9;
	res->client_cpu_s = c1 - c0;
	res->bytes = bytes;
	double gb = (double)bytes / 1e9;
	if (gb > 0)
		res->client_cpu_s_per_gb = res->client_cpu_s / gb;
	double busy = b1->machine_busy_s - b0->machine_busy_s;
	if (!b0->ok || !b1->ok) {
		res->other_cpu_s = fmax(0, busy - res->client_cpu_s);
		return;
	}
	res->broker_pid = t->broker_pid;
	res->broker_cpu_s = b1->cpu_s - b0->cpu_s;
	res->other_cpu_s = fmax(0, busy - res->client_cpu_s - res->broker_cpu_s);
	res->broker_write_bytes = b1->write_bytes - b0->write_bytes;
	res->broker_read_bytes = b1->read_bytes - b0->read_bytes;
	if (gb > 0) {
		res->broker_cpu_s_per_gb = res->broker_cpu_s / gb;
		res->write_amplification = (double)res->broker_write_bytes / (double)bytes;
	}
}

/* ---- the phase ---- */

static int phase_start_workers(struct phase *ph)
{
	for (int i = 0; i < ph->nprod + ph->ncons; i++) {
		struct worker *w = &ph->w[i];
		w->ph = ph;
		w->consumer = i >= ph->nprod;
		w->index = w->consumer ? i - ph->nprod : i;
		uint64_t seed = (uint64_t)tb_now_ns(), mix = (uint64_t)i + 1;
		w->rng = seed ^ (mix * 0x9e3779b97f4a7c15ULL);
		if (w->rng == 0)
			w->rng = 1;
		void *(*fn)(void *) = w->consumer ? consumer_main : producer_main;
		if (!ph->o->processes) {
			if (pthread_create(&w->thread, NULL, fn, w) != 0)
				return i;
			continue;
		}
		fflush(NULL); /* a child must not write the parent's buffered output again */
		pid_t pid = fork();
		if (pid < 0)
			return i;
		if (pid == 0) {
			fn(w);
			_exit(w->failed ? 1 : 0);
		}
		w->pid = pid;
	}
	return ph->nprod + ph->ncons;
}

/* Waits until every started worker reached the barrier; then starts the clock. */
static bool phase_go(struct phase *ph, int started, int64_t duration_ns, int64_t warmup_ns)
{
	phase_lock(ph);
	while (ph->ready < started) {
		if (!ph->o->processes) {
			phase_wait(ph, NULL);
			continue;
		}
		/* A child may die before it reaches the barrier: look every 20 ms. */
		pthread_mutex_unlock(&ph->lock);
		workers_reap(ph, false);
		phase_lock(ph);
		struct timespec ts = timespec_at(tb_now_ns() + 20 * TB_NS_PER_MS);
		if (ph->ready < started)
			phase_wait(ph, &ts);
	}
	bool ok = !ph->abort && started == ph->nprod + ph->ncons;
	if (ok) {
		ph->t0_ns = tb_now_ns();
		ph->warmup_end_ns = ph->t0_ns + warmup_ns;
		ph->deadline_ns = duration_ns > 0 ? ph->t0_ns + duration_ns : 0;
		ph->go = true;
	} else {
		ph->abort = true;
	}
	pthread_cond_broadcast(&ph->cond);
	pthread_mutex_unlock(&ph->lock);
	return ok;
}

/* Splits @count records over the producers; 0 = no count, send until the deadline. */
static void phase_assign_quotas(struct phase *ph, uint64_t count)
{
	for (int i = 0; i < ph->nprod; i++) {
		if (count == 0) {
			ph->w[i].quota = UINT64_MAX;
			continue;
		}
		uint64_t share = count / (uint64_t)ph->nprod;
		if ((uint64_t)i < count % (uint64_t)ph->nprod)
			share++;
		ph->w[i].quota = share;
	}
}

static void phase_collect(struct phase *ph, const struct tb_target *t, struct tb_phase_result *r,
			  const struct tb_proc_sample *b0, double c0)
{
	struct tb_proc_sample b1;
	tb_proc_sample(t->broker_pid, &b1);
	double c1 = tb_self_cpu_s();
	int64_t end = tb_now_ns();
	if (ph->nprod > 0) {
		flow_summarize(ph, false, &r->produce, end);
		latency_summarize(ph, false, &r->produce_latency);
	}
	if (ph->ncons > 0) {
		flow_summarize(ph, true, &r->consume, end);
		if (ph->kind == TB_PHASE_E2E) {
			latency_summarize(ph, true, &r->e2e_latency);
			r->has_e2e = true;
		}
	}
	uint64_t bytes = ph->nprod > 0 ? r->produce.total_bytes : r->consume.total_bytes;
	resources_summarize(t, b0, &b1, c0, c1, bytes, end - ph->t0_ns, &r->res);
}

/* The phase and its workers in one block: shared with the workers' children under
 * --processes (5), plain memory otherwise. */
static struct phase *phase_alloc(bool shared, int workers, size_t *size_out)
{
	size_t size = sizeof(struct phase) + (size_t)workers * sizeof(struct worker);
	*size_out = size;
	void *block;
	if (shared) {
		block = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (block == MAP_FAILED)
			return NULL;
	} else if (!(block = calloc(1, size))) {
		return NULL;
	}
	struct phase *ph = block;
	ph->w = (struct worker *)(ph + 1);
	return ph;
}

static void phase_release(struct phase *ph, bool shared, size_t size)
{
	if (shared)
		munmap(ph, size);
	else
		free(ph);
}

static void phase_sync_init(struct phase *ph, bool shared)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	pthread_mutexattr_init(&ma);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (shared) {
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
		pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	}
	pthread_mutex_init(&ph->lock, &ma);
	pthread_cond_init(&ph->cond, &ca);
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_destroy(&ca);
}

int tb_run_phase(const struct tb_opts *o, const struct tb_target *t, enum tb_phase_kind kind,
		 double rate, uint64_t count, int64_t duration_ns, int64_t warmup_ns,
		 struct tb_phase_result *r)
{
	memset(r, 0, sizeof(*r));
	r->target_rate = rate;
	r->warmup_ns = warmup_ns;
	int nprod = kind == TB_PHASE_CONSUME ? 0 : o->producers;
	int ncons = kind == TB_PHASE_PRODUCE ? 0 : o->consumers;
	size_t size = 0;
	struct phase *ph = phase_alloc(o->processes, nprod + ncons, &size);
	uint8_t *pool = nprod > 0 ? pool_create(o->payload) : NULL;
	if (!ph || (nprod > 0 && !pool)) {
		snprintf(r->produce.first_error, sizeof(r->produce.first_error), "out of memory");
		if (ph)
			phase_release(ph, o->processes, size);
		free(pool);
		return -1;
	}
	ph->o = o;
	ph->t = t;
	ph->ops = tb_driver_for(o->system);
	ph->kind = kind;
	ph->rate = rate;
	ph->expect = kind == TB_PHASE_CONSUME ? count : UINT64_MAX;
	ph->nprod = nprod;
	ph->ncons = ncons;
	ph->producers_left = nprod;
	ph->pool = pool;
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	phase_sync_init(ph, o->processes);
	phase_assign_quotas(ph, kind == TB_PHASE_CONSUME ? 0 : count);
	int started = phase_start_workers(ph);
	struct tb_proc_sample b0;
	tb_proc_sample(t->broker_pid, &b0);
	double c0 = tb_self_cpu_s();
	bool ok = phase_go(ph, started, duration_ns, warmup_ns);
	if (ok)
		sampler_run(ph, r);
	if (o->processes)
		workers_reap(ph, true);
	else
		for (int i = 0; i < started; i++)
			pthread_join(ph->w[i].thread, NULL);
	if (ok)
		phase_collect(ph, t, r, &b0, c0);
	else
		for (int i = 0; i < started; i++)
			if (ph->w[i].error[0]) {
				struct tb_flow *f = ph->w[i].consumer ? &r->consume : &r->produce;
				tb_strlcpy(f->first_error, sizeof(f->first_error), ph->w[i].error);
				break;
			}
	int failed = !ok;
	for (int i = 0; i < started; i++)
		failed |= ph->w[i].failed;
	pthread_cond_destroy(&ph->cond);
	pthread_mutex_destroy(&ph->lock);
	phase_release(ph, o->processes, size);
	free(pool);
	return failed ? -1 : 0;
}

void tb_phase_free(struct tb_phase_result *r)
{
	free(r->samples);
	r->samples = NULL;
	r->sample_count = r->sample_cap = 0;
}

int tb_prepare_topic(const struct tb_opts *o, const struct tb_target *t, char *err, size_t err_size)
{
	return tb_driver_for(o->system)->prepare(o, t, err, err_size);
}

static double rusage_s(int who)
{
	struct rusage ru;
	if (getrusage(who, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* This process and its reaped children: with --processes the workers are children,
 * reaped before the phase's second reading. Brokers and fio runs are reaped outside
 * phases, so they fall on both readings alike. */
double tb_self_cpu_s(void)
{
	return rusage_s(RUSAGE_SELF) + rusage_s(RUSAGE_CHILDREN);
}
