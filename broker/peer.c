/* peer.c - see peer.h.
 * Invariants: (1) link->out holds at most one SASL request, link->in at most one
 * response; (2) a link reaches READY only after TLS (when the protocol has it) and SASL
 * (when it has it) both succeeded; (3) the password is only in security->sasl and the
 * SCRAM state, wiped when the link or the security is freed. */
#include "broker/peer.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/scram.h"
#include "common/time.h"
#include "protocol/api.h"

/* ---- the broker's login ---- */

tl_err tl_peer_security_init(struct tl_peer_security *sec, const struct tl_config *config,
			     char *why, size_t why_size)
{
	memset(sec, 0, sizeof(*sec));
	const struct tl_listener *inter = &config->listener_list[config->listener_served];
	sec->protocol = inter->security_protocol;
	snprintf(sec->protocol_name, sizeof(sec->protocol_name), "%s", inter->protocol);
	snprintf(sec->principal, sizeof(sec->principal), "User:ANONYMOUS");
	if (tl_security_protocol_is_tls(sec->protocol)) {
		/* Kafka's broker uses its own keystore and truststore as a client too. */
		struct tl_tls_client_conf tls = {
			.ca_location = config->ssl_truststore_location,
			.certificate_location = config->ssl_keystore_location,
			.key_location = "",
			.key_password = config->ssl_key_password,
			.verify = true,
		};
		sec->tls_ctx = tl_tls_client_ctx_create(&tls, why, why_size);
		if (!sec->tls_ctx)
			return TL_ERR_INVALID;
		sec->verify_host =
			strcasecmp(config->ssl_endpoint_identification_algorithm, "https") == 0;
		if (!tl_security_protocol_is_sasl(sec->protocol))
			tl_tls_ctx_principal(sec->tls_ctx, sec->principal, sizeof(sec->principal));
	}
	if (tl_security_protocol_is_sasl(sec->protocol)) {
		sec->sasl.mechanism = strdup(config->sasl_mechanism_inter_broker_protocol);
		sec->sasl.username = strdup(config->inter_broker_sasl_username);
		sec->sasl.password = strdup(config->inter_broker_sasl_password);
		if (!sec->sasl.mechanism || !sec->sasl.username || !sec->sasl.password) {
			tl_peer_security_deinit(sec);
			snprintf(why, why_size, "out of memory");
			return TL_ERR_NOMEM;
		}
		tl_err err = tl_client_sasl_conf_check(&sec->sasl, why, why_size);
		if (err != TL_OK) {
			tl_peer_security_deinit(sec);
			return err;
		}
		snprintf(sec->principal, sizeof(sec->principal), "User:%s", sec->sasl.username);
	}
	return TL_OK;
}

void tl_peer_security_deinit(struct tl_peer_security *sec)
{
	tl_tls_ctx_free(sec->tls_ctx);
	sec->tls_ctx = NULL;
	if (sec->sasl.password)
		tl_scram_wipe(sec->sasl.password, strlen(sec->sasl.password));
	free(sec->sasl.password);
	free(sec->sasl.username);
	free(sec->sasl.mechanism);
	memset(&sec->sasl, 0, sizeof(sec->sasl));
}

/* ---- links ---- */

tl_err tl_peer_link_init(struct tl_peer_link *link, const struct tl_peer_security *sec, int fd,
			 const char *host)
{
	memset(link, 0, sizeof(*link));
	link->security = sec;
	tl_buf_init(&link->out);
	if (!sec->tls_ctx) {
		tl_transport_init_plain(&link->transport, fd);
		link->state = sec->sasl.mechanism ? TL_PEER_SASL : TL_PEER_READY;
		return TL_OK;
	}
	link->state = TL_PEER_TLS;
	return tl_transport_init_tls(&link->transport, fd, sec->tls_ctx, false,
				     sec->verify_host ? host : NULL);
}

static void out_reset(struct tl_peer_link *link)
{
	if (link->out.data)
		tl_scram_wipe(link->out.data, link->out.cap); /* PLAIN's token holds the password */
	tl_buf_deinit(&link->out);
	tl_buf_init(&link->out);
	link->out_sent = 0;
}

