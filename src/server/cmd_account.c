/*
 * cmd_account.c: the account commands (server.identity = accounts):
 *   REGISTER <account> <email|*> <password>  draft/account-registration
 *   AUTHENTICATE <mechanism|data|*>           SASL PLAIN and SCRAM-SHA-256
 *   ACCOUNT PASSWORD <old> <new>              a new password, by the owner
 *   ACCOUNT DROP <password>                   the account removed, by the owner
 * and their answers once the operation is stored (account_answer).
 * Passwords only ever become SCRAM verifiers (src/auth/scram.c); they are
 * not stored, logged or replicated.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/scram.h"
#include "server.h"

#define PASSWORD_MIN 8
#define PASSWORD_MAX 256
#define EMAIL_MAX 100
#define SASL_CHUNK 400         /* AUTHENTICATE data comes in lines of this much */
#define SASL_DATA_MAX 2048     /* the most one exchange step may send */

/* One AUTHENTICATE exchange. */
struct sasl {
	enum { MECH_PLAIN, MECH_SCRAM } mech;
	enum {
		STEP_FIRST,         /* waiting for the client's first data */
		STEP_FINAL,         /* SCRAM: waiting for the client-final message */
		STEP_ACK,           /* SCRAM: server-final sent, waiting for "+" */
	} step;
	struct buf data;            /* base64 gathered from 400-byte lines */
	struct scram_server scram;
	char regid[OP_MSGID_MAX];   /* SCRAM: the registration whose verifier is used */
};

void sasl_free(struct sasl *x)
{
	if (!x)
		return;
	buf_free(&x->data);
	scram_server_clear(&x->scram);
	free(x);
}

/* Refuses an account command when identity is open. Returns 1 if refused. */
static int refused_open(struct session *s, const char *command)
{
	if (accounts_enabled(s->srv))
		return 0;
	reply_fail(s, command, "TEMPORARILY_UNAVAILABLE", NULL,
		   "This network has no accounts (server.identity = open)");
	return 1;
}

/* ---- REGISTER ---- */

static int valid_email(const char *e)
{
	const char *at = strchr(e, '@');
	return strlen(e) <= EMAIL_MAX && at && at != e && at[1] && !strchr(e, ' ') && !strchr(at + 1, '@');
}

static int valid_password(const char *p)
{
	size_t n = strlen(p);
	return n >= PASSWORD_MIN && n <= PASSWORD_MAX;
}

void cmd_register(struct session *s, struct irc_msg *m)
{
	struct server *srv = s->srv;
	const char *name = strcmp(m->params[0], "*") == 0 ? s->nick : m->params[0];
	const char *email = m->params[1], *password = m->params[2];
	if (refused_open(s, "REGISTER"))
		return;
	if (!name) {
		reply_fail(s, "REGISTER", "NEED_NICK", "*", "Send NICK first, or name the account");
		return;
	}
	if (s->account) {
		reply_fail(s, "REGISTER", "ALREADY_AUTHENTICATED", name, "You are logged in already");
		return;
	}
	if (!chat_nick_valid(name)) {
		reply_fail(s, "REGISTER", "BAD_ACCOUNT_NAME", name, "An account name is a valid nick");
		return;
	}
	if (!s->nick || strcasecmp(name, s->nick) != 0) {
		reply_fail(s, "REGISTER", "ACCOUNT_NAME_MUST_BE_NICK", name, "Register the nick you use");
		return;
	}
	struct user *u = presence_user(srv, name);
	if (chat_account_find(srv->chat, name) || (u && u != s->user)) {
		reply_fail(s, "REGISTER", "ACCOUNT_EXISTS", name, "That name is registered or in use");
		return;
	}
	if (strcmp(email, "*") != 0 && !valid_email(email)) {
		reply_fail(s, "REGISTER", "INVALID_EMAIL", name, "Give an email address, or *");
		return;
	}
	if (!valid_password(password)) {
		reply_fail(s, "REGISTER", "WEAK_PASSWORD", name, "A password has 8 to 256 bytes");
		return;
	}
	struct op op = {0};
	op.kind = OP_REGISTER;
	op.author = xstrdup(s->nick);
	op.target = xstrdup(strcmp(email, "*") == 0 ? "" : email);
	op.body = scram_verifier_new(password);
	int why = replica_submit(srv, s, "REGISTER", &op);
	if (why)
		reply_refused(s, "REGISTER", name, why);
}

