/*
 * test_store.c: the store contract, run against both implementations (memory
 * and SQLite in a temporary directory), the SQLite store's own promises
 * (persistence, format check, size limit) and the memory store's fault
 * injection; then the store writer on a real libuv loop: submission order,
 * group commit per turn, the batch cap, a failing batch, closing with work
 * pending, and a loop that closes clean.
 */
#include <ftw.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "common/util.h"
#include "store/store.h"
#include "store/store_writer.h"

static char tmp_root[] = "/tmp/chorus-test-store-XXXXXX";

/* ---- helpers ---- */

struct op_list {
	struct op *v;
	size_t n, cap;
};

static void list_push(struct op_list *l, const struct op *op)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	op_copy(&l->v[l->n++], op);
}

static void list_free(struct op_list *l)
{
	op_free_array(l->v, l->n);
	memset(l, 0, sizeof *l);
}

static int collect_fn(const struct op *op, void *arg)
{
	list_push(arg, op);
	return 0;
}

static size_t count_ops(struct store *s)
{
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, collect_fn, &l), STORE_OK);
	size_t n = l.n;
	list_free(&l);
	return n;
}

static struct op make_op(uint32_t origin, uint64_t inc, uint32_t boot, uint64_t seq, char *body)
{
	struct op op = {0};
	op.stream.origin = origin;
	op.stream.incarnation = inc;
	op.stream.boot = boot;
	op.seq = seq;
	op.lts = seq * 10;
	op.wall_ms = 1700000000000 + (int64_t)seq;
	op.kind = OP_MSG;
	op.target = "#room";
	op.author = "alice";
	op.body = body;
	op.ref = "";
	return op;
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static int op_same(const struct op *a, const struct op *b)
{
	return op_stream_cmp(&a->stream, &b->stream) == 0 && a->seq == b->seq && a->lts == b->lts &&
	       a->wall_ms == b->wall_ms && a->kind == b->kind && a->flags == b->flags &&
	       strcmp(str_or_empty(a->target), str_or_empty(b->target)) == 0 &&
	       strcmp(str_or_empty(a->author), str_or_empty(b->author)) == 0 &&
	       strcmp(str_or_empty(a->body), str_or_empty(b->body)) == 0 &&
	       strcmp(str_or_empty(a->ref), str_or_empty(b->ref)) == 0;
}

static char *tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmp_root, name);
}

static struct store *open_sqlite_dir(const char *name, const struct store_sqlite_options *opt)
{
	char *dir = tmp_path(name);
	char *err = NULL;
	struct store *s = store_sqlite_open(dir, opt, &err);
	if (!s)
		fprintf(stderr, "store_sqlite_open(%s): %s\n", dir, err ? err : "(no message)");
	free(err);
	free(dir);
	return s;
}

/* ---- the contract, for either implementation ---- */

struct impl {
	const char *name;
	struct store *(*open)(const char *name); /* a new, empty store */
};

static struct store *open_memory(const char *name)
{
	return store_memory_new();
}

static struct store *open_sqlite(const char *name)
{
	return open_sqlite_dir(name, NULL);
}

static const struct impl memory_impl = {"memory", open_memory};
static const struct impl sqlite_impl = {"sqlite", open_sqlite};

