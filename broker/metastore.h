/* metastore.h - the cluster metadata store: string keys to opaque values, each write
 * stamped with a store-wide revision, plus compare-and-swap, leases and watches.
 * The rest of the broker sees only this interface; today's one implementation is
 * etcd 3.4 through its v3 JSON gateway over HTTP (metastore_etcd.c).
 *
 * Thread: a struct tl_meta is used by one thread at a time (the broker's metadata
 * thread, never the event loop): every call may block, each bounded by the timeout_ms
 * given to tl_meta_open() (tl_meta_watch() by its own max_wait_ms). The one exception
 * is tl_meta_wake(), which any thread may call while the object is open.
 *
 * Errors: TL_ERR_UNAVAILABLE means no endpoint answered in time (refused, reset,
 * timed out, or etcd itself said unavailable): retry later, the next call starts at
 * the next endpoint. A write that fails so may still have been applied (the message
 * says when the request went out): after a failed tl_meta_cas(), read the key again
 * before deciding. Other codes mean the store answered and refused. Either way
 * tl_meta_last_error() says what happened, naming the endpoint.
 *
 * Revisions: every write moves the store's revision forward by one; a key's
 * mod_revision is the revision of its last write and is the token compare-and-swap
 * checks (as ZooKeeper's zkVersion was for Kafka). A key that does not exist has
 * mod_revision 0. */
#ifndef TL_BROKER_METASTORE_H
#define TL_BROKER_METASTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/error.h"

#define TL_META_ENDPOINTS_MAX      16                 /* in the endpoints list given to open */
#define TL_META_VALUE_BYTES_MAX    (1024 * 1024)      /* etcd refuses requests over 1.5 MiB */
#define TL_META_RESPONSE_BYTES_MAX (64 * 1024 * 1024) /* one response, or one watch message */
#define TL_META_CAS_OPS_MAX        128                /* etcd's default --max-txn-ops */

struct tl_meta;

/* One key as read. Owned by the tl_meta_result (or the caller's tl_meta_kv) it is in. */
struct tl_meta_kv {
	char *key;               /* NUL-terminated */
	uint8_t *value;          /* value_len bytes, NULL when value_len is 0 */
	size_t value_len;        /* bytes */
	int64_t create_revision; /* revision of the write that created the key */
	int64_t mod_revision;    /* revision of the last write: the compare-and-swap token */
	int64_t version;         /* writes since creation, 1 after the first */
	int64_t lease;           /* the lease the key is bound to, 0 for none */
};

/* What a read returns; the caller's storage, released by tl_meta_result_deinit(). */
struct tl_meta_result {
	struct tl_meta_kv *kvs; /* count keys, sorted by key (bytewise) */
	size_t count;
	int64_t revision; /* the store's revision when it answered */
};

enum tl_meta_event_type {
	TL_META_EVENT_PUT = 0,
	TL_META_EVENT_DELETE = 1,
};

/* A change seen by a watch. PUT: kv holds the key as written. DELETE: kv holds the key
 * and mod_revision (the revision of the delete); its value is empty. */
struct tl_meta_event {
	enum tl_meta_event_type type;
	const struct tl_meta_kv *kv; /* borrowed for the callback's duration */
};

typedef void (*tl_meta_event_fn)(void *ctx, const struct tl_meta_event *event);

/* One key of tl_meta_cas_many(): write @value if the key's mod_revision is still
 * @expected_mod_revision (0: the key must not exist); with @compare_only the key is only
 * compared (a write that holds only while another key is unchanged). All borrowed for
 * the call. */
struct tl_meta_cas_op {
	const char *key;
	const void *value;
	size_t value_len;              /* bytes, at most TL_META_VALUE_BYTES_MAX */
	int64_t expected_mod_revision; /* 0: the key must not exist */
	int64_t lease;                 /* 0: none */
	bool compare_only;             /* no write: value and lease unused */
};

/* ---- open and close ---- */

/* Opens a store on @endpoints, a comma-separated list of "http://HOST:PORT" (at most
 * TL_META_ENDPOINTS_MAX), and checks that one answers within @timeout_ms. Every later
 * call is bounded by @timeout_ms as well. On failure returns TL_ERR_INVALID (a bad
 * endpoint, named), TL_ERR_UNAVAILABLE (naming every endpoint and why), or TL_ERR_IO
 * (what answered is not an etcd gateway), with the message in @why. Thread: any;
 * curl_global_init() runs once per process. */
tl_err tl_meta_open(const char *endpoints, int32_t timeout_ms, struct tl_meta **out, char *why,
		    size_t why_size);
/* Closes @meta (NULL is fine). No other thread may be inside tl_meta_wake(). */
void tl_meta_close(struct tl_meta *meta);
/* The last error's detail ("etcd http://127.0.0.1:2379: POST /v3/kv/put: ..."). */
const char *tl_meta_last_error(const struct tl_meta *meta);
/* The endpoint the next call tries first. */
const char *tl_meta_endpoint(const struct tl_meta *meta);

