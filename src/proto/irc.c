/*
 * irc.c: the IRC wire format. A client's byte stream is cut into lines by the
 * reader (irc_reader_*), each line is checked and split into tags, source,
 * command and parameters by irc_parse, and tag values go back on the wire
 * through irc_tag_escape. The rules are those of the modern IRC client
 * protocol (modern.ircdocs.horse), IRCv3 message-tags and RFC 3629 UTF-8.
 *
 * irc_parse works in two steps: it first reads the line without writing to
 * it, noting where every piece starts and ends, and only when the whole line
 * is good does it cut the buffer into strings and unescape the tag values.
 * So a line that is refused is left as it came (the caller can still quote
 * it), and nothing is allocated per line.
 *
 * The reader keeps the bytes not yet taken as lines at the END of its
 * buffer, buf[cap - len .. cap): taking a line only shortens len, so handing
 * out many short lines costs nothing per line, and the line handed out stays
 * in place (just before the held bytes) until the next call, which is when it
 * may be overwritten. The buffer exists only while bytes are held. A line too
 * long to accept is kept only as a stub of IRC_LINE_MAX + 2 bytes (enough to
 * prove it too long, even allowing for a CR) and the rest of it is dropped as
 * it arrives, so a flood without LF never grows the buffer past that.
 */
#include "proto/irc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "common/util.h"

/* ---- Tag values ----------------------------------------------------------- */

/* The escape letter for c in a tag value ("\X"), or 0 if c goes as it is. */
static char escape_letter(char c)
{
	switch (c) {
	case ';': return ':';
	case ' ': return 's';
	case '\\': return '\\';
	case '\r': return 'r';
	case '\n': return 'n';
	default: return 0;
	}
}

/* The character "\X" stands for: per message-tags, an unknown X stands for
 * itself (the backslash is dropped). */
static char unescape_letter(char x)
{
	switch (x) {
	case ':': return ';';
	case 's': return ' ';
	case 'r': return '\r';
	case 'n': return '\n';
	default: return x; /* including '\\' */
	}
}

static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int irc_mask_match(const char *mask, const char *subject)
{
	const char *star = NULL, *resume = NULL;
	while (*subject) {
		if (*mask == '*') {
			star = mask++;
			resume = subject;
		} else if (*mask && (*mask == '?' || fold(*mask) == fold(*subject))) {
			mask++;
			subject++;
		} else if (star) {
			mask = star + 1; /* the last '*' takes one more character */
			subject = ++resume;
		} else {
			return 0;
		}
	}
	while (*mask == '*')
		mask++;
	return *mask == '\0';
}

long irc_tag_escape(const char *value, char *out, size_t cap)
{
	size_t o = 0;

	for (const char *p = value; *p; p++) {
		char letter = escape_letter(*p);
		size_t need = letter ? 2 : 1;
		if (cap < 1 || cap - 1 - o < need) { /* keep room for the NUL */
			if (cap > 0)
				out[0] = '\0';
			return -1;
		}
		if (letter) {
			out[o++] = '\\';
			out[o++] = letter;
		} else {
			out[o++] = *p;
		}
	}
	if (cap < 1)
		return -1;
	out[o] = '\0';
	return (long)o;
}

/*
 * Unescapes the tag value s[0..len) in place and NUL-terminates it (the
 * result is never longer, and the NUL lands at most at s[len], which is the
 * value's separator or the line's end). A lone backslash at the end is
 * dropped.
 */
static void unescape_value(char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			s[o++] = s[i];
		} else if (i + 1 < len) {
			s[o++] = unescape_letter(s[++i]);
		}
	}
	s[o] = '\0';
}

/* ---- Parsing -------------------------------------------------------------- */

/* A piece of the line not yet cut out: offset and length. */
struct span {
	size_t off, len;
};

/* Where everything lies in the line, gathered before the line is written. */
struct layout {
	struct span key[IRC_TAGS_COUNT_MAX], value[IRC_TAGS_COUNT_MAX];
	int has_value[IRC_TAGS_COUNT_MAX];
	size_t ntags;
	int has_source;
	struct span source, command;
	struct span param[IRC_PARAMS_MAX];
	size_t nparams;
};

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t skip_spaces(const char *line, size_t len, size_t i)
{
	while (i < len && line[i] == ' ')
		i++;
	return i;
}

