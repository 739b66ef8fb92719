/* txn_state.c - the coordinator's transition table, see txn_state.h.
 *   Empty | Complete*  --INIT-->        Empty, epoch + 1
 *   Ongoing            --INIT-->        PrepareAbort, epoch + 1 (fence the old
 *                                       instance; it answers CONCURRENT_TRANSACTIONS)
 *   Empty | Complete* | Ongoing --ADD--> Ongoing
 *   Ongoing            --COMMIT/ABORT--> PrepareCommit / PrepareAbort
 *   Complete(X)        --END(X)-->      no change, TL_OK (a retry of the decision)
 *   Prepare(X)         --MARKERS_DONE--> Complete(X)
 *   Ongoing            --TIMEOUT-->     PrepareAbort, epoch + 1
 *   Empty | Complete*  --EXPIRE-->      Dead
 * While busy, or deciding, client events get CONCURRENT_TRANSACTIONS (retriable);
 * anything else is INVALID_TXN_STATE. */
#include "broker/txn_state.h"

static const char *const names[TL_TXN_STATE_COUNT] = {
	"Empty",          "Ongoing",       "PrepareCommit", "PrepareAbort",
	"CompleteCommit", "CompleteAbort", "Dead",          "PrepareEpochFence",
};

const char *tl_txn_state_name(enum tl_txn_state state)
{
	return (unsigned)state < TL_TXN_STATE_COUNT ? names[state] : "Unknown";
}

bool tl_txn_state_is_deciding(enum tl_txn_state state)
{
	return state == TL_TXN_PREPARE_COMMIT || state == TL_TXN_PREPARE_ABORT ||
	       state == TL_TXN_PREPARE_EPOCH_FENCE;
}

static bool is_idle(enum tl_txn_state state)
{
	return state == TL_TXN_EMPTY || state == TL_TXN_COMPLETE_COMMIT ||
	       state == TL_TXN_COMPLETE_ABORT;
}

static struct tl_txn_step to(enum tl_txn_state next, bool bump, tl_err err)
{
	return (struct tl_txn_step){.next = next, .change = true, .bump_epoch = bump, .err = err};
}

static struct tl_txn_step stay(enum tl_txn_state state, tl_err err)
{
	return (struct tl_txn_step){.next = state, .err = err};
}

struct tl_txn_step tl_txn_step(enum tl_txn_state state, bool busy, enum tl_txn_event event)
{
	bool client = event == TL_TXN_EV_INIT || event == TL_TXN_EV_ADD ||
		      event == TL_TXN_EV_COMMIT || event == TL_TXN_EV_ABORT;
	if (client && state == TL_TXN_DEAD)
		return stay(state, event == TL_TXN_EV_INIT ? TL_ERR_CONCURRENT_TRANSACTIONS
							   : TL_ERR_INVALID_PRODUCER_ID_MAPPING);
	if (client && (busy || tl_txn_state_is_deciding(state)))
		return stay(state, TL_ERR_CONCURRENT_TRANSACTIONS);
	switch (event) {
	case TL_TXN_EV_INIT:
		if (state == TL_TXN_ONGOING)
			return to(TL_TXN_PREPARE_ABORT, true, TL_ERR_CONCURRENT_TRANSACTIONS);
		return to(TL_TXN_EMPTY, true, TL_OK);
	case TL_TXN_EV_ADD:
		return state == TL_TXN_ONGOING ? stay(state, TL_OK)
					       : to(TL_TXN_ONGOING, false, TL_OK);
	case TL_TXN_EV_COMMIT:
	case TL_TXN_EV_ABORT: {
		bool commit = event == TL_TXN_EV_COMMIT;
		if (state == TL_TXN_ONGOING)
			return to(commit ? TL_TXN_PREPARE_COMMIT : TL_TXN_PREPARE_ABORT, false,
				  TL_OK);
		if (state == (commit ? TL_TXN_COMPLETE_COMMIT : TL_TXN_COMPLETE_ABORT))
			return stay(state, TL_OK);
		return stay(state, TL_ERR_INVALID_TXN_STATE);
	}
	case TL_TXN_EV_MARKERS_DONE:
		if (state == TL_TXN_PREPARE_COMMIT)
			return to(TL_TXN_COMPLETE_COMMIT, false, TL_OK);
		if (state == TL_TXN_PREPARE_ABORT || state == TL_TXN_PREPARE_EPOCH_FENCE)
			return to(TL_TXN_COMPLETE_ABORT, false, TL_OK);
		return stay(state, TL_ERR_INVALID_TXN_STATE);
	case TL_TXN_EV_TIMEOUT:
		if (state == TL_TXN_ONGOING && !busy)
			return to(TL_TXN_PREPARE_ABORT, true, TL_OK);
		return stay(state, TL_OK);
	case TL_TXN_EV_EXPIRE:
		if (is_idle(state) && !busy)
			return to(TL_TXN_DEAD, false, TL_OK);
		return stay(state, TL_OK);
	}
	return stay(state, TL_ERR_INVALID_TXN_STATE);
}
