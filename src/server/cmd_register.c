/*
 * cmd_register.c: connection registration and identity: CAP, PASS, NICK,
 * USER, PING/PONG, QUIT, SETNAME. A user is a name: a session that registers
 * (or changes to) a nick already online joins that user, sharing its rooms
 * (with accounts, only sessions logged in to that name's account may: see
 * accounts.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* What this server offers: everything, but the account capabilities only
 * with accounts. */
static unsigned caps_offered(const struct server *srv)
{
	return accounts_enabled(srv) ? IRC_CAPS_ALL : IRC_CAPS_ALL & ~IRC_CAPS_ACCOUNTS;
}

/* CAP REQ: all or nothing, "-name" removes. */
static void cap_req(struct session *s, const char *list)
{
	unsigned add = 0, del = 0;
	const char *p = list;
	struct line_tags t = LINE_TAGS_INIT;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		int minus = *p == '-';
		const char *name = p + minus;
		size_t len = strcspn(name, " ");
		unsigned bit = irc_cap_bit(name, len) & caps_offered(s->srv);
		if (!bit) {
			reply_line(s, &t, s->srv->name, "CAP %s NAK :%s", s->nick ? s->nick : "*", list);
			return;
		}
		*(minus ? &del : &add) |= bit;
		p = name + len;
	}
	s->caps = (s->caps | add) & ~del;
	reply_line(s, &t, s->srv->name, "CAP %s ACK :%s", s->nick ? s->nick : "*", list);
}

void cmd_cap(struct session *s, struct irc_msg *m)
{
	const char *sub = m->params[0];
	const char *nick = s->nick ? s->nick : "*";
	struct line_tags t = LINE_TAGS_INIT;
	struct buf b = {0};

	if (strcasecmp(sub, "LS") == 0 || strcasecmp(sub, "LIST") == 0) {
		int ls = strcasecmp(sub, "LS") == 0;
		int v302 = ls && m->nparams > 1 && atoi(m->params[1]) >= 302;
		if (ls && !s->registered)
			s->cap_negotiating = 1;
		irc_cap_list(&b, ls ? caps_offered(s->srv) : s->caps, v302);
		if (v302 && s->srv->tls && s->srv->cfg.sts_duration > 0) {
			/* IRCv3 sts: where TLS is on a plain connection, for how long on TLS. */
			if (s->tls)
				buf_printf(&b, " sts=duration=%d", s->srv->cfg.sts_duration);
			else
				buf_printf(&b, " sts=port=%d", s->srv->cfg.tls_port);
		}
		reply_line(s, &t, s->srv->name, "CAP %s %s :%s", nick, ls ? "LS" : "LIST", b.data);
	} else if (strcasecmp(sub, "REQ") == 0) {
		if (!s->registered)
			s->cap_negotiating = 1;
		cap_req(s, m->nparams > 1 ? m->params[1] : "");
	} else if (strcasecmp(sub, "END") == 0) {
		s->cap_negotiating = 0;
		cmd_try_register(s);
	} else {
		reply_num(s, 410, "%s :Invalid CAP command", sub);
	}
	buf_free(&b);
}

void cmd_pass(struct session *s, struct irc_msg *m)
{
	if (s->registered) {
		reply_num(s, 462, ":You may not reregister");
		return;
	}
	s->pass_ok = !s->srv->cfg.password || strcmp(s->srv->cfg.password, m->params[0]) == 0;
}

/* Sends s the JOIN line and burst of every room its user is in, and of its
 * timeline if the user is in it here (a session joining a user already
 * online). */
static void sync_rooms(struct session *s)
{
	struct membership *m, *tmp;
	char src[128];
	struct line_tags t = LINE_TAGS_INIT;
	HASH_ITER(hh_user, s->user->rooms, m, tmp) {
		reply_line(s, &t, reply_source(s->nick, src, sizeof src), "JOIN %s", m->room->name);
		cmd_join_burst(s, m->room);
	}
	if (s->user->in_timeline)
		cmd_timeline_burst(s);
}

