/* tally_group.c - libtally consumers sharing a group (tl_consumer_subscribe).
 *   tally_group -b BROKER -t TOPIC [-n COUNT] [-p PARTITIONS] [-S INSTANCE | -R]
 * Two consumers A and B subscribe to TOPIC (PARTITIONS partitions, created here) in one
 * group, polled in turn on this thread, until their assignments are disjoint, non-empty
 * and cover every partition. Then COUNT records are produced; A and B together must read
 * each exactly once, each only from its own partitions. Both commit and leave. COUNT
 * more records are produced; a third member C must read exactly those (it starts from
 * the committed offsets), then leave. Each read goes on to every partition's high
 * watermark (tally_tail.h), so a duplicate after the last original record counts too.
 * -S instead checks static membership's fencing: A joins with group.instance.id=INSTANCE
 * and gets every partition; B joins with the same group.instance.id and the coordinator
 * fences A (FENCED_INSTANCE_ID). As in Java and librdkafka that is fatal for A: it must
 * not rejoin (the two would take the partitions from each other for ever), every later
 * poll and commit of A returns the error, and B keeps every partition.
 * -R checks the rebalance callback (tl_consumer_conf_set_rebalance_cb) at a handover:
 * A, alone, is told it has every partition, reads half of COUNT records and commits
 * nothing itself; B joins. A must be told REVOKED before its partitions go (it commits
 * there, in its generation, and that must succeed) and then ASSIGNED its share; B is
 * told its share. Together they must read each record exactly once: B starts exactly
 * where A's revocation committed (auto.offset.reset=earliest would re-deliver anything
 * not committed). Every record must be of a partition its reader was told ASSIGNED and
 * not yet REVOKED or LOST; each ASSIGNED must match tl_consumer_assignment(); each
 * REVOKED or LOST must name exactly what the last ASSIGNED gave. Then A is not polled
 * past its session timeout (5 s; the broker's group.min.session.timeout.ms must allow
 * it): the coordinator drops it and B is told it has every partition; A's next polls
 * must tell LOST, not REVOKED, for its share, and A then rejoins. Destroying A and B
 * tells each REVOKED (committing again); a third member C then reads exactly the COUNT
 * records produced after that.
 * Exit status: 0 ok, 1 a check failed, 2 usage. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tally/admin.h"
#include "tally/consumer.h"
#include "tally/producer.h"
#include "tally_tail.h"

#define PARTITIONS_MAX 64
#define WAIT_S         30

static const char *brokers, *topic, *instance;
static bool rebalance_mode;
static const char *session_ms = "10000";
static uint32_t count = 10000;
static int32_t partitions = 4;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "tally_group: %s\n", what);
	return 1;
}

/* Produces records [from, from + n) with key "k<i>". */
static int produce(uint32_t from, uint32_t n)
{
	char err[512];
	struct tl_producer_conf *conf = tl_producer_conf_create();
	if (tl_producer_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != TL_OK)
		return fail(err);
	struct tl_producer *producer;
	if (tl_producer_create(conf, &producer, err, sizeof(err)) != TL_OK)
		return fail(err);
	tl_producer_conf_destroy(conf);
	for (uint32_t i = from; i < from + n; i++) {
		char key[16];
		int len = snprintf(key, sizeof(key), "k%" PRIu32, i);
		struct tl_producer_record rec = {.topic = topic,
						 .partition = TL_PRODUCER_PARTITION_ANY,
						 .key = key,
						 .key_len = len,
						 .value = key,
						 .value_len = len};
		if (tl_producer_send(producer, &rec) != TL_OK)
			return fail(tl_producer_last_error(producer));
	}
	tl_err e = tl_producer_flush(producer, 30000);
	tl_producer_destroy(producer);
	return e == TL_OK ? 0 : fail("flush failed");
}

/* What the rebalance callback told one member (-R). */
struct told {
	const char *name;
	uint64_t owned; /* ASSIGNED and not yet REVOKED or LOST */
	bool owning;
	int assigned, revoked, lost;
	uint32_t errors;
};

static uint64_t parts_mask(const struct tl_consumer_partition *parts, int32_t n)
{
	uint64_t mask = 0;
	for (int32_t i = 0; i < n; i++)
		mask |= 1ull << parts[i].partition;
	return mask;
}

/* Bit p set when partition p is assigned to @consumer. */
static uint64_t assigned_mask(struct tl_consumer *consumer)
{
	struct tl_consumer_partition parts[PARTITIONS_MAX];
	int32_t n = tl_consumer_assignment(consumer, parts, PARTITIONS_MAX);
	return parts_mask(parts, n < PARTITIONS_MAX ? n : PARTITIONS_MAX);
}

