/*
 * repl.c: the replica core (see repl.h): identity and streams, the Lamport
 * clock, per-stream knowledge, the per-view sync round and resends, and the
 * path from a submitted op to its applied effect.
 *
 * Group messages: u8 REPL_WIRE_VERSION, u8 type, then
 *   MSG_OPS: an op_encode list (new or resent ops, each with the lts its
 *            origin gave it);
 *   MSG_ROW: u64 clock, u8 final, u32 count, u8 n, n x u32 (the members
 *            of the view it was sent for), count x (u32 origin,
 *            u64 incarnation, u32 boot, u32 nranges, nranges x (u64 first,
 *            u64 last)): (part of) the sender's knowledge row: every seq
 *            range it holds; a row may span several messages, the last
 *            marked final;
 *   MSG_SOFT: the owner's soft-state bytes (presence).
 */
#include "repl.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/seqset.h"
#include "common/util.h"

#define uthash_malloc(sz) xmalloc(sz)
#define uthash_fatal(msg) abort()
#include <uthash.h>

enum { MSG_OPS = 1, MSG_ROW = 2, MSG_SOFT = 3 };

#define MULTICAST_BYTES_MAX (GROUP_MSG_MAX - 4096) /* cap on one multicast's ops */

/* What this replica has of one stream: delivered to it and handed to the
 * writer (the writer stores in order, and a resend read queues behind those
 * writes, so delivered is what it can resend). */
struct know {
	struct op_stream stream; /* key */
	UT_hash_handle hh;
	struct seqset seqs;      /* the seqs stored */
};

/* One seq range [a, b] of a stream that member holds. */
struct held {
	uint32_t member;
	uint64_t a, b;
};

/* One stream in this view's rows: who holds which ranges. */
struct row_entry {
	struct op_stream stream; /* key */
	UT_hash_handle hh;
	struct held *held;
	size_t nheld, capheld;
};

struct resend_task {
	struct op_stream stream;
	uint64_t from, to;
	uint32_t member; /* 0: multicast; else sent to member alone, over a direct link */
	struct resend_task *next;
};

/* A batch sent over a direct link and not yet answered. */
struct direct_batch {
	uint32_t member;
	uint64_t gen;    /* the sync it was planned in */
	struct op_stream stream;
	uint64_t from, to;
	struct direct_batch *next;
};

/* Where this view's sync stands (DESIGN.md 4.3). */
enum sync_phase {
	SYNC_ROWS,    /* waiting for every member's knowledge row */
	SYNC_PLANNED, /* rows all in: our share of the resends is planned */
};

/* Our resend pump: one batch in flight at a time. */
enum pump_state {
	PUMP_IDLE,
	PUMP_READING,  /* a read is out at the store (planned in view gen read_gen) */
	PUMP_AWAITING, /* our last batch was multicast and has not come back yet */
};

/* One view's sync: the rows, the plan, and the pump. */
struct view_sync {
	struct group_view view;
	uint64_t gen;                          /* increases with every view and recovery */
	enum sync_phase phase;
	uint32_t rows_from[GROUP_MAX_MEMBERS]; /* members whose row is in */
	size_t nrows;
	struct row_entry *rows;                /* who holds what, from the rows */
	struct resend_task *tasks;             /* what we still resend, in order */
	enum pump_state pump;
	uint64_t read_gen;                     /* PUMP_READING: gen the read belongs to */
	uint32_t read_member;                  /* PUMP_READING: for whom (0: multicast) */
	uint32_t down[GROUP_MAX_MEMBERS];      /* members whose direct link broke in this view */
	size_t ndown;
	struct op_stream await_stream;         /* PUMP_AWAITING: last op of the batch */
	uint64_t await_seq;
};

struct repl {
	uint32_t self;
	enum repl_mode mode;
	unsigned cluster_size;
	struct repl_callbacks cb;
	struct chat *chat;
	struct group *group;
	struct repl_io io;

	struct op_stream stream;
	uint64_t next_seq;
	uint64_t clock;        /* the highest lts made, delivered or in a row */
	int64_t peer_wall;     /* the newest wall time on another replica's op */
	int64_t peer_wall_at;  /* our wall clock when it came (0: none yet) */
	int64_t skew_logged;   /* our wall clock when we last logged our skew */
	struct know *know;
	uint64_t snapshot_at;  /* the chat's op count at the last snapshot (0: none) */
	int store_failed;
	size_t unstored;

	struct view_sync sync;
	struct direct_batch *direct;   /* sent over direct links, unanswered, oldest first */
	size_t ndirect;

	/* ops submitted and not yet multicast */
	struct op *out;
	size_t nout, capout;
};

/* ---- knowledge ---- */

static struct know *know_get(struct repl *r, const struct op_stream *s, int create)
{
	struct know *k = NULL;
	HASH_FIND(hh, r->know, s, sizeof *s, k);
	if (!k && create) {
		k = xcalloc(1, sizeof *k);
		k->stream = *s;
		HASH_ADD(hh, r->know, stream, sizeof k->stream, k);
	}
	return k;
}

/* 1 if seq of stream s is held here. */
static int know_has(struct repl *r, const struct op_stream *s, uint64_t seq)
{
	struct know *k = know_get(r, s, 0);
	return k && seqset_has(&k->seqs, seq);
}

/* Records that seq of stream s is stored. */
static void know_add(struct repl *r, const struct op_stream *s, uint64_t seq)
{
	seqset_add(&know_get(r, s, 1)->seqs, seq);
}

