/* log.h - one partition's commit log on disk: the interface of log/.
 * A partition is a directory (`<topic>-<partition>` under log.dirs) of segments:
 *   <20-digit base offset>.log        record batches exactly as on the wire
 *   <20-digit base offset>.index      sparse offset index: (u32 relative offset, u32 position)
 *   <20-digit base offset>.timeindex  (i64 max timestamp, u32 relative offset)
 *   <20-digit base offset>.txnindex   aborted transactions whose ABORT marker is in the
 *                                     segment: (u16 version 0, i64 producer id, i64 first
 *                                     offset, i64 marker offset, i64 LSO then)
 *                                     (each index file ends with a trailer that Kafka's
 *                                     do not have: see tl_log_index_check)
 *   <20-digit offset>.snapshot        producer state as of that offset
 *   leader-epoch-checkpoint           the leader-epoch cache, Kafka's text format:
 *                                     "0\n<count>\n<epoch> <start offset>\n..."
 * plus `.clean-shutdown` while the log is closed cleanly.
 *
 * Writes go through a tl_ring (io_uring or the sync fallback) owned by the caller's
 * event loop. Group commit: tl_log_append() assigns offsets and queues the batch;
 * tl_log_flush() (called once per loop turn) writes every queued batch with one writev
 * per segment, and every written batch is then covered by one fdatasync per segment;
 * waiters fire when the sync covering them completes. The two stages overlap: the next
 * write runs while the previous fdatasync is in flight.
 *
 * Offsets:
 *   start_offset <= high_watermark <= durable_offset <= written_offset <= end_offset
 *   end_offset      next offset to assign (log end offset, LEO)
 *   written_offset  every batch below it is in the file (page cache): readable
 *   durable_offset  every offset below it is on stable storage (fdatasync'ed)
 *   high_watermark  what consumers may read and what waiters (acks) wait for. By
 *                   default it follows durable_offset (one node). In replicated mode
 *                   (tl_log_set_replicated) it moves only by tl_log_set_high_watermark:
 *                   the leader's minimum over the ISR, or a follower's leader's value.
 * (1) Only the last (active) segment is written; sealed segments never change.
 * (2) Base offsets strictly increase along the segment list.
 * (3) A failed write or fdatasync makes the log FAILED: appends answer
 *     KAFKA_STORAGE_ERROR and waiters fire with it until the log is reopened. A failed
 *     fsync is never retried: the kernel may already have dropped the dirty pages.
 * Thread: a log belongs to one event loop thread; no call is thread-safe. */
#ifndef TL_LOG_LOG_H
#define TL_LOG_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ring.h"
#include "protocol/batch.h"
#include "tally/error.h"

