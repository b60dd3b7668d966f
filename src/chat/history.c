/*
 * history.c: a room's, conversation's or feed's history as the chat keeps
 * it: how many messages it has, the key of the last, and a cache of its
 * latest messages within the chat's byte budget. The store holds every
 * message (src/store/msgindex.c) and answers every selection; the cache
 * serves the replay on JOIN and keeps the like counts of recent lines for
 * their fan-out.
 *
 * The cache of a history is a suffix of it: if it holds k > 0 messages,
 * they are the history's last k in canonical order (every message whose key
 * is at or above the first cached one's). A new message is cached if it
 * sorts after the first cached one, or goes last, or every message of the
 * history is cached; an older one (merged from another partition) is only
 * counted. A message loaded at start-up is never cached: the caches fill
 * with what arrives after.
 *
 * Budget: every cached message counts its op, strings and place in its
 * cache. Before a message is cached, while the total would pass the budget,
 * the history cached into longest ago (the head of the chat's lru list)
 * gives up its oldest cached message, which keeps every cache a suffix. A
 * room's cache never goes below its last `keep` messages (the replay on
 * JOIN reads them; chat_history_fill puts them there at start-up): only
 * histories with more than that are on the lru list.
 */
#include "chat_impl.h"

#include <string.h>
#include <utlist.h>

struct chat_history *history_new(struct chat *c, struct chat_room *room)
{
	struct chat_history *h = xcalloc(1, sizeof *h);
	h->chat = c;
	h->room = room;
	return h;
}

static void entry_free(struct chat *c, struct msg_entry *m)
{
	HASH_DEL(c->msgs, m);
	c->cache_bytes -= m->bytes;
	free(m); /* its op's strings with it (entry_new) */
}

/* The messages h's cache keeps whatever the budget. */
static size_t keep_of(const struct chat_history *h)
{
	return h->room ? h->chat->cache_keep : 0;
}

/* Puts h on or off the lru list (at its end) as it has messages to give. */
static void lru_touch(struct chat_history *h)
{
	struct chat *c = h->chat;
	if (h->on_lru)
		DL_DELETE(c->lru, h);
	h->on_lru = h->ncached > keep_of(h);
	if (h->on_lru)
		DL_APPEND(c->lru, h);
}

/* Drops the oldest cached message of h. */
static void drop_oldest(struct chat_history *h)
{
	entry_free(h->chat, h->cache[h->first]);
	h->first++;
	if (--h->ncached == 0)
		h->first = 0;
}

/* Empties h's cache. */
static void drop_all(struct chat_history *h)
{
	while (h->ncached)
		drop_oldest(h);
	lru_touch(h);
}

void history_free(struct chat_history *h)
{
	if (!h)
		return;
	drop_all(h);
	free(h->cache);
	free(h);
}

/* Evicts from the least recently cached histories until bytes more fit. */
static void make_room(struct chat *c, size_t bytes)
{
	while (c->lru && c->cache_bytes + bytes > c->cache_max) {
		struct chat_history *h = c->lru;
		if (h->ncached > keep_of(h))
			drop_oldest(h);
		if (h->ncached <= keep_of(h)) { /* nothing more to give */
			DL_DELETE(c->lru, h);
			h->on_lru = 0;
		}
	}
}

void chat_set_cache(struct chat *c, size_t bytes, size_t keep)
{
	c->cache_max = bytes;
	c->cache_keep = keep;
	make_room(c, 0);
}

size_t chat_cache_bytes(const struct chat *c)
{
	return c->cache_bytes;
}

size_t chat_cache_keep(const struct chat *c)
{
	return c->cache_keep;
}

/* The size of op's cache entry with its strings (entry_new). */
static size_t entry_size(const struct op *op)
{
	return sizeof(struct msg_entry) + strlen(op->target) + strlen(op->author) + strlen(op->body) +
	       strlen(op->ref) + strlen(op->account) + strlen(op->tags) + 6;
}

/* What caching an entry of size bytes costs: it and its place in a cache. */
static size_t entry_cost(size_t size)
{
	return size + sizeof(struct msg_entry *);
}

/* Index (from first) of the first cached message of h whose key is greater
 * than k (binary search). */
