/* rdk_revoke.h - the rebalance callback of the transactional copiers (rdk_chaos copy,
 * rdk_txn_copier): it applies each assignment as librdkafka's default handler would,
 * and notes a revocation in rdk_revoked.
 *
 * Why: a copier's transaction holds the copies of records it consumed from its
 * assigned partitions and must commit their positions with them. Without a callback,
 * librdkafka unassigns inside rd_kafka_consumer_poll(); the copier then read an empty
 * assignment, sent no offsets, and committed the copies alone, so the next assignment
 * started from the old committed offsets and copied them again (chaos run of stop 30:
 * 51 records doubled after a coordinator failover made the copier rejoin). A copier
 * clears rdk_revoked when it begins a transaction and aborts it when the flag is set
 * before it sends the offsets; the callback runs only inside poll, which the copier
 * does not call between sending the offsets and ending the transaction. */
#ifndef TALLY_TESTS_RDK_REVOKE_H
#define TALLY_TESTS_RDK_REVOKE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool rdk_revoked;

static void rdk_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			     rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
	(void)opaque;
	bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
	if (!assign)
		rdk_revoked = true;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
	if (cooperative)
		error = assign ? rd_kafka_incremental_assign(rk, partitions)
			       : rd_kafka_incremental_unassign(rk, partitions);
	else
		e = rd_kafka_assign(rk, assign ? partitions : NULL);
	if (error || e)
		fprintf(stderr, "rebalance: %s: %s\n", assign ? "assign" : "revoke",
			error ? rd_kafka_error_string(error) : rd_kafka_err2str(e));
	if (error)
		rd_kafka_error_destroy(error);
}

/* Sets the callback on a consumer's configuration. */
static void rdk_revoke_conf(rd_kafka_conf_t *conf)
{
	rd_kafka_conf_set_rebalance_cb(conf, rdk_rebalance_cb);
}

#endif
