/* tail.c - `tally tail TOPIC...`: prints records through a libtally consumer, following
 * new ones by default, or a bounded range (-o START:STOP, -e) with a progress bar.
 * (1) A partition is done once its position reaches its stop offset, or it printed its
 *     quota (+N), or it showed a record at or after the stop time; done partitions
 *     print nothing more. The command ends when every bounded partition is done.
 * (2) Stop offsets of `end` are the end offsets when the command started (the last
 *     stable offset for read_committed), so a busy topic still ends.
 * (3) stdout is flushed whenever the consumer has nothing buffered and at least every
 *     200 ms, so a live record shows within the fetch wait plus that. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/time.h"
#include "tally/consumer.h"

#define TAIL_TOPICS_MAX      64
#define TAIL_FLUSH_NS        (200 * 1000000LL)
#define TAIL_STATUS_NS       (250 * 1000000LL)
#define TAIL_CHECK_NS        (50 * 1000000LL)
#define TAIL_POLL_MS         100
#define TAIL_PARTITION_LIMIT 100000

enum encoding {
	ENC_RAW,
	ENC_HEX,
	ENC_BASE64,
	ENC_ESCAPE,
};

struct tail_opts {
	const char *topics[TAIL_TOPICS_MAX];
	int32_t topic_count;
	struct cli_offset_spec spec;
	bool spec_set;
	bool exit_at_end;
	int64_t count;
	const char *partitions; /* -p list, parsed per topic */
	const char *group;
	const char *format;
	const char *key_delim;
	bool json;
	enum encoding enc;
	bool read_uncommitted;
	bool show_control;
	int rate; /* -1 auto, 0 off, 1 on */
};

enum stop_kind {
	STOP_NONE,
	STOP_OFFSET,
	STOP_COUNT,
	STOP_TIME,
};

struct tail_part {
	const char *topic;
	int32_t partition;
	int64_t start;       /* offset or TL_CONSUMER_OFFSET_* */
	int64_t start_ts;    /* for TL_CONSUMER_OFFSET_TIMESTAMP */
	enum stop_kind stop; /* how it ends */
	int64_t stop_offset; /* exclusive bound; -1 none (also bounds COUNT and TIME with -e) */
	int64_t stop_count;  /* STOP_COUNT */
	int64_t stop_time;   /* STOP_TIME */
	int64_t seen;        /* records printed */
	int64_t first_pos;   /* first known position, for progress; -1 */
	int64_t last_offset; /* of the record printed last, -1 (since its assignment) */
	bool done;
	bool failed;
};

struct tail_run {
	struct cli *cli;
	struct tail_opts *o;
	struct tl_consumer *consumer;
	struct tail_part *parts;
	int32_t part_count;
	bool bounded; /* every partition has a stop */
	int64_t printed;
	int64_t bytes;
	int64_t started_ns;
	int64_t flushed_ns;
	int64_t status_ns;
	int64_t status_count;
	int64_t checked_ns;
	bool status_shown;
	bool show_status;
	bool out_failed; /* stdout closed (EPIPE) */
	int errors;
};

enum {
	OPT_JSON = CLI_OPT_FIRST_LOCAL,
	OPT_READ_UNCOMMITTED,
	OPT_SHOW_CONTROL,
	OPT_RATE,
	OPT_NO_RATE,
};

static int tail_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct tail_opts *o = ctx;
	char why[512];
	int64_t v;
	switch (opt) {
	case 'o':
		if (!cli_offset_spec_parse(arg, &o->spec, why, sizeof(why)))
			return cli_usage(cli, "tail", "%s", why);
		o->spec_set = true;
		return 0;
	case 'e':
		o->exit_at_end = true;
		return 0;
	case 'n':
		if (!cli_parse_int64(arg, &v) || v <= 0)
			return cli_usage(cli, "tail", "--count wants a number > 0, not \"%s\"",
					 arg);
		o->count = v;
		return 0;
	case 'p':
		o->partitions = arg;
		return 0;
	case 'g':
		if (!arg[0])
			return cli_usage(cli, "tail", "--group must not be empty");
		o->group = arg;
		return 0;
	case 'f':
		o->format = arg;
		return 0;
	case 'K':
		o->key_delim = arg;
		return 0;
	case 'E':
		if (strcmp(arg, "raw") == 0)
			o->enc = ENC_RAW;
		else if (strcmp(arg, "hex") == 0)
			o->enc = ENC_HEX;
		else if (strcmp(arg, "base64") == 0)
			o->enc = ENC_BASE64;
		else if (strcmp(arg, "escape") == 0)
			o->enc = ENC_ESCAPE;
		else
			return cli_usage(cli, "tail", "--encoding is raw, hex, base64 or escape");
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_READ_UNCOMMITTED:
		o->read_uncommitted = true;
		return 0;
	case OPT_SHOW_CONTROL:
		o->show_control = true;
		return 0;
	case OPT_RATE:
		o->rate = 1;
		return 0;
	case OPT_NO_RATE:
		o->rate = 0;
		return 0;
	default:
		return cli_usage(cli, "tail", "unexpected option");
	}
}

