/* consumer_test.c - the libtally consumer: configuration and argument errors, and
 * against the scripted fake broker (client/tests/fake_broker.h): records and headers
 * decoded from plain and zstd batches with the next Fetch in flight meanwhile
 * (pipelining), read_committed skipping an aborted transaction and control batches,
 * start from committed offsets (waiting, under read_committed, for one a transaction
 * staged), sync and async commits (a sync one returning at its deadline), start from the
 * end, seek (an offset is at once the position a commit stores), and the last record
 * staying valid until the next poll across a rejoin and a new assignment, a static
 * member fenced for good, and the rebalance callback told REVOKED and LOST at the next
 * poll, not inside the commit that learned of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "client/tests/fake_broker.h"
#include "common/tests/check_run.h"
#include "consumer/internal.h"
#include "protocol/batch.h"
#include "protocol/records.h"
#include "tally/consumer.h"

/* ---- configuration and arguments ---- */

START_TEST(unknown_key_and_bad_values_are_errors)
{
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	char err[256];
	ck_assert_int_eq(tl_consumer_conf_set(conf, "group.idd", "g", err, sizeof(err)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "did you mean 'group.id'"));
	ck_assert_int_eq(tl_consumer_conf_set(conf, "isolation.level", "dirty", err, sizeof(err)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "read_committed|read_uncommitted"));
	ck_assert_int_eq(
		tl_consumer_conf_set(conf, "auto.offset.reset", "smallest", err, sizeof(err)),
		TL_ERR_INVALID);
	ck_assert_int_eq(
		tl_consumer_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err)),
		TL_OK);
	ck_assert_int_eq(tl_consumer_conf_set(conf, "fetch.max.wait.ms", "40000", err, sizeof(err)),
			 TL_OK);
	struct tl_consumer *consumer = NULL;
	ck_assert_int_eq(tl_consumer_create(conf, &consumer, err, sizeof(err)), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "request.timeout.ms"));
	tl_consumer_conf_destroy(conf);
}
END_TEST

static struct tl_consumer *consumer_on(const char *address, const char *const *kv)
{
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	char err[256];
	ck_assert_int_eq(tl_consumer_conf_set(conf, "bootstrap.servers", address, err, sizeof(err)),
			 TL_OK);
	for (int i = 0; kv && kv[i]; i += 2)
		ck_assert_msg(tl_consumer_conf_set(conf, kv[i], kv[i + 1], err, sizeof(err)) ==
				      TL_OK,
			      "%s", err);
	struct tl_consumer *consumer = NULL;
	ck_assert_msg(tl_consumer_create(conf, &consumer, err, sizeof(err)) == TL_OK, "%s", err);
	tl_consumer_conf_destroy(conf);
	return consumer;
}

START_TEST(assign_seek_subscribe_and_commit_check_their_arguments)
{
	struct tl_consumer *consumer = consumer_on("127.0.0.1:1", NULL);
	struct tl_consumer_partition twice[2] = {{"t", 0, 0, 0}, {"t", 0, 5, 0}};
	ck_assert_int_eq(tl_consumer_assign(consumer, twice, 2), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "listed twice"));
	struct tl_consumer_partition bad = {"t", 0, -7, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &bad, 1), TL_ERR_INVALID);
	struct tl_consumer_partition ok = {"t", 1, TL_CONSUMER_OFFSET_BEGINNING, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &ok, 1), TL_OK);
	ck_assert_int_eq(tl_consumer_assignment(consumer, NULL, 0), 1);
	ck_assert_int_eq(tl_consumer_seek(consumer, "t", 0, 0, 0), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "not assigned"));
	ck_assert_int_eq(tl_consumer_seek(consumer, "t", 1, 10, 0), TL_OK);
	const char *topics[] = {"t"};
	ck_assert_int_eq(tl_consumer_subscribe(consumer, topics, 1), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "group.id"));
	ck_assert_int_eq(tl_consumer_commit(consumer, 100), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "group.id"));
	tl_consumer_destroy(consumer);
}
END_TEST

/* ---- against the fake broker ---- */

static struct fake_broker fb;
static char fb_address[64];
static struct tl_buf blob;
static int32_t blob_epoch; /* the partition leader epoch stamped on batches appended */

static void fake_setup(void)
{
	fake_broker_start(&fb, 1);
	fake_broker_address(&fb, fb_address, sizeof(fb_address));
	tl_buf_init(&blob);
	blob_epoch = 0;
}

static void fake_teardown(void)
{
	fake_broker_stop(&fb);
	tl_buf_deinit(&blob);
}

/* Appends a batch of @count records (key "k<offset>", value "v<offset>", header
 * "h"="<offset>") at @base_offset to the blob the fake serves. */
