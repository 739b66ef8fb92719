/* tally_spool_service.c - a service producing with libtally's durable spool, to be
 * kill -9'd at random points (tests/integration/613-libtally-spool-kill9.sh).
 *
 *   tally_spool_service BROKERS TOPIC SPOOL_DIR TOTAL [RATE]
 *       Produces records "r-0000000" .. "r-<TOTAL-1>" (key = value) to TOPIC with
 *       spool.dir=SPOOL_DIR, at most RATE records per second (0 = no limit). At start
 *       it scans the spool (tl_producer_spool_scan) for the newest record a previous run
 *       persisted and goes on after it: what that run spooled but the broker did not
 *       store, the producer resends itself with the same producer id and sequences.
 *       Flushes at the end; exits 0 once every record is delivered.
 * Progress goes to stderr: "service: start=N", "service: a resent record was delivered"
 * (once per run), "service: done ... resent=N". */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/producer.h"

struct counts {
	int64_t ok;
	int64_t resent; /* reports of records a previous run spooled (opaque NULL) */
	int64_t failed;
};

static void on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	struct counts *c = opaque;
	if (d->err != TL_OK) {
		c->failed++;
		fprintf(stderr, "service: delivery failed: %s: %s\n", tl_err_name(d->err),
			d->detail ? d->detail : "");
		return;
	}
	c->ok++;
	if (d->opaque == NULL && c->resent++ == 0)
		fprintf(stderr, "service: a resent record was delivered\n");
}

/* The highest record number in the spool. */
static bool scan_max(const struct tl_producer_record *record, void *arg)
{
	int64_t *max = arg;
	char key[32];
	if (!record->key || record->key_len < 3 || record->key_len >= (int32_t)sizeof(key))
		return true;
	memcpy(key, record->key, (size_t)record->key_len);
	key[record->key_len] = '\0';
	int64_t n = strtoll(key + 2, NULL, 10);
	if (n > *max)
		*max = n;
	return true;
}

static void pause_until(double t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double left = t - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
	if (left <= 0)
		return;
	struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc != 5 && argc != 6) {
		fprintf(stderr,
			"usage: tally_spool_service BROKERS TOPIC SPOOL_DIR TOTAL [RATE]\n");
		return 2;
	}
	const char *topic = argv[2];
	int64_t total = atoll(argv[4]);
	double rate = argc == 6 ? atof(argv[5]) : 0;
	struct counts counts = {0, 0, 0};
	char err[512];
	struct tl_producer_conf *conf = tl_producer_conf_create();
	if (tl_producer_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err)) != TL_OK ||
	    tl_producer_conf_set(conf, "spool.dir", argv[3], err, sizeof(err)) != TL_OK ||
	    tl_producer_conf_set(conf, "spool.segment.bytes", "262144", err, sizeof(err)) !=
		    TL_OK ||
	    tl_producer_conf_set(conf, "linger.ms", "2", err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "service: %s\n", err);
		return 2;
	}
	tl_producer_conf_set_delivery_cb(conf, on_delivery, &counts);
	struct tl_producer *producer;
	if (tl_producer_create(conf, &producer, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "service: %s\n", err);
		return 1;
	}
	tl_producer_conf_destroy(conf);
	int64_t max = -1;
	if (tl_producer_spool_scan(producer, scan_max, &max) != TL_OK) {
		fprintf(stderr, "service: scan: %s\n", tl_producer_last_error(producer));
		return 1;
	}
	int64_t start = max + 1;
	fprintf(stderr, "service: start=%" PRId64 " pending=%" PRId64 "\n", start,
		tl_producer_outstanding(producer));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double began = (double)t0.tv_sec + (double)t0.tv_nsec / 1e9;
	for (int64_t i = start; i < total; i++) {
		char value[32];
		int len = snprintf(value, sizeof(value), "r-%07" PRId64, i);
		struct tl_producer_record rec = {.topic = topic,
						 .partition = TL_PRODUCER_PARTITION_ANY,
						 .key = value,
						 .key_len = len,
						 .value = value,
						 .value_len = len,
						 .opaque = &counts};
		tl_err e = tl_producer_send(producer, &rec);
		if (e != TL_OK) {
			fprintf(stderr, "service: send %s: %s\n", value,
				tl_producer_last_error(producer));
			return 1;
		}
		if ((i & 63) == 0) {
			(void)tl_producer_poll(producer, 0);
			if (rate > 0)
				pause_until(began + (double)(i - start) / rate);
		}
	}
	tl_err e = tl_producer_flush(producer, 60000);
	fprintf(stderr,
		"service: %s start=%" PRId64 " delivered=%" PRId64 " resent=%" PRId64
		" failed=%" PRId64 "\n",
		e == TL_OK && counts.failed == 0 ? "done" : "FAILED", start, counts.ok,
		counts.resent, counts.failed);
	tl_producer_destroy(producer);
	return e == TL_OK && counts.failed == 0 ? 0 : 1;
}
