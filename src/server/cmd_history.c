/*
 * cmd_history.c: CHATHISTORY (IRCv3 draft/chathistory): LATEST, BEFORE,
 * AFTER, AROUND, BETWEEN and TARGETS over rooms and direct conversations,
 * with msgid= and timestamp= references; LATEST, BEFORE and AFTER over the
 * asking user's &timeline. Limits above CHATHISTORY_MAX are served as
 * CHATHISTORY_MAX.
 *
 * Rooms and conversations are read from the store (its message index) by a
 * select job behind the writes queued before it; the session waits (its
 * next lines are not read) until the answer is sent, with the command's
 * label. Who may read what is decided here first, from the chat state.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* Parses a reference ("msgid=...", "timestamp=..." or, if star_ok, "*").
 * Returns 1 for "*", 0 for a reference in *a, -1 if invalid. */
static int parse_ref(const char *s, struct store_anchor *a, int star_ok)
{
	memset(a, 0, sizeof *a);
	if (star_ok && strcmp(s, "*") == 0)
		return 1;
	if (strncmp(s, "msgid=", 6) == 0 && s[6]) {
		a->msgid = s + 6;
		return 0;
	}
	if (strncmp(s, "timestamp=", 10) == 0 && parse_server_time(s + 10, &a->ms) == 0)
		return 0;
	return -1;
}

static long parse_limit(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < 0)
		return -1;
	return v > CHATHISTORY_MAX ? CHATHISTORY_MAX : v;
}

/* The history s may read for target, or NULL (answered with FAIL). *empty
 * is set when the target is valid but has no history yet; *key gets the
 * history's key in the store (a new string) when one is returned. */
static struct chat_history *history_for(struct session *s, const char *sub, const char *target,
					int *empty, char **key)
{
	struct chat *chat = s->srv->chat;
	*empty = 0;
	if (target[0] == '#') {
		struct chat_room *room = chat_room_find(chat, target);
		if (room && !room_history_open(s->srv, room->name, s->user)) {
			reply_fail(s, "CHATHISTORY", "INVALID_TARGET", target,
				   "This room's history is for its members");
			return NULL;
		}
		if (room) {
			*key = chat_room_history_key(room->name);
			return room->history;
		}
		if (presence_room(s->srv, target)) {
			*empty = 1;
			return NULL;
		}
	} else if (chat_nick_valid(target) && (chat_user_known(chat, target) || presence_user(s->srv, target))) {
		if (!dm_history_allowed(s)) {
			reply_fail(s, "CHATHISTORY", "ACCOUNT_REQUIRED", target,
				   "Log in to read direct messages");
			return NULL;
		}
		char *me = session_person(s), *them = chat_person_of_name(chat, target);
		struct chat_history *h = chat_dm_history(chat, me, them);
		if (h)
			*key = chat_dm_history_key(me, them);
		free(me);
		free(them);
		*empty = h == NULL;
		return h;
	}
	char ctx[600]; /* the spec's context: <subcommand> <target> */
	snprintf(ctx, sizeof ctx, "%s %s", sub, target);
	reply_fail(s, "CHATHISTORY", "INVALID_TARGET", ctx, "No such room or user");
	return NULL;
}

/* A selection waiting for the store. */
struct history_wait {
	struct store_wait wait;
	char *target;   /* as the client named it: the batch's target */
	char *sub;
};

/* The store's answer: the batch (empty for an unknown msgid), or FAIL. */
static void history_answered(void *arg, int status, struct store_msgs *found)
{
	struct history_wait *w = arg;
	struct capture cap;
	struct session *s = store_wait_answer(&w->wait, &cap);
	if (s) {
		if (status == STORE_OK || status == STORE_NOTFOUND) {
			fanout_stored(s, w->target, found, UINT64_MAX);
		} else {
			char ctx[600];
			snprintf(ctx, sizeof ctx, "%s %s", w->sub, w->target);
			reply_fail(s, "CHATHISTORY", "MESSAGE_ERROR", ctx,
				   "Messages could not be retrieved: this replica cannot read its disk");
		}
		store_wait_end(s, &cap);
	}
	store_wait_free(&w->wait);
	free(w->target);
	free(w->sub);
	free(w);
}