static void blob_batch(int64_t base_offset, int32_t count, enum tl_compression compression,
		       int64_t producer_id, bool transactional)
{
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, compression);
	for (int32_t i = 0; i < count; i++) {
		char key[32], value[32], hv[32];
		int64_t offset = base_offset + i;
		snprintf(key, sizeof(key), "k%lld", (long long)offset);
		snprintf(value, sizeof(value), "v%lld", (long long)offset);
		snprintf(hv, sizeof(hv), "%lld", (long long)offset);
		struct tl_record_header h = {tl_str_of("h"),
					     {(const uint8_t *)hv, (int32_t)strlen(hv)}};
		struct tl_bytes k = {(const uint8_t *)key, (int32_t)strlen(key)};
		struct tl_bytes v = {(const uint8_t *)value, (int32_t)strlen(value)};
		ck_assert_int_eq(tl_records_builder_append(&builder, 1000 + offset, k, v, &h, 1),
				 TL_OK);
	}
	tl_records_builder_set_producer(&builder, producer_id, 0, producer_id >= 0 ? 0 : -1,
					transactional);
	size_t at = blob.len;
	ck_assert_int_eq(tl_records_builder_finish(&builder, NULL, &blob), TL_OK);
	tl_batch_assign(blob.data + at, base_offset, blob_epoch);
	tl_records_builder_deinit(&builder);
	fb.fetch_records = blob.data;
	fb.fetch_records_len = blob.len;
	fb.fetch_end = base_offset + count;
}

static void blob_abort_marker(int64_t offset, int64_t producer_id)
{
	size_t at = blob.len;
	ck_assert_int_eq(tl_records_control_marker_build(&blob, false, producer_id, 0, 0, 1),
			 TL_OK);
	tl_batch_assign(blob.data + at, offset, 0);
	fb.fetch_records = blob.data;
	fb.fetch_records_len = blob.len;
	fb.fetch_end = offset + 1;
}

/* Polls until @want records came or 5 s passed; returns their offsets in @offsets. */
static int poll_offsets(struct tl_consumer *consumer, int want, int64_t *offsets)
{
	int got = 0;
	for (int round = 0; round < 50 && got < want; round++) {
		const struct tl_consumer_record *r;
		tl_err err = tl_consumer_poll(consumer, 100, &r);
		if (err == TL_ERR_TIMED_OUT)
			continue;
		ck_assert_msg(err == TL_OK, "poll: %s", tl_consumer_last_error(consumer));
		char key[32], value[32], hv[32];
		snprintf(key, sizeof(key), "k%lld", (long long)r->offset);
		snprintf(value, sizeof(value), "v%lld", (long long)r->offset);
		snprintf(hv, sizeof(hv), "%lld", (long long)r->offset);
		ck_assert_int_eq(r->key_len, (int32_t)strlen(key));
		ck_assert_int_eq(memcmp(r->key, key, strlen(key)), 0);
		ck_assert_int_eq(r->value_len, (int32_t)strlen(value));
		ck_assert_int_eq(memcmp(r->value, value, strlen(value)), 0);
		ck_assert_int_eq(r->header_count, 1);
		ck_assert_int_eq(r->headers[0].key_len, 1);
		ck_assert_int_eq(r->headers[0].value_len, (int32_t)strlen(hv));
		ck_assert_int_eq(memcmp(r->headers[0].value, hv, strlen(hv)), 0);
		ck_assert_int_eq(r->timestamp_ms, 1000 + r->offset);
		ck_assert_str_eq(r->topic, "t");
		offsets[got++] = r->offset;
	}
	return got;
}

START_TEST(records_come_back_from_plain_and_zstd_batches)
{
	blob_batch(0, 5, TL_COMPRESSION_NONE, -1, false);
	blob_batch(5, 5, TL_COMPRESSION_ZSTD, -1, false);
	struct tl_consumer *consumer = consumer_on(fb_address, NULL);
	struct tl_consumer_partition part = {"t", 0, TL_CONSUMER_OFFSET_BEGINNING, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[16];
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	/* Pipelining: the next Fetch left while 9 records still wait in the first answer
	 * (white box: the client only reads answers inside poll, so it is in flight). */
	ck_assert(consumer->parts[0].fetch_in_flight);
	ck_assert_int_eq(consumer->parts[0].fetch_offset, 10);
	ck_assert_int_eq(consumer->parts[0].position, 1);
	ck_assert_int_eq(poll_offsets(consumer, 9, offsets + 1), 9);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(offsets[i], i);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 10);
	const struct tl_consumer_record *r;
	ck_assert_int_eq(tl_consumer_poll(consumer, 200, &r), TL_ERR_TIMED_OUT);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_isolation_level, 1); /* read_committed by default */
	pthread_mutex_unlock(&fb.lock);
	tl_consumer_destroy(consumer);
}
END_TEST

/* Offsets 0-2: a transaction of producer 7, aborted by the marker at 3; 4-5: plain. */
static void blob_with_aborted_transaction(void)
{
	blob_batch(0, 3, TL_COMPRESSION_NONE, 7, true);
	blob_abort_marker(3, 7);
	blob_batch(4, 2, TL_COMPRESSION_ZSTD, -1, false);
	fb.aborted_producer_id = 7;
	fb.aborted_first_offset = 0;
}

