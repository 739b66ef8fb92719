/* replication.c - ISR, high watermark, elections and assignment; see replication.h. */
#include "replication/replication.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

/* ---- partition state ---- */

bool tl_repl_isr_contains(const struct tl_repl_state *state, int32_t broker_id)
{
	for (int32_t i = 0; i < state->isr_count; i++)
		if (state->isr[i] == broker_id)
			return true;
	return false;
}

int tl_repl_state_encode(const struct tl_repl_state *state, char *out, size_t size)
{
	TL_ASSERT(state->isr_count >= 0 && state->isr_count <= TL_REPL_REPLICAS_MAX);
	int n = snprintf(out, size, "leader=%d leader_epoch=%d isr=", state->leader,
			 state->leader_epoch);
	for (int32_t i = 0; i < state->isr_count && n >= 0 && (size_t)n < size; i++)
		n += snprintf(out + n, size - (size_t)n, "%s%d", i ? "," : "", state->isr[i]);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

/* Parses a decimal int32 in [@min, INT32_MAX] from [p, end); advances *p. */
static bool parse_i32(const char **p, const char *end, int32_t min, int32_t *out)
{
	const char *s = *p;
	bool neg = s < end && *s == '-';
	if (neg)
		s++;
	int64_t v = 0;
	const char *digits = s;
	while (s < end && *s >= '0' && *s <= '9' && s - digits < 10)
		v = v * 10 + (*s++ - '0');
	if (s == digits || (s < end && *s >= '0' && *s <= '9'))
		return false;
	v = neg ? -v : v;
	if (v < min || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	*p = s;
	return true;
}

static bool parse_isr(const char **p, const char *end, struct tl_repl_state *out)
{
	out->isr_count = 0;
	if (*p == end || **p == ' ')
		return true; /* an empty ISR (a partition that never had a leader) */
	for (;;) {
		int32_t id;
		if (out->isr_count == TL_REPL_REPLICAS_MAX || !parse_i32(p, end, 0, &id) ||
		    tl_repl_isr_contains(out, id))
			return false;
		out->isr[out->isr_count++] = id;
		if (*p == end || **p != ',')
			return true;
		(*p)++;
	}
}

tl_err tl_repl_state_decode(const uint8_t *data, size_t len, struct tl_repl_state *out)
{
	const char *p = (const char *)data;
	const char *end = p + len;
	bool have_leader = false, have_epoch = false, have_isr = false;
	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *key = p;
		while (p < end && *p != '=')
			p++;
		if (p == end)
			return TL_ERR_CORRUPT;
		size_t key_len = (size_t)(p - key);
		p++;
		bool ok;
		if (key_len == 6 && !memcmp(key, "leader", 6) && !have_leader)
			ok = have_leader = parse_i32(&p, end, -1, &out->leader);
		else if (key_len == 12 && !memcmp(key, "leader_epoch", 12) && !have_epoch)
			ok = have_epoch = parse_i32(&p, end, 0, &out->leader_epoch);
		else if (key_len == 3 && !memcmp(key, "isr", 3) && !have_isr)
			ok = have_isr = parse_isr(&p, end, out);
		else
			ok = false;
		if (!ok)
			return TL_ERR_CORRUPT;
		if (p < end && *p++ != ' ')
			return TL_ERR_CORRUPT;
	}
	if (!have_leader || !have_epoch || !have_isr)
		return TL_ERR_CORRUPT;
	if (out->leader >= 0 && !tl_repl_isr_contains(out, out->leader))
		return TL_ERR_CORRUPT; /* invariant (1) */
	return TL_OK;
}

/* ---- controller decisions ---- */

static bool is_eligible(int32_t id, tl_repl_alive_fn alive, void *ctx, int32_t exclude)
{
	return id != exclude && alive(ctx, id);
}

int32_t tl_repl_elect(const int32_t *replicas, int32_t replica_count,
		      const struct tl_repl_state *state, tl_repl_alive_fn alive, void *ctx,
		      int32_t exclude, bool unclean)
{
	for (int32_t i = 0; i < replica_count; i++)
		if (tl_repl_isr_contains(state, replicas[i]) &&
		    is_eligible(replicas[i], alive, ctx, exclude))
			return replicas[i];
	if (!unclean)
		return -1;
	for (int32_t i = 0; i < replica_count; i++)
		if (is_eligible(replicas[i], alive, ctx, exclude))
			return replicas[i];
	return -1;
}

void tl_repl_state_after_election(const struct tl_repl_state *state, int32_t leader,
				  tl_repl_alive_fn alive, void *ctx, int32_t exclude,
				  struct tl_repl_state *out)
{
	struct tl_repl_state next = {.leader = leader, .leader_epoch = state->leader_epoch + 1};
	if (leader < 0) {
		/* An offline partition keeps its last ISR (Kafka does): it names who may
		 * lead once one of them is back. */
		next.isr_count = state->isr_count;
		memcpy(next.isr, state->isr, sizeof(next.isr));
	} else if (!tl_repl_isr_contains(state, leader)) {
		/* Unclean: only the new leader's log is known to be whole. */
		next.isr[next.isr_count++] = leader;
	} else {
		for (int32_t i = 0; i < state->isr_count; i++) {
			int32_t id = state->isr[i];
			if (id == leader || is_eligible(id, alive, ctx, exclude))
				next.isr[next.isr_count++] = id;
		}
	}
	if (leader >= 0)
		TL_ASSERT(tl_repl_isr_contains(&next, leader));
	*out = next;
}

static int cmp_broker(const void *a, const void *b)
{
	const struct tl_repl_broker *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

/* Orders brokers by id, and with racks alternates between racks (Kafka's
 * getRackAlternatedBrokerList): rack A's first, rack B's first, ..., A's second, ... */
static void order_brokers(struct tl_repl_broker *sorted, int32_t count)
{
	qsort(sorted, (size_t)count, sizeof(*sorted), cmp_broker);
	bool racks = false;
	for (int32_t i = 0; i < count; i++)
		racks |= sorted[i].rack[0] != 0;
	if (!racks)
		return;
	struct tl_repl_broker *out = malloc((size_t)count * sizeof(*out));
	bool *taken = calloc((size_t)count, sizeof(*taken));
	TL_ASSERT(out && taken); /* a few brokers: a failure here is a broken machine */
	int32_t n = 0;
	while (n < count) {
		/* One round: the first broker not taken yet from each rack, racks by first id. */
		char seen[TL_REPL_REPLICAS_MAX * 4][TL_REPL_RACK_MAX];
		int32_t seen_count = 0;
		for (int32_t i = 0; i < count; i++) {
			if (taken[i])
				continue;
			bool dup = false;
			for (int32_t r = 0; r < seen_count && !dup; r++)
				dup = strcmp(seen[r], sorted[i].rack) == 0;
			if (dup || seen_count == (int32_t)TL_ARRAY_SIZE(seen))
				continue;
			snprintf(seen[seen_count++], TL_REPL_RACK_MAX, "%s", sorted[i].rack);
			taken[i] = true;
			out[n++] = sorted[i];
		}
	}
	memcpy(sorted, out, (size_t)count * sizeof(*out));
	free(taken);
	free(out);
}

static bool rack_used(const struct tl_repl_broker *brokers, int32_t count, const int32_t *row,
		      int32_t used, const char *rack)
{
	for (int32_t i = 0; i < used; i++)
		for (int32_t b = 0; b < count; b++)
			if (brokers[b].id == row[i] && strcmp(brokers[b].rack, rack) == 0)
				return true;
	return false;
}

static bool id_used(const int32_t *row, int32_t used, int32_t id)
{
	for (int32_t i = 0; i < used; i++)
		if (row[i] == id)
			return true;
	return false;
}

tl_err tl_repl_assign(const struct tl_repl_broker *brokers, int32_t broker_count,
		      int32_t partitions, int32_t replication_factor, uint32_t start, int32_t *out)
{
	if (replication_factor < 1 || replication_factor > broker_count ||
	    replication_factor > TL_REPL_REPLICAS_MAX)
		return TL_ERR_INVALID_REPLICATION_FACTOR;
	struct tl_repl_broker *sorted = malloc((size_t)broker_count * sizeof(*sorted));
	if (!sorted)
		return TL_ERR_NOMEM;
	memcpy(sorted, brokers, (size_t)broker_count * sizeof(*sorted));
	order_brokers(sorted, broker_count);
	int32_t n = broker_count;
	int32_t racks = 0;
	for (int32_t i = 0; i < n; i++) {
		bool first = true;
		for (int32_t j = 0; j < i && first; j++)
			first = strcmp(sorted[j].rack, sorted[i].rack) != 0;
		racks += first;
	}
	uint32_t shift = start;
	for (int32_t p = 0; p < partitions; p++) {
		if (p > 0 && p % n == 0)
			shift++;
		int32_t *row = out + (size_t)p * (size_t)replication_factor;
		int32_t first = (int32_t)(((uint32_t)p + start) % (uint32_t)n);
		row[0] = sorted[first].id;
		int32_t used = 1;
		/* Candidates in Kafka's order; skip one whose rack is taken while other racks
		 * remain, then fill from the rest. */
		for (int32_t pass = 0; pass < 2 && used < replication_factor; pass++) {
			for (int32_t j = 0; j < n - 1 && used < replication_factor; j++) {
				int32_t k =
					n > 1 ? (int32_t)((shift + (uint32_t)j) % (uint32_t)(n - 1))
					      : 0;
				const struct tl_repl_broker *b = &sorted[(first + 1 + k) % n];
				if (id_used(row, used, b->id))
					continue;
				if (pass == 0 && used < racks &&
				    rack_used(sorted, n, row, used, b->rack))
					continue;
				row[used++] = b->id;
			}
		}
		TL_ASSERT(used == replication_factor);
	}
	free(sorted);
	return TL_OK;
}

/* ---- leader side ---- */

void tl_repl_leader_init(struct tl_repl_leader *leader, int32_t self, const int32_t *replicas,
			 int32_t replica_count, const struct tl_repl_state *state, int64_t log_end,
			 int64_t high_watermark, int64_t now_ms)
{
	TL_ASSERT(state->leader == self);
	TL_ASSERT(replica_count <= TL_REPL_REPLICAS_MAX);
	memset(leader, 0, sizeof(*leader));
	leader->self = self;
	leader->leader_epoch = state->leader_epoch;
	leader->epoch_start_offset = log_end;
	leader->high_watermark = high_watermark;
	leader->state = *state;
	for (int32_t i = 0; i < replica_count; i++) {
		if (replicas[i] == self)
			continue;
		struct tl_repl_follower *f = &leader->followers[leader->follower_count++];
		f->broker_id = replicas[i];
		f->fetch_offset = -1;
		f->last_caught_up_ms = now_ms;
		f->last_fetch_ms = -1;
		f->last_fetch_leo = -1;
	}
}

void tl_repl_leader_set_state(struct tl_repl_leader *leader, const struct tl_repl_state *state)
{
	TL_ASSERT(state->leader == leader->self);
	leader->state = *state;
	leader->pending_count = 0;
}

bool tl_repl_leader_in_maximal_isr(const struct tl_repl_leader *leader, int32_t broker_id)
{
	if (tl_repl_isr_contains(&leader->state, broker_id))
		return true;
	for (int32_t i = 0; i < leader->pending_count; i++)
		if (leader->pending[i] == broker_id)
			return true;
	return false;
}

static struct tl_repl_follower *follower_find(struct tl_repl_leader *leader, int32_t id)
{
	for (int32_t i = 0; i < leader->follower_count; i++)
		if (leader->followers[i].broker_id == id)
			return &leader->followers[i];
	return NULL;
}

tl_err tl_repl_leader_on_fetch(struct tl_repl_leader *leader, int32_t broker_id,
			       int64_t fetch_offset, int64_t log_end, int64_t now_ms)
{
	struct tl_repl_follower *f = follower_find(leader, broker_id);
	if (!f)
		return TL_ERR_NOT_LEADER_OR_FOLLOWER;
	if (fetch_offset > log_end)
		return TL_ERR_OFFSET_OUT_OF_RANGE;
	/* Kafka's Replica.updateFetchState: caught up now if it has the whole log; caught
	 * up as of its previous fetch if it has what the leader had then. */
	if (fetch_offset >= log_end)
		f->last_caught_up_ms = now_ms;
	else if (f->last_fetch_ms >= 0 && fetch_offset >= f->last_fetch_leo)
		f->last_caught_up_ms = TL_MAX(f->last_caught_up_ms, f->last_fetch_ms);
	f->fetch_offset = fetch_offset;
	f->last_fetch_ms = now_ms;
	f->last_fetch_leo = log_end;
	return TL_OK;
}

void tl_repl_leader_proposed(struct tl_repl_leader *leader, const struct tl_repl_state *next)
{
	TL_ASSERT(next->leader == leader->self && next->leader_epoch == leader->leader_epoch);
	for (int32_t i = 0; i < next->isr_count; i++) {
		int32_t id = next->isr[i];
		if (tl_repl_leader_in_maximal_isr(leader, id))
			continue;
		/* Only a follower that has what is committed joins (invariant 4 needs it:
		 * from now on it holds the high watermark). */
		const struct tl_repl_follower *f = follower_find(leader, id);
		TL_ASSERT(f && f->fetch_offset >= leader->high_watermark);
		TL_ASSERT(leader->pending_count < TL_REPL_REPLICAS_MAX);
		leader->pending[leader->pending_count++] = id;
	}
}

/* The slowest of @ids' fetch offsets, capped at @hw; the leader itself does not count. */
static int64_t slowest(const struct tl_repl_leader *leader, const int32_t *ids, int32_t count,
		       int64_t hw)
{
	for (int32_t i = 0; i < count; i++) {
		if (ids[i] == leader->self)
			continue;
		/* An ISR member we know nothing of yet (just became leader) holds it. */
		int64_t at = -1;
		for (int32_t j = 0; j < leader->follower_count; j++)
			if (leader->followers[j].broker_id == ids[i])
				at = TL_MAX(leader->followers[j].fetch_offset, -1);
		hw = TL_MIN(hw, at);
	}
	return hw;
}

int64_t tl_repl_leader_advance(struct tl_repl_leader *leader, int64_t durable_end)
{
	int64_t hw = slowest(leader, leader->state.isr, leader->state.isr_count, durable_end);
	hw = slowest(leader, leader->pending, leader->pending_count, hw);
	if (hw > leader->high_watermark)
		leader->high_watermark = hw;
	return leader->high_watermark;
}

bool tl_repl_leader_isr_change(const struct tl_repl_leader *leader, int64_t now_ms, int64_t lag_ms,
			       int32_t expand, struct tl_repl_state *out)
{
	const struct tl_repl_state *state = &leader->state;
	for (int32_t i = 0; i < leader->follower_count; i++) {
		const struct tl_repl_follower *f = &leader->followers[i];
		bool in = tl_repl_isr_contains(state, f->broker_id);
		if (!in && now_ms - f->last_caught_up_ms > lag_ms &&
		    tl_repl_leader_in_maximal_isr(leader, f->broker_id)) {
			*out = *state; /* see the header: ends the pending addition */
			return true;
		}
		if (in && now_ms - f->last_caught_up_ms > lag_ms) {
			*out = *state;
			out->isr_count = 0;
			for (int32_t j = 0; j < state->isr_count; j++)
				if (state->isr[j] != f->broker_id)
					out->isr[out->isr_count++] = state->isr[j];
			return true;
		}
		if (!in && f->broker_id == expand && f->fetch_offset >= leader->high_watermark &&
		    f->fetch_offset >= leader->epoch_start_offset &&
		    now_ms - f->last_caught_up_ms <= lag_ms) {
			TL_ASSERT(state->isr_count < TL_REPL_REPLICAS_MAX);
			*out = *state;
			out->isr[out->isr_count++] = f->broker_id;
			return true;
		}
	}
	return false;
}

bool tl_repl_leader_has_min_isr(const struct tl_repl_leader *leader, int32_t min_insync)
{
	return leader->state.isr_count >= min_insync;
}
