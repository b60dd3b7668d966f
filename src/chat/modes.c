/*
 * modes.c: a room's moderation state, built from operations like the rest
 * of the chat: OP_MODE (one change: a flag, the key, the limit, an entry of
 * a list, a person's operator or voice status: up to CHAT_MODE_CHANGES_MAX
 * of them in one op, as one MODE line makes them), OP_INVITE and OP_KICK.
 *
 * Every setting is a register of its own, last writer wins by op key: the
 * flags i m n s t, the key k, the limit l, each entry of the lists b e I
 * (by casefolded mask), each person's o and v, each person's invitation
 * (OP_INVITE sets it, OP_KICK clears it). Applying the same ops in any order
 * gives the same registers, so the state converges after a merge with no
 * rule beyond the canonical order (docs/DESIGN-NOTES.md "Room modes"). A
 * register once written is never removed (a "-b mask" must still beat an
 * older "+b mask" arriving later).
 *
 * Defaults, before any op sets them: n and t on, the rest off. The founder,
 * the author (person) of the room's lowest-keyed OP_ROOM, is an operator
 * unless a register for its o says otherwise.
 */
#include "chat_impl.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The letters OP_MODE takes, and which need a parameter to set / unset. */
static const char FLAGS[] = "imnst";
static const char LISTS[] = "beI";
static const char PERSONAL[] = "ov";


static struct room_entry *entry_of(const struct chat_room *room)
{
	return (struct room_entry *)((char *)room - offsetof(struct room_entry, room));
}

