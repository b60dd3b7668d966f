/*
 * commands.c: the user's commands, one table entry each (name, usage, what
 * it needs, what it does); they run one after another through the input
 * queue (input.c). In the timeline (after `t`), a line that is no command
 * is a post.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

#define LIKE_REACTION "\xF0\x9F\x91\x8D" /* U+1F44D THUMBS UP SIGN */

enum need {
	NEED_NOTHING,
	NEED_LINK,   /* connected (c) */
	NEED_LOGIN,  /* logged in (u) */
	NEED_ROOM,   /* in a room (j) */
};

struct command {
	const char *name;
	const char *alias;
	const char *usage;
	const char *help;
	enum need need;
	int nargs;   /* words it takes; the last one takes the rest of the line */
	void (*exec)(struct client *c, char **argv);
	int optional; /* the last word may be left out (argv[nargs - 1] is NULL) */
};

/* ---- helpers ---- */

/* Parses a line number of the screen; 0 if not a number. */
static size_t line_number(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	return end != s && !*end && n > 0 ? (size_t)n : 0;
}

static void release(struct client *c, struct request *q)
{
	client_unwait(c, q->token);
}

/* A request that holds the queue until its answer is complete. */
static struct request *waiting_request(struct client *c, const char *what)
{
	struct request *q = request_new(c, client_wait(c, what, 1));
	q->on_done = release;
	return q;
}

/* 1 if the screen shows the timeline. */
static int in_timeline(const struct client *c)
{
	return c->room && c->room->timeline;
}

/* ---- connect, log in, join ---- */

static void cmd_connect(struct client *c, char **argv)
{
	long i = replicas_pick(&c->replicas, argv[0]);
	if (i < 0) {
		client_note(c, NOTE_ERROR, "no replica %s: give its number (1..%zu), its id, or host:port",
			    argv[0], c->replicas.n);
		return;
	}
	session_connect(c, i, client_wait(c, "connecting", 0));
}

/* A name change is done. Taking the name of a user who is online makes us
 * that user, whose rooms are not ours: join the room on screen again (an
 * ACK if we are in it already) and read what we may have missed. The
 * timeline is another user's now: it is read afresh. */
static void nick_done(struct client *c, struct request *q)
{
	if (!c->room || c->link != LINK_REGISTERED) {
		client_unwait(c, q->token);
		return;
	}
	if (c->room->timeline || c->room->conversation)
		room_clear(c->room); /* another person's now */
	if (c->room->conversation)
		session_show_conversation(c, c->room->name, q->token);
	else
		session_join(c, c->room->name, !c->room->timeline, q->token);
}

static void cmd_user(struct client *c, char **argv)
{
	if (c->link == LINK_READY) {
		free(c->nick);
		c->nick = xstrdup(argv[0]);
		session_login(c, client_wait(c, "logging in", 1));
		return;
	}
	if (strcmp(c->nick, argv[0]) == 0) {
		client_note(c, NOTE_INFO, "you are %s already", c->nick);
		return;
	}
	struct request *q = waiting_request(c, "changing name");
	q->on_done = nick_done;
	request_send(c, q, NULL, "NICK %s", argv[0]);
}

static void cmd_join(struct client *c, char **argv)
{
	char *room = is_room_name(argv[0]) ? xstrdup(argv[0]) : xasprintf("#%s", argv[0]);
	int same = c->room && strcasecmp(c->room->name, room) == 0;
	session_join(c, room, same, client_wait(c, "joining", 1));
	free(room);
}

static void cmd_conversation(struct client *c, char **argv)
{
	if (!argv[0])
		conversations_list(c, client_wait(c, "conversations", 1));
	else
		session_show_conversation(c, argv[0], client_wait(c, "reading the conversation", 1));
}

static void cmd_leave(struct client *c, char **argv)
{
	(void)argv;
	session_leave(c, client_wait(c, "leaving", 1));
}

static void cmd_timeline(struct client *c, char **argv)
{
	(void)argv;
	session_join(c, ROOM_TIMELINE, in_timeline(c), client_wait(c, "timeline", 1));
}

/* ---- the room ---- */

/* An error in the answer to a post: incoming.c shows it. */
static int post_line(struct client *c, struct request *q, struct irc_msg *m)
{
	(void)c;
	if (request_is_error(m))
		q->failed = 1;
	return 0;
}

/* Our own posts are not on our timeline: a note says the post is made. */
static void post_done(struct client *c, struct request *q)
{
	if (!q->failed)
		client_note(c, NOTE_INFO, "posted: %s", q->what);
	client_unwait(c, q->token);
}

/* A post to our feed (PRIVMSG &timeline), what a line that is no command
 * is in the timeline. */
