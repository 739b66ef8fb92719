/* cleaner_test.c - log compaction through log.h: the latest value per key survives with
 * its original offset, tombstones go after delete.retention.ms, a small dedupe buffer
 * spills into several passes, the background pass runs from tl_log_tick, producer state
 * and aborted transactions stay right, and a crash (a real _exit in a forked child) at
 * every point of the swap leaves a log that reopens with every latest value. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "common/buf.h"
#include "common/tests/check_run.h"
#include "common/time.h"
#include "log/cleaner.h"
#include "log/log.h"
#include "protocol/records.h"

#define KEYS        40
#define ROUNDS      12
#define VALUE_BYTES 32

static char dir[320];
static char root[256];
static struct tl_ring *ring;
static struct tl_log_config config;

/* Appended batches' bytes: the log borrows them until durable; freed at teardown. */
static uint8_t **owned;
static size_t owned_count;
static size_t owned_cap;

/* The model: the latest value per key ("" for a tombstone), and its offset. */
static char latest[KEYS][VALUE_BYTES];
static int64_t latest_offset[KEYS];
static int64_t latest_ts[KEYS]; /* its timestamp; INT64_MIN: not checked */

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/tally-cleaner-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/t-0", root);
	tl_err err;
	ring = tl_ring_create(64, TL_RING_MODE_SYNC, &err);
	ck_assert_ptr_nonnull(ring);
	tl_log_config_defaults(&config);
	config.segment_bytes = 1024;
	config.cleanup_compact = true;
	config.cleanup_delete = false;
	config.cleaner_backoff_ms = 0;
	memset(latest, 0, sizeof(latest));
	for (int k = 0; k < KEYS; k++) {
		latest_offset[k] = -1;
		latest_ts[k] = INT64_MIN;
	}
	tl_log_cleaner_fault_set(0, false);
}

static void teardown(void)
{
	tl_ring_destroy(ring);
	for (size_t i = 0; i < owned_count; i++)
		free(owned[i]);
	free(owned);
	owned = NULL;
	owned_count = owned_cap = 0;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	ck_assert_int_eq(system(cmd), 0);
}

static struct tl_log *log_open(void)
{
	struct tl_log *log;
	ck_assert_int_eq(tl_log_open(dir, &config, ring, &log), TL_OK);
	return log;
}

static void drain(struct tl_log *log)
{
	tl_log_flush(log);
	tl_ring_submit(ring);
	while (tl_log_high_watermark(log) < tl_log_end_offset(log) && tl_log_is_writable(log))
		tl_ring_wait(ring);
}

static void own(uint8_t *p)
{
	if (owned_count == owned_cap) {
		owned_cap = owned_cap ? owned_cap * 2 : 64;
		owned = realloc(owned, owned_cap * sizeof(*owned));
		ck_assert_ptr_nonnull(owned);
	}
	owned[owned_count++] = p;
}

/* Appends @buf's finished batch (not yet durable: see drain). */
static tl_err append_raw(struct tl_log *log, struct tl_buf *buf,
			 struct tl_log_append_result *result)
{
	uint8_t *data = malloc(buf->len);
	ck_assert_ptr_nonnull(data);
	memcpy(data, buf->data, buf->len);
	own(data);
	struct tl_batch_header h;
	ck_assert_int_eq(tl_batch_validate(data, buf->len, &h, NULL), TL_OK);
	return tl_log_append(log, data, buf->len, &h, result);
}

/* Appends one record: key k%03d, @value (NULL: a tombstone), timestamp @ts. */
static int64_t put(struct tl_log *log, int key, const char *value, int64_t ts, int64_t pid,
		   int32_t seq, bool transactional)
{
	struct tl_records_builder b;
	tl_records_builder_init(&b, TL_COMPRESSION_NONE);
	char k[16];
	snprintf(k, sizeof(k), "k%03d", key);
	struct tl_bytes kb = {(const uint8_t *)k, (int32_t)strlen(k)};
	struct tl_bytes vb = {(const uint8_t *)value, value ? (int32_t)strlen(value) : -1};
	ck_assert_int_eq(tl_records_builder_append(&b, ts, kb, vb, NULL, 0), TL_OK);
	if (pid >= 0)
		tl_records_builder_set_producer(&b, pid, 0, seq, transactional);
	struct tl_buf buf;
	tl_buf_init(&buf);
	ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &buf), TL_OK);
	struct tl_log_append_result result;
	ck_assert_int_eq(append_raw(log, &buf, &result), TL_OK);
	tl_buf_deinit(&buf);
	tl_records_builder_deinit(&b);
	if (!transactional) {
		snprintf(latest[key], VALUE_BYTES, "%s", value ? value : "");
		latest_offset[key] = result.base_offset;
		latest_ts[key] = ts;
	}
	return result.base_offset;
}

/* KEYS keys written ROUNDS times each, every 7th key's last write a tombstone. */
static void populate(struct tl_log *log, int64_t ts)
{
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < KEYS; k++) {
			char v[VALUE_BYTES];
			snprintf(v, sizeof(v), "v%03d-%02d", k, r);
			bool tombstone = r == ROUNDS - 1 && k % 7 == 0;
			put(log, k, tombstone ? NULL : v, ts, -1, -1, false);
		}
	drain(log);
}

/* A pass once everything appended is durable. */
static tl_err compact(struct tl_log *log)
{
	drain(log);
	return tl_log_compact(log, tl_wall_ms());
}

struct seen {
	int64_t records;
	int64_t tombstones;
	int64_t batches;
	int64_t markers;         /* control batches */
	int64_t offset_of[KEYS]; /* latest offset seen per key */
	int64_t timestamp_of[KEYS];
	int64_t horizons; /* batches with a delete horizon */
	char value_of[KEYS][VALUE_BYTES];
	bool aborted_key_seen;
	unsigned codecs;     /* bit per codec of the batches holding records */
	int64_t zstd_values; /* records whose value starts "zstd-" */
	int64_t null_keys;   /* records without a key */
	char null_key_value[VALUE_BYTES];
};

/* Reads the whole log from its start through Fetch's path (tl_log_read) and checks
 * that offsets only grow. */
