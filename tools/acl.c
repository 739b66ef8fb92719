/* acl.c - `tally acl add|list|remove`: ACLs (CreateAcls, DescribeAcls, DeleteAcls) with
 * kafka-acls.sh's flags: --allow-principal/--deny-principal, --allow-host/--deny-host,
 * --operation, --topic/--group/--transactional-id/--cluster, --resource-pattern-type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

#define ACL_LIST_MAX 32 /* of each repeatable flag */
#define MAX1(n)      ((n) > 1 ? (n) : 1)

enum {
	OPT_ALLOW_PRINCIPAL = CLI_OPT_FIRST_LOCAL,
	OPT_DENY_PRINCIPAL,
	OPT_ALLOW_HOST,
	OPT_DENY_HOST,
	OPT_OPERATION,
	OPT_TOPIC,
	OPT_GROUP,
	OPT_TXN_ID,
	OPT_CLUSTER,
	OPT_PATTERN,
	OPT_PRINCIPAL,
	OPT_FORCE,
};

struct name_list {
	const char *items[ACL_LIST_MAX];
	int count;
};

struct resource {
	int8_t type;
	const char *name;
};

struct acl_args {
	struct name_list allow_principals, deny_principals, allow_hosts, deny_hosts;
	struct name_list principals; /* list: filter */
	int8_t ops[ACL_LIST_MAX];
	int op_count;
	struct resource resources[ACL_LIST_MAX];
	int resource_count;
	int8_t pattern; /* 0: not given */
	const char *bad;
};

static const char *const type_names[] = {"Unknown", "Any",     "Topic",
					 "Group",   "Cluster", "TransactionalId"};
static const char *const pattern_names[] = {"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"};
static const char *const op_names[] = {
	"Unknown",         "Any",   "All",      "Read",          "Write",           "Create",
	"Delete",          "Alter", "Describe", "ClusterAction", "DescribeConfigs", "AlterConfigs",
	"IdempotentWrite",
};

#define NAME_OF(table, v)                                                                          \
	((v) >= 0 && (size_t)(v) < sizeof(table) / sizeof(table[0]) ? table[v] : "Unknown")

/* Kafka's spellings and kafka-acls.sh's: "Read", "read", "DESCRIBE_CONFIGS". */
static bool same_name(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_' || *a == '-')
			a++;
		while (*b == '_' || *b == '-')
			b++;
		if (!*a || !*b)
			return *a == *b;
		if ((*a | 32) != (*b | 32))
			return false;
		a++, b++;
	}
}

static int8_t find_name(const char *const *table, int n, int first, const char *name)
{
	for (int i = first; i < n; i++)
		if (same_name(table[i], name))
			return (int8_t)i;
	return -1;
}

static void list_add(struct acl_args *a, struct name_list *list, const char *v)
{
	if (list->count == ACL_LIST_MAX)
		a->bad = "too many values of one flag";
	else
		list->items[list->count++] = v;
}

static void resource_add(struct acl_args *a, int8_t type, const char *name)
{
	if (a->resource_count == ACL_LIST_MAX) {
		a->bad = "too many resources";
		return;
	}
	a->resources[a->resource_count++] = (struct resource){type, name};
}

