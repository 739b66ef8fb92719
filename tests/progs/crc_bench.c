/* crc_bench.c - CRC-32C throughput on this machine: tl_crc32c (the crc32 instruction,
 * three interleaved streams on long buffers, see common/crc32c.c) and the table
 * fallback, over buffers of a record batch's usual sizes, warm in cache.
 *   crc_bench [SECONDS_PER_SIZE]
 * Prints GB/s per size, process CPU time (issue #22's notes: the broker checks every
 * produced batch's CRC, a consumer every fetched one). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/crc32c.h"

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rate(uint32_t (*fn)(uint32_t, const void *, size_t), const uint8_t *data, size_t len,
		   double seconds, uint32_t *sink)
{
	double start = cpu_s(), bytes = 0;
	uint32_t crc = 0;
	do {
		for (int i = 0; i < 64; i++)
			crc = fn(crc, data, len);
		bytes += 64.0 * (double)len;
	} while (cpu_s() - start < seconds);
	*sink ^= crc;
	return bytes / (cpu_s() - start) / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 0.5;
	const size_t sizes[] = {1024, 16384, 262144, 1048576};
	uint8_t *data = malloc(1048576);
	if (!data)
		return 1;
	for (size_t i = 0; i < 1048576; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	uint32_t sink = 0;
	printf("crc32c: %s\n", tl_crc32c_is_hw() ? "crc32 instruction" : "table only");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		printf("%8zu bytes: tl_crc32c %6.2f GB/s, table %5.2f GB/s\n", sizes[i],
		       rate(tl_crc32c, data, sizes[i], seconds, &sink),
		       rate(tl_crc32c_sw, data, sizes[i], seconds, &sink));
	free(data);
	return sink == 0x12345678u; /* keeps the work */
}
