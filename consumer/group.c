/* group.c - group membership for tl_consumer_subscribe(): the classic consumer group
 * protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with Kafka's "consumer"
 * protocol type and the range assignor, so libtally members can share a group with
 * Java and librdkafka consumers.
 *
 * States (internal.h): FIND (coordinator unknown) -> JOIN -> JOINING (JoinGroup in
 * flight; the leader then computes the assignment once it has metadata for every
 * subscribed topic) -> SYNCING (SyncGroup in flight) -> STABLE (heartbeats). A
 * rebalance (REBALANCE_IN_PROGRESS, new partitions, a new subscription) revokes the
 * assignment: REVOKING until the next poll told the rebalance callback (the member still
 * owns the partitions and may commit them), then the changed positions are committed
 * (enable.auto.commit) and the assignment dropped, back to JOIN. A member the group went
 * on without (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) loses it: dropped at once, JOIN, and
 * the next poll tells LOST. FENCED_INSTANCE_ID (another consumer joined with our
 * group.instance.id) loses it too and goes to NONE for good: the group is fatal, and
 * poll, commit and subscribe return the error.
 * Invariants:
 * (1) At most one JoinGroup/SyncGroup is in flight (request_in_flight), and one
 *     Heartbeat (heartbeat_in_flight).
 * (2) A response is applied only if the group is still in the state and generation it
 *     was sent in.
 * (3) The rebalance callback runs only from tl_consumer_group_events(), at the top of a
 *     poll, never from a response handler; every ASSIGNED it was told is ended by one
 *     REVOKED or LOST, before the next ASSIGNED (told). */
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/time.h"
#include "internal.h"
#include "protocol/messages.h"

#define GROUP_ARENA_MAX     (16u << 20)
#define GROUP_MEMBERS_MAX   10000
#define GROUP_TOPICS_MAX    10000
#define GROUP_PROTOCOL      "range"
#define GROUP_PROTOCOL_TYPE "consumer"
#define GROUP_LEAVE_WAIT_MS 2000

/* ---- helpers ---- */

static void subs_free(struct member_sub *members, int32_t count)
{
	for (int32_t i = 0; i < count; i++) {
		free(members[i].member_id);
		free(members[i].instance_id);
		for (int32_t t = 0; t < members[i].topic_count; t++)
			free(members[i].topics[t]);
		free(members[i].topics);
	}
	free(members);
}

static void lost_free(struct consumer_group *group)
{
	for (int32_t i = 0; group->lost_topics && i < group->lost_count; i++)
		free(group->lost_topics[i]);
	group->lost_untold = false;
	free(group->lost_topics);
	free(group->lost);
	group->lost_topics = NULL;
	group->lost = NULL;
	group->lost_count = 0;
}

void tl_consumer_group_deinit(struct consumer_group *group)
{
	lost_free(group);
	for (int32_t i = 0; i < group->topic_count; i++)
		free(group->topics[i]);
	free(group->topics);
	free(group->member_id);
	free(group->leader_id);
	free(group->protocol_name);
	free(group->partition_counts);
	subs_free(group->members, group->member_count);
	memset(group, 0, sizeof(*group));
}

static bool str_set(char **dst, struct tl_str src)
{
	char *s = tl_client_strdup(src.len >= 0 ? src : tl_str_of(""));
	if (!s)
		return false;
	free(*dst);
	*dst = s;
	return true;
}

static void group_fail(struct tl_consumer *consumer, tl_err err, const char *what)
{
	struct consumer_group *group = &consumer->group;
	group->error = err;
	group->error_reported = false;
	group->retry_at_ns = tl_mono_ns() + 1000 * 1000000LL;
	tl_consumer_fail(consumer, err, "group %s: %s (%s)", consumer->group_id, what,
			 tl_err_name(err));
}

/* The offset the callback is told for @part: its position, else how it starts. */
static void part_told(const struct consumer_part *part, struct tl_consumer_partition *out)
{
	out->offset = part->position >= 0 ? part->position : part->start;
	out->timestamp_ms = part->position >= 0 ? 0 : part->start_timestamp_ms;
}

/* Makes the list a LOST would tell, when ASSIGNED is told (the assignment does not
 * change while it is told), so that a loss, learned in a response handler, allocates
 * nothing and cannot fail to be told. */
static tl_err lost_prepare(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	lost_free(group);
	int32_t n = consumer->part_count;
	if (!consumer->rebalance_cb || n == 0)
		return TL_OK;
	group->lost = calloc((size_t)n, sizeof(*group->lost));
	group->lost_topics = calloc((size_t)n, sizeof(*group->lost_topics));
	group->lost_count = n;
	for (int32_t i = 0; group->lost && group->lost_topics && i < n; i++) {
		group->lost_topics[i] = strdup(consumer->parts[i].topic);
		if (!group->lost_topics[i])
			break;
		group->lost[i].topic = group->lost_topics[i];
		group->lost[i].partition = consumer->parts[i].partition;
	}
	if (!group->lost || !group->lost_topics || !group->lost_topics[n - 1]) {
		lost_free(group);
		return TL_ERR_NOMEM;
	}
	return TL_OK;
}

