/*
 * room.c: the client's room model (see room.h): lines in canonical order,
 * kept once per msgid, merged from history segments; likes; participants;
 * the numbered window. No I/O.
 */
#include "client/room.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/util.h"

_Static_assert(TIMELINE_WINDOW <= ROOM_WINDOW, "room.shown holds ROOM_WINDOW lines");

struct room *room_new(const char *name)
{
	struct room *r = xcalloc(1, sizeof *r);
	r->name = xstrdup(name);
	r->timeline = strcasecmp(name, ROOM_TIMELINE) == 0;
	r->conversation = name[0] != '#' && name[0] != '&';
	r->window = r->timeline ? TIMELINE_WINDOW : ROOM_WINDOW;
	return r;
}

static void line_free(struct room_line *l)
{
	free(l->msgid);
	free(l->author);
	free(l->text);
	free(l);
}

static void shown_clear(struct room *r)
{
	for (size_t i = 0; i < r->nshown; i++)
		free(r->shown[i]);
	r->nshown = 0;
}

void room_clear(struct room *r)
{
	for (size_t i = 0; i < r->n; i++) {
		HASH_DEL(r->by_msgid, r->lines[i]);
		line_free(r->lines[i]);
	}
	free(r->lines);
	r->lines = NULL;
	r->n = r->cap = 0;
	shown_clear(r);
	r->ready = 0;
}

void room_free(struct room *r)
{
	if (!r)
		return;
	room_clear(r);
	for (size_t i = 0; i < r->npeople; i++)
		free(r->people[i]);
	free(r->people);
	free(r->name);
	free(r);
}

static struct room_line *line_new(const struct room_msg *m)
{
	struct room_line *l = xcalloc(1, sizeof *l);
	l->msgid = xstrdup(m->msgid);
	l->author = xstrdup(m->author ? m->author : "?");
	l->text = xstrdup(m->text ? m->text : "");
	l->time_ms = m->time_ms;
	l->likes = m->likes > 0 ? m->likes : 0;
	return l;
}

static void lines_reserve(struct room *r, size_t need)
{
	if (need <= r->cap)
		return;
	while (r->cap < need)
		r->cap = r->cap ? r->cap * 2 : 64;
	r->lines = xrealloc(r->lines, r->cap * sizeof *r->lines);
}

struct room_line *room_find(const struct room *r, const char *msgid)
{
	struct room_line *l = NULL;
	if (msgid)
		HASH_FIND_STR(r->by_msgid, msgid, l);
	return l;
}

int room_append(struct room *r, const struct room_msg *m)
{
	if (room_find(r, m->msgid))
		return 0;
	struct room_line *l = line_new(m);
	lines_reserve(r, r->n + 1);
	r->lines[r->n++] = l;
	HASH_ADD_KEYPTR(hh, r->by_msgid, l->msgid, strlen(l->msgid), l);
	return 1;
}

/* Index of msgid in r->lines, or -1. */
static long index_of(const struct room *r, const char *msgid)
{
	struct room_line *l = room_find(r, msgid);
	for (size_t i = 0; l && i < r->n; i++)
		if (r->lines[i] == l)
			return (long)i;
	return -1;
}

/* The segment's msgids, for "is this held line in the segment, and where". */
struct seg_key {
	const char *msgid;
	size_t pos;
	UT_hash_handle hh;
};

static struct seg_key *seg_index(const struct room_msg *seg, size_t n)
{
	struct seg_key *set = NULL, *k;
	for (size_t i = 0; i < n; i++) {
		HASH_FIND_STR(set, seg[i].msgid, k);
		if (k)
			continue; /* a repeated msgid: its first place counts */
		k = xcalloc(1, sizeof *k);
		k->msgid = seg[i].msgid;
		k->pos = i;
		HASH_ADD_KEYPTR(hh, set, k->msgid, strlen(k->msgid), k);
	}
	return set;
}

static void seg_index_free(struct seg_key *set)
{
	struct seg_key *k, *tmp;
	HASH_ITER(hh, set, k, tmp) {
		HASH_DEL(set, k);
		free(k);
	}
}

/* First position of msgid in the segment, or -1 if the segment does not have it. */
static long seg_pos(struct seg_key *set, const char *msgid)
{
	struct seg_key *k;
	HASH_FIND_STR(set, msgid, k);
	return k ? (long)k->pos : -1;
}

