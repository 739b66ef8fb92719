/* fuzz_client.c - libFuzzer target for libtally's consumer (consumer/, client/): what a
 * broker answers, byte for byte. A broker is a peer libtally does not control; a bad or
 * hostile answer must come back as an error, never as a crash, an assertion, a read
 * out of bounds or a leak in the service that links libtally.
 * Input: byte 0 picks the consumer's mode (bit 0 subscribe to "t" in group "g", else
 * assign t[0] and t[1]; bit 1 check.crcs=false, so mutated records get past the CRC;
 * bit 2 read_uncommitted; bit 3 an async commit every few polls; bit 4 a rebalance
 * callback that commits; bit 5 start at the committed offsets, else the beginning),
 * then answers: [api key][length: 2 bytes, big endian][response body]. Each request
 * the consumer sends is answered with the next body the input has for its API key
 * (the last one again once they ran out; none if it has none), framed by the harness
 * (size, correlation id, and the tag byte of a flexible response header).
 * The harness is the consumer's only peer: getaddrinfo() is replaced, so every broker
 * address (bootstrap, Metadata's nodes, the coordinator) resolves to its listener on
 * 127.0.0.1 and nothing leaves the machine. Single-threaded and in lock step: the
 * harness answers what arrived, then the consumer polls with timeout 0, 150 times;
 * then the consumer is destroyed (the harness serving from a thread meanwhile: destroy
 * waits for LeaveGroup's answer). Records handed out are read whole (ASan checks
 * their bounds).
 * FUZZ_CLIENT_VERBOSE=1 says what each input did (records, errors, position).
 * With FUZZ_CLIENT_SEEDS=DIR set, the target writes valid sessions (the generated
 * codec's encoders) into DIR and exits: tests/fuzz/run.sh seeds it that way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/records.h"
#include "tally/consumer.h"
#include "tests/fuzz/fake_peer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TURNS 150

/* ---- the consumer ---- */

static void on_rebalance(struct tl_consumer *consumer, int event,
			 const struct tl_consumer_partition *parts, int32_t count, void *opaque)
{
	(void)parts;
	(void)count;
	(void)opaque;
	if (event == TL_CONSUMER_REVOKED)
		(void)tl_consumer_commit_async(consumer);
}

static void conf_set(struct tl_consumer_conf *conf, const char *key, const char *value)
{
	char err[256];
	if (tl_consumer_conf_set(conf, key, value, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "fuzz_client: %s=%s: %s\n", key, value, err);
		abort();
	}
}

static struct tl_consumer *consumer_make(uint8_t mode)
{
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	if (!conf)
		fuzz_fail("tl_consumer_conf_create");
	char bootstrap[32];
	snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%u", listen_port);
	conf_set(conf, "bootstrap.servers", bootstrap);
	conf_set(conf, "client.id", "fuzz");
	conf_set(conf, "group.id", "g");
	conf_set(conf, "enable.auto.commit", "false"); /* destroy would wait for it */
	conf_set(conf, "retry.backoff.ms", "0");
	conf_set(conf, "reconnect.backoff.ms", "0");
	conf_set(conf, "fetch.max.wait.ms", "0");
	conf_set(conf, "auto.offset.reset", "earliest");
	if (mode & 2)
		conf_set(conf, "check.crcs", "false");
	if (mode & 4)
		conf_set(conf, "isolation.level", "read_uncommitted");
	if (mode & 16)
		tl_consumer_conf_set_rebalance_cb(conf, on_rebalance, NULL);
	struct tl_consumer *consumer = NULL;
	char err[256];
	if (tl_consumer_create(conf, &consumer, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "fuzz_client: tl_consumer_create: %s\n", err);
		abort();
	}
	tl_consumer_conf_destroy(conf);
	return consumer;
}

static volatile uint8_t record_sink;