/* Gives up the assignment for a new JoinGroup. @lost: the group went on without this
 * member; what the callback was told of is told LOST by the next poll. */
static void group_drop(struct tl_consumer *consumer, bool lost)
{
	struct consumer_group *group = &consumer->group;
	if (lost && group->told && group->lost) {
		TL_ASSERT(group->lost_count == consumer->part_count);
		for (int32_t i = 0; i < group->lost_count; i++) {
			TL_ASSERT(group->lost[i].partition == consumer->parts[i].partition);
			part_told(&consumer->parts[i], &group->lost[i]);
		}
		group->lost_untold = true;
	} else if (!group->lost_untold) {
		lost_free(group);
	}
	group->told = false;
	group->assigned_untold = false;
	(void)tl_consumer_assignment_set(consumer, NULL, 0);
	group->state = GROUP_JOIN;
	group->assign_pending = false;
}

/* Leaves STABLE for a new JoinGroup. Revoked (not @lost): the member keeps its
 * partitions until the next poll told the callback, then commits them (@commit and
 * enable.auto.commit) and drops them. Lost: dropped at once (a commit would be refused). */
static void group_rebalance(struct tl_consumer *consumer, bool commit, bool lost)
{
	struct consumer_group *group = &consumer->group;
	if (group->state == GROUP_REVOKING && !lost)
		return; /* revoked already */
	if (group->state == GROUP_STABLE && !lost) {
		group->state = GROUP_REVOKING;
		group->revoke_commit = commit;
		group->assign_pending = false;
		return;
	}
	group_drop(consumer, lost);
}

/* FENCED_INSTANCE_ID: another consumer with our group.instance.id took our place. Fatal
 * for this one, as in Java and librdkafka: rejoining would fence the other in turn, and
 * the two would take the partitions from each other for ever. No commit: the partitions
 * are the other's now. */
static void group_fenced(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	group_drop(consumer, true);
	group->state = GROUP_NONE;
	group->fatal = true;
	group->error = TL_ERR_FENCED_INSTANCE_ID;
	group->error_reported = false;
	(void)tl_consumer_group_fatal(consumer);
}

tl_err tl_consumer_group_fatal(struct tl_consumer *consumer)
{
	if (!consumer->group.fatal)
		return TL_OK;
	return tl_consumer_fail(
		consumer, consumer->group.error,
		"group %s: another consumer joined with group.instance.id=%s and fenced this one; give each consumer its own group.instance.id and destroy this one (%s)",
		consumer->group_id, consumer->group_instance_id ? consumer->group_instance_id : "",
		tl_err_name(consumer->group.error));
}

void tl_consumer_group_rejoin(struct tl_consumer *consumer, tl_err why)
{
	struct consumer_group *group = &consumer->group;
	if (group->state == GROUP_NONE)
		return;
	if (why == TL_ERR_FENCED_INSTANCE_ID) {
		group_fenced(consumer);
		return;
	}
	if (why == TL_ERR_UNKNOWN_MEMBER_ID)
		(void)str_set(&group->member_id, tl_str_of(""));
	if (tl_consumer_group_member(consumer))
		group_rebalance(consumer, false, why != TL_ERR_REBALANCE_IN_PROGRESS);
}

bool tl_consumer_group_member(const struct tl_consumer *consumer)
{
	return consumer->group.state == GROUP_STABLE || consumer->group.state == GROUP_REVOKING;
}

/* Handles an error of JoinGroup, SyncGroup or Heartbeat. */
static void group_error(struct tl_consumer *consumer, tl_err err, bool commit)
{
	struct consumer_group *group = &consumer->group;
	int64_t now = tl_mono_ns();
	switch (err) {
	case TL_ERR_UNKNOWN_MEMBER_ID:
		(void)str_set(&group->member_id, tl_str_of(""));
		group_rebalance(consumer, false, true);
		return;
	case TL_ERR_REBALANCE_IN_PROGRESS:
	case TL_ERR_ILLEGAL_GENERATION:
		group_rebalance(consumer, commit, err == TL_ERR_ILLEGAL_GENERATION);
		return;
	case TL_ERR_FENCED_INSTANCE_ID:
		group_fenced(consumer);
		return;
	case TL_ERR_NOT_COORDINATOR:
	case TL_ERR_COORDINATOR_NOT_AVAILABLE:
	case TL_ERR_COORDINATOR_LOAD_IN_PROGRESS:
	case TL_ERR_NETWORK_EXCEPTION:
	case TL_ERR_REQUEST_TIMED_OUT:
	case TL_ERR_CLOSED:
		tl_consumer_coordinator_lost(consumer);
		group->retry_at_ns = now + consumer->retry_backoff_ns;
		if (group->state != GROUP_STABLE)
			group->state = GROUP_JOIN;
		return;
	default:
		group_rebalance(consumer, false, true);
		group_fail(
			consumer, err,
			err == TL_ERR_INVALID_SESSION_TIMEOUT
				? "session.timeout.ms is outside the broker's group.min/max.session.timeout.ms"
			: err == TL_ERR_INCONSISTENT_GROUP_PROTOCOL
				? "other members of this group use another assignor or protocol type; use partition.assignment.strategy=range in all of them"
				: "the group coordinator refused this member");
		return;
	}
}

