/* metastore_test.c - the metadata store client against a real etcd on loopback.
 * Every case of the etcd-backed TCases starts its own etcd (free ports, a data dir
 * under one temp root made by main) and kills it after; an etcd left by a failed
 * case dies with it (PR_SET_PDEATHSIG) and main removes the temp root at the end.
 * Without an etcd binary (/usr/bin/etcd, or $TALLY_ETCD) the binary exits 77. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "broker/metastore.h"
#include "common/tests/check_run.h"
#include "common/time.h"

#define STORE_TIMEOUT_MS 2000 /* generous: etcd and ASan share two busy cores */
#define ETCD_READY_MS    20000

static const char *etcd_bin;
static char root_dir[PATH_MAX / 2];

struct etcd {
	pid_t pid; /* 0: not running */
	char dir[PATH_MAX];
	char endpoint[64];
};

static struct etcd etcd;
static struct tl_meta *meta;

/* ---- fixtures ---- */

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	socklen_t len = sizeof(addr);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	close(fd);
	return ntohs(addr.sin_port);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void etcd_stop(void)
{
	if (etcd.pid > 0) {
		kill(etcd.pid, SIGKILL);
		waitpid(etcd.pid, NULL, 0);
		etcd.pid = 0;
	}
	if (etcd.dir[0]) {
		remove_tree(etcd.dir);
		etcd.dir[0] = '\0';
	}
}

/* A failed ck_assert exits the case's process without its teardown. */
static void etcd_stop_at_exit(void)
{
	etcd_stop();
}

static pid_t etcd_spawn(const char *dir, int client_port, int peer_port)
{
	char client_url[64], peer_url[64], cluster[96], log_path[PATH_MAX + 16];
	snprintf(client_url, sizeof(client_url), "http://127.0.0.1:%d", client_port);
	snprintf(peer_url, sizeof(peer_url), "http://127.0.0.1:%d", peer_port);
	snprintf(cluster, sizeof(cluster), "default=%s", peer_url);
	snprintf(log_path, sizeof(log_path), "%s/etcd.log", dir);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	char data_dir[PATH_MAX + 8];
	snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
	execl(etcd_bin, etcd_bin, "--name", "default", "--data-dir", data_dir,
	      "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
	      "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
	      "--initial-cluster", cluster, (char *)NULL);
	_exit(127);
}

/* Starts etcd on free ports and waits until it answers; retries on a port clash. */
static void etcd_start(void)
{
	static bool registered;
	if (!registered) {
		atexit(etcd_stop_at_exit);
		registered = true;
	}
	snprintf(etcd.dir, sizeof(etcd.dir), "%s/etcd-XXXXXX", root_dir);
	ck_assert_ptr_nonnull(mkdtemp(etcd.dir));
	for (int attempt = 0; attempt < 3; attempt++) {
		int client_port = free_port();
		int peer_port = free_port();
		snprintf(etcd.endpoint, sizeof(etcd.endpoint), "http://127.0.0.1:%d", client_port);
		etcd.pid = etcd_spawn(etcd.dir, client_port, peer_port);
		ck_assert_int_gt(etcd.pid, 0);
		int64_t deadline = tl_mono_ms() + ETCD_READY_MS;
		while (tl_mono_ms() < deadline) {
			if (waitpid(etcd.pid, NULL, WNOHANG) == etcd.pid) {
				etcd.pid = 0; /* exited: likely a port taken meanwhile */
				break;
			}
			struct tl_meta *probe;
			char why[512];
			if (tl_meta_open(etcd.endpoint, 500, &probe, why, sizeof(why)) == TL_OK) {
				tl_meta_close(probe);
				return;
			}
			usleep(50 * 1000);
		}
		if (etcd.pid > 0) {
			kill(etcd.pid, SIGKILL);
			waitpid(etcd.pid, NULL, 0);
			etcd.pid = 0;
		}
	}
	ck_abort_msg("etcd did not start; see its log under %s", etcd.dir);
}

static void setup(void)
{
	etcd_start();
	char why[512];
	tl_err err = tl_meta_open(etcd.endpoint, STORE_TIMEOUT_MS, &meta, why, sizeof(why));
	ck_assert_msg(err == TL_OK, "open: %s", why);
}

static void teardown(void)
{
	tl_meta_close(meta);
	meta = NULL;
	etcd_stop();
}

/* ---- helpers ---- */

static int64_t put_str(const char *key, const char *value)
{
	int64_t revision = 0;
	tl_err err = tl_meta_put(meta, key, value, strlen(value), 0, &revision);
	ck_assert_msg(err == TL_OK, "put %s: %s", key, tl_meta_last_error(meta));
	ck_assert_int_gt(revision, 0);
	return revision;
}