static void read_all(struct tl_log *log, struct seen *seen)
{
	drain(log);
	memset(seen, 0, sizeof(*seen));
	for (int k = 0; k < KEYS; k++)
		seen->offset_of[k] = -1;
	int64_t offset = tl_log_start_offset(log);
	int64_t previous = -1;
	while (offset < tl_log_high_watermark(log)) {
		struct tl_log_read rd;
		ck_assert_int_eq(
			tl_log_read(log, offset, tl_log_high_watermark(log), 1 << 20, true, &rd),
			TL_OK);
		ck_assert_int_gt(rd.bytes, 0);
		uint8_t *buf = malloc((size_t)rd.bytes);
		ck_assert_int_eq(pread(rd.fd, buf, (size_t)rd.bytes, rd.position), rd.bytes);
		tl_log_read_release(rd.segment);
		struct tl_records_iter it;
		tl_records_iter_init(&it, buf, (size_t)rd.bytes);
		it.verify_crc = true;
		struct tl_batch_header h;
		while (tl_records_iter_next_batch(&it, &h, NULL, NULL) == TL_OK) {
			seen->batches++;
			if (h.attributes & TL_BATCH_ATTR_DELETE_HORIZON)
				seen->horizons++;
			if (tl_batch_is_control(&h))
				seen->markers++;
			if (h.records_count > 0)
				seen->codecs |= 1u << tl_batch_compression(&h);
			ck_assert_int_gt(h.base_offset, previous);
			struct tl_record rec;
			tl_err err;
			while ((err = tl_records_iter_next(&it, &rec)) == TL_OK) {
				ck_assert_int_gt(rec.offset, previous);
				ck_assert_int_le(rec.offset, tl_batch_last_offset(&h));
				previous = rec.offset;
				if (tl_batch_is_control(&h))
					continue;
				seen->records++;
				if (rec.key.len < 0) {
					seen->null_keys++;
					snprintf(seen->null_key_value, VALUE_BYTES, "%.*s",
						 rec.value.len, (const char *)rec.value.ptr);
					continue;
				}
				int key = atoi((const char *)rec.key.ptr + 1);
				ck_assert(key >= 0 && key < KEYS);
				if (tl_batch_is_transactional(&h) && rec.key.ptr[0] == 'k' &&
				    rec.value.len > 0 && rec.value.ptr[0] == 'A')
					seen->aborted_key_seen = true;
				if (rec.value.len >= 5 && memcmp(rec.value.ptr, "zstd-", 5) == 0)
					seen->zstd_values++;
				if (rec.value.len < 0) {
					seen->tombstones++;
					seen->value_of[key][0] = '\0';
				} else {
					snprintf(seen->value_of[key], VALUE_BYTES, "%.*s",
						 rec.value.len, (const char *)rec.value.ptr);
				}
				seen->offset_of[key] = rec.offset;
				seen->timestamp_of[key] = rec.timestamp_ms;
			}
			ck_assert_int_eq(err, TL_ERR_NOT_FOUND);
			previous = tl_batch_last_offset(&h);
			offset = previous + 1;
		}
		tl_records_iter_deinit(&it);
		free(buf);
	}
}

/* Every key's latest value is there, at its original offset. */
static void expect_latest(struct tl_log *log, struct seen *seen)
{
	read_all(log, seen);
	for (int k = 0; k < KEYS; k++) {
		if (latest_offset[k] < 0)
			continue;
		ck_assert_int_eq(seen->offset_of[k], latest_offset[k]);
		ck_assert_str_eq(seen->value_of[k], latest[k]);
		if (latest_ts[k] != INT64_MIN) /* a delete horizon keeps timestamps */
			ck_assert_int_eq(seen->timestamp_of[k], latest_ts[k]);
	}
}

/* Ticks @log about every millisecond, for at most 10 s, until @done holds of its stats. */
static void tick_until(struct tl_log *log, struct tl_log_cleaner_stats *st,
		       bool (*done)(const struct tl_log_cleaner_stats *))
{
	int64_t deadline = tl_mono_ms() + 10000;
	do {
		tl_log_tick(log, tl_wall_ms());
		tl_log_cleaner_stats(log, st);
		usleep(1000);
	} while (!done(st) && tl_mono_ms() < deadline);
}

static bool has_passed(const struct tl_log_cleaner_stats *st)
{
	return st->passes > 0;
}

static bool is_running(const struct tl_log_cleaner_stats *st)
{
	return st->running;
}

