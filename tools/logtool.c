/* logtool.c - `tally log dump|check PATH`: offline inspection of a broker's data files,
 * in the formats log/log.h describes (like Kafka's kafka-dump-log):
 *   <base>.log        record batches; each is checked whole (length, magic, CRC-32C,
 *                     offsets that follow the previous batch) as recovery does
 *   <base>.index      (u32 relative offset, u32 position) big-endian: each entry must
 *                     name a batch that starts at that position with that offset
 *   <base>.timeindex  (i64 timestamp, u32 relative offset): non-decreasing timestamps
 *   <base>.txnindex   34-byte aborted-transaction entries, markers inside the segment
 *                     Each index file ends with a trailer (log.h, tl_log_index_check:
 *                     entry count, the segment's end offset, CRC-32C): dump shows it,
 *                     check verifies it and its end offset against the segment. A file
 *                     without one (cut short, zero-filled, or from before trailers) is
 *                     reported; the broker rebuilds it at its next open.
 *   <offset>.snapshot producer state, decoded with tl_pstate_decode (CRC-32C)
 *   leader-epoch-checkpoint  "0\n<count>\n<epoch> <start offset>\n...": strictly
 *                     increasing; checked against the batches' partitionLeaderEpoch
 *                     (each batch's epoch is that of the entry covering its offset, and
 *                     each entry starts at a batch; an entry at or past the log end is
 *                     an epoch without batches yet, dropped at the next open)
 * PATH is a log.dirs directory, a partition directory or one file. Files are mapped
 * read-only; nothing is ever written. Meant for a stopped broker: a running one may be
 * mid-write at the tail of the active segment.
 * (1) A problem is printed once, with the file, the batch offset and position.
 * (2) A batch whose framing holds (length, magic) but whose CRC or contents are bad is
 *     reported and skipped; scanning a segment stops only where framing is lost. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "log/log.h"
#include "log/producer_state.h"
#include "protocol/batch.h"
#include "protocol/records.h"

#define INDEX_ENTRY_BYTES     8
#define TIMEINDEX_ENTRY_BYTES 12
#define TXNINDEX_ENTRY_BYTES  34
#define LOG_DIR_ENTRIES_MAX   1000000
#define EPOCH_CHECKPOINT      "leader-epoch-checkpoint"
#define CLEANER_CHECKPOINT    "cleaner-offset-checkpoint"
#define FAILED_MARKER         "log-failed-durable-offset"

/* One framed batch of a partition, in offset order, for the checkpoint check. */
struct seen_batch {
	int64_t base_offset;
	int64_t last_offset;
	int32_t epoch;
	bool ok; /* passed its checks: its header is trusted */
};

struct logtool {
	const struct cli *cli;
	bool check;   /* check: report problems; dump: print contents */
	bool records; /* dump --records */
	bool json;
	struct cli_node *doc;      /* --json: {"files": [...], "problems": [...]} */
	struct cli_node *files;    /* --json */
	struct cli_node *problems; /* --json */
	int64_t problem_count;
	int64_t segment_count;
	int64_t batch_count;
	int64_t record_count;
	int64_t file_count;
	struct seen_batch *seen; /* the partition's batches, while one is walked */
	size_t seen_count;
	size_t seen_cap;
	bool seeing; /* collect into seen: a whole partition directory is walked */
};

/* What a segment scan learned, for checking its index files. */
struct segment_scan {
	int64_t base_offset; /* from the file name */
	int64_t next_offset; /* after the last good batch */
	int64_t *positions;  /* of each good batch */
	int64_t *offsets;    /* base offset of each good batch */
	size_t count;
	size_t cap;
	int64_t good_bytes; /* prefix of whole batches that could be framed */
	int64_t file_bytes;
	bool scanned;
};

struct mapped {
	const uint8_t *data;
	size_t len;
	void *map;
};

static void problem(struct logtool *lt, const char *path, int64_t offset, int64_t position,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void problem(struct logtool *lt, const char *path, int64_t offset, int64_t position,
		    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lt->problem_count++;
	if (lt->json) {
		struct cli_node *p = cli_add_object(lt->problems, NULL);
		cli_add_str(p, "file", path);
		if (offset >= 0)
			cli_add_int(p, "offset", offset);
		if (position >= 0)
			cli_add_int(p, "position", position);
		cli_add_str(p, "error", msg);
		return;
	}
	char where[128] = "";
	if (offset >= 0 && position >= 0)
		snprintf(where, sizeof(where),
			 " offset %" PRId64 " (position %" PRId64 "):", offset, position);
	else if (position >= 0)
		snprintf(where, sizeof(where), " position %" PRId64 ":", position);
	printf("%s:%s %s\n", path, where, msg);
}

static bool map_file(struct logtool *lt, const char *path, struct mapped *m)
{
	memset(m, 0, sizeof(*m));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		problem(lt, path, -1, -1, "cannot open: %s", strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) == -1) {
		problem(lt, path, -1, -1, "cannot stat: %s", strerror(errno));
		close(fd);
		return false;
	}
	if (st.st_size > 0) {
		m->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m->map == MAP_FAILED) {
			problem(lt, path, -1, -1, "cannot map: %s", strerror(errno));
			close(fd);
			m->map = NULL;
			return false;
		}
		m->data = m->map;
		m->len = (size_t)st.st_size;
	}
	close(fd);
	return true;
}

static void unmap_file(struct mapped *m)
{
	if (m->map)
		munmap(m->map, m->len);
	memset(m, 0, sizeof(*m));
}

