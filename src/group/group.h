/*
 * group.h: the replica group: membership and agreed-order multicast.
 *
 * Implementations: group_solo (one standalone replica: delivers its own
 * multicasts in order, on the next loop turn) and, for a cluster,
 * group_corosync (libcpg). The tests add a simulated group. Every member of a view delivers
 * the same messages in the same order (extended virtual synchrony).
 */
#ifndef CHORUS_GROUP_H
#define CHORUS_GROUP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GROUP_MAX_MEMBERS 32

/* The longest message multicast accepts. Implementations may refuse longer
 * ones with a negative error (group_corosync does: -EMSGSIZE); the upper layer
 * keeps its messages, sync batches included, below it. 60 KiB stays under
 * libcpg's largest unfragmented message on every build (1 MiB - 1 KiB by
 * default, 64 KiB - 1 KiB on small-memory builds; libcpg's own fragmenting
 * path blocks the caller and is not used), and keeps one message from holding
 * the totem ring for long (about 44 frames of ~1.4 KB). */
#define GROUP_MSG_MAX (60 * 1024)

struct group_view {
	uint64_t id;                          /* increases with every view change */
	size_t n;
	uint32_t members[GROUP_MAX_MEMBERS];  /* replica ids, ascending */
};

struct group_callbacks {
	/* A multicast from member sender, in agreed order. data is valid during the call. */
	void (*deliver)(void *arg, uint32_t sender, const void *data, size_t len);
	/* The membership changed; called before any delivery of the new view.
	 * What a member sent before it saw this view is delivered before this
	 * call (group_corosync: the DATA held while replica ids are learnt), so
	 * what the upper layer sends from this call (its knowledge row) counts it. */
	void (*view)(void *arg, const struct group_view *v);
};

struct group;

struct group_ops {
	/* Joins the group; the first view is reported through the view callback. */
	int (*join)(struct group *g);
	/* Queues data for agreed-order delivery to every member, self included.
	 * Returns 0, or a negative error (the data is then not sent). */
	int (*multicast)(struct group *g, const void *data, size_t len);
	/* Leaves and frees; no callback is made after it returns. */
	void (*close)(struct group *g);
};

struct group {
	const struct group_ops *ops;
	uint32_t self;
};

static inline int group_join(struct group *g)
{
	return g->ops->join(g);
}
static inline int group_multicast(struct group *g, const void *data, size_t len)
{
	return g->ops->multicast(g, data, len);
}
static inline void group_close(struct group *g)
{
	g->ops->close(g);
}

/* A group of one: replica self, alone in every view. */
struct group *group_solo_new(uv_loop_t *loop, uint32_t self, const struct group_callbacks *cb,
			     void *arg);

/* The cluster group: Corosync CPG group group_name (at most 127 bytes), as
 * replica self. Returns NULL (logged) if group_name is unusable.
 *
 * - join connects to the local Corosync and joins the CPG group. Views are
 *   reported once every CPG member of a configuration has announced its
 *   replica id; members[] are replica ids. Returns a negative error only when
 *   joining can never work (another group of this same process already joined
 *   group_name: CPG knows members as (node, pid), so each process is at most
 *   one member). If Corosync is not running, or goes away later, the group
 *   reports the view {self} and delivers its own multicasts locally (the
 *   replica keeps serving alone), and reconnects every second; after
 *   reconnecting it reports views as usual.
 * - multicast copies data; messages are sent in order with CPG's agreed order,
 *   and kept queued (never dropped, never reordered) while Corosync applies
 *   flow control. Refuses len > GROUP_MSG_MAX with -EMSGSIZE and use before
 *   join with -ENOTCONN. Messages already handed to Corosync when the
 *   connection is lost, but not yet delivered in a reported view, are not
 *   delivered here (other members may have them; the sync of the next view
 *   repairs that); messages still queued are delivered locally.
 * - Two members claiming one replica id: the one with the lower (node, pid)
 *   keeps it, the other is left out of every view and its messages are dropped
 *   (logged as an error); that other member sees itself alone.
 * - close leaves the group (cpg_leave, cpg_finalize); it may be called from a
 *   callback. The loop, CPG calls aside, never blocks: those calls are local
 *   IPC round trips to Corosync. */
struct group *group_corosync_new(uv_loop_t *loop, uint32_t self, const char *group_name,
				 const struct group_callbacks *cb, void *arg);

/* Counters of a Corosync group, for status output and tests. */
struct group_corosync_stats {
	uint64_t sent;        /* messages handed to Corosync, HELLOs included */
	uint64_t flow_waits;  /* times sending stopped on CS_ERR_TRY_AGAIN and resumed later */
	uint64_t reconnects;  /* connections made after a loss of Corosync */
	size_t queued;        /* messages waiting to be sent now */
};
void group_corosync_stats(struct group *g, struct group_corosync_stats *out);

#endif