static void contract_round_trip(const struct impl *im)
{
	struct store *s = im->open("round_trip");
	CHECK(s != NULL);
	if (!s)
		return;
	struct op ops[3];
	ops[0] = make_op(255, 0xfedcba9876543210ull, UINT32_MAX, 1, "h\xc3\xa9llo 'q' \"x\" ;--");
	ops[0].lts = UINT64_MAX;
	ops[0].wall_ms = INT64_MIN;
	ops[0].kind = OP_LIKE;
	ops[0].flags = OP_FLAG_NOTICE;
	ops[0].ref = "1-0000000000000001-1-7";
	ops[1] = make_op(1, UINT64_MAX, 1, UINT64_MAX, "");
	ops[1].target = ops[1].author = ops[1].ref = "";
	ops[1].kind = 255;
	ops[1].flags = 255;
	ops[2] = make_op(2, 0, 0, 2, NULL);
	ops[2].target = ops[2].author = ops[2].ref = NULL;
	CHECK_EQ_INT(store_append(s, ops, 3), STORE_OK);

	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 3);
	for (size_t i = 0; i < l.n && i < 3; i++) {
		CHECK(op_same(&l.v[i], &ops[i]));
		CHECK(l.v[i].target && l.v[i].author && l.v[i].body && l.v[i].ref);
	}
	if (l.n == 3)
		CHECK(l.v[0].stream.incarnation == 0xfedcba9876543210ull && l.v[0].lts == UINT64_MAX);
	list_free(&l);
	CHECK_EQ_INT(store_append(s, ops, 0), STORE_OK);
	store_close(s);
}

static void contract_duplicates(const struct impl *im)
{
	struct store *s = im->open("duplicates");
	CHECK(s != NULL);
	if (!s)
		return;
	struct op a = make_op(1, 7, 1, 1, "first");
	struct op b = make_op(1, 7, 1, 2, "b");
	struct op a2 = make_op(1, 7, 1, 1, "second");
	struct op c = make_op(1, 7, 2, 1, "other boot");
	struct op batch1[] = {a, b};
	struct op batch2[] = {a2, c, c};
	CHECK_EQ_INT(store_append(s, batch1, 2), STORE_OK);
	CHECK_EQ_INT(store_append(s, batch2, 3), STORE_OK);
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 3);
	if (l.n == 3) {
		CHECK_EQ_STR(l.v[0].body, "first");
		CHECK_EQ_STR(l.v[1].body, "b");
		CHECK_EQ_STR(l.v[2].body, "other boot");
	}
	list_free(&l);
	store_close(s);
}

static void contract_order(const struct impl *im)
{
	struct store *s = im->open("order");
	CHECK(s != NULL);
	if (!s)
		return;
	/* Deliberately not in stream/seq order. */
	struct op ops[] = {make_op(3, 1, 1, 9, "x"), make_op(1, 5, 1, 2, "y"),
			   make_op(2, 1, 1, 1, "z"), make_op(1, 5, 1, 1, "w")};
	CHECK_EQ_INT(store_append(s, &ops[0], 1), STORE_OK);
	CHECK_EQ_INT(store_append(s, &ops[1], 2), STORE_OK);
	CHECK_EQ_INT(store_append(s, &ops[3], 1), STORE_OK);
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 4);
	for (size_t i = 0; i < l.n && i < 4; i++)
		CHECK(op_same(&l.v[i], &ops[i]));
	list_free(&l);
	store_close(s);
}

static int stop_after_two(const struct op *op, void *arg)
{
	int *seen = arg;
	return ++*seen == 2 ? 42 : 0;
}

static void contract_load_stops(const struct impl *im)
{
	struct store *s = im->open("load_stops");
	CHECK(s != NULL);
	if (!s)
		return;
	struct op ops[] = {make_op(1, 1, 1, 1, "a"), make_op(1, 1, 1, 2, "b"), make_op(1, 1, 1, 3, "c")};
	CHECK_EQ_INT(store_append(s, ops, 3), STORE_OK);
	int seen = 0;
	CHECK_EQ_INT(store_load(s, stop_after_two, &seen), 42);
	CHECK_EQ_INT(seen, 2);
	store_close(s);
}

