/* ring.h - asynchronous disk I/O for one event loop: io_uring, or a synchronous
 * fallback (pwritev + fdatasync) where io_uring cannot be set up (seccomp,
 * kernel.io_uring_disabled). Both engines look the same to callers: queue ops, submit,
 * and later reap completions, whose callbacks run on the loop's thread.
 *
 * (1) An op's buffers (iovecs and the bytes they point to) belong to the kernel from
 *     queueing until its done callback runs; assert !op->in_flight before reuse.
 * (2) A writev op completes only when every byte is written or an error occurs:
 *     short writes are resubmitted inside the ring.
 * (3) Completions are delivered in no particular order; callers that need
 *     write-then-sync ordering queue the sync from the write's callback.
 * tl_ring_fd() is readable while completions wait, so the loop can poll it with epoll.
 * The environment variable TALLY_IO_ENGINE=sync makes AUTO behave as SYNC (tests use it
 * to run the fallback path). */
#ifndef TL_COMMON_RING_H
#define TL_COMMON_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "tally/error.h"

enum tl_ring_mode {
	TL_RING_MODE_AUTO = 0,  /* io_uring, else sync with one warning */
	TL_RING_MODE_URING = 1, /* io_uring or fail */
	TL_RING_MODE_SYNC = 2,  /* pwritev + fdatasync on the caller's thread */
};

enum tl_ring_op_kind {
	TL_RING_OP_WRITEV = 0,
	TL_RING_OP_FDATASYNC = 1,
	TL_RING_OP_READ = 2,
	TL_RING_OP_KIND_COUNT = 3,
};

struct tl_ring_op;
typedef void (*tl_ring_done_fn)(struct tl_ring_op *op);

struct tl_ring_op {
	tl_ring_done_fn done; /* called once per queued op, on the loop thread */
	void *ctx;            /* the caller's */
	int64_t res;          /* after completion: bytes transferred, or -errno */
	/* Private to the ring. */
	uint8_t kind;
	bool in_flight;
	int fd;
	int64_t offset;
	struct iovec *iov;
	int iov_count;
	int buf_index; /* registered buffer of a fixed write, else -1 */
	int64_t bytes_done;
	int64_t bytes_want;
	struct iovec one; /* the single buffer of a read */
	struct tl_ring_op *next;
};

struct tl_ring;

/* Creates a ring with room for @entries in-flight ops. Returns NULL with *err_out
 * set when @mode is URING and io_uring is unavailable, or on OOM. */
struct tl_ring *tl_ring_create(unsigned entries, enum tl_ring_mode mode, tl_err *err_out);
/* Waits for in-flight ops, then frees the ring. Callbacks of those ops still run. */
void tl_ring_destroy(struct tl_ring *ring);
bool tl_ring_is_uring(const struct tl_ring *ring);

/* Queue ops. @iov must stay valid until done; the ring may modify it to resubmit a short
 * write. Ops beyond the ring's room wait in a backlog and go out as room frees. */
void tl_ring_writev(struct tl_ring *ring, struct tl_ring_op *op, int fd, struct iovec *iov,
		    int iov_count, int64_t offset);
/* As tl_ring_writev with one iovec, which lies wholly inside the buffer registered as
 * @slot (tl_ring_buffer_register): io_uring's WRITE_FIXED, so the kernel does not pin
 * and unpin the pages for each write. */
void tl_ring_write_fixed(struct tl_ring *ring, struct tl_ring_op *op, int fd, struct iovec *iov,
			 int slot, int64_t offset);
/* Makes [@offset, @offset + @bytes) of @fd and the metadata needed to read it durable
 * (@bytes 0: the whole file). io_uring writes back and waits for that range only, so
 * pages written meanwhile beyond it are left to the next sync; the sync engine syncs
 * the whole file. A writeback error anywhere in the file is reported either way. */
void tl_ring_fdatasync(struct tl_ring *ring, struct tl_ring_op *op, int fd, int64_t offset,
		       int64_t bytes);
void tl_ring_read(struct tl_ring *ring, struct tl_ring_op *op, int fd, void *buf, uint32_t bytes,
		  int64_t offset);

/* Registered (fixed) buffers. The kernel pins @bytes at @base once (RLIMIT_MEMLOCK
 * counts them unless the process has CAP_IPC_LOCK) until unregistered or the ring is
 * destroyed. A ring registers at most TL_RING_FIXED_BYTES_MAX in all. Returns TL_OK and
 * the slot; TL_ERR_LIMIT when the ring's slots or bytes are used up; TL_ERR_IO when the
 * engine is not io_uring or the kernel refuses (errno says why: ENOMEM for the memlock
 * limit). The caller writes with plain writev then. Unregister a slot only when no op
 * of it is queued or in flight (a queued op reads the slot when it is submitted). */
#define TL_RING_FIXED_SLOTS     1024
#define TL_RING_FIXED_BYTES_MAX ((size_t)1 << 30)
tl_err tl_ring_buffer_register(struct tl_ring *ring, void *base, size_t bytes, int *slot_out);
void tl_ring_buffer_unregister(struct tl_ring *ring, int slot);

struct tl_ring_stats {
	uint64_t fixed_writes; /* write ops sent as WRITE_FIXED (resubmits included) */
	uint64_t writes;       /* all write ops sent, fixed or not */
	uint64_t fixed_bytes;  /* registered now */
	uint32_t fixed_count;  /* slots in use */
};
void tl_ring_stats(const struct tl_ring *ring, struct tl_ring_stats *out);

/* Hands queued ops to the kernel (sync mode: performs them). Call once per loop turn. */
void tl_ring_submit(struct tl_ring *ring);
/* A descriptor that is readable while completions wait to be reaped. */
int tl_ring_fd(const struct tl_ring *ring);
/* Runs done callbacks for completed ops; returns how many ran. Never blocks. */
unsigned tl_ring_reap(struct tl_ring *ring);
/* Blocks until at least one completion is ready or nothing is in flight, then reaps. */
unsigned tl_ring_wait(struct tl_ring *ring);
/* Ops queued or in flight. */
unsigned tl_ring_pending(const struct tl_ring *ring);

/* Test hook: the @nth (from 1) op of @kind after this call completes with -@errno_value
 * instead of running (@errno_value 0: having transferred nothing); with @persistent
 * every later op of that kind fails too. */
void tl_ring_fault_set(struct tl_ring *ring, enum tl_ring_op_kind kind, int errno_value,
		       unsigned nth, bool persistent);

#endif
