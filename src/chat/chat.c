/*
 * chat.c: the chat state machine's core: applying an operation, and the
 * users, rooms, DM conversations it builds, and likes as the store saw them.
 * Histories' lengths and caches live in history.c, the digest in digest.c.
 *
 * Convergence: every value that more than one op can decide is decided by the
 * ops' canonical keys (op_cmp), never by arrival order: a name's spelling and
 * a room's created_ms come from the lowest-keyed op naming it, a topic from
 * the highest-keyed OP_TOPIC, a follow state from the highest-keyed
 * OP_FOLLOW/OP_UNFOLLOW (feeds.c), a message's place in its history by its key.
 * Each op is applied once, by (stream, seq); every valid op, even one that is
 * otherwise ignored, makes its author a known user.
 */
#include "chat_impl.h"

#include <string.h>

struct chat *chat_new(void)
{
	struct chat *c = xcalloc(1, sizeof(struct chat));
	c->sorted = xcalloc(1, sizeof *c->sorted);
	c->cache_max = CHAT_CACHE_DEFAULT;
	return c;
}

char *chat_casefold(const char *s)
{
	char *f = xstrdup(s);
	for (char *p = f; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return f;
}

int chat_nick_valid(const char *nick)
{
	static const char special[] = "[]\\`_^{|}-";
	size_t len = strlen(nick);
	if (len == 0 || len > CHAT_NICK_MAX || (nick[0] >= '0' && nick[0] <= '9') || nick[0] == '-')
		return 0;
	for (const char *p = nick; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(special, c)))
			return 0;
	}
	return 1;
}

static int is_room_name(const char *s)
{
	return s[0] == '#';
}

/* The strings of op with NULL read as "", so the rest never checks. */
static struct op op_view(const struct op *op)
{
	struct op v = *op;
	v.target = op->target ? op->target : "";
	v.author = op->author ? op->author : "";
	v.body = op->body ? op->body : "";
	v.ref = op->ref ? op->ref : "";
	v.account = op->account ? op->account : "";
	v.tags = op->tags ? op->tags : "";
	return v;
}

int chat_msgid_canonical(const char *s, char out[OP_MSGID_MAX])
{
	struct op ref = {0};
	if (op_msgid_parse(s, &ref.stream, &ref.seq) < 0)
		return -1;
	op_msgid(&ref, out, OP_MSGID_MAX);
	return 0;
}

/* 1 if s may be a string field of an op: at most CHAT_FIELD_MAX bytes of
 * UTF-8. Nothing a client sends breaks these (its lines are checked UTF-8,
 * and a field from a tag, a reaction, is shorter than the tag section). A CR
 * or LF is let through: a reaction's tag value may hold escaped ones, and
 * lines stored before CR was refused hold some; what is sent never breaks
 * a line (reply.c, and tags are escaped). */
static int field_ok(const char *s)
{
	size_t n = strnlen(s, CHAT_FIELD_MAX + 1);
	return n <= CHAT_FIELD_MAX && utf8_valid(s, n);
}

/* Checks an op's shape (see chat_apply); for likes, writes the canonical form
 * of ref into msgid. Returns 0 if valid, -1 if not. */
static int op_check(const struct op *op, char msgid[OP_MSGID_MAX])
{
	if (!chat_nick_valid(op->author) || op->seq == 0 || !field_ok(op->target) ||
	    !field_ok(op->body) || !field_ok(op->ref) || !field_ok(op->account) || !field_ok(op->tags))
		return -1;
	switch (op->kind) {
	case OP_MSG:
	case OP_ROOM:
	case OP_TOPIC:
		return is_room_name(op->target) ? 0 : -1;
	case OP_MODE:
	case OP_KICK:
	case OP_INVITE:
		return is_room_name(op->target) ? modes_check(op) : -1;
	case OP_DM:
	case OP_FOLLOW:
	case OP_UNFOLLOW:
		return chat_nick_valid(op->target) ? 0 : -1;
	case OP_LIKE:
	case OP_UNLIKE:
		return chat_msgid_canonical(op->ref, msgid);
	case OP_POST:
		return strcmp(op->target, CHAT_TIMELINE) == 0 ? 0 : -1;
	case OP_USER:
		return 0;
	case OP_REGISTER:
		return op->body[0] ? 0 : -1;
	case OP_PASSWORD:
		if (!op->body[0])
			return -1;
		/* fall through */
	case OP_UNREGISTER:
		return chat_msgid_canonical(op->ref, msgid) == 0 && strcmp(op->ref, msgid) == 0 ? 0 : -1;
	default:
		return -1;
	}
}

