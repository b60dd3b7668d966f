/*
 * msgindex.c: the message index (msgindex.h).
 *
 * The ops stored since `upto` (the tail) are also kept here in RAM, as
 * their index entries (history key, ckey, rowid): an append adds the
 * entries of its new messages, a bulk writes them all, sorted, into msgs,
 * and a read takes the matching entries of the tail besides its range of
 * msgs. A transaction that is rolled back leaves the tail to be read again
 * from the database (msgindex_reload). Each statement is prepared at its
 * first use, once.
 */
#include "msgindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utarray.h>

#include "../chat/chat.h"
#include "../common/buf.h"
#include "../common/sethash.h"
#include "../common/util.h"

#define ID_BYTES (OP_KEY_BYTES - 8) /* a key without its lts: stream and seq */
#define CHUNK 65536                 /* ops read per step of a bulk */
#define PUT_MANY 64                 /* entries per multi-row insert */

enum stmt {
	ST_GET_STATE,
	ST_PUT_STATE,
	ST_COUNT_LIKES,
	ST_TAIL,
	ST_PUT_ENTRY,
	ST_PUT_ENTRIES,
	ST_GET_UPTO,
	ST_SET_UPTO,
	ST_MAX_ROW,
	ST_OP_AT,
	ST_OP_OF,
	ST_SELECT_ASC,
	ST_SELECT_DESC,
	ST_CID_GET,
	ST_CID_PUT,
	ST_DROP_ENTRY,
	ST_COUNT
};

#define OP_COLUMNS                                                             \
	"o.origin, o.incarnation, o.boot, o.seq, o.lts, o.wall_ms, o.kind, o.flags," \
	" o.target, o.author, o.body, o.ref, o.account, o.tags"
#define SELECT_MSGS                                                            \
	"SELECT " OP_COLUMNS " FROM msgs m JOIN ops o ON o.rowid = m.op"          \
	" WHERE m.hist = ?1 AND m.ckey > ?2 AND m.ckey < ?3"

static const char *const SQL[ST_COUNT] = {
	[ST_GET_STATE] = "SELECT liked, by FROM likes WHERE id = ?1 AND person = ?2",
	[ST_PUT_STATE] = "INSERT OR REPLACE INTO likes(id, person, liked, by) VALUES(?1, ?2, ?3, ?4)",
	[ST_COUNT_LIKES] = "SELECT count(*) FROM likes WHERE id = ?1 AND liked = 1 AND person <> ?2",
	[ST_TAIL] = "SELECT " OP_COLUMNS ", o.rowid FROM ops o WHERE o.rowid > ?1"
		    " ORDER BY o.rowid LIMIT ?2",
	[ST_PUT_ENTRY] = "INSERT OR IGNORE INTO msgs(hist, ckey, op) VALUES(?1, ?2, ?3)",
	[ST_PUT_ENTRIES] = NULL, /* PUT_MANY rows: made by stmt() */
	[ST_GET_UPTO] = "SELECT value FROM meta WHERE key = 'indexed'",
	[ST_SET_UPTO] = "INSERT OR REPLACE INTO meta(key, value) VALUES('indexed', ?1)",
	[ST_MAX_ROW] = "SELECT max(rowid) FROM ops",
	[ST_OP_AT] = "SELECT " OP_COLUMNS " FROM ops o WHERE o.rowid = ?1",
	[ST_OP_OF] = "SELECT " OP_COLUMNS " FROM ops o"
		     " WHERE o.origin = ?1 AND o.incarnation = ?2 AND o.boot = ?3 AND o.seq = ?4",
	[ST_SELECT_ASC] = SELECT_MSGS " ORDER BY m.ckey LIMIT ?4",
	[ST_SELECT_DESC] = SELECT_MSGS " ORDER BY m.ckey DESC LIMIT ?4",
	[ST_CID_GET] = "SELECT hist, ckey, first FROM cids WHERE person = ?1 AND cid = ?2",
	[ST_CID_PUT] = "INSERT OR REPLACE INTO cids(person, cid, hist, ckey, first) VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_DROP_ENTRY] = "DELETE FROM msgs WHERE hist = ?1 AND ckey = ?2",
};

/* A digest's pass (prepared for it, on whichever connection it reads). */
#define DIGEST_MSGS_SQL "SELECT m.hist, " OP_COLUMNS " FROM msgs m JOIN ops o ON o.rowid = m.op"
#define DIGEST_LIKES_SQL "SELECT id, person, liked, by FROM likes"

/* One message's index entry. */
struct entry {
	char *hist;
	uint8_t ckey[OP_KEY_BYTES];
	sqlite3_int64 row;
};

static void entry_free(void *p)
{
	free(((struct entry *)p)->hist);
}

static const UT_icd entry_icd = {sizeof(struct entry), NULL, NULL, entry_free};

struct msgindex {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	sqlite3_int64 lag;         /* ops msgs may lag behind */
	sqlite3_int64 upto;        /* every op up to this rowid is in msgs */
	sqlite3_int64 last;        /* the highest rowid stored */
	UT_array *tail;            /* entries of the messages after upto */
};

