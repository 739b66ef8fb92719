/* internal.c - appending to and replaying internal topics, see internal.h.
 * (1) An append's bytes stay allocated until its log waiter fires: the log borrows
 *     them until they are durable. */
#include "broker/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/assert.h"
#include "common/diag.h"

#define REPLAY_CHUNK_BYTES (4 << 20)

struct internal_write {
	struct tl_log_waiter waiter; /* first: the waiter is the write */
	struct tl_buf batch;
	tl_internal_done_fn done;
	void *ctx;
};

static void write_durable(struct tl_log_waiter *waiter, tl_err err)
{
	struct internal_write *w = (struct internal_write *)waiter;
	w->done(w->ctx, err == TL_OK ? TL_OK : TL_ERR_KAFKA_STORAGE_ERROR);
	tl_buf_deinit(&w->batch);
	free(w);
}

tl_err tl_internal_append(struct tl_broker *broker, struct tl_partition *partition,
			  struct tl_buf *batch, tl_internal_done_fn done, void *ctx)
{
	struct internal_write *w = calloc(1, sizeof(*w));
	if (!w) {
		tl_buf_deinit(batch);
		return TL_ERR_NOMEM;
	}
	if (partition->topic->cluster && partition->role != TL_REPLICA_LEADER) {
		/* Only a leader appends; a follower's log is the leader's copy. */
		tl_buf_deinit(batch);
		free(w);
		return TL_ERR_NOT_LEADER_OR_FOLLOWER;
	}
	w->batch = *batch;
	tl_buf_init(batch);
	struct tl_batch_header h;
	const char *why = NULL;
	/* Our own bytes: a batch that does not validate is a bug. */
	TL_ASSERT(tl_batch_validate(w->batch.data, w->batch.len, &h, &why) == TL_OK);
	struct tl_log_append_result appended;
	tl_err err = tl_log_append(partition->log, w->batch.data, w->batch.len, &h, &appended);
	if (err != TL_OK) {
		tl_buf_deinit(&w->batch);
		free(w);
		return err;
	}
	w->done = done;
	w->ctx = ctx;
	w->waiter.offset = appended.last_offset;
	w->waiter.done = write_durable;
	tl_broker_mark_dirty(broker, partition);
	tl_log_wait_durable(partition->log, &w->waiter);
	return TL_OK;
}

static tl_err read_fully(int fd, uint8_t *buf, int64_t position, int64_t bytes)
{
	int64_t got = 0;
	while (got < bytes) {
		ssize_t n = pread(fd, buf + got, (size_t)(bytes - got), (off_t)(position + got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return TL_ERR_IO;
		got += n;
	}
	return TL_OK;
}

tl_err tl_internal_replay(struct tl_partition *partition, tl_internal_batch_fn fn, void *ctx)
{
	struct tl_log *log = partition->log;
	int64_t offset = tl_log_start_offset(log);
	/* To the log end: a new leader's log is the partition's truth, and what is above
	 * its high watermark becomes committed as the followers catch up (as Kafka's
	 * coordinators load to the log end). On one node, after recovery, end = HW. */
	int64_t end = tl_log_end_offset(log);
	uint8_t *buf = NULL;
	size_t cap = 0;
	tl_err err = TL_OK;
	while (offset < end && err == TL_OK) {
		struct tl_log_read range;
		err = tl_log_read(log, offset, end, REPLAY_CHUNK_BYTES, true, &range);
		if (err != TL_OK || range.bytes == 0)
			break;
		if ((size_t)range.bytes > cap) {
			uint8_t *bigger = realloc(buf, (size_t)range.bytes);
			if (!bigger) {
				tl_log_read_release(range.segment);
				err = TL_ERR_NOMEM;
				break;
			}
			buf = bigger;
			cap = (size_t)range.bytes;
		}
		err = read_fully(range.fd, buf, range.position, range.bytes);
		tl_log_read_release(range.segment);
		size_t pos = 0, len = (size_t)range.bytes;
		while (err == TL_OK && len - pos >= TL_BATCH_HEADER_BYTES) {
			int64_t size = tl_batch_size(buf + pos, len - pos);
			if (size < TL_BATCH_HEADER_BYTES || (size_t)size > len - pos)
				break;
			struct tl_batch_header h;
			const char *why = NULL;
			if (tl_batch_header_decode(buf + pos, (size_t)size, &h) != TL_OK)
				break;
			if (tl_batch_validate_stored(buf + pos, (size_t)size, &h, &why) == TL_OK)
				fn(ctx, &h, buf + pos, (size_t)size);
			else
				tl_warn("broker: skipping a bad internal batch topic=%s partition=%d "
					"why=\"%s\"",
					partition->topic->name, partition->index, why ? why : "");
			offset = tl_batch_last_offset(&h) + 1;
			pos += (size_t)size;
		}
		if (pos == 0 && err == TL_OK)
			err = TL_ERR_IO; /* the log returned bytes that do not frame */
	}
	free(buf);
	if (err != TL_OK)
		tl_crit("broker: cannot replay internal topic topic=%s partition=%d offset=%" PRId64
			" err=%s",
			partition->topic->name, partition->index, offset, tl_err_name(err));
	return err;
}
