/* top.c - `tally top`: a live view of one broker or a cluster, like top(1), read from
 * each broker's /metrics (metrics.listener, docs/metrics.md): throughput per topic,
 * request rates and latency percentiles, fdatasync latency, connections, replication
 * health and consumer group lag.
 * Rates and percentiles are differences between two scrapes, so they describe the
 * last interval, not the time since the broker started. Percentiles interpolate
 * inside the histogram's power-of-two buckets, as Prometheus' histogram_quantile does.
 * `--once` scrapes twice, an interval apart, prints one report (text, or --format json
 * for scripts) and exits. */
#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define TOP_URLS_MAX   64
#define TOP_BODY_MAX   (64u * 1024 * 1024) /* a scrape larger than this is refused */
#define TOP_BUCKETS    64
#define TOP_TOPICS_MAX 10000
#define TOP_ROWS_TTY   12 /* topics and groups shown per section on a terminal */

struct top_opts {
	const char *urls[TOP_URLS_MAX];
	int url_count;
	int64_t interval_ms;
	bool once;
};

/* One sample line of a scrape; the strings point into the scrape's text. */
struct sample {
	const char *name;
	const char *labels; /* between the braces, "" when none */
	double value;
};

struct scrape {
	char url[512];
	char *text; /* owned; NUL-terminated, cut into the samples' strings */
	size_t len;
	struct sample *samples;
	size_t count;
	bool ok;
	char why[256];
};

/* ---- fetching and parsing ---- */

static size_t body_append(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct scrape *s = ctx;
	size_t n = size * nmemb;
	if (s->len + n + 1 > TOP_BODY_MAX)
		return 0; /* curl fails the transfer */
	char *text = realloc(s->text, s->len + n + 1);
	if (!text)
		return 0;
	memcpy(text + s->len, data, n);
	s->text = text;
	s->len += n;
	s->text[s->len] = '\0';
	return n;
}

/* Cuts the text into samples; comments and malformed lines are skipped. */
static void scrape_parse(struct scrape *s)
{
	size_t cap = 0;
	char *line = s->text;
	while (line && *line) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[0] == '#' || line[0] == '\0') {
			line = next;
			continue;
		}
		char *labels = "";
		char *p = line + strcspn(line, "{ ");
		if (*p == '{') {
			*p++ = '\0';
			labels = p;
			/* Label values here never hold '}' (names and numbers only). */
			p = strchr(p, '}');
			if (!p) {
				line = next;
				continue;
			}
			*p++ = '\0';
		} else if (*p == ' ') {
			*p = '\0';
			p++;
		}
		char *end;
		double v = strtod(p, &end);
		if (end == p) {
			line = next;
			continue;
		}
		if (s->count == cap) {
			cap = cap ? cap * 2 : 1024;
			struct sample *grown = realloc(s->samples, cap * sizeof(*grown));
			if (!grown)
				return;
			s->samples = grown;
		}
		s->samples[s->count++] = (struct sample){line, labels, v};
		line = next;
	}
}

static void scrape_free(struct scrape *s)
{
	free(s->text);
	free(s->samples);
	s->text = NULL;
	s->samples = NULL;
	s->len = s->count = 0;
}

static void scrape_fetch(const struct cli *cli, struct scrape *s, const char *url)
{
	scrape_free(s);
	s->ok = false;
	s->why[0] = '\0';
	if (strstr(url, "://"))
		snprintf(s->url, sizeof(s->url), "%s", url);
	else
		snprintf(s->url, sizeof(s->url), "http://%s", url);
	/* A bare address gets the path. */
	const char *path = strchr(strstr(s->url, "://") + 3, '/');
	if (!path)
		strncat(s->url, "/metrics", sizeof(s->url) - strlen(s->url) - 1);
	CURL *curl = curl_easy_init();
	if (!curl) {
		snprintf(s->why, sizeof(s->why), "curl_easy_init failed");
		return;
	}
	char err[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(curl, CURLOPT_URL, s->url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_append);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)cli->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK) {
		snprintf(s->why, sizeof(s->why), "%s", err[0] ? err : curl_easy_strerror(rc));
		return;
	}
	if (status != 200) {
		snprintf(s->why, sizeof(s->why), "HTTP status %ld", status);
		return;
	}
	if (!s->text) {
		snprintf(s->why, sizeof(s->why), "empty answer");
		return;
	}
	scrape_parse(s);
	s->ok = true;
}

