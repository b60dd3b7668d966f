/*
 * test_store.c: the store contract, run against both implementations (memory
 * and SQLite in a temporary directory), the SQLite store's own promises
 * (persistence, format check, size limit, the range query's plan) and the
 * memory store's fault injection; then the store writer on a real libuv loop:
 * submission order, group commit per turn, the batch cap, a failing batch,
 * closing with work pending, a loop that closes clean, and reads queued
 * among the writes (they see earlier writes, FIFO completions, close).
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

static int collect_fn(const struct op *op, const struct chat_fact *fact, void *arg)
{
	(void)fact;
	list_push(arg, op);
	return 0;
}

/* The same for store_load_range. */
static int collect_range(const struct op *op, void *arg)
{
	return collect_fn(op, NULL, arg);
}

static size_t count_ops(struct store *s)
{
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, 0, collect_fn, &l), STORE_OK);
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
	       strcmp(str_or_empty(a->ref), str_or_empty(b->ref)) == 0 &&
	       strcmp(str_or_empty(a->account), str_or_empty(b->account)) == 0;
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
	ops[0].account = "3-0000000000000002-1-9";
	ops[1] = make_op(1, UINT64_MAX, 1, UINT64_MAX, "");
	ops[1].target = ops[1].author = ops[1].ref = "";
	ops[1].kind = 255;
	ops[1].flags = 255;
	ops[2] = make_op(2, 0, 0, 2, NULL);
	ops[2].target = ops[2].author = ops[2].ref = NULL;
	CHECK_EQ_INT(store_append(s, ops, 3, NULL), STORE_OK);

	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, 0, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 3);
	for (size_t i = 0; i < l.n && i < 3; i++) {
		CHECK(op_same(&l.v[i], &ops[i]));
		CHECK(l.v[i].target && l.v[i].author && l.v[i].body && l.v[i].ref && l.v[i].account);
	}
	if (l.n == 3)
		CHECK(l.v[0].stream.incarnation == 0xfedcba9876543210ull && l.v[0].lts == UINT64_MAX);
	list_free(&l);
	CHECK_EQ_INT(store_append(s, ops, 0, NULL), STORE_OK);
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
	CHECK_EQ_INT(store_append(s, batch1, 2, NULL), STORE_OK);
	CHECK_EQ_INT(store_append(s, batch2, 3, NULL), STORE_OK);
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, 0, collect_fn, &l), STORE_OK);
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
	CHECK_EQ_INT(store_append(s, &ops[0], 1, NULL), STORE_OK);
	CHECK_EQ_INT(store_append(s, &ops[1], 2, NULL), STORE_OK);
	CHECK_EQ_INT(store_append(s, &ops[3], 1, NULL), STORE_OK);
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, 0, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 4);
	for (size_t i = 0; i < l.n && i < 4; i++)
		CHECK(op_same(&l.v[i], &ops[i]));
	list_free(&l);
	store_close(s);
}

static int stop_after_two(const struct op *op, const struct chat_fact *fact, void *arg)
{
	(void)fact;
	(void)op;
	int *seen = arg;
	return ++*seen == 2 ? 42 : 0;
}

static int stop_range_after_two(const struct op *op, void *arg)
{
	return stop_after_two(op, NULL, arg);
}

static void contract_load_stops(const struct impl *im)
{
	struct store *s = im->open("load_stops");
	CHECK(s != NULL);
	if (!s)
		return;
	struct op ops[] = {make_op(1, 1, 1, 1, "a"), make_op(1, 1, 1, 2, "b"), make_op(1, 1, 1, 3, "c")};
	CHECK_EQ_INT(store_append(s, ops, 3, NULL), STORE_OK);
	int seen = 0;
	CHECK_EQ_INT(store_load(s, 0, stop_after_two, &seen), 42);
	CHECK_EQ_INT(seen, 2);
	store_close(s);
}

static const char *const range_bodies[] = {"", "a1", "a2", "a3", "a4", "a5",
					     "a6", "a7", "a8", "a9", "a10"};

/* Checks that l holds exactly the ops of stream (1, 7, 1) with seqs lo..hi. */
static void check_range(const struct op_list *l, uint64_t lo, uint64_t hi)
{
	CHECK_EQ_INT(l->n, hi >= lo ? hi - lo + 1 : 0);
	for (size_t i = 0; i < l->n; i++) {
		struct op want = make_op(1, 7, 1, lo + i, (char *)range_bodies[lo + i]);
		CHECK(op_same(&l->v[i], &want));
	}
}