/* ---- ACCOUNT PASSWORD / DROP ---- */

/* The account s is logged in to, if it is in force; else answers and NULL. */
static const struct chat_account *own_account(struct session *s)
{
	const struct chat_account *a = chat_account_find(s->srv->chat, s->nick);
	if (!s->account || !a || strcmp(a->regid, s->account) != 0) {
		reply_fail(s, "ACCOUNT", "ACCOUNT_REQUIRED", "*", "You are not logged in");
		return NULL;
	}
	return a;
}

/* Checks password against s's account, rate-limited. Returns 1 if right. */
static int password_right(struct session *s, const struct chat_account *a, const char *password)
{
	if (!auth_allowed(s, a->name)) {
		reply_fail(s, "ACCOUNT", "RATE_LIMITED", a->name, "Too many wrong passwords; try again later");
		return 0;
	}
	if (scram_check_password(a->verifier, password) != 1) {
		auth_failed(s, a->name);
		reply_fail(s, "ACCOUNT", "BAD_PASSWORD", a->name, "Wrong password");
		return 0;
	}
	return 1;
}

void cmd_account(struct session *s, struct irc_msg *m)
{
	const char *sub = m->params[0];
	const struct chat_account *a;
	struct op op = {0};
	if (refused_open(s, "ACCOUNT"))
		return;
	int pw = strcasecmp(sub, "PASSWORD") == 0, drop = strcasecmp(sub, "DROP") == 0;
	if (!pw && !drop) {
		reply_fail(s, "ACCOUNT", "UNKNOWN_SUBCOMMAND", sub, "ACCOUNT PASSWORD <old> <new> or ACCOUNT DROP <password>");
		return;
	}
	if ((int)m->nparams < (pw ? 3 : 2)) {
		reply_num(s, 461, "ACCOUNT :Not enough parameters");
		return;
	}
	if (!(a = own_account(s)) || !password_right(s, a, m->params[1]))
		return;
	if (pw && !valid_password(m->params[2])) {
		reply_fail(s, "ACCOUNT", "WEAK_PASSWORD", a->name, "A password has 8 to 256 bytes");
		return;
	}
	op.kind = pw ? OP_PASSWORD : OP_UNREGISTER;
	op.author = xstrdup(a->name);
	op.ref = xstrdup(a->regid);
	op.body = pw ? scram_verifier_new(m->params[2]) : xstrdup("");
	int why = replica_submit(s->srv, s, "ACCOUNT", &op);
	if (why)
		reply_refused(s, "ACCOUNT", a->name, why);
}

/* ---- answers, once stored ---- */

void account_answer(struct server *srv, const struct op *op, struct session *s)
{
	char id[OP_MSGID_MAX];
	const struct chat_account *a = chat_account_find(srv->chat, op->author);
	struct line_tags t = LINE_TAGS_INIT;
	op_msgid(op, id, sizeof id);
	switch (op->kind) {
	case OP_REGISTER:
		if (a && strcmp(a->regid, id) == 0) {
			reply_line(s, &t, srv->name, "REGISTER SUCCESS %s :Account %s registered", a->name, a->name);
			account_login(s, a);
		} else {
			reply_fail(s, "REGISTER", "ACCOUNT_EXISTS", op->author,
				   "Someone registered that name first");
		}
		break;
	case OP_PASSWORD:
		if (a && strcmp(a->regid, op->ref) == 0 && strcmp(a->verifier, op->body) == 0)
			reply_line(s, &t, srv->name, "NOTE ACCOUNT PASSWORD_CHANGED %s :Password changed", a->name);
		else
			reply_fail(s, "ACCOUNT", "ACCOUNT_REQUIRED", op->author, "The account changed meanwhile");
		break;
	case OP_UNREGISTER:
		reply_line(s, &t, srv->name, "NOTE ACCOUNT DROPPED %s :Account %s removed", op->author, op->author);
		break;
	}
}

