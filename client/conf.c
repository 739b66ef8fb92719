/* conf.c - client configuration tables and checks, see conf.h. */
#include "conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

void tl_conf_errstr(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	if (!errstr || errstr_size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
}

tl_err tl_conf_init(struct tl_conf *conf, const struct tl_conf_key *keys, size_t key_count)
{
	conf->keys = keys;
	conf->key_count = key_count;
	conf->values = calloc(key_count, sizeof(*conf->values));
	return conf->values ? TL_OK : TL_ERR_NOMEM;
}

void tl_conf_deinit(struct tl_conf *conf)
{
	if (conf->values)
		for (size_t i = 0; i < conf->key_count; i++)
			free(conf->values[i]);
	free(conf->values);
	conf->values = NULL;
}

tl_err tl_conf_copy(struct tl_conf *dst, const struct tl_conf *src)
{
	tl_err err = tl_conf_init(dst, src->keys, src->key_count);
	if (err != TL_OK)
		return err;
	for (size_t i = 0; i < src->key_count; i++) {
		if (!src->values[i])
			continue;
		dst->values[i] = strdup(src->values[i]);
		if (!dst->values[i]) {
			tl_conf_deinit(dst);
			return TL_ERR_NOMEM;
		}
	}
	return TL_OK;
}

static const struct tl_conf_key *conf_find(const struct tl_conf *conf, const char *key,
					   size_t *index_out)
{
	for (size_t i = 0; i < conf->key_count; i++) {
		if (strcmp(conf->keys[i].name, key) == 0) {
			if (index_out)
				*index_out = i;
			return &conf->keys[i];
		}
	}
	return NULL;
}

/* Levenshtein distance, for the did-you-mean hint; keys are short (< 64 chars). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 64;
	size_t row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = TL_MIN(row[j] + 1, row[j - 1] + 1);
			row[j] = TL_MIN(best, diag + cost);
			diag = up;
		}
	}
	return row[lb];
}

static const char *conf_closest(const struct tl_conf *conf, const char *key)
{
	const char *best = NULL;
	size_t best_distance = 4; /* more than 3 edits away is no suggestion */
	for (size_t i = 0; i < conf->key_count; i++) {
		size_t d = edit_distance(key, conf->keys[i].name);
		if (d < best_distance) {
			best_distance = d;
			best = conf->keys[i].name;
		}
	}
	return best;
}

static bool choice_ok(const char *choices, const char *value)
{
	size_t len = strlen(value);
	const char *p = choices;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (n == len && strncmp(p, value, n) == 0)
			return true;
		if (!bar)
			break;
		p = bar + 1;
	}
	return false;
}

static bool parse_int(const char *value, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		return false;
	*out = v;
	return true;
}

static tl_err conf_check(const struct tl_conf_key *k, const char *value, char *errstr,
			 size_t errstr_size)
{
	int64_t v;
	switch (k->type) {
	case TL_CONF_STR:
		return TL_OK;
	case TL_CONF_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
			return TL_OK;
		tl_conf_errstr(errstr, errstr_size, "%s=%s: expected true or false", k->name,
			       value);
		return TL_ERR_INVALID;
	case TL_CONF_INT:
		if (!parse_int(value, &v)) {
			tl_conf_errstr(errstr, errstr_size, "%s=%s: expected an integer", k->name,
				       value);
			return TL_ERR_INVALID;
		}
		if (v < k->min || v > k->max) {
			tl_conf_errstr(errstr, errstr_size,
				       "%s=%s: out of range, must be between %lld and %lld",
				       k->name, value, (long long)k->min, (long long)k->max);
			return TL_ERR_INVALID;
		}
		return TL_OK;
	case TL_CONF_ENUM:
		if (choice_ok(k->choices, value))
			return TL_OK;
		tl_conf_errstr(errstr, errstr_size, "%s=%s: expected one of %s", k->name, value,
			       k->choices);
		return TL_ERR_INVALID;
	}
	return TL_ERR_INVALID;
}

tl_err tl_conf_set(struct tl_conf *conf, const char *key, const char *value, char *errstr,
		   size_t errstr_size)
{
	if (!key || !value) {
		tl_conf_errstr(errstr, errstr_size, "configuration key and value must not be NULL");
		return TL_ERR_INVALID;
	}
	size_t index;
	const struct tl_conf_key *k = conf_find(conf, key, &index);
	if (!k) {
		const char *near = conf_closest(conf, key);
		if (near)
			tl_conf_errstr(errstr, errstr_size,
				       "unknown configuration key '%s'; did you mean '%s'?", key,
				       near);
		else
			tl_conf_errstr(
				errstr, errstr_size,
				"unknown configuration key '%s' (see docs/libtally.md for the keys this client accepts)",
				key);
		return TL_ERR_INVALID;
	}
	if (k->refusal) {
		tl_conf_errstr(errstr, errstr_size, "%s: %s", key, k->refusal);
		return TL_ERR_INVALID;
	}
	tl_err err = conf_check(k, value, errstr, errstr_size);
	if (err != TL_OK)
		return err;
	char *copy = strdup(value);
	if (!copy) {
		tl_conf_errstr(errstr, errstr_size, "out of memory");
		return TL_ERR_NOMEM;
	}
	free(conf->values[index]);
	conf->values[index] = copy;
	return TL_OK;
}

bool tl_conf_is_set(const struct tl_conf *conf, const char *key)
{
	size_t index;
	const struct tl_conf_key *k = conf_find(conf, key, &index);
	TL_ASSERT(k);
	return conf->values[index] != NULL;
}

const char *tl_conf_str(const struct tl_conf *conf, const char *key)
{
	size_t index;
	const struct tl_conf_key *k = conf_find(conf, key, &index);
	TL_ASSERT(k);
	return conf->values[index] ? conf->values[index] : k->default_value;
}

int64_t tl_conf_int(const struct tl_conf *conf, const char *key)
{
	const char *s = tl_conf_str(conf, key);
	int64_t v = 0;
	if (!s || !parse_int(s, &v))
		return 0;
	return v;
}

bool tl_conf_bool(const struct tl_conf *conf, const char *key)
{
	const char *s = tl_conf_str(conf, key);
	return s && strcmp(s, "true") == 0;
}
