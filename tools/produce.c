/* produce.c - `tally produce TOPIC`: one record per input line (or per JSON envelope
 * with --json), through a libtally producer: idempotent and acks=all by default, with
 * transactions when --txn-id is given.
 * (1) Delivery reports run on this thread (tl_producer_poll/flush), so the counters
 *     below need no lock.
 * (2) Every record is reported exactly once: delivered + failed == sent at the end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/json.h"
#include "common/time.h"
#include "tally/producer.h"

#define PRODUCE_HEADERS_MAX 64
#define RATE_INTERVAL_NS    (250 * 1000000LL)

struct produce_opts {
	const char *topic;
	const char *key;
	const char *key_delim;
	size_t key_delim_len;
	struct tl_producer_header headers[PRODUCE_HEADERS_MAX];
	int32_t header_count;
	int32_t partition;
	int delimiter;
	bool json;
	bool ignore_partition;
	const char *acks;
	const char *compression;
	bool no_idempotence;
	const char *txn_id;
	int64_t txn_every;
	int rate; /* -1 auto (stderr is a TTY), 0 off, 1 on */
};

struct produce_state {
	const struct cli *cli;
	int64_t sent;
	int64_t delivered;
	int64_t failed;
	int64_t bytes;
	tl_err first_err;
	char first_detail[512];
	int64_t started_ns;
	int64_t rate_at_ns;
	int64_t rate_last_count;
	bool rate_shown;
};

enum {
	OPT_JSON = CLI_OPT_FIRST_LOCAL,
	OPT_ACKS,
	OPT_NO_IDEMPOTENCE,
	OPT_TXN_ID,
	OPT_TXN_EVERY,
	OPT_RATE,
	OPT_NO_RATE,
	OPT_IGNORE_PARTITION,
};

static int produce_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct produce_opts *o = ctx;
	int64_t v;
	switch (opt) {
	case 'k':
		o->key = arg;
		return 0;
	case 'K':
		if (!arg[0])
			return cli_usage(cli, "produce", "--key-delimiter must not be empty");
		o->key_delim = arg;
		o->key_delim_len = strlen(arg);
		return 0;
	case 'H': {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg)
			return cli_usage(cli, "produce", "--header wants key=value, not \"%s\"",
					 arg);
		if (o->header_count == PRODUCE_HEADERS_MAX)
			return cli_usage(cli, "produce", "at most %d headers", PRODUCE_HEADERS_MAX);
		struct tl_producer_header *h = &o->headers[o->header_count++];
		h->key = strndup(arg, (size_t)(eq - arg));
		h->value = eq + 1;
		h->value_len = (int32_t)strlen(eq + 1);
		return 0;
	}
	case 'p':
		if (!cli_parse_int64(arg, &v) || v < 0 || v > INT32_MAX)
			return cli_usage(cli, "produce",
					 "--partition wants a number >= 0, not \"%s\"", arg);
		o->partition = (int32_t)v;
		return 0;
	case 'D':
		if (strcmp(arg, "\\0") == 0 || strcmp(arg, "NUL") == 0)
			o->delimiter = '\0';
		else if (strcmp(arg, "\\n") == 0)
			o->delimiter = '\n';
		else if (strcmp(arg, "\\t") == 0)
			o->delimiter = '\t';
		else if (strlen(arg) == 1)
			o->delimiter = (unsigned char)arg[0];
		else
			return cli_usage(cli, "produce", "--delimiter wants one character or \\0");
		return 0;
	case 'z':
		if (strcmp(arg, "zstd") != 0 && strcmp(arg, "none") != 0 &&
		    strcmp(arg, "gzip") != 0 && strcmp(arg, "snappy") != 0 &&
		    strcmp(arg, "lz4") != 0)
			return cli_usage(cli, "produce",
					 "--compression is one of none, gzip, snappy, lz4, zstd");
		o->compression = arg;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_IGNORE_PARTITION:
		o->ignore_partition = true;
		return 0;
	case OPT_ACKS:
		if (strcmp(arg, "all") != 0 && strcmp(arg, "-1") != 0 && strcmp(arg, "1") != 0 &&
		    strcmp(arg, "0") != 0)
			return cli_usage(cli, "produce", "--acks is all, 1 or 0, not \"%s\"", arg);
		o->acks = strcmp(arg, "-1") == 0 ? "all" : arg;
		return 0;
	case OPT_NO_IDEMPOTENCE:
		o->no_idempotence = true;
		return 0;
	case OPT_TXN_ID:
		if (!arg[0])
			return cli_usage(cli, "produce", "--txn-id must not be empty");
		o->txn_id = arg;
		return 0;
	case OPT_TXN_EVERY:
		if (!cli_parse_int64(arg, &v) || v <= 0)
			return cli_usage(cli, "produce",
					 "--txn-every wants a number > 0, not \"%s\"", arg);
		o->txn_every = v;
		return 0;
	case OPT_RATE:
		o->rate = 1;
		return 0;
	case OPT_NO_RATE:
		o->rate = 0;
		return 0;
	default:
		return cli_usage(cli, "produce", "unexpected option");
	}
}