static void contract_meta(const struct impl *im)
{
	struct store *s = im->open("meta");
	CHECK(s != NULL);
	if (!s)
		return;
	char *v = (char *)"untouched";
	CHECK_EQ_INT(store_meta_get(s, "nope", &v), STORE_NOTFOUND);
	CHECK(v == NULL);
	CHECK_EQ_INT(store_meta_set(s, "boot", "1"), STORE_OK);
	CHECK_EQ_INT(store_meta_get(s, "boot", &v), STORE_OK);
	CHECK_EQ_STR(v, "1");
	free(v);
	CHECK_EQ_INT(store_meta_set(s, "boot", "2"), STORE_OK);
	CHECK_EQ_INT(store_meta_set(s, "empty", ""), STORE_OK);
	CHECK_EQ_INT(store_meta_get(s, "boot", &v), STORE_OK);
	CHECK_EQ_STR(v, "2");
	free(v);
	CHECK_EQ_INT(store_meta_get(s, "empty", &v), STORE_OK);
	CHECK_EQ_STR(v, "");
	free(v);
	store_close(s);
}

/* Many ops, each appended twice: dedupe must hold and stay fast. */
static void contract_many(const struct impl *im)
{
	enum { BATCH = 1000, BATCHES = 20 };
	struct store *s = im->open("many");
	CHECK(s != NULL);
	if (!s)
		return;
	struct op *ops = xcalloc(BATCH, sizeof *ops);
	for (int round = 0; round < 2; round++) {
		for (int b = 0; b < BATCHES; b++) {
			for (int i = 0; i < BATCH; i++)
				ops[i] = make_op(1 + (uint32_t)(i % 3), 99, 1,
						 (uint64_t)(b * BATCH + i + 1), "m");
			CHECK_EQ_INT(store_append(s, ops, BATCH), STORE_OK);
		}
	}
	CHECK_EQ_INT(count_ops(s), BATCH * BATCHES);
	free(ops);
	store_close(s);
}

static void run_contract(const struct impl *im)
{
	contract_round_trip(im);
	contract_duplicates(im);
	contract_order(im);
	contract_load_stops(im);
	contract_meta(im);
	contract_many(im);
}

TEST(memory_contract)
{
	run_contract(&memory_impl);
}

TEST(sqlite_contract)
{
	run_contract(&sqlite_impl);
}

/* ---- SQLite only ---- */

TEST(sqlite_persists)
{
	struct store *s = open_sqlite_dir("persist", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	struct op ops[] = {make_op(1, 0x8000000000000000ull, 3, 1, "one"),
			   make_op(1, 0x8000000000000000ull, 3, 2, "two")};
	CHECK_EQ_INT(store_append(s, ops, 2), STORE_OK);
	CHECK_EQ_INT(store_meta_set(s, "boot", "3"), STORE_OK);
	store_close(s);

	struct store_sqlite_options opt = {STORE_SYNC_NORMAL, 0};
	s = open_sqlite_dir("persist", &opt);
	CHECK(s != NULL);
	if (!s)
		return;
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 2);
	for (size_t i = 0; i < l.n && i < 2; i++)
		CHECK(op_same(&l.v[i], &ops[i]));
	list_free(&l);
	char *v = NULL;
	CHECK_EQ_INT(store_meta_get(s, "boot", &v), STORE_OK);
	CHECK_EQ_STR(v, "3");
	free(v);
	CHECK_EQ_INT(store_meta_get(s, "format", &v), STORE_OK);
	CHECK_EQ_INT(atoi(v ? v : "0"), STORE_FORMAT_VERSION);
	free(v);
	/* Appending what is already there is still a no-op after reopening. */
	CHECK_EQ_INT(store_append(s, ops, 2), STORE_OK);
	CHECK_EQ_INT(count_ops(s), 2);
	store_close(s);
}

