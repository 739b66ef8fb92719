/* cluster.c - the metadata thread and its hand-over to the event loop; see cluster.h.
 *
 * The thread's loop: renew the lease when a third of its TTL has passed, campaign for
 * controller when there is none, run the commands the loop posted, do the
 * controller's work if this broker is the controller, publish a view if anything
 * changed, then watch for changes (woken early by new commands). Any store error just
 * ends the round: the next one retries, and the loop keeps serving from the last view.
 *
 * The controller's work, recomputed from the whole model each round (level-triggered,
 * so a lost round or a controller change loses nothing):
 *   - a partition of a topic with no state key gets one: the first live assigned
 *     replica leads at epoch 0, the live replicas form the ISR;
 *   - a partition whose leader is not registered (its lease expired) or that has none
 *     gets a new leader from its ISR (replication.h's tl_repl_elect), epoch + 1;
 *   - with auto.leader.rebalance.enable, a partition whose preferred replica is alive
 *     and in the ISR but not leading moves back to it, once per
 *     leader.imbalance.check.interval.seconds.
 * Every write is a CAS on the mod_revision the model holds: if the key changed since,
 * nothing is written and the next round sees the change. */
#include "broker/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/metastore.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/scram.h"
#include "common/time.h"

#define KEY_MAX           512
#define VALUE_MAX         (64 * 1024)
#define WATCH_MAX_WAIT_MS 1000
#define ROUND_BACKOFF_MS  200

enum command_type {
	COMMAND_ISR = 0,
	COMMAND_CREATE_TOPIC = 1,
	COMMAND_DELETE_TOPIC = 2,
	COMMAND_RESIGN = 3,
	COMMAND_PID_BLOCK = 4,
	COMMAND_ALTER_TOPIC = 5,
	COMMAND_ACLS = 6,
	COMMAND_RESIGN_PARTITION = 7,
	COMMAND_SCRAM = 8,
	COMMAND_ADD_PARTITIONS = 9,
	COMMAND_QUOTAS = 10,
};

struct command {
	enum command_type type;
	char topic[TL_TOPIC_NAME_MAX + 1];
	int32_t partition;
	int64_t expected_revision;  /* COMMAND_ISR */
	struct tl_repl_state state; /* COMMAND_ISR */
	int32_t partitions;         /* COMMAND_CREATE_TOPIC, _ADD_PARTITIONS: the new count */
	int16_t replication_factor; /* COMMAND_CREATE_TOPIC */
	char *configs;              /* COMMAND_CREATE_TOPIC, _ALTER_TOPIC, _ACLS, _QUOTAS; owned;
				     * _ADD_PARTITIONS: the new partitions' replicas ("" to assign) */
	char *deletes;              /* COMMAND_ALTER_TOPIC: keys to drop, _ACLS; owned */
	bool replace;        /* COMMAND_ALTER_TOPIC: configs is the whole set; _SCRAM: overwrite */
	int64_t block_start; /* COMMAND_PID_BLOCK: the block's first id */
	int64_t block_size;  /* COMMAND_PID_BLOCK */
	tl_cluster_block_fn block_done; /* COMMAND_PID_BLOCK, instead of done */
	tl_cluster_done_fn done;        /* runs on the loop with the outcome */
	void *ctx;
	tl_err err; /* the outcome, set by the thread */
	char message[512];
	struct command *next;
};

/* The thread's copy of every key under the prefix. */
struct model {
	struct tl_meta_kv *kvs; /* sorted by key */
	size_t count;
	size_t cap;
	int64_t revision;
	bool changed; /* since the last published view */
};

/* A CreateTopics or CreatePartitions waiting for its topic's leaders in the view (loop
 * side). */
struct await_topic {
	char topic[TL_TOPIC_NAME_MAX + 1];
	int32_t partitions; /* at least this many, each with a leader */
	int64_t deadline_ms;
	tl_cluster_done_fn done;
	void *ctx;
	struct await_topic *next;
};

struct tl_cluster {
	struct tl_broker *broker;   /* loop side only */
	struct await_topic *awaits; /* loop side only */
	struct tl_meta *meta;       /* thread side only (and start/stop) */
	pthread_t thread;
	bool thread_started;
	int event_fd;
	/* Copies of what the thread needs from the config, so it never reads the broker. */
	int32_t self;
	char prefix[128];
	char registration[3072];
	char directory_id[TL_DIRECTORY_ID_LEN + 1]; /* this log's, in the registration */
	int dir_lock_fd; /* flock on log.dirs: one broker process per log directory */
	int64_t lease;
	int64_t lease_ttl_ms;
	bool unclean;
	bool rebalance;
	int64_t rebalance_interval_ms;

	pthread_mutex_t lock;     /* guards everything below */
	struct command *commands; /* loop -> thread, FIFO */
	struct command *commands_tail;
	struct command *results;           /* thread -> loop */
	struct tl_cluster_view *next_view; /* published, not yet taken by the loop */
	bool stopping;
	bool resign_done;
	bool shutting_down; /* loop side: controlled shutdown began, follow no more */

	struct tl_cluster_view *view; /* the loop's current view */

	/* Written by the thread, read by the loop (tl_cluster_leaderships_current), in this
	 * order: a lapse's fence before the renewed lease. */
	_Atomic int64_t current_from_revision; /* after a lapse: the view to wait for */
	_Atomic int64_t
		lease_until_ms; /* monotonic: renewal sent + TTL; the lease is ours till then */

	/* Thread side. */
	struct model model;
	int64_t last_keepalive_ms;
	bool relist;       /* after a lapse: read the whole prefix again (the watch may lag) */
	bool unregistered; /* a lease granted again whose brokers/<id> key is not written yet */
	int64_t next_rebalance_ms;
	bool reclaimed;    /* leaderships left from a previous incarnation got a new epoch */
	bool same_log;     /* the registration replaced at start named this log directory */
	bool other_log;    /* node.id last served another log: its ISR places are void */
	bool store_down;   /* the last round failed: said once, not every round */
	bool write_failed; /* a partition write failed: the controller reruns next round */
};

/* ---- keys ---- */

/* ---- the model ---- */

