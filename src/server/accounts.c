/*
 * accounts.c: a session's account (server.identity = accounts): logging in
 * and out, who may hold a nick, the limit on failed logins, and what the
 * sessions here see when an account changes anywhere (registered on another
 * replica, void after a merge, removed by its owner).
 *
 * Rules (docs/SECURITY.md): the nick of a registered account is held only by
 * sessions logged in to it, and a logged-in session's nick is its account's
 * name; every session logged in to one account is one user. A name nobody
 * registered is held by one guest at a time. With server.identity = open
 * none of this applies: a name is a person, as the seeds describe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

#define AUTH_FAIL_BURST 5          /* failed logins allowed at once, per account and per address */
#define AUTH_FAIL_RATE (1.0 / 12)  /* then one more per 12 s */
#define AUTH_BUCKETS_MAX 4096      /* buckets kept before full ones are dropped */

int accounts_enabled(const struct server *srv)
{
	return srv->cfg.identity == IDENTITY_ACCOUNTS;
}

int dm_history_allowed(const struct session *s)
{
	return !accounts_enabled(s->srv) || s->account != NULL;
}

char *session_person(const struct session *s)
{
	return chat_person(s->nick, s->account);
}

const char *account_shown(const struct server *srv, const char *nick, const char *regid)
{
	const struct chat_account *a;
	if (!regid || !*regid || !(a = chat_account_find(srv->chat, nick)) || strcmp(a->regid, regid) != 0)
		return NULL;
	return a->name;
}

void former_nick(const char *name, const char *regid, char out[CHAT_NICK_MAX + 1])
{
	uint32_t h = 2166136261u; /* FNV-1a: the same on every replica */
	for (const char *p = regid; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, CHAT_NICK_MAX + 1, "%.*s-%04x", CHAT_NICK_MAX - 5, name, (unsigned)(h & 0xffff));
}

const char *author_shown(const struct server *srv, const struct op *op, char name[CHAT_NICK_MAX + 1])
{
	const char *account = account_shown(srv, op->author, op->account);
	if (account || !op->account || !*op->account || !accounts_enabled(srv))
		snprintf(name, CHAT_NICK_MAX + 1, "%s", op->author);
	else
		former_nick(op->author, op->account, name);
	return account;
}

/* 1 if s is logged in to the account registered under nick now. */
static int logged_in_as(const struct session *s, const char *nick)
{
	const struct chat_account *a = chat_account_find(s->srv->chat, nick);
	return a && s->account && strcmp(a->regid, s->account) == 0;
}

int account_nick_check(struct session *s, const char *nick)
{
	struct server *srv = s->srv;
	if (!accounts_enabled(srv))
		return 0;
	const struct chat_account *a = chat_account_find(srv->chat, nick);
	if (s->account && !logged_in_as(s, nick)) {
		reply_num(s, 433, "%s :While logged in, your nick is your account's name", nick);
		return -1;
	}
	if (a && !logged_in_as(s, nick)) {
		reply_num(s, 433, "%s :Nickname is registered: log in to it (SASL) or choose another", nick);
		return -1;
	}
	/* The account's owner joins whoever holds its name (its other sessions,
	 * or, for a moment after a merge, someone its replica is renaming). */
	struct user *u = presence_user(srv, nick);
	if (u && u != s->user && !(a && logged_in_as(s, nick))) {
		reply_num(s, 433, "%s :Nickname is already in use", nick);
		return -1;
	}
	return 0;
}

/* A free guest nick for someone who held name: "name-NNNN", cut to fit. */
static char *guest_nick(struct server *srv, const char *name)
{
	for (int i = 0;; i++) {
		char nick[CHAT_NICK_MAX + 1];
		snprintf(nick, sizeof nick, "%.*s-%04u", CHAT_NICK_MAX - 5, name, (unsigned)(rand() % 10000));
		if (!presence_user(srv, nick) && !chat_account_find(srv->chat, nick) && chat_nick_valid(nick))
			return xstrdup(nick);
		if (i > 100) /* a crowded namespace: fall back to a longer suffix */
			return xasprintf("Guest-%u", (unsigned)rand());
	}
}

/* Tells u's sessions here and its co-members that its account is now
 * account (a name, or NULL: logged out), per account-notify. */
