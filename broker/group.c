/* group.c - consumer group coordinator: membership state machine and committed offsets.
 *
 * States (Kafka's names):
 *   Empty               no members; committed offsets may exist
 *   PreparingRebalance  waiting for every known member to (re)join, until the rebalance
 *                       timeout; JoinGroup requests park here
 *   CompletingRebalance generation chosen, joins answered; waiting for the leader's
 *                       SyncGroup with the assignment; SyncGroup requests park here
 *   Stable              assignment handed out; heartbeats keep members alive
 *   Dead                removed from the registry (deleted, or its offsets expired);
 *                       lingers only while writes of it are in flight
 * Transitions: Empty/Stable/CompletingRebalance -> PreparingRebalance on a new member,
 * a changed member, the leader rejoining, a leave or a session expiry;
 * PreparingRebalance -> CompletingRebalance when all have joined (or the rebalance
 * timeout removed the stragglers), -> Empty if nobody is left; CompletingRebalance ->
 * Stable on the leader's sync; Empty -> Dead on DeleteGroups or offset expiry.
 *
 * Durability (group_store.c has the record format): committed offsets, offset
 * deletions and group deletions are appended to __consumer_offsets and answered only
 * once durable; committed offsets enter memory only then, in log order, so memory never
 * holds an offset a crash could take back, and replaying the log rebuilds exactly the
 * state clients were told about. Group membership (a GroupMetadata record on every
 * move to Stable or Empty) is written without waiting: losing it only makes members
 * rejoin. On start-up the log is replayed: a group with stored members comes back
 * Stable, and each member must heartbeat within its session timeout.
 *
 * Invariants:
 * (1) A member has at most one parked JoinGroup and one parked SyncGroup; a parked
 *     request's on_abandon unlinks it if its connection closes.
 * (2) Only PreparingRebalance has parked joins; only CompletingRebalance parked syncs.
 * (3) generation_id increases by one per completed rebalance.
 * (4) g->refs counts the registry (while not Dead) plus every store write of the group
 *     in flight; the group is freed when it drops to 0.
 * Offsets are kept per group in a hash keyed by (topic, partition). */
#include "broker/group.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/broker.h"
#include "broker/group_store.h"
#include "broker/txn.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

#define GROUP_BUCKETS           256
#define OFFSET_BUCKETS          64
#define PENDING_MAX             1024
#define TICK_INTERVAL_MS        100
#define CONSUMER_PROTOCOL       "consumer"
/* Scratch arena for decoding subscriptions outside a request (offset expiry). */
#define SCRATCH_ARENA_BYTES_MAX (16u << 20)

enum group_state {
	GROUP_EMPTY,
	GROUP_PREPARING_REBALANCE,
	GROUP_COMPLETING_REBALANCE,
	GROUP_STABLE,
	GROUP_DEAD,
};

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
					  "Stable", "Dead"};

/* A string the coordinator owns (malloc'd, NUL-terminated for diagnostics). */
struct ostr {
	char *ptr;
	int32_t len; /* -1 = null */
};

struct protocol {
	struct ostr name;
	uint8_t *metadata;
	int32_t metadata_len;
};

struct member {
	struct ostr id;
	struct ostr instance_id; /* group.instance.id (static membership), or null */
	struct ostr client_id;
	struct ostr client_host;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;
	struct protocol *protocols;
	int32_t protocol_count;
	uint8_t *assignment;
	int32_t assignment_len;
	struct tl_request *join; /* parked JoinGroup */
	struct tl_request *sync; /* parked SyncGroup */
	int64_t expires_ms;      /* session deadline (monotonic) */
	struct member *next;
};

struct pending_member {
	struct ostr id;
	int64_t expires_ms;
	struct pending_member *next;
};

struct offset_entry {
	struct ostr topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	struct ostr metadata;
	int64_t commit_ms; /* wall clock */
	/* Where its record stands in the offsets log, as an order (tl_groups.append_seq):
	 * a transaction's offset replaces a committed one only if appended after it. */
	uint64_t seq;
	struct offset_entry *next;
};

/* Offsets committed inside a producer's transaction (TxnOffsetCommit): durable, but
 * not visible until the transaction commits (dropped if it aborts). */
struct txn_offsets {
	int64_t producer_id;
	struct offset_entry *entries; /* a list, newest first; the last per partition wins */
	struct txn_offsets *next;
};

struct group {
	struct ostr id;
	enum group_state state;
	int64_t state_ms; /* wall clock of the last state change; -1 = unknown (replayed) */
	int32_t generation_id;
	struct ostr protocol_type;
	struct ostr protocol_name;
	struct ostr leader_id;
	struct member *members;
	int32_t member_count;
	struct pending_member *pending;
	int64_t rebalance_deadline_ms; /* Preparing/CompletingRebalance: join or sync by then */
	struct offset_entry *offsets[OFFSET_BUCKETS];
	int32_t offset_count;
	struct txn_offsets *txn_offsets;
	bool delayed_join; /* this rebalance started Empty: waits out the initial delay */
	int32_t refs;      /* see (4) */
	struct group *next;
};

struct tl_groups {
	struct tl_broker *broker;
	struct tl_group_store *store;
	struct group *buckets[GROUP_BUCKETS];
	int32_t count;
	int64_t next_tick_ms;
	int64_t next_expiry_ms;  /* monotonic: next offsets.retention check */
	int64_t paused_since_ms; /* 0, or when leaderships stopped being current (see tick) */
	uint64_t append_seq;     /* counts offset records in log order: written or replayed */
};

/* ---- small helpers ---- */

static struct ostr ostr_dup(struct tl_str s)
{
	struct ostr o = {NULL, -1};
	if (s.len < 0)
		return o;
	o.ptr = malloc((size_t)s.len + 1);
	TL_ASSERT(o.ptr); /* coordinator metadata is small; OOM here is fatal */
	if (s.len)
		memcpy(o.ptr, s.ptr, (size_t)s.len);
	o.ptr[s.len] = '\0';
	o.len = s.len;
	return o;
}

static struct tl_str ostr_view(struct ostr o)
{
	struct tl_str s = {o.ptr, o.len};
	return s;
}

static void ostr_free(struct ostr *o)
{
	free(o->ptr);
	o->ptr = NULL;
	o->len = -1;
}

static void ostr_set(struct ostr *o, struct tl_str s)
{
	ostr_free(o);
	*o = ostr_dup(s);
}

static bool ostr_eq(struct ostr o, struct tl_str s)
{
	return tl_str_eq(ostr_view(o), s);
}

static uint8_t *bytes_dup(struct tl_bytes b, int32_t *len_out)
{
	int32_t len = TL_MAX(b.len, 0);
	uint8_t *p = malloc((size_t)TL_MAX(len, 1));
	TL_ASSERT(p);
	if (len)
		memcpy(p, b.ptr, (size_t)len);
	*len_out = len;
	return p;
}

