/* fuzz_log.c - libFuzzer target for log recovery (log/log.c tl_log_open) of a damaged
 * partition directory.
 * Once per process a small valid log is written with the real log code: several
 * segments with their .index, .timeindex and .txnindex (aborted and committed
 * transactions, one left open), idempotent producers, a producer-state snapshot, a
 * leader-epoch-checkpoint of two epochs, and the clean-shutdown marker. Each input
 * copies those files to a scratch directory and damages them:
 *   byte 0         bit 0: remove .clean-shutdown (crash recovery), bit 1: remove every
 *                  .index file (a rebuild), bit 2: remove the snapshot
 *   then 6 bytes   [file] [kind] [position u16] [value] [length] per edit of the file
 *   an edit        (picked modulo the file count): 0 xor the byte at position with value,
 *                  1 truncate at position, 2 delete the file, 3 overwrite length bytes
 *                  at position with value, 4 append length bytes of value.
 * Then the log is opened (recovery) and must hold:
 *   - open succeeds (or, where the input garbled bytes inside a .log file, refuses with
 *     CORRUPT: a sealed segment, and after a clean shutdown the active one too, is
 *     trusted as Kafka trusts it, and the producer-state replay stops at a batch header
 *     that does not parse); start <= LSO <= high watermark == end, and end <= the
 *     template's (recovery never invents offsets; but a garbled header in a trusted
 *     segment is read as it stands, as in Kafka: it may move the end, or start a
 *     rebuilt epoch past it); cached epochs and aborted transactions are in
 *     order and inside the log; open transactions start inside it;
 *   - every offset in [start, high watermark) reads (tl_log_read) as a range of whole
 *     bytes inside its file, or fails cleanly (KAFKA_STORAGE_ERROR) where the damage is
 *     inside a sealed segment, which recovery trusts as Kafka does;
 *   - appends work: a new idempotent producer's batch and a plain batch are appended,
 *     become durable and read back at their offsets;
 *   - after a clean close each segment's .txnindex holds exactly its aborted
 *     transactions (a rebuilt index is written back), and a second open gives the same
 *     state: offsets, LSO, aborted transactions, producers, epochs, max timestamp.
 *     (Not after bytes changed in place inside a .log file: a garbled batch in a
 *     trusted segment is read as it stands. A garbled .txnindex fails its trailer's
 *     CRC-32C and is rebuilt by the replay.) An aborted transaction's first offset
 *     counts only from the log start on: a replay finds it at the first batch left,
 *     the .txnindex keeps the one it had. Any
 * crash, sanitizer report, leak or failed property aborts. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/diag.h"
#include "common/ring.h"
#include "common/time.h"
#include "log/log.h"
#include "protocol/batch.h"
#include "protocol/records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAYLOAD_BYTES 40
#define BATCH_BYTES   (TL_BATCH_HEADER_BYTES + PAYLOAD_BYTES)
#define FILES_MAX     64
#define LIST_MAX      64
#define EDIT_BYTES    6

struct file {
	char name[64];
	uint8_t *data;
	size_t len;
};

struct state {
	int64_t start, end, hw, lso, max_timestamp;
	uint32_t aborted_count, producer_count, epoch_count;
	struct tl_log_aborted_txn aborted[LIST_MAX];
	struct tl_log_producer producers[LIST_MAX];
	struct tl_log_epoch_entry epochs[LIST_MAX];
};

static char root[128];
static char tpl_dir[192];
static char work_dir[192];
static struct tl_ring *ring;
static struct tl_log_config config;
static struct file tpl[FILES_MAX];
static int tpl_count;
static int64_t tpl_end;
static bool verbose;     /* FUZZ_LOG_VERBOSE set: the edits are printed */
static bool log_garbled; /* this input changed bytes inside a .log file */

static void cleanup(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_log: cannot remove %s\n", root);
}

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_log: %s\n", what);
	if (!verbose)
		cleanup(); /* FUZZ_LOG_VERBOSE keeps the files to look at */
	abort();
}

