/*
 * cmd.c: the command table and dispatch. Each command is one entry: its
 * name, how many parameters it needs, whether registration must be complete,
 * the function that runs it (in cmd_*.c by theme), and what it costs of
 * the client's flood allowance (a line costs 1; commands that read much or
 * hash cost more, so a burst of them waits as a longer burst would). A labeled command's
 * answer is gathered and sent as its labeled response.
 */
#include <strings.h>

#include "server.h"

static const struct command commands[] = {
	{"CAP", 1, 0, cmd_cap, 1},
	{"PASS", 1, 0, cmd_pass, 1},
	{"NICK", 0, 0, cmd_nick, 1},
	{"USER", 4, 0, cmd_user, 1},
	{"PING", 1, 0, cmd_ping, 1},
	{"PONG", 0, 0, cmd_pong, 1},
	{"QUIT", 0, 0, cmd_quit, 1},
	{"SETNAME", 1, 1, cmd_setname, 1},
	{"JOIN", 1, 1, cmd_join, 2},
	{"PART", 1, 1, cmd_part, 1},
	{"NAMES", 0, 1, cmd_names, 2},
	{"WHO", 0, 1, cmd_who, 3},
	{"LIST", 0, 1, cmd_list, 5},
	{"TOPIC", 1, 1, cmd_topic, 1},
	{"PRIVMSG", 0, 1, cmd_privmsg, 1},
	{"NOTICE", 0, 1, cmd_notice, 1},
	{"TAGMSG", 1, 1, cmd_tagmsg, 1},
	{"CHATHISTORY", 1, 1, cmd_chathistory, 3},
	{"MOTD", 0, 1, cmd_motd, 2},
	{"LUSERS", 0, 1, cmd_lusers, 2},
	{"LINKS", 0, 0, cmd_links, 1},
	{"DIGEST", 0, 0, cmd_digest, 5},
	{"SYNCSTATE", 0, 0, cmd_syncstate, 1},
	{"VERSION", 0, 1, cmd_version, 1},
	{"FOLLOW", 1, 1, cmd_follow, 1},
	{"UNFOLLOW", 1, 1, cmd_unfollow, 1},
	{"USERS", 0, 1, cmd_users, 5},
	{"REGISTER", 3, 0, cmd_register, 5},
	{"AUTHENTICATE", 1, 0, cmd_authenticate, 1},
	{"ACCOUNT", 1, 1, cmd_account, 5},
	{"WHOIS", 1, 1, cmd_whois, 2},
	{"OPER", 2, 1, cmd_oper, 5},
	{"MODE", 1, 1, cmd_mode, 1},
	{"TIME", 0, 1, cmd_time, 1},
	{"MONITOR", 1, 1, cmd_monitor, 1},
	{"KILL", 1, 1, cmd_kill, 1},
	{"WALLOPS", 1, 1, cmd_wallops, 1},
	{"HELP", 0, 1, cmd_help, 1},
	{"ADMIN", 0, 1, cmd_admin, 1},
	{"WHOWAS", 0, 1, cmd_whowas, 2},
	{"AWAY", 0, 1, cmd_away, 1},
	{"USERHOST", 1, 1, cmd_userhost, 1},
	{"ISON", 1, 1, cmd_ison, 1},
	{"INFO", 0, 1, cmd_info, 1},
	{"KICK", 2, 1, cmd_kick, 1},
	{"INVITE", 2, 1, cmd_invite, 1},
};

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int cmd_known(const char *name)
{
	return command_find(name) != NULL;
}

void cmd_dispatch(struct session *s, struct irc_msg *m)
{
	const struct command *c = command_find(m->command);
	struct capture cap;

	reply_capture_begin(s, &cap, irc_tag_get(m, "label"));
	if (!c)
		reply_num(s, 421, "%s :Unknown command", m->command);
	else if (c->needs_registration && !s->registered)
		reply_num(s, 451, ":You have not registered");
	else if ((int)m->nparams < c->min_params)
		reply_num(s, 461, "%s :Not enough parameters", c->name);
	else {
		session_charge(s, c->cost - 1); /* the line itself was counted */
		c->exec(s, m);
	}
	reply_capture_end(s, &cap);
}