/* ---- delivery reports and the rate line ---- */

static void on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	struct produce_state *st = opaque;
	if (d->err == TL_OK) {
		st->delivered++;
		return;
	}
	st->failed++;
	if (st->first_err == TL_OK) {
		st->first_err = d->err;
		snprintf(st->first_detail, sizeof(st->first_detail), "%s",
			 d->detail ? d->detail : tl_err_message(d->err));
	}
}

static void rate_line(struct produce_state *st, bool final)
{
	int64_t now = tl_mono_ns();
	if (!final && now - st->rate_at_ns < RATE_INTERVAL_NS)
		return;
	double secs = (double)(now - st->started_ns) / 1e9;
	double window = (double)(now - st->rate_at_ns) / 1e9;
	double rate =
		final ? (secs > 0 ? (double)st->delivered / secs : 0)
		      : (window > 0 ? (double)(st->delivered - st->rate_last_count) / window : 0);
	char sent[32], ok[32];
	fprintf(stderr, "\r\033[K%s sent, %s acknowledged, %.0f records/s%s",
		cli_group_digits(st->sent, sent, sizeof(sent)),
		cli_group_digits(st->delivered, ok, sizeof(ok)), rate, final ? "\n" : "");
	st->rate_at_ns = now;
	st->rate_last_count = st->delivered;
	st->rate_shown = true;
}

/* ---- records from input ---- */

/* Decodes a string or a base64 member (name, name_b64) of @env into @data/@len (-1 =
 * null). Returns false with @why set if malformed; the caller frees *@owned. */
static bool envelope_bytes(const struct tl_json_value *env, const char *name, const void **data,
			   int32_t *len, uint8_t **owned, char *why, size_t why_size)
{
	char b64name[64];
	snprintf(b64name, sizeof(b64name), "%s_b64", name);
	const struct tl_json_value *v = tl_json_get(env, name);
	const struct tl_json_value *b = tl_json_get(env, b64name);
	*data = NULL;
	*len = -1;
	if (b && b->type == TL_JSON_STRING) {
		size_t n;
		if (!cli_base64_decode(b->str, b->len, owned, &n)) {
			snprintf(why, why_size, "\"%s\" is not base64", b64name);
			return false;
		}
		*data = *owned;
		*len = (int32_t)n;
		return true;
	}
	if (!v || v->type == TL_JSON_NULL)
		return true;
	if (v->type != TL_JSON_STRING) {
		snprintf(why, why_size, "\"%s\" must be a string or null", name);
		return false;
	}
	*data = v->str;
	*len = (int32_t)v->len;
	return true;
}

/* One record built from input; owns what the tl_producer_record points to. */
struct input_record {
	struct tl_producer_record rec;
	struct tl_producer_header headers[PRODUCE_HEADERS_MAX * 2];
	uint8_t *owned[2 + PRODUCE_HEADERS_MAX];
	int owned_count;
	struct tl_json_value json;
	bool has_json;
};