/* A batch of @records records; pid -1 for a plain one. The payload is not records:
 * the log checks framing and CRC, not record contents. */
static void batch_make(uint8_t *p, int32_t records, int64_t pid, int32_t seq, bool txn)
{
	memset(p, 0, BATCH_BYTES);
	int64_t ts = tl_wall_ms();
	tl_be32_put(p + TL_BATCH_OFF_LENGTH, (uint32_t)(BATCH_BYTES - TL_BATCH_LOG_OVERHEAD));
	p[TL_BATCH_OFF_MAGIC] = TL_BATCH_MAGIC;
	tl_be16_put(p + TL_BATCH_OFF_ATTRIBUTES, txn ? TL_BATCH_ATTR_TRANSACTIONAL : 0);
	tl_be32_put(p + TL_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(records - 1));
	tl_be64_put(p + TL_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)ts);
	tl_be64_put(p + TL_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts);
	tl_be64_put(p + TL_BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
	tl_be16_put(p + TL_BATCH_OFF_PRODUCER_EPOCH, pid >= 0 ? 0 : 0xffff);
	tl_be32_put(p + TL_BATCH_OFF_BASE_SEQUENCE, (uint32_t)(pid >= 0 ? seq : -1));
	tl_be32_put(p + TL_BATCH_OFF_RECORDS_COUNT, (uint32_t)records);
	for (int i = 0; i < PAYLOAD_BYTES; i++)
		p[TL_BATCH_HEADER_BYTES + i] = (uint8_t)(seq * 7 + i);
	tl_batch_crc_update(p, BATCH_BYTES);
}

static void drain(struct tl_log *log)
{
	tl_log_flush(log);
	tl_ring_submit(ring);
	while (tl_log_high_watermark(log) < tl_log_end_offset(log) && tl_log_is_writable(log))
		tl_ring_wait(ring);
}

/* Appends @len bytes at @p (borrowed until durable: the caller drains before reuse). */
static tl_err append_bytes(struct tl_log *log, uint8_t *p, size_t len, int64_t *base_out)
{
	struct tl_batch_header h;
	const char *why = NULL;
	if (tl_batch_validate(p, len, &h, &why) != TL_OK)
		fuzz_fail("a batch made here does not validate");
	struct tl_log_append_result result;
	tl_err err = tl_log_append(log, p, len, &h, &result);
	if (base_out)
		*base_out = result.base_offset;
	return err;
}

static void template_batch(struct tl_log *log, int32_t records, int64_t pid, int32_t seq, bool txn)
{
	uint8_t b[BATCH_BYTES];
	batch_make(b, records, pid, seq, txn);
	if (append_bytes(log, b, sizeof(b), NULL) != TL_OK)
		fuzz_fail("template append failed");
	drain(log);
}

static void template_marker(struct tl_log *log, int64_t pid, bool commit)
{
	struct tl_buf m;
	tl_buf_init(&m);
	if (tl_records_control_marker_build(&m, commit, pid, 0, 0, tl_wall_ms()) != TL_OK ||
	    append_bytes(log, m.data, m.len, NULL) != TL_OK)
		fuzz_fail("template marker failed");
	drain(log);
	tl_buf_deinit(&m);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->name, ((const struct file *)b)->name);
}

static bool slurp(const char *path, uint8_t **data_out, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return false;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return false;
	}
	size_t len = (size_t)st.st_size;
	uint8_t *data = malloc(len ? len : 1);
	if (!data || pread(fd, data, len, 0) != (ssize_t)len) {
		free(data);
		close(fd);
		return false;
	}
	close(fd);
	*data_out = data;
	*len_out = len;
	return true;
}

