/* group.c - `tally group list|describe|seek|delete`: consumer groups through the admin
 * client (ListGroups, DescribeGroups, OffsetFetch, ListOffsets, OffsetCommit,
 * DeleteGroups). Lag is the partition's end offset (high watermark) minus the group's
 * committed offset, as Kafka's kafka-consumer-groups computes it. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define SEEK_TOPICS_MAX 64

struct group_opts {
	struct cli_offset_spec spec;
	bool spec_set;
	bool shift_set;
	int64_t shift;
	bool execute;
	const char *topics[SEEK_TOPICS_MAX]; /* "topic" or "topic:0,2-3" */
	int32_t topic_count;
};

enum {
	OPT_EXECUTE = CLI_OPT_FIRST_LOCAL,
	OPT_SHIFT,
};

static int group_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct group_opts *o = ctx;
	char why[512];
	switch (opt) {
	case 'o':
		if (!cli_offset_spec_parse(arg, &o->spec, why, sizeof(why)))
			return cli_usage(cli, "group", "%s", why);
		if (o->spec.has_stop)
			return cli_usage(cli, "group", "seek takes one position, not a range");
		o->spec_set = true;
		return 0;
	case 't':
		if (o->topic_count == SEEK_TOPICS_MAX)
			return cli_usage(cli, "group", "at most %d --topic options",
					 SEEK_TOPICS_MAX);
		o->topics[o->topic_count++] = arg;
		return 0;
	case OPT_SHIFT:
		if (!cli_parse_int64(arg, &o->shift))
			return cli_usage(cli, "group", "--shift wants a signed number, not \"%s\"",
					 arg);
		o->shift_set = true;
		return 0;
	case OPT_EXECUTE:
		o->execute = true;
		return 0;
	default:
		return cli_usage(cli, "group", "unexpected option");
	}
}

/* ---- list ---- */

static int group_list(struct cli *cli, struct tl_admin *admin)
{
	struct tl_admin_groups *groups;
	tl_err err = tl_admin_list_groups(admin, &groups, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "list groups");
	if (cli->format != CLI_FORMAT_TEXT) {
		struct cli_node *doc = cli_node_array();
		for (int32_t i = 0; i < groups->count; i++) {
			struct cli_node *n = cli_add_object(doc, NULL);
			cli_add_str(n, "group", groups->groups[i].group_id);
			cli_add_str(n, "protocol_type", groups->groups[i].protocol_type);
			cli_add_str(n, "state", groups->groups[i].state);
		}
		cli_node_print(cli, doc, stdout);
		cli_node_destroy(doc);
	} else {
		static const char *const headers[] = {"GROUP", "TYPE", "STATE"};
		struct cli_table *table = cli_table_create(3, headers);
		for (int32_t i = 0; i < groups->count; i++) {
			const struct tl_admin_group_listing *g = &groups->groups[i];
			cli_table_cell(table, "%s", g->group_id);
			cli_table_cell(table, "%s", g->protocol_type[0] ? g->protocol_type : "-");
			cli_table_cell(table, "%s", g->state[0] ? g->state : "-");
		}
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
	}
	tl_admin_groups_destroy(groups);
	return CLI_EXIT_OK;
}

/* ---- describe ---- */

/* One partition row of describe: committed offset, end, lag, owner. */
struct lag_row {
	const char *topic;
	int32_t partition;
	int64_t committed; /* -1 none */
	int64_t end;       /* -1 unknown */
	const char *owner; /* member id, NULL */
	const char *client;
};

static int lag_row_cmp(const void *a, const void *b)
{
	const struct lag_row *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	return c ? c : (x->partition < y->partition ? -1 : x->partition > y->partition);
}

static struct lag_row *row_find(struct lag_row *rows, int32_t n, const char *topic, int32_t p)
{
	for (int32_t i = 0; i < n; i++)
		if (rows[i].partition == p && strcmp(rows[i].topic, topic) == 0)
			return &rows[i];
	return NULL;
}