/* ---- printing ---- */

static void put_bytes(enum encoding enc, const void *data, int32_t len)
{
	if (!data || len <= 0)
		return;
	switch (enc) {
	case ENC_RAW:
		fwrite(data, 1, (size_t)len, stdout);
		break;
	case ENC_HEX:
		cli_hex_encode(stdout, data, (size_t)len);
		break;
	case ENC_BASE64:
		cli_base64_encode(stdout, data, (size_t)len);
		break;
	case ENC_ESCAPE:
		cli_escape_encode(stdout, data, (size_t)len);
		break;
	}
}

static const char *control_name(int8_t type)
{
	return type == TL_CONSUMER_CONTROL_COMMIT  ? "COMMIT"
	       : type == TL_CONSUMER_CONTROL_ABORT ? "ABORT"
	       : type == TL_CONSUMER_CONTROL_NONE  ? ""
						   : "CONTROL";
}

/* "name":"..." or "name_b64":"..." or "name":null. */
static void json_bytes_field(const char *name, const void *data, int32_t len, bool force_b64,
			     bool comma)
{
	if (comma)
		fputc(',', stdout);
	if (!data || len < 0) {
		fprintf(stdout, "\"%s\":null", name);
		return;
	}
	if (force_b64 || !cli_utf8_valid(data, (size_t)len)) {
		fprintf(stdout, "\"%s_b64\":\"", name);
		cli_base64_encode(stdout, data, (size_t)len);
	} else {
		fprintf(stdout, "\"%s\":\"", name);
		cli_json_escape(stdout, data, (size_t)len);
	}
	fputc('"', stdout);
}

static void print_json(const struct tail_opts *o, const struct tl_consumer_record *r)
{
	bool b64 = o->enc == ENC_BASE64;
	fputs("{\"topic\":\"", stdout);
	cli_json_escape(stdout, r->topic, strlen(r->topic));
	fprintf(stdout, "\",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld", r->partition,
		(long long)r->offset, (long long)r->timestamp_ms);
	json_bytes_field("key", r->key, r->key_len, b64, true);
	json_bytes_field("value", r->value, r->value_len, b64, true);
	fputs(",\"headers\":[", stdout);
	for (int32_t i = 0; i < r->header_count; i++) {
		const struct tl_consumer_header *h = &r->headers[i];
		fputs(i ? ",{\"key\":\"" : "{\"key\":\"", stdout);
		cli_json_escape(stdout, h->key, (size_t)h->key_len);
		fputc('"', stdout);
		json_bytes_field("value", h->value, h->value_len, b64, true);
		fputc('}', stdout);
	}
	fputc(']', stdout);
	if (r->producer_id >= 0)
		fprintf(stdout, ",\"producer_id\":%lld,\"producer_epoch\":%d,\"sequence\":%d",
			(long long)r->producer_id, r->producer_epoch, r->sequence);
	if (r->is_transactional)
		fputs(",\"transactional\":true", stdout);
	if (r->control_type != TL_CONSUMER_CONTROL_NONE)
		fprintf(stdout, ",\"control\":\"%s\"", control_name(r->control_type));
	fputs("}\n", stdout);
}

static void print_yaml(const struct cli *cli, const struct tl_consumer_record *r)
{
	struct cli_node *doc = cli_node_object();
	cli_add_str(doc, "topic", r->topic);
	cli_add_int(doc, "partition", r->partition);
	cli_add_int(doc, "offset", r->offset);
	cli_add_int(doc, "timestamp", r->timestamp_ms);
	cli_add_bytes(doc, "key", r->key, r->key_len);
	cli_add_bytes(doc, "value", r->value, r->value_len);
	struct cli_node *hs = cli_add_array(doc, "headers");
	for (int32_t i = 0; i < r->header_count; i++) {
		struct cli_node *h = cli_add_object(hs, NULL);
		cli_add_bytes(h, "key", r->headers[i].key, r->headers[i].key_len);
		cli_add_bytes(h, "value", r->headers[i].value, r->headers[i].value_len);
	}
	if (r->producer_id >= 0) {
		cli_add_int(doc, "producer_id", r->producer_id);
		cli_add_int(doc, "producer_epoch", r->producer_epoch);
		cli_add_int(doc, "sequence", r->sequence);
	}
	if (r->control_type != TL_CONSUMER_CONTROL_NONE)
		cli_add_str(doc, "control", control_name(r->control_type));
	fputs("---\n", stdout);
	cli_node_print(cli, doc, stdout);
	cli_node_destroy(doc);
}