START_TEST(read_committed_skips_aborted_transactions_and_markers)
{
	blob_with_aborted_transaction();
	struct tl_consumer *consumer = consumer_on(fb_address, NULL);
	struct tl_consumer_partition part = {"t", 0, 0, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[16];
	ck_assert_int_eq(poll_offsets(consumer, 2, offsets), 2);
	ck_assert_int_eq(offsets[0], 4);
	ck_assert_int_eq(offsets[1], 5);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 6);
	tl_consumer_destroy(consumer);
}
END_TEST

START_TEST(read_uncommitted_returns_aborted_records_but_no_markers)
{
	blob_with_aborted_transaction();
	const char *kv[] = {"isolation.level", "read_uncommitted", NULL};
	struct tl_consumer *consumer = consumer_on(fb_address, kv);
	struct tl_consumer_partition part = {"t", 0, 0, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[16];
	ck_assert_int_eq(poll_offsets(consumer, 5, offsets), 5);
	int64_t want[5] = {0, 1, 2, 4, 5};
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(offsets[i], want[i]);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_isolation_level, 0);
	pthread_mutex_unlock(&fb.lock);
	tl_consumer_destroy(consumer);
}
END_TEST

static int async_commits;
static tl_err async_err = TL_ERR_UNKNOWN_SERVER_ERROR;

static void on_commit(tl_err err, const char *detail, void *opaque)
{
	(void)detail;
	(void)opaque;
	async_commits++;
	async_err = err;
}

/* A consumer of group g on the fake with manual commits and the callbacks given. */
static struct tl_consumer *group_consumer(tl_consumer_commit_fn commit_cb,
					  tl_consumer_rebalance_fn rebalance_cb)
{
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	char err[256];
	ck_assert_int_eq(
		tl_consumer_conf_set(conf, "bootstrap.servers", fb_address, err, sizeof(err)),
		TL_OK);
	ck_assert_int_eq(tl_consumer_conf_set(conf, "group.id", "g", err, sizeof(err)), TL_OK);
	ck_assert_int_eq(
		tl_consumer_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)), TL_OK);
	if (commit_cb)
		tl_consumer_conf_set_commit_cb(conf, commit_cb, NULL);
	if (rebalance_cb)
		tl_consumer_conf_set_rebalance_cb(conf, rebalance_cb, NULL);
	struct tl_consumer *consumer = NULL;
	ck_assert_int_eq(tl_consumer_create(conf, &consumer, err, sizeof(err)), TL_OK);
	tl_consumer_conf_destroy(conf);
	return consumer;
}

START_TEST(committed_offsets_start_and_commits_store_the_position)
{
	blob_batch(0, 10, TL_COMPRESSION_NONE, -1, false);
	fb.committed[0] = 6;
	struct tl_consumer *consumer = group_consumer(on_commit, NULL);
	struct tl_consumer_partition part = {"t", 0, TL_CONSUMER_OFFSET_COMMITTED, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[16];
	ck_assert_int_eq(poll_offsets(consumer, 2, offsets), 2);
	ck_assert_int_eq(offsets[0], 6);
	ck_assert_int_eq(offsets[1], 7);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.committed[0], 8);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	ck_assert_int_eq(tl_consumer_commit_async(consumer), TL_OK);
	const struct tl_consumer_record *r;
	for (int i = 0; i < 50 && async_commits == 0; i++)
		(void)tl_consumer_poll(consumer, 20, &r);
	ck_assert_int_eq(async_commits, 1);
	ck_assert_int_eq(async_err, TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.committed[0], 9);
	pthread_mutex_unlock(&fb.lock);
	tl_consumer_destroy(consumer);
}
END_TEST

START_TEST(offset_end_waits_for_new_records)
{
	blob_batch(0, 10, TL_COMPRESSION_NONE, -1, false);
	struct tl_consumer *consumer = consumer_on(fb_address, NULL);
	struct tl_consumer_partition part = {"t", 0, TL_CONSUMER_OFFSET_END, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	const struct tl_consumer_record *r;
	ck_assert_int_eq(tl_consumer_poll(consumer, 300, &r), TL_ERR_TIMED_OUT);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 10);
	ck_assert_int_eq(tl_consumer_seek(consumer, "t", 0, 8, 0), TL_OK);
	int64_t offsets[4];
	ck_assert_int_eq(poll_offsets(consumer, 2, offsets), 2);
	ck_assert_int_eq(offsets[0], 8);
	ck_assert_int_eq(offsets[1], 9);
	tl_consumer_destroy(consumer);
}
END_TEST

/* Polls until a record comes (5 s at most). */
static const struct tl_consumer_record *poll_one(struct tl_consumer *consumer)
{
	for (int round = 0; round < 50; round++) {
		const struct tl_consumer_record *r;
		tl_err err = tl_consumer_poll(consumer, 100, &r);
		if (err == TL_OK)
			return r;
		ck_assert_msg(err == TL_ERR_TIMED_OUT, "poll: %s",
			      tl_consumer_last_error(consumer));
	}
	ck_abort_msg("no record within 5 s");
	return NULL;
}