/* Ends a use of st: resets it and clears its bindings. Returns rc, with
 * SQLITE_DONE and SQLITE_ROW (the last step's) as SQLITE_OK. */
static int done(sqlite3_stmt *st, int rc)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Runs st (no row wanted) and ends it. */
static int run(sqlite3_stmt *st)
{
	return done(st, sqlite3_step(st));
}

/* Statement i, prepared at its first use (a store opened for a moment, as
 * the simulation's are, prepares few); NULL if SQLite cannot. */
static sqlite3_stmt *stmt(struct msgindex *x, enum stmt i)
{
	if (x->st[i])
		return x->st[i];
	struct buf many = {0};
	if (!SQL[i]) { /* ST_PUT_ENTRIES */
		buf_puts(&many, "INSERT OR IGNORE INTO msgs(hist, ckey, op) VALUES(?, ?, ?)");
		for (int k = 1; k < PUT_MANY; k++)
			buf_puts(&many, ", (?, ?, ?)");
	}
	if (sqlite3_prepare_v3(x->db, SQL[i] ? SQL[i] : many.data, -1, SQLITE_PREPARE_PERSISTENT, &x->st[i],
			       NULL) != SQLITE_OK)
		x->st[i] = NULL;
	buf_free(&many);
	return x->st[i];
}

static void bind_blob(sqlite3_stmt *st, int i, const uint8_t *b, int n)
{
	sqlite3_bind_blob(st, i, b, n, SQLITE_STATIC);
}

/* Makes e the entry of op at row if op is a message chat_apply applies.
 * Returns 1 if it did. */
static int entry_of(const struct op *op, sqlite3_int64 row, struct entry *e)
{
	if ((op->kind != OP_MSG && op->kind != OP_DM && op->kind != OP_POST) || chat_op_valid(op) < 0)
		return 0;
	struct op_key k = op_key_of(op);
	op_key_bytes(&k, e->ckey);
	e->hist = chat_history_key(op);
	e->row = row;
	return 1;
}

static int put_like(struct msgindex *x, const struct op *op, struct chat_fact *f);

/* ---- exactly-once sends: a client id's line (cids) ---- */

/* The line recorded for a client id. */
struct cid_line {
	int found;
	char *hist;
	uint8_t ckey[OP_KEY_BYTES];
	sqlite3_int64 first;
};

/* Reads person's row for cid into *l (l->hist: a new string when found). */
static int cid_get(struct msgindex *x, const char *person, const char *cid, struct cid_line *l)
{
	sqlite3_stmt *st = stmt(x, ST_CID_GET);
	memset(l, 0, sizeof *l);
	if (!st)
		return SQLITE_ERROR;
	sqlite3_bind_text(st, 1, person, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == OP_KEY_BYTES) {
		l->found = 1;
		l->hist = xstrdup((const char *)sqlite3_column_text(st, 0));
		memcpy(l->ckey, sqlite3_column_blob(st, 1), OP_KEY_BYTES);
		l->first = sqlite3_column_int64(st, 2);
	}
	return done(st, rc);
}

/* The same for op's person. */
static int cid_get_of(struct msgindex *x, const struct op *op, const char *cid, struct cid_line *l)
{
	char *person = chat_person(op->author, op->account);
	int rc = cid_get(x, person, cid, l);
	free(person);
	return rc;
}

/* Takes the entry (hist, ckey) out of the index: out of the tail if there,
 * else out of msgs. */
static int drop_entry(struct msgindex *x, const char *hist, const uint8_t ckey[OP_KEY_BYTES])
{
	for (size_t i = 0; i < utarray_len(x->tail); i++) {
		struct entry *e = utarray_eltptr(x->tail, i);
		if (strcmp(e->hist, hist) == 0 && memcmp(e->ckey, ckey, OP_KEY_BYTES) == 0) {
			utarray_erase(x->tail, i, 1);
			return SQLITE_OK;
		}
	}
	sqlite3_stmt *st = stmt(x, ST_DROP_ENTRY);
	if (!st)
		return SQLITE_ERROR;
	sqlite3_bind_text(st, 1, hist, -1, SQLITE_STATIC);
	bind_blob(st, 2, ckey, OP_KEY_BYTES);
	return run(st);
}

/*
 * Message op (its entry e) carries client id cid: the first of its person's
 * messages with cid is recorded as the line; a later one is a repeat (*f, if
 * not NULL), and the line only if it sorts before the recorded one, whose
 * entry then leaves the index. *line gets whether e is the line.
 */
