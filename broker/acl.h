/* acl.h - Kafka's ACL model and the authorizer's matcher (issue #16), pure: no I/O.
 *
 * An ACL binds a resource pattern (type, name, LITERAL or PREFIXED) to an entry
 * (principal, host, operation, ALLOW or DENY). A request by (principal, host) to do
 * operation O on resource (type, name) is decided as Kafka's StandardAuthorizer does:
 *   1. the ACLs that apply to the resource are those of LITERAL (type, name), LITERAL
 *      (type, "*") and every PREFIXED (type, p) where p is a prefix of name;
 *   2. none at all: allow only if allow.everyone.if.no.acl.found;
 *   3. a DENY that matches the principal (or "User:*"), the host (or "*") and O (or All)
 *      denies: deny wins;
 *   4. an ALLOW that matches principal and host and O, All, or an operation that
 *      implies O (Describe is implied by Read, Write, Delete and Alter; DescribeConfigs
 *      by AlterConfigs) allows;
 *   5. otherwise deny.
 * Super users are decided before (acl_admin.c).
 *
 * Index: one hash table keyed by (resource type, pattern type, name), each bucket entry a
 * resource with its ACL entries. PREFIXED lookups probe only the prefix lengths that
 * exist for the type (a sorted list kept beside the table), so an authorization costs
 * 2 + (distinct prefix lengths) hash probes, never a scan of all ACLs.
 *
 * The numbers are Kafka's wire values (AclOperation, ResourceType, PatternType,
 * AclPermissionType). */
#ifndef TL_BROKER_ACL_H
#define TL_BROKER_ACL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "tally/error.h"

enum tl_acl_resource_type {
	TL_ACL_RESOURCE_UNKNOWN = 0,
	TL_ACL_RESOURCE_ANY = 1, /* filters only */
	TL_ACL_RESOURCE_TOPIC = 2,
	TL_ACL_RESOURCE_GROUP = 3,
	TL_ACL_RESOURCE_CLUSTER = 4,
	TL_ACL_RESOURCE_TRANSACTIONAL_ID = 5,
	TL_ACL_RESOURCE_DELEGATION_TOKEN = 6,
	TL_ACL_RESOURCE_USER = 7,
	TL_ACL_RESOURCE_TYPES = 8,
};

enum tl_acl_pattern_type {
	TL_ACL_PATTERN_UNKNOWN = 0,
	TL_ACL_PATTERN_ANY = 1,   /* filters: any pattern type, name exact */
	TL_ACL_PATTERN_MATCH = 2, /* filters: every pattern that would match the name */
	TL_ACL_PATTERN_LITERAL = 3,
	TL_ACL_PATTERN_PREFIXED = 4,
};

enum tl_acl_operation {
	TL_ACL_OP_UNKNOWN = 0,
	TL_ACL_OP_ANY = 1, /* filters only */
	TL_ACL_OP_ALL = 2,
	TL_ACL_OP_READ = 3,
	TL_ACL_OP_WRITE = 4,
	TL_ACL_OP_CREATE = 5,
	TL_ACL_OP_DELETE = 6,
	TL_ACL_OP_ALTER = 7,
	TL_ACL_OP_DESCRIBE = 8,
	TL_ACL_OP_CLUSTER_ACTION = 9,
	TL_ACL_OP_DESCRIBE_CONFIGS = 10,
	TL_ACL_OP_ALTER_CONFIGS = 11,
	TL_ACL_OP_IDEMPOTENT_WRITE = 12,
	TL_ACL_OP_CREATE_TOKENS = 13,
	TL_ACL_OP_DESCRIBE_TOKENS = 14,
	TL_ACL_OPS = 15,
};

enum tl_acl_permission {
	TL_ACL_PERMISSION_UNKNOWN = 0,
	TL_ACL_PERMISSION_ANY = 1, /* filters only */
	TL_ACL_PERMISSION_DENY = 2,
	TL_ACL_PERMISSION_ALLOW = 3,
};

#define TL_ACL_WILDCARD           "*"
#define TL_ACL_WILDCARD_PRINCIPAL "User:*"
#define TL_ACL_CLUSTER_NAME       "kafka-cluster"
#define TL_ACL_MAX                100000 /* ACLs kept, all resources together */
#define TL_ACL_NAME_MAX           1024   /* longest resource name, principal or host */

/* One ACL as on the wire (strings borrowed) or in a filter (NULL = any). */
struct tl_acl_binding {
	int8_t resource_type;
	int8_t pattern_type;
	struct tl_str resource_name;
	struct tl_str principal;
	struct tl_str host;
	int8_t operation;
	int8_t permission;
};