/* ---- life ---- */

struct repl *repl_new(uint32_t self, enum repl_mode mode, unsigned cluster_size,
		      const struct repl_callbacks *cb)
{
	struct repl *r = xcalloc(1, sizeof *r);
	r->self = self;
	r->mode = mode;
	r->cluster_size = cluster_size ? cluster_size : 1;
	r->cb = *cb;
	r->chat = chat_new();
	return r;
}

/* Ends the current view's sync: forgets its rows and plan. A read still out
 * stays PUMP_READING (its result is dropped when it comes back); a batch
 * we await may never come back in the next view, so the pump is idle. */
static void clear_sync(struct repl *r)
{
	struct view_sync *y = &r->sync;
	struct row_entry *e, *tmp;
	HASH_ITER(hh, y->rows, e, tmp) {
		HASH_DEL(y->rows, e);
		free(e->held);
		free(e);
	}
	while (y->tasks) {
		struct resend_task *t = y->tasks;
		y->tasks = t->next;
		free(t);
	}
	y->gen++;
	y->nrows = 0;
	y->ndown = 0;
	y->phase = SYNC_ROWS;
	if (y->pump == PUMP_AWAITING)
		y->pump = PUMP_IDLE;
}

void repl_set_cluster_size(struct repl *r, unsigned cluster_size)
{
	r->cluster_size = cluster_size ? cluster_size : 1;
}

static void know_clear(struct repl *r);

void repl_free(struct repl *r)
{
	if (!r)
		return;
	clear_sync(r);
	know_clear(r);
	while (r->direct) {
		struct direct_batch *d = r->direct;
		r->direct = d->next;
		free(d);
	}
	for (size_t i = 0; i < r->nout; i++)
		op_clear(&r->out[i]);
	free(r->out);
	chat_free(r->chat);
	free(r);
}

/* ---- identity ---- */

static int meta_u64(struct store *st, const char *key, uint64_t *out, int hex)
{
	char *v = NULL;
	int rc = store_meta_get(st, key, &v);
	*out = 0;
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != STORE_OK)
		return -1;
	*out = strtoull(v, NULL, hex ? 16 : 10);
	free(v);
	return 0;
}

static int meta_put_u64(struct store *st, const char *key, uint64_t v, int hex)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, hex ? "%016" PRIx64 : "%" PRIu64, v);
	return store_meta_set(st, key, tmp) == STORE_OK ? 0 : -1;
}

int repl_new_stream(struct repl *r, struct store *st)
{
	uint64_t boot;
	if (meta_u64(st, "boot", &boot, 0) < 0 || meta_put_u64(st, "boot", boot + 1, 0) < 0)
		return -1;
	r->stream.boot = (uint32_t)(boot + 1);
	r->next_seq = 1;
	r->store_failed = 0;
	return 0;
}

static int load_one(const struct op *op, const struct chat_fact *fact, void *arg)
{
	struct repl *r = arg;
	struct chat_effect eff;
	if (chat_apply(r->chat, op, fact, &eff) == 0)
		know_add(r, &op->stream, op->seq);
	return 0;
}

static void know_all(const struct op_stream *stream, const struct seqset *seqs, void *arg)
{
	struct know *k = know_get(arg, stream, 1);
	seqset_free(&k->seqs);
	k->seqs.hi = seqs->hi;
	for (size_t i = 0; i < seqs->nabove; i++)
		seqset_add(&k->seqs, seqs->above[i]);
}

/* Restores the chat (still new) from st's snapshot, if it has one that
 * reads, and the knowledge from it. Returns the position the snapshot
 * holds the ops up to (0: none, every op is to be loaded). */
static uint64_t restore(struct repl *r, struct store *st)
{
	uint64_t upto = 0;
	void *data = NULL;
	size_t len = 0;
	int rc = store_snapshot_get(st, &upto, &data, &len);
	if (rc == STORE_OK && chat_restore(r->chat, data, len) == 0) {
		chat_applied_each(r->chat, know_all, r);
	} else {
		if (rc != STORE_NOTFOUND)
			log_warn("store: the snapshot cannot be read (%s): loading every operation",
				 rc == STORE_OK ? "not one of this version" : store_last_error(st));
		upto = 0;
	}
	free(data);
	return upto;
}

/* Filling the rooms' caches at start-up. */
struct fill {
	struct store *st;
	size_t keep;
	int rc;
};

static void fill_room(struct chat_room *room, void *arg)
{
	struct fill *f = arg;
	struct store_msgs last;
	if (f->rc != STORE_OK)
		return;
	char *hist = chat_room_history_key(room->name);
	f->rc = store_history(f->st, hist, NULL, NULL, f->keep, 1, &last);
	if (f->rc == STORE_OK)
		chat_history_fill(room->history, last.ops, last.likes, last.n);
	store_msgs_free(&last);
	free(hist);
}

