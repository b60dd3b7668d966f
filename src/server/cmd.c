/*
 * cmd.c: the command table and dispatch. Each command is one entry: its
 * name, how many parameters it needs, whether registration must be complete,
 * and the function that runs it (in cmd_*.c by theme). A labeled command's
 * answer is gathered and sent as its labeled response.
 */
#include <strings.h>

#include "server.h"

static const struct command commands[] = {
	{"CAP", 1, 0, cmd_cap},
	{"PASS", 1, 0, cmd_pass},
	{"NICK", 0, 0, cmd_nick},
	{"USER", 4, 0, cmd_user},
	{"PING", 1, 0, cmd_ping},
	{"PONG", 0, 0, cmd_pong},
	{"QUIT", 0, 0, cmd_quit},
	{"SETNAME", 1, 1, cmd_setname},
	{"JOIN", 1, 1, cmd_join},
	{"PART", 1, 1, cmd_part},
	{"NAMES", 0, 1, cmd_names},
	{"WHO", 0, 1, cmd_who},
	{"LIST", 0, 1, cmd_list},
	{"TOPIC", 1, 1, cmd_topic},
	{"PRIVMSG", 0, 1, cmd_privmsg},
	{"NOTICE", 0, 1, cmd_notice},
	{"TAGMSG", 1, 1, cmd_tagmsg},
	{"CHATHISTORY", 1, 1, cmd_chathistory},
	{"MOTD", 0, 1, cmd_motd},
	{"LUSERS", 0, 1, cmd_lusers},
	{"LINKS", 0, 0, cmd_links},
	{"DIGEST", 0, 0, cmd_digest},
	{"SYNCSTATE", 0, 0, cmd_syncstate},
	{"VERSION", 0, 1, cmd_version},
	{"FOLLOW", 1, 1, cmd_follow},
	{"UNFOLLOW", 1, 1, cmd_unfollow},
	{"USERS", 0, 1, cmd_users},
	{"REGISTER", 3, 0, cmd_register},
	{"AUTHENTICATE", 1, 0, cmd_authenticate},
	{"ACCOUNT", 1, 1, cmd_account},
	{"WHOIS", 1, 1, cmd_whois},
	{"OPER", 2, 1, cmd_oper},
};

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
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
	else
		c->exec(s, m);
	reply_capture_end(s, &cap);
}
