/*
 * presence_sync.c: presence across the replicas of a view. Each replica
 * multicasts (as soft state, src/repl) its local users' changes: a user
 * coming online or going offline here, joining or leaving a room. On every
 * view change each replica re-announces all its local users with their
 * rooms; users of replicas that left the view quit inside a netsplit batch,
 * and users announced by replicas that joined come in inside a netjoin batch.
 *
 * Wire: u8 PRESENCE_VERSION, u8 kind, then strings (u32 length + bytes):
 *   ONLINE  nick username realname account away
 *   OFFLINE nick reason
 *   JOIN    nick room
 *   PART    nick room reason
 *   AWAY    nick away
 *   KILL    nick reason (an operator ended the user's connections)
 *   WALLOPS nick text (an operator's message to +w users)
 *   STATE   u32 n, n x (nick username realname account away u32 m, m x room)
 * (account: the registration the user is logged in to, or ""; away: the
 * away message, or "" when here).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define PRESENCE_VERSION 3 /* 2: users' accounts; 3: away */

enum { P_ONLINE = 1, P_OFFLINE = 2, P_JOIN = 3, P_PART = 4, P_STATE = 5, P_AWAY = 6, P_KILL = 7,
       P_WALLOPS = 8 };

static void begin(struct op_buf *b, int kind)
{
	op_buf_put_u(b, PRESENCE_VERSION, 1);
	op_buf_put_u(b, (uint64_t)kind, 1);
}

static void send_buf(struct server *srv, struct op_buf *b)
{
	if (repl_current_view(srv->repl)->n > 1 && repl_send_soft(srv->repl, b->data, b->len) < 0)
		log_warn("presence: multicast failed");
	op_buf_free(b);
}

void presence_send_online(struct server *srv, struct user *u)
{
	struct op_buf b = {0};
	begin(&b, P_ONLINE);
	op_buf_put_str(&b, u->nick);
	op_buf_put_str(&b, u->username);
	op_buf_put_str(&b, u->realname);
	op_buf_put_str(&b, u->account);
	op_buf_put_str(&b, u->away ? u->away : "");
	send_buf(srv, &b);
}

void presence_send_away(struct server *srv, struct user *u)
{
	struct op_buf b = {0};
	begin(&b, P_AWAY);
	op_buf_put_str(&b, u->nick);
	op_buf_put_str(&b, u->away ? u->away : "");
	send_buf(srv, &b);
}

void presence_send_kill(struct server *srv, const char *nick, const char *reason)
{
	struct op_buf b = {0};
	begin(&b, P_KILL);
	op_buf_put_str(&b, nick);
	op_buf_put_str(&b, reason);
	send_buf(srv, &b);
}

void presence_send_wallops(struct server *srv, const char *nick, const char *text)
{
	struct op_buf b = {0};
	begin(&b, P_WALLOPS);
	op_buf_put_str(&b, nick);
	op_buf_put_str(&b, text);
	send_buf(srv, &b);
}

void presence_send_offline(struct server *srv, const char *nick, const char *reason)
{
	struct op_buf b = {0};
	begin(&b, P_OFFLINE);
	op_buf_put_str(&b, nick);
	op_buf_put_str(&b, reason ? reason : "Client Quit");
	send_buf(srv, &b);
}

void presence_send_join(struct server *srv, struct user *u, struct room_presence *r)
{
	struct op_buf b = {0};
	begin(&b, P_JOIN);
	op_buf_put_str(&b, u->nick);
	op_buf_put_str(&b, r->name);
	send_buf(srv, &b);
}

void presence_send_part(struct server *srv, struct user *u, struct room_presence *r, const char *reason)
{
	struct op_buf b = {0};
	begin(&b, P_PART);
	op_buf_put_str(&b, u->nick);
	op_buf_put_str(&b, r->name);
	op_buf_put_str(&b, reason ? reason : "");
	send_buf(srv, &b);
}

static void state_send(struct server *srv, struct op_buf *b, uint32_t n)
{
	for (int i = 0; i < 4; i++)
		b->data[2 + i] = (uint8_t)(n >> (8 * i));
	if (repl_send_soft(srv->repl, b->data, b->len) < 0)
		log_warn("presence: multicast failed");
	b->len = 0;
	begin(b, P_STATE);
	op_buf_put_u(b, 0, 4);
}

/* Announces every user with a session here, with its rooms, in messages
 * that stay well under GROUP_MSG_MAX. */
static void send_state(struct server *srv)
{
	struct op_buf b = {0};
	struct user *u, *tmp;
	struct membership *m, *mt;
	uint32_t n = 0;
	if (repl_current_view(srv->repl)->n < 2)
		return;
	begin(&b, P_STATE);
	op_buf_put_u(&b, 0, 4);
	HASH_ITER(hh, srv->users, u, tmp) {
		if (!u->sessions)
			continue;
		if (b.len > GROUP_MSG_MAX / 2) {
			state_send(srv, &b, n);
			n = 0;
		}
		n++;
		op_buf_put_str(&b, u->nick);
		op_buf_put_str(&b, u->username);
		op_buf_put_str(&b, u->realname);
		op_buf_put_str(&b, u->account);
		op_buf_put_str(&b, u->away ? u->away : "");
		op_buf_put_u(&b, HASH_CNT(hh_user, u->rooms), 4);
		HASH_ITER(hh_user, u->rooms, m, mt)
			op_buf_put_str(&b, m->room->name);
	}
	if (n)
		state_send(srv, &b, n);
	op_buf_free(&b);
}

