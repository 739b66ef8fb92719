/* log_test.c - the partition log on a real directory, through both disk engines:
 * group commit and waiters, reads at batch boundaries, clean and unclean reopen, torn
 * and garbled tails, index rebuild, retention, storage failure, lookups by time, and
 * producer dedupe surviving a restart (snapshot, replay, damaged snapshot), and the
 * two-stage group commit: writes overlapping a sync, failures, close and roll meanwhile.
 * The io_uring case runs only on io_uring: where it is unavailable the case is left
 * out and a SKIP line says so. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/tests/check_run.h"
#include "common/time.h"
#include "log/log.h"
#include "protocol/records.h"

#define PAYLOAD_BYTES 100

static char dir[320];
static char root[256];
static struct tl_ring *ring;
static struct tl_log_config config;
static int probes_fired; /* by on_probe() */

static void setup_mode(enum tl_ring_mode mode)
{
	snprintf(root, sizeof(root), "/tmp/tally-log-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/t-0", root);
	tl_err err;
	ring = tl_ring_create(64, mode, &err);
	ck_assert_ptr_nonnull(ring);
	tl_log_config_defaults(&config);
	probes_fired = 0;
}

/* io_uring or nothing: the AUTO mode would fall back to the sync engine (io_uring
 * unavailable, TALLY_IO_ENGINE=sync) and run this case's checks on the wrong engine
 * under the io_uring label. main() leaves the case out, visibly, where io_uring is
 * unavailable. */
static void setup_uring(void)
{
	setup_mode(TL_RING_MODE_URING);
	ck_assert(tl_ring_is_uring(ring));
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
	uint8_t bytes[TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES];
	struct tl_batch_header header;
};

static struct batch *batch_make(int32_t records, int64_t timestamp, int64_t pid, int16_t epoch,
				int32_t seq)
{
	struct batch *b = calloc(1, sizeof(*b));
	ck_assert_ptr_nonnull(b);
	uint8_t *p = b->bytes;
	tl_be32_put(p + TL_BATCH_OFF_LENGTH, (uint32_t)(sizeof(b->bytes) - TL_BATCH_LOG_OVERHEAD));
	p[TL_BATCH_OFF_MAGIC] = TL_BATCH_MAGIC;
	tl_be32_put(p + TL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(records - 1));
	tl_be64_put(p + TL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)timestamp);
	tl_be64_put(p + TL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)timestamp);
	tl_be64_put(p + TL_BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
	tl_be16_put(p + TL_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)epoch);
	tl_be32_put(p + TL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)seq);
	tl_be32_put(p + TL_BATCH_OFF_RECORDS_COUNT, (uint32_t)records);
	for (int i = 0; i < PAYLOAD_BYTES; i++)
		p[TL_BATCH_HEADER_BYTES + i] = (uint8_t)(timestamp + i);
	tl_batch_crc_update(p, sizeof(b->bytes));
	const char *why = NULL;
	ck_assert_int_eq(tl_batch_validate(p, sizeof(b->bytes), &b->header, &why), TL_OK);
	return b;
}

/* A transactional batch of one record from @pid/@epoch at sequence @seq. */
static struct batch *batch_txn_at(int64_t pid, int16_t epoch, int32_t seq)
{
	struct batch *b = batch_make(1, tl_wall_ms(), pid, epoch, seq);
	tl_be16_put(b->bytes + TL_BATCH_OFF_ATTRIBUTES, TL_BATCH_ATTR_TRANSACTIONAL);
	tl_batch_crc_update(b->bytes, sizeof(b->bytes));
	b->header.attributes = TL_BATCH_ATTR_TRANSACTIONAL;
	return b;
}

static struct batch *batch_txn(int64_t pid, int32_t seq)
{
	return batch_txn_at(pid, 0, seq);
}

/* A COMMIT or ABORT marker, as the transaction coordinator writes it. */
struct marker {
	struct tl_buf buf;
	struct tl_batch_header header;
};

static struct marker *marker_make_at(int64_t pid, int16_t epoch, bool commit,
				     int32_t coordinator_epoch)
{
	struct marker *m = calloc(1, sizeof(*m));
	tl_buf_init(&m->buf);
	ck_assert_int_eq(tl_records_control_marker_build(&m->buf, commit, pid, epoch,
							 coordinator_epoch, tl_wall_ms()),
			 TL_OK);
	const char *why;
	ck_assert_int_eq(tl_batch_validate(m->buf.data, m->buf.len, &m->header, &why), TL_OK);
	return m;
}

static struct marker *marker_make_by(int64_t pid, bool commit, int32_t coordinator_epoch)
{
	return marker_make_at(pid, 0, commit, coordinator_epoch);
}

static struct marker *marker_make(int64_t pid, bool commit)
{
	return marker_make_by(pid, commit, 0);
}

static void marker_free(struct marker *m)
{
	tl_buf_deinit(&m->buf);
	free(m);
}

static struct tl_log *log_open(void)
{
	struct tl_log *log = NULL;
	ck_assert_int_eq(tl_log_open(dir, &config, ring, &log), TL_OK);
	return log;
}

/* Flushes and runs the ring until everything appended is durable. */
static void drain(struct tl_log *log)
{
	tl_log_flush(log);
	tl_ring_submit(ring);
	while (tl_log_high_watermark(log) < tl_log_end_offset(log) && tl_log_is_writable(log))
		tl_ring_wait(ring);
}

static int64_t append(struct tl_log *log, struct batch *b)
{
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, b->bytes, sizeof(b->bytes), &b->header, &result),
			 TL_OK);
	return result.base_offset;
}

/* Appends @count batches of @records records each; returns them (free with batches_free). */
static struct batch **append_many(struct tl_log *log, int count, int32_t records)
{
	struct batch **all = calloc((size_t)count, sizeof(*all));
	for (int i = 0; i < count; i++) {
		all[i] = batch_make(records, 1000 + i, -1, -1, -1);
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

static int64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The size of @path without the zeros at its end (a direct write's padding and the
 * preallocated space); the first MiB only. */
static int64_t file_data_bytes(const char *path)
{
	static uint8_t data[1 << 20];
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ssize_t n = pread(fd, data, sizeof(data), 0);
	close(fd);
	ck_assert_int_ge(n, 0);
	while (n > 0 && data[n - 1] == 0)
		n--;
	return n;
}

static void remove_marker(void)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/.clean-shutdown", dir);
	unlink(path);
}

/* Reads the batch holding @offset and checks its base offset and bytes. */
static void expect_read(struct tl_log *log, int64_t offset, int64_t base_expected)
{
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, offset, tl_log_high_watermark(log), 1 << 20, true, &read),
			 TL_OK);
	ck_assert_int_gt(read.bytes, 0);
	ck_assert_int_eq(read.first_offset, base_expected);
	uint8_t head[TL_BATCH_HEADER_BYTES];
	ck_assert_int_eq(pread(read.fd, head, sizeof(head), (off_t)read.position),
			 (ssize_t)sizeof(head));
	ck_assert_int_eq((int64_t)tl_be64_get(head), base_expected);
	ck_assert_int_eq(read.bytes % (TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES), 0);
	tl_log_read_release(read.segment);
}

static int waiter_calls;
static int64_t waiter_last;
static tl_err waiter_err;

static void on_durable(struct tl_log_waiter *waiter, tl_err err)
{
	ck_assert_int_ge(waiter->offset, waiter_last);
	waiter_last = waiter->offset;
	waiter_err = err;
	waiter_calls++;
}

START_TEST(appends_are_acknowledged_only_once_durable_and_in_order)
{
	struct tl_log *log = log_open();
	struct batch *b[3];
	struct tl_log_waiter w[3];
	waiter_calls = 0;
	waiter_last = -1;
	for (int i = 0; i < 3; i++) {
		b[i] = batch_make(4, 100 + i, -1, -1, -1);
		ck_assert_int_eq(append(log, b[i]), 4 * i);
		w[i] = (struct tl_log_waiter){.offset = 4 * i + 3, .done = on_durable};
		tl_log_wait_durable(log, &w[i]);
	}
	/* Nothing is durable, nothing is readable, nobody was answered. */
	ck_assert_int_eq(tl_log_high_watermark(log), 0);
	ck_assert_int_eq(tl_log_end_offset(log), 12);
	ck_assert_int_eq(waiter_calls, 0);
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, 0, tl_log_high_watermark(log), 1 << 20, true, &read),
			 TL_OK);
	ck_assert_int_eq(read.bytes, 0);
	drain(log);
	ck_assert_int_eq(waiter_calls, 3);
	ck_assert_int_eq(waiter_err, TL_OK);
	ck_assert_int_eq(tl_log_high_watermark(log), 12);
	expect_read(log, 0, 0);
	expect_read(log, 5, 4);
	expect_read(log, 11, 8);
	ck_assert_int_eq(tl_log_read(log, 13, 12, 1 << 20, true, &read),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	ck_assert_int_eq(tl_log_read(log, 12, 12, 1 << 20, true, &read), TL_OK);
	ck_assert_int_eq(read.bytes, 0);
	tl_log_close(log);
	for (int i = 0; i < 3; i++)
		free(b[i]);
}
END_TEST

START_TEST(reads_stop_at_batch_boundaries_and_min_one_returns_one_batch)
{
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 50, 2);
	int64_t one = TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES;
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, 10, 100, (int32_t)(3 * one + 7), false, &read), TL_OK);
	ck_assert_int_eq(read.bytes, 3 * one);
	ck_assert_int_eq(read.first_offset, 10);
	tl_log_read_release(read.segment);
	ck_assert_int_eq(tl_log_read(log, 10, 100, 5, false, &read), TL_OK);
	ck_assert_int_eq(read.bytes, 0);
	ck_assert_int_eq(tl_log_read(log, 10, 100, 5, true, &read), TL_OK);
	ck_assert_int_eq(read.bytes, one);
	tl_log_read_release(read.segment);
	/* A bound below the end (the LSO for read_committed) stops before its batch. */
	ck_assert_int_eq(tl_log_read(log, 10, 15, 1 << 20, true, &read), TL_OK);
	ck_assert_int_eq(read.bytes, 2 * one);
	tl_log_read_release(read.segment);
	tl_log_close(log);
	batches_free(all, 50);
}
END_TEST

START_TEST(clean_reopen_keeps_everything_and_continues_at_the_next_offset)
{
	config.segment_bytes = 2000;
	config.index_interval_bytes = 300;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 60, 3);
	ck_assert_int_eq(tl_log_end_offset(log), 180);
	tl_log_close(log);
	char marker[400];
	snprintf(marker, sizeof(marker), "%s/.clean-shutdown", dir);
	ck_assert_int_eq(access(marker, F_OK), 0);
	log = log_open();
	ck_assert_int_ne(access(marker, F_OK), 0); /* a crash from now on must recover */
	ck_assert_int_eq(tl_log_end_offset(log), 180);
	ck_assert_int_eq(tl_log_high_watermark(log), 180);
	for (int64_t o = 0; o < 180; o++)
		expect_read(log, o, o - o % 3);
	struct batch *more = batch_make(1, 5000, -1, -1, -1);
	ck_assert_int_eq(append(log, more), 180);
	drain(log);
	tl_log_close(log);
	free(more);
	batches_free(all, 60);
}
END_TEST

START_TEST(missing_or_bad_index_files_are_rebuilt)
{
	config.segment_bytes = 2000;
	config.index_interval_bytes = 0;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 60, 1);
	tl_log_close(log);
	remove_marker();
	char path[400];
	path_of(path, sizeof(path), 0, ".index");
	ck_assert_int_eq(unlink(path), 0);
	path_of(path, sizeof(path), 12, ".index");
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "\xff\xff\xff\xff", 4, 8), 4);
	close(fd);
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 60);
	for (int64_t o = 0; o < 60; o++)
		expect_read(log, o, o);
	tl_log_close(log);
	batches_free(all, 60);
}
END_TEST

/* Cuts (or garbles) the last segment at @position and checks recovery keeps exactly the
 * batches wholly before it. */
static void damage_and_recover(int64_t position, bool garble)
{
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	int64_t one = TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES;
	if (garble) {
		int fd = open(path, O_WRONLY);
		uint8_t junk = 0x5a;
		ck_assert_int_eq(pwrite(fd, &junk, 1, (off_t)position), 1);
		close(fd);
	} else {
		ck_assert_int_eq(truncate(path, (off_t)position), 0);
	}
	remove_marker();
	struct tl_log *log = log_open();
	int64_t whole = position / one;
	ck_assert_int_eq(tl_log_end_offset(log), whole);
	ck_assert_int_eq(file_size(path), whole * one);
	if (whole > 0)
		expect_read(log, whole - 1, whole - 1);
	struct batch *next = batch_make(1, 7000, -1, -1, -1);
	ck_assert_int_eq(append(log, next), whole);
	drain(log);
	expect_read(log, whole, whole);
	tl_log_close(log);
	free(next);
}

START_TEST(torn_tail_is_cut_at_the_last_whole_batch)
{
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 20, 1);
	tl_log_close(log);
	int64_t one = TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES;
	damage_and_recover(15 * one + 30, false); /* inside a batch */
	damage_and_recover(10 * one + 5, false);  /* inside a length field */
	damage_and_recover(7 * one, false);       /* exactly at a boundary */
	batches_free(all, 20);
}
END_TEST