/* Rows for every committed or assigned partition, with end offsets. */
static struct lag_row *lag_rows(struct tl_admin *admin, const struct tl_admin_group_description *g,
				const struct tl_admin_group_offsets *offsets, int timeout_ms,
				int32_t *count_out)
{
	int32_t cap = offsets->count;
	for (int32_t m = 0; m < g->member_count; m++)
		cap += g->members[m].assignment_count;
	struct lag_row *rows = calloc((size_t)cap + 1, sizeof(*rows));
	if (!rows)
		return NULL;
	int32_t n = 0;
	for (int32_t i = 0; i < offsets->count; i++) {
		const struct tl_admin_committed_offset *c = &offsets->offsets[i];
		rows[n++] = (struct lag_row){c->topic, c->partition, c->offset, -1, NULL, NULL};
	}
	for (int32_t m = 0; m < g->member_count; m++) {
		const struct tl_admin_group_member *mem = &g->members[m];
		for (int32_t a = 0; a < mem->assignment_count; a++) {
			const struct tl_admin_topic_partition *tp = &mem->assignment[a];
			struct lag_row *r = row_find(rows, n, tp->topic, tp->partition);
			if (!r) {
				r = &rows[n++];
				*r = (struct lag_row){tp->topic, tp->partition, -1, -1, NULL, NULL};
			}
			r->owner = mem->member_id;
			r->client = mem->client_id;
		}
	}
	qsort(rows, (size_t)n, sizeof(*rows), lag_row_cmp);
	struct tl_admin_offset_query *q = calloc((size_t)n + 1, sizeof(*q));
	for (int32_t i = 0; q && i < n; i++) {
		q[i].topic = rows[i].topic;
		q[i].partition = rows[i].partition;
		q[i].timestamp = TL_ADMIN_OFFSET_LATEST;
	}
	if (q && n > 0 && tl_admin_list_offsets(admin, q, n, 0, timeout_ms) == TL_OK)
		for (int32_t i = 0; i < n; i++)
			rows[i].end = q[i].err == TL_OK ? q[i].offset : -1;
	free(q);
	*count_out = n;
	return rows;
}

static int64_t row_lag(const struct lag_row *r)
{
	return r->committed >= 0 && r->end >= 0
		       ? (r->end > r->committed ? r->end - r->committed : 0)
		       : -1;
}

static void describe_json(struct cli *cli, const struct tl_admin_group_description *g,
			  const struct lag_row *rows, int32_t n)
{
	struct cli_node *doc = cli_node_object();
	cli_add_str(doc, "group", g->group_id);
	cli_add_str(doc, "state", g->state);
	cli_add_str(doc, "protocol_type", g->protocol_type);
	cli_add_str(doc, "protocol", g->protocol);
	cli_add_int(doc, "coordinator", g->coordinator_id);
	struct cli_node *members = cli_add_array(doc, "members");
	for (int32_t m = 0; m < g->member_count; m++) {
		const struct tl_admin_group_member *mem = &g->members[m];
		struct cli_node *mn = cli_add_object(members, NULL);
		cli_add_str(mn, "member_id", mem->member_id);
		cli_add_str(mn, "group_instance_id", mem->group_instance_id);
		cli_add_str(mn, "client_id", mem->client_id);
		cli_add_str(mn, "client_host", mem->client_host);
		struct cli_node *as = cli_add_array(mn, "assignment");
		for (int32_t a = 0; a < mem->assignment_count; a++) {
			struct cli_node *tp = cli_add_object(as, NULL);
			cli_add_str(tp, "topic", mem->assignment[a].topic);
			cli_add_int(tp, "partition", mem->assignment[a].partition);
		}
	}
	struct cli_node *offsets = cli_add_array(doc, "offsets");
	int64_t total = 0;
	for (int32_t i = 0; i < n; i++) {
		struct cli_node *o = cli_add_object(offsets, NULL);
		cli_add_str(o, "topic", rows[i].topic);
		cli_add_int(o, "partition", rows[i].partition);
		cli_add_int(o, "committed", rows[i].committed);
		cli_add_int(o, "end", rows[i].end);
		cli_add_int(o, "lag", row_lag(&rows[i]));
		cli_add_str(o, "member_id", rows[i].owner);
		total += row_lag(&rows[i]) > 0 ? row_lag(&rows[i]) : 0;
	}
	cli_add_int(doc, "total_lag", total);
	cli_node_print(cli, doc, stdout);
	cli_node_destroy(doc);
}

/* "topic:0,1 other:2" into @buf. */
static void assignment_text(const struct tl_admin_group_member *mem, char *buf, size_t size)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int32_t a = 0; a < mem->assignment_count && at + 64 < size; a++) {
		const struct tl_admin_topic_partition *tp = &mem->assignment[a];
		bool same = a > 0 && strcmp(mem->assignment[a - 1].topic, tp->topic) == 0;
		if (same)
			at += (size_t)snprintf(buf + at, size - at, ",%d", tp->partition);
		else
			at += (size_t)snprintf(buf + at, size - at, "%s%s:%d", a ? " " : "",
					       tp->topic, tp->partition);
	}
	if (mem->assignment_count == 0)
		snprintf(buf, size, "-");
}