/* Where the segment goes in r->lines (see room_merge). */
static size_t merge_start(const struct room *r, enum room_place where, const char *anchor)
{
	long i = anchor ? index_of(r, anchor) : -1;
	switch (where) {
	case ROOM_AFTER:
		return i < 0 ? r->n : (size_t)i + 1;
	case ROOM_BEFORE:
		return i < 0 ? 0 : (size_t)i;
	case ROOM_LATEST:
	default:
		return r->n;
	}
}

/* The held line for seg[j] (updated from it), or a new one (counted in *added). */
static struct room_line *merge_take(struct room *r, const struct room_msg *m, size_t *added)
{
	struct room_line *l = room_find(r, m->msgid);
	if (l) {
		if (m->likes >= 0)
			l->likes = m->likes;
		return l;
	}
	l = line_new(m);
	HASH_ADD_KEYPTR(hh, r->by_msgid, l->msgid, strlen(l->msgid), l);
	(*added)++;
	return l;
}

#define SEGMENT_LINE (-2) /* in follows[]: the held line is in the segment */

/* For the held lines from start on: which segment line each follows in the
 * room (-1: none yet), or SEGMENT_LINE. count[j] gets how many follow
 * segment line j, count[n] how many follow none. */
static long *plan_followers(const struct room *r, struct seg_key *set, size_t start, size_t n,
			    size_t *count)
{
	size_t rest = r->n - start;
	long *follows = xcalloc(rest ? rest : 1, sizeof *follows), current = -1;
	for (size_t i = 0; i < rest; i++) {
		long p = seg_pos(set, r->lines[start + i]->msgid);
		if (p >= 0) {
			current = p;
			follows[i] = SEGMENT_LINE;
			continue;
		}
		follows[i] = current;
		count[current < 0 ? n : (size_t)current]++;
	}
	return follows;
}

/* Places segment line j at slot[j] - 1 from index at on, leaving room after
 * each for its followers; slot[j] stays 0 for a msgid repeated in the
 * segment, and slot[n] is where the lines that follow none go. Returns the
 * index after the last follower of the segment. */
static size_t plan_slots(struct seg_key *set, const struct room_msg *seg, size_t n,
			 const size_t *count, size_t at, size_t *slot)
{
	for (size_t j = 0; j < n; j++) {
		if (seg_pos(set, seg[j].msgid) != (long)j)
			continue;
		slot[j] = at + 1;
		at += 1 + count[j];
	}
	slot[n] = at;
	return at;
}

size_t room_merge(struct room *r, const struct room_msg *seg, size_t n, enum room_place where,
		  const char *anchor)
{
	if (n == 0)
		return 0;
	struct seg_key *set = seg_index(seg, n);
	size_t start = merge_start(r, where, anchor), added = 0, out_n = 0, cap = r->n + n + 1;
	size_t *count = xcalloc(n + 1, sizeof *count), *slot = xcalloc(n + 1, sizeof *slot);
	long *follows = plan_followers(r, set, start, n, count);
	struct room_line **out = xcalloc(cap, sizeof *out);

	for (size_t i = 0; i < start; i++) /* before the segment's place, minus its lines */
		if (seg_pos(set, r->lines[i]->msgid) < 0)
			out[out_n++] = r->lines[i];
	size_t end = plan_slots(set, seg, n, count, out_n, slot);
	for (size_t j = 0; j < n; j++)
		if (slot[j])
			out[slot[j] - 1] = merge_take(r, &seg[j], &added);
	for (size_t i = 0; i < r->n - start; i++)
		if (follows[i] != SEGMENT_LINE)
			out[slot[follows[i] < 0 ? n : (size_t)follows[i]]++] = r->lines[start + i];

	free(r->lines);
	r->lines = out;
	r->n = end + count[n];
	r->cap = cap;
	seg_index_free(set);
	free(follows);
	free(count);
	free(slot);
	return added;
}

int room_set_likes(struct room *r, const char *msgid, int likes)
{
	struct room_line *l = room_find(r, msgid);
	if (!l || likes < 0 || l->likes == likes)
		return 0;
	l->likes = likes;
	return 1;
}

