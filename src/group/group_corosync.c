/*
 * group_corosync.c: the cluster group, on Corosync's closed process groups
 * (libcpg). CPG gives membership and agreed (total) order; this file holds
 * the connection: it feeds CPG configurations and the HELLO/SKIP protocol to
 * membership.c (which member is which replica id) and reports its views,
 * holds DATA while a view is being made, queues multicasts through CPG's
 * flow control, and keeps the replica serving alone while Corosync is away.
 *
 * Wire: every CPG message starts with an 8-byte envelope: version (1), type
 * (HELLO, DATA or SKIP), two zero bytes, and the sender's replica id
 * (big-endian). A DATA message carries the upper layer's bytes after it. A
 * HELLO carries what its sender knows of the configuration: a count, then
 * (nodeid, pid, replica id) triples, all big-endian, itself included. A SKIP
 * names members to go on without: a count, then (nodeid, pid) pairs.
 *
 * Views (which member is which replica: membership.c, fed from here). CPG
 * names members (nodeid, pid); chorus needs replica ids. After
 * every CPG configuration change each member multicasts a HELLO, and the view
 * of that configuration is reported as soon as the HELLOs delivered after the
 * change name every member. Only HELLOs delivered after the latest change
 * count, so the moment a view is reported depends on the agreed message stream
 * alone, and every member of the configuration reports it at the same place.
 * As HELLOs also vouch for the members their senders already knew, a member
 * that is stopped (alive for CPG but not running) holds up no view but the
 * one of its own join. DATA delivered between the change and that moment was
 * sent before its sender saw the view (it belongs to the view before): it is
 * held and delivered right before the view callback, in order. If another
 * change comes before the view is complete, the held DATA stays held until
 * the next view is complete; members that joined in between never get it,
 * so it must reach the upper layer before the view, where the knowledge
 * rows that the upper layer sends for the view count it and its sync
 * repairs the difference (delivered after the view, it was in nobody's row,
 * and a member that joined in between lacked it until the next change).
 *
 * Silent members. A member nobody vouches for and that sends no HELLO (a
 * process killed as it joined, which Corosync may keep as a member, or one
 * that is not a chorus replica) would hold the view open for good. After
 * HELLO_WAIT_MS every member that still waits multicasts a SKIP naming the
 * members not heard from; where a SKIP from a heard member is delivered,
 * every member marks those of them still unheard as silent, at the same
 * place in the agreed stream, and the view goes on without them (a silent
 * member that is us reports the view {self}). A silent member's HELLO,
 * delivered later, makes it heard and reports a new view with it. A member
 * skipped once is skipped at once (right after our HELLO) in the next
 * configurations, until it is heard.
 *
 * Replica ids. A replica id claimed by two members of a configuration
 * belongs to neither: both are left out of the view (each reports {self})
 * and their DATA is dropped, so no member can speak as another replica by
 * claiming its id, whatever its CPG address.
 *
 * Loss of Corosync (dispatch or send fails, the socket hangs up): the
 * connection is torn down outside any CPG call, the view {self} is reported,
 * queued multicasts and later ones are delivered locally, and a timer tries
 * to reconnect every second. Held DATA and messages already handed to
 * Corosync are not delivered here (see group.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <corosync/cpg.h>

#include "../common/util.h"
#include "group.h"
#include "membership.h"

#define ENV_VERSION 1
#define ENV_HELLO 1
#define ENV_DATA 2
#define ENV_SKIP 3
#define ENV_LEN 8
#define RETRY_MS 5         /* resend period while Corosync applies flow control */
#define RECONNECT_MS 1000  /* reconnect period while Corosync is away */
#define HELLO_WAIT_MS 3000 /* how long a view waits for a member's HELLO */

/* One message: on the send queue (envelope included), held, or local
 * (payload only). */
struct cs_msg {
	struct cs_msg *next;
	uint32_t nodeid, pid;  /* CPG sender (held messages) */
	uint32_t sender;       /* replica id */
	size_t len;
	unsigned char data[];
};

struct cs_fifo {
	struct cs_msg *head, *tail;
	size_t n;
};

enum cs_state {
	CS_IDLE,    /* made, not joined */
	CS_UP,      /* connected and joined */
	CS_LOST,    /* connection failed; torn down on the next timer turn */
	CS_DOWN,    /* alone, reconnecting */
	CS_CLOSED,  /* closed; waiting for the handles to close */
};

