/* quota.c - `tally quota set|list|delete`: client quotas (KIP-546) as kafka-configs
 * --entity-type users/clients sets them. An entity is --user NAME or --user-default,
 * --client-id NAME or --client-id-default, or a user with a client id. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define QUOTA_VALUES_MAX 16

enum {
	OPT_USER = CLI_OPT_FIRST_LOCAL,
	OPT_USER_DEFAULT,
	OPT_CLIENT_ID,
	OPT_CLIENT_ID_DEFAULT,
};

static int quota_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct tl_admin_quota_entity *e = ctx;
	switch (opt) {
	case OPT_USER:
		e->user = arg;
		return 0;
	case OPT_USER_DEFAULT:
		e->user_default = true;
		return 0;
	case OPT_CLIENT_ID:
		e->client_id = arg;
		return 0;
	case OPT_CLIENT_ID_DEFAULT:
		e->client_id_default = true;
		return 0;
	default:
		return cli_usage(cli, "quota", "unexpected option");
	}
}

static const char *part_text(const char *name, bool is_default)
{
	if (is_default)
		return "<default>";
	return name ? name : "";
}

static int quota_list(struct cli *cli, struct tl_admin *admin)
{
	struct tl_admin_quotas *quotas;
	tl_err err = tl_admin_describe_client_quotas(admin, &quotas, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "DescribeClientQuotas");
	if (cli->format == CLI_FORMAT_TEXT) {
		static const char *const headers[] = {"USER", "CLIENT-ID", "KEY", "VALUE"};
		struct cli_table *table = cli_table_create(4, headers);
		for (int32_t i = 0; i < quotas->count; i++) {
			const struct tl_admin_quota_entry *q = &quotas->entries[i];
			for (int32_t j = 0; j < q->value_count; j++) {
				cli_table_cell(table, "%s",
					       part_text(q->entity.user, q->entity.user_default));
				cli_table_cell(table, "%s",
					       part_text(q->entity.client_id,
							 q->entity.client_id_default));
				cli_table_cell(table, "%s", q->values[j].key);
				cli_table_cell(table, "%.17g", q->values[j].value);
			}
		}
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
	} else {
		struct cli_node *root = cli_node_array();
		for (int32_t i = 0; i < quotas->count; i++) {
			const struct tl_admin_quota_entry *q = &quotas->entries[i];
			struct cli_node *o = cli_add_object(root, NULL);
			if (q->entity.user || q->entity.user_default)
				cli_add_str(o, "user", q->entity.user); /* null: <default> */
			if (q->entity.client_id || q->entity.client_id_default)
				cli_add_str(o, "client_id", q->entity.client_id);
			struct cli_node *values = cli_add_object(o, "values");
			for (int32_t j = 0; j < q->value_count; j++) {
				double v = q->values[j].value;
				if (v == floor(v) && fabs(v) < 9e15) {
					cli_add_int(values, q->values[j].key, (int64_t)v);
				} else {
					char text[64];
					snprintf(text, sizeof(text), "%.17g", v);
					cli_add_str(values, q->values[j].key, text);
				}
			}
		}
		cli_node_print(cli, root, stdout);
		cli_node_destroy(root);
	}
	tl_admin_quotas_destroy(quotas);
	return CLI_EXIT_OK;
}

/* KEY=VALUE (set) or KEY (delete) arguments into @values. */
static int quota_values(struct cli *cli, bool set, int argc, char **argv,
			struct tl_admin_quota_value *values, int32_t *count)
{
	*count = 0;
	for (int i = 0; i < argc; i++) {
		if (*count == QUOTA_VALUES_MAX)
			return cli_usage(cli, "quota", "at most %d keys at once", QUOTA_VALUES_MAX);
		struct tl_admin_quota_value *v = &values[(*count)++];
		memset(v, 0, sizeof(*v));
		v->key = argv[i];
		v->remove = !set;
		if (!set)
			continue;
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || !eq[1])
			return cli_usage(cli, "quota", "\"%s\" is not KEY=VALUE", argv[i]);
		*eq = '\0';
		char *end;
		errno = 0;
		v->value = strtod(eq + 1, &end);
		if (errno || *end)
			return cli_usage(cli, "quota", "\"%s\" is not a number", eq + 1);
	}
	return CLI_EXIT_OK;
}

