/*
 * sethash.h: the hash of a set: the sum, modulo 2^256, of the SHA-256 of
 * each member's bytes. Adding members in any order gives the same sum, and
 * a member added twice counts twice (callers add each member once).
 */
#ifndef CHORUS_SETHASH_H
#define CHORUS_SETHASH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct sethash {
	uint64_t sum[4];            /* little-endian 64-bit words */
	struct evp_md_st *md;       /* SHA-256, fetched at the first member */
	struct evp_md_ctx_st *ctx;
	struct buf member;          /* the member being built (sethash_u64/_str) */
};

/* Appends v (8 little-endian bytes) / s (its length, then its bytes) to
 * the member being built. */
void sethash_u64(struct sethash *h, uint64_t v);
void sethash_str(struct sethash *h, const char *s);
void sethash_bytes(struct sethash *h, const void *b, size_t n);
/* Adds the member built so far to the sum and starts the next one. Aborts
 * if OpenSSL cannot hash (as an allocation failure does). */
void sethash_add(struct sethash *h);
/* The sum as 64 hex digits (big-endian) and a NUL. */
void sethash_hex(const struct sethash *h, char out[65]);
void sethash_free(struct sethash *h);

#endif
