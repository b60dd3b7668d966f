/*
 * test_repl.c: the replica core's order rules (shared/DESIGN.md 4.2), on
 * three cores over in-memory stores joined by a hand-driven group: the test
 * says which replicas each multicast reaches, so it can make exactly the
 * deliveries Corosync makes around a configuration change.
 *   - an op keeps the lts its origin gave it on every replica, and moves
 *     each one's clock past it; a clock far ahead counts only as the skew
 *     bound;
 *   - an origin that delivered its own op after fewer ops than the others
 *     (a hole in its transitional configuration) still orders it as they do;
 *   - a replica that starts empty and alone stamps by its wall clock, so its
 *     lines merge after the history made before them, not at its start;
 *   - a long part that one member lacks goes to it over a direct link;
 *     what the link refuses or loses is multicast instead.
 * The simulation (tests/sim) covers the same rules over random schedules.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/util.h"
#include "repl/repl.h"

enum { N = 3 };

struct msg {
	uint32_t sender;
	size_t len;
	unsigned char *data;
};

struct job {
	int is_read;
	struct op op;
	struct op_stream stream;
	uint64_t from, to;
};

struct node {
	uint32_t id;
	int64_t now;         /* this replica's wall clock */
	struct store *store;
	struct repl *repl;
	struct group group;
	struct job *jobs;
	size_t njobs, capjobs;
};

static struct node nodes[N];
static struct msg *queue; /* multicasts not yet delivered, in agreed order */
static size_t nqueue, capqueue;
static struct msg sent_direct[8]; /* batches sent over direct links; sender in .sender */
static uint32_t sent_to[8];
static size_t nsent;
static uint64_t view_id;

static int t_join(struct group *g)
{
	(void)g;
	return 0;
}

static int t_multicast(struct group *g, const void *data, size_t len)
{
	if (nqueue == capqueue) {
		capqueue = capqueue ? capqueue * 2 : 16;
		queue = xrealloc(queue, capqueue * sizeof *queue);
	}
	struct msg *m = &queue[nqueue++];
	m->sender = g->self;
	m->len = len;
	m->data = xmalloc(len);
	memcpy(m->data, data, len);
	return 0;
}

static void t_close(struct group *g)
{
	(void)g;
}

static const struct group_ops t_group_ops = {.join = t_join, .multicast = t_multicast, .close = t_close};

static struct job *new_job(struct node *n)
{
	if (n->njobs == n->capjobs) {
		n->capjobs = n->capjobs ? n->capjobs * 2 : 16;
		n->jobs = xrealloc(n->jobs, n->capjobs * sizeof *n->jobs);
	}
	struct job *j = &n->jobs[n->njobs++];
	memset(j, 0, sizeof *j);
	return j;
}

static void io_write(void *ctx, struct op *op)
{
	op_move(&new_job(ctx)->op, op);
}

static void io_read(void *ctx, const struct op_stream *s, uint64_t from, uint64_t to)
{
	struct job *j = new_job(ctx);
	j->is_read = 1;
	j->stream = *s;
	j->from = from;
	j->to = to;
}

struct collect {
	struct op *ops;
	size_t n, cap;
};

static int collect_op(const struct op *op, void *arg)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->ops = xrealloc(c->ops, c->cap * sizeof *c->ops);
	}
	op_copy(&c->ops[c->n++], op);
	return 0;
}

/* Completes every io job of n, in order (each write its own batch). */
static void complete_io(struct node *n)
{
	while (n->njobs) {
		struct job j = n->jobs[0];
		memmove(n->jobs, n->jobs + 1, --n->njobs * sizeof *n->jobs);
		struct collect c = {0};
		if (j.is_read) {
			store_load_range(n->store, &j.stream, j.from, j.to, collect_op, &c);
			repl_read_done(n->repl, c.ops, c.n);
			op_free_array(c.ops, c.n);
		} else {
			struct chat_fact fact;
			repl_stored(n->repl, store_append(n->store, &j.op, 1, &fact), &j.op, &fact, 1);
			op_clear(&j.op);
		}
	}
}

static void on_effect(void *arg, const struct op *op, const struct chat_effect *eff, int own)
{
	(void)arg, (void)op, (void)eff, (void)own;
}

static void on_failed(void *arg, const struct op *op)
{
	(void)arg, (void)op;
}

static int64_t node_now(void *arg)
{
	return ((struct node *)arg)->now;
}

/* Replica ids as a bit set: 1 << (id - 1). */
#define ALL ((1u << N) - 1)
#define R(id) (1u << ((id) - 1))

