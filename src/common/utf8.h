/*
 * utf8.h: UTF-8 (RFC 3629) checks for text from clients and peers.
 */
#ifndef CHORUS_UTF8_H
#define CHORUS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int utf8_valid(const char *s, size_t len);

/* The code point at *p, which must start a valid sequence of a valid string
 * (see utf8_valid), advancing *p past it. */
uint32_t utf8_next(const unsigned char **p);

#endif