static void print_headers(enum encoding enc, const struct tl_consumer_record *r)
{
	for (int32_t i = 0; i < r->header_count; i++) {
		if (i)
			fputc(',', stdout);
		put_bytes(enc, r->headers[i].key, r->headers[i].key_len);
		fputc('=', stdout);
		put_bytes(enc, r->headers[i].value, r->headers[i].value_len);
	}
}

/* Prints one verb; false for an unknown one (checked up front by format_check). */
static bool print_verb(const struct tail_opts *o, char verb, const struct tl_consumer_record *r)
{
	char ts[40];
	switch (verb) {
	case 't':
		fputs(r->topic, stdout);
		return true;
	case 'p':
		fprintf(stdout, "%d", r->partition);
		return true;
	case 'o':
		fprintf(stdout, "%lld", (long long)r->offset);
		return true;
	case 'k':
		put_bytes(o->enc, r->key, r->key_len);
		return true;
	case 'v':
	case 's':
		put_bytes(o->enc, r->value, r->value_len);
		return true;
	case 'h':
		print_headers(o->enc, r);
		return true;
	case 'K':
		fprintf(stdout, "%d", r->key_len);
		return true;
	case 'V':
	case 'S':
		fprintf(stdout, "%d", r->value_len);
		return true;
	case 'T':
		fprintf(stdout, "%lld", (long long)r->timestamp_ms);
		return true;
	case 'd':
		cli_format_time(r->timestamp_ms, ts, sizeof(ts));
		fputs(ts, stdout);
		return true;
	case 'I':
		fprintf(stdout, "%lld", (long long)r->producer_id);
		return true;
	case 'E':
		fprintf(stdout, "%d", r->producer_epoch);
		return true;
	case 'Q':
		fprintf(stdout, "%d", r->sequence);
		return true;
	case 'C':
		fputs(control_name(r->control_type), stdout);
		return true;
	case 'x':
		fputs(r->is_transactional ? "txn" : "-", stdout);
		return true;
	case '%':
		fputc('%', stdout);
		return true;
	default:
		return false;
	}
}

static bool format_check(const char *fmt, char *bad_out)
{
	for (const char *p = fmt; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p != '%')
			continue;
		p++;
		if (!*p || !strchr("tpokvshKVSTdIEQCx%", *p)) {
			*bad_out = *p ? *p : ' ';
			return false;
		}
	}
	return true;
}

static void print_format(const struct tail_opts *o, const char *fmt,
			 const struct tl_consumer_record *r)
{
	for (const char *p = fmt; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == '0' ? '\0' : *p;
			fputc(c, stdout);
		} else if (*p == '%' && p[1]) {
			p++;
			print_verb(o, *p, r);
		} else {
			fputc(*p, stdout);
		}
	}
}

static void print_record(struct tail_run *run, const struct tl_consumer_record *r)
{
	const struct tail_opts *o = run->o;
	if (o->json || run->cli->format == CLI_FORMAT_JSON) {
		print_json(o, r);
	} else if (run->cli->format == CLI_FORMAT_YAML) {
		print_yaml(run->cli, r);
	} else if (o->format) {
		print_format(o, o->format, r);
	} else if (r->control_type != TL_CONSUMER_CONTROL_NONE) {
		fprintf(stdout, "[%s marker: producer %lld epoch %d, %s [%d] offset %lld]\n",
			control_name(r->control_type), (long long)r->producer_id, r->producer_epoch,
			r->topic, r->partition, (long long)r->offset);
	} else if (o->key_delim) {
		put_bytes(o->enc, r->key, r->key_len);
		fputs(o->key_delim, stdout);
		put_bytes(o->enc, r->value, r->value_len);
		fputc('\n', stdout);
	} else {
		put_bytes(o->enc, r->value, r->value_len);
		fputc('\n', stdout);
	}
	run->printed++;
	run->bytes += r->value_len > 0 ? r->value_len : 0;
}

/* ---- the status line and progress bar (stderr) ---- */

