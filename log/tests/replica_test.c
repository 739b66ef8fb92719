/* replica_test.c - the log's replication primitives on a real directory, through both
 * disk engines: leader epochs and their checkpoint (stamping, reopen, rebuild, torn
 * tails, OffsetsForLeaderEpoch lookups), follower appends that keep the leader's bytes
 * and build producer state, the high watermark apart from the durable end, and
 * truncation (mid-segment, at and across segment boundaries, with transactions and
 * waiters, after a simulated crash at each step). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/tests/check_run.h"
#include "common/time.h"
#include "log/log.h"
#include "protocol/records.h"

#define PAYLOAD_BYTES 100
#define BATCH_BYTES   (TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES)

static char dir[320];
static char dir2[320];
static char root[256];
static struct tl_ring *ring;
static struct tl_log_config config;

static void setup_mode(enum tl_ring_mode mode)
{
	snprintf(root, sizeof(root), "/tmp/tally-replica-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/t-0", root);
	snprintf(dir2, sizeof(dir2), "%s/t-0-follower", root);
	tl_err err;
	ring = tl_ring_create(64, mode, &err);
	ck_assert_ptr_nonnull(ring);
	tl_log_config_defaults(&config);
}

static void setup_uring(void)
{
	setup_mode(TL_RING_MODE_AUTO);
}

static void setup_sync(void)
{
	setup_mode(TL_RING_MODE_SYNC);
}

static void teardown(void)
{
	tl_ring_destroy(ring);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* A batch's bytes live until the test ends (the log borrows them until durable). */
struct batch {
	uint8_t bytes[BATCH_BYTES];
	struct tl_batch_header header;
};

static struct batch *batch_make(int32_t records, int64_t pid, int32_t seq, int16_t attributes)
{
	struct batch *b = calloc(1, sizeof(*b));
	ck_assert_ptr_nonnull(b);
	uint8_t *p = b->bytes;
	int64_t now = tl_wall_ms();
	tl_be32_put(p + TL_BATCH_OFF_LENGTH, (uint32_t)(sizeof(b->bytes) - TL_BATCH_LOG_OVERHEAD));
	tl_be32_put(p + TL_BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
	p[TL_BATCH_OFF_MAGIC] = TL_BATCH_MAGIC;
	tl_be16_put(p + TL_BATCH_OFF_ATTRIBUTES, (uint16_t)attributes);
	tl_be32_put(p + TL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(records - 1));
	tl_be64_put(p + TL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)now);
	tl_be64_put(p + TL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)now);
	tl_be64_put(p + TL_BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
	tl_be16_put(p + TL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)(pid >= 0 ? 0 : -1));
	tl_be32_put(p + TL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)seq);
	tl_be32_put(p + TL_BATCH_OFF_RECORDS_COUNT, (uint32_t)records);
	for (int i = 0; i < PAYLOAD_BYTES; i++)
		p[TL_BATCH_HEADER_BYTES + i] = (uint8_t)(seq + i);
	tl_batch_crc_update(p, sizeof(b->bytes));
	const char *why = NULL;
	ck_assert_int_eq(tl_batch_validate(p, sizeof(b->bytes), &b->header, &why), TL_OK);
	return b;
}

static struct batch *batch_plain(int32_t records)
{
	return batch_make(records, -1, -1, 0);
}

/* A COMMIT or ABORT marker, as the transaction coordinator writes it. */
struct marker {
	struct tl_buf buf;
	struct tl_batch_header header;
};

static struct marker *marker_make(int64_t pid, bool commit)
{
	struct marker *m = calloc(1, sizeof(*m));
	tl_buf_init(&m->buf);
	ck_assert_int_eq(tl_records_control_marker_build(&m->buf, commit, pid, 0, 0, tl_wall_ms()),
			 TL_OK);
	const char *why;
	ck_assert_int_eq(tl_batch_validate(m->buf.data, m->buf.len, &m->header, &why), TL_OK);
	return m;
}

static void marker_free(struct marker *m)
{
	tl_buf_deinit(&m->buf);
	free(m);
}

static struct tl_log *log_open_at(const char *path)
{
	struct tl_log *log = NULL;
	ck_assert_int_eq(tl_log_open(path, &config, ring, &log), TL_OK);
	return log;
}

static struct tl_log *log_open(void)
{
	return log_open_at(dir);
}

/* Flushes and runs the ring until everything appended is durable (not necessarily
 * under the high watermark, in replicated mode). */
static void drain(struct tl_log *log)
{
	tl_log_flush(log);
	tl_ring_submit(ring);
	while (tl_log_durable_offset(log) < tl_log_end_offset(log) && tl_log_is_writable(log))
		tl_ring_wait(ring);
}

static int64_t append(struct tl_log *log, struct batch *b)
{
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, b->bytes, sizeof(b->bytes), &b->header, &result),
			 TL_OK);
	return result.base_offset;
}

static int64_t append_marker(struct tl_log *log, struct marker *m)
{
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, m->buf.data, m->buf.len, &m->header, &result), TL_OK);
	return result.base_offset;
}

/* Appends @count batches of @records records each, durable; free with batches_free. */
static struct batch **append_many(struct tl_log *log, int count, int32_t records)
{
	struct batch **all = calloc((size_t)count, sizeof(*all));
	for (int i = 0; i < count; i++) {
		all[i] = batch_plain(records);
		append(log, all[i]);
	}
	drain(log);
	return all;
}

