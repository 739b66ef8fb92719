/* metastore_etcd.c - metastore.h on etcd 3.4's v3 JSON gateway, over HTTP with libcurl.
 *
 * Every call is one POST of a JSON body to the gateway (/v3/kv/range, /v3/kv/put,
 * /v3/kv/deleterange, /v3/kv/txn, /v3/lease/..., /v3/watch); keys and values travel
 * as base64 and int64 fields as JSON strings. All transfers, the watch included, run
 * through one curl multi handle, so connections are reused between calls and
 * curl_multi_wakeup() can interrupt a watch from another thread.
 *
 * (1) One thread at a time uses a struct tl_meta; only tl_meta_wake() touches it from
 *     another (wake_pending and curl_multi_wakeup(), both thread-safe).
 * (2) Every call ends by its deadline: the whole call, every endpoint tried, takes at
 *     most timeout_ms (a watch: max_wait_ms). Each endpoint tried gets an equal share
 *     of what is left, so a dead first endpoint cannot use up the second's time.
 * (3) A call retries on the next endpoint only when that cannot apply a write twice:
 *     nothing of the request was sent, or the call is a read. Any transport failure
 *     also moves endpoint_index on, so the next call starts elsewhere.
 * (4) Nothing from the network sizes an allocation beyond TL_META_RESPONSE_BYTES_MAX.
 * (5) Library code: reports through return codes and last_error, prints only debug. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/base64.h"
#include "common/diag.h"
#include "common/json.h"
#include "common/time.h"
#include "metastore.h"

#define ENDPOINT_BYTES_MAX 256  /* one "http://HOST:PORT" */
#define POLL_SLICE_MS      1000 /* longest single curl_multi_poll() */

struct tl_meta {
	char *endpoints[TL_META_ENDPOINTS_MAX]; /* "http://HOST:PORT", owned */
	size_t endpoint_count;
	size_t endpoint_index; /* the endpoint the next call tries first */
	int32_t timeout_ms;    /* bound of every call but watch */
	CURL *easy;            /* the one transfer; reset before each */
	CURLM *multi;          /* runs it; owns the connection cache */
	struct curl_slist *headers;
	atomic_bool wake_pending; /* set by tl_meta_wake(), taken by a watch */
	char curl_error[CURL_ERROR_SIZE];
	char last_error[1024];
};

/* What one POST needs and what it reports. */
struct http_call {
	const char *path; /* "/v3/kv/range" */
	const char *body;
	size_t body_len;
	bool idempotent;     /* a read: safe to send again to another endpoint */
	bool watch;          /* ends at the deadline or on wake without failing */
	int64_t deadline_ns; /* tl_mono_ns() by which the whole call ends */
	curl_write_callback write_fn;
	void *write_ctx;
	const bool *stop;     /* set by write_fn when it has read enough */
	tl_err write_err;     /* set by write_fn when it refused the bytes */
	const char *endpoint; /* out: the endpoint that answered */
	long status;          /* out: HTTP status, 0 if none */
	bool woken;           /* out: a watch ended by tl_meta_wake() */
};

/* A response body, for calls that read it whole. */
struct http_sink {
	struct http_call *call;
	struct tl_meta *meta;
	char *data;
	size_t len; /* bytes */
	size_t cap; /* bytes */
};

/* ---- errors ---- */