static void describe_text(struct cli *cli, const struct tl_admin_group_description *g,
			  const struct lag_row *rows, int32_t n)
{
	int64_t total = 0;
	for (int32_t i = 0; i < n; i++)
		total += row_lag(&rows[i]) > 0 ? row_lag(&rows[i]) : 0;
	printf("group:        %s\nstate:        %s\nprotocol:     %s%s%s\ncoordinator:  %d\nmembers:      %d\ntotal lag:    %lld\n\n",
	       g->group_id, g->state, g->protocol_type[0] ? g->protocol_type : "-",
	       g->protocol[0] ? "/" : "", g->protocol, g->coordinator_id, g->member_count,
	       (long long)total);
	if (g->member_count > 0) {
		static const char *const mh[] = {"MEMBER", "INSTANCE", "CLIENT", "HOST",
						 "ASSIGNMENT"};
		struct cli_table *mt = cli_table_create(5, mh);
		for (int32_t m = 0; m < g->member_count; m++) {
			const struct tl_admin_group_member *mem = &g->members[m];
			char assignment[1024];
			assignment_text(mem, assignment, sizeof(assignment));
			cli_table_cell(mt, "%s", mem->member_id);
			cli_table_cell(mt, "%s",
				       mem->group_instance_id ? mem->group_instance_id : "-");
			cli_table_cell(mt, "%s", mem->client_id);
			cli_table_cell(mt, "%s", mem->client_host);
			cli_table_cell(mt, "%s", assignment);
		}
		cli_table_print(cli, mt, stdout);
		cli_table_destroy(mt);
		fputc('\n', stdout);
	}
	static const char *const oh[] = {"TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "CLIENT"};
	struct cli_table *ot = cli_table_create(6, oh);
	for (int32_t i = 0; i < n; i++) {
		const struct lag_row *r = &rows[i];
		cli_table_cell(ot, "%s", r->topic);
		cli_table_cell(ot, "%d", r->partition);
		if (r->committed >= 0)
			cli_table_cell(ot, "%lld", (long long)r->committed);
		else
			cli_table_cell(ot, "-");
		if (r->end >= 0)
			cli_table_cell(ot, "%lld", (long long)r->end);
		else
			cli_table_cell(ot, "-");
		if (row_lag(r) >= 0)
			cli_table_cell(ot, "%lld", (long long)row_lag(r));
		else
			cli_table_cell(ot, "-");
		cli_table_cell(ot, "%s", r->client ? r->client : "-");
	}
	cli_table_print(cli, ot, stdout);
	cli_table_destroy(ot);
}

/* Describes @group and fetches its offsets; exit 3 when the group does not exist. */
static int group_fetch(struct cli *cli, struct tl_admin *admin, const char *group,
		       struct tl_admin_group_description **g_out,
		       struct tl_admin_group_offsets **offsets_out)
{
	tl_err err = tl_admin_describe_group(admin, group, g_out, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "describe group");
	err = tl_admin_list_group_offsets(admin, group, offsets_out, cli->timeout_ms);
	if (err != TL_OK) {
		tl_admin_group_description_destroy(*g_out);
		return cli_admin_fail(cli, admin, err, "group offsets");
	}
	const struct tl_admin_group_description *g = *g_out;
	bool gone = g->err == TL_ERR_GROUP_ID_NOT_FOUND ||
		    (strcmp(g->state, "Dead") == 0 && g->member_count == 0);
	if (gone && (*offsets_out)->count == 0) {
		cli_error(cli, "group \"%s\" does not exist; `tally group list` shows the groups",
			  group);
		tl_admin_group_description_destroy(*g_out);
		tl_admin_group_offsets_destroy(*offsets_out);
		return CLI_EXIT_NOT_FOUND;
	}
	if (g->err != TL_OK && g->err != TL_ERR_GROUP_ID_NOT_FOUND) {
		cli_error(cli, "describe group %s: %s", group, tl_err_message(g->err));
		tl_admin_group_description_destroy(*g_out);
		tl_admin_group_offsets_destroy(*offsets_out);
		return cli_exit_for(g->err);
	}
	return CLI_EXIT_OK;
}

static int group_describe(struct cli *cli, struct tl_admin *admin, const char *group)
{
	struct tl_admin_group_description *g;
	struct tl_admin_group_offsets *offsets;
	int rc = group_fetch(cli, admin, group, &g, &offsets);
	if (rc != CLI_EXIT_OK)
		return rc;
	int32_t n = 0;
	struct lag_row *rows = lag_rows(admin, g, offsets, cli->timeout_ms, &n);
	if (cli->format != CLI_FORMAT_TEXT)
		describe_json(cli, g, rows, n);
	else
		describe_text(cli, g, rows, n);
	free(rows);
	tl_admin_group_description_destroy(g);
	tl_admin_group_offsets_destroy(offsets);
	return CLI_EXIT_OK;
}

/* ---- seek ---- */

struct seek_row {
	const char *topic;
	int32_t partition;
	int64_t current; /* -1 none */
	int64_t target;
	tl_err err;
};

/* The partitions to move: -t topics (all or listed partitions), else the committed ones. */
static int seek_rows(struct cli *cli, struct tl_admin *admin, const struct group_opts *o,
		     const struct tl_admin_group_offsets *offsets, struct seek_row **out,
		     int32_t *count_out, char ***names_out)
{
	int32_t cap = offsets->count, n = 0;
	struct tl_admin_topics *topics = NULL;
	char **names = calloc((size_t)o->topic_count + 1, sizeof(*names));
	if (!names)
		return CLI_EXIT_ERROR;
	*names_out = names;
	if (o->topic_count > 0) {
		for (int32_t i = 0; i < o->topic_count; i++) {
			const char *colon = strchr(o->topics[i], ':');
			names[i] = colon ? strndup(o->topics[i], (size_t)(colon - o->topics[i]))
					 : strdup(o->topics[i]);
		}
		int rc = cli_describe_topics(cli, admin, (const char *const *)names, o->topic_count,
					     false, NULL, &topics);
		if (rc != CLI_EXIT_OK)
			return rc;
		cap = 0;
		for (int32_t i = 0; i < topics->count; i++)
			cap += topics->topics[i].partition_count;
	}
	struct seek_row *rows = calloc((size_t)cap + 1, sizeof(*rows));
	if (!rows) {
		tl_admin_topics_destroy(topics);
		return CLI_EXIT_ERROR;
	}
	if (!topics) {
		for (int32_t i = 0; i < offsets->count; i++)
			rows[n++] = (struct seek_row){offsets->offsets[i].topic,
						      offsets->offsets[i].partition,
						      offsets->offsets[i].offset, -1, TL_OK};
	}
	for (int32_t i = 0; topics && i < topics->count; i++) {
		const char *colon = strchr(o->topics[i], ':');
		for (int32_t p = 0; p < topics->topics[i].partition_count; p++) {
			if (colon) {
				bool listed = false;
				for (const char *s = colon + 1; *s;) {
					char *end;
					long a = strtol(s, &end, 10), b = a;
					if (end == s)
						break;
					if (*end == '-')
						b = strtol(end + 1, &end, 10);
					listed |= p >= a && p <= b;
					s = *end == ',' ? end + 1 : end;
					if (*end != ',' && *end)
						break;
				}
				if (!listed)
					continue;
			}
			int64_t current = -1;
			for (int32_t k = 0; k < offsets->count; k++)
				if (offsets->offsets[k].partition == p &&
				    strcmp(offsets->offsets[k].topic, names[i]) == 0)
					current = offsets->offsets[k].offset;
			rows[n++] = (struct seek_row){names[i], p, current, -1, TL_OK};
		}
	}
	tl_admin_topics_destroy(topics);
	*out = rows;
	*count_out = n;
	return CLI_EXIT_OK;
}

/* Computes each row's target from the spec (clamped to [earliest, latest]). */
static int seek_targets(struct cli *cli, struct tl_admin *admin, const struct group_opts *o,
			struct seek_row *rows, int32_t n)
{
	struct tl_admin_offset_query *q = calloc((size_t)n * 3 + 1, sizeof(*q));
	if (!q)
		return CLI_EXIT_ERROR;
	bool by_time = o->spec_set && o->spec.start.kind == CLI_POS_TIME;
	int32_t per = by_time ? 3 : 2;
	for (int32_t i = 0; i < n; i++) {
		for (int32_t k = 0; k < per; k++) {
			q[i * per + k].topic = rows[i].topic;
			q[i * per + k].partition = rows[i].partition;
		}
		q[i * per].timestamp = TL_ADMIN_OFFSET_EARLIEST;
		q[i * per + 1].timestamp = TL_ADMIN_OFFSET_LATEST;
		if (by_time)
			q[i * per + 2].timestamp = o->spec.start.value;
	}
	tl_err err = tl_admin_list_offsets(admin, q, n * per, 0, cli->timeout_ms);
	if (err != TL_OK) {
		free(q);
		return cli_admin_fail(cli, admin, err, "ListOffsets");
	}
	for (int32_t i = 0; i < n; i++) {
		int64_t lo = q[i * per].offset, hi = q[i * per + 1].offset, t;
		rows[i].err = q[i * per].err != TL_OK ? q[i * per].err : q[i * per + 1].err;
		if (o->shift_set) {
			t = (rows[i].current >= 0 ? rows[i].current : hi) + o->shift;
		} else {
			switch (o->spec.start.kind) {
			case CLI_POS_BEGINNING:
				t = lo;
				break;
			case CLI_POS_OFFSET:
				t = o->spec.start.value;
				break;
			case CLI_POS_FROM_END:
				t = hi - o->spec.start.value;
				break;
			case CLI_POS_FROM_START:
				t = lo + o->spec.start.value;
				break;
			case CLI_POS_TIME:
				t = q[i * per + 2].offset >= 0 ? q[i * per + 2].offset : hi;
				break;
			case CLI_POS_END:
			case CLI_POS_DEFAULT:
			default:
				t = hi;
				break;
			}
		}
		rows[i].target = t < lo ? lo : t > hi ? hi : t;
	}
	free(q);
	return CLI_EXIT_OK;
}

static void seek_print(struct cli *cli, const struct seek_row *rows, int32_t n, bool executed)
{
	if (cli->format != CLI_FORMAT_TEXT) {
		struct cli_node *doc = cli_node_object();
		cli_add_bool(doc, "executed", executed);
		struct cli_node *arr = cli_add_array(doc, "partitions");
		for (int32_t i = 0; i < n; i++) {
			struct cli_node *r = cli_add_object(arr, NULL);
			cli_add_str(r, "topic", rows[i].topic);
			cli_add_int(r, "partition", rows[i].partition);
			cli_add_int(r, "current", rows[i].current);
			cli_add_int(r, "new", rows[i].target);
			if (rows[i].err != TL_OK)
				cli_add_str(r, "error", tl_err_message(rows[i].err));
		}
		cli_node_print(cli, doc, stdout);
		cli_node_destroy(doc);
		return;
	}
	static const char *const headers[] = {"TOPIC", "PARTITION", "CURRENT", "NEW", "STATUS"};
	struct cli_table *table = cli_table_create(5, headers);
	for (int32_t i = 0; i < n; i++) {
		cli_table_cell(table, "%s", rows[i].topic);
		cli_table_cell(table, "%d", rows[i].partition);
		if (rows[i].current >= 0)
			cli_table_cell(table, "%lld", (long long)rows[i].current);
		else
			cli_table_cell(table, "-");
		cli_table_cell(table, "%lld", (long long)rows[i].target);
		cli_table_cell(table, "%s",
			       rows[i].err != TL_OK ? tl_err_message(rows[i].err)
			       : executed           ? "moved"
						    : "planned");
	}
	cli_table_print(cli, table, stdout);
	cli_table_destroy(table);
}

static int seek_execute(struct cli *cli, struct tl_admin *admin, const char *group,
			const struct tl_admin_group_description *g, struct seek_row *rows,
			int32_t n)
{
	if (g->member_count > 0) {
		cli_error(
			cli,
			"group %s has %d active member%s; stop its consumers first (offsets of a live group belong to its members)",
			group, g->member_count, g->member_count == 1 ? "" : "s");
		return CLI_EXIT_ERROR;
	}
	struct tl_admin_offset_commit *commits = calloc((size_t)n, sizeof(*commits));
	if (!commits)
		return CLI_EXIT_ERROR;
	for (int32_t i = 0; i < n; i++) {
		commits[i].topic = rows[i].topic;
		commits[i].partition = rows[i].partition;
		commits[i].offset = rows[i].target;
	}
	tl_err err = tl_admin_commit_group_offsets(admin, group, commits, n, cli->timeout_ms);
	int failed = 0;
	for (int32_t i = 0; i < n; i++) {
		rows[i].err = commits[i].err;
		failed += commits[i].err != TL_OK;
	}
	free(commits);
	seek_print(cli, rows, n, true);
	if (err != TL_OK && failed == n)
		return cli_admin_fail(cli, admin, err, "commit offsets");
	return failed ? CLI_EXIT_PARTIAL : CLI_EXIT_OK;
}

static int group_seek(struct cli *cli, struct tl_admin *admin, const char *group,
		      const struct group_opts *o)
{
	if (!o->spec_set && !o->shift_set)
		return cli_usage(cli, "group", "seek needs -o SPEC or --shift N");
	if (o->spec_set && o->shift_set)
		return cli_usage(cli, "group", "use -o or --shift, not both");
	struct tl_admin_group_description *g;
	struct tl_admin_group_offsets *offsets;
	int rc = group_fetch(cli, admin, group, &g, &offsets);
	if (rc == CLI_EXIT_NOT_FOUND && o->topic_count > 0) {
		/* A group with no commits yet may get its first ones. */
		if (tl_admin_describe_group(admin, group, &g, cli->timeout_ms) != TL_OK ||
		    tl_admin_list_group_offsets(admin, group, &offsets, cli->timeout_ms) != TL_OK)
			return CLI_EXIT_NOT_FOUND;
		rc = CLI_EXIT_OK;
	}
	if (rc != CLI_EXIT_OK)
		return rc;
	struct seek_row *rows = NULL;
	char **names = NULL;
	int32_t n = 0;
	rc = seek_rows(cli, admin, o, offsets, &rows, &n, &names);
	if (rc == CLI_EXIT_OK && n == 0) {
		cli_error(cli, "group %s has no committed offsets; name topics with -t", group);
		rc = CLI_EXIT_NOT_FOUND;
	}
	if (rc == CLI_EXIT_OK)
		rc = seek_targets(cli, admin, o, rows, n);
	if (rc == CLI_EXIT_OK && !o->execute) {
		seek_print(cli, rows, n, false);
		cli_info(cli, "dry run: nothing changed; add --execute to move the offsets");
	} else if (rc == CLI_EXIT_OK) {
		rc = seek_execute(cli, admin, group, g, rows, n);
	}
	free(rows);
	for (int32_t i = 0; names && i < o->topic_count; i++)
		free(names[i]);
	free(names);
	tl_admin_group_description_destroy(g);
	tl_admin_group_offsets_destroy(offsets);
	return rc;
}

/* ---- delete and dispatch ---- */

static int group_delete(struct cli *cli, struct tl_admin *admin, const char *group)
{
	tl_err err = tl_admin_delete_group(admin, group, cli->timeout_ms);
	if (err == TL_ERR_GROUP_ID_NOT_FOUND) {
		cli_error(cli, "group \"%s\" does not exist", group);
		return CLI_EXIT_NOT_FOUND;
	}
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "delete group");
	cli_info(cli, "deleted group %s", group);
	return CLI_EXIT_OK;
}

