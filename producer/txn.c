/* txn.c - transactions of the libtally producer (KIP-98, with KIP-447's group metadata),
 * see include/tally/producer.h.
 *
 * The application thread moves the state (init, begin, commit, abort) and waits on the
 * producer's condition variable; the I/O thread (tl_producer_txn_io(), every round, lock
 * held) sends what the state needs next, and the answers move the state on:
 *
 *   UNINIT -init-> INIT -InitProducerId-> READY -begin-> OPEN
 *   OPEN -commit-> COMMITTING -every batch done, EndTxn(commit)-> READY
 *   OPEN | ABORTABLE | COMMITTING (EndTxn not sent) -abort-> ABORTING
 *   ABORTING -no batch in flight, EndTxn(abort)-> READY, or INIT -> READY when the
 *            epoch must be bumped (a batch failed: its sequence may or may not be stored)
 *   OPEN | COMMITTING -a record, the partitions or the offsets failed-> ABORTABLE
 *   any -fenced (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) or fatal-> pid_state PID_FAILED:
 *        every batch fails with the fatal error, every call returns it.
 *
 * Invariants:
 * (1) A batch goes out only after the coordinator added its partition to the open
 *     transaction (part->txn_added), so the coordinator knows every partition that needs
 *     a marker; the broker refuses transactional batches for unregistered partitions.
 * (2) EndTxn goes out only when no batch is open, queued or in flight and the offsets
 *     steps are finished: the decision covers everything that was sent.
 * (3) At most one request to the transaction coordinator is in flight
 *     (request_in_flight); the group coordinator's steps have their own slot.
 * (4) Answers carry txn->round (the count of ended transactions); an answer for an
 *     earlier transaction changes nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/time.h"
#include "internal.h"
#include "protocol/messages.h"
#include "tally/producer.h"

#define TXN_ADD_PARTITIONS_MAX 1000             /* partitions per AddPartitionsToTxn */
#define TXN_OFFSETS_MAX        100000           /* entries per send_offsets call */
#define TXN_ARENA_BYTES        (8 << 20)        /* to decode one coordinator answer */
#define TXN_BUSY_RETRY_NS      (20 * 1000000LL) /* CONCURRENT_TRANSACTIONS, as Java */

/* ---- settings ---- */

tl_err tl_producer_txn_settings(struct tl_producer *producer, const struct tl_conf *conf,
				char *errstr, size_t errstr_size)
{
	struct producer_txn *txn = &producer->txn;
	txn->coordinator = -1;
	txn->find_asked = TL_CLIENT_NODE_ANY;
	txn->group_coordinator = -1;
	txn->state = TXN_NONE;
	const char *id = tl_conf_str(conf, "transactional.id");
	if (!id)
		return TL_OK;
	if (!id[0]) {
		tl_conf_errstr(
			errstr, errstr_size,
			"transactional.id is empty; set a name that stays the same across restarts of this producer, or leave it unset");
		return TL_ERR_INVALID;
	}
	if (producer->idempotence_explicit && !producer->idempotence) {
		tl_conf_errstr(
			errstr, errstr_size,
			"transactional.id requires enable.idempotence=true; remove enable.idempotence=false");
		return TL_ERR_INVALID;
	}
	if (producer->acks != -1) {
		tl_conf_errstr(errstr, errstr_size,
			       "transactional.id requires acks=all; set acks=all (the default)");
		return TL_ERR_INVALID;
	}
	producer->idempotence = true;
	txn->id = strdup(id);
	if (!txn->id) {
		tl_conf_errstr(errstr, errstr_size, "out of memory");
		return TL_ERR_NOMEM;
	}
	txn->timeout_ms = (int32_t)tl_conf_int(conf, "transaction.timeout.ms");
	txn->state = TXN_UNINIT;
	return TL_OK;
}

static void offsets_clear(struct producer_txn *txn)
{
	for (int32_t i = 0; i < txn->offset_count; i++)
		free(txn->offsets[i].topic);
	free(txn->offsets);
	txn->offsets = NULL;
	txn->offset_count = 0;
	free(txn->group_id);
	free(txn->member_id);
	free(txn->group_instance_id);
	txn->group_id = txn->member_id = txn->group_instance_id = NULL;
}

void tl_producer_txn_deinit(struct tl_producer *producer)
{
	offsets_clear(&producer->txn);
	free(producer->txn.id);
	producer->txn.id = NULL;
}

/* ---- state changes (lock held) ---- */

bool tl_producer_txn_is_fenced_err(tl_err err)
{
	return err == TL_ERR_PRODUCER_FENCED || err == TL_ERR_INVALID_PRODUCER_EPOCH;
}

void tl_producer_txn_fence(struct tl_producer *producer, tl_err err, const char *where)
{
	char msg[400];
	snprintf(
		msg, sizeof(msg),
		"fenced: another producer with transactional.id=%s called init_transactions, or the coordinator aborted a transaction that outlived transaction.timeout.ms=%d (%s answered %s); destroy this producer",
		producer->txn.id, producer->txn.timeout_ms, where, tl_err_name(err));
	tl_producer_set_fatal(producer, TL_ERR_PRODUCER_FENCED, msg);
}

static void txn_fatal(struct tl_producer *producer, tl_err err, const char *what)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "%s for transactional.id=%s failed with %s: %s", what,
		 producer->txn.id, tl_err_name(err), tl_err_message(err));
	tl_producer_set_fatal(producer, TL_ERR_FATAL, msg);
}

/* The open transaction can no longer commit: unsent batches fail, and only abort is
 * allowed from now on. */