static void assert_value(const struct tl_meta_kv *kv, const char *value)
{
	ck_assert_uint_eq(kv->value_len, strlen(value));
	if (kv->value_len)
		ck_assert(memcmp(kv->value, value, kv->value_len) == 0);
}

/* ---- keys ---- */

START_TEST(put_get_list_keep_binary_values_and_revisions)
{
	uint8_t binary[256];
	for (size_t i = 0; i < sizeof(binary); i++)
		binary[i] = (uint8_t)(255 - i); /* NULs and 0xff included */
	int64_t rev_a = 0, rev_b = 0;
	ck_assert_int_eq(tl_meta_put(meta, "/t/a", binary, sizeof(binary), 0, &rev_a), TL_OK);
	ck_assert_int_eq(tl_meta_put(meta, "/t/b", NULL, 0, 0, &rev_b), TL_OK);
	ck_assert_int_eq(rev_b, rev_a + 1);
	int64_t rev_u = put_str("/u/x", "other");

	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_get(meta, "/t/a", &result), TL_OK);
	ck_assert_uint_eq(result.count, 1);
	ck_assert_str_eq(result.kvs[0].key, "/t/a");
	ck_assert_uint_eq(result.kvs[0].value_len, sizeof(binary));
	ck_assert(memcmp(result.kvs[0].value, binary, sizeof(binary)) == 0);
	ck_assert_int_eq(result.kvs[0].mod_revision, rev_a);
	ck_assert_int_eq(result.kvs[0].create_revision, rev_a);
	ck_assert_int_eq(result.kvs[0].version, 1);
	ck_assert_int_eq(result.kvs[0].lease, 0);
	ck_assert_int_eq(result.revision, rev_u);
	tl_meta_result_deinit(&result);

	ck_assert_int_eq(tl_meta_list(meta, "/t/", &result), TL_OK);
	ck_assert_uint_eq(result.count, 2);
	ck_assert_str_eq(result.kvs[0].key, "/t/a");
	ck_assert_str_eq(result.kvs[1].key, "/t/b");
	ck_assert_uint_eq(result.kvs[1].value_len, 0);
	ck_assert_ptr_null(result.kvs[1].value);
	ck_assert_int_eq(result.revision, rev_u);
	tl_meta_result_deinit(&result);

	ck_assert_int_eq(tl_meta_list(meta, "", &result), TL_OK);
	ck_assert_uint_eq(result.count, 3);
	ck_assert_str_eq(result.kvs[2].key, "/u/x");
	tl_meta_result_deinit(&result);

	int64_t rev_a2 = put_str("/t/a", "again");
	ck_assert_int_eq(tl_meta_get(meta, "/t/a", &result), TL_OK);
	ck_assert_int_eq(result.kvs[0].version, 2);
	ck_assert_int_eq(result.kvs[0].create_revision, rev_a);
	ck_assert_int_eq(result.kvs[0].mod_revision, rev_a2);
	tl_meta_result_deinit(&result);

	ck_assert_int_eq(tl_meta_get(meta, "/t/missing", &result), TL_ERR_NOT_FOUND);
	ck_assert_uint_eq(result.count, 0);
	ck_assert_ptr_nonnull(strstr(tl_meta_last_error(meta), "/t/missing"));
	tl_meta_result_deinit(&result);
}
END_TEST

START_TEST(delete_and_delete_prefix_remove_only_their_keys)
{
	put_str("/d/1", "1");
	put_str("/d/2", "2");
	put_str("/e/1", "3");
	int64_t deleted = -1;
	ck_assert_int_eq(tl_meta_delete(meta, "/d/1", &deleted), TL_OK);
	ck_assert_int_eq(deleted, 1);
	ck_assert_int_eq(tl_meta_delete(meta, "/d/1", &deleted), TL_OK);
	ck_assert_int_eq(deleted, 0);
	ck_assert_int_eq(tl_meta_delete_prefix(meta, "/d/", &deleted), TL_OK);
	ck_assert_int_eq(deleted, 1);
	ck_assert_int_eq(tl_meta_delete_prefix(meta, "", &deleted), TL_ERR_INVALID);
	put_str("/f", "topic");
	put_str("/f/0", "p0");
	put_str("/f/1", "p1");
	put_str("/fg", "another topic");
	ck_assert_int_eq(tl_meta_delete_key_and_prefix(meta, "/f", "/f/"), TL_OK);
	ck_assert_int_eq(tl_meta_delete_key_and_prefix(meta, "/f", ""), TL_ERR_INVALID);
	struct tl_meta_result left;
	ck_assert_int_eq(tl_meta_list(meta, "/f", &left), TL_OK);
	ck_assert_uint_eq(left.count, 1); /* the key and its prefix went together, not /fg */
	ck_assert_str_eq(left.kvs[0].key, "/fg");
	tl_meta_result_deinit(&left);
	ck_assert_int_eq(tl_meta_delete(meta, "/fg", NULL), TL_OK);
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_list(meta, "", &result), TL_OK);
	ck_assert_uint_eq(result.count, 1);
	ck_assert_str_eq(result.kvs[0].key, "/e/1");
	tl_meta_result_deinit(&result);
}
END_TEST

