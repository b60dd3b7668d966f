/*
 * op.h: the operation, the unit of every change in chorus.
 *
 * Every change a user makes (a room message, a direct message, a like or
 * unlike, a topic, a room's creation, a user's first appearance, a follow or
 * unfollow, a post) becomes one operation. Operations are multicast to the
 * group, stored, and applied to the chat state. Applying one twice changes
 * nothing.
 *
 * Identity: an operation is named by its stream and its seq. A stream is one
 * run of one replica: (origin replica id, incarnation, boot). The incarnation
 * is random and made with the data directory; boot counts the starts of that
 * data directory and is stored before the replica multicasts anything, so a
 * number handed out before a crash is never reused after it (see
 * docs/DESIGN-NOTES.md). seq counts from 1 within a stream, without gaps.
 *
 * Order: rooms are ordered by (lts, origin, incarnation, boot, seq), see op_cmp.
 */
#ifndef CHORUS_OP_H
#define CHORUS_OP_H

#include <stddef.h>
#include <stdint.h>

/* Kinds. The numbers are stored on disk and sent on the wire: never renumber. */
enum op_kind {
	OP_USER = 1,     /* a user's first appearance: author; no target */
	OP_ROOM = 2,     /* a room's creation: target "#room", author creator */
	OP_MSG = 3,      /* PRIVMSG/NOTICE to a room: target "#room", body text */
	OP_DM = 4,       /* direct message: target the recipient's nick */
	OP_LIKE = 5,     /* author likes message ref in room/conversation target; body = reaction */
	OP_UNLIKE = 6,   /* author removes their like of ref; body = reaction */
	OP_TOPIC = 7,    /* target's topic becomes body (last writer wins) */
	OP_FOLLOW = 8,   /* author follows target (a nick); last writer wins per pair */
	OP_UNFOLLOW = 9, /* author unfollows target */
	OP_POST = 10,    /* author posts body to their feed; target "&timeline" */
	OP_REGISTER = 11,   /* author registers the account author: body its SCRAM
	                     * verifier (never a password), target an email or "" */
	OP_PASSWORD = 12,   /* the owner of registration ref (an OP_REGISTER msgid)
	                     * sets its verifier to body */
	OP_UNREGISTER = 13, /* the owner of registration ref removes the account */
	OP_MODE = 14,       /* changes of room target's modes: body "+x-y..." (a sign for
	                     * each), ref their parameters, space-separated, for those
	                     * that take one (a person for o/v, a mask for b/e/I, the
	                     * key of +k, the limit of +l) */
	OP_KICK = 15,       /* author kicks person ref out of room target; body the reason */
	OP_INVITE = 16,     /* author invites person ref into room target */
};

/* Flags carried with an operation. */
enum op_flag {
	OP_FLAG_NOTICE = 1, /* OP_MSG/OP_DM that was sent as NOTICE */
};

/* The identity of one stream: one run of one replica's data directory. */
struct op_stream {
	uint32_t origin;      /* replica id, 1..255 */
	uint64_t incarnation; /* random, made with the data directory */
	uint32_t boot;        /* start count of that data directory, from 1 */
};

struct op {
	struct op_stream stream;
	uint64_t seq;    /* 1.. within the stream, no gaps */
	uint64_t lts;    /* Lamport time, given by the origin at creation (>= 1) */
	int64_t wall_ms; /* origin's wall clock at creation: kept, not shown (see op_time_ms) */
	uint8_t kind;    /* enum op_kind */
	uint8_t flags;   /* enum op_flag bits */
	char *target;    /* "#room", a nick, or "" */
	char *author;    /* the nick that made it */
	char *body;      /* text, or "" */
	char *ref;       /* referenced msgid (likes, account changes), the
	                  * recipient's account (OP_DM), or "" */
	char *account;   /* the author's account: the msgid of the OP_REGISTER
	                  * they were logged in to, or "" (no account) */
	char *tags;      /* OP_MSG/OP_DM: the client-only tags it was sent with,
	                  * as on the wire ("+a=b;+c", escaped), or "" */
};

/* An lts is a time in ms shifted left by OP_LTS_SHIFT plus a count (see
 * repl_submit). */
#define OP_LTS_SHIFT 16

/* The canonical time of op in ms: the time part of its lts. It is what a
 * line is shown with (server-time) and what CHATHISTORY time anchors
 * compare, and it never falls along the canonical order. It is the origin's
 * wall clock when it made op, unless that clock was behind an op it had
 * already seen (or more than REPL_SKEW_MAX_MS ahead of the others): then a
 * little after that op's. (docs/DESIGN-NOTES.md "Canonical time".) */
static inline int64_t op_time_ms(const struct op *op)
{
	return (int64_t)(op->lts >> OP_LTS_SHIFT);
}

/* Longest msgid op_msgid writes, with its NUL. */
#define OP_MSGID_MAX 64

/* Writes the msgid of op into buf (at least OP_MSGID_MAX bytes): a string
 * unique to (stream, seq), valid as an IRCv3 tag value and as a CHATHISTORY
 * msgid= reference. */
