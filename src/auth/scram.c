/*
 * scram.c: SCRAM-SHA-256 verifiers and the server side of the exchange.
 */
#include "scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define KEY_LEN 32 /* SHA-256 */
#define SALT_MAX 64
#define ITERATIONS_MAX 1000000

char *scram_b64(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

long scram_unb64(const char *s, unsigned char *out, size_t cap)
{
	size_t len = strlen(s);
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap + 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 c == '+' || c == '/' || (c == '=' && i >= len - 2 && (i == len - 1 || s[len - 1] == '='));
		if (!ok)
			return -1;
	}
	unsigned char *tmp = xmalloc(len / 4 * 3 + 1);
	int n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
	long got = n < 0 ? -1 : n - (s[len - 1] == '=') - (s[len - 2] == '=');
	if (got >= 0 && (size_t)got <= cap)
		memcpy(out, tmp, (size_t)got);
	else
		got = -1;
	free(tmp);
	return got;
}

static void hmac(const unsigned char *key, size_t key_len, const void *data, size_t len,
		 unsigned char out[KEY_LEN])
{
	unsigned int n = KEY_LEN;
	HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

/* StoredKey and ServerKey of password. */
static void derive(const char *password, const unsigned char *salt, size_t salt_len, unsigned iterations,
		   unsigned char stored[KEY_LEN], unsigned char server[KEY_LEN])
{
	unsigned char salted[KEY_LEN], client[KEY_LEN];
	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iterations,
			  EVP_sha256(), KEY_LEN, salted);
	hmac(salted, KEY_LEN, "Client Key", 10, client);
	EVP_Digest(client, KEY_LEN, stored, NULL, EVP_sha256(), NULL);
	hmac(salted, KEY_LEN, "Server Key", 10, server);
	OPENSSL_cleanse(salted, sizeof salted);
	OPENSSL_cleanse(client, sizeof client);
}

char *scram_verifier_make(const char *password, const unsigned char *salt, size_t salt_len,
			  unsigned iterations)
{
	unsigned char stored[KEY_LEN], server[KEY_LEN];
	derive(password, salt, salt_len, iterations, stored, server);
	char *s = scram_b64(salt, salt_len), *k1 = scram_b64(stored, KEY_LEN), *k2 = scram_b64(server, KEY_LEN);
	char *v = xasprintf("SCRAM-SHA-256$%u:%s$%s:%s", iterations, s, k1, k2);
	free(s);
	free(k1);
	free(k2);
	return v;
}

char *scram_verifier_new(const char *password)
{
	unsigned char salt[SCRAM_SALT_LEN];
	if (RAND_bytes(salt, sizeof salt) != 1) {
		fprintf(stderr, "chorus: no random bytes for a salt\n");
		abort();
	}
	return scram_verifier_make(password, salt, sizeof salt, SCRAM_ITERATIONS);
}

/* The parts of a verifier. */
struct verifier {
	unsigned iterations;
	unsigned char salt[SALT_MAX];
	size_t salt_len;
	char salt_b64[100];
	unsigned char stored[KEY_LEN], server[KEY_LEN];
};

static int verifier_parse(const char *v, struct verifier *out)
{
	char salt[100], k1[64], k2[64];
	unsigned iter;
	int n = 0;
	if (sscanf(v, "SCRAM-SHA-256$%u:%99[A-Za-z0-9+/=]$%63[A-Za-z0-9+/=]:%63[A-Za-z0-9+/=]%n", &iter, salt,
		   k1, k2, &n) != 4 || v[n] != '\0' || iter == 0 || iter > ITERATIONS_MAX)
		return SCRAM_EMALFORMED;
	long sl = scram_unb64(salt, out->salt, sizeof out->salt);
	if (sl <= 0 || scram_unb64(k1, out->stored, KEY_LEN) != KEY_LEN ||
	    scram_unb64(k2, out->server, KEY_LEN) != KEY_LEN)
		return SCRAM_EMALFORMED;
	out->iterations = iter;
	out->salt_len = (size_t)sl;
	snprintf(out->salt_b64, sizeof out->salt_b64, "%s", salt);
	return 0;
}

int scram_check_password(const char *verifier, const char *password)
{
	struct verifier v;
	unsigned char stored[KEY_LEN], server[KEY_LEN];
	if (verifier_parse(verifier, &v) < 0)
		return SCRAM_EMALFORMED;
	derive(password, v.salt, v.salt_len, v.iterations, stored, server);
	return CRYPTO_memcmp(stored, v.stored, KEY_LEN) == 0;
}