void room_set_mine(struct room *r, const char *msgid, enum room_mine mine)
{
	struct room_line *l = room_find(r, msgid);
	if (l)
		l->mine = mine;
}

void room_forget_mine(struct room *r)
{
	for (size_t i = 0; i < r->n; i++)
		r->lines[i]->mine = MINE_UNKNOWN;
}

size_t room_show(struct room *r, size_t *first)
{
	size_t start = r->n > r->window ? r->n - r->window : 0;
	shown_clear(r);
	for (size_t i = start; i < r->n; i++)
		r->shown[r->nshown++] = xstrdup(r->lines[i]->msgid);
	if (first)
		*first = start;
	return r->nshown;
}

struct room_line *room_shown(const struct room *r, size_t n)
{
	if (n < 1 || n > r->nshown)
		return NULL;
	return room_find(r, r->shown[n - 1]);
}

enum room_like_check room_like_check(const struct room *r, size_t n, const char *me, int on,
				     struct room_line **line)
{
	struct room_line *l = room_shown(r, n);
	*line = l;
	if (!l)
		return LIKE_NOT_SHOWN;
	if (me && strcasecmp(l->author, me) == 0)
		return LIKE_OWN_LINE;
	if (on && l->mine == MINE_LIKED)
		return LIKE_ALREADY;
	if (!on && (l->mine == MINE_NOT_LIKED || (l->mine == MINE_UNKNOWN && l->likes == 0)))
		return LIKE_NOT_LIKED;
	return LIKE_OK;
}

/* ---- participants ---- */

/* Index where nick is or would go in the sorted list; *found says which. */
static size_t person_slot(const struct room *r, const char *nick, int *found)
{
	size_t lo = 0, hi = r->npeople;
	*found = 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcasecmp(r->people[mid], nick);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void room_person_add(struct room *r, const char *nick)
{
	int found;
	size_t i = person_slot(r, nick, &found);
	if (found || !*nick)
		return;
	r->people = xrealloc(r->people, (r->npeople + 1) * sizeof *r->people);
	memmove(r->people + i + 1, r->people + i, (r->npeople - i) * sizeof *r->people);
	r->people[i] = xstrdup(nick);
	r->npeople++;
}

void room_person_remove(struct room *r, const char *nick)
{
	int found;
	size_t i = person_slot(r, nick, &found);
	if (!found)
		return;
	free(r->people[i]);
	memmove(r->people + i, r->people + i + 1, (r->npeople - i - 1) * sizeof *r->people);
	r->npeople--;
}

void room_person_rename(struct room *r, const char *from, const char *to)
{
	if (!room_person_has(r, from))
		return;
	room_person_remove(r, from);
	room_person_add(r, to);
}

int room_person_has(const struct room *r, const char *nick)
{
	int found;
	person_slot(r, nick, &found);
	return found;
}

void room_names_reply(struct room *r, const char *names)
{
	if (!r->names_open) {
		for (size_t i = 0; i < r->npeople; i++)
			free(r->people[i]);
		r->npeople = 0;
		r->names_open = 1;
	}
	const char *p = names;
	while (*p) {
		size_t len = strcspn(p, " ");
		size_t skip = strspn(p, "~&@%+");
		if (len > skip) {
			char *nick = xstrndup(p + skip, len - skip);
			room_person_add(r, nick);
			free(nick);
		}
		p += len;
		p += strspn(p, " ");
	}
}

void room_names_end(struct room *r)
{
	if (!r->names_open) /* an empty reply: nobody (we are not in it) */
		room_names_reply(r, "");
	r->names_open = 0;
}

/* ---- display ---- */

static void put_clean(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_putc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

void room_line_format(struct buf *b, size_t n, const struct room_line *l)
{
	buf_printf(b, "%zu. ", n);
	put_clean(b, l->author);
	buf_puts(b, ": ");
	put_clean(b, l->text);
}

void room_post_format(struct buf *b, const struct room_line *l)
{
	time_t secs = (time_t)(l->time_ms / 1000);
	struct tm tm;
	put_clean(b, l->author);
	if (l->time_ms > 0 && localtime_r(&secs, &tm))
		buf_printf(b, " (%02d:%02d) >> ", tm.tm_hour, tm.tm_min);
	else
		buf_puts(b, " (--:--) >> ");
	put_clean(b, l->text);
}