static void set_error(struct tl_meta *meta, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_error(struct tl_meta *meta, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(meta->last_error, sizeof(meta->last_error), fmt, ap);
	va_end(ap);
	tl_debug("metastore: %s", meta->last_error);
}

/* Maps a gRPC status code from the gateway to ours. */
static tl_err grpc_code_to_err(int64_t code)
{
	switch (code) {
	case 3: /* INVALID_ARGUMENT */
	case 9: /* FAILED_PRECONDITION */
		return TL_ERR_INVALID;
	case 4:  /* DEADLINE_EXCEEDED */
	case 14: /* UNAVAILABLE: no leader, member stopping */
		return TL_ERR_UNAVAILABLE;
	case 5: /* NOT_FOUND: lease */
		return TL_ERR_NOT_FOUND;
	case 6: /* ALREADY_EXISTS */
		return TL_ERR_EXISTS;
	case 8: /* RESOURCE_EXHAUSTED: request too large, too many ops */
		return TL_ERR_LIMIT;
	case 11: /* OUT_OF_RANGE: revision compacted */
		return TL_ERR_COMPACTED;
	default:
		return TL_ERR_IO;
	}
}

/* The gRPC code and message of an error object: {"code":N,"message":..} from a unary
 * call, {"grpc_code":N,"message":..} inside a stream. */
static tl_err error_object(const struct tl_json_value *error, const char **message_out);

/* ---- JSON requests ---- */

/* A request body being written; allocation failure is sticky and checked once. */
struct jbuf {
	char *data;
	size_t len; /* bytes, data[len] is NUL */
	size_t cap; /* bytes */
	bool failed;
};

static void jb_raw(struct jbuf *jb, const char *text, size_t len)
{
	if (jb->failed)
		return;
	if (jb->len + len + 1 > jb->cap) {
		size_t cap = jb->cap ? jb->cap : 256;
		while (cap < jb->len + len + 1)
			cap *= 2;
		char *data = realloc(jb->data, cap);
		if (!data) {
			jb->failed = true;
			return;
		}
		jb->data = data;
		jb->cap = cap;
	}
	memcpy(jb->data + jb->len, text, len);
	jb->len += len;
	jb->data[jb->len] = '\0';
}

static void jb_str(struct jbuf *jb, const char *text)
{
	jb_raw(jb, text, strlen(text));
}

/* "name":"<base64 of data>" */
static void jb_bytes(struct jbuf *jb, const char *name, const void *data, size_t len)
{
	size_t text_len = tl_base64_encoded_len(len);
	char *text = malloc(text_len + 1);
	if (!text) {
		jb->failed = true;
		return;
	}
	tl_base64_encode(data, len, text);
	jb_str(jb, "\"");
	jb_str(jb, name);
	jb_str(jb, "\":\"");
	jb_raw(jb, text, text_len);
	jb_str(jb, "\"");
	free(text);
}

/* "name":"123": the gateway reads int64 fields as strings. */
static void jb_i64(struct jbuf *jb, const char *name, int64_t value)
{
	char text[64];
	int n = snprintf(text, sizeof(text), "\"%s\":\"%lld\"", name, (long long)value);
	TL_ASSERT(n > 0 && (size_t)n < sizeof(text));
	jb_raw(jb, text, (size_t)n);
}

/* "key":..,"range_end":.. selecting every key that starts with @prefix. etcd's range
 * end for a prefix is the prefix with its last byte below 0xff incremented and what
 * follows dropped; "\0" means "to the end". The empty prefix is key "\0" to the end. */
static void jb_prefix_range(struct jbuf *jb, const char *prefix)
{
	size_t len = strlen(prefix);
	if (len == 0) {
		jb_bytes(jb, "key", "", 1);
		jb_str(jb, ",");
		jb_bytes(jb, "range_end", "", 1);
		return;
	}
	uint8_t *end = malloc(len);
	if (!end) {
		jb->failed = true;
		return;
	}
	memcpy(end, prefix, len);
	size_t end_len = len;
	while (end_len > 0 && end[end_len - 1] == 0xff)
		end_len--;
	if (end_len > 0)
		end[end_len - 1]++;
	jb_bytes(jb, "key", prefix, len);
	jb_str(jb, ",");
	if (end_len > 0)
		jb_bytes(jb, "range_end", end, end_len);
	else
		jb_bytes(jb, "range_end", "", 1);
	free(end);
}

/* ---- JSON responses ---- */

/* Member @name of @object: an int64 the gateway writes as a JSON string (a number is
 * accepted too). Absent (proto3 omits zero values) is 0. False if malformed. */
static bool json_i64(const struct tl_json_value *object, const char *name, int64_t *out)
{
	const struct tl_json_value *v = object ? tl_json_get(object, name) : NULL;
	*out = 0;
	if (!v || v->type == TL_JSON_NULL)
		return true;
	if (v->type == TL_JSON_NUMBER) {
		*out = v->integer;
		return v->is_integer;
	}
	if (v->type != TL_JSON_STRING || v->len == 0 || v->len > 20)
		return false;
	char *end;
	errno = 0;
	long long value = strtoll(v->str, &end, 10);
	if (errno != 0 || end != v->str + v->len)
		return false;
	*out = value;
	return true;
}

/* Member @name of @object, base64, decoded into a malloc'd NUL-terminated buffer
 * (@out NULL when absent or empty). False if malformed or out of memory. */
static bool json_bytes(const struct tl_json_value *object, const char *name, uint8_t **out,
		       size_t *len_out)
{
	const struct tl_json_value *v = tl_json_get(object, name);
	*out = NULL;
	*len_out = 0;
	if (!v || v->type == TL_JSON_NULL)
		return true;
	if (v->type != TL_JSON_STRING)
		return false;
	if (v->len == 0)
		return true;
	uint8_t *data = malloc(tl_base64_decoded_len_max(v->len) + 1);
	if (!data)
		return false;
	size_t len;
	if (!tl_base64_decode(v->str, v->len, data, &len)) {
		free(data);
		return false;
	}
	data[len] = 0;
	*out = data;
	*len_out = len;
	return true;
}

static tl_err error_object(const struct tl_json_value *error, const char **message_out)
{
	const struct tl_json_value *message = tl_json_get(error, "message");
	*message_out = message && message->type == TL_JSON_STRING ? message->str : "error";
	int64_t code = -1;
	if (!json_i64(error, "code", &code) || code <= 0)
		json_i64(error, "grpc_code", &code);
	return grpc_code_to_err(code);
}

static bool json_bool(const struct tl_json_value *object, const char *name)
{
	const struct tl_json_value *v = object ? tl_json_get(object, name) : NULL;
	return v && v->type == TL_JSON_BOOL && v->boolean;
}

/* Decodes one mvccpb.KeyValue into @kv (zeroed first). False if malformed. */
static bool kv_decode(const struct tl_json_value *json, struct tl_meta_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
	if (json->type != TL_JSON_OBJECT)
		return false;
	uint8_t *key;
	size_t key_len;
	if (!json_bytes(json, "key", &key, &key_len) || !key)
		return false;
	kv->key = (char *)key;
	bool ok = json_bytes(json, "value", &kv->value, &kv->value_len);
	ok = ok && json_i64(json, "create_revision", &kv->create_revision);
	ok = ok && json_i64(json, "mod_revision", &kv->mod_revision);
	ok = ok && json_i64(json, "version", &kv->version);
	ok = ok && json_i64(json, "lease", &kv->lease);
	if (!ok)
		tl_meta_kv_deinit(kv);
	return ok;
}

/* Appends the "kvs" of @response to @result. False if malformed. */
static bool kvs_append(const struct tl_json_value *response, struct tl_meta_result *result)
{
	const struct tl_json_value *kvs = tl_json_get(response, "kvs");
	if (!kvs || kvs->type == TL_JSON_NULL)
		return true;
	if (kvs->type != TL_JSON_ARRAY)
		return false;
	if (kvs->count == 0)
		return true;
	struct tl_meta_kv *all =
		realloc(result->kvs, (result->count + kvs->count) * sizeof(*result->kvs));
	if (!all)
		return false;
	result->kvs = all;
	for (size_t i = 0; i < kvs->count; i++) {
		if (!kv_decode(&kvs->items[i], &result->kvs[result->count]))
			return false;
		result->count++;
	}
	return true;
}

static int64_t header_revision(const struct tl_json_value *response)
{
	int64_t revision;
	if (!json_i64(tl_json_get(response, "header"), "revision", &revision))
		return 0;
	return revision;
}

/* An error the gateway answered, as {"error":..,"message":..,"code":N}, or any other
 * body with a non-200 status. */
static tl_err gateway_error(struct tl_meta *meta, const struct http_call *call, const char *body,
			    size_t len)
{
	struct tl_json_value doc;
	char why[128];
	if (tl_json_parse(body, len, &doc, why, sizeof(why))) {
		const struct tl_json_value *message = tl_json_get(&doc, "message");
		int64_t code = -1;
		if (message && message->type == TL_JSON_STRING && json_i64(&doc, "code", &code)) {
			set_error(meta, "etcd %s: POST %s: HTTP %ld: %s (grpc code %lld)",
				  call->endpoint, call->path, call->status, message->str,
				  (long long)code);
			tl_json_free(&doc);
			return grpc_code_to_err(code);
		}
		tl_json_free(&doc);
	}
	char escaped[160];
	tl_diag_escape(body, len < 64 ? len : 64, escaped, sizeof(escaped));
	set_error(meta, "etcd %s: POST %s: HTTP %ld: %s", call->endpoint, call->path, call->status,
		  escaped);
	if (call->status == 502 || call->status == 503 || call->status == 504)
		return TL_ERR_UNAVAILABLE;
	return TL_ERR_IO;
}

/* ---- HTTP transport ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

/* libcurl's global state is set up once per process and never torn down: other
 * threads may still use curl at exit, and curl_global_cleanup() is not thread-safe. */
static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t sink_write(char *data, size_t size, size_t count, void *ctx)
{
	struct http_sink *sink = ctx;
	size_t len = size * count;
	if (len > TL_META_RESPONSE_BYTES_MAX - sink->len) {
		set_error(sink->meta, "etcd %s: POST %s: response larger than %d bytes",
			  sink->call->endpoint, sink->call->path, TL_META_RESPONSE_BYTES_MAX);
		sink->call->write_err = TL_ERR_LIMIT;
		return 0;
	}
	if (sink->len + len + 1 > sink->cap) {
		size_t cap = sink->cap ? sink->cap : 4096;
		while (cap < sink->len + len + 1)
			cap *= 2;
		char *grown = realloc(sink->data, cap);
		if (!grown) {
			set_error(sink->meta, "etcd %s: POST %s: out of memory for the response",
				  sink->call->endpoint, sink->call->path);
			sink->call->write_err = TL_ERR_NOMEM;
			return 0;
		}
		sink->data = grown;
		sink->cap = cap;
	}
	memcpy(sink->data + sink->len, data, len);
	sink->len += len;
	sink->data[sink->len] = '\0';
	return len;
}

static int64_t ms_left(int64_t deadline_ns)
{
	int64_t left = (deadline_ns - tl_mono_ns()) / 1000000;
	return left > 0 ? left : 0;
}

/* Sets up meta->easy for one attempt of @call at @endpoint: @connect_ms to connect,
 * @total_ms for the whole transfer (0: no limit, the caller ends it). */
static void transfer_setup(struct tl_meta *meta, const struct http_call *call, const char *endpoint,
			   int64_t connect_ms, int64_t total_ms)
{
	char url[ENDPOINT_BYTES_MAX + 64];
	snprintf(url, sizeof(url), "%s%s", endpoint, call->path);
	CURL *easy = meta->easy;
	curl_easy_reset(easy);
	meta->curl_error[0] = '\0';
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(easy, CURLOPT_PROXY, ""); /* never an http_proxy from the environment */
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, meta->curl_error);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, meta->headers);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, call->write_fn);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, call->write_ctx);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_ms > 0 ? connect_ms : 1));
	if (total_ms > 0)
		curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)total_ms);
}

