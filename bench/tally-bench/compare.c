/* compare.c - `tally-bench compare A.json B.json [C.json ...] [--markdown]`: the main
 * figures of each report side by side, each with its ratio to A's (B/A). Rows that no
 * report has are left out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tb.h"

#define COMPARE_FILES_MAX 16
#define REPORT_BYTES_MAX  (64u << 20)

struct metric {
	const char *name;
	const char *path;
	const char *better; /* "higher", "lower" or "" */
};

static const struct metric metrics[] = {
	{"produce records/s", "produce.records_per_s", "higher"},
	{"produce MB/s", "produce.mb_per_s", "higher"},
	{"produce p50 ms", "produce.latency_ms.p50", "lower"},
	{"produce p99 ms", "produce.latency_ms.p99", "lower"},
	{"produce p99.9 ms", "produce.latency_ms.p999", "lower"},
	{"produce max ms", "produce.latency_ms.max", "lower"},
	{"fill MB/s", "fill.produce.mb_per_s", "higher"},
	{"consume records/s", "consume.records_per_s", "higher"},
	{"consume MB/s", "consume.mb_per_s", "higher"},
	{"e2e p50 ms", "e2e.latency_ms.p50", "lower"},
	{"e2e p99 ms", "e2e.latency_ms.p99", "lower"},
	{"e2e p99.9 ms", "e2e.latency_ms.p999", "lower"},
	{"sweep peak records/s", "sweep.peak_records_per_s", "higher"},
	{"sweep knee records/s", "sweep.knee_records_per_s", "higher"},
	{"broker CPU-s/GB", "resources.broker_cpu_s_per_gb", "lower"},
	{"client CPU-s/GB", "resources.client_cpu_s_per_gb", "lower"},
	{"write amplification", "resources.write_amplification", "lower"},
	{"fill broker CPU-s/GB", "fill.resources.broker_cpu_s_per_gb", "lower"},
	{"fill write amplification", "fill.resources.write_amplification", "lower"},
	{"bytes per fdatasync", "broker.bytes_per_fdatasync", ""},
	{"broker fdatasync p99 ms", "broker.fdatasync_ms.p99", "lower"},
	{"broker Produce p99 ms", "broker.produce_request_ms.p99", "lower"},
	{"disk baseline MB/s", "baseline.disk.mb_per_s", ""},
	{"disk O_DIRECT baseline MB/s", "baseline.disk_direct.mb_per_s", ""},
	{"disk fdatasync p99 ms", "baseline.disk.fdatasync_ms.p99", ""},
	{"group commit p99 ms", "baseline.group_commit.latency_ms.p99", ""},
	{"loopback MB/s", "baseline.loopback.mb_per_s", ""},
	{"disk read baseline MB/s", "baseline.disk_read.mb_per_s", ""},
	{"produce / disk", "ratios.produce_vs_disk", "higher"},
	{"consume / loopback", "ratios.consume_vs_loopback", "higher"},
	{"consume / disk read", "ratios.consume_vs_disk_read", "higher"},
	{"consume / min(loopback, disk read)", "ratios.consume_vs_limit", "higher"},
	{"produce p99 / fdatasync p99", "ratios.produce_p99_vs_fdatasync_p99", "lower"},
	{"produce p99 / group commit p99", "ratios.produce_p99_vs_group_commit_p99", "lower"},
};

static void fmt_value(char *buf, size_t size, double v)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else if (fabs(v) >= 1000)
		tb_fmt_count(buf, size, v);
	else if (fabs(v) >= 10)
		snprintf(buf, size, "%.1f", v);
	else
		snprintf(buf, size, "%.3f", v);
}

static void print_row(bool markdown, const char *name, char cells[][32], int n, int width)
{
	if (markdown) {
		printf("| %s |", name);
		for (int i = 0; i < n; i++)
			printf(" %s |", cells[i]);
		printf("\n");
		return;
	}
	printf("%-30s", name);
	for (int i = 0; i < n; i++)
		printf(" %*s", width, cells[i]);
	printf("\n");
}

static void print_header(bool markdown, const char *const *labels, int files)
{
	char cells[2 * COMPARE_FILES_MAX][32];
	int n = 0;
	for (int i = 0; i < files; i++) {
		snprintf(cells[n++], 32, "%.31s", labels[i]);
		if (i > 0)
			snprintf(cells[n++], 32, "%c/A", (char)('A' + i));
	}
	print_row(markdown, "metric", cells, n, 14);
	if (markdown) {
		printf("| --- |");
		for (int i = 0; i < n; i++)
			printf(" ---: |");
		printf("\n");
	}
}

static const char *label_of(const struct tb_json *j, const char *path)
{
	const char *label = tb_json_str_at(j, "label");
	if (label)
		return label;
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

int tb_compare_main(int argc, char **argv)
{
	bool markdown = false;
	const char *paths[COMPARE_FILES_MAX];
	int files = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--markdown") == 0)
			markdown = true;
		else if (files < COMPARE_FILES_MAX)
			paths[files++] = argv[i];
	}
	if (files < 2) {
		fprintf(stderr,
			"usage: tally-bench compare A.json B.json [C.json ...] [--markdown]\n");
		return 2;
	}
	struct tb_json *docs[COMPARE_FILES_MAX];
	const char *labels[COMPARE_FILES_MAX];
	for (int i = 0; i < files; i++) {
		char err[512];
		char *text = tb_read_file(paths[i], REPORT_BYTES_MAX, err, sizeof(err));
		docs[i] = text ? tb_json_parse(text, err, sizeof(err)) : NULL;
		free(text);
		if (!docs[i]) {
			fprintf(stderr, "tally-bench compare: %s: %s\n", paths[i], err);
			for (int k = 0; k < i; k++)
				tb_json_free(docs[k]);
			return 1;
		}
		labels[i] = label_of(docs[i], paths[i]);
	}
	print_header(markdown, labels, files);
	char cells[2 * COMPARE_FILES_MAX][32];
	int n = 0;
	for (int i = 0; i < files; i++) {
		const char *mode = tb_json_str_at(docs[i], "mode");
		const char *system = tb_json_str_at(docs[i], "config.system");
		snprintf(cells[n++], 32, "%.12s %.12s", system ? system : "?", mode ? mode : "?");
		if (i > 0)
			snprintf(cells[n++], 32, " ");
	}
	print_row(markdown, "system, mode", cells, n, 14);
	for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
		double base = tb_json_num_at(docs[0], metrics[m].path);
		bool any = false;
		n = 0;
		for (int i = 0; i < files; i++) {
			double v = tb_json_num_at(docs[i], metrics[m].path);
			any = any || !isnan(v);
			fmt_value(cells[n++], 32, v);
			if (i == 0)
				continue;
			if (isnan(v) || isnan(base) || base == 0)
				snprintf(cells[n++], 32, "-");
			else
				snprintf(cells[n++], 32, "%.2fx", v / base);
		}
		if (!any)
			continue;
		char name[64];
		snprintf(name, sizeof(name), "%s%s%s", metrics[m].name,
			 metrics[m].better[0]
				 ? (strcmp(metrics[m].better, "higher") == 0 ? " (+)" : " (-)")
				 : "",
			 "");
		print_row(markdown, name, cells, n, 14);
	}
	if (!markdown)
		printf("(+) higher is better, (-) lower is better; B/A is B's value over A's.\n");
	for (int i = 0; i < files; i++)
		tb_json_free(docs[i]);
	return 0;
}
