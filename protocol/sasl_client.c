/* sasl_client.c - the client side of SASL PLAIN and SCRAM, see sasl_client.h. */
#include "protocol/sasl_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/base64.h"
#include "protocol/api.h"
#include "protocol/messages.h"

#define B64_SIZE(n) (((n) + 2) / 3 * 4 + 1)

tl_err tl_client_sasl_conf_check(const struct tl_client_sasl_conf *conf, char *why, size_t why_size)
{
	const char *m = conf->mechanism;
	if (strcmp(m, "PLAIN") != 0 && tl_scram_mechanism_of(m, strlen(m)) == TL_SCRAM_UNKNOWN) {
		snprintf(
			why, why_size,
			"sasl.mechanisms=%s is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
			m);
		return TL_ERR_INVALID;
	}
	if (!conf->username || !conf->username[0] || !conf->password) {
		snprintf(why, why_size, "sasl.mechanisms=%s needs sasl.username and sasl.password",
			 m);
		return TL_ERR_INVALID;
	}
	if (strlen(conf->username) > 200 || strlen(conf->password) > 1024) {
		snprintf(why, why_size, "sasl.username or sasl.password is too long");
		return TL_ERR_INVALID;
	}
	return TL_OK;
}

void tl_client_sasl_start(struct tl_client_sasl *sasl, const struct tl_client_sasl_conf *conf,
			  struct tl_buf *body)
{
	memset(sasl, 0, sizeof(*sasl));
	sasl->conf = conf;
	sasl->step = TL_CLIENT_SASL_HANDSHAKE;
	sasl->scram = tl_scram_mechanism_of(conf->mechanism, strlen(conf->mechanism));
	struct tl_sasl_handshake_request req;
	tl_sasl_handshake_request_defaults(&req);
	req.mechanism = tl_str_of(conf->mechanism);
	tl_sasl_handshake_request_encode(body, TL_CLIENT_SASL_HANDSHAKE_VERSION, &req);
}

static void authenticate_body(struct tl_buf *next, const void *token, size_t len)
{
	struct tl_sasl_authenticate_request req;
	tl_sasl_authenticate_request_defaults(&req);
	req.auth_bytes.ptr = token;
	req.auth_bytes.len = (int32_t)len;
	tl_sasl_authenticate_request_encode(next, TL_CLIENT_SASL_AUTHENTICATE_VERSION, &req);
}

/* The first token: PLAIN's whole, or SCRAM's client-first-message. */
static tl_err first_token(struct tl_client_sasl *sasl, struct tl_buf *next, char *why,
			  size_t why_size)
{
	const struct tl_client_sasl_conf *conf = sasl->conf;
	if (sasl->scram == TL_SCRAM_UNKNOWN) {
		char token[1300];
		size_t ulen = strlen(conf->username), plen = strlen(conf->password);
		TL_ASSERT(ulen + plen + 2 <= sizeof(token));
		token[0] = '\0';
		memcpy(token + 1, conf->username, ulen);
		token[1 + ulen] = '\0';
		memcpy(token + 2 + ulen, conf->password, plen);
		authenticate_body(next, token, ulen + plen + 2);
		tl_scram_wipe(token, sizeof(token));
		return TL_ERR_AGAIN;
	}
	uint8_t random[24];
	char name[420];
	if (!tl_scram_random(random, sizeof(random)) ||
	    !tl_scram_name_encode(conf->username, name, sizeof(name))) {
		snprintf(why, why_size, "SCRAM: no randomness, or the user name is too long");
		return TL_ERR_INVALID;
	}
	tl_base64_encode(random, sizeof(random), sasl->nonce);
	snprintf(sasl->client_first_bare, sizeof(sasl->client_first_bare), "n=%s,r=%s", name,
		 sasl->nonce);
	char token[sizeof(sasl->client_first_bare) + 4];
	int n = snprintf(token, sizeof(token), "n,,%s", sasl->client_first_bare);
	authenticate_body(next, token, (size_t)n);
	return TL_ERR_AGAIN;
}

/* server-first-message in, client-final-message out. */
static tl_err final_token(struct tl_client_sasl *sasl, struct tl_bytes in, struct tl_buf *next,
			  char *why, size_t why_size)
{
	const char *msg = (const char *)in.ptr;
	size_t len = (size_t)(in.len > 0 ? in.len : 0);
	size_t nonce_len, salt_len, iter_len;
	const char *nonce = tl_scram_attr(msg, len, 'r', &nonce_len);
	const char *salt_b64 = tl_scram_attr(msg, len, 's', &salt_len);
	const char *iter = tl_scram_attr(msg, len, 'i', &iter_len);
	size_t mine = strlen(sasl->nonce);
	uint8_t salt[TL_SCRAM_SALT_MAX + 4];
	size_t salt_bytes = 0;
	char iter_text[16];
	int iterations = 0;
	if (iter && iter_len < sizeof(iter_text)) {
		memcpy(iter_text, iter, iter_len);
		iter_text[iter_len] = '\0';
		iterations = atoi(iter_text);
	}
	if (len >= 1024 || !nonce || nonce_len <= mine || memcmp(nonce, sasl->nonce, mine) != 0 ||
	    !salt_b64 || salt_len > B64_SIZE(TL_SCRAM_SALT_MAX) - 1 ||
	    !tl_base64_decode(salt_b64, salt_len, salt, &salt_bytes) || salt_bytes == 0 ||
	    iterations < TL_SCRAM_ITERATIONS_MIN || iterations > 1000000) {
		snprintf(why, why_size, "SCRAM: the broker's server-first message is malformed");
		return TL_ERR_ILLEGAL_SASL_STATE;
	}
	uint8_t salted[TL_SCRAM_KEY_MAX];
	const char *password = sasl->conf->password;
	if (!tl_scram_salted_password(sasl->scram, password, strlen(password), salt, salt_bytes,
				      iterations, salted)) {
		snprintf(why, why_size, "SCRAM: PBKDF2 failed");
		return TL_ERR_INVALID;
	}
	char without_proof[1100];
	int wn = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)nonce_len,
			  nonce);
	char auth_message[2700];
	int an = snprintf(auth_message, sizeof(auth_message), "%s,%.*s,%s", sasl->client_first_bare,
			  (int)len, msg, without_proof);
	TL_ASSERT(wn > 0 && an > 0 && (size_t)an < sizeof(auth_message));
	uint8_t proof[TL_SCRAM_KEY_MAX];
	tl_scram_client_proof(sasl->scram, salted, auth_message, (size_t)an, proof,
			      sasl->server_signature);
	tl_scram_wipe(salted, sizeof(salted));
	char proof_b64[B64_SIZE(TL_SCRAM_KEY_MAX)];
	tl_base64_encode(proof, tl_scram_key_len(sasl->scram), proof_b64);
	char token[sizeof(without_proof) + sizeof(proof_b64) + 4];
	int n = snprintf(token, sizeof(token), "%s,p=%s", without_proof, proof_b64);
	authenticate_body(next, token, (size_t)n);
	return TL_ERR_AGAIN;
}