/* ---- compare-and-swap ---- */

START_TEST(cas_swaps_on_the_expected_revision_and_returns_the_current_value_if_stale)
{
	bool swapped = false;
	int64_t rev1 = 0, rev2 = 0;
	struct tl_meta_kv current;
	ck_assert_int_eq(tl_meta_cas(meta, "/c/k", "v1", 2, 0, 0, &swapped, &rev1, &current),
			 TL_OK);
	ck_assert(swapped);
	ck_assert_int_gt(rev1, 0);
	ck_assert_ptr_null(current.key);

	/* Must not exist, but does. */
	ck_assert_int_eq(tl_meta_cas(meta, "/c/k", "v9", 2, 0, 0, &swapped, NULL, &current), TL_OK);
	ck_assert(!swapped);
	ck_assert_str_eq(current.key, "/c/k");
	ck_assert_int_eq(current.mod_revision, rev1);
	assert_value(&current, "v1");
	tl_meta_kv_deinit(&current);

	ck_assert_int_eq(tl_meta_cas(meta, "/c/k", "v2", 2, rev1, 0, &swapped, &rev2, NULL), TL_OK);
	ck_assert(swapped);
	ck_assert_int_eq(rev2, rev1 + 1);

	/* Stale revision: the writer that read rev1 is fenced. */
	ck_assert_int_eq(tl_meta_cas(meta, "/c/k", "v3", 2, rev1, 0, &swapped, NULL, &current),
			 TL_OK);
	ck_assert(!swapped);
	ck_assert_int_eq(current.mod_revision, rev2);
	assert_value(&current, "v2");
	tl_meta_kv_deinit(&current);

	/* Expected a revision, but the key is gone. */
	ck_assert_int_eq(tl_meta_cas(meta, "/c/none", "x", 1, rev1, 0, &swapped, NULL, &current),
			 TL_OK);
	ck_assert(!swapped);
	ck_assert_ptr_null(current.key);

	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_get(meta, "/c/k", &result), TL_OK);
	assert_value(&result.kvs[0], "v2");
	tl_meta_result_deinit(&result);
}
END_TEST

START_TEST(cas_many_writes_every_key_at_one_revision_or_none)
{
	struct tl_meta_cas_op ops[2] = {
		{.key = "/p/0", .value = "a0", .value_len = 2},
		{.key = "/p/1", .value = "b0", .value_len = 2},
	};
	bool swapped = false;
	int64_t revision = 0;
	struct tl_meta_result current;
	ck_assert_int_eq(tl_meta_cas_many(meta, ops, 2, &swapped, &revision, &current), TL_OK);
	ck_assert(swapped);
	ck_assert_uint_eq(current.count, 0);
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_list(meta, "/p/", &result), TL_OK);
	ck_assert_uint_eq(result.count, 2);
	ck_assert_int_eq(result.kvs[0].mod_revision, revision);
	ck_assert_int_eq(result.kvs[1].mod_revision, revision);
	tl_meta_result_deinit(&result);

	/* One stale compare: nothing is written. */
	ops[0] = (struct tl_meta_cas_op){
		.key = "/p/0", .value = "a1", .value_len = 2, .expected_mod_revision = revision};
	ops[1] = (struct tl_meta_cas_op){.key = "/p/1",
					 .value = "b1",
					 .value_len = 2,
					 .expected_mod_revision = revision - 1};
	ck_assert_int_eq(tl_meta_cas_many(meta, ops, 2, &swapped, NULL, &current), TL_OK);
	ck_assert(!swapped);
	ck_assert_uint_eq(current.count, 2);
	assert_value(&current.kvs[0], "a0");
	assert_value(&current.kvs[1], "b0");
	tl_meta_result_deinit(&current);
}
END_TEST

/* A compare-only key takes part in the compare and is not written: the controller's
 * first state of a partition holds only while its topic's key is the one it saw. */