struct group_corosync {
	struct group base;
	uv_loop_t *loop;
	struct group_callbacks cb;
	void *arg;
	struct cpg_name name;
	enum cs_state state;
	size_t max_len;             /* longest payload accepted */

	cpg_handle_t handle;        /* valid while CS_UP or CS_LOST */
	uv_poll_t *poll;            /* the connection's fd; NULL when none */
	uint32_t nodeid, pid;       /* our CPG address */
	int dispatching;            /* inside cpg_dispatch */

	struct membership ms;       /* the configuration's members: who is which replica */
	int blocked;                /* the last send met CS_ERR_TRY_AGAIN */

	struct cs_fifo out;         /* to send, oldest first */
	struct cs_fifo held;        /* delivered by CPG before the view was known */
	struct cs_fifo local;       /* own messages to deliver while alone */

	uv_timer_t retry, reconnect, kick, hello_wait;
	int handles;                /* open uv handles; the group is freed at 0 */
	int down_logged;

	uint64_t view_id;
	struct group_corosync_stats stats;
};

/* ---- small helpers ---- */

static const char *cs_err(cs_error_t err)
{
	static char buf[32];
	switch (err) {
	case CS_OK: return "ok";
	case CS_ERR_LIBRARY: return "connection to Corosync failed";
	case CS_ERR_TRY_AGAIN: return "try again";
	case CS_ERR_INVALID_PARAM: return "invalid parameter";
	case CS_ERR_BAD_HANDLE: return "bad handle";
	case CS_ERR_BUSY: return "busy";
	case CS_ERR_ACCESS: return "access denied";
	case CS_ERR_NOT_EXIST: return "does not exist";
	case CS_ERR_NAME_TOO_LONG: return "name too long";
	case CS_ERR_EXIST: return "already exists";
	case CS_ERR_TOO_BIG: return "too big";
	case CS_ERR_NO_MEMORY: return "no memory";
	case CS_ERR_SECURITY: return "security (connection refused)";
	default:
		snprintf(buf, sizeof buf, "error %d", (int)err);
		return buf;
	}
}

static struct cs_msg *msg_new(uint32_t sender, size_t len)
{
	struct cs_msg *m = xmalloc(sizeof *m + len);
	m->next = NULL;
	m->nodeid = m->pid = 0;
	m->sender = sender;
	m->len = len;
	return m;
}

static void fifo_push(struct cs_fifo *q, struct cs_msg *m)
{
	m->next = NULL;
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->n++;
}

static void fifo_push_front(struct cs_fifo *q, struct cs_msg *m)
{
	m->next = q->head;
	q->head = m;
	if (!q->tail)
		q->tail = m;
	q->n++;
}

static struct cs_msg *fifo_pop(struct cs_fifo *q)
{
	struct cs_msg *m = q->head;
	if (!m)
		return NULL;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	m->next = NULL;
	return m;
}

static void fifo_clear(struct cs_fifo *q)
{
	struct cs_msg *m;
	while ((m = fifo_pop(q)))
		free(m);
}

/* HELLO or SKIP: ours to the group only, never delivered up. */
static int is_control(const struct cs_msg *m)
{
	return m->len >= ENV_LEN && m->data[1] != ENV_DATA;
}

static struct group_corosync *from_handle(cpg_handle_t h)
{
	void *ctx = NULL;
	if (cpg_context_get(h, &ctx) != CS_OK)
		return NULL;
	return ctx;
}

static int is_self(const struct group_corosync *g, uint32_t nodeid, uint32_t pid)
{
	return nodeid == g->nodeid && pid == g->pid;
}

/* ---- views ---- */

/* Reports view v under the next view id. */
static void report_view(struct group_corosync *g, struct group_view *v)
{
	v->id = ++g->view_id;
	g->cb.view(g->arg, v);
}

static void report_solo_view(struct group_corosync *g)
{
	struct group_view v = {.n = 1, .members = {g->base.self}};
	report_view(g, &v);
}

/* Delivers the held DATA, oldest first, until closed. */
static void flush_held(struct group_corosync *g)
{
	struct cs_msg *m;
	while (g->state == CS_UP && (m = fifo_pop(&g->held))) {
		if (mb_accepts(&g->ms, m->nodeid, m->pid, m->sender))
			g->cb.deliver(g->arg, m->sender, m->data, m->len);
		free(m);
	}
}

/* Every member is heard or silent: deliver the held DATA (the end of the
 * view before), then report the view. Also reports the new view when a
 * silent member is heard after its round. */