enum transfer_end {
	TRANSFER_DONE,     /* curl finished it: see the CURLcode */
	TRANSFER_STOPPED,  /* the write callback read enough */
	TRANSFER_WOKEN,    /* tl_meta_wake() */
	TRANSFER_DEADLINE, /* the call's deadline passed first */
};

/* Runs the transfer set up on meta->easy until it ends or @call says stop. */
static enum transfer_end transfer_run(struct tl_meta *meta, struct http_call *call,
				      CURLcode *result_out)
{
	enum transfer_end end = TRANSFER_DEADLINE;
	*result_out = CURLE_OK;
	if (curl_multi_add_handle(meta->multi, meta->easy) != CURLM_OK) {
		*result_out = CURLE_FAILED_INIT;
		return TRANSFER_DONE;
	}
	for (;;) {
		int running;
		curl_multi_perform(meta->multi, &running);
		int queued;
		CURLMsg *msg = curl_multi_info_read(meta->multi, &queued);
		if (msg && msg->msg == CURLMSG_DONE) {
			*result_out = msg->data.result;
			end = TRANSFER_DONE;
			break;
		}
		if (call->stop && *call->stop) {
			end = TRANSFER_STOPPED;
			break;
		}
		if (call->watch && atomic_exchange(&meta->wake_pending, false)) {
			end = TRANSFER_WOKEN;
			break;
		}
		int64_t left_ms = ms_left(call->deadline_ns);
		if (left_ms == 0) {
			end = TRANSFER_DEADLINE;
			break;
		}
		curl_multi_poll(meta->multi, NULL, 0,
				(int)(left_ms < POLL_SLICE_MS ? left_ms : POLL_SLICE_MS), NULL);
	}
	/* Removing a transfer that has not finished closes its connection; for a watch
	 * that also ends the watch in etcd. */
	curl_multi_remove_handle(meta->multi, meta->easy);
	return end;
}

/* Appends "endpoint: detail" to @list of @size bytes, which holds @len. */
static size_t tried_add(char *list, size_t size, size_t len, const char *endpoint,
			const char *detail)
{
	int n = snprintf(list + len, size - len, "%s%s: %s", len ? "; " : "", endpoint, detail);
	if (n < 0)
		return len;
	return len + (size_t)n < size ? len + (size_t)n : size - 1;
}

/* The time attempt @attempt of @call may take, from what is left of its deadline,
 * per (2). False when none is left and it has tried at least one endpoint. */
static bool attempt_timeouts(const struct tl_meta *meta, const struct http_call *call,
			     size_t attempt, int64_t *connect_ms_out, int64_t *total_ms_out)
{
	int64_t endpoints_left = (int64_t)(meta->endpoint_count - attempt);
	int64_t left_ms = ms_left(call->deadline_ns);
	int64_t share_ms = left_ms / endpoints_left;
	if (attempt > 0 && share_ms == 0)
		return false;
	/* A read gives up its share and moves on; a write, once connected, gets all that
	 * is left, as it cannot be sent again. A watch has its own deadline (the transfer
	 * is not limited) but connects within the store's timeout. */
	*connect_ms_out = share_ms;
	*total_ms_out = call->idempotent ? share_ms : left_ms;
	if (call->watch) {
		int64_t timeout_share = meta->timeout_ms / endpoints_left;
		*connect_ms_out = timeout_share < share_ms ? timeout_share : share_ms;
		*total_ms_out = 0;
	}
	return true;
}

/* POSTs @call, trying endpoints from endpoint_index on as (2) and (3) allow. TL_OK
 * when an endpoint answered (any HTTP status, in call->status) or a watch ended at its
 * deadline or on wake; TL_ERR_UNAVAILABLE naming every endpoint tried otherwise. */
