/* group.c - consumer group coordinator: membership state machine and committed offsets.
 *
 * States (Kafka's names):
 *   Empty               no members; committed offsets may exist
 *   PreparingRebalance  waiting for every known member to (re)join, until the rebalance
 *                       timeout; JoinGroup requests park here
 *   CompletingRebalance generation chosen, joins answered; waiting for the leader's
 *                       SyncGroup with the assignment; SyncGroup requests park here
 *   Stable              assignment handed out; heartbeats keep members alive
 *   Dead                being deleted
 * Transitions: Empty/Stable/CompletingRebalance -> PreparingRebalance on a join, leave
 * or expiry; PreparingRebalance -> CompletingRebalance when all have joined (or the
 * timeout removed the stragglers), -> Empty if nobody is left; CompletingRebalance ->
 * Stable on the leader's sync.
 * Invariants:
 * (1) A member has at most one parked JoinGroup and one parked SyncGroup; a parked
 *     request's on_abandon unlinks it if its connection closes.
 * (2) Only PreparingRebalance has parked joins; only CompletingRebalance parked syncs.
 * (3) generation_id increases by one per completed rebalance.
 * Offsets are kept per group in a hash keyed by (topic, partition). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

#define GROUP_BUCKETS	   256
#define OFFSET_BUCKETS	   64
#define PENDING_MAX	   1024
#define TICK_INTERVAL_MS   100
#define CONSUMER_PROTOCOL  "consumer"

enum group_state {
	GROUP_EMPTY,
	GROUP_PREPARING_REBALANCE,
	GROUP_COMPLETING_REBALANCE,
	GROUP_STABLE,
	GROUP_DEAD,
};

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
					  "Stable", "Dead"};

/* A string the coordinator owns (malloc'd, not NUL-terminated on the wire). */
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
	struct offset_entry *next;
};

struct group {
	struct ostr id;
	enum group_state state;
	int32_t generation_id;
	struct ostr protocol_type;
	struct ostr protocol_name;
	struct ostr leader_id;
	struct member *members;
	int32_t member_count;
	struct pending_member *pending;
	int64_t rebalance_deadline_ms; /* PreparingRebalance: complete the join by then */
	int64_t empty_since_ms;        /* wall clock, for offsets.retention.minutes */
	struct offset_entry *offsets[OFFSET_BUCKETS];
	int32_t offset_count;
	struct group *next;
};

