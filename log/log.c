/* log.c - one partition's commit log: segments, indexes, group commit, recovery,
 * retention and the producer-state snapshots. See log.h for the interface.
 *
 * Write path: group commit in two pipelined stages. tl_log_append() rewrites the batch's
 * baseOffset in the caller's bytes and queues one iovec pointing at them (no copy). A
 * batch then moves through four lists, each in offset order:
 *   queued   appended, waiting for the write stage
 *   writing  in the write round in flight: one writev per run of contiguous batches of
 *            one segment, at most FLUSH_IOV_MAX batches each
 *   written  in the page cache, waiting for the sync stage
 *   syncing  covered by the sync round in flight: one fdatasync per segment in it, of
 *            the byte range of its batches there (with io_uring only that range is
 *            written back, not what the write stage adds meanwhile)
 * The write stage starts a round with everything queued whenever none is in flight;
 * the sync stage starts one with everything written whenever none is in flight. Both
 * are kicked by tl_log_flush() and whenever a round completes (pipeline_pump()). So the
 * next writev overlaps the fdatasync in flight, and under load each fdatasync covers
 * all that was written during the previous one. When a sync round completes, exactly
 * the batches it covered become durable: bytes_durable, the high watermark, closing
 * transactions, index files of sealed segments, then waiters and the listener.
 * flush_count and flush_bytes count sync rounds; write_us and sync_us time each round
 * from its submission to its last completion, logged at close (Kafka's
 * LogFlushRateAndTimeMs).
 *
 * Indexes. Every segment keeps its offset index ((u32 relative offset, u32 position),
 * big-endian, 8 bytes) and time index ((i64 timestamp, u32 relative offset), 12 bytes)
 * in memory; they are written to `.index` / `.timeindex` files (tmp + rename) only when a
 * sealed segment's last byte is durable, and at clean close. So an index file on disk
 * always describes bytes that were fsynced before it was written. Those writes of
 * sealed segments have no fsync (none on the event loop's roll path) and a clean close
 * does not re-sync them, so after a power loss one may be empty, cut short at a block
 * boundary or zero-filled, even with `.clean-shutdown` present. Each index file (.txnindex
 * included) therefore ends with a trailer (log.h, tl_log_index_check: magic, kind,
 * entry count, the segment's end offset when written, CRC-32C), checked at every open:
 * a file whose trailer is missing, wrong, inconsistent with its length, or naming
 * another end than the segment's batches reach is bad. Bad .index/.timeindex: the
 * segment is rescanned; bad .txnindex: its aborted transactions are left to the
 * producer-state replay. Either way indexes_repair()/txnindexes_repair() write the
 * files back. Files of the format before trailers are bad too: the first open after
 * an upgrade rescans every sealed segment once.
 *
 * Recovery (tl_log_open). With `.clean-shutdown` present, the index files are trusted
 * after a sanity check. Otherwise the last segment, and every segment whose index files
 * are missing or bad, is scanned batch by batch (length, magic, CRC-32C, baseOffset
 * continuity) and cut at the first bad byte; segments after a cut are deleted, since the
 * offsets they hold no longer follow. The marker is removed (and the directory synced)
 * before the first append, and the active segment's stale index files with it. A
 * FAILED_MARKER (written when a single-node log failed) cuts the recovered log back to the
 * durable end it names: the page cache may have kept what the disk refused.
 *
 * Producer state. `<offset>.snapshot` holds the table as of that offset (written at each
 * roll without fsync: a torn snapshot fails its CRC and the previous one is used, and at
 * clean close with fsync). Open loads the newest snapshot at or below the recovered end
 * and replays batch headers after it; snapshots past the end are deleted.
 *
 * Replication support. Every leader append stamps partitionLeaderEpoch with
 * leader_epoch; tl_log_append_replica() keeps the leader's offsets and epoch but builds
 * producer state, transactions and indexes as a leader append does. The leader-epoch
 * cache (strictly increasing epochs and start offsets) is `leader-epoch-checkpoint`,
 * made durable (epochs_sync) before the first batch of a new epoch is queued; recovery
 * loads it (rebuilds it from batch headers when missing or bad), drops entries at or past
 * the end and adds epochs found in the tail. The high watermark is apart from the
 * durable end (durable_offset): it follows it unless `replicated`, when only
 * tl_log_set_high_watermark() moves it; waiters, the listener and the closing list
 * (so the LSO) follow the high watermark, the durable listener the durable end. Reads
 * stop at the written end (per segment bytes_written). Truncation drains the rounds in
 * flight (queued batches past the cut are dropped unwritten, the high watermark capped
 * by hw_limit meanwhile), then cuts in a crash-safe order (see log_cut()) and rebuilds
 * producer state from a snapshot at or below the high watermark.
 *
 * Invariants:
 * (1) Only the last segment is appended to; base offsets strictly increase.
 * (2) start_offset <= high_watermark <= durable_offset <= end_offset; every segment's
 *     bytes_durable <= bytes_written <= bytes, and a sealed segment stops changing once
 *     bytes_durable == bytes.
 * (3) A segment is freed when its last reference goes: the log's own (dropped by
 *     retention or close), one per tl_log_read still being sent and one per write or
 *     sync op queued on its file.
 * (4) After a write or sync error the log is FAILED for good: nothing more is written
 *     or synced and the high watermark stops; once neither round is in flight, every
 *     waiter fires with KAFKA_STORAGE_ERROR, those on batches written but not yet
 *     synced (or synced by the round that was in flight) and those queued included.
 *     The fsync is never retried.
 * (5) Group commit: durable_offset <= sync_end_offset <= written_end_offset <=
 *     write_end_offset <= end_offset, and syncing, written, writing and queued hold
 *     exactly the batches between consecutive ones, with no gap. At most one write
 *     round and one sync round are in flight; a sync round covers only batches whose
 *     write completed before it was submitted, so the durable end moves forward
 *     only, in offset order, never past data written before the sync covering it.
 * (6) A writev's iovecs point into the callers' bytes, which the caller frees once the
 *     batch's waiter fires: no waiter fires while a write of its batch is in flight.
 *     The write round and the sync round have their own op (and iovec) arrays, reused
 *     only once every op of that round has completed, and each op holds a reference
 *     on its segment, so a roll, retention or close cannot close a file under it. */
#include "log/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/ioprio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "common/diag.h"
#include "common/histogram.h"
#include "common/time.h"
#include "log/cleaner.h"
#include "log/producer_state.h"

#define INDEX_ENTRY_BYTES     8
#define TIMEINDEX_ENTRY_BYTES 12
#define TXNINDEX_ENTRY_BYTES  34
#define INDEX_TRAILER_MAGIC   0x544c4958u /* "TLIX": see tl_log_index_check */
#define INDEX_TRAILER_VERSION 1
#define CLEAN_MARKER          ".clean-shutdown"
#define SNAPSHOTS_KEPT        3
#define SCAN_BUFFER_BYTES     (1 << 20)
#define FLUSH_IOV_MAX         1024 /* IOV_MAX: the kernel's limit per writev */
#define NAME_BYTES            64
#define EPOCH_CHECKPOINT      "leader-epoch-checkpoint"
#define EPOCH_CHECKPOINT_MAX  100000 /* entries: a bigger file is garbage, rebuilt */
#define START_CHECKPOINT      "log-start-offset-checkpoint" /* DeleteRecords' floor */
#define CLEANER_CHECKPOINT    "cleaner-offset-checkpoint"   /* compaction's first dirty offset */
#define FAILED_MARKER         "log-failed-durable-offset"   /* the durable end when I/O failed */
#define DIO_ALIGN             4096      /* offset, length and memory of every O_DIRECT write */
#define STAGE_BYTES_MAX       (8 << 20) /* a direct round copies this much (or one batch) */
#define DIRECT_RUN_OPS_MAX    4         /* writes per segment in a direct round */
#define PLACEHOLDERS_BYTES    (1 << 18) /* a read skips this much of them at least */

TL_STATIC_ASSERT(TL_BATCH_HEADER_BYTES == 61, "RecordBatch v2 header");

struct tl_log_segment {
	int64_t base_offset;
	int fd;
	int dio_fd;            /* O_DIRECT descriptor for writes while it takes appends, else -1 */
	int dio_read_fd;       /* O_DIRECT reopening of fd for cold reads (see direct_read); -1 */
	int64_t file_end;      /* file size we made: bytes plus a direct write's padding and the
				* preallocated space; cut back to bytes once sealed and durable */
	int refs;              /* the log's own + one per read being sent and op queued */
	int64_t bytes;         /* appended so far, queued included */
	int64_t bytes_durable; /* prefix known to be on stable storage */
	int64_t next_offset;   /* offset after the last batch appended */
	int64_t next_offset_durable; /* offset after the last durable batch */
	int64_t bytes_written;       /* prefix whose write completed (page cache) */
	int64_t next_offset_written; /* offset after the last written batch */
	int64_t max_timestamp;       /* largest batch maxTimestamp, -1 if none */
	int64_t max_timestamp_offset;
	int64_t first_append_ms;   /* wall clock of the first append, for log.roll.ms */
	int64_t bytes_since_index; /* since the last offset index entry */
	bool indexes_on_disk;      /* index files describe this (sealed) segment */
	bool txns_trusted;         /* its aborted transactions came from its .txnindex */
	bool gone;                 /* its file was unlinked or renamed over: see close_later */
	uint8_t *index;            /* INDEX_ENTRY_BYTES each */
	uint32_t index_count;
	uint32_t index_cap;
	uint8_t *timeindex; /* TIMEINDEX_ENTRY_BYTES each */
	uint32_t timeindex_count;
	uint32_t timeindex_cap;
};

struct aborted_txn {
	int64_t producer_id;
	int64_t first_offset;
	int64_t last_offset; /* the ABORT marker's */
	int64_t lso;         /* when the marker was appended */
};

/* A transaction whose marker is appended: it holds the LSO until the marker is durable. */
struct closing_txn {
	int64_t first_offset;
	int64_t marker_offset;
};

/* One appended batch on its way to stable storage. */
struct pending {
	struct tl_log_segment *segment;
	struct iovec iov; /* the caller's bytes, borrowed until the batch's waiter fires */
	int64_t position; /* in the segment file */
	/* The first offset it covers: the log end when it was queued, so the lists stay
	 * contiguous; below the batch's own base offset when a follower's batch came after
	 * an offset hole the leader's cleaner left (see tl_log_append_replica). */
	int64_t base_offset;
	int64_t last_offset;
};

struct pending_list {
	struct pending *items;
	uint32_t count;
	uint32_t cap;
};

/* One writev of the write round (up to FLUSH_IOV_MAX contiguous batches of one segment)
 * or one fdatasync of the sync round. Holds a reference on its segment while queued. */
struct flush_op {
	struct tl_ring_op op;
	struct tl_log *log;
	struct tl_log_segment *segment;
	uint32_t first; /* of a write: its first batch in log->writing */
	uint32_t count; /* of a write: how many batches */
	int64_t from;   /* of a sync: the bytes of its batches in the segment */
	int64_t to;
	struct iovec iov; /* of a direct write: its block-aligned part of the stage */
};

/* ---- read cache (types; see "Read cache" below) ---- */

#define CACHE_CHUNKS 4 /* log.cache.bytes is split into this many chunks */

/* One chunk of a cold read-ahead (see "read-ahead of cold reads"). */
struct readahead {
	struct tl_ring_op op;
	struct tl_log *log;
	struct tl_log_segment *segment; /* a reference; NULL: the slot is free */
	uint8_t *base;                  /* direct_buf_new()'s: header, then the bytes */
	int64_t start;                  /* file position of the first byte (DIO_ALIGN multiple) */
	int64_t valid;    /* bytes that are log: what the segment held when the read went out */
	int64_t used_ms;  /* monotonic: last served from (or issued) */
	bool in_flight;   /* the ring owns base */
	bool ready;       /* read: serves fetches */
	bool stale;       /* dropped while in flight: freed when the read completes */
	bool next_issued; /* the read of the chunk after it went out (or there is none) */
};

#define READAHEAD_SLOTS 4

/* Memory of one cache chunk, shared by the log and the reads being sent from it. */
struct cache_block {
	int refs;   /* the log's own (while a chunk uses it) + one per read being sent */
	size_t cap; /* bytes of data */
	uint8_t data[];
};

/* One batch in a chunk. */
struct cache_entry {
	int64_t base_offset;
	int64_t last_offset;
	uint32_t at; /* in the chunk's block */
	uint32_t len;
};

/* Consecutive batches of the active segment, back to back in @block. */
struct cache_chunk {
	struct cache_block *block;
	size_t used;
	struct cache_entry *entries; /* by offset */
	uint32_t count;
	uint32_t cap;
};

struct tl_log {
	char *dir;
	int dir_fd;
	struct tl_log_config config;
	int64_t test_syncs; /* fdatasyncs completed, for test_fdatasync_fail_after */
	struct tl_ring *ring;
	struct tl_log_segment **segments; /* by base offset; the last is active */
	uint32_t segment_count;
	uint32_t segment_cap;
	int64_t end_offset;
	/* DeleteRecords: offsets below are deleted though their segment may remain; 0 =
	 * none. Written to START_CHECKPOINT (durably) before it is raised. */
	int64_t start_floor;
	int64_t high_watermark; /* what consumers may read; see "Replication support" */
	int64_t durable_offset; /* local durable end: every offset below is fsynced */
	int64_t hw_limit;       /* cap on the automatic high watermark; INT64_MAX but while
				 * truncating */
	bool replicated;        /* the high watermark moves only by set_high_watermark */
	bool offset_holes;      /* config.offset_holes at open: a replica's log */
	bool failed;
	bool opened;         /* tl_log_open finished: a failure from here on leaves FAILED_MARKER */
	bool marker_written; /* FAILED_MARKER holds this failure's durable end */
	bool failure_reported; /* the durable listener heard of the failure */
	char last_error[160];

	/* Group commit: a batch moves queued -> writing -> written -> syncing -> durable. */
	struct pending_list queued;  /* appended, not yet handed to a write round */
	struct pending_list writing; /* in the write round in flight */
	struct pending_list written; /* in the page cache, not yet under a sync round */
	struct pending_list syncing; /* covered by the sync round in flight */
	struct iovec *write_iov;     /* the write round's: copies of writing's iovecs */
	uint32_t write_iov_cap;
	struct flush_op *write_ops; /* the write round's writevs */
	uint32_t write_ops_cap;
	struct flush_op *sync_ops; /* the sync round's fdatasyncs, one per segment */
	uint32_t sync_ops_cap;
	uint32_t writes_left;    /* ops of the write round not yet completed; 0: none in flight */
	uint32_t syncs_left;     /* ops of the sync round not yet completed; 0: none in flight */
	int64_t sync_end_offset; /* end of syncing; the high watermark when no sync runs */
	int64_t written_end_offset; /* end of the batches whose write completed */
	int64_t write_end_offset;   /* end of writing; written_end_offset when no write runs */

	/* Direct I/O (see "Direct I/O" below). */
	bool direct;          /* segments are written with O_DIRECT from the stage */
	bool preallocate_off; /* fallocate failed once here: the writes extend the file */
	uint8_t *stage;       /* DIO_ALIGN-aligned copy of the write round in flight */
	size_t stage_cap;
	int stage_slot;        /* the stage's registered-buffer slot in the ring, else -1 */
	bool stage_fixed_off;  /* the ring refused to register it: plain writes from now on */
	int64_t tail_base;     /* segment of the tail block below, -1 when not known */
	int64_t tail_position; /* file offset of that block (DIO_ALIGN multiple) */
	uint32_t tail_bytes;   /* its written bytes, < DIO_ALIGN; the rest is padding */
	uint8_t tail[DIO_ALIGN];
	int32_t direct_rounds; /* direct write rounds started, for test_crash_round */

	/* Read cache: the newest written batches of cache_segment, in up to CACHE_CHUNKS
	 * chunks from cache_first (a ring), offsets contiguous across them. */
	struct cache_chunk cache[CACHE_CHUNKS];
	uint32_t cache_first;
	uint32_t cache_count;
	const struct tl_log_segment *cache_segment; /* the active one, or NULL when empty */
	struct tl_log_cache_stats cache_stats;
	/* Cold reads of a direct log: chunks read ahead asynchronously (readahead_lookup). */
	struct readahead readahead[READAHEAD_SLOTS];
	bool readahead_off; /* an asynchronous read failed: synchronous reads from then on */

	struct tl_log_waiter *waiters; /* by offset */
	struct tl_log_waiter *waiters_tail;
	tl_log_listener_fn listener;
	void *listener_ctx;
	tl_log_listener_fn durable_listener;
	void *durable_listener_ctx;

	/* Leader epochs: strictly increasing epochs and start offsets, as in the checkpoint. */
	struct tl_log_epoch_entry *epochs;
	uint32_t epoch_count;
	uint32_t epoch_cap;
	int32_t leader_epoch; /* stamped on leader appends */
	bool epochs_dirty;    /* the cache changed since the checkpoint was written */

	uint64_t flush_count;     /* sync rounds completed */
	uint64_t flush_bytes;     /* bytes they made durable */
	int64_t write_started_ns; /* of the round in flight */
	int64_t sync_started_ns;
	struct tl_hist write_us; /* write rounds, submit to the last completion */
	struct tl_hist sync_us;  /* sync rounds (fdatasync), likewise */

	struct tl_pstate pstate;
	int64_t next_pstate_expire_ms;         /* wall clock of the tick's next expiry; 0: unset */
	int64_t next_retention_ms;             /* the tick's next retention check; 0: unset */
	int64_t snapshots[SNAPSHOTS_KEPT + 1]; /* snapshot files' offsets, newest first, -1 */

	/* Transactions. */
	struct aborted_txn *aborted; /* by marker offset */
	uint32_t aborted_count;
	uint32_t aborted_cap;
	struct closing_txn *closing; /* markers appended but not yet durable */
	uint32_t closing_count;
	uint32_t closing_cap;
	int64_t first_open_txn; /* cache of tl_pstate_first_open_txn(), -2 when stale */

	/* Compaction: at most one pass in flight, in cleaner_thread. */
	struct tl_cleaner_job *cleaner_job;
	/* The job's inputs, a reference on each while it runs: retention may delete one
	 * meanwhile, and the closer must not cut a file the pass still reads. */
	struct tl_log_segment **cleaner_held;
	uint32_t cleaner_held_count;
	pthread_t cleaner_thread;
	bool cleaner_threaded;        /* cleaner_thread must be joined */
	int64_t cleaner_first_dirty;  /* from CLEANER_CHECKPOINT; 0 = the log start */
	int64_t cleaner_next_ms;      /* no new pass before this wall time */
	int64_t cleaner_horizon_next; /* a pass is due at this wall time, dirty or not: a
				       * delete horizon passes (see cleaner.c) */
	struct tl_log_cleaner_stats cleaner_stats;
};

void tl_log_config_defaults(struct tl_log_config *config)
{
	config->offset_holes = false; /* one node; tl_partition_open_log sets it for replicas */
	config->producer_id_expiration_ms = 86400000;
	config->producer_id_expiration_check_interval_ms = 600000;
	config->segment_bytes = 1073741824;
	config->segment_ms = 604800000;
	config->retention_bytes = -1;
	config->retention_ms = 604800000;
	config->index_interval_bytes = 4096;
	config->index_bytes_max = 10485760;
	config->cleanup_compact = false;
	config->cleanup_delete = true;
	config->cleaner_enable = true;
	config->min_cleanable_dirty_ratio = 0.5;
	config->min_compaction_lag_ms = 0;
	config->max_compaction_lag_ms = INT64_MAX;
	config->delete_retention_ms = 86400000;
	config->cleaner_dedupe_buffer_bytes = 134217728;
	config->cleaner_io_bytes_per_sec = -1;
	config->cleaner_backoff_ms = 15000;
	config->cleaner_threads = 1;
	config->cleaner_nice = 19;
	config->direct_io = true;
	config->preallocate = true;
	config->preallocate_bytes = 32 << 20;
	config->cache_bytes = 4 << 20;
}

/* ---- small helpers ---- */

/* A copy of @fd that an exec does not inherit (as every descriptor the log opens). */
static int dup_cloexec(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* A directory stream over @dir_fd from its first entry. The dup shares the file
 * position with @dir_fd, so an earlier listing would otherwise leave it at the end. */
static DIR *dir_open(int dir_fd)
{
	int fd = dup_cloexec(dir_fd);
	if (fd == -1)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return NULL;
	}
	rewinddir(d);
	return d;
}

static void set_error(struct tl_log *log, const char *what, const char *name, int err)
{
	snprintf(log->last_error, sizeof(log->last_error), "%s %s: %s", what, name,
		 strerrorname_np(err) ? strerrorname_np(err) : "?");
}

static void segment_name(char *out, int64_t base_offset, const char *suffix)
{
	snprintf(out, NAME_BYTES, "%020" PRId64 "%s", base_offset, suffix);
}

static tl_err grow(void **items, uint32_t *cap, uint32_t need, size_t item_bytes)
{
	if (need <= *cap)
		return TL_OK;
	uint32_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *p = realloc(*items, (size_t)n * item_bytes);
	if (!p)
		return TL_ERR_NOMEM;
	*items = p;
	*cap = n;
	return TL_OK;
}

static tl_err sync_dir(struct tl_log *log)
{
	if (fsync(log->dir_fd) == -1) {
		set_error(log, "fsync", log->dir, errno);
		return TL_ERR_IO;
	}
	return TL_OK;
}

/* Reads the 61-byte header of the batch at @position. TL_ERR_CORRUPT if it is not a whole
 * v2 header within @limit bytes of the file. */
static tl_err header_read(const struct tl_log_segment *segment, int64_t position, int64_t limit,
			  struct tl_batch_header *h)
{
	uint8_t raw[TL_BATCH_HEADER_BYTES];
	if (position + TL_BATCH_HEADER_BYTES > limit)
		return TL_ERR_CORRUPT;
	ssize_t n = pread(segment->fd, raw, sizeof(raw), (off_t)position);
	if (n != (ssize_t)sizeof(raw))
		return n < 0 ? TL_ERR_IO : TL_ERR_CORRUPT;
	if (tl_batch_header_decode(raw, sizeof(raw), h) != TL_OK)
		return TL_ERR_CORRUPT;
	if (h->batch_length < TL_BATCH_HEADER_BYTES - TL_BATCH_LOG_OVERHEAD ||
	    position + TL_BATCH_LOG_OVERHEAD + h->batch_length > limit)
		return TL_ERR_CORRUPT;
	return TL_OK;
}

static int64_t batch_bytes(const struct tl_batch_header *h)
{
	return TL_BATCH_LOG_OVERHEAD + (int64_t)h->batch_length;
}

/* ---- closing the files of deleted segments ----
 * The last close of an unlinked file frees its blocks, and on ext4 mounted with
 * `discard` and no journal (the build VM's root) it also discards them and waits:
 * closing the ten 64 MiB segments a compaction pass replaced took the log thread
 * 250-300 ms, a stall of every produce request (docs/bench.md, issue 17). Retention and
 * truncation delete segments too, and DeleteTopics whole logs. So the descriptors of a
 * gone segment, and the cleaner's dups of its inputs, are closed by one background
 * thread; the unlink, which is what a crash sees, stays where it was, in order with the
 * directory fsyncs (a crash before the close leaves an orphan inode, which the file
 * system frees at mount).
 * Off the log thread is not enough: a burst of discards (a pass frees ~1 GB at once)
 * still held the disk's queue, and the log's fdatasyncs behind it, for 100-250 ms. So
 * the thread also frees a gone segment's blocks gradually: it shrinks the file by
 * CLOSER_STEP_BYTES at a time (on ext4 without a journal each step's discard is
 * synchronous) and after each step waits three times as long as the step took, at
 * least CLOSER_PAUSE_NS: the disk spends about a quarter of its time on them at most.
 * It runs at nice 19 in the idle I/O class. Until then the blocks stay allocated, as
 * while a read holds the file; with more than CLOSER_BACKLOG_MAX descriptors waiting it
 * closes without pauses, so space is never held back without bound. */

#define CLOSER_STEP_BYTES  (16 << 20)
#define CLOSER_PAUSE_NS    2000000
#define CLOSER_BACKLOG_MAX 256 /* descriptors waiting: beyond, no pauses */

struct closing {
	int fd;
	bool shrink; /* a gone segment's read-write descriptor: free its blocks in steps */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct closing *fds;
	size_t count, cap;
	size_t busy;          /* taken by the thread, not yet closed */
	atomic_ullong handed; /* descriptors handed over since start (tests) */
	bool started, failed;
} closer = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Frees @fd's blocks CLOSER_STEP_BYTES at a time from the end, pausing between steps;
 * only when no name is left to the file: an unlink that failed, or a hard link an
 * operator's backup made, keeps it whole. */
static void closer_shrink(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_nlink != 0)
		return;
	for (off_t size = st.st_size; size > 0;) {
		size = size > CLOSER_STEP_BYTES ? size - CLOSER_STEP_BYTES : 0;
		int64_t started = tl_mono_ns();
		if (ftruncate(fd, size) != 0)
			return; /* the close frees the rest at once */
		int64_t pause = TL_MAX(3 * (tl_mono_ns() - started), (int64_t)CLOSER_PAUSE_NS);
		struct timespec ts = {.tv_sec = pause / 1000000000, .tv_nsec = pause % 1000000000};
		nanosleep(&ts, NULL);
	}
}

static void *closer_main(void *arg)
{
	(void)arg;
	/* Its discards queue behind the log's writes where the I/O scheduler has classes
	 * (mq-deadline, bfq; any user may take the idle class). */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	(void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, (int)gettid(),
		      IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0));
	struct closing fds[64];
	pthread_mutex_lock(&closer.lock);
	for (;;) {
		while (closer.count == 0)
			pthread_cond_wait(&closer.wake, &closer.lock);
		size_t n = TL_MIN(closer.count, TL_ARRAY_SIZE(fds));
		bool hurry = closer.count > CLOSER_BACKLOG_MAX; /* then free space first */
		memcpy(fds, closer.fds, n * sizeof(*fds));
		memmove(closer.fds, closer.fds + n, (closer.count - n) * sizeof(*fds));
		closer.count -= n;
		closer.busy = n;
		pthread_mutex_unlock(&closer.lock);
		for (size_t i = 0; i < n; i++) {
			if (fds[i].shrink && !hurry)
				closer_shrink(fds[i].fd);
			close(fds[i].fd);
		}
		pthread_mutex_lock(&closer.lock);
		closer.busy = 0;
		pthread_cond_broadcast(&closer.wake);
	}
	return NULL;
}

/* A forked child has no closer thread: it starts its own if it needs one. */
static void closer_fork_prepare(void)
{
	pthread_mutex_lock(&closer.lock);
}

static void closer_fork_parent(void)
{
	pthread_mutex_unlock(&closer.lock);
}

static void closer_fork_child(void)
{
	for (size_t i = 0; i < closer.count; i++)
		close(closer.fds[i].fd); /* the child's copies; the parent closes its own */
	closer.count = 0;
	closer.busy = 0; /* (the child keeps its copies of those until it exits or execs) */
	closer.started = false;
	pthread_cond_init(&closer.wake, NULL);
	pthread_mutex_init(&closer.lock, NULL);
}

/* Closes @fd (-1: nothing) in the closer thread, after freeing its blocks in steps with
 * @shrink (the file must be gone); inline if that thread cannot be had. */
static void close_later(int fd, bool shrink)
{
	if (fd < 0)
		return;
	pthread_mutex_lock(&closer.lock);
	if (!closer.started && !closer.failed) {
		pthread_t thread;
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old); /* it takes no signal */
		closer.started = pthread_create(&thread, NULL, closer_main, NULL) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		closer.failed = !closer.started;
		if (closer.started)
			pthread_detach(thread);
		static bool fork_handlers;
		if (!fork_handlers)
			fork_handlers = pthread_atfork(closer_fork_prepare, closer_fork_parent,
						       closer_fork_child) == 0;
	}
	if (closer.started && closer.count == closer.cap) {
		size_t cap = closer.cap ? closer.cap * 2 : 64;
		struct closing *fds = realloc(closer.fds, cap * sizeof(*fds));
		if (fds) {
			closer.fds = fds;
			closer.cap = cap;
		}
	}
	bool queued = closer.started && closer.count < closer.cap;
	if (queued) {
		closer.fds[closer.count++] = (struct closing){.fd = fd, .shrink = shrink};
		atomic_fetch_add(&closer.handed, 1);
		pthread_cond_signal(&closer.wake);
	}
	pthread_mutex_unlock(&closer.lock);
	if (!queued)
		close(fd);
}

/* A segment's descriptor (-1: none): a gone segment's through the closer. */
static void close_segment_fd(int fd, bool gone, bool shrink)
{
	if (gone)
		close_later(fd, shrink);
	else if (fd != -1)
		close(fd);
}

uint64_t tl_log_closes_handed(void)
{
	return atomic_load(&closer.handed);
}