int repl_open(struct repl *r, struct store *st, char **err)
{
	uint64_t id, inc;
	*err = NULL;
	if (meta_u64(st, "replica_id", &id, 0) < 0 || meta_u64(st, "incarnation", &inc, 1) < 0) {
		*err = xasprintf("cannot read identity: %s", store_last_error(st));
		return -1;
	}
	if (id && id != r->self) {
		*err = xasprintf("data directory belongs to replica %" PRIu64 ", not %" PRIu32, id, r->self);
		return -1;
	}
	if (!inc) {
		while (!inc)
			if (RAND_bytes((unsigned char *)&inc, sizeof inc) != 1) {
				*err = xstrdup("no randomness for the incarnation");
				return -1;
			}
		if (meta_put_u64(st, "replica_id", r->self, 0) < 0 || meta_put_u64(st, "incarnation", inc, 1) < 0) {
			*err = xasprintf("cannot write identity: %s", store_last_error(st));
			return -1;
		}
	}
	r->stream.origin = r->self;
	r->stream.incarnation = inc;
	if (repl_new_stream(r, st) < 0) {
		*err = xasprintf("cannot store boot: %s", store_last_error(st));
		return -1;
	}
	struct fill fill = {st, chat_cache_keep(r->chat), STORE_OK};
	int64_t t0 = wall_ms();
	uint64_t after = restore(r, st), restored = chat_op_count(r->chat);
	if (store_load(st, after, load_one, r) != 0) {
		*err = xasprintf("cannot load: %s", store_last_error(st));
		return -1;
	}
	r->snapshot_at = restored; /* the ops loaded after it count towards the next one */
	if (after)
		log_info("store: %" PRIu64 " operations from the snapshot and %" PRIu64 " after it, in %lld ms",
			 restored, chat_op_count(r->chat) - restored, (long long)(wall_ms() - t0));
	else
		log_info("store: %" PRIu64 " operations loaded (no snapshot), in %lld ms",
			 chat_op_count(r->chat), (long long)(wall_ms() - t0));
	if (fill.keep)
		chat_rooms_each(r->chat, fill_room, &fill);
	if (fill.rc != STORE_OK) {
		*err = xasprintf("cannot read the rooms' last lines: %s", store_last_error(st));
		return -1;
	}
	r->clock = chat_max_lts(r->chat);
	return 0;
}

static void know_clear(struct repl *r)
{
	struct know *k, *tmp;
	HASH_ITER(hh, r->know, k, tmp) {
		HASH_DEL(r->know, k);
		seqset_free(&k->seqs);
		free(k);
	}
}

int repl_recover(struct repl *r, struct store *st)
{
	know_clear(r);
	chat_applied_each(r->chat, know_all, r); /* the writer is idle: what is stored is applied */
	if (repl_new_stream(r, st) < 0)
		return -1;
	clear_sync(r);
	r->unstored = 0;
	return 0;
}

void repl_attach(struct repl *r, struct group *g, const struct repl_io *io)
{
	r->group = g;
	r->io = *io;
}

/* ---- submitting and multicasting ---- */

int repl_writable(const struct repl *r)
{
	if (r->store_failed)
		return REPL_STORE_FAILED;
	if (r->mode == REPL_MAJORITY && r->sync.view.n * 2 <= r->cluster_size)
		return REPL_MINORITY;
	return REPL_OK;
}

int repl_store_failed(const struct repl *r)
{
	return r->store_failed;
}

/* The wall clock, in ms: the owner's (the simulation's is its own), else
 * the system's. */
static int64_t now_ms(const struct repl *r)
{
	return r->cb.now ? r->cb.now(r->cb.arg) : wall_ms();
}

/* The lts of a wall time: ms in the high bits, room for 2^OP_LTS_SHIFT
 * ops per ms below (a hybrid logical clock in one number). */
static uint64_t lts_of_ms(int64_t ms)
{
	return ms > 0 ? (uint64_t)ms << OP_LTS_SHIFT : 0;
}

/* Our best guess of the other replicas' wall clock now: the newest wall
 * time on an op of theirs, moved on by the time that passed here since. 0
 * if we have seen none (alone since we started). */
static int64_t peers_now(const struct repl *r, int64_t now)
{
	return r->peer_wall_at ? r->peer_wall + (now - r->peer_wall_at) : 0;
}

/* The floor of a new op's lts: our wall clock, but never more than
 * REPL_SKEW_MAX_MS ahead of the other replicas' (so a replica whose clock
 * runs ahead cannot place its lines far later than they were written);
 * logged once per REPL_SKEW_MAX_MS of our clock when it is capped. */
static uint64_t wall_floor(struct repl *r, int64_t now)
{
	int64_t peers = peers_now(r, now);
	if (!peers || now <= peers + REPL_SKEW_MAX_MS)
		return lts_of_ms(now);
	if (now > r->skew_logged + REPL_SKEW_MAX_MS) {
		r->skew_logged = now;
		log_warn("repl: this replica's clock is %" PRId64 " s ahead of the others': its new lines are "
			 "stamped as if it were %d s ahead (see docs/DESIGN-NOTES.md, Order and clocks)",
			 (now - peers) / 1000, REPL_SKEW_MAX_MS / 1000);
	}
	return lts_of_ms(peers + REPL_SKEW_MAX_MS);
}

/* The lts of a new op: one more than the highest we have seen, or the wall
 * floor if that is higher (DESIGN.md 4.2: a replica that starts empty and
 * alone does not put its lines at the start of history). */
static uint64_t stamp(struct repl *r, int64_t now)
{
	uint64_t floor = wall_floor(r, now);
	r->clock = r->clock + 1 > floor ? r->clock + 1 : floor;
	return r->clock;
}

/* Moves the clock past lts, delivered or in a row. */
static void saw_lts(struct repl *r, uint64_t lts)
{
	if (lts > r->clock)
		r->clock = lts;
}

/* Notes the wall time of another replica's op, delivered at our wall clock
 * now (for wall_floor). */