static void txn_abortable(struct tl_producer *producer, tl_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void txn_abortable(struct tl_producer *producer, tl_err err, const char *fmt, ...)
{
	struct producer_txn *txn = &producer->txn;
	if (txn->state != TXN_OPEN && txn->state != TXN_COMMITTING)
		return; /* already abortable, or being aborted: the first cause stays */
	txn->state = TXN_ABORTABLE;
	txn->abort_err = err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(txn->abort_msg, sizeof(txn->abort_msg), fmt, ap);
	va_end(ap);
	if (txn->offsets_step != OFFSETS_DONE)
		txn->offsets_step = OFFSETS_NONE;
	tl_producer_fail_unsent(
		producer, TL_ERR_OPERATION_NOT_ATTEMPTED,
		"not sent: the transaction hit an abortable error (see tl_producer_last_error()); abort it and send again in a new transaction");
	pthread_cond_broadcast(&producer->cond);
}

void tl_producer_txn_batch_failed(struct tl_producer *producer, struct batch *batch, tl_err err,
				  const char *detail)
{
	struct producer_txn *txn = &producer->txn;
	if (producer->stop || producer->pid_state == PID_FAILED)
		return;
	if (txn->state == TXN_ABORTING || txn->state == TXN_ABORTABLE) {
		if (batch->sent)
			txn->bump_epoch = true;
		return; /* purged, or failing after the cause was recorded */
	}
	if (batch->sent)
		txn->bump_epoch = true; /* its sequence may or may not be stored */
	txn_abortable(producer, err,
		      "a record of the transaction failed: topic %s partition %d: %s (%s)",
		      batch->part->topic->name, batch->part->index,
		      detail ? detail : tl_err_message(err), tl_err_name(err));
}

/* Every batch, the partitions and the offsets of the transaction are done with. */
static void txn_end_done(struct tl_producer *producer)
{
	struct producer_txn *txn = &producer->txn;
	txn->round++;
	txn->registered = false;
	txn->end_sent = false;
	txn->offsets_step = OFFSETS_NONE;
	offsets_clear(txn);
	txn->abort_err = TL_OK;
	txn->abort_msg[0] = '\0';
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++)
			topic->parts[p]->txn_added = false;
	}
	if (txn->bump_epoch) {
		/* A new epoch restarts every sequence at 0 and fences our own stragglers. */
		txn->state = TXN_INIT;
		producer->pid_state = PID_UNKNOWN;
	} else {
		txn->state = TXN_READY;
	}
	pthread_cond_broadcast(&producer->cond);
}

/* ---- answers ---- */

enum txn_verdict {
	VERDICT_OK,
	VERDICT_RETRY,      /* the same request again, after a short backoff */
	VERDICT_RETRY_FIND, /* find the coordinator again, then retry */
	VERDICT_ABORTABLE,
	VERDICT_FENCED,
	VERDICT_FATAL,
};

static enum txn_verdict txn_classify(tl_err err)
{
	if (err == TL_OK)
		return VERDICT_OK;
	if (tl_producer_txn_is_fenced_err(err))
		return VERDICT_FENCED;
	switch (err) {
	case TL_ERR_NOT_COORDINATOR:
	case TL_ERR_COORDINATOR_NOT_AVAILABLE:
	case TL_ERR_NETWORK_EXCEPTION:
	case TL_ERR_REQUEST_TIMED_OUT:
		return VERDICT_RETRY_FIND;
	case TL_ERR_CONCURRENT_TRANSACTIONS:
	case TL_ERR_COORDINATOR_LOAD_IN_PROGRESS:
	case TL_ERR_OPERATION_NOT_ATTEMPTED:
	case TL_ERR_CORRUPT_MESSAGE: /* a response we could not decode */
		return VERDICT_RETRY;
	case TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
	case TL_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case TL_ERR_INVALID_TXN_STATE:
	case TL_ERR_UNSUPPORTED_VERSION:
	case TL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
	case TL_ERR_NOMEM:
		return VERDICT_FATAL;
	default:
		return tl_err_is_retriable(err) ? VERDICT_RETRY : VERDICT_ABORTABLE;
	}
}

/* The worse of two verdicts, in enum order. */
static enum txn_verdict verdict_max(enum txn_verdict a, enum txn_verdict b)
{
	return a > b ? a : b;
}

/* Applies a retry verdict to the coordinator slot. */
static void txn_retry_later(struct tl_producer *producer, enum txn_verdict verdict, tl_err err)
{
	struct producer_txn *txn = &producer->txn;
	if (verdict == VERDICT_RETRY_FIND)
		txn->coordinator = -1;
	int64_t backoff = err == TL_ERR_CONCURRENT_TRANSACTIONS
				  ? TL_MIN(producer->retry_backoff_ns, TXN_BUSY_RETRY_NS)
				  : producer->retry_backoff_ns;
	txn->retry_at_ns = tl_mono_ns() + backoff;
}

/* Handles the verdicts every coordinator answer shares; true when the caller is done
 * (anything but OK and ABORTABLE). */
static bool txn_common_verdict(struct tl_producer *producer, enum txn_verdict verdict, tl_err err,
			       const char *what)
{
	switch (verdict) {
	case VERDICT_RETRY:
	case VERDICT_RETRY_FIND:
		txn_retry_later(producer, verdict, err);
		return true;
	case VERDICT_FENCED:
		tl_producer_txn_fence(producer, err, what);
		return true;
	case VERDICT_FATAL:
		txn_fatal(producer, err, what);
		return true;
	case VERDICT_OK:
	case VERDICT_ABORTABLE:
		return false;
	}
	return false;
}

/* ---- the request path ----
 *
 * Every coordinator request goes out through txn_request() and comes back through
 * txn_done(): a row of txn_apis names the API (client/request.c's row encodes and
 * decodes it), where its top-level ErrorCode is (offsetof in the generated response
 * struct), and the mapper that moves the state on from the answer, under the lock. A new API is a
 * row here, a row in client/request.c and a mapper. */

struct txn_call;

/* Moves the state on from one answer. @err is the request's error (timeout,
 * disconnect, undecodable answer: TL_ERR_CORRUPT_MESSAGE) or else the answer's
 * top-level ErrorCode; @response is NULL when the request failed. Lock held. */
typedef void (*txn_map_fn)(struct tl_producer *producer, const struct txn_call *call, tl_err err,
			   const void *response);

/* Sets the fields of @req that name the transaction (AddOffsetsToTxn, TxnOffsetCommit and
 * EndTxn name them alike) from @producer. An expression. */
#define TXN_REQ_IDS(req, producer)                                                                 \
	((req).transactional_id = tl_str_of((producer)->txn.id),                                   \
	 (req).producer_id = (producer)->producer_id,                                              \
	 (req).producer_epoch = (producer)->producer_epoch)

#define TXN_NO_ERROR_CODE SIZE_MAX /* txn_api.error_code_at: errors are per partition */

struct txn_api {
	int16_t api_key;
	size_t error_code_at; /* offset of the response's top-level ErrorCode (an int16_t) */
	txn_map_fn map;
};

/* What an answer's callback gets: the producer, and the transaction it was sent for. */
struct txn_call {
	struct tl_producer *producer;
	const struct txn_api *api;
	uint32_t round;
	bool *in_flight;                /* the slot it holds until answered (invariant 3) */
	struct partition_state **parts; /* AddPartitionsToTxn: the partitions asked for */
	int32_t part_count;
};

