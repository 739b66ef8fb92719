/* main.c - tally-bench's modes: produce, consume (fill, then read from the page cache),
 * e2e (produce and consume at once), sweep (open-loop steps at rising rates), and the
 * baselines and ratios that follow a run. See tb.h for the map of files. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tb.h"

#define DISK_BASELINE_MIN_BYTES      (256ULL << 20)
#define DISK_BASELINE_MAX_BYTES      (16ULL << 30)
/* The disk read baseline of consume: tallyd's cold-read chunk (log.c's read-ahead),
 * and at most this much written first. */
#define DISK_READ_BLOCK_BYTES        (4ULL << 20)
#define DISK_READ_BASELINE_MAX_BYTES (4ULL << 30)
#define NET_BASELINE_S               5.0
#define DISK_BASELINE_JOBS_MAX       16
#define DEFAULT_FSYNC_BYTES          (1u << 20)
#define KNEE_RATE_SHARE              0.95 /* a step keeps up when it achieves this share */
#define KNEE_P99_FACTOR              5    /* default latency bound: 5x the reference p99 */

volatile sig_atomic_t tb_stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	tb_stop_requested = 1;
}

/* The brokers of one phase: a spawned tallyd, etcd and N tallyds
 * (--replication-factor N), or the one -b names. */
struct session {
	const struct tb_opts *o;
	struct tb_broker broker;
	struct tb_cluster cluster;
	int leader_node;
	struct tb_target t;
	char topic[256];
};

#define ISR_TIMEOUT_MS 30000

/* Starts etcd and the brokers, and after the topic was created waits for its ISR. */
static int session_start_cluster(struct session *s, const struct tb_opts *o, char *err,
				 size_t err_size)
{
	if (!o->quiet)
		printf("cluster: starting etcd and %d brokers\n", o->replication_factor);
	if (tb_cluster_spawn(o, &s->cluster, err, err_size) != 0)
		return -1;
	s->t.bootstrap = s->cluster.bootstrap;
	if (tb_prepare_topic(o, &s->t, err, err_size) != 0)
		return -1;
	if (tb_wait_isr(s->t.bootstrap, s->topic, o->partitions, o->replication_factor,
			ISR_TIMEOUT_MS, &s->leader_node, err, err_size) != 0)
		return -1;
	if (s->leader_node >= 1 && s->leader_node <= s->cluster.count)
		s->t.broker_pid = s->cluster.node[s->leader_node - 1].pid;
	/* One acks=all record through the whole path before the clock starts: a follower
	 * whose first fetch reached the leader before it took up leadership backs off
	 * (replica.fetch.backoff.ms) and holds the first acknowledgements for up to a
	 * couple of seconds; that start-up belongs to no steady state. */
	struct tb_opts prime = *o;
	prime.producers = 1;
	prime.transactions = false;
	prime.progress = false;
	prime.quiet = true;
	struct tb_phase_result r;
	memset(&r, 0, sizeof(r));
	int64_t t0 = tb_now_ns();
	int rc = tb_run_phase(&prime, &s->t, TB_PHASE_PRODUCE, 0, 1, 0, 0, &r);
	double first_ms = (double)(tb_now_ns() - t0) / 1e6;
	if (rc != 0 || r.produce.errors) {
		snprintf(err, err_size, "the first record: %s",
			 r.produce.first_error[0] ? r.produce.first_error : "not acknowledged");
		tb_phase_free(&r);
		return -1;
	}
	tb_phase_free(&r);
	if (!o->quiet)
		printf("cluster: %s, topic %s with %d replicas in its ISR, min.insync.replicas"
		       " %d, partition 0 led by broker %d (pid %d); a first record took %.0f ms\n",
		       s->cluster.bootstrap, s->topic, o->replication_factor,
		       o->min_insync_replicas, s->leader_node, s->t.broker_pid, first_ms);
	return 0;
}

