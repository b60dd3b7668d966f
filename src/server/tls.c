/*
 * tls.c: see tls.h.
 */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct tls_server {
	SSL_CTX *ctx;
	char *cert, *key;
};

struct tls_conn {
	SSL *ssl;
	BIO *in, *out;       /* socket -> SSL, SSL -> socket (memory BIOs) */
	struct buf pending;  /* plaintext written before the handshake ended */
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

int tls_reload(struct tls_server *t)
{
	SSL_CTX *ctx = make_ctx(t->cert, t->key);
	if (!ctx) {
		log_warn("tls: reload failed; keeping the certificate in use");
		return -1;
	}
	SSL_CTX_free(t->ctx); /* open connections hold their own reference */
	t->ctx = ctx;
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

void tls_fingerprint(const struct tls_server *t, char out[100])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509 *x = SSL_CTX_get0_certificate(t->ctx);
	out[0] = '\0';
	if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
}

struct tls_conn *tls_conn_new(struct tls_server *t)
{
	struct tls_conn *c = xcalloc(1, sizeof *c);
	c->ssl = SSL_new(t->ctx);
	c->in = BIO_new(BIO_s_mem());
	c->out = BIO_new(BIO_s_mem());
	if (!c->ssl || !c->in || !c->out) {
		fprintf(stderr, "chorusd: out of memory for TLS\n");
		abort();
	}
	BIO_set_mem_eof_return(c->in, -1); /* no input yet: "retry", not EOF */
	SSL_set_bio(c->ssl, c->in, c->out);
	SSL_set_accept_state(c->ssl);
	return c;
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
	for (;;) {
		int n = SSL_read(c->ssl, chunk, sizeof chunk);
		if (n > 0) {
			buf_append(plain, chunk, (size_t)n);
			continue;
		}
		int err = SSL_get_error(c->ssl, n);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			if (err != SSL_ERROR_ZERO_RETURN)
				log_ssl("read");
			ERR_clear_error();
			rc = -1;
		}
		break;
	}
	drain(c, wire);
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