/* The number in a name like 00000000000000000042.log, or -1. */
static int64_t name_offset(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	int64_t v = 0;
	int digits = 0;
	for (; *base >= '0' && *base <= '9'; base++, digits++)
		v = v * 10 + (*base - '0');
	return digits == 20 && *base == '.' ? v : -1;
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* ---- segments ---- */

static void scan_push(struct segment_scan *scan, int64_t position, int64_t offset)
{
	if (scan->count == scan->cap) {
		size_t cap = scan->cap ? scan->cap * 2 : 256;
		int64_t *p = realloc(scan->positions, cap * sizeof(*p));
		int64_t *o = p ? realloc(scan->offsets, cap * sizeof(*o)) : NULL;
		if (p)
			scan->positions = p;
		if (!p || !o)
			return;
		scan->offsets = o;
		scan->cap = cap;
	}
	scan->positions[scan->count] = position;
	scan->offsets[scan->count] = offset;
	scan->count++;
}

static const char *codec_name(enum tl_compression c)
{
	static const char *const names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
	return (unsigned)c < 5 ? names[c] : "unknown";
}

static void dump_records(struct logtool *lt, struct cli_node *batch_node, const uint8_t *data,
			 size_t len)
{
	struct tl_records_iter iter;
	tl_records_iter_init(&iter, data, len);
	struct tl_batch_header h;
	struct cli_node *recs = batch_node ? cli_add_array(batch_node, "records") : NULL;
	if (tl_records_iter_next_batch(&iter, &h, NULL, NULL) == TL_OK) {
		struct tl_record r;
		tl_err err;
		while ((err = tl_records_iter_next(&iter, &r)) == TL_OK) {
			lt->record_count++;
			if (recs) {
				struct cli_node *n = cli_add_object(recs, NULL);
				cli_add_int(n, "offset", r.offset);
				cli_add_int(n, "timestamp", r.timestamp_ms);
				cli_add_int(n, "sequence", r.sequence);
				cli_add_bytes(n, "key", r.key.ptr, r.key.len);
				cli_add_bytes(n, "value", r.value.ptr, r.value.len);
				struct cli_node *hs = cli_add_array(n, "headers");
				for (int32_t i = 0; i < r.header_count; i++) {
					struct cli_node *hn = cli_add_object(hs, NULL);
					cli_add_bytes(hn, "key", r.headers[i].key.ptr,
						      r.headers[i].key.len);
					cli_add_bytes(hn, "value", r.headers[i].value.ptr,
						      r.headers[i].value.len);
				}
				continue;
			}
			char ts[40];
			cli_format_time(r.timestamp_ms, ts, sizeof(ts));
			printf("  | offset %" PRId64 " timestamp %s sequence %d key ", r.offset, ts,
			       r.sequence);
			if (r.key.len < 0)
				fputs("null", stdout);
			else
				cli_escape_encode(stdout, r.key.ptr, (size_t)r.key.len);
			fputs(" value ", stdout);
			if (r.value.len < 0)
				fputs("null", stdout);
			else
				cli_escape_encode(stdout, r.value.ptr, (size_t)r.value.len);
			for (int32_t i = 0; i < r.header_count; i++) {
				fputs(i ? "," : " headers ", stdout);
				cli_escape_encode(stdout, r.headers[i].key.ptr,
						  (size_t)TL_MAX(r.headers[i].key.len, 0));
				fputc('=', stdout);
				cli_escape_encode(stdout, r.headers[i].value.ptr,
						  (size_t)TL_MAX(r.headers[i].value.len, 0));
			}
			fputc('\n', stdout);
		}
		if (err != TL_ERR_NOT_FOUND && !recs)
			printf("  | records cannot be read: %s\n", tl_err_message(err));
	}
	tl_records_iter_deinit(&iter);
}

static void dump_batch(struct logtool *lt, const struct tl_batch_header *h, const uint8_t *data,
		       size_t size, int64_t position, bool crc_ok)
{
	int control = tl_batch_is_control(h) ? tl_batch_control_type(data, size) : -1;
	const char *control_name = control == TL_BATCH_CONTROL_COMMIT  ? "COMMIT"
				   : control == TL_BATCH_CONTROL_ABORT ? "ABORT"
								       : "unknown";
	char base_ts[40], max_ts[40];
	cli_format_time(h->base_timestamp, base_ts, sizeof(base_ts));
	cli_format_time(h->max_timestamp, max_ts, sizeof(max_ts));
	printf("baseOffset %" PRId64 " lastOffset %" PRId64 " count %d position %" PRId64
	       " size %zu magic %d crc 0x%08x%s codec %s%s%s%s%s producerId %" PRId64
	       " producerEpoch %d baseSequence %d leaderEpoch %d %s %s maxTimestamp %s\n",
	       h->base_offset, tl_batch_last_offset(h), h->records_count, position, size, h->magic,
	       h->crc, crc_ok ? "" : " (BAD)", codec_name(tl_batch_compression(h)),
	       tl_batch_is_transactional(h) ? " transactional" : "",
	       tl_batch_is_control(h) ? " control=" : "",
	       tl_batch_is_control(h) ? control_name : "",
	       (h->attributes & TL_BATCH_ATTR_LOG_APPEND_TIME) ? " logAppendTime" : "",
	       h->producer_id, h->producer_epoch, h->base_sequence, h->partition_leader_epoch,
	       (h->attributes & TL_BATCH_ATTR_DELETE_HORIZON) ? "deleteHorizon" : "baseTimestamp",
	       base_ts, max_ts);
	if (lt->records && !tl_batch_is_control(h))
		dump_records(lt, NULL, data, size);
}

static void dump_batch_json(struct logtool *lt, struct cli_node *batches,
			    const struct tl_batch_header *h, const uint8_t *data, size_t size,
			    int64_t position, bool crc_ok)
{
	struct cli_node *b = cli_add_object(batches, NULL);
	cli_add_int(b, "base_offset", h->base_offset);
	cli_add_int(b, "last_offset", tl_batch_last_offset(h));
	cli_add_int(b, "count", h->records_count);
	cli_add_int(b, "position", position);
	cli_add_int(b, "size", (int64_t)size);
	cli_add_int(b, "magic", h->magic);
	cli_add_int(b, "crc", h->crc);
	cli_add_bool(b, "crc_ok", crc_ok);
	cli_add_str(b, "codec", codec_name(tl_batch_compression(h)));
	cli_add_bool(b, "transactional", tl_batch_is_transactional(h));
	cli_add_bool(b, "control", tl_batch_is_control(h));
	if (tl_batch_is_control(h)) {
		int control = tl_batch_control_type(data, size);
		cli_add_str(b, "control_type",
			    control == TL_BATCH_CONTROL_COMMIT  ? "COMMIT"
			    : control == TL_BATCH_CONTROL_ABORT ? "ABORT"
								: "unknown");
	}
	cli_add_int(b, "producer_id", h->producer_id);
	cli_add_int(b, "producer_epoch", h->producer_epoch);
	cli_add_int(b, "base_sequence", h->base_sequence);
	cli_add_int(b, "partition_leader_epoch", h->partition_leader_epoch);
	cli_add_int(b, "base_timestamp", h->base_timestamp);
	cli_add_int(b, "delete_horizon", /* KIP-534: baseTimestamp holds it */
		    (h->attributes & TL_BATCH_ATTR_DELETE_HORIZON) ? h->base_timestamp : -1);
	cli_add_int(b, "max_timestamp", h->max_timestamp);
	if (lt->records && !tl_batch_is_control(h))
		dump_records(lt, b, data, size);
}

enum batch_verdict {
	BATCH_OK,
	BATCH_BAD,      /* reported; its framing holds, so the scan goes on after it */
	BATCH_UNFRAMED, /* reported; nothing after it can be found */
};

/* Checks one batch of @size bytes at @at (the length field already fits the file). */
static enum batch_verdict batch_check(struct logtool *lt, const char *path, const uint8_t *at,
				      size_t size, int64_t position, int64_t expected,
				      struct tl_batch_header *h)
{
	const char *why = NULL;
	/* A compacted segment's batches may be thinned and leave offset holes (log/cleaner.h):
	 * an offset must only never go backwards. */
	if (tl_batch_validate_stored(at, size, h, &why) == TL_OK) {
		if (expected >= 0 && h->base_offset < expected) {
			problem(lt, path, h->base_offset, position,
				"batch offset %" PRId64
				" does not follow the previous batch (expected %" PRId64 ")",
				h->base_offset, expected);
			return BATCH_BAD;
		}
		return BATCH_OK;
	}
	if (tl_batch_header_decode(at, size, h) != TL_OK) {
		problem(lt, path, (int64_t)tl_be64_get(at), position,
			"bad batch header (magic %d, want 2): %s; recovery truncates here",
			size > TL_BATCH_OFF_MAGIC ? (int8_t)at[TL_BATCH_OFF_MAGIC] : -1,
			why ? why : "invalid");
		return BATCH_UNFRAMED;
	}
	uint32_t computed =
		tl_crc32c(0, at + TL_BATCH_OFF_ATTRIBUTES, size - TL_BATCH_OFF_ATTRIBUTES);
	if (computed != h->crc)
		problem(lt, path, h->base_offset, position,
			"CRC error: stored crc 0x%08x, computed 0x%08x over %zu bytes (batch of offsets %" PRId64
			"..%" PRId64 "); recovery truncates here",
			h->crc, computed, size - TL_BATCH_OFF_ATTRIBUTES, h->base_offset,
			tl_batch_last_offset(h));
	else
		problem(lt, path, h->base_offset, position, "bad batch: %s", why ? why : "invalid");
	return BATCH_BAD;
}

static void seen_push(struct logtool *lt, const struct tl_batch_header *h, bool ok)
{
	if (!lt->seeing)
		return;
	if (lt->seen_count == lt->seen_cap) {
		size_t cap = lt->seen_cap ? lt->seen_cap * 2 : 256;
		struct seen_batch *n = realloc(lt->seen, cap * sizeof(*n));
		TL_ASSERT(n);
		lt->seen = n;
		lt->seen_cap = cap;
	}
	lt->seen[lt->seen_count++] = (struct seen_batch){
		.base_offset = h->base_offset,
		.last_offset = tl_batch_last_offset(h),
		.epoch = h->partition_leader_epoch,
		.ok = ok,
	};
}

/* True when the batch length field at @at (or what is left of it) is zero: log/log.c's
 * recovery ends the log there (preallocated space, a direct write's padding). */
static bool zero_head(const uint8_t *at, size_t left)
{
	size_t n = left < TL_BATCH_LOG_OVERHEAD ? left : TL_BATCH_LOG_OVERHEAD;
	for (size_t i = 0; i < n; i++)
		if (at[i] != 0)
			return false;
	return true;
}

/* Scans (and in dump mode prints) every batch of one .log file. */
static void segment_scan(struct logtool *lt, const char *path, const struct mapped *m,
			 struct segment_scan *scan, struct cli_node *batches)
{
	int64_t pos = 0;
	int64_t expected = -1;
	scan->scanned = true;
	scan->next_offset = scan->base_offset;
	scan->file_bytes = (int64_t)m->len;
	while ((size_t)pos < m->len) {
		size_t left = m->len - (size_t)pos;
		const uint8_t *at = m->data + pos;
		if (zero_head(at, left))
			break; /* preallocated space (log.preallocate) or a direct round's padding:
				* the end of the log, as recovery reads it, not damage */
		if (left < TL_BATCH_LOG_OVERHEAD) {
			problem(lt, path, -1, pos,
				"%zu trailing bytes, too few for a batch header (a torn write; recovery truncates here)",
				left);
			break;
		}
		int64_t size = tl_batch_size(at, left);
		if (size < 0) {
			problem(lt, path, (int64_t)tl_be64_get(at), pos,
				"bad batch length %d (recovery truncates here)",
				(int32_t)tl_be32_get(at + TL_BATCH_OFF_LENGTH));
			break;
		}
		if ((uint64_t)size > left) {
			problem(lt, path, (int64_t)tl_be64_get(at), pos,
				"truncated batch: %" PRId64
				" bytes, %zu left in the file (a torn write; recovery truncates here)",
				size, left);
			break;
		}
		struct tl_batch_header h;
		enum batch_verdict verdict =
			batch_check(lt, path, at, (size_t)size, pos, expected, &h);
		if (verdict == BATCH_UNFRAMED)
			break;
		bool ok = verdict == BATCH_OK;
		if (ok && expected < 0 && h.base_offset < scan->base_offset) {
			problem(lt, path, h.base_offset, pos,
				"first batch offset %" PRId64
				" is below the segment's base offset %" PRId64,
				h.base_offset, scan->base_offset);
			ok = false;
		}
		lt->batch_count++;
		lt->record_count += lt->records ? 0 : h.records_count;
		if (!lt->check && batches)
			dump_batch_json(lt, batches, &h, at, (size_t)size, pos, ok);
		else if (!lt->check)
			dump_batch(lt, &h, at, (size_t)size, pos, ok);
		scan_push(scan, pos, h.base_offset);
		seen_push(lt, &h, ok);
		expected = tl_batch_last_offset(&h) + 1;
		scan->next_offset = expected;
		pos += size;
		scan->good_bytes = pos;
	}
}

/* ---- index files ---- */

/* The index of the batch starting at @position, or -1. */
static int64_t scan_find(const struct segment_scan *scan, int64_t position)
{
	size_t lo = 0, hi = scan->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (scan->positions[mid] < position)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < scan->count && scan->positions[lo] == position ? (int64_t)lo : -1;
}

/* Checks (check) or shows (dump, into @node with --json) the trailer of an index file of
 * @kind; returns how many bytes of entries to read: those the trailer counts, or with a
 * bad trailer the whole file, read as entries for what they are worth. */
static size_t index_trailer(struct logtool *lt, const char *path, const struct mapped *m,
			    enum tl_log_index_kind kind, const struct segment_scan *scan,
			    struct cli_node *node)
{
	uint32_t count = 0;
	int64_t end = -1;
	const char *why = NULL;
	size_t entry = tl_log_index_entry_bytes(kind);
	bool ok = tl_log_index_check(m->data, m->len, kind, &count, &end, &why) == TL_OK;
	if (node) {
		struct cli_node *t = cli_add_object(node, "trailer");
		cli_add_bool(t, "ok", ok);
		if (ok) {
			cli_add_int(t, "entries", count);
			cli_add_int(t, "end_offset", end);
		} else {
			cli_add_str(t, "error", why);
		}
	} else if (!lt->check && ok) {
		printf("trailer: %u entries, segment end offset %" PRId64 ", CRC-32C ok\n", count,
		       end);
	} else if (!lt->check) {
		printf("trailer: bad (%s): the broker rebuilds this file at its next open\n", why);
	}
	if (!ok) {
		if (lt->check)
			problem(lt, path, -1, -1,
				"bad trailer: %s (the broker rebuilds this file from its segment "
				"at its next open)",
				why);
		if (m->len % entry != 0 && lt->check)
			problem(lt, path, -1, -1, "size %zu is not a multiple of %zu", m->len,
				entry);
		return m->len - m->len % entry;
	}
	if (lt->check && scan && scan->scanned && end != scan->next_offset)
		problem(lt, path, end, -1,
			"trailer names end offset %" PRId64 " but the segment ends at %" PRId64
			" (a stale file: the broker rebuilds it)",
			end, scan->next_offset);
	return (size_t)count * entry;
}

static void index_file(struct logtool *lt, const char *path, const struct mapped *m,
		       const struct segment_scan *scan, struct cli_node *node,
		       struct cli_node *entries)
{
	size_t count =
		index_trailer(lt, path, m, TL_LOG_INDEX_OFFSET, scan, node) / INDEX_ENTRY_BYTES;
	int64_t base = name_offset(path);
	for (size_t i = 0; i < count; i++) {
		uint32_t rel = tl_be32_get(m->data + i * INDEX_ENTRY_BYTES);
		uint32_t pos = tl_be32_get(m->data + i * INDEX_ENTRY_BYTES + 4);
		if (entries) {
			struct cli_node *e = cli_add_object(entries, NULL);
			cli_add_int(e, "offset", base + rel);
			cli_add_int(e, "position", pos);
		} else if (!lt->check) {
			printf("offset %" PRId64 " position %u\n", base + rel, pos);
		}
		if (!lt->check)
			continue;
		/* Its offset may lie past the base: a replica's segment can start in a hole
		 * the leader's cleaner left (its placeholder is not replicated). */
		if (i == 0 && pos != 0)
			problem(lt, path, base + rel, pos,
				"the first entry must be the segment's first batch (position 0)");
		if (i > 0 && (rel <= tl_be32_get(m->data + (i - 1) * INDEX_ENTRY_BYTES) ||
			      pos <= tl_be32_get(m->data + (i - 1) * INDEX_ENTRY_BYTES + 4)))
			problem(lt, path, base + rel, pos, "entry %zu does not increase", i);
		if (scan && scan->scanned && (int64_t)pos < scan->good_bytes) {
			int64_t at = scan_find(scan, pos);
			if (at < 0)
				problem(lt, path, base + rel, pos,
					"entry %zu points into the middle of a batch", i);
			else if (scan->offsets[at] != base + rel)
				problem(lt, path, base + rel, pos,
					"entry %zu names offset %" PRId64
					" but the batch there starts at %" PRId64,
					i, base + rel, scan->offsets[at]);
		} else if (scan && scan->scanned && pos >= scan->file_bytes) {
			problem(lt, path, base + rel, pos,
				"entry %zu points past the end of the segment", i);
		}
	}
}

static void timeindex_file(struct logtool *lt, const char *path, const struct mapped *m,
			   const struct segment_scan *scan, struct cli_node *node,
			   struct cli_node *entries)
{
	size_t count =
		index_trailer(lt, path, m, TL_LOG_INDEX_TIME, scan, node) / TIMEINDEX_ENTRY_BYTES;
	int64_t base = name_offset(path);
	int64_t prev_ts = INT64_MIN;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = m->data + i * TIMEINDEX_ENTRY_BYTES;
		int64_t ts = (int64_t)tl_be64_get(e);
		int64_t offset = base + tl_be32_get(e + 8);
		if (entries) {
			struct cli_node *n = cli_add_object(entries, NULL);
			cli_add_int(n, "timestamp", ts);
			cli_add_int(n, "offset", offset);
		} else if (!lt->check) {
			char t[40];
			cli_format_time(ts, t, sizeof(t));
			printf("timestamp %s (%" PRId64 ") offset %" PRId64 "\n", t, ts, offset);
		}
		if (lt->check && ts < prev_ts)
			problem(lt, path, offset, -1, "entry %zu goes back in time", i);
		if (lt->check && scan && scan->scanned && offset >= scan->next_offset)
			problem(lt, path, offset, -1, "entry %zu names an offset past the segment",
				i);
		prev_ts = ts;
	}
}

