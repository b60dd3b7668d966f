/*
 * group_solo.c: the group of one replica. Multicasts are delivered to the
 * replica itself in the order they were made, all of one loop turn together
 * on the next turn (through a uv_async_t, whose wake-ups coalesce), after a
 * single view {self} reported at join.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "group.h"

struct solo_msg {
	struct solo_msg *next;
	size_t len;
	unsigned char data[];
};

struct group_solo {
	struct group base;
	uv_loop_t *loop;
	uv_async_t wake;
	struct group_callbacks cb;
	void *arg;
	struct solo_msg *head, *tail;
	int joined;
};

/* Delivers every queued multicast, oldest first. */
static void solo_on_wake(uv_async_t *h)
{
	struct group_solo *g = h->data;
	struct solo_msg *m = g->head;
	g->head = g->tail = NULL;
	while (m) {
		struct solo_msg *next = m->next;
		g->cb.deliver(g->arg, g->base.self, m->data, m->len);
		free(m);
		m = next;
	}
}

static int solo_join(struct group *base)
{
	struct group_solo *g = (struct group_solo *)base;
	struct group_view v = {.id = 1, .n = 1, .members = {base->self}};
	g->joined = 1;
	g->cb.view(g->arg, &v);
	return 0;
}

static int solo_multicast(struct group *base, const void *data, size_t len)
{
	struct group_solo *g = (struct group_solo *)base;
	if (!g->joined)
		return -1;
	struct solo_msg *m = xmalloc(sizeof *m + len);
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	if (g->tail)
		g->tail->next = m;
	else
		g->head = m;
	g->tail = m;
	uv_async_send(&g->wake);
	return 0;
}

static void solo_on_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Drops undelivered multicasts and frees the group once its handle is closed. */
static void solo_close(struct group *base)
{
	struct group_solo *g = (struct group_solo *)base;
	struct solo_msg *m = g->head;
	while (m) {
		struct solo_msg *next = m->next;
		free(m);
		m = next;
	}
	g->head = g->tail = NULL;
	uv_close((uv_handle_t *)&g->wake, solo_on_closed);
}

static const struct group_ops solo_ops = {
	.join = solo_join,
	.multicast = solo_multicast,
	.close = solo_close,
};

struct group *group_solo_new(uv_loop_t *loop, uint32_t self, const struct group_callbacks *cb,
			     void *arg)
{
	struct group_solo *g = xcalloc(1, sizeof *g);
	g->base.ops = &solo_ops;
	g->base.self = self;
	g->loop = loop;
	g->cb = *cb;
	g->arg = arg;
	uv_async_init(loop, &g->wake, solo_on_wake);
	g->wake.data = g;
	return &g->base;
}