static void status_draw(struct tail_run *run, bool final)
{
	int64_t now = tl_mono_ns();
	if (!run->show_status || (!final && now - run->status_ns < TAIL_STATUS_NS))
		return;
	double window = (double)(now - run->status_ns) / 1e9;
	double rate = window > 0 ? (double)(run->printed - run->status_count) / window : 0;
	if (final) {
		double secs = (double)(now - run->started_ns) / 1e9;
		rate = secs > 0 ? (double)run->printed / secs : 0;
	}
	run->status_ns = now;
	run->status_count = run->printed;
	char a[32], b[32], c[32];
	if (!run->bounded) {
		fprintf(stderr, "\r\033[K%s records, %s/s%s",
			cli_group_digits(run->printed, a, sizeof(a)),
			cli_group_digits((int64_t)rate, b, sizeof(b)), final ? "\n" : "");
		run->status_shown = true;
		return;
	}
	int64_t total = 0, done = 0;
	for (int32_t i = 0; i < run->part_count; i++) {
		struct tail_part *p = &run->parts[i];
		if (p->stop == STOP_COUNT) {
			total += p->stop_count;
			done += p->done ? p->stop_count : p->seen;
			continue;
		}
		/* STOP_OFFSET, and STOP_TIME by its bound at today's end. */
		if (p->stop_offset < 0 || p->first_pos < 0 || p->stop_offset < p->first_pos)
			continue;
		int64_t pos = tl_consumer_position(run->consumer, p->topic, p->partition);
		if (p->done || pos > p->stop_offset)
			pos = p->stop_offset;
		total += p->stop_offset - p->first_pos;
		done += pos > p->first_pos ? pos - p->first_pos : 0;
	}
	double frac = total > 0 ? (double)done / (double)total : 1.0;
	char bar[31];
	int fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[30] = '\0';
	char eta[32] = "--:--";
	if (rate > 0 && total > done) {
		int64_t secs = (int64_t)((double)(total - done) / rate);
		snprintf(eta, sizeof(eta), "%lld:%02lld", (long long)(secs / 60),
			 (long long)(secs % 60));
	} else if (total <= done) {
		snprintf(eta, sizeof(eta), "0:00");
	}
	fprintf(stderr, "\r\033[K[%s] %3.0f%% %s/%s offsets, %s records/s, ETA %s%s", bar,
		frac * 100, cli_group_digits(done, a, sizeof(a)),
		cli_group_digits(total, b, sizeof(b)),
		cli_group_digits((int64_t)rate, c, sizeof(c)), eta, final ? "\n" : "");
	run->status_shown = true;
}

/* ---- partitions and their bounds ---- */

static int part_cmp(const void *a, const void *b)
{
	const struct tail_part *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	if (c != 0)
		return c;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static struct tail_part *part_find(struct tail_run *run, const char *topic, int32_t partition)
{
	struct tail_part key;
	key.topic = topic;
	key.partition = partition;
	return bsearch(&key, run->parts, (size_t)run->part_count, sizeof(*run->parts), part_cmp);
}

/* Parses "0,2,5-7" into @sel (a bitmap of @count partitions). */
static bool partitions_parse(const char *list, int32_t count, bool *sel, char *why, size_t why_size)
{
	const char *p = list;
	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b;
		if (end == p || a < 0)
			goto bad;
		b = a;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p || b < a)
				goto bad;
		}
		for (long i = a; i <= b; i++) {
			if (i >= count) {
				snprintf(why, why_size,
					 "partition %ld does not exist (the topic has %d)", i,
					 count);
				return false;
			}
			sel[i] = true;
		}
		if (*end == ',')
			end++;
		else if (*end != '\0')
			goto bad;
		p = end;
	}
	return true;
bad:
	snprintf(why, why_size, "bad partition list \"%s\": use 0,2,5-7", list);
	return false;
}

/* Builds run->parts from the topics' metadata and -p. */
static int parts_build(struct tail_run *run, const struct tl_admin_topics *topics)
{
	int32_t total = 0;
	for (int32_t i = 0; i < topics->count; i++)
		total += topics->topics[i].partition_count;
	if (total > TAIL_PARTITION_LIMIT)
		total = TAIL_PARTITION_LIMIT;
	run->parts = calloc((size_t)total + 1, sizeof(*run->parts));
	if (!run->parts)
		return CLI_EXIT_ERROR;
	for (int32_t i = 0; i < topics->count; i++) {
		const struct tl_admin_topic_info *t = &topics->topics[i];
		bool *sel = calloc((size_t)t->partition_count + 1, sizeof(*sel));
		if (!sel)
			return CLI_EXIT_ERROR;
		char why[256];
		if (run->o->partitions && !partitions_parse(run->o->partitions, t->partition_count,
							    sel, why, sizeof(why))) {
			free(sel);
			cli_error(run->cli, "%s: %s", t->name, why);
			return CLI_EXIT_NOT_FOUND;
		}
		for (int32_t p = 0; p < t->partition_count && run->part_count < total; p++) {
			if (run->o->partitions && !sel[p])
				continue;
			struct tail_part *tp = &run->parts[run->part_count++];
			tp->topic = run->o->topics[i];
			tp->partition = p;
			tp->stop_offset = -1;
			tp->first_pos = -1;
			tp->last_offset = -1;
		}
		free(sel);
	}
	qsort(run->parts, (size_t)run->part_count, sizeof(*run->parts), part_cmp);
	return CLI_EXIT_OK;
}

static bool spec_needs_offsets(const struct tail_opts *o)
{
	const struct cli_offset_spec *s = &o->spec;
	return o->exit_at_end || s->start.kind == CLI_POS_FROM_END ||
	       s->start.kind == CLI_POS_FROM_START || s->has_stop;
}

/* Resolves each partition's start and stop from the spec and the current offsets
 * (@earliest/@latest, -1 when not fetched). */