TEST(sqlite_format_mismatch)
{
	struct store *s = open_sqlite_dir("format", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	store_close(s);

	char *path = tmp_path("format/chorus.db");
	sqlite3 *db = NULL;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'format'", NULL, NULL,
				  NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	free(path);

	char *dir = tmp_path("format");
	char *err = NULL;
	s = store_sqlite_open(dir, NULL, &err);
	CHECK(s == NULL);
	CHECK(err != NULL && strstr(err, "format") && strstr(err, "99"));
	if (s)
		store_close(s);
	free(err);
	free(dir);
}

TEST(sqlite_open_errors)
{
	/* A data directory that is a file. */
	char *file = tmp_path("plainfile");
	FILE *f = fopen(file, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	char *err = NULL;
	struct store *s = store_sqlite_open(file, NULL, &err);
	CHECK(s == NULL);
	CHECK(err != NULL);
	free(err);

	/* A chorus.db that is not a database. */
	char *dir = tmp_path("notdb");
	char *db = tmp_path("notdb/chorus.db");
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	f = fopen(db, "w");
	if (f) {
		for (int i = 0; i < 200; i++)
			fputs("this is not an SQLite database at all. ", f);
		fclose(f);
	}
	err = NULL;
	s = store_sqlite_open(dir, NULL, &err);
	CHECK(s == NULL);
	CHECK(err != NULL);
	if (s)
		store_close(s);
	free(err);
	free(file);
	free(dir);
	free(db);
}

TEST(sqlite_full)
{
	enum { BATCH = 8, BODY = 4000, MAX_BATCHES = 1000 };
	struct store_sqlite_options opt = {STORE_SYNC_NORMAL, 256 * 1024};
	struct store *s = open_sqlite_dir("full", &opt);
	CHECK(s != NULL);
	if (!s)
		return;
	char *body = xmalloc(BODY + 1);
	memset(body, 'x', BODY);
	body[BODY] = '\0';
	struct op ops[BATCH];
	size_t stored = 0;
	int rc = STORE_OK;
	for (int b = 0; b < MAX_BATCHES && rc == STORE_OK; b++) {
		for (int i = 0; i < BATCH; i++)
			ops[i] = make_op(1, 5, 1, (uint64_t)(b * BATCH + i + 1), body);
		rc = store_append(s, ops, BATCH);
		if (rc == STORE_OK)
			stored += BATCH;
	}
	CHECK_EQ_INT(rc, STORE_EFULL);
	CHECK(stored > 0);
	CHECK(strstr(store_last_error(s), "full") != NULL);
	/* The failed batch left nothing; the store still reads. */
	CHECK_EQ_INT(count_ops(s), stored);
	char *v = NULL;
	CHECK_EQ_INT(store_meta_get(s, "format", &v), STORE_OK);
	CHECK_EQ_INT(atoi(v ? v : "0"), STORE_FORMAT_VERSION);
	free(v);
	/* Still full for the same batch. */
	CHECK_EQ_INT(store_append(s, ops, BATCH), STORE_EFULL);
	store_close(s);

	/* Without the limit the data is all there and the batch goes in. */
	s = open_sqlite_dir("full", NULL);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_INT(count_ops(s), stored);
		CHECK_EQ_INT(store_append(s, ops, BATCH), STORE_OK);
		CHECK_EQ_INT(count_ops(s), stored + BATCH);
		store_close(s);
	}
	free(body);
}

/* ---- memory only ---- */

TEST(memory_fault_injection)
{
	struct store *s = store_memory_new();
	struct op ops[] = {make_op(1, 1, 1, 1, "a"), make_op(1, 1, 1, 2, "b")};
	char *v = NULL;
	store_memory_fail(s, 2, STORE_EFULL);
	CHECK_EQ_INT(store_append(s, ops, 2), STORE_EFULL);
	CHECK(strstr(store_last_error(s), "injected") != NULL);
	CHECK_EQ_INT(store_meta_set(s, "k", "v"), STORE_EFULL);
	CHECK_EQ_INT(count_ops(s), 0);
	CHECK_EQ_INT(store_meta_get(s, "k", &v), STORE_NOTFOUND);
	CHECK_EQ_INT(store_append(s, ops, 1), STORE_OK);
	CHECK_EQ_INT(store_meta_set(s, "k", "v"), STORE_OK);
	store_memory_fail(s, 1, STORE_EIO);
	CHECK_EQ_INT(store_append(s, ops, 2), STORE_EIO);
	CHECK_EQ_INT(count_ops(s), 1);
	CHECK_EQ_INT(store_append(s, ops, 2), STORE_OK);
	CHECK_EQ_INT(count_ops(s), 2);
	CHECK_EQ_INT(store_meta_get(s, "k", &v), STORE_OK);
	CHECK_EQ_STR(v, "v");
	free(v);
	store_close(s);
}

/* ---- a store that is slow and checks it is never used concurrently ---- */

struct slow_store {
	struct store base;
	struct store *inner;
	int delay_ms;
	atomic_int active;
	atomic_int max_active;
};

static int slow_append(struct store *base, const struct op *ops, size_t n)
{
	struct slow_store *s = (struct slow_store *)base;
	int now = atomic_fetch_add(&s->active, 1) + 1;
	if (now > atomic_load(&s->max_active))
		atomic_store(&s->max_active, now);
	usleep((useconds_t)s->delay_ms * 1000);
	int rc = store_append(s->inner, ops, n);
	atomic_fetch_sub(&s->active, 1);
	return rc;
}

static int slow_load(struct store *base, int (*fn)(const struct op *, void *), void *arg)
{
	return store_load(((struct slow_store *)base)->inner, fn, arg);
}

static int slow_meta_get(struct store *base, const char *key, char **value)
{
	return store_meta_get(((struct slow_store *)base)->inner, key, value);
}

static int slow_meta_set(struct store *base, const char *key, const char *value)
{
	return store_meta_set(((struct slow_store *)base)->inner, key, value);
}

static const char *slow_last_error(struct store *base)
{
	return store_last_error(((struct slow_store *)base)->inner);
}

static void slow_close(struct store *base)
{
	store_close(((struct slow_store *)base)->inner);
	free(base);
}

static const struct store_ops slow_ops = {slow_append,     slow_load,       slow_meta_get,
					  slow_meta_set,   slow_last_error, slow_close};

static struct slow_store *slow_new(int delay_ms)
{
	struct slow_store *s = xcalloc(1, sizeof *s);
	s->base.ops = &slow_ops;
	s->inner = store_memory_new();
	s->delay_ms = delay_ms;
	return s;
}

/* ---- writer harness ---- */

#define MAX_CALLS 4096

struct wtest {
	uv_loop_t loop;
	uv_timer_t timer;
	struct store *store;
	struct store_writer *w;
	uint64_t next_submit;   /* seq of the next op submitted */
	uint64_t next_done;     /* seq expected next in done() */
	uint64_t close_at;      /* close the writer from done() once this many ops are reported */
	int ticks;              /* timer ticks left */
	int per_tick;           /* ops submitted per tick */
	int ncalls;
	int status[MAX_CALLS];
	size_t size[MAX_CALLS];
	int order_ok;
	int closed;
	int calls_at_close;     /* ncalls when closed() ran */
	void (*on_done)(struct wtest *t, int status, size_t n); /* optional extra step */
};

static void wtest_init(struct wtest *t, struct store *s);

static void submit_n(struct wtest *t, int n)
{
	for (int i = 0; i < n; i++) {
		struct op op = make_op(1, 42, 1, t->next_submit++, "w");
		store_writer_submit(t->w, &op);
	}
}

static void closed_cb(void *arg)
{
	struct wtest *t = arg;
	t->closed++;
	t->calls_at_close = t->ncalls;
}

static void done_cb(void *arg, int status, const struct op *ops, size_t n)
{
	struct wtest *t = arg;
	if (t->ncalls < MAX_CALLS) {
		t->status[t->ncalls] = status;
		t->size[t->ncalls] = n;
	}
	t->ncalls++;
	for (size_t i = 0; i < n; i++)
		if (ops[i].seq != t->next_done++)
			t->order_ok = 0;
	if (t->on_done)
		t->on_done(t, status, n);
	if (t->close_at && t->next_done == t->close_at + 1)
		store_writer_close(t->w, closed_cb, t);
}

static void wtest_init(struct wtest *t, struct store *s)
{
	memset(t, 0, sizeof *t);
	CHECK_EQ_INT(uv_loop_init(&t->loop), 0);
	uv_timer_init(&t->loop, &t->timer);
	t->timer.data = t;
	t->store = s;
	t->w = store_writer_new(&t->loop, s, done_cb, t);
	t->next_submit = t->next_done = 1;
	t->order_ok = 1;
}

/* Runs the loop to the end and checks it closes clean. The writer must have
 * been closed (or be closed by done()). */
static void wtest_finish(struct wtest *t)
{
	uv_run(&t->loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(t->closed, 1);
	if (!uv_is_closing((uv_handle_t *)&t->timer))
		uv_close((uv_handle_t *)&t->timer, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&t->loop), 0);
}

static void tick_cb(uv_timer_t *timer)
{
	struct wtest *t = timer->data;
	submit_n(t, t->per_tick);
	if (--t->ticks == 0)
		uv_timer_stop(timer);
}

/* ---- writer tests ---- */

/* Ops submitted in one turn go in one transaction; later turns' ops gather
 * while one runs; done() comes in submission order. */
TEST(writer_group_commit)
{
	enum { FIRST = 100, TICKS = 20, PER_TICK = 5 };
	struct slow_store *slow = slow_new(5);
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, &slow->base);
	t->ticks = TICKS;
	t->per_tick = PER_TICK;
	t->close_at = FIRST + TICKS * PER_TICK;
	submit_n(t, FIRST);
	CHECK_EQ_INT(store_writer_backlog(t->w), FIRST);
	uv_timer_start(&t->timer, tick_cb, 1, 1);
	wtest_finish(t);

	CHECK(t->order_ok);
	CHECK_EQ_INT(t->next_done, t->close_at + 1);
	CHECK(t->size[0] >= FIRST); /* the first turn's ops went together */
	CHECK(t->ncalls <= 1 + TICKS);
	for (int i = 0; i < t->ncalls && i < MAX_CALLS; i++) {
		CHECK_EQ_INT(t->status[i], STORE_OK);
		CHECK(i == 0 || t->size[i] % PER_TICK == 0); /* a turn's ops are never split */
	}
	CHECK_EQ_INT(atomic_load(&slow->max_active), 1);
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(&slow->base, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, t->close_at);
	for (size_t i = 0; i < l.n; i++)
		CHECK(l.v[i].seq == i + 1);
	list_free(&l);
	store_close(&slow->base);
	free(t);
}