static void batches_free(struct batch **all, int count)
{
	for (int i = 0; i < count; i++)
		free(all[i]);
	free(all);
}

static void path_of(char *out, size_t size, int64_t base, const char *suffix)
{
	snprintf(out, size, "%s/%020lld%s", dir, (long long)base, suffix);
}

static void checkpoint_path(char *out, size_t size)
{
	snprintf(out, size, "%s/leader-epoch-checkpoint", dir);
}

static void remove_marker(void)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/.clean-shutdown", dir);
	unlink(path);
}

static void file_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static void expect_checkpoint(const char *want)
{
	char path[400], got[512] = "";
	checkpoint_path(path, sizeof(path));
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	fclose(f);
	ck_assert_str_eq(got, want);
}

/* The cache, as "epoch@start epoch@start". */
static const char *epochs_text(const struct tl_log *log)
{
	static char text[256];
	struct tl_log_epoch_entry entries[16];
	uint32_t count = tl_log_epochs(log, entries, 16);
	ck_assert_uint_le(count, 16);
	text[0] = '\0';
	for (uint32_t i = 0; i < count; i++) {
		size_t len = strlen(text);
		snprintf(text + len, sizeof(text) - len, "%s%d@%lld", i ? " " : "",
			 entries[i].epoch, (long long)entries[i].start_offset);
	}
	return text;
}

/* The whole batch at @offset (a batch start), read through tl_log_read. */
static void read_batch(struct tl_log *log, int64_t offset, uint8_t *out, size_t len)
{
	struct tl_log_read read;
	ck_assert_int_eq(
		tl_log_read(log, offset, tl_log_written_offset(log), (int32_t)len, true, &read),
		TL_OK);
	ck_assert_int_ge(read.bytes, (int64_t)len);
	ck_assert_int_eq(read.first_offset, offset);
	ck_assert_int_eq(pread(read.fd, out, len, (off_t)read.position), (ssize_t)len);
	tl_log_read_release(read.segment);
}

static int32_t epoch_at(struct tl_log *log, int64_t offset)
{
	uint8_t head[BATCH_BYTES];
	read_batch(log, offset, head, sizeof(head));
	return (int32_t)tl_be32_get(head + TL_BATCH_OFF_LEADER_EPOCH);
}

/* ---- leader epochs ---- */

START_TEST(a_new_log_has_no_epochs_until_its_first_append)
{
	struct tl_log *log = log_open();
	ck_assert_int_eq(tl_log_latest_epoch(log), -1);
	char path[400];
	checkpoint_path(path, sizeof(path));
	ck_assert_int_ne(access(path, F_OK), 0);
	struct batch *b = batch_plain(2);
	append(log, b);
	/* Durable before the batch could be: written by the append itself. */
	expect_checkpoint("0\n1\n0 0\n");
	drain(log);
	ck_assert_int_eq(epoch_at(log, 0), 0);
	tl_log_close(log);
	free(b);
}
END_TEST

START_TEST(assign_epoch_stamps_batches_and_persists_the_checkpoint)
{
	struct tl_log *log = log_open();
	struct batch **first = append_many(log, 3, 2);
	ck_assert_int_eq(tl_log_assign_epoch(log, 3), TL_OK);
	expect_checkpoint("0\n2\n0 0\n3 6\n");
	ck_assert_int_eq(tl_log_assign_epoch(log, 3), TL_OK); /* the same: no-op */
	ck_assert_int_eq(tl_log_assign_epoch(log, 2), TL_ERR_FENCED_LEADER_EPOCH);
	ck_assert_int_eq(tl_log_assign_epoch(log, -5), TL_ERR_INVALID);
	struct batch **second = append_many(log, 2, 2);
	ck_assert_int_eq(epoch_at(log, 4), 0);
	ck_assert_int_eq(epoch_at(log, 6), 3);
	ck_assert_int_eq(epoch_at(log, 8), 3);
	/* A new epoch with no batch yet is replaced by the next one at the same offset. */
	ck_assert_int_eq(tl_log_assign_epoch(log, 4), TL_OK);
	ck_assert_int_eq(tl_log_assign_epoch(log, 7), TL_OK);
	ck_assert_str_eq(epochs_text(log), "0@0 3@6 7@10");
	tl_log_close(log);
	log = log_open();
	/* Recovery drops an epoch that starts at the end: the new leader assigns it again. */
	ck_assert_str_eq(epochs_text(log), "0@0 3@6");
	ck_assert_int_eq(tl_log_latest_epoch(log), 3);
	ck_assert_int_eq(tl_log_assign_epoch(log, 7), TL_OK);
	struct batch *b = batch_plain(1);
	ck_assert_int_eq(append(log, b), 10);
	drain(log);
	ck_assert_int_eq(epoch_at(log, 10), 7);
	tl_log_close(log);
	free(b);
	batches_free(first, 3);
	batches_free(second, 2);
}
END_TEST

