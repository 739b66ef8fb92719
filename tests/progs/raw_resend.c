/* raw_resend.c - the chaos harness's producer that re-sends the same batch after a
 * timeout (issue 15), on the raw protocol codec rather than a client library, so that
 * the bytes re-sent are exactly the bytes sent: same producer id, epoch, base sequence
 * and records.
 *
 *   raw_resend BROKERS TOPIC NAME SECONDS RATE HISTORY
 *       BROKERS is "host:port[,host:port...]". An idempotent producer (InitProducerId
 *       without a transactional.id) writes batches of BATCH_RECORDS values "NAME:i", at
 *       RATE records/s for SECONDS, batch b to partition b % partitions, with acks=all,
 *       one batch in flight, to the partition's leader (from Metadata). When the answer
 *       does not come within ANSWER_WAIT_MS, the connection drops, or the answer is a
 *       retriable error (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS,
 *       ...), it re-sends the identical batch, to the leader Metadata names now, until
 *       an answer says where it is: no error (ok, with the offset of each value) or
 *       DUPLICATE_SEQUENCE_NUMBER (ok, the offset unknown). Any other error
 *       (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, ...) ends the producer: its
 *       unacknowledged values get info (outcome unknown) and a new producer id takes
 *       over with new values. A batch still unanswered GIVE_UP_S after the run's end
 *       gets info too.
 * History lines are those of tests/progs/rdk_chaos.c; the invokes carry
 * "retry":"identical", which tells tests/chaos/check.py that every copy of the value
 * was the same batch in the same producer session, so that a second stored copy is a
 * duplicate whatever the stored sessions say.
 * Exit status: 0 done, 1 could not start, 2 usage. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/time.h"
#include "protocol/api.h"
#include "protocol/messages.h"
#include "protocol/records.h"
#include "rawclient.h"
#include "tally/error.h"

#define BATCH_RECORDS      5
#define PARTITIONS_MAX     64
#define BROKERS_MAX        16
#define HOST_BYTES_MAX     128
#define CONNECT_WAIT_MS    2000 /* a partitioned broker drops SYNs: do not wait for TCP's */
#define ANSWER_WAIT_MS     6000 /* past the Produce's own timeout_ms: then re-send */
#define PRODUCE_TIMEOUT_MS 5000 /* the Produce requests' timeout_ms */
#define RETRY_BACKOFF_MS   100
#define GIVE_UP_S          60 /* after the run's end, for the batch in flight */
#define RESPONSE_BYTES_MAX (16u << 20)
#define ARENA_BYTES_MAX    (16u << 20)
#define PRODUCE_VERSION    9
#define METADATA_VERSION   12
#define INIT_PID_VERSION   4

static FILE *history;
static const char *name;
static const char *topic;

/* ---- history ---- */

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record(const char *type, int32_t partition, int64_t offset, const char *value,
		   const char *extra)
{
	fprintf(history, "{\"t\":%.6f,\"process\":\"%s\",\"type\":\"%s\",\"f\":\"send\"", wall_s(),
		name, type);
	fprintf(history, ",\"partition\":%" PRId32, partition);
	if (offset >= 0)
		fprintf(history, ",\"offset\":%" PRId64, offset);
	fprintf(history, ",\"value\":\"%s\"", value);
	if (extra)
		fprintf(history, ",%s", extra);
	fputs("}\n", history);
}

/* ---- connection ---- */

struct broker {
	int32_t node_id;
	char host[HOST_BYTES_MAX];
	int32_t port;
};

struct cluster {
	struct broker bootstrap[BROKERS_MAX];
	int bootstrap_count;
	struct broker brokers[BROKERS_MAX]; /* from the last Metadata answer */
	int broker_count;
	int32_t leader[PARTITIONS_MAX]; /* node id, -1 unknown */
	int32_t partitions;
	int fd;          /* the connection, -1 none */
	int32_t fd_node; /* whom fd is connected to (-1: a bootstrap broker) */
	int32_t correlation_id;
	int next_try; /* which broker conn_to(-1) tries first: a paused one must not stick */
};

/* A connected socket to @b, or -1 after CONNECT_WAIT_MS or an error. */
static int connect_to(const struct broker *b)
{
	char port[16];
	snprintf(port, sizeof(port), "%" PRId32, b->port);
	const char *call = NULL;
	int gai = 0;
	return raw_connect(b->host, port, CONNECT_WAIT_MS, &call, &gai);
}