int chat_op_valid(const struct op *op_in)
{
	struct op op = op_view(op_in);
	char msgid[OP_MSGID_MAX];
	return op_check(&op, msgid);
}

char *chat_room_history_key(const char *name)
{
	return chat_casefold(name);
}

char *chat_dm_history_key(const char *a, const char *b)
{
	char *x = chat_casefold(a), *y = chat_casefold(b);
	int swap = strcmp(x, y) > 0;
	char *key = xasprintf("@%s %s", swap ? y : x, swap ? x : y);
	free(x);
	free(y);
	return key;
}

char *chat_feed_history_key(const char *person)
{
	char *fold = chat_casefold(person), *key = xasprintf("~%s", fold);
	free(fold);
	return key;
}

char *chat_history_key(const struct op *op_in)
{
	struct op op = op_view(op_in);
	char *key = NULL;
	if (op.kind == OP_MSG) {
		key = chat_room_history_key(op.target);
	} else if (op.kind == OP_DM) {
		char *a = chat_person(op.author, op.account), *b = chat_person(op.target, op.ref);
		key = chat_dm_history_key(a, b);
		free(a);
		free(b);
	} else if (op.kind == OP_POST) {
		char *p = chat_person(op.author, op.account);
		key = chat_feed_history_key(p);
		free(p);
	}
	return key;
}

/* Records op as applied. Returns 1 if it was new, 0 if already applied. */
static int mark_applied(struct chat *c, const struct op *op)
{
	struct applied_id id = {op->stream.incarnation, op->stream.origin, op->stream.boot};
	struct applied *a;
	HASH_FIND(hh, c->applied, &id, sizeof id, a);
	if (!a) {
		a = xcalloc(1, sizeof *a);
		a->id = id;
		HASH_ADD(hh, c->applied, id, sizeof id, a);
	}
	if (!seqset_add(&a->seqs, op->seq))
		return 0;
	c->op_count++;
	if (op->lts > c->max_lts)
		c->max_lts = op->lts;
	digest_add_op(c, op);
	return 1;
}

/* Replaces *spelling by name (and *by by op's key) if op's key is lower than
 * *by. Returns 1 if it did. */
static int respell(char **spelling, struct op_key *by, const char *name, const struct op *op)
{
	struct op_key k = op_key_of(op);
	if (op_key_cmp(&k, by) >= 0)
		return 0;
	free(*spelling);
	*spelling = xstrdup(name);
	*by = k;
	return 1;
}

/* ---- users ---- */

static struct user *user_find(const struct chat *c, const char *nick)
{
	char *key = chat_casefold(nick);
	struct user *u;
	HASH_FIND_STR(c->users, key, u);
	free(key);
	return u;
}

/* Makes op's author known. Returns 1 if they were not known before. */
static int user_register(struct chat *c, const struct op *op)
{
	struct user *u = user_find(c, op->author);
	if (u) {
		respell(&u->nick, &u->spelled_by, op->author, op);
		return 0;
	}
	u = xcalloc(1, sizeof *u);
	u->key = chat_casefold(op->author);
	u->nick = xstrdup(op->author);
	u->spelled_by = op_key_of(op);
	HASH_ADD_KEYPTR(hh, c->users, u->key, strlen(u->key), u);
	return 1;
}

int chat_user_known(const struct chat *c, const char *nick)
{
	return user_find(c, nick) != NULL;
}

const char *chat_user_name(const struct chat *c, const char *nick)
{
	struct user *u = user_find(c, nick);
	return u ? u->nick : NULL;
}

static int user_cmp(const void *a, const void *b)
{
	return strcmp((*(struct user *const *)a)->key, (*(struct user *const *)b)->key);
}

