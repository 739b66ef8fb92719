/* rdk_group.c - consumer group checks against a broker, through librdkafka (and one raw
 * JoinGroup client for malformed metadata).
 *   rdk_group consume   -b BROKER -g GROUP -t TOPIC [-n MAX] [-s SESSION_MS] [-i INSTANCE]
 *                       [-I IDLE_MS] [-a]
 *       subscribes and consumes. Prints, one line each, flushed:
 *         assigned N T:P,T:P,...   after every (eager) assignment, N partitions
 *         revoked
 *         record P OFFSET VALUE    every record
 *         position P OFFSET        the consumer's own position, just before the final
 *                                  commit (which commits these positions)
 *         committed P OFFSET       after the final synchronous commit, as OffsetFetch
 *                                  (rd_kafka_committed) then reads it from the broker
 *         done COUNT
 *       Stops after MAX records (0 = never), after IDLE_MS without a record (0 = never),
 *       or on SIGTERM/SIGINT; then commits what it consumed (synchronously, answered
 *       only once durable) and closes, which leaves the group. It also commits before
 *       giving up partitions in a rebalance. -a: no commits at all.
 *   rdk_group committed -b BROKER -g GROUP -t TOPIC -p PARTITIONS
 *       prints "committed P OFFSET" for partitions 0..PARTITIONS-1 (-1001: none).
 *   rdk_group describe  -b BROKER -g GROUP
 *       DescribeGroups: "group G state S members N", then per member
 *       "member ID client CLIENT host HOST assignment T:P,..." (sorted by assignment).
 *   rdk_group delete    -b BROKER -g GROUP
 *       DeleteGroups: "deleted G" or "delete-error G ERROR".
 *   rdk_group badjoin   -b BROKER -g GROUP
 *       raw JoinGroup v5 requests with malformed consumer metadata on one connection,
 *       then a well-formed one: "badjoin CASE error CODE" per request.
 * Exit status: 0 done, 1 a failure (printed on stderr), 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "protocol/api.h"
#include "protocol/messages.h"

#define PARTITIONS_MAX    1024
#define ADMIN_TIMEOUT_MS  10000
#define COMMIT_TIMEOUT_MS 10000
#define FRAME_BYTES_MAX   (1 << 20)

struct options {
	const char *mode;
	const char *brokers;
	const char *group;
	const char *topic;
	const char *instance;
	long max;
	long session_ms;
	long idle_ms;
	long partitions;
	bool no_commit;
};

static volatile sig_atomic_t stopping;
static bool no_commit; /* -a, for the rebalance callback */

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
	char err[256];
	if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "rdk_group: %s=%s: %s\n", key, value, err);
		exit(2);
	}
}

/* ---- consume ---- */

static void print_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
	printf("%s %d ", what, parts->cnt);
	for (int i = 0; i < parts->cnt; i++)
		printf("%s%s:%" PRId32, i ? "," : "", parts->elems[i].topic,
		       parts->elems[i].partition);
	printf("\n");
	fflush(stdout);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		print_partitions("assigned", parts);
		rd_kafka_assign(rk, parts);
	} else {
		/* Commit what was read before the partitions go, as a real consumer does. */
		if (!no_commit) {
			err = rd_kafka_commit(rk, NULL, 0);
			if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
				fprintf(stderr, "rdk_group: commit on revoke failed: %s\n",
					rd_kafka_err2str(err));
		}
		printf("revoked\n");
		fflush(stdout);
		rd_kafka_assign(rk, NULL);
	}
}

static rd_kafka_t *consumer_new(const struct options *opts)
{
	char err[512], session[32];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", opts->brokers);
	conf_set(conf, "group.id", opts->group);
	conf_set(conf, "client.id", "rdk_group");
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "auto.offset.reset", "earliest");
	snprintf(session, sizeof(session), "%ld", opts->session_ms);
	conf_set(conf, "session.timeout.ms", session);
	conf_set(conf, "heartbeat.interval.ms", "1000");
	/* The rebalance timeout librdkafka sends; keeps a lost rejoin bounded. */
	conf_set(conf, "max.poll.interval.ms", "20000");
	if (opts->instance)
		conf_set(conf, "group.instance.id", opts->instance);
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	no_commit = opts->no_commit;
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_group: rd_kafka_new: %s\n", err);
		exit(1);
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