static void txnindex_file(struct logtool *lt, const char *path, const struct mapped *m,
			  const struct segment_scan *scan, struct cli_node *node,
			  struct cli_node *entries)
{
	size_t count =
		index_trailer(lt, path, m, TL_LOG_INDEX_TXN, scan, node) / TXNINDEX_ENTRY_BYTES;
	int64_t base = name_offset(path);
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = m->data + i * TXNINDEX_ENTRY_BYTES;
		uint16_t version = tl_be16_get(e);
		int64_t pid = (int64_t)tl_be64_get(e + 2), first = (int64_t)tl_be64_get(e + 10);
		int64_t last = (int64_t)tl_be64_get(e + 18), lso = (int64_t)tl_be64_get(e + 26);
		if (entries) {
			struct cli_node *n = cli_add_object(entries, NULL);
			cli_add_int(n, "producer_id", pid);
			cli_add_int(n, "first_offset", first);
			cli_add_int(n, "last_offset", last);
			cli_add_int(n, "last_stable_offset", lso);
		} else if (!lt->check) {
			printf("aborted producerId %" PRId64 " firstOffset %" PRId64
			       " markerOffset %" PRId64 " lastStableOffset %" PRId64 "\n",
			       pid, first, last, lso);
		}
		if (!lt->check)
			continue;
		if (version != 0)
			problem(lt, path, last, -1, "entry %zu has version %u (want 0)", i,
				version);
		if (first > last)
			problem(lt, path, last, -1, "entry %zu starts after its marker", i);
		if (last < base || (scan && scan->scanned && last >= scan->next_offset))
			problem(lt, path, last, -1, "entry %zu's marker is outside the segment", i);
	}
}

