/*
 * cmd_mode.c: moderation: MODE (a room's modes, lists and members' status;
 * a user's own modes), KICK and INVITE. A change is an operation (OP_MODE,
 * OP_KICK, OP_INVITE: chat/modes.c), so it reaches every replica and merges
 * after a partition; what it changed is shown to the room when it is
 * stored (fanout.c). Who may change what is decided here, on the state this
 * replica has now (room_access.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

#define MODES_MAX 6     /* changes taken from one MODE line (ISUPPORT MODES; at
                         * most CHAT_MODE_CHANGES_MAX) */
#define MASK_MAX 100    /* longest ban/exception/invex mask */
#define KEY_MAX 23      /* longest room key */

/* ---- a room's modes, as the numerics show them ---- */

/* "+<flags>[k][l]" and its parameters (the key only for members). */
static void mode_string(const struct chat_room *room, int member, char *out, size_t len)
{
	static const char flags[] = "imnst";
	static const unsigned bits[] = {CHAT_MODE_I, CHAT_MODE_M, CHAT_MODE_N, CHAT_MODE_S, CHAT_MODE_T};
	char letters[16] = "+";
	size_t n = 1;
	for (size_t i = 0; flags[i]; i++)
		if (room->modes & bits[i])
			letters[n++] = flags[i];
	if (room->key[0])
		letters[n++] = 'k';
	if (room->limit)
		letters[n++] = 'l';
	letters[n] = '\0';
	int w = snprintf(out, len, "%s", letters);
	if (room->key[0] && w >= 0 && (size_t)w < len)
		w += snprintf(out + w, len - (size_t)w, " %s", member ? room->key : "*");
	if (room->limit && w >= 0 && (size_t)w < len)
		snprintf(out + w, len - (size_t)w, " %u", room->limit);
}

struct list_reply {
	struct session *s;
	const char *room;
	int num;
};

static void list_line(const char *mask, const char *setter, int64_t set_ms, void *arg)
{
	struct list_reply *l = arg;
	reply_num(l->s, l->num, "%s %s %s %lld", l->room, mask, setter, (long long)(set_ms / 1000));
}

/* The list b, e or I of room: 367/368, 348/349, 346/347. */
static void send_list(struct session *s, const struct chat_room *room, const char *name, char list)
{
	int num = list == 'b' ? 367 : list == 'e' ? 348 : 346;
	struct list_reply l = {s, name, num};
	if (room)
		chat_room_list_each(room, list, list_line, &l);
	reply_num(s, num + 1, "%s :End of channel %s list", name,
		  list == 'b' ? "ban" : list == 'e' ? "exception" : "invite");
}

/* ---- changes ---- */

/* "nick" -> "nick!*@*", "nick!user" -> "nick!user@*", "user@host" -> "*!user@host". */
static char *full_mask(const char *mask)
{
	const char *bang = strchr(mask, '!'), *at = strchr(mask, '@');
	if (bang && at)
		return xstrdup(mask);
	if (bang)
		return xasprintf("%s@*", mask);
	if (at)
		return xasprintf("*!%s", mask);
	return xasprintf("%s!*@*", mask);
}

/* One change to submit. */
struct change {
	char body[3];   /* "+x" / "-x" */
	char *param;    /* as stored: a person for o/v, a mask, the key, the limit, "" */
};

/* 1 if the room already says what change c would make it say. */
static int already(struct server *srv, const struct chat_room *room, const char *name, const struct change *c,
		   const struct user *who)
{
	int on = c->body[0] == '+';
	char m = c->body[1];
	if (!room)
		return 0;
	if (m == 'o')
		return room_is_op(srv, name, who) == on;
	if (m == 'v')
		return room_is_voiced(srv, name, who) == on;
	if (m == 'k')
		return on ? strcmp(room->key, c->param) == 0 : room->key[0] == '\0';
	if (m == 'l')
		return on ? room->limit == (unsigned)atoi(c->param) : room->limit == 0;
	const char *p = strchr("imnst", m);
	if (p) {
		static const unsigned bits[] = {CHAT_MODE_I, CHAT_MODE_M, CHAT_MODE_N, CHAT_MODE_S, CHAT_MODE_T};
		return ((room->modes & bits[p - "imnst"]) != 0) == on;
	}
	return 0; /* lists: a change of a mask is always stored */
}

/* Reads the next change of a room MODE line: *sign, letters at *p, params
 * from m->params[*arg]. Fills c and returns 1 for a change to make, 0 for
 * a letter done here (a list shown, an error answered), -1 at the end. */
