/* spool.c - the producer's durable spool on disk, see spool.h. Plain files written with
 * write(2) (and fdatasync with spool.fsync=true) on the caller's thread: one record is
 * small, and the caller must not return before it is down. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "protocol/batch.h"

#define SPOOL_SEQ_MOD      2147483648LL /* sequences wrap at 2^31 */
#define SPOOL_PATH_MAX     4096
#define SPOOL_SEGMENT_MAX  (1LL << 30) /* bytes of one segment file read at once */
#define SPOOL_HEADERS_MAX  64
#define SPOOL_PRODUCER_TAG "tally-spool 1"

struct spool_segment {
	int64_t base;  /* index of its first record (its file name) */
	int64_t bytes; /* valid bytes */
};

struct spool_part {
	struct spool_part *next;
	char *topic;
	int32_t partition;
	char *dir;                      /* DIR/<topic>-<partition> */
	struct spool_segment *segments; /* by base; the last one is active */
	int32_t segment_count;
	int32_t segment_cap;
	int fd;              /* the active segment, -1 until the first append */
	int64_t next_index;  /* index the next record gets */
	int64_t live_index;  /* next_index at open: lower indexes were spooled earlier */
	int64_t acked_index; /* every record below is stored by the broker */
	int64_t acked_ever;  /* the "acked" file: an acknowledged index end (0: none known) */
	int acked_fd;        /* DIR/<topic>-<partition>/acked, -1 until the first ack */
	bool have_last;
	int32_t last_sequence; /* of the record at next_index - 1 */
};

struct tl_spool {
	char *dir;
	int64_t segment_bytes;
	bool fsync;
	bool failed; /* a write or fdatasync failed: no more appends (never retry an fsync) */
	int lock_fd;
	bool have_producer;
	int64_t producer_id;
	int16_t epoch;
	struct spool_part *parts;
	struct spool_part **recovered;
	int32_t recovered_count;
	struct tl_records_builder builder; /* scratch for append */
	struct tl_buf wire;
	char last_error[512];
};