struct tl_log_config {
	int64_t producer_id_expiration_ms; /* producer.id.expiration.ms */
	/* producer.id.expiration.check.interval.ms: how often the tick expires producers
	 * (Kafka's 10 min; at open always) */
	int64_t producer_id_expiration_check_interval_ms;
	int64_t segment_bytes;   /* log.segment.bytes: roll when the next batch would pass it */
	int64_t segment_ms;      /* log.roll.ms: roll a non-empty segment older than this */
	int64_t retention_bytes; /* log.retention.bytes: -1 = no size limit */
	int64_t retention_ms;    /* log.retention.ms: -1 = keep forever */
	/* log.retention.check.interval.ms: how often the tick applies retention.ms and
	 * retention.bytes (0: every tick); segments below a DeleteRecords start go at once */
	int64_t retention_check_interval_ms;
	int32_t index_interval_bytes; /* log.index.interval.bytes: bytes between index entries */
	int32_t index_bytes_max; /* log.index.size.max.bytes: roll when an index is this full */
	/* Compaction (cleanup.policy and the cleaner's keys; see "Compaction" in log.c). */
	bool cleanup_compact;                /* cleanup.policy has compact */
	bool cleanup_delete;                 /* cleanup.policy has delete: retention applies */
	bool cleaner_enable;                 /* log.cleaner.enable */
	double min_cleanable_dirty_ratio;    /* min.cleanable.dirty.ratio */
	int64_t min_compaction_lag_ms;       /* min.compaction.lag.ms: newer segments wait */
	int64_t max_compaction_lag_ms;       /* max.compaction.lag.ms: older dirt forces a pass */
	int64_t delete_retention_ms;         /* delete.retention.ms: tombstones kept this long */
	int64_t cleaner_dedupe_buffer_bytes; /* log.cleaner.dedupe.buffer.size */
	int64_t cleaner_io_bytes_per_sec;    /* log.cleaner.io.max.bytes.per.second; <= 0 none */
	int64_t cleaner_backoff_ms;          /* log.cleaner.backoff.ms between checks */
	int32_t cleaner_threads;             /* log.cleaner.threads: passes at once, all logs */
	int32_t cleaner_nice; /* log.cleaner.nice: of a pass the dirty ratio starts (0-19) */
	/* A replica's log (cluster mode): it takes a leader's batch past its end, over the
	 * offset hole the leader's cleaner left, and recovery accepts such holes in the
	 * active segment and before a segment's first batch. Read by tl_log_open only. */
	bool offset_holes;
	/* Direct I/O (see "Direct I/O" in log.c). */
	bool direct_io;            /* log.direct.io: O_DIRECT segment writes where the file
				    * system takes them; false: buffered writes */
	bool preallocate;          /* log.preallocate (Kafka's key): fallocate ahead */
	int64_t preallocate_bytes; /* log.preallocate.bytes: step of it, 4 KiB multiple */
	/* log.cache.bytes: the newest written batches of a direct log's active segment kept
	 * in memory for reads (tl_log_read_cached); 0 = off. See "Read cache" in log.c. */
	int64_t cache_bytes;
	/* Test-only faults for the chaos harness (tests/chaos/); off by default. */
	bool test_dedupe_off; /* test.fault.dedupe.off: append producer retries again */
	/* test.fault.fdatasync.fail.after: how many of a log's fdatasyncs succeed; every
	 * later one fails with EIO (the log goes FAILED); 0 = never */
	int64_t test_fdatasync_fail_after;
	/* test.fault.log.crash.point: a direct write round kills the process (SIGKILL) at
	 * this point (TL_LOG_CRASH_*), on the round number test.fault.log.crash.round
	 * (from 1) of the log; 0 = never. Crash tests only. */
	int32_t test_crash_point;
	int32_t test_crash_round;
};

enum {
	TL_LOG_CRASH_NONE = 0,
	TL_LOG_CRASH_AFTER_PREALLOCATE = 1, /* space allocated, nothing of the round written */
	TL_LOG_CRASH_TORN_TAIL_BLOCK = 2,   /* half of the rewritten tail block written */
	TL_LOG_CRASH_TORN_ROUND = 3,        /* all but the round's last block written */
	TL_LOG_CRASH_BEFORE_SYNC = 4,       /* the round written, not yet fdatasynced */
	TL_LOG_CRASH_POINT_MAX = 4,
};

/* Kafka's defaults. */
void tl_log_config_defaults(struct tl_log_config *config);

struct tl_log;
struct tl_log_segment;

/* Opens the partition directory @dir, creating it if absent, and recovers it: with the
 * clean-shutdown marker present, trusts the indexes; otherwise scans the active segment
 * batch by batch (length, magic, CRC) and truncates at the first bad byte, and rebuilds
 * any missing or unreadable index. Copies @config. Borrows @ring for the log's life.
 * Returns TL_OK, TL_ERR_IO or TL_ERR_NOMEM; *log_out is set only on TL_OK. */
tl_err tl_log_open(const char *dir, const struct tl_log_config *config, struct tl_ring *ring,
		   struct tl_log **log_out);

/* Waits for queued writes, fsyncs, writes the clean-shutdown marker (if the log is not
 * FAILED) and frees the log. Pending waiters fire before it returns. */