static void snapshot_file(struct logtool *lt, const char *path, const struct mapped *m,
			  struct cli_node *node)
{
	struct tl_pstate ps;
	if (tl_pstate_init(&ps) != TL_OK)
		return;
	int64_t offset;
	tl_err err = tl_pstate_decode(&ps, m->data, m->len, &offset);
	if (err != TL_OK) {
		if (lt->check || node)
			problem(lt, path, -1, -1,
				"producer snapshot is truncated or fails its CRC (the broker falls back to an older one)");
		else
			printf("(corrupt: truncated or bad CRC)\n");
		tl_pstate_deinit(&ps);
		return;
	}
	struct cli_node *producers = node ? cli_add_array(node, "producers") : NULL;
	if (node)
		cli_add_int(node, "offset", offset);
	else if (!lt->check)
		printf("snapshot at offset %" PRId64 ", %u producers\n", offset, ps.count);
	for (uint32_t b = 0; !lt->check && b < ps.bucket_count; b++) {
		for (const struct tl_pstate_entry *e = ps.buckets[b]; e; e = e->next) {
			if (producers) {
				struct cli_node *n = cli_add_object(producers, NULL);
				cli_add_int(n, "producer_id", e->producer_id);
				cli_add_int(n, "producer_epoch", e->epoch);
				cli_add_int(n, "coordinator_epoch", e->coordinator_epoch);
				cli_add_int(n, "txn_first_offset", e->txn_first_offset);
				cli_add_int(n, "last_timestamp", e->last_timestamp);
				struct cli_node *bs = cli_add_array(n, "batches");
				for (int i = 0; i < e->batch_count; i++) {
					struct cli_node *bn = cli_add_object(bs, NULL);
					cli_add_int(bn, "first_sequence", e->batches[i].first_seq);
					cli_add_int(bn, "last_sequence", e->batches[i].last_seq);
					cli_add_int(bn, "first_offset", e->batches[i].first_offset);
					cli_add_int(bn, "last_offset", e->batches[i].last_offset);
				}
				continue;
			}
			printf("producerId %" PRId64
			       " producerEpoch %d coordinatorEpoch %d txnFirstOffset %" PRId64
			       " batches",
			       e->producer_id, e->epoch, e->coordinator_epoch, e->txn_first_offset);
			for (int i = 0; i < e->batch_count; i++)
				printf(" [seq %d..%d offsets %" PRId64 "..%" PRId64 "]",
				       e->batches[i].first_seq, e->batches[i].last_seq,
				       e->batches[i].first_offset, e->batches[i].last_offset);
			fputc('\n', stdout);
		}
	}
	tl_pstate_deinit(&ps);
}