static uint32_t hash_bytes(const char *p, int32_t len, uint32_t h)
{
	for (int32_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

/* The offsets partition of @id; -1 while there is no offsets topic (cluster mode). */
static int32_t group_partition(const struct tl_groups *groups, struct tl_str id)
{
	int32_t count = tl_group_store_partition_count(groups->store);
	return count > 0 ? tl_group_store_partition_of(id, count) : -1;
}

static uint32_t group_bucket(struct tl_str id)
{
	return hash_bytes(id.ptr, id.len, 2166136261u) % GROUP_BUCKETS;
}

static struct ostr member_id_new(struct tl_str client_id)
{
	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	char text[300];
	int n = snprintf(text, sizeof(text), "%.*s-", TL_MIN(client_id.len, 200),
			 client_id.len > 0 ? client_id.ptr : "");
	for (size_t i = 0; i < sizeof(rnd); i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "%02x", rnd[i]);
	return ostr_dup(tl_str_of(text));
}

static void group_set_state(struct group *g, enum group_state state)
{
	g->state = state;
	g->state_ms = tl_wall_ms();
}

/* ---- registry ---- */

static struct group *group_find(struct tl_groups *groups, struct tl_str id)
{
	struct group *g = groups->buckets[group_bucket(id)];
	for (; g; g = g->next)
		if (ostr_eq(g->id, id))
			return g;
	return NULL;
}

static struct group *group_create(struct tl_groups *groups, struct tl_str id)
{
	struct group *g = calloc(1, sizeof(*g));
	TL_ASSERT(g);
	g->id = ostr_dup(id);
	group_set_state(g, GROUP_EMPTY);
	g->protocol_type.len = g->protocol_name.len = g->leader_id.len = -1;
	g->refs = 1;
	uint32_t b = group_bucket(id);
	g->next = groups->buckets[b];
	groups->buckets[b] = g;
	groups->count++;
	return g;
}

static void offsets_clear(struct group *g)
{
	for (int b = 0; b < OFFSET_BUCKETS; b++) {
		struct offset_entry *e = g->offsets[b];
		while (e) {
			struct offset_entry *next = e->next;
			ostr_free(&e->topic);
			ostr_free(&e->metadata);
			free(e);
			e = next;
		}
		g->offsets[b] = NULL;
	}
	g->offset_count = 0;
}

static void offset_store(struct group *g, struct tl_str topic, int32_t partition, int64_t offset,
			 int32_t leader_epoch, struct tl_str metadata, int64_t commit_ms,
			 uint64_t seq);
static struct offset_entry **offset_slot(struct group *g, struct tl_str topic, int32_t partition);

static void offset_entry_free(struct offset_entry *e)
{
	ostr_free(&e->topic);
	ostr_free(&e->metadata);
	free(e);
}

/* Ends @producer_id's transaction for @g: with @commit its offsets become committed
 * offsets, oldest first, else they are dropped. As Kafka, a committed offset whose
 * record was appended after the transaction's stays (a plain OffsetCommit made while the
 * transaction was open is newer). */
static void txn_offsets_end(struct group *g, int64_t producer_id, bool commit)
{
	struct txn_offsets **pp = &g->txn_offsets;
	while (*pp && (*pp)->producer_id != producer_id)
		pp = &(*pp)->next;
	struct txn_offsets *t = *pp;
	if (!t)
		return;
	*pp = t->next;
	/* Reverse the newest-first list, so the newest offset per partition wins. */
	struct offset_entry *oldest = NULL;
	while (t->entries) {
		struct offset_entry *e = t->entries;
		t->entries = e->next;
		e->next = oldest;
		oldest = e;
	}
	while (oldest) {
		struct offset_entry *e = oldest;
		oldest = e->next;
		const struct offset_entry *cur = *offset_slot(g, ostr_view(e->topic), e->partition);
		if (commit && g->state != GROUP_DEAD && (!cur || cur->seq < e->seq))
			offset_store(g, ostr_view(e->topic), e->partition, e->offset,
				     e->leader_epoch, ostr_view(e->metadata), e->commit_ms, e->seq);
		offset_entry_free(e);
	}
	free(t);
}

static void txn_offsets_add(struct group *g, int64_t producer_id, struct tl_str topic,
			    int32_t partition, int64_t offset, int32_t leader_epoch,
			    struct tl_str metadata, int64_t commit_ms, uint64_t seq)
{
	struct txn_offsets *t = g->txn_offsets;
	while (t && t->producer_id != producer_id)
		t = t->next;
	if (!t) {
		t = calloc(1, sizeof(*t));
		TL_ASSERT(t);
		t->producer_id = producer_id;
		t->next = g->txn_offsets;
		g->txn_offsets = t;
	}
	struct offset_entry *e = calloc(1, sizeof(*e));
	TL_ASSERT(e);
	e->topic = ostr_dup(topic);
	e->partition = partition;
	e->offset = offset;
	e->leader_epoch = leader_epoch;
	e->metadata = ostr_dup(metadata.len >= 0 ? metadata : tl_str_of(""));
	e->commit_ms = commit_ms;
	e->seq = seq;
	e->next = t->entries;
	t->entries = e;
}

static void txn_offsets_clear(struct group *g)
{
	while (g->txn_offsets)
		txn_offsets_end(g, g->txn_offsets->producer_id, false);
}

static void member_free(struct member *m)
{
	TL_ASSERT(!m->join);
	TL_ASSERT(!m->sync);
	for (int32_t i = 0; i < m->protocol_count; i++) {
		ostr_free(&m->protocols[i].name);
		free(m->protocols[i].metadata);
	}
	free(m->protocols);
	free(m->assignment);
	ostr_free(&m->id);
	ostr_free(&m->instance_id);
	ostr_free(&m->client_id);
	ostr_free(&m->client_host);
	free(m);
}

static void group_hold(struct group *g)
{
	TL_ASSERT(g->refs > 0);
	g->refs++;
}

/* Drops one reference; frees a Dead group on the last. */
static void group_put(struct group *g)
{
	TL_ASSERT(g->refs > 0);
	if (--g->refs > 0)
		return;
	TL_ASSERT(g->state == GROUP_DEAD);
	TL_ASSERT(!g->members);
	offsets_clear(g);
	txn_offsets_clear(g);
	ostr_free(&g->id);
	ostr_free(&g->protocol_type);
	ostr_free(&g->protocol_name);
	ostr_free(&g->leader_id);
	free(g);
}

/* Takes @g out of the registry (it becomes Dead, its offsets gone from memory) and
 * drops the registry's reference. @g must have no members. */
static void group_unlink(struct tl_groups *groups, struct group *g)
{
	TL_ASSERT(!g->members);
	TL_ASSERT(g->state != GROUP_DEAD);
	struct group **pp = &groups->buckets[group_bucket(ostr_view(g->id))];
	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	g->next = NULL;
	groups->count--;
	while (g->pending) {
		struct pending_member *p = g->pending;
		g->pending = p->next;
		ostr_free(&p->id);
		free(p);
	}
	offsets_clear(g);
	group_set_state(g, GROUP_DEAD);
	group_put(g);
}

static struct member *member_find(struct group *g, struct tl_str id)
{
	for (struct member *m = g->members; m; m = m->next)
		if (ostr_eq(m->id, id))
			return m;
	return NULL;
}

static struct member *member_find_instance(struct group *g, struct tl_str instance_id)
{
	if (instance_id.len < 0)
		return NULL;
	for (struct member *m = g->members; m; m = m->next)
		if (ostr_eq(m->instance_id, instance_id))
			return m;
	return NULL;
}

/* The member a request names, as Kafka checks it: a known group.instance.id whose
 * member id differs is a fenced (replaced) static member. */
static struct member *member_lookup(struct group *g, struct tl_str member_id,
				    struct tl_str instance_id, tl_err *err)
{
	*err = TL_OK;
	struct member *by_instance = g ? member_find_instance(g, instance_id) : NULL;
	if (by_instance && !ostr_eq(by_instance->id, member_id)) {
		*err = TL_ERR_FENCED_INSTANCE_ID;
		return NULL;
	}
	struct member *m = g ? member_find(g, member_id) : NULL;
	if (!m)
		*err = TL_ERR_UNKNOWN_MEMBER_ID;
	return m;
}

/* ---- persistence ---- */

static const struct protocol *member_protocol(const struct member *m, struct ostr name)
{
	for (int32_t i = 0; i < m->protocol_count; i++)
		if (ostr_eq(m->protocols[i].name, ostr_view(name)))
			return &m->protocols[i];
	return NULL;
}

static void group_write_done(void *ctx, tl_err err)
{
	TL_UNUSED(err); /* the store logged it; membership is rebuilt by rejoining */
	group_put(ctx);
}

/* Writes @g's membership (GroupMetadata record) without waiting for it to be durable. */
static void group_persist(struct tl_groups *groups, struct group *g)
{
	struct tl_group_record_member *members =
		calloc((size_t)TL_MAX(g->member_count, 1), sizeof(*members));
	TL_ASSERT(members);
	bool stable = g->state == GROUP_STABLE;
	int32_t n = 0;
	for (struct member *m = g->members; m && stable; m = m->next, n++) {
		const struct protocol *p = member_protocol(m, g->protocol_name);
		members[n].member_id = ostr_view(m->id);
		members[n].group_instance_id = ostr_view(m->instance_id);
		members[n].client_id = ostr_view(m->client_id);
		members[n].client_host = ostr_view(m->client_host);
		members[n].rebalance_timeout_ms = m->rebalance_timeout_ms;
		members[n].session_timeout_ms = m->session_timeout_ms;
		if (p)
			members[n].subscription = (struct tl_bytes){p->metadata, p->metadata_len};
		members[n].assignment = (struct tl_bytes){m->assignment, m->assignment_len};
	}
	struct tl_group_record rec = {
		.type = TL_GROUP_RECORD_GROUP,
		.group_id = ostr_view(g->id),
		.protocol_type = ostr_view(g->protocol_type),
		.generation_id = g->generation_id,
		.protocol_name = stable ? ostr_view(g->protocol_name) : (struct tl_str){NULL, -1},
		.leader_id = stable ? ostr_view(g->leader_id) : (struct tl_str){NULL, -1},
		.state_ms = g->state_ms,
		.member_count = n,
		.members = members,
	};
	struct tl_group_store_batch batch;
	tl_group_store_batch_init(&batch);
	tl_group_store_batch_add(&batch, &rec);
	tl_err err = tl_group_store_write(groups->store, rec.group_id, &batch, group_write_done, g);
	if (err == TL_OK)
		group_hold(g);
	else
		tl_warn("group: cannot store group metadata group=%s err=%s", g->id.ptr,
			tl_err_name(err));
	tl_group_store_batch_deinit(&batch);
	free(members);
}

/* Adds tombstones for every offset of @g, then one for the group itself. */
static void group_tombstones(struct group *g, struct tl_group_store_batch *batch)
{
	struct tl_group_record rec = {
		.type = TL_GROUP_RECORD_OFFSET, .group_id = ostr_view(g->id), .tombstone = true};
	for (int b = 0; b < OFFSET_BUCKETS; b++)
		for (struct offset_entry *e = g->offsets[b]; e; e = e->next) {
			rec.topic = ostr_view(e->topic);
			rec.partition = e->partition;
			tl_group_store_batch_add(batch, &rec);
		}
	rec.type = TL_GROUP_RECORD_GROUP;
	tl_group_store_batch_add(batch, &rec);
}

/* Maps a store error to what a group request answers, as Kafka's GroupMetadataManager
 * does for a failed append. */
static tl_err store_error(tl_err err)
{
	switch (err) {
	case TL_OK:
		return TL_OK;
	case TL_ERR_MESSAGE_TOO_LARGE:
		return TL_ERR_INVALID_COMMIT_OFFSET_SIZE;
	case TL_ERR_KAFKA_STORAGE_ERROR:
	case TL_ERR_NOT_COORDINATOR:
		return TL_ERR_NOT_COORDINATOR;
	default:
		return TL_ERR_COORDINATOR_NOT_AVAILABLE;
	}
}

/* ---- parked requests ---- */

static struct tl_groups *req_groups(struct tl_request *req)
{
	return req->conn->broker->groups;
}

/* Is this broker @group_id's coordinator? Always on one node. In cluster mode only while
 * it leads the group's partition of __consumer_offsets, whose groups it loaded when it
 * became leader (tl_groups_on_leadership), and while that leadership is current: a
 * broker cut off from etcd past its lease may have been replaced, and its answers
 * (an OffsetFetch of offsets the new coordinator has since moved on) would send a
 * consumer back over records a transaction already committed (chaos 914). So
 * NOT_COORDINATOR sends the client back to FindCoordinator;
 * COORDINATOR_NOT_AVAILABLE while the topic does not exist yet. */
static tl_err coordinator_error(const struct tl_groups *groups, struct tl_str group_id)
{
	if (!groups->broker->cluster)
		return TL_OK;
	const struct tl_partition *p = tl_group_store_partition(groups->store, group_id);
	if (!p)
		return TL_ERR_COORDINATOR_NOT_AVAILABLE;
	if (p->role != TL_REPLICA_LEADER ||
	    !tl_cluster_leaderships_current(groups->broker->cluster, tl_mono_ms()))
		return TL_ERR_NOT_COORDINATOR;
	return TL_OK;
}

/* Parked requests carry the group and member they wait for. */
struct parked {
	struct group *group;
	struct member *member;
	bool is_join;
};

static void parked_abandon(struct tl_request *req)
{
	struct parked *p = req->state_data;
	if (p->is_join)
		p->member->join = NULL;
	else
		p->member->sync = NULL;
}

static void park(struct tl_request *req, struct group *g, struct member *m, bool is_join)
{
	struct parked *p = tl_arena_alloc(&req->arena, sizeof(*p));
	TL_ASSERT(p);
	p->group = g;
	p->member = m;
	p->is_join = is_join;
	req->state_data = p;
	req->on_abandon = parked_abandon;
	if (is_join)
		m->join = req;
	else
		m->sync = req;
}

static struct tl_request *unpark(struct tl_request **slot)
{
	struct tl_request *req = *slot;
	*slot = NULL;
	if (req)
		req->on_abandon = NULL;
	return req;
}

/* A request waiting for a store write: answered when the write is durable, or silently
 * dropped then if its connection closed meanwhile. */
static void request_wait_done(struct tl_request *req)
{
	TL_ASSERT(req->waits > 0);
	req->waits--;
}

static bool request_is_orphan(struct tl_request *req)
{
	if (!req->conn->closed)
		return false;
	req->state = TL_REQUEST_SILENT;
	tl_request_finished(req);
	return true;
}

/* ---- JoinGroup and SyncGroup answers ---- */

static void join_respond(struct tl_request *req, struct group *g, struct member *m, tl_err err,
			 bool with_members)
{
	int16_t version = req->header.api_version;
	struct tl_join_group_response resp;
	tl_join_group_response_defaults(&resp);
	resp.error_code = (int16_t)err;
	resp.member_id = m ? ostr_view(m->id) : tl_str_of("");
	if (err == TL_OK && g) {
		resp.generation_id = g->generation_id;
		resp.protocol_type = ostr_view(g->protocol_type);
		resp.protocol_name = ostr_view(g->protocol_name);
		resp.leader = ostr_view(g->leader_id);
	} else {
		resp.protocol_name = version >= 7 ? (struct tl_str){NULL, -1} : tl_str_of("");
		resp.leader = tl_str_of("");
	}
	struct tl_join_group_response_join_group_response_member *members = NULL;
	if (err == TL_OK && with_members) {
		members = tl_arena_array(&req->arena, (size_t)TL_MAX(g->member_count, 1),
					 sizeof(*members));
		TL_ASSERT(members);
		int32_t n = 0;
		for (struct member *x = g->members; x; x = x->next) {
			tl_join_group_response_join_group_response_member_defaults(&members[n]);
			members[n].member_id = ostr_view(x->id);
			members[n].group_instance_id = ostr_view(x->instance_id);
			const struct protocol *p = member_protocol(x, g->protocol_name);
			if (p) {
				members[n].metadata.ptr = p->metadata;
				members[n].metadata.len = p->metadata_len;
			}
			n++;
		}
		resp.members_count = n;
		resp.members = members;
	}
	tl_response_begin(req);
	tl_join_group_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

static void sync_respond(struct tl_request *req, struct group *g, struct member *m, tl_err err)
{
	struct tl_sync_group_response resp;
	tl_sync_group_response_defaults(&resp);
	resp.error_code = (int16_t)err;
	resp.assignment.ptr = (const uint8_t *)"";
	resp.assignment.len = 0;
	if (err == TL_OK) {
		resp.protocol_type = ostr_view(g->protocol_type);
		resp.protocol_name = ostr_view(g->protocol_name);
		if (m->assignment) {
			resp.assignment.ptr = m->assignment;
			resp.assignment.len = m->assignment_len;
		}
	}
	tl_response_begin(req);
	tl_sync_group_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

/* ---- state machine ---- */

static void member_remove(struct group *g, struct member *m, tl_err parked_error)
{
	struct member **pp = &g->members;
	while (*pp != m)
		pp = &(*pp)->next;
	*pp = m->next;
	g->member_count--;
	struct tl_request *req;
	if ((req = unpark(&m->join)))
		join_respond(req, NULL, m, parked_error, false);
	if ((req = unpark(&m->sync)))
		sync_respond(req, g, m, parked_error);
	if (ostr_eq(g->leader_id, ostr_view(m->id)))
		ostr_free(&g->leader_id);
	member_free(m);
}

static int32_t max_rebalance_timeout(const struct group *g)
{
	int32_t t = 0;
	for (const struct member *m = g->members; m; m = m->next)
		t = TL_MAX(t, m->rebalance_timeout_ms);
	return t;
}

static void prepare_rebalance(struct tl_groups *groups, struct group *g, const char *why)
{
	if (g->state == GROUP_PREPARING_REBALANCE)
		return;
	/* Assignments of the old generation are void: syncs waiting for them retry. */
	for (struct member *m = g->members; m; m = m->next) {
		struct tl_request *req = unpark(&m->sync);
		if (req)
			sync_respond(req, g, m, TL_ERR_REBALANCE_IN_PROGRESS);
		free(m->assignment);
		m->assignment = NULL;
		m->assignment_len = 0;
	}
	int64_t now = tl_mono_ms();
	int64_t delay = max_rebalance_timeout(g);
	g->delayed_join = g->state == GROUP_EMPTY;
	if (g->delayed_join)
		/* Let more of a starting fleet arrive before the generation: a new group's
		 * first, or an existing group's after all its members had left (Kafka's
		 * InitialDelayedJoin, whenever the group was Empty). */
		delay = TL_MIN(delay,
			       (int64_t)groups->broker->config.group_initial_rebalance_delay_ms);
	g->rebalance_deadline_ms = now + delay;
	tl_info("group: preparing rebalance group=%s generation=%d members=%d reason=\"%s\"",
		g->id.ptr, g->generation_id, g->member_count, why);
	group_set_state(g, GROUP_PREPARING_REBALANCE);
}

/* Picks the protocol every member supports that most members list first. */
static bool select_protocol(struct group *g)
{
	struct member *first = g->members;
	int32_t best_votes = -1;
	const struct protocol *best = NULL;
	for (int32_t c = 0; c < first->protocol_count; c++) {
		const struct protocol *cand = &first->protocols[c];
		bool all = true;
		int32_t votes = 0;
		for (struct member *m = g->members; m && all; m = m->next) {
			all = member_protocol(m, cand->name) != NULL;
			if (all && m->protocol_count > 0 &&
			    ostr_eq(m->protocols[0].name, ostr_view(cand->name)))
				votes++;
		}
		if (all && votes > best_votes) {
			best_votes = votes;
			best = cand;
		}
	}
	if (!best)
		return false;
	ostr_set(&g->protocol_name, ostr_view(best->name));
	return true;
}

static void become_empty(struct tl_groups *groups, struct group *g)
{
	TL_ASSERT(!g->members);
	group_set_state(g, GROUP_EMPTY);
	ostr_free(&g->protocol_name);
	ostr_free(&g->leader_id);
	tl_info("group: now empty group=%s generation=%d", g->id.ptr, g->generation_id);
	group_persist(groups, g);
}

static void complete_join(struct tl_groups *groups, struct group *g)
{
	TL_ASSERT(g->state == GROUP_PREPARING_REBALANCE);
	/* Dynamic members that did not rejoin in time are out. Static ones stay, as Kafka
	 * keeps them (their session decides): one restarting within its session gets its
	 * assignment back without another rebalance. */
	struct member *m = g->members, *joined = NULL;
	while (m) {
		struct member *next = m->next;
		if (!m->join && m->instance_id.len < 0)
			member_remove(g, m, TL_ERR_UNKNOWN_MEMBER_ID);
		else if (m->join && !joined)
			joined = m;
		m = next;
	}
	if (g->members && !joined) {
		/* Only absent static members: no generation nobody would hear of; wait
		 * another rebalance timeout, their sessions end meanwhile. */
		g->rebalance_deadline_ms = tl_mono_ms() + max_rebalance_timeout(g);
		return;
	}
	g->generation_id++;
	if (!g->members) {
		become_empty(groups, g);
		return;
	}
	/* Joins are refused unless they share a protocol with every member. */
	TL_ASSERT(select_protocol(g));
	/* The leader is one that rejoined: it assigns. */
	struct member *lead =
		g->leader_id.len >= 0 ? member_find(g, ostr_view(g->leader_id)) : NULL;
	if (!lead || !lead->join)
		ostr_set(&g->leader_id, ostr_view(joined->id));
	group_set_state(g, GROUP_COMPLETING_REBALANCE);
	int64_t now = tl_mono_ms();
	/* Members that never send SyncGroup must not stall the group forever. */
	g->rebalance_deadline_ms = now + max_rebalance_timeout(g);
	tl_info("group: rebalance complete group=%s generation=%d members=%d protocol=%s",
		g->id.ptr, g->generation_id, g->member_count, g->protocol_name.ptr);
	for (m = g->members; m; m = m->next) {
		struct tl_request *req = unpark(&m->join);
		if (!req)
			continue; /* an absent static member: it learns the generation on return */
		m->expires_ms = now + m->session_timeout_ms;
		bool leader = ostr_eq(g->leader_id, ostr_view(m->id));
		join_respond(req, g, m, TL_OK, leader);
	}
}

static void maybe_complete_join(struct tl_groups *groups, struct group *g)
{
	if (g->state != GROUP_PREPARING_REBALANCE || g->pending)
		return;
	for (struct member *m = g->members; m; m = m->next)
		if (!m->join)
			return;
	/* Everyone is here; a group that was Empty still waits out its initial delay. */
	if (g->delayed_join && tl_mono_ms() < g->rebalance_deadline_ms)
		return;
	complete_join(groups, g);
}

static void member_leave(struct tl_groups *groups, struct group *g, struct member *m,
			 const char *why)
{
	member_remove(g, m, TL_ERR_UNKNOWN_MEMBER_ID);
	if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE) {
		if (g->members) {
			prepare_rebalance(groups, g, why);
		} else {
			g->generation_id++;
			become_empty(groups, g);
		}
	} else if (g->state == GROUP_PREPARING_REBALANCE) {
		maybe_complete_join(groups, g);
	}
}

/* CompletingRebalance ran past the rebalance timeout: members that did not send their
 * SyncGroup are removed (Kafka's pending-sync timeout) and the rest rebalance. */
static void sync_expire(struct tl_groups *groups, struct group *g)
{
	struct member *m = g->members;
	while (m) {
		struct member *next = m->next;
		if (!m->sync) {
			tl_info("group: member did not sync in time group=%s member=%s", g->id.ptr,
				m->id.ptr);
			member_remove(g, m, TL_ERR_UNKNOWN_MEMBER_ID);
		}
		m = next;
	}
	if (g->members) {
		prepare_rebalance(groups, g, "members did not sync in time");
	} else {
		g->generation_id++;
		become_empty(groups, g);
	}
}

/* ---- offsets in memory ---- */

static struct offset_entry **offset_slot(struct group *g, struct tl_str topic, int32_t partition)
{
	uint32_t h =
		hash_bytes(topic.ptr, topic.len, 2166136261u) ^ (uint32_t)partition * 2654435761u;
	struct offset_entry **pp = &g->offsets[h % OFFSET_BUCKETS];
	while (*pp && !((*pp)->partition == partition && ostr_eq((*pp)->topic, topic)))
		pp = &(*pp)->next;
	return pp;
}

static void offset_store(struct group *g, struct tl_str topic, int32_t partition, int64_t offset,
			 int32_t leader_epoch, struct tl_str metadata, int64_t commit_ms,
			 uint64_t seq)
{
	struct offset_entry **pp = offset_slot(g, topic, partition);
	struct offset_entry *e = *pp;
	if (!e) {
		e = calloc(1, sizeof(*e));
		TL_ASSERT(e);
		e->topic = ostr_dup(topic);
		e->partition = partition;
		*pp = e;
		g->offset_count++;
	} else {
		ostr_free(&e->metadata);
	}
	e->offset = offset;
	e->leader_epoch = leader_epoch;
	e->metadata = ostr_dup(metadata.len >= 0 ? metadata : tl_str_of(""));
	e->commit_ms = commit_ms;
	e->seq = seq;
}

static void offset_drop(struct group *g, struct tl_str topic, int32_t partition)
{
	struct offset_entry **pp = offset_slot(g, topic, partition);
	struct offset_entry *e = *pp;
	if (!e)
		return;
	*pp = e->next;
	ostr_free(&e->topic);
	ostr_free(&e->metadata);
	free(e);
	g->offset_count--;
}

/* Is @topic in the subscription of any member (consumer protocol)? */
static bool group_subscribed(struct tl_arena *arena, struct group *g, struct tl_str topic)
{
	for (struct member *m = g->members; m; m = m->next)
		for (int32_t i = 0; i < m->protocol_count; i++) {
			struct tl_cursor c;
			tl_cursor_init(&c, m->protocols[i].metadata,
				       (size_t)m->protocols[i].metadata_len);
			int16_t version = tl_cursor_i16(&c);
			struct tl_consumer_protocol_subscription sub;
			if (c.failed || version < 0 ||
			    tl_consumer_protocol_subscription_decode(
				    &c, TL_MIN(version, (int16_t)3), arena, &sub) != TL_OK)
				continue;
			for (int32_t t = 0; t < sub.topics_count; t++)
				if (tl_str_eq(sub.topics[t], topic))
					return true;
		}
	return false;
}

/* ---- offsets.retention.minutes ---- */

/* When the offset @e of @g expires (wall clock), or INT64_MAX when it does not, as
 * Kafka's GroupMetadata.removeExpiredOffsets decides: a group that never had members
 * expires each offset by its commit time; an Empty group all of them once it has been
 * empty for the retention; a consumer group with members only offsets of topics
 * nobody subscribes to, by commit time. */
static int64_t offset_expires_ms(struct tl_arena *arena, struct group *g,
				 const struct offset_entry *e, int64_t retention_ms)
{
	if (g->protocol_type.len < 0)
		return e->commit_ms + retention_ms;
	if (g->state == GROUP_EMPTY)
		return (g->state_ms >= 0 ? g->state_ms : e->commit_ms) + retention_ms;
	if (ostr_eq(g->protocol_type, tl_str_of(CONSUMER_PROTOCOL)) && g->state == GROUP_STABLE &&
	    !group_subscribed(arena, g, ostr_view(e->topic)))
		return e->commit_ms + retention_ms;
	return INT64_MAX;
}

/* Tombstones @g's expired offsets (dropping them from memory now), and removes the
 * group once it is Empty with no offsets left, committed or staged. Skips a group with
 * writes in flight: their records precede these tombstones in the log, so memory and
 * log agree. */
static void group_expire(struct tl_groups *groups, struct group *g, int64_t now_ms)
{
	if (g->refs > 1 || g->pending)
		return;
	int64_t retention_ms = groups->broker->config.offsets_retention_minutes * 60000;
	struct tl_arena arena;
	tl_arena_init(&arena, SCRATCH_ARENA_BYTES_MAX);
	struct tl_group_store_batch batch;
	tl_group_store_batch_init(&batch);
	struct tl_group_record rec = {
		.type = TL_GROUP_RECORD_OFFSET, .group_id = ostr_view(g->id), .tombstone = true};
	int32_t expired = 0;
	for (int b = 0; b < OFFSET_BUCKETS; b++) {
		struct offset_entry *e = g->offsets[b];
		while (e) {
			struct offset_entry *next = e->next;
			if (offset_expires_ms(&arena, g, e, retention_ms) <= now_ms) {
				rec.topic = ostr_view(e->topic);
				rec.partition = e->partition;
				tl_group_store_batch_add(&batch, &rec);
				expired++;
			}
			e = next;
		}
	}
	/* Offsets staged by an undecided transaction keep the group, as Kafka's
	 * hasOffsets counts them: its COMMIT marker must find them. */
	bool remove = g->state == GROUP_EMPTY && g->offset_count == expired && !g->txn_offsets;
	if (remove) {
		rec.type = TL_GROUP_RECORD_GROUP;
		tl_group_store_batch_add(&batch, &rec);
	}
	if (tl_group_store_batch_count(&batch) == 0) {
		tl_group_store_batch_deinit(&batch);
		tl_arena_deinit(&arena);
		return;
	}
	tl_err err =
		tl_group_store_write(groups->store, ostr_view(g->id), &batch, group_write_done, g);
	tl_group_store_batch_deinit(&batch);
	if (err != TL_OK) {
		tl_warn("group: cannot store expired offsets group=%s err=%s", g->id.ptr,
			tl_err_name(err));
		tl_arena_deinit(&arena);
		return;
	}
	group_hold(g);
	if (expired)
		tl_info("group: offsets expired group=%s offsets=%d removed=%s", g->id.ptr, expired,
			remove ? "yes" : "no");
	if (remove) {
		group_unlink(groups, g);
	} else {
		for (int b = 0; b < OFFSET_BUCKETS; b++) {
			struct offset_entry *e = g->offsets[b];
			while (e) {
				struct offset_entry *next = e->next;
				if (offset_expires_ms(&arena, g, e, retention_ms) <= now_ms)
					offset_drop(g, ostr_view(e->topic), e->partition);
				e = next;
			}
		}
	}
	tl_arena_deinit(&arena);
}

/* ---- timers ---- */

static void group_tick(struct tl_groups *groups, struct group *g, int64_t now_ms)
{
	struct pending_member **pp = &g->pending;
	while (*pp) {
		struct pending_member *p = *pp;
		if (p->expires_ms <= now_ms) {
			*pp = p->next;
			ostr_free(&p->id);
			free(p);
		} else {
			pp = &p->next;
		}
	}
	struct member *m = g->members;
	while (m) {
		struct member *next = m->next;
		/* A member waiting in a join or a sync is alive by definition (clients do not
		 * heartbeat meanwhile). */
		if (!m->join && !m->sync && m->expires_ms <= now_ms) {
			tl_info("group: member session expired group=%s member=%s", g->id.ptr,
				m->id.ptr);
			member_leave(groups, g, m, "session timeout");
		}
		m = next;
	}
	if (g->state == GROUP_PREPARING_REBALANCE && now_ms >= g->rebalance_deadline_ms)
		complete_join(groups, g);
	else if (g->state == GROUP_COMPLETING_REBALANCE && now_ms >= g->rebalance_deadline_ms)
		sync_expire(groups, g);
	else
		maybe_complete_join(groups, g);
}

/* Moves every session and rebalance deadline @paused_ms later. */
static void groups_resume(struct tl_groups *groups, int64_t paused_ms)
{
	for (int b = 0; b < GROUP_BUCKETS; b++)
		for (struct group *g = groups->buckets[b]; g; g = g->next) {
			for (struct pending_member *p = g->pending; p; p = p->next)
				p->expires_ms += paused_ms;
			for (struct member *m = g->members; m; m = m->next)
				m->expires_ms += paused_ms;
			g->rebalance_deadline_ms += paused_ms;
		}
}

void tl_groups_tick(struct tl_groups *groups, int64_t now_ms)
{
	if (now_ms < groups->next_tick_ms)
		return;
	groups->next_tick_ms = now_ms + TICK_INTERVAL_MS;
	/* While this broker is not sure it still coordinates (no current leaderships), its
	 * members cannot reach it, so their sessions stand still: no expiry then, and the
	 * deadlines move on by the pause once it is sure again. */
	if (!tl_cluster_leaderships_current(groups->broker->cluster, now_ms)) {
		if (!groups->paused_since_ms)
			groups->paused_since_ms = now_ms;
		return;
	}
	if (groups->paused_since_ms) {
		groups_resume(groups, now_ms - groups->paused_since_ms);
		groups->paused_since_ms = 0;
	}
	bool expire = now_ms >= groups->next_expiry_ms;
	if (expire)
		groups->next_expiry_ms =
			now_ms + groups->broker->config.offsets_retention_check_interval_ms;
	int64_t wall_ms = tl_wall_ms();
	for (int b = 0; b < GROUP_BUCKETS; b++) {
		struct group *g = groups->buckets[b];
		while (g) {
			struct group *next = g->next;
			group_tick(groups, g, now_ms);
			if (expire)
				group_expire(groups, g, wall_ms);
			g = next;
		}
	}
}

int64_t tl_groups_next_deadline(const struct tl_groups *groups)
{
	return groups->count ? groups->next_tick_ms : INT64_MAX;
}

/* ---- metrics ---- */

int32_t tl_groups_count(const struct tl_groups *groups)
{
	return groups->count;
}

void tl_groups_each_offset(const struct tl_groups *groups, tl_groups_offset_fn fn, void *ctx)
{
	for (uint32_t b = 0; b < GROUP_BUCKETS; b++) {
		for (const struct group *g = groups->buckets[b]; g; g = g->next) {
			const char *id = g->id.ptr ? g->id.ptr : "";
			fn(ctx, id, state_names[g->state], NULL, -1, -1);
			for (uint32_t o = 0; o < OFFSET_BUCKETS; o++)
				for (const struct offset_entry *e = g->offsets[o]; e; e = e->next)
					fn(ctx, id, state_names[g->state],
					   e->topic.ptr ? e->topic.ptr : "", e->partition,
					   e->offset);
		}
	}
}

/* ---- start-up: replaying __consumer_offsets ---- */

static void load_members_clear(struct group *g)
{
	while (g->members) {
		struct member *m = g->members;
		g->members = m->next;
		member_free(m);
	}
	g->member_count = 0;
}

static void load_member(struct group *g, const struct tl_group_record_member *rm, int64_t now_ms)
{
	struct member *m = calloc(1, sizeof(*m));
	TL_ASSERT(m);
	m->id = ostr_dup(rm->member_id);
	m->instance_id = ostr_dup(rm->group_instance_id);
	m->client_id = ostr_dup(rm->client_id);
	m->client_host = ostr_dup(rm->client_host);
	m->session_timeout_ms = rm->session_timeout_ms;
	m->rebalance_timeout_ms = rm->rebalance_timeout_ms;
	m->protocol_count = 1;
	m->protocols = calloc(1, sizeof(*m->protocols));
	TL_ASSERT(m->protocols);
	m->protocols[0].name = ostr_dup(ostr_view(g->protocol_name));
	m->protocols[0].metadata = bytes_dup(rm->subscription, &m->protocols[0].metadata_len);
	m->assignment = bytes_dup(rm->assignment, &m->assignment_len);
	m->expires_ms = now_ms + m->session_timeout_ms;
	struct member **tail = &g->members;
	while (*tail)
		tail = &(*tail)->next;
	*tail = m;
	g->member_count++;
}

static void load_group(struct group *g, const struct tl_group_record *rec)
{
	load_members_clear(g);
	ostr_set(&g->protocol_type, rec->protocol_type);
	ostr_set(&g->protocol_name, rec->protocol_name);
	ostr_set(&g->leader_id, rec->leader_id);
	g->generation_id = rec->generation_id;
	g->state_ms = rec->state_ms;
	bool stable = rec->member_count > 0 && rec->protocol_name.len > 0;
	int64_t now = tl_mono_ms();
	for (int32_t i = 0; stable && i < rec->member_count; i++)
		load_member(g, &rec->members[i], now);
	if (!stable) {
		g->state = GROUP_EMPTY;
		ostr_free(&g->protocol_name);
		ostr_free(&g->leader_id);
		return;
	}
	g->state = GROUP_STABLE;
	if (!member_find(g, ostr_view(g->leader_id)))
		ostr_set(&g->leader_id, ostr_view(g->members->id));
}

static void load_record(void *ctx, const struct tl_group_record *rec)
{
	struct tl_groups *groups = ctx;
	if (rec->type == TL_GROUP_RECORD_TXN_MARKER) {
		/* The coordinator writes a marker to every offsets partition holding the
		 * transaction's offsets: apply it to the groups of the partition it is in
		 * only. (A group of another partition may hold offsets of the same
		 * producer's next transaction, which this marker does not decide.) */
		for (int b = 0; b < GROUP_BUCKETS; b++)
			for (struct group *g = groups->buckets[b]; g; g = g->next)
				if (group_partition(groups, ostr_view(g->id)) == rec->log_partition)
					txn_offsets_end(g, rec->producer_id, rec->commit);
		return;
	}
	struct group *g = group_find(groups, rec->group_id);
	if (rec->tombstone) {
		if (!g)
			return;
		if (rec->type == TL_GROUP_RECORD_OFFSET) {
			offset_drop(g, rec->topic, rec->partition);
		} else {
			load_members_clear(g);
			group_unlink(groups, g);
		}
		return;
	}
	if (rec->group_id.len <= 0)
		return;
	if (!g) {
		g = group_create(groups, rec->group_id);
		g->state_ms = -1;
	}
	if (rec->type == TL_GROUP_RECORD_OFFSET && rec->producer_id >= 0)
		txn_offsets_add(g, rec->producer_id, rec->topic, rec->partition, rec->offset,
				rec->leader_epoch, rec->metadata, rec->commit_ms,
				++groups->append_seq);
	else if (rec->type == TL_GROUP_RECORD_OFFSET)
		offset_store(g, rec->topic, rec->partition, rec->offset, rec->leader_epoch,
			     rec->metadata, rec->commit_ms, ++groups->append_seq);
	else
		load_group(g, rec);
}

tl_err tl_groups_create(struct tl_broker *broker, struct tl_groups **groups_out)
{
	struct tl_groups *groups = calloc(1, sizeof(*groups));
	if (!groups)
		return TL_ERR_NOMEM;
	groups->broker = broker;
	groups->next_expiry_ms = tl_mono_ms() + broker->config.offsets_retention_check_interval_ms;
	tl_err err = tl_group_store_open(broker, &groups->store);
	/* One node: every partition is ours. Cluster mode: none yet, each is loaded when
	 * this broker becomes its leader (tl_groups_on_leadership). */
	if (err == TL_OK && !tl_config_is_cluster(&broker->config))
		err = tl_group_store_replay(groups->store, load_record, groups);
	if (err != TL_OK) {
		tl_crit("group: cannot load consumer groups from the offsets topic err=%s",
			tl_err_name(err));
		tl_groups_destroy(groups);
		return err;
	}
	int64_t offsets = 0;
	for (int b = 0; b < GROUP_BUCKETS; b++)
		for (struct group *g = groups->buckets[b]; g; g = g->next)
			offsets += g->offset_count;
	tl_info("group: coordinator loaded groups=%d offsets=%" PRId64 " partitions=%d",
		groups->count, offsets, tl_group_store_partition_count(groups->store));
	*groups_out = groups;
	return TL_OK;
}

void tl_groups_destroy(struct tl_groups *groups)
{
	if (!groups)
		return;
	/* Detaches the callbacks of writes still in flight, so groups can go now. */
	tl_group_store_close(groups->store);
	for (int b = 0; b < GROUP_BUCKETS; b++) {
		while (groups->buckets[b]) {
			struct group *g = groups->buckets[b];
			while (g->members) {
				struct member *m = g->members;
				g->members = m->next;
				if (m->join)
					unpark(&m->join);
				if (m->sync)
					unpark(&m->sync);
				member_free(m);
			}
			g->member_count = 0;
			g->refs = 1;
			group_unlink(groups, g);
		}
	}
	free(groups);
}

/* Another broker coordinates @g now: parked joins and syncs get NOT_COORDINATOR (the
 * client finds the new coordinator and rejoins there), and the group leaves memory.
 * Writes of it still in flight hold it (invariant 4) and finish on a Dead group. */
static void group_unload(struct tl_groups *groups, struct group *g)
{
	while (g->members)
		member_remove(g, g->members, TL_ERR_NOT_COORDINATOR);
	group_unlink(groups, g);
}

void tl_groups_on_leadership(struct tl_groups *groups, int32_t partition, bool leading)
{
	if (!leading) {
		int32_t unloaded = 0;
		for (int b = 0; b < GROUP_BUCKETS; b++) {
			struct group *g = groups->buckets[b];
			while (g) {
				struct group *next = g->next;
				if (group_partition(groups, ostr_view(g->id)) == partition) {
					group_unload(groups, g);
					unloaded++;
				}
				g = next;
			}
		}
		tl_info("group: resigned as coordinator partition=%d groups=%d", partition,
			unloaded);
		return;
	}
	int32_t before = groups->count;
	tl_err err = tl_group_store_replay_partition(groups->store, partition, load_record, groups);
	/* Groups loaded from a log that could not be read whole would answer with a state
	 * that is not the one clients were told: give the partition up instead. */
	if (err != TL_OK) {
		tl_crit("group: cannot load groups, not coordinating partition=%d err=%s",
			partition, tl_err_name(err));
		tl_groups_on_leadership(groups, partition, false);
		return;
	}
	tl_info("group: coordinating partition=%d groups=%d", partition, groups->count - before);
}

/* ---- FindCoordinator ---- */

/* Where @key's coordinator is, as FindCoordinator answers it. One node: here. Cluster
 * mode: the leader of the key's partition of __consumer_offsets (a group) or of
 * __transaction_state (a transactional id), asking to create the topic first. */
static tl_err coordinator_of(struct tl_request *req, int8_t key_type, struct tl_str key,
			     int32_t *node_id, struct tl_str *host, int32_t *port)
{
	struct tl_broker *broker = req->conn->broker;
	*node_id = broker->config.node_id;
	const char *advertised_host;
	tl_conn_advertised(req->conn, &advertised_host, port);
	*host = tl_str_of(advertised_host);
	if (key_type != 0 && key_type != 1)
		return TL_ERR_INVALID_REQUEST;
	/* Kafka: Describe on the group or the transactional id. */
	if (key_type == 0 && !tl_authorize_group(req, TL_ACL_OP_DESCRIBE, key))
		return TL_ERR_GROUP_AUTHORIZATION_FAILED;
	if (key_type == 1 && !tl_authorize_txn(req, TL_ACL_OP_DESCRIBE, key))
		return TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	if (!broker->cluster)
		return key_type == 0 && !tl_group_store_is_writable(req_groups(req)->store, key)
			       ? TL_ERR_COORDINATOR_NOT_AVAILABLE
			       : TL_OK;
	/* A broker whose leaderships are not current (its lease may have lapsed) knows no
	 * more than that its view may be stale: it points a group's members nowhere rather
	 * than at a coordinator that answers NOT_COORDINATOR (itself) or that another broker
	 * has since replaced. Clients retry COORDINATOR_NOT_AVAILABLE (Kafka's answer while
	 * the coordinator is unknown); one that asks only this broker waits until it has
	 * read the cluster's state again, as it would have looped on NOT_COORDINATOR. */
	if (key_type == 0 && !tl_cluster_leaderships_current(broker->cluster, tl_mono_ms()))
		return TL_ERR_COORDINATOR_NOT_AVAILABLE;
	const struct tl_cluster_broker *coordinator = NULL;
	if (key_type == 0) {
		struct tl_group_store *store = req_groups(req)->store;
		tl_group_store_ensure_topic(store);
		const struct tl_partition *p = tl_group_store_partition(store, key);
		if (p && p->has_state && p->state.leader >= 0)
			coordinator = tl_cluster_find_broker(tl_cluster_view(broker->cluster),
							     p->state.leader);
	} else {
		tl_txns_ensure_topic(broker->txns);
		const struct tl_partition *p = tl_txns_partition(broker->txns, key);
		if (p && p->has_state && p->state.leader >= 0)
			coordinator = tl_cluster_find_broker(tl_cluster_view(broker->cluster),
							     p->state.leader);
	}
	const char *coordinator_host;
	/* The coordinator's endpoint of the client's listener; none: not available (Kafka) */
	if (!coordinator ||
	    !tl_cluster_broker_address(coordinator, req->conn, &coordinator_host, port))
		return TL_ERR_COORDINATOR_NOT_AVAILABLE;
	*node_id = coordinator->id;
	*host = tl_str_of(coordinator_host);
	return TL_OK;
}

void tl_handle_find_coordinator(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_find_coordinator_request msg;
	if (tl_find_coordinator_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed FindCoordinator request");
		return;
	}
	struct tl_find_coordinator_response resp;
	tl_find_coordinator_response_defaults(&resp);
	if (version < 4) {
		resp.error_code = (int16_t)coordinator_of(req, msg.key_type, msg.key, &resp.node_id,
							  &resp.host, &resp.port);
		/* Kafka sends the error's text (librdkafka prints it). */
		if (resp.error_code != 0)
			resp.error_message = tl_str_of(tl_err_message((tl_err)resp.error_code));
	} else {
		resp.coordinators_count = msg.coordinator_keys_count;
		resp.coordinators =
			tl_arena_array(&req->arena, (size_t)TL_MAX(msg.coordinator_keys_count, 0),
				       sizeof(*resp.coordinators));
		if (msg.coordinator_keys_count > 0 && !resp.coordinators) {
			tl_request_reject(req, "FindCoordinator request too large");
			return;
		}
		for (int32_t i = 0; i < msg.coordinator_keys_count; i++) {
			struct tl_find_coordinator_response_coordinator *c = &resp.coordinators[i];
			tl_find_coordinator_response_coordinator_defaults(c);
			c->key = msg.coordinator_keys[i];
			c->error_code = (int16_t)coordinator_of(req, msg.key_type, c->key,
								&c->node_id, &c->host, &c->port);
			if (c->error_code != 0)
				c->error_message = tl_str_of(tl_err_message((tl_err)c->error_code));
		}
	}
	tl_response_begin(req);
	tl_find_coordinator_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- JoinGroup ---- */

static bool subscription_valid(struct tl_request *req, struct tl_bytes metadata)
{
	/* Consumer subscriptions are an int16 version then ConsumerProtocolSubscription. */
	struct tl_cursor c;
	tl_cursor_init(&c, metadata.ptr, (size_t)TL_MAX(metadata.len, 0));
	int16_t version = tl_cursor_i16(&c);
	if (c.failed || version < 0)
		return false;
	struct tl_consumer_protocol_subscription sub;
	/* Newer versions than we know are read as our newest, as Kafka does. */
	tl_err err = tl_consumer_protocol_subscription_decode(&c, TL_MIN(version, (int16_t)3),
							      &req->arena, &sub);
	return err == TL_OK;
}

static void member_set_protocols(struct member *m, const struct tl_join_group_request *msg)
{
	for (int32_t i = 0; i < m->protocol_count; i++) {
		ostr_free(&m->protocols[i].name);
		free(m->protocols[i].metadata);
	}
	free(m->protocols);
	m->protocol_count = msg->protocols_count;
	m->protocols = calloc((size_t)TL_MAX(msg->protocols_count, 1), sizeof(*m->protocols));
	TL_ASSERT(m->protocols);
	for (int32_t i = 0; i < msg->protocols_count; i++) {
		m->protocols[i].name = ostr_dup(msg->protocols[i].name);
		m->protocols[i].metadata =
			bytes_dup(msg->protocols[i].metadata, &m->protocols[i].metadata_len);
	}
}

static bool protocols_match(const struct member *m, const struct tl_join_group_request *msg)
{
	if (m->protocol_count != msg->protocols_count)
		return false;
	for (int32_t i = 0; i < m->protocol_count; i++) {
		struct tl_bytes md = msg->protocols[i].metadata;
		if (!ostr_eq(m->protocols[i].name, msg->protocols[i].name) ||
		    m->protocols[i].metadata_len != TL_MAX(md.len, 0) ||
		    (md.len > 0 && memcmp(m->protocols[i].metadata, md.ptr, (size_t)md.len) != 0))
			return false;
	}
	return true;
}

/* Does the join share a protocol with every current member? */
static bool join_protocol_compatible(const struct group *g, const struct tl_join_group_request *msg)
{
	if (g->members == NULL)
		return true;
	if (!ostr_eq(g->protocol_type, msg->protocol_type))
		return false;
	for (int32_t i = 0; i < msg->protocols_count; i++) {
		bool everyone = true;
		for (const struct member *m = g->members; m && everyone; m = m->next) {
			bool has = false;
			for (int32_t j = 0; j < m->protocol_count; j++)
				has |= ostr_eq(m->protocols[j].name, msg->protocols[i].name);
			everyone = has;
		}
		if (everyone)
			return true;
	}
	return false;
}

static tl_err join_check(struct tl_request *req, const struct tl_join_group_request *msg)
{
	const struct tl_config *config = &req->conn->broker->config;
	if (msg->group_id.len <= 0)
		return TL_ERR_INVALID_GROUP_ID;
	if (msg->session_timeout_ms < config->group_min_session_timeout_ms ||
	    msg->session_timeout_ms > config->group_max_session_timeout_ms)
		return TL_ERR_INVALID_SESSION_TIMEOUT;
	if (msg->protocol_type.len <= 0 || msg->protocols_count <= 0)
		return TL_ERR_INCONSISTENT_GROUP_PROTOCOL;
	if (tl_str_eq_c(msg->protocol_type, CONSUMER_PROTOCOL)) {
		for (int32_t i = 0; i < msg->protocols_count; i++)
			if (!subscription_valid(req, msg->protocols[i].metadata))
				return TL_ERR_INVALID_REQUEST;
	}
	return TL_OK;
}

static void member_set_client(struct member *m, struct tl_request *req)
{
	ostr_set(&m->client_id,
		 req->header.client_id.len >= 0 ? req->header.client_id : tl_str_of(""));
	char host[80];
	snprintf(host, sizeof(host), "/%s", req->conn->peer);
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	ostr_set(&m->client_host, tl_str_of(host));
}

static void member_set_timeouts(struct member *m, struct tl_request *req,
				const struct tl_join_group_request *msg)
{
	m->session_timeout_ms = msg->session_timeout_ms;
	m->rebalance_timeout_ms =
		req->header.api_version >= 1 ? msg->rebalance_timeout_ms : msg->session_timeout_ms;
	m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
}

static struct member *member_add(struct group *g, struct tl_request *req, struct ostr id,
				 const struct tl_join_group_request *msg)
{
	struct member *m = calloc(1, sizeof(*m));
	TL_ASSERT(m);
	m->id = id;
	m->instance_id = ostr_dup(msg->group_instance_id);
	m->client_id.len = m->client_host.len = -1;
	member_set_client(m, req);
	member_set_timeouts(m, req, msg);
	member_set_protocols(m, msg);
	struct member **tail = &g->members;
	while (*tail)
		tail = &(*tail)->next;
	*tail = m;
	g->member_count++;
	if (g->member_count == 1 || g->protocol_type.len < 0)
		ostr_set(&g->protocol_type, msg->protocol_type);
	return m;
}

/* Parks @req as @m's join and starts (or joins) a rebalance. */
static void join_rebalance(struct tl_groups *groups, struct group *g, struct member *m,
			   struct tl_request *req, const char *why)
{
	if (m->join) {
		/* A retried join replaces the parked one, which gets a retriable error. */
		join_respond(unpark(&m->join), NULL, m, TL_ERR_REBALANCE_IN_PROGRESS, false);
	}
	park(req, g, m, true);
	prepare_rebalance(groups, g, why);
	maybe_complete_join(groups, g);
}

/* A join from a member the group knows, by member id (Kafka's doCurrentMemberJoinGroup). */
static void join_existing(struct tl_groups *groups, struct group *g, struct member *m,
			  struct tl_request *req, const struct tl_join_group_request *msg)
{
	bool same = protocols_match(m, msg);
	member_set_timeouts(m, req, msg);
	if (!same)
		member_set_protocols(m, msg);
	bool leader = ostr_eq(g->leader_id, ostr_view(m->id));
	if (same &&
	    (g->state == GROUP_COMPLETING_REBALANCE || (g->state == GROUP_STABLE && !leader))) {
		/* Nothing changed: hand back the current generation. */
		if (m->join)
			join_respond(unpark(&m->join), NULL, m, TL_ERR_REBALANCE_IN_PROGRESS,
				     false);
		join_respond(req, g, m, TL_OK, leader);
		return;
	}
	join_rebalance(groups, g, m, req, same ? "leader rejoined" : "member changed its metadata");
}

/* A static member (known group.instance.id) rejoining without its member id: it gets a
 * new id and the old one is fenced. In a Stable group with unchanged metadata it keeps
 * its assignment without a rebalance (KIP-345). */
static void join_static_return(struct tl_groups *groups, struct group *g, struct member *m,
			       struct tl_request *req, const struct tl_join_group_request *msg)
{
	struct tl_request *old;
	if ((old = unpark(&m->join)))
		join_respond(old, NULL, m, TL_ERR_FENCED_INSTANCE_ID, false);
	if ((old = unpark(&m->sync)))
		sync_respond(old, g, m, TL_ERR_FENCED_INSTANCE_ID);
	bool leader = ostr_eq(g->leader_id, ostr_view(m->id));
	ostr_free(&m->id);
	m->id = member_id_new(req->header.client_id);
	member_set_client(m, req);
	tl_info("group: static member returned group=%s instance=%s member=%s", g->id.ptr,
		m->instance_id.ptr, m->id.ptr);
	if (g->state == GROUP_STABLE && protocols_match(m, msg)) {
		member_set_timeouts(m, req, msg);
		/* As Kafka answers: the old leader id and no members, so a returning leader
		 * does not assign (a Stable group would ignore its SyncGroup's assignment);
		 * it gets its stored one. The group's leader is its new id from now on. */
		join_respond(req, g, m, TL_OK, false);
		if (leader)
			ostr_set(&g->leader_id, ostr_view(m->id));
		group_persist(groups, g);
		return;
	}
	if (leader)
		ostr_set(&g->leader_id, ostr_view(m->id));
	if (g->state == GROUP_COMPLETING_REBALANCE) {
		/* The leader assigns to the old id: run the rebalance again. */
		member_set_timeouts(m, req, msg);
		member_set_protocols(m, msg);
		join_rebalance(groups, g, m, req, "static member returned");
		return;
	}
	join_existing(groups, g, m, req, msg);
}

static void join_new_member(struct tl_groups *groups, struct group *g, struct tl_request *req,
			    const struct tl_join_group_request *msg, struct ostr id)
{
	struct member *m = member_add(g, req, id, msg);
	join_rebalance(groups, g, m, req, "new member joined");
}

/* Whether a new member may join under group.max.size, as Kafka's acceptJoiningMember:
 * counted by the members, or while a rebalance gathers joins by those that rejoined
 * (the others leave when it completes). Checked when a member is added, also one that
 * comes back with the id KIP-394 handed it. */
static bool accepts_new_member(const struct tl_request *req, const struct group *g)
{
	int32_t n = g->member_count;
	if (g->state == GROUP_PREPARING_REBALANCE) {
		n = 0;
		for (const struct member *m = g->members; m; m = m->next)
			n += m->join != NULL;
	}
	return n < req->conn->broker->config.group_max_size;
}

/* KIP-394: an unknown member without an id is handed one and must join again with it. */
static void join_require_member_id(struct group *g, struct tl_request *req,
				   const struct tl_join_group_request *msg)
{
	int32_t pending = 0;
	for (struct pending_member *p = g->pending; p; p = p->next)
		pending++;
	struct member tmp = {.id = member_id_new(req->header.client_id)};
	if (pending >= PENDING_MAX) {
		join_respond(req, NULL, NULL, TL_ERR_GROUP_MAX_SIZE_REACHED, false);
		ostr_free(&tmp.id);
		return;
	}
	struct pending_member *p = calloc(1, sizeof(*p));
	TL_ASSERT(p);
	p->id = tmp.id;
	p->expires_ms = tl_mono_ms() + msg->session_timeout_ms;
	p->next = g->pending;
	g->pending = p;
	join_respond(req, NULL, &tmp, TL_ERR_MEMBER_ID_REQUIRED, false);
}

/* A join naming a member id: a known member, or one handed out by KIP-394. */
static void join_with_member_id(struct tl_groups *groups, struct group *g, struct tl_request *req,
				const struct tl_join_group_request *msg)
{
	tl_err err;
	struct member *m = member_lookup(g, msg->member_id, msg->group_instance_id, &err);
	if (m) {
		join_existing(groups, g, m, req, msg);
		return;
	}
	struct pending_member **pp = &g->pending;
	while (*pp && !ostr_eq((*pp)->id, msg->member_id))
		pp = &(*pp)->next;
	if (err == TL_ERR_FENCED_INSTANCE_ID || !*pp) {
		join_respond(req, NULL, NULL, err, false);
		return;
	}
	struct pending_member *p = *pp;
	*pp = p->next;
	struct ostr id = p->id;
	free(p);
	if (!accepts_new_member(req, g)) {
		ostr_free(&id);
		join_respond(req, NULL, NULL, TL_ERR_GROUP_MAX_SIZE_REACHED, false);
		return;
	}
	join_new_member(groups, g, req, msg, id);
}

void tl_handle_join_group(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct tl_join_group_request msg;
	if (tl_join_group_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed JoinGroup request");
		return;
	}
	tl_err err = tl_authorize_group(req, TL_ACL_OP_READ, msg.group_id)
			     ? join_check(req, &msg)
			     : TL_ERR_GROUP_AUTHORIZATION_FAILED;
	if (err == TL_OK)
		err = coordinator_error(groups, msg.group_id);
	if (err != TL_OK) {
		tl_debug("group: join refused group=%.*s err=%s peer=%s",
			 TL_MAX(msg.group_id.len, 0), msg.group_id.ptr, tl_err_name(err),
			 req->conn->peer);
		join_respond(req, NULL, NULL, err, false);
		return;
	}
	struct group *g = group_find(groups, msg.group_id);
	if (!g) {
		if (msg.member_id.len > 0) {
			join_respond(req, NULL, NULL, TL_ERR_UNKNOWN_MEMBER_ID, false);
			return;
		}
		g = group_create(groups, msg.group_id);
	}
	if (!join_protocol_compatible(g, &msg)) {
		join_respond(req, NULL, NULL, TL_ERR_INCONSISTENT_GROUP_PROTOCOL, false);
		return;
	}
	if (msg.member_id.len > 0) {
		join_with_member_id(groups, g, req, &msg);
		return;
	}
	struct member *old = member_find_instance(g, msg.group_instance_id);
	if (old) {
		join_static_return(groups, g, old, req, &msg);
		return;
	}
	if (!accepts_new_member(req, g)) {
		join_respond(req, NULL, NULL, TL_ERR_GROUP_MAX_SIZE_REACHED, false);
		return;
	}
	if (version >= 4 && msg.group_instance_id.len < 0) {
		join_require_member_id(g, req, &msg);
		return;
	}
	join_new_member(groups, g, req, &msg, member_id_new(req->header.client_id));
}

/* ---- SyncGroup ---- */

static tl_err member_check(struct group *g, struct member *m, int32_t generation)
{
	if (!g || !m)
		return TL_ERR_UNKNOWN_MEMBER_ID;
	if (generation != g->generation_id)
		return TL_ERR_ILLEGAL_GENERATION;
	return TL_OK;
}

static void sync_complete(struct tl_groups *groups, struct group *g,
			  const struct tl_sync_group_request *msg)
{
	for (int32_t i = 0; i < msg->assignments_count; i++) {
		struct member *target = member_find(g, msg->assignments[i].member_id);
		struct tl_bytes a = msg->assignments[i].assignment;
		if (!target || a.len < 0)
			continue;
		free(target->assignment);
		target->assignment = bytes_dup(a, &target->assignment_len);
	}
	group_set_state(g, GROUP_STABLE);
	tl_info("group: stable group=%s generation=%d members=%d", g->id.ptr, g->generation_id,
		g->member_count);
	group_persist(groups, g);
	int64_t now = tl_mono_ms();
	for (struct member *x = g->members; x; x = x->next) {
		struct tl_request *parked = unpark(&x->sync);
		if (parked) {
			x->expires_ms = now + x->session_timeout_ms;
			sync_respond(parked, g, x, TL_OK);
		}
	}
}

void tl_handle_sync_group(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	struct tl_sync_group_request msg;
	if (tl_sync_group_request_decode(body, req->header.api_version, &req->arena, &msg) !=
	    TL_OK) {
		tl_request_reject(req, "malformed SyncGroup request");
		return;
	}
	tl_err err = tl_authorize_group(req, TL_ACL_OP_READ, msg.group_id)
			     ? coordinator_error(groups, msg.group_id)
			     : TL_ERR_GROUP_AUTHORIZATION_FAILED;
	if (err != TL_OK) {
		sync_respond(req, NULL, NULL, err);
		return;
	}
	struct group *g = group_find(groups, msg.group_id);
	struct member *m = member_lookup(g, msg.member_id, msg.group_instance_id, &err);
	if (err == TL_OK)
		err = member_check(g, m, msg.generation_id);
	if (err == TL_OK &&
	    ((msg.protocol_type.len >= 0 && !ostr_eq(g->protocol_type, msg.protocol_type)) ||
	     (msg.protocol_name.len >= 0 && !ostr_eq(g->protocol_name, msg.protocol_name))))
		err = TL_ERR_INCONSISTENT_GROUP_PROTOCOL;
	if (err == TL_OK && g->state == GROUP_PREPARING_REBALANCE)
		err = TL_ERR_REBALANCE_IN_PROGRESS;
	if (err == TL_OK && g->state == GROUP_EMPTY)
		err = TL_ERR_UNKNOWN_MEMBER_ID;
	if (err != TL_OK) {
		sync_respond(req, g, m, err);
		return;
	}
	m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
	if (g->state == GROUP_STABLE) {
		sync_respond(req, g, m, TL_OK);
		return;
	}
	TL_ASSERT(g->state == GROUP_COMPLETING_REBALANCE);
	if (m->sync)
		sync_respond(unpark(&m->sync), g, m, TL_ERR_REBALANCE_IN_PROGRESS);
	park(req, g, m, false);
	if (ostr_eq(g->leader_id, ostr_view(m->id)))
		sync_complete(groups, g, &msg);
}

/* ---- Heartbeat, LeaveGroup ---- */

void tl_handle_heartbeat(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	struct tl_heartbeat_request msg;
	if (tl_heartbeat_request_decode(body, req->header.api_version, &req->arena, &msg) !=
	    TL_OK) {
		tl_request_reject(req, "malformed Heartbeat request");
		return;
	}
	tl_err err = tl_authorize_group(req, TL_ACL_OP_READ, msg.group_id)
			     ? coordinator_error(groups, msg.group_id)
			     : TL_ERR_GROUP_AUTHORIZATION_FAILED;
	struct group *g = err == TL_OK ? group_find(groups, msg.group_id) : NULL;
	struct member *m = NULL;
	if (err == TL_OK)
		m = member_lookup(g, msg.member_id, msg.group_instance_id, &err);
	if (err == TL_OK)
		err = member_check(g, m, msg.generation_id);
	if (err == TL_OK) {
		m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
		if (g->state == GROUP_PREPARING_REBALANCE)
			err = TL_ERR_REBALANCE_IN_PROGRESS;
		else if (g->state == GROUP_EMPTY)
			err = TL_ERR_UNKNOWN_MEMBER_ID;
	} else if (m && g->state == GROUP_PREPARING_REBALANCE) {
		/* An old generation's member must rejoin, not fail. */
		m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
		err = TL_ERR_REBALANCE_IN_PROGRESS;
	}
	struct tl_heartbeat_response resp;
	tl_heartbeat_response_defaults(&resp);
	resp.error_code = (int16_t)err;
	tl_response_begin(req);
	tl_heartbeat_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

void tl_handle_leave_group(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct tl_leave_group_request msg;
	if (tl_leave_group_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed LeaveGroup request");
		return;
	}
	struct tl_leave_group_response resp;
	tl_leave_group_response_defaults(&resp);
	tl_err cerr = tl_authorize_group(req, TL_ACL_OP_READ, msg.group_id)
			      ? coordinator_error(groups, msg.group_id)
			      : TL_ERR_GROUP_AUTHORIZATION_FAILED;
	struct group *g = group_find(groups, msg.group_id);
	if (cerr != TL_OK) {
		resp.error_code = (int16_t)cerr;
	} else if (version < 3) {
		struct member *m = g ? member_find(g, msg.member_id) : NULL;
		if (!m)
			resp.error_code = (int16_t)TL_ERR_UNKNOWN_MEMBER_ID;
		else
			member_leave(groups, g, m, "member left");
	} else {
		resp.members_count = msg.members_count;
		resp.members = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.members_count, 0),
					      sizeof(*resp.members));
		if (msg.members_count > 0 && !resp.members) {
			tl_request_reject(req, "LeaveGroup request too large");
			return;
		}
		if (!g)
			resp.error_code = (int16_t)TL_ERR_UNKNOWN_MEMBER_ID;
		for (int32_t i = 0; i < msg.members_count && g; i++) {
			const struct tl_leave_group_request_member_identity *in = &msg.members[i];
			struct tl_leave_group_response_member_response *r = &resp.members[i];
			tl_leave_group_response_member_response_defaults(r);
			r->member_id = in->member_id;
			r->group_instance_id = in->group_instance_id;
			tl_err err = TL_OK;
			struct member *m;
			if (in->member_id.len > 0)
				m = member_lookup(g, in->member_id, in->group_instance_id, &err);
			else
				m = member_find_instance(g, in->group_instance_id);
			if (!m)
				r->error_code =
					(int16_t)(err != TL_OK ? err : TL_ERR_UNKNOWN_MEMBER_ID);
			else
				member_leave(groups, g, m, "member left");
		}
		if (!g)
			resp.members_count = 0;
	}
	tl_response_begin(req);
	tl_leave_group_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- OffsetCommit ---- */

static tl_err commit_check(struct group *g, const struct tl_offset_commit_request *msg)
{
	if (msg->group_id.len <= 0)
		return TL_ERR_INVALID_GROUP_ID;
	if (!g)
		return msg->generation_id_or_member_epoch < 0 ? TL_OK : TL_ERR_ILLEGAL_GENERATION;
	if (msg->generation_id_or_member_epoch < 0 && g->state == GROUP_EMPTY)
		return TL_OK; /* a commit by an admin or a standalone consumer */
	tl_err err;
	struct member *m = member_lookup(g, msg->member_id, msg->group_instance_id, &err);
	if (!m)
		return err;
	if (msg->generation_id_or_member_epoch != g->generation_id)
		return TL_ERR_ILLEGAL_GENERATION;
	if (g->state == GROUP_COMPLETING_REBALANCE)
		return TL_ERR_REBALANCE_IN_PROGRESS;
	m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
	return TL_OK;
}

/* Whether one partition of an OffsetCommit or TxnOffsetCommit may be stored: it must
 * exist, hosted by this broker or not (a coordinator stores offsets of any partition). */
static tl_err commit_partition_check(struct tl_broker *broker, struct tl_str topic,
				     int32_t partition, struct tl_str metadata)
{
	if (!tl_partition_find_any(broker, topic, partition))
		return TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	if (metadata.len > broker->config.offset_metadata_max_bytes)
		return TL_ERR_OFFSET_METADATA_TOO_LARGE;
	return TL_OK;
}

struct commit_state {
	struct tl_request *req;
	struct tl_offset_commit_request msg;
	struct tl_offset_commit_response resp;
	struct group *group; /* held while the write is in flight */
	int64_t commit_ms;
	uint64_t seq; /* the batch's place in the offsets log (tl_groups.append_seq) */
};

static void commit_respond(struct tl_request *req, struct commit_state *st)
{
	tl_response_begin(req);
	tl_offset_commit_response_encode(&req->response, req->header.api_version, &st->resp);
	tl_response_end(req);
}

/* For every partition the commit accepted (error_code 0 so far): sets @set_error, or
 * with TL_OK stores the offset in memory (unless the group died meanwhile). */
static void commit_each_accepted(struct commit_state *st, tl_err set_error)
{
	for (int32_t t = 0; t < st->msg.topics_count; t++) {
		const struct tl_offset_commit_request_offset_commit_request_topic *in =
			&st->msg.topics[t];
		struct tl_offset_commit_response_offset_commit_response_topic *out =
			&st->resp.topics[t];
		for (int32_t i = 0; i < in->partitions_count; i++) {
			const struct tl_offset_commit_request_offset_commit_request_partition *p =
				&in->partitions[i];
			struct tl_offset_commit_response_offset_commit_response_partition *r =
				&out->partitions[i];
			if (r->error_code != 0)
				continue;
			if (set_error != TL_OK)
				r->error_code = (int16_t)set_error;
			else if (st->group->state != GROUP_DEAD)
				offset_store(st->group, in->name, p->partition_index,
					     p->committed_offset, p->committed_leader_epoch,
					     p->committed_metadata, st->commit_ms, st->seq);
		}
	}
}

/* The commit's batch is durable (or its log failed): now memory learns the offsets. */
static void commit_durable(void *ctx, tl_err err)
{
	struct commit_state *st = ctx;
	struct tl_request *req = st->req;
	commit_each_accepted(st, store_error(err));
	group_put(st->group);
	request_wait_done(req);
	if (!request_is_orphan(req))
		commit_respond(req, st);
}

/* Fills the response, with an error for each partition that cannot be committed, and
 * adds a record for each one that can. */
static bool commit_prepare(struct tl_request *req, struct commit_state *st, tl_err group_err,
			   struct tl_group_store_batch *batch)
{
	struct tl_broker *broker = req->conn->broker;
	const struct tl_offset_commit_request *msg = &st->msg;
	struct tl_offset_commit_response *resp = &st->resp;
	resp->topics_count = msg->topics_count;
	resp->topics = tl_arena_array(&req->arena, (size_t)TL_MAX(msg->topics_count, 0),
				      sizeof(*resp->topics));
	if (msg->topics_count > 0 && !resp->topics)
		return false;
	struct tl_group_record rec = {.type = TL_GROUP_RECORD_OFFSET, .group_id = msg->group_id};
	rec.commit_ms = st->commit_ms;
	for (int32_t t = 0; t < msg->topics_count; t++) {
		const struct tl_offset_commit_request_offset_commit_request_topic *in =
			&msg->topics[t];
		struct tl_offset_commit_response_offset_commit_response_topic *out =
			&resp->topics[t];
		tl_offset_commit_response_offset_commit_response_topic_defaults(out);
		out->name = in->name;
		out->partitions_count = in->partitions_count;
		out->partitions =
			tl_arena_array(&req->arena, (size_t)TL_MAX(in->partitions_count, 0),
				       sizeof(*out->partitions));
		if (in->partitions_count > 0 && !out->partitions)
			return false;
		tl_err topic_err =
			group_err == TL_OK && !tl_authorize_topic(req, TL_ACL_OP_READ, in->name)
				? TL_ERR_TOPIC_AUTHORIZATION_FAILED
				: group_err;
		for (int32_t i = 0; i < in->partitions_count; i++) {
			const struct tl_offset_commit_request_offset_commit_request_partition *p =
				&in->partitions[i];
			struct tl_offset_commit_response_offset_commit_response_partition *r =
				&out->partitions[i];
			tl_offset_commit_response_offset_commit_response_partition_defaults(r);
			r->partition_index = p->partition_index;
			tl_err err = topic_err;
			if (err == TL_OK)
				err = commit_partition_check(broker, in->name, p->partition_index,
							     p->committed_metadata);
			r->error_code = (int16_t)err;
			if (err != TL_OK)
				continue;
			rec.topic = in->name;
			rec.partition = p->partition_index;
			rec.offset = p->committed_offset;
			rec.leader_epoch = p->committed_leader_epoch;
			rec.metadata = p->committed_metadata;
			tl_group_store_batch_add(batch, &rec);
		}
	}
	return true;
}

void tl_handle_offset_commit(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct commit_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st || tl_offset_commit_request_decode(body, version, &req->arena, &st->msg) != TL_OK) {
		tl_request_reject(req, "malformed OffsetCommit request");
		return;
	}
	st->req = req;
	st->commit_ms = tl_wall_ms();
	tl_offset_commit_response_defaults(&st->resp);
	struct group *g = st->msg.group_id.len > 0 ? group_find(groups, st->msg.group_id) : NULL;
	tl_err group_err =
		st->msg.group_id.len > 0 ? coordinator_error(groups, st->msg.group_id) : TL_OK;
	/* Kafka: Read on the group first, then Read on each topic (commit_prepare). */
	if (!tl_authorize_group(req, TL_ACL_OP_READ, st->msg.group_id))
		group_err = TL_ERR_GROUP_AUTHORIZATION_FAILED;
	if (group_err == TL_OK)
		group_err = commit_check(g, &st->msg);
	if (group_err == TL_OK && !g)
		g = group_create(groups, st->msg.group_id);
	struct tl_group_store_batch batch;
	tl_group_store_batch_init(&batch);
	if (!commit_prepare(req, st, group_err, &batch)) {
		tl_group_store_batch_deinit(&batch);
		tl_request_reject(req, "OffsetCommit request too large");
		return;
	}
	tl_err err = TL_OK;
	st->seq = ++groups->append_seq;
	if (tl_group_store_batch_count(&batch) > 0)
		err = tl_group_store_write(groups->store, st->msg.group_id, &batch, commit_durable,
					   st);
	bool waiting = tl_group_store_batch_count(&batch) > 0 && err == TL_OK;
	tl_group_store_batch_deinit(&batch);
	if (waiting) {
		/* Answer once the batch is durable: a committed offset survives a crash. */
		st->group = g;
		group_hold(g);
		req->waits++;
		return;
	}
	if (err != TL_OK) {
		tl_warn("group: cannot store committed offsets group=%.*s err=%s",
			st->msg.group_id.len, st->msg.group_id.ptr, tl_err_name(err));
		st->group = g;
		commit_each_accepted(st, store_error(err));
	}
	commit_respond(req, st);
}

/* ---- TxnOffsetCommit ---- */

struct txn_commit_state {
	struct tl_request *req;
	struct tl_txn_offset_commit_request msg;
	struct tl_txn_offset_commit_response resp;
	struct group *group; /* held while the write is in flight */
	int64_t commit_ms;
	uint64_t seq; /* as commit_state's */
};

static void txn_commit_respond(struct tl_request *req, struct txn_commit_state *st)
{
	tl_response_begin(req);
	tl_txn_offset_commit_response_encode(&req->response, req->header.api_version, &st->resp);
	tl_response_end(req);
}

/* For each partition accepted so far: sets @set_error, or stages the offset in the
 * producer's transaction (visible once it commits). */
static void txn_commit_each_accepted(struct txn_commit_state *st, tl_err set_error)
{
	for (int32_t t = 0; t < st->msg.topics_count; t++) {
		const struct tl_txn_offset_commit_request_txn_offset_commit_request_topic *in =
			&st->msg.topics[t];
		for (int32_t i = 0; i < in->partitions_count; i++) {
			const struct
				tl_txn_offset_commit_request_txn_offset_commit_request_partition
					*p = &in->partitions[i];
			struct tl_txn_offset_commit_response_txn_offset_commit_response_partition
				*r = &st->resp.topics[t].partitions[i];
			if (r->error_code != 0)
				continue;
			if (set_error != TL_OK)
				r->error_code = (int16_t)set_error;
			else if (st->group->state != GROUP_DEAD)
				txn_offsets_add(st->group, st->msg.producer_id, in->name,
						p->partition_index, p->committed_offset,
						p->committed_leader_epoch, p->committed_metadata,
						st->commit_ms, st->seq);
		}
	}
}

static void txn_commit_durable(void *ctx, tl_err err)
{
	struct txn_commit_state *st = ctx;
	struct tl_request *req = st->req;
	txn_commit_each_accepted(st, store_error(err));
	group_put(st->group);
	request_wait_done(req);
	if (!request_is_orphan(req))
		txn_commit_respond(req, st);
}

/* The group-side check of KIP-447 (v3+), as Kafka's coordinator (3.x,
 * GroupCoordinator.doTxnCommitOffsets) makes it: a static member's instance id held by
 * another member id is fenced; a named member must be one this coordinator knows - also
 * when it holds no such group or an Empty one: that member joined elsewhere (a
 * coordinator since replaced, whose membership record never reached this one), and its
 * consumer may still read that coordinator's offsets; a generation (>= 0) must be the
 * group's. A producer outside the group (no member id, generation -1) is not checked. */
static tl_err txn_commit_check(struct tl_request *req, struct group *g,
			       const struct tl_txn_offset_commit_request *msg)
{
	tl_err err = tl_txn_verify_offsets(req->conn->broker->txns, msg->transactional_id,
					   msg->producer_id, msg->producer_epoch, msg->group_id);
	if (err != TL_OK || req->header.api_version < 3)
		return err;
	const struct member *m = member_lookup(g, msg->member_id, msg->group_instance_id, &err);
	if (err == TL_ERR_FENCED_INSTANCE_ID || (!m && msg->member_id.len > 0))
		return err;
	int32_t generation = g ? g->generation_id : 0; /* Kafka's new group starts at 0 */
	if (msg->generation_id >= 0 && msg->generation_id != generation)
		return TL_ERR_ILLEGAL_GENERATION;
	return TL_OK;
}

void tl_handle_txn_offset_commit(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	struct tl_broker *broker = req->conn->broker;
	struct txn_commit_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st || tl_txn_offset_commit_request_decode(body, req->header.api_version, &req->arena,
						       &st->msg) != TL_OK) {
		tl_request_reject(req, "malformed TxnOffsetCommit request");
		return;
	}
	const struct tl_txn_offset_commit_request *msg = &st->msg;
	st->req = req;
	st->commit_ms = tl_wall_ms();
	tl_txn_offset_commit_response_defaults(&st->resp);
	struct group *g = msg->group_id.len > 0 ? group_find(groups, msg->group_id) : NULL;
	tl_err group_err = msg->group_id.len > 0 ? coordinator_error(groups, msg->group_id)
						 : TL_ERR_INVALID_GROUP_ID;
	/* Kafka: Write on the transactional id, Read on the group, Read on each topic. */
	if (!tl_authorize_txn(req, TL_ACL_OP_WRITE, msg->transactional_id))
		group_err = TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	else if (!tl_authorize_group(req, TL_ACL_OP_READ, msg->group_id))
		group_err = TL_ERR_GROUP_AUTHORIZATION_FAILED;
	if (group_err == TL_OK)
		group_err = txn_commit_check(req, g, msg);
	if (group_err == TL_OK && !g)
		g = group_create(groups, msg->group_id);
	struct tl_txn_offset_commit_response *resp = &st->resp;
	resp->topics_count = TL_MAX(msg->topics_count, 0);
	resp->topics =
		tl_arena_array(&req->arena, (size_t)resp->topics_count, sizeof(*resp->topics));
	struct tl_group_store_batch batch;
	tl_group_store_batch_init(&batch);
	tl_group_store_batch_set_transactional(&batch, msg->producer_id, msg->producer_epoch);
	struct tl_group_record rec = {.type = TL_GROUP_RECORD_OFFSET, .group_id = msg->group_id};
	rec.commit_ms = st->commit_ms;
	for (int32_t t = 0; t < resp->topics_count && resp->topics; t++) {
		const struct tl_txn_offset_commit_request_txn_offset_commit_request_topic *in =
			&msg->topics[t];
		struct tl_txn_offset_commit_response_txn_offset_commit_response_topic *out =
			&resp->topics[t];
		tl_txn_offset_commit_response_txn_offset_commit_response_topic_defaults(out);
		out->name = in->name;
		out->partitions_count = TL_MAX(in->partitions_count, 0);
		out->partitions = tl_arena_array(&req->arena, (size_t)out->partitions_count,
						 sizeof(*out->partitions));
		tl_err topic_err =
			group_err == TL_OK && !tl_authorize_topic(req, TL_ACL_OP_READ, in->name)
				? TL_ERR_TOPIC_AUTHORIZATION_FAILED
				: group_err;
		for (int32_t i = 0; i < out->partitions_count && out->partitions; i++) {
			const struct
				tl_txn_offset_commit_request_txn_offset_commit_request_partition
					*p = &in->partitions[i];
			out->partitions[i].partition_index = p->partition_index;
			tl_err err = topic_err;
			if (err == TL_OK)
				err = commit_partition_check(broker, in->name, p->partition_index,
							     p->committed_metadata);
			out->partitions[i].error_code = (int16_t)err;
			if (err != TL_OK)
				continue;
			rec.topic = in->name;
			rec.partition = p->partition_index;
			rec.offset = p->committed_offset;
			rec.leader_epoch = p->committed_leader_epoch;
			rec.metadata = p->committed_metadata;
			tl_group_store_batch_add(&batch, &rec);
		}
	}
	tl_err err = TL_OK;
	bool writing = tl_group_store_batch_count(&batch) > 0;
	st->seq = ++groups->append_seq;
	if (writing)
		err = tl_group_store_write(groups->store, msg->group_id, &batch, txn_commit_durable,
					   st);
	tl_group_store_batch_deinit(&batch);
	if (writing && err == TL_OK) {
		/* Answer once durable: the COMMIT marker that follows must find it. */
		st->group = g;
		group_hold(g);
		req->waits++;
		return;
	}
	if (err != TL_OK) {
		st->group = g;
		txn_commit_each_accepted(st, store_error(err));
	}
	txn_commit_respond(req, st);
}

void tl_groups_txn_complete_partition(struct tl_groups *groups, int32_t partition,
				      int64_t producer_id, bool commit)
{
	for (int b = 0; b < GROUP_BUCKETS; b++)
		for (struct group *g = groups->buckets[b]; g; g = g->next)
			if (group_partition(groups, ostr_view(g->id)) == partition)
				txn_offsets_end(g, producer_id, commit);
}

/* ---- OffsetFetch ---- */

/* Fills one partition's committed offset (-1 when none, as Kafka answers). */
static void fetch_one(struct group *g, struct tl_str topic, int32_t partition, int64_t *offset,
		      int32_t *epoch, struct tl_str *metadata)
{
	struct offset_entry *e = g ? *offset_slot(g, topic, partition) : NULL;
	*offset = e ? e->offset : -1;
	*epoch = e ? e->leader_epoch : -1;
	*metadata = e ? ostr_view(e->metadata) : tl_str_of("");
}

/* Topic names with committed offsets in @g, for a fetch of "all topics". */
static int32_t offset_topics(struct tl_request *req, struct group *g, struct tl_str **out)
{
	*out = NULL;
	if (!g || g->offset_count == 0)
		return 0;
	struct tl_str *names = tl_arena_array(&req->arena, (size_t)g->offset_count, sizeof(*names));
	TL_ASSERT(names);
	int32_t n = 0;
	for (int b = 0; b < OFFSET_BUCKETS; b++)
		for (struct offset_entry *e = g->offsets[b]; e; e = e->next) {
			bool seen = false;
			for (int32_t i = 0; i < n && !seen; i++)
				seen = ostr_eq(e->topic, names[i]);
			if (!seen)
				names[n++] = ostr_view(e->topic);
		}
	*out = names;
	return n;
}

static int32_t offset_partitions(struct tl_request *req, struct group *g, struct tl_str topic,
				 int32_t **out)
{
	int32_t *parts =
		tl_arena_array(&req->arena, (size_t)TL_MAX(g->offset_count, 1), sizeof(*parts));
	TL_ASSERT(parts);
	int32_t n = 0;
	for (int b = 0; b < OFFSET_BUCKETS; b++)
		for (struct offset_entry *e = g->offsets[b]; e; e = e->next)
			if (ostr_eq(e->topic, topic))
				parts[n++] = e->partition;
	*out = parts;
	return n;
}

/* Has a producer's transaction staged an offset for @topic/@partition, not yet decided? */
static bool txn_offset_pending(const struct group *g, struct tl_str topic, int32_t partition)
{
	for (const struct txn_offsets *t = g ? g->txn_offsets : NULL; t; t = t->next)
		for (const struct offset_entry *e = t->entries; e; e = e->next)
			if (e->partition == partition && ostr_eq(e->topic, topic))
				return true;
	return false;
}

/* OffsetFetch for one group, in the v8+ shape (older versions are copied out of it).
 * With @require_stable (v7+, read_committed consumers), a partition whose offset a
 * transaction has staged but not yet decided answers UNSTABLE_OFFSET_COMMIT (KIP-447),
 * which clients retry: the answer would otherwise be the offset before the commit. */
static void offset_fetch_group(struct tl_request *req, struct tl_str group_id, bool require_stable,
			       int32_t topic_count, const struct tl_str *topic_names,
			       int32_t *const *topic_parts, const int32_t *topic_part_counts,
			       struct tl_offset_fetch_response_offset_fetch_response_group *out)
{
	struct group *g = group_find(req_groups(req), group_id);
	tl_offset_fetch_response_offset_fetch_response_group_defaults(out);
	out->group_id = group_id;
	/* Kafka: Describe on the group, then on each topic: named ones answer
	 * TOPIC_AUTHORIZATION_FAILED, the others are left out of an "all" answer. */
	tl_err cerr = tl_authorize_group(req, TL_ACL_OP_DESCRIBE, group_id)
			      ? coordinator_error(req_groups(req), group_id)
			      : TL_ERR_GROUP_AUTHORIZATION_FAILED;
	if (cerr != TL_OK) {
		out->error_code = (int16_t)cerr;
		out->topics_count = 0;
		return;
	}
	struct tl_str *all_names = NULL;
	bool all = topic_count < 0;
	if (all)
		topic_count = offset_topics(req, g, &all_names);
	out->topics_count = topic_count;
	out->topics =
		tl_arena_array(&req->arena, (size_t)TL_MAX(topic_count, 0), sizeof(*out->topics));
	int32_t kept = 0;
	for (int32_t t = 0; t < topic_count; t++) {
		struct tl_str name = all ? all_names[t] : topic_names[t];
		bool topic_ok = all ? tl_authorize_quiet(req, TL_ACL_OP_DESCRIBE,
							 TL_ACL_RESOURCE_TOPIC, name)
				    : tl_authorize_topic(req, TL_ACL_OP_DESCRIBE, name);
		if (all && !topic_ok)
			continue;
		struct tl_offset_fetch_response_offset_fetch_response_topics *ot =
			&out->topics[kept++];
		tl_offset_fetch_response_offset_fetch_response_topics_defaults(ot);
		ot->name = name;
		int32_t *parts;
		int32_t count;
		if (all) {
			count = offset_partitions(req, g, ot->name, &parts);
		} else {
			parts = topic_parts[t];
			count = topic_part_counts[t];
		}
		ot->partitions_count = count;
		ot->partitions = tl_arena_array(&req->arena, (size_t)TL_MAX(count, 0),
						sizeof(*ot->partitions));
		for (int32_t i = 0; i < count; i++) {
			struct tl_offset_fetch_response_offset_fetch_response_partitions *op =
				&ot->partitions[i];
			tl_offset_fetch_response_offset_fetch_response_partitions_defaults(op);
			op->partition_index = parts[i];
			if (!topic_ok) {
				op->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				op->committed_offset = -1;
				continue;
			}
			fetch_one(g, ot->name, parts[i], &op->committed_offset,
				  &op->committed_leader_epoch, &op->metadata);
			if (require_stable && txn_offset_pending(g, ot->name, parts[i])) {
				op->error_code = (int16_t)TL_ERR_UNSTABLE_OFFSET_COMMIT;
				op->committed_offset = -1;
			}
		}
	}
	out->topics_count = kept;
}

/* Copies the v8 shape of one group's answer into the pre-v8 response. */
static void
offset_fetch_flatten(struct tl_request *req,
		     const struct tl_offset_fetch_response_offset_fetch_response_group *group,
		     struct tl_offset_fetch_response *resp)
{
	resp->error_code = group->error_code; /* v2+; v0-1 clients see no partitions */
	resp->topics_count = group->topics_count;
	resp->topics = tl_arena_array(&req->arena, (size_t)TL_MAX(group->topics_count, 0),
				      sizeof(*resp->topics));
	for (int32_t t = 0; t < group->topics_count; t++) {
		struct tl_offset_fetch_response_offset_fetch_response_topic *ot = &resp->topics[t];
		tl_offset_fetch_response_offset_fetch_response_topic_defaults(ot);
		ot->name = group->topics[t].name;
		ot->partitions_count = group->topics[t].partitions_count;
		ot->partitions =
			tl_arena_array(&req->arena, (size_t)TL_MAX(ot->partitions_count, 0),
				       sizeof(*ot->partitions));
		for (int32_t i = 0; i < ot->partitions_count; i++) {
			struct tl_offset_fetch_response_offset_fetch_response_partition *op =
				&ot->partitions[i];
			const struct tl_offset_fetch_response_offset_fetch_response_partitions
				*src = &group->topics[t].partitions[i];
			tl_offset_fetch_response_offset_fetch_response_partition_defaults(op);
			op->partition_index = src->partition_index;
			op->committed_offset = src->committed_offset;
			op->committed_leader_epoch = src->committed_leader_epoch;
			op->metadata = src->metadata;
			op->error_code = src->error_code;
		}
	}
}

void tl_handle_offset_fetch(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	struct tl_offset_fetch_request msg;
	if (tl_offset_fetch_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed OffsetFetch request");
		return;
	}
	struct tl_offset_fetch_response resp;
	tl_offset_fetch_response_defaults(&resp);
	if (version >= 8) {
		resp.groups_count = msg.groups_count;
		resp.groups = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.groups_count, 0),
					     sizeof(*resp.groups));
		for (int32_t gi = 0; gi < msg.groups_count; gi++) {
			const struct tl_offset_fetch_request_offset_fetch_request_group *in =
				&msg.groups[gi];
			int32_t n = in->topics_count;
			struct tl_str *names =
				tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*names));
			int32_t **parts =
				tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*parts));
			int32_t *counts =
				tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*counts));
			if (!names || !parts || !counts) {
				tl_request_reject(req, "OffsetFetch request too large");
				return;
			}
			for (int32_t t = 0; t < n; t++) {
				names[t] = in->topics[t].name;
				parts[t] = in->topics[t].partition_indexes;
				counts[t] = in->topics[t].partition_indexes_count;
			}
			offset_fetch_group(req, in->group_id, msg.require_stable, n, names, parts,
					   counts, &resp.groups[gi]);
		}
	} else {
		int32_t n = msg.topics_count;
		struct tl_str *names =
			tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*names));
		int32_t **parts = tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*parts));
		int32_t *counts =
			tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*counts));
		struct tl_offset_fetch_response_offset_fetch_response_group group;
		if (!names || !parts || !counts) {
			tl_request_reject(req, "OffsetFetch request too large");
			return;
		}
		for (int32_t t = 0; t < n; t++) {
			names[t] = msg.topics[t].name;
			parts[t] = msg.topics[t].partition_indexes;
			counts[t] = msg.topics[t].partition_indexes_count;
		}
		offset_fetch_group(req, msg.group_id, version >= 7 && msg.require_stable, n, names,
				   parts, counts, &group);
		offset_fetch_flatten(req, &group, &resp);
	}
	tl_response_begin(req);
	tl_offset_fetch_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- ListGroups, DescribeGroups ---- */