static void complete_round(struct group_corosync *g)
{
	struct group_view v;
	uv_timer_stop(&g->hello_wait);
	mb_view(&g->ms, &v);
	flush_held(g);
	if (g->state == CS_UP)
		report_view(g, &v);
}

/* ---- sending ---- */

static void conn_lost(struct group_corosync *g);
static void on_retry(uv_timer_t *t);

/* Sends queued messages in order until the queue is empty or Corosync
 * pushes back (then the retry timer resumes). */
static void try_send(struct group_corosync *g)
{
	while (g->state == CS_UP && g->out.head) {
		struct cs_msg *m = g->out.head;
		struct iovec iov = {m->data, m->len};
		cs_error_t err = cpg_mcast_joined(g->handle, CPG_TYPE_AGREED, &iov, 1);
		if (err == CS_ERR_TRY_AGAIN) {
			if (!g->blocked)
				g->stats.flow_waits++;
			g->blocked = 1;
			if (!uv_is_active((uv_handle_t *)&g->retry))
				uv_timer_start(&g->retry, on_retry, RETRY_MS, 0);
			return;
		}
		if (err != CS_OK) {
			log_error("group: cpg_mcast_joined: %s", cs_err(err));
			conn_lost(g);
			return;
		}
		free(fifo_pop(&g->out));
		g->stats.sent++;
		g->blocked = 0;
	}
	uv_timer_stop(&g->retry);
}

static void on_retry(uv_timer_t *t)
{
	try_send(t->data);
}

/* A control message of type with room for body bytes, envelope filled. */
static struct cs_msg *control_new(struct group_corosync *g, int type, size_t body)
{
	struct cs_msg *m = msg_new(g->base.self, ENV_LEN + body);
	memset(m->data, 0, ENV_LEN);
	m->data[0] = ENV_VERSION;
	m->data[1] = (unsigned char)type;
	put_be32(m->data + 4, g->base.self);
	return m;
}

/* Queues our HELLO, naming every member we know, ahead of unsent DATA.
 * Unsent HELLO and SKIP (always at the head) were for an earlier
 * configuration and are dropped. */
static void queue_hello(struct group_corosync *g)
{
	while (g->out.head && is_control(g->out.head))
		free(fifo_pop(&g->out));
	struct cs_msg *m = control_new(g, ENV_HELLO, 4 + g->ms.n * 12);
	m->len = ENV_LEN + mb_hello(&g->ms, m->data + ENV_LEN);
	fifo_push_front(&g->out, m);
}

/* Queues a SKIP naming the unheard members other than us (those also
 * skipped before if only_skipped), right after an unsent HELLO or at the
 * head. Returns how many it names (nothing is queued for none). */
static size_t queue_skip(struct group_corosync *g, int only_skipped)
{
	struct cs_msg *m = control_new(g, ENV_SKIP, 4 + g->ms.n * 8);
	size_t n = mb_skip(&g->ms, only_skipped, m->data + ENV_LEN);
	if (n == 0) {
		free(m);
		return 0;
	}
	m->len = ENV_LEN + 4 + n * 8;
	if (g->out.head && g->out.head->data[1] == ENV_HELLO) {
		m->next = g->out.head->next;
		g->out.head->next = m;
		if (g->out.tail == g->out.head)
			g->out.tail = m;
		g->out.n++;
	} else {
		fifo_push_front(&g->out, m);
	}
	if (!uv_is_active((uv_handle_t *)&g->retry))
		try_send(g);
	return n;
}

/* ---- CPG callbacks (inside cpg_dispatch) ---- */

static void on_data(struct group_corosync *g, struct mb_member *m, uint32_t id,
		    const unsigned char *data, size_t len)
{
	if (g->ms.round) {
		struct cs_msg *h = msg_new(id, len);
		h->nodeid = m->nodeid;
		h->pid = m->pid;
		memcpy(h->data, data, len);
		fifo_push(&g->held, h);
		return;
	}
	if (mb_accepts(&g->ms, m->nodeid, m->pid, id))
		g->cb.deliver(g->arg, id, data, len);
}

