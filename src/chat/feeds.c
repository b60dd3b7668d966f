/*
 * feeds.c: follow states, feeds and timelines.
 *
 * A follow state is one value per (follower, followee) pair: the follower a
 * person (see chat.h), the followee a casefolded name: following or not, and the key of the op that set it. An
 * OP_FOLLOW/OP_UNFOLLOW replaces it only if its key (op_cmp order) is
 * greater, as for likes, so the surviving state does not depend on arrival
 * order: a follow and an unfollow of one pair made in two partitions resolve
 * the same way everywhere. Following oneself is ignored. A state is never
 * removed (an unfollow is a state too, so an older follow arriving late
 * loses to it).
 *
 * A feed is one person's posts (OP_POST) in canonical order: a chat_history
 * like a room's (its messages in the store's index under the feed's key).
 * Feed entries are keyed by person or name: a person's lists the follow
 * states where it follows, a name's those where it is followed, sorted by
 * the other side, for the *_each calls and timelines.
 *
 * A timeline is computed when asked for: for every name the person follows
 * now, the posts of the person who holds that name now (chat_person_of_name)
 * whose key is greater than the key of the follow in force, merged in
 * canonical order (chat_timeline_feeds gives them; the store reads them). So a post made before the follow (a smaller
 * key) is not on it, and after an unfollow and a new follow only the posts
 * after the new follow are.
 */
#include "chat_impl.h"

#include <string.h>

/* ---- feed entries ---- */

static struct feed *feed_find(const struct chat *c, const char *fold)
{
	struct feed *f;
	HASH_FIND_STR(c->feeds, fold, f);
	return f;
}

/* The feed entry of a person or name in any case, or NULL. */
static struct feed *feed_of(const struct chat *c, const char *who)
{
	char *fold = chat_casefold(who);
	struct feed *f = feed_find(c, fold);
	free(fold);
	return f;
}

/* The feed entry of the casefolded nick, made if new. */
static struct feed *feed_get(struct chat *c, const char *fold)
{
	struct feed *f = feed_find(c, fold);
	if (!f) {
		f = xcalloc(1, sizeof *f);
		f->key = xstrdup(fold);
		HASH_ADD_KEYPTR(hh, c->feeds, f->key, strlen(f->key), f);
	}
	return f;
}

struct chat_history *feeds_posts(struct chat *c, const char *person)
{
	char *fold = chat_casefold(person);
	struct feed *f = feed_get(c, fold);
	free(fold);
	if (!f->posts)
		f->posts = history_new(c, NULL);
	return f->posts;
}

struct chat_history *chat_feed_history(const struct chat *c, const char *person)
{
	struct feed *f = feed_of(c, person);
	return f ? f->posts : NULL;
}

/* The feed entry of the person holding name now, or NULL. */
static struct feed *feed_of_holder(const struct chat *c, const char *name)
{
	char *person = chat_person_of_name(c, name);
	struct feed *f = feed_find(c, person);
	free(person);
	return f;
}

/* 1 if person is the one holding its name now (a person of an account no
 * longer in force is not, nor one without an account of a registered name). */
static int holds_name(const struct chat *c, const char *person)
{
	char *name = xstrndup(person, strcspn(person, "/"));
	char *now = chat_person_of_name(c, name);
	int same = strcmp(now, person) == 0;
	free(name);
	free(now);
	return same;
}

/* ---- follow states ---- */

/* The casefolded name on one side of st. */
static const char *side(const struct follow_state *st, int followee)
{
	return followee ? st->followee : st->follower;
}

/* Inserts st into l, which is sorted by the name on st's followee side (if
 * by_followee) or follower side. */
static void list_add(struct follow_list *l, struct follow_state *st, int by_followee)
{
	const char *name = side(st, by_followee);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	size_t i = l->n;
	while (i > 0 && strcmp(side(l->v[i - 1], by_followee), name) > 0)
		i--;
	memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof *l->v);
	l->v[i] = st;
	l->n++;
}

/* The hash key of a pair: the casefolded follower, NUL, the casefolded
 * followee (a new string; *len excludes the final NUL). */
static char *pair_key(const char *follower, const char *followee, size_t *len)
{
	char *a = chat_casefold(follower), *b = chat_casefold(followee);
	size_t la = strlen(a), lb = strlen(b);
	char *key = xmalloc(la + 1 + lb + 1);
	memcpy(key, a, la + 1);
	memcpy(key + la + 1, b, lb + 1);
	*len = la + 1 + lb;
	free(a);
	free(b);
	return key;
}

static struct follow_state *state_find(const struct chat *c, const char *follower, const char *followee)
{
	size_t len;
	char *key = pair_key(follower, followee, &len);
	struct follow_state *st;
	HASH_FIND(hh, c->follows, key, len, st);
	free(key);
	return st;
}

/* A new state (not following) for the pair key made by pair_key, which it
 * takes, listed in both users' feed entries. */
static struct follow_state *state_make(struct chat *c, char *key, size_t len)
{
	struct follow_state *st = xcalloc(1, sizeof *st);
	st->key = key;
	st->keylen = len;
	st->follower = key;
	st->followee = key + strlen(key) + 1;
	HASH_ADD_KEYPTR(hh, c->follows, st->key, st->keylen, st);
	list_add(&feed_get(c, st->follower)->follows, st, 1);
	list_add(&feed_get(c, st->followee)->followers, st, 0);
	return st;
}