static void input_record_reset(struct input_record *in)
{
	for (int i = 0; i < in->owned_count; i++)
		free(in->owned[i]);
	in->owned_count = 0;
	if (in->has_json)
		tl_json_free(&in->json);
	in->has_json = false;
}

static bool envelope_headers(const struct tl_json_value *hs, struct input_record *in, char *why,
			     size_t why_size)
{
	if (!hs || hs->type == TL_JSON_NULL)
		return true;
	bool object = hs->type == TL_JSON_OBJECT;
	if (!object && hs->type != TL_JSON_ARRAY) {
		snprintf(why, why_size,
			 "\"headers\" must be an array of {key, value} or an object");
		return false;
	}
	for (size_t i = 0; i < hs->count; i++) {
		if (in->rec.header_count >= PRODUCE_HEADERS_MAX * 2) {
			snprintf(why, why_size, "more than %d headers", PRODUCE_HEADERS_MAX * 2);
			return false;
		}
		struct tl_producer_header *h = &in->headers[in->rec.header_count];
		const struct tl_json_value *item = &hs->items[i];
		if (object) {
			h->key = hs->keys[i];
			if (item->type == TL_JSON_NULL) {
				h->value = NULL;
				h->value_len = -1;
			} else if (item->type == TL_JSON_STRING) {
				h->value = item->str;
				h->value_len = (int32_t)item->len;
			} else {
				snprintf(why, why_size, "header \"%s\" must be a string or null",
					 hs->keys[i]);
				return false;
			}
		} else {
			const struct tl_json_value *k = tl_json_get(item, "key");
			if (!k || k->type != TL_JSON_STRING) {
				snprintf(why, why_size, "each header needs a string \"key\"");
				return false;
			}
			h->key = k->str;
			uint8_t *owned = NULL;
			if (!envelope_bytes(item, "value", &h->value, &h->value_len, &owned, why,
					    why_size))
				return false;
			if (owned)
				in->owned[in->owned_count++] = owned;
		}
		in->rec.header_count++;
	}
	return true;
}

static bool envelope_parse(const struct produce_opts *o, const char *line, size_t len,
			   struct input_record *in, char *why, size_t why_size)
{
	if (!tl_json_parse(line, len, &in->json, why, why_size))
		return false;
	in->has_json = true;
	const struct tl_json_value *env = &in->json;
	if (env->type != TL_JSON_OBJECT) {
		snprintf(why, why_size, "a line must be a JSON object");
		return false;
	}
	uint8_t *owned = NULL;
	if (!envelope_bytes(env, "key", &in->rec.key, &in->rec.key_len, &owned, why, why_size))
		return false;
	if (owned)
		in->owned[in->owned_count++] = owned;
	owned = NULL;
	if (!envelope_bytes(env, "value", &in->rec.value, &in->rec.value_len, &owned, why,
			    why_size))
		return false;
	if (owned)
		in->owned[in->owned_count++] = owned;
	const struct tl_json_value *ts = tl_json_get(env, "timestamp");
	if (ts && ts->type == TL_JSON_NUMBER && ts->is_integer && ts->integer > 0) {
		in->rec.timestamp_ms = ts->integer;
	} else if (ts && ts->type == TL_JSON_STRING) {
		if (!cli_time_parse(ts->str, tl_wall_ms(), &in->rec.timestamp_ms, why, why_size))
			return false;
	} else if (ts && ts->type != TL_JSON_NULL &&
		   !(ts->type == TL_JSON_NUMBER && ts->integer <= 0)) {
		snprintf(why, why_size, "\"timestamp\" must be epoch milliseconds or RFC 3339");
		return false;
	}
	const struct tl_json_value *part = tl_json_get(env, "partition");
	if (part && part->type == TL_JSON_NUMBER && part->is_integer && part->integer >= 0 &&
	    !o->ignore_partition)
		in->rec.partition = (int32_t)part->integer;
	return envelope_headers(tl_json_get(env, "headers"), in, why, why_size);
}

