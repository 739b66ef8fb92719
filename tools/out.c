/* out.c - what tally prints: diagnostics on stderr, tables, JSON and YAML documents,
 * and byte encodings (JSON strings, base64, hex, C escapes).
 * (1) Diagnostics go to stderr only; stdout carries data, so pipes stay clean.
 * (2) Escape sequences appear only where cli->color_out / color_err allow. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common/base64.h"

#define RED    "\033[31m"
#define YELLOW "\033[33m"
#define BOLD   "\033[1m"
#define RESET  "\033[0m"

/* ---- diagnostics ---- */

static void diag(const struct cli *cli, const char *color, const char *level, const char *fmt,
		 va_list ap) __attribute__((format(printf, 4, 0)));

static void diag(const struct cli *cli, const char *color, const char *level, const char *fmt,
		 va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	const char *noun = cli && cli->noun ? cli->noun : NULL;
	if (cli && cli->color_err && color)
		fprintf(stderr, "tally%s%s: %s%s%s: %s\n", noun ? " " : "", noun ? noun : "", color,
			level, RESET, msg);
	else if (level)
		fprintf(stderr, "tally%s%s: %s: %s\n", noun ? " " : "", noun ? noun : "", level,
			msg);
	else
		fprintf(stderr, "tally%s%s: %s\n", noun ? " " : "", noun ? noun : "", msg);
}

void cli_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag(cli, RED, "error", fmt, ap);
	va_end(ap);
}

