/*
 * fanout.c: what a stored change shows the connected clients. A room message
 * goes to every session of every member; a direct message to both users'
 * sessions; a like to the room's message-tags clients as a TAGMSG carrying
 * the new count; a post to the local users in &timeline whose timeline has
 * it; a follow or unfollow to the follower's sessions. The session that made
 * the change gets it back only with echo-message (the echo is its "stored"
 * acknowledgement, carrying its label); with a label but no echo-message it
 * gets an ACK instead. TOPIC, FOLLOW and UNFOLLOW come back to it always.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* The capabilities that change a shared line (see shared_line). */
#define SHARED_CAPS (CAP_SERVER_TIME | CAP_MESSAGE_TAGS | CAP_ACCOUNT_TAG)

/* Everything needed to show one op to one session. */
struct show {
	const struct op *op;
	const char *msgid;
	int64_t time_ms;        /* server-time: the op's canonical time */
	const char *command;    /* PRIVMSG, NOTICE, TAGMSG, TOPIC, FOLLOW, UNFOLLOW */
	const char *target;     /* as shown on the line */
	const char *text;       /* trailing text, or NULL */
	const char *client_tags;
	int likes;              /* chorus/likes tag, -1 = none */
	const char *account;    /* the author's account, if in force (account tag) */
	int needs_tags;         /* TAGMSG: only message-tags clients see it */
	int echo_always;        /* the origin sees it even without echo-message */
	struct session *origin; /* the maker's session, or NULL */
	const char *label;
	int origin_done;
	struct batch_set *merged;  /* a merge put it earlier: lines go in this batch */
	char source[128];          /* the author as the lines' source */
	struct buf shared[8];      /* the line per SHARED_CAPS subset, made on first use */
};

/* Which of sh->shared a session with caps gets. */
static size_t shared_index(unsigned caps)
{
	return ((caps & CAP_SERVER_TIME) ? 1 : 0) | ((caps & CAP_MESSAGE_TAGS) ? 2 : 0) |
	       ((caps & CAP_ACCOUNT_TAG) ? 4 : 0);
}

/* Appends to line sh's line with tags t, as a client with caps sees it. */
static void format_line(const struct show *sh, unsigned caps, const struct line_tags *t,
			struct buf *line)
{
	if (sh->text)
		reply_format(caps, t, sh->source, line, "%s %s :%s", sh->command, sh->target, sh->text);
	else
		reply_format(caps, t, sh->source, line, "%s %s", sh->command, sh->target);
}

/* The line for t, which carries no label and no batch (nothing that differs
 * between sessions): formatted once per subset of SHARED_CAPS, the only
 * capabilities build_tags then looks at, and reused for every recipient. */
static const struct buf *shared_line(struct show *sh, unsigned caps, const struct line_tags *t)
{
	struct buf *line = &sh->shared[shared_index(caps)];
	if (!line->len)
		format_line(sh, caps & SHARED_CAPS, t, line);
	return line;
}

static void show_to(struct show *sh, struct session *s)
{
	struct line_tags t = LINE_TAGS_INIT;

	if (s == sh->origin) {
		if (sh->origin_done)
			return;
		sh->origin_done = 1;
		if (!(s->caps & CAP_ECHO_MESSAGE) && !sh->echo_always) {
			if (sh->label) {
				t.label = sh->label;
				reply_line(s, &t, s->srv->name, "ACK");
			}
			return;
		}
		t.label = sh->label;
	}
	if (sh->needs_tags && !(s->caps & CAP_MESSAGE_TAGS))
		return;
	t.time_ms = sh->time_ms;
	t.msgid = sh->msgid;
	t.batch = batch_for(sh->merged, s);
	t.client_tags = sh->client_tags;
	t.likes = sh->likes;
	t.account = sh->account;
	if (!t.label && !t.batch) {
		const struct buf *line = shared_line(sh, s->caps, &t);
		session_send_raw(s, line->data, line->len);
	} else {
		struct buf line = {0};
		format_line(sh, s->caps, &t, &line);
		session_send_raw(s, line.data, line.len);
		buf_free(&line);
	}
}

/* Shows sh to s as any recipient sees it (no label), whether or not s made it. */
static void show_copy(struct show *sh, struct session *s)
{
	struct line_tags t = LINE_TAGS_INIT;
	t.time_ms = sh->time_ms;
	t.msgid = sh->msgid;
	t.client_tags = sh->client_tags;
	t.likes = sh->likes;
	t.account = sh->account;
	const struct buf *line = shared_line(sh, s->caps, &t);
	session_send_raw(s, line->data, line->len);
}