void tl_log_closes_drain(void)
{
	pthread_mutex_lock(&closer.lock);
	while (closer.count > 0 || closer.busy > 0)
		pthread_cond_wait(&closer.wake, &closer.lock);
	pthread_mutex_unlock(&closer.lock);
}

/* ---- segments and their indexes ---- */

static uint32_t index_rel(const struct tl_log_segment *segment, uint32_t i)
{
	return tl_be32_get(segment->index + (size_t)i * INDEX_ENTRY_BYTES);
}

static uint32_t index_pos(const struct tl_log_segment *segment, uint32_t i)
{
	return tl_be32_get(segment->index + (size_t)i * INDEX_ENTRY_BYTES + 4);
}

static int64_t timeindex_ts(const struct tl_log_segment *segment, uint32_t i)
{
	return (int64_t)tl_be64_get(segment->timeindex + (size_t)i * TIMEINDEX_ENTRY_BYTES);
}

static uint32_t timeindex_rel(const struct tl_log_segment *segment, uint32_t i)
{
	return tl_be32_get(segment->timeindex + (size_t)i * TIMEINDEX_ENTRY_BYTES + 8);
}

static void segment_reset_indexes(struct tl_log_segment *segment)
{
	segment->index_count = 0;
	segment->timeindex_count = 0;
	segment->bytes_since_index = 0;
	segment->max_timestamp = -1;
	segment->max_timestamp_offset = -1;
}

static tl_err timeindex_push(struct tl_log_segment *segment, int64_t timestamp, int64_t offset)
{
	if (segment->timeindex_count > 0 &&
	    timeindex_ts(segment, segment->timeindex_count - 1) >= timestamp)
		return TL_OK;
	if (grow((void **)&segment->timeindex, &segment->timeindex_cap,
		 segment->timeindex_count + 1, TIMEINDEX_ENTRY_BYTES) != TL_OK)
		return TL_ERR_NOMEM;
	uint8_t *e = segment->timeindex + (size_t)segment->timeindex_count * TIMEINDEX_ENTRY_BYTES;
	tl_be64_put(e, (uint64_t)timestamp);
	tl_be32_put(e + 8, (uint32_t)(offset - segment->base_offset));
	segment->timeindex_count++;
	return TL_OK;
}

/* Accounts for a batch placed at @position: the index entries, the max timestamp and the
 * segment's end. The first batch of a segment is always indexed. */
static tl_err segment_track(struct tl_log_segment *segment, const struct tl_batch_header *h,
			    int64_t position, int32_t interval_bytes)
{
	int64_t size = batch_bytes(h);
	if (segment->index_count == 0 || segment->bytes_since_index >= interval_bytes) {
		if (grow((void **)&segment->index, &segment->index_cap, segment->index_count + 1,
			 INDEX_ENTRY_BYTES) != TL_OK)
			return TL_ERR_NOMEM;
		uint8_t *e = segment->index + (size_t)segment->index_count * INDEX_ENTRY_BYTES;
		tl_be32_put(e, (uint32_t)(h->base_offset - segment->base_offset));
		tl_be32_put(e + 4, (uint32_t)position);
		segment->index_count++;
		segment->bytes_since_index = 0;
		if (segment->max_timestamp >= 0 &&
		    timeindex_push(segment, segment->max_timestamp,
				   segment->max_timestamp_offset) != TL_OK)
			return TL_ERR_NOMEM;
	}
	segment->bytes_since_index += size;
	if (h->max_timestamp > segment->max_timestamp) {
		segment->max_timestamp = h->max_timestamp;
		segment->max_timestamp_offset = tl_batch_last_offset(h);
	}
	segment->bytes = position + size;
	segment->next_offset = tl_batch_last_offset(h) + 1;
	return TL_OK;
}

static struct tl_log_segment *segment_new(int64_t base_offset, int fd)
{
	struct tl_log_segment *segment = calloc(1, sizeof(*segment));
	if (!segment)
		return NULL;
	segment->base_offset = base_offset;
	segment->fd = fd;
	segment->dio_fd = -1;
	segment->dio_read_fd = -1;
	segment->refs = 1;
	segment->next_offset = base_offset;
	segment->next_offset_durable = base_offset;
	segment->next_offset_written = base_offset;
	segment->first_append_ms = -1;
	segment_reset_indexes(segment);
	return segment;
}

static void segment_put(struct tl_log_segment *segment)
{
	TL_ASSERT(segment->refs > 0);
	if (--segment->refs > 0)
		return;
	/* The read-write descriptor first: one of the others may be the file's last. */
	close_segment_fd(segment->fd, segment->gone, true);
	close_segment_fd(segment->dio_fd, segment->gone, false);
	close_segment_fd(segment->dio_read_fd, segment->gone, false);
	free(segment->index);
	free(segment->timeindex);
	free(segment);
}

void tl_log_read_release(void *segment)
{
	segment_put(segment);
}

/* Writes @len bytes, then @tail_len bytes of @tail, to @name in the log directory through
 * a temporary file and a rename. With @durable the file is fsynced first (the caller
 * syncs the directory). */
static tl_err file_replace_tail(struct tl_log *log, const char *name, const void *data, size_t len,
				const void *tail, size_t tail_len, bool durable)
{
	char tmp[NAME_BYTES + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int fd = openat(log->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		set_error(log, "open", tmp, errno);
		return TL_ERR_IO;
	}
	const void *parts[2] = {data, tail};
	size_t lens[2] = {len, tail_len};
	for (int i = 0; i < 2; i++) {
		const uint8_t *p = parts[i];
		size_t left = lens[i];
		while (left > 0) {
			ssize_t n = write(fd, p, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				set_error(log, "write", tmp, n < 0 ? errno : EIO);
				goto out_unlink;
			}
			p += n;
			left -= (size_t)n;
		}
	}
	if (durable && fdatasync(fd) == -1) {
		set_error(log, "fdatasync", tmp, errno);
		goto out_unlink;
	}
	close(fd);
	if (renameat(log->dir_fd, tmp, log->dir_fd, name) == -1) {
		set_error(log, "rename", tmp, errno);
		unlinkat(log->dir_fd, tmp, 0);
		return TL_ERR_IO;
	}
	return TL_OK;
out_unlink:
	close(fd);
	unlinkat(log->dir_fd, tmp, 0);
	return TL_ERR_IO;
}

static tl_err file_replace(struct tl_log *log, const char *name, const void *data, size_t len,
			   bool durable)
{
	return file_replace_tail(log, name, data, len, NULL, 0, durable);
}

size_t tl_log_index_entry_bytes(enum tl_log_index_kind kind)
{
	switch (kind) {
	case TL_LOG_INDEX_OFFSET:
		return INDEX_ENTRY_BYTES;
	case TL_LOG_INDEX_TIME:
		return TIMEINDEX_ENTRY_BYTES;
	case TL_LOG_INDEX_TXN:
		return TXNINDEX_ENTRY_BYTES;
	}
	return 0;
}

void tl_log_index_trailer_put(uint8_t *trailer, enum tl_log_index_kind kind, const void *entries,
			      uint32_t count, int64_t end_offset)
{
	tl_be32_put(trailer, INDEX_TRAILER_MAGIC);
	trailer[4] = (uint8_t)kind;
	trailer[5] = INDEX_TRAILER_VERSION;
	tl_be16_put(trailer + 6, 0);
	tl_be32_put(trailer + 8, count);
	tl_be64_put(trailer + 12, (uint64_t)end_offset);
	uint32_t crc = tl_crc32c(0, entries, (size_t)count * tl_log_index_entry_bytes(kind));
	tl_be32_put(trailer + 20, tl_crc32c(crc, trailer, 20));
}

tl_err tl_log_index_check(const uint8_t *data, size_t len, enum tl_log_index_kind kind,
			  uint32_t *count_out, int64_t *end_offset_out, const char **why)
{
	size_t entry = tl_log_index_entry_bytes(kind);
	if (len < TL_LOG_INDEX_TRAILER_BYTES) {
		*why = len == 0 ? "empty: no trailer" : "shorter than its trailer";
		return TL_ERR_CORRUPT;
	}
	const uint8_t *t = data + len - TL_LOG_INDEX_TRAILER_BYTES;
	if (tl_be32_get(t) != INDEX_TRAILER_MAGIC) {
		*why = "no trailer (cut short, zero-filled, or written before trailers)";
		return TL_ERR_CORRUPT;
	}
	if (t[4] != (uint8_t)kind || t[5] != INDEX_TRAILER_VERSION || tl_be16_get(t + 6) != 0) {
		*why = "trailer of another kind or version";
		return TL_ERR_CORRUPT;
	}
	uint32_t count = tl_be32_get(t + 8);
	if ((uint64_t)count * entry != len - TL_LOG_INDEX_TRAILER_BYTES) {
		*why = "trailer's entry count does not match the file's size";
		return TL_ERR_CORRUPT;
	}
	if (tl_crc32c(tl_crc32c(0, data, len - TL_LOG_INDEX_TRAILER_BYTES), t, 20) !=
	    tl_be32_get(t + 20)) {
		*why = "CRC-32C mismatch";
		return TL_ERR_CORRUPT;
	}
	*count_out = count;
	*end_offset_out = (int64_t)tl_be64_get(t + 12);
	return TL_OK;
}

/* Writes @count entries of @kind as @segment's index file with @suffix, with its trailer. */
static tl_err index_file_replace(struct tl_log *log, const struct tl_log_segment *segment,
				 const char *suffix, enum tl_log_index_kind kind,
				 const void *entries, uint32_t count, bool durable)
{
	char name[NAME_BYTES];
	uint8_t trailer[TL_LOG_INDEX_TRAILER_BYTES];
	segment_name(name, segment->base_offset, suffix);
	tl_log_index_trailer_put(trailer, kind, entries, count, segment->next_offset);
	return file_replace_tail(log, name, entries, (size_t)count * tl_log_index_entry_bytes(kind),
				 trailer, sizeof(trailer), durable);
}

/* Reads a whole small file into a malloc'd buffer. TL_ERR_NOT_FOUND when absent. */
static tl_err file_slurp(struct tl_log *log, const char *name, uint8_t **data_out, size_t *len_out)
{
	int fd = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? TL_ERR_NOT_FOUND : TL_ERR_IO;
	struct stat st;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return TL_ERR_IO;
	}
	size_t len = (size_t)st.st_size;
	uint8_t *data = malloc(len ? len : 1);
	if (!data) {
		close(fd);
		return TL_ERR_NOMEM;
	}
	ssize_t n = len ? pread(fd, data, len, 0) : 0;
	close(fd);
	if (n != (ssize_t)len) {
		free(data);
		return TL_ERR_IO;
	}
	*data_out = data;
	*len_out = len;
	return TL_OK;
}

/* A file holding "<offset>\n": TL_OK with *@out, TL_ERR_NOT_FOUND when absent,
 * TL_ERR_CORRUPT when it holds anything else, or file_slurp()'s error. */
static tl_err offset_file_read(struct tl_log *log, const char *name, int64_t *out)
{
	uint8_t *data;
	size_t len;
	tl_err err = file_slurp(log, name, &data, &len);
	if (err != TL_OK)
		return err;
	char text[32] = "";
	memcpy(text, data, TL_MIN(len, sizeof(text) - 1));
	free(data);
	char *end;
	long long offset = strtoll(text, &end, 10);
	if (end == text || *end != '\n' || offset < 0)
		return TL_ERR_CORRUPT;
	*out = (int64_t)offset;
	return TL_OK;
}

/* Reads @segment's index file with @suffix and checks its trailer (tl_log_index_check):
 * on TL_OK *data_out (malloc'd, the entries first) holds *count_out entries of a segment
 * that ended at *end_out. TL_ERR_NOT_FOUND when absent, TL_ERR_CORRUPT when bad. */
static tl_err index_file_load(struct tl_log *log, const struct tl_log_segment *segment,
			      const char *suffix, enum tl_log_index_kind kind, uint8_t **data_out,
			      uint32_t *count_out, int64_t *end_out)
{
	char name[NAME_BYTES];
	uint8_t *data;
	size_t len;
	segment_name(name, segment->base_offset, suffix);
	tl_err err = file_slurp(log, name, &data, &len);
	if (err != TL_OK)
		return err;
	const char *why = NULL;
	err = tl_log_index_check(data, len, kind, count_out, end_out, &why);
	if (err != TL_OK) {
		tl_warn("log: bad index file, rebuilding it from the segment dir=%s file=%s "
			"bytes=%zu why=\"%s\"",
			log->dir, name, len, why);
		free(data);
		return err;
	}
	*data_out = data;
	return TL_OK;
}

/* The aborted transactions whose markers lie in @segment: [*first, *first + count). */
static uint32_t segment_aborted(const struct tl_log *log, const struct tl_log_segment *segment,
				uint32_t *first)
{
	uint32_t i = 0;
	while (i < log->aborted_count && log->aborted[i].last_offset < segment->base_offset)
		i++;
	uint32_t j = i;
	while (j < log->aborted_count && log->aborted[j].last_offset < segment->next_offset)
		j++;
	*first = i;
	return j - i;
}

static tl_err segment_write_txnindex(struct tl_log *log, const struct tl_log_segment *segment,
				     bool durable)
{
	uint32_t first;
	uint32_t count = segment_aborted(log, segment, &first);
	uint8_t *data = malloc((size_t)count * TXNINDEX_ENTRY_BYTES + 1);
	if (!data)
		return TL_ERR_NOMEM;
	for (uint32_t i = 0; i < count; i++) {
		const struct aborted_txn *a = &log->aborted[first + i];
		uint8_t *e = data + (size_t)i * TXNINDEX_ENTRY_BYTES;
		tl_be16_put(e, 0);
		tl_be64_put(e + 2, (uint64_t)a->producer_id);
		tl_be64_put(e + 10, (uint64_t)a->first_offset);
		tl_be64_put(e + 18, (uint64_t)a->last_offset);
		tl_be64_put(e + 26, (uint64_t)a->lso);
	}
	tl_err err = index_file_replace(log, segment, ".txnindex", TL_LOG_INDEX_TXN, data, count,
					durable);
	free(data);
	return err;
}

static tl_err aborted_push(struct tl_log *log, const struct aborted_txn *a)
{
	if (grow((void **)&log->aborted, &log->aborted_cap, log->aborted_count + 1,
		 sizeof(*log->aborted)) != TL_OK)
		return TL_ERR_NOMEM;
	TL_ASSERT(log->aborted_count == 0 ||
		  log->aborted[log->aborted_count - 1].last_offset < a->last_offset);
	log->aborted[log->aborted_count++] = *a;
	return TL_OK;
}

/* Loads @segment's .txnindex into the log's aborted list (segments load in order). Its
 * trailer must hold and name @next_offset, the segment's end; entries must have
 * increasing marker offsets inside the segment. Else txns_trusted stays false, so the
 * producer-state replay rebuilds them (and txnindexes_repair() writes them back). */
static tl_err segment_load_txnindex(struct tl_log *log, struct tl_log_segment *segment,
				    int64_t next_offset)
{
	uint8_t *data;
	uint32_t count;
	int64_t end;
	segment->txns_trusted = false;
	tl_err err =
		index_file_load(log, segment, ".txnindex", TL_LOG_INDEX_TXN, &data, &count, &end);
	if (err != TL_OK)
		return err;
	size_t len = (size_t)count * TXNINDEX_ENTRY_BYTES;
	uint32_t keep = log->aborted_count;
	err = end == next_offset ? TL_OK : TL_ERR_CORRUPT;
	for (size_t at = 0; err == TL_OK && at < len; at += TXNINDEX_ENTRY_BYTES) {
		struct aborted_txn a = {
			.producer_id = (int64_t)tl_be64_get(data + at + 2),
			.first_offset = (int64_t)tl_be64_get(data + at + 10),
			.last_offset = (int64_t)tl_be64_get(data + at + 18),
			.lso = (int64_t)tl_be64_get(data + at + 26),
		};
		if (tl_be16_get(data + at) != 0 || a.last_offset < segment->base_offset ||
		    a.last_offset >= next_offset || a.first_offset > a.last_offset ||
		    (log->aborted_count > 0 &&
		     log->aborted[log->aborted_count - 1].last_offset >= a.last_offset))
			err = TL_ERR_CORRUPT;
		else
			err = aborted_push(log, &a);
	}
	free(data);
	if (err != TL_OK)
		log->aborted_count = keep;
	segment->txns_trusted = err == TL_OK;
	return err;
}

/* Writes both index files of @segment. The time index ends with the segment's largest
 * timestamp so retention and lookups by time see it after a restart. */
static tl_err segment_write_indexes(struct tl_log *log, struct tl_log_segment *segment,
				    bool durable)
{
	if (segment->max_timestamp >= 0 &&
	    timeindex_push(segment, segment->max_timestamp, segment->max_timestamp_offset) != TL_OK)
		return TL_ERR_NOMEM;
	tl_err err = index_file_replace(log, segment, ".index", TL_LOG_INDEX_OFFSET, segment->index,
					segment->index_count, durable);
	if (err != TL_OK)
		return err;
	err = index_file_replace(log, segment, ".timeindex", TL_LOG_INDEX_TIME, segment->timeindex,
				 segment->timeindex_count, durable);
	if (err != TL_OK)
		return err;
	return segment_write_txnindex(log, segment, durable);
}

static void segment_unlink_indexes(struct tl_log *log, int64_t base_offset)
{
	char name[NAME_BYTES];
	segment_name(name, base_offset, ".index");
	unlinkat(log->dir_fd, name, 0);
	segment_name(name, base_offset, ".timeindex");
	unlinkat(log->dir_fd, name, 0);
	segment_name(name, base_offset, ".txnindex");
	unlinkat(log->dir_fd, name, 0);
}

static void segment_unlink(struct tl_log *log, int64_t base_offset)
{
	char name[NAME_BYTES];
	segment_name(name, base_offset, ".log");
	unlinkat(log->dir_fd, name, 0);
	segment_unlink_indexes(log, base_offset);
}

/* Unlinks @segment's files; its descriptors go to the closer once its last reference
 * drops (segment_put). */
static void segment_delete(struct tl_log *log, struct tl_log_segment *segment)
{
	segment_unlink(log, segment->base_offset);
	segment->gone = true;
}

/* Loads and checks a sealed segment's index files against its file of @file_bytes: each
 * file's trailer (whole, matching its CRC-32C, both naming the same end offset, which
 * goes to *end_out for the caller to check against the batches), the first entry at
 * (0, 0), strictly increasing offsets and positions inside the file, non-decreasing
 * timestamps, and the last entry naming a real batch header. TL_ERR_CORRUPT (or
 * NOT_FOUND) sends the caller to a rescan. */
static tl_err segment_load_indexes(struct tl_log *log, struct tl_log_segment *segment,
				   int64_t file_bytes, int64_t *end_out)
{
	uint8_t *data;
	uint32_t count;
	int64_t end;
	tl_err err = index_file_load(log, segment, ".index", TL_LOG_INDEX_OFFSET, &data, &count,
				     end_out);
	if (err != TL_OK)
		return err;
	free(segment->index);
	segment->index = data;
	segment->index_count = count;
	segment->index_cap = segment->index_count;
	if (segment->index_count == 0 || index_rel(segment, 0) != 0 || index_pos(segment, 0) != 0)
		return TL_ERR_CORRUPT;
	for (uint32_t i = 1; i < segment->index_count; i++)
		if (index_rel(segment, i) <= index_rel(segment, i - 1) ||
		    index_pos(segment, i) <= index_pos(segment, i - 1))
			return TL_ERR_CORRUPT;
	uint32_t last = segment->index_count - 1;
	struct tl_batch_header h;
	if (header_read(segment, index_pos(segment, last), file_bytes, &h) != TL_OK ||
	    h.base_offset != segment->base_offset + index_rel(segment, last))
		return TL_ERR_CORRUPT;

	err = index_file_load(log, segment, ".timeindex", TL_LOG_INDEX_TIME, &data, &count, &end);
	if (err != TL_OK)
		return err;
	free(segment->timeindex);
	segment->timeindex = data;
	segment->timeindex_count = count;
	segment->timeindex_cap = segment->timeindex_count;
	if (end != *end_out)
		return TL_ERR_CORRUPT;
	for (uint32_t i = 1; i < segment->timeindex_count; i++)
		if (timeindex_ts(segment, i) < timeindex_ts(segment, i - 1))
			return TL_ERR_CORRUPT;
	if (segment->timeindex_count > 0) {
		segment->max_timestamp = timeindex_ts(segment, segment->timeindex_count - 1);
		segment->max_timestamp_offset =
			segment->base_offset + timeindex_rel(segment, segment->timeindex_count - 1);
	}
	segment->bytes = file_bytes;
	segment->bytes_durable = file_bytes;
	segment->bytes_since_index = file_bytes - index_pos(segment, last);
	return TL_OK;
}

/* A sequential reader over one segment file with a growable buffer. */
struct scan {
	int fd;
	int64_t file_bytes;
	uint8_t *buf;
	size_t cap;
	int64_t buf_pos; /* file position of buf[0] */
	size_t buf_len;
};

/* Makes [position, position + need) available at scan_at(); false at end of file or on a
 * read error (*err set). */
static bool scan_ensure(struct scan *scan, int64_t position, size_t need, tl_err *err)
{
	if (position >= scan->buf_pos &&
	    position + (int64_t)need <= scan->buf_pos + (int64_t)scan->buf_len)
		return true;
	if (position + (int64_t)need > scan->file_bytes)
		return false;
	if (need > scan->cap) {
		uint8_t *bigger = realloc(scan->buf, need);
		if (!bigger) {
			*err = TL_ERR_NOMEM;
			return false;
		}
		scan->buf = bigger;
		scan->cap = need;
	}
	size_t want = (size_t)TL_MIN((int64_t)scan->cap, scan->file_bytes - position);
	ssize_t n = pread(scan->fd, scan->buf, want, (off_t)position);
	if (n < 0) {
		*err = TL_ERR_IO;
		return false;
	}
	scan->buf_pos = position;
	scan->buf_len = (size_t)n;
	return scan->buf_len >= need;
}

static const uint8_t *scan_at(const struct scan *scan, int64_t position)
{
	return scan->buf + (position - scan->buf_pos);
}

/* True when the batch length field at @position (or what is left of it) is zero: the end
 * of a direct write's padding or of preallocated space, not a torn batch. */
static bool zeros_at(int fd, int64_t position, int64_t file_bytes)
{
	uint8_t head[TL_BATCH_LOG_OVERHEAD];
	size_t want = (size_t)TL_MIN((int64_t)sizeof(head), file_bytes - position);
	if (pread(fd, head, want, (off_t)position) != (ssize_t)want)
		return false;
	for (size_t i = 0; i < want; i++)
		if (head[i] != 0)
			return false;
	return true;
}

/* Scans @segment from its start, checking each batch whole (length, magic, CRC-32C, base
 * offset continuity; a @sealed segment may have compaction's holes) and rebuilding its
 * indexes; cuts the file at the first bad byte. What survives is made durable: after a
 * kill -9 the page cache may still hold bytes the disk does not. Sets *cut_out when it
 * truncated. */
static tl_err segment_recover(struct tl_log *log, struct tl_log_segment *segment,
			      int64_t file_bytes, bool sealed, bool *cut_out)
{
	char name[NAME_BYTES];
	segment_name(name, segment->base_offset, ".log");
	segment_reset_indexes(segment);
	segment->bytes = 0;
	segment->next_offset = segment->base_offset;
	*cut_out = false;
	struct scan scan = {.fd = segment->fd, .file_bytes = file_bytes, .cap = SCAN_BUFFER_BYTES};
	scan.buf = malloc(scan.cap);
	if (!scan.buf)
		return TL_ERR_NOMEM;
	int64_t position = 0;
	const char *why = "truncated batch";
	tl_err err = TL_OK;
	while (position < file_bytes) {
		why = "truncated batch";
		if (!scan_ensure(&scan, position, TL_BATCH_LOG_OVERHEAD, &err))
			break;
		int64_t size = tl_batch_size(scan_at(&scan, position), TL_BATCH_LOG_OVERHEAD);
		if (size < TL_BATCH_HEADER_BYTES || size > file_bytes - position) {
			why = "batch length out of range";
			break;
		}
		if (!scan_ensure(&scan, position, (size_t)size, &err))
			break;
		struct tl_batch_header h;
		if (tl_batch_validate_stored(scan_at(&scan, position), (size_t)size, &h, &why) !=
		    TL_OK)
			break;
		/* Compaction leaves holes (h.base_offset above next_offset) in sealed
		 * segments, never in the active one (where a jump is damage), and never
		 * moves a segment's first batch or an offset backwards. A replica's log
		 * also takes holes wherever a leader's compacted range fell in it (the
		 * active segment, a segment's start): there only backwards is damage. */
		bool holes = log->offset_holes;
		if (h.base_offset < segment->next_offset ||
		    (h.base_offset > segment->next_offset && !sealed && !holes) ||
		    (position == 0 && h.base_offset != segment->base_offset && !holes)) {
			why = "batch offset does not follow the previous batch";
			break;
		}
		if (tl_batch_last_offset(&h) - segment->base_offset > INT32_MAX) {
			why = "batch offset beyond the segment's range";
			break;
		}
		err = segment_track(segment, &h, position, log->config.index_interval_bytes);
		if (err != TL_OK)
			break;
		position += size;
	}
	free(scan.buf);
	if (err != TL_OK) {
		set_error(log, "read", name, err == TL_ERR_IO ? errno : ENOMEM);
		return err;
	}
	if (position < file_bytes && zeros_at(segment->fd, position, file_bytes)) {
		tl_info("log: end found in preallocated space, cutting it dir=%s segment=%s "
			"position=%" PRId64 " bytes=%" PRId64,
			log->dir, name, position, file_bytes);
	} else if (position < file_bytes) {
		tl_warn("log: truncating torn segment dir=%s segment=%s position=%" PRId64
			" bytes=%" PRId64 " why=\"%s\"",
			log->dir, name, position, file_bytes, why);
	}
	if (position < file_bytes) {
		if (ftruncate(segment->fd, (off_t)position) == -1) {
			set_error(log, "truncate", name, errno);
			return TL_ERR_IO;
		}
		*cut_out = true;
	}
	if (fdatasync(segment->fd) == -1) {
		set_error(log, "fdatasync", name, errno);
		return TL_ERR_IO;
	}
	segment->bytes = position;
	segment->bytes_durable = position;
	return TL_OK;
}

static tl_err segments_push(struct tl_log *log, struct tl_log_segment *segment)
{
	if (grow((void **)&log->segments, &log->segment_cap, log->segment_count + 1,
		 sizeof(*log->segments)) != TL_OK)
		return TL_ERR_NOMEM;
	log->segments[log->segment_count++] = segment;
	return TL_OK;
}

static struct tl_log_segment *active_segment(const struct tl_log *log)
{
	TL_ASSERT(log->segment_count > 0);
	return log->segments[log->segment_count - 1];
}

static tl_err segment_open_direct(struct tl_log *log, struct tl_log_segment *segment);

/* Creates the file of a new segment at @base_offset and makes its directory entry
 * durable before anything in it can be acknowledged. */
static tl_err segment_create(struct tl_log *log, int64_t base_offset)
{
	char name[NAME_BYTES];
	segment_name(name, base_offset, ".log");
	int fd = openat(log->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		set_error(log, "create", name, errno);
		return TL_ERR_IO;
	}
	struct tl_log_segment *segment = segment_new(base_offset, fd);
	if (!segment) {
		close(fd);
		unlinkat(log->dir_fd, name, 0);
		return TL_ERR_NOMEM;
	}
	tl_err err = log->direct ? segment_open_direct(log, segment) : TL_OK;
	if (err == TL_OK)
		err = sync_dir(log);
	if (err == TL_OK)
		err = segments_push(log, segment);
	if (err != TL_OK) {
		segment_put(segment);
		unlinkat(log->dir_fd, name, 0);
	}
	return err;
}

/* ---- direct I/O ----
 *
 * With log.direct.io (and a file system that takes O_DIRECT) the write stage copies each
 * round's batches into one DIO_ALIGN-aligned stage and writes it through a second, O_DIRECT
 * descriptor of the segment, in whole blocks: a round starts at the block holding its
 * first byte, so that block's bytes already written (the tail, kept in memory from the
 * round before, read back from the file after an open or a truncation) are written again,
 * identical, ahead of the new ones; the round's last block is padded with zeros, which
 * the next round overwrites. So a write torn anywhere, the tail block's rewrite included,
 * changes no byte below the old end: acknowledged batches keep their bytes, and recovery
 * cuts at the first batch whose length or CRC fails (the zeros after the end included).
 * Reads, syncs and recovery keep using the buffered descriptor: a direct write drops the
 * page cache's copy of the range it wrote.
 * Space is fallocated ahead in steps of log.preallocate.bytes (the file size grows with
 * it, so appends never change the size); a sealed segment is cut back to its last batch
 * once durable, the active one at clean close, and recovery cuts zeros after a crash.
 * Without O_DIRECT (tmpfs: EINVAL) or with log.direct.io=false the rounds are buffered
 * writevs of the callers' bytes, as before. */

