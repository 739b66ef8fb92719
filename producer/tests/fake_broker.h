/* fake_broker.h - a scripted one-node Kafka broker on 127.0.0.1 for the client unit
 * tests, in a thread of the test process. It answers ApiVersions, Metadata (one topic
 * "t" with fake_broker.partitions partitions, led by node 0 = itself), InitProducerId
 * (producer id 42, epoch 0), Produce (answers from a script, remembering each batch's
 * producer id and base sequence), ListOffsets (earliest 0, latest fetch_end), Fetch
 * (the same records blob at any offset, plus an aborted-transactions list) and
 * FindCoordinator / OffsetFetch / OffsetCommit (committed offsets kept per partition).
 * Encoding and decoding use the generated codec, so the fake speaks the same bytes as
 * tallyd. Header-only: static functions for one test file. */
#ifndef TL_PRODUCER_TESTS_FAKE_BROKER_H
#define TL_PRODUCER_TESTS_FAKE_BROKER_H

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
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
	/* group coordinator */
	int64_t committed[FAKE_PARTITIONS_MAX]; /* -1: none */
	int commit_requests;
};

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

static void fake_send(int fd, int32_t correlation_id, const struct tl_buf *body)
{
	uint8_t head[8];
	tl_be32_put(head, (uint32_t)(body->len + 4));
	tl_be32_put(head + 4, (uint32_t)correlation_id);
	if (send(fd, head, 8, MSG_NOSIGNAL) != 8 ||
	    send(fd, body->data, body->len, MSG_NOSIGNAL) != (ssize_t)body->len)
		return;
}

static void fake_api_versions(struct tl_buf *out)
{
	static const int16_t apis[][3] = {
		{0, 3, 8}, {1, 4, 11}, {2, 1, 5},  {3, 1, 8},  {8, 2, 7},
		{9, 1, 5}, {10, 0, 2}, {18, 0, 0}, {22, 0, 1},
	};
	struct tl_api_versions_response_api_version keys[9];
	for (int i = 0; i < 9; i++) {
		keys[i].api_key = apis[i][0];
		keys[i].min_version = apis[i][1];
		keys[i].max_version = apis[i][2];
	}
	struct tl_api_versions_response resp;
	tl_api_versions_response_defaults(&resp);
	resp.api_keys_count = 9;
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
		parts[p].leader_epoch = 0;
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
			pr->error_code = code;
			const uint8_t *b = pd->records.ptr;
			int32_t count = (int32_t)tl_be32_get(b + 57);
			if (fb->batches_seen < FAKE_SEEN_MAX) {
				fb->seen_producer_id[fb->batches_seen] =
					(int64_t)tl_be64_get(b + 43);
				fb->seen_base_sequence[fb->batches_seen] =
					(int32_t)tl_be32_get(b + 53);
				fb->seen_record_count[fb->batches_seen] = count;
				fb->batches_seen++;
			}
			if (code == 0 && pd->index >= 0 && pd->index < FAKE_PARTITIONS_MAX) {
				pr->base_offset = fb->next_offset[pd->index];
				fb->next_offset[pd->index] += count;
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
			bool has = req.topics[t].partitions[p].fetch_offset < fb->fetch_end;
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

static void fake_find_coordinator(struct fake_broker *fb, int16_t version, struct tl_buf *out)
{
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
			resp.topics[t].partitions[p].committed_leader_epoch = -1;
			resp.topics[t].partitions[p].metadata = tl_str_of("");
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
			if (index >= 0 && index < FAKE_PARTITIONS_MAX)
				fb->committed[index] = req.topics[t].partitions[p].committed_offset;
		}
	}
	tl_offset_commit_response_encode(out, version, &resp);
	tl_arena_deinit(&arena);
}

/* Handles one request frame; false closes the connection. */
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
	struct tl_buf out;
	tl_buf_init(&out);
	bool answer = true;
	pthread_mutex_lock(&fb->lock);
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
		fake_find_coordinator(fb, version, &out);
		break;
	case 9:
		fake_offset_fetch(fb, &c, version, &out);
		break;
	case 8:
		fake_offset_commit(fb, &c, version, &out);
		break;
	case 22: {
		struct tl_init_producer_id_response resp;
		tl_init_producer_id_response_defaults(&resp);
		resp.producer_id = 42;
		resp.producer_epoch = 0;
		tl_init_producer_id_response_encode(&out, version, &resp);
		break;
	}
	default:
		answer = false;
		break;
	}
	pthread_mutex_unlock(&fb->lock);
	if (answer)
		fake_send(fd, correlation_id, &out);
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
			if (fd != -1)
				conns[nconns++] = fd;
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
		fb->committed[i] = -1;
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
	close(fb->listen_fd);
	pthread_mutex_destroy(&fb->lock);
}

static void fake_broker_address(const struct fake_broker *fb, char *out, size_t size)
{
	snprintf(out, size, "127.0.0.1:%d", fb->port);
}

#endif
