/* acl_test.c - the authorizer's matcher: Kafka's rules (deny wins, implied operations,
 * wildcards, PREFIXED patterns), filters, removal, and the text form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "broker/acl.h"
#include "common/tests/check_run.h"

static struct tl_acl_binding acl(int8_t type, int8_t pattern, const char *name,
				 const char *principal, const char *host, int8_t op, int8_t perm)
{
	return (struct tl_acl_binding){
		.resource_type = type,
		.pattern_type = pattern,
		.resource_name = tl_str_of(name),
		.principal = tl_str_of(principal),
		.host = tl_str_of(host),
		.operation = op,
		.permission = perm,
	};
}

static void add(struct tl_acls *acls, struct tl_acl_binding b)
{
	ck_assert_ptr_null(tl_acl_binding_invalid(&b));
	ck_assert_int_eq(tl_acls_add(acls, &b), TL_OK);
}

static enum tl_acl_decision topic(const struct tl_acls *acls, const char *principal,
				  const char *host, int8_t op, const char *name)
{
	return tl_acls_authorize(acls, tl_str_of(principal), tl_str_of(host), op,
				 TL_ACL_RESOURCE_TOPIC, tl_str_of(name));
}

#define T  TL_ACL_RESOURCE_TOPIC
#define L  TL_ACL_PATTERN_LITERAL
#define P  TL_ACL_PATTERN_PREFIXED
#define AL TL_ACL_PERMISSION_ALLOW
#define DN TL_ACL_PERMISSION_DENY

START_TEST(read_on_one_topic_allows_only_that)
{
	struct tl_acls a;
	tl_acls_init(&a);
	ck_assert_int_eq(topic(&a, "User:alice", "1.2.3.4", TL_ACL_OP_READ, "t"), TL_ACL_NO_ACLS);
	add(&a, acl(T, L, "t", "User:alice", "*", TL_ACL_OP_READ, AL));
	ck_assert_int_eq(topic(&a, "User:alice", "1.2.3.4", TL_ACL_OP_READ, "t"), TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:alice", "1.2.3.4", TL_ACL_OP_WRITE, "t"), TL_ACL_DENIED);
	ck_assert_int_eq(topic(&a, "User:bob", "1.2.3.4", TL_ACL_OP_READ, "t"), TL_ACL_DENIED);
	/* Another topic has no ACLs at all: the broker's allow.everyone decides. */
	ck_assert_int_eq(topic(&a, "User:alice", "1.2.3.4", TL_ACL_OP_READ, "u"), TL_ACL_NO_ACLS);
	/* Read implies Describe; nothing implies Read. */
	ck_assert_int_eq(topic(&a, "User:alice", "1.2.3.4", TL_ACL_OP_DESCRIBE, "t"),
			 TL_ACL_ALLOWED);
	tl_acls_deinit(&a);
}
END_TEST

START_TEST(implied_operations_are_kafkas)
{
	struct tl_acls a;
	tl_acls_init(&a);
	add(&a, acl(T, L, "w", "User:u", "*", TL_ACL_OP_WRITE, AL));
	add(&a, acl(T, L, "d", "User:u", "*", TL_ACL_OP_DELETE, AL));
	add(&a, acl(T, L, "al", "User:u", "*", TL_ACL_OP_ALTER, AL));
	add(&a, acl(T, L, "ac", "User:u", "*", TL_ACL_OP_ALTER_CONFIGS, AL));
	add(&a, acl(T, L, "c", "User:u", "*", TL_ACL_OP_CREATE, AL));
	add(&a, acl(T, L, "all", "User:u", "*", TL_ACL_OP_ALL, AL));
	const char *describes[] = {"w", "d", "al", "all"};
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_DESCRIBE, describes[i]),
				 TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_DESCRIBE, "c"), TL_ACL_DENIED);
	ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_DESCRIBE_CONFIGS, "ac"),
			 TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_DESCRIBE_CONFIGS, "al"), TL_ACL_DENIED);
	ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_READ, "w"), TL_ACL_DENIED);
	ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_CLUSTER_ACTION, "all"), TL_ACL_ALLOWED);
	tl_acls_deinit(&a);
}
END_TEST