static atomic_bool direct_off_logged; /* one line per process, not one per partition */

/* Opens @segment's O_DIRECT write descriptor, once. */
static tl_err segment_open_direct(struct tl_log *log, struct tl_log_segment *segment)
{
	if (segment->dio_fd != -1)
		return TL_OK;
	char name[NAME_BYTES];
	segment_name(name, segment->base_offset, ".log");
	segment->dio_fd = openat(log->dir_fd, name, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (segment->dio_fd == -1) {
		set_error(log, "open O_DIRECT", name, errno);
		return TL_ERR_IO;
	}
	return TL_OK;
}

/* Decides at open whether this log writes with O_DIRECT: asked for, and the file system
 * of its active segment takes it. Says so once per process when it does not. */
static void direct_setup(struct tl_log *log)
{
	log->tail_base = -1;
	log->direct = false;
	const char *why = "log.direct.io=false";
	if (log->config.direct_io) {
		if (segment_open_direct(log, active_segment(log)) == TL_OK) {
			log->direct = true;
			return;
		}
		why = log->last_error;
	}
	if (!atomic_exchange(&direct_off_logged, true))
		tl_info("log: direct I/O off, segments are written through the page cache dir=%s "
			"why=\"%s\"",
			log->dir, why);
}

bool tl_log_is_direct(const struct tl_log *log)
{
	return log->direct;
}

/* Cuts @segment's file back to its last batch and drops its O_DIRECT descriptor: it is
 * sealed and durable, no write of it is in flight. Not synced: if a crash brings the
 * zeros back, recovery cuts them again. */
static void segment_trim(struct tl_log *log, struct tl_log_segment *segment)
{
	TL_ASSERT(segment->bytes_durable == segment->bytes);
	if (segment->dio_fd != -1) {
		close(segment->dio_fd);
		segment->dio_fd = -1;
	}
	if (segment->file_end <= segment->bytes)
		return;
	if (ftruncate(segment->fd, (off_t)segment->bytes) == -1) {
		tl_warn("log: cannot cut preallocated space dir=%s segment=%020" PRId64 " err=%s",
			log->dir, segment->base_offset, strerrorname_np(errno));
		return;
	}
	segment->file_end = segment->bytes;
}

/* Fills @out with the @bytes written bytes of @segment's block at @position (the part of
 * the block a round rewrites): from memory when the last round left them there, else
 * from the file, where the last direct write (completed) put them. */
static tl_err tail_fill(struct tl_log *log, const struct tl_log_segment *segment, int64_t position,
			uint32_t bytes, uint8_t *out)
{
	TL_ASSERT(position % DIO_ALIGN == 0);
	TL_ASSERT(bytes > 0 && bytes < DIO_ALIGN);
	if (log->tail_base == segment->base_offset && log->tail_position == position &&
	    log->tail_bytes == bytes) {
		memcpy(out, log->tail, bytes);
		return TL_OK;
	}
	ssize_t n = pread(segment->fd, out, bytes, (off_t)position);
	if (n != (ssize_t)bytes) {
		char name[NAME_BYTES];
		segment_name(name, segment->base_offset, ".log");
		set_error(log, "read tail block", name, n == -1 ? errno : EIO);
		return TL_ERR_IO;
	}
	return TL_OK;
}

/* Makes @segment's file reach @end (a DIO_ALIGN multiple) before a direct write up to
 * there: fallocates ahead in steps of log.preallocate.bytes, not much past
 * log.segment.bytes. A failed fallocate is logged and turns preallocation off for this
 * log; the write then extends the file itself. */
static void segment_preallocate(struct tl_log *log, struct tl_log_segment *segment, int64_t end)
{
	if (end <= segment->file_end)
		return;
	int64_t step = log->config.preallocate ? log->config.preallocate_bytes : 0;
	if (step > 0 && !log->preallocate_off) {
		int64_t want = (end + step - 1) / step * step;
		int64_t cap = (log->config.segment_bytes + DIO_ALIGN - 1) / DIO_ALIGN * DIO_ALIGN;
		want = TL_MAX(TL_MIN(want, cap), end);
		if (fallocate(segment->fd, 0, (off_t)segment->file_end,
			      (off_t)(want - segment->file_end)) == 0) {
			segment->file_end = want;
			return;
		}
		tl_warn("log: fallocate failed, preallocation off for this partition dir=%s "
			"err=%s",
			log->dir, strerrorname_np(errno));
		log->preallocate_off = true;
	}
	segment->file_end = end;
}

static atomic_bool fixed_off_logged; /* one line per process, not one per partition */
static atomic_bool fixed_on_logged;

/* Frees the stage, unregistering it first; only between rounds. */
static void stage_free(struct tl_log *log)
{
	TL_ASSERT(log->writes_left == 0);
	if (log->stage_slot >= 0) {
		tl_ring_buffer_unregister(log->ring, log->stage_slot);
		log->stage_slot = -1;
	}
	free(log->stage);
	log->stage = NULL;
	log->stage_cap = 0;
}

/* Registers the stage with the ring, so rounds are written with WRITE_FIXED (the kernel
 * pins its pages once, not per write). Where the ring refuses (the sync engine, the
 * memlock limit, its slots or bytes used up) the rounds are plain writevs of the same
 * stage; said once per process. */
static void stage_register(struct tl_log *log)
{
	if (log->stage_fixed_off)
		return;
	tl_err err =
		tl_ring_buffer_register(log->ring, log->stage, log->stage_cap, &log->stage_slot);
	if (err == TL_OK) {
		if (!atomic_exchange(&fixed_on_logged, true))
			tl_info("log: direct writes from registered buffers dir=%s bytes=%zu",
				log->dir, log->stage_cap);
		return;
	}
	int e = errno;
	log->stage_fixed_off = true;
	if (!atomic_exchange(&fixed_off_logged, true))
		tl_info("log: registered buffers off, direct writes are plain writevs dir=%s "
			"bytes=%zu err=%s%s",
			log->dir, log->stage_cap,
			err == TL_ERR_NOMEM ? "ENOMEM" : strerrorname_np(e),
			e == ENOMEM ? " (RLIMIT_MEMLOCK?)" : "");
}

/* Room for @bytes in the stage; only between rounds. */
static tl_err stage_reserve(struct tl_log *log, size_t bytes)
{
	TL_ASSERT(log->writes_left == 0);
	if (bytes <= log->stage_cap)
		return TL_OK;
	size_t cap = (bytes + (1 << 20) - 1) & ~(size_t)((1 << 20) - 1);
	void *stage;
	if (posix_memalign(&stage, DIO_ALIGN, cap) != 0)
		return TL_ERR_NOMEM;
	stage_free(log);
	log->stage = stage;
	log->stage_cap = cap;
	stage_register(log);
	return TL_OK;
}

/* Test-only (test.fault.log.crash.point): dies like kill -9 at @point of the round
 * configured, after doing the part of the round's writes that the point names. */
static void direct_crash_point(struct tl_log *log, int point, int32_t round)
{
	if (log->config.test_crash_point != point || log->config.test_crash_round != round)
		return;
	ssize_t n = 0;
	if (point == TL_LOG_CRASH_TORN_TAIL_BLOCK) {
		/* Through the page cache, which outlives the process: the block reads back
		 * half new, half as it was. */
		const struct flush_op *first = &log->write_ops[0];
		n = pwrite(first->segment->fd, first->iov.iov_base, DIO_ALIGN / 2,
			   (off_t)first->from);
	}
	for (uint32_t k = 0; point == TL_LOG_CRASH_TORN_ROUND && k < log->writes_left; k++) {
		const struct flush_op *w = &log->write_ops[k];
		size_t bytes = w->iov.iov_len - (k + 1 == log->writes_left ? DIO_ALIGN : 0);
		n = pwrite(w->segment->dio_fd, w->iov.iov_base, bytes, (off_t)w->from);
	}
	tl_crit("log: test fault, killing the process point=%d round=%d wrote=%zd", point, round,
		n);
	raise(SIGKILL);
}

/* ---- producer-state snapshots ---- */

static void snapshot_name(char *out, int64_t offset)
{
	segment_name(out, offset, ".snapshot");
}

/* Deletes snapshot files no longer needed: kept are the SNAPSHOTS_KEPT newest and the
 * newest at or below the active segment's base, which recovery after a crash needs
 * (the active segment is then rescanned from its base). */
static void snapshots_prune(struct tl_log *log)
{
	int64_t base = active_segment(log)->base_offset;
	bool have_base = false;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < TL_ARRAY_SIZE(log->snapshots); i++) {
		int64_t offset = log->snapshots[i];
		if (offset < 0)
			break;
		bool keep = kept < SNAPSHOTS_KEPT || (!have_base && offset <= base);
		if (offset <= base)
			have_base = true;
		if (!keep) {
			char name[NAME_BYTES];
			snapshot_name(name, offset);
			unlinkat(log->dir_fd, name, 0);
			continue;
		}
		log->snapshots[kept++] = offset;
	}
	for (uint32_t i = kept; i < TL_ARRAY_SIZE(log->snapshots); i++)
		log->snapshots[i] = -1;
}

/* Writes a snapshot of the producer table as of the log end. */
static tl_err snapshot_write(struct tl_log *log, bool durable)
{
	int64_t offset = log->end_offset;
	if (log->snapshots[0] == offset && !durable)
		return TL_OK;
	uint8_t *data;
	size_t len;
	tl_err err = tl_pstate_encode(&log->pstate, offset, &data, &len);
	if (err != TL_OK)
		return err;
	char name[NAME_BYTES];
	snapshot_name(name, offset);
	err = file_replace(log, name, data, len, durable);
	free(data);
	if (err != TL_OK)
		return err;
	if (log->snapshots[0] != offset) {
		size_t n = TL_ARRAY_SIZE(log->snapshots);
		if (log->snapshots[n - 1] >= 0) {
			snapshot_name(name, log->snapshots[n - 1]);
			unlinkat(log->dir_fd, name, 0);
		}
		memmove(log->snapshots + 1, log->snapshots, (n - 1) * sizeof(log->snapshots[0]));
		log->snapshots[0] = offset;
	}
	snapshots_prune(log);
	return TL_OK;
}

/* What a marker batch says: its control type (-1 for other batches) and the epoch of
 * the coordinator that wrote it (-1 when unknown). */
struct marker_info {
	int type;
	int32_t coordinator_epoch;
};

static struct marker_info marker_parse(const struct tl_batch_header *h, const uint8_t *data,
				       size_t len)
{
	struct marker_info m = {-1, -1};
	if (tl_batch_is_control(h))
		m.type = tl_batch_control_parse(data, len, &m.coordinator_epoch);
	return m;
}

/* The producer-state side of a batch with a producer id, or of a marker (@marker),
 * appended or replayed: updates the table and, for a marker that closes an open
 * transaction, the aborted index and (when @appending) the closing list. A marker also
 * records its coordinator's epoch, which fences markers of older coordinators. */
static tl_err txn_track(struct tl_log *log, const struct tl_batch_header *h,
			struct marker_info marker, bool appending)
{
	int64_t open_first = -1;
	int64_t lso = -1;
	if (tl_batch_is_control(h)) {
		const struct tl_pstate_entry *e = tl_pstate_find(&log->pstate, h->producer_id);
		open_first = e ? e->txn_first_offset : -1;
		if (open_first >= 0)
			lso = tl_pstate_first_open_txn(&log->pstate);
	}
	tl_err err = tl_pstate_update(&log->pstate, h);
	if (err != TL_OK)
		return err;
	if (marker.coordinator_epoch >= 0 && h->producer_id >= 0) {
		struct tl_pstate_entry *e = tl_pstate_find(&log->pstate, h->producer_id);
		if (e && marker.coordinator_epoch > e->coordinator_epoch)
			e->coordinator_epoch = marker.coordinator_epoch;
	}
	if (tl_batch_is_transactional(h) || tl_batch_is_control(h))
		log->first_open_txn = -2;
	if (open_first < 0)
		return TL_OK;
	if (appending) {
		if (grow((void **)&log->closing, &log->closing_cap, log->closing_count + 1,
			 sizeof(*log->closing)) != TL_OK)
			return TL_ERR_NOMEM;
		log->closing[log->closing_count++] = (struct closing_txn){
			.first_offset = open_first,
			.marker_offset = h->base_offset,
		};
	}
	if (marker.type != TL_BATCH_CONTROL_ABORT)
		return TL_OK;
	struct aborted_txn a = {
		.producer_id = h->producer_id,
		.first_offset = open_first,
		.last_offset = h->base_offset,
		.lso = lso,
	};
	return aborted_push(log, &a);
}

static int cmp_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Finds the segment holding @offset: the last with base_offset <= @offset, or the first. */
static uint32_t segment_index_for(const struct tl_log *log, int64_t offset)
{
	uint32_t lo = 0, hi = log->segment_count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (log->segments[mid]->base_offset <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The segment a read of @offset starts in: its own, or the next one when @offset lies
 * past what its own has written (a batch not written yet, or a hole the cleaner left at
 * its end). */
static struct tl_log_segment *read_segment(const struct tl_log *log, int64_t offset)
{
	uint32_t s = segment_index_for(log, offset);
	while (offset >= log->segments[s]->next_offset_written && s + 1 < log->segment_count)
		s++;
	return log->segments[s];
}

/* The file position of the indexed batch at or before @offset in @segment. */
static int64_t index_lookup(const struct tl_log_segment *segment, int64_t offset)
{
	if (segment->index_count == 0 || offset <= segment->base_offset)
		return 0;
	int64_t rel = offset - segment->base_offset;
	uint32_t lo = 0, hi = segment->index_count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if ((int64_t)index_rel(segment, mid) <= rel)
			lo = mid;
		else
			hi = mid;
	}
	return index_pos(segment, lo);
}

/* Whether @h is a placeholder a compaction pass left: no record and no producer (the
 * first or last batch of an output segment; see cleaner.h). It holds nothing a reader
 * or a follower needs but its offsets, which a hole serves as well. */
static bool batch_is_placeholder(const struct tl_batch_header *h)
{
	return h->records_count == 0 && h->producer_id < 0 && !tl_batch_is_control(h);
}

/* Where a read of @offset (in range) starts: *@max_offset cut to the written end (a
 * follower may read up to it, never past what the file holds), the segment holding
 * @offset and the position of the nearest index entry below it. False when nothing lies
 * below *@max_offset from @offset. */
static bool read_start(struct tl_log *log, int64_t offset, int64_t *max_offset,
		       struct tl_log_segment **segment, int64_t *position)
{
	*max_offset = TL_MIN(*max_offset, log->written_end_offset);
	if (offset >= *max_offset)
		return false;
	*segment = read_segment(log, offset);
	*position = index_lookup(*segment, offset);
	return true;
}

/* What the marker batch at @position says (type -1 when unreadable). */
static struct marker_info marker_read(const struct tl_log_segment *segment, int64_t position,
				      const struct tl_batch_header *h)
{
	uint8_t raw[256];
	size_t want = (size_t)TL_MIN(batch_bytes(h), (int64_t)sizeof(raw));
	if (pread(segment->fd, raw, want, (off_t)position) != (ssize_t)want)
		return (struct marker_info){-1, -1};
	return marker_parse(h, raw, want);
}

/* Replays the headers of every batch at or after @from into the producer table and the
 * aborted-transaction index; markers at or past @closing_from (the high watermark, when
 * it is below the end) enter the closing list, as they did when appended. */
static tl_err pstate_replay(struct tl_log *log, int64_t from, int64_t closing_from)
{
	for (uint32_t s = segment_index_for(log, from); s < log->segment_count; s++) {
		struct tl_log_segment *segment = log->segments[s];
		int64_t position = index_lookup(segment, from);
		int64_t next = -1; /* the offset the next batch must start at */
		while (position < segment->bytes) {
			struct tl_batch_header h;
			tl_err err = header_read(segment, position, segment->bytes, &h);
			if (err != TL_OK)
				return err;
			/* A trusted segment with garbled bytes: its offsets must still rise
			 * inside it, or the replay would enter markers out of order. (They may
			 * jump: compaction leaves holes in sealed segments.) */
			if ((next >= 0 ? h.base_offset < next
				       : h.base_offset < segment->base_offset) ||
			    tl_batch_last_offset(&h) >= segment->next_offset) {
				tl_warn("log: batch offsets do not run on in a segment dir=%s "
					"segment=%020" PRId64 " position=%" PRId64
					" base_offset=%" PRId64,
					log->dir, segment->base_offset, position, h.base_offset);
				return TL_ERR_CORRUPT;
			}
			next = tl_batch_last_offset(&h) + 1;
			if (h.base_offset >= from &&
			    (h.producer_id >= 0 || tl_batch_is_control(&h))) {
				struct marker_info marker = {-1, -1};
				if (tl_batch_is_control(&h))
					marker = marker_read(segment, position, &h);
				err = txn_track(log, &h, marker, h.base_offset >= closing_from);
				if (err != TL_OK)
					return err;
			}
			position += batch_bytes(&h);
		}
	}
	return TL_OK;
}

/* After a replay from @from: a sealed segment the replay covered whose .txnindex loaded
 * (@read, @read_count: the entries the files gave) but says other than the replay
 * (cut to whole entries, or from before a lost snapshot) is no longer trusted, so
 * txnindexes_repair() writes the replay's version back. */
static void txnindexes_contradicted(struct tl_log *log, int64_t from,
				    const struct aborted_txn *read, uint32_t read_count)
{
	for (uint32_t s = 0; s + 1 < log->segment_count; s++) {
		struct tl_log_segment *segment = log->segments[s];
		if (!segment->txns_trusted || segment->next_offset <= from)
			continue;
		uint32_t first;
		uint32_t count = segment_aborted(log, segment, &first);
		uint32_t r = 0, n = 0;
		while (r < read_count && read[r].last_offset < segment->base_offset)
			r++;
		while (r + n < read_count && read[r + n].last_offset < segment->next_offset)
			n++;
		bool same = n == count;
		for (uint32_t i = 0; same && i < count; i++)
			same = read[r + i].producer_id == log->aborted[first + i].producer_id &&
			       read[r + i].last_offset == log->aborted[first + i].last_offset &&
			       TL_MAX(read[r + i].first_offset, segment->base_offset) ==
				       TL_MAX(log->aborted[first + i].first_offset,
					      segment->base_offset);
		if (!same) {
			tl_warn("log: a .txnindex disagrees with the log, rewriting it dir=%s "
				"segment=%020" PRId64,
				log->dir, segment->base_offset);
			segment->txns_trusted = false;
		}
	}
}

/* Loads the newest usable snapshot and replays the log after it. A snapshot is usable at
 * or below the base of the first segment whose aborted transactions were not loaded from
 * its .txnindex, since the replay must rebuild those; without one, the whole log is
 * replayed; so is every marker at or past @closing_from. Expects an empty producer table
 * and closing list. */
/* Producers expire by the wall clock @now_ms, as Kafka's do, but never counting past
 * the newest producer's last data batch: a broker whose clock was stepped 25 h ahead
 * (chaos test 916) dropped every producer's state, at its next tick or at a restart,
 * and as leader then refused their next batches (UNKNOWN_PRODUCER_ID: librdkafka's
 * idempotent producers failed fatally). Not the newest batch of the log: a marker
 * carries its coordinator's clock, stepped ahead too. Keeping a producer longer is
 * always safe. O(producers), as the expiry itself. */
static void pstate_expire(struct tl_log *log, int64_t now_ms)
{
	int64_t newest = tl_pstate_newest_timestamp(&log->pstate);
	if (newest >= 0 && newest < now_ms)
		now_ms = newest;
	tl_pstate_expire(&log->pstate, now_ms, log->config.producer_id_expiration_ms);
}

static tl_err pstate_recover(struct tl_log *log, int64_t closing_from)
{
	/* Markers at or past closing_from must be replayed to enter the closing list. */
	int64_t limit = TL_MIN(log->end_offset, closing_from);
	for (uint32_t s = 0; s < log->segment_count; s++)
		if (!log->segments[s]->txns_trusted) {
			limit = log->segments[s]->base_offset;
			break;
		}
	int64_t found[64];
	uint32_t count = 0;
	bool removed = false;
	DIR *d = dir_open(log->dir_fd);
	if (!d)
		return TL_ERR_IO;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long long offset = strtoll(de->d_name, &end, 10);
		if (end != de->d_name + 20 || strcmp(end, ".snapshot") != 0)
			continue;
		/* One past the end describes batches a crash or a truncation took back. */
		if (offset > log->end_offset || offset < 0 || count == TL_ARRAY_SIZE(found)) {
			removed |= unlinkat(log->dir_fd, de->d_name, 0) == 0;
			continue;
		}
		found[count++] = offset;
	}
	closedir(d);
	/* Durably: the log may grow past that offset again, with other batches, and a
	 * snapshot a power loss brought back would then be loaded as if it described them
	 * (sequences of a history the truncation removed). */
	if (removed) {
		tl_err err = sync_dir(log);
		if (err != TL_OK)
			return err;
	}
	if (count > 1)
		qsort(found, count, sizeof(found[0]), cmp_desc);
	int64_t from = log->segments[0]->base_offset;
	bool loaded = false;
	for (uint32_t i = 0; i < count && !loaded; i++) {
		if (found[i] > limit)
			continue;
		char name[NAME_BYTES];
		snapshot_name(name, found[i]);
		uint8_t *data;
		size_t len;
		int64_t offset = -1;
		tl_err err = file_slurp(log, name, &data, &len);
		if (err == TL_OK) {
			err = tl_pstate_decode(&log->pstate, data, len, &offset);
			free(data);
		}
		if (err == TL_OK && offset == found[i]) {
			from = offset;
			loaded = true;
			break;
		}
		tl_warn("log: unusable producer snapshot, trying an older one dir=%s file=%s "
			"err=%s",
			log->dir, name, tl_err_name(err));
		tl_pstate_clear(&log->pstate);
		unlinkat(log->dir_fd, name, 0);
		found[i] = -1;
	}
	/* As Kafka's loadFromSnapshot: producers of the snapshot that expired go; those the
	 * replay below brings back stay until the next periodic check, so a retry coming
	 * right after a crash is still recognised (expired at once, a producer stamping
	 * old CreateTimes had its retried sequence 0 appended a second time). */
	if (loaded)
		pstate_expire(log, tl_wall_ms());
	uint32_t kept = 0;
	for (uint32_t i = 0; i < count && kept < TL_ARRAY_SIZE(log->snapshots); i++)
		if (found[i] >= 0)
			log->snapshots[kept++] = found[i];
	/* What the .txnindex files said, to tell which of them the replay contradicts. */
	uint32_t read_count = log->aborted_count;
	struct aborted_txn *read = NULL;
	if (read_count > 0 && (read = malloc(read_count * sizeof(*read))))
		memcpy(read, log->aborted, read_count * sizeof(*read));
	if (!loaded)
		log->aborted_count = 0;
	while (log->aborted_count > 0 && log->aborted[log->aborted_count - 1].last_offset >= from)
		log->aborted_count--;
	tl_err err = pstate_replay(log, from, closing_from);
	if (err != TL_OK) {
		free(read);
		return err;
	}
	txnindexes_contradicted(log, from, read, read ? read_count : 0);
	free(read);
	log->first_open_txn = -2;
	snapshots_prune(log);
	return TL_OK;
}

/* ---- leader epochs ---- */

static int32_t epoch_latest(const struct tl_log *log)
{
	return log->epoch_count > 0 ? log->epochs[log->epoch_count - 1].epoch : -1;
}

/* Checks the cache's order: strictly increasing epochs and start offsets. O(n). */
static void epochs_check(const struct tl_log *log)
{
	for (uint32_t i = 1; i < log->epoch_count; i++) {
		TL_ASSERT(log->epochs[i].epoch > log->epochs[i - 1].epoch);
		TL_ASSERT(log->epochs[i].start_offset > log->epochs[i - 1].start_offset);
	}
}

/* Kafka's LeaderEpochFileCache.assign: records that @epoch starts at @start_offset.
 * Nothing changes when @epoch is the latest epoch and starts at or before that offset;
 * otherwise every entry with an epoch >= @epoch or a start offset >= @start_offset is
 * replaced by the new one (an epoch that never got a batch, or a follower's diverged
 * tail). Marks the cache for epochs_sync(). A negative epoch (a batch no leader
 * stamped) is ignored. */
static tl_err epochs_assign(struct tl_log *log, int32_t epoch, int64_t start_offset)
{
	if (epoch < 0)
		return TL_OK;
	if (log->epoch_count > 0) {
		const struct tl_log_epoch_entry *last = &log->epochs[log->epoch_count - 1];
		if (epoch == last->epoch && start_offset >= last->start_offset)
			return TL_OK;
	}
	if (grow((void **)&log->epochs, &log->epoch_cap, log->epoch_count + 1,
		 sizeof(*log->epochs)) != TL_OK)
		return TL_ERR_NOMEM;
	uint32_t keep = log->epoch_count;
	while (keep > 0 && (log->epochs[keep - 1].epoch >= epoch ||
			    log->epochs[keep - 1].start_offset >= start_offset)) {
		if (log->epochs[keep - 1].epoch >= epoch)
			tl_warn("log: leader epoch cache loses a newer epoch dir=%s epoch=%" PRId32
				" start=%" PRId64 " new_epoch=%" PRId32 " new_start=%" PRId64,
				log->dir, log->epochs[keep - 1].epoch,
				log->epochs[keep - 1].start_offset, epoch, start_offset);
		keep--;
	}
	log->epochs[keep] =
		(struct tl_log_epoch_entry){.epoch = epoch, .start_offset = start_offset};
	log->epoch_count = keep + 1;
	log->epochs_dirty = true;
	epochs_check(log);
	return TL_OK;
}

/* Drops the entries whose start offset is >= @end (Kafka's truncateFromEnd). */
static void epochs_truncate(struct tl_log *log, int64_t end)
{
	while (log->epoch_count > 0 && log->epochs[log->epoch_count - 1].start_offset >= end) {
		log->epoch_count--;
		log->epochs_dirty = true;
	}
}

/* Makes the cache durable if it changed: the checkpoint in Kafka's text format
 * ("0\n<count>\n<epoch> <start offset>\n..."), through a fsynced temporary file, a
 * rename and a directory fsync. Until it succeeds the cache stays dirty. */
static tl_err epochs_sync(struct tl_log *log)
{
	if (!log->epochs_dirty)
		return TL_OK;
	size_t cap = 32 + (size_t)log->epoch_count * 34; /* 11 + 1 + 20 + 1 digits each */
	char *text = malloc(cap);
	if (!text)
		return TL_ERR_NOMEM;
	size_t len = (size_t)snprintf(text, cap, "0\n%" PRIu32 "\n", log->epoch_count);
	for (uint32_t i = 0; i < log->epoch_count; i++)
		len += (size_t)snprintf(text + len, cap - len, "%" PRId32 " %" PRId64 "\n",
					log->epochs[i].epoch, log->epochs[i].start_offset);
	TL_ASSERT(len < cap);
	tl_err err = file_replace(log, EPOCH_CHECKPOINT, text, len, true);
	free(text);
	if (err == TL_OK)
		err = sync_dir(log);
	if (err != TL_OK) {
		tl_warn("log: leader epoch checkpoint write failed dir=%s detail=\"%s\"", log->dir,
			log->last_error);
		return err;
	}
	log->epochs_dirty = false;
	return TL_OK;
}

/* Reads a decimal integer in [@min, @max] followed by @sep at *pos. */
static bool parse_int(const char **pos, int64_t min, int64_t max, char sep, int64_t *out)
{
	const char *p = *pos;
	if ((*p < '0' || *p > '9') && *p != '-')
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(p, &end, 10);
	if (end == p || errno != 0 || v < min || v > max || *end != sep)
		return false;
	*pos = end + 1;
	*out = v;
	return true;
}

tl_err tl_log_epochs_decode(const uint8_t *data, size_t len, struct tl_log_epoch_entry **out,
			    uint32_t *count_out, const char **why)
{
	*out = NULL;
	*count_out = 0;
	*why = "not a leader-epoch-checkpoint (want \"0\\n<count>\\n<epoch> <offset>\\n...\")";
	if (memchr(data, '\0', len)) {
		*why = "NUL byte in the file";
		return TL_ERR_CORRUPT;
	}
	char *text = malloc(len + 1);
	if (!text)
		return TL_ERR_NOMEM;
	memcpy(text, data, len);
	text[len] = '\0';
	const char *p = text;
	int64_t version, count;
	struct tl_log_epoch_entry *entries = NULL;
	tl_err err = TL_ERR_CORRUPT;
	if (!parse_int(&p, 0, 0, '\n', &version) ||
	    !parse_int(&p, 0, EPOCH_CHECKPOINT_MAX, '\n', &count))
		goto out_free;
	entries = calloc((size_t)count + 1, sizeof(*entries));
	if (!entries) {
		err = TL_ERR_NOMEM;
		goto out_free;
	}
	for (int64_t i = 0; i < count; i++) {
		int64_t epoch, start;
		if (!parse_int(&p, 0, INT32_MAX, ' ', &epoch) ||
		    !parse_int(&p, 0, INT64_MAX, '\n', &start)) {
			*why = "malformed entry (want \"<epoch> <start offset>\")";
			goto out_free;
		}
		if (i > 0 &&
		    (epoch <= entries[i - 1].epoch || start <= entries[i - 1].start_offset)) {
			*why = "entries are not strictly increasing in epoch and start offset";
			goto out_free;
		}
		entries[i] =
			(struct tl_log_epoch_entry){.epoch = (int32_t)epoch, .start_offset = start};
	}
	if (*p != '\0') {
		*why = "entry count does not match the lines";
		goto out_free;
	}
	*out = entries;
	*count_out = (uint32_t)count;
	entries = NULL;
	err = TL_OK;
out_free:
	free(entries);
	free(text);
	return err;
}

