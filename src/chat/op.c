/*
 * op.c: operation identity, order, copying and the versioned wire codec.
 */
#include "op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* msgid layout: "<origin>-<incarnation as 16 hex>-<boot>-<seq>". */
/* Writes v in decimal at p; returns the end. */
static char *put_decimal(char *p, uint64_t v)
{
	char digits[20];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = digits[--n];
	return p;
}

/* Writes v as 16 lower-case hex digits at p; returns the end. */
static char *put_hex16(char *p, uint64_t v)
{
	for (int i = 15; i >= 0; i--, v >>= 4)
		p[i] = "0123456789abcdef"[v & 15];
	return p + 16;
}

/* "origin-incarnation(16 hex)-boot-seq", written by hand: it is made twice
 * for every stored message (store and fan-out), where snprintf showed. */
void op_msgid(const struct op *op, char *buf, size_t len)
{
	char id[OP_MSGID_MAX];
	char *p = put_decimal(id, op->stream.origin);
	*p++ = '-';
	p = put_hex16(p, op->stream.incarnation);
	*p++ = '-';
	p = put_decimal(p, op->stream.boot);
	*p++ = '-';
	p = put_decimal(p, op->seq);
	size_t n = (size_t)(p - id);
	if (len == 0)
		return;
	if (n >= len)
		n = len - 1; /* cut short, as snprintf would */
	memcpy(buf, id, n);
	buf[n] = '\0';
}

int op_msgid_parse(const char *s, struct op_stream *stream, uint64_t *seq)
{
	unsigned long origin, boot;
	unsigned long long inc, sq;
	int n = 0;
	if (strlen(s) >= OP_MSGID_MAX)
		return -1;
	if (sscanf(s, "%lu-%16llx-%lu-%llu%n", &origin, &inc, &boot, &sq, &n) != 4 || s[n] != '\0')
		return -1;
	if (origin > UINT32_MAX || boot > UINT32_MAX || s[0] < '0' || s[0] > '9')
		return -1;
	stream->origin = (uint32_t)origin;
	stream->incarnation = inc;
	stream->boot = (uint32_t)boot;
	*seq = sq;
	return 0;
}

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

int op_stream_cmp(const struct op_stream *a, const struct op_stream *b)
{
	if (a->origin != b->origin)
		return CMP(a->origin, b->origin);
	if (a->incarnation != b->incarnation)
		return CMP(a->incarnation, b->incarnation);
	return CMP(a->boot, b->boot);
}

int op_cmp(const struct op *a, const struct op *b)
{
	if (a->lts != b->lts)
		return CMP(a->lts, b->lts);
	int c = op_stream_cmp(&a->stream, &b->stream);
	if (c)
		return c;
	return CMP(a->seq, b->seq);
}

struct op_key op_key_of(const struct op *op)
{
	struct op_key k = {op->lts, op->stream, op->seq};
	return k;
}

int op_key_cmp(const struct op_key *a, const struct op_key *b)
{
	if (a->lts != b->lts)
		return CMP(a->lts, b->lts);
	int c = op_stream_cmp(&a->stream, &b->stream);
	if (c)
		return c;
	return CMP(a->seq, b->seq);
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

void op_key_bytes(const struct op_key *k, uint8_t out[OP_KEY_BYTES])
{
	put_be(out, k->lts, 8);
	put_be(out + 8, k->stream.origin, 4);
	put_be(out + 12, k->stream.incarnation, 8);
	put_be(out + 20, k->stream.boot, 4);
	put_be(out + 24, k->seq, 8);
}

static char *dup_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}

void op_copy(struct op *dst, const struct op *src)
{
	*dst = *src;
	dst->target = dup_or_empty(src->target);
	dst->author = dup_or_empty(src->author);
	dst->body = dup_or_empty(src->body);
	dst->ref = dup_or_empty(src->ref);
	dst->account = dup_or_empty(src->account);
	dst->tags = dup_or_empty(src->tags);
}

void op_clear(struct op *op)
{
	free(op->target);
	free(op->author);
	free(op->body);
	free(op->ref);
	free(op->account);
	free(op->tags);
	op->target = op->author = op->body = op->ref = op->account = op->tags = NULL;
}

void op_move(struct op *dst, struct op *src)
{
	*dst = *src;
	src->target = src->author = src->body = src->ref = src->account = src->tags = NULL;
}