/* ---- keys ---- */

/* Reads @key into @result (one kv). TL_ERR_NOT_FOUND when it does not exist (@result
 * then holds no kv but the store's revision). */
tl_err tl_meta_get(struct tl_meta *meta, const char *key, struct tl_meta_result *result);
/* Reads every key that starts with @prefix ("" is every key), sorted by key. */
tl_err tl_meta_list(struct tl_meta *meta, const char *prefix, struct tl_meta_result *result);
/* Writes @key unconditionally, bound to @lease (0: none). @revision_out (may be NULL)
 * gets the write's revision, the key's new mod_revision. */
tl_err tl_meta_put(struct tl_meta *meta, const char *key, const void *value, size_t value_len,
		   int64_t lease, int64_t *revision_out);
/* Deletes @key; @deleted_count_out (may be NULL) gets 0 or 1. */
tl_err tl_meta_delete(struct tl_meta *meta, const char *key, int64_t *deleted_count_out);
/* Deletes every key under @prefix, which must not be empty. */
tl_err tl_meta_delete_prefix(struct tl_meta *meta, const char *prefix, int64_t *deleted_count_out);
/* Deletes @key and every key under @prefix (not empty) in one transaction: both go, or
 * neither. */
tl_err tl_meta_delete_key_and_prefix(struct tl_meta *meta, const char *key, const char *prefix);

/* Compare-and-swap: writes @key only if its mod_revision is @expected_mod_revision
 * (0: only if it does not exist), in one etcd transaction. TL_OK whether or not it
 * swapped; @swapped_out says which. On a swap @new_mod_revision_out gets the write's
 * revision. On a failed compare @current_out (may be NULL; the caller deinits it)
 * gets the key as it is now, or a zeroed kv (key NULL) if it does not exist. */
tl_err tl_meta_cas(struct tl_meta *meta, const char *key, const void *value, size_t value_len,
		   int64_t expected_mod_revision, int64_t lease, bool *swapped_out,
		   int64_t *new_mod_revision_out, struct tl_meta_kv *current_out);
/* Compare-and-swap of @count keys at once (1..TL_META_CAS_OPS_MAX): every compare
 * holds and every key is written at one revision (@revision_out), or nothing is
 * written. On a failed compare @current_out (may be NULL) gets the keys of @ops that
 * exist, as they are now. */
tl_err tl_meta_cas_many(struct tl_meta *meta, const struct tl_meta_cas_op *ops, size_t count,
			bool *swapped_out, int64_t *revision_out,
			struct tl_meta_result *current_out);

/* Releases what @result holds; it may then be reused. */
void tl_meta_result_deinit(struct tl_meta_result *result);
/* Releases what @kv holds (from tl_meta_cas()). */
void tl_meta_kv_deinit(struct tl_meta_kv *kv);

/* ---- leases ---- */

/* Grants a lease of @ttl_s seconds (etcd raises it to its minimum, about 2 s). */
tl_err tl_meta_lease_grant(struct tl_meta *meta, int64_t ttl_s, int64_t *lease_out);
/* Renews @lease once. @ttl_left_s_out (may be NULL) gets its TTL after renewal.
 * TL_ERR_NOT_FOUND when the lease is gone (expired or revoked): the keys bound to it
 * are gone too. */
tl_err tl_meta_lease_keepalive(struct tl_meta *meta, int64_t lease, int64_t *ttl_left_s_out);
/* Revokes @lease and deletes its keys. TL_ERR_NOT_FOUND when it was already gone. */
tl_err tl_meta_lease_revoke(struct tl_meta *meta, int64_t lease);

/* ---- watch ---- */

/* Watches every key under @prefix ("" is every key) from @start_revision (0: changes
 * after now) and calls @fn for each event, in revision order. Returns after the first
 * message that carried events, or after @max_wait_ms, or early after tl_meta_wake();
 * all three are TL_OK. @next_revision_out gets the revision to watch from next time
 * (one past the last event delivered, else the start). TL_ERR_COMPACTED when
 * @start_revision is older than etcd keeps: list again and watch from that list's
 * revision + 1. Each call opens a new watch stream; events are never delivered twice
 * across calls that pass the previous @next_revision_out. */
tl_err tl_meta_watch(struct tl_meta *meta, const char *prefix, int64_t start_revision,
		     int32_t max_wait_ms, tl_meta_event_fn fn, void *ctx,
		     int64_t *next_revision_out);
/* Makes the tl_meta_watch() in progress return promptly, or, if none is, the next one
 * return at once (a wake is never lost between two watches). Thread: any. */
void tl_meta_wake(struct tl_meta *meta);

#endif
