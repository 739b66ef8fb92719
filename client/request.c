/* request.c - the request table of libtally: one row per API that the producer's
 * transactions and the admin client send, naming the generated encoder and decoder, and
 * the two ways to send a row's request (blocking, and with a callback). The callers keep
 * what differs per API: where it goes, which errors they retry, and how they map the
 * response; everything between (version, encode, send, decode, arena) is here once.
 * (1) Rows are sorted by api_key and unique; tl_client_rpc_find() asserts it finds one.
 * (2) A decoded response points into its bytes. Both live until its user is done:
 *     tl_client_rpc_call() copies the bytes into the caller's arena beside the response;
 *     tl_client_rpc_send() hands @fn the response while the bytes are still the
 *     connection's, and frees its arena when @fn returns. */
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "common/assert.h"
#include "protocol/messages.h"

/* ---- the table ---- */

/* The encoder and decoder of one API, with the signatures the rows take. Defines
 * functions only; hides no control flow. */
#define RPC_CODEC(api)                                                                             \
	static void api##_encode(struct tl_buf *body, int16_t version, const void *request)        \
	{                                                                                          \
		tl_##api##_request_encode(body, version, request);                                 \
	}                                                                                          \
	static tl_err api##_decode(struct tl_cursor *cursor, int16_t version,                      \
				   struct tl_arena *arena, void *response)                         \
	{                                                                                          \
		return tl_##api##_response_decode(cursor, version, arena, response);               \
	}

#define RPC_ROW(key, kafka_name, api)                                                              \
	{                                                                                          \
		key, kafka_name, api##_encode, api##_decode, sizeof(struct tl_##api##_response)    \
	}

RPC_CODEC(list_offsets)
RPC_CODEC(metadata)
RPC_CODEC(offset_commit)
RPC_CODEC(offset_fetch)
RPC_CODEC(find_coordinator)
RPC_CODEC(describe_groups)
RPC_CODEC(list_groups)
RPC_CODEC(create_topics)
RPC_CODEC(delete_topics)
RPC_CODEC(init_producer_id)
RPC_CODEC(add_partitions_to_txn)
RPC_CODEC(add_offsets_to_txn)
RPC_CODEC(end_txn)
RPC_CODEC(write_txn_markers)
RPC_CODEC(txn_offset_commit)
RPC_CODEC(create_partitions)
RPC_CODEC(delete_records)
RPC_CODEC(describe_log_dirs)
RPC_CODEC(incremental_alter_configs)
RPC_CODEC(describe_client_quotas)
RPC_CODEC(alter_client_quotas)
RPC_CODEC(delete_groups)
RPC_CODEC(describe_user_scram_credentials)
RPC_CODEC(alter_user_scram_credentials)
RPC_CODEC(describe_producers)
RPC_CODEC(describe_transactions)
RPC_CODEC(list_transactions)
RPC_CODEC(describe_acls)
RPC_CODEC(create_acls)
RPC_CODEC(delete_acls)

