/* cli.h - shared pieces of `tally`, the command-line client (tools/): global options,
 * exit codes, diagnostics, output (aligned tables, JSON, YAML), connections with the
 * checks that turn a failure into a message naming the fix, the offset grammar, and
 * the noun entry points. Every command works against any Kafka-compatible broker
 * through libtally; `tally log` reads a stopped broker's files through log/.
 *
 * Exit codes (documented in man/tally.1 and `tally help`):
 *   0 ok, 1 runtime error, 2 usage, 3 not found, 4 authentication/authorization/TLS,
 *   5 unreachable or timed out, 6 partial failure, 130 interrupted. */
#ifndef TL_TOOLS_CLI_H
#define TL_TOOLS_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tally/admin.h"
#include "tally/error.h"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_NOT_FOUND = 3,
	CLI_EXIT_AUTH = 4,
	CLI_EXIT_UNREACHABLE = 5,
	CLI_EXIT_PARTIAL = 6,
	CLI_EXIT_INTERRUPTED = 130,
};

enum cli_format {
	CLI_FORMAT_TEXT,
	CLI_FORMAT_JSON,
	CLI_FORMAT_YAML,
};

#define CLI_CONF_MAX           64    /* -X key=value pairs */
#define CLI_TIMEOUT_DEFAULT_MS 10000 /* --timeout */

struct cli_conf_entry {
	char *key; /* owned: strndup of the -X argument up to its = */
	const char *value;
};

/* The global options, parsed once (before the noun, or after the verb). */
struct cli {
	const char *brokers;                      /* -b, else $TALLY_BROKERS, else localhost:9092 */
	struct cli_conf_entry conf[CLI_CONF_MAX]; /* -X, in order */
	int32_t conf_count;
	enum cli_format format;
	bool format_set; /* --format given */
	int color_mode;  /* --color: 0 auto, 1 always, 2 never */
	bool color_out;  /* escape sequences on stdout */
	bool color_err;  /* escape sequences on stderr */
	int verbosity;   /* -1 quiet, 0 normal, 1 and up verbose */
	int timeout_ms;  /* --timeout: bound on connecting and on each admin call */
	bool stdout_tty;
	bool stderr_tty;
	bool stdin_tty;
	const char *noun; /* for messages: "tail", "topic create" */
};

/* Set by SIGINT/SIGTERM; loops check it and commands then exit 130. */
extern volatile sig_atomic_t cli_interrupted;

/* ---- global options, shared by every command's getopt_long table ---- */

enum cli_opt {
	CLI_OPT_FORMAT = 1000,
	CLI_OPT_COLOR,
	CLI_OPT_TIMEOUT,
	CLI_OPT_HELP,
	CLI_OPT_FIRST_LOCAL = 1100, /* commands number their long-only options from here */
};