static void record_is_offset_zero(const struct tl_consumer_record *r)
{
	ck_assert_str_eq(r->topic, "t");
	ck_assert_int_eq(r->offset, 0);
	ck_assert_int_eq(r->key_len, 2);
	ck_assert_int_eq(memcmp(r->key, "k0", 2), 0);
	ck_assert_int_eq(r->value_len, 2);
	ck_assert_int_eq(memcmp(r->value, "v0", 2), 0);
	ck_assert_int_eq(r->header_count, 1);
	ck_assert_int_eq(memcmp(r->headers[0].value, "0", 1), 0);
}

/* Review finding: a commit answered UNKNOWN_MEMBER_ID (the member expired while the
 * application worked) made the consumer rejoin inside tl_consumer_commit(), which dropped
 * the assignment and freed the response and the topic name the record handed out last
 * points into; consumer.h promises the record until the next poll. ASan reports a read of
 * freed memory here if anything frees them early; likewise for the member id of the
 * group metadata taken before the commit (stop 38). */
START_TEST(the_last_record_stays_valid_across_a_rejoin_and_a_new_assignment)
{
	blob_batch(0, 5, TL_COMPRESSION_NONE, -1, false);
	const char *kv[] = {"group.id", "g", "enable.auto.commit", "false", NULL};
	struct tl_consumer *consumer = consumer_on(fb_address, kv);
	struct tl_consumer_partition part = {"t", 0, 0, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	const struct tl_consumer_record *r = poll_one(consumer);
	record_is_offset_zero(r);
	/* White box: a member of a stable generation, as after subscribe, whose commit the
	 * coordinator refuses because the member expired. */
	consumer->group.state = GROUP_STABLE;
	consumer->group.generation_id = 1;
	consumer->group.member_id = strdup("m");
	struct tl_consumer_group_metadata gm;
	ck_assert_int_eq(tl_consumer_group_metadata(consumer, &gm), TL_OK);
	ck_assert_str_eq(gm.member_id, "m");
	pthread_mutex_lock(&fb.lock);
	fb.commit_script[fb.commit_script_count++] = TL_ERR_UNKNOWN_MEMBER_ID;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_ERR_UNKNOWN_MEMBER_ID);
	ck_assert_int_eq(tl_consumer_assignment(consumer, NULL, 0), 0); /* it rejoins */
	record_is_offset_zero(r);
	/* The group metadata taken before it, too (consumer.h): the rejoin freed the
	 * group's member id, not the copy handed out. */
	ck_assert_str_eq(gm.member_id, "m");
	ck_assert_int_eq(gm.generation_id, 1);
	/* The same for the application's own new assignment. */
	consumer->group.state = GROUP_NONE;
	struct tl_consumer_partition other = {"t", 0, 3, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &other, 1), TL_OK);
	record_is_offset_zero(r);
	r = poll_one(consumer);
	ck_assert_int_eq(r->offset, 3);
	tl_consumer_destroy(consumer);
}
END_TEST

/* Review finding: OffsetFetch stopped at v5, so a read_committed consumer never asked
 * require_stable (v7, KIP-447) and started from the committed offset that an open
 * transaction was about to replace, processing again what the transaction accounted for.
 * Java waits (UNSTABLE_OFFSET_COMMIT is retried) until the transaction ends. */
START_TEST(read_committed_waits_for_an_offset_a_transaction_staged)
{
	blob_batch(0, 20, TL_COMPRESSION_NONE, -1, false);
	pthread_mutex_lock(&fb.lock);
	fb.committed[0] = 5;
	fb.offset_unstable[0] = true;
	pthread_mutex_unlock(&fb.lock);
	const char *kv[] = {"group.id", "g", "enable.auto.commit", "false", NULL};
	struct tl_consumer *consumer = consumer_on(fb_address, kv);
	struct tl_consumer_partition part = {"t", 0, TL_CONSUMER_OFFSET_COMMITTED, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	const struct tl_consumer_record *r;
	ck_assert_int_eq(tl_consumer_poll(consumer, 500, &r), TL_ERR_TIMED_OUT);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), -1);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_offset_fetch_version, 7);
	ck_assert(fb.seen_require_stable);
	fb.committed[0] = 15; /* the transaction commits its offset */
	fb.offset_unstable[0] = false;
	pthread_mutex_unlock(&fb.lock);
	int64_t offsets[4];
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	ck_assert_int_eq(offsets[0], 15);
	tl_consumer_destroy(consumer);
	/* read_uncommitted does not ask for stable offsets, as Java. */
	pthread_mutex_lock(&fb.lock);
	fb.offset_unstable[0] = true;
	pthread_mutex_unlock(&fb.lock);
	const char *dirty[] = {
		"group.id",         "g", "enable.auto.commit", "false", "isolation.level",
		"read_uncommitted", NULL};
	consumer = consumer_on(fb_address, dirty);
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	ck_assert_int_eq(offsets[0], 15);
	pthread_mutex_lock(&fb.lock);
	ck_assert(!fb.seen_require_stable);
	pthread_mutex_unlock(&fb.lock);
	tl_consumer_destroy(consumer);
}
END_TEST