/* ---- files and directories ---- */

enum file_kind {
	FILE_LOG,
	FILE_INDEX,
	FILE_TIMEINDEX,
	FILE_TXNINDEX,
	FILE_SNAPSHOT,
	FILE_OTHER,
};

static enum file_kind file_kind(const char *name)
{
	if (has_suffix(name, ".log"))
		return FILE_LOG;
	if (has_suffix(name, ".timeindex"))
		return FILE_TIMEINDEX;
	if (has_suffix(name, ".txnindex"))
		return FILE_TXNINDEX;
	if (has_suffix(name, ".index"))
		return FILE_INDEX;
	if (has_suffix(name, ".snapshot"))
		return FILE_SNAPSHOT;
	return FILE_OTHER;
}

static const char *const kind_names[] = {"segment",  "index",    "timeindex",
					 "txnindex", "snapshot", "other"};

/* Processes one file; @scan is its segment's scan (NULL when checked alone). */
static void one_file(struct logtool *lt, const char *path, struct segment_scan *scan)
{
	enum file_kind kind = file_kind(path);
	if (kind == FILE_OTHER)
		return;
	struct mapped m;
	if (!map_file(lt, path, &m))
		return;
	lt->file_count++;
	struct cli_node *node = NULL, *items = NULL;
	if (lt->json && !lt->check) {
		node = cli_add_object(lt->files, NULL);
		cli_add_str(node, "path", path);
		cli_add_str(node, "type", kind_names[kind]);
		cli_add_int(node, "bytes", (int64_t)m.len);
		if (kind != FILE_SNAPSHOT)
			items = cli_add_array(node, kind == FILE_LOG ? "batches" : "entries");
	} else if (!lt->check) {
		printf("== %s (%s, %zu bytes)\n", path, kind_names[kind], m.len);
	}
	struct segment_scan alone;
	memset(&alone, 0, sizeof(alone));
	switch (kind) {
	case FILE_LOG:
		lt->segment_count++;
		if (!scan)
			scan = &alone;
		scan->base_offset = name_offset(path);
		segment_scan(lt, path, &m, scan, items);
		break;
	case FILE_INDEX:
		index_file(lt, path, &m, scan, node, items);
		break;
	case FILE_TIMEINDEX:
		timeindex_file(lt, path, &m, scan, node, items);
		break;
	case FILE_TXNINDEX:
		txnindex_file(lt, path, &m, scan, node, items);
		break;
	case FILE_SNAPSHOT:
		snapshot_file(lt, path, &m, node);
		break;
	case FILE_OTHER:
		break;
	}
	free(alone.positions);
	free(alone.offsets);
	unmap_file(&m);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entry names of @dir (without . and ..), or NULL. */
static char **dir_list(const char *dir, size_t *count_out)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **names = NULL;
	size_t count = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) && count < LOG_DIR_ENTRIES_MAX) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			char **n = realloc(names, cap * sizeof(*n));
			if (!n)
				break;
			names = n;
		}
		names[count] = strdup(e->d_name);
		if (names[count])
			count++;
	}
	closedir(d);
	if (names)
		qsort(names, count, sizeof(*names), name_cmp);
	*count_out = count;
	return names;
}