struct tl_acl_entry {
	char *principal;
	char *host;
	int8_t operation;
	int8_t permission;
};

/* Every ACL of one resource pattern. */
struct tl_acl_resource {
	int8_t type;
	int8_t pattern;
	char *name;
	int32_t name_len;
	uint64_t hash;
	struct tl_acl_entry *entries;
	int32_t entry_count, entry_cap;
	struct tl_acl_resource *next; /* hash chain */
};

struct tl_acls {
	struct tl_acl_resource **buckets;
	int32_t bucket_count; /* power of two */
	int32_t resource_count;
	int32_t acl_count;
	/* PREFIXED patterns: the distinct name lengths per resource type, ascending. */
	int32_t *prefix_lengths[TL_ACL_RESOURCE_TYPES];
	int32_t prefix_length_count[TL_ACL_RESOURCE_TYPES];
	char why[256]; /* the last parse or add failure */
};

void tl_acls_init(struct tl_acls *acls);
void tl_acls_deinit(struct tl_acls *acls);

/* Kafka's names ("Topic", "Read", "PREFIXED", "ALLOW") and back (case-insensitive;
 * "-1" on none). */
const char *tl_acl_resource_type_name(int8_t type);
const char *tl_acl_pattern_type_name(int8_t pattern);
const char *tl_acl_operation_name(int8_t op);
const char *tl_acl_permission_name(int8_t permission);
int8_t tl_acl_resource_type_find(const char *name);
int8_t tl_acl_pattern_type_find(const char *name);
int8_t tl_acl_operation_find(const char *name);
int8_t tl_acl_permission_find(const char *name);

/* Why @b cannot be stored (Kafka's validation of a new ACL), or NULL. */
const char *tl_acl_binding_invalid(const struct tl_acl_binding *b);
/* Why @f is not a valid filter, or NULL. */
const char *tl_acl_filter_invalid(const struct tl_acl_binding *f);

/* Adds @b (valid); adding one already there is a success that changes nothing.
 * TL_ERR_LIMIT past TL_ACL_MAX, TL_ERR_NOMEM. */
tl_err tl_acls_add(struct tl_acls *acls, const struct tl_acl_binding *b);
/* Kafka's AclBindingFilter.matches. */
bool tl_acl_filter_matches(const struct tl_acl_binding *filter, const struct tl_acl_resource *r,
			   const struct tl_acl_entry *e);
/* Removes every ACL matching @filter; calls @removed (may be NULL) on each before it goes.
 * Returns how many. */
int32_t tl_acls_remove(struct tl_acls *acls, const struct tl_acl_binding *filter,
		       void (*removed)(void *ctx, const struct tl_acl_resource *r,
				       const struct tl_acl_entry *e),
		       void *ctx);
/* Iteration over resources, in no particular order: NULL starts, NULL ends. */
const struct tl_acl_resource *tl_acls_next(const struct tl_acls *acls,
					   const struct tl_acl_resource *prev);

enum tl_acl_decision {
	TL_ACL_DENIED = 0,
	TL_ACL_ALLOWED = 1,
	TL_ACL_NO_ACLS = 2, /* no ACL applies to the resource: allow.everyone.if.no.acl.found */
};
/* Steps 1 and 3-5 above for one request. */
enum tl_acl_decision tl_acls_authorize(const struct tl_acls *acls, struct tl_str principal,
				       struct tl_str host, int8_t operation, int8_t resource_type,
				       struct tl_str resource_name);
/* The ACL part of Kafka's authorizeByResourceType (the idempotent producer's "Write on
 * some topic"): entries of @operation or All only; a wildcard DENY refuses, a wildcard
 * ALLOW allows; else some ALLOW that no DENY dominates (a LITERAL DENY of the same name
 * over a LITERAL ALLOW, a PREFIXED DENY whose prefix starts the allowed name). */
bool tl_acls_allow_any_of_type(const struct tl_acls *acls, struct tl_str principal,
			       struct tl_str host, int8_t operation, int8_t resource_type);

/* The text form of the .tally-meta/acls file and of etcd: one ACL a line,
 *   <type> <pattern> <operation> <permission> <principal> <host> <name>
 * numbers as on the wire, strings percent-encoded (%, space, controls, non-ASCII).
 * tl_acls_format: malloc'd, NULL when out of memory. tl_acls_parse adds to @acls;
 * TL_ERR_CORRUPT with acls->why on a bad line. */
char *tl_acls_format(const struct tl_acls *acls);
tl_err tl_acls_parse(struct tl_acls *acls, const char *text);

#endif
