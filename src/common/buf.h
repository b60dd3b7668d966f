/*
 * buf.h: a growable byte buffer for building output lines and encodings.
 */
#ifndef CHORUS_BUF_H
#define CHORUS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* always NUL-terminated once anything was appended */
	size_t len, cap;
};

/* Makes room for extra more bytes (and the NUL) without moving b again. */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Empties b, keeping its memory. */
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
