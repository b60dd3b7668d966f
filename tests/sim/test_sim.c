/*
 * test_sim.c: the simulation test. Five real replica cores (src/repl) over
 * in-memory stores, joined by a simulated group, run thousands of seeded
 * schedules of client writes (messages, DMs, likes, topics, follows and
 * unfollows, posts), partitions, merges, crashes, restarts and wiped disks.
 * Each schedule ends with a full heal and checks that
 *   (a) every replica holds the same canonical state (equal digests),
 *   (b) every acknowledged message is present everywhere (for one sent with
 *       a client id: that id's line, which may be an earlier copy),
 *   (c) messages appended during one view kept their relative order,
 *   (e) no room shows two lines of one person with one client id.
 * Half the messages and DMs carry a client id (exactly-once sends), and
 * clients now and then send one of their last lines again, with its id, at
 * a random replica (as the chorus client does after a failover): in the
 * same component, or in another partition.
 * With --settle, some steps also run every component until nothing is left
 * to do, without a membership change, and then check that
 *   (d) the members of each component hold the same state: a view's sync
 *       finishes by itself, it does not wait for the next view change.
 *
 * The group behaves as Corosync's CPG with extended virtual synchrony: each
 * component (replicas that can talk) has one agreed queue; a message goes to
 * every current member of its component in queue order. When memberships
 * change (take_rest), the old members are split by where they go next, and
 * each such group delivers its own part of the old view's messages: all up
 * to a random hole, then only its own members' (so groups bound for
 * different views miss different last messages, also after a hole); what
 * senders had not yet put on the ring goes out in their new component after
 * the new view, ahead of their own rows but maybe after other members'.
 *
 * Direct links (repl_io.direct, chorusd's catch-up links) are connections
 * from a resender to one member: what goes over one arrives in order, only
 * while both ends are in one component (a partition stalls it, as TCP
 * would), and its answers come back in order. A link breaks when either end
 * crashes, now and then at random, and when a settling component cannot
 * reach the other end; the sender then hears repl_direct_lost. Some sends
 * are refused at once (no link to be had). In one schedule of four there are
 * no links at all. Each replica's wall clock has its own
 * skew (in some schedules one runs an hour ahead), from the world's clock,
 * so a seed replays exactly.
 *
 * usage: test_sim [--settle] [--seeds N] [--first S] [--seed S (one, verbose)]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "repl/repl.h"


enum { N = 5, STEPS = 160, ROOMS = 3 };

/* Each chat's cache: a few lines in all, a room keeping its last two, so
 * lines are evicted and kept all the time. */
#define SIM_CACHE_BYTES 2048
#define SIM_CACHE_KEEP 2
/* Ops between two snapshots: a restart mostly starts from one. */
#define SIM_SNAPSHOT_EVERY 8

static const char *rooms[ROOMS] = {"#a", "#b", "#c"};
static const char *nicks[] = {"ann", "bob", "cy", "dee"};

struct msg {
	struct msg *next;
	uint32_t sender;
	size_t len;
	unsigned char data[];
};

struct job {
	struct job *next;
	int is_read;
	struct op op;
	struct op_stream stream;
	uint64_t from, to;
};

/* One msgid appended during one view on one replica, for check (c). */
struct appended {
	char msgid[OP_MSGID_MAX];
	uint64_t view_gen;
	uint32_t replica;
};

/* A message on a direct link: a batch of ops, or an answer to one. */
struct lmsg {
	struct lmsg *next;
	int answer, taken;
	size_t len;
	unsigned char data[];
};

/* The direct link from one replica to another: batches one way, answers
 * the other. */
struct link {
	struct lmsg *to_peer, *back; /* oldest first */
	int open;
};

/* An acknowledged message: its msgid, and its client id if it had one (with
 * its history and person, to find the id's line). */
struct ack {
	char msgid[OP_MSGID_MAX];
	char cid[OP_CID_MAX];
	char *hist, *person;
};

/* A line a client sent, to send again. */
struct sent {
	struct op op;
	int used;
};

enum { SENT_KEEP = 8 };

struct world;

static uint64_t starts_from_snapshot;
static uint64_t repeats_sent;         /* lines sent again with their client id */
static uint64_t direct_batches;       /* batches taken over direct links */ /* replicas (re)started with a snapshot in their store */

struct replica {
	struct world *w;
	uint32_t id;
	int alive;
	int component;
	struct store *store;
	struct repl *repl;
	struct group group;
	struct job *jobs, *jobs_tail;
	uint64_t view_gen;
	int64_t skew_ms;  /* this replica's wall clock minus the world's */
	int displaced[ROOMS]; /* a repeat took a line's place in this room here */
};

struct world {
	uint64_t rng;
	uint64_t account_rng;    /* account ops: their own stream, so adding them
	                          * left every other choice of a seed as it was */
	int verbose;
	struct replica r[N];
	struct msg *queue[N], *tail[N];
	uint64_t view_id;
	int64_t time_ms;         /* the world's wall clock: moves on with every step */
	struct ack *acked;
	char *excused;           /* acked[i] was stored only on a disk that was wiped */
	uint64_t cid_rng;        /* client ids and lines sent again: their own stream */
	uint64_t next_cid;
	struct sent sent[SENT_KEEP]; /* the last lines sent with a client id */
	size_t nacked, capacked;
	struct appended *app;
	size_t napp, capapp;
	uint64_t link_rng;       /* direct links: their own stream of choices */
	uint64_t direct_min;     /* repl_io.direct_min; 0: no links in this schedule */
	struct link link[N][N];  /* [from][to] */
	int settle;              /* --settle: steps that settle and compare components */
	int unsettled;           /* a settled component whose members differed */
};