/* Makes s wait for a store answer to the command it runs: the returned
 * wait gets the answer (history_answered). */
static struct history_wait *wait_for_store(struct session *s, const char *sub, const char *target)
{
	struct history_wait *w = xcalloc(1, sizeof *w);
	store_wait_begin(s, &w->wait);
	w->target = xstrdup(target);
	w->sub = xstrdup(sub);
	return w;
}

/* The feeds of a timeline, gathered for the store. */
struct feed_list {
	struct store_feed *v;
	size_t n, cap;
};

static void feed_add(const char *hist, const struct op_key *from, void *arg)
{
	struct feed_list *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n].hist = xstrdup(hist);
	l->v[l->n++].from = *from;
}

void history_read_timeline(struct server *srv, const char *person, const struct store_anchor *after,
			   const struct store_anchor *before, size_t limit, int from_end,
			   store_select_fn done, void *arg)
{
	struct feed_list feeds = {0};
	chat_timeline_feeds(srv->chat, person, feed_add, &feeds);
	store_writer_timeline(srv->writer, feeds.v, feeds.n, after, before, limit, from_end, done, arg);
	for (size_t i = 0; i < feeds.n; i++)
		free(feeds.v[i].hist);
	free(feeds.v);
}

/* LATEST, BEFORE or AFTER (sub) over s's own timeline, from the store; a is
 * the reference, NULL for LATEST's "*". The timeline is no single history:
 * AROUND and BETWEEN are refused. A msgid that is no post gives an empty
 * batch. */
static void timeline_select(struct session *s, const char *sub, const struct store_anchor *a, long limit)
{
	int before = strcasecmp(sub, "BEFORE") == 0, after = strcasecmp(sub, "AFTER") == 0;
	if (!before && !after && strcasecmp(sub, "LATEST") != 0) {
		reply_fail(s, "CHATHISTORY", "INVALID_PARAMS", sub, "&timeline supports LATEST, BEFORE and AFTER");
		return;
	}
	char *me = session_person(s);
	history_read_timeline(s->srv, me, a && !before ? a : NULL, a && before ? a : NULL, (size_t)limit,
			      !after, history_answered, wait_for_store(s, sub, CHAT_TIMELINE));
	free(me);
}

/* The subcommand sub as a store selection, or -1. */
static int selection_of(const char *sub)
{
	static const char *const names[] = {"LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"};
	for (int i = 0; i < 5; i++)
		if (strcasecmp(sub, names[i]) == 0)
			return i;
	return -1;
}

static void history_select(struct session *s, struct irc_msg *m)
{
	const char *sub = m->params[0], *target = m->params[1];
	struct store_anchor a, b = {NULL, 0};
	int empty, need = strcasecmp(sub, "BETWEEN") == 0 ? 5 : 4;
	long limit;

	if ((int)m->nparams < need) {
		reply_fail(s, "CHATHISTORY", "NEED_MORE_PARAMS", sub, "Missing parameters");
		return;
	}
	int latest = strcasecmp(sub, "LATEST") == 0;
	int ra = parse_ref(m->params[2], &a, latest);
	int rb = need == 5 ? parse_ref(m->params[3], &b, 0) : 0;
	limit = parse_limit(m->params[need - 1]);
	if (ra < 0 || rb < 0 || limit < 0) {
		reply_fail(s, "CHATHISTORY", "INVALID_PARAMS", sub, "Invalid reference or limit");
		return;
	}
	if (is_timeline(target)) {
		timeline_select(s, sub, ra == 1 ? NULL : &a, limit);
		return;
	}
	char *key = NULL;
	struct chat_history *h = history_for(s, sub, target, &empty, &key);
	if (!h) {
		if (empty) /* a valid question with no answer yet: an empty batch */
			fanout_history(s, target, NULL, 0);
		return;
	}
	store_writer_select(s->srv->writer, key, (enum store_select)selection_of(sub),
			    latest && ra == 1 ? NULL : &a, &b, (size_t)limit, history_answered,
			    wait_for_store(s, sub, target));
	free(key);
}

