/*
 * tls.h: TLS for client connections, with OpenSSL on memory BIOs so that the
 * socket stays libuv's: the session hands tls the bytes it read and gets
 * plaintext back; it hands tls plaintext to send and gets the bytes to write.
 * TLS 1.2 and later only. The certificate and key are read at start and again
 * on tls_reload (SIGHUP): new connections use the new pair, open ones keep
 * theirs.
 */
#ifndef CHORUS_TLS_H
#define CHORUS_TLS_H

#include <stddef.h>

#include "common/buf.h"

struct tls_server;
struct tls_conn;

/* Loads cert (PEM, chain allowed) and key. Returns NULL with the reason
 * logged. */
struct tls_server *tls_server_new(const char *cert, const char *key);
/* Loads the pair again; on failure keeps the old one (logged). Returns 0 or
 * -1. */
int tls_reload(struct tls_server *t);
void tls_server_free(struct tls_server *t);
/* The SHA-256 fingerprint of the certificate in use, "AB:CD:..." (96
 * chars and a NUL at most). */
void tls_fingerprint(const struct tls_server *t, char out[100]);

/* A new server-side connection (handshake pending). */
struct tls_conn *tls_conn_new(struct tls_server *t);
void tls_conn_free(struct tls_conn *c);
/*
 * Takes len bytes read from the socket: appends the plaintext they carry to
 * plain and the bytes to send back (handshake, alerts) to wire. Returns 0, or
 * -1 if the peer broke the protocol or closed the TLS session (the connection
 * should close; wire may still hold an alert to send).
 */
int tls_read(struct tls_conn *c, const char *data, size_t len, struct buf *plain, struct buf *wire);
/* Encrypts len bytes of plaintext into wire. Returns 0 or -1. */
int tls_write(struct tls_conn *c, const char *data, size_t len, struct buf *wire);
/* Appends a close_notify alert to wire. */
void tls_close(struct tls_conn *c, struct buf *wire);
/* 1 once the handshake is done. */
int tls_ready(const struct tls_conn *c);

#endif