struct tl_groups {
	struct tl_broker *broker;
	struct group *buckets[GROUP_BUCKETS];
	int32_t count;
	int64_t next_tick_ms;
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

static bool ostr_eq(struct ostr o, struct tl_str s)
{
	return tl_str_eq(ostr_view(o), s);
}

static uint32_t hash_bytes(const char *p, int32_t len, uint32_t h)
{
	for (int32_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
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

/* ---- registry ---- */

static struct group *group_find(struct tl_groups *groups, struct tl_str id)
{
	struct group *g = groups->buckets[hash_bytes(id.ptr, id.len, 2166136261u) % GROUP_BUCKETS];
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
	g->state = GROUP_EMPTY;
	g->protocol_type.len = g->protocol_name.len = g->leader_id.len = -1;
	g->empty_since_ms = tl_wall_ms();
	uint32_t b = hash_bytes(id.ptr, id.len, 2166136261u) % GROUP_BUCKETS;
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

static void group_destroy(struct tl_groups *groups, struct group *g)
{
	TL_ASSERT(!g->members);
	uint32_t b = hash_bytes(g->id.ptr, g->id.len, 2166136261u) % GROUP_BUCKETS;
	struct group **pp = &groups->buckets[b];
	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	groups->count--;
	while (g->pending) {
		struct pending_member *p = g->pending;
		g->pending = p->next;
		ostr_free(&p->id);
		free(p);
	}
	offsets_clear(g);
	ostr_free(&g->id);
	ostr_free(&g->protocol_type);
	ostr_free(&g->protocol_name);
	ostr_free(&g->leader_id);
	free(g);
}

struct tl_groups *tl_groups_create(struct tl_broker *broker)
{
	struct tl_groups *groups = calloc(1, sizeof(*groups));
	if (groups)
		groups->broker = broker;
	return groups;
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

/* ---- parked requests ---- */

static struct tl_groups *req_groups(struct tl_request *req)
{
	return req->conn->broker->groups;
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

/* ---- JoinGroup answers ---- */

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
		members = tl_arena_array(&req->arena, (size_t)g->member_count, sizeof(*members));
		TL_ASSERT(members);
		int32_t n = 0;
		for (struct member *x = g->members; x; x = x->next) {
			tl_join_group_response_join_group_response_member_defaults(&members[n]);
			members[n].member_id = ostr_view(x->id);
			members[n].group_instance_id = ostr_view(x->instance_id);
			for (int32_t i = 0; i < x->protocol_count; i++) {
				if (ostr_eq(x->protocols[i].name, ostr_view(g->protocol_name))) {
					members[n].metadata.ptr = x->protocols[i].metadata;
					members[n].metadata.len = x->protocols[i].metadata_len;
				}
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
	if (g->state == GROUP_EMPTY)
		/* Let more of a starting fleet arrive before the first generation. */
		delay = TL_MIN(delay, (int64_t)groups->broker->config.group_initial_rebalance_delay_ms);
	g->rebalance_deadline_ms = now + delay;
	tl_info("group: preparing rebalance group=%.*s generation=%d members=%d reason=\"%s\"",
		g->id.len, g->id.ptr, g->generation_id, g->member_count, why);
	g->state = GROUP_PREPARING_REBALANCE;
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
			bool has = false;
			int32_t vote_for = -1;
			for (int32_t i = 0; i < m->protocol_count; i++) {
				if (ostr_eq(m->protocols[i].name, ostr_view(cand->name)))
					has = true;
				if (vote_for < 0)
					vote_for = i;
			}
			all = has;
			if (has && vote_for >= 0 &&
			    ostr_eq(m->protocols[vote_for].name, ostr_view(cand->name)))
				votes++;
		}
		if (all && votes > best_votes) {
			best_votes = votes;
			best = cand;
		}
	}
	if (!best)
		return false;
	ostr_free(&g->protocol_name);
	g->protocol_name = ostr_dup(ostr_view(best->name));
	return true;
}

static void complete_join(struct tl_groups *groups, struct group *g)
{
	TL_ASSERT(g->state == GROUP_PREPARING_REBALANCE);
	/* Members that did not rejoin in time are out. */
	struct member *m = g->members;
	while (m) {
		struct member *next = m->next;
		if (!m->join)
			member_remove(g, m, TL_ERR_UNKNOWN_MEMBER_ID);
		m = next;
	}
	g->generation_id++;
	if (!g->members) {
		g->state = GROUP_EMPTY;
		g->empty_since_ms = tl_wall_ms();
		ostr_free(&g->protocol_name);
		tl_info("group: now empty group=%.*s generation=%d", g->id.len, g->id.ptr,
			g->generation_id);
		return;
	}
	if (!select_protocol(g)) {
		/* Cannot happen: joins are refused unless they share a protocol. */
		TL_ASSERT(!"no common protocol");
	}
	if (g->leader_id.len < 0)
		g->leader_id = ostr_dup(ostr_view(g->members->id));
	g->state = GROUP_COMPLETING_REBALANCE;
	int64_t now = tl_mono_ms();
	tl_info("group: rebalance complete group=%.*s generation=%d members=%d protocol=%.*s",
		g->id.len, g->id.ptr, g->generation_id, g->member_count, g->protocol_name.len,
		g->protocol_name.ptr);
	for (m = g->members; m; m = m->next) {
		struct tl_request *req = unpark(&m->join);
		m->expires_ms = now + m->session_timeout_ms;
		bool leader = ostr_eq(g->leader_id, ostr_view(m->id));
		join_respond(req, g, m, TL_OK, leader);
	}
	TL_UNUSED(groups);
}

static void maybe_complete_join(struct tl_groups *groups, struct group *g)
{
	if (g->state != GROUP_PREPARING_REBALANCE || g->pending)
		return;
	for (struct member *m = g->members; m; m = m->next)
		if (!m->join)
			return;
	/* Everyone is here; an empty group still waits out its initial delay. */
	if (g->generation_id == 0 && tl_mono_ms() < g->rebalance_deadline_ms)
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
			g->state = GROUP_EMPTY;
			g->empty_since_ms = tl_wall_ms();
			g->generation_id++;
		}
	} else if (g->state == GROUP_PREPARING_REBALANCE) {
		maybe_complete_join(groups, g);
	}
}

void tl_groups_tick(struct tl_groups *groups, int64_t now_ms)
{
	if (now_ms < groups->next_tick_ms)
		return;
	groups->next_tick_ms = now_ms + TICK_INTERVAL_MS;
	for (int b = 0; b < GROUP_BUCKETS; b++) {
		for (struct group *g = groups->buckets[b]; g; g = g->next) {
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
				/* A member waiting in a join is alive by definition. */
				if (!m->join && m->expires_ms <= now_ms) {
					tl_info("group: member session expired group=%.*s member=%.*s",
						g->id.len, g->id.ptr, m->id.len, m->id.ptr);
					member_leave(groups, g, m, "session timeout");
				}
				m = next;
			}
			if (g->state == GROUP_PREPARING_REBALANCE &&
			    now_ms >= g->rebalance_deadline_ms)
				complete_join(groups, g);
			else
				maybe_complete_join(groups, g);
		}
	}
}

int64_t tl_groups_next_deadline(const struct tl_groups *groups)
{
	return groups->count ? groups->next_tick_ms : INT64_MAX;
}

void tl_groups_destroy(struct tl_groups *groups)
{
	if (!groups)
		return;
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
			group_destroy(groups, g);
		}
	}
	free(groups);
}

