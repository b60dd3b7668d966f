/*
 * msgindex.h: the message index in the store's database (store-private):
 * every message by history in canonical order, and every like state: where
 * history and likes live (RAM holds only a cache; docs/DESIGN-NOTES.md
 * "History in SQLite").
 *
 * Tables (MSGINDEX_SCHEMA_SQL):
 *   msgs(hist, ckey, op): one row per message op that chat_apply applies:
 *     its history key (chat_history_key), its op_key_bytes (so a history in
 *     canonical order is a range of the primary key) and its ops rowid.
 *     Written in bulk, behind the ops: every op up to rowid `upto` (meta
 *     "indexed") is in it, and the ops after it, fewer than MSGINDEX_LAG,
 *     are read directly. A history touches one page of the index per bulk,
 *     not one per commit.
 *   likes(id, person, liked, by): one user's like state of message id (its
 *     stream and seq: the last 24 bytes of a ckey; the message may not have
 *     arrived), set by the op of key by (bytes), the greatest key winning;
 *     kept by each append, which tells chat_apply what changed (struct
 *     chat_fact: msgindex_added). A message's like
 *     count is counted when it is read: its liked states, the author's not
 *     counted (one's own likes never count).
 *   cids(person, cid, hist, ckey, first): exactly-once sends (op_client_id):
 *     of a person's messages with one client id, the line is the first in
 *     canonical order (ckey, in history hist); the others are repeats, in
 *     no history. first: the rowid of the first of them stored here (a
 *     repeat is a message stored after it). Kept by each append: a message
 *     that sorts before the recorded line takes its place (its entry leaves
 *     msgs or the tail).
 * Only ops that chat_op_valid accepts count.
 */
#ifndef CHORUS_MSGINDEX_H
#define CHORUS_MSGINDEX_H

#include <sqlite3.h>

#include "../chat/chat.h"
#include "store.h"

/* Ops stored but not yet in msgs before the next append indexes them (by
 * default). */
#define MSGINDEX_LAG 4096

#define MSGINDEX_SCHEMA_SQL                                                    \
	"CREATE TABLE IF NOT EXISTS msgs("                                     \
	" hist TEXT NOT NULL, ckey BLOB NOT NULL, op INTEGER NOT NULL,"        \
	" PRIMARY KEY(hist, ckey)) WITHOUT ROWID;"                             \
	"CREATE TABLE IF NOT EXISTS likes("                                    \
	" id BLOB NOT NULL, person TEXT NOT NULL, liked INTEGER NOT NULL,"     \
	" by BLOB NOT NULL, PRIMARY KEY(id, person)) WITHOUT ROWID;"          \
	"CREATE TABLE IF NOT EXISTS cids("                                     \
	" person TEXT NOT NULL, cid TEXT NOT NULL, hist TEXT NOT NULL,"        \
	" ckey BLOB NOT NULL, first INTEGER NOT NULL,"                         \
	" PRIMARY KEY(person, cid)) WITHOUT ROWID;"

struct msgindex;

/* Prepares the statements over db's tables (made, with meta, by the
 * store's schema) and reads how far msgs goes (it lags behind by up to lag
 * ops; 0: MSGINDEX_LAG); if reindex (an upgraded
 * database: msgs empty), puts every stored op into it first. Returns NULL
 * with *msg set (a new string) on failure. */
struct msgindex *msgindex_new(sqlite3 *db, const char *path, int lag, int reindex, char **msg);
void msgindex_free(struct msgindex *x);

/* Inside an append's transaction, after op was inserted as new row row:
 * keeps a message's entry for the next bulk, or sets the state of a like
 * or unlike; fills *f (if not NULL; zeroed by the caller) with what
 * chat_apply needs of it (struct chat_fact). Returns SQLITE_OK or the
 * SQLite error. */
int msgindex_added(struct msgindex *x, const struct op *op, sqlite3_int64 row, struct chat_fact *f);

/* Inside an append's transaction, after its ops: puts the ops stored since
 * `upto` into msgs if there are lag of them (all of them if
 * force), in chunks, sorted. Returns SQLITE_OK or the SQLite error. If the
 * transaction is then rolled back, call msgindex_reload. */
int msgindex_catch_up(struct msgindex *x, int force);
/* Reads `upto` again (after a rollback). */
int msgindex_reload(struct msgindex *x);
/* The highest rowid of ops stored. */
sqlite3_int64 msgindex_last(const struct msgindex *x);
/* Whether op, stored at row, is a repeat (see cids): *repeat. Returns
 * SQLITE_OK or the SQLite error. */
int msgindex_repeat(struct msgindex *x, const struct op *op, sqlite3_int64 row, int *repeat);

/* Fills op from the current row of a statement whose 14 columns from
 * column first are ops' (origin ... tags, in table order); the strings
 * point into the row, valid until the next step (store_sqlite.c).
 * store_sqlite_row_op: from column 0. */
void store_sqlite_row_op_at(sqlite3_stmt *st, int first, struct op *op);
void store_sqlite_row_op(sqlite3_stmt *st, struct op *op);

/* See store_ops.history. Returns SQLITE_OK or the SQLite error. */
int msgindex_history(struct msgindex *x, const char *hist, const struct op_key *after,
		     const struct op_key *before, size_t limit, int from_end, struct store_msgs *out);

/* See store_ops.select. Returns SQLITE_OK, SQLITE_NOTFOUND (a msgid
 * anchor names no message of hist) or the SQLite error. */
int msgindex_select(struct msgindex *x, const char *hist, enum store_select sel,
		    const struct store_anchor *a, const struct store_anchor *b, size_t limit,
		    struct store_msgs *out);

/* See store_ops.timeline. Returns SQLITE_OK, SQLITE_NOTFOUND (a msgid
 * anchor names no post) or the SQLite error. */
int msgindex_timeline(struct msgindex *x, const struct store_feed *feeds, size_t nfeeds,
		      const struct store_anchor *after, const struct store_anchor *before, size_t limit,
		      int from_end, struct store_msgs *out);

/* See store_ops.message. Returns SQLITE_OK, SQLITE_NOTFOUND or the SQLite
 * error. */
int msgindex_message(struct msgindex *x, const char *msgid, const char *person, struct store_msgs *out,
		     int *liked);

/* See store_ops.digest. Returns SQLITE_OK or the SQLite error. */
int msgindex_digest(struct msgindex *x, char out[65]);
/* x's index as it is now, to hash later on another thread while appends
 * go on: db is a read connection to the same database whose read
 * transaction began now (used by the pin until it ends, not closed by
 * it), and the tail's entries are copied. */
struct msgindex_pin;
struct msgindex_pin *msgindex_pin(struct msgindex *x, sqlite3 *db);
/* msgindex_digest's value when p was pinned; ends p's transaction and
 * frees p. Returns SQLITE_OK or the SQLite error. */
int msgindex_pin_digest(struct msgindex_pin *p, char out[65]);
/* Ends p unhashed (as msgindex_pin_digest does after its pass). */
void msgindex_pin_free(struct msgindex_pin *p);

#endif
