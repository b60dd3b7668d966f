/*
 * irc.h: the IRC wire format with IRCv3 message tags: splitting a byte stream
 * into lines, parsing a line into a message, escaping tag values, and
 * checking UTF-8. Bounds-checked throughout; nothing here allocates per line
 * except the reader's carry-over buffer.
 *
 * Limits (modern IRC + IRCv3 message-tags):
 *   - the part after the tags (prefix, command, params) is at most
 *     IRC_BODY_MAX bytes including the CR LF;
 *   - the tag section sent by a client ('@' .. the space) is at most
 *     IRC_CLIENT_TAGS_MAX bytes of tag data;
 *   - at most IRC_PARAMS_MAX parameters and IRC_TAGS_COUNT_MAX tags.
 */
#ifndef CHORUS_IRC_H
#define CHORUS_IRC_H

#include <stddef.h>

#define IRC_BODY_MAX 512          /* bytes after the tag section, CR LF included */
#define IRC_CLIENT_TAGS_MAX 4094  /* bytes of client tag data, without '@' and the space */
#define IRC_TAGS_COUNT_MAX 64
#define IRC_PARAMS_MAX 15
/* Longest line the reader accepts before it reports IRC_TOO_LONG: '@',
 * client tags, space, body. */
#define IRC_LINE_MAX (1 + IRC_CLIENT_TAGS_MAX + 1 + IRC_BODY_MAX)

enum irc_status {
	IRC_OK = 0,
	IRC_EMPTY = 1,        /* blank line: ignore it */
	IRC_TOO_LONG = -1,    /* a limit above exceeded: answer 417, drop the line */
	IRC_MALFORMED = -2,   /* no command, bad tag syntax, too many params or tags */
	IRC_BAD_UTF8 = -3,    /* not valid UTF-8 */
	IRC_BAD_CHAR = -4,    /* a CR or NUL inside the line (a CR only ends a line, with LF) */
};

struct irc_tag {
	char *key;   /* e.g. "+draft/react", "label" */
	char *value; /* unescaped; "" when the tag had no value or an empty one */
};

/* A parsed line. Every pointer points into the line buffer given to irc_parse. */
struct irc_msg {
	struct irc_tag tags[IRC_TAGS_COUNT_MAX];
	size_t ntags;
	char *source;                 /* prefix without ':', or NULL */
	char *command;                /* as sent; compare case-insensitively */
	char *params[IRC_PARAMS_MAX];
	size_t nparams;               /* the trailing parameter is counted like any other */
};

/*
 * Parses one line (without CR/LF, NUL-terminated, len bytes) in place: the
 * buffer is cut into the message's strings and tag values are unescaped.
 * Checks, in this order: emptiness, UTF-8 of the whole line, no CR or NUL in
 * it (a client that ends lines at CR would read what follows a bare CR as
 * a line of its own), the tag section and body limits, then syntax. Returns an enum irc_status; *m is valid only
 * for IRC_OK.
 */
int irc_parse(char *line, size_t len, struct irc_msg *m);

/* Value of tag key in m, or NULL if absent. */
const char *irc_tag_get(const struct irc_msg *m, const char *key);

/* Appends value escaped per message-tags (\: \s \\ \r \n) to out, which has
 * room for cap bytes including the NUL. Returns the length written, or -1 if
 * it does not fit (out then holds nothing useful). */
long irc_tag_escape(const char *value, char *out, size_t cap);

/* 1 if subject matches the IRC mask (a ban's "nick!user@host" pattern):
 * '*' any run of characters, '?' any one, letters in any case (ASCII). */
int irc_mask_match(const char *mask, const char *subject);

/*
 * The line reader: bytes from a socket in, whole lines out. It holds only the
 * bytes not yet taken as lines (the receive queue), allocating that buffer
 * only while it is non-empty, so an idle connection costs nothing here.
 */
struct irc_reader {
	char *buf;
	size_t len, cap;
	size_t recvq_max;   /* most bytes held at once; feeding past it fails */
	int discarding;     /* inside an over-long line: drop up to the next LF */
};

void irc_reader_init(struct irc_reader *r, size_t recvq_max);
/* Adds n bytes. Returns 0, or -1 if holding them would exceed recvq_max
 * (nothing is added then: the caller disconnects the flooder). */
int irc_reader_feed(struct irc_reader *r, const char *data, size_t n);
/*
 * Takes the next complete line. Returns 1 with *line (NUL-terminated, CR/LF
 * removed, possibly empty, valid until the next call on r) and *len set; 0 if
 * no complete line is held; IRC_TOO_LONG once for each line longer than
 * IRC_LINE_MAX (its bytes are dropped, up to and including its LF, even if
 * they are still to come).
 */
int irc_reader_next(struct irc_reader *r, char **line, size_t *len);
/* Bytes held. */
size_t irc_reader_pending(const struct irc_reader *r);
void irc_reader_free(struct irc_reader *r);

#endif
