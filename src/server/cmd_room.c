/*
 * cmd_room.c: rooms: JOIN, PART, NAMES, WHO, LIST, TOPIC. Membership is the
 * user's (every session of a user is in the same rooms); rooms themselves,
 * their topics, modes and messages are replicated state (chat); who may
 * join, see and set what is room_access.c's.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* 1 if code point cp may not be in a room name: controls (C0, DEL, C1),
 * bidirectional marks, embeddings, overrides and isolates (they reorder
 * how a name shows), and the invisible ones (zero-width, BOM). */
static int cp_forbidden(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

int valid_room(const char *name)
{
	size_t len = strlen(name);
	if (len < 2 || len > ROOM_MAX || name[0] != '#' || !utf8_valid(name, len))
		return 0;
	for (const unsigned char *p = (const unsigned char *)name; *p;) {
		uint32_t cp = utf8_next(&p);
		if (cp == ' ' || cp == ',' || cp == ':' || cp_forbidden(cp))
			return 0;
	}
	return 1;
}

/* NAMES of r: its members with their prefixes (both with multi-prefix;
 * nick!user@host with userhost-in-names), "@" for a secret room, "=" else;
 * nothing but 366 for a secret room s is not in. */
static void send_names(struct session *s, struct room_presence *r)
{
	struct chat_room *room = chat_room_find(s->srv->chat, r->name);
	const char *kind = room && (room->modes & CHAT_MODE_S) ? "@" : "=";
	struct membership *m, *tmp;
	struct buf b = {0};
	char src[128];
	if (room_visible(s->srv, r->name, s->user))
		HASH_ITER(hh_room, r->members, m, tmp) {
			if (b.len > 400) {
				reply_num(s, 353, "%s %s :%s", kind, r->name, b.data);
				buf_reset(&b);
			}
			if (b.len)
				buf_putc(&b, ' ');
			buf_puts(&b, room_prefix(s->srv, r->name, m->user, (s->caps & CAP_MULTI_PREFIX) != 0));
			buf_puts(&b, (s->caps & CAP_USERHOST_IN_NAMES) ? reply_source(m->user->nick, src, sizeof src)
								       : m->user->nick);
		}
	if (b.len)
		reply_num(s, 353, "%s %s :%s", kind, r->name, b.data);
	reply_num(s, 366, "%s :End of /NAMES list.", r->name);
	buf_free(&b);
}

static void send_topic(struct session *s, const struct chat_room *room, int always)
{
	if (room && room->topic[0]) {
		reply_num(s, 332, "%s :%s", room->name, room->topic);
		reply_num(s, 333, "%s %s %lld", room->name, room->topic_author,
			  (long long)(room->topic_ms / 1000));
	} else if (always) {
		reply_num(s, 331, "%s :No topic is set", room ? room->name : "*");
	}
}

void cmd_join_burst(struct session *s, struct room_presence *r)
{
	struct chat_room *room = chat_room_find(s->srv->chat, r->name);
	send_topic(s, room, 0);
	send_names(s, r);
	if (room && !(s->caps & CAP_CHATHISTORY)) {
		/* A room's cache holds its last REPLAY_ON_JOIN lines (chat_set_cache). */
		const struct chat_msg *msgs[REPLAY_ON_JOIN];
		size_t n = chat_history_latest(room->history, REPLAY_ON_JOIN, msgs);
		if (n)
			fanout_history(s, room->name, msgs, n);
	}
}

/* Sends line "<verb> <room>[ :text]" from u to every session in room r. */
static void tell_room(struct room_presence *r, const char *source, const char *verb,
		      const char *text)
{
	struct membership *m, *tmp;
	struct line_tags t = LINE_TAGS_INIT;
	HASH_ITER(hh_room, r->members, m, tmp)
		for (struct session *o = m->user->sessions; o; o = o->next_of_user) {
			if (text)
				reply_line(o, &t, source, "%s %s :%s", verb, r->name, text);
			else
				reply_line(o, &t, source, "%s %s", verb, r->name);
		}
}

/* Makes a room known to the cluster the first time someone joins it; the
 * joining person is its founder, an operator, if nobody was in it (someone
 * on another replica may have made it a moment before: their op will say). */
static void announce_room(struct session *s, const char *name, int empty)
{
	replica_announce(s->srv, OP_ROOM, name, s->nick, s->account, empty);
}

void cmd_room_joined(struct server *srv, struct user *u, struct room_presence *r, struct batch_set *b)
{
	struct membership *m, *tmp;
	char src[128];
	struct line_tags t = LINE_TAGS_INIT;
	const char *account = account_shown(srv, u->nick, u->account);
	reply_source(u->nick, src, sizeof src);
	t.account = account;
	HASH_ITER(hh_room, r->members, m, tmp)
		for (struct session *o = m->user->sessions; o; o = o->next_of_user) {
			t.batch = batch_for(b, o);
			if (o->caps & CAP_EXTENDED_JOIN)
				reply_line(o, &t, src, "JOIN %s %s :%s", r->name, account ? account : "*",
					   u->realname);
			else
				reply_line(o, &t, src, "JOIN %s", r->name);
			if (u->away && m->user != u && (o->caps & CAP_AWAY_NOTIFY))
				reply_line(o, &t, src, "AWAY :%s", u->away);
		}
	for (struct session *o = u->sessions; o; o = o->next_of_user)
		cmd_join_burst(o, r);
}

void cmd_room_parted(struct server *srv, struct user *u, struct room_presence *r, const char *reason)
{
	char src[128];
	tell_room(r, reply_source(u->nick, src, sizeof src), "PART", reason && *reason ? reason : "Leaving");
	presence_part(srv, u, r);
}

static void join_one(struct session *s, const char *name, const char *key)
{
	struct room_presence *r;
	if (is_timeline(name)) {
		cmd_timeline_join(s);
		return;
	}
	if (!valid_room(name)) {
		reply_num(s, 403, "%s :No such channel", name);
		return;
	}
	struct chat_room *room = chat_room_find(s->srv->chat, name);
	struct room_presence *here = presence_room(s->srv, name);
	if (presence_in_room(s->user, here))
		return; /* already in: nothing to do */
	if (HASH_CNT(hh_user, s->user->rooms) >= (unsigned)s->srv->cfg.rooms_per_user) {
		reply_num(s, 405, "%s :You have joined too many channels (%d)", name, s->srv->cfg.rooms_per_user);
		return;
	}
	if (here && presence_count(here) >= (unsigned)s->srv->cfg.members_per_room) {
		reply_num(s, 471, "%s :Cannot join channel: it is full (%d)", name, s->srv->cfg.members_per_room);
		return;
	}
	if (!room_may_join(s, name, key))
		return;
	if (!room && !here && !session_may_create(s)) {
		reply_fail(s, "JOIN", "TOO_MANY_NEW_NAMES", name,
			   "You made too many new rooms and nicks in the last minute; wait a little");
		return;
	}
	if (!presence_join(s->srv, s->user, room ? room->name : name, &r))
		return; /* already in: nothing to do */
	announce_room(s, r->name, here == NULL);
	presence_send_join(s->srv, s->user, r);
	cmd_room_joined(s->srv, s->user, r, NULL);
}

/* Leaves r, telling everyone. */
static void part_one(struct session *s, struct room_presence *r, const char *reason)
{
	presence_send_part(s->srv, s->user, r, reason);
	cmd_room_parted(s->srv, s->user, r, reason);
}

/* Leaves every room and the timeline (JOIN 0). */
static void part_all(struct session *s)
{
	struct membership *m, *tmp;
	HASH_ITER(hh_user, s->user->rooms, m, tmp)
		part_one(s, m->room, "Left all channels");
	if (s->user->in_timeline)
		cmd_timeline_part(s, "Left all channels");
}

void cmd_join(struct session *s, struct irc_msg *m)
{
	if (strcmp(m->params[0], "0") == 0) {
		part_all(s);
		return;
	}
	char *list = xstrdup(m->params[0]), *save = NULL;
	char *keys = xstrdup(m->nparams > 1 ? m->params[1] : ""), *ksave = NULL;
	int count = 0;
	for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		/* the key in the same place of the key list */
		char *key = strtok_r(count ? NULL : keys, ",", &ksave);
		if (++count > 10) {
			reply_num(s, 407, "%s :Too many targets", name);
			break;
		}
		join_one(s, name, key);
	}
	free(list);
	free(keys);
}

