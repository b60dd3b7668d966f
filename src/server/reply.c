/*
 * reply.c: formatting what the server sends. Tags are added per the client's
 * capabilities (server-time, message-tags, batch, labeled-response); numerics
 * carry the client's nick; a labeled command's lines are gathered and sent as
 * one labeled line, a labeled-response batch, or an ACK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Appends "key=escaped(value)" (or "key" when value is NULL) to b after a ';'
 * unless b is empty. */
static void add_tag(struct buf *b, const char *key, const char *value)
{
	char esc[1024];
	if (b->len)
		buf_putc(b, ';');
	buf_puts(b, key);
	if (value && irc_tag_escape(value, esc, sizeof esc) >= 0) {
		buf_putc(b, '=');
		buf_puts(b, esc);
	}
}

/* Appends to b the tags of t that a client with caps receives. */
static void build_tags(unsigned caps, const struct line_tags *t, struct buf *b)
{
	if (!t)
		return;
	if (t->label && (caps & CAP_LABELED_RESPONSE))
		add_tag(b, "label", t->label);
	if (caps & CAP_SERVER_TIME) {
		char when[32];
		format_server_time(t->time_ms ? t->time_ms : wall_ms(), when, sizeof when);
		add_tag(b, "time", when);
	}
	if (t->batch && (caps & CAP_BATCH))
		add_tag(b, "batch", t->batch);
	if (t->account && (caps & CAP_ACCOUNT_TAG))
		add_tag(b, "account", t->account);
	if (caps & CAP_MESSAGE_TAGS) {
		if (t->msgid)
			add_tag(b, "msgid", t->msgid);
		if (t->client_tags && *t->client_tags) {
			if (b->len)
				buf_putc(b, ';');
			buf_puts(b, t->client_tags);
		}
		if (t->likes >= 0) {
			char n[16];
			snprintf(n, sizeof n, "%d", t->likes);
			add_tag(b, "chorus/likes", n);
		}
	}
}

/* Appends to line: "@tags " (those caps ask for), ":source ", the formatted
 * rest, CRLF. A CR or LF inside the rest (text stored before CR was refused,
 * or from a peer) becomes a space: no line sent ever breaks in two. */
static void reply_vformat(unsigned caps, const struct line_tags *t, const char *source,
			  struct buf *line, const char *fmt, va_list ap)
{
	struct buf tags = {0};
	size_t rest;
	build_tags(caps, t, &tags);
	if (tags.len) {
		buf_putc(line, '@');
		buf_append(line, tags.data, tags.len);
		buf_putc(line, ' ');
	}
	if (source) {
		buf_putc(line, ':');
		buf_puts(line, source);
		buf_putc(line, ' ');
	}
	rest = line->len;
	buf_vprintf(line, fmt, ap);
	for (char *p = line->data ? line->data + rest : NULL; p && (p = strpbrk(p, "\r\n"));)
		*p = ' ';
	buf_append(line, "\r\n", 2);
	buf_free(&tags);
}

void reply_format(unsigned caps, const struct line_tags *t, const char *source, struct buf *line,
		  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_vformat(caps, t, source, line, fmt, ap);
	va_end(ap);
}

static void reply_vline(struct session *s, const struct line_tags *t, const char *source,
			const char *fmt, va_list ap)
{
	struct buf line = {0};
	reply_vformat(s->caps, t, source, &line, fmt, ap);
	session_send_raw(s, line.data, line.len);
	buf_free(&line);
}

void reply_line(struct session *s, const struct line_tags *t, const char *source, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_vline(s, t, source, fmt, ap);
	va_end(ap);
}

void reply_num(struct session *s, int num, const char *fmt, ...)
{
	struct line_tags t = LINE_TAGS_INIT;
	struct buf rest = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&rest, fmt, ap);
	va_end(ap);
	reply_line(s, &t, s->srv->name, "%03d %s %s", num, s->nick ? s->nick : "*", rest.data);
	buf_free(&rest);
}

void reply_truncated(struct session *s, const char *command, size_t left)
{
	if (left)
		reply_num(s, 416, "%s :Output too long for your send queue: %zu more left out; "
			  "ask for less", command, left);
}

void reply_fail(struct session *s, const char *command, const char *code, const char *context,
		const char *text)
{
	struct line_tags t = LINE_TAGS_INIT;
	if (context)
		reply_line(s, &t, s->srv->name, "FAIL %s %s %s :%s", command, code, context, text);
	else
		reply_line(s, &t, s->srv->name, "FAIL %s %s :%s", command, code, text);
}