void tl_peer_link_deinit(struct tl_peer_link *link)
{
	out_reset(link);
	tl_buf_deinit(&link->out);
	free(link->in);
	link->in = NULL;
	tl_client_sasl_reset(&link->sasl);
	tl_transport_deinit(&link->transport);
}

static tl_err link_fail(struct tl_peer_link *link, tl_err err, const char *what)
{
	link->failure = err;
	snprintf(link->why, sizeof(link->why), "%s", what);
	return err;
}

static tl_err link_fail_io(struct tl_peer_link *link, const char *stage)
{
	char detail[200];
	tl_transport_error(&link->transport, detail, sizeof(detail));
	snprintf(link->why, sizeof(link->why), "%s: %s", stage, detail);
	link->failure = TL_ERR_IO;
	return TL_ERR_IO;
}

/* Frames @body (a SASL request's) behind its header into link->out. */
static void sasl_request(struct tl_peer_link *link, int16_t api_key, int16_t version,
			 const struct tl_buf *body)
{
	out_reset(link);
	link->api_key = api_key;
	link->api_version = version;
	struct tl_request_header header = {.api_key = api_key,
					   .api_version = version,
					   .correlation_id = ++link->correlation_id,
					   .client_id = tl_str_of("tallyd-inter-broker")};
	tl_buf_i32(&link->out, 0);
	tl_request_header_encode(&link->out, &header);
	tl_buf_put(&link->out, body->data, body->len);
	if (!link->out.failed)
		tl_be32_put(link->out.data, (uint32_t)(link->out.len - 4));
}

/* Sends what is left of link->out: TL_OK when all of it went. */
static tl_err sasl_flush(struct tl_peer_link *link)
{
	while (link->out_sent < link->out.len) {
		struct iovec iov = {.iov_base = link->out.data + link->out_sent,
				    .iov_len = link->out.len - link->out_sent};
		ssize_t n = tl_transport_writev(&link->transport, &iov, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (!link->transport.ssl)
				link->transport.want_write = true;
			return TL_ERR_AGAIN;
		}
		if (n <= 0)
			return link_fail_io(link, "sending a SASL request");
		link->out_sent += (size_t)n;
	}
	link->transport.want_write = false;
	return TL_OK;
}

/* Reads the response to the request in flight: TL_OK when link->in holds it whole. */
static tl_err sasl_read(struct tl_peer_link *link)
{
	for (;;) {
		uint8_t *dst;
		size_t want;
		if (link->in_have < 4) {
			dst = link->size_prefix + link->in_have;
			want = 4 - link->in_have;
		} else {
			dst = link->in + (link->in_have - 4);
			want = link->in_bytes - (link->in_have - 4);
		}
		if (want == 0)
			return TL_OK;
		ssize_t n = tl_transport_read(&link->transport, dst, want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (!link->transport.ssl)
				link->transport.want_write = false;
			return TL_ERR_AGAIN;
		}
		if (n <= 0)
			return link_fail_io(link, "reading a SASL response (the peer closed: "
						  "a refused login closes the connection)");
		link->in_have += (size_t)n;
		if (link->in_have == 4) {
			uint32_t size = tl_be32_get(link->size_prefix);
			if (size < 4 || size > TL_PEER_SASL_FRAME_MAX)
				return link_fail(link, TL_ERR_IO, "a SASL response of a bad size");
			link->in_bytes = size;
			link->in = malloc(size);
			if (!link->in)
				return link_fail(link, TL_ERR_NOMEM, "out of memory");
		}
	}
}

/* One whole response in link->in: the next request, or the end of the exchange. */
static tl_err sasl_on_response(struct tl_peer_link *link)
{
	struct tl_cursor cursor;
	tl_cursor_init(&cursor, link->in, link->in_bytes);
	int32_t correlation_id;
	tl_err err = tl_response_header_decode(&cursor, link->api_key, link->api_version,
					       &correlation_id);
	if (err != TL_OK || correlation_id != link->correlation_id)
		return link_fail(link, TL_ERR_IO, "a SASL response out of step");
	struct tl_buf next;
	tl_buf_init(&next);
	char why[256];
	err = tl_client_sasl_step(&link->sasl, link->api_key, &cursor, link->api_version, &next,
				  why, sizeof(why));
	free(link->in);
	link->in = NULL;
	link->in_have = link->in_bytes = 0;
	if (err == TL_ERR_AGAIN)
		sasl_request(link, TL_API_SASL_AUTHENTICATE, TL_CLIENT_SASL_AUTHENTICATE_VERSION,
			     &next);
	if (next.data)
		tl_scram_wipe(next.data, next.cap);
	tl_buf_deinit(&next);
	if (err == TL_ERR_AGAIN && link->out.failed)
		return link_fail(link, TL_ERR_NOMEM, "out of memory");
	if (err != TL_OK && err != TL_ERR_AGAIN)
		return link_fail(link, err, why);
	return err;
}