/* ---- subscribe ---- */

TL_EXPORT tl_err tl_consumer_subscribe(struct tl_consumer *consumer, const char *const *topics,
				       int32_t count)
{
	struct consumer_group *group = &consumer->group;
	if (!consumer->group_id)
		return tl_consumer_fail(
			consumer, TL_ERR_INVALID,
			"subscribe needs group.id; set group.id in the configuration");
	if (group->fatal)
		return tl_consumer_group_fatal(consumer);
	if (count <= 0 || count > GROUP_TOPICS_MAX || !topics)
		return tl_consumer_fail(consumer, TL_ERR_INVALID,
					"subscribe: between 1 and %d topics", GROUP_TOPICS_MAX);
	if (consumer->part_count > 0 && !consumer->subscribed)
		return tl_consumer_fail(
			consumer, TL_ERR_INVALID,
			"subscribe: this consumer has an assignment; assign no partitions first");
	char **copy = calloc((size_t)count, sizeof(*copy));
	int32_t *counts = calloc((size_t)count, sizeof(*counts));
	if (!copy || !counts)
		goto out_nomem;
	for (int32_t i = 0; i < count; i++) {
		if (!topics[i] || !topics[i][0]) {
			for (int32_t j = 0; j < i; j++)
				free(copy[j]);
			free(copy);
			free(counts);
			return tl_consumer_fail(consumer, TL_ERR_INVALID,
						"subscribe: topic %d is empty", i);
		}
		copy[i] = strdup(topics[i]);
		if (!copy[i] || tl_client_want_topic(consumer->client, topics[i]) != TL_OK) {
			for (int32_t j = 0; j <= i; j++)
				free(copy[j]);
			goto out_nomem;
		}
	}
	for (int32_t i = 0; i < group->topic_count; i++)
		free(group->topics[i]);
	free(group->topics);
	free(group->partition_counts);
	group->topics = copy;
	group->topic_count = count;
	group->partition_counts = counts;
	if (!group->member_id && !str_set(&group->member_id, tl_str_of("")))
		return TL_ERR_NOMEM;
	consumer->subscribed = true;
	if (group->state == GROUP_STABLE)
		group_rebalance(consumer, true, false);
	else if (group->state == GROUP_NONE)
		group->state = GROUP_FIND;
	return TL_OK;

out_nomem:
	free(copy);
	free(counts);
	return TL_ERR_NOMEM;
}

/* ---- JoinGroup ---- */

struct group_req {
	struct tl_consumer *consumer;
	int32_t generation_id;
};

/* ConsumerProtocolSubscription v0: version, topics, user_data (null). */
static void subscription_encode(struct tl_buf *out, const struct consumer_group *group)
{
	tl_buf_i16(out, 0);
	tl_buf_array_len(out, group->topic_count, false);
	for (int32_t i = 0; i < group->topic_count; i++)
		tl_buf_string(out, tl_str_of(group->topics[i]), false);
	tl_buf_i32(out, -1);
}

static void join_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct tl_consumer *consumer = arg;
	struct consumer_group *group = &consumer->group;
	struct tl_buf meta;
	tl_buf_init(&meta);
	subscription_encode(&meta, group);
	struct tl_join_group_request_join_group_request_protocol protocol;
	tl_join_group_request_join_group_request_protocol_defaults(&protocol);
	protocol.name = tl_str_of(GROUP_PROTOCOL);
	protocol.metadata.ptr = meta.data;
	protocol.metadata.len = (int32_t)meta.len;
	struct tl_join_group_request req;
	tl_join_group_request_defaults(&req);
	req.group_id = tl_str_of(consumer->group_id);
	req.session_timeout_ms = consumer->session_timeout_ms;
	req.rebalance_timeout_ms = consumer->max_poll_interval_ms;
	req.member_id = tl_str_of(group->member_id);
	req.group_instance_id = tl_str_of(consumer->group_instance_id);
	req.protocol_type = tl_str_of(GROUP_PROTOCOL_TYPE);
	req.protocols_count = 1;
	req.protocols = &protocol;
	if (meta.failed)
		body->failed = true;
	else
		tl_join_group_request_encode(body, version, &req);
	tl_buf_deinit(&meta);
}