/* Writes epochs 0, 2 and 5 (three batches of two records each), then closes. */
static void three_epochs(void)
{
	struct tl_log *log = log_open();
	struct batch **all = calloc(3, sizeof(*all));
	int32_t epochs[] = {0, 2, 5};
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tl_log_assign_epoch(log, epochs[i]), TL_OK);
		all[i] = batch_plain(2);
		append(log, all[i]);
		drain(log);
	}
	ck_assert_str_eq(epochs_text(log), "0@0 2@2 5@4");
	tl_log_close(log);
	batches_free(all, 3);
}

START_TEST(a_deleted_or_garbled_checkpoint_is_rebuilt_from_the_batches)
{
	three_epochs();
	char path[400];
	checkpoint_path(path, sizeof(path));
	const char *bad[] = {NULL,
			     "",
			     "0\n3\n0 0\n2 2\n",
			     "1\n0\n",
			     "0\n2\n2 2\n0 0\n",
			     "0\n1\n0 0 junk\n",
			     "0\n1\n-1 0\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i])
			file_write(path, bad[i]);
		else
			ck_assert_int_eq(unlink(path), 0);
		remove_marker();
		struct tl_log *log = log_open();
		ck_assert_str_eq(epochs_text(log), "0@0 2@2 5@4");
		tl_log_close(log);
		expect_checkpoint("0\n3\n0 0\n2 2\n5 4\n");
	}
}
END_TEST

START_TEST(an_old_data_dir_recovers_as_epoch_zero_from_the_log_start)
{
	/* Written before leader epochs: epoch 0 in every batch and no checkpoint. */
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 4, 1);
	tl_log_close(log);
	char path[400];
	checkpoint_path(path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	log = log_open();
	ck_assert_str_eq(epochs_text(log), "0@0");
	ck_assert_int_eq(tl_log_latest_epoch(log), 0);
	tl_log_close(log);
	batches_free(all, 4);
}
END_TEST

START_TEST(a_torn_tail_with_a_new_epoch_drops_its_entry)
{
	three_epochs();
	/* The kill came while the epoch-5 batch was half written. */
	remove_marker();
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_int_eq(truncate(path, 2 * BATCH_BYTES + 30), 0);
	struct tl_log *log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 4);
	ck_assert_str_eq(epochs_text(log), "0@0 2@2");
	expect_checkpoint("0\n2\n0 0\n2 2\n");
	tl_log_close(log);
}
END_TEST

START_TEST(a_tail_epoch_missing_from_the_checkpoint_is_added)
{
	three_epochs();
	/* Only possible if the file was replaced by an older copy: the tail scan adds it. */
	char path[400];
	checkpoint_path(path, sizeof(path));
	file_write(path, "0\n2\n0 0\n2 2\n");
	remove_marker();
	struct tl_log *log = log_open();
	ck_assert_str_eq(epochs_text(log), "0@0 2@2 5@4");
	tl_log_close(log);
	expect_checkpoint("0\n3\n0 0\n2 2\n5 4\n");
}
END_TEST

static void expect_end_for(struct tl_log *log, int32_t epoch, int32_t epoch_want, int64_t end_want)
{
	int32_t got_epoch = 99;
	int64_t got_end = 99;
	ck_assert_int_eq(tl_log_end_offset_for_epoch(log, epoch, &got_epoch, &got_end), TL_OK);
	ck_assert_int_eq(got_epoch, epoch_want);
	ck_assert_int_eq(got_end, end_want);
}

START_TEST(end_offset_for_epoch_follows_kafka)
{
	struct tl_log *log = log_open();
	expect_end_for(log, 0, -1, -1); /* nothing cached */
	tl_log_close(log);
	three_epochs(); /* 0@0 2@2 5@4, end 6 */
	log = log_open();
	ck_assert_int_eq(tl_log_assign_epoch(log, 5), TL_OK);
	expect_end_for(log, 5, 5, 6);   /* the latest: the log end */
	expect_end_for(log, 2, 2, 4);   /* a middle one: where the next starts */
	expect_end_for(log, 3, 2, 4);   /* between: the largest below, the next's start */
	expect_end_for(log, 0, 0, 2);   /* the earliest */
	expect_end_for(log, 6, -1, -1); /* above every epoch: undefined */
	expect_end_for(log, -1, -1, -1);
	tl_log_close(log);
	/* Below the earliest entry (the log's start moved past epoch 0's). */
	char path[400];
	checkpoint_path(path, sizeof(path));
	file_write(path, "0\n2\n2 2\n5 4\n");
	remove_marker();
	log = log_open();
	expect_end_for(log, 1, 1, 2);
	tl_log_close(log);
}
END_TEST

/* ---- follower append ---- */

/* Copies the batch at @offset from @leader to @follower byte for byte. */
static uint8_t *replicate(struct tl_log *leader, struct tl_log *follower, int64_t offset,
			  size_t len)
{
	uint8_t *bytes = malloc(len);
	read_batch(leader, offset, bytes, len);
	struct tl_batch_header h;
	const char *why;
	ck_assert_int_eq(tl_batch_validate(bytes, len, &h, &why), TL_OK);
	ck_assert_int_eq(tl_log_append_replica(follower, bytes, len, &h), TL_OK);
	return bytes;
}

