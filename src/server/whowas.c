/*
 * whowas.c: WHOWAS, from the users this replica saw leave the view or
 * change nick: the last WHOWAS_MAX of them, in memory (a restart forgets
 * them; they are presence, not history).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

void whowas_add(struct server *srv, const struct user *u)
{
	struct whowas *w = &srv->whowas[srv->whowas_next];
	free(w->nick);
	free(w->username);
	free(w->realname);
	w->nick = xstrdup(u->nick);
	w->username = xstrdup(u->username);
	w->realname = xstrdup(u->realname);
	server_name_of(srv, u->home, w->server);
	w->left_ms = wall_ms();
	srv->whowas_next = (srv->whowas_next + 1) % WHOWAS_MAX;
}

void whowas_free(struct server *srv)
{
	for (size_t i = 0; i < WHOWAS_MAX; i++) {
		free(srv->whowas[i].nick);
		free(srv->whowas[i].username);
		free(srv->whowas[i].realname);
	}
}

/* WHOWAS <nick> [count]: the newest first, 314 and 312 for each (count of
 * them if positive, else all), 406 if none, then 369. */
void cmd_whowas(struct session *s, struct irc_msg *m)
{
	struct server *srv = s->srv;
	if (m->nparams < 1 || !*m->params[0]) {
		reply_num(s, 431, ":No nickname given");
		return;
	}
	const char *nick = m->params[0];
	long count = m->nparams > 1 ? strtol(m->params[1], NULL, 10) : 0;
	long shown = 0;
	for (size_t k = 1; k <= WHOWAS_MAX && (count <= 0 || shown < count); k++) {
		const struct whowas *w = &srv->whowas[(srv->whowas_next + WHOWAS_MAX - k) % WHOWAS_MAX];
		if (!w->nick || strcasecmp(w->nick, nick) != 0)
			continue;
		char when[32];
		format_server_time(w->left_ms, when, sizeof when);
		reply_num(s, 314, "%s %s chorus * :%s", w->nick, w->username, w->realname);
		reply_num(s, 312, "%s %s :%s", w->nick, w->server, when);
		shown++;
	}
	if (!shown)
		reply_num(s, 406, "%s :There was no such nickname", nick);
	reply_num(s, 369, "%s :End of WHOWAS", nick);
}