static bool state_in_filter(const struct tl_list_groups_request *msg, enum group_state state)
{
	if (msg->states_filter_count <= 0)
		return true;
	for (int32_t i = 0; i < msg->states_filter_count; i++)
		if (tl_str_eq_c(msg->states_filter[i], state_names[state]))
			return true;
	return false;
}

void tl_handle_list_groups(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct tl_list_groups_request msg;
	if (tl_list_groups_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed ListGroups request");
		return;
	}
	struct tl_list_groups_response resp;
	tl_list_groups_response_defaults(&resp);
	resp.groups =
		tl_arena_array(&req->arena, (size_t)TL_MAX(groups->count, 1), sizeof(*resp.groups));
	TL_ASSERT(resp.groups);
	int32_t n = 0;
	/* The groups held here may have moved to another coordinator meanwhile (see
	 * coordinator_error): an admin client merging every broker's list would show them
	 * twice. Kafka answers COORDINATOR_NOT_AVAILABLE while its coordinator is inactive;
	 * the client retries. */
	bool listable = !groups->broker->cluster ||
			tl_cluster_leaderships_current(groups->broker->cluster, tl_mono_ms());
	if (!listable)
		resp.error_code = TL_ERR_COORDINATOR_NOT_AVAILABLE;
	bool classic_ok = msg.types_filter_count <= 0;
	for (int32_t i = 0; i < msg.types_filter_count; i++)
		classic_ok |= tl_str_eq_c(msg.types_filter[i], "classic");
	/* Kafka: Describe on the Cluster lists every group, else those the principal may
	 * Describe (silently). */
	bool all_ok = tl_authorize_quiet(req, TL_ACL_OP_DESCRIBE, TL_ACL_RESOURCE_CLUSTER,
					 tl_str_of(TL_ACL_CLUSTER_NAME));
	for (int b = 0; b < GROUP_BUCKETS && classic_ok && listable; b++)
		for (struct group *g = groups->buckets[b]; g; g = g->next) {
			if (!state_in_filter(&msg, g->state))
				continue;
			if (!all_ok && !tl_authorize_quiet(req, TL_ACL_OP_DESCRIBE,
							   TL_ACL_RESOURCE_GROUP, ostr_view(g->id)))
				continue;
			struct tl_list_groups_response_listed_group *lg = &resp.groups[n++];
			tl_list_groups_response_listed_group_defaults(lg);
			lg->group_id = ostr_view(g->id);
			lg->protocol_type = g->protocol_type.len >= 0 ? ostr_view(g->protocol_type)
								      : tl_str_of("");
			lg->group_state = tl_str_of(state_names[g->state]);
			lg->group_type = tl_str_of("classic");
		}
	resp.groups_count = n;
	tl_response_begin(req);
	tl_list_groups_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

static void describe_group(struct tl_request *req, struct group *g,
			   struct tl_describe_groups_response_described_group *out)
{
	out->group_state = tl_str_of(state_names[g->state]);
	out->protocol_type =
		g->protocol_type.len >= 0 ? ostr_view(g->protocol_type) : tl_str_of("");
	/* Kafka shows the protocol, metadata and assignments only of a Stable group. */
	bool stable = g->state == GROUP_STABLE;
	out->protocol_data =
		stable && g->protocol_name.len >= 0 ? ostr_view(g->protocol_name) : tl_str_of("");
	out->members_count = g->member_count;
	out->members = tl_arena_array(&req->arena, (size_t)TL_MAX(g->member_count, 1),
				      sizeof(*out->members));
	TL_ASSERT(out->members);
	int32_t n = 0;
	for (struct member *m = g->members; m; m = m->next) {
		struct tl_describe_groups_response_described_group_member *dm = &out->members[n++];
		tl_describe_groups_response_described_group_member_defaults(dm);
		dm->member_id = ostr_view(m->id);
		dm->group_instance_id = ostr_view(m->instance_id);
		dm->client_id = ostr_view(m->client_id);
		dm->client_host = ostr_view(m->client_host);
		dm->member_metadata.ptr = (const uint8_t *)"";
		dm->member_metadata.len = 0;
		dm->member_assignment.ptr = (const uint8_t *)"";
		dm->member_assignment.len = 0;
		const struct protocol *p = stable ? member_protocol(m, g->protocol_name) : NULL;
		if (p) {
			dm->member_metadata.ptr = p->metadata;
			dm->member_metadata.len = p->metadata_len;
		}
		if (stable && m->assignment) {
			dm->member_assignment.ptr = m->assignment;
			dm->member_assignment.len = m->assignment_len;
		}
	}
}

void tl_handle_describe_groups(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct tl_describe_groups_request msg;
	if (tl_describe_groups_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DescribeGroups request");
		return;
	}
	struct tl_describe_groups_response resp;
	tl_describe_groups_response_defaults(&resp);
	resp.groups_count = msg.groups_count;
	resp.groups = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.groups_count, 0),
				     sizeof(*resp.groups));
	if (msg.groups_count > 0 && !resp.groups) {
		tl_request_reject(req, "DescribeGroups request too large");
		return;
	}
	for (int32_t i = 0; i < msg.groups_count; i++) {
		struct tl_describe_groups_response_described_group *out = &resp.groups[i];
		tl_describe_groups_response_described_group_defaults(out);
		out->group_id = msg.groups[i];
		tl_err cerr = tl_authorize_group(req, TL_ACL_OP_DESCRIBE, msg.groups[i])
				      ? coordinator_error(groups, msg.groups[i])
				      : TL_ERR_GROUP_AUTHORIZATION_FAILED;
		if (cerr != TL_OK) {
			out->error_code = (int16_t)cerr;
			out->group_state = tl_str_of("");
			out->protocol_type = tl_str_of("");
			out->protocol_data = tl_str_of("");
			out->members_count = 0;
			continue;
		}
		if (msg.include_authorized_operations)
			out->authorized_operations =
				tl_authorized_operations(req, TL_ACL_RESOURCE_GROUP, msg.groups[i]);
		struct group *g = group_find(groups, msg.groups[i]);
		if (!g) {
			/* Kafka describes an unknown group as Dead, without an error. */
			out->group_state = tl_str_of("Dead");
			out->protocol_type = tl_str_of("");
			out->protocol_data = tl_str_of("");
			out->members_count = 0;
			continue;
		}
		describe_group(req, g, out);
	}
	tl_response_begin(req);
	tl_describe_groups_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- DeleteGroups ---- */

