/*
 * fuzz_irc.c: libFuzzer target for the IRC wire format (src/proto/irc.c).
 *
 * The input is a client's byte stream. It goes through an irc_reader twice:
 * once with a roomy receive queue, in a few chunks, where every line or
 * over-long report must match what a plain split of the whole input on LF
 * predicts; and once with a small queue in small chunks, drained only now
 * and then, where feeds may fail but must then add nothing. Every line is
 * parsed (a CR or NUL inside is refused); a good parse must satisfy the header's limits, leave every pointer
 * inside the line, and survive being written back out (tags escaped with
 * irc_tag_escape) and parsed again unchanged; a refused line must be left as
 * it was. utf8_valid is checked against a separate decoder. Any broken
 * invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "proto/irc.h"

#define STUB_LEN (IRC_LINE_MAX + 2) /* an unfinished line this long is too long */

#define REQUIRE(cond)              \
	do {                       \
		if (!(cond))       \
			abort();   \
	} while (0)

/* ---- a second UTF-8 check, written differently ---------------------------- */

/* Decodes code points by their bit patterns and rejects what RFC 3629 does. */
static int ref_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n;
		uint8_t c = s[i];
		if ((c & 0x80) == 0) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 2, cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 3, cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 4, cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i < n)
			return 0;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		static const uint32_t min_for[5] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min_for[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return 0;
		i += n;
	}
	return 1;
}

/* ---- checks on one line --------------------------------------------------- */

static char orig[IRC_LINE_MAX + 1];
static char again[2 * IRC_LINE_MAX + 64];
static char esc[2 * IRC_LINE_MAX + 2];

static int inside(const char *p, const char *line, size_t len)
{
	return p >= line && p <= line + len;
}

