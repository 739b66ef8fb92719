/* topic.c - `tally topic create|list|describe|delete|add-partitions|alter|delete-records`. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define TOPIC_CONFIGS_MAX 64

struct topic_opts {
	int32_t partitions;
	int16_t replication;
	struct tl_admin_config_entry configs[TOPIC_CONFIGS_MAX];
	int32_t config_count;
	const char *deletes[TOPIC_CONFIGS_MAX]; /* alter --delete-config KEY */
	int32_t delete_count;
	bool if_exists;
	bool if_not_exists;
	bool internal;
};

enum {
	OPT_IF_EXISTS = CLI_OPT_FIRST_LOCAL,
	OPT_IF_NOT_EXISTS,
	OPT_INTERNAL,
	OPT_DELETE_CONFIG,
};

static int topic_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct topic_opts *o = ctx;
	int64_t v;
	switch (opt) {
	case 'p':
		if (!cli_parse_int64(arg, &v) || v <= 0 || v > 100000)
			return cli_usage(cli, "topic",
					 "--partitions wants a number from 1, not \"%s\"", arg);
		o->partitions = (int32_t)v;
		return 0;
	case 'r':
		if (!cli_parse_int64(arg, &v) || v <= 0 || v > 32767)
			return cli_usage(cli, "topic",
					 "--replication-factor wants a number from 1, not \"%s\"",
					 arg);
		o->replication = (int16_t)v;
		return 0;
	case 'c': {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg)
			return cli_usage(cli, "topic", "--config wants key=value, not \"%s\"", arg);
		if (o->config_count == TOPIC_CONFIGS_MAX)
			return cli_usage(cli, "topic", "at most %d --config options",
					 TOPIC_CONFIGS_MAX);
		o->configs[o->config_count].name = strndup(arg, (size_t)(eq - arg));
		o->configs[o->config_count].value = eq + 1;
		o->config_count++;
		return 0;
	}
	case OPT_DELETE_CONFIG:
		if (o->delete_count == TOPIC_CONFIGS_MAX)
			return cli_usage(cli, "topic", "at most %d --delete-config options",
					 TOPIC_CONFIGS_MAX);
		o->deletes[o->delete_count++] = arg;
		return 0;
	case OPT_IF_EXISTS:
		o->if_exists = true;
		return 0;
	case OPT_IF_NOT_EXISTS:
		o->if_not_exists = true;
		return 0;
	case OPT_INTERNAL:
		o->internal = true;
		return 0;
	default:
		return cli_usage(cli, "topic", "unexpected option");
	}
}

static int topic_create(struct cli *cli, struct tl_admin *admin, struct topic_opts *o, int argc,
			char **argv)
{
	if (argc != 1)
		return cli_usage(cli, "topic", "topic create wants one topic name");
	tl_err err = tl_admin_create_topic(admin, argv[0], o->partitions ? o->partitions : -1,
					   o->replication ? o->replication : -1, o->configs,
					   o->config_count, cli->timeout_ms);
	if (err == TL_ERR_TOPIC_ALREADY_EXISTS && o->if_not_exists)
		return CLI_EXIT_OK;
	if (err == TL_ERR_TOPIC_ALREADY_EXISTS) {
		cli_error(cli, "topic \"%s\" already exists (--if-not-exists makes that fine)",
			  argv[0]);
		return CLI_EXIT_ERROR;
	}
	if (err == TL_ERR_INVALID_TOPIC_EXCEPTION) {
		cli_error(
			cli,
			"\"%s\" is not a valid topic name: use letters, digits, '.', '_' and '-', at most 249 characters",
			argv[0]);
		return CLI_EXIT_USAGE;
	}
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "create topic");
	cli_info(cli, "created topic %s", argv[0]);
	return CLI_EXIT_OK;
}

static int32_t topic_replication(const struct tl_admin_topic_info *t)
{
	return t->partition_count > 0 ? t->partitions[0].replica_count : 0;
}