START_TEST(follower_append_keeps_the_leaders_bytes_and_dedupes_after_failover)
{
	struct tl_log *leader = log_open();
	struct tl_log *follower = log_open_at(dir2);
	ck_assert_int_eq(tl_log_assign_epoch(leader, 4), TL_OK);
	struct batch *b[3];
	uint8_t *copies[3];
	for (int i = 0; i < 3; i++) {
		b[i] = batch_make(2, 7, 2 * i, 0);
		ck_assert_int_eq(append(leader, b[i]), 2 * i);
	}
	drain(leader);
	for (int i = 0; i < 3; i++)
		copies[i] = replicate(leader, follower, 2 * i, BATCH_BYTES);
	drain(follower);
	ck_assert_int_eq(tl_log_end_offset(follower), 6);
	for (int i = 0; i < 3; i++) {
		uint8_t got[BATCH_BYTES];
		read_batch(follower, 2 * i, got, sizeof(got));
		ck_assert_mem_eq(got, copies[i], BATCH_BYTES);
	}
	ck_assert_str_eq(epochs_text(follower), "4@0");
	/* Refused: below the end (already there) or past it (a gap). */
	struct tl_batch_header h = b[0]->header;
	h.base_offset = 4;
	ck_assert_int_eq(tl_log_append_replica(follower, copies[2], BATCH_BYTES, &h),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	h.base_offset = 9;
	ck_assert_int_eq(tl_log_append_replica(follower, copies[2], BATCH_BYTES, &h),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	tl_log_close(leader);
	/* Failover: the follower leads with epoch 5 and the producer retries. */
	ck_assert_int_eq(tl_log_assign_epoch(follower, 5), TL_OK);
	struct batch *retry = batch_make(2, 7, 2, 0);
	struct tl_log_append_result result;
	ck_assert_int_eq(
		tl_log_append(follower, retry->bytes, BATCH_BYTES, &retry->header, &result), TL_OK);
	ck_assert(result.duplicate);
	ck_assert_int_eq(result.base_offset, 2);
	ck_assert_int_eq(result.last_offset, 3);
	struct batch *gap = batch_make(2, 7, 9, 0);
	ck_assert_int_eq(tl_log_append(follower, gap->bytes, BATCH_BYTES, &gap->header, &result),
			 TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	struct batch *next = batch_make(2, 7, 6, 0);
	ck_assert_int_eq(append(follower, next), 6);
	drain(follower);
	ck_assert_int_eq(epoch_at(follower, 6), 5);
	ck_assert_str_eq(epochs_text(follower), "4@0 5@6");
	tl_log_close(follower);
	for (int i = 0; i < 3; i++) {
		free(b[i]);
		free(copies[i]);
	}
	free(retry);
	free(gap);
	free(next);
}
END_TEST

START_TEST(follower_append_of_a_newer_epoch_fences_the_old_leader)
{
	struct tl_log *log = log_open();
	struct batch *mine = batch_plain(1);
	append(log, mine);
	drain(log);
	struct batch *theirs = batch_plain(1);
	tl_batch_assign(theirs->bytes, 1, 6);
	theirs->header.base_offset = 1;
	theirs->header.partition_leader_epoch = 6;
	ck_assert_int_eq(tl_log_append_replica(log, theirs->bytes, BATCH_BYTES, &theirs->header),
			 TL_OK);
	expect_checkpoint("0\n2\n0 0\n6 1\n");
	struct batch *stale = batch_plain(1);
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, stale->bytes, BATCH_BYTES, &stale->header, &result),
			 TL_ERR_FENCED_LEADER_EPOCH);
	drain(log);
	tl_log_close(log);
	free(mine);
	free(theirs);
	free(stale);
}
END_TEST

/* ---- high watermark ---- */

static int waiter_calls;
static tl_err waiter_err;
static int listener_calls;
static int durable_calls;

static void on_waiter(struct tl_log_waiter *waiter, tl_err err)
{
	(void)waiter;
	waiter_err = err;
	waiter_calls++;
}

static void on_listener(void *ctx, struct tl_log *log)
{
	(void)ctx;
	(void)log;
	listener_calls++;
}

static void on_durable(void *ctx, struct tl_log *log)
{
	(void)ctx;
	(void)log;
	durable_calls++;
}

START_TEST(replicated_waiters_fire_on_the_high_watermark_not_on_durability)
{
	struct tl_log *log = log_open();
	tl_log_set_replicated(log, true);
	tl_log_set_listener(log, on_listener, NULL);
	tl_log_set_durable_listener(log, on_durable, NULL);
	waiter_calls = listener_calls = durable_calls = 0;
	struct batch *b[2] = {batch_plain(2), batch_plain(2)};
	struct tl_log_waiter w[2];
	for (int i = 0; i < 2; i++) {
		append(log, b[i]);
		w[i] = (struct tl_log_waiter){.offset = 2 * i + 1, .done = on_waiter};
		tl_log_wait_durable(log, &w[i]);
	}
	drain(log);
	tl_log_flush(log);
	ck_assert_int_eq(tl_log_durable_offset(log), 4);
	ck_assert_int_eq(tl_log_written_offset(log), 4);
	ck_assert_int_eq(tl_log_high_watermark(log), 0);
	ck_assert_int_ge(durable_calls, 1);
	ck_assert_int_eq(waiter_calls, 0);
	ck_assert_int_eq(listener_calls, 0);
	/* A consumer ahead of the high watermark waits; past the end is out of range. */
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, 2, tl_log_high_watermark(log), 1 << 20, true, &read),
			 TL_OK);
	ck_assert_int_eq(read.bytes, 0);
	ck_assert_int_eq(tl_log_read(log, 4, tl_log_high_watermark(log), 1 << 20, true, &read),
			 TL_OK);
	ck_assert_int_eq(read.bytes, 0);
	ck_assert_int_eq(tl_log_read(log, 5, tl_log_high_watermark(log), 1 << 20, true, &read),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	/* A follower's fetch reads up to the written end. */
	ck_assert_int_eq(tl_log_read(log, 0, tl_log_written_offset(log), 1 << 20, true, &read),
			 TL_OK);
	ck_assert_int_eq(read.bytes, 2 * BATCH_BYTES);
	tl_log_read_release(read.segment);
	tl_log_set_high_watermark(log, 2);
	ck_assert_int_eq(waiter_calls, 1);
	ck_assert_int_eq(waiter_err, TL_OK);
	ck_assert_int_eq(listener_calls, 1);
	tl_log_set_high_watermark(log, 1); /* monotonic */
	ck_assert_int_eq(tl_log_high_watermark(log), 2);
	tl_log_set_high_watermark(log, 100); /* clamped to the durable end */
	ck_assert_int_eq(tl_log_high_watermark(log), 4);
	ck_assert_int_eq(waiter_calls, 2);
	tl_log_close(log);
	free(b[0]);
	free(b[1]);
}
END_TEST

