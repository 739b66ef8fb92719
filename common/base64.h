/* base64.h - base64 (RFC 4648) to and from caller-sized buffers.
 * The encoder writes the standard alphabet with '=' padding. The decoder also takes
 * the URL-safe alphabet ('-', '_') and missing padding, and refuses anything else, so
 * bytes from a peer either decode exactly or fail. */
#ifndef TL_COMMON_BASE64_H
#define TL_COMMON_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters tl_base64_encode() writes for @len bytes, without the NUL. */
static inline size_t tl_base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

/* Bytes tl_base64_decode() may write for @text_len characters: an upper bound. */
static inline size_t tl_base64_decoded_len_max(size_t text_len)
{
	return text_len / 4 * 3 + 3;
}

/* Encodes @len bytes of @data into @out, which holds tl_base64_encoded_len(@len) + 1
 * chars; the text is NUL-terminated. */
void tl_base64_encode(const void *data, size_t len, char *out);

/* Decodes @text_len chars of @text into @out, which holds
 * tl_base64_decoded_len_max(@text_len) bytes, and sets @out_len. False (and @out_len
 * untouched) when @text is not base64. */
bool tl_base64_decode(const char *text, size_t text_len, uint8_t *out, size_t *out_len);

#endif