static void cs_on_deliver(cpg_handle_t h, const struct cpg_name *name, uint32_t nodeid,
			  uint32_t pid, void *msg, size_t len)
{
	struct group_corosync *g = from_handle(h);
	const unsigned char *p = msg;
	if (!g || g->state != CS_UP)
		return;
	if (len < ENV_LEN || p[0] != ENV_VERSION) {
		log_warn("group: dropped a message from CPG member %" PRIu32 "/%" PRIu32
			 " with an unknown envelope (%zu bytes, version %d)",
			 nodeid, pid, len, len ? p[0] : -1);
		return;
	}
	struct mb_member *m = mb_find(&g->ms, nodeid, pid);
	if (!m) {
		log_warn("group: dropped a message from %" PRIu32 "/%" PRIu32
			 ", not in the current CPG membership", nodeid, pid);
		return;
	}
	uint32_t id = get_be32(p + 4);
	if (p[1] == ENV_HELLO) {
		if (mb_on_hello(&g->ms, m, id, p + ENV_LEN, len - ENV_LEN) == 1)
			complete_round(g);
	} else if (p[1] == ENV_DATA) {
		on_data(g, m, id, p + ENV_LEN, len - ENV_LEN);
	} else if (p[1] == ENV_SKIP) {
		if (mb_on_skip(&g->ms, m, p + ENV_LEN, len - ENV_LEN) == 1)
			complete_round(g);
	}
	else
		log_warn("group: dropped a message of unknown type %d from %" PRIu32 "/%" PRIu32,
			 p[1], nodeid, pid);
}

static void on_hello_wait(uv_timer_t *t);

/* A new CPG configuration: announce what we know, wait to hear of everyone. */
static void cs_on_confchg(cpg_handle_t h, const struct cpg_name *name,
			  const struct cpg_address *members, size_t n,
			  const struct cpg_address *left, size_t nleft,
			  const struct cpg_address *joined, size_t njoined)
{
	struct group_corosync *g = from_handle(h);
	int self_in = 0;
	if (!g || g->state != CS_UP)
		return;
	for (size_t i = 0; i < n; i++)
		self_in |= is_self(g, members[i].nodeid, members[i].pid);
	if (!self_in)
		return;  /* our own leave, or a configuration before our join */
	mb_configure(&g->ms, members, n);
	log_info("group: CPG configuration of %zu member(s) (%zu joined, %zu left)", n, njoined,
		 nleft);
	uv_timer_start(&g->hello_wait, on_hello_wait, HELLO_WAIT_MS, HELLO_WAIT_MS);
	queue_hello(g);
	queue_skip(g, 1);
	if (!uv_is_active((uv_handle_t *)&g->retry))
		try_send(g);
}

/* A view waited HELLO_WAIT_MS: ask the group to go on without the members
 * nobody has vouched for (again each period, until the view is complete). */
static void on_hello_wait(uv_timer_t *t)
{
	struct group_corosync *g = t->data;
	if (g->state != CS_UP || !g->ms.round) {
		uv_timer_stop(t);
		return;
	}
	size_t n = queue_skip(g, 0);
	log_warn("group: the view of CPG group %.*s waited %d ms for %zu member(s); "
		 "asked to go on without them%s",
		 (int)g->name.length, g->name.value, HELLO_WAIT_MS, n,
		 n ? "" : " (our own HELLO is not back yet)");
}

/* ---- the connection ---- */

static void on_handle_closed(uv_handle_t *h);

static void on_poll_closed(uv_handle_t *h)
{
	struct group_corosync *g = h->data;
	free(h);
	if (--g->handles == 0 && g->state == CS_CLOSED)
		free(g);
}

/* Stops polling and ends the CPG connection (the poll handle is closed
 * before cpg_finalize closes its fd). */
static void conn_teardown(struct group_corosync *g, int leave)
{
	if (g->poll) {
		uv_close((uv_handle_t *)g->poll, on_poll_closed);
		g->poll = NULL;
	}
	if (leave)
		cpg_leave(g->handle, &g->name);
	cpg_finalize(g->handle);
	g->handle = 0;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct group_corosync *g = p->data;
	if (g->state != CS_UP || p != g->poll)
		return;
	if (status < 0) {
		log_warn("group: polling Corosync: %s", uv_strerror(status));
		conn_lost(g);
		return;
	}
	g->dispatching = 1;
	cs_error_t err = cpg_dispatch(g->handle, CS_DISPATCH_ALL);
	g->dispatching = 0;
	if (g->state == CS_CLOSED) {
		conn_teardown(g, 1);
		return;
	}
	if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
		log_warn("group: cpg_dispatch: %s", cs_err(err));
		conn_lost(g);
	} else if (events & UV_DISCONNECT) {
		log_warn("group: Corosync hung up");
		conn_lost(g);
	}
}

/* Connects and joins. Returns 0, -1 if Corosync is not usable now, or -2 if
 * joining can never work. */