static int count_files(const char *suffix)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name), s = strlen(suffix);
		if (len > s && strcmp(de->d_name + len - s, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

START_TEST(the_offset_map_keeps_the_newest_offset_and_reports_full)
{
	struct tl_cleaner_map map;
	ck_assert_int_eq(tl_cleaner_map_init(&map, 10, 24 * 64), TL_OK);
	ck_assert(tl_cleaner_map_put(&map, (const uint8_t *)"a", 1, 5));
	ck_assert(tl_cleaner_map_put(&map, (const uint8_t *)"a", 1, 9));
	ck_assert(tl_cleaner_map_put(&map, (const uint8_t *)"b", 1, 7));
	ck_assert_int_eq(tl_cleaner_map_get(&map, (const uint8_t *)"a", 1), 9);
	ck_assert_int_eq(tl_cleaner_map_get(&map, (const uint8_t *)"b", 1), 7);
	ck_assert_int_eq(tl_cleaner_map_get(&map, (const uint8_t *)"c", 1), -1);
	int put = 0;
	char key[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		if (!tl_cleaner_map_put(&map, (const uint8_t *)key, strlen(key), i))
			break;
		put++;
	}
	ck_assert_int_lt(put, 1000); /* bounded by the buffer */
	ck_assert(!tl_cleaner_map_has_room(&map, 1));
	tl_cleaner_map_deinit(&map);
}
END_TEST

/* The map starts small whatever the hint (a pass over few keys must not allocate and
 * clear a slot per dirty record) and grows within log.cleaner.dedupe.buffer.size. */
START_TEST(the_offset_map_grows_within_its_buffer)
{
	struct tl_cleaner_map map;
	ck_assert_int_eq(tl_cleaner_map_init(&map, 100000000, 24 * 65536), TL_OK);
	ck_assert_uint_le(map.slot_count, 1 << 14);
	char key[16];
	int i = 0;
	for (; i < 100000; i++) {
		tl_err err = tl_cleaner_map_reserve(&map, 1);
		if (err == TL_ERR_LIMIT)
			break;
		ck_assert_int_eq(err, TL_OK);
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert(tl_cleaner_map_put(&map, (const uint8_t *)key, strlen(key), i));
	}
	ck_assert_uint_eq(map.slot_count, 65536);
	ck_assert_int_eq(i, 65536 / 10 * 9);
	for (int k = 0; k < i; k += 997) {
		snprintf(key, sizeof(key), "key-%d", k);
		ck_assert_int_eq(tl_cleaner_map_get(&map, (const uint8_t *)key, strlen(key)), k);
	}
	tl_cleaner_map_deinit(&map);
}
END_TEST

/* The key hash reads words: keys that differ only in trailing zero bytes (the padding
 * of the last word) or in length are still different keys. */
START_TEST(the_offset_map_tells_apart_keys_padded_alike)
{
	static const struct {
		const char *bytes;
		size_t len;
	} keys[] = {{"", 0},         {"\0", 1},         {"\0\0", 2},
		    {"ab", 2},       {"ab\0", 3},       {"ab\0\0\0\0\0\0", 8},
		    {"abcdefgh", 8}, {"abcdefgh\0", 9}, {"abcdefgh\0\0", 10},
		    {"abcdefghi", 9}};
	size_t n = sizeof(keys) / sizeof(keys[0]);
	struct tl_cleaner_map map;
	ck_assert_int_eq(tl_cleaner_map_init(&map, n, 1 << 20), TL_OK);
	for (size_t i = 0; i < n; i++)
		ck_assert(tl_cleaner_map_put(&map, (const uint8_t *)keys[i].bytes, keys[i].len,
					     (int64_t)i));
	ck_assert_uint_eq(map.used, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(
			tl_cleaner_map_get(&map, (const uint8_t *)keys[i].bytes, keys[i].len),
			(int64_t)i);
	tl_cleaner_map_deinit(&map);
}
END_TEST

START_TEST(compaction_keeps_the_latest_value_per_key_at_its_offset)
{
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	int64_t size_before = tl_log_size_bytes(log);
	ck_assert_int_eq(compact(log), TL_OK);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq((int64_t)st.passes, 1);
	ck_assert_int_gt((int64_t)st.segments_cleaned, 0);
	ck_assert_int_lt(tl_log_size_bytes(log), size_before / 2);
	struct seen seen;
	expect_latest(log, &seen);
	/* Only the active segment keeps more than one record per key. */
	ck_assert_int_lt(seen.records, KEYS * 3);
	ck_assert_int_gt(seen.tombstones, 0); /* delete.retention.ms not yet passed */
	/* Appends go on after the swap, and a clean reopen sees the same. */
	put(log, 1, "after", tl_wall_ms(), -1, -1, false);
	tl_log_close(log);
	log = log_open();
	expect_latest(log, &seen);
	tl_log_close(log);
}
END_TEST

/* The segments a pass replaced are closed off the log thread, by the closer thread: the
 * log's descriptor of each and the pass's dup of it (log.c "closing the files of deleted
 * segments"); a close there may free ~1 GB of blocks. */
START_TEST(the_replaced_segments_are_closed_by_the_closer_thread)
{
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	int before = count_files(".log");
	uint64_t handed = tl_log_closes_handed();
	ck_assert_int_eq(compact(log), TL_OK);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	/* Each output replaced its group: one file renamed over, the others unlinked. */
	int gone = before - count_files(".log") + (int)st.segments_cleaned;
	ck_assert_int_gt(gone, 1);
	ck_assert_uint_ge(tl_log_closes_handed() - handed, 2 * (uint64_t)gone);
	tl_log_closes_drain();
	struct seen seen;
	expect_latest(log, &seen);
	tl_log_close(log);
}
END_TEST

/* Ticks @log at @now_ms (a clock of the test's) until a pass more than @passes has ended,
 * for at most 10 s of real time. */
static void tick_at_until_pass(struct tl_log *log, int64_t now_ms, uint64_t passes)
{
	struct tl_log_cleaner_stats st;
	int64_t deadline = tl_mono_ms() + 10000;
	do {
		tl_log_tick(log, now_ms);
		tl_log_cleaner_stats(log, &st);
		usleep(1000);
	} while (st.passes <= passes && tl_mono_ms() < deadline);
	ck_assert_uint_gt(st.passes, passes);
}

/* Populates @log with timestamps ten seconds old, rolls so that every tombstone is in a
 * sealed segment, and runs a pass; returns the pass's time. */
static int64_t populate_old_and_compact(struct tl_log *log)
{
	populate(log, tl_wall_ms() - 10000);
	for (int i = 0; i < 20; i++)
		put(log, KEYS - 1, "filler", tl_wall_ms(), -1, -1, false);
	drain(log);
	int64_t now = tl_wall_ms();
	ck_assert_int_eq(tl_log_compact(log, now), TL_OK);
	return now;
}

/* KIP-534: a tombstone outlives by delete.retention.ms the pass that first keeps it, not
 * its own timestamp. Tombstones ten times delete.retention.ms old stay through the first
 * pass, which writes their batches with a delete horizon (bit 6, baseTimestamp) and
 * every record's timestamp as it was; a pass before the horizon changes nothing; once it
 * has passed, the tick starts a pass with nothing dirty, and that pass drops them. */
START_TEST(tombstones_go_once_their_delete_horizon_has_passed)
{
	config.delete_retention_ms = 1000;
	struct tl_log *log = log_open();
	int64_t now = populate_old_and_compact(log);
	struct seen seen;
	expect_latest(log, &seen);
	int64_t tombstones = (KEYS + 6) / 7;
	ck_assert_int_eq(seen.tombstones, tombstones);
	ck_assert_int_eq(seen.horizons, tombstones); /* a batch each */
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.horizons_set, tombstones);
	ck_assert_int_eq(st.horizon_next, now + 1000);
	ck_assert_int_eq(tl_log_compact(log, now + 999), TL_OK);
	expect_latest(log, &seen);
	ck_assert_int_eq(seen.tombstones, tombstones);
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.horizons_set, tombstones); /* not set again */
	tick_at_until_pass(log, now + 1000, st.passes);
	read_all(log, &seen);
	ck_assert_int_eq(seen.tombstones, 0);
	for (int k = 0; k < KEYS; k++)
		if (latest[k][0] == '\0')
			ck_assert_int_eq(seen.offset_of[k], -1); /* the key is gone */
		else
			ck_assert_str_eq(seen.value_of[k], latest[k]);
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.horizon_next, INT64_MAX); /* nothing left to wait for */
	tl_log_close(log);
}
END_TEST

/* delete.retention.ms=0: the first pass keeps the tombstones with a horizon at its own
 * time, and the pass the next tick starts drops them (a horizon equal to the pass's time
 * was not noted, and they stayed until new records made the log dirty enough). */
