/*
 * store_writer.h: durable writes off the event loop, with group commit.
 *
 * The loop thread submits operations as they are delivered; the writer sends
 * everything submitted during one loop turn to the storage thread as one
 * transaction (store_append). While one transaction is being written, newly
 * submitted operations gather for the next. Completions come back to the
 * loop thread, in submission order, through done().
 *
 * Reads (store_writer_read, _select, _timeline, _message, _digest) go through the same queue: a read runs on the
 * storage thread after every write submitted before it, so it sees them, and
 * its result comes back on the loop thread in the same order as the writes'
 * completions. Writes submitted between two reads still form one transaction.
 */
#ifndef CHORUS_STORE_WRITER_H
#define CHORUS_STORE_WRITER_H

#include <uv.h>

#include "store.h"

struct store_writer;

/* Called on the loop thread when a batch has been written (status STORE_OK,
 * with the store's fact of each op: store_append) or has failed (status <
 * 0: nothing of the batch is stored; facts NULL). ops and facts are the
 * writer's, valid only during the call. */
typedef void (*store_done_fn)(void *arg, int status, const struct op *ops,
			      const struct chat_fact *facts, size_t n);

/* Called on the loop thread with the result of a read: status STORE_OK and
 * the n ops found (ascending seq; n = 0 for an empty range or none stored),
 * or status < 0 with n = 0. ops are copies, valid only during the call. */
typedef void (*store_read_fn)(void *arg, int status, const struct op *ops, size_t n);

/* Called on the loop thread with the result of a select: status STORE_OK
 * and the messages found, STORE_NOTFOUND (a msgid anchor names no message
 * of the history), or an error status with none. found is the writer's,
 * valid only during the call (take what you keep). */
typedef void (*store_select_fn)(void *arg, int status, struct store_msgs *found);

/* Called on the loop thread with the result of a message lookup: STORE_OK
 * with the message (valid only during the call) and whether the person
 * asked about likes it; STORE_NOTFOUND or an error status with msg NULL. */
typedef void (*store_message_fn)(void *arg, int status, const struct op *msg, int liked);

/* Called on the loop thread with the store's digest: STORE_OK and the hex
 * (valid only during the call), or an error status and NULL. */
typedef void (*store_digest_fn)(void *arg, int status, const char *hex);

struct store_writer *store_writer_new(uv_loop_t *loop, struct store *s, store_done_fn done,
				      void *arg);
/* Queues op for the next transaction, taking its strings (allocated; op's
 * string fields are NULL after). */
void store_writer_submit(struct store_writer *w, struct op *op);
/* Queues a read of stream's stored ops with from <= seq <= to (see
 * store_load_range) behind everything submitted so far; done(arg, ...) gets
 * the result. */
void store_writer_read(struct store_writer *w, const struct op_stream *stream, uint64_t from,
		       uint64_t to, store_read_fn done, void *arg);
/* Queues store_select(hist, sel, a, b, limit) behind everything submitted
 * so far (the anchors are copied); done(arg, ...) gets the result. */
void store_writer_select(struct store_writer *w, const char *hist, enum store_select sel,
			 const struct store_anchor *a, const struct store_anchor *b, size_t limit,
			 store_select_fn done, void *arg);
/* Queues store_timeline(feeds, after, before, limit, from_end) likewise
 * (feeds and anchors are copied). */
void store_writer_timeline(struct store_writer *w, const struct store_feed *feeds, size_t nfeeds,
			   const struct store_anchor *after, const struct store_anchor *before, size_t limit,
			   int from_end, store_select_fn done, void *arg);
/* Queues store_message(msgid, person) likewise. */
void store_writer_message(struct store_writer *w, const char *msgid, const char *person,
			  store_message_fn done, void *arg);
/* Queues a digest of the store: at its turn the store's state is pinned
 * (store_digest_pin) and pinned(arg) is called, when every write queued
 * before it has been reported (applied) and none after it: the moment the
 * digest is of. Its pass then runs on another thread while the writer goes
 * on; done(arg, ...) gets it (or, if the pin failed, gets the error without
 * pinned being called). */
void store_writer_digest(struct store_writer *w, void (*pinned)(void *arg), store_digest_fn done,
			 void *arg);
/* Queues store_snapshot_put(upto, data) (data copied); a failure is logged
 * (the last snapshot stays). */
void store_writer_snapshot(struct store_writer *w, uint64_t upto, const void *data, size_t len);
/* The store's position after the last write reported to done() (0 before
 * any): while done() runs, the ops up to it are exactly those reported. */
uint64_t store_writer_position(const struct store_writer *w);
/* 1 if no job is queued or running: the store may be used directly. */
int store_writer_idle(const struct store_writer *w);
/* Operations submitted but not yet reported done (reads not counted). */
size_t store_writer_backlog(const struct store_writer *w);
/* Stops taking new batches; calls closed(arg) on the loop thread once the
 * batch or read in flight (if any) is done and every handle is closed. Ops
 * and reads still queued are reported first, in queue order, with status
 * STORE_EIO (reads with n = 0). */
void store_writer_close(struct store_writer *w, void (*closed)(void *arg), void *arg);

#endif