static size_t model_find(const struct model *m, const char *key, bool *found)
{
	size_t lo = 0, hi = m->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(m->kvs[mid].key, key);
		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static const struct tl_meta_kv *model_get(const struct model *m, const char *key)
{
	bool found;
	size_t i = model_find(m, key, &found);
	return found ? &m->kvs[i] : NULL;
}

static tl_err kv_copy(struct tl_meta_kv *dst, const struct tl_meta_kv *src)
{
	*dst = *src;
	dst->key = strdup(src->key);
	dst->value = NULL;
	if (src->value_len) {
		dst->value = malloc(src->value_len);
		if (dst->value)
			memcpy(dst->value, src->value, src->value_len);
	}
	if (!dst->key || (src->value_len && !dst->value)) {
		free(dst->key);
		free(dst->value);
		return TL_ERR_NOMEM;
	}
	return TL_OK;
}

/* A value as a NUL-terminated string (malloc'd), for the text-valued keys (ACLs, SCRAM
 * credentials, quotas); NULL when out of memory. */
static char *kv_text(const uint8_t *value, size_t len)
{
	char *text = malloc(len + 1);
	if (!text)
		return NULL;
	if (len > 0)
		memcpy(text, value, len);
	text[len] = '\0';
	return text;
}

static void model_put(struct model *m, const struct tl_meta_kv *kv)
{
	bool found;
	size_t i = model_find(m, kv->key, &found);
	struct tl_meta_kv copy;
	if (kv_copy(&copy, kv) != TL_OK) {
		tl_crit("cluster: out of memory copying metadata key=%s", kv->key);
		return;
	}
	if (found) {
		tl_meta_kv_deinit(&m->kvs[i]);
		m->kvs[i] = copy;
	} else {
		if (m->count == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 64;
			struct tl_meta_kv *kvs = realloc(m->kvs, cap * sizeof(*kvs));
			if (!kvs) {
				tl_meta_kv_deinit(&copy);
				tl_crit("cluster: out of memory growing the metadata model");
				return;
			}
			m->kvs = kvs;
			m->cap = cap;
		}
		memmove(&m->kvs[i + 1], &m->kvs[i], (m->count - i) * sizeof(*m->kvs));
		m->kvs[i] = copy;
		m->count++;
	}
	m->changed = true;
}

static void model_delete(struct model *m, const char *key)
{
	bool found;
	size_t i = model_find(m, key, &found);
	if (!found)
		return;
	tl_meta_kv_deinit(&m->kvs[i]);
	memmove(&m->kvs[i], &m->kvs[i + 1], (m->count - i - 1) * sizeof(*m->kvs));
	m->count--;
	m->changed = true;
}

static void model_clear(struct model *m)
{
	for (size_t i = 0; i < m->count; i++)
		tl_meta_kv_deinit(&m->kvs[i]);
	m->count = 0;
	m->changed = true;
}

static void on_watch_event(void *ctx, const struct tl_meta_event *event)
{
	struct tl_cluster *c = ctx;
	if (event->type == TL_META_EVENT_PUT)
		model_put(&c->model, event->kv);
	else
		model_delete(&c->model, event->kv->key);
	c->model.revision = TL_MAX(c->model.revision, event->kv->mod_revision);
}

static tl_err model_load(struct tl_cluster *c)
{
	struct tl_meta_result result = {0};
	char prefix[KEY_MAX];
	snprintf(prefix, sizeof(prefix), "%s/", c->prefix);
	tl_err err = tl_meta_list(c->meta, prefix, &result);
	if (err != TL_OK)
		return err;
	model_clear(&c->model);
	for (size_t i = 0; i < result.count; i++)
		model_put(&c->model, &result.kvs[i]);
	c->model.revision = result.revision;
	tl_meta_result_deinit(&result);
	return TL_OK;
}

/* ---- parsing values into a view ---- */

static bool parse_int(const char *s, const char *end, int64_t min, int64_t max, int64_t *out)
{
	if (s >= end || end - s > 19)
		return false;
	char buf[24];
	memcpy(buf, s, (size_t)(end - s));
	buf[end - s] = '\0';
	char *stop;
	errno = 0;
	long long v = strtoll(buf, &stop, 10);
	if (errno || *stop || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* "host=H port=P rack=R" */
static bool broker_decode(const struct tl_meta_kv *kv, int32_t id, struct tl_cluster_broker *out)
{
	memset(out, 0, sizeof(*out));
	out->id = id;
	char text[4096];
	if (kv->value_len >= sizeof(text))
		return false;
	memcpy(text, kv->value, kv->value_len);
	text[kv->value_len] = '\0';
	char *save = NULL;
	for (char *f = strtok_r(text, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
		int64_t v;
		if (strncmp(f, "host=", 5) == 0)
			snprintf(out->host, sizeof(out->host), "%s", f + 5);
		else if (strncmp(f, "port=", 5) == 0 &&
			 parse_int(f + 5, f + strlen(f), 1, 65535, &v))
			out->port = (int32_t)v;
		else if (strncmp(f, "rack=", 5) == 0)
			snprintf(out->rack, sizeof(out->rack), "%s", f + 5);
		else if (strncmp(f, "listener.", 9) == 0 &&
			 out->endpoint_count < TL_CLUSTER_ENDPOINTS_MAX) {
			/* listener.NAME=HOST:PORT (the last colon: HOST may be IPv6) */
			char *eq = strchr(f + 9, '=');
			char *colon = eq ? strrchr(eq + 1, ':') : NULL;
			struct tl_cluster_endpoint *e = &out->endpoints[out->endpoint_count];
			if (!eq || !colon || eq == f + 9 ||
			    (size_t)(eq - f - 9) >= sizeof(e->listener) ||
			    (size_t)(colon - eq - 1) >= sizeof(e->host) ||
			    !parse_int(colon + 1, f + strlen(f), 1, 65535, &v))
				return false;
			memcpy(e->listener, f + 9, (size_t)(eq - f - 9));
			e->listener[eq - f - 9] = '\0';
			memcpy(e->host, eq + 1, (size_t)(colon - eq - 1));
			e->host[colon - eq - 1] = '\0';
			e->port = (int32_t)v;
			out->endpoint_count++;
		}
	}
	return out->host[0] && out->port > 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* "id=<32 hex> partitions=N replicas=1,2,3;2,3,1;...\n" then "key=value\n" configs. */
static bool topic_decode(const struct tl_meta_kv *kv, const char *name,
			 struct tl_cluster_topic *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->revision = kv->mod_revision;
	const char *p = (const char *)kv->value, *end = p + kv->value_len;
	const char *eol = memchr(p, '\n', kv->value_len);
	if (!eol)
		eol = end;
	if (eol - p < 3 + 32 || memcmp(p, "id=", 3) != 0)
		return false;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(p[3 + 2 * i]), lo = hexval(p[4 + 2 * i]);
		if (hi < 0 || lo < 0)
			return false;
		out->id.bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	p += 3 + 32;
	if (end - p < 12 || memcmp(p, " partitions=", 12) != 0)
		return false;
	p += 12;
	const char *sp = memchr(p, ' ', (size_t)(eol - p));
	int64_t count;
	if (!sp || !parse_int(p, sp, 1, 100000, &count))
		return false;
	out->partition_count = (int32_t)count;
	p = sp + 1;
	if (eol - p < 9 || memcmp(p, "replicas=", 9) != 0)
		return false;
	p += 9;
	out->partitions = calloc((size_t)count, sizeof(*out->partitions));
	if (!out->partitions)
		return false;
	for (int32_t i = 0; i < out->partition_count; i++) {
		struct tl_cluster_partition *cp = &out->partitions[i];
		for (;;) {
			const char *q = p;
			while (q < eol && *q != ',' && *q != ';')
				q++;
			int64_t id;
			if (cp->replica_count == TL_REPL_REPLICAS_MAX ||
			    !parse_int(p, q, 0, INT32_MAX, &id))
				goto out_bad;
			cp->replicas[cp->replica_count++] = (int32_t)id;
			p = q;
			if (p < eol && *p == ',') {
				p++;
				continue;
			}
			break;
		}
		if (i + 1 < out->partition_count) {
			if (p >= eol || *p != ';')
				goto out_bad;
			p++;
		}
	}
	if (p != eol)
		goto out_bad;
	size_t rest = eol < end ? (size_t)(end - eol - 1) : 0;
	out->configs = malloc(rest + 1);
	if (!out->configs)
		goto out_bad;
	memcpy(out->configs, eol < end ? eol + 1 : "", rest);
	out->configs[rest] = '\0';
	return true;
out_bad:
	free(out->partitions);
	out->partitions = NULL;
	return false;
}

static void view_free(struct tl_cluster_view *view)
{
	if (!view)
		return;
	for (int32_t i = 0; i < view->topic_count; i++) {
		free(view->topics[i].partitions);
		free(view->topics[i].configs);
	}
	free(view->topics);
	free(view->brokers);
	free(view->acls);
	free(view->quotas);
	if (view->scram)
		tl_scram_wipe(view->scram, strlen(view->scram));
	free(view->scram);
	free(view);
}

static int cmp_topic(const void *a, const void *b)
{
	return strcmp(((const struct tl_cluster_topic *)a)->name,
		      ((const struct tl_cluster_topic *)b)->name);
}

static struct tl_cluster_topic *view_topic(struct tl_cluster_view *view, const char *name)
{
	struct tl_cluster_topic key = {0};
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, view->topics, (size_t)view->topic_count, sizeof(key), cmp_topic);
}

/* Builds a view from the model: brokers, topics, then partition states. Keys that do
 * not parse are skipped with a warning (the store is not trusted). */
/* Where the view keeps the text-valued key @k, or NULL for any other key. */
static char **view_text_slot(struct tl_cluster_view *view, const char *k)
{
	if (strcmp(k, "scram-credentials") == 0)
		return &view->scram;
	if (strcmp(k, "client-quotas") == 0)
		return &view->quotas;
	if (strcmp(k, "acls") == 0)
		return &view->acls;
	return NULL;
}

static struct tl_cluster_view *view_build(const struct tl_cluster *c)
{
	const struct model *m = &c->model;
	struct tl_cluster_view *view = calloc(1, sizeof(*view));
	if (!view)
		return NULL;
	view->revision = m->revision;
	view->controller = -1;
	size_t broker_keys = 0;
	for (size_t i = 0; i < m->count; i++) {
		const char *slash = strrchr(m->kvs[i].key, '/');
		if (slash && slash - m->kvs[i].key >= 8 && strncmp(slash - 8, "/brokers", 8) == 0)
			broker_keys++;
	}
	view->brokers = calloc(broker_keys + 1, sizeof(*view->brokers));
	view->topics = calloc(m->count + 1, sizeof(*view->topics));
	if (!view->brokers || !view->topics) {
		view_free(view);
		return NULL;
	}
	size_t plen = strlen(c->prefix) + 1;
	for (size_t i = 0; i < m->count; i++) {
		const struct tl_meta_kv *kv = &m->kvs[i];
		if (strncmp(kv->key, c->prefix, plen - 1) != 0 || kv->key[plen - 1] != '/')
			continue;
		const char *k = kv->key + plen;
		int64_t id;
		if (strncmp(k, "brokers/", 8) == 0 &&
		    parse_int(k + 8, k + strlen(k), 0, INT32_MAX, &id)) {
			if (broker_decode(kv, (int32_t)id, &view->brokers[view->broker_count]))
				view->broker_count++;
			else
				tl_warn("cluster: bad broker registration ignored key=%s", kv->key);
		} else if (strcmp(k, "controller") == 0) {
			if (parse_int((const char *)kv->value,
				      (const char *)kv->value + kv->value_len, 0, INT32_MAX, &id))
				view->controller = (int32_t)id;
		} else if (strcmp(k, "cluster_id") == 0) {
			snprintf(view->cluster_id, sizeof(view->cluster_id), "%.*s",
				 (int)TL_MIN(kv->value_len, (size_t)63), (const char *)kv->value);
		} else if (strncmp(k, "topics/", 7) == 0) {
			if (topic_decode(kv, k + 7, &view->topics[view->topic_count]))
				view->topic_count++;
			else
				tl_warn("cluster: bad topic record ignored key=%s", kv->key);
		} else {
			char **text = view_text_slot(view, k);
			if (text && !*text && !(*text = kv_text(kv->value, kv->value_len))) {
				view_free(view);
				return NULL;
			}
		}
	}
	if ((!view->acls && !(view->acls = strdup(""))) ||
	    (!view->quotas && !(view->quotas = strdup(""))) ||
	    (!view->scram && !(view->scram = strdup("")))) {
		view_free(view);
		return NULL;
	}
	/* The model is sorted by key, so topics come out sorted by name. */
	for (size_t i = 0; i < m->count; i++) {
		const struct tl_meta_kv *kv = &m->kvs[i];
		if (strncmp(kv->key, c->prefix, plen - 1) != 0)
			continue;
		const char *k = kv->key + plen;
		if (strncmp(k, "partitions/", 11) != 0)
			continue;
		const char *slash = strrchr(k + 11, '/');
		int64_t index;
		if (!slash || !parse_int(slash + 1, k + strlen(k), 0, INT32_MAX, &index))
			continue;
		char name[TL_TOPIC_NAME_MAX + 1];
		snprintf(name, sizeof(name), "%.*s", (int)(slash - (k + 11)), k + 11);
		struct tl_cluster_topic *t = view_topic(view, name);
		if (!t || index >= t->partition_count)
			continue;
		struct tl_cluster_partition *cp = &t->partitions[index];
		if (tl_repl_state_decode(kv->value, kv->value_len, &cp->state) != TL_OK) {
			tl_warn("cluster: bad partition state ignored key=%s", kv->key);
			continue;
		}
		cp->has_state = true;
		cp->revision = kv->mod_revision;
	}
	return view;
}

bool tl_cluster_broker_address(const struct tl_cluster_broker *b, const struct tl_conn *conn,
			       const char **host_out, int32_t *port_out)
{
	*host_out = b->host;
	*port_out = b->port;
	if (!conn || !conn->listener)
		return true;
	if (b->id == conn->broker->config.node_id) {
		tl_conn_advertised(conn, host_out, port_out);
		return true;
	}
	if (b->endpoint_count == 0)
		return true;
	for (int32_t i = 0; i < b->endpoint_count; i++) {
		/* Kafka's listener names are case-insensitive (ListenerName upper-cases). */
		if (strcasecmp(b->endpoints[i].listener, conn->listener->config->name) == 0) {
			*host_out = b->endpoints[i].host;
			*port_out = b->endpoints[i].port;
			return true;
		}
	}
	return false;
}

const struct tl_cluster_broker *tl_cluster_find_broker(const struct tl_cluster_view *view,
						       int32_t id)
{
	for (int32_t i = 0; view && i < view->broker_count; i++)
		if (view->brokers[i].id == id)
			return &view->brokers[i];
	return NULL;
}

static bool broker_alive(void *ctx, int32_t id)
{
	return tl_cluster_find_broker(ctx, id) != NULL;
}

/* ---- thread: writes ---- */

static void lease_touch(struct tl_cluster *c);

/* Writes partition @index of @topic's state if its key's mod_revision is @expected (0:
 * absent) and, when @topic_revision > 0, the topic's key is still at that revision. */
static tl_err partition_write(struct tl_cluster *c, const char *topic, int32_t index,
			      int64_t expected, int64_t topic_revision,
			      const struct tl_repl_state *state, bool *swapped)
{
	lease_touch(c); /* a round may write many partitions */
	char key[KEY_MAX], topic_key[KEY_MAX], value[256];
	snprintf(key, sizeof(key), "%s/partitions/%s/%d", c->prefix, topic, index);
	snprintf(topic_key, sizeof(topic_key), "%s/topics/%s", c->prefix, topic);
	int len = tl_repl_state_encode(state, value, sizeof(value));
	TL_ASSERT(len > 0);
	const struct tl_meta_cas_op ops[2] = {
		{.key = key,
		 .value = value,
		 .value_len = (size_t)len,
		 .expected_mod_revision = expected},
		{.key = topic_key, .expected_mod_revision = topic_revision, .compare_only = true},
	};
	tl_err err =
		tl_meta_cas_many(c->meta, ops, topic_revision > 0 ? 2 : 1, swapped, NULL, NULL);
	if (err == TL_OK && *swapped)
		tl_info("cluster: partition state written topic=%s partition=%d state=\"%s\"",
			topic, index, value);
	return err;
}

static tl_err partition_cas(struct tl_cluster *c, const char *topic, int32_t index,
			    int64_t expected, const struct tl_repl_state *state, bool *swapped)
{
	return partition_write(c, topic, index, expected, 0, state, swapped);
}

/* Writes the first state of partition @index of @topic, only while no state exists and
 * the topic's key is the one the view holds: a topic deleted meanwhile (DeleteTopics on
 * another broker, between this round's view and its write) got no orphan state, which
 * a topic created again under the name took over (a leader and ISR from the old
 * assignment: partitions that never served). */
static void partition_create(struct tl_cluster *c, const struct tl_cluster_topic *topic,
			     int32_t index, const struct tl_repl_state *state)
{
	bool swapped;
	(void)partition_write(c, topic->name, index, 0, topic->revision, state, &swapped);
}

/* partition_cas() for a caller that only needs to know whether the state was written
 * (false on a store error or a key that moved on: its next round retries). */
static bool partition_cas_swapped(struct tl_cluster *c, const char *topic, int32_t index,
				  int64_t expected_revision, const struct tl_repl_state *state)
{
	bool swapped = false;
	return partition_cas(c, topic, index, expected_revision, state, &swapped) == TL_OK &&
	       swapped;
}

/* Writes a topic key's value into @value (VALUE_MAX bytes): "id=<hex> partitions=N
 * replicas=...\n" then @configs, @rf replicas a partition from @rows. Returns its length;
 * VALUE_MAX or more when it does not fit. */
static size_t topic_value(char *value, const uint8_t id[16], int32_t partitions,
			  const int32_t *rows, int32_t rf, const char *configs)
{
	size_t n = (size_t)snprintf(value, VALUE_MAX, "id=");
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(value + n, VALUE_MAX - n, "%02x", id[i]);
	n += (size_t)snprintf(value + n, VALUE_MAX - n, " partitions=%d replicas=", partitions);
	for (int32_t p = 0; p < partitions && n < VALUE_MAX; p++)
		for (int32_t r = 0; r < rf && n < VALUE_MAX; r++)
			n += (size_t)snprintf(value + n, VALUE_MAX - n, "%s%d",
					      r ? "," : (p ? ";" : ""), rows[p * rf + r]);
	if (n < VALUE_MAX)
		n += (size_t)snprintf(value + n, VALUE_MAX - n, "\n%s", configs);
	return n;
}

/* The live brokers of @view for tl_repl_assign; NULL when out of memory. */
static struct tl_repl_broker *assign_brokers(const struct tl_cluster_view *view)
{
	struct tl_repl_broker *brokers = calloc((size_t)view->broker_count + 1, sizeof(*brokers));
	for (int32_t i = 0; brokers && i < view->broker_count; i++) {
		brokers[i].id = view->brokers[i].id;
		snprintf(brokers[i].rack, sizeof(brokers[i].rack), "%s", view->brokers[i].rack);
	}
	return brokers;
}

static uint32_t assign_start(void)
{
	uint32_t start = 0;
	if (getrandom(&start, sizeof(start), 0) != sizeof(start))
		start = (uint32_t)tl_mono_ns();
	return start;
}

static void topic_create(struct tl_cluster *c, struct tl_cluster_view *view, struct command *cmd)
{
	if (view_topic(view, cmd->topic)) {
		cmd->err = TL_ERR_TOPIC_ALREADY_EXISTS;
		snprintf(cmd->message, sizeof(cmd->message), "topic '%s' already exists",
			 cmd->topic);
		return;
	}
	struct tl_repl_broker *brokers = assign_brokers(view);
	int32_t *rows = calloc((size_t)cmd->partitions * (size_t)TL_MAX(cmd->replication_factor, 1),
			       sizeof(*rows));
	char *value = malloc(VALUE_MAX);
	if (!brokers || !rows || !value) {
		cmd->err = TL_ERR_NOMEM;
		goto out;
	}
	cmd->err = tl_repl_assign(brokers, view->broker_count, cmd->partitions,
				  cmd->replication_factor, assign_start(), rows);
	if (cmd->err != TL_OK) {
		snprintf(cmd->message, sizeof(cmd->message),
			 "replication factor %d is larger than the %d live brokers",
			 cmd->replication_factor, view->broker_count);
		goto out;
	}
	uint8_t id[16];
	if (getrandom(id, sizeof(id), 0) != sizeof(id)) {
		cmd->err = TL_ERR_KAFKA_STORAGE_ERROR;
		goto out;
	}
	size_t n = topic_value(value, id, cmd->partitions, rows, cmd->replication_factor,
			       cmd->configs ? cmd->configs : "");
	if (n >= VALUE_MAX) {
		cmd->err = TL_ERR_INVALID_PARTITIONS;
		snprintf(cmd->message, sizeof(cmd->message), "too many partitions for one record");
		goto out;
	}
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/topics/%s", c->prefix, cmd->topic);
	bool swapped = false;
	tl_err err = tl_meta_cas(c->meta, key, value, n, 0, 0, &swapped, NULL, NULL);
	if (err != TL_OK) {
		cmd->err = TL_ERR_REQUEST_TIMED_OUT;
		snprintf(cmd->message, sizeof(cmd->message), "metadata store: %s",
			 tl_meta_last_error(c->meta));
	} else if (!swapped) {
		cmd->err = TL_ERR_TOPIC_ALREADY_EXISTS;
		snprintf(cmd->message, sizeof(cmd->message), "topic '%s' already exists",
			 cmd->topic);
	} else {
		tl_info("cluster: topic created topic=%s partitions=%d replication_factor=%d",
			cmd->topic, cmd->partitions, cmd->replication_factor);
	}
out:
	free(value);
	free(rows);
	free(brokers);
}

/* Whether line @line ("key=value") sets a key named in @keys ("key=value\n" or "key\n"
 * lines). */
static bool line_named(const char *line, size_t len, const char *keys)
{
	const char *eq = memchr(line, '=', len);
	size_t klen = eq ? (size_t)(eq - line) : len;
	for (const char *p = keys; p && *p;) {
		size_t n = strcspn(p, "\n");
		size_t k = strcspn(p, "=\n");
		if (k == klen && memcmp(p, line, klen) == 0)
			return true;
		p += n + (p[n] == '\n');
	}
	return false;
}

/* The topic's configs after @cmd: the whole new set, or the current lines less the
 * keys @cmd sets or deletes, then its sets. Merged here, on the store's current value,
 * so that two brokers' edits of different keys do not undo each other (each computed
 * its edit from a view that may lag the store). */
static size_t alter_merge(const struct command *cmd, const uint8_t *current, size_t len, char *out,
			  size_t out_size)
{
	size_t n = 0;
	if (!cmd->replace)
		for (size_t at = 0; at < len;) {
			const uint8_t *eol = memchr(current + at, '\n', len - at);
			size_t line = eol ? (size_t)(eol - (current + at)) : len - at;
			const char *p = (const char *)current + at;
			if (line > 0 && !line_named(p, line, cmd->configs) &&
			    !line_named(p, line, cmd->deletes))
				n += (size_t)snprintf(out + n, out_size - TL_MIN(n, out_size),
						      "%.*s\n", (int)line, p);
			at += line + 1;
		}
	n += (size_t)snprintf(out + n, out_size - TL_MIN(n, out_size), "%s", cmd->configs);
	return n;
}

/* Changes the explicit configs of a topic (the lines after the first of its key),
 * compare-and-swap on the key's revision, so that a concurrent change (a delete, a
 * re-create, another broker's edit) is read again and merged, never overwritten. */
static void topic_alter(struct tl_cluster *c, struct command *cmd)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/topics/%s", c->prefix, cmd->topic);
	for (int attempt = 0; attempt < 5; attempt++) {
		struct tl_meta_result got;
		memset(&got, 0, sizeof(got));
		tl_err err = tl_meta_get(c->meta, key, &got);
		if (err != TL_OK) {
			tl_meta_result_deinit(&got);
			break;
		}
		if (got.count != 1) {
			tl_meta_result_deinit(&got);
			cmd->err = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			snprintf(cmd->message, sizeof(cmd->message), "topic '%s' does not exist",
				 cmd->topic);
			return;
		}
		const struct tl_meta_kv *kv = &got.kvs[0];
		const uint8_t *eol = memchr(kv->value, '\n', kv->value_len);
		size_t head = eol ? (size_t)(eol - kv->value) : kv->value_len;
		size_t cap = kv->value_len + strlen(cmd->configs) + 2;
		char *value = malloc(cap);
		if (!value) {
			tl_meta_result_deinit(&got);
			cmd->err = TL_ERR_NOMEM;
			return;
		}
		memcpy(value, kv->value, head);
		value[head] = '\n';
		const uint8_t *current = eol ? eol + 1 : kv->value + kv->value_len;
		size_t rest =
			alter_merge(cmd, current, kv->value_len - (size_t)(current - kv->value),
				    value + head + 1, cap - head - 1);
		TL_ASSERT(head + 1 + rest < cap);
		bool swapped = false;
		err = tl_meta_cas(c->meta, key, value, head + 1 + rest, kv->mod_revision, 0,
				  &swapped, NULL, NULL);
		free(value);
		tl_meta_result_deinit(&got);
		if (err != TL_OK)
			break;
		if (swapped) {
			tl_info("cluster: topic configs changed topic=%s", cmd->topic);
			return;
		}
	}
	cmd->err = TL_ERR_REQUEST_TIMED_OUT;
	snprintf(cmd->message, sizeof(cmd->message), "metadata store: %s",
		 tl_meta_last_error(c->meta)[0] ? tl_meta_last_error(c->meta)
						: "the topic kept changing");
}

/* Parses @text ("1,2,3;2,3,1": @count rows of @rf broker ids) into @rows. */
static bool rows_parse(const char *text, int32_t count, int32_t rf, int32_t *rows)
{
	const char *p = text, *end = text + strlen(text);
	for (int32_t i = 0; i < count * rf; i++) {
		const char *q = p;
		while (q < end && *q != ',' && *q != ';')
			q++;
		int64_t id;
		if (!parse_int(p, q, 0, INT32_MAX, &id))
			return false;
		rows[i] = (int32_t)id;
		bool last = i + 1 == count * rf;
		char want = (i + 1) % rf == 0 ? ';' : ',';
		if (last ? q != end : (q == end || *q != want))
			return false;
		p = q + !last;
	}
	return true;
}

/* The replicas of @t's partitions after @cmd: the existing rows, then the new
 * partitions' rows (from @cmd->configs, or assigned over the live brokers), @rf each. */
static tl_err add_rows(const struct tl_cluster_view *view, const struct tl_repl_broker *brokers,
		       const struct tl_cluster_topic *t, struct command *cmd, int32_t *rows,
		       int32_t *rf_out)
{
	int32_t old = t->partition_count, rf = t->partitions[0].replica_count;
	if (cmd->partitions <= old) {
		snprintf(cmd->message, sizeof(cmd->message),
			 cmd->partitions == old ? "Topic already has %d partitions."
						: "Topic currently has %d partitions, which is "
						  "higher than the requested %d.",
			 old, cmd->partitions);
		return TL_ERR_INVALID_PARTITIONS;
	}
	for (int32_t i = 0; i < old; i++) {
		if (t->partitions[i].replica_count != rf) {
			snprintf(cmd->message, sizeof(cmd->message),
				 "Inconsistent replication factor between partitions.");
			return TL_ERR_INVALID_REPLICA_ASSIGNMENT;
		}
		memcpy(&rows[i * rf], t->partitions[i].replicas, (size_t)rf * sizeof(*rows));
	}
	int32_t added = cmd->partitions - old;
	int32_t *fresh = &rows[old * rf];
	*rf_out = rf;
	if (!cmd->configs[0]) {
		if (tl_repl_assign(brokers, view->broker_count, added, rf, assign_start(), fresh) ==
		    TL_OK)
			return TL_OK;
		snprintf(cmd->message, sizeof(cmd->message),
			 "Replication factor: %d larger than available brokers: %d.", rf,
			 view->broker_count);
		return TL_ERR_INVALID_REPLICATION_FACTOR;
	}
	if (!rows_parse(cmd->configs, added, rf, fresh)) {
		snprintf(cmd->message, sizeof(cmd->message),
			 "Inconsistent replication factor between partitions, partition 0 has "
			 "%d.",
			 rf);
		return TL_ERR_INVALID_REPLICA_ASSIGNMENT;
	}
	for (int32_t i = 0; i < added * rf; i++) {
		bool twice = false;
		for (int32_t j = i - i % rf; j < i; j++)
			twice |= fresh[j] == fresh[i];
		if (twice || !tl_cluster_find_broker(view, fresh[i])) {
			snprintf(cmd->message, sizeof(cmd->message),
				 "%s broker %d in the assignment of partition %d.",
				 twice ? "Duplicate" : "Unknown", fresh[i], old + i / rf);
			return TL_ERR_INVALID_REPLICA_ASSIGNMENT;
		}
	}
	return TL_OK;
}

/* CreatePartitions: rewrites the topic key with @cmd->partitions partitions, the
 * existing ones unchanged, compare-and-swap on its revision. The controller then writes
 * the new partitions' states (their first live replica leads), and each broker opens the
 * logs it hosts when its view has them (replica.c). */
static void topic_add_partitions(struct tl_cluster *c, struct tl_cluster_view *view,
				 struct command *cmd)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/topics/%s", c->prefix, cmd->topic);
	struct tl_repl_broker *brokers = assign_brokers(view);
	int32_t *rows = calloc((size_t)cmd->partitions * TL_REPL_REPLICAS_MAX, sizeof(*rows));
	char *value = malloc(VALUE_MAX);
	if (!brokers || !rows || !value) {
		cmd->err = TL_ERR_NOMEM;
		goto out;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		struct tl_meta_result got;
		memset(&got, 0, sizeof(got));
		tl_err err = tl_meta_get(c->meta, key, &got);
		if (err != TL_OK && err != TL_ERR_NOT_FOUND) {
			tl_meta_result_deinit(&got);
			break;
		}
		if (got.count != 1) {
			tl_meta_result_deinit(&got);
			cmd->err = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			snprintf(cmd->message, sizeof(cmd->message),
				 "The topic '%s' does not exist.", cmd->topic);
			goto out;
		}
		struct tl_cluster_topic t;
		bool readable = topic_decode(&got.kvs[0], cmd->topic, &t);
		int64_t revision = got.kvs[0].mod_revision;
		tl_meta_result_deinit(&got);
		if (!readable) {
			cmd->err = TL_ERR_KAFKA_STORAGE_ERROR;
			snprintf(cmd->message, sizeof(cmd->message),
				 "the topic's record in the metadata store is unreadable");
			goto out;
		}
		int32_t rf = 0;
		cmd->err = add_rows(view, brokers, &t, cmd, rows, &rf);
		size_t n = cmd->err == TL_OK ? topic_value(value, t.id.bytes, cmd->partitions, rows,
							   rf, t.configs)
					     : 0;
		free(t.partitions);
		free(t.configs);
		if (cmd->err != TL_OK)
			goto out;
		if (n >= VALUE_MAX) {
			cmd->err = TL_ERR_INVALID_PARTITIONS;
			snprintf(cmd->message, sizeof(cmd->message),
				 "too many partitions for one record");
			goto out;
		}
		bool swapped = false;
		err = tl_meta_cas(c->meta, key, value, n, revision, 0, &swapped, NULL, NULL);
		if (err != TL_OK)
			break;
		if (swapped) {
			tl_info("cluster: partitions added topic=%s partitions=%d", cmd->topic,
				cmd->partitions);
			goto out;
		}
	}
	cmd->err = TL_ERR_REQUEST_TIMED_OUT;
	snprintf(cmd->message, sizeof(cmd->message), "metadata store: %s",
		 tl_meta_last_error(c->meta)[0] ? tl_meta_last_error(c->meta)
						: "the topic kept changing");
out:
	free(value);
	free(rows);
	free(brokers);
}

/* Applies @text (ACL lines, acl.h's form) to @acls: adds them, or removes each exactly. */
static tl_err acls_apply_lines(struct tl_acls *acls, const char *text, bool add)
{
	if (add)
		return tl_acls_parse(acls, text);
	struct tl_acls gone;
	tl_acls_init(&gone);
	tl_err err = tl_acls_parse(&gone, text);
	for (const struct tl_acl_resource *r = tl_acls_next(&gone, NULL); r && err == TL_OK;
	     r = tl_acls_next(&gone, r)) {
		for (int32_t i = 0; i < r->entry_count; i++) {
			const struct tl_acl_entry *e = &r->entries[i];
			struct tl_acl_binding exact = {
				.resource_type = r->type,
				.pattern_type = r->pattern,
				.resource_name = {r->name, r->name_len},
				.principal = tl_str_of(e->principal),
				.host = tl_str_of(e->host),
				.operation = e->operation,
				.permission = e->permission,
			};
			tl_acls_remove(acls, &exact, NULL, NULL);
		}
	}
	tl_acls_deinit(&gone);
	return err;
}

/* One store kept as a text key in etcd (ACLs, SCRAM credentials, client quotas): parses
 * @current (the key's value, NUL-terminated, "" when absent; the parser may cut it up), applies
 * @cmd's change and returns the new text (malloc'd; *count = what it holds, for the log). NULL
 * gives up: cmd->err and cmd->message say why, or, with cmd->err TL_OK, there is nothing to write
 * (cmd->message says so). */
typedef char *(*text_change_fn)(struct command *cmd, char *current, int32_t *count);

struct text_store {
	const char *key;  /* below the prefix */
	const char *what; /* for messages: "the ACLs" */
	const char *log;  /* "cluster: acls changed" */
	const char *unit; /* the log's count key: "acls" */
	bool secret;      /* wipe every copy of the text (salted credentials) */
	text_change_fn apply;
};

static void text_free(const struct text_store *store, char *text, size_t len)
{
	if (store->secret)
		tl_scram_wipe(text, len);
	free(text);
}

/* Merges @cmd's change into @store's key: read, apply, compare-and-swap on the key's
 * revision, again if another broker changed it meanwhile (issue #16: ACLs and SCRAM;
 * issue #20: quotas). The answer waits for the store; the view then brings the new
 * text to every broker. */
static void text_key_change(struct tl_cluster *c, struct command *cmd,
			    const struct text_store *store)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/%s", c->prefix, store->key);
	for (int attempt = 0; attempt < 5; attempt++) {
		struct tl_meta_result got;
		memset(&got, 0, sizeof(got));
		tl_err err = tl_meta_get(c->meta, key, &got);
		if (err != TL_OK && err != TL_ERR_NOT_FOUND) {
			tl_meta_result_deinit(&got);
			break;
		}
		int64_t revision = got.count == 1 ? got.kvs[0].mod_revision : 0;
		size_t len = got.count == 1 ? got.kvs[0].value_len : 0;
		char *current = kv_text(len > 0 ? got.kvs[0].value : NULL, len);
		tl_meta_result_deinit(&got);
		if (!current) {
			cmd->err = TL_ERR_NOMEM;
			return;
		}
		int32_t count = 0;
		char *text = store->apply(cmd, current, &count);
		text_free(store, current, len);
		if (!text)
			return;
		size_t text_len = strlen(text);
		if (text_len > TL_META_VALUE_BYTES_MAX) {
			text_free(store, text, text_len);
			cmd->err = TL_ERR_INVALID_REQUEST;
			snprintf(cmd->message, sizeof(cmd->message),
				 "%s would exceed the metadata store's value limit", store->what);
			return;
		}
		bool swapped = false;
		err = tl_meta_cas(c->meta, key, text, text_len, revision, 0, &swapped, NULL, NULL);
		text_free(store, text, text_len);
		if (err != TL_OK)
			break;
		if (swapped) {
			tl_info("%s %s=%d", store->log, store->unit, count);
			snprintf(cmd->message, sizeof(cmd->message), "stored");
			return;
		}
	}
	cmd->err = TL_ERR_REQUEST_TIMED_OUT;
	const char *why = tl_meta_last_error(c->meta);
	if (why[0])
		snprintf(cmd->message, sizeof(cmd->message), "metadata store: %s", why);
	else
		snprintf(cmd->message, sizeof(cmd->message), "metadata store: %s kept changing",
			 store->what);
}

static char *acls_apply(struct command *cmd, char *current, int32_t *count)
{
	struct tl_acls acls;
	tl_acls_init(&acls);
	tl_err err = tl_acls_parse(&acls, current);
	if (err == TL_OK)
		err = acls_apply_lines(&acls, cmd->configs, true);
	if (err == TL_OK)
		err = acls_apply_lines(&acls, cmd->deletes, false);
	char *text = err == TL_OK ? tl_acls_format(&acls) : NULL;
	if (!text) {
		cmd->err = err == TL_OK ? TL_ERR_NOMEM : TL_ERR_INVALID_REQUEST;
		snprintf(cmd->message, sizeof(cmd->message), "the stored ACLs: %s",
			 acls.why[0] ? acls.why : "out of memory");
	}
	*count = acls.acl_count;
	tl_acls_deinit(&acls);
	return text;
}

static const struct text_store acls_store = {
	.key = "acls",
	.what = "the ACLs",
	.log = "cluster: acls changed",
	.unit = "acls",
	.apply = acls_apply,
};

/* SCRAM credentials in sasl.c's file form: salted credentials, never a password. */
static char *scram_apply(struct command *cmd, char *current, int32_t *count)
{
	struct tl_sasl_users change = {0}, users = {0};
	char *text = NULL;
	int32_t bad_line = 0;
	char *work = strdup(cmd->configs);
	if (!work || tl_sasl_users_parse(&change, work, &bad_line) != TL_OK) {
		cmd->err = work ? TL_ERR_INVALID_REQUEST : TL_ERR_NOMEM;
		snprintf(cmd->message, sizeof(cmd->message), "bad credentials line=%d", bad_line);
		goto out;
	}
	if (tl_sasl_users_parse(&users, current, &bad_line) != TL_OK) {
		cmd->err = TL_ERR_KAFKA_STORAGE_ERROR;
		snprintf(cmd->message, sizeof(cmd->message),
			 "the stored SCRAM credentials are corrupt line=%d", bad_line);
		goto out;
	}
	int32_t copied = tl_sasl_users_merge(&users, &change, cmd->replace);
	bool removed_ok = tl_sasl_users_remove_lines(&users, cmd->deletes);
	text = copied >= 0 && removed_ok ? tl_sasl_users_format(&users) : NULL;
	*count = users.count;
	if (!text) {
		cmd->err = removed_ok ? TL_ERR_NOMEM : TL_ERR_INVALID_REQUEST;
	} else if (copied == 0 && !cmd->deletes[0]) {
		/* --add-scram of a credential the store has: nothing to write. */
		tl_scram_wipe(text, strlen(text));
		free(text);
		text = NULL;
		snprintf(cmd->message, sizeof(cmd->message), "kept (already in the store)");
	}
out:
	if (work)
		tl_scram_wipe(work, strlen(cmd->configs));
	free(work);
	tl_sasl_users_deinit(&users);
	tl_sasl_users_deinit(&change);
	return text;
}

static const struct text_store scram_store = {
	.key = "scram-credentials",
	.what = "the credentials",
	.log = "cluster: SCRAM credentials changed",
	.unit = "users",
	.secret = true,
	.apply = scram_apply,
};

/* Client quotas in quota.h's text form. */
static char *quotas_apply(struct command *cmd, char *current, int32_t *count)
{
	struct tl_quotas quotas;
	tl_quotas_init(&quotas, 2, 1000);
	tl_err err = tl_quotas_parse(&quotas, current);
	if (err == TL_OK)
		err = tl_quotas_apply_text(&quotas, cmd->deletes, true);
	if (err == TL_OK)
		err = tl_quotas_apply_text(&quotas, cmd->configs, false);
	char *text = err == TL_OK ? tl_quotas_format(&quotas) : NULL;
	*count = quotas.entity_count;
	tl_quotas_deinit(&quotas);
	if (!text) {
		cmd->err =
			err == TL_ERR_CORRUPT ? TL_ERR_KAFKA_STORAGE_ERROR : TL_ERR_INVALID_REQUEST;
		snprintf(cmd->message, sizeof(cmd->message), "%s",
			 err == TL_ERR_CORRUPT ? "the stored client quotas are corrupt"
					       : "too many quota entities");
	}
	return text;
}

static const struct text_store quotas_store = {
	.key = "client-quotas",
	.what = "the quotas",
	.log = "cluster: client quotas changed",
	.unit = "entities",
	.apply = quotas_apply,
};

/* Producer ids are unique in the cluster (an idempotent partition dedupes by id): each
 * broker takes blocks of them from one counter in etcd, "<prefix>/producer-id-block"
 * (the next block's first id), advanced by compare-and-swap (Kafka's KIP-730 blocks,
 * kept in the metadata store as ZooKeeper kept them before). A crash skips ids, never
 * reuses them. */
static void pid_block(struct tl_cluster *c, struct command *cmd)
{
	char key[KEY_MAX], value[32];
	snprintf(key, sizeof(key), "%s/producer-id-block", c->prefix);
	for (int attempt = 0; attempt < 10; attempt++) {
		struct tl_meta_result got;
		memset(&got, 0, sizeof(got));
		tl_err err = tl_meta_get(c->meta, key, &got);
		int64_t start = 0, expected = 0;
		if (err == TL_OK && got.count == 1) {
			char text[32];
			size_t n = TL_MIN(got.kvs[0].value_len, sizeof(text) - 1);
			memcpy(text, got.kvs[0].value, n);
			text[n] = '\0';
			char *end = NULL;
			long long v = strtoll(text, &end, 10);
			if (end == text || *end != '\0' || v < 0) {
				tl_meta_result_deinit(&got);
				cmd->err = TL_ERR_KAFKA_STORAGE_ERROR;
				snprintf(cmd->message, sizeof(cmd->message),
					 "unreadable producer id block key %.200s", key);
				return;
			}
			start = v;
			expected = got.kvs[0].mod_revision;
		} else if (err != TL_ERR_NOT_FOUND && err != TL_OK) {
			tl_meta_result_deinit(&got);
			cmd->err = TL_ERR_COORDINATOR_LOAD_IN_PROGRESS; /* etcd away: retriable */
			return;
		}
		tl_meta_result_deinit(&got);
		int len = snprintf(value, sizeof(value), "%" PRId64, start + cmd->block_size);
		bool swapped = false;
		err = tl_meta_cas(c->meta, key, value, (size_t)len, expected, 0, &swapped, NULL,
				  NULL);
		if (err != TL_OK) {
			cmd->err = TL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
			return;
		}
		if (swapped) {
			cmd->block_start = start;
			cmd->err = TL_OK;
			return;
		}
	}
	cmd->err = TL_ERR_COORDINATOR_LOAD_IN_PROGRESS; /* contended: the caller asks again */
}

static void topic_delete(struct tl_cluster *c, struct tl_cluster_view *view, struct command *cmd)
{
	if (!view_topic(view, cmd->topic)) {
		cmd->err = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		snprintf(cmd->message, sizeof(cmd->message), "topic '%s' does not exist",
			 cmd->topic);
		return;
	}
	/* The topic key and its partition states in one transaction: deleted one after the
	 * other, a controller dying between the two left states a topic re-created under
	 * the name took over (stale leaders and epochs: its partitions never served). */
	char key[KEY_MAX], prefix[KEY_MAX];
	snprintf(key, sizeof(key), "%s/topics/%s", c->prefix, cmd->topic);
	snprintf(prefix, sizeof(prefix), "%s/partitions/%s/", c->prefix, cmd->topic);
	tl_err err = tl_meta_delete_key_and_prefix(c->meta, key, prefix);
	if (err != TL_OK) {
		cmd->err = TL_ERR_REQUEST_TIMED_OUT;
		snprintf(cmd->message, sizeof(cmd->message), "metadata store: %s",
			 tl_meta_last_error(c->meta));
	}
}

/* Moves this broker's leadership of partition @i of @topic to another ISR member, or, on
 * a follower, takes this broker out of its ISR (controlled shutdown, and a replica whose
 * log failed). */
static void resign_partition(struct tl_cluster *c, struct tl_cluster_view *view,
			     struct tl_cluster_topic *topic, int32_t i)
{
	struct tl_cluster_partition *cp = &topic->partitions[i];
	bool swapped;
	if (cp->has_state && cp->state.leader >= 0 && cp->state.leader != c->self &&
	    tl_repl_isr_contains(&cp->state, c->self)) {
		/* A follower going away leaves the ISR now, as Kafka's controlled shutdown
		 * does, so acks=all does not wait out the lag time. */
		struct tl_repl_state next = cp->state;
		next.isr_count = 0;
		for (int32_t j = 0; j < cp->state.isr_count; j++)
			if (cp->state.isr[j] != c->self)
				next.isr[next.isr_count++] = cp->state.isr[j];
		partition_cas(c, topic->name, i, cp->revision, &next, &swapped);
		return;
	}
	if (!cp->has_state || cp->state.leader != c->self)
		return;
	int32_t leader = tl_repl_elect(cp->replicas, cp->replica_count, &cp->state, broker_alive,
				       view, c->self, false);
	if (leader < 0)
		return; /* nobody else can lead: keep it (Kafka does) */
	struct tl_repl_state next;
	tl_repl_state_after_election(&cp->state, leader, broker_alive, view, c->self, &next);
	partition_cas(c, topic->name, i, cp->revision, &next, &swapped);
}

/* Controlled shutdown: moves every leadership of this broker to another ISR member,
 * and takes this broker out of the ISR of the partitions it follows. */
static void resign(struct tl_cluster *c, struct tl_cluster_view *view)
{
	for (int32_t t = 0; t < view->topic_count; t++)
		for (int32_t i = 0; i < view->topics[t].partition_count; i++)
			resign_partition(c, view, &view->topics[t], i);
}

/* ---- thread: the controller ---- */

static void controller_partition(struct tl_cluster *c, struct tl_cluster_view *view,
				 struct tl_cluster_topic *topic, int32_t index, int64_t now)
{
	struct tl_cluster_partition *cp = &topic->partitions[index];
	struct tl_repl_state next;
	bool swapped;
	if (!cp->has_state) {
		memset(&next, 0, sizeof(next));
		next.leader = -1;
		for (int32_t r = 0; r < cp->replica_count; r++)
			if (broker_alive(view, cp->replicas[r]))
				next.isr[next.isr_count++] = cp->replicas[r];
		if (next.isr_count > 0)
			next.leader = next.isr[0];
		else
			for (int32_t r = 0; r < cp->replica_count; r++)
				next.isr[next.isr_count++] = cp->replicas[r];
		partition_create(c, topic, index, &next);
		return;
	}
	if (cp->state.leader < 0 || !broker_alive(view, cp->state.leader)) {
		int32_t leader = tl_repl_elect(cp->replicas, cp->replica_count, &cp->state,
					       broker_alive, view, -1, c->unclean);
		if (leader < 0 && cp->state.leader < 0)
			return; /* still offline */
		if (leader < 0)
			tl_warn("cluster: partition offline, no ISR member alive topic=%s "
				"partition=%d",
				topic->name, index);
		tl_repl_state_after_election(&cp->state, leader, broker_alive, view, -1, &next);
		partition_cas(c, topic->name, index, cp->revision, &next, &swapped);
		return;
	}
	int32_t preferred = cp->replicas[0];
	if (c->rebalance && now >= c->next_rebalance_ms && cp->state.leader != preferred &&
	    broker_alive(view, preferred) && tl_repl_isr_contains(&cp->state, preferred)) {
		next = cp->state;
		next.leader = preferred;
		next.leader_epoch++;
		tl_info("cluster: moving leadership to the preferred replica topic=%s "
			"partition=%d leader=%d",
			topic->name, index, preferred);
		partition_cas(c, topic->name, index, cp->revision, &next, &swapped);
	}
}

static void controller_round(struct tl_cluster *c, struct tl_cluster_view *view)
{
	int64_t now = tl_mono_ms();
	for (int32_t t = 0; t < view->topic_count; t++)
		for (int32_t i = 0; i < view->topics[t].partition_count; i++)
			controller_partition(c, view, &view->topics[t], i, now);
	if (now >= c->next_rebalance_ms)
		c->next_rebalance_ms = now + c->rebalance_interval_ms;
}

/* Partitions this broker led in a previous incarnation (killed, restarted before its
 * lease expired): lead on with a new epoch, so that followers that took writes this
 * broker's log lost truncate them (KIP-101). Its log holds everything acknowledged: the
 * high watermark never passes the leader's own durable end. Only for the same log
 * (same_log: the registration it replaced named this log directory); a broker that
 * comes back with another log gave its places up at start instead (disown). */
static bool reclaim(struct tl_cluster *c, struct tl_cluster_view *view)
{
	bool done = true;
	for (int32_t t = 0; t < view->topic_count; t++) {
		struct tl_cluster_topic *topic = &view->topics[t];
		for (int32_t i = 0; i < topic->partition_count; i++) {
			struct tl_cluster_partition *cp = &topic->partitions[i];
			if (!cp->has_state || cp->state.leader != c->self)
				continue;
			struct tl_repl_state next = cp->state;
			next.leader_epoch++;
			/* Not written (store error, or the key moved on): the next round retries
			 * from its view; still led by this broker, it gets its new epoch then. */
			if (!partition_cas_swapped(c, topic->name, i, cp->revision, &next))
				done = false;
		}
	}
	return done;
}

/* ---- thread: lease, controller election, the loop ---- */

/* The "dir=" field of a broker registration @value: the directory.id of the log that
 * broker serves ("" when none: a registration by a build without directory ids). */
static void registration_dir(const void *value, size_t len, char *out, size_t size)
{
	char text[4096];
	out[0] = '\0';
	snprintf(text, sizeof(text), "%.*s", (int)TL_MIN(len, sizeof(text) - 1),
		 (const char *)value);
	for (char *f = text; (f = strstr(f, "dir=")) != NULL; f += 4)
		if (f == text || f[-1] == ' ') {
			snprintf(out, size, "%.*s", (int)strcspn(f + 4, " "), f + 4);
			return;
		}
}

static tl_err campaign(struct tl_cluster *c)
{
	char key[KEY_MAX], value[16];
	snprintf(key, sizeof(key), "%s/controller", c->prefix);
	const struct tl_meta_kv *kv = model_get(&c->model, key);
	if (kv)
		return TL_OK;
	int len = snprintf(value, sizeof(value), "%d", c->self);
	bool swapped;
	tl_err err =
		tl_meta_cas(c->meta, key, value, (size_t)len, 0, c->lease, &swapped, NULL, NULL);
	if (err == TL_OK && swapped)
		tl_info("cluster: this broker is the controller node_id=%d", c->self);
	return err;
}

/* The lease is ours again (renewed, or granted anew when @lost), by a request sent at
 * @sent_ms. Past lease_until_ms the controller may have taken this broker's leaderships
 * while its view was not watched (an isolated broker whose lease ran out), so after such
 * a lapse the loop trusts its leaderships again only once the thread has listed the
 * prefix again and published that view (tl_cluster_leaderships_current). The TTL runs
 * at etcd from the request's arrival, after @sent_ms: this side's lease ends first. */
static void lease_renewed(struct tl_cluster *c, int64_t sent_ms, bool lost)
{
	if (lost || sent_ms >= atomic_load(&c->lease_until_ms)) {
		tl_info("cluster: lease renewed after a lapse, reading the cluster state again "
			"node_id=%d",
			c->self);
		c->relist = true;
		atomic_store(&c->current_from_revision, INT64_MAX);
	}
	c->last_keepalive_ms = sent_ms;
	atomic_store(&c->lease_until_ms, sent_ms + c->lease_ttl_ms);
}

static tl_err lease_renew(struct tl_cluster *c)
{
	int64_t now = tl_mono_ms();
	if (!c->unregistered && now - c->last_keepalive_ms < c->lease_ttl_ms / 3)
		return TL_OK;
	tl_err err;
	if (!c->unregistered) {
		err = tl_meta_lease_keepalive(c->meta, c->lease, NULL);
		if (err == TL_OK) {
			lease_renewed(c, now, false);
			return TL_OK;
		}
		if (err != TL_ERR_NOT_FOUND)
			return err;
		/* Expired (etcd was away longer than the TTL): the controller may have moved
		 * our leaderships already. Register again; the views tell the rest. */
		tl_warn("cluster: lease expired, registering again node_id=%d", c->self);
		err = tl_meta_lease_grant(c->meta, (c->lease_ttl_ms + 999) / 1000, &c->lease);
		if (err != TL_OK)
			return err;
		c->unregistered = true;
	}
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/brokers/%d", c->prefix, c->self);
	/* Create-if-absent, never over another's key: while this lease was lapsed another
	 * broker may have registered with this node.id (register_broker waits for ours to
	 * lapse). Then this one must not serve on: it stops, as a duplicate start would. */
	bool swapped = false;
	struct tl_meta_kv current = {0};
	err = tl_meta_cas(c->meta, key, c->registration, strlen(c->registration), 0, c->lease,
			  &swapped, NULL, &current);
	if (err == TL_OK && !swapped && current.key && current.lease != c->lease) {
		char dir[TL_DIRECTORY_ID_LEN + 1];
		registration_dir(current.value, current.value_len, dir, sizeof(dir));
		tl_crit("cluster: node.id %d was registered by another broker while this broker's "
			"lease was lapsed (its log directory.id=%s, ours %s); stopping",
			c->self, dir[0] ? dir : "none", c->directory_id);
		tl_meta_kv_deinit(&current);
		kill(getpid(), SIGTERM); /* the loop's signalfd: a controlled shutdown */
		return TL_ERR_EXISTS;
	}
	tl_meta_kv_deinit(&current);
	if (err == TL_ERR_NOT_FOUND)
		c->unregistered = false; /* that lease ran out too: the next round grants one */
	if (err != TL_OK)
		return err; /* the next round writes the key again, not just renews the lease */
	c->unregistered = false;
	lease_renewed(c, now, true);
	return TL_OK;
}

/* Renews the lease from inside a long round (the controller's elections, a topic's
 * partitions) once a third of its TTL has passed, so that a slow round does not look
 * like a lapse. Expiry and registration are left to the round's start (lease_renew). */
static void lease_touch(struct tl_cluster *c)
{
	int64_t now = tl_mono_ms();
	if (c->unregistered || now - c->last_keepalive_ms < c->lease_ttl_ms / 3)
		return;
	if (tl_meta_lease_keepalive(c->meta, c->lease, NULL) == TL_OK)
		lease_renewed(c, now, false);
}

static struct command *commands_take(struct tl_cluster *c)
{
	pthread_mutex_lock(&c->lock);
	struct command *list = c->commands;
	c->commands = c->commands_tail = NULL;
	pthread_mutex_unlock(&c->lock);
	return list;
}

static void signal_loop(struct tl_cluster *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->event_fd, &one, sizeof(one));
	TL_UNUSED(n); /* a full counter is still readable */
}