static void saw_peer_wall(struct repl *r, int64_t wall, int64_t now)
{
	if (!r->peer_wall_at || wall > peers_now(r, now)) {
		r->peer_wall = wall;
		r->peer_wall_at = now;
	}
}

int repl_submit(struct repl *r, struct op *op)
{
	if (repl_writable(r) != REPL_OK) {
		op_clear(op);
		return -1;
	}
	op->stream = r->stream;
	op->seq = r->next_seq++;
	op->wall_ms = now_ms(r);
	op->lts = stamp(r, op->wall_ms);
	op_fill_empty(op);
	if (r->nout == r->capout) {
		r->capout = r->capout ? r->capout * 2 : 64;
		r->out = xrealloc(r->out, r->capout * sizeof *r->out);
	}
	op_move(&r->out[r->nout++], op);
	return 0;
}

/* Multicasts ops[0..n) as MSG_OPS messages of bounded size, stopping at the
 * first that the group refuses. Returns how many ops went out. */
static size_t multicast_ops(struct repl *r, const struct op *ops, size_t n)
{
	struct op_buf buf = {0};
	size_t i = 0;
	while (i < n) {
		size_t j = i, bytes = 0;
		while (j < n && j - i < REPL_MULTICAST_OPS) {
			size_t size = op_encoded_max(&ops[j]);
			if (j > i && bytes + size > MULTICAST_BYTES_MAX)
				break;
			bytes += size;
			j++;
		}
		buf.len = 0;
		op_buf_put_u(&buf, REPL_WIRE_VERSION, 1);
		op_buf_put_u(&buf, MSG_OPS, 1);
		op_encode(&buf, ops + i, j - i);
		if (group_multicast(r->group, buf.data, buf.len) < 0)
			break;
		i = j;
	}
	op_buf_free(&buf);
	return i;
}

void repl_flush(struct repl *r)
{
	if (!r->nout || !r->group)
		return;
	size_t sent = multicast_ops(r, r->out, r->nout);
	if (sent < r->nout) {
		log_error("group: multicast of %zu operations failed", r->nout - sent);
		for (size_t i = sent; i < r->nout; i++)
			r->cb.failed(r->cb.arg, &r->out[i]);
	}
	for (size_t i = 0; i < r->nout; i++)
		op_clear(&r->out[i]);
	r->nout = 0;
}

int repl_send_soft(struct repl *r, const void *data, size_t len)
{
	struct op_buf buf = {0};
	op_buf_put_u(&buf, REPL_WIRE_VERSION, 1);
	op_buf_put_u(&buf, MSG_SOFT, 1);
	op_buf_put_bytes(&buf, data, len);
	int rc = r->group ? group_multicast(r->group, buf.data, buf.len) : -1;
	op_buf_free(&buf);
	return rc;
}

/* ---- accepting ops ---- */

/* An op new here: known from now on, and handed to the writer (which takes
 * its strings). */
static void accept_op(struct repl *r, struct op *op)
{
	know_add(r, &op->stream, op->seq);
	r->unstored++;
	r->io.write(r->io.ctx, op);
}

/* ---- views and rows ---- */

/* Appends the seqs of k as ranges: [1, hi] then the runs of above. */
static void put_ranges(struct op_buf *buf, const struct seqset *k)
{
	size_t count_at = buf->len, n = 0;
	op_buf_put_u(buf, 0, 4);
	if (k->hi) {
		op_buf_put_u(buf, 1, 8);
		op_buf_put_u(buf, k->hi, 8);
		n++;
	}
	for (size_t i = 0; i < k->nabove;) {
		size_t j = i;
		while (j + 1 < k->nabove && k->above[j + 1] == k->above[j] + 1)
			j++;
		op_buf_put_u(buf, k->above[i], 8);
		op_buf_put_u(buf, k->above[j], 8);
		n++;
		i = j + 1;
	}
	for (int b = 0; b < 4; b++)
		buf->data[count_at + b] = (uint8_t)(n >> (8 * b));
}

static void row_begin(struct repl *r, struct op_buf *buf)
{
	buf->len = 0;
	op_buf_put_u(buf, REPL_WIRE_VERSION, 1);
	op_buf_put_u(buf, MSG_ROW, 1);
	op_buf_put_u(buf, r->clock, 8);
	op_buf_put_u(buf, 0, 1); /* final: patched by row_send */
	op_buf_put_u(buf, 0, 4); /* count: patched by row_send */
	op_buf_put_u(buf, r->sync.view.n, 1);
	for (size_t i = 0; i < r->sync.view.n; i++)
		op_buf_put_u(buf, r->sync.view.members[i], 4);
}

static void row_send(struct repl *r, struct op_buf *buf, uint32_t count, int final)
{
	buf->data[10] = (uint8_t)final;
	for (int b = 0; b < 4; b++)
		buf->data[11 + b] = (uint8_t)(count >> (8 * b));
	if (group_multicast(r->group, buf->data, buf->len) < 0)
		log_error("group: cannot multicast the knowledge row");
}

/* Multicasts our knowledge row, in as many messages as GROUP_MSG_MAX needs;
 * the last one is marked final. */
