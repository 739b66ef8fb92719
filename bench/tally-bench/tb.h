/* tb.h - tally-bench, a load generator and benchmark report for Tally built on libtally.
 *
 *   tally-bench produce|consume|e2e|sweep [options]   run a workload, print a table,
 *                                                     write --json and --html reports
 *   tally-bench compare A.json B.json [C.json ...]    side by side, with ratios to A
 *
 * Units: times are int64 nanoseconds on CLOCK_MONOTONIC unless a name says otherwise
 * (_s, _ms); sizes are bytes; "MB" is 10^6 bytes. Records counted as produced are the
 * acknowledged ones; their bytes are key + value.
 *
 * Files: main.c (modes, sweep), opts.c (command line), hist.c (latency histogram),
 * workload.c (threads, pacing, sampling), driver_tally.c (libtally), driver_peer.c (Redis
 * Streams and NATS JetStream over their own wire protocols), broker.c (spawning tallyd,
 * /proc figures), cluster.c (etcd and N brokers for --replication-factor), baseline.c (disk and
 * loopback), report.c (table, JSON, HTML), json.c (writer and a small parser), compare.c. */
#ifndef TALLY_BENCH_TB_H
#define TALLY_BENCH_TB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TB_NS_PER_S  1000000000LL
#define TB_NS_PER_MS 1000000LL

#define TB_THREADS_MAX     64        /* producers or consumers */
#define TB_PROPS_MAX       32        /* -X / -C / --broker-arg entries */
#define TB_RECORD_MAX      (1 << 20) /* largest record value: message.max.bytes */
#define TB_RECORD_HEADER   16        /* magic + intended send time, at the start of a value */
#define TB_RECORD_MAGIC    0x31484342424c4154ULL /* "TALBBCH1" little-endian */
#define TB_DURATION_MAX_S  7200 /* 2 h: intended times must fit the delivery opaque */
#define TB_SWEEP_STEPS_MAX 32
#define TB_REPLICAS_MAX    5 /* --replication-factor: brokers started on loopback */

/* ---- histogram (hist.c) ----
 * Log-bucketed like HdrHistogram: values below 128 are exact; above, each power of two
 * has 64 buckets, so a bucket is at most 1/64 (1.6 %) wide relative to its values.
 * Values are clamped to TB_HIST_VALUE_MAX (about 73 min in ns); max is kept exactly.
 * A histogram has one writer; tb_hist_snapshot() may read it from another thread at
 * any time (counts are stored and loaded with relaxed atomics). */
#define TB_HIST_SUB_BITS  6
#define TB_HIST_SUB       (1 << TB_HIST_SUB_BITS)
#define TB_HIST_MAX_BITS  42
#define TB_HIST_VALUE_MAX ((1ULL << TB_HIST_MAX_BITS) - 1)
#define TB_HIST_BUCKETS   ((TB_HIST_MAX_BITS - TB_HIST_SUB_BITS + 1) * TB_HIST_SUB)

struct tb_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	uint64_t buckets[TB_HIST_BUCKETS];
};

void tb_hist_reset(struct tb_hist *h);
void tb_hist_add(struct tb_hist *h, uint64_t value);
void tb_hist_merge(struct tb_hist *into, const struct tb_hist *from);
/* Copies @from (possibly being written by another thread) into @out. */
void tb_hist_snapshot(struct tb_hist *out, const struct tb_hist *from);
/* @out = @now - @before, where @before is an earlier snapshot of the same histogram;
 * min and max of the difference are bucket bounds. */
void tb_hist_diff(struct tb_hist *out, const struct tb_hist *now, const struct tb_hist *before);
/* The value at percentile @p (0..100): the highest value of the bucket holding that
 * rank, clamped to [min, max]. 0 for an empty histogram. */
uint64_t tb_hist_percentile(const struct tb_hist *h, double p);
double tb_hist_mean(const struct tb_hist *h);