START_TEST(replicated_close_fails_the_waiters_above_the_high_watermark)
{
	struct tl_log *log = log_open();
	tl_log_set_replicated(log, true);
	waiter_calls = 0;
	struct batch *b = batch_plain(1);
	append(log, b);
	struct tl_log_waiter w = {.offset = 0, .done = on_waiter};
	tl_log_wait_durable(log, &w);
	tl_log_close(log);
	ck_assert_int_eq(waiter_calls, 1);
	ck_assert_int_eq(waiter_err, TL_ERR_NOT_LEADER_OR_FOLLOWER);
	free(b);
}
END_TEST

START_TEST(the_lso_never_passes_a_marker_above_the_high_watermark)
{
	struct tl_log *log = log_open();
	tl_log_set_replicated(log, true);
	struct batch *t = batch_make(1, 9, 0, TL_BATCH_ATTR_TRANSACTIONAL);
	struct batch *plain = batch_plain(1);
	ck_assert_int_eq(append(log, plain), 0);
	ck_assert_int_eq(append(log, t), 1);
	struct marker *m = marker_make(9, true);
	ck_assert_int_eq(append_marker(log, m), 2);
	drain(log);
	ck_assert_int_eq(tl_log_durable_offset(log), 3);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 0); /* the high watermark */
	tl_log_set_high_watermark(log, 2);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 1); /* the marker is not under it */
	tl_log_set_high_watermark(log, 3);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 3);
	/* A restart with a lower checkpointed high watermark holds the LSO again. */
	tl_log_close(log);
	log = log_open();
	tl_log_set_replicated(log, true);
	ck_assert_int_eq(tl_log_high_watermark(log), 3);
	ck_assert_int_eq(tl_log_reset_high_watermark(log, 2), TL_OK);
	ck_assert_int_eq(tl_log_high_watermark(log), 2);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 1);
	ck_assert_int_eq(tl_log_reset_high_watermark(log, -4), TL_OK); /* clamped to start */
	ck_assert_int_eq(tl_log_high_watermark(log), 0);
	tl_log_set_high_watermark(log, 3);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 3);
	tl_log_close(log);
	free(t);
	free(plain);
	marker_free(m);
}
END_TEST

/* ---- truncation ---- */

static void expect_consistent_reopen(int64_t end, const char *epochs)
{
	remove_marker();
	struct tl_log *log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), end);
	ck_assert_str_eq(epochs_text(log), epochs);
	tl_log_close(log);
	log = log_open(); /* clean this time */
	ck_assert_int_eq(tl_log_end_offset(log), end);
	ck_assert_str_eq(epochs_text(log), epochs);
	tl_log_close(log);
}

/* A leader's batch placed at @base in epoch @epoch, as a compacted leader serves it. */
static struct batch *batch_at(int64_t base, int32_t epoch)
{
	struct batch *b = batch_plain(2);
	tl_batch_assign(b->bytes, base, epoch);
	b->header.base_offset = base;
	b->header.partition_leader_epoch = epoch;
	return b;
}

/* The first batch a read at @offset returns starts at @want. */
static void expect_read_from(struct tl_log *log, int64_t offset, int64_t want)
{
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, offset, tl_log_written_offset(log), 1 << 20, true, &read),
			 TL_OK);
	ck_assert_int_gt(read.bytes, 0);
	ck_assert_int_eq(read.first_offset, want);
	tl_log_read_release(read.segment);
}

/* Issue 17: a follower of a compacted leader takes batches past its log end (offset
 * holes), in the active segment and at a roll; recovery keeps them; a truncation into a
 * hole cuts at the batch end before it; epochs start at the batches' own offsets. */