static void names_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* ---- leader-epoch checkpoint ---- */

/* Does @offset lie inside a framed batch of the partition, past its base offset? An
 * offset in a hole the cleaner left is not: the batch that started an epoch may be
 * compacted away (issue 17), as in Kafka, and the entry then starts in the hole. */
static bool seen_inside(const struct logtool *lt, int64_t offset)
{
	size_t lo = 0, hi = lt->seen_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (lt->seen[mid].base_offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo: the first batch at or past @offset; the one before starts below it. */
	return lo > 0 && lt->seen[lo - 1].last_offset >= offset;
}

/* Each trusted batch carries the epoch of the entry covering it; each entry inside the
 * log starts at a batch. One problem per run of batches with the same mismatch. */
static void epochs_check(struct logtool *lt, const char *path,
			 const struct tl_log_epoch_entry *entries, size_t count)
{
	size_t j = 0; /* entries[0 .. j) start at or before the batch */
	int64_t reported = -1;
	for (size_t i = 0; i < lt->seen_count; i++) {
		const struct seen_batch *b = &lt->seen[i];
		while (j < count && entries[j].start_offset <= b->base_offset)
			j++;
		if (!b->ok)
			continue;
		int64_t key = (int64_t)j << 32 | (uint32_t)b->epoch;
		if (j > 0 && entries[j - 1].epoch == b->epoch)
			continue;
		if (key == reported)
			continue;
		reported = key;
		if (j == 0)
			problem(lt, path, b->base_offset, -1,
				"batch at offset %" PRId64
				" of leader epoch %d has no checkpoint entry at or before it",
				b->base_offset, b->epoch);
		else if (b->epoch > entries[j - 1].epoch)
			problem(lt, path, b->base_offset, -1,
				"batch at offset %" PRId64
				" of leader epoch %d is covered by the entry of epoch %d (start %" PRId64
				"): the checkpoint lacks epoch %d",
				b->base_offset, b->epoch, entries[j - 1].epoch,
				entries[j - 1].start_offset, b->epoch);
		else
			problem(lt, path, b->base_offset, -1,
				"batch at offset %" PRId64
				" of leader epoch %d is below the entry covering it (epoch %d, start %" PRId64
				")",
				b->base_offset, b->epoch, entries[j - 1].epoch,
				entries[j - 1].start_offset);
	}
	if (lt->seen_count == 0)
		return;
	int64_t first = lt->seen[0].base_offset;
	for (size_t k = 0; k < count; k++) {
		int64_t start = entries[k].start_offset;
		if (start > first && seen_inside(lt, start) &&
		    start <= lt->seen[lt->seen_count - 1].base_offset)
			problem(lt, path, start, -1,
				"checkpoint entry of epoch %d starts at %" PRId64
				", inside a batch, not at its start",
				entries[k].epoch, start);
	}
}

/* Reports (dump) and checks a partition's leader-epoch checkpoint against the batches
 * collected while its segments were scanned. */
static void epoch_checkpoint(struct logtool *lt, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, EPOCH_CHECKPOINT);
	if (access(path, F_OK) != 0) {
		if (!lt->check && !lt->json)
			printf("== %s: absent (the broker rebuilds it from the batches)\n", path);
		return;
	}
	struct mapped m;
	if (!map_file(lt, path, &m))
		return;
	lt->file_count++;
	uint32_t count = 0;
	const char *why = NULL;
	struct tl_log_epoch_entry *entries = NULL;
	tl_err err = tl_log_epochs_decode(m.data, m.len, &entries, &count, &why);
	unmap_file(&m);
	TL_ASSERT(err != TL_ERR_NOMEM);
	if (err != TL_OK) {
		problem(lt, path, -1, -1, "%s", why);
		return;
	}
	if (lt->json && !lt->check) {
		struct cli_node *node = cli_add_object(lt->files, NULL);
		cli_add_str(node, "path", path);
		cli_add_str(node, "type", "leader-epoch-checkpoint");
		struct cli_node *items = cli_add_array(node, "entries");
		for (size_t k = 0; k < count; k++) {
			struct cli_node *e = cli_add_object(items, NULL);
			cli_add_int(e, "epoch", entries[k].epoch);
			cli_add_int(e, "start_offset", entries[k].start_offset);
		}
	} else if (!lt->check) {
		printf("== %s (leader-epoch-checkpoint, %u entries)\n", path, count);
		for (size_t k = 0; k < count; k++)
			printf("epoch %d startOffset %" PRId64 "\n", entries[k].epoch,
			       entries[k].start_offset);
	}
	epochs_check(lt, path, entries, count);
	free(entries);
}

