/* report.c - the three forms of a result: a table on stdout, JSON (--json) and one
 * self-contained HTML file (--html: inline CSS and SVG, no script, no network).
 * Latencies are shown in milliseconds, throughput in records/s and MB/s (10^6 B). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "tb.h"

#ifndef TL_VERSION
#define TL_VERSION "dev"
#endif

/* ---- formatting ---- */

const char *tb_fmt_count(char *buf, size_t size, double value)
{
	char digits[64];
	snprintf(digits, sizeof(digits), "%.0f", value < 0 ? 0 : value);
	size_t len = strlen(digits), at = 0;
	for (size_t i = 0; i < len && at + 2 < size; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[at++] = ',';
		buf[at++] = digits[i];
	}
	buf[at] = '\0';
	return buf;
}

const char *tb_fmt_bytes(char *buf, size_t size, double bytes)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	if (u == 0 || bytes == floor(bytes))
		snprintf(buf, size, "%.0f %s", bytes, units[u]);
	else
		snprintf(buf, size, "%.1f %s", bytes, units[u]);
	return buf;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double us_ms(uint64_t us)
{
	return (double)us / 1e3;
}

/* ---- environment ---- */

static void read_line(const char *path, char *out, size_t size)
{
	out[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/* "vda (virtio_blk, 256 GiB, ssd, mq-deadline), ext4" for the disk holding @dir. */
static void disk_describe(const char *dir, char *out, size_t size)
{
	struct stat sb;
	snprintf(out, size, "unknown");
	if (stat(dir, &sb) != 0)
		return;
	char sys[128], link[512], path[700], name[128] = "?", driver[128] = "?", sched[256] = "";
	char rot[16] = "", sectors[32] = "";
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", major(sb.st_dev), minor(sb.st_dev));
	ssize_t n = readlink(sys, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		const char *slash = strrchr(link, '/');
		tb_strlcpy(name, sizeof(name), slash ? slash + 1 : link);
	}
	/* A partition's queue and device are its parent's. */
	snprintf(path, sizeof(path), "%s/queue", sys);
	bool partition = access(path, F_OK) != 0;
	const char *base = partition ? "/.." : "";
	snprintf(path, sizeof(path), "%s%s/queue/rotational", sys, base);
	read_line(path, rot, sizeof(rot));
	snprintf(path, sizeof(path), "%s%s/queue/scheduler", sys, base);
	read_line(path, sched, sizeof(sched));
	snprintf(path, sizeof(path), "%s%s/size", sys, base);
	read_line(path, sectors, sizeof(sectors));
	snprintf(path, sizeof(path), "%s%s/device/driver", sys, base);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		const char *slash = strrchr(link, '/');
		tb_strlcpy(driver, sizeof(driver), slash ? slash + 1 : link);
	}
	char *open_b = strchr(sched, '['), *close_b = open_b ? strchr(open_b, ']') : NULL;
	if (open_b && close_b) {
		*close_b = '\0';
		memmove(sched, open_b + 1, strlen(open_b + 1) + 1);
	}
	char cap[32];
	tb_fmt_bytes(cap, sizeof(cap), strtod(sectors, NULL) * 512);
	/* The file system type from /proc/mounts: the longest mount point above dir. */
	char fs[32] = "?", best[512] = "";
	char real[PATH_MAX];
	if (!realpath(dir, real))
		tb_strlcpy(real, sizeof(real), dir);
	FILE *f = fopen("/proc/mounts", "r");
	char line[1024];
	while (f && fgets(line, sizeof(line), f)) {
		char dev[256], mnt[512], type[32];
		if (sscanf(line, "%255s %511s %31s", dev, mnt, type) != 3)
			continue;
		size_t len = strlen(mnt);
		if (strncmp(real, mnt, len) == 0 &&
		    (real[len] == '/' || real[len] == '\0' || len == 1) && len >= strlen(best)) {
			tb_strlcpy(best, sizeof(best), mnt);
			tb_strlcpy(fs, sizeof(fs), type);
		}
	}
	if (f)
		fclose(f);
	const char *parts[] = {name,
			       " (",
			       driver,
			       ", ",
			       cap,
			       ", ",
			       strcmp(rot, "1") == 0 ? "rotational" : "non-rotational",
			       ", scheduler ",
			       sched[0] ? sched : "?",
			       "), ",
			       fs,
			       " on ",
			       best[0] ? best : "?"};
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t len = strlen(out);
		tb_strlcpy(out + len, size - len, parts[i]);
	}
}