static void find_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
		     const void *response);
static void init_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
		     const void *response);
static void add_partitions_map(struct tl_producer *producer, const struct txn_call *call,
			       tl_err err, const void *response);
static void add_offsets_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
			    const void *response);
static void offset_commit_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
			      const void *response);
static void end_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
		    const void *response);

enum txn_api_id {
	TXN_API_FIND_COORDINATOR,
	TXN_API_INIT_PRODUCER_ID,
	TXN_API_ADD_PARTITIONS,
	TXN_API_ADD_OFFSETS,
	TXN_API_OFFSET_COMMIT,
	TXN_API_END,
};

static const struct txn_api txn_apis[] = {
	[TXN_API_FIND_COORDINATOR] = {TL_CLIENT_API_FIND_COORDINATOR,
				      offsetof(struct tl_find_coordinator_response, error_code),
				      find_map},
	[TXN_API_INIT_PRODUCER_ID] = {TL_CLIENT_API_INIT_PRODUCER_ID,
				      offsetof(struct tl_init_producer_id_response, error_code),
				      init_map},
	[TXN_API_ADD_PARTITIONS] = {TL_CLIENT_API_ADD_PARTITIONS_TO_TXN, TXN_NO_ERROR_CODE,
				    add_partitions_map},
	[TXN_API_ADD_OFFSETS] = {TL_CLIENT_API_ADD_OFFSETS_TO_TXN,
				 offsetof(struct tl_add_offsets_to_txn_response, error_code),
				 add_offsets_map},
	[TXN_API_OFFSET_COMMIT] = {TL_CLIENT_API_TXN_OFFSET_COMMIT, TXN_NO_ERROR_CODE,
				   offset_commit_map},
	[TXN_API_END] = {TL_CLIENT_API_END_TXN, offsetof(struct tl_end_txn_response, error_code),
			 end_map},
};

static void call_free(struct txn_call *call)
{
	free(call->parts);
	free(call);
}

static void txn_done(void *arg, tl_err err, const void *response)
{
	struct txn_call *call = arg;
	struct tl_producer *producer = call->producer;
	if (err == TL_OK && call->api->error_code_at != TXN_NO_ERROR_CODE) {
		int16_t error_code;
		memcpy(&error_code, (const char *)response + call->api->error_code_at,
		       sizeof(error_code));
		err = (tl_err)error_code;
	}
	pthread_mutex_lock(&producer->lock);
	TL_ASSERT(*call->in_flight);
	*call->in_flight = false;
	call->api->map(producer, call, err, response);
	pthread_cond_broadcast(&producer->cond);
	pthread_mutex_unlock(&producer->lock);
	call_free(call);
}

/* Sends @req (borrowed) as row @id to @node, for the current transaction; the answer
 * goes to the row's mapper. The request holds the slot @in_flight until it is answered.
 * Takes @parts (AddPartitionsToTxn's partitions, else NULL), which the answer's
 * txn_call keeps. When @node speaks no version of the API, the producer fails. True if
 * sent. Lock held. */
static bool txn_request(struct tl_producer *producer, int32_t node, enum txn_api_id id,
			const void *req, bool *in_flight, struct partition_state **parts,
			int32_t part_count)
{
	TL_ASSERT(!*in_flight);
	struct txn_call *call = calloc(1, sizeof(*call));
	if (!call) {
		free(parts);
		return false;
	}
	*call = (struct txn_call){
		.producer = producer,
		.api = &txn_apis[id],
		.round = producer->txn.round,
		.in_flight = in_flight,
		.parts = parts,
		.part_count = part_count,
	};
	const struct tl_client_rpc *rpc = tl_client_rpc_find(call->api->api_key);
	tl_err err = tl_client_rpc_send(producer->client, node, rpc, req, TXN_ARENA_BYTES, txn_done,
					call);
	if (err == TL_ERR_UNSUPPORTED_VERSION)
		txn_fatal(producer, err, rpc->name);
	if (err != TL_OK) {
		call_free(call);
		return false;
	}
	*in_flight = true;
	return true;
}

/* ---- FindCoordinator ---- */

static void find_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
		     const void *response)
{
	const struct tl_find_coordinator_response *resp = response;
	struct producer_txn *txn = &producer->txn;
	/* The slot says which coordinator was asked for. */
	bool group = call->in_flight == &txn->group_in_flight;
	if (producer->stop)
		return;
	int32_t *node = group ? &txn->group_coordinator : &txn->coordinator;
	if (err == TL_OK && resp->node_id >= 0 && resp->host.len > 0 &&
	    tl_client_broker_add(producer->client, resp->node_id, resp->host.ptr, resp->host.len,
				 resp->port) == TL_OK) {
		*node = resp->node_id;
		if (group && txn->offsets_step == OFFSETS_FIND_GROUP && call->round == txn->round)
			txn->offsets_step = OFFSETS_COMMIT;
	} else if (group) {
		txn->group_retry_at_ns = tl_mono_ns() + producer->retry_backoff_ns;
	} else {
		txn->retry_at_ns = tl_mono_ns() + producer->retry_backoff_ns;
	}
}

/* Asks any broker for the coordinator of @key (@key_type 1: transaction, 0: group). */
static void find_send(struct tl_producer *producer, const char *key, int8_t key_type)
{
	struct producer_txn *txn = &producer->txn;
	int32_t node = tl_client_next_ready_node(producer->client, txn->find_asked);
	if (node == TL_CLIENT_NODE_ANY)
		return;
	txn->find_asked = node;
	int16_t version =
		tl_client_api_version(producer->client, node, TL_CLIENT_API_FIND_COORDINATOR);
	if (version < 1) {
		txn_fatal(producer, TL_ERR_UNSUPPORTED_VERSION,
			  "FindCoordinator v1+ (the broker does not support transactions)");
		return;
	}
	struct tl_find_coordinator_request req;
	tl_find_coordinator_request_defaults(&req);
	req.key = tl_str_of(key);
	req.key_type = key_type;
	bool *slot = key_type == 0 ? &txn->group_in_flight : &txn->find_in_flight;
	txn_request(producer, node, TXN_API_FIND_COORDINATOR, &req, slot, NULL, 0);
}

/* ---- InitProducerId ---- */