/* One transaction holds at most 10,000 ops. */
TEST(writer_batch_cap)
{
	enum { N = 25000 };
	struct store *s = store_memory_new();
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, s);
	t->close_at = N;
	submit_n(t, N);
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_INT(t->ncalls, 3);
	CHECK_EQ_INT(t->size[0], 10000);
	CHECK_EQ_INT(t->size[1], 10000);
	CHECK_EQ_INT(t->size[2], 5000);
	CHECK_EQ_INT(count_ops(s), N);
	store_close(s);
	free(t);
}

/* Batch 1 succeeds, batch 2 meets an injected failure, batch 3 succeeds. */
static void failure_step(struct wtest *t, int status, size_t n)
{
	switch (t->ncalls) {
	case 1:
		store_memory_fail(t->store, 1, STORE_EIO);
		submit_n(t, 2);
		break;
	case 2:
		submit_n(t, 1);
		t->close_at = t->next_submit - 1;
		break;
	}
}

TEST(writer_failure)
{
	struct store *s = store_memory_new();
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, s);
	t->on_done = failure_step;
	submit_n(t, 3);
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_INT(t->ncalls, 3);
	CHECK_EQ_INT(t->status[0], STORE_OK);
	CHECK_EQ_INT(t->size[0], 3);
	CHECK_EQ_INT(t->status[1], STORE_EIO);
	CHECK_EQ_INT(t->size[1], 2);
	CHECK_EQ_INT(t->status[2], STORE_OK);
	CHECK_EQ_INT(t->size[2], 1);
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 4);
	if (l.n == 4)
		CHECK(l.v[0].seq == 1 && l.v[1].seq == 2 && l.v[2].seq == 3 && l.v[3].seq == 6);
	list_free(&l);
	store_close(s);
	free(t);
}