void tb_env_collect(struct tb_env *env, const char *dir)
{
	memset(env, 0, sizeof(*env));
	env->nproc = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct utsname u;
	if (uname(&u) == 0) {
		snprintf(env->kernel, sizeof(env->kernel), "%.20s %.80s %.20s", u.sysname,
			 u.release, u.machine);
		tb_strlcpy(env->host, sizeof(env->host), u.nodename);
	}
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			char *colon = strchr(line, ':');
			if (colon) {
				tb_strlcpy(env->cpu, sizeof(env->cpu), colon + 2);
				env->cpu[strcspn(env->cpu, "\n")] = '\0';
			}
			break;
		}
	}
	if (f)
		fclose(f);
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages > 0 && page > 0)
		env->mem_bytes = (uint64_t)pages * (uint64_t)page;
	disk_describe(dir, env->disk, sizeof(env->disk));
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(env->time_utc, sizeof(env->time_utc), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- table ---- */

void tb_print_sample(FILE *out, const struct tb_sample *s, enum tb_phase_kind kind)
{
	double dt = s->dt_s > 0 ? s->dt_s : 1;
	char a[32], b[32];
	fprintf(out, "  %7.1fs%s", s->t_s, s->warmup ? " w" : "  ");
	if (kind != TB_PHASE_CONSUME)
		fprintf(out, "  produce %11s rec/s %9.2f MB/s  p50 %8.3f p99 %8.3f max %8.3f ms",
			tb_fmt_count(a, sizeof(a), (double)s->produced_records / dt),
			(double)s->produced_bytes / dt / 1e6, ms(s->produce_p50_ns),
			ms(s->produce_p99_ns), ms(s->produce_max_ns));
	if (kind != TB_PHASE_PRODUCE)
		fprintf(out, "  consume %11s rec/s %9.2f MB/s",
			tb_fmt_count(b, sizeof(b), (double)s->consumed_records / dt),
			(double)s->consumed_bytes / dt / 1e6);
	if (kind == TB_PHASE_E2E)
		fprintf(out, "  e2e p99 %8.3f ms", ms(s->e2e_p99_ns));
	fputc('\n', out);
	fflush(out);
}

static void workload_line(FILE *out, const struct tb_opts *o)
{
	char keys[32] = "no keys", rate[48] = "max (closed loop)", idem[16] = "default";
	char client[160];
	if (o->keys)
		snprintf(keys, sizeof(keys), "%u keys", o->keys);
	if (o->rate > 0)
		snprintf(rate, sizeof(rate), "%.0f records/s (open loop)", o->rate);
	if (o->idempotence >= 0)
		tb_strlcpy(idem, sizeof(idem), o->idempotence ? "on" : "off");
	if (o->system == TB_SYSTEM_TALLY)
		snprintf(client, sizeof(client), "acks=%s, idempotence %s%s, compression %s",
			 o->acks, idem, o->transactions ? ", transactions" : "", o->compression);
	else
		snprintf(client, sizeof(client),
			 "%u records in flight per connection, durability as"
			 " the server is configured",
			 o->window);
	fprintf(out,
		"  workload: %s, %d producer(s), %d consumer(s) (%s), %d partition(s), record"
		" size %s (%s), %s, %s, rate %s\n",
		tb_system_name(o->system), o->producers,
		o->mode == TB_MODE_PRODUCE || o->mode == TB_MODE_SWEEP ? 0 : o->consumers,
		o->processes ? "processes" : "threads", o->partitions, o->size.text,
		tb_payload_name(o->payload), keys, client, rate);
	if (o->replication_factor > 1)
		fprintf(out, "  replication: factor %d, min.insync.replicas %d, %s\n",
			o->replication_factor, o->min_insync_replicas,
			o->bootstrap ? "on the brokers -b names"
				     : "etcd and that many tallyds started on loopback");
}

static void flow_row(FILE *out, const char *name, const struct tb_flow *f)
{
	char a[32], b[32];
	fprintf(out, "  %-14s %12s %10.2f %14s %8.1f s", name,
		tb_fmt_count(a, sizeof(a), f->records_per_s), f->mb_per_s,
		tb_fmt_count(b, sizeof(b), (double)f->records), f->window_s);
	if (f->errors)
		fprintf(out, "   %llu errors, first: %s", (unsigned long long)f->errors,
			f->first_error);
	fputc('\n', out);
}

static void latency_row(FILE *out, const char *name, const struct tb_latency *l)
{
	char a[32];
	fprintf(out, "  %-14s %12s %8.3f %8.3f %8.3f %8.3f %8.3f %9.3f\n", name,
		tb_fmt_count(a, sizeof(a), (double)l->count), ms(l->p50_ns), ms(l->p90_ns),
		ms(l->p99_ns), ms(l->p999_ns), ms(l->p9999_ns), ms(l->max_ns));
}

static void phase_print(FILE *out, const struct tb_phase_result *r)
{
	fprintf(out, "  %-14s %12s %10s %14s %10s\n", "", "records/s", "MB/s", "records", "window");
	if (r->produce.present)
		flow_row(out, "produce", &r->produce);
	if (r->consume.present)
		flow_row(out, "consume", &r->consume);
	if (r->produce_latency.count || r->has_e2e) {
		fprintf(out, "  %-14s %12s %8s %8s %8s %8s %8s %9s\n", "latency (ms)", "count",
			"p50", "p90", "p99", "p99.9", "p99.99", "max");
		if (r->produce_latency.count)
			latency_row(out, "produce ack", &r->produce_latency);
		if (r->has_e2e)
			latency_row(out, "end-to-end", &r->e2e_latency);
	}
	const struct tb_resources *res = &r->res;
	char a[32], b[32], c[32];
	fprintf(out, "  resources: client %.2f CPU-s/GB", res->client_cpu_s_per_gb);
	if (res->broker_pid && r->produce.present)
		fprintf(out,
			", broker %.2f CPU-s/GB (pid %d); broker wrote %s for %s:"
			" write amplification %.3f",
			res->broker_cpu_s_per_gb, res->broker_pid,
			tb_fmt_bytes(a, sizeof(a), (double)res->broker_write_bytes),
			tb_fmt_bytes(c, sizeof(c), (double)res->bytes), res->write_amplification);
	else if (res->broker_pid)
		fprintf(out,
			", broker %.2f CPU-s/GB (pid %d); broker read %s from disk for %s"
			" sent (0: all from the page cache)",
			res->broker_cpu_s_per_gb, res->broker_pid,
			tb_fmt_bytes(b, sizeof(b), (double)res->broker_read_bytes),
			tb_fmt_bytes(c, sizeof(c), (double)res->bytes));
	else
		fprintf(out, " (broker pid unknown: no broker figures)");
	fputc('\n', out);
	if (res->wall_s > 0)
		fprintf(out, "  other processes: %.2f CPU-s in %.1f s (%.0f%% of one CPU)%s\n",
			res->other_cpu_s, res->wall_s, 100 * res->other_cpu_s / res->wall_s,
			res->other_cpu_s / res->wall_s > 0.1 ? ": the machine was not idle" : "");
	const struct tb_broker_stats *st = &r->broker;
	if (st->flushes)
		fprintf(out,
			"  broker: %llu fdatasyncs, %s per fdatasync on average; fdatasync p50 %.3f"
			" p99 %.3f p99.9 %.3f max %.3f ms; write p50 %.3f p99 %.3f max %.3f ms\n",
			(unsigned long long)st->flushes,
			tb_fmt_bytes(a, sizeof(a), (double)st->bytes_per_flush),
			us_ms(st->flush_us[0]), us_ms(st->flush_us[1]), us_ms(st->flush_us[2]),
			us_ms(st->flush_us[3]), us_ms(st->write_us[0]), us_ms(st->write_us[1]),
			us_ms(st->write_us[2]));
	if (st->produce_requests)
		fprintf(out,
			"  broker: %llu Produce requests, in the broker (frame in to response out)"
			" p50 %.3f p99 %.3f p99.9 %.3f max %.3f ms\n",
			(unsigned long long)st->produce_requests, us_ms(st->produce_us[0]),
			us_ms(st->produce_us[1]), us_ms(st->produce_us[2]),
			us_ms(st->produce_us[3]));
	if (r->replica_count > 1) {
		fprintf(out,
			"  replicas: %d brokers, partition 0 led by broker %d (the CPU and disk"
			" figures above are its); %s per fdatasync over all replicas\n",
			r->replica_count, r->leader_node,
			tb_fmt_bytes(a, sizeof(a), (double)r->replica_bytes_per_flush));
		for (int i = 0; i < r->replica_count; i++) {
			const struct tb_broker_stats *rs = &r->replicas[i];
			fprintf(out,
				"    broker %d: %llu fdatasyncs, %s each, fdatasync p50 %.3f p99"
				" %.3f max %.3f ms%s\n",
				i + 1, (unsigned long long)rs->flushes,
				tb_fmt_bytes(a, sizeof(a), (double)rs->bytes_per_flush),
				us_ms(rs->flush_us[0]), us_ms(rs->flush_us[1]),
				us_ms(rs->flush_us[3]),
				rs->flushes ? "" : " (no statistics: it did not stop cleanly)");
		}
	}
}

static void sweep_print(FILE *out, const struct tb_report *rep)
{
	char a[32], b[32];
	fprintf(out, "  sweep: peak %s records/s (closed loop)\n",
		tb_fmt_count(a, sizeof(a), rep->sweep_peak_rate));
	fprintf(out, "  %4s %12s %12s %9s %8s %8s %8s %9s\n", "step", "target/s", "achieved/s",
		"MB/s", "p50", "p99", "p99.9", "max ms");
	for (int i = 0; i < rep->step_count; i++) {
		const struct tb_phase_result *s = &rep->steps[i];
		fprintf(out, "  %4d %12s %12s %9.2f %8.3f %8.3f %8.3f %9.3f%s\n", i + 1,
			tb_fmt_count(a, sizeof(a), s->target_rate),
			tb_fmt_count(b, sizeof(b), s->produce.records_per_s), s->produce.mb_per_s,
			ms(s->produce_latency.p50_ns), ms(s->produce_latency.p99_ns),
			ms(s->produce_latency.p999_ns), ms(s->produce_latency.max_ns),
			i == rep->knee_step ? "  <- knee" : "");
	}
	if (rep->knee_step >= 0)
		fprintf(out,
			"  knee: %s records/s (the highest step that kept up with p99 in bounds)\n",
			tb_fmt_count(a, sizeof(a),
				     rep->steps[rep->knee_step].produce.records_per_s));
	else
		fprintf(out,
			"  knee: none (even the first step missed its rate or latency bound)\n");
}

static void baseline_print(FILE *out, const struct tb_report *rep)
{
	char a[32], b[32];
	const struct tb_disk_baseline *d = &rep->disk;
	if (d->present && d->ok && d->copies > 1)
		fprintf(out,
			"  disk, %d writers at once (%d per partition, one per replica): %.2f MB/s"
			" of one copy (%.2f MB/s written in all / %d), %s per fdatasync (%s, %s);"
			" fdatasync p50 %.3f p99 %.3f p99.9 %.3f ms\n",
			d->jobs, d->copies, d->mb_per_s, d->total_mb_per_s, d->copies,
			tb_fmt_bytes(a, sizeof(a), (double)d->block_bytes), d->engine, d->dir,
			ms(d->fdatasync.p50_ns), ms(d->fdatasync.p99_ns), ms(d->fdatasync.p999_ns));
	else if (d->present && d->ok)
		fprintf(out,
			"  disk: %.2f MB/s sequential, %s per fdatasync, %d job(s) (%s, %s);"
			" fdatasync p50 %.3f p99 %.3f p99.9 %.3f ms\n",
			d->mb_per_s, tb_fmt_bytes(a, sizeof(a), (double)d->block_bytes), d->jobs,
			d->engine, d->dir, ms(d->fdatasync.p50_ns), ms(d->fdatasync.p99_ns),
			ms(d->fdatasync.p999_ns));
	else if (d->present)
		fprintf(out, "  disk: failed: %s\n", d->error);
	const struct tb_disk_baseline *dd = &rep->disk_direct;
	if (dd->present && dd->ok)
		fprintf(out,
			"  disk O_DIRECT (fallocated): %.2f MB/s%s, %s per fdatasync, %d job(s) (%s);"
			" fdatasync p50 %.3f p99 %.3f p99.9 %.3f ms\n",
			dd->mb_per_s, dd->copies > 1 ? " of one copy" : "",
			tb_fmt_bytes(a, sizeof(a), (double)dd->block_bytes), dd->jobs, dd->engine,
			ms(dd->fdatasync.p50_ns), ms(dd->fdatasync.p99_ns),
			ms(dd->fdatasync.p999_ns));
	else if (dd->present)
		fprintf(out, "  disk O_DIRECT: failed: %s\n", dd->error);
	const struct tb_commit_baseline *c = &rep->commit;
	if (c->present && c->ok)
		fprintf(out,
			"  group commit (ideal broker: %s records/s of %llu B, written as they"
			" arrive%s, %d fdatasync(s) in flight per file, no network): p50 %.3f p99"
			" %.3f p99.9 %.3f ms; %s per fdatasync, fdatasync p99 %.3f ms\n",
			tb_fmt_count(a, sizeof(a), c->rate), (unsigned long long)c->record_bytes,
			c->overwrite ? " into zero-filled files" : "", c->syncs_in_flight,
			ms(c->latency.p50_ns), ms(c->latency.p99_ns), ms(c->latency.p999_ns),
			tb_fmt_bytes(b, sizeof(b),
				     c->syncs ? (double)c->bytes / (double)c->syncs : 0),
			ms(c->fdatasync.p99_ns));
	else if (c->present)
		fprintf(out, "  group commit: failed: %s\n", c->error);
	const struct tb_net_baseline *n = &rep->net;
	if (n->present && n->ok)
		fprintf(out, "  loopback TCP: %.2f MB/s (%d stream(s), %zu KiB writes)\n",
			n->mb_per_s, n->streams, n->chunk_bytes / 1024);
	else if (n->present)
		fprintf(out, "  loopback TCP: failed: %s\n", n->error);
	if (rep->ratio_produce_vs_disk > 0)
		fprintf(out,
			"  ratio produce MB/s / disk MB/s%s at the same fdatasync cadence: %.3f\n",
			d->copies > 1 ? " of one copy" : "", rep->ratio_produce_vs_disk);
	if (rep->ratio_produce_vs_disk_direct > 0)
		fprintf(out,
			"  ratio produce MB/s / O_DIRECT disk MB/s at the same cadence: %.3f\n",
			rep->ratio_produce_vs_disk_direct);
	const struct tb_disk_read_baseline *dr = &rep->disk_read;
	if (dr->present && dr->ok)
		fprintf(out, "  disk reads (O_DIRECT, %s reads, one at a time): %.2f MB/s\n",
			tb_fmt_bytes(a, sizeof(a), (double)dr->block_bytes), dr->mb_per_s);
	else if (dr->present)
		fprintf(out, "  disk reads: failed: %s\n", dr->error);
	if (rep->ratio_consume_vs_loopback > 0)
		fprintf(out, "  ratio consume MB/s / loopback TCP MB/s: %.3f\n",
			rep->ratio_consume_vs_loopback);
	if (rep->ratio_consume_vs_disk_read > 0)
		fprintf(out,
			"  ratio consume MB/s / disk read MB/s: %.3f (/ the lower of the two: "
			"%.3f)\n",
			rep->ratio_consume_vs_disk_read, rep->ratio_consume_vs_limit);
	if (rep->ratio_p99_vs_fdatasync_p99 > 0)
		fprintf(out, "  ratio produce p99 / fdatasync p99: %.2f\n",
			rep->ratio_p99_vs_fdatasync_p99);
	if (rep->ratio_p99_vs_commit_p99 > 0)
		fprintf(out, "  ratio produce p99 / group commit p99: %.2f\n",
			rep->ratio_p99_vs_commit_p99);
}

void tb_report_print(FILE *out, const struct tb_report *rep)
{
	const struct tb_opts *o = rep->o;
	const struct tb_env *e = &rep->env;
	char mem[32];
	fprintf(out, "\ntally-bench %s%s%s\n", tb_mode_name(o->mode), o->label ? ": " : "",
		o->label ? o->label : "");
	workload_line(out, o);
	fprintf(out, "  machine: %d CPUs (%s), %s RAM, %s; disk %s\n", e->nproc, e->cpu,
		tb_fmt_bytes(mem, sizeof(mem), (double)e->mem_bytes), e->kernel, e->disk);
	if (rep->has_fill) {
		fprintf(out, "  fill (produce before reading):\n");
		phase_print(out, &rep->fill);
	}
	if (o->mode == TB_MODE_SWEEP)
		sweep_print(out, rep);
	else
		phase_print(out, &rep->main);
	if (rep->disk.present || rep->net.present)
		baseline_print(out, rep);
	if (!rep->ok)
		fprintf(out, "  FAILED: %s\n", rep->error);
}

/* ---- JSON ---- */

static void json_latency(struct tb_jw *w, const char *key, const struct tb_latency *l)
{
	tb_jw_obj(w, key);
	tb_jw_u64(w, "count", l->count);
	tb_jw_num(w, "mean", l->mean_ns / 1e6);
	tb_jw_num(w, "min", ms(l->min_ns));
	tb_jw_num(w, "p50", ms(l->p50_ns));
	tb_jw_num(w, "p90", ms(l->p90_ns));
	tb_jw_num(w, "p99", ms(l->p99_ns));
	tb_jw_num(w, "p999", ms(l->p999_ns));
	tb_jw_num(w, "p9999", ms(l->p9999_ns));
	tb_jw_num(w, "max", ms(l->max_ns));
	tb_jw_arr(w, "curve");
	for (int i = 0; i < l->curve_count; i++) {
		tb_jw_arr(w, NULL);
		tb_jw_num(w, NULL, l->curve_p[i]);
		tb_jw_num(w, NULL, ms(l->curve_ns[i]));
		tb_jw_arr_end(w);
	}
	tb_jw_arr_end(w);
	tb_jw_obj_end(w);
}

/* An object of @n figures kept in us (the broker's), written in ms under @names. */
static void json_us_as_ms(struct tb_jw *w, const char *key, const char *const *names,
			  const uint64_t *us, int n)
{
	tb_jw_obj(w, key);
	for (int i = 0; i < n; i++)
		tb_jw_num(w, names[i], us_ms(us[i]));
	tb_jw_obj_end(w);
}

static void json_flow(struct tb_jw *w, const char *key, const struct tb_flow *f,
		      const struct tb_latency *l)
{
	tb_jw_obj(w, key);
	tb_jw_num(w, "records_per_s", f->records_per_s);
	tb_jw_num(w, "mb_per_s", f->mb_per_s);
	tb_jw_u64(w, "records", f->records);
	tb_jw_u64(w, "bytes", f->bytes);
	tb_jw_num(w, "window_s", f->window_s);
	tb_jw_u64(w, "total_records", f->total_records);
	tb_jw_u64(w, "total_bytes", f->total_bytes);
	tb_jw_u64(w, "errors", f->errors);
	tb_jw_str(w, "first_error", f->first_error[0] ? f->first_error : NULL);
	if (l)
		json_latency(w, "latency_ms", l);
	tb_jw_obj_end(w);
}

static void json_phase(struct tb_jw *w, const struct tb_phase_result *r, bool series)
{
	tb_jw_num(w, "target_records_per_s", r->target_rate);
	tb_jw_num(w, "warmup_s", (double)r->warmup_ns / 1e9);
	if (r->produce.present)
		json_flow(w, "produce", &r->produce, &r->produce_latency);
	if (r->consume.present)
		json_flow(w, "consume", &r->consume, NULL);
	if (r->has_e2e) {
		tb_jw_obj(w, "e2e");
		json_latency(w, "latency_ms", &r->e2e_latency);
		tb_jw_obj_end(w);
	}
	const struct tb_resources *res = &r->res;
	tb_jw_obj(w, "resources");
	tb_jw_num(w, "wall_s", res->wall_s);
	tb_jw_num(w, "client_cpu_s", res->client_cpu_s);
	tb_jw_num(w, "client_cpu_s_per_gb", res->client_cpu_s_per_gb);
	tb_jw_u64(w, "bytes", res->bytes);
	tb_jw_num(w, "other_cpu_s", res->other_cpu_s);
	if (res->broker_pid) {
		tb_jw_u64(w, "broker_pid", (uint64_t)res->broker_pid);
		tb_jw_num(w, "broker_cpu_s", res->broker_cpu_s);
		tb_jw_num(w, "broker_cpu_s_per_gb", res->broker_cpu_s_per_gb);
		tb_jw_u64(w, "broker_write_bytes", res->broker_write_bytes);
		tb_jw_u64(w, "broker_read_bytes", res->broker_read_bytes);
		if (r->produce.present)
			tb_jw_num(w, "write_amplification", res->write_amplification);
	}
	tb_jw_obj_end(w);
	const struct tb_broker_stats *st = &r->broker;
	if (st->flushes || st->produce_requests) { /* known for a tallyd tally-bench started */
		tb_jw_obj(w, "broker");
		static const char *const q4[] = {"p50", "p99", "p999", "max"};
		static const char *const q3[] = {"p50", "p99", "max"};
		if (st->flushes) {
			tb_jw_u64(w, "fdatasyncs", st->flushes);
			tb_jw_u64(w, "bytes_per_fdatasync", st->bytes_per_flush);
			json_us_as_ms(w, "fdatasync_ms", q4, st->flush_us, 4);
			json_us_as_ms(w, "write_ms", q3, st->write_us, 3);
		}
		if (st->produce_requests) {
			tb_jw_u64(w, "produce_requests", st->produce_requests);
			json_us_as_ms(w, "produce_request_ms", q4, st->produce_us, 4);
		}
		tb_jw_obj_end(w);
	}
	if (r->replica_count > 1) {
		static const char *const q4[] = {"p50", "p99", "p999", "max"};
		tb_jw_obj(w, "replication");
		tb_jw_u64(w, "brokers", (uint64_t)r->replica_count);
		tb_jw_u64(w, "leader", (uint64_t)r->leader_node);
		tb_jw_u64(w, "bytes_per_fdatasync", r->replica_bytes_per_flush);
		tb_jw_arr(w, "replicas");
		for (int i = 0; i < r->replica_count; i++) {
			const struct tb_broker_stats *rs = &r->replicas[i];
			tb_jw_obj(w, NULL);
			tb_jw_u64(w, "node_id", (uint64_t)i + 1);
			tb_jw_u64(w, "fdatasyncs", rs->flushes);
			tb_jw_u64(w, "bytes_per_fdatasync", rs->bytes_per_flush);
			json_us_as_ms(w, "fdatasync_ms", q4, rs->flush_us, 4);
			tb_jw_u64(w, "produce_requests", rs->produce_requests);
			tb_jw_obj_end(w);
		}
		tb_jw_arr_end(w);
		tb_jw_obj_end(w);
	}
	if (!series)
		return;
	tb_jw_arr(w, "series");
	for (int i = 0; i < r->sample_count; i++) {
		const struct tb_sample *s = &r->samples[i];
		double dt = s->dt_s > 0 ? s->dt_s : 1;
		tb_jw_obj(w, NULL);
		tb_jw_num(w, "t_s", s->t_s);
		tb_jw_num(w, "dt_s", s->dt_s);
		tb_jw_bool(w, "warmup", s->warmup);
		tb_jw_num(w, "produce_records_per_s", (double)s->produced_records / dt);
		tb_jw_num(w, "produce_mb_per_s", (double)s->produced_bytes / dt / 1e6);
		tb_jw_num(w, "consume_records_per_s", (double)s->consumed_records / dt);
		tb_jw_num(w, "consume_mb_per_s", (double)s->consumed_bytes / dt / 1e6);
		tb_jw_num(w, "produce_p50_ms", ms(s->produce_p50_ns));
		tb_jw_num(w, "produce_p99_ms", ms(s->produce_p99_ns));
		tb_jw_num(w, "produce_max_ms", ms(s->produce_max_ns));
		tb_jw_num(w, "e2e_p99_ms", ms(s->e2e_p99_ns));
		tb_jw_obj_end(w);
	}
	tb_jw_arr_end(w);
}

static void json_config(struct tb_jw *w, const struct tb_opts *o)
{
	tb_jw_obj(w, "config");
	tb_jw_str(w, "system", tb_system_name(o->system));
	tb_jw_str(w, "bootstrap", o->bootstrap ? o->bootstrap : "spawned tallyd");
	tb_jw_str(w, "topic", o->topic);
	tb_jw_u64(w, "partitions", (uint64_t)o->partitions);
	tb_jw_u64(w, "replication_factor", (uint64_t)o->replication_factor);
	tb_jw_u64(w, "min_insync_replicas", (uint64_t)o->min_insync_replicas);
	tb_jw_str(w, "record_size", o->size.text);
	tb_jw_str(w, "payload", tb_payload_name(o->payload));
	tb_jw_u64(w, "keys", o->keys);
	tb_jw_u64(w, "producers", (uint64_t)o->producers);
	tb_jw_u64(w, "consumers", (uint64_t)o->consumers);
	tb_jw_str(w, "acks", o->acks);
	tb_jw_str(w, "idempotence", o->idempotence < 0 ? "default" : o->idempotence ? "on" : "off");
	tb_jw_bool(w, "transactions", o->transactions);
	tb_jw_bool(w, "processes", o->processes);
	tb_jw_u64(w, "txn_interval_ms", (uint64_t)o->txn_interval_ms);
	tb_jw_str(w, "compression", o->compression);
	tb_jw_num(w, "rate", o->rate);
	tb_jw_num(w, "duration_s", (double)o->duration_ns / 1e9);
	tb_jw_u64(w, "count", o->count);
	tb_jw_num(w, "warmup_s", (double)o->warmup_ns / 1e9);
	tb_jw_arr(w, "producer_props");
	for (int i = 0; i < o->producer_prop_count; i++)
		tb_jw_str(w, NULL, o->producer_props[i]);
	tb_jw_arr_end(w);
	tb_jw_arr(w, "consumer_props");
	for (int i = 0; i < o->consumer_prop_count; i++)
		tb_jw_str(w, NULL, o->consumer_props[i]);
	tb_jw_arr_end(w);
	tb_jw_arr(w, "broker_args");
	for (int i = 0; i < o->broker_arg_count; i++)
		tb_jw_str(w, NULL, o->broker_args[i]);
	tb_jw_arr_end(w);
	tb_jw_obj_end(w);
}

static void json_env(struct tb_jw *w, const struct tb_env *e)
{
	tb_jw_obj(w, "env");
	tb_jw_u64(w, "nproc", (uint64_t)e->nproc);
	tb_jw_str(w, "cpu", e->cpu);
	tb_jw_str(w, "kernel", e->kernel);
	tb_jw_str(w, "disk", e->disk);
	tb_jw_u64(w, "mem_bytes", e->mem_bytes);
	tb_jw_str(w, "host", e->host);
	tb_jw_str(w, "time_utc", e->time_utc);
	tb_jw_obj_end(w);
}

static void json_disk(struct tb_jw *w, const char *key, const struct tb_disk_baseline *d)
{
	if (!d->present)
		return;
	tb_jw_obj(w, key);
	tb_jw_bool(w, "ok", d->ok);
	tb_jw_str(w, "error", d->error[0] ? d->error : NULL);
	tb_jw_str(w, "engine", d->engine);
	tb_jw_bool(w, "direct", d->direct);
	tb_jw_str(w, "dir", d->dir);
	tb_jw_u64(w, "block_bytes", d->block_bytes);
	tb_jw_u64(w, "jobs", (uint64_t)d->jobs);
	tb_jw_u64(w, "copies", (uint64_t)d->copies);
	tb_jw_u64(w, "bytes", d->bytes);
	tb_jw_num(w, "seconds", d->seconds);
	tb_jw_num(w, "mb_per_s", d->mb_per_s);
	tb_jw_num(w, "total_mb_per_s", d->total_mb_per_s);
	json_latency(w, "fdatasync_ms", &d->fdatasync);
	tb_jw_obj_end(w);
}

static void json_baselines(struct tb_jw *w, const struct tb_report *rep)
{
	tb_jw_obj(w, "baseline");
	json_disk(w, "disk_direct", &rep->disk_direct);
	const struct tb_disk_baseline *d = &rep->disk;
	if (d->present) {
		tb_jw_obj(w, "disk");
		tb_jw_bool(w, "ok", d->ok);
		tb_jw_str(w, "error", d->error[0] ? d->error : NULL);
		tb_jw_str(w, "engine", d->engine);
		tb_jw_str(w, "dir", d->dir);
		tb_jw_u64(w, "block_bytes", d->block_bytes);
		tb_jw_u64(w, "jobs", (uint64_t)d->jobs);
		tb_jw_u64(w, "copies", (uint64_t)d->copies);
		tb_jw_u64(w, "bytes", d->bytes);
		tb_jw_num(w, "seconds", d->seconds);
		tb_jw_num(w, "mb_per_s", d->mb_per_s);
		tb_jw_num(w, "total_mb_per_s", d->total_mb_per_s);
		json_latency(w, "fdatasync_ms", &d->fdatasync);
		tb_jw_obj_end(w);
	}
	const struct tb_commit_baseline *c = &rep->commit;
	if (c->present) {
		tb_jw_obj(w, "group_commit");
		tb_jw_bool(w, "ok", c->ok);
		tb_jw_str(w, "error", c->error[0] ? c->error : NULL);
		tb_jw_num(w, "records_per_s", c->rate);
		tb_jw_u64(w, "record_bytes", c->record_bytes);
		tb_jw_u64(w, "jobs", (uint64_t)c->jobs);
		tb_jw_u64(w, "fdatasyncs_in_flight", (uint64_t)c->syncs_in_flight);
		tb_jw_bool(w, "overwrite", c->overwrite);
		tb_jw_u64(w, "prefill_bytes", c->prefill_bytes);
		tb_jw_num(w, "seconds", c->seconds);
		tb_jw_u64(w, "records", c->records);
		tb_jw_u64(w, "fdatasyncs", c->syncs);
		tb_jw_u64(w, "bytes", c->bytes);
		json_latency(w, "latency_ms", &c->latency);
		json_latency(w, "fdatasync_ms", &c->fdatasync);
		tb_jw_obj_end(w);
	}
	const struct tb_net_baseline *n = &rep->net;
	if (n->present) {
		tb_jw_obj(w, "loopback");
		tb_jw_bool(w, "ok", n->ok);
		tb_jw_str(w, "error", n->error[0] ? n->error : NULL);
		tb_jw_u64(w, "streams", (uint64_t)n->streams);
		tb_jw_u64(w, "chunk_bytes", n->chunk_bytes);
		tb_jw_u64(w, "bytes", n->bytes);
		tb_jw_num(w, "seconds", n->seconds);
		tb_jw_num(w, "mb_per_s", n->mb_per_s);
		tb_jw_obj_end(w);
	}
	const struct tb_disk_read_baseline *dr = &rep->disk_read;
	if (dr->present) {
		tb_jw_obj(w, "disk_read");
		tb_jw_bool(w, "ok", dr->ok);
		tb_jw_str(w, "error", dr->error[0] ? dr->error : NULL);
		tb_jw_str(w, "dir", dr->dir);
		tb_jw_u64(w, "block_bytes", dr->block_bytes);
		tb_jw_u64(w, "bytes", dr->bytes);
		tb_jw_num(w, "seconds", dr->seconds);
		tb_jw_num(w, "mb_per_s", dr->mb_per_s);
		tb_jw_obj_end(w);
	}
	tb_jw_obj_end(w);
	tb_jw_obj(w, "ratios");
	if (rep->ratio_produce_vs_disk > 0)
		tb_jw_num(w, "produce_vs_disk", rep->ratio_produce_vs_disk);
	if (rep->ratio_produce_vs_disk_direct > 0)
		tb_jw_num(w, "produce_vs_disk_direct", rep->ratio_produce_vs_disk_direct);
	if (rep->ratio_consume_vs_loopback > 0)
		tb_jw_num(w, "consume_vs_loopback", rep->ratio_consume_vs_loopback);
	if (rep->ratio_consume_vs_disk_read > 0) {
		tb_jw_num(w, "consume_vs_disk_read", rep->ratio_consume_vs_disk_read);
		tb_jw_num(w, "consume_vs_limit", rep->ratio_consume_vs_limit);
	}
	if (rep->ratio_p99_vs_fdatasync_p99 > 0)
		tb_jw_num(w, "produce_p99_vs_fdatasync_p99", rep->ratio_p99_vs_fdatasync_p99);
	if (rep->ratio_p99_vs_commit_p99 > 0)
		tb_jw_num(w, "produce_p99_vs_group_commit_p99", rep->ratio_p99_vs_commit_p99);
	tb_jw_obj_end(w);
}

static void json_sweep(struct tb_jw *w, const struct tb_report *rep)
{
	tb_jw_obj(w, "sweep");
	tb_jw_num(w, "peak_records_per_s", rep->sweep_peak_rate);
	if (rep->knee_step >= 0) {
		tb_jw_u64(w, "knee_step", (uint64_t)rep->knee_step + 1);
		tb_jw_num(w, "knee_records_per_s",
			  rep->steps[rep->knee_step].produce.records_per_s);
		tb_jw_num(w, "knee_mb_per_s", rep->steps[rep->knee_step].produce.mb_per_s);
	} else {
		tb_jw_null(w, "knee_step");
	}
	tb_jw_arr(w, "steps");
	for (int i = 0; i < rep->step_count; i++) {
		tb_jw_obj(w, NULL);
		json_phase(w, &rep->steps[i], false);
		tb_jw_obj_end(w);
	}
	tb_jw_arr_end(w);
	tb_jw_obj_end(w);
}

int tb_report_write_json(const char *path, const struct tb_report *rep)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "tally-bench: cannot write %s\n", path);
		return -1;
	}
	const struct tb_opts *o = rep->o;
	struct tb_jw w;
	tb_jw_begin(&w, f);
	tb_jw_str(&w, "tool", "tally-bench");
	tb_jw_str(&w, "version", TL_VERSION);
	tb_jw_str(&w, "mode", tb_mode_name(o->mode));
	tb_jw_str(&w, "label", o->label);
	tb_jw_str(&w, "command", o->command_line);
	tb_jw_bool(&w, "ok", rep->ok);
	tb_jw_str(&w, "error", rep->ok ? NULL : rep->error);
	json_env(&w, &rep->env);
	json_config(&w, o);
	if (rep->has_fill) {
		tb_jw_obj(&w, "fill");
		json_phase(&w, &rep->fill, true);
		tb_jw_obj_end(&w);
	}
	if (o->mode == TB_MODE_SWEEP)
		json_sweep(&w, rep);
	else
		json_phase(&w, &rep->main, true);
	json_baselines(&w, rep);
	tb_jw_end(&w);
	int rc = ferror(f) ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* ---- HTML and SVG ---- */