/* ---- OPER ---- */

/* OPER <name> <password>: the operator configured (--oper) may use the
 * operator verbs. Wrong names and passwords count as failed logins. */
void cmd_oper(struct session *s, struct irc_msg *m)
{
	const struct config *cfg = &s->srv->cfg;
	const char *name = m->params[0];
	if (!cfg->oper_name) {
		reply_num(s, 491, ":No operator is configured here");
		return;
	}
	if (!auth_allowed(s, name)) {
		reply_num(s, 464, ":Too many failed attempts; try again later");
		return;
	}
	if (strcmp(name, cfg->oper_name) != 0 || scram_check_password(cfg->oper_verifier, m->params[1]) != 1) {
		auth_failed(s, name);
		reply_num(s, 464, ":Password incorrect");
		return;
	}
	s->oper = 1;
	reply_num(s, 381, ":You are now an IRC operator");
	struct line_tags t = LINE_TAGS_INIT;
	char src[128];
	reply_line(s, &t, reply_source(s->nick, src, sizeof src), "MODE %s :+o", s->nick);
}

/* ---- AUTHENTICATE ---- */

static void sasl_end(struct session *s)
{
	sasl_free(s->sasl);
	s->sasl = NULL;
}

static void sasl_fail(struct session *s, const char *text)
{
	reply_num(s, 904, ":%s", text);
	sasl_end(s);
}

static void sasl_success(struct session *s, const struct chat_account *a)
{
	account_login(s, a);
	reply_num(s, 903, ":SASL authentication successful");
	sasl_end(s);
}

/* PLAIN: "authzid NUL authcid NUL password" (d[n] is a NUL). */
static void plain(struct session *s, const unsigned char *d, size_t n)
{
	const unsigned char *z1 = memchr(d, '\0', n);
	const unsigned char *z2 = z1 ? memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - d)) : NULL;
	if (!z2 || z2 == z1 + 1 || memchr(z2 + 1, '\0', n - (size_t)(z2 + 1 - d))) {
		sasl_fail(s, "SASL authentication failed: malformed PLAIN message");
		return;
	}
	const char *authz = (const char *)d, *authc = (const char *)z1 + 1, *pass = (const char *)z2 + 1;
	if (*authz && strcasecmp(authz, authc) != 0) {
		sasl_fail(s, "SASL authentication failed: you may only log in as yourself");
		return;
	}
	if (!auth_allowed(s, authc)) {
		sasl_fail(s, "SASL authentication failed: too many failed logins; try again later");
		return;
	}
	const struct chat_account *a = chat_account_find(s->srv->chat, authc);
	if (!a || scram_check_password(a->verifier, pass) != 1) {
		auth_failed(s, authc);
		sasl_fail(s, "SASL authentication failed: wrong account or password");
		return;
	}
	sasl_success(s, a);
}

/* Sends the server's SCRAM message as AUTHENTICATE data. */
static void send_data(struct session *s, const char *msg)
{
	struct line_tags t = LINE_TAGS_INIT;
	char *b = scram_b64((const unsigned char *)msg, strlen(msg));
	reply_line(s, &t, s->srv->name, "AUTHENTICATE %s", b); /* always < SASL_CHUNK here */
	free(b);
}

