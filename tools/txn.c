/* txn.c - `tally txn list|describe|producers|find-hanging|abort`: transactions through
 * the admin client (ListTransactions, DescribeTransactions, DescribeProducers,
 * InitProducerId to fence, WriteTxnMarkers to abort a hanging one).
 * A hanging transaction is open in a partition (DescribeProducers shows a start offset)
 * while no coordinator has it ongoing with that partition, and older than
 * --older-than: it holds the last stable offset back for every read_committed reader. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/time.h"

#define TXN_TOPICS_MAX 64

struct txn_opts {
	const char *partitions;
	int64_t older_than_ms;
	const char *txn_id;
	const char *topic;
	int32_t partition;
	int64_t producer_id;
	int32_t producer_epoch;
	int32_t coordinator_epoch;
};

enum {
	OPT_OLDER_THAN = CLI_OPT_FIRST_LOCAL,
	OPT_TXN_ID,
	OPT_TOPIC,
	OPT_PARTITION,
	OPT_PRODUCER_ID,
	OPT_PRODUCER_EPOCH,
	OPT_COORDINATOR_EPOCH,
};

static int txn_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct txn_opts *o = ctx;
	int64_t v;
	switch (opt) {
	case 'p':
		o->partitions = arg;
		return 0;
	case OPT_OLDER_THAN:
		if (!cli_parse_duration_ms(arg, &o->older_than_ms))
			return cli_usage(cli, "txn", "--older-than wants a duration (15m, 1h, 0)");
		return 0;
	case OPT_TXN_ID:
		o->txn_id = arg;
		return 0;
	case OPT_TOPIC:
		o->topic = arg;
		return 0;
	case OPT_PARTITION:
	case OPT_PRODUCER_ID:
	case OPT_PRODUCER_EPOCH:
	case OPT_COORDINATOR_EPOCH:
		if (!cli_parse_int64(arg, &v) || v < (opt == OPT_COORDINATOR_EPOCH ? -1 : 0) ||
		    v > (opt == OPT_PRODUCER_ID ? INT64_MAX : INT32_MAX))
			return cli_usage(cli, "txn", "bad number \"%s\"", arg);
		if (opt == OPT_PARTITION)
			o->partition = (int32_t)v;
		else if (opt == OPT_PRODUCER_ID)
			o->producer_id = v;
		else if (opt == OPT_PRODUCER_EPOCH)
			o->producer_epoch = (int32_t)v;
		else
			o->coordinator_epoch = (int32_t)v;
		return 0;
	default:
		return cli_usage(cli, "txn", "unexpected option");
	}
}

/* ---- list and describe ---- */

static int txn_list(struct cli *cli, struct tl_admin *admin)
{
	struct tl_admin_txns *txns;
	tl_err err = tl_admin_list_transactions(admin, &txns, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "list transactions");
	if (cli->format != CLI_FORMAT_TEXT) {
		struct cli_node *doc = cli_node_array();
		for (int32_t i = 0; i < txns->count; i++) {
			struct cli_node *n = cli_add_object(doc, NULL);
			cli_add_str(n, "transactional_id", txns->txns[i].transactional_id);
			cli_add_int(n, "producer_id", txns->txns[i].producer_id);
			cli_add_str(n, "state", txns->txns[i].state);
		}
		cli_node_print(cli, doc, stdout);
		cli_node_destroy(doc);
	} else {
		static const char *const headers[] = {"TRANSACTIONAL ID", "PRODUCER ID", "STATE"};
		struct cli_table *table = cli_table_create(3, headers);
		for (int32_t i = 0; i < txns->count; i++) {
			cli_table_cell(table, "%s", txns->txns[i].transactional_id);
			cli_table_cell(table, "%lld", (long long)txns->txns[i].producer_id);
			cli_table_cell(table, "%s", txns->txns[i].state);
		}
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
	}
	tl_admin_txns_destroy(txns);
	return CLI_EXIT_OK;
}