#define SVG_W       760
#define SVG_H       320
#define SVG_ML      72
#define SVG_MR      24
#define SVG_MT      36
#define SVG_MB      48
#define PCT_MAX_GAP 0.6 /* percentile charts: "max" this far right of the last point */

struct series {
	const char *name;
	const char *color;
	int n;
	const double *x;
	const double *y;
};

struct chart {
	const char *title;
	const char *xlabel;
	const char *ylabel;
	bool x_percentile; /* x are percentiles: drawn at -log10(1 - p/100) */
	bool y_log;
	double shade_to; /* shade x in [min, shade_to]: warm-up; 0 none */
};

static void html_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
	}
}

static double nice_step(double range)
{
	if (range <= 0)
		return 1;
	double raw = range / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;
	double step = r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10;
	return step * mag;
}

/* The drawn x of a data x. p = 100 (max) sits PCT_MAX_GAP right of the largest other. */
static double chart_x(const struct chart *c, double x, double pct_max_x)
{
	if (!c->x_percentile)
		return x;
	if (x >= 100)
		return pct_max_x + PCT_MAX_GAP;
	return -log10(1 - x / 100);
}

struct frame {
	double x0, x1, y0, y1; /* data bounds (drawn x, y or log10 y) */
	double pct_max_x;
};