START_TEST(garbled_byte_cuts_the_log_at_its_batch)
{
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 20, 1);
	tl_log_close(log);
	int64_t one = TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES;
	damage_and_recover(12 * one + 70, true); /* in the records: CRC */
	damage_and_recover(8 * one + 3, true);   /* in the base offset: continuity */
	damage_and_recover(5 * one + 9, true);   /* in the length */
	batches_free(all, 20);
}
END_TEST

START_TEST(a_torn_sealed_segment_removes_the_segments_after_it)
{
	config.segment_bytes = 2000;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 40, 1);
	tl_log_close(log);
	/* As if the crash came before the sealed segment's data and index were durable. */
	char path[400];
	path_of(path, sizeof(path), 12, ".index");
	ck_assert_int_eq(unlink(path), 0);
	path_of(path, sizeof(path), 12, ".log");
	ck_assert_int_eq(truncate(path, 500), 0);
	remove_marker();
	log = log_open();
	int64_t one = TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES;
	ck_assert_int_eq(tl_log_end_offset(log), 12 + 500 / one);
	path_of(path, sizeof(path), 24, ".log");
	ck_assert_int_eq(access(path, F_OK), -1);
	tl_log_close(log);
	batches_free(all, 40);
}
END_TEST

/* 60 one-record batches in 2000-byte segments (12 a segment: 5 segments), and a read
 * of the first one held open in @held; returns the log's size in bytes. */
static int64_t five_segments_first_held(struct tl_log **log, struct batch ***all,
					struct tl_log_read *held)
{
	config.segment_bytes = 2000;
	*log = log_open();
	*all = append_many(*log, 60, 1);
	ck_assert_int_eq(tl_log_read(*log, 0, 60, 1 << 20, true, held), TL_OK);
	return tl_log_size_bytes(*log);
}

START_TEST(retention_deletes_whole_segments_the_active_one_once_rolled)
{
	struct tl_log *log;
	struct batch **all;
	struct tl_log_read held;
	int64_t total = five_segments_first_held(&log, &all, &held);
	config.retention_bytes = total / 2;
	config.retention_ms = -1;
	tl_log_set_config(log, &config);
	ck_assert_int_gt(tl_log_tick(log, 2000), 0);
	ck_assert_int_le(tl_log_size_bytes(log), total);
	ck_assert_int_gt(tl_log_start_offset(log), 0);
	ck_assert_int_eq(tl_log_start_offset(log) % 12, 0);
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, 0, 60, 1 << 20, true, &read), TL_ERR_OFFSET_OUT_OF_RANGE);
	/* A read taken before the deletion still reads its (unlinked) file. */
	uint8_t head[12];
	ck_assert_int_eq(pread(held.fd, head, sizeof(head), 0), 12);
	tl_log_read_release(held.segment);
	config.retention_bytes = -1;
	config.retention_ms = 1;
	tl_log_set_config(log, &config);
	tl_log_tick(log, 1000000);
	/* Every batch expired: as Kafka, the active segment is rolled and goes too, and the
	 * log goes on at its end. */
	ck_assert_int_eq(tl_log_start_offset(log), 60);
	ck_assert_int_eq(tl_log_end_offset(log), 60);
	tl_log_close(log);
	batches_free(all, 60);
}
END_TEST

/* Descriptors of this process open on deleted files of the log's directory. */
static int deleted_fds(void)
{
	DIR *fds = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(fds);
	int count = 0;
	struct dirent *de;
	while ((de = readdir(fds)) != NULL) {
		char link[300], target[512];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		count += strncmp(target, dir, strlen(dir)) == 0 &&
			 strstr(target, " (deleted)") != NULL;
	}
	closedir(fds);
	return count;
}

/* The descriptors of a deleted segment go to the closer thread (log.c "closing the
 * files of deleted segments"), which frees the file's blocks before the last close;
 * the segments that stay are never cut. */
START_TEST(a_deleted_segment_is_freed_and_closed_by_the_closer_thread)
{
	struct tl_log *log;
	struct batch **all;
	struct tl_log_read held;
	int64_t total = five_segments_first_held(&log, &all, &held);
	int mine = dup(held.fd); /* to watch the file after the log lets it go */
	ck_assert_int_ge(mine, 0);
	/* A second name for the next segment (a backup's hard link): it must keep its bytes. */
	char path[400], linked[400];
	path_of(path, sizeof(path), 12, ".log");
	snprintf(linked, sizeof(linked), "%s/backup-12.log", dir);
	ck_assert_int_eq(link(path, linked), 0);
	int64_t linked_bytes = file_size(linked);
	ck_assert_int_gt(linked_bytes, 0);
	uint64_t handed = tl_log_closes_handed();
	config.retention_bytes = total / 2;
	config.retention_ms = -1;
	tl_log_set_config(log, &config);
	int deleted = tl_log_tick(log, 2000);
	ck_assert_int_ge(deleted, 2);
	struct stat st;
	ck_assert_int_eq(fstat(mine, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_int_gt(st.st_size, 0); /* the read holds it: nothing freed yet */
	/* The segments nobody held went at once (their descriptors, not the first's). */
	ck_assert_uint_ge(tl_log_closes_handed() - handed, (uint64_t)(deleted - 1));
	tl_log_read_release(held.segment);
	ck_assert_uint_ge(tl_log_closes_handed() - handed, (uint64_t)deleted);
	tl_log_closes_drain();
	ck_assert_int_eq(fstat(mine, &st), 0);
	ck_assert_int_eq(st.st_size, 0); /* freed by the closer before its close */
	ck_assert_int_eq(file_size(linked), linked_bytes); /* still named: not cut */
	ck_assert_int_eq(unlink(linked), 0);
	ck_assert_int_eq(deleted_fds(), 1); /* only mine is left open */
	close(mine);
	ck_assert_int_eq(deleted_fds(), 0);
	int64_t start = tl_log_start_offset(log);
	int64_t kept = tl_log_size_bytes(log);
	tl_log_close(log);
	tl_log_closes_drain();
	log = log_open(); /* a clean close cut nothing of what stayed */
	ck_assert_int_eq(tl_log_start_offset(log), start);
	ck_assert_int_eq(tl_log_end_offset(log), 60);
	ck_assert_int_eq(tl_log_size_bytes(log), kept);
	tl_log_close(log);
	batches_free(all, 60);
}
END_TEST

START_TEST(delete_records_moves_the_start_durably_and_retention_drops_whole_segments)
{
	config.segment_bytes = 2000;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 60, 1); /* 12 batches a segment: 5 segments */
	int64_t start;
	ck_assert_int_eq(tl_log_delete_records(log, 61, &start), TL_ERR_OFFSET_OUT_OF_RANGE);
	ck_assert_int_eq(tl_log_delete_records(log, 30, &start), TL_OK);
	ck_assert_int_eq(start, 30);
	ck_assert_int_eq(tl_log_start_offset(log), 30);
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read(log, 29, 60, 1 << 20, true, &read),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	expect_read(log, 30, 30);
	/* A lower offset changes nothing. */
	ck_assert_int_eq(tl_log_delete_records(log, 10, &start), TL_OK);
	ck_assert_int_eq(start, 30);
	/* Segments 0-11 and 12-23 lie wholly below: retention's tick removes them. */
	ck_assert_int_eq(tl_log_tick(log, 2000), 2);
	ck_assert_int_eq(tl_log_start_offset(log), 30);
	tl_log_close(log);
	/* The start survives a reopen, as after kill -9 (the file is written durably
	 * before the call returns). */
	log = log_open();
	ck_assert_int_eq(tl_log_start_offset(log), 30);
	ck_assert_int_eq(tl_log_read(log, 24, 60, 1 << 20, true, &read),
			 TL_ERR_OFFSET_OUT_OF_RANGE);
	ck_assert_int_eq(tl_log_delete_records(log, -1, &start), TL_OK); /* the high watermark */
	ck_assert_int_eq(start, 60);
	tl_log_close(log);
	batches_free(all, 60);
}
END_TEST

START_TEST(failed_fdatasync_takes_the_partition_offline)
{
	struct tl_log *log = log_open();
	struct batch *b = batch_make(1, 1, -1, -1, -1);
	struct tl_log_waiter w = {.offset = 0, .done = on_durable};
	waiter_calls = 0;
	waiter_last = -1;
	tl_ring_fault_set(ring, TL_RING_OP_FDATASYNC, 5 /* EIO */, 1, false);
	append(log, b);
	tl_log_wait_durable(log, &w);
	drain(log);
	ck_assert_int_eq(waiter_calls, 1);
	ck_assert_int_eq(waiter_err, TL_ERR_KAFKA_STORAGE_ERROR);
	ck_assert(!tl_log_is_writable(log));
	ck_assert_ptr_nonnull(strstr(tl_log_last_error(log), "fdatasync"));
	ck_assert_int_eq(tl_log_high_watermark(log), 0);
	struct tl_log_append_result result;
	struct batch *c = batch_make(1, 2, -1, -1, -1);
	ck_assert_int_eq(tl_log_append(log, c->bytes, sizeof(c->bytes), &c->header, &result),
			 TL_ERR_KAFKA_STORAGE_ERROR);
	tl_log_close(log); /* no marker: the next open recovers */
	/* The batch whose sync failed is in the file (the page cache): the open drops it,
	 * as never durable, instead of serving it as committed. */
	log = log_open();
	ck_assert(tl_log_is_writable(log));
	ck_assert_int_eq(tl_log_end_offset(log), 0);
	ck_assert_int_eq(tl_log_high_watermark(log), 0);
	append(log, c);
	drain(log);
	tl_log_close(log);
	log = log_open(); /* the marker went: nothing more is cut */
	ck_assert_int_eq(tl_log_end_offset(log), 1);
	tl_log_close(log);
	free(b);
	free(c);
}
END_TEST

/* A replicated log's failure leaves no marker: its followers acknowledge on write, so
 * the tail past the durable end may hold records the ISR acknowledged; the open keeps
 * it (the broker resets a replicated log's high watermark at open). */
START_TEST(failed_fdatasync_of_a_replicated_log_keeps_the_tail)
{
	struct tl_log *log = log_open();
	tl_log_set_replicated(log, true);
	struct batch *b = batch_make(1, 1, -1, -1, -1);
	struct tl_log_waiter w = {.offset = 0, .done = on_durable};
	waiter_calls = 0;
	tl_ring_fault_set(ring, TL_RING_OP_FDATASYNC, 5 /* EIO */, 1, false);
	append(log, b);
	tl_log_wait_durable(log, &w);
	drain(log);
	ck_assert_int_eq(waiter_err, TL_ERR_KAFKA_STORAGE_ERROR);
	ck_assert(!tl_log_is_writable(log));
	tl_log_close(log);
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 1);
	tl_log_close(log);
	free(b);
}
END_TEST

START_TEST(offset_for_timestamp_finds_the_first_batch_at_or_after)
{
	config.segment_bytes = 2000;
	config.index_interval_bytes = 200;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 40, 1); /* timestamps 1000..1039 */
	int64_t offset, ts;
	ck_assert_int_eq(tl_log_offset_for_timestamp(log, 1017, &offset, &ts), TL_OK);
	ck_assert_int_eq(offset, 17);
	ck_assert_int_eq(ts, 1017);
	ck_assert_int_eq(tl_log_offset_for_timestamp(log, 0, &offset, &ts), TL_OK);
	ck_assert_int_eq(offset, 0);
	ck_assert_int_eq(tl_log_offset_for_timestamp(log, 5000, &offset, &ts), TL_ERR_NOT_FOUND);
	tl_log_close(log);
	log = log_open(); /* from the time index files */
	ck_assert_int_eq(tl_log_offset_for_timestamp(log, 1030, &offset, &ts), TL_OK);
	ck_assert_int_eq(offset, 30);
	tl_log_close(log);
	batches_free(all, 40);
}
END_TEST

/* Appends pid 7's batches seq 0..4 (one record each), then restarts the log via @restart
 * and checks that a retry of each is answered as a duplicate with its original offset. */
static void dedupe_across_restart(void (*restart)(void))
{
	config.segment_bytes = 700; /* rolls, so snapshots are written along the way */
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 7, 1); /* offsets 0..6, no producer */
	/* Producers expire by their batches' timestamps, as in Kafka: use the clock's. */
	int64_t now = tl_wall_ms();
	struct batch *b[5];
	for (int32_t i = 0; i < 5; i++) {
		b[i] = batch_make(1, now + i, 7, 0, i);
		ck_assert_int_eq(append(log, b[i]), 7 + i);
	}
	drain(log);
	tl_log_close(log);
	restart();
	log = log_open();
	for (int32_t i = 0; i < 5; i++) {
		struct batch *retry = batch_make(1, now + i, 7, 0, i);
		struct tl_log_append_result result;
		ck_assert_int_eq(tl_log_append(log, retry->bytes, sizeof(retry->bytes),
					       &retry->header, &result),
				 TL_OK);
		ck_assert(result.duplicate);
		ck_assert_int_eq(result.base_offset, 7 + i);
		free(retry);
	}
	ck_assert_int_eq(tl_log_end_offset(log), 12);
	struct batch *gap = batch_make(1, now + 10, 7, 0, 9);
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, gap->bytes, sizeof(gap->bytes), &gap->header, &result),
			 TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	struct batch *next = batch_make(1, now + 11, 7, 0, 5);
	ck_assert_int_eq(append(log, next), 12);
	drain(log);
	tl_log_close(log);
	free(gap);
	free(next);
	for (int i = 0; i < 5; i++)
		free(b[i]);
	batches_free(all, 7);
}