void tl_log_close(struct tl_log *log);

/* Closes the log without a marker and deletes its directory and files (DeleteTopics). */
tl_err tl_log_remove(struct tl_log *log);

/* Changes the roll/retention settings of an open log. */
void tl_log_set_config(struct tl_log *log, const struct tl_log_config *config);

/* ---- appending ---- */

struct tl_log_append_result {
	int64_t base_offset; /* of the batch appended, or of the original for a duplicate */
	int64_t last_offset;
	int64_t max_timestamp; /* the stored batch's (the original's for a duplicate) */
	bool duplicate;        /* a producer retry of a cached batch: nothing was appended */
};

/* Appends one batch that passed tl_batch_validate(): @data holds exactly @len bytes and
 * @header its decoded header. A batch with a producer id is first checked against the
 * partition's producer state (log/producer_state.h): a duplicate of one of the
 * producer's last five batches is not appended and returns the original offsets with
 * `duplicate` set; a sequence or epoch problem returns its Kafka error.
 * Otherwise assigns offsets end_offset .. end_offset + lastOffsetDelta by rewriting
 * baseOffset in @data (the CRC does not cover it), updates the indexes and producer
 * state, and queues the write. Borrows @data until the batch is durable: the caller
 * keeps it alive until a waiter covering last_offset fires. Rolls a new segment first
 * when needed. Returns TL_OK, a producer-state error (OUT_OF_ORDER_SEQUENCE_NUMBER,
 * INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID, INVALID_RECORD), or
 * TL_ERR_KAFKA_STORAGE_ERROR when FAILED. A control batch (a COMMIT or ABORT marker from
 * the transaction coordinator) closes its producer's open transaction; an ABORT enters
 * it in the aborted-transaction index. */
tl_err tl_log_append(struct tl_log *log, uint8_t *data, size_t len,
		     const struct tl_batch_header *header, struct tl_log_append_result *out);

/* Starts writing everything queued, unless a write is already in flight (then the queued
 * batches go in the next one, started when it completes); written batches are synced as
 * soon as no fdatasync is in flight. Fires waiters already durable. Call once per loop
 * turn for each log that was appended to; cheap when nothing is queued. */
void tl_log_flush(struct tl_log *log);

struct tl_log_waiter;
typedef void (*tl_log_waiter_fn)(struct tl_log_waiter *waiter, tl_err err);

/* Fires once high_watermark > @offset (err TL_OK), or the log fails (err
 * TL_ERR_KAFKA_STORAGE_ERROR), or the log closes (TL_OK; in replicated mode
 * TL_ERR_NOT_LEADER_OR_FOLLOWER for those the high watermark had not passed), or a
 * truncation removes @offset (TL_ERR_NOT_LEADER_OR_FOLLOWER). In replicated mode
 * durability alone fires nothing: acks=all waits for the ISR. Waiters fire in offset
 * order. */
struct tl_log_waiter {
	int64_t offset;
	tl_log_waiter_fn done;
	void *ctx;
	struct tl_log_waiter *next; /* private */
};
void tl_log_wait_durable(struct tl_log *log, struct tl_log_waiter *waiter);

/* Called after every advance of the high watermark (after waiters), e.g. to wake fetches
 * waiting in long-poll. One listener per log; NULL removes it. */
typedef void (*tl_log_listener_fn)(void *ctx, struct tl_log *log);
void tl_log_set_listener(struct tl_log *log, tl_log_listener_fn fn, void *ctx);

/* ---- replication ---- */

