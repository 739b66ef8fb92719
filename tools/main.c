/* main.c - `tally [global options] <noun> <verb> [options]`: global options, the noun
 * table, signals, and `tally help`. Each noun lives in its own file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

volatile sig_atomic_t cli_interrupted;

static void on_signal(int sig)
{
	if (cli_interrupted)
		_exit(CLI_EXIT_INTERRUPTED); /* a second ^C: stop now */
	cli_interrupted = sig;
}

static void signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a read of stdin returns EINTR so produce can stop. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed stdout (tail | head) shows up as EPIPE and ends the command cleanly. */
	signal(SIGPIPE, SIG_IGN);
}

/* ---- global options ---- */

bool cli_parse_int64(const char *s, int64_t *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool cli_parse_duration_ms(const char *s, int64_t *ms_out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return false;
	double scale;
	if (*end == '\0' || strcmp(end, "ms") == 0)
		scale = 1;
	else if (strcmp(end, "s") == 0)
		scale = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		scale = 60000;
	else if (strcmp(end, "h") == 0)
		scale = 3600000;
	else if (strcmp(end, "d") == 0)
		scale = 86400000;
	else
		return false;
	double ms = v * scale;
	if (ms > 9.2e18)
		return false;
	*ms_out = (int64_t)ms;
	return true;
}

int cli_global_option(struct cli *cli, int opt, const char *arg)
{
	switch (opt) {
	case 'b':
		cli->brokers = arg;
		return 0;
	case 'X': {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg)
			return cli_usage(cli, NULL, "-X wants key=value, got \"%s\"", arg);
		if (cli->conf_count == CLI_CONF_MAX)
			return cli_usage(cli, NULL, "at most %d -X options", CLI_CONF_MAX);
		char *key = strndup(arg, (size_t)(eq - arg));
		if (!key)
			return CLI_EXIT_ERROR;
		cli->conf[cli->conf_count].key = key;
		cli->conf[cli->conf_count].value = eq + 1;
		cli->conf_count++;
		return 0;
	}
	case 'q':
		cli->verbosity = -1;
		return 0;
	case 'v':
		cli->verbosity = cli->verbosity < 0 ? 1 : cli->verbosity + 1;
		return 0;
	case CLI_OPT_FORMAT:
		if (strcmp(arg, "text") == 0)
			cli->format = CLI_FORMAT_TEXT;
		else if (strcmp(arg, "json") == 0)
			cli->format = CLI_FORMAT_JSON;
		else if (strcmp(arg, "yaml") == 0)
			cli->format = CLI_FORMAT_YAML;
		else
			return cli_usage(cli, NULL, "--format is text, json or yaml, not \"%s\"",
					 arg);
		cli->format_set = true;
		return 0;
	case CLI_OPT_COLOR:
		if (strcmp(arg, "auto") == 0)
			cli->color_mode = 0;
		else if (strcmp(arg, "always") == 0)
			cli->color_mode = 1;
		else if (strcmp(arg, "never") == 0)
			cli->color_mode = 2;
		else
			return cli_usage(cli, NULL, "--color is auto, always or never, not \"%s\"",
					 arg);
		return 0;
	case CLI_OPT_TIMEOUT: {
		int64_t ms;
		if (!cli_parse_duration_ms(arg, &ms) || ms <= 0 || ms > INT32_MAX)
			return cli_usage(
				cli, NULL,
				"--timeout wants a duration such as 5s, 1500ms or 2m, not \"%s\"",
				arg);
		cli->timeout_ms = (int)ms;
		return 0;
	}
	default:
		return -1;
	}
}

void cli_finish_globals(struct cli *cli)
{
	cli->stdout_tty = isatty(STDOUT_FILENO) == 1;
	cli->stderr_tty = isatty(STDERR_FILENO) == 1;
	cli->stdin_tty = isatty(STDIN_FILENO) == 1;
	bool no_color = getenv("NO_COLOR") && getenv("NO_COLOR")[0];
	const char *term = getenv("TERM");
	bool dumb = term && strcmp(term, "dumb") == 0;
	if (cli->color_mode == 1) {
		cli->color_out = cli->color_err = true;
	} else if (cli->color_mode == 2) {
		cli->color_out = cli->color_err = false;
	} else {
		cli->color_out = cli->stdout_tty && !no_color && !dumb;
		cli->color_err = cli->stderr_tty && !no_color && !dumb;
	}
	if (!cli->brokers) {
		const char *env = getenv("TALLY_BROKERS");
		cli->brokers = env && env[0] ? env : "localhost:9092";
	}
}

