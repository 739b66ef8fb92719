/* quota_raw.c - DescribeClientQuotas / AlterClientQuotas on the wire, for quota tests.
 *   quota_raw BROKER VERSION alter [-n] ENTITY OP...   ENTITY: user=NAME,client-id=NAME
 *                                      (either part; <default> for the default entity)
 *                                      OP: key=value, or key=- to remove; -n: validate only
 *                                      prints "ok" or "error CODE MESSAGE"
 *   quota_raw BROKER VERSION describe [-s] [TYPE=MATCH...]
 *                                      MATCH: a name, <default>, or * (any specified);
 *                                      -s strict; prints one line an entity, sorted by
 *                                      the broker's order: "user=X client-id=Y key=value..."
 *                                      (absent parts left out), or "error CODE MESSAGE"
 *   quota_raw BROKER VERSION produce-old CLIENT_ID TOPIC
 *                                      one Produce v5 request of 100 kB (pre-KIP-219):
 *                                      prints "throttle_ms=T delay_ms=D", D being how
 *                                      long its answer took
 * VERSION is the API version of the quota requests (0 or 1). Exit 0 when the broker
 * answered, 1 otherwise. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/time.h"
#include "protocol/api.h"
#include "protocol/messages.h"
#include "protocol/records.h"
#include "tally/error.h"

#define ARENA_BYTES (16u << 20)

static int fd = -1;
static int32_t correlation = 1;

static void die(const char *what)
{
	fprintf(stderr, "quota_raw: %s\n", what);
	exit(1);
}

static void connect_to(const char *addr)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", addr);
	char *colon = strrchr(host, ':');
	if (!colon)
		die("broker is not HOST:PORT");
	*colon = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		die("cannot resolve the broker");
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd == -1 || connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		die("cannot connect");
	freeaddrinfo(res);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void begin(struct tl_buf *frame, int16_t key, int16_t version, const char *client_id)
{
	tl_buf_reset(frame);
	tl_buf_i32(frame, 0);
	struct tl_request_header h = {.api_key = key,
				      .api_version = version,
				      .correlation_id = correlation++,
				      .client_id = tl_str_of(client_id)};
	tl_request_header_encode(frame, &h);
}

static void send_frame(struct tl_buf *frame)
{
	if (frame->failed)
		die("out of memory");
	tl_be32_put(frame->data, (uint32_t)(frame->len - 4));
	size_t off = 0;
	while (off < frame->len) {
		ssize_t n = send(fd, frame->data + off, frame->len - off, MSG_NOSIGNAL);
		if (n <= 0)
			die("send failed");
		off += (size_t)n;
	}
}

static void recv_all(uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n <= 0)
			die("the broker closed the connection");
		p += n;
		len -= (size_t)n;
	}
}

/* Reads one response; the cursor is left at its body. */
static uint8_t *reply(int16_t key, int16_t version, struct tl_cursor *body)
{
	uint8_t size[4];
	recv_all(size, 4);
	uint32_t len = tl_be32_get(size);
	uint8_t *frame = malloc(len ? len : 1);
	if (!frame)
		die("out of memory");
	recv_all(frame, len);
	tl_cursor_init(body, frame, len);
	int32_t got;
	if (tl_response_header_decode(body, key, version, &got) != TL_OK)
		die("response header does not decode");
	return frame;
}

static struct tl_str str_or_null(const char *s)
{
	return strcmp(s, "<default>") == 0 ? (struct tl_str){NULL, -1} : tl_str_of(s);
}

static void print_str(struct tl_str s)
{
	if (s.len < 0)
		printf("<default>");
	else
		printf("%.*s", s.len, s.ptr);
}

