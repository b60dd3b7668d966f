/*
 * cmd_follow.c: following users and the timeline. FOLLOW, UNFOLLOW and USERS
 * are chorus verbs; &timeline is a pseudo-room per user: JOIN &timeline
 * shows the latest posts of the users one follows, then (fanout.c) their new
 * posts live; PRIVMSG &timeline (cmd_message.c) posts to one's own feed.
 *
 * Follow relations and posts are operations (stored, replicated; see
 * src/chat/feeds.c). A FOLLOW or UNFOLLOW that would change nothing is
 * refused here, before any op is made; the answer to one that is made comes
 * from the fan-out once it is stored. Being in &timeline is soft state of
 * the user on this replica, shared by its sessions here.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"

int is_timeline(const char *name)
{
	return strcasecmp(name, CHAT_TIMELINE) == 0;
}

/* ---- FOLLOW, UNFOLLOW ---- */

/* The spelling of the user who as the replicated state knows it or, if its
 * first op is still on the way, as presence does; NULL if no such user. */
static const char *user_spelling(struct session *s, const char *who)
{
	const char *name = chat_user_name(s->srv->chat, who);
	struct user *u = name ? NULL : presence_user(s->srv, who);
	return name ? name : u ? u->nick : NULL;
}

/* Answers the FAIL for a FOLLOW (on) or UNFOLLOW of who that must not
 * become an op; returns 1 if it did, 0 if the op may be made. */
static int follow_refused(struct session *s, const char *cmd, const char *who, int on)
{
	struct chat *chat = s->srv->chat;
	const char *shown = chat_nick_valid(who) ? who : "*"; /* a FAIL parameter has no spaces */
	int self = strcasecmp(who, s->nick) == 0;
	char text[CHAT_NICK_MAX + 32];
	if (on && self) {
		reply_fail(s, cmd, "CANNOT_FOLLOW_SELF", shown, "You cannot follow yourself");
		return 1;
	}
	if (!self && (!chat_nick_valid(who) || !user_spelling(s, who))) {
		reply_fail(s, cmd, "UNKNOWN_USER", shown, "No such user");
		return 1;
	}
	char *me = session_person(s);
	int following = chat_following(chat, me, who);
	free(me);
	if (following == on) {
		snprintf(text, sizeof text, on ? "You already follow %s" : "You do not follow %s", shown);
		reply_fail(s, cmd, on ? "ALREADY_FOLLOWING" : "NOT_FOLLOWING", shown, text);
		return 1;
	}
	return 0;
}

/* FOLLOW (on) or UNFOLLOW <user>: an OP_FOLLOW/OP_UNFOLLOW naming the user
 * as user_spelling spells it. A user is known once any op of theirs is
 * stored, or while they are online in the view. */
static void follow_change(struct session *s, struct irc_msg *m, int on)
{
	const char *cmd = on ? "FOLLOW" : "UNFOLLOW", *who = m->params[0];
	if (!*who) {
		reply_num(s, 461, "%s :Not enough parameters", cmd);
		return;
	}
	if (follow_refused(s, cmd, who, on))
		return;
	struct op op = {0};
	op.kind = on ? OP_FOLLOW : OP_UNFOLLOW;
	op.target = xstrdup(user_spelling(s, who)); /* known: checked above */
	op.author = xstrdup(s->nick);
	int why = replica_submit(s->srv, s, cmd, &op);
	if (why)
		reply_refused(s, cmd, who, why);
}

void cmd_follow(struct session *s, struct irc_msg *m)
{
	follow_change(s, m, 1);
}

void cmd_unfollow(struct session *s, struct irc_msg *m)
{
	follow_change(s, m, 0);
}

/* ---- USERS ---- */

struct users_ctx {
	struct session *s;
	size_t left; /* users left out: no room in the send queue */
};

/* One USERS line: nick and its flags as seen by s's user, or counted as
 * left out once the queue is full. */
static void users_line(const char *nick, void *arg)
{
	struct users_ctx *c = arg;
	struct session *s = c->s;
	struct chat *chat = s->srv->chat;
	if (!session_has_room(s)) {
		c->left++;
		return;
	}
	struct line_tags t = LINE_TAGS_INIT;
	struct buf flags = {0};
	char *me = session_person(s), *them = chat_person_of_name(chat, nick);
	if (chat_following(chat, me, nick))
		buf_puts(&flags, " following");
	if (chat_following(chat, them, s->nick))
		buf_puts(&flags, " follower");
	free(me);
	free(them);
	if (presence_user(s->srv, nick))
		buf_puts(&flags, " online");
	reply_line(s, &t, s->srv->name, "USERS %s %s :%s", s->nick, nick, flags.len ? flags.data + 1 : "");
	buf_free(&flags);
}

void cmd_users(struct session *s, struct irc_msg *m)
{
	struct line_tags t = LINE_TAGS_INIT;
	struct users_ctx c = {s, 0};
	(void)m;
	chat_users_each(s->srv->chat, users_line, &c);
	reply_truncated(s, "USERS", c.left);
	reply_line(s, &t, s->srv->name, "USERS %s * :End of USERS", s->nick);
}

/* ---- &timeline ---- */

/* A timeline replay on its way from the store. */
struct timeline_replay {
	struct server *srv;
	uint64_t session_id;
	uint64_t upto;          /* the highest lts applied when it was asked for */
};

static void timeline_read(void *arg, int status, struct store_msgs *found)
{
	struct timeline_replay *r = arg;
	struct session *s = session_find(r->srv, r->session_id);
	if (s && status == STORE_OK)
		fanout_stored(s, CHAT_TIMELINE, found, r->upto);
	else if (s)
		log_warn("timeline replay for %s: the store could not read it", s->nick);
	free(r);
}

void cmd_timeline_burst(struct session *s)
{
	struct line_tags t = LINE_TAGS_INIT;
	char src[128];
	reply_line(s, &t, reply_source(s->nick, src, sizeof src), "JOIN %s", CHAT_TIMELINE);
	struct timeline_replay *r = xcalloc(1, sizeof *r);
	r->srv = s->srv;
	r->session_id = s->id;
	r->upto = chat_max_lts(s->srv->chat);
	char *me = session_person(s);
	history_read_timeline(s->srv, me, NULL, NULL, TIMELINE_REPLAY, 1, timeline_read, r);
	free(me);
}

void cmd_timeline_join(struct session *s)
{
	struct user *u = s->user;
	if (u->in_timeline) {
		cmd_timeline_burst(s);
		return;
	}
	u->in_timeline = 1;
	for (struct session *o = u->sessions; o; o = o->next_of_user)
		cmd_timeline_burst(o);
}

void cmd_timeline_part(struct session *s, const char *reason)
{
	struct user *u = s->user;
	struct line_tags t = LINE_TAGS_INIT;
	char src[128];
	if (!u->in_timeline) {
		reply_num(s, 442, "%s :You're not on that channel", CHAT_TIMELINE);
		return;
	}
	u->in_timeline = 0;
	reply_source(u->nick, src, sizeof src);
	for (struct session *o = u->sessions; o; o = o->next_of_user)
		reply_line(o, &t, src, "PART %s :%s", CHAT_TIMELINE, reason);
}