/* Loads the checkpoint into the (empty) cache. TL_ERR_NOT_FOUND when absent,
 * TL_ERR_CORRUPT when it is not a well-formed, strictly increasing list. */
static tl_err epochs_load(struct tl_log *log)
{
	uint8_t *data;
	size_t len;
	tl_err err = file_slurp(log, EPOCH_CHECKPOINT, &data, &len);
	if (err != TL_OK)
		return err;
	struct tl_log_epoch_entry *entries;
	uint32_t count;
	const char *why;
	err = tl_log_epochs_decode(data, len, &entries, &count, &why);
	free(data);
	if (err != TL_OK)
		return err;
	free(log->epochs);
	log->epochs = entries;
	log->epoch_count = count;
	log->epoch_cap = count + 1;
	return TL_OK;
}

/* Adds an entry for every batch at or after @from whose epoch is above the latest
 * cached one: batch headers carry the epoch of the leader that appended them. */
static tl_err epochs_scan(struct tl_log *log, int64_t from)
{
	for (uint32_t s = segment_index_for(log, from); s < log->segment_count; s++) {
		struct tl_log_segment *segment = log->segments[s];
		int64_t position = index_lookup(segment, from);
		while (position < segment->bytes) {
			struct tl_batch_header h;
			tl_err err = header_read(segment, position, segment->bytes, &h);
			if (err != TL_OK)
				return err;
			if (h.partition_leader_epoch > epoch_latest(log) &&
			    (err = epochs_assign(log, h.partition_leader_epoch, h.base_offset)) !=
				    TL_OK)
				return err;
			position += batch_bytes(&h);
		}
	}
	return TL_OK;
}

/* Recovers the cache after the segments: the checkpoint (rebuilt from every batch header
 * when missing or bad, as in a data directory older than leader epochs, whose batches
 * all carry epoch 0), less the entries at or past the recovered end, plus the epochs of
 * batches above the latest entry in the tail (from the active segment or the latest
 * entry, whichever is later). The checkpoint is rewritten if anything changed. */
static tl_err epochs_recover(struct tl_log *log)
{
	int64_t start = log->segments[0]->base_offset;
	int64_t from = start;
	tl_err err = epochs_load(log);
	if (err == TL_ERR_CORRUPT)
		tl_warn("log: bad leader epoch checkpoint, rebuilding it from the batches dir=%s",
			log->dir);
	if (err == TL_ERR_CORRUPT || (err == TL_ERR_NOT_FOUND && log->end_offset > start))
		log->epochs_dirty = true;
	else if (err != TL_OK && err != TL_ERR_NOT_FOUND)
		return err;
	epochs_truncate(log, log->end_offset);
	if (err == TL_OK && log->epoch_count > 0)
		from = TL_MAX(active_segment(log)->base_offset,
			      log->epochs[log->epoch_count - 1].start_offset);
	err = epochs_scan(log, from);
	if (err != TL_OK) {
		set_error(log, "read", "batch headers for leader epochs", EIO);
		return err;
	}
	log->leader_epoch = TL_MAX(epoch_latest(log), 0);
	return epochs_sync(log);
}

int32_t tl_log_latest_epoch(const struct tl_log *log)
{
	return epoch_latest(log);
}

tl_err tl_log_assign_epoch(struct tl_log *log, int32_t epoch)
{
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	if (epoch < 0)
		return TL_ERR_INVALID;
	int32_t latest = epoch_latest(log);
	if (epoch < latest)
		return TL_ERR_FENCED_LEADER_EPOCH;
	if (epoch > latest && epochs_assign(log, epoch, log->end_offset) != TL_OK)
		return TL_ERR_NOMEM;
	if (epochs_sync(log) != TL_OK)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	log->leader_epoch = epoch;
	return TL_OK;
}

tl_err tl_log_end_offset_for_epoch(const struct tl_log *log, int32_t epoch, int32_t *epoch_out,
				   int64_t *end_offset_out)
{
	*epoch_out = -1;
	*end_offset_out = -1;
	if (epoch < 0 || log->epoch_count == 0)
		return TL_OK;
	if (epoch == epoch_latest(log)) {
		*epoch_out = epoch;
		*end_offset_out = log->end_offset;
		return TL_OK;
	}
	uint32_t higher = 0; /* the first entry with an epoch above @epoch */
	while (higher < log->epoch_count && log->epochs[higher].epoch <= epoch)
		higher++;
	if (higher == log->epoch_count)
		return TL_OK;
	*epoch_out = higher > 0 ? log->epochs[higher - 1].epoch : epoch;
	*end_offset_out = log->epochs[higher].start_offset;
	return TL_OK;
}

int32_t tl_log_epoch_at(const struct tl_log *log, int64_t offset)
{
	uint32_t lo = 0, hi = log->epoch_count; /* entries [0, lo) start at or before it */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (log->epochs[mid].start_offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 ? log->epochs[lo - 1].epoch : -1;
}

uint32_t tl_log_epochs(const struct tl_log *log, struct tl_log_epoch_entry *out, uint32_t max)
{
	for (uint32_t i = 0; i < log->epoch_count && i < max; i++)
		out[i] = log->epochs[i];
	return log->epoch_count;
}

/* ---- open and close ---- */

static tl_err cleaner_recover(struct tl_log *log);
static tl_err cleaner_checkpoint_recover(struct tl_log *log);
static tl_err cleaner_checkpoint_lower(struct tl_log *log, int64_t new_end);
static tl_err failed_marker_apply(struct tl_log *log);
static void cleaner_cancel(struct tl_log *log);

static int cmp_asc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

/* Lists the base offsets of the directory's segment files, ascending, and removes files
 * a crash may have left half-written. */
static tl_err list_segments(struct tl_log *log, int64_t **bases_out, uint32_t *count_out)
{
	DIR *d = dir_open(log->dir_fd);
	if (!d) {
		set_error(log, "opendir", log->dir, errno);
		return TL_ERR_IO;
	}
	int64_t *bases = NULL;
	uint32_t count = 0, cap = 0;
	tl_err err = TL_OK;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) {
			unlinkat(log->dir_fd, de->d_name, 0);
			continue;
		}
		char *end;
		long long base = strtoll(de->d_name, &end, 10);
		if (end != de->d_name + 20 || strcmp(end, ".log") != 0 || base < 0)
			continue;
		if ((err = grow((void **)&bases, &cap, count + 1, sizeof(*bases))) != TL_OK)
			break;
		bases[count++] = base;
	}
	closedir(d);
	if (err != TL_OK) {
		free(bases);
		return err;
	}
	if (count > 1)
		qsort(bases, count, sizeof(*bases), cmp_asc);
	*bases_out = bases;
	*count_out = count;
	return TL_OK;
}

/* Opens every segment file in order. A segment that does not start where its predecessor
 * ends (the predecessor lost its tail, or the files overlap) is removed with all after
 * it: the offsets they hold no longer follow. */
static tl_err recover_segments(struct tl_log *log, bool clean)
{
	int64_t *bases;
	uint32_t count;
	tl_err err = list_segments(log, &bases, &count);
	if (err != TL_OK)
		return err;
	uint32_t i = 0;
	for (; i < count; i++) {
		char name[NAME_BYTES];
		segment_name(name, bases[i], ".log");
		if (i > 0 && log->segments[i - 1]->next_offset != bases[i]) {
			tl_warn("log: segment does not follow its predecessor dir=%s segment=%s "
				"expected=%" PRId64,
				log->dir, name, log->segments[i - 1]->next_offset);
			break;
		}
		int fd = openat(log->dir_fd, name, O_RDWR | O_CLOEXEC);
		struct stat st;
		if (fd == -1 || fstat(fd, &st) == -1) {
			set_error(log, "open", name, errno);
			if (fd != -1)
				close(fd);
			err = TL_ERR_IO;
			break;
		}
		struct tl_log_segment *segment = segment_new(bases[i], fd);
		if (!segment) {
			close(fd);
			err = TL_ERR_NOMEM;
			break;
		}
		if ((err = segments_push(log, segment)) != TL_OK) {
			segment_put(segment);
			break;
		}
		bool last = i + 1 == count;
		int64_t file_bytes = st.st_size;
		bool cut = false;
		/* Sealed segments' index files were written after their data was durable;
		 * the active one's only vouch for it after a clean shutdown. */
		int64_t indexed_end = -1;
		if ((clean || !last) &&
		    segment_load_indexes(log, segment, file_bytes, &indexed_end) == TL_OK) {
			/* The batches after the last index entry must fill the file and, in a
			 * sealed segment, end where the next segment starts (a file cut by a
			 * truncation is rescanned, and the segments after it dropped). */
			int64_t position = index_pos(segment, segment->index_count - 1);
			struct tl_batch_header h;
			while (position < file_bytes &&
			       header_read(segment, position, file_bytes, &h) == TL_OK) {
				segment->next_offset = tl_batch_last_offset(&h) + 1;
				position += batch_bytes(&h);
			}
			/* ... and end where the index files say the segment ended when they
			 * were written (a stale file describes another segment). */
			if (position != file_bytes || segment->next_offset != indexed_end ||
			    (!last && segment->next_offset != bases[i + 1])) {
				err = segment_recover(log, segment, file_bytes, !last, &cut);
			} else {
				segment->indexes_on_disk = !last;
				segment_load_txnindex(log, segment, segment->next_offset);
			}
		} else {
			err = segment_recover(log, segment, file_bytes, !last, &cut);
		}
		if (err != TL_OK)
			break;
		segment->next_offset_durable = segment->next_offset;
		segment->next_offset_written = segment->next_offset;
		segment->bytes_written = segment->bytes;
		segment->file_end = segment->bytes; /* recovery cut what lay past it */
		if (segment->bytes > 0)
			segment->first_append_ms = tl_wall_ms();
	}
	if (err == TL_OK && i < count) {
		for (uint32_t j = i; j < count; j++) {
			char name[NAME_BYTES];
			segment_name(name, bases[j], ".log");
			tl_warn("log: removing segment after a cut dir=%s segment=%s", log->dir,
				name);
			segment_unlink(log, bases[j]);
		}
		err = sync_dir(log);
	}
	free(bases);
	if (err != TL_OK)
		return err;
	if (log->segment_count == 0)
		return segment_create(log, 0);
	/* The active segment's index files would go stale with the next append. */
	segment_unlink_indexes(log, active_segment(log)->base_offset);
	return TL_OK;
}

/* Reads START_CHECKPOINT ("<offset>\n"); an absent or unreadable one means no floor
 * (logged), a floor past the end is capped there. */
static void start_floor_recover(struct tl_log *log)
{
	int64_t floor;
	tl_err err = offset_file_read(log, START_CHECKPOINT, &floor);
	if (err == TL_ERR_NOT_FOUND)
		return;
	if (err != TL_OK) {
		tl_warn("log: ignoring unreadable %s dir=%s", START_CHECKPOINT, log->dir);
		return;
	}
	log->start_floor = TL_MIN(floor, log->end_offset);
}

tl_err tl_log_delete_records(struct tl_log *log, int64_t offset, int64_t *start_out)
{
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	if (offset == -1)
		offset = log->high_watermark;
	if (offset < 0 || offset > log->high_watermark)
		return TL_ERR_OFFSET_OUT_OF_RANGE;
	if (offset > tl_log_start_offset(log)) {
		char text[32];
		int n = snprintf(text, sizeof(text), "%" PRId64 "\n", offset);
		/* Durable before answered: a deleted record never comes back after a crash. */
		if (file_replace(log, START_CHECKPOINT, text, (size_t)n, true) != TL_OK ||
		    sync_dir(log) != TL_OK) {
			tl_warn("log: cannot write %s dir=%s detail=\"%s\"", START_CHECKPOINT,
				log->dir, log->last_error);
			return TL_ERR_KAFKA_STORAGE_ERROR;
		}
		log->start_floor = offset;
		tl_info("log: records deleted dir=%s start=%" PRId64, log->dir, offset);
	}
	*start_out = tl_log_start_offset(log);
	return TL_OK;
}

/* fsync of the directory holding @path (a partition directory just made). */
static int parent_dir_sync(const char *path)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0'; /* "/name": the root */
	else if (slash)
		*slash = '\0';
	else
		snprintf(parent, sizeof(parent), ".");
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* A sealed segment that recovery rescanned (its index files missing or bad: cut short or
 * zero-filled by a power loss, or of the format before trailers) gets them rewritten,
 * as seal_durable_segments() writes them (without fsync: a torn one is found bad and
 * rebuilt again), so that the next open trusts them instead of rescanning it again. */
static void indexes_repair(struct tl_log *log)
{
	for (uint32_t i = 0; i + 1 < log->segment_count; i++) {
		struct tl_log_segment *segment = log->segments[i];
		if (segment->indexes_on_disk)
			continue;
		TL_ASSERT(segment->bytes_durable == segment->bytes);
		if (segment_write_indexes(log, segment, false) != TL_OK) {
			tl_warn("log: cannot write back rebuilt index files dir=%s detail=\"%s\"",
				log->dir, log->last_error);
			continue;
		}
		segment->indexes_on_disk = true;
		segment->txns_trusted = true;
	}
}

/* A sealed segment whose index files loaded but whose .txnindex did not (missing or
 * damaged) had its aborted transactions rebuilt by the replay: writes them back, since
 * nothing else rewrites a sealed segment's index files and every later open would
 * replay from that segment again. A failed write only leaves that replay to happen. */
static void txnindexes_repair(struct tl_log *log)
{
	for (uint32_t i = 0; i + 1 < log->segment_count; i++) {
		struct tl_log_segment *segment = log->segments[i];
		if (!segment->indexes_on_disk || segment->txns_trusted)
			continue;
		if (segment_write_txnindex(log, segment, true) != TL_OK || sync_dir(log) != TL_OK) {
			tl_warn("log: cannot write back a rebuilt .txnindex dir=%s detail=\"%s\"",
				log->dir, log->last_error);
			continue;
		}
		tl_info("log: rebuilt .txnindex written back dir=%s segment=%020" PRId64, log->dir,
			segment->base_offset);
		segment->txns_trusted = true;
	}
}

tl_err tl_log_open(const char *dir, const struct tl_log_config *config, struct tl_ring *ring,
		   struct tl_log **log_out)
{
	bool created = mkdir(dir, 0755) == 0;
	if (!created && errno != EEXIST) {
		tl_warn("log: cannot create partition directory dir=%s err=%s", dir,
			strerrorname_np(errno));
		return TL_ERR_IO;
	}
	/* Its entry in log.dirs made durable before anything is acknowledged in it: the
	 * segments' fdatasync does not cover the parent, and a power loss could take the
	 * whole directory with records already acked. */
	if (created && parent_dir_sync(dir) != 0) {
		tl_warn("log: cannot sync the parent of a new partition directory dir=%s err=%s",
			dir, strerrorname_np(errno));
		return TL_ERR_IO;
	}
	struct tl_log *log = calloc(1, sizeof(*log));
	if (!log)
		return TL_ERR_NOMEM;
	log->dir = strdup(dir);
	log->config = *config;
	log->offset_holes = config->offset_holes;
	log->ring = ring;
	log->stage_slot = -1;
	for (size_t i = 0; i < TL_ARRAY_SIZE(log->snapshots); i++)
		log->snapshots[i] = -1;
	log->first_open_txn = -2;
	tl_err err = TL_ERR_NOMEM;
	if (!log->dir || tl_pstate_init(&log->pstate) != TL_OK)
		goto out_free;
	log->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (log->dir_fd == -1) {
		tl_warn("log: cannot open partition directory dir=%s err=%s", dir,
			strerrorname_np(errno));
		err = TL_ERR_IO;
		goto out_free;
	}
	bool clean = faccessat(log->dir_fd, CLEAN_MARKER, F_OK, 0) == 0;
	int64_t started = tl_mono_ms();
	err = cleaner_recover(log);
	if (err == TL_OK)
		err = recover_segments(log, clean);
	if (err != TL_OK)
		goto out_close;
	direct_setup(log);
	struct tl_log_segment *active = active_segment(log);
	log->end_offset = active->next_offset;
	log->high_watermark = log->end_offset;
	log->durable_offset = log->end_offset;
	log->hw_limit = INT64_MAX;
	log->sync_end_offset = log->end_offset;
	log->written_end_offset = log->end_offset;
	log->write_end_offset = log->end_offset;
	err = pstate_recover(log, INT64_MAX);
	if (err != TL_OK)
		goto out_close;
	indexes_repair(log);
	txnindexes_repair(log);
	err = epochs_recover(log);
	if (err != TL_OK)
		goto out_close;
	start_floor_recover(log);
	/* Every horizon set before this open has passed by then (as long as
	 * delete.retention.ms is the same); the passes after it know theirs. */
	log->cleaner_horizon_next = tl_ms_after(tl_wall_ms(), config->delete_retention_ms);
	if ((err = cleaner_checkpoint_recover(log)) != TL_OK ||
	    (err = failed_marker_apply(log)) != TL_OK)
		goto out_close;
	if (clean) {
		/* From here on a crash must rerun recovery. */
		if (unlinkat(log->dir_fd, CLEAN_MARKER, 0) == -1 || sync_dir(log) != TL_OK) {
			err = TL_ERR_IO;
			goto out_close;
		}
	}
	log->opened = true;
	tl_debug("log: opened dir=%s segments=%u start=%" PRId64 " end=%" PRId64
		 " clean=%d producers=%u ms=%" PRId64,
		 dir, log->segment_count, log->segments[0]->base_offset, log->end_offset, clean,
		 log->pstate.count, tl_mono_ms() - started);
	*log_out = log;
	return TL_OK;
out_close:
	tl_warn("log: recovery failed dir=%s err=%s detail=\"%s\"", dir, tl_err_name(err),
		log->last_error);
	for (uint32_t i = 0; i < log->segment_count; i++)
		segment_put(log->segments[i]);
	close(log->dir_fd);
out_free:
	tl_pstate_deinit(&log->pstate);
	free(log->epochs);
	free(log->aborted);
	free(log->segments);
	free(log->dir);
	free(log);
	return err;
}

void tl_log_set_config(struct tl_log *log, const struct tl_log_config *config)
{
	log->config = *config;
}

/* ---- waiters ---- */

static void waiters_fire(struct tl_log *log, bool all, tl_err err)
{
	while (log->waiters && (all || log->waiters->offset < log->high_watermark)) {
		struct tl_log_waiter *waiter = log->waiters;
		log->waiters = waiter->next;
		if (!log->waiters)
			log->waiters_tail = NULL;
		waiter->next = NULL;
		waiter->done(waiter, err);
	}
}

void tl_log_wait_durable(struct tl_log *log, struct tl_log_waiter *waiter)
{
	/* Never fires from here, even when already durable: the caller may not be ready
	 * for the callback. The next tl_log_flush() fires it. */
	waiter->next = NULL;
	if (!log->waiters_tail || log->waiters_tail->offset <= waiter->offset) {
		if (log->waiters_tail)
			log->waiters_tail->next = waiter;
		else
			log->waiters = waiter;
		log->waiters_tail = waiter;
		return;
	}
	struct tl_log_waiter **at = &log->waiters;
	while ((*at)->offset <= waiter->offset)
		at = &(*at)->next;
	waiter->next = *at;
	*at = waiter;
}

void tl_log_set_listener(struct tl_log *log, tl_log_listener_fn fn, void *ctx)
{
	log->listener = fn;
	log->listener_ctx = ctx;
}

/* ---- appending and group commit ---- */

static void pipeline_pump(struct tl_log *log);
static void cache_add(struct tl_log *log, const struct pending *p);
static void cache_clear(struct tl_log *log);
static void cache_free(struct tl_log *log);

/* Puts the log in FAILED (once, with a crit line) and drops what no round holds yet. The
 * waiters fire from pipeline_pump() once no round is in flight. */
static void failed_marker_write(struct tl_log *log);

static void log_set_failed(struct tl_log *log)
{
	if (!log->failed)
		tl_crit("log: partition offline after an I/O error dir=%s error=\"%s\" durable=%" PRId64
			" end=%" PRId64,
			log->dir, log->last_error, log->durable_offset, log->end_offset);
	log->failed = true;
	log->queued.count = 0;
	failed_marker_write(log);
}

static void log_fail(struct tl_log *log)
{
	log_set_failed(log);
	pipeline_pump(log);
}

static tl_err segment_roll(struct tl_log *log)
{
	struct tl_log_segment *old = active_segment(log);
	TL_ASSERT(old->next_offset == log->end_offset);
	tl_err err = segment_create(log, log->end_offset);
	if (err != TL_OK)
		return err;
	cache_clear(log); /* it holds the active segment only */
	tl_debug("log: rolled dir=%s base=%" PRId64, log->dir, log->end_offset);
	/* The snapshot may describe batches not yet durable: a crash that loses them leaves
	 * the log end below its offset, and recovery then deletes it. */
	if (snapshot_write(log, false) != TL_OK)
		tl_warn("log: producer snapshot failed dir=%s detail=\"%s\"", log->dir,
			log->last_error);
	return TL_OK;
}

static bool needs_roll(const struct tl_log *log, const struct tl_log_segment *segment,
		       const struct tl_batch_header *h, size_t len)
{
	if (segment->bytes == 0)
		return false;
	return segment->bytes + (int64_t)len > log->config.segment_bytes ||
	       (int64_t)(segment->index_count + 1) * INDEX_ENTRY_BYTES >
		       log->config.index_bytes_max ||
	       tl_batch_last_offset(h) - segment->base_offset > INT32_MAX;
}

/* Queues a batch whose offsets are set in @data and @h (base_offset == end_offset, or
 * above it after a compacted range on a replica): rolls first when needed, then accounts
 * for it in the segment, the producer state and the transaction lists, as a leader and a
 * follower append alike. A roll before a hole makes a segment based at the old end, so
 * that segments still follow one another; its first batch starts past its base. */
static tl_err append_queue(struct tl_log *log, uint8_t *data, size_t len,
			   const struct tl_batch_header *h)
{
	TL_ASSERT(h->base_offset >= log->end_offset);
	if (h->base_offset > log->end_offset)
		TL_ASSERT(log->offset_holes);
	bool control = tl_batch_is_control(h);
	struct tl_log_segment *segment = active_segment(log);
	if (needs_roll(log, segment, h, len)) {
		tl_err err = segment_roll(log);
		if (err != TL_OK) {
			log_fail(log);
			return TL_ERR_KAFKA_STORAGE_ERROR;
		}
		segment = active_segment(log);
	}
	if (grow((void **)&log->queued.items, &log->queued.cap, log->queued.count + 1,
		 sizeof(*log->queued.items)) != TL_OK)
		return TL_ERR_NOMEM;
	int64_t position = segment->bytes;
	if (segment_track(segment, h, position, log->config.index_interval_bytes) != TL_OK)
		return TL_ERR_NOMEM;
	if (segment->first_append_ms < 0)
		segment->first_append_ms = tl_wall_ms();
	if ((h->producer_id >= 0 || control) &&
	    txn_track(log, h, marker_parse(h, data, len), true) != TL_OK)
		tl_warn("log: producer state update failed (out of memory) dir=%s", log->dir);
	struct pending *p = &log->queued.items[log->queued.count++];
	p->segment = segment;
	p->iov.iov_base = data;
	p->iov.iov_len = len;
	p->position = position;
	p->base_offset = log->end_offset; /* the hole before the batch, if any, included */
	p->last_offset = tl_batch_last_offset(h);
	log->end_offset = tl_batch_last_offset(h) + 1;
	TL_ASSERT(segment->next_offset == log->end_offset);
	return TL_OK;
}

tl_err tl_log_append(struct tl_log *log, uint8_t *data, size_t len,
		     const struct tl_batch_header *header, struct tl_log_append_result *out)
{
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	TL_ASSERT_DEBUG(len == (size_t)batch_bytes(header));
	struct tl_batch_header h = *header;
	bool control = tl_batch_is_control(&h);
	if (control) {
		struct marker_info marker = marker_parse(&h, data, len);
		if (marker.type < 0)
			return TL_ERR_INVALID_RECORD;
		/* A marker from a coordinator older than the one that wrote this producer's
		 * last marker: a zombie coordinator's, which must not close a transaction
		 * the new one decided (Kafka's ProducerStateManager check). */
		const struct tl_pstate_entry *e = tl_pstate_find(&log->pstate, h.producer_id);
		if (e && marker.coordinator_epoch >= 0 &&
		    marker.coordinator_epoch < e->coordinator_epoch)
			return TL_ERR_TRANSACTION_COORDINATOR_FENCED;
		/* A marker for an older epoch than the producer's: it cannot decide the
		 * transaction of the current one (Kafka's checkProducerEpoch). */
		if (e && h.producer_epoch < e->epoch)
			return TL_ERR_INVALID_PRODUCER_EPOCH;
	}
	/* A replica of a newer leader's batches: this leader is stale. */
	if (log->leader_epoch < epoch_latest(log))
		return TL_ERR_FENCED_LEADER_EPOCH;
	/* A batch with a producer id but no sequence comes from a coordinator (offsets
	 * committed inside a transaction): nothing to dedupe. The broker refuses such
	 * batches from clients. */
	if (h.producer_id >= 0 && !control && h.base_sequence >= 0) {
		struct tl_pstate_batch dup;
		tl_err err = tl_pstate_check(&log->pstate, &h, &dup);
		if (err == TL_ERR_EXISTS && log->config.test_dedupe_off)
			err = TL_OK; /* the chaos harness proves its checker sees duplicates */
		if (err == TL_ERR_EXISTS) {
			out->base_offset = dup.first_offset;
			out->last_offset = dup.last_offset;
			out->max_timestamp = dup.max_timestamp;
			out->duplicate = true;
			return TL_OK;
		}
		if (err != TL_OK)
			return err;
	}
	/* The epoch's entry is durable before any batch of it can be. */
	if (log->leader_epoch > epoch_latest(log) &&
	    epochs_assign(log, log->leader_epoch, log->end_offset) != TL_OK)
		return TL_ERR_NOMEM;
	if (epochs_sync(log) != TL_OK)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	h.base_offset = log->end_offset;
	h.partition_leader_epoch = log->leader_epoch;
	tl_batch_assign(data, h.base_offset, h.partition_leader_epoch);
	tl_err err = append_queue(log, data, len, &h);
	if (err != TL_OK)
		return err;
	out->base_offset = h.base_offset;
	out->last_offset = tl_batch_last_offset(&h);
	out->max_timestamp = h.max_timestamp;
	out->duplicate = false;
	return TL_OK;
}

tl_err tl_log_append_replica(struct tl_log *log, uint8_t *data, size_t len,
			     const struct tl_batch_header *header)
{
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	TL_ASSERT_DEBUG(len == (size_t)batch_bytes(header));
	/* The leader's offsets are kept: the batch starts at the log end, or past it where
	 * the leader's cleaner removed every batch between (Kafka's followers take such a
	 * hole too; offsets still never go backwards). */
	if (header->base_offset < log->end_offset ||
	    (header->base_offset > log->end_offset && !log->offset_holes))
		return TL_ERR_OFFSET_OUT_OF_RANGE;
	/* Even a segment rolled at the log end could not index it (relative offsets are
	 * 32-bit): over 2^31 offsets compacted away in one segment, refused, not handled. */
	if (tl_batch_last_offset(header) - log->end_offset > INT32_MAX)
		return TL_ERR_CORRUPT_MESSAGE;
	if (tl_batch_is_control(header) && tl_batch_control_type(data, len) < 0)
		return TL_ERR_INVALID_RECORD;
	if (epochs_assign(log, header->partition_leader_epoch, header->base_offset) != TL_OK)
		return TL_ERR_NOMEM;
	if (epochs_sync(log) != TL_OK)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	return append_queue(log, data, len, header);
}

/* Checks invariant (5): the stages' lists follow one another in offset order, without
 * gaps, from the durable end to the log end. O(1). */
static void list_check(const struct pending_list *list, int64_t from, int64_t to)
{
	if (list->count == 0) {
		TL_ASSERT(from == to);
		return;
	}
	TL_ASSERT(list->items[0].base_offset == from);
	TL_ASSERT(list->items[list->count - 1].last_offset + 1 == to);
}