/* The summary kept in results: percentiles and a percentile curve for the charts. */
#define TB_CURVE_POINTS_MAX 64
struct tb_latency {
	uint64_t count;
	double mean_ns;
	uint64_t min_ns;
	uint64_t p50_ns;
	uint64_t p90_ns;
	uint64_t p99_ns;
	uint64_t p999_ns;
	uint64_t p9999_ns;
	uint64_t max_ns;
	int curve_count;
	double curve_p[TB_CURVE_POINTS_MAX];    /* percentile, 0..100 */
	uint64_t curve_ns[TB_CURVE_POINTS_MAX]; /* value at that percentile */
};
void tb_latency_from_hist(struct tb_latency *out, const struct tb_hist *h);

/* ---- options (opts.c) ---- */
enum tb_mode { TB_MODE_PRODUCE, TB_MODE_CONSUME, TB_MODE_E2E, TB_MODE_SWEEP };
enum tb_system { TB_SYSTEM_TALLY, TB_SYSTEM_REDIS, TB_SYSTEM_NATS };
enum tb_size_kind { TB_SIZE_FIXED, TB_SIZE_UNIFORM, TB_SIZE_NORMAL, TB_SIZE_EXP };
enum tb_payload { TB_PAYLOAD_TEXT, TB_PAYLOAD_RANDOM, TB_PAYLOAD_ZEROS, TB_PAYLOAD_JSON };
const char *tb_payload_name(enum tb_payload payload);

struct tb_size_dist {
	enum tb_size_kind kind;
	uint32_t a; /* fixed size, uniform min, normal/exp mean */
	uint32_t b; /* uniform max, normal standard deviation */
	char text[64];
};

struct tb_opts {
	enum tb_mode mode;
	enum tb_system system;
	const char *label;
	/* broker */
	const char *bootstrap; /* NULL: spawn tallyd */
	int broker_pid;        /* 0: found from the listening port */
	const char *tallyd;    /* path; default: next to tally-bench, else build/bin */
	const char *data_dir;  /* spawned broker's log.dirs parent, and the disk baseline */
	bool keep_data;
	const char *broker_args[TB_PROPS_MAX]; /* tallyd --override key=value */
	int broker_arg_count;
	int replication_factor;  /* > 1: etcd and that many tallyds (cluster.c) */
	int min_insync_replicas; /* the topic's min.insync.replicas */
	const char *etcd;        /* path; default: etcd on PATH */
	/* workload */
	const char *topic;
	int partitions;
	struct tb_size_dist size;
	enum tb_payload payload;
	uint32_t keys; /* distinct keys, 0 = no key */
	int producers;
	int consumers;
	bool processes;   /* each producer and consumer in its own process, not a thread */
	const char *acks; /* all, 1, 0 */
	int idempotence;  /* -1 library default, 0 off, 1 on */
	bool transactions;
	int64_t txn_interval_ms;
	const char *compression;
	double rate;         /* records/s over all producers; 0 = as fast as possible */
	int64_t duration_ns; /* 0 = until count */
	uint64_t count;      /* records to produce; 0 = until duration */
	int64_t warmup_ns;
	bool warmup_set;
	uint64_t fill_bytes;                      /* consume: bytes to produce before reading */
	int64_t interval_ns;                      /* sampling period of the time series */
	uint32_t window;                          /* peers: records in flight per connection */
	const char *producer_props[TB_PROPS_MAX]; /* -X key=value */
	int producer_prop_count;
	const char *consumer_props[TB_PROPS_MAX]; /* -C key=value */
	int consumer_prop_count;
	/* sweep */
	int sweep_steps;
	double sweep_max_rate; /* 0: measured first with a max-rate run */
	double sweep_over;     /* last step at this fraction of the peak (> 1 saturates) */
	double slo_p99_ms;     /* knee: p99 must stay under this; 0 = see sweep_knee() */
	/* baselines */
	bool baseline;
	const char *baseline_engine; /* auto, fio, builtin */
	uint64_t fsync_bytes;        /* disk baseline block; 0 = the broker's bytes_per_flush */
	double baseline_s;           /* 0: disk as long as the workload, loopback NET_BASELINE_S */
	int baseline_syncs;          /* group commit baseline: fdatasyncs in flight per file */
	bool baseline_overwrite;     /* group commit baseline into zero-filled files */
	int baseline_copies;         /* disk baseline: writers per partition; default RF */
	/* output */
	const char *json_path;
	const char *html_path;
	bool quiet;
	bool progress; /* per-interval lines on stdout */
	/* argv, for the report */
	char command_line[1024];
};

