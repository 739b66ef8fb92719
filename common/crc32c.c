/* crc32c.c - CRC-32C with SSE4.2 and a slicing-by-8 fallback, see crc32c.h.
 *
 * The crc32 instruction takes 3 cycles and can start one a cycle, so one chain of them
 * runs at a third of what the unit can do. Long buffers are cut into blocks of three
 * equal streams, each with its own chain (the first from the running CRC, the others
 * from 0), and the three results are joined: a CRC is linear, so the CRC of A then B is
 * CRC(A) advanced over len(B) zero bytes, xored with CRC(B) from 0. Advancing over a
 * fixed number of zero bytes is a linear map of the 32-bit register, applied with four
 * 256-entry tables (one per byte of the register), built once from the map's value on
 * each of the 32 bits. Two block sizes: STREAM_LONG streams for the bulk of a batch,
 * STREAM_SHORT ones for what is left, then one chain for the last bytes. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

#define STREAM_LONG  8192 /* bytes of each of the three streams of a long block */
#define STREAM_SHORT 256

static uint32_t table[8][256];
static uint32_t advance_long[4][256];  /* the register over STREAM_LONG zero bytes */
static uint32_t advance_short[4][256]; /* ... over STREAM_SHORT zero bytes */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int have_hw = -1;

/* @advance[k][b] = the register (no inversion) holding byte b at byte k, advanced over
 * @len zero bytes. */
static void advance_build(uint32_t advance[4][256], size_t len)
{
	uint32_t bit[32];
	for (int i = 0; i < 32; i++) {
		uint32_t crc = 1u << i;
		for (size_t n = 0; n < len; n++)
			crc = (crc >> 8) ^ table[0][crc & 0xff];
		bit[i] = crc;
	}
	for (int k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++) {
			uint32_t v = 0;
			for (int j = 0; j < 8; j++)
				if (b & (1u << j))
					v ^= bit[8 * k + j];
			advance[k][b] = v;
		}
}

static inline uint32_t advance_apply(const uint32_t advance[4][256], uint32_t crc)
{
	return advance[0][crc & 0xff] ^ advance[1][(crc >> 8) & 0xff] ^
	       advance[2][(crc >> 16) & 0xff] ^ advance[3][crc >> 24];
}

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
	advance_build(advance_long, STREAM_LONG);
	advance_build(advance_short, STREAM_SHORT);
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
static inline uint64_t load64(const uint8_t *p)
{
	uint64_t word;
	memcpy(&word, p, 8);
	return word;
}

/* Blocks of three @stream-byte streams while @len allows; returns the register. */
__attribute__((target("sse4.2"))) static inline uint64_t
crc32c_hw_blocks(uint64_t c, const uint8_t **data, size_t *len, size_t stream,
		 const uint32_t advance[4][256])
{
	const uint8_t *p = *data;
	while (*len >= 3 * stream) {
		uint64_t c1 = 0, c2 = 0;
		const uint8_t *end = p + stream;
		do {
			c = __builtin_ia32_crc32di(c, load64(p));
			c1 = __builtin_ia32_crc32di(c1, load64(p + stream));
			c2 = __builtin_ia32_crc32di(c2, load64(p + 2 * stream));
			p += 8;
		} while (p < end);
		c = advance_apply(advance, (uint32_t)c) ^ c1;
		c = advance_apply(advance, (uint32_t)c) ^ c2;
		p += 2 * stream;
		*len -= 3 * stream;
	}
	*data = p;
	return c;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data,
							    size_t len)
{
	const uint8_t *p = data;
	uint64_t c = ~crc;
	c = crc32c_hw_blocks(c, &p, &len, STREAM_LONG, advance_long);
	c = crc32c_hw_blocks(c, &p, &len, STREAM_SHORT, advance_short);
	while (len >= 8) {
		c = __builtin_ia32_crc32di(c, load64(p));
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
_Static_assert(STREAM_LONG % 8 == 0 && STREAM_SHORT % 8 == 0, "streams of whole words");

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
