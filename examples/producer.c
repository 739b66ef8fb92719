/* producer.c - sends each line of stdin as a record: ./producer 127.0.0.1:9092 my-topic
 * Defaults are safe (idempotent, acks=all, ordered retries); this adds zstd. */
#include <stdio.h>
#include <string.h>
#include <tally/producer.h>

static void on_delivery(const struct tl_producer_delivery *d, void *opaque)
{
	if (d->err != TL_OK) /* d->detail says what to fix */
		fprintf(stderr, "lost: %s: %s\n", tl_err_name(d->err), d->detail);
	(void)opaque;
}

int main(int argc, char **argv)
{
	char err[512], line[4096];
	struct tl_producer *producer;
	struct tl_producer_conf *conf = tl_producer_conf_create();
	tl_producer_conf_set_delivery_cb(conf, on_delivery, NULL);
	tl_err e = argc != 3 ? TL_ERR_INVALID
			     : tl_producer_conf_set(conf, "bootstrap.servers", argv[1], err,
						    sizeof(err));
	if (e == TL_OK)
		e = tl_producer_conf_set(conf, "compression.type", "zstd", err, sizeof(err));
	if (e == TL_OK)
		e = tl_producer_create(conf, &producer, err, sizeof(err));
	tl_producer_conf_destroy(conf); /* the producer keeps a copy */
	if (e != TL_OK) {
		fprintf(stderr, "usage: producer BROKER TOPIC < lines: %s\n", argc == 3 ? err : "");
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		struct tl_producer_record rec = {.topic = argv[2],
						 .partition = TL_PRODUCER_PARTITION_ANY,
						 .value = line,
						 .value_len = (int32_t)strcspn(line, "\n")};
		if (tl_producer_send(producer, &rec) != TL_OK) /* copies; blocks when full */
			fprintf(stderr, "send: %s\n", tl_producer_last_error(producer));
		tl_producer_poll(producer, 0); /* runs delivery callbacks */
	}
	e = tl_producer_flush(producer, 30000);
	tl_producer_destroy(producer);
	return e == TL_OK ? 0 : 1;
}