static void send_row(struct repl *r)
{
	struct op_buf buf = {0};
	struct know *k, *tmp;
	uint32_t count = 0;
	row_begin(r, &buf);
	HASH_ITER(hh, r->know, k, tmp) {
		if (buf.len + 20 + 16 * (k->seqs.nabove + 1) > GROUP_MSG_MAX - 1024 && count) {
			row_send(r, &buf, count, 0);
			row_begin(r, &buf);
			count = 0;
		}
		op_buf_put_u(&buf, k->stream.origin, 4);
		op_buf_put_u(&buf, k->stream.incarnation, 8);
		op_buf_put_u(&buf, k->stream.boot, 4);
		put_ranges(&buf, &k->seqs);
		count++;
	}
	row_send(r, &buf, count, 1);
	op_buf_free(&buf);
}

void repl_view(struct repl *r, const struct group_view *v)
{
	clear_sync(r);
	r->sync.view = *v;
	if (r->cb.view)
		r->cb.view(r->cb.arg, v);
	send_row(r);
}

static int in_view(const struct repl *r, uint32_t id)
{
	for (size_t i = 0; i < r->sync.view.n; i++)
		if (r->sync.view.members[i] == id)
			return 1;
	return 0;
}

static void pump_resends(struct repl *r);

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Adds a resend of [a, b] of stream (to member alone over a direct link, or
 * multicast if member is 0) to the end of our tasks, joining it to the last
 * task when they touch. */
static void add_task(struct repl *r, const struct op_stream *s, uint64_t a, uint64_t b, uint32_t member)
{
	struct resend_task **pp = &r->sync.tasks, *last = NULL;
	while (*pp) {
		last = *pp;
		pp = &last->next;
	}
	if (last && op_stream_cmp(&last->stream, s) == 0 && last->to + 1 == a && last->member == member) {
		last->to = b;
		return;
	}
	struct resend_task *t = xcalloc(1, sizeof *t);
	t->stream = *s;
	t->from = a;
	t->to = b;
	t->member = member;
	*pp = t;
}

/* How we resend [a, b] of e: to the one member lacking it over a direct link
 * when there is one and the part is long enough; else 0 (multicast). */
static uint64_t held_end(const struct row_entry *e, uint32_t member, uint64_t seq, uint64_t *next);

static uint32_t direct_to(const struct repl *r, const struct row_entry *e, uint64_t a, uint64_t b,
			  unsigned holders)
{
	uint64_t min = r->io.direct_min ? r->io.direct_min : REPL_DIRECT_MIN, next;
	if (!r->io.direct || holders + 1 != r->sync.view.n || b - a + 1 < min)
		return 0;
	for (size_t i = 0; i < r->sync.view.n; i++) /* the one whose ranges do not cover it */
		if (held_end(e, r->sync.view.members[i], a, &next) < b)
			return r->sync.view.members[i];
	return 0;
}

/*
 * Plans the seqs lo..hi of one stream: cuts the seqs anyone holds into
 * segments at every range boundary; a segment that some member lacks is
 * resent by the lowest-id member holding it. Every member computes the same
 * plan from the same rows (whether it goes over a direct link is the
 * resender's own business: the receiver takes it either way).
 */
static void plan_stream(struct repl *r, struct row_entry *e, uint64_t lo, uint64_t hi)
{
	uint64_t *cuts = xmalloc(2 * e->nheld * sizeof *cuts);
	size_t n = 0;
	for (size_t i = 0; i < e->nheld; i++) {
		cuts[n++] = e->held[i].a;
		cuts[n++] = e->held[i].b + 1;
	}
	qsort(cuts, n, sizeof *cuts, cmp_u64);
	for (size_t c = 0; c + 1 < n; c++) {
		uint64_t a = cuts[c] > lo ? cuts[c] : lo, b = cuts[c + 1] - 1 < hi ? cuts[c + 1] - 1 : hi;
		if (cuts[c + 1] == cuts[c] || a > b)
			continue;
		unsigned holders = 0;
		uint32_t lowest = UINT32_MAX;
		for (size_t i = 0; i < e->nheld; i++)
			if (e->held[i].a <= a && b <= e->held[i].b) {
				holders++;
				if (e->held[i].member < lowest)
					lowest = e->held[i].member;
			}
		if (holders && holders < r->sync.view.n && lowest == r->self)
			add_task(r, &e->stream, a, b, direct_to(r, e, a, b, holders));
	}
	free(cuts);
}

/* All rows are in: plan what we resend and start. */
static void rows_done(struct repl *r)
{
	struct row_entry *e, *tmp;
	r->sync.phase = SYNC_PLANNED;
	log_debug("repl %" PRIu32 ": rows done in view %" PRIu64 " (%zu members), clock %" PRIu64, r->self,
		  r->sync.view.id, r->sync.view.n, r->clock);
	HASH_ITER(hh, r->sync.rows, e, tmp)
		plan_stream(r, e, 0, UINT64_MAX);
	pump_resends(r);
}

/* Records that member holds seqs a..b of stream s; returns the stream's entry. */
static struct row_entry *add_held(struct repl *r, const struct op_stream *s, uint32_t member,
				  uint64_t a, uint64_t b)
{
	struct row_entry *e = NULL;
	HASH_FIND(hh, r->sync.rows, s, sizeof *s, e);
	if (!e) {
		e = xcalloc(1, sizeof *e);
		e->stream = *s;
		HASH_ADD(hh, r->sync.rows, stream, sizeof e->stream, e);
	}
	if (e->nheld == e->capheld) {
		e->capheld = e->capheld ? e->capheld * 2 : 8;
		e->held = xrealloc(e->held, e->capheld * sizeof *e->held);
	}
	e->held[e->nheld++] = (struct held){member, a, b};
	return e;
}

