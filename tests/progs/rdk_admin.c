/* rdk_admin.c - librdkafka's Admin API against a broker, one call per run.
 *   rdk_admin BROKER describe-configs broker|topic NAME [include-synonyms]
 *       DescribeConfigs: "config NAME=VALUE source S default D readonly R" per key
 *       (VALUE "(null)" for none), then "synonym NAME=VALUE source S" per synonym of it
 *       when asked; or "error CODE MESSAGE" for the resource.
 *   rdk_admin BROKER create-partitions TOPIC TOTAL [ASSIGNMENT]
 *       CreatePartitions: "ok" or "error CODE MESSAGE". ASSIGNMENT gives each new
 *       partition's replicas, rows apart by ';': "1,2,3;2,3,1".
 *   rdk_admin BROKER alter-configs TOPIC KEY=VALUE...
 *       AlterConfigs (the whole set of the topic's overrides): "ok" or "error ...".
 *   rdk_admin BROKER delete-records TOPIC PARTITION OFFSET
 *       DeleteRecords: "low-watermark N" or "error CODE MESSAGE".
 * Sources are librdkafka's names (DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG,
 * DEFAULT_CONFIG, ...). Exit status: 0 answered (even with an error result), 1 the call
 * itself failed, 2 usage. */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 20000

static rd_kafka_t *client_new(const char *broker)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", broker, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		fprintf(stderr, "rdk_admin: %s\n", errstr);
		exit(2);
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "rdk_admin: rd_kafka_new: %s\n", errstr);
		exit(1);
	}
	return rk;
}

/* Waits for the result event of type @type on @queue. */
static rd_kafka_event_t *wait_result(rd_kafka_queue_t *queue, rd_kafka_event_type_t type)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, TIMEOUT_MS + 5000);
	if (!ev) {
		fprintf(stderr, "rdk_admin: no result within %d ms\n", TIMEOUT_MS + 5000);
		exit(1);
	}
	if (rd_kafka_event_type(ev) != type) {
		fprintf(stderr, "rdk_admin: unexpected event %s\n", rd_kafka_event_name(ev));
		exit(1);
	}
	if (rd_kafka_event_error(ev)) {
		printf("error %d %s\n", rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
		return NULL;
	}
	return ev;
}

static rd_kafka_AdminOptions_t *options(rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
	char errstr[256];
	rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
	rd_kafka_AdminOptions_set_request_timeout(opts, TIMEOUT_MS, errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_operation_timeout(opts, TIMEOUT_MS, errstr, sizeof(errstr));
	return opts;
}

static void print_config(const rd_kafka_ConfigEntry_t *entry, const char *prefix)
{
	const char *value = rd_kafka_ConfigEntry_value(entry);
	printf("%s %s=%s source %s", prefix, rd_kafka_ConfigEntry_name(entry),
	       value ? value : "(null)",
	       rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(entry)));
	if (strcmp(prefix, "config") == 0)
		printf(" default %d readonly %d", rd_kafka_ConfigEntry_is_default(entry),
		       rd_kafka_ConfigEntry_is_read_only(entry));
	printf("\n");
}

