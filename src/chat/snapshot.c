/*
 * snapshot.c: the chat's state as bytes and back (chat_snapshot,
 * chat_restore), so a replica starts from its last snapshot and the ops
 * stored after it instead of replaying every op (issue 15).
 *
 * Layout: the magic "chorus-chat-snapshot 2", then the counters (ops
 * applied, highest lts, the set digest's sum), the applied seqs of every
 * stream, the users, the rooms (names, topics, mode registers, founder,
 * history), the conversations, the feeds and follow states (feeds.c) and the
 * account ops (accounts.c). Integers are 8 bytes little-endian, strings a
 * u32 length and their bytes (op.h's codec blocks). What is derived (public
 * mode fields, parties, follow lists, account folds, sorted listings) is
 * rebuilt, not stored. Caches are not in it: a restored chat has none.
 */
#include "chat_impl.h"

#include <string.h>

#define SNAP_MAGIC "chorus-chat-snapshot 2" /* 2: histories count repeats */

void snap_u64(struct op_buf *b, uint64_t v)
{
	op_buf_put_u(b, v, 8);
}

void snap_str(struct op_buf *b, const char *s)
{
	op_buf_put_str(b, s ? s : "");
}

void snap_key(struct op_buf *b, const struct op_key *k)
{
	snap_u64(b, k->lts);
	snap_u64(b, k->stream.origin);
	snap_u64(b, k->stream.incarnation);
	snap_u64(b, k->stream.boot);
	snap_u64(b, k->seq);
}

uint64_t snap_read_u64(struct op_reader *r)
{
	return op_read_u(r, 8);
}

/* A string of at most OP_FIELD_MAX bytes; "" (allocated) if malformed. */
char *snap_read_str(struct op_reader *r)
{
	char *s = op_read_str(r);
	return s ? s : xstrdup("");
}

struct op_key snap_read_key(struct op_reader *r)
{
	struct op_key k;
	k.lts = snap_read_u64(r);
	k.stream.origin = (uint32_t)snap_read_u64(r);
	k.stream.incarnation = snap_read_u64(r);
	k.stream.boot = (uint32_t)snap_read_u64(r);
	k.seq = snap_read_u64(r);
	return k;
}

/* A count of items each taking at least min bytes: 0 with r->bad set if
 * the rest of the input cannot hold them. */
size_t snap_read_count(struct op_reader *r, size_t min)
{
	uint64_t n = snap_read_u64(r);
	if (r->bad || n > r->left / (min ? min : 1)) {
		r->bad = 1;
		return 0;
	}
	return (size_t)n;
}

/* ---- applied seqs and users ---- */

static void put_applied(const struct chat *c, struct op_buf *b)
{
	const struct applied *a;
	snap_u64(b, HASH_COUNT(c->applied));
	for (a = c->applied; a; a = a->hh.next) {
		snap_u64(b, a->id.incarnation);
		snap_u64(b, a->id.origin);
		snap_u64(b, a->id.boot);
		snap_u64(b, a->seqs.hi);
		snap_u64(b, a->seqs.nabove);
		for (size_t i = 0; i < a->seqs.nabove; i++)
			snap_u64(b, a->seqs.above[i]);
	}
}

static void get_applied(struct chat *c, struct op_reader *r)
{
	size_t n = snap_read_count(r, 40);
	for (size_t i = 0; i < n && !r->bad; i++) {
		struct applied *a = xcalloc(1, sizeof *a);
		a->id.incarnation = snap_read_u64(r);
		a->id.origin = (uint32_t)snap_read_u64(r);
		a->id.boot = (uint32_t)snap_read_u64(r);
		a->seqs.hi = snap_read_u64(r);
		size_t above = snap_read_count(r, 8);
		for (size_t j = 0; j < above && !r->bad; j++)
			seqset_add(&a->seqs, snap_read_u64(r));
		HASH_ADD(hh, c->applied, id, sizeof a->id, a);
	}
}

static void put_users(const struct chat *c, struct op_buf *b)
{
	snap_u64(b, HASH_COUNT(c->users));
	for (const struct user *u = c->users; u; u = u->hh.next) {
		snap_str(b, u->nick);
		snap_key(b, &u->spelled_by);
	}
}

static void get_users(struct chat *c, struct op_reader *r)
{
	size_t n = snap_read_count(r, 44);
	for (size_t i = 0; i < n && !r->bad; i++) {
		struct user *u = xcalloc(1, sizeof *u), *dup;
		u->nick = snap_read_str(r);
		u->key = chat_casefold(u->nick);
		u->spelled_by = snap_read_key(r);
		HASH_FIND_STR(c->users, u->key, dup);
		r->bad |= dup != NULL; /* twice: not ours */
		HASH_ADD_KEYPTR(hh, c->users, u->key, strlen(u->key), u);
	}
}

/* ---- rooms and conversations ---- */