/* Parses one member's subscription (versions 0-3 share the leading fields). */
static bool subscription_decode(struct tl_bytes meta, struct member_sub *out)
{
	struct tl_cursor c;
	tl_cursor_init(&c, meta.ptr, meta.len > 0 ? (size_t)meta.len : 0);
	(void)tl_cursor_i16(&c); /* version */
	int32_t count = tl_cursor_array_len(&c, false, false, GROUP_TOPICS_MAX);
	if (c.failed)
		return false;
	out->topics = calloc((size_t)count + 1, sizeof(*out->topics));
	if (!out->topics)
		return false;
	for (int32_t i = 0; i < count; i++) {
		struct tl_str topic = tl_cursor_string(&c, false, false);
		if (c.failed)
			return false;
		out->topics[i] = tl_client_strdup(topic);
		if (!out->topics[i])
			return false;
		out->topic_count++;
	}
	return true;
}

static bool join_keep_members(struct consumer_group *group,
			      const struct tl_join_group_response *resp)
{
	subs_free(group->members, group->member_count);
	group->members = NULL;
	group->member_count = 0;
	if (resp->members_count <= 0 || resp->members_count > GROUP_MEMBERS_MAX)
		return false;
	group->members = calloc((size_t)resp->members_count, sizeof(*group->members));
	if (!group->members)
		return false;
	for (int32_t i = 0; i < resp->members_count; i++) {
		const struct tl_join_group_response_join_group_response_member *m =
			&resp->members[i];
		struct member_sub *sub = &group->members[group->member_count++];
		sub->member_id = tl_client_strdup(m->member_id);
		if (m->group_instance_id.len >= 0)
			sub->instance_id = tl_client_strdup(m->group_instance_id);
		if (!sub->member_id || !subscription_decode(m->metadata, sub))
			return false;
	}
	return true;
}

static void sync_send(struct tl_consumer *consumer, struct member_sub **members,
		      struct tl_buf *assignments, int32_t count);
static void leader_assign_maybe(struct tl_consumer *consumer);

static void join_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct group_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	struct consumer_group *group = &consumer->group;
	free(req);
	group->request_in_flight = false;
	if (group->state != GROUP_JOINING)
		return;
	struct tl_arena arena;
	tl_arena_init(&arena, GROUP_ARENA_MAX);
	struct tl_join_group_response resp;
	if (err == TL_OK)
		err = tl_join_group_response_decode(body, version, &arena, &resp);
	if (err == TL_OK)
		err = (tl_err)resp.error_code;
	if (err == TL_ERR_MEMBER_ID_REQUIRED) {
		/* KIP-394: join again at once with the id the coordinator chose. */
		(void)str_set(&group->member_id, resp.member_id);
		group->state = GROUP_JOIN;
		goto out;
	}
	if (err != TL_OK) {
		group->state = GROUP_JOIN;
		group_error(consumer, err, false);
		goto out;
	}
	if (!str_set(&group->member_id, resp.member_id) ||
	    !str_set(&group->leader_id, resp.leader) ||
	    !str_set(&group->protocol_name, resp.protocol_name)) {
		group->state = GROUP_JOIN;
		goto out;
	}
	group->generation_id = resp.generation_id;
	if (strcmp(group->member_id, group->leader_id) == 0) {
		if (!join_keep_members(group, &resp)) {
			group->state = GROUP_JOIN;
			group->retry_at_ns = tl_mono_ns() + consumer->retry_backoff_ns;
			goto out;
		}
		group->assign_pending = true;
		leader_assign_maybe(consumer);
	} else {
		sync_send(consumer, NULL, NULL, 0);
	}
out:
	tl_arena_deinit(&arena);
}

static void join_send(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	struct group_req *req = calloc(1, sizeof(*req));
	if (!req)
		return;
	req->consumer = consumer;
	/* The coordinator parks JoinGroup until every member joined: up to the rebalance
	 * timeout (max.poll.interval.ms), as Java waits. */
	int32_t timeout_ms = consumer->max_poll_interval_ms > INT32_MAX - 5000
				     ? INT32_MAX
				     : consumer->max_poll_interval_ms + 5000;
	tl_err err =
		tl_consumer_send_timeout(consumer, consumer->coordinator, TL_CLIENT_API_JOIN_GROUP,
					 join_encode, consumer, timeout_ms, join_done, req);
	if (err != TL_OK) {
		free(req);
		if (err == TL_ERR_UNSUPPORTED_VERSION)
			group_fail(consumer, err,
				   "the coordinator does not support JoinGroup v0-v5");
		return;
	}
	group->request_in_flight = true;
	group->state = GROUP_JOINING;
}

/* ---- the range assignor (leader) ---- */

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool member_subscribes(const struct member_sub *m, const char *topic)
{
	for (int32_t t = 0; t < m->topic_count; t++)
		if (strcmp(m->topics[t], topic) == 0)
			return true;
	return false;
}