struct user **chat_users_sorted(const struct chat *c, size_t *n)
{
	struct chat_sorted *s = c->sorted;
	if (s->nusers != HASH_COUNT(c->users)) {
		free(s->users);
		CHAT_HASH_SORTED(c->users, struct user, user_cmp, s->users, s->nusers);
	}
	*n = s->nusers;
	return s->users;
}

void chat_users_each(const struct chat *c, void (*fn)(const char *nick, void *arg), void *arg)
{
	size_t n;
	struct user **all = chat_users_sorted(c, &n);
	for (size_t i = 0; i < n; i++)
		fn(all[i]->nick, arg);
}

/* ---- rooms ---- */

static struct room_entry *room_entry_find(const struct chat *c, const char *name)
{
	char *key = chat_casefold(name);
	struct room_entry *r;
	HASH_FIND_STR(c->rooms, key, r);
	free(key);
	return r;
}

/* Makes the room op->target names known, or lets op respell it (or, an
 * OP_ROOM, found it). Returns the room; sets eff->room_created if it was not
 * known before, and CHAT_FOUNDER_CHANGED with the former founder if op
 * founded it instead. */
static struct room_entry *room_register(struct chat *c, const struct op *op, struct chat_effect *eff)
{
	struct room_entry *r = room_entry_find(c, op->target);
	eff->room_created = r == NULL;
	if (r) {
		if (respell(&r->room.name, &r->named_by, op->target, op))
			r->room.created_ms = op->wall_ms;
		if (op->kind == OP_ROOM && modes_founded(r, op, eff->founder_was, sizeof eff->founder_was))
			eff->change = CHAT_FOUNDER_CHANGED;
		return r;
	}
	struct op_key k = op_key_of(op);
	r = room_new(c, op->target, &k, op->wall_ms);
	if (op->kind == OP_ROOM)
		modes_founded(r, op, NULL, 0);
	return r;
}

struct room_entry *room_new(struct chat *c, const char *name, const struct op_key *named_by,
			    int64_t created_ms)
{
	struct room_entry *r = xcalloc(1, sizeof *r);
	r->key = chat_casefold(name);
	r->named_by = *named_by;
	r->room.name = xstrdup(name);
	r->room.topic = xstrdup("");
	r->room.topic_author = xstrdup("");
	r->room.created_ms = created_ms;
	r->room.history = history_new(c, &r->room);
	modes_init(r);
	HASH_ADD_KEYPTR(hh, c->rooms, r->key, strlen(r->key), r);
	return r;
}

/* Makes op the room's topic if it is the highest-keyed OP_TOPIC so far.
 * Returns 1 if it did. */
static int topic_apply(struct room_entry *r, const struct op *op)
{
	struct op_key k = op_key_of(op);
	if (r->has_topic && op_key_cmp(&k, &r->topic_by) <= 0)
		return 0;
	free(r->room.topic);
	free(r->room.topic_author);
	r->room.topic = xstrdup(op->body);
	r->room.topic_author = xstrdup(op->author);
	r->room.topic_ms = op->wall_ms;
	r->topic_by = k;
	r->has_topic = 1;
	return 1;
}

struct chat_room *chat_room_find(const struct chat *c, const char *name)
{
	struct room_entry *r = room_entry_find(c, name);
	return r ? &r->room : NULL;
}

size_t chat_room_count(const struct chat *c)
{
	return HASH_COUNT(c->rooms);
}

static int room_cmp(const void *a, const void *b)
{
	return strcmp((*(struct room_entry *const *)a)->key, (*(struct room_entry *const *)b)->key);
}

struct room_entry **chat_rooms_sorted(const struct chat *c, size_t *n)
{
	struct chat_sorted *s = c->sorted;
	if (s->nrooms != HASH_COUNT(c->rooms)) {
		free(s->rooms);
		CHAT_HASH_SORTED(c->rooms, struct room_entry, room_cmp, s->rooms, s->nrooms);
	}
	*n = s->nrooms;
	return s->rooms;
}

