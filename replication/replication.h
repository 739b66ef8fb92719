/* replication.h - ISR replication's decisions, as plain state machines: the interface of
 * replication/. It decides; broker/ sends, receives, writes etcd and the logs.
 *
 * Model (Kafka's, ZooKeeper era, with etcd in ZooKeeper's place):
 *   - Each partition has an assignment (its replicas, the first is the preferred leader)
 *     and a state: leader, leader epoch, ISR. The state is one key in the metadata
 *     store, changed only by compare-and-swap on the key's revision: by the controller
 *     when it elects a leader, by the leader when it shrinks or expands the ISR.
 *   - Followers pull with Fetch (replica id set). Their fetch offset is their log end,
 *     and a follower sends its next fetch only once what it appended is fdatasync'ed, so
 *     a fetch offset is also the follower's durable end.
 *   - High watermark = min(leader's durable end, fetch offset of each other ISR member).
 *     It never moves back while one leader holds the partition.
 *   - A follower that has not caught up with the leader's log end for
 *     replica.lag.time.max.ms leaves the ISR; one whose fetch offset reaches the high
 *     watermark (and the leader's current epoch) joins it again.
 * Invariants:
 * (1) A leader is always in its ISR; ISR members are assigned replicas, each at most once.
 * (2) The high watermark only grows, and is <= every ISR member's durable end.
 * (3) An election picks only an ISR member unless unclean election is enabled.
 * (4) Maximal ISR (Kafka's KIP-497): the high watermark counts every replica of any ISR
 *     the store may hold for this leader's epoch: the applied ISR plus the additions
 *     the leader asked for since (tl_repl_leader_proposed), until a newer state is
 *     applied. An expansion can commit while the leader does not yet know it (its
 *     watch is late, or it is cut off from the store), and then an election may pick
 *     the added replica; it must hold everything acknowledged. A shrink needs nothing:
 *     the applied, larger ISR keeps counting until the shrink comes back.
 * Thread: none of this is thread-safe; each object belongs to one thread. */
#ifndef TL_REPLICATION_REPLICATION_H
#define TL_REPLICATION_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/error.h"

#define TL_REPL_REPLICAS_MAX 16 /* replication factor bound: Kafka has none, 16 is ample */
#define TL_REPL_RACK_MAX     64 /* broker.rack length */

/* ---- partition state, as stored in the metadata store ---- */

struct tl_repl_state {
	int32_t leader;       /* broker id, -1 when no replica can lead (offline) */
	int32_t leader_epoch; /* bumped by every election */
	int32_t isr_count;
	int32_t isr[TL_REPL_REPLICAS_MAX];
};

/* Encodes @state as one text line "leader=1 leader_epoch=4 isr=1,2,3" into @out of
 * @size bytes; returns the length, or -1 when it does not fit. */
int tl_repl_state_encode(const struct tl_repl_state *state, char *out, size_t size);
/* Parses what tl_repl_state_encode wrote. Bytes from the store are not trusted:
 * returns TL_ERR_CORRUPT for anything else (unknown field, bad number, too many ids,
 * a duplicate id). */
tl_err tl_repl_state_decode(const uint8_t *data, size_t len, struct tl_repl_state *out);

bool tl_repl_isr_contains(const struct tl_repl_state *state, int32_t broker_id);

/* ---- controller decisions ---- */

/* Returns the new leader for a partition whose leader is gone or must change: the first
 * replica, in assignment order, that is alive (@alive says so for a broker id) and in
 * the ISR, not counting @exclude (-1 for none; a broker shutting down); with @unclean,
 * failing that, the first alive replica. -1 when there is none. */
typedef bool (*tl_repl_alive_fn)(void *ctx, int32_t broker_id);
int32_t tl_repl_elect(const int32_t *replicas, int32_t replica_count,
		      const struct tl_repl_state *state, tl_repl_alive_fn alive, void *ctx,
		      int32_t exclude, bool unclean);

/* The state after electing @leader: epoch + 1, and the ISR without the replicas that are
 * not alive or are @exclude (the leader stays). With an unclean choice the ISR is
 * just the leader. */
void tl_repl_state_after_election(const struct tl_repl_state *state, int32_t leader,
				  tl_repl_alive_fn alive, void *ctx, int32_t exclude,
				  struct tl_repl_state *out);

struct tl_repl_broker {
	int32_t id;
	char rack[TL_REPL_RACK_MAX]; /* "" when broker.rack is unset */
};

/* Replica assignment as Kafka's AdminUtils does it: brokers ordered by id (with racks:
 * alternating between racks), partition p's first replica at (start + p) mod n and the
 * others following with a shift that changes every n partitions, so leaders and
 * followers spread evenly; with racks, each partition's replicas are on as many
 * distinct racks as possible. @brokers need not be sorted. Writes @partitions rows of
 * @replication_factor ids into @out. Returns TL_OK, or INVALID_REPLICATION_FACTOR when
 * there are fewer brokers than @replication_factor. */
