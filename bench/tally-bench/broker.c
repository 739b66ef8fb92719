/* broker.c - starting and stopping the tallyd under test, and what /proc says about a
 * process: CPU seconds (utime + stime, all threads), bytes it caused to be written to
 * and read from storage (/proc/PID/io write_bytes, read_bytes: counted when pages are
 * dirtied or read from the device, so page-cache hits read nothing), and which process
 * listens on a TCP port (/proc/net/tcp* inode -> /proc/PID/fd). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tb.h"

#define START_TIMEOUT_NS (20 * TB_NS_PER_S)
#define STOP_TIMEOUT_NS  (60 * TB_NS_PER_S)
#define LOG_BYTES_MAX    (64u << 20)

/* ---- /proc ---- */

/* Non-idle CPU time of the whole machine: user, nice, system, irq, softirq, steal. */
static double machine_busy_s(void)
{
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return 0;
	unsigned long long v[8] = {0};
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		       &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return 0;
	long ticks = sysconf(_SC_CLK_TCK);
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
	       (double)(ticks > 0 ? ticks : 100);
}

void tb_proc_sample(int pid, struct tb_proc_sample *out)
{
	memset(out, 0, sizeof(*out));
	out->machine_busy_s = machine_busy_s();
	if (pid <= 0)
		return;
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command, which may hold spaces and parentheses: state is the
	 * 3rd field, utime the 14th, stime the 15th. */
	char *p = strrchr(buf, ')');
	if (!p)
		return;
	p++;
	unsigned long long utime = 0, stime = 0;
	int field = 2;
	for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " ")) {
		field++;
		if (field == 14)
			utime = strtoull(tok, NULL, 10);
		else if (field == 15) {
			stime = strtoull(tok, NULL, 10);
			break;
		}
	}
	long ticks = sysconf(_SC_CLK_TCK);
	out->cpu_s = (double)(utime + stime) / (double)(ticks > 0 ? ticks : 100);
	snprintf(path, sizeof(path), "/proc/%d/io", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			out->write_bytes = v;
		else if (sscanf(line, "read_bytes: %llu", &v) == 1)
			out->read_bytes = v;
	}
	fclose(f);
	out->ok = true;
}

int tb_port_of(const char *bootstrap)
{
	const char *colon = strrchr(bootstrap, ':');
	if (!colon)
		return 0;
	long port = strtol(colon + 1, NULL, 10);
	return port > 0 && port < 65536 ? (int)port : 0;
}

/* The inode of a socket listening on @port, from /proc/net/tcp or tcp6; 0 if none. */
static unsigned long listen_inode(int port)
{
	const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		if (!f)
			continue;
		char line[512];
		unsigned long found = 0;
		while (!found && fgets(line, sizeof(line), f)) {
			char local[128], remote[128];
			unsigned state;
			unsigned long inode;
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(line, " %*s %127s %127s %x %*s %*s %*s %*s %*s %lu", local,
				   remote, &state, &inode) != 4)
				continue;
			char *colon = strrchr(local, ':');
			if (colon && state == 0x0a && strtol(colon + 1, NULL, 16) == port)
				found = inode;
		}
		fclose(f);
		if (found)
			return found;
	}
	return 0;
}

static bool pid_has_socket(const char *pid, const char *want)
{
	char path[300];
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		char link[600], target[64];
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = strcmp(target, want) == 0;
	}
	closedir(d);
	return found;
}

int tb_pid_listening_on(int port)
{
	unsigned long inode = listen_inode(port);
	if (!inode)
		return 0;
	char want[64];
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int pid = 0;
	struct dirent *e;
	while (!pid && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (pid_has_socket(e->d_name, want))
			pid = atoi(e->d_name);
	}
	closedir(d);
	return pid;
}

/* ---- tallyd ---- */

