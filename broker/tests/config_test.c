/* config_test.c - tallyd configuration: Kafka keys, precedence, clear errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "broker/config.h"
#include "common/tests/check_run.h"

static struct tl_config config;
static char why[512];

static void setup(void)
{
	tl_config_defaults(&config);
	why[0] = '\0';
}

static tl_err load_text(const char *text)
{
	char path[] = "/tmp/tally-config-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	tl_err err = tl_config_load_file(&config, path, why, sizeof(why));
	unlink(path);
	if (err == TL_OK)
		err = tl_config_finish(&config, why, sizeof(why));
	return err;
}

START_TEST(defaults_are_kafkas)
{
	ck_assert_int_eq(tl_config_finish(&config, why, sizeof(why)), TL_OK);
	ck_assert_int_eq(config.num_partitions, 1);
	ck_assert_int_eq(config.message_max_bytes, 1048588);
	ck_assert_int_eq(config.socket_request_max_bytes, 104857600);
	ck_assert_int_eq(config.log.segment_bytes, 1073741824);
	ck_assert_int_eq(config.log.retention_ms, 168LL * 3600 * 1000);
	ck_assert_int_eq(config.log.index_interval_bytes, 4096);
	ck_assert(config.auto_create_topics_enable);
}
END_TEST

START_TEST(unknown_key_names_it_and_suggests_the_closest)
{
	ck_assert_int_eq(tl_config_set(&config, "log.segmnt.bytes", "100", why, sizeof(why)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "log.segmnt.bytes"));
	ck_assert_ptr_nonnull(strstr(why, "did you mean \"log.segment.bytes\""));
}
END_TEST

START_TEST(bad_values_are_start_up_errors_that_name_the_key)
{
	ck_assert_int_eq(tl_config_set(&config, "num.partitions", "zero", why, sizeof(why)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "num.partitions"));
	ck_assert_int_eq(tl_config_set(&config, "num.partitions", "0", why, sizeof(why)),
			 TL_ERR_INVALID);
	ck_assert_int_eq(
		tl_config_set(&config, "auto.create.topics.enable", "yes", why, sizeof(why)),
		TL_ERR_INVALID);
	ck_assert_int_eq(load_text("listeners=SSL://1.2.3.4:9093\n"), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "ssl.keystore.location"));
}
END_TEST

START_TEST(retention_ms_beats_minutes_beats_hours_whatever_the_order)
{
	ck_assert_int_eq(load_text("log.retention.ms=1234\nlog.retention.hours=1\n"
				   "log.retention.minutes=2\n"),
			 TL_OK);
	ck_assert_int_eq(config.log.retention_ms, 1234);
	setup();
	ck_assert_int_eq(load_text("log.retention.hours=1\nlog.retention.minutes=2\n"), TL_OK);
	ck_assert_int_eq(config.log.retention_ms, 120000);
	setup();
	ck_assert_int_eq(load_text("log.retention.hours=-1\n"), TL_OK);
	ck_assert_int_eq(config.log.retention_ms, -1);
	setup();
	ck_assert_int_eq(load_text("log.roll.hours=2\n"), TL_OK);
	ck_assert_int_eq(config.log.segment_ms, 7200000);
}
END_TEST

START_TEST(properties_syntax_comments_and_colons)
{
	ck_assert_int_eq(load_text("# comment\n! also a comment\n\n  num.partitions : 7 \n"
				   "listeners=PLAINTEXT://127.0.0.1:0\n"),
			 TL_OK);
	ck_assert_int_eq(config.num_partitions, 7);
	ck_assert_int_eq(tl_config_finish(&config, why, sizeof(why)), TL_OK);
	ck_assert_int_eq(config.listener_count, 1);
	ck_assert_str_eq(config.listener_list[0].host, "127.0.0.1");
	ck_assert_int_eq(config.listener_list[0].port, 0);
}
END_TEST

START_TEST(kafka_keys_tally_does_not_use_are_accepted_and_remembered)
{
	ck_assert_int_eq(load_text("num.network.threads=3\nzookeeper.connect=localhost:2181\n"
				   "listener.name.sasl_ssl.max.connections=100\n"),
			 TL_OK);
	int index = tl_config_kafka_key_index("zookeeper.connect");
	ck_assert_int_ge(index, 0);
	ck_assert(config.kafka_keys_ignored[index / 64] >> (index % 64) & 1);
	index = tl_config_kafka_key_index("num.io.threads");
	ck_assert(!(config.kafka_keys_ignored[index / 64] >> (index % 64) & 1));
	ck_assert_int_eq(config.listener_prefixed_ignored, 1);
	/* A per-listener security key is refused, not ignored: the listener would run
	 * weaker than written. */
	setup();
	ck_assert_int_eq(tl_config_set(&config, "listener.name.sasl_ssl.ssl.cipher.suites", "x",
				       why, sizeof(why)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "per-listener security settings are not supported"));
	/* Sorted for bsearch: every name is found at its own index. */
	for (int i = 0; i < tl_config_kafka_key_count(); i++)
		ck_assert_int_eq(tl_config_kafka_key_index(tl_config_kafka_key_name(i)), i);
	/* Neither Kafka's nor Tally's: refused, and the hint may be a Kafka key. */
	setup();
	ck_assert_int_eq(tl_config_set(&config, "num.netwrk.threads", "3", why, sizeof(why)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "did you mean \"num.network.threads\""));
}
END_TEST