static size_t cached_after(const struct chat_history *h, const struct op_key *k)
{
	size_t lo = 0, hi = h->ncached;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct op_key m = op_key_of(&h->cache[h->first + mid]->msg.op);
		if (op_key_cmp(&m, k) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Puts m into h's cache at its place. */
static void cache_insert(struct chat_history *h, struct msg_entry *m)
{
	struct chat *c = h->chat;
	if (h->first + h->ncached == h->cap) {
		if (h->first > h->cap / 2) { /* room at the front: slide down */
			memmove(h->cache, h->cache + h->first, h->ncached * sizeof *h->cache);
			h->first = 0;
		} else {
			h->cap = h->cap ? h->cap * 2 : 16;
			h->cache = xrealloc(h->cache, h->cap * sizeof *h->cache);
		}
	}
	size_t end = h->first + h->ncached, i = end;
	if (h->ncached && op_cmp(&h->cache[end - 1]->msg.op, &m->msg.op) > 0) { /* merged: not last */
		struct op_key k = op_key_of(&m->msg.op);
		i = h->first + cached_after(h, &k);
	}
	memmove(h->cache + i + 1, h->cache + i, (end - i) * sizeof *h->cache);
	h->cache[i] = m;
	h->ncached++;
	lru_touch(h);
	HASH_ADD_KEYPTR(hh, c->msgs, m->msg.msgid, strlen(m->msg.msgid), m);
	c->cache_bytes += m->bytes;
}

/* Messages of h that are lines (repeats are not). */
static size_t lines_of(const struct chat_history *h)
{
	return h->n - h->repeats;
}

/* Takes the message of key k out of h's cache, if it is there (it stopped
 * being a line: a repeat took its place). */
static void uncache(struct chat_history *h, const struct op_key *k)
{
	size_t at = cached_after(h, k);
	if (!at)
		return;
	struct msg_entry *m = h->cache[h->first + at - 1];
	struct op_key mk = op_key_of(&m->msg.op);
	if (op_key_cmp(&mk, k) != 0)
		return;
	memmove(h->cache + h->first + at - 1, h->cache + h->first + at, (h->ncached - at) * sizeof *h->cache);
	h->ncached--;
	entry_free(h->chat, m);
	lru_touch(h);
}

/* 1 if a message of key k, arriving now, belongs in h's cached suffix. */
static int cacheable(const struct chat_history *h, const struct op_key *k, int appended)
{
	if (appended || h->ncached == lines_of(h))
		return 1;
	if (!h->ncached)
		return 0;
	struct op_key first = op_key_of(&h->cache[h->first]->msg.op);
	return op_key_cmp(k, &first) > 0;
}

/* Copies s to *p, advancing it; returns the copy. */
static char *pack(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *at = memcpy(*p, s, n);
	*p += n;
	return at;
}

/* A new cache entry of op (its strings not NULL; size: entry_size) with
 * like count likes, its cost counted. One allocation holds the entry and
 * its op's strings (a full cache turns over a line per line that arrives:
 * one malloc and one free each). */
static struct msg_entry *entry_new(struct chat_history *h, const struct op *op, size_t size,
				   uint32_t likes)
{
	struct msg_entry *m = xmalloc(size);
	char *p = (char *)(m + 1);
	memset(m, 0, sizeof *m);
	m->msg.op = *op;
	m->msg.op.target = pack(&p, op->target);
	m->msg.op.author = pack(&p, op->author);
	m->msg.op.body = pack(&p, op->body);
	m->msg.op.ref = pack(&p, op->ref);
	m->msg.op.account = pack(&p, op->account);
	m->msg.op.tags = pack(&p, op->tags);
	op_msgid(op, m->msg.msgid, sizeof m->msg.msgid);
	m->msg.likes = likes;
	m->history = h;
	m->bytes = entry_cost(size);
	return m;
}

void history_add(struct chat_history *h, const struct op *msg, const struct chat_fact *fact,
		 struct chat_effect *eff)
{
	struct chat *c = h->chat;
	struct op_key k = op_key_of(msg);
	int appended = h->n == 0 || op_key_cmp(&k, &h->last) > 0;
	int line = !fact || !fact->repeat || fact->line;
	eff->history = h;
	eff->appended = appended;
	if (fact && fact->repeat) {
		h->repeats++;
		if (!fact->loaded && line)
			uncache(h, &fact->other);
	}
	if (fact && fact->loaded)
		fact = NULL; /* loading: nothing is cached */
	if (line && cacheable(h, &k, appended)) {
		size_t size = fact ? entry_size(msg) : 0;
		int fits = fact && (entry_cost(size) <= c->cache_max || keep_of(h));
		if (fits)
			make_room(c, entry_cost(size));
		if (fits && cacheable(h, &k, appended)) { /* make_room may have shortened h's */
			struct msg_entry *m = entry_new(h, msg, size, fact->likes);
			cache_insert(h, m);
			eff->msg = &m->msg;
		} else if (!fits) {
			drop_all(h); /* it belongs in the suffix: what is cached no longer is one */
		}
	}
	h->n++;
	if (appended)
		h->last = k;
}

void chat_history_fill(struct chat_history *h, const struct op *ops, const uint32_t *likes, size_t n)
{
	drop_all(h);
	for (size_t i = 0; i < n; i++)
		cache_insert(h, entry_new(h, &ops[i], entry_size(&ops[i]), likes[i]));
}

struct msg_entry *history_cached_msg(const struct chat *c, const char *msgid)
{
	struct msg_entry *m;
	HASH_FIND_STR(c->msgs, msgid, m);
	return m;
}

size_t chat_history_len(const struct chat_history *h)
{
	return h->n;
}

int chat_history_last(const struct chat_history *h, struct op_key *k)
{
	if (!h->n)
		return -1;
	*k = h->last;
	return 0;
}

long chat_history_cached(const struct chat_history *h, size_t limit, const struct chat_msg **out)
{
	size_t want = lines_of(h) < limit ? lines_of(h) : limit;
	if (want > h->ncached)
		return -1;
	size_t from = h->first + h->ncached - want;
	for (size_t i = 0; i < want; i++)
		out[i] = &h->cache[from + i]->msg;
	return (long)want;
}

size_t chat_history_latest(const struct chat_history *h, size_t limit, const struct chat_msg **out)
{
	size_t want = h->ncached < limit ? h->ncached : limit;
	for (size_t i = 0; i < want; i++)
		out[i] = &h->cache[h->first + h->ncached - want + i]->msg;
	return want;
}

void history_snapshot(const struct chat_history *h, struct op_buf *b)
{
	snap_u64(b, h->n);
	snap_u64(b, h->repeats);
	snap_key(b, &h->last);
}

void history_restore(struct chat_history *h, struct op_reader *r)
{
	h->n = (size_t)snap_read_u64(r);
	h->repeats = (size_t)snap_read_u64(r);
	h->last = snap_read_key(r);
}