/* Fills @in from one input line (@len bytes, delimiter removed). */
static bool record_from_line(const struct produce_opts *o, char *line, size_t len,
			     struct input_record *in, char *why, size_t why_size)
{
	memset(&in->rec, 0, sizeof(in->rec));
	in->rec.topic = o->topic;
	in->rec.partition = TL_PRODUCER_PARTITION_ANY;
	in->rec.key_len = -1;
	in->rec.headers = in->headers;
	for (int32_t i = 0; i < o->header_count; i++)
		in->headers[i] = o->headers[i];
	in->rec.header_count = o->header_count;
	if (o->json) {
		if (!envelope_parse(o, line, len, in, why, why_size))
			return false;
	} else {
		in->rec.value = line;
		in->rec.value_len = (int32_t)len;
		if (o->key) {
			in->rec.key = o->key;
			in->rec.key_len = (int32_t)strlen(o->key);
		} else if (o->key_delim) {
			char *at = memmem(line, len, o->key_delim, o->key_delim_len);
			if (at) {
				in->rec.key = line;
				in->rec.key_len = (int32_t)(at - line);
				in->rec.value = at + o->key_delim_len;
				in->rec.value_len =
					(int32_t)(len - (size_t)(at - line) - o->key_delim_len);
			}
		}
	}
	if (o->partition >= 0)
		in->rec.partition = o->partition;
	return true;
}

/* ---- the producer ---- */

static tl_err conf_set(const struct cli *cli, struct tl_producer_conf *conf, const char *key,
		       const char *value)
{
	char errstr[512];
	tl_err err = tl_producer_conf_set(conf, key, value, errstr, sizeof(errstr));
	if (err != TL_OK)
		cli_error(cli, "%s", errstr);
	return err;
}

static tl_err producer_make(const struct cli *cli, const struct produce_opts *o,
			    struct produce_state *st, struct tl_producer **out)
{
	struct tl_producer_conf *conf = tl_producer_conf_create();
	if (!conf)
		return TL_ERR_NOMEM;
	char request_ms[32], delivery_ms[32], block_ms[32];
	snprintf(request_ms, sizeof(request_ms), "%d", cli->timeout_ms);
	int64_t delivery =
		(int64_t)cli->timeout_ms * 3 > 30000 ? (int64_t)cli->timeout_ms * 3 : 30000;
	snprintf(delivery_ms, sizeof(delivery_ms), "%lld", (long long)delivery);
	snprintf(block_ms, sizeof(block_ms), "%d", cli->timeout_ms);
	tl_err err = conf_set(cli, conf, "bootstrap.servers", cli->brokers);
	if (err == TL_OK)
		err = conf_set(cli, conf, "client.id", "tally");
	if (err == TL_OK)
		err = conf_set(cli, conf, "request.timeout.ms", request_ms);
	if (err == TL_OK)
		err = conf_set(cli, conf, "delivery.timeout.ms", delivery_ms);
	if (err == TL_OK)
		err = conf_set(cli, conf, "max.block.ms", block_ms);
	if (err == TL_OK && o->acks)
		err = conf_set(cli, conf, "acks", o->acks);
	if (err == TL_OK && o->compression)
		err = conf_set(cli, conf, "compression.type", o->compression);
	if (err == TL_OK && o->no_idempotence)
		err = conf_set(cli, conf, "enable.idempotence", "false");
	if (err == TL_OK && o->txn_id)
		err = conf_set(cli, conf, "transactional.id", o->txn_id);
	for (int32_t i = 0; err == TL_OK && i < cli->conf_count; i++)
		err = conf_set(cli, conf, cli->conf[i].key, cli->conf[i].value);
	if (err == TL_OK) {
		tl_producer_conf_set_delivery_cb(conf, on_delivery, st);
		char errstr[512];
		err = tl_producer_create(conf, out, errstr, sizeof(errstr));
		if (err != TL_OK)
			cli_error(cli, "%s", errstr);
	}
	tl_producer_conf_destroy(conf);
	return err;
}