static int topic_list(struct cli *cli, struct tl_admin *admin, struct topic_opts *o, int argc)
{
	if (argc != 0)
		return cli_usage(cli, "topic", "topic list takes no arguments");
	struct tl_admin_topics *topics;
	tl_err err = tl_admin_list_topics(admin, &topics, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "list topics");
	if (cli->format != CLI_FORMAT_TEXT) {
		struct cli_node *doc = cli_node_array();
		for (int32_t i = 0; i < topics->count; i++) {
			const struct tl_admin_topic_info *t = &topics->topics[i];
			if (t->is_internal && !o->internal)
				continue;
			struct cli_node *n = cli_add_object(doc, NULL);
			cli_add_str(n, "name", t->name);
			cli_add_int(n, "partitions", t->partition_count);
			cli_add_int(n, "replication_factor", topic_replication(t));
			cli_add_bool(n, "internal", t->is_internal);
		}
		cli_node_print(cli, doc, stdout);
		cli_node_destroy(doc);
	} else {
		static const char *const headers[] = {"TOPIC", "PARTITIONS", "REPLICATION"};
		struct cli_table *table = cli_table_create(3, headers);
		for (int32_t i = 0; i < topics->count; i++) {
			const struct tl_admin_topic_info *t = &topics->topics[i];
			if (t->is_internal && !o->internal)
				continue;
			cli_table_cell(table, "%s%s", t->name, t->is_internal ? " (internal)" : "");
			cli_table_cell(table, "%d", t->partition_count);
			cli_table_cell(table, "%d", topic_replication(t));
		}
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
	}
	tl_admin_topics_destroy(topics);
	return CLI_EXIT_OK;
}

static void node_list(char *buf, size_t size, const int32_t *nodes, int32_t count)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int32_t i = 0; i < count && at + 12 < size; i++)
		at += (size_t)snprintf(buf + at, size - at, "%s%d", i ? "," : "", nodes[i]);
}

/* Start and end offsets of every partition of @topics (two ListOffsets rounds). */
static struct tl_admin_offset_query *topic_offsets(struct tl_admin *admin,
						   const struct tl_admin_topics *topics,
						   int timeout_ms, int32_t *count_out)
{
	int32_t total = 0;
	for (int32_t i = 0; i < topics->count; i++)
		total += topics->topics[i].partition_count;
	*count_out = total;
	if (total == 0)
		return NULL;
	struct tl_admin_offset_query *q = calloc((size_t)total * 2, sizeof(*q));
	if (!q)
		return NULL;
	int32_t k = 0;
	for (int32_t i = 0; i < topics->count; i++)
		for (int32_t p = 0; p < topics->topics[i].partition_count; p++, k++) {
			q[k].topic = q[total + k].topic = topics->topics[i].name;
			q[k].partition = q[total + k].partition = p;
			q[k].timestamp = TL_ADMIN_OFFSET_EARLIEST;
			q[total + k].timestamp = TL_ADMIN_OFFSET_LATEST;
		}
	if (tl_admin_list_offsets(admin, q, total * 2, 0, timeout_ms) != TL_OK)
		for (int32_t i = 0; i < total * 2; i++)
			q[i].offset = -1;
	return q;
}

static void describe_json(struct cli *cli, const struct tl_admin_topics *topics,
			  const struct tl_admin_offset_query *q, int32_t total)
{
	struct cli_node *doc = cli_node_array();
	int32_t k = 0;
	for (int32_t i = 0; i < topics->count; i++) {
		const struct tl_admin_topic_info *t = &topics->topics[i];
		struct cli_node *n = cli_add_object(doc, NULL);
		cli_add_str(n, "name", t->name);
		cli_add_bool(n, "internal", t->is_internal);
		struct cli_node *parts = cli_add_array(n, "partitions");
		for (int32_t p = 0; p < t->partition_count; p++, k++) {
			const struct tl_admin_partition_info *pi = &t->partitions[p];
			struct cli_node *pn = cli_add_object(parts, NULL);
			cli_add_int(pn, "partition", pi->partition);
			cli_add_int(pn, "leader", pi->leader);
			cli_add_int(pn, "leader_epoch", pi->leader_epoch);
			struct cli_node *r = cli_add_array(pn, "replicas");
			for (int32_t j = 0; j < pi->replica_count; j++)
				cli_add_int(r, NULL, pi->replicas[j]);
			struct cli_node *isr = cli_add_array(pn, "isr");
			for (int32_t j = 0; j < pi->isr_count; j++)
				cli_add_int(isr, NULL, pi->isr[j]);
			cli_add_int(pn, "start_offset", q ? q[k].offset : -1);
			cli_add_int(pn, "end_offset", q ? q[total + k].offset : -1);
		}
	}
	cli_node_print(cli, doc, stdout);
	cli_node_destroy(doc);
}