void scram_nonce(char out[SCRAM_NONCE_LEN + 1])
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char r[SCRAM_NONCE_LEN];
	if (RAND_bytes(r, sizeof r) != 1) {
		fprintf(stderr, "chorus: no random bytes for a nonce\n");
		abort();
	}
	for (int i = 0; i < SCRAM_NONCE_LEN; i++)
		out[i] = chars[r[i] & 63];
	out[SCRAM_NONCE_LEN] = '\0';
}

/* The value of attribute `name` ("n=...") at *p, up to the next ',' or the
 * end; advances *p past it and its comma. NULL if *p does not start with it. */
static char *attr(const char **p, char name)
{
	if ((*p)[0] != name || (*p)[1] != '=')
		return NULL;
	const char *v = *p + 2;
	size_t len = strcspn(v, ",");
	*p = v + len + (v[len] == ',');
	return xstrndup(v, len);
}

/* Undoes SCRAM's name escaping (=2C is ',', =3D is '='). NULL if bad. */
static char *unescape_name(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;
	for (const char *p = s; *p; p++) {
		if (*p != '=') {
			*o++ = *p;
		} else if (strncmp(p, "=2C", 3) == 0 || strncmp(p, "=3D", 3) == 0) {
			*o++ = p[2] == 'C' ? ',' : '=';
			p += 2;
		} else {
			free(out);
			return NULL;
		}
	}
	*o = '\0';
	return out;
}

int scram_server_read_first(struct scram_server *s, const char *msg)
{
	/* gs2-header: ("n" / "y") "," [ "a=" authzid ] "," */
	if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
		return msg[0] == 'p' ? SCRAM_EUNSUPPORTED : SCRAM_EMALFORMED;
	const char *p = msg + 2;
	char *authzid = NULL;
	if (*p == 'a' && !(authzid = attr(&p, 'a')))
		return SCRAM_EMALFORMED;
	if (authzid && p[-1] != ',') {
		free(authzid);
		return SCRAM_EMALFORMED;
	}
	if (!authzid && *p++ != ',')
		return SCRAM_EMALFORMED;
	const char *bare = p;
	char *name = attr(&p, 'n'), *nonce = name ? attr(&p, 'r') : NULL;
	char *user = name ? unescape_name(name) : NULL;
	int rc = 0;
	if (!user || !nonce || !*user || !*nonce || strchr(nonce, ',') || (*p && p[-1] != ','))
		rc = SCRAM_EMALFORMED;
	else if (authzid && strcmp(authzid, user) != 0)
		rc = SCRAM_EUNSUPPORTED;
	if (rc == 0) {
		scram_server_clear(s);
		s->user = user;
		s->gs2 = xstrndup(msg, (size_t)(bare - msg));
		s->client_first_bare = xstrdup(bare);
		s->nonce = nonce;
		user = nonce = NULL;
	}
	free(authzid);
	free(name);
	free(user);
	free(nonce);
	return rc;
}

int scram_server_first(struct scram_server *s, const char *verifier, const char *server_nonce,
		       const char **out)
{
	struct verifier v;
	if (!s->nonce || verifier_parse(verifier, &v) < 0)
		return SCRAM_EMALFORMED;
	char *nonce = xasprintf("%s%s", s->nonce, server_nonce);
	free(s->nonce);
	s->nonce = nonce;
	free(s->server_first);
	s->server_first = xasprintf("r=%s,s=%s,i=%u", s->nonce, v.salt_b64, v.iterations);
	memcpy(s->stored_key, v.stored, KEY_LEN);
	memcpy(s->server_key, v.server, KEY_LEN);
	*out = s->server_first;
	return 0;
}