START_TEST(several_listeners_parse_and_one_plaintext_is_served)
{
	ck_assert_int_eq(load_text("listeners=PLAINTEXT://:9092,CONTROLLER://:9093, "
				   "SSL://[::1]:9094\n"
				   "controller.listener.names=CONTROLLER\n"
				   "listener.security.protocol.map=CONTROLLER:PLAINTEXT,"
				   "PLAINTEXT:PLAINTEXT,SSL:SSL\n"
				   "ssl.keystore.location=/k.pem\n"
				   "advertised.listeners=PLAINTEXT://localhost:9192\n"),
			 TL_OK);
	ck_assert_int_eq(config.listener_count, 3);
	ck_assert_int_eq(config.listener_served, 0);
	ck_assert_str_eq(config.listener_list[0].host, "");
	ck_assert_str_eq(config.listener_list[1].name, "CONTROLLER");
	ck_assert_int_eq(config.listener_list[1].port, 9093);
	ck_assert_str_eq(config.listener_list[2].host, "::1");
	ck_assert_str_eq(config.listener_list[2].protocol, "SSL");
	ck_assert(config.has_advertised);
	ck_assert_str_eq(config.advertised.host, "localhost");
	ck_assert_int_eq(config.advertised.port, 9192);

	/* The controller listener first: the PLAINTEXT one is still the served one. */
	setup();
	ck_assert_int_eq(load_text("listeners=CONTROLLER://:9093,PLAINTEXT://127.0.0.1:0\n"
				   "controller.listener.names=CONTROLLER\n"
				   "listener.security.protocol.map=CONTROLLER:PLAINTEXT,"
				   "PLAINTEXT:PLAINTEXT\n"),
			 TL_OK);
	ck_assert_int_eq(config.listener_served, 1);

	/* Only SSL: served, but it needs a keystore. */
	setup();
	ck_assert_int_eq(load_text("listeners=SSL://:9093\n"), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "ssl.keystore.location"));
	setup();
	ck_assert_int_eq(load_text("listeners=SSL://:9093\nssl.keystore.location=/k.pem\n"), TL_OK);
	ck_assert_int_eq(config.listener_served, 0);
	ck_assert(config.has_tls_listener);
	ck_assert_int_eq(config.listener_list[0].security_protocol, TL_SECURITY_SSL);
	setup();
	ck_assert_int_eq(load_text("listeners=SSL://:9093\nssl.keystore.location=/k.pem\n"
				   "ssl.client.auth=required\n"),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "ssl.truststore.location"));
	setup();
	ck_assert_int_eq(load_text("listeners=SSL://:9093\nssl.keystore.location=/k.pem\n"
				   "ssl.enabled.protocols=TLSv1.1\n"),
			 TL_ERR_INVALID);

	/* SASL_PLAINTEXT is served (issue #16), with the mechanisms it enables. */
	setup();
	ck_assert_int_eq(load_text("listeners=SASL_PLAINTEXT://:9094\n"), TL_OK);
	ck_assert_str_eq(config.listener_list[config.listener_served].protocol, "SASL_PLAINTEXT");
	ck_assert_uint_eq(config.sasl_mechanisms,
			  TL_SASL_MECHANISM_SCRAM_SHA_256 | TL_SASL_MECHANISM_SCRAM_SHA_512);
	setup();
	ck_assert_int_eq(load_text("listeners=SASL_PLAINTEXT://:9094\n"
				   "sasl.enabled.mechanisms=PLAIN, SCRAM-SHA-512\n"),
			 TL_OK);
	ck_assert_uint_eq(config.sasl_mechanisms,
			  TL_SASL_MECHANISM_PLAIN | TL_SASL_MECHANISM_SCRAM_SHA_512);
	setup();
	ck_assert_int_eq(load_text("sasl.enabled.mechanisms=GSSAPI\n"), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "\"GSSAPI\" is not supported"));

	/* Several listeners, each with its advertised address; the PLAINTEXT one is the
	 * inter-broker listener wherever it stands. */
	setup();
	ck_assert_int_eq(load_text("listeners=SSL://:9093,PLAINTEXT://127.0.0.1:9092\n"
				   "ssl.keystore.location=/k.pem\n"
				   "advertised.listeners=SSL://tls.example:19093\n"),
			 TL_OK);
	ck_assert_int_eq(config.listener_served, 1);
	ck_assert(config.listener_list[0].served && config.listener_list[1].served);
	ck_assert(config.listener_list[0].has_advertised);
	ck_assert_str_eq(config.listener_list[0].advertised_host, "tls.example");
	ck_assert_int_eq(config.listener_list[0].advertised_port, 19093);
	ck_assert(!config.listener_list[1].has_advertised);
	ck_assert(!config.has_advertised);
	setup();
	ck_assert_int_eq(load_text("listeners=PLAINTEXT://:1,PLAINTEXT://:2\n"), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "twice"));
	setup();
	ck_assert_int_eq(load_text("listeners=INTERNAL://:1\n"), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "no security protocol"));
	setup();
	ck_assert_int_eq(load_text("listeners=PLAINTEXT://:1\nadvertised.listeners=SSL://h:2\n"),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "not in listeners"));
	setup();
	ck_assert_int_eq(load_text("listeners=PLAINTEXT://host\n"), TL_ERR_INVALID);
}
END_TEST