/* Appends a batch fetched from the leader as is: @header->base_offset and
 * partitionLeaderEpoch were set by the leader and are not rewritten; the batch must
 * start at end_offset, or past it when the log was opened with offset_holes (the
 * leader's cleaner removed the offsets between, as Kafka's followers allow), else
 * TL_ERR_OFFSET_OUT_OF_RANGE (the caller truncates or fetches from the end); the log
 * end becomes the batch's last offset + 1. No dedupe check, but producer state, transactions
 * (closing list, aborted index, LSO), indexes and snapshots are updated as by
 * tl_log_append(), so this replica can lead and dedupe retries. A batch whose epoch is
 * above the latest cached one first adds (epoch, base offset) to the leader-epoch cache
 * and makes the checkpoint durable, before the batch is queued. Borrows @data: the
 * caller keeps it alive until tl_log_durable_offset() > the batch's last offset (see
 * tl_log_set_durable_listener), or until the log FAILED or a truncation dropped the
 * batch. Returns TL_OK, TL_ERR_OFFSET_OUT_OF_RANGE, TL_ERR_INVALID_RECORD (a control
 * batch without a control record), TL_ERR_NOMEM or TL_ERR_KAFKA_STORAGE_ERROR. */
tl_err tl_log_append_replica(struct tl_log *log, uint8_t *data, size_t len,
			     const struct tl_batch_header *header);

/* Called after every advance of the durable end (after the high watermark's waiters and
 * listener when not replicated): a leader recomputes its high watermark, a follower
 * reports progress and frees the fetch buffers below tl_log_durable_offset(). Also
 * called once when the log FAILED and no write is in flight any more: then
 * tl_log_is_writable() is false and no borrowed buffer is read again. One per log; NULL
 * removes it. */
void tl_log_set_durable_listener(struct tl_log *log, tl_log_listener_fn fn, void *ctx);

/* The local durable end: every offset below it is fdatasync'ed (what high_watermark
 * means on one node). */
int64_t tl_log_durable_offset(const struct tl_log *log);
/* The end of the batches whose write completed: readable through the file. A follower
 * fetch reads up to here. */
int64_t tl_log_written_offset(const struct tl_log *log);

/* Replicated mode: the high watermark stops following the durable end and moves only by
 * tl_log_set_high_watermark(). Off by default; switching it off moves the high
 * watermark up to the durable end. */
void tl_log_set_replicated(struct tl_log *log, bool replicated);
/* Raises the high watermark to @hw clamped to [high_watermark, durable_offset]
 * (monotonic), then fires the waiters it passed and the listener. No-op on a FAILED log
 * or when nothing moves. */
void tl_log_set_high_watermark(struct tl_log *log, int64_t hw);
/* Sets the high watermark to @hw clamped to [start_offset, durable_offset], lower
 * included: at start-up in replicated mode, with the high watermark checkpointed by the
 * broker (after open the durable end is the recovered end). Lowering it rebuilds the
 * producer state so that markers above it hold the LSO again. Returns TL_OK or
 * TL_ERR_KAFKA_STORAGE_ERROR (the log is FAILED). */
tl_err tl_log_reset_high_watermark(struct tl_log *log, int64_t hw);

/* One leader-epoch cache entry: @epoch's first batch is at @start_offset. */
struct tl_log_epoch_entry {
	int32_t epoch;
	int64_t start_offset;
};

/* Parses the text of a `leader-epoch-checkpoint` file (Kafka's format: "0\n<count>\n"
 * then "<epoch> <start offset>\n" per entry, both strictly increasing) into a malloc'd
 * array the caller frees. Returns TL_OK, TL_ERR_NOMEM, or TL_ERR_CORRUPT with a static
 * reason in *why. Used by recovery and by `tally log check`. */
tl_err tl_log_epochs_decode(const uint8_t *data, size_t len, struct tl_log_epoch_entry **out,
			    uint32_t *count_out, const char **why);

/* ---- index files ----
 * The entries of a `.index`, `.timeindex` or `.txnindex` file (Kafka's layouts, above)
 * are followed by a trailer of TL_LOG_INDEX_TRAILER_BYTES, big-endian:
 *   u32 magic "TLIX", u8 kind (enum tl_log_index_kind), u8 version 1, u16 0,
 *   u32 entry count, i64 end offset (the segment's next offset when it was written),
 *   u32 CRC-32C of the entries and the trailer's first 20 bytes.
 * Index files of sealed segments are written without fsync, so a power loss can leave
 * one empty, cut short or zero-filled: the trailer makes any of those detectably bad,
 * and recovery then rebuilds the file from the segment. A file without a trailer (the
 * format before it) is bad too: it is rebuilt once. */