static void cmd_post(struct client *c, char **argv)
{
	struct request *q = waiting_request(c, "posting");
	q->what = xstrdup(argv[0]);
	q->on_line = post_line;
	q->on_done = post_done;
	request_send(c, q, NULL, "PRIVMSG %s :%s", ROOM_TIMELINE, argv[0]);
}

static void cmd_append(struct client *c, char **argv)
{
	if (in_timeline(c)) {
		cmd_post(c, argv);
		return;
	}
	outbox_send(c, c->room->name, argv[0], client_wait(c, "sending", 1));
}

/* FAIL TAGMSG <code> ...: what the server knows of our like state. */
static int like_line(struct client *c, struct request *q, struct irc_msg *m)
{
	if (strcasecmp(m->command, "FAIL") != 0 || m->nparams < 2)
		return 0;
	const char *code = m->params[1];
	if (strcasecmp(code, "ALREADY_LIKED") == 0) {
		room_set_mine(c->room, q->ref, MINE_LIKED);
		client_note(c, NOTE_ERROR, "you already like line %s", q->what);
	} else if (strcasecmp(code, "NOT_LIKED") == 0) {
		room_set_mine(c->room, q->ref, MINE_NOT_LIKED);
		client_note(c, NOTE_ERROR, "you have not liked line %s", q->what);
	} else if (strcasecmp(code, "OWN_MESSAGE") == 0) {
		client_note(c, NOTE_ERROR, "line %s is yours: you cannot like your own line", q->what);
	} else {
		client_note(c, NOTE_ERROR, "line %s: %s", q->what, msg_text(m));
	}
	return 1;
}

static void like(struct client *c, const char *arg, int on)
{
	struct room_line *line;
	size_t n = line_number(arg);
	if (in_timeline(c)) {
		client_note(c, NOTE_ERROR, "%s: posts cannot be liked: j <room> to go back to a room",
			    on ? "l" : "r");
		return;
	}
	switch (room_like_check(c->room, n, c->nick, on, &line)) {
	case LIKE_NOT_SHOWN:
		if (c->room->nshown)
			client_note(c, NOTE_ERROR, "no line %s on screen (the lines are 1..%zu)", arg,
				    c->room->nshown);
		else
			client_note(c, NOTE_ERROR, "no line %s on screen (the room has no lines yet)", arg);
		return;
	case LIKE_OWN_LINE:
		client_note(c, NOTE_ERROR, "line %zu is yours: you cannot like your own line", n);
		return;
	case LIKE_ALREADY:
		client_note(c, NOTE_ERROR, "you already like line %zu", n);
		return;
	case LIKE_NOT_LIKED:
		client_note(c, NOTE_ERROR, "you have not liked line %zu", n);
		return;
	case LIKE_OK:
	default:
		break;
	}
	struct request *q = waiting_request(c, on ? "liking" : "unliking");
	char tags[256];
	q->on_line = like_line;
	q->ref = xstrdup(line->msgid);
	q->what = xstrdup(arg);
	q->mode = on;
	snprintf(tags, sizeof tags, "+draft/%s=%s;+draft/reply=%s", on ? "react" : "unreact", LIKE_REACTION,
		 line->msgid);
	request_send(c, q, tags, "TAGMSG %s", c->room->name);
}

static void cmd_like(struct client *c, char **argv)
{
	like(c, argv[0], 1);
}

static void cmd_unlike(struct client *c, char **argv)
{
	like(c, argv[0], 0);
}

static void cmd_history(struct client *c, char **argv)
{
	(void)argv;
	history_fetch(c, HISTORY_FULL, NULL, client_wait(c, "history", 1));
}

/* ---- the cluster and other users ---- */

/* 364 me <mask> <server> :<hops> <info>: keeps the info. */
static int links_line(struct client *c, struct request *q, struct irc_msg *m)
{
	(void)c;
	if (strcmp(m->command, "364") == 0) {
		const char *info = msg_text(m);
		const char *space = strchr(info, ' ');
		request_keep_line(q, space ? space + 1 : info);
		return 1;
	}
	return strcmp(m->command, "365") == 0;
}

static void links_done(struct client *c, struct request *q)
{
	c->ui->page(c, "view", q->lines, q->nlines);
	client_unwait(c, q->token);
}

static void cmd_view(struct client *c, char **argv)
{
	(void)argv;
	struct request *q = waiting_request(c, "view");
	q->on_line = links_line;
	q->on_done = links_done;
	request_send(c, q, NULL, "LINKS");
}

static void cmd_message(struct client *c, char **argv)
{
	outbox_send(c, argv[0], argv[1], client_wait(c, "sending", 1));
}

/* A 421 in the answer to q: this server lacks the verb. Returns 1 if m
 * was one (and says so). */
