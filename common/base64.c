/* base64.c - see base64.h. */
#include "base64.h"

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void tl_base64_encode(const void *data, size_t len, char *out)
{
	const uint8_t *p = data;
	char *o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64_chars[(v >> 18) & 63];
		*o++ = b64_chars[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64_chars[v & 63] : '=';
	}
	*o = '\0';
}

/* The 6-bit value of @c in either alphabet, or -1. */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

bool tl_base64_decode(const char *text, size_t text_len, uint8_t *out, size_t *out_len)
{
	size_t len = text_len;
	/* At most two '=' pad a group; more is not base64. */
	for (int pad = 0; pad < 2 && len > 0 && text[len - 1] == '='; pad++)
		len--;
	if (len % 4 == 1)
		return false;
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(text[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	*out_len = n;
	return true;
}
