/* ring.c - disk I/O through io_uring, or a synchronous fallback; see ring.h.
 * Ops wait in a backlog until tl_ring_submit() moves them into the submission queue
 * (io_uring) or performs them (sync). Completions are delivered by tl_ring_reap(): CQEs
 * from the kernel, plus a local done list for sync-mode ops and injected faults. An
 * eventfd (registered with io_uring, written by hand for the done list) makes completions
 * visible to epoll.
 * (1) pending = ops queued or in flight; an op is in exactly one of: backlog, kernel,
 *     done list, or none (its callback ran).
 * (2) A callback may queue more ops; reaping submits them before it returns, so a
 *     write-then-sync chain does not wait for the next loop turn. */
#include "common/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <liburing.h>

#include "common/assert.h"
#include "common/diag.h"

struct ring_fault {
	int errno_value;
	unsigned nth;
	unsigned seen;
	bool persistent;
	bool armed;
};

struct tl_ring {
	bool uring;
	struct io_uring io;
	int event_fd;
	unsigned entries;
	unsigned in_kernel;
	unsigned pending;
	struct tl_ring_op *backlog_head, *backlog_tail;
	struct tl_ring_op *done_head, *done_tail;
	struct ring_fault faults[TL_RING_OP_KIND_COUNT];
	size_t *fixed_used; /* bytes per slot (0: free), once the sparse table is registered */
	bool fixed_off;     /* the kernel refused the table: never ask again */
	struct tl_ring_stats stats;
};

static void list_push(struct tl_ring_op **head, struct tl_ring_op **tail, struct tl_ring_op *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static struct tl_ring_op *list_pop(struct tl_ring_op **head, struct tl_ring_op **tail)
{
	struct tl_ring_op *op = *head;
	if (op) {
		*head = op->next;
		if (!*head)
			*tail = NULL;
		op->next = NULL;
	}
	return op;
}

static void ring_signal(struct tl_ring *ring)
{
	uint64_t one = 1;
	ssize_t n = write(ring->event_fd, &one, sizeof(one));
	(void)n; /* EAGAIN only when the counter is saturated: already readable */
}

struct tl_ring *tl_ring_create(unsigned entries, enum tl_ring_mode mode, tl_err *err_out)
{
	struct tl_ring *ring = calloc(1, sizeof(*ring));
	if (!ring) {
		*err_out = TL_ERR_NOMEM;
		return NULL;
	}
	ring->entries = entries;
	ring->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ring->event_fd == -1) {
		free(ring);
		*err_out = TL_ERR_IO;
		return NULL;
	}
	const char *env = getenv("TALLY_IO_ENGINE");
	if (mode == TL_RING_MODE_AUTO && env && strcmp(env, "sync") == 0)
		mode = TL_RING_MODE_SYNC;
	if (mode != TL_RING_MODE_SYNC) {
		int rc = io_uring_queue_init(entries, &ring->io, 0);
		if (rc == 0 && io_uring_register_eventfd(&ring->io, ring->event_fd) == 0) {
			ring->uring = true;
		} else {
			if (rc == 0)
				io_uring_queue_exit(&ring->io);
			int e = rc < 0 ? -rc : errno;
			if (mode == TL_RING_MODE_URING) {
				tl_crit("ring: io_uring_queue_init failed err=%s; likely seccomp or "
					"kernel.io_uring_disabled=1",
					strerrorname_np(e));
				close(ring->event_fd);
				free(ring);
				*err_out = TL_ERR_IO;
				return NULL;
			}
			tl_warn("ring: io_uring_queue_init failed, using pwritev+fdatasync err=%s",
				strerrorname_np(e));
		}
	}
	*err_out = TL_OK;
	return ring;
}

bool tl_ring_is_uring(const struct tl_ring *ring)
{
	return ring->uring;
}

int tl_ring_fd(const struct tl_ring *ring)
{
	return ring->event_fd;
}

unsigned tl_ring_pending(const struct tl_ring *ring)
{
	return ring->pending;
}

void tl_ring_fault_set(struct tl_ring *ring, enum tl_ring_op_kind kind, int errno_value,
		       unsigned nth, bool persistent)
{
	TL_ASSERT(kind < TL_RING_OP_KIND_COUNT);
	struct ring_fault *f = &ring->faults[kind];
	f->errno_value = errno_value;
	f->nth = nth;
	f->seen = 0;
	f->persistent = persistent;
	f->armed = nth > 0;
}

