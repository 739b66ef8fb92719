/* fuzz_admin.c - libFuzzer target for libtally's admin client (admin/, client/), the
 * code behind `tally` and tl_admin_*: what a broker answers, byte for byte, must come
 * back as an error, never as a crash, an assertion, a read out of bounds or a leak.
 * Input: byte 0 modulo 8 picks the calls (0 list and describe topics, 1 log dirs, 2
 * client quotas and SCRAM users, 3 ACLs, 4 ListOffsets, 5 the cluster, 6 groups: list,
 * describe, committed offsets, 7 transactions: list, describe, producers; one group
 * per input, as a call without an answer costs its whole timeout), then
 * answers as tests/fuzz/fake_peer.h reads them. The admin calls block, so the harness
 * serves from a thread for the whole input; a request the input has no answer for
 * closes its connection (the call fails instead of waiting out its 20 ms).
 * Every string and array of a result is read whole (ASan checks the bounds), and each
 * result is destroyed.
 * FUZZ_ADMIN_VERBOSE=1 says what each call returned. With FUZZ_ADMIN_SEEDS=DIR set,
 * the target writes valid answers (the generated codec's encoders) into DIR and exits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/admin.h"
#include "tests/fuzz/fake_peer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CALL_MS 20

static volatile size_t sink;

static void touch(const char *s)
{
	if (s)
		sink += strlen(s);
}

static void touch_ints(const int32_t *v, int32_t count)
{
	for (int32_t i = 0; i < count; i++)
		sink += (size_t)v[i];
}

static void said(const char *call, tl_err err, struct tl_admin *admin)
{
	if (verbose)
		fprintf(stderr, "fuzz_admin: %s: %s%s%s\n", call, tl_err_name(err),
			err == TL_OK ? "" : ": ", err == TL_OK ? "" : tl_admin_last_error(admin));
}

static void topics_touch(const struct tl_admin_topics *topics)
{
	for (int32_t t = 0; t < topics->count; t++) {
		const struct tl_admin_topic_info *ti = &topics->topics[t];
		touch(ti->name);
		for (int32_t p = 0; p < ti->partition_count; p++) {
			touch_ints(ti->partitions[p].replicas, ti->partitions[p].replica_count);
			touch_ints(ti->partitions[p].isr, ti->partitions[p].isr_count);
		}
	}
}

static void calls_topics(struct tl_admin *admin)
{
	struct tl_admin_topics *topics = NULL;
	tl_err err = tl_admin_list_topics(admin, &topics, CALL_MS);
	said("list_topics", err, admin);
	if (err == TL_OK) {
		topics_touch(topics);
		tl_admin_topics_destroy(topics);
	}
	const char *names[] = {"t", "missing"};
	err = tl_admin_describe_topics(admin, names, 2, &topics, CALL_MS);
	said("describe_topics", err, admin);
	if (err == TL_OK) {
		topics_touch(topics);
		tl_admin_topics_destroy(topics);
	}
}

static void calls_log_dirs(struct tl_admin *admin)
{
	struct tl_admin_cluster *cluster = NULL; /* as tally cluster log-dirs: the nodes first */
	if (tl_admin_describe_cluster(admin, &cluster, CALL_MS) == TL_OK)
		tl_admin_cluster_destroy(cluster);
	struct tl_admin_log_dirs *dirs = NULL;
	tl_err err = tl_admin_describe_log_dirs(admin, 0, &dirs, CALL_MS);
	said("describe_log_dirs", err, admin);
	if (err != TL_OK)
		return;
	for (int32_t i = 0; i < dirs->count; i++) {
		touch(dirs->entries[i].dir);
		touch(dirs->entries[i].topic);
	}
	tl_admin_log_dirs_destroy(dirs);
}

