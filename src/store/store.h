/*
 * store.h: the durable home of a replica's operations, its message index
 * (every line and like state), its last snapshot and metadata, behind one
 * interface with two implementations: SQLite (production) and memory (the
 * same in an in-memory database, with fault injection, for tests).
 *
 * Calls on one store come from one thread at a time (the storage thread
 * while the server runs, the main thread at start-up).
 */
#ifndef CHORUS_STORE_H
#define CHORUS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../chat/chat.h"

/* Storage format version, kept in meta "format". 6: the cids table (a
 * client id's line: exactly-once sends, msgindex.h). 5: the message index
 * (msgs and likes tables, src/store/msgindex.h) and the snapshot table (one
 * row: the chat's state and the position it holds the ops up to; made when
 * missing, so format-5 databases from before it get it on open). 4: an op has client tags.
 * 3: an op has an account. 2: an op's lts is the one its origin gave it
 * (DESIGN.md 4.2). Formats 1 (lts given at delivery) to 3 are upgraded on
 * open: their ops keep the lts they were stored with and get the account ""
 * (formats 1 and 2: there were no accounts) and the tags "". Opening any
 * other version fails. Formats 1 to 5 get the message index built from
 * their ops on open (a pass over all of them, once). */
#define STORE_FORMAT_VERSION 6

enum store_status {
	STORE_OK = 0,
	STORE_NOTFOUND = 1,   /* meta_get: no such key */
	STORE_EFULL = -1,     /* the disk (or the configured size limit) is full */
	STORE_EIO = -2,       /* any other storage error */
	STORE_EFORMAT = -3,   /* the data directory holds another format version */
};

struct store;
struct store_pin;

/* Messages read from the message index, in ascending canonical order, each
 * with its like count (store_ops.history). Free with store_msgs_free. */
struct store_msgs {
	struct op *ops;
	uint32_t *likes;
	size_t n;
};
void store_msgs_free(struct store_msgs *m);

/*
 * A CHATHISTORY selection (draft/chathistory) over one history, in
 * canonical (ascending) order. An anchor is a msgid (a message of that
 * history: its position) or, with msgid NULL, a canonical time in ms
 * (op_time_ms, which rises along the order: strictly before/after).
 *   LATEST:  the last limit messages; with an anchor, only those after it.
 *   BEFORE:  the last limit messages strictly before a.
 *   AFTER:   the first limit messages strictly after a.
 *   AROUND:  up to limit messages around a. Around a msgid: the message,
 *            with (limit - 1) / 2 rounded up before it and the rest after
 *            it. Around a time T: the centre is the first message with a
 *            canonical time of T or later, or the end; limit / 2 messages
 *            are taken before it and the rest from it onward. A side with
 *            fewer messages than its share is not made up from the other.
 *   BETWEEN: messages strictly between a and b (either may be the
 *            earlier); limit taken from a's side.
 */
enum store_select {
	STORE_LATEST,
	STORE_BEFORE,
	STORE_AFTER,
	STORE_AROUND,
	STORE_BETWEEN,
};
struct store_anchor {
	const char *msgid;
	int64_t ms;
};

/* One feed on a timeline: the posts of history hist strictly after key
 * from (the follow in force). */
struct store_feed {
	char *hist;
	struct op_key from;
};

/* What store_load calls for each op. */
typedef int store_load_fn(const struct op *op, const struct chat_fact *fact, void *arg);