/* The end of member's range of e that holds seq, or 0 if none does; *next
 * gets the lowest start of its ranges above seq (UINT64_MAX if none). */
static uint64_t held_end(const struct row_entry *e, uint32_t member, uint64_t seq, uint64_t *next)
{
	*next = UINT64_MAX;
	for (size_t i = 0; e && i < e->nheld; i++) {
		const struct held *h = &e->held[i];
		if (h->member != member)
			continue;
		if (h->a <= seq && seq <= h->b)
			return h->b;
		if (h->a > seq && h->a < *next)
			*next = h->a;
	}
	return 0;
}

/*
 * A later row of member in this view, after its first was counted: that
 * first one was sent for an earlier view of the same members (see
 * row_for_this_view) and may understate what member holds. Adds the part of
 * a..b that member's rows did not show yet and, once the rows are all in,
 * plans that part at once. Every member sees the same rows in the same
 * order, so all plan alike.
 */
static void add_later_held(struct repl *r, const struct op_stream *s, uint32_t member, uint64_t a,
			   uint64_t b)
{
	struct row_entry *e = NULL;
	HASH_FIND(hh, r->sync.rows, s, sizeof *s, e);
	while (a <= b) {
		uint64_t next, end = held_end(e, member, a, &next);
		if (end) {
			if (end >= b)
				return;
			a = end + 1;
			continue;
		}
		uint64_t to = next != UINT64_MAX && next - 1 < b ? next - 1 : b;
		e = add_held(r, s, member, a, to);
		if (r->sync.phase == SYNC_PLANNED)
			plan_stream(r, e, a, to);
		if (to == b)
			return;
		a = to + 1;
	}
}

/* Reads a row's membership: 1 if it is this view's. A row sent for an
 * earlier view can be delivered after a later view began (Corosync sends
 * what a member handed it before a change in the new configuration); its
 * knowledge is stale, and the sender's row for this view follows. */
static int row_for_this_view(const struct repl *r, struct op_reader *rd)
{
	const struct group_view *v = &r->sync.view;
	uint64_t n = op_read_u(rd, 1);
	int same = !rd->bad && n == v->n;
	for (uint64_t i = 0; i < n && !rd->bad; i++)
		if (op_read_u(rd, 4) != (same ? v->members[i] : 0))
			same = 0;
	return same && !rd->bad;
}

static void on_row(struct repl *r, uint32_t sender, struct op_reader *rd)
{
	struct view_sync *y = &r->sync;
	int later = 0; /* its row for this view was counted already */
	for (size_t i = 0; i < y->nrows; i++)
		later |= y->rows_from[i] == sender;
	if (!in_view(r, sender) || y->nrows >= GROUP_MAX_MEMBERS)
		return;
	uint64_t clock = op_read_u(rd, 8);
	uint64_t final = op_read_u(rd, 1);
	uint64_t count = op_read_u(rd, 4);
	if (!row_for_this_view(r, rd))
		return;
	for (uint64_t i = 0; i < count && !rd->bad; i++) {
		struct op_stream s;
		memset(&s, 0, sizeof s);
		s.origin = (uint32_t)op_read_u(rd, 4);
		s.incarnation = op_read_u(rd, 8);
		s.boot = (uint32_t)op_read_u(rd, 4);
		uint64_t nranges = op_read_u(rd, 4);
		for (uint64_t j = 0; j < nranges && !rd->bad; j++) {
			uint64_t a = op_read_u(rd, 8), b = op_read_u(rd, 8);
			if (rd->bad || a < 1 || a > b)
				continue;
			if (b >= REPL_NUMBER_MAX) {
				log_error("repl: a row range up to %" PRIu64 " from replica %" PRIu32 ", refused",
					  b, sender);
				continue;
			}
			if (later)
				add_later_held(r, &s, sender, a, b);
			else
				add_held(r, &s, sender, a, b);
		}
	}
	if (rd->bad)
		log_error("repl: malformed row from replica %" PRIu32, sender);
	if (clock < REPL_NUMBER_MAX)
		saw_lts(r, clock);
	else
		log_error("repl: a row with clock %" PRIu64 " from replica %" PRIu32 ", clock refused", clock, sender);
	if (later) {
		if (y->phase == SYNC_PLANNED)
			pump_resends(r);
		return;
	}
	if (!final)
		return;
	y->rows_from[y->nrows++] = sender;
	if (y->nrows == y->view.n)
		rows_done(r);
}

/* ---- resends ---- */

static int is_down(const struct view_sync *y, uint32_t member)
{
	for (size_t i = 0; i < y->ndown; i++)
		if (y->down[i] == member)
			return 1;
	return 0;
}

/* From now on in this view, our resends to member are multicast. */
static void mark_down(struct view_sync *y, uint32_t member)
{
	if (!is_down(y, member) && y->ndown < GROUP_MAX_MEMBERS)
		y->down[y->ndown++] = member;
}

/* Direct batches of this view's sync sent and unanswered. */
static size_t direct_in_flight(const struct repl *r)
{
	size_t n = 0;
	for (const struct direct_batch *d = r->direct; d; d = d->next)
		n += d->gen == r->sync.gen;
	return n;
}

/* Starts the next resend read if nothing is in flight (for a direct task:
 * if fewer than REPL_DIRECT_WINDOW batches await their answer). */