static tl_err link_sasl(struct tl_peer_link *link)
{
	if (link->sasl.conf == NULL) {
		struct tl_buf body;
		tl_buf_init(&body);
		tl_client_sasl_start(&link->sasl, &link->security->sasl, &body);
		sasl_request(link, TL_API_SASL_HANDSHAKE, TL_CLIENT_SASL_HANDSHAKE_VERSION, &body);
		tl_buf_deinit(&body);
		if (link->out.failed)
			return link_fail(link, TL_ERR_NOMEM, "out of memory");
	}
	for (;;) {
		tl_err err = sasl_flush(link);
		if (err != TL_OK)
			return err;
		err = sasl_read(link);
		if (err != TL_OK)
			return err;
		err = sasl_on_response(link);
		if (err != TL_ERR_AGAIN)
			return err; /* TL_OK: authenticated */
	}
}

/* KIP-368: log in again at 85-95% of @lifetime_ms (spread so that links opened together
 * do not all re-authenticate at once), as Kafka's client does. */
static void link_session_start(struct tl_peer_link *link, int64_t lifetime_ms)
{
	link->logins++;
	link->session_lifetime_ms = lifetime_ms > 0 ? lifetime_ms : 0;
	link->reauth_at_ms = 0;
	if (lifetime_ms <= 0)
		return;
	uint16_t r = 0;
	if (!tl_scram_random((uint8_t *)&r, sizeof(r)))
		r = (uint16_t)(tl_mono_ms() & 0xffff);
	double share = 0.85 + 0.10 * (double)r / 65536.0;
	int64_t after = (int64_t)((double)lifetime_ms * share);
	link->reauth_at_ms = tl_mono_ms() + TL_MAX(after, 1);
}

bool tl_peer_link_reauth_due(const struct tl_peer_link *link, int64_t now_ms)
{
	return link->state == TL_PEER_READY && link->reauth_at_ms != 0 &&
	       now_ms >= link->reauth_at_ms;
}

void tl_peer_link_reauth_start(struct tl_peer_link *link)
{
	TL_ASSERT(link->state == TL_PEER_READY && link->security->sasl.mechanism);
	TL_ASSERT(!link->in && link->out_sent == link->out.len);
	memset(&link->sasl, 0, sizeof(link->sasl)); /* conf NULL: link_sasl starts over */
	link->reauth_at_ms = 0;
	link->state = TL_PEER_SASL;
}

tl_err tl_peer_link_advance(struct tl_peer_link *link)
{
	if (link->state == TL_PEER_TLS) {
		tl_err err = tl_transport_handshake(&link->transport);
		if (err == TL_ERR_AGAIN)
			return err;
		if (err != TL_OK)
			return link_fail_io(link, "TLS handshake");
		link->state = link->security->sasl.mechanism ? TL_PEER_SASL : TL_PEER_READY;
	}
	if (link->state == TL_PEER_SASL) {
		tl_err err = link_sasl(link);
		if (err != TL_OK)
			return err;
		link_session_start(link, link->sasl.session_lifetime_ms);
		tl_client_sasl_reset(&link->sasl);
		out_reset(link);
		link->state = TL_PEER_READY;
	}
	TL_ASSERT(link->state == TL_PEER_READY);
	TL_ASSERT(!link->in);
	link->transport.want_write = false;
	return TL_OK;
}

bool tl_peer_link_wait(const struct tl_peer_link *link, int timeout_ms)
{
	struct pollfd pfd = {.fd = link->transport.fd,
			     .events = link->transport.want_write ? POLLOUT : POLLIN};
	int n;
	do {
		n = poll(&pfd, 1, timeout_ms);
	} while (n == -1 && errno == EINTR);
	return n == 1;
}
