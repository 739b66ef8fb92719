/* offspec.c - the offset grammar of `tally tail -o` and `tally group seek`, parsed before
 * any connection is made so a typo costs nothing:
 *   SPEC  := POS | POS ':' POS | ':' POS
 *   POS   := beginning | end | N | -N | +N | @TIME
 *   TIME  := RFC 3339 | YYYY-MM-DD | epoch ms | -DURATION (back from now) | now
 * A time contains ':' itself, so the separator is the first ':' at which both sides
 * parse. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common/time.h"

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Reads exactly @n digits at *@p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.frac]][Z|+HH:MM|-HH:MM]]. */
static bool rfc3339_parse(const char *s, int64_t *ms_out)
{
	const char *p = s;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int year, mon, day, hour = 0, min = 0, sec = 0, frac_ms = 0;
	if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &mon) || *p++ != '-' ||
	    !digits(&p, 2, &day))
		return false;
	bool has_time = false;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		has_time = true;
		if (!digits(&p, 2, &hour) || *p++ != ':' || !digits(&p, 2, &min))
			return false;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return false;
			if (*p == '.' || *p == ',') {
				p++;
				int scale = 100, n = 0;
				while (isdigit((unsigned char)*p)) {
					frac_ms += (*p - '0') * scale;
					scale /= 10;
					p++;
					n++;
				}
				if (n == 0)
					return false;
			}
		}
	}
	bool utc = false;
	int offset_min = 0;
	if (*p == 'Z' || *p == 'z') {
		utc = true;
		p++;
	} else if (has_time && (*p == '+' || *p == '-')) {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (!digits(&p, 2, &oh))
			return false;
		if (*p == ':')
			p++;
		if (!digits(&p, 2, &om))
			return false;
		utc = true;
		offset_min = sign * (oh * 60 + om);
	}
	if (*p != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
	    sec > 60)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	time_t t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1 && !(year == 1969 && mon == 12 && day == 31))
		return false;
	*ms_out = ((int64_t)t - (int64_t)offset_min * 60) * 1000 + frac_ms;
	return true;
}

bool cli_time_parse(const char *s, int64_t now_ms, int64_t *ms_out, char *why, size_t why_size)
{
	size_t len = strlen(s);
	if (strcmp(s, "now") == 0) {
		*ms_out = now_ms;
		return true;
	}
	if (all_digits(s, len)) {
		int64_t v;
		if (!cli_parse_int64(s, &v))
			goto bad;
		*ms_out = v;
		return true;
	}
	if (s[0] == '-') {
		int64_t back;
		if (!cli_parse_duration_ms(s + 1, &back) || all_digits(s + 1, len - 1))
			goto bad;
		*ms_out = now_ms - back;
		return true;
	}
	if (rfc3339_parse(s, ms_out))
		return true;
bad:
	snprintf(
		why, why_size,
		"bad time \"%s\": use RFC 3339 (2024-05-01T12:00:00Z), a date (2024-05-01), epoch milliseconds, or a duration back from now (-1h, -30m, -2d)",
		s);
	return false;
}

/* Parses one POS of @len bytes at @s. */
static bool pos_parse(const char *s, size_t len, struct cli_pos *out, char *why, size_t why_size)
{
	char buf[128];
	if (len == 0 || len >= sizeof(buf)) {
		snprintf(why, why_size, "empty or overlong position");
		return false;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	int64_t v;
	if (strcmp(buf, "beginning") == 0 || strcmp(buf, "earliest") == 0 ||
	    strcmp(buf, "start") == 0) {
		out->kind = CLI_POS_BEGINNING;
	} else if (strcmp(buf, "end") == 0 || strcmp(buf, "latest") == 0) {
		out->kind = CLI_POS_END;
	} else if (buf[0] == '@') {
		out->kind = CLI_POS_TIME;
		if (!cli_time_parse(buf + 1, tl_wall_ms(), &out->value, why, why_size))
			return false;
	} else if ((buf[0] == '-' || buf[0] == '+') && all_digits(buf + 1, len - 1) &&
		   cli_parse_int64(buf + 1, &v)) {
		out->kind = buf[0] == '-' ? CLI_POS_FROM_END : CLI_POS_FROM_START;
		out->value = v;
	} else if (all_digits(buf, len) && cli_parse_int64(buf, &v)) {
		out->kind = CLI_POS_OFFSET;
		out->value = v;
	} else {
		snprintf(why, why_size,
			 "\"%s\" is not a position: use beginning, end, N, -N, +N or @TIME", buf);
		return false;
	}
	return true;
}

static bool spec_check(const struct cli_offset_spec *spec, char *why, size_t why_size)
{
	if (spec->start.kind == CLI_POS_OFFSET && spec->stop.kind == CLI_POS_OFFSET &&
	    spec->stop.value <= spec->start.value) {
		snprintf(why, why_size,
			 "the stop offset %lld is not after the start %lld (the stop is exclusive)",
			 (long long)spec->stop.value, (long long)spec->start.value);
		return false;
	}
	if (spec->start.kind == CLI_POS_TIME && spec->stop.kind == CLI_POS_TIME &&
	    spec->stop.value <= spec->start.value) {
		snprintf(why, why_size, "the stop time is not after the start time");
		return false;
	}
	if (spec->has_stop && spec->stop.kind == CLI_POS_BEGINNING) {
		snprintf(why, why_size, "\"beginning\" cannot be a stop");
		return false;
	}
	if (spec->has_stop && spec->stop.kind == CLI_POS_FROM_START && spec->stop.value == 0) {
		snprintf(why, why_size, "a stop of +0 reads nothing");
		return false;
	}
	return true;
}

bool cli_offset_spec_parse(const char *s, struct cli_offset_spec *out, char *why, size_t why_size)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(s);
	char whole_why[256] = "";
	if (len == 0) {
		snprintf(why, why_size, "empty offset");
		return false;
	}
	if (s[0] != ':' && pos_parse(s, len, &out->start, whole_why, sizeof(whole_why)))
		return spec_check(out, why, why_size);
	char stop_why[256] = ""; /* why the stop failed where the start parsed */
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ':')
			continue;
		struct cli_offset_spec spec;
		memset(&spec, 0, sizeof(spec));
		spec.has_stop = true;
		char w[256] = "";
		if (i > 0 && !pos_parse(s, i, &spec.start, w, sizeof(w)))
			continue;
		bool ok = i + 1 < len;
		if (!ok)
			snprintf(w, sizeof(w), "missing stop after ':'");
		else
			ok = pos_parse(s + i + 1, len - i - 1, &spec.stop, w, sizeof(w));
		if (ok) {
			*out = spec;
			return spec_check(out, why, why_size);
		}
		if (!stop_why[0])
			snprintf(stop_why, sizeof(stop_why), "%s", w);
	}
	if (stop_why[0])
		snprintf(why, why_size, "bad offset \"%s\": %s", s, stop_why);
	else if (whole_why[0] && s[0] == '@')
		snprintf(why, why_size, "bad offset \"%s\": %s", s, whole_why);
	else
		snprintf(
			why, why_size,
			"bad offset \"%s\": use beginning, end, N, -N, +N, @TIME, or START:STOP (stop exclusive)",
			s);
	return false;
}
