/* cluster.c - the brokers of a --replication-factor N run: etcd and N tallyds on
 * loopback, as tests/cluster.sh starts them, owned by tally-bench.
 *
 * Start: a work directory under --data-dir (or /var/tmp); etcd (Debian's etcd-server)
 * on two free loopback ports (picked by binding port 0, so another process may take
 * one before etcd does: then etcd exits and it is started again on new ports), its
 * data in WORKDIR/etcd, waited for until GET /health answers "true"; then the N
 * tallyds at once, node.id 1..N, each on 127.0.0.1:0 (tallyd registers the port it
 * bound), waited for until each logs "listening on" and "cluster: registered".
 * Stop: SIGTERM to every broker at once (each moves the leadership it holds away and
 * closes its logs), wait for all, then SIGTERM to etcd. Every child is in a process
 * group of its own (^C reaches only tally-bench, which stops them) and has
 * PR_SET_PDEATHSIG (SIGKILL) set, so that a tally-bench killed outright leaves nothing
 * running. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tally/admin.h"
#include "tb.h"

#define ETCD_START_TIMEOUT_NS (20 * TB_NS_PER_S)
#define ETCD_START_TRIES      3
#define REGISTER_TIMEOUT_NS   (20 * TB_NS_PER_S)
#define STOP_TIMEOUT_NS       (60 * TB_NS_PER_S)
#define ISR_POLL_NS           (100 * TB_NS_PER_MS)
#define ADMIN_TIMEOUT_MS      5000
#define LOG_BYTES_MAX         (64u << 20)

/* A loopback port free at the moment of asking; 0 if none. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 0;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(addr);
	int port = 0;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
		port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

/* GET /health on etcd's client port: true when it answers "health":"true". */
static bool etcd_healthy(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return false;
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = false;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		static const char req[] =
			"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
		char resp[2048];
		size_t have = 0;
		if (write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
			ssize_t n;
			while (have < sizeof(resp) - 1 &&
			       (n = read(fd, resp + have, sizeof(resp) - 1 - have)) > 0)
				have += (size_t)n;
		}
		resp[have] = '\0';
		ok = strstr(resp, "\"health\":\"true\"") != NULL;
	}
	close(fd);
	return ok;
}

/* Appends the last non-empty line of @path to @err: the directory holding the log is
 * removed when the start fails, so the reason must travel in the message. */
static void append_last_line(char *err, size_t err_size, const char *path)
{
	char why[128];
	char *log = tb_read_file(path, LOG_BYTES_MAX, why, sizeof(why));
	if (!log)
		return;
	size_t len = strlen(log);
	while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == '\r'))
		log[--len] = '\0';
	char *line = strrchr(log, '\n');
	line = line ? line + 1 : log;
	size_t at = strlen(err);
	if (*line && at < err_size)
		snprintf(err + at, err_size - at, ": %.300s", line);
	free(log);
}

/* Is @name an executable file, or one on PATH? */
static bool command_exists(const char *name)
{
	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	const char *path = getenv("PATH");
	char dirs[4096];
	tb_strlcpy(dirs, sizeof(dirs), path ? path : "/usr/bin:/bin");
	for (char *d = strtok(dirs, ":"); d; d = strtok(NULL, ":")) {
		char full[4200];
		snprintf(full, sizeof(full), "%s/%s", d, name);
		if (access(full, X_OK) == 0)
			return true;
	}
	return false;
}

static bool child_exited(int *pid)
{
	int status;
	if (*pid > 0 && waitpid(*pid, &status, WNOHANG) == *pid) {
		*pid = 0;
		return true;
	}
	return false;
}

/* 0 when etcd answers; 1 when it exited at start (a port taken: try again); -1 else. */
static int etcd_start_once(const struct tb_opts *o, struct tb_cluster *c, char *err,
			   size_t err_size)
{
	int cport = free_port(), pport = free_port();
	if (!cport || !pport || cport == pport) {
		snprintf(err, err_size, "no free loopback port for etcd");
		return 1;
	}
	char data[600], client[64], peer[64], cluster[96];
	snprintf(data, sizeof(data), "%s/etcd", c->workdir);
	snprintf(c->etcd_url, sizeof(c->etcd_url), "http://127.0.0.1:%d", cport);
	snprintf(client, sizeof(client), "%s", c->etcd_url);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof(cluster), "tally-bench=%s", peer);
	char *argv[] = {(char *)(uintptr_t)(o->etcd ? o->etcd : "etcd"),
			"--name",
			"tally-bench",
			"--data-dir",
			data,
			"--listen-client-urls",
			client,
			"--advertise-client-urls",
			client,
			"--listen-peer-urls",
			peer,
			"--initial-advertise-peer-urls",
			peer,
			"--initial-cluster",
			cluster,
			NULL};
	tb_remove_tree(data);
	int pid = tb_spawn_logged(argv[0], argv, c->etcd_log, err, err_size);
	if (pid == -1)
		return -1;
	c->etcd_pid = pid;
	int64_t deadline = tb_now_ns() + ETCD_START_TIMEOUT_NS;
	while (!etcd_healthy(cport)) {
		if (child_exited(&c->etcd_pid)) {
			snprintf(err, err_size, "etcd exited at start");
			append_last_line(err, err_size, c->etcd_log);
			return 1;
		}
		if (tb_stop_requested) {
			snprintf(err, err_size, "interrupted");
			return -1;
		}
		if (tb_now_ns() > deadline) {
			snprintf(err, err_size, "etcd did not answer /health within %llds",
				 (long long)(ETCD_START_TIMEOUT_NS / TB_NS_PER_S));
			append_last_line(err, err_size, c->etcd_log);
			return -1;
		}
		usleep(50000);
	}
	return 0;
}