static int session_start(struct session *s, const struct tb_opts *o, const char *topic, char *err,
			 size_t err_size)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	tb_strlcpy(s->topic, sizeof(s->topic), topic);
	s->t.topic = s->topic;
	if (!o->bootstrap && o->replication_factor > 1) {
		if (session_start_cluster(s, o, err, err_size) != 0) {
			tb_cluster_cleanup(&s->cluster, o->keep_data);
			return -1;
		}
		return 0;
	}
	if (o->bootstrap) {
		s->t.bootstrap = o->bootstrap;
		s->t.broker_pid = o->broker_pid ? o->broker_pid
						: tb_pid_listening_on(tb_port_of(o->bootstrap));
	} else {
		if (tb_broker_spawn(o, &s->broker, err, err_size) != 0) {
			tb_broker_cleanup(&s->broker, o->keep_data);
			return -1;
		}
		s->t.bootstrap = s->broker.bootstrap;
		s->t.broker_pid = s->broker.pid;
	}
	if (tb_prepare_topic(o, &s->t, err, err_size) != 0) {
		tb_broker_cleanup(&s->broker, o->keep_data);
		return -1;
	}
	return 0;
}

/* The data of the last stopped broker stays until the baselines ran: freeing gigabytes
 * of page cache just before the disk baseline would hand fio pages that a VM has backed
 * already, while the broker wrote into fresh ones (see docs/bench.md). */
static struct tb_broker deferred;
static struct tb_cluster deferred_cluster;

static void deferred_cleanup(bool keep)
{
	tb_broker_cleanup(&deferred, keep);
	memset(&deferred, 0, sizeof(deferred));
	tb_cluster_cleanup(&deferred_cluster, keep);
	memset(&deferred_cluster, 0, sizeof(deferred_cluster));
}

/* The leader's statistics as the broker's, every replica's, and their mean cadence. */
static void session_stop_cluster(struct session *s, struct tb_phase_result *r)
{
	struct tb_cluster *c = &s->cluster;
	if (tb_cluster_stop(c, s->topic, r->replicas) != 0)
		fprintf(stderr, "tally-bench: the cluster did not stop cleanly (logs under %s)\n",
			c->workdir);
	if (s->o->keep_data)
		fprintf(stderr, "tally-bench: kept %s\n", c->workdir);
	r->replica_count = c->count;
	r->leader_node = s->leader_node;
	uint64_t bytes = 0, flushes = 0;
	int answered = 0;
	for (int i = 0; i < c->count; i++) {
		bytes += r->replicas[i].bytes_per_flush * r->replicas[i].flushes;
		flushes += r->replicas[i].flushes;
		if (r->replicas[i].produce_requests > r->replicas[answered].produce_requests)
			answered = i;
	}
	r->replica_bytes_per_flush = flushes ? bytes / flushes : 0;
	r->broker = r->replicas[answered];
	deferred_cleanup(s->o->keep_data);
	deferred_cluster = *c;
}

/* Stops a spawned broker and puts its flush statistics into @r. */
static void session_stop(struct session *s, struct tb_phase_result *r)
{
	if (s->cluster.spawned) {
		session_stop_cluster(s, r);
		return;
	}
	if (s->broker.spawned) {
		if (tb_broker_stop(&s->broker, s->topic, &r->broker) != 0)
			fprintf(stderr, "tally-bench: tallyd did not stop cleanly (log: %s)\n",
				s->broker.log_path);
		if (s->o->keep_data)
			fprintf(stderr, "tally-bench: kept %s\n", s->broker.workdir);
	}
	deferred_cleanup(s->o->keep_data);
	deferred = s->broker;
}

static void fail(struct tb_report *rep, const char *why)
{
	if (rep->ok) {
		tb_strlcpy(rep->error, sizeof(rep->error), why);
		fprintf(stderr, "tally-bench: %s\n", why);
	}
	rep->ok = false;
}

static void phase_check(struct tb_report *rep, int rc, const struct tb_phase_result *r)
{
	const char *why = r->produce.first_error[0]   ? r->produce.first_error
			  : r->consume.first_error[0] ? r->consume.first_error
						      : NULL;
	if (rc != 0 || r->produce.errors || r->consume.errors)
		fail(rep, why ? why : "the workload failed");
}