/* Parses argv after the mode word. Returns 0, or 2 after printing why on stderr. */
int tb_opts_parse(struct tb_opts *o, enum tb_mode mode, int argc, char **argv);
void tb_usage(FILE *out);
const char *tb_mode_name(enum tb_mode mode);
const char *tb_system_name(enum tb_system system);
/* "10s", "250ms", "2m", "1.5" (seconds) -> ns; -1 if bad. */
int64_t tb_parse_duration(const char *text);
/* "1000", "10k", "2.5m" (k = 10^3, m = 10^6, g = 10^9) -> a count or rate; -1 if bad. */
double tb_parse_count(const char *text);
/* "1024", "4k", "4KiB", "1MB", "2g" -> bytes (k/KiB = 1024); UINT64_MAX if bad. */
uint64_t tb_parse_size(const char *text);

/* ---- time series and results ---- */
struct tb_sample {
	double t_s;  /* end of the interval, seconds since the phase started */
	double dt_s; /* length of the interval */
	bool warmup;
	uint64_t produced_records;
	uint64_t produced_bytes;
	uint64_t consumed_records;
	uint64_t consumed_bytes;
	uint64_t produce_p50_ns;
	uint64_t produce_p99_ns;
	uint64_t produce_max_ns;
	uint64_t e2e_p99_ns;
};

struct tb_flow { /* one direction (produce or consume) of a phase */
	bool present;
	uint64_t records; /* in the measurement window */
	uint64_t bytes;
	double window_s;
	double records_per_s;
	double mb_per_s;
	uint64_t total_records; /* warm-up included */
	uint64_t total_bytes;
	uint64_t errors;
	char first_error[256];
};

struct tb_resources {
	int broker_pid; /* 0: unknown, figures below are absent */
	double wall_s;
	double broker_cpu_s;
	double client_cpu_s;
	uint64_t broker_write_bytes;
	uint64_t broker_read_bytes;
	double other_cpu_s; /* CPU time of every other process meanwhile (a busy machine) */
	uint64_t bytes;     /* payload bytes the figures are divided by */
	double broker_cpu_s_per_gb;
	double client_cpu_s_per_gb;
	double write_amplification; /* broker write_bytes / payload bytes */
};

struct tb_disk_baseline {
	bool present;
	bool ok;
	char engine[16]; /* fio or builtin */
	bool direct;     /* O_DIRECT writes into fallocated files, as tallyd's direct log */
	char dir[512];
	uint64_t block_bytes;  /* bytes written per fdatasync */
	char block_source[48]; /* where block_bytes came from */
	int jobs;              /* writers in all: partitions (up to 16) x copies */
	int copies;            /* writers per partition, as the replicas of one partition are */
	uint64_t bytes;
	double seconds;
	double mb_per_s;             /* of one copy: total_mb_per_s / copies */
	double total_mb_per_s;       /* every writer's bytes */
	struct tb_latency fdatasync; /* counts/curve may be partial with fio */
	char error[256];
};

/* The disk's sequential read limit, for consume: a file written with O_DIRECT (so in no
 * cache, as a direct log's older segments are) read back with O_DIRECT reads of
 * block_bytes (tallyd's cold-read chunk), one after another. What a consumer of data no
 * longer in memory can get at most, whatever the broker does. */
struct tb_disk_read_baseline {
	bool present;
	bool ok;
	char dir[512];
	uint64_t block_bytes;
	uint64_t bytes; /* read */
	double seconds;
	double mb_per_s;
	char error[256];
};

/* An ideal broker on this disk: records arrive open loop at the workload's rate and size,
 * are written as they arrive, and are acknowledged when the fdatasync that covers them
 * (and every earlier one) returns, with one fdatasync in flight per file by default (the
 * broker's group commit), and no network, protocol or client. Its latency is the floor
 * of group commit over append + fdatasync at that rate. */