struct delete_state {
	struct tl_delete_groups_response resp;
};

struct delete_wait {
	struct tl_request *req;
	struct tl_delete_groups_response_deletable_group_result *result;
};

static void delete_respond(struct tl_request *req)
{
	struct delete_state *st = req->state_data;
	tl_response_begin(req);
	tl_delete_groups_response_encode(&req->response, req->header.api_version, &st->resp);
	tl_response_end(req);
}

static void delete_durable(void *ctx, tl_err err)
{
	struct delete_wait *wait = ctx;
	struct tl_request *req = wait->req;
	if (err != TL_OK)
		wait->result->error_code = (int16_t)store_error(err);
	request_wait_done(req);
	if (req->waits == 0 && !request_is_orphan(req))
		delete_respond(req);
}

/* Deletes one Empty group: tombstones for its offsets and itself, then it is Dead.
 * Returns the result's error; on TL_OK a wait for the write was started. */
static tl_err delete_one(struct tl_request *req, struct group *g,
			 struct tl_delete_groups_response_deletable_group_result *result)
{
	struct tl_groups *groups = req_groups(req);
	if (!g)
		return TL_ERR_GROUP_ID_NOT_FOUND;
	if (g->state != GROUP_EMPTY)
		return TL_ERR_NON_EMPTY_GROUP;
	struct delete_wait *wait = tl_arena_alloc(&req->arena, sizeof(*wait));
	if (!wait)
		return TL_ERR_COORDINATOR_NOT_AVAILABLE;
	wait->req = req;
	wait->result = result;
	struct tl_group_store_batch batch;
	tl_group_store_batch_init(&batch);
	group_tombstones(g, &batch);
	tl_err err =
		tl_group_store_write(groups->store, ostr_view(g->id), &batch, delete_durable, wait);
	tl_group_store_batch_deinit(&batch);
	if (err != TL_OK)
		return store_error(err);
	req->waits++;
	tl_info("group: deleted group=%s offsets=%d", g->id.ptr, g->offset_count);
	group_unlink(groups, g);
	return TL_OK;
}