static int client_id_seen(struct msgindex *x, const struct op *op, const char *cid, const struct entry *e,
			  struct chat_fact *f, int *line)
{
	char *person = chat_person(op->author, op->account);
	struct cid_line l;
	int rc = cid_get(x, person, cid, &l);
	*line = !l.found || memcmp(e->ckey, l.ckey, OP_KEY_BYTES) < 0;
	if (rc == SQLITE_OK && l.found && f) {
		f->repeat = 1;
		f->line = (uint8_t)*line;
		f->other = op_key_of_bytes(l.ckey);
	}
	if (rc == SQLITE_OK && l.found && *line)
		rc = drop_entry(x, l.hist, l.ckey);
	if (rc == SQLITE_OK && *line) { /* e is the line: recorded as such */
		sqlite3_stmt *st = stmt(x, ST_CID_PUT);
		if (!st) {
			rc = SQLITE_ERROR;
		} else {
			sqlite3_bind_text(st, 1, person, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, cid, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, e->hist, -1, SQLITE_STATIC);
			bind_blob(st, 4, e->ckey, OP_KEY_BYTES);
			sqlite3_bind_int64(st, 5, l.found ? l.first : e->row);
			rc = run(st);
		}
	}
	free(l.hist);
	free(person);
	return rc;
}

/* Whether message op (entry e) with client id cid is its id's line now (by
 * cids, as appends left it): *line. */
static int client_id_is_line(struct msgindex *x, const struct op *op, const char *cid, const struct entry *e,
			     int *line)
{
	struct cid_line l;
	int rc = cid_get_of(x, op, cid, &l);
	*line = l.found && memcmp(e->ckey, l.ckey, OP_KEY_BYTES) == 0;
	free(l.hist);
	return rc;
}

int msgindex_repeat(struct msgindex *x, const struct op *op, sqlite3_int64 row, int *repeat)
{
	char cid[OP_CID_MAX];
	*repeat = 0;
	if (!op_client_id(op, cid) || chat_op_valid(op) < 0)
		return SQLITE_OK;
	struct cid_line l;
	int rc = cid_get_of(x, op, cid, &l);
	*repeat = l.found && l.first != row;
	free(l.hist);
	return rc;
}

/* How read_tail takes the ops it reads. */
enum tail_read {
	TAIL_RELOAD,  /* their appends kept likes and cids: a message is indexed if it is a line */
	TAIL_REBUILD, /* an upgrade: keep likes and cids as their appends would have */
};

/* Reads the tail's ops after upto (at most limit of them) into x->tail, as
 * how says; *n gets how many ops were read, *top the last rowid. */
static int read_tail(struct msgindex *x, sqlite3_int64 limit, enum tail_read how, sqlite3_int64 *n,
		     sqlite3_int64 *top)
{
	sqlite3_stmt *st = stmt(x, ST_TAIL);
	int rc;
	*n = 0;
	if (!st)
		return SQLITE_ERROR;
	sqlite3_bind_int64(st, 1, x->upto);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct op op;
		struct entry e;
		char cid[OP_CID_MAX];
		int line = 1;
		store_sqlite_row_op(st, &op);
		*top = sqlite3_column_int64(st, 14);
		(*n)++;
		if (entry_of(&op, *top, &e)) {
			int err = !op_client_id(&op, cid) ? SQLITE_OK
				  : how == TAIL_REBUILD   ? client_id_seen(x, &op, cid, &e, NULL, &line)
							  : client_id_is_line(x, &op, cid, &e, &line);
			if (err == SQLITE_OK && line)
				utarray_push_back(x->tail, &e);
			else
				free(e.hist);
			if (err != SQLITE_OK) {
				rc = err;
				break;
			}
		} else if (how == TAIL_REBUILD && (op.kind == OP_LIKE || op.kind == OP_UNLIKE) &&
			   chat_op_valid(&op) == 0 && (rc = put_like(x, &op, NULL)) != SQLITE_OK) {
			break;
		}
	}
	return done(st, rc);
}

int msgindex_reload(struct msgindex *x)
{
	sqlite3_stmt *st = stmt(x, ST_GET_UPTO);
	sqlite3_int64 n, top = 0;
	if (!st)
		return SQLITE_ERROR;
	int rc = sqlite3_step(st);
	x->upto = rc == SQLITE_ROW ? atoll((const char *)sqlite3_column_text(st, 0)) : 0;
	if ((rc = done(st, rc)) != SQLITE_OK)
		return rc;
	if (!(st = stmt(x, ST_MAX_ROW)))
		return SQLITE_ERROR;
	rc = sqlite3_step(st);
	x->last = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if ((rc = done(st, rc)) != SQLITE_OK)
		return rc;
	utarray_clear(x->tail);
	return read_tail(x, INT64_MAX, TAIL_RELOAD, &n, &top);
}

sqlite3_int64 msgindex_last(const struct msgindex *x)
{
	return x->last;
}

struct msgindex *msgindex_new(sqlite3 *db, const char *path, int lag, int reindex, char **msg)
{
	struct msgindex *x = xcalloc(1, sizeof *x);
	x->db = db;
	x->lag = lag > 0 ? lag : MSGINDEX_LAG;
	utarray_new(x->tail, &entry_icd);
	if ((reindex ? msgindex_catch_up(x, 1) : msgindex_reload(x)) != SQLITE_OK) {
		*msg = xasprintf("%s: %s the message index: %s", path, reindex ? "build" : "read",
				 sqlite3_errmsg(db));
		msgindex_free(x);
		return NULL;
	}
	return x;
}

