/*
 * monitor.c: MONITOR (IRCv3): a session's list of nicks it is told about
 * when they come online anywhere in the view (730) or leave it (731), and,
 * with extended-monitor, their away changes even without a shared room.
 * An index from each watched nick to the sessions watching it makes a
 * presence change cost one lookup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <utarray.h>

#include "server.h"

#define MONITOR_MAX 100 /* nicks one session watches (ISUPPORT MONITOR) */

/* The sessions (by id) watching one casefolded nick. */
struct monitor_watch {
	char *key;
	UT_array *ids;
	UT_hash_handle hh;
};

/* One nick a session watches. */
struct monitored {
	char *key;
	char *nick;             /* as the client wrote it */
	UT_hash_handle hh;
};

static const UT_icd id_icd = {sizeof(uint64_t), NULL, NULL, NULL};

static struct monitor_watch *watch_find(struct server *srv, const char *key)
{
	struct monitor_watch *w = NULL;
	HASH_FIND_STR(srv->monitors, key, w);
	return w;
}

static void watch_add(struct server *srv, const char *key, uint64_t id)
{
	struct monitor_watch *w = watch_find(srv, key);
	if (!w) {
		w = xcalloc(1, sizeof *w);
		w->key = xstrdup(key);
		utarray_new(w->ids, &id_icd);
		HASH_ADD_KEYPTR(hh, srv->monitors, w->key, strlen(w->key), w);
	}
	utarray_push_back(w->ids, &id);
}

static void watch_remove(struct server *srv, const char *key, uint64_t id)
{
	struct monitor_watch *w = watch_find(srv, key);
	if (!w)
		return;
	for (unsigned i = 0; i < utarray_len(w->ids); i++)
		if (*(uint64_t *)utarray_eltptr(w->ids, i) == id) {
			utarray_erase(w->ids, i, 1);
			break;
		}
	if (utarray_len(w->ids) == 0) {
		HASH_DEL(srv->monitors, w);
		utarray_free(w->ids);
		free(w->key);
		free(w);
	}
}

/* 730 (":nick!user@host") if nick is online in the view, else 731. */
static void tell_status(struct session *s, const char *nick)
{
	struct user *u = presence_user(s->srv, nick);
	char src[128];
	if (u)
		reply_num(s, 730, ":%s", reply_source(u->nick, src, sizeof src));
	else
		reply_num(s, 731, ":%s", nick);
}

static void add_targets(struct session *s, const char *targets)
{
	char *list = xstrdup(targets), *save = NULL;
	for (char *nick = strtok_r(list, ",", &save); nick; nick = strtok_r(NULL, ",", &save)) {
		char *key = chat_casefold(nick);
		struct monitored *m = NULL;
		HASH_FIND_STR(s->monitored, key, m);
		if (m || !chat_nick_valid(nick)) {
			free(key);
			continue;
		}
		if (HASH_COUNT(s->monitored) >= MONITOR_MAX) {
			reply_num(s, 734, "%d %s :Monitor list is full.", MONITOR_MAX, nick);
			free(key);
			break;
		}
		m = xcalloc(1, sizeof *m);
		m->key = key;
		m->nick = xstrdup(nick);
		HASH_ADD_KEYPTR(hh, s->monitored, m->key, strlen(m->key), m);
		watch_add(s->srv, key, s->id);
		tell_status(s, nick);
	}
	free(list);
}

static void drop(struct session *s, struct monitored *m)
{
	HASH_DEL(s->monitored, m);
	watch_remove(s->srv, m->key, s->id);
	free(m->key);
	free(m->nick);
	free(m);
}

static void remove_targets(struct session *s, const char *targets)
{
	char *list = xstrdup(targets), *save = NULL;
	for (char *nick = strtok_r(list, ",", &save); nick; nick = strtok_r(NULL, ",", &save)) {
		char *key = chat_casefold(nick);
		struct monitored *m = NULL;
		HASH_FIND_STR(s->monitored, key, m);
		if (m)
			drop(s, m);
		free(key);
	}
	free(list);
}

void monitor_clear(struct session *s)
{
	struct monitored *m, *tmp;
	HASH_ITER(hh, s->monitored, m, tmp)
		drop(s, m);
}

/* MONITOR + targets | - targets | C | L | S */
void cmd_monitor(struct session *s, struct irc_msg *m)
{
	char op = m->params[0][0];
	struct monitored *w, *tmp;
	if ((op == '+' || op == '-') && m->nparams < 2) {
		reply_num(s, 461, "MONITOR :Not enough parameters");
		return;
	}
	switch (op) {
	case '+':
		add_targets(s, m->params[1]);
		return;
	case '-':
		remove_targets(s, m->params[1]);
		return;
	case 'C': case 'c':
		monitor_clear(s);
		return;
	case 'L': case 'l':
		HASH_ITER(hh, s->monitored, w, tmp)
			reply_num(s, 732, ":%s", w->nick);
		reply_num(s, 733, ":End of MONITOR list");
		return;
	case 'S': case 's':
		HASH_ITER(hh, s->monitored, w, tmp)
			tell_status(s, w->nick);
		return;
	default:
		reply_num(s, 461, "MONITOR :Unknown subcommand (+, -, C, L or S)");
	}
}

void monitor_notify(struct server *srv, const struct user *u, int online)
{
	char *key = chat_casefold(u->nick), src[128];
	struct monitor_watch *w = watch_find(srv, key);
	free(key);
	if (!w)
		return;
	reply_source(u->nick, src, sizeof src);
	for (unsigned i = 0; i < utarray_len(w->ids); i++) {
		struct session *s = session_find(srv, *(uint64_t *)utarray_eltptr(w->ids, i));
		if (!s)
			continue;
		if (online)
			reply_num(s, 730, ":%s", src);
		else
			reply_num(s, 731, ":%s", u->nick);
	}
}

void monitor_tell(struct server *srv, const struct user *u, unsigned caps, const char *line)
{
	char *key = chat_casefold(u->nick), src[128];
	struct monitor_watch *w = watch_find(srv, key);
	struct line_tags t = LINE_TAGS_INIT;
	free(key);
	if (!w)
		return;
	reply_source(u->nick, src, sizeof src);
	caps |= CAP_EXTENDED_MONITOR;
	for (unsigned i = 0; i < utarray_len(w->ids); i++) {
		struct session *s = session_find(srv, *(uint64_t *)utarray_eltptr(w->ids, i));
		if (s && s->user && (s->caps & caps) == caps && s->user != u &&
		    !presence_share_room((struct user *)u, s->user))
			reply_line(s, &t, src, "%s", line);
	}
}