/* Delivers queue[i] to the replicas in set (a transitional configuration
 * may deliver a message to some members of a view and not to others). */
static void deliver_to(size_t i, unsigned set)
{
	for (int k = 0; k < N; k++)
		if (set & R(nodes[k].id))
			repl_deliver(nodes[k].repl, queue[i].sender, queue[i].data, queue[i].len);
}

static void drop_queue(void)
{
	for (size_t i = 0; i < nqueue; i++)
		free(queue[i].data);
	nqueue = 0;
}

/* Runs the replicas of set, one component, until nothing is left to do. */
static void run(unsigned set)
{
	for (int round = 0; round < 1000; round++) {
		for (int k = 0; k < N; k++)
			if (set & R(nodes[k].id)) {
				repl_flush(nodes[k].repl);
				complete_io(&nodes[k]);
			}
		if (!nqueue)
			return;
		size_t n = nqueue;
		for (size_t i = 0; i < n; i++)
			deliver_to(i, set);
		for (size_t i = 0; i < n; i++)
			free(queue[i].data);
		memmove(queue, queue + n, (nqueue - n) * sizeof *queue);
		nqueue -= n;
	}
	CHECK(!"run did not come to rest");
}

/* Installs a new view of the replicas of set on each of them. */
static void view(unsigned set)
{
	struct group_view v = {.id = ++view_id};
	for (int k = 0; k < N; k++)
		if (set & R(nodes[k].id))
			v.members[v.n++] = nodes[k].id;
	for (int k = 0; k < N; k++)
		if (set & R(nodes[k].id))
			repl_view(nodes[k].repl, &v);
}

static int io_direct(void *ctx, uint32_t member, const void *data, size_t len)
{
	CHECK(nsent < 8);
	struct msg *m = &sent_direct[nsent];
	m->sender = ((struct node *)ctx)->id;
	m->len = len;
	m->data = xmalloc(len);
	memcpy(m->data, data, len);
	sent_to[nsent++] = member;
	return 0;
}

/* Three replicas; with direct, links for parts of 4 ops or more. */
static void setup_with(int direct)
{
	static const struct repl_callbacks cb0 = {.effect = on_effect, .failed = on_failed, .now = node_now};
	struct repl_io io = {.write = io_write, .read = io_read};
	if (direct) {
		io.direct = io_direct;
		io.direct_min = 4;
	}
	view_id = 0;
	for (int k = 0; k < N; k++) {
		struct node *n = &nodes[k];
		struct repl_callbacks cb = cb0;
		char *err = NULL;
		memset(n, 0, sizeof *n);
		n->id = (uint32_t)k + 1;
		n->now = 1000;
		n->store = store_memory_new();
		cb.arg = n;
		n->repl = repl_new(n->id, REPL_AVAILABLE, N, &cb);
		CHECK(repl_open(n->repl, n->store, &err) == 0);
		free(err);
		n->group.ops = &t_group_ops;
		n->group.self = n->id;
		io.ctx = n;
		repl_attach(n->repl, &n->group, &io);
	}
}

static void setup(void)
{
	setup_with(0);
}

static void drop_direct(void)
{
	for (size_t i = 0; i < nsent; i++)
		free(sent_direct[i].data);
	nsent = 0;
}

static void teardown(void)
{
	drop_queue();
	drop_direct();
	for (int k = 0; k < N; k++) {
		for (size_t i = 0; i < nodes[k].njobs; i++)
			op_clear(&nodes[k].jobs[i].op);
		free(nodes[k].jobs);
		repl_free(nodes[k].repl);
		store_close(nodes[k].store);
	}
}

/* A message from replica id to #room, submitted (not yet multicast). */
static void say(uint32_t id, const char *text)
{
	struct op op = {.kind = OP_MSG};
	op.target = xstrdup("#room");
	op.author = xasprintf("u%u", (unsigned)id);
	op.body = xstrdup(text);
	CHECK(repl_submit(nodes[id - 1].repl, &op) == 0);
	op_clear(&op);
}

/* Whether replica id's store holds the line text in #room: its index in
 * the room's history into *index and its lts into *lts (if not NULL). */
static int find_lts(uint32_t id, const char *text, size_t *index, uint64_t *lts)
{
	struct store_msgs all;
	int found = 0;
	CHECK_EQ_INT(store_history(nodes[id - 1].store, "#room", NULL, NULL, SIZE_MAX, 0, &all), STORE_OK);
	for (size_t i = 0; i < all.n && !found; i++)
		if (strcmp(all.ops[i].body, text) == 0) {
			found = 1;
			*index = i;
			if (lts)
				*lts = all.ops[i].lts;
		}
	store_msgs_free(&all);
	return found;
}