static int txn_describe(struct cli *cli, struct tl_admin *admin, const char *id)
{
	struct tl_admin_txn_description *t;
	tl_err err = tl_admin_describe_transaction(admin, id, &t, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "describe transaction");
	if (t->err == TL_ERR_TRANSACTIONAL_ID_NOT_FOUND) {
		cli_error(cli, "transactional id \"%s\" is not known to its coordinator", id);
		tl_admin_txn_description_destroy(t);
		return CLI_EXIT_NOT_FOUND;
	}
	if (t->err != TL_OK) {
		cli_error(cli, "describe transaction %s: %s", id, tl_err_message(t->err));
		int rc = cli_exit_for(t->err);
		tl_admin_txn_description_destroy(t);
		return rc;
	}
	char start[40];
	cli_format_time(t->start_time_ms, start, sizeof(start));
	if (cli->format != CLI_FORMAT_TEXT) {
		struct cli_node *doc = cli_node_object();
		cli_add_str(doc, "transactional_id", t->transactional_id);
		cli_add_str(doc, "state", t->state);
		cli_add_int(doc, "coordinator", t->coordinator_id);
		cli_add_int(doc, "producer_id", t->producer_id);
		cli_add_int(doc, "producer_epoch", t->producer_epoch);
		cli_add_int(doc, "timeout_ms", t->timeout_ms);
		cli_add_int(doc, "start_time_ms", t->start_time_ms);
		struct cli_node *parts = cli_add_array(doc, "partitions");
		for (int32_t i = 0; i < t->partition_count; i++) {
			struct cli_node *p = cli_add_object(parts, NULL);
			cli_add_str(p, "topic", t->partitions[i].topic);
			cli_add_int(p, "partition", t->partitions[i].partition);
		}
		cli_node_print(cli, doc, stdout);
		cli_node_destroy(doc);
	} else {
		printf("transactional id:  %s\nstate:             %s\ncoordinator:       %d\nproducer:          id %lld, epoch %d\ntimeout:           %d ms\nstarted:           %s\npartitions:       ",
		       t->transactional_id, t->state, t->coordinator_id, (long long)t->producer_id,
		       t->producer_epoch, t->timeout_ms, t->start_time_ms >= 0 ? start : "-");
		for (int32_t i = 0; i < t->partition_count; i++)
			printf(" %s:%d", t->partitions[i].topic, t->partitions[i].partition);
		printf("%s\n", t->partition_count ? "" : " -");
	}
	tl_admin_txn_description_destroy(t);
	return CLI_EXIT_OK;
}

/* ---- producers and hanging transactions ---- */

/* The partitions of @topics (with -p as 0,2,5-7), in @out. */
static int txn_partitions(struct cli *cli, struct tl_admin *admin, char **topics, int count,
			  const char *list, struct tl_admin_topic_partition **out,
			  int32_t *count_out, struct tl_admin_topics **meta_out)
{
	struct tl_admin_topics *meta;
	int rc = cli_describe_topics(cli, admin, (const char *const *)topics, count, false, NULL,
				     &meta);
	if (rc != CLI_EXIT_OK)
		return rc;
	int32_t total = 0;
	for (int32_t i = 0; i < meta->count; i++)
		total += meta->topics[i].partition_count;
	struct tl_admin_topic_partition *tps = calloc((size_t)total + 1, sizeof(*tps));
	if (!tps) {
		tl_admin_topics_destroy(meta);
		return CLI_EXIT_ERROR;
	}
	int32_t n = 0;
	for (int32_t i = 0; i < meta->count; i++) {
		for (int32_t p = 0; p < meta->topics[i].partition_count; p++) {
			bool listed = !list;
			for (const char *s = list; s && *s;) {
				char *end;
				long a = strtol(s, &end, 10), b = a;
				if (end == s)
					break;
				if (*end == '-')
					b = strtol(end + 1, &end, 10);
				listed |= p >= a && p <= b;
				if (*end != ',')
					break;
				s = end + 1;
			}
			if (listed)
				tps[n++] =
					(struct tl_admin_topic_partition){meta->topics[i].name, p};
		}
	}
	if (n == 0) {
		cli_error(cli, "no partitions match -p %s", list ? list : "");
		free(tps);
		tl_admin_topics_destroy(meta);
		return CLI_EXIT_NOT_FOUND;
	}
	*out = tps;
	*count_out = n;
	*meta_out = meta;
	return CLI_EXIT_OK;
}