static void put_rooms(const struct chat *c, struct op_buf *b)
{
	snap_u64(b, HASH_COUNT(c->rooms));
	for (const struct room_entry *e = c->rooms; e; e = e->hh.next) {
		const struct chat_room *room = &e->room;
		snap_str(b, room->name);
		snap_key(b, &e->named_by);
		snap_u64(b, (uint64_t)room->created_ms);
		snap_u64(b, (uint64_t)e->has_topic);
		snap_str(b, room->topic);
		snap_str(b, room->topic_author);
		snap_u64(b, (uint64_t)room->topic_ms);
		snap_key(b, &e->topic_by);
		modes_snapshot(e, b);
		history_snapshot(room->history, b);
	}
}

static void get_rooms(struct chat *c, struct op_reader *r)
{
	size_t n = snap_read_count(r, 64);
	for (size_t i = 0; i < n && !r->bad; i++) {
		char *name = snap_read_str(r), *key = chat_casefold(name);
		struct op_key named_by = snap_read_key(r);
		int64_t created_ms = (int64_t)snap_read_u64(r);
		struct room_entry *e;
		HASH_FIND_STR(c->rooms, key, e);
		r->bad |= e != NULL; /* twice: not ours */
		e = room_new(c, name, &named_by, created_ms);
		free(name);
		free(key);
		e->has_topic = snap_read_u64(r) != 0;
		free(e->room.topic);
		free(e->room.topic_author);
		e->room.topic = snap_read_str(r);
		e->room.topic_author = snap_read_str(r);
		e->room.topic_ms = (int64_t)snap_read_u64(r);
		e->topic_by = snap_read_key(r);
		modes_restore(e, r);
		history_restore(e->room.history, r);
	}
}

static void put_convs(const struct chat *c, struct op_buf *b)
{
	snap_u64(b, HASH_COUNT(c->convs));
	for (const struct conv *cv = c->convs; cv; cv = cv->hh.next) {
		for (int side = 0; side < 2; side++) {
			snap_str(b, cv->fold[side]);
			snap_str(b, cv->name[side]);
		}
		snap_key(b, &cv->named_by);
		history_snapshot(cv->history, b);
	}
}

static void get_convs(struct chat *c, struct op_reader *r)
{
	size_t n = snap_read_count(r, 64);
	for (size_t i = 0; i < n && !r->bad; i++) {
		char *fold0 = snap_read_str(r), *name0 = snap_read_str(r);
		char *fold1 = snap_read_str(r), *name1 = snap_read_str(r);
		struct op_key named_by = snap_read_key(r);
		size_t len;
		char *f0, *f1, *key = conv_key(fold0, fold1, &len, &f0, &f1);
		struct conv *cv;
		HASH_FIND(hh, c->convs, key, len, cv);
		if (cv || strcmp(f0, fold0) != 0) { /* twice, or not in order: not ours */
			r->bad = 1;
			free(key);
			free(f0);
			free(f1);
		} else {
			cv = conv_new(c, key, len, f0, f1, name0, name1, &named_by);
			history_restore(cv->history, r);
		}
		free(fold0);
		free(fold1);
		free(name0);
		free(name1);
	}
}

/* ---- the whole ---- */

void chat_snapshot(const struct chat *c, struct op_buf *b)
{
	op_buf_put_bytes(b, SNAP_MAGIC, sizeof SNAP_MAGIC);
	snap_u64(b, c->op_count);
	snap_u64(b, c->max_lts);
	for (int w = 0; w < 4; w++)
		snap_u64(b, c->set_digest.sum[w]);
	put_applied(c, b);
	put_users(c, b);
	put_rooms(c, b);
	put_convs(c, b);
	feeds_snapshot(c, b);
	accounts_snapshot(c, b);
}

int chat_restore(struct chat *c, const void *data, size_t len)
{
	struct op_reader r = {data, len, 0};
	if (len < sizeof SNAP_MAGIC || memcmp(data, SNAP_MAGIC, sizeof SNAP_MAGIC) != 0)
		return -1;
	r.p += sizeof SNAP_MAGIC;
	r.left -= sizeof SNAP_MAGIC;
	c->op_count = snap_read_u64(&r);
	c->max_lts = snap_read_u64(&r);
	for (int w = 0; w < 4; w++)
		c->set_digest.sum[w] = snap_read_u64(&r);
	get_applied(c, &r);
	get_users(c, &r);
	get_rooms(c, &r);
	get_convs(c, &r);
	feeds_restore(c, &r);
	accounts_restore(c, &r);
	if (r.bad || r.left) {
		chat_clear(c);
		return -1;
	}
	return 0;
}

void chat_applied_each(const struct chat *c,
		       void (*fn)(const struct op_stream *stream, const struct seqset *seqs, void *arg),
		       void *arg)
{
	for (const struct applied *a = c->applied; a; a = a->hh.next) {
		struct op_stream s;
		memset(&s, 0, sizeof s); /* hashed as bytes (repl.c's knowledge): no stray padding */
		s.origin = a->id.origin;
		s.incarnation = a->id.incarnation;
		s.boot = a->id.boot;
		fn(&s, &a->seqs, arg);
	}
}