static tl_err http_post(struct tl_meta *meta, struct http_call *call)
{
	char tried[512] = "";
	size_t tried_len = 0;
	bool sent = false;
	size_t attempt;
	for (attempt = 0; attempt < meta->endpoint_count; attempt++) {
		const char *endpoint = meta->endpoints[meta->endpoint_index];
		int64_t connect_ms, total_ms;
		if (!attempt_timeouts(meta, call, attempt, &connect_ms, &total_ms))
			break;
		call->endpoint = endpoint;
		call->status = 0;
		call->write_err = TL_OK;
		transfer_setup(meta, call, endpoint, connect_ms, total_ms);
		CURLcode result;
		enum transfer_end end = transfer_run(meta, call, &result);
		if (end == TRANSFER_DONE && result == CURLE_WRITE_ERROR && call->write_err != TL_OK)
			return call->write_err;
		long status = 0;
		curl_easy_getinfo(meta->easy, CURLINFO_RESPONSE_CODE, &status);
		call->status = status;
		call->woken = end == TRANSFER_WOKEN;
		if ((end == TRANSFER_DONE && result == CURLE_OK) || end == TRANSFER_STOPPED ||
		    end == TRANSFER_WOKEN ||
		    (end == TRANSFER_DEADLINE && call->watch && status != 0))
			return TL_OK;
		const char *detail =
			meta->curl_error[0] ? meta->curl_error : curl_easy_strerror(result);
		if (end == TRANSFER_DEADLINE)
			detail = "no answer before the deadline";
		tried_len = tried_add(tried, sizeof(tried), tried_len, endpoint, detail);
		tl_debug("metastore: endpoint failed endpoint=%s path=%s err=%s", endpoint,
			 call->path, detail);
		meta->endpoint_index = (meta->endpoint_index + 1) % meta->endpoint_count;
		long request_bytes = 0;
		curl_easy_getinfo(meta->easy, CURLINFO_REQUEST_SIZE, &request_bytes);
		if (request_bytes > 0 && !call->idempotent) {
			sent = true;
			break;
		}
		if (ms_left(call->deadline_ns) == 0) {
			attempt++;
			break;
		}
	}
	/* Unless a write went out, endpoint_index points at the first endpoint not tried. */
	for (size_t i = 0; !sent && i + attempt < meta->endpoint_count; i++)
		tried_len = tried_add(
			tried, sizeof(tried), tried_len,
			meta->endpoints[(meta->endpoint_index + i) % meta->endpoint_count],
			"not tried, no time left");
	set_error(meta, "etcd unreachable (POST %s, timeout %d ms): %s%s", call->path,
		  meta->timeout_ms, tried,
		  sent ? "; the request was sent, so it may have been applied" : "");
	return TL_ERR_UNAVAILABLE;
}

/* POSTs @body to @path and parses the answer into @doc (the caller frees it). */
static tl_err call_unary(struct tl_meta *meta, const char *path, const struct jbuf *body,
			 bool idempotent, struct tl_json_value *doc)
{
	memset(doc, 0, sizeof(*doc));
	if (body->failed) {
		set_error(meta, "etcd: POST %s: out of memory for the request", path);
		return TL_ERR_NOMEM;
	}
	struct http_call call = {
		.path = path,
		.body = body->data,
		.body_len = body->len,
		.idempotent = idempotent,
		.deadline_ns = tl_mono_ns() + (int64_t)meta->timeout_ms * 1000000,
		.write_fn = sink_write,
	};
	struct http_sink sink = {.call = &call, .meta = meta};
	call.write_ctx = &sink;
	tl_err err = http_post(meta, &call);
	if (err != TL_OK)
		goto out;
	if (call.status != 200) {
		err = gateway_error(meta, &call, sink.data ? sink.data : "", sink.len);
		if (err == TL_ERR_UNAVAILABLE)
			meta->endpoint_index = (meta->endpoint_index + 1) % meta->endpoint_count;
		goto out;
	}
	char why[128];
	if (!tl_json_parse(sink.data ? sink.data : "", sink.len, doc, why, sizeof(why))) {
		set_error(meta, "etcd %s: POST %s: bad JSON in the response: %s", call.endpoint,
			  path, why);
		err = TL_ERR_IO;
		goto out;
	}
	if (doc->type != TL_JSON_OBJECT) {
		tl_json_free(doc);
		set_error(meta, "etcd %s: POST %s: the response is not a JSON object",
			  call.endpoint, path);
		err = TL_ERR_IO;
	}
out:
	free(sink.data);
	return err;
}

static tl_err malformed(struct tl_meta *meta, const char *path, const char *what)
{
	set_error(meta, "etcd %s: POST %s: malformed response: %s",
		  meta->endpoints[meta->endpoint_index], path, what);
	return TL_ERR_IO;
}

/* ---- open and close ---- */

/* Appends one endpoint (@len bytes at @text, spaces trimmed) to @meta, checked. */
static tl_err endpoint_add(struct tl_meta *meta, const char *text, size_t len, char *why,
			   size_t why_size)
{
	while (len > 0 && (*text == ' ' || *text == '\t')) {
		text++;
		len--;
	}
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	if (len > 0 && text[len - 1] == '/')
		len--;
	size_t index = meta->endpoint_count;
	static const char scheme[] = "http://";
	const char *problem = NULL;
	if (len == 0)
		problem = "is empty";
	else if (index == TL_META_ENDPOINTS_MAX)
		problem = "is one too many (at most 16)";
	else if (len >= ENDPOINT_BYTES_MAX)
		problem = "is too long";
	else if (len >= 8 && strncmp(text, "https://", 8) == 0)
		problem = "uses https, which is not supported yet: use http://HOST:PORT";
	else if (len <= sizeof(scheme) - 1 || strncmp(text, scheme, sizeof(scheme) - 1) != 0)
		problem = "is not http://HOST:PORT";
	if (!problem) {
		const char *host = text + sizeof(scheme) - 1;
		const char *colon = memrchr(host, ':', len - (size_t)(host - text));
		long port = 0;
		if (colon && colon > host && colon + 1 < text + len) {
			for (const char *p = colon + 1; p < text + len && port <= 65535; p++)
				port = *p >= '0' && *p <= '9' ? port * 10 + (*p - '0') : 65536;
		}
		if (port < 1 || port > 65535)
			problem = "has no port in 1..65535: use http://HOST:PORT";
		else if (memchr(host, '/', (size_t)(colon - host)) ||
			 memchr(host, '@', (size_t)(colon - host)))
			problem = "is not http://HOST:PORT";
	}
	if (problem) {
		snprintf(why, why_size, "metadata store endpoint %zu \"%.*s\" %s", index + 1,
			 (int)(len < 80 ? len : 80), text, problem);
		return TL_ERR_INVALID;
	}
	meta->endpoints[index] = strndup(text, len);
	if (!meta->endpoints[index]) {
		snprintf(why, why_size, "out of memory");
		return TL_ERR_NOMEM;
	}
	meta->endpoint_count++;
	return TL_OK;
}

static tl_err endpoints_parse(struct tl_meta *meta, const char *list, char *why, size_t why_size)
{
	const char *p = list;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		tl_err err = endpoint_add(meta, p, len, why, why_size);
		if (err != TL_OK)
			return err;
		if (!comma)
			return TL_OK;
		p = comma + 1;
	}
}