void chat_rooms_each(const struct chat *c, void (*fn)(struct chat_room *room, void *arg), void *arg)
{
	size_t n;
	struct room_entry **all = chat_rooms_sorted(c, &n);
	for (size_t i = 0; i < n; i++)
		fn(&all[i]->room, arg);
}

/* ---- DM conversations ---- */

char *conv_key(const char *a, const char *b, size_t *len, char **fa, char **fb)
{
	char *x = chat_casefold(a), *y = chat_casefold(b);
	if (strcmp(x, y) > 0) {
		char *t = x;
		x = y;
		y = t;
	}
	size_t lx = strlen(x), ly = strlen(y);
	char *key = xmalloc(lx + 1 + ly + 1);
	memcpy(key, x, lx + 1);
	memcpy(key + lx + 1, y, ly + 1);
	*len = lx + 1 + ly;
	*fa = x;
	*fb = y;
	return key;
}

static struct conv *conv_find(const struct chat *c, const char *a, const char *b)
{
	size_t len;
	char *fa, *fb;
	char *key = conv_key(a, b, &len, &fa, &fb);
	struct conv *cv;
	HASH_FIND(hh, c->convs, key, len, cv);
	free(key);
	free(fa);
	free(fb);
	return cv;
}

/* The side of cv that is not the (casefolded) person fold. */
static int conv_side_of_peer(const struct conv *cv, const char *fold)
{
	return strcmp(cv->fold[0], fold) == 0 ? 1 : 0;
}

/* Adds cv to the conversations of the casefolded person, kept sorted by peer. */
static void party_add(struct chat *c, const char *fold, struct conv *cv)
{
	struct party *p;
	HASH_FIND_STR(c->parties, fold, p);
	if (!p) {
		p = xcalloc(1, sizeof *p);
		p->key = xstrdup(fold);
		HASH_ADD_KEYPTR(hh, c->parties, p->key, strlen(p->key), p);
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->convs = xrealloc(p->convs, p->cap * sizeof *p->convs);
	}
	const char *peer = cv->fold[conv_side_of_peer(cv, fold)];
	size_t i = p->n;
	while (i > 0 && strcmp(p->convs[i - 1]->fold[conv_side_of_peer(p->convs[i - 1], fold)], peer) > 0)
		i--;
	memmove(p->convs + i + 1, p->convs + i, (p->n - i) * sizeof *p->convs);
	p->convs[i] = cv;
	p->n++;
}

/* The conversation of an OP_DM (the persons of its author and of its
 * recipient: target and ref), made if new; op may respell its two names. */
static struct conv *conv_register(struct chat *c, const struct op *op)
{
	size_t len;
	char *f0, *f1;
	char *fa = chat_person(op->author, op->account);
	char *fb = chat_person(op->target, op->ref);
	char *key = conv_key(fa, fb, &len, &f0, &f1);
	int author_first = strcmp(fa, f0) == 0;
	const char *n0 = author_first ? op->author : op->target;
	const char *n1 = author_first ? op->target : op->author;
	struct conv *cv;
	free(fa);
	free(fb);
	HASH_FIND(hh, c->convs, key, len, cv);
	if (cv) {
		free(key);
		free(f0);
		free(f1);
		if (respell(&cv->name[0], &cv->named_by, n0, op)) {
			free(cv->name[1]);
			cv->name[1] = xstrdup(n1);
		}
		return cv;
	}
	struct op_key k = op_key_of(op);
	return conv_new(c, key, len, f0, f1, n0, n1, &k);
}

struct conv *conv_new(struct chat *c, char *key, size_t len, char *f0, char *f1, const char *n0,
		      const char *n1, const struct op_key *named_by)
{
	struct conv *cv = xcalloc(1, sizeof *cv);
	cv->key = key;
	cv->keylen = len;
	cv->fold[0] = f0;
	cv->fold[1] = f1;
	cv->name[0] = xstrdup(n0);
	cv->name[1] = xstrdup(n1);
	cv->named_by = *named_by;
	cv->history = history_new(c, NULL);
	HASH_ADD_KEYPTR(hh, c->convs, cv->key, cv->keylen, cv);
	party_add(c, f0, cv);
	if (strcmp(f0, f1) != 0)
		party_add(c, f1, cv);
	return cv;
}