static int next_change(struct session *s, struct irc_msg *m, const char *name, const char **p, char *sign,
		       size_t *arg, struct change *c, const struct user **who)
{
	struct server *srv = s->srv;
	struct chat_room *room = chat_room_find(srv->chat, name);
	for (; **p == '+' || **p == '-'; (*p)++)
		*sign = **p;
	char x = **p;
	if (!x)
		return -1;
	(*p)++;
	const char *param = *arg < m->nparams ? m->params[*arg] : NULL;
	memset(c, 0, sizeof *c);
	c->body[0] = *sign;
	c->body[1] = x;
	*who = NULL;
	if (strchr("beI", x)) {
		if (!param) {
			send_list(s, room, name, x);
			return 0;
		}
		(*arg)++;
		if (strlen(param) > MASK_MAX) {
			reply_num(s, 696, "%s %c %s :Invalid mask", name, x, param);
			return 0;
		}
		c->param = full_mask(param);
	} else if (x == 'o' || x == 'v') {
		if (!param)
			return 0;
		(*arg)++;
		struct user *u = presence_user(srv, param);
		if (!u) {
			reply_num(s, 401, "%s :No such nick/channel", param);
			return 0;
		}
		if (!presence_in_room(u, presence_room(srv, name))) {
			reply_num(s, 441, "%s %s :They aren't on that channel", u->nick, name);
			return 0;
		}
		c->param = user_person(u);
		*who = u;
	} else if (x == 'k') {
		if (*sign == '+' && (!param || !*param || strlen(param) > KEY_MAX || strpbrk(param, ", :"))) {
			if (param)
				(*arg)++;
			reply_num(s, 696, "%s k * :Invalid key: 1 to %d characters, no space, comma or colon",
				  name, KEY_MAX);
			return 0;
		}
		if (param)
			(*arg)++;
		c->param = xstrdup(*sign == '+' ? param : "");
	} else if (x == 'l') {
		if (*sign == '+') {
			if (!param)
				return 0;
			(*arg)++;
			if (strspn(param, "0123456789") != strlen(param) || atoi(param) <= 0 || strlen(param) > 9) {
				reply_num(s, 696, "%s l %s :Invalid limit", name, param);
				return 0;
			}
			c->param = xstrdup(param);
		} else {
			c->param = xstrdup("");
		}
	} else if (strchr("imnst", x)) {
		c->param = xstrdup("");
	} else {
		reply_num(s, 472, "%c :is unknown mode char to me", x);
		return 0;
	}
	return 1;
}

static void change_free(struct change *c)
{
	free(c->param);
}

/* Submits changes[0..n) of room name as one OP_MODE: "+x-y..." and the
 * parameters of those that take one, space-separated (chat_mode_next). */
static void submit_changes(struct session *s, const char *name, const struct change *changes, size_t n)
{
	struct buf body = {0}, params = {0};
	for (size_t i = 0; i < n; i++) {
		buf_puts(&body, changes[i].body);
		if (changes[i].param[0])
			buf_printf(&params, "%s%s", params.len ? " " : "", changes[i].param);
	}
	struct op op = {0};
	op.kind = OP_MODE;
	op.target = xstrdup(name);
	op.author = xstrdup(s->nick);
	op.body = xstrdup(body.data);
	op.ref = xstrdup(params.len ? params.data : "");
	int why = replica_submit(s->srv, s, "MODE", &op);
	if (why)
		reply_refused(s, "MODE", name, why);
	buf_free(&body);
	buf_free(&params);
}

static void room_mode(struct session *s, struct irc_msg *m)
{
	struct server *srv = s->srv;
	struct chat_room *room = chat_room_find(srv->chat, m->params[0]);
	struct room_presence *r = presence_room(srv, m->params[0]);
	if (!room && !r) {
		reply_num(s, 403, "%s :No such channel", m->params[0]);
		return;
	}
	const char *name = room ? room->name : r->name;
	int member = presence_in_room(s->user, r);
	if (m->nparams < 2) {
		char modes[128] = "+nt";
		if (room)
			mode_string(room, member, modes, sizeof modes);
		reply_num(s, 324, "%s %s", name, modes);
		reply_num(s, 329, "%s %lld", name, (long long)((room ? room->created_ms : wall_ms()) / 1000));
		return;
	}
	struct change changes[MODES_MAX];
	size_t n = 0, arg = 2;
	const char *p = m->params[1];
	char sign = '+';
	int op = room_is_op(srv, name, s->user), refused = 0, rc;
	struct change c;
	const struct user *who;
	while ((rc = next_change(s, m, name, &p, &sign, &arg, &c, &who)) >= 0) {
		if (rc == 0)
			continue;
		if (!op || n == MODES_MAX || already(srv, room, name, &c, who)) {
			if (!op && !refused++)
				reply_num(s, 482, "%s :You're not channel operator", name);
			change_free(&c);
			continue;
		}
		changes[n++] = c;
	}
	if (n)
		submit_changes(s, name, changes, n);
	for (size_t i = 0; i < n; i++)
		change_free(&changes[i]);
}

