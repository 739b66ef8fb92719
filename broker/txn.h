/* txn.h - the transaction coordinator (KIP-98): transactional.id -> producer id and
 * epoch, the transaction state machine, COMMIT/ABORT markers, timeouts, and the
 * partition-side check that a transactional batch belongs to a transaction the
 * coordinator registered (KIP-890). State lives in the internal topic
 * __transaction_state. Thread: the broker's event loop. */
#ifndef TL_BROKER_TXN_H
#define TL_BROKER_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "tally/error.h"

#define TL_TXN_TOPIC "__transaction_state"

struct tl_broker;
struct tl_request;
struct tl_cursor;
struct tl_txns;
struct tl_partition;
struct tl_init_producer_id_request;

/* Opens __transaction_state (creating it), replays it, and resumes the markers of every
 * transaction that was deciding (Prepare*) when the broker stopped. */
tl_err tl_txns_open(struct tl_broker *broker, struct tl_txns **txns_out);
void tl_txns_close(struct tl_txns *txns);
/* The partition of __transaction_state that holds @id (NULL in cluster mode while the
 * topic does not exist). */
struct tl_partition *tl_txns_partition(const struct tl_txns *txns, struct tl_str id);
/* Cluster mode: asks the controller to create __transaction_state if the view lacks
 * it. At most once a second. */
void tl_txns_ensure_topic(struct tl_txns *txns);
/* Cluster mode: this broker became (@leading) or stopped being the leader of
 * __transaction_state's partition @partition: loads its transactions and resumes the
 * markers of those deciding, or drops them. */
void tl_txns_on_leadership(struct tl_txns *txns, int32_t partition, bool leading);
/* Aborts transactions open past their timeout (fencing their producer), expires idle
 * transactional ids, retries markers that failed. About once a second. */
void tl_txns_tick(struct tl_txns *txns, int64_t now_ms);

/* May a transactional batch of @producer_id/@producer_epoch, sent under
 * @transactional_id, be appended to @topic's @partition? TL_OK when the coordinator
 * added that partition to that id's ongoing transaction; INVALID_PRODUCER_ID_MAPPING
 * when the producer id is another id's; INVALID_PRODUCER_EPOCH for an older epoch;
 * INVALID_TXN_STATE otherwise
 * (a late batch of a finished transaction would otherwise open a hanging one). */
tl_err tl_txn_verify(struct tl_txns *txns, struct tl_str transactional_id, int64_t producer_id,
		     int16_t producer_epoch, struct tl_str topic, int32_t partition);

/* Handlers. InitProducerId's transactional path is called by producer_ids.c. */
void tl_txn_init_producer_id(struct tl_request *req, const struct tl_init_producer_id_request *msg);
void tl_handle_add_partitions_to_txn(struct tl_request *req, struct tl_cursor *body);
void tl_handle_add_offsets_to_txn(struct tl_request *req, struct tl_cursor *body);
void tl_handle_end_txn(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_transactions(struct tl_request *req, struct tl_cursor *body);
void tl_handle_list_transactions(struct tl_request *req, struct tl_cursor *body);
void tl_handle_describe_producers(struct tl_request *req, struct tl_cursor *body);
/* WriteTxnMarkers, from the coordinator of a transaction on another broker: appends
 * each COMMIT/ABORT marker to the partitions this broker leads, answers each once it
 * is replicated (acks=all), NOT_LEADER_OR_FOLLOWER for the others. */
void tl_handle_write_txn_markers(struct tl_request *req, struct tl_cursor *body);

/* For TxnOffsetCommit (group.c): checks that @producer_id/@producer_epoch of
 * @transactional_id has an ongoing transaction to which AddOffsetsToTxn added @group_id.
 * TL_OK, PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING or INVALID_TXN_STATE. */
tl_err tl_txn_verify_offsets(struct tl_txns *txns, struct tl_str transactional_id,
			     int64_t producer_id, int16_t producer_epoch, struct tl_str group_id);

#endif
