/* tls_test.c - tl_transport over a socketpair with certificates made here: handshake
 * both ways (non-blocking), the principal of a client certificate, refusals (another
 * CA, no certificate when required), the sendfile fallback under TLS, option parsing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/tests/check_run.h"
#include "common/tls.h"

static char dir[64];

/* ---- a throwaway PKI ---- */

static EVP_PKEY *key_new(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert_ptr_nonnull(key);
	return key;
}

/* A certificate for @key with subject @o/@ou/@cn, signed by @ca_key (self-signed when
 * @ca is NULL), with subjectAltName @san when not NULL. */
static X509 *cert_new(EVP_PKEY *key, const char *o, const char *ou, const char *cn, X509 *ca,
		      EVP_PKEY *ca_key, const char *san)
{
	static long serial = 1;
	X509 *cert = X509_new();
	ck_assert_ptr_nonnull(cert);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_NAME *name = X509_get_subject_name(cert);
	if (o)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)o, -1,
					   -1, 0);
	if (ou)
		X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC, (const unsigned char *)ou, -1,
					   -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, ca ? X509_get_subject_name(ca) : name);
	X509_set_pubkey(cert, key);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca ? ca : cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
						  ca ? "CA:FALSE" : "critical,CA:TRUE");
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (san) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
	}
	ck_assert_int_gt(X509_sign(cert, ca_key ? ca_key : key, EVP_sha256()), 0);
	return cert;
}

static void pem_write(const char *name, X509 *cert, EVP_PKEY *key)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	if (cert)
		PEM_write_X509(f, cert);
	if (key)
		PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

static const char *path_of(const char *name)
{
	static char paths[4][128];
	static int next;
	char *p = paths[next++ % 4];
	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tally-tls-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	EVP_PKEY *ca_key = key_new(), *broker_key = key_new(), *client_key = key_new();
	EVP_PKEY *rogue_ca_key = key_new(), *rogue_key = key_new();
	X509 *ca = cert_new(ca_key, NULL, NULL, "Test CA", NULL, NULL, NULL);
	X509 *rogue_ca = cert_new(rogue_ca_key, NULL, NULL, "Rogue CA", NULL, NULL, NULL);
	X509 *broker = cert_new(broker_key, "Tally", NULL, "localhost", ca, ca_key,
				"DNS:localhost,IP:127.0.0.1");
	X509 *client = cert_new(client_key, "Tally", "eng", "app1", ca, ca_key, NULL);
	X509 *rogue = cert_new(rogue_key, NULL, NULL, "mallory", rogue_ca, rogue_ca_key, NULL);
	pem_write("ca.pem", ca, NULL);
	pem_write("broker.pem", broker, broker_key);
	pem_write("client.pem", client, client_key);
	pem_write("rogue.pem", rogue, rogue_key);
	X509 *certs[] = {ca, rogue_ca, broker, client, rogue};
	EVP_PKEY *keys[] = {ca_key, broker_key, client_key, rogue_ca_key, rogue_key};
	for (size_t i = 0; i < 5; i++) {
		X509_free(certs[i]);
		EVP_PKEY_free(keys[i]);
	}
}

static void teardown(void)
{
	const char *names[] = {"ca.pem", "broker.pem", "client.pem", "rogue.pem", "span"};
	for (size_t i = 0; i < 5; i++)
		unlink(path_of(names[i]));
	rmdir(dir);
}

/* ---- a connected pair ---- */

struct pair {
	struct ssl_ctx_st *server_ctx, *client_ctx;
	struct tl_transport server, client;
	int fds[2];
};

static void pair_open(struct pair *p, enum tl_tls_client_auth auth, const char *client_pem)
{
	char why[512] = "";
	struct tl_tls_server_conf sc = {
		.keystore_location = path_of("broker.pem"),
		.key_password = "",
		.truststore_location = path_of("ca.pem"),
		.client_auth = auth,
		.enabled_protocols = "TLSv1.2,TLSv1.3",
		.cipher_suites = "",
		.ktls = true,
	};
	p->server_ctx = tl_tls_server_ctx_create(&sc, why, sizeof(why));
	ck_assert_msg(p->server_ctx != NULL, "%s", why);
	struct tl_tls_client_conf cc = {
		.ca_location = path_of("ca.pem"),
		.certificate_location = client_pem ? path_of(client_pem) : "",
		.key_location = "",
		.key_password = "",
		.verify = true,
	};
	p->client_ctx = tl_tls_client_ctx_create(&cc, why, sizeof(why));
	ck_assert_msg(p->client_ctx != NULL, "%s", why);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fds), 0);
	ck_assert_int_eq(tl_transport_init_tls(&p->server, p->fds[0], p->server_ctx, true, NULL),
			 TL_OK);
	ck_assert_int_eq(
		tl_transport_init_tls(&p->client, p->fds[1], p->client_ctx, false, "localhost"),
		TL_OK);
}