#define TL_LOG_INDEX_TRAILER_BYTES 24

enum tl_log_index_kind {
	TL_LOG_INDEX_OFFSET = 1, /* .index */
	TL_LOG_INDEX_TIME = 2,   /* .timeindex */
	TL_LOG_INDEX_TXN = 3,    /* .txnindex */
};

/* The size of one entry of @kind: 8, 12 or 34. */
size_t tl_log_index_entry_bytes(enum tl_log_index_kind kind);

/* Fills @trailer (TL_LOG_INDEX_TRAILER_BYTES) for the @count entries of @kind at
 * @entries, of a segment whose next offset is @end_offset. */
void tl_log_index_trailer_put(uint8_t *trailer, enum tl_log_index_kind kind, const void *entries,
			      uint32_t count, int64_t end_offset);

/* Checks @data, the @len bytes of a whole index file of @kind: a trailer is at its end,
 * of that kind and version, its entry count fills the rest exactly and its CRC matches.
 * Then sets *count_out and *end_offset_out and returns TL_OK; else TL_ERR_CORRUPT with a
 * static reason in *why. Used by recovery and by `tally log check`. */
tl_err tl_log_index_check(const uint8_t *data, size_t len, enum tl_log_index_kind kind,
			  uint32_t *count_out, int64_t *end_offset_out, const char **why);

/* Sets the epoch stamped (partitionLeaderEpoch) on the batches tl_log_append() writes
 * from now on (this broker leads with @epoch). If @epoch is above the latest cached
 * epoch, (epoch, end_offset) enters the cache, replacing an entry that starts at
 * end_offset, and the checkpoint is durable before this returns. Epochs only grow:
 * @epoch equal to the latest is a no-op, below it is TL_ERR_FENCED_LEADER_EPOCH, below 0
 * TL_ERR_INVALID; TL_ERR_KAFKA_STORAGE_ERROR when the checkpoint cannot be written.
 * Until called, appends use the latest cached epoch (0 for a new log). tl_log_append()
 * answers TL_ERR_FENCED_LEADER_EPOCH while the cache holds an epoch above this one
 * (a follower append of a newer leader's batches came after it). */
tl_err tl_log_assign_epoch(struct tl_log *log, int32_t epoch);

/* The latest cached epoch, -1 when the cache is empty. */
int32_t tl_log_latest_epoch(const struct tl_log *log);

/* OffsetsForLeaderEpoch, as Kafka's LeaderEpochFileCache.endOffsetFor:
 *   @epoch == latest cached epoch       (latest, end_offset)
 *   an entry above @epoch exists        (largest cached epoch <= @epoch, start offset of
 *                                        the first entry above @epoch); when @epoch is
 *                                        below the earliest entry: (@epoch, start offset
 *                                        of the earliest entry), as newer Kafka answers
 *   otherwise (above every entry, empty  (-1, -1): UNDEFINED_EPOCH and
 *   cache, @epoch < 0)                   UNDEFINED_EPOCH_OFFSET
 * Always returns TL_OK. */
tl_err tl_log_end_offset_for_epoch(const struct tl_log *log, int32_t epoch, int32_t *epoch_out,
				   int64_t *end_offset_out);

/* The epoch of the cache entry covering @offset (the last starting at or before it),
 * -1 when none does (Kafka's epochForOffset, for ListOffsets' leader_epoch). */
int32_t tl_log_epoch_at(const struct tl_log *log, int64_t offset);

/* Copies up to @max cache entries, oldest first, into @out; returns how many there are. */
uint32_t tl_log_epochs(const struct tl_log *log, struct tl_log_epoch_entry *out, uint32_t max);