/* Issue #16: the inter-broker listener may be TLS or SASL; a SASL one needs the broker's
 * own login, and security.inter.broker.protocol names the listener as Kafka does. */
START_TEST(inter_broker_security_keys_are_checked_at_start)
{
	const char *base = "metadata.etcd.endpoints=http://127.0.0.1:2379\n"
			   "listeners=PLAINTEXT://:9092,SASL_SSL://:9093\n"
			   "ssl.keystore.location=/k.pem\n"
			   "inter.broker.listener.name=SASL_SSL\n";
	char text[1024];
	ck_assert_int_eq(load_text(base), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "sasl.mechanism.inter.broker.protocol"));
	setup();
	snprintf(text, sizeof(text), "%ssasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n",
		 base);
	ck_assert_int_eq(load_text(text), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "inter.broker.sasl.username"));
	setup();
	snprintf(text, sizeof(text),
		 "%ssasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n"
		 "inter.broker.sasl.username=broker\ninter.broker.sasl.password=pw\n",
		 base);
	ck_assert_int_eq(load_text(text), TL_OK);
	ck_assert_str_eq(config.listener_list[config.listener_served].name, "SASL_SSL");
	ck_assert_str_eq(config.ssl_endpoint_identification_algorithm, "https");

	/* Kafka's older key: the listener named after the protocol; not with the new one. */
	setup();
	ck_assert_int_eq(load_text("listeners=PLAINTEXT://:9092,SSL://:9093\n"
				   "ssl.keystore.location=/k.pem\n"
				   "security.inter.broker.protocol=SSL\n"),
			 TL_OK);
	ck_assert_int_eq(config.listener_served, 1);
	setup();
	ck_assert_int_eq(load_text("listeners=PLAINTEXT://:9092,SSL://:9093\n"
				   "ssl.keystore.location=/k.pem\n"
				   "security.inter.broker.protocol=SSL\n"
				   "inter.broker.listener.name=PLAINTEXT\n"),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "only one of"));
}
END_TEST