/* Offset of the first c in line[i..len), or len. */
static size_t find_char(const char *line, size_t len, size_t i, char c)
{
	const char *p = i < len ? memchr(line + i, c, len - i) : NULL;
	return p ? (size_t)(p - line) : len;
}

/* 1 if s[0..n) is non-empty and made of letters, digits, '-' and, when
 * dots is set, '.'. */
static int key_part_valid(const char *s, size_t n, int dots)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' && !(dots && s[i] == '.'))
			return 0;
	return 1;
}

/*
 * 1 if k[0..n) is a tag key: ['+'] [vendor '/'] name, where the vendor is a
 * host name (letters, digits, '-', '.') and the name is letters, digits and
 * '-'; both must be non-empty.
 */
static int tag_key_valid(const char *k, size_t n)
{
	if (n > 0 && k[0] == '+') {
		k++;
		n--;
	}
	const char *slash = n > 0 ? memchr(k, '/', n) : NULL;
	if (!slash)
		return key_part_valid(k, n, 0);
	size_t vendor = (size_t)(slash - k);
	return key_part_valid(k, vendor, 1) && key_part_valid(slash + 1, n - vendor - 1, 0);
}

/* Index of the tag already noted with key k[0..n), or -1. */
static long find_noted_tag(const struct layout *l, const char *line, const char *k, size_t n)
{
	for (size_t i = 0; i < l->ntags; i++)
		if (l->key[i].len == n && memcmp(line + l->key[i].off, k, n) == 0)
			return (long)i;
	return -1;
}

/*
 * Notes the tags of the section line[start..end) (between '@' and the first
 * space) in l: key[=value] separated by ';'. A repeated key keeps its first
 * place and takes the last value. Returns IRC_OK or IRC_MALFORMED (empty or
 * bad key, more than IRC_TAGS_COUNT_MAX tags).
 */
static int note_tags(const char *line, size_t start, size_t end, struct layout *l)
{
	size_t i = start, seen = 0;

	for (;;) {
		size_t stop = find_char(line, end, i, ';');
		size_t eq = find_char(line, stop, i, '=');
		if (!tag_key_valid(line + i, eq - i) || ++seen > IRC_TAGS_COUNT_MAX)
			return IRC_MALFORMED;
		long at = find_noted_tag(l, line, line + i, eq - i);
		size_t t = at >= 0 ? (size_t)at : l->ntags++;
		l->key[t] = (struct span){i, eq - i};
		l->has_value[t] = eq < stop;
		l->value[t] = eq < stop ? (struct span){eq + 1, stop - eq - 1} : (struct span){eq, 0};
		if (stop >= end)
			return IRC_OK;
		i = stop + 1;
	}
}

/* 1 if line[s.off..+s.len) is a command: letters (and '_', as in
 * NONEXISTENT_COMMAND, so that it gets 421), or exactly three digits. */
static int command_valid(const char *line, struct span s)
{
	size_t letters = 0, digits = 0;

	for (size_t i = 0; i < s.len; i++) {
		letters += is_alpha(line[s.off + i]) || line[s.off + i] == '_';
		digits += is_digit(line[s.off + i]);
	}
	return s.len > 0 && (letters == s.len || (digits == 3 && s.len == 3));
}

/*
 * Notes the source, command and parameters of the body line[i..len) in l.
 * Returns IRC_OK or IRC_MALFORMED (empty source, missing or bad command, more
 * than IRC_PARAMS_MAX parameters).
 */
