/*
 * membership.h: which member of a CPG configuration is which replica, as
 * group_corosync learns it from the agreed message stream (the HELLO and
 * SKIP protocol; docs/DESIGN-NOTES.md "Replica identity on Corosync"). No
 * I/O: group_corosync.c feeds it configurations and the bodies of HELLO and
 * SKIP messages in agreed order, and sends the bodies it makes. Every
 * decision it takes depends only on what was delivered since the latest
 * configuration change, so every member takes it at the same point.
 *
 * Bodies (big-endian): HELLO: a count, then (nodeid, pid, replica id)
 * triples of the members its sender knows, itself included. SKIP: a count,
 * then (nodeid, pid) pairs of the members to go on without.
 */
#ifndef CHORUS_MEMBERSHIP_H
#define CHORUS_MEMBERSHIP_H

#include <stddef.h>
#include <stdint.h>

#include <corosync/cpg.h>

#include "group.h"

/* What the messages delivered since the latest change say of a member. */
enum mb_hearing {
	MB_UNHEARD,  /* no HELLO has named it yet */
	MB_HEARD,    /* a HELLO named it: its replica id is known */
	MB_SILENT,   /* a SKIP named it while unheard: the view goes on without it */
};

struct mb_member {
	uint32_t nodeid, pid;
	uint32_t id;       /* replica id, valid once known */
	int known;         /* we know its replica id (from any time) */
	enum mb_hearing hearing;
	int skipped;       /* silent in an earlier configuration, not heard since */
	int excluded;      /* another member claims its replica id too */
};

struct membership {
	uint32_t self_nodeid, self_pid, self_id;
	struct mb_member conf[CPG_MEMBERS_MAX];
	size_t n;
	int round;         /* the configuration waits for HELLOs (or SKIPs) */
	int isolated;      /* we are left out: a shared id, or silent */
};

/* Starts over for us (nodeid, pid) as replica self_id, before any
 * configuration: a round is open. */
void mb_init(struct membership *ms, uint32_t nodeid, uint32_t pid, uint32_t self_id);
/* A new configuration: keeps what is known of the members that stay (ids,
 * and whether they were skipped); only what is heard from now on counts.
 * Opens a round. */
void mb_configure(struct membership *ms, const struct cpg_address *members, size_t n);
/* The member (nodeid, pid) of the configuration, or NULL. */
struct mb_member *mb_find(struct membership *ms, uint32_t nodeid, uint32_t pid);
/* Writes our HELLO body to out (room for 4 + 12 * ms->n bytes); returns its
 * length. */
size_t mb_hello(const struct membership *ms, unsigned char *out);
/* Writes a SKIP body naming the unheard members other than us (those also
 * skipped before, if only_skipped) to out (room for 4 + 8 * ms->n bytes);
 * returns how many it names (0: nothing to send). */
size_t mb_skip(const struct membership *ms, int only_skipped, unsigned char *out);
/* A HELLO from member m as replica id. Returns 1 if a view is to be
 * reported now (the round is complete, or a silent member came back), 0 if
 * not, -1 if the body is malformed (logged). */
int mb_on_hello(struct membership *ms, struct mb_member *m, uint32_t id, const unsigned char *p, size_t len);
/* A SKIP from member m. Returns 1 if the round is complete now, 0 if not,
 * -1 if malformed or from a member not heard yet (logged). */
int mb_on_skip(struct membership *ms, struct mb_member *m, const unsigned char *p, size_t len);
/* The view now (closing the round): the heard members not left out, by
 * id; {self} if we are left out or silent. */
void mb_view(struct membership *ms, struct group_view *v);
/* 1 if DATA sent as replica id by member (nodeid, pid) is delivered in the
 * current view (one that left since was a member when CPG delivered it). */
int mb_accepts(struct membership *ms, uint32_t nodeid, uint32_t pid, uint32_t id);

#endif