/* Kafka's truncateTo: removes every batch at or after the start of the batch holding
 * @offset (so the new end is <= @offset; no-op past the end, where it only drops cache
 * entries starting at or after @offset). Finishes the write and sync rounds in flight
 * first, running the ring (other logs' callbacks may run; none may append to this log
 * meanwhile); queued batches past the cut are dropped unwritten. Then cuts the files,
 * trims indexes, aborted and closing transactions and the leader-epoch cache (checkpoint
 * rewritten), rebuilds producer state, and clamps the high watermark to the new end.
 * Waiters at or past the new end fire with TL_ERR_NOT_LEADER_OR_FOLLOWER. A read
 * still being sent from the cut range may come up short. Returns TL_OK or
 * TL_ERR_KAFKA_STORAGE_ERROR (the log is FAILED). */
tl_err tl_log_truncate_to(struct tl_log *log, int64_t offset);

/* Kafka's truncateFullyAndStartAt: deletes every segment, snapshot and cache entry and
 * restarts the log empty at @new_start_offset (start = high watermark = end), for a
 * follower whose leader's log starts past its end. Drains like tl_log_truncate_to();
 * every waiter fires with TL_ERR_NOT_LEADER_OR_FOLLOWER. Returns TL_OK, TL_ERR_INVALID
 * (@new_start_offset < 0) or TL_ERR_KAFKA_STORAGE_ERROR (FAILED; if it failed with no
 * segment left, only close or remove may follow). */
tl_err tl_log_truncate_fully(struct tl_log *log, int64_t new_start_offset);

/* ---- reading ---- */

/* A range of one segment file holding whole batches. Holds a reference on the segment
 * so retention cannot close its file while a response is being sent. From
 * tl_log_read_cached() it may instead be a run of the read cache: @data set, @fd -1,
 * @segment NULL, and @ref holds the memory unchanged until released. Either way
 * @release(@ref) drops what the read holds (NULL when bytes == 0). */
struct tl_log_read {
	int fd;
	int64_t position;     /* file offset of the first byte */
	int64_t bytes;        /* 0 when there is nothing to read yet */
	int64_t first_offset; /* base offset of the first batch in the range */
	int64_t next_offset;  /* the offset after the range: the first batch's base left out */
	struct tl_log_segment *segment; /* reference; NULL when bytes == 0 or from memory */
	const uint8_t *data;            /* the bytes, when they come from the read cache */
	void (*release)(void *ref);
	void *ref;
};

/* Finds the batch holding @offset (or the first batch after it) and returns a file range
 * of whole batches, ending before any batch whose last offset >= @max_offset, at most
 * @max_bytes long except that with @min_one the first batch is returned whatever its
 * size (KIP-74). @max_offset is the high watermark (or the LSO for read_committed, or
 * the written offset for a follower's fetch); the range never passes the written
 * offset. Returns TL_OK (bytes == 0 when @offset is in [@max_offset, end_offset]: a
 * consumer ahead of the high watermark waits), or TL_ERR_OFFSET_OUT_OF_RANGE when
 * @offset < start_offset or > end_offset. */
tl_err tl_log_read(struct tl_log *log, int64_t offset, int64_t max_offset, int32_t max_bytes,
		   bool min_one, struct tl_log_read *out);
/* Drops the reference taken by tl_log_read (signature fits tl_buf_file_span's release). */
void tl_log_read_release(void *segment);

/* As tl_log_read(), but served from the log's read cache (log.cache.bytes: the newest
 * written batches of a direct log's active segment) when the batch holding @offset is
 * there: then the range is memory (@data) of whole batches, cut at the end of the cache
 * chunk it starts in, and no file is read. Same rules as tl_log_read (@max_offset, the
 * written end, KIP-74's @min_one). Falls back to the file otherwise. The caller sends
 * @data or the file range and calls out->release(out->ref).
 * A direct log's cold range (not in the cache) is read into memory with O_DIRECT. With
 * @may_wait (a fetch that can park) it may come back empty while a chunk holding it is
 * read asynchronously: the log's listener runs when that read completes, and the same
 * call then answers from memory. Without @may_wait it is read now, synchronously. */
