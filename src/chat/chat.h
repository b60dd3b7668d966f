/*
 * chat.h: the chat state machine: every room, direct conversation, feed,
 * topic, mode, follow, account and known user, built only by applying
 * operations, and each history's length with a cache of its latest lines.
 * It does no I/O: the messages and like states themselves are the store's
 * (src/store/msgindex.c), which hands chat_apply what it needs of them with
 * each op it stores (struct chat_fact).
 *
 * Convergence contract: applying the same set of operations in any order
 * (each op possibly several times) gives the same state. Messages are in
 * canonical order (op_cmp); like state is one value per (message, user), the
 * op with the greatest op_cmp key wins (the store keeps it); a topic
 * likewise. A like whose message has not arrived is kept (by the store) as a
 * placeholder and counts when the message comes.
 * A like of one's own message never counts. A follow state is one value per
 * (follower, followee), decided the same way (OP_FOLLOW/OP_UNFOLLOW, the
 * greatest key wins); following oneself is ignored. Posts (OP_POST) go to
 * their author's feed, a history like a room's.
 *
 * Names: room names and nicks compare case-insensitively with ASCII casemapping
 * (A-Z fold to a-z); each keeps the spelling of the op with the lowest key.
 *
 * Persons: what a user owns (like states, the follower side of follows, a
 * feed, DM conversations) belongs to a person: the op's author with its
 * account, written "nick/<registration msgid>" (casefolded), or the bare
 * casefolded nick for an op made without an account. So two accounts of one
 * name (registered in two partitions, or one removed and the name registered
 * again) never share anything, whichever holds the name now. An OP_DM's
 * recipient is the person (target, ref). Functions below that take a
 * `person` take such a string (chat_person); a `nick` or `name` is a name.
 * Accounts are the fold of their ops (accounts.c; docs/DESIGN-NOTES.md).
 */
#ifndef CHORUS_CHAT_H
#define CHORUS_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "op.h"

struct chat;
struct chat_history;

/* The target of every OP_POST: the per-user pseudo-room of posts. */
#define CHAT_TIMELINE "&timeline"

/* One message (OP_MSG, OP_DM or OP_POST) held in a room's, conversation's or
 * feed's history. */
struct chat_msg {
	struct op op;               /* the operation itself, lts set */
	char msgid[OP_MSGID_MAX];   /* op_msgid(&op) */
	uint32_t likes;             /* users whose like state is "liked" now */
};

/* Most changes one OP_MODE carries. */
#define CHAT_MODE_CHANGES_MAX 8

/* A room's flag modes (chat_room.modes). */
enum chat_mode {
	CHAT_MODE_I = 1,   /* +i invite only */
	CHAT_MODE_M = 2,   /* +m moderated: only voiced users and operators speak */
	CHAT_MODE_N = 4,   /* +n no messages from outside */
	CHAT_MODE_S = 8,   /* +s secret */
	CHAT_MODE_T = 16,  /* +t only operators set the topic */
};

struct chat_room {
	char *name;                 /* "#room" as first spelled */
	char *topic;                /* "" when none */
	char *topic_author;         /* "" when none */
	int64_t topic_ms;           /* wall time of the topic op, 0 when none */
	int64_t created_ms;         /* wall time of the earliest op naming the room */
	struct chat_history *history;
	unsigned modes;             /* enum chat_mode bits in force (new rooms: +nt) */
	const char *key;            /* +k, "" when none */
	unsigned limit;             /* +l, 0 when none */
	unsigned bans;              /* masks on its +b list */
	const char *founder;        /* the person who created it (an operator), or NULL */
};

/* What applying one operation changed; the server fans this out. */
enum chat_change {
	CHAT_UNCHANGED = 0,   /* already applied, or ignored (e.g. liking one's own line) */
	CHAT_USER_NEW,        /* OP_USER: a user became known */
	CHAT_ROOM_NEW,        /* OP_ROOM (or first op naming a room): a room became known */
	CHAT_MSG_NEW,         /* OP_MSG/OP_DM/OP_POST stored: see history, msg, appended */
	CHAT_MSG_REPEAT,      /* OP_MSG/OP_DM stored, a repeat of a line its person sent with
	                       * the same client id (op_client_id): no line; that line is at
	                       * line (its key) */
	CHAT_LIKES_CHANGED,   /* OP_LIKE/OP_UNLIKE changed its message's like count */
	CHAT_LIKE_PENDING,    /* like/unlike kept as a placeholder: message unknown yet */
	CHAT_LIKE_SAME,       /* like/unlike recorded but the count did not change */
	CHAT_TOPIC_CHANGED,   /* OP_TOPIC became the room's current topic */
	CHAT_FOLLOW_CHANGED,  /* OP_FOLLOW/OP_UNFOLLOW changed whether its author follows its target */
	CHAT_ACCOUNT_CHANGED, /* OP_REGISTER/PASSWORD/UNREGISTER changed the account op->author:
	                       * the registration in force (or none now) or its verifier */
	CHAT_MODE_CHANGED,    /* OP_MODE changed what the room's modes say */
	CHAT_KICKED,          /* OP_KICK: person op->ref was kicked out of the room */
	CHAT_INVITED,         /* OP_INVITE: person op->ref was invited into the room */
	CHAT_FOUNDER_CHANGED, /* OP_ROOM: an earlier creation (from another partition) makes
	                       * its author the founder instead of founder_was */
};