START_TEST(cas_many_compares_a_compare_only_key_without_writing_it)
{
	int64_t topic_revision = 0;
	ck_assert_int_eq(tl_meta_put(meta, "/c/topics/t", "t0", 2, 0, &topic_revision), TL_OK);
	struct tl_meta_cas_op ops[2] = {
		{.key = "/c/partitions/t/0", .value = "s0", .value_len = 2},
		{.key = "/c/topics/t",
		 .expected_mod_revision = topic_revision,
		 .compare_only = true},
	};
	bool swapped = false;
	ck_assert_int_eq(tl_meta_cas_many(meta, ops, 2, &swapped, NULL, NULL), TL_OK);
	ck_assert(swapped);
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_get(meta, "/c/topics/t", &result), TL_OK);
	ck_assert_int_eq(result.kvs[0].mod_revision, topic_revision); /* not written */
	assert_value(&result.kvs[0], "t0");
	tl_meta_result_deinit(&result);
	ck_assert_int_eq(tl_meta_get(meta, "/c/partitions/t/0", &result), TL_OK);
	assert_value(&result.kvs[0], "s0");
	tl_meta_result_deinit(&result);

	/* The topic deleted: the state of another partition is not written. */
	ck_assert_int_eq(tl_meta_delete(meta, "/c/topics/t", NULL), TL_OK);
	ops[0].key = "/c/partitions/t/1";
	ck_assert_int_eq(tl_meta_cas_many(meta, ops, 2, &swapped, NULL, NULL), TL_OK);
	ck_assert(!swapped);
	ck_assert_int_eq(tl_meta_get(meta, "/c/partitions/t/1", &result), TL_ERR_NOT_FOUND);
	tl_meta_result_deinit(&result);
}
END_TEST

/* ---- leases ---- */

START_TEST(key_bound_to_a_lease_goes_when_the_lease_is_revoked)
{
	int64_t lease = 0;
	ck_assert_int_eq(tl_meta_lease_grant(meta, 30, &lease), TL_OK);
	ck_assert_int_ne(lease, 0);
	ck_assert_int_eq(tl_meta_put(meta, "/l/broker-1", "up", 2, lease, NULL), TL_OK);
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_get(meta, "/l/broker-1", &result), TL_OK);
	ck_assert_int_eq(result.kvs[0].lease, lease);
	tl_meta_result_deinit(&result);

	ck_assert_int_eq(tl_meta_lease_revoke(meta, lease), TL_OK);
	ck_assert_int_eq(tl_meta_get(meta, "/l/broker-1", &result), TL_ERR_NOT_FOUND);
	tl_meta_result_deinit(&result);
	ck_assert_int_eq(tl_meta_lease_keepalive(meta, lease, NULL), TL_ERR_NOT_FOUND);
	ck_assert_int_eq(tl_meta_lease_revoke(meta, lease), TL_ERR_NOT_FOUND);
	ck_assert_int_eq(tl_meta_put(meta, "/l/late", "x", 1, lease, NULL), TL_ERR_NOT_FOUND);
}
END_TEST

START_TEST(key_bound_to_a_lease_expires_without_keepalive)
{
	int64_t lease = 0;
	ck_assert_int_eq(tl_meta_lease_grant(meta, 2, &lease), TL_OK);
	ck_assert_int_eq(tl_meta_put(meta, "/l/broker-2", "up", 2, lease, NULL), TL_OK);
	int64_t start = tl_mono_ms();
	tl_err err = TL_OK;
	while (err == TL_OK && tl_mono_ms() - start < 15000) {
		usleep(200 * 1000);
		struct tl_meta_result result;
		err = tl_meta_get(meta, "/l/broker-2", &result);
		tl_meta_result_deinit(&result);
	}
	ck_assert_int_eq(err, TL_ERR_NOT_FOUND);
	ck_assert_int_ge(tl_mono_ms() - start, 1000);
	ck_assert_int_eq(tl_meta_lease_keepalive(meta, lease, NULL), TL_ERR_NOT_FOUND);
}
END_TEST

START_TEST(keepalive_keeps_a_lease_and_its_key)
{
	int64_t lease = 0;
	ck_assert_int_eq(tl_meta_lease_grant(meta, 2, &lease), TL_OK);
	ck_assert_int_eq(tl_meta_put(meta, "/l/broker-3", "up", 2, lease, NULL), TL_OK);
	int64_t start = tl_mono_ms();
	while (tl_mono_ms() - start < 4500) {
		int64_t ttl = 0;
		tl_err err = tl_meta_lease_keepalive(meta, lease, &ttl);
		ck_assert_msg(err == TL_OK, "keepalive: %s", tl_meta_last_error(meta));
		ck_assert_int_gt(ttl, 0);
		usleep(400 * 1000);
	}
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_get(meta, "/l/broker-3", &result), TL_OK);
	tl_meta_result_deinit(&result);
}
END_TEST

/* ---- watch ---- */

#define EVENTS_MAX 16

struct seen {
	size_t count;
	enum tl_meta_event_type type[EVENTS_MAX];
	char key[EVENTS_MAX][32];
	char value[EVENTS_MAX][32];
	int64_t revision[EVENTS_MAX];
};

