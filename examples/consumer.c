/* consumer.c - prints each record's value of a topic as a member of a group:
 *   ./consumer 127.0.0.1:9092 my-group my-topic
 * Start several with the same group and they share the topic's partitions. Commits are
 * manual, after the records were printed (at least once: a crash repeats what was
 * printed since the last commit), and in the rebalance callback before partitions go
 * to another member, so a handover repeats nothing. SIGINT or SIGTERM leaves the group. */
#include <signal.h>
#include <stdio.h>
#include <tally/consumer.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_rebalance(struct tl_consumer *consumer, int event,
			 const struct tl_consumer_partition *parts, int32_t count, void *opaque)
{
	const char *what = event == TL_CONSUMER_ASSIGNED  ? "assigned"
			   : event == TL_CONSUMER_REVOKED ? "revoked"
							  : "lost";
	for (int32_t i = 0; i < count; i++)
		fprintf(stderr, "%s %s [%d]\n", what, parts[i].topic, parts[i].partition);
	if (event == TL_CONSUMER_REVOKED) { /* still ours: store how far we printed */
		fflush(stdout);
		if (tl_consumer_commit(consumer, 10000) != TL_OK)
			fprintf(stderr, "commit: %s\n", tl_consumer_last_error(consumer));
	}
	(void)opaque;
}

int main(int argc, char **argv)
{
	char err[512];
	struct tl_consumer *consumer;
	struct tl_consumer_conf *conf = tl_consumer_conf_create();
	tl_consumer_conf_set_rebalance_cb(conf, on_rebalance, NULL);
	const char *kv[] = {"bootstrap.servers",  argc == 4 ? argv[1] : "",
			    "group.id",           argc == 4 ? argv[2] : "",
			    "enable.auto.commit", "false",
			    "auto.offset.reset",  "earliest"};
	tl_err e = argc != 4 ? TL_ERR_INVALID : TL_OK;
	for (int i = 0; i < 8 && e == TL_OK; i += 2)
		e = tl_consumer_conf_set(conf, kv[i], kv[i + 1], err, sizeof(err));
	if (e == TL_OK)
		e = tl_consumer_create(conf, &consumer, err, sizeof(err));
	tl_consumer_conf_destroy(conf); /* the consumer keeps a copy */
	if (e != TL_OK) {
		fprintf(stderr, "usage: consumer BROKER GROUP TOPIC: %s\n", argc == 4 ? err : "");
		return 1;
	}
	const char *topics[] = {argv[3]};
	if (tl_consumer_subscribe(consumer, topics, 1) != TL_OK) {
		fprintf(stderr, "subscribe: %s\n", tl_consumer_last_error(consumer));
		tl_consumer_destroy(consumer);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	int printed = 0; /* since the last commit */
	while (!stop) {
		const struct tl_consumer_record *r;
		e = tl_consumer_poll(consumer, 500, &r); /* r stays valid until the next poll */
		if (e == TL_OK) {
			printf("%.*s\n", r->value_len, r->value ? (const char *)r->value : "");
			if (++printed < 1000)
				continue;
		} else if (e != TL_ERR_TIMED_OUT) {
			fprintf(stderr, "poll: %s\n", tl_consumer_last_error(consumer));
			if (tl_err_is_fatal(e))
				break;
		}
		if (printed > 0) { /* a full batch, or the topic is idle */
			fflush(stdout);
			if (tl_consumer_commit(consumer, 10000) == TL_OK)
				printed = 0;
			else
				fprintf(stderr, "commit: %s\n", tl_consumer_last_error(consumer));
		}
	}
	tl_consumer_destroy(consumer); /* the callback commits, then it leaves the group */
	return e == TL_OK || e == TL_ERR_TIMED_OUT ? 0 : 1;
}
