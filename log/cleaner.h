/* cleaner.h - log compaction's worker half (private to log/): the key -> latest-offset map
 * and the rewrite of closed segments into `.cleaned` files. log.c decides when to clean,
 * hands a job to a thread running tl_cleaner_run(), and swaps the results in on its own
 * thread (see "Compaction" in log.c and docs/design.md).
 *
 * A job reads only sealed segments through its own dup'ed descriptors, so it shares no
 * mutable state with the log: the log thread may append, roll and read meanwhile.
 * Rules (Kafka's LogCleaner, as far as they go here):
 *   - the map covers the dirty range [first_dirty, map_end): non-control, non-aborted
 *     batches' keyed records (compressed ones decompressed), newest offset wins. It holds at most
 *     dedupe_buffer_bytes / TL_CLEANER_SLOT_BYTES keys at a 0.9 load factor; when full
 *     map_end stops at a batch boundary and the next pass goes on from there (a first
 *     batch bigger than the map is mapped as far as it fits, map_end after it);
 *   - a record in a cleaned segment is kept if its key is null, not in the map, or
 *     mapped to an offset <= its own; a kept tombstone (null value) is dropped once its
 *     batch's delete horizon has passed (KIP-534): the first pass that keeps a tombstone
 *     writes its batch with the horizon, the pass's time + delete_retention_ms (see "the
 *     delete horizon" in cleaner.c); job->horizon_next tells the log when a pass with
 *     nothing dirty is due for one;
 *   - a batch of an aborted transaction loses all its records;
 *   - a control batch (transaction marker) is kept whole, or removed once no batch of
 *     its transaction is left (Kafka's rule: the pass, which reads from the log start,
 *     met none of that producer's transactional batches since its previous marker, so
 *     a transaction's marker goes one pass after its last batch) and the horizon the
 *     first such pass gave it has passed; never when it is its producer's last batch or
 *     the first or last batch of its output segment (then it stays whole);
 *   - a compressed batch that loses records is compressed again with its own codec (one
 *     left with none becomes a header-only batch without a codec);
 *   - a batch left with no record is dropped, except the last batch of its producer
 *     (idempotent dedupe and epochs are rebuilt from it; Kafka keeps it too) and the
 *     first and last batch of each output segment (the segment keeps its base offset
 *     and ends where the next one starts): those stay as header-only batches with
 *     recordsCount 0; a boundary one that is not its producer's last also loses its
 *     producer id, epoch, sequence and transactional flag, so that it no longer holds
 *     its transaction's marker in the log;
 *   - a kept batch keeps baseOffset, lastOffsetDelta, timestamps, producer id, epoch and
 *     base sequence; only recordsCount, batchLength and the CRC change, and, when it
 *     gets a delete horizon, attribute bit 6, baseTimestamp and the records' timestamp
 *     deltas (every record's timestamp stays what it was). */
#ifndef TL_LOG_CLEANER_H
#define TL_LOG_CLEANER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/error.h"

#define TL_CLEANER_SLOT_BYTES 24 /* 128-bit key hash + i64 offset */

/* ---- the offset map ---- */

struct tl_cleaner_slot {
	uint64_t h1;
	uint64_t h2;
	int64_t offset; /* -1: empty */
};

struct tl_cleaner_map {
	struct tl_cleaner_slot *slots;
	uint64_t slot_count; /* power of two */
	uint64_t used;
	uint64_t used_max;       /* 90% of slot_count */
	uint64_t slot_count_max; /* log.cleaner.dedupe.buffer.size / TL_CLEANER_SLOT_BYTES */
};

/* Sizes the map for @keys_hint keys, within @buffer_bytes. TL_ERR_NOMEM or TL_OK. */
tl_err tl_cleaner_map_init(struct tl_cleaner_map *map, uint64_t keys_hint, int64_t buffer_bytes);
void tl_cleaner_map_deinit(struct tl_cleaner_map *map);
/* Records @offset for @key (newer offsets only grow). False when the map is full. */
bool tl_cleaner_map_put(struct tl_cleaner_map *map, const uint8_t *key, size_t len, int64_t offset);
/* The offset recorded for @key, or -1. */
int64_t tl_cleaner_map_get(const struct tl_cleaner_map *map, const uint8_t *key, size_t len);
/* Room for @count more keys. */
bool tl_cleaner_map_has_room(const struct tl_cleaner_map *map, uint64_t count);
/* Grows the map (doubling, within its buffer) until @count more keys fit: TL_OK,
 * TL_ERR_LIMIT (the buffer is full) or TL_ERR_NOMEM. */
