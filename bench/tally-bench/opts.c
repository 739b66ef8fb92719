/* opts.c - tally-bench's command line. Every option has a default that gives a short,
 * meaningful run against a tallyd that tally-bench starts itself. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tb.h"

#define DEFAULT_DURATION_NS (10 * TB_NS_PER_S)
#define DEFAULT_WARMUP_NS   (2 * TB_NS_PER_S)
#define DEFAULT_FILL_BYTES  (1ULL << 30)
#define SWEEP_STEP_NS       (5 * TB_NS_PER_S)
#define SWEEP_WARMUP_NS     (1 * TB_NS_PER_S)

void tb_usage(FILE *out)
{
	fputs("usage: tally-bench MODE [options]         MODE: produce, consume, e2e, sweep\n"
	      "       tally-bench compare A.json B.json [C.json ...]\n"
	      "\n"
	      "Broker (default: start build/bin/tallyd with its data in a fresh directory):\n"
	      "  -b, --bootstrap HOST:PORT   use a running broker instead\n"
	      "      --system tally|redis|nats  what -b speaks (redis: Streams XADD; nats:\n"
	      "                              JetStream publish with Nats-Msg-Id); default tally\n"
	      "      --broker-pid PID        for CPU and disk figures (default: the listener)\n"
	      "      --tallyd PATH           tallyd to start\n"
	      "      --data-dir DIR          where its data (and the disk baseline) goes; /var/tmp\n"
	      "      --keep-data             do not remove the started broker's data\n"
	      "      --broker-arg KEY=VALUE  tallyd --override, repeatable\n"
	      "      --replication-factor N  N > 1: start etcd and N tallyd brokers on\n"
	      "                              loopback, create the topic with RF N; default 1\n"
	      "                              (one tallyd, no etcd)\n"
	      "      --min-insync-replicas N the topic's min.insync.replicas; default\n"
	      "                              min(2, RF)\n"
	      "      --etcd PATH             etcd to start (default: etcd on PATH)\n"
	      "Workload:\n"
	      "  -t, --topic NAME            default tally-bench-<mode>-<pid>\n"
	      "  -p, --partitions N          default 1\n"
	      "  -s, --record-size SPEC      N | uniform:MIN-MAX | normal:MEAN,SD | exp:MEAN;\n"
	      "                              sizes take k/m suffixes (KiB); default 1024\n"
	      "      --payload text|random|zeros|json   value bytes; text (random letters)\n"
	      "                              compresses ~1.8x with zstd, json (event-like\n"
	      "                              JSON lines) ~4-5x; default text\n"
	      "  -k, --keys N                keyed records over N distinct keys; default none\n"
	      "  -P, --producers N           producer threads, one client each; default 1\n"
	      "  -c, --consumers N           consumer threads (partitions split); default 1\n"
	      "      --processes             run each producer and consumer in a process of its\n"
	      "                              own (fork) instead of a thread\n"
	      "  -a, --acks all|1|0          default all\n"
	      "      --idempotence on|off    default: the client's (on with acks=all)\n"
	      "      --transactions          commit every --txn-interval (default 100ms)\n"
	      "  -z, --compression none|zstd default none\n"
	      "  -r, --rate N|max            records/s, open loop: latency is measured from\n"
	      "                              each record's intended send time; default max\n"
	      "  -d, --duration TIME         default 10s (unless --count)\n"
	      "  -n, --count N               records to produce\n"
	      "  -w, --warmup TIME           left out of the figures; default 2s (consume: 0)\n"
	      "      --fill SIZE             consume: bytes produced before reading; 1g\n"
	      "      --interval TIME         time series period; default 1s\n"
	      "      --window N              redis/nats: records in flight per connection; 1024\n"
	      "  -X KEY=VALUE                libtally producer property, repeatable\n"
	      "  -C KEY=VALUE                libtally consumer property, repeatable\n"
	      "Sweep (open-loop steps at rising rates, to find the knee):\n"
	      "      --steps N               default 8\n"
	      "      --sweep-max N           the 100% rate (default: measured by a max-rate run)\n"
	      "      --sweep-over F          last step at F x the peak; default 1.2\n"
	      "      --slo-p99 MS            knee: p99 limit (default 5x the lowest p99 of the\n"
	      "                              lower half of the steps)\n"
	      "Baselines:\n"
	      "      --baseline              also measure the disk (fio, else a built-in\n"
	      "                              pwrite+fdatasync writer) at the broker's bytes per\n"
	      "                              fdatasync, and loopback TCP; report ratios\n"
	      "      --baseline-engine auto|fio|builtin\n"
	      "      --fsync-bytes SIZE      disk baseline block (default: the broker's)\n"
	      "      --baseline-time TIME    limit per baseline; default: the disk one runs as\n"
	      "                              long as the workload and writes as much (a disk's\n"
	      "                              first gigabytes are often faster), loopback 5s\n"
	      "      --baseline-syncs N      group commit baseline (open loop only): fdatasyncs\n"
	      "                              in flight per file; default 1, as in tallyd\n"
	      "      --baseline-overwrite    group commit baseline into files zero-filled\n"
	      "                              first (a log with preallocated segments)\n"
	      "      --baseline-copies N     disk baseline: N writers per partition at once,\n"
	      "                              reported as MB/s of one copy (total / N), the most\n"
	      "                              N replicas on this one disk can take; default: the\n"
	      "                              replication factor\n"
	      "Output:\n"
	      "  -j, --json PATH             results as JSON\n"
	      "  -H, --html PATH             self-contained HTML report with SVG charts\n"
	      "  -l, --label NAME            name of this run in reports and compare\n"
	      "  -q, --quiet                 no per-interval lines\n",
	      out);
}

const char *tb_mode_name(enum tb_mode mode)
{
	switch (mode) {
	case TB_MODE_PRODUCE:
		return "produce";
	case TB_MODE_CONSUME:
		return "consume";
	case TB_MODE_E2E:
		return "e2e";
	case TB_MODE_SWEEP:
		return "sweep";
	}
	return "?";
}

const char *tb_system_name(enum tb_system system)
{
	switch (system) {
	case TB_SYSTEM_TALLY:
		return "tally";
	case TB_SYSTEM_REDIS:
		return "redis";
	case TB_SYSTEM_NATS:
		return "nats";
	}
	return "?";
}

int64_t tb_parse_duration(const char *text)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text || v < 0 || !isfinite(v))
		return -1;
	double scale = 1e9;
	if (strcmp(end, "ms") == 0)
		scale = 1e6;
	else if (strcmp(end, "us") == 0)
		scale = 1e3;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		scale = 60e9;
	else if (strcmp(end, "h") == 0)
		scale = 3600e9;
	else if (*end != '\0' && strcmp(end, "s") != 0)
		return -1;
	return (int64_t)(v * scale);
}

uint64_t tb_parse_size(const char *text)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text || v < 0 || !isfinite(v))
		return UINT64_MAX;
	double scale = 1;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		scale = 1024.0;
		break;
	case 'm':
	case 'M':
		scale = 1024.0 * 1024;
		break;
	case 'g':
	case 'G':
		scale = 1024.0 * 1024 * 1024;
		break;
	default:
		return UINT64_MAX;
	}
	if (*end) {
		const char *rest = end + 1;
		if (*rest && strcasecmp(rest, "ib") != 0 && strcasecmp(rest, "b") != 0)
			return UINT64_MAX;
	}
	return (uint64_t)(v * scale);
}

double tb_parse_count(const char *text)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text || v < 0 || !isfinite(v))
		return -1;
	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1e6, end++;
	else if (*end == 'g' || *end == 'G')
		v *= 1e9, end++;
	return *end == '\0' ? v : -1;
}

static bool parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = tb_parse_size(text);
	if (v == UINT64_MAX || v < min || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int parse_record_size(const char *text, struct tb_size_dist *d)
{
	char a[64], b[64];
	tb_strlcpy(d->text, sizeof(d->text), text);
	const char *colon = strchr(text, ':');
	if (!colon) {
		d->kind = TB_SIZE_FIXED;
		return parse_u32(text, 0, TB_RECORD_MAX, &d->a) ? 0 : -1;
	}
	size_t kind_len = (size_t)(colon - text);
	const char *args = colon + 1;
	if (kind_len == 3 && strncmp(text, "exp", 3) == 0) {
		d->kind = TB_SIZE_EXP;
		return parse_u32(args, 1, TB_RECORD_MAX, &d->a) ? 0 : -1;
	}
	const char *sep = NULL;
	if (kind_len == 7 && strncmp(text, "uniform", 7) == 0) {
		d->kind = TB_SIZE_UNIFORM;
		sep = strchr(args, '-');
	} else if (kind_len == 6 && strncmp(text, "normal", 6) == 0) {
		d->kind = TB_SIZE_NORMAL;
		sep = strchr(args, ',');
	}
	if (!sep || (size_t)(sep - args) >= sizeof(a) || strlen(sep + 1) >= sizeof(b))
		return -1;
	memcpy(a, args, (size_t)(sep - args));
	a[sep - args] = '\0';
	tb_strlcpy(b, sizeof(b), sep + 1);
	if (!parse_u32(a, 0, TB_RECORD_MAX, &d->a) || !parse_u32(b, 0, TB_RECORD_MAX, &d->b))
		return -1;
	if (d->kind == TB_SIZE_UNIFORM && d->b < d->a)
		return -1;
	return 0;
}

static int add_prop(const char **props, int *count, const char *kv, const char *what)
{
	if (!strchr(kv, '=')) {
		fprintf(stderr, "tally-bench: %s wants KEY=VALUE, got \"%s\"\n", what, kv);
		return -1;
	}
	if (*count >= TB_PROPS_MAX) {
		fprintf(stderr, "tally-bench: at most %d %s entries\n", TB_PROPS_MAX, what);
		return -1;
	}
	props[(*count)++] = kv;
	return 0;
}

enum {
	OPT_SYSTEM = 256,
	OPT_BROKER_PID,
	OPT_TALLYD,
	OPT_DATA_DIR,
	OPT_KEEP_DATA,
	OPT_BROKER_ARG,
	OPT_REPLICATION_FACTOR,
	OPT_MIN_INSYNC,
	OPT_ETCD,
	OPT_PAYLOAD,
	OPT_IDEMPOTENCE,
	OPT_TRANSACTIONS,
	OPT_PROCESSES,
	OPT_TXN_INTERVAL,
	OPT_FILL,
	OPT_INTERVAL,
	OPT_WINDOW,
	OPT_STEPS,
	OPT_SWEEP_MAX,
	OPT_SWEEP_OVER,
	OPT_SLO,
	OPT_BASELINE,
	OPT_BASELINE_ENGINE,
	OPT_FSYNC_BYTES,
	OPT_BASELINE_TIME,
	OPT_BASELINE_SYNCS,
	OPT_BASELINE_OVERWRITE,
	OPT_BASELINE_COPIES,
};

static const struct option long_options[] = {
	{"bootstrap", required_argument, NULL, 'b'},
	{"system", required_argument, NULL, OPT_SYSTEM},
	{"broker-pid", required_argument, NULL, OPT_BROKER_PID},
	{"tallyd", required_argument, NULL, OPT_TALLYD},
	{"data-dir", required_argument, NULL, OPT_DATA_DIR},
	{"keep-data", no_argument, NULL, OPT_KEEP_DATA},
	{"broker-arg", required_argument, NULL, OPT_BROKER_ARG},
	{"replication-factor", required_argument, NULL, OPT_REPLICATION_FACTOR},
	{"min-insync-replicas", required_argument, NULL, OPT_MIN_INSYNC},
	{"etcd", required_argument, NULL, OPT_ETCD},
	{"topic", required_argument, NULL, 't'},
	{"partitions", required_argument, NULL, 'p'},
	{"record-size", required_argument, NULL, 's'},
	{"payload", required_argument, NULL, OPT_PAYLOAD},
	{"keys", required_argument, NULL, 'k'},
	{"producers", required_argument, NULL, 'P'},
	{"consumers", required_argument, NULL, 'c'},
	{"processes", no_argument, NULL, OPT_PROCESSES},
	{"acks", required_argument, NULL, 'a'},
	{"idempotence", required_argument, NULL, OPT_IDEMPOTENCE},
	{"transactions", no_argument, NULL, OPT_TRANSACTIONS},
	{"txn-interval", required_argument, NULL, OPT_TXN_INTERVAL},
	{"compression", required_argument, NULL, 'z'},
	{"rate", required_argument, NULL, 'r'},
	{"duration", required_argument, NULL, 'd'},
	{"count", required_argument, NULL, 'n'},
	{"warmup", required_argument, NULL, 'w'},
	{"fill", required_argument, NULL, OPT_FILL},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"window", required_argument, NULL, OPT_WINDOW},
	{"steps", required_argument, NULL, OPT_STEPS},
	{"sweep-max", required_argument, NULL, OPT_SWEEP_MAX},
	{"sweep-over", required_argument, NULL, OPT_SWEEP_OVER},
	{"slo-p99", required_argument, NULL, OPT_SLO},
	{"baseline", no_argument, NULL, OPT_BASELINE},
	{"baseline-engine", required_argument, NULL, OPT_BASELINE_ENGINE},
	{"fsync-bytes", required_argument, NULL, OPT_FSYNC_BYTES},
	{"baseline-time", required_argument, NULL, OPT_BASELINE_TIME},
	{"baseline-syncs", required_argument, NULL, OPT_BASELINE_SYNCS},
	{"baseline-overwrite", no_argument, NULL, OPT_BASELINE_OVERWRITE},
	{"baseline-copies", required_argument, NULL, OPT_BASELINE_COPIES},
	{"json", required_argument, NULL, 'j'},
	{"html", required_argument, NULL, 'H'},
	{"label", required_argument, NULL, 'l'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static void defaults(struct tb_opts *o, enum tb_mode mode)
{
	memset(o, 0, sizeof(*o));
	o->mode = mode;
	o->system = TB_SYSTEM_TALLY;
	o->partitions = 1;
	o->replication_factor = 1;
	o->size.kind = TB_SIZE_FIXED;
	o->size.a = 1024;
	snprintf(o->size.text, sizeof(o->size.text), "1024");
	o->payload = TB_PAYLOAD_TEXT;
	o->producers = 1;
	o->consumers = 1;
	o->acks = "all";
	o->idempotence = -1;
	o->txn_interval_ms = 100;
	o->compression = "none";
	o->fill_bytes = DEFAULT_FILL_BYTES;
	o->interval_ns = TB_NS_PER_S;
	o->window = 1024;
	o->sweep_steps = 8;
	o->sweep_over = 1.2;
	o->baseline_engine = "auto";
	o->baseline_s = 0; /* auto: see run_baselines() */
	o->baseline_syncs = 1;
	o->progress = true;
}

