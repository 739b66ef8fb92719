/* quota.h - client quotas (KIP-13, KIP-55, KIP-219, KIP-257, KIP-546).
 *
 * Quotas are set on entities: a user, a client id, or a user and a client id, each
 * either named or the `<default>` of its type. A request of (user, client id) takes,
 * per quota key, the value of the first entity that has that key, in Kafka's order:
 *   1. user + client-id   5. <default> user + <default> client-id
 *   2. user + <default>   6. <default> user
 *   3. user               7. client-id
 *   4. <default> user + client-id   8. <default> client-id
 * The entity that matched also says who shares a rate sensor: a named user quota is
 * shared by every client id of that user; a `<default>` one gives each name its own
 * sensor (Kafka's metric tags). Until security exists the user is "ANONYMOUS".
 *
 * Rates are Kafka's SampledStat Rate: quota.window.num samples of
 * quota.window.size.seconds each; a sample older than all of them is reset; the rate is
 * the sum over the elapsed time since the oldest sample, counted as at least one
 * window (Kafka: num - 1 windows, which makes a bursting client's rate swing by
 * +-25 % around the quota; see quota.c). A request that takes the rate over the quota is throttled
 * for (rate - quota) / quota * elapsed ms (Kafka's QuotaUtils.throttleTime), capped here at num *
 * window.
 *
 * Enforced: producer_byte_rate (Produce request bytes) and consumer_byte_rate (Fetch
 * response bytes, consumers only, not replicas). request_percentage and
 * controller_mutation_rate are accepted and stored, not enforced.
 *
 * Sensors are created on a client's first request under a quota and expire after an
 * hour idle (Kafka's inactive sensor expiry); nothing is allocated per request. */
#ifndef TL_BROKER_QUOTA_H
#define TL_BROKER_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "tally/error.h"

#define TL_QUOTA_USER_ANONYMOUS   "ANONYMOUS"
#define TL_QUOTA_WINDOWS_MAX      64
#define TL_QUOTA_ENTITIES_MAX     10000
#define TL_QUOTA_SENSORS_MAX      100000
#define TL_QUOTA_SENSOR_IDLE_MS   (3600 * 1000)
#define TL_QUOTA_NAME_MAX         1024 /* longest user or client id name kept in a quota */
/* The shortest span a rate is measured over, in windows (Kafka: quota.window.num - 1;
 * see tl_quota_rate_window_ms for why one). */
#define TL_QUOTA_MIN_FULL_WINDOWS 1

enum tl_quota_key {
	TL_QUOTA_PRODUCER_BYTE_RATE = 0,
	TL_QUOTA_CONSUMER_BYTE_RATE = 1,
	TL_QUOTA_REQUEST_PERCENTAGE = 2,
	TL_QUOTA_CONTROLLER_MUTATION_RATE = 3,
	TL_QUOTA_KEYS = 4,
};

/* Kafka's name for @key, e.g. "producer_byte_rate". */
const char *tl_quota_key_name(enum tl_quota_key key);
/* The key named @name, or -1. */
int tl_quota_key_find(struct tl_str name);

/* ---- rate (Kafka's SampledStat + Rate), pure ---- */

struct tl_quota_sample {
	int64_t start_ms;
	double value;
};

struct tl_quota_rate {
	int32_t num;       /* quota.window.num */
	int32_t current;   /* index of the sample being filled */
	int64_t window_ms; /* quota.window.size.seconds * 1000 */
	struct tl_quota_sample samples[TL_QUOTA_WINDOWS_MAX];
};

void tl_quota_rate_init(struct tl_quota_rate *rate, int32_t num, int64_t window_ms, int64_t now_ms);
void tl_quota_rate_record(struct tl_quota_rate *rate, double value, int64_t now_ms);
/* Per second over the elapsed window. */
double tl_quota_rate_measure(struct tl_quota_rate *rate, int64_t now_ms);
/* The span the rate is measured over, ms (Kafka's Rate.windowSize). */
int64_t tl_quota_rate_window_ms(struct tl_quota_rate *rate, int64_t now_ms);
/* Kafka's QuotaUtils.throttleTime: ms to stay silent so @observed falls to @quota. */
int64_t tl_quota_throttle_ms(double observed, double quota, int64_t window_ms);

