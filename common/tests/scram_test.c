/* scram_test.c - SCRAM arithmetic against RFC 7677's SCRAM-SHA-256 exchange (section 3):
 * the client's proof, the server's check of it and the server signature. */
#include <string.h>

#include <check.h>

#include "common/base64.h"
#include "common/scram.h"
#include "common/tests/check_run.h"

#define CLIENT_FIRST_BARE "n=user,r=rOprNGfwEbeRWgbNEkqO"
#define SERVER_FIRST                                                                               \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define CLIENT_FINAL_NO_PROOF "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define PROOF                 "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SIGNATURE             "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const char auth_message[] = CLIENT_FIRST_BARE "," SERVER_FIRST "," CLIENT_FINAL_NO_PROOF;

static void rfc7677_credential(struct tl_scram_credential *cred, uint8_t *salted)
{
	memset(cred, 0, sizeof(*cred));
	cred->mechanism = TL_SCRAM_SHA_256;
	cred->iterations = 4096;
	size_t salt_len = 0;
	ck_assert(tl_base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, cred->salt, &salt_len));
	cred->salt_len = (uint32_t)salt_len;
	ck_assert(tl_scram_salted_password(TL_SCRAM_SHA_256, "pencil", 6, cred->salt, salt_len,
					   4096, salted));
	tl_scram_credential_from_salted(cred, salted);
}

START_TEST(client_proof_matches_rfc7677)
{
	struct tl_scram_credential cred;
	uint8_t salted[TL_SCRAM_KEY_MAX];
	rfc7677_credential(&cred, salted);
	uint8_t proof[TL_SCRAM_KEY_MAX], signature[TL_SCRAM_KEY_MAX];
	tl_scram_client_proof(TL_SCRAM_SHA_256, salted, auth_message, strlen(auth_message), proof,
			      signature);
	char text[100];
	tl_base64_encode(proof, 32, text);
	ck_assert_str_eq(text, PROOF);
	tl_base64_encode(signature, 32, text);
	ck_assert_str_eq(text, SIGNATURE);
}
END_TEST

START_TEST(server_verifies_rfc7677_proof_and_signs)
{
	struct tl_scram_credential cred;
	uint8_t salted[TL_SCRAM_KEY_MAX];
	rfc7677_credential(&cred, salted);
	uint8_t proof[64];
	size_t n = 0;
	ck_assert(tl_base64_decode(PROOF, strlen(PROOF), proof, &n));
	ck_assert_uint_eq(n, 32);
	uint8_t signature[TL_SCRAM_KEY_MAX];
	ck_assert(
		tl_scram_verify_proof(&cred, auth_message, strlen(auth_message), proof, signature));
	char text[100];
	tl_base64_encode(signature, 32, text);
	ck_assert_str_eq(text, SIGNATURE);
	/* One bit off in the proof, or another AuthMessage: refused. */
	proof[7] ^= 1;
	ck_assert(!tl_scram_verify_proof(&cred, auth_message, strlen(auth_message), proof,
					 signature));
	proof[7] ^= 1;
	ck_assert(!tl_scram_verify_proof(&cred, auth_message, strlen(auth_message) - 1, proof,
					 signature));
}
END_TEST

START_TEST(sha512_round_trip)
{
	struct tl_scram_credential cred = {.mechanism = TL_SCRAM_SHA_512, .iterations = 4096};
	cred.salt_len = 16;
	ck_assert(tl_scram_random(cred.salt, cred.salt_len));
	uint8_t salted[TL_SCRAM_KEY_MAX], wrong[TL_SCRAM_KEY_MAX];
	ck_assert(tl_scram_salted_password(TL_SCRAM_SHA_512, "secret", 6, cred.salt, 16, 4096,
					   salted));
	tl_scram_credential_from_salted(&cred, salted);
	ck_assert(tl_scram_salted_password(TL_SCRAM_SHA_512, "secreT", 6, cred.salt, 16, 4096,
					   wrong));
	const char *msg = "n=a,r=x,r=xy,s=c2FsdA==,i=4096,c=biws,r=xy";
	uint8_t proof[64], sig[64], sig2[64];
	tl_scram_client_proof(TL_SCRAM_SHA_512, salted, msg, strlen(msg), proof, sig);
	ck_assert(tl_scram_verify_proof(&cred, msg, strlen(msg), proof, sig2));
	ck_assert(memcmp(sig, sig2, 64) == 0);
	tl_scram_client_proof(TL_SCRAM_SHA_512, wrong, msg, strlen(msg), proof, sig);
	ck_assert(!tl_scram_verify_proof(&cred, msg, strlen(msg), proof, sig2));
}
END_TEST

START_TEST(attributes_and_saslnames)
{
	const char *msg = "n=us=2Cer=3D,r=abc,tokenauth=true";
	size_t len = 0;
	const char *v = tl_scram_attr(msg, strlen(msg), 'r', &len);
	ck_assert(v && len == 3 && memcmp(v, "abc", 3) == 0);
	ck_assert(!tl_scram_attr(msg, strlen(msg), 's', &len));
	v = tl_scram_attr(msg, strlen(msg), 'n', &len);
	char name[32];
	ck_assert(tl_scram_name_decode(v, len, name, sizeof(name)));
	ck_assert_str_eq(name, "us,er=");
	char enc[32];
	ck_assert(tl_scram_name_encode(name, enc, sizeof(enc)));
	ck_assert_str_eq(enc, "us=2Cer=3D");
	ck_assert(!tl_scram_name_decode("a=2", 3, name, sizeof(name)));
	ck_assert(!tl_scram_name_decode("a=41", 4, name, sizeof(name)));
	ck_assert(!tl_scram_name_decode("abcdef", 6, name, 4));
	ck_assert(tl_scram_mechanism_of("SCRAM-SHA-512", 13) == TL_SCRAM_SHA_512);
	ck_assert(tl_scram_mechanism_of("PLAIN", 5) == TL_SCRAM_UNKNOWN);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("scram");
	TCase *tc = tcase_create("rfc7677");
	tcase_add_test(tc, client_proof_matches_rfc7677);
	tcase_add_test(tc, server_verifies_rfc7677_proof_and_signs);
	tcase_add_test(tc, sha512_round_trip);
	tcase_add_test(tc, attributes_and_saslnames);
	suite_add_tcase(suite, tc);
	return tl_check_run(suite);
}