START_TEST(with_no_delete_retention_the_next_tick_drops_the_tombstones)
{
	config.delete_retention_ms = 0;
	struct tl_log *log = log_open();
	int64_t now = populate_old_and_compact(log);
	struct seen seen;
	read_all(log, &seen);
	ck_assert_int_eq(seen.tombstones, (KEYS + 6) / 7);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.horizon_next, now);
	tick_at_until_pass(log, now + 1, st.passes);
	read_all(log, &seen);
	ck_assert_int_eq(seen.tombstones, 0);
	tl_log_close(log);
}
END_TEST

/* A pass a delete horizon started that fails (a sealed segment damaged after the first
 * pass) is tried again after ten minutes, not at every tick: it read the whole log each
 * time (review of the delete horizon). */
START_TEST(a_failing_horizon_pass_is_not_retried_at_every_tick)
{
	config.delete_retention_ms = 1000;
	struct tl_log *log = log_open();
	int64_t now = populate_old_and_compact(log);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	uint64_t passes = st.passes;
	char path[400];
	snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "\xff\xff\xff\xff", 4, 30), 4); /* the first batch's CRC */
	close(fd);
	/* The horizon starts a pass, which fails: the next is due ten minutes later. */
	int64_t deadline = tl_mono_ms() + 10000;
	do {
		tl_log_tick(log, now + 1000);
		tl_log_cleaner_stats(log, &st);
		usleep(1000);
	} while ((st.running || st.horizon_next == now + 1000) && tl_mono_ms() < deadline);
	ck_assert(!st.running);
	ck_assert_uint_eq(st.passes, passes);
	ck_assert_int_eq(st.horizon_next, now + 1000 + 10 * 60 * 1000);
	/* Ticks a second apart start none (each would fail and move it again). */
	for (int i = 0; i < 50; i++) {
		tl_log_tick(log, now + 2000 + i * 1000);
		usleep(1000);
	}
	tl_log_cleaner_stats(log, &st);
	ck_assert(!st.running);
	ck_assert_int_eq(st.horizon_next, now + 1000 + 10 * 60 * 1000);
	tl_log_close(log);
}
END_TEST

/* Appends one batch compressed with @codec holding @count records: key k%03d of
 * @keys[i] (-1: no key), value @values[i]. Returns its base offset. */
static int64_t put_compressed(struct tl_log *log, enum tl_compression codec, int64_t ts,
			      const int *keys, const char *const *values, int count)
{
	struct tl_records_builder b;
	tl_records_builder_init(&b, codec);
	for (int i = 0; i < count; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", keys[i]);
		struct tl_bytes kb = {(const uint8_t *)k, keys[i] < 0 ? -1 : (int32_t)strlen(k)};
		struct tl_bytes vb = {(const uint8_t *)values[i],
				      values[i] ? (int32_t)strlen(values[i]) : -1};
		ck_assert_int_eq(tl_records_builder_append(&b, ts, kb, vb, NULL, 0), TL_OK);
	}
	struct tl_buf buf;
	tl_buf_init(&buf);
	ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &buf), TL_OK);
	struct tl_log_append_result result;
	ck_assert_int_eq(append_raw(log, &buf, &result), TL_OK);
	tl_buf_deinit(&buf);
	tl_records_builder_deinit(&b);
	for (int i = 0; i < count; i++) {
		if (keys[i] < 0)
			continue;
		snprintf(latest[keys[i]], VALUE_BYTES, "%s", values[i] ? values[i] : "");
		latest_offset[keys[i]] = result.base_offset + i;
		latest_ts[keys[i]] = ts;
	}
	return result.base_offset;
}

/* A mapped batch none of whose records is the newest of its key goes from its header
 * alone (not decompressed, its keys not hashed again); one holding a record the map
 * could not take (here: without a key, which only a topic made compacted after the
 * write can hold) is walked and keeps it, its superseded neighbours dropped. */
START_TEST(batches_with_no_survivor_go_from_their_header)
{
	struct tl_log *log = log_open();
	const int dead_keys[] = {7, 8, 9};
	const char *const dead_values[] = {"zstd-7", "zstd-8", "zstd-9"};
	put_compressed(log, TL_COMPRESSION_ZSTD, tl_wall_ms(), dead_keys, dead_values, 3);
	const int orphan_keys[] = {5, -1, 6};
	const char *const orphan_values[] = {"zstd-5", "orphan", "zstd-6"};
	put_compressed(log, TL_COMPRESSION_ZSTD, tl_wall_ms(), orphan_keys, orphan_values, 3);
	populate(log, tl_wall_ms()); /* rewrites every key ROUNDS times */
	ck_assert_int_eq(compact(log), TL_OK);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	/* The zstd batch of dead keys and the batches of the first ROUNDS - 2 rounds at
	 * least (the pass stops short of the newest sealed segment): a group's first and
	 * last batch, left as empty headers, are written from the header too. */
	ck_assert_int_ge(st.batches_emptied_unread, 1 + (ROUNDS - 2) * KEYS);
	ck_assert_int_lt(st.records_kept, st.records_read);
	struct seen seen;
	expect_latest(log, &seen);
	ck_assert_int_eq(seen.null_keys, 1);
	ck_assert_str_eq(seen.null_key_value, "orphan");
	ck_assert_int_eq(seen.zstd_values, 0);
	/* A second pass over a few keys: the clean head before it holds the other keys'
	 * latest values, which this pass's survivors do not name; they stay. */
	for (int k = 0; k < 5; k++)
		put(log, k, "second-pass", tl_wall_ms(), -1, -1, false);
	for (int i = 0; i < 20; i++)
		put(log, KEYS - 1, "filler", tl_wall_ms(), -1, -1, false);
	ck_assert_int_eq(compact(log), TL_OK);
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq((int64_t)st.passes, 2);
	expect_latest(log, &seen);
	ck_assert_int_eq(seen.null_keys, 1);
	tl_log_close(log);
}
END_TEST

/* A pass whose map fills stops at map_end, inside a segment: the batches after it in
 * that segment were not mapped, so the survivors say nothing of them and they stay. */
START_TEST(batches_past_a_full_map_stay)
{
	/* 32 slots: 27 records' keys (the map reserves a slot per record); the two rounds
	 * of keys 0-8 and keys 20-28 fill it, map_end is key 29's offset. */
	config.cleaner_dedupe_buffer_bytes = 24 * 32;
	struct tl_log *log = log_open();
	for (int r = 0; r < 2; r++)
		for (int k = 0; k < 9; k++)
			put(log, k, r ? "second" : "first", tl_wall_ms(), -1, -1, false);
	for (int k = 20; k < KEYS; k++)
		put(log, k, "once", tl_wall_ms(), -1, -1, false);
	for (int i = 0; i < 20; i++)
		put(log, 0, "filler", tl_wall_ms(), -1, -1, false);
	ck_assert_int_eq(compact(log), TL_OK);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq((int64_t)st.passes, 1);
	ck_assert_int_lt(st.first_dirty, latest_offset[KEYS - 1]); /* the map filled */
	ck_assert_int_gt(st.batches_emptied_unread, 0);
	struct seen seen;
	expect_latest(log, &seen);
	tl_log_close(log);
}
END_TEST

