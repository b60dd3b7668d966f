/*
 * cmd_message.c: PRIVMSG, NOTICE and TAGMSG. Messages to a room or a user
 * become operations (stored, replicated, replayable); a PRIVMSG to
 * &timeline is a post (OP_POST) to the sender's feed. A TAGMSG carrying
 * +draft/react or +draft/unreact with +draft/reply (or +reply) is a like or
 * unlike of that message; any other TAGMSG (typing notices and the like) is
 * relayed to the room without being stored.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* Checks that s may send to target; answers the numeric and returns -1 if
 * not. Room targets need membership; user targets must be known. */
static int check_target(struct session *s, const char *target, int quiet)
{
	struct server *srv = s->srv;
	if (strchr(target, ',')) {
		if (!quiet)
			reply_num(s, 407, "%s :Too many targets", target);
		return -1;
	}
	if (target[0] == '#') {
		struct room_presence *r = presence_room(srv, target);
		if (!r && !chat_room_find(srv->chat, target)) {
			if (!quiet)
				reply_num(s, 403, "%s :No such channel", target);
			return -1;
		}
		struct chat_room *room = chat_room_find(srv->chat, target);
		if (!presence_in_room(s->user, r) && (!room || (room->modes & CHAT_MODE_N))) {
			if (!quiet)
				reply_num(s, 404, "%s :Cannot send to channel (+n: join it first)", target);
			return -1;
		}
		return room_may_speak(s, target, quiet) ? 0 : -1;
	}
	if (!chat_nick_valid(target) || (!presence_user(srv, target) && !chat_user_known(srv->chat, target))) {
		if (!quiet)
			reply_num(s, 401, "%s :No such nick/channel", target);
		return -1;
	}
	return 0;
}

/* The target spelled as the replicated state knows it. */
static const char *canonical_target(struct session *s, const char *target)
{
	if (target[0] == '#') {
		struct chat_room *room = chat_room_find(s->srv->chat, target);
		struct room_presence *r = presence_room(s->srv, target);
		return room ? room->name : r ? r->name : target;
	}
	struct user *u = presence_user(s->srv, target);
	return u ? u->nick : target;
}

/* Appends m's client-only tags ("+a=b;+c", escaped as on the wire) to tags. */
static void client_tags(const struct irc_msg *m, struct buf *tags)
{
	static char esc[2 * IRC_CLIENT_TAGS_MAX + 1]; /* escaping at most doubles */
	for (size_t i = 0; i < m->ntags; i++) {
		if (m->tags[i].key[0] != '+' || irc_tag_escape(m->tags[i].value, esc, sizeof esc) < 0)
			continue;
		if (tags->len)
			buf_putc(tags, ';');
		buf_printf(tags, "%s%s%s", m->tags[i].key, *esc ? "=" : "", esc);
	}
}

static void send_message(struct session *s, struct irc_msg *m, int notice)
{
	const char *cmd = notice ? "NOTICE" : "PRIVMSG";
	if (m->nparams < 1 || !*m->params[0]) {
		if (!notice)
			reply_num(s, 411, ":No recipient given (%s)", cmd);
		return;
	}
	if (m->nparams < 2 || !*m->params[1]) {
		if (!notice)
			reply_num(s, 412, ":No text to send");
		return;
	}
	const char *target = m->params[0];
	int post = !notice && is_timeline(target); /* no membership needed */
	s->last_spoke_ms = uv_now(s->srv->loop);
	if (!post && check_target(s, target, notice) < 0)
		return;
	struct op op = {0};
	op.kind = post ? OP_POST : target[0] == '#' ? OP_MSG : OP_DM;
	op.flags = notice ? OP_FLAG_NOTICE : 0;
	op.target = xstrdup(post ? CHAT_TIMELINE : canonical_target(s, target));
	op.author = xstrdup(s->nick);
	op.body = xstrdup(m->params[1]);
	if (op.kind != OP_POST) { /* the client-only tags go with the line, kept with it */
		struct buf tags = {0};
		client_tags(m, &tags);
		op.tags = xstrdup(tags.len ? tags.data : "");
		buf_free(&tags);
	}
	if (op.kind == OP_DM) { /* the recipient is the person holding the name now */
		const struct chat_account *to = chat_account_find(s->srv->chat, target);
		op.ref = xstrdup(to ? to->regid : "");
	}
	struct user *to = op.kind == OP_DM && !notice ? presence_user(s->srv, target) : NULL;
	if (to && to->away)
		reply_num(s, 301, "%s :%s", to->nick, to->away);
	int why = replica_submit(s->srv, s, cmd, &op);
	if (why)
		reply_refused(s, cmd, target, why);
}

void cmd_privmsg(struct session *s, struct irc_msg *m)
{
	send_message(s, m, 0);
}

void cmd_notice(struct session *s, struct irc_msg *m)
{
	send_message(s, m, 1);
}

/* 1 if op, a message, belongs to the conversation s names by target (a
 * room, or the direct conversation between s's person and the one holding
 * target). */
static int in_conversation(struct session *s, const struct op *op, const char *target)
{
	if (target[0] == '#')
		return op->kind == OP_MSG && strcasecmp(op->target, target) == 0;
	if (op->kind != OP_DM)
		return 0;
	char *me = session_person(s), *them = chat_person_of_name(s->srv->chat, target);
	char *from = chat_person(op->author, op->account), *to = chat_person(op->target, op->ref);
	int in = (strcmp(from, me) == 0 && strcmp(to, them) == 0) ||
		 (strcmp(from, them) == 0 && strcmp(to, me) == 0);
	free(me);
	free(them);
	free(from);
	free(to);
	return in;
}

