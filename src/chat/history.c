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
 * Selections work on a window of keys: strictly after one key and strictly
 * before another. A msgid anchor is its message's key; a time anchor T is
 * a key no op has (seq 0) at the edge of T's canonical times (op_time_ms
 * rises along the canonical order): after T, the key {(T + 1) << shift,
 * 0, 0}, before T the key {T << shift, 0, 0}. So every selection is two
 * binary searches and a copy, whatever its anchors. Results keep canonical
 * order.
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
	free(h);
}

size_t history_first(const struct chat_history *h, const struct op_key *k, int inclusive)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct op_key m = op_key_of(&h->msgs[mid]->op);
		int d = op_key_cmp(&m, k);
		if (d < 0 || (d == 0 && !inclusive))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t history_insert(struct chat_history *h, struct chat_msg *msg, int *appended)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->msgs = xrealloc(h->msgs, h->cap * sizeof *h->msgs);
	}
	size_t i = h->n;
	if (h->n > 0 && op_cmp(&h->msgs[h->n - 1]->op, &msg->op) > 0) {
		struct op_key k = op_key_of(&msg->op);
		i = history_first(h, &k, 0); /* equal keys cannot both be present */
	}
	memmove(h->msgs + i + 1, h->msgs + i, (h->n - i) * sizeof *h->msgs);
	h->msgs[i] = msg;
	h->n++;
	*appended = i == h->n - 1;
	return i;
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
	struct op_key k = op_key_of(&m->msg.op);
	return (long)history_first(h, &k, 1); /* the message itself */
}

/* ---- selections ---- */

int chat_anchor_key(const struct chat *c, const struct chat_anchor *a, int after, struct op_key *k)
{
	memset(k, 0, sizeof *k);
	if (a->msgid) {
		char canon[OP_MSGID_MAX];
		struct msg_entry *m = NULL;
		if (chat_msgid_canonical(a->msgid, canon) == 0)
			m = chat_msg_entry(c, canon);
		if (!m)
			return -1;
		*k = op_key_of(&m->msg.op);
		return 0;
	}
	*k = op_key_at_time(a->ms, after);
	return 0;
}

/* The key bound of anchor a in h; -1 if a names a message not in h. */
static int anchor_key(const struct chat_history *h, const struct chat_anchor *a, int after,
		      struct op_key *k)
{
	if (chat_anchor_key(h->chat, a, after, k) < 0)
		return -1;
	return a->msgid && chat_history_index(h, a->msgid) < 0 ? -1 : 0;
}

/* Writes the messages [lo, hi) of h to out: the first limit (or the last
 * limit if from_end), ascending; returns how many. */
static long take(const struct chat_history *h, size_t lo, size_t hi, size_t limit, int from_end,
		 const struct chat_msg **out)
{
	if (hi <= lo)
		return 0;
	size_t k = hi - lo < limit ? hi - lo : limit;
	if (from_end)
		lo = hi - k;
	for (size_t i = 0; i < k; i++)
		out[i] = h->msgs[lo + i];
	return (long)k;
}

long chat_select_latest(const struct chat_history *h, const struct chat_anchor *a,
			size_t limit, const struct chat_msg **out)
{
	struct op_key k;
	if (a && anchor_key(h, a, 1, &k) < 0)
		return -1;
	return take(h, a ? history_first(h, &k, 0) : 0, h->n, limit, 1, out);
}

long chat_select_before(const struct chat_history *h, const struct chat_anchor *a,
			size_t limit, const struct chat_msg **out)
{
	struct op_key k;
	if (!a || anchor_key(h, a, 0, &k) < 0)
		return -1;
	return take(h, 0, history_first(h, &k, 1), limit, 1, out);
}

long chat_select_after(const struct chat_history *h, const struct chat_anchor *a,
		       size_t limit, const struct chat_msg **out)
{
	struct op_key k;
	if (!a || anchor_key(h, a, 1, &k) < 0)
		return -1;
	return take(h, history_first(h, &k, 0), h->n, limit, 0, out);
}

/*
 * Around a msgid: the message, with (limit - 1) / 2 rounded up before it and
 * the rest after it. Around a time T: the centre is the first message with
 * a canonical time of T or later, or the end; limit / 2 messages are taken
 * before it and the rest from it onward. A side that has fewer messages than
 * its share is not made up from the other side.
 */
long chat_select_around(const struct chat_history *h, const struct chat_anchor *a,
			size_t limit, const struct chat_msg **out)
{
	struct op_key k;
	if (!a || anchor_key(h, a, 0, &k) < 0)
		return -1;
	size_t centre = history_first(h, &k, 1);
	/* limit / 2 is also ceil((limit - 1) / 2), the msgid rule's share. */
	size_t n_before = limit / 2;
	long got = take(h, 0, centre, n_before, 1, out);
	return got + take(h, centre, h->n, limit - n_before, 0, out + got);
}

long chat_select_between(const struct chat_history *h, const struct chat_anchor *a,
			 const struct chat_anchor *b, size_t limit, const struct chat_msg **out)
{
	struct op_key ka_lo, ka_hi, kb_lo, kb_hi;
	if (!a || !b || anchor_key(h, a, 1, &ka_lo) < 0 || anchor_key(h, a, 0, &ka_hi) < 0 ||
	    anchor_key(h, b, 1, &kb_lo) < 0 || anchor_key(h, b, 0, &kb_hi) < 0)
		return -1;
	int a_first = op_key_cmp(&ka_hi, &kb_hi) <= 0;
	size_t lo = history_first(h, a_first ? &ka_lo : &kb_lo, 0);
	size_t hi = history_first(h, a_first ? &kb_hi : &ka_hi, 1);
	return take(h, lo, hi, limit, !a_first, out);
}