static void told_error(struct told *t, const char *what)
{
	fprintf(stderr, "tally_group: %s: %s\n", t->name, what);
	t->errors++;
}

static void on_rebalance(struct tl_consumer *consumer, int event,
			 const struct tl_consumer_partition *parts, int32_t n, void *opaque)
{
	struct told *t = opaque;
	uint64_t mask = parts_mask(parts, n);
	const struct tl_consumer_record *r;
	if (tl_consumer_poll(consumer, 0, &r) != TL_ERR_INVALID)
		told_error(t, "poll inside the rebalance callback was not refused");
	if (event == TL_CONSUMER_ASSIGNED) {
		t->assigned++;
		if (t->owning && t->owned)
			told_error(t, "ASSIGNED while the last assignment was not taken back");
		if (mask != assigned_mask(consumer))
			told_error(t, "ASSIGNED named other partitions than the assignment");
		t->owned = mask;
		t->owning = true;
		fprintf(stderr, "tally_group: %s: ASSIGNED 0x%" PRIx64 "\n", t->name, mask);
		return;
	}
	if (!t->owning || mask != t->owned)
		told_error(t, "REVOKED or LOST named other partitions than the last ASSIGNED");
	t->owned = 0;
	t->owning = false;
	if (event == TL_CONSUMER_LOST) {
		t->lost++;
		fprintf(stderr, "tally_group: %s: LOST 0x%" PRIx64 "\n", t->name, mask);
		return;
	}
	t->revoked++;
	for (int32_t i = 0; i < n; i++)
		if (parts[i].offset !=
		    tl_consumer_position(consumer, parts[i].topic, parts[i].partition))
			told_error(t, "REVOKED's offsets are not the positions");
	tl_err e = tl_consumer_commit(consumer, 10000);
	fprintf(stderr, "tally_group: %s: REVOKED 0x%" PRIx64 ", commit %s\n", t->name, mask,
		tl_err_name(e));
	if (e != TL_OK) {
		fprintf(stderr, "tally_group: %s: %s\n", t->name, tl_consumer_last_error(consumer));
		told_error(t, "the commit inside REVOKED failed");
	}
}

static struct tl_consumer *member_told(const char *group, struct told *told)
{
	char err[512];
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	if (told)
		tl_consumer_conf_set_rebalance_cb(conf, on_rebalance, told);
	if ((instance &&
	     tl_consumer_conf_set(conf, "group.instance.id", instance, err, sizeof(err))) ||
	    tl_consumer_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "group.id", group, err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "heartbeat.interval.ms", "200", err, sizeof(err)) ||
	    tl_consumer_conf_set(conf, "session.timeout.ms", session_ms, err, sizeof(err))) {
		fprintf(stderr, "tally_group: %s\n", err);
		return NULL;
	}
	struct tl_consumer *consumer;
	tl_err e = tl_consumer_create(conf, &consumer, err, sizeof(err));
	tl_consumer_conf_destroy(conf);
	if (e != TL_OK) {
		fprintf(stderr, "tally_group: %s\n", err);
		return NULL;
	}
	const char *topics[] = {topic};
	if (tl_consumer_subscribe(consumer, topics, 1) != TL_OK) {
		fprintf(stderr, "tally_group: %s\n", tl_consumer_last_error(consumer));
		tl_consumer_destroy(consumer);
		return NULL;
	}
	return consumer;
}

static struct tl_consumer *member(const char *group)
{
	return member_told(group, NULL);
}

/* Reads one record from @consumer if one comes within 10 ms; checks it (of a partition
 * in *@mask, read after the poll: a rebalance callback may change it) and counts it. */
static int poll_one(struct tl_consumer *consumer, const uint64_t *mask, uint8_t *seen,
		    uint32_t limit, uint32_t *received, uint32_t *errors)
{
	const struct tl_consumer_record *r;
	tl_err e = tl_consumer_poll(consumer, 10, &r);
	if (e == TL_ERR_TIMED_OUT)
		return 0;
	if (e != TL_OK) {
		fprintf(stderr, "tally_group: poll: %s\n", tl_consumer_last_error(consumer));
		(*errors)++;
		return 0;
	}
	char key[16];
	size_t len = r->key_len > 0 && r->key_len < 16 ? (size_t)r->key_len : 0;
	memcpy(key, r->key, len);
	key[len] = '\0';
	uint32_t i = (uint32_t)strtoul(key + 1, NULL, 10);
	if (len < 2 || i >= limit || seen[i]++ || !(*mask & (1ull << r->partition))) {
		if ((*errors)++ < 10)
			fprintf(stderr, "tally_group: record %s on partition %d: %s\n", key,
				r->partition,
				i < limit && seen[i] > 1 ? "duplicate" : "unexpected");
		return 0;
	}
	(*received)++;
	return 1;
}