static int unsupported(struct client *c, struct request *q, struct irc_msg *m)
{
	if (strcmp(m->command, "421") != 0)
		return 0;
	q->failed = 1;
	client_note(c, NOTE_ERROR, "%s: not supported by this server (no %s)", q->what,
		    m->nparams > 1 ? m->params[1] : "such command");
	return 1;
}

/* FAIL FOLLOW|UNFOLLOW <code> <nick> :<text>, said with the name as typed. */
static void follow_refused(struct client *c, struct request *q, const char *code, const char *text)
{
	if (strcasecmp(code, "CANNOT_FOLLOW_SELF") == 0)
		client_note(c, NOTE_ERROR, "%s: you cannot follow yourself", q->what);
	else if (strcasecmp(code, "UNKNOWN_USER") == 0)
		client_note(c, NOTE_ERROR, "%s: no such user %s", q->what, q->who);
	else if (strcasecmp(code, "ALREADY_FOLLOWING") == 0)
		client_note(c, NOTE_ERROR, "%s: you already follow %s", q->what, q->who);
	else if (strcasecmp(code, "NOT_FOLLOWING") == 0)
		client_note(c, NOTE_ERROR, "%s: you do not follow %s", q->what, q->who);
	else
		client_note(c, NOTE_ERROR, "%s %s: %s", q->what, q->who, text);
}

/* The answer to FOLLOW or UNFOLLOW: a FAIL is said here; the change itself
 * comes back as our FOLLOW or UNFOLLOW line, which incoming.c notes (as
 * it does when another session of ours makes one). */
static int follow_line(struct client *c, struct request *q, struct irc_msg *m)
{
	if (unsupported(c, q, m))
		return 1;
	if (strcasecmp(m->command, "FAIL") != 0 || m->nparams < 3)
		return 0;
	follow_refused(c, q, m->params[1], msg_text(m));
	return 1;
}

static void follow(struct client *c, const char *what, const char *verb, const char *who)
{
	struct request *q = waiting_request(c, what);
	q->what = xstrdup(what);
	q->who = xstrdup(who);
	q->on_line = follow_line;
	request_send(c, q, NULL, "%s %s", verb, who);
}

static void cmd_follow(struct client *c, char **argv)
{
	follow(c, "f", "FOLLOW", argv[0]);
}

static void cmd_unfollow(struct client *c, char **argv)
{
	follow(c, "uf", "UNFOLLOW", argv[0]);
}

/* USERS <me> <nick> :<flags>, until the one for "*": kept as
 * "nick: flags" ("-" for none), "nick (you): flags" for us. */
static int users_line(struct client *c, struct request *q, struct irc_msg *m)
{
	if (unsupported(c, q, m))
		return 1;
	if (strcasecmp(m->command, "USERS") != 0 || m->nparams < 3)
		return 0;
	const char *nick = m->params[1], *flags = msg_text(m);
	if (strcmp(nick, "*") != 0) {
		char *line = xasprintf("%s%s: %s", nick, session_is_me(c, nick) ? " (you)" : "",
				       *flags ? flags : "-");
		request_keep_line(q, line);
		free(line);
	}
	return 1;
}

static void users_done(struct client *c, struct request *q)
{
	if (!q->failed)
		c->ui->page(c, "ls", q->lines, q->nlines);
	client_unwait(c, q->token);
}

static void cmd_users(struct client *c, char **argv)
{
	(void)argv;
	struct request *q = waiting_request(c, "users");
	q->what = xstrdup("ls");
	q->on_line = users_line;
	q->on_done = users_done;
	request_send(c, q, NULL, "USERS");
}

/* ---- accounts ---- */

static void cmd_register(struct client *c, char **argv)
{
	auth_register(c, argv[0]);
}

/* ---- the client itself ---- */

static void cmd_quit(struct client *c, char **argv)
{
	(void)argv;
	client_quit(c);
}

static void cmd_help(struct client *c, char **argv);

