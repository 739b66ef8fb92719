/* request_test.c - the request table of the client core (client/request.c): every API
 * key the producer's transactions and the admin client send has a row, and a row's
 * request goes out and comes back decoded, blocking and with a callback, against the
 * scripted fake broker (client/tests/fake_broker.h); a try (tl_client_rpc_try, the admin
 * client's) ends at once when connecting fails, and at its own bound when the broker
 * never answers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "client/client.h"
#include "client/tests/fake_broker.h"
#include "common/tests/check_run.h"
#include "common/time.h"

#define TEST_ARENA_MAX (1u << 20)

static struct fake_broker fb;
static struct tl_client *client;

static char bootstrap[64];

/* A client of the fake broker; @sasl_mechanism NULL: plaintext, else SASL with it. */
static struct tl_client *client_of_fake(const char *sasl_mechanism)
{
	fake_broker_address(&fb, bootstrap, sizeof(bootstrap));
	struct tl_client_conf conf = {
		.bootstrap_servers = bootstrap,
		.client_id = "request_test",
		.request_timeout_ms = 5000,
		.reconnect_backoff_ms = 50,
		.metadata_max_age_ms = 300000,
		.allow_auto_create_topics = false,
		.security_protocol = sasl_mechanism ? "sasl_plaintext" : NULL,
		.sasl_mechanism = sasl_mechanism,
		.sasl_username = "u",
		.sasl_password = "p",
	};
	char errstr[256];
	struct tl_client *c;
	ck_assert_int_eq(tl_client_create(&conf, &c, errstr, sizeof(errstr)), TL_OK);
	return c;
}

static void setup(void)
{
	fake_broker_start(&fb, 1);
	client = client_of_fake(NULL);
}

static void teardown(void)
{
	tl_client_destroy(client);
	fake_broker_stop(&fb);
}

/* A READY node, after polling for up to 5 s. */
static int32_t ready_node(void)
{
	int64_t deadline = tl_mono_ns() + 5000 * 1000000LL;
	for (;;) {
		int32_t node = tl_client_any_ready_node(client);
		if (node != TL_CLIENT_NODE_ANY)
			return node;
		ck_assert(tl_mono_ns() < deadline);
		tl_client_poll(client, 20);
	}
}

/* ---- the table ---- */

START_TEST(every_api_key_the_clients_send_has_a_row)
{
	static const int16_t keys[] = {
		TL_CLIENT_API_LIST_OFFSETS,
		TL_CLIENT_API_METADATA,
		TL_CLIENT_API_OFFSET_COMMIT,
		TL_CLIENT_API_OFFSET_FETCH,
		TL_CLIENT_API_FIND_COORDINATOR,
		TL_CLIENT_API_DESCRIBE_GROUPS,
		TL_CLIENT_API_LIST_GROUPS,
		TL_CLIENT_API_CREATE_TOPICS,
		TL_CLIENT_API_DELETE_TOPICS,
		TL_CLIENT_API_INIT_PRODUCER_ID,
		TL_CLIENT_API_ADD_PARTITIONS_TO_TXN,
		TL_CLIENT_API_ADD_OFFSETS_TO_TXN,
		TL_CLIENT_API_END_TXN,
		TL_CLIENT_API_WRITE_TXN_MARKERS,
		TL_CLIENT_API_TXN_OFFSET_COMMIT,
		TL_CLIENT_API_DELETE_RECORDS,
		TL_CLIENT_API_DESCRIBE_LOG_DIRS,
		TL_CLIENT_API_CREATE_PARTITIONS,
		TL_CLIENT_API_DELETE_GROUPS,
		TL_CLIENT_API_INCREMENTAL_ALTER_CONFIGS,
		TL_CLIENT_API_DESCRIBE_CLIENT_QUOTAS,
		TL_CLIENT_API_ALTER_CLIENT_QUOTAS,
		TL_CLIENT_API_DESCRIBE_PRODUCERS,
		TL_CLIENT_API_DESCRIBE_TRANSACTIONS,
		TL_CLIENT_API_LIST_TRANSACTIONS,
	};
	for (size_t i = 0; i < TL_ARRAY_SIZE(keys); i++) {
		const struct tl_client_rpc *rpc = tl_client_rpc_find(keys[i]);
		ck_assert_ptr_nonnull(rpc);
		ck_assert_int_eq(rpc->api_key, keys[i]);
		ck_assert(rpc->name && rpc->name[0]);
		ck_assert_ptr_nonnull(rpc->encode);
		ck_assert_ptr_nonnull(rpc->decode);
		ck_assert_uint_gt(rpc->response_bytes, 0);
	}
}
END_TEST