static tl_err spool_fail(struct tl_spool *spool, tl_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static tl_err spool_fail(struct tl_spool *spool, tl_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(spool->last_error, sizeof(spool->last_error), fmt, ap);
	va_end(ap);
	return err;
}

const char *tl_spool_last_error(const struct tl_spool *spool)
{
	return spool->last_error;
}

int64_t tl_spool_seq_diff(int32_t a, int32_t b)
{
	int64_t d = ((int64_t)a - (int64_t)b) % SPOOL_SEQ_MOD;
	if (d < 0)
		d += SPOOL_SEQ_MOD;
	return d >= SPOOL_SEQ_MOD / 2 ? d - SPOOL_SEQ_MOD : d;
}

static int32_t seq_add(int32_t seq, int64_t n)
{
	int64_t v = ((int64_t)seq + n) % SPOOL_SEQ_MOD;
	return (int32_t)(v < 0 ? v + SPOOL_SEQ_MOD : v);
}

/* ---- files ---- */

static void segment_path(char *out, size_t size, const struct spool_part *part, int64_t base)
{
	snprintf(out, size, "%s/%020" PRId64 ".log", part->dir, base);
}

static tl_err fsync_dir(struct tl_spool *spool, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return spool_fail(spool, TL_ERR_IO, "open %s: %s", dir, strerror(errno));
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	if (rc == -1)
		return spool_fail(spool, TL_ERR_IO, "fsync %s: %s", dir, strerror(saved));
	return TL_OK;
}

/* Reads the whole file at @path into a malloc'd buffer. ENOENT gives TL_ERR_NOT_FOUND. */
static tl_err read_file(struct tl_spool *spool, const char *path, uint8_t **data_out,
			size_t *len_out)
{
	*data_out = NULL;
	*len_out = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT
			       ? TL_ERR_NOT_FOUND
			       : spool_fail(spool, TL_ERR_IO, "open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) == -1 || st.st_size > SPOOL_SEGMENT_MAX) {
		close(fd);
		return spool_fail(spool, TL_ERR_IO, "%s: cannot stat, or larger than 1 GiB", path);
	}
	uint8_t *data = malloc((size_t)st.st_size + 1);
	if (!data) {
		close(fd);
		return TL_ERR_NOMEM;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*data_out = data;
	*len_out = got;
	return TL_OK;
}

/* Bytes at the start of @data that are whole, valid one-record batches numbered from
 * @base on; *next_index_out / *last_seq_out describe the last one. */
static size_t segment_valid_prefix(const uint8_t *data, size_t len, int64_t base,
				   int64_t *next_index_out, int32_t *last_seq_out, bool *any_out,
				   int64_t *producer_id_out)
{
	size_t pos = 0;
	int64_t index = base;
	*any_out = false;
	while (len - pos >= TL_BATCH_LOG_OVERHEAD) {
		int64_t size = tl_batch_size(data + pos, len - pos);
		if (size < 0 || (uint64_t)size > len - pos)
			break;
		struct tl_batch_header h;
		if (tl_batch_validate(data + pos, (size_t)size, &h, NULL) != TL_OK ||
		    h.base_offset != index || h.records_count != 1)
			break;
		*last_seq_out = h.base_sequence;
		*producer_id_out = h.producer_id;
		*any_out = true;
		index++;
		pos += (size_t)size;
	}
	*next_index_out = index;
	return pos;
}

/* ---- partitions ---- */

static struct spool_part *part_find(const struct tl_spool *spool, const char *topic,
				    int32_t partition)
{
	for (struct spool_part *p = spool->parts; p; p = p->next)
		if (p->partition == partition && strcmp(p->topic, topic) == 0)
			return p;
	return NULL;
}

static struct spool_part *part_create(struct tl_spool *spool, const char *topic, int32_t partition)
{
	struct spool_part *part = calloc(1, sizeof(*part));
	if (!part)
		return NULL;
	part->topic = strdup(topic);
	size_t dir_len = strlen(spool->dir) + strlen(topic) + 16;
	part->dir = malloc(dir_len);
	if (!part->topic || !part->dir) {
		free(part->topic);
		free(part->dir);
		free(part);
		return NULL;
	}
	snprintf(part->dir, dir_len, "%s/%s-%d", spool->dir, topic, partition);
	part->partition = partition;
	part->fd = -1;
	part->acked_fd = -1;
	part->next = spool->parts;
	spool->parts = part;
	return part;
}

static tl_err part_add_segment(struct spool_part *part, int64_t base, int64_t bytes)
{
	if (part->segment_count == part->segment_cap) {
		int32_t cap = part->segment_cap ? part->segment_cap * 2 : 4;
		struct spool_segment *s = realloc(part->segments, (size_t)cap * sizeof(*s));
		if (!s)
			return TL_ERR_NOMEM;
		part->segments = s;
		part->segment_cap = cap;
	}
	part->segments[part->segment_count].base = base;
	part->segments[part->segment_count].bytes = bytes;
	part->segment_count++;
	return TL_OK;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The segment bases in @part->dir, sorted. */
static tl_err part_list_segments(struct tl_spool *spool, struct spool_part *part, int64_t **out,
				 int32_t *count_out)
{
	*out = NULL;
	*count_out = 0;
	DIR *d = opendir(part->dir);
	if (!d)
		return spool_fail(spool, TL_ERR_IO, "opendir %s: %s", part->dir, strerror(errno));
	int64_t *bases = NULL;
	int32_t count = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long long base = strtoll(de->d_name, &end, 10);
		if (end != de->d_name + 20 || strcmp(end, ".log") != 0 || base < 0)
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			int64_t *b = realloc(bases, (size_t)cap * sizeof(*b));
			if (!b) {
				free(bases);
				closedir(d);
				return TL_ERR_NOMEM;
			}
			bases = b;
		}
		bases[count++] = base;
	}
	closedir(d);
	if (count > 0)
		qsort(bases, (size_t)count, sizeof(*bases), cmp_i64);
	*out = bases;
	*count_out = count;
	return TL_OK;
}

/* The "acked" file holds an index end the broker acknowledged, written (not fsync'ed)
 * at every acknowledgement: after a crash it tells "some record here was stored" from
 * "none ever was", which the broker cannot tell once it forgot the producer id. */
static void part_read_acked(struct tl_spool *spool, struct spool_part *part)
{
	char path[SPOOL_PATH_MAX];
	snprintf(path, sizeof(path), "%s/acked", part->dir);
	uint8_t *data;
	size_t len;
	if (read_file(spool, path, &data, &len) != TL_OK)
		return;
	if (len >= 8)
		part->acked_ever = (int64_t)tl_be64_get(data);
	free(data);
}

static void part_write_acked(struct spool_part *part)
{
	if (part->acked_fd == -1) {
		char path[SPOOL_PATH_MAX];
		snprintf(path, sizeof(path), "%s/acked", part->dir);
		part->acked_fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (part->acked_fd == -1)
			return; /* only a hint for after an expiry; the spool works without it */
	}
	uint8_t bytes[8];
	tl_be64_put(bytes, (uint64_t)part->acked_index);
	if (pwrite(part->acked_fd, bytes, sizeof(bytes), 0) == (ssize_t)sizeof(bytes))
		part->acked_ever = part->acked_index;
}

/* Recovery of one partition: every segment is read and checked; the first bad byte
 * ends the spool (a torn append), later segments are removed. */
static tl_err part_load(struct tl_spool *spool, struct spool_part *part)
{
	int64_t *bases;
	int32_t count;
	tl_err err = part_list_segments(spool, part, &bases, &count);
	if (err != TL_OK)
		return err;
	bool cut = false;
	for (int32_t i = 0; i < count && err == TL_OK; i++) {
		char path[SPOOL_PATH_MAX];
		segment_path(path, sizeof(path), part, bases[i]);
		bool expected = part->segment_count == 0 || bases[i] == part->next_index;
		if (cut || !expected) {
			cut = true;
			(void)unlink(path);
			continue;
		}
		uint8_t *data;
		size_t len;
		err = read_file(spool, path, &data, &len);
		if (err != TL_OK)
			break;
		int64_t next_index;
		int64_t producer_id = -1;
		int32_t last_seq = 0;
		bool any;
		size_t valid = segment_valid_prefix(data, len, bases[i], &next_index, &last_seq,
						    &any, &producer_id);
		free(data);
		if (any && (!spool->have_producer || producer_id != spool->producer_id)) {
			/* The producer file is written before the first record: this spool was
			 * tampered with, and resending under another id would duplicate. */
			err = spool_fail(spool, TL_ERR_CORRUPT,
					 "%s holds records of producer id %" PRId64
					 " but the spool's producer file says %" PRId64 "",
					 path, producer_id,
					 spool->have_producer ? spool->producer_id : -1);
			break;
		}
		if (valid < len) {
			cut = true;
			if (truncate(path, (off_t)valid) == -1) {
				err = spool_fail(spool, TL_ERR_IO, "truncate %s: %s", path,
						 strerror(errno));
				break;
			}
		}
		if (part->segment_count == 0)
			part->acked_index = bases[i];
		err = part_add_segment(part, bases[i], (int64_t)valid);
		part->next_index = next_index;
		if (any) {
			part->have_last = true;
			part->last_sequence = last_seq;
		}
	}
	free(bases);
	part->live_index = part->next_index;
	if (err == TL_OK)
		part_read_acked(spool, part);
	return err;
}

/* Partition directories are <topic>-<partition>. */
static tl_err spool_load_parts(struct tl_spool *spool)
{
	DIR *d = opendir(spool->dir);
	if (!d)
		return spool_fail(spool, TL_ERR_IO, "opendir %s: %s", spool->dir, strerror(errno));
	tl_err err = TL_OK;
	struct dirent *de;
	while (err == TL_OK && (de = readdir(d))) {
		const char *dash = strrchr(de->d_name, '-');
		if (!dash || dash == de->d_name || de->d_name[0] == '.')
			continue;
		char *end;
		long partition = strtol(dash + 1, &end, 10);
		if (*end != '\0' || end == dash + 1 || partition < 0 || partition > INT32_MAX)
			continue;
		char topic[256];
		size_t topic_len = (size_t)(dash - de->d_name);
		if (topic_len >= sizeof(topic))
			continue;
		memcpy(topic, de->d_name, topic_len);
		topic[topic_len] = '\0';
		struct spool_part *part = part_create(spool, topic, (int32_t)partition);
		if (!part) {
			err = TL_ERR_NOMEM;
			break;
		}
		err = part_load(spool, part);
		if (err == TL_OK && part->next_index > part->acked_index) {
			struct spool_part **r =
				realloc(spool->recovered,
					(size_t)(spool->recovered_count + 1) * sizeof(*r));
			if (!r) {
				err = TL_ERR_NOMEM;
				break;
			}
			spool->recovered = r;
			spool->recovered[spool->recovered_count++] = part;
		}
	}
	closedir(d);
	return err;
}

/* ---- open and close ---- */

static tl_err spool_read_producer(struct tl_spool *spool)
{
	char path[SPOOL_PATH_MAX];
	snprintf(path, sizeof(path), "%s/producer", spool->dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT
			       ? TL_OK
			       : spool_fail(spool, TL_ERR_IO, "open %s: %s", path, strerror(errno));
	long long pid = -1;
	int epoch = -1;
	int n = fscanf(f, SPOOL_PRODUCER_TAG " %lld %d", &pid, &epoch);
	fclose(f);
	if (n != 2 || pid < 0 || epoch < 0 || epoch > INT16_MAX)
		return spool_fail(spool, TL_ERR_CORRUPT,
				  "%s is not a spool producer file (\"%s <id> <epoch>\")", path,
				  SPOOL_PRODUCER_TAG);
	spool->have_producer = true;
	spool->producer_id = pid;
	spool->epoch = (int16_t)epoch;
	return TL_OK;
}

static tl_err spool_lock(struct tl_spool *spool)
{
	char path[SPOOL_PATH_MAX];
	snprintf(path, sizeof(path), "%s/lock", spool->dir);
	spool->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (spool->lock_fd == -1)
		return spool_fail(spool, TL_ERR_IO, "open %s: %s", path, strerror(errno));
	if (flock(spool->lock_fd, LOCK_EX | LOCK_NB) == -1)
		return spool_fail(spool, errno == EWOULDBLOCK ? TL_ERR_EXISTS : TL_ERR_IO,
				  "spool.dir %s is in use by another producer (flock %s: %s)",
				  spool->dir, path, strerror(errno));
	return TL_OK;
}

tl_err tl_spool_open(const struct tl_spool_conf *conf, struct tl_spool **out, char *errstr,
		     size_t errstr_size)
{
	struct tl_spool *spool = calloc(1, sizeof(*spool));
	if (!spool)
		return TL_ERR_NOMEM;
	spool->lock_fd = -1;
	spool->segment_bytes = conf->segment_bytes;
	spool->fsync = conf->fsync;
	tl_records_builder_init(&spool->builder, TL_COMPRESSION_NONE);
	tl_buf_init(&spool->wire);
	tl_err err = TL_ERR_NOMEM;
	spool->dir = strdup(conf->dir);
	if (!spool->dir)
		goto out_fail;
	err = TL_ERR_IO;
	if (mkdir(spool->dir, 0755) == -1 && errno != EEXIST) {
		spool_fail(spool, TL_ERR_IO, "mkdir %s: %s", spool->dir, strerror(errno));
		goto out_fail;
	}
	err = spool_lock(spool);
	if (err == TL_OK)
		err = spool_read_producer(spool);
	if (err == TL_OK)
		err = spool_load_parts(spool);
	if (err != TL_OK)
		goto out_fail;
	*out = spool;
	return TL_OK;

out_fail:
	if (errstr && errstr_size)
		snprintf(errstr, errstr_size, "spool.dir: %s",
			 spool->last_error[0] ? spool->last_error : tl_err_message(err));
	tl_spool_close(spool);
	return err;
}

void tl_spool_close(struct tl_spool *spool)
{
	if (!spool)
		return;
	struct spool_part *part = spool->parts;
	while (part) {
		struct spool_part *next = part->next;
		if (part->fd != -1)
			close(part->fd);
		if (part->acked_fd != -1)
			close(part->acked_fd);
		free(part->segments);
		free(part->topic);
		free(part->dir);
		free(part);
		part = next;
	}
	if (spool->lock_fd != -1)
		close(spool->lock_fd); /* releases the flock */
	free(spool->recovered);
	tl_records_builder_deinit(&spool->builder);
	tl_buf_deinit(&spool->wire);
	free(spool->dir);
	free(spool);
}

/* ---- producer identity ---- */

bool tl_spool_producer(const struct tl_spool *spool, int64_t *producer_id, int16_t *epoch)
{
	if (!spool->have_producer)
		return false;
	*producer_id = spool->producer_id;
	*epoch = spool->epoch;
	return true;
}

/* Metadata files change atomically: temp file, fsync, rename, fsync the directory. */
tl_err tl_spool_set_producer(struct tl_spool *spool, int64_t producer_id, int16_t epoch)
{
	char path[SPOOL_PATH_MAX], tmp[SPOOL_PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/producer", spool->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return spool_fail(spool, TL_ERR_IO, "open %s: %s", tmp, strerror(errno));
	char text[128];
	int len = snprintf(text, sizeof(text), SPOOL_PRODUCER_TAG " %" PRId64 " %d\n", producer_id,
			   epoch);
	bool ok = write(fd, text, (size_t)len) == len && fsync(fd) == 0;
	int saved = errno;
	close(fd);
	if (!ok || rename(tmp, path) == -1)
		return spool_fail(spool, TL_ERR_IO, "writing %s: %s", path,
				  strerror(ok ? errno : saved));
	tl_err err = fsync_dir(spool, spool->dir);
	if (err != TL_OK)
		return err;
	spool->have_producer = true;
	spool->producer_id = producer_id;
	spool->epoch = epoch;
	return TL_OK;
}

/* ---- partitions for the producer ---- */

int32_t tl_spool_recovered_count(const struct tl_spool *spool)
{
	return spool->recovered_count;
}

void tl_spool_recovered(const struct tl_spool *spool, int32_t i, const char **topic_out,
			int32_t *partition_out)
{
	TL_ASSERT(i >= 0 && i < spool->recovered_count);
	*topic_out = spool->recovered[i]->topic;
	*partition_out = spool->recovered[i]->partition;
}

struct spool_part *tl_spool_part(struct tl_spool *spool, const char *topic, int32_t partition)
{
	struct spool_part *part = part_find(spool, topic, partition);
	return part ? part : part_create(spool, topic, partition);
}

int32_t tl_spool_part_next_sequence(const struct spool_part *part)
{
	return part->have_last ? seq_add(part->last_sequence, 1) : 0;
}

bool tl_spool_part_has_recovered(const struct spool_part *part)
{
	return part->acked_index < part->live_index;
}

int64_t tl_spool_part_live_index(const struct spool_part *part)
{
	return part->live_index;
}

/* ---- append ---- */

/* Opens the active segment for appending, making the directory, rolling to a new
 * segment when the active one is full. */
static tl_err part_open_active(struct tl_spool *spool, struct spool_part *part, size_t len)
{
	struct spool_segment *last =
		part->segment_count ? &part->segments[part->segment_count - 1] : NULL;
	bool roll = last && last->bytes > 0 && last->bytes + (int64_t)len > spool->segment_bytes;
	if (part->fd != -1 && !roll)
		return TL_OK;
	if (part->fd != -1) {
		close(part->fd);
		part->fd = -1;
	}
	bool fresh_dir = false;
	if (!last) {
		if (mkdir(part->dir, 0755) == -1 && errno != EEXIST)
			return spool_fail(spool, TL_ERR_IO, "mkdir %s: %s", part->dir,
					  strerror(errno));
		fresh_dir = true;
	}
	bool create = !last || roll;
	int64_t base = create ? part->next_index : last->base;
	char path[SPOOL_PATH_MAX];
	segment_path(path, sizeof(path), part, base);
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
	if (fd == -1)
		return spool_fail(spool, TL_ERR_IO, "open %s: %s", path, strerror(errno));
	if (create && part_add_segment(part, base, 0) != TL_OK) {
		close(fd);
		return TL_ERR_NOMEM;
	}
	part->fd = fd;
	/* A new file must survive a power loss too, when records are fsync'ed. */
	if (spool->fsync && create) {
		tl_err err = fsync_dir(spool, part->dir);
		if (err == TL_OK && fresh_dir)
			err = fsync_dir(spool, spool->dir);
		return err;
	}
	return TL_OK;
}

static tl_err write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return TL_ERR_IO;
		data += n;
		len -= (size_t)n;
	}
	return TL_OK;
}

tl_err tl_spool_append(struct tl_spool *spool, struct spool_part *part, int64_t producer_id,
		       int16_t epoch, int32_t sequence, int64_t timestamp_ms, struct tl_bytes key,
		       struct tl_bytes value, const struct tl_record_header *headers,
		       int32_t header_count, int64_t *index_out)
{
	if (spool->failed)
		return spool_fail(spool, TL_ERR_IO, "the spool failed earlier: %s",
				  spool->last_error);
	TL_ASSERT(!part->have_last || sequence == seq_add(part->last_sequence, 1));
	tl_records_builder_reset(&spool->builder);
	tl_buf_reset(&spool->wire);
	tl_err err = tl_records_builder_append(&spool->builder, timestamp_ms, key, value, headers,
					       header_count);
	if (err != TL_OK)
		return err;
	tl_records_builder_set_producer(&spool->builder, producer_id, epoch, sequence, false);
	err = tl_records_builder_finish(&spool->builder, NULL, &spool->wire);
	if (err != TL_OK)
		return err;
	tl_batch_assign(spool->wire.data, part->next_index, -1);
	err = part_open_active(spool, part, spool->wire.len);
	if (err != TL_OK)
		return err;
	struct spool_segment *seg = &part->segments[part->segment_count - 1];
	if (write_all(part->fd, spool->wire.data, spool->wire.len) != TL_OK) {
		int saved = errno;
		/* Leave no partial record behind: recovery would cut it anyway. */
		if (ftruncate(part->fd, (off_t)seg->bytes) == -1)
			spool->failed = true;
		return spool_fail(spool, TL_ERR_IO, "write %s/%020" PRId64 ".log: %s", part->dir,
				  seg->base, strerror(saved));
	}
	if (spool->fsync && fdatasync(part->fd) == -1) {
		spool->failed = true;
		return spool_fail(spool, TL_ERR_IO, "fdatasync %s/%020" PRId64 ".log: %s",
				  part->dir, seg->base, strerror(errno));
	}
	seg->bytes += (int64_t)spool->wire.len;
	*index_out = part->next_index++;
	part->have_last = true;
	part->last_sequence = sequence;
	return TL_OK;
}

/* ---- acknowledgements ---- */

void tl_spool_acked(struct tl_spool *spool, struct spool_part *part, int64_t index_end)
{
	if (index_end <= part->acked_index)
		return;
	TL_ASSERT(index_end <= part->next_index);
	part->acked_index = index_end;
	part_write_acked(part);
	int32_t drop = 0;
	while (drop + 1 < part->segment_count && part->segments[drop + 1].base <= index_end) {
		char path[SPOOL_PATH_MAX];
		segment_path(path, sizeof(path), part, part->segments[drop].base);
		if (unlink(path) == -1 && errno != ENOENT)
			break; /* kept; tried again at the next acknowledgement */
		drop++;
	}
	if (drop > 0) {
		part->segment_count -= drop;
		memmove(part->segments, part->segments + drop,
			(size_t)part->segment_count * sizeof(*part->segments));
	}
	TL_UNUSED(spool);
}

/* ---- replay ---- */

/* Calls @fn for each record with index in [@from, @to) of the partition's files. */
static tl_err part_each_record(struct tl_spool *spool, struct spool_part *part, int64_t from,
			       int64_t to, tl_spool_record_fn fn, void *arg)
{
	tl_err err = TL_OK;
	for (int32_t s = 0; s < part->segment_count && err == TL_OK; s++) {
		int64_t seg_end =
			s + 1 < part->segment_count ? part->segments[s + 1].base : part->next_index;
		if (seg_end <= from || part->segments[s].base >= to)
			continue;
		char path[SPOOL_PATH_MAX];
		segment_path(path, sizeof(path), part, part->segments[s].base);
		uint8_t *data;
		size_t len;
		err = read_file(spool, path, &data, &len);
		if (err != TL_OK) {
			if (err == TL_ERR_NOT_FOUND)
				err = spool_fail(spool, TL_ERR_IO, "%s vanished", path);
			break;
		}
		struct tl_records_iter iter;
		tl_records_iter_init(&iter, data, TL_MIN(len, (size_t)part->segments[s].bytes));
		struct tl_batch_header h;
		while (err == TL_OK && tl_records_iter_next_batch(&iter, &h, NULL, NULL) == TL_OK) {
			if (h.base_offset < from || h.base_offset >= to)
				continue;
			struct tl_record rec;
			if (tl_records_iter_next(&iter, &rec) != TL_OK) {
				err = spool_fail(spool, TL_ERR_CORRUPT,
						 "%s: unreadable record %" PRId64, path,
						 h.base_offset);
				break;
			}
			struct tl_spool_record out = {
				h.base_offset, h.base_sequence, rec.timestamp_ms, rec.key,
				rec.value,     rec.headers,     rec.header_count};
			err = fn(arg, &out);
		}
		tl_records_iter_deinit(&iter);
		free(data);
	}
	return err;
}

tl_err tl_spool_replay(struct tl_spool *spool, struct spool_part *part, bool have_last,
		       int32_t last_sequence, tl_spool_record_fn fn, void *arg)
{
	if (part->segment_count == 0 || !part->have_last)
		return TL_OK; /* nothing was ever spooled here */
	int64_t first_index = part->segments[0].base;
	int32_t first_seq = seq_add(part->last_sequence, -(part->next_index - 1 - first_index));
	int64_t stored_end;
	if (!have_last) {
		if (first_seq != 0 || part->acked_ever > 0)
			return spool_fail(
				spool, TL_ERR_UNKNOWN_PRODUCER_ID,
				"the broker keeps no state of producer id %" PRId64
				" on %s-%d although it stored records of it (the spool holds them from sequence %d on): it was idle longer than the broker's producer.id.expiration.ms, or the topic was recreated, so which spooled records it stored cannot be known; nothing is resent",
				spool->producer_id, part->topic, part->partition, first_seq);
		stored_end = first_index;
	} else {
		int64_t d = tl_spool_seq_diff(last_sequence, first_seq);
		if (d < -1)
			return spool_fail(
				spool, TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
				"the broker's last sequence of producer id %" PRId64
				" on %s-%d is %d, before the oldest spooled record's (%d): records the spool sent are missing at the broker",
				spool->producer_id, part->topic, part->partition, last_sequence,
				first_seq);
		stored_end = first_index + d + 1;
		if (stored_end > part->next_index)
			return spool_fail(
				spool, TL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
				"the broker stored sequence %d of producer id %" PRId64
				" on %s-%d, past the newest spooled record (%d): the spool lost records (a machine crash with spool.fsync=false?)",
				last_sequence, spool->producer_id, part->topic, part->partition,
				part->last_sequence);
	}
	tl_spool_acked(spool, part, stored_end);
	if (stored_end >= part->live_index)
		return TL_OK;
	return part_each_record(spool, part, stored_end, part->live_index, fn, arg);
}

/* ---- scan ---- */

struct scan_file {
	char *topic;
	int32_t partition;
	char path[SPOOL_PATH_MAX];
};

/* Lists every segment file, under the producer's lock. */
static tl_err scan_list(struct tl_spool *spool, struct scan_file **out, int32_t *count_out)
{
	int32_t count = 0;
	for (struct spool_part *p = spool->parts; p; p = p->next)
		count += p->segment_count;
	struct scan_file *files = calloc((size_t)count + 1, sizeof(*files));
	if (!files)
		return TL_ERR_NOMEM;
	int32_t n = 0;
	for (struct spool_part *p = spool->parts; p; p = p->next)
		for (int32_t s = 0; s < p->segment_count; s++) {
			files[n].topic = strdup(p->topic);
			files[n].partition = p->partition;
			segment_path(files[n].path, sizeof(files[n].path), p, p->segments[s].base);
			if (!files[n++].topic) {
				for (int32_t i = 0; i < n; i++)
					free(files[i].topic);
				free(files);
				return TL_ERR_NOMEM;
			}
		}
	*out = files;
	*count_out = n;
	return TL_OK;
}

/* Hands each record of one file to @fn; *@stop_out when @fn asked to stop. */
static tl_err scan_file_records(struct tl_spool *spool, const struct scan_file *file,
				tl_producer_spool_fn fn, void *arg, bool *stop_out)
{
	uint8_t *data;
	size_t len;
	tl_err err = read_file(spool, file->path, &data, &len);
	if (err == TL_ERR_NOT_FOUND)
		return TL_OK; /* acknowledged and deleted meanwhile */
	if (err != TL_OK)
		return err;
	struct tl_records_iter iter;
	tl_records_iter_init(&iter, data, len);
	struct tl_batch_header h;
	char keys[SPOOL_HEADERS_MAX][256];
	struct tl_producer_header headers[SPOOL_HEADERS_MAX];
	while (!*stop_out && tl_records_iter_next_batch(&iter, &h, NULL, NULL) == TL_OK) {
		struct tl_record rec;
		if (tl_records_iter_next(&iter, &rec) != TL_OK)
			break; /* a record being appended: the end */
		int32_t hc = TL_MIN(rec.header_count, SPOOL_HEADERS_MAX);
		for (int32_t i = 0; i < hc; i++) {
			size_t kl = TL_MIN((size_t)TL_MAX(rec.headers[i].key.len, 0),
					   sizeof(keys[i]) - 1);
			memcpy(keys[i], rec.headers[i].key.ptr, kl);
			keys[i][kl] = '\0';
			headers[i].key = keys[i];
			headers[i].value =
				rec.headers[i].value.len >= 0 ? rec.headers[i].value.ptr : NULL;
			headers[i].value_len = TL_MAX(rec.headers[i].value.len, 0);
		}
		struct tl_producer_record out = {
			.topic = file->topic,
			.partition = file->partition,
			.key = rec.key.len >= 0 ? rec.key.ptr : NULL,
			.key_len = TL_MAX(rec.key.len, 0),
			.value = rec.value.len >= 0 ? rec.value.ptr : NULL,
			.value_len = TL_MAX(rec.value.len, 0),
			.timestamp_ms = rec.timestamp_ms,
			.headers = headers,
			.header_count = hc,
			.opaque = NULL,
		};
		*stop_out = !fn(&out, arg);
	}
	tl_records_iter_deinit(&iter);
	free(data);
	return TL_OK;
}

tl_err tl_spool_scan(struct tl_spool *spool, pthread_mutex_t *lock, tl_producer_spool_fn fn,
		     void *arg)
{
	struct scan_file *files;
	int32_t count;
	pthread_mutex_lock(lock);
	tl_err err = scan_list(spool, &files, &count);
	pthread_mutex_unlock(lock);
	if (err != TL_OK)
		return err;
	bool stop = false;
	for (int32_t i = 0; i < count && !stop && err == TL_OK; i++)
		err = scan_file_records(spool, &files[i], fn, arg, &stop);
	for (int32_t i = 0; i < count; i++)
		free(files[i].topic);
	free(files);
	return err;
}