void tl_handle_delete_groups(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct tl_delete_groups_request msg;
	struct delete_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st || tl_delete_groups_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DeleteGroups request");
		return;
	}
	req->state_data = st;
	tl_delete_groups_response_defaults(&st->resp);
	st->resp.results_count = msg.groups_names_count;
	st->resp.results = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.groups_names_count, 0),
					  sizeof(*st->resp.results));
	if (msg.groups_names_count > 0 && !st->resp.results) {
		tl_request_reject(req, "DeleteGroups request too large");
		return;
	}
	for (int32_t i = 0; i < msg.groups_names_count; i++) {
		struct tl_delete_groups_response_deletable_group_result *r = &st->resp.results[i];
		tl_delete_groups_response_deletable_group_result_defaults(r);
		r->group_id = msg.groups_names[i];
		tl_err cerr = tl_authorize_group(req, TL_ACL_OP_DELETE, msg.groups_names[i])
				      ? coordinator_error(groups, msg.groups_names[i])
				      : TL_ERR_GROUP_AUTHORIZATION_FAILED;
		struct group *g = group_find(groups, msg.groups_names[i]);
		r->error_code = (int16_t)(cerr != TL_OK ? cerr : delete_one(req, g, r));
	}
	if (req->waits == 0)
		delete_respond(req);
}

