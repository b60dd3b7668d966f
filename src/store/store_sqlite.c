/*
 * store_sqlite.c: the production store, one SQLite database "chorus.db" in
 * the replica's data directory, in WAL mode.
 *
 * Two tables: meta (key/value strings: the storage format version, the boot
 * counter and whatever else the replica keeps) and ops (one row per
 * operation, in append order by rowid, unique on stream and seq so that a
 * duplicate is skipped by INSERT OR IGNORE). Unsigned 64-bit fields
 * (incarnation, seq, lts) are stored as SQLite INTEGERs, i.e. cast to int64
 * and back: values with the top bit set read back unchanged.
 *
 * Each append is one transaction (BEGIN IMMEDIATE ... COMMIT) over a prepared
 * INSERT made once at open: the group commit. On any error the transaction is
 * rolled back, so a batch is stored whole or not at all.
 *
 * load_range reuses one prepared SELECT made at open, which the UNIQUE(origin,
 * incarnation, boot, seq) index answers as a range search in seq order
 * (EXPLAIN QUERY PLAN: "SEARCH ops USING INDEX sqlite_autoindex_ops_1
 * (origin=? AND incarnation=? AND boot=? AND seq>? AND seq<?)", no table scan
 * and no sort). As seqs are stored as int64, a range that crosses 2^63 is
 * read in two parts: the seqs below it, then those above (stored negative).
 *
 * A size limit (max_bytes) becomes PRAGMA max_page_count = max_bytes /
 * page_size; SQLite then answers SQLITE_FULL when the database would grow
 * past it, which we report as STORE_EFULL: a full disk on demand for tests.
 * The limit is on the database's pages, not on the WAL file, and SQLite does
 * not lower the limit below the current page count: a limit smaller than the
 * database holds it at its present size.
 */
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../common/util.h"
#include "msgindex.h"

#define BUSY_TIMEOUT_MS 5000

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	char *path;              /* dir/chorus.db, for messages */
	sqlite3_stmt *insert;    /* INSERT OR IGNORE INTO ops */
	sqlite3_stmt *range;     /* SELECT one stream's ops by seq range */
	sqlite3_stmt *meta_get;  /* SELECT value FROM meta */
	sqlite3_stmt *meta_set;  /* INSERT OR REPLACE INTO meta */
	struct msgindex *index;  /* the message index, kept by append */
	struct reader *reader;   /* a second connection for pinned digests (a file's) */
	char err[512];           /* last error, for last_error() */
};

static const char SCHEMA_SQL[] =
	"CREATE TABLE IF NOT EXISTS meta("
	" key TEXT PRIMARY KEY,"
	" value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS ops("
	" rowid INTEGER PRIMARY KEY,"
	" origin INTEGER, incarnation INTEGER, boot INTEGER, seq INTEGER,"
	" lts INTEGER, wall_ms INTEGER, kind INTEGER, flags INTEGER,"
	" target TEXT, author TEXT, body TEXT, ref TEXT, account TEXT NOT NULL DEFAULT '',"
	" tags TEXT NOT NULL DEFAULT '',"
	" UNIQUE(origin, incarnation, boot, seq));"
	"CREATE TABLE IF NOT EXISTS snapshot("
	" id INTEGER PRIMARY KEY CHECK(id = 1), upto INTEGER NOT NULL, data BLOB NOT NULL);"
	MSGINDEX_SCHEMA_SQL;

/* Formats 1 and 2 lack the account column (ops from then had no account),
 * 1 to 3 the tags column (ops from then kept no client tags). */
static const char UPGRADE_ACCOUNT_SQL[] = "ALTER TABLE ops ADD COLUMN account TEXT NOT NULL DEFAULT ''";
static const char UPGRADE_TAGS_SQL[] = "ALTER TABLE ops ADD COLUMN tags TEXT NOT NULL DEFAULT ''";