/* Issue #16: Kafka's JAAS text for the broker's own login (sasl.jaas.config). */
START_TEST(jaas_text_parses_quotes_escapes_and_refuses_bad_syntax)
{
	struct tl_jaas_login login;
	ck_assert_int_eq(
		tl_config_jaas_parse(
			"org.apache.kafka.common.security.scram.ScramLoginModule required\n"
			"  username=\"broker\" password=\"p w\\\"q\\\\r;=\" user_alice=\"x\";  ",
			&login, why, sizeof(why)),
		TL_OK);
	ck_assert_str_eq(login.module, "org.apache.kafka.common.security.scram.ScramLoginModule");
	ck_assert_str_eq(login.username, "broker");
	ck_assert_str_eq(login.password, "p w\"q\\r;=");
	/* Bare words as values, any case of the flag, no options at all. */
	ck_assert_int_eq(
		tl_config_jaas_parse("org.apache.kafka.common.security.plain.PlainLoginModule "
				     "REQUIRED username=bob password=s3cret-x;",
				     &login, why, sizeof(why)),
		TL_OK);
	ck_assert_str_eq(login.password, "s3cret-x");
	ck_assert_int_eq(tl_config_jaas_parse("a.B optional;", &login, why, sizeof(why)), TL_OK);
	ck_assert(!login.has_username && !login.has_password);

	struct {
		const char *text;
		const char *why;
	} bad[] = {
		{"org.x.M required username=\"u\" password=\"secret-1\"", "missing ';'"},
		{"org.x.M required username=\"u\" password=\"secret-1;", "no closing"},
		{"org.x.M username=\"u\";", "control flag"},
		{"org.x.M required username \"u\";", "has no '='"},
		{"org.x.M required username=;", "has no value"},
		{"org.x.M required password=\"secret-1\"; org.y.N required;", "one login module"},
		{"", "no login module"},
		{"\"org.x.M\" required;", "class name"},
		{"org.x.M required username=\"u\\", "lone"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		ck_assert_int_eq(tl_config_jaas_parse(bad[i].text, &login, why, sizeof(why)),
				 TL_ERR_INVALID);
		ck_assert_msg(strstr(why, bad[i].why), "case %zu: \"%s\" lacks \"%s\"", i, why,
			      bad[i].why);
		ck_assert_msg(!strstr(why, "secret-1"), "case %zu printed the password: %s", i,
			      why);
	}
}
END_TEST

/* The inter-broker login from listener.name.<l>.<mech>.sasl.jaas.config or
 * sasl.jaas.config, instead of (or agreeing with) inter.broker.sasl.*. */
START_TEST(inter_broker_login_from_jaas)
{
	const char *base = "metadata.etcd.endpoints=http://127.0.0.1:2379\n"
			   "listeners=PLAINTEXT://:9092,SASL_SSL://:9093\n"
			   "ssl.keystore.location=/k.pem\n"
			   "inter.broker.listener.name=SASL_SSL\n"
			   "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n";
	const char *scram = "org.apache.kafka.common.security.scram.ScramLoginModule required "
			    "username=\"broker\" password=\"pw-1\";";
	char text[2048];
	snprintf(text, sizeof(text), "%slistener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=%s\n",
		 base, scram);
	ck_assert_int_eq(load_text(text), TL_OK);
	ck_assert_str_eq(config.inter_broker_sasl_username, "broker");
	ck_assert_str_eq(config.inter_broker_sasl_password, "pw-1");
	ck_assert_int_eq(config.listener_prefixed_ignored, 0);
	/* The listener's entry beats sasl.jaas.config; another listener's is not used. */
	setup();
	snprintf(text, sizeof(text),
		 "%ssasl.jaas.config=%s\n"
		 "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
		 "org.apache.kafka.common.security.scram.ScramLoginModule required "
		 "username=\"b2\" password=\"pw-2\";\n"
		 "listener.name.plaintext.scram-sha-512.sasl.jaas.config="
		 "org.apache.kafka.common.security.scram.ScramLoginModule required "
		 "username=\"b3\" password=\"pw-3\";\n",
		 base, scram);
	ck_assert_int_eq(load_text(text), TL_OK);
	ck_assert_str_eq(config.inter_broker_sasl_username, "b2");
	setup();
	snprintf(text, sizeof(text), "%ssasl.jaas.config=%s\n", base, scram);
	ck_assert_int_eq(load_text(text), TL_OK);
	ck_assert_str_eq(config.inter_broker_sasl_username, "broker");
	/* Both ways given: they must agree. */
	setup();
	snprintf(text, sizeof(text),
		 "%ssasl.jaas.config=%s\ninter.broker.sasl.username=broker\n"
		 "inter.broker.sasl.password=pw-1\n",
		 base, scram);
	ck_assert_int_eq(load_text(text), TL_OK);
	setup();
	snprintf(text, sizeof(text), "%ssasl.jaas.config=%s\ninter.broker.sasl.username=other\n",
		 base, scram);
	ck_assert_int_eq(load_text(text), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "disagree on the user"));
	setup();
	snprintf(text, sizeof(text), "%ssasl.jaas.config=%s\ninter.broker.sasl.password=pw-other\n",
		 base, scram);
	ck_assert_int_eq(load_text(text), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "disagree on the password"));
	ck_assert(!strstr(why, "pw-1") && !strstr(why, "pw-other"));
	/* The module must fit the mechanism; a syntax error names the key. */
	setup();
	snprintf(text, sizeof(text),
		 "%ssasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
		 "required username=\"broker\" password=\"pw-1\";\n",
		 base);
	ck_assert_int_eq(load_text(text), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "does not log in with SCRAM-SHA-512"));
	setup();
	snprintf(text, sizeof(text),
		 "%slistener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
		 "org.apache.kafka.common.security.scram.ScramLoginModule required "
		 "username=\"broker\" password=\"pw-1\"\n",
		 base);
	ck_assert_int_eq(load_text(text), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"));
	ck_assert_ptr_nonnull(strstr(why, "missing ';'"));
	ck_assert(!strstr(why, "pw-1"));
	/* Written as Kafka's documentation does, over lines ending in '\'. */
	setup();
	snprintf(text, sizeof(text),
		 "%slistener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
		 "org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
		 "    username=\"broker\" \\\r\n"
		 "\tpassword=\"pw-\\\\1\";\n"
		 "log.retention.hours=5\n",
		 base);
	ck_assert_int_eq(load_text(text), TL_OK);
	ck_assert_str_eq(config.inter_broker_sasl_username, "broker");
	ck_assert_str_eq(config.inter_broker_sasl_password,
			 "pw-\\1"); /* JAAS unescaped it; Java properties would first */
	setup();
	snprintf(text, sizeof(text), "%ssasl.jaas.config=x \\\n", base);
	ck_assert_int_eq(load_text(text), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "no line after it"));
	/* Neither way: the message names both. */
	setup();
	ck_assert_int_eq(load_text(base), TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"));
}
END_TEST

