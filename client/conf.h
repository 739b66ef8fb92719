/* conf.h - key=value configuration with Kafka client key names, shared by the
 * producer, consumer and admin clients. Each client passes its own table of known keys;
 * a key outside the table, or a value of the wrong type or range, is rejected with a
 * message that names the key and suggests the closest known one.
 * (1) values[i] is NULL until key i is set; getters then return the table default.
 * (2) Every stored value has passed its key's type and range check. */
#ifndef TL_CLIENT_CONF_H
#define TL_CLIENT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/error.h"

enum tl_conf_type {
	TL_CONF_STR,
	TL_CONF_INT,  /* decimal int64 in [min, max] */
	TL_CONF_BOOL, /* true|false */
	TL_CONF_ENUM, /* one of choices, '|' separated */
};

struct tl_conf_key {
	const char *name;
	enum tl_conf_type type;
	const char *default_value; /* NULL: no default (unset) */
	int64_t min;
	int64_t max;
	const char *choices; /* TL_CONF_ENUM only */
	const char *refusal; /* non-NULL: setting this key fails with this message */
};

struct tl_conf {
	const struct tl_conf_key *keys;
	size_t key_count;
	char **values; /* owned, one per key */
};

tl_err tl_conf_init(struct tl_conf *conf, const struct tl_conf_key *keys, size_t key_count);
void tl_conf_deinit(struct tl_conf *conf);
/* Copies @src's values into @dst (same table). */
tl_err tl_conf_copy(struct tl_conf *dst, const struct tl_conf *src);
tl_err tl_conf_set(struct tl_conf *conf, const char *key, const char *value, char *errstr,
		   size_t errstr_size);
bool tl_conf_is_set(const struct tl_conf *conf, const char *key);
/* Getters assert that @key is in the table (a typo in our code is our bug). */
const char *tl_conf_str(const struct tl_conf *conf, const char *key);
int64_t tl_conf_int(const struct tl_conf *conf, const char *key);
bool tl_conf_bool(const struct tl_conf *conf, const char *key);

/* Writes a message into @errstr (always NUL-terminated when @errstr_size > 0). */
void tl_conf_errstr(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
