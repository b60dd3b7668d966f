/*
 * room_access.c: who may do what in a room, from its modes (chat, modes.c)
 * as this replica knows them now: operators and voice, bans and their
 * exceptions, invitations, the key, the limit, secret rooms. A user is a
 * person here (its nick with its account), so an operator's status follows
 * its account, and a guest's its name. A room whose OP_ROOM this replica
 * made is still on its way has its founder from that announcement.
 */
#include <stdlib.h>
#include <string.h>

#include "server.h"

char *user_person(const struct user *u)
{
	return chat_person(u->nick, u->account);
}

/* Whether u is an operator (*op) and has voice (*voice) in room name: one
 * lookup of the room and of u's person for both. */
static void room_status(struct server *srv, const char *name, const struct user *u, int *op, int *voice)
{
	struct chat_room *room = chat_room_find(srv->chat, name);
	char *person = user_person(u);
	const char *pending = room ? NULL : replica_announced_by(srv, name);
	*op = room ? chat_room_is_op(room, person) : pending && strcmp(pending, person) == 0;
	*voice = room && chat_room_is_voiced(room, person);
	free(person);
}

int room_is_op(struct server *srv, const char *name, const struct user *u)
{
	int op, voice;
	room_status(srv, name, u, &op, &voice);
	return op;
}

int room_is_voiced(struct server *srv, const char *name, const struct user *u)
{
	int op, voice;
	room_status(srv, name, u, &op, &voice);
	return voice;
}

struct mask_hit {
	const char *subject;
	int hit;
};

static void mask_try(const char *mask, const char *setter, int64_t set_ms, void *arg)
{
	struct mask_hit *h = arg;
	(void)setter;
	(void)set_ms;
	h->hit |= irc_mask_match(mask, h->subject);
}

/* 1 if u's nick!user@host matches a mask on list ('b', 'e', 'I') of room. */
static int on_list(const struct chat_room *room, char list, const struct user *u)
{
	char src[128];
	struct mask_hit h = {reply_source(u->nick, src, sizeof src), 0};
	chat_room_list_each(room, list, mask_try, &h);
	return h.hit;
}

int room_is_banned(struct server *srv, const char *name, const struct user *u)
{
	struct chat_room *room = chat_room_find(srv->chat, name);
	return room && on_list(room, 'b', u) && !on_list(room, 'e', u);
}

const char *room_prefix(struct server *srv, const char *name, const struct user *u, int all)
{
	int op, voice;
	room_status(srv, name, u, &op, &voice);
	if (op && voice && all)
		return "@+";
	return op ? "@" : voice ? "+" : "";
}

int room_visible(struct server *srv, const char *name, struct user *u)
{
	struct chat_room *room = chat_room_find(srv->chat, name);
	return !room || !(room->modes & CHAT_MODE_S) || presence_in_room(u, presence_room(srv, name));
}

int room_history_open(struct server *srv, const char *name, struct user *u)
{
	struct chat_room *room = chat_room_find(srv->chat, name);
	return !room || !((room->modes & (CHAT_MODE_I | CHAT_MODE_S)) || room->key[0]) ||
	       presence_in_room(u, presence_room(srv, name));
}

int room_may_join(struct session *s, const char *name, const char *key)
{
	struct chat_room *room = chat_room_find(s->srv->chat, name);
	struct room_presence *here = presence_room(s->srv, name);
	if (!room || room_is_op(s->srv, name, s->user))
		return 1;
	char *person = user_person(s->user);
	int invited = chat_room_invited(room, person);
	free(person);
	if (room_is_banned(s->srv, name, s->user) && !invited) {
		reply_num(s, 474, "%s :Cannot join channel (+b)", room->name);
		return 0;
	}
	if ((room->modes & CHAT_MODE_I) && !invited && !on_list(room, 'I', s->user)) {
		reply_num(s, 473, "%s :Cannot join channel (+i)", room->name);
		return 0;
	}
	if (room->key[0] && (!key || strcmp(key, room->key) != 0)) {
		reply_num(s, 475, "%s :Cannot join channel (+k)", room->name);
		return 0;
	}
	if (room->limit && here && presence_count(here) >= room->limit) {
		reply_num(s, 471, "%s :Cannot join channel (+l)", room->name);
		return 0;
	}
	return 1;
}

int room_may_speak(struct session *s, const char *name, int quiet)
{
	struct chat_room *room = chat_room_find(s->srv->chat, name);
	if (!room || (!(room->modes & CHAT_MODE_M) && !room->bans)) /* the common case, at once */
		return 1;
	int op, voice;
	room_status(s->srv, name, s->user, &op, &voice);
	if (op || voice)
		return 1;
	const char *why = (room->modes & CHAT_MODE_M) ? "+m" : room_is_banned(s->srv, name, s->user) ? "+b" : NULL;
	if (why && !quiet)
		reply_num(s, 404, "%s :Cannot send to channel (%s)", room->name, why);
	return why == NULL;
}