void op_fill_empty(struct op *op)
{
	if (!op->target)
		op->target = xstrdup("");
	if (!op->author)
		op->author = xstrdup("");
	if (!op->body)
		op->body = xstrdup("");
	if (!op->ref)
		op->ref = xstrdup("");
	if (!op->account)
		op->account = xstrdup("");
	if (!op->tags)
		op->tags = xstrdup("");
}

/* ---- codec: little-endian fixed-width integers, strings as u32 length + bytes ---- */

void op_buf_put_bytes(struct op_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void op_buf_put_u(struct op_buf *b, uint64_t v, int width)
{
	uint8_t tmp[8];
	for (int i = 0; i < width; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	op_buf_put_bytes(b, tmp, (size_t)width);
}

void op_buf_put_str(struct op_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	op_buf_put_u(b, n, 4);
	op_buf_put_bytes(b, s ? s : "", n);
}

void op_encode(struct op_buf *out, const struct op *ops, size_t n)
{
	op_buf_put_u(out, OP_CODEC_VERSION, 1);
	op_buf_put_u(out, n, 4);
	for (size_t i = 0; i < n; i++) {
		const struct op *op = &ops[i];
		op_buf_put_u(out, op->stream.origin, 4);
		op_buf_put_u(out, op->stream.incarnation, 8);
		op_buf_put_u(out, op->stream.boot, 4);
		op_buf_put_u(out, op->seq, 8);
		op_buf_put_u(out, op->lts, 8);
		op_buf_put_u(out, (uint64_t)op->wall_ms, 8);
		op_buf_put_u(out, op->kind, 1);
		op_buf_put_u(out, op->flags, 1);
		op_buf_put_str(out, op->target);
		op_buf_put_str(out, op->author);
		op_buf_put_str(out, op->body);
		op_buf_put_str(out, op->ref);
		op_buf_put_str(out, op->account);
		op_buf_put_str(out, op->tags);
	}
}

uint64_t op_read_u(struct op_reader *r, int width)
{
	uint64_t v = 0;
	if (r->bad || r->left < (size_t)width) {
		r->bad = 1;
		return 0;
	}
	for (int i = 0; i < width; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += width;
	r->left -= (size_t)width;
	return v;
}

char *op_read_str(struct op_reader *r)
{
	uint64_t n = op_read_u(r, 4);
	if (r->bad || n > OP_FIELD_MAX || n > r->left || memchr(r->p, '\0', n)) {
		r->bad = 1;
		return NULL;
	}
	char *s = xstrndup((const char *)r->p, n);
	r->p += n;
	r->left -= n;
	return s;
}

int op_decode(const uint8_t *data, size_t len, struct op **ops, size_t *n)
{
	struct op_reader r = {data, len, 0};
	*ops = NULL;
	*n = 0;
	if (op_read_u(&r, 1) != OP_CODEC_VERSION || r.bad)
		return -1;
	uint64_t count = op_read_u(&r, 4);
	/* Each op takes at least 66 bytes: refuse counts the input cannot hold. */
	if (r.bad || count > r.left / 66)
		return -1;
	struct op *out = xcalloc(count ? count : 1, sizeof *out);
	size_t i;
	for (i = 0; i < count && !r.bad; i++) {
		struct op *op = &out[i];
		op->stream.origin = (uint32_t)op_read_u(&r, 4);
		op->stream.incarnation = op_read_u(&r, 8);
		op->stream.boot = (uint32_t)op_read_u(&r, 4);
		op->seq = op_read_u(&r, 8);
		op->lts = op_read_u(&r, 8);
		op->wall_ms = (int64_t)op_read_u(&r, 8);
		op->kind = (uint8_t)op_read_u(&r, 1);
		op->flags = (uint8_t)op_read_u(&r, 1);
		op->target = op_read_str(&r);
		op->author = op_read_str(&r);
		op->body = op_read_str(&r);
		op->ref = op_read_str(&r);
		op->account = op_read_str(&r);
		op->tags = op_read_str(&r);
	}
	if (r.bad || r.left != 0) {
		op_free_array(out, i);
		return -1;
	}
	*ops = out;
	*n = (size_t)count;
	return 0;
}

void op_free_array(struct op *ops, size_t n)
{
	if (!ops)
		return;
	for (size_t i = 0; i < n; i++)
		op_clear(&ops[i]);
	free(ops);
}

void op_buf_free(struct op_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