static void pipeline_check(const struct tl_log *log)
{
	if (log->failed)
		return; /* the lists are dropped; the offsets stop meaning anything */
	TL_ASSERT(log->high_watermark <= log->durable_offset);
	TL_ASSERT(log->durable_offset <= log->sync_end_offset);
	TL_ASSERT(log->sync_end_offset <= log->written_end_offset);
	TL_ASSERT(log->written_end_offset <= log->write_end_offset);
	TL_ASSERT(log->write_end_offset <= log->end_offset);
	if (log->syncs_left == 0)
		TL_ASSERT(log->sync_end_offset == log->durable_offset);
	if (log->writes_left == 0)
		TL_ASSERT(log->write_end_offset == log->written_end_offset);
	list_check(&log->syncing, log->durable_offset, log->sync_end_offset);
	list_check(&log->written, log->sync_end_offset, log->written_end_offset);
	list_check(&log->writing, log->written_end_offset, log->write_end_offset);
	list_check(&log->queued, log->write_end_offset, log->end_offset);
}

/* Like grow(), and zeroes the new room, so that `op.in_flight` can be asserted on it. */
static tl_err grow_zeroed(void **items, uint32_t *cap, uint32_t need, size_t item_bytes)
{
	uint32_t old = *cap;
	if (grow(items, cap, need, item_bytes) != TL_OK)
		return TL_ERR_NOMEM;
	memset((uint8_t *)*items + (size_t)old * item_bytes, 0, (size_t)(*cap - old) * item_bytes);
	return TL_OK;
}

static void pending_swap(struct pending_list *a, struct pending_list *b)
{
	struct pending_list t = *a;
	*a = *b;
	*b = t;
}

/* A write or sync op failed: FAILED, with the detail. The first error is kept. */
static void op_failed(struct tl_log *log, const char *what, const struct tl_log_segment *segment,
		      int64_t res)
{
	if (log->failed)
		return;
	char name[NAME_BYTES];
	segment_name(name, segment->base_offset, ".log");
	set_error(log, what, name, (int)-res);
	log_set_failed(log);
}

/* After a failed write or sync the page cache may still hold bytes the disk never took
 * (Linux marks them clean after a failed fsync), and a restart would read them back as
 * a whole, committed tail. So every failure of an opened log (whatever failed first:
 * an op still in flight may fail next) records the durable end, which nothing passes
 * once the log failed, and the next open cuts the log there: nothing past it was
 * acknowledged (one node: an ack waits for the sync). Once per
 * failure; not during open, whose own failure leaves any marker as it was. No sync: it
 * matters while that page cache lives; a power loss takes both. Best effort: a disk
 * that refuses even this file has refused the segment too. */
static void failed_marker_write(struct tl_log *log)
{
	/* A replicated log is left alone: a follower acknowledges what it wrote, not what it
	 * synced (as Kafka's do), so a cut could drop records the ISR acknowledged while the
	 * other copies are down; and its open resets the high watermark to the log start
	 * (replica.c), so nothing unconfirmed is served as committed. */
	if (!log->opened || log->marker_written || log->replicated)
		return;
	log->marker_written = true;
	char text[32];
	int n = snprintf(text, sizeof(text), "%" PRId64 "\n", log->durable_offset);
	char first[sizeof(log->last_error)]; /* the failure the log reports stays the first */
	memcpy(first, log->last_error, sizeof(first));
	if (file_replace(log, FAILED_MARKER, text, (size_t)n, false) != TL_OK) {
		tl_warn("log: cannot record the durable end after an I/O error dir=%s "
			"detail=\"%s\"",
			log->dir, log->last_error);
		memcpy(log->last_error, first, sizeof(first));
	}
}

/* At open: a FAILED_MARKER (failed_marker_write) cuts the recovered log back to the durable
 * end it names (a later write or sync failed), then goes. */
static tl_err failed_marker_apply(struct tl_log *log)
{
	int64_t durable;
	tl_err err = offset_file_read(log, FAILED_MARKER, &durable);
	if (err == TL_ERR_NOT_FOUND)
		return TL_OK; /* none */
	if (err == TL_ERR_CORRUPT) {
		tl_warn("log: unreadable %s ignored dir=%s", FAILED_MARKER, log->dir);
	} else if (err != TL_OK) { /* not ignored: the next open reading it would cut later data */
		set_error(log, "read", FAILED_MARKER, err == TL_ERR_NOMEM ? ENOMEM : EIO);
		return err;
	} else if (durable < log->end_offset) {
		tl_warn("log: an I/O error stopped this log before; dropping what was never "
			"durable dir=%s durable_end=%" PRId64 " end=%" PRId64,
			log->dir, durable, log->end_offset);
		if (tl_log_truncate_to(log, durable) != TL_OK)
			return TL_ERR_IO;
	}
	if (unlinkat(log->dir_fd, FAILED_MARKER, 0) == -1 || sync_dir(log) != TL_OK) {
		set_error(log, "unlink", FAILED_MARKER, errno);
		return TL_ERR_IO;
	}
	return TL_OK;
}

/* Sealed segments whose last byte just became durable get their index files. */
static void seal_durable_segments(struct tl_log *log)
{
	for (uint32_t i = log->segment_count - 1; i-- > 0;) {
		struct tl_log_segment *segment = log->segments[i];
		if (segment->indexes_on_disk)
			break;
		if (segment->bytes_durable != segment->bytes)
			continue;
		segment_trim(log, segment);
		if (segment_write_indexes(log, segment, false) != TL_OK)
			tl_warn("log: index write failed, recovery will rebuild it dir=%s "
				"detail=\"%s\"",
				log->dir, log->last_error);
		segment->indexes_on_disk = true;
	}
}

/* The sync round covering `syncing` completed without error: its batches are durable. */
static void sync_round_complete(struct tl_log *log)
{
	TL_ASSERT(log->syncing.count > 0);
	TL_ASSERT(log->syncing.items[0].base_offset == log->durable_offset);
	for (uint32_t i = 0; i < log->syncing.count; i++) {
		const struct pending *p = &log->syncing.items[i];
		TL_ASSERT_DEBUG(p->position == p->segment->bytes_durable);
		p->segment->bytes_durable = p->position + (int64_t)p->iov.iov_len;
		p->segment->next_offset_durable = p->last_offset + 1;
		TL_ASSERT_DEBUG(p->segment->bytes_durable <= p->segment->bytes);
		log->flush_bytes += p->iov.iov_len;
	}
	log->flush_count++;
	log->syncing.count = 0;
	/* Only what was written before this round was submitted: never past written data. */
	TL_ASSERT(log->sync_end_offset > log->durable_offset);
	TL_ASSERT(log->sync_end_offset <= log->written_end_offset);
	log->durable_offset = log->sync_end_offset;
	seal_durable_segments(log);
	pipeline_check(log);
}

/* Moves the high watermark up to @hw (<= the durable end): transactions whose marker it
 * passed stop holding the LSO, then waiters below it fire, then the listener runs. */
static void hw_advance(struct tl_log *log, int64_t hw)
{
	TL_ASSERT(hw <= log->durable_offset);
	if (hw <= log->high_watermark)
		return;
	log->high_watermark = hw;
	uint32_t open = 0;
	for (uint32_t i = 0; i < log->closing_count; i++)
		if (log->closing[i].marker_offset >= log->high_watermark)
			log->closing[open++] = log->closing[i];
	log->closing_count = open;
	waiters_fire(log, false, TL_OK);
	if (log->listener)
		log->listener(log->listener_ctx, log);
}

static void sync_done(struct tl_ring_op *op)
{
	struct flush_op *fop = (struct flush_op *)op;
	struct tl_log *log = fop->log;
	int64_t fail_after = log->config.test_fdatasync_fail_after;
	if (fail_after > 0 && ++log->test_syncs > fail_after && op->res >= 0)
		op->res = -EIO; /* test-only: as if the disk had failed the sync */
	if (op->res < 0)
		op_failed(log, "fdatasync", fop->segment, op->res);
	segment_put(fop->segment);
	TL_ASSERT(log->syncs_left > 0);
	if (--log->syncs_left > 0)
		return;
	/* From here on @fop may be reused: the next round can start from a callback. */
	tl_hist_add(&log->sync_us, (uint64_t)(tl_mono_ns() - log->sync_started_ns) / 1000);
	if (!log->failed) {
		sync_round_complete(log);
		if (!log->replicated)
			hw_advance(log, TL_MIN(log->durable_offset, log->hw_limit));
		if (log->durable_listener)
			log->durable_listener(log->durable_listener_ctx, log);
	}
	pipeline_pump(log);
}

/* Starts the sync round: one fdatasync per segment in `written`, which becomes
 * `syncing`. Each covers exactly the batches already in the page cache. */
static tl_err sync_start(struct tl_log *log)
{
	TL_ASSERT(log->syncs_left == 0);
	TL_ASSERT(log->syncing.count == 0);
	TL_ASSERT(log->written.count > 0);
	uint32_t segments = 0;
	for (uint32_t i = 0; i < log->written.count; i++)
		if (i == 0 || log->written.items[i].segment != log->written.items[i - 1].segment)
			segments++;
	if (grow_zeroed((void **)&log->sync_ops, &log->sync_ops_cap, segments,
			sizeof(struct flush_op)) != TL_OK) {
		snprintf(log->last_error, sizeof(log->last_error), "out of memory in sync");
		return TL_ERR_NOMEM;
	}
	pending_swap(&log->syncing, &log->written);
	log->written.count = 0;
	log->sync_end_offset = log->written_end_offset;
	uint32_t used = 0;
	for (uint32_t i = 0; i < log->syncing.count; i++) {
		const struct pending *p = &log->syncing.items[i];
		int64_t end = p->position + (int64_t)p->iov.iov_len;
		if (i > 0 && p->segment == log->syncing.items[i - 1].segment) {
			TL_ASSERT_DEBUG(p->position == log->sync_ops[used - 1].to);
			log->sync_ops[used - 1].to = end;
			continue;
		}
		struct flush_op *sync = &log->sync_ops[used++];
		TL_ASSERT(!sync->op.in_flight);
		memset(sync, 0, sizeof(*sync));
		sync->log = log;
		sync->segment = p->segment;
		/* Everything before it in the segment was durable before this round. */
		TL_ASSERT(p->position == p->segment->bytes_durable);
		sync->from = p->position;
		sync->to = end;
		sync->op.done = sync_done;
		p->segment->refs++; /* a roll or retention must not close the fd under the sync */
	}
	TL_ASSERT(used == segments);
	log->syncs_left = used;
	log->sync_started_ns = tl_mono_ns();
	pipeline_check(log);
	/* Ring callbacks never run from inside a queueing call. */
	for (uint32_t k = 0; k < used; k++) {
		struct flush_op *sync = &log->sync_ops[k];
		tl_ring_fdatasync(log->ring, &sync->op, sync->segment->fd, sync->from,
				  sync->to - sync->from);
	}
	return TL_OK;
}

/* The write round completed without error: `writing` is in the page cache. */
static tl_err write_round_complete(struct tl_log *log)
{
	TL_ASSERT(log->writing.count > 0);
	for (uint32_t i = 0; i < log->writing.count; i++) {
		const struct pending *p = &log->writing.items[i];
		p->segment->bytes_written = p->position + (int64_t)p->iov.iov_len;
		p->segment->next_offset_written = p->last_offset + 1;
		cache_add(log, p);
	}
	if (log->written.count == 0) {
		pending_swap(&log->written, &log->writing);
	} else {
		uint32_t count = log->written.count + log->writing.count;
		if (grow((void **)&log->written.items, &log->written.cap, count,
			 sizeof(*log->written.items)) != TL_OK) {
			snprintf(log->last_error, sizeof(log->last_error),
				 "out of memory in write");
			return TL_ERR_NOMEM;
		}
		memcpy(log->written.items + log->written.count, log->writing.items,
		       log->writing.count * sizeof(*log->writing.items));
		log->written.count = count;
	}
	log->writing.count = 0;
	log->written_end_offset = log->write_end_offset;
	pipeline_check(log);
	return TL_OK;
}

static void write_done(struct tl_ring_op *op)
{
	struct flush_op *fop = (struct flush_op *)op;
	struct tl_log *log = fop->log;
	if (op->res < 0)
		op_failed(log, "write", fop->segment, op->res);
	segment_put(fop->segment);
	TL_ASSERT(log->writes_left > 0);
	if (--log->writes_left > 0)
		return;
	/* From here on @fop may be reused. */
	tl_hist_add(&log->write_us, (uint64_t)(tl_mono_ns() - log->write_started_ns) / 1000);
	if (log->direct && !log->failed)
		direct_crash_point(log, TL_LOG_CRASH_BEFORE_SYNC, log->direct_rounds);
	if (!log->failed && write_round_complete(log) != TL_OK)
		log_set_failed(log);
	pipeline_pump(log);
}

/* Starts the write round: everything queued becomes `writing`, with at most one writev
 * per FLUSH_IOV_MAX contiguous batches of one segment. */
static tl_err write_start(struct tl_log *log)
{
	TL_ASSERT(log->writes_left == 0);
	TL_ASSERT(log->writing.count == 0);
	TL_ASSERT(log->queued.count > 0);
	uint32_t count = log->queued.count;
	/* Worst case every batch is its own write (segment changes). */
	if (grow((void **)&log->write_iov, &log->write_iov_cap, count, sizeof(struct iovec)) !=
		    TL_OK ||
	    grow_zeroed((void **)&log->write_ops, &log->write_ops_cap, count,
			sizeof(struct flush_op)) != TL_OK) {
		snprintf(log->last_error, sizeof(log->last_error), "out of memory in flush");
		return TL_ERR_NOMEM;
	}
	pending_swap(&log->writing, &log->queued);
	log->queued.count = 0;
	uint32_t used = 0;
	for (uint32_t i = 0; i < count;) {
		const struct pending *first = &log->writing.items[i];
		int64_t position = first->position;
		uint32_t j = i;
		while (j < count && j - i < FLUSH_IOV_MAX &&
		       log->writing.items[j].segment == first->segment &&
		       log->writing.items[j].position == position) {
			log->write_iov[j] = log->writing.items[j].iov;
			position += (int64_t)log->writing.items[j].iov.iov_len;
			j++;
		}
		struct flush_op *w = &log->write_ops[used++];
		TL_ASSERT(!w->op.in_flight);
		memset(w, 0, sizeof(*w));
		w->log = log;
		w->segment = first->segment;
		w->first = i;
		w->count = j - i;
		w->op.done = write_done;
		first->segment->refs++;
		i = j;
	}
	log->write_started_ns = tl_mono_ns();
	log->write_end_offset = log->writing.items[count - 1].last_offset + 1;
	log->writes_left = used;
	pipeline_check(log);
	for (uint32_t k = 0; k < used; k++) {
		struct flush_op *w = &log->write_ops[k];
		tl_ring_writev(log->ring, &w->op, w->segment->fd, log->write_iov + w->first,
			       (int)w->count, log->writing.items[w->first].position);
	}
	return TL_OK;
}

/* How many queued batches the next direct round takes: up to STAGE_BYTES_MAX of stage
 * (a block of tail and one of padding per segment counted), one batch at least. */
static uint32_t direct_round_count(const struct tl_log *log)
{
	int64_t bytes = 0;
	uint32_t n = 0;
	for (; n < log->queued.count; n++) {
		const struct pending *p = &log->queued.items[n];
		bytes += (int64_t)p->iov.iov_len;
		if (n == 0 || p->segment != log->queued.items[n - 1].segment)
			bytes += 2 * DIO_ALIGN;
		if (n > 0 && bytes > STAGE_BYTES_MAX)
			break;
	}
	return n;
}

/* Moves the first @n queued batches to `writing` (empty). */
static tl_err pending_take(struct tl_log *log, uint32_t n)
{
	TL_ASSERT(log->writing.count == 0);
	TL_ASSERT(n > 0 && n <= log->queued.count);
	if (n == log->queued.count) {
		pending_swap(&log->writing, &log->queued);
		log->queued.count = 0;
		return TL_OK;
	}
	if (grow((void **)&log->writing.items, &log->writing.cap, n, sizeof(*log->writing.items)) !=
	    TL_OK)
		return TL_ERR_NOMEM;
	memcpy(log->writing.items, log->queued.items, n * sizeof(*log->queued.items));
	memmove(log->queued.items, log->queued.items + n,
		(log->queued.count - n) * sizeof(*log->queued.items));
	log->writing.count = n;
	log->queued.count -= n;
	return TL_OK;
}

/* Sets up @w to write @bytes of the stage at @at to @from of @segment. */
static void direct_op_init(struct tl_log *log, struct flush_op *w, struct tl_log_segment *segment,
			   uint32_t first, uint32_t count, int64_t from, uint8_t *at, size_t bytes)
{
	TL_ASSERT(!w->op.in_flight);
	TL_ASSERT(from % DIO_ALIGN == 0);
	TL_ASSERT(bytes > 0 && bytes % DIO_ALIGN == 0);
	memset(w, 0, sizeof(*w));
	w->log = log;
	w->segment = segment;
	w->first = first;
	w->count = count;
	w->from = from;
	w->to = from + (int64_t)bytes;
	w->iov.iov_base = at;
	w->iov.iov_len = bytes;
	w->op.done = write_done;
}

/* Copies the run of `writing` from @i (contiguous batches of one segment) into the stage
 * at @at, behind the written bytes of the block it starts in and padded with zeros to a
 * whole block; sets up @w (room for DIRECT_RUN_OPS_MAX) to write it and sets *@ops_out
 * to how many ops it takes. ext4 writes a range that lies in one extent inline, but
 * punts a range that spans two to an io-wq worker (IOCB_NOWAIT needs its inode lock
 * shared, which it takes only for an overwrite of one mapped extent). So the run is cut
 * (a) after the tail block when it rewrites one and goes past it (written, then
 * fallocated-unwritten space), (b) at each multiple of log.preallocate.bytes inside it:
 * every fallocate starts at one, so two fallocates' extents that are not physically
 * adjacent meet there (traced: each round crossing such a boundary was punted, 9 in a
 * 1 GB run whose file had 96 MiB extents). Returns the index after the run. */
static uint32_t direct_run_stage(struct tl_log *log, uint32_t i, uint8_t *at, struct flush_op *w,
				 uint32_t *ops_out, tl_err *err)
{
	const struct pending *first = &log->writing.items[i];
	struct tl_log_segment *segment = first->segment;
	int64_t start = first->position / DIO_ALIGN * DIO_ALIGN;
	uint32_t prefix = (uint32_t)(first->position - start);
	TL_ASSERT(((uintptr_t)at % DIO_ALIGN) == 0);
	*err = TL_OK;
	if (prefix > 0 && (*err = tail_fill(log, segment, start, prefix, at)) != TL_OK)
		return i;
	if ((*err = segment_open_direct(log, segment)) != TL_OK)
		return i;
	size_t len = prefix;
	int64_t position = first->position;
	uint32_t j = i;
	for (; j < log->writing.count && log->writing.items[j].segment == segment &&
	       log->writing.items[j].position == position;
	     j++) {
		const struct pending *p = &log->writing.items[j];
		memcpy(at + len, p->iov.iov_base, p->iov.iov_len);
		len += p->iov.iov_len;
		position += (int64_t)p->iov.iov_len;
	}
	size_t padded = (len + DIO_ALIGN - 1) / DIO_ALIGN * DIO_ALIGN;
	memset(at + len, 0, padded - len);
	/* The block the next round starts in, unless it starts a new block. */
	log->tail_base = segment->base_offset;
	log->tail_position = position / DIO_ALIGN * DIO_ALIGN;
	log->tail_bytes = (uint32_t)(position - log->tail_position);
	memcpy(log->tail, at + (log->tail_position - start), log->tail_bytes);
	segment_preallocate(log, segment, start + (int64_t)padded);
	int64_t end = start + (int64_t)padded;
	int64_t step = log->config.preallocate && !log->preallocate_off
			       ? log->config.preallocate_bytes / DIO_ALIGN * DIO_ALIGN
			       : 0;
	int64_t from = start;
	uint32_t ops = 0;
	while (from < end) {
		int64_t to = end;
		if (from == start && prefix > 0)
			to = start + DIO_ALIGN;
		else if (step > 0 && (from / step + 1) * step < end)
			to = (from / step + 1) * step;
		if (ops + 1 == DIRECT_RUN_OPS_MAX)
			to = end; /* the rest in one write, punted or not */
		direct_op_init(log, &w[ops++], segment, i, j - i, from, at + (from - start),
			       (size_t)(to - from));
		from = to;
	}
	*ops_out = ops;
	return j;
}

/* Starts a direct write round: the first queued batches (direct_round_count()) become
 * `writing`, copied into the stage, one O_DIRECT write per run of one segment. */
static tl_err write_start_direct(struct tl_log *log)
{
	TL_ASSERT(log->writes_left == 0);
	TL_ASSERT(log->queued.count > 0);
	uint32_t count = direct_round_count(log);
	size_t stage_bytes = 0;
	uint32_t segments = 0;
	for (uint32_t i = 0; i < count; i++) {
		stage_bytes += log->queued.items[i].iov.iov_len;
		if (i == 0 || log->queued.items[i].segment != log->queued.items[i - 1].segment)
			segments++;
	}
	stage_bytes += 2 * DIO_ALIGN * (size_t)segments;
	if (stage_reserve(log, stage_bytes) != TL_OK ||
	    grow_zeroed((void **)&log->write_ops, &log->write_ops_cap,
			DIRECT_RUN_OPS_MAX * segments, sizeof(struct flush_op)) != TL_OK ||
	    pending_take(log, count) != TL_OK) {
		snprintf(log->last_error, sizeof(log->last_error), "out of memory in flush");
		return TL_ERR_NOMEM;
	}
	uint32_t used = 0;
	size_t off = 0;
	for (uint32_t i = 0; i < count;) {
		tl_err err;
		uint32_t ops = 0;
		i = direct_run_stage(log, i, log->stage + off, &log->write_ops[used], &ops, &err);
		if (err != TL_OK)
			return err; /* FAILED: the pump drops `writing` with the rest */
		for (uint32_t k = 0; k < ops; k++)
			off += log->write_ops[used + k].iov.iov_len;
		TL_ASSERT(off <= log->stage_cap);
		used += ops;
	}
	TL_ASSERT(used >= segments && used <= DIRECT_RUN_OPS_MAX * segments);
	log->write_started_ns = tl_mono_ns();
	log->write_end_offset = log->writing.items[count - 1].last_offset + 1;
	log->writes_left = used;
	int32_t round = ++log->direct_rounds;
	direct_crash_point(log, TL_LOG_CRASH_AFTER_PREALLOCATE, round);
	direct_crash_point(log, TL_LOG_CRASH_TORN_TAIL_BLOCK, round);
	direct_crash_point(log, TL_LOG_CRASH_TORN_ROUND, round);
	pipeline_check(log);
	for (uint32_t k = 0; k < used; k++) {
		struct flush_op *w = &log->write_ops[k];
		w->segment->refs++;
		if (log->stage_slot >= 0)
			tl_ring_write_fixed(log->ring, &w->op, w->segment->dio_fd, &w->iov,
					    log->stage_slot, w->from);
		else
			tl_ring_writev(log->ring, &w->op, w->segment->dio_fd, &w->iov, 1, w->from);
	}
	return TL_OK;
}

/* Starts each stage that is idle and has work: the sync first, as the longer of the two.
 * On a FAILED log, once neither round is in flight, drops every pending batch and fires
 * every waiter with KAFKA_STORAGE_ERROR; not before, as a write in flight still reads the
 * bytes that a waiter's owner frees. Called whenever a round completes, and may be
 * re-entered from a waiter or listener callback (through tl_log_flush()). */
static void pipeline_pump(struct tl_log *log)
{
	if (!log->failed && log->syncs_left == 0 && log->written.count > 0 &&
	    sync_start(log) != TL_OK)
		log_set_failed(log);
	if (!log->failed && log->writes_left == 0 && log->queued.count > 0 &&
	    (log->direct ? write_start_direct(log) : write_start(log)) != TL_OK)
		log_set_failed(log);
	if (log->failed && log->writes_left == 0 && log->syncs_left == 0) {
		log->queued.count = 0;
		log->writing.count = 0;
		log->written.count = 0;
		log->syncing.count = 0;
		waiters_fire(log, true, TL_ERR_KAFKA_STORAGE_ERROR);
		if (!log->failure_reported && log->durable_listener) {
			log->failure_reported = true;
			log->durable_listener(log->durable_listener_ctx, log);
		}
	}
}

void tl_log_flush(struct tl_log *log)
{
	/* Waiters on batches that were already durable (retried duplicates). */
	if (!log->failed)
		waiters_fire(log, false, TL_OK);
	pipeline_pump(log);
}

/* ---- high watermark ---- */

int64_t tl_log_durable_offset(const struct tl_log *log)
{
	return log->durable_offset;
}

int64_t tl_log_written_offset(const struct tl_log *log)
{
	return log->written_end_offset;
}

void tl_log_set_durable_listener(struct tl_log *log, tl_log_listener_fn fn, void *ctx)
{
	log->durable_listener = fn;
	log->durable_listener_ctx = ctx;
}

void tl_log_set_replicated(struct tl_log *log, bool replicated)
{
	log->replicated = replicated;
	if (!replicated && !log->failed)
		hw_advance(log, TL_MIN(log->durable_offset, log->hw_limit));
}

void tl_log_set_high_watermark(struct tl_log *log, int64_t hw)
{
	if (log->failed)
		return;
	hw_advance(log, TL_MIN(hw, log->durable_offset));
}

/* Rebuilds the producer table, the aborted list and the closing list from the newest
 * usable snapshot and the log after it, so that markers at or past the high watermark
 * hold the LSO again (after the high watermark went down, or the log was cut). */
static tl_err pstate_rebuild(struct tl_log *log)
{
	tl_pstate_clear(&log->pstate);
	log->closing_count = 0;
	while (log->aborted_count > 0 &&
	       log->aborted[log->aborted_count - 1].last_offset >= log->end_offset)
		log->aborted_count--;
	for (size_t i = 0; i < TL_ARRAY_SIZE(log->snapshots); i++)
		log->snapshots[i] = -1;
	return pstate_recover(log, log->high_watermark);
}