static void conn_close(struct cluster *cl)
{
	if (cl->fd != -1)
		close(cl->fd);
	cl->fd = -1;
	cl->fd_node = -1;
}

/* Sends @frame on cl->fd and reads its answer into @r. False (connection closed) when
 * sending fails, the answer does not come within ANSWER_WAIT_MS, or it is malformed. */
static bool round_trip(struct cluster *cl, struct tl_buf *frame, int16_t key, int16_t version,
		       int32_t corr, struct raw_reply *r)
{
	memset(r, 0, sizeof(*r));
	uint8_t *frame_in = NULL;
	if (!raw_request_finish(frame)) {
		fprintf(stderr, "raw_resend: out of memory encoding a request\n");
		exit(1);
	}
	int64_t deadline = tl_mono_ms() + ANSWER_WAIT_MS;
	const char *call = NULL;
	uint8_t size[4];
	if (raw_send_all(cl->fd, frame->data, frame->len) != RAW_IO_OK ||
	    raw_recv_exact(cl->fd, size, 4, deadline, &call) != RAW_IO_OK)
		goto out_close;
	uint32_t len = tl_be32_get(size);
	if (len < 4 || len > RESPONSE_BYTES_MAX)
		goto out_close;
	frame_in = malloc(len);
	if (!frame_in || raw_recv_exact(cl->fd, frame_in, len, deadline, &call) != RAW_IO_OK)
		goto out_free;
	int32_t got = -1;
	if (!raw_reply_open(r, frame_in, len, key, version, &got) || got != corr)
		goto out_free;
	tl_arena_init(&r->arena, ARENA_BYTES_MAX);
	return true;
out_free:
	free(frame_in);
	r->frame = NULL;
out_close:
	conn_close(cl);
	return false;
}

static const struct broker *broker_of(const struct cluster *cl, int32_t node_id)
{
	for (int i = 0; i < cl->broker_count; i++)
		if (cl->brokers[i].node_id == node_id)
			return &cl->brokers[i];
	return NULL;
}

/* Connects to broker @node_id (-1: any broker that answers). */
static bool conn_to(struct cluster *cl, int32_t node_id)
{
	if (cl->fd != -1 && (node_id == -1 || cl->fd_node == node_id))
		return true;
	conn_close(cl);
	if (node_id >= 0) {
		const struct broker *b = broker_of(cl, node_id);
		if (b)
			cl->fd = connect_to(b);
		cl->fd_node = cl->fd == -1 ? -1 : node_id;
		return cl->fd != -1;
	}
	int count = cl->broker_count + cl->bootstrap_count;
	for (int k = 0; k < count && cl->fd == -1; k++) {
		int i = (cl->next_try + k) % count;
		const struct broker *b = i < cl->broker_count
						 ? &cl->brokers[i]
						 : &cl->bootstrap[i - cl->broker_count];
		cl->fd = connect_to(b);
		cl->fd_node = cl->fd == -1 ? -1 : b->node_id;
	}
	return cl->fd != -1;
}

/* ---- Metadata and InitProducerId ---- */

static void metadata_apply(struct cluster *cl, const struct tl_metadata_response *resp)
{
	cl->broker_count = 0;
	for (int32_t i = 0; i < resp->brokers_count && cl->broker_count < BROKERS_MAX; i++) {
		const struct tl_metadata_response_metadata_response_broker *mb = &resp->brokers[i];
		struct broker *b = &cl->brokers[cl->broker_count++];
		b->node_id = mb->node_id;
		snprintf(b->host, sizeof(b->host), "%.*s", mb->host.len, mb->host.ptr);
		b->port = mb->port;
	}
	for (int32_t t = 0; t < resp->topics_count; t++) {
		const struct tl_metadata_response_metadata_response_topic *mt = &resp->topics[t];
		if (!tl_str_eq_c(mt->name, topic) || mt->error_code != 0)
			continue;
		cl->partitions = mt->partitions_count < PARTITIONS_MAX ? mt->partitions_count
								       : PARTITIONS_MAX;
		for (int32_t i = 0; i < mt->partitions_count; i++) {
			int32_t p = mt->partitions[i].partition_index;
			if (p >= 0 && p < PARTITIONS_MAX)
				cl->leader[p] = mt->partitions[i].error_code == 0
							? mt->partitions[i].leader_id
							: -1;
		}
	}
}

