/* sasl.c - SASL authentication (KIP-152, KIP-368) and the SCRAM credential store (KIP-554).
 *
 * On a connection whose listener speaks SASL_* (tl_conn_requires_sasl), only ApiVersions,
 * SaslHandshake and SaslAuthenticate are served until the client authenticates; any other
 * request closes the connection, as Kafka does, and frames are capped at
 * sasl.server.max.receive.size meanwhile (a 2 GB length closes it before any allocation).
 *
 * Mechanisms (sasl.enabled.mechanisms): SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802/7677,
 * no channel binding) and PLAIN (RFC 4616). PLAIN checks the password against the SCRAM
 * credentials of the user (either mechanism): it recomputes SaltedPassword with the stored
 * salt and iterations and compares StoredKey. There is no second store and no clear
 * password anywhere.
 *
 * Store: one credential per user and mechanism: salt, iterations, StoredKey, ServerKey.
 *   .tally-meta/scram-credentials   one credential a line (mode 0600), replaced atomically
 *                                   (temp file, fsync, rename, fsync of the directory):
 *   <user> <mechanism> <iterations> <salt b64> <StoredKey b64> <ServerKey b64>
 * User names are 1..TL_SASL_USER_MAX bytes without white space or control characters.
 *   .tally-meta/sasl-mock-secret    the base64 of 32 random bytes (mode 0600, written
 *                                   the same way), made at the first start with a SASL
 *                                   listener: the made-up credentials of unknown users
 *                                   derive from it (scram_first), so that a name's salt
 *                                   stays the same across restarts, as a real user's does.
 *                                   In cluster mode the metadata store holds the
 *                                   cluster's one, shared by every broker (cluster.c).
 *
 * Re-authentication (KIP-368): with connections.max.reauth.ms > 0, SaslAuthenticate v1+
 * tells the client its session lifetime; a request other than SaslHandshake,
 * SaslAuthenticate or ApiVersions arriving after it closes the connection. A
 * re-authentication must keep the principal.
 *
 * Only SaslHandshake v1 (tokens in SaslAuthenticate requests) is served: v0's unframed
 * tokens close the connection with a warn line. A failed authentication is answered
 * (SASL_AUTHENTICATION_FAILED with Kafka's message), then the connection is closed.
 *
 * A PLAIN login's PBKDF2 (3.5 ms at 4096 SHA-512 iterations, 11.5 ms at 16384 SHA-256)
 * runs on a worker thread (workers.h), never on the event loop: the connection reads no
 * further request meanwhile (tl_conn_suspend_reads), the answer is given on the loop, and
 * a login arriving while PLAIN_PENDING_MAX are being checked is refused at once. SCRAM
 * logins and AlterUserScramCredentials (salted by the client) need no PBKDF2. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/workers.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/diag.h"
#include "common/scram.h"
#include "common/time.h"

#define SCRAM_FILE       "scram-credentials"
#define SCRAM_FILE_MAX   (16 * 1024 * 1024)
#define MOCK_SECRET_FILE "sasl-mock-secret"
#define SCRAM_MSG_MAX    1024                    /* a SCRAM message we keep for AuthMessage */
#define SCRAM_NONCE_RAND 24                      /* random bytes of the server's nonce part */
#define B64_SIZE(n)      (((n) + 2) / 3 * 4 + 1) /* base64 of n bytes, with its NUL */

/* PLAIN logins: PBKDF2 is CPU work, so two cores beside the loop's at most; at most 128
 * logins checked or waiting (at 16384 SHA-256 iterations about 0.7 s of work) before the
 * next is refused, so a login storm neither grows memory nor waits unboundedly. */
#define PLAIN_THREADS     2
#define PLAIN_PENDING_MAX 128

enum sasl_step {
	SASL_STEP_START = 0,   /* no handshake yet */
	SASL_STEP_HANDSHAKEN,  /* mechanism chosen; first token due */
	SASL_STEP_SCRAM_FIRST, /* server-first sent; client-final due */
	SASL_STEP_DONE,        /* authenticated (a re-handshake may follow) */
	SASL_STEP_FAILED,      /* a failed attempt: nothing more on this connection */
};

/* A SCRAM exchange in progress: what AuthMessage needs between the two tokens. */
struct tl_sasl_exchange {
	enum tl_scram_mechanism mechanism;
	char user[TL_SASL_USER_MAX + 1];
	struct tl_scram_credential cred;
	const char *refuse; /* set for an unknown user: why its final message fails */
	char gs2_header[SCRAM_MSG_MAX];
	char client_first_bare[SCRAM_MSG_MAX];
	char server_first[SCRAM_MSG_MAX];
	char nonce[SCRAM_MSG_MAX]; /* client's + server's */
};

static const struct {
	const char *name;
	uint32_t bit;
	enum tl_scram_mechanism scram;
} mechanisms[] = {
	{"SCRAM-SHA-512", TL_SASL_MECHANISM_SCRAM_SHA_512, TL_SCRAM_SHA_512},
	{"SCRAM-SHA-256", TL_SASL_MECHANISM_SCRAM_SHA_256, TL_SCRAM_SHA_256},
	{"PLAIN", TL_SASL_MECHANISM_PLAIN, TL_SCRAM_UNKNOWN},
};

static const char *mechanism_name(uint32_t bit)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(mechanisms); i++)
		if (mechanisms[i].bit == bit)
			return mechanisms[i].name;
	return "none";
}

/* ---- the connection's state ---- */

bool tl_conn_requires_sasl(const struct tl_conn *conn)
{
	return tl_security_protocol_is_sasl(conn->security_protocol);
}

uint32_t tl_sasl_frame_max(const struct tl_conn *conn)
{
	const struct tl_config *config = &conn->broker->config;
	if (!conn->sasl_authenticated && tl_conn_requires_sasl(conn))
		return (uint32_t)TL_MIN(config->sasl_server_max_receive_size,
					config->socket_request_max_bytes);
	return (uint32_t)config->socket_request_max_bytes;
}

void tl_sasl_conn_free(struct tl_conn *conn)
{
	if (!conn->sasl)
		return;
	tl_scram_wipe(conn->sasl, sizeof(*conn->sasl));
	free(conn->sasl);
	conn->sasl = NULL;
}

static bool api_is_sasl(int16_t key)
{
	return key == TL_API_API_VERSIONS || key == TL_API_SASL_HANDSHAKE ||
	       key == TL_API_SASL_AUTHENTICATE;
}

bool tl_sasl_allows(struct tl_request *req)
{
	struct tl_conn *conn = req->conn;
	int16_t key = req->header.api_key;
	if (api_is_sasl(key))
		return true;
	if (conn->sasl_authenticated && conn->sasl_step != SASL_STEP_DONE) {
		/* Kafka's SaslServerAuthenticator: between a re-authentication's handshake and
		 * its end only SASL requests; the client must have paused (KIP-368). */
		const struct tl_api_info *info = tl_api_info(key);
		tl_warn("broker: request during SASL re-authentication, closing connection "
			"principal=%s peer=%s api=%s",
			conn->principal, conn->peer, info ? info->name : "unknown");
		tl_conn_close(conn, "request during SASL re-authentication"); /* frees req */
		return false;
	}
	if (conn->sasl_authenticated) {
		if (conn->sasl_expiry_ms == 0 || tl_mono_ms() < conn->sasl_expiry_ms)
			return true;
		tl_info("broker: SASL session expired, closing connection principal=%s peer=%s "
			"api_key=%d (connections.max.reauth.ms, KIP-368)",
			conn->principal, conn->peer, key);
		conn->broker->sasl_expired_total++;
		tl_conn_close(conn, "SASL session expired"); /* frees req */
		return false;
	}
	if (!tl_conn_requires_sasl(conn))
		return true;
	const struct tl_api_info *info = tl_api_info(key);
	tl_warn("broker: request before SASL authentication, closing connection peer=%s "
		"api=%s",
		conn->peer, info ? info->name : "unknown");
	tl_conn_close(conn, "unauthenticated request on a SASL listener"); /* frees req */
	return false;
}

/* ---- the credential store ---- */

static bool user_name_valid(const char *name, size_t len)
{
	/* '#' first would read back from the credentials file as a comment. */
	if (len == 0 || len > TL_SASL_USER_MAX || name[0] == '#')
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f)
			return false;
	return true;
}

static struct tl_sasl_user *user_find(struct tl_sasl_users *users, const char *name, size_t len)
{
	for (int32_t i = 0; i < users->count; i++)
		if (strlen(users->users[i].name) == len &&
		    memcmp(users->users[i].name, name, len) == 0)
			return &users->users[i];
	return NULL;
}