void msgindex_free(struct msgindex *x)
{
	if (!x)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(x->st[i]);
	utarray_free(x->tail);
	free(x);
}

static int find_message(struct msgindex *x, const char *msgid, struct op *msg, char **hist);
static int count_likes(struct msgindex *x, const struct op *op, uint32_t *likes);

/* The fact of a like or unlike by liker that changed (or not) the liker's
 * state: whether its message is stored, is the liker's own, and the
 * message's like count now. */
static int like_fact(struct msgindex *x, const struct op *op, const char *liker, int changed,
		     struct chat_fact *f)
{
	struct op msg;
	char *hist;
	int rc = find_message(x, op->ref, &msg, &hist);
	if (rc == SQLITE_NOTFOUND)
		return SQLITE_OK; /* a placeholder: not known */
	if (rc != SQLITE_OK)
		return rc;
	free(hist);
	char *author = chat_person(msg.author, msg.account);
	f->known = 1;
	f->own = strcmp(author, liker) == 0;
	f->changed = (uint8_t)changed;
	free(author);
	rc = count_likes(x, &msg, &f->likes);
	op_clear(&msg);
	return rc;
}

/* person's like state of the message of id (ID_BYTES) into *liked (0 when
 * none); with by (an OP_KEY_BYTES key), *newer: 1 if by would set it (no
 * state, or one set by a smaller key). */
static int get_state(struct msgindex *x, const uint8_t *id, const char *person, const uint8_t *by,
		     int *liked, int *newer)
{
	sqlite3_stmt *st = stmt(x, ST_GET_STATE);
	int rc;
	*liked = 0;
	if (newer)
		*newer = 1;
	if (!st)
		return SQLITE_ERROR;
	bind_blob(st, 1, id, ID_BYTES);
	sqlite3_bind_text(st, 2, person, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*liked = sqlite3_column_int(st, 0) != 0;
		if (newer)
			*newer = sqlite3_column_bytes(st, 1) == OP_KEY_BYTES &&
				 memcmp(by, sqlite3_column_blob(st, 1), OP_KEY_BYTES) > 0;
	}
	return done(st, rc);
}

/* A like or unlike: the liker's state of the message its ref names, if
 * op's key is greater than the state's; then its fact into f (if not
 * NULL). */
static int put_like(struct msgindex *x, const struct op *op, struct chat_fact *f)
{
	struct op_key target = {0}, k = op_key_of(op);
	uint8_t id[OP_KEY_BYTES], by[OP_KEY_BYTES];
	if (op_msgid_parse(op->ref, &target.stream, &target.seq) < 0)
		return SQLITE_OK; /* chat_op_valid lets no such op through */
	op_key_bytes(&target, id);
	op_key_bytes(&k, by);
	int newer, before, liked = op->kind == OP_LIKE;
	char *person = chat_person(op->author, op->account);
	int rc = get_state(x, id + 8, person, by, &before, &newer);
	sqlite3_stmt *st = NULL;
	if (rc == SQLITE_OK && newer && !(st = stmt(x, ST_PUT_STATE)))
		rc = SQLITE_ERROR;
	if (rc == SQLITE_OK && newer) {
		bind_blob(st, 1, id + 8, ID_BYTES);
		sqlite3_bind_text(st, 2, person, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, liked);
		bind_blob(st, 4, by, OP_KEY_BYTES);
		rc = run(st);
	}
	if (rc == SQLITE_OK && f)
		rc = like_fact(x, op, person, newer && liked != before, f);
	free(person);
	return rc;
}

int msgindex_added(struct msgindex *x, const struct op *op, sqlite3_int64 row, struct chat_fact *f)
{
	struct entry e;
	char cid[OP_CID_MAX];
	x->last = row;
	if (entry_of(op, row, &e)) {
		int line = 1, rc = op_client_id(op, cid) ? client_id_seen(x, op, cid, &e, f, &line) : SQLITE_OK;
		if (rc == SQLITE_OK && line)
			utarray_push_back(x->tail, &e);
		else
			free(e.hist);
		return rc == SQLITE_OK && line && f ? count_likes(x, op, &f->likes) : rc;
	}
	if ((op->kind == OP_LIKE || op->kind == OP_UNLIKE) && chat_op_valid(op) == 0)
		return put_like(x, op, f);
	return SQLITE_OK;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->hist, y->hist);
	return c ? c : memcmp(x->ckey, y->ckey, OP_KEY_BYTES);
}

