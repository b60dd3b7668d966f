/*
 * history.c: a room's or conversation's messages in canonical order (op_cmp),
 * and the draft/chathistory selections over them.
 *
 * A history is an array of message pointers sorted by op_cmp. New messages
 * nearly always sort last (append, amortised O(1)); one merged from another
 * partition may sort earlier and is put in place by binary search and
 * memmove. A message is found by msgid through the chat's table, then its
 * index by binary search.
 *
 * Selections work on a window: a range of indices [lo, hi) narrowed by msgid
 * anchors, plus optional wall-time bounds (strictly after / strictly before)
 * from time anchors. Wall times need not rise along the canonical order (the
 * replicas' clocks differ), so time bounds filter messages one by one; but
 * the running latest wall time from the start and the running earliest from
 * the end do rise, so the first message after a time and the last before it
 * are found by binary search, and a time anchor never scans the messages
 * that cannot match. Results keep canonical order.
 */
#include "chat_impl.h"

#include <string.h>

struct chat_history *history_new(struct chat *c, struct chat_room *room)
{
	struct chat_history *h = xcalloc(1, sizeof *h);
	h->chat = c;
	h->room = room;
	return h;
}

void history_free(struct chat_history *h)
{
	if (!h)
		return;
	free(h->msgs);
	free(h->wall_max);
	free(h->wall_min);
	free(h);
}

/* Index of the first message whose key is greater than op's (the insertion
 * point; equal keys cannot both be present). */
static size_t upper_bound(const struct chat_history *h, const struct op *op)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (op_cmp(&h->msgs[mid]->op, op) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Puts wall time w of the message now at i into the running bounds (the
 * arrays already have room and were moved up from i). */
static void wall_bounds_insert(struct chat_history *h, size_t i, int64_t w)
{
	h->wall_max[i] = i > 0 && h->wall_max[i - 1] > w ? h->wall_max[i - 1] : w;
	for (size_t j = i + 1; j < h->n && h->wall_max[j] < w; j++)
		h->wall_max[j] = w;
	h->wall_min[i] = i + 1 < h->n && h->wall_min[i + 1] < w ? h->wall_min[i + 1] : w;
	for (size_t j = i; j > 0 && h->wall_min[j - 1] > w; j--)
		h->wall_min[j - 1] = w;
}

size_t history_insert(struct chat_history *h, struct chat_msg *msg, int *appended)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->msgs = xrealloc(h->msgs, h->cap * sizeof *h->msgs);
		h->wall_max = xrealloc(h->wall_max, h->cap * sizeof *h->wall_max);
		h->wall_min = xrealloc(h->wall_min, h->cap * sizeof *h->wall_min);
	}
	size_t i = h->n;
	if (h->n > 0 && op_cmp(&h->msgs[h->n - 1]->op, &msg->op) > 0)
		i = upper_bound(h, &msg->op);
	memmove(h->msgs + i + 1, h->msgs + i, (h->n - i) * sizeof *h->msgs);
	memmove(h->wall_max + i + 1, h->wall_max + i, (h->n - i) * sizeof *h->wall_max);
	memmove(h->wall_min + i + 1, h->wall_min + i, (h->n - i) * sizeof *h->wall_min);
	h->msgs[i] = msg;
	h->n++;
	wall_bounds_insert(h, i, msg->op.wall_ms);
	*appended = i == h->n - 1;
	return i;
}

/* Index of the first message with a wall time above ms (or at least ms if
 * inclusive), or h->n. */
static size_t first_wall_after(const struct chat_history *h, int64_t ms, int inclusive)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->wall_max[mid] > ms || (inclusive && h->wall_max[mid] == ms))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* One past the index of the last message with a wall time below ms, or 0. */
static size_t end_wall_before(const struct chat_history *h, int64_t ms)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->wall_min[mid] < ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t chat_history_len(const struct chat_history *h)
{
	return h->n;
}

const struct chat_msg *chat_history_at(const struct chat_history *h, size_t i)
{
	return i < h->n ? h->msgs[i] : NULL;
}

long chat_history_index(const struct chat_history *h, const char *msgid)
{
	char canon[OP_MSGID_MAX];
	struct msg_entry *m = NULL;
	if (chat_msgid_canonical(msgid, canon) == 0)
		m = chat_msg_entry(h->chat, canon);
	if (!m || m->history != h)
		return -1;
	size_t i = upper_bound(h, &m->msg.op);
	return (long)i - 1; /* the message itself is the last one not greater */
}

/* ---- selections ---- */

struct window {
	size_t lo, hi;             /* index range */
	int has_after, has_before;
	int64_t after_ms;          /* keep wall_ms > after_ms when has_after */
	int64_t before_ms;         /* keep wall_ms < before_ms when has_before */
};

static struct window window_all(const struct chat_history *h)
{
	struct window w = {0, h->n, 0, 0, 0, 0};
	return w;
}

/* Narrows a window made by window_all (once per side) to the messages
 * strictly after a. Returns -1 if a names no message of h. */
static int window_after(const struct chat_history *h, struct window *w,
			const struct chat_anchor *a)
{
	if (!a->msgid) {
		w->after_ms = a->ms;
		w->has_after = 1;
		w->lo = first_wall_after(h, a->ms, 0);
		return 0;
	}
	long i = chat_history_index(h, a->msgid);
	if (i < 0)
		return -1;
	w->lo = (size_t)i + 1;
	return 0;
}