static void record_event(void *ctx, const struct tl_meta_event *event)
{
	struct seen *seen = ctx;
	ck_assert_uint_lt(seen->count, EVENTS_MAX);
	size_t i = seen->count++;
	seen->type[i] = event->type;
	snprintf(seen->key[i], sizeof(seen->key[i]), "%s", event->kv->key);
	snprintf(seen->value[i], sizeof(seen->value[i]), "%.*s", (int)event->kv->value_len,
		 event->kv->value ? (const char *)event->kv->value : "");
	seen->revision[i] = event->kv->mod_revision;
}

/* Watches until @want events are seen (each call returns after one message). */
static int64_t watch_until(const char *prefix, int64_t from, struct seen *seen, size_t want)
{
	int64_t next = from;
	for (int calls = 0; calls < 10 && seen->count < want; calls++) {
		tl_err err = tl_meta_watch(meta, prefix, next, 5000, record_event, seen, &next);
		ck_assert_msg(err == TL_OK, "watch: %s", tl_meta_last_error(meta));
	}
	ck_assert_uint_eq(seen->count, want);
	return next;
}

static void *put_later(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	/* A second store: the watching one is used by one thread at a time. */
	struct tl_meta *writer;
	char why[512];
	if (tl_meta_open(etcd.endpoint, STORE_TIMEOUT_MS, &writer, why, sizeof(why)) == TL_OK) {
		tl_meta_put(writer, "/w/c", "3", 1, 0, NULL);
		tl_meta_close(writer);
	}
	return NULL;
}

START_TEST(watch_delivers_puts_and_deletes_from_a_revision_and_while_it_waits)
{
	int64_t rev_a = put_str("/w/a", "1");
	put_str("/w/b", "2");
	put_str("/x/elsewhere", "no");
	int64_t rev_del = 0;
	ck_assert_int_eq(tl_meta_delete(meta, "/w/a", NULL), TL_OK);
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_list(meta, "/w/", &result), TL_OK);
	rev_del = result.revision;
	tl_meta_result_deinit(&result);

	struct seen seen = {0};
	int64_t next = watch_until("/w/", rev_a, &seen, 3);
	ck_assert_int_eq(seen.type[0], TL_META_EVENT_PUT);
	ck_assert_str_eq(seen.key[0], "/w/a");
	ck_assert_str_eq(seen.value[0], "1");
	ck_assert_int_eq(seen.revision[0], rev_a);
	ck_assert_str_eq(seen.key[1], "/w/b");
	ck_assert_int_eq(seen.type[2], TL_META_EVENT_DELETE);
	ck_assert_str_eq(seen.key[2], "/w/a");
	ck_assert_int_eq(seen.revision[2], rev_del);
	ck_assert_int_eq(next, rev_del + 1);

	/* A put made while the watch waits. */
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, put_later, NULL), 0);
	int64_t start = tl_mono_ms();
	next = watch_until("/w/", next, &seen, 4);
	ck_assert_int_lt(tl_mono_ms() - start, 4000);
	pthread_join(thread, NULL);
	ck_assert_str_eq(seen.key[3], "/w/c");
	ck_assert_int_eq(next, seen.revision[3] + 1);
}
END_TEST

START_TEST(watch_returns_after_max_wait_without_events)
{
	struct seen seen = {0};
	int64_t next = -1;
	int64_t start = tl_mono_ms();
	tl_err err = tl_meta_watch(meta, "/quiet/", 0, 700, record_event, &seen, &next);
	int64_t took = tl_mono_ms() - start;
	ck_assert_msg(err == TL_OK, "watch: %s", tl_meta_last_error(meta));
	ck_assert_uint_eq(seen.count, 0);
	ck_assert_int_ge(took, 650);
	ck_assert_int_lt(took, 3000);
	ck_assert_int_ge(next, 1); /* "from now" became a revision */
}
END_TEST

static size_t discard(char *data, size_t size, size_t count, void *ctx)
{
	(void)data;
	(void)ctx;
	return size * count;
}

static void *wake_later(void *arg)
{
	usleep(300 * 1000);
	tl_meta_wake(arg);
	return NULL;
}

START_TEST(wake_from_another_thread_ends_a_watch_promptly)
{
	struct seen seen = {0};
	int64_t next = 0;
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, wake_later, meta), 0);
	int64_t start = tl_mono_ms();
	tl_err err = tl_meta_watch(meta, "/quiet/", 0, 30000, record_event, &seen, &next);
	int64_t took = tl_mono_ms() - start;
	pthread_join(thread, NULL);
	ck_assert_int_eq(err, TL_OK);
	ck_assert_int_lt(took, 3000);

	/* A wake with no watch running is kept for the next one. */
	tl_meta_wake(meta);
	start = tl_mono_ms();
	ck_assert_int_eq(tl_meta_watch(meta, "/quiet/", 0, 30000, record_event, &seen, &next),
			 TL_OK);
	ck_assert_int_lt(tl_mono_ms() - start, 2000);
	ck_assert_uint_eq(seen.count, 0);
}
END_TEST

