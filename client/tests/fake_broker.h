/* fake_broker.h - a scripted one-node Kafka broker on 127.0.0.1 for the client unit
 * tests, in a thread of the test process. It answers ApiVersions, Metadata (one topic
 * "t" with fake_broker.partitions partitions, led by node 0 = itself), InitProducerId
 * (producer id 42, epoch 0), Produce (answers from a script, remembering each batch's
 * producer id and base sequence), ListOffsets (earliest 0, latest fetch_end), Fetch
 * (the same records blob at any offset, plus an aborted-transactions list) and
 * FindCoordinator / OffsetFetch (v7: UNSTABLE_OFFSET_COMMIT for an offset_unstable
 * partition when asked require_stable) / OffsetCommit (committed offsets kept per partition;
 * OffsetCommit with a script of error codes for its next answers, or held unanswered),
 * and a transaction coordinator: InitProducerId with a transactional id (the epoch goes
 * up by one per call), AddPartitionsToTxn (Produce of a transactional batch to a
 * partition not added answers INVALID_TXN_STATE, as tallyd does), AddOffsetsToTxn,
 * TxnOffsetCommit (v3 is flexible: header v2, response header v1) and EndTxn, each with
 * a script of error codes for its next answers; DescribeProducers (flexible v0) answers
 * producer 42's last sequence per partition, from describe_last or a script;
 * SaslHandshake and SaslAuthenticate v1 (PLAIN, any password, sasl_lifetime_ms).
 * Leader epochs (KIP-320): Metadata names leader_epoch; Fetch and ListOffsets with an
 * older current_leader_epoch answer FENCED_LEADER_EPOCH, a newer UNKNOWN_LEADER_EPOCH;
 * OffsetForLeaderEpoch answers epoch_end (epoch, offset) for any partition; commits keep
 * their leader epoch and OffsetFetch returns it.
 * With check_sequences, Produce checks producer 42's sequences as a broker does (a
 * batch that does not follow the last stored one is OUT_OF_ORDER_SEQUENCE_NUMBER, a
 * resent last batch DUPLICATE_SEQUENCE_NUMBER); with produce_gate = N, Produce answers
 * wait until N Produce requests have arrived, so N batches are in flight at once.
 * Encoding and decoding use the generated codec, so the fake speaks the same bytes as
 * tallyd. Header-only: static functions for one test file. */
#ifndef TL_CLIENT_TESTS_FAKE_BROKER_H
#define TL_CLIENT_TESTS_FAKE_BROKER_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/buf.h"
#include "common/time.h"
#include "protocol/messages.h"

#define FAKE_CONNS_MAX      16
#define FAKE_SEEN_MAX       4096
#define FAKE_SCRIPT_MAX     64
#define FAKE_PARTITIONS_MAX 8

