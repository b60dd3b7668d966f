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

int op_client_id(const struct op *op, char out[OP_CID_MAX])
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
	const size_t klen = sizeof OP_CID_TAG - 1;
	out[0] = '\0';
	if ((op->kind != OP_MSG && op->kind != OP_DM) || !op->tags)
		return 0;
	for (const char *t = op->tags; *t; t += strcspn(t, ";"), t += *t == ';') {
		size_t n = strcspn(t, ";");
		if (n <= klen + 1 || strncmp(t, OP_CID_TAG "=", klen + 1) != 0)
			continue;
		size_t vlen = n - klen - 1;
		if (vlen >= OP_CID_MAX || strspn(t + klen + 1, ok) < vlen)
			return 0;
		memcpy(out, t + klen + 1, vlen);
		out[vlen] = '\0';
		return 1;
	}
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

int op_cmp(const struct op *a, const struct op *b)
{
	struct op_key ka = op_key_of(a), kb = op_key_of(b);
	return op_key_cmp(&ka, &kb);
}

struct op_key op_key_at_time(int64_t ms, int after)
{
	const int64_t top = (int64_t)(UINT64_MAX >> OP_LTS_SHIFT);
	struct op_key k = {0};
	int64_t t = (ms < 0 ? -1 : ms) + (after ? 1 : 0);
	k.lts = t <= 0 ? 0 : t > top ? UINT64_MAX : (uint64_t)t << OP_LTS_SHIFT;
	return k;
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

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

struct op_key op_key_of_bytes(const uint8_t b[OP_KEY_BYTES])
{
	struct op_key k;
	memset(&k, 0, sizeof k);
	k.lts = get_be(b, 8);
	k.stream.origin = (uint32_t)get_be(b + 8, 4);
	k.stream.incarnation = get_be(b + 12, 8);
	k.stream.boot = (uint32_t)get_be(b + 20, 4);
	k.seq = get_be(b + 24, 8);
	return k;
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

/* ---- the op list codec (version 4) ----
 * u8 version, varint count, then each op: u8 mask (OP_SAME_*), the stream
 * (varints origin, incarnation, boot) unless OP_SAME_STREAM, varint seq
 * (with OP_SAME_STREAM the zigzag of its distance from the previous op's
 * seq + 1), zigzag varints of lts and wall_ms less the previous op's (0 for
 * the first), u8 kind, u8 flags, then target, author, body, ref, account
 * and tags as varint length + bytes, leaving out target, author and
 * account when the mask says they are the previous op's. A batch of one
 * stream's ops (a resend, a busy room) costs a few bytes per op besides
 * its text. */

enum {
	OP_SAME_STREAM = 1,
	OP_SAME_TARGET = 2,
	OP_SAME_AUTHOR = 4,
	OP_SAME_ACCOUNT = 8,
};

static void put_varint(struct op_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	int n = 0;
	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	op_buf_put_bytes(b, tmp, (size_t)n);
}

/* The zigzag varint of a - b (wrapping), so small moves either way are short. */
static void put_delta(struct op_buf *b, uint64_t a, uint64_t bb)
{
	int64_t d = (int64_t)(a - bb);
	put_varint(b, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
}

static void put_text(struct op_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	put_varint(b, n);
	op_buf_put_bytes(b, s ? s : "", n);
}

static int same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

size_t op_encoded_max(const struct op *op)
{
	return 120 + (op->target ? strlen(op->target) : 0) + (op->author ? strlen(op->author) : 0) +
	       (op->body ? strlen(op->body) : 0) + (op->ref ? strlen(op->ref) : 0) +
	       (op->account ? strlen(op->account) : 0) + (op->tags ? strlen(op->tags) : 0);
}

void op_encode(struct op_buf *out, const struct op *ops, size_t n)
{
	static const struct op none;
	op_buf_put_u(out, OP_CODEC_VERSION, 1);
	put_varint(out, n);
	for (size_t i = 0; i < n; i++) {
		const struct op *op = &ops[i], *prev = i ? &ops[i - 1] : &none;
		unsigned mask = 0;
		if (i && op_stream_cmp(&op->stream, &prev->stream) == 0)
			mask |= OP_SAME_STREAM;
		if (i && same_str(op->target, prev->target))
			mask |= OP_SAME_TARGET;
		if (i && same_str(op->author, prev->author))
			mask |= OP_SAME_AUTHOR;
		if (i && same_str(op->account, prev->account))
			mask |= OP_SAME_ACCOUNT;
		op_buf_put_u(out, mask, 1);
		if (mask & OP_SAME_STREAM) {
			put_delta(out, op->seq, prev->seq + 1);
		} else {
			put_varint(out, op->stream.origin);
			put_varint(out, op->stream.incarnation);
			put_varint(out, op->stream.boot);
			put_varint(out, op->seq);
		}
		put_delta(out, op->lts, prev->lts);
		put_delta(out, (uint64_t)op->wall_ms, (uint64_t)prev->wall_ms);
		op_buf_put_u(out, op->kind, 1);
		op_buf_put_u(out, op->flags, 1);
		if (!(mask & OP_SAME_TARGET))
			put_text(out, op->target);
		if (!(mask & OP_SAME_AUTHOR))
			put_text(out, op->author);
		put_text(out, op->body);
		put_text(out, op->ref);
		if (!(mask & OP_SAME_ACCOUNT))
			put_text(out, op->account);
		put_text(out, op->tags);
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

/* The next n bytes as a new string (after a length read into n): NULL,
 * with r bad, if they are not there, too long or hold a NUL. */
static char *read_chars(struct op_reader *r, uint64_t n)
{
	if (r->bad || n > OP_FIELD_MAX || n > r->left || memchr(r->p, '\0', n)) {
		r->bad = 1;
		return NULL;
	}
	char *s = xstrndup((const char *)r->p, n);
	r->p += n;
	r->left -= n;
	return s;
}

char *op_read_str(struct op_reader *r)
{
	return read_chars(r, op_read_u(r, 4));
}

static uint64_t read_varint(struct op_reader *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint64_t byte = op_read_u(r, 1);
		if (r->bad)
			return 0;
		if ((shift == 63 && byte > 1) || (shift && byte == 0)) /* past 64 bits, or not minimal */
			break;
		v |= (byte & 0x7f) << shift;
		if (!(byte & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

/* The value that base plus the zigzag delta read makes (wrapping). */
static uint64_t read_delta(struct op_reader *r, uint64_t base)
{
	uint64_t z = read_varint(r);
	return base + ((z >> 1) ^ (uint64_t)-(int64_t)(z & 1));
}

/* A varint that must fit 32 bits. */
static uint32_t read_u32(struct op_reader *r)
{
	uint64_t v = read_varint(r);
	if (v > UINT32_MAX)
		r->bad = 1;
	return (uint32_t)v;
}

static char *read_text(struct op_reader *r)
{
	return read_chars(r, read_varint(r));
}

/* A copy of the previous op's string (mask bit set), or the next text. */
static char *read_or_copy(struct op_reader *r, unsigned mask, unsigned bit, const char *prev)
{
	return (mask & bit) ? xstrdup(prev) : read_text(r);
}

/* Each op takes at least 9 bytes (mask, seq, lts, wall, kind, flags and
 * three lengths). */
#define OP_ENCODED_MIN 9

int op_decode(const uint8_t *data, size_t len, struct op **ops, size_t *n)
{
	struct op_reader r = {data, len, 0};
	*ops = NULL;
	*n = 0;
	if (op_read_u(&r, 1) != OP_CODEC_VERSION || r.bad)
		return -1;
	uint64_t count = read_varint(&r);
	if (r.bad || count > r.left / OP_ENCODED_MIN)
		return -1;
	struct op *out = xcalloc(count ? count : 1, sizeof *out);
	size_t i;
	for (i = 0; i < count && !r.bad; i++) {
		static const struct op none;
		struct op *op = &out[i];
		const struct op *prev = i ? &out[i - 1] : &none;
		unsigned mask = (unsigned)op_read_u(&r, 1);
		if (mask > 15 || (i == 0 && mask)) {
			r.bad = 1;
			break;
		}
		if (mask & OP_SAME_STREAM) {
			op->stream = prev->stream;
			op->seq = read_delta(&r, prev->seq + 1);
		} else {
			op->stream.origin = read_u32(&r);
			op->stream.incarnation = read_varint(&r);
			op->stream.boot = read_u32(&r);
			op->seq = read_varint(&r);
		}
		op->lts = read_delta(&r, prev->lts);
		op->wall_ms = (int64_t)read_delta(&r, (uint64_t)prev->wall_ms);
		op->kind = (uint8_t)op_read_u(&r, 1);
		op->flags = (uint8_t)op_read_u(&r, 1);
		op->target = read_or_copy(&r, mask, OP_SAME_TARGET, prev->target);
		op->author = read_or_copy(&r, mask, OP_SAME_AUTHOR, prev->author);
		op->body = read_text(&r);
		op->ref = read_text(&r);
		op->account = read_or_copy(&r, mask, OP_SAME_ACCOUNT, prev->account);
		op->tags = read_text(&r);
		/* One encoding per list: a repeat is always marked (op_encode). */
		if (!r.bad && i > 0 &&
		    ((!(mask & OP_SAME_STREAM) && op_stream_cmp(&op->stream, &prev->stream) == 0) ||
		     (!(mask & OP_SAME_TARGET) && strcmp(op->target, prev->target) == 0) ||
		     (!(mask & OP_SAME_AUTHOR) && strcmp(op->author, prev->author) == 0) ||
		     (!(mask & OP_SAME_ACCOUNT) && strcmp(op->account, prev->account) == 0)))
			r.bad = 1;
		if (r.bad) {
			i++; /* free this one's strings too */
			break;
		}
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