static int producers_fetch(struct cli *cli, struct tl_admin *admin, char **topics, int count,
			   const char *list, struct tl_admin_producers **out)
{
	struct tl_admin_topic_partition *tps;
	struct tl_admin_topics *meta;
	int32_t n;
	int rc = txn_partitions(cli, admin, topics, count, list, &tps, &n, &meta);
	if (rc != CLI_EXIT_OK)
		return rc;
	tl_err err = tl_admin_describe_producers(admin, tps, n, out, cli->timeout_ms);
	free(tps);
	tl_admin_topics_destroy(meta);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "describe producers");
	return CLI_EXIT_OK;
}

static int txn_producers(struct cli *cli, struct tl_admin *admin, char **topics, int count,
			 const struct txn_opts *o)
{
	struct tl_admin_producers *prods;
	int rc = producers_fetch(cli, admin, topics, count, o->partitions, &prods);
	if (rc != CLI_EXIT_OK)
		return rc;
	struct cli_node *doc = cli->format != CLI_FORMAT_TEXT ? cli_node_array() : NULL;
	static const char *const headers[] = {"TOPIC",       "PARTITION",     "PRODUCER ID",
					      "EPOCH",       "LAST SEQUENCE", "LAST TIMESTAMP",
					      "COORD EPOCH", "TXN START"};
	struct cli_table *table = doc ? NULL : cli_table_create(8, headers);
	for (int32_t i = 0; i < prods->count; i++) {
		const struct tl_admin_partition_producers *pp = &prods->partitions[i];
		if (pp->err != TL_OK)
			cli_warn(cli, "%s [%d]: %s", pp->topic, pp->partition,
				 tl_err_message(pp->err));
		for (int32_t k = 0; k < pp->count; k++) {
			const struct tl_admin_producer_state *s = &pp->producers[k];
			char ts[40];
			cli_format_time(s->last_timestamp, ts, sizeof(ts));
			if (doc) {
				struct cli_node *n = cli_add_object(doc, NULL);
				cli_add_str(n, "topic", pp->topic);
				cli_add_int(n, "partition", pp->partition);
				cli_add_int(n, "producer_id", s->producer_id);
				cli_add_int(n, "producer_epoch", s->producer_epoch);
				cli_add_int(n, "last_sequence", s->last_sequence);
				cli_add_int(n, "last_timestamp", s->last_timestamp);
				cli_add_int(n, "coordinator_epoch", s->coordinator_epoch);
				cli_add_int(n, "txn_start_offset", s->txn_start_offset);
				continue;
			}
			cli_table_cell(table, "%s", pp->topic);
			cli_table_cell(table, "%d", pp->partition);
			cli_table_cell(table, "%lld", (long long)s->producer_id);
			cli_table_cell(table, "%d", s->producer_epoch);
			cli_table_cell(table, "%d", s->last_sequence);
			cli_table_cell(table, "%s", ts);
			cli_table_cell(table, "%d", s->coordinator_epoch);
			if (s->txn_start_offset >= 0)
				cli_table_cell(table, "%lld", (long long)s->txn_start_offset);
			else
				cli_table_cell(table, "-");
		}
	}
	if (doc) {
		cli_node_print(cli, doc, stdout);
		cli_node_destroy(doc);
	} else {
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
	}
	tl_admin_producers_destroy(prods);
	return CLI_EXIT_OK;
}

