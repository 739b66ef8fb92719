/* dispatch.c - request routing, the advertised API versions, and ApiVersions.
 * Kafka's rules for unsupported requests: an unknown API key, or a version outside the
 * advertised range, closes the connection (no response), except ApiVersions, which
 * answers any version with a v0 body carrying UNSUPPORTED_VERSION and its own range so
 * the client can retry lower. */
#include <string.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "broker/txn.h"
#include "common/assert.h"
#include "common/diag.h"
#include "common/time.h"

typedef void (*handler_fn)(struct tl_request *req, struct tl_cursor *body);

struct api_entry {
	int16_t key;
	int16_t min;
	int16_t max;
	handler_fn handler;
};

static void handle_api_versions(struct tl_request *req, struct tl_cursor *body);

/* Every range starts at 0: librdkafka 2.0.2 turns features off when a minimum is above
 * the single versions it probes (rd_kafka_feature_map, src/rdkafka_feature.c). Produce v0-2 and
 * Fetch v0-3 speak message format v0/v1, which Tally does not store: Produce answers
 * those with UNSUPPORTED_FOR_MESSAGE_FORMAT and Fetch returns v2 batches. */
static const struct api_entry apis[] = {
	{TL_API_PRODUCE, 0, 9, tl_handle_produce},
	{TL_API_FETCH, 0, 12, tl_handle_fetch},
	{TL_API_LIST_OFFSETS, 0, 8, tl_handle_list_offsets},
	{TL_API_METADATA, 0, 12, tl_handle_metadata},
	{TL_API_API_VERSIONS, 0, 3, handle_api_versions},
	{TL_API_CREATE_TOPICS, 0, 7, tl_handle_create_topics},
	{TL_API_DELETE_TOPICS, 0, 6, tl_handle_delete_topics},
	{TL_API_DESCRIBE_CONFIGS, 0, 4, tl_handle_describe_configs},
	{TL_API_DELETE_RECORDS, 0, 2, tl_handle_delete_records},
	{TL_API_ALTER_CONFIGS, 0, 2, tl_handle_alter_configs},
	{TL_API_DESCRIBE_LOG_DIRS, 0, 4, tl_handle_describe_log_dirs},
	{TL_API_CREATE_PARTITIONS, 0, 3, tl_handle_create_partitions},
	{TL_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, tl_handle_incremental_alter_configs},
	{TL_API_DESCRIBE_CLUSTER, 0, 1, tl_handle_describe_cluster},
	{TL_API_INIT_PRODUCER_ID, 0, 4, tl_handle_init_producer_id},
	{TL_API_OFFSET_FOR_LEADER_EPOCH, 0, 4, tl_handle_offset_for_leader_epoch},
	{TL_API_FIND_COORDINATOR, 0, 4, tl_handle_find_coordinator},
	{TL_API_JOIN_GROUP, 0, 7, tl_handle_join_group},
	{TL_API_SYNC_GROUP, 0, 5, tl_handle_sync_group},
	{TL_API_HEARTBEAT, 0, 4, tl_handle_heartbeat},
	{TL_API_LEAVE_GROUP, 0, 5, tl_handle_leave_group},
	{TL_API_OFFSET_COMMIT, 0, 8, tl_handle_offset_commit},
	{TL_API_OFFSET_FETCH, 0, 8, tl_handle_offset_fetch},
	{TL_API_LIST_GROUPS, 0, 5, tl_handle_list_groups},
	{TL_API_DESCRIBE_GROUPS, 0, 5, tl_handle_describe_groups},
	{TL_API_DELETE_GROUPS, 0, 2, tl_handle_delete_groups},
	{TL_API_OFFSET_DELETE, 0, 0, tl_handle_offset_delete},
	{TL_API_DESCRIBE_CLIENT_QUOTAS, 0, 1, tl_handle_describe_client_quotas},
	{TL_API_ALTER_CLIENT_QUOTAS, 0, 1, tl_handle_alter_client_quotas},
	{TL_API_ADD_PARTITIONS_TO_TXN, 0, 3, tl_handle_add_partitions_to_txn},
	{TL_API_ADD_OFFSETS_TO_TXN, 0, 3, tl_handle_add_offsets_to_txn},
	{TL_API_END_TXN, 0, 3, tl_handle_end_txn},
	{TL_API_TXN_OFFSET_COMMIT, 0, 3, tl_handle_txn_offset_commit},
	{TL_API_DESCRIBE_PRODUCERS, 0, 0, tl_handle_describe_producers},
	{TL_API_DESCRIBE_TRANSACTIONS, 0, 0, tl_handle_describe_transactions},
	{TL_API_LIST_TRANSACTIONS, 0, 1, tl_handle_list_transactions},
	{TL_API_WRITE_TXN_MARKERS, 0, 1, tl_handle_write_txn_markers},
	{TL_API_DESCRIBE_ACLS, 0, 3, tl_handle_describe_acls},
	{TL_API_CREATE_ACLS, 0, 3, tl_handle_create_acls},
	{TL_API_DELETE_ACLS, 0, 3, tl_handle_delete_acls},
	{TL_API_SASL_HANDSHAKE, 0, 1, tl_handle_sasl_handshake},
	{TL_API_SASL_AUTHENTICATE, 0, 2, tl_handle_sasl_authenticate},
	{TL_API_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, tl_handle_describe_user_scram_credentials},
	{TL_API_ALTER_USER_SCRAM_CREDENTIALS, 0, 0, tl_handle_alter_user_scram_credentials},
};

