/* diag.h - messages for operators, one line per event:
 *   2026-11-24T23:59:01.123Z warn log: fdatasync failed topic=orders partition=3 err=EIO
 * A fixed message first, then key=value context. Library code (producer/, consumer/)
 * never prints: it reports through the user's callback. Thread-safe (one write(2) per line). */
#ifndef TL_COMMON_DIAG_H
#define TL_COMMON_DIAG_H

#include <stddef.h>

enum tl_diag_level {
	TL_DIAG_CRIT = 0,
	TL_DIAG_WARN = 1,
	TL_DIAG_INFO = 2,
	TL_DIAG_DEBUG = 3,
};

/* How a line is written (log.format). TEXT, the default, is the line above; LOGFMT is
 *   ts=2026-11-24T23:59:01.123Z level=warn msg="log: fdatasync failed" topic=orders ...
 * and JSON one object per line with the same fields, every value a string. The message
 * ends where the first key=value token begins. */
enum tl_diag_format {
	TL_DIAG_FORMAT_TEXT = 0,
	TL_DIAG_FORMAT_LOGFMT = 1,
	TL_DIAG_FORMAT_JSON = 2,
};

void tl_diag_set_format(enum tl_diag_format format);
/* Lines above @level are dropped. Default TL_DIAG_INFO. */
void tl_diag_set_level(enum tl_diag_level level);
enum tl_diag_level tl_diag_level(void);
void tl_diag(enum tl_diag_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tl_crit(...)  tl_diag(TL_DIAG_CRIT, __VA_ARGS__)
#define tl_warn(...)  tl_diag(TL_DIAG_WARN, __VA_ARGS__)
#define tl_info(...)  tl_diag(TL_DIAG_INFO, __VA_ARGS__)
#define tl_debug(...) tl_diag(TL_DIAG_DEBUG, __VA_ARGS__)

/* Writes @len bytes of @data, escaped (printable ASCII kept, the rest as \xNN), into
 * @out of @out_size bytes, always NUL-terminated. For logging peers' garbage. */
void tl_diag_escape(const void *data, size_t len, char *out, size_t out_size);

#endif