/* A send error that will repeat for every later record too. */
static bool err_stops_input(tl_err err)
{
	return err == TL_ERR_TIMED_OUT || err == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION ||
	       err == TL_ERR_FATAL || err == TL_ERR_CLOSED || tl_err_is_fatal(err) ||
	       err == TL_ERR_INVALID_TOPIC_EXCEPTION || err == TL_ERR_TOPIC_AUTHORIZATION_FAILED;
}

struct txn_state {
	bool on;
	bool open;
	int64_t in_txn; /* records in the open transaction */
};

/* Commits the open transaction; when that fails, aborts it and counts its records
 * (reported delivered, but never visible) as failed. */
static tl_err txn_commit(const struct cli *cli, struct tl_producer *producer, struct txn_state *txn,
			 struct produce_state *st)
{
	if (!txn->open)
		return TL_OK;
	tl_err err = tl_producer_commit_transaction(producer, cli->timeout_ms * 3);
	if (err != TL_OK) {
		cli_error(cli, "commit of a transaction of %lld records failed: %s; aborting it",
			  (long long)txn->in_txn, tl_producer_last_error(producer));
		(void)tl_producer_abort_transaction(producer, cli->timeout_ms);
		int64_t lost = txn->in_txn < st->delivered ? txn->in_txn : st->delivered;
		st->delivered -= lost;
		st->failed += lost;
		if (st->first_err == TL_OK) {
			st->first_err = err;
			snprintf(st->first_detail, sizeof(st->first_detail),
				 "a transaction failed to commit");
		}
	}
	txn->open = false;
	txn->in_txn = 0;
	return err;
}

static tl_err txn_begin(const struct cli *cli, struct tl_producer *producer, struct txn_state *txn)
{
	if (!txn->on || txn->open)
		return TL_OK;
	tl_err err = tl_producer_begin_transaction(producer);
	if (err != TL_OK)
		cli_error(cli, "cannot begin a transaction: %s", tl_producer_last_error(producer));
	txn->open = err == TL_OK;
	return err;
}

/* Reads input and sends it; returns the first error that stopped it (TL_OK at EOF). */
static tl_err produce_loop(const struct cli *cli, const struct produce_opts *o,
			   struct tl_producer *producer, struct produce_state *st,
			   struct txn_state *txn, bool show_rate)
{
	char *line = NULL;
	size_t cap = 0;
	struct input_record *in = calloc(1, sizeof(*in));
	tl_err stop = TL_OK;
	int64_t line_no = 0;
	while (!cli_interrupted && in) {
		errno = 0;
		ssize_t n = getdelim(&line, &cap, o->delimiter, stdin);
		if (n < 0) {
			if (errno == EINTR && !cli_interrupted)
				continue;
			if (errno != 0 && errno != EINTR) {
				cli_error(cli, "reading stdin: %s", strerror(errno));
				stop = TL_ERR_IO;
			}
			break;
		}
		line_no++;
		size_t len = (size_t)n;
		if (len > 0 && line[len - 1] == (char)o->delimiter)
			len--;
		if (o->json && len == 0)
			continue;
		if ((stop = txn_begin(cli, producer, txn)) != TL_OK)
			break;
		char why[256];
		if (!record_from_line(o, line, len, in, why, sizeof(why))) {
			cli_error(cli, "line %lld: %s; skipped", (long long)line_no, why);
			st->failed++;
			st->sent++;
			if (st->first_err == TL_OK) {
				st->first_err = TL_ERR_CORRUPT_MESSAGE;
				snprintf(st->first_detail, sizeof(st->first_detail),
					 "line %lld: %s", (long long)line_no, why);
			}
			input_record_reset(in);
			continue;
		}
		tl_err err = tl_producer_send(producer, &in->rec);
		st->sent++;
		st->bytes += in->rec.value_len > 0 ? in->rec.value_len : 0;
		input_record_reset(in);
		if (err != TL_OK) {
			st->failed++;
			if (st->first_err == TL_OK) {
				st->first_err = err;
				snprintf(st->first_detail, sizeof(st->first_detail), "%s",
					 tl_producer_last_error(producer));
			}
			if (err_stops_input(err)) {
				stop = err;
				break;
			}
		}
		tl_producer_poll(producer, 0);
		if (txn->open && ++txn->in_txn >= o->txn_every && o->txn_every > 0)
			if ((stop = txn_commit(cli, producer, txn, st)) != TL_OK)
				break;
		if (show_rate)
			rate_line(st, false);
	}
	free(line);
	free(in);
	return stop;
}

