/*
 * session.c: the client's IRC session with one replica at a time.
 *
 * Connecting: TCP, then CAP LS 302 and CAP REQ of the capabilities chorus
 * needs (message-tags server-time echo-message batch labeled-response
 * draft/chathistory), then CAP END. Logging in: NICK/USER, done at 001.
 * Joining: a labeled JOIN; the room switches when our JOIN comes back (or
 * at the ACK if we were in already), the old room is PARTed, and history
 * fills the screen (history.c). The timeline is joined the same way
 * (JOIN &timeline); its answer carries its latest posts.
 *
 * Failover: when the link breaks (EOF, error, or silence past
 * KEEPALIVE_DEAD_MS), the user is told at once and the client tries the
 * other replicas of the list in round robin, starting after the one that
 * went away and trying it last, round after round with a pause, until one
 * answers; it then logs in again, rejoins the room and fills the gap. A
 * first `c` tries the named replica, then the others, once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

/* What the client asks for: the capabilities it reads lines with. */
#define WANTED_CAPS (CAP_MESSAGE_TAGS | CAP_SERVER_TIME | CAP_ECHO_MESSAGE | CAP_BATCH | \
		     CAP_LABELED_RESPONSE | CAP_CHATHISTORY)

static void attempt(struct client *c, long i);

int session_port(const struct client *c, const struct replica *r)
{
	return c->tls && r->tls_port ? r->tls_port : r->port;
}

static const struct replica *current(const struct client *c)
{
	return c->replica >= 0 && (size_t)c->replica < c->replicas.n ? &c->replicas.v[c->replica] : NULL;
}

int session_is_me(const struct client *c, const char *nick)
{
	return c->nick && nick && strcasecmp(c->nick, nick) == 0;
}

void session_send(struct client *c, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	if (!c->conn || c->link < LINK_NEGOTIATING)
		return;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	conn_send(c->conn, b.data);
	buf_free(&b);
}

/* ---- connecting and failing over ---- */

static void on_connected(struct conn *cn, void *arg)
{
	struct client *c = arg;
	(void)cn;
	c->link = LINK_NEGOTIATING;
	c->last_rx_ms = wall_ms();
	c->ping_sent = 0;
	free(c->ls_caps);
	c->ls_caps = NULL;
	session_send(c, "CAP LS 302");
	client_dirty(c);
}

static void on_line(struct conn *cn, char *line, size_t len, void *arg)
{
	struct client *c = arg;
	struct irc_msg m;
	(void)cn;
	c->last_rx_ms = wall_ms();
	c->ping_sent = 0;
	if (irc_parse(line, len, &m) == IRC_OK)
		requests_line(c, &m);
}

/* Forgets the link: requests, batches, membership. */
static void drop_link(struct client *c)
{
	conn_close(c->conn, 0);
	c->conn = NULL;
	c->link = LINK_DOWN;
	c->joined = 0;
	c->caps_acked = 0;
	free(c->pending_join);
	c->pending_join = NULL;
	requests_drop(c);
	client_dirty(c);
}

static void on_retry(uv_timer_t *t)
{
	struct client *c = t->data;
	c->tried = 0;
	c->rounds++;
	attempt(c, c->round_start);
}

/* This round tried every replica: pause and start again, or give up. */
static void round_failed(struct client *c)
{
	if (!c->keep_trying) {
		client_note(c, NOTE_ERROR, "no replica answered: c <i|host:port> to try again");
		client_unwait(c, c->link_token);
		return;
	}
	if (c->rounds == 0)
		client_note(c, NOTE_ERROR, "no replica answers yet: trying again every %d ms",
			    RETRY_PAUSE_MS);
	uv_timer_start(&c->retry, on_retry, RETRY_PAUSE_MS, 0);
}

static void connect_failed(struct client *c, const char *reason)
{
	const struct replica *r = current(c);
	drop_link(c);
	if (c->rounds == 0) /* later rounds are quiet: the status line says it */
		client_note(c, NOTE_ERROR, "replica %u (%s:%d) is unreachable: %s", r->id, r->host,
			    session_port(c, r), reason);
	if (++c->tried >= c->replicas.n) {
		round_failed(c);
		return;
	}
	long next = (c->round_start + (long)c->tried) % (long)c->replicas.n;
	if (c->rounds == 0)
		client_note(c, NOTE_INFO, "trying replica %u (%s:%d)", c->replicas.v[next].id,
			    c->replicas.v[next].host, c->replicas.v[next].port);
	attempt(c, next);
}

