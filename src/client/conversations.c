/*
 * conversations.c: `d`, your direct conversations, the latest first, each
 * with how many of its lines are new: lines from the other person after your
 * own last line in it and after the last of its lines this client showed
 * you (as a note, or on screen with `d <user>`). The list comes from
 * CHATHISTORY TARGETS (conversations need an account: a guest's are not
 * kept), each conversation's latest lines from CHATHISTORY LATEST, one
 * request each for the CONVERSATIONS_SHOWN latest conversations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client/client.h"

#define CONVERSATIONS_SHOWN 20
#define CONVERSATION_LINES 50  /* lines read of each to count the new ones */

struct seen_mark {
	char *peer;
	int64_t ms;              /* the time of the latest of its lines shown */
};

struct conversation {
	char *peer;
	int64_t latest_ms;
	size_t fresh;            /* its new lines */
};

/* The `d` under way: what TARGETS listed, and the reads still out. */
struct listing {
	struct conversation *v;
	size_t n;
	size_t pending;
	unsigned token;
};

static struct seen_mark *mark_of(struct client *c, const char *peer)
{
	for (size_t i = 0; i < c->nseen; i++)
		if (strcasecmp(c->seen[i].peer, peer) == 0)
			return &c->seen[i];
	return NULL;
}

void conversations_seen(struct client *c, const char *peer, int64_t ms)
{
	struct seen_mark *m = mark_of(c, peer);
	if (!m) {
		c->seen = xrealloc(c->seen, (c->nseen + 1) * sizeof *c->seen);
		m = &c->seen[c->nseen++];
		m->peer = xstrdup(peer);
		m->ms = 0;
	}
	if (ms > m->ms)
		m->ms = ms;
}

static void listing_free(struct listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].peer);
	free(l->v);
	free(l);
}

/* Every read is in: the page. */
static void show(struct client *c)
{
	struct listing *l = c->listing;
	char **lines = xcalloc(l->n + 1, sizeof *lines);
	for (size_t i = 0; i < l->n; i++) {
		const struct conversation *cv = &l->v[i];
		time_t t = (time_t)(cv->latest_ms / 1000);
		struct tm tm;
		char when[32];
		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		lines[i] = cv->fresh ? xasprintf("%s: %zu new, last %s", cv->peer, cv->fresh, when)
				     : xasprintf("%s: last %s", cv->peer, when);
	}
	c->ui->page(c, "conversations", lines, l->n);
	for (size_t i = 0; i < l->n; i++)
		free(lines[i]);
	free(lines);
	unsigned token = l->token;
	listing_free(l);
	c->listing = NULL;
	client_unwait(c, token);
}

/* A conversation's latest lines: counts the new ones. */
static void latest_lines(struct client *c, struct request *q, struct room_msg *lines, size_t n)
{
	struct listing *l = c->listing;
	if (!l || (size_t)q->page >= l->n)
		return;
	struct conversation *cv = &l->v[q->page];
	const struct seen_mark *m = mark_of(c, cv->peer);
	int64_t after = m ? m->ms : 0;
	for (size_t i = 0; i < n; i++)
		if (session_is_me(c, lines[i].author) && lines[i].time_ms > after)
			after = lines[i].time_ms;
	for (size_t i = 0; i < n; i++)
		cv->fresh += strcasecmp(lines[i].author, cv->peer) == 0 && lines[i].time_ms > after;
}

static void latest_done(struct client *c, struct request *q)
{
	(void)q;
	if (c->listing && --c->listing->pending == 0)
		show(c);
}

/* A TARGETS line: a conversation (rooms are left out). */
static int target_line(struct client *c, struct request *q, struct irc_msg *m)
{
	(void)c;
	if (strcasecmp(m->command, "CHATHISTORY") == 0 && m->nparams >= 3 &&
	    strcasecmp(m->params[0], "TARGETS") == 0 && !is_room_name(m->params[1])) {
		char line[256];
		snprintf(line, sizeof line, "%s %s", m->params[1], m->params[2]);
		request_keep_line(q, line);
		return 1;
	}
	if (request_is_error(m))
		q->failed = 1;
	return 0;
}

static void targets_done(struct client *c, struct request *q)
{
	struct listing *l = xcalloc(1, sizeof *l);
	l->token = q->token;
	size_t from = q->nlines > CONVERSATIONS_SHOWN ? q->nlines - CONVERSATIONS_SHOWN : 0;
	l->v = xcalloc(q->nlines - from + 1, sizeof *l->v);
	for (size_t i = q->nlines; i-- > from;) { /* TARGETS is oldest first: the latest first */
		char peer[128], when[64];
		if (sscanf(q->lines[i], "%127s %63s", peer, when) != 2)
			continue;
		struct conversation *cv = &l->v[l->n++];
		cv->peer = xstrdup(peer);
		if (parse_server_time(when, &cv->latest_ms) < 0)
			cv->latest_ms = 0;
	}
	listing_free(c->listing);
	c->listing = l;
	if (!l->n) {
		if (q->failed)
			client_note(c, NOTE_ERROR, "d: this replica cannot list conversations");
		else
			client_note(c, NOTE_INFO, "d: no conversations yet (m <user> <text> starts one; "
						  "a guest's are not kept: reg makes your name an account)");
		c->listing = NULL;
		listing_free(l);
		client_unwait(c, q->token);
		return;
	}
	l->pending = l->n;
	for (size_t i = 0; i < l->n; i++) {
		struct request *r = request_new(c, 0);
		r->page = (int)i;
		r->on_history = latest_lines;
		r->on_done = latest_done;
		request_send(c, r, NULL, "CHATHISTORY LATEST %s * %d", l->v[i].peer, CONVERSATION_LINES);
	}
}

void conversations_list(struct client *c, unsigned token)
{
	char now[40];
	struct request *q = request_new(c, token);
	format_server_time(wall_ms() + 86400000, now, sizeof now);
	q->on_line = target_line;
	q->on_done = targets_done;
	request_send(c, q, NULL, "CHATHISTORY TARGETS timestamp=1970-01-01T00:00:00.001Z timestamp=%s 100", now);
}

void conversations_free(struct client *c)
{
	for (size_t i = 0; i < c->nseen; i++)
		free(c->seen[i].peer);
	free(c->seen);
	listing_free(c->listing);
}