/* Writes the template log with the real log code and keeps its files in memory. */
static void template_build(void)
{
	struct tl_log *log = NULL;
	if (tl_log_open(tpl_dir, &config, ring, &log) != TL_OK)
		fuzz_fail("cannot create the template log");
	if (tl_log_assign_epoch(log, 1) != TL_OK)
		fuzz_fail("assign epoch 1");
	template_batch(log, 2, -1, 0, false);
	template_batch(log, 3, 5, 0, false); /* idempotent producer 5 */
	template_batch(log, 1, 10, 0, true); /* 10: aborted */
	template_batch(log, 1, 11, 0, true); /* 11: committed */
	template_batch(log, 2, 10, 1, true);
	template_marker(log, 10, false);
	template_marker(log, 11, true);
	template_batch(log, 3, 5, 3, false);
	if (tl_log_assign_epoch(log, 3) != TL_OK)
		fuzz_fail("assign epoch 3");
	template_batch(log, 1, -1, 0, false);
	template_batch(log, 1, 12, 0, true); /* 12: aborted in a later segment */
	template_batch(log, 4, 5, 6, false);
	template_marker(log, 12, false);
	template_batch(log, 2, -1, 0, false);
	template_batch(log, 1, 13, 0, true); /* 13: left open */
	tpl_end = tl_log_end_offset(log);
	tl_log_close(log);

	DIR *d = opendir(tpl_dir);
	if (!d)
		fuzz_fail("cannot list the template");
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (tpl_count == FILES_MAX)
			fuzz_fail("too many template files");
		struct file *f = &tpl[tpl_count++];
		snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		char path[320];
		snprintf(path, sizeof(path), "%s/%s", tpl_dir, de->d_name);
		if (!slurp(path, &f->data, &f->len))
			fuzz_fail("cannot read a template file");
	}
	closedir(d);
	qsort(tpl, (size_t)tpl_count, sizeof(tpl[0]), name_cmp);
	bool has_txnindex = false, has_snapshot = false, has_epochs = false;
	int segments = 0;
	for (int i = 0; i < tpl_count; i++) {
		const char *dot = strrchr(tpl[i].name, '.');
		segments += dot && strcmp(dot, ".log") == 0;
		has_txnindex |= dot && strcmp(dot, ".txnindex") == 0 &&
				tpl[i].len > TL_LOG_INDEX_TRAILER_BYTES;
		has_snapshot |= dot && strcmp(dot, ".snapshot") == 0;
		has_epochs |= strcmp(tpl[i].name, "leader-epoch-checkpoint") == 0;
	}
	if (segments < 3 || !has_txnindex || !has_snapshot || !has_epochs)
		fuzz_fail("the template lacks segments, a .txnindex, a snapshot or epochs");
}

static void setup(void)
{
	verbose = getenv("FUZZ_LOG_VERBOSE") != NULL;
	tl_diag_set_level(verbose ? TL_DIAG_INFO : TL_DIAG_CRIT);
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(root, sizeof(root), "%s/tally-fuzz-log-XXXXXX", base);
	if (!mkdtemp(root))
		fuzz_fail("mkdtemp");
	atexit(cleanup);
	snprintf(tpl_dir, sizeof(tpl_dir), "%s/tpl-0", root);
	snprintf(work_dir, sizeof(work_dir), "%s/work-0", root);
	tl_err err;
	ring = tl_ring_create(64, TL_RING_MODE_SYNC, &err);
	if (!ring)
		fuzz_fail("tl_ring_create");
	tl_log_config_defaults(&config);
	config.segment_bytes = 420; /* about four batches a segment */
	config.index_interval_bytes = 150;
	config.retention_ms = -1;
	template_build();
}