/* ---- blocking ---- */

START_TEST(a_blocking_call_leaves_the_response_and_its_strings_in_the_callers_arena)
{
	struct tl_find_coordinator_request req;
	tl_find_coordinator_request_defaults(&req);
	req.key = tl_str_of("g");
	struct tl_arena arena;
	tl_arena_init(&arena, TEST_ARENA_MAX);
	void *response = NULL;
	int16_t version = -1;
	ck_assert_int_eq(tl_client_rpc_call(client, TL_CLIENT_NODE_ANY,
					    tl_client_rpc_find(TL_CLIENT_API_FIND_COORDINATOR),
					    &req, 5000, &arena, &response, &version),
			 TL_OK);
	ck_assert_int_ge(version, 0);
	/* The host points into the response's bytes: they must still be there (ASan). */
	const struct tl_find_coordinator_response *resp = response;
	ck_assert_int_eq(resp->error_code, 0);
	ck_assert_int_eq(resp->node_id, 0);
	ck_assert_int_eq(resp->port, fb.port);
	ck_assert(tl_str_eq_c(resp->host, "127.0.0.1"));
	tl_arena_deinit(&arena);
}
END_TEST

/* ---- with a callback ---- */

struct send_result {
	int calls;
	tl_err err;
	int64_t producer_id;
	int16_t producer_epoch;
};

static void init_done(void *arg, tl_err err, const void *response)
{
	struct send_result *result = arg;
	result->calls++;
	result->err = err;
	if (err == TL_OK) {
		const struct tl_init_producer_id_response *resp = response;
		result->producer_id = resp->producer_id;
		result->producer_epoch = resp->producer_epoch;
	} else {
		ck_assert_ptr_null(response);
	}
}

START_TEST(a_callback_send_hands_the_decoded_response_to_the_callback_once)
{
	int32_t node = ready_node();
	struct tl_init_producer_id_request req;
	tl_init_producer_id_request_defaults(&req);
	req.transactional_id = tl_str_of("txn-1");
	req.transaction_timeout_ms = 60000;
	struct send_result result = {0, TL_ERR_UNKNOWN_SERVER_ERROR, -1, -1};
	ck_assert_int_eq(tl_client_rpc_send(client, node,
					    tl_client_rpc_find(TL_CLIENT_API_INIT_PRODUCER_ID),
					    &req, TEST_ARENA_MAX, init_done, &result),
			 TL_OK);
	int64_t deadline = tl_mono_ns() + 5000 * 1000000LL;
	while (result.calls == 0 && tl_mono_ns() < deadline)
		tl_client_poll(client, 20);
	tl_client_poll(client, 50);
	ck_assert_int_eq(result.calls, 1);
	ck_assert_int_eq(result.err, TL_OK);
	ck_assert_int_eq(result.producer_id, 42);
	ck_assert_int_eq(result.producer_epoch, 0);
	ck_assert_str_eq(fb.seen_transactional_id, "txn-1");
}
END_TEST

/* FindCoordinator's retries go round the brokers (a broker that cannot vouch for its
 * view answers COORDINATOR_NOT_AVAILABLE until it can): learned brokers in turn,
 * wrapping, never the bootstrap entry while one of them is READY. */
START_TEST(next_ready_node_goes_round_the_learned_brokers)
{
	(void)ready_node(); /* the bootstrap entry */
	for (int32_t id = 1; id <= 3; id++)
		ck_assert_int_eq(tl_client_broker_add(client, id, "127.0.0.1", 9, fb.port), TL_OK);
	int64_t deadline = tl_mono_ns() + 5000 * 1000000LL;
	while (!(tl_client_node_ready(client, 1) && tl_client_node_ready(client, 2) &&
		 tl_client_node_ready(client, 3))) {
		ck_assert(tl_mono_ns() < deadline);
		tl_client_poll(client, 20);
	}
	ck_assert_int_eq(tl_client_next_ready_node(client, TL_CLIENT_NODE_ANY), 1);
	ck_assert_int_eq(tl_client_next_ready_node(client, 1), 2);
	ck_assert_int_eq(tl_client_next_ready_node(client, 2), 3);
	ck_assert_int_eq(tl_client_next_ready_node(client, 3), 1);
	ck_assert_int_eq(tl_client_next_ready_node(client, 77), 1); /* unknown: from the start */
}
END_TEST