/* The value of label @key in @labels into @out; false when absent. */
static bool label_get(const char *labels, const char *key, char *out, size_t size)
{
	size_t key_len = strlen(key);
	for (const char *p = labels; *p;) {
		if (strncmp(p, key, key_len) == 0 && p[key_len] == '=' && p[key_len + 1] == '"') {
			const char *v = p + key_len + 2;
			size_t n = 0;
			while (*v && *v != '"' && n + 1 < size) {
				if (*v == '\\' && v[1])
					v++;
				out[n++] = *v++;
			}
			out[n] = '\0';
			return true;
		}
		/* Skip to the next label: past this value's closing quote and the comma. */
		const char *q = strchr(p, '"');
		if (!q)
			return false;
		for (q++; *q && *q != '"'; q++)
			if (*q == '\\' && q[1])
				q++;
		p = *q ? q + 1 : q;
		if (*p == ',')
			p++;
	}
	return false;
}

/* The sample @name with exactly @labels; NULL if absent. */
static const struct sample *find(const struct scrape *s, const char *name, const char *labels)
{
	for (size_t i = 0; i < s->count; i++)
		if (strcmp(s->samples[i].name, name) == 0 &&
		    strcmp(s->samples[i].labels, labels) == 0)
			return &s->samples[i];
	return NULL;
}

static double value_of(const struct scrape *s, const char *name, const char *labels)
{
	const struct sample *v = s && s->ok ? find(s, name, labels) : NULL;
	return v ? v->value : 0;
}

/* ---- the report ---- */

struct topic_rate {
	char topic[256];
	double records_in;
	double records_out;
	double bytes_in;
	double bytes_out;
};

/* Latency of one family's histograms over the interval, summed over the brokers. */
struct latency {
	double per_s;
	double p50_us;
	double p99_us;
	double p999_us;
	bool any;
};

struct report {
	double dt_s;
	struct topic_rate *topics;
	int topic_count;
	double records_in;
	double records_out;
	double bytes_in;
	double bytes_out;
};

