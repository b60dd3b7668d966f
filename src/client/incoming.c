/*
 * incoming.c: what the server sends that changes the screen: live lines of
 * the room (or posts of the timeline) and direct messages, likes (TAGMSG
 * with +draft/react or +draft/unreact, +draft/reply and the count in
 * chorus/likes), who comes and goes (JOIN, PART, QUIT, NICK, NAMES), our
 * follows changing (FOLLOW, UNFOLLOW), login (001) and errors. Lines that
 * answer a request reach here too, after the request saw them (see
 * requests.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

int is_room_name(const char *target)
{
	return target && (target[0] == '#' || target[0] == '&');
}

const char *msg_text(const struct irc_msg *m)
{
	return m->nparams ? m->params[m->nparams - 1] : "";
}

const char *source_nick(const struct irc_msg *m, char *buf, size_t len)
{
	const char *src = m->source ? m->source : "";
	snprintf(buf, len, "%.*s", (int)strcspn(src, "!@"), src);
	return buf;
}

/* 1 if line m is about the room on screen. */
static int in_current_room(const struct client *c, const char *target)
{
	return c->room && target && strcasecmp(target, c->room->name) == 0;
}

/* 1 if a line from nick to target belongs to the conversation on screen:
 * between us and its other person, either way. */
static int in_current_conversation(const struct client *c, const char *target, const char *nick)
{
	if (!c->room || !c->room->conversation || !target)
		return 0;
	const char *peer = c->room->name;
	return (strcasecmp(target, peer) == 0 && session_is_me(c, nick)) ||
	       (session_is_me(c, target) && strcasecmp(nick, peer) == 0);
}

int incoming_room_msg(struct irc_msg *msg, struct room_msg *m, char *nick, size_t len)
{
	if ((strcasecmp(msg->command, "PRIVMSG") != 0 && strcasecmp(msg->command, "NOTICE") != 0) ||
	    msg->nparams < 2)
		return -1;
	const char *msgid = irc_tag_get(msg, "msgid");
	const char *time = irc_tag_get(msg, "time");
	const char *likes = irc_tag_get(msg, "chorus/likes");
	memset(m, 0, sizeof *m);
	if (!msgid || !*msgid)
		return -1; /* chorus gives every line one; without it no dedupe is possible */
	m->msgid = msgid;
	m->author = source_nick(msg, nick, len);
	m->text = msg->params[1];
	m->likes = likes ? atoi(likes) : -1;
	if (!time || parse_server_time(time, &m->time_ms) < 0)
		m->time_ms = 0;
	return 0;
}

static void on_message(struct client *c, struct irc_msg *m)
{
	struct room_msg rm;
	char nick[64];
	if (m->nparams < 2)
		return;
	const char *target = m->params[0];
	if (is_room_name(target)) {
		if (in_current_room(c, target) && incoming_room_msg(m, &rm, nick, sizeof nick) == 0 &&
		    !(c->room->timeline && session_is_me(c, nick)) && /* ours are not on our timeline */
		    room_append(c->room, &rm))
			client_dirty(c);
		return;
	}
	if (!m->source || !strchr(m->source, '!')) { /* from the server itself */
		client_note(c, NOTE_INFO, "%s", msg_text(m));
		return;
	}
	const char *msgid = irc_tag_get(m, "msgid");
	source_nick(m, nick, sizeof nick);
	if (in_current_conversation(c, target, nick)) {
		if (incoming_room_msg(m, &rm, nick, sizeof nick) == 0 && room_append(c->room, &rm)) {
			conversations_seen(c, c->room->name, rm.time_ms);
			client_dirty(c);
		}
		return;
	}
	if (msgid && strcmp(msgid, c->last_dm) == 0)
		return; /* shown already */
	snprintf(c->last_dm, sizeof c->last_dm, "%s", msgid ? msgid : "");
	if (session_is_me(c, nick) && !session_is_me(c, target)) {
		client_note(c, NOTE_DM, "%s -> %s: %s", nick, target, msg_text(m));
	} else {
		const char *time = irc_tag_get(m, "time");
		int64_t ms = 0;
		if (time && parse_server_time(time, &ms) == 0)
			conversations_seen(c, nick, ms);
		client_note(c, NOTE_DM, "%s: %s", nick, msg_text(m));
	}
}

static void on_tagmsg(struct client *c, struct irc_msg *m)
{
	const char *react = irc_tag_get(m, "+draft/react");
	const char *unreact = irc_tag_get(m, "+draft/unreact");
	const char *ref = irc_tag_get(m, "+draft/reply");
	const char *likes = irc_tag_get(m, "chorus/likes");
	char nick[64];
	if (!ref)
		ref = irc_tag_get(m, "+reply");
	source_nick(m, nick, sizeof nick);
	if (m->nparams < 1 || !ref || (!react && !unreact) ||
	    !(in_current_room(c, m->params[0]) || in_current_conversation(c, m->params[0], nick)))
		return;
	if (session_is_me(c, nick))
		room_set_mine(c->room, ref, react ? MINE_LIKED : MINE_NOT_LIKED);
	if (likes && room_set_likes(c->room, ref, atoi(likes)))
		client_dirty(c);
}

static void on_join(struct client *c, struct irc_msg *m, const char *nick)
{
	if (m->nparams < 1)
		return;
	if (session_is_me(c, nick))
		session_self_join(c, m->params[0]);
	if (in_current_room(c, m->params[0])) {
		room_person_add(c->room, nick);
		client_dirty(c);
	}
}

static void on_part(struct client *c, struct irc_msg *m, const char *nick)
{
	if (m->nparams < 1)
		return;
	if (session_is_me(c, nick))
		session_self_part(c, m->params[0], m->nparams > 1 ? m->params[1] : "");
	else if (in_current_room(c, m->params[0])) {
		room_person_remove(c->room, nick);
		client_dirty(c);
	}
}