tl_err tl_log_read_cached(struct tl_log *log, int64_t offset, int64_t max_offset, int32_t max_bytes,
			  bool min_one, bool may_wait, struct tl_log_read *out);

/* Reads of tl_log_read_cached() since open: served from memory (hits, with their bytes)
 * or from the file (misses; only counted while the cache is on). */
struct tl_log_cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t hit_bytes;
	uint64_t direct_reads; /* misses of a direct log read with O_DIRECT into memory */
	uint64_t direct_read_bytes;
	uint64_t readahead_hits;  /* cold reads answered from a chunk read ahead */
	uint64_t readahead_waits; /* cold reads answered empty: their chunk is being read */
	int64_t bytes;            /* held now */
};
void tl_log_cache_stats(const struct tl_log *log, struct tl_log_cache_stats *out);

int64_t tl_log_start_offset(const struct tl_log *log);
/* DeleteRecords: raises the log start to @offset (-1: the high watermark) durably;
 * reads below it fail from then on and tl_log_tick removes the segments wholly below
 * it. TL_ERR_OFFSET_OUT_OF_RANGE past the high watermark; a lower @offset changes
 * nothing. Writes the new start to @start_out. */
tl_err tl_log_delete_records(struct tl_log *log, int64_t offset, int64_t *start_out);
int64_t tl_log_end_offset(const struct tl_log *log);
int64_t tl_log_high_watermark(const struct tl_log *log);
/* Bytes on disk over all segments. */
int64_t tl_log_size_bytes(const struct tl_log *log);

/* ListOffsets by timestamp: the base offset of the first batch whose maxTimestamp >=
 * @timestamp_ms, with that maxTimestamp. TL_ERR_NOT_FOUND when no batch qualifies. */
tl_err tl_log_offset_for_timestamp(struct tl_log *log, int64_t timestamp_ms, int64_t *offset_out,
				   int64_t *timestamp_out);
/* ListOffsets MAX_TIMESTAMP (KIP-734): the largest batch maxTimestamp in the log, from
 * the segments' time indexes; -1 when no batch has one. The batch holding it is
 * tl_log_offset_for_timestamp(log, that timestamp). */
int64_t tl_log_max_timestamp(const struct tl_log *log);

/* ---- transactions ---- */

/* The last stable offset: the first offset of the oldest transaction that no COMMIT or
 * ABORT marker below the high watermark has closed yet (in replicated mode a marker a
 * failover could undo does not count), or the high watermark when none is open.
 * read_committed fetches and ListOffsets stop here. */
int64_t tl_log_last_stable_offset(struct tl_log *log);

/* One aborted transaction, from the aborted-transaction index (`.txnindex`). */
struct tl_log_aborted_txn {
	int64_t producer_id;
	int64_t first_offset; /* of the transaction's first batch in this partition */
	int64_t last_offset;  /* of its ABORT marker */
};

/* The aborted transactions whose records may lie in [@from, @to) (first_offset < @to and
 * last_offset >= @from), in marker order: copies at most @max into @out and returns how
 * many there are in all, so a caller can size its buffer with a first call (@max 0). */
uint32_t tl_log_aborted_txns(const struct tl_log *log, int64_t from, int64_t to,
			     struct tl_log_aborted_txn *out, uint32_t max);

/* One producer known to the partition (DescribeProducers). */
struct tl_log_producer {
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t last_sequence;  /* of its newest batch, -1 if none */
	int64_t last_timestamp; /* its newest batch's maxTimestamp */
	int32_t coordinator_epoch;
	int64_t txn_first_offset; /* of its open transaction, -1 if none */
};

/* Copies up to @max of the partition's producers into @out; returns how many there are. */
uint32_t tl_log_producers(const struct tl_log *log, struct tl_log_producer *out, uint32_t max);