/* A like or unlike waiting for the store to find its message. */
struct like_wait {
	struct store_wait wait;
	char *target, *ref, *reaction;
	int on;
};

/* The message of a like (or unlike) was looked for: checks the like and
 * makes it an operation. */
static void like_found(void *arg, int status, const struct op *msg, int liked)
{
	struct like_wait *w = arg;
	struct capture cap;
	struct session *s = store_wait_answer(&w->wait, &cap);
	if (!s) {
		/* gone meanwhile */
	} else if (status != STORE_OK && status != STORE_NOTFOUND) {
		reply_fail(s, "TAGMSG", "STORAGE_ERROR", w->target,
			   "Cannot read the message: this replica cannot read its disk");
	} else if (!msg || !in_conversation(s, msg, w->target)) {
		reply_fail(s, "TAGMSG", "UNKNOWN_MESSAGE", w->target, "No such message in this conversation");
	} else {
		char *me = session_person(s), *author = chat_person(msg->author, msg->account);
		int own = strcmp(me, author) == 0;
		free(me);
		free(author);
		if (own) {
			reply_fail(s, "TAGMSG", "OWN_MESSAGE", w->target, "You cannot like your own message");
		} else if (w->on && liked) {
			reply_fail(s, "TAGMSG", "ALREADY_LIKED", w->target, "You already like this message");
		} else if (!w->on && !liked) {
			reply_fail(s, "TAGMSG", "NOT_LIKED", w->target, "You have not liked this message");
		} else {
			struct op op = {0};
			op.kind = w->on ? OP_LIKE : OP_UNLIKE;
			op.target = xstrdup(canonical_target(s, w->target));
			op.author = xstrdup(s->nick);
			op.body = xstrdup(w->reaction);
			op.ref = xstrdup(w->ref);
			int why = replica_submit(s->srv, s, "TAGMSG", &op);
			if (why)
				reply_refused(s, "TAGMSG", w->target, why);
		}
	}
	if (s)
		store_wait_end(s, &cap);
	store_wait_free(&w->wait);
	free(w->target);
	free(w->ref);
	free(w->reaction);
	free(w);
}

/* A like (react) or unlike (unreact) of message ref in target: its message
 * and s's like of it are looked up in the store first (the session waits). */
static void like(struct session *s, const char *target, const char *ref, const char *reaction, int on)
{
	struct like_wait *w = xcalloc(1, sizeof *w);
	char *me = session_person(s);
	store_wait_begin(s, &w->wait);
	w->target = xstrdup(target);
	w->ref = xstrdup(ref);
	w->reaction = xstrdup(reaction);
	w->on = on;
	store_writer_message(s->srv->writer, ref, me, like_found, w);
	free(me);
}

/* Sends the relayed TAGMSG to u's sessions that have message-tags (the
 * sender's own session only with echo-message). */
static void relay_to_user(struct user *u, struct session *sender, const struct line_tags *t,
			  const char *src, const char *shown)
{
	for (struct session *o = u ? u->sessions : NULL; o; o = o->next_of_user)
		if ((o->caps & CAP_MESSAGE_TAGS) && (o != sender || (o->caps & CAP_ECHO_MESSAGE)))
			reply_line(o, t, src, "TAGMSG %s", shown);
}

/* Relays a TAGMSG that is not a like (e.g. +typing) to the target's sessions,
 * unstored, with a one-off msgid. */
static void relay_tagmsg(struct session *s, struct irc_msg *m, const char *target)
{
	struct server *srv = s->srv;
	static uint64_t counter;
	char msgid[OP_MSGID_MAX], src[128];
	struct buf tags = {0};
	struct line_tags t = LINE_TAGS_INIT;

	snprintf(msgid, sizeof msgid, "%" PRIu32 "-%016" PRIx64 "-%" PRIu32 "-e%" PRIu64,
		 repl_stream(srv->repl)->origin, repl_stream(srv->repl)->incarnation,
		 repl_stream(srv->repl)->boot, ++counter);
	client_tags(m, &tags);
	t.msgid = msgid;
	t.client_tags = tags.data;
	reply_source(s->nick, src, sizeof src);
	const char *shown = canonical_target(s, target);
	if (target[0] == '#') {
		struct room_presence *r = presence_room(srv, target);
		struct membership *mm, *tmp;
		HASH_ITER(hh_room, r->members, mm, tmp)
			relay_to_user(mm->user, s, &t, src, shown);
	} else {
		struct user *peer = presence_user(srv, target);
		relay_to_user(peer, s, &t, src, shown);
		if (peer != s->user)
			relay_to_user(s->user, s, &t, src, shown);
	}
	buf_free(&tags);
}

void cmd_tagmsg(struct session *s, struct irc_msg *m)
{
	const char *target = m->params[0];
	const char *react = irc_tag_get(m, "+draft/react");
	const char *unreact = irc_tag_get(m, "+draft/unreact");
	const char *ref = irc_tag_get(m, "+draft/reply");
	if (!ref)
		ref = irc_tag_get(m, "+reply");
	if (check_target(s, target, 0) < 0)
		return;
	if ((react || unreact) && ref && *ref)
		like(s, target, ref, react ? react : unreact, react != NULL);
	else
		relay_tagmsg(s, m, target);
}
