/* validate_bench.c - CPU cost of Produce's record validation (issue #20), without a
 * broker: builds one batch like tally-bench's (1 KiB records of random letters, zstd,
 * about 1 MB) and times tl_batch_validate_records on it, and its two parts
 * (decompression alone, the record walk alone on the uncompressed batch).
 *   validate_bench [ROUNDS] [RECORD_BYTES] [BATCH_BYTES]
 * Prints CPU-s per GB of uncompressed records for each, process CPU time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zstd.h>

#include "protocol/records.h"

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build(enum tl_compression codec, size_t record_bytes, size_t batch_bytes,
		  struct tl_buf *out)
{
	struct tl_records_builder b;
	tl_records_builder_init(&b, codec);
	uint64_t rng = 0x243f6a8885a308d3ULL;
	uint8_t *value = malloc(record_bytes);
	while (tl_records_builder_bytes(&b) + record_bytes + 16 < batch_bytes) {
		for (size_t i = 0; i < record_bytes; i++) {
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			value[i] = (uint8_t)('a' + (rng >> 33) % 26);
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

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	size_t record_bytes = argc > 2 ? (size_t)atol(argv[2]) : 1024;
	size_t batch_bytes = argc > 3 ? (size_t)atol(argv[3]) : 1000000;
	struct tl_buf zb, nb;
	build(TL_COMPRESSION_ZSTD, record_bytes, batch_bytes, &zb);
	build(TL_COMPRESSION_NONE, record_bytes, batch_bytes, &nb);
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