struct chat_history *chat_dm_history(const struct chat *c, const char *a, const char *b)
{
	struct conv *cv = conv_find(c, a, b);
	return cv ? cv->history : NULL;
}

void chat_dm_each(const struct chat *c, const char *person,
		  void (*fn)(const char *peer, struct chat_history *h, void *arg), void *arg)
{
	char *fold = chat_casefold(person);
	struct party *p;
	HASH_FIND_STR(c->parties, fold, p);
	for (size_t i = 0; p && i < p->n; i++) {
		struct conv *cv = p->convs[i];
		fn(cv->name[conv_side_of_peer(cv, fold)], cv->history, arg);
	}
	free(fold);
}

/* ---- messages and likes ---- */

/* Counts (and maybe caches) an OP_MSG/OP_DM/OP_POST into h. */
static void msg_store(const struct op *op, const struct chat_fact *fact, struct chat_history *h,
		      struct chat_effect *eff)
{
	int repeat = fact && fact->repeat && !fact->loaded;
	eff->change = repeat && !fact->line ? CHAT_MSG_REPEAT : CHAT_MSG_NEW;
	eff->displaced = repeat && fact->line;
	if (repeat)
		eff->line = fact->other;
	history_add(h, op, fact, eff);
}

/* An OP_LIKE/OP_UNLIKE of the message msgid (canonical): its effect is what
 * the store found (fact); the cached message's count follows it. */
static void like_apply(struct chat *c, const char *msgid, const struct chat_fact *fact,
		       struct chat_effect *eff)
{
	struct msg_entry *m = history_cached_msg(c, msgid);
	eff->likes = -1;
	if (!fact || (fact->known && fact->own)) {
		eff->change = CHAT_UNCHANGED;
		return;
	}
	if (!fact->known) {
		eff->change = CHAT_LIKE_PENDING;
		return;
	}
	eff->change = fact->changed ? CHAT_LIKES_CHANGED : CHAT_LIKE_SAME;
	eff->likes = fact->likes;
	if (m) {
		m->msg.likes = fact->likes;
		eff->msg = &m->msg;
		eff->history = m->history;
	}
}

/* ---- apply ---- */

/* Whether an op of this kind names the room in its target (if '#'). */
static int kind_names_room(uint8_t kind)
{
	return kind == OP_ROOM || kind == OP_MSG || kind == OP_TOPIC || kind == OP_LIKE ||
	       kind == OP_UNLIKE || kind == OP_MODE || kind == OP_KICK || kind == OP_INVITE;
}

/* Applies a valid, not yet applied op; see chat_apply. */
static void apply_new(struct chat *c, const struct op *op, const char *like_msgid,
		      const struct chat_fact *fact, struct chat_effect *eff)
{
	struct room_entry *r = NULL;
	int user_new = user_register(c, op);
	if (kind_names_room(op->kind) && is_room_name(op->target)) {
		r = room_register(c, op, eff);
		eff->room = &r->room;
	}
	switch (op->kind) {
	case OP_USER:
		eff->change = user_new ? CHAT_USER_NEW : CHAT_UNCHANGED;
		break;
	case OP_ROOM:
		if (eff->change != CHAT_FOUNDER_CHANGED)
			eff->change = eff->room_created ? CHAT_ROOM_NEW : CHAT_UNCHANGED;
		eff->history = r->room.history;
		break;
	case OP_MSG:
		msg_store(op, fact, r->room.history, eff);
		break;
	case OP_DM:
		msg_store(op, fact, conv_register(c, op)->history, eff);
		break;
	case OP_LIKE:
	case OP_UNLIKE:
		like_apply(c, like_msgid, fact && !fact->loaded ? fact : NULL, eff);
		break;
	case OP_TOPIC:
		eff->change = topic_apply(r, op) ? CHAT_TOPIC_CHANGED : CHAT_UNCHANGED;
		break;
	case OP_FOLLOW:
	case OP_UNFOLLOW:
		eff->change = follows_apply(c, op) ? CHAT_FOLLOW_CHANGED : CHAT_UNCHANGED;
		break;
	case OP_POST: {
		char *person = chat_person(op->author, op->account);
		msg_store(op, fact, feeds_posts(c, person), eff);
		free(person);
		break;
	}
	case OP_REGISTER:
	case OP_PASSWORD:
	case OP_UNREGISTER:
		eff->change = accounts_apply(c, op) ? CHAT_ACCOUNT_CHANGED : CHAT_UNCHANGED;
		break;
	case OP_MODE:
	case OP_KICK:
	case OP_INVITE:
		eff->change = modes_apply(r, op, &eff->mode_changes);
		break;
	}
}