static void result_post(struct tl_cluster *c, struct command *cmd)
{
	pthread_mutex_lock(&c->lock);
	cmd->next = c->results;
	c->results = cmd;
	pthread_mutex_unlock(&c->lock);
	signal_loop(c);
}

/* Hands @view (taken) to the loop. */
static void publish(struct tl_cluster *c, struct tl_cluster_view *view)
{
	pthread_mutex_lock(&c->lock);
	view_free(c->next_view);
	c->next_view = view;
	pthread_mutex_unlock(&c->lock);
	c->model.changed = false;
	signal_loop(c);
}

static void run_commands(struct tl_cluster *c, struct tl_cluster_view *view, struct command *cmd)
{
	while (cmd) {
		struct command *next = cmd->next;
		bool swapped = false;
		cmd->err = TL_OK;
		/* A batch of commands (CreateTopics of 1,500 topics) took 8 s against a 3 s
		 * lease: renewed between them, as inside a round's partition writes. */
		lease_touch(c);
		if (!view) {
			cmd->err = TL_ERR_NOMEM;
		} else if (cmd->type == COMMAND_ISR) {
			tl_err err = partition_cas(c, cmd->topic, cmd->partition,
						   cmd->expected_revision, &cmd->state, &swapped);
			cmd->err = err != TL_OK ? TL_ERR_REQUEST_TIMED_OUT
				   : swapped    ? TL_OK
						: TL_ERR_STALE_CONTROLLER_EPOCH;
		} else if (cmd->type == COMMAND_CREATE_TOPIC) {
			topic_create(c, view, cmd);
		} else if (cmd->type == COMMAND_DELETE_TOPIC) {
			topic_delete(c, view, cmd);
		} else if (cmd->type == COMMAND_RESIGN) {
			resign(c, view);
		} else if (cmd->type == COMMAND_RESIGN_PARTITION) {
			for (int32_t t = 0; t < view->topic_count; t++)
				if (strcmp(view->topics[t].name, cmd->topic) == 0 &&
				    cmd->partition < view->topics[t].partition_count)
					resign_partition(c, view, &view->topics[t], cmd->partition);
		} else if (cmd->type == COMMAND_PID_BLOCK) {
			pid_block(c, cmd);
		} else if (cmd->type == COMMAND_ALTER_TOPIC) {
			topic_alter(c, cmd);
		} else if (cmd->type == COMMAND_ACLS) {
			text_key_change(c, cmd, &acls_store);
		} else if (cmd->type == COMMAND_SCRAM) {
			text_key_change(c, cmd, &scram_store);
		} else if (cmd->type == COMMAND_ADD_PARTITIONS) {
			topic_add_partitions(c, view, cmd);
		} else if (cmd->type == COMMAND_QUOTAS) {
			text_key_change(c, cmd, &quotas_store);
		}
		result_post(c, cmd);
		cmd = next;
	}
}