void reply_refused(struct session *s, const char *command, const char *target, int why)
{
	struct server *srv = s->srv;
	const struct group_view *v = repl_current_view(srv->repl);
	struct buf others = {0};
	metrics_refused(&srv->metrics, REFUSED_WRITE);
	if (why != REPL_MINORITY) {
		reply_fail(s, command, "STORAGE_ERROR", target,
			   "Not stored: this replica cannot write to its disk; try again later or another replica");
		return;
	}
	/* Name the replicas outside our view: the majority is among them. */
	for (size_t i = 0; i < srv->cfg.nreplicas; i++) {
		const struct replica_addr *a = &srv->cfg.replicas[i];
		int inside = 0;
		for (size_t j = 0; j < v->n; j++)
			inside |= v->members[j] == a->id;
		if (!inside)
			buf_printf(&others, "%sreplica %u at %s:%d", others.len ? ", " : "", a->id, a->host, a->port);
	}
	char text[700];
	snprintf(text, sizeof text, "Not stored: this replica is cut off from the majority; reconnect to %s",
		 others.len ? others.data : "another replica");
	reply_fail(s, command, "MAJORITY_REQUIRED", target, text);
	buf_free(&others);
}

const char *reply_source(const char *nick, char *buf, size_t len)
{
	snprintf(buf, len, "%s!%s@chorus", nick, nick);
	return buf;
}

/* ---- batches opened per session ---- */

struct batch_open {
	struct session *s; /* key */
	UT_hash_handle hh;
	char id[16];
};

const char *batch_for(struct batch_set *b, struct session *s)
{
	struct batch_open *o = NULL;
	if (!b || !(s->caps & CAP_BATCH))
		return NULL;
	HASH_FIND_PTR(b->open, &s, o);
	if (!o) {
		struct line_tags t = LINE_TAGS_INIT;
		o = xcalloc(1, sizeof *o);
		o->s = s;
		session_batch_id(s, o->id, sizeof o->id);
		HASH_ADD_PTR(b->open, s, o);
		reply_line(s, &t, s->srv->name, "BATCH +%s %s%s%s", o->id, b->type, b->params ? " " : "",
			   b->params ? b->params : "");
	}
	return o->id;
}

void batch_set_close(struct batch_set *b)
{
	struct batch_open *o, *tmp;
	HASH_ITER(hh, b->open, o, tmp) {
		struct line_tags t = LINE_TAGS_INIT;
		reply_line(o->s, &t, o->s->srv->name, "BATCH -%s", o->id);
		HASH_DEL(b->open, o);
		free(o);
	}
}

/* ---- labeled-response ---- */

void reply_capture_begin(struct session *s, struct capture *c, const char *label)
{
	memset(c, 0, sizeof *c);
	if (!label || !(s->caps & CAP_LABELED_RESPONSE))
		return;
	c->label = label;
	s->capture = c;
}

/* Writes line with tag (already "key=value") added to its tag section. */
static void emit_with_tag(struct session *s, const char *line, size_t len, const char *tag)
{
	struct buf out = {0};
	if (line[0] == '@') {
		buf_putc(&out, '@');
		buf_puts(&out, tag);
		buf_putc(&out, ';');
		buf_append(&out, line + 1, len - 1);
	} else {
		buf_putc(&out, '@');
		buf_puts(&out, tag);
		buf_putc(&out, ' ');
		buf_append(&out, line, len);
	}
	session_send_raw(s, out.data, out.len);
	buf_free(&out);
}

/* 1 if the line's tag section already names a batch. */
static int has_batch_tag(const char *line)
{
	if (line[0] != '@')
		return 0;
	const char *p = line + 1, *end = strchr(line, ' ');
	while (p && p < end) {
		if (strncmp(p, "batch=", 6) == 0)
			return 1;
		p = strchr(p, ';');
		if (p)
			p++;
	}
	return 0;
}

void reply_capture_end(struct session *s, struct capture *c)
{
	char esc[256], tag[300];
	if (s->capture != c)
		return;
	s->capture = NULL;
	if (irc_tag_escape(c->label, esc, sizeof esc) < 0)
		esc[0] = '\0';
	snprintf(tag, sizeof tag, "label=%s", esc);
	if (c->count == 0 && !c->deferred) {
		struct line_tags t = LINE_TAGS_INIT;
		t.label = c->label;
		reply_line(s, &t, s->srv->name, "ACK");
	} else if (c->count == 1) {
		emit_with_tag(s, c->lines.data, c->lines.len, tag);
	} else if (c->count > 1) {
		char id[16], btag[32];
		struct line_tags t = LINE_TAGS_INIT;
		session_batch_id(s, id, sizeof id);
		snprintf(btag, sizeof btag, "batch=%s", id);
		t.label = c->label;
		if (s->caps & CAP_BATCH)
			reply_line(s, &t, s->srv->name, "BATCH +%s labeled-response", id);
		for (char *line = c->lines.data; line && *line;) {
			char *eol = strstr(line, "\r\n");
			size_t len = (size_t)(eol - line) + 2;
			if ((s->caps & CAP_BATCH) && !has_batch_tag(line))
				emit_with_tag(s, line, len, btag);
			else
				session_send_raw(s, line, len);
			line = eol + 2;
		}
		if (s->caps & CAP_BATCH) {
			struct line_tags e = LINE_TAGS_INIT;
			reply_line(s, &e, s->srv->name, "BATCH -%s", id);
		}
	}
	buf_free(&c->lines);
}

