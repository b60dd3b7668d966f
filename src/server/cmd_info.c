/*
 * cmd_info.c: information about the server, its users and the cluster: MOTD,
 * LUSERS, VERSION, WHOIS, LINKS (the replicas in this replica's current view, with id and
 * client address), DIGEST (our verb: the set digest of the operations
 * applied, kept as they apply; DIGEST FULL hashes the whole canonical state,
 * ~90 ms at 115,000 messages: for the tests) and SYNCSTATE (our verb: the
 * operations applied and whether a sync is going on). LINKS
 * works before registration. DIGEST and SYNCSTATE are operator verbs: on the
 * control socket (DATA_DIR/control.sock, chorusctl's way in) or after OPER.
 */
#include <inttypes.h>

#include "server.h"

void cmd_motd(struct session *s, struct irc_msg *m)
{
	(void)m;
	reply_motd(s);
}

void cmd_lusers(struct session *s, struct irc_msg *m)
{
	(void)m;
	reply_lusers(s);
}

/* TIME: 391 with this replica's clock (ISO 8601, UTC). */
void cmd_time(struct session *s, struct irc_msg *m)
{
	char when[32];
	(void)m;
	format_server_time(wall_ms(), when, sizeof when);
	reply_num(s, 391, "%s :%s", s->srv->name, when);
}

/* INFO: what this server is (371 lines, 374). */
void cmd_info(struct session *s, struct irc_msg *m)
{
	(void)m;
	reply_num(s, 371, ":chorus %s: replicated group chat (replica %u)", CHORUS_VERSION, s->srv->cfg.id);
	reply_num(s, 371, ":Every replica holds every room, message and like; histories merge");
	reply_num(s, 371, ":after a network partition into one order on every replica.");
	reply_num(s, 374, ":End of /INFO list");
}

/* ADMIN: who runs this replica (256-259). */
void cmd_admin(struct session *s, struct irc_msg *m)
{
	(void)m;
	reply_num(s, 256, "%s :Administrative info", s->srv->name);
	reply_num(s, 257, ":chorus replica %u", s->srv->cfg.id);
	reply_num(s, 258, ":Operators: see OPER; the cluster: LINKS");
	reply_num(s, 259, ":-");
}

/* HELP [topic]: 704, 705..., 706; 524 for an unknown topic. */
void cmd_help(struct session *s, struct irc_msg *m)
{
	static const struct {
		const char *topic, *text;
	} topics[] = {
		{"*", "Commands: JOIN PART PRIVMSG NOTICE TAGMSG TOPIC NAMES LIST WHO WHOIS WHOWAS "
		      "MODE KICK INVITE AWAY MONITOR ISON USERHOST CHATHISTORY FOLLOW UNFOLLOW USERS "
		      "REGISTER ACCOUNT LINKS LUSERS MOTD TIME INFO ADMIN VERSION; HELP <command>"},
		{"MODE", "MODE #room [+-imnstklbeIov params]: room modes; MODE <you> [+-iw]"},
		{"CHATHISTORY", "CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS <target> ..."},
		{"FOLLOW", "FOLLOW <nick>: their posts to &timeline reach your timeline"},
	};
	const char *topic = m->nparams > 0 ? m->params[0] : "*";
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
		if (strcasecmp(topics[i].topic, topic) == 0) {
			reply_num(s, 704, "%s :%s", topic, i ? topics[i].topic : "chorus help");
			reply_num(s, 705, "%s :%s", topic, topics[i].text);
			reply_num(s, 706, "%s :End of /HELP", topic);
			return;
		}
	if (cmd_known(topic)) {
		reply_num(s, 704, "%s :%s", topic, topic);
		reply_num(s, 705, "%s :An IRC command: see modern.ircdocs.horse, and chorus's docs/PROTOCOL.md", topic);
		reply_num(s, 706, "%s :End of /HELP", topic);
		return;
	}
	reply_num(s, 524, "%s :No help available on this topic", topic);
}

void cmd_version(struct session *s, struct irc_msg *m)
{
	(void)m;
	reply_num(s, 351, "chorus-%s %s :replicated chat, replica %u", CHORUS_VERSION, s->srv->name,
		  s->srv->cfg.id);
}

