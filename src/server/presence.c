/*
 * presence.c: who is online in this replica's view and in which room. Soft
 * state: never stored. A user is a name: all sessions with the same nick (any
 * case), on any replica, are one user sharing one set of rooms. A user exists
 * here while it is online on at least one replica of the view (its `on` set);
 * presence_sync.c keeps the other replicas' part of it up to date.
 */
#include <stdlib.h>
#include <string.h>

#include "server.h"

struct user *presence_user(struct server *srv, const char *nick)
{
	struct user *u = NULL;
	char *key = chat_casefold(nick);
	HASH_FIND_STR(srv->users, key, u);
	free(key);
	return u;
}

struct user *presence_user_make(struct server *srv, const char *nick)
{
	struct user *u = presence_user(srv, nick);
	if (u)
		return u;
	u = xcalloc(1, sizeof *u);
	u->key = chat_casefold(nick);
	u->nick = xstrdup(nick);
	u->username = xstrdup(nick);
	u->realname = xstrdup("");
	HASH_ADD_KEYPTR(hh, srv->users, u->key, strlen(u->key), u);
	if (HASH_COUNT(srv->users) > srv->max_users_seen)
		srv->max_users_seen = HASH_COUNT(srv->users);
	return u;
}

int presence_is_on(const struct user *u, uint32_t id)
{
	return (u->on[(id & 255) / 64] >> (id % 64)) & 1;
}

static int online_anywhere(const struct user *u)
{
	return (u->on[0] | u->on[1] | u->on[2] | u->on[3]) != 0;
}

int presence_elsewhere(const struct user *u, uint32_t id)
{
	struct user copy = *u;
	copy.on[(id & 255) / 64] &= ~(1ULL << (id % 64));
	return online_anywhere(&copy);
}

static void user_free(struct user *u)
{
	free(u->key);
	free(u->nick);
	free(u->username);
	free(u->realname);
	free(u->account);
	free(u->away);
	free(u);
}

int presence_share_room(struct user *a, struct user *b)
{
	struct membership *m, *tmp;
	HASH_ITER(hh_user, a->rooms, m, tmp)
		if (presence_in_room(b, m->room))
			return 1;
	return 0;
}

void presence_set_away(struct server *srv, struct user *u, const char *text)
{
	const char *now = text && *text ? text : NULL;
	if ((!now && !u->away) || (now && u->away && strcmp(now, u->away) == 0))
		return;
	free(u->away);
	u->away = now ? xstrdup(now) : NULL;
	char src[128], *line = now ? xasprintf("AWAY :%s", now) : xstrdup("AWAY");
	cmd_tell_co_members(u, CAP_AWAY_NOTIFY, reply_source(u->nick, src, sizeof src), line, NULL);
	monitor_tell(srv, u, CAP_AWAY_NOTIFY, line);
	free(line);
}

void presence_set_details(struct user *u, const char *username, const char *realname,
			  const char *account)
{
	free(u->username);
	free(u->realname);
	free(u->account);
	u->username = xstrdup(username);
	u->realname = xstrdup(realname);
	u->account = account && *account ? xstrdup(account) : NULL;
}

/* u is online nowhere: co-members see it quit, it leaves every room. */
static void user_gone(struct server *srv, struct user *u, const char *reason, struct batch_set *b)
{
	struct membership *m, *tmp;
	cmd_user_gone(srv, u, reason, b);
	monitor_notify(srv, u, 0);
	HASH_ITER(hh_user, u->rooms, m, tmp)
		presence_part(srv, u, m->room);
	HASH_DEL(srv->users, u);
	user_free(u);
}

void presence_set_on(struct server *srv, struct user *u, uint32_t id, int on, const char *reason,
		     struct batch_set *b)
{
	uint64_t bit = 1ULL << (id % 64);
	if (on) {
		int came = !online_anywhere(u);
		u->on[(id & 255) / 64] |= bit;
		if (!u->sessions)
			u->home = id;
		if (came)
			monitor_notify(srv, u, 1);
		return;
	}
	u->on[(id & 255) / 64] &= ~bit;
	if (!online_anywhere(u))
		user_gone(srv, u, reason, b);
}