tl_err tl_log_reset_high_watermark(struct tl_log *log, int64_t hw)
{
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	hw = TL_MAX(hw, tl_log_start_offset(log));
	hw = TL_MIN(hw, log->durable_offset);
	if (hw >= log->high_watermark) {
		hw_advance(log, hw);
		return TL_OK;
	}
	log->high_watermark = hw;
	log->last_error[0] = '\0';
	tl_err err = pstate_rebuild(log);
	if (err != TL_OK) {
		if (!log->last_error[0]) /* else the rebuild said what failed (a dir fsync) */
			set_error(log, "read", "batch headers for producer state", EIO);
		log_fail(log);
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	pipeline_check(log);
	return TL_OK;
}

/* Runs the ring until this log has neither round in flight: both stages have drained
 * everything (or the log FAILED). */
static void rounds_drain(struct tl_log *log)
{
	pipeline_pump(log);
	/* Appends made meanwhile (from another log's callback) are drained too. */
	while (log->writes_left > 0 || log->syncs_left > 0 ||
	       (!log->failed && (log->queued.count > 0 || log->written.count > 0))) {
		if (log->writes_left == 0 && log->syncs_left == 0)
			pipeline_pump(log);
		tl_ring_submit(log->ring);
		tl_ring_wait(log->ring);
	}
	if (!log->failed) {
		TL_ASSERT(log->queued.count == 0);
		TL_ASSERT(log->written.count == 0);
		TL_ASSERT(log->durable_offset == log->end_offset);
	}
}

/* Drains both stages and fires the waiters left: in replicated mode those the high
 * watermark has not passed learn that this replica stops serving them. */
static void log_drain(struct tl_log *log)
{
	rounds_drain(log);
	if (!log->failed && log->replicated) {
		waiters_fire(log, false, TL_OK);
		waiters_fire(log, true, TL_ERR_NOT_LEADER_OR_FOLLOWER);
	}
	waiters_fire(log, true, log->failed ? TL_ERR_KAFKA_STORAGE_ERROR : TL_OK);
}

static void readahead_drain(struct tl_log *log);
static void readahead_clear(struct tl_log *log);

static void log_free(struct tl_log *log)
{
	cleaner_cancel(log);
	readahead_drain(log);
	TL_ASSERT(log->writes_left == 0);
	TL_ASSERT(log->syncs_left == 0);
	for (uint32_t i = 0; i < log->segment_count; i++)
		segment_put(log->segments[i]);
	close(log->dir_fd);
	tl_pstate_deinit(&log->pstate);
	free(log->segments);
	free(log->queued.items);
	free(log->writing.items);
	free(log->written.items);
	free(log->syncing.items);
	free(log->write_iov);
	free(log->write_ops);
	free(log->sync_ops);
	stage_free(log);
	cache_free(log);
	free(log->aborted);
	free(log->closing);
	free(log->epochs);
	free(log->dir);
	free(log);
}

void tl_log_close(struct tl_log *log)
{
	cleaner_cancel(log);
	log_drain(log);
	if (log->flush_count > 0)
		tl_info("log: closing dir=%s flushes=%" PRIu64 " bytes=%" PRIu64
			" bytes_per_flush=%" PRIu64 " flush_p50_us=%" PRIu64
			" flush_p99_us=%" PRIu64 " flush_p999_us=%" PRIu64 " flush_max_us=%" PRIu64
			" write_p50_us=%" PRIu64 " write_p99_us=%" PRIu64 " write_max_us=%" PRIu64,
			log->dir, log->flush_count, log->flush_bytes,
			log->flush_bytes / log->flush_count, tl_hist_quantile(&log->sync_us, 0.5),
			tl_hist_quantile(&log->sync_us, 0.99),
			tl_hist_quantile(&log->sync_us, 0.999), log->sync_us.max,
			tl_hist_quantile(&log->write_us, 0.5),
			tl_hist_quantile(&log->write_us, 0.99), log->write_us.max);
	if (!log->failed) {
		/* Everything the marker vouches for must be durable before the marker, the
		 * files cut back to their last batch included (the index check wants it). */
		tl_err err = TL_OK;
		for (uint32_t i = 0; i < log->segment_count && err == TL_OK; i++) {
			struct tl_log_segment *segment = log->segments[i];
			if (segment->file_end <= segment->bytes)
				continue;
			segment_trim(log, segment);
			if (segment->file_end > segment->bytes || fdatasync(segment->fd) == -1) {
				set_error(log, "cut preallocated space of", "a segment", errno);
				err = TL_ERR_IO;
			}
		}
		for (uint32_t i = 0; i < log->segment_count && err == TL_OK; i++) {
			struct tl_log_segment *segment = log->segments[i];
			if (!segment->indexes_on_disk || i + 1 == log->segment_count)
				err = segment_write_indexes(log, segment, true);
		}
		if (err == TL_OK)
			err = snapshot_write(log, true);
		if (err == TL_OK)
			err = sync_dir(log);
		if (err == TL_OK) {
			int fd = openat(log->dir_fd, CLEAN_MARKER, O_WRONLY | O_CREAT | O_CLOEXEC,
					0644);
			if (fd == -1 || fsync(fd) == -1)
				err = TL_ERR_IO;
			if (fd != -1)
				close(fd);
			if (err == TL_OK)
				err = sync_dir(log);
		}
		if (err != TL_OK)
			tl_warn("log: clean close failed, the next open recovers dir=%s "
				"detail=\"%s\"",
				log->dir, log->last_error);
	}
	log_free(log);
}

static tl_err remove_tree(int dir_fd, const char *path)
{
	DIR *d = dir_open(dir_fd);
	if (!d)
		return TL_ERR_IO;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlinkat(dir_fd, de->d_name, 0);
	closedir(d);
	return rmdir(path) == 0 ? TL_OK : TL_ERR_IO;
}

tl_err tl_log_remove(struct tl_log *log)
{
	cleaner_cancel(log);
	log_drain(log);
	tl_err err = remove_tree(log->dir_fd, log->dir);
	if (err != TL_OK)
		tl_warn("log: cannot remove partition directory dir=%s err=%s", log->dir,
			strerrorname_np(errno));
	for (uint32_t i = 0; err == TL_OK && i < log->segment_count; i++)
		log->segments[i]->gone = true; /* every file unlinked: closed by the closer */
	log_free(log);
	return err;
}

/* ---- truncation ---- */

/* Fires, with @err, the waiters at or above @offset: the tail of the list. */
static void waiters_fire_from(struct tl_log *log, int64_t offset, tl_err err)
{
	struct tl_log_waiter **at = &log->waiters;
	struct tl_log_waiter *last = NULL;
	while (*at && (*at)->offset < offset) {
		last = *at;
		at = &(*at)->next;
	}
	struct tl_log_waiter *cut = *at;
	*at = NULL;
	log->waiters_tail = last;
	while (cut) {
		struct tl_log_waiter *next = cut->next;
		cut->next = NULL;
		cut->done(cut, err);
		cut = next;
	}
}

/* The pending batch holding @offset, or NULL when it is durable already. */
static const struct pending *pending_find(const struct tl_log *log, int64_t offset)
{
	const struct pending_list *lists[] = {&log->syncing, &log->written, &log->writing,
					      &log->queued};
	for (size_t l = 0; l < TL_ARRAY_SIZE(lists); l++)
		for (uint32_t i = 0; i < lists[l]->count; i++)
			if (lists[l]->items[i].base_offset <= offset &&
			    offset <= lists[l]->items[i].last_offset)
				return &lists[l]->items[i];
	return NULL;
}

/* Where a truncation to @offset (start <= @offset < end) cuts: the base offset of the
 * batch holding it, or, when @offset is in an offset hole (a compacted range), the end of
 * the batch before the hole (the segment's base when none is before it), so that the
 * log end stays a batch end. */
static tl_err batch_start_find(const struct tl_log *log, int64_t offset, int64_t *base_out)
{
	const struct pending *p = pending_find(log, offset);
	if (p) {
		*base_out = p->base_offset;
		return TL_OK;
	}
	TL_ASSERT(offset < log->durable_offset);
	const struct tl_log_segment *segment = log->segments[segment_index_for(log, offset)];
	int64_t position = index_lookup(segment, offset);
	int64_t before = segment->base_offset; /* the end of the batch before position */
	if (position > 0) {
		struct tl_batch_header h;
		tl_err err = header_read(segment, position, segment->bytes_durable, &h);
		if (err != TL_OK)
			return err;
		before = h.base_offset; /* an indexed batch: it starts at or below @offset */
	}
	while (position < segment->bytes_durable) {
		struct tl_batch_header h;
		tl_err err = header_read(segment, position, segment->bytes_durable, &h);
		if (err != TL_OK)
			return err;
		if (tl_batch_last_offset(&h) >= offset) {
			*base_out = h.base_offset <= offset ? h.base_offset : before;
			TL_ASSERT(*base_out <= offset);
			return TL_OK;
		}
		before = tl_batch_last_offset(&h) + 1;
		position += batch_bytes(&h);
	}
	return TL_ERR_CORRUPT;
}

/* Drops the queued batches (never handed to a write) at or above @offset. */
static void queued_drop_from(struct tl_log *log, int64_t offset)
{
	uint32_t keep = log->queued.count;
	while (keep > 0 && log->queued.items[keep - 1].base_offset >= offset)
		keep--;
	if (keep == log->queued.count)
		return;
	log->queued.count = keep;
	log->end_offset =
		keep > 0 ? log->queued.items[keep - 1].last_offset + 1 : log->write_end_offset;
}

/* Finishes the rounds in flight and writes and syncs what is still queued below
 * @new_end, dropping the rest; the high watermark does not pass @new_end meanwhile. */
static tl_err truncate_drain(struct tl_log *log, int64_t new_end)
{
	log->hw_limit = new_end;
	queued_drop_from(log, new_end);
	rounds_drain(log);
	log->hw_limit = INT64_MAX;
	return log->failed ? TL_ERR_KAFKA_STORAGE_ERROR : TL_OK;
}

/* Rebuilds @segment's in-memory indexes and end from its first @bytes bytes. */
static tl_err segment_reindex(struct tl_log *log, struct tl_log_segment *segment, int64_t bytes)
{
	segment_reset_indexes(segment);
	segment->bytes = 0;
	segment->next_offset = segment->base_offset;
	for (int64_t position = 0; position < bytes;) {
		struct tl_batch_header h;
		tl_err err = header_read(segment, position, bytes, &h);
		if (err == TL_OK)
			err = segment_track(segment, &h, position,
					    log->config.index_interval_bytes);
		if (err != TL_OK)
			return err;
		position += batch_bytes(&h);
	}
	TL_ASSERT(segment->bytes == bytes);
	segment->bytes_durable = bytes;
	segment->bytes_written = bytes;
	segment->next_offset_durable = segment->next_offset;
	segment->next_offset_written = segment->next_offset;
	if (bytes == 0)
		segment->first_append_ms = -1;
	return TL_OK;
}

/* The file position of the batch at @offset in @segment (its end when none is there). */
static tl_err segment_position_of(const struct tl_log_segment *segment, int64_t offset,
				  int64_t *position_out)
{
	int64_t position = index_lookup(segment, offset);
	while (position < segment->bytes_durable) {
		struct tl_batch_header h;
		tl_err err = header_read(segment, position, segment->bytes_durable, &h);
		if (err != TL_OK)
			return err;
		if (h.base_offset >= offset)
			break;
		position += batch_bytes(&h);
	}
	*position_out = position;
	return TL_OK;
}

/* Checks the state truncation leaves: offsets in order, the cache ordered and below the
 * end, no producer batch at or past the end. */
static void truncate_check(const struct tl_log *log)
{
	TL_ASSERT(tl_log_start_offset(log) <= log->high_watermark);
	TL_ASSERT(log->high_watermark <= log->end_offset);
	TL_ASSERT(active_segment(log)->next_offset == log->end_offset);
	epochs_check(log);
	if (log->epoch_count > 0)
		TL_ASSERT(log->epochs[log->epoch_count - 1].start_offset < log->end_offset);
	for (uint32_t b = 0; b < log->pstate.bucket_count; b++)
		for (const struct tl_pstate_entry *e = log->pstate.buckets[b]; e; e = e->next) {
			if (e->batch_count > 0)
				TL_ASSERT(e->batches[e->batch_count - 1].last_offset <
					  log->end_offset);
			TL_ASSERT(e->txn_first_offset < log->end_offset);
		}
	if (log->aborted_count > 0)
		TL_ASSERT(log->aborted[log->aborted_count - 1].last_offset < log->end_offset);
	pipeline_check(log);
}

/* Cuts the drained log at @new_end, a batch boundary. Crash order: the later segments
 * go first, newest first, so that what a crash leaves is always a prefix of the log
 * (recovery also drops a segment that does not follow its predecessor), with the index
 * files of the segment that holds @new_end, and the directory is synced; then that file
 * is cut and synced with its directory; only then does the
 * checkpoint lose its epochs at or past @new_end (recovery drops entries past the end it
 * finds, so a stale checkpoint is harmless, while a checkpoint cut first could lose the
 * start of an epoch whose batches survive); snapshots past the end go last (recovery
 * deletes them too). */
static tl_err log_cut(struct tl_log *log, int64_t new_end)
{
	uint32_t keep = segment_index_for(log, new_end);
	for (uint32_t i = log->segment_count; i-- > keep + 1;) {
		segment_delete(log, log->segments[i]);
		segment_put(log->segments[i]);
		log->segment_count--;
	}
	struct tl_log_segment *segment = active_segment(log);
	/* It is the active segment now: its index files would go stale. */
	segment_unlink_indexes(log, segment->base_offset);
	segment->indexes_on_disk = false;
	char name[NAME_BYTES];
	segment_name(name, segment->base_offset, ".log");
	int64_t position;
	tl_err err = segment_position_of(segment, new_end, &position);
	if (err != TL_OK) {
		set_error(log, "read", name, EIO);
		return err;
	}
	/* The unlinks are durable before the cut: a later segment or an index file that a
	 * crash brought back would describe bytes the cut removed. */
	if ((err = sync_dir(log)) != TL_OK)
		return err;
	if (ftruncate(segment->fd, (off_t)position) == -1) {
		set_error(log, "truncate", name, errno);
		return TL_ERR_IO;
	}
	segment->file_end = position;
	log->tail_base = -1; /* the next round reads the tail block back from the file */
	if (fdatasync(segment->fd) == -1) {
		set_error(log, "fdatasync", name, errno);
		return TL_ERR_IO;
	}
	if ((err = sync_dir(log)) != TL_OK)
		return err;
	if ((err = segment_reindex(log, segment, position)) != TL_OK) {
		set_error(log, "read", name, EIO);
		return err;
	}
	TL_ASSERT(segment->next_offset == new_end);
	log->end_offset = new_end;
	log->durable_offset = new_end;
	log->sync_end_offset = new_end;
	log->written_end_offset = new_end;
	log->write_end_offset = new_end;
	log->high_watermark = TL_MIN(log->high_watermark, new_end);
	epochs_truncate(log, new_end);
	if ((err = epochs_sync(log)) != TL_OK)
		return err;
	if ((err = cleaner_checkpoint_lower(log, new_end)) != TL_OK)
		return err;
	log->first_open_txn = -2;
	log->last_error[0] = '\0';
	if ((err = pstate_rebuild(log)) != TL_OK && !log->last_error[0])
		set_error(log, "read", "batch headers for producer state", EIO);
	return err;
}

tl_err tl_log_truncate_to(struct tl_log *log, int64_t offset)
{
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	cleaner_cancel(log);
	readahead_clear(log);
	offset = TL_MAX(offset, tl_log_start_offset(log));
	if (offset >= log->end_offset) {
		epochs_truncate(log, offset);
		return epochs_sync(log) == TL_OK ? TL_OK : TL_ERR_KAFKA_STORAGE_ERROR;
	}
	int64_t new_end = -1;
	if (batch_start_find(log, offset, &new_end) != TL_OK) {
		set_error(log, "read", "batch header for truncation", EIO);
		log_fail(log);
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	int64_t old_end = log->end_offset;
	tl_err err = truncate_drain(log, new_end);
	cache_clear(log);
	if (err == TL_OK)
		err = log_cut(log, new_end);
	if (err != TL_OK) {
		log_fail(log);
		return TL_ERR_KAFKA_STORAGE_ERROR;
	}
	tl_info("log: truncated dir=%s offset=%" PRId64 " end=%" PRId64 " old_end=%" PRId64
		" hw=%" PRId64,
		log->dir, offset, new_end, old_end, log->high_watermark);
	truncate_check(log);
	waiters_fire_from(log, new_end, TL_ERR_NOT_LEADER_OR_FOLLOWER);
	return TL_OK;
}

/* Deletes every snapshot file in the directory. */
static void snapshots_unlink_all(struct tl_log *log)
{
	DIR *d = dir_open(log->dir_fd);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 9 && strcmp(de->d_name + n - 9, ".snapshot") == 0)
			unlinkat(log->dir_fd, de->d_name, 0);
	}
	closedir(d);
	for (size_t i = 0; i < TL_ARRAY_SIZE(log->snapshots); i++)
		log->snapshots[i] = -1;
}

/* Crash order: the empty checkpoint first (with batches left, recovery rebuilds it from
 * them), then the snapshots, then the segments, newest first (a crash leaves a prefix),
 * then the new empty segment (a crash before it leaves an empty directory, which opens
 * as an empty log at 0: the caller truncates again). */
tl_err tl_log_truncate_fully(struct tl_log *log, int64_t new_start_offset)
{
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	if (new_start_offset < 0)
		return TL_ERR_INVALID;
	cleaner_cancel(log);
	readahead_clear(log);
	tl_err err = truncate_drain(log, log->high_watermark);
	cache_clear(log);
	if (err != TL_OK)
		return err;
	log->epoch_count = 0;
	log->epochs_dirty = true;
	if (epochs_sync(log) != TL_OK)
		goto out_fail;
	snapshots_unlink_all(log);
	if (log->start_floor > 0) {
		/* The new start replaces the floor; a stale file must not raise it later. */
		if (unlinkat(log->dir_fd, START_CHECKPOINT, 0) == -1 && errno != ENOENT) {
			set_error(log, "unlink", START_CHECKPOINT, errno);
			goto out_fail;
		}
		log->start_floor = 0;
	}
	while (log->segment_count > 0) {
		struct tl_log_segment *segment = log->segments[log->segment_count - 1];
		segment_delete(log, segment);
		segment_put(segment);
		log->segment_count--;
	}
	log->tail_base = -1;
	if (segment_create(log, new_start_offset) != TL_OK ||
	    cleaner_checkpoint_lower(log, new_start_offset) != TL_OK)
		goto out_fail;
	log->end_offset = new_start_offset;
	log->durable_offset = new_start_offset;
	log->sync_end_offset = new_start_offset;
	log->written_end_offset = new_start_offset;
	log->write_end_offset = new_start_offset;
	log->high_watermark = new_start_offset;
	tl_pstate_clear(&log->pstate);
	log->aborted_count = 0;
	log->closing_count = 0;
	log->first_open_txn = -2;
	tl_info("log: truncated fully dir=%s start=%" PRId64, log->dir, new_start_offset);
	truncate_check(log);
	waiters_fire_from(log, INT64_MIN, TL_ERR_NOT_LEADER_OR_FOLLOWER);
	return TL_OK;
out_fail:
	log_fail(log);
	return TL_ERR_KAFKA_STORAGE_ERROR;
}

/* ---- read cache ----
 * Direct writes leave nothing in the page cache, so a consumer that keeps up (a tail,
 * a follower) would read every batch back from the disk. The log keeps the newest
 * written batches of its active segment in memory instead: log.cache.bytes split into
 * CACHE_CHUNKS chunks, filled in order (a batch never straddles two), the oldest chunk
 * reused when the newest is full. A read whose first batch is cached is answered from
 * memory, up to the end of that chunk: the response holds a reference on the chunk's
 * block, and a chunk reused while a response still holds its block gets a new block
 * (the old one is freed by the last release). So memory is bounded by log.cache.bytes
 * plus blocks still being sent, and there is no allocation per batch: blocks and entry
 * arrays are reused. Batches enter when their write completes (what the file holds),
 * and reads obey the same limits as the file's (the caller's @max_offset: the high
 * watermark, the LSO, or the written end for a follower). Roll and truncation empty
 * the cache; a batch larger than a chunk empties it too (offsets must stay contiguous).
 * Buffered logs do not cache: the page cache does it. */

static void cache_block_put(void *ref)
{
	struct cache_block *block = ref;
	TL_ASSERT(block->refs > 0);
	if (--block->refs == 0)
		free(block);
}

static size_t cache_chunk_bytes(const struct tl_log *log)
{
	if (!log->direct || log->config.cache_bytes <= 0)
		return 0;
	return (size_t)TL_MIN(log->config.cache_bytes / CACHE_CHUNKS, (int64_t)UINT32_MAX);
}

static void cache_clear(struct tl_log *log)
{
	log->cache_first = 0;
	log->cache_count = 0;
	log->cache_segment = NULL;
	log->cache_stats.bytes = 0;
}

static void cache_free(struct tl_log *log)
{
	cache_clear(log);
	for (uint32_t i = 0; i < CACHE_CHUNKS; i++) {
		if (log->cache[i].block)
			cache_block_put(log->cache[i].block);
		free(log->cache[i].entries);
		memset(&log->cache[i], 0, sizeof(log->cache[i]));
	}
}

static struct cache_chunk *cache_chunk_at(struct tl_log *log, uint32_t i)
{
	return &log->cache[(log->cache_first + i) % CACHE_CHUNKS];
}

/* Starts a new newest chunk (dropping the oldest when all are in use) with a block of
 * @bytes that no read holds. NULL when out of memory (the cache is then empty). */
static struct cache_chunk *cache_chunk_open(struct tl_log *log, size_t bytes)
{
	if (log->cache_count == CACHE_CHUNKS) {
		log->cache_stats.bytes -= (int64_t)cache_chunk_at(log, 0)->used;
		log->cache_first = (log->cache_first + 1) % CACHE_CHUNKS;
		log->cache_count--;
	}
	struct cache_chunk *chunk = cache_chunk_at(log, log->cache_count);
	if (chunk->block && (chunk->block->refs > 1 || chunk->block->cap != bytes)) {
		cache_block_put(chunk->block); /* a response still sends it: it frees it */
		chunk->block = NULL;
	}
	if (!chunk->block) {
		chunk->block = malloc(sizeof(*chunk->block) + bytes);
		if (!chunk->block) {
			cache_clear(log);
			return NULL;
		}
		chunk->block->refs = 1;
		chunk->block->cap = bytes;
	}
	chunk->used = 0;
	chunk->count = 0;
	log->cache_count++;
	return chunk;
}

/* Called for each batch whose write completed, in offset order. */
static void cache_add(struct tl_log *log, const struct pending *p)
{
	size_t chunk_bytes = cache_chunk_bytes(log);
	if (chunk_bytes == 0)
		return;
	size_t len = p->iov.iov_len;
	struct cache_chunk *last =
		log->cache_count > 0 ? cache_chunk_at(log, log->cache_count - 1) : NULL;
	if (p->segment != log->cache_segment || len > chunk_bytes ||
	    (last && last->entries[last->count - 1].last_offset + 1 != p->base_offset)) {
		cache_clear(log);
		last = NULL;
		if (len > chunk_bytes)
			return;
	}
	if (!last || last->used + len > last->block->cap) {
		if (!(last = cache_chunk_open(log, chunk_bytes)))
			return;
	}
	if (grow((void **)&last->entries, &last->cap, last->count + 1, sizeof(*last->entries)) !=
	    TL_OK) {
		cache_clear(log);
		return;
	}
	memcpy(last->block->data + last->used, p->iov.iov_base, len);
	last->entries[last->count++] = (struct cache_entry){
		.base_offset = p->base_offset,
		.last_offset = p->last_offset,
		.at = (uint32_t)last->used,
		.len = (uint32_t)len,
	};
	last->used += len;
	log->cache_segment = p->segment;
	log->cache_stats.bytes += (int64_t)len;
}

/* Answers a read from the cache: false when the batch holding @offset is not there.
 * @offset < @max_offset <= the written end. */
static bool cache_read(struct tl_log *log, int64_t offset, int64_t max_offset, int64_t max_bytes,
		       bool min_one, struct tl_log_read *out)
{
	if (log->cache_count == 0)
		return false;
	const struct cache_chunk *first = cache_chunk_at(log, 0);
	const struct cache_chunk *newest = cache_chunk_at(log, log->cache_count - 1);
	if (offset < first->entries[0].base_offset ||
	    offset > newest->entries[newest->count - 1].last_offset)
		return false;
	const struct cache_chunk *chunk = NULL;
	for (uint32_t i = 0; i < log->cache_count; i++) {
		chunk = cache_chunk_at(log, i);
		if (chunk->entries[chunk->count - 1].last_offset >= offset)
			break;
	}
	uint32_t lo = 0, hi = chunk->count - 1; /* the first entry with last_offset >= offset */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (chunk->entries[mid].last_offset >= offset)
			hi = mid;
		else
			lo = mid + 1;
	}
	const struct cache_entry *e = &chunk->entries[lo];
	TL_ASSERT(e->base_offset <= offset && offset <= e->last_offset);
	int64_t bytes = 0;
	uint32_t j = lo;
	for (; j < chunk->count && chunk->entries[j].last_offset < max_offset; j++) {
		if (bytes + chunk->entries[j].len > max_bytes && !(j == lo && min_one))
			break;
		TL_ASSERT(chunk->entries[j].at == e->at + bytes);
		bytes += chunk->entries[j].len;
	}
	if (bytes == 0)
		return true; /* as the file would answer: nothing whole below the limits */
	chunk->block->refs++;
	out->data = chunk->block->data + e->at;
	out->bytes = bytes;
	out->first_offset = e->base_offset;
	out->next_offset = chunk->entries[j - 1].last_offset + 1;
	out->release = cache_block_put;
	out->ref = chunk->block;
	log->cache_stats.hits++;
	log->cache_stats.hit_bytes += (uint64_t)bytes;
	return true;
}

/* ---- cold reads of a direct log ----
 * A direct log's batches never pass through the page cache, so a read that misses the
 * read cache finds none of its pages there: sendfile would fill the cache page by page
 * (readahead) on the event loop and leave the consumer copying out of freshly filled
 * pages. Such ranges are read instead with aligned O_DIRECT reads into memory (malloc'd,
 * so reused once freed) and sent from there, as the read cache's bytes are: the device's
 * large-read speed, no page cache.
 *
 * Read-ahead. A consumer far behind would wait for each fetch's read, and the disk would
 * idle while the answer is sent and the client works. So a cold range starts an
 * asynchronous read (the log's ring) of a chunk (4 MiB) from it and the fetch
 * waits for it as for new data (the answer leaves the partition empty; the log's
 * listener wakes parked fetches when the read completes). Fetches inside a read chunk are
 * answered from its memory, cut to the whole batches it holds, and the first of them
 * sends the read of the next chunk, from the first batch the chunk holds only part of.
 * The disk reads the next chunk while this one is sent; the event loop never waits for
 * the disk. The range itself is found in the chunks (readahead_lookup: the batch headers
 * walked in memory), not with tl_log_read's preads of headers through a page cache that
 * a direct log never fills. A chunk idle for READAHEAD_IDLE_MS, or of a segment the log
 * dropped, is freed at the next tick; a truncation drops them all. A fetch that cannot
 * wait (tl_log_read_cached's may_wait) reads synchronously instead.
 *
 * Fallback (readahead_lookup cannot answer): a range over DIRECT_READ_BYTES_MAX, no slot
 * free or past the process's limit on bytes so held, or when an asynchronous read failed
 * once (readahead_off, logged): tl_log_read's range and one synchronous O_DIRECT pread
 * of it (direct_read), and if that fails too, the file range. */

#define DIRECT_READ_BYTES_MAX (8 << 20)
#define READAHEAD_IDLE_MS     2000

static _Atomic int64_t readahead_bytes = (int64_t)4 << 20; /* a chunk */

void tl_log_readahead_bytes_set(int64_t bytes)
{
	atomic_store(&readahead_bytes, bytes);
}

/* Bytes held by cold reads (chunks and reads being sent), all logs of the process: past
 * the limit a read keeps its file range, so many consumers far behind cannot pin
 * unbounded memory (sendfile's ranges hold none). */
static _Atomic int64_t direct_read_held;
static _Atomic int64_t direct_read_held_max = (int64_t)256 << 20;

void tl_log_direct_read_limit_set(int64_t bytes)
{
	atomic_store(&direct_read_held_max, bytes);
}

/* A cold read's buffer: this header in its first DIO_ALIGN bytes, the bytes after. Its
 * references are taken and dropped on the log's thread only (as the read cache's). */
struct direct_buf_head {
	int64_t size;
	int32_t refs;
};

static uint8_t *direct_buf_new(int64_t bytes)
{
	int64_t size = DIO_ALIGN + bytes;
	if (atomic_fetch_add(&direct_read_held, size) + size > atomic_load(&direct_read_held_max)) {
		atomic_fetch_sub(&direct_read_held, size);
		return NULL;
	}
	uint8_t *base = aligned_alloc(DIO_ALIGN, (size_t)size);
	if (!base) {
		atomic_fetch_sub(&direct_read_held, size);
		return NULL;
	}
	struct direct_buf_head head = {.size = size, .refs = 1};
	memcpy(base, &head, sizeof(head));
	return base;
}

static void direct_buf_put(void *base)
{
	struct direct_buf_head *head = base;
	TL_ASSERT(head->refs > 0);
	if (--head->refs > 0)
		return;
	atomic_fetch_sub(&direct_read_held, head->size);
	free(base);
}

static void direct_buf_get(uint8_t *base)
{
	((struct direct_buf_head *)(void *)base)->refs++;
}

/* The segment's O_DIRECT read descriptor: the same inode as segment->fd (its name may
 * since belong to a swapped-in file), opened again. -1 when that fails. */
static int dio_read_fd(struct tl_log_segment *segment)
{
	if (segment->dio_read_fd == -1) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", segment->fd);
		segment->dio_read_fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	}
	return segment->dio_read_fd;
}

/* Turns @out, a file range of @log, into memory with one synchronous pread; false (out
 * unchanged) when it cannot. */