void cmd_part(struct session *s, struct irc_msg *m)
{
	char *list = xstrdup(m->params[0]), *save = NULL;
	const char *reason = m->nparams > 1 ? m->params[1] : "Leaving";
	for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		struct room_presence *r = presence_room(s->srv, name);
		if (is_timeline(name)) {
			cmd_timeline_part(s, reason);
		} else if (!r && !chat_room_find(s->srv->chat, name)) {
			reply_num(s, 403, "%s :No such channel", name);
		} else if (!presence_in_room(s->user, r)) {
			reply_num(s, 442, "%s :You're not on that channel", name);
		} else {
			part_one(s, r, reason);
		}
	}
	free(list);
}

void cmd_names(struct session *s, struct irc_msg *m)
{
	if (m->nparams < 1) {
		reply_num(s, 366, "* :End of /NAMES list.");
		return;
	}
	struct room_presence *r = presence_room(s->srv, m->params[0]);
	if (r)
		send_names(s, r);
	else
		reply_num(s, 366, "%s :End of /NAMES list.", m->params[0]);
}

/* 1 if one of u's sessions here has user mode c (i, or o after OPER). */
static int user_mode_here(const struct user *u, char c)
{
	for (const struct session *o = u->sessions; o; o = o->next_of_user)
		if (c == 'o' ? o->oper : strchr(o->umodes, c) != NULL)
			return 1;
	return 0;
}

