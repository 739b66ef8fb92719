/* spool_test.c - the producer's durable spool (spool.dir) against the scripted fake
 * broker (fake_broker.h): records on disk, in log/'s segment format with producer id,
 * epoch and sequence, before tl_producer_send() returns; a new producer on the same
 * directory resends what the broker did not store (DescribeProducers), with the same
 * ids, and goes on with the next sequence; a torn tail is cut; a broker that forgot the
 * producer id gets nothing resent; a late batch of the dead producer is not sent twice;
 * one producer per directory; tl_producer_spool_scan(). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "client/tests/fake_broker.h"
#include "common/tests/check_run.h"
#include "protocol/batch.h"
#include "tally/producer.h"
#include "test_producer.h"

#define WAIT_MS 10000

static struct fake_broker fb;
static char fb_address[64];
static char spool_dir[256];

static void setup(void)
{
	fake_broker_start(&fb, 2);
	fake_broker_address(&fb, fb_address, sizeof(fb_address));
	snprintf(spool_dir, sizeof(spool_dir), "/tmp/tally-spool-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(spool_dir));
}

static void teardown(void)
{
	fake_broker_stop(&fb);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool_dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct tl_producer *spool_producer(struct reports *reports, const char *const *kv)
{
	const char *const base[] = {"linger.ms", "0", "spool.dir", spool_dir, NULL};
	return test_producer(fb_address, reports, base, kv);
}

static int marker;

static tl_err send_to(struct tl_producer *producer, int32_t partition, const char *value)
{
	struct tl_producer_record rec = {.topic = "t",
					 .partition = partition,
					 .key = value,
					 .key_len = (int32_t)strlen(value),
					 .value = value,
					 .value_len = (int32_t)strlen(value),
					 .opaque = &marker};
	return tl_producer_send(producer, &rec);
}

static void set_hold(bool hold)
{
	pthread_mutex_lock(&fb.lock);
	fb.produce_hold = hold;
	pthread_mutex_unlock(&fb.lock);
}

static int fake_get(const int *field)
{
	pthread_mutex_lock(&fb.lock);
	int v = *field;
	pthread_mutex_unlock(&fb.lock);
	return v;
}

/* The batches of partition @partition's spool files, in order. */
static int read_spool(int32_t partition, struct tl_batch_header *out, int max)
{
	char dir[sizeof(spool_dir) + 16]; /* spool_dir, "/t-", the partition */
	snprintf(dir, sizeof(dir), "%s/t-%d", spool_dir, partition);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	char names[16][256];
	int files = 0;
	struct dirent *de;
	while ((de = readdir(d)) && files < 16)
		if (strstr(de->d_name, ".log"))
			snprintf(names[files++], sizeof(names[0]), "%s", de->d_name);
	closedir(d);
	qsort(names, (size_t)files, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
	int n = 0;
	for (int f = 0; f < files; f++) {
		char path[sizeof(dir) + 1 + sizeof(names[0])]; /* room for any dir/name */
		int w = snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
		ck_assert(w > 0 && (size_t)w < sizeof(path));
		FILE *fp = fopen(path, "rb");
		ck_assert_ptr_nonnull(fp);
		static uint8_t data[1 << 20];
		size_t len = fread(data, 1, sizeof(data), fp);
		fclose(fp);
		size_t pos = 0;
		while (pos + 12 <= len && n < max) {
			int64_t size = tl_batch_size(data + pos, len - pos);
			if (size < 0 || (size_t)size > len - pos ||
			    tl_batch_validate(data + pos, (size_t)size, &out[n], NULL) != TL_OK)
				break;
			n++;
			pos += (size_t)size;
		}
	}
	return n;
}

/* A first producer spools @count records to partition 0 that the broker stores but
 * never acknowledges, then dies. */
static void spool_unacknowledged(int count)
{
	set_hold(true);
	struct reports reports = {0};
	struct tl_producer *producer = spool_producer(&reports, NULL);
	for (int i = 0; i < count; i++) {
		char value[16];
		snprintf(value, sizeof(value), "v%d", i);
		ck_assert_int_eq(send_to(producer, 0, value), TL_OK);
	}
	ck_assert_int_eq(tl_producer_flush(producer, 300), TL_ERR_TIMED_OUT);
	tl_producer_destroy(producer);
	ck_assert_int_eq(reports.failed, count);
	ck_assert_int_eq(reports.last_err, TL_ERR_CLOSED);
	pthread_mutex_lock(&fb.lock);
	fb.produce_hold = false;
	fb.batches_seen = 0;
	pthread_mutex_unlock(&fb.lock);
}

/* ---- tests ---- */

START_TEST(spool_conflicts_are_errors)
{
	const char *cases[][3] = {
		{"transactional.id", "x", "transactional.id"},
		{"acks", "1", "acks=all"},
		{"enable.idempotence", "false", "idempotent"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tl_producer_conf *conf = tl_producer_conf_create();
		char err[512];
		ck_assert_int_eq(tl_producer_conf_set(conf, "bootstrap.servers", fb_address, err,
						      sizeof(err)),
				 TL_OK);
		ck_assert_int_eq(
			tl_producer_conf_set(conf, "spool.dir", spool_dir, err, sizeof(err)),
			TL_OK);
		ck_assert_int_eq(
			tl_producer_conf_set(conf, cases[i][0], cases[i][1], err, sizeof(err)),
			TL_OK);
		struct tl_producer *producer = NULL;
		ck_assert_int_eq(tl_producer_create(conf, &producer, err, sizeof(err)),
				 TL_ERR_INVALID);
		ck_assert_msg(strstr(err, cases[i][2]) != NULL, "%s", err);
		tl_producer_conf_destroy(conf);
	}
}
END_TEST

START_TEST(records_are_on_disk_with_their_ids_before_send_returns)
{
	set_hold(true);
	const char *kv[] = {"spool.fsync", "true", NULL};
	struct tl_producer *producer = spool_producer(NULL, kv);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(send_to(producer, 1, "x"), TL_OK);
	struct tl_batch_header h[8];
	ck_assert_int_eq(read_spool(1, h, 8), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(h[i].base_offset, i); /* the record's index in the spool */
		ck_assert_int_eq(h[i].producer_id, 42);
		ck_assert_int_eq(h[i].producer_epoch, 0);
		ck_assert_int_eq(h[i].base_sequence, i);
		ck_assert_int_eq(h[i].records_count, 1);
	}
	char path[600];
	snprintf(path, sizeof(path), "%s/producer", spool_dir);
	FILE *fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	char line[128] = "";
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), fp));
	fclose(fp);
	ck_assert_str_eq(line, "tally-spool 1 42 0\n");
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(restart_resends_what_the_broker_did_not_store)
{
	spool_unacknowledged(5);
	int inits = fake_get(&fb.all_init_requests);
	pthread_mutex_lock(&fb.lock);
	fb.describe_last[0] = 1; /* the broker stored sequences 0 and 1 */
	pthread_mutex_unlock(&fb.lock);
	struct reports reports = {0};
	struct tl_producer *producer = spool_producer(&reports, NULL);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(reports.recovered, 3);
	ck_assert_int_eq(reports.failed, 0);
	ck_assert_int_eq(send_to(producer, 0, "after"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(reports.ok, 4);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.all_init_requests, inits); /* the spool's producer id goes on */
	ck_assert_int_ge(fb.describe_requests, 1);
	ck_assert_int_eq(fb.batches_seen, 2);
	ck_assert_int_eq(fb.seen_producer_id[0], 42);
	ck_assert_int_eq(fb.seen_base_sequence[0], 2);
	ck_assert_int_eq(fb.seen_record_count[0], 3);
	ck_assert_int_eq(fb.seen_base_sequence[1], 5);
	pthread_mutex_unlock(&fb.lock);
	tl_producer_destroy(producer);
}
END_TEST

struct scan_seen {
	int count;
	char last[16];
};

static bool on_scan(const struct tl_producer_record *record, void *arg)
{
	struct scan_seen *seen = arg;
	ck_assert_str_eq(record->topic, "t");
	ck_assert_int_eq(record->partition, 0);
	ck_assert_ptr_null(record->opaque);
	snprintf(seen->last, sizeof(seen->last), "%.*s", record->value_len,
		 (const char *)record->value);
	seen->count++;
	return true;
}

START_TEST(scan_hands_out_the_spooled_records_oldest_first)
{
	spool_unacknowledged(4);
	set_hold(true);
	struct tl_producer *producer = spool_producer(NULL, NULL);
	struct scan_seen seen = {0, ""};
	ck_assert_int_eq(tl_producer_spool_scan(producer, on_scan, &seen), TL_OK);
	ck_assert_int_eq(seen.count, 4);
	ck_assert_str_eq(seen.last, "v3");
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(second_producer_on_the_same_dir_is_refused)
{
	struct tl_producer *first = spool_producer(NULL, NULL);
	struct tl_producer_conf *conf = tl_producer_conf_create();
	char err[512];
	ck_assert_int_eq(
		tl_producer_conf_set(conf, "bootstrap.servers", fb_address, err, sizeof(err)),
		TL_OK);
	ck_assert_int_eq(tl_producer_conf_set(conf, "spool.dir", spool_dir, err, sizeof(err)),
			 TL_OK);
	struct tl_producer *second = NULL;
	ck_assert_int_eq(tl_producer_create(conf, &second, err, sizeof(err)), TL_ERR_EXISTS);
	ck_assert_msg(strstr(err, "in use by another producer") != NULL, "%s", err);
	tl_producer_destroy(first);
	ck_assert_int_eq(tl_producer_create(conf, &second, err, sizeof(err)), TL_OK);
	tl_producer_destroy(second);
	tl_producer_conf_destroy(conf);
}
END_TEST

START_TEST(torn_tail_is_cut_and_the_rest_resent)
{
	spool_unacknowledged(3);
	char path[600];
	snprintf(path, sizeof(path), "%s/t-0/%020d.log", spool_dir, 0);
	FILE *fp = fopen(path, "ab");
	ck_assert_ptr_nonnull(fp);
	fwrite("\0\0\0\0\0\0\0\3\0\0\0\x40torn", 1, 16, fp); /* half a batch */
	fclose(fp);
	struct reports reports = {0};
	struct tl_producer *producer = spool_producer(&reports, NULL);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(reports.recovered, 3); /* no state at the broker: all of them */
	ck_assert_int_eq(send_to(producer, 0, "next"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_base_sequence[0], 0);
	ck_assert_int_eq(fb.seen_record_count[0], 3);
	ck_assert_int_eq(fb.seen_base_sequence[fb.batches_seen - 1], 3);
	pthread_mutex_unlock(&fb.lock);
	struct tl_batch_header h[8];
	ck_assert_int_eq(read_spool(0, h, 8), 4);
	ck_assert_int_eq(h[3].base_offset, 3);
	tl_producer_destroy(producer);
}
END_TEST

START_TEST(broker_that_forgot_the_producer_gets_nothing_resent)
{
	const char *kv[] = {"spool.segment.bytes", "4096", NULL};
	struct tl_producer *producer = spool_producer(NULL, kv);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(send_to(producer, 0, "a-record-of-some-length"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	set_hold(true);
	ck_assert_int_eq(send_to(producer, 0, "unacknowledged"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, 200), TL_ERR_TIMED_OUT);
	tl_producer_destroy(producer);
	struct tl_batch_header h[256];
	int kept = read_spool(0, h, 256);
	ck_assert_int_lt(kept, 201); /* acknowledged segments were deleted */
	ck_assert_int_gt(h[0].base_sequence, 0);
	pthread_mutex_lock(&fb.lock);
	fb.produce_hold = false;
	fb.batches_seen = 0;
	pthread_mutex_unlock(&fb.lock); /* describe_last stays -1: no state */
	struct reports reports = {0};
	producer = spool_producer(&reports, kv);
	tl_err err = TL_OK;
	for (int i = 0; i < 500 && err == TL_OK; i++) {
		usleep(10000);
		err = send_to(producer, 1, "x");
	}
	ck_assert_int_eq(err, TL_ERR_FATAL);
	ck_assert_msg(strstr(tl_producer_last_error(producer), "producer.id.expiration.ms") != NULL,
		      "%s", tl_producer_last_error(producer));
	ck_assert_int_eq(reports.recovered, 0);
	tl_producer_destroy(producer);
	pthread_mutex_lock(&fb.lock);
	for (int i = 0; i < fb.batches_seen; i++)
		ck_assert_int_ne(fb.seen_base_sequence[i], h[kept - 1].base_sequence);
	pthread_mutex_unlock(&fb.lock);
}
END_TEST

START_TEST(late_batch_of_the_dead_producer_is_not_sent_twice)
{
	spool_unacknowledged(5);
	pthread_mutex_lock(&fb.lock);
	fb.describe_script[0] = 1; /* first look: sequences 0-1 stored */
	fb.describe_script[1] = 4; /* after OUT_OF_ORDER: the dead one's batch landed */
	fb.describe_script_count = 2;
	fb.produce_script[0] = TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	fb.produce_script_count = 1;
	pthread_mutex_unlock(&fb.lock);
	struct reports reports = {0};
	struct tl_producer *producer = spool_producer(&reports, NULL);
	for (int i = 0; i < 500 && fake_get(&fb.describe_requests) < 2; i++)
		usleep(10000);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(send_to(producer, 0, "after"), TL_OK);
	ck_assert_int_eq(tl_producer_flush(producer, WAIT_MS), TL_OK);
	ck_assert_int_eq(reports.failed, 0);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.describe_requests, 2);
	ck_assert_int_eq(fb.batches_seen, 2); /* the refused try, then "after" */
	ck_assert_int_eq(fb.seen_base_sequence[0], 2);
	ck_assert_int_eq(fb.seen_base_sequence[1], 5);
	pthread_mutex_unlock(&fb.lock);
	tl_producer_destroy(producer);
}
END_TEST

static Suite *spool_suite(void)
{
	Suite *s = suite_create("producer_spool");
	TCase *tc = tcase_create("fake_broker");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, spool_conflicts_are_errors);
	tcase_add_test(tc, records_are_on_disk_with_their_ids_before_send_returns);
	tcase_add_test(tc, restart_resends_what_the_broker_did_not_store);
	tcase_add_test(tc, scan_hands_out_the_spooled_records_oldest_first);
	tcase_add_test(tc, second_producer_on_the_same_dir_is_refused);
	tcase_add_test(tc, torn_tail_is_cut_and_the_rest_resent);
	tcase_add_test(tc, broker_that_forgot_the_producer_gets_nothing_resent);
	tcase_add_test(tc, late_batch_of_the_dead_producer_is_not_sent_twice);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(spool_suite());
}