static void show_to_user(struct show *sh, struct user *u)
{
	for (struct session *s = u ? u->sessions : NULL; s; s = s->next_of_user)
		show_to(sh, s);
}

/* The user online as nick if it is the person (nick, account), else NULL
 * (a DM to or from an account that is no longer the name's goes to nobody
 * holding the name now). */
static struct user *user_if_person(struct server *srv, const char *nick, const char *account)
{
	struct user *u = presence_user(srv, nick);
	if (!u)
		return NULL;
	char *want = chat_person(nick, account), *have = chat_person(u->nick, u->account);
	int same = strcmp(want, have) == 0;
	free(want);
	free(have);
	return same ? u : NULL;
}

static void show_to_room(struct server *srv, struct show *sh, const char *room)
{
	struct room_presence *r = presence_room(srv, room);
	struct membership *m, *tmp;
	if (r)
		HASH_ITER(hh_room, r->members, m, tmp)
			show_to_user(sh, m->user);
}

/* Shows sh to everyone concerned by op's target (a room, or both sides of a
 * direct conversation), then to its origin if it was not among them. */
static void show_everywhere(struct server *srv, struct show *sh, const char *conv_target)
{
	const struct op *op = sh->op;
	if (conv_target[0] == '#') {
		show_to_room(srv, sh, conv_target);
	} else {
		/* A DM names its recipient's account; a like in a conversation
		 * goes to whoever holds the other name now. */
		const char *to_account = op->ref;
		if (op->kind != OP_DM) {
			const struct chat_account *holder = chat_account_find(srv->chat, conv_target);
			to_account = holder ? holder->regid : "";
		}
		struct user *from = user_if_person(srv, op->author, op->account);
		struct user *to = user_if_person(srv, conv_target, to_account);
		show_to_user(sh, from);
		if (to != from)
			show_to_user(sh, to);
		else if (sh->origin && (sh->origin->caps & CAP_ECHO_MESSAGE))
			show_copy(sh, sh->origin); /* to oneself: received, besides the echo */
	}
	if (sh->origin)
		show_to(sh, sh->origin);
}

/* sh shows message op as its line: PRIVMSG or NOTICE, target, text, tags. */
static void message_line(struct show *sh, const struct op *op)
{
	sh->command = (op->flags & OP_FLAG_NOTICE) ? "NOTICE" : "PRIVMSG";
	sh->target = op->target;
	sh->text = op->body;
	sh->client_tags = op->tags;
}

/* A message. One that a merge placed earlier than the end of its room or
 * conversation goes inside a chathistory batch (original time and msgid), so
 * clients can tell it from a live line and put it in its place. */
static void show_message(struct server *srv, const struct op *op, const struct chat_effect *eff,
			 struct show *sh)
{
	struct batch_set merged = {"chathistory", op->target, NULL};
	message_line(sh, op);
	if (!eff->appended)
		sh->merged = &merged;
	show_everywhere(srv, sh, op->target);
	batch_set_close(&merged);
}

/* A repeat of a line its person sent before with the same client id
 * (exactly-once sends): nobody sees it again; its maker gets the echo of
 * that line, with its msgid and time. */
static void show_repeat(const struct op *op, const struct chat_effect *eff, struct show *sh)
{
	char msgid[OP_MSGID_MAX];
	struct op line = {.stream = eff->line.stream, .seq = eff->line.seq};
	if (!sh->origin)
		return;
	op_msgid(&line, msgid, sizeof msgid);
	sh->msgid = msgid;
	sh->time_ms = op_key_time_ms(&eff->line);
	message_line(sh, op);
	show_to(sh, sh->origin);
}

static void show_like(struct server *srv, const struct op *op, const struct chat_effect *eff,
		      struct show *sh)
{
	/* A reaction may be as long as a client tag can be (escaping doubles it at most). */
	char tags[2 * IRC_CLIENT_TAGS_MAX + 2 * OP_MSGID_MAX + 64], esc[2 * IRC_CLIENT_TAGS_MAX + 1],
		ref[OP_MSGID_MAX * 2];
	if (irc_tag_escape(op->body, esc, sizeof esc) < 0)
		esc[0] = '\0';
	if (irc_tag_escape(op->ref, ref, sizeof ref) < 0)
		ref[0] = '\0';
	snprintf(tags, sizeof tags, "%s=%s;+draft/reply=%s",
		 op->kind == OP_LIKE ? "+draft/react" : "+draft/unreact", esc, ref);
	sh->command = "TAGMSG";
	sh->target = op->target;
	sh->client_tags = tags;
	sh->likes = (int)eff->likes;
	sh->needs_tags = 1;
	show_everywhere(srv, sh, op->target);
}

