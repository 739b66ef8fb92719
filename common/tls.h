/* tls.h - one byte stream over a non-blocking TCP socket, plain or TLS (OpenSSL 3), for
 * tallyd's connections and libtally's. The caller owns the socket and polls it; this
 * layer only reads and writes. A SASL layer (issue #16) sits above it, not inside.
 *
 * Results follow read(2)/write(2): bytes (> 0), 0 at end of stream (read) or a file
 * shorter than asked (sendfile), -1 with errno: EAGAIN when the socket would block
 * (then t->want_write says which way to poll), EPROTO for a TLS failure (the detail in
 * tl_transport_error), or the socket's own errno.
 *
 * States of a TLS transport: handshaking (tl_transport_handshake until TL_OK), then
 * established (read, write, sendfile). A plain one is established from the start. */
#ifndef TL_COMMON_TLS_H
#define TL_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tally/error.h"

struct ssl_st;
struct ssl_ctx_st;

struct tl_transport {
	int fd;
	struct ssl_st *ssl;    /* NULL: plain TCP */
	bool handshake_done;   /* always true when plain */
	bool want_write;       /* the last call that would block waits for POLLOUT */
	bool ktls_send;        /* kernel TLS sends: sendfile stays zero-copy */
	unsigned long ssl_err; /* OpenSSL's error of the last EPROTO, 0 none */
	int ssl_reason;        /* SSL_get_error of it */
};

enum tl_tls_client_auth {
	TL_TLS_CLIENT_AUTH_NONE = 0,      /* ssl.client.auth=none */
	TL_TLS_CLIENT_AUTH_REQUESTED = 1, /* asked for; a client without one still connects */
	TL_TLS_CLIENT_AUTH_REQUIRED = 2,  /* no certificate, or one no trusted CA signed: refused */
};

/* A broker's TLS settings, Kafka's ssl.* keys (PEM files only). */
struct tl_tls_server_conf {
	const char *keystore_location;   /* PEM: certificate chain and private key */
	const char *key_password;        /* of an encrypted private key; "" none */
	const char *truststore_location; /* PEM CA certificates for client certificates */
	enum tl_tls_client_auth client_auth;
	const char *enabled_protocols; /* "TLSv1.2,TLSv1.3" */
	const char *cipher_suites;     /* OpenSSL names, TLS 1.3 suites too; "" default */
	bool ktls;                     /* SSL_OP_ENABLE_KTLS */
};

/* A client's, librdkafka's names. */
struct tl_tls_client_conf {
	const char *ca_location;          /* ssl.ca.location; "" the system's */
	const char *certificate_location; /* ssl.certificate.location; "" none */
	const char *key_location;         /* ssl.key.location */
	const char *key_password;         /* ssl.key.password */
	bool verify;                      /* enable.ssl.certificate.verification */
};

/* Contexts: NULL with a reason in @why (file, OpenSSL's message) on failure. */
struct ssl_ctx_st *tl_tls_server_ctx_create(const struct tl_tls_server_conf *conf, char *why,
					    size_t why_size);
struct ssl_ctx_st *tl_tls_client_ctx_create(const struct tl_tls_client_conf *conf, char *why,
					    size_t why_size);
void tl_tls_ctx_free(struct ssl_ctx_st *ctx);
/* Parses "none|requested|required"; false otherwise. */
bool tl_tls_client_auth_parse(const char *text, enum tl_tls_client_auth *out);
/* Checks an ssl.enabled.protocols list (TLSv1.2, TLSv1.3); false otherwise. */
bool tl_tls_protocols_valid(const char *text);

void tl_transport_init_plain(struct tl_transport *t, int fd);
/* TLS on @fd from @ctx (borrowed: it must outlive the transport); @server picks the
 * side; @host, client side, is the name the certificate must carry (and SNI) when
 * the context verifies, NULL otherwise. TL_ERR_NOMEM when OpenSSL cannot allocate. */
tl_err tl_transport_init_tls(struct tl_transport *t, int fd, struct ssl_ctx_st *ctx, bool server,
			     const char *host);
/* Frees the TLS session, not the socket. */
void tl_transport_deinit(struct tl_transport *t);
/* Drives the handshake: TL_OK when done, TL_ERR_AGAIN when it waits for the socket
 * (t->want_write), TL_ERR_IO when it failed (tl_transport_error says why). */
tl_err tl_transport_handshake(struct tl_transport *t);
ssize_t tl_transport_read(struct tl_transport *t, void *buf, size_t len);
/* Writes from @iov; over TLS only the first piece goes per call (one record run). */
ssize_t tl_transport_writev(struct tl_transport *t, const struct iovec *iov, int count);
/* Sends @len bytes of @file_fd at @offset: sendfile(2) when plain, SSL_sendfile with
 * kernel TLS, else pread into @scratch (at most @scratch_bytes a call) and SSL_write;
 * a retry after EAGAIN must ask for the same span. */
ssize_t tl_transport_sendfile(struct tl_transport *t, int file_fd, off_t offset, size_t len,
			      void *scratch, size_t scratch_bytes);
/* Decrypted bytes waiting inside the TLS layer, which poll cannot see. */
bool tl_transport_has_pending(const struct tl_transport *t);
/* "User:" + the peer certificate's subject in RFC 2253 form, as Kafka's default
 * principal builder makes it: 1, or 0 when the peer sent no certificate, -1 when its
 * subject does not fit @out_size (@out is then untouched). */
int tl_transport_peer_principal(const struct tl_transport *t, char *out, size_t out_size);
/* The same for the certificate a context presents (a client's for mutual TLS). */
bool tl_tls_ctx_principal(struct ssl_ctx_st *ctx, char *out, size_t out_size);
/* The negotiated version and cipher ("TLSv1.3 TLS_AES_256_GCM_SHA384"). */
void tl_transport_describe(const struct tl_transport *t, char *out, size_t out_size);
/* The last failure's detail (OpenSSL's reason, or the socket's errno). */
void tl_transport_error(const struct tl_transport *t, char *out, size_t out_size);

#endif
