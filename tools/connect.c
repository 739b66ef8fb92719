/* connect.c - connecting to the cluster, and turning failures into messages that name
 * the fix: the bootstrap address that does not answer, an advertised listener that
 * cannot be reached, a topic that does not exist. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/time.h"
#include "tally/consumer.h"
#include "tally/producer.h"

static const char *const admin_keys[] = {"bootstrap.servers",
					 "client.id",
					 "request.timeout.ms",
					 "reconnect.backoff.ms",
					 "security.protocol",
					 "ssl.ca.location",
					 "ssl.certificate.location",
					 "ssl.key.location",
					 "ssl.key.password",
					 "enable.ssl.certificate.verification",
					 "sasl.mechanisms",
					 "sasl.mechanism",
					 "sasl.username",
					 "sasl.password"};

static bool is_admin_key(const char *key)
{
	for (size_t i = 0; i < sizeof(admin_keys) / sizeof(admin_keys[0]); i++)
		if (strcmp(admin_keys[i], key) == 0)
			return true;
	return false;
}

/* True when the producer or the consumer accepts @key=@value; else the consumer's
 * message (which names the closest known key) is in @errstr. */
static bool client_key_known(const char *key, const char *value, char *errstr, size_t size)
{
	struct tl_producer_conf *pc = tl_producer_conf_create();
	struct tl_consumer_conf *cc = tl_consumer_conf_create();
	char producer_why[512] = "";
	bool known = (pc && tl_producer_conf_set(pc, key, value, producer_why,
						 sizeof(producer_why)) == TL_OK) ||
		     (cc && tl_consumer_conf_set(cc, key, value, errstr, size) == TL_OK);
	/* Of the two refusals, the one with a suggestion helps more. */
	if (!known && strstr(producer_why, "did you mean") && !strstr(errstr, "did you mean"))
		snprintf(errstr, size, "%s", producer_why);
	tl_producer_conf_destroy(pc);
	tl_consumer_conf_destroy(cc);
	return known;
}

tl_err cli_admin_create(const struct cli *cli, bool auto_create, struct tl_admin **out)
{
	char errstr[512];
	char timeout[32];
	snprintf(timeout, sizeof(timeout), "%d", cli->timeout_ms);
	struct tl_admin_conf *conf = tl_admin_conf_create();
	if (!conf) {
		cli_error(cli, "out of memory");
		return TL_ERR_NOMEM;
	}
	tl_err err =
		tl_admin_conf_set(conf, "bootstrap.servers", cli->brokers, errstr, sizeof(errstr));
	if (err == TL_OK)
		err = tl_admin_conf_set(conf, "client.id", "tally", errstr, sizeof(errstr));
	if (err == TL_OK)
		err = tl_admin_conf_set(conf, "request.timeout.ms", timeout, errstr,
					sizeof(errstr));
	if (err == TL_OK)
		err = tl_admin_conf_set(conf, "reconnect.backoff.ms", "100", errstr,
					sizeof(errstr));
	if (err == TL_OK && auto_create)
		err = tl_admin_conf_set(conf, "allow.auto.create.topics", "true", errstr,
					sizeof(errstr));
	/* -X keys of the producer or consumer are theirs; the admin takes only its own, and
	 * refuses a key that no client knows. */
	for (int32_t i = 0; err == TL_OK && i < cli->conf_count; i++)
		if (is_admin_key(cli->conf[i].key))
			err = tl_admin_conf_set(conf, cli->conf[i].key, cli->conf[i].value, errstr,
						sizeof(errstr));
		else if (!client_key_known(cli->conf[i].key, cli->conf[i].value, errstr,
					   sizeof(errstr)))
			err = TL_ERR_INVALID;
	if (err == TL_OK)
		err = tl_admin_create(conf, out, errstr, sizeof(errstr));
	tl_admin_conf_destroy(conf);
	if (err != TL_OK)
		cli_error(cli, "%s", errstr);
	return err;
}

/* The connection failure inside an admin detail such as "Metadata: no broker answered in
 * time: 127.0.0.1:9092: Connection refused; check bootstrap.servers", into @out. */
static void connect_detail(const char *detail, char *out, size_t size)
{
	const char *at = strstr(detail, "answered in time: ");
	at = at ? at + strlen("answered in time: ") : detail;
	const char *end = strstr(at, "; check bootstrap.servers");
	int len = end ? (int)(end - at) : (int)strlen(at);
	snprintf(out, size, "%.*s", len, at);
}