/* xorshift64*: deterministic per seed; a number below n. */
static uint64_t next_rnd(uint64_t *state, uint64_t n)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return (*state * 2685821657736338717ULL) % n;
}

static uint64_t rnd(struct world *w, uint64_t n)
{
	return next_rnd(&w->rng, n);
}

/* ---- the simulated group ---- */

static int sim_join(struct group *g)
{
	(void)g;
	return 0; /* views are installed by the world */
}

/* Appends m (next NULL) to component c's agreed queue. */
static void enqueue(struct world *w, int c, struct msg *m)
{
	if (w->tail[c])
		w->tail[c]->next = m;
	else
		w->queue[c] = m;
	w->tail[c] = m;
}

static int sim_multicast(struct group *g, const void *data, size_t len)
{
	struct replica *r = (struct replica *)((char *)g - offsetof(struct replica, group));
	struct world *w = r->w;
	if (len > GROUP_MSG_MAX) {
		fprintf(stderr, "sim: a %zu-byte multicast passes GROUP_MSG_MAX\n", len);
		abort();
	}
	struct msg *m = xmalloc(sizeof *m + len);
	m->next = NULL;
	m->sender = r->id;
	m->len = len;
	memcpy(m->data, data, len);
	enqueue(w, r->component, m);
	return 0;
}

static void sim_close(struct group *g)
{
	(void)g;
}

static const struct group_ops sim_group_ops = {sim_join, sim_multicast, sim_close};

/* Delivers the head of component c's queue to its live members. Returns 0
 * if the queue was empty. */
static int deliver_one(struct world *w, int c)
{
	struct msg *m = w->queue[c];
	if (!m)
		return 0;
	w->queue[c] = m->next;
	if (!w->queue[c])
		w->tail[c] = NULL;
	for (int i = 0; i < N; i++)
		if (w->r[i].alive && w->r[i].component == c)
			repl_deliver(w->r[i].repl, m->sender, m->data, m->len);
	free(m);
	return 1;
}

static void drain(struct world *w, int c)
{
	while (deliver_one(w, c))
		;
}

/* Delivers to the members of old component c bound for component to (a
 * transitional configuration) the sent messages sent[0..): all of those
 * before index hole, and after it only those whose sender is one of them. */
static void deliver_transitional(struct world *w, int c, int to, const int next[N],
				 const struct msg *sent, uint64_t hole)
{
	uint64_t idx = 0;
	for (const struct msg *m = sent; m; m = m->next, idx++) {
		const struct replica *s = &w->r[m->sender - 1];
		if (idx >= hole && !(s->alive && s->component == c && next[m->sender - 1] == to))
			continue;
		for (int i = 0; i < N; i++)
			if (w->r[i].alive && w->r[i].component == c && next[i] == to)
				repl_deliver(w->r[i].repl, m->sender, m->data, m->len);
	}
}

/*
 * Before a membership change, what Corosync's extended virtual synchrony
 * lets each member deliver of the old view's messages. next[i] is the
 * component replica i+1 will be in (-1: it crashes or was not a member).
 *
 * - Each sender's messages in the agreed queue are cut at a random point:
 *   those before it were sent on the old ring, the rest were still queued
 *   in the sender's Corosync and go out in its new component, after the new
 *   view (returned, in order, for install_view() and requeue()).
 * - The old members are split by where they go next (Totem's transitional
 *   configurations). Each such group delivers the sent messages in agreed
 *   order up to a random hole (a message no member of the group received),
 *   and after the hole only the messages of its own members (their senders
 *   hold them; others' may depend on what was lost). So two groups of one
 *   old view can each miss different last messages of it, including
 *   messages after a hole: the patterns that made replicas disagree on an
 *   operation's place before lts came from the origin.
 * Messages multicast in reply to these deliveries go out in the new view too.
 */
static struct msg *take_rest(struct world *w, const int next[N])
{
	struct msg *carried = NULL, **tail = &carried, *sent[N];
	for (int c = 0; c < N; c++) {
		struct msg *q = w->queue[c], **stail = &sent[c];
		uint64_t cut[N + 1] = {0}, seen[N + 1] = {0};
		w->queue[c] = w->tail[c] = NULL;
		for (struct msg *m = q; m; m = m->next)
			cut[m->sender]++;
		for (int s = 1; s <= N; s++)
			cut[s] = rnd(w, cut[s] + 1);
		while (q) {
			struct msg *m = q;
			q = m->next;
			m->next = NULL;
			if (seen[m->sender]++ < cut[m->sender]) {
				*stail = m;
				stail = &m->next;
			} else {
				*tail = m;
				tail = &m->next;
			}
		}
		*stail = NULL;
	}
	for (int c = 0; c < N; c++) {
		size_t n = 0;
		for (struct msg *m = sent[c]; m; m = m->next)
			n++;
		for (int to = 0; to < N; to++)
			deliver_transitional(w, c, to, next, sent[c], rnd(w, n + 1));
		while (sent[c]) {
			struct msg *m = sent[c];
			sent[c] = m->next;
			free(m);
		}
	}
	for (int c = 0; c < N; c++) {
		*tail = w->queue[c];
		if (w->queue[c])
			tail = &w->tail[c]->next;
		w->queue[c] = w->tail[c] = NULL;
	}
	return carried;
}

/* Appends the carried messages of sender (0: of every sender) to their
 * senders' queues, in order, taking them off *carried; a dead sender's are
 * lost. */
static void requeue(struct world *w, struct msg **carried, uint32_t sender)
{
	struct msg **pp = carried;
	while (*pp) {
		struct msg *m = *pp;
		if (sender && m->sender != sender) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		m->next = NULL;
		struct replica *r = &w->r[m->sender - 1];
		if (r->alive)
			enqueue(w, r->component, m);
		else
			free(m);
	}
}

