/*
 * test_chat.c: the chat state machine's contract (chat.h), each chat paired
 * with a store in memory as a replica's is: idempotence, users and rooms
 * with case-insensitive names and convergent spellings, canonical message
 * order, DM conversations, topics and likes (last writer wins, one's own
 * likes ignored, placeholders for messages not yet arrived), follows (last
 * writer wins, following oneself ignored), feeds and timelines (posts
 * before the follow in force excluded, limits, order, selections), the
 * histories' caches, malformed ops, the CHATHISTORY selections of the
 * store and their edge cases; then a convergence property test: random op
 * sets applied in shuffled orders with duplicates must give equal digests
 * and histories, checked against a brute-force oracle; snapshots taken
 * anywhere and restored; and the store's message index (src/store/
 * msgindex.c), fed the same random op sets in shuffled batches with
 * duplicates at several lags, must answer as the chat's store does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "check.h"
#include "common/util.h"
#include "store/store.h"

/* ---- helpers ---- */

/* An op of stream (origin, incarnation 0xabc0 + origin, boot 1); its wall
 * time is lts seconds unless the test changes it. Strings are not copied. */
static struct op mk(uint32_t origin, uint64_t seq, uint64_t lts, uint8_t kind, const char *author,
		    const char *target, const char *body, const char *ref)
{
	struct op op = {0};
	op.stream.origin = origin;
	op.stream.incarnation = 0xabc0 + origin;
	op.stream.boot = 1;
	op.seq = seq;
	op.lts = lts;
	op.wall_ms = (int64_t)(lts * 1000u); /* wraps for the huge lts of some tests */
	op.kind = kind;
	op.author = (char *)author;
	op.target = (char *)target;
	op.body = (char *)body;
	op.ref = (char *)ref;
	return op;
}

static struct op msg(uint32_t origin, uint64_t seq, uint64_t lts, const char *author,
		     const char *room, const char *body)
{
	return mk(origin, seq, lts, OP_MSG, author, room, body, "");
}

/* ---- each chat with its store ----
 * Every chat here is paired with a store in memory, as a replica's is:
 * tapply() stores the op, then applies it with the store's fact, as
 * repl_stored does; what the chat does not hold (messages, like states) is
 * read from the store. */
#define MAX_CHATS 8

static struct chat_store {
	struct chat *c;
	struct store *st;
} pairs[MAX_CHATS];

static struct chat *tchat_new(void)
{
	for (int i = 0; i < MAX_CHATS; i++)
		if (!pairs[i].c) {
			pairs[i].c = chat_new();
			pairs[i].st = store_memory_new();
			return pairs[i].c;
		}
	abort(); /* more chats at once than a test needs */
}

static struct store *store_of(const struct chat *c)
{
	for (int i = 0; i < MAX_CHATS; i++)
		if (pairs[i].c == c)
			return pairs[i].st;
	abort();
}

static void tchat_free(struct chat *c)
{
	for (int i = 0; c && i < MAX_CHATS; i++)
		if (pairs[i].c == c) {
			store_close(pairs[i].st);
			memset(&pairs[i], 0, sizeof pairs[i]);
		}
	chat_free(c);
}

/* Stores op in c's store, then applies it with the store's fact. */
static int tapply(struct chat *c, const struct op *op, struct chat_effect *eff)
{
	struct chat_fact fact;
	CHECK_EQ_INT(store_append(store_of(c), op, 1, &fact), STORE_OK);
	return chat_apply(c, op, &fact, eff);
}

/* Messages read from a store, as chat_msgs pointing into it, kept until the
 * pool's next read. */
struct pool {
	struct store_msgs found;
	struct chat_msg *msgs;
};
static struct pool sel_pool, whole_pool;

/* Takes what a read (status rc) found into pool, its messages into out.
 * Returns how many, or -1 for STORE_NOTFOUND. */
static long pooled(struct pool *p, int rc, struct store_msgs *found, const struct chat_msg **out)
{
	CHECK(rc == STORE_OK || rc == STORE_NOTFOUND);
	store_msgs_free(&p->found);
	p->found = *found;
	p->msgs = xrealloc(p->msgs, (found->n + 1) * sizeof *p->msgs);
	for (size_t i = 0; i < found->n; i++) {
		p->msgs[i].op = found->ops[i];
		op_msgid(&found->ops[i], p->msgs[i].msgid, sizeof p->msgs[i].msgid);
		p->msgs[i].likes = found->likes[i];
		out[i] = &p->msgs[i];
	}
	return rc == STORE_NOTFOUND ? -1 : (long)found->n;
}

/* The selection s of history hist of c's store (store_select), into out;
 * -1 if a msgid anchor names no message of it. */
static long sel(struct chat *c, const char *hist, enum store_select s, const struct store_anchor *a,
		const struct store_anchor *b, size_t limit, const struct chat_msg **out)
{
	struct store_msgs found;
	int rc = store_select(store_of(c), hist, s, a, b, limit, &found);
	return pooled(&sel_pool, rc, &found, out);
}

/* The whole history hist of c's store, ascending (its own pool). */
static long whole(struct chat *c, const char *hist, const struct chat_msg **out)
{
	struct store_msgs found;
	int rc = store_history(store_of(c), hist, NULL, NULL, SIZE_MAX, 0, &found);
	return pooled(&whole_pool, rc, &found, out);
}

static void add_feed(const char *hist, const struct op_key *from, void *arg)
{
	struct store_feed **f = arg;
	(*f)->hist = xstrdup(hist);
	(*f)->from = *from;
	(*f)++;
}

/* A selection of person's timeline (store_timeline over the feeds
 * chat_timeline_feeds gives), into out; -1 if a msgid anchor names no
 * post. */
static long tl_sel(struct chat *c, const char *person, const struct store_anchor *after,
		   const struct store_anchor *before, size_t limit, int from_end, const struct chat_msg **out)
{
	struct store_feed feeds[16], *end = feeds;
	struct store_msgs found;
	chat_timeline_feeds(c, person, add_feed, &end);
	int rc = store_timeline(store_of(c), feeds, (size_t)(end - feeds), after, before, limit, from_end, &found);
	for (struct store_feed *f = feeds; f < end; f++)
		free(f->hist);
	return pooled(&sel_pool, rc, &found, out);
}

/* The last limit posts of person's timeline. */
static size_t timeline_last(struct chat *c, const char *person, size_t limit, const struct chat_msg **out)
{
	long n = tl_sel(c, person, NULL, NULL, limit, 1, out);
	CHECK(n >= 0);
	return n < 0 ? 0 : (size_t)n;
}

/* The like count of the stored message id (any spelling), or -1 if none. */
static long likes_of(struct chat *c, const char *id)
{
	struct store_msgs m;
	int liked;
	int rc = store_message(store_of(c), id, "", &m, &liked);
	CHECK(rc == STORE_OK || rc == STORE_NOTFOUND);
	long n = rc == STORE_OK ? (long)m.likes[0] : -1;
	if (rc == STORE_OK)
		store_msgs_free(&m);
	return n;
}

/* 1 if the stored message id is liked by the bare nick (any case), as the
 * store counts it (one's own like never). */
static int liked_by(struct chat *c, const char *id, const char *nick)
{
	struct store_msgs m;
	int liked = 0;
	char *person = chat_casefold(nick);
	if (store_message(store_of(c), id, person, &m, &liked) == STORE_OK)
		store_msgs_free(&m);
	free(person);
	return liked;
}

/* The room (or any history key) hist's bodies in order, space-separated,
 * into out (a char[512]). */
static const char *bodies_of(struct chat *c, const char *hist, char *out)
{
	const struct chat_msg *all[64];
	long n = whole(c, hist, all);
	out[0] = '\0';
	for (long i = 0; i < n && i < 64; i++) {
		strcat(out, i ? " " : "");
		strcat(out, all[i]->op.body);
	}
	return out;
}

/* Applies op, which must be valid; returns its change. */
static enum chat_change apply(struct chat *c, struct op op)
{
	struct chat_effect eff;
	int rc = tapply(c, &op, &eff);
	CHECK_EQ_INT(rc, 0);
	return eff.change;
}

static struct chat_effect apply_eff(struct chat *c, struct op op)
{
	struct chat_effect eff;
	CHECK_EQ_INT(tapply(c, &op, &eff), 0);
	return eff;
}

struct msgid {
	char s[OP_MSGID_MAX];
};

static struct msgid mid(struct op op)
{
	struct msgid m;
	op_msgid(&op, m.s, sizeof m.s);
	return m;
}

static struct op like(uint32_t origin, uint64_t seq, uint64_t lts, const char *author,
		      const char *target, const char *ref)
{
	return mk(origin, seq, lts, OP_LIKE, author, target, "+1", ref);
}

static struct op unlike(uint32_t origin, uint64_t seq, uint64_t lts, const char *author,
			const char *target, const char *ref)
{
	return mk(origin, seq, lts, OP_UNLIKE, author, target, "+1", ref);
}

/* The full digest of c: its store's part and its own. */
static void digest_of(const struct chat *c, char out[65])
{
	char part[65];
	CHECK_EQ_INT(store_digest(store_of(c), part), STORE_OK);
	chat_digest(c, part, out);
}

/* Appends each visited name to a comma-separated list in arg (a char[256]). */
static void add_nick(const char *nick, void *arg)
{
	strcat(arg, nick);
	strcat(arg, ",");
}

static void add_room(struct chat_room *room, void *arg)
{
	strcat(arg, room->name);
	strcat(arg, ",");
}

static void add_peer(const char *peer, struct chat_history *h, void *arg)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%s:%zu,", peer, chat_history_len(h));
	strcat(arg, buf);
}

/* ---- basics ---- */

/* The op list codec: every field round-trips, whatever changes from op to
 * op (streams, lts and wall time back and forth, numbers at their limits,
 * repeated and changed strings); a batch of one stream's lines costs a few
 * bytes per line besides its text; an input that is not the one encoding
 * of its ops is refused. */
TEST(op_codec)
{
	struct op ops[6];
	for (int i = 0; i < 6; i++)
		ops[i] = mk(1, (uint64_t)i + 1, 100 + (uint64_t)i, OP_MSG, "alice", "#r", "text", "");
	ops[1].stream.incarnation = 0xf000000000000001ULL; /* another stream, top bit set */
	ops[1].lts = 3;                                    /* backwards */
	ops[1].wall_ms = -5;
	ops[2].seq = 1ULL << 62;
	ops[2].lts = UINT64_MAX;
	ops[3].author = "bob";
	ops[3].tags = "+draft/reply=x";
	ops[4].account = "1-00000000000000ab-1-1";
	ops[5].kind = OP_LIKE;
	ops[5].ref = "1-0000000000abc001-1-1";
	struct op_buf b = {0};
	op_encode(&b, ops, 6);
	struct op *got;
	size_t n;
	CHECK_EQ_INT(op_decode(b.data, b.len, &got, &n), 0);
	CHECK_EQ_INT(n, 6);
	for (size_t i = 0; i < n && i < 6; i++) {
		CHECK(op_stream_cmp(&got[i].stream, &ops[i].stream) == 0 && got[i].seq == ops[i].seq);
		CHECK(got[i].lts == ops[i].lts && got[i].wall_ms == ops[i].wall_ms);
		CHECK(got[i].kind == ops[i].kind && got[i].flags == ops[i].flags);
		CHECK_EQ_STR(got[i].target, ops[i].target);
		CHECK_EQ_STR(got[i].author, ops[i].author);
		CHECK_EQ_STR(got[i].body, ops[i].body);
		CHECK_EQ_STR(got[i].ref, ops[i].ref ? ops[i].ref : "");
		CHECK_EQ_STR(got[i].account, ops[i].account ? ops[i].account : "");
		CHECK_EQ_STR(got[i].tags, ops[i].tags ? ops[i].tags : "");
	}
	op_free_array(got, n);
	op_buf_free(&b);

	/* A resend batch: 256 lines of 64 bytes of one stream in one room. */
	static struct op batch[256];
	static char body[65];
	memset(body, 'x', 64);
	for (int i = 0; i < 256; i++) {
		batch[i] = mk(3, 1000 + (uint64_t)i, ((uint64_t)1796000000000 << 16) + 7 * (uint64_t)i, OP_MSG,
			      "hc1", "#hr0", body, "");
		batch[i].wall_ms = 1796000000000 + i / 3;
	}
	op_encode(&b, batch, 256);
	CHECK(b.len <= 256 * (64 + 10));
	op_buf_free(&b);

	/* Not the encoding op_encode makes: refused. */
	static const uint8_t padded_count[] = {OP_CODEC_VERSION, 0x80, 0x00};
	static const uint8_t first_marked[] = {OP_CODEC_VERSION, 1, 1, 1, 1, 1, 1, 2, 0, 3, 0,
					       2, '#', 'a', 1, 'x', 0, 0, 0, 0};
	static const uint8_t unmarked[] = {OP_CODEC_VERSION, 2,
					   0, 1, 1, 1, 1, 2, 0, 3, 0, 2, '#', 'a', 1, 'x', 0, 0, 0, 0,
					   1 | 4 | 8, 0, 0, 0, 3, 0, 2, '#', 'a', 0, 0, 0};
	static const uint8_t marked[] = {OP_CODEC_VERSION, 2,
					 0, 1, 1, 1, 1, 2, 0, 3, 0, 2, '#', 'a', 1, 'x', 0, 0, 0, 0,
					 1 | 2 | 4 | 8, 0, 0, 0, 3, 0, 0, 0, 0};
	CHECK_EQ_INT(op_decode(padded_count, sizeof padded_count, &got, &n), -1);
	CHECK_EQ_INT(op_decode(first_marked, sizeof first_marked, &got, &n), -1);
	CHECK_EQ_INT(op_decode(unmarked, sizeof unmarked, &got, &n), -1);
	CHECK_EQ_INT(op_decode(marked, sizeof marked, &got, &n), 0);
	CHECK(n == 2 && strcmp(got[1].target, "#a") == 0 && got[1].seq == 2 && got[1].lts == 1);
	op_free_array(got, n);
}

TEST(msgid_format)
{
	struct op op = mk(7, 42, 1, OP_MSG, "a", "#r", "x", "");
	struct op_stream st;
	uint64_t seq;
	char id[OP_MSGID_MAX], small[8];
	op.stream.incarnation = 0xabcdef0123456789ULL;
	op.stream.boot = 3;
	op_msgid(&op, id, sizeof id);
	CHECK_EQ_STR(id, "7-abcdef0123456789-3-42");
	op.stream.origin = 0;
	op.stream.incarnation = 1;
	op.seq = 0;
	op_msgid(&op, id, sizeof id);
	CHECK_EQ_STR(id, "0-0000000000000001-3-0");
	op.stream.origin = UINT32_MAX;
	op.stream.incarnation = UINT64_MAX;
	op.stream.boot = UINT32_MAX;
	op.seq = UINT64_MAX;
	op_msgid(&op, id, sizeof id);
	CHECK_EQ_STR(id, "4294967295-ffffffffffffffff-4294967295-18446744073709551615");
	CHECK_EQ_INT(op_msgid_parse(id, &st, &seq), 0);
	CHECK(st.origin == UINT32_MAX && st.incarnation == UINT64_MAX && st.boot == UINT32_MAX &&
	      seq == UINT64_MAX);
	op_msgid(&op, small, sizeof small); /* cut short, NUL-terminated */
	CHECK_EQ_STR(small, "4294967");
}

TEST(casefold)
{
	char *f = chat_casefold("AbZ-[]\\~^{}|az\xc3\x89");
	CHECK_EQ_STR(f, "abz-[]\\~^{}|az\xc3\x89");
	free(f);
	f = chat_casefold("");
	CHECK_EQ_STR(f, "");
	free(f);
}

TEST(empty)
{
	struct chat *c = tchat_new();
	char d1[65], d2[65];
	CHECK_EQ_INT(chat_max_lts(c), 0);
	CHECK_EQ_INT(chat_op_count(c), 0);
	CHECK_EQ_INT(chat_room_count(c), 0);
	CHECK(!chat_user_known(c, "alice"));
	CHECK(chat_room_find(c, "#x") == NULL);
	CHECK_EQ_INT(likes_of(c, "1-0000000000000001-1-1"), -1);
	CHECK(chat_dm_history(c, "a", "b") == NULL);
	digest_of(c, d1);
	CHECK_EQ_INT(strlen(d1), 64);
	tchat_free(c);
	c = tchat_new();
	digest_of(c, d2);
	CHECK_EQ_STR(d1, d2);
	tchat_free(c);
	tchat_free(NULL);
}

