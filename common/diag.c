/* diag.c - operator messages on stderr, see diag.h. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "assert.h"

static enum tl_diag_level diag_level = TL_DIAG_INFO;

static const char *const level_names[] = {"crit", "warn", "info", "debug"};

void tl_diag_set_level(enum tl_diag_level level)
{
	diag_level = level;
}

enum tl_diag_level tl_diag_level(void)
{
	return diag_level;
}

void tl_diag(enum tl_diag_level level, const char *fmt, ...)
{
	if (level > diag_level)
		return;
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : TL_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
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