/* Review finding: tl_consumer_seek(7) left the position at -1 until a poll resolved it,
 * so tl_consumer_commit() right after returned TL_OK having committed nothing. Java's
 * seek(tp, 7) makes position() 7 and commitSync() commit 7. */
START_TEST(seek_to_an_offset_is_the_position_a_commit_stores)
{
	blob_batch(0, 10, TL_COMPRESSION_NONE, -1, false);
	const char *kv[] = {"group.id", "g", "enable.auto.commit", "false", NULL};
	struct tl_consumer *consumer = consumer_on(fb_address, kv);
	struct tl_consumer_partition part = {"t", 0, 2, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 2);
	int64_t offsets[4];
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	ck_assert_int_eq(offsets[0], 2);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_OK);
	ck_assert_int_eq(tl_consumer_seek(consumer, "t", 0, 7, 0), TL_OK);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 7);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.committed[0], 7);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	ck_assert_int_eq(offsets[0], 7);
	/* A symbolic offset is resolved by the polls. */
	ck_assert_int_eq(tl_consumer_seek(consumer, "t", 0, TL_CONSUMER_OFFSET_BEGINNING, 0),
			 TL_OK);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), -1);
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	ck_assert_int_eq(offsets[0], 0);
	tl_consumer_destroy(consumer);
}
END_TEST

/* Review finding: once its request was sent, tl_consumer_commit() waited for the answer
 * up to request.timeout.ms (30 s by default) whatever its timeout_ms. Java's
 * commitSync(Duration) fails at the deadline. The answer that comes later (here: the
 * request timing out) must land on no freed state. */
START_TEST(commit_returns_at_its_deadline_with_the_request_in_flight)
{
	blob_batch(0, 5, TL_COMPRESSION_NONE, -1, false);
	const char *kv[] = {"group.id", "g", "enable.auto.commit", "false", "request.timeout.ms",
			    "1500",     NULL};
	struct tl_consumer *consumer = consumer_on(fb_address, kv);
	struct tl_consumer_partition part = {"t", 0, 0, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[4];
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_OK); /* coordinator known */
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	pthread_mutex_lock(&fb.lock);
	fb.commit_hold = true;
	pthread_mutex_unlock(&fb.lock);
	int64_t start_ns = tl_mono_ns();
	ck_assert_int_eq(tl_consumer_commit(consumer, 200), TL_ERR_TIMED_OUT);
	int64_t took_ms = (tl_mono_ns() - start_ns) / 1000000;
	ck_assert_msg(took_ms >= 190 && took_ms < 1000, "commit took %lld ms", (long long)took_ms);
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "timeout"));
	/* The abandoned request times out meanwhile (request.timeout.ms); a commit after it
	 * is answered again. */
	pthread_mutex_lock(&fb.lock);
	fb.commit_hold = false;
	pthread_mutex_unlock(&fb.lock);
	const struct tl_consumer_record *r;
	while (tl_mono_ns() - start_ns < 2500 * 1000000LL)
		(void)tl_consumer_poll(consumer, 100, &r);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.committed[0], tl_consumer_position(consumer, "t", 0));
	pthread_mutex_unlock(&fb.lock);
	tl_consumer_destroy(consumer);
}
END_TEST

/* Review finding: FENCED_INSTANCE_ID (another consumer joined with our
 * group.instance.id) made the member rebalance and rejoin every second for ever; Java
 * and librdkafka make it fatal. Here it comes as the answer to a commit (604 has it from
 * the group protocol against tallyd). */
START_TEST(a_fenced_static_member_stops_for_good)
{
	blob_batch(0, 5, TL_COMPRESSION_NONE, -1, false);
	const char *kv[] = {"group.id", "g", "group.instance.id", "i", "enable.auto.commit",
			    "false",    NULL};
	struct tl_consumer *consumer = consumer_on(fb_address, kv);
	struct tl_consumer_partition part = {"t", 0, 0, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[4];
	ck_assert_int_eq(poll_offsets(consumer, 1, offsets), 1);
	/* White box: a member of a stable generation, as after subscribe. */
	consumer->subscribed = true;
	consumer->group.state = GROUP_STABLE;
	consumer->group.generation_id = 1;
	consumer->group.member_id = strdup("m");
	pthread_mutex_lock(&fb.lock);
	fb.commit_script[fb.commit_script_count++] = TL_ERR_FENCED_INSTANCE_ID;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_ERR_FENCED_INSTANCE_ID);
	ck_assert(tl_err_is_fatal(TL_ERR_FENCED_INSTANCE_ID));
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "group.instance.id"));
	ck_assert_int_eq(tl_consumer_assignment(consumer, NULL, 0), 0);
	const struct tl_consumer_record *r;
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tl_consumer_poll(consumer, 100, &r), TL_ERR_FENCED_INSTANCE_ID);
		ck_assert_ptr_nonnull(
			strstr(tl_consumer_last_error(consumer), "group.instance.id=i"));
	}
	pthread_mutex_lock(&fb.lock);
	int commits = fb.commit_requests;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_commit(consumer, 1000), TL_ERR_FENCED_INSTANCE_ID);
	ck_assert_int_eq(tl_consumer_commit_async(consumer), TL_ERR_FENCED_INSTANCE_ID);
	const char *topics[] = {"t"};
	ck_assert_int_eq(tl_consumer_subscribe(consumer, topics, 1), TL_ERR_FENCED_INSTANCE_ID);
	ck_assert_int_eq(consumer->group.state, GROUP_NONE); /* no JoinGroup */
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.commit_requests, commits);
	pthread_mutex_unlock(&fb.lock);
	tl_consumer_destroy(consumer);
}
END_TEST