/* A file of @dir holding "<offset>\n" (log.c's checkpoints): false when absent or
 * unreadable, and, with @bad_why, a problem when it holds anything else; else the
 * offset in *@out and the path in @path. */
static bool offset_file(struct logtool *lt, const char *dir, const char *name, const char *bad_why,
			char *path, size_t path_size, long long *out)
{
	snprintf(path, path_size, "%s/%s", dir, name);
	if (access(path, F_OK) != 0)
		return false;
	struct mapped m;
	if (!map_file(lt, path, &m))
		return false;
	lt->file_count++;
	char text[32] = "";
	memcpy(text, m.data, m.len < sizeof(text) - 1 ? m.len : sizeof(text) - 1);
	unmap_file(&m);
	char *end;
	*out = strtoll(text, &end, 10);
	if (end == text || *end != '\n' || *out < 0) {
		problem(lt, path, -1, -1, "%s", bad_why);
		return false;
	}
	return true;
}

/* The compaction checkpoint: "<first dirty offset>\n" (log.c, "Compaction"). */
static void cleaner_checkpoint(struct logtool *lt, const char *dir)
{
	char path[4096];
	long long offset;
	if (!offset_file(lt, dir, CLEANER_CHECKPOINT,
			 "not \"<offset>\\n\"; the broker starts compaction over", path,
			 sizeof(path), &offset))
		return; /* never compacted, or reported */
	if (lt->json && !lt->check) {
		struct cli_node *node = cli_add_object(lt->files, NULL);
		cli_add_str(node, "path", path);
		cli_add_str(node, "type", "cleaner-offset-checkpoint");
		cli_add_int(node, "first_dirty_offset", offset);
	} else if (!lt->check) {
		printf("== %s (cleaner-offset-checkpoint)\nfirstDirtyOffset %lld: compaction has "
		       "cleaned below it\n",
		       path, offset);
	}
}

/* The marker a failed single-node log leaves (log.c, failed_marker_write): the next
 * open cuts the log at the durable end it names. Not a problem of the files: a note
 * (stderr in check mode, so that check's verdict stays about the bytes). */
static void failed_marker(struct logtool *lt, const char *dir)
{
	char path[4096];
	long long offset;
	if (!offset_file(lt, dir, FAILED_MARKER,
			 "not \"<offset>\\n\"; the broker ignores it and keeps the tail", path,
			 sizeof(path), &offset))
		return;
	if (lt->json && !lt->check) {
		struct cli_node *node = cli_add_object(lt->files, NULL);
		cli_add_str(node, "path", path);
		cli_add_str(node, "type", "log-failed-durable-offset");
		cli_add_int(node, "durable_end_offset", offset);
	} else {
		fprintf(lt->check ? stderr : stdout,
			"%s%s (log-failed-durable-offset)\ndurableEndOffset %lld: a write or sync "
			"failed; the next open cuts the log there\n",
			lt->check ? "note: " : "== ", path, offset);
	}
}