static void contract_load_range(const struct impl *im)
{
	struct store *s = im->open("load_range");
	CHECK(s != NULL);
	if (!s)
		return;
	/* Stream (1, 7, 1), seqs 1..10 appended out of order, and its neighbours
	 * (another boot, incarnation, origin) with the same seqs. */
	static const uint64_t order[] = {5, 3, 9, 1, 10, 2, 4, 8, 6, 7};
	const struct op_stream mine = {1, 7, 1};
	const struct op_stream others[] = {{1, 7, 2}, {1, 8, 1}, {2, 7, 1}, {1, 6, 1}};
	for (size_t i = 0; i < 10; i++) {
		uint64_t seq = order[i];
		struct op batch[5];
		batch[0] = make_op(1, 7, 1, seq, (char *)range_bodies[seq]);
		for (size_t k = 0; k < 4; k++)
			batch[k + 1] = make_op(others[k].origin, others[k].incarnation,
					       others[k].boot, seq, "other");
		CHECK_EQ_INT(store_append(s, batch, i % 2 ? 5 : 1, NULL), STORE_OK);
		if (i % 2 == 0)
			CHECK_EQ_INT(store_append(s, &batch[1], 4, NULL), STORE_OK);
	}
	struct op_list l = {0};
	/* Inside. */
	CHECK_EQ_INT(store_load_range(s, &mine, 3, 7, collect_range, &l), STORE_OK);
	check_range(&l, 3, 7);
	list_free(&l);
	CHECK_EQ_INT(store_load_range(s, &mine, 6, 6, collect_range, &l), STORE_OK);
	check_range(&l, 6, 6);
	list_free(&l);
	/* Partly outside, either end. */
	CHECK_EQ_INT(store_load_range(s, &mine, 8, 20, collect_range, &l), STORE_OK);
	check_range(&l, 8, 10);
	list_free(&l);
	CHECK_EQ_INT(store_load_range(s, &mine, 0, 2, collect_range, &l), STORE_OK);
	check_range(&l, 1, 2);
	list_free(&l);
	/* All of it, by a range larger than the store. */
	CHECK_EQ_INT(store_load_range(s, &mine, 0, UINT64_MAX, collect_range, &l), STORE_OK);
	check_range(&l, 1, 10);
	list_free(&l);
	/* Empty: past the end, reversed, an unknown stream. */
	CHECK_EQ_INT(store_load_range(s, &mine, 11, 1000, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 0);
	CHECK_EQ_INT(store_load_range(s, &mine, 5, 4, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 0);
	CHECK_EQ_INT(store_load_range(s, &mine, UINT64_MAX, 0, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 0);
	const struct op_stream unknown = {9, 7, 1};
	CHECK_EQ_INT(store_load_range(s, &unknown, 0, UINT64_MAX, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 0);
	/* A neighbour gets its own ops only. */
	CHECK_EQ_INT(store_load_range(s, &others[0], 2, 4, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 3);
	for (size_t i = 0; i < l.n; i++) {
		CHECK(op_stream_cmp(&l.v[i].stream, &others[0]) == 0);
		CHECK_EQ_INT(l.v[i].seq, 2 + i);
		CHECK_EQ_STR(l.v[i].body, "other");
	}
	list_free(&l);
	/* Stops early with fn's value. */
	int seen = 0;
	CHECK_EQ_INT(store_load_range(s, &mine, 1, 10, stop_range_after_two, &seen), 42);
	CHECK_EQ_INT(seen, 2);
	seen = 0;
	CHECK_EQ_INT(store_load_range(s, &mine, 0, UINT64_MAX, stop_range_after_two, &seen), 42);
	CHECK_EQ_INT(seen, 2);
	/* The store is still usable after a stopped read. */
	struct op more = make_op(1, 7, 1, 11, "a11");
	CHECK_EQ_INT(store_append(s, &more, 1, NULL), STORE_OK);

	/* Gaps are skipped; seqs with the top bit set sort as unsigned. */
	const struct op_stream big = {3, 3, 3};
	static const uint64_t big_seqs[] = {UINT64_MAX, 1ull << 63, 5, (uint64_t)INT64_MAX, 1,
					    3, UINT64_MAX - 1};
	static const uint64_t big_sorted[] = {1, 3, 5, (uint64_t)INT64_MAX, 1ull << 63,
					      UINT64_MAX - 1, UINT64_MAX};
	for (size_t i = 0; i < 7; i++) {
		struct op op = make_op(3, 3, 3, 1, "big");
		op.seq = big_seqs[i];
		CHECK_EQ_INT(store_append(s, &op, 1, NULL), STORE_OK);
	}
	CHECK_EQ_INT(store_load_range(s, &big, 0, UINT64_MAX, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 7);
	for (size_t i = 0; i < l.n && i < 7; i++)
		CHECK(l.v[i].seq == big_sorted[i]);
	list_free(&l);
	CHECK_EQ_INT(store_load_range(s, &big, 1, 5, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 3);
	if (l.n == 3)
		CHECK(l.v[0].seq == 1 && l.v[1].seq == 3 && l.v[2].seq == 5);
	list_free(&l);
	CHECK_EQ_INT(store_load_range(s, &big, (uint64_t)INT64_MAX, 1ull << 63, collect_range, &l),
		     STORE_OK);
	CHECK_EQ_INT(l.n, 2);
	if (l.n == 2)
		CHECK(l.v[0].seq == (uint64_t)INT64_MAX && l.v[1].seq == 1ull << 63);
	list_free(&l);
	CHECK_EQ_INT(store_load_range(s, &big, 1ull << 63, UINT64_MAX, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 3);
	if (l.n == 3)
		CHECK(l.v[0].seq == 1ull << 63 && l.v[2].seq == UINT64_MAX);
	list_free(&l);
	CHECK_EQ_INT(store_load_range(s, &big, UINT64_MAX, UINT64_MAX, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 1);
	list_free(&l);
	CHECK_EQ_INT(count_ops(s), 10 * 5 + 1 + 7);
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
			CHECK_EQ_INT(store_append(s, ops, BATCH, NULL), STORE_OK);
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
	contract_load_range(im);
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

/* Positions rise with each op stored (not with a duplicate), load after a
 * position gives the ops stored after it, and the snapshot is kept with the
 * position it holds, replaced by the next, across a reopen. */
TEST(sqlite_positions_and_snapshot)
{
	struct store *s = open_sqlite_dir("snapshot", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	uint64_t upto = 7;
	void *data = NULL;
	size_t len = 9;
	CHECK_EQ_INT(store_snapshot_get(s, &upto, &data, &len), STORE_NOTFOUND);
	CHECK(data == NULL && len == 0);
	CHECK_EQ_INT(store_position(s), 0);
	struct op ops[] = {make_op(1, 5, 1, 1, "one"), make_op(1, 5, 1, 2, "two"), make_op(1, 5, 1, 3, "three")};
	CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_OK);
	uint64_t after_two = store_position(s);
	CHECK(after_two > 0);
	CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_OK); /* duplicates */
	CHECK_EQ_INT(store_position(s), after_two);
	CHECK_EQ_INT(store_snapshot_put(s, after_two, "first", 5), STORE_OK);
	CHECK_EQ_INT(store_append(s, &ops[2], 1, NULL), STORE_OK);
	CHECK(store_position(s) > after_two);
	CHECK_EQ_INT(store_snapshot_put(s, after_two, "second\0!", 8), STORE_OK);
	store_close(s);

	s = open_sqlite_dir("snapshot", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ_INT(store_snapshot_get(s, &upto, &data, &len), STORE_OK);
	CHECK_EQ_INT(upto, after_two);
	CHECK_EQ_INT(len, 8);
	CHECK(data && memcmp(data, "second\0!", 8) == 0);
	free(data);
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, upto, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 1);
	CHECK(l.n == 1 && op_same(&l.v[0], &ops[2]));
	list_free(&l);
	CHECK_EQ_INT(count_ops(s), 3);
	store_close(s);
}

/* A digest pinned, then appends (lines, likes) going on, in memory and on
 * disk: the pinned digest is the digest of the moment of the pin, not of
 * after, and the store's digest moves with the appends. */
TEST(digest_pinned_while_appends_go_on)
{
	struct store *disk = open_sqlite_dir("pin", NULL), *mem = store_memory_new();
	CHECK(disk != NULL);
	if (!disk)
		return;
	struct store *stores[] = {disk, mem};
	for (int k = 0; k < 2; k++) {
		struct store *s = stores[k];
		struct op ops[] = {make_op(1, 5, 1, 1, "one"), make_op(1, 5, 1, 2, "two"), make_op(1, 5, 1, 3, "three")};
		char id[OP_MSGID_MAX], before[65], pinned[65], after[65];
		op_msgid(&ops[0], id, sizeof id);
		struct op like = make_op(2, 6, 1, 1, "+1");
		like.kind = OP_LIKE;
		like.author = "bob";
		like.ref = id;
		CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_OK);
		CHECK_EQ_INT(store_digest(s, before), STORE_OK);
		struct store_pin *pin = NULL;
		CHECK_EQ_INT(store_digest_pin(s, &pin), STORE_OK);
		CHECK_EQ_INT(store_append(s, &ops[2], 1, NULL), STORE_OK);
		CHECK_EQ_INT(store_append(s, &like, 1, NULL), STORE_OK);
		CHECK_EQ_INT(store_digest(s, after), STORE_OK);
		CHECK(strcmp(before, after) != 0);
		CHECK(pin != NULL);
		if (pin)
			CHECK_EQ_INT(store_pin_digest(pin, pinned), STORE_OK);
		CHECK_EQ_STR(pinned, before);
		CHECK_EQ_INT(store_digest_pin(s, &pin), STORE_OK); /* one freed unhashed */
		store_pin_free(pin);
		/* Two at once (the second hashes at once), and one that outlives
		 * its store. */
		struct store_pin *again = NULL;
		CHECK_EQ_INT(store_digest_pin(s, &pin), STORE_OK);
		CHECK_EQ_INT(store_digest_pin(s, &again), STORE_OK);
		CHECK(pin && again);
		if (again)
			CHECK_EQ_INT(store_pin_digest(again, pinned), STORE_OK);
		CHECK_EQ_STR(pinned, after);
		store_close(s);
		if (pin)
			CHECK_EQ_INT(store_pin_digest(pin, pinned), STORE_OK);
		CHECK_EQ_STR(pinned, after);
	}
}

TEST(sqlite_persists)
{
	struct store *s = open_sqlite_dir("persist", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	struct op ops[] = {make_op(1, 0x8000000000000000ull, 3, 1, "one"),
			   make_op(1, 0x8000000000000000ull, 3, 2, "two")};
	CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_OK);
	CHECK_EQ_INT(store_meta_set(s, "boot", "3"), STORE_OK);
	store_close(s);

	struct store_sqlite_options opt = {.sync = STORE_SYNC_NORMAL};
	s = open_sqlite_dir("persist", &opt);
	CHECK(s != NULL);
	if (!s)
		return;
	struct op_list l = {0};
	CHECK_EQ_INT(store_load(s, 0, collect_fn, &l), STORE_OK);
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
	const struct op_stream st = {1, 0x8000000000000000ull, 3};
	CHECK_EQ_INT(store_load_range(s, &st, 2, 9, collect_range, &l), STORE_OK);
	CHECK_EQ_INT(l.n, 1);
	if (l.n == 1)
		CHECK(op_same(&l.v[0], &ops[1]));
	list_free(&l);
	/* Appending what is already there is still a no-op after reopening. */
	CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_OK);
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

/* Makes dir/chorus.db as chorus of storage format `format` (1 to 4) made
 * it: before 4 the ops table without a tags column (and, before 3, without
 * an account column), before 5 no message index; three ops: two lines of
 * "a" in #r (lts 10 and 20) and b's like of the first (lts 25). */
static void make_old_format(const char *dir, const char *format)
{
	char *d = tmp_path(dir);
	CHECK_EQ_INT(mkdir(d, 0700), 0);
	char *path = xasprintf("%s/chorus.db", d);
	int account = strcmp(format, "3") >= 0, tags = strcmp(format, "4") >= 0;
	const char *more = tags ? ", '', ''" : account ? ", ''" : "";
	char *sql = xasprintf(
		"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		"CREATE TABLE ops(rowid INTEGER PRIMARY KEY,"
		" origin INTEGER, incarnation INTEGER, boot INTEGER, seq INTEGER,"
		" lts INTEGER, wall_ms INTEGER, kind INTEGER, flags INTEGER,"
		" target TEXT, author TEXT, body TEXT, ref TEXT,%s%s"
		" UNIQUE(origin, incarnation, boot, seq));"
		"INSERT INTO meta VALUES('format', '%s');"
		"INSERT INTO ops VALUES(1, 1, 7, 1, 1, 10, 0, 3, 0, '#r', 'a', 'one', ''%s);"
		"INSERT INTO ops VALUES(2, 1, 7, 1, 2, 20, 0, 3, 0, '#r', 'a', 'two', ''%s);"
		"INSERT INTO ops VALUES(3, 2, 8, 1, 1, 25, 0, 5, 0, '#r', 'b', '+1',"
		" '1-0000000000000007-1-1'%s);",
		account ? " account TEXT NOT NULL DEFAULT ''," : "",
		tags ? " tags TEXT NOT NULL DEFAULT ''," : "", format, more, more, more);
	sqlite3 *db = NULL;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(sql);
	free(path);
	free(d);
}

/* Data directories of formats 1 (lts given at delivery), 2 (no account
 * column), 3 (no tags column) and 4 (no message index) are upgraded on
 * open: their ops are all there with the lts they had, no account and no
 * tags, new ops keep theirs, the message index holds the old lines with
 * their like and the new one, and the format is the current one. */
TEST(sqlite_old_formats_upgraded)
{
	const char *formats[] = {"1", "2", "3", "4"};
	for (int f = 0; f < 4; f++) {
		char dir[32];
		snprintf(dir, sizeof dir, "format%s", formats[f]);
		make_old_format(dir, formats[f]);
		struct store *s = open_sqlite_dir(dir, NULL);
		CHECK(s != NULL);
		if (!s)
			return;
		char *v = NULL;
		CHECK_EQ_INT(store_meta_get(s, "format", &v), STORE_OK);
		CHECK_EQ_INT(atoi(v ? v : "0"), STORE_FORMAT_VERSION);
		free(v);
		struct op added = make_op(1, 7, 1, 3, "three");
		added.target = "#r";
		added.account = "1-0000000000000007-1-1";
		added.tags = "+draft/reply=x;+a";
		CHECK_EQ_INT(store_append(s, &added, 1, NULL), STORE_OK);
		struct op_list l = {0};
		CHECK_EQ_INT(store_load(s, 0, collect_fn, &l), 0);
		CHECK_EQ_INT(l.n, 4);
		CHECK(l.n == 4 && l.v[0].lts == 10 && l.v[1].lts == 20 && strcmp(l.v[1].body, "two") == 0);
		CHECK(l.n == 4 && strcmp(l.v[0].account, "") == 0 &&
		      strcmp(l.v[3].account, "1-0000000000000007-1-1") == 0);
		CHECK(l.n == 4 && strcmp(l.v[1].tags, "") == 0 && strcmp(l.v[3].tags, "+draft/reply=x;+a") == 0);
		list_free(&l);
		struct store_msgs ms;
		CHECK_EQ_INT(store_history(s, "#r", NULL, NULL, 10, 0, &ms), STORE_OK);
		CHECK_EQ_INT(ms.n, 3);
		CHECK(ms.n == 3 && strcmp(ms.ops[0].body, "one") == 0 && ms.likes[0] == 1 &&
		      strcmp(ms.ops[2].body, "three") == 0 && ms.likes[1] == 0);
		store_msgs_free(&ms);
		store_close(s);
	}
}

/* The lines of #room in s, their bodies joined by ",". */
static void room_bodies(struct store *s, char *out, size_t len)
{
	struct store_msgs ms;
	out[0] = '\0';
	if (store_history(s, "#room", NULL, NULL, 1000000, 0, &ms) != STORE_OK)
		return;
	for (size_t i = 0; i < ms.n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", ms.ops[i].body);
	store_msgs_free(&ms);
}

/* Format 5 kept client ids as tags but made no line of them: upgraded, a
 * person's two messages with one id are one line. */
TEST(sqlite_format_5_upgraded)
{
	struct store *s = open_sqlite_dir("format5", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	struct op ops[] = {make_op(1, 1, 1, 1, "one"), make_op(2, 1, 1, 1, "one again"), make_op(1, 1, 1, 2, "two")};
	CHECK_EQ_INT(store_append(s, ops, 3, NULL), STORE_OK);
	store_close(s);
	char *path = tmp_path("format5/chorus.db");
	sqlite3 *db = NULL;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db,
				  "UPDATE ops SET tags = '+chorus/cid=z' WHERE body LIKE 'one%';"
				  "UPDATE meta SET value = '5' WHERE key = 'format'; DROP TABLE cids;",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	free(path);
	s = open_sqlite_dir("format5", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	char got[256];
	room_bodies(s, got, sizeof got);
	CHECK_EQ_STR(got, "one,two");
	store_close(s);
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

/* The number of messages in #room's history by the message index, or -1
 * if they are not its stored seqs 1.. in order. */
static long history_len(struct store *s)
{
	struct store_msgs ms;
	if (store_history(s, "#room", NULL, NULL, 1000000, 0, &ms) != STORE_OK)
		return -1;
	long n = (long)ms.n;
	for (size_t i = 0; i < ms.n; i++)
		if (ms.ops[i].seq != i + 1)
			n = -1;
	store_msgs_free(&ms);
	return n;
}

static int load_repeats(const struct op *op, const struct chat_fact *fact, void *arg)
{
	char *out = arg;
	snprintf(out + strlen(out), 64 - strlen(out), "%s%d", *out ? "," : "", fact->repeat);
	(void)op;
	return 0;
}

/* Exactly-once sends: of one person's messages with one client id, the
 * first in canonical order is the line, whatever order they are stored in;
 * the others are repeats (their facts say which line they repeat). Across
 * the index's bulks (lag 2: the line that loses has left the tail for msgs)
 * and a reopen (the tail read again, loads told which ops are repeats). */
TEST(sqlite_client_ids_make_one_line)
{
	struct store_sqlite_options opt = {.sync = STORE_SYNC_OFF, .index_lag = 2};
	struct store *s = open_sqlite_dir("cids", &opt);
	CHECK(s != NULL);
	if (!s)
		return;
	struct op a = make_op(1, 1, 1, 1, "first"), b = make_op(2, 1, 1, 1, "again");
	struct op c = make_op(3, 1, 1, 1, "earlier"), d = make_op(1, 1, 1, 2, "other person");
	struct op e = make_op(1, 1, 1, 3, "no id"), f = make_op(2, 1, 1, 2, "bad id");
	a.lts = 50, b.lts = 60, c.lts = 40, d.lts = 55, e.lts = 70, f.lts = 80;
	a.tags = b.tags = c.tags = "+chorus/cid=x1";
	d.tags = "+other=1;+chorus/cid=x1";
	d.author = "bob";
	f.tags = "+chorus/cid=x 1";
	struct chat_fact fa = {0}, fb = {0}, fc = {0}, fd = {0}, rest[2] = {{0}};
	char got[256];
	CHECK_EQ_INT(store_append(s, &a, 1, &fa), STORE_OK);
	CHECK(!fa.repeat);
	CHECK_EQ_INT(store_append(s, &b, 1, &fb), STORE_OK);
	struct op_key ka = op_key_of(&a);
	CHECK(fb.repeat && !fb.line && op_key_cmp(&fb.other, &ka) == 0);
	room_bodies(s, got, sizeof got);
	CHECK_EQ_STR(got, "first");
	CHECK_EQ_INT(store_append(s, &c, 1, &fc), STORE_OK); /* sorts first: takes the place */
	CHECK(fc.repeat && fc.line && op_key_cmp(&fc.other, &ka) == 0);
	CHECK_EQ_INT(store_append(s, &d, 1, &fd), STORE_OK); /* another person's id */
	CHECK(!fd.repeat);
	struct op more[2] = {e, f};
	CHECK_EQ_INT(store_append(s, more, 2, rest), STORE_OK);
	CHECK(!rest[0].repeat && !rest[1].repeat);
	room_bodies(s, got, sizeof got);
	CHECK_EQ_STR(got, "earlier,other person,no id,bad id");
	char digest[65], digest2[65];
	CHECK_EQ_INT(store_digest(s, digest), STORE_OK);
	store_close(s);

	s = open_sqlite_dir("cids", &opt);
	CHECK(s != NULL);
	if (!s)
		return;
	room_bodies(s, got, sizeof got);
	CHECK_EQ_STR(got, "earlier,other person,no id,bad id");
	char repeats[64] = "";
	CHECK_EQ_INT(store_load(s, 0, load_repeats, repeats), STORE_OK);
	CHECK_EQ_STR(repeats, "0,1,1,0,0,0");
	CHECK_EQ_INT(store_digest(s, digest2), STORE_OK);
	CHECK_EQ_STR(digest2, digest);
	store_close(s);

	/* The same ops in another order: the same lines and digest. */
	s = open_sqlite_dir("cids2", &opt);
	CHECK(s != NULL);
	if (!s)
		return;
	struct op all[6] = {e, c, f, b, d, a};
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(store_append(s, &all[i], 1, NULL), STORE_OK);
	room_bodies(s, got, sizeof got);
	CHECK_EQ_STR(got, "earlier,other person,no id,bad id");
	CHECK_EQ_INT(store_digest(s, digest2), STORE_OK);
	CHECK_EQ_STR(digest2, digest);
	store_close(s);
}

/* A full disk: the failed batch leaves nothing, in the ops or in the
 * message index (which writes a bulk every 5 ops here, so some failed
 * batches had written one), and everything reads afterwards. */
TEST(sqlite_full)
{
	enum { BATCH = 8, BODY = 4000, MAX_BATCHES = 1000 };
	struct store_sqlite_options opt = {.sync = STORE_SYNC_NORMAL, .max_bytes = 256 * 1024, .index_lag = 5};
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
		rc = store_append(s, ops, BATCH, NULL);
		if (rc == STORE_OK)
			stored += BATCH;
	}
	CHECK_EQ_INT(rc, STORE_EFULL);
	CHECK(stored > 0);
	CHECK(strstr(store_last_error(s), "full") != NULL);
	/* The failed batch left nothing; the store still reads. */
	CHECK_EQ_INT(count_ops(s), stored);
	CHECK_EQ_INT(history_len(s), (long)stored);
	char *v = NULL;
	CHECK_EQ_INT(store_meta_get(s, "format", &v), STORE_OK);
	CHECK_EQ_INT(atoi(v ? v : "0"), STORE_FORMAT_VERSION);
	free(v);
	/* Still full for the same batch. */
	CHECK_EQ_INT(store_append(s, ops, BATCH, NULL), STORE_EFULL);
	/* A small op may still fit, in a rowid a failed batch had used: the
	 * index does not take it for one of that batch's lines. */
	struct op tiny = make_op(1, 6, 1, 1, "");
	tiny.kind = OP_USER;
	tiny.target = "";
	int tiny_rc = store_append(s, &tiny, 1, NULL);
	CHECK(tiny_rc == STORE_OK || tiny_rc == STORE_EFULL);
	CHECK_EQ_INT(history_len(s), (long)stored);
	store_close(s);

	/* Without the limit the data is all there and the batch goes in. */
	s = open_sqlite_dir("full", NULL);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_INT(count_ops(s), stored + (tiny_rc == STORE_OK));
		CHECK_EQ_INT(history_len(s), (long)stored);
		CHECK_EQ_INT(store_append(s, ops, BATCH, NULL), STORE_OK);
		CHECK_EQ_INT(count_ops(s), stored + BATCH + (tiny_rc == STORE_OK));
		CHECK_EQ_INT(history_len(s), (long)(stored + BATCH));
		store_close(s);
	}
	free(body);
}

/* The range read is an index search on UNIQUE(origin, incarnation, boot,
 * seq), in index order: no table scan, no sort. The query mirrors RANGE_SQL
 * in store_sqlite.c; this guards the schema it relies on. */
TEST(sqlite_range_plan)
{
	struct store *s = open_sqlite_dir("plan", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	store_close(s);
	char *path = tmp_path("plan/chorus.db");
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_prepare_v2(db,
					"EXPLAIN QUERY PLAN SELECT origin, incarnation, boot, seq,"
					" lts, wall_ms, kind, flags, target, author, body, ref"
					" FROM ops WHERE origin = ?1 AND incarnation = ?2"
					" AND boot = ?3 AND seq >= ?4 AND seq <= ?5 ORDER BY seq",
					-1, &st, NULL),
		     SQLITE_OK);
	int rows = 0;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);
		rows++;
		CHECK(detail && strstr(detail, "SEARCH") && strstr(detail, "USING INDEX") &&
		      strstr(detail, "seq>? AND seq<?"));
		CHECK(detail && !strstr(detail, "SCAN") && !strstr(detail, "TEMP B-TREE"));
	}
	CHECK_EQ_INT(rows, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(path);
}

/* The message index's range query (msgindex.c) is a search of msgs's
 * primary key with rows of ops by rowid: no scan, no sort, in either
 * direction. */
TEST(sqlite_history_plan)
{
	struct store *s = open_sqlite_dir("hplan", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	store_close(s);
	char *path = tmp_path("hplan/chorus.db");
	sqlite3 *db = NULL;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	for (int desc = 0; desc < 2; desc++) {
		sqlite3_stmt *st = NULL;
		char *sql = xasprintf("EXPLAIN QUERY PLAN SELECT o.origin, o.body FROM msgs m JOIN ops o"
				      " ON o.rowid = m.op WHERE m.hist = ?1 AND m.ckey > ?2 AND m.ckey < ?3"
				      " ORDER BY m.ckey%s LIMIT ?4", desc ? " DESC" : "");
		CHECK_EQ_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		int searches = 0;
		while (st && sqlite3_step(st) == SQLITE_ROW) {
			const char *detail = (const char *)sqlite3_column_text(st, 3);
			searches += detail && strstr(detail, "SEARCH") != NULL;
			CHECK(detail && !strstr(detail, "SCAN") && !strstr(detail, "TEMP B-TREE"));
		}
		CHECK_EQ_INT(searches, 2);
		sqlite3_finalize(st);
		free(sql);
	}
	sqlite3_close(db);
	free(path);
}

/* ---- memory only ---- */

TEST(memory_fault_injection)
{
	struct store *s = store_memory_new();
	struct op ops[] = {make_op(1, 1, 1, 1, "a"), make_op(1, 1, 1, 2, "b")};
	char *v = NULL;
	store_memory_fail(s, 2, STORE_EFULL);
	CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_EFULL);
	CHECK(strstr(store_last_error(s), "injected") != NULL);
	CHECK_EQ_INT(store_meta_set(s, "k", "v"), STORE_EFULL);
	CHECK_EQ_INT(count_ops(s), 0);
	CHECK_EQ_INT(store_meta_get(s, "k", &v), STORE_NOTFOUND);
	CHECK_EQ_INT(store_append(s, ops, 1, NULL), STORE_OK);
	CHECK_EQ_INT(store_meta_set(s, "k", "v"), STORE_OK);
	store_memory_fail(s, 1, STORE_EIO);
	CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_EIO);
	CHECK_EQ_INT(count_ops(s), 1);
	CHECK_EQ_INT(store_append(s, ops, 2, NULL), STORE_OK);
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
	atomic_int appends_started;
};

static int slow_append(struct store *base, const struct op *ops, size_t n, struct chat_fact *facts)
{
	struct slow_store *s = (struct slow_store *)base;
	atomic_fetch_add(&s->appends_started, 1);
	int now = atomic_fetch_add(&s->active, 1) + 1;
	if (now > atomic_load(&s->max_active))
		atomic_store(&s->max_active, now);
	usleep((useconds_t)s->delay_ms * 1000);
	int rc = store_append(s->inner, ops, n, facts);
	atomic_fetch_sub(&s->active, 1);
	return rc;
}

static int slow_load(struct store *base, uint64_t after, store_load_fn *fn, void *arg)
{
	return store_load(((struct slow_store *)base)->inner, after, fn, arg);
}

static uint64_t slow_position(struct store *base)
{
	return store_position(((struct slow_store *)base)->inner);
}

/* Slow, and counted as a use of the store like an append. */
static int slow_load_range(struct store *base, const struct op_stream *stream, uint64_t from,
			   uint64_t to, int (*fn)(const struct op *, void *), void *arg)
{
	struct slow_store *s = (struct slow_store *)base;
	int now = atomic_fetch_add(&s->active, 1) + 1;
	if (now > atomic_load(&s->max_active))
		atomic_store(&s->max_active, now);
	usleep((useconds_t)s->delay_ms * 1000);
	int rc = store_load_range(s->inner, stream, from, to, fn, arg);
	atomic_fetch_sub(&s->active, 1);
	return rc;
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

static const struct store_ops slow_ops = {
	.append = slow_append,
	.load = slow_load,
	.position = slow_position,
	.load_range = slow_load_range,
	.meta_get = slow_meta_get,
	.meta_set = slow_meta_set,
	.last_error = slow_last_error,
	.close = slow_close,
};

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
	char events[64];        /* 'w' per done(), a read's tag per read callback */
	int nevents;
	int events_at_close;    /* nevents when closed() ran */
	void (*on_done)(struct wtest *t, int status, size_t n); /* optional extra step */
};

static void wtest_init(struct wtest *t, struct store *s);

static void submit_n(struct wtest *t, int n)
{
	for (int i = 0; i < n; i++) {
		struct op op, made = make_op(1, 42, 1, t->next_submit++, "w");
		op_copy(&op, &made); /* the writer takes the strings */
		store_writer_submit(t->w, &op);
	}
}

static void closed_cb(void *arg)
{
	struct wtest *t = arg;
	t->closed++;
	t->calls_at_close = t->ncalls;
	t->events_at_close = t->nevents;
}

static void add_event(struct wtest *t, char tag)
{
	if (t->nevents < (int)sizeof t->events - 1)
		t->events[t->nevents++] = tag;
}

static void done_cb(void *arg, int status, const struct op *ops, const struct chat_fact *facts, size_t n)
{
	struct wtest *t = arg;
	if (t->ncalls < MAX_CALLS) {
		t->status[t->ncalls] = status;
		t->size[t->ncalls] = n;
	}
	t->ncalls++;
	add_event(t, 'w');
	if ((status == STORE_OK) != (facts != NULL)) /* facts come with a stored batch only */
		t->order_ok = 0;
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
	CHECK_EQ_INT(store_load(&slow->base, 0, collect_fn, &l), STORE_OK);
	CHECK_EQ_INT(l.n, t->close_at);
	for (size_t i = 0; i < l.n; i++)
		CHECK(l.v[i].seq == i + 1);
	list_free(&l);
	store_close(&slow->base);
	free(t);
}

/* The next commit starts before the last one is reported: while done()
 * handles batch 1 (the server applies and fans it out there), batch 2,
 * submitted while batch 1 was being stored, is already being appended. */
static int overlap_seen;

static void overlap_done(struct wtest *t, int status, size_t n)
{
	struct slow_store *slow = (struct slow_store *)t->store;
	(void)status;
	(void)n;
	if (t->ncalls != 1)
		return;
	for (int i = 0; i < 2000 && atomic_load(&slow->appends_started) < 2; i++)
		usleep(500);
	overlap_seen = atomic_load(&slow->appends_started) >= 2;
}

TEST(writer_overlaps_commit_and_report)
{
	struct slow_store *slow = slow_new(20);
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, &slow->base);
	t->on_done = overlap_done;
	t->ticks = 1;
	t->per_tick = 3;
	t->close_at = 4;
	overlap_seen = 0;
	submit_n(t, 1);
	uv_timer_start(&t->timer, tick_cb, 5, 0); /* batch 2 while batch 1 runs */
	wtest_finish(t);
	CHECK(overlap_seen);
	CHECK(t->order_ok);
	CHECK_EQ_INT(t->ncalls, 2);
	CHECK_EQ_INT(t->size[0], 1);
	CHECK_EQ_INT(t->size[1], 3);
	CHECK_EQ_INT(atomic_load(&slow->max_active), 1);
	store_close(&slow->base);
	free(t);
}

/* The writer is idle only when nothing is queued or running, reads included. */
static void idle_read_cb(void *arg, int status, const struct op *ops, size_t n)
{
	struct wtest *t = arg;
	(void)status;
	(void)ops;
	(void)n;
	add_event(t, 'r');
	store_writer_close(t->w, closed_cb, t);
}

TEST(writer_idle_counts_reads)
{
	struct slow_store *slow = slow_new(5);
	struct wtest *t = xmalloc(sizeof *t);
	wtest_init(t, &slow->base);
	CHECK(store_writer_idle(t->w));
	struct op_stream st = {1, 42, 1};
	store_writer_read(t->w, &st, 1, 5, idle_read_cb, t);
	CHECK(!store_writer_idle(t->w));
	CHECK_EQ_INT(store_writer_backlog(t->w), 0);
	wtest_finish(t);
	CHECK_EQ_INT(t->nevents, 1);
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
	CHECK_EQ_INT(store_load(s, 0, collect_fn, &l), STORE_OK);
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

/* ---- writer reads ---- */

/* One store_writer_read and what its callback was told. */
struct rtest {
	struct wtest *t;
	char tag;         /* its event in t->events */
	int close_after;  /* close the writer from the callback */
	int calls;
	int status;
	size_t n;
	uint64_t seq[16];
	int ops_ok;       /* every op of the wanted stream, with its strings */
	struct op_stream stream;
};

static void read_cb(void *arg, int status, const struct op *ops, size_t n)
{
	struct rtest *r = arg;
	r->calls++;
	r->status = status;
	r->n = n;
	r->ops_ok = 1;
	for (size_t i = 0; i < n; i++) {
		if (i < 16)
			r->seq[i] = ops[i].seq;
		if (op_stream_cmp(&ops[i].stream, &r->stream) != 0 || !ops[i].target ||
		    !ops[i].author || strcmp(ops[i].body, "w") != 0 || !ops[i].ref)
			r->ops_ok = 0;
	}
	add_event(r->t, r->tag);
	if (r->close_after)
		store_writer_close(r->t->w, closed_cb, r->t);
}

static void read_start(struct rtest *r, struct wtest *t, char tag, uint32_t boot, uint64_t from,
		       uint64_t to)
{
	memset(r, 0, sizeof *r);
	r->t = t;
	r->tag = tag;
	r->stream = (struct op_stream){1, 42, boot};
	store_writer_read(t->w, &r->stream, from, to, read_cb, r);
}

/* Checks a read's answer: status, and seqs lo..hi (none if hi < lo). */
static void check_read(const struct rtest *r, int status, uint64_t lo, uint64_t hi)
{
	CHECK_EQ_INT(r->calls, 1);
	CHECK_EQ_INT(r->status, status);
	CHECK_EQ_INT(r->n, hi >= lo ? hi - lo + 1 : 0);
	CHECK(r->ops_ok);
	for (size_t i = 0; i < r->n && i < 16; i++)
		CHECK_EQ_INT(r->seq[i], lo + i);
}

/* Reads submitted right after writes, in the same turn, see them. */
static void read_sees_writes(struct store *s)
{
	struct wtest *t = xmalloc(sizeof *t);
	struct rtest r[4];
	wtest_init(t, s);
	submit_n(t, 5);
	read_start(&r[0], t, 'a', 1, 2, 4);
	submit_n(t, 1);
	read_start(&r[1], t, 'b', 1, 5, 20); /* partly past the end */
	read_start(&r[2], t, 'c', 1, 4, 3);  /* empty */
	read_start(&r[3], t, 'd', 2, 1, 6);  /* another stream */
	r[3].close_after = 1;
	CHECK_EQ_INT(store_writer_backlog(t->w), 6);
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_STR(t->events, "wawbcd");
	CHECK_EQ_INT(t->ncalls, 2);
	CHECK_EQ_INT(t->status[0], STORE_OK);
	CHECK_EQ_INT(t->size[0], 5);
	CHECK_EQ_INT(t->status[1], STORE_OK);
	CHECK_EQ_INT(t->size[1], 1);
	check_read(&r[0], STORE_OK, 2, 4);
	check_read(&r[1], STORE_OK, 5, 6);
	check_read(&r[2], STORE_OK, 1, 0);
	check_read(&r[3], STORE_OK, 1, 0);
	CHECK_EQ_INT(t->events_at_close, 6);
	CHECK_EQ_INT(count_ops(s), 6);
	free(t);
}

TEST(writer_read_memory)
{
	struct store *s = store_memory_new();
	read_sees_writes(s);
	store_close(s);
}

TEST(writer_read_sqlite)
{
	struct store *s = open_sqlite_dir("writer_read", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	read_sees_writes(s);
	store_close(s);
}

static void select_cb(void *arg, int status, struct store_msgs *found)
{
	struct rtest *r = arg;
	r->calls++;
	r->status = status;
	r->n = found->n;
	r->ops_ok = 1;
	for (size_t i = 0; i < found->n; i++) {
		if (i < 16)
			r->seq[i] = found->ops[i].seq;
		if (strcmp(found->ops[i].target, "#room") != 0 || strcmp(found->ops[i].body, "w") != 0)
			r->ops_ok = 0;
	}
	add_event(r->t, r->tag);
	if (r->close_after)
		store_writer_close(r->t->w, closed_cb, r->t);
}

/* Selections go through the same FIFO as writes: each sees the writes
 * submitted before it; an unknown msgid is STORE_NOTFOUND. */
TEST(writer_select_sqlite)
{
	struct store *s = open_sqlite_dir("writer_select", NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	struct wtest *t = xmalloc(sizeof *t);
	struct rtest r[3];
	memset(r, 0, sizeof r);
	for (int i = 0; i < 3; i++)
		r[i].t = t, r[i].tag = (char)('a' + i);
	wtest_init(t, s);
	submit_n(t, 5);
	store_writer_select(t->w, "#room", STORE_LATEST, NULL, NULL, 3, select_cb, &r[0]);
	submit_n(t, 1);
	struct store_anchor at2 = {"1-000000000000002a-1-2", 0}, unknown = {"1-000000000000002a-1-99", 0};
	store_writer_select(t->w, "#room", STORE_AFTER, &at2, NULL, 10, select_cb, &r[1]);
	store_writer_select(t->w, "#room", STORE_BEFORE, &unknown, NULL, 10, select_cb, &r[2]);
	r[2].close_after = 1;
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_STR(t->events, "wawbc");
	check_read(&r[0], STORE_OK, 3, 5);
	check_read(&r[1], STORE_OK, 3, 6);
	CHECK_EQ_INT(r[2].status, STORE_NOTFOUND);
	CHECK_EQ_INT(r[2].n, 0);
	free(t);
	store_close(s);
}

/* Writes and reads form one FIFO; consecutive writes still go together. */
struct fifo_test {
	struct wtest t;
	struct rtest r[4];
};

static void fifo_tick(uv_timer_t *timer)
{
	struct fifo_test *f = timer->data;
	submit_n(&f->t, 2);
	read_start(&f->r[3], &f->t, 'd', 1, 7, 8);
	f->r[3].close_after = 1;
}

TEST(writer_read_fifo)
{
	struct slow_store *slow = slow_new(20);
	struct fifo_test *f = xmalloc(sizeof *f);
	struct wtest *t = &f->t;
	wtest_init(t, &slow->base);
	t->timer.data = f;
	submit_n(t, 3);
	read_start(&f->r[0], t, 'a', 1, 1, 100);
	submit_n(t, 2);
	submit_n(t, 1);
	read_start(&f->r[1], t, 'b', 1, 0, 100);
	read_start(&f->r[2], t, 'c', 1, 4, 6);
	CHECK_EQ_INT(store_writer_backlog(t->w), 6);
	uv_timer_start(&t->timer, fifo_tick, 5, 0);
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_STR(t->events, "wawbcwd");
	CHECK_EQ_INT(t->ncalls, 3);
	CHECK_EQ_INT(t->size[0], 3);
	CHECK_EQ_INT(t->size[1], 3);
	CHECK_EQ_INT(t->size[2], 2);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(t->status[i], STORE_OK);
	check_read(&f->r[0], STORE_OK, 1, 3);
	check_read(&f->r[1], STORE_OK, 1, 6);
	check_read(&f->r[2], STORE_OK, 4, 6);
	check_read(&f->r[3], STORE_OK, 7, 8);
	CHECK_EQ_INT(atomic_load(&slow->max_active), 1);
	store_close(&slow->base);
	free(f);
}

/* Closed while a write is in flight: reads queued behind it (and one made
 * after close) are reported failed, in order, before closed(). */
static void close_read_tick(uv_timer_t *timer)
{
	struct fifo_test *f = timer->data;
	struct wtest *t = &f->t;
	CHECK_EQ_INT(store_writer_backlog(t->w), 2);
	submit_n(t, 1);
	read_start(&f->r[1], t, 'b', 1, 1, 10);
	store_writer_close(t->w, closed_cb, t);
	read_start(&f->r[2], t, 'c', 1, 1, 10);
	CHECK_EQ_INT(t->nevents, 0);
}

TEST(writer_read_close)
{
	struct slow_store *slow = slow_new(200);
	struct fifo_test *f = xmalloc(sizeof *f);
	struct wtest *t = &f->t;
	wtest_init(t, &slow->base);
	t->timer.data = f;
	submit_n(t, 2);
	read_start(&f->r[0], t, 'a', 1, 1, 10);
	uv_timer_start(&t->timer, close_read_tick, 10, 0);
	wtest_finish(t);
	CHECK(t->order_ok);
	CHECK_EQ_STR(t->events, "wawbc");
	CHECK_EQ_INT(t->events_at_close, 5);
	CHECK_EQ_INT(t->ncalls, 2);
	CHECK_EQ_INT(t->status[0], STORE_OK);
	CHECK_EQ_INT(t->size[0], 2);
	CHECK_EQ_INT(t->status[1], STORE_EIO);
	CHECK_EQ_INT(t->size[1], 1);
	for (int i = 0; i < 3; i++)
		check_read(&f->r[i], STORE_EIO, 1, 0);
	CHECK_EQ_INT(count_ops(&slow->base), 2);
	store_close(&slow->base);
	free(f);
}

/* A read in flight at close completes normally; what is queued fails. */
static void close_inflight_tick(uv_timer_t *timer)
{
	struct wtest *t = timer->data;
	store_writer_close(t->w, closed_cb, t);
}

TEST(writer_read_close_inflight)
{
	struct slow_store *slow = slow_new(200);
	struct wtest *t = xmalloc(sizeof *t);
	struct rtest r;
	wtest_init(t, &slow->base);
	read_start(&r, t, 'a', 1, 1, 10);
	submit_n(t, 2);
	uv_timer_start(&t->timer, close_inflight_tick, 10, 0);
	wtest_finish(t);
	CHECK_EQ_STR(t->events, "aw");
	check_read(&r, STORE_OK, 1, 0);
	CHECK_EQ_INT(t->status[0], STORE_EIO);
	CHECK_EQ_INT(t->size[0], 2);
	CHECK_EQ_INT(t->events_at_close, 2);
	CHECK_EQ_INT(count_ops(&slow->base), 0);
	store_close(&slow->base);
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
	RUN(sqlite_positions_and_snapshot);
	RUN(digest_pinned_while_appends_go_on);
	RUN(sqlite_persists);
	RUN(sqlite_client_ids_make_one_line);
	RUN(sqlite_format_mismatch);
	RUN(sqlite_old_formats_upgraded);
	RUN(sqlite_format_5_upgraded);
	RUN(sqlite_open_errors);
	RUN(sqlite_full);
	RUN(sqlite_range_plan);
	RUN(sqlite_history_plan);
	RUN(memory_fault_injection);
	RUN(writer_group_commit);
	RUN(writer_batch_cap);
	RUN(writer_overlaps_commit_and_report);
	RUN(writer_idle_counts_reads);
	RUN(writer_failure);
	RUN(writer_close_pending);
	RUN(writer_close_before_run);
	RUN(writer_idle);
	RUN(writer_sqlite);
	RUN(writer_read_memory);
	RUN(writer_read_sqlite);
	RUN(writer_read_fifo);
	RUN(writer_select_sqlite);
	RUN(writer_read_close);
	RUN(writer_read_close_inflight);
	nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return CHECK_DONE();
}