/*
 * Installs the current membership of component c as a new view. Each member
 * sends its row from the view callback; its carried messages (sent before
 * the change, not yet on the ring) go out just before its row, and the
 * members take their turns from a random one on, as around Totem's ring: so
 * a sender's old message can come after other members' rows, never after
 * its own.
 */
static void install_view(struct world *w, int c, struct msg **carried)
{
	struct group_view v = {0};
	int order[N], n = 0;
	v.id = ++w->view_id;
	for (int i = 0; i < N; i++)
		if (w->r[i].alive && w->r[i].component == c) {
			order[n++] = i;
			v.members[v.n++] = w->r[i].id;
		}
	int first = n ? (int)rnd(w, (uint64_t)n) : 0;
	for (int k = 0; k < n; k++) {
		struct replica *r = &w->r[order[(first + k) % n]];
		requeue(w, carried, r->id);
		r->view_gen++;
		repl_view(r->repl, &v);
	}
}

/* ---- io ---- */

static void io_write(void *ctx, struct op *op)
{
	struct replica *r = ctx;
	struct job *j = xcalloc(1, sizeof *j);
	op_move(&j->op, op);
	if (r->jobs_tail)
		r->jobs_tail->next = j;
	else
		r->jobs = j;
	r->jobs_tail = j;
}

/* Called from repl_stored, right after the batch's append: the store's
 * position is that batch's. */
static void io_snapshot(void *ctx, const void *data, size_t len)
{
	struct replica *r = ctx;
	store_snapshot_put(r->store, store_position(r->store), data, len); /* may fail: injected */
}

static void io_read(void *ctx, const struct op_stream *s, uint64_t from, uint64_t to)
{
	struct replica *r = ctx;
	struct job *j = xcalloc(1, sizeof *j);
	j->is_read = 1;
	j->stream = *s;
	j->from = from;
	j->to = to;
	if (r->jobs_tail)
		r->jobs_tail->next = j;
	else
		r->jobs = j;
	r->jobs_tail = j;
}

static struct job *pop_job(struct replica *r)
{
	struct job *j = r->jobs;
	if (j) {
		r->jobs = j->next;
		if (!r->jobs)
			r->jobs_tail = NULL;
	}
	return j;
}

struct collect {
	struct op *ops;
	size_t n, cap;
};

static int collect_op(const struct op *op, void *arg)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->ops = xrealloc(c->ops, c->cap * sizeof *c->ops);
	}
	op_copy(&c->ops[c->n++], op);
	return 0;
}

/* Completes r's next io job: a batch of up to max consecutive writes (one
 * transaction), or a read. Returns 0 if r had none. */
static int complete_io(struct replica *r, size_t max)
{
	struct collect c = {0};
	if (!r->jobs)
		return 0;
	if (r->jobs->is_read) {
		struct job *j = pop_job(r);
		store_load_range(r->store, &j->stream, j->from, j->to, collect_op, &c);
		repl_read_done(r->repl, c.ops, c.n);
		free(j);
	} else {
		while (r->jobs && !r->jobs->is_read && c.n < max) {
			struct job *j = pop_job(r);
			if (c.n == c.cap) {
				c.cap = c.cap ? c.cap * 2 : 64;
				c.ops = xrealloc(c.ops, c.cap * sizeof *c.ops);
			}
			c.ops[c.n++] = j->op;
			free(j);
		}
		struct chat_fact *facts = xcalloc(c.n + 1, sizeof *facts);
		int status = store_append(r->store, c.ops, c.n, facts);
		repl_stored(r->repl, status, c.ops, facts, c.n);
		free(facts);
	}
	op_free_array(c.ops, c.n);
	return 1;
}

/* ---- direct links ---- */

static void lmsg_push(struct lmsg **q, struct lmsg *m)
{
	while (*q)
		q = &(*q)->next;
	m->next = NULL;
	*q = m;
}

static void lmsg_free_all(struct lmsg **q)
{
	while (*q) {
		struct lmsg *m = *q;
		*q = m->next;
		free(m);
	}
}

static int io_direct(void *ctx, uint32_t member, const void *data, size_t len)
{
	struct replica *r = ctx;
	struct world *w = r->w;
	if (next_rnd(&w->link_rng, 8) == 0)
		return -1; /* no link to be had (none configured, refused at once) */
	struct link *l = &w->link[r->id - 1][member - 1];
	struct lmsg *m = xmalloc(sizeof *m + len);
	m->answer = m->taken = 0;
	m->len = len;
	memcpy(m->data, data, len);
	lmsg_push(&l->to_peer, m);
	l->open = 1;
	return 0;
}

/* The link from a to b breaks: what is on it is lost; a, if alive, hears
 * it. */
static void link_break(struct world *w, int a, int b)
{
	struct link *l = &w->link[a][b];
	if (!l->open)
		return;
	lmsg_free_all(&l->to_peer);
	lmsg_free_all(&l->back);
	l->open = 0;
	if (w->r[a].alive)
		repl_direct_lost(w->r[a].repl, (uint32_t)b + 1);
}

/* Every link to or from replica i breaks (it crashed). */
static void links_break_of(struct world *w, int i)
{
	for (int j = 0; j < N; j++) {
		link_break(w, i, j);
		link_break(w, j, i);
	}
}

/* Moves one message on the link from a to b, if they can talk: a batch to
 * b (answered) or an answer to a. Returns 1 if one moved. */