static bool thread_stopping(struct tl_cluster *c)
{
	pthread_mutex_lock(&c->lock);
	bool stopping = c->stopping && !c->commands;
	pthread_mutex_unlock(&c->lock);
	return stopping;
}

static bool is_controller_now(struct tl_cluster *c)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/controller", c->prefix);
	const struct tl_meta_kv *kv = model_get(&c->model, key);
	return kv && kv->lease == c->lease;
}

static void *thread_main(void *arg)
{
	struct tl_cluster *c = arg;
	char prefix[KEY_MAX];
	snprintf(prefix, sizeof(prefix), "%s/", c->prefix);
	bool need_list = false;
	while (!thread_stopping(c)) {
		tl_err err = TL_OK;
		if (need_list && (err = model_load(c)) == TL_OK)
			need_list = false;
		if (err == TL_OK)
			err = lease_renew(c);
		if (err == TL_OK && c->relist && (err = model_load(c)) == TL_OK) {
			c->relist = false;
			c->model.changed = true; /* published this round: the loop waits for it */
			atomic_store(&c->current_from_revision, c->model.revision);
		}
		if (err == TL_OK)
			err = campaign(c);
		/* One view of the model per round serves the commands, the controller and the
		 * loop: writes made here come back through the watch, not into the model. */
		struct command *cmds = commands_take(c);
		bool controller = err == TL_OK && is_controller_now(c);
		bool controller_due = controller && (c->model.changed || c->write_failed ||
						     tl_mono_ms() >= c->next_rebalance_ms);
		bool reclaim_due = err == TL_OK && !c->reclaimed;
		struct tl_cluster_view *view = NULL;
		if (cmds || controller_due || reclaim_due || c->model.changed)
			view = view_build(c);
		if (view) {
			c->write_failed = false;
			if (cmds)
				run_commands(c, view, cmds);
			if (reclaim_due && reclaim(c, view))
				c->reclaimed = true;
			if (controller_due)
				controller_round(c, view);
			if (c->model.changed)
				publish(c, view);
			else
				view_free(view);
		} else if (cmds) {
			run_commands(c, NULL, cmds); /* out of memory: each fails with NOMEM */
		}
		if (err != TL_OK) {
			if (!c->store_down)
				tl_warn("cluster: metadata store unreachable, serving from the last "
					"view detail=\"%s\"",
					tl_meta_last_error(c->meta));
			c->store_down = true;
			usleep(ROUND_BACKOFF_MS * 1000);
			continue;
		}
		if (c->store_down)
			tl_info("cluster: metadata store reachable again node_id=%d", c->self);
		c->store_down = false;
		int64_t next = 0;
		int32_t wait = (int32_t)TL_MIN((int64_t)WATCH_MAX_WAIT_MS, c->lease_ttl_ms / 3);
		err = tl_meta_watch(c->meta, prefix, c->model.revision + 1, wait, on_watch_event, c,
				    &next);
		if (err == TL_ERR_COMPACTED)
			need_list = true;
		else if (err != TL_OK)
			usleep(ROUND_BACKOFF_MS * 1000);
		else if (next > c->model.revision + 1)
			c->model.revision = next - 1;
	}
	return NULL;
}