static int produce_report(const struct cli *cli, const struct produce_opts *o,
			  struct produce_state *st, bool topic_missing, bool show_rate)
{
	double secs = (double)(tl_mono_ns() - st->started_ns) / 1e9;
	if (show_rate && st->rate_shown)
		rate_line(st, true);
	int64_t unreported = st->sent - st->delivered - st->failed;
	if (unreported > 0) {
		st->failed += unreported; /* not delivered within the flush wait */
		if (st->first_err == TL_OK) {
			st->first_err = TL_ERR_TIMED_OUT;
			snprintf(st->first_detail, sizeof(st->first_detail),
				 "%lld records were not acknowledged in time",
				 (long long)unreported);
		}
	}
	if (st->failed > 0) {
		if (topic_missing && (st->first_err == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION ||
				      st->first_err == TL_ERR_TIMED_OUT)) {
			cli_error(
				cli,
				"topic \"%s\" does not exist and the broker did not create it (auto.create.topics.enable is off); create it first: tally topic create %s",
				o->topic, o->topic);
			st->first_err = TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		} else {
			cli_error(cli, "%lld of %lld records failed; first: %s",
				  (long long)st->failed, (long long)st->sent, st->first_detail);
		}
	}
	if (cli->verbosity >= 0 && (cli->stderr_tty || cli->verbosity > 0))
		cli_info(cli, "%lld records to %s in %.2fs, %lld failed", (long long)st->delivered,
			 o->topic, secs, (long long)st->failed);
	if (cli_interrupted)
		return CLI_EXIT_INTERRUPTED;
	if (st->failed == 0)
		return CLI_EXIT_OK;
	if (st->delivered > 0)
		return CLI_EXIT_PARTIAL;
	int rc = cli_exit_for(st->first_err);
	return rc == CLI_EXIT_OK ? CLI_EXIT_ERROR : rc;
}

