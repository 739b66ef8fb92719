/* acl.c - the ACL table and the authorizer's matcher; see acl.h. */
#include "broker/acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/assert.h"
#include "common/percent.h"

#define BUCKETS_INITIAL 64

static const char *const resource_names[] = {
	"Unknown", "Any", "Topic", "Group", "Cluster", "TransactionalId", "DelegationToken", "User",
};
static const char *const pattern_names[] = {"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"};
static const char *const operation_names[] = {
	"Unknown",
	"Any",
	"All",
	"Read",
	"Write",
	"Create",
	"Delete",
	"Alter",
	"Describe",
	"ClusterAction",
	"DescribeConfigs",
	"AlterConfigs",
	"IdempotentWrite",
	"CreateTokens",
	"DescribeTokens",
};
static const char *const permission_names[] = {"UNKNOWN", "ANY", "DENY", "ALLOW"};

#define NAME_OF(table, v) ((v) >= 0 && (size_t)(v) < TL_ARRAY_SIZE(table) ? table[v] : "Unknown")

const char *tl_acl_resource_type_name(int8_t type)
{
	return NAME_OF(resource_names, type);
}
const char *tl_acl_pattern_type_name(int8_t pattern)
{
	return NAME_OF(pattern_names, pattern);
}
const char *tl_acl_operation_name(int8_t op)
{
	return NAME_OF(operation_names, op);
}
const char *tl_acl_permission_name(int8_t permission)
{
	return NAME_OF(permission_names, permission);
}

/* Case and '_' insensitive: "transactional_id", "TransactionalId", "cluster_action". */
static bool name_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_' || *a == '-')
			a++;
		while (*b == '_' || *b == '-')
			b++;
		if (!*a || !*b)
			return *a == *b;
		char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
		char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
		if (ca != cb)
			return false;
		a++, b++;
	}
}

static int8_t find_in(const char *const *table, size_t n, const char *name)
{
	for (size_t i = 1; i < n; i++)
		if (name_eq(table[i], name))
			return (int8_t)i;
	return -1;
}

int8_t tl_acl_resource_type_find(const char *name)
{
	return find_in(resource_names, TL_ARRAY_SIZE(resource_names), name);
}
int8_t tl_acl_pattern_type_find(const char *name)
{
	return find_in(pattern_names, TL_ARRAY_SIZE(pattern_names), name);
}
int8_t tl_acl_operation_find(const char *name)
{
	return find_in(operation_names, TL_ARRAY_SIZE(operation_names), name);
}
int8_t tl_acl_permission_find(const char *name)
{
	return find_in(permission_names, TL_ARRAY_SIZE(permission_names), name);
}

/* ---- validation ---- */

static bool principal_valid(struct tl_str p)
{
	/* KafkaPrincipal: "<type>:<name>", both non-empty. */
	if (p.len <= 0 || p.len > TL_ACL_NAME_MAX)
		return false;
	const char *colon = memchr(p.ptr, ':', (size_t)p.len);
	return colon && colon > p.ptr && colon < p.ptr + p.len - 1;
}

