/*
 * cmd_history.c: CHATHISTORY (IRCv3 draft/chathistory): LATEST, BEFORE,
 * AFTER, AROUND, BETWEEN and TARGETS over rooms and direct conversations,
 * with msgid= and timestamp= references; LATEST, BEFORE and AFTER over the
 * asking user's &timeline. Limits above CHATHISTORY_MAX are served as
 * CHATHISTORY_MAX.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* Parses a reference ("msgid=...", "timestamp=..." or, if star_ok, "*").
 * Returns 1 for "*", 0 for a reference in *a, -1 if invalid. */
static int parse_ref(const char *s, struct chat_anchor *a, int star_ok)
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
 * is set when the target is valid but has no history yet. */
static struct chat_history *history_for(struct session *s, const char *sub, const char *target,
					int *empty)
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
		if (room)
			return room->history;
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

/* LATEST, BEFORE or AFTER (sub) over s's own timeline; a is the reference,
 * NULL for LATEST's "*". The timeline is no single history: AROUND and
 * BETWEEN are refused. A msgid that is no post gives an empty batch. */
static void timeline_select(struct session *s, const char *sub, const struct chat_anchor *a, long limit)
{
	int before = strcasecmp(sub, "BEFORE") == 0, after = strcasecmp(sub, "AFTER") == 0;
	if (!before && !after && strcasecmp(sub, "LATEST") != 0) {
		reply_fail(s, "CHATHISTORY", "INVALID_PARAMS", sub, "&timeline supports LATEST, BEFORE and AFTER");
		return;
	}
	const struct chat_msg **out = xcalloc((size_t)limit + 1, sizeof *out);
	char *me = session_person(s);
	long n = chat_timeline_select(s->srv->chat, me, before ? NULL : a, before ? a : NULL,
				      (size_t)limit, !after, out);
	free(me);
	fanout_history(s, CHAT_TIMELINE, out, n > 0 ? (size_t)n : 0);
	free(out);
}

static void history_select(struct session *s, struct irc_msg *m)
{
	const char *sub = m->params[0], *target = m->params[1];
	struct chat_anchor a, b;
	int empty, need = strcasecmp(sub, "BETWEEN") == 0 ? 5 : 4;
	long limit, n = 0;

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
	struct chat_history *h = history_for(s, sub, target, &empty);
	if (!h && !empty)
		return;
	const struct chat_msg **out = xcalloc((size_t)limit + 1, sizeof *out);
	if (h) {
		if (latest)
			n = chat_select_latest(h, ra == 1 ? NULL : &a, (size_t)limit, out);
		else if (strcasecmp(sub, "BEFORE") == 0)
			n = chat_select_before(h, &a, (size_t)limit, out);
		else if (strcasecmp(sub, "AFTER") == 0)
			n = chat_select_after(h, &a, (size_t)limit, out);
		else if (strcasecmp(sub, "AROUND") == 0)
			n = chat_select_around(h, &a, (size_t)limit, out);
		else
			n = chat_select_between(h, &a, &b, (size_t)limit, out);
	}
	/* An unknown msgid is a valid question with no answer: an empty batch. */
	fanout_history(s, target, out, n > 0 ? (size_t)n : 0);
	free(out);
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
	size_t len = h ? chat_history_len(h) : 0;
	if (!len)
		return;
	int64_t ms = op_time_ms(&chat_history_at(h, len - 1)->op);
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
	struct chat_anchor a, b;
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
	static const char *subs[] = {"LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"};
	const char *sub = m->params[0];
	if (strcasecmp(sub, "TARGETS") == 0) {
		history_targets(s, m);
		return;
	}
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		if (strcasecmp(sub, subs[i]) == 0) {
			if (m->nparams < 2) {
				reply_fail(s, "CHATHISTORY", "NEED_MORE_PARAMS", sub, "Missing parameters");
				return;
			}
			history_select(s, m);
			return;
		}
	reply_fail(s, "CHATHISTORY", "INVALID_PARAMS", sub, "Unknown subcommand");
}