/* What the rebalance callback was told, in order. */
static struct {
	int count;
	int event[8];
	int32_t parts[8];
	int64_t offset[8];
	tl_err commit[8];
	tl_err poll[8];
} told;

static void on_rebalance(struct tl_consumer *consumer, int event,
			 const struct tl_consumer_partition *parts, int32_t count, void *opaque)
{
	(void)opaque;
	ck_assert_int_lt(told.count, 8);
	int i = told.count++;
	told.event[i] = event;
	told.parts[i] = count;
	told.offset[i] = count > 0 ? parts[0].offset : -1;
	const struct tl_consumer_record *r;
	told.poll[i] = tl_consumer_poll(consumer, 0, &r);
	told.commit[i] = event == TL_CONSUMER_REVOKED ? tl_consumer_commit(consumer, 5000) : TL_OK;
}

/* White box: @consumer, assigned t/0, as a subscribed member of generation 1 after
 * SyncGroup; the callback is then told ASSIGNED as a poll would. */
static void as_told_member(struct tl_consumer *consumer)
{
	consumer->subscribed = true;
	consumer->group.state = GROUP_STABLE;
	consumer->group.assigned_untold = true;
	consumer->group.generation_id = 1;
	free(consumer->group.member_id);
	consumer->group.member_id = strdup("m");
	int before = told.count;
	ck_assert_int_eq(tl_consumer_group_events(consumer), TL_OK);
	ck_assert_int_eq(told.count, before + 1);
	ck_assert_int_eq(told.event[before], TL_CONSUMER_ASSIGNED);
	ck_assert_int_eq(told.parts[before], 1);
}

/* The rebalance callback runs at the top of a poll, never inside the call that learned
 * of the rebalance (here a commit): REVOKED while the member still owns the partitions
 * (the callback's commit stores the position), LOST once the group went on without it
 * (the assignment is gone at once), and nothing for a commit answered in an earlier
 * generation; destroy tells REVOKED. Poll inside the callback is refused. */
START_TEST(rebalance_callback_tells_revoked_and_lost_at_the_next_poll)
{
	blob_batch(0, 5, TL_COMPRESSION_NONE, -1, false);
	memset(&told, 0, sizeof(told));
	struct tl_consumer *consumer = group_consumer(NULL, on_rebalance);
	struct tl_consumer_partition part = {"t", 0, 0, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[4];
	ck_assert_int_eq(poll_offsets(consumer, 2, offsets), 2);
	as_told_member(consumer);

	/* A rebalance: the member keeps t/0 until the next poll told REVOKED. */
	ck_assert_int_eq(told.offset[0], 2); /* ASSIGNED: the position */
	pthread_mutex_lock(&fb.lock);
	fb.commit_script[fb.commit_script_count++] = TL_ERR_REBALANCE_IN_PROGRESS;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_ERR_REBALANCE_IN_PROGRESS);
	ck_assert_int_eq(told.count, 1);
	ck_assert_int_eq(tl_consumer_assignment(consumer, NULL, 0), 1);
	const struct tl_consumer_record *r;
	(void)tl_consumer_poll(consumer, 100, &r);
	ck_assert_int_eq(told.count, 2);
	ck_assert_int_eq(told.event[1], TL_CONSUMER_REVOKED);
	ck_assert_int_eq(told.parts[1], 1);
	ck_assert_int_eq(told.offset[1], 2);
	ck_assert_int_eq(told.poll[1], TL_ERR_INVALID);
	ck_assert_int_eq(told.commit[1], TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.committed[0], 2);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_assignment(consumer, NULL, 0), 0);
	ck_assert_int_eq(consumer->group.state, GROUP_JOIN);

	/* Lost: the coordinator no longer knows the member. Gone at once, told next poll;
	 * an offset not resolved yet is told as the start it was given. */
	consumer->subscribed = false;
	struct tl_consumer_partition earliest = {"t", 0, TL_CONSUMER_OFFSET_BEGINNING, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &earliest, 1), TL_OK);
	as_told_member(consumer);
	ck_assert_int_eq(told.offset[2], TL_CONSUMER_OFFSET_BEGINNING);
	pthread_mutex_lock(&fb.lock);
	fb.commit_script[fb.commit_script_count++] = TL_ERR_UNKNOWN_MEMBER_ID;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_seek(consumer, "t", 0, 3, 0), TL_OK);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_ERR_UNKNOWN_MEMBER_ID);
	ck_assert_int_eq(told.count, 3);
	ck_assert_int_eq(tl_consumer_assignment(consumer, NULL, 0), 0);
	(void)tl_consumer_poll(consumer, 100, &r);
	ck_assert_int_eq(told.count, 4);
	ck_assert_int_eq(told.event[3], TL_CONSUMER_LOST);
	ck_assert_int_eq(told.parts[3], 1);
	ck_assert_int_eq(told.offset[3], 3);
	ck_assert_int_eq(told.poll[3], TL_ERR_INVALID);
	(void)tl_consumer_poll(consumer, 100, &r);
	ck_assert_int_eq(told.count, 4); /* told once */

	/* A late answer from an older generation takes nothing from this one. */
	consumer->subscribed = false;
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	as_told_member(consumer);
	ck_assert_int_eq(told.count, 5);
	pthread_mutex_lock(&fb.lock);
	fb.commit_script[fb.commit_script_count++] = TL_ERR_ILLEGAL_GENERATION;
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_commit_async(consumer), TL_OK);
	consumer->group.generation_id = 2; /* a rebalance while the commit was in flight */
	for (int i = 0; i < 5; i++)
		(void)tl_consumer_poll(consumer, 50, &r);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.commit_script_count, 0); /* answered */
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(told.count, 5);
	ck_assert_int_eq(tl_consumer_assignment(consumer, NULL, 0), 1);
	tl_consumer_destroy(consumer);
	ck_assert_int_eq(told.count, 6); /* destroy: REVOKED */
	ck_assert_int_eq(told.event[5], TL_CONSUMER_REVOKED);
}
END_TEST