static double mean_record_bytes(const struct tb_opts *o)
{
	const struct tb_size_dist *d = &o->size;
	double mean = d->kind == TB_SIZE_UNIFORM ? ((double)d->a + d->b) / 2 : d->a;
	return mean + (o->keys ? 14 : 0);
}

/* ---- modes ---- */

static void run_single(const struct tb_opts *o, struct tb_report *rep, enum tb_phase_kind kind)
{
	struct session s;
	char err[512];
	if (session_start(&s, o, o->topic, err, sizeof(err)) != 0) {
		fail(rep, err);
		return;
	}
	int rc = tb_run_phase(o, &s.t, kind, o->rate, o->count, o->duration_ns, o->warmup_ns,
			      &rep->main);
	phase_check(rep, rc, &rep->main);
	session_stop(&s, &rep->main);
}

static void run_consume(const struct tb_opts *o, struct tb_report *rep)
{
	struct session s;
	char err[512];
	if (session_start(&s, o, o->topic, err, sizeof(err)) != 0) {
		fail(rep, err);
		return;
	}
	uint64_t count = o->count;
	if (count == 0)
		count = (uint64_t)((double)o->fill_bytes / fmax(mean_record_bytes(o), 1));
	if (count == 0)
		count = 1;
	if (!o->quiet)
		printf("fill: producing %llu records\n", (unsigned long long)count);
	rep->has_fill = true;
	int rc = tb_run_phase(o, &s.t, TB_PHASE_PRODUCE, 0, count, 0, 0, &rep->fill);
	phase_check(rep, rc, &rep->fill);
	if (rep->ok) {
		if (!o->quiet)
			printf("consume: reading %llu records from the beginning\n",
			       (unsigned long long)rep->fill.produce.total_records);
		rc = tb_run_phase(o, &s.t, TB_PHASE_CONSUME, 0, rep->fill.produce.total_records,
				  o->duration_ns, o->warmup_ns, &rep->main);
		phase_check(rep, rc, &rep->main);
	}
	session_stop(&s, &rep->fill);
}

static bool step_keeps_up(const struct tb_phase_result *r, uint64_t p99_limit_ns)
{
	return r->produce.errors == 0 &&
	       r->produce.records_per_s >= KNEE_RATE_SHARE * r->target_rate &&
	       r->produce_latency.p99_ns <= p99_limit_ns;
}

static void sweep_knee(const struct tb_opts *o, struct tb_report *rep)
{
	rep->knee_step = -1;
	if (rep->step_count == 0)
		return;
	/* The reference p99 is the lowest of the lower half of the steps, so one start-up
	 * stall in the first step does not loosen the bound. */
	uint64_t first = rep->steps[0].produce_latency.p99_ns;
	for (int i = 1; i < (rep->step_count + 1) / 2; i++)
		if (rep->steps[i].produce_latency.p99_ns < first)
			first = rep->steps[i].produce_latency.p99_ns;
	uint64_t limit = o->slo_p99_ms > 0 ? (uint64_t)(o->slo_p99_ms * 1e6)
					   : (uint64_t)fmax((double)first * KNEE_P99_FACTOR,
							    (double)first + 1e6);
	for (int i = 0; i < rep->step_count && step_keeps_up(&rep->steps[i], limit); i++)
		rep->knee_step = i;
}

static int sweep_step(const struct tb_opts *o, const char *topic, double rate,
		      struct tb_phase_result *r, struct tb_report *rep)
{
	struct session s;
	char err[512];
	if (session_start(&s, o, topic, err, sizeof(err)) != 0) {
		fail(rep, err);
		return -1;
	}
	int rc = tb_run_phase(o, &s.t, TB_PHASE_PRODUCE, rate, 0, o->duration_ns, o->warmup_ns, r);
	session_stop(&s, r);
	return rc;
}

