/* workers_test.c - the pool behind PLAIN logins: every work runs on a worker and is called
 * back once on the caller's thread; past pending_max a submit is refused; destroy calls
 * back what is still pending. */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include <check.h>

#include "broker/workers.h"
#include "common/tests/check_run.h"

struct item {
	struct tl_work work;
	pthread_t ran_on;      /* set by run */
	pthread_mutex_t *gate; /* run waits for it, when set */
	int done_calls;
	bool ran;
};

static void item_run(struct tl_work *work)
{
	struct item *item = (struct item *)work;
	if (item->gate) {
		pthread_mutex_lock(item->gate);
		pthread_mutex_unlock(item->gate);
	}
	item->ran_on = pthread_self();
}

static int done_total;

static void item_done(struct tl_work *work, bool ran)
{
	struct item *item = (struct item *)work;
	item->done_calls++;
	item->ran = ran;
	done_total++;
}

static void item_init(struct item *item, pthread_mutex_t *gate)
{
	*item = (struct item){.work = {.run = item_run, .done = item_done}, .gate = gate};
}

/* Polls the pool's eventfd as the loop does until @want callbacks have run (10 s at most). */
static void drain(struct tl_workers *workers, int want)
{
	for (int turns = 0; done_total < want && turns < 1000; turns++) {
		struct pollfd pfd = {.fd = tl_workers_fd(workers), .events = POLLIN};
		if (poll(&pfd, 1, 10) == 1)
			tl_workers_on_event(workers);
	}
	ck_assert_int_eq(done_total, want);
}

/* A pool of @threads taking @count works at most, given @items (ungated) at once. */
static struct tl_workers *pool_given(int32_t threads, struct item *items, int count)
{
	done_total = 0;
	struct tl_workers *workers = NULL;
	ck_assert_int_eq(tl_workers_create(threads, count, &workers), TL_OK);
	for (int i = 0; i < count; i++) {
		item_init(&items[i], NULL);
		ck_assert_int_eq(tl_workers_submit(workers, &items[i].work), TL_OK);
	}
	return workers;
}

START_TEST(each_work_runs_on_a_worker_and_is_called_back_once_on_the_loop)
{
	struct item items[16];
	struct tl_workers *workers = pool_given(2, items, 16);
	drain(workers, 16);
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(items[i].done_calls, 1);
		ck_assert(items[i].ran);
		ck_assert(!pthread_equal(items[i].ran_on, pthread_self()));
	}
	ck_assert_int_eq(tl_workers_pending(workers), 0);
	tl_workers_destroy(workers);
}
END_TEST

START_TEST(a_submit_past_pending_max_is_refused_until_a_callback_runs)
{
	done_total = 0;
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&gate); /* holds the worker in the first work */
	struct tl_workers *workers = NULL;
	ck_assert_int_eq(tl_workers_create(1, 3, &workers), TL_OK);
	struct item items[4];
	for (int i = 0; i < 4; i++)
		item_init(&items[i], &gate);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tl_workers_submit(workers, &items[i].work), TL_OK);
	ck_assert_int_eq(tl_workers_submit(workers, &items[3].work), TL_ERR_LIMIT);
	ck_assert_int_eq(tl_workers_pending(workers), 3);
	pthread_mutex_unlock(&gate);
	drain(workers, 3);
	ck_assert_int_eq(items[3].done_calls, 0); /* refused: never called back */
	ck_assert_int_eq(tl_workers_submit(workers, &items[3].work), TL_OK);
	drain(workers, 4);
	tl_workers_destroy(workers);
}
END_TEST

START_TEST(destroy_calls_back_every_pending_work_once)
{
	struct item items[8];
	struct tl_workers *workers = pool_given(1, items, 8);
	tl_workers_destroy(workers); /* some ran, some never did: all are called back */
	ck_assert_int_eq(done_total, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(items[i].done_calls, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("broker_workers");
	TCase *tc = tcase_create("workers");
	tcase_add_test(tc, each_work_runs_on_a_worker_and_is_called_back_once_on_the_loop);
	tcase_add_test(tc, a_submit_past_pending_max_is_refused_until_a_callback_runs);
	tcase_add_test(tc, destroy_calls_back_every_pending_work_once);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