/* Moves the fake's leader to @epoch; OffsetForLeaderEpoch answers that the epoch
 * before ends at @end_offset. */
static void leader_moves(int32_t epoch, int32_t end_epoch, int64_t end_offset)
{
	pthread_mutex_lock(&fb.lock);
	fb.leader_epoch = epoch;
	fb.epoch_end_epoch = end_epoch;
	fb.epoch_end_offset = end_offset;
	pthread_mutex_unlock(&fb.lock);
}

/* KIP-320: Fetch names the leader epoch Metadata gave; a new leader is asked where the
 * position's epoch ends, and a log truncated below the position (an unclean election)
 * moves it back to the first offset that diverged: those records come again, from the
 * new leader, and none of its records at lower offsets is skipped. */
START_TEST(a_log_truncated_below_the_position_is_read_again_from_the_divergence)
{
	blob_epoch = 3;
	blob_batch(0, 10, TL_COMPRESSION_NONE, -1, false);
	leader_moves(3, -1, -1);
	struct tl_consumer *consumer = consumer_on(fb_address, NULL);
	struct tl_consumer_partition part = {"t", 0, TL_CONSUMER_OFFSET_BEGINNING, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[16];
	ck_assert_int_eq(poll_offsets(consumer, 10, offsets), 10);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_fetch_leader_epoch, 3);
	ck_assert_int_eq(fb.epoch_requests, 0); /* read from the start: nothing to ask */
	pthread_mutex_unlock(&fb.lock);

	/* A clean election: epoch 3 ends at 10 on the new leader, the position holds. */
	leader_moves(4, 3, 10);
	const struct tl_consumer_record *r;
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(tl_consumer_poll(consumer, 20, &r), TL_ERR_TIMED_OUT);
		pthread_mutex_lock(&fb.lock);
		bool moved = fb.seen_fetch_leader_epoch == 4;
		pthread_mutex_unlock(&fb.lock);
		if (moved)
			break;
	}
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.seen_fetch_leader_epoch, 4);
	ck_assert_int_ge(fb.fenced_fetches, 1);
	ck_assert_int_eq(fb.epoch_requests, 1);
	ck_assert_int_eq(fb.seen_epoch_asked, 3);
	ck_assert_int_eq(fb.seen_epoch_current, 4);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 10);

	/* An unclean one: epoch 3 ends at 6 on the new leader. */
	leader_moves(5, 3, 6);
	ck_assert_int_eq(poll_offsets(consumer, 4, offsets), 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(offsets[i], 6 + i);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.epoch_requests, 2);
	ck_assert_int_eq(fb.seen_epoch_current, 5);
	ck_assert_int_eq(fb.seen_fetch_leader_epoch, 5);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 10);
	tl_consumer_destroy(consumer);
}
END_TEST

/* Without a reset policy the truncation is an error, as Java's LogTruncationException (an
 * OffsetOutOfRangeException): the position stays, nothing more is read until a seek. */