/* KIP-368: a SASL connection re-authenticates before each 600 ms session ends, and the
 * node stays usable throughout: sends during the drain and the login are held and go
 * out after it (none refused, each answered once), so callers never see it not ready. */
static void count_done(void *arg, tl_err err, const void *response)
{
	(void)response;
	ck_assert_int_eq(err, TL_OK);
	(*(int *)arg)++;
}

START_TEST(a_node_that_re_authenticates_stays_usable_and_answers_every_request)
{
	pthread_mutex_lock(&fb.lock);
	fb.sasl_lifetime_ms = 600;
	pthread_mutex_unlock(&fb.lock);
	struct tl_client *sc = client_of_fake("PLAIN");
	int64_t deadline = tl_mono_ns() + 5000 * 1000000LL;
	int32_t node;
	while ((node = tl_client_any_ready_node(sc)) == TL_CLIENT_NODE_ANY) {
		ck_assert(tl_mono_ns() < deadline);
		tl_client_poll(sc, 20);
	}
	struct tl_init_producer_id_request req;
	tl_init_producer_id_request_defaults(&req);
	req.transactional_id = tl_str_of("txn-r");
	req.transaction_timeout_ms = 60000;
	int sent = 0, answered = 0;
	int64_t end = tl_mono_ns() + 2000 * 1000000LL;
	while (tl_mono_ns() < end) {
		ck_assert(tl_client_node_ready(sc, node));
		/* Up to four in flight: a fake that fell behind would see the requests sent
		 * just before a re-authentication after the session it gave had ended. */
		if (sent - answered < 4) {
			ck_assert_int_eq(tl_client_rpc_send(
						 sc, node,
						 tl_client_rpc_find(TL_CLIENT_API_INIT_PRODUCER_ID),
						 &req, TEST_ARENA_MAX, count_done, &answered),
					 TL_OK);
			sent++;
		}
		tl_client_poll(sc, 2);
	}
	deadline = tl_mono_ns() + 5000 * 1000000LL;
	while (answered < sent && tl_mono_ns() < deadline)
		tl_client_poll(sc, 20);
	ck_assert_int_eq(answered, sent);
	/* A caller that did not poll past the re-authentication time: its next send waits
	 * for a new login instead of going out on the session that ended. */
	usleep(700 * 1000);
	int late = 0;
	ck_assert(tl_client_node_ready(sc, node));
	ck_assert_int_eq(tl_client_rpc_send(sc, node,
					    tl_client_rpc_find(TL_CLIENT_API_INIT_PRODUCER_ID),
					    &req, TEST_ARENA_MAX, count_done, &late),
			 TL_OK);
	deadline = tl_mono_ns() + 5000 * 1000000LL;
	while (late == 0 && tl_mono_ns() < deadline)
		tl_client_poll(sc, 20);
	ck_assert_int_eq(late, 1);
	pthread_mutex_lock(&fb.lock);
	int handshakes = fb.sasl_handshakes;
	int expired = fb.sasl_expired_requests;
	pthread_mutex_unlock(&fb.lock);
	/* The first login and one every 510-570 ms of the 2 s, and the late one. */
	ck_assert_int_ge(handshakes, 4);
	ck_assert_int_eq(expired, 0);
	tl_client_destroy(sc);
}
END_TEST

START_TEST(a_send_to_a_node_that_is_not_ready_is_again_and_never_calls_back)
{
	(void)ready_node();
	struct tl_end_txn_request req;
	tl_end_txn_request_defaults(&req);
	struct send_result result = {0, TL_OK, -1, -1};
	ck_assert_int_eq(tl_client_rpc_send(client, 7, tl_client_rpc_find(TL_CLIENT_API_END_TXN),
					    &req, TEST_ARENA_MAX, init_done, &result),
			 TL_ERR_AGAIN);
	tl_client_poll(client, 50);
	ck_assert_int_eq(result.calls, 0);
}
END_TEST