static int find(uint32_t id, const char *text, size_t *index)
{
	return find_lts(id, text, index, NULL);
}

/* The lts replica id stored text with, or 0 if it has no such line. */
static uint64_t lts_of(uint32_t id, const char *text)
{
	size_t i;
	uint64_t lts = 0;
	return find_lts(id, text, &i, &lts) ? lts : 0;
}

/* The full digest of node k: its chat's and its store's parts. */
static void full_digest(int k, char out[65])
{
	char part[65];
	CHECK_EQ_INT(store_digest(nodes[k].store, part), STORE_OK);
	chat_digest(repl_chat(nodes[k].repl), part, out);
}

static void check_converged(void)
{
	char d0[65], d[65];
	full_digest(0, d0);
	for (int k = 1; k < N; k++) {
		full_digest(k, d);
		CHECK_EQ_STR(d, d0);
	}
}

#define MS(ms) ((uint64_t)(ms) << OP_LTS_SHIFT)

TEST(delivered_op_keeps_its_origin_lts)
{
	setup();
	view(ALL);
	run(ALL);
	nodes[1].now = 5000; /* replica 2's clock is a little ahead, replica 3's behind */
	nodes[2].now = 10;
	say(1, "first");
	run(ALL);
	for (uint32_t id = 1; id <= N; id++)
		CHECK_EQ_INT(lts_of(id, "first"), MS(1000));
	/* each moved its clock past it, and stamps from there or its wall clock */
	say(2, "second");
	say(3, "third");
	run(ALL);
	CHECK_EQ_INT(lts_of(1, "second"), MS(5000));
	CHECK_EQ_INT(lts_of(1, "third"), MS(1000) + 1);
	check_converged();
	teardown();
}

/* A replica whose clock runs an hour ahead of the others' stamps its lines
 * as if it were REPL_SKEW_MAX_MS ahead, once it has seen theirs. */
TEST(a_clock_far_ahead_counts_as_the_skew_bound)
{
	setup();
	view(ALL);
	run(ALL);
	nodes[1].now = 1000 + 3600 * 1000;
	say(1, "from one");
	run(ALL);
	say(2, "from two, an hour ahead");
	run(ALL);
	CHECK_EQ_INT(lts_of(3, "from two, an hour ahead"), MS(1000 + REPL_SKEW_MAX_MS));
	nodes[0].now = 2000;
	say(1, "one again");
	run(ALL);
	CHECK_EQ_INT(lts_of(3, "one again"), MS(1000 + REPL_SKEW_MAX_MS) + 1);
	check_converged();
	teardown();
}

/*
 * Replica 2 and replica 1 each send a line; the view splits {1} | {2, 3}.
 * Replica 1's transitional configuration has a hole where replica 2's line
 * was, and delivers its own line after it (its sender is in it); {2, 3}
 * deliver both. Given lts at delivery, replica 1 would stamp its line one
 * lower than the others did, and the resend after the merge would never
 * correct it (the ops are already held).
 */
TEST(a_hole_before_the_origins_own_op_does_not_split_the_order)
{
	setup();
	view(ALL);
	run(ALL);
	say(2, "from two");
	repl_flush(nodes[1].repl);
	say(1, "from one");
	repl_flush(nodes[0].repl);
	CHECK_EQ_INT(nqueue, 2);
	deliver_to(0, R(2) | R(3));
	deliver_to(1, ALL);
	drop_queue();
	for (int k = 0; k < N; k++)
		complete_io(&nodes[k]);
	CHECK_EQ_INT(lts_of(1, "from two"), 0);
	CHECK_EQ_INT(lts_of(1, "from one"), lts_of(2, "from one"));
	view(R(1));
	view(R(2) | R(3));
	run(R(1));
	run(R(2) | R(3));
	view(ALL);
	run(ALL);
	CHECK(lts_of(1, "from two") != 0);
	check_converged();
	teardown();
}

/* A replica that starts empty and alone: its line goes after the history
 * made before it on the others, once they merge. */