static int link_move(struct world *w, int a, int b, int answers_first)
{
	struct link *l = &w->link[a][b];
	struct replica *ra = &w->r[a], *rb = &w->r[b];
	if (!l->open || !ra->alive || !rb->alive || ra->component != rb->component)
		return 0;
	struct lmsg **q = answers_first && l->back ? &l->back : l->to_peer ? &l->to_peer : &l->back;
	struct lmsg *m = *q;
	if (!m)
		return 0;
	*q = m->next;
	if (m->answer) {
		repl_direct_answer(ra->repl, (uint32_t)b + 1, m->taken);
	} else {
		int rc = repl_direct_deliver(rb->repl, (uint32_t)a + 1, m->data, m->len);
		struct lmsg *ans = xcalloc(1, sizeof *ans);
		ans->answer = 1;
		ans->taken = rc == 0;
		direct_batches += rc == 0;
		lmsg_push(&l->back, ans);
	}
	free(m);
	return 1;
}

/* One step of the links: a random link moves a message, or breaks now and
 * then. */
static void link_step(struct world *w)
{
	int a = (int)next_rnd(&w->link_rng, N), b = (int)next_rnd(&w->link_rng, N);
	if (next_rnd(&w->link_rng, 40) == 0)
		link_break(w, a, b);
	else
		link_move(w, a, b, (int)next_rnd(&w->link_rng, 2));
}

/* Whether any link has something to move now. */
static int links_busy(struct world *w)
{
	for (int a = 0; a < N; a++)
		for (int b = 0; b < N; b++) {
			struct link *l = &w->link[a][b];
			if (l->open && (l->to_peer || l->back) && w->r[a].alive && w->r[b].alive &&
			    w->r[a].component == w->r[b].component)
				return 1;
		}
	return 0;
}

/* Settling: every link moves what it can; one whose ends cannot talk breaks
 * (TCP gives up on it in time), and so does, now and then, one that is busy
 * (the component must settle without it). */
static void links_run(struct world *w)
{
	for (int a = 0; a < N; a++)
		for (int b = 0; b < N; b++) {
			struct link *l = &w->link[a][b];
			if (l->open && w->r[a].alive && w->r[b].alive &&
			    (w->r[a].component != w->r[b].component ||
			     ((l->to_peer || l->back) && next_rnd(&w->link_rng, 16) == 0)))
				link_break(w, a, b);
			while (link_move(w, a, b, 0))
				;
		}
}

/* ---- replicas ---- */

static void on_effect(void *arg, const struct op *op, const struct chat_effect *eff, int own)
{
	struct replica *r = arg;
	struct world *w = r->w;
	if (eff->change != CHAT_MSG_NEW && eff->change != CHAT_MSG_REPEAT)
		return;
	if (own) { /* a repeat is answered with its line's msgid */
		if (w->nacked == w->capacked) {
			w->capacked = w->capacked ? w->capacked * 2 : 256;
			w->acked = xrealloc(w->acked, w->capacked * sizeof *w->acked);
			w->excused = xrealloc(w->excused, w->capacked);
		}
		struct ack *a = &w->acked[w->nacked];
		struct op line = {.stream = eff->line.stream, .seq = eff->line.seq};
		w->excused[w->nacked++] = 0;
		op_msgid(eff->change == CHAT_MSG_REPEAT ? &line : op, a->msgid, OP_MSGID_MAX);
		a->hist = op_client_id(op, a->cid) ? chat_history_key(op) : NULL;
		a->person = a->hist ? chat_person(op->author, op->account) : NULL;
	}
	if (eff->change != CHAT_MSG_NEW)
		return;
	for (int k = 0; k < ROOMS && eff->displaced; k++)
		r->displaced[k] |= strcasecmp(op->target, rooms[k]) == 0;
	if (eff->appended && op->kind == OP_MSG) {
		if (w->napp == w->capapp) {
			w->capapp = w->capapp ? w->capapp * 2 : 256;
			w->app = xrealloc(w->app, w->capapp * sizeof *w->app);
		}
		struct appended *a = &w->app[w->napp++];
		op_msgid(op, a->msgid, sizeof a->msgid);
		a->view_gen = r->view_gen;
		a->replica = r->id;
	}
}

static void on_failed(void *arg, const struct op *op)
{
	(void)arg;
	(void)op;
}

/* A replica's wall clock: the world's plus its skew, so that a seed replays
 * exactly and replicas disagree on the time as real hosts may. */
static int64_t sim_now(void *arg)
{
	struct replica *r = arg;
	return r->w->time_ms + r->skew_ms;
}

static const struct repl_callbacks sim_callbacks = {
	.effect = on_effect, .failed = on_failed, .now = sim_now};

static void drop_jobs(struct replica *r)
{
	struct job *j;
	while ((j = pop_job(r))) {
		op_clear(&j->op);
		free(j);
	}
}

/* Starts replica r from its store, alone in component c (no view yet). */
static void start(struct world *w, struct replica *r, int c)
{
	struct repl_callbacks cb = sim_callbacks;
	struct repl_io io = {.write = io_write, .read = io_read, .snapshot = io_snapshot,
			     .snapshot_every = SIM_SNAPSHOT_EVERY, .direct = w->direct_min ? io_direct : NULL,
			     .direct_min = w->direct_min, .ctx = r};
	cb.arg = r;
	char *err = NULL;
	r->repl = repl_new(r->id, REPL_AVAILABLE, N, &cb);
	chat_set_cache(repl_chat(r->repl), SIM_CACHE_BYTES, SIM_CACHE_KEEP);
	uint64_t upto;
	void *snap;
	size_t len;
	if (store_snapshot_get(r->store, &upto, &snap, &len) == STORE_OK) {
		starts_from_snapshot++;
		free(snap);
	}
	if (repl_open(r->repl, r->store, &err) < 0) {
		fprintf(stderr, "sim: repl_open: %s\n", err);
		abort();
	}
	r->group.ops = &sim_group_ops;
	r->group.self = r->id;
	repl_attach(r->repl, &r->group, &io);
	r->alive = 1;
	r->component = c;
}