struct chat_effect {
	enum chat_change change;
	struct chat_room *room;        /* room concerned, or NULL (DMs, users) */
	struct chat_history *history;  /* history concerned (CHAT_MSG_NEW; a like of a cached
	                                * message), or NULL */
	const struct chat_msg *msg;    /* the message stored or liked if the cache holds it, or NULL */
	long likes;                    /* CHAT_LIKES_CHANGED, CHAT_LIKE_SAME: the message's like
	                                * count now; else -1 */
	int appended;                  /* CHAT_MSG_NEW: 1 if it went last, 0 if inserted earlier */
	unsigned mode_changes;         /* CHAT_MODE_CHANGED: bit i set if the op's change i changed
	                                * what the room says */
	char founder_was[128];         /* CHAT_FOUNDER_CHANGED: the former founder (a person) */
	int room_created;              /* 1 if this op also made its room known */
	struct op_key line;            /* CHAT_MSG_REPEAT: the key of the line it repeats;
	                                * CHAT_MSG_NEW with displaced: of the line it replaced */
	int displaced;                 /* CHAT_MSG_NEW: a repeat that sorts before the line of its
	                                * client id, and so took its place (that line is no
	                                * longer one) */
};

/* What the store knew of an op as it stored it, that chat_apply needs and
 * the chat does not keep (the store's message index fills one per op it
 * stores: store_append). */
struct chat_fact {
	uint32_t likes;    /* a message: its like count (of likes that came before it);
	                    * a like or unlike of a known message: the count after it */
	uint8_t known;     /* a like or unlike: its message is stored */
	uint8_t own;       /* a like or unlike: of its author's own message (never counts) */
	uint8_t changed;   /* a like or unlike: it changed the liker's state (liked or not) */
	uint8_t repeat;    /* a message: its person sent one with the same client id
	                    * (op_client_id) before it here: it adds no line */
	uint8_t line;      /* a repeat: it is now that id's line, for it sorts before
	                    * the one that was (other); else other is the line */
	uint8_t loaded;    /* the op is loaded at start-up (store_load: only repeat
	                    * is set): nothing is cached, no effect is wanted */
	struct op_key other;
};

/* Longest nick, and longest string field of an op that chat_apply takes
 * (a client's line and its tag section are shorter). */
#define CHAT_NICK_MAX 30
#define CHAT_FIELD_MAX 4096

/* 1 if nick is a valid nick: 1 to CHAT_NICK_MAX of letters, digits and
 * []\`_^{|}-, not starting with a digit or '-'. */
int chat_nick_valid(const char *nick);

struct chat *chat_new(void);
void chat_free(struct chat *c);

/*
 * Applies op (copied; the caller keeps its op), stored with fact (see
 * struct chat_fact), and describes what changed in *eff. fact NULL: the op
 * is loaded at start-up (no effect is wanted; nothing is cached). Idempotent: a second apply of the same (stream, seq) returns
 * CHAT_UNCHANGED. Returns 0, or -1 if the op is malformed (unknown kind, seq 0,
 * an author that is not a valid nick, a string field over CHAT_FIELD_MAX bytes
 * or not UTF-8, a room op whose target does not start with '#', a
 * DM or follow whose target is not a valid nick, a post whose target is not
 * CHAT_TIMELINE, an OP_REGISTER without a verifier, an account change whose
 * ref is not a msgid), changing nothing. Ops from peers meet the same checks
 * as those made here from a client's line, at the same place on every
 * replica, so a malformed one is stored (and resent) but applied nowhere.
 */
int chat_apply(struct chat *c, const struct op *op, const struct chat_fact *fact,
	       struct chat_effect *eff);

/* 0 if op is well formed (see chat_apply), else -1. The store indexes
 * exactly the messages and likes chat_apply applies. */
int chat_op_valid(const struct op *op);