tl_err tl_repl_assign(const struct tl_repl_broker *brokers, int32_t broker_count,
		      int32_t partitions, int32_t replication_factor, uint32_t start, int32_t *out);

/* ---- leader side: one partition this broker leads ---- */

struct tl_repl_follower {
	int32_t broker_id;
	int64_t fetch_offset;      /* durable end on the follower; -1 before its first fetch */
	int64_t last_caught_up_ms; /* last time it was known to have the leader's log end */
	int64_t last_fetch_ms;     /* of its previous fetch, -1 before the first */
	int64_t last_fetch_leo;    /* the leader's log end at its previous fetch */
};

struct tl_repl_leader {
	int32_t self;
	int32_t leader_epoch;
	int64_t epoch_start_offset; /* log end when this broker became leader (KIP-101) */
	int64_t high_watermark;
	struct tl_repl_state state; /* leader, epoch, ISR as last written to the store */
	/* Replicas the leader asked to add to state's ISR since it was applied (invariant
	 * 4): the store may hold them in the ISR already. Cleared by a newer state. */
	int32_t pending_count;
	int32_t pending[TL_REPL_REPLICAS_MAX];
	int32_t follower_count;
	struct tl_repl_follower followers[TL_REPL_REPLICAS_MAX]; /* the other replicas */
};

/* Starts leading: @state names this broker as leader. @log_end is the log end offset now,
 * @high_watermark the log's (it never moves back). Followers count as caught up at
 * @now_ms, so none is dropped before replica.lag.time.max.ms has passed. */
void tl_repl_leader_init(struct tl_repl_leader *leader, int32_t self, const int32_t *replicas,
			 int32_t replica_count, const struct tl_repl_state *state, int64_t log_end,
			 int64_t high_watermark, int64_t now_ms);

/* A newer state was applied (the leader's own CAS came back, or another writer's won):
 * it replaces the ISR and ends the pending additions. Call it only for a newer state
 * (a newer store revision), never for the same one seen again: a pending addition
 * must outlive views that do not carry the answer to it. */
void tl_repl_leader_set_state(struct tl_repl_leader *leader, const struct tl_repl_state *state);

/* The leader is about to ask the store for @next (what tl_repl_leader_isr_change gave):
 * its additions count in the high watermark from now on (invariant 4), until
 * tl_repl_leader_set_state. Call it before the request is sent. */
void tl_repl_leader_proposed(struct tl_repl_leader *leader, const struct tl_repl_state *next);

/* Is @broker_id in the maximal ISR (the applied ISR plus the pending additions)? */
bool tl_repl_leader_in_maximal_isr(const struct tl_repl_leader *leader, int32_t broker_id);

/* A follower fetched at @fetch_offset while the leader's log end is @log_end. Returns
 * TL_OK, NOT_LEADER_OR_FOLLOWER when @broker_id is not a replica, or
 * OFFSET_OUT_OF_RANGE when @fetch_offset > @log_end (a diverged follower must truncate
 * first). Updates the follower's caught-up time as Kafka does. */
tl_err tl_repl_leader_on_fetch(struct tl_repl_leader *leader, int32_t broker_id,
			       int64_t fetch_offset, int64_t log_end, int64_t now_ms);

/* Recomputes the high watermark from @durable_end (the leader's own) and the fetch
 * offsets of the followers in the maximal ISR (invariant 4). Returns the new value
 * (>= the old one). */
int64_t tl_repl_leader_advance(struct tl_repl_leader *leader, int64_t durable_end);

/* The ISR the leader should write next, or false when it is right as it is: without the
 * followers not caught up for @lag_ms, plus (with @expand, which a caller passes right
 * after that follower's fetch, as Kafka expands only on a fetch) those out of it whose
 * fetch offset reached the high watermark and this epoch's start. -1: shrink only. One
 * change at a time is enough: each is a CAS, and the next call sees its result.
 * A pending addition that is no longer caught up for @lag_ms gives @out = the applied
 * state unchanged: written, it is a newer state that ends the pending addition (or it
 * fails because the addition or another change committed, which comes back too), so
 * the high watermark does not wait forever on a replica the leader cannot drop. */
bool tl_repl_leader_isr_change(const struct tl_repl_leader *leader, int64_t now_ms, int64_t lag_ms,
			       int32_t expand, struct tl_repl_state *out);

/* acks=all precondition: is the ISR at least @min_insync replicas? The applied ISR, not
 * the maximal one, as Kafka's NOT_ENOUGH_REPLICAS: an addition not yet committed does
 * not make the partition safer to write. (acks=all itself waits for the high watermark,
 * which counts the maximal ISR.) */
bool tl_repl_leader_has_min_isr(const struct tl_repl_leader *leader, int32_t min_insync);

#endif