static const char INSERT_SQL[] =
	"INSERT OR IGNORE INTO ops(origin, incarnation, boot, seq, lts, wall_ms, kind, flags,"
	" target, author, body, ref, account, tags)"
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

static const char LOAD_SQL[] =
	"SELECT origin, incarnation, boot, seq, lts, wall_ms, kind, flags,"
	" target, author, body, ref, account, tags, rowid FROM ops WHERE rowid > ?1 ORDER BY rowid";

static const char SNAPSHOT_GET_SQL[] = "SELECT upto, data FROM snapshot WHERE id = 1";
static const char SNAPSHOT_PUT_SQL[] = "INSERT OR REPLACE INTO snapshot(id, upto, data) VALUES(1, ?1, ?2)";

static const char RANGE_SQL[] =
	"SELECT origin, incarnation, boot, seq, lts, wall_ms, kind, flags,"
	" target, author, body, ref, account, tags FROM ops"
	" WHERE origin = ?1 AND incarnation = ?2 AND boot = ?3 AND seq >= ?4 AND seq <= ?5"
	" ORDER BY seq";

static const char META_GET_SQL[] = "SELECT value FROM meta WHERE key = ?1";
static const char META_SET_SQL[] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)";

static struct sqlite_store *to_sqlite(struct store *base)
{
	return (struct sqlite_store *)base;
}

/* Records "what: <sqlite's message>" as the last error. */
static void set_error(struct sqlite_store *s, const char *what)
{
	snprintf(s->err, sizeof s->err, "%s: %s: %s", s->path ? s->path : "sqlite", what,
		 s->db ? sqlite3_errmsg(s->db) : "no database");
}

/* Maps an SQLite result code to a store_status error. */
static int status_of(int rc)
{
	return (rc & 0xff) == SQLITE_FULL ? STORE_EFULL : STORE_EIO;
}

/* Runs sql (no rows wanted); on error records it and returns the SQLite code. */
static int exec(struct sqlite_store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		set_error(s, sql);
	return rc;
}

/* Ends an open transaction, if SQLite has not already rolled it back. Keeps
 * the error message recorded before. */
static void rollback(struct sqlite_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- append ---- */

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
	sqlite3_bind_text(st, i, text ? text : "", -1, SQLITE_STATIC);
}

/* Inserts one op with the prepared statement and tells the message index
 * of it if it is new. Returns SQLITE_OK or the error. */
static int insert_one(struct sqlite_store *s, const struct op *op, struct chat_fact *f)
{
	sqlite3_stmt *st = s->insert;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)op->stream.origin);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)op->stream.incarnation);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)op->stream.boot);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)op->seq);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)op->lts);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)op->wall_ms);
	sqlite3_bind_int(st, 7, op->kind);
	sqlite3_bind_int(st, 8, op->flags);
	bind_text(st, 9, op->target);
	bind_text(st, 10, op->author);
	bind_text(st, 11, op->body);
	bind_text(st, 12, op->ref);
	bind_text(st, 13, op->account);
	bind_text(st, 14, op->tags);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	else
		set_error(s, "insert");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_OK && sqlite3_changes(s->db) == 1 &&
	    (rc = msgindex_added(s->index, op, sqlite3_last_insert_rowid(s->db), f)) != SQLITE_OK)
		set_error(s, "index");
	return rc;
}

/* One transaction for the whole batch; rolled back on any error. */
static int sq_append(struct store *base, const struct op *ops, size_t n, struct chat_fact *facts)
{
	struct sqlite_store *s = to_sqlite(base);
	if (n == 0)
		return STORE_OK;
	if (facts)
		memset(facts, 0, n * sizeof *facts);
	int rc = exec(s, "BEGIN IMMEDIATE");
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
		rc = insert_one(s, &ops[i], facts ? &facts[i] : NULL);
	if (rc == SQLITE_OK && (rc = msgindex_catch_up(s->index, 0)) != SQLITE_OK)
		set_error(s, "index");
	if (rc == SQLITE_OK)
		rc = exec(s, "COMMIT");
	if (rc != SQLITE_OK) {
		rollback(s);
		if (msgindex_reload(s->index) != SQLITE_OK)
			log_warn("store: %s: cannot read the message index again", s->path);
		return status_of(rc);
	}
	return STORE_OK;
}