static const struct tl_client_rpc rpcs[] = {
	RPC_ROW(TL_CLIENT_API_LIST_OFFSETS, "ListOffsets", list_offsets),
	RPC_ROW(TL_CLIENT_API_METADATA, "Metadata", metadata),
	RPC_ROW(TL_CLIENT_API_OFFSET_COMMIT, "OffsetCommit", offset_commit),
	RPC_ROW(TL_CLIENT_API_OFFSET_FETCH, "OffsetFetch", offset_fetch),
	RPC_ROW(TL_CLIENT_API_FIND_COORDINATOR, "FindCoordinator", find_coordinator),
	RPC_ROW(TL_CLIENT_API_DESCRIBE_GROUPS, "DescribeGroups", describe_groups),
	RPC_ROW(TL_CLIENT_API_LIST_GROUPS, "ListGroups", list_groups),
	RPC_ROW(TL_CLIENT_API_CREATE_TOPICS, "CreateTopics", create_topics),
	RPC_ROW(TL_CLIENT_API_DELETE_TOPICS, "DeleteTopics", delete_topics),
	RPC_ROW(TL_CLIENT_API_DELETE_RECORDS, "DeleteRecords", delete_records),
	RPC_ROW(TL_CLIENT_API_INIT_PRODUCER_ID, "InitProducerId", init_producer_id),
	RPC_ROW(TL_CLIENT_API_ADD_PARTITIONS_TO_TXN, "AddPartitionsToTxn", add_partitions_to_txn),
	RPC_ROW(TL_CLIENT_API_ADD_OFFSETS_TO_TXN, "AddOffsetsToTxn", add_offsets_to_txn),
	RPC_ROW(TL_CLIENT_API_END_TXN, "EndTxn", end_txn),
	RPC_ROW(TL_CLIENT_API_WRITE_TXN_MARKERS, "WriteTxnMarkers", write_txn_markers),
	RPC_ROW(TL_CLIENT_API_TXN_OFFSET_COMMIT, "TxnOffsetCommit", txn_offset_commit),
	RPC_ROW(TL_CLIENT_API_DESCRIBE_ACLS, "DescribeAcls", describe_acls),
	RPC_ROW(TL_CLIENT_API_CREATE_ACLS, "CreateAcls", create_acls),
	RPC_ROW(TL_CLIENT_API_DELETE_ACLS, "DeleteAcls", delete_acls),
	RPC_ROW(TL_CLIENT_API_DESCRIBE_LOG_DIRS, "DescribeLogDirs", describe_log_dirs),
	RPC_ROW(TL_CLIENT_API_CREATE_PARTITIONS, "CreatePartitions", create_partitions),
	RPC_ROW(TL_CLIENT_API_DELETE_GROUPS, "DeleteGroups", delete_groups),
	RPC_ROW(TL_CLIENT_API_INCREMENTAL_ALTER_CONFIGS, "IncrementalAlterConfigs",
		incremental_alter_configs),
	RPC_ROW(TL_CLIENT_API_DESCRIBE_CLIENT_QUOTAS, "DescribeClientQuotas",
		describe_client_quotas),
	RPC_ROW(TL_CLIENT_API_ALTER_CLIENT_QUOTAS, "AlterClientQuotas", alter_client_quotas),
	RPC_ROW(TL_CLIENT_API_DESCRIBE_USER_SCRAM_CREDENTIALS, "DescribeUserScramCredentials",
		describe_user_scram_credentials),
	RPC_ROW(TL_CLIENT_API_ALTER_USER_SCRAM_CREDENTIALS, "AlterUserScramCredentials",
		alter_user_scram_credentials),
	RPC_ROW(TL_CLIENT_API_DESCRIBE_PRODUCERS, "DescribeProducers", describe_producers),
	RPC_ROW(TL_CLIENT_API_DESCRIBE_TRANSACTIONS, "DescribeTransactions", describe_transactions),
	RPC_ROW(TL_CLIENT_API_LIST_TRANSACTIONS, "ListTransactions", list_transactions),
};

const struct tl_client_rpc *tl_client_rpc_find(int16_t api_key)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(rpcs); i++) {
		if (i > 0)
			TL_ASSERT_DEBUG(rpcs[i - 1].api_key < rpcs[i].api_key);
		if (rpcs[i].api_key == api_key)
			return &rpcs[i];
	}
	TL_ASSERT(!"tl_client_rpc_find: no row for this api_key");
	return NULL;
}

/* ---- sending a row's request ---- */

/* Decodes @body as @rpc's response into storage from @arena. */
static tl_err rpc_decode(const struct tl_client_rpc *rpc, struct tl_cursor *body, int16_t version,
			 struct tl_arena *arena, void **response_out)
{
	void *response = tl_arena_alloc(arena, rpc->response_bytes);
	if (!response)
		return TL_ERR_NOMEM;
	if (rpc->decode(body, version, arena, response) != TL_OK)
		return TL_ERR_CORRUPT_MESSAGE;
	*response_out = response;
	return TL_OK;
}

/* tl_client_rpc_call() and tl_client_rpc_try(): through tl_client_call_try() when
 * @connect_timeout_ms >= 0, else tl_client_call() with @timeout_ms. */