/* MODE <nick> [changes]: a user's own modes; chorus keeps i and w as the
 * client sets them (they change nothing else), and o after OPER. */
static void user_mode(struct session *s, struct irc_msg *m)
{
	if (strcasecmp(m->params[0], s->nick) != 0) {
		if (presence_user(s->srv, m->params[0]))
			reply_num(s, 502, ":Can't change mode for other users");
		else
			reply_num(s, 401, "%s :No such nick/channel", m->params[0]);
		return;
	}
	if (m->nparams >= 2) {
		char sign = '+', done[32] = "";
		size_t n = 0;
		for (const char *p = m->params[1]; *p; p++) {
			if (*p == '+' || *p == '-') {
				sign = *p;
				continue;
			}
			if (*p != 'i' && *p != 'w') {
				reply_num(s, 501, ":Unknown MODE flag");
				continue;
			}
			char *have = strchr(s->umodes, *p);
			if ((sign == '+') == (have != NULL) || n + 2 >= sizeof done)
				continue;
			if (sign == '+')
				strncat(s->umodes, p, 1);
			else
				memmove(have, have + 1, strlen(have));
			done[n++] = sign;
			done[n++] = *p;
		}
		if (n) {
			char src[128];
			struct line_tags t = LINE_TAGS_INIT;
			reply_line(s, &t, reply_source(s->nick, src, sizeof src), "MODE %s :%s", s->nick, done);
		}
		return;
	}
	reply_num(s, 221, "+%s%s", s->umodes, s->oper ? "o" : "");
}

void cmd_mode(struct session *s, struct irc_msg *m)
{
	if (m->params[0][0] == '#')
		room_mode(s, m);
	else
		user_mode(s, m);
}

/* ---- KICK and INVITE ---- */

/* The room named name for an operator's command by s: NULL (answered) if
 * it does not exist (403), s is not in it (442) or not an operator (482). */
static const char *room_for_op(struct session *s, const char *name, int need_op)
{
	struct chat_room *room = chat_room_find(s->srv->chat, name);
	struct room_presence *r = presence_room(s->srv, name);
	if (!room && !r) {
		reply_num(s, 403, "%s :No such channel", name);
		return NULL;
	}
	const char *shown = room ? room->name : r->name;
	if (!presence_in_room(s->user, r)) {
		reply_num(s, 442, "%s :You're not on that channel", shown);
		return NULL;
	}
	if (need_op && !room_is_op(s->srv, shown, s->user)) {
		reply_num(s, 482, "%s :You're not channel operator", shown);
		return NULL;
	}
	return shown;
}

/* Submits an OP_KICK or OP_INVITE by s of user u in room name (body: the
 * reason of a kick); a refusal is answered. Returns 0 or the refusal. */
static int submit_about(struct session *s, int kind, const char *name, const char *body, struct user *u)
{
	const char *cmd = kind == OP_KICK ? "KICK" : "INVITE";
	struct op op = {0};
	op.kind = (uint8_t)kind;
	op.target = xstrdup(name);
	op.author = xstrdup(s->nick);
	op.body = xstrdup(body);
	op.ref = user_person(u);
	int why = replica_submit(s->srv, s, cmd, &op);
	if (why)
		reply_refused(s, cmd, name, why);
	return why;
}

/* KICK <room> <nick>[,<nick>...] [:reason] */
void cmd_kick(struct session *s, struct irc_msg *m)
{
	const char *name = room_for_op(s, m->params[0], 1);
	if (!name)
		return;
	const char *reason = m->nparams > 2 && *m->params[2] ? m->params[2] : s->nick;
	char *list = xstrdup(m->params[1]), *save = NULL;
	for (char *nick = strtok_r(list, ",", &save); nick; nick = strtok_r(NULL, ",", &save)) {
		struct user *u = presence_user(s->srv, nick);
		if (!u || !presence_in_room(u, presence_room(s->srv, name))) {
			reply_num(s, 441, "%s %s :They aren't on that channel", nick, name);
			continue;
		}
		if (submit_about(s, OP_KICK, name, reason, u))
			break;
	}
	free(list);
}

/* INVITE <nick> <room> */
void cmd_invite(struct session *s, struct irc_msg *m)
{
	struct user *u = presence_user(s->srv, m->params[0]);
	if (!u) {
		reply_num(s, 401, "%s :No such nick/channel", m->params[0]);
		return;
	}
	struct chat_room *room = chat_room_find(s->srv->chat, m->params[1]);
	const char *name = room_for_op(s, m->params[1], room && (room->modes & CHAT_MODE_I));
	if (!name)
		return;
	if (presence_in_room(u, presence_room(s->srv, name))) {
		reply_num(s, 443, "%s %s :is already on channel", u->nick, name);
		return;
	}
	submit_about(s, OP_INVITE, name, "", u);
}