#define TB_COMMIT_SYNCS_MAX 4
struct tb_commit_baseline {
	bool present;
	bool ok;
	double rate; /* records/s over all jobs */
	uint64_t record_bytes;
	int jobs;
	int syncs_in_flight; /* per file */
	bool overwrite;      /* into zero-filled files, not appending */
	uint64_t prefill_bytes;
	double seconds;
	uint64_t records; /* acknowledged after the warm-up */
	uint64_t syncs;
	uint64_t bytes;              /* written, warm-up included */
	struct tb_latency latency;   /* fdatasync returned - intended arrival */
	struct tb_latency fdatasync; /* each fdatasync */
	char error[256];
};

struct tb_net_baseline {
	bool present;
	bool ok;
	int streams;
	size_t chunk_bytes;
	uint64_t bytes;
	double seconds;
	double mb_per_s;
	char error[256];
};

/* What a tallyd that tally-bench started logs at close. With several partitions the
 * percentiles are the worst partition's. */
struct tb_broker_stats {
	uint64_t flushes; /* fdatasync rounds of the topic's partitions */
	uint64_t bytes_per_flush;
	uint64_t flush_us[4]; /* fdatasync round: p50, p99, p99.9, max */
	uint64_t write_us[3]; /* write round: p50, p99, max */
	uint64_t produce_requests;
	uint64_t produce_us[4]; /* Produce request time in the broker: p50, p99, p99.9, max */
};

struct tb_phase_result {
	double target_rate; /* records/s, 0 = max */
	struct tb_flow produce;
	struct tb_flow consume;
	struct tb_latency produce_latency; /* ack - intended send time */
	struct tb_latency e2e_latency;     /* receive - intended send time */
	bool has_e2e;
	struct tb_resources res;
	struct tb_broker_stats broker; /* from tallyd's log at close; zeros unknown; with
					* replicas, the broker that answered the Produce
					* requests (the leader) */
	int replica_count;             /* brokers of a --replication-factor > 1 run, else 0 */
	struct tb_broker_stats replicas[TB_REPLICAS_MAX]; /* by node id - 1 */
	int leader_node;                  /* node id of partition 0's leader at the start */
	uint64_t replica_bytes_per_flush; /* all replicas' bytes / all their fdatasyncs */
	struct tb_sample *samples;
	int sample_count;
	int sample_cap;
	int64_t warmup_ns;
};

struct tb_env {
	int nproc;
	char kernel[128];
	char cpu[128];
	char disk[256];
	char host[64];
	uint64_t mem_bytes;
	char time_utc[32];
};

struct tb_report {
	const struct tb_opts *o;
	struct tb_env env;
	struct tb_phase_result main; /* produce, consume (with fill) or e2e */
	struct tb_phase_result fill; /* consume mode: the produce phase before it */
	bool has_fill;
	/* sweep */
	struct tb_phase_result steps[TB_SWEEP_STEPS_MAX];
	int step_count;
	double sweep_peak_rate;
	int knee_step; /* -1 none */
	/* baselines */
	struct tb_disk_baseline disk;
	struct tb_disk_baseline disk_direct; /* the same writers with O_DIRECT */
	struct tb_commit_baseline commit;    /* open-loop phases only */
	struct tb_net_baseline net;
	struct tb_disk_read_baseline disk_read; /* consume mode only */
	/* ratios, 0 when not computable */
	double ratio_produce_vs_disk;
	double ratio_produce_vs_disk_direct;
	double ratio_consume_vs_loopback;
	double ratio_consume_vs_disk_read;
	double ratio_consume_vs_limit; /* against the lower of loopback and disk read */
	double ratio_p99_vs_fdatasync_p99;
	double ratio_p99_vs_commit_p99;
	bool ok;
	char error[256];
};

void tb_phase_free(struct tb_phase_result *r);
void tb_env_collect(struct tb_env *env, const char *dir);