static bool direct_read(struct tl_log *log, struct tl_log_read *out)
{
	struct tl_log_segment *segment = out->segment;
	if (out->bytes > DIRECT_READ_BYTES_MAX || !segment || dio_read_fd(segment) == -1)
		return false;
	int64_t start = out->position & ~(int64_t)(DIO_ALIGN - 1);
	int64_t end = (out->position + out->bytes + DIO_ALIGN - 1) & ~(int64_t)(DIO_ALIGN - 1);
	uint8_t *base = direct_buf_new(end - start);
	if (!base)
		return false;
	uint8_t *buf = base + DIO_ALIGN;
	int64_t need = out->position + out->bytes - start;
	int64_t got = 0;
	while (got < need) {
		ssize_t n = pread(segment->dio_read_fd, buf + got, (size_t)(end - start - got),
				  (off_t)(start + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
		if (got % DIO_ALIGN)
			break; /* end of file */
	}
	if (got < need) {
		direct_buf_put(base);
		return false;
	}
	out->release(out->ref); /* the segment: the bytes are ours now */
	out->segment = NULL;
	out->fd = -1;
	out->data = buf + (out->position - start);
	out->release = direct_buf_put;
	out->ref = base;
	log->cache_stats.direct_reads++;
	log->cache_stats.direct_read_bytes += (uint64_t)out->bytes;
	return true;
}

/* Frees @ra's chunk, or marks it for freeing when its read completes. */
static void readahead_drop(struct readahead *ra)
{
	if (!ra->segment)
		return;
	if (ra->in_flight) {
		ra->stale = true;
		return;
	}
	direct_buf_put(ra->base);
	segment_put(ra->segment);
	ra->segment = NULL;
	ra->base = NULL;
	ra->ready = ra->stale = ra->next_issued = false;
}

static void readahead_clear(struct tl_log *log)
{
	for (int i = 0; i < READAHEAD_SLOTS; i++)
		readahead_drop(&log->readahead[i]);
}

/* Runs the ring until no chunk read of @log is in flight (before the log is freed);
 * their completions free them without waking anyone. */
static void readahead_drain(struct tl_log *log)
{
	readahead_clear(log);
	for (int i = 0; i < READAHEAD_SLOTS; i++) {
		while (log->readahead[i].in_flight) {
			tl_ring_submit(log->ring);
			tl_ring_wait(log->ring);
		}
	}
	readahead_clear(log);
}

static void readahead_done(struct tl_ring_op *op)
{
	struct readahead *ra = op->ctx;
	struct tl_log *log = ra->log;
	ra->in_flight = false;
	if (ra->stale) {
		readahead_drop(ra);
		return;
	}
	if (op->res < ra->valid) {
		if (!log->readahead_off)
			tl_warn("log: read-ahead failed, cold reads are synchronous from now on "
				"dir=%s position=%" PRId64 " error=\"%s\"",
				log->dir, ra->start,
				op->res < 0 ? strerror((int)-op->res) : "short read");
		log->readahead_off = true;
		readahead_drop(ra);
	} else {
		ra->ready = true;
		log->cache_stats.direct_reads++;
		log->cache_stats.direct_read_bytes += (uint64_t)ra->valid;
	}
	if (log->listener) /* fetches parked on this read retry */
		log->listener(log->listener_ctx, log);
}

/* Sends the read of the chunk of @segment from @start (a DIO_ALIGN multiple), at least
 * @want bytes when the segment has them, in a slot other than @keep. False when nothing
 * was sent: the segment ends there, no slot is free, or no memory within the limit. */
static bool readahead_issue(struct tl_log *log, struct tl_log_segment *segment, int64_t start,
			    int64_t want, const struct readahead *keep)
{
	int64_t valid =
		TL_MIN(segment->bytes_written - start, TL_MAX(want, atomic_load(&readahead_bytes)));
	if (valid <= 0 || valid > DIRECT_READ_BYTES_MAX || dio_read_fd(segment) == -1)
		return false;
	/* A free slot, else the one served from longest ago (not in flight). */
	struct readahead *ra = NULL;
	for (int i = 0; i < READAHEAD_SLOTS; i++) {
		struct readahead *r = &log->readahead[i];
		if (!r->segment) {
			ra = r;
			break;
		}
		if (r != keep && !r->in_flight && (!ra || r->used_ms < ra->used_ms))
			ra = r;
	}
	if (!ra)
		return false;
	readahead_drop(ra);
	int64_t bytes = (valid + DIO_ALIGN - 1) & ~(int64_t)(DIO_ALIGN - 1);
	uint8_t *base = direct_buf_new(bytes);
	if (!base)
		return false;
	segment->refs++;
	*ra = (struct readahead){.log = log,
				 .segment = segment,
				 .base = base,
				 .start = start,
				 .valid = valid,
				 .used_ms = tl_mono_ms(),
				 .in_flight = true};
	ra->op.done = readahead_done;
	ra->op.ctx = ra;
	tl_ring_read(log->ring, &ra->op, segment->dio_read_fd, base + DIO_ALIGN, (uint32_t)bytes,
		     start);
	return true;
}

/* The header of the batch at @position when the header lies in @ra's chunk. */
static bool chunk_header(const struct readahead *ra, int64_t position, struct tl_batch_header *h)
{
	return position >= ra->start && position + TL_BATCH_HEADER_BYTES <= ra->start + ra->valid &&
	       tl_batch_header_decode(ra->base + DIO_ALIGN + (position - ra->start),
				      TL_BATCH_HEADER_BYTES, h) == TL_OK &&
	       h->batch_length >= TL_BATCH_HEADER_BYTES - TL_BATCH_LOG_OVERHEAD;
}

/* The header of the batch at @position when the whole batch lies in @ra's chunk. */
static bool chunk_batch(const struct readahead *ra, int64_t position, struct tl_batch_header *h)
{
	return chunk_header(ra, position, h) && position + batch_bytes(h) <= ra->start + ra->valid;
}

/* Points @out (empty) at [@position, @end) of @ra's chunk, the batches from
 * @first_offset to before @next_offset; sends the next chunk's read the first time the
 * chunk serves. */
static void readahead_serve(struct tl_log *log, struct readahead *ra, struct tl_log_read *out,
			    int64_t position, int64_t end, int64_t first_offset,
			    int64_t next_offset)
{
	ra->used_ms = tl_mono_ms();
	direct_buf_get(ra->base);
	out->data = ra->base + DIO_ALIGN + (position - ra->start);
	out->release = direct_buf_put;
	out->ref = ra->base;
	out->position = position;
	out->bytes = end - position;
	out->first_offset = first_offset;
	out->next_offset = TL_MAX(next_offset, first_offset);
	log->cache_stats.readahead_hits++;
	if (!ra->next_issued) {
		/* The next chunk starts at the first batch this one holds only part of. */
		int64_t next = end;
		struct tl_batch_header h;
		while (chunk_batch(ra, next, &h))
			next += batch_bytes(&h);
		ra->next_issued = true;
		if (next < ra->segment->bytes_written) /* else the segment ends with it */
			readahead_issue(log, ra->segment, next & ~(int64_t)(DIO_ALIGN - 1), 0, ra);
	}
}

/* The chunk of @segment that holds @position: one read that holds the whole batch
 * there, else one being read, else one read that holds only its start (of equals, the
 * one reaching furthest); NULL if none. */
static struct readahead *readahead_at(struct tl_log *log, const struct tl_log_segment *segment,
				      int64_t position)
{
	struct readahead *best = NULL;
	int best_rank = -1;
	for (int i = 0; i < READAHEAD_SLOTS; i++) {
		struct readahead *ra = &log->readahead[i];
		if (ra->segment != segment || ra->stale || position < ra->start ||
		    position >= ra->start + ra->valid)
			continue;
		struct tl_batch_header h;
		int rank = !ra->ready ? 1 : chunk_batch(ra, position, &h) ? 2 : 0;
		if (rank > best_rank ||
		    (rank == best_rank && ra->start + ra->valid > best->start + best->valid)) {
			best = ra;
			best_rank = rank;
		}
	}
	return best;
}

/* Answers a read of a direct log from the read-ahead without touching the file:
 * @offset's batch and the range's end are found by walking the batch headers in
 * chunks' memory (tl_log_read preads them through the page cache, which a direct log
 * never fills: a synchronous disk read or two on the event loop for every fetch, most
 * of a cold fetch's time). With @may_wait, when the walk needs a chunk not read yet,
 * sends its read (or finds it in flight) and leaves @out empty (pending). Same limits as
 * tl_log_read (@max_offset, the written end, @max_bytes with KIP-74's @min_one), cut at
 * the chunk's end. False when it cannot answer (tl_log_read then). */
static bool readahead_lookup(struct tl_log *log, int64_t offset, int64_t max_offset,
			     int32_t max_bytes, bool min_one, bool may_wait,
			     struct tl_log_read *out)
{
	if (log->readahead_off || log->segment_count == 0 || offset < tl_log_start_offset(log) ||
	    offset > log->end_offset)
		return false;
	struct tl_log_segment *segment;
	int64_t position;
	if (!read_start(log, offset, &max_offset, &segment, &position))
		return false;
	struct tl_batch_header h;
	struct readahead *ra;
	int64_t want = 0; /* where a chunk to read must reach, beyond max_bytes */
	/* Walk to the batch holding offset, chunk by chunk. */
	for (;;) {
		if (position >= segment->bytes_written)
			return false;
		ra = readahead_at(log, segment, position);
		if (!ra || !ra->ready)
			break;
		if (!chunk_batch(ra, position, &h)) {
			/* The batch there goes past every chunk read: a chunk from its block,
			 * long enough for it when its header says how long it is. */
			if (chunk_header(ra, position, &h))
				want = position + batch_bytes(&h);
			ra = NULL;
			break;
		}
		if (tl_batch_last_offset(&h) >= offset)
			break;
		position += batch_bytes(&h);
	}
	if (!ra || !ra->ready) {
		if (!may_wait)
			return false;
		int64_t start = position & ~(int64_t)(DIO_ALIGN - 1);
		want = TL_MAX(want, position + max_bytes) - start;
		if (!ra && !readahead_issue(log, segment, start, want, NULL))
			return false;
		log->cache_stats.readahead_waits++;
		return true;
	}
	if (h.base_offset >= max_offset)
		return false; /* nothing below the limit: tl_log_read answers empty */
	if (batch_is_placeholder(&h))
		return false; /* tl_log_read skips placeholders, from the file */
	int64_t first_offset = h.base_offset, next_offset = first_offset;
	int64_t p = position;
	while (chunk_batch(ra, p, &h)) {
		if (tl_batch_last_offset(&h) >= max_offset) {
			next_offset = TL_MIN(h.base_offset, max_offset);
			break;
		}
		if (p + batch_bytes(&h) - position > max_bytes && !(p == position && min_one)) {
			next_offset = h.base_offset;
			break;
		}
		p += batch_bytes(&h);
		next_offset = tl_batch_last_offset(&h) + 1;
	}
	if (p == position)
		return false; /* the first batch over max_bytes without min_one: empty */
	readahead_serve(log, ra, out, position, p, first_offset, next_offset);
	return true;
}

/* At each tick: frees chunks idle for READAHEAD_IDLE_MS or of segments no longer in
 * the log (deleted by retention, replaced by the cleaner). */
static void readahead_expire(struct tl_log *log)
{
	int64_t now = tl_mono_ms();
	for (int i = 0; i < READAHEAD_SLOTS; i++) {
		struct readahead *ra = &log->readahead[i];
		if (!ra->segment || ra->in_flight)
			continue;
		bool held = false;
		for (uint32_t j = 0; j < log->segment_count && !held; j++)
			held = log->segments[j] == ra->segment;
		if (!held || now - ra->used_ms > READAHEAD_IDLE_MS)
			readahead_drop(ra);
	}
}

tl_err tl_log_read_cached(struct tl_log *log, int64_t offset, int64_t max_offset, int32_t max_bytes,
			  bool min_one, bool may_wait, struct tl_log_read *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!(log->failed && log->segment_count == 0) && offset >= tl_log_start_offset(log) &&
	    offset < TL_MIN(max_offset, log->written_end_offset) &&
	    cache_read(log, offset, TL_MIN(max_offset, log->written_end_offset), max_bytes, min_one,
		       out))
		return TL_OK;
	if (log->direct && !log->failed &&
	    readahead_lookup(log, offset, max_offset, max_bytes, min_one, may_wait, out)) {
		if (out->bytes > 0 && cache_chunk_bytes(log) > 0)
			log->cache_stats.misses++;
		return TL_OK;
	}
	tl_err err = tl_log_read(log, offset, max_offset, max_bytes, min_one, out);
	if (err != TL_OK || out->bytes == 0)
		return err;
	if (log->direct)
		direct_read(log, out);
	if (cache_chunk_bytes(log) > 0)
		log->cache_stats.misses++;
	return err;
}

void tl_log_cache_stats(const struct tl_log *log, struct tl_log_cache_stats *out)
{
	*out = log->cache_stats;
}

/* ---- reading ---- */

/* The file range of whole batches in @segment from @position that end below @max_offset
 * and, unless only the first fits and @min_one, within @max_bytes. */
static int64_t read_extent(const struct tl_log_segment *segment, int64_t position,
			   int64_t max_offset, int64_t max_bytes, bool min_one,
			   int64_t *next_offset_out)
{
	int64_t limit = segment->bytes_written;
	int64_t limit_next = segment->next_offset_written; /* the offset after limit */
	if (max_offset < segment->next_offset_written) {
		/* Stop before the batch holding max_offset (read_committed). */
		int64_t p = TL_MAX(index_lookup(segment, max_offset), position);
		struct tl_batch_header h;
		limit_next = max_offset;
		while (p < limit && header_read(segment, p, limit, &h) == TL_OK) {
			if (tl_batch_last_offset(&h) >= max_offset) {
				limit_next = TL_MIN(h.base_offset, max_offset);
				break;
			}
			p += batch_bytes(&h);
		}
		limit = p;
	}
	*next_offset_out = limit_next;
	if (limit - position <= max_bytes)
		return limit - position;
	/* Cut at a batch boundary: start from the last indexed batch inside the budget. */
	int64_t end = position + max_bytes;
	int64_t p = position;
	for (uint32_t lo = 0, hi = segment->index_count; hi > lo;) {
		uint32_t mid = lo + (hi - lo) / 2;
		if ((int64_t)index_pos(segment, mid) <= end) {
			p = TL_MAX(p, (int64_t)index_pos(segment, mid));
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	struct tl_batch_header h;
	while (p < limit && header_read(segment, p, limit, &h) == TL_OK) {
		if (p + batch_bytes(&h) > end) {
			*next_offset_out = h.base_offset; /* the first batch left out */
			break;
		}
		p += batch_bytes(&h);
	}
	if (p == position && min_one && header_read(segment, p, limit, &h) == TL_OK) {
		p += batch_bytes(&h);
		*next_offset_out = tl_batch_last_offset(&h) + 1;
	}
	return p - position;
}

/* Moves a read that starts at the placeholder @h (at *@position of *@segment) past the
 * placeholders that follow it, into later segments too, when a batch with records (or
 * a marker) comes after them below @max_offset, within @max_bytes of them or
 * PLACEHOLDERS_BYTES (a consumer's fetch size may be smaller than a run of them;
 * the bound keeps the header reads of one read to a few thousand). A fetch
 * answered with placeholders alone holds no record, and librdkafka then takes the
 * partition for one whose next record is too large; Kafka's cleaner leaves no such
 * batches, and its read goes on to the next segment when one yields nothing. Leaves
 * the read where it is otherwise: a follower at the end still gets them and reaches
 * the log end, and a consumer that asks for more bytes gets further. */
static void placeholders_skip(const struct tl_log *log, struct tl_log_segment **segment,
			      int64_t *position, struct tl_batch_header *h, int64_t max_offset,
			      int64_t max_bytes)
{
	struct tl_log_segment *at = *segment;
	uint32_t s = segment_index_for(log, at->base_offset);
	TL_ASSERT(log->segments[s] == at);
	int64_t p = *position, skipped = 0;
	int64_t skip_max = TL_MAX(max_bytes, (int64_t)PLACEHOLDERS_BYTES);
	struct tl_batch_header next = *h;
	while (batch_is_placeholder(&next)) {
		skipped += batch_bytes(&next);
		if (skipped > skip_max || tl_batch_last_offset(&next) + 1 >= max_offset)
			return;
		p += batch_bytes(&next);
		if (p >= at->bytes_written) {
			/* Only from a sealed segment, whole: the next starts where it ends. */
			if (at->bytes_written != at->bytes || s + 1 >= log->segment_count)
				return;
			at = log->segments[++s];
			p = 0;
			if (at->bytes_written == 0)
				return;
		}
		if (header_read(at, p, at->bytes_written, &next) != TL_OK)
			return;
	}
	*segment = at;
	*position = p;
	*h = next;
}

tl_err tl_log_read(struct tl_log *log, int64_t offset, int64_t max_offset, int32_t max_bytes,
		   bool min_one, struct tl_log_read *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (log->failed && log->segment_count == 0)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	if (offset < tl_log_start_offset(log) || offset > log->end_offset)
		return TL_ERR_OFFSET_OUT_OF_RANGE;
	struct tl_log_segment *segment;
	int64_t position;
	if (!read_start(log, offset, &max_offset, &segment, &position))
		return TL_OK;
	struct tl_batch_header h;
	for (;;) {
		if (position >= segment->bytes_written)
			return TL_OK;
		tl_err err = header_read(segment, position, segment->bytes_written, &h);
		if (err != TL_OK) {
			tl_warn("log: unreadable batch header dir=%s segment=%" PRId64
				" position=%" PRId64,
				log->dir, segment->base_offset, position);
			return TL_ERR_KAFKA_STORAGE_ERROR;
		}
		if (tl_batch_last_offset(&h) >= offset)
			break;
		position += batch_bytes(&h);
	}
	if (batch_is_placeholder(&h))
		placeholders_skip(log, &segment, &position, &h, max_offset, max_bytes);
	if (h.base_offset >= max_offset)
		return TL_OK;
	int64_t next_offset;
	int64_t bytes =
		read_extent(segment, position, max_offset, max_bytes, min_one, &next_offset);
	if (bytes == 0)
		return TL_OK;
	segment->refs++;
	out->fd = segment->fd;
	out->release = tl_log_read_release;
	out->ref = segment;
	out->position = position;
	out->bytes = bytes;
	out->first_offset = h.base_offset;
	out->next_offset = TL_MAX(next_offset, h.base_offset);
	out->segment = segment;
	return TL_OK;
}

int64_t tl_log_start_offset(const struct tl_log *log)
{
	/* No segment only on a log FAILED in tl_log_truncate_fully(). */
	if (log->segment_count == 0)
		return log->end_offset;
	return TL_MAX(log->segments[0]->base_offset, log->start_floor);
}

int64_t tl_log_end_offset(const struct tl_log *log)
{
	return log->end_offset;
}

int64_t tl_log_high_watermark(const struct tl_log *log)
{
	return log->high_watermark;
}

int64_t tl_log_size_bytes(const struct tl_log *log)
{
	int64_t total = 0;
	for (uint32_t i = 0; i < log->segment_count; i++)
		total += log->segments[i]->bytes;
	return total;
}

tl_err tl_log_offset_for_timestamp(struct tl_log *log, int64_t timestamp_ms, int64_t *offset_out,
				   int64_t *timestamp_out)
{
	for (uint32_t s = 0; s < log->segment_count; s++) {
		struct tl_log_segment *segment = log->segments[s];
		if (segment->max_timestamp < timestamp_ms)
			continue;
		/* Every batch up to a time index entry below the target is too old. */
		int64_t from = segment->base_offset;
		for (uint32_t i = 0; i < segment->timeindex_count; i++) {
			if (timeindex_ts(segment, i) >= timestamp_ms)
				break;
			from = segment->base_offset + timeindex_rel(segment, i);
		}
		int64_t position = index_lookup(segment, from);
		struct tl_batch_header h;
		while (position < segment->bytes_durable &&
		       header_read(segment, position, segment->bytes_durable, &h) == TL_OK) {
			/* A batch compaction emptied keeps its maxTimestamp, and no record. */
			if (h.max_timestamp >= timestamp_ms && h.records_count > 0) {
				*offset_out = h.base_offset;
				*timestamp_out = h.max_timestamp;
				return TL_OK;
			}
			position += batch_bytes(&h);
		}
	}
	return TL_ERR_NOT_FOUND;
}

int64_t tl_log_max_timestamp(const struct tl_log *log)
{
	int64_t max = -1;
	for (uint32_t s = 0; s < log->segment_count; s++)
		max = TL_MAX(max, log->segments[s]->max_timestamp);
	return max;
}

/* ---- transactions ---- */

int64_t tl_log_last_stable_offset(struct tl_log *log)
{
	if (log->first_open_txn == -2)
		log->first_open_txn = tl_pstate_first_open_txn(&log->pstate);
	int64_t lso = log->high_watermark;
	if (log->first_open_txn >= 0)
		lso = TL_MIN(lso, log->first_open_txn);
	for (uint32_t i = 0; i < log->closing_count; i++)
		lso = TL_MIN(lso, log->closing[i].first_offset);
	return lso;
}

uint32_t tl_log_aborted_txns(const struct tl_log *log, int64_t from, int64_t to,
			     struct tl_log_aborted_txn *out, uint32_t max)
{
	uint32_t lo = 0, hi = log->aborted_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (log->aborted[mid].last_offset < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint32_t count = 0;
	for (uint32_t i = lo; i < log->aborted_count; i++) {
		const struct aborted_txn *a = &log->aborted[i];
		if (a->first_offset >= to)
			continue;
		if (count < max)
			out[count] = (struct tl_log_aborted_txn){
				.producer_id = a->producer_id,
				.first_offset = a->first_offset,
				.last_offset = a->last_offset,
			};
		count++;
	}
	return count;
}

uint32_t tl_log_producers(const struct tl_log *log, struct tl_log_producer *out, uint32_t max)
{
	uint32_t count = 0;
	for (uint32_t b = 0; b < log->pstate.bucket_count; b++)
		for (const struct tl_pstate_entry *e = log->pstate.buckets[b]; e; e = e->next) {
			if (count < max)
				out[count] = (struct tl_log_producer){
					.producer_id = e->producer_id,
					.producer_epoch = e->epoch,
					.last_sequence =
						e->batch_count
							? e->batches[e->batch_count - 1].last_seq
							: -1,
					.last_timestamp = e->last_timestamp,
					.coordinator_epoch = e->coordinator_epoch,
					.txn_first_offset = e->txn_first_offset,
				};
			count++;
		}
	return count;
}

/* ---- maintenance ---- */

static void cleaner_tick(struct tl_log *log, int64_t now_ms);

static bool segment_expired(const struct tl_log *log, const struct tl_log_segment *segment,
			    int64_t total_bytes, int64_t now_ms)
{
	if (!log->config.cleanup_delete)
		return false; /* cleanup.policy=compact alone: the cleaner bounds the size */
	if (log->config.retention_bytes >= 0 &&
	    total_bytes - segment->bytes >= log->config.retention_bytes)
		return true;
	if (log->config.retention_ms >= 0) {
		int64_t newest = segment->max_timestamp;
		if (newest < 0) {
			struct stat st;
			newest =
				fstat(segment->fd, &st) == 0 ? (int64_t)st.st_mtime * 1000 : now_ms;
		}
		if (newest < now_ms - log->config.retention_ms)
			return true;
	}
	return false;
}

/* Whether the non-empty @active segment rolls at this tick: it is older than
 * log.roll.ms, or on a compacted log than max.compaction.lag.ms (Kafka's maxSegmentMs,
 * KIP-354: the cleaner takes only sealed segments, so an active one would hold its dirt
 * past the promised lag); or retention would delete it whole (Kafka's deletableSegments
 * takes a non-empty active segment once all of it is below the high watermark, and
 * rolls first), the deletion loop below then taking it. */
static bool active_roll_due(const struct tl_log *log, const struct tl_log_segment *active,
			    int64_t total_bytes, int64_t now_ms, bool retention_due)
{
	if (active->bytes == 0)
		return false;
	int64_t roll_ms = log->config.segment_ms;
	int64_t lag_ms = log->config.max_compaction_lag_ms;
	if (log->config.cleanup_compact && lag_ms >= 0 && lag_ms < INT64_MAX &&
	    (roll_ms < 0 || lag_ms < roll_ms))
		roll_ms = lag_ms;
	if (roll_ms >= 0 && active->first_append_ms >= 0 &&
	    now_ms - active->first_append_ms > roll_ms)
		return true;
	return retention_due && !log->cleaner_job && active->bytes_durable == active->bytes &&
	       active->next_offset <= log->high_watermark &&
	       segment_expired(log, active, total_bytes, now_ms);
}

int tl_log_tick(struct tl_log *log, int64_t now_ms)
{
	if (log->failed)
		return 0;
	readahead_expire(log);
	/* As Kafka, every producer.id.expiration.check.interval.ms, not each tick: a
	 * producer writing old CreateTime timestamps beside a current one would lose its
	 * dedupe state within seconds of a write. */
	if (now_ms >= log->next_pstate_expire_ms) {
		if (log->next_pstate_expire_ms > 0)
			pstate_expire(log, now_ms);
		log->next_pstate_expire_ms =
			now_ms + log->config.producer_id_expiration_check_interval_ms;
	}
	/* As Kafka, retention.ms and retention.bytes every log.retention.check.interval.ms
	 * (the first check one interval after open), not at each tick. */
	bool retention_due = true;
	int64_t interval = log->config.retention_check_interval_ms;
	if (interval > 0) {
		retention_due = log->next_retention_ms > 0 && now_ms >= log->next_retention_ms;
		if (log->next_retention_ms == 0 || retention_due)
			log->next_retention_ms = now_ms + interval;
	}
	/* Read only by the retention checks: not summed over the segments at every tick. */
	int64_t total = retention_due ? tl_log_size_bytes(log) : 0;
	if (active_roll_due(log, active_segment(log), total, now_ms, retention_due) &&
	    segment_roll(log) != TL_OK) {
		log_fail(log);
		return 0;
	}
	int deleted = 0;
	/* Not while a pass is in flight (Kafka's retention skips a log being cleaned too):
	 * deleting the first segments of a group the pass rewrote would discard the group,
	 * and with it the pass's work on the dirty records it holds (see cleaner_swap). */
	while (log->segment_count > 1 && !log->cleaner_job) {
		struct tl_log_segment *segment = log->segments[0];
		/* A sealed segment with writes still in flight stays until they are durable. */
		bool deleted_records = log->segments[1]->base_offset <= log->start_floor;
		if (segment->bytes_durable != segment->bytes ||
		    (!deleted_records &&
		     !(retention_due && segment_expired(log, segment, total, now_ms))))
			break;
		char name[NAME_BYTES];
		segment_name(name, segment->base_offset, ".log");
		tl_info("log: retention deletes segment dir=%s segment=%s bytes=%" PRId64, log->dir,
			name, segment->bytes);
		total -= segment->bytes;
		segment_delete(log, segment);
		memmove(log->segments, log->segments + 1,
			(log->segment_count - 1) * sizeof(*log->segments));
		log->segment_count--;
		segment_put(segment); /* a read being sent keeps the file open */
		deleted++;
	}
	if (deleted > 0) {
		int64_t start = tl_log_start_offset(log);
		uint32_t drop = 0;
		while (drop < log->aborted_count && log->aborted[drop].last_offset < start)
			drop++;
		if (drop > 0) {
			memmove(log->aborted, log->aborted + drop,
				(log->aborted_count - drop) * sizeof(*log->aborted));
			log->aborted_count -= drop;
		}
		snapshots_prune(log);
	}
	cleaner_tick(log, now_ms);
	return deleted;
}

/* ---- compaction ----
 * A pass (see cleaner.h for what it keeps) runs in a cleaner thread on sealed, durable
 * segments it reads through dup'ed descriptors; the log thread keeps appending, rolling
 * and serving reads. When the thread is done, cleaner_tick() swaps each rewritten group
 * in on the log thread, in this order (the kill -9 points of docs/design.md):
 *   0. the thread wrote `<base>.<end>.cleaned` and fdatasync'ed it
 *   1. rename it to `<base>.<end>.swap`, fsync the directory     <- the commit point
 *   2. unlink the group's other segments and all its index files, fsync the directory
 *   3. rename the swap over `<base>.log`, fsync the directory
 *   4. rescan the new file, write its indexes, replace the segments in memory
 *   5. write CLEANER_CHECKPOINT (the next pass's first dirty offset)
 * Each step is done for every group of the pass before the next one starts, so a pass
 * costs the log thread three directory fsyncs, a rescan of the (small) new files and
 * their index writes, whatever the number of groups.
 * Open (cleaner_recover) deletes every `.cleaned` file (before 1 the old segments are
 * whole) and finishes every `.swap` file: it redoes 2 and 3 for the segments whose
 * base lies in [base, end), which is idempotent. A lost checkpoint only makes the next
 * pass read more. Retention waits while a pass is in flight and truncation cancels it,
 * so a group whose segments changed meanwhile (or whose rename to .swap fails) is rare;
 * it is discarded before 1 with every group after it, and the checkpoint stops at its
 * base. Holes: offsets the cleaner removed are skipped by reads (the batch
 * holding an offset or the first after it is returned); every output segment keeps its
 * first and last batch, so segment bases and ends are unchanged. */

static atomic_int cleaners_running; /* passes in flight, over all logs */
static int cleaner_fault_point;
static bool cleaner_fault_exit;

void tl_log_cleaner_fault_set(int point, bool exit_process)
{
	cleaner_fault_point = point;
	cleaner_fault_exit = exit_process;
}

/* True when the test fault switch stops the swap at @point (the log is then FAILED). */
static bool cleaner_fault(struct tl_log *log, int point)
{
	if (cleaner_fault_point != point)
		return false;
	if (cleaner_fault_exit)
		_exit(86);
	snprintf(log->last_error, sizeof(log->last_error), "cleaner fault point %d", point);
	log_fail(log);
	return true;
}

/* A `<base>.<end>.swap` file found at open; base first, so that cmp_asc sorts them. */
struct cleaner_swap_file {
	int64_t base;
	int64_t end;
};

/* Finishes or discards the swaps a crash interrupted; see the section comment. */
static tl_err cleaner_recover(struct tl_log *log)
{
	DIR *d = dir_open(log->dir_fd);
	if (!d) {
		set_error(log, "opendir", log->dir, errno);
		return TL_ERR_IO;
	}
	/* Every one of them: a pass may swap in any number of groups, and a .swap left
	 * behind would be applied by a later open to segments later passes rewrote. */
	struct cleaner_swap_file *swaps = NULL;
	uint32_t swap_count = 0, swap_cap = 0;
	bool removed = false;
	tl_err err = TL_OK;
	struct dirent *de;
	while ((de = readdir(d))) {
		int64_t base, end;
		if (tl_cleaner_file_parse(de->d_name, "cleaned", &base, &end)) {
			unlinkat(log->dir_fd, de->d_name, 0);
			removed = true;
		} else if (tl_cleaner_file_parse(de->d_name, "swap", &base, &end)) {
			err = grow((void **)&swaps, &swap_cap, swap_count + 1, sizeof(*swaps));
			if (err != TL_OK)
				break;
			swaps[swap_count++] = (struct cleaner_swap_file){.base = base, .end = end};
		}
	}
	closedir(d);
	if (err != TL_OK || swap_count == 0) {
		free(swaps);
		return err != TL_OK ? err : removed ? sync_dir(log) : TL_OK;
	}
	/* In base order, as the pass wrote them (readdir's order is the filesystem's). */
	qsort(swaps, swap_count, sizeof(*swaps), cmp_asc);
	int64_t *bases;
	uint32_t count;
	err = list_segments(log, &bases, &count);
	if (err != TL_OK) {
		free(swaps);
		return err;
	}
	for (uint32_t i = 0; i < swap_count && err == TL_OK; i++) {
		int64_t base = swaps[i].base, end = swaps[i].end;
		tl_warn("log: finishing an interrupted compaction swap dir=%s base=%" PRId64
			" end=%" PRId64,
			log->dir, base, end);
		for (uint32_t j = 0; j < count; j++)
			if (bases[j] >= base && bases[j] < end)
				segment_unlink(log, bases[j]);
		segment_unlink_indexes(log, base);
		err = sync_dir(log);
		char swap[NAME_BYTES], name[NAME_BYTES];
		tl_cleaner_file_name(swap, sizeof(swap), base, end, "swap");
		segment_name(name, base, ".log");
		if (err == TL_OK && renameat(log->dir_fd, swap, log->dir_fd, name) == -1) {
			set_error(log, "rename", swap, errno);
			err = TL_ERR_IO;
		}
		if (err == TL_OK)
			err = sync_dir(log);
	}
	free(bases);
	free(swaps);
	return err;
}

/* Writes @offset to CLEANER_CHECKPOINT durably (file and directory). */
static tl_err cleaner_checkpoint_write(struct tl_log *log, int64_t offset)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%" PRId64 "\n", offset);
	tl_err err = file_replace(log, CLEANER_CHECKPOINT, text, (size_t)n, true);
	return err == TL_OK ? sync_dir(log) : err;
}

/* Sets the first dirty offset to @offset, in memory and durably; where the file cannot
 * be written (a full disk), removes it: the log start then, everything dirty once
 * (Kafka resets a checkpoint it cannot use to the log start too). */
static tl_err cleaner_checkpoint_set_lower(struct tl_log *log, int64_t offset)
{
	log->cleaner_first_dirty = offset;
	if (cleaner_checkpoint_write(log, offset) != TL_OK) {
		tl_warn("log: cannot lower the cleaner checkpoint, removing it dir=%s", log->dir);
		log->cleaner_first_dirty = 0;
		if ((unlinkat(log->dir_fd, CLEANER_CHECKPOINT, 0) == -1 && errno != ENOENT) ||
		    sync_dir(log) != TL_OK) {
			set_error(log, "unlink", CLEANER_CHECKPOINT, errno);
			return TL_ERR_IO;
		}
	}
	log->cleaner_stats.first_dirty = log->cleaner_first_dirty;
	return TL_OK;
}

/* A cut to @new_end below the first dirty offset: the records written there next are
 * dirty, so the checkpoint comes down with the log (Kafka's maybeTruncateCheckpoint),
 * durably before anything is appended past @new_end again; left above, the next pass
 * took them for cleaned and they were never compacted. A crash before the write leaves
 * the file above the end: the open lowers it then (cleaner_checkpoint_recover). */
static tl_err cleaner_checkpoint_lower(struct tl_log *log, int64_t new_end)
{
	if (log->cleaner_first_dirty <= new_end)
		return TL_OK;
	return cleaner_checkpoint_set_lower(log, new_end);
}

/* Reads CLEANER_CHECKPOINT ("<offset>\n"); absent or unreadable means the log start.
 * One past the log's end (a crash cut the log, or came between a truncation and its
 * lowering) is lowered in the file too: kept there, it came back as the first dirty
 * offset once the log grew past it again. */
static tl_err cleaner_checkpoint_recover(struct tl_log *log)
{
	log->cleaner_first_dirty = 0;
	log->cleaner_stats.first_dirty = 0;
	int64_t offset;
	if (offset_file_read(log, CLEANER_CHECKPOINT, &offset) != TL_OK)
		return TL_OK; /* absent or unusable: the log start */
	if (offset > log->end_offset)
		return cleaner_checkpoint_set_lower(log, log->end_offset);
	log->cleaner_first_dirty = offset;
	log->cleaner_stats.first_dirty = offset;
	return TL_OK;
}

#define CLEANER_HORIZON_RETRY_MS (10 * 60 * 1000)

static void cleaner_job_free(struct tl_log *log)
{
	struct tl_cleaner_job *job = log->cleaner_job;
	if (!job)
		return;
	for (uint32_t i = 0; i < job->group_count; i++) {
		if (!job->groups[i].written)
			continue;
		char name[NAME_BYTES];
		tl_cleaner_file_name(name, sizeof(name), job->groups[i].base_offset,
				     job->groups[i].end_offset, "cleaned");
		unlinkat(log->dir_fd, name, 0);
	}
	for (uint32_t i = 0; i < job->input_count; i++) {
		close_later(job->inputs[i].fd, false); /* may be the last of a replaced segment */
		job->inputs[i].fd = -1;
	}
	tl_cleaner_job_deinit(job);
	free(job);
	log->cleaner_job = NULL;
	/* Last: a gone input's own descriptor then goes to the closer, which may cut it. */
	for (uint32_t i = 0; i < log->cleaner_held_count; i++)
		segment_put(log->cleaner_held[i]);
	free(log->cleaner_held);
	log->cleaner_held = NULL;
	log->cleaner_held_count = 0;
}

static void cleaner_join(struct tl_log *log)
{
	if (!log->cleaner_threaded)
		return;
	pthread_join(log->cleaner_thread, NULL);
	log->cleaner_threaded = false;
}

/* Stops the pass in flight (at its next batch) and forgets its output. */
static void cleaner_cancel(struct tl_log *log)
{
	if (!log->cleaner_job)
		return;
	atomic_store(&log->cleaner_job->cancel, true);
	cleaner_join(log);
	tl_info("log: compaction pass cancelled dir=%s bytes_read=%" PRId64 " cpu_us=%" PRId64,
		log->dir, log->cleaner_job->bytes_read, log->cleaner_job->cpu_us);
	cleaner_job_free(log);
}

/* How many segments from the first may be cleaned: sealed, durable, below the LSO and the
 * high watermark, and older than min.compaction.lag.ms. */
static uint32_t cleanable_count(struct tl_log *log, int64_t now_ms)
{
	int64_t lso = tl_log_last_stable_offset(log);
	uint32_t n = 0;
	for (; n + 1 < log->segment_count; n++) {
		const struct tl_log_segment *segment = log->segments[n];
		if (segment->bytes_durable != segment->bytes || segment->next_offset > lso ||
		    segment->bytes == 0)
			break;
		if (log->config.min_compaction_lag_ms > 0 &&
		    segment->max_timestamp > now_ms - log->config.min_compaction_lag_ms)
			break;
	}
	return n;
}

/* Whether the first @n segments are dirty enough for a pass. */
enum cleaner_due {
	CLEANER_NOT_DUE = 0,
	CLEANER_DUE_RATIO,   /* min.cleanable.dirty.ratio: spare CPU will do */
	CLEANER_DUE_HORIZON, /* a delete horizon passed: spare CPU will do */
	CLEANER_DUE_MAX_LAG, /* max.compaction.lag.ms passed: a promise to keep */
};

static enum cleaner_due cleaner_is_due(const struct tl_log *log, uint32_t n, int64_t now_ms)
{
	int64_t clean = 0, dirty = 0, oldest_dirty = -1;
	for (uint32_t i = 0; i < n; i++) {
		const struct tl_log_segment *segment = log->segments[i];
		if (segment->next_offset <= log->cleaner_first_dirty) {
			clean += segment->bytes;
			continue;
		}
		dirty += segment->bytes;
		if (oldest_dirty < 0)
			oldest_dirty = segment->max_timestamp;
	}
	if (dirty > 0 && log->config.max_compaction_lag_ms < INT64_MAX && oldest_dirty >= 0 &&
	    oldest_dirty < now_ms - log->config.max_compaction_lag_ms)
		return CLEANER_DUE_MAX_LAG;
	if (dirty > 0 &&
	    (double)dirty / (double)(clean + dirty) >= log->config.min_cleanable_dirty_ratio)
		return CLEANER_DUE_RATIO;
	return now_ms >= log->cleaner_horizon_next ? CLEANER_DUE_HORIZON : CLEANER_NOT_DUE;
}

static int cmp_last(const void *a, const void *b)
{
	const struct tl_cleaner_last *x = a, *y = b;
	return x->last_offset < y->last_offset ? -1 : x->last_offset > y->last_offset ? 1 : 0;
}

/* A job over the first @n segments, owning dups of their descriptors. */
static struct tl_cleaner_job *cleaner_job_create(struct tl_log *log, uint32_t n, int64_t now_ms)
{
	struct tl_cleaner_job *job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	job->dir_fd = dup_cloexec(log->dir_fd);
	job->inputs = calloc(n, sizeof(*job->inputs));
	job->aborted = calloc(log->aborted_count + 1, sizeof(*job->aborted));
	job->lasts = calloc(log->pstate.count + 1, sizeof(*job->lasts));
	bool ok = job->dir_fd >= 0 && job->inputs && job->aborted && job->lasts;
	for (uint32_t i = 0; ok && i < n; i++) {
		const struct tl_log_segment *segment = log->segments[i];
		int fd = dup_cloexec(segment->fd);
		if (fd == -1) {
			ok = false;
			break;
		}
		job->inputs[job->input_count++] = (struct tl_cleaner_input){
			.fd = fd,
			.base_offset = segment->base_offset,
			.bytes = segment->bytes,
			.next_offset = segment->next_offset,
		};
	}
	TL_ASSERT(!log->cleaner_held);
	log->cleaner_held = ok ? calloc(n, sizeof(*log->cleaner_held)) : NULL;
	if (!log->cleaner_held) {
		tl_cleaner_job_deinit(job);
		free(job);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		log->cleaner_held[i] = log->segments[i];
		log->segments[i]->refs++;
	}
	log->cleaner_held_count = n;
	for (uint32_t i = 0; i < log->aborted_count; i++)
		job->aborted[job->aborted_count++] = (struct tl_cleaner_aborted){
			.producer_id = log->aborted[i].producer_id,
			.first_offset = log->aborted[i].first_offset,
			.last_offset = log->aborted[i].last_offset,
		};
	for (uint32_t b = 0; b < log->pstate.bucket_count; b++)
		for (const struct tl_pstate_entry *e = log->pstate.buckets[b]; e; e = e->next)
			if (e->batch_count > 0 && job->last_count < log->pstate.count)
				job->lasts[job->last_count++] = (struct tl_cleaner_last){
					.last_offset = e->batches[e->batch_count - 1].last_offset,
					.producer_id = e->producer_id,
				};
	qsort(job->lasts, job->last_count, sizeof(*job->lasts), cmp_last);
	job->first_dirty = TL_MAX(log->cleaner_first_dirty, log->segments[0]->base_offset);
	job->clean_end = log->segments[n - 1]->next_offset;
	job->segment_bytes_max = log->config.segment_bytes;
	job->dedupe_buffer_bytes = log->config.cleaner_dedupe_buffer_bytes;
	job->io_bytes_per_sec = log->config.cleaner_io_bytes_per_sec;
	job->delete_retention_ms = log->config.delete_retention_ms;
	job->now_ms = now_ms;
	return job;
}

/* Whether the segments group @g was made from are still the log's, sealed and durable;
 * sets *index_out to the first one's index. */
static bool group_is_current(const struct tl_log *log, const struct tl_cleaner_job *job,
			     const struct tl_cleaner_group *g, uint32_t *index_out)
{
	uint32_t k = segment_index_for(log, g->base_offset);
	if (k + g->count >= log->segment_count) /* never the active segment */
		return false;
	for (uint32_t i = 0; i < g->count; i++) {
		const struct tl_log_segment *segment = log->segments[k + i];
		const struct tl_cleaner_input *in = &job->inputs[g->first + i];
		if (segment->base_offset != in->base_offset || segment->bytes != in->bytes ||
		    segment->bytes_durable != segment->bytes)
			return false;
	}
	*index_out = k;
	return true;
}

/* Step 4 for group @g, whose file is now `<base>.log`: opens and rescans it, writes its
 * indexes (like a sealed segment's, without fsync: recovery rebuilds a torn one) and
 * replaces the group's segments in memory. */
static tl_err group_install(struct tl_log *log, const struct tl_cleaner_group *g)
{
	char name[NAME_BYTES];
	segment_name(name, g->base_offset, ".log");
	uint32_t k = segment_index_for(log, g->base_offset);
	TL_ASSERT(log->segments[k]->base_offset == g->base_offset);
	TL_ASSERT(k + g->count < log->segment_count);
	int fd = openat(log->dir_fd, name, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd == -1 || fstat(fd, &st) == -1) {
		set_error(log, "open", name, errno);
		if (fd != -1)
			close(fd);
		return TL_ERR_IO;
	}
	struct tl_log_segment *segment = segment_new(g->base_offset, fd);
	if (!segment) {
		close(fd);
		return TL_ERR_NOMEM;
	}
	bool cut = false;
	tl_err err = segment_recover(log, segment, st.st_size, true, &cut);
	if (err == TL_OK && (cut || segment->next_offset != g->end_offset)) {
		tl_crit("log: cleaned segment does not cover its range dir=%s segment=%s "
			"next=%" PRId64 " end=%" PRId64,
			log->dir, name, segment->next_offset, g->end_offset);
		err = TL_ERR_CORRUPT;
	}
	if (err != TL_OK) {
		segment_put(segment);
		return err;
	}
	if (segment_write_indexes(log, segment, false) != TL_OK)
		tl_warn("log: index write failed, recovery will rebuild it dir=%s detail=\"%s\"",
			log->dir, log->last_error);
	segment->next_offset_durable = segment->next_offset;
	segment->next_offset_written = segment->next_offset;
	segment->bytes_written = segment->bytes;
	segment->indexes_on_disk = true;
	segment->txns_trusted = true;
	for (uint32_t i = 0; i < g->count; i++) {
		log->segments[k + i]->gone = true; /* unlinked, the first renamed over */
		segment_put(log->segments[k + i]); /* reads being sent keep the old files */
	}
	log->segments[k] = segment;
	memmove(log->segments + k + 1, log->segments + k + g->count,
		(log->segment_count - k - g->count) * sizeof(*log->segments));
	log->segment_count -= g->count - 1;
	return TL_OK;
}

/* Forgets the aborted transactions whose ABORT marker the pass removed from @g (now on
 * disk): group_install() then writes the group's .txnindex without them, and
 * read_committed fetches stop listing them (see tl_cleaner_job.aborts_removed). */
static void aborted_drop_removed(struct tl_log *log, const struct tl_cleaner_job *job,
				 const struct tl_cleaner_group *g)
{
	uint32_t kept = 0, r = 0;
	for (uint32_t i = 0; i < log->aborted_count; i++) {
		int64_t marker = log->aborted[i].last_offset;
		while (r < job->aborts_removed_count && job->aborts_removed[r] < marker)
			r++;
		bool removed = r < job->aborts_removed_count && job->aborts_removed[r] == marker &&
			       marker >= g->base_offset && marker < g->end_offset;
		if (!removed)
			log->aborted[kept++] = log->aborted[i];
	}
	log->aborted_count = kept;
}

/* Swaps every rewritten group in, each step for all groups at once so that a pass costs
 * three directory fsyncs (steps 1-4 of the section comment). A group whose segments
 * changed meanwhile, or whose rename fails, is discarded before step 1, and every group
 * after it with it: a later group may have dropped a tombstone, or a transaction's
 * marker, whose older records the discarded one still holds. Sets *swapped_out and
 * *kept_end_out, the offset below which the pass's output is in (map_end, or the
 * first discarded group's base); an error after step 1 fails the log. */
static tl_err cleaner_swap(struct tl_log *log, struct tl_cleaner_job *job, uint32_t *swapped_out,
			   int64_t *kept_end_out)
{
	*swapped_out = 0;
	*kept_end_out = job->map_end;
	uint32_t count = 0;
	for (uint32_t i = 0; i < job->group_count; i++) {
		struct tl_cleaner_group *g = &job->groups[i];
		uint32_t k;
		if (!g->written)
			continue; /* nothing changed: the log already holds its output */
		if (!group_is_current(log, job, g, &k)) {
			*kept_end_out = g->base_offset; /* its .cleaned file goes with the job */
			break;
		}
		if (cleaner_fault(log, 1))
			return TL_ERR_KAFKA_STORAGE_ERROR;
		char cleaned[NAME_BYTES], swap[NAME_BYTES];
		tl_cleaner_file_name(cleaned, sizeof(cleaned), g->base_offset, g->end_offset,
				     "cleaned");
		tl_cleaner_file_name(swap, sizeof(swap), g->base_offset, g->end_offset, "swap");
		if (renameat(log->dir_fd, cleaned, log->dir_fd, swap) == -1) {
			set_error(log, "rename", cleaned, errno);
			*kept_end_out = g->base_offset;
			break;
		}
		g->written = false;
		g->swapping = true;
		count++;
	}
	if (*kept_end_out < job->map_end)
		tl_warn("log: compaction groups discarded, their records stay dirty dir=%s "
			"from=%" PRId64,
			log->dir, *kept_end_out);
	if (count == 0)
		return TL_OK;
	const char *what = "rename to .swap";
	tl_err err = sync_dir(log);
	if (err != TL_OK || cleaner_fault(log, 2))
		goto out_fail;
	for (uint32_t i = 0; i < job->group_count; i++) {
		const struct tl_cleaner_group *g = &job->groups[i];
		if (!g->swapping)
			continue;
		uint32_t k = segment_index_for(log, g->base_offset);
		for (uint32_t j = 1; j < g->count; j++)
			segment_unlink(log, log->segments[k + j]->base_offset);
		segment_unlink_indexes(log, g->base_offset);
	}
	what = "unlink";
	err = sync_dir(log);
	if (err != TL_OK || cleaner_fault(log, 3))
		goto out_fail;
	what = "rename to .log";
	for (uint32_t i = 0; i < job->group_count && err == TL_OK; i++) {
		const struct tl_cleaner_group *g = &job->groups[i];
		if (!g->swapping)
			continue;
		char swap[NAME_BYTES], name[NAME_BYTES];
		tl_cleaner_file_name(swap, sizeof(swap), g->base_offset, g->end_offset, "swap");
		segment_name(name, g->base_offset, ".log");
		if (renameat(log->dir_fd, swap, log->dir_fd, name) == -1) {
			set_error(log, "rename", swap, errno);
			err = TL_ERR_IO;
		}
	}
	if (err == TL_OK)
		err = sync_dir(log);
	if (err != TL_OK || cleaner_fault(log, 4))
		goto out_fail;
	what = "install";
	for (uint32_t i = 0; i < job->group_count && err == TL_OK; i++)
		if (job->groups[i].swapping) {
			aborted_drop_removed(log, job, &job->groups[i]);
			err = group_install(log, &job->groups[i]);
			(*swapped_out)++;
		}
	if (err != TL_OK || cleaner_fault(log, 5))
		goto out_fail;
	return TL_OK;
out_fail:
	if (!log->failed) {
		tl_crit("log: compaction swap failed, partition offline until reopened dir=%s "
			"step=\"%s\" detail=\"%s\"",
			log->dir, what, log->last_error);
		log_fail(log);
	}
	return TL_ERR_KAFKA_STORAGE_ERROR;
}

/* Swaps a finished pass in, writes the checkpoint and logs the figures. */
/* A pass removed transaction markers up to @offset: a producer snapshot at or below it
 * may hold a transaction open whose marker is gone, and a recovery that replayed the log
 * from it would never see the transaction close (the LSO would stay behind it). Such
 * snapshots go; the one at the active segment's base, above every cleaned offset, stays.
 * A crash before this leaves them, used only when every newer snapshot is unusable. */
static void snapshots_drop_below_marker(struct tl_log *log, int64_t offset)
{
	TL_ASSERT(offset < active_segment(log)->base_offset);
	uint32_t kept = 0;
	bool removed = false;
	for (uint32_t i = 0; i < TL_ARRAY_SIZE(log->snapshots); i++) {
		int64_t at = log->snapshots[i];
		if (at < 0)
			break;
		if (at <= offset) {
			char name[NAME_BYTES];
			snapshot_name(name, at);
			removed |= unlinkat(log->dir_fd, name, 0) == 0;
			continue;
		}
		log->snapshots[kept++] = at;
	}
	for (uint32_t i = kept; i < TL_ARRAY_SIZE(log->snapshots); i++)
		log->snapshots[i] = -1;
	/* Durably (one directory fsync a pass that removed a marker): brought back by a
	 * power loss, one would be replayed without the marker and hold its transaction
	 * open. A failure here is logged; it fails no write. */
	if (removed && fsync(log->dir_fd) == -1)
		tl_warn("log: directory fsync after dropping snapshots failed dir=%s err=%s",
			log->dir, strerrorname_np(errno));
}

static tl_err cleaner_finish(struct tl_log *log)
{
	struct tl_cleaner_job *job = log->cleaner_job;
	tl_err err = job->err;
	uint32_t swapped = 0;
	int64_t kept_end = -1;
	if (err != TL_OK) {
		tl_warn("log: compaction pass failed dir=%s err=%s detail=\"%s\"", log->dir,
			tl_err_name(err), job->error);
	}
	if (err == TL_OK)
		err = cleaner_swap(log, job, &swapped, &kept_end);
	if (err == TL_OK && swapped > 0 && job->marker_removed_last >= 0)
		snapshots_drop_below_marker(log, job->marker_removed_last);
	/* Only as far as the output went in (Kafka checkpoints what it swapped): the dirty
	 * records of a discarded group were compared with no key yet, and a later pass that
	 * took them for clean would drop an expired tombstone and keep its key's older
	 * value. */
	if (err == TL_OK && kept_end > log->cleaner_first_dirty &&
	    cleaner_checkpoint_write(log, kept_end) == TL_OK)
		log->cleaner_first_dirty = kept_end;
	/* A discarded group's horizons are not in the log yet, nor its dropped tombstones
	 * gone: a pass within delete.retention.ms sees to them, dirty records or not. */
	if (err == TL_OK)
		log->cleaner_horizon_next =
			kept_end < job->map_end
				? TL_MIN(job->horizon_next,
					 tl_ms_after(job->now_ms, job->delete_retention_ms))
				: job->horizon_next;
	else if (log->cleaner_horizon_next <= job->now_ms)
		/* A failed pass that a horizon started would start again every backoff,
		 * reading the whole log each time: try again later. */
		log->cleaner_horizon_next = tl_ms_after(job->now_ms, CLEANER_HORIZON_RETRY_MS);
	struct tl_log_cleaner_stats *st = &log->cleaner_stats;
	if (job->err == TL_OK) {
		st->passes++;
		st->segments_cleaned += swapped;
	}
	st->bytes_read += job->bytes_read;
	st->bytes_written += job->bytes_written;
	st->records_read += job->records_read;
	st->records_kept += job->records_kept;
	st->batches_emptied_unread += job->batches_emptied_unread;
	st->markers_removed += job->markers_removed;
	st->horizons_set += job->horizons_set;
	st->duration_ms += job->duration_ms;
	st->first_dirty = log->cleaner_first_dirty;
	st->nice = job->nice;
	if (job->err == TL_OK)
		tl_info("log: compacted dir=%s segments=%u groups=%u swapped=%u bytes_read=%" PRId64
			" bytes_written=%" PRId64 " records_read=%" PRId64 " records_kept=%" PRId64
			" batches_emptied_unread=%" PRId64 " markers_removed=%" PRId64
			" horizons_set=%" PRId64 " ratio=%.3f ms=%" PRId64 " cpu_us=%" PRId64
			" nice=%d first_dirty=%" PRId64,
			log->dir, job->input_count, job->group_count, swapped, job->bytes_read,
			job->bytes_written, job->records_read, job->records_kept,
			job->batches_emptied_unread, job->markers_removed, job->horizons_set,
			job->records_read ? (double)job->records_kept / (double)job->records_read
					  : 1.0,
			job->duration_ms, job->cpu_us, job->nice, log->cleaner_first_dirty);
	cleaner_job_free(log);
	return err == TL_ERR_LIMIT ? TL_OK : err;
}

static void *cleaner_main(void *arg)
{
	struct tl_cleaner_job *job = arg;
	/* The thread's own nice value (Linux: setpriority of a thread id); what it runs at,
	 * the requested one or, refused, the one it inherited. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), job->nice);
	job->nice = getpriority(PRIO_PROCESS, (id_t)gettid());
	tl_cleaner_run(job);
	atomic_fetch_sub(&cleaners_running, 1);
	return NULL;
}

static void cleaner_tick(struct tl_log *log, int64_t now_ms)
{
	if (log->cleaner_job) {
		if (!atomic_load(&log->cleaner_job->done))
			return;
		cleaner_join(log);
		cleaner_finish(log);
		log->cleaner_next_ms = now_ms + log->config.cleaner_backoff_ms;
		return;
	}
	/* A replicated log is compacted too, each replica its own (as in Kafka): a
	 * follower takes the holes its leader's cleaner left (tl_log_append_replica), and
	 * the cleanable range never passes the high watermark (the LSO is below it). */
	if (!log->config.cleanup_compact || !log->config.cleaner_enable || log->failed ||
	    now_ms < log->cleaner_next_ms)
		return;
	log->cleaner_next_ms = now_ms + log->config.cleaner_backoff_ms;
	uint32_t n = cleanable_count(log, now_ms);
	enum cleaner_due due = n > 0 ? cleaner_is_due(log, n, now_ms) : CLEANER_NOT_DUE;
	if (due == CLEANER_NOT_DUE)
		return;
	if (atomic_fetch_add(&cleaners_running, 1) >= TL_MAX(log->config.cleaner_threads, 1)) {
		atomic_fetch_sub(&cleaners_running, 1);
		log->cleaner_next_ms = now_ms + 1000; /* another log's pass holds the thread */
		return;
	}
	log->cleaner_job = cleaner_job_create(log, n, now_ms);
	if (log->cleaner_job)
		log->cleaner_job->nice = due == CLEANER_DUE_MAX_LAG ? 0 : log->config.cleaner_nice;
	if (log->cleaner_job &&
	    pthread_create(&log->cleaner_thread, NULL, cleaner_main, log->cleaner_job) == 0) {
		log->cleaner_threaded = true;
		return;
	}
	tl_warn("log: cannot start a compaction pass dir=%s", log->dir);
	atomic_fetch_sub(&cleaners_running, 1);
	cleaner_job_free(log);
}

tl_err tl_log_compact(struct tl_log *log, int64_t now_ms)
{
	if (!log->config.cleanup_compact)
		return TL_ERR_INVALID;
	if (log->failed)
		return TL_ERR_KAFKA_STORAGE_ERROR;
	if (log->cleaner_job) {
		cleaner_join(log);
		tl_err err = cleaner_finish(log);
		if (err != TL_OK)
			return err;
	}
	uint32_t n = cleanable_count(log, now_ms);
	if (n == 0)
		return TL_OK;
	log->cleaner_job = cleaner_job_create(log, n, now_ms);
	if (!log->cleaner_job)
		return TL_ERR_NOMEM;
	log->cleaner_job->nice = getpriority(PRIO_PROCESS, 0); /* this thread's, as it is */
	tl_cleaner_run(log->cleaner_job);
	return cleaner_finish(log);
}

void tl_log_cleaner_stats(const struct tl_log *log, struct tl_log_cleaner_stats *out)
{
	*out = log->cleaner_stats;
	out->running = log->cleaner_job != NULL;
	out->horizon_next = log->cleaner_horizon_next;
}

bool tl_log_is_writable(const struct tl_log *log)
{
	return !log->failed;
}

const char *tl_log_last_error(const struct tl_log *log)
{
	return log->failed ? log->last_error : "";
}

/* ---- metrics ---- */

const struct tl_hist *tl_log_write_hist(const struct tl_log *log)
{
	return &log->write_us;
}

const struct tl_hist *tl_log_sync_hist(const struct tl_log *log)
{
	return &log->sync_us;
}