static const struct api_entry *api_find(int16_t key)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(apis); i++)
		if (apis[i].key == key)
			return &apis[i];
	return NULL;
}

void tl_response_begin(struct tl_request *req)
{
	tl_buf_reset(&req->response);
	tl_buf_i32(&req->response, 0); /* size, filled in by tl_response_end */
	tl_response_header_encode(&req->response, req->header.api_key, req->header.api_version,
				  req->header.correlation_id);
}

void tl_response_end(struct tl_request *req)
{
	TL_ASSERT(req->state == TL_REQUEST_WORKING);
	TL_ASSERT(req->response.len >= 8);
	if (req->response.failed) {
		tl_crit("broker: out of memory encoding a response api_key=%d peer=%s",
			req->header.api_key, req->conn->peer);
		tl_conn_close(req->conn, "out of memory"); /* frees req */
		return;
	}
	int64_t total = tl_buf_total(&req->response);
	TL_ASSERT(total - 4 <= INT32_MAX);
	tl_be32_put(req->response.data, (uint32_t)(total - 4));
	tl_request_remote_end(req);
	req->done_ns = tl_mono_ns();
	req->state = TL_REQUEST_DONE;
	struct tl_broker *broker = req->conn->broker;
	broker->fresh_ns = req->done_ns; /* for tl_conn_flush, if it runs now */
	tl_request_finished(req);
	broker->fresh_ns = 0;
}

static void api_versions_respond(struct tl_request *req, int16_t version, tl_err error)
{
	struct tl_api_versions_response resp;
	tl_api_versions_response_defaults(&resp);
	resp.error_code = (int16_t)error;
	struct tl_api_versions_response_api_version keys[TL_ARRAY_SIZE(apis)];
	if (error == TL_ERR_UNSUPPORTED_VERSION) {
		/* Only our own ApiVersions range, as Kafka does. */
		const struct api_entry *self = api_find(TL_API_API_VERSIONS);
		tl_api_versions_response_api_version_defaults(&keys[0]);
		keys[0].api_key = self->key;
		keys[0].min_version = self->min;
		keys[0].max_version = self->max;
		resp.api_keys_count = 1;
	} else if (error == TL_OK) {
		for (size_t i = 0; i < TL_ARRAY_SIZE(apis); i++) {
			tl_api_versions_response_api_version_defaults(&keys[i]);
			keys[i].api_key = apis[i].key;
			keys[i].min_version = apis[i].min;
			keys[i].max_version = apis[i].max;
		}
		resp.api_keys_count = (int32_t)TL_ARRAY_SIZE(apis);
	} else {
		resp.api_keys_count = 0;
	}
	resp.api_keys = keys;
	tl_response_begin(req);
	tl_api_versions_response_encode(&req->response, version, &resp);
	tl_response_end(req);
}

/* [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? */
static bool software_field_valid(struct tl_str s)
{
	if (s.len <= 0)
		return false;
	for (int32_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		bool alnum =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		bool edge = i == 0 || i == s.len - 1;
		if (!alnum && (edge || (c != '-' && c != '.')))
			return false;
	}
	return true;
}

static void handle_api_versions(struct tl_request *req, struct tl_cursor *body)
{
	int16_t version = req->header.api_version;
	const struct api_entry *self = api_find(TL_API_API_VERSIONS);
	if (version > self->max || version < 0) {
		/* Answer as v0 so any client can read it, header v0 included. */
		req->header.api_version = 0;
		api_versions_respond(req, 0, TL_ERR_UNSUPPORTED_VERSION);
		return;
	}
	struct tl_api_versions_request msg;
	if (tl_api_versions_request_decode(body, version, &req->arena, &msg) != TL_OK) {
		api_versions_respond(req, version, TL_ERR_INVALID_REQUEST);
		return;
	}
	if (version >= 3 && (!software_field_valid(msg.client_software_name) ||
			     !software_field_valid(msg.client_software_version))) {
		api_versions_respond(req, version, TL_ERR_INVALID_REQUEST);
		return;
	}
	api_versions_respond(req, version, TL_OK);
}

void tl_dispatch(struct tl_request *req)
{
	const struct tl_request_header *h = &req->header;
	const struct api_entry *api = api_find(h->api_key);
	struct tl_cursor body;
	/* The header decoder left the cursor's bytes; re-derive the body start. */
	tl_cursor_init(&body, req->frame, req->frame_len);
	struct tl_request_header again;
	tl_request_header_decode(&body, &again);
	if (h->api_key == TL_API_API_VERSIONS) {
		handle_api_versions(req, &body);
		return;
	}
	if (!api || h->api_version < api->min || h->api_version > api->max) {
		const struct tl_api_info *info = tl_api_info(h->api_key);
		tl_warn("broker: unsupported request, closing connection peer=%s api_key=%d "
			"api=%s api_version=%d",
			req->conn->peer, h->api_key, info ? info->name : "unknown", h->api_version);
		tl_conn_close(req->conn, "unsupported api or version"); /* frees req */
		return;
	}
	tl_acl_request_principal(req);
	if (!tl_sasl_allows(req))
		return; /* closed */
	api->handler(req, &body);
}