/* server-final-message: v=<ServerSignature>, proving the broker knows the credential. */
static tl_err check_server_final(struct tl_client_sasl *sasl, struct tl_bytes in, char *why,
				 size_t why_size)
{
	size_t v_len;
	const char *v =
		tl_scram_attr((const char *)in.ptr, (size_t)(in.len > 0 ? in.len : 0), 'v', &v_len);
	uint8_t sig[TL_SCRAM_KEY_MAX + 4];
	size_t sig_len = 0;
	uint32_t key_len = tl_scram_key_len(sasl->scram);
	if (!v || v_len != (size_t)B64_SIZE(key_len) - 1 ||
	    !tl_base64_decode(v, v_len, sig, &sig_len) || sig_len != key_len ||
	    !tl_scram_equal(sig, sasl->server_signature, key_len)) {
		snprintf(why, why_size,
			 "SCRAM: the broker's signature is wrong (it does not hold this user's "
			 "credential)");
		return TL_ERR_SASL_AUTHENTICATION_FAILED;
	}
	return TL_OK;
}

tl_err tl_client_sasl_step(struct tl_client_sasl *sasl, int16_t api_key, struct tl_cursor *body,
			   int16_t version, struct tl_buf *next, char *why, size_t why_size)
{
	struct tl_arena arena;
	tl_arena_init(&arena, 1 << 20);
	tl_err err;
	if (sasl->step == TL_CLIENT_SASL_HANDSHAKE) {
		struct tl_sasl_handshake_response resp;
		TL_ASSERT(api_key == TL_API_SASL_HANDSHAKE);
		if (tl_sasl_handshake_response_decode(body, version, &arena, &resp) != TL_OK) {
			snprintf(why, why_size, "SaslHandshake response malformed");
			err = TL_ERR_CORRUPT_MESSAGE;
			goto out;
		}
		if (resp.error_code != 0) {
			char list[256] = "";
			size_t at = 0;
			for (int32_t i = 0; i < resp.mechanisms_count && at < sizeof(list) - 1; i++)
				at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%.*s",
						       i ? "," : "", resp.mechanisms[i].len,
						       resp.mechanisms[i].ptr);
			snprintf(why, why_size,
				 "the broker refused SASL mechanism %s (%s); it enables: %s",
				 sasl->conf->mechanism, tl_err_name((tl_err)resp.error_code),
				 list[0] ? list : "none");
			err = (tl_err)resp.error_code;
			goto out;
		}
		sasl->step = TL_CLIENT_SASL_FIRST;
		err = first_token(sasl, next, why, why_size);
		goto out;
	}
	struct tl_sasl_authenticate_response resp;
	TL_ASSERT(api_key == TL_API_SASL_AUTHENTICATE);
	if (tl_sasl_authenticate_response_decode(body, version, &arena, &resp) != TL_OK) {
		snprintf(why, why_size, "SaslAuthenticate response malformed");
		err = TL_ERR_CORRUPT_MESSAGE;
		goto out;
	}
	if (resp.error_code != 0) {
		snprintf(why, why_size, "SASL authentication failed for user %s: %.*s",
			 sasl->conf->username,
			 resp.error_message.len > 0 ? resp.error_message.len : 0,
			 resp.error_message.ptr ? resp.error_message.ptr : "");
		err = (tl_err)resp.error_code;
		goto out;
	}
	sasl->session_lifetime_ms = resp.session_lifetime_ms;
	if (sasl->step == TL_CLIENT_SASL_FIRST && sasl->scram != TL_SCRAM_UNKNOWN) {
		sasl->step = TL_CLIENT_SASL_FINAL;
		err = final_token(sasl, resp.auth_bytes, next, why, why_size);
		goto out;
	}
	err = sasl->step == TL_CLIENT_SASL_FINAL
		      ? check_server_final(sasl, resp.auth_bytes, why, why_size)
		      : TL_OK;
	if (err == TL_OK)
		sasl->step = TL_CLIENT_SASL_DONE;
out:
	tl_arena_deinit(&arena);
	return err;
}

void tl_client_sasl_reset(struct tl_client_sasl *sasl)
{
	tl_scram_wipe(sasl, sizeof(*sasl));
}