/* Does the fault switch claim this op? */
static bool fault_hit(struct tl_ring *ring, struct tl_ring_op *op)
{
	struct ring_fault *f = &ring->faults[op->kind];
	if (!f->armed)
		return false;
	f->seen++;
	if (f->seen < f->nth || (f->seen > f->nth && !f->persistent))
		return false;
	op->res = -f->errno_value;
	return true;
}

static void ring_queue(struct tl_ring *ring, struct tl_ring_op *op)
{
	TL_ASSERT(!op->in_flight);
	op->in_flight = true;
	op->res = 0;
	op->bytes_done = 0;
	ring->pending++;
	if (fault_hit(ring, op)) {
		list_push(&ring->done_head, &ring->done_tail, op);
		ring_signal(ring);
		return;
	}
	list_push(&ring->backlog_head, &ring->backlog_tail, op);
}

static int64_t iov_bytes(const struct iovec *iov, int count)
{
	int64_t n = 0;
	for (int i = 0; i < count; i++)
		n += (int64_t)iov[i].iov_len;
	return n;
}

void tl_ring_writev(struct tl_ring *ring, struct tl_ring_op *op, int fd, struct iovec *iov,
		    int iov_count, int64_t offset)
{
	op->kind = TL_RING_OP_WRITEV;
	op->fd = fd;
	op->iov = iov;
	op->iov_count = iov_count;
	op->buf_index = -1;
	op->offset = offset;
	op->bytes_want = iov_bytes(iov, iov_count);
	ring_queue(ring, op);
}

void tl_ring_write_fixed(struct tl_ring *ring, struct tl_ring_op *op, int fd, struct iovec *iov,
			 int slot, int64_t offset)
{
	TL_ASSERT(ring->uring && ring->fixed_used && slot >= 0 && slot < TL_RING_FIXED_SLOTS &&
		  ring->fixed_used[slot]);
	tl_ring_writev(ring, op, fd, iov, 1, offset);
	op->buf_index = slot;
}

tl_err tl_ring_buffer_register(struct tl_ring *ring, void *base, size_t bytes, int *slot_out)
{
	*slot_out = -1;
	if (!ring->uring || ring->fixed_off) {
		errno = EOPNOTSUPP;
		return TL_ERR_IO;
	}
	if (bytes == 0 || bytes > TL_RING_FIXED_BYTES_MAX - ring->stats.fixed_bytes) {
		errno = ENOBUFS;
		return TL_ERR_LIMIT;
	}
	if (!ring->fixed_used) {
		size_t *used = calloc(TL_RING_FIXED_SLOTS, sizeof(*used));
		if (!used)
			return TL_ERR_NOMEM;
		int rc = io_uring_register_buffers_sparse(&ring->io, TL_RING_FIXED_SLOTS);
		if (rc < 0) {
			free(used);
			ring->fixed_off = true;
			errno = -rc;
			return TL_ERR_IO;
		}
		ring->fixed_used = used;
	}
	int slot = 0;
	while (slot < TL_RING_FIXED_SLOTS && ring->fixed_used[slot])
		slot++;
	if (slot == TL_RING_FIXED_SLOTS) {
		errno = ENOBUFS;
		return TL_ERR_LIMIT;
	}
	struct iovec iov = {.iov_base = base, .iov_len = bytes};
	int rc = io_uring_register_buffers_update_tag(&ring->io, (unsigned)slot, &iov, NULL, 1);
	if (rc < 0) {
		errno = -rc;
		return TL_ERR_IO;
	}
	ring->fixed_used[slot] = bytes;
	ring->stats.fixed_bytes += bytes;
	ring->stats.fixed_count++;
	*slot_out = slot;
	return TL_OK;
}

void tl_ring_buffer_unregister(struct tl_ring *ring, int slot)
{
	TL_ASSERT(ring->fixed_used && slot >= 0 && slot < TL_RING_FIXED_SLOTS &&
		  ring->fixed_used[slot]);
	struct iovec iov = {0};
	int rc = io_uring_register_buffers_update_tag(&ring->io, (unsigned)slot, &iov, NULL, 1);
	/* On failure the slot stays taken, never reused for another buffer; its bytes leave
	 * the count either way (the caller frees the memory). */
	if (rc < 0)
		tl_warn("ring: cannot unregister a fixed buffer err=%s", strerrorname_np(-rc));
	ring->stats.fixed_bytes -= ring->fixed_used[slot];
	ring->stats.fixed_count--;
	if (rc >= 0)
		ring->fixed_used[slot] = 0;
}