/* -S: see the top of the file. */
static int run_fenced(const char *group)
{
	uint64_t all = partitions == 64 ? ~0ull : (1ull << partitions) - 1;
	const struct tl_consumer_record *r;
	struct tl_consumer *a = member(group);
	if (!a)
		return 1;
	double start = now_s();
	while (now_s() - start < WAIT_S && assigned_mask(a) != all)
		(void)tl_consumer_poll(a, 10, &r);
	if (assigned_mask(a) != all)
		return fail("A did not get every partition");
	struct tl_consumer *b = member(group);
	if (!b)
		return 1;
	tl_err ea = TL_OK;
	start = now_s();
	while (now_s() - start < WAIT_S && ea != TL_ERR_FENCED_INSTANCE_ID) {
		ea = tl_consumer_poll(a, 10, &r);
		(void)tl_consumer_poll(b, 10, &r);
	}
	fprintf(stderr, "tally_group: A: %s after %.1fs\n", tl_consumer_last_error(a),
		now_s() - start);
	if (ea != TL_ERR_FENCED_INSTANCE_ID || !tl_err_is_fatal(ea))
		return fail("A was not fenced");
	/* Longer than A's rejoin backoff (1 s) and many of B's heartbeats. */
	uint32_t polls = 0, fenced = 0;
	start = now_s();
	while (now_s() - start < 3.0) {
		polls++;
		fenced += tl_consumer_poll(a, 10, &r) == TL_ERR_FENCED_INSTANCE_ID;
		(void)tl_consumer_poll(b, 10, &r);
	}
	uint64_t ma = assigned_mask(a), mb = assigned_mask(b);
	tl_err commit = tl_consumer_commit(a, 1000);
	fprintf(stderr,
		"tally_group: afterwards A fenced in %" PRIu32 " of %" PRIu32
		" polls, commit %s; A has 0x%" PRIx64 ", B has 0x%" PRIx64 "\n",
		fenced, polls, tl_err_name(commit), ma, mb);
	tl_consumer_destroy(a);
	tl_consumer_destroy(b);
	if (fenced != polls || commit != TL_ERR_FENCED_INSTANCE_ID || ma != 0 || mb != all)
		return fail("the fenced member A did not stop");
	return 0;
}

static int resume_check(const char *group, uint8_t *seen);

/* A and B read (checked by poll_one against *@ma and *@mb) until the COUNT records came
 * and then on to every high watermark of their partitions. False when they stopped short:
 * no record for WAIT_S, or no high watermarks. */
static bool read_pair(struct tl_consumer *a, const uint64_t *ma, uint32_t *got_a,
		      struct tl_consumer *b, const uint64_t *mb, uint32_t *got_b, uint8_t *seen,
		      uint32_t *errors)
{
	double last = now_s();
	int64_t end[PARTITIONS_MAX];
	bool tail = false; /* every record arrived; reading on to the high watermarks */
	while (now_s() - last < WAIT_S) {
		if (*got_a + *got_b >= count && !tail) {
			if (!tail_end_offsets(brokers, topic, partitions, end))
				return false;
			tail = true;
			last = now_s();
		}
		if (tail && tail_reached(a, topic, partitions, end) &&
		    tail_reached(b, topic, partitions, end))
			return true;
		/* Each drains what it has: one record per turn would wait out the other's
		 * poll timeout for every record once one of them is done. */
		int n = 0;
		while (n < 1000 && poll_one(a, ma, seen, count, got_a, errors))
			n++;
		while (n < 2000 && poll_one(b, mb, seen, count, got_b, errors))
			n++;
		if (n)
			last = now_s();
	}
	return false;
}

