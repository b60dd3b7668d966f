/*
 * chat_impl.h: the private layout of the chat state machine, shared by its
 * files (chat.c: apply, users, rooms, conversations, likes; feeds.c: follow
 * states, feeds and timelines; accounts.c: accounts; history.c: histories'
 * lengths and caches; digest.c: the canonical digest). Nothing outside
 * src/chat includes it.
 *
 * Every table is a uthash keyed by a casefolded name or a msgid; tables are
 * unordered, so whatever must be ordered (iteration, the digest) sorts on
 * demand.
 */
#ifndef CHORUS_CHAT_IMPL_H
#define CHORUS_CHAT_IMPL_H

#include <stdlib.h>

#include "../common/buf.h"
#include "../common/seqset.h"
#include "../common/sethash.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "chat.h"

/* Allocation failure aborts, as everywhere in chorus. */
#define uthash_malloc(sz) xmalloc(sz)
#define uthash_fatal(msg) abort()
#include <uthash.h>

/* A stream's identity as the key of the applied table. Laid out without
 * padding so the bytes uthash hashes are all defined. */
struct applied_id {
	uint64_t incarnation;
	uint32_t origin;
	uint32_t boot;
};

/* The seqs of one stream applied so far. */
struct applied {
	struct applied_id id;
	struct seqset seqs;
	UT_hash_handle hh;
};

/* A known user: casefolded key, spelling from the lowest-keyed op they made. */
struct user {
	char *key;
	char *nick;
	struct op_key spelled_by;
	UT_hash_handle hh;
};

/* A room; the public part is what callers see. */
struct room_entry {
	char *key;
	struct chat_room room;
	struct op_key named_by;  /* lowest op naming it: spelling, created_ms */
	struct op_key topic_by;  /* op of the current topic, if has_topic */
	int has_topic;
	struct mode_reg *modes;    /* its mode registers (modes.c) */
	char *founder;             /* person of its lowest-keyed OP_ROOM, or NULL */
	struct op_key founded_by;
	UT_hash_handle hh;
};

/* One mode register of a room (modes.c): last writer wins by op key. */
struct mode_reg {
	char *key;              /* "<letter>:<casefolded param>"; "*:" + person for an invitation */
	int on;
	char *value;            /* the param as sent (key, limit, mask, person), "" when none */
	char *setter;           /* the author's nick */
	int64_t set_ms;         /* the op's wall time */
	struct op_key by;     /* the op that wrote it */
	UT_hash_handle hh;
};


/* A DM conversation between two users; fold[0] <= fold[1] (they are equal
 * for a conversation with oneself). The hash key is fold[0] NUL fold[1]. */
struct conv {
	char *key;
	size_t keylen;
	char *fold[2];
	char *name[2];             /* spellings from the lowest-keyed op */
	struct op_key named_by;
	struct chat_history *history;
	UT_hash_handle hh;
};

/* The conversations one (casefolded) nick takes part in, sorted by peer. */
struct party {
	char *key;
	struct conv **convs;
	size_t n, cap;
	UT_hash_handle hh;
};

/* A cached message (history.c); chat_msg is first so a chat_msg pointer
 * leads here. In the chat's msgs table by msgid. */
struct msg_entry {
	struct chat_msg msg;
	struct chat_history *history;
	size_t bytes;              /* what it counts against the cache budget */
	UT_hash_handle hh;
};

/* One user's follow state of another: last writer wins by key. A state is
 * never removed: an unfollow is a state too. */
struct follow_state {
	char *key;                 /* follower NUL followee, both casefolded */
	size_t keylen;
	const char *follower;      /* the two halves of key */
	const char *followee;
	int following;
	struct op_key set_by;
	UT_hash_handle hh;
};

/* Follow states sorted by the casefolded name on their other side. */
struct follow_list {
	struct follow_state **v;
	size_t n, cap;
};

/* What one (casefolded) nick has as a poster and a follower. */
struct feed {
	char *key;
	struct chat_history *posts;  /* their OP_POSTs, NULL until the first */
	struct follow_list follows;  /* states where they follow, by followee */
	struct follow_list followers;/* states where they are followed, by follower */
	UT_hash_handle hh;
};

