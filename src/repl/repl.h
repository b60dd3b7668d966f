/*
 * repl.h: the replica core: one replica's operations, clock, knowledge and
 * view synchronisation, without sockets, threads or timers, so the server
 * and the simulation test drive the very same code.
 *
 * The owner wires three things to it:
 *   - a group (src/group): its deliver/view callbacks call repl_deliver and
 *     repl_view; repl multicasts through it;
 *   - an io: durable writes and range reads, completed later (in order) by
 *     calling repl_stored and repl_read_done;
 *   - callbacks: what each stored op changed (for fan-out), own ops that
 *     could not be stored, view changes.
 *
 * Flow of one op: repl_submit (seq from this replica's stream, lts from its
 * clock: DESIGN.md 4.2) -> held until repl_flush -> group multicast ->
 * repl_deliver (agreed order; the op keeps its lts, the clock moves past
 * it) -> io write -> repl_stored -> chat_apply -> effect callback.
 *
 * Soft state (presence) rides the same group in its own message type.
 *
 * Views (DESIGN.md 4.3): on every view each member multicasts its knowledge
 * row (per stream, the seq ranges it holds) and its clock. Once every
 * member's row has been delivered, for each part of a stream that some
 * member lacks, the lowest-id member holding it re-multicasts it, in bounded
 * batches, one batch in flight at a time (the next goes once the previous
 * one has come back in order). A long part that exactly one member lacks
 * goes to it alone over a direct link when the io has one (repl_io.direct:
 * chorusd's catch-up links, src/link), a window of batches in flight, each
 * answered by the receiver; a batch refused or lost on the way is multicast
 * instead. New ops never wait for the sync: their order is fixed by the lts
 * their origin gave them.
 */
#ifndef CHORUS_REPL_H
#define CHORUS_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "chat/chat.h"
#include "group/group.h"
#include "store/store.h"

#define REPL_RESEND_BATCH 256   /* ops per resend multicast */
#define REPL_DIRECT_BATCH 4096  /* ops per batch sent over a direct link */
#define REPL_DIRECT_WINDOW 4    /* direct batches sent and not yet answered, at most */
#define REPL_DIRECT_MIN 4096    /* the shortest part of a stream sent over a direct link */
#define REPL_MULTICAST_OPS 512  /* new ops per multicast */
#define REPL_WIRE_VERSION 6     /* 6: op codec 4; 5: ops carry client tags; 4: an account; 3: their origin's lts */
#define REPL_SKEW_MAX_MS 60000  /* a clock ahead of the others' counts as this far ahead */
/* The largest lts, seq or clock accepted from the group: far above any a
 * replica makes (2^62 >> 16 ms is ~2,200 years), far enough below 2^64
 * that no sum wraps. An op or row past it is refused and logged. */
#define REPL_NUMBER_MAX (1ULL << 62)

enum repl_mode {
	REPL_AVAILABLE = 0, /* every view accepts writes */
	REPL_MAJORITY = 1,  /* only a view with a majority of cluster_size does */
};

struct repl_io {
	/* Queues op for durable writing, taking its strings (allocated; NULL
	 * after); every op written is later reported through repl_stored, in
	 * the order written. */
	void (*write)(void *ctx, struct op *op);
	/* After the writes queued before it, reads the ops of stream with seq in
	 * [from, to], ascending, and reports them through repl_read_done. */
	void (*read)(void *ctx, const struct op_stream *stream, uint64_t from, uint64_t to);
	/* Keeps data (len bytes, copied) as the snapshot of the chat (see
	 * chat_snapshot) holding every op reported through repl_stored so far
	 * and none other; called from repl_stored every snapshot_every ops
	 * applied (0: REPL_SNAPSHOT_EVERY). NULL: none kept (start-up
	 * replays every op). */
	void (*snapshot)(void *ctx, const void *data, size_t len);
	uint64_t snapshot_every;
	/* Optional: sends data (len bytes, copied: ops as a multicast carries
	 * them) to member alone, after what went to it before. Returns 0 if
	 * sent: the batch is later answered once, in order per member, through
	 * repl_direct_answer, or repl_direct_lost says the link broke; a
	 * negative error if member cannot be reached so (the batch is
	 * multicast). NULL: every resend is multicast. */
	int (*direct)(void *ctx, uint32_t member, const void *data, size_t len);
	uint64_t direct_min; /* REPL_DIRECT_MIN if 0 */
	void *ctx;
};

/* Ops applied between two snapshots (repl_io.snapshot), by default. */
#define REPL_SNAPSHOT_EVERY 65536

struct repl_callbacks {
	/* op is stored and applied; own = 1 if it is from this replica's
	 * current stream (its seq names the answer to send). */
	void (*effect)(void *arg, const struct op *op, const struct chat_effect *eff, int own);
	/* A write failed: called once with op NULL (the store failed; writes are
	 * refused until repl_recover), then for each op of this replica's stream
	 * in the failed batch. Also called (op non-NULL) for each own op the
	 * group refused to multicast. */
	void (*failed)(void *arg, const struct op *op);
	/* The view changed (members in v). */
	void (*view)(void *arg, const struct group_view *v);
	/* A soft-state message (repl_send_soft) from another member, in agreed
	 * order. */
	void (*soft)(void *arg, uint32_t sender, const void *data, size_t len);
	/* The wall clock in ms (display time, and the floor of new lts); NULL
	 * for the system's. */
	int64_t (*now)(void *arg);
	void *arg;
};