/* Compressed batches are read like the others: their keys are mapped, their overwritten
 * records go, and what is left is compressed again with the batch's own codec (zstd here;
 * 113 sees lz4 from kcat), with a delete horizon when a tombstone stays (the records'
 * timestamps re-expressed against it inside the compressed stream). An lz4 batch whose
 * records are all overwritten no longer holds back the tombstone written after it once
 * its horizon has passed. */
START_TEST(compressed_batches_are_cleaned_and_compressed_again_with_their_codec)
{
	config.delete_retention_ms = 1000;
	struct tl_log *log = log_open();
	int64_t old = tl_wall_ms() - 10000;
	const int lkeys[] = {0, 1, 2};
	const char *const lvalues[] = {"l0", "l1", "l2"};
	put_compressed(log, TL_COMPRESSION_LZ4, old, lkeys, lvalues, 3);
	populate(log, old); /* k000's last write is an old tombstone */
	/* zstd: k001 twice (the first goes), k002 once (stays), k003's tombstone. */
	const int zkeys[] = {1, 2, 1, 3};
	const char *const zvalues[] = {"zstd-a", "zstd-b", "zstd-c", NULL};
	int64_t zstd_base =
		put_compressed(log, TL_COMPRESSION_ZSTD, tl_wall_ms() - 5000, zkeys, zvalues, 4);
	for (int i = 0; i < 20; i++)
		put(log, KEYS - 1, "filler", tl_wall_ms(), -1, -1, false);
	drain(log);
	int64_t now = tl_wall_ms();
	ck_assert_int_eq(tl_log_compact(log, now), TL_OK);
	struct seen seen;
	expect_latest(log, &seen); /* both tombstones stay, every timestamp as written */
	ck_assert_int_eq(seen.offset_of[3], zstd_base + 3);
	ck_assert_uint_eq(seen.codecs & (1u << TL_COMPRESSION_LZ4), 0);
	ck_assert_int_eq(seen.zstd_values, 2); /* zstd-a went: the batch was rewritten */
	ck_assert_int_ge(seen.horizons, 2);
	ck_assert_int_eq(tl_log_compact(log, now + 1000), TL_OK);
	read_all(log, &seen);
	ck_assert_int_eq(seen.offset_of[0], -1); /* the tombstone went, and l0 */
	ck_assert_int_eq(seen.offset_of[3], -1);
	ck_assert_int_eq(seen.offset_of[1], zstd_base + 2);
	ck_assert_str_eq(seen.value_of[1], "zstd-c");
	ck_assert_int_eq(seen.timestamp_of[1], latest_ts[1]);
	ck_assert_int_eq(seen.offset_of[2], zstd_base + 1);
	ck_assert_str_eq(seen.value_of[2], "zstd-b");
	ck_assert_uint_eq(seen.codecs & (1u << TL_COMPRESSION_ZSTD), 1u << TL_COMPRESSION_ZSTD);
	ck_assert_int_eq(seen.zstd_values, 2);
	tl_log_close(log);
}
END_TEST

/* A truncation (a follower's) below the first dirty offset lowers the checkpoint,
 * durably: left above it, the records written there next were taken for cleaned, and
 * no pass ever compacted them (stop 37's review, left then). */
START_TEST(a_truncation_below_the_first_dirty_offset_lowers_the_checkpoint)
{
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	populate(log, tl_wall_ms());
	ck_assert_int_eq(compact(log), TL_OK);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	int64_t cleaned = st.first_dirty;
	ck_assert_int_gt(cleaned, KEYS);
	ck_assert_int_eq(tl_log_truncate_to(log, cleaned - KEYS / 2), TL_OK);
	int64_t end = tl_log_end_offset(log);
	ck_assert_int_lt(end, cleaned);
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.first_dirty, end);
	tl_log_close(log);
	/* A crash between the cut and the lowering leaves the old offset in the file: the
	 * open lowers it there too, or it came back once the log grew past it. */
	char path[sizeof(dir) + 32];
	snprintf(path, sizeof(path), "%s/cleaner-offset-checkpoint", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%" PRId64 "\n", cleaned);
	ck_assert_int_eq(fclose(f), 0);
	log = log_open();
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.first_dirty, end);
	populate(log, tl_wall_ms()); /* past the old checkpoint again */
	ck_assert_int_gt(tl_log_end_offset(log), cleaned);
	tl_log_close(log);
	log = log_open();
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.first_dirty, end); /* durable */
	ck_assert_int_eq(compact(log), TL_OK);
	struct seen seen;
	expect_latest(log, &seen);
	tl_log_close(log);
}
END_TEST

START_TEST(a_small_dedupe_buffer_spills_into_several_passes)
{
	config.cleaner_dedupe_buffer_bytes = 24 * 32; /* 32 slots: 28 keys a pass */
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	struct tl_log_cleaner_stats st;
	int passes = 0;
	do {
		ck_assert_int_eq(compact(log), TL_OK);
		tl_log_cleaner_stats(log, &st);
		passes++;
		ck_assert_int_lt(passes, 100);
	} while (st.first_dirty < 400);
	ck_assert_int_gt(passes, 3);
	struct seen seen;
	expect_latest(log, &seen);
	ck_assert_int_lt(seen.records, KEYS * 4);
	tl_log_close(log);
	log = log_open(); /* the checkpoint survives */
	struct tl_log_cleaner_stats again;
	tl_log_cleaner_stats(log, &again);
	ck_assert_int_eq(again.first_dirty, st.first_dirty);
	tl_log_close(log);
}
END_TEST