/* Asks any broker for TOPIC's leaders; false when none answered. */
static bool metadata_refresh(struct cluster *cl)
{
	if (!conn_to(cl, -1))
		return false;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = raw_encode_metadata(&frame, &cl->correlation_id, "raw_resend",
					   METADATA_VERSION, topic);
	struct raw_reply r;
	bool ok = round_trip(cl, &frame, TL_API_METADATA, METADATA_VERSION, corr, &r);
	tl_buf_deinit(&frame);
	if (!ok) {
		cl->next_try++; /* that broker did not answer: start at the next one */
		return false;
	}
	struct tl_metadata_response resp;
	ok = tl_metadata_response_decode(&r.body, METADATA_VERSION, &r.arena, &resp) == TL_OK;
	if (ok)
		metadata_apply(cl, &resp);
	raw_reply_free(&r);
	return ok;
}

/* An idempotent producer id and epoch from any broker; false when none gave one. */
static bool init_producer_id(struct cluster *cl, int64_t *pid_out, int16_t *epoch_out)
{
	if (!conn_to(cl, -1))
		return false;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = raw_encode_init_producer_id(&frame, &cl->correlation_id, "raw_resend",
						   INIT_PID_VERSION, NULL, 60000);
	struct raw_reply r;
	bool ok = round_trip(cl, &frame, TL_API_INIT_PRODUCER_ID, INIT_PID_VERSION, corr, &r);
	tl_buf_deinit(&frame);
	if (!ok)
		return false;
	struct tl_init_producer_id_response resp;
	ok = tl_init_producer_id_response_decode(&r.body, INIT_PID_VERSION, &r.arena, &resp) ==
		     TL_OK &&
	     resp.error_code == 0 && resp.producer_id >= 0;
	if (ok) {
		*pid_out = resp.producer_id;
		*epoch_out = resp.producer_epoch;
	}
	raw_reply_free(&r);
	return ok;
}

/* ---- Produce ---- */

/* Sends @batch (kept byte for byte across re-sends) to @partition's leader; returns the
 * partition's error code, -1 when no answer came (dropped, timed out), -2 when it was
 * not sent (no leader known, no connection). */
static int produce_once(struct cluster *cl, int32_t partition, const struct tl_buf *batch,
			int64_t *base_offset_out)
{
	if (cl->leader[partition] < 0 || !conn_to(cl, cl->leader[partition]))
		return -2;
	struct tl_buf frame;
	tl_buf_init(&frame);
	int32_t corr = raw_encode_produce(&frame, &cl->correlation_id, "raw_resend",
					  PRODUCE_VERSION, NULL, -1, PRODUCE_TIMEOUT_MS, topic,
					  partition, batch->data, batch->len);
	struct raw_reply r;
	bool ok = round_trip(cl, &frame, TL_API_PRODUCE, PRODUCE_VERSION, corr, &r);
	tl_buf_deinit(&frame);
	if (!ok)
		return -1;
	struct tl_produce_response resp;
	int code = -1;
	if (tl_produce_response_decode(&r.body, PRODUCE_VERSION, &r.arena, &resp) == TL_OK &&
	    resp.responses_count == 1 && resp.responses[0].partition_responses_count == 1 &&
	    resp.responses[0].partition_responses[0].index == partition) {
		code = resp.responses[0].partition_responses[0].error_code;
		*base_offset_out = resp.responses[0].partition_responses[0].base_offset;
	}
	raw_reply_free(&r);
	if (code == -1)
		conn_close(cl);
	return code;
}

static bool is_retriable(int code)
{
	switch (code) {
	case TL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
	case TL_ERR_LEADER_NOT_AVAILABLE:
	case TL_ERR_NOT_LEADER_OR_FOLLOWER:
	case TL_ERR_REQUEST_TIMED_OUT:
	case TL_ERR_NETWORK_EXCEPTION:
	case TL_ERR_NOT_ENOUGH_REPLICAS:
	case TL_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
	case TL_ERR_KAFKA_STORAGE_ERROR:
	case TL_ERR_FENCED_LEADER_EPOCH:
	case TL_ERR_UNKNOWN_LEADER_EPOCH:
	case TL_ERR_COORDINATOR_LOAD_IN_PROGRESS:
	case TL_ERR_CONCURRENT_TRANSACTIONS:
		return true;
	default:
		return false;
	}
}