/* Makes the user known to the cluster the first time it appears. */
static void announce_user(struct session *s)
{
	replica_announce(s->srv, OP_USER, s->nick, s->nick, NULL, 0);
}

void cmd_try_register(struct session *s)
{
	if (s->registered || s->cap_negotiating || !s->nick || !s->username)
		return;
	if (s->srv->cfg.password && !s->pass_ok) {
		reply_num(s, 464, ":Password incorrect");
		session_close(s, "Bad password");
		return;
	}
	if (account_nick_check(s, s->nick) < 0)
		return; /* 433 sent: the client picks another nick (or logs in) */
	s->registered = 1;
	struct user *u = presence_attach(s->srv, s);
	/* The user's nick spelling wins for every session of it. */
	if (strcmp(u->nick, s->nick) != 0) {
		free(s->nick);
		s->nick = xstrdup(u->nick);
	}
	reply_welcome(s);
	sync_rooms(s);
	announce_user(s);
}

void cmd_tell_co_members(struct user *u, unsigned caps, const char *src, const char *text,
			 struct batch_set *b)
{
	struct notified {
		struct user *u;
		UT_hash_handle hh;
	} *seen = NULL, *n, *tmp;
	struct membership *m, *mt, *mm, *mmt;
	struct line_tags t = LINE_TAGS_INIT;
	HASH_ITER(hh_user, u->rooms, m, mt) {
		HASH_ITER(hh_room, m->room->members, mm, mmt) {
			if (mm->user == u)
				continue;
			HASH_FIND_PTR(seen, &mm->user, n);
			if (n)
				continue;
			n = xcalloc(1, sizeof *n);
			n->u = mm->user;
			HASH_ADD_PTR(seen, u, n);
			for (struct session *o = mm->user->sessions; o; o = o->next_of_user)
				if ((o->caps & caps) == caps) {
					t.batch = batch_for(b, o);
					reply_line(o, &t, src, "%s", text);
				}
		}
	}
	HASH_ITER(hh, seen, n, tmp) {
		HASH_DEL(seen, n);
		free(n);
	}
}

void cmd_rename_user(struct server *srv, struct user *u, const char *new_nick)
{
	struct session *other;
	struct membership *m, *tmp;
	char src[128], text[CHAT_NICK_MAX + 16];
	struct line_tags t = LINE_TAGS_INIT;
	reply_source(u->nick, src, sizeof src);
	whowas_add(srv, u);
	presence_send_offline(srv, u->nick, "Changed nick");
	presence_rename(srv, u, new_nick);
	presence_send_online(srv, u);
	HASH_ITER(hh_user, u->rooms, m, tmp)
		presence_send_join(srv, u, m->room);
	for (other = u->sessions; other; other = other->next_of_user) {
		reply_line(other, &t, src, "NICK :%s", new_nick);
		free(other->nick);
		other->nick = xstrdup(new_nick);
	}
	snprintf(text, sizeof text, "NICK :%s", new_nick);
	cmd_tell_co_members(u, 0, src, text, NULL);
	if (u->sessions)
		announce_user(u->sessions);
}

void cmd_change_nick(struct session *s, const char *new_nick)
{
	struct server *srv = s->srv;
	struct user *old = s->user, *target = presence_user(srv, new_nick);
	char src[128];
	struct line_tags t = LINE_TAGS_INIT;

	if (target == old || (!target && !old->sessions->next_of_user && old->sessions == s)) {
		/* A plain rename: tell the user's sessions and everyone sharing a room. */
		cmd_rename_user(srv, old, new_nick);
		return;
	}
	/* Another identity: leave the old user (its rooms stay its own), take the new one's. */
	reply_source(s->nick, src, sizeof src);
	reply_line(s, &t, src, "NICK :%s", new_nick);
	struct membership *m, *tmp;
	HASH_ITER(hh_user, old->rooms, m, tmp)
		reply_line(s, &t, src, "PART %s :Changed identity", m->room->name);
	if (old->in_timeline)
		reply_line(s, &t, src, "PART %s :Changed identity", CHAT_TIMELINE);
	presence_detach(srv, s, "Changed nick");
	free(s->nick);
	s->nick = xstrdup(target ? target->nick : new_nick);
	presence_attach(srv, s);
	sync_rooms(s);
	announce_user(s);
}