START_TEST(a_batch_bigger_than_the_map_still_makes_progress)
{
	config.cleaner_dedupe_buffer_bytes = 24 * 16; /* 16 slots: 9 keys (16 / 10 * 9) */
	struct tl_log *log = log_open();
	/* Batches of 30 records, each with every key once. */
	for (int r = 0; r < 6; r++) {
		struct tl_records_builder b;
		tl_records_builder_init(&b, TL_COMPRESSION_NONE);
		for (int k = 0; k < 30; k++) {
			char key[16], v[VALUE_BYTES];
			snprintf(key, sizeof(key), "k%03d", k);
			snprintf(v, sizeof(v), "big-%d-%d", k, r);
			struct tl_bytes kb = {(const uint8_t *)key, 4};
			struct tl_bytes vb = {(const uint8_t *)v, (int32_t)strlen(v)};
			ck_assert_int_eq(
				tl_records_builder_append(&b, tl_wall_ms(), kb, vb, NULL, 0),
				TL_OK);
		}
		struct tl_buf buf;
		tl_buf_init(&buf);
		ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &buf), TL_OK);
		struct tl_log_append_result result;
		ck_assert_int_eq(append_raw(log, &buf, &result), TL_OK);
		for (int k = 0; k < 30; k++) {
			snprintf(latest[k], VALUE_BYTES, "big-%d-%d", k, r);
			latest_offset[k] = result.base_offset + k;
			latest_ts[k] = INT64_MIN;
		}
		tl_buf_deinit(&buf);
		tl_records_builder_deinit(&b);
	}
	populate(log, tl_wall_ms()); /* rolls: the big batches are sealed */
	struct tl_log_cleaner_stats st;
	ck_assert_int_eq(compact(log), TL_OK);
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.first_dirty, 30); /* one batch a pass */
	ck_assert_int_eq(compact(log), TL_OK);
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.first_dirty, 60);
	struct seen seen;
	expect_latest(log, &seen);
	tl_log_close(log);
}
END_TEST

START_TEST(the_background_pass_runs_from_tick_beside_appends)
{
	config.min_cleanable_dirty_ratio = 0.1;
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	struct tl_log_cleaner_stats st;
	int64_t deadline = tl_mono_ms() + 10000;
	int extra = 0;
	do {
		tl_log_tick(log, tl_wall_ms());
		/* Appends while the pass runs: a key written meanwhile is never lost. */
		char v[VALUE_BYTES];
		snprintf(v, sizeof(v), "during-%d", extra++);
		put(log, extra % KEYS, v, tl_wall_ms(), -1, -1, false);
		tl_log_cleaner_stats(log, &st);
		usleep(1000);
	} while (st.passes == 0 && tl_mono_ms() < deadline);
	ck_assert_int_ge((int64_t)st.passes, 1);
	ck_assert_int_gt(st.bytes_read, 0);
	ck_assert_int_eq(st.nice, 19); /* log.cleaner.nice: spare CPU only */
	struct seen seen;
	expect_latest(log, &seen);
	tl_log_close(log);
}
END_TEST

/* A pass that max.compaction.lag.ms makes due keeps a promise: it runs at the process's
 * own priority, not log.cleaner.nice. */
START_TEST(a_pass_past_the_max_compaction_lag_runs_at_normal_priority)
{
	config.min_cleanable_dirty_ratio = 0.1;
	config.max_compaction_lag_ms = 1;
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms() - 1000);
	struct tl_log_cleaner_stats st;
	tick_until(log, &st, has_passed);
	ck_assert_int_ge((int64_t)st.passes, 1);
	ck_assert_int_eq(st.nice, getpriority(PRIO_PROCESS, 0));
	tl_log_close(log);
}
END_TEST

START_TEST(the_last_batch_of_each_producer_survives_for_dedupe)
{
	struct tl_log *log = log_open();
	int32_t seq = 0;
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 4; k++) {
			char v[VALUE_BYTES];
			snprintf(v, sizeof(v), "p%d-%d", k, r);
			put(log, k, v, tl_wall_ms(), 1000, seq++, false);
		}
	populate(log, tl_wall_ms()); /* rolls past the producer's batches */
	ck_assert_int_eq(compact(log), TL_OK);
	tl_log_close(log);
	/* Drop the snapshots: producer state is rebuilt from the compacted log alone. */
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".snapshot") && !strstr(de->d_name, ".clean-shutdown"))
			continue;
		char path[700];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ck_assert_int_eq(unlink(path), 0);
	}
	closedir(d);
	log = log_open();
	struct tl_log_producer producers[4];
	ck_assert_int_eq(tl_log_producers(log, producers, 4), 1);
	ck_assert_int_eq(producers[0].producer_id, 1000);
	ck_assert_int_eq(producers[0].last_sequence, seq - 1);
	/* The next sequence is accepted; a retry of the last one is a duplicate. */
	struct tl_records_builder b;
	tl_records_builder_init(&b, TL_COMPRESSION_NONE);
	struct tl_bytes key = {(const uint8_t *)"k000", 4}, value = {(const uint8_t *)"x", 1};
	tl_records_builder_append(&b, tl_wall_ms(), key, value, NULL, 0);
	tl_records_builder_set_producer(&b, 1000, 0, seq - 1, false);
	struct tl_buf buf;
	tl_buf_init(&buf);
	ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &buf), TL_OK);
	struct tl_log_append_result result;
	ck_assert_int_eq(append_raw(log, &buf, &result), TL_OK);
	ck_assert(result.duplicate);
	tl_buf_reset(&buf);
	tl_records_builder_set_producer(&b, 1000, 0, seq, false);
	ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &buf), TL_OK);
	ck_assert_int_eq(append_raw(log, &buf, &result), TL_OK);
	ck_assert(!result.duplicate);
	tl_buf_deinit(&buf);
	tl_records_builder_deinit(&b);
	tl_log_close(log);
}
END_TEST

START_TEST(aborted_transactions_lose_their_records_and_keep_their_marker)
{
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	/* A transaction on fresh keys, aborted: its values must not shadow the latest. */
	for (int k = 0; k < 5; k++)
		put(log, k, "ABORTED", tl_wall_ms(), 2000, k, true);
	struct tl_buf marker;
	tl_buf_init(&marker);
	ck_assert_int_eq(tl_records_control_marker_build(&marker, false, 2000, 0, 0, tl_wall_ms()),
			 TL_OK);
	struct tl_log_append_result result;
	ck_assert_int_eq(append_raw(log, &marker, &result), TL_OK);
	tl_buf_deinit(&marker);
	populate(log, tl_wall_ms());
	struct seen seen;
	read_all(log, &seen);
	ck_assert(seen.aborted_key_seen);
	ck_assert_int_eq(compact(log), TL_OK);
	expect_latest(log, &seen);
	ck_assert(!seen.aborted_key_seen);
	struct tl_log_aborted_txn a[2];
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, INT64_MAX, a, 2), 1);
	tl_log_close(log);
}
END_TEST