static void init_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
		     const void *response)
{
	const struct tl_init_producer_id_response *resp = response;
	struct producer_txn *txn = &producer->txn;
	enum txn_verdict verdict = txn_classify(err);
	TL_UNUSED(call);
	if (producer->stop || txn->state != TXN_INIT) {
		/* destroyed, or failed meanwhile */
	} else if (verdict == VERDICT_OK) {
		tl_producer_pid_adopt(producer, resp->producer_id, resp->producer_epoch);
		txn->bump_epoch = false;
		txn->state = TXN_READY;
	} else if (err == TL_ERR_INVALID_TRANSACTION_TIMEOUT) {
		char msg[300];
		snprintf(
			msg, sizeof(msg),
			"InitProducerId refused transaction.timeout.ms=%d: it is larger than the broker's transaction.max.timeout.ms; lower it",
			txn->timeout_ms);
		tl_producer_set_fatal(producer, TL_ERR_FATAL, msg);
	} else if (!txn_common_verdict(producer, verdict, err, "InitProducerId")) {
		txn_fatal(producer, err, "InitProducerId");
	}
}

static void init_send(struct tl_producer *producer)
{
	struct producer_txn *txn = &producer->txn;
	struct tl_init_producer_id_request req;
	tl_init_producer_id_request_defaults(&req);
	req.transactional_id = tl_str_of(txn->id);
	req.transaction_timeout_ms = txn->timeout_ms;
	req.producer_id = -1;
	req.producer_epoch = -1;
	txn_request(producer, txn->coordinator, TXN_API_INIT_PRODUCER_ID, &req,
		    &txn->request_in_flight, NULL, 0);
}

/* ---- AddPartitionsToTxn ---- */

static struct partition_state *call_find_part(const struct txn_call *call, struct tl_str topic,
					      int32_t index)
{
	for (int32_t i = 0; i < call->part_count; i++) {
		struct partition_state *part = call->parts[i];
		if (part && part->index == index && tl_str_eq_c(topic, part->topic->name))
			return part;
	}
	return NULL;
}

/* Applies one AddPartitionsToTxn answer; returns the verdict over all partitions and
 * the first error in *@err_out / *@part_out. Lock held. */
static enum txn_verdict add_partitions_apply(struct tl_producer *producer,
					     const struct txn_call *call,
					     const struct tl_add_partitions_to_txn_response *resp,
					     tl_err *err_out, struct partition_state **part_out)
{
	enum txn_verdict verdict = VERDICT_OK;
	for (int32_t t = 0; t < resp->results_by_topic_v3_and_below_count; t++) {
		const struct tl_add_partitions_to_txn_response_add_partitions_to_txn_topic_result
			*tr = &resp->results_by_topic_v3_and_below[t];
		for (int32_t i = 0; i < tr->results_by_partition_count; i++) {
			const struct
				tl_add_partitions_to_txn_response_add_partitions_to_txn_partition_result
					*pr = &tr->results_by_partition[i];
			struct partition_state *part =
				call_find_part(call, tr->name, pr->partition_index);
			if (!part)
				continue;
			tl_err err = (tl_err)pr->partition_error_code;
			enum txn_verdict v = txn_classify(err);
			if (v == VERDICT_OK) {
				part->txn_added = true;
				producer->txn.registered = true;
			} else if (v > verdict || *err_out == TL_OK) {
				*err_out = err;
				*part_out = part;
			}
			verdict = verdict_max(verdict, v);
		}
	}
	/* A partition the answer left out was not added: ask again. */
	for (int32_t i = 0; i < call->part_count; i++)
		if (!call->parts[i]->txn_added && verdict == VERDICT_OK)
			verdict = VERDICT_RETRY;
	return verdict;
}

static void add_partitions_map(struct tl_producer *producer, const struct txn_call *call,
			       tl_err err, const void *response)
{
	struct producer_txn *txn = &producer->txn;
	for (int32_t i = 0; i < call->part_count; i++)
		call->parts[i]->txn_adding = false;
	if (producer->stop || call->round != txn->round || producer->pid_state == PID_FAILED)
		return;
	struct partition_state *part = NULL;
	enum txn_verdict verdict = txn_classify(err);
	if (err == TL_OK)
		verdict = add_partitions_apply(producer, call, response, &err, &part);
	if (txn_common_verdict(producer, verdict, err, "AddPartitionsToTxn"))
		return;
	if (verdict == VERDICT_ABORTABLE && part)
		txn_abortable(
			producer, err,
			"AddPartitionsToTxn refused topic %s partition %d: %s (%s); abort the transaction",
			part->topic->name, part->index, tl_err_message(err), tl_err_name(err));
}

/* Collects into @parts (TXN_ADD_PARTITIONS_MAX long) the partitions with records that
 * are not in the transaction yet; returns how many. */
static int32_t add_partitions_collect(struct tl_producer *producer, struct partition_state **parts)
{
	int32_t count = 0;
	for (int32_t i = 0; i < producer->topic_count; i++) {
		struct topic_state *topic = producer->topics[i];
		for (int32_t p = 0; p < topic->partition_count; p++) {
			struct partition_state *part = topic->parts[p];
			if ((!part->open && !part->head) || part->txn_added || part->txn_adding)
				continue;
			if (count == TXN_ADD_PARTITIONS_MAX)
				return count;
			parts[count++] = part;
		}
	}
	return count;
}

/* Sends the v0-2 request for @parts[0..count), grouped by topic in collection order.
 * Takes @parts. True if sent. */
static bool add_partitions_request(struct tl_producer *producer, struct partition_state **parts,
				   int32_t count)
{
	struct tl_add_partitions_to_txn_request req;
	tl_add_partitions_to_txn_request_defaults(&req);
	req.v3_and_below_transactional_id = tl_str_of(producer->txn.id);
	req.v3_and_below_producer_id = producer->producer_id;
	req.v3_and_below_producer_epoch = producer->producer_epoch;
	struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic *topics =
		calloc((size_t)count, sizeof(*topics));
	int32_t *indexes = calloc((size_t)count, sizeof(*indexes));
	if (!topics || !indexes) {
		free(topics);
		free(indexes);
		free(parts);
		return false;
	}
	int32_t topic_count = 0, at = 0;
	for (int32_t i = 0; i < count; i++) {
		struct topic_state *topic = parts[i]->topic;
		bool seen = false;
		for (int32_t j = 0; j < i; j++)
			seen |= parts[j]->topic == topic;
		if (seen)
			continue;
		struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic *t =
			&topics[topic_count++];
		t->name = tl_str_of(topic->name);
		t->partitions = &indexes[at];
		for (int32_t j = i; j < count; j++)
			if (parts[j]->topic == topic)
				indexes[at + t->partitions_count++] = parts[j]->index;
		at += t->partitions_count;
	}
	req.v3_and_below_topics_count = topic_count;
	req.v3_and_below_topics = topics;
	bool sent = txn_request(producer, producer->txn.coordinator, TXN_API_ADD_PARTITIONS, &req,
				&producer->txn.request_in_flight, parts, count);
	free(topics);
	free(indexes);
	return sent;
}

