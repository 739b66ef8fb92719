/* group.h - the classic consumer group coordinator (KIP-62/394/345 era protocol).
 * The coordinator runs the membership state machine; the group leader client computes
 * assignments. This node is the coordinator of every group. Committed offsets and group
 * metadata live in the internal topic __consumer_offsets (group_store.h). */
#ifndef TL_BROKER_GROUP_H
#define TL_BROKER_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "tally/error.h"

struct tl_broker;
struct tl_request;
struct tl_groups;

/* Opens (or creates) __consumer_offsets and rebuilds every group and committed offset by
 * replaying it. Returns TL_OK, or an error after a crit line: the broker must not serve
 * groups whose committed offsets it could not read. */
tl_err tl_groups_create(struct tl_broker *broker, struct tl_groups **groups_out);
void tl_groups_destroy(struct tl_groups *groups);
/* Cluster mode: this broker became (@leading) or stopped being the leader of partition
 * @partition of __consumer_offsets. Becoming leader loads that partition's groups from
 * its log (to the log end); stopping unloads them. Kafka's onElection/onResignation. */
void tl_groups_on_leadership(struct tl_groups *groups, int32_t partition, bool leading);
/* Session and rebalance timeouts; call every loop turn (cheap when nothing is due). */
void tl_groups_tick(struct tl_groups *groups, int64_t now_ms);
int64_t tl_groups_next_deadline(const struct tl_groups *groups);

/* Metrics: groups this broker coordinates; and a walk over them calling @fn once per
 * group (@topic NULL, @partition -1) and then once per committed offset. */
int32_t tl_groups_count(const struct tl_groups *groups);
typedef void (*tl_groups_offset_fn)(void *ctx, const char *group, const char *state,
				    const char *topic, int32_t partition, int64_t offset);
void tl_groups_each_offset(const struct tl_groups *groups, tl_groups_offset_fn fn, void *ctx);

void tl_handle_find_coordinator(struct tl_request *req, struct tl_cursor *body);
void tl_handle_join_group(struct tl_request *req, struct tl_cursor *body);
void tl_handle_sync_group(struct tl_request *req, struct tl_cursor *body);
void tl_handle_heartbeat(struct tl_request *req, struct tl_cursor *body);
void tl_handle_leave_group(struct tl_request *req, struct tl_cursor *body);
void tl_handle_offset_commit(struct tl_request *req, struct tl_cursor *body);
void tl_handle_txn_offset_commit(struct tl_request *req, struct tl_cursor *body);
/* @producer_id's COMMIT (@commit) or ABORT marker is durable in offsets partition
 * @partition: the offsets its transaction staged for every group of that partition
 * become committed offsets or are dropped. Called for every marker appended to
 * __consumer_offsets, whether the transaction coordinator is this broker or another
 * (WriteTxnMarkers), as Kafka's group coordinator does; replay applies the markers
 * it reads the same way. */
void tl_groups_txn_complete_partition(struct tl_groups *groups, int32_t partition,
				      int64_t producer_id, bool commit);
void tl_handle_offset_fetch(struct tl_request *req, struct tl_cursor *body);
void tl_handle_list_groups(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_groups(struct tl_request *req, struct tl_cursor *body);
void tl_handle_delete_groups(struct tl_request *req, struct tl_cursor *body);
void tl_handle_offset_delete(struct tl_request *req, struct tl_cursor *body);

#endif