START_TEST(issue17_a_replica_takes_the_offset_holes_of_a_compacted_leader)
{
	config.offset_holes = true;
	config.segment_bytes = 2 * BATCH_BYTES;
	struct tl_log *log = log_open();
	int64_t bases[] = {0, 5, 10, 15, 30};
	int32_t epochs[] = {3, 3, 4, 4, 4};
	struct batch *b[5];
	for (int i = 0; i < 5; i++) {
		b[i] = batch_at(bases[i], epochs[i]);
		ck_assert_int_eq(
			tl_log_append_replica(log, b[i]->bytes, BATCH_BYTES, &b[i]->header), TL_OK);
		ck_assert_int_eq(tl_log_end_offset(log), bases[i] + 2);
	}
	/* Offsets never go backwards. */
	ck_assert_int_eq(tl_log_append_replica(log, b[2]->bytes, BATCH_BYTES, &b[2]->header),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	drain(log);
	/* Segments 0 (0, 5), 7 (10, 15; a roll before a hole), 17 (30). */
	char path[400];
	path_of(path, sizeof(path), 7, ".log");
	ck_assert_int_eq(access(path, F_OK), 0);
	path_of(path, sizeof(path), 17, ".log");
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_str_eq(epochs_text(log), "3@0 4@10");
	expect_read_from(log, 3, 5);
	expect_read_from(log, 8, 10);
	expect_read_from(log, 20, 30);
	tl_log_close(log);
	remove_marker(); /* as after a kill -9: every segment is scanned */
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 32);
	ck_assert_str_eq(epochs_text(log), "3@0 4@10");
	expect_read_from(log, 12, 15);
	/* Into the hole before 15: the end becomes 12, the end of the batch before. */
	ck_assert_int_eq(tl_log_truncate_to(log, 13), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 12);
	ck_assert_int_le(tl_log_high_watermark(log), 12);
	/* Into the hole at the start of segment 7: it is left empty. */
	ck_assert_int_eq(tl_log_truncate_to(log, 9), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 7);
	ck_assert_str_eq(epochs_text(log), "3@0");
	ck_assert_int_eq(tl_log_append_replica(log, b[2]->bytes, BATCH_BYTES, &b[2]->header),
			 TL_OK);
	drain(log);
	tl_log_close(log);
	expect_consistent_reopen(12, "3@0 4@10");
	/* Without offset_holes (one node) a hole is refused, and is damage in recovery. */
	config.offset_holes = false;
	log = log_open_at(dir2);
	ck_assert_int_eq(tl_log_append_replica(log, b[1]->bytes, BATCH_BYTES, &b[1]->header),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	tl_log_close(log);
	for (int i = 0; i < 5; i++)
		free(b[i]);
}
END_TEST

START_TEST(truncate_to_cuts_mid_segment_at_a_batch_start)
{
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 5, 2); /* 0..9 */
	ck_assert_int_eq(tl_log_assign_epoch(log, 1), TL_OK);
	struct batch **more = append_many(log, 3, 2);         /* 10..15, epoch 1 */
	ck_assert_int_eq(tl_log_truncate_to(log, 20), TL_OK); /* past the end: no-op */
	ck_assert_int_eq(tl_log_end_offset(log), 16);
	ck_assert_int_eq(tl_log_truncate_to(log, 7), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 6);
	ck_assert_int_eq(tl_log_high_watermark(log), 6);
	ck_assert_int_eq(tl_log_durable_offset(log), 6);
	ck_assert_str_eq(epochs_text(log), "0@0");
	expect_checkpoint("0\n1\n0 0\n");
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, 7, 6, 1 << 20, true, &read), TL_ERR_OFFSET_OUT_OF_RANGE);
	ck_assert_int_eq(tl_log_read(log, 4, 6, 1 << 20, true, &read), TL_OK);
	ck_assert_int_eq(read.bytes, BATCH_BYTES);
	tl_log_read_release(read.segment);
	struct batch *b = batch_plain(1);
	ck_assert_int_eq(tl_log_assign_epoch(log, 2), TL_OK);
	ck_assert_int_eq(append(log, b), 6);
	drain(log);
	tl_log_close(log);
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 4 * BATCH_BYTES);
	expect_consistent_reopen(7, "0@0 2@6");
	batches_free(all, 5);
	batches_free(more, 3);
	free(b);
}
END_TEST

START_TEST(truncate_to_a_segment_boundary_and_across_segments)
{
	config.segment_bytes = 3 * BATCH_BYTES; /* three one-record batches per segment */
	config.index_interval_bytes = 0;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 4, 1);
	ck_assert_int_eq(tl_log_assign_epoch(log, 3), TL_OK);
	struct batch **more = append_many(log, 8, 1); /* segments 0, 3, 6, 9 */
	char path[400];
	path_of(path, sizeof(path), 9, ".log");
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(tl_log_truncate_to(log, 6), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 6);
	ck_assert_int_ne(access(path, F_OK), 0);
	path_of(path, sizeof(path), 6, ".log");
	ck_assert_int_eq(access(path, F_OK), 0); /* kept, empty, active */
	path_of(path, sizeof(path), 6, ".index");
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_str_eq(epochs_text(log), "0@0 3@4");
	ck_assert_int_eq(tl_log_truncate_to(log, 2), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 2);
	path_of(path, sizeof(path), 3, ".log");
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_str_eq(epochs_text(log), "0@0");
	struct batch *b = batch_plain(1);
	ck_assert_int_eq(tl_log_assign_epoch(log, 4), TL_OK);
	ck_assert_int_eq(append(log, b), 2);
	drain(log);
	ck_assert_int_eq(epoch_at(log, 2), 4);
	tl_log_close(log);
	expect_consistent_reopen(3, "0@0 4@2");
	batches_free(all, 4);
	batches_free(more, 8);
	free(b);
}
END_TEST

