/*
 * store_writer.c: durable writes off the event loop, with group commit.
 *
 * The loop thread appends copies of submitted ops to `pending`. A check
 * handle (run once per loop turn, after that turn's I/O callbacks) starts a
 * batch when pending is non-empty and nothing is in flight: pending moves to
 * `inflight` and store_append runs on libuv's threadpool (uv_queue_work).
 * The after-work callback, back on the loop thread, reports the batch to
 * done(), frees it, and starts the next batch at once if more is pending.
 * So at most one transaction is in flight, completions come in submission
 * order, and everything submitted during one turn is committed together (or
 * with later turns' ops if a transaction was still running). One batch holds
 * at most BATCH_MAX ops; the rest waits for the next transaction.
 *
 * The check handle alone does not keep the loop alive (it is unref'd); an
 * in-flight work request does. Ops submitted outside the I/O phase (from a
 * timer, say) would otherwise wait for the poll to return, so while ops are
 * pending and nothing is in flight an idle handle runs, which makes that
 * poll not block.
 *
 * The store is used only from the threadpool while the writer runs a batch,
 * and only one batch runs at a time, which is the store's threading rule.
 */
#include "store_writer.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define BATCH_MAX 10000

struct op_array {
	struct op *v;
	size_t n, cap;
};

struct store_writer {
	uv_loop_t *loop;
	struct store *store;
	store_done_fn done;
	void *arg;

	uv_check_t check; /* starts batches, once per turn */
	uv_idle_t idle;   /* active while pending waits for the check: no blocking poll */
	uv_work_t work;   /* the batch in flight */

	struct op_array pending;  /* submitted, not yet started */
	struct op_array inflight; /* the batch being written */
	int busy;                 /* work is queued or running */
	int status;               /* store_append's answer for inflight */

	int closing;          /* store_writer_close was called */
	int handles_closing;  /* uv_close was called on check and idle */
	int handles_open;     /* handles whose close callback has not run */
	void (*closed)(void *arg);
	void *closed_arg;
};

static void array_push(struct op_array *a, const struct op *op)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	op_copy(&a->v[a->n++], op);
}

/* Frees the ops' strings and empties a (keeps the allocation for reuse). */
static void array_clear(struct op_array *a)
{
	for (size_t i = 0; i < a->n; i++)
		op_clear(&a->v[i]);
	a->n = 0;
}

static void array_free(struct op_array *a)
{
	array_clear(a);
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* Moves the first BATCH_MAX ops (or all) of pending into the empty inflight. */
static void take_batch(struct store_writer *w)
{
	struct op_array *p = &w->pending, *f = &w->inflight;
	if (p->n <= BATCH_MAX) {
		struct op_array t = *f;
		*f = *p;
		*p = t;
		return;
	}
	if (f->cap < BATCH_MAX) {
		f->cap = BATCH_MAX;
		f->v = xrealloc(f->v, f->cap * sizeof *f->v);
	}
	memcpy(f->v, p->v, BATCH_MAX * sizeof *p->v);
	f->n = BATCH_MAX;
	memmove(p->v, p->v + BATCH_MAX, (p->n - BATCH_MAX) * sizeof *p->v);
	p->n -= BATCH_MAX;
}

/* Threadpool: writes the batch in flight. */
static void work_cb(uv_work_t *req)
{
	struct store_writer *w = req->data;
	w->status = store_append(w->store, w->inflight.v, w->inflight.n);
}

static void after_work_cb(uv_work_t *req, int uvstatus);

/* Starts the next batch if there is one and nothing is in flight. */
static void start_batch(struct store_writer *w)
{
	if (w->busy || w->closing || w->pending.n == 0)
		return;
	take_batch(w);
	w->busy = 1;
	w->work.data = w;
	int rc = uv_queue_work(w->loop, &w->work, work_cb, after_work_cb);
	if (rc != 0) {
		/* Cannot happen with valid arguments; fail the batch the normal way. */
		log_error("store writer: uv_queue_work: %s", uv_strerror(rc));
		w->busy = 0;
		w->status = STORE_EIO;
		w->done(w->arg, STORE_EIO, w->inflight.v, w->inflight.n);
		array_clear(&w->inflight);
	}
}

/* Reports every pending op as failed (closing), including any that done()
 * submits while being told. */
static void fail_pending(struct store_writer *w)
{
	while (w->pending.n > 0) {
		struct op_array batch = w->pending;
		memset(&w->pending, 0, sizeof w->pending);
		w->done(w->arg, STORE_EIO, batch.v, batch.n);
		array_free(&batch);
	}
}

static void handle_closed_cb(uv_handle_t *h)
{
	struct store_writer *w = h->data;
	if (--w->handles_open > 0)
		return;
	fail_pending(w);
	array_free(&w->pending);
	array_free(&w->inflight);
	if (w->closed)
		w->closed(w->closed_arg);
	free(w);
}

/* Closing, nothing in flight: close the handles; the last close callback
 * finishes the job. Idempotent. */
static void close_handles(struct store_writer *w)
{
	if (w->handles_closing)
		return;
	w->handles_closing = 1;
	w->handles_open = 2;
	uv_close((uv_handle_t *)&w->check, handle_closed_cb);
	uv_close((uv_handle_t *)&w->idle, handle_closed_cb);
}

/* Loop thread: the batch in flight is done. Reports it, then goes on. */
static void after_work_cb(uv_work_t *req, int uvstatus)
{
	struct store_writer *w = req->data;
	int status = uvstatus == 0 ? w->status : STORE_EIO;
	w->busy = 0;
	if (status < 0)
		log_warn("store writer: batch of %zu ops failed (%d): %s", w->inflight.n, status,
			 uvstatus == 0 ? store_last_error(w->store) : uv_strerror(uvstatus));
	w->done(w->arg, status, w->inflight.v, w->inflight.n);
	array_clear(&w->inflight);
	if (w->closing) {
		close_handles(w);
		return;
	}
	start_batch(w);
	if (w->busy)
		uv_idle_stop(&w->idle);
}

/* Once per loop turn, after the I/O callbacks. */
static void check_cb(uv_check_t *h)
{
	struct store_writer *w = h->data;
	start_batch(w);
	if (w->busy || w->pending.n == 0)
		uv_idle_stop(&w->idle);
}

static void idle_cb(uv_idle_t *h)
{
	(void)h; /* only there to keep the poll from blocking */
}

struct store_writer *store_writer_new(uv_loop_t *loop, struct store *s, store_done_fn done,
				      void *arg)
{
	struct store_writer *w = xcalloc(1, sizeof *w);
	w->loop = loop;
	w->store = s;
	w->done = done;
	w->arg = arg;
	uv_check_init(loop, &w->check);
	uv_idle_init(loop, &w->idle);
	w->check.data = w;
	w->idle.data = w;
	uv_check_start(&w->check, check_cb);
	uv_unref((uv_handle_t *)&w->check);
	return w;
}

/* After close the op is still accepted, and reported failed before closed(). */
void store_writer_submit(struct store_writer *w, const struct op *op)
{
	array_push(&w->pending, op);
	if (!w->busy && !w->closing)
		uv_idle_start(&w->idle, idle_cb);
}

size_t store_writer_backlog(const struct store_writer *w)
{
	return w->pending.n + w->inflight.n;
}

/* A second call is ignored. */
void store_writer_close(struct store_writer *w, void (*closed)(void *arg), void *arg)
{
	if (w->closing)
		return;
	w->closing = 1;
	w->closed = closed;
	w->closed_arg = arg;
	if (!w->busy)
		close_handles(w);
}