const char *tl_acl_binding_invalid(const struct tl_acl_binding *b)
{
	if (b->resource_type <= TL_ACL_RESOURCE_ANY || b->resource_type >= TL_ACL_RESOURCE_TYPES)
		return "Invalid resource type";
	if (b->resource_type == TL_ACL_RESOURCE_DELEGATION_TOKEN ||
	    b->resource_type == TL_ACL_RESOURCE_USER)
		return "Delegation tokens and users are not supported as ACL resources";
	if (b->pattern_type != TL_ACL_PATTERN_LITERAL && b->pattern_type != TL_ACL_PATTERN_PREFIXED)
		return "Invalid pattern type: only LITERAL and PREFIXED ACLs can be created";
	if (b->resource_name.len <= 0 || b->resource_name.len > TL_ACL_NAME_MAX)
		return "Resource name must be non-empty";
	if (b->resource_type == TL_ACL_RESOURCE_CLUSTER &&
	    !tl_str_eq_c(b->resource_name, TL_ACL_CLUSTER_NAME))
		return "The only valid name for the CLUSTER resource is kafka-cluster";
	if (b->pattern_type == TL_ACL_PATTERN_PREFIXED &&
	    tl_str_eq_c(b->resource_name, TL_ACL_WILDCARD))
		return "A PREFIXED pattern cannot be the wildcard '*'; use LITERAL";
	if (!principal_valid(b->principal))
		return "Invalid principal: expected <type>:<name>";
	if (b->host.len <= 0 || b->host.len > TL_ACL_NAME_MAX)
		return "Invalid host: must be '*' or an address";
	if (b->operation <= TL_ACL_OP_ANY || b->operation >= TL_ACL_OPS)
		return "Invalid operation";
	if (b->permission != TL_ACL_PERMISSION_ALLOW && b->permission != TL_ACL_PERMISSION_DENY)
		return "Invalid permission type";
	/* Stored and matched as C strings: "User:a\0x" would act as "User:a". */
	if (memchr(b->resource_name.ptr, '\0', (size_t)b->resource_name.len) ||
	    memchr(b->principal.ptr, '\0', (size_t)b->principal.len) ||
	    memchr(b->host.ptr, '\0', (size_t)b->host.len))
		return "Resource name, principal and host must not hold NUL bytes";
	return NULL;
}

const char *tl_acl_filter_invalid(const struct tl_acl_binding *f)
{
	if (f->resource_type <= TL_ACL_RESOURCE_UNKNOWN ||
	    f->resource_type >= TL_ACL_RESOURCE_TYPES)
		return "Invalid resource type filter";
	if (f->pattern_type <= TL_ACL_PATTERN_UNKNOWN || f->pattern_type > TL_ACL_PATTERN_PREFIXED)
		return "Invalid pattern type filter";
	if (f->operation <= TL_ACL_OP_UNKNOWN || f->operation >= TL_ACL_OPS)
		return "Invalid operation filter";
	if (f->permission <= TL_ACL_PERMISSION_UNKNOWN || f->permission > TL_ACL_PERMISSION_ALLOW)
		return "Invalid permission type filter";
	return NULL;
}

/* ---- the table ---- */

