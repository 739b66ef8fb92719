/* user.c - `tally user create|delete|list`: SCRAM credentials (KIP-554), as Kafka's
 * kafka-configs --entity-type users --alter --add-config 'SCRAM-SHA-512=[password=...]'
 * sets them. The password is salted here; only the salted password crosses the wire.
 * It comes from --password, else TALLY_USER_PASSWORD, else the first line of stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/scram.h"

enum {
	OPT_MECHANISM = CLI_OPT_FIRST_LOCAL,
	OPT_PASSWORD,
	OPT_ITERATIONS,
};

struct user_opts {
	const char *mechanism; /* NULL: SCRAM-SHA-512 (create), both (delete) */
	const char *password;
	long iterations;
};

static int user_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct user_opts *o = ctx;
	switch (opt) {
	case OPT_MECHANISM:
		o->mechanism = arg;
		return 0;
	case OPT_PASSWORD:
		o->password = arg;
		return 0;
	case OPT_ITERATIONS: {
		char *end;
		o->iterations = strtol(arg, &end, 10);
		if (*end || o->iterations < TL_SCRAM_ITERATIONS_MIN ||
		    o->iterations > TL_SCRAM_ITERATIONS_MAX)
			return cli_usage(cli, "user", "--iterations must be %d to %d",
					 TL_SCRAM_ITERATIONS_MIN, TL_SCRAM_ITERATIONS_MAX);
		return 0;
	}
	default:
		return cli_usage(cli, "user", "unexpected option");
	}
}

static const char *mechanism_text(int mechanism)
{
	return mechanism == TL_ADMIN_SCRAM_SHA_256   ? "SCRAM-SHA-256"
	       : mechanism == TL_ADMIN_SCRAM_SHA_512 ? "SCRAM-SHA-512"
						     : "unknown";
}

static int user_list(struct cli *cli, struct tl_admin *admin)
{
	struct tl_admin_scram_users *users;
	tl_err err = tl_admin_describe_scram_credentials(admin, &users, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "DescribeUserScramCredentials");
	if (cli->format == CLI_FORMAT_TEXT) {
		static const char *const headers[] = {"USER", "MECHANISM", "ITERATIONS"};
		struct cli_table *table = cli_table_create(3, headers);
		for (int32_t i = 0; i < users->count; i++)
			for (int32_t j = 0; j < users->users[i].credential_count; j++) {
				const struct tl_admin_scram_credential *c =
					&users->users[i].credentials[j];
				cli_table_cell(table, "%s", users->users[i].name);
				cli_table_cell(table, "%s", mechanism_text(c->mechanism));
				cli_table_cell(table, "%d", c->iterations);
			}
		cli_table_print(cli, table, stdout);
		cli_table_destroy(table);
	} else {
		struct cli_node *root = cli_node_array();
		for (int32_t i = 0; i < users->count; i++) {
			struct cli_node *o = cli_add_object(root, NULL);
			cli_add_str(o, "user", users->users[i].name);
			struct cli_node *creds = cli_add_object(o, "credentials");
			for (int32_t j = 0; j < users->users[i].credential_count; j++) {
				const struct tl_admin_scram_credential *c =
					&users->users[i].credentials[j];
				cli_add_int(creds, mechanism_text(c->mechanism), c->iterations);
			}
		}
		cli_node_print(cli, root, stdout);
		cli_node_destroy(root);
	}
	tl_admin_scram_users_destroy(users);
	return CLI_EXIT_OK;
}

int cli_user(struct cli *cli, int argc, char **argv)
{
	const char *verb = argc >= 2 ? argv[1] : "";
	bool create = strcmp(verb, "create") == 0, del = strcmp(verb, "delete") == 0;
	bool list = strcmp(verb, "list") == 0;
	if (!create && !del && !list)
		return cli_usage(cli, "user", "user wants a verb: create, delete, list");
	static const struct option opts[] = {
		CLI_GLOBAL_LONG_OPTS,
		{"mechanism", required_argument, NULL, OPT_MECHANISM},
		{"password", required_argument, NULL, OPT_PASSWORD},
		{"iterations", required_argument, NULL, OPT_ITERATIONS},
		{NULL, 0, NULL, 0},
	};
	struct user_opts o = {NULL, NULL, TL_SCRAM_ITERATIONS_MIN};
	int rc;
	int first = cli_parse_options(cli, "user", argc - 1, argv + 1, CLI_GLOBAL_SHORT, opts,
				      user_option, &o, &rc);
	if (first < 0)
		return rc;
	int rest = argc - 1 - first;
	char **args = argv + 1 + first;
	if (list ? rest != 0 : rest != 1)
		return cli_usage(cli, "user",
				 list ? "user list takes no arguments"
				      : "user %s wants one user name",
				 verb);
	int mechanisms[2] = {TL_ADMIN_SCRAM_SHA_512, TL_ADMIN_SCRAM_SHA_256};
	int mechanism_count = create ? 1 : 2;
	if (o.mechanism) {
		enum tl_scram_mechanism m = tl_scram_mechanism_of(o.mechanism, strlen(o.mechanism));
		if (m == TL_SCRAM_UNKNOWN)
			return cli_usage(cli, "user",
					 "--mechanism is SCRAM-SHA-256 or SCRAM-SHA-512, not %s",
					 o.mechanism);
		mechanisms[0] = (int)m;
		mechanism_count = 1;
	}
	char line[1024];
	if (create && !o.password)
		o.password = getenv("TALLY_USER_PASSWORD");
	if (create && !o.password) {
		if (!fgets(line, sizeof(line), stdin))
			return cli_usage(cli, "user",
					 "user create needs a password: --password, "
					 "TALLY_USER_PASSWORD or a line on stdin");
		line[strcspn(line, "\r\n")] = '\0';
		o.password = line;
	}
	if (create && !o.password[0])
		return cli_usage(cli, "user", "the password is empty");
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	if (list) {
		rc = user_list(cli, admin);
		tl_admin_destroy(admin);
		return rc;
	}
	const char *name = args[0];
	int deleted = 0;
	rc = CLI_EXIT_OK;
	for (int i = 0; i < mechanism_count && rc == CLI_EXIT_OK; i++) {
		tl_err err;
		if (create) {
			err = tl_admin_upsert_scram_credential(admin, name, mechanisms[i],
							       o.password, (int32_t)o.iterations,
							       cli->timeout_ms);
		} else {
			err = tl_admin_delete_scram_credential(admin, name, mechanisms[i],
							       cli->timeout_ms);
			if (err == TL_ERR_RESOURCE_NOT_FOUND && !o.mechanism)
				continue; /* the other mechanism may exist */
			deleted += err == TL_OK;
		}
		if (err != TL_OK)
			rc = cli_admin_fail(cli, admin, err, "AlterUserScramCredentials");
		else
			cli_info(cli, "%s %s credential of user %s", create ? "set" : "deleted",
				 mechanism_text(mechanisms[i]), name);
	}
	if (del && !o.mechanism && deleted == 0 && rc == CLI_EXIT_OK) {
		cli_error(cli, "user %s has no SCRAM credential", name);
		rc = CLI_EXIT_NOT_FOUND;
	}
	if (o.password == line)
		tl_scram_wipe(line, sizeof(line));
	tl_admin_destroy(admin);
	return rc;
}