static double fx(const struct frame *fr, double x)
{
	double w = SVG_W - SVG_ML - SVG_MR;
	return SVG_ML + (fr->x1 > fr->x0 ? (x - fr->x0) / (fr->x1 - fr->x0) : 0.5) * w;
}

static double fy(const struct frame *fr, const struct chart *c, double y)
{
	double h = SVG_H - SVG_MT - SVG_MB;
	if (c->y_log)
		y = log10(y > 0 ? y : pow(10, fr->y0));
	return SVG_MT + h - (fr->y1 > fr->y0 ? (y - fr->y0) / (fr->y1 - fr->y0) : 0.5) * h;
}

static bool frame_fit(struct frame *fr, const struct chart *c, const struct series *s, int ns)
{
	bool any = false;
	double ymin = INFINITY, ymax = -INFINITY, xmin = INFINITY, xmax = -INFINITY;
	fr->pct_max_x = 0;
	for (int k = 0; k < ns; k++)
		for (int i = 0; i < s[k].n; i++)
			if (c->x_percentile && s[k].x[i] < 100)
				fr->pct_max_x = fmax(fr->pct_max_x, chart_x(c, s[k].x[i], 0));
	for (int k = 0; k < ns; k++) {
		for (int i = 0; i < s[k].n; i++) {
			double x = chart_x(c, s[k].x[i], fr->pct_max_x), y = s[k].y[i];
			if (!isfinite(x) || !isfinite(y) || (c->y_log && y <= 0))
				continue;
			any = true;
			xmin = fmin(xmin, x);
			xmax = fmax(xmax, x);
			ymin = fmin(ymin, y);
			ymax = fmax(ymax, y);
		}
	}
	if (!any)
		return false;
	fr->x0 = c->x_percentile ? 0 : fmin(0, xmin);
	fr->x1 = xmax > fr->x0 ? xmax : fr->x0 + 1;
	if (c->y_log) {
		fr->y0 = floor(log10(ymin));
		fr->y1 = ceil(log10(ymax));
		if (fr->y1 <= fr->y0)
			fr->y1 = fr->y0 + 1;
	} else {
		double step = nice_step(ymax);
		fr->y0 = 0;
		fr->y1 = ymax > 0 ? ceil(ymax / step) * step : 1;
	}
	return true;
}