/* ---- load ---- */

static char *column_str(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return (char *)(t ? (const char *)t : "");
}

void store_sqlite_row_op_at(sqlite3_stmt *st, int first, struct op *op)
{
	int c = first;
	memset(op, 0, sizeof *op);
	op->stream.origin = (uint32_t)sqlite3_column_int64(st, c);
	op->stream.incarnation = (uint64_t)sqlite3_column_int64(st, c + 1);
	op->stream.boot = (uint32_t)sqlite3_column_int64(st, c + 2);
	op->seq = (uint64_t)sqlite3_column_int64(st, c + 3);
	op->lts = (uint64_t)sqlite3_column_int64(st, c + 4);
	op->wall_ms = (int64_t)sqlite3_column_int64(st, c + 5);
	op->kind = (uint8_t)sqlite3_column_int(st, c + 6);
	op->flags = (uint8_t)sqlite3_column_int(st, c + 7);
	op->target = column_str(st, c + 8);
	op->author = column_str(st, c + 9);
	op->body = column_str(st, c + 10);
	op->ref = column_str(st, c + 11);
	op->account = column_str(st, c + 12);
	op->tags = column_str(st, c + 13);
}

void store_sqlite_row_op(sqlite3_stmt *st, struct op *op)
{
	store_sqlite_row_op_at(st, 0, op);
}

/* Calls fn per row after position after, in rowid (append) order. fn must
 * not call into this store. */
static int sq_load(struct store *base, uint64_t after, store_load_fn *fn, void *arg)
{
	struct sqlite_store *s = to_sqlite(base);
	sqlite3_stmt *st = NULL;
	int ret = STORE_OK;
	int rc = sqlite3_prepare_v2(s->db, LOAD_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		set_error(s, "load");
		return STORE_EIO;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct op op;
		struct chat_fact fact = {.loaded = 1};
		int repeat;
		store_sqlite_row_op(st, &op);
		if ((rc = msgindex_repeat(s->index, &op, sqlite3_column_int64(st, 14), &repeat)) != SQLITE_OK)
			break;
		fact.repeat = (uint8_t)repeat;
		ret = fn(&op, &fact, arg);
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		set_error(s, "load");
		ret = STORE_EIO;
	}
	sqlite3_finalize(st);
	return ret;
}

/* Calls fn per row of the stream with lo <= seq <= hi as stored (int64), in
 * that order, with the prepared range statement. Returns STORE_OK, fn's
 * non-zero value, or an error status. */
static int range_part(struct sqlite_store *s, const struct op_stream *stream, int64_t lo,
		      int64_t hi, int (*fn)(const struct op *op, void *arg), void *arg)
{
	sqlite3_stmt *st = s->range;
	int ret = STORE_OK;
	int rc = SQLITE_DONE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)stream->origin);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)stream->incarnation);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)stream->boot);
	sqlite3_bind_int64(st, 4, lo);
	sqlite3_bind_int64(st, 5, hi);
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct op op;
		store_sqlite_row_op(st, &op);
		ret = fn(&op, arg);
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		set_error(s, "load range");
		ret = status_of(rc);
	}
	/* Also ends the read transaction when fn stopped early. */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* seq is unsigned, stored as int64: [from, to] is the stored range [from,
 * INT64_MAX] followed by the (negative) stored range of seqs past INT64_MAX. */