/* next[i]: where replica i+1 stays through a change that moves nobody. */
static void stay(const struct world *w, int next[N])
{
	for (int i = 0; i < N; i++)
		next[i] = w->r[i].alive ? w->r[i].component : -1;
}

static void crash(struct world *w, struct replica *r)
{
	int c = r->component, next[N];
	stay(w, next);
	next[r->id - 1] = -1;
	struct msg *carried = take_rest(w, next);
	r->alive = 0;
	links_break_of(w, (int)r->id - 1);
	repl_free(r->repl);
	r->repl = NULL;
	drop_jobs(r);
	install_view(w, c, &carried);
	requeue(w, &carried, 0);
}

/* A free component id (no live member, empty queue). */
static int free_component(struct world *w)
{
	for (int c = 0; c < N; c++) {
		int used = 0;
		for (int i = 0; i < N; i++)
			used |= w->r[i].alive && w->r[i].component == c;
		if (!used && !w->queue[c])
			return c;
	}
	abort();
}

/* The message msgid as st holds it, copied into *out (op_clear it) if out
 * is not NULL. Returns 1 if st holds it. */
static int stored_msg(struct store *st, const char *msgid, struct op *out)
{
	struct store_msgs m;
	int liked, found = store_message(st, msgid, "", &m, &liked) == STORE_OK;
	if (found && out)
		op_copy(out, &m.ops[0]);
	if (found)
		store_msgs_free(&m);
	return found;
}

/* The lines of history hist in st that person sent with client id cid. */
static size_t cid_lines(struct store *st, const char *hist, const char *person, const char *cid)
{
	struct store_msgs all;
	size_t n = 0;
	if (store_history(st, hist, NULL, NULL, SIZE_MAX, 0, &all) != STORE_OK)
		return 0;
	for (size_t i = 0; i < all.n; i++) {
		char id[OP_CID_MAX], *who = chat_person(all.ops[i].author, all.ops[i].account);
		n += op_client_id(&all.ops[i], id) && strcmp(id, cid) == 0 && strcmp(who, person) == 0;
		free(who);
	}
	store_msgs_free(&all);
	return n;
}

/* Whether st holds acknowledged message a: its msgid, or, if it had a client
 * id, that id's line (an earlier copy may have taken its place). */
static int acked_stored(struct store *st, const struct ack *a)
{
	return stored_msg(st, a->msgid, NULL) || (a->hist && cid_lines(st, a->hist, a->person, a->cid) > 0);
}

/* Before r's disk is wiped: an acknowledged message that no other replica
 * has stored (a crashed one keeps what its store has) can no longer be
 * expected anywhere. */
static void excuse_wiped(struct world *w, struct replica *r)
{
	for (size_t a = 0; a < w->nacked; a++) {
		int elsewhere = 0;
		for (int i = 0; i < N; i++)
			if (&w->r[i] != r)
				elsewhere |= acked_stored(w->r[i].store, &w->acked[a]);
		if (!elsewhere)
			w->excused[a] = 1;
	}
}

static void restart(struct world *w, struct replica *r, int wipe)
{
	if (wipe) {
		excuse_wiped(w, r);
		store_close(r->store);
		r->store = store_memory_new();
	}
	/* joins a random live component, or alone */
	int c = -1;
	int pick = (int)rnd(w, N);
	if (w->r[pick].alive)
		c = w->r[pick].component;
	else
		c = free_component(w);
	int next[N];
	stay(w, next);
	struct msg *carried = take_rest(w, next);
	start(w, r, c);
	install_view(w, c, &carried);
	requeue(w, &carried, 0);
}

/* Splits the live replicas into two random components. */
static void partition(struct world *w)
{
	int next[N];
	stay(w, next);
	for (int i = 0; i < N; i++)
		if (w->r[i].alive)
			next[i] = (int)rnd(w, 2) ? N - 1 : 0;
	struct msg *carried = take_rest(w, next);
	for (int i = 0; i < N; i++)
		w->r[i].component = next[i] < 0 ? w->r[i].component : next[i];
	for (int c = 0; c < N; c++)
		for (int i = 0; i < N; i++)
			if (w->r[i].alive && w->r[i].component == c) {
				install_view(w, c, &carried);
				break;
			}
	requeue(w, &carried, 0);
}

/* Joins every live replica into component 0. */
static void merge(struct world *w)
{
	int next[N];
	stay(w, next);
	for (int i = 0; i < N; i++)
		if (w->r[i].alive)
			next[i] = 0;
	struct msg *carried = take_rest(w, next);
	for (int i = 0; i < N; i++)
		if (w->r[i].alive)
			w->r[i].component = 0;
	install_view(w, 0, &carried);
	requeue(w, &carried, 0);
}

/* ---- client writes ---- */

/* Sometimes (from the account stream) an account op at r by author, as a
 * session there would make it: a registration of a name r knows free (so two
 * partitions may register one name), or, by the account's holder, a new
 * verifier or its removal. */
