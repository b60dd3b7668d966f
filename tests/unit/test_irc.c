/*
 * test_irc.c: the IRC wire format (src/proto/irc.c): parsing lines with
 * tags, source, command and parameters; every limit at and one past its
 * bound; tag escaping; UTF-8 checks; and the line reader across partial
 * feeds, CR/LF variants, over-long lines and receive-queue overflow.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/irc.h"

/* Parses a copy of text (kept in buf, which must outlive m's use). */
static int parse(char *buf, size_t cap, const char *text, struct irc_msg *m)
{
	size_t n = strlen(text);
	if (n + 1 > cap)
		abort();
	memcpy(buf, text, n + 1);
	return irc_parse(buf, n, m);
}

/* A string of n copies of c, in a buffer of cap bytes. */
static char *repeat(char *out, char c, size_t n)
{
	memset(out, c, n);
	out[n] = '\0';
	return out;
}

static char line[8192];
static char big[8192];

TEST(simple_command)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, "PING", &m), IRC_OK);
	CHECK_EQ_STR(m.command, "PING");
	CHECK(m.source == NULL);
	CHECK_EQ_INT(m.nparams, 0);
	CHECK_EQ_INT(m.ntags, 0);

	CHECK_EQ_INT(parse(line, sizeof line, "privmsg #room hello", &m), IRC_OK);
	CHECK_EQ_STR(m.command, "privmsg");
	CHECK_EQ_INT(m.nparams, 2);
	CHECK_EQ_STR(m.params[0], "#room");
	CHECK_EQ_STR(m.params[1], "hello");

	CHECK_EQ_INT(parse(line, sizeof line, "001 nick :Welcome", &m), IRC_OK);
	CHECK_EQ_STR(m.command, "001");
	CHECK_EQ_STR(m.params[1], "Welcome");
}

TEST(source_and_trailing)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, ":nick!user@host PRIVMSG #a :hello there  world ", &m), IRC_OK);
	CHECK_EQ_STR(m.source, "nick!user@host");
	CHECK_EQ_STR(m.command, "PRIVMSG");
	CHECK_EQ_INT(m.nparams, 2);
	CHECK_EQ_STR(m.params[0], "#a");
	CHECK_EQ_STR(m.params[1], "hello there  world ");

	/* An empty trailing parameter still counts. */
	CHECK_EQ_INT(parse(line, sizeof line, "TOPIC #a :", &m), IRC_OK);
	CHECK_EQ_INT(m.nparams, 2);
	CHECK_EQ_STR(m.params[1], "");

	/* A trailing parameter may hold ':' and start with it. */
	CHECK_EQ_INT(parse(line, sizeof line, "PRIVMSG #a ::-) :x", &m), IRC_OK);
	CHECK_EQ_STR(m.params[1], ":-) :x");

	/* ':' inside a middle parameter is just a character. */
	CHECK_EQ_INT(parse(line, sizeof line, "X a:b :c d", &m), IRC_OK);
	CHECK_EQ_INT(m.nparams, 2);
	CHECK_EQ_STR(m.params[0], "a:b");
	CHECK_EQ_STR(m.params[1], "c d");
}

TEST(many_spaces)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, "@a=1   :src   CMD   p1    p2   :t  x  ", &m), IRC_OK);
	CHECK_EQ_STR(irc_tag_get(&m, "a"), "1");
	CHECK_EQ_STR(m.source, "src");
	CHECK_EQ_STR(m.command, "CMD");
	CHECK_EQ_INT(m.nparams, 3);
	CHECK_EQ_STR(m.params[0], "p1");
	CHECK_EQ_STR(m.params[1], "p2");
	CHECK_EQ_STR(m.params[2], "t  x  ");

	/* Leading and trailing spaces around a tagless line. */
	CHECK_EQ_INT(parse(line, sizeof line, "   JOIN #a   ", &m), IRC_OK);
	CHECK_EQ_STR(m.command, "JOIN");
	CHECK_EQ_INT(m.nparams, 1);
	CHECK_EQ_STR(m.params[0], "#a");
}