/* True when some coordinator has @producer_id's transaction ongoing with this partition. */
static bool txn_is_known(struct cli *cli, struct tl_admin *admin, const struct tl_admin_txns *txns,
			 int64_t producer_id, const char *topic, int32_t partition)
{
	for (int32_t i = 0; i < txns->count; i++) {
		if (txns->txns[i].producer_id != producer_id)
			continue;
		struct tl_admin_txn_description *t;
		if (tl_admin_describe_transaction(admin, txns->txns[i].transactional_id, &t,
						  cli->timeout_ms) != TL_OK)
			return true; /* cannot tell: do not call it hanging */
		bool known = false;
		for (int32_t k = 0; k < t->partition_count; k++)
			if (t->partitions[k].partition == partition &&
			    strcmp(t->partitions[k].topic, topic) == 0)
				known = true;
		known = known && strcmp(t->state, "Ongoing") == 0;
		tl_admin_txn_description_destroy(t);
		if (known)
			return true;
	}
	return false;
}

static int txn_find_hanging(struct cli *cli, struct tl_admin *admin, char **topics, int count,
			    const struct txn_opts *o)
{
	struct tl_admin_producers *prods;
	int rc = producers_fetch(cli, admin, topics, count, o->partitions, &prods);
	if (rc != CLI_EXIT_OK)
		return rc;
	struct tl_admin_txns *txns;
	tl_err err = tl_admin_list_transactions(admin, &txns, cli->timeout_ms);
	if (err != TL_OK) {
		tl_admin_producers_destroy(prods);
		return cli_admin_fail(cli, admin, err, "list transactions");
	}
	int64_t now = tl_wall_ms();
	struct cli_node *doc = cli->format != CLI_FORMAT_TEXT ? cli_node_array() : NULL;
	static const char *const headers[] = {"TOPIC",       "PARTITION", "PRODUCER ID", "EPOCH",
					      "COORD EPOCH", "TXN START", "LAST WRITE"};
	struct cli_table *table = doc ? NULL : cli_table_create(7, headers);
	int hanging = 0;
	for (int32_t i = 0; i < prods->count; i++) {
		const struct tl_admin_partition_producers *pp = &prods->partitions[i];
		for (int32_t k = 0; k < pp->count; k++) {
			const struct tl_admin_producer_state *s = &pp->producers[k];
			if (s->txn_start_offset < 0 || now - s->last_timestamp < o->older_than_ms)
				continue;
			if (txn_is_known(cli, admin, txns, s->producer_id, pp->topic,
					 pp->partition))
				continue;
			hanging++;
			char ts[40];
			cli_format_time(s->last_timestamp, ts, sizeof(ts));
			if (doc) {
				struct cli_node *n = cli_add_object(doc, NULL);
				cli_add_str(n, "topic", pp->topic);
				cli_add_int(n, "partition", pp->partition);
				cli_add_int(n, "producer_id", s->producer_id);
				cli_add_int(n, "producer_epoch", s->producer_epoch);
				cli_add_int(n, "coordinator_epoch", s->coordinator_epoch);
				cli_add_int(n, "txn_start_offset", s->txn_start_offset);
				cli_add_int(n, "last_timestamp", s->last_timestamp);
				continue;
			}
			cli_table_cell(table, "%s", pp->topic);
			cli_table_cell(table, "%d", pp->partition);
			cli_table_cell(table, "%lld", (long long)s->producer_id);
			cli_table_cell(table, "%d", s->producer_epoch);
			cli_table_cell(table, "%d", s->coordinator_epoch);
			cli_table_cell(table, "%lld", (long long)s->txn_start_offset);
			cli_table_cell(table, "%s", ts);
		}
	}
	if (doc) {
		cli_node_print(cli, doc, stdout);
		cli_node_destroy(doc);
	} else {
		if (hanging)
			cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
		cli_info(
			cli, "%d hanging transaction%s%s", hanging, hanging == 1 ? "" : "s",
			hanging ? "; close one with tally txn abort --topic T --partition P --producer-id ID --producer-epoch E"
				: "");
	}
	tl_admin_txns_destroy(txns);
	tl_admin_producers_destroy(prods);
	return CLI_EXIT_OK;
}

/* ---- abort ---- */

