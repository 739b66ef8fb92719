/* workers.h - a small fixed pool of threads for CPU work that must not stall the event
 * loop (a SASL PLAIN login's PBKDF2: 3-12 ms each). Work waits in a bounded FIFO; when
 * a worker has run it, its done callback runs on the loop, which the pool wakes through
 * an eventfd (tl_workers_fd). Thread: the loop's, except each work's run callback. */
#ifndef TL_BROKER_WORKERS_H
#define TL_BROKER_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "tally/error.h"

struct tl_workers;
struct tl_work;

/* Runs on a worker thread: may touch only @work and what it owns or borrows read-only. */
typedef void (*tl_work_run_fn)(struct tl_work *work);
/* Runs on the loop, once per submitted work; @ran is false when the pool stopped
 * before a worker took it. */
typedef void (*tl_work_done_fn)(struct tl_work *work, bool ran);

/* The caller's storage, usually inside its own struct; the pool's until done runs. */
struct tl_work {
	tl_work_run_fn run;
	tl_work_done_fn done;
	bool ran;             /* private */
	struct tl_work *next; /* private */
};

/* Starts @threads workers taking at most @pending_max works at a time (queued, running
 * or waiting for their done callback). */
tl_err tl_workers_create(int32_t threads, int32_t pending_max, struct tl_workers **out);
/* Queues @work. TL_ERR_LIMIT when pending_max works are pending (then done never runs). */
tl_err tl_workers_submit(struct tl_workers *workers, struct tl_work *work);
/* The eventfd the loop watches; when readable call tl_workers_on_event(). */
int tl_workers_fd(const struct tl_workers *workers);
/* Runs the done callbacks of works the workers have finished. */
void tl_workers_on_event(struct tl_workers *workers);
/* Works pending now (queued, running or done but not yet called back). */
int32_t tl_workers_pending(struct tl_workers *workers);
/* Lets each worker finish the work in its hands, joins them, then calls back every
 * pending work (@ran false for those no worker took). NULL is fine. */
void tl_workers_destroy(struct tl_workers *workers);

#endif