int cli_quota(struct cli *cli, int argc, char **argv)
{
	const char *verb = argc >= 2 ? argv[1] : "";
	bool set = strcmp(verb, "set") == 0, del = strcmp(verb, "delete") == 0;
	bool list = strcmp(verb, "list") == 0;
	if (!set && !del && !list)
		return cli_usage(cli, "quota", "quota wants a verb: set, list, delete");
	static const struct option opts[] = {
		CLI_GLOBAL_LONG_OPTS,
		{"user", required_argument, NULL, OPT_USER},
		{"user-default", no_argument, NULL, OPT_USER_DEFAULT},
		{"client-id", required_argument, NULL, OPT_CLIENT_ID},
		{"client-id-default", no_argument, NULL, OPT_CLIENT_ID_DEFAULT},
		{NULL, 0, NULL, 0},
	};
	struct tl_admin_quota_entity entity = {0};
	int rc;
	int first = cli_parse_options(cli, "quota", argc - 1, argv + 1, CLI_GLOBAL_SHORT, opts,
				      quota_option, &entity, &rc);
	if (first < 0)
		return rc;
	int rest = argc - 1 - first;
	char **args = argv + 1 + first;
	bool has_user = entity.user || entity.user_default;
	bool has_client = entity.client_id || entity.client_id_default;
	if (list && (rest > 0 || has_user || has_client))
		return cli_usage(cli, "quota", "quota list takes no arguments");
	if (!list && !has_user && !has_client)
		return cli_usage(cli, "quota",
				 "quota %s needs an entity: --user NAME, --user-default, "
				 "--client-id NAME or --client-id-default",
				 verb);
	if ((entity.user && entity.user_default) || (entity.client_id && entity.client_id_default))
		return cli_usage(cli, "quota", "a name and its default cannot both be given");
	if (set && rest == 0)
		return cli_usage(cli, "quota",
				 "quota set needs KEY=VALUE, e.g. "
				 "producer_byte_rate=1048576");
	struct tl_admin_quota_value values[QUOTA_VALUES_MAX];
	int32_t count = 0;
	if (!list && (rc = quota_values(cli, set, rest, args, values, &count)) != CLI_EXIT_OK)
		return rc;
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	if (list) {
		rc = quota_list(cli, admin);
		tl_admin_destroy(admin);
		return rc;
	}
	struct tl_admin_quotas *quotas = NULL;
	if (del && count == 0) {
		/* Every key the entity has. */
		tl_err err = tl_admin_describe_client_quotas(admin, &quotas, cli->timeout_ms);
		if (err != TL_OK) {
			rc = cli_admin_fail(cli, admin, err, "DescribeClientQuotas");
			tl_admin_destroy(admin);
			return rc;
		}
		for (int32_t i = 0; i < quotas->count; i++) {
			const struct tl_admin_quota_entity *e = &quotas->entries[i].entity;
			bool same = e->user_default == entity.user_default &&
				    e->client_id_default == entity.client_id_default &&
				    !e->user == !entity.user &&
				    !e->client_id == !entity.client_id &&
				    (!e->user || strcmp(e->user, entity.user) == 0) &&
				    (!e->client_id || strcmp(e->client_id, entity.client_id) == 0);
			for (int32_t j = 0;
			     same && j < quotas->entries[i].value_count && count < QUOTA_VALUES_MAX;
			     j++)
				values[count++] = (struct tl_admin_quota_value){
					.key = quotas->entries[i].values[j].key, .remove = true};
		}
		if (count == 0) {
			cli_error(cli, "no quota is set for that entity");
			tl_admin_quotas_destroy(quotas);
			tl_admin_destroy(admin);
			return CLI_EXIT_NOT_FOUND;
		}
	}
	tl_err err = tl_admin_alter_client_quotas(admin, &entity, values, count, cli->timeout_ms);
	rc = err == TL_OK ? CLI_EXIT_OK : cli_admin_fail(cli, admin, err, "AlterClientQuotas");
	if (quotas)
		tl_admin_quotas_destroy(quotas);
	tl_admin_destroy(admin);
	return rc;
}