/* While batch 1 is being written, more is submitted and the writer closed:
 * batch 1 completes, the rest is reported failed, then closed(). */
static void close_tick(uv_timer_t *timer)
{
	struct wtest *t = timer->data;
	CHECK_EQ_INT(store_writer_backlog(t->w), 4);
	submit_n(t, 3);
	CHECK_EQ_INT(store_writer_backlog(t->w), 7);
	store_writer_close(t->w, closed_cb, t);
	CHECK_EQ_INT(t->ncalls, 0);
	/* Submitted after close: accepted, and reported failed before closed(). */
	submit_n(t, 1);
}

TEST(writer_close_pending)
{
	struct slow_store *slow = slow_new(200);
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, &slow->base);
	submit_n(t, 4);
	uv_timer_start(&t->timer, close_tick, 10, 0);
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_INT(t->ncalls, 2);
	CHECK_EQ_INT(t->status[0], STORE_OK);
	CHECK_EQ_INT(t->size[0], 4);
	CHECK_EQ_INT(t->status[1], STORE_EIO);
	CHECK_EQ_INT(t->size[1], 4);
	CHECK_EQ_INT(t->calls_at_close, 2);
	CHECK_EQ_INT(count_ops(&slow->base), 4);
	store_close(&slow->base);
	free(t);
}