static void restart_clean(void)
{
}

static void restart_after_crash(void)
{
	remove_marker();
}

static void delete_snapshots(bool truncate_only)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".snapshot"))
			continue;
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (truncate_only)
			ck_assert_int_eq(truncate(path, file_size(path) / 2), 0);
		else
			ck_assert_int_eq(unlink(path), 0);
	}
	closedir(d);
	remove_marker();
}

static void restart_without_snapshots(void)
{
	delete_snapshots(false);
}

static void restart_with_truncated_snapshots(void)
{
	delete_snapshots(true);
}

START_TEST(producer_dedupe_survives_a_clean_restart)
{
	dedupe_across_restart(restart_clean);
}
END_TEST

START_TEST(producer_dedupe_survives_a_crash)
{
	dedupe_across_restart(restart_after_crash);
}
END_TEST

START_TEST(producer_dedupe_is_rebuilt_by_full_replay_without_snapshots)
{
	dedupe_across_restart(restart_without_snapshots);
}
END_TEST

START_TEST(truncated_snapshots_fall_back_to_replay)
{
	dedupe_across_restart(restart_with_truncated_snapshots);
}
END_TEST

/* A producer's state expires (at open, at a tick) only counting up to the newest batch
 * in the log, not past it by the wall clock alone: a log whose every batch is two days
 * old, or a broker whose clock was stepped two days ahead (chaos test 916), keeps its
 * producers, so a retry is still a duplicate, not a refusal of an unknown producer. */
START_TEST(producer_state_does_not_expire_past_the_newest_batch_at_open)
{
	struct tl_log *log = log_open();
	int64_t then = tl_wall_ms() - 2 * 86400000LL; /* producer.id.expiration.ms is 1 day */
	struct batch *b = batch_make(1, then, 7, 0, 0);
	ck_assert_int_eq(append(log, b), 0);
	drain(log);
	tl_log_close(log);
	remove_marker(); /* a crash: the producer state comes from the replay */
	log = log_open();
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, b->bytes, sizeof(b->bytes), &b->header, &result),
			 TL_OK);
	ck_assert(result.duplicate);
	ck_assert_int_eq(result.base_offset, 0);
	/* Nor at a tick whose wall clock was stepped two more days ahead. */
	tl_log_tick(log, tl_wall_ms() + 2 * 86400000LL);
	ck_assert_int_eq(tl_log_append(log, b->bytes, sizeof(b->bytes), &b->header, &result),
			 TL_OK);
	ck_assert(result.duplicate);
	tl_log_close(log);
	free(b);
}
END_TEST

START_TEST(producer_state_outlives_retention_through_snapshots)
{
	config.segment_bytes = 700; /* 4 batches a segment */
	struct tl_log *log = log_open();
	int64_t now = tl_wall_ms();
	struct batch *b[3];
	for (int32_t i = 0; i < 3; i++) {
		b[i] = batch_make(1, now, 9, 0, i);
		append(log, b[i]);
	}
	struct batch **rest = append_many(log, 9, 1); /* rolls twice, snapshots at 4 and 8 */
	config.retention_bytes = 700;
	config.retention_ms = -1;
	tl_log_set_config(log, &config);
	ck_assert_int_gt(tl_log_tick(log, now), 0);
	ck_assert_int_ge(tl_log_start_offset(log), 4); /* the producer's batches are gone */
	tl_log_close(log);
	log = log_open();
	/* Only a snapshot can know producer 9 now: a retry of its last batch is a duplicate. */
	struct batch *retry = batch_make(1, now, 9, 0, 2);
	struct tl_log_append_result result;
	ck_assert_int_eq(
		tl_log_append(log, retry->bytes, sizeof(retry->bytes), &retry->header, &result),
		TL_OK);
	ck_assert(result.duplicate);
	ck_assert_int_eq(result.base_offset, 2);
	tl_log_close(log);
	free(retry);
	for (int i = 0; i < 3; i++)
		free(b[i]);
	batches_free(rest, 9);
}
END_TEST

START_TEST(remove_deletes_the_partition_directory)
{
	config.segment_bytes = 700;
	struct tl_log *log = log_open();
	struct batch **all = append_many(log, 9, 1);
	tl_log_close(log);
	log = log_open();
	uint64_t handed = tl_log_closes_handed();
	ck_assert_int_eq(tl_log_remove(log), TL_OK);
	ck_assert_int_eq(access(dir, F_OK), -1);
	ck_assert_uint_ge(tl_log_closes_handed() - handed, 2); /* its segments: not inline */
	tl_log_closes_drain();
	batches_free(all, 9);
}
END_TEST

static int64_t append_marker(struct tl_log *log, struct marker *m)
{
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, m->buf.data, m->buf.len, &m->header, &result), TL_OK);
	return result.base_offset;
}

START_TEST(lso_stops_at_the_oldest_open_transaction_until_its_marker_is_durable)
{
	struct tl_log *log = log_open();
	struct batch *a0 = batch_txn(1, 0), *b0 = batch_txn(2, 0), *a1 = batch_txn(1, 1);
	struct batch *plain = batch_make(1, tl_wall_ms(), -1, -1, -1);
	ck_assert_int_eq(append(log, plain), 0);
	ck_assert_int_eq(append(log, a0), 1); /* txn A opens at 1 */
	ck_assert_int_eq(append(log, b0), 2); /* txn B opens at 2 */
	ck_assert_int_eq(append(log, a1), 3);
	drain(log);
	ck_assert_int_eq(tl_log_high_watermark(log), 4);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 1);
	struct marker *abort_a = marker_make(1, false);
	ck_assert_int_eq(append_marker(log, abort_a), 4);
	/* The marker is not durable yet: A still holds the LSO. */
	ck_assert_int_eq(tl_log_last_stable_offset(log), 1);
	drain(log);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 2); /* B is still open */
	struct marker *commit_b = marker_make(2, true);
	ck_assert_int_eq(append_marker(log, commit_b), 5);
	drain(log);
	ck_assert_int_eq(tl_log_last_stable_offset(log), 6);
	struct tl_log_aborted_txn aborted[4];
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 6, aborted, 4), 1);
	ck_assert_int_eq(aborted[0].producer_id, 1);
	ck_assert_int_eq(aborted[0].first_offset, 1);
	ck_assert_int_eq(aborted[0].last_offset, 4);
	ck_assert_int_eq(tl_log_aborted_txns(log, 5, 6, aborted, 4), 0); /* after its marker */
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 1, aborted, 4), 0); /* before it opened */
	tl_log_close(log);
	free(a0);
	free(b0);
	free(a1);
	free(plain);
	marker_free(abort_a);
	marker_free(commit_b);
}
END_TEST

/* Writes aborted transactions across rolled segments, restarts via @restart, and checks
 * the aborted index and the open transaction come back. */
static void txns_across_restart(void (*restart)(void))
{
	config.segment_bytes = 700;
	struct tl_log *log = log_open();
	struct batch *b[6];
	struct marker *m[3];
	int64_t pid = 10;
	for (int i = 0; i < 3; i++) {
		b[2 * i] = batch_txn(pid + i, 0);
		b[2 * i + 1] = batch_txn(pid + i, 1);
		append(log, b[2 * i]);
		append(log, b[2 * i + 1]);
		m[i] = marker_make(pid + i, i != 1); /* commit, abort, commit */
		append_marker(log, m[i]);
		drain(log);
	}
	struct batch *open = batch_txn(20, 0); /* left open */
	int64_t open_at = append(log, open);
	drain(log);
	ck_assert_int_eq(tl_log_last_stable_offset(log), open_at);
	tl_log_close(log);
	restart();
	log = log_open();
	struct tl_log_aborted_txn aborted[4];
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 100, aborted, 4), 1);
	ck_assert_int_eq(aborted[0].producer_id, 11);
	ck_assert_int_eq(aborted[0].first_offset, 3);
	ck_assert_int_eq(aborted[0].last_offset, 5);
	ck_assert_int_eq(tl_log_last_stable_offset(log), open_at);
	tl_log_close(log);
	for (int i = 0; i < 6; i++)
		free(b[i]);
	for (int i = 0; i < 3; i++)
		marker_free(m[i]);
	free(open);
}

/* A marker from an older coordinator (a zombie, after the state partition moved) is
 * refused once a newer coordinator wrote a marker for the producer, also after a
 * restart (the epoch is replayed from the log). */
START_TEST(a_marker_of_an_older_coordinator_is_fenced)
{
	struct tl_log *log = log_open();
	struct batch *a0 = batch_txn(7, 0), *a1 = batch_txn(7, 1);
	struct marker *commit5 = marker_make_by(7, true, 5);
	struct marker *abort4 = marker_make_by(7, false, 4);
	struct marker *abort5 = marker_make_by(7, false, 5);
	append(log, a0);
	append_marker(log, commit5);
	append(log, a1); /* the next transaction opens */
	drain(log);
	struct tl_log_append_result result;
	ck_assert_int_eq(
		tl_log_append(log, abort4->buf.data, abort4->buf.len, &abort4->header, &result),
		TL_ERR_TRANSACTION_COORDINATOR_FENCED);
	tl_log_close(log);
	restart_after_crash();
	log = log_open();
	ck_assert_int_eq(
		tl_log_append(log, abort4->buf.data, abort4->buf.len, &abort4->header, &result),
		TL_ERR_TRANSACTION_COORDINATOR_FENCED);
	ck_assert_int_lt(tl_log_last_stable_offset(log), tl_log_end_offset(log));
	append_marker(log, abort5); /* the current coordinator closes it */
	drain(log);
	ck_assert_int_eq(tl_log_last_stable_offset(log), tl_log_end_offset(log));
	tl_log_close(log);
	free(a0);
	free(a1);
	marker_free(commit5);
	marker_free(abort4);
	marker_free(abort5);
}
END_TEST

/* A marker carrying an older producer epoch than the producer's batches cannot decide
 * its transaction (Kafka's checkProducerEpoch): refused, nothing appended, the
 * transaction still open until a marker of its epoch comes. */
START_TEST(a_marker_of_an_older_producer_epoch_is_refused)
{
	struct tl_log *log = log_open();
	struct batch *b = batch_txn_at(9, 1, 0);
	struct marker *old = marker_make_at(9, 0, true, 0);
	struct marker *current = marker_make_at(9, 1, true, 0);
	append(log, b);
	drain(log);
	int64_t end = tl_log_end_offset(log);
	struct tl_log_append_result result;
	ck_assert_int_eq(tl_log_append(log, old->buf.data, old->buf.len, &old->header, &result),
			 TL_ERR_INVALID_PRODUCER_EPOCH);
	ck_assert_int_eq(tl_log_end_offset(log), end);
	ck_assert_int_lt(tl_log_last_stable_offset(log), end);
	append_marker(log, current);
	drain(log);
	ck_assert_int_eq(tl_log_last_stable_offset(log), tl_log_end_offset(log));
	tl_log_close(log);
	free(b);
	marker_free(old);
	marker_free(current);
}
END_TEST

START_TEST(aborted_index_and_open_transactions_survive_a_clean_restart)
{
	txns_across_restart(restart_clean);
}
END_TEST

START_TEST(aborted_index_and_open_transactions_are_rebuilt_after_a_crash)
{
	txns_across_restart(restart_after_crash);
}
END_TEST

START_TEST(aborted_index_is_rebuilt_by_full_replay_without_snapshots)
{
	txns_across_restart(restart_without_snapshots);
}
END_TEST

/* Found by fuzz_log: a sealed segment's damaged .txnindex was rebuilt by the replay
 * but never written back, so every later open replayed from that segment again; and
 * one cut to whole entries loaded, so a replay's correction was lost at the next
 * open that used a snapshot. */
