/* validate_bench.c - CPU cost of Produce's record validation (issue #20), without a
 * broker: builds one batch like tally-bench's (1 KiB records of random letters, zstd,
 * about 1 MB) and times tl_batch_validate_records on it, and its two parts
 * (decompression alone, the record walk alone on the uncompressed batch).
 *   validate_bench [ROUNDS] [RECORD_BYTES] [BATCH_BYTES]
 *   validate_bench log SEGMENT [ROUNDS] [MAX_MB]
 *       the zstd batches of a log segment (tally-bench --keep-data: exactly the
 *       bench's batches): their compression ratio, then the floor
 *       (ZSTD_decompressDCtx alone, one warm DCtx, one output buffer sized by the
 *       largest frame header) against tl_batch_validate_records, each warm
 *       (batch after batch) and cold (8 MiB of other memory touched between
 *       batches, as the broker's socket and page cache traffic does; not timed).
 *   validate_bench instr floor|validate [ROUNDS]
 *       for callgrind (test 133): one ~1 MB zstd batch of JSON-like 1 KiB records,
 *       then only ZSTD_decompressDCtx (floor) or only tl_batch_validate_records
 *       (validate), ROUNDS times, inside run_floor / run_validate: count them with
 *       valgrind --tool=callgrind --collect-atstart=no --toggle-collect=run_*.
 * Prints CPU-s per GB of uncompressed records for each, process CPU time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zstd.h>

#include "common/assert.h"
#include "protocol/batch.h"
#include "protocol/records.h"
#include "protocol/validate.h"

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build(enum tl_compression codec, size_t record_bytes, size_t batch_bytes, bool json,
		  struct tl_buf *out)
{
	struct tl_records_builder b;
	tl_records_builder_init(&b, codec);
	uint64_t rng = 0x243f6a8885a308d3ULL;
	uint8_t *value = malloc(record_bytes);
	while (tl_records_builder_bytes(&b) + record_bytes + 16 < batch_bytes) {
		for (size_t i = 0; i < record_bytes && !json; i++) {
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			value[i] = (uint8_t)('a' + (rng >> 33) % 26);
		}
		for (size_t i = 0; i < record_bytes && json;) {
			/* Event-like JSON lines, as tally-bench --payload json (~5x in zstd). */
			char line[256];
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			uint64_t r = rng;
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			int n = snprintf(line, sizeof(line),
					 "{\"ts\":%llu,\"event\":\"e%llu\",\"user_id\":%llu,"
					 "\"trace\":\"%016llx\",\"country\":\"C%llu\","
					 "\"path\":\"/products/%llu\",\"ok\":true}\n",
					 1700000000000ULL + (r >> 40), (unsigned long long)(r % 8),
					 (unsigned long long)((r >> 8) % 100000),
					 (unsigned long long)rng,
					 (unsigned long long)((r >> 20) % 10),
					 (unsigned long long)((r >> 24) % 5000));
			size_t take = TL_MIN((size_t)(n > 0 ? n : 0), record_bytes - i);
			memcpy(value + i, line, take);
			i += take;
		}
		struct tl_bytes key = {NULL, -1};
		struct tl_bytes v = {value, (int32_t)record_bytes};
		if (tl_records_builder_append(&b, 1700000000000, key, v, NULL, 0) != TL_OK)
			abort();
	}
	tl_buf_init(out);
	if (tl_records_builder_finish(&b, NULL, out) != TL_OK)
		abort();
	free(value);
	tl_records_builder_deinit(&b);
}

struct seg {
	uint8_t *data;
	size_t len;
	size_t *at; /* offsets of the zstd batches */
	int n;
	size_t records_bytes, body_bytes, max_content;
};

static int seg_load(const char *path, size_t max_bytes, struct seg *s)
{
	memset(s, 0, sizeof(*s));
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	s->data = malloc(max_bytes);
	s->len = fread(s->data, 1, max_bytes, f);
	fclose(f);
	s->at = malloc(sizeof(size_t) * (s->len / TL_BATCH_HEADER_BYTES + 1));
	size_t pos = 0;
	while (s->len - pos >= TL_BATCH_HEADER_BYTES) {
		int64_t size = tl_batch_size(s->data + pos, s->len - pos);
		if (size < 0 || (size_t)size > s->len - pos)
			break;
		struct tl_batch_header h;
		const char *why = "";
		if (tl_batch_validate(s->data + pos, (size_t)size, &h, &why) == TL_OK &&
		    tl_batch_compression(&h) == TL_COMPRESSION_ZSTD) {
			const uint8_t *body = s->data + pos + TL_BATCH_HEADER_BYTES;
			size_t body_len = (size_t)size - TL_BATCH_HEADER_BYTES;
			unsigned long long c = ZSTD_getFrameContentSize(body, body_len);
			if (c > (1u << 30))
				return -1; /* needs a size-stating frame */
			s->at[s->n++] = pos;
			s->records_bytes += c;
			s->body_bytes += body_len;
			if (c > s->max_content)
				s->max_content = c;
		}
		pos += (size_t)size;
	}
	return s->n > 0 ? 0 : -1;
}

