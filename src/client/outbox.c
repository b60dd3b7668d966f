/*
 * outbox.c: exactly-once sends. Every line the user sends (`a`, `m`) gets a
 * client-made id (the +chorus/cid tag) and stays here until the replica
 * answers it. When the replica goes away first, the line is not lost: once
 * the client is back (logged in, and in its room), every waiting line is sent
 * again with its id, in order. A replica that already has a line with that
 * id (the first send was stored before the replica died) answers with that
 * line's msgid, so the line shows once (docs/CLIENT.md).
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

struct outbox_line {
	char cid[OUTBOX_ID_LEN + 1];
	char *target, *text;
	struct outbox_line *next;
};

/* Takes the line with id cid out of the outbox (answered). */
static void take(struct client *c, const char *cid)
{
	for (struct outbox_line **pp = &c->outbox; *pp; pp = &(*pp)->next) {
		struct outbox_line *l = *pp;
		if (strcmp(l->cid, cid) != 0)
			continue;
		*pp = l->next;
		free(l->target);
		free(l->text);
		free(l);
		c->noutbox--;
		client_dirty(c);
		return;
	}
}

/* A line of the answer: a refusal is remembered (incoming.c shows it). A
 * majority-mode refusal keeps the line for another replica. */
static int answer_line(struct client *c, struct request *q, struct irc_msg *m)
{
	if (request_is_error(m)) {
		q->failed = 1;
		if (strcasecmp(m->command, "FAIL") == 0 && m->nparams >= 2 &&
		    strcmp(m->params[1], "MAJORITY_REQUIRED") == 0) {
			q->mode = 1;
			session_majority_refused(c, msg_text(m));
		}
	}
	return 0;
}

/* The answer is in: the line was stored (or refused for good). */
static void answer_done(struct client *c, struct request *q)
{
	if (!q->failed || !q->mode)
		take(c, q->ref);
	client_unwait(c, q->token);
}

static void send_line(struct client *c, const struct outbox_line *l, unsigned token)
{
	char tags[sizeof "+chorus/cid=" + OUTBOX_ID_LEN];
	struct request *q = request_new(c, token);
	q->ref = xstrdup(l->cid);
	q->on_line = answer_line;
	q->on_done = answer_done;
	snprintf(tags, sizeof tags, "+chorus/cid=%s", l->cid);
	request_send(c, q, tags, "PRIVMSG %s :%s", l->target, l->text);
}

void outbox_send(struct client *c, const char *target, const char *text, unsigned token)
{
	unsigned char id[OUTBOX_ID_LEN / 2];
	struct outbox_line *l = xcalloc(1, sizeof *l), **pp = &c->outbox;
	if (RAND_bytes(id, sizeof id) != 1) {
		fprintf(stderr, "chorus: no random bytes for a line's id\n");
		abort();
	}
	for (size_t i = 0; i < sizeof id; i++)
		snprintf(l->cid + 2 * i, 3, "%02x", id[i]);
	l->target = xstrdup(target);
	l->text = xstrdup(text);
	while (*pp)
		pp = &(*pp)->next;
	*pp = l;
	c->noutbox++;
	client_dirty(c);
	send_line(c, l, token);
}

void outbox_resend(struct client *c)
{
	if (c->noutbox)
		client_note(c, NOTE_INFO, "sending %zu waiting line(s) again", c->noutbox);
	for (const struct outbox_line *l = c->outbox; l; l = l->next)
		send_line(c, l, 0);
}

void outbox_free(struct client *c)
{
	while (c->outbox)
		take(c, c->outbox->cid);
}