static int member_cmp(const void *a, const void *b)
{
	const struct member_sub *x = *(const struct member_sub *const *)a;
	const struct member_sub *y = *(const struct member_sub *const *)b;
	if (x->instance_id && y->instance_id)
		return strcmp(x->instance_id, y->instance_id);
	return strcmp(x->member_id, y->member_id);
}

/* The union of the members' topics, sorted, or NULL on OOM. */
static char **group_all_topics(const struct consumer_group *group, int32_t *count_out)
{
	int32_t cap = 0;
	for (int32_t i = 0; i < group->member_count; i++)
		cap += group->members[i].topic_count;
	char **all = calloc((size_t)cap + 1, sizeof(*all));
	if (!all)
		return NULL;
	int32_t n = 0;
	for (int32_t i = 0; i < group->member_count; i++)
		for (int32_t t = 0; t < group->members[i].topic_count; t++)
			all[n++] = group->members[i].topics[t];
	qsort(all, (size_t)n, sizeof(*all), str_ptr_cmp);
	int32_t unique = 0;
	for (int32_t i = 0; i < n; i++)
		if (unique == 0 || strcmp(all[unique - 1], all[i]) != 0)
			all[unique++] = all[i];
	*count_out = unique;
	return all;
}

/* Partition count of @topic from metadata: -1 while unknown, 0 if it does not exist. */
static int32_t topic_partitions(struct tl_consumer *consumer, const char *topic)
{
	const struct tl_client_topic *t = tl_client_topic(consumer->client, topic);
	if (!t) {
		(void)tl_client_want_topic(consumer->client, topic);
		return -1;
	}
	if (t->partition_count == 0 && t->error != 0)
		return 0;
	return t->partition_count;
}

/* Appends ConsumerProtocolAssignment v0 for member @m to @out. */
static void assignment_encode(struct tl_consumer *consumer, struct tl_buf *out, char **topics,
			      int32_t topic_count, struct member_sub **sorted, int32_t member_index)
{
	const struct consumer_group *group = &consumer->group;
	const struct member_sub *m = sorted[member_index];
	int32_t owned_topics = 0;
	for (int32_t t = 0; t < topic_count; t++)
		owned_topics += member_subscribes(m, topics[t]);
	tl_buf_i16(out, 0);
	tl_buf_array_len(out, owned_topics, false);
	for (int32_t t = 0; t < topic_count; t++) {
		if (!member_subscribes(m, topics[t]))
			continue;
		int32_t partitions = TL_MAX(topic_partitions(consumer, topics[t]), 0);
		int32_t members = 0, rank = 0;
		for (int32_t i = 0; i < group->member_count; i++) {
			if (!member_subscribes(sorted[i], topics[t]))
				continue;
			if (i < member_index)
				rank++;
			members++;
		}
		int32_t per = partitions / members, extra = partitions % members;
		int32_t start = per * rank + TL_MIN(rank, extra);
		int32_t length = per + (rank < extra ? 1 : 0);
		tl_buf_string(out, tl_str_of(topics[t]), false);
		tl_buf_array_len(out, length, false);
		for (int32_t p = start; p < start + length; p++)
			tl_buf_i32(out, p);
	}
	tl_buf_i32(out, -1); /* user_data */
}

static void leader_assign_maybe(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	if (!group->assign_pending || group->request_in_flight)
		return;
	int32_t topic_count = 0;
	char **topics = group_all_topics(group, &topic_count);
	struct member_sub **sorted = calloc((size_t)group->member_count + 1, sizeof(*sorted));
	struct tl_buf *bufs = calloc((size_t)group->member_count + 1, sizeof(*bufs));
	if (!topics || !sorted || !bufs)
		goto out;
	bool known = true;
	for (int32_t t = 0; t < topic_count; t++)
		known &= topic_partitions(consumer, topics[t]) >= 0;
	if (!known) {
		tl_client_metadata_request(consumer->client);
		goto out; /* again at the next I/O round */
	}
	for (int32_t i = 0; i < group->member_count; i++)
		sorted[i] = &group->members[i];
	qsort(sorted, (size_t)group->member_count, sizeof(*sorted), member_cmp);
	for (int32_t i = 0; i < group->member_count; i++) {
		tl_buf_init(&bufs[i]);
		assignment_encode(consumer, &bufs[i], topics, topic_count, sorted, i);
	}
	group->assign_pending = false;
	for (int32_t i = 0; i < group->topic_count; i++)
		group->partition_counts[i] = topic_partitions(consumer, group->topics[i]);
	sync_send(consumer, sorted, bufs, group->member_count); /* bufs[i] is sorted[i]'s */
	for (int32_t i = 0; i < group->member_count; i++)
		tl_buf_deinit(&bufs[i]);
out:
	free(topics);
	free(sorted);
	free(bufs);
}