static void record_touch(const struct tl_consumer_record *r)
{
	uint8_t x = 0;
	for (int32_t i = 0; r->key && i < r->key_len; i++)
		x ^= ((const uint8_t *)r->key)[i];
	for (int32_t i = 0; r->value && i < r->value_len; i++)
		x ^= ((const uint8_t *)r->value)[i];
	for (int32_t h = 0; h < r->header_count; h++) {
		for (int32_t i = 0; i < r->headers[h].key_len; i++)
			x ^= (uint8_t)r->headers[h].key[i];
		for (int32_t i = 0; r->headers[h].value && i < r->headers[h].value_len; i++)
			x ^= ((const uint8_t *)r->headers[h].value)[i];
	}
	x ^= (uint8_t)strlen(r->topic);
	record_sink = x;
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
	struct tl_consumer *consumer = consumer_make(mode);
	if (mode & 1) {
		const char *topics[] = {"t"};
		(void)tl_consumer_subscribe(consumer, topics, 1);
	} else {
		int64_t start =
			mode & 32 ? TL_CONSUMER_OFFSET_COMMITTED : TL_CONSUMER_OFFSET_BEGINNING;
		struct tl_consumer_partition parts[2] = {{"t", 0, start, 0}, {"t", 1, start, 0}};
		(void)tl_consumer_assign(consumer, parts, 2);
	}
	int records = 0, errors = 0;
	for (int turn = 0; turn < TURNS; turn++) {
		serve(a, false);
		const struct tl_consumer_record *r;
		tl_err err = tl_consumer_poll(consumer, 0, &r);
		if (err == TL_OK) {
			record_touch(r);
			records++;
		} else if (err != TL_ERR_TIMED_OUT) {
			errors++;
			if (verbose)
				fprintf(stderr, "fuzz_client: poll: %s\n",
					tl_consumer_last_error(consumer));
			if (tl_err_is_fatal(err))
				break;
		}
		if ((mode & 8) && turn % 16 == 15)
			(void)tl_consumer_commit_async(consumer);
		if (turn % 32 == 31) {
			struct tl_consumer_partition out[8];
			(void)tl_consumer_assignment(consumer, out, 8);
			(void)tl_consumer_position(consumer, "t", 0);
		}
	}
	if (verbose)
		fprintf(stderr, "fuzz_client: mode %#x: %d records, %d errors, position %lld\n",
			mode, records, errors, (long long)tl_consumer_position(consumer, "t", 0));
	/* Destroy waits for LeaveGroup's answer (up to 2 s): the harness serves meanwhile,
	 * from a thread of its own (the only one touching its state until joined). */
	peer_serve_start(a);
	tl_consumer_destroy(consumer);
	peer_serve_stop();
	peer_reset();
	free(a);
	return 0;
}

/* ---- seeds: valid sessions ---- */

/* Records 0-4 of t[0] and t[1] (one batch each, @compression), and an aborted
 * transaction's marker. */
static void seed_fetch(struct tl_buf *seed, enum tl_compression compression, int32_t epoch)
{
	struct tl_buf records;
	tl_buf_init(&records);
	struct tl_records_builder builder;
	tl_records_builder_init(&builder, compression);
	for (int i = 0; i < 5; i++) {
		char key[8], value[16];
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(value, sizeof(value), "value-%d", i);
		struct tl_record_header h = {tl_str_of("h"), {(const uint8_t *)"x", 1}};
		struct tl_bytes k = {(const uint8_t *)key, (int32_t)strlen(key)};
		struct tl_bytes v = {(const uint8_t *)value, (int32_t)strlen(value)};
		(void)tl_records_builder_append(&builder, 1000 + i, k, v, &h, 1);
	}
	tl_records_builder_set_producer(&builder, 7, 0, 0, true);
	(void)tl_records_builder_finish(&builder, NULL, &records);
	tl_batch_assign(records.data, 0, epoch);
	tl_records_builder_deinit(&builder);
	size_t at = records.len;
	(void)tl_records_control_marker_build(&records, false, 7, 0, 0, 1);
	tl_batch_assign(records.data + at, 5, epoch);
	struct tl_fetch_response_aborted_transaction aborted = {7, 0};
	struct tl_fetch_response_partition_data parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_fetch_response_partition_data_defaults(&parts[p]);
		parts[p].partition_index = p;
		parts[p].high_watermark = 6;
		parts[p].last_stable_offset = 6;
		parts[p].log_start_offset = 0;
		parts[p].aborted_transactions_count = p;
		parts[p].aborted_transactions = &aborted;
		parts[p].records.ptr = records.data;
		parts[p].records.len = (int32_t)records.len;
	}
	struct tl_fetch_response_fetchable_topic_response topic;
	tl_fetch_response_fetchable_topic_response_defaults(&topic);
	topic.topic = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_fetch_response resp;
	tl_fetch_response_defaults(&resp);
	resp.responses_count = 1;
	resp.responses = &topic;
	SEED_ENCODE(seed, 1, fetch, 11, &resp);
	tl_buf_deinit(&records);
}

static void seed_epoch_end(struct tl_buf *seed, int64_t end_offset)
{
	struct tl_offset_for_leader_epoch_response_epoch_end_offset parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_offset_for_leader_epoch_response_epoch_end_offset_defaults(&parts[p]);
		parts[p].partition = p;
		parts[p].leader_epoch = 1;
		parts[p].end_offset = end_offset;
	}
	struct tl_offset_for_leader_epoch_response_offset_for_leader_topic_result topic;
	tl_offset_for_leader_epoch_response_offset_for_leader_topic_result_defaults(&topic);
	topic.topic = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_offset_for_leader_epoch_response resp;
	tl_offset_for_leader_epoch_response_defaults(&resp);
	resp.topics_count = 1;
	resp.topics = &topic;
	SEED_ENCODE(seed, 23, offset_for_leader_epoch, 4, &resp);
}