static uint64_t resource_hash(int8_t type, int8_t pattern, const char *name, int32_t len)
{
	uint64_t h = 1469598103934665603ull;
	h = (h ^ (uint8_t)type) * 1099511628211ull;
	h = (h ^ (uint8_t)pattern) * 1099511628211ull;
	for (int32_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
	return h;
}

void tl_acls_init(struct tl_acls *acls)
{
	memset(acls, 0, sizeof(*acls));
}

static void resource_free(struct tl_acl_resource *r)
{
	for (int32_t i = 0; i < r->entry_count; i++) {
		free(r->entries[i].principal);
		free(r->entries[i].host);
	}
	free(r->entries);
	free(r->name);
	free(r);
}

void tl_acls_deinit(struct tl_acls *acls)
{
	for (int32_t b = 0; b < acls->bucket_count; b++) {
		struct tl_acl_resource *r = acls->buckets[b];
		while (r) {
			struct tl_acl_resource *next = r->next;
			resource_free(r);
			r = next;
		}
	}
	free(acls->buckets);
	for (int t = 0; t < TL_ACL_RESOURCE_TYPES; t++)
		free(acls->prefix_lengths[t]);
	memset(acls, 0, sizeof(*acls));
}

static struct tl_acl_resource *resource_find(const struct tl_acls *acls, int8_t type,
					     int8_t pattern, const char *name, int32_t len)
{
	if (acls->bucket_count == 0)
		return NULL;
	uint64_t h = resource_hash(type, pattern, name, len);
	struct tl_acl_resource *r = acls->buckets[h & (uint64_t)(acls->bucket_count - 1)];
	for (; r; r = r->next)
		if (r->hash == h && r->type == type && r->pattern == pattern &&
		    r->name_len == len && memcmp(r->name, name, (size_t)len) == 0)
			return r;
	return NULL;
}

static tl_err buckets_grow(struct tl_acls *acls)
{
	int32_t count = acls->bucket_count ? acls->bucket_count * 2 : BUCKETS_INITIAL;
	struct tl_acl_resource **buckets = calloc((size_t)count, sizeof(*buckets));
	if (!buckets)
		return TL_ERR_NOMEM;
	for (int32_t b = 0; b < acls->bucket_count; b++) {
		struct tl_acl_resource *r = acls->buckets[b];
		while (r) {
			struct tl_acl_resource *next = r->next;
			size_t i = r->hash & (uint64_t)(count - 1);
			r->next = buckets[i];
			buckets[i] = r;
			r = next;
		}
	}
	free(acls->buckets);
	acls->buckets = buckets;
	acls->bucket_count = count;
	return TL_OK;
}

/* Rebuilds the prefix-length list of @type from the table (changes are rare). */
static void prefix_lengths_rebuild(struct tl_acls *acls, int8_t type)
{
	int32_t count = 0, cap = 0;
	int32_t *lengths = NULL;
	for (int32_t b = 0; b < acls->bucket_count; b++) {
		for (struct tl_acl_resource *r = acls->buckets[b]; r; r = r->next) {
			if (r->type != type || r->pattern != TL_ACL_PATTERN_PREFIXED)
				continue;
			int32_t i = 0;
			while (i < count && lengths[i] < r->name_len)
				i++;
			if (i < count && lengths[i] == r->name_len)
				continue;
			if (count == cap) {
				int32_t ncap = cap ? cap * 2 : 8;
				int32_t *n = realloc(lengths, (size_t)ncap * sizeof(*n));
				if (!n)
					abort(); /* a few ints; the broker cannot authorize without
						  */
				lengths = n;
				cap = ncap;
			}
			memmove(&lengths[i + 1], &lengths[i],
				(size_t)(count - i) * sizeof(*lengths));
			lengths[i] = r->name_len;
			count++;
		}
	}
	free(acls->prefix_lengths[type]);
	acls->prefix_lengths[type] = lengths;
	acls->prefix_length_count[type] = count;
}

static char *str_dup(struct tl_str s)
{
	char *p = malloc((size_t)TL_MAX(s.len, 0) + 1);
	if (!p)
		return NULL;
	if (s.len > 0)
		memcpy(p, s.ptr, (size_t)s.len);
	p[TL_MAX(s.len, 0)] = '\0';
	return p;
}

tl_err tl_acls_add(struct tl_acls *acls, const struct tl_acl_binding *b)
{
	TL_ASSERT(tl_acl_binding_invalid(b) == NULL);
	struct tl_acl_resource *r = resource_find(acls, b->resource_type, b->pattern_type,
						  b->resource_name.ptr, b->resource_name.len);
	if (r) {
		for (int32_t i = 0; i < r->entry_count; i++) {
			const struct tl_acl_entry *e = &r->entries[i];
			if (e->operation == b->operation && e->permission == b->permission &&
			    tl_str_eq_c(b->principal, e->principal) &&
			    tl_str_eq_c(b->host, e->host))
				return TL_OK;
		}
	}
	if (acls->acl_count >= TL_ACL_MAX) {
		snprintf(acls->why, sizeof(acls->why), "more than %d ACLs", TL_ACL_MAX);
		return TL_ERR_LIMIT;
	}
	bool fresh = !r;
	if (fresh) {
		if (acls->resource_count >= acls->bucket_count && buckets_grow(acls) != TL_OK)
			return TL_ERR_NOMEM;
		r = calloc(1, sizeof(*r));
		if (!r)
			return TL_ERR_NOMEM;
		r->type = b->resource_type;
		r->pattern = b->pattern_type;
		r->name = str_dup(b->resource_name);
		r->name_len = b->resource_name.len;
		if (!r->name) {
			free(r);
			return TL_ERR_NOMEM;
		}
		r->hash = resource_hash(r->type, r->pattern, r->name, r->name_len);
	}
	if (r->entry_count == r->entry_cap) {
		int32_t cap = r->entry_cap ? r->entry_cap * 2 : 4;
		struct tl_acl_entry *n = realloc(r->entries, (size_t)cap * sizeof(*n));
		if (!n)
			goto out_nomem;
		r->entries = n;
		r->entry_cap = cap;
	}
	struct tl_acl_entry *e = &r->entries[r->entry_count];
	e->principal = str_dup(b->principal);
	e->host = str_dup(b->host);
	if (!e->principal || !e->host) {
		free(e->principal);
		free(e->host);
		goto out_nomem;
	}
	e->operation = b->operation;
	e->permission = b->permission;
	r->entry_count++;
	acls->acl_count++;
	if (fresh) {
		size_t i = r->hash & (uint64_t)(acls->bucket_count - 1);
		r->next = acls->buckets[i];
		acls->buckets[i] = r;
		acls->resource_count++;
		if (r->pattern == TL_ACL_PATTERN_PREFIXED)
			prefix_lengths_rebuild(acls, r->type);
	}
	return TL_OK;
out_nomem:
	if (fresh)
		resource_free(r);
	return TL_ERR_NOMEM;
}

static bool str_eq_opt(struct tl_str filter, const char *value)
{
	return filter.len < 0 || tl_str_eq_c(filter, value);
}

bool tl_acl_filter_matches(const struct tl_acl_binding *f, const struct tl_acl_resource *r,
			   const struct tl_acl_entry *e)
{
	if (f->resource_type != TL_ACL_RESOURCE_ANY && f->resource_type != r->type)
		return false;
	if (f->pattern_type != TL_ACL_PATTERN_ANY && f->pattern_type != TL_ACL_PATTERN_MATCH &&
	    f->pattern_type != r->pattern)
		return false;
	if (f->resource_name.len >= 0) {
		struct tl_str name = f->resource_name;
		if (f->pattern_type == TL_ACL_PATTERN_MATCH) {
			bool hit;
			if (r->pattern == TL_ACL_PATTERN_LITERAL)
				hit = tl_str_eq_c(name, r->name) ||
				      strcmp(r->name, TL_ACL_WILDCARD) == 0;
			else
				hit = name.len >= r->name_len &&
				      memcmp(name.ptr, r->name, (size_t)r->name_len) == 0;
			if (!hit)
				return false;
		} else if (!tl_str_eq_c(name, r->name)) {
			return false;
		}
	}
	if (!e)
		return true;
	if (!str_eq_opt(f->principal, e->principal) || !str_eq_opt(f->host, e->host))
		return false;
	if (f->operation != TL_ACL_OP_ANY && f->operation != e->operation)
		return false;
	if (f->permission != TL_ACL_PERMISSION_ANY && f->permission != e->permission)
		return false;
	return true;
}

int32_t tl_acls_remove(struct tl_acls *acls, const struct tl_acl_binding *filter,
		       void (*removed)(void *ctx, const struct tl_acl_resource *r,
				       const struct tl_acl_entry *e),
		       void *ctx)
{
	int32_t total = 0;
	bool prefixes_changed[TL_ACL_RESOURCE_TYPES] = {false};
	for (int32_t b = 0; b < acls->bucket_count; b++) {
		struct tl_acl_resource **link = &acls->buckets[b];
		while (*link) {
			struct tl_acl_resource *r = *link;
			if (!tl_acl_filter_matches(filter, r, NULL)) {
				link = &r->next;
				continue;
			}
			int32_t kept = 0;
			for (int32_t i = 0; i < r->entry_count; i++) {
				struct tl_acl_entry *e = &r->entries[i];
				if (tl_acl_filter_matches(filter, r, e)) {
					if (removed)
						removed(ctx, r, e);
					free(e->principal);
					free(e->host);
					total++;
					acls->acl_count--;
				} else {
					r->entries[kept++] = *e;
				}
			}
			r->entry_count = kept;
			if (kept == 0) {
				*link = r->next;
				if (r->pattern == TL_ACL_PATTERN_PREFIXED)
					prefixes_changed[r->type] = true;
				r->entry_count = 0;
				resource_free(r);
				acls->resource_count--;
			} else {
				link = &r->next;
			}
		}
	}
	for (int8_t t = 0; t < TL_ACL_RESOURCE_TYPES; t++)
		if (prefixes_changed[t])
			prefix_lengths_rebuild(acls, t);
	TL_ASSERT(acls->acl_count >= 0);
	return total;
}

const struct tl_acl_resource *tl_acls_next(const struct tl_acls *acls,
					   const struct tl_acl_resource *prev)
{
	int32_t b = 0;
	if (prev) {
		if (prev->next)
			return prev->next;
		b = (int32_t)(prev->hash & (uint64_t)(acls->bucket_count - 1)) + 1;
	}
	for (; b < acls->bucket_count; b++)
		if (acls->buckets[b])
			return acls->buckets[b];
	return NULL;
}

/* ---- authorizing ---- */

static bool principal_matches(const char *acl, struct tl_str principal)
{
	return strcmp(acl, TL_ACL_WILDCARD_PRINCIPAL) == 0 || tl_str_eq_c(principal, acl);
}

static bool host_matches(const char *acl, struct tl_str host)
{
	return strcmp(acl, TL_ACL_WILDCARD) == 0 || tl_str_eq_c(host, acl);
}

/* Does an ALLOW of @granted cover @wanted? (Kafka's implied operations.) */
static bool allow_covers(int8_t granted, int8_t wanted)
{
	if (granted == wanted || granted == TL_ACL_OP_ALL)
		return true;
	if (wanted == TL_ACL_OP_DESCRIBE)
		return granted == TL_ACL_OP_READ || granted == TL_ACL_OP_WRITE ||
		       granted == TL_ACL_OP_DELETE || granted == TL_ACL_OP_ALTER;
	if (wanted == TL_ACL_OP_DESCRIBE_CONFIGS)
		return granted == TL_ACL_OP_ALTER_CONFIGS;
	return false;
}

struct verdict {
	bool any; /* some ACL applies to the resource */
	bool denied;
	bool allowed;
};

static void verdict_add(struct verdict *v, const struct tl_acl_resource *r, struct tl_str principal,
			struct tl_str host, int8_t op)
{
	if (!r)
		return;
	v->any = v->any || r->entry_count > 0;
	for (int32_t i = 0; i < r->entry_count; i++) {
		const struct tl_acl_entry *e = &r->entries[i];
		if (!principal_matches(e->principal, principal) || !host_matches(e->host, host))
			continue;
		if (e->permission == TL_ACL_PERMISSION_DENY)
			v->denied =
				v->denied || e->operation == op || e->operation == TL_ACL_OP_ALL;
		else
			v->allowed = v->allowed || allow_covers(e->operation, op);
	}
}

enum tl_acl_decision tl_acls_authorize(const struct tl_acls *acls, struct tl_str principal,
				       struct tl_str host, int8_t operation, int8_t resource_type,
				       struct tl_str resource_name)
{
	TL_ASSERT(resource_type > TL_ACL_RESOURCE_ANY && resource_type < TL_ACL_RESOURCE_TYPES);
	struct verdict v = {false, false, false};
	if (acls->acl_count == 0)
		return TL_ACL_NO_ACLS;
	const char *name = resource_name.ptr ? resource_name.ptr : "";
	int32_t len = TL_MAX(resource_name.len, 0);
	verdict_add(&v, resource_find(acls, resource_type, TL_ACL_PATTERN_LITERAL, name, len),
		    principal, host, operation);
	if (!(len == 1 && name[0] == '*'))
		verdict_add(&v,
			    resource_find(acls, resource_type, TL_ACL_PATTERN_LITERAL,
					  TL_ACL_WILDCARD, 1),
			    principal, host, operation);
	const int32_t *lengths = acls->prefix_lengths[resource_type];
	for (int32_t i = 0; i < acls->prefix_length_count[resource_type]; i++) {
		if (lengths[i] > len)
			break;
		verdict_add(&v,
			    resource_find(acls, resource_type, TL_ACL_PATTERN_PREFIXED, name,
					  lengths[i]),
			    principal, host, operation);
	}
	if (!v.any)
		return TL_ACL_NO_ACLS;
	if (v.denied)
		return TL_ACL_DENIED;
	return v.allowed ? TL_ACL_ALLOWED : TL_ACL_DENIED;
}

/* An entry of Kafka's authorizeByResourceType: its operation exactly (or All), no
 * implied ones. */
static bool by_type_applies(const struct tl_acl_entry *e, int8_t permission,
			    struct tl_str principal, struct tl_str host, int8_t operation)
{
	return e->permission == permission && principal_matches(e->principal, principal) &&
	       host_matches(e->host, host) &&
	       (e->operation == operation || e->operation == TL_ACL_OP_ALL);
}

static bool resource_has(const struct tl_acl_resource *r, int8_t permission,
			 struct tl_str principal, struct tl_str host, int8_t operation)
{
	for (int32_t i = 0; i < r->entry_count; i++)
		if (by_type_applies(&r->entries[i], permission, principal, host, operation))
			return true;
	return false;
}

static bool is_wildcard(const struct tl_acl_resource *r)
{
	return r->pattern == TL_ACL_PATTERN_LITERAL && r->name_len == 1 && r->name[0] == '*';
}

/* Does a DENY dominate the ALLOW on @allow: a LITERAL one of the same name over a
 * LITERAL allow, or a PREFIXED one whose prefix starts the allowed name? */
static bool by_type_denied(const struct tl_acls *acls, const struct tl_acl_resource *allow,
			   struct tl_str principal, struct tl_str host, int8_t operation)
{
	for (const struct tl_acl_resource *d = tl_acls_next(acls, NULL); d;
	     d = tl_acls_next(acls, d)) {
		if (d->type != allow->type ||
		    !resource_has(d, TL_ACL_PERMISSION_DENY, principal, host, operation))
			continue;
		bool same = d->name_len == allow->name_len &&
			    memcmp(d->name, allow->name, (size_t)d->name_len) == 0;
		if (d->pattern == TL_ACL_PATTERN_LITERAL &&
		    allow->pattern == TL_ACL_PATTERN_LITERAL && same)
			return true;
		if (d->pattern == TL_ACL_PATTERN_PREFIXED && d->name_len <= allow->name_len &&
		    memcmp(d->name, allow->name, (size_t)d->name_len) == 0)
			return true;
	}
	return false;
}

bool tl_acls_allow_any_of_type(const struct tl_acls *acls, struct tl_str principal,
			       struct tl_str host, int8_t operation, int8_t resource_type)
{
	bool wildcard_allow = false;
	for (const struct tl_acl_resource *r = tl_acls_next(acls, NULL); r;
	     r = tl_acls_next(acls, r)) {
		if (r->type != resource_type || !is_wildcard(r))
			continue;
		if (resource_has(r, TL_ACL_PERMISSION_DENY, principal, host, operation))
			return false;
		wildcard_allow = wildcard_allow || resource_has(r, TL_ACL_PERMISSION_ALLOW,
								principal, host, operation);
	}
	if (wildcard_allow)
		return true;
	for (const struct tl_acl_resource *r = tl_acls_next(acls, NULL); r;
	     r = tl_acls_next(acls, r)) {
		if (r->type != resource_type || is_wildcard(r) ||
		    !resource_has(r, TL_ACL_PERMISSION_ALLOW, principal, host, operation))
			continue;
		if (!by_type_denied(acls, r, principal, host, operation))
			return true;
	}
	return false;
}

/* ---- text form ---- */

/* Names in the file: every byte outside '!'..'~', and '%', as %XX. */
static size_t escaped_len(const char *s)
{
	return tl_percent_encoded_len(TL_PERCENT_PLAIN_PRINTABLE, s, strlen(s));
}

static size_t escape_to(char *out, const char *s)
{
	return tl_percent_encode(TL_PERCENT_PLAIN_PRINTABLE, s, strlen(s), out);
}

char *tl_acls_format(const struct tl_acls *acls)
{
	size_t size = 1;
	for (const struct tl_acl_resource *r = tl_acls_next(acls, NULL); r;
	     r = tl_acls_next(acls, r))
		for (int32_t i = 0; i < r->entry_count; i++)
			size += 24 + escaped_len(r->entries[i].principal) +
				escaped_len(r->entries[i].host) + escaped_len(r->name);
	char *text = malloc(size);
	if (!text)
		return NULL;
	char *p = text;
	for (const struct tl_acl_resource *r = tl_acls_next(acls, NULL); r;
	     r = tl_acls_next(acls, r)) {
		for (int32_t i = 0; i < r->entry_count; i++) {
			const struct tl_acl_entry *e = &r->entries[i];
			p += sprintf(p, "%d %d %d %d ", r->type, r->pattern, e->operation,
				     e->permission);
			p += escape_to(p, e->principal);
			*p++ = ' ';
			p += escape_to(p, e->host);
			*p++ = ' ';
			p += escape_to(p, r->name);
			*p++ = '\n';
		}
	}
	*p = '\0';
	TL_ASSERT((size_t)(p - text) < size);
	return text;
}

/* Decodes one space-ended field at *@pos into @out (of TL_ACL_NAME_MAX + 1). */
static bool field_take(const char **pos, char *out)
{
	const char *s = *pos;
	size_t len = strcspn(s, " \n"), n = 0;
	if (!tl_percent_decode(s, len, out, TL_ACL_NAME_MAX + 1, &n))
		return false;
	s += len;
	if (*s == ' ')
		s++;
	*pos = s;
	return n > 0;
}

tl_err tl_acls_parse(struct tl_acls *acls, const char *text)
{
	char principal[TL_ACL_NAME_MAX + 1], host[TL_ACL_NAME_MAX + 1], name[TL_ACL_NAME_MAX + 1];
	int line = 0;
	const char *s = text;
	while (*s) {
		line++;
		const char *end = strchr(s, '\n');
		if (!end) {
			snprintf(acls->why, sizeof(acls->why), "line %d: no newline (torn?)", line);
			return TL_ERR_CORRUPT;
		}
		int type, pattern, op, perm, used = 0;
		if (sscanf(s, "%d %d %d %d %n", &type, &pattern, &op, &perm, &used) != 4 ||
		    used == 0) {
			snprintf(acls->why, sizeof(acls->why), "line %d: bad numbers", line);
			return TL_ERR_CORRUPT;
		}
		const char *p = s + used;
		if (!field_take(&p, principal) || !field_take(&p, host) || !field_take(&p, name) ||
		    p != end) {
			snprintf(acls->why, sizeof(acls->why), "line %d: bad fields", line);
			return TL_ERR_CORRUPT;
		}
		struct tl_acl_binding b = {
			.resource_type = (int8_t)type,
			.pattern_type = (int8_t)pattern,
			.resource_name = tl_str_of(name),
			.principal = tl_str_of(principal),
			.host = tl_str_of(host),
			.operation = (int8_t)op,
			.permission = (int8_t)perm,
		};
		const char *why = tl_acl_binding_invalid(&b);
		if (why) {
			snprintf(acls->why, sizeof(acls->why), "line %d: %s", line, why);
			return TL_ERR_CORRUPT;
		}
		tl_err err = tl_acls_add(acls, &b);
		if (err != TL_OK)
			return err;
		s = end + 1;
	}
	return TL_OK;
}