START_TEST(deny_wins_but_only_for_its_operation)
{
	struct tl_acls a;
	tl_acls_init(&a);
	add(&a, acl(T, L, TL_ACL_WILDCARD, TL_ACL_WILDCARD_PRINCIPAL, "*", TL_ACL_OP_ALL, AL));
	add(&a, acl(T, L, "secret", "User:eve", "*", TL_ACL_OP_READ, DN));
	add(&a, acl(T, L, "hosted", "User:eve", "10.0.0.9", TL_ACL_OP_ALL, DN));
	ck_assert_int_eq(topic(&a, "User:eve", "h", TL_ACL_OP_READ, "secret"), TL_ACL_DENIED);
	/* DENY Read does not deny Describe (Kafka denies only the operation or All). */
	ck_assert_int_eq(topic(&a, "User:eve", "h", TL_ACL_OP_DESCRIBE, "secret"), TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:bob", "h", TL_ACL_OP_READ, "secret"), TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:eve", "10.0.0.9", TL_ACL_OP_WRITE, "hosted"),
			 TL_ACL_DENIED);
	ck_assert_int_eq(topic(&a, "User:eve", "10.0.0.8", TL_ACL_OP_WRITE, "hosted"),
			 TL_ACL_ALLOWED);
	/* A DENY for User:* covers everyone. */
	add(&a, acl(T, P, "sec", TL_ACL_WILDCARD_PRINCIPAL, "*", TL_ACL_OP_WRITE, DN));
	ck_assert_int_eq(topic(&a, "User:bob", "h", TL_ACL_OP_WRITE, "secret"), TL_ACL_DENIED);
	ck_assert_int_eq(topic(&a, "User:bob", "h", TL_ACL_OP_WRITE, "se"), TL_ACL_ALLOWED);
	tl_acls_deinit(&a);
}
END_TEST

START_TEST(prefixed_patterns_match_by_prefix_only)
{
	struct tl_acls a;
	tl_acls_init(&a);
	add(&a, acl(T, P, "app.", "User:app", "*", TL_ACL_OP_WRITE, AL));
	add(&a, acl(T, P, "app.internal.", "User:app", "*", TL_ACL_OP_WRITE, DN));
	add(&a, acl(T, P, "zzzzzzzzzz", "User:app", "*", TL_ACL_OP_WRITE, AL));
	ck_assert_int_eq(topic(&a, "User:app", "h", TL_ACL_OP_WRITE, "app.orders"), TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:app", "h", TL_ACL_OP_WRITE, "app."), TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:app", "h", TL_ACL_OP_WRITE, "app"), TL_ACL_NO_ACLS);
	ck_assert_int_eq(topic(&a, "User:app", "h", TL_ACL_OP_WRITE, "xapp.orders"),
			 TL_ACL_NO_ACLS);
	ck_assert_int_eq(topic(&a, "User:app", "h", TL_ACL_OP_WRITE, "app.internal.x"),
			 TL_ACL_DENIED);
	/* Group patterns are another type. */
	ck_assert_int_eq(tl_acls_authorize(&a, tl_str_of("User:app"), tl_str_of("h"),
					   TL_ACL_OP_READ, TL_ACL_RESOURCE_GROUP,
					   tl_str_of("app.g")),
			 TL_ACL_NO_ACLS);
	/* Removing the deny brings the longer prefix back to allowed. */
	struct tl_acl_binding f =
		acl(T, P, "app.internal.", NULL, NULL, TL_ACL_OP_ANY, TL_ACL_PERMISSION_ANY);
	ck_assert_int_eq(tl_acls_remove(&a, &f, NULL, NULL), 1);
	ck_assert_int_eq(topic(&a, "User:app", "h", TL_ACL_OP_WRITE, "app.internal.x"),
			 TL_ACL_ALLOWED);
	ck_assert_int_eq(a.acl_count, 2);
	tl_acls_deinit(&a);
}
END_TEST