/* ---- registration burst ---- */

static const char *isupport[] = {
	"CASEMAPPING=ascii", "CHANTYPES=#", "CHANNELLEN=50", "NICKLEN=30", "TOPICLEN=390", "AWAYLEN=200", "MONITOR=100", "WHOX",
	"NETWORK=chorus", "PREFIX=(ov)@+", "CHANMODES=beI,k,l,imnst", "EXCEPTS", "INVEX", "MODES=6",
	"UTF8ONLY", "LINELEN=512",
	"TARGMAX=PRIVMSG:1,NOTICE:1,TAGMSG:1,JOIN:10,PART:10,NAMES:1,WHO:1",
	"CHATHISTORY=100", "MSGREFTYPES=msgid,timestamp", "MAXTARGETS=1", "CLIENTTAGDENY=",
};

void reply_welcome(struct session *s)
{
	struct server *srv = s->srv;
	char created[32], src[128];
	format_server_time(srv->started_ms, created, sizeof created);
	reply_num(s, 1, ":Welcome to the chorus network, %s", reply_source(s->nick, src, sizeof src));
	reply_num(s, 2, ":Your host is %s, running version chorus-%s", srv->name, CHORUS_VERSION);
	reply_num(s, 3, ":This server was created %s", created);
	reply_num(s, 4, "%s chorus-%s iow beIiklmnostv beIklov", srv->name, CHORUS_VERSION);
	size_t n = sizeof isupport / sizeof isupport[0];
	for (size_t i = 0; i < n; i += 12) {
		struct buf b = {0};
		for (size_t j = i; j < n && j < i + 12; j++) {
			buf_puts(&b, isupport[j]);
			buf_putc(&b, ' ');
		}
		reply_num(s, 5, "%s:are supported by this server", b.data);
		buf_free(&b);
	}
	reply_lusers(s);
	reply_motd(s);
}

/* LUSERS: users in the view (global) and with a session here (local),
 * operators and unregistered connections here, rooms, replicas in the view. */
void reply_lusers(struct session *s)
{
	struct server *srv = s->srv;
	unsigned global = HASH_COUNT(srv->users), local = srv->local_users, opers = 0, unknown = 0;
	size_t replicas = repl_current_view(srv->repl)->n ? repl_current_view(srv->repl)->n : 1;
	struct session *o, *otmp;
	HASH_ITER(hh, srv->sessions, o, otmp) {
		opers += o->oper;
		unknown += !o->registered && !o->control;
	}
	reply_num(s, 251, ":There are %u users and 0 invisible on %zu servers", global, replicas);
	if (opers)
		reply_num(s, 252, "%u :operator(s) online", opers);
	if (unknown)
		reply_num(s, 253, "%u :unknown connection(s)", unknown);
	reply_num(s, 254, "%zu :channels formed", chat_room_count(srv->chat));
	reply_num(s, 255, ":I have %u clients and %zu servers", local, replicas - 1);
	reply_num(s, 265, "%u %u :Current local users %u, max %u", local, srv->max_local_seen, local,
		  srv->max_local_seen);
	reply_num(s, 266, "%u %u :Current global users %u, max %u", global, srv->max_users_seen, global,
		  srv->max_users_seen);
}

void reply_motd(struct session *s)
{
	const char *motd = s->srv->cfg.motd;
	if (!motd || !*motd) {
		reply_num(s, 422, ":MOTD File is missing");
		return;
	}
	reply_num(s, 375, ":- %s Message of the day - ", s->srv->name);
	const char *p = motd;
	while (*p) {
		size_t n = strcspn(p, "\n");
		reply_num(s, 372, ":- %.*s", (int)(n > 400 ? 400 : n), p);
		p += n;
		if (*p == '\n')
			p++;
	}
	reply_num(s, 376, ":End of /MOTD command.");
}
