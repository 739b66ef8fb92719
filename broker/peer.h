/* peer.h - tallyd's client side toward another broker: the connections the replica
 * fetcher (fetcher.c, on the event loop) and the transaction marker sender (markers.c,
 * its own thread) open to a peer's inter-broker listener. They speak that listener's
 * security protocol (inter.broker.listener.name / security.inter.broker.protocol): TLS
 * with common/tls.c's client side, then SASL with protocol/sasl_client.c, then the
 * caller's requests. Non-blocking: tl_peer_link_advance never waits; the caller polls.
 *
 * A link's states: TLS (handshake, only on SSL and SASL_SSL) -> SASL (SaslHandshake
 * v1 and SaslAuthenticate v1 requests, only on SASL_*) -> READY. A failure in any state
 * is final for the link: the caller closes the socket and reconnects later.
 *
 * Re-authentication (KIP-368): a peer whose listener has connections.max.reauth.ms
 * answers the login with a session lifetime and closes the connection at the first
 * request after it ends. The link picks a time at 85-95% of that lifetime, as Kafka's
 * client does; once tl_peer_link_reauth_due says so, the caller (with nothing in flight)
 * calls tl_peer_link_reauth_start and drives the link back to READY with
 * tl_peer_link_advance: SaslHandshake and SaslAuthenticate again on the same
 * connection (and TLS session), the principal unchanged. */
#ifndef TL_BROKER_PEER_H
#define TL_BROKER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "common/buf.h"
#include "common/tls.h"
#include "protocol/sasl_client.h"
#include "tally/error.h"

/* A SASL response above this is a broken peer, not a login (SCRAM's are ~200 bytes). */
#define TL_PEER_SASL_FRAME_MAX (64 * 1024)

/* How this broker logs in to the others; built once at start, read-only afterwards
 * (the marker thread reads it too). */
struct tl_peer_security {
	enum tl_security_protocol protocol; /* of the inter-broker listener */
	char protocol_name[16];             /* the same, as in listener.security.protocol.map */
	struct ssl_ctx_st *tls_ctx;         /* NULL: no TLS */
	bool verify_host;                   /* ssl.endpoint.identification.algorithm=https */
	struct tl_client_sasl_conf sasl;    /* mechanism NULL: no SASL */
	char principal[320];                /* the name the peers see, for diagnostics */
};

enum tl_peer_state {
	TL_PEER_TLS = 0, /* TLS handshake */
	TL_PEER_SASL,    /* a SASL request being sent or its response read */
	TL_PEER_READY,
};

struct tl_peer_link {
	struct tl_transport transport;
	const struct tl_peer_security *security; /* borrowed */
	enum tl_peer_state state;
	struct tl_client_sasl sasl;
	int16_t api_key; /* of the SASL request in flight */
	int16_t api_version;
	int32_t correlation_id;
	struct tl_buf out; /* the SASL request being sent */
	size_t out_sent;
	uint8_t size_prefix[4];
	uint8_t *in; /* the SASL response being read */
	size_t in_bytes;
	size_t in_have;              /* counts the size prefix too */
	int64_t session_lifetime_ms; /* the peer's, from the last login; 0: unlimited */
	int64_t reauth_at_ms;        /* tl_mono_ms() time to log in again; 0: never */
	int32_t logins;              /* SASL logins completed on this link */
	tl_err failure;              /* why the link failed: a Kafka code or TL_ERR_IO */
	char why[320];               /* the same, in words */
};

/* Builds @sec from the inter-broker listener of @config: the TLS client context
 * (CAs from ssl.truststore.location, the broker's ssl.keystore.location as its client
 * certificate for mutual TLS) and the SASL login (sasl.mechanism.inter.broker.protocol,
 * inter.broker.sasl.username/.password). A reason in @why on failure. */
tl_err tl_peer_security_init(struct tl_peer_security *sec, const struct tl_config *config,
			     char *why, size_t why_size);
void tl_peer_security_deinit(struct tl_peer_security *sec);

/* Starts a link on @fd, a non-blocking socket whose TCP connect completed; @host is the
 * peer's registered host, the name its certificate must carry. The link borrows @sec.
 * TL_ERR_NOMEM when OpenSSL cannot allocate. */
tl_err tl_peer_link_init(struct tl_peer_link *link, const struct tl_peer_security *sec, int fd,
			 const char *host);
/* Drives the link: TL_OK once READY, TL_ERR_AGAIN when it waits for the socket (poll
 * for writing when link->transport.want_write, else reading), another code when it
 * failed (link->failure, link->why). */
tl_err tl_peer_link_advance(struct tl_peer_link *link);
/* True when the link is READY and its SASL session is due to be re-authenticated. */
bool tl_peer_link_reauth_due(const struct tl_peer_link *link, int64_t now_ms);
/* Takes a READY link with no request in flight back to SASL; drive it with
 * tl_peer_link_advance as a fresh link. */
void tl_peer_link_reauth_start(struct tl_peer_link *link);
/* Frees the TLS session and buffers, not the socket. */
void tl_peer_link_deinit(struct tl_peer_link *link);
/* Waits up to @timeout_ms for the socket in the direction the link asked for; for the
 * marker thread, which may block. False on timeout. */
bool tl_peer_link_wait(const struct tl_peer_link *link, int timeout_ms);

#endif