/* Narrows a window made by window_all (once per side) to the messages
 * strictly before a. Returns -1 if a names no message of h. */
static int window_before(const struct chat_history *h, struct window *w,
			 const struct chat_anchor *a)
{
	if (!a->msgid) {
		w->before_ms = a->ms;
		w->has_before = 1;
		w->hi = end_wall_before(h, a->ms);
		return 0;
	}
	long i = chat_history_index(h, a->msgid);
	if (i < 0)
		return -1;
	w->hi = (size_t)i;
	return 0;
}

static int window_keeps(const struct window *w, const struct chat_msg *m)
{
	return (!w->has_after || m->op.wall_ms > w->after_ms) &&
	       (!w->has_before || m->op.wall_ms < w->before_ms);
}

/* Writes the first limit messages of w to out; returns how many. */
static size_t take_first(const struct chat_history *h, const struct window *w, size_t limit,
			 const struct chat_msg **out)
{
	size_t k = 0;
	for (size_t i = w->lo; i < w->hi && k < limit; i++)
		if (window_keeps(w, h->msgs[i]))
			out[k++] = h->msgs[i];
	return k;
}

/* Writes the last limit messages of w to out, ascending; returns how many. */
static size_t take_last(const struct chat_history *h, const struct window *w, size_t limit,
			const struct chat_msg **out)
{
	size_t k = 0;
	for (size_t i = w->hi; i > w->lo && k < limit; i--)
		if (window_keeps(w, h->msgs[i - 1]))
			out[k++] = h->msgs[i - 1];
	for (size_t j = 0; j < k / 2; j++) {
		const struct chat_msg *t = out[j];
		out[j] = out[k - 1 - j];
		out[k - 1 - j] = t;
	}
	return k;
}

long chat_select_latest(const struct chat_history *h, const struct chat_anchor *a,
			size_t limit, const struct chat_msg **out)
{
	struct window w = window_all(h);
	if (a && window_after(h, &w, a) < 0)
		return -1;
	return (long)take_last(h, &w, limit, out);
}

long chat_select_before(const struct chat_history *h, const struct chat_anchor *a,
			size_t limit, const struct chat_msg **out)
{
	struct window w = window_all(h);
	if (!a || window_before(h, &w, a) < 0)
		return -1;
	return (long)take_last(h, &w, limit, out);
}

long chat_select_after(const struct chat_history *h, const struct chat_anchor *a,
		       size_t limit, const struct chat_msg **out)
{
	struct window w = window_all(h);
	if (!a || window_after(h, &w, a) < 0)
		return -1;
	return (long)take_first(h, &w, limit, out);
}

/*
 * Around a msgid: the message, with (limit - 1) / 2 rounded up before it and
 * the rest after it. Around a time T: the centre is the first message (in
 * canonical order) with wall_ms >= T, or the end; limit / 2 messages are taken
 * before it and the rest from it onward. A side that has fewer messages than
 * its share is not made up from the other side.
 */
long chat_select_around(const struct chat_history *h, const struct chat_anchor *a,
			size_t limit, const struct chat_msg **out)
{
	size_t centre;
	if (!a)
		return -1;
	if (a->msgid) {
		long i = chat_history_index(h, a->msgid);
		if (i < 0)
			return -1;
		centre = (size_t)i;
	} else {
		centre = first_wall_after(h, a->ms, 1);
	}
	/* limit / 2 is also ceil((limit - 1) / 2), the msgid rule's share. */
	size_t n_before = limit / 2, n_from = limit - n_before;
	struct window before = {0, centre, 0, 0, 0, 0};
	struct window from = {centre, h->n, 0, 0, 0, 0};
	size_t k = take_last(h, &before, n_before, out);
	k += take_first(h, &from, n_from, out + k);
	return (long)k;
}

/* The position of an anchor for ordering two anchors: a msgid by its index
 * (when both are msgids) or else by its message's wall time. */
static int anchor_order(const struct chat_history *h, const struct chat_anchor *a,
			const struct chat_anchor *b)
{
	int64_t ta = a->ms, tb = b->ms;
	if (a->msgid && b->msgid) {
		long ia = chat_history_index(h, a->msgid), ib = chat_history_index(h, b->msgid);
		return ia < ib ? -1 : ia > ib;
	}
	if (a->msgid)
		ta = h->msgs[chat_history_index(h, a->msgid)]->op.wall_ms;
	if (b->msgid)
		tb = h->msgs[chat_history_index(h, b->msgid)]->op.wall_ms;
	return ta < tb ? -1 : ta > tb;
}

long chat_select_between(const struct chat_history *h, const struct chat_anchor *a,
			 const struct chat_anchor *b, size_t limit, const struct chat_msg **out)
{
	struct window w = window_all(h);
	if (!a || !b)
		return -1;
	if ((a->msgid && chat_history_index(h, a->msgid) < 0) ||
	    (b->msgid && chat_history_index(h, b->msgid) < 0))
		return -1;
	int a_first = anchor_order(h, a, b) <= 0;
	window_after(h, &w, a_first ? a : b);
	window_before(h, &w, a_first ? b : a);
	return (long)(a_first ? take_first(h, &w, limit, out) : take_last(h, &w, limit, out));
}