struct stats {
	uint64_t batches;
	uint64_t resends;    /* identical batches sent again (written to a socket) */
	uint64_t unanswered; /* sends without an answer (timed out, connection dropped) */
	uint64_t duplicates; /* DUPLICATE_SEQUENCE_NUMBER answers */
	uint64_t fatal;      /* producers ended by an error */
	uint64_t unknown;    /* batches given up on */
};

/* Sends @batch until an answer says where it is or @give_up_ms (monotonic) passes.
 * Returns the final error code (0, DUPLICATE_SEQUENCE_NUMBER or a fatal one), or -1
 * when it gave up. */
static int produce_until_answered(struct cluster *cl, int32_t partition, const struct tl_buf *batch,
				  int64_t give_up_ms, int64_t *base_offset_out, struct stats *stats)
{
	for (bool sent = false;;) {
		if (tl_mono_ms() > give_up_ms)
			return -1;
		int code = produce_once(cl, partition, batch, base_offset_out);
		if (code != -2 && sent)
			stats->resends++;
		sent |= code != -2;
		stats->unanswered += code == -1;
		if (code == 0 || code == TL_ERR_DUPLICATE_SEQUENCE_NUMBER)
			return code;
		if (code >= 0 && !is_retriable(code))
			return code;
		if (code >= 0)
			fprintf(stderr, "raw_resend: %s: partition %d: %s, re-sending\n", name,
				partition, tl_err_name((tl_err)code));
		/* The leader may have moved: ask again, then re-send the same bytes. */
		conn_close(cl);
		usleep(RETRY_BACKOFF_MS * 1000);
		metadata_refresh(cl);
	}
}

static void build_batch(struct tl_buf *out, uint64_t first_value, int64_t pid, int16_t epoch,
			int32_t seq)
{
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, TL_COMPRESSION_NONE);
	int64_t now = tl_wall_ms();
	for (uint64_t i = 0; i < BATCH_RECORDS; i++) {
		char value[64];
		int n = snprintf(value, sizeof(value), "%s:%" PRIu64, name, first_value + i);
		struct tl_bytes key = {NULL, -1};
		struct tl_bytes v = {(const uint8_t *)value, n};
		if (tl_records_builder_append(&builder, now, key, v, NULL, 0) != TL_OK) {
			fprintf(stderr, "raw_resend: builder append failed\n");
			exit(1);
		}
	}
	tl_records_builder_set_producer(&builder, pid, epoch, seq, false);
	tl_buf_init(out);
	if (tl_records_builder_finish(&builder, NULL, out) != TL_OK) {
		fprintf(stderr, "raw_resend: builder finish failed\n");
		exit(1);
	}
	tl_records_builder_deinit(&builder);
}

/* Records each value of the batch at @first_value: ok at @base_offset + i (offset
 * unknown when @base_offset < 0), or @type with @error. */
static void record_outcome(const char *type, int32_t partition, uint64_t first_value,
			   int64_t base_offset, const char *error)
{
	char extra[96];
	snprintf(extra, sizeof(extra), "\"error\":\"%s\"", error ? error : "");
	for (uint64_t i = 0; i < BATCH_RECORDS; i++) {
		char value[64];
		snprintf(value, sizeof(value), "%s:%" PRIu64, name, first_value + i);
		record(type, partition, base_offset < 0 ? -1 : base_offset + (int64_t)i, value,
		       error ? extra : NULL);
	}
}

static bool producer_start(struct cluster *cl, int32_t *seq, int64_t *pid, int16_t *epoch,
			   int64_t give_up_ms)
{
	while (!init_producer_id(cl, pid, epoch)) {
		if (tl_mono_ms() > give_up_ms)
			return false;
		conn_close(cl);
		cl->next_try++;
		usleep(500 * 1000);
	}
	for (int p = 0; p < PARTITIONS_MAX; p++)
		seq[p] = 0;
	fprintf(stderr, "raw_resend: %s: producer id %" PRId64 " epoch %d\n", name, *pid, *epoch);
	return true;
}

/* Fills cl->bootstrap from "host:port[,host:port...]". */
static bool bootstrap_parse(struct cluster *cl, const char *list)
{
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", list);
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item && cl->bootstrap_count < BROKERS_MAX;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		if (!colon)
			return false;
		*colon = '\0';
		struct broker *b = &cl->bootstrap[cl->bootstrap_count++];
		b->node_id = -1;
		snprintf(b->host, sizeof(b->host), "%s", item);
		b->port = atoi(colon + 1);
	}
	return cl->bootstrap_count > 0;
}