/* ---- workload (workload.c) ---- */
struct tb_target {
	const char *bootstrap;
	const char *topic;
	int broker_pid;
};
enum tb_phase_kind { TB_PHASE_PRODUCE, TB_PHASE_CONSUME, TB_PHASE_E2E };
/* Runs one phase against @t with options @o and writes @r. @rate overrides o->rate,
 * @count and @duration_ns override the phase length (consume: @count records to read).
 * Returns 0, or -1 with the reason in r->produce/consume.first_error. */
int tb_run_phase(const struct tb_opts *o, const struct tb_target *t, enum tb_phase_kind kind,
		 double rate, uint64_t count, int64_t duration_ns, int64_t warmup_ns,
		 struct tb_phase_result *r);
/* Creates @topic with o->partitions (tally: tl_admin; NATS: the stream). */
int tb_prepare_topic(const struct tb_opts *o, const struct tb_target *t, char *err,
		     size_t err_size);

/* ---- drivers (driver_tally.c, driver_peer.c) ----
 * A producer driver sends records and reports each acknowledgement through
 * tb_ack_fn, on the thread that calls send/poll/flush. */
typedef void (*tb_ack_fn)(void *ctx, int64_t intended_ns, uint32_t bytes, bool ok,
			  const char *error);

struct tb_producer_driver;
struct tb_consumer_driver;

struct tb_send {
	int32_t partition; /* -1: the driver picks (libtally: murmur2 of key, or sticky) */
	const void *key;
	uint32_t key_len;
	const void *value;
	uint32_t value_len;
	int64_t intended_ns;
};

struct tb_driver_ops {
	int (*producer_open)(const struct tb_opts *o, const struct tb_target *t, int index,
			     tb_ack_fn ack, void *ctx, struct tb_producer_driver **out, char *err,
			     size_t err_size);
	/* 0 sent; -1 failed (err filled). May block while the window is full. The key
	 * and value are the caller's again once it returns (a driver copies them). */
	int (*send)(struct tb_producer_driver *d, const struct tb_send *s, char *err,
		    size_t err_size);
	/* Runs acknowledgements that arrived, waiting up to @timeout_ms for one. */
	void (*poll)(struct tb_producer_driver *d, int timeout_ms);
	/* Waits for every record sent; 0, or -1 on timeout or error. */
	int (*flush)(struct tb_producer_driver *d, int timeout_ms, char *err, size_t err_size);
	/* Transactions (o->transactions): commits the open transaction, every
	 * txn_interval_ms and once at the end, and opens the next when @begin_next. */
	int (*txn_commit)(struct tb_producer_driver *d, bool begin_next, char *err,
			  size_t err_size);
	void (*producer_close)(struct tb_producer_driver *d);
	int (*consumer_open)(const struct tb_opts *o, const struct tb_target *t, int index,
			     struct tb_consumer_driver **out, char *err, size_t err_size);
	/* 1: a record in @value, @value_len, @key_len (valid until the next call); 0: none
	 * within @timeout_ms;
	 * -1: an error. */
	int (*consume)(struct tb_consumer_driver *d, int timeout_ms, const void **value,
		       uint32_t *value_len, uint32_t *key_len, char *err, size_t err_size);
	void (*consumer_close)(struct tb_consumer_driver *d);
	int (*prepare)(const struct tb_opts *o, const struct tb_target *t, char *err,
		       size_t err_size);
};

extern const struct tb_driver_ops tb_driver_tally;
extern const struct tb_driver_ops tb_driver_redis;
extern const struct tb_driver_ops tb_driver_nats;
const struct tb_driver_ops *tb_driver_for(enum tb_system system);

/* ---- the broker and /proc (broker.c) ---- */
struct tb_broker {
	bool spawned;
	int pid;
	char workdir[512]; /* holds data/ and tallyd.log */
	char data[600];
	char log_path[600];
	char bootstrap[64];
	bool workdir_made;    /* we created it, so we remove it */
	char stop_detail[64]; /* how it ended: "exit status 0", "killed by SIGSEGV" */
};
/* Starts tallyd with its data in a fresh directory under o->data_dir (or /var/tmp) and
 * waits until it listens. 0, or -1 with @err. */