/* Where a post goes besides its author: the followers in &timeline here. */
struct post_fan {
	struct server *srv;
	struct show *sh;
	const struct op *post;
};

static void show_post_to_follower(const char *follower, void *arg)
{
	struct post_fan *pf = arg;
	struct user *u = presence_user(pf->srv, follower);
	if (!u || !u->in_timeline)
		return;
	char *person = chat_person(u->nick, u->account);
	if (chat_timeline_includes(pf->srv->chat, person, pf->post))
		show_to_user(pf->sh, u);
	free(person);
}

/* A post: to every local user in &timeline whose timeline has it, and to its
 * author's sessions (the origin per the echo rules). Timelines are in op
 * order, so a post merged from another partition goes out live too. */
static void show_post(struct server *srv, const struct op *op, struct show *sh)
{
	struct post_fan pf = {srv, sh, op};
	sh->command = "PRIVMSG";
	sh->target = CHAT_TIMELINE;
	sh->text = op->body;
	chat_followers_each(srv->chat, op->author, show_post_to_follower, &pf);
	show_to_user(sh, user_if_person(srv, op->author, op->account));
	if (sh->origin)
		show_to(sh, sh->origin);
}

/* A follow or unfollow: the follower's sessions see it if it changed the
 * state; its origin in any case (its op is stored, and a duplicate request
 * from another session is not an error). */
static void show_follow(struct server *srv, const struct op *op, const struct chat_effect *eff,
			struct show *sh)
{
	sh->command = op->kind == OP_FOLLOW ? "FOLLOW" : "UNFOLLOW";
	sh->target = op->target;
	sh->echo_always = 1;
	if (eff->change == CHAT_FOLLOW_CHANGED)
		show_to_user(sh, user_if_person(srv, op->author, op->account));
	if (sh->origin)
		show_to(sh, sh->origin);
}

/* 1 if u (its nick and account) is person. */
static int user_is_person(const struct user *u, const char *person)
{
	char *p = user_person(u);
	int same = strcmp(p, person) == 0;
	free(p);
	return same;
}

/* The nick of person ("nick" or "nick/regid", casefolded) as spelled by
 * its user online now, or by the chat. */
static const char *person_nick(struct server *srv, const char *person, char *out, size_t len)
{
	snprintf(out, len, "%.*s", (int)strcspn(person, "/"), person);
	struct user *u = presence_user(srv, out);
	const char *known = u ? u->nick : chat_user_name(srv->chat, out);
	if (known)
		snprintf(out, len, "%s", known);
	return out;
}

/* The changes of an OP_MODE that changed something (bits of mask), as a
 * MODE line shows them: "<room> +in-t+o nick" (o and v by nick, -k with
 * "*"). */
static void mode_line(struct server *srv, const struct op *op, unsigned mask, struct buf *line)
{
	struct buf params = {0};
	const char *body = op->body, *ps = op->ref;
	struct chat_mode_change c;
	char sign = 0, nick[CHAT_NICK_MAX + 1];
	buf_printf(line, "%s ", op->target);
	for (unsigned i = 0; chat_mode_next(&body, &ps, &c) == 1; i++) {
		if (!(mask >> i & 1))
			continue;
		if (sign != (c.on ? '+' : '-'))
			buf_putc(line, sign = c.on ? '+' : '-');
		buf_putc(line, c.letter);
		const char *p = c.letter == 'o' || c.letter == 'v' ? person_nick(srv, c.param, nick, sizeof nick)
				: c.letter == 'k' && !c.on ? "*" : c.param;
		if (*p)
			buf_printf(&params, " %s", p);
	}
	if (params.len)
		buf_append(line, params.data, params.len);
	buf_free(&params);
}

/* A room's mode change that changed something: one MODE line to the room
 * here (and its maker). */
static void show_mode(struct server *srv, const struct op *op, const struct chat_effect *eff,
		      struct show *sh)
{
	struct buf line = {0};
	mode_line(srv, op, eff->mode_changes, &line);
	sh->command = "MODE";
	sh->target = line.data;
	sh->echo_always = 1;
	show_to_room(srv, sh, op->target);
	if (sh->origin)
		show_to(sh, sh->origin);
	buf_free(&line);
}

/* A kick: "KICK <room> <nick> :reason" to the room here (the kicked user
 * too), then the user leaves the room here (every replica does the same
 * when the kick reaches it). */