static void seed_coordinator(struct tl_buf *seed)
{
	seed_find_coordinator(seed);
	seed_offset_fetch(seed);
	struct tl_offset_commit_response_offset_commit_response_partition cparts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_offset_commit_response_offset_commit_response_partition_defaults(&cparts[p]);
		cparts[p].partition_index = p;
	}
	struct tl_offset_commit_response_offset_commit_response_topic ctopic;
	tl_offset_commit_response_offset_commit_response_topic_defaults(&ctopic);
	ctopic.name = tl_str_of("t");
	ctopic.partitions_count = 2;
	ctopic.partitions = cparts;
	struct tl_offset_commit_response oc;
	tl_offset_commit_response_defaults(&oc);
	oc.topics_count = 1;
	oc.topics = &ctopic;
	SEED_ENCODE(seed, 8, offset_commit, 7, &oc);
}

/* JoinGroup (this member leads, alone), SyncGroup (t[0] and t[1]), Heartbeat. */
static void seed_group(struct tl_buf *seed)
{
	struct tl_buf meta;
	tl_buf_init(&meta); /* ConsumerProtocolSubscription v0: topics ["t"], no user data */
	tl_buf_i16(&meta, 0);
	tl_buf_i32(&meta, 1);
	tl_buf_string(&meta, tl_str_of("t"), false);
	tl_buf_i32(&meta, -1);
	struct tl_join_group_response_join_group_response_member member;
	tl_join_group_response_join_group_response_member_defaults(&member);
	member.member_id = tl_str_of("fuzz-1");
	member.metadata.ptr = meta.data;
	member.metadata.len = (int32_t)meta.len;
	struct tl_join_group_response join;
	tl_join_group_response_defaults(&join);
	join.generation_id = 1;
	join.protocol_name = tl_str_of("range");
	join.leader = tl_str_of("fuzz-1");
	join.member_id = tl_str_of("fuzz-1");
	join.members_count = 1;
	join.members = &member;
	SEED_ENCODE(seed, 11, join_group, 5, &join);

	struct tl_buf assignment;
	seed_assignment(&assignment);
	struct tl_sync_group_response sync;
	tl_sync_group_response_defaults(&sync);
	sync.assignment.ptr = assignment.data;
	sync.assignment.len = (int32_t)assignment.len;
	SEED_ENCODE(seed, 14, sync_group, 3, &sync);

	struct tl_heartbeat_response hb;
	tl_heartbeat_response_defaults(&hb);
	SEED_ENCODE(seed, 12, heartbeat, 3, &hb);
	tl_buf_deinit(&meta);
	tl_buf_deinit(&assignment);
}

static void seeds_write(const char *dir)
{
	static const struct {
		const char *name;
		uint8_t mode;
		enum tl_compression compression;
		int64_t epoch_end; /* < 0: no leader change (the epoch ends past the records) */
	} seeds[] = {
		{"assign-plain", 0, TL_COMPRESSION_NONE, -1},
		{"assign-zstd-nocrc", 2, TL_COMPRESSION_ZSTD, -1},
		{"assign-gzip-uncommitted", 2 | 4, TL_COMPRESSION_GZIP, -1},
		{"assign-lz4", 2, TL_COMPRESSION_LZ4, -1},
		{"assign-snappy", 2, TL_COMPRESSION_SNAPPY, -1},
		{"assign-committed-truncated", 2 | 8 | 32, TL_COMPRESSION_NONE, 2},
		{"subscribe", 1 | 2 | 8 | 16, TL_COMPRESSION_NONE, -1},
		{"subscribe-truncated", 1 | 2 | 16 | 32, TL_COMPRESSION_ZSTD, 1},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct tl_buf seed;
		tl_buf_init(&seed);
		tl_buf_i8(&seed, (int8_t)seeds[i].mode);
		for (int c = 0; c < 3; c++) /* bootstrap, node 0, coordinator */
			seed_api_versions(&seed);
		seed_metadata(&seed, 0);
		seed_list_offsets(&seed);
		seed_coordinator(&seed);
		if (seeds[i].mode & 1)
			seed_group(&seed);
		seed_fetch(&seed, seeds[i].compression, 0);
		if (seeds[i].epoch_end >= 0) {
			seed_metadata(&seed, 1); /* a new leader epoch: validate */
			seed_epoch_end(&seed, seeds[i].epoch_end);
			seed_fetch(&seed, seeds[i].compression, 1);
		} else {
			seed_epoch_end(&seed, 100); /* a committed offset's epoch holds */
		}
		seed_write(dir, seeds[i].name, &seed);
		tl_buf_deinit(&seed);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	peer_init("FUZZ_CLIENT_VERBOSE", "FUZZ_CLIENT_SEEDS", seeds_write);
	return 0;
}