int tb_broker_spawn(const struct tb_opts *o, struct tb_broker *b, char *err, size_t err_size);
/* Starts tallyd on 127.0.0.1:0 with b->data as log.dirs and its output in b->log_path
 * (both set by the caller), the overrides @extra, then o->broker_args, and waits until
 * it listens (b->bootstrap). 0, or -1 with @err. */
#define TB_BROKER_EXTRA_MAX 8
int tb_broker_start(const struct tb_opts *o, struct tb_broker *b, const char *const *extra,
		    int extra_count, char *err, size_t err_size);
/* Forks @path with @argv (execvp) in a process group of its own, stdout and stderr
 * appended to @log_path, killed by the kernel should tally-bench die first. The pid, or
 * -1 with @err. */
int tb_spawn_logged(const char *path, char **argv, const char *log_path, char *err,
		    size_t err_size);
/* The flush and Produce statistics of @topic's partitions in a tallyd log. */
void tb_broker_stats_read(const char *log_path, const char *topic, struct tb_broker_stats *st);
void tb_remove_tree(const char *path);
/* SIGTERM, wait, and read the flush and request statistics of @topic's partitions from
 * the log. */
int tb_broker_stop(struct tb_broker *b, const char *topic, struct tb_broker_stats *stats);
void tb_broker_cleanup(struct tb_broker *b, bool keep);
/* The pid of the process listening on TCP @port of this host, 0 if not found. */
int tb_pid_listening_on(int port);
int tb_port_of(const char *bootstrap);

/* ---- a replicated cluster on loopback (cluster.c) ----
 * etcd (free ports, data in the work directory) and o->replication_factor tallyds with
 * node.id 1..N, each on 127.0.0.1:0 with log.dirs WORKDIR/bI/data and its log in
 * WORKDIR/bI/tallyd.log, registered in etcd. */
struct tb_cluster {
	bool spawned;
	int count;
	struct tb_broker node[TB_REPLICAS_MAX]; /* node.id i + 1 */
	int etcd_pid;
	char etcd_url[64];
	char etcd_log[600];
	char workdir[512];
	bool workdir_made;
	char bootstrap[TB_REPLICAS_MAX * 24];
};
/* 0, or -1 with @err; on failure whatever started is still in @c for tb_cluster_cleanup. */
int tb_cluster_spawn(const struct tb_opts *o, struct tb_cluster *c, char *err, size_t err_size);
/* Until every partition of @topic has a leader and @rf replicas in its ISR (or
 * @timeout_ms passed): 0 and the leader of partition 0 in @leader_out, or -1 with @err. */
int tb_wait_isr(const char *bootstrap, const char *topic, int partitions, int rf, int timeout_ms,
		int *leader_out, char *err, size_t err_size);
/* SIGTERM to every broker at once, wait, then etcd; each broker's statistics of @topic
 * into @stats (by node id - 1). 0 when every broker exited 0. */
int tb_cluster_stop(struct tb_cluster *c, const char *topic,
		    struct tb_broker_stats stats[TB_REPLICAS_MAX]);
/* SIGKILLs whatever still runs and removes the work directory unless @keep. */
void tb_cluster_cleanup(struct tb_cluster *c, bool keep);

struct tb_proc_sample {
	double machine_busy_s; /* all CPUs, /proc/stat: non-idle time of every process */
	bool ok;
	double cpu_s;
	uint64_t write_bytes;
	uint64_t read_bytes;
};
void tb_proc_sample(int pid, struct tb_proc_sample *out);
double tb_self_cpu_s(void);

/* ---- baselines (baseline.c) ---- */
/* @jobs x @copies sequential writers at once, @bytes of one copy spread over @jobs;
 * out->mb_per_s is the bandwidth of one copy (all writers' bytes / @copies / seconds). */
void tb_disk_baseline_run(const char *dir, uint64_t block_bytes, int jobs, int copies,
			  uint64_t bytes, double max_s, const char *engine, bool direct,
			  struct tb_disk_baseline *out);