/* Checks the cluster and the topic before reading any input. */
static int produce_preflight(struct cli *cli, const struct produce_opts *o, bool *missing)
{
	struct tl_admin *admin;
	if (cli_admin_create(cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	int rc = cli_check_cluster(cli, admin);
	struct tl_admin_topics *topics = NULL;
	if (rc == CLI_EXIT_OK)
		rc = cli_describe_topics(cli, admin, &o->topic, 1, true, missing, &topics);
	if (rc == CLI_EXIT_OK && *missing) {
		/* Ask as a producer would, which lets the broker auto-create it. */
		tl_admin_topics_destroy(topics);
		topics = NULL;
		tl_admin_destroy(admin);
		if (cli_admin_create(cli, true, &admin) != TL_OK)
			return CLI_EXIT_USAGE;
		rc = cli_describe_topics(cli, admin, &o->topic, 1, true, missing, &topics);
		if (rc == CLI_EXIT_OK && *missing) {
			cli_error(
				cli,
				"topic \"%s\" does not exist and the broker does not create topics on use (auto.create.topics.enable=false); create it first: tally topic create %s",
				o->topic, o->topic);
			rc = CLI_EXIT_NOT_FOUND;
		}
	}
	if (rc == CLI_EXIT_OK && !*missing && o->partition >= 0 &&
	    o->partition >= topics->topics[0].partition_count) {
		cli_error(cli, "topic %s has %d partitions; partition %d does not exist", o->topic,
			  topics->topics[0].partition_count, o->partition);
		rc = CLI_EXIT_NOT_FOUND;
	}
	tl_admin_topics_destroy(topics);
	tl_admin_destroy(admin);
	return rc;
}

int cli_produce(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"key-delimiter", required_argument, NULL, 'K'},
		{"header", required_argument, NULL, 'H'},
		{"partition", required_argument, NULL, 'p'},
		{"delimiter", required_argument, NULL, 'D'},
		{"compression", required_argument, NULL, 'z'},
		{"json", no_argument, NULL, OPT_JSON},
		{"ignore-partition", no_argument, NULL, OPT_IGNORE_PARTITION},
		{"acks", required_argument, NULL, OPT_ACKS},
		{"no-idempotence", no_argument, NULL, OPT_NO_IDEMPOTENCE},
		{"txn-id", required_argument, NULL, OPT_TXN_ID},
		{"txn-every", required_argument, NULL, OPT_TXN_EVERY},
		{"rate", no_argument, NULL, OPT_RATE},
		{"no-rate", no_argument, NULL, OPT_NO_RATE},
		CLI_GLOBAL_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	struct produce_opts o;
	memset(&o, 0, sizeof(o));
	o.partition = -1;
	o.delimiter = '\n';
	o.rate = -1;
	int rc;
	int first =
		cli_parse_options(cli, "produce", argc, argv, CLI_GLOBAL_SHORT "k:K:H:p:D:z:", opts,
				  produce_option, &o, &rc);
	if (first < 0)
		return rc;
	if (argc - first != 1)
		return cli_usage(cli, "produce", "produce wants one topic");
	o.topic = argv[first];
	if (o.key && o.key_delim)
		return cli_usage(cli, "produce", "use --key or --key-delimiter, not both");
	if (o.json && (o.key || o.key_delim))
		return cli_usage(cli, "produce", "--json takes keys from the envelope; drop -k/-K");
	if (o.txn_every && !o.txn_id)
		return cli_usage(cli, "produce", "--txn-every needs --txn-id");
	if (o.txn_id && o.acks && strcmp(o.acks, "all") != 0)
		return cli_usage(cli, "produce", "transactions need --acks all");
	bool missing = false;
	rc = produce_preflight(cli, &o, &missing);
	if (rc != CLI_EXIT_OK)
		return rc;
	struct produce_state st;
	memset(&st, 0, sizeof(st));
	st.cli = cli;
	struct tl_producer *producer;
	if (producer_make(cli, &o, &st, &producer) != TL_OK)
		return CLI_EXIT_USAGE;
	struct txn_state txn = {o.txn_id != NULL, false, 0};
	if (txn.on) {
		tl_err err = tl_producer_init_transactions(producer, cli->timeout_ms);
		if (err != TL_OK) {
			cli_error(cli, "cannot start transactions for %s: %s", o.txn_id,
				  tl_producer_last_error(producer));
			tl_producer_destroy(producer);
			return cli_exit_for(err) == CLI_EXIT_OK ? CLI_EXIT_ERROR
								: cli_exit_for(err);
		}
	}
	bool show_rate = o.rate == 1 || (o.rate == -1 && cli->stderr_tty && !cli->stdin_tty &&
					 cli->verbosity >= 0);
	if (cli->stdin_tty)
		cli_info(cli, "type records, one per line; end with ^D");
	st.started_ns = st.rate_at_ns = tl_mono_ns();
	tl_err stop = produce_loop(cli, &o, producer, &st, &txn, show_rate);
	if (txn.open && (stop != TL_OK || cli_interrupted)) {
		(void)tl_producer_abort_transaction(producer, cli->timeout_ms);
		txn.open = false;
	}
	(void)txn_commit(cli, producer, &txn, &st);
	int64_t flush_ms = (int64_t)cli->timeout_ms * 3 + 5000;
	(void)tl_producer_flush(producer, (int)(flush_ms > INT32_MAX ? INT32_MAX : flush_ms));
	rc = produce_report(cli, &o, &st, missing, show_rate);
	tl_producer_destroy(producer);
	for (int32_t i = 0; i < o.header_count; i++)
		free((char *)(uintptr_t)o.headers[i].key);
	return rc;
}