static void show_kick(struct server *srv, const struct op *op, struct show *sh)
{
	char line[300], nick[CHAT_NICK_MAX + 1];
	struct room_presence *r = presence_room(srv, op->target);
	struct user *u = presence_user(srv, person_nick(srv, op->ref, nick, sizeof nick));
	snprintf(line, sizeof line, "%s %s", op->target, nick);
	sh->command = "KICK";
	sh->target = line;
	sh->text = op->body;
	sh->echo_always = 1;
	show_to_room(srv, sh, op->target);
	if (sh->origin)
		show_to(sh, sh->origin);
	if (u && r && user_is_person(u, op->ref))
		presence_part(srv, u, r);
}

/* An invitation: the invited user's sessions here get INVITE, and so do the
 * room's members here that asked for invite-notify; its maker gets 341. */
static void show_invite(struct server *srv, const struct op *op, struct show *sh)
{
	char line[300], nick[CHAT_NICK_MAX + 1];
	struct room_presence *r = presence_room(srv, op->target);
	struct membership *mm, *tmp;
	struct user *u = presence_user(srv, person_nick(srv, op->ref, nick, sizeof nick));
	snprintf(line, sizeof line, "%s %s", nick, op->target);
	sh->command = "INVITE";
	sh->target = line;
	sh->echo_always = 1;
	if (u && !user_is_person(u, op->ref))
		u = NULL;
	show_to_user(sh, u);
	if (r)
		HASH_ITER(hh_room, r->members, mm, tmp)
			for (struct session *o = mm->user->sessions; o; o = o->next_of_user)
				if ((o->caps & CAP_INVITE_NOTIFY) && o != sh->origin && mm->user != u)
					show_to(sh, o);
	if (sh->origin) {
		struct line_tags t = LINE_TAGS_INIT;
		t.label = sh->label;
		reply_line(sh->origin, &t, srv->name, "341 %s %s %s", sh->origin->nick, nick, op->target);
	}
}

/* A merge made another person the room's founder: the room's members here
 * see the operator status that changed, as a MODE from the server. */
static void show_founder(struct server *srv, const struct op *op, const struct chat_effect *eff)
{
	struct chat_room *room = chat_room_find(srv->chat, op->target);
	struct room_presence *r = presence_room(srv, op->target);
	char was[CHAT_NICK_MAX + 1], now[CHAT_NICK_MAX + 1], line[200];
	if (!room || !r)
		return;
	int lost = !chat_room_is_op(room, eff->founder_was), gained = chat_room_is_op(room, room->founder);
	person_nick(srv, eff->founder_was, was, sizeof was);
	person_nick(srv, room->founder, now, sizeof now);
	if (lost && gained)
		snprintf(line, sizeof line, "MODE %s -o+o %s %s", room->name, was, now);
	else
		snprintf(line, sizeof line, "MODE %s %co %s", room->name, lost ? '-' : '+', lost ? was : now);
	if (lost || gained) {
		struct membership *m, *tmp;
		struct line_tags t = LINE_TAGS_INIT;
		HASH_ITER(hh_room, r->members, m, tmp)
			for (struct session *o = m->user->sessions; o; o = o->next_of_user)
				reply_line(o, &t, srv->name, "%s", line);
	}
}

/* Shows op, with its effect eff, as sh (filled with what every kind shares). */
static void show_effect(struct server *srv, const struct op *op, const struct chat_effect *eff,
			struct show *sh)
{
	if (op->kind == OP_FOLLOW || op->kind == OP_UNFOLLOW) {
		show_follow(srv, op, eff, sh);
		return;
	}
	switch (eff->change) {
	case CHAT_MSG_NEW:
		if (op->kind == OP_POST)
			show_post(srv, op, sh);
		else
			show_message(srv, op, eff, sh);
		return;
	case CHAT_MSG_REPEAT:
		show_repeat(op, eff, sh);
		return;
	case CHAT_LIKES_CHANGED:
	case CHAT_LIKE_SAME:
	case CHAT_LIKE_PENDING:
		show_like(srv, op, eff, sh);
		return;
	case CHAT_MODE_CHANGED:
		show_mode(srv, op, eff, sh);
		return;
	case CHAT_KICKED:
		show_kick(srv, op, sh);
		return;
	case CHAT_INVITED:
		show_invite(srv, op, sh);
		return;
	case CHAT_FOUNDER_CHANGED:
		show_founder(srv, op, eff);
		return;
	case CHAT_TOPIC_CHANGED:
		sh->command = "TOPIC";
		sh->target = op->target;
		sh->text = op->body;
		sh->echo_always = 1;
		show_to_room(srv, sh, op->target);
		if (sh->origin)
			show_to(sh, sh->origin);
		return;
	default:
		/* Nothing to show; still answer a label. */
		if (sh->origin && sh->label) {
			struct line_tags t = LINE_TAGS_INIT;
			t.label = sh->label;
			reply_line(sh->origin, &t, srv->name, "ACK");
		}
		return;
	}
}