void cmd_nick(struct session *s, struct irc_msg *m)
{
	if (m->nparams < 1 || !*m->params[0]) {
		reply_num(s, 431, ":No nickname given");
		return;
	}
	const char *nick = m->params[0];
	if (!chat_nick_valid(nick)) {
		reply_num(s, 432, "%s :Erroneous nickname", nick);
		return;
	}
	int known = chat_user_known(s->srv->chat, nick) || presence_user(s->srv, nick);
	if (!known && (!s->nick || strcasecmp(nick, s->nick) != 0) && !session_may_create(s)) {
		reply_num(s, 438, "%s :Too many new nicks and rooms in the last minute; wait a little", nick);
		return;
	}
	if (!s->registered) {
		free(s->nick);
		s->nick = xstrdup(nick);
		cmd_try_register(s);
		return;
	}
	if (strcmp(nick, s->nick) != 0 && account_nick_check(s, nick) == 0)
		cmd_change_nick(s, nick);
}

void cmd_user(struct session *s, struct irc_msg *m)
{
	if (s->registered) {
		reply_num(s, 462, ":You may not reregister");
		return;
	}
	if (!m->params[0][0] || !m->params[3][0]) {
		reply_num(s, 461, "USER :Not enough parameters (a username and a realname)");
		return;
	}
	free(s->username);
	free(s->realname);
	s->username = xstrndup(m->params[0], strnlen(m->params[0], 32));
	s->realname = xstrndup(m->params[3], strnlen(m->params[3], 200));
	cmd_try_register(s);
}

/* PING: PONG, after the answers to the session's writes still on their way
 * (a client, or a test, can use PING to wait for what it did). A labeled
 * PING is answered at once, in its labeled response. */
void cmd_ping(struct session *s, struct irc_msg *m)
{
	struct line_tags t = LINE_TAGS_INIT;
	if (s->writes && !s->capture)
		reply_format(s->caps, &t, s->srv->name, &s->held, "PONG %s :%s", s->srv->name, m->params[0]);
	else
		reply_line(s, &t, s->srv->name, "PONG %s :%s", s->srv->name, m->params[0]);
}

void cmd_pong(struct session *s, struct irc_msg *m)
{
	(void)s;
	(void)m; /* reading any line already counts as a sign of life */
}

void cmd_quit(struct session *s, struct irc_msg *m)
{
	char reason[300];
	snprintf(reason, sizeof reason, "Quit: %s", m->nparams ? m->params[0] : "");
	session_close(s, reason);
}

void cmd_setname(struct session *s, struct irc_msg *m)
{
	const char *name = m->params[0];
	char src[128];
	struct line_tags t = LINE_TAGS_INIT;
	if (!*name || strlen(name) > 200) {
		reply_fail(s, "SETNAME", "INVALID_REALNAME", NULL, "Realname must be 1 to 200 bytes");
		return;
	}
	free(s->user->realname);
	s->user->realname = xstrdup(name);
	reply_source(s->nick, src, sizeof src);
	for (struct session *o = s->user->sessions; o; o = o->next_of_user) {
		free(o->realname);
		o->realname = xstrdup(name);
		if (o->caps & CAP_SETNAME)
			reply_line(o, &t, src, "SETNAME :%s", name);
	}
	char text[220]; /* the setname spec: co-members with the cap are told too */
	snprintf(text, sizeof text, "SETNAME :%s", name);
	cmd_tell_co_members(s->user, CAP_SETNAME, src, text, NULL);
	monitor_tell(s->srv, s->user, CAP_SETNAME, text);
}

void cmd_user_gone(struct server *srv, struct user *u, const char *reason, struct batch_set *b)
{
	char src[128], text[400];
	whowas_add(srv, u);
	snprintf(text, sizeof text, "QUIT :%s", reason ? reason : "Client Quit");
	cmd_tell_co_members(u, 0, reply_source(u->nick, src, sizeof src), text, b);
}