/* ---- one bounded try (tl_client_rpc_try) ---- */

/* A loopback port: listening without ever accepting (@listen), or closed. */
static int loopback_port(bool listen_on, int *fd_out)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(fd, -1);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	if (listen_on)
		ck_assert_int_eq(listen(fd, 8), 0);
	else
		close(fd);
	*fd_out = listen_on ? fd : -1;
	return ntohs(addr.sin_port);
}

/* FindCoordinator at @node through tl_client_rpc_try (@try) or tl_client_rpc_call;
 * *@ms_out gets how long it took. */
static tl_err find_coordinator_at(int32_t node, bool try, int timeout_ms, int64_t *ms_out)
{
	struct tl_find_coordinator_request req;
	tl_find_coordinator_request_defaults(&req);
	req.key = tl_str_of("g");
	struct tl_arena arena;
	tl_arena_init(&arena, TEST_ARENA_MAX);
	void *response = NULL;
	const struct tl_client_rpc *rpc = tl_client_rpc_find(TL_CLIENT_API_FIND_COORDINATOR);
	int64_t start = tl_mono_ns();
	tl_err err = try ? tl_client_rpc_try(client, node, rpc, &req, timeout_ms, timeout_ms,
					     &arena, &response, NULL)
			 : tl_client_rpc_call(client, node, rpc, &req, timeout_ms, &arena,
					      &response, NULL);
	*ms_out = (tl_mono_ns() - start) / 1000000;
	tl_arena_deinit(&arena);
	return err;
}

START_TEST(a_try_at_a_broker_that_refuses_connections_ends_at_once)
{
	int fd;
	int port = loopback_port(false, &fd);
	ck_assert_int_eq(tl_client_broker_add(client, 9, "127.0.0.1", 9, port), TL_OK);
	int64_t ms;
	ck_assert_int_eq(find_coordinator_at(9, true, 3000, &ms), TL_ERR_NETWORK_EXCEPTION);
	ck_assert_int_lt(ms, 1000);
	/* The caller keeps the broker down longer than reconnect.backoff.ms. */
	tl_client_node_backoff(client, 9, 400);
	tl_client_poll(client, 100);
	ck_assert(tl_client_node_is_backing_off(client, 9));
	/* A plain call still waits out its timeout, reconnecting meanwhile. */
	ck_assert_int_eq(find_coordinator_at(9, false, 600, &ms), TL_ERR_TIMED_OUT);
	ck_assert_int_ge(ms, 550);
	/* The fake broker still answers a try. */
	ck_assert_int_eq(find_coordinator_at(ready_node(), true, 3000, &ms), TL_OK);
}
END_TEST

START_TEST(a_try_at_a_broker_that_never_answers_ends_at_its_connect_timeout)
{
	int fd;
	int port = loopback_port(true, &fd); /* the handshake completes; ApiVersions waits */
	ck_assert_int_eq(tl_client_broker_add(client, 9, "127.0.0.1", 9, port), TL_OK);
	int64_t ms;
	ck_assert_int_eq(find_coordinator_at(9, true, 300, &ms), TL_ERR_TIMED_OUT);
	ck_assert_int_ge(ms, 250);
	ck_assert_int_lt(ms, 2000); /* not request.timeout.ms (5 s) */
	close(fd);
}
END_TEST

static Suite *request_suite(void)
{
	Suite *s = suite_create("client_request");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, every_api_key_the_clients_send_has_a_row);
	suite_add_tcase(s, tc);
	tc = tcase_create("send");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc,
		       a_blocking_call_leaves_the_response_and_its_strings_in_the_callers_arena);
	tcase_add_test(tc, a_callback_send_hands_the_decoded_response_to_the_callback_once);
	tcase_add_test(tc, a_send_to_a_node_that_is_not_ready_is_again_and_never_calls_back);
	tcase_add_test(tc, next_ready_node_goes_round_the_learned_brokers);
	tcase_add_test(tc, a_node_that_re_authenticates_stays_usable_and_answers_every_request);
	tcase_add_test(tc, a_try_at_a_broker_that_refuses_connections_ends_at_once);
	tcase_add_test(tc, a_try_at_a_broker_that_never_answers_ends_at_its_connect_timeout);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(request_suite());
}