static void scram_step(struct session *s, const char *msg)
{
	struct sasl *x = s->sasl;
	const struct chat_account *a;
	if (x->step == STEP_FIRST) {
		const char *first;
		char nonce[SCRAM_NONCE_LEN + 1];
		if (scram_server_read_first(&x->scram, msg) < 0) {
			sasl_fail(s, "SASL authentication failed: malformed or unsupported SCRAM message");
			return;
		}
		if (!auth_allowed(s, x->scram.user)) {
			sasl_fail(s, "SASL authentication failed: too many failed logins; try again later");
			return;
		}
		a = chat_account_find(s->srv->chat, x->scram.user);
		scram_nonce(nonce);
		if (!a || scram_server_first(&x->scram, a->verifier, nonce, &first) < 0) {
			auth_failed(s, x->scram.user);
			sasl_fail(s, "SASL authentication failed: wrong account or password");
			return;
		}
		memcpy(x->regid, a->regid, sizeof x->regid);
		x->step = STEP_FINAL;
		send_data(s, first);
		return;
	}
	char *final = NULL;
	if (scram_server_final(&x->scram, msg, &final) < 0) {
		auth_failed(s, x->scram.user);
		sasl_fail(s, "SASL authentication failed: wrong account or password");
		return;
	}
	x->step = STEP_ACK;
	send_data(s, final);
	free(final);
}

/* A whole step's data (base64, "" for none) has arrived. */
static void sasl_data(struct session *s, const char *b64)
{
	struct sasl *x = s->sasl;
	if (x->mech == MECH_SCRAM && x->step == STEP_ACK) {
		const struct chat_account *a = chat_account_find(s->srv->chat, x->scram.user);
		if (*b64 || !a || strcmp(a->regid, x->regid) != 0)
			sasl_fail(s, "SASL authentication failed");
		else
			sasl_success(s, a);
		return;
	}
	unsigned char d[SASL_DATA_MAX];
	long n = *b64 ? scram_unb64(b64, d, sizeof d - 1) : 0;
	if (n < 0) {
		sasl_fail(s, "SASL authentication failed: the data is not base64");
		return;
	}
	d[n] = '\0';
	if (x->mech == MECH_PLAIN) {
		plain(s, d, (size_t)n);
	} else if (memchr(d, '\0', (size_t)n)) {
		sasl_fail(s, "SASL authentication failed: malformed SCRAM message");
	} else {
		scram_step(s, (const char *)d);
	}
}

/* Starts an exchange with mechanism mech. */
static void sasl_start(struct session *s, const char *mech)
{
	int is_plain = strcasecmp(mech, "PLAIN") == 0, is_scram = strcasecmp(mech, "SCRAM-SHA-256") == 0;
	struct line_tags t = LINE_TAGS_INIT;
	if (!is_plain && !is_scram) {
		reply_num(s, 908, "PLAIN,SCRAM-SHA-256 :are available SASL mechanisms");
		reply_num(s, 904, ":SASL authentication failed: unknown mechanism");
		return;
	}
	s->sasl = xcalloc(1, sizeof *s->sasl);
	s->sasl->mech = is_plain ? MECH_PLAIN : MECH_SCRAM;
	reply_line(s, &t, NULL, "AUTHENTICATE +");
}

void cmd_authenticate(struct session *s, struct irc_msg *m)
{
	const char *arg = m->params[0];
	if (refused_open(s, "AUTHENTICATE"))
		return;
	if (strcmp(arg, "*") == 0) {
		reply_num(s, 906, ":SASL authentication aborted");
		sasl_end(s);
		return;
	}
	if (s->account) {
		reply_num(s, 907, ":You have already authenticated using SASL");
		return;
	}
	if (!s->sasl) {
		sasl_start(s, arg);
		return;
	}
	size_t len = strlen(arg);
	if (len > SASL_CHUNK || s->sasl->data.len + len > SASL_DATA_MAX) {
		sasl_fail(s, "SASL message too long");
		return;
	}
	if (strcmp(arg, "+") != 0)
		buf_append(&s->sasl->data, arg, len);
	if (len == SASL_CHUNK)
		return; /* more follows (or "+") */
	char *data = xstrndup(s->sasl->data.data ? s->sasl->data.data : "", s->sasl->data.len);
	s->sasl->data.len = 0;
	sasl_data(s, data);
	free(data);
}