/* WHOX (the "%fields[,token]" of WHO): which fields, and the token. */
struct whox {
	char fields[16];        /* letters of tcuihsnfdlaor asked for; "" = plain WHO */
	char token[4];
};

/* The WHOX request in param ("%cnf,42"), or none. */
static struct whox whox_of(const char *param)
{
	struct whox w = {"", "0"};
	if (!param || param[0] != '%')
		return w;
	size_t n = strcspn(param + 1, ",");
	snprintf(w.fields, sizeof w.fields, "%.*s", (int)n, param + 1);
	if (param[1 + n] == ',')
		snprintf(w.token, sizeof w.token, "%s", param + 2 + n);
	return w;
}

/* A 352 line (or 354 with WHOX fields, in the order tcuihsnfdlaor): flags
 * H or G (away), * for an operator, the room prefix. */
static void who_user(struct session *s, const char *room, struct user *u, const struct whox *w)
{
	const char *prefix = room[0] == '#' ? room_prefix(s->srv, room, u, (s->caps & CAP_MULTI_PREFIX) != 0) : "";
	char server[SERVER_NAME_MAX], flags[8];
	server_name_of(s->srv, u->home, server);
	snprintf(flags, sizeof flags, "%c%s%s", u->away ? 'G' : 'H', user_mode_here(u, 'o') ? "*" : "", prefix);
	if (!w->fields[0]) {
		reply_num(s, 352, "%s %s chorus %s %s %s :0 %s", room, u->username, server, u->nick, flags,
			  u->realname);
		return;
	}
	const char *account = account_shown(s->srv, u->nick, u->account);
	struct buf b = {0};
	for (const char *f = "tcuihsnfdlao"; *f; f++) {
		if (!strchr(w->fields, *f))
			continue;
		const char *v = *f == 't' ? w->token : *f == 'c' ? room : *f == 'u' ? u->username
			: *f == 'i' ? "255.255.255.255" : *f == 'h' ? "chorus" : *f == 's' ? server
			: *f == 'n' ? u->nick : *f == 'f' ? flags : *f == 'a' ? (account ? account : "0") : "0";
		buf_printf(&b, "%s%s", b.len ? " " : "", v);
	}
	if (strchr(w->fields, 'r'))
		buf_printf(&b, "%s:%s", b.len ? " " : "", u->realname);
	reply_num(s, 354, "%s", b.data ? b.data : "");
	buf_free(&b);
}