static char *reg_key(char letter, const char *param)
{
	char *p = xasprintf("%c:%s", letter, param);
	for (char *q = p + 2; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return p;
}

static const struct mode_reg *reg_find(const struct room_entry *r, char letter, const char *param)
{
	struct mode_reg *g = NULL;
	char *k = reg_key(letter, param);
	HASH_FIND_STR(r->modes, k, g);
	free(k);
	return g;
}

/* 1 if register (letter, param) is on, dflt if it was never written. */
static int reg_on(const struct room_entry *r, char letter, const char *param, int dflt)
{
	const struct mode_reg *g = reg_find(r, letter, param);
	return g ? g->on : dflt;
}

/* Writes register (letter, param) from op if op is newer than what wrote
 * it; dflt is what it says while never written. Returns 1 if what it says
 * changed (on, or the value while on). */
static int reg_write(struct room_entry *r, char letter, const char *param, int dflt, int on,
		     const char *value, const struct op *op)
{
	struct op_key k = op_key_of(op);
	struct mode_reg *g = NULL;
	char *key = reg_key(letter, param);
	HASH_FIND_STR(r->modes, key, g);
	if (g && op_key_cmp(&k, &g->by) <= 0) {
		free(key);
		return 0;
	}
	int was_on = g ? g->on : dflt;
	int changed = was_on != on || (on && g && strcmp(g->value, value) != 0);
	if (!g) {
		g = xcalloc(1, sizeof *g);
		g->key = key;
		HASH_ADD_KEYPTR(hh, r->modes, g->key, strlen(g->key), g);
	} else {
		free(key);
	}
	free(g->value);
	free(g->setter);
	g->value = xstrdup(value);
	g->setter = xstrdup(op->author);
	g->set_ms = op->wall_ms;
	g->on = on;
	g->by = k;
	return changed;
}

/* Brings the room's public mode fields up to date with its registers. */
static void refresh(struct room_entry *r)
{
	static const unsigned bits[] = {CHAT_MODE_I, CHAT_MODE_M, CHAT_MODE_N, CHAT_MODE_S, CHAT_MODE_T};
	r->room.modes = 0;
	for (size_t i = 0; FLAGS[i]; i++)
		if (reg_on(r, FLAGS[i], "", FLAGS[i] == 'n' || FLAGS[i] == 't'))
			r->room.modes |= bits[i];
	const struct mode_reg *k = reg_find(r, 'k', ""), *l = reg_find(r, 'l', ""), *g, *tmp;
	r->room.key = k && k->on ? k->value : "";
	r->room.limit = l && l->on ? (unsigned)strtoul(l->value, NULL, 10) : 0;
	r->room.bans = 0;
	HASH_ITER(hh, r->modes, g, tmp)
		r->room.bans += g->on && g->key[0] == 'b' && g->key[1] == ':';
}

/* 1 if s is a positive decimal limit below 2^31. */
static int limit_ok(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n > 0 && n < 10 && s[n] == '\0' && strtoul(s, NULL, 10) > 0;
}

int chat_mode_next(const char **body, const char **params, struct chat_mode_change *c)
{
	const char *b = *body;
	if (!b[0])
		return **params ? -1 : 0; /* parameters left over */
	if ((b[0] != '+' && b[0] != '-') || !b[1])
		return -1;
	c->on = b[0] == '+';
	c->letter = b[1];
	*body = b + 2;
	c->param[0] = '\0';
	int takes = strchr(LISTS, c->letter) || strchr(PERSONAL, c->letter) ||
		    (c->on && (c->letter == 'k' || c->letter == 'l'));
	if (!strchr(FLAGS, c->letter) && !strchr(LISTS, c->letter) && !strchr(PERSONAL, c->letter) &&
	    c->letter != 'k' && c->letter != 'l')
		return -1;
	if (!takes)
		return 1;
	const char *p = *params;
	size_t n = strcspn(p, " ");
	if (n == 0 || n >= sizeof c->param)
		return -1;
	memcpy(c->param, p, n);
	c->param[n] = '\0';
	*params = p + n + (p[n] == ' ');
	if (c->letter == 'l' && !limit_ok(c->param))
		return -1;
	return 1;
}

int modes_check(const struct op *op)
{
	if (op->kind != OP_MODE)
		return op->ref[0] && !strchr(op->ref, ' ') ? 0 : -1; /* OP_KICK, OP_INVITE: a person */
	const char *body = op->body, *params = op->ref;
	struct chat_mode_change c;
	int rc, n = 0;
	while ((rc = chat_mode_next(&body, &params, &c)) == 1)
		n++;
	return rc == 0 && n > 0 && n <= CHAT_MODE_CHANGES_MAX ? 0 : -1;
}

int modes_founded(struct room_entry *r, const struct op *op, char *was, size_t len)
{
	struct op_key k = op_key_of(op);
	if (r->founder && op_key_cmp(&k, &r->founded_by) >= 0)
		return 0;
	int replaced = r->founder != NULL;
	if (replaced && was)
		snprintf(was, len, "%s", r->founder);
	free(r->founder);
	r->founder = chat_person(op->author, op->account);
	r->founded_by = k;
	r->room.founder = r->founder;
	return replaced && (!was || strcmp(was, r->founder) != 0);
}

enum chat_change modes_apply(struct room_entry *r, const struct op *op, unsigned *mask)
{
	int changed;
	*mask = 0;
	if (op->kind == OP_INVITE) {
		reg_write(r, '*', op->ref, 0, 1, op->ref, op);
		return CHAT_INVITED;
	}
	if (op->kind == OP_KICK) {
		reg_write(r, '*', op->ref, 0, 0, op->ref, op);
		return CHAT_KICKED;
	}
	const char *body = op->body, *params = op->ref;
	struct chat_mode_change c;
	*mask = 0;
	for (unsigned i = 0; chat_mode_next(&body, &params, &c) == 1; i++) {
		char m = c.letter;
		if (strchr(FLAGS, m) || m == 'k' || m == 'l')
			changed = reg_write(r, m, "", m == 'n' || m == 't', c.on, c.param, op);
		else
			changed = reg_write(r, m, c.param, m == 'o' && r->founder && strcmp(r->founder, c.param) == 0,
					    c.on, c.param, op);
		*mask |= (unsigned)changed << i;
	}
	refresh(r);
	return *mask ? CHAT_MODE_CHANGED : CHAT_UNCHANGED;
}

void modes_init(struct room_entry *r)
{
	refresh(r);
}

void modes_free(struct room_entry *r)
{
	struct mode_reg *g, *tmp;
	HASH_ITER(hh, r->modes, g, tmp) {
		HASH_DEL(r->modes, g);
		free(g->key);
		free(g->value);
		free(g->setter);
		free(g);
	}
	free(r->founder);
}

static int reg_cmp(const void *a, const void *b)
{
	return strcmp((*(struct mode_reg *const *)a)->key, (*(struct mode_reg *const *)b)->key);
}

/* ---- queries ---- */

int chat_room_is_op(const struct chat_room *room, const char *person)
{
	const struct room_entry *r = entry_of(room);
	return reg_on(r, 'o', person, r->founder && strcmp(r->founder, person) == 0);
}

int chat_room_is_voiced(const struct chat_room *room, const char *person)
{
	return reg_on(entry_of(room), 'v', person, 0);
}

int chat_room_invited(const struct chat_room *room, const char *person)
{
	return reg_on(entry_of(room), '*', person, 0);
}

void chat_room_list_each(const struct chat_room *room, char list,
			 void (*fn)(const char *mask, const char *setter, int64_t set_ms, void *arg), void *arg)
{
	const struct room_entry *r = entry_of(room);
	struct mode_reg **all;
	size_t n;
	CHAT_HASH_SORTED(r->modes, struct mode_reg, reg_cmp, all, n);
	for (size_t i = 0; i < n; i++)
		if (all[i]->on && all[i]->key[0] == list && all[i]->key[1] == ':')
			fn(all[i]->value, all[i]->setter, all[i]->set_ms, arg);
	free(all);
}

/* ---- snapshot ---- */

void modes_snapshot(const struct room_entry *r, struct op_buf *b)
{
	snap_u64(b, r->founder != NULL);
	snap_str(b, r->founder);
	snap_key(b, &r->founded_by);
	snap_u64(b, HASH_COUNT(r->modes));
	for (const struct mode_reg *g = r->modes; g; g = g->hh.next) {
		snap_str(b, g->key);
		snap_u64(b, (uint64_t)g->on);
		snap_str(b, g->value);
		snap_str(b, g->setter);
		snap_u64(b, (uint64_t)g->set_ms);
		snap_key(b, &g->by);
	}
}

void modes_restore(struct room_entry *r, struct op_reader *rd)
{
	int has_founder = snap_read_u64(rd) != 0;
	char *founder = snap_read_str(rd);
	r->founded_by = snap_read_key(rd);
	if (has_founder) {
		r->founder = founder;
		r->room.founder = founder;
	} else {
		free(founder);
	}
	size_t n = snap_read_count(rd, 68);
	for (size_t i = 0; i < n && !rd->bad; i++) {
		struct mode_reg *g = xcalloc(1, sizeof *g), *dup;
		g->key = snap_read_str(rd);
		g->on = snap_read_u64(rd) != 0;
		g->value = snap_read_str(rd);
		g->setter = snap_read_str(rd);
		g->set_ms = (int64_t)snap_read_u64(rd);
		g->by = snap_read_key(rd);
		HASH_FIND_STR(r->modes, g->key, dup);
		rd->bad |= dup != NULL;
		HASH_ADD_KEYPTR(hh, r->modes, g->key, strlen(g->key), g);
	}
	refresh(r);
}