/* Writes the tail's entries into msgs, sorted, and upto = top. */
static int write_tail(struct msgindex *x, sqlite3_int64 top)
{
	sqlite3_stmt *st;
	char upto[32];
	int rc = SQLITE_OK;
	size_t n = utarray_len(x->tail), i = 0;
	if (n) /* qsort wants an array, even of none */
		utarray_sort(x->tail, entry_cmp);
	while (rc == SQLITE_OK && i < n) { /* PUT_MANY rows a statement while there are */
		size_t k = n - i >= PUT_MANY ? PUT_MANY : 1;
		if (!(st = stmt(x, k > 1 ? ST_PUT_ENTRIES : ST_PUT_ENTRY)))
			return SQLITE_ERROR;
		for (size_t j = 0; j < k; j++, i++) {
			struct entry *e = utarray_eltptr(x->tail, i);
			sqlite3_bind_text(st, (int)(3 * j + 1), e->hist, -1, SQLITE_STATIC);
			bind_blob(st, (int)(3 * j + 2), e->ckey, OP_KEY_BYTES);
			sqlite3_bind_int64(st, (int)(3 * j + 3), e->row);
		}
		rc = run(st);
	}
	if (rc != SQLITE_OK)
		return rc;
	utarray_clear(x->tail);
	snprintf(upto, sizeof upto, "%lld", (long long)top);
	if (!(st = stmt(x, ST_SET_UPTO)))
		return SQLITE_ERROR;
	sqlite3_bind_text(st, 1, upto, -1, SQLITE_TRANSIENT);
	if ((rc = run(st)) == SQLITE_OK)
		x->upto = top;
	return rc;
}

int msgindex_catch_up(struct msgindex *x, int force)
{
	if (force) { /* an upgraded database: upto 0, nothing read yet */
		sqlite3_stmt *st = stmt(x, ST_MAX_ROW);
		if (!st)
			return SQLITE_ERROR;
		int rc = sqlite3_step(st);
		x->last = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		if ((rc = done(st, rc)) != SQLITE_OK)
			return rc;
	}
	if (x->last - x->upto < (force ? 1 : x->lag))
		return SQLITE_OK;
	if (!force) /* the tail is all in RAM */
		return write_tail(x, x->last);
	int rc = SQLITE_OK;
	utarray_clear(x->tail);
	while (rc == SQLITE_OK && x->upto < x->last) {
		sqlite3_int64 n, top = x->upto;
		rc = read_tail(x, CHUNK, TAIL_REBUILD, &n, &top);
		if (rc == SQLITE_OK)
			rc = write_tail(x, n < CHUNK ? x->last : top);
	}
	return rc;
}

/* The like count of the message op: its liked states, its author's not
 * counted. */
static int count_likes(struct msgindex *x, const struct op *op, uint32_t *likes)
{
	struct op_key k = op_key_of(op);
	uint8_t key[OP_KEY_BYTES];
	op_key_bytes(&k, key);
	sqlite3_stmt *st = stmt(x, ST_COUNT_LIKES);
	if (!st)
		return SQLITE_ERROR;
	char *author = chat_person(op->author, op->account);
	bind_blob(st, 1, key + 8, ID_BYTES);
	sqlite3_bind_text(st, 2, author, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	*likes = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(st, 0) : 0;
	free(author);
	return done(st, rc);
}

/* Adds op (its strings copied) to out, growing it. */
static void msgs_add(struct store_msgs *out, size_t *cap, const struct op *op)
{
	if (out->n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		out->ops = xrealloc(out->ops, *cap * sizeof *out->ops);
		out->likes = xrealloc(out->likes, *cap * sizeof *out->likes);
	}
	op_copy(&out->ops[out->n], op);
	out->likes[out->n++] = 0;
}

static int entry_key_cmp(const void *a, const void *b)
{
	return memcmp((*(const struct entry *const *)a)->ckey, (*(const struct entry *const *)b)->ckey,
		      OP_KEY_BYTES);
}

/* Adds to out the ops of the tail's entries of hist within (lo, hi) that
 * can be among the first limit (or the last limit if from_end): only those
 * are read. */
static int add_tail(struct msgindex *x, const char *hist, const uint8_t *lo, int lo_len,
		    const uint8_t *hi, size_t limit, int from_end, struct store_msgs *out, size_t *cap)
{
	sqlite3_stmt *st = stmt(x, ST_OP_AT);
	struct entry **match = xcalloc(utarray_len(x->tail) + 1, sizeof *match);
	size_t n = 0;
	int rc = st ? SQLITE_OK : SQLITE_ERROR;
	for (struct entry *e = utarray_front(x->tail); e; e = utarray_next(x->tail, e))
		if (strcmp(e->hist, hist) == 0 && (!lo_len || memcmp(e->ckey, lo, OP_KEY_BYTES) > 0) &&
		    (!hi || memcmp(e->ckey, hi, OP_KEY_BYTES) < 0))
			match[n++] = e;
	if (n)
		qsort(match, n, sizeof *match, entry_key_cmp);
	size_t keep = n < limit ? n : limit, from = from_end ? n - keep : 0;
	for (size_t i = from; i < from + keep && rc == SQLITE_OK; i++) {
		sqlite3_bind_int64(st, 1, match[i]->row);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct op op;
			store_sqlite_row_op(st, &op);
			msgs_add(out, cap, &op);
		}
		rc = done(st, rc);
	}
	free(match);
	return rc;
}