START_TEST(a_damaged_txnindex_is_rebuilt_and_written_back)
{
	config.segment_bytes = 700;
	struct tl_log *log = log_open();
	struct batch *b[4];
	struct marker *m[2];
	for (int i = 0; i < 2; i++) {
		b[2 * i] = batch_txn(10 + i, 0);
		b[2 * i + 1] = batch_txn(10 + i, 1);
		append(log, b[2 * i]);
		append(log, b[2 * i + 1]);
		m[i] = marker_make(10 + i, false); /* both abort */
		append_marker(log, m[i]);
		drain(log);
	}
	struct batch **more = append_many(log, 8, 1); /* the markers' segments are sealed */
	tl_log_close(log);
	/* The first segment's .txnindex holds pid 10's abort (first 0, marker 2). */
	char path[400];
	path_of(path, sizeof(path), 0, ".txnindex");
	ck_assert_int_eq(file_size(path), 34 + TL_LOG_INDEX_TRAILER_BYTES);
	uint8_t garbage[34];
	memset(garbage, 0x4e, sizeof(garbage));
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(garbage, 1, sizeof(garbage), f), sizeof(garbage));
	fclose(f);
	log = log_open();
	struct tl_log_aborted_txn aborted[4];
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 100, aborted, 4), 2);
	ck_assert_int_eq(aborted[0].producer_id, 10);
	ck_assert_int_eq(aborted[0].last_offset, 2);
	/* Written back at open, not only held in memory. */
	uint8_t back[34 + TL_LOG_INDEX_TRAILER_BYTES];
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(back, 1, sizeof(back), f), sizeof(back));
	ck_assert_int_eq(fgetc(f), EOF);
	fclose(f);
	ck_assert_int_eq(tl_be16_get(back), 0);
	ck_assert_int_eq((int64_t)tl_be64_get(back + 2), 10);
	ck_assert_int_eq((int64_t)tl_be64_get(back + 10), 0);
	ck_assert_int_eq((int64_t)tl_be64_get(back + 18), 2);
	uint32_t count;
	int64_t end;
	const char *why;
	ck_assert_int_eq(
		tl_log_index_check(back, sizeof(back), TL_LOG_INDEX_TXN, &count, &end, &why),
		TL_OK);
	ck_assert_int_eq(count, 1);
	tl_log_close(log);
	/* Emptied, it no longer loads (no trailer): the replay finds the abort and the
	 * file is written again. */
	ck_assert_int_eq(truncate(path, 0), 0);
	log = log_open();
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 100, aborted, 4), 2);
	ck_assert_int_eq(file_size(path), 34 + TL_LOG_INDEX_TRAILER_BYTES);
	tl_log_close(log);
	/* A whole file (a valid trailer naming the segment's end) that lacks the abort
	 * still loads; but a replay (the snapshots gone) finds the abort: the replay wins
	 * and the file is written again. */
	uint8_t none[TL_LOG_INDEX_TRAILER_BYTES];
	tl_log_index_trailer_put(none, TL_LOG_INDEX_TXN, NULL, 0, end);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(none, 1, sizeof(none), f), sizeof(none));
	fclose(f);
	delete_snapshots(false);
	log = log_open();
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 100, aborted, 4), 2);
	ck_assert_int_eq(file_size(path), 34 + TL_LOG_INDEX_TRAILER_BYTES);
	tl_log_close(log);
	for (int i = 0; i < 4; i++)
		free(b[i]);
	for (int i = 0; i < 2; i++)
		marker_free(m[i]);
	batches_free(more, 8);
}
END_TEST

/* Two aborted transactions (pids 10 and 11) whose markers lie in the first segment, sealed
 * by more batches; closed cleanly. @b, @m and @more to free with txns_sealed_free(). */
struct txns_sealed {
	struct batch *b[4];
	struct marker *m[2];
	struct batch **more;
};

static void txns_sealed_make(struct txns_sealed *t)
{
	config.segment_bytes = 2000;
	struct tl_log *log = log_open();
	for (int i = 0; i < 2; i++) {
		t->b[2 * i] = batch_txn(10 + i, 0);
		t->b[2 * i + 1] = batch_txn(10 + i, 1);
		append(log, t->b[2 * i]);
		append(log, t->b[2 * i + 1]);
		t->m[i] = marker_make(10 + i, false);
		append_marker(log, t->m[i]);
		drain(log);
	}
	t->more = append_many(log, 24, 1);
	tl_log_close(log);
	char path[400];
	path_of(path, sizeof(path), 0, ".txnindex");
	ck_assert_int_eq(file_size(path), 2 * 34 + TL_LOG_INDEX_TRAILER_BYTES);
}

static void txns_sealed_free(struct txns_sealed *t)
{
	for (int i = 0; i < 4; i++)
		free(t->b[i]);
	for (int i = 0; i < 2; i++)
		marker_free(t->m[i]);
	batches_free(t->more, 24);
}

/* After a crash (no marker) with the first segment's .txnindex cut to @len bytes: the
 * file is bad, the replay rebuilds both aborts and the file is written back whole,
 * although the snapshots lie above that segment. */
static void txnindex_cut_and_recovered(off_t len)
{
	struct txns_sealed t;
	txns_sealed_make(&t);
	char path[400];
	path_of(path, sizeof(path), 0, ".txnindex");
	ck_assert_int_eq(truncate(path, len), 0);
	remove_marker();
	struct tl_log *log = log_open();
	struct tl_log_aborted_txn aborted[4];
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 1000, aborted, 4), 2);
	ck_assert_int_eq(aborted[0].producer_id, 10);
	ck_assert_int_eq(aborted[1].producer_id, 11);
	ck_assert_int_eq(file_size(path), 2 * 34 + TL_LOG_INDEX_TRAILER_BYTES);
	tl_log_close(log);
	log = log_open(); /* from the file written back */
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 1000, aborted, 4), 2);
	tl_log_close(log);
	txns_sealed_free(&t);
}

/* Review r2: a power loss left a sealed segment's new .txnindex empty (written without
 * fsync); it was trusted as "no aborted transaction", and read_committed consumers
 * saw the aborted records. */
START_TEST(an_empty_txnindex_after_a_crash_is_rebuilt)
{
	txnindex_cut_and_recovered(0);
}
END_TEST

/* ... or cut short at a whole entry: the second abort was lost. */
START_TEST(a_cut_short_txnindex_after_a_crash_is_rebuilt)
{
	txnindex_cut_and_recovered(34);
}
END_TEST

/* The first segment's batches carry timestamps 3000..3011, the next segments' 1000 on:
 * the log's max timestamp is the first segment's, known after a restart only from its
 * .timeindex (or a rescan). */
static struct batch **timestamps_sealed_make(int *count)
{
	config.segment_bytes = 2000;
	config.index_interval_bytes = 0;
	struct tl_log *log = log_open();
	*count = 36;
	struct batch **all = calloc((size_t)*count, sizeof(*all));
	for (int i = 0; i < *count; i++) {
		all[i] = batch_make(1, i < 12 ? 3000 + i : 1000 + i, -1, -1, -1);
		append(log, all[i]);
	}
	drain(log);
	ck_assert_int_eq(tl_log_max_timestamp(log), 3011);
	tl_log_close(log);
	char path[400];
	path_of(path, sizeof(path), 24, ".log"); /* 12 a segment, the first sealed */
	ck_assert_int_eq(access(path, F_OK), 0);
	return all;
}

static void timestamps_recovered(void)
{
	struct tl_log *log = log_open();
	ck_assert_int_eq(tl_log_max_timestamp(log), 3011);
	int64_t offset, ts;
	ck_assert_int_eq(tl_log_offset_for_timestamp(log, 3005, &offset, &ts), TL_OK);
	ck_assert_int_eq(offset, 5);
	tl_log_close(log);
}

/* Review r3b: a sealed segment's .timeindex cut short by a power loss gave the segment
 * the last surviving entry as its max timestamp, so retention deleted it early. */
START_TEST(a_cut_short_timeindex_after_a_crash_is_rebuilt)
{
	int count;
	struct batch **all = timestamps_sealed_make(&count);
	char path[400];
	path_of(path, sizeof(path), 0, ".timeindex");
	int64_t whole = file_size(path);
	ck_assert_int_gt(whole, 2 * 12 + TL_LOG_INDEX_TRAILER_BYTES);
	ck_assert_int_eq(truncate(path, 2 * 12), 0); /* two entries left, no trailer */
	remove_marker();
	timestamps_recovered();
	ck_assert_int_eq(file_size(path), whole); /* written back at open */
	remove_marker();
	timestamps_recovered();
	batches_free(all, count);
}
END_TEST

/* Review r3: zero-filled (XFS, ext4 data=writeback after a power loss), every timestamp
 * was 0 and the segment's max timestamp with them. */
START_TEST(a_zero_filled_timeindex_after_a_crash_is_rebuilt)
{
	int count;
	struct batch **all = timestamps_sealed_make(&count);
	char path[400];
	path_of(path, sizeof(path), 0, ".timeindex");
	int64_t whole = file_size(path);
	uint8_t zeros[4096] = {0};
	ck_assert_int_le(whole, (int64_t)sizeof(zeros));
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, zeros, (size_t)whole, 0), whole);
	close(fd);
	remove_marker();
	timestamps_recovered();
	ck_assert_int_eq(file_size(path), whole);
	batches_free(all, count);
}
END_TEST

/* The offset index too: zero-filled or cut short it fails its trailer, and a stale one
 * (another segment's end offset) is refused even where its entries would do. */
START_TEST(a_zero_filled_or_cut_short_offset_index_is_rebuilt)
{
	int count;
	struct batch **all = timestamps_sealed_make(&count);
	char path[400];
	path_of(path, sizeof(path), 0, ".index");
	int64_t whole = file_size(path);
	ck_assert_int_eq(truncate(path, 8 * 3), 0);
	path_of(path, sizeof(path), 12, ".index");
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(truncate(path, whole), 0);
	remove_marker();
	timestamps_recovered();
	ck_assert_int_eq(file_size(path), whole);
	path_of(path, sizeof(path), 0, ".index");
	ck_assert_int_eq(file_size(path), whole);
	batches_free(all, count);
}
END_TEST

/* The trailer alone: a changed entry byte, another count or kind, a cut or a missing
 * trailer each make the file bad. */
START_TEST(an_index_trailer_refuses_changed_entries_counts_and_kinds)
{
	uint8_t file[3 * 12 + TL_LOG_INDEX_TRAILER_BYTES];
	for (size_t i = 0; i < 3 * 12; i++)
		file[i] = (uint8_t)(i * 7 + 1);
	tl_log_index_trailer_put(file + 3 * 12, TL_LOG_INDEX_TIME, file, 3, 42);
	uint32_t count;
	int64_t end;
	const char *why;
	ck_assert_int_eq(
		tl_log_index_check(file, sizeof(file), TL_LOG_INDEX_TIME, &count, &end, &why),
		TL_OK);
	ck_assert_int_eq(count, 3);
	ck_assert_int_eq(end, 42);
	ck_assert_int_eq(
		tl_log_index_check(file, sizeof(file), TL_LOG_INDEX_OFFSET, &count, &end, &why),
		TL_ERR_CORRUPT);
	ck_assert_int_eq(
		tl_log_index_check(file, sizeof(file) - 12, TL_LOG_INDEX_TIME, &count, &end, &why),
		TL_ERR_CORRUPT);
	ck_assert_int_eq(tl_log_index_check(file, 3 * 12, TL_LOG_INDEX_TIME, &count, &end, &why),
			 TL_ERR_CORRUPT);
	ck_assert_int_eq(tl_log_index_check(file, 0, TL_LOG_INDEX_TIME, &count, &end, &why),
			 TL_ERR_CORRUPT);
	file[13] ^= 0x10; /* an entry's byte */
	ck_assert_int_eq(
		tl_log_index_check(file, sizeof(file), TL_LOG_INDEX_TIME, &count, &end, &why),
		TL_ERR_CORRUPT);
	ck_assert_str_eq(why, "CRC-32C mismatch");
	file[13] ^= 0x10;
	file[3 * 12 + 19] ^= 0x01; /* the end offset */
	ck_assert_int_eq(
		tl_log_index_check(file, sizeof(file), TL_LOG_INDEX_TIME, &count, &end, &why),
		TL_ERR_CORRUPT);
}
END_TEST

/* Rewrites @path as its first @count entries of @kind under a valid trailer that names
 * @end as the segment's end: a stale file, as if written for another segment. */
static void index_file_stale(const char *path, enum tl_log_index_kind kind, uint32_t count,
			     int64_t end)
{
	uint8_t data[4096];
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	size_t len = count * tl_log_index_entry_bytes(kind);
	ck_assert_int_eq(pread(fd, data, len, 0), (ssize_t)len);
	tl_log_index_trailer_put(data + len, kind, data, count, end);
	ck_assert_int_eq(pwrite(fd, data, len + TL_LOG_INDEX_TRAILER_BYTES, 0),
			 (ssize_t)(len + TL_LOG_INDEX_TRAILER_BYTES));
	ck_assert_int_eq(ftruncate(fd, (off_t)(len + TL_LOG_INDEX_TRAILER_BYTES)), 0);
	close(fd);
}

/* Whole files that name another end than the segment's (stale: describing what the
 * segment was when they were written) are refused, even at a clean open. */
START_TEST(index_files_naming_another_segment_end_are_rebuilt)
{
	int count;
	struct batch **all = timestamps_sealed_make(&count);
	char path[400];
	path_of(path, sizeof(path), 0, ".index");
	index_file_stale(path, TL_LOG_INDEX_OFFSET, 3, 3);
	path_of(path, sizeof(path), 0, ".timeindex");
	index_file_stale(path, TL_LOG_INDEX_TIME, 3, 3);
	timestamps_recovered();
	batches_free(all, count);
}
END_TEST

/* Index files of the format before trailers: bad, so even a clean open rescans their
 * segments once and writes them back with trailers. */
START_TEST(index_files_without_a_trailer_are_rebuilt_once)
{
	struct txns_sealed t;
	txns_sealed_make(&t);
	static const char *const suffixes[] = {".index", ".timeindex", ".txnindex"};
	int64_t sizes[3];
	char path[400];
	for (int i = 0; i < 3; i++) {
		path_of(path, sizeof(path), 0, suffixes[i]);
		sizes[i] = file_size(path);
		ck_assert_int_eq(truncate(path, sizes[i] - TL_LOG_INDEX_TRAILER_BYTES), 0);
	}
	struct tl_log *log = log_open(); /* clean: the marker is there */
	struct tl_log_aborted_txn aborted[4];
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, 1000, aborted, 4), 2);
	for (int i = 0; i < 3; i++) {
		path_of(path, sizeof(path), 0, suffixes[i]);
		ck_assert_int_eq(file_size(path), sizes[i]);
		uint8_t data[1024];
		int fd = open(path, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(read(fd, data, sizeof(data)), sizes[i]);
		close(fd);
		uint32_t n;
		int64_t end;
		const char *why;
		ck_assert_int_eq(tl_log_index_check(data, (size_t)sizes[i],
						    (enum tl_log_index_kind)(i + 1), &n, &end,
						    &why),
				 TL_OK);
		char next[400];
		path_of(next, sizeof(next), end, ".log"); /* the segment's end, the next base */
		ck_assert_int_eq(access(next, F_OK), 0);
	}
	tl_log_close(log);
	txns_sealed_free(&t);
}
END_TEST