static int run(const char *brokers, double seconds, double rate)
{
	struct cluster cl = {.fd = -1, .fd_node = -1, .correlation_id = 1};
	if (!bootstrap_parse(&cl, brokers)) {
		fprintf(stderr, "raw_resend: bad broker list \"%s\"\n", brokers);
		return 2;
	}
	for (int p = 0; p < PARTITIONS_MAX; p++)
		cl.leader[p] = -1;
	int64_t start = tl_mono_ms();
	int64_t end = start + (int64_t)(seconds * 1000);
	int64_t give_up = end + GIVE_UP_S * 1000;
	while (cl.partitions <= 0 && tl_mono_ms() < end) {
		if (!metadata_refresh(&cl))
			usleep(500 * 1000);
	}
	int32_t seq[PARTITIONS_MAX];
	int64_t pid = -1;
	int16_t epoch = -1;
	if (cl.partitions <= 0 || !producer_start(&cl, seq, &pid, &epoch, end)) {
		fprintf(stderr, "raw_resend: %s: no metadata or producer id for %s\n", name, topic);
		return 1;
	}
	struct stats stats = {0};
	uint64_t value = 0;
	char invoke_extra[64];
	snprintf(invoke_extra, sizeof(invoke_extra), "\"retry\":\"identical\"");
	while (tl_mono_ms() < end) {
		double due = (double)(tl_mono_ms() - start) / 1000.0 * rate;
		if ((double)value >= due) {
			usleep(5 * 1000);
			continue;
		}
		int32_t p = (int32_t)(stats.batches % (uint64_t)cl.partitions);
		struct tl_buf batch;
		build_batch(&batch, value, pid, epoch, seq[p]);
		for (uint64_t i = 0; i < BATCH_RECORDS; i++) {
			char v[64];
			snprintf(v, sizeof(v), "%s:%" PRIu64, name, value + i);
			record("invoke", p, -1, v, invoke_extra);
		}
		int64_t base = -1;
		int code = produce_until_answered(&cl, p, &batch, give_up, &base, &stats);
		tl_buf_deinit(&batch);
		stats.batches++;
		if (code == 0) {
			record_outcome("ok", p, value, base, NULL);
			seq[p] += BATCH_RECORDS;
		} else if (code == TL_ERR_DUPLICATE_SEQUENCE_NUMBER) {
			stats.duplicates++;
			record_outcome("ok", p, value, -1, NULL);
			seq[p] += BATCH_RECORDS;
		} else if (code == -1) {
			stats.unknown++;
			record_outcome("info", p, value, -1, "gave up");
			break;
		} else {
			/* The producer is done: a new one, with new values, takes over. */
			stats.fatal++;
			fprintf(stderr,
				"raw_resend: %s: partition %d: %s ends producer %" PRId64 "\n",
				name, p, tl_err_name((tl_err)code), pid);
			record_outcome("info", p, value, -1, tl_err_name((tl_err)code));
			value += BATCH_RECORDS;
			if (!producer_start(&cl, seq, &pid, &epoch, give_up))
				break;
			continue;
		}
		value += BATCH_RECORDS;
	}
	conn_close(&cl);
	fprintf(stderr,
		"raw_resend: %s: %" PRIu64 " batches, %" PRIu64 " re-sent, %" PRIu64
		" sends unanswered, %" PRIu64 " DUPLICATE_SEQUENCE_NUMBER, %" PRIu64
		" producers ended, %" PRIu64 " unknown\n",
		name, stats.batches, stats.resends, stats.unanswered, stats.duplicates, stats.fatal,
		stats.unknown);
	fflush(history);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: raw_resend BROKERS TOPIC NAME SECONDS RATE HISTORY\n");
		return 2;
	}
	topic = argv[2];
	name = argv[3];
	history = fopen(argv[6], "a");
	if (history) /* line by line: a workload chaos.sh kills as hung keeps its history */
		setvbuf(history, NULL, _IOLBF, 0);
	if (!history) {
		perror(argv[6]);
		return 2;
	}
	return run(argv[1], atof(argv[4]), atof(argv[5]));
}
