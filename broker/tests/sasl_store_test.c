/* sasl_store_test.c - the SCRAM credential store's text form and the merge rules the
 * cluster's metadata thread applies to the scram-credentials key (issue #16): set all
 * (AlterUserScramCredentials), set if absent (--add-scram), remove exact pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "broker/broker.h"
#include "common/scram.h"
#include "common/tests/check_run.h"

/* @users gets @name's credential for @mech, salted from @password with @iterations. */
static void put(struct tl_sasl_users *users, const char *name, enum tl_scram_mechanism mech,
		const char *password, int32_t iterations)
{
	char text[1024];
	struct tl_sasl_users one = {0};
	uint8_t salt[16] = {1, 2, 3}, salted[TL_SCRAM_KEY_MAX];
	ck_assert(tl_scram_salted_password(mech, password, strlen(password), salt, sizeof(salt),
					   iterations, salted));
	struct tl_scram_credential cred = {
		.mechanism = mech, .iterations = iterations, .salt_len = sizeof(salt)};
	memcpy(cred.salt, salt, sizeof(salt));
	tl_scram_credential_from_salted(&cred, salted);
	/* Through the text form, as the metadata thread receives it. */
	struct tl_sasl_user *u = calloc(1, sizeof(*u));
	ck_assert_ptr_nonnull(u);
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->cred[mech - 1] = cred;
	u->has[mech - 1] = true;
	one.users = u;
	one.count = one.cap = 1;
	char *formatted = tl_sasl_users_format(&one);
	ck_assert_ptr_nonnull(formatted);
	ck_assert_ptr_null(strstr(formatted, password));
	snprintf(text, sizeof(text), "%s", formatted);
	free(formatted);
	tl_sasl_users_deinit(&one);
	struct tl_sasl_users parsed = {0};
	int32_t bad = 0;
	ck_assert_int_eq(tl_sasl_users_parse(&parsed, text, &bad), TL_OK);
	ck_assert_int_eq(tl_sasl_users_merge(users, &parsed, true), 1);
	tl_sasl_users_deinit(&parsed);
}

static const struct tl_sasl_user *find(const struct tl_sasl_users *users, const char *name)
{
	for (int32_t i = 0; i < users->count; i++)
		if (strcmp(users->users[i].name, name) == 0)
			return &users->users[i];
	return NULL;
}

START_TEST(merge_replaces_or_keeps_and_removes_exact_pairs)
{
	struct tl_sasl_users store = {0}, change = {0};
	put(&store, "admin", TL_SCRAM_SHA_512, "admin-secret-one", 4096);
	put(&store, "carol", TL_SCRAM_SHA_256, "carol-secret", 4096);
	put(&change, "admin", TL_SCRAM_SHA_512, "admin-secret-two", 8192);
	put(&change, "dave", TL_SCRAM_SHA_512, "dave-secret", 4096);
	/* --add-scram: only what the store lacks (dave), admin's credential kept. */
	ck_assert_int_eq(tl_sasl_users_merge(&store, &change, false), 1);
	ck_assert_int_eq(find(&store, "admin")->cred[TL_SCRAM_SHA_512 - 1].iterations, 4096);
	ck_assert_ptr_nonnull(find(&store, "dave"));
	/* AlterUserScramCredentials: everything, admin's replaced. */
	ck_assert_int_eq(tl_sasl_users_merge(&store, &change, true), 2);
	ck_assert_int_eq(find(&store, "admin")->cred[TL_SCRAM_SHA_512 - 1].iterations, 8192);
	/* Removal of exact pairs: carol's SHA-512 does not exist (no-op), her SHA-256 goes,
	 * and with it carol; an unknown user is fine; a bad mechanism is refused. */
	ck_assert(tl_sasl_users_remove_lines(&store, "carol SCRAM-SHA-512\nghost SCRAM-SHA-256\n"));
	ck_assert_ptr_nonnull(find(&store, "carol"));
	ck_assert(tl_sasl_users_remove_lines(&store, "carol SCRAM-SHA-256"));
	ck_assert_ptr_null(find(&store, "carol"));
	ck_assert(!tl_sasl_users_remove_lines(&store, "admin MD5\n"));
	ck_assert(!tl_sasl_users_remove_lines(&store, "admin\n"));
	ck_assert_int_eq(store.count, 2);
	ck_assert(tl_sasl_users_remove_lines(&store, ""));
	/* The text form round-trips what is left. */
	char *text = tl_sasl_users_format(&store);
	ck_assert_ptr_nonnull(text);
	struct tl_sasl_users back = {0};
	int32_t bad = 0;
	ck_assert_int_eq(tl_sasl_users_parse(&back, text, &bad), TL_OK);
	ck_assert_int_eq(back.count, 2);
	ck_assert_mem_eq(find(&back, "admin")->cred[TL_SCRAM_SHA_512 - 1].stored_key,
			 find(&store, "admin")->cred[TL_SCRAM_SHA_512 - 1].stored_key, 64);
	free(text);
	tl_sasl_users_deinit(&back);
	tl_sasl_users_deinit(&store);
	tl_sasl_users_deinit(&change);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("broker_sasl_store");
	TCase *tc = tcase_create("store");
	tcase_add_test(tc, merge_replaces_or_keeps_and_removes_exact_pairs);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