/* Found by fuzz_log: a sealed segment is trusted when its indexes load, so garbled
 * bytes inside it reach the producer-state replay; an ABORT marker whose baseOffset was
 * garbled upwards entered the aborted index ahead of a later marker and the next push
 * failed an assertion (tallyd aborted at start-up). The replay now requires offsets
 * to run on inside each segment and refuses the log as CORRUPT. */
START_TEST(garbled_offsets_in_a_trusted_segment_fail_the_replay_cleanly)
{
	config.segment_bytes = 700;
	struct tl_log *log = log_open();
	struct batch *b[4];
	struct marker *m[2];
	for (int i = 0; i < 2; i++) {
		b[2 * i] = batch_txn(10 + i, 0);
		b[2 * i + 1] = batch_txn(10 + i, 1);
		append(log, b[2 * i]);
		append(log, b[2 * i + 1]);
		m[i] = marker_make(10 + i, false);
		append_marker(log, m[i]);
		drain(log);
	}
	struct batch **more = append_many(log, 4, 1);
	tl_log_close(log);
	/* pid 10's ABORT marker is offset 2, the third batch of the first segment. */
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t base[8];
	ck_assert_int_eq(pread(fd, base, 8, 2 * (TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES)), 8);
	ck_assert_int_eq((int64_t)tl_be64_get(base), 2);
	tl_be64_put(base, 1000);
	ck_assert_int_eq(pwrite(fd, base, 8, 2 * (TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES)), 8);
	close(fd);
	delete_snapshots(false); /* the replay runs from the start */
	log = NULL;
	ck_assert_int_eq(tl_log_open(dir, &config, ring, &log), TL_ERR_CORRUPT);
	ck_assert_ptr_null(log);
	for (int i = 0; i < 4; i++)
		free(b[i]);
	for (int i = 0; i < 2; i++)
		marker_free(m[i]);
	batches_free(more, 4);
}
END_TEST

/* ---- the two-stage group commit ---- */

#define ONE_BATCH_BYTES (TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES)

/* One loop turn: hands queued ops to the kernel (the sync engine performs them) and
 * reaps at least one completion. With io_uring, a sync that a write's callback queues
 * goes out at the end of the reap but completes no earlier than the next one. */
static void step(void)
{
	tl_ring_submit(ring);
	tl_ring_wait(ring);
}

/* Runs the ring until nothing is in flight. */
static void settle(void)
{
	tl_ring_submit(ring);
	while (tl_ring_pending(ring) > 0)
		tl_ring_wait(ring);
}

/* Flushes @log and runs the ring until its write round has completed and the fdatasync
 * it queued is in flight (io_uring). The sync engine performs the write at submit but
 * runs its callback, which queues the fdatasync, only at the next reap. */
static void first_write_done(struct tl_log *log)
{
	int64_t hw = tl_log_high_watermark(log);
	tl_log_flush(log);
	if (!tl_ring_is_uring(ring)) {
		tl_ring_submit(ring);
		return;
	}
	step();
	ck_assert_int_eq(tl_ring_pending(ring), 1); /* the fdatasync */
	ck_assert_int_eq(tl_log_high_watermark(log), hw);
}

/* A waiter that records how and when it fired. */
struct probe {
	struct tl_log_waiter waiter;
	struct tl_log *log;
	int order; /* 1 for the first probe to fire, 2 for the next, ... */
	tl_err err;
	int64_t hw;         /* the high watermark then */
	int64_t file_bytes; /* segment 0's file then, up to its last non-zero byte */
};

static void on_probe(struct tl_log_waiter *waiter, tl_err err)
{
	struct probe *probe = waiter->ctx;
	ck_assert_int_eq(probe->order, 0);
	probe->order = ++probes_fired;
	probe->err = err;
	probe->hw = tl_log_high_watermark(probe->log);
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	probe->file_bytes = file_data_bytes(path);
}

static void probe_wait(struct tl_log *log, struct probe *probe, int64_t offset)
{
	*probe = (struct probe){.log = log};
	probe->waiter = (struct tl_log_waiter){.offset = offset, .done = on_probe, .ctx = probe};
	tl_log_wait_durable(log, &probe->waiter);
}

/* Every advance of the high watermark of a one-segment log of @records_per_batch-record
 * batches: forward only, at a batch boundary, never past the bytes in the file. */
struct hw_trace {
	int32_t records_per_batch;
	int count;
	int64_t hw[256];
};

static void on_hw(void *ctx, struct tl_log *log)
{
	struct hw_trace *trace = ctx;
	int64_t hw = tl_log_high_watermark(log);
	if (trace->count > 0)
		ck_assert_int_gt(hw, trace->hw[trace->count - 1]);
	ck_assert_int_le(hw, tl_log_end_offset(log));
	ck_assert_int_eq(hw % trace->records_per_batch, 0);
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_int_le(hw / trace->records_per_batch * ONE_BATCH_BYTES, file_size(path));
	ck_assert_int_lt(trace->count, (int)TL_ARRAY_SIZE(trace->hw));
	trace->hw[trace->count++] = hw;
}

START_TEST(an_append_during_a_sync_is_written_at_once_but_durable_after_the_next_sync)
{
	struct tl_log *log = log_open();
	struct hw_trace trace = {.records_per_batch = 1};
	tl_log_set_listener(log, on_hw, &trace);
	struct batch *a = batch_make(1, 1, -1, -1, -1), *b = batch_make(1, 2, -1, -1, -1);
	struct probe pa, pb;
	ck_assert_int_eq(append(log, a), 0);
	probe_wait(log, &pa, 0);
	first_write_done(log);
	ck_assert_int_eq(append(log, b), 1);
	probe_wait(log, &pb, 1);
	tl_log_flush(log);
	if (tl_ring_is_uring(ring))
		ck_assert_int_eq(tl_ring_pending(ring), 2); /* B's writev beside A's fdatasync */
	settle();
	ck_assert_int_eq(pa.order, 1);
	ck_assert_int_eq(pa.err, TL_OK);
	ck_assert_int_eq(pa.hw, 1); /* A's sync covered A only */
	ck_assert_int_eq(pb.order, 2);
	ck_assert_int_eq(pb.err, TL_OK);
	ck_assert_int_eq(pb.hw, 2);  /* B became durable with the next sync */
	if (!tl_ring_is_uring(ring)) /* the sync engine runs B's write before A's completion */
		ck_assert_int_eq(pa.file_bytes, 2 * ONE_BATCH_BYTES);
	ck_assert_int_eq(trace.count, 2);
	ck_assert_int_eq(trace.hw[0], 1);
	ck_assert_int_eq(trace.hw[1], 2);
	tl_log_close(log);
	free(a);
	free(b);
}
END_TEST

static void on_ordered(struct tl_log_waiter *waiter, tl_err err)
{
	ck_assert_int_eq(err, TL_OK);
	ck_assert_int_gt(tl_log_high_watermark(waiter->ctx), waiter->offset);
	on_durable(waiter, err);
}

START_TEST(the_high_watermark_moves_in_offset_order_across_overlapped_rounds)
{
	enum { COUNT = 60 };
	struct tl_log *log = log_open();
	struct hw_trace trace = {.records_per_batch = 2};
	tl_log_set_listener(log, on_hw, &trace);
	struct batch *b[COUNT];
	struct tl_log_waiter w[COUNT];
	waiter_calls = 0;
	waiter_last = -1;
	unsigned pending_max = 0;
	for (int i = 0; i < COUNT; i++) {
		b[i] = batch_make(2, 10 + i, -1, -1, -1);
		ck_assert_int_eq(append(log, b[i]), 2 * i);
		w[i] = (struct tl_log_waiter){.offset = 2 * i + 1, .done = on_ordered, .ctx = log};
		tl_log_wait_durable(log, &w[i]);
		tl_log_flush(log);
		pending_max = TL_MAX(pending_max, tl_ring_pending(ring));
		/* Vary how far the ring gets between appends, so that rounds overlap in
		 * different ways: some appends pile up in the queue behind a write. */
		if (i % 4 == 1)
			tl_ring_submit(ring);
		else if (i % 4 != 3)
			step();
	}
	settle();
	ck_assert_int_eq(waiter_calls, COUNT);
	ck_assert_int_eq(tl_log_high_watermark(log), 2 * COUNT);
	ck_assert_int_gt(trace.count, 1);
	ck_assert_int_eq(trace.hw[trace.count - 1], 2 * COUNT);
	if (tl_ring_is_uring(ring))
		ck_assert_uint_ge(pending_max, 2); /* a write and a sync were in flight together */
	for (int i = 0; i < COUNT; i++)
		expect_read(log, 2 * i + 1, 2 * i);
	tl_log_close(log);
	for (int i = 0; i < COUNT; i++)
		free(b[i]);
}
END_TEST

START_TEST(a_failed_write_during_a_sync_fails_every_waiter)
{
	struct tl_log *log = log_open();
	struct batch *a = batch_make(1, 1, -1, -1, -1), *b = batch_make(1, 2, -1, -1, -1);
	struct batch *c = batch_make(1, 3, -1, -1, -1);
	struct probe pa, pb, pc;
	append(log, a);
	probe_wait(log, &pa, 0);
	first_write_done(log);
	tl_ring_fault_set(ring, TL_RING_OP_WRITEV, 5 /* EIO */, 1, false);
	append(log, b); /* written while A's sync is in flight: fails */
	probe_wait(log, &pb, 1);
	tl_log_flush(log);
	append(log, c); /* queued behind that write */
	probe_wait(log, &pc, 2);
	tl_log_flush(log);
	settle();
	/* A's sync succeeded, but the log failed first: written-not-synced fails too. */
	ck_assert_int_eq(probes_fired, 3);
	ck_assert_int_eq(pa.err, TL_ERR_KAFKA_STORAGE_ERROR);
	ck_assert_int_eq(pb.err, TL_ERR_KAFKA_STORAGE_ERROR);
	ck_assert_int_eq(pc.err, TL_ERR_KAFKA_STORAGE_ERROR);
	ck_assert_int_eq(tl_log_high_watermark(log), 0);
	ck_assert(!tl_log_is_writable(log));
	ck_assert_int_eq(strncmp(tl_log_last_error(log), "write ", 6), 0);
	struct tl_log_append_result result;
	struct batch *d = batch_make(1, 4, -1, -1, -1);
	ck_assert_int_eq(tl_log_append(log, d->bytes, sizeof(d->bytes), &d->header, &result),
			 TL_ERR_KAFKA_STORAGE_ERROR);
	tl_log_flush(log);
	tl_log_close(log); /* no marker: the next open recovers */
	log = log_open();
	ck_assert(tl_log_is_writable(log));
	/* A reached the disk after the failure, unacknowledged; the durable end recorded
	 * at the failure (0) cuts it with B's bytes, which the page cache may hold. */
	ck_assert_int_eq(tl_log_end_offset(log), 0);
	tl_log_close(log);
	free(a);
	free(b);
	free(c);
	free(d);
}
END_TEST

/* A write completing with 0 bytes and no error (the ring resubmits only a transfer that
 * made progress) is a failed write, not a written batch: nothing is acknowledged and
 * the log stops taking writes, as for EIO. */
START_TEST(a_write_that_transfers_nothing_fails)
{
	struct tl_log *log = log_open();
	struct batch *a = batch_make(1, 1, -1, -1, -1);
	struct probe pa;
	tl_ring_fault_set(ring, TL_RING_OP_WRITEV, 0 /* 0 bytes, no error */, 1, false);
	append(log, a);
	probe_wait(log, &pa, 0);
	tl_log_flush(log);
	settle();
	ck_assert_int_eq(probes_fired, 1);
	ck_assert_int_eq(pa.err, TL_ERR_KAFKA_STORAGE_ERROR);
	ck_assert_int_eq(tl_log_high_watermark(log), 0);
	ck_assert(!tl_log_is_writable(log));
	ck_assert_int_eq(strncmp(tl_log_last_error(log), "write ", 6), 0);
	tl_log_close(log);
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 0);
	tl_log_close(log);
	free(a);
}
END_TEST

/* Appends three batches so that the first one's sync, the second one's write and the
 * third one's queueing are all pending, and probes each. */
static void three_in_three_stages(struct tl_log *log, struct batch **b, struct probe *probe,
				  int64_t first)
{
	for (int i = 0; i < 3; i++) {
		b[i] = batch_make(1, 100 + i, -1, -1, -1);
		ck_assert_int_eq(append(log, b[i]), first + i);
		probe_wait(log, &probe[i], first + i);
		if (i == 0)
			first_write_done(log);
		else if (i == 1)
			tl_log_flush(log);
	}
	if (tl_ring_is_uring(ring))
		ck_assert_int_eq(tl_ring_pending(ring), 2);
	ck_assert_int_eq(tl_log_high_watermark(log), first);
}