#define CLI_GLOBAL_SHORT "+b:X:qvh"
#define CLI_GLOBAL_LONG_OPTS                                                                       \
	{"brokers", required_argument, NULL, 'b'},                                                 \
		{"format", required_argument, NULL, CLI_OPT_FORMAT},                               \
		{"color", required_argument, NULL, CLI_OPT_COLOR},                                 \
		{"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                             \
		{"quiet", no_argument, NULL, 'q'}, {"verbose", no_argument, NULL, 'v'},            \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

/* Handles one global option from getopt_long. Returns 0 when handled, -1 when @opt is
 * not a global option, CLI_EXIT_USAGE after printing why a value is bad. 'h' is left to
 * the caller (returns -1). */
int cli_global_option(struct cli *cli, int opt, const char *arg);
/* Applies the environment and TTY state once options are parsed (NO_COLOR, --color). */
void cli_finish_globals(struct cli *cli);
/* Parses a duration: "1500" (ms), "250ms", "2s", "1m", "1h". False if malformed. */
bool cli_parse_duration_ms(const char *s, int64_t *ms_out);
bool cli_parse_int64(const char *s, int64_t *out);

/* ---- diagnostics (stderr) ---- */

void cli_error(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_info(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_debug(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a usage error with a pointer to `tally help @topic`; returns CLI_EXIT_USAGE. */
int cli_usage(const struct cli *cli, const char *topic, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The exit code for a libtally error. */
int cli_exit_for(tl_err err);
/* Prints the help text of @topic (NULL: the overview) to @out; false if unknown. */
bool cli_help(FILE *out, const char *topic);

/* ---- output ---- */

/* A table printed with aligned columns (two spaces apart, header bold with color) on a
 * TTY, and as tab-separated lines with the header first otherwise. */
struct cli_table;
struct cli_table *cli_table_create(int cols, const char *const *headers);
/* Appends one cell to the current row; a row is complete after `cols` cells. */
void cli_table_cell(struct cli_table *table, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cli_table_print(const struct cli *cli, const struct cli_table *table, FILE *out);
void cli_table_destroy(struct cli_table *table);

/* A document printed as JSON (one line, or indented on a TTY) or YAML. Objects keep
 * keys in insertion order. */
struct cli_node;
struct cli_node *cli_node_object(void);
struct cli_node *cli_node_array(void);
/* Adders take @key for objects, NULL for arrays; they return the new child (for
 * objects and arrays, to fill). */
struct cli_node *cli_add_object(struct cli_node *parent, const char *key);
struct cli_node *cli_add_array(struct cli_node *parent, const char *key);
void cli_add_str(struct cli_node *parent, const char *key, const char *value); /* NULL: null */
void cli_add_bytes(struct cli_node *parent, const char *key, const void *data, int32_t len);
void cli_add_int(struct cli_node *parent, const char *key, int64_t value);
void cli_add_bool(struct cli_node *parent, const char *key, bool value);
void cli_add_null(struct cli_node *parent, const char *key);
void cli_node_print(const struct cli *cli, const struct cli_node *node, FILE *out);
void cli_node_destroy(struct cli_node *node);

/* ---- bytes ---- */

bool cli_utf8_valid(const void *data, size_t len);
/* Appends @len bytes to @out as a JSON string body (no quotes); invalid UTF-8 bytes
 * become U+FFFD, so use base64 for those. */
void cli_json_escape(FILE *out, const void *data, size_t len);
void cli_base64_encode(FILE *out, const void *data, size_t len);
/* Decodes standard base64 (padding optional) into a malloc'd buffer. False if bad. */
bool cli_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len);
void cli_hex_encode(FILE *out, const void *data, size_t len);
/* Prints with C-style escapes (\n, \t, \\, \xNN); printable ASCII as is. */
void cli_escape_encode(FILE *out, const void *data, size_t len);
/* "2024-05-01T12:00:00.123Z" for @ms since the epoch (UTC) into @buf. */
void cli_format_time(int64_t ms, char *buf, size_t size);
/* "12,345,678" into @buf. */
const char *cli_group_digits(int64_t v, char *buf, size_t size);

/* ---- connections ---- */

/* Creates an admin client for --brokers with request.timeout.ms = --timeout (and the
 * -X keys it knows); with @auto_create, describing a missing topic asks the broker to
 * create it (as a producer would). Returns TL_OK or prints why and returns the error. */
tl_err cli_admin_create(const struct cli *cli, bool auto_create, struct tl_admin **out);
/* Reports a failed admin call: the detail, the address for connection failures and a
 * hint naming the fix. Returns the exit code to use. @what: "list topics". */
int cli_admin_fail(const struct cli *cli, struct tl_admin *admin, tl_err err, const char *what);
/* Checks the cluster answers (Metadata through the bootstrap address) and that every
 * broker it advertises can be reached (advertised.listeners). Returns CLI_EXIT_OK or an
 * exit code after printing the problem. */
int cli_check_cluster(const struct cli *cli, struct tl_admin *admin);
/* Fetches @topics' metadata; a missing topic is reported (exit 3) with the fix, unless
 * @missing_ok, which sets missing_out[i] instead. */
int cli_describe_topics(const struct cli *cli, struct tl_admin *admin, const char *const *topics,
			int32_t count, bool missing_ok, bool *missing_out,
			struct tl_admin_topics **out);

/* ---- the offset grammar (tail -o, group seek) ---- */

enum cli_pos_kind {
	CLI_POS_DEFAULT,    /* nothing given: the command's default */
	CLI_POS_BEGINNING,  /* the log start */
	CLI_POS_END,        /* the log end (as of the start of the command, for a stop) */
	CLI_POS_OFFSET,     /* an absolute offset */
	CLI_POS_FROM_END,   /* -N: N before the end */
	CLI_POS_FROM_START, /* +N: N after the start (as a stop: N records after the start) */
	CLI_POS_TIME,       /* @TIME: the first record at or after a timestamp */
};

struct cli_pos {
	enum cli_pos_kind kind;
	int64_t value; /* offset, count, or ms since the epoch */
};

/* START | START:STOP | :STOP, where START and STOP are beginning | end | N | -N | +N |
 * @TIME, and TIME is RFC 3339 (2024-05-01T12:00:00Z, with an offset or fraction), a
 * date (2024-05-01, local midnight), epoch ms, or a duration back from now (-1h,
 * -30m, -2d, -10s, -500ms). STOP is exclusive. */
struct cli_offset_spec {
	struct cli_pos start;
	struct cli_pos stop; /* CLI_POS_DEFAULT: unbounded */
	bool has_stop;       /* a ':' was given */
};

/* Parses @s; on error writes why into @why and returns false. Uses the clock only for
 * relative times. */
bool cli_offset_spec_parse(const char *s, struct cli_offset_spec *out, char *why, size_t why_size);
/* Parses TIME (without the '@'). */
bool cli_time_parse(const char *s, int64_t now_ms, int64_t *ms_out, char *why, size_t why_size);

/* ---- nouns ---- */

int cli_topic(struct cli *cli, int argc, char **argv);
int cli_produce(struct cli *cli, int argc, char **argv);
int cli_tail(struct cli *cli, int argc, char **argv);
int cli_group(struct cli *cli, int argc, char **argv);
int cli_txn(struct cli *cli, int argc, char **argv);
int cli_cluster(struct cli *cli, int argc, char **argv);
int cli_quota(struct cli *cli, int argc, char **argv);
int cli_acl(struct cli *cli, int argc, char **argv);
int cli_user(struct cli *cli, int argc, char **argv);
int cli_log(struct cli *cli, int argc, char **argv);
int cli_top(struct cli *cli, int argc, char **argv);

/* Parses options of one command: @short_opts and @long_opts include the globals
 * (CLI_GLOBAL_SHORT, CLI_GLOBAL_LONG_OPTS). Calls @fn for each command option; -h
 * prints `tally help @topic` and returns -1 with *rc_out = 0. Returns optind on success,
 * -1 with *rc_out set on error or help. */
typedef int (*cli_option_fn)(struct cli *cli, void *ctx, int opt, const char *arg);
int cli_parse_options(struct cli *cli, const char *topic, int argc, char **argv,
		      const char *short_opts, const struct option *long_opts, cli_option_fn fn,
		      void *ctx, int *rc_out);

#endif