static void calls_quotas_users(struct tl_admin *admin)
{
	struct tl_admin_quotas *quotas = NULL;
	tl_err err = tl_admin_describe_client_quotas(admin, &quotas, CALL_MS);
	said("describe_client_quotas", err, admin);
	if (err == TL_OK) {
		for (int32_t i = 0; i < quotas->count; i++) {
			touch(quotas->entries[i].entity.user);
			touch(quotas->entries[i].entity.client_id);
			for (int32_t v = 0; v < quotas->entries[i].value_count; v++)
				touch(quotas->entries[i].values[v].key);
		}
		tl_admin_quotas_destroy(quotas);
	}
	struct tl_admin_scram_users *users = NULL;
	err = tl_admin_describe_scram_credentials(admin, &users, CALL_MS);
	said("describe_scram_credentials", err, admin);
	if (err == TL_OK) {
		for (int32_t i = 0; i < users->count; i++) {
			touch(users->users[i].name);
			for (int32_t c = 0; c < users->users[i].credential_count; c++)
				sink += (size_t)users->users[i].credentials[c].iterations;
		}
		tl_admin_scram_users_destroy(users);
	}
}

static void calls_acls(struct tl_admin *admin)
{
	struct tl_admin_acl filter = {
		TL_ADMIN_ACL_ANY, NULL, TL_ADMIN_ACL_PATTERN_ANY, NULL, NULL, TL_ADMIN_ACL_ANY,
		TL_ADMIN_ACL_ANY};
	struct tl_admin_acls *acls = NULL;
	tl_err err = tl_admin_describe_acls(admin, &filter, &acls, CALL_MS);
	said("describe_acls", err, admin);
	if (err != TL_OK)
		return;
	for (int32_t i = 0; i < acls->count; i++) {
		touch(acls->acls[i].resource_name);
		touch(acls->acls[i].principal);
		touch(acls->acls[i].host);
	}
	tl_admin_acls_destroy(acls);
}

static void calls_offsets(struct tl_admin *admin)
{
	struct tl_admin_offset_query queries[3] = {
		{"t", 0, TL_ADMIN_OFFSET_EARLIEST, TL_OK, 0, 0},
		{"t", 1, TL_ADMIN_OFFSET_LATEST, TL_OK, 0, 0},
		{"t", 0, 1000, TL_OK, 0, 0},
	};
	tl_err err = tl_admin_list_offsets(admin, queries, 3, 0, CALL_MS);
	said("list_offsets", err, admin);
}

static void calls_cluster(struct tl_admin *admin)
{
	struct tl_admin_cluster *cluster = NULL;
	tl_err err = tl_admin_describe_cluster(admin, &cluster, CALL_MS);
	said("describe_cluster", err, admin);
	if (err != TL_OK)
		return;
	touch(cluster->cluster_id);
	for (int32_t i = 0; i < cluster->broker_count; i++) {
		touch(cluster->brokers[i].host);
		touch(cluster->brokers[i].rack);
	}
	tl_admin_cluster_destroy(cluster);
}

static void calls_groups(struct tl_admin *admin)
{
	struct tl_admin_groups *groups = NULL;
	tl_err err = tl_admin_list_groups(admin, &groups, CALL_MS);
	said("list_groups", err, admin);
	if (err == TL_OK) {
		for (int32_t i = 0; i < groups->count; i++) {
			touch(groups->groups[i].group_id);
			touch(groups->groups[i].protocol_type);
			touch(groups->groups[i].state);
		}
		tl_admin_groups_destroy(groups);
	}
	struct tl_admin_group_description *group = NULL;
	err = tl_admin_describe_group(admin, "g", &group, CALL_MS);
	said("describe_group", err, admin);
	if (err == TL_OK) {
		touch(group->group_id);
		touch(group->state);
		touch(group->protocol_type);
		touch(group->protocol);
		for (int32_t m = 0; m < group->member_count; m++) {
			const struct tl_admin_group_member *member = &group->members[m];
			touch(member->member_id);
			touch(member->group_instance_id);
			touch(member->client_id);
			touch(member->client_host);
			for (int32_t a = 0; a < member->assignment_count; a++)
				touch(member->assignment[a].topic);
		}
		tl_admin_group_description_destroy(group);
	}
	struct tl_admin_group_offsets *offsets = NULL;
	err = tl_admin_list_group_offsets(admin, "g", &offsets, CALL_MS);
	said("list_group_offsets", err, admin);
	if (err == TL_OK) {
		for (int32_t i = 0; i < offsets->count; i++) {
			touch(offsets->offsets[i].topic);
			touch(offsets->offsets[i].metadata);
		}
		tl_admin_group_offsets_destroy(offsets);
	}
}