/* Checks combinations and fills the defaults that depend on the mode. */
static int finish(struct tb_opts *o)
{
	if (o->duration_ns == 0 && o->count == 0 && o->mode != TB_MODE_CONSUME)
		o->duration_ns = o->mode == TB_MODE_SWEEP ? SWEEP_STEP_NS : DEFAULT_DURATION_NS;
	if (!o->warmup_set) {
		o->warmup_ns = 0;
		if (o->mode == TB_MODE_SWEEP)
			o->warmup_ns = SWEEP_WARMUP_NS;
		else if (o->mode != TB_MODE_CONSUME && o->duration_ns >= 2 * DEFAULT_WARMUP_NS)
			o->warmup_ns = DEFAULT_WARMUP_NS;
	}
	if (o->duration_ns > TB_DURATION_MAX_S * TB_NS_PER_S) {
		fprintf(stderr, "tally-bench: --duration is at most %ds\n", TB_DURATION_MAX_S);
		return -1;
	}
	if (o->duration_ns > 0 && o->warmup_ns >= o->duration_ns) {
		fprintf(stderr, "tally-bench: --warmup must be shorter than --duration\n");
		return -1;
	}
	if (o->mode == TB_MODE_E2E && o->size.kind == TB_SIZE_FIXED &&
	    o->size.a < TB_RECORD_HEADER) {
		fprintf(stderr,
			"tally-bench: e2e needs records of at least %d bytes (a send time"
			" rides in each value)\n",
			TB_RECORD_HEADER);
		return -1;
	}
	if (o->system != TB_SYSTEM_TALLY &&
	    (o->mode == TB_MODE_CONSUME || o->mode == TB_MODE_E2E)) {
		fprintf(stderr, "tally-bench: --system %s supports produce and sweep only\n",
			tb_system_name(o->system));
		return -1;
	}
	if (o->system != TB_SYSTEM_TALLY && !o->bootstrap) {
		fprintf(stderr,
			"tally-bench: --system %s needs -b HOST:PORT (bench/peers/ starts"
			" the servers)\n",
			tb_system_name(o->system));
		return -1;
	}
	if (o->transactions && strcmp(o->acks, "all") != 0) {
		fprintf(stderr, "tally-bench: --transactions needs --acks all\n");
		return -1;
	}
	if (o->transactions && o->idempotence == 0) {
		fprintf(stderr, "tally-bench: --transactions needs idempotence\n");
		return -1;
	}
	if (o->sweep_steps < 2 || o->sweep_steps > TB_SWEEP_STEPS_MAX - 1) {
		fprintf(stderr, "tally-bench: --steps is between 2 and %d\n",
			TB_SWEEP_STEPS_MAX - 1);
		return -1;
	}
	if (o->min_insync_replicas > o->replication_factor) {
		fprintf(stderr,
			"tally-bench: --min-insync-replicas %d is above the replication"
			" factor %d\n",
			o->min_insync_replicas, o->replication_factor);
		return -1;
	}
	if (o->min_insync_replicas == 0)
		o->min_insync_replicas = o->replication_factor < 2 ? o->replication_factor : 2;
	if (o->baseline_copies == 0)
		o->baseline_copies = o->replication_factor;
	if (o->replication_factor > 1 && o->system != TB_SYSTEM_TALLY) {
		fprintf(stderr, "tally-bench: --replication-factor is for --system tally\n");
		return -1;
	}
	if (o->partitions < o->consumers && o->mode != TB_MODE_PRODUCE &&
	    o->mode != TB_MODE_SWEEP) {
		fprintf(stderr,
			"tally-bench: %d consumers for %d partitions: each consumer reads"
			" whole partitions; use -c <= -p\n",
			o->consumers, o->partitions);
		return -1;
	}
	return 0;
}