START_TEST(truncate_to_trims_aborted_transactions_and_rebuilds_producer_state)
{
	config.segment_bytes = 4 * BATCH_BYTES;
	struct tl_log *log = log_open();
	struct batch *t[4];
	struct marker *m[4];
	for (int i = 0; i < 4; i++) {
		t[i] = batch_make(1, 20 + i, 0, TL_BATCH_ATTR_TRANSACTIONAL);
		ck_assert_int_eq(append(log, t[i]), 2 * i);
		m[i] = marker_make(20 + i, false);
		ck_assert_int_eq(append_marker(log, m[i]), 2 * i + 1);
		drain(log);
	}
	ck_assert_uint_eq(tl_log_aborted_txns(log, 0, 100, NULL, 0), 4);
	/* Cut inside the third transaction's marker: its abort and the fourth go. */
	ck_assert_int_eq(tl_log_truncate_to(log, 5), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 5);
	ck_assert_uint_eq(tl_log_aborted_txns(log, 0, 100, NULL, 0), 2);
	/* The third producer's transaction is open again; the fourth is unknown. */
	ck_assert_int_eq(tl_log_last_stable_offset(log), 4);
	struct tl_log_producer producers[8];
	uint32_t count = tl_log_producers(log, producers, 8);
	ck_assert_uint_eq(count, 3);
	tl_log_close(log);
	remove_marker();
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 5);
	ck_assert_uint_eq(tl_log_aborted_txns(log, 0, 100, NULL, 0), 2);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 4);
	tl_log_close(log);
	for (int i = 0; i < 4; i++) {
		free(t[i]);
		marker_free(m[i]);
	}
}
END_TEST

START_TEST(truncate_to_fails_the_waiters_past_the_cut_and_drops_queued_batches)
{
	struct tl_log *log = log_open();
	tl_log_set_replicated(log, true);
	waiter_calls = 0;
	struct batch *b[4];
	struct tl_log_waiter w[4];
	for (int i = 0; i < 4; i++) {
		b[i] = batch_plain(2);
		append(log, b[i]);
		w[i] = (struct tl_log_waiter){.offset = 2 * i + 1, .done = on_waiter};
		tl_log_wait_durable(log, &w[i]);
		if (i == 1)
			drain(log); /* 0..3 durable, 4..7 only queued */
	}
	tl_log_set_high_watermark(log, 2);
	ck_assert_int_eq(waiter_calls, 1);
	ck_assert_int_eq(tl_log_truncate_to(log, 6), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 6);
	ck_assert_int_eq(tl_log_durable_offset(log), 6);
	ck_assert_int_eq(tl_log_high_watermark(log), 2);
	ck_assert_int_eq(waiter_calls, 2); /* the one on offset 7 */
	ck_assert_int_eq(waiter_err, TL_ERR_NOT_LEADER_OR_FOLLOWER);
	tl_log_set_high_watermark(log, 6);
	ck_assert_int_eq(waiter_calls, 4);
	ck_assert_int_eq(waiter_err, TL_OK);
	/* Below the high watermark: it follows the cut down. */
	ck_assert_int_eq(tl_log_truncate_to(log, 3), TL_OK);
	ck_assert_int_eq(tl_log_end_offset(log), 2);
	ck_assert_int_eq(tl_log_high_watermark(log), 2);
	tl_log_close(log);
	expect_consistent_reopen(2, "0@0");
	for (int i = 0; i < 4; i++)
		free(b[i]);
}
END_TEST

START_TEST(truncate_fully_restarts_the_log_empty_at_a_new_start)
{
	config.segment_bytes = 3 * BATCH_BYTES;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 7, 1);
	struct batch *p = batch_make(1, 5, 0, 0);
	append(log, p);
	drain(log);
	ck_assert_int_eq(tl_log_truncate_fully(log, 500), TL_OK);
	ck_assert_int_eq(tl_log_start_offset(log), 500);
	ck_assert_int_eq(tl_log_end_offset(log), 500);
	ck_assert_int_eq(tl_log_high_watermark(log), 500);
	ck_assert_int_eq(tl_log_latest_epoch(log), -1);
	ck_assert_uint_eq(tl_log_producers(log, NULL, 0), 0);
	struct batch *b = batch_plain(1);
	tl_batch_assign(b->bytes, 500, 9);
	b->header.base_offset = 500;
	b->header.partition_leader_epoch = 9;
	ck_assert_int_eq(tl_log_append_replica(log, b->bytes, BATCH_BYTES, &b->header), TL_OK);
	drain(log);
	tl_log_close(log);
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_int_ne(access(path, F_OK), 0);
	remove_marker();
	log = log_open();
	ck_assert_int_eq(tl_log_start_offset(log), 500);
	ck_assert_int_eq(tl_log_end_offset(log), 501);
	ck_assert_str_eq(epochs_text(log), "9@500");
	ck_assert_uint_eq(tl_log_producers(log, NULL, 0), 0);
	tl_log_close(log);
	batches_free(all, 7);
	free(p);
	free(b);
}
END_TEST