static void run_sweep(const struct tb_opts *o, struct tb_report *rep)
{
	char topic[300];
	struct tb_phase_result peak;
	memset(&peak, 0, sizeof(peak));
	double rate = o->sweep_max_rate;
	if (rate <= 0) {
		if (!o->quiet)
			printf("sweep: finding the peak with a closed-loop run\n");
		snprintf(topic, sizeof(topic), "%s-peak", o->topic);
		int rc = sweep_step(o, topic, 0, &peak, rep);
		phase_check(rep, rc, &peak);
		rate = peak.produce.records_per_s;
		tb_phase_free(&peak);
		if (!rep->ok || rate <= 0) {
			fail(rep, "the peak run delivered nothing");
			return;
		}
	}
	rep->sweep_peak_rate = rate;
	for (int i = 1; i <= o->sweep_steps && !tb_stop_requested; i++) {
		double target = rate * o->sweep_over * i / o->sweep_steps;
		if (!o->quiet)
			printf("sweep: step %d of %d at %.0f records/s\n", i, o->sweep_steps,
			       target);
		snprintf(topic, sizeof(topic), "%s-s%d", o->topic, i);
		struct tb_phase_result *r = &rep->steps[rep->step_count];
		int rc = sweep_step(o, topic, target, r, rep);
		rep->step_count++;
		if (rc != 0 && r->produce.records == 0) {
			phase_check(rep, rc, r);
			break;
		}
	}
	sweep_knee(o, rep);
}

/* ---- baselines ---- */

/* The produce phase whose fsync cadence the disk baseline copies. */
static const struct tb_phase_result *cadence_phase(const struct tb_report *rep)
{
	if (rep->o->mode == TB_MODE_CONSUME)
		return &rep->fill;
	if (rep->o->mode == TB_MODE_SWEEP) {
		if (rep->knee_step >= 0)
			return &rep->steps[rep->knee_step];
		return rep->step_count ? &rep->steps[rep->step_count - 1] : NULL;
	}
	return &rep->main;
}

