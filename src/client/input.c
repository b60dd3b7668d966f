/*
 * input.c: the user's input queue. Lines typed (or piped) wait here and run
 * one after another (commands.c): a command that waits for the replica
 * (connect, log in, join, send, like, history, view, ...) holds the queue
 * with client_wait until its answer is in, so the next command sees its
 * outcome; `q` and `c` while the client is reconnecting run at once
 * (commands_urgent). A line typed while a password is asked for is the
 * password, not a command.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

static void push(char ***q, size_t *n, size_t *cap, char *line)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*q = xrealloc(*q, *cap * sizeof **q);
	}
	(*q)[(*n)++] = line;
}

static char *pop(char **q, size_t *n)
{
	char *line = q[0];
	memmove(q, q + 1, --*n * sizeof *q);
	return line;
}

void client_input(struct client *c, const char *text)
{
	if (c->auth.asking != ASK_NONE && !c->quitting) { /* a password: taken as typed */
		char *secret = xstrndup(text, strcspn(text, "\r"));
		if (*secret)
			auth_take_input(c, secret);
		memset(secret, 0, strlen(secret));
		free(secret);
		client_dirty(c);
		return;
	}
	text += strspn(text, " \t");
	size_t len = strlen(text);
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r'))
		len--;
	if (!len || c->quitting)
		return;
	char *line = xstrndup(text, len);
	if (commands_urgent(c, line))
		push(&c->urgent, &c->nurgent, &c->capurgent, line);
	else
		push(&c->queue, &c->nqueue, &c->capqueue, line);
	client_pump(c); /* from the loop, never from inside the input reader */
}

void client_input_end(struct client *c)
{
	c->input_done = 1;
	client_pump(c);
}

void input_pump(struct client *c)
{
	while (c->nurgent && !c->quitting) {
		char *line = pop(c->urgent, &c->nurgent);
		commands_run(c, line);
		free(line);
	}
	while (!c->waiting && c->nqueue && !c->quitting) {
		char *line = pop(c->queue, &c->nqueue);
		commands_run(c, line);
		free(line);
	}
	if (c->input_done && !c->waiting && !c->nqueue && !c->quitting)
		client_quit(c);
}

unsigned client_wait(struct client *c, const char *what, int timeout)
{
	if (++c->next_token == 0)
		c->next_token = 1;
	c->waiting = c->next_token;
	free(c->wait_what);
	c->wait_what = xstrdup(what);
	c->wait_deadline = timeout ? wall_ms() + WAIT_TIMEOUT_MS : 0;
	client_dirty(c);
	return c->waiting;
}

void client_unwait(struct client *c, unsigned token)
{
	if (!token || token != c->waiting)
		return;
	c->waiting = 0;
	free(c->wait_what);
	c->wait_what = NULL;
	client_dirty(c);
	client_pump(c);
}

void input_tick(struct client *c)
{
	if (c->waiting && c->wait_deadline && wall_ms() > c->wait_deadline) {
		client_note(c, NOTE_ERROR, "%s: no answer from the replica in %d s", c->wait_what,
			    WAIT_TIMEOUT_MS / 1000);
		client_unwait(c, c->waiting);
	}
}

void input_free(struct client *c)
{
	for (size_t i = 0; i < c->nqueue; i++)
		free(c->queue[i]);
	free(c->queue);
	for (size_t i = 0; i < c->nurgent; i++)
		free(c->urgent[i]);
	free(c->urgent);
	free(c->wait_what);
}