TEST(tags)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line,
			   "@label=abc;+draft/react=\\:thumbs\\sup\\\\;msgid=;example.com/x-y=1;+typing=active;bot "
			   ":n PRIVMSG #a :hi",
			   &m),
		     IRC_OK);
	CHECK_EQ_INT(m.ntags, 6);
	CHECK_EQ_STR(irc_tag_get(&m, "label"), "abc");
	CHECK_EQ_STR(irc_tag_get(&m, "+draft/react"), ";thumbs up\\");
	CHECK_EQ_STR(irc_tag_get(&m, "msgid"), "");
	CHECK_EQ_STR(irc_tag_get(&m, "example.com/x-y"), "1");
	CHECK_EQ_STR(irc_tag_get(&m, "+typing"), "active");
	CHECK_EQ_STR(irc_tag_get(&m, "bot"), ""); /* no value */
	CHECK(irc_tag_get(&m, "absent") == NULL);
	CHECK(irc_tag_get(&m, "LABEL") == NULL); /* keys are case-sensitive */
	CHECK_EQ_STR(m.tags[0].key, "label");
	CHECK_EQ_STR(m.source, "n");
	CHECK_EQ_STR(m.params[1], "hi");

	/* \r \n, unknown escapes keep the character, a lone trailing
	 * backslash is dropped. */
	CHECK_EQ_INT(parse(line, sizeof line, "@a=x\\ry\\nz;b=\\b\\q;c=end\\;d=\\ TAGMSG #a", &m), IRC_OK);
	CHECK_EQ_STR(irc_tag_get(&m, "a"), "x\ry\nz");
	CHECK_EQ_STR(irc_tag_get(&m, "b"), "bq");
	CHECK_EQ_STR(irc_tag_get(&m, "c"), "end");
	CHECK_EQ_STR(irc_tag_get(&m, "d"), "");
	CHECK_EQ_STR(m.command, "TAGMSG");

	/* Values may hold '=' and any UTF-8. */
	CHECK_EQ_INT(parse(line, sizeof line, "@+draft/react=\xf0\x9f\x91\x8d;k=a=b TAGMSG #a", &m), IRC_OK);
	CHECK_EQ_STR(irc_tag_get(&m, "+draft/react"), "\xf0\x9f\x91\x8d");
	CHECK_EQ_STR(irc_tag_get(&m, "k"), "a=b");
}

TEST(tag_duplicates)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, "@a=1;b=2;a=3;a PING", &m), IRC_OK);
	CHECK_EQ_INT(m.ntags, 2);
	CHECK_EQ_STR(irc_tag_get(&m, "a"), ""); /* the last one wins */
	CHECK_EQ_STR(irc_tag_get(&m, "b"), "2");
	CHECK_EQ_INT(parse(line, sizeof line, "@a;a=x\\s PING", &m), IRC_OK);
	CHECK_EQ_INT(m.ntags, 1);
	CHECK_EQ_STR(irc_tag_get(&m, "a"), "x ");
}

TEST(tag_syntax_errors)
{
	struct irc_msg m;
	static const char *bad[] = {
		"@ PING",              /* empty tag section */
		"@;a=1 PING",          /* empty key */
		"@a=1; PING",          /* empty key at the end */
		"@a=1;;b=2 PING",      /* empty key in the middle */
		"@=1 PING",            /* value without key */
		"@a_b=1 PING",         /* bad key character */
		"@+ PING",             /* client prefix alone */
		"@+/x PING",           /* empty vendor */
		"@vendor/ PING",       /* empty name */
		"@a/b/c PING",         /* two slashes */
		"@a.b PING",           /* '.' outside a vendor */
		"@++a PING",           /* two '+' */
		"@a+b PING",
		"@a=1",                /* tags and no command */
		"@a=1    ",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse(line, sizeof line, bad[i], &m);
		if (rc != IRC_MALFORMED)
			fprintf(stderr, "  line %zu: \"%s\" -> %d\n", i, bad[i], rc);
		CHECK_EQ_INT(rc, IRC_MALFORMED);
	}
	/* Refused lines are left as they were. */
	strcpy(line, "@a=\\s;b_=1 PRIVMSG #a :x");
	CHECK_EQ_INT(irc_parse(line, strlen(line), &m), IRC_MALFORMED);
	CHECK_EQ_STR(line, "@a=\\s;b_=1 PRIVMSG #a :x");
}