static void tallyd_path(const struct tb_opts *o, char *out, size_t size)
{
	if (o->tallyd) {
		tb_strlcpy(out, size, o->tallyd);
		return;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			int len = snprintf(out, size, "%s/tallyd", self);
			if (len > 0 && (size_t)len < size && access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, size, "build/bin/tallyd");
}

static void spawn_child(const char *path, const char *log_path, char **argv, pid_t parent)
{
	/* Its own process group: ^C stops tally-bench, which then stops its children
	 * cleanly. Should tally-bench die without that (SIGKILL), the kernel kills them. */
	setpgid(0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(125);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd == -1)
		_exit(126);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	int null = open("/dev/null", O_RDONLY);
	if (null != -1)
		dup2(null, STDIN_FILENO);
	execvp(path, argv);
	dprintf(STDERR_FILENO, "tally-bench: exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

int tb_spawn_logged(const char *path, char **argv, const char *log_path, char *err, size_t err_size)
{
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == -1) {
		snprintf(err, err_size, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		spawn_child(path, log_path, argv, parent);
	return pid;
}

/* Waits for "listening on HOST:PORT" in the log; 0 when seen. */
static int wait_listening(struct tb_broker *b, char *err, size_t err_size)
{
	int64_t deadline = tb_now_ns() + START_TIMEOUT_NS;
	while (tb_now_ns() < deadline) {
		char why[128];
		char *log = tb_read_file(b->log_path, LOG_BYTES_MAX, why, sizeof(why));
		const char *at = log ? strstr(log, "listening on ") : NULL;
		if (at) {
			char host[40];
			int port;
			if (sscanf(at, "listening on %39[^:]:%d", host, &port) == 2) {
				snprintf(b->bootstrap, sizeof(b->bootstrap), "%s:%d", host, port);
				free(log);
				return 0;
			}
		}
		free(log);
		int status;
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			snprintf(err, err_size, "tallyd exited during start-up (see %s)",
				 b->log_path);
			b->pid = 0;
			return -1;
		}
		usleep(20000);
	}
	snprintf(err, err_size, "tallyd did not log 'listening on' within %llds (see %s)",
		 (long long)(START_TIMEOUT_NS / TB_NS_PER_S), b->log_path);
	return -1;
}

int tb_broker_start(const struct tb_opts *o, struct tb_broker *b, const char *const *extra,
		    int extra_count, char *err, size_t err_size)
{
	char tallyd[PATH_MAX];
	tallyd_path(o, tallyd, sizeof(tallyd));
	if (access(tallyd, X_OK) != 0) {
		snprintf(err, err_size, "%s is not executable (make release, or --tallyd PATH)",
			 tallyd);
		return -1;
	}
	char a_listen[] = "listeners=PLAINTEXT://127.0.0.1:0";
	char a_dirs[700], a_parts[64];
	snprintf(a_dirs, sizeof(a_dirs), "log.dirs=%s", b->data);
	snprintf(a_parts, sizeof(a_parts), "num.partitions=%d", o->partitions);
	/* Its shutdown statistics are read from its log in the text format. */
	char a_format[] = "log.format=text";
	char *argv[10 + 2 * (TB_PROPS_MAX + TB_BROKER_EXTRA_MAX)];
	int argc = 0;
	char override[] = "--override";
	argv[argc++] = tallyd;
	argv[argc++] = override;
	argv[argc++] = a_listen;
	argv[argc++] = override;
	argv[argc++] = a_dirs;
	argv[argc++] = override;
	argv[argc++] = a_parts;
	argv[argc++] = override;
	argv[argc++] = a_format;
	for (int i = 0; i < extra_count && i < TB_BROKER_EXTRA_MAX; i++) {
		argv[argc++] = override;
		argv[argc++] = (char *)(uintptr_t)extra[i];
	}
	/* The user's last: a later --override wins. */
	for (int i = 0; i < o->broker_arg_count; i++) {
		argv[argc++] = override;
		argv[argc++] = (char *)(uintptr_t)o->broker_args[i];
	}
	argv[argc] = NULL;
	(void)unlink(b->log_path);
	int pid = tb_spawn_logged(tallyd, argv, b->log_path, err, err_size);
	if (pid == -1)
		return -1;
	b->pid = pid;
	b->spawned = true;
	return wait_listening(b, err, err_size);
}

int tb_broker_spawn(const struct tb_opts *o, struct tb_broker *b, char *err, size_t err_size)
{
	memset(b, 0, sizeof(*b));
	const char *parent = o->data_dir ? o->data_dir : "/var/tmp";
	if (o->data_dir)
		(void)mkdir(parent, 0755);
	snprintf(b->workdir, sizeof(b->workdir), "%s/tally-bench.XXXXXX", parent);
	if (!mkdtemp(b->workdir)) {
		snprintf(err, err_size, "mkdtemp %s: %s", b->workdir, strerror(errno));
		return -1;
	}
	b->workdir_made = true;
	snprintf(b->data, sizeof(b->data), "%s/data", b->workdir);
	snprintf(b->log_path, sizeof(b->log_path), "%s/tallyd.log", b->workdir);
	return tb_broker_start(o, b, NULL, 0, err, err_size);
}

/* The value of " @key=" in @line, or 0. */
static uint64_t field_u64(const char *line, const char *key)
{
	char want[40];
	snprintf(want, sizeof(want), " %s=", key);
	const char *at = strstr(line, want);
	return at ? strtoull(at + strlen(want), NULL, 10) : 0;
}

static void max_into(uint64_t *into, uint64_t v)
{
	if (v > *into)
		*into = v;
}

/* From tallyd's log: each of @topic's partition logs' "log: closing dir=..." line
 * (fdatasync rounds: summed, percentiles of the worst partition) and the broker's
 * "broker: request time api=Produce" line. */
void tb_broker_stats_read(const char *log_path, const char *topic, struct tb_broker_stats *st)
{
	static const char *const flush_keys[] = {"flush_p50_us", "flush_p99_us", "flush_p999_us",
						 "flush_max_us"};
	static const char *const write_keys[] = {"write_p50_us", "write_p99_us", "write_max_us"};
	static const char *const request_keys[] = {"p50_us", "p99_us", "p999_us", "max_us"};
	char why[128], want[300];
	memset(st, 0, sizeof(*st));
	char *log = tb_read_file(log_path, LOG_BYTES_MAX, why, sizeof(why));
	if (!log)
		return;
	snprintf(want, sizeof(want), "/%s-", topic);
	uint64_t bytes = 0;
	for (char *line = log; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		const char *dir = strstr(line, "log: closing dir=");
		const char *req = strstr(line, "broker: request time api=Produce ");
		if (dir && strstr(dir, want)) {
			st->flushes += field_u64(dir, "flushes");
			bytes += field_u64(dir, "bytes");
			for (int i = 0; i < 4; i++)
				max_into(&st->flush_us[i], field_u64(dir, flush_keys[i]));
			for (int i = 0; i < 3; i++)
				max_into(&st->write_us[i], field_u64(dir, write_keys[i]));
		} else if (req) {
			st->produce_requests = field_u64(req, "count");
			for (int i = 0; i < 4; i++)
				st->produce_us[i] = field_u64(req, request_keys[i]);
		}
		line = next;
	}
	free(log);
	st->bytes_per_flush = st->flushes ? bytes / st->flushes : 0;
}

int tb_broker_stop(struct tb_broker *b, const char *topic, struct tb_broker_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	if (!b->spawned || b->pid <= 0)
		return -1;
	pid_t pid = b->pid;
	kill(pid, SIGTERM);
	int64_t deadline = tb_now_ns() + STOP_TIMEOUT_NS;
	int status = 0;
	pid_t got = 0;
	while ((got = waitpid(pid, &status, WNOHANG)) == 0 && tb_now_ns() < deadline)
		usleep(10000);
	bool clean = got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (got != pid)
		snprintf(b->stop_detail, sizeof(b->stop_detail), "still running after %llds",
			 (long long)(STOP_TIMEOUT_NS / TB_NS_PER_S));
	else if (WIFSIGNALED(status))
		snprintf(b->stop_detail, sizeof(b->stop_detail), "killed by SIG%s",
			 sigabbrev_np(WTERMSIG(status)));
	else
		snprintf(b->stop_detail, sizeof(b->stop_detail), "exit status %d",
			 WEXITSTATUS(status));
	if (got != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	b->pid = 0;
	b->spawned = false;
	if (topic)
		tb_broker_stats_read(b->log_path, topic, stats);
	return clean ? 0 : -1;
}

void tb_remove_tree(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d))) {
				if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
					continue;
				char child[PATH_MAX];
				snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
				tb_remove_tree(child);
			}
			closedir(d);
		}
		rmdir(path);
	} else {
		unlink(path);
	}
}

void tb_broker_cleanup(struct tb_broker *b, bool keep)
{
	if (b->spawned && b->pid > 0) {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
		b->pid = 0;
		b->spawned = false;
	}
	if (b->workdir_made && !keep)
		tb_remove_tree(b->workdir);
	b->workdir_made = false;
}