static tl_err rpc_call(struct tl_client *client, int32_t node_id, const struct tl_client_rpc *rpc,
		       const void *request, int connect_timeout_ms, int timeout_ms,
		       struct tl_arena *arena, void **response_out, int16_t *version_out)
{
	TL_ASSERT(rpc);
	*response_out = NULL;
	struct tl_buf bytes;
	tl_buf_init(&bytes);
	int16_t version = -1;
	tl_err err =
		connect_timeout_ms >= 0
			? tl_client_call_try(client, node_id, rpc->api_key, rpc->encode, request,
					     connect_timeout_ms, timeout_ms, &bytes, &version)
			: tl_client_call(client, node_id, rpc->api_key, rpc->encode, request,
					 timeout_ms, &bytes, &version);
	/* The decoded response points into its bytes: they move into @arena with it. */
	uint8_t *copy = err == TL_OK ? tl_arena_alloc(arena, bytes.len + 1) : NULL;
	if (err == TL_OK && !copy)
		err = TL_ERR_NOMEM;
	if (err == TL_OK) {
		memcpy(copy, bytes.data, bytes.len);
		struct tl_cursor cursor;
		tl_cursor_init(&cursor, copy, bytes.len);
		err = rpc_decode(rpc, &cursor, version, arena, response_out);
	}
	tl_buf_deinit(&bytes);
	if (version_out)
		*version_out = version;
	return err;
}

tl_err tl_client_rpc_call(struct tl_client *client, int32_t node_id,
			  const struct tl_client_rpc *rpc, const void *request, int timeout_ms,
			  struct tl_arena *arena, void **response_out, int16_t *version_out)
{
	return rpc_call(client, node_id, rpc, request, -1, timeout_ms, arena, response_out,
			version_out);
}

tl_err tl_client_rpc_try(struct tl_client *client, int32_t node_id, const struct tl_client_rpc *rpc,
			 const void *request, int connect_timeout_ms, int timeout_ms,
			 struct tl_arena *arena, void **response_out, int16_t *version_out)
{
	return rpc_call(client, node_id, rpc, request, TL_MAX(connect_timeout_ms, 0), timeout_ms,
			arena, response_out, version_out);
}

/* What a response to tl_client_rpc_send() needs to reach its caller. */
struct rpc_pending {
	const struct tl_client_rpc *rpc;
	size_t arena_bytes_max;
	tl_client_rpc_done_fn fn;
	void *arg;
};

static void rpc_send_done(void *arg, tl_err err, struct tl_cursor *body, int16_t version)
{
	struct rpc_pending *pending = arg;
	struct tl_arena arena;
	tl_arena_init(&arena, pending->arena_bytes_max);
	void *response = NULL;
	if (err == TL_OK)
		err = rpc_decode(pending->rpc, body, version, &arena, &response);
	if (err != TL_OK)
		response = NULL;
	pending->fn(pending->arg, err, response);
	tl_arena_deinit(&arena);
	free(pending);
}

tl_err tl_client_rpc_send(struct tl_client *client, int32_t node_id,
			  const struct tl_client_rpc *rpc, const void *request,
			  size_t arena_bytes_max, tl_client_rpc_done_fn fn, void *arg)
{
	TL_ASSERT(rpc);
	TL_ASSERT(fn);
	int16_t version = tl_client_api_version(client, node_id, rpc->api_key);
	if (version < 0)
		return tl_client_node_ready(client, node_id) ? TL_ERR_UNSUPPORTED_VERSION
							     : TL_ERR_AGAIN;
	struct rpc_pending *pending = malloc(sizeof(*pending));
	if (!pending)
		return TL_ERR_NOMEM;
	*pending = (struct rpc_pending){rpc, arena_bytes_max, fn, arg};
	struct tl_buf body;
	tl_buf_init(&body);
	rpc->encode(&body, version, request);
	tl_err err = tl_client_send(client, node_id, rpc->api_key, version, &body, true,
				    rpc_send_done, pending);
	tl_buf_deinit(&body);
	if (err != TL_OK)
		free(pending);
	return err;
}