static volatile uint8_t evict_sink;

/* Touches @n bytes of @p, reading and writing, so earlier data leaves the caches. */
static void evict(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 64)
		p[i]++;
	evict_sink = p[n / 2];
}

static int log_mode(int argc, char **argv)
{
	int rounds = argc > 3 ? atoi(argv[3]) : 3;
	size_t max_bytes = (size_t)(argc > 4 ? atol(argv[4]) : 64) << 20;
	struct seg s;
	if (seg_load(argv[2], max_bytes, &s) != 0) {
		fprintf(stderr, "%s: no zstd batches with a stated content size\n", argv[2]);
		return 1;
	}
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	uint8_t *out = malloc(s.max_content + 1);
	size_t evict_bytes = 8u << 20;
	uint8_t *junk = calloc(1, evict_bytes);
	struct tl_batch_scratch scratch;
	tl_batch_scratch_init(&scratch, 64 << 20);
	double gb = (double)s.records_bytes * rounds / 1e9;
	printf("%s: %d zstd batches, records %.1f KB a batch on average, ratio %.2f "
	       "(records/compressed body)\n",
	       argv[2], s.n, (double)s.records_bytes / s.n / 1e3,
	       (double)s.records_bytes / (double)s.body_bytes);
	/* The streaming alternative: ZSTD_decompressStream into a 128 KiB output reused
	 * for every chunk (what a fused decode-and-walk would read from). */
	size_t chunk = 128u << 10;
	uint8_t *small = malloc(chunk);
	for (int cold = 0; cold <= 1; cold++) {
		double t_dec = 0, t_val = 0, t_str = 0;
		for (int r = 0; r < rounds; r++)
			for (int i = 0; i < s.n; i++) {
				const uint8_t *b = s.data + s.at[i];
				size_t size = (size_t)tl_batch_size(b, s.len - s.at[i]);
				const uint8_t *body = b + TL_BATCH_HEADER_BYTES;
				size_t body_len = size - TL_BATCH_HEADER_BYTES;
				if (cold)
					evict(junk, evict_bytes);
				double t0 = cpu_s();
				size_t n = ZSTD_decompressDCtx(dctx, out, s.max_content + 1, body,
							       body_len);
				double t1 = cpu_s();
				if (ZSTD_isError(n))
					return 1;
				if (cold)
					evict(junk, evict_bytes);
				struct tl_batch_header h;
				const char *why = "";
				if (tl_batch_header_decode(b, size, &h) != TL_OK)
					return 1;
				double t2 = cpu_s();
				if (tl_batch_validate_records(b, size, &h, false, &scratch, &why) !=
				    TL_OK) {
					fprintf(stderr, "refused: %s\n", why);
					return 1;
				}
				double t3 = cpu_s();
				if (cold)
					evict(junk, evict_bytes);
				double t4 = cpu_s();
				ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
				ZSTD_inBuffer zin = {body, body_len, 0};
				size_t ret;
				do {
					ZSTD_outBuffer zout = {small, chunk, 0};
					ret = ZSTD_decompressStream(dctx, &zout, &zin);
					if (ZSTD_isError(ret))
						return 1;
				} while (ret != 0);
				double t5 = cpu_s();
				t_dec += t1 - t0;
				t_val += t3 - t2;
				t_str += t5 - t4;
			}
		printf("%s: CPU-s/GB of records: ZSTD_decompressDCtx alone %.3f, "
		       "tl_batch_validate_records %.3f (+%.0f %%), ZSTD_decompressStream into "
		       "128 KiB %.3f\n",
		       cold ? "cold" : "warm", t_dec / gb, t_val / gb, 100 * (t_val / t_dec - 1),
		       t_str / gb);
	}
	tl_batch_scratch_deinit(&scratch);
	ZSTD_freeDCtx(dctx);
	free(out);
	free(junk);
	free(small);
	free(s.data);
	free(s.at);
	return 0;
}