/*
 * Malformed: unknown kind; seq 0; an author that is not a valid nick; a string
 * field longer than CHAT_FIELD_MAX or not UTF-8; OP_MSG/OP_ROOM/OP_TOPIC
 * whose target is not "#..."; OP_DM, OP_FOLLOW or OP_UNFOLLOW whose target is
 * not a valid nick;
 * OP_LIKE/OP_UNLIKE whose ref is not a msgid; OP_POST whose target is not
 * CHAT_TIMELINE; OP_REGISTER or OP_PASSWORD with an empty body (verifier);
 * OP_PASSWORD/OP_UNREGISTER whose ref is not a canonical msgid. Such an op is not even recorded as applied. NULL strings in op
 * read as "". A like's ref may be any spelling op_msgid_parse accepts: it is
 * brought to op_msgid's canonical form.
 */
int chat_apply(struct chat *c, const struct op *op_in, const struct chat_fact *fact,
	       struct chat_effect *eff)
{
	struct op op = op_view(op_in);
	char like_msgid[OP_MSGID_MAX] = "";
	memset(eff, 0, sizeof *eff);
	eff->likes = -1;
	if (op_check(&op, like_msgid) < 0)
		return -1;
	if (mark_applied(c, &op))
		apply_new(c, &op, like_msgid, fact, eff);
	return 0;
}

uint64_t chat_max_lts(const struct chat *c)
{
	return c->max_lts;
}

uint64_t chat_op_count(const struct chat *c)
{
	return c->op_count;
}

/* ---- freeing ---- */

static void free_rooms(struct chat *c)
{
	struct room_entry *r, *tmp;
	HASH_ITER(hh, c->rooms, r, tmp) {
		HASH_DEL(c->rooms, r);
		history_free(r->room.history);
		modes_free(r);
		free(r->room.name);
		free(r->room.topic);
		free(r->room.topic_author);
		free(r->key);
		free(r);
	}
}

static void free_convs(struct chat *c)
{
	struct conv *cv, *ctmp;
	HASH_ITER(hh, c->convs, cv, ctmp) {
		HASH_DEL(c->convs, cv);
		history_free(cv->history);
		for (int i = 0; i < 2; i++) {
			free(cv->fold[i]);
			free(cv->name[i]);
		}
		free(cv->key);
		free(cv);
	}
	struct party *p, *ptmp;
	HASH_ITER(hh, c->parties, p, ptmp) {
		HASH_DEL(c->parties, p);
		free(p->convs);
		free(p->key);
		free(p);
	}
}

static void free_users_applied(struct chat *c)
{
	struct user *u, *utmp;
	HASH_ITER(hh, c->users, u, utmp) {
		HASH_DEL(c->users, u);
		free(u->key);
		free(u->nick);
		free(u);
	}
	struct applied *a, *atmp;
	HASH_ITER(hh, c->applied, a, atmp) {
		HASH_DEL(c->applied, a);
		seqset_free(&a->seqs);
		free(a);
	}
}

void chat_clear(struct chat *c)
{
	free_rooms(c);
	free_convs(c);
	free_users_applied(c);
	feeds_free_all(c);
	accounts_free_all(c);
	sethash_free(&c->set_digest);
	free(c->sorted->users);
	free(c->sorted->rooms);
	memset(c->sorted, 0, sizeof *c->sorted);
	c->max_lts = 0;
	c->op_count = 0;
}

void chat_free(struct chat *c)
{
	if (!c)
		return;
	chat_clear(c);
	free(c->sorted);
	free(c);
}