static void calls_txns(struct tl_admin *admin)
{
	struct tl_admin_txns *txns = NULL;
	tl_err err = tl_admin_list_transactions(admin, &txns, CALL_MS);
	said("list_transactions", err, admin);
	if (err == TL_OK) {
		for (int32_t i = 0; i < txns->count; i++) {
			touch(txns->txns[i].transactional_id);
			touch(txns->txns[i].state);
		}
		tl_admin_txns_destroy(txns);
	}
	struct tl_admin_txn_description *txn = NULL;
	err = tl_admin_describe_transaction(admin, "x", &txn, CALL_MS);
	said("describe_transaction", err, admin);
	if (err == TL_OK) {
		touch(txn->transactional_id);
		touch(txn->state);
		for (int32_t i = 0; i < txn->partition_count; i++)
			touch(txn->partitions[i].topic);
		tl_admin_txn_description_destroy(txn);
	}
	struct tl_admin_topic_partition parts[2] = {{"t", 0}, {"t", 1}};
	struct tl_admin_producers *producers = NULL;
	err = tl_admin_describe_producers(admin, parts, 2, &producers, CALL_MS);
	said("describe_producers", err, admin);
	if (err == TL_OK) {
		for (int32_t i = 0; i < producers->count; i++) {
			touch(producers->partitions[i].topic);
			for (int32_t p = 0; p < producers->partitions[i].count; p++)
				sink += (size_t)producers->partitions[i].producers[p].last_sequence;
		}
		tl_admin_producers_destroy(producers);
	}
}

static struct tl_admin *admin_make(void)
{
	struct tl_admin_conf *conf = tl_admin_conf_create();
	if (!conf)
		fuzz_fail("tl_admin_conf_create");
	char bootstrap[32], err[256];
	snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%u", listen_port);
	if (tl_admin_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) != TL_OK ||
	    tl_admin_conf_set(conf, "reconnect.backoff.ms", "0", err, sizeof(err)) != TL_OK ||
	    tl_admin_conf_set(conf, "request.timeout.ms", "20", err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "fuzz_admin: conf: %s\n", err);
		abort();
	}
	struct tl_admin *admin = NULL;
	if (tl_admin_create(conf, &admin, err, sizeof(err)) != TL_OK) {
		fprintf(stderr, "fuzz_admin: tl_admin_create: %s\n", err);
		abort();
	}
	tl_admin_conf_destroy(conf);
	return admin;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t calls = data[0];
	struct answers *a = malloc(sizeof(*a));
	if (!a)
		fuzz_fail("malloc");
	answers_parse(a, data + 1, size - 1);
	peer_serve_start(a);
	struct tl_admin *admin = admin_make();
	static void (*const groups[])(struct tl_admin *) = {
		calls_topics,  calls_log_dirs, calls_quotas_users, calls_acls,
		calls_offsets, calls_cluster,  calls_groups,       calls_txns,
	};
	groups[calls % 8](admin);
	tl_admin_destroy(admin);
	peer_serve_stop();
	peer_reset();
	free(a);
	return 0;
}

/* ---- seeds: valid answers ---- */

static void seed_log_dirs(struct tl_buf *seed)
{
	struct tl_describe_log_dirs_response_describe_log_dirs_partition parts[2];
	for (int32_t p = 0; p < 2; p++) {
		tl_describe_log_dirs_response_describe_log_dirs_partition_defaults(&parts[p]);
		parts[p].partition_index = p;
		parts[p].partition_size = 1000 * p;
	}
	struct tl_describe_log_dirs_response_describe_log_dirs_topic topic;
	tl_describe_log_dirs_response_describe_log_dirs_topic_defaults(&topic);
	topic.name = tl_str_of("t");
	topic.partitions_count = 2;
	topic.partitions = parts;
	struct tl_describe_log_dirs_response_describe_log_dirs_result dir;
	tl_describe_log_dirs_response_describe_log_dirs_result_defaults(&dir);
	dir.log_dir = tl_str_of("/var/lib/tally");
	dir.topics_count = 1;
	dir.topics = &topic;
	struct tl_describe_log_dirs_response resp;
	tl_describe_log_dirs_response_defaults(&resp);
	resp.results_count = 1;
	resp.results = &dir;
	SEED_ENCODE(seed, 35, describe_log_dirs, 1, &resp);
}