/* Closed before the loop ever ran: nothing is written, all reported failed,
 * and nothing is called from inside store_writer_close. */
TEST(writer_close_before_run)
{
	struct store *s = store_memory_new();
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, s);
	submit_n(t, 3);
	store_writer_close(t->w, closed_cb, t);
	CHECK_EQ_INT(t->ncalls, 0);
	CHECK_EQ_INT(t->closed, 0);
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_INT(t->ncalls, 1);
	CHECK_EQ_INT(t->status[0], STORE_EIO);
	CHECK_EQ_INT(t->size[0], 3);
	CHECK_EQ_INT(count_ops(s), 0);
	store_close(s);
	free(t);
}

/* An idle writer neither keeps the loop alive nor spins it. */
TEST(writer_idle)
{
	struct store *s = store_memory_new();
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, s);
	CHECK_EQ_INT(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
	CHECK_EQ_INT(store_writer_backlog(t->w), 0);
	store_writer_close(t->w, closed_cb, t);
	wtest_finish(t);
	CHECK_EQ_INT(t->ncalls, 0);
	store_close(s);
	free(t);
}

/* End to end with the SQLite store, over several turns. */
TEST(writer_sqlite)
{
	struct store *s = open_sqlite_dir("writer", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, s);
	t->ticks = 5;
	t->per_tick = 10;
	t->close_at = 50;
	uv_timer_start(&t->timer, tick_cb, 1, 2);
	wtest_finish(t);
	CHECK(t->order_ok);
	for (int i = 0; i < t->ncalls && i < MAX_CALLS; i++)
		CHECK_EQ_INT(t->status[i], STORE_OK);
	CHECK_EQ_INT(count_ops(s), 50);
	store_close(s);
	free(t);
}

/* ---- main ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 2;
	}
	log_set_level(LOG_ERROR);
	RUN(memory_contract);
	RUN(sqlite_contract);
	RUN(sqlite_persists);
	RUN(sqlite_format_mismatch);
	RUN(sqlite_open_errors);
	RUN(sqlite_full);
	RUN(memory_fault_injection);
	RUN(writer_group_commit);
	RUN(writer_batch_cap);
	RUN(writer_failure);
	RUN(writer_close_pending);
	RUN(writer_close_before_run);
	RUN(writer_idle);
	RUN(writer_sqlite);
	nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return CHECK_DONE();
}