/* Prints the consumer's positions: what rd_kafka_commit(rk, NULL, ...) commits. */
static void print_positions(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(rk, &parts) || !parts)
		return;
	if (rd_kafka_position(rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (int i = 0; i < parts->cnt; i++)
			printf("position %" PRId32 " %" PRId64 "\n", parts->elems[i].partition,
			       parts->elems[i].offset);
	rd_kafka_topic_partition_list_destroy(parts);
}

/* Commits the consumed positions synchronously and prints them, then what the broker
 * now holds. */
static int commit_final(rd_kafka_t *rk)
{
	print_positions(rk);
	rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);
	if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
		return 0;
	if (err) {
		fprintf(stderr, "rdk_group: commit failed: %s\n", rd_kafka_err2str(err));
		return 1;
	}
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(rk, &parts) || !parts)
		return 1;
	err = rd_kafka_committed(rk, parts, COMMIT_TIMEOUT_MS);
	for (int i = 0; !err && i < parts->cnt; i++)
		printf("committed %" PRId32 " %" PRId64 "\n", parts->elems[i].partition,
		       parts->elems[i].offset);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err)
		fprintf(stderr, "rdk_group: committed: %s\n", rd_kafka_err2str(err));
	return err ? 1 : 0;
}

static int mode_consume(const struct options *opts)
{
	rd_kafka_t *rk = consumer_new(opts);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, opts->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		fprintf(stderr, "rdk_group: subscribe: %s\n", rd_kafka_err2str(err));
		return 1;
	}
	long count = 0;
	int64_t last = now_ms();
	int rc = 0;
	while (!stopping && (opts->max == 0 || count < opts->max)) {
		if (opts->idle_ms > 0 && now_ms() - last > opts->idle_ms)
			break;
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
		if (!msg)
			continue;
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(msg);
			continue;
		}
		if (msg->err) {
			fprintf(stderr, "rdk_group: consume error: %s\n",
				rd_kafka_message_errstr(msg));
			rd_kafka_message_destroy(msg);
			continue;
		}
		printf("record %" PRId32 " %" PRId64 " %.*s\n", msg->partition, msg->offset,
		       (int)msg->len, (const char *)msg->payload);
		fflush(stdout);
		count++;
		last = now_ms();
		rd_kafka_message_destroy(msg);
	}
	if (!opts->no_commit)
		rc = commit_final(rk);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	printf("done %ld\n", count);
	fflush(stdout);
	return rc;
}

static int mode_committed(const struct options *opts)
{
	rd_kafka_t *rk = consumer_new(opts);
	rd_kafka_topic_partition_list_t *parts =
		rd_kafka_topic_partition_list_new((int)opts->partitions);
	for (long p = 0; p < opts->partitions; p++)
		rd_kafka_topic_partition_list_add(parts, opts->topic, (int32_t)p);
	rd_kafka_resp_err_t err = rd_kafka_committed(rk, parts, COMMIT_TIMEOUT_MS);
	for (int i = 0; !err && i < parts->cnt; i++)
		printf("committed %" PRId32 " %" PRId64 "\n", parts->elems[i].partition,
		       parts->elems[i].offset);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	if (err)
		fprintf(stderr, "rdk_group: committed: %s\n", rd_kafka_err2str(err));
	return err ? 1 : 0;
}

/* ---- admin ---- */

static rd_kafka_t *admin_new(const struct options *opts)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", opts->brokers);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rdk_group: rd_kafka_new: %s\n", err);
		exit(1);
	}
	return rk;
}