static void describe_text(struct cli *cli, const struct tl_admin_topics *topics,
			  const struct tl_admin_offset_query *q, int32_t total)
{
	static const char *const headers[] = {"TOPIC", "PARTITION", "LEADER", "EPOCH",  "REPLICAS",
					      "ISR",   "START",     "END",    "RECORDS"};
	struct cli_table *table = cli_table_create(9, headers);
	int32_t k = 0;
	for (int32_t i = 0; i < topics->count; i++) {
		const struct tl_admin_topic_info *t = &topics->topics[i];
		for (int32_t p = 0; p < t->partition_count; p++, k++) {
			const struct tl_admin_partition_info *pi = &t->partitions[p];
			char replicas[256], isr[256];
			node_list(replicas, sizeof(replicas), pi->replicas, pi->replica_count);
			node_list(isr, sizeof(isr), pi->isr, pi->isr_count);
			int64_t start = q ? q[k].offset : -1, end = q ? q[total + k].offset : -1;
			cli_table_cell(table, "%s", t->name);
			cli_table_cell(table, "%d", pi->partition);
			cli_table_cell(table, "%d", pi->leader);
			cli_table_cell(table, "%d", pi->leader_epoch);
			cli_table_cell(table, "%s", replicas);
			cli_table_cell(table, "%s", isr);
			cli_table_cell(table, "%lld", (long long)start);
			cli_table_cell(table, "%lld", (long long)end);
			if (start >= 0 && end >= start)
				cli_table_cell(table, "%lld", (long long)(end - start));
			else
				cli_table_cell(table, "-");
		}
	}
	cli_table_print(cli, table, stdout);
	cli_table_destroy(table);
}

static int topic_describe(struct cli *cli, struct tl_admin *admin, int argc, char **argv)
{
	if (argc < 1)
		return cli_usage(cli, "topic", "topic describe wants one or more topic names");
	struct tl_admin_topics *topics;
	int rc = cli_describe_topics(cli, admin, (const char *const *)argv, argc, false, NULL,
				     &topics);
	if (rc != CLI_EXIT_OK)
		return rc;
	int32_t total = 0;
	struct tl_admin_offset_query *q = topic_offsets(admin, topics, cli->timeout_ms, &total);
	if (cli->format != CLI_FORMAT_TEXT)
		describe_json(cli, topics, q, total);
	else
		describe_text(cli, topics, q, total);
	free(q);
	tl_admin_topics_destroy(topics);
	return CLI_EXIT_OK;
}

static int topic_delete(struct cli *cli, struct tl_admin *admin, struct topic_opts *o, int argc,
			char **argv)
{
	if (argc < 1)
		return cli_usage(cli, "topic", "topic delete wants one or more topic names");
	int failed = 0, rc = CLI_EXIT_OK;
	for (int i = 0; i < argc; i++) {
		tl_err err = tl_admin_delete_topic(admin, argv[i], cli->timeout_ms);
		if (err == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION && o->if_exists)
			continue;
		if (err == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
			cli_error(cli, "topic \"%s\" does not exist", argv[i]);
			rc = CLI_EXIT_NOT_FOUND;
			failed++;
		} else if (err != TL_OK) {
			rc = cli_admin_fail(cli, admin, err, "delete topic");
			failed++;
		} else {
			cli_info(cli, "deleted topic %s", argv[i]);
		}
	}
	if (failed > 0 && failed < argc)
		return CLI_EXIT_PARTIAL;
	return rc;
}

static int topic_add_partitions(struct cli *cli, struct tl_admin *admin, struct topic_opts *o,
				int argc, char **argv)
{
	if (argc != 1 || o->partitions <= 0)
		return cli_usage(cli, "topic", "topic add-partitions wants TOPIC -p TOTAL");
	tl_err err = tl_admin_create_partitions(admin, argv[0], o->partitions, cli->timeout_ms);
	if (err == TL_ERR_UNSUPPORTED_VERSION) {
		cli_error(
			cli,
			"adding partitions is not supported by this broker (it does not implement CreatePartitions): create a new topic with more partitions and copy the records (tally tail --json | tally produce --json)");
		return CLI_EXIT_ERROR;
	}
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "add partitions");
	cli_info(cli, "topic %s now has %d partitions", argv[0], o->partitions);
	return CLI_EXIT_OK;
}

/* alter: -c KEY=VALUE sets, --delete-config KEY returns a key to the broker default;
 * the topic's other keys keep their settings (IncrementalAlterConfigs). */