/* ---- loop side ---- */

/* Waits up to @ms for SIGTERM or SIGINT on @signal_fd (blocked, read by the loop once
 * it runs): true when one came, so that a broker waiting at start can be stopped. */
static bool stop_requested(int signal_fd, int ms)
{
	struct pollfd pfd = {.fd = signal_fd, .events = POLLIN};
	if (signal_fd < 0) {
		usleep((useconds_t)ms * 1000);
		return false;
	}
	if (poll(&pfd, 1, ms) <= 0)
		return false;
	struct signalfd_siginfo si;
	if (read(signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return false;
	return si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT;
}

/* Registers brokers/<node.id> under a new lease. A registration left by this broker's
 * previous incarnation (killed, restarted within the session timeout) names this log
 * directory: its lease is revoked and the partitions it led are reclaimed (same_log).
 * One naming another log directory belongs to another broker process, live (the same
 * node.id configured twice) or not yet timed out (this broker restarted on a new or
 * wiped disk): never taken over. This broker waits, saying so, until it lapses, as a
 * KRaft broker does (a ZooKeeper one exits; waiting also lets a restart on a new disk
 * come up by itself once the old session ends), and then gives up the old log's places
 * (other_log). */
static tl_err register_broker(struct tl_cluster *c, int signal_fd, char *why, size_t why_size)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/brokers/%d", c->prefix, c->self);
	int64_t next_say_ms = 0;
	for (;;) {
		struct tl_meta_result old = {0};
		tl_err err = tl_meta_get(c->meta, key, &old);
		if (err != TL_OK && err != TL_ERR_NOT_FOUND)
			goto out_store;
		int64_t old_lease = old.count == 1 ? old.kvs[0].lease : 0;
		bool present = old.count == 1;
		char old_dir[TL_DIRECTORY_ID_LEN + 1] = "";
		if (present)
			registration_dir(old.kvs[0].value, old.kvs[0].value_len, old_dir,
					 sizeof(old_dir));
		tl_meta_result_deinit(&old);
		bool same = present && old_lease != 0 && strcmp(old_dir, c->directory_id) == 0;
		if (present && old_lease != 0 && !same) {
			c->other_log = true;
			if (tl_mono_ms() >= next_say_ms) {
				tl_warn("cluster: node.id %d is registered by another broker process "
					"(log directory.id=%s, ours %s): not taking it over, waiting "
					"for its session to end",
					c->self, old_dir[0] ? old_dir : "none", c->directory_id);
				next_say_ms = tl_mono_ms() + 10000;
			}
			if (stop_requested(signal_fd, 500)) {
				snprintf(
					why, why_size,
					"stopped while node.id %d was registered by another broker",
					c->self);
				return TL_ERR_EXISTS;
			}
			continue;
		}
		if (same) {
			tl_warn("cluster: revoking the lease of this log directory's previous "
				"registration node_id=%d directory_id=%s",
				c->self, c->directory_id);
			tl_meta_lease_revoke(c->meta, old_lease);
		}
		int64_t granted_ms = tl_mono_ms();
		err = tl_meta_lease_grant(c->meta, (c->lease_ttl_ms + 999) / 1000, &c->lease);
		if (err != TL_OK)
			goto out_store;
		bool swapped = false;
		err = tl_meta_cas(c->meta, key, c->registration, strlen(c->registration), 0,
				  c->lease, &swapped, NULL, NULL);
		if (err != TL_OK)
			goto out_store;
		if (swapped) {
			c->same_log = same;
			c->last_keepalive_ms = granted_ms;
			atomic_store(&c->lease_until_ms, granted_ms + c->lease_ttl_ms);
			return TL_OK;
		}
		tl_meta_lease_revoke(c->meta, c->lease);
		if (present && old_lease == 0) {
			snprintf(why, why_size, "node.id %d has a registration with no lease",
				 c->self);
			return TL_ERR_EXISTS;
		}
		/* Another process registered between the read and the write: look again. */
	}
out_store:
	snprintf(why, why_size, "cannot register with the metadata store: %s",
		 tl_meta_last_error(c->meta));
	return TL_ERR_IO;
}

/* This broker came back with a log other than the one its node.id last served (other_log:
 * a new or wiped disk, or the same node.id on another host): the ISR places and the
 * leaderships of that node.id were earned by a log that is gone. Leave every ISR, and
 * hand each leadership to another ISR member, or, none alive, leave the partition
 * offline for them; where this broker was the whole ISR the ISR becomes empty and the
 * partition offline (or led uncleanly, where the operator allows it).
 * Done before the loop serves a view, so that this log never leads nor counts for
 * acks=all until it caught up and the leader takes it back into the ISR. False when a
 * write failed or lost a race: the caller reads the state again and retries. */
static bool disown(struct tl_cluster *c, struct tl_cluster_view *view)
{
	bool done = true;
	for (int32_t t = 0; t < view->topic_count; t++) {
		struct tl_cluster_topic *topic = &view->topics[t];
		for (int32_t i = 0; i < topic->partition_count; i++) {
			struct tl_cluster_partition *cp = &topic->partitions[i];
			if (!cp->has_state || (cp->state.leader != c->self &&
					       !tl_repl_isr_contains(&cp->state, c->self)))
				continue;
			struct tl_repl_state next = cp->state;
			next.isr_count = 0;
			for (int32_t j = 0; j < cp->state.isr_count; j++)
				if (cp->state.isr[j] != c->self)
					next.isr[next.isr_count++] = cp->state.isr[j];
			if (next.isr_count == 0 && cp->replica_count == 1) {
				/* Its only replica: no other log can hold the records, so an
				 * offline partition would protect nothing and never come back
				 * (the controller would elect it again anyway). It leads on. */
				continue;
			}
			/* Where this node was the only in-sync replica, what it acknowledged
			 * alone is gone with its log and no other replica is known to hold the
			 * rest: leading with this log would truncate every follower to nothing.
			 * The election then finds no ISR member and the partition goes offline
			 * with an empty ISR (Kafka's KIP-966 keeps such a replica out too),
			 * unless unclean.leader.election.enable lets an out-of-sync replica
			 * lead with what it has. */
			bool sole = next.isr_count == 0;
			if (sole || cp->state.leader == c->self) {
				struct tl_repl_state without = next;
				int32_t leader = tl_repl_elect(cp->replicas, cp->replica_count,
							       &without, broker_alive, view,
							       c->self, sole && c->unclean);
				tl_repl_state_after_election(&without, leader, broker_alive, view,
							     c->self, &next);
				if (sole)
					tl_warn("cluster: this log directory replaces the only "
						"in-sync replica's log: %s topic=%s partition=%d "
						"leader=%d",
						leader >= 0 ? "unclean election"
							    : "the partition stays offline (set "
							      "unclean.leader.election.enable=true "
							      "to elect an out-of-sync replica)",
						topic->name, i, leader);
			}
			tl_info("cluster: leaving the ISR, this log is not the one it was earned "
				"by topic=%s partition=%d",
				topic->name, i);
			if (!partition_cas_swapped(c, topic->name, i, cp->revision, &next))
				done = false;
		}
	}
	return done;
}

/* Sets other_log when brokers-dirs/<node.id>, the directory.id this node.id last
 * registered with, names another directory (a registration that already lapsed tells
 * register_broker nothing); gives the places up (disown) and records this directory. */
static tl_err own_directory(struct tl_cluster *c)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/broker-dirs/%d", c->prefix, c->self);
	const struct tl_meta_kv *kv = model_get(&c->model, key);
	size_t len = strlen(c->directory_id);
	bool recorded = kv && kv->value_len == len && memcmp(kv->value, c->directory_id, len) == 0;
	if (kv && !recorded)
		c->other_log = true;
	if (c->other_log) {
		tl_warn("cluster: this log directory is not the one node.id %d served before, "
			"rejoining as a new replica directory_id=%s",
			c->self, c->directory_id);
		c->same_log = false;
		for (int attempt = 0;; attempt++) {
			struct tl_cluster_view *view = view_build(c);
			if (!view)
				return TL_ERR_NOMEM;
			bool done = disown(c, view);
			view_free(view);
			tl_err err = model_load(c);
			if (err != TL_OK)
				return err;
			if (done)
				break;
			if (attempt == 20)
				return TL_ERR_IO;
			usleep(ROUND_BACKOFF_MS * 1000);
		}
	}
	if (recorded)
		return TL_OK;
	tl_err err = tl_meta_put(c->meta, key, c->directory_id, len, 0, NULL);
	return err == TL_OK ? model_load(c) : err;
}

