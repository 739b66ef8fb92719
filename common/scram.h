/* scram.h - SCRAM (RFC 5802, RFC 7677) arithmetic for SHA-256 and SHA-512, shared by the
 * broker (verifier) and the clients (prover). No I/O and no state machine: the callers
 * own the message exchange.
 *
 *   SaltedPassword = PBKDF2(HMAC, password, salt, iterations)
 *   ClientKey = HMAC(SaltedPassword, "Client Key")    StoredKey = H(ClientKey)
 *   ServerKey = HMAC(SaltedPassword, "Server Key")
 *   ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 *
 * A credential as stored keeps only salt, iterations, StoredKey and ServerKey: enough to
 * verify a proof and sign, not to log in. */
#ifndef TL_COMMON_SCRAM_H
#define TL_COMMON_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kafka's ScramMechanism ids, as on the wire of {Describe,Alter}UserScramCredentials. */
enum tl_scram_mechanism {
	TL_SCRAM_UNKNOWN = 0,
	TL_SCRAM_SHA_256 = 1,
	TL_SCRAM_SHA_512 = 2,
};

#define TL_SCRAM_KEY_MAX        64 /* SHA-512 output */
#define TL_SCRAM_SALT_MAX       64
#define TL_SCRAM_ITERATIONS_MIN 4096  /* Kafka's ScramMechanism.minIterations */
#define TL_SCRAM_ITERATIONS_MAX 16384 /* Kafka's AlterUserScramCredentials limit */

struct tl_scram_credential {
	enum tl_scram_mechanism mechanism;
	int32_t iterations;
	uint8_t salt[TL_SCRAM_SALT_MAX];
	uint32_t salt_len;
	uint8_t stored_key[TL_SCRAM_KEY_MAX];
	uint8_t server_key[TL_SCRAM_KEY_MAX];
};

/* "SCRAM-SHA-256" / "SCRAM-SHA-512", or NULL. */
const char *tl_scram_mechanism_name(enum tl_scram_mechanism mechanism);
/* The mechanism named by @len bytes of @name, or TL_SCRAM_UNKNOWN. */
enum tl_scram_mechanism tl_scram_mechanism_of(const char *name, size_t len);
/* Hash output bytes: 32 or 64; 0 for an unknown mechanism. */
uint32_t tl_scram_key_len(enum tl_scram_mechanism mechanism);

/* SaltedPassword into @out (tl_scram_key_len bytes). False if OpenSSL fails. */
bool tl_scram_salted_password(enum tl_scram_mechanism mechanism, const char *password,
			      size_t password_len, const uint8_t *salt, size_t salt_len,
			      int32_t iterations, uint8_t *out);
/* Fills @cred's StoredKey and ServerKey from @salted (salt and iterations are the
 * caller's to set). */
void tl_scram_credential_from_salted(struct tl_scram_credential *cred, const uint8_t *salted);
/* Server: checks @proof (tl_scram_key_len bytes) against @cred for @auth_message and,
 * when it holds, writes ServerSignature into @signature_out. Constant-time compare. */
bool tl_scram_verify_proof(const struct tl_scram_credential *cred, const char *auth_message,
			   size_t auth_message_len, const uint8_t *proof, uint8_t *signature_out);
/* Client: ClientProof and the ServerSignature to expect, from SaltedPassword. */
void tl_scram_client_proof(enum tl_scram_mechanism mechanism, const uint8_t *salted,
			   const char *auth_message, size_t auth_message_len, uint8_t *proof_out,
			   uint8_t *signature_out);
/* Server: the credential shown for a user the store lacks (RFC 5802 5.1's advice), so
 * that an exchange looks the same, and takes the same work, as for a real user with
 * the wrong password: a 32-byte salt derived from @secret, @mechanism and @user (the
 * same on every attempt while @secret stays), TL_SCRAM_ITERATIONS_MIN iterations and
 * keys nobody can match without @secret. The caller still refuses the login. */
void tl_scram_mock_credential(const uint8_t *secret, size_t secret_len,
			      enum tl_scram_mechanism mechanism, const char *user,
			      struct tl_scram_credential *out);
/* Fills @out with @len random bytes from OpenSSL's CSPRNG. False on failure. */
bool tl_scram_random(uint8_t *out, size_t len);
/* Zeroes @len bytes at @p where the compiler cannot drop it (keys, passwords). */
void tl_scram_wipe(void *p, size_t len);
/* Constant-time equality of @len bytes. */
bool tl_scram_equal(const uint8_t *a, const uint8_t *b, size_t len);

/* The value of attribute @name ('r', 's', ...) in a SCRAM message "a=..,b=..": points into
 * @msg, length in *len_out; NULL when absent. */
const char *tl_scram_attr(const char *msg, size_t msg_len, char name, size_t *len_out);
/* saslname (RFC 5802 5.1: "=2C" for ',', "=3D" for '=') to a plain name in @out of
 * @out_size bytes (NUL-terminated). False when malformed or too long. */
bool tl_scram_name_decode(const char *in, size_t len, char *out, size_t out_size);
/* A plain name to saslname. False when too long. */
bool tl_scram_name_encode(const char *name, char *out, size_t out_size);

#endif