int follows_apply(struct chat *c, const struct op *op)
{
	size_t len;
	char *person = chat_person(op->author, op->account);
	char *key = pair_key(person, op->target, &len);
	struct op_key k = op_key_of(op);
	struct follow_state *st;
	free(person);
	const char *followee = key + strlen(key) + 1;
	size_t name_len = strcspn(key, "/"); /* the follower's name */
	if (strlen(followee) == name_len && strncmp(key, followee, name_len) == 0) {
		/* following oneself: ignored */
		free(key);
		return 0;
	}
	HASH_FIND(hh, c->follows, key, len, st);
	if (!st) {
		st = state_make(c, key, len);
	} else {
		free(key);
		if (op_key_cmp(&k, &st->set_by) <= 0)
			return 0;
	}
	int before = st->following;
	st->following = op->kind == OP_FOLLOW;
	st->set_by = k;
	return st->following != before;
}

int chat_following(const struct chat *c, const char *follower, const char *followee)
{
	struct follow_state *st = state_find(c, follower, followee);
	return st && st->following;
}

/* Calls fn with the name on the other side of every state of l that is
 * "following" (followers: only persons holding their name now). */
static void list_each(const struct chat *c, const struct follow_list *l, int followee,
		      void (*fn)(const char *nick, void *arg), void *arg)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!l->v[i]->following)
			continue;
		const char *who = side(l->v[i], followee);
		if (!followee && !holds_name(c, who))
			continue;
		char *fold = xstrndup(who, strcspn(who, "/"));
		const char *name = chat_user_name(c, fold);
		fn(name ? name : fold, arg);
		free(fold);
	}
}

void chat_follow_each(const struct chat *c, const char *nick,
		      void (*fn)(const char *followee, void *arg), void *arg)
{
	struct feed *f = feed_of(c, nick);
	if (f)
		list_each(c, &f->follows, 1, fn, arg);
}

void chat_followers_each(const struct chat *c, const char *nick,
			 void (*fn)(const char *follower, void *arg), void *arg)
{
	struct feed *f = feed_of(c, nick);
	if (f)
		list_each(c, &f->followers, 0, fn, arg);
}

/* ---- timelines ---- */

int chat_timeline_includes(const struct chat *c, const char *person, const struct op *post)
{
	if (post->kind != OP_POST)
		return 0;
	struct follow_state *st = state_find(c, person, post->author);
	struct op_key k = op_key_of(post);
	if (!st || !st->following || op_key_cmp(&k, &st->set_by) <= 0)
		return 0;
	char *poster = chat_person(post->author, post->account);
	int holder = holds_name(c, poster);
	free(poster);
	return holder;
}

void chat_timeline_feeds(const struct chat *c, const char *person,
			 void (*fn)(const char *hist, const struct op_key *from, void *arg), void *arg)
{
	struct feed *me = feed_of(c, person);
	for (size_t i = 0; me && i < me->follows.n; i++) {
		const struct follow_state *st = me->follows.v[i];
		const struct feed *f = st->following ? feed_of_holder(c, st->followee) : NULL;
		if (f && f->posts) {
			char *hist = chat_feed_history_key(f->key);
			fn(hist, &st->set_by, arg);
			free(hist);
		}
	}
}

/* ---- snapshot ---- */

void feeds_snapshot(const struct chat *c, struct op_buf *b)
{
	size_t posting = 0;
	for (const struct feed *f = c->feeds; f; f = f->hh.next)
		posting += f->posts != NULL;
	snap_u64(b, posting);
	for (const struct feed *f = c->feeds; f; f = f->hh.next)
		if (f->posts) {
			snap_str(b, f->key);
			history_snapshot(f->posts, b);
		}
	snap_u64(b, HASH_COUNT(c->follows));
	for (const struct follow_state *st = c->follows; st; st = st->hh.next) {
		snap_str(b, st->follower);
		snap_str(b, st->followee);
		snap_u64(b, (uint64_t)st->following);
		snap_key(b, &st->set_by);
	}
}

void feeds_restore(struct chat *c, struct op_reader *r)
{
	size_t n = snap_read_count(r, 52);
	for (size_t i = 0; i < n && !r->bad; i++) {
		char *key = snap_read_str(r);
		struct feed *f = feed_get(c, key);
		r->bad |= f->posts != NULL; /* twice: not ours */
		if (!f->posts)
			f->posts = history_new(c, NULL);
		history_restore(f->posts, r);
		free(key);
	}
	n = snap_read_count(r, 56);
	for (size_t i = 0; i < n && !r->bad; i++) {
		size_t len;
		char *follower = snap_read_str(r), *followee = snap_read_str(r);
		char *key = pair_key(follower, followee, &len);
		struct follow_state *st;
		HASH_FIND(hh, c->follows, key, len, st);
		if (st) { /* twice: not ours */
			r->bad = 1;
			free(key);
		} else {
			st = state_make(c, key, len);
			st->following = snap_read_u64(r) != 0;
			st->set_by = snap_read_key(r);
		}
		free(follower);
		free(followee);
	}
}

/* ---- freeing ---- */

void feeds_free_all(struct chat *c)
{
	struct follow_state *st, *stmp;
	HASH_ITER(hh, c->follows, st, stmp) {
		HASH_DEL(c->follows, st);
		free(st->key);
		free(st);
	}
	struct feed *f, *ftmp;
	HASH_ITER(hh, c->feeds, f, ftmp) {
		HASH_DEL(c->feeds, f);
		history_free(f->posts);
		free(f->follows.v);
		free(f->followers.v);
		free(f->key);
		free(f);
	}
}