static int order_cmp(const void *a, const void *b, void *ops)
{
	return op_cmp(&((const struct op *)ops)[*(const size_t *)a], &((const struct op *)ops)[*(const size_t *)b]);
}

/* Keeps the first limit of out's messages, or the last limit if from_end,
 * sorted ascending (their likes with them). */
static void keep_limit(struct store_msgs *out, size_t limit, int from_end)
{
	size_t *order = xcalloc(out->n + 1, sizeof *order);
	for (size_t i = 0; i < out->n; i++)
		order[i] = i;
	qsort_r(order, out->n, sizeof *order, order_cmp, out->ops);
	size_t keep = out->n < limit ? out->n : limit, from = from_end ? out->n - keep : 0;
	struct store_msgs kept = {xcalloc(keep + 1, sizeof *kept.ops), xcalloc(keep + 1, sizeof *kept.likes), keep};
	for (size_t i = 0; i < out->n; i++) {
		if (i >= from && i - from < keep) {
			kept.ops[i - from] = out->ops[order[i]];
			kept.likes[i - from] = out->likes[order[i]];
		} else {
			op_clear(&out->ops[order[i]]);
		}
	}
	free(order);
	free(out->ops);
	free(out->likes);
	*out = kept;
}

/* Sets the like count of each message of out; frees out on an error. */
static int count_all(struct msgindex *x, struct store_msgs *out)
{
	int rc = SQLITE_OK;
	for (size_t i = 0; rc == SQLITE_OK && i < out->n; i++)
		rc = count_likes(x, &out->ops[i], &out->likes[i]);
	if (rc != SQLITE_OK)
		store_msgs_free(out);
	return rc;
}

/* msgindex_history without the like counts (all 0). */
static int gather(struct msgindex *x, const char *hist, const struct op_key *after,
		  const struct op_key *before, size_t limit, int from_end, struct store_msgs *out)
{
	static const uint8_t top[OP_KEY_BYTES + 1] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t lo[OP_KEY_BYTES], hi[OP_KEY_BYTES];
	sqlite3_stmt *st = stmt(x, from_end ? ST_SELECT_DESC : ST_SELECT_ASC);
	size_t cap = 0;
	int rc;
	memset(out, 0, sizeof *out);
	if (!st)
		return SQLITE_ERROR;
	if (after)
		op_key_bytes(after, lo);
	if (before)
		op_key_bytes(before, hi);
	sqlite3_bind_text(st, 1, hist, -1, SQLITE_STATIC);
	bind_blob(st, 2, lo, after ? OP_KEY_BYTES : 0);
	bind_blob(st, 3, before ? hi : top, before ? OP_KEY_BYTES : OP_KEY_BYTES + 1);
	sqlite3_bind_int64(st, 4, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct op op;
		store_sqlite_row_op(st, &op);
		msgs_add(out, &cap, &op);
	}
	rc = done(st, rc);
	if (rc == SQLITE_OK)
		rc = add_tail(x, hist, lo, after ? OP_KEY_BYTES : 0, before ? hi : NULL, limit, from_end, out,
			      &cap);
	if (rc != SQLITE_OK) {
		store_msgs_free(out);
		return rc;
	}
	keep_limit(out, limit, from_end);
	return SQLITE_OK;
}

int msgindex_history(struct msgindex *x, const char *hist, const struct op_key *after,
		     const struct op_key *before, size_t limit, int from_end, struct store_msgs *out)
{
	int rc = gather(x, hist, after, before, limit, from_end, out);
	return rc == SQLITE_OK ? count_all(x, out) : rc;
}

/* The message msgid names, if it is stored and chat_apply applies it: a
 * copy into *msg (op_clear it) and its history key into *hist (free it).
 * Returns SQLITE_OK, SQLITE_NOTFOUND or the SQLite error. */
static int find_message(struct msgindex *x, const char *msgid, struct op *msg, char **hist)
{
	struct op_key id = {0};
	struct entry e;
	int found = 0;
	if (op_msgid_parse(msgid, &id.stream, &id.seq) < 0)
		return SQLITE_NOTFOUND;
	sqlite3_stmt *st = stmt(x, ST_OP_OF);
	if (!st)
		return SQLITE_ERROR;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id.stream.origin);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)id.stream.incarnation);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)id.stream.boot);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)id.seq);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct op row;
		store_sqlite_row_op(st, &row);
		if ((found = entry_of(&row, 0, &e))) {
			op_copy(msg, &row);
			*hist = e.hist;
		}
	}
	rc = done(st, rc);
	if (rc != SQLITE_OK && found) {
		op_clear(msg);
		free(*hist);
	}
	return rc != SQLITE_OK ? rc : found ? SQLITE_OK : SQLITE_NOTFOUND;
}

/* The key bound of anchor a in hist: strictly after it if after, else
 * strictly before it: a msgid's message key, or for a time T a key no op
 * has at the edge of T (op_key_at_time). SQLITE_NOTFOUND if a msgid anchor
 * names no message of hist (hist NULL: no post at all). */