struct user *presence_attach(struct server *srv, struct session *s)
{
	struct user *u = presence_user_make(srv, s->nick);
	int first_here = u->sessions == NULL;
	if (first_here)
		presence_set_details(u, s->username ? s->username : s->nick, s->realname ? s->realname : "",
				     s->account);
	s->user = u;
	s->next_of_user = u->sessions;
	u->sessions = s;
	u->home = srv->cfg.id;
	presence_set_on(srv, u, srv->cfg.id, 1, NULL, NULL);
	if (first_here) {
		if (++srv->local_users > srv->max_local_seen)
			srv->max_local_seen = srv->local_users;
		presence_send_online(srv, u);
	}
	return u;
}

int presence_detach(struct server *srv, struct session *s, const char *reason)
{
	struct user *u = s->user;
	struct session **pp = &u->sessions;
	while (*pp && *pp != s)
		pp = &(*pp)->next_of_user;
	if (*pp)
		*pp = s->next_of_user;
	s->user = NULL;
	s->next_of_user = NULL;
	if (u->sessions)
		return 0;
	srv->local_users--;
	u->in_timeline = 0; /* soft state of its sessions here */
	presence_send_offline(srv, u->nick, reason);
	int gone = !presence_elsewhere(u, srv->cfg.id);
	presence_set_on(srv, u, srv->cfg.id, 0, reason, NULL);
	return gone;
}

struct user *presence_split(struct server *srv, struct user *u, const char *new_nick)
{
	struct user *n = presence_user_make(srv, new_nick);
	struct membership *m, *tmp;
	presence_set_details(n, u->username, u->realname, NULL);
	n->sessions = u->sessions;
	u->sessions = NULL;
	for (struct session *s = n->sessions; s; s = s->next_of_user)
		s->user = n;
	n->in_timeline = u->in_timeline;
	u->in_timeline = 0;
	n->home = srv->cfg.id;
	presence_set_on(srv, n, srv->cfg.id, 1, NULL, NULL);
	HASH_ITER(hh_user, u->rooms, m, tmp) {
		struct room_presence *r;
		presence_join(srv, n, m->room->name, &r);
	}
	presence_set_on(srv, u, srv->cfg.id, 0, NULL, NULL); /* still on elsewhere: stays */
	return n;
}

struct room_presence *presence_room(struct server *srv, const char *name)
{
	struct room_presence *r = NULL;
	char *key = chat_casefold(name);
	HASH_FIND_STR(srv->rooms, key, r);
	free(key);
	return r;
}

int presence_in_room(struct user *u, struct room_presence *r)
{
	struct membership *m = NULL;
	if (!r)
		return 0;
	HASH_FIND(hh_user, u->rooms, &r, sizeof r, m);
	return m != NULL;
}

int presence_join(struct server *srv, struct user *u, const char *name, struct room_presence **out)
{
	struct room_presence *r = presence_room(srv, name);
	if (!r) {
		r = xcalloc(1, sizeof *r);
		r->key = chat_casefold(name);
		r->name = xstrdup(name);
		HASH_ADD_KEYPTR(hh, srv->rooms, r->key, strlen(r->key), r);
	}
	*out = r;
	if (presence_in_room(u, r))
		return 0;
	struct membership *m = xcalloc(1, sizeof *m);
	m->user = u;
	m->room = r;
	HASH_ADD(hh_user, u->rooms, room, sizeof m->room, m);
	HASH_ADD(hh_room, r->members, user, sizeof m->user, m);
	return 1;
}

int presence_part(struct server *srv, struct user *u, struct room_presence *r)
{
	struct membership *m = NULL;
	HASH_FIND(hh_user, u->rooms, &r, sizeof r, m);
	if (!m)
		return 0;
	HASH_DELETE(hh_user, u->rooms, m);
	HASH_DELETE(hh_room, r->members, m);
	free(m);
	if (!r->members) {
		HASH_DEL(srv->rooms, r);
		free(r->key);
		free(r->name);
		free(r);
	}
	return 1;
}

void presence_rename(struct server *srv, struct user *u, const char *new_nick)
{
	char *key = chat_casefold(new_nick);
	int other = strcmp(key, u->key) != 0; /* not only a new spelling */
	if (other)
		monitor_notify(srv, u, 0);
	HASH_DEL(srv->users, u);
	free(u->key);
	free(u->nick);
	u->key = key;
	u->nick = xstrdup(new_nick);
	HASH_ADD_KEYPTR(hh, srv->users, u->key, strlen(u->key), u);
	if (other)
		monitor_notify(srv, u, 1);
}

unsigned presence_count(struct room_presence *r)
{
	return HASH_CNT(hh_room, r->members);
}