static struct topic_rate *topic_slot(struct report *r, const char *topic)
{
	for (int i = 0; i < r->topic_count; i++)
		if (strcmp(r->topics[i].topic, topic) == 0)
			return &r->topics[i];
	if (r->topic_count == TOP_TOPICS_MAX)
		return NULL;
	struct topic_rate *grown =
		realloc(r->topics, (size_t)(r->topic_count + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	r->topics = grown;
	struct topic_rate *t = &r->topics[r->topic_count++];
	memset(t, 0, sizeof(*t));
	snprintf(t->topic, sizeof(t->topic), "%s", topic);
	return t;
}

/* Adds (now - before) / dt of every per-topic sample @name to the field at @offset. */
static void add_topic_rates(struct report *r, const struct scrape *now, const struct scrape *before,
			    const char *name, size_t offset)
{
	if (!now->ok)
		return;
	for (size_t i = 0; i < now->count; i++) {
		const struct sample *v = &now->samples[i];
		char topic[256];
		if (strcmp(v->name, name) != 0 ||
		    !label_get(v->labels, "topic", topic, sizeof(topic)))
			continue;
		double delta = v->value - value_of(before, name, v->labels);
		struct topic_rate *t = topic_slot(r, topic);
		if (t && delta > 0)
			*(double *)(void *)((char *)t + offset) += delta / r->dt_s;
	}
}

static int topic_cmp(const void *a, const void *b)
{
	const struct topic_rate *x = a, *y = b;
	double kx = x->bytes_in + x->bytes_out, ky = y->bytes_in + y->bytes_out;
	if (kx != ky)
		return kx < ky ? 1 : -1;
	return strcmp(x->topic, y->topic);
}

/* Bucket deltas of histogram @family for the series whose labels (le aside) contain
 * @match ("" for all), summed over brokers: les[] ascending, counts[] cumulative. */
static int bucket_deltas(const struct scrape *now, const struct scrape *before, int brokers,
			 const char *family, const char *match, double *les, double *counts)
{
	char bucket_name[160];
	snprintf(bucket_name, sizeof(bucket_name), "%s_bucket", family);
	int n = 0;
	for (int b = 0; b < brokers; b++) {
		if (!now[b].ok)
			continue;
		for (size_t i = 0; i < now[b].count; i++) {
			const struct sample *v = &now[b].samples[i];
			char le_text[32];
			if (strcmp(v->name, bucket_name) != 0 || !strstr(v->labels, match) ||
			    !label_get(v->labels, "le", le_text, sizeof(le_text)))
				continue;
			double le = strcmp(le_text, "+Inf") == 0 ? INFINITY : strtod(le_text, NULL);
			double delta = v->value - value_of(&before[b], bucket_name, v->labels);
			int k = 0;
			while (k < n && les[k] != le)
				k++;
			if (k == n) {
				if (n == TOP_BUCKETS)
					continue;
				les[n] = le;
				counts[n++] = 0;
			}
			counts[k] += delta;
		}
	}
	/* Ascending le (a few dozen: insertion sort). */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && les[j - 1] > les[j]; j--) {
			double t = les[j];
			les[j] = les[j - 1];
			les[j - 1] = t;
			t = counts[j];
			counts[j] = counts[j - 1];
			counts[j - 1] = t;
		}
	return n;
}

/* As histogram_quantile: linear inside the bucket that holds rank q * total. */
static double quantile(const double *les, const double *counts, int n, double q)
{
	if (n == 0 || counts[n - 1] <= 0)
		return 0;
	double rank = q * counts[n - 1];
	for (int i = 0; i < n; i++) {
		if (counts[i] < rank)
			continue;
		if (isinf(les[i]))
			return i > 0 ? les[i - 1] : 0;
		double low = i > 0 ? les[i - 1] : 0;
		double below = i > 0 ? counts[i - 1] : 0;
		double in = counts[i] - below;
		return in > 0 ? low + (les[i] - low) * (rank - below) / in : les[i];
	}
	return les[n - 1];
}

static struct latency latency_of(const struct scrape *now, const struct scrape *before, int brokers,
				 const char *family, const char *match, double dt_s)
{
	double les[TOP_BUCKETS], counts[TOP_BUCKETS];
	int n = bucket_deltas(now, before, brokers, family, match, les, counts);
	struct latency l = {0, 0, 0, 0, n > 0};
	if (n == 0)
		return l;
	l.per_s = counts[n - 1] / dt_s;
	l.p50_us = quantile(les, counts, n, 0.5) * 1e6;
	l.p99_us = quantile(les, counts, n, 0.99) * 1e6;
	l.p999_us = quantile(les, counts, n, 0.999) * 1e6;
	return l;
}

static void report_build(struct report *r, const struct scrape *now, const struct scrape *before,
			 int brokers, double dt_s)
{
	memset(r, 0, sizeof(*r));
	r->dt_s = dt_s > 0 ? dt_s : 1;
	for (int b = 0; b < brokers; b++) {
		add_topic_rates(r, &now[b], &before[b], "tally_broker_topic_messages_in_total",
				offsetof(struct topic_rate, records_in));
		add_topic_rates(r, &now[b], &before[b], "tally_broker_topic_messages_out_total",
				offsetof(struct topic_rate, records_out));
		add_topic_rates(r, &now[b], &before[b], "tally_broker_topic_bytes_in_total",
				offsetof(struct topic_rate, bytes_in));
		add_topic_rates(r, &now[b], &before[b], "tally_broker_topic_bytes_out_total",
				offsetof(struct topic_rate, bytes_out));
	}
	for (int i = 0; i < r->topic_count; i++) {
		r->records_in += r->topics[i].records_in;
		r->records_out += r->topics[i].records_out;
		r->bytes_in += r->topics[i].bytes_in;
		r->bytes_out += r->topics[i].bytes_out;
	}
	qsort(r->topics, (size_t)r->topic_count, sizeof(*r->topics), topic_cmp);
}

/* The request APIs seen in @now, in first-seen order. */
static int request_names(const struct scrape *now, int brokers, char (*names)[64], int max)
{
	int n = 0;
	for (int b = 0; b < brokers; b++)
		for (size_t i = 0; now[b].ok && i < now[b].count; i++) {
			char name[64];
			if (strcmp(now[b].samples[i].name,
				   "tally_request_total_time_seconds_count") ||
			    !label_get(now[b].samples[i].labels, "request", name, sizeof(name)))
				continue;
			int k = 0;
			while (k < n && strcmp(names[k], name) != 0)
				k++;
			if (k == n && n < max)
				snprintf(names[n++], sizeof(names[0]), "%s", name);
		}
	return n;
}

/* ---- output ---- */

static void json_report(const struct cli *cli, const struct report *r, const struct scrape *now,
			const struct scrape *before, int brokers)
{
	struct cli_node *doc = cli_node_object();
	cli_add_int(doc, "interval_ms", (int64_t)(r->dt_s * 1000));
	struct cli_node *list = cli_add_array(doc, "brokers");
	for (int b = 0; b < brokers; b++) {
		struct cli_node *n = cli_add_object(list, NULL);
		cli_add_str(n, "url", now[b].url);
		cli_add_bool(n, "reachable", now[b].ok);
		if (!now[b].ok) {
			cli_add_str(n, "error", now[b].why);
			continue;
		}
		cli_add_bool(n, "healthy", value_of(&now[b], "tally_up", "") == 1);
		cli_add_int(n, "connections", (int64_t)value_of(&now[b], "tally_connections", ""));
		cli_add_int(n, "partitions",
			    (int64_t)value_of(&now[b], "tally_replica_partitions", ""));
		cli_add_int(n, "leaders",
			    (int64_t)value_of(&now[b], "tally_replica_leader_count", ""));
		cli_add_int(n, "under_replicated_partitions",
			    (int64_t)value_of(&now[b], "tally_replica_under_replicated_partitions",
					      ""));
		cli_add_int(n, "offline_partitions",
			    (int64_t)value_of(&now[b], "tally_replica_offline_partitions", ""));
		cli_add_int(n, "heap_bytes",
			    (int64_t)value_of(&now[b], "tally_memory_heap_bytes", ""));
	}
	struct cli_node *total = cli_add_object(doc, "total");
	cli_add_int(total, "records_in_per_s", llround(r->records_in));
	cli_add_int(total, "records_out_per_s", llround(r->records_out));
	cli_add_int(total, "bytes_in_per_s", llround(r->bytes_in));
	cli_add_int(total, "bytes_out_per_s", llround(r->bytes_out));
	list = cli_add_array(doc, "topics");
	for (int i = 0; i < r->topic_count; i++) {
		struct cli_node *n = cli_add_object(list, NULL);
		cli_add_str(n, "topic", r->topics[i].topic);
		cli_add_int(n, "records_in_per_s", llround(r->topics[i].records_in));
		cli_add_int(n, "records_out_per_s", llround(r->topics[i].records_out));
		cli_add_int(n, "bytes_in_per_s", llround(r->topics[i].bytes_in));
		cli_add_int(n, "bytes_out_per_s", llround(r->topics[i].bytes_out));
	}
	list = cli_add_array(doc, "requests");
	char names[80][64];
	int name_count = request_names(now, brokers, names, 80);
	for (int i = 0; i < name_count; i++) {
		char match[96];
		snprintf(match, sizeof(match), "request=\"%.63s\"", names[i]);
		struct latency l = latency_of(now, before, brokers,
					      "tally_request_total_time_seconds", match, r->dt_s);
		struct cli_node *n = cli_add_object(list, NULL);
		cli_add_str(n, "request", names[i]);
		cli_add_int(n, "per_s", llround(l.per_s));
		cli_add_int(n, "p50_us", llround(l.p50_us));
		cli_add_int(n, "p99_us", llround(l.p99_us));
		cli_add_int(n, "p999_us", llround(l.p999_us));
	}
	struct latency f =
		latency_of(now, before, brokers, "tally_log_flush_time_seconds", "", r->dt_s);
	struct cli_node *fsync = cli_add_object(doc, "fsync");
	cli_add_int(fsync, "per_s", llround(f.per_s));
	cli_add_int(fsync, "p50_us", llround(f.p50_us));
	cli_add_int(fsync, "p99_us", llround(f.p99_us));
	cli_add_int(fsync, "p999_us", llround(f.p999_us));
	list = cli_add_array(doc, "groups");
	for (int b = 0; b < brokers; b++)
		for (size_t i = 0; now[b].ok && i < now[b].count; i++) {
			const struct sample *v = &now[b].samples[i];
			char group[256];
			if (strcmp(v->name, "tally_group_lag") != 0 ||
			    !label_get(v->labels, "group", group, sizeof(group)))
				continue;
			struct cli_node *n = cli_add_object(list, NULL);
			cli_add_str(n, "group", group);
			cli_add_int(n, "lag", (int64_t)v->value);
		}
	cli_node_print(cli, doc, stdout);
	cli_node_destroy(doc);
}

static const char *human_bytes(double v, char *buf, size_t size)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static const char *human_us(double us, char *buf, size_t size)
{
	if (us >= 1e6)
		snprintf(buf, size, "%.2f s", us / 1e6);
	else if (us >= 1e3)
		snprintf(buf, size, "%.2f ms", us / 1e3);
	else
		snprintf(buf, size, "%.0f us", us);
	return buf;
}

static void text_report(const struct cli *cli, const struct report *r, const struct scrape *now,
			const struct scrape *before, int brokers)
{
	char a[32], b2[32], c[32], d[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	char clock[16];
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	int rows = cli->stdout_tty ? TOP_ROWS_TTY : TOP_TOPICS_MAX;
	printf("tally top - %s, %d broker%s, every %.1f s\n", clock, brokers,
	       brokers == 1 ? "" : "s", r->dt_s);
	printf("in %.0f records/s  %s/s   out %.0f records/s  %s/s\n\n", r->records_in,
	       human_bytes(r->bytes_in, a, sizeof(a)), r->records_out,
	       human_bytes(r->bytes_out, b2, sizeof(b2)));
	printf("%-36s %5s %6s %7s %7s %9s %8s\n", "BROKER", "UP", "CONNS", "LEADERS", "UNDER-R",
	       "OFFLINE", "HEAP");
	for (int b = 0; b < brokers; b++) {
		if (!now[b].ok) {
			printf("%-36.36s %5s  %s\n", now[b].url, "down", now[b].why);
			continue;
		}
		printf("%-36.36s %5s %6.0f %7.0f %7.0f %9.0f %8s\n", now[b].url,
		       value_of(&now[b], "tally_up", "") == 1 ? "yes" : "NO",
		       value_of(&now[b], "tally_connections", ""),
		       value_of(&now[b], "tally_replica_leader_count", ""),
		       value_of(&now[b], "tally_replica_under_replicated_partitions", ""),
		       value_of(&now[b], "tally_replica_offline_partitions", ""),
		       human_bytes(value_of(&now[b], "tally_memory_heap_bytes", ""), a, sizeof(a)));
	}
	printf("\n%-32s %12s %12s %12s %12s\n", "TOPIC", "RECORDS IN/S", "IN/S", "RECORDS OUT/S",
	       "OUT/S");
	for (int i = 0; i < r->topic_count && i < rows; i++) {
		const struct topic_rate *tr = &r->topics[i];
		if (tr->bytes_in + tr->bytes_out == 0 && i > 0)
			break;
		printf("%-32.32s %12.0f %12s %13.0f %12s\n", tr->topic, tr->records_in,
		       human_bytes(tr->bytes_in, a, sizeof(a)), tr->records_out,
		       human_bytes(tr->bytes_out, b2, sizeof(b2)));
	}
	printf("\n%-24s %9s %10s %10s %10s\n", "REQUEST", "PER S", "P50", "P99", "P99.9");
	char names[80][64];
	int name_count = request_names(now, brokers, names, 80);
	for (int i = 0; i < name_count; i++) {
		char match[96];
		snprintf(match, sizeof(match), "request=\"%.63s\"", names[i]);
		struct latency l = latency_of(now, before, brokers,
					      "tally_request_total_time_seconds", match, r->dt_s);
		if (l.per_s == 0)
			continue;
		printf("%-24s %9.0f %10s %10s %10s\n", names[i], l.per_s,
		       human_us(l.p50_us, a, sizeof(a)), human_us(l.p99_us, b2, sizeof(b2)),
		       human_us(l.p999_us, c, sizeof(c)));
	}
	struct latency f =
		latency_of(now, before, brokers, "tally_log_flush_time_seconds", "", r->dt_s);
	printf("%-24s %9.0f %10s %10s %10s\n", "(fdatasync)", f.per_s,
	       human_us(f.p50_us, a, sizeof(a)), human_us(f.p99_us, b2, sizeof(b2)),
	       human_us(f.p999_us, d, sizeof(d)));
	int shown = 0;
	for (int b = 0; b < brokers; b++)
		for (size_t i = 0; now[b].ok && i < now[b].count && shown < rows; i++) {
			const struct sample *v = &now[b].samples[i];
			char group[256];
			if (strcmp(v->name, "tally_group_lag") != 0 ||
			    !label_get(v->labels, "group", group, sizeof(group)))
				continue;
			if (shown++ == 0)
				printf("\n%-48s %12s\n", "GROUP", "LAG");
			printf("%-48.48s %12.0f\n", group, v->value);
		}
}

/* ---- the command ---- */

enum {
	OPT_METRICS = CLI_OPT_FIRST_LOCAL,
	OPT_INTERVAL,
	OPT_ONCE,
};

static int top_option(struct cli *cli, void *ctx, int opt, const char *arg)
{
	struct top_opts *o = ctx;
	switch (opt) {
	case 'm':
	case OPT_METRICS:
		if (o->url_count == TOP_URLS_MAX)
			return cli_usage(cli, "top", "at most %d --metrics URLs", TOP_URLS_MAX);
		o->urls[o->url_count++] = arg;
		return 0;
	case 'i':
	case OPT_INTERVAL:
		if (!cli_parse_duration_ms(arg, &o->interval_ms) || o->interval_ms < 100)
			return cli_usage(cli, "top",
					 "--interval wants a duration of 100ms or more");
		return 0;
	case OPT_ONCE:
		o->once = true;
		return 0;
	default:
		return cli_usage(cli, "top", "unexpected option");
	}
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps @ms unless interrupted. */
static void nap(int64_t ms)
{
	for (int64_t left = ms; left > 0 && !cli_interrupted; left -= 50)
		usleep((useconds_t)((left < 50 ? left : 50) * 1000));
}

int cli_top(struct cli *cli, int argc, char **argv)
{
	struct top_opts o = {.interval_ms = 2000};
	static const struct option longs[] = {CLI_GLOBAL_LONG_OPTS,
					      {"metrics", required_argument, NULL, OPT_METRICS},
					      {"interval", required_argument, NULL, OPT_INTERVAL},
					      {"once", no_argument, NULL, OPT_ONCE},
					      {NULL, 0, NULL, 0}};
	int rc = 0;
	int first = cli_parse_options(cli, "top", argc, argv, CLI_GLOBAL_SHORT "m:i:", longs,
				      top_option, &o, &rc);
	if (first < 0)
		return rc;
	if (first < argc)
		return cli_usage(cli, "top", "unexpected argument \"%s\"", argv[first]);
	if (o.url_count == 0)
		o.urls[o.url_count++] = "http://127.0.0.1:9644";
	if (cli->format == CLI_FORMAT_YAML)
		return cli_usage(cli, "top", "--format is text or json");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct scrape *now = calloc((size_t)o.url_count, sizeof(*now));
	struct scrape *before = calloc((size_t)o.url_count, sizeof(*before));
	if (!now || !before) {
		free(now);
		free(before);
		cli_error(cli, "out of memory");
		return CLI_EXIT_ERROR;
	}
	for (int b = 0; b < o.url_count; b++)
		scrape_fetch(cli, &before[b], o.urls[b]);
	double then = mono_s();
	int reachable = 0;
	for (int b = 0; b < o.url_count; b++)
		reachable += before[b].ok;
	if (reachable == 0) {
		cli_error(cli, "cannot read %s: %s (is metrics.listener set on the broker?)",
			  before[0].url, before[0].why);
		rc = CLI_EXIT_UNREACHABLE;
		goto out;
	}
	bool live = !o.once;
	while (!cli_interrupted) {
		nap(o.interval_ms);
		if (cli_interrupted)
			break;
		for (int b = 0; b < o.url_count; b++)
			scrape_fetch(cli, &now[b], o.urls[b]);
		double t = mono_s();
		struct report r;
		report_build(&r, now, before, o.url_count, t - then);
		if (live && cli->stdout_tty)
			fputs("\033[H\033[2J", stdout); /* home, clear */
		if (cli->format == CLI_FORMAT_JSON)
			json_report(cli, &r, now, before, o.url_count);
		else
			text_report(cli, &r, now, before, o.url_count);
		fflush(stdout);
		free(r.topics);
		if (!live)
			break;
		struct scrape *swap = before;
		before = now;
		now = swap;
		then = t;
	}
out:
	for (int b = 0; b < o.url_count; b++) {
		scrape_free(&now[b]);
		scrape_free(&before[b]);
	}
	free(now);
	free(before);
	curl_global_cleanup();
	return rc;
}