static int anchor_key(struct msgindex *x, const char *hist, const struct store_anchor *a, int after,
		      struct op_key *k)
{
	memset(k, 0, sizeof *k);
	if (!a->msgid) {
		*k = op_key_at_time(a->ms, after);
		return SQLITE_OK;
	}
	struct op msg;
	char *in;
	int rc = find_message(x, a->msgid, &msg, &in);
	if (rc != SQLITE_OK)
		return rc;
	int found = hist ? strcmp(in, hist) == 0 : msg.kind == OP_POST;
	*k = op_key_of(&msg);
	op_clear(&msg);
	free(in);
	return found ? SQLITE_OK : SQLITE_NOTFOUND;
}

/* Appends the messages of more to out (more is emptied). */
static void msgs_join(struct store_msgs *out, struct store_msgs *more)
{
	out->ops = xrealloc(out->ops, (out->n + more->n + 1) * sizeof *out->ops);
	out->likes = xrealloc(out->likes, (out->n + more->n + 1) * sizeof *out->likes);
	memcpy(out->ops + out->n, more->ops, more->n * sizeof *more->ops);
	memcpy(out->likes + out->n, more->likes, more->n * sizeof *more->likes);
	out->n += more->n;
	free(more->ops);
	free(more->likes);
	memset(more, 0, sizeof *more);
}

int msgindex_select(struct msgindex *x, const char *hist, enum store_select sel,
		    const struct store_anchor *a, const struct store_anchor *b, size_t limit,
		    struct store_msgs *out)
{
	struct op_key lo, hi, blo, bhi;
	int rc = SQLITE_OK;
	memset(out, 0, sizeof *out);
	switch (sel) {
	case STORE_LATEST:
		if (a && (rc = anchor_key(x, hist, a, 1, &lo)) != SQLITE_OK)
			return rc;
		return msgindex_history(x, hist, a ? &lo : NULL, NULL, limit, 1, out);
	case STORE_BEFORE:
		if ((rc = anchor_key(x, hist, a, 0, &hi)) != SQLITE_OK)
			return rc;
		return msgindex_history(x, hist, NULL, &hi, limit, 1, out);
	case STORE_AFTER:
		if ((rc = anchor_key(x, hist, a, 1, &lo)) != SQLITE_OK)
			return rc;
		return msgindex_history(x, hist, &lo, NULL, limit, 0, out);
	case STORE_AROUND: {
		/* limit / 2 before the centre, the rest from it on (a msgid's
		 * message, or the first message of time T or later) */
		struct store_msgs from;
		if ((rc = anchor_key(x, hist, a, 0, &hi)) != SQLITE_OK)
			return rc;
		lo = hi;
		if (a->msgid)
			lo.seq--; /* strictly after this bound: from the message on */
		if ((rc = msgindex_history(x, hist, NULL, &hi, limit / 2, 1, out)) != SQLITE_OK)
			return rc;
		if ((rc = msgindex_history(x, hist, &lo, NULL, limit - limit / 2, 0, &from)) != SQLITE_OK) {
			store_msgs_free(out);
			return rc;
		}
		msgs_join(out, &from);
		return SQLITE_OK;
	}
	case STORE_BETWEEN:
		if ((rc = anchor_key(x, hist, a, 1, &lo)) != SQLITE_OK ||
		    (rc = anchor_key(x, hist, a, 0, &hi)) != SQLITE_OK ||
		    (rc = anchor_key(x, hist, b, 1, &blo)) != SQLITE_OK ||
		    (rc = anchor_key(x, hist, b, 0, &bhi)) != SQLITE_OK)
			return rc;
		if (op_key_cmp(&hi, &bhi) <= 0) /* a first: from a's side, the first limit */
			return msgindex_history(x, hist, &lo, &bhi, limit, 0, out);
		return msgindex_history(x, hist, &blo, &hi, limit, 1, out);
	}
	return SQLITE_MISUSE;
}

int msgindex_timeline(struct msgindex *x, const struct store_feed *feeds, size_t nfeeds,
		      const struct store_anchor *after, const struct store_anchor *before, size_t limit,
		      int from_end, struct store_msgs *out)
{
	struct op_key lo = {0}, hi;
	int rc = SQLITE_OK;
	memset(out, 0, sizeof *out);
	if ((after && (rc = anchor_key(x, NULL, after, 1, &lo)) != SQLITE_OK) ||
	    (before && (rc = anchor_key(x, NULL, before, 0, &hi)) != SQLITE_OK))
		return rc;
	for (size_t i = 0; i < nfeeds && rc == SQLITE_OK; i++) {
		struct store_msgs part;
		const struct op_key *from = after && op_key_cmp(&lo, &feeds[i].from) > 0 ? &lo : &feeds[i].from;
		rc = gather(x, feeds[i].hist, from, before ? &hi : NULL, limit, from_end, &part);
		if (rc == SQLITE_OK)
			msgs_join(out, &part);
	}
	if (rc != SQLITE_OK) {
		store_msgs_free(out);
		return rc;
	}
	keep_limit(out, limit, from_end); /* then only the lines kept are counted */
	return count_all(x, out);
}