static int sq_load_range(struct store *base, const struct op_stream *stream, uint64_t from,
			 uint64_t to, int (*fn)(const struct op *op, void *arg), void *arg)
{
	struct sqlite_store *s = to_sqlite(base);
	const uint64_t top = (uint64_t)INT64_MAX;
	int ret = STORE_OK;
	if (from > to)
		return STORE_OK;
	if (from <= top)
		ret = range_part(s, stream, (int64_t)from, (int64_t)(to < top ? to : top), fn, arg);
	if (ret == 0 && to > top)
		ret = range_part(s, stream, (int64_t)(from > top ? from : top + 1), (int64_t)to, fn,
				 arg);
	return ret;
}

/* ---- the message index ---- */

/* The store status of rc, what a msgindex call (named what in the error)
 * answered. */
static int index_status(struct sqlite_store *s, int rc, const char *what)
{
	if (rc == SQLITE_OK)
		return STORE_OK;
	if (rc == SQLITE_NOTFOUND)
		return STORE_NOTFOUND;
	set_error(s, what);
	return status_of(rc);
}

static int sq_history(struct store *base, const char *hist, const struct op_key *after,
		      const struct op_key *before, size_t limit, int from_end, struct store_msgs *out)
{
	struct sqlite_store *s = to_sqlite(base);
	return index_status(s, msgindex_history(s->index, hist, after, before, limit, from_end, out),
			    "history");
}

static int sq_select(struct store *base, const char *hist, enum store_select sel,
		     const struct store_anchor *a, const struct store_anchor *b, size_t limit,
		     struct store_msgs *out)
{
	struct sqlite_store *s = to_sqlite(base);
	return index_status(s, msgindex_select(s->index, hist, sel, a, b, limit, out), "select");
}

static int sq_timeline(struct store *base, const struct store_feed *feeds, size_t nfeeds,
		       const struct store_anchor *after, const struct store_anchor *before, size_t limit,
		       int from_end, struct store_msgs *out)
{
	struct sqlite_store *s = to_sqlite(base);
	return index_status(s, msgindex_timeline(s->index, feeds, nfeeds, after, before, limit, from_end, out),
			    "timeline");
}

static int sq_message(struct store *base, const char *msgid, const char *person, struct store_msgs *out,
		      int *liked)
{
	struct sqlite_store *s = to_sqlite(base);
	return index_status(s, msgindex_message(s->index, msgid, person, out, liked), "message");
}

static int sq_digest(struct store *base, char out[65])
{
	struct sqlite_store *s = to_sqlite(base);
	return index_status(s, msgindex_digest(s->index, out), "digest");
}

/* The second connection, read-only, opened with the store (the data
 * directory's parents may be closed to the user chorusd becomes later):
 * one pinned digest at a time reads on it. Shared by the store and the pin
 * using it, the last to let go closes it. */
struct reader {
	sqlite3 *db;
	atomic_int refs;
	atomic_int in_use;
};

static void reader_unref(struct reader *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		sqlite3_close(r->db);
		free(r);
	}
}

/* Opens the reader of a file database; none for one in memory (which has
 * no second connection) or if it cannot be opened (pins then hash at once). */
static void open_reader(struct sqlite_store *s)
{
	sqlite3 *db = NULL;
	if (strcmp(s->path, ":memory:") == 0)
		return;
	/* A first read opens its WAL files now: later, as the user chorusd
	 * becomes, their directory's parents may be closed to it. */
	if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
	    sqlite3_exec(db, "SELECT count(*) FROM meta", NULL, NULL, NULL) != SQLITE_OK) {
		log_warn("store: %s: no second connection for digests (%s): they will hold writes",
			 s->path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return;
	}
	s->reader = xcalloc(1, sizeof *s->reader);
	s->reader->db = db;
	atomic_init(&s->reader->refs, 1);
	atomic_init(&s->reader->in_use, 0);
}

/* A digest pinned: a read transaction on the reader (the index pinned), or,
 * without a reader free and reading, the digest itself, taken at once. */
struct store_pin {
	struct reader *reader;
	struct msgindex_pin *index;
	int status;
	char hex[65];
};

