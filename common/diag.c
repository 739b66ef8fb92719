/* diag.c - operator messages on stderr, see diag.h. */
#include "diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assert.h"

static enum tl_diag_level diag_level = TL_DIAG_INFO;
static enum tl_diag_format diag_format = TL_DIAG_FORMAT_TEXT;

#define LINE_BYTES 1024 /* a message; the JSON form may take twice that */

static const char *const level_names[] = {"crit", "warn", "info", "debug"};

void tl_diag_set_level(enum tl_diag_level level)
{
	diag_level = level;
}

enum tl_diag_level tl_diag_level(void)
{
	return diag_level;
}

void tl_diag_set_format(enum tl_diag_format format)
{
	diag_format = format;
}

/* ---- logfmt and JSON ---- */

/* True when the token at @p is key=... (key: [a-z_][a-z0-9_.]*). */
static bool is_pair(const char *p)
{
	if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
		return false;
	while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.')
		p++;
	return *p == '=';
}

/* Where the message of @body ends: at the space before its first key=value token. */
static size_t message_end(const char *body)
{
	for (const char *p = body; *p; p++)
		if (*p == ' ' && is_pair(p + 1))
			return (size_t)(p - body);
	return strlen(body);
}

struct out {
	char *buf;
	size_t len;
	size_t cap; /* one byte is kept for the newline */
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (n > o->cap - 1 - o->len)
		n = o->cap - 1 - o->len;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void out_json_string(struct out *o, const char *s, size_t n)
{
	out_put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			out_put(o, esc, 2);
		} else if (c < 0x20) {
			int k = snprintf(esc, sizeof(esc), "\\u%04x", c);
			out_put(o, esc, (size_t)k);
		} else {
			out_put(o, (const char *)&s[i], 1);
		}
	}
	out_put(o, "\"", 1);
}

/* Splits "k=v k2=\"quoted v\" ..." and writes ,"k":"v" pairs; a token that is not a
 * pair joins the value before it. */
static void out_json_pairs(struct out *o, const char *p)
{
	while (*p == ' ')
		p++;
	while (*p) {
		const char *key = p;
		const char *eq = strchr(p, '=');
		if (!eq)
			break;
		const char *v = eq + 1, *end;
		bool quoted = *v == '"';
		if (quoted) {
			end = v + 1;
			while (*end && *end != '"')
				end += end[0] == '\\' && end[1] ? 2 : 1;
			p = *end ? end + 1 : end;
			v++;
		} else {
			end = v;
			for (;;) {
				end += strcspn(end, " ");
				if (!*end || is_pair(end + 1))
					break;
				end++;
			}
			p = end;
		}
		out_put(o, ",", 1);
		out_json_string(o, key, (size_t)(eq - key));
		out_put(o, ":", 1);
		out_json_string(o, v, (size_t)(end - v));
		while (*p == ' ')
			p++;
	}
}

/* Rewrites @body (the message and its pairs) in the chosen format into @o. */
static void format_line(struct out *o, const char *ts, const char *level, const char *body)
{
	size_t msg = message_end(body);
	if (diag_format == TL_DIAG_FORMAT_LOGFMT) {
		char head[96];
		int n = snprintf(head, sizeof(head), "ts=%s level=%s msg=\"", ts, level);
		out_put(o, head, (size_t)n);
		for (size_t i = 0; i < msg; i++) {
			if (body[i] == '"' || body[i] == '\\')
				out_put(o, "\\", 1);
			out_put(o, &body[i], 1);
		}
		out_put(o, "\"", 1);
		out_put(o, body + msg, strlen(body + msg));
		return;
	}
	out_put(o, "{\"ts\":", 6);
	out_json_string(o, ts, strlen(ts));
	out_put(o, ",\"level\":", 9);
	out_json_string(o, level, strlen(level));
	out_put(o, ",\"msg\":", 7);
	out_json_string(o, body, msg);
	out_json_pairs(o, body + msg);
	out_put(o, "}", 1);
}

void tl_diag(enum tl_diag_level level, const char *fmt, ...)
{
	if (level > diag_level)
		return;
	char line[LINE_BYTES];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[96];
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	int n = snprintf(line, sizeof(line), "%s %s ", stamp, level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : TL_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
	if (diag_format != TL_DIAG_FORMAT_TEXT) {
		line[len] = '\0';
		char formatted[2 * LINE_BYTES + 64];
		struct out o = {formatted, 0, sizeof(formatted)};
		format_line(&o, stamp, level_names[level], line + n);
		formatted[o.len++] = '\n';
		ssize_t w = write(STDERR_FILENO, formatted, o.len);
		(void)w;
		return;
	}
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void tl_diag_escape(const void *data, size_t len, char *out, size_t out_size)
{
	const unsigned char *p = data;
	size_t o = 0;
	TL_ASSERT(out_size > 0);
	for (size_t i = 0; i < len && o + 5 < out_size; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, out_size - o, "\\x%02x", p[i]);
	}
	out[o] = '\0';
}

_Noreturn void tl_assert_fail(const char *expr, const char *file, int line)
{
	tl_crit("assertion failed expr=\"%s\" file=%s line=%d", expr, file, line);
	abort();
}
