/* replica.c - what a broker does with a cluster view: which partitions it hosts, which
 * it leads, and the leader's side of ISR replication (high watermark, ISR changes).
 *
 * Roles follow the partition state in the view:
 *   leader == self            LEADER: assign the epoch in the log (the leader-epoch
 *                             checkpoint gets (epoch, log end)), start counting
 *                             followers' progress; produce and fetch are served here
 *   leader is another broker  FOLLOWER: the fetcher pulls from it
 *   leader == -1              OFFLINE: nobody serves it
 * A local log in cluster mode is "replicated": its high watermark moves only when this
 * code says so: on a leader, the slowest ISR member's durable end (replication.h); on
 * a follower, the leader's high watermark capped by its own durable end.
 * Invariants:
 * (1) A partition has a leader state (p->leader) exactly while its role is LEADER.
 * (2) At most one ISR change per partition is in flight; it is asked against the
 *     state revision it was computed from, so a newer state (another leader, the
 *     controller) wins.
 * (3) From the moment a leader asks to add a replica to the ISR until it applies a
 *     newer state, the high watermark counts that replica (the maximal ISR,
 *     replication.h invariant 4): the change may commit, and an election pick the added
 *     replica, before this broker hears of it. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/group.h"
#include "broker/group_store.h"
#include "broker/txn.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

#define ISR_CHANGE_TIMEOUT_MS 5000 /* ask again if no new state came back by then */

static void leader_advance(struct tl_partition *p)
{
	int64_t hw = tl_repl_leader_advance(p->leader, tl_log_durable_offset(p->log));
	if (hw > tl_log_high_watermark(p->log))
		tl_log_set_high_watermark(p->log, hw);
}

/* @fetched: the follower that just fetched (it may rejoin), or -1 (periodic check). */
static void isr_check(struct tl_broker *broker, struct tl_partition *p, int64_t now,
		      int32_t fetched)
{
	if (p->role != TL_REPLICA_LEADER)
		return;
	if (p->isr_change_ms && p->isr_change_revision == p->state_revision &&
	    now - p->isr_change_ms < ISR_CHANGE_TIMEOUT_MS)
		return;
	struct tl_repl_state next;
	if (!tl_repl_leader_isr_change(p->leader, now, broker->config.replica_lag_time_max_ms,
				       fetched, &next))
		return;
	tl_info("replica: asking for an ISR change topic=%s partition=%d isr_from=%d "
		"isr_to=%d%s",
		p->topic->name, p->index, p->state.isr_count, next.isr_count,
		next.isr_count == p->state.isr_count
			? " (rewritten to end a lagging pending addition)"
			: "");
	p->isr_change_ms = now;
	p->isr_change_revision = p->state_revision;
	tl_repl_leader_proposed(p->leader, &next); /* before it can commit: invariant 3 */
	tl_cluster_post_isr(broker, p->topic->name, p->index, p->state_revision, &next);
}

/* A replica whose log failed (a write or sync error: EIO, ENOSPC) can neither append nor
 * acknowledge until the broker reopens it at a restart. Kafka's broker takes such a
 * log directory offline and the controller moves its leaderships away (KIP-112); here
 * the broker asks for it itself: another ISR member leads, or this broker leaves the
 * ISR, so the partition stays available and acks=all does not wait out the lag time. */
static void failed_log_check(struct tl_broker *broker, struct tl_partition *p, int64_t now)
{
	if (!p->log || tl_log_is_writable(p->log) || !p->has_state ||
	    !tl_repl_isr_contains(&p->state, broker->config.node_id) ||
	    (p->role != TL_REPLICA_LEADER && p->role != TL_REPLICA_FOLLOWER))
		return;
	if (p->isr_change_ms && p->isr_change_revision == p->state_revision &&
	    now - p->isr_change_ms < ISR_CHANGE_TIMEOUT_MS)
		return;
	tl_warn("replica: log failed, %s topic=%s partition=%d leader_epoch=%d",
		p->role == TL_REPLICA_LEADER ? "moving leadership away" : "leaving the ISR",
		p->topic->name, p->index, p->state.leader_epoch);
	p->isr_change_ms = now;
	p->isr_change_revision = p->state_revision;
	tl_cluster_post_resign_partition(broker, p->topic->name, p->index);
}

/* The log's durable end moved (its durable listener). */
static void on_durable(void *ctx, struct tl_log *log)
{
	struct tl_partition *p = ctx;
	TL_UNUSED(log);
	struct tl_broker *broker = p->topic->broker;
	if (p->role == TL_REPLICA_LEADER) {
		leader_advance(p);
		/* Followers' fetches park until there is data past their offset. */
		tl_fetch_on_data(p, p->log);
	} else {
		tl_fetchers_on_durable(broker, p);
	}
}