/* A partition directory: each segment first, then its index files against it. */
static void partition_dir(struct logtool *lt, const char *dir, char **names, size_t count)
{
	char path[4096];
	lt->seeing = true;
	lt->seen_count = 0;
	for (size_t i = 0; i < count; i++) {
		if (file_kind(names[i]) != FILE_LOG)
			continue;
		struct segment_scan scan;
		memset(&scan, 0, sizeof(scan));
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		one_file(lt, path, &scan);
		size_t stem = strlen(names[i]) - strlen(".log");
		static const char *const suffixes[] = {".index", ".timeindex", ".txnindex"};
		for (size_t s = 0; s < 3; s++) {
			snprintf(path, sizeof(path), "%s/%.*s%s", dir, (int)stem, names[i],
				 suffixes[s]);
			if (access(path, F_OK) == 0)
				one_file(lt, path, &scan);
		}
		free(scan.positions);
		free(scan.offsets);
	}
	lt->seeing = false;
	epoch_checkpoint(lt, dir);
	cleaner_checkpoint(lt, dir);
	failed_marker(lt, dir);
	for (size_t i = 0; i < count; i++) {
		if (file_kind(names[i]) != FILE_SNAPSHOT)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		one_file(lt, path, NULL);
	}
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool names_have_logs(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (file_kind(names[i]) == FILE_LOG)
			return true;
	return false;
}

static int walk(struct logtool *lt, const char *path)
{
	if (!is_dir(path)) {
		if (access(path, R_OK) != 0) {
			cli_error(lt->cli, "%s: %s", path, strerror(errno));
			return CLI_EXIT_NOT_FOUND;
		}
		if (file_kind(path) == FILE_OTHER) {
			cli_error(lt->cli,
				  "%s: not a .log, .index, .timeindex, .txnindex or .snapshot file",
				  path);
			return CLI_EXIT_USAGE;
		}
		one_file(lt, path, NULL);
		return CLI_EXIT_OK;
	}
	size_t count = 0;
	char **names = dir_list(path, &count);
	if (!names && count == 0 && access(path, R_OK) != 0) {
		cli_error(lt->cli, "%s: %s", path, strerror(errno));
		return CLI_EXIT_NOT_FOUND;
	}
	if (names_have_logs(names, count)) {
		partition_dir(lt, path, names, count);
	} else {
		/* A log.dirs directory: every partition directory in it. */
		char sub[4096];
		for (size_t i = 0; i < count; i++) {
			if (names[i][0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, names[i]);
			if (!is_dir(sub))
				continue;
			size_t n = 0;
			char **inner = dir_list(sub, &n);
			if (names_have_logs(inner, n) || strrchr(names[i], '-'))
				partition_dir(lt, sub, inner, n);
			names_free(inner, n);
		}
	}
	names_free(names, count);
	return CLI_EXIT_OK;
}

static int log_usage(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct logtool *lt = ctx;
	(void)arg;
	if (opt == 'r') {
		lt->records = true;
		return 0;
	}
	if (opt == 'j') {
		lt->json = true;
		return 0;
	}
	return cli_usage(cli, "log", "unexpected option");
}

int cli_log(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(cli, "log", "log wants a verb: dump or check");
	const char *verb = argv[1];
	struct logtool lt;
	memset(&lt, 0, sizeof(lt));
	lt.cli = cli;
	if (strcmp(verb, "check") == 0)
		lt.check = true;
	else if (strcmp(verb, "dump") != 0)
		return cli_usage(cli, "log", "unknown verb \"%s\"; use dump or check", verb);
	static const struct option opts[] = {
		{"records", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		CLI_GLOBAL_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	int rc;
	int first = cli_parse_options(cli, "log", argc - 1, argv + 1, CLI_GLOBAL_SHORT "r", opts,
				      log_usage, &lt, &rc);
	if (first < 0)
		return rc;
	if (cli->format == CLI_FORMAT_JSON)
		lt.json = true;
	if (argc - 1 - first < 1)
		return cli_usage(cli, "log", "log %s wants a directory or file", verb);
	if (lt.json) {
		lt.doc = cli_node_object();
		lt.files = cli_add_array(lt.doc, "files");
		lt.problems = cli_add_array(lt.doc, "problems");
	}
	rc = CLI_EXIT_OK;
	for (int i = 1 + first; i < argc && rc == CLI_EXIT_OK; i++)
		rc = walk(&lt, argv[i]);
	free(lt.seen);
	if (lt.json) {
		cli_add_int(lt.doc, "segments", lt.segment_count);
		cli_add_int(lt.doc, "batches", lt.batch_count);
		cli_add_int(lt.doc, "records", lt.record_count);
		cli_add_bool(lt.doc, "ok", lt.problem_count == 0);
		struct cli json_cli = *cli;
		json_cli.format = CLI_FORMAT_JSON;
		cli_node_print(&json_cli, lt.doc, stdout);
		cli_node_destroy(lt.doc);
	} else if (lt.check && rc == CLI_EXIT_OK) {
		printf("%s: %" PRId64 " files, %" PRId64 " segments, %" PRId64 " batches, %" PRId64
		       " records; %" PRId64 " problem%s\n",
		       lt.problem_count ? "FAILED" : "ok", lt.file_count, lt.segment_count,
		       lt.batch_count, lt.record_count, lt.problem_count,
		       lt.problem_count == 1 ? "" : "s");
	}
	if (rc != CLI_EXIT_OK)
		return rc;
	if (lt.file_count == 0 && lt.check) {
		cli_error(cli, "no log files found under the given path");
		return CLI_EXIT_NOT_FOUND;
	}
	return lt.problem_count ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