static struct tl_sasl_user *user_get(struct tl_sasl_users *users, const char *name, size_t len)
{
	struct tl_sasl_user *user = user_find(users, name, len);
	if (user)
		return user;
	TL_ASSERT(user_name_valid(name, len));
	if (users->count == users->cap) {
		int32_t cap = users->cap ? users->cap * 2 : 16;
		struct tl_sasl_user *grown = realloc(users->users, (size_t)cap * sizeof(*grown));
		if (!grown)
			return NULL;
		users->users = grown;
		users->cap = cap;
	}
	user = &users->users[users->count++];
	memset(user, 0, sizeof(*user));
	memcpy(user->name, name, len);
	return user;
}

static void user_remove_if_empty(struct tl_sasl_users *users, struct tl_sasl_user *user)
{
	if (user->has[0] || user->has[1])
		return;
	int32_t index = (int32_t)(user - users->users);
	users->users[index] = users->users[--users->count];
}

static struct tl_scram_credential *user_credential(struct tl_sasl_user *user,
						   enum tl_scram_mechanism mechanism)
{
	TL_ASSERT(mechanism == TL_SCRAM_SHA_256 || mechanism == TL_SCRAM_SHA_512);
	return user->has[mechanism - 1] ? &user->cred[mechanism - 1] : NULL;
}

static void meta_dir(const struct tl_broker *broker, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s/.tally-meta", broker->data_dir);
}

/* One line of the file into @users; false when malformed. */
static bool store_parse_line(struct tl_sasl_users *users, char *line)
{
	char *fields[6];
	int count = 0;
	for (char *save = NULL, *tok = strtok_r(line, " \t", &save); tok && count < 7;
	     tok = strtok_r(NULL, " \t", &save))
		if (count < 6)
			fields[count++] = tok;
		else
			return false;
	if (count != 6 || !user_name_valid(fields[0], strlen(fields[0])))
		return false;
	struct tl_scram_credential cred = {0};
	cred.mechanism = tl_scram_mechanism_of(fields[1], strlen(fields[1]));
	char *end;
	long iterations = strtol(fields[2], &end, 10);
	if (cred.mechanism == TL_SCRAM_UNKNOWN || *end || iterations < 1 || iterations > INT32_MAX)
		return false;
	cred.iterations = (int32_t)iterations;
	uint32_t key_len = tl_scram_key_len(cred.mechanism);
	uint8_t buf[TL_SCRAM_KEY_MAX + 8];
	size_t n;
	if (strlen(fields[3]) > tl_base64_encoded_len(TL_SCRAM_SALT_MAX) ||
	    !tl_base64_decode(fields[3], strlen(fields[3]), buf, &n) || n == 0 ||
	    n > TL_SCRAM_SALT_MAX)
		return false;
	memcpy(cred.salt, buf, n);
	cred.salt_len = (uint32_t)n;
	if (strlen(fields[4]) != tl_base64_encoded_len(key_len) ||
	    !tl_base64_decode(fields[4], strlen(fields[4]), cred.stored_key, &n) || n != key_len)
		return false;
	if (strlen(fields[5]) != tl_base64_encoded_len(key_len) ||
	    !tl_base64_decode(fields[5], strlen(fields[5]), cred.server_key, &n) || n != key_len)
		return false;
	struct tl_sasl_user *user = user_get(users, fields[0], strlen(fields[0]));
	if (!user)
		return false;
	user->cred[cred.mechanism - 1] = cred;
	user->has[cred.mechanism - 1] = true;
	return true;
}

tl_err tl_sasl_users_parse(struct tl_sasl_users *users, char *text, int32_t *bad_line_out)
{
	int32_t line_no = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		line_no++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (!store_parse_line(users, line)) {
			*bad_line_out = line_no;
			return TL_ERR_CORRUPT;
		}
	}
	return TL_OK;
}

char *tl_sasl_users_format(const struct tl_sasl_users *users)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (!out)
		return NULL;
	fprintf(out, "# tally SCRAM credentials (issue #16): user mechanism iterations salt "
		     "StoredKey ServerKey, base64; no passwords\n");
	for (int32_t i = 0; i < users->count; i++) {
		const struct tl_sasl_user *user = &users->users[i];
		for (int m = 0; m < 2; m++) {
			if (!user->has[m])
				continue;
			const struct tl_scram_credential *cred = &user->cred[m];
			uint32_t key_len = tl_scram_key_len(cred->mechanism);
			char salt[B64_SIZE(TL_SCRAM_SALT_MAX)];
			char stored[B64_SIZE(TL_SCRAM_KEY_MAX)];
			char server[B64_SIZE(TL_SCRAM_KEY_MAX)];
			tl_base64_encode(cred->salt, cred->salt_len, salt);
			tl_base64_encode(cred->stored_key, key_len, stored);
			tl_base64_encode(cred->server_key, key_len, server);
			fprintf(out, "%s %s %d %s %s %s\n", user->name,
				tl_scram_mechanism_name(cred->mechanism), cred->iterations, salt,
				stored, server);
		}
	}
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

void tl_sasl_users_deinit(struct tl_sasl_users *users)
{
	if (users->users)
		tl_scram_wipe(users->users, (size_t)users->cap * sizeof(*users->users));
	free(users->users);
	memset(users, 0, sizeof(*users));
}

int32_t tl_sasl_users_merge(struct tl_sasl_users *users, const struct tl_sasl_users *from,
			    bool replace)
{
	int32_t copied = 0;
	for (int32_t i = 0; i < from->count; i++) {
		const struct tl_sasl_user *src = &from->users[i];
		for (int m = 0; m < 2; m++) {
			if (!src->has[m])
				continue;
			struct tl_sasl_user *dst = user_find(users, src->name, strlen(src->name));
			if (dst && dst->has[m] && !replace)
				continue;
			if (!dst && !(dst = user_get(users, src->name, strlen(src->name))))
				return -1;
			dst->cred[m] = src->cred[m];
			dst->has[m] = true;
			copied++;
		}
	}
	return copied;
}

bool tl_sasl_users_remove_lines(struct tl_sasl_users *users, const char *text)
{
	const char *p = text;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *space = memchr(p, ' ', len);
		if (len > 0) {
			if (!space)
				return false;
			enum tl_scram_mechanism mech =
				tl_scram_mechanism_of(space + 1, (size_t)(p + len - space - 1));
			if (mech == TL_SCRAM_UNKNOWN)
				return false;
			struct tl_sasl_user *user = user_find(users, p, (size_t)(space - p));
			if (user) {
				tl_scram_wipe(&user->cred[mech - 1], sizeof(user->cred[mech - 1]));
				user->has[mech - 1] = false;
				user_remove_if_empty(users, user);
			}
		}
		p += len + (eol ? 1 : 0);
	}
	return true;
}

void tl_sasl_apply_view(struct tl_broker *broker, const char *text)
{
	if (broker->sasl_view_text && strcmp(broker->sasl_view_text, text) == 0)
		return;
	struct tl_sasl_users fresh = {0};
	char *copy = strdup(text);
	char *work = strdup(text);
	int32_t bad_line = 0;
	if (!copy || !work || tl_sasl_users_parse(&fresh, work, &bad_line) != TL_OK) {
		tl_crit("sasl: cannot apply the cluster's SCRAM credentials, keeping the previous "
			"ones line=%d",
			bad_line);
		tl_sasl_users_deinit(&fresh);
		free(copy);
		if (work)
			tl_scram_wipe(work, strlen(text));
		free(work);
		return;
	}
	tl_scram_wipe(work, strlen(text));
	free(work);
	tl_sasl_users_deinit(&broker->sasl_users);
	broker->sasl_users = fresh;
	if (broker->sasl_view_text)
		tl_scram_wipe(broker->sasl_view_text, strlen(broker->sasl_view_text));
	free(broker->sasl_view_text);
	broker->sasl_view_text = copy;
	tl_info("sasl: applied the cluster's SCRAM credentials users=%d", fresh.count);
}

/* Replaces @dir/@name with @text (mode 0600: salted credentials, the unknown-user
 * secret) as the broker's metadata files are written; makes @dir first. */
static tl_err meta_file_save(const char *dir, const char *name, const char *text)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		tl_warn("sasl: cannot make dir=%s err=%s", dir, strerrorname_np(errno));
		return TL_ERR_IO;
	}
	return tl_broker_write_file_atomic(dir, name, text, 0600);
}

/* Replaces the credentials file. */
static tl_err store_save(struct tl_broker *broker)
{
	char dir[TL_CONFIG_STR_MAX + 32];
	meta_dir(broker, dir, sizeof(dir));
	char *text = tl_sasl_users_format(&broker->sasl_users);
	if (!text)
		return TL_ERR_IO;
	tl_err err = meta_file_save(dir, SCRAM_FILE, text);
	tl_scram_wipe(text, strlen(text));
	free(text);
	return err;
}

void tl_sasl_mock_secret_format(const uint8_t *secret, char *out)
{
	tl_base64_encode(secret, TL_SASL_MOCK_SECRET_BYTES, out);
	strcat(out, "\n");
}