static const struct command commands[] = {
	{"c", NULL, "c <i|host:port>", "connect to replica i (id or position) or host:port", NEED_NOTHING, 1, cmd_connect, 0},
	{"u", NULL, "u <name>", "log in as name (again: change name); asks for the password of a registered name", NEED_LINK, 1, cmd_user, 0},
	{"reg", NULL, "reg [password]", "register your name as an account (without a password: asks for it, not shown)", NEED_LOGIN, 1, cmd_register, 1},
	{"j", NULL, "j <room>", "join a room (leaving the one on screen)", NEED_LOGIN, 1, cmd_join, 0},
	{"lv", NULL, "lv", "leave the room on screen (in the timeline, exit does too)", NEED_ROOM, 0, cmd_leave, 0},
	{"a", NULL, "a <text>", "append a line to the room", NEED_ROOM, 1, cmd_append, 0},
	{"l", NULL, "l <n>", "like line n of the screen", NEED_ROOM, 1, cmd_like, 0},
	{"r", NULL, "r <n>", "remove your like of line n", NEED_ROOM, 1, cmd_unlike, 0},
	{"h", "p", "h (or p)", "the whole history of the room", NEED_ROOM, 0, cmd_history, 0},
	{"v", NULL, "v", "the replicas in this replica's view", NEED_LINK, 0, cmd_view, 0},
	{"m", NULL, "m <user> <text>", "direct message to a user", NEED_LOGIN, 2, cmd_message, 0},
	{"d", NULL, "d [user]", "your conversations and their new lines; with a user, that one shown like a room (a writes to them)", NEED_LOGIN, 1, cmd_conversation, 1},
	{"f", NULL, "f <user>", "follow a user's feed", NEED_LOGIN, 1, cmd_follow, 0},
	{"uf", NULL, "uf <user>", "stop following a user", NEED_LOGIN, 1, cmd_unfollow, 0},
	{"ls", NULL, "ls", "all users: following = you follow them, follower = they follow you, online", NEED_LOGIN, 0, cmd_users, 0},
	{"t", NULL, "t", "your timeline: posts of the users you follow; there a line is a post", NEED_LOGIN, 0, cmd_timeline, 0},
	{"q", "Leave", "q (or Leave)", "quit", NEED_NOTHING, 0, cmd_quit, 0},
	{"help", NULL, "help", "this list", NEED_NOTHING, 0, cmd_help, 0},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* The lines of the help page (allocated). */
static size_t commands_help(char ***lines)
{
	*lines = xcalloc(NCOMMANDS, sizeof **lines);
	for (size_t i = 0; i < NCOMMANDS; i++)
		(*lines)[i] = xasprintf("%-16s %s", commands[i].usage, commands[i].help);
	return NCOMMANDS;
}

static void cmd_help(struct client *c, char **argv)
{
	char **lines;
	size_t n = commands_help(&lines);
	(void)argv;
	c->ui->page(c, "help", lines, n);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/* What a line that is no command is in the timeline. */
static const struct command post_command = {"post", NULL, "<text>", "", NEED_LOGIN, 1, cmd_post, 0};

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0 || (commands[i].alias && strcmp(commands[i].alias, name) == 0))
			return &commands[i];
	return NULL;
}

/* 1 if c is in the state cmd needs; otherwise says what to do first. */
static int ready_for(struct client *c, const struct command *cmd)
{
	if (cmd->need >= NEED_LINK && c->link < LINK_READY) {
		client_note(c, NOTE_ERROR, "%s: not connected: use c <i|host:port> first", cmd->name);
		return 0;
	}
	if (cmd->need >= NEED_LOGIN && c->link < LINK_REGISTERED) {
		client_note(c, NOTE_ERROR, "%s: not logged in: use u <name> first", cmd->name);
		return 0;
	}
	if (cmd->need >= NEED_ROOM && (!c->room || !c->joined)) {
		client_note(c, NOTE_ERROR, "%s: not in a room: use j <room> first", cmd->name);
		return 0;
	}
	return 1;
}

/* Splits rest into up to nargs arguments, the last one taking the rest of
 * the line. Returns how many were found. */
static int split_args(char *rest, char **argv, int nargs)
{
	int n = 0;
	while (n < nargs) {
		rest += strspn(rest, " \t");
		if (!*rest)
			break;
		argv[n++] = rest;
		if (n == nargs)
			break;
		rest += strcspn(rest, " \t");
		if (*rest)
			*rest++ = '\0';
	}
	return n;
}

void commands_run(struct client *c, const char *text)
{
	size_t wlen = strcspn(text, " \t");
	char *word = xstrndup(text, wlen), *rest = xstrdup(text + wlen), *argv[2] = {NULL, NULL};
	const struct command *cmd = command_find(word);
	if (in_timeline(c) && strcmp(text, "exit") == 0)
		cmd = command_find("lv");
	if (!cmd && in_timeline(c)) {
		free(rest);
		rest = xstrdup(text); /* the whole line is the post */
		cmd = &post_command;
	}
	if (!cmd)
		client_note(c, NOTE_ERROR, "unknown command %s: help lists them", word);
	else if (split_args(rest, argv, cmd->nargs) < cmd->nargs - cmd->optional)
		client_note(c, NOTE_ERROR, "usage: %s", cmd->usage);
	else if (ready_for(c, cmd))
		cmd->exec(c, argv);
	free(word);
	free(rest);
}

/* ---- what runs at once ---- */

int commands_urgent(const struct client *c, const char *text)
{
	char *word = xstrndup(text, strcspn(text, " \t"));
	const struct command *cmd = command_find(word);
	free(word);
	return c->keep_trying && cmd && (cmd->exec == cmd_quit || cmd->exec == cmd_connect);
}