/* Waits for the admin result event of type @type on @queue. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *queue, rd_kafka_event_type_t type)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, ADMIN_TIMEOUT_MS + 5000);
	if (!ev || rd_kafka_event_type(ev) != type) {
		fprintf(stderr, "rdk_group: no admin result\n");
		exit(1);
	}
	if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "rdk_group: admin request failed: %s\n",
			rd_kafka_event_error_string(ev));
		exit(1);
	}
	return ev;
}

static void print_member(const rd_kafka_MemberDescription_t *m)
{
	const rd_kafka_topic_partition_list_t *parts =
		rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
	printf("member %s client %s host %s assignment ", rd_kafka_MemberDescription_consumer_id(m),
	       rd_kafka_MemberDescription_client_id(m), rd_kafka_MemberDescription_host(m));
	for (int i = 0; parts && i < parts->cnt; i++)
		printf("%s%s:%" PRId32, i ? "," : "", parts->elems[i].topic,
		       parts->elems[i].partition);
	printf("\n");
}

static int mode_describe(const struct options *opts)
{
	rd_kafka_t *rk = admin_new(opts);
	rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
	const char *groups[] = {opts->group};
	rd_kafka_DescribeConsumerGroups(rk, groups, 1, NULL, queue);
	rd_kafka_event_t *ev = admin_wait(queue, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT);
	size_t count = 0;
	const rd_kafka_ConsumerGroupDescription_t **descs =
		rd_kafka_DescribeConsumerGroups_result_groups(
			rd_kafka_event_DescribeConsumerGroups_result(ev), &count);
	int rc = 0;
	for (size_t i = 0; i < count; i++) {
		const rd_kafka_error_t *error = rd_kafka_ConsumerGroupDescription_error(descs[i]);
		if (error) {
			printf("describe-error %s %s\n",
			       rd_kafka_ConsumerGroupDescription_group_id(descs[i]),
			       rd_kafka_error_name(error));
			rc = 1;
			continue;
		}
		size_t members = rd_kafka_ConsumerGroupDescription_member_count(descs[i]);
		printf("group %s state %s members %zu\n",
		       rd_kafka_ConsumerGroupDescription_group_id(descs[i]),
		       rd_kafka_consumer_group_state_name(
			       rd_kafka_ConsumerGroupDescription_state(descs[i])),
		       members);
		for (size_t m = 0; m < members; m++)
			print_member(rd_kafka_ConsumerGroupDescription_member(descs[i], m));
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(queue);
	rd_kafka_destroy(rk);
	return rc;
}

static int mode_delete(const struct options *opts)
{
	rd_kafka_t *rk = admin_new(opts);
	rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
	rd_kafka_DeleteGroup_t *del = rd_kafka_DeleteGroup_new(opts->group);
	rd_kafka_DeleteGroups(rk, &del, 1, NULL, queue);
	rd_kafka_DeleteGroup_destroy(del);
	rd_kafka_event_t *ev = admin_wait(queue, RD_KAFKA_EVENT_DELETEGROUPS_RESULT);
	size_t count = 0;
	const rd_kafka_group_result_t **results =
		rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &count);
	int rc = count == 1 ? 0 : 1;
	for (size_t i = 0; i < count; i++) {
		const rd_kafka_error_t *error = rd_kafka_group_result_error(results[i]);
		if (error)
			printf("delete-error %s %s\n", rd_kafka_group_result_name(results[i]),
			       rd_kafka_error_name(error));
		else
			printf("deleted %s\n", rd_kafka_group_result_name(results[i]));
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(queue);
	rd_kafka_destroy(rk);
	return rc;
}

/* ---- badjoin: a raw client ---- */