struct fake_broker {
	int listen_fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	int32_t partitions;
	/* Produce behaviour */
	bool produce_hold;                       /* never answer Produce */
	int16_t produce_script[FAKE_SCRIPT_MAX]; /* error codes of the next answers */
	int produce_script_count;
	int64_t next_offset[FAKE_PARTITIONS_MAX];
	bool check_sequences;
	int32_t next_seq[FAKE_PARTITIONS_MAX];  /* producer 42's, with check_sequences */
	int32_t last_base[FAKE_PARTITIONS_MAX]; /* of its last stored batch, -1: none */
	int64_t last_offset[FAKE_PARTITIONS_MAX];
	int produce_gate; /* answers held until this many Produce requests arrived */
	struct fake_held {
		int fd;
		int32_t correlation_id;
		struct tl_buf out;
	} held[FAKE_SCRIPT_MAX];
	int held_count;
	/* Produce observations */
	int produce_requests;
	int batches_seen;
	int64_t seen_producer_id[FAKE_SEEN_MAX];
	int32_t seen_base_sequence[FAKE_SEEN_MAX];
	int32_t seen_record_count[FAKE_SEEN_MAX];
	int16_t seen_acks;
	/* Fetch behaviour */
	uint8_t *fetch_records;
	size_t fetch_records_len;
	int64_t fetch_end;           /* high watermark and latest offset */
	int64_t aborted_producer_id; /* -1: none */
	int64_t aborted_first_offset;
	int8_t seen_isolation_level;
	int fetch_requests;
	int32_t seen_fetch_leader_epoch; /* current_leader_epoch of the last Fetch */
	int fenced_fetches;              /* answered FENCED_LEADER_EPOCH */
	/* leader epochs (KIP-320) */
	int32_t leader_epoch;    /* in Metadata; 0 unless set */
	int32_t epoch_end_epoch; /* OffsetForLeaderEpoch's answer */
	int64_t epoch_end_offset;
	int epoch_requests;
	int32_t seen_epoch_asked;   /* leader_epoch of the last OffsetForLeaderEpoch */
	int32_t seen_epoch_current; /* its current_leader_epoch */
	int32_t committed_epoch[FAKE_PARTITIONS_MAX]; /* -1: none */
	/* group coordinator */
	int64_t committed[FAKE_PARTITIONS_MAX];    /* -1: none */
	bool offset_unstable[FAKE_PARTITIONS_MAX]; /* a transaction staged an offset (KIP-447) */
	int16_t seen_offset_fetch_version;
	bool seen_require_stable;
	int commit_requests;
	int16_t commit_script[FAKE_SCRIPT_MAX]; /* OffsetCommit: error codes of the next answers */
	bool commit_hold;                       /* never answer OffsetCommit */
	int commit_script_count;
	/* transaction coordinator: scripts of error codes, then 0 */
	int16_t init_script[FAKE_SCRIPT_MAX];
	int init_script_count;
	int16_t add_partitions_script[FAKE_SCRIPT_MAX];
	int add_partitions_script_count;
	int16_t add_offsets_script[FAKE_SCRIPT_MAX];
	int add_offsets_script_count;
	int16_t txn_commit_script[FAKE_SCRIPT_MAX];
	int txn_commit_script_count;
	int16_t end_script[FAKE_SCRIPT_MAX];
	int end_script_count;
	/* transaction observations */
	int8_t seen_find_key_type; /* of the last FindCoordinator (v1+) */
	int find_txn_requests;     /* FindCoordinator with key type 1 */
	char seen_transactional_id[64];
	int16_t txn_epoch; /* the epoch the last InitProducerId handed out */
	int init_requests;
	int add_partitions_requests;
	bool txn_added[FAKE_PARTITIONS_MAX]; /* in the open transaction */
	int transactional_batches;           /* Produce batches with the transactional bit */
	int unregistered_batches;            /* ... to a partition not added */
	int16_t seen_batch_epoch;
	int add_offsets_requests;
	char seen_offsets_group[64];
	int txn_commit_requests;
	int16_t seen_txn_commit_version;
	int32_t seen_generation_id;
	char seen_member_id[64];
	int64_t txn_committed[FAKE_PARTITIONS_MAX]; /* offsets staged by TxnOffsetCommit, -1 */
	int end_requests;
	int commits;           /* EndTxn(commit) answered 0 */
	int aborts;            /* EndTxn(abort) answered 0 */
	int all_init_requests; /* InitProducerId, with or without a transactional id */
	/* DescribeProducers: producer 42's last sequence per partition (-1: no state); a
	 * script, when set, gives the answers of the next requests for every partition */
	int32_t describe_last[FAKE_PARTITIONS_MAX];
	int32_t describe_script[FAKE_SCRIPT_MAX];
	int describe_script_count;
	int describe_requests;
	/* SASL (PLAIN, any credentials): SaslAuthenticate v1 reports this lifetime */
	int64_t sasl_lifetime_ms;
	int sasl_handshakes;
	int64_t sasl_until_ns[1024]; /* per connection (fd): when its session ends; 0 none */
	int sasl_expired_requests;   /* requests other than the SASL ones after it */
};

/* Pops the next scripted error code (0 once the script is empty). */
static int16_t fake_script_pop(int16_t *script, int *count)
{
	if (*count == 0)
		return 0;
	int16_t code = script[0];
	memmove(script, script + 1, (size_t)-- * count * sizeof(script[0]));
	return code;
}

static void fake_copy_str(char *out, size_t size, struct tl_str str)
{
	size_t n = str.len > 0 ? TL_MIN((size_t)str.len, size - 1) : 0;
	memcpy(out, str.ptr, n);
	out[n] = '\0';
}

static bool fake_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void fake_send(int fd, int32_t correlation_id, bool flexible, const struct tl_buf *body)
{
	uint8_t head[9];
	size_t head_len = flexible ? 9 : 8; /* response header v1: empty tagged fields */
	tl_be32_put(head, (uint32_t)(body->len + head_len - 4));
	tl_be32_put(head + 4, (uint32_t)correlation_id);
	head[8] = 0;
	if (send(fd, head, head_len, MSG_NOSIGNAL) != (ssize_t)head_len ||
	    send(fd, body->data, body->len, MSG_NOSIGNAL) != (ssize_t)body->len)
		return;
}

/* True for the flexible versions the fake speaks (header v2 / response header v1). */
static bool fake_is_flexible(int16_t api_key, int16_t version)
{
	return (api_key == 28 && version >= 3) || (api_key == 9 && version >= 6) ||
	       (api_key == 23 && version >= 4) || api_key == 61;
}

static void fake_api_versions(struct tl_buf *out)
{
	static const int16_t apis[][3] = {
		{0, 3, 8},  {1, 4, 11}, {2, 1, 5},  {3, 1, 8},  {8, 2, 7},  {9, 1, 7},
		{10, 0, 2}, {18, 0, 0}, {22, 0, 1}, {24, 0, 2}, {25, 0, 2}, {26, 0, 2},
		{28, 0, 3}, {61, 0, 0}, {17, 0, 1}, {36, 0, 1}, {23, 0, 4},
	};
	enum { FAKE_APIS = sizeof(apis) / sizeof(apis[0]) };
	struct tl_api_versions_response_api_version keys[FAKE_APIS];
	for (int i = 0; i < FAKE_APIS; i++) {
		keys[i].api_key = apis[i][0];
		keys[i].min_version = apis[i][1];
		keys[i].max_version = apis[i][2];
	}
	struct tl_api_versions_response resp;
	tl_api_versions_response_defaults(&resp);
	resp.api_keys_count = FAKE_APIS;
	resp.api_keys = keys;
	tl_api_versions_response_encode(out, 0, &resp);
}