struct store_ops {
	/* Writes n ops in one transaction (group commit); an op already stored
	 * (same stream and seq) is skipped. All or nothing: on error none is
	 * stored. facts (NULL, or n of them): what chat_apply needs of each op
	 * (struct chat_fact; zero for one skipped). Returns a store_status. */
	int (*append)(struct store *s, const struct op *ops, size_t n, struct chat_fact *facts);
	/* Calls fn for every op stored after position after (0: every op), in
	 * the order they were appended, with its fact for a load (loaded set;
	 * repeat: a message that is a repeat of a client id, see msgindex.h);
	 * stops early and returns fn's value if it is non-zero. The op's
	 * strings are valid only during the call (copy what you keep), and fn
	 * must not call into the same store. */
	int (*load)(struct store *s, uint64_t after, store_load_fn *fn, void *arg);
	/* The position of the last op stored: every op appended later has a
	 * greater one, an op stored keeps its own (0: none stored). */
	uint64_t (*position)(struct store *s);
	/* The snapshot stored last (snapshot_put), a new buffer in *data
	 * (free it) of *len bytes, and the position it holds the ops up to.
	 * Returns STORE_OK, STORE_NOTFOUND (none) or an error status. */
	int (*snapshot_get)(struct store *s, uint64_t *upto, void **data, size_t *len);
	/* Replaces the snapshot by data (len bytes): the state of the ops up to
	 * position upto (chat_snapshot). Durable once it returns STORE_OK. */
	int (*snapshot_put)(struct store *s, uint64_t upto, const void *data, size_t len);
	/* Calls fn for every stored op of stream with from <= seq <= to, in
	 * ascending seq order (whatever the append order); stops early and
	 * returns fn's value if it is non-zero. Seqs not stored are skipped; an
	 * empty range (from > to) calls nothing. Returns STORE_OK or an error
	 * status. Same rules for fn as for load: strings valid only during the
	 * call, no calls into the same store. */
	int (*load_range)(struct store *s, const struct op_stream *stream, uint64_t from,
			  uint64_t to, int (*fn)(const struct op *op, void *arg), void *arg);
	/* The messages of history hist (chat_history_key) strictly after key
	 * after and strictly before key before (NULL: unbounded): the first
	 * limit of them, or the last limit if from_end, into *out, with their
	 * like counts (chat.h's rules). Returns STORE_OK or an error status
	 * (*out empty). */
	int (*history)(struct store *s, const char *hist, const struct op_key *after,
		       const struct op_key *before, size_t limit, int from_end, struct store_msgs *out);
	/* The selection sel of history hist with anchors a (NULL: none, for
	 * LATEST) and b (BETWEEN), at most limit messages, into *out in
	 * ascending order with like counts. Returns STORE_OK, STORE_NOTFOUND
	 * if a msgid anchor names no message of hist (*out empty), or an error
	 * status. */
	int (*select)(struct store *s, const char *hist, enum store_select sel,
		      const struct store_anchor *a, const struct store_anchor *b, size_t limit,
		      struct store_msgs *out);
	/* A timeline selection over feeds (chat_timeline_feeds gives a
	 * person's): their posts strictly after anchor after and strictly
	 * before anchor before (NULL: unbounded; a msgid anchor names any post,
	 * a time anchor as in select), the last limit of them if from_end,
	 * else the first limit, into *out ascending with like counts.
	 * Returns STORE_OK, STORE_NOTFOUND (a msgid anchor names no post) or
	 * an error status. */
	int (*timeline)(struct store *s, const struct store_feed *feeds, size_t nfeeds,
			const struct store_anchor *after, const struct store_anchor *before,
			size_t limit, int from_end, struct store_msgs *out);
	/* The message msgid names (any spelling op_msgid_parse takes) into
	 * *out (one message, with its like count), and in *liked whether
	 * person's like state of it is liked. Returns STORE_OK, STORE_NOTFOUND
	 * (no such message: *out empty) or an error status. */
	int (*message)(struct store *s, const char *msgid, const char *person, struct store_msgs *out,
		       int *liked);
	/* The digest of the message index, 64 hex digits and a NUL into out:
	 * the set hash (sethash.h) of its entries (history key and the op,
	 * every message of every history: chat_hash_op) and of every
	 * like state (message id, person, liked, the setter's key). Equal op
	 * sets give equal digests; a pass over all of them (seconds per
	 * million). Returns STORE_OK or an error status. */
	int (*digest)(struct store *s, char out[65]);
	/* Pins the state digest would hash now, at once, for store_pin_digest
	 * to hash later, on any thread, while this store goes on being used
	 * (a read transaction of its own). Returns STORE_OK with *pin, or an
	 * error status. */
	int (*digest_pin)(struct store *s, struct store_pin **pin);
	/* *value gets a new string (free it). Returns STORE_OK, STORE_NOTFOUND or an error. */
	int (*meta_get)(struct store *s, const char *key, char **value);
	/* Durable once it returns STORE_OK. */
	int (*meta_set)(struct store *s, const char *key, const char *value);
	/* Human-readable description of the last error (static or owned by s). */
	const char *(*last_error)(struct store *s);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

/* Convenience wrappers. */
static inline int store_append(struct store *s, const struct op *ops, size_t n,
			       struct chat_fact *facts)
{
	return s->ops->append(s, ops, n, facts);
}
static inline int store_load(struct store *s, uint64_t after, store_load_fn *fn, void *arg)
{
	return s->ops->load(s, after, fn, arg);
}
static inline uint64_t store_position(struct store *s)
{
	return s->ops->position(s);
}
static inline int store_snapshot_get(struct store *s, uint64_t *upto, void **data, size_t *len)
{
	return s->ops->snapshot_get(s, upto, data, len);
}
static inline int store_snapshot_put(struct store *s, uint64_t upto, const void *data, size_t len)
{
	return s->ops->snapshot_put(s, upto, data, len);
}
static inline int store_load_range(struct store *s, const struct op_stream *stream,
				   uint64_t from, uint64_t to,
				   int (*fn)(const struct op *, void *), void *arg)
{
	return s->ops->load_range(s, stream, from, to, fn, arg);
}
static inline int store_history(struct store *s, const char *hist, const struct op_key *after,
				const struct op_key *before, size_t limit, int from_end,
				struct store_msgs *out)
{
	return s->ops->history(s, hist, after, before, limit, from_end, out);
}
static inline int store_select(struct store *s, const char *hist, enum store_select sel,
			       const struct store_anchor *a, const struct store_anchor *b,
			       size_t limit, struct store_msgs *out)
{
	return s->ops->select(s, hist, sel, a, b, limit, out);
}
static inline int store_timeline(struct store *s, const struct store_feed *feeds, size_t nfeeds,
				 const struct store_anchor *after, const struct store_anchor *before,
				 size_t limit, int from_end, struct store_msgs *out)
{
	return s->ops->timeline(s, feeds, nfeeds, after, before, limit, from_end, out);
}
static inline int store_message(struct store *s, const char *msgid, const char *person,
				struct store_msgs *out, int *liked)
{
	return s->ops->message(s, msgid, person, out, liked);
}
static inline int store_digest(struct store *s, char out[65])
{
	return s->ops->digest(s, out);
}
static inline int store_digest_pin(struct store *s, struct store_pin **pin)
{
	return s->ops->digest_pin(s, pin);
}
/* The digest of what pin pinned (digest's value then), a pass over it;
 * frees pin. Returns STORE_OK or an error status. */
int store_pin_digest(struct store_pin *pin, char out[65]);
/* Frees pin unhashed (NULL: nothing). */
void store_pin_free(struct store_pin *pin);
static inline int store_meta_get(struct store *s, const char *key, char **value)
{
	return s->ops->meta_get(s, key, value);
}
static inline int store_meta_set(struct store *s, const char *key, const char *value)
{
	return s->ops->meta_set(s, key, value);
}
static inline const char *store_last_error(struct store *s)
{
	return s->ops->last_error(s);
}
static inline void store_close(struct store *s)
{
	s->ops->close(s);
}

enum store_sync { STORE_SYNC_OFF = 0, STORE_SYNC_NORMAL = 1, STORE_SYNC_FULL = 2 };

struct store_sqlite_options {
	enum store_sync sync;   /* PRAGMA synchronous; default FULL */
	int64_t max_bytes;      /* 0 = no limit; else the database may not grow past
				   this (PRAGMA max_page_count): a full disk on demand */
	int index_lag;          /* ops the message index may lag behind (0: the
				   default, MSGINDEX_LAG; tests set a few) */
};

/*
 * Opens (creating if needed) the SQLite store "chorus.db" in directory dir
 * (created if missing) in WAL mode; dir NULL: a database in memory (the
 * memory twin's), gone when closed. Returns NULL with *err set (a new
 * string) on failure, including a format version mismatch.
 */
struct store *store_sqlite_open(const char *dir, const struct store_sqlite_options *opt,
				char **err);

/* A store in memory, empty: an SQLite store in memory with fault injection. */
struct store *store_memory_new(void);
/* Fault injection for tests: the next n appends (and meta_sets) fail with status. */
void store_memory_fail(struct store *s, int n, int status);

#endif