static void pump_resends(struct repl *r)
{
	struct view_sync *y = &r->sync;
	if (y->pump != PUMP_IDLE || !y->tasks)
		return;
	struct resend_task *t = y->tasks;
	if (t->member && is_down(y, t->member))
		t->member = 0;
	if (t->member && direct_in_flight(r) >= REPL_DIRECT_WINDOW)
		return;
	uint64_t to = t->from + (t->member ? REPL_DIRECT_BATCH : REPL_RESEND_BATCH) - 1;
	if (to > t->to)
		to = t->to;
	uint32_t member = t->member;
	struct op_stream s = t->stream;
	uint64_t from = t->from;
	t->from = to + 1;
	if (t->from > t->to) {
		y->tasks = t->next;
		free(t);
	}
	y->pump = PUMP_READING;
	y->read_gen = y->gen;
	y->read_member = member;
	r->io.read(r->io.ctx, &s, from, to);
}

/* Sends ops[0..n) (a resend read of [from, to]) to member over its direct
 * link and records the batch as awaiting its answer. Returns 0, or -1 if the
 * link refused it (member is then down for this view). */
static int send_direct(struct repl *r, uint32_t member, const struct op *ops, size_t n)
{
	struct view_sync *y = &r->sync;
	struct op_buf buf = {0};
	op_buf_put_u(&buf, REPL_WIRE_VERSION, 1);
	op_buf_put_u(&buf, MSG_OPS, 1);
	op_encode(&buf, ops, n);
	int rc = r->io.direct(r->io.ctx, member, buf.data, buf.len);
	op_buf_free(&buf);
	if (rc < 0) {
		mark_down(y, member);
		return -1;
	}
	struct direct_batch *d = xcalloc(1, sizeof *d), **pp = &r->direct;
	d->member = member;
	d->gen = y->gen;
	d->stream = ops[0].stream;
	d->from = ops[0].seq;
	d->to = ops[n - 1].seq;
	while (*pp)
		pp = &(*pp)->next;
	*pp = d;
	r->ndirect++;
	return 0;
}

void repl_read_done(struct repl *r, const struct op *ops, size_t n)
{
	struct view_sync *y = &r->sync;
	y->pump = PUMP_IDLE;
	if (y->read_gen != y->gen) {
		/* The view changed meanwhile: that plan is void, and this view's,
		 * made while the read was out, has waited for it to end. */
		pump_resends(r);
		return;
	}
	if (n && y->read_member && send_direct(r, y->read_member, ops, n) == 0) {
		pump_resends(r);
		return;
	}
	if (n) {
		if (multicast_ops(r, ops, n) == n) {
			y->pump = PUMP_AWAITING;
			y->await_stream = ops[n - 1].stream;
			y->await_seq = ops[n - 1].seq;
			return;
		}
		log_error("group: resend multicast failed");
	}
	pump_resends(r);
}

/* ---- delivery and storage ---- */

/* Our last resend batch came back in the agreed order: the next may go. */
static void check_awaited(struct repl *r, uint32_t sender, const struct op *op)
{
	struct view_sync *y = &r->sync;
	if (y->pump == PUMP_AWAITING && sender == r->self && op->seq == y->await_seq &&
	    op_stream_cmp(&op->stream, &y->await_stream) == 0)
		y->pump = PUMP_IDLE;
}

/* 1 if sender may hand us op: one of its own streams (new, or of an earlier
 * incarnation of its id), or a seq its row in this view says it holds (a
 * resend; rows come before any resend of the view). Anything else is an op
 * of another replica's stream that nobody showed: taken, it would shadow the
 * real op at that seq everywhere. A resend of an earlier view that arrives
 * in this one is refused too; this view's plan resends it. */
static int may_send(struct repl *r, uint32_t sender, const struct op *op)
{
	struct row_entry *e = NULL;
	uint64_t next;
	if (op->stream.origin == sender)
		return 1;
	HASH_FIND(hh, r->sync.rows, &op->stream, sizeof op->stream, e);
	return held_end(e, sender, op->seq, &next) != 0;
}

/* New or resent ops: each keeps the lts its origin gave it (so every
 * replica orders it alike, whatever was delivered around a view change);
 * the clock moves past it; one we hold already is dropped. Returns how many
 * were refused, or -1 if data is not ops. */
static long on_ops(struct repl *r, uint32_t sender, const uint8_t *data, size_t len)
{
	struct op *ops;
	size_t n, refused = 0;
	if (op_decode(data, len, &ops, &n) < 0) {
		log_error("repl: undecodable ops from replica %" PRIu32 " (%zu bytes)", sender, len);
		return -1;
	}
	int64_t now = now_ms(r); /* once per message, not per op */
	for (size_t i = 0; i < n; i++) {
		struct op *op = &ops[i];
		check_awaited(r, sender, op);
		if (op->lts == 0 || op->seq == 0 || op->lts >= REPL_NUMBER_MAX || op->seq >= REPL_NUMBER_MAX) {
			log_error("repl: an operation with lts %" PRIu64 ", seq %" PRIu64 " from replica %" PRIu32
				  ", refused", op->lts, op->seq, sender);
			continue;
		}
		if (know_has(r, &op->stream, op->seq))
			continue; /* a resend of what we already have */
		if (!may_send(r, sender, op)) {
			refused++;
			continue;
		}
		saw_lts(r, op->lts);
		if (op->stream.origin != r->self)
			saw_peer_wall(r, op->wall_ms, now);
		accept_op(r, op);
	}
	if (refused)
		log_warn("repl: %zu operation(s) of other replicas' streams from replica %" PRIu32
			 " that its row does not show; refused", refused, sender);
	op_free_array(ops, n);
	pump_resends(r);
	return (long)refused;
}