static void on_closed(struct conn *cn, const char *reason, void *arg)
{
	struct client *c = arg;
	(void)cn;
	if (c->link == LINK_CONNECTING)
		connect_failed(c, reason);
	else
		session_lost(c, reason);
}

static const struct conn_events conn_events = {on_connected, on_line, on_closed};

static void attempt(struct client *c, long i)
{
	const struct replica *r = &c->replicas.v[i];
	c->replica = i;
	c->link = LINK_CONNECTING;
	c->conn = conn_open(c->loop, r->host, session_port(c, r), c->tls, &conn_events, c);
	client_dirty(c);
}

void session_connect(struct client *c, long i, unsigned token)
{
	if (c->conn) {
		session_send(c, "QUIT :switching replica");
		conn_close(c->conn, 1);
		c->conn = NULL;
	}
	drop_link(c);
	uv_timer_stop(&c->retry);
	c->keep_trying = 0;
	c->round_start = i;
	c->tried = 0;
	c->rounds = 0;
	c->link_token = token;
	attempt(c, i);
}

void session_bounced(struct client *c, const char *spec, const char *why)
{
	long i = replicas_add(&c->replicas, spec);
	if (i < 0 || i == c->replica)
		return;
	c->bounce = i;
	client_note(c, NOTE_INFO, "%s: going to replica %u (%s)", why, c->replicas.v[i].id, spec);
}

void session_lost(struct client *c, const char *reason)
{
	const struct replica *r = current(c);
	if (!c->conn || !r)
		return;
	long gone = c->replica;
	if (c->bounce >= 0) { /* the replica named another: straight there */
		long to = c->bounce;
		c->bounce = -1;
		drop_link(c);
		int wanted = c->session_wanted && !c->quitting;
		/* a session was up: hold the commands until it is back there, as
		 * after a lost link; else the `c` that connected waits on */
		session_connect(c, to, wanted ? client_wait(c, "moving", 0) : c->link_token);
		c->keep_trying = wanted;
		return;
	}
	drop_link(c);
	client_note(c, NOTE_ERROR, "replica %u (%s:%d) went away: %s", r->id, r->host, session_port(c, r), reason);
	if (!c->session_wanted || c->quitting) { /* it never got as far as a session */
		client_unwait(c, c->link_token);
		return;
	}
	c->keep_trying = 1;
	c->round_start = (gone + 1) % (long)c->replicas.n;
	c->tried = 0;
	c->rounds = 0;
	if (c->noutbox)
		client_note(c, NOTE_INFO, "%zu line(s) not yet answered: they go again once reconnected",
			    c->noutbox);
	else if (c->waiting && c->waiting != c->link_token)
		client_note(c, NOTE_ERROR, "%s: no answer before the replica went away", c->wait_what);
	c->link_token = client_wait(c, "reconnecting", 0);
	const struct replica *next = &c->replicas.v[c->round_start];
	client_note(c, NOTE_INFO, "reconnecting to replica %u (%s:%d)", next->id, next->host,
		    session_port(c, next));
	attempt(c, c->round_start);
}

void session_majority_refused(struct client *c, const char *text)
{
	unsigned id;
	char where[REPLICA_SPEC_MAX];
	if (replicas_named(text, "reconnect to ", &id, where) < 0 || c->move_to >= 0)
		return;
	long i = -1;
	for (size_t k = 0; k < c->replicas.n && i < 0; k++)
		if (c->replicas.v[k].id == id)
			i = (long)k;
	if (i < 0)
		i = replicas_add(&c->replicas, where);
	if (i < 0 || i == c->replica)
		return;
	if (c->stay) {
		client_note(c, NOTE_INFO, "this replica is cut off from the majority; staying (--stay): "
					  "c %u moves to replica %u", c->replicas.v[i].id, c->replicas.v[i].id);
		return;
	}
	c->move_to = i;
	client_pump(c);
}

void session_move_now(struct client *c)
{
	long i = c->move_to;
	c->move_to = -1;
	if (i < 0 || c->quitting)
		return;
	const struct replica *r = &c->replicas.v[i];
	client_note(c, NOTE_INFO, "this replica is cut off from the majority: moving to replica %u (%s:%d)", r->id,
		    r->host, session_port(c, r));
	session_connect(c, i, client_wait(c, "moving", 0));
	c->keep_trying = 1; /* as after a lost link: until one answers */
}