void op_msgid(const struct op *op, char *buf, size_t len);

/* Parses a msgid made by op_msgid back into stream and seq. Returns 0, or -1
 * if s is not one. */
int op_msgid_parse(const char *s, struct op_stream *stream, uint64_t *seq);

/* The client tag that names a line once for its sender (exactly-once sends:
 * a second message of one person with the same id is the same line), and
 * the longest id, with its NUL. */
#define OP_CID_TAG "+chorus/cid"
#define OP_CID_MAX 65
/* The client id of op into out (OP_CID_MAX bytes): 1 if op is an OP_MSG or
 * OP_DM whose tags carry OP_CID_TAG with a value of 1 to 64 letters, digits,
 * '-', '_' or '.'; else 0 (out ""). */
int op_client_id(const struct op *op, char out[OP_CID_MAX]);

/* Canonical order: by lts, then origin, incarnation, boot, seq. Returns <0, 0, >0. */
int op_cmp(const struct op *a, const struct op *b);

/* A position in the canonical order: an op's (lts, stream, seq); with seq 0
 * (no op has it) a bound between positions. */
struct op_key {
	uint64_t lts;
	struct op_stream stream;
	uint64_t seq;
};
struct op_key op_key_of(const struct op *op);
/* The canonical time of the op at k (op_time_ms). */
static inline int64_t op_key_time_ms(const struct op_key *k)
{
	return (int64_t)(k->lts >> OP_LTS_SHIFT);
}
/* Compares keys in op_cmp's order. */
int op_key_cmp(const struct op_key *a, const struct op_key *b);
/* The key at the edge of canonical time ms (op_time_ms), which no op has:
 * every op of time ms or earlier sorts before it if after, else every op of
 * time ms or later sorts after it. Times past the largest lts clamp to it,
 * times before 1970 to 0. What a CHATHISTORY timestamp is a position by. */
struct op_key op_key_at_time(int64_t ms, int after);
/* Writes k as OP_KEY_BYTES big-endian bytes (lts, origin, incarnation,
 * boot, seq): memcmp orders them as op_key_cmp does. */
#define OP_KEY_BYTES 32
void op_key_bytes(const struct op_key *k, uint8_t out[OP_KEY_BYTES]);
/* The key op_key_bytes wrote as b. */
struct op_key op_key_of_bytes(const uint8_t b[OP_KEY_BYTES]);

/* Stream equality and order (origin, incarnation, boot). */
int op_stream_cmp(const struct op_stream *a, const struct op_stream *b);

/* Deep copy: every string is duplicated. */
void op_copy(struct op *dst, const struct op *src);

/* Frees the strings of op (not op itself) and zeroes them. */
void op_clear(struct op *op);
/* Moves src into dst: dst gets src's fields and its strings, src's string
 * fields become NULL (nothing is freed or copied). */
void op_move(struct op *dst, struct op *src);

/* Sets every string field to "" (allocated) where it is NULL. */
void op_fill_empty(struct op *op);

/*
 * Wire codec: a versioned, bounds-checked binary encoding of a list of
 * operations, used for group multicast and anywhere ops cross a process.
 * Layout (op.c): u8 version (OP_CODEC_VERSION), varint count, then each op,
 * its numbers as varints of the change from the op before it and its
 * target, author and account left out where they repeat.
 */
#define OP_CODEC_VERSION 4 /* 2: account; 3: tags; 4: varints and repeats */
#define OP_FIELD_MAX (64 * 1024) /* longest string field accepted by the decoder */

struct op_buf {
	uint8_t *data;
	size_t len, cap;
};

/* Appends the encoding of n ops to out (which may hold earlier bytes). */
void op_encode(struct op_buf *out, const struct op *ops, size_t n);
/* The most bytes op can take in an encoding (for sizing messages). */
size_t op_encoded_max(const struct op *op);

/* Decodes a buffer made by op_encode. On success returns 0 and sets *ops to a
 * new array of *n ops (free with op_free_array). Returns -1 on any malformed,
 * truncated or wrong-version input, leaving *ops NULL. */
int op_decode(const uint8_t *data, size_t len, struct op **ops, size_t *n);

void op_free_array(struct op *ops, size_t n);

/* Little-endian building blocks of the codec, for other wire formats. */
void op_buf_put_bytes(struct op_buf *b, const void *p, size_t n);
void op_buf_put_u(struct op_buf *b, uint64_t v, int width);

struct op_reader {
	const uint8_t *p;
	size_t left;
	int bad; /* set once a read ran past the end; later reads return 0 */
};
/* Reads a width-byte little-endian number, or sets r->bad. */
uint64_t op_read_u(struct op_reader *r, int width);
/* Strings: u32 length then the bytes (no NUL; at most OP_FIELD_MAX). */
void op_buf_put_str(struct op_buf *b, const char *s);
/* A new string, or NULL with r->bad set if malformed. */
char *op_read_str(struct op_reader *r);
void op_buf_free(struct op_buf *b);

#endif