static int conn_open(struct group_corosync *g)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = cs_on_deliver,
		.cpg_confchg_fn = cs_on_confchg,
	};
	cpg_handle_t h;
	unsigned int nodeid;
	uint32_t atomic;
	int fd;
	cs_error_t err = cpg_model_initialize(&h, CPG_MODEL_V1, (cpg_model_data_t *)&model, g);
	if (err != CS_OK)
		return -1;
	err = cpg_local_get(h, &nodeid);
	if (err == CS_OK)
		err = cpg_fd_get(h, &fd);
	if (err == CS_OK)
		err = cpg_max_atomic_msgsize_get(h, &atomic);
	if (err == CS_OK)
		err = cpg_join(h, &g->name);
	if (err != CS_OK) {
		cpg_finalize(h);
		if (err == CS_ERR_EXIST) {
			log_error("group: cannot join CPG group %.*s: this process is already a "
				  "member (one replica per process)", (int)g->name.length, g->name.value);
			return -2;
		}
		log_debug("group: joining CPG group: %s", cs_err(err));
		return -1;
	}
	g->max_len = GROUP_MSG_MAX;
	if (atomic < GROUP_MSG_MAX + ENV_LEN) {
		log_warn("group: Corosync sends at most %" PRIu32 " bytes unfragmented; "
			 "multicasts are limited to %" PRIu32 " bytes", atomic, atomic - ENV_LEN);
		g->max_len = atomic - ENV_LEN;
	}
	g->handle = h;
	g->nodeid = nodeid;
	g->pid = (uint32_t)getpid();
	g->poll = xmalloc(sizeof *g->poll);
	uv_poll_init(g->loop, g->poll, fd);
	g->poll->data = g;
	g->handles++;
	uv_poll_start(g->poll, UV_READABLE | UV_DISCONNECT, on_poll);
	g->state = CS_UP;
	mb_init(&g->ms, nodeid, g->pid, g->base.self);
	return 0;
}

static void on_reconnect(uv_timer_t *t);

/* Marks the connection failed; it is torn down from a timer, outside any
 * CPG call. */
static void conn_lost(struct group_corosync *g)
{
	if (g->state != CS_UP)
		return;
	g->state = CS_LOST;
	uv_poll_stop(g->poll);
	uv_timer_start(&g->reconnect, on_reconnect, 0, RECONNECT_MS);
}

static void on_kick(uv_timer_t *t);

/* Delivers our own messages made while alone, oldest first, until closed. */
static void flush_local(struct group_corosync *g)
{
	struct cs_msg *m;
	while (g->state == CS_DOWN && (m = fifo_pop(&g->local))) {
		g->cb.deliver(g->arg, g->base.self, m->data, m->len);
		free(m);
	}
}

static void on_kick(uv_timer_t *t)
{
	flush_local(t->data);
}

/* Moves the unsent DATA (without envelopes) to the local queue. */
static void unsent_to_local(struct group_corosync *g)
{
	struct cs_msg *m;
	while ((m = fifo_pop(&g->out))) {
		if (is_control(m)) {
			free(m);
			continue;
		}
		struct cs_msg *l = msg_new(g->base.self, m->len - ENV_LEN);
		memcpy(l->data, m->data + ENV_LEN, l->len);
		fifo_push(&g->local, l);
		free(m);
	}
	if (g->local.head)
		uv_timer_start(&g->kick, on_kick, 0, 0);
}

/* Corosync is away: serve alone. */
static void go_alone(struct group_corosync *g, const char *why)
{
	if (!g->down_logged)
		log_warn("group: %s; serving alone, reconnecting every %d ms", why, RECONNECT_MS);
	g->down_logged = 1;
	if (g->held.n)
		log_warn("group: %zu message(s) delivered by Corosync before the view was known are "
			 "not delivered here", g->held.n);
	fifo_clear(&g->held);
	uv_timer_stop(&g->retry);
	uv_timer_stop(&g->hello_wait);
	g->state = CS_DOWN;
	mb_init(&g->ms, 0, 0, g->base.self);
	g->ms.round = 0;
	unsent_to_local(g);
	report_solo_view(g);
}

static void on_reconnect(uv_timer_t *t)
{
	struct group_corosync *g = t->data;
	if (g->state == CS_LOST) {
		conn_teardown(g, 0);
		go_alone(g, "lost Corosync");
		return;
	}
	if (g->state != CS_DOWN)
		return;
	flush_local(g);
	if (g->state != CS_DOWN)
		return;
	int rc = conn_open(g);
	if (rc == -1)
		return;
	uv_timer_stop(&g->reconnect);
	if (rc == -2)
		return;  /* logged; stay alone */
	g->stats.reconnects++;
	g->down_logged = 0;
	log_info("group: connected to Corosync again; joined CPG group %.*s", (int)g->name.length,
		 g->name.value);
}

