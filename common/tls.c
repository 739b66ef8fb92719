/* tls.c - plain or TLS byte streams over non-blocking sockets (tls.h).
 * (1) OpenSSL's error queue is per thread and shared by every session on it: each call
 *     clears it first, and a failure keeps its first error in the transport.
 * (2) Writes run in partial-write mode with moving buffers allowed, so a retry after
 *     EAGAIN may pass the same bytes from another address (the sendfile fallback
 *     re-reads the same span into its scratch buffer). */
#include "common/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/assert.h"

#define TLS_CIPHERS_MAX 512 /* bytes of one OpenSSL cipher list */

/* ---- contexts ---- */

static void ssl_why(char *why, size_t why_size, const char *what, const char *path)
{
	unsigned long e = ERR_peek_last_error();
	char detail[256] = "";
	if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(why, why_size, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
		 detail[0] ? detail : "failed");
}

static int password_cb(char *buf, int size, int rwflag, void *userdata)
{
	TL_UNUSED(rwflag);
	const char *password = userdata ? userdata : "";
	size_t len = strlen(password);
	if (len > (size_t)size)
		return -1;
	memcpy(buf, password, len);
	return (int)len;
}

bool tl_tls_client_auth_parse(const char *text, enum tl_tls_client_auth *out)
{
	if (strcasecmp(text, "none") == 0)
		*out = TL_TLS_CLIENT_AUTH_NONE;
	else if (strcasecmp(text, "requested") == 0)
		*out = TL_TLS_CLIENT_AUTH_REQUESTED;
	else if (strcasecmp(text, "required") == 0)
		*out = TL_TLS_CLIENT_AUTH_REQUIRED;
	else
		return false;
	return true;
}

/* Lowest and highest version named in @text; false on an unknown name. */
static bool protocols_range(const char *text, int *min_out, int *max_out)
{
	int min = 0, max = 0;
	const char *p = text;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, ", ");
		int v;
		if (len == 7 && strncasecmp(p, "TLSv1.2", len) == 0)
			v = TLS1_2_VERSION;
		else if (len == 7 && strncasecmp(p, "TLSv1.3", len) == 0)
			v = TLS1_3_VERSION;
		else
			return false;
		min = min ? TL_MIN(min, v) : v;
		max = TL_MAX(max, v);
		p += len;
	}
	if (!min)
		return false;
	*min_out = min;
	*max_out = max;
	return true;
}

bool tl_tls_protocols_valid(const char *text)
{
	int min, max;
	return protocols_range(text, &min, &max);
}

/* ssl.cipher.suites: TLS 1.3 suites (TLS_AES_..., TLS_CHACHA20_...) and OpenSSL names
 * for TLS 1.2, in one comma-separated list, split into OpenSSL's two lists. */
static bool ctx_set_ciphers(SSL_CTX *ctx, const char *text, char *why, size_t why_size)
{
	char v13[TLS_CIPHERS_MAX] = "", v12[TLS_CIPHERS_MAX] = "";
	const char *p = text;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ", ");
		if (!len)
			break;
		bool is13 = strncmp(p, "TLS_", 4) == 0 && !memmem(p, len, "_WITH_", 6);
		char *list = is13 ? v13 : v12;
		size_t have = strlen(list);
		if (have + len + 2 > TLS_CIPHERS_MAX) {
			snprintf(why, why_size, "ssl.cipher.suites is too long");
			return false;
		}
		snprintf(list + have, TLS_CIPHERS_MAX - have, "%s%.*s", have ? ":" : "", (int)len,
			 p);
		p += len;
	}
	if (v13[0] && SSL_CTX_set_ciphersuites(ctx, v13) != 1) {
		ssl_why(why, why_size, "ssl.cipher.suites (TLS 1.3)", v13);
		return false;
	}
	if (v12[0] && SSL_CTX_set_cipher_list(ctx, v12) != 1) {
		ssl_why(why, why_size, "ssl.cipher.suites (TLS 1.2, OpenSSL names)", v12);
		return false;
	}
	return true;
}

static bool ctx_use_key_pair(SSL_CTX *ctx, const char *cert_path, const char *key_path,
			     const char *password, char *why, size_t why_size)
{
	SSL_CTX_set_default_passwd_cb(ctx, password_cb);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)(uintptr_t)password);
	bool ok = false;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
		ssl_why(why, why_size, "cannot load certificate chain", cert_path);
	else if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1)
		ssl_why(why, why_size, "cannot load private key", key_path);
	else if (SSL_CTX_check_private_key(ctx) != 1)
		ssl_why(why, why_size, "private key does not match the certificate", key_path);
	else
		ok = true;
	/* The password is needed only while loading; it does not stay referenced. */
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	return ok;
}