static void run_baselines(const struct tb_opts *o, struct tb_report *rep)
{
	const struct tb_phase_result *r = cadence_phase(rep);
	const char *dir = o->data_dir ? o->data_dir : "/var/tmp";
	uint64_t block = DEFAULT_FSYNC_BYTES;
	const char *source = "default (cadence unknown)";
	if (o->fsync_bytes) {
		block = o->fsync_bytes;
		source = "--fsync-bytes";
	} else if (r && r->replica_count > 1 && r->replica_bytes_per_flush) {
		/* Leader and followers: what the replicas wrote per fdatasync, all together. */
		block = r->replica_bytes_per_flush;
		source = "mean of the replicas' tallyds";
	} else if (r && r->broker.bytes_per_flush) {
		block = r->broker.bytes_per_flush;
		source = "tallyd's bytes per fdatasync";
	}
	/* The same bytes in (by default) as long as the workload took: many disks, and a VM's
	 * host cache, take their first gigabytes faster than the rest. */
	uint64_t bytes = r ? r->produce.total_bytes : 0;
	if (bytes < DISK_BASELINE_MIN_BYTES)
		bytes = DISK_BASELINE_MIN_BYTES;
	if (bytes > DISK_BASELINE_MAX_BYTES)
		bytes = DISK_BASELINE_MAX_BYTES;
	double disk_s = o->baseline_s;
	if (disk_s <= 0)
		disk_s = fmax(NET_BASELINE_S, r ? r->res.wall_s : 0);
	double net_s = o->baseline_s > 0 ? o->baseline_s : NET_BASELINE_S;
	int jobs = o->partitions < DISK_BASELINE_JOBS_MAX ? o->partitions : DISK_BASELINE_JOBS_MAX;
	if (!o->quiet)
		printf("baseline: disk, %llu bytes per fdatasync (%s), %d job(s) x %d cop%s, in"
		       " %s\n",
		       (unsigned long long)block, source, jobs, o->baseline_copies,
		       o->baseline_copies == 1 ? "y" : "ies", dir);
	tb_disk_baseline_run(dir, block, jobs, o->baseline_copies, bytes, disk_s,
			     o->baseline_engine, false, &rep->disk);
	tb_strlcpy(rep->disk.block_source, sizeof(rep->disk.block_source), source);
	if (!o->quiet)
		printf("baseline: disk with O_DIRECT, same writers, files fallocated\n");
	tb_disk_baseline_run(dir, block, jobs, o->baseline_copies, bytes, disk_s,
			     o->baseline_engine, true, &rep->disk_direct);
	tb_strlcpy(rep->disk_direct.block_source, sizeof(rep->disk_direct.block_source), source);
	/* Latency has a floor only where arrivals have a rate: open-loop phases. */
	if (r && r->target_rate > 0 && r->produce.total_records > 0) {
		uint64_t record_bytes = r->produce.total_bytes / r->produce.total_records;
		double warmup_s = fmin((double)o->warmup_ns / 1e9, disk_s / 2);
		if (!o->quiet)
			printf("baseline: group commit, %.0f records/s of %llu bytes, %d file(s),"
			       " %d fdatasync(s) in flight%s\n",
			       r->target_rate, (unsigned long long)record_bytes, jobs,
			       o->baseline_syncs,
			       o->baseline_overwrite ? ", zero-filled first" : "");
		tb_commit_baseline_run(dir, r->target_rate, record_bytes, jobs, o->baseline_syncs,
				       o->baseline_overwrite, disk_s, warmup_s, &rep->commit);
	}
	int streams = o->mode == TB_MODE_PRODUCE || o->mode == TB_MODE_SWEEP ? 1 : o->consumers;
	if (!o->quiet)
		printf("baseline: loopback TCP, %d stream(s)\n", streams);
	tb_net_baseline_run(streams, net_s, &rep->net);
	if (o->mode == TB_MODE_CONSUME) {
		/* The consume read what the fill wrote: as many bytes, read back cold. */
		uint64_t read_bytes = rep->fill.produce.total_bytes;
		if (read_bytes < DISK_BASELINE_MIN_BYTES)
			read_bytes = DISK_BASELINE_MIN_BYTES;
		if (read_bytes > DISK_READ_BASELINE_MAX_BYTES)
			read_bytes = DISK_READ_BASELINE_MAX_BYTES;
		if (!o->quiet)
			printf("baseline: disk reads, O_DIRECT, %llu bytes in %llu-byte reads\n",
			       (unsigned long long)read_bytes,
			       (unsigned long long)DISK_READ_BLOCK_BYTES);
		tb_disk_read_baseline_run(dir, read_bytes, DISK_READ_BLOCK_BYTES, disk_s,
					  &rep->disk_read);
	}
	/* Throughput ratios compare peaks: only closed-loop phases have them. */
	if (r && r->target_rate == 0 && rep->disk.ok && rep->disk.mb_per_s > 0 &&
	    r->produce.mb_per_s > 0)
		rep->ratio_produce_vs_disk = r->produce.mb_per_s / rep->disk.mb_per_s;
	if (r && r->target_rate == 0 && rep->disk_direct.ok && rep->disk_direct.mb_per_s > 0 &&
	    r->produce.mb_per_s > 0)
		rep->ratio_produce_vs_disk_direct = r->produce.mb_per_s / rep->disk_direct.mb_per_s;
	if (r && rep->disk.ok && rep->disk.fdatasync.p99_ns > 0 && r->produce_latency.p99_ns > 0)
		rep->ratio_p99_vs_fdatasync_p99 =
			(double)r->produce_latency.p99_ns / (double)rep->disk.fdatasync.p99_ns;
	if (r && rep->commit.ok && rep->commit.latency.p99_ns > 0 && r->produce_latency.p99_ns > 0)
		rep->ratio_p99_vs_commit_p99 =
			(double)r->produce_latency.p99_ns / (double)rep->commit.latency.p99_ns;
	if (o->mode == TB_MODE_CONSUME && rep->net.ok && rep->net.mb_per_s > 0 &&
	    rep->main.consume.present)
		rep->ratio_consume_vs_loopback = rep->main.consume.mb_per_s / rep->net.mb_per_s;
	if (o->mode == TB_MODE_CONSUME && rep->disk_read.ok && rep->disk_read.mb_per_s > 0 &&
	    rep->main.consume.present) {
		rep->ratio_consume_vs_disk_read =
			rep->main.consume.mb_per_s / rep->disk_read.mb_per_s;
		double limit = rep->disk_read.mb_per_s;
		if (rep->net.ok && rep->net.mb_per_s > 0 && rep->net.mb_per_s < limit)
			limit = rep->net.mb_per_s;
		rep->ratio_consume_vs_limit = rep->main.consume.mb_per_s / limit;
	}
}