static int sq_digest_pin(struct store *base, struct store_pin **out)
{
	struct sqlite_store *s = to_sqlite(base);
	struct store_pin *p = xcalloc(1, sizeof *p);
	struct reader *r = s->reader;
	if (r && atomic_exchange(&r->in_use, 1) == 0) {
		if (sqlite3_exec(r->db, "BEGIN; SELECT count(*) FROM meta", NULL, NULL, NULL) == SQLITE_OK) {
			atomic_fetch_add(&r->refs, 1);
			p->reader = r;
			p->index = msgindex_pin(s->index, r->db);
			*out = p;
			return STORE_OK;
		}
		log_warn("store: %s: the digests' connection cannot read (%s): hashing here", s->path,
			 sqlite3_errmsg(r->db));
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
		atomic_store(&r->in_use, 0);
	}
	p->status = sq_digest(base, p->hex);
	*out = p;
	return STORE_OK;
}

void store_pin_free(struct store_pin *p)
{
	if (!p)
		return;
	if (p->index)
		msgindex_pin_free(p->index);
	if (p->reader) {
		atomic_store(&p->reader->in_use, 0);
		reader_unref(p->reader);
	}
	free(p);
}

int store_pin_digest(struct store_pin *p, char out[65])
{
	int status = p->status;
	if (p->index) {
		status = msgindex_pin_digest(p->index, p->hex) == SQLITE_OK ? STORE_OK : STORE_EIO;
		p->index = NULL; /* ended by msgindex_pin_digest */
	}
	memcpy(out, p->hex, sizeof p->hex);
	store_pin_free(p);
	return status;
}
static uint64_t sq_position(struct store *base)
{
	return (uint64_t)msgindex_last(to_sqlite(base)->index);
}

/* ---- snapshot ---- */

static int sq_snapshot_get(struct store *base, uint64_t *upto, void **data, size_t *len)
{
	struct sqlite_store *s = to_sqlite(base);
	sqlite3_stmt *st = NULL;
	*data = NULL;
	*len = 0;
	int rc = sqlite3_prepare_v2(s->db, SNAPSHOT_GET_SQL, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*upto = (uint64_t)sqlite3_column_int64(st, 0);
		*len = (size_t)sqlite3_column_bytes(st, 1);
		*data = xmalloc(*len + 1);
		if (*len)
			memcpy(*data, sqlite3_column_blob(st, 1), *len);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	set_error(s, "snapshot read");
	return STORE_EIO;
}

static int sq_snapshot_put(struct store *base, uint64_t upto, const void *data, size_t len)
{
	struct sqlite_store *s = to_sqlite(base);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, SNAPSHOT_PUT_SQL, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)upto);
		sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return STORE_OK;
	set_error(s, "snapshot write");
	return status_of(rc);
}

/* ---- meta ---- */