TEST(tag_count_limit)
{
	struct irc_msg m;
	size_t n = 0;
	big[n++] = '@';
	for (int i = 0; i < IRC_TAGS_COUNT_MAX; i++)
		n += (size_t)sprintf(big + n, "%st%d=%d", i ? ";" : "", i, i);
	strcpy(big + n, " PING");
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_OK);
	CHECK_EQ_INT(m.ntags, IRC_TAGS_COUNT_MAX);
	CHECK_EQ_STR(irc_tag_get(&m, "t63"), "63");
	n += (size_t)sprintf(big + n, ";t%d", IRC_TAGS_COUNT_MAX);
	strcpy(big + n, " PING");
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_MALFORMED);
}

TEST(command_errors)
{
	struct irc_msg m;
	static const char *bad[] = {
		":src",          /* source and no command */
		":src   ",
		": PING",        /* empty source */
		":",
		"12 x",          /* two digits */
		"1234 x",        /* four digits */
		"PR1V x",        /* letters and digits */
		"PRIV;MSG x",
		":a :b",         /* trailing where the command goes */
		"\xc3\xa9T x",   /* non-ASCII command */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse(line, sizeof line, bad[i], &m);
		if (rc != IRC_MALFORMED)
			fprintf(stderr, "  line %zu: \"%s\" -> %d\n", i, bad[i], rc);
		CHECK_EQ_INT(rc, IRC_MALFORMED);
	}
	/* An unknown command with an underscore is a command (421 follows). */
	CHECK_EQ_INT(parse(line, sizeof line, "NONEXISTENT_COMMAND x", &m), IRC_OK);
	CHECK_EQ_STR(m.command, "NONEXISTENT_COMMAND");
}

TEST(empty_lines)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, "", &m), IRC_EMPTY);
	CHECK_EQ_INT(parse(line, sizeof line, " ", &m), IRC_EMPTY);
	CHECK_EQ_INT(parse(line, sizeof line, "      ", &m), IRC_EMPTY);
	CHECK_EQ_INT(parse(line, sizeof line, "\t", &m), IRC_MALFORMED); /* only spaces count */
}

TEST(nul_byte)
{
	struct irc_msg m;
	memcpy(line, "PRIVMSG #a :x\0y", 16);
	CHECK_EQ_INT(irc_parse(line, 15, &m), IRC_BAD_CHAR);
	memcpy(line, "\0PING", 6);
	CHECK_EQ_INT(irc_parse(line, 5, &m), IRC_BAD_CHAR);
}

TEST(params_limit)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, "X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15", &m), IRC_OK);
	CHECK_EQ_INT(m.nparams, IRC_PARAMS_MAX);
	CHECK_EQ_STR(m.params[14], "15");
	CHECK_EQ_INT(parse(line, sizeof line, "X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :15 and more", &m), IRC_OK);
	CHECK_EQ_INT(m.nparams, IRC_PARAMS_MAX);
	CHECK_EQ_STR(m.params[14], "15 and more");
	CHECK_EQ_INT(parse(line, sizeof line, "X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15   ", &m), IRC_OK);
	CHECK_EQ_INT(m.nparams, IRC_PARAMS_MAX);
	CHECK_EQ_INT(parse(line, sizeof line, "X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", &m), IRC_MALFORMED);
	CHECK_EQ_INT(parse(line, sizeof line, "X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 :", &m), IRC_MALFORMED);
}

/* "@" + a tag section of exactly n bytes + " PING". */
static void tags_of_len(size_t n)
{
	memcpy(big, "@k=", 3);
	repeat(big + 3, 'v', n - 2);
	strcat(big, " PING");
}