static void on_nick(struct client *c, const char *from, const char *to)
{
	if (session_is_me(c, from)) {
		free(c->nick);
		c->nick = xstrdup(to);
		if (c->room)
			room_forget_mine(c->room);
		client_note(c, NOTE_INFO, "you are now %s", to);
	}
	if (c->room) {
		room_person_rename(c->room, from, to);
		client_dirty(c);
	}
}

/* Our FOLLOW (on) or UNFOLLOW of m's user is in force: from this session,
 * another of ours, or a merge. Unfollowing takes that user's posts off the
 * timeline. */
static void on_follow(struct client *c, struct irc_msg *m, const char *nick, int on)
{
	if (m->nparams < 1 || !session_is_me(c, nick))
		return;
	client_note(c, NOTE_INFO, on ? "you now follow %s" : "you no longer follow %s", m->params[0]);
	if (!on)
		history_reload(c);
}

/* "403 me #x :No such channel" as "#x: No such channel". */
static void note_numeric(struct client *c, struct irc_msg *m)
{
	struct buf b = {0};
	for (size_t i = 1; i + 1 < m->nparams; i++)
		buf_printf(&b, "%s%s", m->params[i], i + 2 < m->nparams ? " " : ": ");
	buf_puts(&b, m->nparams > 1 ? msg_text(m) : m->command);
	client_note(c, NOTE_ERROR, "%s", b.data);
	buf_free(&b);
}

static void on_numeric(struct client *c, struct irc_msg *m, int num)
{
	switch (num) {
	case 1:
		session_registered(c, m->nparams ? m->params[0] : c->nick);
		return;
	case 10: /* RPL_BOUNCE <me> <host> <port> :why: the replica is full */
		if (m->nparams >= 3) {
			char spec[REPLICA_SPEC_MAX], why[300];
			snprintf(spec, sizeof spec, strchr(m->params[1], ':') ? "[%s]:%s" : "%s:%s", m->params[1],
				 m->params[2]);
			snprintf(why, sizeof why, "the replica is full (%s)", msg_text(m));
			session_bounced(c, spec, why);
		}
		return;
	case 353: /* me = #room :names */
		if (m->nparams >= 4 && in_current_room(c, m->params[2])) {
			room_names_reply(c->room, m->params[3]);
			client_dirty(c);
		}
		return;
	case 366:
		if (m->nparams >= 2 && in_current_room(c, m->params[1])) {
			room_names_end(c->room);
			client_dirty(c);
		}
		return;
	case 900: case 901: case 903: case 904: case 905: case 906: case 907: case 908:
		auth_line(c, m);
		if (num == 904 || num == 905)
			break; /* shown as an error below */
		return;
	case 433:
		if (c->link == LINK_READY && m->nparams >= 3 && strstr(msg_text(m), "registered")) {
			auth_name_registered(c);
			return;
		}
		if (c->link == LINK_READY && session_name_in_use(c))
			return;
		/* fall through */
	case 431: case 432: case 436: case 464: case 465:
		if (c->link == LINK_READY) {
			session_login_refused(c, msg_text(m));
			return;
		}
		break;
	default:
		break;
	}
	if (num >= 400 && num < 600 && num != 422) /* 422: no MOTD, not an error */
		note_numeric(c, m);
}

/* ERROR: the replica closes the link; one that shuts down names another
 * ("... try replica N at host:port)"): the client goes there. */
static void on_error(struct client *c, const char *text)
{
	unsigned id;
	char where[REPLICA_SPEC_MAX];
	client_note(c, NOTE_ERROR, "the replica says: %s", text);
	if (replicas_named(text, "shutting down: try ", &id, where) == 0)
		session_bounced(c, where, "the replica is shutting down");
}

void incoming_line(struct client *c, struct irc_msg *m)
{
	const char *cmd = m->command;
	char nick[64];
	source_nick(m, nick, sizeof nick);
	if (strlen(cmd) == 3 && cmd[0] >= '0' && cmd[0] <= '9')
		on_numeric(c, m, atoi(cmd));
	else if (strcasecmp(cmd, "PING") == 0)
		session_send(c, "PONG :%s", msg_text(m));
	else if (strcasecmp(cmd, "PRIVMSG") == 0 || strcasecmp(cmd, "NOTICE") == 0)
		on_message(c, m);
	else if (strcasecmp(cmd, "TAGMSG") == 0)
		on_tagmsg(c, m);
	else if (strcasecmp(cmd, "JOIN") == 0)
		on_join(c, m, nick);
	else if (strcasecmp(cmd, "PART") == 0)
		on_part(c, m, nick);
	else if (strcasecmp(cmd, "QUIT") == 0 && c->room) {
		room_person_remove(c->room, nick);
		client_dirty(c);
	} else if (strcasecmp(cmd, "NICK") == 0 && m->nparams >= 1)
		on_nick(c, nick, m->params[0]);
	else if (strcasecmp(cmd, "FOLLOW") == 0 || strcasecmp(cmd, "UNFOLLOW") == 0)
		on_follow(c, m, nick, strcasecmp(cmd, "FOLLOW") == 0);
	else if (strcasecmp(cmd, "CAP") == 0)
		session_cap(c, m);
	else if (strcasecmp(cmd, "AUTHENTICATE") == 0 || strcasecmp(cmd, "REGISTER") == 0)
		auth_line(c, m);
	else if (strcasecmp(cmd, "FAIL") == 0) {
		auth_line(c, m);
		client_note(c, NOTE_ERROR, "%s", msg_text(m));
	}
	else if (strcasecmp(cmd, "ERROR") == 0)
		on_error(c, msg_text(m));
}