static tl_err cluster_id_agree(struct tl_cluster *c, char *cluster_id, size_t size)
{
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s/cluster_id", c->prefix);
	bool swapped;
	struct tl_meta_kv current = {0};
	tl_err err = tl_meta_cas(c->meta, key, cluster_id, strlen(cluster_id), 0, 0, &swapped, NULL,
				 &current);
	if (err != TL_OK)
		return err;
	if (!swapped && current.key)
		snprintf(cluster_id, size, "%.*s", (int)TL_MIN(current.value_len, size - 1),
			 (const char *)current.value);
	tl_meta_kv_deinit(&current);
	return TL_OK;
}

/* The cluster's unknown-user secret (sasl.c): the first broker's, kept in the store, so
 * that an unknown user's made-up salt is the same on every broker and after restarts,
 * as a real user's is. */
static tl_err sasl_mock_secret_agree(struct tl_cluster *c, struct tl_broker *broker)
{
	char key[KEY_MAX], text[TL_SASL_MOCK_SECRET_TEXT];
	snprintf(key, sizeof(key), "%s/sasl_mock_secret", c->prefix);
	tl_sasl_mock_secret_format(broker->sasl_mock_secret, text);
	bool swapped;
	struct tl_meta_kv current = {0};
	tl_err err = tl_meta_cas(c->meta, key, text, strlen(text), 0, 0, &swapped, NULL, &current);
	tl_scram_wipe(text, sizeof(text));
	if (err == TL_OK && !swapped && current.key &&
	    !tl_sasl_mock_secret_parse((const char *)current.value, current.value_len,
				       broker->sasl_mock_secret))
		tl_warn("cluster: unreadable unknown-user secret in the store, this broker keeps "
			"its own key=%s",
			key);
	tl_meta_kv_deinit(&current);
	return err;
}