/* ---- SyncGroup ---- */

struct sync_arg {
	struct tl_consumer *consumer;
	struct member_sub **members; /* NULL: follower */
	struct tl_buf *assignments;  /* assignments[i] is members[i]'s */
	int32_t count;
};

static void sync_encode(struct tl_buf *body, int16_t version, void *varg)
{
	struct sync_arg *arg = varg;
	struct tl_consumer *consumer = arg->consumer;
	struct consumer_group *group = &consumer->group;
	struct tl_sync_group_request req;
	tl_sync_group_request_defaults(&req);
	req.group_id = tl_str_of(consumer->group_id);
	req.generation_id = group->generation_id;
	req.member_id = tl_str_of(group->member_id);
	req.group_instance_id = tl_str_of(consumer->group_instance_id);
	req.protocol_type = tl_str_of(GROUP_PROTOCOL_TYPE);
	req.protocol_name = tl_str_of(group->protocol_name);
	struct tl_sync_group_request_sync_group_request_assignment *as =
		calloc((size_t)arg->count + 1, sizeof(*as));
	if (!as) {
		body->failed = true;
		return;
	}
	for (int32_t i = 0; i < arg->count; i++) {
		tl_sync_group_request_sync_group_request_assignment_defaults(&as[i]);
		as[i].member_id = tl_str_of(arg->members[i]->member_id);
		as[i].assignment.ptr = arg->assignments[i].data;
		as[i].assignment.len = (int32_t)arg->assignments[i].len;
		if (arg->assignments[i].failed)
			body->failed = true;
	}
	req.assignments_count = arg->count;
	req.assignments = as;
	tl_sync_group_request_encode(body, version, &req);
	free(as);
}

/* Applies ConsumerProtocolAssignment: every partition starts from its committed offset. */
static tl_err assignment_apply(struct tl_consumer *consumer, struct tl_bytes bytes)
{
	struct tl_cursor c;
	tl_cursor_init(&c, bytes.ptr, bytes.len > 0 ? (size_t)bytes.len : 0);
	if (bytes.len <= 0)
		return tl_consumer_assignment_set(consumer, NULL, 0);
	(void)tl_cursor_i16(&c);
	int32_t topics = tl_cursor_array_len(&c, false, false, GROUP_TOPICS_MAX);
	struct tl_consumer_partition *parts = NULL;
	char **names = calloc((size_t)topics + 1, sizeof(*names));
	int32_t count = 0;
	tl_err err = TL_ERR_NOMEM;
	if (!names)
		goto out;
	for (int32_t t = 0; t < topics && !c.failed; t++) {
		names[t] = tl_client_strdup(tl_cursor_string(&c, false, false));
		int32_t n = tl_cursor_array_len(&c, false, false, 1000000);
		if (!names[t] || c.failed)
			break;
		struct tl_consumer_partition *p =
			realloc(parts, (size_t)(count + n + 1) * sizeof(*parts));
		if (!p)
			goto out;
		parts = p;
		for (int32_t i = 0; i < n; i++) {
			parts[count].topic = names[t];
			parts[count].partition = tl_cursor_i32(&c);
			parts[count].offset = TL_CONSUMER_OFFSET_COMMITTED;
			parts[count].timestamp_ms = 0;
			count++;
		}
	}
	err = c.failed ? TL_ERR_CORRUPT_MESSAGE
		       : tl_consumer_assignment_set(consumer, parts, count);
out:
	for (int32_t t = 0; names && t < topics; t++)
		free(names[t]);
	free(names);
	free(parts);
	return err;
}

static void sync_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct group_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	struct consumer_group *group = &consumer->group;
	int32_t generation_id = req->generation_id;
	free(req);
	group->request_in_flight = false;
	if (group->state != GROUP_SYNCING || group->generation_id != generation_id)
		return;
	struct tl_arena arena;
	tl_arena_init(&arena, GROUP_ARENA_MAX);
	struct tl_sync_group_response resp;
	if (err == TL_OK)
		err = tl_sync_group_response_decode(body, version, &arena, &resp);
	if (err == TL_OK)
		err = (tl_err)resp.error_code;
	if (err == TL_OK)
		err = assignment_apply(consumer, resp.assignment);
	if (err != TL_OK) {
		group->state = GROUP_JOIN;
		group_error(consumer, err, false);
	} else {
		group->state = GROUP_STABLE;
		group->assigned_untold = true;
		group->error = TL_OK;
		group->next_heartbeat_ns =
			tl_mono_ns() + (int64_t)consumer->heartbeat_interval_ms * 1000000;
	}
	tl_arena_deinit(&arena);
}