void server_name_of(const struct server *srv, uint32_t id, char out[SERVER_NAME_MAX])
{
	if (id == srv->cfg.id && srv->cfg.server_name) {
		snprintf(out, SERVER_NAME_MAX, "%s", srv->cfg.server_name);
		return;
	}
	for (size_t i = 0; i < srv->cfg.nreplicas; i++)
		if (srv->cfg.replicas[i].id == id && srv->cfg.replicas[i].name[0]) {
			snprintf(out, SERVER_NAME_MAX, "%s", srv->cfg.replicas[i].name);
			return;
		}
	snprintf(out, SERVER_NAME_MAX, "r%" PRIu32 ".chorus", id);
}

/* The client address of replica id, from the cluster list (or our own). */
static void replica_address(struct server *srv, uint32_t id, char *buf, size_t len)
{
	for (size_t i = 0; i < srv->cfg.nreplicas; i++)
		if (srv->cfg.replicas[i].id == id) {
			snprintf(buf, len, "%s:%d", srv->cfg.replicas[i].host, srv->cfg.replicas[i].port);
			return;
		}
	if (id == srv->cfg.id)
		snprintf(buf, len, "%s:%d", srv->cfg.listen, srv->cfg.port);
	else
		snprintf(buf, len, "unknown");
}

void cmd_links(struct session *s, struct irc_msg *m)
{
	struct server *srv = s->srv;
	const struct group_view *v = repl_current_view(srv->repl);
	(void)m;
	for (size_t i = 0; i < v->n; i++) {
		uint32_t id = v->members[i];
		char addr[96], name[SERVER_NAME_MAX];
		replica_address(srv, id, addr, sizeof addr);
		server_name_of(srv, id, name);
		reply_num(s, 364, "%s %s :%d replica %u at %s%s", name, srv->name,
			  id == srv->cfg.id ? 0 : 1, id, addr, id == srv->cfg.id ? " (this replica)" : "");
	}
	reply_num(s, 365, "* :End of /LINKS list.");
}

/* 1 if one of u's sessions here came over TLS. */
static int on_tls_here(const struct user *u)
{
	for (const struct session *o = u->sessions; o; o = o->next_of_user)
		if (o->tls)
			return 1;
	return 0;
}

/* WHOIS [server] <nick>: a user online in the view: 311, 319 (its rooms),
 * 312 (a replica it is on), 330 (its account, if logged in), 671 (on TLS
 * here), 318. A user online nowhere: 401, 318. */
void cmd_whois(struct session *s, struct irc_msg *m)
{
	const char *nick = m->params[m->nparams - 1];
	struct user *u = presence_user(s->srv, nick);
	if (!u) {
		reply_num(s, 401, "%s :No such nick", nick);
		reply_num(s, 318, "%s :End of /WHOIS list", nick);
		return;
	}
	struct buf rooms = {0};
	struct membership *mm, *tmp;
	reply_num(s, 311, "%s %s chorus * :%s", u->nick, u->username, u->realname);
	HASH_ITER(hh_user, u->rooms, mm, tmp)
		if (room_visible(s->srv, mm->room->name, s->user))
			buf_printf(&rooms, "%s%s%s", rooms.len ? " " : "",
				   room_prefix(s->srv, mm->room->name, u, (s->caps & CAP_MULTI_PREFIX) != 0),
				   mm->room->name);
	if (rooms.len)
		reply_num(s, 319, "%s :%s", u->nick, rooms.data);
	buf_free(&rooms);
	char server[SERVER_NAME_MAX];
	server_name_of(s->srv, u->home, server);
	reply_num(s, 312, "%s %s :chorus replica %u", u->nick, server, u->home);
	const char *account = account_shown(s->srv, u->nick, u->account);
	if (u->away)
		reply_num(s, 301, "%s :%s", u->nick, u->away);
	if (u->sessions) { /* idle and signon are known where its sessions are */
		uint64_t now = uv_now(s->srv->loop), spoke = 0, since = now;
		for (const struct session *o = u->sessions; o; o = o->next_of_user) {
			spoke = o->last_spoke_ms > spoke ? o->last_spoke_ms : spoke;
			since = o->connected_ms < since ? o->connected_ms : since;
		}
		reply_num(s, 317, "%s %llu %lld :seconds idle, signon time", u->nick,
			  (unsigned long long)((now - spoke) / 1000),
			  (long long)((wall_ms() - (int64_t)(now - since)) / 1000));
	}
	if (account)
		reply_num(s, 330, "%s %s :is logged in as", u->nick, account);
	if (on_tls_here(u))
		reply_num(s, 671, "%s :is using a secure connection", u->nick);
	reply_num(s, 318, "%s :End of /WHOIS list", u->nick);
}