START_TEST(filters_follow_acl_binding_filter)
{
	struct tl_acls a;
	tl_acls_init(&a);
	add(&a, acl(T, L, "t", "User:a", "*", TL_ACL_OP_READ, AL));
	add(&a, acl(T, L, "*", "User:a", "*", TL_ACL_OP_WRITE, AL));
	add(&a, acl(T, P, "t", "User:b", "*", TL_ACL_OP_READ, DN));
	add(&a, acl(TL_ACL_RESOURCE_GROUP, L, "t", "User:a", "*", TL_ACL_OP_READ, AL));
	/* Adding the same ACL twice keeps one. */
	add(&a, acl(T, L, "t", "User:a", "*", TL_ACL_OP_READ, AL));
	ck_assert_int_eq(a.acl_count, 4);
	int counts[4] = {0};
	struct tl_acl_binding filters[4] = {
		/* MATCH "t": literal t, literal *, prefixed t. */
		acl(T, TL_ACL_PATTERN_MATCH, "t", NULL, NULL, TL_ACL_OP_ANY, TL_ACL_PERMISSION_ANY),
		/* ANY "t": exact name, any pattern type. */
		acl(T, TL_ACL_PATTERN_ANY, "t", NULL, NULL, TL_ACL_OP_ANY, TL_ACL_PERMISSION_ANY),
		acl(TL_ACL_RESOURCE_ANY, TL_ACL_PATTERN_ANY, NULL, "User:a", NULL, TL_ACL_OP_ANY,
		    TL_ACL_PERMISSION_ANY),
		acl(T, TL_ACL_PATTERN_LITERAL, NULL, NULL, NULL, TL_ACL_OP_ANY, DN),
	};
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_null(tl_acl_filter_invalid(&filters[i]));
		for (const struct tl_acl_resource *r = tl_acls_next(&a, NULL); r;
		     r = tl_acls_next(&a, r))
			for (int32_t j = 0; j < r->entry_count; j++)
				counts[i] += tl_acl_filter_matches(&filters[i], r, &r->entries[j]);
	}
	ck_assert_int_eq(counts[0], 3);
	ck_assert_int_eq(counts[1], 2);
	ck_assert_int_eq(counts[2], 3);
	ck_assert_int_eq(counts[3], 0);
	struct tl_acl_binding bad = acl(TL_ACL_RESOURCE_UNKNOWN, TL_ACL_PATTERN_ANY, NULL, NULL,
					NULL, TL_ACL_OP_ANY, TL_ACL_PERMISSION_ANY);
	ck_assert_ptr_nonnull(tl_acl_filter_invalid(&bad));
	struct tl_acl_binding nocluster =
		acl(TL_ACL_RESOURCE_CLUSTER, L, "c", "User:a", "*", TL_ACL_OP_ALTER, AL);
	ck_assert_ptr_nonnull(tl_acl_binding_invalid(&nocluster));
	struct tl_acl_binding noprincipal = acl(T, L, "t", "alice", "*", TL_ACL_OP_READ, AL);
	ck_assert_ptr_nonnull(tl_acl_binding_invalid(&noprincipal));
	struct tl_acl_binding nul = acl(T, L, "t", "User:a", "*", TL_ACL_OP_READ, DN);
	nul.principal.len = 8; /* "User:a\0x": stored, it would deny User:a */
	nul.principal.ptr = "User:a\0x";
	ck_assert_ptr_nonnull(tl_acl_binding_invalid(&nul));
	nul.principal = tl_str_of("User:a");
	ck_assert_ptr_null(tl_acl_binding_invalid(&nul));
	nul.resource_name = (struct tl_str){"t\0u", 3};
	ck_assert_ptr_nonnull(tl_acl_binding_invalid(&nul));
	tl_acls_deinit(&a);
}
END_TEST

START_TEST(write_on_any_topic_counts_for_the_idempotent_producer)
{
	struct tl_acls a;
	tl_acls_init(&a);
	ck_assert(!tl_acls_allow_any_of_type(&a, tl_str_of("User:p"), tl_str_of("h"),
					     TL_ACL_OP_WRITE, T));
	add(&a, acl(T, P, "p.", "User:p", "*", TL_ACL_OP_WRITE, AL));
	ck_assert(tl_acls_allow_any_of_type(&a, tl_str_of("User:p"), tl_str_of("h"),
					    TL_ACL_OP_WRITE, T));
	ck_assert(!tl_acls_allow_any_of_type(&a, tl_str_of("User:q"), tl_str_of("h"),
					     TL_ACL_OP_WRITE, T));
	add(&a, acl(T, L, "*", "User:p", "*", TL_ACL_OP_WRITE, DN));
	ck_assert(!tl_acls_allow_any_of_type(&a, tl_str_of("User:p"), tl_str_of("h"),
					     TL_ACL_OP_WRITE, T));
	tl_acls_deinit(&a);
}
END_TEST

/* Kafka's authorizeByResourceType, case by case. */
START_TEST(write_on_any_topic_follows_kafkas_dominance_rules)
{
	struct tl_acls a;
	tl_acls_init(&a);
	struct tl_str p = tl_str_of("User:p"), h = tl_str_of("h");
	/* A LITERAL deny does not hide a PREFIXED allow of the same name. */
	add(&a, acl(T, P, "app", "User:p", "*", TL_ACL_OP_WRITE, AL));
	add(&a, acl(T, L, "app", "User:p", "*", TL_ACL_OP_WRITE, DN));
	ck_assert(tl_acls_allow_any_of_type(&a, p, h, TL_ACL_OP_WRITE, T));
	/* A PREFIXED deny starting the allowed prefix does. */
	add(&a, acl(T, P, "ap", "User:*", "*", TL_ACL_OP_ALL, DN));
	ck_assert(!tl_acls_allow_any_of_type(&a, p, h, TL_ACL_OP_WRITE, T));
	/* A LITERAL allow under another name is not dominated by it... */
	add(&a, acl(T, L, "orders", "User:p", "h", TL_ACL_OP_ALL, AL));
	ck_assert(tl_acls_allow_any_of_type(&a, p, h, TL_ACL_OP_WRITE, T));
	ck_assert(!tl_acls_allow_any_of_type(&a, p, tl_str_of("other-host"), TL_ACL_OP_WRITE, T));
	/* ...but a LITERAL deny of its name is. */
	add(&a, acl(T, L, "orders", "User:p", "*", TL_ACL_OP_WRITE, DN));
	ck_assert(!tl_acls_allow_any_of_type(&a, p, h, TL_ACL_OP_WRITE, T));
	/* No implied operations: Read does not count for Write. */
	add(&a, acl(T, L, "books", "User:p", "*", TL_ACL_OP_READ, AL));
	ck_assert(!tl_acls_allow_any_of_type(&a, p, h, TL_ACL_OP_WRITE, T));
	/* A wildcard allow allows, whatever else is denied. */
	add(&a, acl(T, L, "*", "User:*", "*", TL_ACL_OP_WRITE, AL));
	ck_assert(tl_acls_allow_any_of_type(&a, p, h, TL_ACL_OP_WRITE, T));
	tl_acls_deinit(&a);
}
END_TEST