/* ---- main ---- */

static int mode_of(const char *word, enum tb_mode *mode)
{
	const enum tb_mode modes[] = {TB_MODE_PRODUCE, TB_MODE_CONSUME, TB_MODE_E2E, TB_MODE_SWEEP};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(word, tb_mode_name(modes[i])) == 0) {
			*mode = modes[i];
			return 0;
		}
	return -1;
}

static void signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int write_outputs(const struct tb_opts *o, const struct tb_report *rep)
{
	int rc = 0;
	if (o->json_path && tb_report_write_json(o->json_path, rep) != 0)
		rc = -1;
	if (o->html_path && tb_report_write_html(o->html_path, rep) != 0)
		rc = -1;
	if (!o->quiet && (o->json_path || o->html_path))
		printf("wrote%s%s%s%s\n", o->json_path ? " " : "", o->json_path ? o->json_path : "",
		       o->html_path ? " " : "", o->html_path ? o->html_path : "");
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		tb_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "compare") == 0)
		return tb_compare_main(argc - 1, argv + 1);
	enum tb_mode mode;
	if (mode_of(argv[1], &mode) != 0) {
		fprintf(stderr,
			"tally-bench: unknown mode \"%s\" (produce, consume, e2e, sweep,"
			" compare)\n",
			argv[1]);
		return 2;
	}
	struct tb_opts *o = calloc(1, sizeof(*o));
	struct tb_report *rep = calloc(1, sizeof(*rep));
	if (!o || !rep || tb_opts_parse(o, mode, argc - 1, argv + 1) != 0) {
		int rc = o && rep ? 2 : 1;
		free(rep);
		free(o);
		return rc;
	}
	char topic[256];
	if (!o->topic) {
		snprintf(topic, sizeof(topic), "tally-bench-%s-%d", tb_mode_name(mode),
			 (int)getpid());
		o->topic = topic;
	}
	signals_install();
	setvbuf(stdout, NULL, _IOLBF, 0);
	rep->o = o;
	rep->ok = true;
	rep->knee_step = -1;
	tb_env_collect(&rep->env, o->data_dir ? o->data_dir : "/var/tmp");
	switch (mode) {
	case TB_MODE_PRODUCE:
		run_single(o, rep, TB_PHASE_PRODUCE);
		break;
	case TB_MODE_E2E:
		run_single(o, rep, TB_PHASE_E2E);
		break;
	case TB_MODE_CONSUME:
		run_consume(o, rep);
		break;
	case TB_MODE_SWEEP:
		run_sweep(o, rep);
		break;
	}
	if (tb_stop_requested)
		fail(rep, "interrupted");
	if (o->baseline && !tb_stop_requested)
		run_baselines(o, rep);
	deferred_cleanup(o->keep_data);
	tb_report_print(stdout, rep);
	int rc = write_outputs(o, rep) == 0 && rep->ok ? 0 : 1;
	tb_phase_free(&rep->main);
	tb_phase_free(&rep->fill);
	for (int i = 0; i < rep->step_count; i++)
		tb_phase_free(&rep->steps[i]);
	free(rep);
	free(o);
	return rc;
}