/* True if a request went out. */
static bool add_partitions_send(struct tl_producer *producer)
{
	struct partition_state **parts = calloc(TXN_ADD_PARTITIONS_MAX, sizeof(*parts));
	int32_t count = parts ? add_partitions_collect(producer, parts) : 0;
	if (count == 0) {
		free(parts);
		return false;
	}
	if (!add_partitions_request(producer, parts, count))
		return false;
	/* @parts is the request's now; it lives until the answer, which comes from a later
	 * tl_client_poll(). */
	for (int32_t i = 0; i < count; i++)
		parts[i]->txn_adding = true;
	return true;
}

/* ---- AddOffsetsToTxn, TxnOffsetCommit ---- */

static void add_offsets_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
			    const void *response)
{
	struct producer_txn *txn = &producer->txn;
	enum txn_verdict verdict = txn_classify(err);
	TL_UNUSED(response);
	if (verdict == VERDICT_OK && call->round == txn->round)
		txn->registered = true; /* even if aborted meanwhile: EndTxn must go out */
	if (producer->stop || call->round != txn->round || txn->offsets_step != OFFSETS_ADD ||
	    producer->pid_state == PID_FAILED) {
		/* destroyed, aborted or failed meanwhile */
	} else if (verdict == VERDICT_OK) {
		txn->offsets_step = OFFSETS_FIND_GROUP;
	} else if (!txn_common_verdict(producer, verdict, err, "AddOffsetsToTxn")) {
		txn_abortable(producer, err,
			      "AddOffsetsToTxn for group %s failed: %s (%s); abort the transaction",
			      txn->group_id, tl_err_message(err), tl_err_name(err));
	}
}

static void add_offsets_send(struct tl_producer *producer)
{
	struct producer_txn *txn = &producer->txn;
	struct tl_add_offsets_to_txn_request req;
	tl_add_offsets_to_txn_request_defaults(&req);
	TXN_REQ_IDS(req, producer);
	req.group_id = tl_str_of(txn->group_id);
	txn_request(producer, txn->coordinator, TXN_API_ADD_OFFSETS, &req, &txn->request_in_flight,
		    NULL, 0);
}

/* The verdict for one TxnOffsetCommit partition error: the group's own errors mean
 * this member no longer owns its partitions, so the transaction must abort. */
static enum txn_verdict offset_commit_classify(tl_err err)
{
	switch (err) {
	case TL_ERR_UNKNOWN_MEMBER_ID:
	case TL_ERR_ILLEGAL_GENERATION:
	case TL_ERR_FENCED_INSTANCE_ID:
	case TL_ERR_REBALANCE_IN_PROGRESS:
	case TL_ERR_INVALID_TXN_STATE:
	case TL_ERR_GROUP_AUTHORIZATION_FAILED:
		return VERDICT_ABORTABLE;
	case TL_ERR_COORDINATOR_LOAD_IN_PROGRESS:
		return VERDICT_RETRY_FIND;
	default:
		return txn_classify(err);
	}
}

static void offset_commit_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
			      const void *response)
{
	const struct tl_txn_offset_commit_response *resp = response;
	struct producer_txn *txn = &producer->txn;
	enum txn_verdict verdict = offset_commit_classify(err);
	for (int32_t t = 0; err == TL_OK && t < resp->topics_count; t++)
		for (int32_t i = 0; i < resp->topics[t].partitions_count; i++) {
			tl_err e = (tl_err)resp->topics[t].partitions[i].error_code;
			enum txn_verdict v = offset_commit_classify(e);
			if (v > verdict) {
				verdict = v;
				err = e;
			}
		}
	if (producer->stop || call->round != txn->round || txn->offsets_step != OFFSETS_COMMIT ||
	    producer->pid_state == PID_FAILED)
		return;
	switch (verdict) {
	case VERDICT_OK:
		txn->offsets_step = OFFSETS_DONE;
		break;
	case VERDICT_RETRY_FIND:
		txn->offsets_step = OFFSETS_FIND_GROUP;
		txn->group_coordinator = -1;
		txn->group_retry_at_ns = tl_mono_ns() + producer->retry_backoff_ns;
		break;
	case VERDICT_RETRY:
		txn->group_retry_at_ns = tl_mono_ns() + producer->retry_backoff_ns;
		break;
	case VERDICT_FENCED:
		tl_producer_txn_fence(producer, err, "TxnOffsetCommit");
		break;
	case VERDICT_FATAL:
	case VERDICT_ABORTABLE:
		txn_abortable(
			producer, err,
			"TxnOffsetCommit for group %s failed: %s (%s); abort the transaction (the consumer may have lost its partitions)",
			txn->group_id, tl_err_message(err), tl_err_name(err));
		break;
	}
}

