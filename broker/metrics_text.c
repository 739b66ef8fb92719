/* metrics_text.c - writing Prometheus' text exposition format 0.0.4.
 * (1) A family's HELP and TYPE come first, then all its samples, contiguous.
 * (2) Label values escape backslash, double quote and newline; HELP text escapes
 *     backslash and newline.
 * (3) A histogram's buckets are cumulative and increasing in `le`; the last is +Inf and
 *     equals _count. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/metrics.h"
#include "common/assert.h"

#define LINE_MAX_BYTES 1024 /* one sample line; names and labels are far shorter */

__attribute__((format(printf, 2, 3))) static void put_fmt(struct tl_buf *out, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	TL_ASSERT(n >= 0 && (size_t)n < sizeof(line));
	tl_buf_put(out, line, (size_t)n);
}

static void put_escaped_help(struct tl_buf *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			tl_buf_put(out, "\\\\", 2);
		else if (*p == '\n')
			tl_buf_put(out, "\\n", 2);
		else
			tl_buf_put(out, p, 1);
	}
}

void tl_prom_family(struct tl_buf *out, const char *name, const char *type, const char *help)
{
	put_fmt(out, "# HELP %s ", name);
	put_escaped_help(out, help);
	put_fmt(out, "\n# TYPE %s %s\n", name, type);
}

bool tl_prom_label(char *labels, size_t size, const char *key, const char *value)
{
	size_t len = strlen(labels);
	size_t at = len;
	/* Worst case: a comma, key, =", every value byte escaped to two, ", NUL. */
	if (len + 1 + strlen(key) + 2 + 2 * strlen(value) + 2 > size)
		return false;
	if (at > 0)
		labels[at++] = ',';
	at += (size_t)snprintf(labels + at, size - at, "%s=\"", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"') {
			labels[at++] = '\\';
			labels[at++] = *p;
		} else if (*p == '\n') {
			labels[at++] = '\\';
			labels[at++] = 'n';
		} else {
			labels[at++] = *p;
		}
	}
	labels[at++] = '"';
	labels[at] = '\0';
	TL_ASSERT(at < size);
	return true;
}

static void put_name(struct tl_buf *out, const char *name, const char *suffix, const char *labels,
		     const char *extra)
{
	bool any = labels && labels[0];
	bool more = extra && extra[0];
	put_fmt(out, "%s%s", name, suffix);
	if (any || more)
		put_fmt(out, "{%s%s%s}", any ? labels : "", any && more ? "," : "",
			more ? extra : "");
}

void tl_prom_u64(struct tl_buf *out, const char *name, const char *labels, uint64_t value)
{
	put_name(out, name, "", labels, NULL);
	put_fmt(out, " %" PRIu64 "\n", value);
}

void tl_prom_f64(struct tl_buf *out, const char *name, const char *labels, double value)
{
	put_name(out, name, "", labels, NULL);
	put_fmt(out, " %.9g\n", value);
}

void tl_prom_hist(struct tl_buf *out, const char *name, const char *labels,
		  const struct tl_hist *hist, double unit, bool integral, uint32_t log2_low,
		  uint32_t log2_high)
{
	TL_ASSERT(log2_low <= log2_high);
	TL_ASSERT(log2_high < 63);
	char le[48];
	for (uint32_t k = log2_low; k <= log2_high; k++) {
		uint64_t bound = UINT64_C(1) << k;
		uint64_t top = integral ? bound - 1 : bound;
		snprintf(le, sizeof(le), "le=\"%.9g\"", (double)top * unit);
		put_name(out, name, "_bucket", labels, le);
		put_fmt(out, " %" PRIu64 "\n", tl_hist_count_below(hist, bound));
	}
	put_name(out, name, "_bucket", labels, "le=\"+Inf\"");
	put_fmt(out, " %" PRIu64 "\n", hist->count);
	put_name(out, name, "_sum", labels, NULL);
	put_fmt(out, " %.9g\n", (double)hist->sum * unit);
	put_name(out, name, "_count", labels, NULL);
	put_fmt(out, " %" PRIu64 "\n", hist->count);
}
