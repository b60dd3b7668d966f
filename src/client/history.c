/*
 * history.c: reading the room's history with CHATHISTORY and merging it
 * into the room model in the server's order:
 *   - on joining, the lines of the window (LATEST * 25; LATEST * 20 for
 *     the timeline, when the posts its JOIN answer carries are not used:
 *     see session.c);
 *   - after a reconnect, the gap: AFTER msgid=<last line held>, page after
 *     page while pages come back full (an anchor the replica does not know
 *     gives an empty page: then the latest HISTORY_PAGE lines instead);
 *   - after a batch that merged lines in (netjoin, or a chathistory batch
 *     nobody asked for): the latest HISTORY_PAGE lines again, one such
 *     read at a time (merges meanwhile ask for one more after it);
 *   - for `h`: the latest page, then BEFORE the oldest line of each page
 *     until a page is empty, then the whole room is shown;
 *   - after we unfollow someone, in the timeline: its latest posts afresh
 *     (that user's posts leave it).
 * Lines are deduplicated by msgid (room.c), so pages may overlap freely.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

/* 1 if q is about the room on screen. */
static int for_current_room(const struct client *c, const struct request *q)
{
	return c->room && q->room && strcasecmp(c->room->name, q->room) == 0;
}

static void on_history(struct client *c, struct request *q, struct room_msg *lines, size_t n)
{
	if (!for_current_room(c, q))
		return;
	enum room_place where = ROOM_LATEST;
	if (q->mode == HISTORY_GAP)
		where = ROOM_AFTER;
	else if (q->mode == HISTORY_FULL && q->ref)
		where = ROOM_BEFORE;
	q->count = n;
	q->added += room_merge(c->room, lines, n, where, q->ref);
	for (size_t i = 0; c->room->conversation && i < n; i++)
		conversations_seen(c, c->room->name, lines[i].time_ms);
	if (n > 0)
		q->next_ref = xstrdup(lines[q->mode == HISTORY_FULL ? 0 : n - 1].msgid);
	client_dirty(c);
}

/* Fetches the next page of a chain (a gap or `h`), carrying its counts. */
static void fetch_next(struct client *c, const struct request *q, enum history_mode mode,
		       const char *anchor)
{
	struct request *next = history_fetch(c, mode, anchor, q->token);
	if (next) {
		next->added = q->added;
		next->page = q->page + 1;
	}
}

static void gap_done(struct client *c, struct request *q)
{
	if (q->count == HISTORY_PAGE && q->next_ref) {
		fetch_next(c, q, HISTORY_GAP, q->next_ref);
		return;
	}
	if (q->page == 0 && q->count == 0) { /* the anchor may be unknown there */
		fetch_next(c, q, HISTORY_REFRESH, NULL);
		return;
	}
	client_note(c, NOTE_INFO, "back in %s: %zu line%s you had not seen", c->room->name, q->added,
		    q->added == 1 ? "" : "s");
	c->room->ready = 1;
	client_dirty(c);
	client_unwait(c, q->token);
}

static void on_done(struct client *c, struct request *q)
{
	if (!for_current_room(c, q)) {
		client_unwait(c, q->token);
		return;
	}
	switch (q->mode) {
	case HISTORY_GAP:
		gap_done(c, q);
		return;
	case HISTORY_FULL:
		if (q->count > 0 && q->next_ref) {
			fetch_next(c, q, HISTORY_FULL, q->next_ref);
			return;
		}
		c->ui->history(c);
		break;
	case HISTORY_REFRESH:
		if (q->page > 0) /* the end of a gap whose anchor was unknown */
			client_note(c, NOTE_INFO, "back in %s", c->room->name);
		if (q->again)
			history_fetch(c, HISTORY_REFRESH, NULL, 0);
		break;
	case HISTORY_FIRST:
	default:
		break;
	}
	c->room->ready = 1;
	client_dirty(c);
	client_unwait(c, q->token);
}

struct request *history_fetch(struct client *c, enum history_mode mode, const char *anchor,
			      unsigned token)
{
	if (!c->room)
		return NULL;
	struct request *q = request_new(c, token);
	const char *room = c->room->name;
	q->room = xstrdup(room);
	q->ref = anchor ? xstrdup(anchor) : NULL;
	q->mode = (int)mode;
	q->on_history = on_history;
	q->on_done = on_done;
	if (mode == HISTORY_FIRST)
		request_send(c, q, NULL, "CHATHISTORY LATEST %s * %zu", room, c->room->window);
	else if (mode == HISTORY_GAP)
		request_send(c, q, NULL, "CHATHISTORY AFTER %s msgid=%s %d", room, anchor, HISTORY_PAGE);
	else if (mode == HISTORY_FULL && anchor)
		request_send(c, q, NULL, "CHATHISTORY BEFORE %s msgid=%s %d", room, anchor, HISTORY_PAGE);
	else
		request_send(c, q, NULL, "CHATHISTORY LATEST %s * %d", room, HISTORY_PAGE);
	return q;
}

/* The room's refresh in flight (not the end of a gap), or NULL. */
static struct request *refresh_in_flight(struct client *c)
{
	for (struct request *q = c->requests; q; q = q->next)
		if (q->mode == HISTORY_REFRESH && q->page == 0 && q->on_done == on_done && for_current_room(c, q))
			return q;
	return NULL;
}

void history_merged(struct client *c, const char *target)
{
	if (!c->room || !c->joined || (target && strcasecmp(target, c->room->name) != 0))
		return;
	/* Busy rooms merge often (every line placed before one already shown):
	 * one refresh at a time, and one more after it if merges came meanwhile. */
	struct request *q = refresh_in_flight(c);
	if (q)
		q->again = 1;
	else
		history_fetch(c, HISTORY_REFRESH, NULL, 0);
}

void history_reload(struct client *c)
{
	if (!c->room || !c->room->timeline || !c->joined)
		return;
	room_clear(c->room);
	history_fetch(c, HISTORY_FIRST, NULL, 0);
}
