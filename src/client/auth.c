/*
 * auth.c: logging in to an account from the client. The password comes from
 * --password-file, or is asked for (not shown) when the replica answers that
 * the name is registered (433); the client then proves it with SASL
 * SCRAM-SHA-256 (the password never leaves the client) before NICK completes
 * the registration. `reg` registers the name in use. The password is kept
 * for the logins after a failover.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

/* Forgets the exchange (not the password). */
static void exchange_end(struct client *c)
{
	scram_client_clear(&c->auth.scram);
	c->auth.step = AUTH_IDLE;
}

/* Starts the SASL exchange for c->nick with c->auth.password. */
static void start(struct client *c)
{
	c->auth.step = AUTH_STARTED;
	session_send(c, "AUTHENTICATE SCRAM-SHA-256");
}

int auth_login(struct client *c)
{
	if (!c->auth.password)
		return 0;
	c->auth.user_sent = 0;
	start(c);
	return 1;
}

void auth_name_registered(struct client *c)
{
	if (c->auth.password) { /* tried already, or the file's is wrong */
		session_login_refused(c, "the name is registered and the password was refused");
		return;
	}
	c->auth.asking = ASK_LOGIN;
	c->auth.user_sent = 1;
	c->ui->secret(c, 1);
	client_note(c, NOTE_INFO, "%s is a registered account: type its password (it is not shown)", c->nick);
}

void auth_register(struct client *c, const char *password)
{
	if (!password) {
		c->auth.asking = ASK_REGISTER;
		c->ui->secret(c, 1);
		client_note(c, NOTE_INFO, "a password for %s (8 characters or more; it is not shown):", c->nick);
		return;
	}
	free(c->auth.pending);
	c->auth.pending = xstrdup(password);
	session_send(c, "REGISTER * * :%s", password);
}

int auth_take_input(struct client *c, const char *line)
{
	enum ask asking = c->auth.asking;
	if (asking == ASK_NONE)
		return 0;
	c->auth.asking = ASK_NONE;
	c->ui->secret(c, 0);
	if (asking == ASK_REGISTER) {
		auth_register(c, line);
		return 1;
	}
	free(c->auth.password);
	c->auth.password = xstrdup(line);
	start(c);
	return 1;
}

/* The SASL data the replica sent (base64), at step: answers the next one. */
static void on_data(struct client *c, const char *b64)
{
	char nonce[SCRAM_NONCE_LEN + 1];
	unsigned char d[1024];
	char *out = NULL;
	long n = strcmp(b64, "+") == 0 ? 0 : scram_unb64(b64, d, sizeof d - 1);
	if (n < 0) {
		session_send(c, "AUTHENTICATE *");
		return;
	}
	d[n] = '\0';
	switch (c->auth.step) {
	case AUTH_STARTED:
		scram_nonce(nonce);
		out = scram_client_first(&c->auth.scram, c->nick, c->auth.password, nonce);
		c->auth.step = AUTH_FIRST_SENT;
		break;
	case AUTH_FIRST_SENT:
		out = scram_client_final(&c->auth.scram, (const char *)d);
		c->auth.step = AUTH_FINAL_SENT;
		break;
	case AUTH_FINAL_SENT:
		if (!scram_client_verify(&c->auth.scram, (const char *)d)) {
			client_note(c, NOTE_ERROR, "the replica could not prove it holds the account: login stopped");
			session_send(c, "AUTHENTICATE *");
			return;
		}
		session_send(c, "AUTHENTICATE +");
		c->auth.step = AUTH_ACK;
		return;
	default:
		return;
	}
	if (!out) {
		session_send(c, "AUTHENTICATE *");
		return;
	}
	char *enc = scram_b64((const unsigned char *)out, strlen(out));
	session_send(c, "AUTHENTICATE %s", enc);
	free(enc);
	free(out);
}

void auth_line(struct client *c, struct irc_msg *m)
{
	if (strcasecmp(m->command, "AUTHENTICATE") == 0 && m->nparams >= 1) {
		on_data(c, m->params[0]);
		return;
	}
	if (strcasecmp(m->command, "FAIL") == 0 && m->nparams >= 1 && strcasecmp(m->params[0], "REGISTER") == 0) {
		free(c->auth.pending);
		c->auth.pending = NULL;
		return;
	}
	if (strcasecmp(m->command, "REGISTER") == 0 && m->nparams >= 2 && strcasecmp(m->params[0], "SUCCESS") == 0) {
		free(c->auth.password);
		c->auth.password = c->auth.pending; /* for the logins after a failover */
		c->auth.pending = NULL;
		client_note(c, NOTE_INFO, "registered %s: it is yours, with that password", m->params[1]);
		return;
	}
	int num = atoi(m->command);
	if (num == 903) { /* logged in: now NICK and USER complete the registration */
		exchange_end(c);
		client_note(c, NOTE_INFO, "password accepted");
		session_send(c, "NICK %s", c->nick);
		if (!c->auth.user_sent)
			session_send(c, "USER %s 0 * :%s", c->nick, c->nick);
	} else if (num == 904 || num == 905 || num == 906) {
		exchange_end(c);
		free(c->auth.password);
		c->auth.password = NULL;
		session_login_refused(c, m->nparams ? m->params[m->nparams - 1] : "login failed");
	}
}

void auth_free(struct client *c)
{
	exchange_end(c);
	free(c->auth.password);
	free(c->auth.pending);
	c->auth.password = c->auth.pending = NULL;
}