/* ---- entities and the store ---- */

/* One part of an entity: absent, `<default>`, or a name. */
struct tl_quota_part {
	bool present;
	bool is_default;
	char *name; /* owned; NULL unless named */
};

struct tl_quota_entity {
	struct tl_quota_part user, client;
	bool has[TL_QUOTA_KEYS];
	double value[TL_QUOTA_KEYS];
};

struct tl_quota_sensor;

struct tl_quotas {
	struct tl_quota_entity *entities;
	int32_t entity_count, entity_cap;
	int32_t window_num;
	int64_t window_ms;
	struct tl_quota_sensor **buckets; /* NULL until the first sensor */
	int32_t sensor_count;
	int64_t next_expire_ms;
	char why[256];   /* last load/save failure */
	char *view_text; /* cluster mode: the client-quotas key last applied; owned */
};

void tl_quotas_init(struct tl_quotas *quotas, int32_t window_num, int64_t window_ms);
void tl_quotas_deinit(struct tl_quotas *quotas);
bool tl_quotas_is_empty(const struct tl_quotas *quotas);
/* The entity with exactly these parts, or NULL. */
struct tl_quota_entity *tl_quotas_find(struct tl_quotas *quotas, const struct tl_quota_part *user,
				       const struct tl_quota_part *client);
/* Sets (@remove false) or removes one key of an entity, creating or dropping the
 * entity as needed. TL_ERR_LIMIT when too many entities. */
tl_err tl_quotas_set(struct tl_quotas *quotas, const struct tl_quota_part *user,
		     const struct tl_quota_part *client, enum tl_quota_key key, double value,
		     bool remove);
/* The quota that applies to (@user, @client) for @key; false when none. Fills the
 * sensor's tags: which names it is shared by ("" for a dimension not kept). */
bool tl_quotas_resolve(const struct tl_quotas *quotas, struct tl_str user, struct tl_str client,
		       enum tl_quota_key key, double *quota_out, struct tl_str *user_tag_out,
		       struct tl_str *client_tag_out);
/* Text form, one entity a line: `user=NAME client-id=NAME key=value ...`, names
 * percent-encoded, `<default>` for the default. */
char *tl_quotas_format(const struct tl_quotas *quotas);
tl_err tl_quotas_parse(struct tl_quotas *quotas, const char *text);
/* Applies @text's entities (the text form) to @quotas: sets every key they carry, or
 * with @remove drops it (the values are then ignored). TL_ERR_CORRUPT when @text does
 * not parse, TL_ERR_LIMIT when too many entities. */
tl_err tl_quotas_apply_text(struct tl_quotas *quotas, const char *text, bool remove);
/* Makes @text's entities the whole set, keeping the sensors (their rates go on). */
tl_err tl_quotas_replace(struct tl_quotas *quotas, const char *text);

/* Records @bytes against (@user, @client)'s sensor for @key and returns the throttle
 * time in ms (0: within quota, or no quota). */
int32_t tl_quotas_record(struct tl_quotas *quotas, enum tl_quota_key key, struct tl_str user,
			 struct tl_str client, double bytes, int64_t now_ms);
/* Takes back a recorded amount (a throttled fetch is answered empty, as Kafka does). */
void tl_quotas_unrecord(struct tl_quotas *quotas, enum tl_quota_key key, struct tl_str user,
			struct tl_str client, double bytes, int64_t now_ms);
/* Drops sensors idle for TL_QUOTA_SENSOR_IDLE_MS. */
void tl_quotas_expire(struct tl_quotas *quotas, int64_t now_ms);

#endif
