/*
 * tls.c: see tls.h.
 */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct tls_server {
	SSL_CTX *ctx;
	char *cert, *key;
	unsigned char psk[TLS_PSK_LEN]; /* tls_psk_server_new's key */
};

struct tls_client {
	SSL_CTX *ctx;
	unsigned char pin[32];  /* the fingerprint to expect, if pinned */
	int pinned, insecure;
	unsigned char psk[TLS_PSK_LEN]; /* tls_psk_client_new's key */
};

#define PSK_IDENTITY "chorus-link"


struct tls_conn {
	SSL *ssl;
	BIO *in, *out;       /* socket -> SSL, SSL -> socket (memory BIOs) */
	struct buf pending;  /* plaintext written before the handshake ended */
	const struct tls_client *client; /* the client side's checks, or NULL */
	char failure[200];   /* why the handshake failed (client side) */
};

/* Logs OpenSSL's error queue after what. */
static void log_ssl(const char *what)
{
	unsigned long e;
	char msg[256];
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, msg, sizeof msg);
		log_warn("tls: %s: %s", what, msg);
	}
}

/* A context for cert and key, or NULL (logged). */
static SSL_CTX *make_ctx(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		log_ssl("context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		log_error("tls: cannot read the certificate %s", cert);
		log_ssl("certificate");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		log_error("tls: cannot read the key %s, or it does not match the certificate", key);
		log_ssl("key");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_server *tls_server_new(const char *cert, const char *key)
{
	SSL_CTX *ctx = make_ctx(cert, key);
	if (!ctx)
		return NULL;
	struct tls_server *t = xcalloc(1, sizeof *t);
	t->ctx = ctx;
	t->cert = xstrdup(cert);
	t->key = xstrdup(key);
	return t;
}

int tls_reload(struct tls_server *t, const char *cert, const char *key)
{
	SSL_CTX *ctx = make_ctx(cert, key);
	if (!ctx) {
		log_warn("tls: reload failed; keeping the certificate in use");
		return -1;
	}
	SSL_CTX_free(t->ctx); /* open connections hold their own reference */
	t->ctx = ctx;
	free(t->cert);
	free(t->key);
	t->cert = xstrdup(cert);
	t->key = xstrdup(key);
	log_info("tls: certificate %s reloaded", t->cert);
	return 0;
}

void tls_server_free(struct tls_server *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t->cert);
	free(t->key);
	free(t);
}

/* "AB:CD:..." of the 32 bytes md into out. */
static void hex_fingerprint(const unsigned char md[32], char out[100])
{
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + 3 * i, 4, i + 1 < 32 ? "%02X:" : "%02X", md[i]);
}

void tls_fingerprint(const struct tls_server *t, char out[100])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509 *x = SSL_CTX_get0_certificate(t->ctx);
	out[0] = '\0';
	if (x && X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32)
		hex_fingerprint(md, out);
}

int tls_file_fingerprint(const char *path, char out[100])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	int ok = x && X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32;
	if (f)
		fclose(f);
	X509_free(x);
	if (ok)
		hex_fingerprint(md, out);
	return ok ? 0 : -1;
}

/* Parses a SHA-256 fingerprint (hex, colons allowed) into md. */
static int parse_fingerprint(const char *s, unsigned char md[32])
{
	size_t n = 0;
	for (const char *p = s; *p; p++) {
		if (*p == ':')
			continue;
		int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
			: *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;
		if (v < 0 || n >= 64)
			return -1;
		md[n / 2] = (unsigned char)(n % 2 ? (md[n / 2] | v) : v << 4);
		n++;
	}
	return n == 64 ? 0 : -1;
}