static int txn_abort(struct cli *cli, struct tl_admin *admin, const struct txn_opts *o)
{
	if (o->txn_id && o->topic)
		return cli_usage(cli, "txn",
				 "abort takes --transactional-id or --topic..., not both");
	if (o->txn_id) {
		tl_err err = tl_admin_fence_transaction(admin, o->txn_id, cli->timeout_ms);
		if (err != TL_OK)
			return cli_admin_fail(cli, admin, err, "fence transactional id");
		cli_info(
			cli,
			"fenced %s: its open transaction (if any) is aborted and its producer can no longer write",
			o->txn_id);
		return CLI_EXIT_OK;
	}
	if (!o->topic || o->partition < 0 || o->producer_id < 0 || o->producer_epoch < 0)
		return cli_usage(
			cli, "txn",
			"abort needs --transactional-id ID, or --topic, --partition, --producer-id and --producer-epoch (from tally txn find-hanging)");
	tl_err err = tl_admin_abort_transaction(admin, o->topic, o->partition, o->producer_id,
						(int16_t)o->producer_epoch, o->coordinator_epoch,
						cli->timeout_ms);
	if (err == TL_ERR_UNSUPPORTED_VERSION) {
		cli_error(
			cli,
			"aborting a hanging transaction is not supported by this broker (it does not implement WriteTxnMarkers). If the transactional id is known, tally txn abort --transactional-id ID fences and aborts it");
		return CLI_EXIT_ERROR;
	}
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "abort transaction");
	cli_info(cli, "wrote an ABORT marker for producer %lld epoch %d into %s [%d]",
		 (long long)o->producer_id, o->producer_epoch, o->topic, o->partition);
	return CLI_EXIT_OK;
}

int cli_txn(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(
			cli, "txn",
			"txn wants a verb: list, describe, producers, find-hanging, abort");
	const char *verb = argv[1];
	static const struct option opts[] = {
		{"partitions", required_argument, NULL, 'p'},
		{"older-than", required_argument, NULL, OPT_OLDER_THAN},
		{"transactional-id", required_argument, NULL, OPT_TXN_ID},
		{"topic", required_argument, NULL, OPT_TOPIC},
		{"partition", required_argument, NULL, OPT_PARTITION},
		{"producer-id", required_argument, NULL, OPT_PRODUCER_ID},
		{"producer-epoch", required_argument, NULL, OPT_PRODUCER_EPOCH},
		{"coordinator-epoch", required_argument, NULL, OPT_COORDINATOR_EPOCH},
		CLI_GLOBAL_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	struct txn_opts o;
	memset(&o, 0, sizeof(o));
	o.older_than_ms = 15 * 60 * 1000;
	o.partition = -1;
	o.producer_id = -1;
	o.producer_epoch = -1;
	o.coordinator_epoch = -1;
	int rc;
	int first = cli_parse_options(cli, "txn", argc - 1, argv + 1, CLI_GLOBAL_SHORT "p:", opts,
				      txn_option, &o, &rc);
	if (first < 0)
		return rc;
	int rest = argc - 1 - first;
	char **args = argv + 1 + first;
	int want_min = 0, want_max = 0;
	if (strcmp(verb, "describe") == 0)
		want_min = want_max = 1;
	else if (strcmp(verb, "producers") == 0 || strcmp(verb, "find-hanging") == 0)
		want_min = 1, want_max = TXN_TOPICS_MAX;
	else if (strcmp(verb, "list") != 0 && strcmp(verb, "abort") != 0)
		return cli_usage(
			cli, "txn",
			"unknown verb \"%s\"; use list, describe, producers, find-hanging or abort",
			verb);
	if (rest < want_min || rest > want_max)
		return cli_usage(cli, "txn", "wrong number of arguments for txn %s", verb);
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	if (strcmp(verb, "list") == 0)
		rc = txn_list(cli, admin);
	else if (strcmp(verb, "describe") == 0)
		rc = txn_describe(cli, admin, args[0]);
	else if (strcmp(verb, "producers") == 0)
		rc = txn_producers(cli, admin, args, rest, &o);
	else if (strcmp(verb, "find-hanging") == 0)
		rc = txn_find_hanging(cli, admin, args, rest, &o);
	else
		rc = txn_abort(cli, admin, &o);
	tl_admin_destroy(admin);
	return rc;
}