static int note_body(const char *line, size_t len, size_t i, struct layout *l)
{
	size_t end;

	if (i < len && line[i] == ':') {
		end = find_char(line, len, i, ' ');
		if (end == i + 1)
			return IRC_MALFORMED;
		l->has_source = 1;
		l->source = (struct span){i + 1, end - i - 1};
		i = skip_spaces(line, len, end);
	}
	end = find_char(line, len, i, ' ');
	l->command = (struct span){i, end - i};
	if (!command_valid(line, l->command))
		return IRC_MALFORMED;
	for (i = skip_spaces(line, len, end); i < len; i = skip_spaces(line, len, end)) {
		if (l->nparams == IRC_PARAMS_MAX)
			return IRC_MALFORMED;
		if (line[i] == ':') {
			l->param[l->nparams++] = (struct span){i + 1, len - i - 1};
			break;
		}
		end = find_char(line, len, i, ' ');
		l->param[l->nparams++] = (struct span){i, end - i};
	}
	return IRC_OK;
}

/* Cuts line[s.off..+s.len) out as a string (the byte after it is a
 * separator or the line's NUL) and returns it. */
static char *cut(char *line, struct span s)
{
	line[s.off + s.len] = '\0';
	return line + s.off;
}

/* Writes the noted layout into the line and m: cuts the strings, unescapes
 * the tag values. */
static void commit(char *line, const struct layout *l, struct irc_msg *m)
{
	m->ntags = l->ntags;
	for (size_t t = 0; t < l->ntags; t++) {
		m->tags[t].key = cut(line, l->key[t]);
		if (l->has_value[t]) {
			m->tags[t].value = line + l->value[t].off;
			unescape_value(m->tags[t].value, l->value[t].len);
		} else {
			m->tags[t].value = line + l->key[t].off + l->key[t].len; /* its NUL: "" */
		}
	}
	m->source = l->has_source ? cut(line, l->source) : NULL;
	m->command = cut(line, l->command);
	m->nparams = l->nparams;
	for (size_t p = 0; p < l->nparams; p++)
		m->params[p] = cut(line, l->param[p]);
}

static int all_spaces(const char *line, size_t len)
{
	return skip_spaces(line, len, 0) == len;
}

int irc_parse(char *line, size_t len, struct irc_msg *m)
{
	struct layout l;
	size_t tags_end = 0, body;
	int rc;

	if (all_spaces(line, len))
		return IRC_EMPTY;
	if (!utf8_valid(line, len))
		return IRC_BAD_UTF8;
	if (memchr(line, '\r', len) || memchr(line, '\0', len))
		return IRC_BAD_CHAR;
	if (line[0] == '@') {
		tags_end = find_char(line, len, 1, ' ');
		if (tags_end - 1 > IRC_CLIENT_TAGS_MAX)
			return IRC_TOO_LONG;
	}
	body = skip_spaces(line, len, tags_end);
	if (len - body > IRC_BODY_MAX - 2)
		return IRC_TOO_LONG;
	if (memchr(line, '\0', len))
		return IRC_MALFORMED;
	l.ntags = 0;
	l.nparams = 0;
	l.has_source = 0;
	if (line[0] == '@' && (rc = note_tags(line, 1, tags_end, &l)) != IRC_OK)
		return rc;
	if ((rc = note_body(line, len, body, &l)) != IRC_OK)
		return rc;
	commit(line, &l, m);
	return IRC_OK;
}

const char *irc_tag_get(const struct irc_msg *m, const char *key)
{
	for (size_t i = 0; i < m->ntags; i++)
		if (strcmp(m->tags[i].key, key) == 0)
			return m->tags[i].value;
	return NULL;
}

/* ---- The line reader ------------------------------------------------------ */

/* Bytes kept of a line known to be too long: more than a whole line and its
 * CR, so holding this many without an LF proves the line too long. */
#define STUB_LEN (IRC_LINE_MAX + 2)

/* Where the reader's stream stands while bytes are taken in. */
struct feed_state {
	size_t tail;    /* bytes held of the unfinished last line */
	int discarding; /* that line is too long: drop the rest up to its LF */
};

void irc_reader_init(struct irc_reader *r, size_t recvq_max)
{
	memset(r, 0, sizeof *r);
	r->recvq_max = recvq_max;
}

size_t irc_reader_pending(const struct irc_reader *r)
{
	return r->len;
}

