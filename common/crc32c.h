/* crc32c.h - CRC-32C (Castagnoli), as record batch v2 uses.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else a slicing-by-8 table. */
#ifndef TL_COMMON_CRC32C_H
#define TL_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues @crc (0 to start) over @len bytes of @data. */
uint32_t tl_crc32c(uint32_t crc, const void *data, size_t len);
/* The table implementation, for tests that compare both paths. */
uint32_t tl_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* True when tl_crc32c uses the hardware instruction. */
int tl_crc32c_is_hw(void);

#endif