static void svg_axes(FILE *f, const struct chart *c, const struct frame *fr)
{
	double left = SVG_ML, right = SVG_W - SVG_MR, top = SVG_MT, bottom = SVG_H - SVG_MB;
	fprintf(f, "<text x=\"%d\" y=\"20\" class=\"t\">", SVG_ML);
	html_escape(f, c->title);
	fprintf(f, "</text>\n");
	/* y ticks */
	if (c->y_log) {
		for (double e = fr->y0; e <= fr->y1 + 1e-9; e += 1) {
			double y = fy(fr, c, pow(10, e));
			fprintf(f,
				"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/>"
				"<text x=\"%.1f\" y=\"%.1f\" class=\"yl\">%g</text>\n",
				left, right, y, y, left - 6, y + 4, pow(10, e));
		}
	} else {
		double step = nice_step(fr->y1);
		for (double v = 0; v <= fr->y1 + step * 1e-6; v += step) {
			double y = fy(fr, c, v);
			fprintf(f,
				"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/>"
				"<text x=\"%.1f\" y=\"%.1f\" class=\"yl\">%g</text>\n",
				left, right, y, y, left - 6, y + 4, v);
		}
	}
	/* x ticks */
	if (c->x_percentile) {
		const char *labels[] = {"0%",     "90%",     "99%",     "99.9%",
					"99.99%", "99.999%", "99.9999%"};
		for (int e = 0; e <= 6 && e <= fr->pct_max_x + 1e-9; e++) {
			double x = fx(fr, e);
			fprintf(f,
				"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/>"
				"<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">%s</text>\n",
				x, x, top, bottom, x, bottom + 16, labels[e]);
		}
		double x = fx(fr, fr->pct_max_x + PCT_MAX_GAP);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">max</text>\n", x, bottom + 16);
	} else {
		double step = nice_step(fr->x1 - fr->x0);
		for (double v = ceil(fr->x0 / step) * step; v <= fr->x1 + step * 1e-6; v += step) {
			double x = fx(fr, v);
			fprintf(f,
				"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/>"
				"<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">%g</text>\n",
				x, x, top, bottom, x, bottom + 16, v);
		}
	}
	fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"a\"/>\n", left,
		right, bottom, bottom);
	fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"a\"/>\n", left,
		left, top, bottom);
	fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">", (left + right) / 2, SVG_H - 8);
	html_escape(f, c->xlabel);
	fprintf(f,
		"</text>\n<text x=\"14\" y=\"%.1f\" class=\"xl\" transform=\"rotate(-90 14 %.1f)\">",
		(top + bottom) / 2, (top + bottom) / 2);
	html_escape(f, c->ylabel);
	fprintf(f, "</text>\n");
}