/* Steps both handshakes until neither waits; the server's result. */
static tl_err pair_handshake(struct pair *p, tl_err *client_out)
{
	tl_err s = TL_ERR_AGAIN, c = TL_ERR_AGAIN;
	for (int i = 0; i < 100 && (s == TL_ERR_AGAIN || c == TL_ERR_AGAIN); i++) {
		if (c == TL_ERR_AGAIN)
			c = tl_transport_handshake(&p->client);
		if (s == TL_ERR_AGAIN)
			s = tl_transport_handshake(&p->server);
		/* TLS 1.3: the server's verdict on the client certificate reaches the client
		 * after its handshake ended; a read sees it. */
		if (s == TL_ERR_IO && c == TL_OK) {
			char b;
			ssize_t n = tl_transport_read(&p->client, &b, 1);
			c = n == -1 && errno == EAGAIN ? TL_OK : TL_ERR_IO;
			break;
		}
	}
	*client_out = c;
	return s;
}

static void pair_close(struct pair *p)
{
	tl_transport_deinit(&p->server);
	tl_transport_deinit(&p->client);
	close(p->fds[0]);
	close(p->fds[1]);
	tl_tls_ctx_free(p->server_ctx);
	tl_tls_ctx_free(p->client_ctx);
}

/* Reads @len bytes from @t (the peer has written them all already). */
static void read_all(struct tl_transport *t, uint8_t *buf, size_t len)
{
	size_t have = 0;
	for (int i = 0; i < 100000 && have < len; i++) {
		ssize_t n = tl_transport_read(t, buf + have, len - have);
		if (n > 0)
			have += (size_t)n;
		else
			ck_assert_msg(n == -1 && errno == EAGAIN, "read: n=%zd errno=%d", n, errno);
	}
	ck_assert_uint_eq(have, len);
}

/* ---- tests ---- */