/* -R: see the top of the file. */
static int run_rebalance(const char *group)
{
	uint64_t all = partitions == 64 ? ~0ull : (1ull << partitions) - 1;
	struct told ta = {.name = "A"}, tb = {.name = "B"};
	struct tl_consumer *a = member_told(group, &ta);
	if (!a)
		return 1;
	double start = now_s();
	const struct tl_consumer_record *r;
	while (now_s() - start < WAIT_S && ta.owned != all)
		(void)tl_consumer_poll(a, 10, &r);
	if (ta.owned != all || ta.assigned != 1)
		return fail("A, alone in the group, was not told ASSIGNED with every partition");
	if (produce(0, count / 2) != 0)
		return 1;
	uint8_t *seen = calloc((size_t)count * 2, 1);
	uint32_t got_a = 0, got_b = 0, errors = 0;
	start = now_s();
	while (now_s() - start < WAIT_S && got_a < count / 4)
		(void)poll_one(a, &ta.owned, seen, count, &got_a, &errors);
	if (got_a < count / 4)
		return fail("A did not read a quarter of the records");
	struct tl_consumer *b = member_told(group, &tb);
	if (!b)
		return 1;
	/* Both read on until the group split the partitions; then the second half comes,
	 * so that B has records of its own whichever A read. */
	start = now_s();
	while (now_s() - start < WAIT_S &&
	       (!ta.owned || !tb.owned || (ta.owned & tb.owned) || (ta.owned | tb.owned) != all)) {
		(void)poll_one(a, &ta.owned, seen, count, &got_a, &errors);
		(void)poll_one(b, &tb.owned, seen, count, &got_b, &errors);
	}
	fprintf(stderr, "tally_group: split after %.1fs\n", now_s() - start);
	if (produce(count / 2, count - count / 2) != 0)
		return 1;
	if (!read_pair(a, &ta.owned, &got_a, b, &tb.owned, &got_b, seen, &errors))
		errors++;
	fprintf(stderr,
		"tally_group: A read %" PRIu32 ", B read %" PRIu32 " of %" PRIu32
		"; A has 0x%" PRIx64 ", B has 0x%" PRIx64 " after %.1fs\n",
		got_a, got_b, count, ta.owned, tb.owned, now_s() - start);
	if (!ta.owned || !tb.owned || (ta.owned & tb.owned) || (ta.owned | tb.owned) != all)
		return fail("the group did not split the partitions between A and B");
	if (ta.revoked < 1 || ta.assigned < 2 || tb.assigned < 1)
		return fail("A was not told REVOKED then ASSIGNED, or B not ASSIGNED");
	if (errors || got_a + got_b != count || !got_b)
		return fail("A and B did not read every record exactly once across the handover");

	/* A's session expires: B gets everything, A is told LOST. Everything read is
	 * committed first, so no record may come meanwhile (a LOST member's uncommitted
	 * records are the next owner's again: at least once). */
	if (tl_consumer_commit(a, 10000) != TL_OK || tl_consumer_commit(b, 10000) != TL_OK)
		return fail("commit failed");
	uint64_t a_had = ta.owned;
	int revoked_a = ta.revoked;
	uint32_t stray = 0;
	start = now_s();
	while (now_s() - start < WAIT_S && tb.owned != all)
		stray += tl_consumer_poll(b, 10, &r) == TL_OK;
	fprintf(stderr, "tally_group: B has 0x%" PRIx64 " %.1fs after A stopped polling\n",
		tb.owned, now_s() - start);
	if (tb.owned != all)
		return fail("B did not get every partition once A's session expired");
	start = now_s();
	while (now_s() - start < WAIT_S && !(ta.lost && ta.owned && tb.owned)) {
		stray += tl_consumer_poll(a, 10, &r) == TL_OK;
		stray += tl_consumer_poll(b, 10, &r) == TL_OK;
	}
	if (stray)
		return fail("records came again after every record was committed");
	if (ta.lost != 1 || ta.revoked != revoked_a)
		return fail("A was not told LOST (and only LOST) after its session expired");
	if (!ta.owned || !tb.owned || (ta.owned | tb.owned) != all)
		return fail("A did not rejoin after it lost its partitions");
	fprintf(stderr, "tally_group: A lost 0x%" PRIx64 " and rejoined with 0x%" PRIx64 "\n",
		a_had, ta.owned);
	ta.lost = 0;
	int revoked_b = tb.revoked;
	revoked_a = ta.revoked;
	tl_consumer_destroy(a);
	tl_consumer_destroy(b);
	if (ta.revoked != revoked_a + 1 || tb.revoked != revoked_b + 1 || ta.owning || tb.owning)
		return fail("destroy did not tell each member REVOKED");
	if (ta.errors || tb.errors || ta.lost || tb.lost)
		return fail("the rebalance callbacks saw something wrong");
	return resume_check(group, seen);
}