static void cluster_free(struct tl_cluster *c)
{
	if (c->event_fd != -1)
		close(c->event_fd);
	if (c->dir_lock_fd != -1)
		close(c->dir_lock_fd);
	tl_meta_close(c->meta);
	model_clear(&c->model);
	free(c->model.kvs);
	view_free(c->view);
	view_free(c->next_view);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool topic_led(const struct tl_cluster_view *view, const char *name, int32_t partitions)
{
	for (int32_t t = 0; view && t < view->topic_count; t++) {
		const struct tl_cluster_topic *topic = &view->topics[t];
		if (strcmp(topic->name, name) != 0)
			continue;
		if (topic->partition_count < partitions)
			return false;
		for (int32_t i = 0; i < topic->partition_count; i++)
			if (!topic->partitions[i].has_state ||
			    topic->partitions[i].state.leader < 0)
				return false;
		return true;
	}
	return false;
}

/* Completes the awaits whose topic has its leaders, or whose time is up. */
static void awaits_check(struct tl_cluster *c, int64_t now_ms)
{
	struct await_topic **pp = &c->awaits;
	while (*pp) {
		struct await_topic *a = *pp;
		if (!topic_led(c->view, a->topic, a->partitions) && now_ms < a->deadline_ms) {
			pp = &a->next;
			continue;
		}
		*pp = a->next;
		a->done(a->ctx, TL_OK, "");
		free(a);
	}
}

void tl_cluster_await_topic(struct tl_broker *broker, const char *topic, int64_t max_wait_ms,
			    tl_cluster_done_fn done, void *ctx)
{
	tl_cluster_await_partitions(broker, topic, 1, max_wait_ms, done, ctx);
}

void tl_cluster_await_partitions(struct tl_broker *broker, const char *topic, int32_t partitions,
				 int64_t max_wait_ms, tl_cluster_done_fn done, void *ctx)
{
	struct tl_cluster *c = broker->cluster;
	struct await_topic *a = calloc(1, sizeof(*a));
	if (!a) {
		done(ctx, TL_OK, "");
		return;
	}
	snprintf(a->topic, sizeof(a->topic), "%s", topic);
	a->partitions = partitions;
	a->deadline_ms = tl_mono_ms() + max_wait_ms;
	a->done = done;
	a->ctx = ctx;
	a->next = c->awaits;
	c->awaits = a;
	awaits_check(c, tl_mono_ms());
}

void tl_cluster_awaits_tick(struct tl_broker *broker, int64_t now_ms)
{
	if (broker->cluster && broker->cluster->awaits)
		awaits_check(broker->cluster, now_ms);
}

/* Takes the newest published view and the finished commands, applies the view. */
void tl_cluster_on_event(struct tl_broker *broker)
{
	struct tl_cluster *c = broker->cluster;
	uint64_t count;
	ssize_t n = read(c->event_fd, &count, sizeof(count));
	TL_UNUSED(n);
	pthread_mutex_lock(&c->lock);
	struct tl_cluster_view *view = c->next_view;
	c->next_view = NULL;
	struct command *results = c->results;
	c->results = NULL;
	pthread_mutex_unlock(&c->lock);
	if (view && (!c->view || view->revision >= c->view->revision)) {
		struct tl_cluster_view *old = c->view;
		c->view = view;
		tl_replica_apply(broker, view);
		tl_acl_apply_view(broker, view->acls);
		tl_sasl_apply_view(broker, view->scram);
		tl_quota_apply_view(broker, view->quotas);
		view_free(old);
		if (c->awaits)
			awaits_check(c, tl_mono_ms());
	} else {
		view_free(view);
	}
	while (results) {
		struct command *next = results->next;
		if (results->type == COMMAND_RESIGN)
			c->resign_done = true;
		if (results->block_done)
			results->block_done(results->ctx, results->err, results->block_start);
		else if (results->done)
			results->done(results->ctx, results->err, results->message);
		if (results->type == COMMAND_SCRAM && results->configs)
			tl_scram_wipe(results->configs, strlen(results->configs));
		free(results->configs);
		free(results->deletes);
		free(results);
		results = next;
	}
}

static void command_post(struct tl_cluster *c, struct command *cmd)
{
	pthread_mutex_lock(&c->lock);
	if (c->commands_tail)
		c->commands_tail->next = cmd;
	else
		c->commands = cmd;
	c->commands_tail = cmd;
	pthread_mutex_unlock(&c->lock);
	tl_meta_wake(c->meta);
}

tl_err tl_cluster_start(struct tl_broker *broker)
{
	const struct tl_config *config = &broker->config;
	struct tl_cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return TL_ERR_NOMEM;
	c->event_fd = -1;
	c->dir_lock_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	c->broker = broker;
	c->self = config->node_id;
	snprintf(c->prefix, sizeof(c->prefix), "%s", config->metadata_etcd_prefix);
	c->lease_ttl_ms = config->broker_session_timeout_ms;
	c->unclean = config->unclean_leader_election_enable;
	c->rebalance = config->auto_leader_rebalance_enable;
	c->rebalance_interval_ms = config->leader_imbalance_check_interval_ms;
	c->next_rebalance_ms = tl_mono_ms() + c->rebalance_interval_ms;
	int reg = snprintf(c->registration, sizeof(c->registration), "host=%s port=%d%s%s",
			   broker->advertised_host, broker->advertised_port,
			   config->broker_rack[0] ? " rack=" : "", config->broker_rack);
	_Static_assert(TL_CLUSTER_ENDPOINTS_MAX == TL_CONFIG_LISTENERS_MAX, "one endpoint each");
	for (int32_t i = 0; i < broker->listener_count; i++) {
		const struct tl_broker_listener *l = &broker->listeners[i];
		TL_ASSERT(reg > 0 && (size_t)reg < sizeof(c->registration));
		reg += snprintf(c->registration + reg, sizeof(c->registration) - (size_t)reg,
				" listener.%s=%s:%d", l->config->name, l->advertised_host,
				l->advertised_port);
	}
	snprintf(c->directory_id, sizeof(c->directory_id), "%s", broker->directory_id);
	TL_ASSERT((size_t)reg < sizeof(c->registration));
	reg += snprintf(c->registration + reg, sizeof(c->registration) - (size_t)reg, " dir=%s",
			c->directory_id);
	TL_ASSERT((size_t)reg < sizeof(c->registration));
	/* One process per log directory: two on one log would both take it for theirs. */
	c->dir_lock_fd = open(broker->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dir_lock_fd == -1 || flock(c->dir_lock_fd, LOCK_EX | LOCK_NB) != 0) {
		tl_crit("cluster: log.dirs is in use by another broker process dir=%s err=%s",
			broker->data_dir, strerrorname_np(errno));
		cluster_free(c);
		return TL_ERR_EXISTS;
	}
	char why[1024];
	tl_err err = tl_meta_open(config->metadata_etcd_endpoints, config->metadata_etcd_timeout_ms,
				  &c->meta, why, sizeof(why));
	if (err != TL_OK) {
		tl_crit("cluster: cannot reach the metadata store endpoints=%s detail=\"%s\"",
			config->metadata_etcd_endpoints, why);
		goto out_free;
	}
	if ((err = register_broker(c, broker->signal_fd, why, sizeof(why))) != TL_OK) {
		tl_crit("cluster: %s endpoints=%s", why, config->metadata_etcd_endpoints);
		goto out_free;
	}
	if ((err = cluster_id_agree(c, broker->config.cluster_id,
				    sizeof(broker->config.cluster_id))) != TL_OK ||
	    (err = sasl_mock_secret_agree(c, broker)) != TL_OK || (err = model_load(c)) != TL_OK ||
	    (err = own_directory(c)) != TL_OK) {
		tl_crit("cluster: cannot read the cluster metadata endpoints=%s detail=\"%s\"",
			config->metadata_etcd_endpoints, tl_meta_last_error(c->meta));
		goto out_free;
	}
	c->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->event_fd == -1) {
		err = TL_ERR_IO;
		goto out_free;
	}
	broker->cluster = c;
	c->view = view_build(c);
	if (!c->view) {
		err = TL_ERR_NOMEM;
		goto out_unset;
	}
	c->model.changed = false;
	c->reclaimed = !c->same_log;
	tl_replica_apply(broker, c->view);
	tl_acl_apply_view(broker, c->view->acls);
	tl_sasl_apply_view(broker, c->view->scram);
	tl_quota_apply_view(broker, c->view->quotas);
	if (pthread_create(&c->thread, NULL, thread_main, c) != 0) {
		err = TL_ERR_IO;
		goto out_unset;
	}
	c->thread_started = true;
	tl_info("cluster: registered node_id=%d cluster_id=%s endpoints=%s lease_ttl_ms=%" PRId64,
		c->self, broker->config.cluster_id, config->metadata_etcd_endpoints,
		c->lease_ttl_ms);
	return TL_OK;
out_unset:
	broker->cluster = NULL;
out_free:
	cluster_free(c);
	return err;
}