TEST(tag_section_limit)
{
	struct irc_msg m;
	tags_of_len(IRC_CLIENT_TAGS_MAX);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_OK);
	CHECK_EQ_INT(strlen(irc_tag_get(&m, "k")), IRC_CLIENT_TAGS_MAX - 2);
	tags_of_len(IRC_CLIENT_TAGS_MAX + 1);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_TOO_LONG);
	/* Without a space, the whole rest is the tag section. */
	big[0] = '@';
	repeat(big + 1, 'a', IRC_CLIENT_TAGS_MAX + 1);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_TOO_LONG);
	repeat(big + 1, 'a', IRC_CLIENT_TAGS_MAX);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_MALFORMED); /* no command */
}

/* prefix, then "PRIVMSG #a :" padded with 'x' to a body of n bytes. */
static void body_of_len(const char *prefix, size_t n)
{
	strcpy(big, prefix);
	strcat(big, "PRIVMSG #a :");
	repeat(big + strlen(big), 'x', n - 12);
}

TEST(body_limit)
{
	struct irc_msg m;
	body_of_len("", IRC_BODY_MAX - 2);
	CHECK_EQ_INT(strlen(big), 510);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_OK);
	CHECK_EQ_INT(strlen(m.params[1]), 510 - 12);
	body_of_len("", IRC_BODY_MAX - 1);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_TOO_LONG);

	/* The body is counted after the tags and the spaces after them. */
	body_of_len("@a=b     ", IRC_BODY_MAX - 2);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_OK);
	body_of_len("@a=b     ", IRC_BODY_MAX - 1);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_TOO_LONG);

	/* Both at their bound at once. */
	tags_of_len(IRC_CLIENT_TAGS_MAX);
	big[strlen(big) - 4] = '\0'; /* drop "PING", keep the space */
	strcpy(line, big);
	body_of_len("", IRC_BODY_MAX - 2);
	strcat(line, big);
	CHECK_EQ_INT(strlen(line), 1 + IRC_CLIENT_TAGS_MAX + 1 + IRC_BODY_MAX - 2);
	CHECK_EQ_INT(irc_parse(line, strlen(line), &m), IRC_OK);

	/* A too-long line is reported as such before its syntax is looked at. */
	repeat(big, '!', IRC_BODY_MAX - 1);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_TOO_LONG);
	repeat(big, '!', IRC_BODY_MAX - 2);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_MALFORMED);
}

TEST(parse_utf8)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, "PRIVMSG #caf\xc3\xa9 :h\xc3\xa9llo \xf0\x9f\x98\x80", &m), IRC_OK);
	CHECK_EQ_STR(m.params[0], "#caf\xc3\xa9");
	CHECK_EQ_STR(m.params[1], "h\xc3\xa9llo \xf0\x9f\x98\x80");
	CHECK_EQ_INT(parse(line, sizeof line, "PRIVMSG #a :\xc0\xaf", &m), IRC_BAD_UTF8);
	CHECK_EQ_INT(parse(line, sizeof line, "PRIVMSG #a :\xed\xa0\x80", &m), IRC_BAD_UTF8);
	CHECK_EQ_INT(parse(line, sizeof line, "PRIVMSG #a :abc\xe2\x82", &m), IRC_BAD_UTF8);
	CHECK_EQ_INT(parse(line, sizeof line, "PRIVMSG #a :\xf4\x90\x80\x80", &m), IRC_BAD_UTF8);
	CHECK_EQ_INT(parse(line, sizeof line, "@a=\xff PING", &m), IRC_BAD_UTF8);
	/* UTF-8 is checked before the limits... */
	body_of_len("", IRC_BODY_MAX + 10);
	big[20] = (char)0xff;
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_BAD_UTF8);
	/* ...and before the syntax. */
	CHECK_EQ_INT(parse(line, sizeof line, "\xff", &m), IRC_BAD_UTF8);
}

