/*
 * membership.c: which CPG member is which replica (see membership.h).
 */
#include "membership.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

static int is_self(const struct membership *ms, uint32_t nodeid, uint32_t pid)
{
	return nodeid == ms->self_nodeid && pid == ms->self_pid;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void mb_init(struct membership *ms, uint32_t nodeid, uint32_t pid, uint32_t self_id)
{
	memset(ms, 0, sizeof *ms);
	ms->self_nodeid = nodeid;
	ms->self_pid = pid;
	ms->self_id = self_id;
	ms->round = 1; /* until our first configuration is announced */
}

struct mb_member *mb_find(struct membership *ms, uint32_t nodeid, uint32_t pid)
{
	for (size_t i = 0; i < ms->n; i++)
		if (ms->conf[i].nodeid == nodeid && ms->conf[i].pid == pid)
			return &ms->conf[i];
	return NULL;
}

void mb_configure(struct membership *ms, const struct cpg_address *members, size_t n)
{
	struct mb_member old[CPG_MEMBERS_MAX];
	size_t nold = ms->n;
	memcpy(old, ms->conf, nold * sizeof old[0]);
	ms->n = n < CPG_MEMBERS_MAX ? n : CPG_MEMBERS_MAX;
	for (size_t i = 0; i < ms->n; i++) {
		struct mb_member *c = &ms->conf[i];
		*c = (struct mb_member){.nodeid = members[i].nodeid, .pid = members[i].pid};
		for (size_t j = 0; j < nold; j++)
			if (old[j].nodeid == c->nodeid && old[j].pid == c->pid) {
				c->id = old[j].id;
				c->known = old[j].known;
				c->skipped = old[j].skipped;
			}
		if (is_self(ms, c->nodeid, c->pid)) {
			c->id = ms->self_id;
			c->known = 1;
		}
	}
	ms->round = 1;
	ms->isolated = 0;
}

size_t mb_hello(const struct membership *ms, unsigned char *out)
{
	unsigned char *p = out + 4;
	uint32_t n = 0;
	for (size_t i = 0; i < ms->n; i++) {
		const struct mb_member *c = &ms->conf[i];
		if (!c->known)
			continue;
		put_be32(p, c->nodeid);
		put_be32(p + 4, c->pid);
		put_be32(p + 8, c->id);
		p += 12;
		n++;
	}
	put_be32(out, n);
	return 4 + (size_t)n * 12;
}

size_t mb_skip(const struct membership *ms, int only_skipped, unsigned char *out)
{
	unsigned char *p = out + 4;
	uint32_t n = 0;
	for (size_t i = 0; i < ms->n; i++) {
		const struct mb_member *c = &ms->conf[i];
		if (c->hearing != MB_UNHEARD || is_self(ms, c->nodeid, c->pid) || (only_skipped && !c->skipped))
			continue;
		put_be32(p, c->nodeid);
		put_be32(p + 4, c->pid);
		p += 8;
		n++;
	}
	put_be32(out, n);
	return n;
}

static int none_unheard(const struct membership *ms)
{
	for (size_t i = 0; i < ms->n; i++)
		if (ms->conf[i].hearing == MB_UNHEARD)
			return 0;
	return ms->n > 0;
}

/* Learns that member (nodeid, pid) of the configuration is replica id.
 * Returns 1 if it was silent until now. */
static int learn(struct membership *ms, uint32_t nodeid, uint32_t pid, uint32_t id)
{
	struct mb_member *m = mb_find(ms, nodeid, pid);
	if (!m)
		return 0;  /* gone since the sender wrote its HELLO */
	if (m->known && m->id != id) {
		log_error("group: CPG member %" PRIu32 "/%" PRIu32 " announced as replica %" PRIu32
			  " and as %" PRIu32 "; keeping %" PRIu32, nodeid, pid, m->id, id, m->id);
	} else {
		m->id = id;
		m->known = 1;
	}
	int was_silent = m->hearing == MB_SILENT;
	if (was_silent)
		log_info("group: CPG member %" PRIu32 "/%" PRIu32 ", left out as silent, is replica %"
			 PRIu32 "; a new view", nodeid, pid, m->id);
	m->hearing = MB_HEARD;
	m->skipped = 0;
	return was_silent;
}

int mb_on_hello(struct membership *ms, struct mb_member *m, uint32_t id, const unsigned char *p, size_t len)
{
	uint32_t n = len >= 4 ? get_be32(p) : 0;
	if (len < 4 || (len - 4) / 12 < n) {
		log_warn("group: dropped a malformed HELLO from %" PRIu32 "/%" PRIu32, m->nodeid, m->pid);
		return -1;
	}
	int woke = learn(ms, m->nodeid, m->pid, id);
	for (const unsigned char *e = p + 4; n > 0; n--, e += 12)
		woke |= learn(ms, get_be32(e), get_be32(e + 4), get_be32(e + 8));
	return (ms->round || woke) && none_unheard(ms);
}

int mb_on_skip(struct membership *ms, struct mb_member *m, const unsigned char *p, size_t len)
{
	uint32_t n = len >= 4 ? get_be32(p) : 0;
	if (len < 4 || (len - 4) / 8 < n || m->hearing != MB_HEARD) {
		log_warn("group: dropped a malformed or early SKIP from %" PRIu32 "/%" PRIu32, m->nodeid, m->pid);
		return -1;
	}
	for (const unsigned char *e = p + 4; n > 0; n--, e += 8) {
		struct mb_member *c = mb_find(ms, get_be32(e), get_be32(e + 4));
		if (!c || c->hearing != MB_UNHEARD)
			continue;
		c->hearing = MB_SILENT;
		c->skipped = 1;
		log_warn("group: CPG member %" PRIu32 "/%" PRIu32 " sent no HELLO; the view goes on "
			 "without it (not a chorus replica, or not running?)", c->nodeid, c->pid);
	}
	return ms->round && none_unheard(ms);
}

/* Marks the members left out of the view: those whose replica id another
 * heard member claims too; sets isolated if we are left out or silent. */
static void mark_excluded(struct membership *ms)
{
	ms->isolated = 0;
	for (size_t i = 0; i < ms->n; i++) {
		struct mb_member *a = &ms->conf[i];
		a->excluded = 0;
		for (size_t j = 0; j < ms->n && a->hearing == MB_HEARD; j++) {
			struct mb_member *b = &ms->conf[j];
			if (i == j || b->hearing != MB_HEARD || a->id != b->id)
				continue;
			a->excluded = 1;
			if (i < j)
				log_error("group: replica id %" PRIu32 " is claimed by CPG members %" PRIu32
					  "/%" PRIu32 " and %" PRIu32 "/%" PRIu32 "; both are left out of "
					  "the view (two replicas share one id, or one claims another's)",
					  a->id, a->nodeid, a->pid, b->nodeid, b->pid);
		}
		if (is_self(ms, a->nodeid, a->pid) && (a->excluded || a->hearing == MB_SILENT))
			ms->isolated = 1;
	}
}

void mb_view(struct membership *ms, struct group_view *v)
{
	ms->round = 0;
	mark_excluded(ms);
	memset(v, 0, sizeof *v);
	if (ms->isolated) {
		v->n = 1;
		v->members[0] = ms->self_id;
		return;
	}
	uint32_t ids[CPG_MEMBERS_MAX];
	size_t n = 0;
	for (size_t i = 0; i < ms->n; i++)
		if (ms->conf[i].hearing == MB_HEARD && !ms->conf[i].excluded)
			ids[n++] = ms->conf[i].id;
	qsort(ids, n, sizeof ids[0], cmp_u32);
	if (n > GROUP_MAX_MEMBERS) {
		log_error("group: %zu members, more than %d; the view lists the lowest ids", n,
			  GROUP_MAX_MEMBERS);
		n = GROUP_MAX_MEMBERS;
	}
	memcpy(v->members, ids, n * sizeof ids[0]);
	v->n = n;
}

int mb_accepts(struct membership *ms, uint32_t nodeid, uint32_t pid, uint32_t id)
{
	if (ms->isolated)
		return is_self(ms, nodeid, pid);
	const struct mb_member *m = mb_find(ms, nodeid, pid);
	if (!m)
		return 1;  /* it left since; it was a member when CPG delivered it */
	if (m->excluded || m->hearing == MB_SILENT)
		return 0;
	if (m->id != id) {
		log_error("group: CPG member %" PRIu32 "/%" PRIu32 " announced replica id %" PRIu32
			  " but sends as %" PRIu32 "; message dropped",
			  nodeid, pid, m->id, id);
		return 0;
	}
	return 1;
}