static int describe_configs(rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *type,
			    const char *name, bool synonyms)
{
	rd_kafka_ResourceType_t rt =
		strcmp(type, "broker") == 0 ? RD_KAFKA_RESOURCE_BROKER : RD_KAFKA_RESOURCE_TOPIC;
	rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(rt, name);
	rd_kafka_AdminOptions_t *opts = options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	if (rt == RD_KAFKA_RESOURCE_BROKER) {
		char errstr[256];
		rd_kafka_AdminOptions_set_broker(opts, (int32_t)atoi(name), errstr, sizeof(errstr));
	}
	rd_kafka_DescribeConfigs(rk, &res, 1, opts, queue);
	rd_kafka_event_t *ev = wait_result(queue, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_ConfigResource_destroy(res);
	if (!ev)
		return 0;
	size_t count;
	const rd_kafka_ConfigResource_t **results = rd_kafka_DescribeConfigs_result_resources(
		rd_kafka_event_DescribeConfigs_result(ev), &count);
	for (size_t i = 0; i < count; i++) {
		if (rd_kafka_ConfigResource_error(results[i])) {
			printf("error %d %s\n", rd_kafka_ConfigResource_error(results[i]),
			       rd_kafka_ConfigResource_error_string(results[i]));
			continue;
		}
		size_t n;
		const rd_kafka_ConfigEntry_t **configs =
			rd_kafka_ConfigResource_configs(results[i], &n);
		for (size_t c = 0; c < n; c++) {
			print_config(configs[c], "config");
			size_t s_count;
			const rd_kafka_ConfigEntry_t **syn =
				rd_kafka_ConfigEntry_synonyms(configs[c], &s_count);
			for (size_t s = 0; synonyms && s < s_count; s++)
				print_config(syn[s], "synonym");
		}
	}
	rd_kafka_event_destroy(ev);
	return 0;
}

/* Sets @np's replica assignment from @text ("1,2,3;2,3,1": one row per new partition);
 * false on a bad row. */
static bool assignment_set(rd_kafka_NewPartitions_t *np, const char *text, char *errstr,
			   size_t errstr_size)
{
	for (int row = 0; *text; row++) {
		int32_t ids[16];
		size_t n = 0;
		char *end;
		while (n < 16) {
			ids[n++] = (int32_t)strtol(text, &end, 10);
			text = end;
			if (*text != ',')
				break;
			text++;
		}
		if (rd_kafka_NewPartitions_set_replica_assignment(np, row, ids, n, errstr,
								  errstr_size))
			return false;
		if (*text == ';')
			text++;
		else if (*text)
			return snprintf(errstr, errstr_size, "bad assignment near '%s'", text) < 0;
	}
	return true;
}

static int create_partitions(rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *topic, int total,
			     const char *assignment)
{
	char errstr[256];
	rd_kafka_NewPartitions_t *np =
		rd_kafka_NewPartitions_new(topic, (size_t)total, errstr, sizeof(errstr));
	if (!np || (assignment && !assignment_set(np, assignment, errstr, sizeof(errstr)))) {
		fprintf(stderr, "rdk_admin: %s\n", errstr);
		return 2;
	}
	rd_kafka_AdminOptions_t *opts = options(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
	rd_kafka_CreatePartitions(rk, &np, 1, opts, queue);
	rd_kafka_event_t *ev = wait_result(queue, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_NewPartitions_destroy(np);
	if (!ev)
		return 0;
	size_t count;
	const rd_kafka_topic_result_t **results = rd_kafka_CreatePartitions_result_topics(
		rd_kafka_event_CreatePartitions_result(ev), &count);
	for (size_t i = 0; i < count; i++)
		if (rd_kafka_topic_result_error(results[i]))
			printf("error %d %s\n", rd_kafka_topic_result_error(results[i]),
			       rd_kafka_topic_result_error_string(results[i]));
		else
			printf("ok\n");
	rd_kafka_event_destroy(ev);
	return 0;
}

static int alter_configs(rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *topic, char **pairs,
			 int pair_count)
{
	rd_kafka_ConfigResource_t *res =
		rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	for (int i = 0; i < pair_count; i++) {
		char *eq = strchr(pairs[i], '=');
		if (!eq) {
			fprintf(stderr, "rdk_admin: \"%s\" is not KEY=VALUE\n", pairs[i]);
			return 2;
		}
		*eq = '\0';
		rd_kafka_ConfigResource_set_config(res, pairs[i], eq + 1);
	}
	rd_kafka_AdminOptions_t *opts = options(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
	rd_kafka_AlterConfigs(rk, &res, 1, opts, queue);
	rd_kafka_event_t *ev = wait_result(queue, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_ConfigResource_destroy(res);
	if (!ev)
		return 0;
	size_t count;
	const rd_kafka_ConfigResource_t **results = rd_kafka_AlterConfigs_result_resources(
		rd_kafka_event_AlterConfigs_result(ev), &count);
	for (size_t i = 0; i < count; i++)
		if (rd_kafka_ConfigResource_error(results[i]))
			printf("error %d %s\n", rd_kafka_ConfigResource_error(results[i]),
			       rd_kafka_ConfigResource_error_string(results[i]));
		else
			printf("ok\n");
	rd_kafka_event_destroy(ev);
	return 0;
}

static int delete_records(rd_kafka_t *rk, rd_kafka_queue_t *queue, const char *topic, int partition,
			  long long offset)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
	rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(list);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_AdminOptions_t *opts = options(rk, RD_KAFKA_ADMIN_OP_DELETERECORDS);
	rd_kafka_DeleteRecords(rk, &del, 1, opts, queue);
	rd_kafka_event_t *ev = wait_result(queue, RD_KAFKA_EVENT_DELETERECORDS_RESULT);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_DeleteRecords_destroy(del);
	if (!ev)
		return 0;
	const rd_kafka_topic_partition_list_t *offsets =
		rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
	for (int i = 0; i < offsets->cnt; i++)
		if (offsets->elems[i].err)
			printf("error %d %s\n", offsets->elems[i].err,
			       rd_kafka_err2str(offsets->elems[i].err));
		else
			printf("low-watermark %lld\n", (long long)offsets->elems[i].offset);
	rd_kafka_event_destroy(ev);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4) {
		fprintf(stderr, "usage: rdk_admin BROKER VERB ARGS... (see rdk_admin.c)\n");
		return 2;
	}
	rd_kafka_t *rk = client_new(argv[1]);
	rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
	const char *verb = argv[2];
	int rc = 2;
	if (strcmp(verb, "describe-configs") == 0 && argc >= 5)
		rc = describe_configs(rk, queue, argv[3], argv[4],
				      argc >= 6 && strcmp(argv[5], "include-synonyms") == 0);
	else if (strcmp(verb, "create-partitions") == 0 && argc >= 5)
		rc = create_partitions(rk, queue, argv[3], atoi(argv[4]),
				       argc >= 6 ? argv[5] : NULL);
	else if (strcmp(verb, "alter-configs") == 0 && argc >= 4)
		rc = alter_configs(rk, queue, argv[3], argv + 4, argc - 4);
	else if (strcmp(verb, "delete-records") == 0 && argc >= 6)
		rc = delete_records(rk, queue, argv[3], atoi(argv[4]), atoll(argv[5]));
	else
		fprintf(stderr, "rdk_admin: unknown verb or missing arguments\n");
	rd_kafka_queue_destroy(queue);
	rd_kafka_destroy(rk);
	return rc;
}