/* The key of the history a message (OP_MSG, OP_DM, OP_POST) belongs to, as
 * a new string: its room casefolded ("#room"), "@<person> <person>" for a
 * conversation (the two persons ascending), "~<person>" for a feed; NULL
 * for any other kind. */
char *chat_history_key(const struct op *op);
/* The history key of room name (any case) / of the conversation between
 * persons a and b (either order) / of person's feed, new. */
char *chat_room_history_key(const char *name);
char *chat_dm_history_key(const char *a, const char *b);
char *chat_feed_history_key(const char *person);

/* Highest lts of any operation applied so far (0 when none). */
uint64_t chat_max_lts(const struct chat *c);

/* Number of operations applied (duplicates not counted). */
uint64_t chat_op_count(const struct chat *c);

/* ---- users ---- */
int chat_user_known(const struct chat *c, const char *nick);
/* The spelling of the known user nick (any case), or NULL if unknown. */
const char *chat_user_name(const struct chat *c, const char *nick);
/* Calls fn for each known user in ascending casefolded order. */
void chat_users_each(const struct chat *c, void (*fn)(const char *nick, void *arg), void *arg);

/* ---- accounts and persons ---- */
struct chat_account {
	const char *name;           /* as registered */
	char regid[OP_MSGID_MAX];   /* the msgid of the OP_REGISTER in force */
	const char *verifier;       /* its SCRAM verifier now */
	const char *email;          /* "" when none */
	int64_t registered_ms;
};
/* The account registered under name (any case) now, or NULL. Valid until
 * the next chat_apply. */
const struct chat_account *chat_account_find(const struct chat *c, const char *name);
/* The person string of nick with account (a registration msgid, or NULL or
 * "" for none), new. */
char *chat_person(const char *nick, const char *account);
/* The person who holds name now: with its account if registered, new. */
char *chat_person_of_name(const struct chat *c, const char *name);

/* ---- rooms ---- */
struct chat_room *chat_room_find(const struct chat *c, const char *name);
size_t chat_room_count(const struct chat *c);
/* Calls fn for each room in ascending casefolded name order. */
void chat_rooms_each(const struct chat *c, void (*fn)(struct chat_room *room, void *arg), void *arg);

/* ---- room modes (modes.c) ---- */
/* One change of an OP_MODE. */
struct chat_mode_change {
	int on;
	char letter;
	char param[256]; /* "" for a flag, -k or -l */
};
/* Reads the next change of an OP_MODE from *body ("+x" pairs) and *params
 * (space-separated, one for each change that takes one: b e I o v, +k,
 * +l), advancing both. Returns 1 with c filled, 0 at the end, -1 if
 * malformed. */
int chat_mode_next(const char **body, const char **params, struct chat_mode_change *c);
/* 1 if person is an operator / has voice in room now (the founder is an
 * operator unless taken off). */
int chat_room_is_op(const struct chat_room *room, const char *person);
int chat_room_is_voiced(const struct chat_room *room, const char *person);
/* 1 if person's latest invitation into room stands (not kicked since). */
int chat_room_invited(const struct chat_room *room, const char *person);
/* Calls fn for each mask on list ('b', 'e' or 'I') of room, in casefolded
 * order, with who set it and when. */
void chat_room_list_each(const struct chat_room *room, char list,
			 void (*fn)(const char *mask, const char *setter, int64_t set_ms, void *arg), void *arg);

/* ---- direct messages ---- */
/* The conversation between persons a and b (either order), or NULL if none yet. */
struct chat_history *chat_dm_history(const struct chat *c, const char *a, const char *b);
/* Calls fn for every conversation person takes part in, with the other
 * side's nick and the conversation's history. */
void chat_dm_each(const struct chat *c, const char *person,
		  void (*fn)(const char *peer, struct chat_history *h, void *arg), void *arg);

/* ---- histories ----
 * A history (a room's, a conversation's, a feed's) as the chat keeps it: its
 * length, its last key and a cache of its latest messages, a suffix of it in
 * canonical order, within the chat's byte budget (chat_set_cache). The
 * store holds every message (store_select and friends read them). */
size_t chat_history_len(const struct chat_history *h);
/* The key of h's last message into *k; -1 if h is empty. */
int chat_history_last(const struct chat_history *h, struct op_key *k);
/* The last limit messages of h (all of them if fewer), ascending, into out
 * if the cache holds them all: returns how many; -1 if it does not. The
 * pointers are valid until the next chat_apply. */
