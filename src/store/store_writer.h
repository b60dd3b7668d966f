/*
 * store_writer.h: durable writes off the event loop, with group commit.
 *
 * The loop thread submits operations as they are delivered; the writer sends
 * everything submitted during one loop turn to the storage thread as one
 * transaction (store_append). While one transaction is being written, newly
 * submitted operations gather for the next. Completions come back to the
 * loop thread, in submission order, through done().
 */
#ifndef CHORUS_STORE_WRITER_H
#define CHORUS_STORE_WRITER_H

#include <uv.h>

#include "store.h"

struct store_writer;

/* Called on the loop thread when a batch has been written (status STORE_OK)
 * or has failed (status < 0: nothing of the batch is stored). ops are the
 * writer's copies, valid only during the call. */
typedef void (*store_done_fn)(void *arg, int status, const struct op *ops, size_t n);

struct store_writer *store_writer_new(uv_loop_t *loop, struct store *s, store_done_fn done,
				      void *arg);
/* Queues a copy of op for the next transaction. */
void store_writer_submit(struct store_writer *w, const struct op *op);
/* Operations submitted but not yet reported done. */
size_t store_writer_backlog(const struct store_writer *w);
/* Stops taking new batches; calls closed(arg) on the loop thread once the
 * batch in flight (if any) is done and every handle is closed. Ops still
 * queued are reported to done() with status STORE_EIO first. */
void store_writer_close(struct store_writer *w, void (*closed)(void *arg), void *arg);

#endif
