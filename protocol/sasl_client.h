/* sasl_client.h - the client side of SASL (KIP-152): SaslHandshake v1, then
 * SaslAuthenticate v1 tokens for PLAIN (RFC 4616) or SCRAM-SHA-256/512 (RFC 5802/7677).
 * A state machine with no I/O, shared by libtally (client/client.c, right after
 * ApiVersions on a fresh connection) and tallyd's inter-broker connections
 * (broker/peer.c): the caller sends the request it builds and feeds it each response;
 * the connection is ready when it says so. */
#ifndef TL_PROTOCOL_SASL_CLIENT_H
#define TL_PROTOCOL_SASL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/scram.h"
#include "tally/error.h"

#define TL_CLIENT_SASL_HANDSHAKE_VERSION    1
#define TL_CLIENT_SASL_AUTHENTICATE_VERSION 1

/* security.protocol / sasl.* as the client was configured; mechanism NULL = no SASL. */
struct tl_client_sasl_conf {
	char *mechanism; /* "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" */
	char *username;
	char *password;
};

enum tl_client_sasl_step {
	TL_CLIENT_SASL_HANDSHAKE = 0, /* SaslHandshake in flight */
	TL_CLIENT_SASL_FIRST,         /* first SaslAuthenticate in flight */
	TL_CLIENT_SASL_FINAL,         /* SCRAM client-final in flight */
	TL_CLIENT_SASL_DONE,
};

struct tl_client_sasl {
	const struct tl_client_sasl_conf *conf;
	enum tl_client_sasl_step step;
	enum tl_scram_mechanism scram; /* TL_SCRAM_UNKNOWN: PLAIN */
	char client_first_bare[512];
	char nonce[64];
	uint8_t server_signature[TL_SCRAM_KEY_MAX];
	int64_t session_lifetime_ms; /* from the last SaslAuthenticate v1 response */
};

/* Checks the mechanism and credentials; a message into @why otherwise. */
tl_err tl_client_sasl_conf_check(const struct tl_client_sasl_conf *conf, char *why,
				 size_t why_size);
/* Starts an exchange: the SaslHandshake body into @body. */
void tl_client_sasl_start(struct tl_client_sasl *sasl, const struct tl_client_sasl_conf *conf,
			  struct tl_buf *body);
/* One response (@api_key's body at @version). TL_ERR_AGAIN: send the SaslAuthenticate
 * body put into @next; TL_OK: authenticated; else the error (a Kafka code such as
 * SASL_AUTHENTICATION_FAILED) with a message in @why. */
tl_err tl_client_sasl_step(struct tl_client_sasl *sasl, int16_t api_key, struct tl_cursor *body,
			   int16_t version, struct tl_buf *next, char *why, size_t why_size);
/* Wipes secrets of an exchange. */
void tl_client_sasl_reset(struct tl_client_sasl *sasl);

#endif