/* Empties (or creates) the work directory. */
static void work_reset(void)
{
	DIR *d = opendir(work_dir);
	if (!d) {
		if (mkdir(work_dir, 0755) != 0)
			fuzz_fail("mkdir work");
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char path[320];
		snprintf(path, sizeof(path), "%s/%s", work_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* The damaged copy: the template's files after the input's edits. */
static void damage(const uint8_t *data, size_t size)
{
	struct file work[FILES_MAX];
	bool gone[FILES_MAX] = {false};
	for (int i = 0; i < tpl_count; i++) {
		work[i] = tpl[i];
		work[i].data = malloc(tpl[i].len + 256 * 32 + 1);
		if (!work[i].data)
			fuzz_fail("malloc");
		memcpy(work[i].data, tpl[i].data, tpl[i].len);
	}
	uint8_t flags = size > 0 ? data[0] : 0;
	for (int i = 0; i < tpl_count; i++)
		if (((flags & 1) && strcmp(work[i].name, ".clean-shutdown") == 0) ||
		    ((flags & 2) && has_suffix(work[i].name, ".index")) ||
		    ((flags & 4) && has_suffix(work[i].name, ".snapshot")))
			gone[i] = true;
	int appends = 0;
	for (size_t at = 1; at + EDIT_BYTES <= size; at += EDIT_BYTES) {
		const uint8_t *e = data + at;
		struct file *f = &work[e[0] % tpl_count];
		size_t pos = (size_t)e[2] << 8 | e[3];
		uint8_t value = e[4];
		size_t len = e[5];
		if (verbose)
			fprintf(stderr,
				"fuzz_log: edit %s kind %d position %zu value %d length %zu\n",
				f->name, e[1] % 5, pos, value, len);
		if ((e[1] % 5 == 0 || e[1] % 5 == 3) && f->len > 0)
			log_garbled |= has_suffix(f->name, ".log");
		switch (e[1] % 5) {
		case 0:
			if (f->len > 0)
				f->data[pos % f->len] ^= value ? value : 0xff;
			break;
		case 1:
			f->len = TL_MIN(f->len, pos % (f->len + 1));
			break;
		case 2:
			gone[f - work] = true;
			break;
		case 3:
			if (f->len > 0) {
				pos %= f->len;
				memset(f->data + pos, value, TL_MIN(len, f->len - pos));
			}
			break;
		default:
			if (appends++ < 32) {
				memset(f->data + f->len, value, len);
				f->len += len;
			}
			break;
		}
	}
	work_reset();
	for (int i = 0; i < tpl_count; i++) {
		if (!gone[i]) {
			char path[320];
			snprintf(path, sizeof(path), "%s/%s", work_dir, work[i].name);
			int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd == -1 ||
			    write(fd, work[i].data, work[i].len) != (ssize_t)work[i].len)
				fuzz_fail("cannot write a damaged file");
			close(fd);
		}
		free(work[i].data);
	}
}

static int producer_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct tl_log_producer *)a)->producer_id;
	int64_t y = ((const struct tl_log_producer *)b)->producer_id;
	return x < y ? -1 : x > y;
}

static void state_print(const char *label, const struct state *s)
{
	fprintf(stderr, "fuzz_log: %s: start %lld end %lld hw %lld lso %lld max_ts %lld\n", label,
		(long long)s->start, (long long)s->end, (long long)s->hw, (long long)s->lso,
		(long long)s->max_timestamp);
	for (uint32_t i = 0; i < s->aborted_count; i++)
		fprintf(stderr, "fuzz_log:   aborted pid %lld first %lld marker %lld\n",
			(long long)s->aborted[i].producer_id, (long long)s->aborted[i].first_offset,
			(long long)s->aborted[i].last_offset);
	for (uint32_t i = 0; i < s->producer_count; i++) {
		const struct tl_log_producer *p = &s->producers[i];
		fprintf(stderr,
			"fuzz_log:   producer %lld epoch %d last_seq %d last_ts %lld coord_epoch "
			"%d txn_first %lld\n",
			(long long)p->producer_id, p->producer_epoch, p->last_sequence,
			(long long)p->last_timestamp, p->coordinator_epoch,
			(long long)p->txn_first_offset);
	}
	for (uint32_t i = 0; i < s->epoch_count; i++)
		fprintf(stderr, "fuzz_log:   epoch %d at %lld\n", s->epochs[i].epoch,
			(long long)s->epochs[i].start_offset);
}