static void svg_chart(FILE *f, const struct chart *c, const struct series *s, int ns)
{
	struct frame fr;
	if (!frame_fit(&fr, c, s, ns))
		return;
	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\">\n",
		SVG_W, SVG_H, SVG_W, SVG_H);
	if (c->shade_to > fr.x0) {
		double x0 = fx(&fr, fr.x0), x1 = fx(&fr, fmin(c->shade_to, fr.x1));
		fprintf(f,
			"<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" class=\"w\"/>"
			"<text x=\"%.1f\" y=\"%d\" class=\"xl\">warm-up</text>\n",
			x0, SVG_MT, x1 - x0, SVG_H - SVG_MT - SVG_MB, (x0 + x1) / 2, SVG_MT + 12);
	}
	svg_axes(f, c, &fr);
	for (int k = 0; k < ns; k++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"",
			s[k].color);
		for (int i = 0; i < s[k].n; i++) {
			double x = chart_x(c, s[k].x[i], fr.pct_max_x), y = s[k].y[i];
			if (!isfinite(x) || !isfinite(y) || (c->y_log && y <= 0))
				continue;
			fprintf(f, "%.1f,%.1f ", fx(&fr, x), fy(&fr, c, y));
		}
		fprintf(f, "\"/>\n");
		int lx = SVG_W - SVG_MR - 190, ly = SVG_MT + 14 + 16 * k;
		fprintf(f,
			"<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%d\" class=\"lg\">",
			lx, ly - 4, s[k].color, lx + 20, ly);
		html_escape(f, s[k].name);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
}

static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

static void html_time_charts(FILE *f, const struct tb_phase_result *r, const char *what)
{
	int n = r->sample_count;
	if (n == 0)
		return;
	double *t = calloc((size_t)n, sizeof(double)), *v[6];
	for (int k = 0; k < 6; k++)
		v[k] = calloc((size_t)n, sizeof(double));
	bool ok = t != NULL;
	for (int k = 0; k < 6; k++)
		ok = ok && v[k] != NULL;
	if (ok) {
		for (int i = 0; i < n; i++) {
			const struct tb_sample *s = &r->samples[i];
			double dt = s->dt_s > 0 ? s->dt_s : 1;
			t[i] = s->t_s;
			v[0][i] = (double)s->produced_bytes / dt / 1e6;
			v[1][i] = (double)s->consumed_bytes / dt / 1e6;
			v[2][i] = ms(s->produce_p50_ns);
			v[3][i] = ms(s->produce_p99_ns);
			v[4][i] = ms(s->produce_max_ns);
			v[5][i] = ms(s->e2e_p99_ns);
		}
		char title[160];
		snprintf(title, sizeof(title), "%s: throughput over time (MB/s per interval)",
			 what);
		struct series tput[2];
		int nt = 0;
		if (r->produce.present)
			tput[nt++] =
				(struct series){"produce (acknowledged)", colors[0], n, t, v[0]};
		if (r->consume.present)
			tput[nt++] = (struct series){"consume", colors[2], n, t, v[1]};
		struct chart c = {title, "seconds", "MB/s",
				  false, false,     (double)r->warmup_ns / 1e9};
		svg_chart(f, &c, tput, nt);
		struct series lat[4];
		int nl = 0;
		if (r->produce_latency.count) {
			lat[nl++] = (struct series){"produce p50", colors[0], n, t, v[2]};
			lat[nl++] = (struct series){"produce p99", colors[1], n, t, v[3]};
			lat[nl++] = (struct series){"produce max", colors[4], n, t, v[4]};
		}
		if (r->has_e2e)
			lat[nl++] = (struct series){"end-to-end p99", colors[2], n, t, v[5]};
		snprintf(title, sizeof(title), "%s: latency over time (ms per interval, log scale)",
			 what);
		struct chart cl = {title, "seconds", "ms", false, true, (double)r->warmup_ns / 1e9};
		if (nl)
			svg_chart(f, &cl, lat, nl);
	}
	free(t);
	for (int k = 0; k < 6; k++)
		free(v[k]);
}