/* ---- FindCoordinator ---- */

void tl_handle_find_coordinator(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_find_coordinator_request msg;
	if (tl_find_coordinator_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed FindCoordinator request");
		return;
	}
	struct tl_find_coordinator_response resp;
	tl_find_coordinator_response_defaults(&resp);
	tl_err err = msg.key_type == 0 || msg.key_type == 1 ? TL_OK : TL_ERR_INVALID_REQUEST;
	resp.error_code = (int16_t)err;
	resp.node_id = broker->config.node_id;
	resp.host = tl_str_of(broker->advertised_host);
	resp.port = broker->advertised_port;
	if (version >= 4) {
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
			c->node_id = broker->config.node_id;
			c->host = resp.host;
			c->port = resp.port;
			c->error_code = (int16_t)err;
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
		struct tl_bytes md = msg->protocols[i].metadata;
		m->protocols[i].name = ostr_dup(msg->protocols[i].name);
		m->protocols[i].metadata_len = TL_MAX(md.len, 0);
		m->protocols[i].metadata = malloc((size_t)TL_MAX(md.len, 1));
		TL_ASSERT(m->protocols[i].metadata);
		if (md.len > 0)
			memcpy(m->protocols[i].metadata, md.ptr, (size_t)md.len);
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

static struct member *member_add(struct group *g, struct tl_request *req, struct ostr id,
				 const struct tl_join_group_request *msg)
{
	struct member *m = calloc(1, sizeof(*m));
	TL_ASSERT(m);
	m->id = id;
	m->instance_id = ostr_dup(msg->group_instance_id);
	m->client_id = ostr_dup(req->header.client_id.len >= 0 ? req->header.client_id
							       : tl_str_of(""));
	char host[80];
	snprintf(host, sizeof(host), "/%s", req->conn->peer);
	*strrchr(host, ':') = '\0';
	m->client_host = ostr_dup(tl_str_of(host));
	struct member **tail = &g->members;
	while (*tail)
		tail = &(*tail)->next;
	*tail = m;
	g->member_count++;
	if (g->member_count == 1 || g->protocol_type.len < 0) {
		ostr_free(&g->protocol_type);
		g->protocol_type = ostr_dup(msg->protocol_type);
	}
	return m;
}

static void join_existing(struct tl_groups *groups, struct group *g, struct member *m,
			  struct tl_request *req, const struct tl_join_group_request *msg)
{
	int16_t version = req->header.api_version;
	bool same = protocols_match(m, msg);
	m->session_timeout_ms = msg->session_timeout_ms;
	m->rebalance_timeout_ms = version >= 1 ? msg->rebalance_timeout_ms : msg->session_timeout_ms;
	m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
	if (m->join) {
		/* A retried join replaces the parked one, which gets a retriable error. */
		join_respond(unpark(&m->join), NULL, m, TL_ERR_REBALANCE_IN_PROGRESS, false);
	}
	if (!same)
		member_set_protocols(m, msg);
	bool leader = ostr_eq(g->leader_id, ostr_view(m->id));
	if (same && (g->state == GROUP_COMPLETING_REBALANCE ||
		     (g->state == GROUP_STABLE && !leader))) {
		/* Nothing changed: hand back the current generation. */
		join_respond(req, g, m, TL_OK, leader);
		return;
	}
	park(req, g, m, true);
	prepare_rebalance(groups, g, same ? "leader rejoined" : "member changed its metadata");
	maybe_complete_join(groups, g);
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
	tl_err err = join_check(req, &msg);
	if (err != TL_OK) {
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
	if (g->state == GROUP_DEAD) {
		join_respond(req, NULL, NULL, TL_ERR_COORDINATOR_NOT_AVAILABLE, false);
		return;
	}
	if (!join_protocol_compatible(g, &msg)) {
		join_respond(req, NULL, NULL, TL_ERR_INCONSISTENT_GROUP_PROTOCOL, false);
		return;
	}
	struct member *m = NULL;
	if (msg.member_id.len > 0) {
		m = member_find(g, msg.member_id);
		if (!m) {
			/* KIP-394: the id we handed out with MEMBER_ID_REQUIRED. */
			struct pending_member **pp = &g->pending;
			while (*pp && !ostr_eq((*pp)->id, msg.member_id))
				pp = &(*pp)->next;
			if (!*pp) {
				join_respond(req, NULL, NULL, TL_ERR_UNKNOWN_MEMBER_ID, false);
				return;
			}
			struct pending_member *p = *pp;
			*pp = p->next;
			m = member_add(g, req, p->id, &msg);
			free(p);
			member_set_protocols(m, &msg);
		}
		join_existing(groups, g, m, req, &msg);
		return;
	}
	if (g->member_count >= req->conn->broker->config.group_max_size) {
		join_respond(req, NULL, NULL, TL_ERR_GROUP_MAX_SIZE_REACHED, false);
		return;
	}
	/* Static member coming back: fence the old instance, keep its place. */
	struct member *old = member_find_instance(g, msg.group_instance_id);
	if (old) {
		member_remove(g, old, TL_ERR_FENCED_INSTANCE_ID);
		m = member_add(g, req, member_id_new(req->header.client_id), &msg);
		member_set_protocols(m, &msg);
		join_existing(groups, g, m, req, &msg);
		return;
	}
	struct ostr id = member_id_new(req->header.client_id);
	if (version >= 4 && msg.group_instance_id.len < 0) {
		int32_t pending = 0;
		for (struct pending_member *p = g->pending; p; p = p->next)
			pending++;
		if (pending < PENDING_MAX) {
			struct pending_member *p = calloc(1, sizeof(*p));
			TL_ASSERT(p);
			p->id = id;
			p->expires_ms = tl_mono_ms() + msg.session_timeout_ms;
			p->next = g->pending;
			g->pending = p;
		}
		struct member tmp = {.id = pending < PENDING_MAX ? id : ostr_dup(tl_str_of(""))};
		join_respond(req, NULL, &tmp, TL_ERR_MEMBER_ID_REQUIRED, false);
		if (pending >= PENDING_MAX)
			ostr_free(&tmp.id);
		return;
	}
	m = member_add(g, req, id, &msg);
	member_set_protocols(m, &msg);
	join_existing(groups, g, m, req, &msg);
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

void tl_handle_sync_group(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	struct tl_sync_group_request msg;
	if (tl_sync_group_request_decode(body, req->header.api_version, &req->arena, &msg) !=
	    TL_OK) {
		tl_request_reject(req, "malformed SyncGroup request");
		return;
	}
	struct group *g = group_find(groups, msg.group_id);
	struct member *m = g ? member_find(g, msg.member_id) : NULL;
	tl_err err = member_check(g, m, msg.generation_id);
	if (err == TL_OK && ((msg.protocol_type.len >= 0 &&
			      !ostr_eq(g->protocol_type, msg.protocol_type)) ||
			     (msg.protocol_name.len >= 0 &&
			      !ostr_eq(g->protocol_name, msg.protocol_name))))
		err = TL_ERR_INCONSISTENT_GROUP_PROTOCOL;
	if (err == TL_OK && g->state == GROUP_PREPARING_REBALANCE)
		err = TL_ERR_REBALANCE_IN_PROGRESS;
	if (err == TL_OK && (g->state == GROUP_EMPTY || g->state == GROUP_DEAD))
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
	if (!ostr_eq(g->leader_id, ostr_view(m->id)))
		return;
	for (int32_t i = 0; i < msg.assignments_count; i++) {
		struct member *target = member_find(g, msg.assignments[i].member_id);
		struct tl_bytes a = msg.assignments[i].assignment;
		if (!target || a.len < 0)
			continue;
		free(target->assignment);
		target->assignment = malloc((size_t)TL_MAX(a.len, 1));
		TL_ASSERT(target->assignment);
		if (a.len)
			memcpy(target->assignment, a.ptr, (size_t)a.len);
		target->assignment_len = a.len;
	}
	g->state = GROUP_STABLE;
	tl_info("group: stable group=%.*s generation=%d members=%d", g->id.len, g->id.ptr,
		g->generation_id, g->member_count);
	for (struct member *x = g->members; x; x = x->next) {
		struct tl_request *parked = unpark(&x->sync);
		if (parked)
			sync_respond(parked, g, x, TL_OK);
	}
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
	struct group *g = group_find(groups, msg.group_id);
	struct member *m = g ? member_find(g, msg.member_id) : NULL;
	tl_err err = member_check(g, m, msg.generation_id);
	if (err == TL_OK) {
		m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
		if (g->state == GROUP_PREPARING_REBALANCE)
			err = TL_ERR_REBALANCE_IN_PROGRESS;
		else if (g->state == GROUP_EMPTY || g->state == GROUP_DEAD)
			err = TL_ERR_UNKNOWN_MEMBER_ID;
	} else if (g && m && g->state == GROUP_PREPARING_REBALANCE) {
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
	struct group *g = group_find(groups, msg.group_id);
	if (version < 3) {
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
		for (int32_t i = 0; i < msg.members_count; i++) {
			struct tl_leave_group_response_member_response *r = &resp.members[i];
			tl_leave_group_response_member_response_defaults(r);
			r->member_id = msg.members[i].member_id;
			r->group_instance_id = msg.members[i].group_instance_id;
			struct member *m = NULL;
			if (g)
				m = msg.members[i].member_id.len > 0
					    ? member_find(g, msg.members[i].member_id)
					    : member_find_instance(g, msg.members[i].group_instance_id);
			if (!m)
				r->error_code = (int16_t)TL_ERR_UNKNOWN_MEMBER_ID;
			else
				member_leave(groups, g, m, "member left");
		}
	}
	tl_response_begin(req);
	tl_leave_group_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- offsets ---- */

static struct offset_entry **offset_slot(struct group *g, struct tl_str topic, int32_t partition)
{
	uint32_t h = hash_bytes(topic.ptr, topic.len, 2166136261u) ^ (uint32_t)partition * 2654435761u;
	struct offset_entry **pp = &g->offsets[h % OFFSET_BUCKETS];
	while (*pp && !((*pp)->partition == partition && ostr_eq((*pp)->topic, topic)))
		pp = &(*pp)->next;
	return pp;
}

static void offset_store(struct group *g, struct tl_str topic, int32_t partition, int64_t offset,
			 int32_t leader_epoch, struct tl_str metadata, int64_t commit_ms)
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

static tl_err commit_check(struct tl_groups *groups, struct group *g,
			   const struct tl_offset_commit_request *msg)
{
	TL_UNUSED(groups);
	if (msg->group_id.len <= 0)
		return TL_ERR_INVALID_GROUP_ID;
	if (!g)
		return msg->generation_id_or_member_epoch < 0 ? TL_OK : TL_ERR_ILLEGAL_GENERATION;
	if (g->state == GROUP_DEAD)
		return TL_ERR_COORDINATOR_NOT_AVAILABLE;
	if (msg->generation_id_or_member_epoch < 0 && g->state == GROUP_EMPTY)
		return TL_OK; /* a commit by an admin or a standalone consumer */
	if (g->state == GROUP_COMPLETING_REBALANCE)
		return TL_ERR_REBALANCE_IN_PROGRESS;
	struct member *m = member_find(g, msg->member_id);
	if (!m)
		return TL_ERR_UNKNOWN_MEMBER_ID;
	if (msg->generation_id_or_member_epoch != g->generation_id)
		return TL_ERR_ILLEGAL_GENERATION;
	m->expires_ms = tl_mono_ms() + m->session_timeout_ms;
	return TL_OK;
}

void tl_handle_offset_commit(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	struct tl_broker *broker = req->conn->broker;
	int16_t version = req->header.api_version;
	struct tl_offset_commit_request msg;
	if (tl_offset_commit_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed OffsetCommit request");
		return;
	}
	struct group *g = msg.group_id.len > 0 ? group_find(groups, msg.group_id) : NULL;
	tl_err group_err = commit_check(groups, g, &msg);
	if (group_err == TL_OK && !g)
		g = group_create(groups, msg.group_id);
	struct tl_offset_commit_response resp;
	tl_offset_commit_response_defaults(&resp);
	resp.topics_count = msg.topics_count;
	resp.topics = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.topics_count, 0),
				     sizeof(*resp.topics));
	if (msg.topics_count > 0 && !resp.topics) {
		tl_request_reject(req, "OffsetCommit request too large");
		return;
	}
	int64_t now = tl_wall_ms();
	for (int32_t t = 0; t < msg.topics_count; t++) {
		const struct tl_offset_commit_request_offset_commit_request_topic *in = &msg.topics[t];
		struct tl_offset_commit_response_offset_commit_response_topic *out = &resp.topics[t];
		tl_offset_commit_response_offset_commit_response_topic_defaults(out);
		out->name = in->name;
		out->partitions_count = in->partitions_count;
		out->partitions = tl_arena_array(&req->arena, (size_t)TL_MAX(in->partitions_count, 0),
						 sizeof(*out->partitions));
		if (in->partitions_count > 0 && !out->partitions) {
			tl_request_reject(req, "OffsetCommit request too large");
			return;
		}
		for (int32_t i = 0; i < in->partitions_count; i++) {
			const struct tl_offset_commit_request_offset_commit_request_partition *p =
				&in->partitions[i];
			struct tl_offset_commit_response_offset_commit_response_partition *r =
				&out->partitions[i];
			tl_offset_commit_response_offset_commit_response_partition_defaults(r);
			r->partition_index = p->partition_index;
			tl_err err = group_err;
			if (err == TL_OK && !tl_partition_find(broker, in->name, p->partition_index))
				err = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (err == TL_OK &&
			    p->committed_metadata.len > broker->config.offset_metadata_max_bytes)
				err = TL_ERR_OFFSET_METADATA_TOO_LARGE;
			if (err == TL_OK)
				offset_store(g, in->name, p->partition_index, p->committed_offset,
					     p->committed_leader_epoch, p->committed_metadata, now);
			r->error_code = (int16_t)err;
		}
	}
	tl_response_begin(req);
	tl_offset_commit_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

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
	int32_t *parts = tl_arena_array(&req->arena, (size_t)TL_MAX(g->offset_count, 1),
					sizeof(*parts));
	TL_ASSERT(parts);
	int32_t n = 0;
	for (int b = 0; b < OFFSET_BUCKETS; b++)
		for (struct offset_entry *e = g->offsets[b]; e; e = e->next)
			if (ostr_eq(e->topic, topic))
				parts[n++] = e->partition;
	*out = parts;
	return n;
}

/* OffsetFetch for one group, in the v8+ shape (older versions are copied out of it). */
static void offset_fetch_group(struct tl_request *req, struct tl_str group_id, int32_t topic_count,
			       const struct tl_str *topic_names, int32_t *const *topic_parts,
			       const int32_t *topic_part_counts,
			       struct tl_offset_fetch_response_offset_fetch_response_group *out)
{
	struct group *g = group_find(req_groups(req), group_id);
	tl_offset_fetch_response_offset_fetch_response_group_defaults(out);
	out->group_id = group_id;
	struct tl_str *all_names = NULL;
	bool all = topic_count < 0;
	if (all)
		topic_count = offset_topics(req, g, &all_names);
	out->topics_count = topic_count;
	out->topics = tl_arena_array(&req->arena, (size_t)TL_MAX(topic_count, 0),
				     sizeof(*out->topics));
	for (int32_t t = 0; t < topic_count; t++) {
		struct tl_offset_fetch_response_offset_fetch_response_topics *ot = &out->topics[t];
		tl_offset_fetch_response_offset_fetch_response_topics_defaults(ot);
		ot->name = all ? all_names[t] : topic_names[t];
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
			fetch_one(g, ot->name, parts[i], &op->committed_offset,
				  &op->committed_leader_epoch, &op->metadata);
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
			struct tl_str *names = tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1),
							      sizeof(*names));
			int32_t **parts = tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1),
							 sizeof(*parts));
			int32_t *counts = tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1),
							 sizeof(*counts));
			if (!names || !parts || !counts) {
				tl_request_reject(req, "OffsetFetch request too large");
				return;
			}
			for (int32_t t = 0; t < n; t++) {
				names[t] = in->topics[t].name;
				parts[t] = in->topics[t].partition_indexes;
				counts[t] = in->topics[t].partition_indexes_count;
			}
			offset_fetch_group(req, in->group_id, n, names, parts, counts,
					   &resp.groups[gi]);
		}
	} else {
		int32_t n = msg.topics_count;
		struct tl_str *names = tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*names));
		int32_t **parts = tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*parts));
		int32_t *counts = tl_arena_array(&req->arena, (size_t)TL_MAX(n, 1), sizeof(*counts));
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
		offset_fetch_group(req, msg.group_id, n, names, parts, counts, &group);
		/* Copy into the pre-v8 shape. */
		resp.topics_count = group.topics_count;
		resp.topics = tl_arena_array(&req->arena, (size_t)TL_MAX(group.topics_count, 0),
					     sizeof(*resp.topics));
		for (int32_t t = 0; t < group.topics_count; t++) {
			struct tl_offset_fetch_response_offset_fetch_response_topic *ot =
				&resp.topics[t];
			tl_offset_fetch_response_offset_fetch_response_topic_defaults(ot);
			ot->name = group.topics[t].name;
			ot->partitions_count = group.topics[t].partitions_count;
			ot->partitions = tl_arena_array(&req->arena,
							(size_t)TL_MAX(ot->partitions_count, 0),
							sizeof(*ot->partitions));
			for (int32_t i = 0; i < ot->partitions_count; i++) {
				struct tl_offset_fetch_response_offset_fetch_response_partition *op =
					&ot->partitions[i];
				const struct tl_offset_fetch_response_offset_fetch_response_partitions
					*src = &group.topics[t].partitions[i];
				tl_offset_fetch_response_offset_fetch_response_partition_defaults(op);
				op->partition_index = src->partition_index;
				op->committed_offset = src->committed_offset;
				op->committed_leader_epoch = src->committed_leader_epoch;
				op->metadata = src->metadata;
			}
		}
	}
	tl_response_begin(req);
	tl_offset_fetch_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* ---- ListGroups, DescribeGroups, DeleteGroups, OffsetDelete ---- */

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
	resp.groups = tl_arena_array(&req->arena, (size_t)TL_MAX(groups->count, 1),
				     sizeof(*resp.groups));
	TL_ASSERT(resp.groups);
	int32_t n = 0;
	bool classic_ok = msg.types_filter_count <= 0;
	for (int32_t i = 0; i < msg.types_filter_count; i++)
		classic_ok |= tl_str_eq_c(msg.types_filter[i], "classic");
	for (int b = 0; b < GROUP_BUCKETS && classic_ok; b++)
		for (struct group *g = groups->buckets[b]; g; g = g->next) {
			if (!state_in_filter(&msg, g->state))
				continue;
			struct tl_list_groups_response_listed_group *lg = &resp.groups[n++];
			tl_list_groups_response_listed_group_defaults(lg);
			lg->group_id = ostr_view(g->id);
			lg->protocol_type = g->protocol_type.len >= 0 ? ostr_view(g->protocol_type)
								      : tl_str_of(CONSUMER_PROTOCOL);
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
	out->protocol_type = g->protocol_type.len >= 0 ? ostr_view(g->protocol_type) : tl_str_of("");
	bool stable = g->state == GROUP_STABLE;
	out->protocol_data = stable && g->protocol_name.len >= 0 ? ostr_view(g->protocol_name)
								 : tl_str_of("");
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
		for (int32_t i = 0; stable && i < m->protocol_count; i++)
			if (ostr_eq(m->protocols[i].name, ostr_view(g->protocol_name))) {
				dm->member_metadata.ptr = m->protocols[i].metadata;
				dm->member_metadata.len = m->protocols[i].metadata_len;
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

void tl_handle_delete_groups(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct tl_delete_groups_request msg;
	if (tl_delete_groups_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed DeleteGroups request");
		return;
	}
	struct tl_delete_groups_response resp;
	tl_delete_groups_response_defaults(&resp);
	resp.results_count = msg.groups_names_count;
	resp.results = tl_arena_array(&req->arena, (size_t)TL_MAX(msg.groups_names_count, 0),
				      sizeof(*resp.results));
	if (msg.groups_names_count > 0 && !resp.results) {
		tl_request_reject(req, "DeleteGroups request too large");
		return;
	}
	for (int32_t i = 0; i < msg.groups_names_count; i++) {
		struct tl_delete_groups_response_deletable_group_result *r = &resp.results[i];
		tl_delete_groups_response_deletable_group_result_defaults(r);
		r->group_id = msg.groups_names[i];
		struct group *g = group_find(groups, msg.groups_names[i]);
		if (!g)
			r->error_code = (int16_t)TL_ERR_GROUP_ID_NOT_FOUND;
		else if (g->state != GROUP_EMPTY)
			r->error_code = (int16_t)TL_ERR_NON_EMPTY_GROUP;
		else {
			tl_info("group: deleted group=%.*s offsets=%d", g->id.len, g->id.ptr,
				g->offset_count);
			group_destroy(groups, g);
		}
	}
	tl_response_begin(req);
	tl_delete_groups_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* Is @topic in the subscription of any member (consumer protocol)? */
static bool group_subscribed(struct tl_request *req, struct group *g, struct tl_str topic)
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
				    &c, TL_MIN(version, (int16_t)3), &req->arena, &sub) != TL_OK)
				continue;
			for (int32_t t = 0; t < sub.topics_count; t++)
				if (tl_str_eq(sub.topics[t], topic))
					return true;
		}
	return false;
}