tl_err tl_cleaner_map_reserve(struct tl_cleaner_map *map, uint64_t count);

/* ---- jobs ---- */

struct tl_cleaner_input {
	int fd;              /* the job's own dup */
	int64_t base_offset; /* of the segment */
	int64_t bytes;       /* sealed and durable */
	int64_t next_offset; /* the next segment's base */
};

struct tl_cleaner_aborted {
	int64_t producer_id;
	int64_t first_offset;
	int64_t last_offset; /* the ABORT marker's */
};

struct tl_cleaner_last {
	int64_t last_offset; /* of the producer's newest batch; sorted by it */
	int64_t producer_id;
};

/* One output segment: inputs [first, first + count) rewritten into
 * `<base>.<end>.cleaned` (20 digits each) in the log directory. */
struct tl_cleaner_group {
	uint32_t first;
	uint32_t count;
	int64_t base_offset;
	int64_t end_offset; /* next_offset of its last input */
	int64_t bytes_in;
	int64_t bytes_out;
	bool written;  /* a .cleaned file exists (output differs from the input) */
	bool swapping; /* renamed to .swap by the log thread (log.c) */
};

struct tl_cleaner_job {
	/* In: owned by the job, set before the thread starts. */
	int dir_fd; /* dup of the log directory */
	struct tl_cleaner_input *inputs;
	uint32_t input_count;
	int64_t first_dirty;
	int64_t clean_end; /* next_offset of the last input */
	int64_t segment_bytes_max;
	int64_t dedupe_buffer_bytes;
	int64_t io_bytes_per_sec; /* <= 0: no throttle */
	int nice; /* in: the thread's nice value (log.c's thread sets it); out: what it ran at */
	int64_t delete_retention_ms;
	int64_t now_ms;
	struct tl_cleaner_aborted *aborted; /* by last_offset */
	uint32_t aborted_count;
	struct tl_cleaner_last *lasts; /* by last_offset */
	uint32_t last_count;
	atomic_bool cancel; /* set by the log thread: stop at the next batch */

	/* Out: read by the log thread once done is set. */
	atomic_bool done;
	tl_err err;
	char error[160];
	int64_t map_end; /* the next pass's first dirty offset */
	struct tl_cleaner_group *groups;
	uint32_t group_count;
	int64_t bytes_read;
	int64_t bytes_written;
	int64_t records_read;
	int64_t records_kept;
	int64_t batches_emptied_unread; /* no survivor inside: dropped or left a header,
					 * decided from the header alone */
	int64_t markers_removed;
	int64_t marker_removed_last; /* offset of the newest marker removed; -1: none */
	int64_t horizons_set;        /* batches written with a new delete horizon */
	int64_t horizon_next;        /* the earliest future horizon of a batch that stays with a
				      * tombstone or marker it may drop then; INT64_MAX: none */
	/* The offsets of the ABORT markers removed, ascending: their aborted transactions
	 * leave the log's index when their group is swapped in (Kafka's cleaner rebuilds
	 * the .txnindex without them), or a read_committed consumer, told of an aborted
	 * transaction whose marker is gone, would skip that producer's batches up to its
	 * next ABORT marker, committed ones included. */
	int64_t *aborts_removed;
	uint32_t aborts_removed_count;
	uint32_t aborts_removed_cap;
	int64_t duration_ms;
	int64_t cpu_us; /* the pass's thread CPU time (user + system) */
};

/* Runs @job to completion (or cancellation): builds the map, then writes a fsynced
 * `.cleaned` file for each group whose output differs from its inputs. Sets done last.
 * Thread: any; touches only the job. */
void tl_cleaner_run(struct tl_cleaner_job *job);

/* Frees the job's arrays and closes its descriptors; the caller frees @job. */
void tl_cleaner_job_deinit(struct tl_cleaner_job *job);

/* `<base>.<end>.<suffix>` (cleaned or swap). */
void tl_cleaner_file_name(char *out, size_t out_bytes, int64_t base, int64_t end,
			  const char *suffix);
/* Parses such a name; false when @name is not one with @suffix. */
bool tl_cleaner_file_parse(const char *name, const char *suffix, int64_t *base_out,
			   int64_t *end_out);

#endif