static __attribute__((noinline)) int run_floor(const struct tl_buf *zb, int rounds, uint8_t *out,
					       size_t cap)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	for (int i = 0; i < rounds; i++) {
		size_t n = ZSTD_decompressDCtx(dctx, out, cap, zb->data + TL_BATCH_HEADER_BYTES,
					       zb->len - TL_BATCH_HEADER_BYTES);
		if (ZSTD_isError(n))
			return 1;
	}
	ZSTD_freeDCtx(dctx);
	return 0;
}

static __attribute__((noinline)) int run_validate(const struct tl_buf *zb, int rounds,
						  const struct tl_batch_header *h)
{
	struct tl_batch_scratch scratch;
	tl_batch_scratch_init(&scratch, 64 << 20);
	const char *why = "";
	for (int i = 0; i < rounds; i++)
		if (tl_batch_validate_records(zb->data, zb->len, h, false, &scratch, &why) !=
		    TL_OK) {
			fprintf(stderr, "refused: %s\n", why);
			return 1;
		}
	tl_batch_scratch_deinit(&scratch);
	return 0;
}

static int instr_mode(int argc, char **argv)
{
	int rounds = argc > 3 ? atoi(argv[3]) : 4;
	struct tl_buf zb;
	build(TL_COMPRESSION_ZSTD, 1024, 1000000, true, &zb);
	struct tl_batch_header h;
	const char *why = "";
	if (tl_batch_validate(zb.data, zb.len, &h, &why) != TL_OK)
		return 1;
	size_t cap = (size_t)ZSTD_getFrameContentSize(zb.data + TL_BATCH_HEADER_BYTES,
						      zb.len - TL_BATCH_HEADER_BYTES) +
		     1;
	uint8_t *out = malloc(cap);
	int rc = strcmp(argv[2], "floor") == 0 ? run_floor(&zb, rounds, out, cap)
					       : run_validate(&zb, rounds, &h);
	printf("%s: %d rounds of a %zu B zstd batch, ratio %.2f\n", argv[2], rounds, zb.len,
	       (double)(cap - 1) / (double)(zb.len - TL_BATCH_HEADER_BYTES));
	free(out);
	tl_buf_deinit(&zb);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "instr") == 0)
		return instr_mode(argc, argv);
	if (argc > 2 && strcmp(argv[1], "log") == 0)
		return log_mode(argc, argv);
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	size_t record_bytes = argc > 2 ? (size_t)atol(argv[2]) : 1024;
	size_t batch_bytes = argc > 3 ? (size_t)atol(argv[3]) : 1000000;
	struct tl_buf zb, nb;
	build(TL_COMPRESSION_ZSTD, record_bytes, batch_bytes, false, &zb);
	build(TL_COMPRESSION_NONE, record_bytes, batch_bytes, false, &nb);
	struct tl_batch_header h, hn;
	const char *why = "";
	if (tl_batch_validate(zb.data, zb.len, &h, &why) != TL_OK ||
	    tl_batch_validate(nb.data, nb.len, &hn, &why) != TL_OK) {
		fprintf(stderr, "bad batch: %s\n", why);
		return 1;
	}
	struct tl_batch_scratch scratch;
	tl_batch_scratch_init(&scratch, 64 << 20);
	double gb = (double)(nb.len - TL_BATCH_HEADER_BYTES) * rounds / 1e9;
	double t0 = cpu_s();
	for (int i = 0; i < rounds; i++)
		if (tl_batch_validate_records(zb.data, zb.len, &h, false, &scratch, &why) !=
		    TL_OK) {
			fprintf(stderr, "refused: %s\n", why);
			return 1;
		}
	double t1 = cpu_s();
	for (int i = 0; i < rounds; i++) {
		size_t n;
		if (tl_batch_decompress(&scratch, TL_COMPRESSION_ZSTD,
					zb.data + TL_BATCH_HEADER_BYTES,
					zb.len - TL_BATCH_HEADER_BYTES, &n) != TL_OK)
			return 1;
	}
	double t2 = cpu_s();
	for (int i = 0; i < rounds; i++)
		if (tl_batch_validate_records(nb.data, nb.len, &hn, false, &scratch, &why) != TL_OK)
			return 1;
	double t3 = cpu_s();
	printf("batch %zu B (zstd %zu B, %d records): CPU-s/GB validate %.3f decompress %.3f "
	       "walk %.3f\n",
	       nb.len, zb.len, h.records_count, (t1 - t0) / gb, (t2 - t1) / gb, (t3 - t2) / gb);
	tl_batch_scratch_deinit(&scratch);
	tl_buf_deinit(&zb);
	tl_buf_deinit(&nb);
	return 0;
}