struct tls_client *tls_client_new(const char *ca_file, const char *fingerprint, int insecure)
{
	struct tls_client *t = xcalloc(1, sizeof *t);
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx) {
		fprintf(stderr, "chorus: cannot make a TLS context\n");
		free(t);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	t->insecure = insecure;
	if (fingerprint && parse_fingerprint(fingerprint, t->pin) < 0) {
		fprintf(stderr, "chorus: %s is not a SHA-256 fingerprint (64 hex digits, colons allowed)\n",
			fingerprint);
		tls_client_free(t);
		return NULL;
	}
	t->pinned = fingerprint != NULL;
	if (ca_file && SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
		fprintf(stderr, "chorus: cannot read CA certificates from %s\n", ca_file);
		tls_client_free(t);
		return NULL;
	}
	if (!ca_file && !t->pinned && !insecure)
		SSL_CTX_set_default_verify_paths(t->ctx);
	/* Certificate chains are checked in the handshake unless pinned or insecure. */
	SSL_CTX_set_verify(t->ctx, t->pinned || insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	return t;
}

void tls_client_free(struct tls_client *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* ---- a key both ends hold ---- */

static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk, unsigned int max)
{
	const struct tls_server *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (!identity || strcmp(identity, PSK_IDENTITY) != 0 || max < TLS_PSK_LEN)
		return 0;
	memcpy(psk, t->psk, TLS_PSK_LEN);
	return TLS_PSK_LEN;
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_identity,
				  unsigned char *psk, unsigned int max)
{
	const struct tls_client *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	(void)hint;
	if (max_identity < sizeof PSK_IDENTITY || max < TLS_PSK_LEN)
		return 0;
	memcpy(identity, PSK_IDENTITY, sizeof PSK_IDENTITY);
	memcpy(psk, t->psk, TLS_PSK_LEN);
	return TLS_PSK_LEN;
}

/* A TLS 1.3-only context for a key both ends hold (with a SHA-256 suite:
 * what these callbacks give in TLS 1.3). */
static SSL_CTX *psk_ctx(const SSL_METHOD *method, void *owner)
{
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (!ctx) {
		log_ssl("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_app_data(ctx, owner);
	return ctx;
}

struct tls_server *tls_psk_server_new(const unsigned char key[TLS_PSK_LEN])
{
	struct tls_server *t = xcalloc(1, sizeof *t);
	memcpy(t->psk, key, TLS_PSK_LEN);
	t->ctx = psk_ctx(TLS_server_method(), t);
	if (!t->ctx) {
		free(t);
		return NULL;
	}
	SSL_CTX_set_psk_server_callback(t->ctx, psk_server_cb);
	return t;
}

struct tls_client *tls_psk_client_new(const unsigned char key[TLS_PSK_LEN])
{
	struct tls_client *t = xcalloc(1, sizeof *t);
	memcpy(t->psk, key, TLS_PSK_LEN);
	t->insecure = 1; /* no certificate: the key is the check */
	t->ctx = psk_ctx(TLS_client_method(), t);
	if (!t->ctx) {
		free(t);
		return NULL;
	}
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_psk_client_callback(t->ctx, psk_client_cb);
	return t;
}

/* ---- connections ---- */

/* A connection on ctx with memory BIOs. */
static struct tls_conn *conn_make(SSL_CTX *ctx)
{
	struct tls_conn *c = xcalloc(1, sizeof *c);
	c->ssl = SSL_new(ctx);
	c->in = BIO_new(BIO_s_mem());
	c->out = BIO_new(BIO_s_mem());
	if (!c->ssl || !c->in || !c->out) {
		fprintf(stderr, "chorusd: out of memory for TLS\n");
		abort();
	}
	BIO_set_mem_eof_return(c->in, -1); /* no input yet: "retry", not EOF */
	SSL_set_bio(c->ssl, c->in, c->out);
	return c;
}

struct tls_conn *tls_conn_new(struct tls_server *t)
{
	struct tls_conn *c = conn_make(t->ctx);
	SSL_set_accept_state(c->ssl);
	return c;
}

struct tls_conn *tls_conn_connect(struct tls_client *t, const char *host)
{
	struct tls_conn *c = conn_make(t->ctx);
	c->client = t;
	SSL_set_tlsext_host_name(c->ssl, host);
	if (!t->pinned && !t->insecure)
		SSL_set1_host(c->ssl, host);
	SSL_set_connect_state(c->ssl);
	return c;
}

void tls_failure(const struct tls_conn *c, char *why, size_t len)
{
	snprintf(why, len, "%s", c->failure[0] ? c->failure : "TLS handshake or session failed");
}

/* Client side, when the handshake has just ended: checks a pinned
 * fingerprint. Returns 0 or -1 (failure set). */
static int check_pin(struct tls_conn *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char got[100];
	if (!c->client || !c->client->pinned)
		return 0;
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	int ok = x && X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32 && memcmp(md, c->client->pin, 32) == 0;
	if (!ok && x && n == 32) {
		hex_fingerprint(md, got);
		snprintf(c->failure, sizeof c->failure, "the replica's certificate has fingerprint %s, not the one given",
			 got);
	} else if (!ok) {
		snprintf(c->failure, sizeof c->failure, "the replica sent no certificate");
	}
	X509_free(x);
	return ok ? 0 : -1;
}

/* Client side, after a failed handshake: why, from the verification. */
static void note_failure(struct tls_conn *c)
{
	long v = SSL_get_verify_result(c->ssl);
	if (!c->client || c->failure[0])
		return;
	if (v != X509_V_OK)
		snprintf(c->failure, sizeof c->failure,
			 "the replica's certificate is not trusted (%s): give --tls-ca FILE or "
			 "--tls-fingerprint SHA256, or --insecure to skip the check",
			 X509_verify_cert_error_string(v));
	else
		snprintf(c->failure, sizeof c->failure, "the TLS handshake failed (is it a TLS port?)");
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl); /* frees both BIOs */
	buf_free(&c->pending);
	free(c);
}

/* Moves what SSL wrote to its output BIO into wire. */
static void drain(struct tls_conn *c, struct buf *wire)
{
	char chunk[16384];
	int n;
	while ((n = BIO_read(c->out, chunk, sizeof chunk)) > 0)
		buf_append(wire, chunk, (size_t)n);
}

int tls_ready(const struct tls_conn *c)
{
	return SSL_is_init_finished(c->ssl);
}

int tls_write(struct tls_conn *c, const char *data, size_t len, struct buf *wire)
{
	if (!tls_ready(c)) {
		buf_append(&c->pending, data, len);
		return 0;
	}
	while (len) {
		int n = SSL_write(c->ssl, data, len > 1 << 30 ? 1 << 30 : (int)len);
		if (n <= 0) {
			log_ssl("write");
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	drain(c, wire);
	return 0;
}

int tls_read(struct tls_conn *c, const char *data, size_t len, struct buf *plain, struct buf *wire)
{
	char chunk[16384];
	int was_ready = tls_ready(c), rc = 0;
	if (len && BIO_write(c->in, data, (int)len) != (int)len)
		return -1;
	int hs = tls_ready(c) ? 1 : SSL_do_handshake(c->ssl);
	if (hs != 1) {
		int err = SSL_get_error(c->ssl, hs);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			if (!c->client)
				log_ssl("handshake");
			note_failure(c);
			ERR_clear_error();
			drain(c, wire);
			return -1;
		}
	}
	for (;;) {
		int n = SSL_read(c->ssl, chunk, sizeof chunk);
		if (n > 0) {
			buf_append(plain, chunk, (size_t)n);
			continue;
		}
		int err = SSL_get_error(c->ssl, n);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			if (err != SSL_ERROR_ZERO_RETURN && !c->client)
				log_ssl("read");
			if (!was_ready && !tls_ready(c))
				note_failure(c);
			ERR_clear_error();
			rc = -1;
		}
		break;
	}
	drain(c, wire);
	if (rc == 0 && !was_ready && tls_ready(c) && check_pin(c) < 0)
		return -1;
	if (!was_ready && tls_ready(c) && c->pending.len) {
		struct buf held = c->pending;
		memset(&c->pending, 0, sizeof c->pending);
		if (tls_write(c, held.data, held.len, wire) < 0)
			rc = -1;
		buf_free(&held);
	}
	return rc;
}

void tls_close(struct tls_conn *c, struct buf *wire)
{
	if (tls_ready(c))
		SSL_shutdown(c->ssl);
	drain(c, wire);
}
