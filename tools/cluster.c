/* cluster.c - `tally cluster info`: the cluster id, the controller, every broker with
 * its advertised address and whether it answers from here, and the partitions whose
 * ISR is smaller than their replica set (under-replicated) or that have no leader
 * (offline). `tally cluster log-dirs`: each broker's log directories and the size of
 * every partition replica in them (DescribeLogDirs). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cluster_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	(void)ctx;
	(void)opt;
	(void)arg;
	return cli_usage(cli, "cluster", "unexpected option");
}

/* Partitions of @topics that are under-replicated or offline. */
struct health {
	int32_t under_replicated;
	int32_t offline;
};

static struct health cluster_health(const struct tl_admin_topics *topics)
{
	struct health h = {0, 0};
	for (int32_t t = 0; topics && t < topics->count; t++)
		for (int32_t i = 0; i < topics->topics[t].partition_count; i++) {
			const struct tl_admin_partition_info *p = &topics->topics[t].partitions[i];
			h.offline += p->leader < 0;
			h.under_replicated += p->leader >= 0 && p->isr_count < p->replica_count;
		}
	return h;
}

static void health_json(struct cli_node *doc, const struct tl_admin_topics *topics)
{
	struct health h = cluster_health(topics);
	cli_add_int(doc, "under_replicated_partitions", h.under_replicated);
	cli_add_int(doc, "offline_partitions", h.offline);
	struct cli_node *list = cli_add_array(doc, "unhealthy");
	for (int32_t t = 0; topics && t < topics->count; t++)
		for (int32_t i = 0; i < topics->topics[t].partition_count; i++) {
			const struct tl_admin_partition_info *p = &topics->topics[t].partitions[i];
			if (p->leader >= 0 && p->isr_count >= p->replica_count)
				continue;
			struct cli_node *n = cli_add_object(list, NULL);
			cli_add_str(n, "topic", topics->topics[t].name);
			cli_add_int(n, "partition", p->partition);
			cli_add_int(n, "leader", p->leader);
			cli_add_int(n, "replicas", p->replica_count);
			cli_add_int(n, "isr", p->isr_count);
		}
}

static void health_text(const struct tl_admin_topics *topics)
{
	struct health h = cluster_health(topics);
	printf("\nunder-replicated partitions: %d\noffline partitions:          %d\n",
	       h.under_replicated, h.offline);
	for (int32_t t = 0; topics && t < topics->count; t++)
		for (int32_t i = 0; i < topics->topics[t].partition_count; i++) {
			const struct tl_admin_partition_info *p = &topics->topics[t].partitions[i];
			if (p->leader < 0)
				printf("  %s-%d: offline (no leader)\n", topics->topics[t].name,
				       p->partition);
			else if (p->isr_count < p->replica_count)
				printf("  %s-%d: %d of %d replicas in sync, leader %d\n",
				       topics->topics[t].name, p->partition, p->isr_count,
				       p->replica_count, p->leader);
		}
}

static void cluster_json(struct cli *cli, const struct tl_admin_cluster *cluster,
			 const struct tl_admin_topics *topics, const bool *reachable,
			 char (*why)[256])
{
	struct cli_node *doc = cli_node_object();
	cli_add_str(doc, "cluster_id", cluster->cluster_id);
	cli_add_int(doc, "controller_id", cluster->controller_id);
	cli_add_int(doc, "topics", cluster->topic_count);
	cli_add_int(doc, "partitions", cluster->partition_count);
	struct cli_node *brokers = cli_add_array(doc, "brokers");
	for (int32_t i = 0; i < cluster->broker_count; i++) {
		const struct tl_admin_broker *b = &cluster->brokers[i];
		struct cli_node *n = cli_add_object(brokers, NULL);
		cli_add_int(n, "node_id", b->node_id);
		cli_add_str(n, "host", b->host);
		cli_add_int(n, "port", b->port);
		cli_add_str(n, "rack", b->rack);
		cli_add_bool(n, "controller", b->node_id == cluster->controller_id);
		cli_add_bool(n, "reachable", reachable && reachable[i]);
		if (why && !reachable[i])
			cli_add_str(n, "error", why[i]);
	}
	health_json(doc, topics);
	cli_node_print(cli, doc, stdout);
	cli_node_destroy(doc);
}

static void cluster_text(struct cli *cli, const struct tl_admin_cluster *cluster,
			 const struct tl_admin_topics *topics, const bool *reachable,
			 char (*why)[256])
{
	printf("cluster id:  %s\ncontroller:  %d\ntopics:      %d (%d partitions)\n\n",
	       cluster->cluster_id ? cluster->cluster_id : "-", cluster->controller_id,
	       cluster->topic_count, cluster->partition_count);
	static const char *const headers[] = {"BROKER", "ADDRESS", "RACK", "ROLE", "STATUS"};
	struct cli_table *table = cli_table_create(5, headers);
	for (int32_t i = 0; i < cluster->broker_count; i++) {
		const struct tl_admin_broker *b = &cluster->brokers[i];
		cli_table_cell(table, "%d", b->node_id);
		cli_table_cell(table, "%s:%d", b->host, b->port);
		cli_table_cell(table, "%s", b->rack ? b->rack : "-");
		cli_table_cell(table, "%s",
			       b->node_id == cluster->controller_id ? "controller" : "-");
		cli_table_cell(table, "%s",
			       reachable && reachable[i] ? "reachable" : "UNREACHABLE");
	}
	cli_table_print(cli, table, stdout);
	cli_table_destroy(table);
	health_text(topics);
	for (int32_t i = 0; why && i < cluster->broker_count; i++)
		if (!reachable[i])
			cli_error(
				cli,
				"broker %d advertises %s:%d, which does not answer: %s; check the broker's advertised.listeners",
				cluster->brokers[i].node_id, cluster->brokers[i].host,
				cluster->brokers[i].port, why[i]);
}

