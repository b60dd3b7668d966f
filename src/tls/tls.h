/*
 * tls.h: TLS with OpenSSL on memory BIOs, so that the socket stays libuv's:
 * the connection hands tls the bytes it read and gets plaintext back; it
 * hands tls plaintext to send and gets the bytes to write. TLS 1.2 and later
 * only. Both sides: chorusd's listener (tls_server: a certificate and key,
 * read at start and again on tls_reload, SIGHUP: new connections use the new
 * pair, open ones keep theirs) and the chorus client (tls_client: how it
 * checks a replica's certificate). Also both ends of chorusd's catch-up links
 * (src/link): TLS 1.3 on a key both hold, no certificates.
 */
#ifndef CHORUS_TLS_H
#define CHORUS_TLS_H

#include <stddef.h>

#include "common/buf.h"

struct tls_server;
struct tls_client;
struct tls_conn;

/* Loads cert (PEM, chain allowed) and key. Returns NULL with the reason
 * logged. */
struct tls_server *tls_server_new(const char *cert, const char *key);
/* Loads the pair cert and key (their files may have changed, or their
 * names); on failure keeps the one in use (logged). Returns 0 or -1. */
int tls_reload(struct tls_server *t, const char *cert, const char *key);
void tls_server_free(struct tls_server *t);
/* The SHA-256 fingerprint of the certificate in use, "AB:CD:..." (96
 * chars and a NUL at most). */
void tls_fingerprint(const struct tls_server *t, char out[100]);
/* The same of the (first) certificate in the PEM file path. Returns 0 or -1. */
int tls_file_fingerprint(const char *path, char out[100]);

/*
 * How a client checks replicas' certificates: against the CA certificates in
 * ca_file if given; else the certificate whose SHA-256 fingerprint is
 * fingerprint ("AB:CD:..." or hex, any case) if given; else the system's CAs
 * with the host name checked; with insecure, not at all. NULL (printed to
 * stderr) if ca_file cannot be read or fingerprint is not one.
 */
struct tls_client *tls_client_new(const char *ca_file, const char *fingerprint, int insecure);
void tls_client_free(struct tls_client *t);

/* The two ends of a TLS 1.3 connection authenticated by a key both hold
 * (an external PSK with (EC)DHE: forward secret; a peer without the key
 * fails the handshake). Free them with tls_server_free / tls_client_free;
 * tls_reload does not apply. */
#define TLS_PSK_LEN 32
struct tls_server *tls_psk_server_new(const unsigned char key[TLS_PSK_LEN]);
struct tls_client *tls_psk_client_new(const unsigned char key[TLS_PSK_LEN]);

/* A new server-side connection (handshake pending). */
struct tls_conn *tls_conn_new(struct tls_server *t);
/* A new client-side connection to host; its first bytes (ClientHello) come
 * from tls_read(c, NULL, 0, ...). */
struct tls_conn *tls_conn_connect(struct tls_client *t, const char *host);
/* After a failed tls_read on a client connection: why, in words (an
 * untrusted certificate, a fingerprint that differs, ...), into why. */
void tls_failure(const struct tls_conn *c, char *why, size_t len);
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