void tl_handle_offset_delete(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_groups *groups = req_groups(req);
	int16_t version = req->header.api_version;
	struct tl_offset_delete_request msg;
	if (tl_offset_delete_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "malformed OffsetDelete request");
		return;
	}
	struct tl_offset_delete_response resp;
	tl_offset_delete_response_defaults(&resp);
	struct group *g = group_find(groups, msg.group_id);
	if (!g)
		resp.error_code = (int16_t)TL_ERR_GROUP_ID_NOT_FOUND;
	resp.topics_count = g ? msg.topics_count : 0;
	resp.topics = tl_arena_array(&req->arena, (size_t)TL_MAX(resp.topics_count, 0),
				     sizeof(*resp.topics));
	for (int32_t t = 0; t < resp.topics_count; t++) {
		const struct tl_offset_delete_request_offset_delete_request_topic *in = &msg.topics[t];
		struct tl_offset_delete_response_offset_delete_response_topic *out = &resp.topics[t];
		tl_offset_delete_response_offset_delete_response_topic_defaults(out);
		out->name = in->name;
		out->partitions_count = in->partitions_count;
		out->partitions = tl_arena_array(&req->arena, (size_t)TL_MAX(in->partitions_count, 0),
						 sizeof(*out->partitions));
		bool subscribed = g->state != GROUP_EMPTY && group_subscribed(req, g, in->name);
		for (int32_t i = 0; i < in->partitions_count; i++) {
			struct tl_offset_delete_response_offset_delete_response_partition *r =
				&out->partitions[i];
			tl_offset_delete_response_offset_delete_response_partition_defaults(r);
			r->partition_index = in->partitions[i].partition_index;
			if (subscribed)
				r->error_code = (int16_t)TL_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
			else
				offset_drop(g, in->name, r->partition_index);
		}
	}
	tl_response_begin(req);
	tl_offset_delete_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}