static void fake_metadata(struct fake_broker *fb, struct tl_buf *out, int16_t version)
{
	struct tl_metadata_response_metadata_response_broker broker;
	tl_metadata_response_metadata_response_broker_defaults(&broker);
	broker.node_id = 0;
	broker.host = tl_str_of("127.0.0.1");
	broker.port = fb->port;
	static int32_t replicas[1] = {0};
	struct tl_metadata_response_metadata_response_partition parts[FAKE_PARTITIONS_MAX];
	for (int32_t p = 0; p < fb->partitions; p++) {
		tl_metadata_response_metadata_response_partition_defaults(&parts[p]);
		parts[p].partition_index = p;
		parts[p].leader_id = 0;
		parts[p].leader_epoch = fb->leader_epoch;
		parts[p].replica_nodes_count = 1;
		parts[p].replica_nodes = replicas;
		parts[p].isr_nodes_count = 1;
		parts[p].isr_nodes = replicas;
		parts[p].offline_replicas_count = 0;
	}
	struct tl_metadata_response_metadata_response_topic topic;
	tl_metadata_response_metadata_response_topic_defaults(&topic);
	topic.name = tl_str_of("t");
	topic.partitions_count = fb->partitions;
	topic.partitions = parts;
	struct tl_metadata_response resp;
	tl_metadata_response_defaults(&resp);
	resp.brokers_count = 1;
	resp.brokers = &broker;
	resp.cluster_id = tl_str_of("fake");
	resp.controller_id = 0;
	resp.topics_count = 1;
	resp.topics = &topic;
	tl_metadata_response_encode(out, version, &resp);
}

/* Returns false when the request is held (no answer). */
static bool fake_produce(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
			 struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 64u << 20);
	struct tl_produce_request req;
	if (tl_produce_request_decode(body, version, &arena, &req) != TL_OK) {
		tl_arena_deinit(&arena);
		return false;
	}
	fb->produce_requests++;
	fb->seen_acks = req.acks;
	int16_t code = 0;
	if (!fb->produce_hold && fb->produce_script_count > 0) {
		code = fb->produce_script[0];
		memmove(fb->produce_script, fb->produce_script + 1,
			(size_t)--fb->produce_script_count * sizeof(fb->produce_script[0]));
	}
	struct tl_produce_response resp;
	tl_produce_response_defaults(&resp);
	resp.responses_count = req.topic_data_count;
	resp.responses = calloc((size_t)req.topic_data_count + 1, sizeof(*resp.responses));
	for (int32_t t = 0; t < req.topic_data_count; t++) {
		const struct tl_produce_request_topic_produce_data *td = &req.topic_data[t];
		struct tl_produce_response_topic_produce_response *tr = &resp.responses[t];
		tl_produce_response_topic_produce_response_defaults(tr);
		tr->name = td->name;
		tr->partition_responses_count = td->partition_data_count;
		tr->partition_responses = calloc((size_t)td->partition_data_count + 1,
						 sizeof(*tr->partition_responses));
		for (int32_t p = 0; p < td->partition_data_count; p++) {
			const struct tl_produce_request_partition_produce_data *pd =
				&td->partition_data[p];
			struct tl_produce_response_partition_produce_response *pr =
				&tr->partition_responses[p];
			tl_produce_response_partition_produce_response_defaults(pr);
			pr->index = pd->index;
			const uint8_t *b = pd->records.ptr;
			int32_t count = (int32_t)tl_be32_get(b + 57);
			bool transactional = (tl_be16_get(b + 21) & 0x10) != 0;
			int16_t pcode = code;
			if (transactional) {
				fb->transactional_batches++;
				fb->seen_batch_epoch = (int16_t)tl_be16_get(b + 51);
				bool added = pd->index >= 0 && pd->index < FAKE_PARTITIONS_MAX &&
					     fb->txn_added[pd->index];
				if (!added) {
					fb->unregistered_batches++;
					pcode = 48; /* INVALID_TXN_STATE */
				}
			}
			int32_t seq = (int32_t)tl_be32_get(b + 53);
			bool seq_checked = fb->check_sequences && pcode == 0 && pd->index >= 0 &&
					   pd->index < FAKE_PARTITIONS_MAX &&
					   (int64_t)tl_be64_get(b + 43) == 42;
			bool duplicate = false;
			if (seq_checked && seq == fb->last_base[pd->index]) {
				pcode = 46; /* DUPLICATE_SEQUENCE_NUMBER */
				duplicate = true;
			} else if (seq_checked && seq != fb->next_seq[pd->index]) {
				pcode = 45; /* OUT_OF_ORDER_SEQUENCE_NUMBER */
			}
			pr->error_code = pcode;
			if (fb->batches_seen < FAKE_SEEN_MAX) {
				fb->seen_producer_id[fb->batches_seen] =
					(int64_t)tl_be64_get(b + 43);
				fb->seen_base_sequence[fb->batches_seen] =
					(int32_t)tl_be32_get(b + 53);
				fb->seen_record_count[fb->batches_seen] = count;
				fb->batches_seen++;
			}
			if (pcode == 0 && pd->index >= 0 && pd->index < FAKE_PARTITIONS_MAX) {
				pr->base_offset = fb->next_offset[pd->index];
				fb->last_offset[pd->index] = pr->base_offset;
				fb->next_offset[pd->index] += count;
				fb->last_base[pd->index] = seq;
				fb->next_seq[pd->index] = seq + count;
			} else if (duplicate) {
				pr->base_offset = fb->last_offset[pd->index];
			} else {
				pr->base_offset = -1;
			}
		}
	}
	tl_produce_response_encode(out, version, &resp);
	for (int32_t t = 0; t < resp.responses_count; t++)
		free(resp.responses[t].partition_responses);
	free(resp.responses);
	tl_arena_deinit(&arena);
	return !fb->produce_hold;
}

