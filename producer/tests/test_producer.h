/* test_producer.h - what the client unit tests share besides the fake broker: counters
 * of delivery reports and a producer made from key=value pairs. Header-only: static
 * functions for one test file. */
#ifndef TL_PRODUCER_TESTS_TEST_PRODUCER_H
#define TL_PRODUCER_TESTS_TEST_PRODUCER_H

#include <stdint.h>
#include <stdio.h>

#include <check.h>

#include "tally/producer.h"

struct reports {
	int ok;
	int recovered; /* ok with opaque NULL: spooled by an earlier producer */
	int failed;
	tl_err last_err;
	char last_detail[512];
	int64_t offsets[64]; /* of the first 64 ok */
};

static void on_report(const struct tl_producer_delivery *d, void *opaque)
{
	struct reports *r = opaque;
	if (d->err == TL_OK) {
		if (r->ok < 64)
			r->offsets[r->ok] = d->offset;
		r->ok++;
		r->recovered += d->opaque == NULL;
	} else {
		r->failed++;
		r->last_err = d->err;
		snprintf(r->last_detail, sizeof(r->last_detail), "%s", d->detail ? d->detail : "");
	}
}

static void conf_set_all(struct tl_producer_conf *conf, const char *const *kv)
{
	char err[512];
	for (int i = 0; kv && kv[i]; i += 2)
		ck_assert_msg(tl_producer_conf_set(conf, kv[i], kv[i + 1], err, sizeof(err)) ==
				      TL_OK,
			      "%s=%s: %s", kv[i], kv[i + 1], err);
}

/* A producer on @bootstrap with retry.backoff.ms=10, then @base and @kv (each NULL or
 * NULL-terminated key, value pairs), reporting into @reports unless NULL. */
static struct tl_producer *test_producer(const char *bootstrap, struct reports *reports,
					 const char *const *base, const char *const *kv)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	const char *const common[] = {"bootstrap.servers", bootstrap, "retry.backoff.ms", "10",
				      NULL};
	conf_set_all(conf, common);
	conf_set_all(conf, base);
	conf_set_all(conf, kv);
	if (reports)
		tl_producer_conf_set_delivery_cb(conf, on_report, reports);
	struct tl_producer *producer = NULL;
	char err[512];
	ck_assert_msg(tl_producer_create(conf, &producer, err, sizeof(err)) == TL_OK, "%s", err);
	tl_producer_conf_destroy(conf);
	return producer;
}

#endif