/* ---- direct links ---- */

int repl_direct_deliver(struct repl *r, uint32_t sender, const void *data, size_t len)
{
	struct op_reader rd = {data, len, 0};
	uint64_t version = op_read_u(&rd, 1), type = op_read_u(&rd, 1);
	if (rd.bad || version != REPL_WIRE_VERSION || type != MSG_OPS || !in_view(r, sender) ||
	    sender == r->self) {
		log_warn("repl: a direct batch from replica %" PRIu32 " refused (not ops of a member)", sender);
		return -1;
	}
	return on_ops(r, sender, rd.p, rd.left) == 0 ? 0 : -1;
}

/* Takes batch d off the unanswered ones; if it was planned in this view's
 * sync, what it carried is multicast. */
static void direct_failed(struct repl *r, struct direct_batch *d)
{
	if (d->gen == r->sync.gen)
		add_task(r, &d->stream, d->from, d->to, 0);
	free(d);
	r->ndirect--;
}

void repl_direct_answer(struct repl *r, uint32_t member, int taken)
{
	struct direct_batch **pp = &r->direct;
	while (*pp && (*pp)->member != member)
		pp = &(*pp)->next;
	struct direct_batch *d = *pp;
	if (!d) {
		log_error("repl: an answer from replica %" PRIu32 " to no direct batch", member);
		return;
	}
	*pp = d->next;
	if (taken) {
		free(d);
		r->ndirect--;
	} else {
		log_warn("repl: replica %" PRIu32 " refused a direct batch; multicasting it", member);
		direct_failed(r, d);
	}
	pump_resends(r);
}

void repl_direct_lost(struct repl *r, uint32_t member)
{
	struct direct_batch **pp = &r->direct;
	while (*pp) {
		struct direct_batch *d = *pp;
		if (d->member != member) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		direct_failed(r, d);
	}
	mark_down(&r->sync, member);
	pump_resends(r);
}

void repl_deliver(struct repl *r, uint32_t sender, const void *data, size_t len)
{
	struct op_reader rd = {data, len, 0};
	uint64_t version = op_read_u(&rd, 1), type = op_read_u(&rd, 1);
	if (rd.bad || version != REPL_WIRE_VERSION) {
		log_error("repl: message of unknown version from replica %" PRIu32, sender);
		return;
	}
	if (type == MSG_OPS)
		(void)on_ops(r, sender, rd.p, rd.left);
	else if (type == MSG_ROW)
		on_row(r, sender, &rd);
	else if (type == MSG_SOFT) {
		if (sender != r->self && r->cb.soft)
			r->cb.soft(r->cb.arg, sender, rd.p, rd.left);
	}
	else
		log_error("repl: message of unknown type %" PRIu64 " from replica %" PRIu32, type, sender);
}

/* Every snapshot_every ops applied, a snapshot of the chat to keep. */
static void snapshot_if_due(struct repl *r)
{
	uint64_t every = r->io.snapshot_every ? r->io.snapshot_every : REPL_SNAPSHOT_EVERY;
	if (!r->io.snapshot || chat_op_count(r->chat) - r->snapshot_at < every)
		return;
	struct op_buf b = {0};
	chat_snapshot(r->chat, &b);
	r->io.snapshot(r->io.ctx, b.data, b.len);
	op_buf_free(&b);
	r->snapshot_at = chat_op_count(r->chat);
}

void repl_stored(struct repl *r, int status, const struct op *ops, const struct chat_fact *facts,
		 size_t n)
{
	r->unstored -= n < r->unstored ? n : r->unstored;
	if (status != STORE_OK) {
		if (!r->store_failed)
			log_error("store: write failed: refusing writes until a new stream");
		r->store_failed = 1;
		r->cb.failed(r->cb.arg, NULL);
		for (size_t i = 0; i < n; i++)
			if (op_stream_cmp(&ops[i].stream, &r->stream) == 0)
				r->cb.failed(r->cb.arg, &ops[i]);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct chat_effect eff;
		int own = op_stream_cmp(&ops[i].stream, &r->stream) == 0;
		if (chat_apply(r->chat, &ops[i], &facts[i], &eff) < 0) {
			log_warn("repl: dropping a malformed operation of kind %d", ops[i].kind);
			if (!own)
				continue;
			memset(&eff, 0, sizeof eff); /* our own: its maker is still answered */
		}
		r->cb.effect(r->cb.arg, &ops[i], &eff, own);
	}
	snapshot_if_due(r);
}

/* ---- queries ---- */

struct chat *repl_chat(const struct repl *r)
{
	return r->chat;
}

const struct op_stream *repl_stream(const struct repl *r)
{
	return &r->stream;
}

const struct group_view *repl_current_view(const struct repl *r)
{
	return &r->sync.view;
}

int repl_syncing(const struct repl *r)
{
	return r->sync.phase == SYNC_ROWS || r->sync.tasks || r->sync.pump != PUMP_IDLE ||
	       direct_in_flight(r);
}

size_t repl_backlog(const struct repl *r)
{
	return r->nout + r->unstored + (r->sync.tasks != NULL) + (r->sync.pump != PUMP_IDLE) + r->ndirect;
}