int msgindex_message(struct msgindex *x, const char *msgid, const char *person, struct store_msgs *out,
		     int *liked)
{
	char *hist;
	memset(out, 0, sizeof *out);
	*liked = 0;
	out->ops = xcalloc(1, sizeof *out->ops);
	out->likes = xcalloc(1, sizeof *out->likes);
	int rc = find_message(x, msgid, &out->ops[0], &hist);
	if (rc != SQLITE_OK) {
		store_msgs_free(out);
		return rc;
	}
	out->n = 1;
	free(hist);
	if ((rc = count_likes(x, &out->ops[0], &out->likes[0])) != SQLITE_OK) {
		store_msgs_free(out);
		return rc;
	}
	char *author = chat_person(out->ops[0].author, out->ops[0].account);
	int own = strcmp(author, person) == 0;
	free(author);
	if (own) /* one's own like never counts, nor is it kept once the line is known */
		return SQLITE_OK;
	uint8_t key[OP_KEY_BYTES];
	struct op_key k = op_key_of(&out->ops[0]);
	op_key_bytes(&k, key);
	if ((rc = get_state(x, key + 8, person, NULL, liked, NULL)) != SQLITE_OK)
		store_msgs_free(out);
	return rc;
}

/* Adds the index entry of a message (its history key and op; the op's
 * key is its place) to h as one member. */
static void digest_entry(struct sethash *h, const char *hist, const struct op *op)
{
	sethash_u64(h, 'M');
	sethash_str(h, hist);
	chat_hash_op(h, op);
	sethash_add(h);
}

/* sql prepared on db for one pass (finalize it), or NULL if SQLite cannot
 * prepare it. */
static sqlite3_stmt *prepare_once(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Adds every entry of db's msgs, then of tail (the entries after its
 * indexed position), to h. */
static int digest_msgs(sqlite3 *db, const UT_array *tail, struct sethash *h)
{
	sqlite3_stmt *st = prepare_once(db, DIGEST_MSGS_SQL);
	int rc;
	if (!st)
		return SQLITE_ERROR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct op op;
		store_sqlite_row_op_at(st, 1, &op);
		digest_entry(h, (const char *)sqlite3_column_text(st, 0), &op);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || !(st = prepare_once(db, SQL[ST_OP_AT])))
		return rc != SQLITE_DONE ? rc : SQLITE_ERROR;
	rc = SQLITE_OK;
	for (struct entry *e = utarray_front(tail); e && rc == SQLITE_OK; e = utarray_next(tail, e)) {
		sqlite3_bind_int64(st, 1, e->row);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct op op;
			store_sqlite_row_op(st, &op);
			digest_entry(h, e->hist, &op);
		}
		rc = done(st, rc);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Adds every like state of db to h. */
static int digest_likes(sqlite3 *db, struct sethash *h)
{
	sqlite3_stmt *st = prepare_once(db, DIGEST_LIKES_SQL);
	int rc;
	if (!st)
		return SQLITE_ERROR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sethash_u64(h, 'L');
		sethash_bytes(h, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
		sethash_str(h, (const char *)sqlite3_column_text(st, 1));
		sethash_u64(h, (uint64_t)sqlite3_column_int(st, 2));
		sethash_bytes(h, sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3));
		sethash_add(h);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The digest of db's index with tail (see msgindex_digest). */
static int digest_of(sqlite3 *db, const UT_array *tail, char out[65])
{
	struct sethash h = {0};
	int rc = digest_msgs(db, tail, &h);
	if (rc == SQLITE_OK)
		rc = digest_likes(db, &h);
	sethash_hex(&h, out);
	sethash_free(&h);
	return rc;
}

int msgindex_digest(struct msgindex *x, char out[65])
{
	return digest_of(x->db, x->tail, out);
}

struct msgindex_pin {
	sqlite3 *db;       /* its read transaction holds the state pinned (not ours) */
	UT_array *tail;    /* the tail's entries then */
};

struct msgindex_pin *msgindex_pin(struct msgindex *x, sqlite3 *db)
{
	struct msgindex_pin *p = xcalloc(1, sizeof *p);
	p->db = db;
	utarray_new(p->tail, &entry_icd);
	for (struct entry *e = utarray_front(x->tail); e; e = utarray_next(x->tail, e)) {
		struct entry copy = *e;
		copy.hist = xstrdup(e->hist);
		utarray_push_back(p->tail, &copy);
	}
	return p;
}

void msgindex_pin_free(struct msgindex_pin *p)
{
	sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL);
	utarray_free(p->tail);
	free(p);
}

int msgindex_pin_digest(struct msgindex_pin *p, char out[65])
{
	int rc = digest_of(p->db, p->tail, out);
	msgindex_pin_free(p);
	return rc;
}

void store_msgs_free(struct store_msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		op_clear(&m->ops[i]);
	free(m->ops);
	free(m->likes);
	memset(m, 0, sizeof *m);
}