static void sync_send(struct tl_consumer *consumer, struct member_sub **members,
		      struct tl_buf *assignments, int32_t count)
{
	struct consumer_group *group = &consumer->group;
	struct group_req *req = calloc(1, sizeof(*req));
	if (!req)
		return;
	req->consumer = consumer;
	req->generation_id = group->generation_id;
	struct sync_arg arg = {consumer, members, assignments, count};
	tl_err err = tl_consumer_send(consumer, consumer->coordinator, TL_CLIENT_API_SYNC_GROUP,
				      sync_encode, &arg, sync_done, req);
	if (err != TL_OK) {
		free(req);
		group->state = GROUP_JOIN;
		group->retry_at_ns = tl_mono_ns() + consumer->retry_backoff_ns;
		return;
	}
	group->request_in_flight = true;
	group->state = GROUP_SYNCING;
}

/* ---- Heartbeat ---- */

static void heartbeat_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct tl_consumer *consumer = arg;
	struct tl_heartbeat_request req;
	tl_heartbeat_request_defaults(&req);
	req.group_id = tl_str_of(consumer->group_id);
	req.generation_id = consumer->group.generation_id;
	req.member_id = tl_str_of(consumer->group.member_id);
	req.group_instance_id = tl_str_of(consumer->group_instance_id);
	tl_heartbeat_request_encode(body, version, &req);
}

static void heartbeat_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct group_req *req = arg;
	struct tl_consumer *consumer = req->consumer;
	struct consumer_group *group = &consumer->group;
	int32_t generation_id = req->generation_id;
	free(req);
	group->heartbeat_in_flight = false;
	if (group->state != GROUP_STABLE || group->generation_id != generation_id)
		return;
	struct tl_arena arena;
	tl_arena_init(&arena, GROUP_ARENA_MAX);
	struct tl_heartbeat_response resp;
	if (err == TL_OK)
		err = tl_heartbeat_response_decode(body, version, &arena, &resp);
	if (err == TL_OK)
		err = (tl_err)resp.error_code;
	if (err != TL_OK)
		group_error(consumer, err, true);
	tl_arena_deinit(&arena);
}

static void heartbeat_maybe(struct tl_consumer *consumer, int64_t now)
{
	struct consumer_group *group = &consumer->group;
	if (group->heartbeat_in_flight || now < group->next_heartbeat_ns)
		return;
	struct group_req *req = calloc(1, sizeof(*req));
	if (!req)
		return;
	req->consumer = consumer;
	req->generation_id = group->generation_id;
	if (tl_consumer_send(consumer, consumer->coordinator, TL_CLIENT_API_HEARTBEAT,
			     heartbeat_encode, consumer, heartbeat_done, req) != TL_OK) {
		free(req);
		return;
	}
	group->heartbeat_in_flight = true;
	group->next_heartbeat_ns = now + (int64_t)consumer->heartbeat_interval_ms * 1000000;
}

/* The leader rejoins when a subscribed topic got more partitions. */
static bool leader_sees_new_partitions(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	if (!group->leader_id || !group->member_id || strcmp(group->leader_id, group->member_id))
		return false;
	for (int32_t i = 0; i < group->topic_count; i++) {
		const struct tl_client_topic *t =
			tl_client_topic(consumer->client, group->topics[i]);
		if (t && t->partition_count > group->partition_counts[i])
			return true;
	}
	return false;
}

/* ---- the group's share of an I/O round ---- */

void tl_consumer_group_io(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	if (group->state == GROUP_NONE)
		return;
	int64_t now = tl_mono_ns();
	if (!tl_consumer_coordinator_ready(consumer))
		return;
	switch (group->state) {
	case GROUP_FIND:
		group->state = GROUP_JOIN;
		/* fall through */
	case GROUP_JOIN:
		/* Not before the callback heard of a loss: the partitions are gone first. */
		if (now >= group->retry_at_ns && !group->request_in_flight && !group->lost_untold)
			join_send(consumer);
		return;
	case GROUP_JOINING:
		leader_assign_maybe(consumer);
		return;
	case GROUP_SYNCING:
	case GROUP_REVOKING: /* JoinGroup waits for the callback (next poll) */
		return;
	case GROUP_STABLE:
		if (leader_sees_new_partitions(consumer)) {
			group_rebalance(consumer, true, false);
			return;
		}
		heartbeat_maybe(consumer, now);
		return;
	case GROUP_NONE:
		return;
	}
}

/* ---- LeaveGroup ---- */

static void leave_encode(struct tl_buf *body, int16_t version, void *arg)
{
	struct tl_consumer *consumer = arg;
	struct tl_leave_group_request req;
	tl_leave_group_request_defaults(&req);
	req.group_id = tl_str_of(consumer->group_id);
	req.member_id = tl_str_of(consumer->group.member_id);
	struct tl_leave_group_request_member_identity member;
	tl_leave_group_request_member_identity_defaults(&member);
	member.member_id = tl_str_of(consumer->group.member_id);
	req.members_count = 1;
	req.members = &member;
	tl_leave_group_request_encode(body, version, &req);
}