static int connect_to(const char *brokers)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", brokers);
	char *colon = strrchr(host, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd != -1 && connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static bool io_all(int fd, uint8_t *p, size_t len, bool writing)
{
	while (len > 0) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Sends JoinGroup v5 with one "range" protocol carrying @metadata; returns the error
 * code of the answer, or -1000 if the connection closed. */
static int join_raw(int fd, const char *group, const uint8_t *metadata, int32_t metadata_len,
		    int32_t correlation_id)
{
	const int16_t version = 5;
	struct tl_buf buf;
	tl_buf_init(&buf);
	tl_buf_i32(&buf, 0);
	struct tl_request_header h = {TL_API_JOIN_GROUP, version, correlation_id,
				      tl_str_of("rdk_group")};
	tl_request_header_encode(&buf, &h);
	struct tl_join_group_request_join_group_request_protocol proto;
	tl_join_group_request_join_group_request_protocol_defaults(&proto);
	proto.name = tl_str_of("range");
	proto.metadata = (struct tl_bytes){metadata ? metadata : (const uint8_t *)"", metadata_len};
	struct tl_join_group_request req;
	tl_join_group_request_defaults(&req);
	req.group_id = tl_str_of(group);
	req.session_timeout_ms = 10000;
	req.rebalance_timeout_ms = 10000;
	req.member_id = tl_str_of("");
	req.group_instance_id = (struct tl_str){NULL, -1};
	req.protocol_type = tl_str_of("consumer");
	req.protocols_count = 1;
	req.protocols = &proto;
	tl_join_group_request_encode(&buf, version, &req);
	tl_be32_put(buf.data, (uint32_t)(buf.len - 4));
	bool sent = !buf.failed && io_all(fd, buf.data, buf.len, true);
	tl_buf_deinit(&buf);
	uint8_t size[4];
	if (!sent || !io_all(fd, size, sizeof(size), false))
		return -1000;
	uint32_t len = tl_be32_get(size);
	if (len > FRAME_BYTES_MAX)
		return -1000;
	uint8_t *frame = malloc(len ? len : 1);
	if (!frame || !io_all(fd, frame, len, false)) {
		free(frame);
		return -1000;
	}
	struct tl_cursor c;
	tl_cursor_init(&c, frame, len);
	int32_t corr = -1;
	struct tl_arena arena;
	tl_arena_init(&arena, FRAME_BYTES_MAX);
	struct tl_join_group_response resp;
	int code = -1000;
	if (tl_response_header_decode(&c, TL_API_JOIN_GROUP, version, &corr) == TL_OK &&
	    corr == correlation_id &&
	    tl_join_group_response_decode(&c, version, &arena, &resp) == TL_OK)
		code = resp.error_code;
	tl_arena_deinit(&arena);
	free(frame);
	return code;
}

static int mode_badjoin(const struct options *opts)
{
	/* Consumer subscriptions: int16 version, then topics [string], user data bytes. */
	static const uint8_t negative_version[] = {0xff, 0xff, 0, 0, 0, 0};
	static const uint8_t huge_topic_count[] = {0, 0, 0x7f, 0xff, 0xff, 0xff};
	static const uint8_t truncated_topic[] = {0, 1, 0, 0, 0, 1, 0, 9, 't', 'o'};
	static const uint8_t only_one_byte[] = {0};
	static const uint8_t valid[] = {0, 0, 0, 0, 0, 1, 0, 1, 't', 0xff, 0xff, 0xff, 0xff};
	const struct {
		const char *name;
		const uint8_t *bytes;
		int32_t len;
	} cases[] = {
		{"empty", NULL, 0},
		{"negative-version", negative_version, sizeof(negative_version)},
		{"huge-topic-count", huge_topic_count, sizeof(huge_topic_count)},
		{"truncated-topic", truncated_topic, sizeof(truncated_topic)},
		{"one-byte", only_one_byte, sizeof(only_one_byte)},
		{"valid", valid, sizeof(valid)},
	};
	int fd = connect_to(opts->brokers);
	if (fd == -1) {
		fprintf(stderr, "rdk_group: cannot connect to %s\n", opts->brokers);
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int code = join_raw(fd, opts->group, cases[i].bytes, cases[i].len, (int32_t)i + 1);
		printf("badjoin %s error %d\n", cases[i].name, code);
	}
	close(fd);
	return 0;
}

/* ---- main ---- */

_Noreturn static void usage(void)
{
	fprintf(stderr, "usage: rdk_group consume|committed|describe|delete|badjoin -b BROKER -g "
			"GROUP [-t TOPIC] [-n MAX] [-s SESSION_MS] [-i INSTANCE] [-I IDLE_MS] "
			"[-p PARTITIONS] [-a]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct options opts = {.session_ms = 6000};
	if (argc < 2)
		usage();
	opts.mode = argv[1];
	int c;
	optind = 2;
	while ((c = getopt(argc, argv, "b:g:t:n:s:i:I:p:a")) != -1) {
		switch (c) {
		case 'b':
			opts.brokers = optarg;
			break;
		case 'g':
			opts.group = optarg;
			break;
		case 't':
			opts.topic = optarg;
			break;
		case 'n':
			opts.max = strtol(optarg, NULL, 10);
			break;
		case 's':
			opts.session_ms = strtol(optarg, NULL, 10);
			break;
		case 'i':
			opts.instance = optarg;
			break;
		case 'I':
			opts.idle_ms = strtol(optarg, NULL, 10);
			break;
		case 'p':
			opts.partitions = strtol(optarg, NULL, 10);
			break;
		case 'a':
			opts.no_commit = true;
			break;
		default:
			usage();
		}
	}
	if (!opts.brokers || !opts.group)
		usage();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (strcmp(opts.mode, "consume") == 0 && opts.topic)
		return mode_consume(&opts);
	if (strcmp(opts.mode, "committed") == 0 && opts.topic && opts.partitions > 0 &&
	    opts.partitions <= PARTITIONS_MAX)
		return mode_committed(&opts);
	if (strcmp(opts.mode, "describe") == 0)
		return mode_describe(&opts);
	if (strcmp(opts.mode, "delete") == 0)
		return mode_delete(&opts);
	if (strcmp(opts.mode, "badjoin") == 0)
		return mode_badjoin(&opts);
	usage();
}