START_TEST(handshake_then_bytes_both_ways_and_the_client_principal)
{
	struct pair p;
	pair_open(&p, TL_TLS_CLIENT_AUTH_REQUESTED, "client.pem");
	tl_err c;
	ck_assert_int_eq(pair_handshake(&p, &c), TL_OK);
	ck_assert_int_eq(c, TL_OK);
	char principal[128] = "";
	ck_assert_int_eq(tl_transport_peer_principal(&p.server, principal, sizeof(principal)), 1);
	ck_assert_str_eq(principal, "User:CN=app1,OU=eng,O=Tally");
	char version[96];
	tl_transport_describe(&p.server, version, sizeof(version));
	ck_assert_ptr_nonnull(strstr(version, "TLSv1.3"));

	struct iovec iov[2] = {{.iov_base = "hello ", .iov_len = 6},
			       {.iov_base = "x", .iov_len = 1}};
	ck_assert_int_eq(tl_transport_writev(&p.client, iov, 2), 6); /* one piece a call */
	uint8_t got[8] = {0};
	read_all(&p.server, got, 6);
	ck_assert_mem_eq(got, "hello ", 6);
	struct iovec back = {.iov_base = "world", .iov_len = 5};
	ck_assert_int_eq(tl_transport_writev(&p.server, &back, 1), 5);
	read_all(&p.client, got, 5);
	ck_assert_mem_eq(got, "world", 5);
	/* Nothing more: would block, not end of stream. */
	ck_assert_int_eq(tl_transport_read(&p.server, got, 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert(!tl_transport_has_pending(&p.server));
	pair_close(&p);
}
END_TEST

START_TEST(requested_without_certificate_is_anonymous)
{
	struct pair p;
	pair_open(&p, TL_TLS_CLIENT_AUTH_REQUESTED, NULL);
	tl_err c;
	ck_assert_int_eq(pair_handshake(&p, &c), TL_OK);
	char principal[128] = "unchanged";
	ck_assert_int_eq(tl_transport_peer_principal(&p.server, principal, sizeof(principal)), 0);
	ck_assert_str_eq(principal, "unchanged");
	pair_close(&p);
}
END_TEST

START_TEST(certificate_from_another_ca_is_refused)
{
	struct pair p;
	pair_open(&p, TL_TLS_CLIENT_AUTH_REQUESTED, "rogue.pem");
	tl_err c;
	ck_assert_int_eq(pair_handshake(&p, &c), TL_ERR_IO);
	ck_assert_int_eq(c, TL_ERR_IO);
	char why[256];
	tl_transport_error(&p.server, why, sizeof(why));
	ck_assert_msg(strstr(why, "certificate verify failed") != NULL, "%s", why);
	pair_close(&p);
}
END_TEST

START_TEST(required_without_certificate_is_refused)
{
	struct pair p;
	pair_open(&p, TL_TLS_CLIENT_AUTH_REQUIRED, NULL);
	tl_err c;
	ck_assert_int_eq(pair_handshake(&p, &c), TL_ERR_IO);
	pair_close(&p);
}
END_TEST

START_TEST(sendfile_under_tls_sends_the_span)
{
	enum { FILE_BYTES = 200000, OFFSET = 1234, SPAN = 150001 };
	static uint8_t data[FILE_BYTES], got[SPAN];
	for (size_t i = 0; i < FILE_BYTES; i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	int fd = open(path_of("span"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, FILE_BYTES), FILE_BYTES);
	struct pair p;
	pair_open(&p, TL_TLS_CLIENT_AUTH_NONE, NULL);
	tl_err c;
	ck_assert_int_eq(pair_handshake(&p, &c), TL_OK);
	uint8_t scratch[16384];
	size_t sent = 0, have = 0;
	for (int i = 0; i < 100000 && have < SPAN; i++) {
		if (sent < SPAN) {
			ssize_t n = tl_transport_sendfile(&p.server, fd, (off_t)(OFFSET + sent),
							  SPAN - sent, scratch, sizeof(scratch));
			if (n > 0)
				sent += (size_t)n;
			else
				ck_assert_msg(n == -1 && errno == EAGAIN, "sendfile: %zd", n);
		}
		ssize_t r = tl_transport_read(&p.client, got + have, SPAN - have);
		if (r > 0)
			have += (size_t)r;
	}
	ck_assert_uint_eq(have, SPAN);
	ck_assert_mem_eq(got, data + OFFSET, SPAN);
	/* Past the end of the file: 0, never a short frame passed off as whole. */
	ck_assert_int_eq(
		tl_transport_sendfile(&p.server, fd, FILE_BYTES, 10, scratch, sizeof(scratch)), 0);
	close(fd);
	pair_close(&p);
}
END_TEST

START_TEST(plain_transport_is_the_socket)
{
	int fds[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	struct tl_transport a, b;
	tl_transport_init_plain(&a, fds[0]);
	tl_transport_init_plain(&b, fds[1]);
	ck_assert_int_eq(tl_transport_handshake(&a), TL_OK);
	struct iovec iov[2] = {{.iov_base = "ab", .iov_len = 2}, {.iov_base = "cd", .iov_len = 2}};
	ck_assert_int_eq(tl_transport_writev(&a, iov, 2), 4);
	char got[4];
	ck_assert_int_eq(tl_transport_read(&b, got, 4), 4);
	ck_assert_mem_eq(got, "abcd", 4);
	close(fds[0]);
	ck_assert_int_eq(tl_transport_read(&b, got, 4), 0);
	close(fds[1]);
}
END_TEST

START_TEST(options_parse_and_bad_files_are_named)
{
	enum tl_tls_client_auth auth;
	ck_assert(tl_tls_client_auth_parse("required", &auth));
	ck_assert_int_eq(auth, TL_TLS_CLIENT_AUTH_REQUIRED);
	ck_assert(!tl_tls_client_auth_parse("yes", &auth));
	ck_assert(tl_tls_protocols_valid("TLSv1.2, TLSv1.3"));
	ck_assert(tl_tls_protocols_valid("TLSv1.3"));
	ck_assert(!tl_tls_protocols_valid("TLSv1.1"));
	ck_assert(!tl_tls_protocols_valid(""));
	char why[512] = "";
	struct tl_tls_server_conf sc = {
		.keystore_location = "/nonexistent/broker.pem",
		.key_password = "",
		.truststore_location = "",
		.enabled_protocols = "TLSv1.3",
		.cipher_suites = "",
	};
	ck_assert_ptr_null(tl_tls_server_ctx_create(&sc, why, sizeof(why)));
	ck_assert_msg(strstr(why, "/nonexistent/broker.pem") != NULL, "%s", why);
	sc.keystore_location = path_of("broker.pem");
	sc.cipher_suites = "TLS_NOT_A_SUITE";
	ck_assert_ptr_null(tl_tls_server_ctx_create(&sc, why, sizeof(why)));
	ck_assert_msg(strstr(why, "ssl.cipher.suites") != NULL, "%s", why);
	sc.cipher_suites = "TLS_AES_128_GCM_SHA256,ECDHE-ECDSA-AES128-GCM-SHA256";
	struct ssl_ctx_st *ctx = tl_tls_server_ctx_create(&sc, why, sizeof(why));
	ck_assert_msg(ctx != NULL, "%s", why);
	tl_tls_ctx_free(ctx);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("transport");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, handshake_then_bytes_both_ways_and_the_client_principal);
	tcase_add_test(tc, requested_without_certificate_is_anonymous);
	tcase_add_test(tc, certificate_from_another_ca_is_refused);
	tcase_add_test(tc, required_without_certificate_is_refused);
	tcase_add_test(tc, sendfile_under_tls_sends_the_span);
	tcase_add_test(tc, plain_transport_is_the_socket);
	tcase_add_test(tc, options_parse_and_bad_files_are_named);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_check_run(tls_suite());
}