static void curve_series(const struct tb_latency *l, double *y, const char *name, const char *color,
			 struct series *out)
{
	for (int i = 0; i < l->curve_count; i++)
		y[i] = ms(l->curve_ns[i]);
	*out = (struct series){name, color, l->curve_count, l->curve_p, y};
}

static void html_percentile_chart(FILE *f, const struct tb_phase_result *r,
				  const struct tb_disk_baseline *disk,
				  const struct tb_commit_baseline *commit)
{
	double y[4][TB_CURVE_POINTS_MAX];
	struct series s[4];
	int n = 0;
	if (r->produce_latency.curve_count) {
		curve_series(&r->produce_latency, y[n], "produce ack", colors[0], &s[n]);
		n++;
	}
	if (r->has_e2e && r->e2e_latency.curve_count) {
		curve_series(&r->e2e_latency, y[n], "end-to-end", colors[2], &s[n]);
		n++;
	}
	if (disk && disk->ok && disk->fdatasync.curve_count) {
		curve_series(&disk->fdatasync, y[n], "disk fdatasync (baseline)", colors[3], &s[n]);
		n++;
	}
	if (commit && commit->ok && commit->latency.curve_count) {
		curve_series(&commit->latency, y[n], "group commit floor", colors[4], &s[n]);
		n++;
	}
	struct chart c = {
		"latency by percentile (ms, log scale)", "percentile", "ms", true, true, 0};
	if (n)
		svg_chart(f, &c, s, n);
}

static void html_sweep_charts(FILE *f, const struct tb_report *rep)
{
	int n = rep->step_count;
	double x[TB_SWEEP_STEPS_MAX], target[TB_SWEEP_STEPS_MAX], p50[TB_SWEEP_STEPS_MAX],
		p99[TB_SWEEP_STEPS_MAX], p999[TB_SWEEP_STEPS_MAX];
	for (int i = 0; i < n; i++) {
		x[i] = rep->steps[i].produce.records_per_s;
		target[i] = rep->steps[i].target_rate;
		p50[i] = ms(rep->steps[i].produce_latency.p50_ns);
		p99[i] = ms(rep->steps[i].produce_latency.p99_ns);
		p999[i] = ms(rep->steps[i].produce_latency.p999_ns);
	}
	struct series lat[3] = {{"p50", colors[0], n, x, p50},
				{"p99", colors[1], n, x, p99},
				{"p99.9", colors[4], n, x, p999}};
	struct chart c = {"sweep: latency against achieved throughput (ms, log scale)",
			  "achieved records/s",
			  "ms",
			  false,
			  true,
			  0};
	svg_chart(f, &c, lat, 3);
	struct series rate[2] = {{"achieved", colors[0], n, target, x},
				 {"target (ideal)", colors[5], n, target, target}};
	struct chart c2 = {"sweep: achieved against target rate (records/s)",
			   "target records/s",
			   "achieved records/s",
			   false,
			   false,
			   0};
	svg_chart(f, &c2, rate, 2);
}

static void html_table_begin(FILE *f, const char *const *heads, int n)
{
	fprintf(f, "<table><tr>");
	for (int i = 0; i < n; i++)
		fprintf(f, "<th>%s</th>", heads[i]);
	fprintf(f, "</tr>\n");
}

