/* markers.h - transaction markers for partitions led by other brokers (Kafka's
 * TransactionMarkerChannelManager): the coordinator's COMMIT/ABORT markers travel as
 * WriteTxnMarkers requests to each partition's leader. Thread: the broker's event
 * loop, except the sender threads (one per destination broker) inside markers.c. */
#ifndef TL_BROKER_MARKERS_H
#define TL_BROKER_MARKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "tally/error.h"

struct tl_broker;
struct tl_markers;

/* Sets up the senders (a thread per destination broker starts with its first marker).
 * Cluster mode only. */
tl_err tl_markers_create(struct tl_broker *broker, struct tl_markers **out);
/* Stops the threads; markers still queued or in flight complete with
 * TL_ERR_NETWORK_EXCEPTION (their callbacks run here). */
void tl_markers_destroy(struct tl_broker *broker, struct tl_markers *markers);
/* The eventfd the loop watches; when readable call tl_markers_on_event(). */
int tl_markers_fd(const struct tl_markers *markers);
void tl_markers_on_event(struct tl_broker *broker);

/* Called on the loop once the marker is durable on @leader's partition (TL_OK), or
 * with the error that leader or the connection gave (retried by the caller). */
typedef void (*tl_markers_done_fn)(void *ctx, tl_err err);
/* Sends one marker for @topic/@partition to broker @leader. Returns TL_OK (then @done
 * runs later, on the loop), or TL_ERR_NOT_LEADER_OR_FOLLOWER when the view has no such
 * broker (the partition has no leader now) or TL_ERR_NOMEM; then @done never runs. */
tl_err tl_markers_send(struct tl_broker *broker, int32_t leader, const char *topic,
		       int32_t partition, int64_t producer_id, int16_t producer_epoch, bool commit,
		       int32_t coordinator_epoch, tl_markers_done_fn done, void *ctx);

#endif