/* log-dirs: one row per partition replica, broker by broker. */
static int cluster_log_dirs(struct cli *cli, struct tl_admin *admin,
			    const struct tl_admin_cluster *cluster)
{
	static const char *const headers[] = {"BROKER", "DIR", "TOPIC", "PARTITION", "SIZE"};
	struct cli_table *table =
		cli->format == CLI_FORMAT_TEXT ? cli_table_create(5, headers) : NULL;
	struct cli_node *root = cli->format != CLI_FORMAT_TEXT ? cli_node_array() : NULL;
	int rc = CLI_EXIT_OK;
	for (int32_t b = 0; b < cluster->broker_count; b++) {
		struct tl_admin_log_dirs *dirs;
		tl_err err = tl_admin_describe_log_dirs(admin, cluster->brokers[b].node_id, &dirs,
							cli->timeout_ms);
		if (err != TL_OK) {
			rc = cli_admin_fail(cli, admin, err, "DescribeLogDirs");
			continue;
		}
		for (int32_t i = 0; i < dirs->count; i++) {
			const struct tl_admin_log_dir_entry *e = &dirs->entries[i];
			if (table) {
				cli_table_cell(table, "%d", e->node_id);
				cli_table_cell(table, "%s", e->dir ? e->dir : "");
				cli_table_cell(table, "%s", e->topic ? e->topic : "");
				cli_table_cell(table, "%d", e->partition);
				cli_table_cell(table, "%" PRId64, e->size_bytes);
			} else if (root) {
				struct cli_node *o = cli_add_object(root, NULL);
				cli_add_int(o, "broker", e->node_id);
				cli_add_str(o, "dir", e->dir);
				cli_add_str(o, "topic", e->topic);
				cli_add_int(o, "partition", e->partition);
				cli_add_int(o, "size_bytes", e->size_bytes);
			}
		}
		tl_admin_log_dirs_destroy(dirs);
	}
	if (table) {
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
	}
	if (root) {
		cli_node_print(cli, root, stdout);
		cli_node_destroy(root);
	}
	return rc;
}

int cli_cluster(struct cli *cli, int argc, char **argv)
{
	bool log_dirs = argc >= 2 && strcmp(argv[1], "log-dirs") == 0;
	if (argc < 2 ||
	    (strcmp(argv[1], "info") != 0 && strcmp(argv[1], "describe") != 0 && !log_dirs))
		return cli_usage(cli, "cluster", "cluster wants a verb: info, log-dirs");
	static const struct option opts[] = {CLI_GLOBAL_LONG_OPTS, {NULL, 0, NULL, 0}};
	int rc;
	int first = cli_parse_options(cli, "cluster", argc - 1, argv + 1, CLI_GLOBAL_SHORT, opts,
				      cluster_option, NULL, &rc);
	if (first < 0)
		return rc;
	if (argc - 1 - first != 0)
		return cli_usage(cli, "cluster", "cluster %s takes no arguments", argv[1]);
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	struct tl_admin_cluster *cluster;
	tl_err err = tl_admin_describe_cluster(admin, &cluster, cli->timeout_ms);
	if (err != TL_OK) {
		rc = cli_admin_fail(cli, admin, err, "Metadata");
		tl_admin_destroy(admin);
		return rc;
	}
	if (log_dirs) {
		rc = cluster_log_dirs(cli, admin, cluster);
		tl_admin_cluster_destroy(cluster);
		tl_admin_destroy(admin);
		return rc;
	}
	bool *reachable = calloc((size_t)cluster->broker_count + 1, sizeof(*reachable));
	char(*why)[256] = calloc((size_t)cluster->broker_count + 1, sizeof(*why));
	int unreachable = 0;
	for (int32_t i = 0; reachable && why && i < cluster->broker_count; i++) {
		reachable[i] = tl_admin_probe_broker(admin, cluster->brokers[i].node_id,
						     cli->timeout_ms) == TL_OK;
		if (!reachable[i]) {
			snprintf(why[i], sizeof(why[i]), "%s", tl_admin_last_error(admin));
			unreachable++;
		}
	}
	struct tl_admin_topics *topics = NULL;
	if (tl_admin_list_topics(admin, &topics, cli->timeout_ms) != TL_OK)
		topics = NULL; /* the broker list still helps; the health part is empty */
	if (cli->format != CLI_FORMAT_TEXT)
		cluster_json(cli, cluster, topics, reachable, why);
	else
		cluster_text(cli, cluster, topics, reachable, why);
	if (topics)
		tl_admin_topics_destroy(topics);
	free(reachable);
	free(why);
	tl_admin_cluster_destroy(cluster);
	tl_admin_destroy(admin);
	return unreachable ? CLI_EXIT_UNREACHABLE : CLI_EXIT_OK;
}