static int do_alter(int16_t version, int argc, char **argv)
{
	bool validate = argc > 0 && strcmp(argv[0], "-n") == 0;
	if (validate) {
		argc--;
		argv++;
	}
	if (argc < 1)
		die("alter needs an entity");
	struct tl_alter_client_quotas_request_entity_data ents[4];
	int32_t ent_count = 0;
	char *spec = strdup(argv[0]);
	for (char *part = strtok(spec, ","); part && ent_count < 4; part = strtok(NULL, ",")) {
		char *eq = strchr(part, '=');
		if (!eq)
			die("entity part is not TYPE=NAME");
		*eq = '\0';
		tl_alter_client_quotas_request_entity_data_defaults(&ents[ent_count]);
		ents[ent_count].entity_type = tl_str_of(part);
		ents[ent_count].entity_name = str_or_null(eq + 1);
		ent_count++;
	}
	struct tl_alter_client_quotas_request_op_data ops[16];
	int32_t op_count = 0;
	for (int i = 1; i < argc && op_count < 16; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq)
			die("op is not key=value");
		*eq = '\0';
		tl_alter_client_quotas_request_op_data_defaults(&ops[op_count]);
		ops[op_count].key = tl_str_of(argv[i]);
		ops[op_count].remove = strcmp(eq + 1, "-") == 0;
		ops[op_count].value = ops[op_count].remove ? 0 : strtod(eq + 1, NULL);
		op_count++;
	}
	struct tl_alter_client_quotas_request_entry_data entry;
	tl_alter_client_quotas_request_entry_data_defaults(&entry);
	entry.entity = ents;
	entry.entity_count = ent_count;
	entry.ops = ops;
	entry.ops_count = op_count;
	struct tl_alter_client_quotas_request req;
	tl_alter_client_quotas_request_defaults(&req);
	req.entries = &entry;
	req.entries_count = 1;
	req.validate_only = validate;
	struct tl_buf frame;
	tl_buf_init(&frame);
	begin(&frame, TL_API_ALTER_CLIENT_QUOTAS, version, "quota_raw");
	tl_alter_client_quotas_request_encode(&frame, version, &req);
	send_frame(&frame);
	struct tl_cursor body;
	uint8_t *raw = reply(TL_API_ALTER_CLIENT_QUOTAS, version, &body);
	struct tl_arena arena;
	tl_arena_init(&arena, ARENA_BYTES);
	struct tl_alter_client_quotas_response resp;
	if (tl_alter_client_quotas_response_decode(&body, version, &arena, &resp) != TL_OK ||
	    resp.entries_count != 1)
		die("AlterClientQuotas response does not decode");
	if (resp.entries[0].error_code == 0) {
		printf("ok\n");
	} else {
		printf("error %d ", resp.entries[0].error_code);
		print_str(resp.entries[0].error_message);
		printf("\n");
	}
	free(raw);
	free(spec);
	tl_arena_deinit(&arena);
	tl_buf_deinit(&frame);
	return 0;
}

static int do_describe(int16_t version, int argc, char **argv)
{
	bool strict = argc > 0 && strcmp(argv[0], "-s") == 0;
	if (strict) {
		argc--;
		argv++;
	}
	struct tl_describe_client_quotas_request_component_data comps[4];
	int32_t count = 0;
	for (int i = 0; i < argc && count < 4; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq)
			die("filter is not TYPE=MATCH");
		*eq = '\0';
		struct tl_describe_client_quotas_request_component_data *c = &comps[count++];
		tl_describe_client_quotas_request_component_data_defaults(c);
		c->entity_type = tl_str_of(argv[i]);
		if (strcmp(eq + 1, "*") == 0) {
			c->match_type = 2;
			c->match = (struct tl_str){NULL, -1};
		} else if (strcmp(eq + 1, "<default>") == 0) {
			c->match_type = 1;
			c->match = (struct tl_str){NULL, -1};
		} else {
			c->match_type = 0;
			c->match = tl_str_of(eq + 1);
		}
	}
	struct tl_describe_client_quotas_request req;
	tl_describe_client_quotas_request_defaults(&req);
	req.components = comps;
	req.components_count = count;
	req.strict = strict;
	struct tl_buf frame;
	tl_buf_init(&frame);
	begin(&frame, TL_API_DESCRIBE_CLIENT_QUOTAS, version, "quota_raw");
	tl_describe_client_quotas_request_encode(&frame, version, &req);
	send_frame(&frame);
	struct tl_cursor body;
	uint8_t *raw = reply(TL_API_DESCRIBE_CLIENT_QUOTAS, version, &body);
	struct tl_arena arena;
	tl_arena_init(&arena, ARENA_BYTES);
	struct tl_describe_client_quotas_response resp;
	if (tl_describe_client_quotas_response_decode(&body, version, &arena, &resp) != TL_OK)
		die("DescribeClientQuotas response does not decode");
	if (resp.error_code != 0) {
		printf("error %d ", resp.error_code);
		print_str(resp.error_message);
		printf("\n");
	}
	for (int32_t i = 0; i < resp.entries_count; i++) {
		const struct tl_describe_client_quotas_response_entry_data *e = &resp.entries[i];
		for (int32_t j = 0; j < e->entity_count; j++) {
			printf("%.*s=", e->entity[j].entity_type.len, e->entity[j].entity_type.ptr);
			print_str(e->entity[j].entity_name);
			printf(" ");
		}
		for (int32_t j = 0; j < e->values_count; j++)
			printf("%.*s=%.17g%s", e->values[j].key.len, e->values[j].key.ptr,
			       e->values[j].value, j + 1 < e->values_count ? " " : "");
		printf("\n");
	}
	free(raw);
	tl_arena_deinit(&arena);
	tl_buf_deinit(&frame);
	return 0;
}

