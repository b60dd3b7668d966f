/*
 * group.h: the replica group: membership and agreed-order multicast.
 *
 * Implementations: group_solo (one standalone replica: delivers its own
 * multicasts in order, on the next loop turn) and, for a cluster, corosync
 * (libcpg). The tests add a simulated group. Every member of a view delivers
 * the same messages in the same order (extended virtual synchrony).
 */
#ifndef CHORUS_GROUP_H
#define CHORUS_GROUP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GROUP_MAX_MEMBERS 32

struct group_view {
	uint64_t id;                          /* increases with every view change */
	size_t n;
	uint32_t members[GROUP_MAX_MEMBERS];  /* replica ids, ascending */
};

struct group_callbacks {
	/* A multicast from member sender, in agreed order. data is valid during the call. */
	void (*deliver)(void *arg, uint32_t sender, const void *data, size_t len);
	/* The membership changed; called before any delivery of the new view. */
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

#endif
