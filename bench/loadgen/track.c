/*
 * track.c: sequence and latency bookkeeping of the fan-out benchmark (see
 * track.h for the message format and the layout of clients in rooms).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "track.h"

void track_init(struct tracker *t, uint32_t nclients, uint32_t nrooms, uint32_t ntargets)
{
	memset(t, 0, sizeof *t);
	t->nclients = nclients;
	t->nrooms = nrooms;
	t->ntargets = ntargets;
	t->cross_only = ntargets > 1;
	t->window_end_us = UINT64_MAX;
	t->clients = xcalloc(nclients, sizeof *t->clients);
	t->room_size = xcalloc(nrooms, sizeof *t->room_size);
	for (uint32_t i = 0; i < nclients; i++)
		t->room_size[i % nrooms]++;
	for (uint32_t i = 0; i < nclients; i++) {
		struct track_client *c = &t->clients[i];
		c->room = i % nrooms;
		c->slot = i / nrooms;
		c->target = c->slot % ntargets;
		c->next = xcalloc(t->room_size[c->room], sizeof *c->next);
	}
	hist_init(&t->latency);
}

void track_free(struct tracker *t)
{
	for (uint32_t i = 0; i < t->nclients; i++)
		free(t->clients[i].next);
	free(t->clients);
	free(t->room_size);
	memset(t, 0, sizeof *t);
}

uint32_t track_member(const struct tracker *t, uint32_t room, uint32_t slot)
{
	uint64_t i = (uint64_t)slot * t->nrooms + room;
	return room < t->nrooms && i < t->nclients ? (uint32_t)i : UINT32_MAX;
}

int track_next_body(struct tracker *t, uint32_t sender, uint64_t sent_us, size_t size,
		    char *out, size_t cap)
{
	struct track_client *c = &t->clients[sender];
	int n = snprintf(out, cap, TRACK_TAG " %u %llu %llu", sender, (unsigned long long)c->sent,
			 (unsigned long long)sent_us);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	if (size > (size_t)n) {
		if (size >= cap)
			return -1;
		out[n] = ' ';
		memset(out + n + 1, 'x', size - (size_t)n - 1);
		n = (int)size;
		out[n] = '\0';
	}
	c->sent++;
	if (sent_us >= t->window_start_us && sent_us < t->window_end_us)
		t->c.sent_window++;
	return n;
}

/* Parses a decimal number at *p followed by a space or the end; advances *p
 * past it. Returns 0, or -1 if there is none or it overflows. */
static int parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != ' ' && *s != '\0')
		return -1;
	if (*s == ' ')
		s++;
	*p = s;
	*out = v;
	return 0;
}

/* Splits a benchmark body; returns 1 if it is one, 0 if not, -1 if it
 * claims to be but does not parse. */
static int parse_body(const char *text, uint64_t *sender, uint64_t *seq, uint64_t *sent_us)
{
	size_t tag = sizeof TRACK_TAG - 1;
	if (strncmp(text, TRACK_TAG, tag) != 0 || text[tag] != ' ')
		return 0;
	const char *p = text + tag + 1;
	if (parse_u64(&p, sender) < 0 || parse_u64(&p, seq) < 0 || parse_u64(&p, sent_us) < 0)
		return -1;
	return 1;
}

/* Records the latency of one in-order delivery when it counts. */
static void record(struct tracker *t, const struct track_client *from, const struct track_client *to,
		   uint64_t sent_us, uint64_t now_us)
{
	if (now_us >= t->window_start_us && now_us < t->window_end_us)
		t->c.delivered_window++;
	if (sent_us < t->window_start_us || sent_us >= t->window_end_us)
		return;
	if (t->cross_only && from->target == to->target)
		return;
	hist_add(&t->latency, now_us > sent_us ? now_us - sent_us : 0);
}

int track_receive(struct tracker *t, uint32_t receiver, const struct irc_msg *m, uint64_t now_us,
		  uint32_t *sender_out)
{
	uint64_t sender, seq, sent_us;
	if (strcasecmp(m->command, "PRIVMSG") != 0 || m->nparams < 2)
		return TRACK_NOT_BENCH;
	int rc = parse_body(m->params[1], &sender, &seq, &sent_us);
	if (rc == 0)
		return TRACK_NOT_BENCH;
	if (rc < 0) {
		t->c.malformed++;
		return TRACK_MALFORMED;
	}
	struct track_client *to = &t->clients[receiver];
	if (sender >= t->nclients || sender == receiver || t->clients[sender].room != to->room) {
		t->c.misrouted++;
		return TRACK_MISROUTED;
	}
	struct track_client *from = &t->clients[sender];
	uint64_t *next = &to->next[from->slot];
	if (seq < *next || seq >= from->sent) {
		/* Seen already, reordered, or never sent: a server invented it. */
		t->c.dups++;
		return TRACK_DUP;
	}
	rc = TRACK_OK;
	if (seq > *next) {
		t->c.lost += seq - *next;
		rc = TRACK_GAP;
	}
	*next = seq + 1;
	if (sender_out)
		*sender_out = (uint32_t)sender;
	t->c.delivered++;
	from->delivered_mine++;
	record(t, from, to, sent_us, now_us);
	return rc;
}

uint64_t track_missing(const struct tracker *t)
{
	uint64_t missing = 0;
	for (uint32_t r = 0; r < t->nclients; r++) {
		const struct track_client *to = &t->clients[r];
		for (uint32_t slot = 0; slot < t->room_size[to->room]; slot++) {
			uint32_t s = track_member(t, to->room, slot);
			if (s != r && t->clients[s].sent > to->next[slot])
				missing += t->clients[s].sent - to->next[slot];
		}
	}
	return missing;
}

uint64_t track_in_flight(const struct tracker *t, uint32_t sender)
{
	const struct track_client *c = &t->clients[sender];
	uint64_t others = t->room_size[c->room] - 1;
	if (others == 0)
		return 0;
	uint64_t expected = c->sent * others;
	uint64_t pending = expected > c->delivered_mine ? expected - c->delivered_mine : 0;
	return (pending + others - 1) / others;
}