/* ---- DeleteRecords waiting for the followers' log start ---- */

int64_t tl_replica_low_watermark(struct tl_broker *broker, const struct tl_partition *p)
{
	const struct tl_cluster_view *view = tl_cluster_view(broker->cluster);
	int64_t low = tl_log_start_offset(p->log);
	for (int32_t i = 0; i < p->replica_count; i++)
		if (p->replicas[i] != broker->config.node_id && p->replica_log_start[i] >= 0 &&
		    tl_cluster_find_broker(view, p->replicas[i]))
			low = TL_MIN(low, p->replica_log_start[i]);
	return low;
}

/* Ends the waits the low watermark satisfied, whose deadline passed (@now_ms), or all
 * of them with @err (leadership lost: NOT_LEADER_OR_FOLLOWER). */
static void delete_waits_check(struct tl_broker *broker, struct tl_partition *p, int64_t now_ms,
			       tl_err err)
{
	int64_t low = err == TL_OK && p->log ? tl_replica_low_watermark(broker, p) : -1;
	struct tl_delete_wait **pp = &p->delete_waits;
	while (*pp) {
		struct tl_delete_wait *w = *pp;
		tl_err outcome = err != TL_OK               ? err
				 : low >= w->offset         ? TL_OK
				 : now_ms >= w->deadline_ms ? TL_ERR_REQUEST_TIMED_OUT
							    : TL_ERR_AGAIN;
		if (outcome == TL_ERR_AGAIN) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->done(w, outcome, low);
	}
}

void tl_replica_wait_low_watermark(struct tl_partition *p, struct tl_delete_wait *wait)
{
	TL_ASSERT(p->role == TL_REPLICA_LEADER);
	wait->next = p->delete_waits;
	p->delete_waits = wait;
}

static void become_leader(struct tl_broker *broker, struct tl_partition *p)
{
	tl_err err = tl_log_assign_epoch(p->log, p->state.leader_epoch);
	if (err != TL_OK) {
		tl_crit("replica: cannot record the leader epoch, partition offline topic=%s "
			"partition=%d epoch=%d err=%s",
			p->topic->name, p->index, p->state.leader_epoch, tl_err_name(err));
		p->role = TL_REPLICA_OFFLINE;
		return;
	}
	if (!p->leader)
		p->leader = malloc(sizeof(*p->leader));
	TL_ASSERT(p->leader); /* a few hundred bytes per led partition */
	tl_repl_leader_init(p->leader, broker->config.node_id, p->replicas, p->replica_count,
			    &p->state, tl_log_end_offset(p->log), tl_log_high_watermark(p->log),
			    tl_mono_ms());
	p->role = TL_REPLICA_LEADER;
	p->isr_change_ms = 0;
	for (int32_t i = 0; i < TL_REPL_REPLICAS_MAX; i++)
		p->replica_log_start[i] = -1; /* until each follower fetches */
	tl_info("replica: leading topic=%s partition=%d leader_epoch=%d log_end=%" PRId64
		" high_watermark=%" PRId64,
		p->topic->name, p->index, p->state.leader_epoch, tl_log_end_offset(p->log),
		tl_log_high_watermark(p->log));
	leader_advance(p);
}

/* A newer state in this leader's epoch (a newer revision; a view that carries the
 * same one again changes nothing): the ISR change it asked for (or the controller made)
 * is committed, or it failed and this is what won; either way its pending additions
 * end here (invariant 3). Counted here, once, rather than when asked: a request asked again
 * after ISR_CHANGE_TIMEOUT_MS, or refused, is no change (Kafka IsrShrinksPerSec). */
static void leader_isr_changed(struct tl_broker *broker, struct tl_partition *p,
			       int32_t old_isr_count)
{
	TL_ASSERT(p->role == TL_REPLICA_LEADER);
	tl_repl_leader_set_state(p->leader, &p->state);
	if (p->state.isr_count < old_isr_count)
		broker->metrics.isr_shrinks++;
	else if (p->state.isr_count > old_isr_count)
		broker->metrics.isr_expands++;
}

static void stop_leading(struct tl_broker *broker, struct tl_partition *p)
{
	free(p->leader);
	p->leader = NULL;
	delete_waits_check(broker, p, 0, TL_ERR_NOT_LEADER_OR_FOLLOWER);
}

/* The coordinators follow the leadership of their internal topics' partitions:
 * a group or transaction is coordinated by the leader of its partition, which loads
 * it from that partition's log when it becomes leader. */