/* Appends a COMMIT or ABORT marker of producer 2000 (epoch 0) stamped @ts. */
static void put_marker(struct tl_log *log, bool commit, int64_t ts)
{
	struct tl_buf marker;
	tl_buf_init(&marker);
	ck_assert_int_eq(tl_records_control_marker_build(&marker, commit, 2000, 0, 0, ts), TL_OK);
	struct tl_log_append_result result;
	ck_assert_int_eq(append_raw(log, &marker, &result), TL_OK);
	tl_buf_deinit(&marker);
}

/* Issue 17: as Kafka's cleaner, a marker goes once a pass met no batch of its
 * transaction (aborted records go first, superseded committed ones too) and it is older
 * than delete.retention.ms; C's marker stays, since C's batch is its producer's last
 * (kept for dedupe) and so always met;
 * read_committed state (the LSO), the latest values and the producer's sequence survive
 * a restart. */
START_TEST(issue17_markers_go_once_their_transaction_is_empty_and_retention_passed)
{
	struct tl_log *log = log_open();
	int64_t old = tl_wall_ms() - 60000;
	populate(log, tl_wall_ms());
	for (int k = 0; k < 5; k++) /* A: aborted */
		put(log, k, "ABORTED", tl_wall_ms(), 2000, k, true);
	put_marker(log, false, old);
	for (int k = 5; k < 10; k++) /* B: committed, then every key written again */
		put(log, k, "B", tl_wall_ms(), 2000, k, true);
	put_marker(log, true, old);
	populate(log, tl_wall_ms());
	int64_t c = put(log, 10, "C", tl_wall_ms(), 2000, 10, true); /* C: stays the latest */
	snprintf(latest[10], VALUE_BYTES, "C");
	latest_offset[10] = c;
	latest_ts[10] = INT64_MIN;
	put_marker(log, true, old);
	populate(log, tl_wall_ms());
	struct seen seen;
	read_all(log, &seen);
	ck_assert_int_eq(seen.markers, 3);
	/* Pass 1 drops A's and B's records, but met their batches: the markers stay. */
	ck_assert_int_eq(compact(log), TL_OK);
	expect_latest(log, &seen);
	ck_assert(!seen.aborted_key_seen);
	ck_assert_int_eq(seen.markers, 3);
	/* Pass 2 meets no batch of A or B: their markers get a delete horizon (Kafka's
	 * rule: a marker's horizon starts once its transaction is empty, not from its own
	 * timestamp, a minute old here), and stay. */
	populate(log, tl_wall_ms());
	drain(log);
	int64_t now = tl_wall_ms();
	ck_assert_int_eq(tl_log_compact(log, now), TL_OK);
	expect_latest(log, &seen);
	ck_assert_int_eq(seen.markers, 3);
	struct tl_log_cleaner_stats st;
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.markers_removed, 0);
	int64_t horizon = now + config.delete_retention_ms;
	ck_assert_int_le(st.horizon_next, horizon);
	/* Pass 3 just before the horizon: nothing goes. */
	ck_assert_int_eq(tl_log_compact(log, horizon - 1), TL_OK);
	read_all(log, &seen);
	ck_assert_int_eq(seen.markers, 3);
	/* Pass 4 at the horizon: A's and B's markers go, C's stays; the fresh tombstones
	 * stay too (this pass gives them their horizon). */
	populate(log, tl_wall_ms());
	drain(log);
	ck_assert_int_eq(tl_log_compact(log, horizon), TL_OK);
	expect_latest(log, &seen);
	ck_assert_int_eq(seen.markers, 1);
	tl_log_cleaner_stats(log, &st);
	ck_assert_int_eq(st.markers_removed, 2);
	ck_assert_int_eq(tl_log_last_stable_offset(log), tl_log_end_offset(log));
	/* A's aborted transaction left the index with its marker: a read_committed reader
	 * would otherwise skip producer 2000's batches up to its next ABORT marker. */
	struct tl_log_aborted_txn a[4];
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, INT64_MAX, a, 4), 0);
	tl_log_close(log);
	/* A crash-like restart replays the compacted log: no transaction is left open. */
	char path[400];
	snprintf(path, sizeof(path), "%s/.clean-shutdown", dir);
	unlink(path);
	log = log_open();
	ck_assert_int_eq(tl_log_last_stable_offset(log), tl_log_end_offset(log));
	ck_assert_int_eq(tl_log_aborted_txns(log, 0, INT64_MAX, a, 4), 0);
	expect_latest(log, &seen);
	ck_assert_int_eq(seen.markers, 1);
	/* The producer's sequence is still known: 11 follows, 13 is out of order. */
	put(log, 11, "D", tl_wall_ms(), 2000, 11, true);
	struct tl_records_builder b;
	tl_records_builder_init(&b, TL_COMPRESSION_NONE);
	struct tl_bytes kb = {(const uint8_t *)"k012", 4}, vb = {(const uint8_t *)"x", 1};
	ck_assert_int_eq(tl_records_builder_append(&b, tl_wall_ms(), kb, vb, NULL, 0), TL_OK);
	tl_records_builder_set_producer(&b, 2000, 0, 13, true);
	struct tl_buf buf;
	tl_buf_init(&buf);
	ck_assert_int_eq(tl_records_builder_finish(&b, NULL, &buf), TL_OK);
	struct tl_log_append_result result;
	ck_assert_int_eq(append_raw(log, &buf, &result), TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	tl_buf_deinit(&buf);
	tl_records_builder_deinit(&b);
	tl_log_close(log);
}
END_TEST

/* Populates and closes the log, then compacts it in a child that dies at @point. */
static void crash_at(int point)
{
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	tl_log_close(log);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct tl_log *child;
		if (tl_log_open(dir, &config, ring, &child) != TL_OK)
			_exit(2);
		tl_log_cleaner_fault_set(point, true);
		tl_log_compact(child, tl_wall_ms());
		_exit(3); /* the point was not reached */
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 86);
}

static void expect_recovered(void)
{
	struct tl_log *log = log_open();
	ck_assert_int_eq(count_files(".cleaned"), 0);
	ck_assert_int_eq(count_files(".swap"), 0);
	struct seen seen;
	expect_latest(log, &seen);
	/* A later pass completes, and a restart after it still has everything. */
	ck_assert_int_eq(compact(log), TL_OK);
	expect_latest(log, &seen);
	ck_assert_int_lt(seen.records, KEYS * 3);
	put(log, 3, "after-crash", tl_wall_ms(), -1, -1, false);
	tl_log_close(log);
	log = log_open();
	expect_latest(log, &seen);
	tl_log_close(log);
}