static int sq_meta_get(struct store *base, const char *key, char **value)
{
	struct sqlite_store *s = to_sqlite(base);
	sqlite3_stmt *st = s->meta_get;
	int ret;
	*value = NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value = xstrdup(column_str(st, 0));
		ret = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		ret = STORE_NOTFOUND;
	} else {
		set_error(s, "meta get");
		ret = status_of(rc);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* Its own (autocommit) transaction: durable as the sync option allows. */
static int sq_meta_set(struct store *base, const char *key, const char *value)
{
	struct sqlite_store *s = to_sqlite(base);
	sqlite3_stmt *st = s->meta_set;
	int ret = STORE_OK;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		set_error(s, "meta set");
		ret = status_of(rc);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static const char *sq_last_error(struct store *base)
{
	return to_sqlite(base)->err;
}

/* Also frees a partly opened store (any of db and statements may be NULL). */
static void sq_close(struct store *base)
{
	struct sqlite_store *s = to_sqlite(base);
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->range);
	sqlite3_finalize(s->meta_get);
	sqlite3_finalize(s->meta_set);
	msgindex_free(s->index);
	reader_unref(s->reader); /* a pin in use closes it when done */
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		log_warn("store: closing %s: %s", s->path, sqlite3_errmsg(s->db));
	free(s->path);
	free(s);
}

static const struct store_ops sqlite_ops = {
	.append = sq_append,
	.load = sq_load,
	.load_range = sq_load_range,
	.history = sq_history,
	.select = sq_select,
	.timeline = sq_timeline,
	.message = sq_message,
	.digest = sq_digest,
	.digest_pin = sq_digest_pin,
	.position = sq_position,
	.snapshot_get = sq_snapshot_get,
	.snapshot_put = sq_snapshot_put,
	.meta_get = sq_meta_get,
	.meta_set = sq_meta_set,
	.last_error = sq_last_error,
	.close = sq_close,
};

/* ---- open: each step returns 0, or -1 with *msg set to a new string ---- */

static int fail_db(struct sqlite_store *s, char **msg, const char *what)
{
	*msg = xasprintf("%s: %s: %s", s->path, what, s->db ? sqlite3_errmsg(s->db) : "out of memory");
	return -1;
}

static int make_dir(const char *dir, char **msg)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		*msg = xasprintf("cannot create data directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int open_db(struct sqlite_store *s, char **msg)
{
	int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		return fail_db(s, msg, "open");
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	return 0;
}

/* Runs a PRAGMA that answers one row, copying its first column into buf. */
static int pragma_text(struct sqlite_store *s, const char *sql, char *buf, size_t len, char **msg)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(buf, len, "%s", column_str(st, 0));
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		buf[0] = '\0';
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		fail_db(s, msg, sql);
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

static const char *sync_sql(enum store_sync sync)
{
	switch (sync) {
	case STORE_SYNC_OFF:
		return "PRAGMA synchronous = OFF";
	case STORE_SYNC_NORMAL:
		return "PRAGMA synchronous = NORMAL";
	case STORE_SYNC_FULL:
		return "PRAGMA synchronous = FULL";
	}
	return NULL;
}

/* max_bytes > 0: the database may not grow past max_bytes (at least one page). */
static int set_size_limit(struct sqlite_store *s, int64_t max_bytes, char **msg)
{
	char buf[32];
	if (pragma_text(s, "PRAGMA page_size", buf, sizeof buf, msg) != 0)
		return -1;
	long long page_size = atoll(buf);
	long long pages = page_size > 0 ? max_bytes / page_size : 1;
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", pages > 0 ? pages : 1);
	return pragma_text(s, sql, buf, sizeof buf, msg);
}

static int configure(struct sqlite_store *s, const struct store_sqlite_options *opt, char **msg)
{
	char mode[16];
	const char *sync = sync_sql(opt->sync);
	if (!sync) {
		*msg = xasprintf("%s: bad sync option %d", s->path, (int)opt->sync);
		return -1;
	}
	if (pragma_text(s, "PRAGMA journal_mode = WAL", mode, sizeof mode, msg) != 0)
		return -1;
	if (strcmp(mode, "wal") != 0 && strcmp(s->path, ":memory:") != 0) {
		*msg = xasprintf("%s: cannot use WAL mode (journal mode is %s)", s->path, mode);
		return -1;
	}
	if (sqlite3_exec(s->db, sync, NULL, NULL, NULL) != SQLITE_OK)
		return fail_db(s, msg, sync);
	if (opt->max_bytes > 0)
		return set_size_limit(s, opt->max_bytes, msg);
	return 0;
}

/* Inside the schema transaction, before the op statements are prepared:
 * writes the format on a database that has none (a new one), upgrades
 * formats 1 to 5 (see store.h: *reindex is set, the message index is to be
 * built from the ops), refuses any other version. */
static int check_format(struct sqlite_store *s, int *reindex, char **msg)
{
	char want[16];
	char *have = NULL;
	int rc = 0;
	snprintf(want, sizeof want, "%d", STORE_FORMAT_VERSION);
	int st = sq_meta_get(&s->base, "format", &have);
	int version = st == STORE_OK && strlen(have) == 1 ? have[0] - '0' : 0;
	int old = version >= 1 && version < STORE_FORMAT_VERSION;
	if ((old && version <= 2 && exec(s, UPGRADE_ACCOUNT_SQL) != SQLITE_OK) ||
	    (old && version <= 3 && exec(s, UPGRADE_TAGS_SQL) != SQLITE_OK))
		st = STORE_EIO;
	else if (old)
		log_info("store: %s: storage format %s upgraded to %s", s->path, have, want);
	*reindex = old;
	if (st == STORE_NOTFOUND || (st == STORE_OK && old)) {
		free(have);
		have = NULL;
		st = sq_meta_set(&s->base, "format", want);
	}
	if (st < 0) {
		*msg = xasprintf("%s", s->err);
		rc = -1;
	} else if (have && strcmp(have, want) != 0) {
		*msg = xasprintf("%s: storage format %s, but this chorus reads formats 1 to %s "
				 "(STORE_EFORMAT): use a matching version or another data directory",
				 s->path, have, want);
		rc = -1;
	}
	free(have);
	return rc;
}

/* Opens the message index; of an upgraded data directory, builds it from
 * its ops first (a pass over all of them, once). */
static int open_index(struct sqlite_store *s, int lag, int reindex, char **msg)
{
	int64_t t0 = wall_ms();
	if (reindex)
		log_info("store: %s: building the message index (once, after the upgrade)", s->path);
	if (!(s->index = msgindex_new(s->db, s->path, lag, reindex, msg)))
		return -1;
	if (reindex)
		log_info("store: %s: message index built in %lld ms", s->path, (long long)(wall_ms() - t0));
	return 0;
}

static int prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **st, char **msg)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return fail_db(s, msg, "prepare");
	return 0;
}