START_TEST(close_and_remove_wait_for_both_stages)
{
	struct tl_log *log = log_open();
	struct batch *b[3], *more[3];
	struct probe probe[3], again[3];
	three_in_three_stages(log, b, probe, 0);
	tl_log_close(log);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(probe[i].order, i + 1);
		ck_assert_int_eq(probe[i].err, TL_OK);
	}
	char marker[400];
	snprintf(marker, sizeof(marker), "%s/.clean-shutdown", dir);
	ck_assert_int_eq(access(marker, F_OK), 0);
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 3);
	ck_assert_int_eq(tl_log_high_watermark(log), 3);
	for (int64_t o = 0; o < 3; o++)
		expect_read(log, o, o);
	three_in_three_stages(log, more, again, 3);
	ck_assert_int_eq(tl_log_remove(log), TL_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(again[i].order, 4 + i);
		ck_assert_int_eq(again[i].err, TL_OK);
	}
	ck_assert_int_eq(access(dir, F_OK), -1);
	for (int i = 0; i < 3; i++) {
		free(b[i]);
		free(more[i]);
	}
}
END_TEST

START_TEST(a_roll_during_a_sync_keeps_the_old_segment_until_it_is_durable)
{
	config.segment_bytes = 2 * ONE_BATCH_BYTES; /* two batches a segment */
	struct tl_log *log = log_open();
	struct batch *a0 = batch_make(1, 1, -1, -1, -1), *a1 = batch_make(1, 2, -1, -1, -1);
	struct batch *b = batch_make(1, 3, -1, -1, -1);
	struct probe pa, pb;
	append(log, a0);
	append(log, a1);
	probe_wait(log, &pa, 1);
	first_write_done(log);               /* segment 0's fdatasync in flight */
	ck_assert_int_eq(append(log, b), 2); /* rolls */
	probe_wait(log, &pb, 2);
	char path[400];
	path_of(path, sizeof(path), 2, ".log");
	ck_assert_int_eq(access(path, F_OK), 0);
	tl_log_flush(log); /* the new segment's write goes out beside the old one's sync */
	if (tl_ring_is_uring(ring))
		ck_assert_int_eq(tl_ring_pending(ring), 2);
	/* Retention cannot take segment 0, nor its index files be written, before its
	 * bytes are durable. (One batch kept: the active segment stays.) */
	config.retention_bytes = ONE_BATCH_BYTES;
	config.retention_ms = -1;
	tl_log_set_config(log, &config);
	ck_assert_int_eq(tl_log_tick(log, tl_wall_ms()), 0);
	ck_assert_int_eq(tl_log_start_offset(log), 0);
	path_of(path, sizeof(path), 0, ".index");
	ck_assert_int_eq(access(path, F_OK), -1);
	settle();
	ck_assert_int_eq(pa.err, TL_OK);
	ck_assert_int_eq(pa.hw, 2); /* segment 0's sync covered segment 0 only */
	ck_assert_int_eq(pb.err, TL_OK);
	ck_assert_int_eq(pb.hw, 3);
	ck_assert_int_eq(access(path, F_OK), 0); /* sealed and durable: indexed */
	expect_read(log, 0, 0);
	expect_read(log, 1, 1);
	expect_read(log, 2, 2);
	ck_assert_int_eq(tl_log_tick(log, tl_wall_ms()), 1);
	ck_assert_int_eq(tl_log_start_offset(log), 2);
	tl_log_close(log);
	free(a0);
	free(a1);
	free(b);
}
END_TEST

/* ---- direct I/O ---- */

static void setup_buffered(void)
{
	setup_mode(TL_RING_MODE_URING);
	config.direct_io = false;
}

/* Every batch of @all (one record each, at offsets 0..) in [@from, @to) reads back
 * byte for byte. */
static void expect_batches(struct tl_log *log, struct batch **all, int64_t from, int64_t to)
{
	for (int64_t o = from; o < to; o++) {
		struct tl_log_read read;
		ck_assert_int_eq(tl_log_read(log, o, tl_log_high_watermark(log),
					     (int32_t)sizeof(all[0]->bytes), true, &read),
				 TL_OK);
		ck_assert_int_eq(read.first_offset, o);
		ck_assert_int_eq(read.bytes, (int64_t)sizeof(all[0]->bytes));
		uint8_t got[sizeof(all[0]->bytes)];
		ck_assert_int_eq(pread(read.fd, got, sizeof(got), (off_t)read.position),
				 (ssize_t)sizeof(got));
		ck_assert_mem_eq(got, all[o]->bytes, sizeof(got));
		tl_log_read_release(read.segment);
	}
}

/* The fdinfo flags of this process's descriptor of @path opened with O_DIRECT, or -1. */
static bool has_direct_fd(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	bool found = false;
	while ((de = readdir(d)) && !found) {
		char link[300], target[600] = "", info[300];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0 || strcmp(target, path) != 0)
			continue;
		snprintf(info, sizeof(info), "/proc/self/fdinfo/%s", de->d_name);
		FILE *f = fopen(info, "r");
		unsigned long flags = 0;
		char line[200];
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "flags: %lo", &flags) == 1)
				break;
		if (f)
			fclose(f);
		found = (flags & O_DIRECT) != 0;
	}
	closedir(d);
	return found;
}

/* A forked child's own ring: the parent's is shared memory the child must not move. */
static struct tl_ring *child_ring(void)
{
	tl_err err;
	struct tl_ring *own = tl_ring_create(64, TL_RING_MODE_URING, &err);
	if (!own)
		_exit(4);
	return own;
}

/* Appends @count one-record batches to @all from @first, @per_round per drain. */
static void append_rounds(struct tl_log *log, struct batch **all, int first, int count,
			  int per_round)
{
	for (int i = first; i < first + count; i++) {
		if (!all[i])
			all[i] = batch_make(1, 1000 + i, -1, -1, -1);
		ck_assert_int_eq(append(log, all[i]), i);
		if ((i - first + 1) % per_round == 0)
			drain(log);
	}
	drain(log);
}

START_TEST(direct_writes_go_through_o_direct_and_clean_close_cuts_the_preallocation)
{
	struct tl_log *log = log_open();
	ck_assert(tl_log_is_direct(log));
	char path[400], real[PATH_MAX];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_ptr_nonnull(realpath(path, real));
	ck_assert(has_direct_fd(real));
	struct batch *all[103] = {0};
	append_rounds(log, all, 0, 100, 7); /* 7 x 161 bytes: rounds start mid-block */
	ck_assert_int_eq(file_size(path), config.preallocate_bytes);
	expect_batches(log, all, 0, 100);
	tl_log_close(log);
	ck_assert_int_eq(file_size(path), 100 * ONE_BATCH_BYTES);
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 100);
	expect_batches(log, all, 0, 100);
	append_rounds(log, all, 100, 3, 1); /* the tail block comes back from the file */
	expect_batches(log, all, 0, 103);
	tl_log_close(log);
	for (int i = 0; i < 103; i++)
		free(all[i]);
}
END_TEST

START_TEST(a_sealed_segment_is_cut_back_to_its_last_batch_once_durable)
{
	config.segment_bytes = 30 * ONE_BATCH_BYTES;
	struct tl_log *log = log_open();
	struct batch *all[70] = {0};
	append_rounds(log, all, 0, 70, 4);
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_int_eq(file_size(path), 30 * ONE_BATCH_BYTES);
	path_of(path, sizeof(path), 30, ".log");
	ck_assert_int_eq(file_size(path), 30 * ONE_BATCH_BYTES);
	path_of(path, sizeof(path), 60, ".log");
	ck_assert_int_gt(file_size(path), 10 * ONE_BATCH_BYTES); /* padded, preallocated */
	expect_batches(log, all, 0, 70);
	tl_log_close(log);
	log = log_open();
	expect_batches(log, all, 0, 70);
	tl_log_close(log);
	for (int i = 0; i < 70; i++)
		free(all[i]);
}
END_TEST

START_TEST(a_crash_finds_the_end_inside_preallocated_space)
{
	struct batch *all[60] = {0};
	for (int i = 0; i < 60; i++)
		all[i] = batch_make(1, 1000 + i, -1, -1, -1);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		ring = child_ring();
		struct tl_log *log = log_open();
		append_rounds(log, all, 0, 50, 9);
		_exit(tl_log_high_watermark(log) == 50 ? 0 : 1); /* no close: as kill -9 */
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_int_eq(file_size(path), config.preallocate_bytes);
	struct tl_log *log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 50);
	ck_assert_int_eq(file_size(path), 50 * ONE_BATCH_BYTES);
	for (int i = 0; i < 50; i++) /* the child assigned offsets in its own copies */
		tl_batch_assign(all[i]->bytes, i, 0);
	expect_batches(log, all, 0, 50);
	append_rounds(log, all, 50, 10, 3);
	expect_batches(log, all, 0, 60);
	tl_log_close(log);
	for (int i = 0; i < 60; i++)
		free(all[i]);
}
END_TEST

/* A child appends rounds of 30 batches (4830 bytes: every round rewrites a tail block)
 * and dies by SIGKILL at test.fault.log.crash.point @point of round 3: the reopened log
 * holds every batch of rounds 1 and 2 (acknowledged), maybe some of round 3, each byte
 * for byte, and nothing else. */
static void crash_at(int point)
{
	enum { PER_ROUND = 30, ROUNDS = 4 };
	struct batch *all[PER_ROUND * ROUNDS] = {0};
	for (int i = 0; i < PER_ROUND * ROUNDS; i++)
		all[i] = batch_make(1, 1000 + i, -1, -1, -1);
	config.test_crash_point = point;
	config.test_crash_round = 3;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		ring = child_ring();
		struct tl_log *log = log_open();
		append_rounds(log, all, 0, PER_ROUND * ROUNDS, PER_ROUND);
		_exit(3); /* the crash point was not reached */
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "point %d: status %d",
		      point, status);
	config.test_crash_point = 0;
	struct tl_log *log = log_open();
	int64_t end = tl_log_end_offset(log);
	ck_assert_int_ge(end, 2 * PER_ROUND);
	ck_assert_int_le(end, 3 * PER_ROUND);
	for (int i = 0; i < end; i++)
		tl_batch_assign(all[i]->bytes, i, 0);
	expect_batches(log, all, 0, end);
	char path[400];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_int_eq(file_size(path), end * ONE_BATCH_BYTES); /* nothing after the end */
	tl_log_close(log);
	for (int i = 0; i < PER_ROUND * ROUNDS; i++)
		free(all[i]);
}

START_TEST(a_kill_at_any_point_of_a_direct_round_loses_no_acknowledged_batch)
{
	for (int point = 1; point <= TL_LOG_CRASH_POINT_MAX; point++) {
		crash_at(point);
		teardown();
		setup_uring();
	}
}
END_TEST

START_TEST(a_truncation_mid_block_rewrites_the_tail_from_the_file)
{
	struct tl_log *log = log_open();
	struct batch *all[40] = {0};
	append_rounds(log, all, 0, 30, 30);
	ck_assert_int_eq(tl_log_truncate_to(log, 17), TL_OK);
	for (int i = 17; i < 40; i++) { /* other bytes than the batches cut */
		free(all[i]);
		all[i] = batch_make(1, 5000 + i, -1, -1, -1);
	}
	append_rounds(log, all, 17, 23, 5);
	expect_batches(log, all, 0, 40);
	tl_log_close(log);
	log = log_open();
	expect_batches(log, all, 0, 40);
	tl_log_close(log);
	for (int i = 0; i < 40; i++)
		free(all[i]);
}
END_TEST

START_TEST(log_direct_io_false_writes_through_the_page_cache)
{
	config.direct_io = false;
	struct tl_log *log = log_open();
	ck_assert(!tl_log_is_direct(log));
	struct batch *all[20] = {0};
	append_rounds(log, all, 0, 20, 6);
	char path[400], real[PATH_MAX];
	path_of(path, sizeof(path), 0, ".log");
	ck_assert_ptr_nonnull(realpath(path, real));
	ck_assert(!has_direct_fd(real));
	ck_assert_int_eq(file_size(path), 20 * ONE_BATCH_BYTES);
	tl_log_close(log);
	for (int i = 0; i < 20; i++)
		free(all[i]);
}
END_TEST

/* ---- read cache (log.cache.bytes) ---- */

/* Runs the ring until no op is queued or in flight (a cold read's chunk included). */
static void ring_drain(void)
{
	while (tl_ring_pending(ring) > 0) {
		tl_ring_submit(ring);
		tl_ring_wait(ring);
	}
}

/* tl_log_read_cached() as a parked fetch sees it: an empty answer while a cold read's
 * chunk is being read, then the read again once the ring ran. */
static tl_err read_cached(struct tl_log *log, int64_t offset, int64_t max_offset, int32_t max_bytes,
			  bool min_one, struct tl_log_read *out)
{
	struct tl_log_cache_stats before, after;
	tl_log_cache_stats(log, &before);
	tl_err err = tl_log_read_cached(log, offset, max_offset, max_bytes, min_one, true, out);
	tl_log_cache_stats(log, &after);
	if (err == TL_OK && after.readahead_waits > before.readahead_waits) {
		ck_assert_int_eq(out->bytes, 0);
		ck_assert_ptr_null(out->release);
		ring_drain();
		err = tl_log_read_cached(log, offset, max_offset, max_bytes, min_one, true, out);
	}
	return err;
}

/* read_cached() at @offset: checks that it came from the read cache (@from_memory) or
 * not (then, on a direct log, an O_DIRECT read into memory, else a file range), that it
 * starts at @offset's batch and holds exactly the bytes of all[first..] for @count
 * batches. */
