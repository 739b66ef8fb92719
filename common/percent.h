/* percent.h - percent-hex escaping of names in the broker's metadata text files (the ACL
 * and quota stores): a byte the file may not hold as itself is written "%XX", two
 * upper-case hex digits. Each file keeps its own set of bytes written as themselves
 * (enum tl_percent_plain), so its format stays what it was; the decoder is the same for
 * both and takes either case of hex. */
#ifndef TL_COMMON_PERCENT_H
#define TL_COMMON_PERCENT_H

#include <stdbool.h>
#include <stddef.h>

/* Which bytes the encoder writes as themselves; every other byte becomes %XX. */
enum tl_percent_plain {
	TL_PERCENT_PLAIN_PRINTABLE = 0, /* ACL file: '!'..'~' except '%' */
	TL_PERCENT_PLAIN_NAME = 1,      /* quota file: A-Z a-z 0-9 . _ - */
};

/* True when @plain writes byte @c as itself. */
bool tl_percent_is_plain(enum tl_percent_plain plain, unsigned char c);

/* Characters tl_percent_encode() writes for @len bytes of @data, without the NUL. */
size_t tl_percent_encoded_len(enum tl_percent_plain plain, const char *data, size_t len);

/* Encodes @len bytes of @data into @out, which holds tl_percent_encoded_len() + 1 chars;
 * the text is NUL-terminated. Returns the characters written, without the NUL. */
size_t tl_percent_encode(enum tl_percent_plain plain, const char *data, size_t len, char *out);

/* Decodes @text_len chars of @text into @out (of @out_size bytes, NUL-terminated) and sets
 * @out_len. False (@out_len untouched) when a '%' is not followed by two hex digits, a byte
 * decodes to NUL, or the name does not fit in @out_size - 1 bytes. Any byte other than '%'
 * is taken as itself, whichever set wrote the file. */
bool tl_percent_decode(const char *text, size_t text_len, char *out, size_t out_size,
		       size_t *out_len);

#endif
