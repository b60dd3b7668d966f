/*
 * store_memory.c: the store's in-memory twin, for tests. Same semantics as
 * the SQLite store: an op already stored (same stream and seq, also earlier in
 * the same batch) is skipped, a batch is stored whole or not at all, load goes
 * in append order, meta is a string map. Nothing survives close.
 *
 * Fault injection: store_memory_fail(s, n, status) makes the next n appends
 * and meta_sets fail with status, changing nothing, as a full or broken disk
 * would.
 *
 * Each stored op is one uthash entry keyed on (origin, incarnation, boot,
 * seq); uthash keeps its entries in insertion order as well, which gives load
 * its append order without a second structure. load_range looks the range up
 * seq by seq when it is no longer than the store holds ops, and otherwise
 * (a huge range) collects the stream's ops in it by one pass and sorts them:
 * either way bounded by the store's size.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define uthash_malloc(sz) xmalloc(sz)
#define uthash_free(ptr, sz) free(ptr)
#include <uthash.h>

/* The hash key; fields ordered so that the struct has no padding. */
struct mem_key {
	uint64_t incarnation;
	uint64_t seq;
	uint32_t origin;
	uint32_t boot;
};

struct mem_op {
	struct mem_key key;
	struct op op;
	UT_hash_handle hh;
};

struct mem_meta {
	char *key;
	char *value;
	UT_hash_handle hh;
};

struct memory_store {
	struct store base;
	struct mem_op *ops;    /* hash by key, iterated in append order */
	struct mem_meta *meta; /* hash by key string */
	int fail_n;            /* injected failures left */
	int fail_status;
	char err[128];
};

static struct memory_store *to_memory(struct store *base)
{
	return (struct memory_store *)base;
}

static void key_of(const struct op *op, struct mem_key *key)
{
	memset(key, 0, sizeof *key);
	key->incarnation = op->stream.incarnation;
	key->seq = op->seq;
	key->origin = op->stream.origin;
	key->boot = op->stream.boot;
}

/* Consumes one injected failure if any is armed. Returns its status or STORE_OK. */
static int injected(struct memory_store *s, const char *what)
{
	if (s->fail_n <= 0)
		return STORE_OK;
	s->fail_n--;
	snprintf(s->err, sizeof s->err, "memory store: injected failure %d in %s", s->fail_status,
		 what);
	return s->fail_status;
}

static int mem_append(struct store *base, const struct op *ops, size_t n)
{
	struct memory_store *s = to_memory(base);
	int rc = injected(s, "append");
	for (size_t i = 0; rc == STORE_OK && i < n; i++) {
		struct mem_key key;
		struct mem_op *e;
		key_of(&ops[i], &key);
		HASH_FIND(hh, s->ops, &key, sizeof key, e);
		if (e)
			continue;
		e = xcalloc(1, sizeof *e);
		e->key = key;
		op_copy(&e->op, &ops[i]);
		HASH_ADD(hh, s->ops, key, sizeof e->key, e);
	}
	return rc;
}

static int mem_load(struct store *base, int (*fn)(const struct op *op, void *arg), void *arg)
{
	struct memory_store *s = to_memory(base);
	int rc = 0;
	for (struct mem_op *e = s->ops; e && rc == 0; e = e->hh.next)
		rc = fn(&e->op, arg);
	return rc;
}

static int by_seq(const void *a, const void *b)
{
	uint64_t x = (*(struct mem_op *const *)a)->op.seq;
	uint64_t y = (*(struct mem_op *const *)b)->op.seq;
	return x < y ? -1 : x > y;
}

/* The huge range case: one pass over the store, then sort by seq. */
static int range_scan(struct memory_store *s, const struct op_stream *stream, uint64_t from,
		      uint64_t to, int (*fn)(const struct op *op, void *arg), void *arg)
{
	size_t n = 0;
	struct mem_op **v = xmalloc((HASH_COUNT(s->ops) + 1) * sizeof *v);
	int rc = 0;
	for (struct mem_op *e = s->ops; e; e = e->hh.next)
		if (op_stream_cmp(&e->op.stream, stream) == 0 && e->op.seq >= from &&
		    e->op.seq <= to)
			v[n++] = e;
	qsort(v, n, sizeof *v, by_seq);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(&v[i]->op, arg);
	free(v);
	return rc;
}

