/*
 * cmd_user.c: a user's status as others see it: AWAY (replicated with
 * presence, shown with away-notify, 301 on messages and WHOIS, G in WHO),
 * USERHOST and ISON; and KILL and WALLOPS, an operator's end of a user's
 * connections and message to every +w user, on every replica of the view.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define AWAY_MAX 200 /* longest away message kept (AWAYLEN) */

/* AWAY [:text]: away with text, or back without. */
void cmd_away(struct session *s, struct irc_msg *m)
{
	const char *text = m->nparams > 0 ? m->params[0] : "";
	char kept[AWAY_MAX + 1];
	snprintf(kept, sizeof kept, "%s", text);
	if (strlen(text) > AWAY_MAX) /* cut at a character's start */
		for (size_t n = AWAY_MAX; n > 0 && ((unsigned char)kept[n] & 0xc0) == 0x80; n--)
			kept[n - 1] = '\0';
	presence_set_away(s->srv, s->user, kept);
	presence_send_away(s->srv, s->user);
	if (*kept)
		reply_num(s, 306, ":You have been marked as being away");
	else
		reply_num(s, 305, ":You are no longer marked as being away");
}

/* USERHOST <nick>{ <nick>}: 302 with "nick=+user@host" (- when away) for
 * each online, up to five. */
void cmd_userhost(struct session *s, struct irc_msg *m)
{
	struct buf b = {0};
	for (size_t i = 0; i < m->nparams && i < 5; i++) {
		struct user *u = presence_user(s->srv, m->params[i]);
		if (u)
			buf_printf(&b, "%s%s=%c%s@chorus", b.len ? " " : "", u->nick, u->away ? '-' : '+',
				   u->nick);
	}
	reply_num(s, 302, ":%s", b.len ? b.data : "");
	buf_free(&b);
}

/* ISON <nick>{ <nick>}: 303 with those online in the view. */
void cmd_ison(struct session *s, struct irc_msg *m)
{
	struct buf b = {0};
	for (size_t i = 0; i < m->nparams; i++) {
		char *list = xstrdup(m->params[i]), *save = NULL;
		for (char *nick = strtok_r(list, " ", &save); nick; nick = strtok_r(NULL, " ", &save)) {
			struct user *u = presence_user(s->srv, nick);
			if (u)
				buf_printf(&b, "%s%s", b.len ? " " : "", u->nick);
		}
		free(list);
	}
	reply_num(s, 303, ":%s", b.len ? b.data : "");
	buf_free(&b);
}

void user_kill(struct server *srv, const char *nick, const char *reason)
{
	struct user *u = presence_user(srv, nick);
	for (struct session *o = u ? u->sessions : NULL; o; o = o->next_of_user)
		session_close(o, reason);
}

/* KILL <nick> [:reason]: operators (OPER) only. */
void cmd_kill(struct session *s, struct irc_msg *m)
{
	if (!s->oper) {
		reply_num(s, 481, ":Permission Denied- You're not an IRC operator");
		return;
	}
	struct user *u = presence_user(s->srv, m->params[0]);
	if (!u) {
		reply_num(s, 401, "%s :No such nick/channel", m->params[0]);
		return;
	}
	char reason[300];
	snprintf(reason, sizeof reason, "Killed (%s (%s))", s->nick,
		 m->nparams > 1 && *m->params[1] ? m->params[1] : "no reason");
	presence_send_kill(s->srv, u->nick, reason);
	user_kill(s->srv, u->nick, reason);
}

void user_wallops(struct server *srv, const char *from, const char *text)
{
	struct session *o, *tmp;
	struct line_tags t = LINE_TAGS_INIT;
	char src[128];
	reply_source(from, src, sizeof src);
	HASH_ITER(hh, srv->sessions, o, tmp)
		if (o->registered && strchr(o->umodes, 'w'))
			reply_line(o, &t, src, "WALLOPS :%s", text);
}

/* WALLOPS :text: operators only; to every session with user mode w. */
void cmd_wallops(struct session *s, struct irc_msg *m)
{
	if (!s->oper) {
		reply_num(s, 481, ":Permission Denied- You're not an IRC operator");
		return;
	}
	presence_send_wallops(s->srv, s->nick, m->params[0]);
	user_wallops(s->srv, s->nick, m->params[0]);
}