void tl_ring_stats(const struct tl_ring *ring, struct tl_ring_stats *out)
{
	*out = ring->stats;
}

void tl_ring_fdatasync(struct tl_ring *ring, struct tl_ring_op *op, int fd, int64_t offset,
		       int64_t bytes)
{
	TL_ASSERT(offset >= 0 && bytes >= 0);
	op->kind = TL_RING_OP_FDATASYNC;
	op->fd = fd;
	op->iov = NULL;
	op->iov_count = 0;
	op->buf_index = -1;
	op->offset = offset;
	op->bytes_want = bytes; /* the range; never a short transfer */
	ring_queue(ring, op);
}

void tl_ring_read(struct tl_ring *ring, struct tl_ring_op *op, int fd, void *buf, uint32_t bytes,
		  int64_t offset)
{
	op->kind = TL_RING_OP_READ;
	op->fd = fd;
	op->one.iov_base = buf;
	op->one.iov_len = bytes;
	op->iov = &op->one;
	op->iov_count = 1;
	op->buf_index = -1;
	op->offset = offset;
	op->bytes_want = bytes;
	ring_queue(ring, op);
}

/* Drops @done bytes from the front of a short write's iovec array. */
static void iov_advance(struct tl_ring_op *op, int64_t done)
{
	while (done > 0 && op->iov_count > 0) {
		if ((int64_t)op->iov[0].iov_len <= done) {
			done -= (int64_t)op->iov[0].iov_len;
			op->iov++;
			op->iov_count--;
		} else {
			op->iov[0].iov_base = (uint8_t *)op->iov[0].iov_base + done;
			op->iov[0].iov_len -= (size_t)done;
			done = 0;
		}
	}
}

/* Sync engine: performs one op now. */
static void sync_perform(struct tl_ring_op *op)
{
	if (op->kind == TL_RING_OP_FDATASYNC) {
		op->res = fdatasync(op->fd) == 0 ? 0 : -errno;
		return;
	}
	while (op->bytes_done < op->bytes_want) {
		ssize_t n;
		off_t at = (off_t)(op->offset + op->bytes_done);
		if (op->kind == TL_RING_OP_WRITEV)
			n = pwritev(op->fd, op->iov, op->iov_count, at);
		else
			n = preadv(op->fd, op->iov, op->iov_count, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			op->res = -errno;
			return;
		}
		if (n == 0)
			break; /* end of file on a read */
		op->bytes_done += n;
		iov_advance(op, n);
	}
	op->res = op->bytes_done;
}

/* The kernel takes an fsync range as a 64-bit offset and a 32-bit length (0: to the end
 * of the file); a range too long for it syncs from its start to the end. */
static void prep_fdatasync(struct io_uring_sqe *sqe, const struct tl_ring_op *op)
{
	io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
	if (op->bytes_want == 0)
		return;
	sqe->off = (uint64_t)op->offset;
	sqe->len = op->bytes_want <= UINT32_MAX ? (uint32_t)op->bytes_want : 0;
	if (sqe->off > 0 && sqe->len == 0)
		sqe->off = 0; /* off > 0 with len 0 would sync a single byte */
}

