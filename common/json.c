/* json.c - see json.h. A recursive-descent parser over one document in memory. */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const char *p;
	const char *end;
	const char *start;
	char *why;
	size_t why_size;
	bool failed;
};

static void fail(struct parser *ps, const char *msg)
{
	if (!ps->failed)
		snprintf(ps->why, ps->why_size, "%s at byte %zu", msg, (size_t)(ps->p - ps->start));
	ps->failed = true;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* A growing byte buffer for decoded strings. */
struct sbuf {
	char *data;
	size_t len;
	size_t cap;
};

static bool sbuf_put(struct sbuf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return false;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

static bool put_utf8(struct sbuf *b, uint32_t cp)
{
	char out[4];
	size_t n;
	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return sbuf_put(b, out, n);
}

static bool hex4(struct parser *ps, uint32_t *out)
{
	if (ps->end - ps->p < 4)
		return false;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char c = ps->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return false;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static bool parse_escape(struct parser *ps, struct sbuf *b)
{
	char c = *ps->p++;
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *at = c ? strchr(from, c) : NULL;
	if (at)
		return sbuf_put(b, &to[at - from], 1);
	if (c != 'u') {
		fail(ps, "bad escape in string");
		return false;
	}
	uint32_t cp;
	if (!hex4(ps, &cp)) {
		fail(ps, "bad \\u escape");
		return false;
	}
	if (cp >= 0xd800 && cp <= 0xdbff && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
	    ps->p[1] == 'u') {
		const char *save = ps->p;
		ps->p += 2;
		uint32_t lo;
		if (hex4(ps, &lo) && lo >= 0xdc00 && lo <= 0xdfff)
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		else
			ps->p = save;
	}
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd; /* a lone surrogate */
	return put_utf8(b, cp);
}

static bool parse_string(struct parser *ps, char **out, size_t *len_out)
{
	struct sbuf b = {NULL, 0, 0};
	ps->p++; /* opening quote */
	if (!sbuf_put(&b, "", 0))
		goto oom;
	while (ps->p < ps->end && *ps->p != '"') {
		const char *run = ps->p;
		while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' &&
		       (unsigned char)*ps->p >= 0x20)
			ps->p++;
		if (!sbuf_put(&b, run, (size_t)(ps->p - run)))
			goto oom;
		if (ps->p < ps->end && (unsigned char)*ps->p < 0x20) {
			fail(ps, "control character in string");
			free(b.data);
			return false;
		}
		if (ps->p < ps->end && *ps->p == '\\') {
			ps->p++;
			if (ps->p >= ps->end || !parse_escape(ps, &b)) {
				fail(ps, "bad escape in string");
				free(b.data);
				return false;
			}
		}
	}
	if (ps->p >= ps->end) {
		fail(ps, "unterminated string");
		free(b.data);
		return false;
	}
	ps->p++;
	*out = b.data;
	*len_out = b.len;
	return true;
oom:
	fail(ps, "out of memory");
	free(b.data);
	return false;
}

static void parse_number(struct parser *ps, struct tl_json_value *out)
{
	const char *start = ps->p;
	bool integer = true;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	while (ps->p < ps->end &&
	       ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.' || *ps->p == 'e' ||
		*ps->p == 'E' || *ps->p == '+' || *ps->p == '-')) {
		if (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')
			integer = false;
		ps->p++;
	}
	char buf[64];
	size_t len = (size_t)(ps->p - start);
	if (len == 0 || len >= sizeof(buf)) {
		fail(ps, "bad number");
		return;
	}
	memcpy(buf, start, len);
	buf[len] = '\0';
	char *end;
	out->type = TL_JSON_NUMBER;
	errno = 0;
	out->number = strtod(buf, &end);
	if (*end != '\0') {
		fail(ps, "bad number");
		return;
	}
	if (integer) {
		errno = 0;
		long long v = strtoll(buf, &end, 10);
		out->is_integer = errno == 0 && *end == '\0';
		out->integer = v;
	}
}

static bool parse_value(struct parser *ps, struct tl_json_value *out, int depth);

static bool add_item(struct parser *ps, struct tl_json_value *container, char *key, int depth)
{
	struct tl_json_value *items =
		realloc(container->items, (container->count + 1) * sizeof(*items));
	if (!items) {
		fail(ps, "out of memory");
		free(key);
		return false;
	}
	container->items = items;
	if (container->type == TL_JSON_OBJECT) {
		char **keys = realloc(container->keys, (container->count + 1) * sizeof(*keys));
		if (!keys) {
			fail(ps, "out of memory");
			free(key);
			return false;
		}
		container->keys = keys;
		keys[container->count] = key;
	}
	struct tl_json_value *item = &items[container->count];
	memset(item, 0, sizeof(*item));
	container->count++;
	return parse_value(ps, item, depth + 1);
}

static bool parse_container(struct parser *ps, struct tl_json_value *out, int depth)
{
	bool object = *ps->p == '{';
	char close = object ? '}' : ']';
	out->type = object ? TL_JSON_OBJECT : TL_JSON_ARRAY;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return true;
	}
	for (;;) {
		skip_ws(ps);
		char *key = NULL;
		if (object) {
			size_t key_len;
			if (ps->p >= ps->end || *ps->p != '"' ||
			    !parse_string(ps, &key, &key_len)) {
				fail(ps, "expected a string key");
				return false;
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				fail(ps, "expected ':'");
				return false;
			}
			ps->p++;
		}
		if (!add_item(ps, out, key, depth))
			return false;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return true;
		}
		fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
		return false;
	}
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static bool parse_value(struct parser *ps, struct tl_json_value *out, int depth)
{
	if (depth > TL_JSON_DEPTH_MAX) {
		fail(ps, "nested too deeply");
		return false;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end");
		return false;
	}
	char c = *ps->p;
	if (c == '{' || c == '[')
		return parse_container(ps, out, depth);
	if (c == '"') {
		out->type = TL_JSON_STRING;
		return parse_string(ps, &out->str, &out->len);
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		parse_number(ps, out);
		return !ps->failed;
	}
	if (literal(ps, "true")) {
		out->type = TL_JSON_BOOL;
		out->boolean = true;
		return true;
	}
	if (literal(ps, "false")) {
		out->type = TL_JSON_BOOL;
		return true;
	}
	if (literal(ps, "null")) {
		out->type = TL_JSON_NULL;
		return true;
	}
	fail(ps, "unexpected character");
	return false;
}

bool tl_json_parse(const char *text, size_t len, struct tl_json_value *out, char *why,
		   size_t why_size)
{
	struct parser ps = {text, text + len, text, why, why_size, false};
	memset(out, 0, sizeof(*out));
	bool ok = parse_value(&ps, out, 0);
	skip_ws(&ps);
	if (ok && ps.p != ps.end) {
		fail(&ps, "trailing characters");
		ok = false;
	}
	if (!ok)
		tl_json_free(out);
	return ok;
}

void tl_json_free(struct tl_json_value *value)
{
	for (size_t i = 0; i < value->count; i++) {
		tl_json_free(&value->items[i]);
		if (value->keys)
			free(value->keys[i]);
	}
	free(value->items);
	free(value->keys);
	free(value->str);
	memset(value, 0, sizeof(*value));
}

const struct tl_json_value *tl_json_get(const struct tl_json_value *object, const char *key)
{
	if (object->type != TL_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < object->count; i++)
		if (object->keys[i] && strcmp(object->keys[i], key) == 0)
			return &object->items[i];
	return NULL;
}