/* ---- OffsetDelete ---- */

struct offset_delete_state {
	struct tl_request *req;
	struct tl_offset_delete_request msg;
	struct tl_offset_delete_response resp;
	struct group *group; /* held while the write is in flight */
};

static void offset_delete_respond(struct tl_request *req, struct offset_delete_state *st)
{
	tl_response_begin(req);
	tl_offset_delete_response_encode(&req->response, req->header.api_version, &st->resp);
	tl_response_end(req);
}

/* The tombstones are durable: drop the offsets from memory, in log order. */
static void offset_delete_durable(void *ctx, tl_err err)
{
	struct offset_delete_state *st = ctx;
	struct tl_request *req = st->req;
	struct group *g = st->group;
	if (err != TL_OK)
		st->resp.error_code = (int16_t)store_error(err);
	for (int32_t t = 0; t < st->resp.topics_count && err == TL_OK; t++) {
		const struct tl_offset_delete_response_offset_delete_response_topic *out =
			&st->resp.topics[t];
		for (int32_t i = 0; i < out->partitions_count; i++)
			if (out->partitions[i].error_code == 0 && g->state != GROUP_DEAD)
				offset_drop(g, out->name, out->partitions[i].partition_index);
	}
	group_put(g);
	request_wait_done(req);
	if (!request_is_orphan(req))
		offset_delete_respond(req, st);
}