int cli_parse_options(struct cli *cli, const char *topic, int argc, char **argv,
		      const char *short_opts, const struct option *long_opts, cli_option_fn fn,
		      void *ctx, int *rc_out)
{
	optind = 0; /* 0, not 1: glibc then forgets the previous scan's state */
	opterr = 0;
	int opt;
	/* Permute (no leading '+'): options may follow positional arguments. */
	const char *shorts = short_opts[0] == '+' ? short_opts + 1 : short_opts;
	char spec[256];
	snprintf(spec, sizeof(spec), ":%s", shorts);
	while ((opt = getopt_long(argc, argv, spec, long_opts, NULL)) != -1) {
		if (opt == '?') {
			if (optopt && optopt < 256)
				*rc_out = cli_usage(cli, topic, "unknown option -%c", optopt);
			else
				*rc_out = cli_usage(cli, topic, "unknown option %s",
						    argv[optind - 1]);
			return -1;
		}
		if (opt == ':') {
			*rc_out =
				cli_usage(cli, topic, "option %s needs a value", argv[optind - 1]);
			return -1;
		}
		if (opt == 'h' || opt == CLI_OPT_HELP) {
			cli_help(stdout, topic);
			*rc_out = CLI_EXIT_OK;
			return -1;
		}
		int rc = cli_global_option(cli, opt, optarg);
		if (rc == 0)
			continue;
		if (rc > 0) {
			*rc_out = rc;
			return -1;
		}
		rc = fn(cli, ctx, opt, optarg);
		if (rc != 0) {
			*rc_out = rc;
			return -1;
		}
	}
	cli_finish_globals(cli);
	return optind;
}

/* ---- nouns ---- */

struct noun {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};

static const struct noun nouns[] = {
	{"topic", cli_topic},  {"topics", cli_topic}, {"produce", cli_produce},
	{"tail", cli_tail},    {"consume", cli_tail}, {"group", cli_group},
	{"groups", cli_group}, {"txn", cli_txn},      {"cluster", cli_cluster},
	{"log", cli_log},      {"top", cli_top},      {"quota", cli_quota},
	{"quotas", cli_quota}, {"acl", cli_acl},      {"acls", cli_acl},
	{"user", cli_user},    {"users", cli_user},
};

static int version(void)
{
	printf("tally %s\n", TL_VERSION);
	return CLI_EXIT_OK;
}

static int cli_main(struct cli *cli, int argc, char **argv)
{
	cli->timeout_ms = CLI_TIMEOUT_DEFAULT_MS;
	signals_install();
	static const struct option globals[] = {
		CLI_GLOBAL_LONG_OPTS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	optind = 1;
	opterr = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "+:b:X:qvhV", globals, NULL)) != -1) {
		if (opt == 'V')
			return version();
		if (opt == 'h') {
			cli_help(stdout, NULL);
			return CLI_EXIT_OK;
		}
		if (opt == '?' || opt == ':') {
			cli_finish_globals(cli);
			return cli_usage(cli, NULL, "%s option %s",
					 opt == ':' ? "missing value for" : "unknown",
					 argv[optind - 1]);
		}
		int rc = cli_global_option(cli, opt, optarg);
		if (rc != 0)
			return rc;
	}
	cli_finish_globals(cli);
	if (optind >= argc) {
		cli_help(stderr, NULL);
		return CLI_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		const char *topic = optind + 1 < argc ? argv[optind + 1] : NULL;
		if (!cli_help(stdout, topic))
			return cli_usage(cli, NULL, "no help for \"%s\"", topic);
		return CLI_EXIT_OK;
	}
	if (strcmp(name, "version") == 0)
		return version();
	for (size_t i = 0; i < sizeof(nouns) / sizeof(nouns[0]); i++) {
		if (strcmp(nouns[i].name, name) == 0) {
			cli->noun = nouns[i].name;
			int rc = nouns[i].run(cli, argc - optind, argv + optind);
			if (cli_interrupted && rc == CLI_EXIT_OK)
				rc = CLI_EXIT_INTERRUPTED;
			if (fflush(stdout) != 0 && errno != EPIPE && rc == CLI_EXIT_OK) {
				cli_error(cli, "writing to stdout failed: %s", strerror(errno));
				rc = CLI_EXIT_ERROR;
			}
			return rc;
		}
	}
	return cli_usage(
		cli, NULL,
		"unknown command \"%s\"; commands: topic, produce, tail, group, txn, cluster, quota, acl, "
		"user, log, top, help",
		name);
}

int main(int argc, char **argv)
{
	struct cli cli;
	memset(&cli, 0, sizeof(cli));
	int rc = cli_main(&cli, argc, argv);
	for (int i = 0; i < cli.conf_count; i++)
		free(cli.conf[i].key); /* -X keys (cli_global_option) */
	return rc;
}