static void html_phase_tables(FILE *f, const struct tb_phase_result *r)
{
	char a[32], b[32], c[32];
	const char *h1[] = {"", "records/s", "MB/s", "records", "window s", "errors"};
	html_table_begin(f, h1, 6);
	const struct tb_flow *flows[2] = {&r->produce, &r->consume};
	const char *names[2] = {"produce", "consume"};
	for (int i = 0; i < 2; i++)
		if (flows[i]->present)
			fprintf(f,
				"<tr><td>%s</td><td>%s</td><td>%.2f</td><td>%s</td><td>%.1f</td>"
				"<td>%llu</td></tr>\n",
				names[i], tb_fmt_count(a, sizeof(a), flows[i]->records_per_s),
				flows[i]->mb_per_s,
				tb_fmt_count(b, sizeof(b), (double)flows[i]->records),
				flows[i]->window_s, (unsigned long long)flows[i]->errors);
	fprintf(f, "</table>\n");
	const char *h2[] = {"latency ms", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"};
	const struct tb_latency *lats[2] = {&r->produce_latency, &r->e2e_latency};
	const char *lnames[2] = {"produce ack", "end-to-end"};
	if (r->produce_latency.count || r->has_e2e) {
		html_table_begin(f, h2, 8);
		for (int i = 0; i < 2; i++) {
			const struct tb_latency *l = lats[i];
			if (!l->count)
				continue;
			fprintf(f,
				"<tr><td>%s</td><td>%s</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
				"<td>%.3f</td><td>%.3f</td><td>%.3f</td></tr>\n",
				lnames[i], tb_fmt_count(a, sizeof(a), (double)l->count),
				ms(l->p50_ns), ms(l->p90_ns), ms(l->p99_ns), ms(l->p999_ns),
				ms(l->p9999_ns), ms(l->max_ns));
		}
		fprintf(f, "</table>\n");
	}
	const struct tb_resources *res = &r->res;
	fprintf(f, "<p>Client %.2f CPU-s/GB", res->client_cpu_s_per_gb);
	if (res->broker_pid && !r->produce.present)
		fprintf(f, "; broker %.2f CPU-s/GB; broker read %s from disk for %s sent",
			res->broker_cpu_s_per_gb,
			tb_fmt_bytes(a, sizeof(a), (double)res->broker_read_bytes),
			tb_fmt_bytes(b, sizeof(b), (double)res->bytes));
	else if (res->broker_pid)
		fprintf(f,
			"; broker %.2f CPU-s/GB; broker wrote %s (write_bytes) for %s of payload:"
			" write amplification %.3f; broker read %s from disk",
			res->broker_cpu_s_per_gb,
			tb_fmt_bytes(a, sizeof(a), (double)res->broker_write_bytes),
			tb_fmt_bytes(b, sizeof(b), (double)res->bytes), res->write_amplification,
			tb_fmt_bytes(c, sizeof(c), (double)res->broker_read_bytes));
	const struct tb_broker_stats *st = &r->broker;
	if (st->flushes)
		fprintf(f, "; %llu fdatasyncs of %s on average, each p50 %.3f p99 %.3f max %.3f ms",
			(unsigned long long)st->flushes,
			tb_fmt_bytes(a, sizeof(a), (double)st->bytes_per_flush),
			us_ms(st->flush_us[0]), us_ms(st->flush_us[1]), us_ms(st->flush_us[3]));
	if (st->produce_requests)
		fprintf(f, "; Produce requests in the broker p50 %.3f p99 %.3f max %.3f ms",
			us_ms(st->produce_us[0]), us_ms(st->produce_us[1]),
			us_ms(st->produce_us[3]));
	fprintf(f, ".</p>\n");
}

static void html_baselines(FILE *f, const struct tb_report *rep)
{
	char a[32];
	const struct tb_disk_baseline *d = &rep->disk;
	const struct tb_net_baseline *n = &rep->net;
	if (!d->present && !n->present)
		return;
	fprintf(f, "<h2>Baselines (same run)</h2>\n<ul>\n");
	if (d->present && d->ok)
		fprintf(f,
			"<li>Disk: %.2f MB/s%s sequential writes of %s, each followed by fdatasync,"
			" %d job(s), %s; fdatasync p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms</li>\n",
			d->mb_per_s, d->copies > 1 ? " of one copy (all writers / copies)" : "",
			tb_fmt_bytes(a, sizeof(a), (double)d->block_bytes), d->jobs, d->engine,
			ms(d->fdatasync.p50_ns), ms(d->fdatasync.p99_ns), ms(d->fdatasync.p999_ns));
	else if (d->present)
		fprintf(f, "<li>Disk baseline failed: %s</li>\n", d->error);
	const struct tb_commit_baseline *c = &rep->commit;
	if (c->present && c->ok)
		fprintf(f,
			"<li>Group commit (an ideal broker: %s records/s of %llu B written as they"
			" arrive%s, %d fdatasync(s) in flight per file, no network): p50 %.3f ms,"
			" p99 %.3f ms, p99.9 %.3f ms</li>\n",
			tb_fmt_count(a, sizeof(a), c->rate), (unsigned long long)c->record_bytes,
			c->overwrite ? " into zero-filled files" : "", c->syncs_in_flight,
			ms(c->latency.p50_ns), ms(c->latency.p99_ns), ms(c->latency.p999_ns));
	else if (c->present)
		fprintf(f, "<li>Group commit baseline failed: %s</li>\n", c->error);
	if (n->present && n->ok)
		fprintf(f, "<li>Loopback TCP: %.2f MB/s (%d stream(s))</li>\n", n->mb_per_s,
			n->streams);
	else if (n->present)
		fprintf(f, "<li>Loopback baseline failed: %s</li>\n", n->error);
	if (rep->ratio_produce_vs_disk > 0)
		fprintf(f, "<li><b>produce / disk = %.3f</b></li>\n", rep->ratio_produce_vs_disk);
	if (rep->ratio_consume_vs_loopback > 0)
		fprintf(f, "<li><b>consume / loopback = %.3f</b></li>\n",
			rep->ratio_consume_vs_loopback);
	if (rep->ratio_consume_vs_disk_read > 0)
		fprintf(f,
			"<li>Disk reads (O_DIRECT): %.2f MB/s; <b>consume / disk read = %.3f</b>,"
			" / the lower of disk read and loopback = %.3f</li>\n",
			rep->disk_read.mb_per_s, rep->ratio_consume_vs_disk_read,
			rep->ratio_consume_vs_limit);
	if (rep->ratio_p99_vs_fdatasync_p99 > 0)
		fprintf(f, "<li><b>produce p99 / fdatasync p99 = %.2f</b></li>\n",
			rep->ratio_p99_vs_fdatasync_p99);
	if (rep->ratio_p99_vs_commit_p99 > 0)
		fprintf(f, "<li><b>produce p99 / group commit p99 = %.2f</b></li>\n",
			rep->ratio_p99_vs_commit_p99);
	fprintf(f, "</ul>\n");
}

static void html_sweep_table(FILE *f, const struct tb_report *rep)
{
	char a[32], b[32];
	const char *h[] = {"step", "target/s", "achieved/s", "MB/s", "p50", "p99", "p99.9", "max"};
	fprintf(f, "<p>Peak (closed loop): %s records/s. ",
		tb_fmt_count(a, sizeof(a), rep->sweep_peak_rate));
	if (rep->knee_step >= 0)
		fprintf(f, "Knee: <b>%s records/s</b> (step %d).</p>\n",
			tb_fmt_count(a, sizeof(a),
				     rep->steps[rep->knee_step].produce.records_per_s),
			rep->knee_step + 1);
	else
		fprintf(f, "No knee: the first step already missed its bounds.</p>\n");
	html_table_begin(f, h, 8);
	for (int i = 0; i < rep->step_count; i++) {
		const struct tb_phase_result *s = &rep->steps[i];
		fprintf(f,
			"<tr%s><td>%d</td><td>%s</td><td>%s</td><td>%.2f</td><td>%.3f</td>"
			"<td>%.3f</td><td>%.3f</td><td>%.3f</td></tr>\n",
			i == rep->knee_step ? " class=\"k\"" : "", i + 1,
			tb_fmt_count(a, sizeof(a), s->target_rate),
			tb_fmt_count(b, sizeof(b), s->produce.records_per_s), s->produce.mb_per_s,
			ms(s->produce_latency.p50_ns), ms(s->produce_latency.p99_ns),
			ms(s->produce_latency.p999_ns), ms(s->produce_latency.max_ns));
	}
	fprintf(f, "</table>\n");
}

static void html_head(FILE *f, const struct tb_report *rep)
{
	const struct tb_opts *o = rep->o;
	fprintf(f,
		"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>"
		"tally-bench %s",
		tb_mode_name(o->mode));
	if (o->label) {
		fputs(": ", f);
		html_escape(f, o->label);
	}
	fputs("</title>\n<style>\n"
	      "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}\n"
	      "table{border-collapse:collapse;margin:8px 0 16px}\n"
	      "td,th{border:1px solid #ccc;padding:3px 9px;text-align:right}\n"
	      "td:first-child,th:first-child{text-align:left}\n"
	      "tr.k{background:#fff3c4}\n code{background:#f3f3f3;padding:1px 4px}\n"
	      "svg{display:block;margin:10px 0 22px;background:#fff;border:1px solid #ddd}\n"
	      "svg .g{stroke:#eee} svg .a{stroke:#888} svg .w{fill:#f4f4f4}\n"
	      "svg .t{font-size:14px;font-weight:600} svg .lg{font-size:12px}\n"
	      "svg .xl{font-size:11px;text-anchor:middle} svg .yl{font-size:11px;text-anchor:end}\n"
	      "</style></head><body>\n",
	      f);
}

int tb_report_write_html(const char *path, const struct tb_report *rep)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "tally-bench: cannot write %s\n", path);
		return -1;
	}
	const struct tb_opts *o = rep->o;
	const struct tb_env *e = &rep->env;
	char mem[32];
	html_head(f, rep);
	fprintf(f, "<h1>tally-bench %s", tb_mode_name(o->mode));
	if (o->label) {
		fputs(": ", f);
		html_escape(f, o->label);
	}
	fprintf(f, "</h1>\n<p><code>");
	html_escape(f, o->command_line);
	fprintf(f, "</code></p>\n<p>%s. %d CPUs (", e->time_utc, e->nproc);
	html_escape(f, e->cpu);
	fprintf(f, "), %s RAM, ", tb_fmt_bytes(mem, sizeof(mem), (double)e->mem_bytes));
	html_escape(f, e->kernel);
	fprintf(f, "; disk ");
	html_escape(f, e->disk);
	fprintf(f, ".</p>\n<p>");
	workload_line(f, o);
	fprintf(f, "</p>\n");
	if (!rep->ok) {
		fprintf(f, "<p><b>FAILED:</b> ");
		html_escape(f, rep->error);
		fprintf(f, "</p>\n");
	}
	if (rep->has_fill) {
		fprintf(f, "<h2>Fill (produce before reading)</h2>\n");
		html_phase_tables(f, &rep->fill);
		html_time_charts(f, &rep->fill, "fill");
	}
	if (o->mode == TB_MODE_SWEEP) {
		fprintf(f, "<h2>Sweep</h2>\n");
		html_sweep_table(f, rep);
		html_sweep_charts(f, rep);
		if (rep->knee_step >= 0) {
			fprintf(f, "<h2>At the knee</h2>\n");
			html_percentile_chart(f, &rep->steps[rep->knee_step], &rep->disk,
					      &rep->commit);
		}
	} else {
		fprintf(f, "<h2>Results</h2>\n");
		html_phase_tables(f, &rep->main);
		html_time_charts(f, &rep->main, tb_mode_name(o->mode));
		html_percentile_chart(f, &rep->main, &rep->disk, &rep->commit);
	}
	html_baselines(f, rep);
	fprintf(f, "<p>Throughput counts acknowledged (or received) records in the measurement "
		   "window after warm-up; latency counts records whose intended send time is "
		   "after warm-up. Bytes are key + value; MB = 10<sup>6</sup> bytes.</p>\n"
		   "</body></html>\n");
	int rc = ferror(f) ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}