START_TEST(watch_from_a_compacted_revision_is_compacted)
{
	int64_t first = put_str("/k/x", "1");
	put_str("/k/x", "2");
	int64_t last = put_str("/k/x", "3");
	/* The store has no compaction call; ask the gateway directly. */
	CURL *curl = curl_easy_init();
	ck_assert_ptr_nonnull(curl);
	char url[128], body[64];
	snprintf(url, sizeof(url), "%s/v3/kv/compaction", etcd.endpoint);
	snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", (long long)last);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	ck_assert_int_eq(curl_easy_perform(curl), CURLE_OK);
	curl_easy_cleanup(curl);

	struct seen seen = {0};
	int64_t next = 0;
	tl_err err = tl_meta_watch(meta, "/k/", first, 5000, record_event, &seen, &next);
	ck_assert_int_eq(err, TL_ERR_COMPACTED);
	ck_assert_ptr_nonnull(strstr(tl_meta_last_error(meta), "compacted"));
	ck_assert_uint_eq(seen.count, 0);
	/* From the compaction point on, the watch works. */
	next = watch_until("/k/", last, &seen, 1);
	ck_assert_str_eq(seen.value[0], "3");
}
END_TEST

/* ---- a fake gateway: exact bytes and chunking of a watch stream ---- */

struct fake {
	int listen_fd;
	char endpoint[64];
	const char *const *pieces; /* the watch stream, one write(2) each */
};