START_TEST(test_fault_switch_is_refused_without_the_environment)
{
	unsetenv("TALLY_TEST_FAULTS");
	ck_assert_int_eq(tl_config_set(&config, "test.fault.drop.produce.response.ratio", "0.01",
				       why, sizeof(why)),
			 TL_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "TALLY_TEST_FAULTS"));
	setenv("TALLY_TEST_FAULTS", "1", 1);
	ck_assert_int_eq(tl_config_set(&config, "test.fault.drop.produce.response.ratio", "0.01",
				       why, sizeof(why)),
			 TL_OK);
	unsetenv("TALLY_TEST_FAULTS");
	/* The chaos harness's switches in log/ likewise. */
	ck_assert_int_eq(tl_config_set(&config, "test.fault.dedupe.off", "true", why, sizeof(why)),
			 TL_ERR_INVALID);
	ck_assert_int_eq(
		tl_config_set(&config, "test.fault.fdatasync.fail.after", "3", why, sizeof(why)),
		TL_ERR_INVALID);
	setenv("TALLY_TEST_FAULTS", "1", 1);
	ck_assert_int_eq(tl_config_set(&config, "test.fault.dedupe.off", "true", why, sizeof(why)),
			 TL_OK);
	ck_assert_int_eq(
		tl_config_set(&config, "test.fault.fdatasync.fail.after", "3", why, sizeof(why)),
		TL_OK);
	ck_assert(config.log.test_dedupe_off);
	ck_assert_int_eq(config.log.test_fdatasync_fail_after, 3);
	unsetenv("TALLY_TEST_FAULTS");
}
END_TEST

