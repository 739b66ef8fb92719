/* json.h - a small JSON reader for `tally produce --json` (one document per line).
 * Strings are decoded to bytes (\uXXXX and surrogate pairs to UTF-8) and may contain
 * NULs, so they carry a length. Depth and sizes are bounded by the line. */
#ifndef TL_TOOLS_JSON_H
#define TL_TOOLS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX 64

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_value {
	enum json_type type;
	bool boolean;
	bool is_integer; /* a number without fraction or exponent that fits int64 */
	int64_t integer;
	double number;
	char *str; /* JSON_STRING: owned, NUL-terminated, may hold NULs */
	size_t len;
	struct json_value *items; /* JSON_ARRAY and JSON_OBJECT: owned */
	char **keys;              /* JSON_OBJECT: owned, one per item */
	size_t count;
};

/* Parses @len bytes at @text into @out. On error returns false with a message (and
 * the byte position) in @why. */
bool json_parse(const char *text, size_t len, struct json_value *out, char *why, size_t why_size);
void json_free(struct json_value *value);
/* The member @key of an object, or NULL. */
const struct json_value *json_get(const struct json_value *object, const char *key);

#endif
