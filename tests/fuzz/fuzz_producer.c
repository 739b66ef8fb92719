/* fuzz_producer.c - libFuzzer target for libtally's producer (producer/, client/): what a
 * broker answers to Metadata, InitProducerId and Produce, byte for byte, must come back
 * as a delivery error, never as a crash, an assertion, a read out of bounds or a leak.
 * Input: byte 0 picks the producer (bit 0 acks=1, without idempotence, else all; bit 1
 * no idempotence; bit 2 zstd; bit 3 records to partition 0 and 1, else the
 * partitioner's choice; bit 4 a second round of sends after the first flush), then
 * answers as tests/fuzz/fake_peer.h reads them. The producer does its I/O on a thread
 * of its own, so the peer serves from a thread for the whole input: unlike fuzz_client
 * the order of events can vary between runs of one input. Retries, delivery and
 * blocking are bounded by 30 ms settings; each delivery report is checked (an ok one
 * names a partition records went to) and the producer destroyed.
 * FUZZ_PRODUCER_VERBOSE=1 says what each input did. With FUZZ_PRODUCER_SEEDS=DIR set,
 * the target writes valid answers (the generated codec's encoders) into DIR and
 * exits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/producer.h"
#include "tests/fuzz/fake_peer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RECORDS 4

static int delivered_ok, delivered_failed;
static int32_t partition_max; /* the highest partition records went to, if chosen */

static void on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	(void)opaque;
	if (d->err == TL_OK) {
		if (d->partition < 0 || d->partition > partition_max || strcmp(d->topic, "t") != 0)
			fuzz_fail("a delivery report names a partition never sent to");
		delivered_ok++;
	} else {
		if (d->detail)
			(void)strlen(d->detail);
		delivered_failed++;
	}
}

static struct tl_producer *producer_make(uint8_t mode)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	if (!conf)
		fuzz_fail("tl_producer_conf_create");
	char bootstrap[32], err[256];
	snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%u", listen_port);
	const char *kv[][2] = {
		{"bootstrap.servers", bootstrap},
		{"client.id", "fuzz"},
		{"acks", mode & 1 ? "1" : "all"},
		{"enable.idempotence", mode & 3 ? "false" : "true"}, /* it needs acks=all */
		{"compression.type", mode & 4 ? "zstd" : "none"},
		{"linger.ms", "0"},
		{"max.block.ms", "30"},
		{"delivery.timeout.ms", "30"},
		{"request.timeout.ms", "30"},
		{"retry.backoff.ms", "0"},
		{"retry.backoff.max.ms", "0"},
		{"reconnect.backoff.ms", "0"},
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (tl_producer_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)) != TL_OK) {
			fprintf(stderr, "fuzz_producer: %s: %s\n", kv[i][0], err);
			abort();
		}
	tl_producer_conf_set_delivery_cb(conf, on_delivery, NULL);
	struct tl_producer *producer = NULL;
	if (tl_producer_create(conf, &producer, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "fuzz_producer: tl_producer_create: %s\n", err);
		abort();
	}
	tl_producer_conf_destroy(conf);
	return producer;
}

static void sends(struct tl_producer *producer, uint8_t mode)
{
	for (int i = 0; i < RECORDS; i++) {
		char value[16];
		snprintf(value, sizeof(value), "v%d", i);
		struct tl_producer_header h = {"h", "x", 1};
		struct tl_producer_record r = {
			.topic = "t",
			.partition = mode & 8 ? i % 2 : TL_PRODUCER_PARTITION_ANY,
			.key = "k",
			.key_len = 1,
			.value = value,
			.value_len = (int32_t)strlen(value),
			.headers = &h,
			.header_count = 1,
		};
		if (tl_producer_send(producer, &r) != TL_OK)
			break; /* metadata never came (max.block.ms): no use trying the others */
	}
	(void)tl_producer_flush(producer, 30);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	struct answers *a = malloc(sizeof(*a));
	if (!a)
		fuzz_fail("malloc");
	answers_parse(a, data + 1, size - 1);
	peer_serve_start(a);
	delivered_ok = delivered_failed = 0;
	/* The partitioner spreads over as many partitions as Metadata says. */
	partition_max = mode & 8 ? 1 : INT32_MAX;
	struct tl_producer *producer = producer_make(mode);
	sends(producer, mode);
	if (mode & 16)
		sends(producer, mode);
	tl_producer_destroy(producer);
	peer_serve_stop();
	if (verbose)
		fprintf(stderr, "fuzz_producer: mode %#x: %d delivered, %d failed\n", mode,
			delivered_ok, delivered_failed);
	peer_reset();
	free(a);
	return 0;
}

/* ---- seeds: valid answers ---- */

static void seed_init_producer_id(struct tl_buf *seed)
{
	struct tl_init_producer_id_response resp;
	tl_init_producer_id_response_defaults(&resp);
	resp.producer_id = 42;
	resp.producer_epoch = 0;
	SEED_ENCODE(seed, 22, init_producer_id, 1, &resp);
}

/* Produce: both partitions stored at @base (error @code where not 0). */
static void seed_produce(struct tl_buf *seed, int64_t base, int16_t code)
{
	struct tl_produce_response_partition_produce_response parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_produce_response_partition_produce_response_defaults(&parts[p]);
		parts[p].index = p;
		parts[p].error_code = code;
		parts[p].base_offset = code == 0 ? base : -1;
		parts[p].log_append_time_ms = -1;
	}
	struct tl_produce_response_topic_produce_response topic;
	tl_produce_response_topic_produce_response_defaults(&topic);
	topic.name = tl_str_of("t");
	topic.partition_responses_count = 2;
	topic.partition_responses = parts;
	struct tl_produce_response resp;
	tl_produce_response_defaults(&resp);
	resp.responses_count = 1;
	resp.responses = &topic;
	SEED_ENCODE(seed, 0, produce, 8, &resp);
}

static void seeds_write(const char *dir)
{
	static const struct {
		const char *name;
		uint8_t mode;
		int16_t first_code; /* the first Produce answer's error, then ok */
	} seeds[] = {
		{"idempotent", 0, 0},
		{"idempotent-retry", 8, 6},           /* NOT_LEADER_OR_FOLLOWER, then stored */
		{"idempotent-duplicate", 8 | 16, 46}, /* DUPLICATE_SEQUENCE_NUMBER */
		{"acks1-zstd", 1 | 2 | 4 | 8, 0},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct tl_buf seed;
		tl_buf_init(&seed);
		tl_buf_i8(&seed, (int8_t)seeds[i].mode);
		seed_api_versions(&seed);
		seed_metadata(&seed, 0);
		seed_init_producer_id(&seed);
		if (seeds[i].first_code != 0)
			seed_produce(&seed, 0, seeds[i].first_code);
		seed_produce(&seed, 0, 0);
		seed_produce(&seed, 4, 0);
		seed_write(dir, seeds[i].name, &seed);
		tl_buf_deinit(&seed);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	peer_init("FUZZ_PRODUCER_VERBOSE", "FUZZ_PRODUCER_SEEDS", seeds_write);
	return 0;
}