long chat_history_cached(const struct chat_history *h, size_t limit, const struct chat_msg **out);
/* The latest messages of h the cache holds, at most limit, ascending, into
 * out; returns how many. A room's cache holds its last chat_set_cache keep
 * lines, one fewer for each cached line a repeat took the place of
 * (exactly-once sends: the repeat sorted before the cache) until new lines
 * come. The pointers are valid until the next chat_apply. */
size_t chat_history_latest(const struct chat_history *h, size_t limit, const struct chat_msg **out);
/* The byte budget of the caches of all histories (CHAT_CACHE_DEFAULT at
 * first; lowering it evicts at once), and how many of its last messages a
 * room's cache holds whatever the budget (0 at first). Bytes counted: each
 * cached message's op with its strings and its place in the cache. */
#define CHAT_CACHE_DEFAULT ((size_t)64 << 20)
void chat_set_cache(struct chat *c, size_t bytes, size_t keep);
/* The last messages of h, ascending, with their like counts, as the store
 * holds them when nothing it holds is unapplied (at start-up, after the
 * load): n = min(len, keep) of them for a room. h's cache becomes them. */
void chat_history_fill(struct chat_history *h, const struct op *ops, const uint32_t *likes, size_t n);
/* The room cache's keep (chat_set_cache). */
size_t chat_cache_keep(const struct chat *c);
/* Bytes the caches hold now. */
size_t chat_cache_bytes(const struct chat *c);

/* ---- follows, feeds and timelines ---- */
/* 1 if follower follows followee now, else 0 (names in any case). */
int chat_following(const struct chat *c, const char *follower, const char *followee);
/* Calls fn for each user nick follows now / who follows nick now, in
 * ascending casefolded order, with the user's known spelling (the casefolded
 * name if the user is not known). */
void chat_follow_each(const struct chat *c, const char *nick,
		      void (*fn)(const char *followee, void *arg), void *arg);
void chat_followers_each(const struct chat *c, const char *nick,
			 void (*fn)(const char *follower, void *arg), void *arg);
/* nick's feed (their posts), or NULL if they never posted. */
struct chat_history *chat_feed_history(const struct chat *c, const char *nick);
/* 1 if post (an OP_POST) is on nick's timeline: nick follows its author
 * now and the post's key is greater than the key of the follow op in force
 * (a post made before the follow is not on it). */
int chat_timeline_includes(const struct chat *c, const char *nick, const struct op *post);

/* Calls fn for each feed on person's timeline now: its history key and the
 * key of the follow in force (its posts after that key are on it). */
void chat_timeline_feeds(const struct chat *c, const char *person,
			 void (*fn)(const char *hist, const struct op_key *from, void *arg), void *arg);

/* ---- digest ---- */
/* SHA-256 of the canonical working state (users, rooms with topics and
 * modes, the length of every history, follow states, accounts) and
 * store_part, the digest of the store that holds the chat's ops
 * (store_digest: its messages in their histories and like states), as 64
 * hex chars + NUL into out[65]. Equal digests = converged replicas. */
void chat_digest(const struct chat *c, const char *store_part, char out[65]);
/* The two parts of chat_digest, for when they are taken apart: the working
 * state's hash, and the digest of a state part and a store part. */
void chat_state_digest(const struct chat *c, char out[65]);
void chat_digest_of_parts(const char *state_part, const char *store_part, char out[65]);

/* The set digest: a hash of the set of operations applied (the sum of
 * their hashes, kept as they apply), 64 hex chars + NUL into out[65].
 * Constant time at any size. Equal op sets give equal set digests; a
 * state that differs under equal op sets shows only in chat_digest. */
void chat_set_digest(const struct chat *c, char out[65]);
/* Appends op's fields (stream, seq, lts, wall_ms, kind, flags, every
 * string) to the set member h is building (sethash.h), as the set digest
 * hashes an op. */
struct sethash;
void chat_hash_op(struct sethash *h, const struct op *op);

/* ---- snapshot (snapshot.c) ---- */
/* Appends c's state, the caches excepted, to b as bytes chat_restore
 * takes. Applying to the restored chat the ops applied after the snapshot
 * gives the state of applying them to c. */
void chat_snapshot(const struct chat *c, struct op_buf *b);
/* Makes c (new: no op applied) the state of the snapshot data. Returns 0,
 * or -1 (c left new) if data is not a whole snapshot of this version. */
int chat_restore(struct chat *c, const void *data, size_t len);
/* Calls fn for every stream of which c applied ops, with the seqs applied. */
struct seqset;
void chat_applied_each(const struct chat *c,
		       void (*fn)(const struct op_stream *stream, const struct seqset *seqs, void *arg),
		       void *arg);

/* ASCII casefold of s into a new string. */
char *chat_casefold(const char *s);

#endif