void session_close(struct client *c)
{
	if (c->conn) {
		session_send(c, "QUIT :bye");
		conn_close(c->conn, 1);
		c->conn = NULL;
	}
	drop_link(c);
	uv_close((uv_handle_t *)&c->retry, NULL);
	uv_close((uv_handle_t *)&c->renick, NULL);
}

void session_tick(struct client *c)
{
	if (!c->conn || c->link < LINK_NEGOTIATING)
		return;
	int64_t idle = wall_ms() - c->last_rx_ms;
	if (idle > KEEPALIVE_DEAD_MS) {
		char why[64];
		snprintf(why, sizeof why, "no answer for %d s", KEEPALIVE_DEAD_MS / 1000);
		session_lost(c, why);
	} else if (idle > KEEPALIVE_IDLE_MS && !c->ping_sent) {
		session_send(c, "PING :keepalive");
		c->ping_sent = 1;
	}
}

void session_init(struct client *c)
{
	c->replica = -1;
	c->move_to = -1;
	c->bounce = -1;
	uv_timer_init(c->loop, &c->retry);
	c->retry.data = c;
	uv_timer_init(c->loop, &c->renick);
	c->renick.data = c;
}

/* ---- capabilities ---- */

/* The capability names offered in ls that we want, as "a b c"; bits in *bits. */
static void caps_to_request(const char *ls, struct buf *out, unsigned *bits)
{
	*bits = 0;
	for (const char *p = ls; *p;) {
		size_t len = strcspn(p, " "), name = strcspn(p, " =");
		*bits |= irc_cap_bit(p, name < len ? name : len) & WANTED_CAPS;
		p += len;
		while (*p == ' ')
			p++;
	}
	irc_cap_list(out, *bits, 0);
}

/* Capabilities are settled: log in again if we had a name, else done. */
static void link_ready(struct client *c)
{
	const struct replica *r = current(c);
	c->link = LINK_READY;
	c->session_wanted = 1;
	c->keep_trying = 0;
	client_note(c, NOTE_INFO, "connected to replica %u (%s:%d)", r->id, r->host, session_port(c, r));
	if (!(c->caps_acked & CAP_LABELED_RESPONSE) || !(c->caps_acked & CAP_CHATHISTORY))
		client_note(c, NOTE_ERROR, "this replica lacks labeled-response or draft/chathistory: "
					   "commands will not get their answers");
	c->relogin = c->nick != NULL;
	c->renick_tries = 0;
	if (c->nick)
		session_login(c, c->link_token);
	else
		client_unwait(c, c->link_token);
	client_dirty(c);
}

static void on_renick(uv_timer_t *t)
{
	struct client *c = t->data;
	if (c->link == LINK_READY && c->nick)
		session_send(c, "NICK %s", c->nick);
}

int session_name_in_use(struct client *c)
{
	if (!c->relogin || c->link != LINK_READY || c->renick_tries >= RENICK_TRIES)
		return 0;
	if (c->renick_tries++ == 0)
		client_note(c, NOTE_INFO, "%s is still online from the link that was lost: asking again", c->nick);
	uv_timer_start(&c->renick, on_renick, RENICK_PAUSE_MS, 0);
	return 1;
}

void session_cap(struct client *c, struct irc_msg *m)
{
	if (m->nparams < 3 || c->link != LINK_NEGOTIATING)
		return;
	const char *sub = m->params[1];
	if (strcasecmp(sub, "LS") == 0) {
		int more = m->nparams > 3 && strcmp(m->params[2], "*") == 0;
		struct buf ls = {0}, req = {0};
		unsigned bits;
		buf_printf(&ls, "%s%s%s", c->ls_caps ? c->ls_caps : "", c->ls_caps ? " " : "", msg_text(m));
		free(c->ls_caps);
		c->ls_caps = xstrdup(ls.data);
		buf_free(&ls);
		if (more)
			return;
		caps_to_request(c->ls_caps, &req, &bits);
		if (req.len) {
			session_send(c, "CAP REQ :%s", req.data);
		} else {
			session_send(c, "CAP END");
			link_ready(c);
		}
		buf_free(&req);
	} else if (strcasecmp(sub, "ACK") == 0 || strcasecmp(sub, "NAK") == 0) {
		struct buf req = {0};
		if (strcasecmp(sub, "ACK") == 0)
			caps_to_request(msg_text(m), &req, &c->caps_acked);
		buf_free(&req);
		session_send(c, "CAP END");
		link_ready(c);
	}
}