/* One account name's ops (OP_REGISTER/PASSWORD/UNREGISTER), sorted by
 * key, and their fold (accounts.c). */
struct account_entry {
	char *key;                  /* casefolded name */
	struct op *ops;
	size_t n, cap;
	const struct op *live_op;   /* the OP_REGISTER in force, or NULL */
	struct chat_account live;   /* its state, when live_op */
	UT_hash_handle hh;
};

/* A history: a room's, a conversation's or a feed's messages by op_cmp,
 * as counted and cached here (history.c); the store holds them all. */
struct chat_history {
	struct chat *chat;
	struct chat_room *room;    /* NULL for a conversation or a feed */
	size_t n;                  /* messages applied to it, repeats included */
	size_t repeats;            /* of which repeats of a client id's line (chat_fact) */
	struct op_key last;        /* the key of the last, when n > 0 */
	struct msg_entry **cache;  /* its last ncached messages, ascending, from cache[first] */
	size_t first, ncached, cap;
	struct chat_history *prev, *next; /* in the chat's lru list, if on_lru */
	int on_lru;                /* it has cached messages it may give up */
};

struct chat {
	struct applied *applied;
	struct user *users;
	struct room_entry *rooms;
	struct conv *convs;
	struct party *parties;
	struct msg_entry *msgs;    /* the cached messages, by msgid */
	struct chat_history *lru;  /* histories with cached messages to give up, the
	                            * one cached into longest ago first (utlist DL) */
	size_t cache_bytes, cache_max, cache_keep; /* see chat_set_cache */
	struct follow_state *follows;
	struct feed *feeds;
	struct account_entry *accounts;
	uint64_t max_lts;
	uint64_t op_count;
	struct sethash set_digest;  /* of the applied ops (digest.c) */
	struct chat_sorted *sorted; /* see chat_users_sorted; behind a pointer, as
	                             * the const lookups refresh it */
};

/* The sorted users and rooms of chat_users_sorted / chat_rooms_sorted. */
struct chat_sorted {
	struct user **users;
	size_t nusers;
	struct room_entry **rooms;
	size_t nrooms;
};

/* ---- modes.c ---- */
/* 0 if OP_MODE / OP_KICK / OP_INVITE op is well formed, else -1. */
int modes_check(const struct op *op);
/* Applies a valid OP_MODE / OP_KICK / OP_INVITE to room r; returns the
 * change, and in *mask which of an OP_MODE's changes changed something. */
enum chat_change modes_apply(struct room_entry *r, const struct op *op, unsigned *mask);
/* An OP_ROOM of r: its author founded r if it is the lowest-keyed so far.
 * Returns 1 if that took the place of another founder (written to was, of
 * len bytes, if not NULL). */
int modes_founded(struct room_entry *r, const struct op *op, char *was, size_t len);
/* A new room's public mode fields; frees what modes.c holds of r. */
void modes_init(struct room_entry *r);
void modes_free(struct room_entry *r);

/* ---- snapshot.c: the codec blocks of a snapshot ---- */
void snap_u64(struct op_buf *b, uint64_t v);
void snap_str(struct op_buf *b, const char *s);
void snap_key(struct op_buf *b, const struct op_key *k);
uint64_t snap_read_u64(struct op_reader *r);
char *snap_read_str(struct op_reader *r);
struct op_key snap_read_key(struct op_reader *r);
size_t snap_read_count(struct op_reader *r, size_t min);
/* Each part's own: written by *_snapshot, read back by *_restore (which
 * set r->bad on input they cannot take). */
void modes_snapshot(const struct room_entry *r, struct op_buf *b);
void modes_restore(struct room_entry *r, struct op_reader *rd);
void history_snapshot(const struct chat_history *h, struct op_buf *b);
void history_restore(struct chat_history *h, struct op_reader *r);
void feeds_snapshot(const struct chat *c, struct op_buf *b);
void feeds_restore(struct chat *c, struct op_reader *r);
void accounts_snapshot(const struct chat *c, struct op_buf *b);
void accounts_restore(struct chat *c, struct op_reader *r);