/* Creates the tables if needed, prepares the statements and checks the format,
 * all in one transaction so a new database is never left half made. */
static int init_schema(struct sqlite_store *s, int lag, char **msg)
{
	int rc = 0, reindex = 0;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return fail_db(s, msg, "begin");
	if (sqlite3_exec(s->db, SCHEMA_SQL, NULL, NULL, NULL) != SQLITE_OK)
		rc = fail_db(s, msg, "create tables");
	if (rc == 0)
		rc = prepare(s, META_GET_SQL, &s->meta_get, msg);
	if (rc == 0)
		rc = prepare(s, META_SET_SQL, &s->meta_set, msg);
	if (rc == 0)
		rc = check_format(s, &reindex, msg);
	if (rc == 0)
		rc = open_index(s, lag, reindex, msg);
	if (rc == 0)
		rc = prepare(s, INSERT_SQL, &s->insert, msg);
	if (rc == 0)
		rc = prepare(s, RANGE_SQL, &s->range, msg);
	if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = fail_db(s, msg, "commit");
	if (rc != 0)
		rollback(s);
	return rc;
}

struct store *store_sqlite_open(const char *dir, const struct store_sqlite_options *opt,
				char **err)
{
	static const struct store_sqlite_options defaults = {.sync = STORE_SYNC_FULL};
	if (!opt)
		opt = &defaults;
	struct sqlite_store *s = xcalloc(1, sizeof *s);
	char *msg = NULL;
	s->base.ops = &sqlite_ops;
	s->path = dir ? xasprintf("%s/chorus.db", dir) : xstrdup(":memory:");
	int rc = dir ? make_dir(dir, &msg) : 0;
	if (rc == 0)
		rc = open_db(s, &msg);
	if (rc == 0)
		rc = configure(s, opt, &msg);
	if (rc == 0)
		rc = init_schema(s, opt->index_lag, &msg);
	if (rc == 0)
		open_reader(s);
	if (rc != 0) {
		sq_close(&s->base);
		if (err)
			*err = msg;
		else
			free(msg);
		return NULL;
	}
	if (err)
		*err = NULL;
	return &s->base;
}