static void account_write(struct world *w, struct replica *r, const char *author)
{
	if (next_rnd(&w->account_rng, 100) >= 6)
		return;
	const struct chat_account *a = chat_account_find(repl_chat(r->repl), author);
	struct op op = {0};
	op.author = xstrdup(author);
	if (!a) {
		op.kind = OP_REGISTER;
		op.account = xstrdup("");
	} else {
		op.kind = next_rnd(&w->account_rng, 3) ? OP_PASSWORD : OP_UNREGISTER;
		op.ref = xstrdup(a->regid);
		op.account = xstrdup(a->regid);
	}
	op.body = op.kind == OP_UNREGISTER ? xstrdup("") : xasprintf("v%" PRIu64, next_rnd(&w->account_rng, 1000));
	repl_submit(r->repl, &op);
	op_clear(&op);
}

/* The registration in force at chat for name, or "". */
static char *account_of(struct chat *chat, const char *name)
{
	const struct chat_account *a = chat_account_find(chat, name);
	return xstrdup(a ? a->regid : "");
}

/* From the client id stream: sometimes gives a message or DM a client id
 * (kept to send again); sometimes, instead of a new write, sends one of the
 * last lines with an id again at r (returns 1 then). */
static int client_id_write(struct world *w, struct replica *r, struct op *op)
{
	if (!op) {
		struct sent *s = &w->sent[next_rnd(&w->cid_rng, SENT_KEEP)];
		if (next_rnd(&w->cid_rng, 100) >= 8 || !s->op.author)
			return 0;
		struct op again;
		op_copy(&again, &s->op);
		repl_submit(r->repl, &again);
		op_clear(&again);
		repeats_sent++;
		return 1;
	}
	if ((op->kind != OP_MSG && op->kind != OP_DM) || next_rnd(&w->cid_rng, 2))
		return 0;
	free(op->tags);
	op->tags = xasprintf("+x=1;" OP_CID_TAG "=c%" PRIu64, ++w->next_cid);
	struct sent *s = &w->sent[w->next_cid % SENT_KEEP];
	op_clear(&s->op);
	op_copy(&s->op, op);
	return 0;
}

/* A client's write at replica r, as a session there would make it: logged in
 * to the author's account if r knows it registered (the op carries it), a DM
 * to the recipient's account likewise. */
static void client_write(struct world *w, struct replica *r)
{
	struct chat *chat = repl_chat(r->repl);
	struct op op = {0};
	if (client_id_write(w, r, NULL))
		return;
	const char *author = nicks[rnd(w, 4)];
	uint64_t k = rnd(w, 100);
	account_write(w, r, author);
	op.author = xstrdup(author);
	op.account = account_of(chat, author);
	if (k < 50) {
		op.kind = OP_MSG;
		op.target = xstrdup(rooms[rnd(w, ROOMS)]);
		op.body = xasprintf("m%" PRIu64, rnd(w, 1000000));
	} else if (k < 58) {
		op.kind = OP_DM;
		op.target = xstrdup(nicks[rnd(w, 4)]);
		op.body = xstrdup("dm");
		op.ref = account_of(chat, op.target);
	} else if (k < 74) {
		struct chat_room *room = chat_room_find(chat, rooms[rnd(w, ROOMS)]);
		struct store_msgs all = {0};
		char *hist = room ? chat_room_history_key(room->name) : NULL;
		if (!hist || store_history(r->store, hist, NULL, NULL, SIZE_MAX, 0, &all) != STORE_OK ||
		    !all.n) {
			store_msgs_free(&all);
			free(hist);
			op_clear(&op);
			return;
		}
		char id[OP_MSGID_MAX];
		op_msgid(&all.ops[rnd(w, all.n)], id, sizeof id);
		store_msgs_free(&all);
		free(hist);
		op.kind = rnd(w, 3) ? OP_LIKE : OP_UNLIKE;
		op.target = xstrdup(room->name);
		op.ref = xstrdup(id);
		op.body = xstrdup("+1");
	} else if (k < 80) {
		op.kind = OP_TOPIC;
		op.target = xstrdup(rooms[rnd(w, ROOMS)]);
		op.body = xasprintf("topic %" PRIu64, rnd(w, 100));
	} else if (k < 90) {
		op.kind = rnd(w, 3) ? OP_FOLLOW : OP_UNFOLLOW;
		op.target = xstrdup(nicks[rnd(w, 4)]);
	} else {
		op.kind = OP_POST;
		op.target = xstrdup(CHAT_TIMELINE);
		op.body = xasprintf("p%" PRIu64, rnd(w, 1000000));
	}
	client_id_write(w, r, &op);
	repl_submit(r->repl, &op);
	op_clear(&op);
}

/* ---- one schedule ---- */

static int any_work(struct world *w)
{
	for (int c = 0; c < N; c++)
		if (w->queue[c])
			return 1;
	for (int i = 0; i < N; i++)
		if (w->r[i].alive && (w->r[i].jobs || repl_backlog(w->r[i].repl)))
			return 1;
	return links_busy(w);
}

/* Runs every component until nothing is left to do (or a bound of rounds),
 * without any membership change. */
static void run_to_rest(struct world *w)
{
	for (int round = 0; round < 1000000 && any_work(w); round++) {
		for (int i = 0; i < N; i++)
			if (w->r[i].alive) {
				repl_flush(w->r[i].repl);
				complete_io(&w->r[i], 64);
			}
		for (int c = 0; c < N; c++)
			deliver_one(w, c);
		links_run(w);
	}
}

/* The full digest of replica r: its chat's and its store's parts. */
static void full_digest(struct replica *r, char out[65])
{
	char part[65];
	if (store_digest(r->store, part) != STORE_OK) {
		fprintf(stderr, "sim: store digest: %s\n", store_last_error(r->store));
		abort();
	}
	chat_digest(repl_chat(r->repl), part, out);
}

/* Runs every component to rest; then the members of each component must
 * hold equal states. */