TEST(an_empty_replica_alone_stamps_by_its_wall_clock)
{
	setup();
	view(R(1) | R(2));
	view(R(3));
	run(R(1) | R(2));
	run(R(3));
	for (int i = 0; i < 3; i++) {
		say(1, i == 0 ? "old 1" : i == 1 ? "old 2" : "old 3");
		run(R(1) | R(2));
	}
	nodes[2].now = 2000;
	say(3, "later, alone");
	run(R(3));
	view(ALL);
	run(ALL);
	size_t i_old = 0, i_new = 0;
	for (uint32_t id = 1; id <= N; id++) {
		CHECK(find(id, "old 3", &i_old) && find(id, "later, alone", &i_new));
		CHECK(i_new > i_old);
	}
	check_converged();
	teardown();
}

/* What a forged member sends: ops with an lts or seq near 2^64 are refused
 * (not applied; the clock neither jumps nor wraps), and a row naming a range
 * or a clock near 2^64 neither loops the resends nor moves the clock. */
TEST(numbers_near_the_top_are_refused)
{
	setup();
	view(ALL);
	run(ALL);
	struct op bad[2];
	for (int i = 0; i < 2; i++) {
		memset(&bad[i], 0, sizeof bad[i]);
		bad[i].stream = (struct op_stream){2, 0x7777, 1};
		bad[i].seq = i ? UINT64_MAX : 1;
		bad[i].lts = i ? 5 : UINT64_MAX - 1;
		bad[i].kind = OP_MSG;
		bad[i].target = "#room";
		bad[i].author = "mallory";
		bad[i].body = i ? "huge seq" : "huge lts";
		bad[i].ref = bad[i].account = "";
	}
	struct op_buf b = {0};
	op_buf_put_u(&b, REPL_WIRE_VERSION, 1);
	op_buf_put_u(&b, 1, 1); /* MSG_OPS */
	op_encode(&b, bad, 2);
	repl_deliver(nodes[0].repl, 2, b.data, b.len);
	/* A row: clock near the top, final, one stream held up to 2^64 - 1. */
	b.len = 0;
	op_buf_put_u(&b, REPL_WIRE_VERSION, 1);
	op_buf_put_u(&b, 2, 1); /* MSG_ROW */
	op_buf_put_u(&b, UINT64_MAX - 3, 8);
	op_buf_put_u(&b, 1, 1);
	op_buf_put_u(&b, 1, 4);
	op_buf_put_u(&b, N, 1);
	for (uint32_t id = 1; id <= N; id++)
		op_buf_put_u(&b, id, 4);
	op_buf_put_u(&b, 2, 4);
	op_buf_put_u(&b, 0x7777, 8);
	op_buf_put_u(&b, 1, 4);
	op_buf_put_u(&b, 1, 4);
	op_buf_put_u(&b, 1, 8);
	op_buf_put_u(&b, UINT64_MAX, 8);
	repl_deliver(nodes[0].repl, 2, b.data, b.len);
	op_buf_free(&b);
	run(ALL);
	size_t i;
	CHECK(!find(1, "huge lts", &i) && !find(1, "huge seq", &i));
	say(1, "after");
	run(ALL);
	CHECK(lts_of(1, "after") > 0 && lts_of(1, "after") < MS(1000) + 10);
	check_converged();
	teardown();
}

/* A member that sends ops of another replica's stream at seqs nobody
 * showed in a row (the next seqs of replica 3) is refused everywhere, so
 * replica 3's real ops at those seqs are not shadowed; resends of what a
 * row shows still go through (a replica that missed ops catches up). */
TEST(an_op_of_another_stream_is_taken_only_as_a_resend)
{
	setup();
	view(ALL);
	run(ALL);
	say(3, "first");
	run(ALL);
	struct op forged[8];
	for (int i = 0; i < 8; i++) {
		memset(&forged[i], 0, sizeof forged[i]);
		forged[i].stream = *repl_stream(nodes[2].repl);
		forged[i].seq = (uint64_t)i + 1;
		forged[i].lts = MS(1000) + 1;
		forged[i].kind = OP_MSG;
		forged[i].target = "#room";
		forged[i].author = "mallory";
		forged[i].body = "forged";
		forged[i].ref = forged[i].account = "";
	}
	struct op_buf b = {0};
	op_buf_put_u(&b, REPL_WIRE_VERSION, 1);
	op_buf_put_u(&b, 1, 1); /* MSG_OPS */
	op_encode(&b, forged, 8);
	for (int k = 0; k < N; k++)
		repl_deliver(nodes[k].repl, 2, b.data, b.len);
	op_buf_free(&b);
	run(ALL);
	say(3, "second");
	say(3, "third");
	run(ALL);
	size_t i;
	for (uint32_t id = 1; id <= N; id++)
		CHECK(!find(id, "forged", &i) && find(id, "second", &i) && find(id, "third", &i));
	/* Replica 1 misses two lines of 3; in the next view 2 resends them. */
	say(3, "missed one");
	say(3, "missed two");
	run(R(2) | R(3));
	CHECK(!find(1, "missed one", &i));
	view(ALL);
	run(ALL);
	CHECK(find(1, "missed one", &i) && find(1, "missed two", &i));
	check_converged();
	teardown();
}