START_TEST(topic_configs_validate_and_remember_what_was_set)
{
	struct tl_topic_config topic;
	tl_topic_config_from_broker(&topic, &config);
	ck_assert_int_eq(tl_topic_config_set(&topic, "retention.ms", "60000", why, sizeof(why)),
			 TL_OK);
	ck_assert_int_eq(topic.log.retention_ms, 60000);
	ck_assert_int_eq(tl_topic_config_set(&topic, "retention.mss", "1", why, sizeof(why)),
			 TL_ERR_INVALID_CONFIG);
	ck_assert_ptr_nonnull(strstr(why, "retention.ms"));
	ck_assert_int_eq(tl_topic_config_set(&topic, "cleanup.policy", "archive", why, sizeof(why)),
			 TL_ERR_INVALID_CONFIG);
	int set = 0;
	for (int i = 0; i < tl_topic_config_key_count(); i++)
		set += tl_topic_config_key_is_set(&topic, i);
	ck_assert_int_eq(set, 1);
	/* Compaction (issue 17): both policies, either order, and the cleaner's keys. */
	ck_assert(!topic.log.cleanup_compact);
	ck_assert_int_eq(
		tl_topic_config_set(&topic, "cleanup.policy", "delete,compact", why, sizeof(why)),
		TL_OK);
	ck_assert(topic.log.cleanup_compact);
	ck_assert(topic.log.cleanup_delete);
	ck_assert_str_eq(topic.cleanup_policy, "compact,delete");
	ck_assert_int_eq(tl_topic_config_set(&topic, "cleanup.policy", "compact", why, sizeof(why)),
			 TL_OK);
	ck_assert(!topic.log.cleanup_delete);
	ck_assert_int_eq(
		tl_topic_config_set(&topic, "min.cleanable.dirty.ratio", "0.25", why, sizeof(why)),
		TL_OK);
	ck_assert(topic.log.min_cleanable_dirty_ratio == 0.25);
	ck_assert_int_eq(
		tl_topic_config_set(&topic, "min.cleanable.dirty.ratio", "1.5", why, sizeof(why)),
		TL_ERR_INVALID_CONFIG);
	ck_assert_int_eq(tl_topic_config_set(&topic, "delete.retention.ms", "0", why, sizeof(why)),
			 TL_OK);
	ck_assert_int_eq(topic.log.delete_retention_ms, 0);
	ck_assert_int_eq(
		tl_topic_config_set(&topic, "min.compaction.lag.ms", "5", why, sizeof(why)), TL_OK);
	ck_assert_int_eq(
		tl_topic_config_set(&topic, "max.compaction.lag.ms", "0", why, sizeof(why)),
		TL_ERR_INVALID_CONFIG);
	char value[64];
	for (int i = 0; i < tl_topic_config_key_count(); i++)
		if (strcmp(tl_topic_config_key_name(i), "min.cleanable.dirty.ratio") == 0) {
			tl_topic_config_key_value(&topic, i, value, sizeof(value));
			ck_assert_str_eq(value, "0.25");
			ck_assert_str_eq(tl_topic_config_key_synonyms(i)[0],
					 "log.cleaner.min.cleanable.ratio");
		}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("broker_config");
	TCase *tc = tcase_create("config");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, defaults_are_kafkas);
	tcase_add_test(tc, unknown_key_names_it_and_suggests_the_closest);
	tcase_add_test(tc, bad_values_are_start_up_errors_that_name_the_key);
	tcase_add_test(tc, retention_ms_beats_minutes_beats_hours_whatever_the_order);
	tcase_add_test(tc, properties_syntax_comments_and_colons);
	tcase_add_test(tc, test_fault_switch_is_refused_without_the_environment);
	tcase_add_test(tc, kafka_keys_tally_does_not_use_are_accepted_and_remembered);
	tcase_add_test(tc, several_listeners_parse_and_one_plaintext_is_served);
	tcase_add_test(tc, inter_broker_security_keys_are_checked_at_start);
	tcase_add_test(tc, jaas_text_parses_quotes_escapes_and_refuses_bad_syntax);
	tcase_add_test(tc, inter_broker_login_from_jaas);
	tcase_add_test(tc, topic_configs_validate_and_remember_what_was_set);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