static int run(void)
{
	char err[512];
	struct tl_admin_conf *aconf = tl_admin_conf_create();
	struct tl_admin *admin;
	if (tl_admin_conf_set(aconf, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    tl_admin_create(aconf, &admin, err, sizeof(err)))
		return fail(err);
	tl_admin_conf_destroy(aconf);
	if (tl_admin_create_topic(admin, topic, partitions, -1, NULL, 0, 10000) != TL_OK)
		return fail(tl_admin_last_error(admin));
	tl_admin_destroy(admin);

	char group[256];
	snprintf(group, sizeof(group), "group-%s", topic);
	if (instance)
		return run_fenced(group);
	if (rebalance_mode) {
		session_ms = "5000";
		return run_rebalance(group);
	}
	struct tl_consumer *a = member(group), *b = member(group);
	if (!a || !b)
		return 1;
	uint64_t all = partitions == 64 ? ~0ull : (1ull << partitions) - 1;
	uint64_t ma = 0, mb = 0;
	double start = now_s();
	const struct tl_consumer_record *r;
	while (now_s() - start < WAIT_S) {
		(void)tl_consumer_poll(a, 10, &r);
		(void)tl_consumer_poll(b, 10, &r);
		ma = assigned_mask(a);
		mb = assigned_mask(b);
		if (ma && mb && (ma & mb) == 0 && (ma | mb) == all)
			break;
	}
	fprintf(stderr, "tally_group: A has 0x%" PRIx64 ", B has 0x%" PRIx64 " after %.1fs\n", ma,
		mb, now_s() - start);
	if (!ma || !mb || (ma & mb) || (ma | mb) != all)
		return fail("the group did not split the partitions between A and B");

	if (produce(0, count) != 0)
		return 1;
	uint8_t *seen = calloc((size_t)count * 2, 1);
	uint32_t got_a = 0, got_b = 0, errors = 0;
	if (!read_pair(a, &ma, &got_a, b, &mb, &got_b, seen, &errors))
		errors++;
	fprintf(stderr, "tally_group: A read %" PRIu32 ", B read %" PRIu32 " of %" PRIu32 "\n",
		got_a, got_b, count);
	if (errors || got_a + got_b != count || !got_a || !got_b)
		return fail("A and B did not read every record exactly once");
	if (tl_consumer_commit(a, 10000) != TL_OK || tl_consumer_commit(b, 10000) != TL_OK)
		return fail("commit failed");
	tl_consumer_destroy(a);
	tl_consumer_destroy(b);
	return resume_check(group, seen);
}

/* After the first COUNT records were read and committed: COUNT more are produced, and a
 * third member C must read exactly those. Frees @seen. */
static int resume_check(const char *group, uint8_t *seen)
{
	uint64_t all = partitions == 64 ? ~0ull : (1ull << partitions) - 1;
	int64_t end[PARTITIONS_MAX];
	uint32_t errors = 0;
	bool tail;
	if (produce(count, count) != 0)
		return 1;
	struct tl_consumer *c = member(group);
	if (!c)
		return 1;
	uint32_t got_c = 0;
	double last = now_s();
	memset(seen, 0, (size_t)count * 2);
	/* Records 0..count-1 were committed: any of them here is a failure. */
	for (uint32_t i = 0; i < count; i++)
		seen[i] = 1;
	tail = false;
	while (now_s() - last < WAIT_S) {
		if (got_c >= count && !tail) {
			if (!tail_end_offsets(brokers, topic, partitions, end))
				return fail("no high watermarks");
			tail = true;
			last = now_s();
		}
		if (tail && tail_reached(c, topic, partitions, end))
			break;
		if (poll_one(c, &all, seen, count * 2, &got_c, &errors))
			last = now_s();
	}
	bool reached = tail && tail_reached(c, topic, partitions, end);
	fprintf(stderr, "tally_group: C read %" PRIu32 " of %" PRIu32 " new records%s\n", got_c,
		count, reached ? "" : ", short of a high watermark");
	tl_consumer_destroy(c);
	free(seen);
	if (errors || got_c != count || !reached)
		return fail("C did not resume exactly at the committed offsets");
	return 0;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "b:t:n:p:S:R")) != -1) {
		switch (opt) {
		case 'b':
			brokers = optarg;
			break;
		case 't':
			topic = optarg;
			break;
		case 'n':
			count = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			partitions = (int32_t)strtol(optarg, NULL, 10);
			break;
		case 'S':
			instance = optarg;
			break;
		case 'R':
			rebalance_mode = true;
			break;
		default:
			return 2;
		}
	}
	if (!brokers || !topic || count == 0 || partitions < 2 || partitions > PARTITIONS_MAX) {
		fprintf(stderr,
			"usage: tally_group -b BROKER -t TOPIC [-n COUNT] [-p PARTITIONS] [-S INSTANCE | -R]\n");
		return 2;
	}
	return run();
}