static int topic_alter(struct cli *cli, struct tl_admin *admin, struct topic_opts *o, int argc,
		       char **argv)
{
	if (argc != 1 || o->config_count + o->delete_count == 0)
		return cli_usage(cli, "topic",
				 "topic alter wants TOPIC and -c KEY=VALUE or --delete-config KEY");
	struct tl_admin_config_change changes[2 * TOPIC_CONFIGS_MAX];
	int32_t n = 0;
	for (int32_t i = 0; i < o->config_count; i++)
		changes[n++] = (struct tl_admin_config_change){
			o->configs[i].name, o->configs[i].value, TL_ADMIN_CONFIG_SET};
	for (int32_t i = 0; i < o->delete_count; i++)
		changes[n++] = (struct tl_admin_config_change){o->deletes[i], NULL,
							       TL_ADMIN_CONFIG_DELETE};
	tl_err err = tl_admin_alter_topic_configs(admin, argv[0], changes, n, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "alter topic configs");
	cli_info(cli, "topic %s: %d config%s changed", argv[0], n, n == 1 ? "" : "s");
	return CLI_EXIT_OK;
}

/* delete-records TOPIC PARTITION OFFSET|end: the records below OFFSET go. */
static int topic_delete_records(struct cli *cli, struct tl_admin *admin, int argc, char **argv)
{
	int64_t partition, offset;
	if (argc != 3 || !cli_parse_int64(argv[1], &partition) || partition < 0 ||
	    partition > INT32_MAX ||
	    (strcmp(argv[2], "end") != 0 && (!cli_parse_int64(argv[2], &offset) || offset < 0)))
		return cli_usage(cli, "topic",
				 "topic delete-records wants TOPIC PARTITION OFFSET (or end)");
	if (strcmp(argv[2], "end") == 0)
		offset = -1;
	int64_t low;
	tl_err err = tl_admin_delete_records(admin, argv[0], (int32_t)partition, offset, &low,
					     cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "delete records");
	printf("%" PRId64 "\n", low);
	cli_info(cli, "topic %s partition %" PRId64 " now starts at offset %" PRId64, argv[0],
		 partition, low);
	return CLI_EXIT_OK;
}

int cli_topic(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(
			cli, "topic",
			"topic wants a verb: create, list, describe, delete, add-partitions, alter, "
			"delete-records");
	const char *verb = argv[1];
	static const struct option opts[] = {
		{"partitions", required_argument, NULL, 'p'},
		{"replication-factor", required_argument, NULL, 'r'},
		{"config", required_argument, NULL, 'c'},
		{"if-exists", no_argument, NULL, OPT_IF_EXISTS},
		{"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
		{"internal", no_argument, NULL, OPT_INTERNAL},
		{"delete-config", required_argument, NULL, OPT_DELETE_CONFIG},
		CLI_GLOBAL_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	struct topic_opts o;
	memset(&o, 0, sizeof(o));
	int rc;
	int first = cli_parse_options(cli, "topic", argc - 1, argv + 1,
				      CLI_GLOBAL_SHORT "p:r:c:", opts, topic_option, &o, &rc);
	if (first < 0)
		return rc;
	int rest = argc - 1 - first;
	char **args = argv + 1 + first;
	bool known = strcmp(verb, "create") == 0 || strcmp(verb, "list") == 0 ||
		     strcmp(verb, "ls") == 0 || strcmp(verb, "describe") == 0 ||
		     strcmp(verb, "delete") == 0 || strcmp(verb, "add-partitions") == 0 ||
		     strcmp(verb, "alter") == 0 || strcmp(verb, "delete-records") == 0;
	if (!known)
		return cli_usage(cli, "topic",
				 "unknown verb \"%s\"; use create, list, describe, delete, "
				 "add-partitions, alter or delete-records",
				 verb);
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	if (strcmp(verb, "create") == 0)
		rc = topic_create(cli, admin, &o, rest, args);
	else if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0)
		rc = topic_list(cli, admin, &o, rest);
	else if (strcmp(verb, "describe") == 0)
		rc = topic_describe(cli, admin, rest, args);
	else if (strcmp(verb, "delete") == 0)
		rc = topic_delete(cli, admin, &o, rest, args);
	else if (strcmp(verb, "alter") == 0)
		rc = topic_alter(cli, admin, &o, rest, args);
	else if (strcmp(verb, "delete-records") == 0)
		rc = topic_delete_records(cli, admin, rest, args);
	else
		rc = topic_add_partitions(cli, admin, &o, rest, args);
	tl_admin_destroy(admin);
	for (int32_t i = 0; i < o.config_count; i++)
		free((char *)(uintptr_t)o.configs[i].name);
	return rc;
}