static void part_bounds(const struct tail_opts *o, struct tail_part *p, int64_t earliest,
			int64_t latest)
{
	const struct cli_offset_spec *s = &o->spec;
	switch (s->start.kind) {
	case CLI_POS_DEFAULT:
		p->start = o->group                        ? TL_CONSUMER_OFFSET_COMMITTED
			   : s->has_stop || o->exit_at_end ? TL_CONSUMER_OFFSET_BEGINNING
							   : TL_CONSUMER_OFFSET_END;
		break;
	case CLI_POS_BEGINNING:
		p->start = TL_CONSUMER_OFFSET_BEGINNING;
		break;
	case CLI_POS_END:
		p->start = TL_CONSUMER_OFFSET_END;
		break;
	case CLI_POS_OFFSET:
		p->start = s->start.value;
		break;
	case CLI_POS_FROM_END:
		p->start = latest - s->start.value < earliest ? earliest : latest - s->start.value;
		break;
	case CLI_POS_FROM_START:
		p->start = earliest + s->start.value;
		break;
	case CLI_POS_TIME:
		p->start = TL_CONSUMER_OFFSET_TIMESTAMP;
		p->start_ts = s->start.value;
		break;
	}
	p->stop = STOP_NONE;
	if (s->has_stop) {
		switch (s->stop.kind) {
		case CLI_POS_END:
			p->stop = STOP_OFFSET;
			p->stop_offset = latest;
			break;
		case CLI_POS_OFFSET:
			p->stop = STOP_OFFSET;
			p->stop_offset = s->stop.value;
			break;
		case CLI_POS_FROM_END:
			p->stop = STOP_OFFSET;
			p->stop_offset = latest - s->stop.value;
			break;
		case CLI_POS_FROM_START:
			p->stop = STOP_COUNT;
			p->stop_count = s->stop.value;
			break;
		case CLI_POS_TIME:
			p->stop = STOP_TIME;
			p->stop_time = s->stop.value;
			p->stop_offset = latest; /* and never past today's end */
			break;
		case CLI_POS_DEFAULT:
		case CLI_POS_BEGINNING:
			break;
		}
	}
	if (o->exit_at_end) {
		if (p->stop == STOP_NONE)
			p->stop = STOP_OFFSET;
		if (p->stop_offset < 0 || p->stop_offset > latest)
			p->stop_offset = latest;
	}
	if (p->stop == STOP_OFFSET && p->start >= 0 && p->stop_offset <= p->start)
		p->done = true;
}

static int parts_resolve(struct tail_run *run, struct tl_admin *admin)
{
	int32_t n = run->part_count;
	if (!spec_needs_offsets(run->o)) {
		for (int32_t i = 0; i < n; i++)
			part_bounds(run->o, &run->parts[i], -1, -1);
		return CLI_EXIT_OK;
	}
	struct tl_admin_offset_query *q = calloc((size_t)n * 2 + 1, sizeof(*q));
	if (!q)
		return CLI_EXIT_ERROR;
	for (int32_t i = 0; i < n; i++) {
		q[i].topic = q[n + i].topic = run->parts[i].topic;
		q[i].partition = q[n + i].partition = run->parts[i].partition;
		q[i].timestamp = TL_ADMIN_OFFSET_EARLIEST;
		q[n + i].timestamp = TL_ADMIN_OFFSET_LATEST;
	}
	int8_t isolation = run->o->read_uncommitted ? 0 : 1;
	tl_err err = tl_admin_list_offsets(admin, q, n * 2, isolation, run->cli->timeout_ms);
	int rc = CLI_EXIT_OK;
	if (err != TL_OK)
		rc = cli_admin_fail(run->cli, admin, err, "ListOffsets");
	for (int32_t i = 0; rc == CLI_EXIT_OK && i < n * 2; i++) {
		if (q[i].err != TL_OK) {
			cli_error(run->cli, "offsets of %s [%d]: %s", q[i].topic, q[i].partition,
				  tl_err_message(q[i].err));
			rc = cli_exit_for(q[i].err);
		}
	}
	for (int32_t i = 0; rc == CLI_EXIT_OK && i < n; i++)
		part_bounds(run->o, &run->parts[i], q[i].offset, q[n + i].offset);
	free(q);
	return rc;
}

/* ---- the consumer ---- */

static tl_err conf_set(const struct cli *cli, struct tl_consumer_conf *conf, const char *key,
		       const char *value)
{
	char errstr[512];
	tl_err err = tl_consumer_conf_set(conf, key, value, errstr, sizeof(errstr));
	if (err != TL_OK)
		cli_error(cli, "%s", errstr);
	return err;
}

/* -g: says which partitions the group gave or took, as "topic [0,1] other [3]"; before
 * they go, flushes what was printed, which the auto-commit after this counts as done. */