static void notify_account(struct server *srv, struct user *u, const char *account)
{
	char src[128], text[CHAT_NICK_MAX + 16];
	struct line_tags t = LINE_TAGS_INIT;
	reply_source(u->nick, src, sizeof src);
	snprintf(text, sizeof text, "ACCOUNT %s", account ? account : "*");
	for (struct session *o = u->sessions; o; o = o->next_of_user)
		if (o->caps & CAP_ACCOUNT_NOTIFY)
			reply_line(o, &t, src, "%s", text);
	cmd_tell_co_members(u, CAP_ACCOUNT_NOTIFY, src, text, NULL);
	monitor_tell(srv, u, CAP_ACCOUNT_NOTIFY, text);
}

void account_login(struct session *s, const struct chat_account *a)
{
	char src[128];
	free(s->account);
	s->account = xstrdup(a->regid);
	reply_num(s, 900, "%s %s :You are now logged in as %s",
		  reply_source(s->nick ? s->nick : "*", src, sizeof src), a->name, a->name);
	if (!s->registered) {
		/* The nick is checked, and the user made, at registration. */
		free(s->nick);
		s->nick = xstrdup(a->name);
		return;
	}
	if (strcmp(s->nick, a->name) != 0) {
		cmd_change_nick(s, a->name);
		return;
	}
	struct user *u = s->user;
	free(u->account);
	u->account = xstrdup(a->regid);
	presence_send_online(s->srv, u);
	notify_account(s->srv, u, a->name);
}

/* Logs s out (its account changed under it): 901, and why. */
static void logout(struct session *s, const char *code, const char *why)
{
	char src[128];
	struct line_tags t = LINE_TAGS_INIT;
	free(s->account);
	s->account = NULL;
	reply_num(s, 901, "%s :You are now logged out", reply_source(s->nick, src, sizeof src));
	reply_line(s, &t, s->srv->name, "FAIL * %s %s :%s", code, s->nick, why);
}

/* u is online here and elsewhere under one name, but the two are two
 * persons now: the holder of account a elsewhere keeps u; the sessions here
 * become the guest guest. They see NICK; the members of their rooms here see
 * the guest JOIN (the name's holder stays); the other replicas hear that the
 * name went offline here and the guest came online. */
static void split_user(struct server *srv, struct user *u, const struct chat_account *a, const char *guest)
{
	char old[128], src[128];
	struct membership *m, *tmp, *mm, *mt;
	struct line_tags t = LINE_TAGS_INIT;
	reply_source(u->nick, old, sizeof old);
	presence_send_offline(srv, u->nick, "Changed nick");
	struct user *n = presence_split(srv, u, guest);
	free(u->account);
	u->account = xstrdup(a->regid);
	reply_source(guest, src, sizeof src);
	for (struct session *o = n->sessions; o; o = o->next_of_user) {
		reply_line(o, &t, old, "NICK :%s", guest);
		free(o->nick);
		o->nick = xstrdup(guest);
	}
	presence_send_online(srv, n);
	HASH_ITER(hh_user, n->rooms, m, tmp) {
		presence_send_join(srv, n, m->room);
		HASH_ITER(hh_room, m->room->members, mm, mt)
			if (mm->user != n)
				for (struct session *o = mm->user->sessions; o; o = o->next_of_user)
					reply_line(o, &t, src, "JOIN %s", m->room->name);
	}
}

/* The user u (here) holds name but is not the account now registered under
 * it, or was logged in to a registration no longer in force: its sessions
 * here are logged out (if they were) and renamed if someone else holds the
 * name now. */
static void settle_user(struct server *srv, struct user *u, const struct chat_account *a)
{
	int lost = u->account && (!a || strcmp(u->account, a->regid) != 0);
	char name[CHAT_NICK_MAX + 1], former[CHAT_NICK_MAX + 1] = "";
	snprintf(name, sizeof name, "%s", u->nick);
	if (!lost && (!a || (u->account && strcmp(u->account, a->regid) == 0)))
		return;
	if (lost) /* the name its lines show under from now on */
		former_nick(name, u->account, former);
	if (lost) {
		const char *why = a ? "Your account was registered earlier by someone else (the network was split); "
				      "you are logged out. What you wrote is kept."
				    : "Your account was removed; you are logged out.";
		for (struct session *o = u->sessions; o; o = o->next_of_user)
			logout(o, a ? "ACCOUNT_LOST" : "ACCOUNT_REMOVED", why);
		free(u->account);
		u->account = NULL;
		presence_send_online(srv, u);
		notify_account(srv, u, NULL);
	}
	if (a && u->sessions) {
		char *guest = lost && !presence_user(srv, former) && !chat_account_find(srv->chat, former)
				      ? xstrdup(former) : guest_nick(srv, name);
		struct line_tags t = LINE_TAGS_INIT;
		for (struct session *o = u->sessions; o; o = o->next_of_user)
			reply_line(o, &t, srv->name, "NOTE * NICK_RESERVED %s :%s is now a registered account; you are %s",
				   name, name, guest);
		if (presence_elsewhere(u, srv->cfg.id))
			split_user(srv, u, a, guest);
		else
			cmd_rename_user(srv, u, guest);
		free(guest);
	}
}