static int command_ok(const char *c)
{
	size_t n = strlen(c), letters = 0, digits = 0;
	for (size_t i = 0; i < n; i++) {
		letters += (c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') || c[i] == '_';
		digits += c[i] >= '0' && c[i] <= '9';
	}
	return n > 0 && (letters == n || (n == 3 && digits == 3));
}

/* Appends s[0..n) to again at *at, aborting if it would not fit. */
static void put(size_t *at, const char *s, size_t n)
{
	REQUIRE(*at + n < sizeof again);
	memcpy(again + *at, s, n);
	*at += n;
	again[*at] = '\0';
}

/* Escapes value into esc, checking the length promised and the refusal of
 * a buffer one byte short. Returns the escaped length. */
static size_t escape_checked(const char *value)
{
	size_t want = 0;
	for (const char *p = value; *p; p++)
		want += strchr(";\\ \r\n", *p) ? 2 : 1;
	REQUIRE(want + 1 <= sizeof esc);
	long n = irc_tag_escape(value, esc, want + 1);
	REQUIRE(n >= 0 && (size_t)n == want && strlen(esc) == want);
	if (want > 0)
		REQUIRE(irc_tag_escape(value, esc, want) == -1);
	REQUIRE(irc_tag_escape(value, esc, want + 1) == (long)want);
	return want;
}

/* Writes m back out as a line in again; returns its length and sets
 * *tags_len to the length of its tag section. */
static size_t write_back(const struct irc_msg *m, size_t *tags_len)
{
	size_t at = 0;
	again[0] = '\0';
	for (size_t t = 0; t < m->ntags; t++) {
		put(&at, t ? ";" : "@", 1);
		put(&at, m->tags[t].key, strlen(m->tags[t].key));
		if (m->tags[t].value[0]) {
			size_t n = escape_checked(m->tags[t].value);
			put(&at, "=", 1);
			put(&at, esc, n);
		}
	}
	*tags_len = at ? at - 1 : 0;
	if (at)
		put(&at, " ", 1);
	if (m->source) {
		put(&at, ":", 1);
		put(&at, m->source, strlen(m->source));
		put(&at, " ", 1);
	}
	put(&at, m->command, strlen(m->command));
	for (size_t p = 0; p < m->nparams; p++) {
		const char *s = m->params[p];
		int last = p + 1 == m->nparams;
		put(&at, " ", 1);
		if (!*s || strchr(s, ' ') || s[0] == ':') {
			REQUIRE(last); /* only the trailing parameter can need ':' */
			put(&at, ":", 1);
		}
		put(&at, s, strlen(s));
	}
	return at;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Checks a message that parsed: limits, pointers, tags, and that writing it
 * back out parses to the same message. */
static void check_good(const struct irc_msg *m, const char *line, size_t len)
{
	static struct irc_msg m2;

	REQUIRE(utf8_valid(orig, len) && !memchr(orig, '\0', len) && !memchr(orig, '\r', len));
	REQUIRE(m->nparams <= IRC_PARAMS_MAX && m->ntags <= IRC_TAGS_COUNT_MAX);
	REQUIRE(inside(m->command, line, len) && command_ok(m->command));
	REQUIRE(!m->source || (inside(m->source, line, len) && m->source[0] && !strchr(m->source, ' ')));
	for (size_t p = 0; p < m->nparams; p++) {
		REQUIRE(inside(m->params[p], line, len));
		REQUIRE(p + 1 == m->nparams || (m->params[p][0] && m->params[p][0] != ':'));
	}
	for (size_t t = 0; t < m->ntags; t++) {
		const struct irc_tag *tag = &m->tags[t];
		REQUIRE(inside(tag->key, line, len) && inside(tag->value, line, len));
		REQUIRE(tag->key[0] && !strpbrk(tag->key, "=; "));
		REQUIRE(irc_tag_get(m, tag->key) == tag->value); /* keys are unique */
		REQUIRE(utf8_valid(tag->value, strlen(tag->value)));
	}

	size_t tags_len, n = write_back(m, &tags_len);
	int rc = irc_parse(again, n, &m2);
	if (tags_len > IRC_CLIENT_TAGS_MAX) {
		/* Escaping bare CRs can lengthen the tags past the limit. */
		REQUIRE(rc == IRC_TOO_LONG);
		return;
	}
	REQUIRE(rc == IRC_OK);
	REQUIRE(m2.ntags == m->ntags && m2.nparams == m->nparams);
	REQUIRE(same_str(m2.source, m->source) && same_str(m2.command, m->command));
	for (size_t t = 0; t < m->ntags; t++)
		REQUIRE(same_str(m2.tags[t].key, m->tags[t].key) && same_str(m2.tags[t].value, m->tags[t].value));
	for (size_t p = 0; p < m->nparams; p++)
		REQUIRE(same_str(m2.params[p], m->params[p]));
}

/* Checks a line from the reader and parses it in place. */
static void check_line(char *line, size_t len)
{
	static struct irc_msg m;

	REQUIRE(len <= IRC_LINE_MAX && line[len] == '\0' && !memchr(line, '\n', len));
	memcpy(orig, line, len + 1);
	REQUIRE(utf8_valid(line, len) == ref_utf8_valid((const uint8_t *)line, len));
	int rc = irc_parse(line, len, &m);
	switch (rc) {
	case IRC_OK:
		check_good(&m, line, len);
		break;
	case IRC_BAD_UTF8:
		REQUIRE(!utf8_valid(orig, len));
		REQUIRE(memcmp(line, orig, len + 1) == 0);
		break;
	case IRC_BAD_CHAR:
		REQUIRE(utf8_valid(orig, len) && (memchr(orig, '\r', len) || memchr(orig, '\0', len)));
		REQUIRE(memcmp(line, orig, len + 1) == 0);
		break;
	case IRC_EMPTY:
		for (size_t i = 0; i < len; i++)
			REQUIRE(orig[i] == ' ');
		break;
	case IRC_TOO_LONG:
		REQUIRE(len > IRC_BODY_MAX - 2);
		/* fall through */
	case IRC_MALFORMED:
		REQUIRE(memcmp(line, orig, len + 1) == 0);
		break;
	default:
		abort();
	}
}

/* ---- the reader ----------------------------------------------------------- */

/* What a plain split of the whole input predicts, consumed in order. */
struct expect {
	const uint8_t *data;
	size_t size, pos;
};

/* Checks one report of the reader against the prediction. */
static void expect_report(struct expect *e, int rc, const char *line, size_t len)
{
	const uint8_t *lf = memchr(e->data + e->pos, '\n', e->size - e->pos);
	size_t end = lf ? (size_t)(lf - e->data) : e->size, n = end - e->pos;
	const uint8_t *start = e->data + e->pos;

	if (lf && n > 0 && start[n - 1] == '\r')
		n--;
	if (lf && n <= IRC_LINE_MAX) {
		REQUIRE(rc == 1 && len == n && memcmp(line, start, n) == 0);
	} else {
		/* Too long: finished, or unfinished beyond any doubt. */
		REQUIRE(rc == IRC_TOO_LONG);
		REQUIRE(lf || end - e->pos >= STUB_LEN);
	}
	e->pos = lf ? end + 1 : e->size;
}

/* Takes every line the reader holds, checking each. */
static void drain(struct irc_reader *r, struct expect *e)
{
	char *line;
	size_t len;
	int rc;

	while ((rc = irc_reader_next(r, &line, &len)) != 0) {
		REQUIRE(rc == 1 || rc == IRC_TOO_LONG);
		if (e)
			expect_report(e, rc, line, len);
		if (rc == 1)
			check_line(line, len);
	}
	/* Emptied means freed; and a stub is always reported at once. */
	REQUIRE(r->buf == NULL || r->len > 0);
	REQUIRE(irc_reader_pending(r) < STUB_LEN);
}

static uint64_t hash(const uint8_t *data, size_t size)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ull;
	return h;
}

/* Roomy queue, a few chunks, every report predicted. */
static void run_predicted(const uint8_t *data, size_t size, uint64_t seed)
{
	struct irc_reader r;
	struct expect e = {data, size, 0};
	size_t cuts[5] = {0, 0, 0, 0, size};

	for (int i = 1; i < 4; i++) {
		cuts[i] = size ? (size_t)(seed % (size + 1)) : 0;
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
	}
	for (int i = 1; i < 4; i++) /* sort the three cuts */
		for (int j = i; j > 1 && cuts[j] < cuts[j - 1]; j--) {
			size_t t = cuts[j];
			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}

	irc_reader_init(&r, 4 * STUB_LEN);
	for (int i = 0; i < 4; i++) {
		size_t n = cuts[i + 1] - cuts[i];
		int rc = irc_reader_feed(&r, (const char *)data + cuts[i], n);
		/* Held after draining: at most a stub, so a chunk up to
		 * 3 * STUB_LEN always fits. */
		if (n <= 3 * STUB_LEN)
			REQUIRE(rc == 0);
		if (rc != 0)
			goto out;
		drain(&r, &e);
	}
	/* What is left is the unfinished end of the input. */
	REQUIRE(e.pos <= size && !memchr(data + e.pos, '\n', size - e.pos));
	REQUIRE(size - e.pos < STUB_LEN && irc_reader_pending(&r) == size - e.pos);
out:
	irc_reader_free(&r);
}

/* Small queue, small chunks, drained now and then; a feed that fails must
 * add nothing, and the client is then cut off (as the server does). */
static void run_flooded(const uint8_t *data, size_t size, uint64_t seed)
{
	struct irc_reader r;
	size_t max = 16 + (size_t)(seed % 6000), pos = 0;

	irc_reader_init(&r, max);
	while (pos < size) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t n = 1 + (size_t)((seed >> 33) % 97);
		if (n > size - pos)
			n = size - pos;
		size_t before = irc_reader_pending(&r);
		int rc = irc_reader_feed(&r, (const char *)data + pos, n);
		REQUIRE(irc_reader_pending(&r) <= max);
		if (rc != 0) {
			REQUIRE(rc == -1 && irc_reader_pending(&r) == before);
			drain(&r, NULL);
			if (irc_reader_feed(&r, (const char *)data + pos, n) != 0)
				break;
		}
		pos += n;
		if ((seed >> 40) % 3 == 0)
			drain(&r, NULL);
	}
	drain(&r, NULL);
	irc_reader_free(&r);
	REQUIRE(r.buf == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = hash(data, size);

	REQUIRE(utf8_valid((const char *)data, size) == ref_utf8_valid(data, size));
	run_predicted(data, size, seed);
	run_flooded(data, size, seed);
	return 0;
}
