/* api.h - Kafka API keys, version facts, and request/response headers.
 * Header versions follow the API version: requests use header v2 when the API version
 * is flexible, else v1 (client_id keeps the classic int16-length string even in v2);
 * responses use v1 when flexible, else v0 - except ApiVersions, always v0 (KIP-511). */
#ifndef TL_PROTOCOL_API_H
#define TL_PROTOCOL_API_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "protocol/messages.h"
#include "tally/error.h"

enum tl_api_key {
	TL_API_PRODUCE = 0,
	TL_API_FETCH = 1,
	TL_API_LIST_OFFSETS = 2,
	TL_API_METADATA = 3,
	TL_API_OFFSET_COMMIT = 8,
	TL_API_OFFSET_FETCH = 9,
	TL_API_FIND_COORDINATOR = 10,
	TL_API_JOIN_GROUP = 11,
	TL_API_HEARTBEAT = 12,
	TL_API_LEAVE_GROUP = 13,
	TL_API_SYNC_GROUP = 14,
	TL_API_DESCRIBE_GROUPS = 15,
	TL_API_LIST_GROUPS = 16,
	TL_API_SASL_HANDSHAKE = 17,
	TL_API_API_VERSIONS = 18,
	TL_API_CREATE_TOPICS = 19,
	TL_API_DELETE_TOPICS = 20,
	TL_API_DELETE_RECORDS = 21,
	TL_API_INIT_PRODUCER_ID = 22,
	TL_API_OFFSET_FOR_LEADER_EPOCH = 23,
	TL_API_ADD_PARTITIONS_TO_TXN = 24,
	TL_API_ADD_OFFSETS_TO_TXN = 25,
	TL_API_END_TXN = 26,
	TL_API_WRITE_TXN_MARKERS = 27,
	TL_API_TXN_OFFSET_COMMIT = 28,
	TL_API_DESCRIBE_ACLS = 29,
	TL_API_CREATE_ACLS = 30,
	TL_API_DELETE_ACLS = 31,
	TL_API_DESCRIBE_CONFIGS = 32,
	TL_API_ALTER_CONFIGS = 33,
	TL_API_DESCRIBE_LOG_DIRS = 35,
	TL_API_SASL_AUTHENTICATE = 36,
	TL_API_CREATE_PARTITIONS = 37,
	TL_API_DELETE_GROUPS = 42,
	TL_API_INCREMENTAL_ALTER_CONFIGS = 44,
	TL_API_OFFSET_DELETE = 47,
	TL_API_DESCRIBE_CLIENT_QUOTAS = 48,
	TL_API_ALTER_CLIENT_QUOTAS = 49,
	TL_API_DESCRIBE_USER_SCRAM_CREDENTIALS = 50,
	TL_API_ALTER_USER_SCRAM_CREDENTIALS = 51,
	TL_API_DESCRIBE_CLUSTER = 60,
	TL_API_DESCRIBE_PRODUCERS = 61,
	TL_API_DESCRIBE_TRANSACTIONS = 65,
	TL_API_LIST_TRANSACTIONS = 66,
};

/* What Kafka 3.8 defines for an API: name, valid and flexible versions. */
struct tl_api_info {
	int16_t key;
	const char *name;
	int16_t version_min;
	int16_t version_max;
	int16_t flexible_min; /* -1: never flexible */
};

/* NULL when @key is not a Kafka API. */
const struct tl_api_info *tl_api_info(int16_t key);
/* True when @version of @key uses compact encodings and tagged fields. Unknown keys:
 * false. */
bool tl_api_is_flexible(int16_t key, int16_t version);

struct tl_request_header {
	int16_t api_key;
	int16_t api_version;
	int32_t correlation_id;
	struct tl_str client_id; /* null (-1) is read as "" as Kafka does */
};

/* Reads a request header. For a known API at a flexible version, also its tagged-field
 * section; otherwise the v1 form. Returns TL_OK or TL_ERR_CORRUPT. */
tl_err tl_request_header_decode(struct tl_cursor *cursor, struct tl_request_header *out);
void tl_request_header_encode(struct tl_buf *buf, const struct tl_request_header *header);

void tl_response_header_encode(struct tl_buf *buf, int16_t api_key, int16_t api_version,
			       int32_t correlation_id);
tl_err tl_response_header_decode(struct tl_cursor *cursor, int16_t api_key, int16_t api_version,
				 int32_t *correlation_id_out);

#endif