/* A CR inside a line is refused (NUL: nul_byte): a CR only ends a line (with LF),
 * and a client that ends lines at CR would read what follows it as a line
 * of its own. A tag value may still carry one escaped (\r). */
TEST(parse_bare_cr_and_nul)
{
	struct irc_msg m;
	CHECK_EQ_INT(parse(line, sizeof line, "PRIVMSG #a :hi\r:evil!e@x PRIVMSG #a :spoof", &m), IRC_BAD_CHAR);
	CHECK_EQ_INT(parse(line, sizeof line, "TOPIC #a :a\rb", &m), IRC_BAD_CHAR);
	CHECK_EQ_INT(parse(line, sizeof line, "\rPING x", &m), IRC_BAD_CHAR);
	CHECK_EQ_INT(parse(line, sizeof line, "@a=b\rc PING x", &m), IRC_BAD_CHAR);
	CHECK_EQ_INT(parse(line, sizeof line, "@a=b\\rc PING x", &m), IRC_OK);
	CHECK_EQ_STR(irc_tag_get(&m, "a"), "b\rc");
}

TEST(mask_match)
{
	CHECK(irc_mask_match("*!*@*", "bob!bob@chorus"));
	CHECK(irc_mask_match("BOB!*@*", "bob!bob@chorus"));
	CHECK(irc_mask_match("b?b!*@chorus", "bOb!x@chorus"));
	CHECK(!irc_mask_match("*b*!*", "alice!bob@chorus")); /* no "!" after a "b" */
	CHECK(irc_mask_match("*!*b*", "alice!bob@chorus"));
	CHECK(irc_mask_match("a*e!*@*", "alice!a@h"));
	CHECK(irc_mask_match("**a", "aaa"));
	CHECK(!irc_mask_match("bob!*@*", "bobby!bob@chorus"));
	CHECK(!irc_mask_match("*!*@example.org", "bob!bob@chorus"));
	CHECK(!irc_mask_match("?", ""));
	CHECK(irc_mask_match("*", ""));
	CHECK(!irc_mask_match("a*b", "aXbX"));
	CHECK(irc_mask_match("a*b*", "aXbX"));
}

TEST(tag_escape)
{
	char out[64];
	CHECK_EQ_INT(irc_tag_escape("plain", out, sizeof out), 5);
	CHECK_EQ_STR(out, "plain");
	CHECK_EQ_INT(irc_tag_escape("a;b c\\d\re\nf", out, sizeof out), 16);
	CHECK_EQ_STR(out, "a\\:b\\sc\\\\d\\re\\nf");
	CHECK_EQ_INT(irc_tag_escape("", out, sizeof out), 0);
	CHECK_EQ_STR(out, "");
	/* Exactly fitting, and one byte short. */
	CHECK_EQ_INT(irc_tag_escape("abc", out, 4), 3);
	CHECK_EQ_INT(irc_tag_escape("abc", out, 3), -1);
	CHECK_EQ_INT(irc_tag_escape("a b", out, 5), 4);
	CHECK_EQ_INT(irc_tag_escape("a b", out, 4), -1);
	CHECK_EQ_INT(irc_tag_escape("", out, 1), 0);
	CHECK_EQ_INT(irc_tag_escape("", out, 0), -1);

	/* Round trip through the parser. */
	const char *value = "x; \\\r\n\xc3\xa9\\s";
	struct irc_msg m;
	char esc[64];
	CHECK(irc_tag_escape(value, esc, sizeof esc) > 0);
	snprintf(big, sizeof big, "@+k=%s TAGMSG #a", esc);
	CHECK_EQ_INT(parse(line, sizeof line, big, &m), IRC_OK);
	CHECK_EQ_STR(irc_tag_get(&m, "+k"), value);
}

/* ---- reader -------------------------------------------------------------- */

static int feed_str(struct irc_reader *r, const char *s)
{
	return irc_reader_feed(r, s, strlen(s));
}