static void settle(struct world *w)
{
	run_to_rest(w);
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++) {
			char di[65], dj[65];
			if (!w->r[i].alive || !w->r[j].alive || w->r[i].component != w->r[j].component)
				continue;
			full_digest(&w->r[i], di);
			full_digest(&w->r[j], dj);
			if (strcmp(di, dj) != 0) {
				if (w->verbose)
					fprintf(stderr, "settle: replicas %d and %d differ in one component\n", i + 1, j + 1);
				w->unsettled = 1;
			}
		}
}

static void step(struct world *w)
{
	w->time_ms += (int64_t)rnd(w, 20);
	if (w->direct_min)
		link_step(w);
	struct replica *r = &w->r[rnd(w, N)];
	uint64_t k = rnd(w, 1000);
	if (k < 300) {
		if (r->alive)
			client_write(w, r);
	} else if (k < 450) {
		if (r->alive)
			repl_flush(r->repl);
	} else if (k < 700) {
		deliver_one(w, (int)rnd(w, N));
	} else if (k < 900) {
		if (r->alive)
			complete_io(r, 1 + rnd(w, 8));
	} else if (k < 930) {
		if (w->verbose)
			fprintf(stderr, "step: partition\n");
		partition(w);
	} else if (k < 960) {
		if (w->verbose)
			fprintf(stderr, "step: merge\n");
		merge(w);
	} else if (k < 980) {
		if (w->verbose && r->alive)
			fprintf(stderr, "step: crash %u\n", r->id);
		if (r->alive)
			crash(w, r);
	} else if (!r->alive) {
		int wipe = rnd(w, 4) == 0;
		if (w->verbose)
			fprintf(stderr, "step: restart %u%s\n", r->id, wipe ? " wiped" : "");
		restart(w, r, wipe);
	} else if (w->settle) {
		settle(w);
	}
}

/* Everyone back, one component, then run until nothing is left to do. */
static void heal(struct world *w)
{
	for (int i = 0; i < N; i++)
		if (!w->r[i].alive) {
			drain(w, 0);
			start(w, &w->r[i], 0);
		}
	merge(w);
	run_to_rest(w);
}

/* ---- checks ---- */

/* Every room's cache of replica r holds the room's last lines as its store
 * does, with the same like counts: at least SIM_CACHE_KEEP of them, unless
 * a repeat took the place of a cached line in that room (then fewer until
 * new lines come: chat_history_latest). */
static int cache_matches_store(struct replica *r, uint64_t seed)
{
	struct chat *chat = repl_chat(r->repl);
	int ok = 1;
	for (int k = 0; k < ROOMS && ok; k++) {
		struct chat_room *room = chat_room_find(chat, rooms[k]);
		const struct chat_msg *cached[64];
		struct store_msgs last;
		if (!room)
			continue;
		char *hist = chat_room_history_key(room->name);
		size_t n = chat_history_latest(room->history, 64, cached);
		struct store_msgs all = {0};
		int st = store_history(r->store, hist, NULL, NULL, SIZE_MAX, 0, &all);
		size_t want = all.n < SIM_CACHE_KEEP ? all.n : SIM_CACHE_KEEP;
		store_msgs_free(&all);
		if (st != STORE_OK || (n < want && !r->displaced[k]) ||
		    store_history(r->store, hist, NULL, NULL, n, 1, &last) != STORE_OK) {
			fprintf(stderr, "seed %" PRIu64 ": replica %u: %s: no cache of its last lines\n", seed,
				r->id, rooms[k]);
			ok = 0;
		} else {
			for (size_t i = 0; ok && i < last.n; i++)
				if (last.n != (size_t)n || op_cmp(&last.ops[i], &cached[i]->op) != 0 ||
				    last.likes[i] != cached[i]->likes) {
					fprintf(stderr, "seed %" PRIu64 ": replica %u: %s: cache differs from the store\n",
						seed, r->id, rooms[k]);
					ok = 0;
				}
			store_msgs_free(&last);
		}
		free(hist);
	}
	return ok;
}

static int check(struct world *w, uint64_t seed)
{
	char d0[65], d[65], s0[65], sd[65];
	int ok = 1;
	full_digest(&w->r[0], d0);
	chat_set_digest(repl_chat(w->r[0].repl), s0);
	for (int i = 1; i < N; i++) {
		full_digest(&w->r[i], d);
		chat_set_digest(repl_chat(w->r[i].repl), sd);
		if (strcmp(d, d0) != 0 || strcmp(sd, s0) != 0) {
			fprintf(stderr, "seed %" PRIu64 ": replica %d digest %s (set %s) != replica 1 %s (set %s)\n",
				seed, i + 1, d, sd, d0, s0);
			ok = 0;
		}
	}
	for (size_t a = 0; a < w->nacked && ok; a++)
		for (int i = 0; i < N && !w->excused[a]; i++)
			if (!acked_stored(w->r[i].store, &w->acked[a])) {
				fprintf(stderr, "seed %" PRIu64 ": acknowledged %s missing on replica %d\n", seed,
					w->acked[a].msgid, i + 1);
				ok = 0;
				break;
			}
	for (int i = 0; i < N && ok; i++)
		ok = cache_matches_store(&w->r[i], seed);
	/* (e): one line per client id. */
	for (size_t a = 0; a < w->nacked && ok; a++)
		if (w->acked[a].hist && cid_lines(w->r[0].store, w->acked[a].hist, w->acked[a].person, w->acked[a].cid) > 1) {
			fprintf(stderr, "seed %" PRIu64 ": client id %s shows as more than one line\n", seed,
				w->acked[a].cid);
			ok = 0;
		}
	/* (c): consecutive appends of one replica in one view stay in order. */
	for (size_t a = 1; a < w->napp && ok; a++) {
		struct appended *x = &w->app[a - 1], *y = &w->app[a];
		struct op mx, my;
		if (x->replica != y->replica || x->view_gen != y->view_gen)
			continue;
		int both = stored_msg(w->r[0].store, x->msgid, &mx);
		if (both && !(both = stored_msg(w->r[0].store, y->msgid, &my)))
			op_clear(&mx);
		if (!both)
			continue;
		if (strcmp(mx.target, my.target) == 0 && op_cmp(&mx, &my) > 0) { /* a history is in key order */
			fprintf(stderr, "seed %" PRIu64 ": %s and %s changed order after view %" PRIu64 "\n", seed,
				x->msgid, y->msgid, x->view_gen);
			ok = 0;
		}
		op_clear(&mx);
		op_clear(&my);
	}
	return ok;
}