/* ---- logging in ---- */

void session_login(struct client *c, unsigned token)
{
	c->link_token = token;
	if (auth_login(c))
		return; /* NICK and USER follow the password's acceptance */
	session_send(c, "NICK %s", c->nick);
	session_send(c, "USER %s 0 * :%s", c->nick, c->nick);
}

/* The answer to the LINKS sent after a login: every line is ours. */
static int learn_line(struct client *c, struct request *q, struct irc_msg *m)
{
	unsigned id;
	char where[REPLICA_SPEC_MAX];
	if (strcmp(m->command, "364") == 0 && !strstr(msg_text(m), "(this replica)") && /* reached already */
	    replicas_named(msg_text(m), "", &id, where) == 0 && replicas_learn(&c->replicas, id, where) == 1)
		q->count++;
	return 1;
}

static void learn_done(struct client *c, struct request *q)
{
	if (q->count)
		client_note(c, NOTE_INFO, "%zu more replica(s) learned from this one: %zu known", q->count,
			    c->replicas.n);
}

/* Asks the replica for the replicas in its view, to know where to go if it
 * goes away (only the address it was given, say). */
static void learn_replicas(struct client *c)
{
	struct request *q = request_new(c, 0);
	q->on_line = learn_line;
	q->on_done = learn_done;
	request_send(c, q, NULL, "LINKS");
}

void session_registered(struct client *c, const char *nick)
{
	if (c->link != LINK_READY)
		return;
	c->link = LINK_REGISTERED;
	c->relogin = 0;
	free(c->nick);
	c->nick = xstrdup(nick);
	client_note(c, NOTE_INFO, "logged in as %s", nick);
	learn_replicas(c);
	if (c->room) {
		session_rejoin(c, c->link_token);
	} else {
		outbox_resend(c);
		client_unwait(c, c->link_token);
	}
	client_dirty(c);
}

void session_login_refused(struct client *c, const char *why)
{
	client_note(c, NOTE_ERROR, "name %s refused: %s", c->nick ? c->nick : "", why);
	free(c->nick);
	c->nick = NULL;
	client_unwait(c, c->link_token);
}

/* ---- rooms ---- */

/* Makes name the room on screen (keeping the lines if it is the same room)
 * and leaves the old one. */
static void switch_room(struct client *c, const char *name)
{
	free(c->pending_join);
	c->pending_join = NULL;
	if (c->room && strcasecmp(c->room->name, name) == 0) {
		free(c->room->name);
		c->room->name = xstrdup(name); /* the server's spelling */
	} else {
		if (c->room && c->joined && !c->room->conversation)
			session_send(c, "PART %s :switching room", c->room->name);
		room_free(c->room);
		c->room = room_new(name);
		if (c->room->timeline)
			client_note(c, NOTE_INFO, "your timeline: posts of the users you follow; "
						  "a line that is no command is a post; exit or j <room> leaves");
		else
			client_note(c, NOTE_INFO, "joined %s", name);
	}
	c->joined = 1;
	client_dirty(c);
}

void session_self_join(struct client *c, const char *room)
{
	if (c->pending_join && strcasecmp(c->pending_join, room) == 0)
		switch_room(c, room);
	else if (c->room && strcasecmp(c->room->name, room) == 0)
		c->joined = 1; /* put back by the server (another connection of ours) */
}

void session_self_part(struct client *c, const char *room, const char *why)
{
	if (!c->room || !c->joined || strcasecmp(c->room->name, room) != 0)
		return;
	c->joined = 0;
	client_note(c, NOTE_ERROR, "you are no longer in %s (%s): j %s to come back", room, why, room);
	client_dirty(c);
}

/* Our PART in the answer to a leave: ours, so no note of it. */
static int leave_line(struct client *c, struct request *q, struct irc_msg *m)
{
	(void)c;
	if (request_is_error(m))
		q->failed = 1;
	return strcasecmp(m->command, "PART") == 0;
}