/* ---- chat.c ---- */
/* Frees everything c holds but its cache settings: c is as new. */
void chat_clear(struct chat *c);
/* A new room name (spelled so by the op of key named_by), with no topic,
 * its default modes and an empty history. */
struct room_entry *room_new(struct chat *c, const char *name, const struct op_key *named_by,
			    int64_t created_ms);
/* The key of the conversation between persons a and b: the two casefolded
 * in ascending order, NUL between them. Sets *fa, *fb (new strings, fa <= fb). */
char *conv_key(const char *a, const char *b, size_t *len, char **fa, char **fb);
/* A new conversation of key (conv_key: key, len, f0, f1, which it takes),
 * its sides spelled n0, n1 by the op of key named_by, with an empty
 * history, listed in both persons' parties. */
struct conv *conv_new(struct chat *c, char *key, size_t len, char *f0, char *f1, const char *n0,
		      const char *n1, const struct op_key *named_by);
/* Writes op_msgid's spelling of the msgid s (any spelling op_msgid_parse
 * accepts) into out. Returns 0, or -1 if s is not a msgid. Public lookups by
 * msgid go through it, so every spelling of one msgid names one message. */
int chat_msgid_canonical(const char *s, char out[OP_MSGID_MAX]);
/* All users / rooms sorted by casefolded key, valid until the next one is
 * added (the chat keeps them; not to be freed). Sorted again only after one
 * was added: users and rooms are never removed, so a listing of an
 * unchanged chat costs no sort. */
struct user **chat_users_sorted(const struct chat *c, size_t *n);
struct room_entry **chat_rooms_sorted(const struct chat *c, size_t *n);

/* ---- feeds.c ---- */
/* Applies an OP_FOLLOW/OP_UNFOLLOW (author follows or unfollows target).
 * Returns 1 if it changed whether the author follows the target. */
int follows_apply(struct chat *c, const struct op *op);
/* The feed history of author (casefolded or not), made if new. */
struct chat_history *feeds_posts(struct chat *c, const char *author);
void feeds_free_all(struct chat *c);

/* ---- accounts.c ---- */
/* Applies an OP_REGISTER/OP_PASSWORD/OP_UNREGISTER. Returns 1 if it changed
 * the account's registration in force or its verifier. */
int accounts_apply(struct chat *c, const struct op *op);
/* New array of every account name's entry (registered now or not), sorted
 * by key; free() it. */
struct account_entry **accounts_sorted(const struct chat *c, size_t *n);
void accounts_free_all(struct chat *c);

/* ---- digest.c ---- */
/* Adds the newly applied op to the set digest. */
void digest_add_op(struct chat *c, const struct op *op);

/* ---- history.c ---- */
struct chat_history *history_new(struct chat *c, struct chat_room *room);
/* Counts msg (a valid OP_MSG/DM/POST applied now) into h and caches it if
 * it falls in the cached suffix and fact is known (not loading), with
 * fact's like count. Sets eff's history, msg (if cached) and appended. */
void history_add(struct chat_history *h, const struct op *msg, const struct chat_fact *fact,
		 struct chat_effect *eff);
/* The cached message msgid (canonical), or NULL. */
struct msg_entry *history_cached_msg(const struct chat *c, const char *msgid);
void history_free(struct chat_history *h);

/* Collects the items of a uthash table into a new array (of pointers) sorted
 * by cmp, a qsort comparator over pointers to items. Frees with free(). */
#define CHAT_HASH_SORTED(head, type, cmp, arr, count)                         \
	do {                                                                  \
		type *chat_it_, *chat_tmp_;                                   \
		size_t chat_i_ = 0;                                           \
		(count) = HASH_COUNT(head);                                   \
		(arr) = xcalloc((count), sizeof *(arr));                      \
		HASH_ITER(hh, (head), chat_it_, chat_tmp_)                    \
			(arr)[chat_i_++] = chat_it_;                          \
		qsort((arr), (count), sizeof *(arr), (cmp));                  \
	} while (0)

#endif
