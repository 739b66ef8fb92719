/* json.h - a small JSON reader: documents in memory to a tree of tl_json_value.
 * Used by `tally produce --json` (one document per line) and by the broker's etcd
 * client (the v3 gateway's responses). Strings are decoded to bytes (\uXXXX and
 * surrogate pairs to UTF-8) and may contain NULs, so they carry a length. Nesting is
 * bounded by TL_JSON_DEPTH_MAX; the caller bounds the text's size before parsing. */
#ifndef TL_COMMON_JSON_H
#define TL_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TL_JSON_DEPTH_MAX 64 /* nesting levels; recursion depth of the parser */

enum tl_json_type {
	TL_JSON_NULL,
	TL_JSON_BOOL,
	TL_JSON_NUMBER,
	TL_JSON_STRING,
	TL_JSON_ARRAY,
	TL_JSON_OBJECT,
};

struct tl_json_value {
	enum tl_json_type type;
	bool boolean;
	bool is_integer; /* a number without fraction or exponent that fits int64 */
	int64_t integer;
	double number;
	char *str; /* TL_JSON_STRING: owned, NUL-terminated, may hold NULs */
	size_t len;
	struct tl_json_value *items; /* TL_JSON_ARRAY and TL_JSON_OBJECT: owned */
	char **keys;                 /* TL_JSON_OBJECT: owned, one per item */
	size_t count;
};

/* Parses @len bytes at @text into @out. On error returns false with a message (and
 * the byte position) in @why. */
bool tl_json_parse(const char *text, size_t len, struct tl_json_value *out, char *why,
		   size_t why_size);
void tl_json_free(struct tl_json_value *value);
/* The member @key of an object, or NULL. */
const struct tl_json_value *tl_json_get(const struct tl_json_value *object, const char *key);

#endif