void irc_reader_free(struct irc_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
	r->discarding = 0;
}

/* First held byte. */
static char *held(const struct irc_reader *r)
{
	return r->buf + (r->cap - r->len);
}

/* Frees the buffer if it holds nothing (the line last handed out, which
 * lives there, is no longer promised once another call is made). */
static void release_if_empty(struct irc_reader *r)
{
	if (r->len == 0 && r->buf) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
}

/* Length of the unfinished last line held (bytes after the last LF). */
static size_t held_tail(const struct irc_reader *r)
{
	if (r->len == 0)
		return 0;
	const char *h = held(r);
	size_t n = r->len;

	while (n > 0 && h[n - 1] != '\n')
		n--;
	return r->len - n;
}

/*
 * Runs data[0..n) through the stream state st and returns how many bytes are
 * to be held; when out is not NULL they are also written there. Bytes of a
 * line beyond STUB_LEN are dropped (st->discarding set until its LF), and a
 * stub held without its LF gets one when the LF comes, so the reader can
 * still report it in order.
 */
static size_t feed_plan(struct feed_state *st, const char *data, size_t n, char *out)
{
	size_t kept = 0;

	while (n > 0) {
		const char *lf = memchr(data, '\n', n);
		size_t before = lf ? (size_t)(lf - data) : n;
		if (!st->discarding) {
			size_t take = before < STUB_LEN - st->tail ? before : STUB_LEN - st->tail;
			if (out)
				memcpy(out + kept, data, take);
			kept += take;
			st->tail += take;
			if (!lf && st->tail == STUB_LEN)
				st->discarding = 1;
		}
		if (lf) {
			if (st->tail > 0 || !st->discarding) {
				if (out)
					out[kept] = '\n';
				kept++;
			}
			st->tail = 0;
			st->discarding = 0;
		}
		size_t used = lf ? before + 1 : n;
		data += used;
		n -= used;
	}
	return kept;
}

/* Makes room for more bytes after the held ones: afterwards the held bytes
 * sit at buf[cap - len - more .. cap - more). */
static void make_room(struct irc_reader *r, size_t more)
{
	size_t need = r->len + more;

	if (need <= r->cap) {
		memmove(r->buf + (r->cap - need), held(r), r->len);
		return;
	}
	size_t cap = r->cap * 2 > 256 ? r->cap * 2 : 256;
	if (cap > r->recvq_max)
		cap = r->recvq_max;
	if (cap < need)
		cap = need;
	char *buf = xmalloc(cap);
	if (r->len)
		memcpy(buf + (cap - need), held(r), r->len);
	free(r->buf);
	r->buf = buf;
	r->cap = cap;
}

int irc_reader_feed(struct irc_reader *r, const char *data, size_t n)
{
	struct feed_state start = {held_tail(r), r->discarding}, st = start;
	size_t kept = feed_plan(&st, data, n, NULL);

	if (kept > r->recvq_max || r->len > r->recvq_max - kept)
		return -1;
	r->discarding = st.discarding;
	if (kept == 0) {
		release_if_empty(r);
		return 0;
	}
	make_room(r, kept);
	st = start;
	feed_plan(&st, data, n, r->buf + (r->cap - kept));
	r->len += kept;
	return 0;
}

int irc_reader_next(struct irc_reader *r, char **line, size_t *len)
{
	release_if_empty(r);
	if (r->len == 0)
		return 0;

	char *h = held(r);
	char *lf = memchr(h, '\n', r->len);
	if (!lf) {
		if (r->len < STUB_LEN)
			return 0;
		/* The stub of a line too long, still arriving: feed drops the
		 * rest (r->discarding is set). */
		r->len = 0;
		release_if_empty(r);
		return IRC_TOO_LONG;
	}
	size_t n = (size_t)(lf - h);
	r->len -= n + 1;
	if (n > 0 && h[n - 1] == '\r')
		n--;
	if (n > IRC_LINE_MAX) {
		release_if_empty(r);
		return IRC_TOO_LONG;
	}
	h[n] = '\0';
	*line = h;
	*len = n;
	return 1;
}