static void expect_cached(struct tl_log *log, struct batch **all, int64_t offset,
			  int64_t max_offset, int32_t max_bytes, bool min_one, bool from_memory,
			  int64_t first, int count)
{
	struct tl_log_cache_stats before, after;
	tl_log_cache_stats(log, &before);
	struct tl_log_read read;
	ck_assert_int_eq(read_cached(log, offset, max_offset, max_bytes, min_one, &read), TL_OK);
	ck_assert_int_eq(read.bytes, (int64_t)count * ONE_BATCH_BYTES);
	if (count == 0) {
		ck_assert_ptr_null(read.release);
		return;
	}
	tl_log_cache_stats(log, &after);
	bool hit = after.hits > before.hits;
	ck_assert_msg(from_memory == hit, "offset %lld: from %s, want %s", (long long)offset,
		      hit ? "the cache" : "the file", from_memory ? "the cache" : "the file");
	/* Not the cache: from a chunk read ahead or a synchronous O_DIRECT read (memory),
	 * else the file range. */
	bool cold_memory = after.readahead_hits > before.readahead_hits ||
			   after.direct_reads > before.direct_reads;
	if (!hit)
		ck_assert_int_eq(cold_memory, read.data != NULL);
	ck_assert_int_eq(read.first_offset, first);
	ck_assert_int_eq(read.next_offset, first + count);
	uint8_t *got = malloc((size_t)read.bytes);
	if (read.data) {
		ck_assert_int_eq(read.fd, -1);
		ck_assert_ptr_null(read.segment);
		memcpy(got, read.data, (size_t)read.bytes);
	} else {
		ck_assert_int_eq(pread(read.fd, got, (size_t)read.bytes, (off_t)read.position),
				 (ssize_t)read.bytes);
	}
	for (int i = 0; i < count; i++)
		ck_assert_mem_eq(got + i * ONE_BATCH_BYTES, all[first + i]->bytes, ONE_BATCH_BYTES);
	free(got);
	read.release(read.ref);
}

/* A direct log without the read cache, so every read is cold, holding @count one-record
 * batches (all[]) appended in rounds of up to 50; read-ahead chunks of @chunk bytes. */
static struct tl_log *cold_log(struct batch **all, int count, int64_t chunk)
{
	config.cache_bytes = 0;
	tl_log_readahead_bytes_set(chunk);
	struct tl_log *log = log_open();
	append_rounds(log, all, 0, count, count < 50 ? count : 50);
	return log;
}

static void cold_log_close(struct tl_log *log, struct batch **all, int count)
{
	ring_drain();
	tl_log_close(log);
	tl_log_readahead_bytes_set((int64_t)4 << 20);
	for (int i = 0; i < count; i++)
		free(all[i]);
}

/* Chunks of ten batches: the cache holds the newest 31..40 batches. */
#define CACHE_TEST_BYTES (4 * 10 * ONE_BATCH_BYTES)

START_TEST(recent_reads_come_from_memory_and_older_ones_from_the_file)
{
	config.cache_bytes = CACHE_TEST_BYTES;
	struct tl_log *log = log_open();
	struct batch *all[120] = {0};
	append_rounds(log, all, 0, 100, 7);
	struct tl_log_cache_stats st;
	tl_log_cache_stats(log, &st);
	ck_assert_int_eq(st.bytes, 40 * ONE_BATCH_BYTES); /* chunks 60-69 .. 90-99 */
	expect_cached(log, all, 99, 100, 1 << 20, true, true, 99, 1);
	expect_cached(log, all, 70, 100, 1 << 20, true, true, 70, 10); /* to the chunk's end */
	expect_cached(log, all, 60, 100, 1 << 20, true, true, 60, 10);
	expect_cached(log, all, 59, 100, 1 << 20, true, false, 59, 41); /* evicted: the file */
	expect_cached(log, all, 0, 100, 1 << 20, true, false, 0, 100);
	/* The same limits as the file: max_offset, max_bytes, KIP-74's min_one. */
	expect_cached(log, all, 93, 97, 1 << 20, true, true, 93, 4);
	expect_cached(log, all, 93, 93, 1 << 20, true, true, 93, 0);
	expect_cached(log, all, 75, 100, 3 * ONE_BATCH_BYTES + 5, false, true, 75, 3);
	expect_cached(log, all, 75, 100, 5, true, true, 75, 1);
	expect_cached(log, all, 75, 100, 5, false, true, 75, 0);
	expect_cached(log, all, 100, 100, 1 << 20, true, true, 100, 0);
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.hits, 6);
	ck_assert_uint_eq(st.misses, 2);
	ck_assert_uint_eq(st.hit_bytes, (1 + 10 + 10 + 4 + 3 + 1) * ONE_BATCH_BYTES);
	/* A read being sent keeps its bytes while the chunk is reused. */
	struct tl_log_read held;
	ck_assert_int_eq(tl_log_read_cached(log, 60, 100, 1 << 20, true, true, &held), TL_OK);
	ck_assert_ptr_nonnull(held.data);
	append_rounds(log, all, 100, 20, 3); /* 100-119: chunks 60-69, 70-79 reused */
	for (int i = 0; i < 10; i++)
		ck_assert_mem_eq(held.data + i * ONE_BATCH_BYTES, all[60 + i]->bytes,
				 ONE_BATCH_BYTES);
	held.release(held.ref);
	/* From the chunk the read at 0 left (batches 0-99): cut at its end. */
	expect_cached(log, all, 75, 120, 1 << 20, true, false, 75, 25);
	expect_cached(log, all, 80, 120, 1 << 20, true, true, 80, 10);
	expect_cached(log, all, 110, 120, 1 << 20, true, true, 110, 10);
	tl_log_close(log);
	/* Reopened: the cache starts empty, the file answers. */
	log = log_open();
	expect_cached(log, all, 110, 120, 1 << 20, true, false, 110, 10);
	tl_log_close(log);
	for (int i = 0; i < 120; i++)
		free(all[i]);
}
END_TEST

START_TEST(truncation_and_roll_empty_the_read_cache)
{
	config.cache_bytes = CACHE_TEST_BYTES;
	config.segment_bytes = 50 * ONE_BATCH_BYTES;
	struct tl_log *log = log_open();
	struct batch *all[70] = {0};
	append_rounds(log, all, 0, 30, 30);
	expect_cached(log, all, 25, 30, 1 << 20, true, true, 25, 5);
	ck_assert_int_eq(tl_log_truncate_to(log, 17), TL_OK);
	struct tl_log_cache_stats st;
	tl_log_cache_stats(log, &st);
	ck_assert_int_eq(st.bytes, 0);
	for (int i = 17; i < 30; i++) { /* other bytes at the same offsets */
		free(all[i]);
		all[i] = batch_make(1, 5000 + i, -1, -1, -1);
	}
	append_rounds(log, all, 17, 13, 13);
	expect_cached(log, all, 10, 30, 1 << 20, true, false, 10, 20);
	expect_cached(log, all, 17, 30, 1 << 20, true, true, 17, 10);
	expect_cached(log, all, 29, 30, 1 << 20, true, true, 29, 1);
	/* Roll at 50: the new segment's batches only. */
	append_rounds(log, all, 30, 25, 25);
	expect_cached(log, all, 49, 55, 1 << 20, true, false, 49, 1);
	expect_cached(log, all, 50, 55, 1 << 20, true, true, 50, 5);
	/* A follower's whole truncation. */
	ck_assert_int_eq(tl_log_truncate_fully(log, 200), TL_OK);
	tl_log_cache_stats(log, &st);
	ck_assert_int_eq(st.bytes, 0);
	tl_log_close(log);
	for (int i = 0; i < 70; i++)
		free(all[i]);
}
END_TEST

/* A read that waits for its chunk: answered empty, nothing to release. */
static void expect_pending(struct tl_log *log, int64_t offset, int64_t max_offset,
			   int32_t max_bytes)
{
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read_cached(log, offset, max_offset, max_bytes, true, true, &read),
			 TL_OK);
	ck_assert_int_eq(read.bytes, 0);
	ck_assert_ptr_null(read.release);
}

/* Consumers at four places hold the four slots (chunks of 16 KiB, about 101 batches):
 * the chunk being served from is not the one its next chunk's read takes when the others
 * are in flight, so it keeps serving. */
START_TEST(the_chunk_being_served_keeps_its_slot)
{
	enum { COUNT = 500 };
	struct batch *all[COUNT] = {0};
	struct tl_log *log = cold_log(all, COUNT, 16384);
	expect_pending(log, 0, COUNT, 10 * ONE_BATCH_BYTES);
	ring_drain(); /* the chunk of batches 0-100 is read, nothing served from it yet */
	int64_t far[] = {190, 290, 390}; /* three more chunks, left in flight */
	for (int i = 0; i < 3; i++) {
		expect_pending(log, far[i], COUNT, 10 * ONE_BATCH_BYTES);
	}
	struct tl_log_cache_stats before, after;
	tl_log_cache_stats(log, &before);
	expect_cached(log, all, 0, COUNT, 10 * ONE_BATCH_BYTES, true, false, 0, 10);
	expect_cached(log, all, 10, COUNT, 10 * ONE_BATCH_BYTES, true, false, 10, 10);
	tl_log_cache_stats(log, &after);
	ck_assert_uint_eq(after.readahead_hits - before.readahead_hits, 2);
	ck_assert_uint_eq(after.readahead_waits, before.readahead_waits);
	cold_log_close(log, all, COUNT);
}
END_TEST

/* The batch that a chunk holds only the start of is read from the next chunk: while that
 * one is in flight the read waits for it. */
START_TEST(a_batch_across_a_chunk_end_waits_for_the_next_chunk)
{
	enum { COUNT = 300 };
	struct batch *all[COUNT] = {0};
	struct tl_log *log = cold_log(all, COUNT, 16384);
	struct tl_log_read read;
	expect_pending(log, 0, COUNT, 10 * ONE_BATCH_BYTES);
	ring_drain();
	/* Served from the chunk of batches 0-100 (101 from byte 16,261 goes past 16,384);
	 * the next chunk's read goes out and is left in flight. */
	ck_assert_int_eq(tl_log_read_cached(log, 0, COUNT, 10 * ONE_BATCH_BYTES, true, true, &read),
			 TL_OK);
	ck_assert_int_eq(read.bytes, 10 * ONE_BATCH_BYTES);
	read.release(read.ref);
	expect_pending(log, 101, COUNT, 10 * ONE_BATCH_BYTES);
	ring_drain();
	expect_cached(log, all, 101, COUNT, 10 * ONE_BATCH_BYTES, true, false, 101, 10);
	struct tl_log_cache_stats st;
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.readahead_waits, 2);
	ck_assert_uint_eq(st.direct_reads, 2);
	cold_log_close(log, all, COUNT);
}
END_TEST

/* A read that may not wait (a fetch with max_wait_ms 0, or at its deadline) is read now,
 * synchronously: with no chunk at all, and while a chunk holding it is still being
 * read. */
START_TEST(a_read_that_may_not_wait_is_read_now)
{
	struct batch *all[20] = {0};
	struct tl_log *log = cold_log(all, 20, (int64_t)4 << 20);
	struct tl_log_read read;
	ck_assert_int_eq(tl_log_read_cached(log, 4, 20, 1 << 20, true, false, &read), TL_OK);
	ck_assert_int_eq(read.bytes, 16 * ONE_BATCH_BYTES);
	ck_assert_ptr_nonnull(read.data);
	ck_assert_mem_eq(read.data, all[4]->bytes, ONE_BATCH_BYTES);
	read.release(read.ref);
	/* A waiting read sends a chunk's read; before it completes, one that cannot wait. */
	expect_pending(log, 2, 20, 1 << 20);
	ck_assert_int_eq(tl_log_read_cached(log, 3, 20, 1 << 20, true, false, &read), TL_OK);
	ck_assert_int_eq(read.bytes, 17 * ONE_BATCH_BYTES);
	ck_assert_ptr_nonnull(read.data);
	ck_assert_mem_eq(read.data, all[3]->bytes, ONE_BATCH_BYTES);
	read.release(read.ref);
	struct tl_log_cache_stats st;
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.readahead_waits, 1);
	ck_assert_uint_eq(st.readahead_hits, 0);
	ck_assert_uint_eq(st.direct_reads, 2); /* the two synchronous reads */
	cold_log_close(log, all, 20);
}
END_TEST

/* A truncation drops the chunks read ahead: the offsets it cut are written again with
 * other bytes at the same positions, and a read sees those. */
START_TEST(truncation_drops_the_chunks_read_ahead)
{
	struct batch *all[30] = {0};
	struct tl_log *log = cold_log(all, 30, (int64_t)4 << 20);
	expect_cached(log, all, 5, 30, 1 << 20, true, false, 5, 25);
	ck_assert_int_eq(tl_log_truncate_to(log, 17), TL_OK);
	for (int i = 17; i < 30; i++) {
		free(all[i]);
		all[i] = batch_make(1, 5000 + i, -1, -1, -1);
	}
	append_rounds(log, all, 17, 13, 13);
	expect_cached(log, all, 10, 30, 1 << 20, true, false, 10, 20);
	ck_assert_int_eq(tl_log_truncate_fully(log, 100), TL_OK);
	cold_log_close(log, all, 30);
}
END_TEST