/* The next line as a string, or "<0>" / "<too long>" / "<rc>". */
static const char *next_line(struct irc_reader *r)
{
	static char out[IRC_LINE_MAX + 16];
	char *l;
	size_t n;
	int rc = irc_reader_next(r, &l, &n);
	if (rc == 1) {
		if (l[n] != '\0' || strlen(l) != n)
			return "<bad termination>";
		memcpy(out, l, n + 1);
		return out;
	}
	if (rc == 0)
		return "<0>";
	if (rc == IRC_TOO_LONG)
		return "<too long>";
	return "<rc>";
}

TEST(reader_lines)
{
	struct irc_reader r;
	irc_reader_init(&r, 4096);
	CHECK(r.buf == NULL);
	CHECK_EQ_INT(feed_str(&r, "NICK a\r\nUSER a 0 * :A\nPING x\r"), 0);
	CHECK_EQ_STR(next_line(&r), "NICK a");
	CHECK_EQ_STR(next_line(&r), "USER a 0 * :A");
	CHECK_EQ_STR(next_line(&r), "<0>"); /* "PING x\r" is not finished */
	CHECK_EQ_INT(irc_reader_pending(&r), 7);
	CHECK(r.buf != NULL);
	CHECK_EQ_INT(feed_str(&r, "\n\n\r\nA\rB\r\n"), 0);
	CHECK_EQ_STR(next_line(&r), "PING x");
	CHECK_EQ_STR(next_line(&r), ""); /* empty lines come out empty */
	CHECK_EQ_STR(next_line(&r), "");
	CHECK_EQ_STR(next_line(&r), "A\rB"); /* a bare CR stays */
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);
	CHECK_EQ_INT(irc_reader_pending(&r), 0);
	irc_reader_free(&r);
}

TEST(reader_partial_feeds)
{
	struct irc_reader r;
	const char *text = "@label=1 PRIVMSG #a :hello world\r\nPING :tok\r\n";
	irc_reader_init(&r, 4096);
	for (const char *p = text; *p; p++) {
		CHECK_EQ_INT(irc_reader_feed(&r, p, 1), 0);
		if (p[0] == '\n' && p < text + 40)
			CHECK_EQ_STR(next_line(&r), "@label=1 PRIVMSG #a :hello world");
		else if (p[0] == '\n')
			CHECK_EQ_STR(next_line(&r), "PING :tok");
		else
			CHECK_EQ_STR(next_line(&r), "<0>");
	}
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);

	/* The CR and the LF in different feeds. */
	CHECK_EQ_INT(feed_str(&r, "QUIT\r"), 0);
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK_EQ_INT(feed_str(&r, "\n"), 0);
	CHECK_EQ_STR(next_line(&r), "QUIT");
	CHECK_EQ_INT(irc_reader_feed(&r, "", 0), 0);
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);
	irc_reader_free(&r);
}

TEST(reader_line_valid_until_next_call)
{
	struct irc_reader r;
	char *a, *b;
	size_t na, nb;
	irc_reader_init(&r, 4096);
	CHECK_EQ_INT(feed_str(&r, "FIRST 1\nSECOND 2\nTHI"), 0);
	CHECK_EQ_INT(irc_reader_next(&r, &a, &na), 1);
	CHECK_EQ_STR(a, "FIRST 1");
	/* The line can be parsed in place. */
	struct irc_msg m;
	CHECK_EQ_INT(irc_parse(a, na, &m), IRC_OK);
	CHECK_EQ_STR(m.command, "FIRST");
	CHECK_EQ_INT(irc_reader_next(&r, &b, &nb), 1);
	CHECK_EQ_STR(b, "SECOND 2");
	CHECK_EQ_INT(feed_str(&r, "RD 3\n"), 0);
	CHECK_EQ_STR(next_line(&r), "THIRD 3");
	irc_reader_free(&r);
	CHECK(r.buf == NULL);
}

/* A line of n 'x' bytes. */
static void long_line(size_t n)
{
	repeat(big, 'x', n);
}

