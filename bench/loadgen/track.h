/*
 * track.h: the load generator's bookkeeping of the fan-out benchmark, kept
 * apart from all I/O so the unit tests can feed it synthetic streams.
 *
 * The layout: client i is in room (i % nrooms) at slot (i / nrooms) of that
 * room, and is connected to target (slot % ntargets), so every room has
 * members on every target (replica) when there are enough of them.
 *
 * Every benchmark message is a PRIVMSG whose text is
 *     "cb <sender> <seq> <sent_us>" [" " padding]
 * where seq counts the sender's messages from 0 and sent_us is the
 * generator's monotonic clock when the message was due. Each receiver
 * expects, from each other member of its room, seq 0, 1, 2, ... in order
 * (one sender's messages to one room are delivered in order by every IRC
 * server and by chorus's agreed order). A later seq means the ones between
 * were lost; an earlier one is a duplicate or a reordering. Whatever was
 * sent but never arrived by the end is lost too. Any of these makes the run
 * an error, never a figure.
 */
#ifndef CHORUS_BENCH_TRACK_H
#define CHORUS_BENCH_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "proto/irc.h"

#define TRACK_TAG "cb" /* first word of every benchmark message */

enum track_result {
	TRACK_NOT_BENCH = 0,   /* not a benchmark message: ignored */
	TRACK_OK = 1,          /* the next message expected from its sender */
	TRACK_GAP = -1,        /* later than expected: those between are lost */
	TRACK_DUP = -2,        /* seen before, or earlier than one seen */
	TRACK_MISROUTED = -3,  /* from outside the receiver's room, or its own */
	TRACK_MALFORMED = -4,  /* starts with TRACK_TAG but does not parse */
};

struct track_client {
	uint32_t room, slot, target;
	uint64_t sent;           /* messages sent so far = the next seq */
	uint64_t delivered_mine; /* deliveries of this client's messages to others */
	uint64_t *next;          /* per slot of its room: next seq expected from that member */
};

struct track_counts {
	uint64_t delivered;        /* benchmark messages received in order */
	uint64_t delivered_window; /* ... of which received inside the window */
	uint64_t sent_window;      /* messages due inside the window */
	uint64_t lost;             /* skipped over by a gap */
	uint64_t dups;
	uint64_t misrouted;
	uint64_t malformed;
};

struct tracker {
	uint32_t nclients, nrooms, ntargets;
	struct track_client *clients;
	uint32_t *room_size;
	int cross_only;              /* latency only where receiver and sender use different targets */
	uint64_t window_start_us;    /* the measured window [start, end) */
	uint64_t window_end_us;
	struct hist latency;         /* µs, of messages due inside the window */
	struct track_counts c;
};

/* Sets up the layout above for nclients over nrooms and ntargets (all >= 1,
 * nrooms <= nclients). The window starts open-ended: [0, UINT64_MAX). */
void track_init(struct tracker *t, uint32_t nclients, uint32_t nrooms, uint32_t ntargets);
void track_free(struct tracker *t);
/* The client at slot of room, or UINT32_MAX if the room has no such slot. */
uint32_t track_member(const struct tracker *t, uint32_t room, uint32_t slot);
/*
 * Writes into out (cap bytes) the text of sender's next message, due at
 * sent_us, padded with 'x' to size bytes when size is larger, and counts it
 * as sent. Returns its length, or -1 if it does not fit (nothing counted).
 */
int track_next_body(struct tracker *t, uint32_t sender, uint64_t sent_us, size_t size,
		    char *out, size_t cap);
/*
 * Accounts one parsed line m received by client receiver at now_us: a
 * benchmark PRIVMSG is checked against the sequence expected from its sender
 * and its latency recorded (when due inside the window). Returns an enum
 * track_result; the counters say what happened. On TRACK_OK and TRACK_GAP,
 * *sender (if not NULL) is set to the message's sender.
 */
int track_receive(struct tracker *t, uint32_t receiver, const struct irc_msg *m, uint64_t now_us,
		  uint32_t *sender);
/* Deliveries expected by now (every member but the sender, for every
 * message sent) that have not arrived and were not already counted lost. */
uint64_t track_missing(const struct tracker *t);
/* Messages of sender not yet delivered to every other member of its room
 * (by count of deliveries): what it has "in flight". */
uint64_t track_in_flight(const struct tracker *t, uint32_t sender);

#endif