static void state_read(struct tl_log *log, struct state *s)
{
	memset(s, 0, sizeof(*s));
	s->start = tl_log_start_offset(log);
	s->end = tl_log_end_offset(log);
	s->hw = tl_log_high_watermark(log);
	s->lso = tl_log_last_stable_offset(log);
	s->max_timestamp = tl_log_max_timestamp(log);
	s->aborted_count = tl_log_aborted_txns(log, INT64_MIN, INT64_MAX, s->aborted, LIST_MAX);
	s->producer_count = tl_log_producers(log, s->producers, LIST_MAX);
	s->epoch_count = tl_log_epochs(log, s->epochs, LIST_MAX);
	if (s->aborted_count > LIST_MAX || s->producer_count > LIST_MAX ||
	    s->epoch_count > LIST_MAX)
		fuzz_fail("more aborted transactions, producers or epochs than the template has");
	qsort(s->producers, s->producer_count, sizeof(s->producers[0]), producer_cmp);
}

static void state_check(const struct state *s)
{
	if (!(s->start <= s->lso && s->lso <= s->hw && s->hw == s->end))
		fuzz_fail("after recovery start <= LSO <= high watermark == end does not hold");
	for (uint32_t i = 0; i < s->aborted_count; i++) {
		const struct tl_log_aborted_txn *a = &s->aborted[i];
		if (a->first_offset > a->last_offset || a->last_offset >= s->end ||
		    (i > 0 && a->last_offset <= s->aborted[i - 1].last_offset))
			fuzz_fail("an aborted transaction is out of order or past the end");
	}
	for (uint32_t i = 0; i < s->producer_count; i++)
		if (s->producers[i].txn_first_offset >= s->end)
			fuzz_fail("an open transaction starts past the end");
	for (uint32_t i = 0; i < s->epoch_count; i++)
		if ((s->epochs[i].start_offset > s->end && !log_garbled) ||
		    (i > 0 && (s->epochs[i].epoch <= s->epochs[i - 1].epoch ||
			       s->epochs[i].start_offset <= s->epochs[i - 1].start_offset))) {
			state_print("after recovery", s);
			fuzz_fail("the epoch cache is out of order or past the end");
		}
}

static bool state_equal(const struct state *a, const struct state *b)
{
	if (a->start != b->start || a->end != b->end || a->hw != b->hw || a->lso != b->lso ||
	    a->max_timestamp != b->max_timestamp || a->aborted_count != b->aborted_count ||
	    a->producer_count != b->producer_count || a->epoch_count != b->epoch_count)
		return false;
	for (uint32_t i = 0; i < a->aborted_count; i++)
		if (a->aborted[i].producer_id != b->aborted[i].producer_id ||
		    TL_MAX(a->aborted[i].first_offset, a->start) !=
			    TL_MAX(b->aborted[i].first_offset, b->start) ||
		    a->aborted[i].last_offset != b->aborted[i].last_offset)
			return false;
	for (uint32_t i = 0; i < a->producer_count; i++) {
		const struct tl_log_producer *p = &a->producers[i], *q = &b->producers[i];
		if (p->producer_id != q->producer_id || p->producer_epoch != q->producer_epoch ||
		    p->last_sequence != q->last_sequence ||
		    p->last_timestamp != q->last_timestamp ||
		    p->coordinator_epoch != q->coordinator_epoch ||
		    p->txn_first_offset != q->txn_first_offset)
			return false;
	}
	for (uint32_t i = 0; i < a->epoch_count; i++)
		if (a->epochs[i].epoch != b->epochs[i].epoch ||
		    a->epochs[i].start_offset != b->epochs[i].start_offset)
			return false;
	return true;
}