bool tl_sasl_mock_secret_parse(const char *text, size_t len, uint8_t *secret)
{
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	uint8_t out[TL_SASL_MOCK_SECRET_TEXT];
	size_t n;
	if (tl_base64_decoded_len_max(len) > sizeof(out) || !tl_base64_decode(text, len, out, &n) ||
	    n != TL_SASL_MOCK_SECRET_BYTES)
		return false;
	memcpy(secret, out, TL_SASL_MOCK_SECRET_BYTES);
	tl_scram_wipe(out, sizeof(out));
	return true;
}

/* Single-node mode with a SASL listener: the secret from its file, or, when there is
 * none (or a malformed one), a new one saved there. One that cannot be read (EIO,
 * EACCES) is left as it is: this process uses its own, random one. */
static void mock_secret_load(struct tl_broker *broker)
{
	bool sasl = false;
	for (int32_t i = 0; i < broker->config.listener_count; i++)
		sasl |= tl_security_protocol_is_sasl(
			broker->config.listener_list[i].security_protocol);
	if (!sasl || tl_config_is_cluster(&broker->config))
		return;
	char dir[TL_CONFIG_STR_MAX + 32], path[TL_CONFIG_STR_MAX + 64];
	meta_dir(broker, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/" MOCK_SECRET_FILE, dir);
	char *text = NULL;
	size_t n = 0;
	if (tl_broker_read_file(path, TL_SASL_MOCK_SECRET_TEXT, "sasl", &text, &n) != TL_OK)
		return; /* logged; kept for when it can be read again, this process uses its own */
	if (text) {
		bool ok = tl_sasl_mock_secret_parse(text, n, broker->sasl_mock_secret);
		tl_scram_wipe(text, n);
		free(text);
		if (ok)
			return;
		tl_warn("sasl: malformed unknown-user secret, making a new one path=%s", path);
	}
	char out[TL_SASL_MOCK_SECRET_TEXT];
	tl_sasl_mock_secret_format(broker->sasl_mock_secret, out);
	(void)meta_file_save(dir, MOCK_SECRET_FILE, out);
	tl_scram_wipe(out, sizeof(out));
}

tl_err tl_sasl_load(struct tl_broker *broker)
{
	struct tl_sasl_users *users = &broker->sasl_users;
	users->count = 0;
	if (!tl_scram_random(broker->sasl_mock_secret, sizeof(broker->sasl_mock_secret))) {
		tl_crit("sasl: no randomness for the unknown-user secret");
		return TL_ERR_IO;
	}
	mock_secret_load(broker);
	char dir[TL_CONFIG_STR_MAX + 32], path[TL_CONFIG_STR_MAX + 64];
	meta_dir(broker, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/" SCRAM_FILE, dir);
	if (tl_config_is_cluster(&broker->config)) {
		/* Cluster mode: the metadata store holds them; the view brings them. */
		if (access(path, F_OK) == 0)
			tl_warn("sasl: cluster mode ignores the local credentials file path=%s "
				"(credentials live in the metadata store)",
				path);
		return TL_OK;
	}
	char *text;
	size_t n;
	tl_err err = tl_broker_read_file(path, SCRAM_FILE_MAX, "sasl", &text, &n);
	if (err != TL_OK || !text)
		return err;
	int32_t bad_line = 0;
	err = tl_sasl_users_parse(users, text, &bad_line);
	tl_scram_wipe(text, n);
	free(text);
	if (err != TL_OK) {
		tl_crit("sasl: corrupt credentials file path=%s line=%d", path, bad_line);
		return err;
	}
	tl_info("sasl: loaded SCRAM credentials users=%d", users->count);
	return TL_OK;
}

tl_err tl_sasl_workers_start(struct tl_broker *broker)
{
	if (!(broker->config.sasl_mechanisms & TL_SASL_MECHANISM_PLAIN))
		return TL_OK;
	tl_err err = tl_workers_create(PLAIN_THREADS, PLAIN_PENDING_MAX, &broker->sasl_workers);
	if (err != TL_OK)
		tl_crit("sasl: cannot start the PLAIN login threads err=%s", tl_err_name(err));
	return err;
}

void tl_sasl_workers_stop(struct tl_broker *broker)
{
	tl_workers_destroy(broker->sasl_workers);
	broker->sasl_workers = NULL;
}

void tl_sasl_deinit(struct tl_broker *broker)
{
	tl_sasl_users_deinit(&broker->sasl_users);
	if (broker->sasl_view_text)
		tl_scram_wipe(broker->sasl_view_text, strlen(broker->sasl_view_text));
	free(broker->sasl_view_text);
	broker->sasl_view_text = NULL;
}

/* Sets @user's credential for @mechanism from @salted. */
static tl_err store_upsert(struct tl_sasl_users *users, const char *name, size_t name_len,
			   enum tl_scram_mechanism mechanism, int32_t iterations,
			   const uint8_t *salt, size_t salt_len, const uint8_t *salted)
{
	TL_ASSERT(salt_len > 0 && salt_len <= TL_SCRAM_SALT_MAX);
	struct tl_sasl_user *user = user_get(users, name, name_len);
	if (!user)
		return TL_ERR_IO;
	struct tl_scram_credential *cred = &user->cred[mechanism - 1];
	memset(cred, 0, sizeof(*cred));
	cred->mechanism = mechanism;
	cred->iterations = iterations;
	memcpy(cred->salt, salt, salt_len);
	cred->salt_len = (uint32_t)salt_len;
	tl_scram_credential_from_salted(cred, salted);
	user->has[mechanism - 1] = true;
	return TL_OK;
}

static void add_scram_done(void *ctx, tl_err err, const char *message)
{
	char *label = ctx;
	if (err == TL_OK)
		tl_info("sasl: --add-scram in the metadata store %s outcome=%s", label,
			message[0] ? message : "stored");
	else
		tl_warn("sasl: --add-scram not stored in the metadata store %s err=%s detail=\"%s\"",
			label, tl_err_name(err), message);
	free(label);
}

/* Cluster mode: --add-scram bootstraps a credential the store lacks (kafka-storage's
 * --add-scram only acts when a cluster is formatted): one the store already has, set
 * since by AlterUserScramCredentials perhaps, is kept. Asynchronous: the loop logs the
 * outcome and every broker applies the store's view. */
static tl_err add_scram_cluster(struct tl_broker *broker, const char *name, size_t name_len,
				enum tl_scram_mechanism mechanism, int32_t iterations,
				const uint8_t *salt, size_t salt_len, const uint8_t *salted)
{
	struct tl_sasl_users one = {0};
	tl_err err =
		store_upsert(&one, name, name_len, mechanism, iterations, salt, salt_len, salted);
	char *text = err == TL_OK ? tl_sasl_users_format(&one) : NULL;
	tl_sasl_users_deinit(&one);
	char *label = malloc(TL_SASL_USER_MAX + 64);
	if (!text || !label) {
		free(text);
		free(label);
		return TL_ERR_NOMEM;
	}
	snprintf(label, TL_SASL_USER_MAX + 64, "user=%.*s mechanism=%s", (int)name_len, name,
		 tl_scram_mechanism_name(mechanism));
	err = tl_cluster_change_scram(broker, text, "", false, add_scram_done, label);
	tl_scram_wipe(text, strlen(text));
	free(text);
	if (err != TL_OK)
		free(label);
	return err;
}

tl_err tl_sasl_add_scram(struct tl_broker *broker, const char *spec, char *why, size_t why_size)
{
	/* Kafka's kafka-storage --add-scram form:
	 * SCRAM-SHA-512=[name=alice,iterations=8192,password=secret]; password= comes last
	 * and runs to the closing bracket (commas included), quotes around it dropped. */
	const char *eq = strchr(spec, '=');
	enum tl_scram_mechanism mechanism =
		eq ? tl_scram_mechanism_of(spec, (size_t)(eq - spec)) : TL_SCRAM_UNKNOWN;
	size_t spec_len = strlen(spec);
	if (mechanism == TL_SCRAM_UNKNOWN || eq[1] != '[' || spec[spec_len - 1] != ']') {
		snprintf(why, why_size,
			 "--add-scram wants SCRAM-SHA-256|SCRAM-SHA-512=[name=N,password=P"
			 "(,iterations=I)]");
		return TL_ERR_INVALID;
	}
	const char *body = eq + 2;
	size_t body_len = (size_t)(spec + spec_len - 1 - body);
	char name[TL_SASL_USER_MAX + 1] = "", password[1024] = "";
	size_t name_len = 0, password_len = 0;
	int32_t iterations = TL_SCRAM_ITERATIONS_MIN;
	size_t i = 0;
	while (i < body_len) {
		size_t end = i;
		while (end < body_len && body[end] != ',')
			end++;
		const char *item = body + i;
		size_t item_len = end - i;
		if (item_len > 5 && memcmp(item, "name=", 5) == 0 &&
		    item_len - 5 <= TL_SASL_USER_MAX) {
			name_len = item_len - 5;
			memcpy(name, item + 5, name_len);
			name[name_len] = '\0';
		} else if (item_len > 9 && memcmp(item, "password=", 9) == 0 &&
			   item_len - 9 < sizeof(password)) {
			/* The password runs to the closing bracket: it may hold commas. */
			password_len = body_len - i - 9;
			if (password_len >= sizeof(password))
				break;
			memcpy(password, item + 9, password_len);
			password[password_len] = '\0';
			if (password_len >= 2 && password[0] == '"' &&
			    password[password_len - 1] == '"') {
				/* kafka-storage's quoted form */
				memmove(password, password + 1, password_len - 2);
				password_len -= 2;
				password[password_len] = '\0';
			}
			end = body_len;
		} else if (item_len > 11 && memcmp(item, "iterations=", 11) == 0) {
			iterations = atoi(item + 11);
		} else {
			break;
		}
		i = end + 1;
	}
	tl_err err = TL_ERR_INVALID;
	if (!user_name_valid(name, name_len) || password_len == 0) {
		snprintf(why, why_size,
			 "--add-scram: needs name= (no spaces, not '#' first, 1-%d bytes) and "
			 "password=",
			 TL_SASL_USER_MAX);
		goto out;
	}
	if (iterations < TL_SCRAM_ITERATIONS_MIN || iterations > TL_SCRAM_ITERATIONS_MAX) {
		snprintf(why, why_size, "--add-scram: iterations must be in [%d, %d]",
			 TL_SCRAM_ITERATIONS_MIN, TL_SCRAM_ITERATIONS_MAX);
		goto out;
	}
	uint8_t salt[32], salted[TL_SCRAM_KEY_MAX];
	if (!tl_scram_random(salt, sizeof(salt)) ||
	    !tl_scram_salted_password(mechanism, password, password_len, salt, sizeof(salt),
				      iterations, salted)) {
		snprintf(why, why_size, "--add-scram: OpenSSL failed");
		goto out;
	}
	if (broker->cluster) {
		err = add_scram_cluster(broker, name, name_len, mechanism, iterations, salt,
					sizeof(salt), salted);
		tl_scram_wipe(salted, sizeof(salted));
		if (err != TL_OK)
			snprintf(why, why_size,
				 "--add-scram: cannot send the credential to the "
				 "metadata store");
		goto out;
	}
	err = store_upsert(&broker->sasl_users, name, name_len, mechanism, iterations, salt,
			   sizeof(salt), salted);
	tl_scram_wipe(salted, sizeof(salted));
	if (err == TL_OK)
		err = store_save(broker);
	if (err != TL_OK)
		snprintf(why, why_size, "--add-scram: cannot store the credential");
	else
		tl_info("sasl: SCRAM credential set user=%s mechanism=%s iterations=%d (--add-scram)",
			name, tl_scram_mechanism_name(mechanism), iterations);
out:
	tl_scram_wipe(password, sizeof(password));
	return err;
}

/* ---- SaslHandshake ---- */

static void handshake_respond(struct tl_request *req, tl_err error)
{
	const struct tl_config *config = &req->conn->broker->config;
	struct tl_sasl_handshake_response resp;
	tl_sasl_handshake_response_defaults(&resp);
	struct tl_str names[TL_ARRAY_SIZE(mechanisms)];
	resp.error_code = (int16_t)error;
	resp.mechanisms_count = 0;
	for (size_t i = 0; i < TL_ARRAY_SIZE(mechanisms); i++)
		if (config->sasl_mechanisms & mechanisms[i].bit)
			names[resp.mechanisms_count++] = tl_str_of(mechanisms[i].name);
	resp.mechanisms = names;
	tl_response_begin(req);
	tl_sasl_handshake_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

void tl_handle_sasl_handshake(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_conn *conn = req->conn;
	struct tl_sasl_handshake_request msg;
	if (tl_sasl_handshake_request_decode(body, req->header.api_version, &req->arena, &msg) !=
	    TL_OK) {
		tl_request_reject(req, "bad SaslHandshake body");
		return;
	}
	if (req->header.api_version == 0) {
		tl_warn("broker: SaslHandshake v0 (unframed SASL tokens) is not supported, closing "
			"connection peer=%s",
			conn->peer);
		tl_conn_close(conn, "SaslHandshake v0"); /* frees req */
		return;
	}
	if (!tl_conn_requires_sasl(conn) ||
	    (conn->sasl_step != SASL_STEP_START && conn->sasl_step != SASL_STEP_DONE)) {
		handshake_respond(req, TL_ERR_ILLEGAL_SASL_STATE);
		return;
	}
	uint32_t bit = 0;
	for (size_t i = 0; i < TL_ARRAY_SIZE(mechanisms); i++)
		if (tl_str_eq_c(msg.mechanism, mechanisms[i].name))
			bit = mechanisms[i].bit;
	/* As Kafka, the connection closes after the answer: a client may not try another
	 * mechanism, nor re-authenticate with another than it logged in with (KIP-368). */
	bool other = conn->sasl_authenticated && bit != 0 && bit != conn->sasl_mechanism;
	if (!(bit & conn->broker->config.sasl_mechanisms) || other) {
		tl_warn("broker: SASL mechanism %s, closing connection peer=%s mechanism=\"%.*s\"",
			other ? "differs from the session's (re-authentication)" : "not enabled",
			conn->peer, TL_MIN(TL_MAX(msg.mechanism.len, 0), 64), msg.mechanism.ptr);
		conn->sasl_step = SASL_STEP_FAILED;
		conn->close_when_flushed = true;
		handshake_respond(req, TL_ERR_UNSUPPORTED_SASL_MECHANISM);
		return;
	}
	conn->sasl_mechanism = bit;
	conn->sasl_step = SASL_STEP_HANDSHAKEN;
	handshake_respond(req, TL_OK);
}

/* ---- SaslAuthenticate ---- */

static void authenticate_respond(struct tl_request *req, tl_err error, const char *message,
				 const void *bytes, size_t len, int64_t lifetime_ms)
{
	struct tl_sasl_authenticate_response resp;
	tl_sasl_authenticate_response_defaults(&resp);
	resp.error_code = (int16_t)error;
	resp.error_message = message ? tl_str_of(message) : (struct tl_str){NULL, -1};
	resp.auth_bytes.ptr = bytes;
	resp.auth_bytes.len = (int32_t)len;
	resp.session_lifetime_ms = lifetime_ms;
	tl_response_begin(req);
	tl_sasl_authenticate_response_encode(&req->response, req->header.api_version, &resp);
	tl_response_end(req);
}

/* Answers SASL_AUTHENTICATION_FAILED with @message (copied), then closes the connection;
 * the diag line names the principal and @reason, never the password. */
static void authenticate_refuse(struct tl_request *req, const char *user, const char *reason,
				const char *message)
{
	struct tl_conn *conn = req->conn;
	conn->broker->sasl_failed_total++;
	tl_warn("broker: SASL authentication failed principal=User:%s mechanism=%s peer=%s "
		"reason=\"%s\"",
		user, mechanism_name(conn->sasl_mechanism), conn->peer, reason);
	tl_sasl_conn_free(conn);
	conn->sasl_step = SASL_STEP_FAILED;
	conn->close_when_flushed = true;
	char *copy = tl_arena_alloc(&req->arena, strlen(message) + 1);
	if (copy)
		memcpy(copy, message, strlen(message) + 1);
	authenticate_respond(req, TL_ERR_SASL_AUTHENTICATION_FAILED, copy, NULL, 0, 0);
}

/* The client's failure message says nothing of why (as Kafka's); the diag line does. */
static void authenticate_fail(struct tl_request *req, const char *user, const char *reason)
{
	char message[160];
	snprintf(message, sizeof(message),
		 "Authentication failed during authentication due to invalid credentials with "
		 "SASL mechanism %s",
		 mechanism_name(req->conn->sasl_mechanism));
	authenticate_refuse(req, user, reason, message);
}

/* Authenticated as @user: sets the principal and the session's end. False (and the
 * response sent) when a re-authentication tried another principal. */
static bool authenticate_done(struct tl_request *req, const char *user, int64_t *lifetime_out)
{
	struct tl_conn *conn = req->conn;
	char principal[sizeof(conn->principal)];
	snprintf(principal, sizeof(principal), "User:%s", user);
	if (conn->sasl_authenticated && strcmp(principal, conn->principal) != 0) {
		authenticate_fail(req, user, "re-authentication changed the principal");
		return false;
	}
	bool reauth = conn->sasl_authenticated;
	if (reauth)
		conn->broker->sasl_reauth_total++;
	else
		conn->broker->sasl_auth_total++;
	memcpy(conn->principal, principal, sizeof(principal));
	conn->sasl_authenticated = true;
	conn->sasl_step = SASL_STEP_DONE;
	int64_t lifetime = conn->broker->config.connections_max_reauth_ms;
	int64_t now_ms = tl_mono_ms();
	/* 0: no limit; a lifetime past the clock's range is none either (no overflow) */
	conn->sasl_expiry_ms =
		lifetime > 0 && lifetime < INT64_MAX - now_ms ? now_ms + lifetime : 0;
	*lifetime_out = lifetime;
	tl_sasl_conn_free(conn);
	tl_info("broker: SASL %s principal=%s mechanism=%s peer=%s session_lifetime_ms=%lld",
		reauth ? "re-authenticated" : "authenticated", conn->principal,
		mechanism_name(conn->sasl_mechanism), conn->peer, (long long)lifetime);
	return true;
}

/* A PLAIN login on its way through a worker: what the PBKDF2 needs, copied or borrowed,
 * and what it found. */
struct plain_login {
	struct tl_work work;
	struct tl_request *req; /* waits on the login (req->waits) */
	const char *password;   /* borrowed from req's frame, which outlives the wait */
	size_t password_len;
	char user[TL_SASL_USER_MAX + 1];
	int32_t cred_count;
	struct tl_scram_credential creds[2]; /* copies: the store may change meanwhile */
	int32_t matched;                     /* index of the credential the password gives; -1 */
	bool unknown; /* no such user: creds[0] is made up, the login fails after the work */
};
TL_STATIC_ASSERT(offsetof(struct plain_login, work) == 0, "the pool hands back &login->work");

/* The worker's part: SaltedPassword for each credential, SHA-512 first. Thread: a worker. */
static void plain_login_run(struct tl_work *work)
{
	struct plain_login *login = (struct plain_login *)work;
	login->matched = -1;
	for (int32_t i = 0; i < login->cred_count && login->matched < 0; i++) {
		const struct tl_scram_credential *cred = &login->creds[i];
		struct tl_scram_credential check = *cred;
		uint8_t salted[TL_SCRAM_KEY_MAX];
		if (!tl_scram_salted_password(cred->mechanism, login->password, login->password_len,
					      cred->salt, cred->salt_len, cred->iterations, salted))
			break;
		tl_scram_credential_from_salted(&check, salted);
		if (tl_scram_equal(check.stored_key, cred->stored_key,
				   tl_scram_key_len(cred->mechanism)))
			login->matched = i;
		tl_scram_wipe(salted, sizeof(salted));
		tl_scram_wipe(&check, sizeof(check));
	}
}

/* Why @login fails, or NULL: the password gave a credential the store still holds as it
 * was (AlterUserScramCredentials may have changed it while the worker ran). */
static const char *plain_login_verdict(struct tl_broker *broker, const struct plain_login *login,
				       bool ran)
{
	if (!ran)
		return "broker stopping";
	if (login->unknown)
		return "unknown user";
	if (login->matched < 0)
		return "wrong password";
	const struct tl_scram_credential *used = &login->creds[login->matched];
	struct tl_sasl_user *entry =
		user_find(&broker->sasl_users, login->user, strlen(login->user));
	const struct tl_scram_credential *now =
		entry ? user_credential(entry, used->mechanism) : NULL;
	if (!now || now->iterations != used->iterations || now->salt_len != used->salt_len ||
	    memcmp(now->salt, used->salt, used->salt_len) != 0 ||
	    !tl_scram_equal(now->stored_key, used->stored_key, tl_scram_key_len(used->mechanism)))
		return "credential changed during the login";
	return NULL;
}

/* The loop's part: answers the login and reads on from its connection. */
static void plain_login_done(struct tl_work *work, bool ran)
{
	struct plain_login *login = (struct plain_login *)work;
	struct tl_request *req = login->req;
	struct tl_conn *conn = req->conn;
	tl_conn_hold(conn);             /* a failed login closes it once answered */
	if (tl_request_wait_end(req)) { /* else the connection closed: req is freed */
		TL_ASSERT(conn->sasl_step == SASL_STEP_HANDSHAKEN);
		const char *why = plain_login_verdict(conn->broker, login, ran);
		int64_t lifetime;
		if (why)
			authenticate_fail(req, login->user, why);
		else if (authenticate_done(req, login->user, &lifetime))
			authenticate_respond(req, TL_OK, NULL, NULL, 0, lifetime);
		tl_conn_resume_reads(conn);
	}
	tl_scram_wipe(login, sizeof(*login));
	free(login);
	tl_conn_release(conn);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. The password is checked on a worker. */
static void authenticate_plain(struct tl_request *req, struct tl_bytes token)
{
	struct tl_conn *conn = req->conn;
	struct tl_broker *broker = conn->broker;
	const char *p = (const char *)token.ptr;
	size_t len = (size_t)TL_MAX(token.len, 0);
	const char *nul1 = memchr(p, '\0', len);
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p)) : NULL;
	if (!nul2) {
		authenticate_fail(req, "?", "malformed PLAIN token");
		return;
	}
	const char *authzid = p, *user = nul1 + 1, *password = nul2 + 1;
	size_t authzid_len = (size_t)(nul1 - p), user_len = (size_t)(nul2 - user);
	size_t password_len = len - (size_t)(password - p);
	char name[TL_SASL_USER_MAX + 1] = "?";
	if (user_name_valid(user, user_len)) {
		memcpy(name, user, user_len);
		name[user_len] = '\0';
	} else {
		authenticate_fail(req, "?", "PLAIN user name empty, too long or not printable");
		return;
	}
	if (authzid_len && (authzid_len != user_len || memcmp(authzid, user, user_len) != 0)) {
		authenticate_fail(req, name, "PLAIN authorization id differs from the user");
		return;
	}
	struct tl_sasl_user *entry = user_find(&broker->sasl_users, user, user_len);
	struct plain_login *login = calloc(1, sizeof(*login));
	if (!login) {
		authenticate_fail(req, name, "out of memory");
		return;
	}
	login->work.run = plain_login_run;
	login->work.done = plain_login_done;
	login->req = req;
	login->password = password;
	login->password_len = password_len;
	memcpy(login->user, name, sizeof(name));
	if (entry) {
		for (int m = 1; m >= 0; m--)
			if (entry->has[m])
				login->creds[login->cred_count++] = entry->cred[m];
	} else {
		/* The PBKDF2 of a known user with both credentials (the usual set), on
		 * made-up ones: a quick refusal told who has no account. */
		login->unknown = true;
		tl_scram_mock_credential(broker->sasl_mock_secret, sizeof(broker->sasl_mock_secret),
					 TL_SCRAM_SHA_512, name, &login->creds[0]);
		tl_scram_mock_credential(broker->sasl_mock_secret, sizeof(broker->sasl_mock_secret),
					 TL_SCRAM_SHA_256, name, &login->creds[1]);
		login->cred_count = 2;
	}
	TL_ASSERT(broker->sasl_workers); /* started with PLAIN enabled */
	if (tl_workers_submit(broker->sasl_workers, &login->work) != TL_OK) {
		tl_scram_wipe(login, sizeof(*login));
		free(login);
		authenticate_refuse(req, name, "too many PLAIN logins being checked",
				    "Authentication failed: the broker is checking too many PLAIN "
				    "logins at once; retry later");
		return;
	}
	req->waits++;
	tl_conn_suspend_reads(conn);
}

/* client-first-message: gs2-header client-first-message-bare. */
static void scram_first(struct tl_request *req, struct tl_bytes token,
			enum tl_scram_mechanism mechanism)
{
	struct tl_conn *conn = req->conn;
	const char *msg = (const char *)token.ptr;
	size_t len = (size_t)TL_MAX(token.len, 0);
	if (len >= SCRAM_MSG_MAX || len < 3 || memchr(msg, '\0', len)) {
		authenticate_fail(req, "?", "SCRAM client-first message malformed or too long");
		return;
	}
	/* gs2-header: ("n" | "y") "," [ "a=" saslname ] "," ; "p=" (channel binding) no. */
	if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
		authenticate_fail(req, "?", "SCRAM channel binding is not supported");
		return;
	}
	const char *comma = memchr(msg + 2, ',', len - 2);
	if (!comma) {
		authenticate_fail(req, "?", "SCRAM client-first message malformed");
		return;
	}
	size_t gs2_len = (size_t)(comma + 1 - msg);
	const char *bare = comma + 1;
	size_t bare_len = len - gs2_len;
	size_t user_len, nonce_len;
	const char *user = tl_scram_attr(bare, bare_len, 'n', &user_len);
	const char *nonce = tl_scram_attr(bare, bare_len, 'r', &nonce_len);
	char name[TL_SASL_USER_MAX + 1];
	if (!user || !nonce || nonce_len == 0 || bare[0] != 'n' ||
	    !tl_scram_name_decode(user, user_len, name, sizeof(name)) ||
	    !user_name_valid(name, strlen(name))) {
		authenticate_fail(req, "?", "SCRAM client-first message malformed");
		return;
	}
	if (gs2_len > 3) {
		/* An authorization id: Kafka allows only the user itself. */
		char authzid[TL_SASL_USER_MAX + 1];
		if (msg[2] != 'a' || msg[3] != '=' ||
		    !tl_scram_name_decode(msg + 4, gs2_len - 5, authzid, sizeof(authzid)) ||
		    strcmp(authzid, name) != 0) {
			authenticate_fail(req, name,
					  "SCRAM authorization id differs from the user");
			return;
		}
	}
	struct tl_sasl_user *entry = user_find(&conn->broker->sasl_users, name, strlen(name));
	const struct tl_scram_credential *cred = entry ? user_credential(entry, mechanism) : NULL;
	/* A user without this credential gets a made-up one and fails at the proof, as a
	 * wrong password does (RFC 5802 5.1): failing here told who has an account. */
	struct tl_scram_credential mock;
	const char *refuse = NULL;
	if (!cred) {
		refuse = entry ? "no credential for this mechanism" : "unknown user";
		tl_scram_mock_credential(conn->broker->sasl_mock_secret,
					 sizeof(conn->broker->sasl_mock_secret), mechanism, name,
					 &mock);
		cred = &mock;
	}
	struct tl_sasl_exchange *ex = calloc(1, sizeof(*ex));
	uint8_t random[SCRAM_NONCE_RAND];
	char random_b64[B64_SIZE(SCRAM_NONCE_RAND)];
	char salt_b64[B64_SIZE(TL_SCRAM_SALT_MAX)];
	if (!ex || !tl_scram_random(random, sizeof(random))) {
		free(ex);
		tl_crit("broker: out of memory or randomness for a SCRAM exchange peer=%s",
			conn->peer);
		tl_conn_close(conn, "SCRAM setup failed"); /* frees req */
		return;
	}
	tl_base64_encode(random, sizeof(random), random_b64);
	tl_base64_encode(cred->salt, cred->salt_len, salt_b64);
	ex->mechanism = mechanism;
	snprintf(ex->user, sizeof(ex->user), "%s", name);
	ex->cred = *cred;
	ex->refuse = refuse;
	tl_scram_wipe(&mock, sizeof(mock));
	memcpy(ex->gs2_header, msg, gs2_len);
	memcpy(ex->client_first_bare, bare, bare_len);
	int n = snprintf(ex->nonce, sizeof(ex->nonce), "%.*s%s", (int)nonce_len, nonce, random_b64);
	TL_ASSERT(n > 0 && (size_t)n < sizeof(ex->nonce));
	n = snprintf(ex->server_first, sizeof(ex->server_first), "r=%s,s=%s,i=%d", ex->nonce,
		     salt_b64, ex->cred.iterations);
	if (n <= 0 || (size_t)n >= sizeof(ex->server_first)) {
		free(ex);
		authenticate_fail(req, name, "SCRAM nonce too long");
		return;
	}
	tl_sasl_conn_free(conn);
	conn->sasl = ex;
	conn->sasl_step = SASL_STEP_SCRAM_FIRST;
	authenticate_respond(req, TL_OK, NULL, ex->server_first, (size_t)n, 0);
}

/* client-final-message: c=<b64 gs2-header>,r=<nonce>[,...],p=<proof>. */
static void scram_final(struct tl_request *req, struct tl_bytes token)
{
	struct tl_conn *conn = req->conn;
	struct tl_sasl_exchange *ex = conn->sasl;
	TL_ASSERT(ex);
	char user[TL_SASL_USER_MAX + 1];
	snprintf(user, sizeof(user), "%s", ex->user);
	const char *msg = (const char *)token.ptr;
	size_t len = (size_t)TL_MAX(token.len, 0);
	const char *proof_attr = len < SCRAM_MSG_MAX ? memmem(msg, len, ",p=", 3) : NULL;
	if (!proof_attr) {
		authenticate_fail(req, user, "SCRAM client-final message malformed");
		return;
	}
	size_t without_proof_len = (size_t)(proof_attr - msg);
	size_t binding_len, nonce_len;
	const char *binding = tl_scram_attr(msg, without_proof_len, 'c', &binding_len);
	const char *nonce = tl_scram_attr(msg, without_proof_len, 'r', &nonce_len);
	char gs2_b64[B64_SIZE(SCRAM_MSG_MAX)];
	tl_base64_encode(ex->gs2_header, strlen(ex->gs2_header), gs2_b64);
	if (!binding || binding_len != strlen(gs2_b64) ||
	    memcmp(binding, gs2_b64, binding_len) != 0) {
		authenticate_fail(req, user, "SCRAM channel binding differs from the gs2 header");
		return;
	}
	/* Ends with, as Kafka's ScramSaslServer checks: librdkafka 2.0.2 sends its own nonce
	 * again in front of the server's (which already starts with it). */
	size_t want_len = strlen(ex->nonce);
	if (!nonce || nonce_len < want_len ||
	    memcmp(nonce + nonce_len - want_len, ex->nonce, want_len) != 0) {
		authenticate_fail(req, user, "SCRAM nonce differs from the server's");
		return;
	}
	const char *proof_b64 = proof_attr + 3;
	size_t proof_b64_len = len - without_proof_len - 3;
	uint32_t key_len = tl_scram_key_len(ex->mechanism);
	uint8_t proof[TL_SCRAM_KEY_MAX + 8];
	size_t proof_len = 0;
	if (proof_b64_len != tl_base64_encoded_len(key_len) ||
	    !tl_base64_decode(proof_b64, proof_b64_len, proof, &proof_len) ||
	    proof_len != key_len) {
		authenticate_fail(req, user, "SCRAM proof malformed");
		return;
	}
	char auth_message[3 * SCRAM_MSG_MAX + 4];
	int n = snprintf(auth_message, sizeof(auth_message), "%s,%s,%.*s", ex->client_first_bare,
			 ex->server_first, (int)without_proof_len, msg);
	TL_ASSERT(n > 0 && (size_t)n < sizeof(auth_message));
	uint8_t signature[TL_SCRAM_KEY_MAX];
	if (!tl_scram_verify_proof(&ex->cred, auth_message, (size_t)n, proof, signature) ||
	    ex->refuse) {
		authenticate_fail(req, user, ex->refuse ? ex->refuse : "wrong password");
		return;
	}
	int64_t lifetime;
	if (!authenticate_done(req, user, &lifetime))
		return;
	char signature_b64[B64_SIZE(TL_SCRAM_KEY_MAX)];
	tl_base64_encode(signature, key_len, signature_b64);
	char *final = tl_arena_alloc(&req->arena, strlen(signature_b64) + 3);
	if (!final) {
		tl_conn_close(conn, "out of memory"); /* frees req */
		return;
	}
	int final_len = sprintf(final, "v=%s", signature_b64);
	authenticate_respond(req, TL_OK, NULL, final, (size_t)final_len, lifetime);
}

void tl_handle_sasl_authenticate(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_conn *conn = req->conn;
	struct tl_sasl_authenticate_request msg;
	if (tl_sasl_authenticate_request_decode(body, req->header.api_version, &req->arena, &msg) !=
	    TL_OK) {
		/* Not tl_request_reject: its diag line shows the frame's first bytes, which may
		 * hold a PLAIN password. */
		conn->broker->malformed_total++;
		tl_warn("broker: malformed SaslAuthenticate, closing connection peer=%s",
			conn->peer);
		tl_conn_close(conn, "bad SaslAuthenticate body"); /* frees req */
		return;
	}
	if (conn->sasl_step == SASL_STEP_HANDSHAKEN) {
		if (conn->sasl_mechanism == TL_SASL_MECHANISM_PLAIN) {
			authenticate_plain(req, msg.auth_bytes);
			return;
		}
		scram_first(req, msg.auth_bytes,
			    conn->sasl_mechanism == TL_SASL_MECHANISM_SCRAM_SHA_512
				    ? TL_SCRAM_SHA_512
				    : TL_SCRAM_SHA_256);
		return;
	}
	if (conn->sasl_step == SASL_STEP_SCRAM_FIRST) {
		scram_final(req, msg.auth_bytes);
		return;
	}
	authenticate_respond(req, TL_ERR_ILLEGAL_SASL_STATE,
			     "SaslAuthenticate without a SaslHandshake first", NULL, 0, 0);
}

/* ---- DescribeUserScramCredentials (KIP-554) ---- */

/* @message with its one "%s" replaced by @arg, in the arena. */
static struct tl_str arena_text(struct tl_arena *arena, const char *message, const char *arg)
{
	const char *at = strstr(message, "%s");
	TL_ASSERT(at);
	size_t head = (size_t)(at - message), arg_len = strlen(arg), tail = strlen(at + 2);
	char *copy = tl_arena_alloc(arena, head + arg_len + tail + 1);
	if (!copy)
		return tl_str_of("(out of memory)");
	memcpy(copy, message, head);
	memcpy(copy + head, arg, arg_len);
	memcpy(copy + head + arg_len, at + 2, tail + 1);
	return (struct tl_str){copy, (int32_t)(head + arg_len + tail)};
}

static void describe_user(
	struct tl_arena *arena, const struct tl_sasl_user *user,
	struct tl_describe_user_scram_credentials_response_describe_user_scram_credentials_result
		*out)
{
	struct tl_describe_user_scram_credentials_response_credential_info *infos =
		tl_arena_array(arena, 2, sizeof(*infos));
	out->credential_infos = infos;
	out->credential_infos_count = 0;
	for (int m = 0; infos && m < 2; m++) {
		if (!user->has[m])
			continue;
		tl_describe_user_scram_credentials_response_credential_info_defaults(
			&infos[out->credential_infos_count]);
		infos[out->credential_infos_count].mechanism = (int8_t)user->cred[m].mechanism;
		infos[out->credential_infos_count].iterations = user->cred[m].iterations;
		out->credential_infos_count++;
	}
}

void tl_handle_describe_user_scram_credentials(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_sasl_users *users = &broker->sasl_users;
	struct tl_describe_user_scram_credentials_request msg;
	if (tl_describe_user_scram_credentials_request_decode(body, req->header.api_version,
							      &req->arena, &msg) != TL_OK) {
		tl_request_reject(req, "bad DescribeUserScramCredentials body");
		return;
	}
	struct tl_describe_user_scram_credentials_response resp;
	tl_describe_user_scram_credentials_response_defaults(&resp);
	if (!tl_authorize_cluster(req, TL_ACL_OP_DESCRIBE)) { /* Kafka: Describe on the Cluster */
		resp.error_code = TL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.error_message = tl_str_of("Not authorized to describe SCRAM credentials");
		tl_response_begin(req);
		tl_describe_user_scram_credentials_response_encode(&req->response,
								   req->header.api_version, &resp);
		tl_response_end(req);
		return;
	}
	bool all = msg.users_count <= 0;
	int32_t count = all ? users->count : msg.users_count;
	resp.results = tl_arena_array(&req->arena, (size_t)TL_MAX(count, 1), sizeof(*resp.results));
	if (!resp.results) {
		tl_conn_close(req->conn, "out of memory"); /* frees req */
		return;
	}
	resp.results_count = count;
	for (int32_t i = 0; i < count; i++) {
		struct tl_describe_user_scram_credentials_response_describe_user_scram_credentials_result
			*out = &resp.results[i];
		tl_describe_user_scram_credentials_response_describe_user_scram_credentials_result_defaults(
			out);
		out->credential_infos_count = 0;
		if (all) {
			out->user = tl_str_of(users->users[i].name);
			describe_user(&req->arena, &users->users[i], out);
			continue;
		}
		struct tl_str name = msg.users[i].name;
		out->user = name;
		bool duplicate = false;
		for (int32_t j = 0; j < count; j++)
			duplicate |= j != i && tl_str_eq(msg.users[j].name, name);
		char name_c[TL_SASL_USER_MAX + 1];
		snprintf(name_c, sizeof(name_c), "%.*s",
			 TL_MIN(TL_MAX(name.len, 0), TL_SASL_USER_MAX), name.ptr ? name.ptr : "");
		const struct tl_sasl_user *user =
			name.len > 0 ? user_find(users, name.ptr, (size_t)name.len) : NULL;
		if (duplicate) {
			out->error_code = TL_ERR_DUPLICATE_RESOURCE;
			out->error_message = arena_text(
				&req->arena,
				"Cannot describe SCRAM credentials for the same user twice in a "
				"single request: %s",
				name_c);
		} else if (!user) {
			out->error_code = TL_ERR_RESOURCE_NOT_FOUND;
			out->error_message = arena_text(
				&req->arena,
				"Attempt to describe a user credential that does not exist: %s",
				name_c);
		} else {
			describe_user(&req->arena, user, out);
		}
	}
	tl_response_begin(req);
	tl_describe_user_scram_credentials_response_encode(&req->response, req->header.api_version,
							   &resp);
	tl_response_end(req);
}

/* ---- AlterUserScramCredentials (KIP-554) ---- */

/* One user named by the request, with the first error found for it. */
struct alter_user {
	struct tl_str name;
	tl_err error;
	const char *message; /* a format with one %s: the user */
};

static struct alter_user *alter_user_of(struct alter_user *list, int32_t *count, struct tl_str name)
{
	for (int32_t i = 0; i < *count; i++)
		if (tl_str_eq(list[i].name, name))
			return &list[i];
	list[*count] = (struct alter_user){.name = name};
	return &list[(*count)++];
}

static void alter_user_fail(struct alter_user *user, tl_err error, const char *message)
{
	if (user->error == TL_OK) {
		user->error = error;
		user->message = message;
	}
}

struct alter_state {
	struct alter_user *list;
	int32_t count;
};

struct alter_wait {
	struct tl_request *req;
	char *upserts; /* the file's text form: salted credentials only */
	char *deletes; /* "<user> <mechanism>" lines */
};

static void alter_respond(struct tl_request *req);

static void alter_wait_free(struct alter_wait *wait)
{
	if (wait->upserts)
		tl_scram_wipe(wait->upserts, strlen(wait->upserts));
	free(wait->upserts);
	free(wait->deletes);
	free(wait);
}

static void alter_fail_passed(struct tl_request *req, tl_err err, const char *message)
{
	const struct alter_state *state = req->state_data;
	for (int32_t i = 0; i < state->count; i++)
		alter_user_fail(&state->list[i], err, message);
}

static void alter_cluster_done(void *ctx, tl_err err, const char *message)
{
	struct alter_wait *wait = ctx;
	struct tl_request *req = wait->req;
	struct tl_broker *broker = req->conn->broker;
	if (err == TL_OK) {
		/* Read your writes: this broker has the change before its view brings it. */
		struct tl_sasl_users ups = {0};
		int32_t bad_line = 0;
		if (tl_sasl_users_parse(&ups, wait->upserts, &bad_line) != TL_OK ||
		    tl_sasl_users_merge(&broker->sasl_users, &ups, true) < 0 ||
		    !tl_sasl_users_remove_lines(&broker->sasl_users, wait->deletes))
			tl_warn("sasl: cannot apply altered credentials before the view");
		tl_sasl_users_deinit(&ups);
	} else {
		tl_warn("sasl: credentials not stored in the metadata store err=%s detail=\"%s\"",
			tl_err_name(err), message);
		alter_fail_passed(req, err == TL_ERR_NOMEM ? TL_ERR_UNKNOWN_SERVER_ERROR : err,
				  "The metadata store did not take the change; %s unchanged");
	}
	alter_wait_free(wait);
	if (tl_request_wait_end(req))
		alter_respond(req);
}

/* Cluster mode: the alterations of the users that passed go to the metadata thread,
 * merged into the store's key by compare-and-swap (cluster.c); the response waits. */
static void alter_post_cluster(struct tl_request *req,
			       const struct tl_alter_user_scram_credentials_request *msg,
			       struct alter_user *list, int32_t count)
{
	int32_t deletions = TL_MAX(msg->deletions_count, 0);
	int32_t upsertions = TL_MAX(msg->upsertions_count, 0);
	struct tl_sasl_users ups = {0};
	char *deletes = NULL;
	size_t deletes_len = 0;
	FILE *out = open_memstream(&deletes, &deletes_len);
	bool any = false, ok = out != NULL;
	for (int32_t i = 0; ok && i < deletions + upsertions; i++) {
		bool is_delete = i < deletions;
		struct tl_str name =
			is_delete ? msg->deletions[i].name : msg->upsertions[i - deletions].name;
		struct alter_user *user = alter_user_of(list, &count, name);
		if (user->error != TL_OK)
			continue;
		any = true;
		if (is_delete) {
			fprintf(out, "%.*s %s\n", name.len, name.ptr,
				tl_scram_mechanism_name(
					(enum tl_scram_mechanism)msg->deletions[i].mechanism));
			continue;
		}
		const struct tl_alter_user_scram_credentials_request_scram_credential_upsertion
			*up = &msg->upsertions[i - deletions];
		ok = store_upsert(&ups, name.ptr, (size_t)name.len,
				  (enum tl_scram_mechanism)up->mechanism, up->iterations,
				  up->salt.ptr, (size_t)up->salt.len,
				  up->salted_password.ptr) == TL_OK;
	}
	if (out && fclose(out) != 0)
		ok = false;
	if (!any) {
		tl_sasl_users_deinit(&ups);
		free(deletes);
		return;
	}
	struct alter_wait *wait = ok ? calloc(1, sizeof(*wait)) : NULL;
	tl_err err = TL_ERR_NOMEM;
	if (wait) {
		wait->req = req;
		wait->upserts = tl_sasl_users_format(&ups);
		wait->deletes = deletes;
		deletes = NULL;
		if (wait->upserts && wait->deletes) {
			req->waits++;
			err = tl_cluster_change_scram(req->conn->broker, wait->upserts,
						      wait->deletes, true, alter_cluster_done,
						      wait);
			if (err != TL_OK)
				req->waits--;
		}
		if (err != TL_OK)
			alter_wait_free(wait);
	}
	tl_sasl_users_deinit(&ups);
	free(deletes);
	if (err != TL_OK)
		alter_fail_passed(
			req, err == TL_ERR_NOMEM ? TL_ERR_UNKNOWN_SERVER_ERROR : err,
			"The change could not be sent to the metadata store; %s unchanged");
}

static void alter_respond(struct tl_request *req)
{
	const struct alter_state *state = req->state_data;
	struct alter_user *list = state->list;
	int32_t count = state->count;
	struct tl_alter_user_scram_credentials_response resp;
	tl_alter_user_scram_credentials_response_defaults(&resp);
	resp.results = tl_arena_array(&req->arena, (size_t)TL_MAX(count, 1), sizeof(*resp.results));
	if (!resp.results) {
		tl_conn_close(req->conn, "out of memory"); /* frees req */
		return;
	}
	resp.results_count = count;
	for (int32_t i = 0; i < count; i++) {
		tl_alter_user_scram_credentials_response_alter_user_scram_credentials_result_defaults(
			&resp.results[i]);
		resp.results[i].user = list[i].name;
		resp.results[i].error_code = (int16_t)list[i].error;
		char name_c[TL_SASL_USER_MAX + 1];
		snprintf(name_c, sizeof(name_c), "%.*s",
			 TL_MIN(TL_MAX(list[i].name.len, 0), TL_SASL_USER_MAX),
			 list[i].name.ptr ? list[i].name.ptr : "");
		if (list[i].error != TL_OK)
			resp.results[i].error_message =
				arena_text(&req->arena, list[i].message, name_c);
		else
			tl_info("sasl: SCRAM credentials altered user=%s principal=%s peer=%s",
				name_c, req->conn->principal, req->conn->peer);
	}
	tl_response_begin(req);
	tl_alter_user_scram_credentials_response_encode(&req->response, req->header.api_version,
							&resp);
	tl_response_end(req);
}

void tl_handle_alter_user_scram_credentials(struct tl_request *req, struct tl_cursor *body)
{
	struct tl_broker *broker = req->conn->broker;
	struct tl_alter_user_scram_credentials_request msg;
	if (tl_alter_user_scram_credentials_request_decode(body, req->header.api_version,
							   &req->arena, &msg) != TL_OK) {
		/* Bytes only (salted passwords): the first bytes shown are no secret. */
		tl_request_reject(req, "bad AlterUserScramCredentials body");
		return;
	}
	int32_t deletions = TL_MAX(msg.deletions_count, 0);
	int32_t upsertions = TL_MAX(msg.upsertions_count, 0);
	struct alter_user *list =
		tl_arena_array(&req->arena, (size_t)(deletions + upsertions + 1), sizeof(*list));
	/* (user, mechanism) pairs seen, to refuse one altered twice. */
	uint8_t *seen = tl_arena_array(&req->arena, (size_t)(deletions + upsertions + 1) * 3, 1);
	if (!list || !seen) {
		tl_conn_close(req->conn, "out of memory"); /* frees req */
		return;
	}
	int32_t count = 0;
	/* Kafka: Alter on the Cluster, else every user gets CLUSTER_AUTHORIZATION_FAILED. */
	bool allowed = tl_authorize_cluster(req, TL_ACL_OP_ALTER);
	/* Pass 1: check everything; a user with any bad alteration gets none applied. */
	for (int32_t i = 0; i < deletions + upsertions; i++) {
		bool is_delete = i < deletions;
		struct tl_str name =
			is_delete ? msg.deletions[i].name : msg.upsertions[i - deletions].name;
		int8_t mech = is_delete ? msg.deletions[i].mechanism
					: msg.upsertions[i - deletions].mechanism;
		struct alter_user *user = alter_user_of(list, &count, name);
		int32_t index = (int32_t)(user - list);
		if (!allowed) {
			alter_user_fail(user, TL_ERR_CLUSTER_AUTHORIZATION_FAILED,
					"Not authorized to alter the credentials of user %s");
			continue;
		}
		if (name.len <= 0) {
			alter_user_fail(user, TL_ERR_UNACCEPTABLE_CREDENTIAL,
					"Username must not be empty%s");
			continue;
		}
		if (!user_name_valid(name.ptr, (size_t)name.len)) {
			alter_user_fail(user, TL_ERR_UNACCEPTABLE_CREDENTIAL,
					"Username %s is too long, starts with '#' or holds white "
					"space or control characters");
			continue;
		}
		if (mech != TL_SCRAM_SHA_256 && mech != TL_SCRAM_SHA_512) {
			alter_user_fail(user, TL_ERR_UNSUPPORTED_SASL_MECHANISM,
					"Unknown SCRAM mechanism for user %s");
			continue;
		}
		/* seen[index * 3 + mech]: this user and mechanism already altered */
		if (seen[index * 3 + mech]) {
			alter_user_fail(user, TL_ERR_DUPLICATE_RESOURCE,
					"A user credential cannot be altered twice in the same "
					"request: %s");
			continue;
		}
		seen[index * 3 + mech] = 1;
		struct tl_sasl_user *entry =
			user_find(&broker->sasl_users, name.ptr, (size_t)name.len);
		if (is_delete) {
			if (!entry || !user_credential(entry, (enum tl_scram_mechanism)mech))
				alter_user_fail(user, TL_ERR_RESOURCE_NOT_FOUND,
						"Attempt to delete a user credential that does not "
						"exist: %s");
			continue;
		}
		const struct tl_alter_user_scram_credentials_request_scram_credential_upsertion
			*up = &msg.upsertions[i - deletions];
		if (up->iterations < TL_SCRAM_ITERATIONS_MIN)
			alter_user_fail(user, TL_ERR_UNACCEPTABLE_CREDENTIAL,
					"Too few iterations for user %s (at least 4096)");
		else if (up->iterations > TL_SCRAM_ITERATIONS_MAX)
			alter_user_fail(user, TL_ERR_UNACCEPTABLE_CREDENTIAL,
					"Too many iterations for user %s (at most 16384)");
		else if (up->salt.len <= 0 || up->salt.len > TL_SCRAM_SALT_MAX)
			alter_user_fail(user, TL_ERR_UNACCEPTABLE_CREDENTIAL,
					"The salt for user %s must be 1 to 64 bytes");
		else if (up->salted_password.len !=
			 (int32_t)tl_scram_key_len((enum tl_scram_mechanism)mech))
			alter_user_fail(user, TL_ERR_UNACCEPTABLE_CREDENTIAL,
					"The salted password for user %s has the wrong length");
	}
	struct alter_state *state = tl_arena_alloc(&req->arena, sizeof(*state));
	if (!state) {
		tl_conn_close(req->conn, "out of memory"); /* frees req */
		return;
	}
	*state = (struct alter_state){.list = list, .count = count};
	req->state_data = state;
	if (broker->cluster) {
		alter_post_cluster(req, &msg, list, count);
		if (req->waits == 0)
			alter_respond(req);
		return;
	}
	/* Pass 2: apply the users that passed, then store once. */
	bool changed = false;
	for (int32_t i = 0; i < deletions + upsertions; i++) {
		bool is_delete = i < deletions;
		struct tl_str name =
			is_delete ? msg.deletions[i].name : msg.upsertions[i - deletions].name;
		struct alter_user *user = alter_user_of(list, &count, name);
		if (user->error != TL_OK)
			continue;
		changed = true;
		if (is_delete) {
			struct tl_sasl_user *entry =
				user_find(&broker->sasl_users, name.ptr, (size_t)name.len);
			TL_ASSERT(entry);
			int m = msg.deletions[i].mechanism - 1;
			tl_scram_wipe(&entry->cred[m], sizeof(entry->cred[m]));
			entry->has[m] = false;
			user_remove_if_empty(&broker->sasl_users, entry);
			continue;
		}
		const struct tl_alter_user_scram_credentials_request_scram_credential_upsertion
			*up = &msg.upsertions[i - deletions];
		if (store_upsert(&broker->sasl_users, name.ptr, (size_t)name.len,
				 (enum tl_scram_mechanism)up->mechanism, up->iterations,
				 up->salt.ptr, (size_t)up->salt.len,
				 up->salted_password.ptr) != TL_OK)
			alter_user_fail(user, TL_ERR_KAFKA_STORAGE_ERROR,
					"Out of memory storing the credential of %s");
	}
	if (changed && store_save(broker) != TL_OK) {
		/* Back to what the file holds, so memory never runs ahead of the disk. */
		tl_sasl_deinit(broker);
		if (tl_sasl_load(broker) != TL_OK)
			tl_crit("sasl: credentials unreadable after a failed write");
		for (int32_t i = 0; i < count; i++)
			alter_user_fail(&list[i], TL_ERR_KAFKA_STORAGE_ERROR,
					"The credential store could not be written; %s unchanged");
	}
	alter_respond(req);
}