/* ---- the group interface ---- */

static int cs_join(struct group *base)
{
	struct group_corosync *g = (struct group_corosync *)base;
	if (g->state != CS_IDLE)
		return -EALREADY;
	int rc = conn_open(g);
	if (rc == -2)
		return -EEXIST;
	if (rc == 0) {
		log_info("group: joined CPG group %.*s as replica %" PRIu32, (int)g->name.length,
			 g->name.value, base->self);
		return 0;
	}
	go_alone(g, "Corosync is not running");
	if (g->state == CS_DOWN)
		uv_timer_start(&g->reconnect, on_reconnect, RECONNECT_MS, RECONNECT_MS);
	return 0;
}

static int cs_multicast(struct group *base, const void *data, size_t len)
{
	struct group_corosync *g = (struct group_corosync *)base;
	if (g->state == CS_IDLE || g->state == CS_CLOSED)
		return -ENOTCONN;
	if (len > g->max_len)
		return -EMSGSIZE;
	if (g->state == CS_DOWN) {
		struct cs_msg *l = msg_new(base->self, len);
		memcpy(l->data, data, len);
		fifo_push(&g->local, l);
		if (!uv_is_active((uv_handle_t *)&g->kick))
			uv_timer_start(&g->kick, on_kick, 0, 0);
		return 0;
	}
	struct cs_msg *m = msg_new(base->self, ENV_LEN + len);
	m->data[0] = ENV_VERSION;
	m->data[1] = ENV_DATA;
	m->data[2] = m->data[3] = 0;
	put_be32(m->data + 4, base->self);
	memcpy(m->data + ENV_LEN, data, len);
	fifo_push(&g->out, m);
	if (g->state == CS_UP && !uv_is_active((uv_handle_t *)&g->retry))
		try_send(g);
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct group_corosync *g = h->data;
	if (--g->handles == 0)
		free(g);
}

/* Leaves (now, or after the running dispatch returns) and frees once every
 * handle is closed. Callbacks check the state, so none is made after this. */
static void cs_close(struct group *base)
{
	struct group_corosync *g = (struct group_corosync *)base;
	enum cs_state was = g->state;
	g->state = CS_CLOSED;
	fifo_clear(&g->out);
	fifo_clear(&g->held);
	fifo_clear(&g->local);
	if ((was == CS_UP || was == CS_LOST) && !g->dispatching)
		conn_teardown(g, was == CS_UP);
	uv_close((uv_handle_t *)&g->retry, on_handle_closed);
	uv_close((uv_handle_t *)&g->reconnect, on_handle_closed);
	uv_close((uv_handle_t *)&g->kick, on_handle_closed);
	uv_close((uv_handle_t *)&g->hello_wait, on_handle_closed);
}

static const struct group_ops corosync_ops = {
	.join = cs_join,
	.multicast = cs_multicast,
	.close = cs_close,
};

struct group *group_corosync_new(uv_loop_t *loop, uint32_t self, const char *group_name,
				 const struct group_callbacks *cb, void *arg)
{
	size_t n = group_name ? strlen(group_name) : 0;
	if (n == 0 || n >= CPG_MAX_NAME_LENGTH) {
		log_error("group: CPG group name must be 1 to %d bytes", CPG_MAX_NAME_LENGTH - 1);
		return NULL;
	}
	struct group_corosync *g = xcalloc(1, sizeof *g);
	g->base.ops = &corosync_ops;
	g->base.self = self;
	g->loop = loop;
	g->cb = *cb;
	g->arg = arg;
	g->name.length = (uint32_t)n;
	memcpy(g->name.value, group_name, n);
	g->max_len = GROUP_MSG_MAX;
	uv_timer_init(loop, &g->retry);
	uv_timer_init(loop, &g->reconnect);
	uv_timer_init(loop, &g->kick);
	uv_timer_init(loop, &g->hello_wait);
	g->retry.data = g->reconnect.data = g->kick.data = g->hello_wait.data = g;
	g->handles = 4;
	return &g->base;
}

void group_corosync_stats(struct group *base, struct group_corosync_stats *out)
{
	struct group_corosync *g = (struct group_corosync *)base;
	*out = g->stats;
	out->queued = g->out.n;
}
