/* group.h - the classic consumer group coordinator (KIP-62/394/345 era protocol).
 * The coordinator runs the membership state machine; the group leader client computes
 * assignments. This node is the coordinator of every group. */
#ifndef TL_BROKER_GROUP_H
#define TL_BROKER_GROUP_H

#include <stdint.h>

#include "common/buf.h"

struct tl_broker;
struct tl_request;
struct tl_groups;

struct tl_groups *tl_groups_create(struct tl_broker *broker);
void tl_groups_destroy(struct tl_groups *groups);
/* Session and rebalance timeouts; call every loop turn (cheap when nothing is due). */
void tl_groups_tick(struct tl_groups *groups, int64_t now_ms);
int64_t tl_groups_next_deadline(const struct tl_groups *groups);

void tl_handle_find_coordinator(struct tl_request *req, struct tl_cursor *body);
void tl_handle_join_group(struct tl_request *req, struct tl_cursor *body);
void tl_handle_sync_group(struct tl_request *req, struct tl_cursor *body);
void tl_handle_heartbeat(struct tl_request *req, struct tl_cursor *body);
void tl_handle_leave_group(struct tl_request *req, struct tl_cursor *body);
void tl_handle_offset_commit(struct tl_request *req, struct tl_cursor *body);
void tl_handle_offset_fetch(struct tl_request *req, struct tl_cursor *body);
void tl_handle_list_groups(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_groups(struct tl_request *req, struct tl_cursor *body);
void tl_handle_delete_groups(struct tl_request *req, struct tl_cursor *body);
void tl_handle_offset_delete(struct tl_request *req, struct tl_cursor *body);

#endif