static int acl_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct acl_args *a = ctx;
	switch (opt) {
	case OPT_ALLOW_PRINCIPAL:
		list_add(a, &a->allow_principals, arg);
		return 0;
	case OPT_DENY_PRINCIPAL:
		list_add(a, &a->deny_principals, arg);
		return 0;
	case OPT_ALLOW_HOST:
		list_add(a, &a->allow_hosts, arg);
		return 0;
	case OPT_DENY_HOST:
		list_add(a, &a->deny_hosts, arg);
		return 0;
	case OPT_PRINCIPAL:
		list_add(a, &a->principals, arg);
		return 0;
	case OPT_OPERATION: {
		int8_t op =
			find_name(op_names, (int)(sizeof(op_names) / sizeof(op_names[0])), 2, arg);
		if (op < 0)
			return cli_usage(cli, "acl",
					 "unknown operation \"%s\"; one of All, Read, Write, "
					 "Create, Delete, Alter, Describe, ClusterAction, "
					 "DescribeConfigs, AlterConfigs, IdempotentWrite",
					 arg);
		if (a->op_count == ACL_LIST_MAX)
			return cli_usage(cli, "acl", "too many operations");
		a->ops[a->op_count++] = op;
		return 0;
	}
	case OPT_TOPIC:
		resource_add(a, TL_ADMIN_ACL_TOPIC, arg);
		return 0;
	case OPT_GROUP:
		resource_add(a, TL_ADMIN_ACL_GROUP, arg);
		return 0;
	case OPT_TXN_ID:
		resource_add(a, TL_ADMIN_ACL_TRANSACTIONAL_ID, arg);
		return 0;
	case OPT_CLUSTER:
		resource_add(a, TL_ADMIN_ACL_CLUSTER, "kafka-cluster");
		return 0;
	case OPT_PATTERN: {
		int8_t p = find_name(pattern_names, 5, 1, arg);
		if (p < 0)
			return cli_usage(cli, "acl",
					 "--resource-pattern-type is literal, prefixed, any or "
					 "match, not \"%s\"",
					 arg);
		a->pattern = p;
		return 0;
	}
	case OPT_FORCE:
		return 0;
	default:
		return cli_usage(cli, "acl", "unexpected option");
	}
}

static void acl_print(const struct cli *cli, const struct tl_admin_acls *acls)
{
	if (cli->format == CLI_FORMAT_TEXT) {
		static const char *const headers[] = {
			"PRINCIPAL",     "HOST",          "OPERATION", "PERMISSION",
			"RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN"};
		struct cli_table *table = cli_table_create(7, headers);
		for (int32_t i = 0; i < acls->count; i++) {
			const struct tl_admin_acl *x = &acls->acls[i];
			cli_table_cell(table, "%s", x->principal ? x->principal : "");
			cli_table_cell(table, "%s", x->host ? x->host : "");
			cli_table_cell(table, "%s", NAME_OF(op_names, x->operation));
			cli_table_cell(table, "%s",
				       x->permission == TL_ADMIN_ACL_ALLOW ? "ALLOW" : "DENY");
			cli_table_cell(table, "%s", NAME_OF(type_names, x->resource_type));
			cli_table_cell(table, "%s", x->resource_name ? x->resource_name : "");
			cli_table_cell(table, "%s", NAME_OF(pattern_names, x->pattern_type));
		}
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
		return;
	}
	struct cli_node *root = cli_node_array();
	for (int32_t i = 0; i < acls->count; i++) {
		const struct tl_admin_acl *x = &acls->acls[i];
		struct cli_node *o = cli_add_object(root, NULL);
		cli_add_str(o, "principal", x->principal);
		cli_add_str(o, "host", x->host);
		cli_add_str(o, "operation", NAME_OF(op_names, x->operation));
		cli_add_str(o, "permission",
			    x->permission == TL_ADMIN_ACL_ALLOW ? "ALLOW" : "DENY");
		cli_add_str(o, "resource_type", NAME_OF(type_names, x->resource_type));
		cli_add_str(o, "resource_name", x->resource_name);
		cli_add_str(o, "pattern_type", NAME_OF(pattern_names, x->pattern_type));
	}
	cli_node_print(cli, root, stdout);
	cli_node_destroy(root);
}