/* Replica 1 misses lines g0..g9 of replica 3 (in a view without it), then
 * all three meet again: the gap's resender is 2. */
static void miss_ten(const char *prefix)
{
	view(R(2) | R(3));
	run(R(2) | R(3));
	for (int i = 0; i < 10; i++) {
		char text[16];
		snprintf(text, sizeof text, "%s%d", prefix, i);
		say(3, text);
	}
	run(R(2) | R(3));
	view(ALL);
	run(ALL);
}

/* Whether replica id holds lines prefix0..prefix9. */
static int has_ten(uint32_t id, const char *prefix)
{
	size_t at;
	int all = 1;
	for (int i = 0; i < 10; i++) {
		char text[16];
		snprintf(text, sizeof text, "%s%d", prefix, i);
		all &= find(id, text, &at);
	}
	return all;
}

TEST(a_long_gap_goes_to_its_one_lacker_over_a_direct_link)
{
	setup_with(1);
	view(ALL);
	run(ALL);
	/* Taken: one batch from 2 to 1, nothing multicast for it. */
	miss_ten("a");
	CHECK_EQ_INT((int)nsent, 1);
	CHECK(sent_direct[0].sender == 2 && sent_to[0] == 1);
	CHECK(!has_ten(1, "a") && repl_syncing(nodes[1].repl));
	CHECK_EQ_INT(repl_direct_deliver(nodes[0].repl, 2, sent_direct[0].data, sent_direct[0].len), 0);
	repl_direct_answer(nodes[1].repl, 1, 1);
	run(ALL);
	CHECK(has_ten(1, "a") && !repl_syncing(nodes[1].repl));
	check_converged();
	/* Refused (the receiver's answer): multicast instead. */
	drop_direct();
	miss_ten("b");
	CHECK_EQ_INT((int)nsent, 1);
	repl_direct_answer(nodes[1].repl, 1, 0);
	run(ALL);
	CHECK(has_ten(1, "b") && !repl_syncing(nodes[1].repl));
	check_converged();
	/* The receiver refuses what is not ops, and ops from a replica that is
	 * not in its view (this batch is then sent again in the next view). */
	drop_direct();
	CHECK_EQ_INT(repl_direct_deliver(nodes[0].repl, 2, "xx", 2), -1);
	miss_ten("c");
	CHECK_EQ_INT((int)nsent, 1);
	view(R(1) | R(3));
	CHECK_EQ_INT(repl_direct_deliver(nodes[0].repl, 2, sent_direct[0].data, sent_direct[0].len), -1);
	repl_direct_answer(nodes[1].repl, 1, 0);
	CHECK(!has_ten(1, "c"));
	view(ALL);
	run(ALL);
	CHECK_EQ_INT((int)nsent, 2);
	CHECK_EQ_INT(repl_direct_deliver(nodes[0].repl, 2, sent_direct[1].data, sent_direct[1].len), 0);
	repl_direct_answer(nodes[1].repl, 1, 1);
	run(ALL);
	CHECK(has_ten(1, "c") && !repl_syncing(nodes[1].repl));
	check_converged();
	/* Lost with the link: multicast too. */
	drop_direct();
	miss_ten("d");
	CHECK_EQ_INT((int)nsent, 1);
	repl_direct_lost(nodes[1].repl, 1);
	run(ALL);
	CHECK(has_ten(1, "d") && !repl_syncing(nodes[1].repl));
	check_converged();
	teardown();
}

int main(void)
{
	log_set_level(LOG_ERROR + 1);
	RUN(delivered_op_keeps_its_origin_lts);
	RUN(a_clock_far_ahead_counts_as_the_skew_bound);
	RUN(a_hole_before_the_origins_own_op_does_not_split_the_order);
	RUN(an_empty_replica_alone_stamps_by_its_wall_clock);
	RUN(numbers_near_the_top_are_refused);
	RUN(an_op_of_another_stream_is_taken_only_as_a_resend);
	RUN(a_long_gap_goes_to_its_one_lacker_over_a_direct_link);
	return CHECK_DONE();
}