static void leave_done(struct client *c, struct request *q)
{
	if (c->room && strcasecmp(c->room->name, q->room) == 0) {
		client_note(c, NOTE_INFO, "left %s%s", c->room->timeline ? "your timeline" : q->room,
			    c->room->timeline ? "" : ": j <room> to join one");
		room_free(c->room);
		c->room = NULL;
		c->joined = 0;
		client_dirty(c);
	}
	client_unwait(c, q->token);
}

void session_leave(struct client *c, unsigned token)
{
	if (c->room->conversation) { /* nothing to leave on the server */
		client_note(c, NOTE_INFO, "left the conversation with %s", c->room->name);
		room_free(c->room);
		c->room = NULL;
		c->joined = 0;
		client_dirty(c);
		client_unwait(c, token);
		return;
	}
	struct request *q = request_new(c, token);
	q->room = xstrdup(c->room->name);
	q->on_line = leave_line;
	q->on_done = leave_done;
	request_send(c, q, NULL, "PART %s :leaving", c->room->name);
}

static int join_line(struct client *c, struct request *q, struct irc_msg *m)
{
	const char *cmd = m->command;
	int num = strlen(cmd) == 3 ? atoi(cmd) : 0;
	if (num < 400 && strcasecmp(cmd, "FAIL") != 0)
		return 0;
	q->failed = 1;
	if (strcasecmp(q->room, ROOM_TIMELINE) == 0 && (num == 403 || num == 421 || num == 479))
		client_note(c, NOTE_ERROR, "t: not supported by this server (no %s)", ROOM_TIMELINE);
	else
		client_note(c, NOTE_ERROR, "cannot join %s: %s", q->room, msg_text(m));
	return 1;
}

/* The chathistory batch in the answer to JOIN &timeline: its latest posts.
 * On a first join they are the screen's first lines, and join_done reads
 * no more; a rejoin reads the gap after the last post held instead (these
 * are in it, or older). */
static void join_replay(struct client *c, struct request *q, struct room_msg *lines, size_t n)
{
	if (q->mode || !c->room || strcasecmp(c->room->name, q->room) != 0)
		return;
	room_merge(c->room, lines, n, ROOM_LATEST, NULL);
	q->replayed = 1;
}

static void join_done(struct client *c, struct request *q)
{
	if (q->failed) {
		free(c->pending_join);
		c->pending_join = NULL;
		client_unwait(c, q->token);
		return;
	}
	if (c->pending_join) { /* an ACK: we were in already, so no names came */
		switch_room(c, q->room);
		session_send(c, "NAMES %s", c->room->name);
	}
	if (q->mode) /* back in the room after a lost link */
		outbox_resend(c);
	if (q->replayed) {
		c->room->ready = 1;
		client_dirty(c);
		client_unwait(c, q->token);
	} else if (q->mode && c->room->n > 0) {
		history_fetch(c, HISTORY_GAP, c->room->lines[c->room->n - 1]->msgid, q->token);
	} else {
		history_fetch(c, HISTORY_FIRST, NULL, q->token);
	}
}

void session_show_conversation(struct client *c, const char *nick, unsigned token)
{
	int same = c->room && c->room->conversation && strcasecmp(c->room->name, nick) == 0;
	if (!same) {
		if (c->room && c->joined && !c->room->conversation)
			session_send(c, "PART %s :switching room", c->room->name);
		room_free(c->room);
		c->room = room_new(nick);
		room_person_add(c->room, c->nick);
		room_person_add(c->room, nick);
		client_note(c, NOTE_INFO, "conversation with %s: a <text> writes to %s, lv leaves", nick, nick);
	}
	c->joined = 1;
	client_dirty(c);
	history_fetch(c, HISTORY_FIRST, NULL, token);
}

void session_rejoin(struct client *c, unsigned token)
{
	if (!c->room->conversation) {
		session_join(c, c->room->name, 1, token);
		return;
	}
	outbox_resend(c);
	if (c->room->n > 0)
		history_fetch(c, HISTORY_GAP, c->room->lines[c->room->n - 1]->msgid, token);
	else
		history_fetch(c, HISTORY_FIRST, NULL, token);
}

void session_join(struct client *c, const char *room, int rejoin, unsigned token)
{
	struct request *q = request_new(c, token);
	q->room = xstrdup(room);
	q->mode = rejoin;
	q->on_line = join_line;
	q->on_history = join_replay;
	q->on_done = join_done;
	free(c->pending_join);
	c->pending_join = xstrdup(room);
	request_send(c, q, NULL, "JOIN %s", room);
}