static void seed_groups(struct tl_buf *seed)
{
	struct tl_list_groups_response_listed_group listed;
	tl_list_groups_response_listed_group_defaults(&listed);
	listed.group_id = tl_str_of("g");
	listed.protocol_type = tl_str_of("consumer");
	struct tl_list_groups_response lg;
	tl_list_groups_response_defaults(&lg);
	lg.groups_count = 1;
	lg.groups = &listed;
	SEED_ENCODE(seed, 16, list_groups, 2, &lg);

	seed_find_coordinator(seed);

	struct tl_buf assignment;
	seed_assignment(&assignment);
	struct tl_describe_groups_response_described_group_member member;
	tl_describe_groups_response_described_group_member_defaults(&member);
	member.member_id = tl_str_of("m-1");
	member.client_id = tl_str_of("c");
	member.client_host = tl_str_of("/127.0.0.1");
	member.member_assignment.ptr = assignment.data;
	member.member_assignment.len = (int32_t)assignment.len;
	struct tl_describe_groups_response_described_group group;
	tl_describe_groups_response_described_group_defaults(&group);
	group.group_id = tl_str_of("g");
	group.group_state = tl_str_of("Stable");
	group.protocol_type = tl_str_of("consumer");
	group.protocol_data = tl_str_of("range");
	group.members_count = 1;
	group.members = &member;
	struct tl_describe_groups_response dg;
	tl_describe_groups_response_defaults(&dg);
	dg.groups_count = 1;
	dg.groups = &group;
	SEED_ENCODE(seed, 15, describe_groups, 4, &dg);
	tl_buf_deinit(&assignment);

	seed_offset_fetch(seed);
}

static void seed_acls(struct tl_buf *seed)
{
	struct tl_describe_acls_response_acl_description acl;
	tl_describe_acls_response_acl_description_defaults(&acl);
	acl.principal = tl_str_of("User:alice");
	acl.host = tl_str_of("*");
	acl.operation = 3;
	acl.permission_type = 3;
	struct tl_describe_acls_response_describe_acls_resource res;
	tl_describe_acls_response_describe_acls_resource_defaults(&res);
	res.resource_type = 2;
	res.resource_name = tl_str_of("t");
	res.pattern_type = 3;
	res.acls_count = 1;
	res.acls = &acl;
	struct tl_describe_acls_response resp;
	tl_describe_acls_response_defaults(&resp);
	resp.resources_count = 1;
	resp.resources = &res;
	SEED_ENCODE(seed, 29, describe_acls, 1, &resp);
}

static void seeds_write(const char *dir)
{
	static const struct {
		const char *name;
		uint8_t calls;
	} seeds[] = {
		{"topics", 0},  {"log-dirs", 1}, {"acls", 3},
		{"offsets", 4}, {"cluster", 5},  {"groups", 6},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct tl_buf seed;
		tl_buf_init(&seed);
		tl_buf_i8(&seed, (int8_t)seeds[i].calls);
		seed_api_versions(&seed);
		seed_metadata(&seed, 3);
		if (seeds[i].calls == 1)
			seed_log_dirs(&seed);
		if (seeds[i].calls == 3)
			seed_acls(&seed);
		if (seeds[i].calls == 4)
			seed_list_offsets(&seed);
		if (seeds[i].calls == 6)
			seed_groups(&seed);
		seed_write(dir, seeds[i].name, &seed);
		tl_buf_deinit(&seed);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	peer_init("FUZZ_ADMIN_VERBOSE", "FUZZ_ADMIN_SEEDS", seeds_write);
	return 0;
}