/* Sends the group's offsets to its coordinator, once that is ready. */
static void offset_commit_send(struct tl_producer *producer)
{
	struct producer_txn *txn = &producer->txn;
	int32_t node = txn->group_coordinator;
	if (!tl_client_node_ready(producer->client, node))
		return;
	struct tl_txn_offset_commit_request req;
	tl_txn_offset_commit_request_defaults(&req);
	TXN_REQ_IDS(req, producer);
	req.group_id = tl_str_of(txn->group_id);
	req.generation_id = txn->generation_id;
	req.member_id = tl_str_of(txn->member_id ? txn->member_id : "");
	req.group_instance_id = tl_str_of(txn->group_instance_id);
	struct tl_txn_offset_commit_request_txn_offset_commit_request_topic *topics =
		calloc((size_t)txn->offset_count, sizeof(*topics));
	struct tl_txn_offset_commit_request_txn_offset_commit_request_partition *parts =
		calloc((size_t)txn->offset_count, sizeof(*parts));
	if (!topics || !parts) {
		free(topics);
		free(parts);
		return;
	}
	int32_t topic_count = 0, at = 0;
	for (int32_t i = 0; i < txn->offset_count; i++) {
		bool seen = false;
		for (int32_t j = 0; j < i && !seen; j++)
			seen = strcmp(txn->offsets[j].topic, txn->offsets[i].topic) == 0;
		if (seen)
			continue;
		struct tl_txn_offset_commit_request_txn_offset_commit_request_topic *t =
			&topics[topic_count++];
		t->name = tl_str_of(txn->offsets[i].topic);
		t->partitions = &parts[at];
		for (int32_t j = i; j < txn->offset_count; j++) {
			if (strcmp(txn->offsets[j].topic, txn->offsets[i].topic) != 0)
				continue;
			struct tl_txn_offset_commit_request_txn_offset_commit_request_partition *p =
				&parts[at + t->partitions_count++];
			tl_txn_offset_commit_request_txn_offset_commit_request_partition_defaults(
				p);
			p->partition_index = txn->offsets[j].partition;
			p->committed_offset = txn->offsets[j].offset;
			p->committed_leader_epoch = -1;
			p->committed_metadata = tl_str_of("");
		}
		at += t->partitions_count;
	}
	req.topics_count = topic_count;
	req.topics = topics;
	txn_request(producer, node, TXN_API_OFFSET_COMMIT, &req, &txn->group_in_flight, NULL, 0);
	free(topics);
	free(parts);
}

/* The group coordinator's steps; their own slot (invariant 3). */
static int64_t offsets_group_io(struct tl_producer *producer, int64_t now)
{
	struct producer_txn *txn = &producer->txn;
	if (txn->group_in_flight)
		return INT64_MAX;
	if (now < txn->group_retry_at_ns)
		return txn->group_retry_at_ns - now;
	if (txn->offsets_step == OFFSETS_FIND_GROUP)
		find_send(producer, txn->group_id, 0);
	else if (txn->offsets_step == OFFSETS_COMMIT)
		offset_commit_send(producer);
	return 50 * 1000000LL; /* a connection may be coming up */
}

/* ---- EndTxn ---- */

static void end_map(struct tl_producer *producer, const struct txn_call *call, tl_err err,
		    const void *response)
{
	struct producer_txn *txn = &producer->txn;
	bool committing = txn->state == TXN_COMMITTING;
	enum txn_verdict verdict = txn_classify(err);
	TL_UNUSED(response);
	if (producer->stop || call->round != txn->round || producer->pid_state == PID_FAILED ||
	    (!committing && txn->state != TXN_ABORTING)) {
		/* destroyed or failed meanwhile */
	} else if (verdict == VERDICT_OK) {
		txn_end_done(producer);
	} else if (txn_common_verdict(producer, verdict, err, "EndTxn")) {
		/* retried with the same decision, or failed for good */
	} else if (committing) {
		txn->end_sent = false;
		txn_abortable(producer, err,
			      "EndTxn(commit) failed: %s (%s); abort the transaction",
			      tl_err_message(err), tl_err_name(err));
	} else {
		txn_fatal(producer, err, "EndTxn(abort)");
	}
}

static void end_send(struct tl_producer *producer, bool commit)
{
	struct producer_txn *txn = &producer->txn;
	struct tl_end_txn_request req;
	tl_end_txn_request_defaults(&req);
	TXN_REQ_IDS(req, producer);
	req.committed = commit;
	if (txn_request(producer, txn->coordinator, TXN_API_END, &req, &txn->request_in_flight,
			NULL, 0))
		txn->end_sent = true;
}

/* Invariant (2): everything of the transaction is settled. */
static bool txn_can_end(const struct tl_producer *producer)
{
	const struct producer_txn *txn = &producer->txn;
	if (txn->request_in_flight || txn->group_in_flight)
		return false;
	if (txn->offsets_step != OFFSETS_NONE && txn->offsets_step != OFFSETS_DONE)
		return false;
	return tl_producer_is_idle(producer);
}

/* ---- the I/O thread's part ---- */

bool tl_producer_txn_part_ready(struct tl_producer *producer, struct partition_state *part)
{
	enum txn_state state = producer->txn.state;
	return part->txn_added && (state == TXN_OPEN || state == TXN_COMMITTING);
}

/* The coordinator-side step the state needs; the coordinator is known and ready. */
static void txn_coordinator_io(struct tl_producer *producer)
{
	struct producer_txn *txn = &producer->txn;
	switch (txn->state) {
	case TXN_INIT:
		init_send(producer);
		break;
	case TXN_OPEN:
	case TXN_COMMITTING:
		if (txn->offsets_step == OFFSETS_ADD) {
			add_offsets_send(producer);
			break;
		}
		if (add_partitions_send(producer))
			break;
		if (txn->state == TXN_COMMITTING && txn_can_end(producer))
			end_send(producer, true);
		break;
	case TXN_ABORTING:
		if (txn_can_end(producer))
			end_send(producer, false);
		break;
	default:
		break;
	}
}

int64_t tl_producer_txn_io(struct tl_producer *producer)
{
	struct producer_txn *txn = &producer->txn;
	if (producer->pid_state == PID_FAILED || producer->stop)
		return INT64_MAX;
	int64_t now = tl_mono_ns();
	int64_t due = INT64_MAX;
	if (txn->offsets_step == OFFSETS_FIND_GROUP || txn->offsets_step == OFFSETS_COMMIT)
		due = offsets_group_io(producer, now);
	bool ending = txn->state == TXN_COMMITTING || txn->state == TXN_ABORTING;
	if (ending && !txn->registered && txn_can_end(producer)) {
		/* The coordinator never heard of this transaction: nothing to end there. */
		txn_end_done(producer);
		return 0;
	}
	bool needs = txn->state == TXN_INIT || txn->state == TXN_OPEN || ending;
	if (!needs || txn->request_in_flight)
		return due;
	if (now < txn->retry_at_ns)
		return TL_MIN(due, txn->retry_at_ns - now);
	if (txn->coordinator < 0) {
		if (!txn->find_in_flight)
			find_send(producer, txn->id, 1);
		return TL_MIN(due, 50 * 1000000LL);
	}
	if (!tl_client_node_ready(producer->client, txn->coordinator))
		return TL_MIN(due, 20 * 1000000LL);
	txn_coordinator_io(producer);
	return due;
}