void cmd_who(struct session *s, struct irc_msg *m)
{
	const char *mask = m->nparams > 0 ? m->params[0] : "*";
	struct whox w = whox_of(m->nparams > 1 ? m->params[1] : NULL);
	if (mask[0] == '#') {
		struct room_presence *r = presence_room(s->srv, mask);
		struct membership *mm, *tmp;
		size_t left = 0;
		if (r && room_visible(s->srv, r->name, s->user))
			HASH_ITER(hh_room, r->members, mm, tmp) {
				if (session_has_room(s))
					who_user(s, r->name, mm->user, &w);
				else
					left++;
			}
		reply_truncated(s, "WHO", left);
	} else if (strpbrk(mask, "*?") || strcmp(mask, "0") == 0) {
		/* A mask: every user whose nick matches, but those invisible (+i)
		 * only to who shares a room with them. */
		struct user *u, *tmp;
		size_t left = 0;
		HASH_ITER(hh, s->srv->users, u, tmp) {
			if ((strcmp(mask, "0") != 0 && !irc_mask_match(mask, u->nick)) ||
			    (u != s->user && user_mode_here(u, 'i') && !presence_share_room(u, s->user)))
				continue;
			if (session_has_room(s))
				who_user(s, "*", u, &w);
			else
				left++;
		}
		reply_truncated(s, "WHO", left);
	} else {
		struct user *u = presence_user(s->srv, mask);
		if (u)
			who_user(s, "*", u, &w);
	}
	reply_num(s, 315, "%s :End of WHO list", mask);
}

struct list_ctx {
	struct session *s;
	size_t left; /* rooms left out: no room in the send queue */
};

/* A room's 322 line, or counts it as left out once the queue is full. */
static void list_line(struct list_ctx *c, const char *name, const char *topic)
{
	if (!room_visible(c->s->srv, name, c->s->user))
		return;
	if (!session_has_room(c->s)) {
		c->left++;
		return;
	}
	struct room_presence *r = presence_room(c->s->srv, name);
	reply_num(c->s, 322, "%s %u :%s", name, r ? presence_count(r) : 0, topic);
}

static void list_one(struct chat_room *room, void *arg)
{
	list_line(arg, room->name, room->topic);
}

/* LIST: every room (in name order, as long as the send queue has room), or
 * the rooms named (comma-separated). */
void cmd_list(struct session *s, struct irc_msg *m)
{
	struct list_ctx c = {s, 0};
	reply_num(s, 321, "Channel :Users  Name");
	if (m->nparams > 0 && m->params[0][0] == '#') {
		char *list = xstrdup(m->params[0]), *save = NULL;
		for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
			struct chat_room *room = chat_room_find(s->srv->chat, name);
			struct room_presence *r = presence_room(s->srv, name);
			if (room || r)
				list_line(&c, room ? room->name : r->name, room ? room->topic : "");
		}
		free(list);
	} else {
		struct room_presence *r, *tmp;
		chat_rooms_each(s->srv->chat, list_one, &c);
		HASH_ITER(hh, s->srv->rooms, r, tmp) /* joined, its op still on the way */
			if (!chat_room_find(s->srv->chat, r->name))
				list_line(&c, r->name, "");
	}
	reply_truncated(s, "LIST", c.left);
	reply_num(s, 323, ":End of /LIST");
}

void cmd_topic(struct session *s, struct irc_msg *m)
{
	const char *name = m->params[0];
	struct chat_room *room = chat_room_find(s->srv->chat, name);
	struct room_presence *r = presence_room(s->srv, name);
	if (!room && !r) {
		reply_num(s, 403, "%s :No such channel", name);
		return;
	}
	if (m->nparams < 2) {
		if (room)
			send_topic(s, room, 1);
		else /* joined, but the room's op is not stored yet */
			reply_num(s, 331, "%s :No topic is set", r->name);
		return;
	}
	if (!presence_in_room(s->user, r)) {
		reply_num(s, 442, "%s :You're not on that channel", name);
		return;
	}
	if (strlen(m->params[1]) > 390) {
		reply_fail(s, "TOPIC", "TOO_LONG", name, "Topic is longer than TOPICLEN (390)");
		return;
	}
	if (room && (room->modes & CHAT_MODE_T) && !room_is_op(s->srv, room->name, s->user)) {
		reply_num(s, 482, "%s :You're not channel operator", room->name);
		return;
	}
	struct op op = {0};
	op.kind = OP_TOPIC;
	op.target = xstrdup(room ? room->name : r->name);
	op.author = xstrdup(s->nick);
	op.body = xstrdup(m->params[1]);
	int why = replica_submit(s->srv, s, "TOPIC", &op);
	if (why)
		reply_refused(s, "TOPIC", name, why);
}