TEST(reader_line_limit)
{
	struct irc_reader r;
	irc_reader_init(&r, 16384);
	/* Exactly IRC_LINE_MAX, with CR LF and with LF. */
	long_line(IRC_LINE_MAX);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(feed_str(&r, "\r\n"), 0);
	CHECK_EQ_INT(strlen(next_line(&r)), IRC_LINE_MAX);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(feed_str(&r, "\n"), 0);
	CHECK_EQ_INT(strlen(next_line(&r)), IRC_LINE_MAX);
	CHECK_EQ_STR(next_line(&r), "<0>");

	/* One past, whole in one feed, reported once, the next line intact. */
	long_line(IRC_LINE_MAX + 1);
	strcat(big, "\r\nPING 1\r\n");
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_STR(next_line(&r), "<too long>");
	CHECK_EQ_STR(next_line(&r), "PING 1");
	CHECK_EQ_STR(next_line(&r), "<0>");
	long_line(IRC_LINE_MAX + 1);
	strcat(big, "\nPING 2\n");
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_STR(next_line(&r), "<too long>");
	CHECK_EQ_STR(next_line(&r), "PING 2");
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);
	irc_reader_free(&r);
}

TEST(reader_overlong_across_feeds)
{
	struct irc_reader r;
	irc_reader_init(&r, 16384);

	/* Reported as soon as it is known, once; the rest, arriving later,
	 * is dropped up to its LF without being held. */
	CHECK_EQ_INT(feed_str(&r, "PING a\r\n"), 0);
	long_line(3000);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK(irc_reader_pending(&r) <= IRC_LINE_MAX + 2 + 8);
	CHECK_EQ_STR(next_line(&r), "PING a");
	CHECK_EQ_STR(next_line(&r), "<too long>");
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);
	CHECK(r.discarding);
	for (int i = 0; i < 10; i++) {
		CHECK_EQ_INT(feed_str(&r, big), 0);
		CHECK_EQ_INT(irc_reader_pending(&r), 0);
		CHECK_EQ_STR(next_line(&r), "<0>");
	}
	CHECK_EQ_INT(feed_str(&r, "xxx\r\nPING b\r\nPI"), 0);
	CHECK(!r.discarding);
	CHECK_EQ_STR(next_line(&r), "PING b");
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK_EQ_INT(feed_str(&r, "NG c\n"), 0);
	CHECK_EQ_STR(next_line(&r), "PING c");

	/* The end of the over-long line comes before it is looked at:
	 * still reported once, in order. */
	CHECK_EQ_INT(feed_str(&r, "PING d\n"), 0);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(feed_str(&r, "tail\nPING e\n"), 0);
	CHECK_EQ_STR(next_line(&r), "PING d");
	CHECK_EQ_STR(next_line(&r), "<too long>");
	CHECK_EQ_STR(next_line(&r), "PING e");
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);

	/* Split one byte past the limit: the CR that would have saved it
	 * never comes. */
	long_line(IRC_LINE_MAX);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK_EQ_INT(feed_str(&r, "\r"), 0);
	CHECK_EQ_STR(next_line(&r), "<0>"); /* still could be CR LF */
	CHECK_EQ_INT(feed_str(&r, "y"), 0);
	CHECK_EQ_STR(next_line(&r), "<too long>");
	CHECK_EQ_INT(feed_str(&r, "\nOK\n"), 0);
	CHECK_EQ_STR(next_line(&r), "OK");
	CHECK_EQ_STR(next_line(&r), "<0>");
	irc_reader_free(&r);
}