/* tallyd's tl_replica_check_client: FENCED_LEADER_EPOCH (74) for an older epoch,
 * UNKNOWN_LEADER_EPOCH (76) for a newer one, 0 for the current one or none (-1). */
static int16_t fake_epoch_check(const struct fake_broker *fb, int32_t current_leader_epoch)
{
	if (current_leader_epoch < 0 || current_leader_epoch == fb->leader_epoch)
		return 0;
	return current_leader_epoch < fb->leader_epoch ? 74 : 76;
}

static void fake_offset_for_leader_epoch(struct fake_broker *fb, struct tl_cursor *body,
					 int16_t version, struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_offset_for_leader_epoch_request req;
	if (tl_offset_for_leader_epoch_request_decode(body, version, &arena, &req) != TL_OK)
		return;
	fb->epoch_requests++;
	struct tl_offset_for_leader_epoch_response resp;
	tl_offset_for_leader_epoch_response_defaults(&resp);
	resp.topics_count = req.topics_count;
	resp.topics = tl_arena_array(&arena, (size_t)req.topics_count + 1, sizeof(*resp.topics));
	for (int32_t t = 0; t < req.topics_count; t++) {
		resp.topics[t].topic = req.topics[t].topic;
		resp.topics[t].partitions_count = req.topics[t].partitions_count;
		resp.topics[t].partitions =
			tl_arena_array(&arena, (size_t)req.topics[t].partitions_count + 1,
				       sizeof(*resp.topics[t].partitions));
		for (int32_t p = 0; p < req.topics[t].partitions_count; p++) {
			const struct tl_offset_for_leader_epoch_request_offset_for_leader_partition
				*ip = &req.topics[t].partitions[p];
			struct tl_offset_for_leader_epoch_response_epoch_end_offset *op =
				&resp.topics[t].partitions[p];
			tl_offset_for_leader_epoch_response_epoch_end_offset_defaults(op);
			fb->seen_epoch_asked = ip->leader_epoch;
			fb->seen_epoch_current = ip->current_leader_epoch;
			op->partition = ip->partition;
			op->error_code = fake_epoch_check(fb, ip->current_leader_epoch);
			op->leader_epoch = op->error_code == 0 ? fb->epoch_end_epoch : -1;
			op->end_offset = op->error_code == 0 ? fb->epoch_end_offset : -1;
		}
	}
	tl_offset_for_leader_epoch_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_list_offsets(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
			      struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 64u << 20);
	struct tl_list_offsets_request req;
	if (tl_list_offsets_request_decode(body, version, &arena, &req) != TL_OK)
		return;
	struct tl_list_offsets_response resp;
	tl_list_offsets_response_defaults(&resp);
	resp.topics_count = req.topics_count;
	resp.topics = tl_arena_array(&arena, (size_t)req.topics_count + 1, sizeof(*resp.topics));
	for (int32_t t = 0; t < req.topics_count; t++) {
		resp.topics[t].name = req.topics[t].name;
		resp.topics[t].partitions_count = req.topics[t].partitions_count;
		resp.topics[t].partitions =
			tl_arena_array(&arena, (size_t)req.topics[t].partitions_count + 1,
				       sizeof(*resp.topics[t].partitions));
		for (int32_t p = 0; p < req.topics[t].partitions_count; p++) {
			struct tl_list_offsets_response_list_offsets_partition_response *r =
				&resp.topics[t].partitions[p];
			tl_list_offsets_response_list_offsets_partition_response_defaults(r);
			r->partition_index = req.topics[t].partitions[p].partition_index;
			r->error_code = fake_epoch_check(
				fb, req.topics[t].partitions[p].current_leader_epoch);
			r->leader_epoch = fb->leader_epoch;
			r->timestamp = -1;
			r->offset = req.topics[t].partitions[p].timestamp == -2 ? 0 : fb->fetch_end;
		}
	}
	tl_list_offsets_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_fetch(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
		       struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 64u << 20);
	struct tl_fetch_request req;
	if (tl_fetch_request_decode(body, version, &arena, &req) != TL_OK)
		return;
	fb->fetch_requests++;
	fb->seen_isolation_level = req.isolation_level;
	if (req.topics_count > 0 && req.topics[0].partitions_count > 0)
		fb->seen_fetch_leader_epoch = req.topics[0].partitions[0].current_leader_epoch;
	struct tl_fetch_response resp;
	tl_fetch_response_defaults(&resp);
	resp.responses_count = req.topics_count;
	resp.responses =
		tl_arena_array(&arena, (size_t)req.topics_count + 1, sizeof(*resp.responses));
	struct tl_fetch_response_aborted_transaction aborted = {fb->aborted_producer_id,
								fb->aborted_first_offset};
	for (int32_t t = 0; t < req.topics_count; t++) {
		struct tl_fetch_response_fetchable_topic_response *tr = &resp.responses[t];
		tl_fetch_response_fetchable_topic_response_defaults(tr);
		tr->topic = req.topics[t].topic;
		tr->partitions_count = req.topics[t].partitions_count;
		tr->partitions = tl_arena_array(&arena, (size_t)tr->partitions_count + 1,
						sizeof(*tr->partitions));
		for (int32_t p = 0; p < tr->partitions_count; p++) {
			struct tl_fetch_response_partition_data *pd = &tr->partitions[p];
			tl_fetch_response_partition_data_defaults(pd);
			pd->partition_index = req.topics[t].partitions[p].partition;
			pd->high_watermark = fb->fetch_end;
			pd->last_stable_offset = fb->fetch_end;
			pd->log_start_offset = 0;
			pd->error_code = fake_epoch_check(
				fb, req.topics[t].partitions[p].current_leader_epoch);
			fb->fenced_fetches += pd->error_code == 74;
			bool has = pd->error_code == 0 &&
				   req.topics[t].partitions[p].fetch_offset < fb->fetch_end;
			pd->aborted_transactions_count =
				fb->aborted_producer_id >= 0 && has ? 1 : 0;
			pd->aborted_transactions = &aborted;
			pd->records.ptr = has ? fb->fetch_records : NULL;
			pd->records.len = has ? (int32_t)fb->fetch_records_len : 0;
		}
	}
	tl_fetch_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_find_coordinator(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
				  struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_find_coordinator_request req;
	if (tl_find_coordinator_request_decode(body, version, &arena, &req) == TL_OK &&
	    version >= 1) {
		fb->seen_find_key_type = req.key_type;
		fb->find_txn_requests += req.key_type == 1;
	}
	tl_arena_deinit(&arena);
	struct tl_find_coordinator_response resp;
	tl_find_coordinator_response_defaults(&resp);
	resp.node_id = 0;
	resp.host = tl_str_of("127.0.0.1");
	resp.port = fb->port;
	tl_find_coordinator_response_encode(out, version, &resp);
}

static void fake_offset_fetch(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
			      struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 64u << 20);
	struct tl_offset_fetch_request req;
	if (tl_offset_fetch_request_decode(body, version, &arena, &req) != TL_OK)
		return;
	fb->seen_offset_fetch_version = version;
	fb->seen_require_stable = req.require_stable;
	struct tl_offset_fetch_response resp;
	tl_offset_fetch_response_defaults(&resp);
	resp.topics_count = req.topics_count;
	resp.topics = tl_arena_array(&arena, (size_t)req.topics_count + 1, sizeof(*resp.topics));
	for (int32_t t = 0; t < req.topics_count; t++) {
		resp.topics[t].name = req.topics[t].name;
		resp.topics[t].partitions_count = req.topics[t].partition_indexes_count;
		resp.topics[t].partitions =
			tl_arena_array(&arena, (size_t)resp.topics[t].partitions_count + 1,
				       sizeof(*resp.topics[t].partitions));
		for (int32_t p = 0; p < resp.topics[t].partitions_count; p++) {
			int32_t index = req.topics[t].partition_indexes[p];
			resp.topics[t].partitions[p].partition_index = index;
			resp.topics[t].partitions[p].committed_offset =
				index >= 0 && index < FAKE_PARTITIONS_MAX ? fb->committed[index]
									  : -1;
			resp.topics[t].partitions[p].committed_leader_epoch =
				index >= 0 && index < FAKE_PARTITIONS_MAX
					? fb->committed_epoch[index]
					: -1;
			resp.topics[t].partitions[p].metadata = tl_str_of("");
			if (req.require_stable && index >= 0 && index < FAKE_PARTITIONS_MAX &&
			    fb->offset_unstable[index]) {
				resp.topics[t].partitions[p].error_code =
					(int16_t)TL_ERR_UNSTABLE_OFFSET_COMMIT;
				resp.topics[t].partitions[p].committed_offset = -1;
			}
		}
	}
	tl_offset_fetch_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_offset_commit(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
			       struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 64u << 20);
	struct tl_offset_commit_request req;
	if (tl_offset_commit_request_decode(body, version, &arena, &req) != TL_OK)
		return;
	fb->commit_requests++;
	int16_t code = fake_script_pop(fb->commit_script, &fb->commit_script_count);
	struct tl_offset_commit_response resp;
	tl_offset_commit_response_defaults(&resp);
	resp.topics_count = req.topics_count;
	resp.topics = tl_arena_array(&arena, (size_t)req.topics_count + 1, sizeof(*resp.topics));
	for (int32_t t = 0; t < req.topics_count; t++) {
		resp.topics[t].name = req.topics[t].name;
		resp.topics[t].partitions_count = req.topics[t].partitions_count;
		resp.topics[t].partitions =
			tl_arena_array(&arena, (size_t)resp.topics[t].partitions_count + 1,
				       sizeof(*resp.topics[t].partitions));
		for (int32_t p = 0; p < resp.topics[t].partitions_count; p++) {
			int32_t index = req.topics[t].partitions[p].partition_index;
			resp.topics[t].partitions[p].partition_index = index;
			resp.topics[t].partitions[p].error_code = code;
			if (code == 0 && index >= 0 && index < FAKE_PARTITIONS_MAX) {
				fb->committed[index] = req.topics[t].partitions[p].committed_offset;
				fb->committed_epoch[index] =
					req.topics[t].partitions[p].committed_leader_epoch;
			}
		}
	}
	tl_offset_commit_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_init_producer_id(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
				  struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_init_producer_id_request req;
	tl_init_producer_id_request_defaults(&req);
	(void)tl_init_producer_id_request_decode(body, version, &arena, &req);
	struct tl_init_producer_id_response resp;
	tl_init_producer_id_response_defaults(&resp);
	fb->all_init_requests++;
	if (req.transactional_id.len > 0) {
		fb->init_requests++;
		fake_copy_str(fb->seen_transactional_id, sizeof(fb->seen_transactional_id),
			      req.transactional_id);
		resp.error_code = fake_script_pop(fb->init_script, &fb->init_script_count);
		if (resp.error_code == 0) {
			fb->txn_epoch = (int16_t)(fb->init_requests == 1 ? 0 : fb->txn_epoch + 1);
			memset(fb->txn_added, 0, sizeof(fb->txn_added));
		}
	}
	resp.producer_id = resp.error_code == 0 ? 42 : -1;
	resp.producer_epoch = resp.error_code == 0 ? fb->txn_epoch : -1;
	tl_init_producer_id_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_add_partitions(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
				struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_add_partitions_to_txn_request req;
	if (tl_add_partitions_to_txn_request_decode(body, version, &arena, &req) != TL_OK) {
		tl_arena_deinit(&arena);
		return;
	}
	fb->add_partitions_requests++;
	int16_t code = fake_script_pop(fb->add_partitions_script, &fb->add_partitions_script_count);
	struct tl_add_partitions_to_txn_response resp;
	tl_add_partitions_to_txn_response_defaults(&resp);
	resp.results_by_topic_v3_and_below_count = req.v3_and_below_topics_count;
	resp.results_by_topic_v3_and_below =
		tl_arena_array(&arena, (size_t)req.v3_and_below_topics_count + 1,
			       sizeof(*resp.results_by_topic_v3_and_below));
	for (int32_t t = 0; t < req.v3_and_below_topics_count; t++) {
		const struct tl_add_partitions_to_txn_request_add_partitions_to_txn_topic *in =
			&req.v3_and_below_topics[t];
		struct tl_add_partitions_to_txn_response_add_partitions_to_txn_topic_result *r =
			&resp.results_by_topic_v3_and_below[t];
		r->name = in->name;
		r->results_by_partition_count = in->partitions_count;
		r->results_by_partition = tl_arena_array(&arena, (size_t)in->partitions_count + 1,
							 sizeof(*r->results_by_partition));
		for (int32_t i = 0; i < in->partitions_count; i++) {
			r->results_by_partition[i].partition_index = in->partitions[i];
			r->results_by_partition[i].partition_error_code = code;
			if (code == 0 && in->partitions[i] >= 0 &&
			    in->partitions[i] < FAKE_PARTITIONS_MAX)
				fb->txn_added[in->partitions[i]] = true;
		}
	}
	tl_add_partitions_to_txn_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_add_offsets(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
			     struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_add_offsets_to_txn_request req;
	if (tl_add_offsets_to_txn_request_decode(body, version, &arena, &req) == TL_OK) {
		fb->add_offsets_requests++;
		fake_copy_str(fb->seen_offsets_group, sizeof(fb->seen_offsets_group), req.group_id);
	}
	struct tl_add_offsets_to_txn_response resp;
	tl_add_offsets_to_txn_response_defaults(&resp);
	resp.error_code = fake_script_pop(fb->add_offsets_script, &fb->add_offsets_script_count);
	tl_add_offsets_to_txn_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_txn_offset_commit(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
				   struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_txn_offset_commit_request req;
	if (tl_txn_offset_commit_request_decode(body, version, &arena, &req) != TL_OK) {
		tl_arena_deinit(&arena);
		return;
	}
	fb->txn_commit_requests++;
	fb->seen_txn_commit_version = version;
	fb->seen_generation_id = req.generation_id;
	fake_copy_str(fb->seen_member_id, sizeof(fb->seen_member_id), req.member_id);
	int16_t code = fake_script_pop(fb->txn_commit_script, &fb->txn_commit_script_count);
	struct tl_txn_offset_commit_response resp;
	tl_txn_offset_commit_response_defaults(&resp);
	resp.topics_count = req.topics_count;
	resp.topics = tl_arena_array(&arena, (size_t)req.topics_count + 1, sizeof(*resp.topics));
	for (int32_t t = 0; t < req.topics_count; t++) {
		resp.topics[t].name = req.topics[t].name;
		resp.topics[t].partitions_count = req.topics[t].partitions_count;
		resp.topics[t].partitions =
			tl_arena_array(&arena, (size_t)req.topics[t].partitions_count + 1,
				       sizeof(*resp.topics[t].partitions));
		for (int32_t p = 0; p < req.topics[t].partitions_count; p++) {
			int32_t index = req.topics[t].partitions[p].partition_index;
			resp.topics[t].partitions[p].partition_index = index;
			resp.topics[t].partitions[p].error_code = code;
			if (code == 0 && index >= 0 && index < FAKE_PARTITIONS_MAX)
				fb->txn_committed[index] =
					req.topics[t].partitions[p].committed_offset;
		}
	}
	tl_txn_offset_commit_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_end_txn(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
			 struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_end_txn_request req;
	tl_end_txn_request_defaults(&req);
	(void)tl_end_txn_request_decode(body, version, &arena, &req);
	fb->end_requests++;
	struct tl_end_txn_response resp;
	tl_end_txn_response_defaults(&resp);
	resp.error_code = fake_script_pop(fb->end_script, &fb->end_script_count);
	if (resp.error_code == 0) {
		fb->commits += req.committed;
		fb->aborts += !req.committed;
		memset(fb->txn_added, 0, sizeof(fb->txn_added));
	}
	tl_end_txn_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

static void fake_describe_producers(struct fake_broker *fb, struct tl_cursor *body, int16_t version,
				    struct tl_buf *out)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1u << 20);
	struct tl_describe_producers_request req;
	if (tl_describe_producers_request_decode(body, version, &arena, &req) != TL_OK) {
		tl_arena_deinit(&arena);
		return;
	}
	fb->describe_requests++;
	int32_t scripted = -2;
	if (fb->describe_script_count > 0) {
		scripted = fb->describe_script[0];
		memmove(fb->describe_script, fb->describe_script + 1,
			(size_t)--fb->describe_script_count * sizeof(fb->describe_script[0]));
	}
	struct tl_describe_producers_response resp;
	tl_describe_producers_response_defaults(&resp);
	resp.topics_count = req.topics_count;
	resp.topics = tl_arena_array(&arena, (size_t)req.topics_count + 1, sizeof(*resp.topics));
	for (int32_t t = 0; t < req.topics_count; t++) {
		resp.topics[t].name = req.topics[t].name;
		int32_t n = req.topics[t].partition_indexes_count;
		resp.topics[t].partitions_count = n;
		resp.topics[t].partitions =
			tl_arena_array(&arena, (size_t)n + 1, sizeof(*resp.topics[t].partitions));
		for (int32_t i = 0; i < n; i++) {
			struct tl_describe_producers_response_partition_response *pr =
				&resp.topics[t].partitions[i];
			int32_t index = req.topics[t].partition_indexes[i];
			pr->partition_index = index;
			int32_t last = scripted != -2 ? scripted
				       : index >= 0 && index < FAKE_PARTITIONS_MAX
					       ? fb->describe_last[index]
					       : -1;
			if (last < 0)
				continue;
			pr->active_producers_count = 1;
			pr->active_producers =
				tl_arena_array(&arena, 1, sizeof(*pr->active_producers));
			tl_describe_producers_response_producer_state_defaults(
				pr->active_producers);
			pr->active_producers[0].producer_id = 42;
			pr->active_producers[0].producer_epoch = 0;
			pr->active_producers[0].last_sequence = last;
		}
	}
	tl_describe_producers_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

/* Handles one request frame; false closes the connection. */
/* SaslHandshake: PLAIN is offered; SaslAuthenticate: any token logs in, for
 * fb->sasl_lifetime_ms (KIP-368). */
static void fake_sasl(struct fake_broker *fb, int fd, int16_t api_key, int16_t version,
		      struct tl_buf *out)
{
	if (api_key == 17) {
		fb->sasl_handshakes++;
		struct tl_str plain = tl_str_of("PLAIN");
		struct tl_sasl_handshake_response resp;
		tl_sasl_handshake_response_defaults(&resp);
		resp.mechanisms_count = 1;
		resp.mechanisms = &plain;
		tl_sasl_handshake_response_encode(out, version, &resp);
		return;
	}
	struct tl_sasl_authenticate_response resp;
	tl_sasl_authenticate_response_defaults(&resp);
	resp.session_lifetime_ms = fb->sasl_lifetime_ms;
	if (fd >= 0 && fd < 1024 && fb->sasl_lifetime_ms > 0)
		fb->sasl_until_ns[fd] = tl_mono_ns() + fb->sasl_lifetime_ms * 1000000;
	tl_sasl_authenticate_response_encode(out, version, &resp);
}

static bool fake_handle(struct fake_broker *fb, int fd)
{
	uint8_t size_bytes[4];
	if (!fake_read_full(fd, size_bytes, 4))
		return false;
	uint32_t size = tl_be32_get(size_bytes);
	if (size < 8 || size > (64u << 20))
		return false;
	uint8_t *frame = malloc(size);
	if (!frame || !fake_read_full(fd, frame, size)) {
		free(frame);
		return false;
	}
	struct tl_cursor c;
	tl_cursor_init(&c, frame, size);
	int16_t api_key = tl_cursor_i16(&c);
	int16_t version = tl_cursor_i16(&c);
	int32_t correlation_id = tl_cursor_i32(&c);
	(void)tl_cursor_string(&c, false, true); /* client_id */
	if (fake_is_flexible(api_key, version))
		(void)tl_cursor_uvarint(&c); /* header v2: no tagged fields from libtally */
	struct tl_buf out;
	tl_buf_init(&out);
	bool answer = true;
	pthread_mutex_lock(&fb->lock);
	if (api_key != 17 && api_key != 36 && api_key != 18 && fd >= 0 && fd < 1024 &&
	    fb->sasl_until_ns[fd] != 0 && tl_mono_ns() > fb->sasl_until_ns[fd])
		fb->sasl_expired_requests++; /* tallyd would close the connection */
	switch (api_key) {
	case 18:
		fake_api_versions(&out);
		break;
	case 3:
		fake_metadata(fb, &out, version);
		break;
	case 0:
		answer = fake_produce(fb, &c, version, &out);
		break;
	case 2:
		fake_list_offsets(fb, &c, version, &out);
		break;
	case 1:
		fake_fetch(fb, &c, version, &out);
		break;
	case 10:
		fake_find_coordinator(fb, &c, version, &out);
		break;
	case 9:
		fake_offset_fetch(fb, &c, version, &out);
		break;
	case 23:
		fake_offset_for_leader_epoch(fb, &c, version, &out);
		break;
	case 8:
		fake_offset_commit(fb, &c, version, &out);
		answer = !fb->commit_hold;
		break;
	case 22:
		fake_init_producer_id(fb, &c, version, &out);
		break;
	case 24:
		fake_add_partitions(fb, &c, version, &out);
		break;
	case 25:
		fake_add_offsets(fb, &c, version, &out);
		break;
	case 26:
		fake_end_txn(fb, &c, version, &out);
		break;
	case 28:
		fake_txn_offset_commit(fb, &c, version, &out);
		break;
	case 61:
		fake_describe_producers(fb, &c, version, &out);
		break;
	case 17:
	case 36:
		fake_sasl(fb, fd, api_key, version, &out);
		break;
	default:
		answer = false;
		break;
	}
	bool flexible = fake_is_flexible(api_key, version);
	if (answer && api_key == 0 && fb->produce_gate > 0 && fb->held_count < FAKE_SCRIPT_MAX) {
		/* Held: the buffer goes with it. */
		fb->held[fb->held_count].fd = fd;
		fb->held[fb->held_count].correlation_id = correlation_id;
		fb->held[fb->held_count].out = out;
		tl_buf_init(&out);
		answer = false;
		if (++fb->held_count == fb->produce_gate) {
			for (int i = 0; i < fb->held_count; i++) {
				fake_send(fb->held[i].fd, fb->held[i].correlation_id, false,
					  &fb->held[i].out);
				tl_buf_deinit(&fb->held[i].out);
			}
			fb->held_count = 0;
			fb->produce_gate = 0;
		}
	}
	pthread_mutex_unlock(&fb->lock);
	if (answer)
		fake_send(fd, correlation_id, flexible, &out);
	tl_buf_deinit(&out);
	free(frame);
	return true;
}

static void *fake_main(void *arg)
{
	struct fake_broker *fb = arg;
	struct pollfd pfds[FAKE_CONNS_MAX + 1];
	int nconns = 0;
	int conns[FAKE_CONNS_MAX];
	for (;;) {
		pthread_mutex_lock(&fb->lock);
		bool stop = fb->stop;
		pthread_mutex_unlock(&fb->lock);
		if (stop)
			break;
		pfds[0].fd = fb->listen_fd;
		pfds[0].events = POLLIN;
		for (int i = 0; i < nconns; i++) {
			pfds[i + 1].fd = conns[i];
			pfds[i + 1].events = POLLIN;
		}
		if (poll(pfds, (nfds_t)nconns + 1, 20) <= 0)
			continue;
		for (int i = nconns - 1; i >= 0; i--) {
			if (!(pfds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (!fake_handle(fb, conns[i])) {
				close(conns[i]);
				conns[i] = conns[--nconns];
			}
		}
		if ((pfds[0].revents & POLLIN) && nconns < FAKE_CONNS_MAX) {
			int fd = accept(fb->listen_fd, NULL, NULL);
			if (fd != -1) {
				/* As tallyd: a size then a body in two writes must not wait
				 * for the client's delayed ACK (Nagle). */
				int one = 1;
				(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				conns[nconns++] = fd;
			}
		}
	}
	for (int i = 0; i < nconns; i++)
		close(conns[i]);
	return NULL;
}

static void fake_broker_start(struct fake_broker *fb, int32_t partitions)
{
	memset(fb, 0, sizeof(*fb));
	fb->partitions = partitions;
	fb->aborted_producer_id = -1;
	for (int i = 0; i < FAKE_PARTITIONS_MAX; i++)
		fb->committed[i] = fb->txn_committed[i] = fb->describe_last[i] = fb->last_base[i] =
			fb->committed_epoch[i] = -1;
	pthread_mutex_init(&fb->lock, NULL);
	fb->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {0};
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = 0;
	if (bind(fb->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(fb->listen_fd, 16) != 0)
		abort();
	socklen_t len = sizeof(addr);
	getsockname(fb->listen_fd, (struct sockaddr *)&addr, &len);
	fb->port = ntohs(addr.sin_port);
	pthread_create(&fb->thread, NULL, fake_main, fb);
}

static void fake_broker_stop(struct fake_broker *fb)
{
	pthread_mutex_lock(&fb->lock);
	fb->stop = true;
	pthread_mutex_unlock(&fb->lock);
	pthread_join(fb->thread, NULL);
	for (int i = 0; i < fb->held_count; i++)
		tl_buf_deinit(&fb->held[i].out);
	close(fb->listen_fd);
	pthread_mutex_destroy(&fb->lock);
}

static void fake_broker_address(const struct fake_broker *fb, char *out, size_t size)
{
	snprintf(out, size, "127.0.0.1:%d", fb->port);
}

#endif