static void coordinators_follow(struct tl_broker *broker, struct tl_partition *p, bool was_leader)
{
	bool leading = p->role == TL_REPLICA_LEADER;
	if (leading == was_leader || !p->topic->internal)
		return;
	if (strcmp(p->topic->name, TL_GROUP_STORE_TOPIC) == 0 && broker->groups)
		tl_groups_on_leadership(broker->groups, p->index, leading);
	else if (strcmp(p->topic->name, TL_TXN_TOPIC) == 0 && broker->txns)
		tl_txns_on_leadership(broker->txns, p->index, leading);
}

static void partition_apply_state(struct tl_broker *broker, struct tl_partition *p,
				  const struct tl_cluster_partition *cp)
{
	int32_t self = broker->config.node_id;
	bool was_leader = p->role == TL_REPLICA_LEADER;
	int32_t old_epoch = p->state.leader_epoch;
	int32_t old_leader = p->state.leader;
	bool had_state = p->has_state;
	int32_t old_isr_count = p->state.isr_count;
	int64_t old_revision = p->state_revision;
	if (was_leader && cp->has_state && had_state && cp->state.leader == self &&
	    cp->state.leader_epoch == old_epoch && cp->revision != old_revision &&
	    broker->config.test_fault_isr_echo_ignore_ms > 0 && p->isr_change_ms &&
	    tl_mono_ms() - p->isr_change_ms < broker->config.test_fault_isr_echo_ignore_ms) {
		broker->test_isr_echo_held = true; /* tl_cluster_tick applies it later */
		return;
	}
	p->replica_count = cp->replica_count;
	memcpy(p->replicas, cp->replicas, sizeof(p->replicas));
	p->has_state = cp->has_state;
	p->state = cp->state;
	p->state_revision = cp->revision;
	if (!p->log)
		return;
	if (!cp->has_state) {
		p->role = TL_REPLICA_OFFLINE;
		return;
	}
	if (cp->state.leader == self) {
		if (!was_leader || old_epoch != cp->state.leader_epoch || !had_state)
			become_leader(broker, p);
		else if (cp->revision != old_revision)
			leader_isr_changed(broker, p, old_isr_count);
		if (p->role == TL_REPLICA_LEADER)
			leader_advance(p);
	} else {
		if (was_leader)
			stop_leading(broker, p);
		p->role = cp->state.leader >= 0 ? TL_REPLICA_FOLLOWER : TL_REPLICA_OFFLINE;
		if (old_leader != cp->state.leader || old_epoch != cp->state.leader_epoch ||
		    was_leader)
			tl_info("replica: following topic=%s partition=%d leader=%d "
				"leader_epoch=%d",
				p->topic->name, p->index, cp->state.leader, cp->state.leader_epoch);
	}
	tl_fetchers_update(broker, p);
}

static void partition_apply(struct tl_broker *broker, struct tl_partition *p,
			    const struct tl_cluster_partition *cp)
{
	bool was_leader = p->role == TL_REPLICA_LEADER;
	partition_apply_state(broker, p, cp);
	coordinators_follow(broker, p, was_leader);
}

static bool hosts(const struct tl_cluster_partition *cp, int32_t self)
{
	for (int32_t i = 0; i < cp->replica_count; i++)
		if (cp->replicas[i] == self)
			return true;
	return false;
}

static void topic_apply(struct tl_broker *broker, const struct tl_cluster_topic *ct)
{
	struct tl_topic *topic = tl_topic_find(broker, tl_str_of(ct->name));
	if (topic && topic->cluster && memcmp(topic->id.bytes, ct->id.bytes, 16) != 0) {
		/* Deleted and created again under the same name. */
		tl_topic_remove_local(broker, topic);
		topic = NULL;
	}
	if (!topic) {
		topic = tl_topic_attach(broker, ct->name, &ct->id, ct->partition_count,
					ct->configs);
		if (!topic)
			return;
	}
	if (!topic->cluster)
		return; /* a local-only topic (coordinators' on this broker) */
	if (ct->partition_count > topic->partition_count &&
	    tl_topic_grow(topic, ct->partition_count) != TL_OK)
		tl_crit("replica: cannot add the new partitions topic=%s partitions=%d",
			topic->name, ct->partition_count);
	tl_topic_apply_cluster_configs(broker, topic, ct->configs);
	int32_t self = broker->config.node_id;
	for (int32_t i = 0; i < topic->partition_count && i < ct->partition_count; i++) {
		struct tl_partition *p = &topic->partitions[i];
		const struct tl_cluster_partition *cp = &ct->partitions[i];
		if (hosts(cp, self) && !p->log) {
			if (tl_partition_open_log(broker, p) != TL_OK)
				continue;
			tl_log_set_replicated(p->log, true);
			/* Recovery left the high watermark at the recovered end, which may hold
			 * a tail no other replica has: a broker restarted within its lease that
			 * still leads would count it committed and answer a producer's retry of
			 * it as acknowledged, then lose it to a newer leader's truncation (chaos
			 * seed 914). Nothing is known committed until the ISR confirms it. */
			if (tl_log_reset_high_watermark(p->log, tl_log_start_offset(p->log)) !=
			    TL_OK)
				tl_crit("replica: producer state rebuild failed, partition offline "
					"topic=%s partition=%d",
					p->topic->name, p->index);
			tl_log_set_durable_listener(p->log, on_durable, p);
		} else if (!hosts(cp, self) && p->log) {
			tl_replica_close(broker, p);
			tl_partition_remove_log(broker, p);
		}
		partition_apply(broker, p, cp);
	}
}