/* Every offset below the high watermark reads as a whole range inside its file. */
static void read_all(struct tl_log *log, const struct state *s)
{
	static uint8_t buf[1 << 16];
	int64_t offset = s->start;
	for (int rounds = 0; offset < s->hw && rounds < 10000; rounds++) {
		struct tl_log_read r;
		tl_err err = tl_log_read(log, offset, s->hw, (int32_t)sizeof(buf), true, &r);
		if (err == TL_ERR_KAFKA_STORAGE_ERROR)
			return; /* damage inside a sealed segment, which recovery trusts */
		if (err != TL_OK) {
			fprintf(stderr, "fuzz_log: read at %lld: %s\n", (long long)offset,
				tl_err_name(err));
			state_print("after recovery", s);
			fuzz_fail("an offset below the high watermark does not read");
		}
		if (r.bytes == 0)
			return; /* no batch holds it: a trusted sealed segment with garbage */
		if (r.bytes > (int64_t)sizeof(buf) ||
		    pread(r.fd, buf, (size_t)r.bytes, (off_t)r.position) != (ssize_t)r.bytes)
			fuzz_fail("a read range passes the end of its file");
		tl_log_read_release(r.segment);
		/* Step past the last batch of the range, if its header makes sense. */
		int64_t pos = 0, next = offset;
		while (pos + TL_BATCH_LOG_OVERHEAD + 11 <= r.bytes) {
			int64_t base = (int64_t)tl_be64_get(buf + pos);
			int64_t len = (int32_t)tl_be32_get(buf + pos + TL_BATCH_OFF_LENGTH);
			int64_t delta =
				(int32_t)tl_be32_get(buf + pos + TL_BATCH_OFF_LAST_OFFSET_DELTA);
			if (len <= 0 || delta < 0 || base + delta + 1 <= next)
				break;
			next = base + delta + 1;
			pos += TL_BATCH_LOG_OVERHEAD + len;
		}
		if (next <= offset)
			return; /* garbage in a trusted segment: nothing to step by */
		offset = next;
	}
}

/* Appends one batch and checks it is durable and reads back at its offset. */
static void append_check(struct tl_log *log, int64_t pid)
{
	uint8_t b[BATCH_BYTES];
	batch_make(b, 2, pid, 0, false);
	int64_t base = -1;
	tl_err err = append_bytes(log, b, sizeof(b), &base);
	if (err != TL_OK) {
		fprintf(stderr, "fuzz_log: append after recovery: %s\n", tl_err_name(err));
		fuzz_fail("an append after recovery failed");
	}
	drain(log);
	if (tl_log_high_watermark(log) != base + 2 || tl_log_end_offset(log) != base + 2)
		fuzz_fail("an append after recovery did not become durable at the end");
	struct tl_log_read r;
	uint8_t back[BATCH_BYTES];
	if (tl_log_read(log, base, base + 2, 1 << 16, true, &r) != TL_OK || r.bytes == 0 ||
	    r.first_offset != base ||
	    pread(r.fd, back, sizeof(back), (off_t)r.position) != (ssize_t)sizeof(back))
		fuzz_fail("an append after recovery does not read back");
	tl_log_read_release(r.segment);
	if (memcmp(back + TL_BATCH_OFF_LENGTH, b + TL_BATCH_OFF_LENGTH,
		   sizeof(b) - TL_BATCH_OFF_LENGTH) != 0 ||
	    (int64_t)tl_be64_get(back) != base)
		fuzz_fail("an append after recovery reads back other bytes");
}

/* After a clean close: each segment's .txnindex holds the aborted transactions whose
 * marker is in it, as the log had them in memory. */