/* 1 if s may use the operator verbs (the control socket, or OPER); else
 * answers 481 and returns 0. */
static int operator_only(struct session *s)
{
	if (s->control || s->oper)
		return 1;
	reply_num(s, 481, ":Permission Denied- DIGEST and SYNCSTATE are for operators (OPER, or chorusctl)");
	return 0;
}

/* The DIGEST reply: "NOTE DIGEST OK <hex> <ops> <syncing> :...", ops the
 * count of operations the digest is of. */
static void digest_reply(struct session *s, const char *hex, uint64_t ops, int full)
{
	struct server *srv = s->srv;
	struct line_tags t = LINE_TAGS_INIT;
	reply_line(s, &t, srv->name, "NOTE DIGEST OK %s %" PRIu64 " %d :%s of replica %u", hex,
		   ops, repl_syncing(srv->repl),
		   full ? "canonical state" : "set of operations", srv->cfg.id);
}

/* DIGEST FULL on its way: the chat's part is taken when the store's state
 * is pinned (the same moment), the store's part comes after its pass. */
struct digest_wait {
	struct store_wait wait;
	char state[65];           /* chat_state_digest then */
	uint64_t ops;             /* the ops applied then */
};

static void digest_pinned(void *arg)
{
	struct digest_wait *w = arg;
	chat_state_digest(w->wait.srv->chat, w->state);
	w->ops = chat_op_count(w->wait.srv->chat);
}

static void digest_answered(void *arg, int status, const char *store_part)
{
	struct digest_wait *w = arg;
	struct capture cap;
	struct session *s = store_wait_answer(&w->wait, &cap);
	if (s && status == STORE_OK) {
		char hex[65];
		chat_digest_of_parts(w->state, store_part, hex);
		digest_reply(s, hex, w->ops, 1);
	} else if (s) {
		reply_fail(s, "DIGEST", "STORAGE_ERROR", "FULL", "Cannot read the store: this replica cannot read its disk");
	}
	if (s)
		store_wait_end(s, &cap);
	store_wait_free(&w->wait);
	free(w);
}

/* DIGEST [FULL]: "NOTE DIGEST OK <hex> <ops> <syncing> :..." where
 * syncing is 1 while this replica is still catching up after a view change;
 * hex is the set digest of the operations applied (instant), or with FULL
 * the hash of the whole canonical state: the chat's working state and the
 * store's pass over every message and like state, of one moment (the
 * session waits for it; the pass runs on its own read transaction, writes
 * go on). */
void cmd_digest(struct session *s, struct irc_msg *m)
{
	char hex[65];
	if (!operator_only(s))
		return;
	if (m->nparams > 0 && strcasecmp(m->params[0], "FULL") == 0) {
		struct digest_wait *w = xcalloc(1, sizeof *w);
		store_wait_begin(s, &w->wait);
		store_writer_digest(s->srv->writer, digest_pinned, digest_answered, w);
		return;
	}
	chat_set_digest(s->srv->chat, hex);
	digest_reply(s, hex, chat_op_count(s->srv->chat), 0);
}

/* SYNCSTATE: "NOTE SYNCSTATE OK <ops> <syncing> :..." (as DIGEST, without
 * the hash): cheap enough to poll while a replica catches up. */
void cmd_syncstate(struct session *s, struct irc_msg *m)
{
	struct server *srv = s->srv;
	struct line_tags t = LINE_TAGS_INIT;
	(void)m;
	if (!operator_only(s))
		return;
	reply_line(s, &t, srv->name, "NOTE SYNCSTATE OK %" PRIu64 " %d :operations applied by replica %u",
		   chat_op_count(srv->chat), repl_syncing(srv->repl), srv->cfg.id);
}