static void fake_send(int fd, const char *text)
{
	size_t len = strlen(text);
	while (len > 0) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* Reads one request's head and body; false at EOF. @path gets its path. */
static bool fake_read_request(int fd, char *path, size_t path_size)
{
	char head[4096];
	size_t len = 0;
	char *end = NULL;
	while (!end && len < sizeof(head) - 1) {
		ssize_t n = recv(fd, head + len, sizeof(head) - 1 - len, 0);
		if (n <= 0)
			return false;
		len += (size_t)n;
		head[len] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if (!end || sscanf(head, "POST %127s", path) != 1)
		return false;
	(void)path_size;
	const char *cl = strcasestr(head, "Content-Length:");
	size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
	size_t have = len - (size_t)(end + 4 - head);
	char sink[4096];
	while (have < body) {
		ssize_t n = recv(fd, sink, sizeof(sink), 0);
		if (n <= 0)
			return false;
		have += (size_t)n;
	}
	return true;
}

/* Serves connections until the test ends: status answers {}, watch streams pieces. */
static void *fake_serve(void *arg)
{
	struct fake *fake = arg;
	for (;;) {
		int fd = accept(fake->listen_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		char path[128];
		while (fake_read_request(fd, path, sizeof(path))) {
			if (strcmp(path, "/v3/watch") != 0) {
				fake_send(fd,
					  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					  "Content-Length: 2\r\n\r\n{}");
				continue;
			}
			fake_send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n");
			for (size_t i = 0; fake->pieces[i]; i++) {
				char size[32];
				snprintf(size, sizeof(size), "%zx\r\n", strlen(fake->pieces[i]));
				fake_send(fd, size);
				fake_send(fd, fake->pieces[i]);
				fake_send(fd, "\r\n");
				usleep(30 * 1000); /* each piece its own segment and its own read */
			}
			/* Keep the stream open, as etcd does, until the client goes. */
			char byte;
			while (recv(fd, &byte, 1, 0) > 0)
				;
			break;
		}
		close(fd);
	}
}

static void fake_start(struct fake *fake, pthread_t *thread)
{
	fake->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fake->listen_fd, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	socklen_t len = sizeof(addr);
	ck_assert_int_eq(getsockname(fake->listen_fd, (struct sockaddr *)&addr, &len), 0);
	ck_assert_int_eq(listen(fake->listen_fd, 4), 0);
	snprintf(fake->endpoint, sizeof(fake->endpoint), "http://127.0.0.1:%d",
		 ntohs(addr.sin_port));
	ck_assert_int_eq(pthread_create(thread, NULL, fake_serve, fake), 0);
}

START_TEST(watch_reads_objects_split_across_chunks_and_several_in_one)
{
	/* "/s/a" is L3MvYQ==, "x" is eA==. The note fields hold braces, brackets and
	 * escaped quotes inside strings; the second object is cut mid-escape. */
	static const char *const pieces[] = {
		"{\"result\":{\"header\":{\"revision\":\"10\"},\"created\":true}}\n{\"resu",
		"lt\":{\"header\":{\"revision\":\"12\"},\"note\":\"}]{[\\",
		"\"\\\\\",\"events\":[{\"kv\":{\"key\":\"L3MvYQ==\",\"mod_revision\":\"11\","
		"\"create_revision\":\"11\",\"version\":\"1\",\"value\":\"eA==\"}},",
		"{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3MvYQ==\",\"mod_revision\":\"12\"}}]}}",
		"\n{\"result\":{\"header\":{\"revision\":\"13\"},\"events\":[{\"kv\":{\"key\":"
		"\"L3MvYQ==\",\"mod_revision\":\"13\",\"value\":\"eA==\"}}]}}\n",
		NULL,
	};
	struct fake fake = {.pieces = pieces};
	pthread_t thread;
	fake_start(&fake, &thread);
	struct tl_meta *store;
	char why[512];
	ck_assert_int_eq(tl_meta_open(fake.endpoint, STORE_TIMEOUT_MS, &store, why, sizeof(why)),
			 TL_OK);
	struct seen seen = {0};
	int64_t next = 0;
	tl_err err = tl_meta_watch(store, "/s/", 11, 5000, record_event, &seen, &next);
	ck_assert_msg(err == TL_OK, "watch: %s", tl_meta_last_error(store));
	/* One message's events, not the next message's. */
	ck_assert_uint_eq(seen.count, 2);
	ck_assert_int_eq(seen.type[0], TL_META_EVENT_PUT);
	ck_assert_str_eq(seen.key[0], "/s/a");
	ck_assert_str_eq(seen.value[0], "x");
	ck_assert_int_eq(seen.type[1], TL_META_EVENT_DELETE);
	ck_assert_int_eq(seen.revision[1], 12);
	ck_assert_int_eq(next, 13);
	tl_meta_close(store);
	shutdown(fake.listen_fd, SHUT_RDWR);
	close(fake.listen_fd);
	pthread_join(thread, NULL);
}
END_TEST

/* ---- faults ---- */

START_TEST(calls_fail_fast_and_retriable_when_etcd_is_killed)
{
	put_str("/f/a", "1");
	kill(etcd.pid, SIGKILL);
	waitpid(etcd.pid, NULL, 0);
	etcd.pid = 0;
	int64_t start = tl_mono_ms();
	tl_err err = tl_meta_put(meta, "/f/a", "2", 1, 0, NULL);
	ck_assert_int_eq(err, TL_ERR_UNAVAILABLE);
	ck_assert(tl_err_is_retriable(err));
	ck_assert_int_le(tl_mono_ms() - start, STORE_TIMEOUT_MS + 500);
	ck_assert_msg(strstr(tl_meta_last_error(meta), etcd.endpoint), "%s",
		      tl_meta_last_error(meta));
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_get(meta, "/f/a", &result), TL_ERR_UNAVAILABLE);
	int64_t next = 0;
	struct seen seen = {0};
	ck_assert_int_eq(tl_meta_watch(meta, "/f/", 0, 1000, record_event, &seen, &next),
			 TL_ERR_UNAVAILABLE);
}
END_TEST

START_TEST(calls_time_out_when_etcd_stops_answering)
{
	struct tl_meta *quick;
	char why[512];
	ck_assert_int_eq(tl_meta_open(etcd.endpoint, 500, &quick, why, sizeof(why)), TL_OK);
	kill(etcd.pid, SIGSTOP);
	int64_t start = tl_mono_ms();
	struct tl_meta_result result;
	tl_err err = tl_meta_get(quick, "/f/a", &result);
	int64_t took = tl_mono_ms() - start;
	ck_assert_int_eq(err, TL_ERR_UNAVAILABLE);
	ck_assert_int_ge(took, 450);
	ck_assert_int_lt(took, 1500);
	ck_assert_msg(strstr(tl_meta_last_error(quick), etcd.endpoint), "%s",
		      tl_meta_last_error(quick));
	start = tl_mono_ms();
	ck_assert_int_eq(tl_meta_put(quick, "/f/a", "x", 1, 0, NULL), TL_ERR_UNAVAILABLE);
	ck_assert_int_lt(tl_mono_ms() - start, 1500);
	ck_assert_ptr_nonnull(strstr(tl_meta_last_error(quick), "may have been applied"));
	kill(etcd.pid, SIGCONT);
	tl_meta_close(quick);
}
END_TEST

START_TEST(a_dead_first_endpoint_is_skipped_for_the_next)
{
	char endpoints[160];
	char dead[64];
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", free_port());
	snprintf(endpoints, sizeof(endpoints), "%s, %s/", dead, etcd.endpoint);
	struct tl_meta *two;
	char why[512];
	tl_err err = tl_meta_open(endpoints, STORE_TIMEOUT_MS, &two, why, sizeof(why));
	ck_assert_msg(err == TL_OK, "open: %s", why);
	ck_assert_str_eq(tl_meta_endpoint(two), etcd.endpoint);
	ck_assert_int_eq(tl_meta_put(two, "/two/k", "v", 1, 0, NULL), TL_OK);
	struct tl_meta_result result;
	ck_assert_int_eq(tl_meta_get(two, "/two/k", &result), TL_OK);
	tl_meta_result_deinit(&result);
	tl_meta_close(two);
}
END_TEST

START_TEST(open_without_etcd_names_every_endpoint)
{
	char a[64], b[64], endpoints[160];
	snprintf(a, sizeof(a), "http://127.0.0.1:%d", free_port());
	snprintf(b, sizeof(b), "http://127.0.0.1:%d", free_port());
	snprintf(endpoints, sizeof(endpoints), "%s,%s", a, b);
	struct tl_meta *none = NULL;
	char why[1024];
	int64_t start = tl_mono_ms();
	tl_err err = tl_meta_open(endpoints, 1000, &none, why, sizeof(why));
	ck_assert_int_eq(err, TL_ERR_UNAVAILABLE);
	ck_assert_ptr_null(none);
	ck_assert_int_lt(tl_mono_ms() - start, 2000);
	ck_assert_msg(strstr(why, a) && strstr(why, b), "%s", why);
}
END_TEST

static void assert_refused(const char *endpoints, const char *needle)
{
	struct tl_meta *bad = NULL;
	char why[512] = "";
	ck_assert_int_eq(tl_meta_open(endpoints, 1000, &bad, why, sizeof(why)), TL_ERR_INVALID);
	ck_assert_ptr_null(bad);
	ck_assert_msg(strstr(why, needle), "\"%s\": %s", endpoints, why);
}

START_TEST(open_refuses_a_bad_endpoint_naming_it)
{
	assert_refused("http://127.0.0.1:2379,etcd:2379", "endpoint 2 \"etcd:2379\"");
	assert_refused("https://127.0.0.1:2379", "https");
	assert_refused("http://127.0.0.1:99999", "port");
	assert_refused("http://127.0.0.1", "port");
	assert_refused("", "empty");
	assert_refused("http://127.0.0.1:2379,,http://127.0.0.1:2380", "endpoint 2");
}
END_TEST

static Suite *metastore_suite(void)
{
	Suite *s = suite_create("metastore");
	struct {
		const char *name;
		const TTest *tests[4];
	} cases[] = {
		{"kv",
		 {put_get_list_keep_binary_values_and_revisions,
		  delete_and_delete_prefix_remove_only_their_keys}},
		{"cas",
		 {cas_swaps_on_the_expected_revision_and_returns_the_current_value_if_stale,
		  cas_many_writes_every_key_at_one_revision_or_none,
		  cas_many_compares_a_compare_only_key_without_writing_it}},
		{"lease",
		 {key_bound_to_a_lease_goes_when_the_lease_is_revoked,
		  key_bound_to_a_lease_expires_without_keepalive,
		  keepalive_keeps_a_lease_and_its_key}},
		{"watch",
		 {watch_delivers_puts_and_deletes_from_a_revision_and_while_it_waits,
		  watch_returns_after_max_wait_without_events,
		  wake_from_another_thread_ends_a_watch_promptly,
		  watch_from_a_compacted_revision_is_compacted}},
		{"faults",
		 {calls_fail_fast_and_retriable_when_etcd_is_killed,
		  calls_time_out_when_etcd_stops_answering,
		  a_dead_first_endpoint_is_skipped_for_the_next}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 30);
		tcase_add_checked_fixture(tc, setup, teardown);
		for (size_t t = 0; t < 4 && cases[i].tests[t]; t++)
			tcase_add_test(tc, cases[i].tests[t]);
		suite_add_tcase(s, tc);
	}
	TCase *tc = tcase_create("open");
	tcase_add_test(tc, open_without_etcd_names_every_endpoint);
	tcase_add_test(tc, open_refuses_a_bad_endpoint_naming_it);
	suite_add_tcase(s, tc);
	tc = tcase_create("stream");
	tcase_add_test(tc, watch_reads_objects_split_across_chunks_and_several_in_one);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	etcd_bin = getenv("TALLY_ETCD") ? getenv("TALLY_ETCD") : "/usr/bin/etcd";
	if (access(etcd_bin, X_OK) != 0) {
		printf("metastore_test: SKIP: no etcd at %s (apt-get install etcd-server, or set TALLY_ETCD)\n",
		       etcd_bin);
		return 77;
	}
	snprintf(root_dir, sizeof(root_dir), "%s/tally-metastore-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root_dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	int rc = tl_check_run(metastore_suite());
	remove_tree(root_dir);
	return rc;
}