/* ---- maintenance ---- */

/* Periodic work, about once a second: roll by log.roll.ms, delete whole segments past
 * retention (never the active one; with cleanup.policy=compact alone only below the
 * DeleteRecords floor), and drive compaction: start a pass in a cleaner thread when the
 * dirty ratio or max.compaction.lag.ms asks for one, swap a finished pass in. Returns
 * the number of segments deleted. */
int tl_log_tick(struct tl_log *log, int64_t now_ms);

/* Compaction figures of one log, totals since open. */
struct tl_log_cleaner_stats {
	uint64_t passes;           /* passes whose result was swapped in */
	uint64_t segments_cleaned; /* output segments swapped in */
	int64_t bytes_read;
	int64_t bytes_written;
	int64_t records_read;
	int64_t records_kept;
	int64_t batches_emptied_unread; /* all records gone, decided from the header alone */
	int64_t markers_removed; /* transaction markers, once their transaction had no batch */
	int64_t horizons_set;    /* batches given a delete horizon (KIP-534) */
	int64_t horizon_next;    /* a pass is due then, dirty records or not; INT64_MAX: none */
	int64_t duration_ms;     /* in the cleaner thread */
	int64_t first_dirty;     /* where the next pass starts */
	int32_t nice;            /* the last pass's thread ran at this nice value */
	bool running;            /* a pass is in flight */
};
void tl_log_cleaner_stats(const struct tl_log *log, struct tl_log_cleaner_stats *out);

/* The descriptors of deleted segments (retention, truncation, compaction) are closed by
 * a background thread, off the log's thread (log.c "closing the files of deleted
 * segments"). For tests: how many were handed to it since start, and a wait until it
 * has closed every one. */
uint64_t tl_log_closes_handed(void);
void tl_log_closes_drain(void);

/* Runs one compaction pass now, in the calling thread, whatever the dirty ratio (the
 * topic must have cleanup.policy=compact), and swaps the result in: for tests and
 * offline tools. Waits for a pass already in flight first. Returns TL_OK (also when
 * nothing was cleanable), TL_ERR_INVALID (not compacted), a job error, or
 * TL_ERR_KAFKA_STORAGE_ERROR when the swap failed (the log is FAILED). */
tl_err tl_log_compact(struct tl_log *log, int64_t now_ms);

/* Test-only fault switch: the swap stops at @point (1 after the .cleaned file is
 * complete, 2 after its rename to .swap, 3 after the old files are unlinked, 4 after
 * the rename to .log, 5 after the new indexes, before the checkpoint), as a kill -9
 * would: with @exit_process the process _exit()s there, otherwise the log goes FAILED
 * and stops. 0 turns it off. Process-wide. */
void tl_log_cleaner_fault_set(int point, bool exit_process);
/* The most bytes cold reads of direct logs may hold in memory at once, process-wide
 * (default 256 MiB; past it a read is a file range, sent with sendfile). For tests. */
void tl_log_direct_read_limit_set(int64_t bytes);
/* Test hook: the bytes of a cold read-ahead chunk (default 4 MiB). */
void tl_log_readahead_bytes_set(int64_t bytes);

bool tl_log_is_writable(const struct tl_log *log);
/* True when the log writes its segments with O_DIRECT (log.direct.io and a file system
 * that takes it; decided at open). */
bool tl_log_is_direct(const struct tl_log *log);
/* "fdatasync 00000000000004096000.log: EIO", or "" when healthy. */
const char *tl_log_last_error(const struct tl_log *log);

/* ---- metrics ---- */

struct tl_hist;
/* Write rounds (submit to the last completion) and fdatasync rounds, in microseconds;
 * the broker merges them per log dir for its /metrics. Valid while @log is open. */
const struct tl_hist *tl_log_write_hist(const struct tl_log *log);
const struct tl_hist *tl_log_sync_hist(const struct tl_log *log);

#endif