TEST(idempotence)
{
	struct chat *c = tchat_new();
	struct op m = msg(1, 1, 5, "alice", "#r", "hi");
	char d1[65], d2[65];
	CHECK_EQ_INT(apply(c, m), CHAT_MSG_NEW);
	digest_of(c, d1);
	CHECK_EQ_INT(apply(c, m), CHAT_UNCHANGED);
	/* Identity is (stream, seq): a copy with other fields is still a duplicate. */
	struct op again = msg(1, 1, 9, "bob", "#other", "changed");
	struct chat_effect eff = apply_eff(c, again);
	CHECK_EQ_INT(eff.change, CHAT_UNCHANGED);
	CHECK(eff.msg == NULL && eff.room == NULL && !eff.room_created);
	digest_of(c, d2);
	CHECK_EQ_STR(d1, d2);
	CHECK_EQ_INT(chat_op_count(c), 1);
	CHECK_EQ_INT(chat_max_lts(c), 5);
	CHECK_EQ_INT(chat_history_len(chat_room_find(c, "#r")->history), 1);
	CHECK(chat_room_find(c, "#other") == NULL);
	CHECK(!chat_user_known(c, "bob"));

	/* Another seq, another stream's seq 1, another boot: all distinct. */
	CHECK_EQ_INT(apply(c, msg(1, 2, 6, "alice", "#r", "x")), CHAT_MSG_NEW);
	CHECK_EQ_INT(apply(c, msg(2, 1, 6, "alice", "#r", "x")), CHAT_MSG_NEW);
	struct op boot2 = msg(1, 1, 7, "alice", "#r", "x");
	boot2.stream.boot = 2;
	CHECK_EQ_INT(apply(c, boot2), CHAT_MSG_NEW);
	struct op inc2 = msg(1, 1, 8, "alice", "#r", "x");
	inc2.stream.incarnation = 77;
	CHECK_EQ_INT(apply(c, inc2), CHAT_MSG_NEW);
	CHECK_EQ_INT(chat_op_count(c), 5);
	CHECK_EQ_INT(chat_max_lts(c), 8);

	/* Out of order within a stream: a later seq first, then the gap, then
	 * each again. */
	CHECK_EQ_INT(apply(c, msg(3, 5, 9, "alice", "#r", "5")), CHAT_MSG_NEW);
	CHECK_EQ_INT(apply(c, msg(3, 2, 9, "alice", "#r", "2")), CHAT_MSG_NEW);
	CHECK_EQ_INT(apply(c, msg(3, 1, 9, "alice", "#r", "1")), CHAT_MSG_NEW);
	for (uint64_t seq = 1; seq <= 5; seq++)
		CHECK_EQ_INT(apply(c, msg(3, seq, 9, "alice", "#r", "again")),
			     seq == 3 || seq == 4 ? CHAT_MSG_NEW : CHAT_UNCHANGED);
	CHECK_EQ_INT(chat_op_count(c), 10);
	tchat_free(c);
}

TEST(users)
{
	struct chat *c = tchat_new();
	char list[256] = "";
	struct chat_effect eff = apply_eff(c, mk(1, 1, 5, OP_USER, "ALICE", "", "", ""));
	CHECK_EQ_INT(eff.change, CHAT_USER_NEW);
	CHECK(eff.room == NULL && eff.history == NULL && eff.msg == NULL);
	CHECK(chat_user_known(c, "alice"));
	CHECK(chat_user_known(c, "Alice"));
	/* Known already (another spelling): no news. */
	CHECK_EQ_INT(apply(c, mk(1, 2, 6, OP_USER, "alice", "", "", "")), CHAT_UNCHANGED);
	/* A message author becomes known silently. */
	CHECK_EQ_INT(apply(c, msg(1, 3, 7, "Zed", "#r", "hi")), CHAT_MSG_NEW);
	CHECK(chat_user_known(c, "zed"));
	CHECK_EQ_INT(apply(c, mk(1, 4, 8, OP_USER, "zed", "", "", "")), CHAT_UNCHANGED);
	/* A DM's target does not become known; its author does. */
	CHECK_EQ_INT(apply(c, mk(1, 5, 9, OP_DM, "bob", "carol", "psst", "")), CHAT_MSG_NEW);
	CHECK(chat_user_known(c, "BOB"));
	CHECK(!chat_user_known(c, "carol"));
	/* Spelling: the lowest-keyed op wins, whatever the arrival order. */
	CHECK_EQ_INT(apply(c, mk(2, 1, 1, OP_USER, "Alice", "", "", "")), CHAT_UNCHANGED);
	chat_users_each(c, add_nick, list);
	CHECK_EQ_STR(list, "Alice,bob,Zed,");
	tchat_free(c);
}

/* ---- rooms ---- */

TEST(rooms)
{
	struct chat *c = tchat_new();
	char list[256] = "";
	struct chat_effect eff = apply_eff(c, mk(1, 1, 10, OP_ROOM, "alice", "#Lobby", "", ""));
	CHECK_EQ_INT(eff.change, CHAT_ROOM_NEW);
	CHECK(eff.room_created);
	CHECK(eff.room == chat_room_find(c, "#lobby"));
	CHECK(eff.history == eff.room->history);
	CHECK_EQ_STR(eff.room->name, "#Lobby");
	CHECK_EQ_STR(eff.room->topic, "");
	CHECK_EQ_STR(eff.room->topic_author, "");
	CHECK_EQ_INT(eff.room->topic_ms, 0);
	CHECK_EQ_INT(eff.room->created_ms, 10000);
	CHECK(chat_user_known(c, "alice"));

	/* Named again, case-insensitively: the same room. */
	eff = apply_eff(c, mk(1, 2, 11, OP_ROOM, "bob", "#LOBBY", "", ""));
	CHECK_EQ_INT(eff.change, CHAT_UNCHANGED);
	CHECK(!eff.room_created);
	CHECK_EQ_INT(chat_room_count(c), 1);

	/* A lower-keyed op naming it respells it and sets created_ms. */
	eff = apply_eff(c, msg(2, 1, 3, "bob", "#lobby", "early"));
	CHECK_EQ_INT(eff.change, CHAT_MSG_NEW);
	CHECK(!eff.room_created);
	CHECK_EQ_STR(chat_room_find(c, "#LoBbY")->name, "#lobby");
	CHECK_EQ_INT(chat_room_find(c, "#lobby")->created_ms, 3000);

	/* First op naming a room makes it: a message, a topic, a like, an unlike. */
	eff = apply_eff(c, msg(1, 3, 12, "alice", "#b", "x"));
	CHECK_EQ_INT(eff.change, CHAT_MSG_NEW);
	CHECK(eff.room_created);
	CHECK(eff.room == chat_room_find(c, "#b"));
	eff = apply_eff(c, mk(1, 4, 13, OP_TOPIC, "alice", "#C", "t", ""));
	CHECK_EQ_INT(eff.change, CHAT_TOPIC_CHANGED);
	CHECK(eff.room_created);
	eff = apply_eff(c, like(1, 5, 14, "bob", "#a", "9-0000000000000001-1-1"));
	CHECK_EQ_INT(eff.change, CHAT_LIKE_PENDING);
	CHECK(eff.room_created);
	CHECK(eff.room == chat_room_find(c, "#a"));
	eff = apply_eff(c, unlike(1, 6, 15, "bob", "#d", "9-0000000000000001-1-1"));
	CHECK(eff.room_created);
	/* A like of a DM (nick target) makes no room. */
	apply(c, like(1, 7, 16, "bob", "carol", "9-0000000000000001-1-2"));
	CHECK_EQ_INT(chat_room_count(c), 5);
	chat_rooms_each(c, add_room, list);
	CHECK_EQ_STR(list, "#a,#b,#C,#d,#lobby,");
	tchat_free(c);
}

