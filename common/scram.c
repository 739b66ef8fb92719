/* scram.c - SCRAM arithmetic on OpenSSL's libcrypto, see scram.h. */
#include "common/scram.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/assert.h"

const char *tl_scram_mechanism_name(enum tl_scram_mechanism mechanism)
{
	switch (mechanism) {
	case TL_SCRAM_SHA_256:
		return "SCRAM-SHA-256";
	case TL_SCRAM_SHA_512:
		return "SCRAM-SHA-512";
	default:
		return NULL;
	}
}

enum tl_scram_mechanism tl_scram_mechanism_of(const char *name, size_t len)
{
	if (len == 13 && memcmp(name, "SCRAM-SHA-256", 13) == 0)
		return TL_SCRAM_SHA_256;
	if (len == 13 && memcmp(name, "SCRAM-SHA-512", 13) == 0)
		return TL_SCRAM_SHA_512;
	return TL_SCRAM_UNKNOWN;
}

uint32_t tl_scram_key_len(enum tl_scram_mechanism mechanism)
{
	return mechanism == TL_SCRAM_SHA_256 ? 32 : mechanism == TL_SCRAM_SHA_512 ? 64 : 0;
}

static const EVP_MD *scram_md(enum tl_scram_mechanism mechanism)
{
	TL_ASSERT(mechanism == TL_SCRAM_SHA_256 || mechanism == TL_SCRAM_SHA_512);
	return mechanism == TL_SCRAM_SHA_256 ? EVP_sha256() : EVP_sha512();
}

static void scram_hmac(enum tl_scram_mechanism mechanism, const uint8_t *key, size_t key_len,
		       const void *data, size_t len, uint8_t *out)
{
	unsigned int out_len = 0;
	uint8_t *r = HMAC(scram_md(mechanism), key, (int)key_len, data, len, out, &out_len);
	TL_ASSERT(r && out_len == tl_scram_key_len(mechanism));
}

static void scram_hash(enum tl_scram_mechanism mechanism, const uint8_t *data, size_t len,
		       uint8_t *out)
{
	unsigned int out_len = 0;
	int ok = EVP_Digest(data, len, out, &out_len, scram_md(mechanism), NULL);
	TL_ASSERT(ok == 1 && out_len == tl_scram_key_len(mechanism));
}

bool tl_scram_salted_password(enum tl_scram_mechanism mechanism, const char *password,
			      size_t password_len, const uint8_t *salt, size_t salt_len,
			      int32_t iterations, uint8_t *out)
{
	if (iterations < 1)
		return false;
	return PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations,
				 scram_md(mechanism), (int)tl_scram_key_len(mechanism), out) == 1;
}

void tl_scram_mock_credential(const uint8_t *secret, size_t secret_len,
			      enum tl_scram_mechanism mechanism, const char *user,
			      struct tl_scram_credential *out)
{
	TL_ASSERT(mechanism == TL_SCRAM_SHA_256 || mechanism == TL_SCRAM_SHA_512);
	memset(out, 0, sizeof(*out));
	out->mechanism = mechanism;
	out->iterations = TL_SCRAM_ITERATIONS_MIN;
	char label[16 + 256];
	int n = snprintf(label, sizeof(label), "salt %d %s", (int)mechanism, user);
	TL_ASSERT(n > 0);
	uint8_t digest[TL_SCRAM_KEY_MAX];
	scram_hmac(TL_SCRAM_SHA_256, secret, secret_len, label,
		   (size_t)TL_MIN(n, (int)sizeof(label) - 1), digest);
	out->salt_len = 32;
	memcpy(out->salt, digest, out->salt_len);
	/* StoredKey and ServerKey from a SaltedPassword only @secret gives. */
	n = snprintf(label, sizeof(label), "keys %d %s", (int)mechanism, user);
	scram_hmac(mechanism, secret, secret_len, label, (size_t)TL_MIN(n, (int)sizeof(label) - 1),
		   digest);
	tl_scram_credential_from_salted(out, digest);
	OPENSSL_cleanse(digest, sizeof(digest));
}