/* ---- TARGETS ---- */

struct target {
	char *name;
	int64_t latest_ms;
};

struct targets {
	struct target *v;
	size_t n, cap;
	int64_t from, to;
};

static void targets_add(struct targets *t, const char *name, struct chat_history *h)
{
	struct op_key last;
	if (!h || chat_history_last(h, &last) < 0)
		return;
	int64_t ms = op_key_time_ms(&last);
	if (ms <= t->from || ms >= t->to)
		return;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = xrealloc(t->v, t->cap * sizeof *t->v);
	}
	t->v[t->n].name = xstrdup(name);
	t->v[t->n].latest_ms = ms;
	t->n++;
}

static void targets_add_dm(const char *peer, struct chat_history *h, void *arg)
{
	targets_add(arg, peer, h);
}

static int by_time(const void *a, const void *b)
{
	const struct target *x = a, *y = b;
	return x->latest_ms < y->latest_ms ? -1 : x->latest_ms > y->latest_ms;
}

static void history_targets(struct session *s, struct irc_msg *m)
{
	struct store_anchor a, b;
	struct targets t = {0};
	char id[16], when[32];
	struct line_tags lt = LINE_TAGS_INIT;

	if (m->nparams < 4) {
		reply_fail(s, "CHATHISTORY", "NEED_MORE_PARAMS", "TARGETS", "Missing parameters");
		return;
	}
	long limit = parse_limit(m->params[3]);
	if (parse_ref(m->params[1], &a, 0) || parse_ref(m->params[2], &b, 0) || a.msgid || b.msgid ||
	    limit < 0) {
		reply_fail(s, "CHATHISTORY", "INVALID_PARAMS", "TARGETS", "TARGETS takes two timestamps and a limit");
		return;
	}
	t.from = a.ms < b.ms ? a.ms : b.ms;
	t.to = a.ms < b.ms ? b.ms : a.ms;
	struct membership *mm, *tmp;
	HASH_ITER(hh_user, s->user->rooms, mm, tmp) {
		struct chat_room *room = chat_room_find(s->srv->chat, mm->room->name);
		targets_add(&t, mm->room->name, room ? room->history : NULL);
	}
	if (dm_history_allowed(s)) {
		char *me = session_person(s);
		chat_dm_each(s->srv->chat, me, targets_add_dm, &t);
		free(me);
	}
	if (t.n) /* t.v is NULL when empty: qsort may not be given NULL */
		qsort(t.v, t.n, sizeof *t.v, by_time);

	int batched = (s->caps & CAP_BATCH) != 0;
	if (batched) {
		session_batch_id(s, id, sizeof id);
		reply_line(s, &lt, s->srv->name, "BATCH +%s draft/chathistory-targets", id);
	}
	for (size_t i = 0; i < t.n; i++) {
		struct line_tags e = LINE_TAGS_INIT;
		e.batch = batched ? id : NULL;
		if ((long)i < limit) {
			format_server_time(t.v[i].latest_ms, when, sizeof when);
			reply_line(s, &e, s->srv->name, "CHATHISTORY TARGETS %s %s", t.v[i].name, when);
		}
		free(t.v[i].name);
	}
	if (batched)
		reply_line(s, &lt, s->srv->name, "BATCH -%s", id);
	free(t.v);
}

void cmd_chathistory(struct session *s, struct irc_msg *m)
{
	const char *sub = m->params[0];
	if (strcasecmp(sub, "TARGETS") == 0)
		history_targets(s, m);
	else if (selection_of(sub) < 0)
		reply_fail(s, "CHATHISTORY", "INVALID_PARAMS", sub, "Unknown subcommand");
	else if (m->nparams < 2)
		reply_fail(s, "CHATHISTORY", "NEED_MORE_PARAMS", sub, "Missing parameters");
	else
		history_select(s, m);
}