static int acl_add(struct cli *cli, struct tl_admin *admin, const struct acl_args *a)
{
	int total = a->resource_count *
		    (a->allow_principals.count * MAX1(a->allow_hosts.count) +
		     a->deny_principals.count * MAX1(a->deny_hosts.count)) *
		    MAX1(a->op_count);
	struct tl_admin_acl *acls = calloc((size_t)MAX1(total), sizeof(*acls));
	if (!acls) {
		cli_error(cli, "out of memory");
		return CLI_EXIT_ERROR;
	}
	int n = 0;
	for (int r = 0; r < a->resource_count; r++)
		for (int allow = 1; allow >= 0; allow--) {
			const struct name_list *ps =
				allow ? &a->allow_principals : &a->deny_principals;
			const struct name_list *hs = allow ? &a->allow_hosts : &a->deny_hosts;
			for (int p = 0; p < ps->count; p++)
				for (int h = 0; h < MAX1(hs->count); h++)
					for (int o = 0; o < MAX1(a->op_count); o++)
						acls[n++] = (struct tl_admin_acl){
							.resource_type = a->resources[r].type,
							.resource_name = a->resources[r].name,
							.pattern_type =
								a->pattern ? a->pattern
									   : TL_ADMIN_ACL_LITERAL,
							.principal = ps->items[p],
							.host = hs->count ? hs->items[h] : "*",
							.operation = a->op_count ? a->ops[o] : 2,
							.permission = allow ? TL_ADMIN_ACL_ALLOW
									    : TL_ADMIN_ACL_DENY,
						};
		}
	tl_err err = tl_admin_create_acls(admin, acls, n, cli->timeout_ms);
	free(acls);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "CreateAcls");
	cli_info(cli, "added %d ACL%s", n, n == 1 ? "" : "s");
	return CLI_EXIT_OK;
}

/* The filter of resource @r (NULL: any) for list and remove. */
static struct tl_admin_acl filter_of(const struct acl_args *a, const struct resource *r,
				     int8_t default_pattern)
{
	return (struct tl_admin_acl){
		.resource_type = r ? r->type : TL_ADMIN_ACL_ANY,
		.resource_name = r ? r->name : NULL,
		.pattern_type = a->pattern ? a->pattern : default_pattern,
		.principal = NULL,
		.host = NULL,
		.operation = TL_ADMIN_ACL_ANY,
		.permission = TL_ADMIN_ACL_ANY,
	};
}

static int acl_list(struct cli *cli, struct tl_admin *admin, const struct acl_args *a)
{
	int resources = MAX1(a->resource_count);
	int principals = MAX1(a->principals.count);
	struct tl_admin_acl *all = NULL;
	int32_t count = 0;
	struct tl_admin_acls **results = calloc((size_t)(resources * principals), sizeof(*results));
	int rc = CLI_EXIT_OK;
	for (int r = 0; r < resources && rc == CLI_EXIT_OK; r++)
		for (int p = 0; p < principals && rc == CLI_EXIT_OK; p++) {
			struct tl_admin_acl f =
				filter_of(a, a->resource_count ? &a->resources[r] : NULL,
					  a->resource_count ? TL_ADMIN_ACL_LITERAL
							    : TL_ADMIN_ACL_PATTERN_ANY);
			f.principal = a->principals.count ? a->principals.items[p] : NULL;
			tl_err err = tl_admin_describe_acls(admin, &f, &results[r * principals + p],
							    cli->timeout_ms);
			if (err != TL_OK)
				rc = cli_admin_fail(cli, admin, err, "DescribeAcls");
			else
				count += results[r * principals + p]->count;
		}
	if (rc == CLI_EXIT_OK) {
		all = calloc((size_t)MAX1(count), sizeof(*all));
		int32_t n = 0;
		for (int i = 0; i < resources * principals && all; i++)
			for (int32_t j = 0; j < results[i]->count; j++)
				all[n++] = results[i]->acls[j];
		struct tl_admin_acls view = {n, all};
		acl_print(cli, &view);
	}
	for (int i = 0; i < resources * principals; i++)
		if (results[i])
			tl_admin_acls_destroy(results[i]);
	free(results);
	free(all);
	return rc;
}