/* Shared by the waiter and the callback; whoever comes last frees it. */
struct leave_wait {
	bool done;
	bool abandoned;
};

static void leave_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct leave_wait *wait = arg;
	TL_UNUSED(err);
	TL_UNUSED(body);
	TL_UNUSED(version);
	if (wait->abandoned)
		free(wait);
	else
		wait->done = true;
}

void tl_consumer_group_leave(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	/* Static members keep their partitions over a restart: Java sends no LeaveGroup. */
	if (group->state == GROUP_NONE || !group->member_id || !group->member_id[0] ||
	    consumer->group_instance_id || consumer->coordinator < 0)
		return;
	struct leave_wait *wait = calloc(1, sizeof(*wait));
	if (!wait)
		return;
	if (tl_consumer_send(consumer, consumer->coordinator, TL_CLIENT_API_LEAVE_GROUP,
			     leave_encode, consumer, leave_done, wait) != TL_OK) {
		free(wait);
		return;
	}
	int64_t deadline = tl_mono_ns() + GROUP_LEAVE_WAIT_MS * 1000000LL;
	while (!wait->done && tl_mono_ns() < deadline)
		tl_client_poll(consumer->client, 50);
	if (wait->done)
		free(wait);
	else
		wait->abandoned = true;
	group->state = GROUP_NONE;
}

/* ---- the rebalance callback ---- */

/* Runs the callback, flagged so that a poll inside it is refused. */
static void callback_run(struct tl_consumer *consumer, int event,
			 const struct tl_consumer_partition *parts, int32_t count)
{
	consumer->in_rebalance_cb = true;
	consumer->rebalance_cb(consumer, event, parts, count, consumer->rebalance_opaque);
	consumer->in_rebalance_cb = false;
}

/* Tells @event with the assignment (part_told()'s offsets). */
static tl_err tell_assignment(struct tl_consumer *consumer, int event)
{
	if (!consumer->rebalance_cb)
		return TL_OK;
	int32_t n = consumer->part_count;
	struct tl_consumer_partition *list = calloc((size_t)n + 1, sizeof(*list));
	if (!list)
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < n; i++) {
		list[i].topic = consumer->parts[i].topic;
		list[i].partition = consumer->parts[i].partition;
		part_told(&consumer->parts[i], &list[i]);
	}
	/* The callback may commit: the client is polled under it, and responses may move
	 * the group on (a LOST kept for the next poll, the assignment dropped); @list and
	 * its topics (retired, freed by the next poll) stay valid meanwhile. */
	callback_run(consumer, event, list, n);
	free(list);
	return TL_OK;
}

static void tell_lost(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	if (!group->lost_untold)
		return;
	group->lost_untold = false;
	callback_run(consumer, TL_CONSUMER_LOST, group->lost, group->lost_count);
	lost_free(group);
}

tl_err tl_consumer_group_events(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	tl_err err;
	tell_lost(consumer);
	if (group->state == GROUP_REVOKING) {
		/* Nothing is told of an empty assignment's end (Java's eager protocol tells
		 * an empty revocation; its LOST, and the cooperative protocol's, do not). */
		if (group->told && consumer->part_count > 0) {
			/* Cleared first: a loss the callback's commit learns of is not told too. */
			group->told = false;
			err = tell_assignment(consumer, TL_CONSUMER_REVOKED);
			if (err != TL_OK) {
				group->told = true;
				return err;
			}
		}
		/* Auto-commit waits (a commit refused meanwhile may move the group on). */
		if (group->state == GROUP_REVOKING && group->revoke_commit)
			tl_consumer_commit_for_rebalance(consumer);
		if (group->state == GROUP_REVOKING)
			group_drop(consumer, false);
	}
	if (group->state == GROUP_STABLE && group->assigned_untold) {
		TL_ASSERT_DEBUG(!group->lost_untold && !group->told); /* invariant (3) */
		/* Set first: a rebalance the callback's commit learns of ends what it was told. */
		err = lost_prepare(consumer);
		if (err != TL_OK)
			return err;
		group->assigned_untold = false;
		group->told = true;
		err = tell_assignment(consumer, TL_CONSUMER_ASSIGNED);
		if (err != TL_OK) {
			group->assigned_untold = true;
			group->told = false;
			return err;
		}
	}
	return TL_OK;
}

void tl_consumer_group_close(struct tl_consumer *consumer)
{
	struct consumer_group *group = &consumer->group;
	if (!consumer->rebalance_cb || consumer->in_rebalance_cb)
		return;
	tell_lost(consumer);
	/* The assignment stays for tl_consumer_destroy()'s commit, in the generation. */
	if (tl_consumer_group_member(consumer) && group->told && consumer->part_count > 0) {
		group->told = false;
		(void)tell_assignment(consumer, TL_CONSUMER_REVOKED);
	}
}