tl_err tl_producer_txn_send_check(struct tl_producer *producer)
{
	struct producer_txn *txn = &producer->txn;
	switch (txn->state) {
	case TXN_OPEN:
		return TL_OK;
	case TXN_ABORTABLE:
		return tl_producer_fail_call(
			TL_ERR_TRANSACTION_ABORTABLE,
			"the open transaction cannot commit (%s); call tl_producer_abort_transaction()",
			txn->abort_msg);
	case TXN_UNINIT:
	case TXN_INIT:
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			"transactional.id is set: call tl_producer_init_transactions() and tl_producer_begin_transaction() before sending");
	case TXN_READY:
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			"no transaction is open: call tl_producer_begin_transaction() before sending");
	case TXN_COMMITTING:
	case TXN_ABORTING:
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			"the transaction is being committed or aborted; send in the next transaction");
	case TXN_NONE:
		break;
	}
	return TL_OK;
}

/* ---- API ---- */

/* The checks every call starts with. Lock held. */
static tl_err api_check(struct tl_producer *producer)
{
	tl_err err = tl_producer_fatal(producer);
	if (err != TL_OK)
		return tl_producer_fail_call(err, "%s", producer->fatal_msg);
	if (producer->stop)
		return tl_producer_fail_call(TL_ERR_CLOSED, "the producer is being destroyed");
	return TL_OK;
}

static tl_err api_not_transactional(void)
{
	return tl_producer_fail_call(
		TL_ERR_INVALID,
		"transactional.id is not set; set it in the configuration to use transactions");
}

/* The start of a transaction call: clears the last call's error and, for a producer
 * without transactional.id, returns false with *@err_out set (the lock not taken).
 * Otherwise takes the lock, sets *@err_out to api_check()'s verdict and returns true. */
static bool api_enter(struct tl_producer *producer, tl_err *err_out)
{
	tl_producer_clear_call_error();
	if (!producer->txn.id) {
		*err_out = api_not_transactional();
		return false;
	}
	pthread_mutex_lock(&producer->lock);
	*err_out = api_check(producer);
	return true;
}

static tl_err api_timed_out(struct tl_producer *producer, const char *what, int timeout_ms)
{
	const char *net = tl_client_last_error(producer->client);
	return tl_producer_fail_call(
		TL_ERR_TIMED_OUT,
		"%s did not finish within %d ms; call it again to keep waiting (it goes on in the background)%s%s",
		what, timeout_ms, net[0] ? "; last connection problem: " : "", net);
}

static tl_err api_abortable(struct tl_producer *producer)
{
	return tl_producer_fail_call(
		TL_ERR_TRANSACTION_ABORTABLE,
		"the transaction cannot commit: %s; call tl_producer_abort_transaction()",
		producer->txn.abort_msg);
}

/* Waits for the commit or abort under way: runs delivery callbacks meanwhile. */
static tl_err end_wait(struct tl_producer *producer, bool commit, int64_t deadline_ns,
		       int timeout_ms)
{
	struct producer_txn *txn = &producer->txn;
	for (;;) {
		pthread_mutex_lock(&producer->lock);
		tl_err err = api_check(producer);
		enum txn_state state = txn->state;
		if (err == TL_OK && state == TXN_ABORTABLE)
			err = api_abortable(producer);
		pthread_mutex_unlock(&producer->lock);
		if (err != TL_OK) {
			(void)tl_producer_poll(producer, 0); /* the reports of what failed */
			return err;
		}
		if (state == TXN_READY)
			break;
		if (tl_mono_ns() >= deadline_ns)
			return api_timed_out(producer,
					     commit ? "tl_producer_commit_transaction()"
						    : "tl_producer_abort_transaction()",
					     timeout_ms);
		(void)tl_producer_poll(producer, 10);
	}
	(void)tl_producer_poll(producer, 0);
	return TL_OK;
}

/* How a public call waits once its step is done. */
enum api_wait {
	API_WAIT_NONE,   /* begin: not at all */
	API_WAIT_INIT,   /* init: under the lock, while the producer id is being fetched */
	API_WAIT_COMMIT, /* commit, abort: outside the lock, end_wait() */
	API_WAIT_ABORT,
};

/* A public call's change of state, under the lock, once api_check() has passed: TL_OK, or
 * the call's error. */
typedef tl_err (*api_step_fn)(struct tl_producer *producer, struct producer_txn *txn);

/* Runs the public call @step: api_enter(), @step, then waits as @wait says, until
 * @timeout_ms from now. */
static tl_err api_run(struct tl_producer *producer, api_step_fn step, enum api_wait wait,
		      int timeout_ms)
{
	int64_t deadline_ns = tl_mono_ns() + (int64_t)timeout_ms * 1000000;
	tl_err err;
	if (!api_enter(producer, &err))
		return err;
	struct producer_txn *txn = &producer->txn;
	if (err == TL_OK)
		err = step(producer, txn);
	while (wait == API_WAIT_INIT && err == TL_OK && txn->state == TXN_INIT) {
		if (tl_producer_wait(producer, deadline_ns))
			err = api_check(producer);
		else
			err = api_timed_out(producer, "tl_producer_init_transactions()",
					    timeout_ms);
	}
	pthread_mutex_unlock(&producer->lock);
	if (err != TL_OK || wait == API_WAIT_NONE || wait == API_WAIT_INIT)
		return err;
	return end_wait(producer, wait == API_WAIT_COMMIT, deadline_ns, timeout_ms);
}

static tl_err init_step(struct tl_producer *producer, struct producer_txn *txn)
{
	if (txn->state == TXN_UNINIT) {
		txn->state = TXN_INIT;
		tl_client_wakeup(producer->client);
	} else if (txn->state != TXN_INIT && txn->state != TXN_READY) {
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			"init_transactions was already done and a transaction is open");
	}
	return TL_OK;
}

TL_EXPORT tl_err tl_producer_init_transactions(struct tl_producer *producer, int timeout_ms)
{
	return api_run(producer, init_step, API_WAIT_INIT, timeout_ms);
}

static tl_err begin_step(struct tl_producer *producer, struct producer_txn *txn)
{
	TL_UNUSED(producer);
	switch (txn->state) {
	case TXN_READY:
		txn->state = TXN_OPEN;
		txn->offsets_step = OFFSETS_NONE;
		return TL_OK;
	case TXN_UNINIT:
	case TXN_INIT:
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			"call tl_producer_init_transactions() first (or, after an abort that timed out, tl_producer_abort_transaction() again)");
	default:
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			"a transaction is already open; commit or abort it first");
	}
}

TL_EXPORT tl_err tl_producer_begin_transaction(struct tl_producer *producer)
{
	return api_run(producer, begin_step, API_WAIT_NONE, 0);
}