void tl_ring_submit(struct tl_ring *ring)
{
	if (!ring->backlog_head)
		return;
	if (!ring->uring) {
		struct tl_ring_op *op;
		while ((op = list_pop(&ring->backlog_head, &ring->backlog_tail))) {
			if (op->kind == TL_RING_OP_WRITEV)
				ring->stats.writes++;
			sync_perform(op);
			list_push(&ring->done_head, &ring->done_tail, op);
		}
		ring_signal(ring);
		return;
	}
	unsigned queued = 0;
	while (ring->backlog_head && ring->in_kernel < ring->entries) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->io);
		if (!sqe)
			break;
		struct tl_ring_op *op = list_pop(&ring->backlog_head, &ring->backlog_tail);
		off_t at = (off_t)(op->offset + op->bytes_done);
		if (op->kind == TL_RING_OP_WRITEV && op->buf_index >= 0) {
			TL_ASSERT_DEBUG(op->iov_count == 1);
			io_uring_prep_write_fixed(sqe, op->fd, op->iov[0].iov_base,
						  (unsigned)op->iov[0].iov_len, (uint64_t)at,
						  op->buf_index);
			ring->stats.fixed_writes++;
			ring->stats.writes++;
		} else if (op->kind == TL_RING_OP_WRITEV) {
			io_uring_prep_writev(sqe, op->fd, op->iov, (unsigned)op->iov_count,
					     (uint64_t)at);
			ring->stats.writes++;
		} else if (op->kind == TL_RING_OP_READ)
			io_uring_prep_readv(sqe, op->fd, op->iov, (unsigned)op->iov_count,
					    (uint64_t)at);
		else
			prep_fdatasync(sqe, op);
		io_uring_sqe_set_data(sqe, op);
		ring->in_kernel++;
		queued++;
	}
	if (queued) {
		int rc;
		do
			rc = io_uring_submit(&ring->io);
		while (rc == -EINTR);
		if (rc < 0)
			tl_crit("ring: io_uring_submit failed err=%s", strerrorname_np(-rc));
	}
}

static void op_complete(struct tl_ring *ring, struct tl_ring_op *op)
{
	TL_ASSERT(op->in_flight);
	TL_ASSERT(ring->pending > 0);
	/* A write that stopped making progress without an error (a 0-byte completion; the
	 * rest of a short transfer is resubmitted) must not tell its caller that every byte
	 * was written: it fails as an I/O error. A short read is an end of file. */
	if (op->kind == TL_RING_OP_WRITEV && op->res >= 0 && op->res < op->bytes_want)
		op->res = -EIO;
	op->in_flight = false;
	ring->pending--;
	op->done(op);
}

/* A kernel completion: finish it, or resubmit the rest of a short transfer. */
static void uring_complete(struct tl_ring *ring, struct tl_ring_op *op, int res)
{
	ring->in_kernel--;
	if (op->kind != TL_RING_OP_FDATASYNC && res > 0 && op->bytes_done + res < op->bytes_want) {
		op->bytes_done += res;
		iov_advance(op, res);
		list_push(&ring->backlog_head, &ring->backlog_tail, op);
		return;
	}
	if (res < 0)
		op->res = res;
	else
		op->res = op->kind == TL_RING_OP_FDATASYNC ? 0 : op->bytes_done + res;
	op_complete(ring, op);
}

unsigned tl_ring_reap(struct tl_ring *ring)
{
	uint64_t counter;
	ssize_t n = read(ring->event_fd, &counter, sizeof(counter));
	(void)n;
	unsigned count = 0;
	for (;;) {
		bool any = false;
		struct tl_ring_op *op;
		while ((op = list_pop(&ring->done_head, &ring->done_tail))) {
			op_complete(ring, op);
			count++;
			any = true;
		}
		if (ring->uring) {
			struct io_uring_cqe *cqe;
			while (io_uring_peek_cqe(&ring->io, &cqe) == 0) {
				struct tl_ring_op *done = io_uring_cqe_get_data(cqe);
				int res = cqe->res;
				io_uring_cqe_seen(&ring->io, cqe);
				uring_complete(ring, done, res);
				count++;
				any = true;
			}
		}
		/* Callbacks may have queued more (a sync after a write): send them now. */
		tl_ring_submit(ring);
		if (!any || ring->uring)
			break;
	}
	return count;
}

unsigned tl_ring_wait(struct tl_ring *ring)
{
	if (ring->pending == 0)
		return 0;
	tl_ring_submit(ring);
	if (ring->uring && !ring->done_head && ring->in_kernel > 0) {
		struct io_uring_cqe *cqe;
		int rc;
		do
			rc = io_uring_wait_cqe(&ring->io, &cqe);
		while (rc == -EINTR);
	}
	return tl_ring_reap(ring);
}

void tl_ring_destroy(struct tl_ring *ring)
{
	while (ring->pending > 0)
		if (tl_ring_wait(ring) == 0 && !ring->uring)
			break;
	if (ring->uring)
		io_uring_queue_exit(&ring->io); /* drops the registered buffers */
	free(ring->fixed_used);
	close(ring->event_fd);
	free(ring);
}