TEST(reader_recvq)
{
	struct irc_reader r;
	irc_reader_init(&r, 16);
	CHECK_EQ_INT(feed_str(&r, "0123456789"), 0);
	CHECK_EQ_INT(feed_str(&r, "0123456"), -1); /* 17 > 16: nothing added */
	CHECK_EQ_INT(irc_reader_pending(&r), 10);
	CHECK_EQ_INT(feed_str(&r, "012345"), 0);    /* exactly 16 */
	CHECK_EQ_INT(irc_reader_pending(&r), 16);
	CHECK_EQ_INT(feed_str(&r, "\n"), -1);
	CHECK_EQ_STR(next_line(&r), "<0>");
	irc_reader_free(&r);

	/* Lines taken out free their room. */
	irc_reader_init(&r, 16);
	CHECK_EQ_INT(feed_str(&r, "AAAA\nBBBB\nCCCC\n"), 0);
	CHECK_EQ_INT(feed_str(&r, "DD\n"), -1);
	CHECK_EQ_STR(next_line(&r), "AAAA");
	CHECK_EQ_INT(feed_str(&r, "DD\n"), 0);
	CHECK_EQ_STR(next_line(&r), "BBBB");
	CHECK_EQ_STR(next_line(&r), "CCCC");
	CHECK_EQ_STR(next_line(&r), "DD");
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);
	irc_reader_free(&r);

	/* Bytes of an over-long line being dropped do not count. */
	irc_reader_init(&r, IRC_LINE_MAX + 2 + 16);
	long_line(IRC_LINE_MAX + 2);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_STR(next_line(&r), "<too long>");
	long_line(6000);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(irc_reader_pending(&r), 0);
	CHECK_EQ_INT(feed_str(&r, "\nPING\n"), 0);
	CHECK_EQ_STR(next_line(&r), "PING");
	/* Nor do they while the stub waits to be reported. */
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(irc_reader_pending(&r), IRC_LINE_MAX + 2);
	CHECK_EQ_INT(feed_str(&r, big), 0);
	CHECK_EQ_INT(feed_str(&r, "x\nPING 2\n"), 0);
	CHECK_EQ_STR(next_line(&r), "<too long>");
	CHECK_EQ_STR(next_line(&r), "PING 2");
	CHECK_EQ_STR(next_line(&r), "<0>");
	irc_reader_free(&r);

	/* A small queue that cannot hold a line. */
	irc_reader_init(&r, 0);
	CHECK_EQ_INT(feed_str(&r, "x"), -1);
	CHECK_EQ_INT(irc_reader_feed(&r, "", 0), 0);
	irc_reader_free(&r);
}

TEST(reader_freed_when_empty)
{
	struct irc_reader r;
	irc_reader_init(&r, 4096);
	CHECK_EQ_INT(feed_str(&r, "A\nB\n"), 0);
	CHECK(r.buf != NULL);
	CHECK_EQ_STR(next_line(&r), "A");
	CHECK_EQ_STR(next_line(&r), "B"); /* still in the buffer, which stays */
	CHECK(r.buf != NULL);
	CHECK_EQ_INT(irc_reader_pending(&r), 0);
	CHECK_EQ_STR(next_line(&r), "<0>");
	CHECK(r.buf == NULL);
	CHECK_EQ_INT(r.cap, 0);
	/* Freed also when a feed comes while it is empty and adds nothing. */
	CHECK_EQ_INT(feed_str(&r, "C\n"), 0);
	CHECK_EQ_STR(next_line(&r), "C");
	CHECK_EQ_INT(irc_reader_feed(&r, "", 0), 0);
	CHECK(r.buf == NULL);
	irc_reader_free(&r);
}

int main(void)
{
	RUN(simple_command);
	RUN(source_and_trailing);
	RUN(many_spaces);
	RUN(tags);
	RUN(tag_duplicates);
	RUN(tag_syntax_errors);
	RUN(parse_bare_cr_and_nul);
	RUN(tag_count_limit);
	RUN(command_errors);
	RUN(empty_lines);
	RUN(nul_byte);
	RUN(params_limit);
	RUN(tag_section_limit);
	RUN(body_limit);
	RUN(parse_utf8);
	RUN(tag_escape);
	RUN(mask_match);
	RUN(reader_lines);
	RUN(reader_partial_feeds);
	RUN(reader_line_valid_until_next_call);
	RUN(reader_line_limit);
	RUN(reader_overlong_across_feeds);
	RUN(reader_recvq);
	RUN(reader_freed_when_empty);
	return CHECK_DONE();
}