/* Partitions this broker leads that another live ISR member could take over. */
static int32_t leads_movable(const struct tl_cluster_view *view, int32_t self)
{
	int32_t count = 0;
	for (int32_t t = 0; view && t < view->topic_count; t++) {
		const struct tl_cluster_topic *topic = &view->topics[t];
		for (int32_t i = 0; i < topic->partition_count; i++) {
			const struct tl_cluster_partition *cp = &topic->partitions[i];
			if (!cp->has_state || cp->state.leader != self)
				continue;
			for (int32_t j = 0; j < cp->state.isr_count; j++)
				if (cp->state.isr[j] != self &&
				    tl_cluster_find_broker(view, cp->state.isr[j])) {
					count++;
					break;
				}
		}
	}
	return count;
}

void tl_cluster_stop(struct tl_broker *broker)
{
	struct tl_cluster *c = broker->cluster;
	if (!c)
		return;
	c->shutting_down = true;
	if (broker->config.controlled_shutdown_enable) {
		tl_info("cluster: controlled shutdown, moving leadership away node_id=%d "
			"partitions=%d",
			c->self, leads_movable(c->view, c->self));
		int64_t deadline = tl_mono_ms() + broker->config.controlled_shutdown_max_ms;
		struct command *cmd = calloc(1, sizeof(*cmd));
		if (cmd) {
			cmd->type = COMMAND_RESIGN;
			command_post(c, cmd);
		}
		/* Keep serving while leadership moves: followers finish their fetches, and
		 * clients learn the new leaders from a retriable NOT_LEADER_OR_FOLLOWER. */
		while (tl_mono_ms() < deadline &&
		       (!c->resign_done || leads_movable(c->view, c->self) > 0))
			if (tl_broker_poll(broker, 100) != TL_OK)
				break;
		if (leads_movable(c->view, c->self) > 0)
			tl_warn("cluster: controlled shutdown incomplete after "
				"controlled.shutdown.max.ms node_id=%d partitions=%d",
				c->self, leads_movable(c->view, c->self));
	}
	awaits_check(c, INT64_MAX);
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_mutex_unlock(&c->lock);
	tl_meta_wake(c->meta);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	tl_meta_lease_revoke(c->meta, c->lease);
	tl_info("cluster: deregistered node_id=%d", c->self);
	broker->cluster = NULL;
	cluster_free(c);
}

int tl_cluster_fd(const struct tl_cluster *cluster)
{
	return cluster->event_fd;
}

const struct tl_cluster_view *tl_cluster_view(const struct tl_cluster *cluster)
{
	return cluster ? cluster->view : NULL;
}

tl_err tl_cluster_create_topic(struct tl_broker *broker, struct tl_str name, int32_t partitions,
			       int16_t replication_factor, const char *configs,
			       tl_cluster_done_fn done, void *ctx)
{
	if (!broker->cluster)
		return TL_ERR_BROKER_NOT_AVAILABLE; /* after tl_cluster_stop: shutting down */
	struct command *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return TL_ERR_NOMEM;
	cmd->type = COMMAND_CREATE_TOPIC;
	snprintf(cmd->topic, sizeof(cmd->topic), "%.*s", name.len, name.ptr);
	cmd->partitions = partitions;
	cmd->replication_factor = replication_factor;
	cmd->configs = strdup(configs ? configs : "");
	cmd->done = done;
	cmd->ctx = ctx;
	if (!cmd->configs) {
		free(cmd);
		return TL_ERR_NOMEM;
	}
	command_post(broker->cluster, cmd);
	return TL_OK;
}

/* Posts a command carrying two texts (sets and deletes), and @topic unless NULL, to the
 * metadata thread. */
static tl_err post_texts(struct tl_broker *broker, enum command_type type, const char *topic,
			 const char *sets, const char *deletes, bool replace,
			 tl_cluster_done_fn done, void *ctx)
{
	if (!broker->cluster)
		return TL_ERR_BROKER_NOT_AVAILABLE; /* after tl_cluster_stop: shutting down */
	struct command *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return TL_ERR_NOMEM;
	cmd->type = type;
	if (topic)
		snprintf(cmd->topic, sizeof(cmd->topic), "%s", topic);
	cmd->configs = strdup(sets);
	cmd->deletes = strdup(deletes);
	cmd->replace = replace;
	cmd->done = done;
	cmd->ctx = ctx;
	if (!cmd->configs || !cmd->deletes) {
		free(cmd->configs);
		free(cmd->deletes);
		free(cmd);
		return TL_ERR_NOMEM;
	}
	command_post(broker->cluster, cmd);
	return TL_OK;
}

tl_err tl_cluster_alter_topic(struct tl_broker *broker, const char *topic, bool replace,
			      const char *sets, const char *deletes, tl_cluster_done_fn done,
			      void *ctx)
{
	return post_texts(broker, COMMAND_ALTER_TOPIC, topic, sets, deletes, replace, done, ctx);
}

tl_err tl_cluster_change_acls(struct tl_broker *broker, const char *adds, const char *removes,
			      tl_cluster_done_fn done, void *ctx)
{
	return post_texts(broker, COMMAND_ACLS, NULL, adds, removes, false, done, ctx);
}

tl_err tl_cluster_change_scram(struct tl_broker *broker, const char *upserts, const char *deletes,
			       bool replace, tl_cluster_done_fn done, void *ctx)
{
	return post_texts(broker, COMMAND_SCRAM, NULL, upserts, deletes, replace, done, ctx);
}

tl_err tl_cluster_add_partitions(struct tl_broker *broker, const char *topic, int32_t count,
				 const char *assignments, tl_cluster_done_fn done, void *ctx)
{
	if (!broker->cluster)
		return TL_ERR_BROKER_NOT_AVAILABLE; /* after tl_cluster_stop: shutting down */
	struct command *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return TL_ERR_NOMEM;
	cmd->type = COMMAND_ADD_PARTITIONS;
	snprintf(cmd->topic, sizeof(cmd->topic), "%s", topic);
	cmd->partitions = count;
	cmd->configs = strdup(assignments);
	cmd->done = done;
	cmd->ctx = ctx;
	if (!cmd->configs) {
		free(cmd);
		return TL_ERR_NOMEM;
	}
	command_post(broker->cluster, cmd);
	return TL_OK;
}

tl_err tl_cluster_change_quotas(struct tl_broker *broker, const char *sets, const char *removes,
				tl_cluster_done_fn done, void *ctx)
{
	return post_texts(broker, COMMAND_QUOTAS, NULL, sets, removes, false, done, ctx);
}

tl_err tl_cluster_delete_topic(struct tl_broker *broker, struct tl_str name,
			       tl_cluster_done_fn done, void *ctx)
{
	if (!broker->cluster)
		return TL_ERR_BROKER_NOT_AVAILABLE; /* after tl_cluster_stop: shutting down */
	struct command *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return TL_ERR_NOMEM;
	cmd->type = COMMAND_DELETE_TOPIC;
	snprintf(cmd->topic, sizeof(cmd->topic), "%.*s", name.len, name.ptr);
	cmd->done = done;
	cmd->ctx = ctx;
	command_post(broker->cluster, cmd);
	return TL_OK;
}

tl_err tl_cluster_allocate_pid_block(struct tl_broker *broker, int64_t size,
				     tl_cluster_block_fn done, void *ctx)
{
	if (!broker->cluster)
		return TL_ERR_BROKER_NOT_AVAILABLE; /* after tl_cluster_stop: shutting down */
	struct command *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return TL_ERR_NOMEM;
	cmd->type = COMMAND_PID_BLOCK;
	cmd->block_size = size;
	cmd->block_done = done;
	cmd->ctx = ctx;
	command_post(broker->cluster, cmd);
	return TL_OK;
}

/* Called by replica.c: a leader asks for a new ISR (CAS on @revision). */
void tl_cluster_post_isr(struct tl_broker *broker, const char *topic, int32_t partition,
			 int64_t revision, const struct tl_repl_state *state)
{
	/* After tl_cluster_stop (the rest of a shutdown: a follower's connection closes and
	 * the leader's ISR check runs) there is no one to ask: the state stays as it is. */
	if (!broker->cluster)
		return;
	struct command *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return; /* the next tick asks again */
	cmd->type = COMMAND_ISR;
	snprintf(cmd->topic, sizeof(cmd->topic), "%s", topic);
	cmd->partition = partition;
	cmd->expected_revision = revision;
	cmd->state = *state;
	command_post(broker->cluster, cmd);
}

/* Called by replica.c: this broker's log of the partition failed (a write or sync error,
 * e.g. ENOSPC): its leadership moves to another ISR member, or it leaves the ISR. */
void tl_cluster_post_resign_partition(struct tl_broker *broker, const char *topic,
				      int32_t partition)
{
	if (!broker->cluster)
		return;
	struct command *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return; /* the next tick asks again */
	cmd->type = COMMAND_RESIGN_PARTITION;
	snprintf(cmd->topic, sizeof(cmd->topic), "%s", topic);
	cmd->partition = partition;
	command_post(broker->cluster, cmd);
}

bool tl_cluster_is_shutting_down(const struct tl_cluster *cluster)
{
	return cluster && cluster->shutting_down;
}

bool tl_cluster_leaderships_current(const struct tl_cluster *c, int64_t now_ms)
{
	if (!c)
		return true;
	if (now_ms >= atomic_load(&c->lease_until_ms))
		return false;
	return c->view && c->view->revision >= atomic_load(&c->current_from_revision);
}