static void keep_command_line(struct tb_opts *o, enum tb_mode mode, int argc, char **argv)
{
	size_t at = (size_t)snprintf(o->command_line, sizeof(o->command_line), "tally-bench %s",
				     tb_mode_name(mode));
	for (int i = 1; i < argc && at < sizeof(o->command_line); i++)
		at += (size_t)snprintf(o->command_line + at, sizeof(o->command_line) - at, " %s",
				       argv[i]);
}

static int bad(const char *opt, const char *value)
{
	fprintf(stderr, "tally-bench: bad value for %s: \"%s\" (tally-bench --help)\n", opt, value);
	return 2;
}

static int parse_one(struct tb_opts *o, int c, const char *arg)
{
	uint32_t u;
	int64_t ns;
	uint64_t bytes;
	double v;
	switch (c) {
	case 'b':
		o->bootstrap = arg;
		break;
	case OPT_SYSTEM:
		if (strcmp(arg, "tally") == 0)
			o->system = TB_SYSTEM_TALLY;
		else if (strcmp(arg, "redis") == 0)
			o->system = TB_SYSTEM_REDIS;
		else if (strcmp(arg, "nats") == 0)
			o->system = TB_SYSTEM_NATS;
		else
			return bad("--system", arg);
		break;
	case OPT_BROKER_PID:
		if (!parse_u32(arg, 1, INT32_MAX, &u))
			return bad("--broker-pid", arg);
		o->broker_pid = (int)u;
		break;
	case OPT_TALLYD:
		o->tallyd = arg;
		break;
	case OPT_DATA_DIR:
		o->data_dir = arg;
		break;
	case OPT_KEEP_DATA:
		o->keep_data = true;
		break;
	case OPT_BROKER_ARG:
		if (add_prop(o->broker_args, &o->broker_arg_count, arg, "--broker-arg"))
			return 2;
		break;
	case OPT_REPLICATION_FACTOR:
		if (!parse_u32(arg, 1, TB_REPLICAS_MAX, &u))
			return bad("--replication-factor", arg);
		o->replication_factor = (int)u;
		break;
	case OPT_MIN_INSYNC:
		if (!parse_u32(arg, 1, TB_REPLICAS_MAX, &u))
			return bad("--min-insync-replicas", arg);
		o->min_insync_replicas = (int)u;
		break;
	case OPT_ETCD:
		o->etcd = arg;
		break;
	case 't':
		o->topic = arg;
		break;
	case 'p':
		if (!parse_u32(arg, 1, 4096, &u))
			return bad("--partitions", arg);
		o->partitions = (int)u;
		break;
	case 's':
		if (parse_record_size(arg, &o->size) != 0)
			return bad("--record-size", arg);
		break;
	case OPT_PAYLOAD:
		if (strcmp(arg, "text") == 0)
			o->payload = TB_PAYLOAD_TEXT;
		else if (strcmp(arg, "random") == 0)
			o->payload = TB_PAYLOAD_RANDOM;
		else if (strcmp(arg, "zeros") == 0)
			o->payload = TB_PAYLOAD_ZEROS;
		else if (strcmp(arg, "json") == 0)
			o->payload = TB_PAYLOAD_JSON;
		else
			return bad("--payload", arg);
		break;
	case 'k':
		v = tb_parse_count(arg);
		if (v < 0 || v > UINT32_MAX)
			return bad("--keys", arg);
		o->keys = (uint32_t)v;
		break;
	case 'P':
	case 'c':
		if (!parse_u32(arg, 1, TB_THREADS_MAX, &u))
			return bad(c == 'P' ? "--producers" : "--consumers", arg);
		*(c == 'P' ? &o->producers : &o->consumers) = (int)u;
		break;
	case 'a':
		if (strcmp(arg, "all") != 0 && strcmp(arg, "-1") != 0 && strcmp(arg, "1") != 0 &&
		    strcmp(arg, "0") != 0)
			return bad("--acks", arg);
		o->acks = strcmp(arg, "-1") == 0 ? "all" : arg;
		break;
	case OPT_IDEMPOTENCE:
		if (strcmp(arg, "on") == 0 || strcmp(arg, "true") == 0)
			o->idempotence = 1;
		else if (strcmp(arg, "off") == 0 || strcmp(arg, "false") == 0)
			o->idempotence = 0;
		else
			return bad("--idempotence", arg);
		break;
	case OPT_TRANSACTIONS:
		o->transactions = true;
		break;
	case OPT_PROCESSES:
		o->processes = true;
		break;
	case OPT_TXN_INTERVAL:
		ns = tb_parse_duration(arg);
		if (ns < TB_NS_PER_MS)
			return bad("--txn-interval", arg);
		o->txn_interval_ms = ns / TB_NS_PER_MS;
		o->transactions = true;
		break;
	case 'z':
		if (strcmp(arg, "none") != 0 && strcmp(arg, "zstd") != 0)
			return bad("--compression (none or zstd)", arg);
		o->compression = arg;
		break;
	case 'r':
		if (strcmp(arg, "max") == 0) {
			o->rate = 0;
		} else {
			v = tb_parse_count(arg);
			if (!(v > 0))
				return bad("--rate", arg);
			o->rate = v;
		}
		break;
	case 'd':
		ns = tb_parse_duration(arg);
		if (ns <= 0)
			return bad("--duration", arg);
		o->duration_ns = ns;
		break;
	case 'n':
		v = tb_parse_count(arg);
		if (!(v >= 1))
			return bad("--count", arg);
		o->count = (uint64_t)v;
		break;
	case 'w':
		ns = tb_parse_duration(arg);
		if (ns < 0)
			return bad("--warmup", arg);
		o->warmup_ns = ns;
		o->warmup_set = true;
		break;
	case OPT_FILL:
		bytes = tb_parse_size(arg);
		if (bytes == UINT64_MAX || bytes == 0)
			return bad("--fill", arg);
		o->fill_bytes = bytes;
		break;
	case OPT_INTERVAL:
		ns = tb_parse_duration(arg);
		if (ns < 100 * TB_NS_PER_MS)
			return bad("--interval (at least 100ms)", arg);
		o->interval_ns = ns;
		break;
	case OPT_WINDOW:
		if (!parse_u32(arg, 1, 1 << 20, &o->window))
			return bad("--window", arg);
		break;
	case 'X':
		if (add_prop(o->producer_props, &o->producer_prop_count, arg, "-X"))
			return 2;
		break;
	case 'C':
		if (add_prop(o->consumer_props, &o->consumer_prop_count, arg, "-C"))
			return 2;
		break;
	case OPT_STEPS:
		if (!parse_u32(arg, 2, TB_SWEEP_STEPS_MAX - 1, &u))
			return bad("--steps", arg);
		o->sweep_steps = (int)u;
		break;
	case OPT_SWEEP_MAX:
		v = tb_parse_count(arg);
		if (!(v > 0))
			return bad("--sweep-max", arg);
		o->sweep_max_rate = v;
		break;
	case OPT_SWEEP_OVER:
		o->sweep_over = strtod(arg, NULL);
		if (!(o->sweep_over >= 0.2 && o->sweep_over <= 10))
			return bad("--sweep-over", arg);
		break;
	case OPT_SLO:
		o->slo_p99_ms = strtod(arg, NULL);
		if (!(o->slo_p99_ms > 0))
			return bad("--slo-p99", arg);
		break;
	case OPT_BASELINE:
		o->baseline = true;
		break;
	case OPT_BASELINE_ENGINE:
		if (strcmp(arg, "auto") != 0 && strcmp(arg, "fio") != 0 &&
		    strcmp(arg, "builtin") != 0)
			return bad("--baseline-engine", arg);
		o->baseline_engine = arg;
		break;
	case OPT_FSYNC_BYTES:
		bytes = tb_parse_size(arg);
		if (bytes == UINT64_MAX || bytes < 512 || bytes > (1ULL << 30))
			return bad("--fsync-bytes", arg);
		o->fsync_bytes = bytes;
		break;
	case OPT_BASELINE_TIME:
		ns = tb_parse_duration(arg);
		if (ns < 100 * TB_NS_PER_MS)
			return bad("--baseline-time", arg);
		o->baseline_s = (double)ns / 1e9;
		break;
	case OPT_BASELINE_SYNCS:
		if (!parse_u32(arg, 1, TB_COMMIT_SYNCS_MAX, &u))
			return bad("--baseline-syncs", arg);
		o->baseline_syncs = (int)u;
		break;
	case OPT_BASELINE_OVERWRITE:
		o->baseline_overwrite = true;
		break;
	case OPT_BASELINE_COPIES:
		if (!parse_u32(arg, 1, TB_REPLICAS_MAX, &u))
			return bad("--baseline-copies", arg);
		o->baseline_copies = (int)u;
		break;
	case 'j':
		o->json_path = arg;
		break;
	case 'H':
		o->html_path = arg;
		break;
	case 'l':
		o->label = arg;
		break;
	case 'q':
		o->progress = false;
		o->quiet = true;
		break;
	case 'h':
		tb_usage(stdout);
		exit(0);
	default:
		tb_usage(stderr);
		return 2;
	}
	return 0;
}

int tb_opts_parse(struct tb_opts *o, enum tb_mode mode, int argc, char **argv)
{
	defaults(o, mode);
	keep_command_line(o, mode, argc, argv);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:t:p:s:k:P:c:a:z:r:d:n:w:X:C:j:H:l:qh", long_options,
				NULL)) != -1) {
		int rc = parse_one(o, c, optarg);
		if (rc != 0)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "tally-bench: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	return finish(o) == 0 ? 0 : 2;
}

const char *tb_payload_name(enum tb_payload payload)
{
	switch (payload) {
	case TB_PAYLOAD_TEXT:
		return "text";
	case TB_PAYLOAD_RANDOM:
		return "random";
	case TB_PAYLOAD_ZEROS:
		return "zeros";
	case TB_PAYLOAD_JSON:
		return "json";
	}
	return "?";
}
