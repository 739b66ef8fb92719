/* percent.c - see percent.h. */
#include "common/percent.h"

#include "common/assert.h"

bool tl_percent_is_plain(enum tl_percent_plain plain, unsigned char c)
{
	if (plain == TL_PERCENT_PLAIN_NAME)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		       c == '.' || c == '_' || c == '-';
	TL_ASSERT(plain == TL_PERCENT_PLAIN_PRINTABLE);
	return c > ' ' && c < 0x7f && c != '%';
}

size_t tl_percent_encoded_len(enum tl_percent_plain plain, const char *data, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += tl_percent_is_plain(plain, (unsigned char)data[i]) ? 1 : 3;
	return n;
}

size_t tl_percent_encode(enum tl_percent_plain plain, const char *data, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char *p = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (tl_percent_is_plain(plain, c)) {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return (size_t)(p - out);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool tl_percent_decode(const char *text, size_t text_len, char *out, size_t out_size,
		       size_t *out_len)
{
	TL_ASSERT(out_size > 0);
	size_t n = 0;
	for (size_t i = 0; i < text_len; i++) {
		if (n + 1 >= out_size)
			return false;
		char c = text[i];
		if (c == '%') {
			if (text_len - i < 3)
				return false;
			int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0')
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	*out_len = n;
	return true;
}