static int mem_load_range(struct store *base, const struct op_stream *stream, uint64_t from,
			  uint64_t to, int (*fn)(const struct op *op, void *arg), void *arg)
{
	struct memory_store *s = to_memory(base);
	struct op probe = {0};
	struct mem_key key;
	int rc = 0;
	if (from > to || !s->ops)
		return STORE_OK;
	if (to - from >= HASH_COUNT(s->ops))
		return range_scan(s, stream, from, to, fn, arg);
	probe.stream = *stream;
	for (uint64_t seq = from; rc == 0; seq++) {
		struct mem_op *e;
		probe.seq = seq;
		key_of(&probe, &key);
		HASH_FIND(hh, s->ops, &key, sizeof key, e);
		if (e)
			rc = fn(&e->op, arg);
		if (seq == to)
			break;
	}
	return rc;
}

static int mem_meta_get(struct store *base, const char *key, char **value)
{
	struct memory_store *s = to_memory(base);
	struct mem_meta *m;
	HASH_FIND_STR(s->meta, key, m);
	*value = m ? xstrdup(m->value) : NULL;
	return m ? STORE_OK : STORE_NOTFOUND;
}

static int mem_meta_set(struct store *base, const char *key, const char *value)
{
	struct memory_store *s = to_memory(base);
	struct mem_meta *m;
	int rc = injected(s, "meta_set");
	if (rc != STORE_OK)
		return rc;
	HASH_FIND_STR(s->meta, key, m);
	if (!m) {
		m = xcalloc(1, sizeof *m);
		m->key = xstrdup(key);
		HASH_ADD_KEYPTR(hh, s->meta, m->key, strlen(m->key), m);
	}
	free(m->value);
	m->value = xstrdup(value);
	return STORE_OK;
}

/* The twin keeps no message index (the chat state holds history in RAM). */
static int mem_history(struct store *base, const char *hist, const struct op_key *after,
		       const struct op_key *before, size_t limit, int from_end, struct store_msgs *out)
{
	struct memory_store *s = to_memory(base);
	memset(out, 0, sizeof *out);
	snprintf(s->err, sizeof s->err, "memory store: no message index");
	return STORE_EIO;
}

static int mem_select(struct store *base, const char *hist, enum store_select sel,
		      const struct store_anchor *a, const struct store_anchor *b, size_t limit,
		      struct store_msgs *out)
{
	return mem_history(base, hist, NULL, NULL, limit, 0, out);
}

static int mem_timeline(struct store *base, const struct store_feed *feeds, size_t nfeeds,
			const struct store_anchor *after, const struct store_anchor *before, size_t limit,
			int from_end, struct store_msgs *out)
{
	return mem_history(base, NULL, NULL, NULL, limit, from_end, out);
}

static int mem_message(struct store *base, const char *msgid, const char *person, struct store_msgs *out,
		       int *liked)
{
	*liked = 0;
	return mem_history(base, NULL, NULL, NULL, 0, 0, out);
}

static const char *mem_last_error(struct store *base)
{
	return to_memory(base)->err;
}

static void mem_close(struct store *base)
{
	struct memory_store *s = to_memory(base);
	struct mem_op *e, *etmp;
	struct mem_meta *m, *mtmp;
	HASH_ITER(hh, s->ops, e, etmp) {
		HASH_DEL(s->ops, e);
		op_clear(&e->op);
		free(e);
	}
	HASH_ITER(hh, s->meta, m, mtmp) {
		HASH_DEL(s->meta, m);
		free(m->key);
		free(m->value);
		free(m);
	}
	free(s);
}

static const struct store_ops memory_ops = {
	.append = mem_append,
	.load = mem_load,
	.load_range = mem_load_range,
	.history = mem_history,
	.select = mem_select,
	.timeline = mem_timeline,
	.message = mem_message,
	.meta_get = mem_meta_get,
	.meta_set = mem_meta_set,
	.last_error = mem_last_error,
	.close = mem_close,
};

struct store *store_memory_new(void)
{
	struct memory_store *s = xcalloc(1, sizeof *s);
	s->base.ops = &memory_ops;
	return &s->base;
}

/* Only for stores made by store_memory_new. */
void store_memory_fail(struct store *s, int n, int status)
{
	struct memory_store *m = to_memory(s);
	m->fail_n = n;
	m->fail_status = status;
}