START_TEST(a_truncation_with_auto_offset_reset_none_is_reported)
{
	blob_epoch = 2;
	blob_batch(0, 8, TL_COMPRESSION_NONE, -1, false);
	leader_moves(2, -1, -1);
	const char *kv[] = {"auto.offset.reset", "none", NULL};
	struct tl_consumer *consumer = consumer_on(fb_address, kv);
	struct tl_consumer_partition part = {"t", 0, 0, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[16];
	ck_assert_int_eq(poll_offsets(consumer, 8, offsets), 8);
	leader_moves(3, 2, 5);
	const struct tl_consumer_record *r;
	tl_err err = TL_ERR_TIMED_OUT;
	for (int i = 0; i < 50 && err == TL_ERR_TIMED_OUT; i++)
		err = tl_consumer_poll(consumer, 100, &r);
	ck_assert_int_eq(err, TL_ERR_OFFSET_OUT_OF_RANGE);
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "log truncation detected"));
	ck_assert_ptr_nonnull(strstr(tl_consumer_last_error(consumer), "ends at 5"));
	ck_assert_int_eq(tl_consumer_position(consumer, "t", 0), 8);
	ck_assert_int_eq(tl_consumer_poll(consumer, 200, &r), TL_ERR_TIMED_OUT);
	ck_assert_int_eq(tl_consumer_seek(consumer, "t", 0, 5, 0), TL_OK);
	ck_assert_int_eq(poll_offsets(consumer, 3, offsets), 3);
	ck_assert_int_eq(offsets[0], 5);
	/* A leader that knows no epoch at or below the position's: only the reset policy
	 * could say where to go, and it is none. */
	leader_moves(4, -1, -1);
	err = TL_ERR_TIMED_OUT;
	for (int i = 0; i < 50 && err == TL_ERR_TIMED_OUT; i++)
		err = tl_consumer_poll(consumer, 100, &r);
	ck_assert_int_eq(err, TL_ERR_OFFSET_OUT_OF_RANGE);
	ck_assert_ptr_nonnull(
		strstr(tl_consumer_last_error(consumer), "holds no record of the position's"));
	tl_consumer_destroy(consumer);
}
END_TEST

/* A commit keeps the leader epoch of the position; a consumer starting from a committed
 * offset with an epoch asks the leader before its first Fetch, and starts at the
 * divergence if the log was truncated below it. */
START_TEST(a_committed_offset_is_validated_by_its_leader_epoch)
{
	blob_epoch = 7;
	blob_batch(0, 10, TL_COMPRESSION_NONE, -1, false);
	leader_moves(8, 6, 5);
	fb.committed[0] = 8;
	fb.committed_epoch[0] = 6;
	struct tl_consumer *consumer = group_consumer(NULL, NULL);
	struct tl_consumer_partition part = {"t", 0, TL_CONSUMER_OFFSET_COMMITTED, 0};
	ck_assert_int_eq(tl_consumer_assign(consumer, &part, 1), TL_OK);
	int64_t offsets[16];
	ck_assert_int_eq(poll_offsets(consumer, 5, offsets), 5);
	ck_assert_int_eq(offsets[0], 5);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.epoch_requests, 1);
	ck_assert_int_eq(fb.seen_epoch_asked, 6);
	ck_assert_int_eq(fb.seen_epoch_current, 8);
	pthread_mutex_unlock(&fb.lock);
	ck_assert_int_eq(tl_consumer_commit(consumer, 5000), TL_OK);
	pthread_mutex_lock(&fb.lock);
	ck_assert_int_eq(fb.committed[0], 10);
	ck_assert_int_eq(fb.committed_epoch[0], 7); /* the last record's batch */
	pthread_mutex_unlock(&fb.lock);
	tl_consumer_destroy(consumer);
}
END_TEST

static Suite *consumer_suite(void)
{
	Suite *s = suite_create("consumer");
	TCase *tc = tcase_create("arguments");
	tcase_add_test(tc, unknown_key_and_bad_values_are_errors);
	tcase_add_test(tc, assign_seek_subscribe_and_commit_check_their_arguments);
	suite_add_tcase(s, tc);
	tc = tcase_create("fake_broker");
	tcase_add_checked_fixture(tc, fake_setup, fake_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, records_come_back_from_plain_and_zstd_batches);
	tcase_add_test(tc, read_committed_skips_aborted_transactions_and_markers);
	tcase_add_test(tc, read_uncommitted_returns_aborted_records_but_no_markers);
	tcase_add_test(tc, committed_offsets_start_and_commits_store_the_position);
	tcase_add_test(tc, offset_end_waits_for_new_records);
	tcase_add_test(tc, the_last_record_stays_valid_across_a_rejoin_and_a_new_assignment);
	tcase_add_test(tc, read_committed_waits_for_an_offset_a_transaction_staged);
	tcase_add_test(tc, seek_to_an_offset_is_the_position_a_commit_stores);
	tcase_add_test(tc, commit_returns_at_its_deadline_with_the_request_in_flight);
	tcase_add_test(tc, a_fenced_static_member_stops_for_good);
	tcase_add_test(tc, rebalance_callback_tells_revoked_and_lost_at_the_next_poll);
	tcase_add_test(tc, a_log_truncated_below_the_position_is_read_again_from_the_divergence);
	tcase_add_test(tc, a_truncation_with_auto_offset_reset_none_is_reported);
	tcase_add_test(tc, a_committed_offset_is_validated_by_its_leader_epoch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(consumer_suite());
}