/* An account op: a registration's maker is answered (and logged in) first,
 * so the change then finds it holding the account; the other sessions here
 * that the change concerns are settled (accounts.c); then the other ops'
 * makers are answered. */
static void show_account(struct server *srv, const struct op *op, const struct chat_effect *eff,
			 struct pending *p)
{
	struct session *origin = p ? session_find(srv, p->session_id) : NULL;
	struct capture cap;
	if (origin && op->kind == OP_REGISTER) {
		reply_capture_begin(origin, &cap, p->label);
		account_answer(srv, op, origin);
		reply_capture_end(origin, &cap);
	}
	if (eff->change == CHAT_ACCOUNT_CHANGED)
		accounts_changed(srv, op->author);
	if (origin && op->kind != OP_REGISTER && (origin = session_find(srv, p->session_id))) {
		reply_capture_begin(origin, &cap, p->label);
		account_answer(srv, op, origin);
		reply_capture_end(origin, &cap);
	}
}

void fanout_effect(struct server *srv, const struct op *op, const struct chat_effect *eff,
		   struct pending *p)
{
	char msgid[OP_MSGID_MAX];
	struct show sh = {0};
	if (op->kind == OP_REGISTER || op->kind == OP_PASSWORD || op->kind == OP_UNREGISTER) {
		show_account(srv, op, eff, p);
		return;
	}
	op_msgid(op, msgid, sizeof msgid);
	sh.op = op;
	sh.msgid = msgid;
	sh.time_ms = op_time_ms(op);
	sh.likes = -1;
	sh.origin = p ? session_find(srv, p->session_id) : NULL;
	sh.label = p ? p->label : NULL;
	char shown[CHAT_NICK_MAX + 1];
	sh.account = author_shown(srv, op, shown);
	reply_source(shown, sh.source, sizeof sh.source);
	show_effect(srv, op, eff, &sh);
	for (size_t i = 0; i < sizeof sh.shared / sizeof sh.shared[0]; i++)
		buf_free(&sh.shared[i]);
}

void fanout_store_failed(struct server *srv, const struct op *op, struct pending *p)
{
	struct session *s = p ? session_find(srv, p->session_id) : NULL;
	struct line_tags t = LINE_TAGS_INIT;
	if (!s)
		return;
	t.label = p->label;
	reply_line(s, &t, srv->name,
		   "FAIL %s STORAGE_ERROR %s :Not stored: this replica cannot write to its disk; try again later or another replica",
		   p->command, op->target[0] ? op->target : "*");
}

void fanout_history(struct session *s, const char *target, const struct chat_msg **msgs, size_t n)
{
	char id[16], src[128];
	struct line_tags t = LINE_TAGS_INIT;
	int batched = (s->caps & CAP_BATCH) != 0;

	if (batched) {
		session_batch_id(s, id, sizeof id);
		reply_line(s, &t, s->srv->name, "BATCH +%s chathistory %s", id, target);
	}
	for (size_t i = 0; i < n; i++) {
		const struct op *op = &msgs[i]->op;
		struct line_tags m = LINE_TAGS_INIT;
		m.time_ms = op_time_ms(op);
		m.msgid = msgs[i]->msgid;
		m.batch = batched ? id : NULL;
		m.likes = (int)msgs[i]->likes;
		m.client_tags = op->tags;
		char shown[CHAT_NICK_MAX + 1];
		m.account = author_shown(s->srv, op, shown);
		reply_line(s, &m, reply_source(shown, src, sizeof src), "%s %s :%s",
			   (op->flags & OP_FLAG_NOTICE) ? "NOTICE" : "PRIVMSG", op->target, op->body);
	}
	if (batched)
		reply_line(s, &t, s->srv->name, "BATCH -%s", id);
}

void fanout_stored(struct session *s, const char *target, const struct store_msgs *found,
		   uint64_t upto)
{
	struct chat_msg *msgs = xcalloc(found->n + 1, sizeof *msgs);
	const struct chat_msg **ptrs = xcalloc(found->n + 1, sizeof *ptrs);
	size_t n = 0;
	for (size_t i = 0; i < found->n; i++) {
		if (found->ops[i].lts > upto)
			continue;
		msgs[n].op = found->ops[i];
		op_msgid(&found->ops[i], msgs[n].msgid, sizeof msgs[n].msgid);
		msgs[n].likes = found->likes[i];
		ptrs[n] = &msgs[n];
		n++;
	}
	fanout_history(s, target, ptrs, n);
	free(ptrs);
	free(msgs);
}
