/* workers.c - see workers.h.
 * (1) A submitted work is on exactly one list (queue, a worker's hands, results) until
 *     its done callback runs, on the loop, exactly once.
 * (2) pending = queued + running + results, never above pending_max; only the loop
 *     changes it upwards (submit) or downwards (callbacks), under the lock. */
#include "broker/workers.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/assert.h"

#define WORKERS_MAX 16

struct tl_workers {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct tl_work *queue, *queue_tail; /* lock */
	struct tl_work *results;            /* lock; newest first */
	int32_t pending;                    /* lock */
	int32_t pending_max;
	bool stopping; /* lock */
	int event_fd;
	int32_t thread_count;
	pthread_t threads[WORKERS_MAX];
};

static void signal_loop(struct tl_workers *w)
{
	uint64_t one = 1;
	ssize_t n = write(w->event_fd, &one, sizeof(one));
	TL_UNUSED(n); /* a full counter is still readable */
}

static void *worker_main(void *arg)
{
	struct tl_workers *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->queue && !w->stopping)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->stopping)
			break;
		struct tl_work *work = w->queue;
		w->queue = work->next;
		if (!w->queue)
			w->queue_tail = NULL;
		pthread_mutex_unlock(&w->lock);
		work->run(work);
		work->ran = true;
		pthread_mutex_lock(&w->lock);
		work->next = w->results;
		w->results = work;
		signal_loop(w);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

tl_err tl_workers_create(int32_t threads, int32_t pending_max, struct tl_workers **out)
{
	TL_ASSERT(threads >= 1 && threads <= WORKERS_MAX);
	TL_ASSERT(pending_max >= threads);
	struct tl_workers *w = calloc(1, sizeof(*w));
	if (!w)
		return TL_ERR_NOMEM;
	w->pending_max = pending_max;
	w->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->event_fd == -1) {
		free(w);
		return TL_ERR_IO;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	/* Workers take no signal (they inherit this mask): SIGTERM and the rest must reach
	 * the loop's signalfd, whenever the loop blocks them. */
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	tl_err err = TL_OK;
	for (; w->thread_count < threads; w->thread_count++) {
		if (pthread_create(&w->threads[w->thread_count], NULL, worker_main, w) != 0) {
			err = TL_ERR_IO;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (err != TL_OK) {
		tl_workers_destroy(w);
		return err;
	}
	*out = w;
	return TL_OK;
}

tl_err tl_workers_submit(struct tl_workers *w, struct tl_work *work)
{
	TL_ASSERT(work->run);
	TL_ASSERT(work->done);
	pthread_mutex_lock(&w->lock);
	TL_ASSERT(!w->stopping);
	if (w->pending >= w->pending_max) {
		pthread_mutex_unlock(&w->lock);
		return TL_ERR_LIMIT;
	}
	w->pending++;
	work->ran = false;
	work->next = NULL;
	if (w->queue_tail)
		w->queue_tail->next = work;
	else
		w->queue = work;
	w->queue_tail = work;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return TL_OK;
}

int tl_workers_fd(const struct tl_workers *w)
{
	return w->event_fd;
}

int32_t tl_workers_pending(struct tl_workers *w)
{
	pthread_mutex_lock(&w->lock);
	int32_t pending = w->pending;
	pthread_mutex_unlock(&w->lock);
	return pending;
}

/* Calls back every work of @list. */
static void results_run(struct tl_workers *w, struct tl_work *list)
{
	while (list) {
		struct tl_work *next = list->next;
		pthread_mutex_lock(&w->lock);
		TL_ASSERT(w->pending > 0);
		w->pending--;
		pthread_mutex_unlock(&w->lock);
		list->next = NULL;
		list->done(list, list->ran);
		list = next;
	}
}

void tl_workers_on_event(struct tl_workers *w)
{
	uint64_t count;
	ssize_t n = read(w->event_fd, &count, sizeof(count));
	TL_UNUSED(n);
	pthread_mutex_lock(&w->lock);
	struct tl_work *list = w->results;
	w->results = NULL;
	pthread_mutex_unlock(&w->lock);
	results_run(w, list);
}

void tl_workers_destroy(struct tl_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (int32_t i = 0; i < w->thread_count; i++)
		pthread_join(w->threads[i], NULL);
	results_run(w, w->results);
	w->results = NULL;
	struct tl_work *queue = w->queue;
	w->queue = w->queue_tail = NULL;
	results_run(w, queue);
	TL_ASSERT(w->pending == 0);
	close(w->event_fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
}