START_TEST(a_crash_at_any_point_of_the_swap_recovers_every_latest_value)
{
	crash_at(_i);
	expect_recovered();
}
END_TEST

START_TEST(a_failed_swap_takes_the_log_offline_and_a_reopen_finishes_it)
{
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	tl_log_cleaner_fault_set(3, false);
	ck_assert_int_eq(compact(log), TL_ERR_KAFKA_STORAGE_ERROR);
	ck_assert(!tl_log_is_writable(log));
	ck_assert_int_gt(count_files(".swap"), 0);
	tl_log_close(log);
	tl_log_cleaner_fault_set(0, false);
	expect_recovered();
}
END_TEST

START_TEST(an_offset_jump_in_the_active_segment_is_still_damage)
{
	struct tl_log *log = log_open();
	for (int k = 0; k < 3; k++)
		put(log, k, "v", tl_wall_ms(), -1, -1, false);
	drain(log);
	struct tl_log_read rd;
	ck_assert_int_eq(tl_log_read(log, 2, 3, 1 << 20, true, &rd), TL_OK);
	int64_t position = rd.position;
	tl_log_read_release(rd.segment);
	tl_log_close(log);
	/* baseOffset is outside the CRC: move the last batch 5 offsets on, then crash. */
	char path[700];
	snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	uint8_t be[8];
	tl_be64_put(be, 7);
	ck_assert_int_eq(fseek(f, position, SEEK_SET), 0);
	ck_assert_uint_eq(fwrite(be, 1, 8, f), 8);
	fclose(f);
	snprintf(path, sizeof(path), "%s/.clean-shutdown", dir);
	ck_assert_int_eq(unlink(path), 0);
	log = log_open();
	ck_assert_int_eq(tl_log_end_offset(log), 2); /* cut there, as before compaction */
	tl_log_close(log);
}
END_TEST

/* cleanup.policy=compact,delete: retention waits while a pass runs (as Kafka, whose
 * cleaner thread runs both), so the pass ends well with all its groups and no record a
 * discarded group held is taken for clean; retention then deletes what it must. */
START_TEST(retention_beside_a_running_pass_does_not_fail_it)
{
	config.min_cleanable_dirty_ratio = 0.1;
	config.cleanup_delete = true;
	config.retention_ms = -1;
	config.retention_bytes = -1;
	config.cleaner_io_bytes_per_sec = 20000; /* a pass of a few seconds */
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms());
	struct tl_log_cleaner_stats st;
	tick_until(log, &st, is_running);
	ck_assert(st.running);
	config.retention_bytes = tl_log_size_bytes(log) / 2;
	tl_log_set_config(log, &config);
	int64_t start = tl_log_start_offset(log);
	ck_assert_int_eq(tl_log_tick(log, tl_wall_ms()), 0); /* not while the pass runs */
	ck_assert_int_eq(tl_log_start_offset(log), start);
	int64_t deadline = tl_mono_ms() + 40000;
	int deleted = 0;
	do {
		usleep(10000);
		deleted += tl_log_tick(log, tl_wall_ms());
		tl_log_cleaner_stats(log, &st);
	} while (st.running && tl_mono_ms() < deadline);
	ck_assert(!st.running);
	ck_assert_uint_eq(st.passes, 1); /* a failed pass (a cut input) does not count */
	/* Once it ended, retention deletes (of what the pass left, smaller than before). */
	config.retention_bytes = tl_log_size_bytes(log) / 2;
	tl_log_set_config(log, &config);
	deleted += tl_log_tick(log, tl_wall_ms());
	ck_assert_int_gt(deleted, 0);
	ck_assert_int_gt(tl_log_start_offset(log), start);
	tl_log_closes_drain();
	tl_log_close(log);
}
END_TEST

START_TEST(a_policy_without_delete_ignores_retention)
{
	config.retention_ms = 1;
	config.retention_bytes = 0;
	struct tl_log *log = log_open();
	populate(log, tl_wall_ms() - 100000);
	ck_assert_int_eq(tl_log_tick(log, tl_wall_ms()), 0);
	ck_assert_int_eq(tl_log_start_offset(log), 0);
	tl_log_close(log);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cleaner");
	TCase *tc = tcase_create("cleaner");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, the_offset_map_keeps_the_newest_offset_and_reports_full);
	tcase_add_test(tc, the_offset_map_grows_within_its_buffer);
	tcase_add_test(tc, compaction_keeps_the_latest_value_per_key_at_its_offset);
	tcase_add_test(tc, the_replaced_segments_are_closed_by_the_closer_thread);
	tcase_add_test(tc, tombstones_go_once_their_delete_horizon_has_passed);
	tcase_add_test(tc, with_no_delete_retention_the_next_tick_drops_the_tombstones);
	tcase_add_test(tc, a_failing_horizon_pass_is_not_retried_at_every_tick);
	tcase_add_test(tc, compressed_batches_are_cleaned_and_compressed_again_with_their_codec);
	tcase_add_test(tc, a_small_dedupe_buffer_spills_into_several_passes);
	tcase_add_test(tc, a_truncation_below_the_first_dirty_offset_lowers_the_checkpoint);
	tcase_add_test(tc, batches_with_no_survivor_go_from_their_header);
	tcase_add_test(tc, batches_past_a_full_map_stay);
	tcase_add_test(tc, the_offset_map_tells_apart_keys_padded_alike);
	tcase_add_test(tc, a_batch_bigger_than_the_map_still_makes_progress);
	tcase_add_test(tc, the_background_pass_runs_from_tick_beside_appends);
	tcase_add_test(tc, a_pass_past_the_max_compaction_lag_runs_at_normal_priority);
	tcase_add_test(tc, the_last_batch_of_each_producer_survives_for_dedupe);
	tcase_add_test(tc, aborted_transactions_lose_their_records_and_keep_their_marker);
	tcase_add_test(tc, issue17_markers_go_once_their_transaction_is_empty_and_retention_passed);
	tcase_add_loop_test(tc, a_crash_at_any_point_of_the_swap_recovers_every_latest_value, 1, 6);
	tcase_add_test(tc, a_failed_swap_takes_the_log_offline_and_a_reopen_finishes_it);
	tcase_add_test(tc, an_offset_jump_in_the_active_segment_is_still_damage);
	tcase_add_test(tc, a_policy_without_delete_ignores_retention);
	tcase_add_test(tc, retention_beside_a_running_pass_does_not_fail_it);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