/* Waits until broker @i's log says it registered in etcd. */
static int wait_registered(struct tb_cluster *c, int i, char *err, size_t err_size)
{
	struct tb_broker *b = &c->node[i];
	int64_t deadline = tb_now_ns() + REGISTER_TIMEOUT_NS;
	for (;;) {
		char why[128];
		char *log = tb_read_file(b->log_path, LOG_BYTES_MAX, why, sizeof(why));
		bool done = log && strstr(log, "cluster: registered") != NULL;
		free(log);
		if (done)
			return 0;
		if (child_exited(&b->pid)) {
			b->spawned = false;
			snprintf(err, err_size, "broker %d exited during start-up", i + 1);
			append_last_line(err, err_size, b->log_path);
			return -1;
		}
		if (tb_stop_requested) {
			snprintf(err, err_size, "interrupted");
			return -1;
		}
		if (tb_now_ns() > deadline) {
			snprintf(err, err_size, "broker %d did not register in etcd within %llds",
				 i + 1, (long long)(REGISTER_TIMEOUT_NS / TB_NS_PER_S));
			append_last_line(err, err_size, b->log_path);
			return -1;
		}
		usleep(20000);
	}
}

static int cluster_start_broker(const struct tb_opts *o, struct tb_cluster *c, int i, char *err,
				size_t err_size)
{
	struct tb_broker *b = &c->node[i];
	int len = snprintf(b->workdir, sizeof(b->workdir), "%.480s/b%d", c->workdir, i + 1);
	if (len < 0 || (size_t)len >= sizeof(b->workdir)) {
		snprintf(err, err_size, "%s: path too long", c->workdir);
		return -1;
	}
	if (mkdir(b->workdir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, err_size, "mkdir %s: %s", b->workdir, strerror(errno));
		return -1;
	}
	/* Through a copy: at -O1 (make asan) GCC's -Wrestrict takes b->workdir and b->data,
	 * both inside *c, for overlapping objects. */
	char workdir[sizeof(b->workdir)];
	memcpy(workdir, b->workdir, (size_t)len + 1);
	snprintf(b->data, sizeof(b->data), "%s/data", workdir);
	snprintf(b->log_path, sizeof(b->log_path), "%s/tallyd.log", workdir);
	char a_node[32], a_etcd[100], a_rf[48], a_isr[48];
	snprintf(a_node, sizeof(a_node), "node.id=%d", i + 1);
	snprintf(a_etcd, sizeof(a_etcd), "metadata.etcd.endpoints=%s", c->etcd_url);
	snprintf(a_rf, sizeof(a_rf), "default.replication.factor=%d", o->replication_factor);
	snprintf(a_isr, sizeof(a_isr), "min.insync.replicas=%d", o->min_insync_replicas);
	const char *extra[] = {a_node, a_etcd, a_rf, a_isr};
	return tb_broker_start(o, b, extra, 4, err, err_size);
}

int tb_cluster_spawn(const struct tb_opts *o, struct tb_cluster *c, char *err, size_t err_size)
{
	memset(c, 0, sizeof(*c));
	const char *etcd = o->etcd ? o->etcd : "etcd";
	if (!command_exists(etcd)) {
		snprintf(err, err_size,
			 "%s: not found (--replication-factor starts etcd: apt-get install"
			 " etcd-server, or --etcd PATH)",
			 etcd);
		return -1;
	}
	const char *parent = o->data_dir ? o->data_dir : "/var/tmp";
	if (o->data_dir)
		(void)mkdir(parent, 0755);
	snprintf(c->workdir, sizeof(c->workdir), "%s/tally-bench-rf.XXXXXX", parent);
	if (!mkdtemp(c->workdir)) {
		snprintf(err, err_size, "mkdtemp %s: %s", c->workdir, strerror(errno));
		return -1;
	}
	c->workdir_made = true;
	c->spawned = true;
	snprintf(c->etcd_log, sizeof(c->etcd_log), "%s/etcd.log", c->workdir);
	int rc = 1;
	for (int try = 0; try < ETCD_START_TRIES && rc == 1; try++)
		rc = etcd_start_once(o, c, err, err_size);
	if (rc != 0)
		return -1;
	c->count = o->replication_factor;
	for (int i = 0; i < c->count; i++)
		if (cluster_start_broker(o, c, i, err, err_size) != 0) {
			append_last_line(err, err_size, c->node[i].log_path);
			return -1;
		}
	char bootstrap[sizeof(c->bootstrap)] = "";
	size_t at = 0;
	for (int i = 0; i < c->count; i++) {
		if (wait_registered(c, i, err, err_size) != 0)
			return -1;
		const char *node = c->node[i].bootstrap;
		size_t len = strlen(node);
		if (at + len + 2 > sizeof(bootstrap))
			break;
		if (i)
			bootstrap[at++] = ',';
		memcpy(bootstrap + at, node, len + 1);
		at += len;
	}
	memcpy(c->bootstrap, bootstrap, sizeof(bootstrap));
	return 0;
}