START_TEST(log_cache_bytes_0_and_buffered_logs_read_the_file)
{
	config.cache_bytes = 0;
	struct tl_log *log = log_open();
	struct batch *all[40] = {0};
	append_rounds(log, all, 0, 20, 20);
	expect_cached(log, all, 15, 20, 1 << 20, true, false, 15, 5);
	struct tl_log_cache_stats st;
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.hits + st.misses + (uint64_t)st.bytes, 0);
	/* A direct log's cold read is an O_DIRECT read into memory, from any offset: one
	 * chunk from the read's block (0) to the segment's end, read ahead while the first
	 * read waited; the reads after it come from that chunk. */
	ck_assert_uint_eq(st.direct_reads, 1);
	ck_assert_uint_eq(st.direct_read_bytes, 20 * ONE_BATCH_BYTES);
	ck_assert_uint_eq(st.readahead_waits, 1);
	expect_cached(log, all, 3, 20, 1 << 20, true, false, 3, 17);
	expect_cached(log, all, 19, 20, 1 << 20, true, false, 19, 1);
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.direct_reads, 1);
	ck_assert_uint_eq(st.readahead_hits, 3);
	ck_assert_uint_eq(st.readahead_waits, 1);
	tl_log_close(log); /* frees the chunk: its bytes go back to the process's limit */
	/* Past the process's limit on bytes held by cold reads: the file range. A chunk of
	 * the 20 batches holds 4 KiB (its size) plus 4 KiB. */
	ck_assert_int_eq(ONE_BATCH_BYTES, 161);
	log = log_open();
	tl_log_direct_read_limit_set(8191);
	expect_cached(log, all, 10, 20, 1 << 20, true, false, 10, 10);
	struct tl_log_read file;
	ck_assert_int_eq(tl_log_read_cached(log, 10, 20, 1 << 20, true, true, &file), TL_OK);
	ck_assert_ptr_null(file.data); /* no room: the file range */
	ck_assert_int_ge(file.fd, 0);
	file.release(file.ref);
	tl_log_direct_read_limit_set(8192);
	expect_cached(log, all, 10, 20, 1 << 20, true, false, 10, 10); /* room: a chunk */
	tl_log_close(log);
	log = log_open();
	expect_cached(log, all, 0, 20, 1 << 20, true, false, 0, 20); /* room again */
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.direct_reads, 1);
	/* An asynchronous read that fails: synchronous O_DIRECT reads from then on. */
	tl_log_close(log);
	log = log_open();
	tl_ring_fault_set(ring, TL_RING_OP_READ, EIO, 1, false);
	expect_cached(log, all, 7, 20, 1 << 20, true, false, 7, 13);
	expect_cached(log, all, 9, 20, 1 << 20, true, false, 9, 11);
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.readahead_hits, 0);
	ck_assert_uint_eq(st.direct_reads, 2);
	ck_assert_uint_eq(st.direct_read_bytes, 24 * ONE_BATCH_BYTES);
	tl_log_direct_read_limit_set((int64_t)256 << 20);
	tl_log_close(log);
	config.cache_bytes = CACHE_TEST_BYTES;
	config.direct_io = false;
	log = log_open();
	append_rounds(log, all, 20, 20, 20);
	expect_cached(log, all, 35, 40, 1 << 20, true, false, 35, 5);
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.direct_reads, 0); /* a buffered log sends the file range */
	tl_log_close(log);
	for (int i = 0; i < 40; i++)
		free(all[i]);
}
END_TEST

/* A consumer far behind reads a direct log in fetches of up to 20 batches. Chunks of
 * 16 KiB (101 whole batches of 161 bytes and part of the next): only its first read
 * waits; each chunk's first read sends the next chunk's read, which completes while the
 * consumer works (the ring runs between reads), from the batch the chunk cut, so a read
 * across a chunk's end is answered whole from the next one. Every byte is the log's. */
START_TEST(cold_reads_are_read_ahead)
{
	enum { COUNT = 300 };
	struct batch *all[COUNT] = {0};
	struct tl_log *log = cold_log(all, COUNT, 16384);
	int64_t offset = 0;
	int reads = 0, cut = 0;
	while (offset < COUNT) {
		struct tl_log_read read;
		ck_assert_int_eq(
			read_cached(log, offset, COUNT, 20 * ONE_BATCH_BYTES + 5, true, &read),
			TL_OK);
		ck_assert_msg(read.data != NULL, "offset %lld: bytes %lld", (long long)offset,
			      (long long)read.bytes);
		ck_assert_int_eq(read.first_offset, offset);
		ck_assert_int_eq(read.bytes % ONE_BATCH_BYTES, 0);
		int64_t count = read.bytes / ONE_BATCH_BYTES;
		ck_assert_int_gt(count, 0);
		ck_assert_int_le(count, 20);
		ck_assert_int_eq(read.next_offset, offset + count);
		for (int64_t i = 0; i < count; i++)
			ck_assert_mem_eq(read.data + i * ONE_BATCH_BYTES, all[offset + i]->bytes,
					 ONE_BATCH_BYTES);
		if (count < 20 && offset + count < COUNT)
			cut++;
		offset = read.next_offset;
		read.release(read.ref);
		reads++;
		ring_drain(); /* the consumer's turn: the next chunk's read completes */
	}
	struct tl_log_cache_stats st;
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.readahead_waits, 1);
	ck_assert_uint_eq(st.readahead_hits, (uint64_t)reads);
	ck_assert_int_eq(cut, 0); /* across a boundary: from the next chunk, whole */
	/* 48,300 bytes in chunks of 16 KiB, each from the block of the batch its elder cut:
	 * four reads, the blocks they share read twice. */
	ck_assert_msg(st.direct_reads == 4, "%llu reads of %llu bytes",
		      (unsigned long long)st.direct_reads,
		      (unsigned long long)st.direct_read_bytes);
	ck_assert_uint_le(st.direct_read_bytes, COUNT * ONE_BATCH_BYTES + 3 * 4096);
	/* From the chunks in memory, the same limits as the file: max_offset (the high
	 * watermark, the LSO), max_bytes, KIP-74's min_one. */
	expect_cached(log, all, 250, 255, 1 << 20, true, false, 250, 5);
	expect_cached(log, all, 250, 250, 1 << 20, true, false, 250, 0);
	expect_cached(log, all, 260, COUNT, 3 * ONE_BATCH_BYTES + 5, false, false, 260, 3);
	expect_cached(log, all, 260, COUNT, 5, true, false, 260, 1);
	expect_cached(log, all, 260, COUNT, 5, false, false, 260, 0);
	tl_log_cache_stats(log, &st);
	ck_assert_uint_eq(st.readahead_waits, 1);
	cold_log_close(log, all, COUNT);
}
END_TEST

/* True when /tmp takes O_DIRECT (not tmpfs). */
static bool direct_is_available(void)
{
	char path[] = "/tmp/tally-log-dio-XXXXXX";
	int fd = mkstemp(path);
	if (fd == -1)
		return false;
	close(fd);
	fd = open(path, O_WRONLY | O_DIRECT);
	unlink(path);
	if (fd == -1)
		return false;
	close(fd);
	return true;
}

static TCase *direct_cases(void)
{
	TCase *tc = tcase_create("direct");
	tcase_add_checked_fixture(tc, setup_uring, teardown);
	tcase_add_test(tc,
		       direct_writes_go_through_o_direct_and_clean_close_cuts_the_preallocation);
	tcase_add_test(tc, a_sealed_segment_is_cut_back_to_its_last_batch_once_durable);
	tcase_add_test(tc, a_crash_finds_the_end_inside_preallocated_space);
	tcase_add_test(tc, a_kill_at_any_point_of_a_direct_round_loses_no_acknowledged_batch);
	tcase_add_test(tc, a_truncation_mid_block_rewrites_the_tail_from_the_file);
	tcase_add_test(tc, log_direct_io_false_writes_through_the_page_cache);
	tcase_add_test(tc, recent_reads_come_from_memory_and_older_ones_from_the_file);
	tcase_add_test(tc, truncation_and_roll_empty_the_read_cache);
	tcase_add_test(tc, log_cache_bytes_0_and_buffered_logs_read_the_file);
	tcase_add_test(tc, cold_reads_are_read_ahead);
	tcase_add_test(tc, truncation_drops_the_chunks_read_ahead);
	tcase_add_test(tc, a_read_that_may_not_wait_is_read_now);
	tcase_add_test(tc, the_chunk_being_served_keeps_its_slot);
	tcase_add_test(tc, a_batch_across_a_chunk_end_waits_for_the_next_chunk);
	return tc;
}

static TCase *cases(const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, appends_are_acknowledged_only_once_durable_and_in_order);
	tcase_add_test(tc, reads_stop_at_batch_boundaries_and_min_one_returns_one_batch);
	tcase_add_test(tc, clean_reopen_keeps_everything_and_continues_at_the_next_offset);
	tcase_add_test(tc, missing_or_bad_index_files_are_rebuilt);
	tcase_add_test(tc, torn_tail_is_cut_at_the_last_whole_batch);
	tcase_add_test(tc, garbled_byte_cuts_the_log_at_its_batch);
	tcase_add_test(tc, a_torn_sealed_segment_removes_the_segments_after_it);
	tcase_add_test(tc, retention_deletes_whole_segments_the_active_one_once_rolled);
	tcase_add_test(tc, a_deleted_segment_is_freed_and_closed_by_the_closer_thread);
	tcase_add_test(tc, failed_fdatasync_takes_the_partition_offline);
	tcase_add_test(tc, failed_fdatasync_of_a_replicated_log_keeps_the_tail);
	tcase_add_test(tc,
		       delete_records_moves_the_start_durably_and_retention_drops_whole_segments);
	tcase_add_test(tc, offset_for_timestamp_finds_the_first_batch_at_or_after);
	tcase_add_test(tc, producer_dedupe_survives_a_clean_restart);
	tcase_add_test(tc, producer_dedupe_survives_a_crash);
	tcase_add_test(tc, producer_dedupe_is_rebuilt_by_full_replay_without_snapshots);
	tcase_add_test(tc, truncated_snapshots_fall_back_to_replay);
	tcase_add_test(tc, producer_state_does_not_expire_past_the_newest_batch_at_open);
	tcase_add_test(tc, producer_state_outlives_retention_through_snapshots);
	tcase_add_test(tc, remove_deletes_the_partition_directory);
	tcase_add_test(tc, lso_stops_at_the_oldest_open_transaction_until_its_marker_is_durable);
	tcase_add_test(tc, aborted_index_and_open_transactions_survive_a_clean_restart);
	tcase_add_test(tc, aborted_index_and_open_transactions_are_rebuilt_after_a_crash);
	tcase_add_test(tc, aborted_index_is_rebuilt_by_full_replay_without_snapshots);
	tcase_add_test(tc, a_marker_of_an_older_coordinator_is_fenced);
	tcase_add_test(tc, a_marker_of_an_older_producer_epoch_is_refused);
	tcase_add_test(tc, a_damaged_txnindex_is_rebuilt_and_written_back);
	tcase_add_test(tc, an_empty_txnindex_after_a_crash_is_rebuilt);
	tcase_add_test(tc, a_cut_short_txnindex_after_a_crash_is_rebuilt);
	tcase_add_test(tc, a_cut_short_timeindex_after_a_crash_is_rebuilt);
	tcase_add_test(tc, a_zero_filled_timeindex_after_a_crash_is_rebuilt);
	tcase_add_test(tc, a_zero_filled_or_cut_short_offset_index_is_rebuilt);
	tcase_add_test(tc, index_files_without_a_trailer_are_rebuilt_once);
	tcase_add_test(tc, index_files_naming_another_segment_end_are_rebuilt);
	tcase_add_test(tc, an_index_trailer_refuses_changed_entries_counts_and_kinds);
	tcase_add_test(tc, garbled_offsets_in_a_trusted_segment_fail_the_replay_cleanly);
	tcase_add_test(tc,
		       an_append_during_a_sync_is_written_at_once_but_durable_after_the_next_sync);
	tcase_add_test(tc, the_high_watermark_moves_in_offset_order_across_overlapped_rounds);
	tcase_add_test(tc, a_failed_write_during_a_sync_fails_every_waiter);
	tcase_add_test(tc, a_write_that_transfers_nothing_fails);
	tcase_add_test(tc, close_and_remove_wait_for_both_stages);
	tcase_add_test(tc, a_roll_during_a_sync_keeps_the_old_segment_until_it_is_durable);
	return tc;
}

/* True when an io_uring ring can be set up here (not under seccomp or
 * kernel.io_uring_disabled); TALLY_IO_ENGINE does not change the answer. */
static bool uring_is_available(void)
{
	tl_err err;
	struct tl_ring *probe = tl_ring_create(8, TL_RING_MODE_URING, &err);
	if (!probe)
		return false;
	tl_ring_destroy(probe);
	return true;
}

int main(void)
{
	Suite *s = suite_create("log");
	if (uring_is_available()) {
		suite_add_tcase(s, cases("io_uring", setup_uring));
		/* log.direct.io=false: the fallback passes the same cases. */
		suite_add_tcase(s, cases("io_uring-buffered", setup_buffered));
		if (direct_is_available())
			suite_add_tcase(s, direct_cases());
		else
			printf("SKIP: log direct case: /tmp does not take O_DIRECT\n");
	} else
		/* tests/run-unit.sh shows this line and fails on it in CI. */
		printf("SKIP: log io_uring case: io_uring is unavailable here\n");
	suite_add_tcase(s, cases("sync", setup_sync));
	return tl_check_run(s);
}