static void world_free(struct world *w)
{
	for (int i = 0; i < N; i++) {
		if (w->r[i].repl)
			repl_free(w->r[i].repl);
		drop_jobs(&w->r[i]);
		store_close(w->r[i].store);
	}
	for (int c = 0; c < N; c++)
		while (w->queue[c]) {
			struct msg *m = w->queue[c];
			w->queue[c] = m->next;
			free(m);
		}
	for (int a = 0; a < N; a++)
		for (int b = 0; b < N; b++) {
			lmsg_free_all(&w->link[a][b].to_peer);
			lmsg_free_all(&w->link[a][b].back);
		}
	for (size_t a = 0; a < w->nacked; a++) {
		free(w->acked[a].hist);
		free(w->acked[a].person);
	}
	for (int k = 0; k < SENT_KEEP; k++)
		op_clear(&w->sent[k].op);
	free(w->acked);
	free(w->excused);
	free(w->app);
}

static int dump_op(const struct op *op, const struct chat_fact *fact, void *arg)
{
	(void)fact;
	fprintf(stderr, "  r%d op %u/%u/%" PRIu64 " lts %" PRIu64 " kind %d %s\n", *(int *)arg, op->stream.origin,
		op->stream.boot, op->seq, op->lts, op->kind, op->target);
	return 0;
}

/* Runs one schedule; returns 1 if every check held. */
static int run_seed(uint64_t seed, int verbose, int settle_steps)
{
	struct world w;
	memset(&w, 0, sizeof w);
	w.settle = settle_steps;
	w.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
	w.account_rng = seed * 0xD1B54A32D192ED03ULL + 7;
	w.link_rng = seed * 0x94D049BB133111EBULL + 13;
	w.cid_rng = seed * 0xBF58476D1CE4E5B9ULL + 17;
	/* Direct links in three schedules of four, for parts of 1, 2 or 4 ops
	 * and more. */
	w.direct_min = next_rnd(&w.link_rng, 4) ? 1ULL << next_rnd(&w.link_rng, 3) : 0;
	w.verbose = verbose;
	/* Wall clocks: mostly a few seconds apart; in one schedule of four, one
	 * replica's runs an hour ahead. */
	w.time_ms = 1800000000000LL;
	int ahead = rnd(&w, 4) == 0 ? (int)rnd(&w, N) : -1;
	for (int i = 0; i < N; i++) {
		w.r[i].w = &w;
		w.r[i].id = (uint32_t)i + 1;
		w.r[i].skew_ms = i == ahead ? 3600000 : (int64_t)rnd(&w, 10000) - 5000;
		w.r[i].store = store_memory_new();
		start(&w, &w.r[i], 0);
	}
	struct msg *none = NULL;
	install_view(&w, 0, &none);
	for (int s = 0; s < STEPS; s++)
		step(&w);
	heal(&w);
	int ok = !any_work(&w) && check(&w, seed) && !w.unsettled;
	if (w.unsettled)
		fprintf(stderr, "seed %" PRIu64 ": a settled component's members differed\n", seed);
	if (any_work(&w))
		fprintf(stderr, "seed %" PRIu64 ": work left after heal\n", seed);
	if (verbose)
		for (int i = 0; i < N; i++) {
			int id = i + 1;
			store_load(w.r[i].store, 0, dump_op, &id);
		}
	if (verbose)
		for (int i = 0; i < N; i++)
			fprintf(stderr, "seed %" PRIu64 ": replica %d: %" PRIu64 " ops, max lts %" PRIu64 "\n", seed,
				i + 1, chat_op_count(repl_chat(w.r[i].repl)), chat_max_lts(repl_chat(w.r[i].repl)));
	world_free(&w);
	return ok;
}

int main(int argc, char **argv)
{
	uint64_t seeds = 2000, first = 1;
	int one = 0, settle_steps = 0;
	for (int i = 1; i < argc && strcmp(argv[i], "--settle") == 0; i++)
		settle_steps = 1;
	for (int i = 1 + settle_steps; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seeds") == 0)
			seeds = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--first") == 0)
			first = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0) {
			first = strtoull(argv[i + 1], NULL, 10);
			seeds = 1;
			one = 1;
		}
	}
	log_set_level(one ? LOG_DEBUG : LOG_ERROR + 1);
	uint64_t failed = 0;
	for (uint64_t s = first; s < first + seeds; s++)
		if (!run_seed(s, one, settle_steps)) {
			failed++;
			fprintf(stderr, "FAILED seed %" PRIu64 " (replay: test_sim --seed %" PRIu64 ")\n", s, s);
		}
	printf("simulation: %" PRIu64 " schedules, %" PRIu64 " failed (%" PRIu64
	       " starts from a snapshot, %" PRIu64 " batches over direct links, %" PRIu64
	       " lines sent again)\n", seeds, failed, starts_from_snapshot, direct_batches, repeats_sent);
	return failed != 0;
}