int tb_wait_isr(const char *bootstrap, const char *topic, int partitions, int rf, int timeout_ms,
		int *leader_out, char *err, size_t err_size)
{
	char why[512];
	struct tl_admin_conf *conf = tl_admin_conf_create();
	struct tl_admin *admin = NULL;
	if (!conf || tl_admin_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof(why)) ||
	    tl_admin_create(conf, &admin, why, sizeof(why)) != TL_OK) {
		snprintf(err, err_size, "admin client: %s", conf ? why : "out of memory");
		if (conf)
			tl_admin_conf_destroy(conf);
		return -1;
	}
	tl_admin_conf_destroy(conf);
	int64_t deadline = tb_now_ns() + (int64_t)timeout_ms * TB_NS_PER_MS;
	int rc = -1;
	snprintf(err, err_size,
		 "topic %s: not every partition had a leader and %d replicas in"
		 " its ISR after %d ms",
		 topic, rf, timeout_ms);
	while (rc != 0 && tb_now_ns() < deadline && !tb_stop_requested) {
		struct tl_admin_topics *topics = NULL;
		const char *names[] = {topic};
		tl_err e = tl_admin_describe_topics(admin, names, 1, &topics, ADMIN_TIMEOUT_MS);
		if (e == TL_OK && topics->count == 1 && topics->topics[0].err == TL_OK &&
		    topics->topics[0].partition_count == partitions) {
			const struct tl_admin_topic_info *info = &topics->topics[0];
			int ready = 0;
			for (int i = 0; i < info->partition_count; i++)
				if (info->partitions[i].err == TL_OK &&
				    info->partitions[i].leader >= 0 &&
				    info->partitions[i].isr_count == rf)
					ready++;
			if (ready == partitions) {
				*leader_out = info->partitions[0].leader;
				rc = 0;
			}
		}
		if (topics)
			tl_admin_topics_destroy(topics);
		if (rc != 0)
			tb_sleep_until(tb_now_ns() + ISR_POLL_NS);
	}
	tl_admin_destroy(admin);
	return rc;
}

int tb_cluster_stop(struct tb_cluster *c, const char *topic,
		    struct tb_broker_stats stats[TB_REPLICAS_MAX])
{
	memset(stats, 0, sizeof(stats[0]) * TB_REPLICAS_MAX);
	int rc = 0;
	for (int i = 0; i < c->count; i++)
		if (c->node[i].spawned && c->node[i].pid > 0)
			kill(c->node[i].pid, SIGTERM);
	for (int i = 0; i < c->count; i++) {
		if (!c->node[i].spawned) {
			rc = -1;
			continue;
		}
		if (tb_broker_stop(&c->node[i], topic, &stats[i]) != 0) {
			fprintf(stderr,
				"tally-bench: broker %d did not stop cleanly: %s (log: %s)\n",
				i + 1, c->node[i].stop_detail, c->node[i].log_path);
			rc = -1;
		}
	}
	if (c->etcd_pid > 0) {
		kill(c->etcd_pid, SIGTERM);
		int64_t deadline = tb_now_ns() + STOP_TIMEOUT_NS;
		while (!child_exited(&c->etcd_pid) && tb_now_ns() < deadline)
			usleep(10000);
		if (c->etcd_pid > 0) {
			kill(c->etcd_pid, SIGKILL);
			waitpid(c->etcd_pid, NULL, 0);
			c->etcd_pid = 0;
		}
	}
	return rc;
}

void tb_cluster_cleanup(struct tb_cluster *c, bool keep)
{
	for (int i = 0; i < TB_REPLICAS_MAX; i++)
		tb_broker_cleanup(&c->node[i], true); /* its directory is under ours */
	if (c->etcd_pid > 0) {
		kill(c->etcd_pid, SIGKILL);
		waitpid(c->etcd_pid, NULL, 0);
		c->etcd_pid = 0;
	}
	if (c->workdir_made && !keep)
		tb_remove_tree(c->workdir);
	c->workdir_made = false;
	c->spawned = false;
}