void cli_warn(const struct cli *cli, const char *fmt, ...)
{
	if (cli && cli->verbosity < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	diag(cli, YELLOW, "warning", fmt, ap);
	va_end(ap);
}

void cli_info(const struct cli *cli, const char *fmt, ...)
{
	if (cli && cli->verbosity < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	diag(cli, NULL, NULL, fmt, ap);
	va_end(ap);
}

void cli_debug(const struct cli *cli, const char *fmt, ...)
{
	if (!cli || cli->verbosity < 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	diag(cli, NULL, "debug", fmt, ap);
	va_end(ap);
}

int cli_usage(const struct cli *cli, const char *topic, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag(cli, RED, "usage error", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'tally help%s%s'.\n", topic ? " " : "", topic ? topic : "");
	return CLI_EXIT_USAGE;
}

int cli_exit_for(tl_err err)
{
	switch (err) {
	case TL_OK:
		return CLI_EXIT_OK;
	case TL_ERR_INVALID:
		return CLI_EXIT_USAGE;
	case TL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
	case TL_ERR_GROUP_ID_NOT_FOUND:
	case TL_ERR_TRANSACTIONAL_ID_NOT_FOUND:
	case TL_ERR_UNKNOWN_TOPIC_ID:
	case TL_ERR_RESOURCE_NOT_FOUND:
	case TL_ERR_NOT_FOUND:
		return CLI_EXIT_NOT_FOUND;
	case TL_ERR_TOPIC_AUTHORIZATION_FAILED:
	case TL_ERR_GROUP_AUTHORIZATION_FAILED:
	case TL_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
	case TL_ERR_SASL_AUTHENTICATION_FAILED:
	case TL_ERR_UNSUPPORTED_SASL_MECHANISM:
	case TL_ERR_ILLEGAL_SASL_STATE:
	case TL_ERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED:
		return CLI_EXIT_AUTH;
	case TL_ERR_TIMED_OUT:
	case TL_ERR_NETWORK_EXCEPTION:
	case TL_ERR_REQUEST_TIMED_OUT:
	case TL_ERR_BROKER_NOT_AVAILABLE:
	case TL_ERR_LEADER_NOT_AVAILABLE:
	case TL_ERR_COORDINATOR_NOT_AVAILABLE:
		return CLI_EXIT_UNREACHABLE;
	default:
		return CLI_EXIT_ERROR;
	}
}

/* ---- tables ---- */

struct cli_table {
	int cols;
	char **cells; /* row-major; headers first */
	size_t count;
	size_t cap;
};

static void table_push(struct cli_table *table, char *cell)
{
	if (table->count == table->cap) {
		size_t cap = table->cap ? table->cap * 2 : 64;
		char **cells = realloc(table->cells, cap * sizeof(*cells));
		if (!cells) {
			free(cell);
			return;
		}
		table->cells = cells;
		table->cap = cap;
	}
	table->cells[table->count++] = cell;
}

struct cli_table *cli_table_create(int cols, const char *const *headers)
{
	struct cli_table *table = calloc(1, sizeof(*table));
	if (!table)
		return NULL;
	table->cols = cols;
	for (int i = 0; i < cols; i++)
		table_push(table, strdup(headers[i]));
	return table;
}

void cli_table_cell(struct cli_table *table, const char *fmt, ...)
{
	if (!table)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *cell = NULL;
	if (vasprintf(&cell, fmt, ap) == -1)
		cell = NULL;
	va_end(ap);
	table_push(table, cell ? cell : strdup("?"));
}

/* Display width of a UTF-8 string: one column per code point. */
static size_t text_width(const char *s)
{
	size_t width = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			width++;
	return width;
}

void cli_table_print(const struct cli *cli, const struct cli_table *table, FILE *out)
{
	if (!table)
		return;
	size_t cols = (size_t)table->cols;
	size_t rows = (table->count + cols - 1) / cols;
	if (!cli->stdout_tty) {
		for (size_t i = 0; i < table->count; i++)
			fprintf(out, "%s%c", table->cells[i] ? table->cells[i] : "",
				(i % cols == cols - 1 || i + 1 == table->count) ? '\n' : '\t');
		return;
	}
	size_t *width = calloc(cols, sizeof(*width));
	if (!width)
		return;
	for (size_t i = 0; i < table->count; i++) {
		size_t w = table->cells[i] ? text_width(table->cells[i]) : 0;
		if (w > width[i % cols])
			width[i % cols] = w;
	}
	for (size_t r = 0; r < rows; r++) {
		if (r == 0 && cli->color_out)
			fputs(BOLD, out);
		for (size_t c = 0; c < cols && r * cols + c < table->count; c++) {
			const char *cell = table->cells[r * cols + c];
			cell = cell ? cell : "";
			bool last = c + 1 == cols || r * cols + c + 1 == table->count;
			fputs(cell, out);
			if (!last)
				for (size_t pad = text_width(cell); pad < width[c] + 2; pad++)
					fputc(' ', out);
		}
		if (r == 0 && cli->color_out)
			fputs(RESET, out);
		fputc('\n', out);
	}
	free(width);
}

void cli_table_destroy(struct cli_table *table)
{
	if (!table)
		return;
	for (size_t i = 0; i < table->count; i++)
		free(table->cells[i]);
	free(table->cells);
	free(table);
}

/* ---- documents ---- */

enum node_type {
	NODE_OBJECT,
	NODE_ARRAY,
	NODE_STRING,
	NODE_INT,
	NODE_BOOL,
	NODE_NULL,
};

struct cli_node {
	enum node_type type;
	char *key;   /* in an object */
	char *str;   /* NODE_STRING: owned bytes */
	size_t len;  /* of str */
	int64_t num; /* NODE_INT, NODE_BOOL */
	struct cli_node *first;
	struct cli_node *last;
	struct cli_node *next;
};

static struct cli_node *node_new(enum node_type type)
{
	struct cli_node *node = calloc(1, sizeof(*node));
	if (!node) {
		fputs("tally: out of memory\n", stderr);
		exit(CLI_EXIT_ERROR);
	}
	node->type = type;
	return node;
}

struct cli_node *cli_node_object(void)
{
	return node_new(NODE_OBJECT);
}

struct cli_node *cli_node_array(void)
{
	return node_new(NODE_ARRAY);
}

static struct cli_node *node_add(struct cli_node *parent, const char *key, enum node_type type)
{
	struct cli_node *node = node_new(type);
	if (key)
		node->key = strdup(key);
	if (parent->last)
		parent->last->next = node;
	else
		parent->first = node;
	parent->last = node;
	return node;
}

struct cli_node *cli_add_object(struct cli_node *parent, const char *key)
{
	return node_add(parent, key, NODE_OBJECT);
}

struct cli_node *cli_add_array(struct cli_node *parent, const char *key)
{
	return node_add(parent, key, NODE_ARRAY);
}

void cli_add_bytes(struct cli_node *parent, const char *key, const void *data, int32_t len)
{
	if (!data || len < 0) {
		node_add(parent, key, NODE_NULL);
		return;
	}
	struct cli_node *node = node_add(parent, key, NODE_STRING);
	node->str = malloc((size_t)len + 1);
	if (node->str) {
		memcpy(node->str, data, (size_t)len);
		node->str[len] = '\0';
		node->len = (size_t)len;
	}
}

void cli_add_str(struct cli_node *parent, const char *key, const char *value)
{
	cli_add_bytes(parent, key, value, value ? (int32_t)strlen(value) : -1);
}

void cli_add_int(struct cli_node *parent, const char *key, int64_t value)
{
	node_add(parent, key, NODE_INT)->num = value;
}

void cli_add_bool(struct cli_node *parent, const char *key, bool value)
{
	node_add(parent, key, NODE_BOOL)->num = value;
}

void cli_add_null(struct cli_node *parent, const char *key)
{
	node_add(parent, key, NODE_NULL);
}

static void indent(FILE *out, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs("  ", out);
}

/* A string that is not valid UTF-8 is printed as base64, under the key NAME_b64. */
static bool node_is_binary(const struct cli_node *node)
{
	return node->type == NODE_STRING && !cli_utf8_valid(node->str, node->len);
}

static void json_print(const struct cli_node *node, FILE *out, bool pretty, int depth)
{
	switch (node->type) {
	case NODE_STRING:
		fputc('"', out);
		if (node_is_binary(node))
			cli_base64_encode(out, node->str, node->len);
		else
			cli_json_escape(out, node->str, node->len);
		fputc('"', out);
		return;
	case NODE_INT:
		fprintf(out, "%lld", (long long)node->num);
		return;
	case NODE_BOOL:
		fputs(node->num ? "true" : "false", out);
		return;
	case NODE_NULL:
		fputs("null", out);
		return;
	case NODE_OBJECT:
	case NODE_ARRAY:
		break;
	}
	bool object = node->type == NODE_OBJECT;
	fputc(object ? '{' : '[', out);
	for (const struct cli_node *c = node->first; c; c = c->next) {
		if (pretty) {
			fputc('\n', out);
			indent(out, depth + 1);
		}
		if (object) {
			fputc('"', out);
			cli_json_escape(out, c->key, strlen(c->key));
			if (node_is_binary(c))
				fputs("_b64", out);
			fputs(pretty ? "\": " : "\":", out);
		}
		json_print(c, out, pretty, depth + 1);
		if (c->next)
			fputc(',', out);
	}
	if (pretty && node->first) {
		fputc('\n', out);
		indent(out, depth);
	}
	fputc(object ? '}' : ']', out);
}

/* A YAML scalar: plain when unambiguous, else a double-quoted JSON-style string (which
 * YAML accepts). */
static void yaml_scalar(const struct cli_node *node, FILE *out)
{
	if (node->type != NODE_STRING) {
		json_print(node, out, false, 0);
		return;
	}
	if (node_is_binary(node)) {
		fputs("!!binary ", out);
		cli_base64_encode(out, node->str, node->len);
		return;
	}
	bool plain = node->len > 0 && cli_utf8_valid(node->str, node->len);
	static const char *const special[] = {"true", "false", "null", "yes",
					      "no",   "on",    "off",  "~"};
	for (size_t i = 0; plain && i < sizeof(special) / sizeof(special[0]); i++)
		if (strcasecmp(node->str, special[i]) == 0)
			plain = false;
	if (plain && strchr("-?:,[]{}#&*!|>'\"%@` 0123456789.+", node->str[0]))
		plain = false;
	for (size_t i = 0; plain && i < node->len; i++) {
		unsigned char ch = (unsigned char)node->str[i];
		if (ch < 0x20 || ch == 0x7f || (ch == ':' || ch == '#'))
			plain = false;
	}
	if (plain && node->str[node->len - 1] == ' ')
		plain = false;
	if (plain) {
		fputs(node->str, out);
		return;
	}
	fputc('"', out);
	cli_json_escape(out, node->str, node->len);
	fputc('"', out);
}

static bool node_is_container(const struct cli_node *node)
{
	return node->type == NODE_OBJECT || node->type == NODE_ARRAY;
}

/* Prints the members of @node at @depth; with @inline_first the first line's indent was
 * already written (after "- "). */
static void yaml_print(const struct cli_node *node, FILE *out, int depth, bool inline_first)
{
	bool object = node->type == NODE_OBJECT;
	for (const struct cli_node *c = node->first; c; c = c->next) {
		if (!(inline_first && c == node->first))
			indent(out, depth);
		if (object)
			fprintf(out, "%s:", c->key);
		else
			fputc('-', out);
		if (node_is_container(c) && !c->first) {
			fputs(c->type == NODE_OBJECT ? " {}\n" : " []\n", out);
		} else if (node_is_container(c) && !object) {
			fputc(' ', out); /* "- key: value", the rest of the item below it */
			yaml_print(c, out, depth + 1, true);
		} else if (node_is_container(c)) {
			fputc('\n', out);
			yaml_print(c, out, depth + 1, false);
		} else {
			fputc(' ', out);
			yaml_scalar(c, out);
			fputc('\n', out);
		}
	}
}

void cli_node_print(const struct cli *cli, const struct cli_node *node, FILE *out)
{
	if (cli->format == CLI_FORMAT_YAML) {
		if (node_is_container(node) && !node->first)
			fputs(node->type == NODE_OBJECT ? "{}\n" : "[]\n", out);
		else if (node_is_container(node))
			yaml_print(node, out, 0, false);
		else {
			yaml_scalar(node, out);
			fputc('\n', out);
		}
		return;
	}
	json_print(node, out, cli->stdout_tty, 0);
	fputc('\n', out);
}

void cli_node_destroy(struct cli_node *node)
{
	while (node) {
		struct cli_node *next = node->next;
		cli_node_destroy(node->first);
		free(node->key);
		free(node->str);
		free(node);
		node = next;
	}
}

/* ---- bytes ---- */

/* Length of the valid UTF-8 sequence at @p (of @left bytes), or 0. */
static size_t utf8_seq(const uint8_t *p, size_t left)
{
	uint8_t c = p[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool cli_utf8_valid(const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

void cli_json_escape(FILE *out, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len;) {
		uint8_t c = p[i];
		size_t n = utf8_seq(p + i, len - i);
		if (n == 0) {
			fputs("\\ufffd", out);
			i++;
			continue;
		}
		if (n > 1) {
			fwrite(p + i, 1, n, out);
			i += n;
			continue;
		}
		i++;
		switch (c) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(out, "\\u%04x", c);
			else
				fputc(c, out);
		}
	}
}

void cli_base64_encode(FILE *out, const void *data, size_t len)
{
	/* 3 input bytes per 4 chars: whole groups per chunk keep the padding at the end. */
	const uint8_t *p = data;
	char buf[4 * 256 + 1];
	for (size_t done = 0; done < len;) {
		size_t n = len - done < 3 * 256 ? len - done : 3 * 256;
		tl_base64_encode(p + done, n, buf);
		fwrite(buf, 1, tl_base64_encoded_len(n), out);
		done += n;
	}
}

bool cli_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = malloc(tl_base64_decoded_len_max(len));
	if (!buf)
		return false;
	if (!tl_base64_decode(s, len, buf, out_len)) {
		free(buf);
		return false;
	}
	*out = buf;
	return true;
}

void cli_hex_encode(FILE *out, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++)
		fprintf(out, "%02x", p[i]);
}

void cli_escape_encode(FILE *out, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		if (c == '\\')
			fputs("\\\\", out);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c == '\r')
			fputs("\\r", out);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
}

void cli_format_time(int64_t ms, char *buf, size_t size)
{
	if (ms < 0) {
		snprintf(buf, size, "-");
		return;
	}
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

const char *cli_group_digits(int64_t v, char *buf, size_t size)
{
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%lld", (long long)(v < 0 ? -v : v));
	size_t len = strlen(tmp), at = 0;
	if (v < 0 && at + 1 < size)
		buf[at++] = '-';
	for (size_t i = 0; i < len && at + 1 < size; i++) {
		if (i > 0 && (len - i) % 3 == 0 && at + 2 < size)
			buf[at++] = ',';
		buf[at++] = tmp[i];
	}
	buf[at] = '\0';
	return buf;
}
