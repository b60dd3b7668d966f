/*
 * requests.c: matching what the server sends to what we asked. Every
 * command that needs an answer goes out with a `label` tag
 * (labeled-response); its answer comes back as one labeled line, an ACK,
 * or a labeled-response batch whose lines (and nested batches) belong to
 * it. Batches of type chathistory and netjoin are held until they end:
 * their room lines are a history segment, merged at once (see history.c),
 * while their other lines (JOINs of a netjoin) are processed as they come.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

struct batch {
	char *ref;
	char *type;
	char *target;            /* a chathistory batch's target; NULL for others */
	char label[16];          /* the request it answers, "" if none */
	int owns_label;          /* its BATCH + line carried the label: its end ends the answer */
	int collect;             /* chathistory or netjoin: hold the room lines */
	struct room_msg *msgs;   /* strings owned */
	size_t n, cap;
	struct batch *next;
};

struct request *request_new(struct client *c, unsigned token)
{
	struct request *q = xcalloc(1, sizeof *q);
	snprintf(q->label, sizeof q->label, "c%u", ++c->next_label);
	q->token = token;
	q->next = c->requests;
	c->requests = q;
	return q;
}

void request_send(struct client *c, struct request *q, const char *tags, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	buf_printf(&b, "@label=%s%s%s ", q->label, tags ? ";" : "", tags ? tags : "");
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	session_send(c, "%s", b.data);
	buf_free(&b);
}

int request_is_error(const struct irc_msg *m)
{
	return strcasecmp(m->command, "FAIL") == 0 || (strlen(m->command) == 3 && atoi(m->command) >= 400);
}

void request_keep_line(struct request *q, const char *text)
{
	q->lines = xrealloc(q->lines, (q->nlines + 1) * sizeof *q->lines);
	q->lines[q->nlines++] = xstrdup(text);
}

static void request_free(struct request *q)
{
	for (size_t i = 0; i < q->nlines; i++)
		free(q->lines[i]);
	free(q->lines);
	free(q->room);
	free(q->ref);
	free(q->next_ref);
	free(q->what);
	free(q->who);
	free(q);
}

static struct request *request_find(struct client *c, const char *label)
{
	for (struct request *q = c->requests; q; q = q->next)
		if (strcmp(q->label, label) == 0)
			return q;
	return NULL;
}

/* The answer to q is complete: unlink it, run its on_done, free it. */
static void request_finish(struct client *c, struct request *q)
{
	struct request **pp = &c->requests;
	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = q->next;
	if (q->on_done)
		q->on_done(c, q);
	request_free(q);
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free((char *)b->msgs[i].msgid);
		free((char *)b->msgs[i].author);
		free((char *)b->msgs[i].text);
	}
	free(b->msgs);
	free(b->ref);
	free(b->type);
	free(b->target);
	free(b);
}

void requests_drop(struct client *c)
{
	while (c->requests) {
		struct request *q = c->requests;
		c->requests = q->next;
		request_free(q);
	}
	while (c->batches) {
		struct batch *b = c->batches;
		c->batches = b->next;
		batch_free(b);
	}
}

static struct batch *batch_find(struct client *c, const char *ref)
{
	for (struct batch *b = c->batches; ref && b; b = b->next)
		if (strcmp(b->ref, ref) == 0)
			return b;
	return NULL;
}

static void batch_start(struct client *c, struct irc_msg *m)
{
	struct batch *b = xcalloc(1, sizeof *b);
	struct batch *parent = batch_find(c, irc_tag_get(m, "batch"));
	const char *label = irc_tag_get(m, "label");
	b->ref = xstrdup(m->params[0] + 1);
	b->type = xstrdup(m->nparams > 1 ? m->params[1] : "");
	b->collect = strcasecmp(b->type, "chathistory") == 0 || strcasecmp(b->type, "netjoin") == 0;
	if (strcasecmp(b->type, "chathistory") == 0 && m->nparams > 2)
		b->target = xstrdup(m->params[2]); /* a netjoin's parameters are server names */
	if (label) {
		snprintf(b->label, sizeof b->label, "%s", label);
		b->owns_label = 1;
	} else if (parent) {
		snprintf(b->label, sizeof b->label, "%s", parent->label);
	}
	b->next = c->batches;
	c->batches = b;
}

/* A batch ended: hand its history to whoever asked, or, unasked, have the
 * room re-read; then end the request it answered, if its start was labeled. */
static void batch_end(struct client *c, const char *ref)
{
	struct batch **pp = &c->batches, *b;
	while (*pp && strcmp((*pp)->ref, ref) != 0)
		pp = &(*pp)->next;
	if (!(b = *pp))
		return;
	*pp = b->next;
	struct request *q = b->label[0] ? request_find(c, b->label) : NULL;
	if (b->collect && strcasecmp(b->type, "chathistory") == 0 && q && q->on_history)
		q->on_history(c, q, b->msgs, b->n);
	else if (b->collect)
		history_merged(c, b->target);
	if (q && b->owns_label)
		request_finish(c, q);
	batch_free(b);
}

static void batch_line(struct client *c, struct irc_msg *m)
{
	if (m->nparams < 1 || strlen(m->params[0]) < 2)
		return;
	if (m->params[0][0] == '+')
		batch_start(c, m);
	else if (m->params[0][0] == '-')
		batch_end(c, m->params[0] + 1);
}

static void batch_keep(struct batch *b, const struct room_msg *m)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 32;
		b->msgs = xrealloc(b->msgs, b->cap * sizeof *b->msgs);
	}
	struct room_msg *k = &b->msgs[b->n++];
	*k = *m;
	k->msgid = xstrdup(m->msgid);
	k->author = xstrdup(m->author);
	k->text = xstrdup(m->text);
}

void requests_line(struct client *c, struct irc_msg *m)
{
	if (strcasecmp(m->command, "BATCH") == 0) {
		batch_line(c, m);
		return;
	}
	struct batch *b = batch_find(c, irc_tag_get(m, "batch"));
	struct room_msg rm;
	char nick[64];
	const char *own = irc_tag_get(m, "label");
	if (b && b->collect && incoming_room_msg(m, &rm, nick, sizeof nick) == 0) {
		batch_keep(b, &rm);
		/* Our own line echoed in a merge batch (the canonical order put
		 * it before the last line): it is also the answer to our send. */
		struct request *q = own ? request_find(c, own) : NULL;
		if (q)
			request_finish(c, q);
		return;
	}
	char label[16] = "";
	snprintf(label, sizeof label, "%s", own ? own : b ? b->label : "");
	struct request *q = label[0] ? request_find(c, label) : NULL;
	if (!(q && q->on_line && q->on_line(c, q, m)))
		incoming_line(c, m);
	/* A labeled line outside a batch is the whole answer (ACK included).
	 * The request may be gone if the line dropped the link. */
	if (own && (q = request_find(c, label)) != NULL)
		request_finish(c, q);
}
