/* baseline.c - what the hardware does without a broker, measured in the same run:
 *
 * Disk: sequential writes of block_bytes, each followed by fdatasync (the broker's
 * cadence: one writev + one fdatasync per flush), in @jobs files in parallel (the broker
 * flushes partitions in parallel), no preallocation (the broker does none). With fio
 * when installed (engine psync, fallocate=none, JSON output: write bandwidth and the
 * fdatasync latency percentiles), else a built-in pwrite + fdatasync writer that times
 * every fdatasync into a histogram.
 *
 * Group commit: the same disk driven the way an ideal broker would drive it at the
 * workload's rate, to show what fsync-before-ack costs there before any broker code runs.
 * A writer thread appends the records that have arrived by the clock (open loop, record i
 * is due at t0 + i / rate) every COMMIT_WRITE_TICK_NS; a committer thread writes whatever
 * has arrived since, fdatasyncs, and acknowledges every record the fdatasync covered,
 * latency counted from its due time. By default one fdatasync is in flight per file, as in
 * log/log.c: a record that arrives during one waits for it and for the next. With more
 * (each through its own open file description), a committer starts an fdatasync as soon
 * as records are waiting and one is free; records are acknowledged in order. With
 * overwrite, the files are zero-filled and synced first, so that the run rewrites
 * allocated blocks (what a log with preallocated, zero-filled segments would do).
 *
 * Network: loopback TCP, @streams sender/receiver thread pairs writing and reading
 * 256 KiB chunks for the given seconds.
 *
 * Disk reads (consume): a file written with O_DIRECT and read back with O_DIRECT, in
 * blocks of tallyd's cold-read chunk, one read at a time: the ceiling of a consume of
 * data in no cache. Built in (no fio needed): one writer, one reader, no latencies. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tb.h"

#define NET_CHUNK_BYTES (256u << 10)
#define FIO_OUTPUT_MAX  (16u << 20)

#define COMMIT_WRITE_TICK_NS (50 * 1000)
#define COMMIT_CHUNK_BYTES   (1u << 20) /* the most one pwrite writes */

/* ---- fio ---- */

static bool fio_installed(void)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	tb_strlcpy(dirs, sizeof(dirs), path ? path : "/usr/bin:/bin");
	for (char *d = strtok(dirs, ":"); d; d = strtok(NULL, ":")) {
		char full[4200];
		snprintf(full, sizeof(full), "%s/fio", d);
		if (access(full, X_OK) == 0)
			return true;
	}
	return false;
}