static void txnindexes_check(const struct state *s)
{
	int64_t bases[FILES_MAX];
	int count = 0;
	DIR *d = opendir(work_dir);
	if (!d)
		fuzz_fail("cannot list the work directory");
	struct dirent *de;
	while ((de = readdir(d)))
		if (has_suffix(de->d_name, ".log") && count < FILES_MAX)
			bases[count++] = strtoll(de->d_name, NULL, 10);
	closedir(d);
	for (int i = 0; i < count; i++)
		for (int j = i + 1; j < count; j++)
			if (bases[j] < bases[i]) {
				int64_t t = bases[i];
				bases[i] = bases[j];
				bases[j] = t;
			}
	uint32_t seen = 0;
	for (int i = 0; i < count; i++) {
		int64_t next = i + 1 < count ? bases[i + 1] : INT64_MAX;
		char path[320];
		snprintf(path, sizeof(path), "%s/%020lld.txnindex", work_dir, (long long)bases[i]);
		uint8_t *data = NULL;
		size_t len = 0;
		if (!slurp(path, &data, &len))
			len = 0;
		uint32_t count = 0;
		int64_t end = -1;
		const char *why = NULL;
		if (data &&
		    tl_log_index_check(data, len, TL_LOG_INDEX_TXN, &count, &end, &why) != TL_OK) {
			fprintf(stderr, "fuzz_log: %s: %s\n", path, why);
			fuzz_fail("a .txnindex after a clean close fails its trailer");
		}
		if (data && end != next && next != INT64_MAX)
			fuzz_fail("a .txnindex after a clean close names another segment end");
		len = (size_t)count * 34;
		for (size_t at = 0; at < len; at += 34, seen++) {
			const uint8_t *e = data + at;
			if (seen >= s->aborted_count ||
			    (int64_t)tl_be64_get(e + 2) != s->aborted[seen].producer_id ||
			    TL_MAX((int64_t)tl_be64_get(e + 10), s->start) !=
				    TL_MAX(s->aborted[seen].first_offset, s->start) ||
			    (int64_t)tl_be64_get(e + 18) != s->aborted[seen].last_offset) {
				fprintf(stderr,
					"fuzz_log: %s entry %zu: pid %lld first %lld marker %lld; "
					"the log has %u aborted transactions\n",
					path, at / 34, (long long)tl_be64_get(e + 2),
					(long long)tl_be64_get(e + 10),
					(long long)tl_be64_get(e + 18), s->aborted_count);
				for (uint32_t k = 0; k < s->aborted_count; k++)
					fprintf(stderr,
						"fuzz_log: aborted %u: pid %lld first %lld marker "
						"%lld\n",
						k, (long long)s->aborted[k].producer_id,
						(long long)s->aborted[k].first_offset,
						(long long)s->aborted[k].last_offset);
				fuzz_fail("a .txnindex after a clean close differs from the log's "
					  "aborted transactions");
			}
		}
		free(data);
		while (seen < s->aborted_count && s->aborted[seen].last_offset >= bases[i] &&
		       s->aborted[seen].last_offset < next)
			fuzz_fail("an aborted transaction is missing from its segment's .txnindex "
				  "after a clean close");
	}
	if (seen != s->aborted_count)
		fuzz_fail("aborted transactions are missing from the .txnindex files");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup();
		ready = true;
	}
	if (size > 1 + EDIT_BYTES * 64)
		return 0;
	struct tl_log *log = NULL;
	log_garbled = false;
	damage(data, size);
	tl_err err = tl_log_open(work_dir, &config, ring, &log);
	if (err == TL_ERR_CORRUPT && log_garbled)
		return 0; /* a garbled batch inside a segment recovery trusts */
	if (err != TL_OK) {
		fprintf(stderr, "fuzz_log: open: %s\n", tl_err_name(err));
		fuzz_fail("recovery of a damaged directory failed");
	}
	struct state first;
	state_read(log, &first);
	state_check(&first);
	if (first.end > tpl_end && !log_garbled)
		fuzz_fail("recovery invented offsets past the template's end");
	read_all(log, &first);
	append_check(log, 1000);
	append_check(log, -1);
	struct state before;
	state_read(log, &before);
	state_check(&before);
	tl_log_close(log);
	/* Garbled batches inside a trusted segment can make the replay and a .txnindex
	 * disagree; which one the next open believes depends on the snapshot. (A garbled
	 * .txnindex fails its CRC-32C: the replay rebuilds it.) */
	bool garbled = log_garbled;
	if (!garbled)
		txnindexes_check(&before);
	if (tl_log_open(work_dir, &config, ring, &log) != TL_OK)
		fuzz_fail("the second open failed");
	struct state after;
	state_read(log, &after);
	state_check(&after);
	if (!garbled && !state_equal(&before, &after)) {
		state_print("before the close", &before);
		state_print("after the second open", &after);
		fuzz_fail("a second open after recovery gives another state");
	}
	tl_log_close(log);
	return 0;
}