int scram_server_final(struct scram_server *s, const char *msg, char **out)
{
	*out = NULL;
	if (!s->server_first)
		return SCRAM_EMALFORMED;
	const char *p = msg;
	char *binding = attr(&p, 'c'), *nonce = binding ? attr(&p, 'r') : NULL;
	const char *proof_at = strstr(msg, ",p=");
	int rc = 0;
	unsigned char proof[KEY_LEN], gs2[64];
	long gs2_len = binding ? scram_unb64(binding, gs2, sizeof gs2) : -1;
	if (!nonce || !proof_at || strchr(proof_at + 3, ',') ||
	    scram_unb64(proof_at + 3, proof, sizeof proof) != KEY_LEN)
		rc = SCRAM_EMALFORMED;
	else if (gs2_len != (long)strlen(s->gs2) || memcmp(gs2, s->gs2, (size_t)gs2_len) != 0 ||
		 strcmp(nonce, s->nonce) != 0)
		rc = SCRAM_EPROOF;
	if (rc == 0) {
		/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
		char *auth = xasprintf("%s,%s,%.*s", s->client_first_bare, s->server_first,
				       (int)(proof_at - msg), msg);
		unsigned char sig[KEY_LEN], key[KEY_LEN], stored[KEY_LEN], server_sig[KEY_LEN];
		hmac(s->stored_key, KEY_LEN, auth, strlen(auth), sig);
		for (int i = 0; i < KEY_LEN; i++)
			key[i] = proof[i] ^ sig[i];
		EVP_Digest(key, KEY_LEN, stored, NULL, EVP_sha256(), NULL);
		if (CRYPTO_memcmp(stored, s->stored_key, KEY_LEN) != 0) {
			rc = SCRAM_EPROOF;
		} else {
			hmac(s->server_key, KEY_LEN, auth, strlen(auth), server_sig);
			char *b = scram_b64(server_sig, KEY_LEN);
			*out = xasprintf("v=%s", b);
			free(b);
		}
		free(auth);
	}
	free(binding);
	free(nonce);
	/* One try per exchange: a second final (a replay) finds no server-first. */
	free(s->server_first);
	s->server_first = NULL;
	return rc;
}

/* ---- client side ---- */

char *scram_client_first(struct scram_client *c, const char *user, const char *password,
			 const char *nonce)
{
	scram_client_clear(c);
	c->password = xstrdup(password);
	c->first_bare = xasprintf("n=%s,r=%s", user, nonce);
	return xasprintf("n,,%s", c->first_bare);
}

char *scram_client_final(struct scram_client *c, const char *server_first)
{
	const char *p = server_first, *mine = strstr(c->first_bare, ",r=") + 3;
	char *nonce = attr(&p, 'r'), *salt_b64 = nonce ? attr(&p, 's') : NULL, *iter = salt_b64 ? attr(&p, 'i') : NULL;
	unsigned char salt[SALT_MAX], salted[KEY_LEN], client_key[KEY_LEN], stored[KEY_LEN], sig[KEY_LEN];
	long salt_len = salt_b64 ? scram_unb64(salt_b64, salt, sizeof salt) : -1;
	long iterations = iter ? atol(iter) : 0;
	char *out = NULL;
	if (nonce && strncmp(nonce, mine, strlen(mine)) == 0 && strlen(nonce) > strlen(mine) && salt_len > 0 &&
	    iterations > 0 && iterations <= ITERATIONS_MAX) {
		PKCS5_PBKDF2_HMAC(c->password, (int)strlen(c->password), salt, (int)salt_len, (int)iterations,
				  EVP_sha256(), KEY_LEN, salted);
		hmac(salted, KEY_LEN, "Client Key", 10, client_key);
		EVP_Digest(client_key, KEY_LEN, stored, NULL, EVP_sha256(), NULL);
		hmac(salted, KEY_LEN, "Server Key", 10, c->server_key);
		char *without_proof = xasprintf("c=biws,r=%s", nonce);
		free(c->auth);
		c->auth = xasprintf("%s,%s,%s", c->first_bare, server_first, without_proof);
		hmac(stored, KEY_LEN, c->auth, strlen(c->auth), sig);
		for (int i = 0; i < KEY_LEN; i++)
			client_key[i] ^= sig[i];
		char *proof = scram_b64(client_key, KEY_LEN);
		out = xasprintf("%s,p=%s", without_proof, proof);
		free(proof);
		free(without_proof);
		OPENSSL_cleanse(salted, sizeof salted);
		OPENSSL_cleanse(client_key, sizeof client_key);
	}
	free(nonce);
	free(salt_b64);
	free(iter);
	return out;
}

int scram_client_verify(const struct scram_client *c, const char *server_final)
{
	unsigned char want[KEY_LEN], got[KEY_LEN];
	if (!c->auth || strncmp(server_final, "v=", 2) != 0 || scram_unb64(server_final + 2, got, sizeof got) != KEY_LEN)
		return 0;
	hmac(c->server_key, KEY_LEN, c->auth, strlen(c->auth), want);
	return CRYPTO_memcmp(want, got, KEY_LEN) == 0;
}

void scram_client_clear(struct scram_client *c)
{
	if (c->password)
		OPENSSL_cleanse(c->password, strlen(c->password));
	free(c->password);
	free(c->first_bare);
	free(c->auth);
	OPENSSL_cleanse(c, sizeof *c);
}

void scram_server_clear(struct scram_server *s)
{
	free(s->user);
	free(s->gs2);
	free(s->client_first_bare);
	free(s->server_first);
	free(s->nonce);
	OPENSSL_cleanse(s, sizeof *s);
}