/* Runs @argv, returns its stdout (malloc'ed) or NULL. */
static char *run_capture(char **argv, char *err, size_t err_size)
{
	int fds[2];
	if (pipe(fds) != 0) {
		snprintf(err, err_size, "pipe: %s", strerror(errno));
		return NULL;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == -1) {
		snprintf(err, err_size, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		int null = open("/dev/null", O_WRONLY);
		if (null != -1)
			dup2(null, STDERR_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap + 1);
	while (out) {
		ssize_t n = read(fds[0], out + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			if (cap >= FIO_OUTPUT_MAX)
				break;
			cap *= 2;
			char *grown = realloc(out, cap + 1);
			if (!grown) {
				free(out);
				out = NULL;
				break;
			}
			out = grown;
		}
	}
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, err_size, "%s exited with status %d", argv[0],
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		free(out);
		return NULL;
	}
	if (out)
		out[len] = '\0';
	return out;
}

/* fio's JSON puts a banner before the object on some versions: skip to the first '{'. */
static void fio_parse(const char *text, struct tb_disk_baseline *out)
{
	const char *brace = strchr(text, '{');
	char err[256];
	struct tb_json *j = brace ? tb_json_parse(brace, err, sizeof(err)) : NULL;
	if (!j) {
		snprintf(out->error, sizeof(out->error), "fio output: %.200s",
			 brace ? err : "no JSON");
		return;
	}
	double bw = tb_json_num_at(j, "jobs.0.write.bw_bytes");
	double io = tb_json_num_at(j, "jobs.0.write.io_bytes");
	double runtime_ms = tb_json_num_at(j, "jobs.0.write.runtime");
	if (!isfinite(bw) || bw <= 0) {
		snprintf(out->error, sizeof(out->error), "fio output has no write bandwidth");
		tb_json_free(j);
		return;
	}
	out->mb_per_s = bw / 1e6;
	out->bytes = isfinite(io) ? (uint64_t)io : 0;
	out->seconds = isfinite(runtime_ms) ? runtime_ms / 1e3 : 0;
	struct tb_latency *l = &out->fdatasync;
	l->count = (uint64_t)fmax(0, tb_json_num_at(j, "jobs.0.sync.total_ios"));
	l->min_ns = (uint64_t)fmax(0, tb_json_num_at(j, "jobs.0.sync.lat_ns.min"));
	l->max_ns = (uint64_t)fmax(0, tb_json_num_at(j, "jobs.0.sync.lat_ns.max"));
	l->mean_ns = fmax(0, tb_json_num_at(j, "jobs.0.sync.lat_ns.mean"));
	const struct tb_json *pct = tb_json_path(j, "jobs.0.sync.lat_ns.percentile");
	for (size_t i = 0; pct && pct->type == TB_JSON_OBJECT && i < pct->count; i++) {
		double p = strtod(pct->keys[i], NULL);
		uint64_t v = (uint64_t)fmax(0, pct->items[i]->number);
		if (fabs(p - 50) < 1e-6)
			l->p50_ns = v;
		else if (fabs(p - 90) < 1e-6)
			l->p90_ns = v;
		else if (fabs(p - 99) < 1e-6)
			l->p99_ns = v;
		else if (fabs(p - 99.9) < 1e-6)
			l->p999_ns = v;
		else if (fabs(p - 99.99) < 1e-6)
			l->p9999_ns = v;
		if (l->curve_count < TB_CURVE_POINTS_MAX - 1) {
			l->curve_p[l->curve_count] = p;
			l->curve_ns[l->curve_count++] = v;
		}
	}
	if (l->curve_count > 0) {
		l->curve_p[l->curve_count] = 100;
		l->curve_ns[l->curve_count++] = l->max_ns;
	}
	out->ok = true;
	tb_json_free(j);
}

static void disk_fio(const char *dir, uint64_t block, int jobs, uint64_t bytes, double max_s,
		     bool direct, struct tb_disk_baseline *out)
{
	char a_dir[600], a_bs[64], a_size[64], a_jobs[32], a_runtime[64];
	snprintf(a_dir, sizeof(a_dir), "--directory=%s", dir);
	snprintf(a_bs, sizeof(a_bs), "--bs=%llu", (unsigned long long)block);
	uint64_t per_job = bytes / (uint64_t)jobs / block * block;
	if (per_job < block)
		per_job = block;
	snprintf(a_size, sizeof(a_size), "--size=%llu", (unsigned long long)per_job);
	snprintf(a_jobs, sizeof(a_jobs), "--numjobs=%d", jobs);
	snprintf(a_runtime, sizeof(a_runtime), "--runtime=%.0fms", max_s * 1000);
	char *argv[] = {"fio", "--name=tally-bench-baseline", a_dir, "--rw=write", a_bs, a_size,
			a_jobs, "--ioengine=psync", "--fdatasync=1",
			/* Direct: allocated ahead, as tallyd's direct log preallocates. */
			direct ? "--fallocate=native" : "--fallocate=none",
			direct ? "--direct=1" : "--direct=0", "--end_fsync=1", "--unlink=1",
			"--group_reporting", a_runtime, "--output-format=json", NULL};
	char err[256];
	char *text = run_capture(argv, err, sizeof(err));
	if (!text) {
		snprintf(out->error, sizeof(out->error), "fio: %.200s", err);
		return;
	}
	fio_parse(text, out);
	free(text);
}

/* Bytes no device or file system compresses or dedupes away (xorshift). */
static void fill_noise(uint8_t *buf, uint64_t n)
{
	uint64_t x = 0x2545f4914f6cdd1dULL;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

/* ---- built-in writer ---- */

/* Writes all @n bytes at @offset. 0, or the errno of the failure (EIO for a write that
 * wrote nothing). */
static int pwrite_all(int fd, const void *buf, size_t n, uint64_t offset)
{
	for (size_t done = 0; done < n;) {
		ssize_t w =
			pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(offset + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		done += (size_t)w;
	}
	return 0;
}

struct writer {
	char path[700];
	bool direct;
	uint64_t block;
	uint64_t bytes;
	int64_t deadline_ns;
	uint64_t written;
	struct tb_hist *hist;
	char error[200];
	pthread_t thread;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	void *mem = NULL;
	if (posix_memalign(&mem, 4096, w->block) != 0)
		mem = NULL;
	uint8_t *buf = mem;
	int fd = open(w->path,
		      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (w->direct ? O_DIRECT : 0), 0600);
	if (fd != -1 && w->direct && fallocate(fd, 0, 0, (off_t)w->bytes) != 0) {
		close(fd);
		fd = -1;
	}
	if (!buf || fd == -1) {
		snprintf(w->error, sizeof(w->error), "open %.120s: %.60s", w->path,
			 strerror(errno));
		free(buf);
		if (fd != -1)
			close(fd);
		return NULL;
	}
	fill_noise(buf, w->block);
	while (w->written < w->bytes && tb_now_ns() < w->deadline_ns) {
		int rc = pwrite_all(fd, buf, w->block, w->written);
		if (rc != 0) {
			snprintf(w->error, sizeof(w->error), "pwrite: %s", strerror(rc));
			goto out;
		}
		int64_t t = tb_now_ns();
		if (fdatasync(fd) != 0) {
			snprintf(w->error, sizeof(w->error), "fdatasync: %s", strerror(errno));
			goto out;
		}
		tb_hist_add(w->hist, (uint64_t)(tb_now_ns() - t));
		w->written += w->block;
	}
out:
	close(fd);
	unlink(w->path);
	free(buf);
	return NULL;
}

static void disk_builtin(const char *dir, uint64_t block, int jobs, uint64_t bytes, double max_s,
			 bool direct, struct tb_disk_baseline *out)
{
	struct writer *w = calloc((size_t)jobs, sizeof(*w));
	struct tb_hist *all = calloc(1, sizeof(*all));
	if (!w || !all) {
		snprintf(out->error, sizeof(out->error), "out of memory");
		free(w);
		free(all);
		return;
	}
	int64_t start = tb_now_ns();
	int started = 0;
	for (int i = 0; i < jobs; i++) {
		snprintf(w[i].path, sizeof(w[i].path), "%s/tally-bench-baseline.%d.%d", dir,
			 (int)getpid(), i);
		w[i].block = block;
		w[i].direct = direct;
		w[i].bytes = bytes / (uint64_t)jobs;
		w[i].deadline_ns = start + (int64_t)(max_s * 1e9);
		w[i].hist = calloc(1, sizeof(struct tb_hist));
		if (!w[i].hist || pthread_create(&w[i].thread, NULL, writer_main, &w[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	double seconds = (double)(tb_now_ns() - start) / 1e9;
	for (int i = 0; i < jobs; i++) {
		if (w[i].error[0] && !out->error[0])
			tb_strlcpy(out->error, sizeof(out->error), w[i].error);
		out->bytes += w[i].written;
		if (w[i].hist)
			tb_hist_merge(all, w[i].hist);
		free(w[i].hist);
	}
	out->seconds = seconds;
	if (started == jobs && !out->error[0] && seconds > 0) {
		out->mb_per_s = (double)out->bytes / seconds / 1e6;
		tb_latency_from_hist(&out->fdatasync, all);
		out->ok = true;
	} else if (!out->error[0]) {
		snprintf(out->error, sizeof(out->error), "could not start the writer threads");
	}
	free(w);
	free(all);
}

/* ---- disk reads ---- */

/* Reads all @n bytes at @offset: 0, or the errno (EIO for a short file). */
static int pread_all(int fd, void *buf, size_t n, uint64_t offset)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(offset + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? errno : EIO;
		done += (size_t)r;
	}
	return 0;
}

void tb_disk_read_baseline_run(const char *dir, uint64_t bytes, uint64_t block_bytes, double max_s,
			       struct tb_disk_read_baseline *out)
{
	memset(out, 0, sizeof(*out));
	out->present = true;
	tb_strlcpy(out->dir, sizeof(out->dir), dir);
	uint64_t block = (block_bytes + 4095) / 4096 * 4096;
	if (block < 4096)
		block = 4096;
	out->block_bytes = block;
	bytes = bytes / block * block;
	if (bytes < block)
		bytes = block;
	char path[700];
	snprintf(path, sizeof(path), "%s/tally-bench-read.%d", dir, (int)getpid());
	void *mem = NULL;
	if (posix_memalign(&mem, 4096, block) != 0) {
		snprintf(out->error, sizeof(out->error), "out of memory");
		return;
	}
	uint8_t *buf = mem;
	fill_noise(buf, block);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
	if (fd == -1) {
		snprintf(out->error, sizeof(out->error), "open %.120s with O_DIRECT: %.60s", path,
			 strerror(errno));
		free(buf);
		return;
	}
	(void)fallocate(fd, 0, 0, (off_t)bytes); /* as tallyd's segments; optional */
	int rc = 0;
	for (uint64_t off = 0; off < bytes && rc == 0; off += block)
		rc = pwrite_all(fd, buf, block, off);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = errno;
	if (rc != 0) {
		snprintf(out->error, sizeof(out->error), "writing the file: %s", strerror(rc));
		goto out;
	}
	int64_t start = tb_now_ns();
	int64_t deadline = start + (int64_t)(max_s * 1e9);
	while (out->bytes < bytes && tb_now_ns() < deadline) {
		rc = pread_all(fd, buf, block, out->bytes);
		if (rc != 0) {
			snprintf(out->error, sizeof(out->error), "pread: %s", strerror(rc));
			goto out;
		}
		out->bytes += block;
	}
	out->seconds = (double)(tb_now_ns() - start) / 1e9;
	if (out->seconds > 0 && out->bytes > 0) {
		out->mb_per_s = (double)out->bytes / out->seconds / 1e6;
		out->ok = true;
	}
out:
	close(fd);
	unlink(path);
	free(buf);
}

void tb_disk_baseline_run(const char *dir, uint64_t block_bytes, int jobs, int copies,
			  uint64_t bytes, double max_s, const char *engine, bool direct,
			  struct tb_disk_baseline *out)
{
	memset(out, 0, sizeof(*out));
	out->present = true;
	out->direct = direct;
	block_bytes = (block_bytes + 4095) / 4096 * 4096;
	if (block_bytes < 4096)
		block_bytes = 4096;
	if (jobs < 1)
		jobs = 1;
	if (copies < 1)
		copies = 1;
	/* Every copy writes what one copy does: as many writers, as many bytes each. */
	out->copies = copies;
	jobs *= copies;
	bytes *= (uint64_t)copies;
	if (bytes < block_bytes * (uint64_t)jobs)
		bytes = block_bytes * (uint64_t)jobs;
	tb_strlcpy(out->dir, sizeof(out->dir), dir);
	out->block_bytes = block_bytes;
	out->jobs = jobs;
	bool use_fio =
		strcmp(engine, "fio") == 0 || (strcmp(engine, "auto") == 0 && fio_installed());
	tb_strlcpy(out->engine, sizeof(out->engine), use_fio ? "fio" : "builtin");
	if (use_fio)
		disk_fio(dir, block_bytes, jobs, bytes, max_s, direct, out);
	else
		disk_builtin(dir, block_bytes, jobs, bytes, max_s, direct, out);
	out->total_mb_per_s = out->mb_per_s;
	out->mb_per_s = out->total_mb_per_s / copies;
}

/* ---- group commit at the workload's rate ---- */

struct commit_range { /* records [first, end) under one fdatasync */
	uint64_t first;
	uint64_t end;
	int64_t done_ns; /* 0 while its fdatasync runs */
};

struct committer {
	char path[700];
	int fds[TB_COMMIT_SYNCS_MAX]; /* one open file description per fdatasync in flight */
	int syncs_max;
	double per_ns; /* records per ns */
	uint64_t record_bytes;
	int64_t t0_ns;
	int64_t measure_from_ns;
	int64_t deadline_ns;
	const uint8_t *chunk;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t acked; /* a range was acknowledged, or stop */
	uint64_t written;     /* bytes in the file, whole records */
	uint64_t claimed;     /* records under an fdatasync that has started */
	struct commit_range ranges[TB_COMMIT_SYNCS_MAX]; /* not yet acknowledged, by sequence */
	uint64_t next_seq;
	uint64_t head_seq; /* oldest range not yet acknowledged */
	int64_t last_ack_ns;
	bool stop;
	uint64_t syncs;
	struct tb_hist latency;
	struct tb_hist fdatasync;
	char error[200];
};

struct committer_thread {
	struct committer *c;
	int slot;
	pthread_t thread;
};

static int64_t commit_due_ns(const struct committer *c, uint64_t record)
{
	return c->t0_ns + (int64_t)((double)record / c->per_ns);
}

/* Appends every record due by now. Called with c->lock held. */
static void commit_write_due(struct committer *c)
{
	int64_t now = tb_now_ns();
	uint64_t due = ((uint64_t)((double)(now - c->t0_ns) * c->per_ns) + 1) * c->record_bytes;
	while (c->written < due && !c->error[0]) {
		uint64_t left = due - c->written;
		size_t n = left < COMMIT_CHUNK_BYTES ? (size_t)left : COMMIT_CHUNK_BYTES;
		int rc = pwrite_all(c->fds[0], c->chunk, n, c->written);
		if (rc != 0)
			snprintf(c->error, sizeof(c->error), "pwrite: %s", strerror(rc));
		else
			c->written += n;
	}
}

static bool commit_stopping(struct committer *c)
{
	return c->stop || c->error[0] || tb_now_ns() >= c->deadline_ns || tb_stop_requested;
}

static void *commit_writer_main(void *arg)
{
	struct committer *c = arg;
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	for (;;) {
		pthread_mutex_lock(&c->lock);
		bool stop = commit_stopping(c);
		if (!stop)
			commit_write_due(c);
		pthread_mutex_unlock(&c->lock);
		if (stop)
			return NULL;
		tb_sleep_until(tb_now_ns() + COMMIT_WRITE_TICK_NS);
	}
}

/* Acknowledges, in order, every range whose fdatasync and all earlier ones returned: a
 * record counts as durable only when everything before it is (the high watermark). */
static void commit_ack(struct committer *c)
{
	while (c->head_seq < c->next_seq) {
		struct commit_range *r = &c->ranges[c->head_seq % TB_COMMIT_SYNCS_MAX];
		if (r->done_ns == 0)
			return;
		if (r->done_ns > c->last_ack_ns)
			c->last_ack_ns = r->done_ns;
		for (uint64_t i = r->first; i < r->end; i++) {
			int64_t due = commit_due_ns(c, i);
			if (due >= c->measure_from_ns)
				tb_hist_add(&c->latency, (uint64_t)(c->last_ack_ns - due));
		}
		c->head_seq++;
		pthread_cond_broadcast(&c->acked);
	}
}

static void *commit_sync_main(void *arg)
{
	struct committer_thread *t = arg;
	struct committer *c = t->c;
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	pthread_mutex_lock(&c->lock);
	while (!commit_stopping(c)) {
		commit_write_due(c);
		uint64_t target = c->written / c->record_bytes;
		if (target == c->claimed) {
			int64_t next = commit_due_ns(c, target);
			pthread_mutex_unlock(&c->lock);
			tb_sleep_until(next);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		if (c->next_seq - c->head_seq == (uint64_t)c->syncs_max) {
			/* Every slot is taken: ranges retire in order, as the log's do. */
			pthread_cond_wait(&c->acked, &c->lock);
			continue;
		}
		uint64_t seq = c->next_seq++;
		struct commit_range *r = &c->ranges[seq % TB_COMMIT_SYNCS_MAX];
		*r = (struct commit_range){.first = c->claimed, .end = target};
		c->claimed = target;
		pthread_mutex_unlock(&c->lock);
		int64_t start = tb_now_ns();
		int err = fdatasync(c->fds[t->slot]) == 0 ? 0 : errno;
		int64_t done = tb_now_ns();
		pthread_mutex_lock(&c->lock);
		if (err != 0) {
			snprintf(c->error, sizeof(c->error), "fdatasync: %s", strerror(err));
			break;
		}
		tb_hist_add(&c->fdatasync, (uint64_t)(done - start));
		c->syncs++;
		r->done_ns = done;
		commit_ack(c);
	}
	c->stop = true;
	pthread_cond_broadcast(&c->acked);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Writes @bytes of zeros into @j's file and fdatasyncs them, so that the run overwrites
 * allocated blocks inside the file's size: an fdatasync then has data to flush but no
 * metadata to commit. */
static void commit_prefill(struct committer *j, uint64_t bytes, struct tb_commit_baseline *out)
{
	static const uint8_t zeros[64 << 10];
	for (uint64_t off = 0; off < bytes && !out->error[0]; off += sizeof(zeros)) {
		int rc = pwrite_all(j->fds[0], zeros, sizeof(zeros), off);
		if (rc != 0)
			snprintf(out->error, sizeof(out->error), "zero-filling %.200s: %.40s",
				 j->path, strerror(rc));
	}
	if (!out->error[0] && fdatasync(j->fds[0]) != 0)
		snprintf(out->error, sizeof(out->error), "fdatasync %.200s: %.40s", j->path,
			 strerror(errno));
	out->prefill_bytes += bytes;
}

void tb_commit_baseline_run(const char *dir, double rate, uint64_t record_bytes, int jobs,
			    int syncs_in_flight, bool overwrite, double seconds, double warmup_s,
			    struct tb_commit_baseline *out)
{
	memset(out, 0, sizeof(*out));
	out->present = true;
	if (jobs < 1)
		jobs = 1;
	if (record_bytes < 1)
		record_bytes = 1;
	if (syncs_in_flight < 1 || syncs_in_flight > TB_COMMIT_SYNCS_MAX)
		syncs_in_flight = 1;
	out->rate = rate;
	out->record_bytes = record_bytes;
	out->jobs = jobs;
	out->syncs_in_flight = syncs_in_flight;
	out->overwrite = overwrite;
	int per_job = 1 + syncs_in_flight; /* a writer and the committers */
	struct committer *c = calloc((size_t)jobs, sizeof(*c));
	uint8_t *chunk = malloc(COMMIT_CHUNK_BYTES);
	struct committer_thread *threads = calloc((size_t)(jobs * per_job), sizeof(*threads));
	struct tb_hist *latency = calloc(1, sizeof(*latency));
	struct tb_hist *syncs = calloc(1, sizeof(*syncs));
	if (!c || !chunk || !threads || !latency || !syncs) {
		snprintf(out->error, sizeof(out->error), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < COMMIT_CHUNK_BYTES; i++)
		chunk[i] = (uint8_t)('a' + i % 26);
	int opened = 0;
	for (; opened < jobs && !out->error[0]; opened++) {
		struct committer *j = &c[opened];
		snprintf(j->path, sizeof(j->path), "%s/tally-bench-commit.%d.%d", dir,
			 (int)getpid(), opened);
		for (int k = 0; k < syncs_in_flight; k++) {
			j->fds[k] = open(j->path,
					 O_WRONLY | O_CREAT | (k ? 0 : O_TRUNC) | O_CLOEXEC, 0600);
			if (j->fds[k] == -1) {
				snprintf(out->error, sizeof(out->error), "open %.200s: %.40s",
					 j->path, strerror(errno));
				break;
			}
			j->syncs_max = k + 1;
		}
		if (overwrite && !out->error[0])
			commit_prefill(
				j, (uint64_t)(rate / jobs * seconds * 1.1 + 1) * record_bytes, out);
		j->per_ns = rate / jobs / 1e9;
		j->record_bytes = record_bytes;
		j->chunk = chunk;
		pthread_mutex_init(&j->lock, NULL);
		pthread_cond_init(&j->acked, NULL);
	}
	int64_t t0 = tb_now_ns();
	for (int i = 0; i < opened; i++) {
		c[i].t0_ns = t0;
		c[i].measure_from_ns = t0 + (int64_t)(warmup_s * 1e9);
		c[i].deadline_ns = t0 + (int64_t)(seconds * 1e9);
	}
	int started = 0;
	for (; started < jobs * per_job && !out->error[0]; started++) {
		struct committer_thread *t = &threads[started];
		t->c = &c[started / per_job];
		t->slot = started % per_job - 1; /* -1: the writer */
		if (pthread_create(&t->thread, NULL,
				   t->slot < 0 ? commit_writer_main : commit_sync_main,
				   t->slot < 0 ? (void *)t->c : (void *)t) == 0)
			continue;
		snprintf(out->error, sizeof(out->error), "could not start its threads");
		for (int k = 0; k < jobs; k++) {
			pthread_mutex_lock(&c[k].lock);
			c[k].stop = true;
			pthread_cond_broadcast(&c[k].acked);
			pthread_mutex_unlock(&c[k].lock);
		}
		break; /* before started counts the thread that did not start */
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i].thread, NULL);
	out->seconds = (double)(tb_now_ns() - t0) / 1e9;
	for (int i = 0; i < opened; i++) {
		if (c[i].error[0] && !out->error[0])
			tb_strlcpy(out->error, sizeof(out->error), c[i].error);
		out->syncs += c[i].syncs;
		out->bytes += c[i].written;
		tb_hist_merge(latency, &c[i].latency);
		tb_hist_merge(syncs, &c[i].fdatasync);
		pthread_mutex_destroy(&c[i].lock);
		pthread_cond_destroy(&c[i].acked);
		for (int k = 0; k < c[i].syncs_max; k++)
			close(c[i].fds[k]);
		unlink(c[i].path);
	}
	if (!out->error[0] && latency->count > 0) {
		out->records = latency->count;
		tb_latency_from_hist(&out->latency, latency);
		tb_latency_from_hist(&out->fdatasync, syncs);
		out->ok = true;
	} else if (!out->error[0]) {
		snprintf(out->error, sizeof(out->error), "no record arrived after the warm-up");
	}
out:
	free(latency);
	free(syncs);
	free(c);
	free(chunk);
	free(threads);
}

/* ---- loopback TCP ---- */

struct stream {
	int listen_fd;
	struct sockaddr_in addr;
	int64_t deadline_ns;
	uint64_t received;
	int64_t last_ns;
	char error[128];
	pthread_t sender;
	pthread_t receiver;
};

static void *sender_main(void *arg)
{
	struct stream *s = arg;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char *buf = calloc(1, NET_CHUNK_BYTES);
	if (fd == -1 || !buf || connect(fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) != 0) {
		snprintf(s->error, sizeof(s->error), "connect: %s", strerror(errno));
		goto out;
	}
	while (tb_now_ns() < s->deadline_ns) {
		ssize_t n = write(fd, buf, NET_CHUNK_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
out:
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

static void *receiver_main(void *arg)
{
	struct stream *s = arg;
	int fd = accept(s->listen_fd, NULL, NULL);
	char *buf = malloc(NET_CHUNK_BYTES);
	if (fd == -1 || !buf) {
		snprintf(s->error, sizeof(s->error), "accept: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, NET_CHUNK_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		s->received += (uint64_t)n;
		s->last_ns = tb_now_ns();
	}
out:
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

static int listen_loopback(struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(*addr);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void tb_net_baseline_run(int streams, double seconds, struct tb_net_baseline *out)
{
	memset(out, 0, sizeof(*out));
	out->present = true;
	out->streams = streams < 1 ? 1 : streams;
	out->chunk_bytes = NET_CHUNK_BYTES;
	struct stream *s = calloc((size_t)out->streams, sizeof(*s));
	if (!s) {
		snprintf(out->error, sizeof(out->error), "out of memory");
		return;
	}
	int64_t start = tb_now_ns();
	int started = 0;
	for (int i = 0; i < out->streams; i++) {
		s[i].listen_fd = listen_loopback(&s[i].addr);
		s[i].deadline_ns = start + (int64_t)(seconds * 1e9);
		if (s[i].listen_fd == -1) {
			snprintf(out->error, sizeof(out->error), "listen: %s", strerror(errno));
			break;
		}
		if (pthread_create(&s[i].receiver, NULL, receiver_main, &s[i]) != 0)
			break;
		if (pthread_create(&s[i].sender, NULL, sender_main, &s[i]) != 0) {
			shutdown(s[i].listen_fd, SHUT_RDWR);
			pthread_join(s[i].receiver, NULL);
			break;
		}
		started++;
	}
	int64_t last = start;
	for (int i = 0; i < started; i++) {
		pthread_join(s[i].sender, NULL);
		pthread_join(s[i].receiver, NULL);
		out->bytes += s[i].received;
		if (s[i].last_ns > last)
			last = s[i].last_ns;
		if (s[i].error[0] && !out->error[0])
			tb_strlcpy(out->error, sizeof(out->error), s[i].error);
	}
	for (int i = 0; i < out->streams; i++)
		if (s[i].listen_fd > 0)
			close(s[i].listen_fd);
	out->seconds = (double)(last - start) / 1e9;
	if (started == out->streams && !out->error[0] && out->seconds > 0) {
		out->mb_per_s = (double)out->bytes / out->seconds / 1e6;
		out->ok = true;
	} else if (!out->error[0]) {
		snprintf(out->error, sizeof(out->error), "could not start the stream threads");
	}
	free(s);
}