void accounts_changed(struct server *srv, const char *name)
{
	if (!accounts_enabled(srv))
		return;
	const struct chat_account *a = chat_account_find(srv->chat, name);
	struct user *u = presence_user(srv, name);
	if (u && u->sessions) {
		settle_user(srv, u, a);
	} else if (u) {
		/* Online elsewhere only: its replicas settle their sessions, and
		 * whoever keeps the name there holds the account now. */
		free(u->account);
		u->account = a ? xstrdup(a->regid) : NULL;
	}
	/* Sessions not yet registered that logged in to a registration no longer in force. */
	struct session *s, *tmp;
	HASH_ITER(hh, srv->sessions, s, tmp) {
		if (s->registered || !s->account || !s->nick || strcasecmp(s->nick, name) != 0)
			continue;
		if (!a || strcmp(a->regid, s->account) != 0)
			logout(s, a ? "ACCOUNT_LOST" : "ACCOUNT_REMOVED", "That account is no longer registered");
	}
}

/* ---- failed logins ---- */

struct auth_bucket {
	char *key;               /* "a <account>" or "h <address>" */
	struct bucket b;
	UT_hash_handle hh;
};

/* The failure allowance of key, refilled to now, made (full) if new. */
static struct auth_bucket *auth_bucket_get(struct server *srv, const char *key)
{
	struct auth_bucket *b;
	uint64_t now = uv_now(srv->loop);
	HASH_FIND_STR(srv->auth_buckets, key, b);
	if (!b) {
		if (HASH_COUNT(srv->auth_buckets) >= AUTH_BUCKETS_MAX)
			auth_buckets_prune(srv, 0);
		b = xcalloc(1, sizeof *b);
		b->key = xstrdup(key);
		bucket_init(&b->b, AUTH_FAIL_BURST, now);
		HASH_ADD_KEYPTR(hh, srv->auth_buckets, b->key, strlen(b->key), b);
	}
	bucket_refill(&b->b, AUTH_FAIL_BURST, AUTH_FAIL_RATE, now);
	return b;
}

/* The two buckets of a login to account from s's address. */
static void buckets_of(struct session *s, const char *account, struct auth_bucket **by_account,
		       struct auth_bucket **by_host)
{
	char *fold = chat_casefold(account);
	char *k1 = xasprintf("a %s", fold), *k2 = xasprintf("h %s", s->host);
	*by_account = auth_bucket_get(s->srv, k1);
	*by_host = auth_bucket_get(s->srv, k2);
	free(fold);
	free(k1);
	free(k2);
}

int auth_allowed(struct session *s, const char *account)
{
	struct auth_bucket *a, *h;
	buckets_of(s, account, &a, &h);
	return a->b.tokens >= 1 && h->b.tokens >= 1;
}

void auth_failed(struct session *s, const char *account)
{
	struct auth_bucket *a, *h;
	buckets_of(s, account, &a, &h);
	a->b.tokens = a->b.tokens >= 1 ? a->b.tokens - 1 : 0;
	h->b.tokens = h->b.tokens >= 1 ? h->b.tokens - 1 : 0;
	log_info("auth: failed login to %s from %s", account, s->host);
}

void auth_buckets_prune(struct server *srv, int all)
{
	struct auth_bucket *b, *tmp;
	uint64_t now = uv_now(srv->loop);
	HASH_ITER(hh, srv->auth_buckets, b, tmp) {
		if (!all && bucket_refill(&b->b, AUTH_FAIL_BURST, AUTH_FAIL_RATE, now) < AUTH_FAIL_BURST)
			continue;
		HASH_DEL(srv->auth_buckets, b);
		free(b->key);
		free(b);
	}
}
