/*
 * store_memory.c: the store's in-memory twin, for tests: an SQLite store
 * whose database lives in memory (store_sqlite_open with no directory), so
 * it has the very same semantics and message index, wrapped with fault
 * injection. Nothing survives close.
 *
 * Fault injection: store_memory_fail(s, n, status) makes the next n appends,
 * meta_sets and snapshot_puts fail with status, changing nothing, as a full
 * or broken disk would.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/util.h"

struct memory_store {
	struct store base;
	struct store *db;      /* the SQLite store in memory */
	int fail_n;            /* injected failures left */
	int fail_status;
	int injected_last;     /* the last failure was injected: err says why */
	char err[128];
};

static struct memory_store *to_memory(struct store *base)
{
	return (struct memory_store *)base;
}

/* Consumes one injected failure if any is armed. Returns its status or STORE_OK. */
static int injected(struct memory_store *s, const char *what)
{
	s->injected_last = 0;
	if (s->fail_n <= 0)
		return STORE_OK;
	s->fail_n--;
	s->injected_last = 1;
	snprintf(s->err, sizeof s->err, "memory store: injected failure %d in %s", s->fail_status,
		 what);
	return s->fail_status;
}

static int mem_append(struct store *base, const struct op *ops, size_t n, struct chat_fact *facts)
{
	struct memory_store *s = to_memory(base);
	int rc = injected(s, "append");
	return rc != STORE_OK ? rc : store_append(s->db, ops, n, facts);
}

static int mem_meta_set(struct store *base, const char *key, const char *value)
{
	struct memory_store *s = to_memory(base);
	int rc = injected(s, "meta_set");
	return rc != STORE_OK ? rc : store_meta_set(s->db, key, value);
}

static int mem_load(struct store *base, uint64_t after, store_load_fn *fn, void *arg)
{
	return store_load(to_memory(base)->db, after, fn, arg);
}

static int mem_digest_pin(struct store *base, struct store_pin **pin)
{
	return store_digest_pin(to_memory(base)->db, pin);
}

static uint64_t mem_position(struct store *base)
{
	return store_position(to_memory(base)->db);
}

static int mem_snapshot_get(struct store *base, uint64_t *upto, void **data, size_t *len)
{
	return store_snapshot_get(to_memory(base)->db, upto, data, len);
}

static int mem_snapshot_put(struct store *base, uint64_t upto, const void *data, size_t len)
{
	struct memory_store *s = to_memory(base);
	int rc = injected(s, "snapshot_put");
	return rc != STORE_OK ? rc : store_snapshot_put(s->db, upto, data, len);
}

static int mem_load_range(struct store *base, const struct op_stream *stream, uint64_t from,
			  uint64_t to, int (*fn)(const struct op *op, void *arg), void *arg)
{
	return store_load_range(to_memory(base)->db, stream, from, to, fn, arg);
}

static int mem_history(struct store *base, const char *hist, const struct op_key *after,
		       const struct op_key *before, size_t limit, int from_end, struct store_msgs *out)
{
	return store_history(to_memory(base)->db, hist, after, before, limit, from_end, out);
}

static int mem_select(struct store *base, const char *hist, enum store_select sel,
		      const struct store_anchor *a, const struct store_anchor *b, size_t limit,
		      struct store_msgs *out)
{
	return store_select(to_memory(base)->db, hist, sel, a, b, limit, out);
}

static int mem_timeline(struct store *base, const struct store_feed *feeds, size_t nfeeds,
			const struct store_anchor *after, const struct store_anchor *before, size_t limit,
			int from_end, struct store_msgs *out)
{
	return store_timeline(to_memory(base)->db, feeds, nfeeds, after, before, limit, from_end, out);
}

static int mem_message(struct store *base, const char *msgid, const char *person, struct store_msgs *out,
		       int *liked)
{
	return store_message(to_memory(base)->db, msgid, person, out, liked);
}

static int mem_digest(struct store *base, char out[65])
{
	return store_digest(to_memory(base)->db, out);
}

static int mem_meta_get(struct store *base, const char *key, char **value)
{
	return store_meta_get(to_memory(base)->db, key, value);
}

static const char *mem_last_error(struct store *base)
{
	struct memory_store *s = to_memory(base);
	return s->injected_last ? s->err : store_last_error(s->db);
}

static void mem_close(struct store *base)
{
	struct memory_store *s = to_memory(base);
	store_close(s->db);
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
	.digest = mem_digest,
	.digest_pin = mem_digest_pin,
	.position = mem_position,
	.snapshot_get = mem_snapshot_get,
	.snapshot_put = mem_snapshot_put,
	.meta_get = mem_meta_get,
	.meta_set = mem_meta_set,
	.last_error = mem_last_error,
	.close = mem_close,
};

struct store *store_memory_new(void)
{
	char *err = NULL;
	struct memory_store *s = xcalloc(1, sizeof *s);
	s->base.ops = &memory_ops;
	s->db = store_sqlite_open(NULL, NULL, &err);
	if (!s->db) { /* only out of memory: there is no file */
		fprintf(stderr, "chorus: in-memory store: %s\n", err ? err : "cannot open");
		abort();
	}
	return &s->base;
}

/* Only for stores made by store_memory_new. */
void store_memory_fail(struct store *s, int n, int status)
{
	struct memory_store *m = to_memory(s);
	m->fail_n = n;
	m->fail_status = status;
}