void tl_scram_credential_from_salted(struct tl_scram_credential *cred, const uint8_t *salted)
{
	uint32_t n = tl_scram_key_len(cred->mechanism);
	uint8_t client_key[TL_SCRAM_KEY_MAX];
	scram_hmac(cred->mechanism, salted, n, "Client Key", 10, client_key);
	scram_hash(cred->mechanism, client_key, n, cred->stored_key);
	scram_hmac(cred->mechanism, salted, n, "Server Key", 10, cred->server_key);
	OPENSSL_cleanse(client_key, sizeof(client_key));
}

bool tl_scram_verify_proof(const struct tl_scram_credential *cred, const char *auth_message,
			   size_t auth_message_len, const uint8_t *proof, uint8_t *signature_out)
{
	uint32_t n = tl_scram_key_len(cred->mechanism);
	uint8_t client_signature[TL_SCRAM_KEY_MAX], client_key[TL_SCRAM_KEY_MAX];
	uint8_t stored_key[TL_SCRAM_KEY_MAX];
	scram_hmac(cred->mechanism, cred->stored_key, n, auth_message, auth_message_len,
		   client_signature);
	for (uint32_t i = 0; i < n; i++)
		client_key[i] = proof[i] ^ client_signature[i];
	scram_hash(cred->mechanism, client_key, n, stored_key);
	bool ok = tl_scram_equal(stored_key, cred->stored_key, n);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (ok)
		scram_hmac(cred->mechanism, cred->server_key, n, auth_message, auth_message_len,
			   signature_out);
	return ok;
}

void tl_scram_client_proof(enum tl_scram_mechanism mechanism, const uint8_t *salted,
			   const char *auth_message, size_t auth_message_len, uint8_t *proof_out,
			   uint8_t *signature_out)
{
	struct tl_scram_credential cred = {.mechanism = mechanism};
	uint32_t n = tl_scram_key_len(mechanism);
	uint8_t client_key[TL_SCRAM_KEY_MAX], client_signature[TL_SCRAM_KEY_MAX];
	scram_hmac(mechanism, salted, n, "Client Key", 10, client_key);
	tl_scram_credential_from_salted(&cred, salted);
	scram_hmac(mechanism, cred.stored_key, n, auth_message, auth_message_len, client_signature);
	for (uint32_t i = 0; i < n; i++)
		proof_out[i] = client_key[i] ^ client_signature[i];
	scram_hmac(mechanism, cred.server_key, n, auth_message, auth_message_len, signature_out);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(&cred, sizeof(cred));
}

bool tl_scram_random(uint8_t *out, size_t len)
{
	return RAND_bytes(out, (int)len) == 1;
}

void tl_scram_wipe(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

bool tl_scram_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

const char *tl_scram_attr(const char *msg, size_t msg_len, char name, size_t *len_out)
{
	size_t i = 0;
	while (i < msg_len) {
		size_t end = i;
		while (end < msg_len && msg[end] != ',')
			end++;
		if (end - i >= 2 && msg[i] == name && msg[i + 1] == '=') {
			*len_out = end - i - 2;
			return msg + i + 2;
		}
		i = end + 1;
	}
	return NULL;
}

bool tl_scram_name_decode(const char *in, size_t len, char *out, size_t out_size)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == ',')
			return false;
		if (c == '=') {
			if (i + 2 >= len)
				return false;
			if (in[i + 1] == '2' && in[i + 2] == 'C')
				c = ',';
			else if (in[i + 1] == '3' && in[i + 2] == 'D')
				c = '=';
			else
				return false;
			i += 2;
		}
		if (o + 1 >= out_size)
			return false;
		out[o++] = c;
	}
	if (o >= out_size)
		return false;
	out[o] = '\0';
	return true;
}

bool tl_scram_name_encode(const char *name, char *out, size_t out_size)
{
	size_t o = 0;
	for (const char *p = name; *p; p++) {
		const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
		size_t n = rep ? 3 : 1;
		if (o + n >= out_size)
			return false;
		if (rep)
			memcpy(out + o, rep, 3);
		else
			out[o] = *p;
		o += n;
	}
	out[o] = '\0';
	return true;
}