START_TEST(the_text_form_round_trips_odd_names)
{
	struct tl_acls a;
	tl_acls_init(&a);
	add(&a, acl(TL_ACL_RESOURCE_GROUP, P, "g 1%\n", "User:al ice", "*", TL_ACL_OP_READ, AL));
	add(&a, acl(TL_ACL_RESOURCE_CLUSTER, L, TL_ACL_CLUSTER_NAME, "User:admin", "10.0.0.1",
		    TL_ACL_OP_ALTER, DN));
	add(&a, acl(TL_ACL_RESOURCE_TRANSACTIONAL_ID, L, "tx", "User:p", "*", TL_ACL_OP_WRITE, AL));
	char *text = tl_acls_format(&a);
	ck_assert_ptr_nonnull(text);
	struct tl_acls b;
	tl_acls_init(&b);
	ck_assert_int_eq(tl_acls_parse(&b, text), TL_OK);
	ck_assert_int_eq(b.acl_count, 3);
	ck_assert_int_eq(tl_acls_authorize(&b, tl_str_of("User:al ice"), tl_str_of("h"),
					   TL_ACL_OP_READ, TL_ACL_RESOURCE_GROUP,
					   tl_str_of("g 1%\nx")),
			 TL_ACL_ALLOWED);
	char *again = tl_acls_format(&b);
	ck_assert_int_eq((int)strlen(again), (int)strlen(text));
	ck_assert_int_eq(tl_acls_parse(&b, "2 3 3 3 User:a * t"), TL_ERR_CORRUPT);
	ck_assert_int_eq(tl_acls_parse(&b, "2 3 1 3 User:a * t\n"), TL_ERR_CORRUPT);
	ck_assert_int_eq(tl_acls_parse(&b, "2 3 3 3 User:a *\n"), TL_ERR_CORRUPT);
	free(text);
	free(again);
	tl_acls_deinit(&b);
	tl_acls_deinit(&a);
}
END_TEST

START_TEST(many_acls_are_indexed)
{
	struct tl_acls a;
	tl_acls_init(&a);
	char name[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "topic-%d", i);
		add(&a, acl(T, L, name, "User:u", "*", TL_ACL_OP_READ, AL));
	}
	ck_assert_int_eq(a.resource_count, 20000);
	ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_READ, "topic-19999"), TL_ACL_ALLOWED);
	ck_assert_int_eq(topic(&a, "User:u", "h", TL_ACL_OP_READ, "topic-20000"), TL_ACL_NO_ACLS);
	struct tl_acl_binding all = acl(TL_ACL_RESOURCE_ANY, TL_ACL_PATTERN_ANY, NULL, NULL, NULL,
					TL_ACL_OP_ANY, TL_ACL_PERMISSION_ANY);
	ck_assert_int_eq(tl_acls_remove(&a, &all, NULL, NULL), 20000);
	ck_assert_int_eq(a.resource_count, 0);
	ck_assert_ptr_null(tl_acls_next(&a, NULL));
	tl_acls_deinit(&a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("broker_acl");
	TCase *tc = tcase_create("acl");
	tcase_add_test(tc, read_on_one_topic_allows_only_that);
	tcase_add_test(tc, implied_operations_are_kafkas);
	tcase_add_test(tc, deny_wins_but_only_for_its_operation);
	tcase_add_test(tc, prefixed_patterns_match_by_prefix_only);
	tcase_add_test(tc, filters_follow_acl_binding_filter);
	tcase_add_test(tc, write_on_any_topic_counts_for_the_idempotent_producer);
	tcase_add_test(tc, write_on_any_topic_follows_kafkas_dominance_rules);
	tcase_add_test(tc, the_text_form_round_trips_odd_names);
	tcase_add_test(tc, many_acls_are_indexed);
	suite_add_tcase(s, tc);
	return tl_check_run(s);
}
