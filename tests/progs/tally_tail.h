/* tally_tail.h - reading on to the high watermark, for the consumer checks of
 * tests/progs/tally_*.c. A check that stops once each record it sent was seen once never
 * fetches a duplicate appended after the last original - exactly what a broken dedupe of
 * a retried last batch leaves (issue #23). So once every record arrived, a check reads on
 * until the consumer's position on each partition it holds reaches that partition's high
 * watermark, and treats what it reads meanwhile like any other record. Header-only. */
#ifndef TL_TESTS_PROGS_TALLY_TAIL_H
#define TL_TESTS_PROGS_TALLY_TAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/admin.h"
#include "tally/consumer.h"

#define TAIL_TIMEOUT_MS     15000 /* from the last original record to every high watermark */
#define TAIL_PARTITIONS_MAX 256

/* Fills end[0..@partitions-1] with the high watermarks of @topic (ListOffsets LATEST,
 * read_uncommitted). Returns true, or false with the reason on stderr. */
static inline bool tail_end_offsets(const char *brokers, const char *topic, int32_t partitions,
				    int64_t *end)
{
	char err[512];
	struct tl_admin_conf *conf = tl_admin_conf_create();
	struct tl_admin *admin = NULL;
	tl_err e = tl_admin_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
	if (e == TL_OK)
		e = tl_admin_create(conf, &admin, err, sizeof(err));
	tl_admin_conf_destroy(conf);
	if (e != TL_OK) {
		fprintf(stderr, "tail: admin: %s\n", err);
		return false;
	}
	struct tl_admin_offset_query *queries = calloc((size_t)partitions, sizeof(*queries));
	if (!queries) {
		tl_admin_destroy(admin);
		return false;
	}
	for (int32_t p = 0; p < partitions; p++) {
		queries[p].topic = topic;
		queries[p].partition = p;
		queries[p].timestamp = TL_ADMIN_OFFSET_LATEST;
	}
	bool ok = tl_admin_list_offsets(admin, queries, partitions, 0, 10000) == TL_OK;
	if (!ok)
		fprintf(stderr, "tail: ListOffsets: %s\n", tl_admin_last_error(admin));
	for (int32_t p = 0; ok && p < partitions; p++) {
		ok = queries[p].err == TL_OK;
		if (!ok)
			fprintf(stderr, "tail: ListOffsets of partition %d: %s\n", p,
				tl_err_name(queries[p].err));
		end[p] = queries[p].offset;
	}
	free(queries);
	tl_admin_destroy(admin);
	return ok;
}

/* True when @consumer's position on every partition of @topic it is assigned has reached
 * end[partition] (@end from tail_end_offsets(), @partitions entries). */
static inline bool tail_reached(struct tl_consumer *consumer, const char *topic, int32_t partitions,
				const int64_t *end)
{
	struct tl_consumer_partition parts[TAIL_PARTITIONS_MAX];
	int32_t n = tl_consumer_assignment(consumer, parts, TAIL_PARTITIONS_MAX);
	for (int32_t i = 0; i < n && i < TAIL_PARTITIONS_MAX; i++) {
		if (strcmp(parts[i].topic, topic) != 0 || parts[i].partition >= partitions)
			continue;
		if (parts[i].offset < end[parts[i].partition])
			return false;
	}
	return true;
}

/* Prints each assigned partition whose position is short of its high watermark. */
static inline void tail_report(struct tl_consumer *consumer, const char *topic, int32_t partitions,
			       const int64_t *end)
{
	struct tl_consumer_partition parts[TAIL_PARTITIONS_MAX];
	int32_t n = tl_consumer_assignment(consumer, parts, TAIL_PARTITIONS_MAX);
	for (int32_t i = 0; i < n && i < TAIL_PARTITIONS_MAX; i++)
		if (strcmp(parts[i].topic, topic) == 0 && parts[i].partition < partitions &&
		    parts[i].offset < end[parts[i].partition])
			fprintf(stderr, "tail: partition %d: position %lld, high watermark %lld\n",
				parts[i].partition, (long long)parts[i].offset,
				(long long)end[parts[i].partition]);
}

#endif