struct repl;

/* A replica with id self; cluster_size is the number of configured replicas
 * (for majority mode; repl_set_cluster_size changes it). */
struct repl *repl_new(uint32_t self, enum repl_mode mode, unsigned cluster_size,
		      const struct repl_callbacks *cb);
void repl_free(struct repl *r);
void repl_set_cluster_size(struct repl *r, unsigned cluster_size);

/*
 * Takes the identity stored in st (making it on first use; a data directory
 * of another replica id is refused), stores the next boot, then rebuilds the
 * chat state and knowledge from st (its snapshot, if it has one, and the
 * ops stored after it), and fills the rooms' caches with their last lines
 * (chat_set_cache's keep). Call before repl_attach, on the owner's
 * thread, with nothing else using st. Returns 0 or -1 with *err set (a new
 * string).
 */
int repl_open(struct repl *r, struct store *st, char **err);

/* Starts a new stream (boot + 1 stored in st). Returns 0 or -1. */
int repl_new_stream(struct repl *r, struct store *st);

/*
 * After a failed write, once st works again: rebuilds the knowledge from what
 * st really holds, the ops the chat applied (every write is reported, so
 * those are what is stored; ops delivered but not stored are no longer
 * claimed), starts a new stream and holds new ops until the next view's
 * rows. The owner then rejoins the group, so the next sync round brings
 * back what was lost. Call only while no write or read is in flight.
 * Returns 0 or -1.
 */
int repl_recover(struct repl *r, struct store *st);

/* Connects the group and io; the owner then calls group_join. */
void repl_attach(struct repl *r, struct group *g, const struct repl_io *io);

/*
 * A change from a local client: gives op this replica's stream, the next seq,
 * the wall time and its lts, and holds it for the next repl_flush. The lts
 * is one more than the highest lts this replica has seen, or its wall clock
 * (ms << OP_LTS_SHIFT) if that is higher; the wall clock counts for at
 * most REPL_SKEW_MAX_MS past the newest wall time of the other replicas'
 * ops (moved on by the time passed since). Takes op's strings
 * (op is zeroed but keeps stream and seq for the caller). Returns 0, or -1 if
 * this replica does not accept writes now (see repl_writable).
 */
int repl_submit(struct repl *r, struct op *op);

/* Multicasts soft state (presence: never stored, not part of the sync):
 * delivered to the other members' soft callback. Returns 0 or -1. */
int repl_send_soft(struct repl *r, const void *data, size_t len);

/* Multicasts the held ops. */
void repl_flush(struct repl *r);

/* Group callbacks. */
void repl_deliver(struct repl *r, uint32_t sender, const void *data, size_t len);
void repl_view(struct repl *r, const struct group_view *v);

/* io completions. status is a store_status for the whole batch; facts
 * (STORE_OK) the store's fact of each op (store_append). */
void repl_stored(struct repl *r, int status, const struct op *ops, const struct chat_fact *facts,
		 size_t n);
void repl_read_done(struct repl *r, const struct op *ops, size_t n);

/*
 * Direct links (repl_io.direct). The receiving end: data that member sender
 * sent over a direct link. Its ops are taken as a resend delivered by the
 * group is. Returns 0 if every op was taken or was held already, -1 if some
 * were refused (the data is not ops, or sender is not in our view or its row
 * in it does not show them): the sender multicasts them instead.
 */
int repl_direct_deliver(struct repl *r, uint32_t sender, const void *data, size_t len);
/* The sending end: the oldest unanswered batch sent to member was taken
 * (taken = 1) or refused (0: it is multicast, if its view is still ours). */
void repl_direct_answer(struct repl *r, uint32_t member, int taken);
/* The link to member broke: what was sent over it and is unanswered is
 * multicast (if its view is still ours), and so is the rest of this view's
 * resends to member. */
void repl_direct_lost(struct repl *r, uint32_t member);

/* 0 = writable; else why not: */
enum repl_refusal {
	REPL_OK = 0,
	REPL_STORE_FAILED = 1, /* the store refused a write: until a new stream */
	REPL_MINORITY = 2,     /* majority mode and this view is a minority */
};
int repl_writable(const struct repl *r);
/* Marks the store failed (refusing writes) — done by repl_stored on errors. */
int repl_store_failed(const struct repl *r);

struct chat *repl_chat(const struct repl *r);
const struct op_stream *repl_stream(const struct repl *r);
const struct group_view *repl_current_view(const struct repl *r);
/* 1 while this view's sync (rows and resends) is still going on. */
int repl_syncing(const struct repl *r);
/* Ops held, delivered-but-unstored, resends outstanding and direct batches
 * unanswered. */
size_t repl_backlog(const struct repl *r);

#endif