/* Group commit of @rate records/s of @record_bytes spread over @jobs files for @seconds,
 * with up to @syncs_in_flight fdatasyncs per file, appending or (@overwrite) rewriting
 * files zero-filled beforehand; latencies of records meant to arrive in the first
 * @warmup_s are left out. */
void tb_commit_baseline_run(const char *dir, double rate, uint64_t record_bytes, int jobs,
			    int syncs_in_flight, bool overwrite, double seconds, double warmup_s,
			    struct tb_commit_baseline *out);
void tb_net_baseline_run(int streams, double seconds, struct tb_net_baseline *out);
/* Writes @bytes (whole @block_bytes) to a file in @dir with O_DIRECT, then times reading
 * it back with O_DIRECT, for at most @max_s; the file is removed. */
void tb_disk_read_baseline_run(const char *dir, uint64_t bytes, uint64_t block_bytes, double max_s,
			       struct tb_disk_read_baseline *out);

/* ---- reports (report.c) ---- */
void tb_report_print(FILE *out, const struct tb_report *rep);
int tb_report_write_json(const char *path, const struct tb_report *rep);
int tb_report_write_html(const char *path, const struct tb_report *rep);
void tb_print_sample(FILE *out, const struct tb_sample *s, enum tb_phase_kind kind);

/* ---- JSON (json.c) ---- */
struct tb_jw {
	FILE *f;
	int depth;
	bool first[32];
};
void tb_jw_begin(struct tb_jw *w, FILE *f);
void tb_jw_end(struct tb_jw *w);
void tb_jw_obj(struct tb_jw *w, const char *key);
void tb_jw_obj_end(struct tb_jw *w);
void tb_jw_arr(struct tb_jw *w, const char *key);
void tb_jw_arr_end(struct tb_jw *w);
void tb_jw_str(struct tb_jw *w, const char *key, const char *value);
void tb_jw_num(struct tb_jw *w, const char *key, double value);
void tb_jw_u64(struct tb_jw *w, const char *key, uint64_t value);
void tb_jw_bool(struct tb_jw *w, const char *key, bool value);
void tb_jw_null(struct tb_jw *w, const char *key);

enum tb_json_type {
	TB_JSON_NULL,
	TB_JSON_BOOL,
	TB_JSON_NUMBER,
	TB_JSON_STRING,
	TB_JSON_ARRAY,
	TB_JSON_OBJECT
};
struct tb_json {
	enum tb_json_type type;
	bool boolean;
	double number;
	char *string;
	size_t count; /* array items or object members */
	struct tb_json **items;
	char **keys; /* object member names */
};
/* Parses @text (NUL-terminated). NULL with @err on a syntax error. */
struct tb_json *tb_json_parse(const char *text, char *err, size_t err_size);
void tb_json_free(struct tb_json *j);
/* Member lookup by a dotted path ("produce.latency_ms.p99"); NULL if absent. */
const struct tb_json *tb_json_path(const struct tb_json *j, const char *path);
/* The number at @path, or NAN. */
double tb_json_num_at(const struct tb_json *j, const char *path);
const char *tb_json_str_at(const struct tb_json *j, const char *path);
char *tb_read_file(const char *path, size_t limit_bytes, char *err, size_t err_size);

/* ---- compare (compare.c) ---- */
int tb_compare_main(int argc, char **argv);

/* ---- small helpers ---- */
extern volatile sig_atomic_t tb_stop_requested; /* SIGINT/SIGTERM: finish the phase early */
static inline int64_t tb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * TB_NS_PER_S + ts.tv_nsec;
}
void tb_sleep_until(int64_t deadline_ns);
/* Copies @src into @dst (@size bytes), cut if needed; always NUL-terminated. */
static inline void tb_strlcpy(char *dst, size_t size, const char *src)
{
	if (size == 0)
		return;
	size_t len = strlen(src);
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}
/* Thousands separators: 1234567 -> "1,234,567". Returns @buf. */
const char *tb_fmt_count(char *buf, size_t size, double value);
/* Human sizes: "1 KiB", "1.5 MiB". Returns @buf. */
const char *tb_fmt_bytes(char *buf, size_t size, double bytes);

#endif