static int in_view(const struct group_view *v, uint32_t id)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->members[i] == id)
			return 1;
	return 0;
}

void presence_view(struct server *srv, const struct group_view *old, const struct group_view *v)
{
	struct batch_set split = {"netsplit", NULL, NULL};
	char params[2 * SERVER_NAME_MAX + 2], name[SERVER_NAME_MAX];
	for (size_t i = 0; i < old->n; i++) {
		uint32_t gone = old->members[i];
		struct user *u, *tmp;
		if (in_view(v, gone) || gone == srv->cfg.id)
			continue;
		server_name_of(srv, gone, name);
		snprintf(params, sizeof params, "%s %s", srv->name, name);
		split.params = params;
		HASH_ITER(hh, srv->users, u, tmp)
			if (presence_is_on(u, gone))
				presence_set_on(srv, u, gone, 0, "*.net *.split", &split);
		batch_set_close(&split);
	}
	send_state(srv);
}

/* Applies a STATE: every user it names is online on sender, in its rooms. */
static void on_state(struct server *srv, uint32_t sender, struct op_reader *rd)
{
	char params[2 * SERVER_NAME_MAX + 2], name[SERVER_NAME_MAX];
	struct batch_set join = {"netjoin", params, NULL};
	server_name_of(srv, sender, name);
	snprintf(params, sizeof params, "%s %s", srv->name, name);
	uint64_t n = op_read_u(rd, 4);
	for (uint64_t i = 0; i < n && !rd->bad; i++) {
		char *nick = op_read_str(rd), *user = op_read_str(rd), *real = op_read_str(rd);
		char *account = op_read_str(rd), *away = op_read_str(rd);
		uint64_t rooms = op_read_u(rd, 4);
		struct user *u = NULL;
		if (!rd->bad && chat_nick_valid(nick)) {
			u = presence_user_make(srv, nick);
			if (!u->sessions) {
				presence_set_details(u, user, real, account);
				presence_set_away(srv, u, away);
			}
			presence_set_on(srv, u, sender, 1, NULL, NULL);
		}
		for (uint64_t j = 0; j < rooms && !rd->bad; j++) {
			char *room = op_read_str(rd);
			struct room_presence *r;
			if (u && room && valid_room(room) && presence_join(srv, u, room, &r))
				cmd_room_joined(srv, u, r, &join);
			free(room);
		}
		free(nick);
		free(user);
		free(real);
		free(account);
		free(away);
	}
	batch_set_close(&join);
}

void presence_receive(struct server *srv, uint32_t sender, const void *data, size_t len)
{
	struct op_reader rd = {data, len, 0};
	uint64_t version = op_read_u(&rd, 1), kind = op_read_u(&rd, 1);
	char *nick = NULL, *a = NULL, *b = NULL, *account = NULL, *away = NULL;
	struct user *u;
	struct room_presence *r;

	if (rd.bad || version != PRESENCE_VERSION) {
		log_warn("presence: message of unknown version from replica %" PRIu32, sender);
		return;
	}
	if (kind == P_STATE) {
		on_state(srv, sender, &rd);
		return;
	}
	nick = op_read_str(&rd);
	a = op_read_str(&rd);
	if (kind == P_ONLINE || kind == P_PART)
		b = op_read_str(&rd);
	if (kind == P_ONLINE) {
		account = op_read_str(&rd);
		away = op_read_str(&rd);
	}
	if (rd.bad || !chat_nick_valid(nick)) {
		log_warn("presence: malformed message from replica %" PRIu32, sender);
		goto out;
	}
	switch (kind) {
	case P_ONLINE:
		u = presence_user_make(srv, nick);
		if (!u->sessions) {
			presence_set_details(u, a, b, account);
			presence_set_away(srv, u, away);
		}
		presence_set_on(srv, u, sender, 1, NULL, NULL);
		break;
	case P_AWAY:
		if ((u = presence_user(srv, nick)) && !u->sessions)
			presence_set_away(srv, u, a);
		break;
	case P_KILL:
		user_kill(srv, nick, a);
		break;
	case P_WALLOPS:
		user_wallops(srv, nick, a);
		break;
	case P_OFFLINE:
		if ((u = presence_user(srv, nick)))
			presence_set_on(srv, u, sender, 0, a, NULL);
		break;
	case P_JOIN:
		u = presence_user_make(srv, nick);
		presence_set_on(srv, u, sender, 1, NULL, NULL);
		if (valid_room(a) && presence_join(srv, u, a, &r))
			cmd_room_joined(srv, u, r, NULL);
		break;
	case P_PART:
		if ((u = presence_user(srv, nick)) && (r = presence_room(srv, a)) && presence_in_room(u, r))
			cmd_room_parted(srv, u, r, b);
		break;
	default:
		log_warn("presence: unknown kind %" PRIu64 " from replica %" PRIu32, kind, sender);
	}
out:
	free(nick);
	free(a);
	free(b);
	free(account);
	free(away);
}