/* One Produce v5 of @bytes of value to TOPIC-0; returns throttle_time_ms and the
 * response delay. */
static int32_t produce_old(const char *client_id, const char *topic, int64_t *delay_ms)
{
	static uint8_t value[100000];
	memset(value, 'o', sizeof(value));
	struct tl_buf batch;
	tl_buf_init(&batch);
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, TL_COMPRESSION_NONE);
	struct tl_bytes v = {.ptr = value, .len = (int32_t)sizeof(value)};
	if (tl_records_builder_append(&builder, tl_wall_ms(), (struct tl_bytes){NULL, -1}, v, NULL,
				      0) != TL_OK ||
	    tl_records_builder_finish(&builder, NULL, &batch) != TL_OK)
		die("cannot build a batch");
	tl_records_builder_deinit(&builder);
	struct tl_produce_request_partition_produce_data pd;
	tl_produce_request_partition_produce_data_defaults(&pd);
	pd.index = 0;
	pd.records.ptr = batch.data;
	pd.records.len = (int32_t)batch.len;
	struct tl_produce_request_topic_produce_data td;
	tl_produce_request_topic_produce_data_defaults(&td);
	td.name = tl_str_of(topic);
	td.partition_data = &pd;
	td.partition_data_count = 1;
	struct tl_produce_request req;
	tl_produce_request_defaults(&req);
	req.acks = 1;
	req.timeout_ms = 10000;
	req.topic_data = &td;
	req.topic_data_count = 1;
	struct tl_buf frame;
	tl_buf_init(&frame);
	begin(&frame, TL_API_PRODUCE, 5, client_id);
	tl_produce_request_encode(&frame, 5, &req);
	int64_t start = tl_mono_ms();
	send_frame(&frame);
	struct tl_cursor body;
	uint8_t *raw = reply(TL_API_PRODUCE, 5, &body);
	*delay_ms = tl_mono_ms() - start;
	struct tl_arena arena;
	tl_arena_init(&arena, ARENA_BYTES);
	struct tl_produce_response resp;
	if (tl_produce_response_decode(&body, 5, &arena, &resp) != TL_OK)
		die("Produce response does not decode");
	int32_t throttle = resp.throttle_time_ms;
	free(raw);
	tl_arena_deinit(&arena);
	tl_buf_deinit(&frame);
	tl_buf_deinit(&batch);
	return throttle;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: quota_raw BROKER VERSION alter|describe|produce-old ...\n");
		return 2;
	}
	connect_to(argv[1]);
	int16_t version = (int16_t)atoi(argv[2]);
	if (strcmp(argv[3], "alter") == 0)
		return do_alter(version, argc - 4, argv + 4);
	if (strcmp(argv[3], "describe") == 0)
		return do_describe(version, argc - 4, argv + 4);
	if (strcmp(argv[3], "produce-old") == 0 && argc >= 6) {
		int64_t delay;
		int32_t throttle = produce_old(argv[4], argv[5], &delay);
		printf("throttle_ms=%d delay_ms=%" PRId64 "\n", throttle, delay);
		return 0;
	}
	fprintf(stderr, "quota_raw: unknown command %s\n", argv[3]);
	return 2;
}