tl_err tl_meta_open(const char *endpoints, int32_t timeout_ms, struct tl_meta **out, char *why,
		    size_t why_size)
{
	TL_ASSERT(endpoints);
	TL_ASSERT(out);
	*out = NULL;
	if (timeout_ms <= 0) {
		snprintf(why, why_size, "metadata store timeout %d ms is not positive", timeout_ms);
		return TL_ERR_INVALID;
	}
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK) {
		snprintf(why, why_size, "curl_global_init failed: %s",
			 curl_easy_strerror(curl_init_result));
		return TL_ERR_IO;
	}
	struct tl_meta *meta = calloc(1, sizeof(*meta));
	if (!meta) {
		snprintf(why, why_size, "out of memory");
		return TL_ERR_NOMEM;
	}
	meta->timeout_ms = timeout_ms;
	atomic_init(&meta->wake_pending, false);
	tl_err err = endpoints_parse(meta, endpoints, why, why_size);
	if (err != TL_OK)
		goto out_close;
	meta->easy = curl_easy_init();
	meta->multi = curl_multi_init();
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	meta->headers = headers ? curl_slist_append(headers, "Expect:") : NULL;
	if (!meta->headers)
		curl_slist_free_all(headers);
	if (!meta->easy || !meta->multi || !meta->headers) {
		snprintf(why, why_size, "out of memory for libcurl handles");
		err = TL_ERR_NOMEM;
		goto out_close;
	}
	/* Reachability: the cheapest read every member answers. */
	struct jbuf body = {0};
	jb_str(&body, "{}");
	struct tl_json_value doc;
	err = call_unary(meta, "/v3/maintenance/status", &body, true, &doc);
	free(body.data);
	if (err != TL_OK) {
		snprintf(why, why_size, "%s", meta->last_error);
		goto out_close;
	}
	tl_json_free(&doc);
	*out = meta;
	return TL_OK;
out_close:
	tl_meta_close(meta);
	return err;
}

void tl_meta_close(struct tl_meta *meta)
{
	if (!meta)
		return;
	if (meta->multi)
		curl_multi_cleanup(meta->multi);
	if (meta->easy)
		curl_easy_cleanup(meta->easy);
	curl_slist_free_all(meta->headers);
	for (size_t i = 0; i < meta->endpoint_count; i++)
		free(meta->endpoints[i]);
	free(meta);
}

const char *tl_meta_last_error(const struct tl_meta *meta)
{
	return meta->last_error;
}

const char *tl_meta_endpoint(const struct tl_meta *meta)
{
	return meta->endpoints[meta->endpoint_index];
}

void tl_meta_result_deinit(struct tl_meta_result *result)
{
	for (size_t i = 0; i < result->count; i++)
		tl_meta_kv_deinit(&result->kvs[i]);
	free(result->kvs);
	memset(result, 0, sizeof(*result));
}