/* Fills the response and adds a tombstone for every partition that may go. */
static bool offset_delete_prepare(struct tl_request *req, struct offset_delete_state *st,
				  struct group *g, struct tl_group_store_batch *batch)
{
	const struct tl_offset_delete_request *msg = &st->msg;
	struct tl_offset_delete_response *resp = &st->resp;
	resp->topics_count = msg->topics_count;
	resp->topics = tl_arena_array(&req->arena, (size_t)TL_MAX(resp->topics_count, 0),
				      sizeof(*resp->topics));
	if (resp->topics_count > 0 && !resp->topics)
		return false;
	struct tl_group_record rec = {
		.type = TL_GROUP_RECORD_OFFSET, .group_id = ostr_view(g->id), .tombstone = true};
	for (int32_t t = 0; t < resp->topics_count; t++) {
		const struct tl_offset_delete_request_offset_delete_request_topic *in =
			&msg->topics[t];
		struct tl_offset_delete_response_offset_delete_response_topic *out =
			&resp->topics[t];
		tl_offset_delete_response_offset_delete_response_topic_defaults(out);
		out->name = in->name;
		out->partitions_count = in->partitions_count;
		out->partitions =
			tl_arena_array(&req->arena, (size_t)TL_MAX(in->partitions_count, 0),
				       sizeof(*out->partitions));
		if (in->partitions_count > 0 && !out->partitions)
			return false;
		bool subscribed =
			g->state != GROUP_EMPTY && group_subscribed(&req->arena, g, in->name);
		bool topic_ok = tl_authorize_topic(req, TL_ACL_OP_READ, in->name);
		for (int32_t i = 0; i < in->partitions_count; i++) {
			struct tl_offset_delete_response_offset_delete_response_partition *r =
				&out->partitions[i];
			tl_offset_delete_response_offset_delete_response_partition_defaults(r);
			r->partition_index = in->partitions[i].partition_index;
			if (!topic_ok) {
				r->error_code = (int16_t)TL_ERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			if (subscribed) {
				r->error_code = (int16_t)TL_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
				continue;
			}
			rec.topic = in->name;
			rec.partition = r->partition_index;
			tl_group_store_batch_add(batch, &rec);
		}
	}
	return true;
}

void tl_handle_offset_delete(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct offset_delete_state *st = tl_arena_alloc(&req->arena, sizeof(*st));
	if (!st || tl_offset_delete_request_decode(body, version, &req->arena, &st->msg) != TL_OK) {
		tl_request_reject(req, "malformed OffsetDelete request");
		return;
	}
	st->req = req;
	tl_offset_delete_response_defaults(&st->resp);
	tl_err cerr = tl_authorize_group(req, TL_ACL_OP_DELETE, st->msg.group_id)
			      ? coordinator_error(groups, st->msg.group_id)
			      : TL_ERR_GROUP_AUTHORIZATION_FAILED;
	struct group *g = group_find(groups, st->msg.group_id);
	if (cerr != TL_OK || !g) {
		st->resp.error_code = (int16_t)(cerr != TL_OK ? cerr : TL_ERR_GROUP_ID_NOT_FOUND);
		offset_delete_respond(req, st);
		return;
	}
	if (g->state != GROUP_EMPTY && !ostr_eq(g->protocol_type, tl_str_of(CONSUMER_PROTOCOL))) {
		st->resp.error_code = (int16_t)TL_ERR_NON_EMPTY_GROUP;
		offset_delete_respond(req, st);
		return;
	}
	struct tl_group_store_batch batch;
	tl_group_store_batch_init(&batch);
	if (!offset_delete_prepare(req, st, g, &batch)) {
		tl_group_store_batch_deinit(&batch);
		tl_request_reject(req, "OffsetDelete request too large");
		return;
	}
	tl_err err = TL_OK;
	if (tl_group_store_batch_count(&batch) > 0)
		err = tl_group_store_write(groups->store, ostr_view(g->id), &batch,
					   offset_delete_durable, st);
	bool waiting = tl_group_store_batch_count(&batch) > 0 && err == TL_OK;
	tl_group_store_batch_deinit(&batch);
	if (waiting) {
		st->group = g;
		group_hold(g);
		req->waits++;
		return;
	}
	if (err != TL_OK)
		st->resp.error_code = (int16_t)store_error(err);
	offset_delete_respond(req, st);
}
