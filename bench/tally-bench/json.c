/* json.c - a JSON writer for the reports and a small parser for `compare` and fio's
 * output. The parser builds a tree of malloc'ed nodes; depth and size are bounded
 * (JSON_DEPTH_MAX, the caller's file limit). Numbers are doubles. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tb.h"

#define JSON_DEPTH_MAX 64

/* ---- writer ---- */

static void jw_indent(struct tb_jw *w)
{
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

static void jw_string_body(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Writes the separator and the key (inside an object) before a value. */
static void jw_key(struct tb_jw *w, const char *key)
{
	if (w->depth > 0) {
		if (!w->first[w->depth])
			fputc(',', w->f);
		w->first[w->depth] = false;
		jw_indent(w);
	}
	if (key) {
		jw_string_body(w->f, key);
		fputs(": ", w->f);
	}
}

void tb_jw_begin(struct tb_jw *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	fputc('{', f);
	w->depth = 1;
	w->first[1] = true;
}

void tb_jw_end(struct tb_jw *w)
{
	w->depth = 0;
	fputs("\n}\n", w->f);
}

static void jw_open(struct tb_jw *w, const char *key, char c)
{
	jw_key(w, key);
	fputc(c, w->f);
	if (w->depth + 1 < (int)(sizeof(w->first) / sizeof(w->first[0])))
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct tb_jw *w, char c)
{
	bool empty = w->first[w->depth];
	w->depth--;
	if (!empty)
		jw_indent(w);
	fputc(c, w->f);
}

void tb_jw_obj(struct tb_jw *w, const char *key)
{
	jw_open(w, key, '{');
}

void tb_jw_obj_end(struct tb_jw *w)
{
	jw_close(w, '}');
}

void tb_jw_arr(struct tb_jw *w, const char *key)
{
	jw_open(w, key, '[');
}

void tb_jw_arr_end(struct tb_jw *w)
{
	jw_close(w, ']');
}

void tb_jw_str(struct tb_jw *w, const char *key, const char *value)
{
	jw_key(w, key);
	if (value)
		jw_string_body(w->f, value);
	else
		fputs("null", w->f);
}

void tb_jw_num(struct tb_jw *w, const char *key, double value)
{
	jw_key(w, key);
	if (!isfinite(value))
		fputs("null", w->f);
	else if (value == floor(value) && fabs(value) < 1e15)
		fprintf(w->f, "%.0f", value);
	else
		fprintf(w->f, "%.6g", value);
}

void tb_jw_u64(struct tb_jw *w, const char *key, uint64_t value)
{
	jw_key(w, key);
	fprintf(w->f, "%llu", (unsigned long long)value);
}

void tb_jw_bool(struct tb_jw *w, const char *key, bool value)
{
	jw_key(w, key);
	fputs(value ? "true" : "false", w->f);
}

void tb_jw_null(struct tb_jw *w, const char *key)
{
	jw_key(w, key);
	fputs("null", w->f);
}

/* ---- parser ---- */

struct parser {
	const char *pos;
	const char *start;
	char *err;
	size_t err_size;
	bool failed;
};

static void parse_fail(struct parser *p, const char *what)
{
	if (!p->failed)
		snprintf(p->err, p->err_size, "JSON: %s at byte %td", what, p->pos - p->start);
	p->failed = true;
}

static void skip_space(struct parser *p)
{
	while (*p->pos == ' ' || *p->pos == '\n' || *p->pos == '\r' || *p->pos == '\t')
		p->pos++;
}

static struct tb_json *node_new(enum tb_json_type type)
{
	struct tb_json *j = calloc(1, sizeof(*j));
	if (j)
		j->type = type;
	return j;
}

static bool node_push(struct tb_json *j, struct tb_json *item, char *key)
{
	struct tb_json **items = realloc(j->items, (j->count + 1) * sizeof(*items));
	if (!items)
		return false;
	j->items = items;
	if (j->type == TB_JSON_OBJECT) {
		char **keys = realloc(j->keys, (j->count + 1) * sizeof(*keys));
		if (!keys)
			return false;
		j->keys = keys;
		j->keys[j->count] = key;
	}
	j->items[j->count++] = item;
	return true;
}

static void put_utf8(char **out, unsigned code)
{
	char *o = *out;
	if (code < 0x80) {
		*o++ = (char)code;
	} else if (code < 0x800) {
		*o++ = (char)(0xc0 | (code >> 6));
		*o++ = (char)(0x80 | (code & 0x3f));
	} else {
		*o++ = (char)(0xe0 | (code >> 12));
		*o++ = (char)(0x80 | ((code >> 6) & 0x3f));
		*o++ = (char)(0x80 | (code & 0x3f));
	}
	*out = o;
}

static char *parse_string(struct parser *p)
{
	if (*p->pos != '"') {
		parse_fail(p, "expected a string");
		return NULL;
	}
	p->pos++;
	const char *end = p->pos;
	while (*end && *end != '"')
		end += (*end == '\\' && end[1]) ? 2 : 1;
	if (*end != '"') {
		parse_fail(p, "unterminated string");
		return NULL;
	}
	/* Escapes only shrink, except \u to 3 bytes from 6: the raw length suffices. */
	char *s = malloc((size_t)(end - p->pos) + 1), *o = s;
	if (!s) {
		parse_fail(p, "out of memory");
		return NULL;
	}
	while (p->pos < end) {
		char c = *p->pos++;
		if (c != '\\') {
			*o++ = c;
			continue;
		}
		c = *p->pos++;
		switch (c) {
		case 'n':
			*o++ = '\n';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'u': {
			unsigned code = 0;
			for (int i = 0; i < 4 && p->pos < end; i++) {
				char h = *p->pos++;
				code = code * 16 + (unsigned)(h >= 'a'   ? h - 'a' + 10
							      : h >= 'A' ? h - 'A' + 10
									 : h - '0');
			}
			put_utf8(&o, code & 0xffff);
			break;
		}
		default:
			*o++ = c;
		}
	}
	*o = '\0';
	p->pos = end + 1;
	return s;
}

static struct tb_json *parse_value(struct parser *p, int depth);

static struct tb_json *parse_container(struct parser *p, int depth, bool object)
{
	struct tb_json *j = node_new(object ? TB_JSON_OBJECT : TB_JSON_ARRAY);
	if (!j) {
		parse_fail(p, "out of memory");
		return NULL;
	}
	char close = object ? '}' : ']';
	p->pos++;
	skip_space(p);
	if (*p->pos == close) {
		p->pos++;
		return j;
	}
	while (!p->failed) {
		char *key = NULL;
		skip_space(p);
		if (object) {
			key = parse_string(p);
			skip_space(p);
			if (!p->failed && *p->pos++ != ':')
				parse_fail(p, "expected ':'");
		}
		struct tb_json *item = p->failed ? NULL : parse_value(p, depth + 1);
		if (!item || !node_push(j, item, key)) {
			free(key);
			tb_json_free(item);
			parse_fail(p, "bad member");
			break;
		}
		skip_space(p);
		if (*p->pos == ',') {
			p->pos++;
			continue;
		}
		if (*p->pos == close) {
			p->pos++;
			return j;
		}
		parse_fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
	tb_json_free(j);
	return NULL;
}

static struct tb_json *parse_value(struct parser *p, int depth)
{
	if (depth > JSON_DEPTH_MAX) {
		parse_fail(p, "nested too deep");
		return NULL;
	}
	skip_space(p);
	char c = *p->pos;
	if (c == '{' || c == '[')
		return parse_container(p, depth, c == '{');
	if (c == '"') {
		char *s = parse_string(p);
		struct tb_json *j = s ? node_new(TB_JSON_STRING) : NULL;
		if (!j) {
			free(s);
			return NULL;
		}
		j->string = s;
		return j;
	}
	if (strncmp(p->pos, "true", 4) == 0 || strncmp(p->pos, "false", 5) == 0) {
		struct tb_json *j = node_new(TB_JSON_BOOL);
		if (j)
			j->boolean = c == 't';
		p->pos += c == 't' ? 4 : 5;
		return j;
	}
	if (strncmp(p->pos, "null", 4) == 0) {
		p->pos += 4;
		return node_new(TB_JSON_NULL);
	}
	char *end;
	errno = 0;
	double v = strtod(p->pos, &end);
	if (end == p->pos) {
		parse_fail(p, "unexpected character");
		return NULL;
	}
	p->pos = end;
	struct tb_json *j = node_new(TB_JSON_NUMBER);
	if (j)
		j->number = v;
	return j;
}

struct tb_json *tb_json_parse(const char *text, char *err, size_t err_size)
{
	struct parser p = {.pos = text, .start = text, .err = err, .err_size = err_size};
	struct tb_json *j = parse_value(&p, 0);
	if (j && !p.failed) {
		skip_space(&p);
		if (*p.pos != '\0')
			parse_fail(&p, "trailing bytes");
	}
	if (p.failed) {
		tb_json_free(j);
		return NULL;
	}
	return j;
}

void tb_json_free(struct tb_json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->count; i++) {
		tb_json_free(j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->string);
	free(j);
}

const struct tb_json *tb_json_path(const struct tb_json *j, const char *path)
{
	const char *seg = path;
	while (j && *seg) {
		const char *dot = strchr(seg, '.');
		size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
		const struct tb_json *next = NULL;
		if (j->type == TB_JSON_OBJECT) {
			for (size_t i = 0; i < j->count; i++)
				if (strlen(j->keys[i]) == len && memcmp(j->keys[i], seg, len) == 0)
					next = j->items[i];
		} else if (j->type == TB_JSON_ARRAY) {
			char *end;
			unsigned long index = strtoul(seg, &end, 10);
			if (end == seg + len && index < j->count)
				next = j->items[index];
		}
		j = next;
		seg = dot ? dot + 1 : seg + len;
	}
	return j;
}

double tb_json_num_at(const struct tb_json *j, const char *path)
{
	const struct tb_json *v = tb_json_path(j, path);
	return v && v->type == TB_JSON_NUMBER ? v->number : NAN;
}

const char *tb_json_str_at(const struct tb_json *j, const char *path)
{
	const struct tb_json *v = tb_json_path(j, path);
	return v && v->type == TB_JSON_STRING ? v->string : NULL;
}

char *tb_read_file(const char *path, size_t limit_bytes, char *err, size_t err_size)
{
	if (err_size > 0)
		err[0] = '\0';
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len < cap)
			break;
		if (cap >= limit_bytes) {
			snprintf(err, err_size, "%s is larger than %zu bytes", path, limit_bytes);
			free(buf);
			buf = NULL;
			break;
		}
		cap *= 2;
		char *grown = realloc(buf, cap + 1);
		if (!grown) {
			free(buf);
			buf = NULL;
		}
		buf = grown;
	}
	fclose(f);
	if (!buf) {
		if (!*err)
			snprintf(err, err_size, "cannot read %s", path);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}