/* Copies the offsets and the group of a send_offsets call. Lock held. */
static tl_err offsets_store(struct producer_txn *txn, const struct tl_consumer_partition *offsets,
			    int32_t count, const struct tl_consumer_group_metadata *group)
{
	offsets_clear(txn);
	txn->group_id = strdup(group->group_id);
	txn->member_id = strdup(group->member_id ? group->member_id : "");
	txn->group_instance_id = group->group_instance_id ? strdup(group->group_instance_id) : NULL;
	txn->generation_id = group->generation_id;
	txn->offsets = calloc((size_t)count + 1, sizeof(*txn->offsets));
	if (!txn->group_id || !txn->member_id || !txn->offsets ||
	    (group->group_instance_id && !txn->group_instance_id))
		return TL_ERR_NOMEM;
	for (int32_t i = 0; i < count; i++) {
		if (offsets[i].offset < 0)
			continue;
		struct txn_offset *o = &txn->offsets[txn->offset_count];
		o->topic = strdup(offsets[i].topic);
		if (!o->topic)
			return TL_ERR_NOMEM;
		o->partition = offsets[i].partition;
		o->offset = offsets[i].offset;
		txn->offset_count++;
	}
	return TL_OK;
}

static tl_err offsets_check_args(const struct tl_consumer_partition *offsets, int32_t count,
				 const struct tl_consumer_group_metadata *group)
{
	if (!group || !group->group_id || !group->group_id[0])
		return tl_producer_fail_call(
			TL_ERR_INVALID,
			"send_offsets_to_transaction needs the consumer's group (tl_consumer_group_metadata())");
	if (count < 0 || count > TXN_OFFSETS_MAX || (count > 0 && !offsets))
		return tl_producer_fail_call(TL_ERR_INVALID,
					     "send_offsets_to_transaction: bad offsets array");
	for (int32_t i = 0; i < count; i++)
		if (!offsets[i].topic || !offsets[i].topic[0])
			return tl_producer_fail_call(
				TL_ERR_INVALID,
				"send_offsets_to_transaction: offset %d has no topic", i);
	return TL_OK;
}

/* Waits while an earlier send_offsets step is under way, then for this one. Lock held. */
static tl_err offsets_wait(struct tl_producer *producer, int64_t deadline_ns, int timeout_ms)
{
	struct producer_txn *txn = &producer->txn;
	for (;;) {
		tl_err err = api_check(producer);
		if (err != TL_OK)
			return err;
		if (txn->state == TXN_ABORTABLE)
			return api_abortable(producer);
		if (txn->state != TXN_OPEN)
			return tl_producer_fail_call(TL_ERR_INVALID_TXN_STATE,
						     "no transaction is open");
		if (txn->offsets_step == OFFSETS_NONE || txn->offsets_step == OFFSETS_DONE)
			return TL_OK;
		if (!tl_producer_wait(producer, deadline_ns))
			return api_timed_out(producer, "tl_producer_send_offsets_to_transaction()",
					     timeout_ms);
	}
}

TL_EXPORT tl_err tl_producer_send_offsets_to_transaction(
	struct tl_producer *producer, const struct tl_consumer_partition *offsets, int32_t count,
	const struct tl_consumer_group_metadata *group, int timeout_ms)
{
	tl_producer_clear_call_error();
	if (!producer->txn.id)
		return api_not_transactional();
	tl_err err = offsets_check_args(offsets, count, group);
	if (err != TL_OK)
		return err;
	int64_t deadline_ns = tl_mono_ns() + (int64_t)timeout_ms * 1000000;
	pthread_mutex_lock(&producer->lock);
	struct producer_txn *txn = &producer->txn;
	err = offsets_wait(producer, deadline_ns, timeout_ms); /* an earlier call's steps */
	if (err == TL_OK) {
		err = offsets_store(txn, offsets, count, group);
		if (err != TL_OK)
			err = tl_producer_fail_call(err, "out of memory");
	}
	if (err == TL_OK && txn->offset_count > 0) {
		txn->offsets_step = OFFSETS_ADD;
		tl_client_wakeup(producer->client);
		err = offsets_wait(producer, deadline_ns, timeout_ms);
	}
	pthread_mutex_unlock(&producer->lock);
	return err;
}

static tl_err commit_step(struct tl_producer *producer, struct producer_txn *txn)
{
	if (txn->state == TXN_ABORTABLE)
		return api_abortable(producer);
	if (txn->state == TXN_OPEN) {
		txn->state = TXN_COMMITTING;
		txn->end_sent = false;
		tl_client_wakeup(producer->client);
	} else if (txn->state != TXN_COMMITTING) {
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			txn->state == TXN_ABORTING
				? "the transaction is being aborted; call tl_producer_abort_transaction() again"
				: "no transaction is open: call tl_producer_begin_transaction() first");
	}
	return TL_OK;
}

TL_EXPORT tl_err tl_producer_commit_transaction(struct tl_producer *producer, int timeout_ms)
{
	return api_run(producer, commit_step, API_WAIT_COMMIT, timeout_ms);
}

/* A fatal error skips this: nothing to abort from here; a new instance's init aborts it. */
static tl_err abort_step(struct tl_producer *producer, struct producer_txn *txn)
{
	enum txn_state state = txn->state;
	if (state == TXN_OPEN || state == TXN_ABORTABLE ||
	    (state == TXN_COMMITTING && !txn->end_sent)) {
		txn->state = TXN_ABORTING;
		txn->end_sent = false;
		if (txn->offsets_step != OFFSETS_DONE)
			txn->offsets_step = OFFSETS_NONE;
		tl_producer_fail_unsent(producer, TL_ERR_OPERATION_NOT_ATTEMPTED,
					"not sent: the transaction was aborted");
		tl_client_wakeup(producer->client);
	} else if (state == TXN_COMMITTING) {
		return tl_producer_fail_call(
			TL_ERR_INVALID_TXN_STATE,
			"the commit was already sent to the coordinator; call tl_producer_commit_transaction() again to learn its outcome");
	} else if (state != TXN_ABORTING && state != TXN_INIT) {
		return tl_producer_fail_call(TL_ERR_INVALID_TXN_STATE, "no transaction is open");
	}
	return TL_OK;
}

TL_EXPORT tl_err tl_producer_abort_transaction(struct tl_producer *producer, int timeout_ms)
{
	return api_run(producer, abort_step, API_WAIT_ABORT, timeout_ms);
}
