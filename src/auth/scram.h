/*
 * scram.h: SCRAM-SHA-256 credentials and the server side of its exchange
 * (RFC 5802, RFC 7677), on OpenSSL's PBKDF2, HMAC and SHA-256.
 *
 * A verifier is what an account stores instead of a password:
 *   "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
 * (base64 fields, the layout PostgreSQL uses). It proves a password without
 * holding it or anything that gives it back: StoredKey = SHA-256(ClientKey),
 * ServerKey = HMAC(SaltedPassword, "Server Key").
 *
 * Names are account names (nick characters only), so no SASLprep is needed
 * for them; passwords are taken as the bytes given (UTF-8).
 *
 * Errors are negative codes (SCRAM_E*), as everywhere in chorus.
 */
#ifndef CHORUS_SCRAM_H
#define CHORUS_SCRAM_H

#include <stddef.h>

#define SCRAM_ITERATIONS 4096  /* RFC 7677's minimum; each login costs ~PBKDF2(4096) */
#define SCRAM_SALT_LEN 16
#define SCRAM_NONCE_LEN 24     /* characters of the server's part of the nonce */

enum scram_error {
	SCRAM_EMALFORMED = -1, /* not a message of the exchange, or a bad verifier */
	SCRAM_EUNSUPPORTED = -2,/* channel binding or an authzid other than the user */
	SCRAM_EPROOF = -3,     /* wrong password (proof), or the nonce is not this exchange's */
};

/* A new verifier for password (random salt, SCRAM_ITERATIONS); free() it. */
char *scram_verifier_new(const char *password);
/* The verifier of password with the given salt and iterations; free() it. */
char *scram_verifier_make(const char *password, const unsigned char *salt, size_t salt_len,
			  unsigned iterations);
/* 1 if password matches verifier, 0 if not, SCRAM_EMALFORMED if verifier is
 * not one. Compares in constant time. */
int scram_check_password(const char *verifier, const char *password);

/* A random nonce part of SCRAM_NONCE_LEN printable characters (no ',')
 * into out[SCRAM_NONCE_LEN + 1]. */
void scram_nonce(char out[SCRAM_NONCE_LEN + 1]);

/* One exchange, server side. */
struct scram_server {
	char *user;              /* from the client-first message */
	char *gs2;               /* its GS2 header ("n,," or "y,,") */
	char *client_first_bare;
	char *server_first;
	char *nonce;             /* client nonce + server nonce */
	unsigned char stored_key[32], server_key[32];
};

/*
 * Reads the client-first message ("n,,n=<user>,r=<nonce>"); sets s->user.
 * Returns 0, SCRAM_EMALFORMED or SCRAM_EUNSUPPORTED.
 */
int scram_server_read_first(struct scram_server *s, const char *client_first);
/*
 * Makes the server-first message from the user's verifier and the server's
 * nonce part (scram_nonce) into *out (owned by s). Returns 0 or
 * SCRAM_EMALFORMED (a bad verifier).
 */
int scram_server_first(struct scram_server *s, const char *verifier, const char *server_nonce,
		       const char **out);
/*
 * Checks the client-final message; on success the server-final message
 * ("v=<signature>") is put in *out (new; free() it). Returns 0,
 * SCRAM_EMALFORMED or SCRAM_EPROOF.
 */
int scram_server_final(struct scram_server *s, const char *client_final, char **out);
void scram_server_clear(struct scram_server *s);

/* One exchange, client side. */
struct scram_client {
	char *password;
	char *first_bare;        /* "n=<user>,r=<nonce>" */
	char *auth;              /* AuthMessage, once the final is made */
	unsigned char server_key[32];
};

/* The client-first message for user (a valid nick: nothing to escape) with
 * the client's nonce (scram_nonce), new. */
char *scram_client_first(struct scram_client *c, const char *user, const char *password,
			 const char *nonce);
/* The client-final message answering server_first, new; NULL if
 * server_first is malformed or its nonce does not extend ours. */
char *scram_client_final(struct scram_client *c, const char *server_first);
/* 1 if server_final proves the server knows the verifier, else 0. */
int scram_client_verify(const struct scram_client *c, const char *server_final);
void scram_client_clear(struct scram_client *c);

/* Base64 (standard alphabet, padded) of n bytes, new. */
char *scram_b64(const unsigned char *p, size_t n);
/* Decodes base64 s into out (at most cap bytes). Returns the length, or -1
 * if s is not base64 or does not fit. */
long scram_unb64(const char *s, unsigned char *out, size_t cap);

#endif
