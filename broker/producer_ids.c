/* producer_ids.c - producer id allocation and InitProducerId for idempotent producers.
 * Producer ids are never reused, across restarts too: ids are handed out from blocks,
 * and a block's upper bound is made durable before the first id of the block is given
 * out. A crash can only skip ids.
 * One node: the bound is a file (temp file, fsync, rename, fsync dir).
 *   .tally-meta/producer-ids   "next.block.start=N": every id below N may be in use
 * Cluster mode: ids must be unique across brokers (any broker answers InitProducerId,
 * and every replica dedupes by id), so blocks come from the cluster-wide counter in
 * etcd (tl_cluster_allocate_pid_block). The next block is asked for when half of the
 * current one is used, so the loop never waits on etcd; when both are used up,
 * InitProducerId answers the retriable COORDINATOR_LOAD_IN_PROGRESS, as Kafka's
 * block manager does. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/txn.h"
#include "common/assert.h"
#include "common/diag.h"

#define PID_BLOCK_SIZE 1000
#define PID_FILE       "producer-ids"

static tl_err pid_file_write(const struct tl_broker *broker, int64_t next_block_start)
{
	char dir[TL_CONFIG_STR_MAX + 32], path[TL_CONFIG_STR_MAX + 64], tmp[TL_CONFIG_STR_MAX + 72];
	snprintf(dir, sizeof(dir), "%s/.tally-meta", broker->data_dir);
	snprintf(path, sizeof(path), "%s/" PID_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	char text[64];
	int len = snprintf(text, sizeof(text), "next.block.start=%" PRId64 "\n", next_block_start);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		goto fail;
	if (write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0)
		goto fail;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1 || fsync(dfd) != 0) {
		if (dfd != -1)
			close(dfd);
		goto fail;
	}
	close(dfd);
	return TL_OK;
fail:
	tl_warn("broker: cannot persist the producer id block path=%s err=%s", path,
		strerrorname_np(errno));
	return TL_ERR_IO;
}

/* Reads the durable bound; 0 when the file does not exist yet. */
static tl_err pid_file_read(const struct tl_broker *broker, int64_t *next_out)
{
	char path[TL_CONFIG_STR_MAX + 64];
	snprintf(path, sizeof(path), "%s/.tally-meta/" PID_FILE, broker->data_dir);
	FILE *f = fopen(path, "r");
	*next_out = 0;
	if (!f)
		return errno == ENOENT ? TL_OK : TL_ERR_IO;
	long long v = -1;
	int n = fscanf(f, "next.block.start=%lld", &v);
	fclose(f);
	if (n != 1 || v < 0) {
		tl_crit("broker: unreadable producer id file path=%s; refusing to risk reusing "
			"producer ids",
			path);
		return TL_ERR_CORRUPT;
	}
	*next_out = v;
	return TL_OK;
}

static void cluster_block_done(void *ctx, tl_err err, int64_t start)
{
	struct tl_broker *broker = ctx;
	broker->pid_block_asked = false;
	if (err != TL_OK) {
		tl_warn("broker: no producer id block from the cluster err=%s", tl_err_name(err));
		return;
	}
	broker->pid_spare_start = start;
	tl_info("broker: producer id block allocated start=%" PRId64 " end=%" PRId64, start,
		start + PID_BLOCK_SIZE);
}

static void cluster_block_ask(struct tl_broker *broker)
{
	if (broker->pid_block_asked || broker->pid_spare_start >= 0)
		return;
	if (tl_cluster_allocate_pid_block(broker, PID_BLOCK_SIZE, cluster_block_done, broker) ==
	    TL_OK)
		broker->pid_block_asked = true;
}

void tl_producer_ids_start(struct tl_broker *broker)
{
	broker->pid_spare_start = -1;
	if (broker->cluster)
		cluster_block_ask(broker);
}

static tl_err cluster_allocate(struct tl_broker *broker, int64_t *pid_out)
{
	if (broker->pid_next >= broker->pid_block_end && broker->pid_spare_start >= 0) {
		broker->pid_next = broker->pid_spare_start;
		broker->pid_block_end = broker->pid_spare_start + PID_BLOCK_SIZE;
		broker->pid_spare_start = -1;
	}
	if (broker->pid_block_end - broker->pid_next < PID_BLOCK_SIZE / 2)
		cluster_block_ask(broker);
	if (broker->pid_next >= broker->pid_block_end)
		return TL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
	*pid_out = broker->pid_next++;
	return TL_OK;
}

tl_err tl_producer_id_allocate(struct tl_broker *broker, int64_t *pid_out)
{
	if (broker->cluster)
		return cluster_allocate(broker, pid_out);
	if (broker->pid_next >= broker->pid_block_end) {
		int64_t start;
		tl_err err = pid_file_read(broker, &start);
		if (err != TL_OK)
			return err;
		start = TL_MAX(start, broker->pid_block_end);
		err = pid_file_write(broker, start + PID_BLOCK_SIZE);
		if (err != TL_OK)
			return err;
		broker->pid_next = start;
		broker->pid_block_end = start + PID_BLOCK_SIZE;
		tl_info("broker: producer id block allocated start=%" PRId64 " end=%" PRId64, start,
			broker->pid_block_end);
	}
	*pid_out = broker->pid_next++;
	return TL_OK;
}

static void init_pid_respond(struct tl_request *req, tl_err err, int64_t pid, int16_t epoch)
{
	struct tl_init_producer_id_response resp;
	tl_init_producer_id_response_defaults(&resp);
	resp.error_code = (int16_t)err;
	resp.producer_id = err == TL_OK ? pid : -1;
	resp.producer_epoch = err == TL_OK ? epoch : -1;
	tl_response_begin(req);
	tl_init_producer_id_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

void tl_handle_init_producer_id(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_init_producer_id_request msg;
	if (tl_init_producer_id_request_decode(body, req->header.api_version, &req->arena, &msg) !=
	    TL_OK) {
		tl_request_reject(req, "malformed InitProducerId request");
		return;
	}
	/* Kafka: Write on the transactional id; an idempotent producer needs
	 * IdempotentWrite on the Cluster or Write on some topic (Kafka 3.x). */
	if (msg.transactional_id.len >= 0 &&
	    !tl_authorize_txn(req, TL_ACL_OP_WRITE, msg.transactional_id)) {
		init_pid_respond(req, TL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
		return;
	}
	if (msg.transactional_id.len >= 0) {
		tl_txn_init_producer_id(req, &msg);
		return;
	}
	if (!tl_authorize_quiet(req, TL_ACL_OP_IDEMPOTENT_WRITE, TL_ACL_RESOURCE_CLUSTER,
				tl_str_of(TL_ACL_CLUSTER_NAME)) &&
	    !tl_authorize_any_of_type(req, TL_ACL_OP_WRITE, TL_ACL_RESOURCE_TOPIC)) {
		tl_authorize_cluster(req, TL_ACL_OP_IDEMPOTENT_WRITE); /* logs the denial */
		init_pid_respond(req, TL_ERR_CLUSTER_AUTHORIZATION_FAILED, -1, -1);
		return;
	}
	/* Idempotent only: always a fresh id at epoch 0, as Kafka does, also when the
	 * client offers its old id for a KIP-360 bump. */
	int64_t pid;
	tl_err err = tl_producer_id_allocate(broker, &pid);
	if (err != TL_OK && err != TL_ERR_COORDINATOR_LOAD_IN_PROGRESS)
		err = TL_ERR_KAFKA_STORAGE_ERROR;
	init_pid_respond(req, err, pid, 0);
}
