/* txn_state.h - the transaction state machine of the coordinator, as a pure function
 * of (state, whether a change is in flight, event), so every transition and every
 * refusal is decided in one place and unit-tested (broker/tests/txn_state_test.c).
 * States carry Kafka's names and numbers, which is also how __transaction_state stores
 * them. txn.c does the I/O around each step. */
#ifndef TL_BROKER_TXN_STATE_H
#define TL_BROKER_TXN_STATE_H

#include <stdbool.h>

#include "tally/error.h"

enum tl_txn_state {
	TL_TXN_EMPTY = 0,
	TL_TXN_ONGOING = 1,
	TL_TXN_PREPARE_COMMIT = 2,
	TL_TXN_PREPARE_ABORT = 3,
	TL_TXN_COMPLETE_COMMIT = 4,
	TL_TXN_COMPLETE_ABORT = 5,
	TL_TXN_DEAD = 6,
	TL_TXN_PREPARE_EPOCH_FENCE = 7, /* read as PrepareAbort */
	TL_TXN_STATE_COUNT = 8,
};

enum tl_txn_event {
	TL_TXN_EV_INIT,         /* InitProducerId for the transactional id */
	TL_TXN_EV_ADD,          /* AddPartitionsToTxn / AddOffsetsToTxn */
	TL_TXN_EV_COMMIT,       /* EndTxn(commit) */
	TL_TXN_EV_ABORT,        /* EndTxn(abort) */
	TL_TXN_EV_MARKERS_DONE, /* every marker of the decision is durable */
	TL_TXN_EV_TIMEOUT,      /* transaction.timeout.ms passed */
	TL_TXN_EV_EXPIRE,       /* transactional.id.expiration.ms passed while idle */
};

/* What to do for one event. */
struct tl_txn_step {
	enum tl_txn_state next; /* the state to persist (== current when !change) */
	bool change;            /* a state record must be written */
	bool bump_epoch;        /* the new state comes with epoch + 1 (fencing) */
	tl_err err;             /* the answer: TL_OK, or the error for the caller; with a
				 * change and an error, the change still happens (a fencing
				 * abort answers CONCURRENT_TRANSACTIONS so the caller retries) */
};

/* The step for @event in @state; @busy: a state record or markers are in flight. */
struct tl_txn_step tl_txn_step(enum tl_txn_state state, bool busy, enum tl_txn_event event);

bool tl_txn_state_is_deciding(enum tl_txn_state state);
const char *tl_txn_state_name(enum tl_txn_state state);

#endif