int cli_group(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(cli, "group", "group wants a verb: list, describe, seek, delete");
	const char *verb = argv[1];
	static const struct option opts[] = {
		{"offset", required_argument, NULL, 'o'},
		{"topic", required_argument, NULL, 't'},
		{"shift", required_argument, NULL, OPT_SHIFT},
		{"execute", no_argument, NULL, OPT_EXECUTE},
		CLI_GLOBAL_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	struct group_opts o;
	memset(&o, 0, sizeof(o));
	int rc;
	int first = cli_parse_options(cli, "group", argc - 1, argv + 1,
				      CLI_GLOBAL_SHORT "o:t:", opts, group_option, &o, &rc);
	if (first < 0)
		return rc;
	int rest = argc - 1 - first;
	char **args = argv + 1 + first;
	bool list = strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0;
	if (!list && strcmp(verb, "describe") != 0 && strcmp(verb, "seek") != 0 &&
	    strcmp(verb, "delete") != 0)
		return cli_usage(cli, "group",
				 "unknown verb \"%s\"; use list, describe, seek or delete", verb);
	if (list ? rest != 0 : rest != 1)
		return cli_usage(cli, "group",
				 list ? "group list takes no arguments"
				      : "group %s wants one group id",
				 verb);
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	if (list)
		rc = group_list(cli, admin);
	else if (strcmp(verb, "describe") == 0)
		rc = group_describe(cli, admin, args[0]);
	else if (strcmp(verb, "seek") == 0)
		rc = group_seek(cli, admin, args[0], &o);
	else
		rc = group_delete(cli, admin, args[0]);
	tl_admin_destroy(admin);
	return rc;
}