static void ctx_common(SSL_CTX *ctx)
{
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
}

struct ssl_ctx_st *tl_tls_server_ctx_create(const struct tl_tls_server_conf *conf, char *why,
					    size_t why_size)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ssl_why(why, why_size, "SSL_CTX_new", NULL);
		return NULL;
	}
	ctx_common(ctx);
	if (conf->ktls)
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	int min, max;
	if (!protocols_range(conf->enabled_protocols, &min, &max)) {
		snprintf(why, why_size, "ssl.enabled.protocols \"%s\": TLSv1.2 and TLSv1.3 only",
			 conf->enabled_protocols);
		goto out_free;
	}
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_max_proto_version(ctx, max);
	if (conf->cipher_suites[0] && !ctx_set_ciphers(ctx, conf->cipher_suites, why, why_size))
		goto out_free;
	if (!ctx_use_key_pair(ctx, conf->keystore_location, conf->keystore_location,
			      conf->key_password, why, why_size))
		goto out_free;
	static const unsigned char sid_ctx[] = "tally";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (conf->truststore_location[0]) {
		if (SSL_CTX_load_verify_locations(ctx, conf->truststore_location, NULL) != 1) {
			ssl_why(why, why_size, "cannot load truststore", conf->truststore_location);
			goto out_free;
		}
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->truststore_location);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	int mode = SSL_VERIFY_NONE;
	if (conf->client_auth == TL_TLS_CLIENT_AUTH_REQUESTED)
		mode = SSL_VERIFY_PEER;
	else if (conf->client_auth == TL_TLS_CLIENT_AUTH_REQUIRED)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

struct ssl_ctx_st *tl_tls_client_ctx_create(const struct tl_tls_client_conf *conf, char *why,
					    size_t why_size)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		ssl_why(why, why_size, "SSL_CTX_new", NULL);
		return NULL;
	}
	ctx_common(ctx);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (conf->verify) {
		int ok = conf->ca_location[0]
				 ? SSL_CTX_load_verify_locations(ctx, conf->ca_location, NULL)
				 : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			ssl_why(why, why_size, "cannot load ssl.ca.location", conf->ca_location);
			goto out_free;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (conf->certificate_location[0] &&
	    !ctx_use_key_pair(ctx, conf->certificate_location,
			      conf->key_location[0] ? conf->key_location
						    : conf->certificate_location,
			      conf->key_password, why, why_size))
		goto out_free;
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

void tl_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/* ---- transports ---- */

void tl_transport_init_plain(struct tl_transport *t, int fd)
{
	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->handshake_done = true;
}

tl_err tl_transport_init_tls(struct tl_transport *t, int fd, struct ssl_ctx_st *ctx, bool server,
			     const char *host)
{
	memset(t, 0, sizeof(*t));
	t->fd = fd;
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return TL_ERR_NOMEM;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return TL_ERR_NOMEM;
	}
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		struct in_addr v4;
		struct in6_addr v6;
		bool is_ip = host && (inet_pton(AF_INET, host, &v4) == 1 ||
				      inet_pton(AF_INET6, host, &v6) == 1);
		if (host && !is_ip)
			SSL_set_tlsext_host_name(ssl, host);
		if (host && (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER)) {
			int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
				       : SSL_set1_host(ssl, host);
			if (ok != 1) {
				SSL_free(ssl);
				return TL_ERR_NOMEM;
			}
		}
	}
	t->ssl = ssl;
	return TL_OK;
}

void tl_transport_deinit(struct tl_transport *t)
{
	if (t->ssl) {
		SSL_free(t->ssl);
		t->ssl = NULL;
	}
}

/* Maps a failed SSL call's result @rc to -1 and errno (see tls.h). */
static ssize_t ssl_fail(struct tl_transport *t, int rc)
{
	int saved = errno;
	int reason = SSL_get_error(t->ssl, rc);
	switch (reason) {
	case SSL_ERROR_WANT_READ:
		t->want_write = false;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->want_write = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			errno = saved ? saved : ECONNRESET;
			return -1;
		}
		break;
	default:
		break;
	}
	t->ssl_reason = reason;
	t->ssl_err = ERR_peek_error();
	ERR_clear_error();
	errno = EPROTO;
	return -1;
}