TEST(room_name_converges)
{
	struct op ops[] = {
		mk(1, 1, 5, OP_ROOM, "a", "#Rust", "", ""),
		msg(2, 1, 4, "b", "#RUST", "x"),
		mk(3, 1, 4, OP_TOPIC, "c", "#rust", "t", ""),
	};
	/* Key order: (4, origin 2) < (4, origin 3) < (5, ...): "#RUST" wins. */
	int orders[][3] = {{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {2, 0, 1}};
	for (size_t k = 0; k < 4; k++) {
		struct chat *c = tchat_new();
		for (int i = 0; i < 3; i++)
			apply(c, ops[orders[k][i]]);
		struct chat_room *r = chat_room_find(c, "#rust");
		CHECK_EQ_STR(r->name, "#RUST");
		CHECK_EQ_INT(r->created_ms, 4000);
		tchat_free(c);
	}
}

TEST(topic_lww)
{
	struct op t1 = mk(1, 1, 5, OP_TOPIC, "alice", "#r", "first", "");
	struct op t2 = mk(2, 1, 5, OP_TOPIC, "Bob", "#R", "second", ""); /* same lts, higher origin */
	struct op t3 = mk(1, 2, 3, OP_TOPIC, "carol", "#r", "old", "");
	t2.wall_ms = 1; /* wall time never decides */

	struct chat *c = tchat_new();
	CHECK_EQ_INT(apply(c, t1), CHAT_TOPIC_CHANGED);
	CHECK_EQ_INT(apply(c, t2), CHAT_TOPIC_CHANGED);
	struct chat_effect eff = apply_eff(c, t3);
	CHECK_EQ_INT(eff.change, CHAT_UNCHANGED);
	CHECK(eff.room == chat_room_find(c, "#r"));
	struct chat_room *r = chat_room_find(c, "#r");
	CHECK_EQ_STR(r->topic, "second");
	CHECK_EQ_STR(r->topic_author, "Bob");
	CHECK_EQ_INT(r->topic_ms, 1);
	char d1[65], d2[65];
	digest_of(c, d1);
	tchat_free(c);

	c = tchat_new();
	CHECK_EQ_INT(apply(c, t2), CHAT_TOPIC_CHANGED);
	CHECK_EQ_INT(apply(c, t3), CHAT_UNCHANGED);
	CHECK_EQ_INT(apply(c, t1), CHAT_UNCHANGED);
	CHECK_EQ_STR(chat_room_find(c, "#r")->topic, "second");
	digest_of(c, d2);
	CHECK_EQ_STR(d1, d2);
	/* An empty topic clears it, if it is the latest. */
	CHECK_EQ_INT(apply(c, mk(1, 3, 9, OP_TOPIC, "alice", "#r", "", "")), CHAT_TOPIC_CHANGED);
	CHECK_EQ_STR(chat_room_find(c, "#r")->topic, "");
	tchat_free(c);
}

/* ---- messages and order ---- */

TEST(message_order)
{
	struct chat *c = tchat_new();
	char b[512];
	struct chat_effect eff = apply_eff(c, msg(1, 1, 10, "a", "#r", "ten"));
	CHECK(eff.appended);
	eff = apply_eff(c, msg(1, 2, 20, "a", "#r", "twenty"));
	CHECK(eff.appended);
	/* Merged from elsewhere: lower lts goes earlier. */
	eff = apply_eff(c, msg(2, 1, 15, "b", "#r", "fifteen"));
	CHECK(!eff.appended);
	eff = apply_eff(c, msg(3, 1, 5, "c", "#r", "five"));
	CHECK(!eff.appended);
	CHECK_EQ_STR(bodies_of(c, "#r", b), "five ten fifteen twenty");
	/* Same lts: origin breaks the tie. */
	eff = apply_eff(c, msg(0, 1, 10, "d", "#r", "ten-0"));
	eff = apply_eff(c, msg(2, 2, 10, "b", "#r", "ten-2"));
	CHECK(!eff.appended);
	CHECK(eff.history == chat_room_find(c, "#r")->history);
	CHECK_EQ_INT(eff.msg->likes, 0);

	struct chat_history *h = chat_room_find(c, "#r")->history;
	const char *want[] = {"five", "ten-0", "ten", "ten-2", "fifteen", "twenty"};
	const struct chat_msg *all[8];
	CHECK_EQ_INT(chat_history_len(h), 6);
	CHECK_EQ_INT(whole(c, "#r", all), 6);
	for (size_t i = 0; i < 6; i++) {
		CHECK_EQ_STR(all[i]->op.body, want[i]);
		struct msgid id = mid(all[i]->op);
		CHECK_EQ_STR(all[i]->msgid, id.s);
	}
	/* The cache holds them all, in the same order; the last key is the last's. */
	const struct chat_msg *cached[8];
	struct op_key last;
	CHECK_EQ_INT(chat_history_cached(h, 8, cached), 6);
	for (size_t i = 0; i < 6; i++)
		CHECK_EQ_STR(cached[i]->op.body, want[i]);
	CHECK_EQ_INT(chat_history_cached(h, 2, cached), 2);
	CHECK_EQ_STR(cached[0]->op.body, "fifteen");
	CHECK_EQ_INT(chat_history_last(h, &last), 0);
	CHECK_EQ_INT(last.lts, 20);

	/* A message of another history is not in this one. */
	struct op other = msg(1, 3, 30, "a", "#other", "elsewhere");
	apply(c, other);
	CHECK_EQ_STR(bodies_of(c, "#other", b), "elsewhere");
	CHECK_EQ_INT(chat_history_len(h), 6);
	/* The stored op is a copy: body, flags and wall time kept. */
	struct op notice = msg(1, 4, 31, "a", "#r", "note");
	notice.flags = OP_FLAG_NOTICE;
	notice.wall_ms = 123;
	char body[] = "note";
	notice.body = body;
	eff = apply_eff(c, notice);
	body[0] = 'X';
	CHECK_EQ_STR(eff.msg->op.body, "note");
	CHECK_EQ_INT(eff.msg->op.flags, OP_FLAG_NOTICE);
	CHECK_EQ_INT(eff.msg->op.wall_ms, 123);
	CHECK_EQ_INT(eff.msg->op.lts, 31);
	tchat_free(c);
}

/* The cache: within its budget, a suffix of each history, a room keeping
 * its last lines whatever the budget, the like counts of what it holds
 * following the store's, filled from the store at start-up. */
TEST(history_cache)
{
	struct chat *c = tchat_new();
	const struct chat_msg *out[16];
	char body[16];
	chat_set_cache(c, 4096, 2);
	for (uint64_t i = 1; i <= 40; i++) { /* posts (no keep) and lines of two rooms */
		snprintf(body, sizeof body, "m%02u", (unsigned)i);
		apply(c, i % 4 == 0 ? mk(1, i, 10 * i, OP_POST, "bob", CHAT_TIMELINE, body, "")
			       : msg(1, i, 10 * i, "a", i % 2 ? "#x" : "#y", body));
		CHECK(chat_cache_bytes(c) <= 4096);
	}
	struct chat_history *x = chat_room_find(c, "#x")->history, *y = chat_room_find(c, "#y")->history;
	struct chat_history *feed = chat_feed_history(c, "bob");
	CHECK_EQ_INT(chat_history_len(x), 20);
	CHECK_EQ_INT(chat_history_len(feed), 10);
	/* The latest lines are there, the oldest not: asking for them says so. */
	CHECK_EQ_INT(chat_history_cached(x, 2, out), 2);
	CHECK_EQ_STR(out[0]->op.body, "m37");
	CHECK_EQ_STR(out[1]->op.body, "m39");
	CHECK_EQ_INT(chat_history_cached(x, 20, out), -1);
	/* A budget of nothing: rooms keep their last two, feeds keep nothing. */
	chat_set_cache(c, 0, 2);
	CHECK_EQ_INT(chat_history_cached(x, 2, out), 2);
	CHECK_EQ_INT(chat_history_cached(x, 3, out), -1);
	CHECK_EQ_INT(chat_history_cached(y, 2, out), 2);
	CHECK_EQ_STR(out[1]->op.body, "m38");
	CHECK_EQ_INT(chat_history_cached(feed, 1, out), -1);
	size_t kept = chat_cache_bytes(c);
	CHECK(kept > 0);
	/* A line merged below the cached suffix is counted, not cached; one
	 * inside it is; a like of a cached line moves its count. */
	struct op old = msg(2, 1, 5, "b", "#x", "old"), mid_line = msg(2, 2, 385, "b", "#x", "m38.5");
	struct chat_effect eff = apply_eff(c, old);
	CHECK(eff.msg == NULL && !eff.appended);
	CHECK_EQ_INT(chat_history_len(x), 21);
	eff = apply_eff(c, mid_line);
	CHECK(eff.msg != NULL && !eff.appended);
	CHECK_EQ_INT(chat_history_cached(x, 3, out), 3);
	CHECK_EQ_STR(out[1]->op.body, "m38.5");
	eff = apply_eff(c, like(3, 1, 500, "carol", "#x", out[2]->msgid));
	CHECK_EQ_INT(eff.change, CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(eff.likes, 1);
	CHECK_EQ_INT(chat_history_cached(x, 3, out), 3);
	CHECK_EQ_INT(out[2]->likes, 1);
	/* A like of a line not cached: its count comes from the store. */
	eff = apply_eff(c, like(3, 2, 501, "carol", "#x", mid(old).s));
	CHECK_EQ_INT(eff.change, CHAT_LIKES_CHANGED);
	CHECK(eff.msg == NULL);
	CHECK_EQ_INT(eff.likes, 1);
	/* Lines loaded at start-up are never cached; a fill puts the last ones
	 * from the store. */
	struct chat *d = chat_new();
	struct chat_effect e;
	chat_set_cache(d, 1 << 20, 2);
	CHECK_EQ_INT(chat_apply(d, &old, NULL, &e), 0);
	CHECK_EQ_INT(chat_apply(d, &mid_line, NULL, &e), 0);
	struct chat_history *dx = chat_room_find(d, "#x")->history;
	CHECK_EQ_INT(chat_history_cached(dx, 1, out), -1);
	struct store_msgs last;
	CHECK_EQ_INT(store_history(store_of(c), "#x", NULL, NULL, 2, 1, &last), STORE_OK);
	chat_history_fill(dx, last.ops, last.likes, last.n);
	store_msgs_free(&last);
	CHECK_EQ_INT(chat_history_cached(dx, 2, out), 2);
	CHECK_EQ_STR(out[0]->op.body, "m38.5");
	CHECK_EQ_INT(out[1]->likes, 1);
	chat_free(d);
	tchat_free(c);
}

TEST(null_strings)
{
	struct chat *c = tchat_new();
	struct op u = mk(1, 1, 1, OP_USER, "alice", NULL, NULL, NULL);
	struct chat_effect eff;
	CHECK_EQ_INT(tapply(c, &u, &eff), 0);
	CHECK_EQ_INT(eff.change, CHAT_USER_NEW);
	struct op m = mk(1, 2, 2, OP_MSG, "alice", "#r", NULL, NULL);
	CHECK_EQ_INT(tapply(c, &m, &eff), 0);
	CHECK_EQ_STR(eff.msg->op.body, "");
	CHECK_EQ_STR(eff.msg->op.ref, "");
	struct op bad = mk(1, 3, 3, OP_MSG, NULL, "#r", "x", "");
	CHECK_EQ_INT(tapply(c, &bad, &eff), -1);
	tchat_free(c);
}

/* ---- DMs ---- */

TEST(dm_conversations)
{
	struct chat *c = tchat_new();
	struct chat_effect e1 = apply_eff(c, mk(1, 1, 1, OP_DM, "Alice", "bob", "hi bob", ""));
	CHECK_EQ_INT(e1.change, CHAT_MSG_NEW);
	CHECK(e1.room == NULL);
	CHECK(!e1.room_created);
	CHECK(e1.history != NULL);
	struct chat_effect e2 = apply_eff(c, mk(2, 1, 2, OP_DM, "BOB", "alice", "hi alice", ""));
	CHECK(e2.history == e1.history);
	CHECK(e2.appended);
	CHECK(chat_dm_history(c, "alice", "bob") == e1.history);
	CHECK(chat_dm_history(c, "BOB", "ALICE") == e1.history);
	CHECK(chat_dm_history(c, "alice", "carol") == NULL);
	CHECK_EQ_INT(chat_history_len(e1.history), 2);
	char b[512], *key = chat_dm_history_key("alice", "bob");
	CHECK_EQ_STR(bodies_of(c, key, b), "hi bob hi alice");
	free(key);
	CHECK_EQ_INT(chat_room_count(c), 0);

	apply(c, mk(1, 2, 3, OP_DM, "alice", "Carol", "hi carol", ""));
	apply(c, mk(1, 3, 4, OP_DM, "alice", "ALICE", "note to self", ""));
	CHECK(chat_dm_history(c, "alice", "alice") != NULL);
	CHECK(chat_dm_history(c, "alice", "alice") != e1.history);

	char list[256] = "";
	chat_dm_each(c, "ALICE", add_peer, list);
	/* Peers by casefolded name, spelled as in the conversation's lowest op. */
	CHECK_EQ_STR(list, "ALICE:1,bob:2,Carol:1,");
	list[0] = '\0';
	chat_dm_each(c, "bob", add_peer, list);
	CHECK_EQ_STR(list, "Alice:2,");
	list[0] = '\0';
	chat_dm_each(c, "carol", add_peer, list);
	CHECK_EQ_STR(list, "alice:1,");
	list[0] = '\0';
	chat_dm_each(c, "nobody", add_peer, list);
	CHECK_EQ_STR(list, "");

	/* A lower-keyed op respells both sides. */
	apply(c, mk(3, 1, 0, OP_DM, "CAROL", "ALICE", "earliest", ""));
	list[0] = '\0';
	chat_dm_each(c, "bob", add_peer, list);
	CHECK_EQ_STR(list, "Alice:2,");
	list[0] = '\0';
	chat_dm_each(c, "alice", add_peer, list);
	CHECK_EQ_STR(list, "ALICE:1,bob:2,CAROL:2,");
	tchat_free(c);
}

/* ---- likes ---- */

TEST(likes_lww)
{
	struct op m = msg(1, 1, 1, "alice", "#r", "line");
	struct msgid id = mid(m);
	struct op l1 = like(2, 1, 5, "bob", "#r", id.s);
	struct op u1 = unlike(3, 1, 5, "BOB", "#r", id.s); /* same lts, higher origin: later */
	struct op l2 = like(2, 2, 4, "Bob", "#r", id.s);  /* earlier than both */

	struct chat *c = tchat_new();
	apply(c, m);
	struct chat_effect eff = apply_eff(c, l1);
	CHECK_EQ_INT(eff.change, CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(eff.msg->likes, 1);
	CHECK(eff.history == chat_room_find(c, "#r")->history);
	CHECK(eff.room == chat_room_find(c, "#r"));
	CHECK(liked_by(c, id.s, "bob"));
	CHECK(liked_by(c, id.s, "BOB"));
	eff = apply_eff(c, u1);
	CHECK_EQ_INT(eff.change, CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(eff.msg->likes, 0);
	eff = apply_eff(c, l2); /* older than the unlike: loses */
	CHECK_EQ_INT(eff.change, CHAT_LIKE_SAME);
	CHECK_EQ_INT(eff.msg->likes, 0);
	CHECK(!liked_by(c, id.s, "bob"));
	char d1[65];
	digest_of(c, d1);

	/* All six orders of the three like ops converge. */
	struct op ls[] = {l1, u1, l2};
	int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
	for (int p = 0; p < 6; p++) {
		struct chat *d = tchat_new();
		char d2[65];
		for (int i = 0; i < 3; i++)
			apply(d, ls[perms[p][i]]);
		apply(d, m);
		CHECK_EQ_INT(likes_of(d, id.s), 0);
		digest_of(d, d2);
		CHECK_EQ_STR(d1, d2);
		tchat_free(d);
	}

	/* A later like wins again; a second liker counts; a repeated like is the same. */
	CHECK_EQ_INT(apply(c, like(2, 3, 9, "bob", "#r", id.s)), CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(apply(c, like(4, 1, 9, "carol", "#r", id.s)), CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(apply(c, like(4, 2, 10, "Carol", "#r", id.s)), CHAT_LIKE_SAME);
	CHECK_EQ_INT(likes_of(c, id.s), 2);
	CHECK(liked_by(c, id.s, "carol"));
	CHECK(!liked_by(c, id.s, "dave"));
	CHECK(!liked_by(c, "not-a-msgid", "bob"));
	/* An unlike with no like before is recorded but changes no count. */
	CHECK_EQ_INT(apply(c, unlike(5, 1, 11, "dave", "#r", id.s)), CHAT_LIKE_SAME);
	CHECK_EQ_INT(likes_of(c, id.s), 2);
	tchat_free(c);
}

TEST(own_likes_ignored)
{
	struct chat *c = tchat_new();
	struct op m = msg(1, 1, 1, "Alice", "#r", "mine");
	struct msgid id = mid(m);
	char d1[65], d2[65];
	apply(c, m);
	digest_of(c, d1);
	struct chat_effect eff = apply_eff(c, like(1, 2, 2, "ALICE", "#r", id.s));
	CHECK_EQ_INT(eff.change, CHAT_UNCHANGED);
	CHECK_EQ_INT(likes_of(c, id.s), 0);
	CHECK(!liked_by(c, id.s, "alice"));
	CHECK_EQ_INT(chat_op_count(c), 2);
	CHECK_EQ_INT(apply(c, like(1, 2, 2, "ALICE", "#r", id.s)), CHAT_UNCHANGED);
	CHECK_EQ_INT(chat_op_count(c), 2);
	CHECK_EQ_INT(apply(c, unlike(1, 3, 3, "alice", "#r", id.s)), CHAT_UNCHANGED);
	CHECK_EQ_INT(chat_op_count(c), 3);
	digest_of(c, d2);
	CHECK(strcmp(d1, d2) != 0); /* the op count is in the digest */

	/* The same ops with the like first: the placeholder state is dropped. */
	struct chat *e = tchat_new();
	char d3[65];
	CHECK_EQ_INT(apply(e, unlike(1, 3, 3, "alice", "#r", id.s)), CHAT_LIKE_PENDING);
	CHECK_EQ_INT(apply(e, like(1, 2, 2, "ALICE", "#r", id.s)), CHAT_LIKE_PENDING);
	CHECK_EQ_INT(apply(e, m), CHAT_MSG_NEW);
	CHECK_EQ_INT(likes_of(e, id.s), 0);
	digest_of(e, d3);
	CHECK_EQ_STR(d2, d3);
	tchat_free(e);

	/* An own like still pending when the line arrives never counts. */
	e = tchat_new();
	CHECK_EQ_INT(apply(e, like(2, 1, 9, "alice", "#r", id.s)), CHAT_LIKE_PENDING);
	CHECK_EQ_INT(apply(e, like(2, 2, 9, "bob", "#r", id.s)), CHAT_LIKE_PENDING);
	CHECK_EQ_INT(apply_eff(e, m).msg->likes, 1);
	CHECK(!liked_by(e, id.s, "alice"));
	tchat_free(e);
	tchat_free(c);
}

TEST(placeholder_likes)
{
	struct op m = msg(1, 1, 1, "alice", "#r", "late");
	struct msgid id = mid(m);
	struct chat *c = tchat_new();
	struct chat_effect eff = apply_eff(c, like(2, 1, 2, "bob", "#r", id.s));
	CHECK_EQ_INT(eff.change, CHAT_LIKE_PENDING);
	CHECK(eff.msg == NULL && eff.likes == -1);
	CHECK_EQ_INT(apply(c, like(2, 2, 3, "carol", "#r", id.s)), CHAT_LIKE_PENDING);
	CHECK_EQ_INT(apply(c, unlike(2, 3, 4, "carol", "#r", id.s)), CHAT_LIKE_PENDING);
	CHECK_EQ_INT(apply(c, like(2, 4, 5, "dave", "#r", id.s)), CHAT_LIKE_PENDING);

	/* Two replicas with different placeholders differ. */
	struct chat *d = tchat_new();
	char dc[65], dd[65];
	apply(d, like(2, 1, 2, "bob", "#r", id.s));
	apply(d, like(2, 2, 3, "carol", "#r", id.s));
	apply(d, unlike(9, 3, 4, "carol", "#r", id.s)); /* same count, another op */
	apply(d, like(2, 4, 5, "dave", "#r", id.s));
	digest_of(c, dc);
	digest_of(d, dd);
	CHECK(strcmp(dc, dd) != 0);
	tchat_free(d);

	eff = apply_eff(c, m);
	CHECK_EQ_INT(eff.change, CHAT_MSG_NEW);
	CHECK_EQ_INT(eff.msg->likes, 2); /* bob and dave */
	CHECK(!eff.room_created);       /* the likes named #r first */
	CHECK(!liked_by(c, id.s, "carol"));
	CHECK_EQ_INT(apply(c, unlike(2, 5, 6, "dave", "#r", id.s)), CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(likes_of(c, id.s), 1);

	/* A non-canonical spelling of the msgid names the same message. */
	char loose[OP_MSGID_MAX];
	snprintf(loose, sizeof loose, "%u-%" PRIX64 "-%u-%" PRIu64, m.stream.origin,
		 m.stream.incarnation, m.stream.boot, m.seq);
	CHECK(strcmp(loose, id.s) != 0);
	eff = apply_eff(c, like(3, 1, 7, "erin", "#r", loose));
	CHECK_EQ_INT(eff.change, CHAT_LIKES_CHANGED);
	CHECK(eff.msg != NULL && strcmp(eff.msg->msgid, id.s) == 0);
	CHECK_EQ_INT(eff.msg->likes, 2);
	CHECK_EQ_INT(eff.likes, 2);
	CHECK(liked_by(c, loose, "erin"));
	CHECK_EQ_INT(likes_of(c, loose), 2);
	CHECK(eff.history == chat_room_find(c, "#r")->history);
	tchat_free(c);
}

TEST(dm_likes)
{
	struct chat *c = tchat_new();
	struct op dm = mk(1, 1, 1, OP_DM, "alice", "bob", "hey", "");
	struct msgid id = mid(dm);
	apply(c, dm);
	struct chat_effect eff = apply_eff(c, like(2, 1, 2, "bob", "alice", id.s));
	CHECK_EQ_INT(eff.change, CHAT_LIKES_CHANGED);
	CHECK(eff.room == NULL);
	CHECK(eff.history == chat_dm_history(c, "alice", "bob"));
	CHECK_EQ_INT(eff.msg->likes, 1);
	CHECK_EQ_INT(apply(c, like(1, 2, 3, "alice", "bob", id.s)), CHAT_UNCHANGED);
	CHECK_EQ_INT(chat_room_count(c), 0);
	tchat_free(c);
}

/* ---- malformed and reserved ops ---- */

TEST(malformed)
{
	struct chat *c = tchat_new();
	apply(c, msg(1, 1, 1, "alice", "#r", "x"));
	static char big[CHAT_FIELD_MAX + 2];
	char before[65], after[65];
	memset(big, 'x', CHAT_FIELD_MAX + 1);
	big[CHAT_FIELD_MAX + 1] = '\0';
	digest_of(c, before);
	/* What no client can make (a peer's, or a forged store's) is malformed
	 * too: an author that is not a nick, bad UTF-8, a field too long. */
	struct op bad[] = {
		mk(1, 2, 2, OP_MSG, "al ice", "#r", "x", ""),
		mk(1, 2, 2, OP_MSG, "al\rice", "#r", "x", ""),
		mk(1, 2, 2, OP_USER, "9lives", "", "", ""),
		mk(1, 2, 2, OP_TOPIC, "alice", "#r", "bad \xff utf-8", ""),
		mk(1, 2, 2, OP_LIKE, "alice", "#r", big, "1-0000000000000001-1-1"),
		mk(1, 2, 2, OP_MSG, "alice", "#r", big, ""),
		mk(1, 2, 2, OP_DM, "alice", "bo b", "x", ""),
		mk(1, 2, 2, OP_FOLLOW, "alice", "#r", "", ""),
		mk(1, 2, 2, 0, "alice", "#r", "x", ""),
		mk(1, 2, 2, 200, "alice", "#r", "x", ""),
		mk(1, 2, 2, OP_REGISTER, "alice", "", "", ""),
		mk(1, 2, 2, OP_PASSWORD, "alice", "", "v", "garbage"),
		mk(1, 2, 2, OP_PASSWORD, "alice", "", "", "1-0000000000000001-1-1"),
		mk(1, 2, 2, OP_UNREGISTER, "alice", "", "", ""),
		mk(1, 2, 2, OP_UNREGISTER, "alice", "", "", "01-0000000000000001-1-1"),
		mk(1, 2, 2, 255, "alice", "#r", "x", ""),
		mk(1, 2, 2, OP_MSG, "", "#r", "x", ""),
		mk(1, 2, 2, OP_USER, "", "", "", ""),
		mk(1, 2, 2, OP_MSG, "alice", "r", "x", ""),
		mk(1, 2, 2, OP_MSG, "alice", "", "x", ""),
		mk(1, 2, 2, OP_ROOM, "alice", "bob", "", ""),
		mk(1, 2, 2, OP_TOPIC, "alice", "&r", "t", ""),
		mk(1, 2, 2, OP_DM, "alice", "", "x", ""),
		mk(1, 2, 2, OP_LIKE, "alice", "#r", "+1", ""),
		mk(1, 2, 2, OP_LIKE, "alice", "#r", "+1", "garbage"),
		mk(1, 2, 2, OP_UNLIKE, "alice", "#r", "+1", "1-2-3"),
		mk(1, 2, 2, OP_UNLIKE, "alice", "#r", "+1", "1-0000000000000001-1-1x"),
		mk(1, 2, 2, OP_FOLLOW, "alice", "", "", ""),
		mk(1, 2, 2, OP_UNFOLLOW, "alice", "", "", ""),
		mk(1, 2, 2, OP_POST, "alice", "", "a post", ""),
		mk(1, 2, 2, OP_POST, "alice", "#r", "a post", ""),
		mk(1, 2, 2, OP_POST, "alice", "&Timeline", "a post", ""),
		mk(1, 0, 2, OP_MSG, "alice", "#r", "seq 0", ""),
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct chat_effect eff;
		memset(&eff, 0x5a, sizeof eff);
		CHECK_EQ_INT(tapply(c, &bad[i], &eff), -1);
		CHECK_EQ_INT(eff.change, CHAT_UNCHANGED);
		CHECK(eff.msg == NULL && eff.room == NULL && eff.history == NULL);
	}
	digest_of(c, after);
	CHECK_EQ_STR(before, after);
	CHECK_EQ_INT(chat_op_count(c), 1);
	CHECK_EQ_INT(chat_max_lts(c), 1);
	CHECK_EQ_INT(chat_room_count(c), 1);
	/* Not marked applied: a valid op with the same identity still applies. */
	CHECK_EQ_INT(apply(c, msg(1, 2, 2, "alice", "#r", "y")), CHAT_MSG_NEW);
	/* At the limits, and a CR or LF (lines stored before CR was refused hold
	 * some; a reaction's escaped tag value may). */
	big[CHAT_FIELD_MAX] = '\0';
	CHECK_EQ_INT(apply(c, msg(1, 3, 3, "alice", "#r", big)), CHAT_MSG_NEW);
	CHECK_EQ_INT(apply(c, msg(1, 4, 4, "a23456789012345678901234567890", "#r", "a\rb\nc")),
		     CHAT_MSG_NEW);
	tchat_free(c);
}

/* ---- room modes ---- */

static struct op mode(uint32_t origin, uint64_t seq, uint64_t lts, const char *author, const char *change,
		      const char *param)
{
	return mk(origin, seq, lts, OP_MODE, author, "#m", change, param);
}

static void count_mask(const char *mask, const char *setter, int64_t set_ms, void *arg)
{
	(void)setter;
	(void)set_ms;
	strcat(arg, mask);
	strcat(arg, ",");
}

/* Every register is last writer wins by op key, in any order of arrival:
 * two replicas given the same ops in opposite orders agree on every mode,
 * list and status, and on the digest. */
TEST(room_modes_converge)
{
	struct op ops[] = {
		mk(1, 1, 1, OP_ROOM, "alice", "#m", "", ""),
		mk(2, 1, 2, OP_ROOM, "bob", "#m", "", ""),       /* later: alice founded it */
		mode(1, 2, 10, "alice", "+b", "spam!*@*"),
		mode(2, 2, 5, "bob", "-b", "spam!*@*"),          /* older: the ban holds */
		mode(1, 3, 11, "alice", "+o", "bob"),
		mode(2, 3, 12, "bob", "-o", "alice"),            /* the founder taken off */
		mode(1, 4, 13, "alice", "+k", "sesame"),
		mode(2, 4, 14, "bob", "+l", "25"),
		mode(1, 5, 15, "alice", "-t", ""),
		mode(2, 5, 16, "bob", "+m", ""),
		mode(1, 6, 17, "alice", "+v", "carol"),
		mode(2, 6, 18, "bob", "+e", "spam!*@friend"),
		mode(1, 7, 19, "alice", "-k", ""),
		mk(2, 7, 20, OP_INVITE, "bob", "#m", "", "dave"),
		mk(1, 8, 21, OP_INVITE, "alice", "#m", "", "erin"),
		mk(2, 8, 22, OP_KICK, "bob", "#m", "go", "erin"),
	};
	size_t n = sizeof ops / sizeof ops[0];
	struct chat *a = tchat_new(), *b = tchat_new();
	for (size_t i = 0; i < n; i++) {
		struct chat_effect eff;
		CHECK_EQ_INT(tapply(a, &ops[i], &eff), 0);
		CHECK_EQ_INT(tapply(b, &ops[n - 1 - i], &eff), 0);
	}
	char da[65], db[65];
	digest_of(a, da);
	digest_of(b, db);
	CHECK_EQ_STR(da, db);
	for (int k = 0; k < 2; k++) {
		const struct chat_room *r = chat_room_find(k ? b : a, "#M");
		char bans[64] = "", excepts[64] = "";
		CHECK(r != NULL && strcmp(r->founder, "alice") == 0);
		CHECK_EQ_INT(r->modes, CHAT_MODE_M | CHAT_MODE_N);
		CHECK_EQ_STR(r->key, "");
		CHECK_EQ_INT(r->limit, 25);
		CHECK(!chat_room_is_op(r, "alice") && chat_room_is_op(r, "bob"));
		CHECK(chat_room_is_voiced(r, "carol") && !chat_room_is_voiced(r, "bob"));
		CHECK(chat_room_invited(r, "dave") && !chat_room_invited(r, "erin"));
		chat_room_list_each(r, 'b', count_mask, bans);
		chat_room_list_each(r, 'e', count_mask, excepts);
		CHECK_EQ_STR(bans, "spam!*@*,");
		CHECK_EQ_STR(excepts, "spam!*@friend,");
	}
	/* A new room: +nt, its founder an operator; an older op changes nothing
	 * visible, a newer one does. */
	struct chat_effect eff;
	CHECK_EQ_INT(apply(a, mk(3, 1, 30, OP_ROOM, "zed", "#new", "", "")), CHAT_ROOM_NEW);
	const struct chat_room *r = chat_room_find(a, "#new");
	CHECK_EQ_INT(r->modes, CHAT_MODE_N | CHAT_MODE_T);
	CHECK(chat_room_is_op(r, "zed") && !chat_room_is_op(r, "alice"));
	struct op late = mode(1, 9, 3, "alice", "-b", "spam!*@*");
	CHECK_EQ_INT(tapply(a, &late, &eff), 0);
	CHECK_EQ_INT(eff.change, CHAT_UNCHANGED);
	struct op unban = mode(1, 10, 40, "bob", "-b", "SPAM!*@*");
	CHECK_EQ_INT(tapply(a, &unban, &eff), 0);
	CHECK_EQ_INT(eff.change, CHAT_MODE_CHANGED);
	/* An earlier creation arriving later makes its author the founder. */
	CHECK_EQ_INT(apply(a, mk(4, 1, 60, OP_ROOM, "late", "#founded", "", "")), CHAT_ROOM_NEW);
	struct op earlier = mk(5, 1, 55, OP_ROOM, "early", "#founded", "", "");
	CHECK_EQ_INT(tapply(a, &earlier, &eff), 0);
	CHECK_EQ_INT(eff.change, CHAT_FOUNDER_CHANGED);
	CHECK_EQ_STR(eff.founder_was, "late");
	CHECK_EQ_STR(chat_room_find(a, "#founded")->founder, "early");
	/* Several changes in one op: each its own register; the effect says which
	 * changed something. */
	struct op multi = mk(1, 12, 50, OP_MODE, "bob", "#new", "+i+o-n+b", "zed newmask!*@*");
	CHECK_EQ_INT(tapply(a, &multi, &eff), 0);
	CHECK_EQ_INT(eff.change, CHAT_MODE_CHANGED);
	CHECK_EQ_INT(eff.mode_changes, 1u | 4u | 8u); /* zed was an operator already */
	CHECK_EQ_INT(r->modes, CHAT_MODE_I | CHAT_MODE_T);
	/* Malformed changes. */
	struct op bad[] = {
		mode(1, 11, 41, "alice", "+x", ""), mode(1, 11, 41, "alice", "+o", ""),
		mode(1, 11, 41, "alice", "+l", "many"), mode(1, 11, 41, "alice", "+l", "0"),
		mode(1, 11, 41, "alice", "+k", ""), mode(1, 11, 41, "alice", "++", ""),
		mode(1, 11, 41, "alice", "+bb", "m"), mk(1, 11, 41, OP_KICK, "alice", "#m", "", ""),
		mode(1, 11, 41, "alice", "-k", "extra"), mode(1, 11, 41, "alice", "+i+b", ""),
		mode(1, 11, 41, "alice", "+i+i+i+i+i+i+i+i+i", ""), mode(1, 11, 41, "alice", "", ""),
		mk(1, 11, 41, OP_INVITE, "alice", "nochan", "", "bob"),
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(tapply(a, &bad[i], &eff), -1);
	tchat_free(a);
	tchat_free(b);
}

/* ---- follows, feeds and timelines ---- */

static struct op follow(uint32_t origin, uint64_t seq, uint64_t lts, const char *author,
			const char *target)
{
	return mk(origin, seq, lts, OP_FOLLOW, author, target, "", "");
}

static struct op unfollow(uint32_t origin, uint64_t seq, uint64_t lts, const char *author,
			  const char *target)
{
	return mk(origin, seq, lts, OP_UNFOLLOW, author, target, "", "");
}

static struct op post(uint32_t origin, uint64_t seq, uint64_t lts, const char *author, const char *body)
{
	return mk(origin, seq, lts, OP_POST, author, CHAT_TIMELINE, body, "");
}

/* The bodies of the last limit posts of nick's timeline, space-separated,
 * into out (a char[512]). */
static const char *timeline_of(struct chat *c, const char *nick, size_t limit, char *out)
{
	const struct chat_msg *msgs[64];
	char *person = chat_casefold(nick);
	size_t n = timeline_last(c, person, limit < 64 ? limit : 64, msgs);
	free(person);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(out, i ? " " : "");
		strcat(out, msgs[i]->op.body);
	}
	return out;
}

TEST(follow_lww)
{
	struct op f = follow(1, 1, 5, "Alice", "bob");
	struct op u = unfollow(2, 1, 7, "alice", "BOB");
	char d1[65], d2[65];

	/* Follow then unfollow: each changes the state. */
	struct chat *c = tchat_new();
	CHECK(!chat_following(c, "alice", "bob"));
	struct chat_effect eff = apply_eff(c, f);
	CHECK_EQ_INT(eff.change, CHAT_FOLLOW_CHANGED);
	CHECK(eff.room == NULL && eff.history == NULL && eff.msg == NULL);
	CHECK(chat_following(c, "ALICE", "Bob"));
	CHECK(!chat_following(c, "bob", "alice"));
	CHECK_EQ_INT(apply(c, f), CHAT_UNCHANGED); /* a duplicate */
	CHECK_EQ_INT(apply(c, u), CHAT_FOLLOW_CHANGED);
	CHECK(!chat_following(c, "alice", "bob"));
	digest_of(c, d1);

	/* The other order: the unfollow is kept, the older follow loses to it. */
	struct chat *d = tchat_new();
	CHECK_EQ_INT(apply(d, u), CHAT_UNCHANGED);
	CHECK_EQ_INT(apply(d, f), CHAT_UNCHANGED);
	CHECK(!chat_following(d, "alice", "bob"));
	digest_of(d, d2);
	CHECK_EQ_STR(d1, d2);
	/* The follow counts for the digest even though it lost. */
	struct chat *e = tchat_new();
	apply(e, u);
	digest_of(e, d2);
	CHECK(strcmp(d1, d2) != 0);
	tchat_free(e);

	/* A later follow wins again; an equal state is no change. */
	CHECK_EQ_INT(apply(c, follow(1, 2, 9, "alice", "bob")), CHAT_FOLLOW_CHANGED);
	CHECK_EQ_INT(apply(c, follow(3, 1, 10, "alice", "bob")), CHAT_UNCHANGED);
	CHECK_EQ_INT(apply(c, unfollow(3, 2, 8, "alice", "bob")), CHAT_UNCHANGED);
	CHECK(chat_following(c, "alice", "bob"));
	/* The follower became known; the followee only by their own ops. */
	CHECK(chat_user_known(c, "alice"));
	CHECK(!chat_user_known(c, "bob"));
	CHECK_EQ_INT(chat_room_count(c), 0);
	tchat_free(c);
	tchat_free(d);
}

TEST(self_follow_ignored)
{
	struct chat *c = tchat_new();
	char list[256] = "";
	CHECK_EQ_INT(apply(c, follow(1, 1, 1, "alice", "ALICE")), CHAT_UNCHANGED);
	CHECK(!chat_following(c, "alice", "alice"));
	chat_follow_each(c, "alice", add_nick, list);
	chat_followers_each(c, "alice", add_nick, list);
	CHECK_EQ_STR(list, "");
	CHECK_EQ_INT(chat_op_count(c), 1);
	CHECK_EQ_INT(apply(c, unfollow(1, 2, 2, "alice", "alice")), CHAT_UNCHANGED);
	/* Own posts are not on one's own timeline. */
	apply(c, post(1, 3, 3, "alice", "mine"));
	CHECK_EQ_STR(timeline_of(c, "alice", 20, list), "");
	tchat_free(c);
}

TEST(follow_lists)
{
	struct chat *c = tchat_new();
	char list[256] = "";
	apply(c, mk(1, 1, 1, OP_USER, "Zed", "", "", ""));
	apply(c, mk(1, 2, 2, OP_USER, "Bob", "", "", ""));
	apply(c, follow(1, 3, 3, "alice", "zed"));
	apply(c, follow(1, 4, 4, "alice", "BOB"));
	apply(c, follow(1, 5, 5, "alice", "carol")); /* not a known user */
	apply(c, follow(1, 6, 6, "alice", "dave"));
	apply(c, unfollow(1, 7, 7, "alice", "dave"));
	apply(c, follow(2, 1, 8, "zed", "Alice"));
	apply(c, follow(2, 2, 9, "bob", "alice"));
	chat_follow_each(c, "ALICE", add_nick, list);
	CHECK_EQ_STR(list, "Bob,carol,Zed,");
	list[0] = '\0';
	chat_followers_each(c, "alice", add_nick, list);
	CHECK_EQ_STR(list, "Bob,Zed,");
	list[0] = '\0';
	chat_followers_each(c, "dave", add_nick, list);
	chat_follow_each(c, "nobody", add_nick, list);
	CHECK_EQ_STR(list, "");
	tchat_free(c);
}

TEST(posts_and_feeds)
{
	struct chat *c = tchat_new();
	char b[512];
	struct op p = post(1, 1, 1, "Bob", "hello");
	struct chat_effect eff = apply_eff(c, p);
	CHECK_EQ_INT(eff.change, CHAT_MSG_NEW);
	CHECK(eff.room == NULL && !eff.room_created);
	CHECK(eff.history == chat_feed_history(c, "bob"));
	CHECK(eff.appended);
	CHECK_EQ_INT(chat_room_count(c), 0);
	CHECK(chat_room_find(c, CHAT_TIMELINE) == NULL);
	CHECK(chat_user_known(c, "bob"));
	CHECK(chat_feed_history(c, "alice") == NULL);
	CHECK(eff.history == chat_feed_history(c, "BOB"));
	CHECK_EQ_STR(eff.msg->op.target, CHAT_TIMELINE);
	CHECK_EQ_INT(apply(c, p), CHAT_UNCHANGED);
	/* A post merged from elsewhere may go earlier in its feed. */
	eff = apply_eff(c, post(2, 1, 0, "bob", "older"));
	CHECK_EQ_INT(eff.change, CHAT_MSG_NEW);
	CHECK(!eff.appended);
	CHECK_EQ_INT(chat_history_len(chat_feed_history(c, "bob")), 2);
	CHECK_EQ_STR(bodies_of(c, "~bob", b), "older hello");
	/* Posts can be liked like any message. */
	CHECK_EQ_INT(apply(c, like(3, 1, 4, "carol", CHAT_TIMELINE, mid(p).s)), CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(likes_of(c, mid(p).s), 1);
	tchat_free(c);
}

TEST(timeline_excludes_pre_follow)
{
	struct op ops[] = {
		post(1, 1, 1, "bob", "before"),
		follow(2, 1, 2, "alice", "bob"),
		post(1, 2, 3, "bob", "after"),
		post(3, 1, 4, "carol", "unfollowed"),
	};
	char t[512], first[512] = "", d0[65], d[65];
	/* Every order of arrival gives the same timeline. */
	for (size_t rot = 0; rot < 4; rot++) {
		struct chat *c = tchat_new();
		for (size_t i = 0; i < 4; i++)
			apply(c, ops[(i + rot) % 4]);
		CHECK_EQ_STR(timeline_of(c, "Alice", 20, t), "after");
		CHECK(!chat_timeline_includes(c, "alice", &ops[0]));
		CHECK(chat_timeline_includes(c, "alice", &ops[2]));
		CHECK(!chat_timeline_includes(c, "alice", &ops[3]));
		CHECK(!chat_timeline_includes(c, "bob", &ops[2]));
		CHECK_EQ_STR(timeline_of(c, "bob", 20, t), "");
		digest_of(c, rot ? d : d0);
		if (rot)
			CHECK_EQ_STR(d, d0);
		tchat_free(c);
	}
	/* Only posts are on timelines. */
	struct chat *c = tchat_new();
	apply(c, follow(2, 1, 2, "alice", "bob"));
	struct op m = msg(1, 1, 3, "bob", "#r", "a room line");
	apply(c, m);
	CHECK(!chat_timeline_includes(c, "alice", &m));
	CHECK_EQ_STR(timeline_of(c, "alice", 20, first), "");
	tchat_free(c);
}

TEST(timeline_refollow)
{
	struct chat *c = tchat_new();
	char t[512];
	apply(c, follow(2, 1, 1, "alice", "bob"));
	apply(c, post(1, 1, 2, "bob", "p1"));
	CHECK_EQ_STR(timeline_of(c, "alice", 20, t), "p1");
	apply(c, unfollow(2, 2, 3, "alice", "bob"));
	apply(c, post(1, 2, 4, "bob", "p2"));
	CHECK_EQ_STR(timeline_of(c, "alice", 20, t), "");
	apply(c, follow(2, 3, 5, "alice", "bob"));
	apply(c, post(1, 3, 6, "bob", "p3"));
	/* Only what came after the follow in force. */
	CHECK_EQ_STR(timeline_of(c, "alice", 20, t), "p3");
	/* A follow merged late with a smaller key does not widen it. */
	CHECK_EQ_INT(apply(c, follow(3, 1, 1, "alice", "bob")), CHAT_UNCHANGED);
	CHECK_EQ_STR(timeline_of(c, "alice", 20, t), "p3");
	tchat_free(c);
}

TEST(timeline_limit_and_order)
{
	struct chat *c = tchat_new();
	const struct chat_msg *out[40];
	struct msgid ids[30];
	char t[512];
	apply(c, follow(9, 1, 1, "alice", "bob"));
	apply(c, follow(9, 2, 1, "alice", "carol"));
	apply(c, follow(9, 3, 1, "alice", "dave")); /* never posts */
	/* 30 posts, bob and carol interleaved, some on equal lts (origin decides). */
	for (uint64_t i = 0; i < 30; i++) {
		char body[8];
		snprintf(body, sizeof body, "p%02u", (unsigned)i);
		struct op p = post(i % 2 ? 2 : 1, i + 1, (uint64_t)(2 + i / 2) << OP_LTS_SHIFT,
				   i % 2 ? "carol" : "bob", body); /* canonical time 2 + i / 2 ms */
		p.wall_ms = (int64_t)(100 * (30 - i)); /* never shown, never compared */
		ids[i] = mid(p);
		apply(c, p);
	}
	size_t n = timeline_last(c, "alice", 20, out);
	CHECK_EQ_INT(n, 20);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_STR(out[i]->msgid, ids[10 + i].s);
	CHECK_EQ_INT(timeline_last(c, "alice", 100, out), 30);
	CHECK_EQ_STR(timeline_of(c, "alice", 3, t), "p27 p28 p29");
	CHECK_EQ_INT(timeline_last(c, "alice", 0, out), 0);

	/* Selections: by msgid position and by canonical time. */
	struct store_anchor a = {ids[5].s, 0}, b = {ids[9].s, 0}, tm = {NULL, 9};
	CHECK_EQ_INT(tl_sel(c, "alice", &a, NULL, 3, 0, out), 3);
	CHECK_EQ_STR(out[0]->msgid, ids[6].s);
	CHECK_EQ_STR(out[2]->msgid, ids[8].s);
	CHECK_EQ_INT(tl_sel(c, "alice", NULL, &b, 2, 1, out), 2);
	CHECK_EQ_STR(out[0]->msgid, ids[7].s);
	CHECK_EQ_STR(out[1]->msgid, ids[8].s);
	CHECK_EQ_INT(tl_sel(c, "alice", &a, &b, 10, 0, out), 3);
	CHECK_EQ_INT(tl_sel(c, "alice", &tm, NULL, 100, 0, out), 14);
	CHECK_EQ_STR(out[0]->msgid, ids[16].s);
	CHECK_EQ_INT(tl_sel(c, "alice", NULL, &tm, 100, 1, out), 14);
	CHECK_EQ_STR(out[13]->msgid, ids[13].s);
	/* An unknown msgid, or one that is not a post, is no position. */
	struct op m = msg(5, 1, 50, "bob", "#r", "room");
	apply(c, m);
	struct store_anchor bad = {"9-0000000000000009-1-1", 0}, room = {mid(m).s, 0};
	CHECK_EQ_INT(tl_sel(c, "alice", &bad, NULL, 5, 0, out), -1);
	CHECK_EQ_INT(tl_sel(c, "alice", NULL, &room, 5, 1, out), -1);
	/* Someone who follows nobody has an empty timeline. */
	CHECK_EQ_INT(tl_sel(c, "erin", &a, NULL, 5, 0, out), 0);
	tchat_free(c);
}

/* ---- accounts and persons ---- */

static struct op acct(uint32_t origin, uint64_t seq, uint64_t lts, uint8_t kind, const char *name,
		      const char *body, const char *ref)
{
	return mk(origin, seq, lts, kind, name, kind == OP_REGISTER ? "a@example.org" : "", body, ref);
}

/* An op made by a session logged in to the account regid. */
static struct op as(struct op op, const char *regid)
{
	op.account = (char *)regid;
	return op;
}

/* Register, change the password, removal, registering again: the fold. */
TEST(account_lifecycle)
{
	struct chat *c = tchat_new();
	CHECK(chat_account_find(c, "alice") == NULL);
	struct op reg = acct(1, 1, 5, OP_REGISTER, "Alice", "v1", "");
	struct msgid r = mid(reg);
	CHECK_EQ_INT(apply(c, reg), CHAT_ACCOUNT_CHANGED);
	const struct chat_account *a = chat_account_find(c, "ALICE");
	CHECK(a != NULL);
	if (a) {
		CHECK_EQ_STR(a->name, "Alice");
		CHECK_EQ_STR(a->regid, r.s);
		CHECK_EQ_STR(a->verifier, "v1");
		CHECK_EQ_STR(a->email, "a@example.org");
	}
	CHECK(chat_user_known(c, "alice"));
	/* A password change naming another registration changes nothing. */
	CHECK_EQ_INT(apply(c, as(acct(1, 2, 6, OP_PASSWORD, "alice", "vx", "7-0000000000000001-1-1"), r.s)),
		     CHAT_UNCHANGED);
	CHECK_EQ_INT(apply(c, as(acct(1, 3, 7, OP_PASSWORD, "alice", "v2", r.s), r.s)), CHAT_ACCOUNT_CHANGED);
	CHECK_EQ_STR(chat_account_find(c, "alice")->verifier, "v2");
	/* A second registration of the name while it is registered is void. */
	CHECK_EQ_INT(apply(c, acct(2, 1, 8, OP_REGISTER, "alice", "w", "")), CHAT_UNCHANGED);
	CHECK_EQ_STR(chat_account_find(c, "alice")->regid, r.s);
	CHECK_EQ_INT(apply(c, as(acct(1, 4, 9, OP_UNREGISTER, "alice", "", r.s), r.s)), CHAT_ACCOUNT_CHANGED);
	CHECK(chat_account_find(c, "alice") == NULL);
	/* Registered again afterwards: a new registration. */
	struct op again = acct(3, 1, 10, OP_REGISTER, "ALICE", "v3", "");
	CHECK_EQ_INT(apply(c, again), CHAT_ACCOUNT_CHANGED);
	a = chat_account_find(c, "alice");
	CHECK(a && strcmp(a->regid, mid(again).s) == 0 && strcmp(a->verifier, "v3") == 0);
	tchat_free(c);
}

/* Two registrations of one name made apart (two partitions): the one with
 * the lower key wins wherever the ops arrive in whatever order, and a change
 * made by the other's owner is void. */
TEST(account_concurrent_registrations)
{
	struct op early = acct(2, 1, 5, OP_REGISTER, "bob", "va", "");
	struct op late = acct(1, 1, 7, OP_REGISTER, "Bob", "vb", "");
	struct msgid e = mid(early), l = mid(late);
	struct op late_pw = as(acct(1, 2, 8, OP_PASSWORD, "Bob", "vb2", l.s), l.s);
	struct op early_pw = as(acct(2, 2, 9, OP_PASSWORD, "bob", "va2", e.s), e.s);
	struct op all[] = {early, late, late_pw, early_pw};
	int orders[][4] = {{0, 1, 2, 3}, {1, 2, 0, 3}, {3, 2, 1, 0}, {2, 3, 1, 0}};
	char first[65] = "";
	for (int o = 0; o < 4; o++) {
		struct chat *c = tchat_new();
		for (int i = 0; i < 4; i++) {
			struct chat_effect eff;
			CHECK_EQ_INT(tapply(c, &all[orders[o][i]], &eff), 0);
		}
		const struct chat_account *a = chat_account_find(c, "BOB");
		CHECK(a && strcmp(a->regid, e.s) == 0 && strcmp(a->verifier, "va2") == 0);
		CHECK(a && strcmp(a->name, "bob") == 0);
		char d[65];
		digest_of(c, d);
		if (o == 0)
			strcpy(first, d);
		CHECK_EQ_STR(d, first);
		tchat_free(c);
	}
	/* Before the earlier registration arrives, the later one is in force;
	 * when it arrives the account changes hands. */
	struct chat *c = tchat_new();
	CHECK_EQ_INT(apply(c, late), CHAT_ACCOUNT_CHANGED);
	CHECK_EQ_STR(chat_account_find(c, "bob")->regid, l.s);
	CHECK_EQ_INT(apply(c, early), CHAT_ACCOUNT_CHANGED);
	CHECK_EQ_STR(chat_account_find(c, "bob")->regid, e.s);
	tchat_free(c);
}

/* What two accounts of one name did stays apart: likes count twice, posts
 * go to each one's feed and only the holder's reach timelines, DMs are two
 * conversations, and liking the other's line is not liking one's own. */
TEST(persons_keep_accounts_apart)
{
	struct chat *c = tchat_new();
	struct op ra = acct(2, 1, 5, OP_REGISTER, "bob", "va", "");
	struct op rb = acct(1, 1, 7, OP_REGISTER, "bob", "vb", "");
	struct msgid a = mid(ra), b = mid(rb);
	apply(c, ra);
	apply(c, rb);
	struct op line = msg(3, 1, 10, "carol", "#r", "hi");
	apply(c, line);
	struct op bline = as(msg(1, 2, 11, "bob", "#r", "from b"), b.s);
	apply(c, bline);
	CHECK_EQ_INT(apply(c, as(like(2, 2, 12, "bob", "#r", mid(line).s), a.s)), CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(apply(c, as(like(1, 3, 13, "bob", "#r", mid(line).s), b.s)), CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(likes_of(c, mid(line).s), 2);
	CHECK_EQ_INT(apply(c, as(like(2, 3, 14, "bob", "#r", mid(bline).s), a.s)), CHAT_LIKES_CHANGED);
	CHECK_EQ_INT(apply(c, as(like(1, 4, 15, "bob", "#r", mid(bline).s), b.s)), CHAT_UNCHANGED);
	char *pa = chat_person("bob", a.s), *pb = chat_person("BOB", b.s);
	CHECK(liked_by(c, mid(line).s, pa) && liked_by(c, mid(line).s, pb));
	CHECK(!liked_by(c, mid(line).s, "bob"));

	/* Posts: carol follows the name bob; only the holder's posts reach her. */
	apply(c, mk(3, 2, 16, OP_FOLLOW, "carol", "bob", "", ""));
	struct op post_a = as(mk(2, 4, 17, OP_POST, "bob", CHAT_TIMELINE, "a posts", ""), a.s);
	struct op post_b = as(mk(1, 5, 18, OP_POST, "bob", CHAT_TIMELINE, "b posts", ""), b.s);
	apply(c, post_a);
	apply(c, post_b);
	CHECK_EQ_INT(chat_history_len(chat_feed_history(c, pa)), 1);
	CHECK_EQ_INT(chat_history_len(chat_feed_history(c, pb)), 1);
	CHECK(chat_feed_history(c, "bob") == NULL);
	const struct chat_msg *tl[4] = {NULL};
	CHECK_EQ_INT(timeline_last(c, "carol", 4, tl), 1);
	CHECK(tl[0] && strcmp(tl[0]->msgid, mid(post_a).s) == 0);
	CHECK(chat_timeline_includes(c, "carol", &post_a));
	CHECK(!chat_timeline_includes(c, "carol", &post_b));
	/* Follows: each account's own; the followers of carol are the holders. */
	apply(c, as(mk(2, 5, 19, OP_FOLLOW, "bob", "carol", "", ""), a.s));
	apply(c, as(mk(1, 6, 20, OP_FOLLOW, "bob", "carol", "", ""), b.s));
	CHECK(chat_following(c, pa, "carol") && chat_following(c, pb, "carol"));
	CHECK(!chat_following(c, "bob", "carol"));
	char list[256] = "";
	chat_followers_each(c, "carol", add_nick, list);
	CHECK_EQ_STR(list, "bob,");
	/* Following one's own name from an account is following oneself. */
	CHECK_EQ_INT(apply(c, as(mk(2, 7, 20, OP_FOLLOW, "bob", "BOB", "", ""), a.s)), CHAT_UNCHANGED);
	CHECK(!chat_following(c, pa, "bob"));

	/* DMs: two conversations with carol, one per account. */
	struct op dm_a = as(mk(2, 8, 21, OP_DM, "bob", "carol", "to carol from a", ""), a.s);
	struct op dm_b = as(mk(1, 7, 22, OP_DM, "bob", "carol", "to carol from b", ""), b.s);
	struct op reply = mk(3, 3, 23, OP_DM, "carol", "bob", "to a", a.s);
	apply(c, dm_a);
	apply(c, dm_b);
	apply(c, reply);
	CHECK_EQ_INT(chat_history_len(chat_dm_history(c, pa, "carol")), 2);
	CHECK_EQ_INT(chat_history_len(chat_dm_history(c, "carol", pb)), 1);
	CHECK(chat_dm_history(c, "bob", "carol") == NULL);
	list[0] = '\0';
	chat_dm_each(c, "carol", add_peer, list);
	CHECK_EQ_STR(list, "bob:1,bob:2,");
	free(pa);
	free(pb);
	tchat_free(c);
}

/* ---- selections ---- */

/* A room "#h" with messages m0..m9 at canonical times 100 * index ms; their
 * wall times are jumbled (m5's is 250), which nothing compares. */
static struct chat *selection_chat(struct msgid ids[10])
{
	struct chat *c = tchat_new();
	static const char *bodies[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"};
	for (int i = 0; i < 10; i++) {
		struct op m = msg(1, (uint64_t)i + 1, ((uint64_t)(100 * i) << OP_LTS_SHIFT) + 1, "a", "#h",
				  bodies[i]);
		m.wall_ms = i == 5 ? 250 : 100 * i;
		ids[i] = mid(m);
		apply(c, m);
	}
	return c;
}

/* Checks that out[0..n) are the bodies listed in want ("m3 m4"). */
static int bodies_are(const struct chat_msg **out, long n, const char *want)
{
	char got[128] = "";
	for (long i = 0; i < n; i++) {
		if (i)
			strcat(got, " ");
		strcat(got, out[i]->op.body);
	}
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "  got \"%s\", want \"%s\"\n", got, want);
		return 0;
	}
	return 1;
}

TEST(select_latest_before_after)
{
	struct msgid ids[10];
	struct chat *c = selection_chat(ids);
	const struct chat_msg *out[16];
	struct store_anchor at3 = {ids[3].s, 0}, at0 = {ids[0].s, 0}, at9 = {ids[9].s, 0};
	struct store_anchor t = {NULL, 400}, unknown = {"1-0000000000000001-1-99", 0};
	long n;

	n = sel(c, "#h", STORE_LATEST, NULL, NULL, 3, out);
	CHECK(bodies_are(out, n, "m7 m8 m9"));
	n = sel(c, "#h", STORE_LATEST, NULL, NULL, 0, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_LATEST, NULL, NULL, 16, out);
	CHECK_EQ_INT(n, 10);
	n = sel(c, "#h", STORE_LATEST, &at3, NULL, 16, out);
	CHECK(bodies_are(out, n, "m4 m5 m6 m7 m8 m9"));
	n = sel(c, "#h", STORE_LATEST, &at9, NULL, 5, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_LATEST, &t, NULL, 16, out); /* time > 400: m5..m9 (m5's wall time is 250) */
	CHECK(bodies_are(out, n, "m5 m6 m7 m8 m9"));
	CHECK_EQ_INT(sel(c, "#h", STORE_LATEST, &unknown, NULL, 5, out), -1);

	n = sel(c, "#h", STORE_BEFORE, &at3, NULL, 2, out);
	CHECK(bodies_are(out, n, "m1 m2"));
	n = sel(c, "#h", STORE_BEFORE, &at3, NULL, 10, out);
	CHECK(bodies_are(out, n, "m0 m1 m2"));
	n = sel(c, "#h", STORE_BEFORE, &at0, NULL, 10, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_BEFORE, &at9, NULL, 0, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_BEFORE, &t, NULL, 3, out); /* time < 400: m0..m3 */
	CHECK(bodies_are(out, n, "m1 m2 m3"));
	CHECK_EQ_INT(sel(c, "#h", STORE_BEFORE, &unknown, NULL, 5, out), -1);

	n = sel(c, "#h", STORE_AFTER, &at3, NULL, 2, out);
	CHECK(bodies_are(out, n, "m4 m5"));
	n = sel(c, "#h", STORE_AFTER, &at9, NULL, 10, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_AFTER, &at0, NULL, 0, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_AFTER, &at0, NULL, 3, out);
	CHECK(bodies_are(out, n, "m1 m2 m3"));
	struct store_anchor t2 = {NULL, 200};
	n = sel(c, "#h", STORE_AFTER, &t2, NULL, 3, out); /* time > 200: m3 m4 m5 m6 */
	CHECK(bodies_are(out, n, "m3 m4 m5"));
	struct store_anchor late = {NULL, 5000};
	CHECK_EQ_INT(sel(c, "#h", STORE_AFTER, &late, NULL, 3, out), 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_AFTER, &unknown, NULL, 5, out), -1);

	/* An anchor in another history is unknown here. */
	struct op other = msg(1, 50, 50, "a", "#elsewhere", "x");
	struct msgid other_id = mid(other);
	apply(c, other);
	struct store_anchor foreign = {other_id.s, 0};
	CHECK_EQ_INT(sel(c, "#h", STORE_AFTER, &foreign, NULL, 5, out), -1);
	tchat_free(c);
}

TEST(select_around)
{
	struct msgid ids[10];
	struct chat *c = selection_chat(ids);
	const struct chat_msg *out[16];
	struct store_anchor at4 = {ids[4].s, 0}, at0 = {ids[0].s, 0}, at9 = {ids[9].s, 0};
	long n;

	n = sel(c, "#h", STORE_AROUND, &at4, NULL, 5, out);
	CHECK(bodies_are(out, n, "m2 m3 m4 m5 m6"));
	n = sel(c, "#h", STORE_AROUND, &at4, NULL, 4, out); /* odd remainder: more before */
	CHECK(bodies_are(out, n, "m2 m3 m4 m5"));
	n = sel(c, "#h", STORE_AROUND, &at4, NULL, 2, out);
	CHECK(bodies_are(out, n, "m3 m4"));
	n = sel(c, "#h", STORE_AROUND, &at4, NULL, 1, out);
	CHECK(bodies_are(out, n, "m4"));
	n = sel(c, "#h", STORE_AROUND, &at4, NULL, 0, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_AROUND, &at0, NULL, 5, out);
	CHECK(bodies_are(out, n, "m0 m1 m2"));
	n = sel(c, "#h", STORE_AROUND, &at9, NULL, 5, out);
	CHECK(bodies_are(out, n, "m7 m8 m9"));
	n = sel(c, "#h", STORE_AROUND, &at4, NULL, 16, out);
	CHECK_EQ_INT(n, 10);

	/* Time: centre = first message with a time >= T. */
	struct store_anchor t = {NULL, 300};
	n = sel(c, "#h", STORE_AROUND, &t, NULL, 4, out); /* m3 (300) is the centre */
	CHECK(bodies_are(out, n, "m1 m2 m3 m4"));
	struct store_anchor t0 = {NULL, -5};
	n = sel(c, "#h", STORE_AROUND, &t0, NULL, 4, out);
	CHECK(bodies_are(out, n, "m0 m1"));
	struct store_anchor tend = {NULL, 99999};
	n = sel(c, "#h", STORE_AROUND, &tend, NULL, 3, out);
	CHECK(bodies_are(out, n, "m9"));
	struct store_anchor unknown = {"bogus", 0};
	CHECK_EQ_INT(sel(c, "#h", STORE_AROUND, &unknown, NULL, 3, out), -1);
	tchat_free(c);
}

TEST(select_between)
{
	struct msgid ids[10];
	struct chat *c = selection_chat(ids);
	const struct chat_msg *out[16];
	struct store_anchor a2 = {ids[2].s, 0}, a7 = {ids[7].s, 0}, a0 = {ids[0].s, 0},
			   a9 = {ids[9].s, 0}, a3 = {ids[3].s, 0};
	struct store_anchor unknown = {"1-0000000000000001-1-99", 0};
	long n;

	n = sel(c, "#h", STORE_BETWEEN, &a2, &a7, 10, out);
	CHECK(bodies_are(out, n, "m3 m4 m5 m6"));
	n = sel(c, "#h", STORE_BETWEEN, &a2, &a7, 2, out);
	CHECK(bodies_are(out, n, "m3 m4"));
	n = sel(c, "#h", STORE_BETWEEN, &a7, &a2, 2, out); /* from a's (the later) side */
	CHECK(bodies_are(out, n, "m5 m6"));
	n = sel(c, "#h", STORE_BETWEEN, &a7, &a2, 10, out);
	CHECK(bodies_are(out, n, "m3 m4 m5 m6"));
	n = sel(c, "#h", STORE_BETWEEN, &a0, &a9, 16, out);
	CHECK_EQ_INT(n, 8);
	n = sel(c, "#h", STORE_BETWEEN, &a2, &a3, 5, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_BETWEEN, &a2, &a2, 5, out);
	CHECK_EQ_INT(n, 0);
	n = sel(c, "#h", STORE_BETWEEN, &a0, &a9, 0, out);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_BETWEEN, &a2, &unknown, 5, out), -1);
	CHECK_EQ_INT(sel(c, "#h", STORE_BETWEEN, &unknown, &a2, 5, out), -1);

	/* Times: strictly between, canonical order, limited from a's side. */
	struct store_anchor t150 = {NULL, 150}, t600 = {NULL, 600};
	n = sel(c, "#h", STORE_BETWEEN, &t150, &t600, 10, out); /* 200..500 and m5 at 250 */
	CHECK(bodies_are(out, n, "m2 m3 m4 m5"));
	n = sel(c, "#h", STORE_BETWEEN, &t150, &t600, 2, out);
	CHECK(bodies_are(out, n, "m2 m3"));
	n = sel(c, "#h", STORE_BETWEEN, &t600, &t150, 2, out);
	CHECK(bodies_are(out, n, "m4 m5"));
	/* Mixed: a msgid (m2, time 200) and a time. */
	n = sel(c, "#h", STORE_BETWEEN, &a2, &t600, 10, out);
	CHECK(bodies_are(out, n, "m3 m4 m5"));
	n = sel(c, "#h", STORE_BETWEEN, &t600, &a2, 1, out);
	CHECK(bodies_are(out, n, "m5"));
	tchat_free(c);
}

/* Reference selections by canonical time, over the whole history in
 * canonical order (all, n): the messages with lo < time < hi, the first or
 * last limit of them. */
static size_t ref_between(const struct chat_msg **all, size_t n, int64_t lo, int64_t hi, size_t limit,
			  int last, const struct chat_msg **out)
{
	size_t k = 0, start = 0;
	for (size_t i = 0; i < n; i++)
		if (op_time_ms(&all[i]->op) > lo && op_time_ms(&all[i]->op) < hi)
			out[k++] = all[i];
	if (last && k > limit)
		start = k - limit;
	if (k > limit)
		k = limit;
	memmove(out, out + start, k * sizeof *out);
	return k;
}

/* AROUND a time, by the rule: the centre is the first message with time >= T. */
static size_t ref_around(const struct chat_msg **all, size_t n, int64_t t, size_t limit,
			 const struct chat_msg **out)
{
	size_t centre = 0, k = 0;
	while (centre < n && op_time_ms(&all[centre]->op) < t)
		centre++;
	size_t from = centre > limit / 2 ? centre - limit / 2 : 0;
	for (size_t i = from; i < n && k < limit && (i < centre || i - centre < limit - limit / 2); i++)
		out[k++] = all[i];
	return k;
}

/* The same messages, by position. */
static int same_selection(long n, const struct chat_msg **got, size_t want_n,
			  const struct chat_msg **want)
{
	if (n != (long)want_n)
		return 0;
	for (size_t i = 0; i < want_n; i++)
		if (op_cmp(&got[i]->op, &want[i]->op) != 0)
			return 0;
	return 1;
}

/* Time anchors become key bounds (op_key_at_time); with several messages in
 * one ms, wall times jumbled against the canonical order and messages
 * inserted anywhere, every selection of the store must equal a full scan by
 * canonical time. */
TEST(time_anchors_match_a_full_scan)
{
	enum { MSGS = 600 };
	static const struct chat_msg *got[MSGS], *want[MSGS], *all[MSGS];
	static const size_t limits[] = {1, 2, 5, 50, MSGS};
	struct chat *c = tchat_new();
	uint64_t x = 12345;
	for (uint64_t i = 0; i < MSGS; i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		/* about four messages per ms, in any order of arrival */
		struct op m = msg(1 + (uint32_t)(x >> 60) % 3, i + 1, (((x >> 33) % 5000) << 14) + 1 + i % 3,
				  "alice", "#t", "x");
		m.wall_ms = (int64_t)((x >> 8) % 40000); /* never compared */
		apply(c, m);
	}
	CHECK_EQ_INT(chat_history_len(chat_room_find(c, "#t")->history), MSGS);
	size_t n = (size_t)whole(c, "#t", all);
	CHECK_EQ_INT(n, MSGS);
	int bad = 0;
	for (size_t q = 0; q < 3 * MSGS + 2 && !bad; q++) {
		/* Just below, at and above each time; before and after all. */
		int64_t t = q >= 3 * MSGS ? (q == 3 * MSGS ? INT64_MIN + 1 : INT64_MAX - 301)
					  : op_time_ms(&all[q / 3]->op) + (int64_t)(q % 3) - 1;
		struct store_anchor a = {NULL, t}, b = {NULL, t + 300};
		for (size_t li = 0; li < sizeof limits / sizeof limits[0]; li++) {
			size_t l = limits[li];
			long k = sel(c, "#t", STORE_LATEST, &a, NULL, l, got);
			bad |= !same_selection(k, got, ref_between(all, n, t, INT64_MAX, l, 1, want), want);
			k = sel(c, "#t", STORE_AFTER, &a, NULL, l, got);
			bad |= !same_selection(k, got, ref_between(all, n, t, INT64_MAX, l, 0, want), want);
			k = sel(c, "#t", STORE_BEFORE, &a, NULL, l, got);
			bad |= !same_selection(k, got, ref_between(all, n, INT64_MIN, t, l, 1, want), want);
			k = sel(c, "#t", STORE_AROUND, &a, NULL, l, got);
			bad |= !same_selection(k, got, ref_around(all, n, t, l, want), want);
			k = sel(c, "#t", STORE_BETWEEN, &a, &b, l, got);
			bad |= !same_selection(k, got, ref_between(all, n, t, t + 300, l, 0, want), want);
			k = sel(c, "#t", STORE_BETWEEN, &b, &a, l, got);
			bad |= !same_selection(k, got, ref_between(all, n, t, t + 300, l, 1, want), want);
			if (bad)
				fprintf(stderr, "time anchor %lld, limit %zu: differs from a full scan\n",
					(long long)t, l);
		}
	}
	CHECK(!bad);
	tchat_free(c);
}

TEST(select_empty_history)
{
	struct chat *c = tchat_new();
	apply(c, mk(1, 1, 1, OP_ROOM, "a", "#e", "", ""));
	struct chat_history *h = chat_room_find(c, "#e")->history;
	const struct chat_msg *out[4];
	struct op_key last;
	struct store_anchor t = {NULL, 10}, u = {"1-0000000000000001-1-1", 0};
	CHECK_EQ_INT(chat_history_len(h), 0);
	CHECK_EQ_INT(chat_history_last(h, &last), -1);
	CHECK_EQ_INT(chat_history_cached(h, 4, out), 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_LATEST, NULL, NULL, 4, out), 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_BEFORE, &t, NULL, 4, out), 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_AFTER, &t, NULL, 4, out), 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_AROUND, &t, NULL, 4, out), 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_BETWEEN, &t, &t, 4, out), 0);
	CHECK_EQ_INT(sel(c, "#h", STORE_BEFORE, &u, NULL, 4, out), -1);
	tchat_free(c);
}

/* ---- convergence property test ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t pick(size_t n)
{
	return (size_t)(rng() % n);
}

#define GEN_OPS 300
#define GEN_STREAMS 4
#define REPLICAS 5

static const char *gen_nicks[] = {"alice", "Alice", "BOB", "bob", "carol", "Dave", "erin"};
static const char *gen_rooms[] = {"#a", "#A", "#b", "#Chat", "#chat"};

struct gen_op {
	struct op op;
	char ref[OP_MSGID_MAX];
	char body[24];
};

static int same_fold(const char *a, const char *b)
{
	char *x = chat_casefold(a), *y = chat_casefold(b);
	int same = strcmp(x, y) == 0;
	free(x);
	free(y);
	return same;
}

/* Makes g an OP_MODE (a change of any letter, parameters from small sets
 * in mixed case, so registers collide), an OP_KICK or an OP_INVITE. */
static void gen_mode(struct gen_op *g)
{
	static const char letters[] = "beIovklimnst";
	static const char *masks[] = {"a!*@*", "A!*@*", "b!*@*"}, *keys[] = {"k1", "k2"},
			  *limits[] = {"5", "9"};
	size_t r = pick(10);
	g->op.kind = r < 8 ? OP_MODE : r < 9 ? OP_KICK : OP_INVITE;
	snprintf(g->ref, sizeof g->ref, "%s", gen_nicks[pick(7)]);
	if (g->op.kind != OP_MODE)
		return;
	char m = letters[pick(sizeof letters - 1)];
	snprintf(g->body, sizeof g->body, "%c%c", pick(2) ? '+' : '-', m);
	if (strchr("beI", m))
		snprintf(g->ref, sizeof g->ref, "%s", masks[pick(3)]);
	else if (m == 'k')
		snprintf(g->ref, sizeof g->ref, "%s", keys[pick(2)]);
	else if (m == 'l')
		snprintf(g->ref, sizeof g->ref, "%s", limits[pick(2)]);
	else if (!strchr("ov", m))
		g->ref[0] = '\0';
	if (g->body[0] == '-' && (m == 'k' || m == 'l'))
		g->ref[0] = '\0'; /* -k and -l take no parameter */
}

/* Fills g with GEN_OPS random ops from GEN_STREAMS streams; each stream's lts
 * rises, streams interleave and tie. Follows and unfollows pick any two nicks
 * (oneself included). Likes reference messages or posts generated
 * before or after them (mostly a dozen popular ones), ops that are not
 * messages, or msgids never used. */
static void generate(struct gen_op *g)
{
	uint64_t seq[GEN_STREAMS] = {0}, lts[GEN_STREAMS] = {0};
	size_t msgs[GEN_OPS], n_msgs = 0;
	for (size_t i = 0; i < GEN_OPS; i++) {
		size_t s = pick(GEN_STREAMS);
		struct op *op = &g[i].op;
		memset(&g[i], 0, sizeof g[i]);
		op->stream.origin = (uint32_t)(s % 3 + 1);
		op->stream.incarnation = 0x5000 + s % 3;
		op->stream.boot = s == 3 ? 2 : 1;
		op->seq = ++seq[s];
		op->lts = (lts[s] += 1 + pick(3));
		op->wall_ms = (int64_t)pick(100000);
		op->author = (char *)gen_nicks[pick(7)];
		op->target = (char *)gen_rooms[pick(5)];
		op->body = g[i].body;
		op->ref = g[i].ref;
		snprintf(g[i].body, sizeof g[i].body, "b%zu", i);
		size_t r = pick(100);
		op->kind = r < 30 ? OP_MSG : r < 42 ? OP_DM : r < 58 ? OP_LIKE : r < 68 ? OP_UNLIKE
			 : r < 74 ? OP_TOPIC : r < 77 ? OP_ROOM : r < 80 ? OP_USER : r < 87 ? OP_FOLLOW
			 : r < 92 ? OP_UNFOLLOW : OP_POST;
		if (op->kind == OP_DM || op->kind == OP_FOLLOW || op->kind == OP_UNFOLLOW)
			op->target = (char *)gen_nicks[pick(7)];
		if (op->kind == OP_POST)
			op->target = CHAT_TIMELINE;
		if (op->kind == OP_MSG || op->kind == OP_DM || op->kind == OP_POST)
			msgs[n_msgs++] = i;
		if (op->kind == OP_USER && pick(2)) /* half of them: an account op */
			op->kind = (uint8_t)(OP_REGISTER + pick(3));
		if (op->kind == OP_TOPIC && pick(3)) /* two thirds: a mode, kick or invite */
			gen_mode(&g[i]);
	}
	for (size_t i = 0; i < GEN_OPS; i++) {
		struct op *op = &g[i].op;
		if (op->kind == OP_PASSWORD || op->kind == OP_UNREGISTER) {
			/* Of a registration of the same name (any), or of none. */
			size_t j = pick(GEN_OPS);
			for (size_t k = 0; k < GEN_OPS && !(g[j].op.kind == OP_REGISTER &&
							    same_fold(g[j].op.author, op->author)); k++)
				j = (j + 1) % GEN_OPS;
			op_msgid(&g[j].op, g[i].ref, sizeof g[i].ref);
		}
		if (op->kind != OP_LIKE && op->kind != OP_UNLIKE)
			continue;
		size_t r = pick(100);
		if (r < 75 && n_msgs > 0) {
			/* A few popular lines, so users' likes and unlikes collide. */
			const struct op *m = &g[msgs[pick(n_msgs < 12 ? n_msgs : 12)]].op;
			op_msgid(m, g[i].ref, sizeof g[i].ref);
			if (pick(5) == 0)
				op->author = m->author; /* a like of one's own line */
		} else if (r < 85) {
			op_msgid(&g[pick(GEN_OPS)].op, g[i].ref, sizeof g[i].ref);
		} else {
			snprintf(g[i].ref, sizeof g[i].ref, "9-0000000000000009-1-%zu", pick(4));
		}
	}
}

/* A random order of all ops with about a fifth of them repeated. */
static size_t shuffled(size_t *order)
{
	size_t n = 0;
	for (size_t i = 0; i < GEN_OPS; i++) {
		order[n++] = i;
		if (pick(5) == 0)
			order[n++] = i;
	}
	for (size_t i = n; i > 1; i--) {
		size_t j = pick(i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	return n;
}

/* Serialises every history (rooms then conversations) as msgids with likes,
 * read from the chat's store. */
struct dump {
	char *buf;
	size_t len;
	FILE *f;
	struct chat *c;
	const char *nick;   /* dump_peer: whose conversations */
};

static void dump_history(struct dump *d, const char *hist)
{
	static const struct chat_msg *all[GEN_OPS];
	long n = whole(d->c, hist, all);
	for (long i = 0; i < n; i++)
		fprintf(d->f, " %s/%u", all[i]->msgid, all[i]->likes);
	fputc('\n', d->f);
}

static void dump_room(struct chat_room *r, void *arg)
{
	struct dump *d = arg;
	char *hist = chat_room_history_key(r->name);
	fprintf(d->f, "%s topic=%s by %s (%zu):", r->name, r->topic, r->topic_author,
		chat_history_len(r->history));
	dump_history(d, hist);
	free(hist);
}

static void dump_peer(const char *peer, struct chat_history *h, void *arg)
{
	struct dump *d = arg;
	char *hist = chat_dm_history_key(d->nick, peer); /* generated ops have no accounts */
	fprintf(d->f, "  dm %s (%zu):", peer, chat_history_len(h));
	dump_history(d, hist);
	free(hist);
}

static void dump_followee(const char *nick, void *arg)
{
	fprintf(((struct dump *)arg)->f, " %s", nick);
}

static void dump_user(const char *nick, void *arg)
{
	struct dump *d = arg;
	static const struct chat_msg *tl[GEN_OPS];
	const struct chat_history *feed = chat_feed_history(d->c, nick);
	const struct chat_account *a = chat_account_find(d->c, nick);
	if (a)
		fprintf(d->f, "account %s %s %s\n", a->name, a->regid, a->verifier);
	fprintf(d->f, "user %s follows", nick);
	chat_follow_each(d->c, nick, dump_followee, d);
	fprintf(d->f, "\n  feed:");
	if (feed) {
		char *hist = chat_feed_history_key(nick);
		dump_history(d, hist);
		free(hist);
	}
	fprintf(d->f, "\n  timeline:");
	char *person = chat_casefold(nick);
	for (size_t i = 0, n = timeline_last(d->c, person, GEN_OPS, tl); i < n; i++)
		fprintf(d->f, " %s", tl[i]->msgid);
	free(person);
	fputc('\n', d->f);
	d->nick = nick;
	chat_dm_each(d->c, nick, dump_peer, d);
}

static char *dump_chat(struct chat *c)
{
	struct dump d = {NULL, 0, NULL, c, NULL};
	d.f = open_memstream(&d.buf, &d.len);
	chat_rooms_each(c, dump_room, &d);
	chat_users_each(c, dump_user, &d);
	fclose(d.f);
	return d.buf;
}


/* The follow op in force for (follower, followee) by brute force: the
 * highest-keyed OP_FOLLOW/OP_UNFOLLOW of the pair, or NULL. */
static const struct op *follow_in_force(const struct gen_op *g, const char *follower, const char *followee)
{
	const struct op *last = NULL;
	for (size_t j = 0; j < GEN_OPS; j++) {
		const struct op *o = &g[j].op;
		if ((o->kind == OP_FOLLOW || o->kind == OP_UNFOLLOW) && same_fold(o->author, follower) &&
		    same_fold(o->target, followee) && (!last || op_cmp(o, last) > 0))
			last = o;
	}
	return last;
}

/* Checks follow states and whole timelines against brute force: a post is on
 * u's timeline iff u follows its author (not u) by a follow op of a smaller
 * key and the post's person holds the name (the generated posts have no
 * account: the name is registered to no one); the timeline lists exactly
 * those, in canonical order. */
static void check_follow_oracle(struct chat *c, const struct gen_op *g)
{
	static const struct chat_msg *tl[GEN_OPS];
	for (size_t u = 0; u < 7; u++) {
		size_t expected = 0;
		for (size_t v = 0; v < 7; v++) {
			const struct op *f = follow_in_force(g, gen_nicks[u], gen_nicks[v]);
			int on = f && f->kind == OP_FOLLOW && !same_fold(gen_nicks[u], gen_nicks[v]);
			CHECK_EQ_INT(chat_following(c, gen_nicks[u], gen_nicks[v]), on);
		}
		for (size_t j = 0; j < GEN_OPS; j++) {
			const struct op *p = &g[j].op;
			if (p->kind != OP_POST)
				continue;
			const struct op *f = follow_in_force(g, gen_nicks[u], p->author);
			int on = f && f->kind == OP_FOLLOW && !same_fold(gen_nicks[u], p->author) &&
				 op_cmp(p, f) > 0 && !chat_account_find(c, p->author);
			CHECK_EQ_INT(chat_timeline_includes(c, gen_nicks[u], p), on);
			expected += (size_t)on;
		}
		char *person = chat_casefold(gen_nicks[u]);
		size_t n = timeline_last(c, person, GEN_OPS, tl);
		free(person);
		CHECK_EQ_INT(n, expected);
		for (size_t i = 1; i < n; i++)
			CHECK(op_cmp(&tl[i - 1]->op, &tl[i]->op) < 0);
	}
}

/* Checks c against brute force over the op set: like counts and likers,
 * topics, room spellings, message counts and strict canonical order. */
/* The newest OP_MODE of room changing letter (with a parameter equal to
 * param in any case, when param), or NULL. */
static const struct op *mode_in_force(const struct gen_op *g, const char *room, char letter, const char *param)
{
	const struct op *best = NULL;
	for (size_t j = 0; j < GEN_OPS; j++) {
		const struct op *o = &g[j].op;
		if (o->kind == OP_MODE && same_fold(o->target, room) && o->body[1] == letter &&
		    (!param || same_fold(o->ref, param)) && (!best || op_cmp(o, best) > 0))
			best = o;
	}
	return best;
}

/* The room's flags, key, limit, bans and voices by brute force. */
static void check_modes_oracle(const struct chat_room *room, const struct gen_op *g, const char *name)
{
	static const char flags[] = "imnst";
	static const unsigned bits[] = {CHAT_MODE_I, CHAT_MODE_M, CHAT_MODE_N, CHAT_MODE_S, CHAT_MODE_T};
	unsigned want = 0;
	for (int i = 0; flags[i]; i++) {
		const struct op *o = mode_in_force(g, name, flags[i], NULL);
		if (o ? o->body[0] == '+' : flags[i] == 'n' || flags[i] == 't')
			want |= bits[i];
	}
	CHECK_EQ_INT(room->modes, want);
	const struct op *k = mode_in_force(g, name, 'k', NULL), *l = mode_in_force(g, name, 'l', NULL);
	CHECK_EQ_STR(room->key, k && k->body[0] == '+' ? k->ref : "");
	CHECK_EQ_INT(room->limit, l && l->body[0] == '+' ? (unsigned)atoi(l->ref) : 0);
	char bans[64] = "", want_bans[64] = "";
	chat_room_list_each(room, 'b', count_mask, bans);
	for (size_t i = 0; i < 3; i++) {
		static const char *masks[] = {"a!*@*", "b!*@*"};
		const struct op *o = i < 2 ? mode_in_force(g, name, 'b', masks[i]) : NULL;
		if (o && o->body[0] == '+') {
			strcat(want_bans, o->ref);
			strcat(want_bans, ",");
		}
	}
	CHECK_EQ_STR(bans, want_bans);
	for (size_t u = 0; u < 7; u++) {
		char *person = chat_casefold(gen_nicks[u]);
		const struct op *v = mode_in_force(g, name, 'v', gen_nicks[u]);
		CHECK_EQ_INT(chat_room_is_voiced(room, person), v && v->body[0] == '+');
		free(person);
	}
}

static void check_oracle(struct chat *c, const struct gen_op *g)
{
	size_t n_msgs = 0;
	for (size_t i = 0; i < GEN_OPS; i++) {
		const struct op *m = &g[i].op;
		if (m->kind != OP_MSG && m->kind != OP_DM && m->kind != OP_POST)
			continue;
		n_msgs++;
		char id[OP_MSGID_MAX];
		op_msgid(m, id, sizeof id);
		uint32_t likes = 0;
		for (size_t u = 0; u < 7; u++) {
			const struct op *last = NULL;
			for (size_t j = 0; j < GEN_OPS; j++) {
				const struct op *l = &g[j].op;
				if ((l->kind == OP_LIKE || l->kind == OP_UNLIKE) && strcmp(l->ref, id) == 0 &&
				    same_fold(l->author, gen_nicks[u]) && (!last || op_cmp(l, last) > 0))
					last = l;
			}
			int liked = last && last->kind == OP_LIKE && !same_fold(m->author, gen_nicks[u]);
			CHECK_EQ_INT(liked_by(c, id, gen_nicks[u]), liked);
			if (liked && (u == 0 || !same_fold(gen_nicks[u], gen_nicks[u - 1])))
				likes++;
		}
		CHECK_EQ_INT(likes_of(c, id), likes);
	}
	for (size_t r = 0; r < 5; r++) {
		const struct op *topic = NULL, *first = NULL;
		size_t in_room = 0;
		for (size_t j = 0; j < GEN_OPS; j++) {
			const struct op *o = &g[j].op;
			if (!same_fold(o->target, gen_rooms[r]))
				continue;
			if (o->kind == OP_MSG || o->kind == OP_TOPIC || o->kind == OP_ROOM ||
			    o->kind == OP_LIKE || o->kind == OP_UNLIKE || o->kind == OP_MODE ||
			    o->kind == OP_KICK || o->kind == OP_INVITE)
				if (!first || op_cmp(o, first) < 0)
					first = o;
			if (o->kind == OP_TOPIC && (!topic || op_cmp(o, topic) > 0))
				topic = o;
			in_room += o->kind == OP_MSG;
		}
		struct chat_room *room = chat_room_find(c, gen_rooms[r]);
		CHECK((room != NULL) == (first != NULL));
		if (!room || !first)
			continue;
		CHECK_EQ_STR(room->name, first->target);
		CHECK_EQ_INT(room->created_ms, first->wall_ms);
		CHECK_EQ_STR(room->topic, topic ? topic->body : "");
		CHECK_EQ_STR(room->topic_author, topic ? topic->author : "");
		static const struct chat_msg *all[GEN_OPS];
		char *hist = chat_room_history_key(room->name);
		long n = whole(c, hist, all);
		free(hist);
		CHECK_EQ_INT(chat_history_len(room->history), in_room);
		CHECK_EQ_INT(n, in_room);
		for (long i = 1; i < n; i++)
			CHECK(op_cmp(&all[i - 1]->op, &all[i]->op) < 0);
		check_modes_oracle(room, g, gen_rooms[r]);
	}
	size_t dm_total = 0;
	for (size_t a = 0; a < 7; a++)
		for (size_t b = a; b < 7; b++) {
			if ((b > a && same_fold(gen_nicks[b], gen_nicks[b - 1])) ||
			    (a > 0 && same_fold(gen_nicks[a], gen_nicks[a - 1])))
				continue;
			const struct chat_history *h = chat_dm_history(c, gen_nicks[a], gen_nicks[b]);
			dm_total += h ? chat_history_len(h) : 0;
		}
	size_t room_total = 0;
	for (size_t r = 0; r < 5; r++) {
		const struct chat_room *room = chat_room_find(c, gen_rooms[r]);
		if (room && (r == 0 || !same_fold(gen_rooms[r], gen_rooms[r - 1])))
			room_total += chat_history_len(room->history);
	}
	size_t feed_total = 0;
	for (size_t a = 0; a < 7; a++) {
		const struct chat_history *h = chat_feed_history(c, gen_nicks[a]);
		if (h && (a == 0 || !same_fold(gen_nicks[a], gen_nicks[a - 1])))
			feed_total += chat_history_len(h);
	}
	CHECK_EQ_INT(dm_total + room_total + feed_total, n_msgs);
	check_follow_oracle(c, g);
}

/* Applies one random op set to REPLICAS chats in different orders with
 * duplicates; returns 1 if they all converged. */
static int converge_once(uint64_t seed)
{
	struct gen_op *g = xcalloc(GEN_OPS, sizeof *g);
	size_t *order = xcalloc(2 * GEN_OPS, sizeof *order);
	struct chat *c[REPLICAS];
	char digest[REPLICAS][65], set_digest[REPLICAS][65];
	char *dumps[REPLICAS];
	int before = check_failures;

	rng_state = seed;
	generate(g);
	for (int r = 0; r < REPLICAS; r++) {
		c[r] = tchat_new();
		size_t n = shuffled(order);
		for (size_t i = 0; i < n; i++) {
			struct chat_effect eff;
			CHECK_EQ_INT(tapply(c[r], &g[order[i]].op, &eff), 0);
		}
		digest_of(c[r], digest[r]);
		chat_set_digest(c[r], set_digest[r]);
		dumps[r] = dump_chat(c[r]);
		CHECK_EQ_INT(chat_op_count(c[r]), GEN_OPS);
	}
	check_oracle(c[0], g);
	for (int r = 1; r < REPLICAS; r++) {
		CHECK_EQ_STR(digest[r], digest[0]);
		CHECK_EQ_STR(set_digest[r], set_digest[0]);
		CHECK_EQ_STR(dumps[r], dumps[0]);
		CHECK_EQ_INT(chat_max_lts(c[r]), chat_max_lts(c[0]));
		CHECK_EQ_INT(chat_room_count(c[r]), chat_room_count(c[0]));
	}
	for (int r = 0; r < REPLICAS; r++) {
		free(dumps[r]);
		tchat_free(c[r]);
	}
	free(order);
	free(g);
	return check_failures == before;
}

TEST(convergence)
{
	for (uint64_t seed = 1; seed <= 50; seed++)
		if (!converge_once(seed))
			fprintf(stderr, "  convergence failed with seed %" PRIu64 "\n", seed);
}

/* The set digest: an empty chat's is zero; it moves with each new op and
 * not with a duplicate; carries propagate (the sum of many ops equals the
 * same sum in reverse order). */
TEST(set_digest)
{
	struct gen_op *g = xcalloc(GEN_OPS, sizeof *g);
	rng_state = 11;
	generate(g);
	struct chat *a = tchat_new(), *b = tchat_new();
	char da[65], db[65], before[65];
	chat_set_digest(a, da);
	CHECK_EQ_STR(da, "0000000000000000000000000000000000000000000000000000000000000000");
	for (size_t i = 0; i < GEN_OPS; i++) {
		struct chat_effect eff;
		chat_set_digest(a, before);
		tapply(a, &g[i].op, &eff);
		chat_set_digest(a, da);
		CHECK(strcmp(da, before) != 0);
		tapply(a, &g[i].op, &eff);
		chat_set_digest(a, db);
		CHECK_EQ_STR(db, da);
		tapply(b, &g[GEN_OPS - 1 - i].op, &eff);
	}
	chat_set_digest(a, da);
	chat_set_digest(b, db);
	CHECK_EQ_STR(da, db);
	tchat_free(a);
	tchat_free(b);
	free(g);
}

/* A missing op makes replicas differ. */
/* What a chat derives rather than keeps, per generated nick: its
 * conversations with their lengths, whom it follows and who follows it. */
static void derived_text(const struct chat *c, char *out, size_t cap)
{
	out[0] = '\0';
	for (size_t u = 0; u < 7; u++) {
		char list[256] = "";
		chat_dm_each(c, gen_nicks[u], add_peer, list);
		chat_follow_each(c, gen_nicks[u], add_nick, list);
		strcat(list, "|");
		chat_followers_each(c, gen_nicks[u], add_nick, list);
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "%s: %s\n", gen_nicks[u], list);
	}
}

/* A snapshot taken anywhere in a shuffled op set with duplicates, restored,
 * then given the rest of the ops, is the chat that got them all: digests,
 * counters and what is derived (conversations, follow lists) alike; and no
 * cut of a snapshot short of its end is taken. */
TEST(snapshot_restores_the_state)
{
	struct gen_op *g = xcalloc(GEN_OPS, sizeof *g);
	size_t *order = xcalloc(2 * GEN_OPS, sizeof *order);
	static char da[8192], db[8192];
	for (uint64_t seed = 1; seed <= 30; seed++) {
		rng_state = seed * 7919;
		generate(g);
		size_t n = shuffled(order), cut = pick(n + 1);
		struct chat *a = chat_new(), *b = chat_new();
		struct chat_effect eff;
		struct op_buf snap = {0};
		for (size_t i = 0; i < cut; i++)
			chat_apply(a, &g[order[i]].op, NULL, &eff);
		chat_snapshot(a, &snap);
		CHECK_EQ_INT(chat_restore(b, snap.data, snap.len), 0);
		for (size_t i = cut; i < n; i++) {
			chat_apply(a, &g[order[i]].op, NULL, &eff);
			chat_apply(b, &g[order[i]].op, NULL, &eff);
		}
		char x[65], y[65];
		chat_digest(a, "", x);
		chat_digest(b, "", y);
		CHECK_EQ_STR(x, y);
		chat_set_digest(a, x);
		chat_set_digest(b, y);
		CHECK_EQ_STR(x, y);
		CHECK_EQ_INT(chat_op_count(b), chat_op_count(a));
		CHECK_EQ_INT(chat_max_lts(b), chat_max_lts(a));
		derived_text(a, da, sizeof da);
		derived_text(b, db, sizeof db);
		CHECK_EQ_STR(da, db);
		if (seed <= 3) /* every cut short of the end is refused, the chat left new */
			for (size_t len = 0; len < snap.len; len += 1 + len / 64) {
				struct chat *t = chat_new();
				CHECK_EQ_INT(chat_restore(t, snap.data, len), -1);
				CHECK_EQ_INT(chat_op_count(t), 0);
				CHECK_EQ_INT(chat_room_count(t), 0);
				chat_free(t);
			}
		op_buf_free(&snap);
		chat_free(a);
		chat_free(b);
	}
	free(order);
	free(g);
}

TEST(divergence_detected)
{
	struct gen_op *g = xcalloc(GEN_OPS, sizeof *g);
	rng_state = 7;
	generate(g);
	struct chat *full = tchat_new(), *partial = tchat_new();
	char d1[65], d2[65];
	for (size_t i = 0; i < GEN_OPS; i++) {
		struct chat_effect eff;
		tapply(full, &g[i].op, &eff);
		if (g[i].op.kind != OP_LIKE || i < GEN_OPS / 2)
			tapply(partial, &g[i].op, &eff);
	}
	digest_of(full, d1);
	digest_of(partial, d2);
	CHECK(strcmp(d1, d2) != 0);
	chat_set_digest(full, d1);
	chat_set_digest(partial, d2);
	CHECK(strcmp(d1, d2) != 0);
	tchat_free(full);
	tchat_free(partial);
	free(g);
}

/* ---- the store's message index against the chat's store ---- */

/* Writes the msgids and like counts of ms to out. */
static void msgs_text(const struct store_msgs *ms, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < ms->n && len < cap; i++) {
		char id[OP_MSGID_MAX];
		op_msgid(&ms->ops[i], id, sizeof id);
		len += (size_t)snprintf(out + len, cap - len, " %s/%u", id, ms->likes[i]);
	}
}

static void selected_text(const struct chat_msg **m, long n, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (long i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, " %s/%u", m[i]->msgid, m[i]->likes);
}

/* Compares selection sel of history key with anchors a and b (a NULL for
 * LATEST without one) in c's store (whose index lags MSGINDEX_LAG: read from
 * its tail) and in st. */
static int same_selection_in_store(struct store *st, struct chat *c, const char *key,
				   enum store_select s, const struct store_anchor *a,
				   const struct store_anchor *b, size_t limit)
{
	static const struct chat_msg *out[GEN_OPS];
	static char want[GEN_OPS * 48], got[GEN_OPS * 48];
	static const char *names[] = {"LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"};
	long n = sel(c, key, s, a, b, limit, out);
	struct store_msgs ms;
	int rc = store_select(st, key, s, a, b, limit, &ms);
	selected_text(out, n, want, sizeof want);
	msgs_text(&ms, got, sizeof got);
	store_msgs_free(&ms);
	int same = n < 0 ? rc == STORE_NOTFOUND && !got[0] : rc == STORE_OK && strcmp(want, got) == 0;
	if (!same)
		fprintf(stderr, "  %s %s %s %s limit %zu: chat's (%ld)%s\n  store (%d)%s\n", key, names[s],
			a && a->msgid ? a->msgid : "(time)", b->msgid ? b->msgid : "(time)", limit, n, want,
			rc, got);
	return same;
}

/* A random anchor among the n messages all: one of their msgids, a time
 * near one of theirs, or a msgid of no message. */
static struct store_anchor random_anchor(const struct chat_msg **all, size_t n)
{
	struct store_anchor a = {NULL, 0};
	const struct chat_msg *m = all[pick(n)];
	size_t r = pick(10);
	if (r < 5)
		a.msgid = m->msgid;
	else if (r < 9)
		a.ms = op_time_ms(&m->op) + (int64_t)pick(3) - 1;
	else
		a.msgid = "9-0000000000000009-1-3";
	return a;
}

/* Compares one timeline selection of person (after/before anchors, either
 * NULL) in c's store and in st. */
static int same_timeline_in_store(struct store *st, struct chat *c, const char *person,
				  const struct store_anchor *after, const struct store_anchor *before,
				  size_t limit, int from_end)
{
	static const struct chat_msg *out[GEN_OPS];
	static char want[GEN_OPS * 48], got[GEN_OPS * 48];
	struct store_feed feeds[16], *end = feeds;
	chat_timeline_feeds(c, person, add_feed, &end);
	long n = tl_sel(c, person, after, before, limit, from_end, out);
	struct store_msgs ms;
	int rc = store_timeline(st, feeds, (size_t)(end - feeds), after, before, limit, from_end, &ms);
	selected_text(out, n, want, sizeof want);
	msgs_text(&ms, got, sizeof got);
	store_msgs_free(&ms);
	for (struct store_feed *f = feeds; f < end; f++)
		free(f->hist);
	int same = n < 0 ? rc == STORE_NOTFOUND : rc == STORE_OK && strcmp(want, got) == 0;
	if (!same)
		fprintf(stderr, "  timeline of %s (%zu feeds) limit %zu%s: chat's (%ld)%s\n  store (%d)%s\n",
			person, (size_t)(end - feeds), limit, from_end ? " from the end" : "", n, want, rc, got);
	return same;
}

/* A random anchor for a timeline: a post's msgid or time (of posts in g),
 * or an unknown msgid. */
static struct store_anchor random_post_anchor(const struct gen_op *g)
{
	struct store_anchor a = {NULL, 0};
	size_t i = pick(GEN_OPS);
	for (size_t k = 0; k < GEN_OPS && g[i].op.kind != OP_POST; k++)
		i = (i + 1) % GEN_OPS;
	size_t r = pick(10);
	if (r < 5) {
		static char id[OP_MSGID_MAX];
		op_msgid(&g[i].op, id, sizeof id);
		a.msgid = id;
	} else if (r < 9) {
		a.ms = op_time_ms(&g[i].op) + (int64_t)pick(3) - 1;
	} else {
		a.msgid = "9-0000000000000009-1-3";
	}
	return a;
}

/* One random op set, its lts spread so canonical times differ, into a chat
 * (one op at a time: its store's index reads everything from its tail) and
 * into an SQLite store on disk in shuffled batches with duplicates, its
 * message index lagging by lag ops; every history, some windows of each,
 * every message lookup and timelines must agree, read from the index, its
 * tail in RAM, or both. (check_oracle holds the chat's store to brute
 * force.) */
static int index_matches_once(uint64_t seed, const char *dir, int lag)
{
	struct gen_op *g = xcalloc(GEN_OPS, sizeof *g);
	size_t *order = xcalloc(2 * GEN_OPS, sizeof *order);
	struct store_sqlite_options opt = {.sync = STORE_SYNC_OFF, .index_lag = lag};
	char *err = NULL;
	struct store *st = store_sqlite_open(dir, &opt, &err);
	struct chat *c = tchat_new();
	int ok = st != NULL;
	static char want[GEN_OPS * 48], got[GEN_OPS * 48];
	rng_state = seed;
	generate(g);
	for (size_t i = 0; i < GEN_OPS; i++)
		g[i].op.lts <<= 12; /* times lts >> 4 */
	size_t n = shuffled(order);
	for (size_t i = 0; ok && i < n;) {
		struct op batch[8];
		size_t k = 0, want_k = 1 + pick(8);
		for (; k < want_k && i < n; k++, i++) {
			struct chat_effect eff;
			batch[k] = g[order[i]].op;
			tapply(c, &batch[k], &eff);
		}
		ok = store_append(st, batch, k, NULL) == STORE_OK;
	}
	for (size_t i = 0; ok && i < GEN_OPS; i++) {
		char *key = chat_op_valid(&g[i].op) == 0 ? chat_history_key(&g[i].op) : NULL;
		if (!key)
			continue;
		struct store_msgs ms;
		ok = store_history(st, key, NULL, NULL, GEN_OPS, 0, &ms) == STORE_OK;
		msgs_text(&ms, got, sizeof got);
		store_msgs_free(&ms);
		static const struct chat_msg *all[GEN_OPS];
		long len = whole(c, key, all);
		selected_text(all, len, want, sizeof want);
		if (strcmp(want, got) != 0) {
			fprintf(stderr, "  %s: chat's%s\n  store%s\n", key, want, got);
			ok = 0;
		}
		for (int w = 0; ok && w < 12 && len > 0; w++) {
			struct store_anchor a = random_anchor(all, (size_t)len), b = random_anchor(all, (size_t)len);
			size_t limit = pick(7);
			for (int s = STORE_LATEST; ok && s <= STORE_BETWEEN; s++)
				ok = same_selection_in_store(st, c, key, (enum store_select)s, &a, &b, limit);
			ok = ok && same_selection_in_store(st, c, key, STORE_LATEST, NULL, &b, limit);
		}
		free(key);
	}
	for (size_t i = 0; ok && i < GEN_OPS; i++) { /* every msgid and like ref, by every nick */
		char id[OP_MSGID_MAX];
		op_msgid(&g[i].op, id, sizeof id);
		const char *msgid = i % 2 ? id : g[i].ref;
		char *person = chat_person(gen_nicks[i % 7], NULL);
		struct store_msgs ms, ref;
		int liked = -1, rc = store_message(st, msgid, person, &ms, &liked);
		int ref_liked = -1, ref_rc = store_message(store_of(c), msgid, person, &ref, &ref_liked);
		char want_id[OP_MSGID_MAX + 32] = "", got_id[OP_MSGID_MAX + 32] = "";
		if (ref_rc == STORE_OK && ref.n == 1) {
			op_msgid(&ref.ops[0], want_id, sizeof want_id);
			snprintf(want_id + strlen(want_id), sizeof want_id - strlen(want_id), "/%u/%d", ref.likes[0],
				 ref_liked);
		}
		if (rc == STORE_OK && ms.n == 1) {
			op_msgid(&ms.ops[0], got_id, sizeof got_id);
			snprintf(got_id + strlen(got_id), sizeof got_id - strlen(got_id), "/%u/%d", ms.likes[0], liked);
		}
		if (rc != ref_rc || strcmp(want_id, got_id) != 0) {
			fprintf(stderr, "  message %s for %s: chat's (%d) %s, store (%d) %s\n", msgid, person, ref_rc,
				want_id, rc, got_id);
			ok = 0;
		}
		store_msgs_free(&ms);
		store_msgs_free(&ref);
		free(person);
	}
	for (size_t i = 0; ok && i < sizeof gen_nicks / sizeof gen_nicks[0]; i++) {
		char *person = chat_person(gen_nicks[i], NULL);
		for (int w = 0; ok && w < 8; w++) {
			struct store_anchor a = random_post_anchor(g), b = random_post_anchor(g);
			size_t limit = pick(8);
			int from_end = w % 2;
			ok = same_timeline_in_store(st, c, person, w % 4 < 2 ? &a : NULL, w % 3 ? &b : NULL, limit,
						    from_end);
		}
		free(person);
	}
	if (!ok)
		fprintf(stderr, "  message index (lag %d) differs from the chat's with seed %" PRIu64 "%s%s\n",
			lag, seed, err ? ": " : "", err ? err : "");
	free(err);
	if (st)
		store_close(st);
	tchat_free(c);
	free(order);
	free(g);
	return ok;
}

TEST(store_index_matches_at_any_lag)
{
	char dir[] = "/tmp/chorus-test-index-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	static const int lags[] = {1, 5, 0}; /* 0: the default, more than GEN_OPS */
	for (uint64_t seed = 1; seed <= 30; seed++) {
		char sub[64], db[96];
		snprintf(sub, sizeof sub, "%s/%" PRIu64, dir, seed);
		CHECK(index_matches_once(seed, sub, lags[seed % 3]));
		snprintf(db, sizeof db, "%s/chorus.db", sub);
		remove(db);
		snprintf(db, sizeof db, "%s/chorus.db-wal", sub);
		remove(db);
		snprintf(db, sizeof db, "%s/chorus.db-shm", sub);
		remove(db);
		remove(sub);
	}
	remove(dir);
}

int main(void)
{
	RUN(casefold);
	RUN(empty);
	RUN(idempotence);
	RUN(set_digest);
	RUN(users);
	RUN(rooms);
	RUN(room_name_converges);
	RUN(topic_lww);
	RUN(message_order);
	RUN(history_cache);
	RUN(null_strings);
	RUN(dm_conversations);
	RUN(likes_lww);
	RUN(own_likes_ignored);
	RUN(placeholder_likes);
	RUN(dm_likes);
	RUN(malformed);
	RUN(room_modes_converge);
	RUN(op_codec);
	RUN(msgid_format);
	RUN(follow_lww);
	RUN(self_follow_ignored);
	RUN(follow_lists);
	RUN(posts_and_feeds);
	RUN(timeline_excludes_pre_follow);
	RUN(timeline_refollow);
	RUN(timeline_limit_and_order);
	RUN(account_lifecycle);
	RUN(account_concurrent_registrations);
	RUN(persons_keep_accounts_apart);
	RUN(select_latest_before_after);
	RUN(select_around);
	RUN(select_between);
	RUN(select_empty_history);
	RUN(time_anchors_match_a_full_scan);
	RUN(convergence);
	RUN(snapshot_restores_the_state);
	RUN(divergence_detected);
	RUN(store_index_matches_at_any_lag);
	return CHECK_DONE();
}
