/* crc32c.c - CRC-32C with SSE4.2 and a slicing-by-8 fallback, see crc32c.h. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int have_hw = -1;

static void table_build(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t crc = n;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ POLY : crc >> 1;
		table[0][n] = crc;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 1; k < 8; k++)
			table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
	have_hw = 0;
#endif
}

uint32_t tl_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&table_once, table_build);
	const uint8_t *p = data;
	crc = ~crc;
	while (len >= 8) {
		uint64_t word;
		memcpy(&word, p, 8);
		word ^= crc; /* little-endian host assumed: checked below */
		crc = table[7][word & 0xff] ^ table[6][(word >> 8) & 0xff] ^
		      table[5][(word >> 16) & 0xff] ^ table[4][(word >> 24) & 0xff] ^
		      table[3][(word >> 32) & 0xff] ^ table[2][(word >> 40) & 0xff] ^
		      table[1][(word >> 48) & 0xff] ^ table[0][word >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data,
							    size_t len)
{
	const uint8_t *p = data;
	uint64_t c = ~crc;
	while (len >= 8) {
		uint64_t word;
		memcpy(&word, p, 8);
		c = __builtin_ia32_crc32di(c, word);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}
#endif

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "slicing table assumes little-endian");

int tl_crc32c_is_hw(void)
{
	pthread_once(&table_once, table_build);
	return have_hw;
}

uint32_t tl_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
	if (tl_crc32c_is_hw())
		return crc32c_hw(crc, data, len);
#endif
	return tl_crc32c_sw(crc, data, len);
}
