/*
 * room.h: the terminal client's model of the room on screen. It holds the
 * room's lines in the order the server gives them (each msgid once), their
 * like counts and whether this user likes them, the participants, and the
 * window of the last lines that the screen numbers 1..N (what `l <n>` and
 * `r <n>` refer to). The timeline (&timeline) is held the same way: its
 * lines are the posts of the users one follows, shown as posts. Pure: no
 * I/O and no clock (a post's time is shown in the local time zone, TZ), so
 * the unit tests drive it directly.
 */
#ifndef CHORUS_CLIENT_ROOM_H
#define CHORUS_CLIENT_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "common/buf.h"

#define ROOM_WINDOW 25     /* lines on screen, numbered 1..ROOM_WINDOW */
#define ROOM_TIMELINE "&timeline"
#define TIMELINE_WINDOW 20 /* posts on the timeline's screen: the latest 20 */

/* Whether this user likes a line. UNKNOWN until an echo of our own like or
 * unlike, or the server's FAIL ALREADY_LIKED / NOT_LIKED, tells. */
enum room_mine { MINE_UNKNOWN = 0, MINE_LIKED, MINE_NOT_LIKED };

struct room_line {
	char *msgid;
	char *author;
	char *text;
	int64_t time_ms;      /* the server-time tag; display only */
	int likes;
	enum room_mine mine;
	UT_hash_handle hh;    /* in room.by_msgid */
};

/* A line as read from the wire (nothing owned): input to the room. likes
 * is -1 when the line carried no chorus/likes tag. */
struct room_msg {
	const char *msgid;
	const char *author;
	const char *text;
	int64_t time_ms;
	int likes;
};

struct room {
	char *name;
	struct room_line **lines;     /* canonical order, oldest first */
	size_t n, cap;
	struct room_line *by_msgid;   /* every line, by msgid */
	char **people;                /* participants, sorted case-insensitively */
	size_t npeople;
	int names_open;               /* inside a NAMES reply: the next 366 closes it */
	char *shown[ROOM_WINDOW];     /* msgids of the window as last drawn, 1..nshown */
	size_t nshown;
	size_t window;                /* lines on screen: ROOM_WINDOW, or TIMELINE_WINDOW */
	int timeline;                 /* this is &timeline: its lines are posts */
	int conversation;             /* a direct conversation: name is the other person */
	int ready;                    /* the first history arrived: worth drawing */
};

/* A room, the timeline if name is ROOM_TIMELINE (any case), or the direct
 * conversation with name if it is no room name ('#' or '&'). */
struct room *room_new(const char *name);
void room_free(struct room *r);
/* Drops every line (the room is then as new: not ready); keeps the name and
 * the participants. */
void room_clear(struct room *r);

/* Adds a live line at the end. Returns 1, or 0 if its msgid is known (the
 * room is then unchanged). */
int room_append(struct room *r, const struct room_msg *m);

/* Where a segment of history sits in the room. */
enum room_place {
	ROOM_LATEST, /* the newest lines (CHATHISTORY LATEST) */
	ROOM_AFTER,  /* the lines right after anchor (CHATHISTORY AFTER) */
	ROOM_BEFORE, /* the lines right before anchor (CHATHISTORY BEFORE) */
};

/*
 * Merges seg[0..n), a run of lines in the server's canonical order, into
 * the room. The segment is the truth for the order of its own lines: each
 * goes where the segment puts it (a line already held moves there, keeping
 * whether we like it, and takes the segment's like count). Where the
 * segment goes:
 *   LATEST: at the end, after every held line it does not list (those are
 *     older than it: the newest lines the server had when it answered are
 *     all in it, and lines that came after its answer come after it);
 *   AFTER: right after anchor (at the end if anchor is not held);
 *   BEFORE: right before anchor (at the start if anchor is not held).
 * For AFTER and BEFORE, a held line after that place that the segment does
 * not list stays right after the segment line it followed, or, following
 * none, goes after the segment (it is newer than a full page). Returns how
 * many lines were new to the room.
 */
size_t room_merge(struct room *r, const struct room_msg *seg, size_t n, enum room_place where,
		  const char *anchor);

/* The line with msgid, or NULL. */
struct room_line *room_find(const struct room *r, const char *msgid);
/* Sets a line's like count. Returns 1 if it changed (the screen must redraw). */
int room_set_likes(struct room *r, const char *msgid, int likes);
/* Records whether we like a line (unknown lines are ignored). */
void room_set_mine(struct room *r, const char *msgid, enum room_mine mine);
/* Forgets every "we like it" (the user changed identity). */
void room_forget_mine(struct room *r);

/* Records the window, the last r->window lines, as drawn now: `l <n>`
 * then means its n-th line. Returns how many lines it has; *first is the
 * index in r->lines of line 1. */
size_t room_show(struct room *r, size_t *first);
/* The n-th line (1-based) of the window as last drawn, or NULL. */
struct room_line *room_shown(const struct room *r, size_t n);

enum room_like_check {
	LIKE_OK = 0,
	LIKE_NOT_SHOWN,   /* no line n on screen */
	LIKE_OWN_LINE,    /* me wrote it */
	LIKE_ALREADY,     /* like: we like it already */
	LIKE_NOT_LIKED,   /* unlike: we do not like it (or nobody does) */
};

/* Whether me may like (on) or unlike (!on) line n of the window; sets *line
 * to it when it is on screen. */
enum room_like_check room_like_check(const struct room *r, size_t n, const char *me, int on,
				     struct room_line **line);

/* Participants. Names compare with ASCII casemapping, as the server does. */
void room_person_add(struct room *r, const char *nick);
void room_person_remove(struct room *r, const char *nick);
void room_person_rename(struct room *r, const char *from, const char *to);
int room_person_has(const struct room *r, const char *nick);
/* One 353 line's names (space separated, mode prefixes allowed): the first
 * of a reply replaces the list, the next ones add to it. */
void room_names_reply(struct room *r, const char *names);
/* The 366 that ends a NAMES reply. */
void room_names_end(struct room *r);

/* Appends "N. author: text" to b, with control characters shown as '?'
 * (so a line is always one line and its fields stay parseable). */
void room_line_format(struct buf *b, size_t n, const struct room_line *l);
/* Appends a post of the timeline, "user (HH:MM) >> text": HH:MM is its
 * server time in the local time zone, "--:--" when it had none; control
 * characters are shown as '?'. */
void room_post_format(struct buf *b, const struct room_line *l);

#endif