/* Crash points of truncation, made by hand: the file cut but the checkpoint stale, and
 * the earlier segment cut with a later one still there. */
START_TEST(a_crash_in_the_middle_of_a_truncation_recovers_consistently)
{
	config.segment_bytes = 3 * BATCH_BYTES;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 4, 1);
	ck_assert_int_eq(tl_log_assign_epoch(log, 2), TL_OK);
	struct batch **more = append_many(log, 4, 1); /* 0@0 2@4, segments 0, 3, 6 */
	struct batch *p[2] = {batch_make(1, 5, 0, 0), batch_make(1, 5, 1, 0)};
	append(log, p[0]); /* offset 8 */
	append(log, p[1]); /* offset 9 */
	drain(log);
	tl_log_close(log);
	remove_marker();
	/* Segment 3 cut to one batch while segment 6 still exists; checkpoint unchanged. */
	char path[400];
	path_of(path, sizeof(path), 3, ".log");
	ck_assert_int_eq(truncate(path, BATCH_BYTES), 0);
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 4);
	path_of(path, sizeof(path), 6, ".log");
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_str_eq(epochs_text(log), "0@0");
	expect_checkpoint("0\n1\n0 0\n");
	ck_assert_uint_eq(tl_log_producers(log, NULL, 0), 0); /* its batches went */
	/* The producer starts over: sequence 0 is new again, not a duplicate. */
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, p[0]->bytes, BATCH_BYTES, &p[0]->header, &result),
			 TL_OK);
	ck_assert(!result.duplicate);
	drain(log);
	tl_log_close(log);
	expect_consistent_reopen(5, "0@0");
	batches_free(all, 4);
	batches_free(more, 4);
	free(p[0]);
	free(p[1]);
}
END_TEST

START_TEST(producer_state_survives_a_truncation_below_its_batches)
{
	struct tl_log *log = log_open();
	struct batch *p[3];
	for (int i = 0; i < 3; i++) {
		p[i] = batch_make(2, 11, 2 * i, 0);
		ck_assert_int_eq(append(log, p[i]), 2 * i);
	}
	drain(log);
	ck_assert_int_eq(tl_log_truncate_to(log, 4), TL_OK);
	/* The first two are duplicates with their offsets; the third is appended anew. */
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, p[1]->bytes, BATCH_BYTES, &p[1]->header, &result),
			 TL_OK);
	ck_assert(result.duplicate);
	ck_assert_int_eq(result.base_offset, 2);
	ck_assert_int_eq(tl_log_append(log, p[2]->bytes, BATCH_BYTES, &p[2]->header, &result),
			 TL_OK);
	ck_assert(!result.duplicate);
	ck_assert_int_eq(result.base_offset, 4);
	drain(log);
	tl_log_close(log);
	for (int i = 0; i < 3; i++)
		free(p[i]);
}
END_TEST

static TCase *cases(const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_new_log_has_no_epochs_until_its_first_append);
	tcase_add_test(tc, assign_epoch_stamps_batches_and_persists_the_checkpoint);
	tcase_add_test(tc, a_deleted_or_garbled_checkpoint_is_rebuilt_from_the_batches);
	tcase_add_test(tc, an_old_data_dir_recovers_as_epoch_zero_from_the_log_start);
	tcase_add_test(tc, a_torn_tail_with_a_new_epoch_drops_its_entry);
	tcase_add_test(tc, a_tail_epoch_missing_from_the_checkpoint_is_added);
	tcase_add_test(tc, end_offset_for_epoch_follows_kafka);
	tcase_add_test(tc, follower_append_keeps_the_leaders_bytes_and_dedupes_after_failover);
	tcase_add_test(tc, follower_append_of_a_newer_epoch_fences_the_old_leader);
	tcase_add_test(tc, issue17_a_replica_takes_the_offset_holes_of_a_compacted_leader);
	tcase_add_test(tc, replicated_waiters_fire_on_the_high_watermark_not_on_durability);
	tcase_add_test(tc, replicated_close_fails_the_waiters_above_the_high_watermark);
	tcase_add_test(tc, the_lso_never_passes_a_marker_above_the_high_watermark);
	tcase_add_test(tc, truncate_to_cuts_mid_segment_at_a_batch_start);
	tcase_add_test(tc, truncate_to_a_segment_boundary_and_across_segments);
	tcase_add_test(tc, truncate_to_trims_aborted_transactions_and_rebuilds_producer_state);
	tcase_add_test(tc, truncate_to_fails_the_waiters_past_the_cut_and_drops_queued_batches);
	tcase_add_test(tc, truncate_fully_restarts_the_log_empty_at_a_new_start);
	tcase_add_test(tc, a_crash_in_the_middle_of_a_truncation_recovers_consistently);
	tcase_add_test(tc, producer_state_survives_a_truncation_below_its_batches);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("log_replica");
	suite_add_tcase(s, cases("io_uring", setup_uring));
	suite_add_tcase(s, cases("sync", setup_sync));
	return tl_check_run(s);
}