static void on_rebalance(struct tl_consumer *consumer, int event,
			 const struct tl_consumer_partition *parts, int32_t count, void *opaque)
{
	struct tail_run *run = opaque;
	(void)consumer;
	if (event != TL_CONSUMER_ASSIGNED && fflush(stdout) == EOF)
		run->out_failed = true;
	for (int32_t i = 0; event == TL_CONSUMER_ASSIGNED && i < count; i++) {
		/* A handover starts from the group's commit, maybe below what was printed. */
		struct tail_part *p = part_find(run, parts[i].topic, parts[i].partition);
		if (p)
			p->last_offset = -1;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (!mem)
		return;
	for (int32_t i = 0; i < count; i++) {
		bool same = i > 0 && strcmp(parts[i].topic, parts[i - 1].topic) == 0;
		bool last = i + 1 == count || strcmp(parts[i].topic, parts[i + 1].topic) != 0;
		if (!same)
			fprintf(mem, "%s%s [", i > 0 ? " " : "", parts[i].topic);
		fprintf(mem, "%s%d%s", same ? "," : "", parts[i].partition, last ? "]" : "");
	}
	if (count == 0)
		fputs("no partitions", mem);
	fclose(mem);
	cli_info(run->cli, "group %s: %s %s", run->o->group,
		 event == TL_CONSUMER_ASSIGNED  ? "assigned"
		 : event == TL_CONSUMER_REVOKED ? "revoked"
						: "lost",
		 text ? text : "");
	free(text);
}

static tl_err consumer_make(struct tail_run *run)
{
	const struct cli *cli = run->cli;
	const struct tail_opts *o = run->o;
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	if (!conf)
		return TL_ERR_NOMEM;
	char request_ms[32];
	snprintf(request_ms, sizeof(request_ms), "%d",
		 cli->timeout_ms > 1000 ? cli->timeout_ms : 1000);
	tl_err err = conf_set(cli, conf, "bootstrap.servers", cli->brokers);
	if (err == TL_OK)
		err = conf_set(cli, conf, "client.id", "tally");
	if (err == TL_OK)
		err = conf_set(cli, conf, "fetch.max.wait.ms", "100");
	if (err == TL_OK)
		err = conf_set(cli, conf, "request.timeout.ms", request_ms);
	if (err == TL_OK)
		err = conf_set(cli, conf, "allow.auto.create.topics", "false");
	if (err == TL_OK && o->read_uncommitted)
		err = conf_set(cli, conf, "isolation.level", "read_uncommitted");
	if (err == TL_OK && o->show_control)
		err = conf_set(cli, conf, "return.control.records", "true");
	if (err == TL_OK && o->group) {
		tl_consumer_conf_set_rebalance_cb(conf, on_rebalance, run);
		err = conf_set(cli, conf, "group.id", o->group);
		if (err == TL_OK)
			err = conf_set(cli, conf, "auto.offset.reset",
				       o->spec.start.kind == CLI_POS_BEGINNING ? "earliest"
									       : "latest");
	} else if (err == TL_OK) {
		err = conf_set(cli, conf, "enable.auto.commit", "false");
		if (err == TL_OK)
			err = conf_set(cli, conf, "auto.offset.reset", "latest");
	}
	for (int32_t i = 0; err == TL_OK && i < cli->conf_count; i++)
		err = conf_set(cli, conf, cli->conf[i].key, cli->conf[i].value);
	if (err == TL_OK) {
		char errstr[512];
		err = tl_consumer_create(conf, &run->consumer, errstr, sizeof(errstr));
		if (err != TL_OK)
			cli_error(cli, "%s", errstr);
	}
	tl_consumer_conf_destroy(conf);
	return err;
}

static tl_err consumer_start(struct tail_run *run)
{
	if (run->o->group)
		return tl_consumer_subscribe(run->consumer, run->o->topics, run->o->topic_count);
	struct tl_consumer_partition *assign = calloc((size_t)run->part_count + 1, sizeof(*assign));
	if (!assign)
		return TL_ERR_NOMEM;
	int32_t n = 0;
	for (int32_t i = 0; i < run->part_count; i++) {
		const struct tail_part *p = &run->parts[i];
		if (p->done)
			continue;
		assign[n].topic = p->topic;
		assign[n].partition = p->partition;
		assign[n].offset = p->start;
		assign[n].timestamp_ms = p->start_ts;
		n++;
	}
	tl_err err = tl_consumer_assign(run->consumer, assign, n);
	free(assign);
	return err;
}

/* ---- the loop ---- */

/* Applies the stops to one record; true when it is to be printed. */
static bool part_accept(struct tail_run *run, struct tail_part *p,
			const struct tl_consumer_record *r)
{
	if (!p || p->done)
		return false;
	if (p->first_pos < 0)
		p->first_pos = r->offset;
	if (p->stop_offset >= 0 && p->stop != STOP_NONE && r->offset >= p->stop_offset) {
		p->done = true;
		return false;
	}
	if (p->stop == STOP_TIME && r->control_type == TL_CONSUMER_CONTROL_NONE &&
	    r->timestamp_ms >= p->stop_time) {
		p->done = true;
		return false;
	}
	p->seen++;
	if (p->stop == STOP_COUNT && p->seen >= p->stop_count)
		p->done = true;
	(void)run;
	return true;
}

/* True when @p counts for ending: with a group, only assigned partitions do. */
static bool part_assigned(struct tail_run *run, const struct tail_part *p,
			  const struct tl_consumer_partition *assigned, int32_t count)
{
	if (!run->o->group)
		return true;
	for (int32_t i = 0; i < count; i++)
		if (assigned[i].partition == p->partition &&
		    strcmp(assigned[i].topic, p->topic) == 0)
			return true;
	return false;
}

/* Marks partitions whose position reached their stop; true when all bounded ones are
 * done (and, with a group, the assignment is known). */
static bool parts_check(struct tail_run *run)
{
	struct tl_consumer_partition *assigned = NULL;
	int32_t count = 0;
	if (run->o->group) {
		count = tl_consumer_assignment(run->consumer, NULL, 0);
		if (count <= 0)
			return false;
		assigned = calloc((size_t)count, sizeof(*assigned));
		if (!assigned)
			return false;
		count = tl_consumer_assignment(run->consumer, assigned, count);
	}
	bool all = true;
	for (int32_t i = 0; i < run->part_count; i++) {
		struct tail_part *p = &run->parts[i];
		if (!part_assigned(run, p, assigned, count))
			continue;
		if (p->stop == STOP_NONE) {
			all = false;
			continue;
		}
		int64_t pos = tl_consumer_position(run->consumer, p->topic, p->partition);
		if (pos >= 0 && p->first_pos < 0)
			p->first_pos = pos;
		if (!p->done && p->stop_offset >= 0 && pos >= p->stop_offset)
			p->done = true;
		if (!p->done)
			all = false;
	}
	free(assigned);
	return all;
}

static void stdout_flush(struct tail_run *run)
{
	if (fflush(stdout) != 0) {
		if (errno != EPIPE)
			cli_error(run->cli, "writing to stdout failed: %s", strerror(errno));
		run->out_failed = true;
	}
	run->flushed_ns = tl_mono_ns();
}

/* Reports a partition error once; a paused partition is done (and failed). */
static void poll_error(struct tail_run *run, tl_err err)
{
	const char *detail = tl_consumer_last_error(run->consumer);
	cli_error(run->cli, "%s", detail[0] ? detail : tl_err_message(err));
	run->errors++;
	for (int32_t i = 0; i < run->part_count; i++) {
		struct tail_part *p = &run->parts[i];
		char prefix[512];
		snprintf(prefix, sizeof(prefix), "%s [%d]:", p->topic, p->partition);
		if (strncmp(detail, prefix, strlen(prefix)) == 0) {
			p->done = true;
			p->failed = true;
		}
	}
}

/* Offsets of one partition only go back when libtally found its log truncated below
 * the position (KIP-320: an unclean leader election lost records printed above) and
 * moved back to where the new leader's log diverged: say so, or the repeated offsets
 * with other records look like a bug. */
static void offset_went_back(struct tail_run *run, struct tail_part *p, int64_t offset)
{
	if (p->last_offset >= 0 && offset <= p->last_offset) {
		stdout_flush(run); /* the warning lands after what was printed before it */
		cli_warn(
			run->cli,
			"%s [%d]: offsets went back from %lld to %lld: the partition's log was truncated (an unclean leader election lost records printed above); printing the new leader's records from %lld",
			p->topic, p->partition, (long long)p->last_offset, (long long)offset,
			(long long)offset);
	}
	p->last_offset = offset;
}

static int tail_loop(struct tail_run *run)
{
	bool bounded = run->bounded;
	if (bounded && parts_check(run))
		return CLI_EXIT_OK;
	while (!cli_interrupted && !run->out_failed) {
		const struct tl_consumer_record *r;
		tl_err err = tl_consumer_poll(run->consumer, TAIL_POLL_MS, &r);
		int64_t now = tl_mono_ns();
		if (err == TL_OK) {
			struct tail_part *p = part_find(run, r->topic, r->partition);
			if (part_accept(run, p, r)) {
				offset_went_back(run, p, r->offset);
				print_record(run, r);
			}
			if (run->o->count > 0 && run->printed >= run->o->count)
				break;
			if (now - run->flushed_ns > TAIL_FLUSH_NS)
				stdout_flush(run);
		} else if (err == TL_ERR_TIMED_OUT || err == TL_ERR_AGAIN) {
			stdout_flush(run);
		} else {
			poll_error(run, err);
		}
		if (bounded && (err != TL_OK || now - run->checked_ns > TAIL_CHECK_NS)) {
			run->checked_ns = now;
			if (parts_check(run))
				break;
		}
		status_draw(run, false);
	}
	stdout_flush(run);
	return CLI_EXIT_OK;
}

/* ---- entry ---- */

static int tail_validate(struct cli *cli, struct tail_opts *o)
{
	char bad;
	if (o->format && !format_check(o->format, &bad))
		return cli_usage(cli, "tail", "unknown format verb %%%c in \"%s\"", bad, o->format);
	if (o->group && o->spec_set &&
	    (o->spec.has_stop ||
	     (o->spec.start.kind != CLI_POS_BEGINNING && o->spec.start.kind != CLI_POS_END)))
		return cli_usage(
			cli, "tail",
			"with --group, -o is beginning or end (where a group without commits starts); move a group with `tally group seek`");
	if (o->group && o->partitions)
		return cli_usage(cli, "tail", "--partitions cannot be used with --group");
	if (o->json && o->format)
		return cli_usage(cli, "tail", "use --json or --fmt, not both");
	return CLI_EXIT_OK;
}

static int tail_prepare(struct tail_run *run)
{
	struct tl_admin *admin;
	if (cli_admin_create(run->cli, false, &admin) != TL_OK)
		return CLI_EXIT_USAGE;
	int rc = cli_check_cluster(run->cli, admin);
	struct tl_admin_topics *topics = NULL;
	if (rc == CLI_EXIT_OK)
		rc = cli_describe_topics(run->cli, admin, run->o->topics, run->o->topic_count,
					 false, NULL, &topics);
	if (rc == CLI_EXIT_OK)
		rc = parts_build(run, topics);
	if (rc == CLI_EXIT_OK)
		rc = parts_resolve(run, admin);
	tl_admin_topics_destroy(topics);
	tl_admin_destroy(admin);
	if (rc != CLI_EXIT_OK)
		return rc;
	run->bounded = run->part_count > 0;
	for (int32_t i = 0; i < run->part_count; i++)
		if (run->parts[i].stop == STOP_NONE)
			run->bounded = false;
	return CLI_EXIT_OK;
}

int cli_tail(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"offset", required_argument, NULL, 'o'},
		{"exit", no_argument, NULL, 'e'},
		{"count", required_argument, NULL, 'n'},
		{"partitions", required_argument, NULL, 'p'},
		{"group", required_argument, NULL, 'g'},
		{"fmt", required_argument, NULL, 'f'},
		{"key-delimiter", required_argument, NULL, 'K'},
		{"encoding", required_argument, NULL, 'E'},
		{"json", no_argument, NULL, OPT_JSON},
		{"read-uncommitted", no_argument, NULL, OPT_READ_UNCOMMITTED},
		{"show-control", no_argument, NULL, OPT_SHOW_CONTROL},
		{"rate", no_argument, NULL, OPT_RATE},
		{"no-rate", no_argument, NULL, OPT_NO_RATE},
		CLI_GLOBAL_LONG_OPTS,
		{NULL, 0, NULL, 0},
	};
	struct tail_opts o;
	memset(&o, 0, sizeof(o));
	o.rate = -1;
	int rc;
	int first =
		cli_parse_options(cli, "tail", argc, argv, CLI_GLOBAL_SHORT "o:en:p:g:f:K:E:", opts,
				  tail_option, &o, &rc);
	if (first < 0)
		return rc;
	if (argc - first < 1)
		return cli_usage(cli, "tail", "tail wants at least one topic");
	if (argc - first > TAIL_TOPICS_MAX)
		return cli_usage(cli, "tail", "at most %d topics", TAIL_TOPICS_MAX);
	for (int i = first; i < argc; i++)
		o.topics[o.topic_count++] = argv[i];
	if ((rc = tail_validate(cli, &o)) != CLI_EXIT_OK)
		return rc;
	struct tail_run run;
	memset(&run, 0, sizeof(run));
	run.cli = cli;
	run.o = &o;
	if ((rc = tail_prepare(&run)) != CLI_EXIT_OK) {
		free(run.parts);
		return rc;
	}
	if (consumer_make(&run) != TL_OK) {
		free(run.parts);
		return CLI_EXIT_USAGE;
	}
	tl_err err = consumer_start(&run);
	if (err != TL_OK) {
		cli_error(cli, "cannot start consuming: %s", tl_consumer_last_error(run.consumer));
		rc = cli_exit_for(err);
	} else {
		static char outbuf[1 << 16];
		if (!cli->stdout_tty)
			setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
		run.show_status = o.rate == 1 || (o.rate == -1 && cli->stderr_tty &&
						  !cli->stdout_tty && cli->verbosity >= 0);
		run.started_ns = run.flushed_ns = run.status_ns = tl_mono_ns();
		rc = tail_loop(&run);
		if (run.status_shown || (run.show_status && run.printed > 0))
			status_draw(&run, true);
	}
	tl_consumer_destroy(run.consumer);
	free(run.parts);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (cli_interrupted)
		return CLI_EXIT_INTERRUPTED;
	if (run.errors > 0)
		return run.printed > 0 ? CLI_EXIT_PARTIAL : CLI_EXIT_ERROR;
	return CLI_EXIT_OK;
}
