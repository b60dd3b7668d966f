/*
 * likes.c: like state, one value per (message, user), last writer wins.
 *
 * Each msgid that any OP_LIKE/OP_UNLIKE has referenced gets a like set: a
 * table from person (chat.h) to {liked, key of the op that set it}. An op
 * replaces a user's state only if its key (op_cmp order) is greater, so the
 * surviving state does not depend on arrival order. A set whose message has
 * not arrived is a placeholder; when the message arrives its author's state
 * is dropped (one's own likes never count, and once the message is known they
 * are not even recorded) and msg->likes becomes the number of liked states.
 */
#include "chat_impl.h"

#include <stdio.h>
#include <string.h>

struct like_set *likes_find(const struct chat *c, const char *msgid)
{
	struct like_set *s;
	HASH_FIND_STR(c->likes, msgid, s);
	return s;
}

static struct like_set *likes_get(struct chat *c, const char *msgid)
{
	struct like_set *s = likes_find(c, msgid);
	if (!s) {
		s = xcalloc(1, sizeof *s);
		snprintf(s->msgid, sizeof s->msgid, "%s", msgid);
		HASH_ADD_KEYPTR(hh, c->likes, s->msgid, strlen(s->msgid), s);
	}
	return s;
}

static struct like_state *state_find(const struct like_set *s, const char *user)
{
	struct like_state *st;
	HASH_FIND_STR(s->states, user, st);
	return st;
}

static void state_free(struct like_set *s, struct like_state *st)
{
	HASH_DEL(s->states, st);
	free(st->user);
	free(st);
}

/* Sets user's state in s from op if op's key is greater than the state's.
 * Returns the liked value before (0 when there was none). */
static int state_write(struct like_set *s, const char *user, const struct op *op)
{
	struct op_key k = op_key_of(op);
	struct like_state *st = state_find(s, user);
	int before = st ? st->liked : 0;
	if (!st) {
		st = xcalloc(1, sizeof *st);
		st->user = xstrdup(user);
		HASH_ADD_KEYPTR(hh, s->states, st->user, strlen(st->user), st);
	} else if (op_key_cmp(&k, &st->set_by) <= 0) {
		return before;
	}
	st->liked = op->kind == OP_LIKE;
	st->set_by = k;
	return before;
}

/* 1 if person is the author of msg. */
static int is_author(const struct chat_msg *msg, const char *user)
{
	char *author = chat_person(msg->op.author, msg->op.account);
	int same = strcmp(author, user) == 0;
	free(author);
	return same;
}

void likes_apply(struct chat *c, const struct op *op, const char *msgid, struct chat_effect *eff)
{
	struct msg_entry *m = chat_msg_entry(c, msgid);
	char *user = chat_person(op->author, op->account);
	if (m && is_author(&m->msg, user)) {
		eff->change = CHAT_UNCHANGED;
	} else {
		struct like_set *s = likes_get(c, msgid);
		int before = state_write(s, user, op);
		int after = state_find(s, user)->liked;
		if (!m) {
			eff->change = CHAT_LIKE_PENDING;
		} else {
			m->msg.likes = m->msg.likes + (uint32_t)after - (uint32_t)before;
			eff->change = after != before ? CHAT_LIKES_CHANGED : CHAT_LIKE_SAME;
		}
	}
	if (m) {
		eff->msg = &m->msg;
		eff->history = m->history;
	}
	free(user);
}

void likes_attach(struct chat *c, struct chat_msg *msg)
{
	struct like_set *s = likes_find(c, msg->msgid);
	msg->likes = 0;
	if (!s)
		return;
	char *author = chat_person(msg->op.author, msg->op.account);
	struct like_state *st = state_find(s, author);
	free(author);
	if (st)
		state_free(s, st);
	for (st = s->states; st; st = st->hh.next)
		msg->likes += st->liked ? 1 : 0;
}

int chat_liked_by(const struct chat *c, const char *msgid, const char *person)
{
	char canon[OP_MSGID_MAX];
	if (chat_msgid_canonical(msgid, canon) < 0)
		return 0;
	struct like_set *s = likes_find(c, canon);
	if (!s)
		return 0;
	char *user = chat_casefold(person);
	struct like_state *st = state_find(s, user);
	free(user);
	return st && st->liked;
}

static int state_cmp(const void *a, const void *b)
{
	return strcmp((*(struct like_state *const *)a)->user, (*(struct like_state *const *)b)->user);
}

struct like_state **likes_sorted(const struct like_set *s, int only_liked, size_t *n)
{
	struct like_state **all;
	size_t count, kept = 0;
	CHAT_HASH_SORTED(s->states, struct like_state, state_cmp, all, count);
	for (size_t i = 0; i < count; i++)
		if (!only_liked || all[i]->liked)
			all[kept++] = all[i];
	*n = kept;
	return all;
}

void likes_free_all(struct chat *c)
{
	struct like_set *s, *tmp;
	HASH_ITER(hh, c->likes, s, tmp) {
		struct like_state *st, *stmp;
		HASH_ITER(hh, s->states, st, stmp)
			state_free(s, st);
		HASH_DEL(c->likes, s);
		free(s);
	}
}