tl_err tl_transport_handshake(struct tl_transport *t)
{
	if (t->handshake_done)
		return TL_OK;
	TL_ASSERT(t->ssl);
	ERR_clear_error();
	errno = 0;
	int rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		t->handshake_done = true;
		t->want_write = false;
		t->ktls_send = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) != 0;
		return TL_OK;
	}
	ssize_t n = ssl_fail(t, rc);
	TL_ASSERT(n <= 0);
	if (n == -1 && errno == EAGAIN)
		return TL_ERR_AGAIN;
	if (n == 0)
		errno = ECONNRESET; /* closed before the handshake finished */
	return TL_ERR_IO;
}

ssize_t tl_transport_read(struct tl_transport *t, void *buf, size_t len)
{
	if (!t->ssl)
		return recv(t->fd, buf, len, 0);
	TL_ASSERT(t->handshake_done);
	ERR_clear_error();
	errno = 0;
	int rc = SSL_read(t->ssl, buf, (int)TL_MIN(len, (size_t)INT32_MAX));
	if (rc > 0)
		return rc;
	return ssl_fail(t, rc);
}

ssize_t tl_transport_writev(struct tl_transport *t, const struct iovec *iov, int count)
{
	TL_ASSERT(count > 0);
	if (!t->ssl) {
		struct msghdr msg = {.msg_iov = (struct iovec *)(uintptr_t)iov,
				     .msg_iovlen = (size_t)count};
		return sendmsg(t->fd, &msg, MSG_NOSIGNAL);
	}
	TL_ASSERT(t->handshake_done);
	ERR_clear_error();
	errno = 0;
	int rc = SSL_write(t->ssl, iov[0].iov_base, (int)TL_MIN(iov[0].iov_len, (size_t)INT32_MAX));
	if (rc > 0)
		return rc;
	ssize_t n = ssl_fail(t, rc);
	if (n == 0) { /* close_notify while writing */
		errno = EPIPE;
		return -1;
	}
	return n;
}

ssize_t tl_transport_sendfile(struct tl_transport *t, int file_fd, off_t offset, size_t len,
			      void *scratch, size_t scratch_bytes)
{
	if (!t->ssl) {
		off_t off = offset;
		return sendfile(t->fd, file_fd, &off, len);
	}
	TL_ASSERT(t->handshake_done);
	ERR_clear_error();
	errno = 0;
	if (t->ktls_send) {
		ossl_ssize_t rc = SSL_sendfile(t->ssl, file_fd, offset, len, 0);
		if (rc >= 0)
			return rc;
		return ssl_fail(t, (int)rc);
	}
	size_t want = TL_MIN(len, scratch_bytes);
	ssize_t got = pread(file_fd, scratch, want, offset);
	if (got <= 0)
		return got;
	struct iovec iov = {.iov_base = scratch, .iov_len = (size_t)got};
	return tl_transport_writev(t, &iov, 1);
}

bool tl_transport_has_pending(const struct tl_transport *t)
{
	return t->ssl && t->handshake_done && SSL_pending(t->ssl) > 0;
}

/* "User:" + @cert's subject in RFC 2253 form into @out; false when it does not fit. */
static bool cert_principal(X509 *cert, char *out, size_t out_size)
{
	bool ok = false;
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
		char *data;
		long len = BIO_get_mem_data(bio, &data);
		if (len >= 0 && (size_t)len + 6 <= out_size) {
			snprintf(out, out_size, "User:%.*s", (int)len, data);
			ok = true;
		}
	}
	BIO_free(bio);
	return ok;
}

int tl_transport_peer_principal(const struct tl_transport *t, char *out, size_t out_size)
{
	if (!t->ssl)
		return 0;
	X509 *cert = SSL_get1_peer_certificate(t->ssl);
	if (!cert)
		return 0;
	bool ok = cert_principal(cert, out, out_size);
	X509_free(cert);
	return ok ? 1 : -1;
}

bool tl_tls_ctx_principal(struct ssl_ctx_st *ctx, char *out, size_t out_size)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx); /* borrowed from @ctx */
	return cert && cert_principal(cert, out, out_size);
}

void tl_transport_describe(const struct tl_transport *t, char *out, size_t out_size)
{
	if (!t->ssl) {
		snprintf(out, out_size, "plaintext");
		return;
	}
	snprintf(out, out_size, "%s %s", SSL_get_version(t->ssl),
		 SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)));
}

void tl_transport_error(const struct tl_transport *t, char *out, size_t out_size)
{
	if (t->ssl_err) {
		const char *reason = ERR_reason_error_string(t->ssl_err);
		snprintf(out, out_size, "%s", reason ? reason : "TLS error");
		if (t->ssl && SSL_get_verify_result(t->ssl) != X509_V_OK) {
			size_t n = strlen(out);
			snprintf(out + n, out_size - n, " (%s)",
				 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
		}
		return;
	}
	snprintf(out, out_size, "connection closed or reset");
}