void tl_meta_kv_deinit(struct tl_meta_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

/* ---- keys ---- */

static tl_err key_check(struct tl_meta *meta, const char *key)
{
	TL_ASSERT(key);
	if (key[0] == '\0') {
		set_error(meta, "etcd: the empty key is not a key");
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

/* A range over @body into @result. */
static tl_err range(struct tl_meta *meta, const struct jbuf *body, struct tl_meta_result *result)
{
	memset(result, 0, sizeof(*result));
	struct tl_json_value doc;
	tl_err err = call_unary(meta, "/v3/kv/range", body, true, &doc);
	if (err != TL_OK)
		return err;
	result->revision = header_revision(&doc);
	if (!kvs_append(&doc, result)) {
		tl_meta_result_deinit(result);
		err = malformed(meta, "/v3/kv/range", "kvs");
	}
	tl_json_free(&doc);
	return err;
}

tl_err tl_meta_get(struct tl_meta *meta, const char *key, struct tl_meta_result *result)
{
	memset(result, 0, sizeof(*result));
	tl_err err = key_check(meta, key);
	if (err != TL_OK)
		return err;
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_bytes(&body, "key", key, strlen(key));
	jb_str(&body, "}");
	err = range(meta, &body, result);
	free(body.data);
	if (err == TL_OK && result->count == 0) {
		set_error(meta, "etcd: key \"%s\" not found", key);
		return TL_ERR_NOT_FOUND;
	}
	if (err == TL_OK && result->count > 1) {
		tl_meta_result_deinit(result);
		return malformed(meta, "/v3/kv/range", "several keys for one");
	}
	return err;
}

tl_err tl_meta_list(struct tl_meta *meta, const char *prefix, struct tl_meta_result *result)
{
	TL_ASSERT(prefix);
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_prefix_range(&body, prefix);
	jb_str(&body, "}");
	tl_err err = range(meta, &body, result);
	free(body.data);
	return err;
}

tl_err tl_meta_put(struct tl_meta *meta, const char *key, const void *value, size_t value_len,
		   int64_t lease, int64_t *revision_out)
{
	tl_err err = key_check(meta, key);
	if (err != TL_OK)
		return err;
	if (value_len > TL_META_VALUE_BYTES_MAX) {
		set_error(meta, "etcd: value of %zu bytes for \"%s\" is over %d", value_len, key,
			  TL_META_VALUE_BYTES_MAX);
		return TL_ERR_LIMIT;
	}
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_bytes(&body, "key", key, strlen(key));
	jb_str(&body, ",");
	jb_bytes(&body, "value", value, value_len);
	if (lease != 0) {
		jb_str(&body, ",");
		jb_i64(&body, "lease", lease);
	}
	jb_str(&body, "}");
	struct tl_json_value doc;
	err = call_unary(meta, "/v3/kv/put", &body, false, &doc);
	free(body.data);
	if (err != TL_OK)
		return err;
	if (revision_out)
		*revision_out = header_revision(&doc);
	tl_json_free(&doc);
	return TL_OK;
}

static tl_err delete_range(struct tl_meta *meta, const struct jbuf *body,
			   int64_t *deleted_count_out)
{
	struct tl_json_value doc;
	tl_err err = call_unary(meta, "/v3/kv/deleterange", body, false, &doc);
	if (err != TL_OK)
		return err;
	int64_t deleted;
	if (!json_i64(&doc, "deleted", &deleted))
		err = malformed(meta, "/v3/kv/deleterange", "deleted");
	else if (deleted_count_out)
		*deleted_count_out = deleted;
	tl_json_free(&doc);
	return err;
}

tl_err tl_meta_delete(struct tl_meta *meta, const char *key, int64_t *deleted_count_out)
{
	tl_err err = key_check(meta, key);
	if (err != TL_OK)
		return err;
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_bytes(&body, "key", key, strlen(key));
	jb_str(&body, "}");
	err = delete_range(meta, &body, deleted_count_out);
	free(body.data);
	return err;
}

tl_err tl_meta_delete_prefix(struct tl_meta *meta, const char *prefix, int64_t *deleted_count_out)
{
	TL_ASSERT(prefix);
	if (prefix[0] == '\0') {
		set_error(meta, "etcd: refusing to delete every key (empty prefix)");
		return TL_ERR_INVALID;
	}
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_prefix_range(&body, prefix);
	jb_str(&body, "}");
	tl_err err = delete_range(meta, &body, deleted_count_out);
	free(body.data);
	return err;
}

tl_err tl_meta_delete_key_and_prefix(struct tl_meta *meta, const char *key, const char *prefix)
{
	TL_ASSERT(prefix);
	tl_err err = key_check(meta, key);
	if (err != TL_OK)
		return err;
	if (prefix[0] == '\0') {
		set_error(meta, "etcd: refusing to delete every key (empty prefix)");
		return TL_ERR_INVALID;
	}
	struct jbuf body = {0};
	jb_str(&body, "{\"success\":[{\"request_delete_range\":{");
	jb_bytes(&body, "key", key, strlen(key));
	jb_str(&body, "}},{\"request_delete_range\":{");
	jb_prefix_range(&body, prefix);
	jb_str(&body, "}}]}");
	struct tl_json_value doc;
	err = call_unary(meta, "/v3/kv/txn", &body, false, &doc);
	free(body.data);
	if (err != TL_OK)
		return err;
	if (!json_bool(&doc, "succeeded"))
		err = malformed(meta, "/v3/kv/txn", "succeeded");
	tl_json_free(&doc);
	return err;
}

/* ---- compare-and-swap ---- */

/* The txn: compare every key's mod_revision (0 also matches a key that does not
 * exist), then put every key; else read every key back. */
static void cas_body(struct jbuf *body, const struct tl_meta_cas_op *ops, size_t count)
{
	jb_str(body, "{\"compare\":[");
	for (size_t i = 0; i < count; i++) {
		jb_str(body, i ? ",{\"target\":\"MOD\",\"result\":\"EQUAL\","
			       : "{\"target\":\"MOD\",\"result\":\"EQUAL\",");
		jb_bytes(body, "key", ops[i].key, strlen(ops[i].key));
		jb_str(body, ",");
		jb_i64(body, "mod_revision", ops[i].expected_mod_revision);
		jb_str(body, "}");
	}
	jb_str(body, "],\"success\":[");
	bool first = true;
	for (size_t i = 0; i < count; i++) {
		if (ops[i].compare_only)
			continue;
		jb_str(body, first ? "{\"request_put\":{" : ",{\"request_put\":{");
		first = false;
		jb_bytes(body, "key", ops[i].key, strlen(ops[i].key));
		jb_str(body, ",");
		jb_bytes(body, "value", ops[i].value, ops[i].value_len);
		if (ops[i].lease != 0) {
			jb_str(body, ",");
			jb_i64(body, "lease", ops[i].lease);
		}
		jb_str(body, "}}");
	}
	jb_str(body, "],\"failure\":[");
	for (size_t i = 0; i < count; i++) {
		jb_str(body, i ? ",{\"request_range\":{" : "{\"request_range\":{");
		jb_bytes(body, "key", ops[i].key, strlen(ops[i].key));
		jb_str(body, "}}");
	}
	jb_str(body, "]}");
}

/* The failure branch's reads: one response_range per key. */
static bool cas_current(const struct tl_json_value *doc, struct tl_meta_result *current)
{
	const struct tl_json_value *responses = tl_json_get(doc, "responses");
	if (!responses || responses->type != TL_JSON_ARRAY)
		return false;
	current->revision = header_revision(doc);
	for (size_t i = 0; i < responses->count; i++) {
		const struct tl_json_value *range =
			tl_json_get(&responses->items[i], "response_range");
		if (!range || !kvs_append(range, current))
			return false;
	}
	return true;
}

tl_err tl_meta_cas_many(struct tl_meta *meta, const struct tl_meta_cas_op *ops, size_t count,
			bool *swapped_out, int64_t *revision_out,
			struct tl_meta_result *current_out)
{
	TL_ASSERT(swapped_out);
	*swapped_out = false;
	if (current_out)
		memset(current_out, 0, sizeof(*current_out));
	if (count == 0 || count > TL_META_CAS_OPS_MAX) {
		set_error(meta, "etcd: %zu keys in one compare-and-swap (1..%d)", count,
			  TL_META_CAS_OPS_MAX);
		return TL_ERR_LIMIT;
	}
	for (size_t i = 0; i < count; i++) {
		tl_err err = key_check(meta, ops[i].key);
		if (err != TL_OK)
			return err;
		if (ops[i].value_len > TL_META_VALUE_BYTES_MAX ||
		    ops[i].expected_mod_revision < 0) {
			set_error(
				meta,
				"etcd: compare-and-swap of \"%s\": value of %zu bytes (max %d), expected revision %lld",
				ops[i].key, ops[i].value_len, TL_META_VALUE_BYTES_MAX,
				(long long)ops[i].expected_mod_revision);
			return TL_ERR_LIMIT;
		}
	}
	struct jbuf body = {0};
	cas_body(&body, ops, count);
	struct tl_json_value doc;
	tl_err err = call_unary(meta, "/v3/kv/txn", &body, false, &doc);
	free(body.data);
	if (err != TL_OK)
		return err;
	*swapped_out = json_bool(&doc, "succeeded");
	if (*swapped_out && revision_out)
		*revision_out = header_revision(&doc);
	if (!*swapped_out && current_out && !cas_current(&doc, current_out)) {
		tl_meta_result_deinit(current_out);
		err = malformed(meta, "/v3/kv/txn", "responses");
	}
	tl_json_free(&doc);
	return err;
}

tl_err tl_meta_cas(struct tl_meta *meta, const char *key, const void *value, size_t value_len,
		   int64_t expected_mod_revision, int64_t lease, bool *swapped_out,
		   int64_t *new_mod_revision_out, struct tl_meta_kv *current_out)
{
	struct tl_meta_cas_op op = {
		.key = key,
		.value = value,
		.value_len = value_len,
		.expected_mod_revision = expected_mod_revision,
		.lease = lease,
	};
	struct tl_meta_result current;
	if (current_out)
		memset(current_out, 0, sizeof(*current_out));
	tl_err err = tl_meta_cas_many(meta, &op, 1, swapped_out, new_mod_revision_out,
				      current_out ? &current : NULL);
	if (err != TL_OK || !current_out)
		return err;
	if (current.count > 1) {
		tl_meta_result_deinit(&current);
		return malformed(meta, "/v3/kv/txn", "several keys for one");
	}
	if (current.count == 1) {
		*current_out = current.kvs[0]; /* moved out: the result keeps no pointer to it */
		current.count = 0;
	}
	tl_meta_result_deinit(&current);
	return TL_OK;
}

/* ---- leases ---- */

tl_err tl_meta_lease_grant(struct tl_meta *meta, int64_t ttl_s, int64_t *lease_out)
{
	TL_ASSERT(lease_out);
	if (ttl_s <= 0) {
		set_error(meta, "etcd: lease TTL %lld s is not positive", (long long)ttl_s);
		return TL_ERR_INVALID;
	}
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_i64(&body, "TTL", ttl_s);
	jb_str(&body, "}");
	struct tl_json_value doc;
	tl_err err = call_unary(meta, "/v3/lease/grant", &body, false, &doc);
	free(body.data);
	if (err != TL_OK)
		return err;
	const struct tl_json_value *error = tl_json_get(&doc, "error");
	int64_t lease;
	if (error && error->type == TL_JSON_STRING && error->len > 0) {
		set_error(meta, "etcd: lease grant: %s", error->str);
		err = TL_ERR_IO;
	} else if (!json_i64(&doc, "ID", &lease) || lease == 0) {
		err = malformed(meta, "/v3/lease/grant", "ID");
	} else {
		*lease_out = lease;
	}
	tl_json_free(&doc);
	return err;
}

tl_err tl_meta_lease_keepalive(struct tl_meta *meta, int64_t lease, int64_t *ttl_left_s_out)
{
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_i64(&body, "ID", lease);
	jb_str(&body, "}");
	struct tl_json_value doc;
	/* Renewing twice is harmless, so a keepalive may go to another endpoint. The
	 * gateway answers a stream of one {"result":..} and ends it with the request. */
	tl_err err = call_unary(meta, "/v3/lease/keepalive", &body, true, &doc);
	free(body.data);
	if (err != TL_OK)
		return err;
	const struct tl_json_value *result = tl_json_get(&doc, "result");
	const struct tl_json_value *error = tl_json_get(&doc, "error");
	int64_t ttl;
	if (error && error->type == TL_JSON_OBJECT) {
		const char *message;
		err = error_object(error, &message);
		set_error(meta, "etcd: lease %lld keepalive: %s", (long long)lease, message);
	} else if (!result || !json_i64(result, "TTL", &ttl)) {
		err = malformed(meta, "/v3/lease/keepalive", "result");
	} else if (ttl <= 0) {
		set_error(meta, "etcd: lease %lld not found (expired or revoked)",
			  (long long)lease);
		err = TL_ERR_NOT_FOUND;
	} else if (ttl_left_s_out) {
		*ttl_left_s_out = ttl;
	}
	tl_json_free(&doc);
	return err;
}

tl_err tl_meta_lease_revoke(struct tl_meta *meta, int64_t lease)
{
	struct jbuf body = {0};
	jb_str(&body, "{");
	jb_i64(&body, "ID", lease);
	jb_str(&body, "}");
	struct tl_json_value doc;
	tl_err err = call_unary(meta, "/v3/lease/revoke", &body, false, &doc);
	free(body.data);
	if (err == TL_OK)
		tl_json_free(&doc);
	return err;
}

/* ---- watch ---- */

/* The watch's response stream: JSON objects one after another, each possibly split
 * across writes or several in one. Bytes accumulate in data; scan state says how far
 * the first object has been scanned, so no byte is scanned twice. */
struct watch_stream {
	struct tl_meta *meta;
	struct http_call *call;
	tl_meta_event_fn fn;
	void *ctx;
	char *data;
	size_t len;  /* bytes held */
	size_t cap;  /* bytes */
	size_t scan; /* bytes of the first object scanned */
	int depth;   /* nesting at scan */
	bool in_string;
	bool escaped;
	bool created;           /* etcd confirmed the watch */
	bool stop;              /* a message with events was delivered */
	int64_t next_revision;  /* one past the last event delivered */
	int64_t start_revision; /* as asked */
};

static tl_err watch_fail(struct watch_stream *ws, tl_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static tl_err watch_fail(struct watch_stream *ws, tl_err err, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	set_error(ws->meta, "etcd %s: watch: %s", ws->call->endpoint, detail);
	return err;
}

static tl_err watch_events(struct watch_stream *ws, const struct tl_json_value *events)
{
	/* etcd sends events in revision order (one transaction's share a revision), and
	 * never splits a revision across messages; checked, as a cursor would. */
	int64_t floor = ws->next_revision;
	for (size_t i = 0; i < events->count; i++) {
		const struct tl_json_value *event = &events->items[i];
		const struct tl_json_value *type = tl_json_get(event, "type");
		const struct tl_json_value *kv_json = tl_json_get(event, "kv");
		struct tl_meta_event ev = {.type = TL_META_EVENT_PUT};
		if (type && type->type == TL_JSON_STRING && strcmp(type->str, "DELETE") == 0)
			ev.type = TL_META_EVENT_DELETE;
		else if (type && !(type->type == TL_JSON_STRING && strcmp(type->str, "PUT") == 0))
			return watch_fail(ws, TL_ERR_IO, "unknown event type");
		struct tl_meta_kv kv;
		if (!kv_json || !kv_decode(kv_json, &kv))
			return watch_fail(ws, TL_ERR_IO, "malformed event kv");
		if (kv.mod_revision < floor) {
			tl_meta_kv_deinit(&kv);
			return watch_fail(ws, TL_ERR_IO, "event at revision %lld, expected >= %lld",
					  (long long)kv.mod_revision, (long long)floor);
		}
		floor = kv.mod_revision;
		ev.kv = &kv;
		ws->fn(ws->ctx, &ev);
		ws->next_revision = kv.mod_revision + 1;
		tl_meta_kv_deinit(&kv);
	}
	if (events->count > 0)
		ws->stop = true;
	return TL_OK;
}

/* One complete object of the stream: {"result":WatchResponse} or {"error":Status}. */
static tl_err watch_message(struct watch_stream *ws, const char *text, size_t len)
{
	struct tl_json_value doc;
	char why[128];
	if (!tl_json_parse(text, len, &doc, why, sizeof(why)))
		return watch_fail(ws, TL_ERR_IO, "bad JSON in the stream: %s", why);
	tl_err err = TL_OK;
	const struct tl_json_value *result = tl_json_get(&doc, "result");
	const struct tl_json_value *error = tl_json_get(&doc, "error");
	int64_t compact_revision;
	if (error && error->type == TL_JSON_OBJECT) {
		const char *message;
		tl_err code_err = error_object(error, &message);
		err = watch_fail(ws, code_err, "%s", message);
	} else if (!result || result->type != TL_JSON_OBJECT ||
		   !json_i64(result, "compact_revision", &compact_revision)) {
		err = watch_fail(ws, TL_ERR_IO, "message without a result");
	} else if (compact_revision > 0) {
		err = watch_fail(ws, TL_ERR_COMPACTED,
				 "revision %lld is compacted (etcd keeps from %lld): list again",
				 (long long)ws->start_revision, (long long)compact_revision);
	} else if (json_bool(result, "canceled")) {
		const struct tl_json_value *reason = tl_json_get(result, "cancel_reason");
		err = watch_fail(ws, TL_ERR_IO, "canceled by etcd: %s",
				 reason && reason->type == TL_JSON_STRING ? reason->str : "");
	} else if (json_bool(result, "created")) {
		ws->created = true;
		/* From "now": etcd watches from the revision after the one it answers at. */
		if (ws->next_revision == 0)
			ws->next_revision = header_revision(result) + 1;
	} else {
		/* Events, or a progress notification (no events): nothing to deliver. Its
		 * revision does not move next_revision: progress notifications were not kept
		 * in step with the event stream (etcd issue 15220, fixed after 3.4.23). */
		const struct tl_json_value *events = tl_json_get(result, "events");
		if (events && events->type == TL_JSON_ARRAY)
			err = watch_events(ws, events);
		else if (events && events->type != TL_JSON_NULL)
			err = watch_fail(ws, TL_ERR_IO, "events is not an array");
	}
	tl_json_free(&doc);
	return err;
}

/* Length of the first complete object in the buffer, resuming the scan; 0 if the
 * object is not complete yet, -1 if the stream is not a sequence of objects. */
static long watch_object_end(struct watch_stream *ws)
{
	for (; ws->scan < ws->len; ws->scan++) {
		char c = ws->data[ws->scan];
		if (ws->scan == 0 && c != '{')
			return -1;
		if (ws->in_string) {
			if (ws->escaped)
				ws->escaped = false;
			else if (c == '\\')
				ws->escaped = true;
			else if (c == '"')
				ws->in_string = false;
		} else if (c == '"') {
			ws->in_string = true;
		} else if (c == '{' || c == '[') {
			ws->depth++;
		} else if ((c == '}' || c == ']') && --ws->depth == 0) {
			ws->scan++;
			return (long)ws->scan;
		}
	}
	return 0;
}

/* Takes what it can from the buffer: whitespace between objects, then whole objects. */
static tl_err watch_drain(struct watch_stream *ws)
{
	while (ws->len > 0 && !ws->stop) {
		if (ws->scan == 0) {
			size_t skip = 0;
			while (skip < ws->len && strchr(" \t\r\n", ws->data[skip]))
				skip++;
			memmove(ws->data, ws->data + skip, ws->len - skip);
			ws->len -= skip;
			if (ws->len == 0)
				return TL_OK;
		}
		long end = watch_object_end(ws);
		if (end < 0)
			return watch_fail(ws, TL_ERR_IO,
					  "stream is not a sequence of JSON objects");
		if (end == 0)
			return TL_OK;
		tl_err err = watch_message(ws, ws->data, (size_t)end);
		memmove(ws->data, ws->data + end, ws->len - (size_t)end);
		ws->len -= (size_t)end;
		ws->scan = 0;
		ws->depth = 0;
		ws->in_string = false;
		ws->escaped = false;
		if (err != TL_OK)
			return err;
	}
	return TL_OK;
}

static size_t watch_write(char *data, size_t size, size_t count, void *ctx)
{
	struct watch_stream *ws = ctx;
	size_t len = size * count;
	if (len > TL_META_RESPONSE_BYTES_MAX - ws->len) {
		ws->call->write_err = watch_fail(ws, TL_ERR_LIMIT, "message larger than %d bytes",
						 TL_META_RESPONSE_BYTES_MAX);
		return 0;
	}
	if (ws->len + len > ws->cap) {
		size_t cap = ws->cap ? ws->cap : 4096;
		while (cap < ws->len + len)
			cap *= 2;
		char *grown = realloc(ws->data, cap);
		if (!grown) {
			ws->call->write_err = watch_fail(ws, TL_ERR_NOMEM, "out of memory");
			return 0;
		}
		ws->data = grown;
		ws->cap = cap;
	}
	memcpy(ws->data + ws->len, data, len);
	ws->len += len;
	long status = 0;
	curl_easy_getinfo(ws->meta->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return len; /* an error body: read whole, reported after the transfer */
	tl_err err = watch_drain(ws);
	if (err != TL_OK) {
		ws->call->write_err = err;
		return 0;
	}
	return len;
}

tl_err tl_meta_watch(struct tl_meta *meta, const char *prefix, int64_t start_revision,
		     int32_t max_wait_ms, tl_meta_event_fn fn, void *ctx,
		     int64_t *next_revision_out)
{
	TL_ASSERT(prefix);
	TL_ASSERT(fn);
	TL_ASSERT(next_revision_out);
	TL_ASSERT(start_revision >= 0);
	*next_revision_out = start_revision;
	struct jbuf body = {0};
	jb_str(&body, "{\"create_request\":{");
	jb_prefix_range(&body, prefix);
	if (start_revision > 0) {
		jb_str(&body, ",");
		jb_i64(&body, "start_revision", start_revision);
	}
	jb_str(&body, "}}");
	if (body.failed) {
		free(body.data);
		set_error(meta, "etcd: watch: out of memory for the request");
		return TL_ERR_NOMEM;
	}
	struct http_call call = {
		.path = "/v3/watch",
		.body = body.data,
		.body_len = body.len,
		.idempotent = true,
		.watch = true,
		.deadline_ns =
			tl_mono_ns() + (int64_t)(max_wait_ms > 0 ? max_wait_ms : 0) * 1000000,
		.write_fn = watch_write,
	};
	struct watch_stream ws = {
		.meta = meta,
		.call = &call,
		.fn = fn,
		.ctx = ctx,
		.next_revision = start_revision,
		.start_revision = start_revision,
	};
	call.write_ctx = &ws;
	call.stop = &ws.stop;
	tl_err err = http_post(meta, &call);
	bool answered = err == TL_OK;
	if (answered && call.status != 0 && call.status != 200)
		err = gateway_error(meta, &call, ws.data ? ws.data : "", ws.len);
	else if (answered && !ws.created && !call.woken)
		err = watch_fail(&ws, TL_ERR_UNAVAILABLE, "not confirmed within %d ms",
				 max_wait_ms);
	/* An endpoint that answered but cannot serve: the next call starts elsewhere. */
	if (answered && err == TL_ERR_UNAVAILABLE)
		meta->endpoint_index = (meta->endpoint_index + 1) % meta->endpoint_count;
	if (err == TL_OK || ws.next_revision > start_revision)
		*next_revision_out = ws.next_revision; /* events delivered count even on error */
	free(ws.data);
	free(body.data);
	return err;
}

void tl_meta_wake(struct tl_meta *meta)
{
	atomic_store(&meta->wake_pending, true);
	curl_multi_wakeup(meta->multi);
}