void tl_replica_apply(struct tl_broker *broker, const struct tl_cluster_view *view)
{
	for (int32_t t = 0; t < view->topic_count; t++)
		topic_apply(broker, &view->topics[t]);
	/* Topics gone from the view: deleted. */
	for (struct tl_topic *topic = tl_topic_next(broker, NULL); topic;) {
		struct tl_topic *next = tl_topic_next(broker, topic);
		bool found = false;
		for (int32_t t = 0; t < view->topic_count && !found; t++)
			found = strcmp(view->topics[t].name, topic->name) == 0;
		if (topic->cluster && !found)
			tl_topic_remove_local(broker, topic);
		topic = next;
	}
}

tl_err tl_replica_on_follower_fetch(struct tl_broker *broker, struct tl_partition *p,
				    int32_t replica_id, int64_t fetch_offset, int64_t log_start)
{
	if (p->role != TL_REPLICA_LEADER)
		return TL_ERR_NOT_LEADER_OR_FOLLOWER;
	int64_t now = tl_mono_ms();
	for (int32_t i = 0; i < p->replica_count; i++)
		if (p->replicas[i] == replica_id)
			p->replica_log_start[i] = log_start;
	if (p->delete_waits)
		delete_waits_check(broker, p, now, TL_OK);
	tl_err err = tl_repl_leader_on_fetch(p->leader, replica_id, fetch_offset,
					     tl_log_end_offset(p->log), now);
	if (err != TL_OK)
		return err;
	leader_advance(p);
	isr_check(broker, p, now, replica_id);
	return TL_OK;
}

tl_err tl_replica_check_client(const struct tl_partition *p, int32_t current_leader_epoch)
{
	int32_t leader_epoch = 0; /* a single node leads its partitions at epoch 0 */
	if (p->topic->cluster) {
		if (!p->log || p->role != TL_REPLICA_LEADER)
			return TL_ERR_NOT_LEADER_OR_FOLLOWER;
		leader_epoch = p->state.leader_epoch;
	}
	if (current_leader_epoch >= 0 && current_leader_epoch > leader_epoch)
		return TL_ERR_UNKNOWN_LEADER_EPOCH;
	if (current_leader_epoch >= 0 && current_leader_epoch < leader_epoch)
		return TL_ERR_FENCED_LEADER_EPOCH;
	return TL_OK;
}

bool tl_replica_has_min_isr(const struct tl_partition *p)
{
	return p->role == TL_REPLICA_LEADER &&
	       tl_repl_leader_has_min_isr(p->leader, p->topic->config.min_insync_replicas);
}

void tl_replica_close(struct tl_broker *broker, struct tl_partition *p)
{
	bool was_leader = p->role == TL_REPLICA_LEADER;
	if (broker->fetchers)
		tl_fetchers_forget(broker, p);
	stop_leading(broker, p);
	p->role = TL_REPLICA_NONE;
	coordinators_follow(broker, p, was_leader);
}

void tl_cluster_tick(struct tl_broker *broker, int64_t now_ms)
{
	if (broker->test_isr_echo_held && tl_cluster_view(broker->cluster)) { /* test fault */
		broker->test_isr_echo_held = false;
		tl_replica_apply(broker, tl_cluster_view(broker->cluster));
	}
	for (struct tl_topic *topic = tl_topic_next(broker, NULL); topic;
	     topic = tl_topic_next(broker, topic))
		for (int32_t i = 0; topic->cluster && i < topic->partition_count; i++) {
			failed_log_check(broker, &topic->partitions[i], now_ms);
			isr_check(broker, &topic->partitions[i], now_ms, -1);
			if (topic->partitions[i].delete_waits)
				delete_waits_check(broker, &topic->partitions[i], now_ms, TL_OK);
		}
	tl_fetchers_tick(broker, now_ms);
	tl_cluster_awaits_tick(broker, now_ms);
}