int cli_admin_fail(const struct cli *cli, struct tl_admin *admin, tl_err err, const char *what)
{
	const char *detail = admin ? tl_admin_last_error(admin) : "";
	int rc = cli_exit_for(err);
	/* The broker answered, but the cluster has no leader or coordinator for this yet
	 * (being elected, or the broker cannot vouch for its view): not a connection
	 * problem, and retrying later is the remedy. */
	if (err == TL_ERR_COORDINATOR_NOT_AVAILABLE || err == TL_ERR_LEADER_NOT_AVAILABLE) {
		cli_error(cli,
			  "%s: %s (still so after %d ms); the brokers answer, so retry later or "
			  "see their logs",
			  what, detail[0] ? detail : tl_err_message(err), cli->timeout_ms);
		return rc;
	}
	if (rc == CLI_EXIT_UNREACHABLE) {
		char conn[512];
		connect_detail(detail, conn, sizeof(conn));
		cli_error(
			cli,
			"cannot reach the broker at %s within %d ms (%s): %s; is it running? -b or TALLY_BROKERS selects the address",
			cli->brokers, cli->timeout_ms, what, conn[0] ? conn : tl_err_name(err));
		return rc;
	}
	if (err == TL_ERR_UNSUPPORTED_VERSION) {
		cli_error(cli, "%s: %s", what, detail[0] ? detail : "not supported by this broker");
		return CLI_EXIT_ERROR;
	}
	cli_error(cli, "%s: %s", what, detail[0] ? detail : tl_err_message(err));
	return rc;
}

/* True when @host:@port is one of the bootstrap addresses. */
static bool is_bootstrap(const struct cli *cli, const char *host, int32_t port)
{
	char want[300];
	snprintf(want, sizeof(want), "%s:%d", host, port);
	const char *p = cli->brokers;
	size_t want_len = strlen(want);
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == want_len && strncmp(p, want, len) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

static int remaining_ms(int64_t deadline_ns)
{
	int64_t left = (deadline_ns - tl_mono_ns()) / 1000000;
	return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

int cli_check_cluster(const struct cli *cli, struct tl_admin *admin)
{
	int64_t deadline = tl_mono_ns() + (int64_t)cli->timeout_ms * 1000000;
	struct tl_admin_cluster *cluster;
	tl_err err = tl_admin_describe_cluster(admin, &cluster, cli->timeout_ms);
	if (err != TL_OK)
		return cli_admin_fail(cli, admin, err, "Metadata");
	int rc = CLI_EXIT_OK;
	for (int32_t i = 0; i < cluster->broker_count && rc == CLI_EXIT_OK; i++) {
		const struct tl_admin_broker *b = &cluster->brokers[i];
		err = tl_admin_probe_broker(admin, b->node_id, remaining_ms(deadline));
		if (err == TL_OK)
			continue;
		const char *detail = tl_admin_last_error(admin);
		if (is_bootstrap(cli, b->host, b->port))
			cli_error(cli, "broker %d at %s:%d does not answer: %s", b->node_id,
				  b->host, b->port, detail);
		else
			cli_error(
				cli,
				"connected to %s, but broker %d advertises itself as %s:%d, which cannot be reached from here (%s); set the broker's advertised.listeners to an address clients can connect to, e.g. tallyd --override advertised.listeners=PLAINTEXT://HOST:PORT",
				cli->brokers, b->node_id, b->host, b->port, detail);
		rc = CLI_EXIT_UNREACHABLE;
	}
	tl_admin_cluster_destroy(cluster);
	return rc;
}

int cli_describe_topics(const struct cli *cli, struct tl_admin *admin, const char *const *topics,
			int32_t count, bool missing_ok, bool *missing_out,
			struct tl_admin_topics **out)
{
	int64_t deadline = tl_mono_ns() + (int64_t)cli->timeout_ms * 1000000;
	for (;;) {
		struct tl_admin_topics *result;
		tl_err err = tl_admin_describe_topics(admin, topics, count, &result,
						      remaining_ms(deadline));
		if (err != TL_OK)
			return cli_admin_fail(cli, admin, err, "Metadata");
		bool retry = false;
		int rc = CLI_EXIT_OK;
		for (int32_t i = 0; i < count && rc == CLI_EXIT_OK; i++) {
			const struct tl_admin_topic_info *t =
				i < result->count ? &result->topics[i] : NULL;
			tl_err terr = t ? t->err : TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (missing_out)
				missing_out[i] = terr == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (terr == TL_ERR_LEADER_NOT_AVAILABLE && tl_mono_ns() < deadline) {
				retry = true; /* just created; its partitions come up */
			} else if (terr == TL_ERR_UNKNOWN_TOPIC_OR_PARTITION && !missing_ok) {
				cli_error(
					cli,
					"topic \"%s\" does not exist; `tally topic list` shows the topics, `tally topic create %s` creates it",
					topics[i], topics[i]);
				rc = CLI_EXIT_NOT_FOUND;
			} else if (terr == TL_ERR_INVALID_TOPIC_EXCEPTION) {
				cli_error(
					cli,
					"\"%s\" is not a valid topic name: use letters, digits, '.', '_' and '-', at most 249 characters",
					topics[i]);
				rc = CLI_EXIT_USAGE;
			} else if (terr != TL_OK && terr != TL_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
				cli_error(cli, "topic \"%s\": %s", topics[i], tl_err_message(terr));
				rc = cli_exit_for(terr);
			}
		}
		if (rc != CLI_EXIT_OK || !retry) {
			if (rc != CLI_EXIT_OK)
				tl_admin_topics_destroy(result);
			else
				*out = result;
			return rc;
		}
		tl_admin_topics_destroy(result);
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
}