static int acl_remove(struct cli *cli, struct tl_admin *admin, const struct acl_args *a)
{
	int removed = 0;
	for (int r = 0; r < a->resource_count; r++) {
		/* Without principals or operations: every ACL of the resource. */
		int ps = a->allow_principals.count + a->deny_principals.count;
		for (int p = 0; p < MAX1(ps); p++)
			for (int o = 0; o < MAX1(a->op_count); o++) {
				struct tl_admin_acl f =
					filter_of(a, &a->resources[r], TL_ADMIN_ACL_LITERAL);
				if (ps > 0) {
					bool allow = p < a->allow_principals.count;
					f.principal =
						allow ? a->allow_principals.items[p]
						      : a->deny_principals
								.items[p -
								       a->allow_principals.count];
					f.permission =
						allow ? TL_ADMIN_ACL_ALLOW : TL_ADMIN_ACL_DENY;
				}
				if (a->op_count)
					f.operation = a->ops[o];
				struct tl_admin_acls *gone;
				tl_err err =
					tl_admin_delete_acls(admin, &f, &gone, cli->timeout_ms);
				if (err != TL_OK)
					return cli_admin_fail(cli, admin, err, "DeleteAcls");
				removed += gone->count;
				tl_admin_acls_destroy(gone);
			}
	}
	cli_info(cli, "removed %d ACL%s", removed, removed == 1 ? "" : "s");
	if (removed == 0) {
		cli_error(cli, "no ACL matched");
		return CLI_EXIT_NOT_FOUND;
	}
	return CLI_EXIT_OK;
}

int cli_acl(struct cli *cli, int argc, char **argv)
{
	const char *verb = argc >= 2 ? argv[1] : "";
	bool add = strcmp(verb, "add") == 0, list = strcmp(verb, "list") == 0;
	bool remove = strcmp(verb, "remove") == 0;
	if (!add && !list && !remove)
		return cli_usage(cli, "acl", "acl wants a verb: add, list, remove");
	static const struct option opts[] = {
		CLI_GLOBAL_LONG_OPTS,
		{"allow-principal", required_argument, NULL, OPT_ALLOW_PRINCIPAL},
		{"deny-principal", required_argument, NULL, OPT_DENY_PRINCIPAL},
		{"allow-host", required_argument, NULL, OPT_ALLOW_HOST},
		{"deny-host", required_argument, NULL, OPT_DENY_HOST},
		{"operation", required_argument, NULL, OPT_OPERATION},
		{"topic", required_argument, NULL, OPT_TOPIC},
		{"group", required_argument, NULL, OPT_GROUP},
		{"transactional-id", required_argument, NULL, OPT_TXN_ID},
		{"cluster", no_argument, NULL, OPT_CLUSTER},
		{"resource-pattern-type", required_argument, NULL, OPT_PATTERN},
		{"principal", required_argument, NULL, OPT_PRINCIPAL},
		{"force", no_argument, NULL, OPT_FORCE},
		{NULL, 0, NULL, 0},
	};
	struct acl_args a;
	memset(&a, 0, sizeof(a));
	int rc;
	int first = cli_parse_options(cli, "acl", argc - 1, argv + 1, CLI_GLOBAL_SHORT, opts,
				      acl_option, &a, &rc);
	if (first < 0)
		return rc;
	if (a.bad)
		return cli_usage(cli, "acl", "%s (at most %d)", a.bad, ACL_LIST_MAX);
	if (argc - 1 - first > 0)
		return cli_usage(cli, "acl", "unexpected argument \"%s\"", argv[1 + first]);
	if (!list && a.resource_count == 0)
		return cli_usage(cli, "acl",
				 "acl %s needs a resource: --topic, --group, "
				 "--transactional-id or --cluster",
				 verb);
	if (add && a.allow_principals.count + a.deny_principals.count == 0)
		return cli_usage(cli, "acl",
				 "acl add needs --allow-principal or --deny-principal, e.g. "
				 "User:alice");
	if (add &&
	    (a.pattern == TL_ADMIN_ACL_PATTERN_ANY || a.pattern == TL_ADMIN_ACL_PATTERN_MATCH))
		return cli_usage(cli, "acl",
				 "acl add takes --resource-pattern-type literal or "
				 "prefixed");
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	rc = add    ? acl_add(cli, admin, &a)
	     : list ? acl_list(cli, admin, &a)
		    : acl_remove(cli, admin, &a);
	tl_admin_destroy(admin);
	return rc;
}
