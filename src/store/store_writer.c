/*
 * store_writer.c: durable writes (and reads that must see them) off the event
 * loop, with group commit.
 *
 * The loop thread keeps one FIFO of jobs: a write job holds the submitted
 * ops (their strings taken from the submitter), a read job a stream and seq
 * range, a select job a CHATHISTORY selection of one history (store_select),
 * a timeline job one over a user's followed feeds (store_timeline), a
 * message job one message and a user's like of it (store_message), a
 * digest job pins the store's state for a digest (store_digest_pin; its
 * pass then runs on the threadpool beside the writer's jobs), a snapshot
 * job a snapshot to keep (store_snapshot_put).
 * A submitted op joins the last job if that is a write, else starts a new
 * write job; any other job always starts a new one. A check handle (run once per loop turn, after that turn's
 * I/O callbacks) starts the head job when nothing is in flight: it leaves the
 * queue and runs on libuv's threadpool (uv_queue_work), as store_append or as
 * store_load_range collecting copies. The after-work callback, back on the
 * loop thread, starts the next job at once if there is one, then reports the
 * finished job (to done() or to the read's own callback) and frees it: the
 * next commit runs while the owner applies and fans out the last one. So at
 * most one job is in flight, completions come in submission order, a read
 * sees every write submitted before it, and everything submitted during one
 * turn without a read in between is committed together (or with later turns'
 * ops if a transaction was still running). One transaction holds at most
 * BATCH_MAX ops; the rest of the job waits for the next one.
 *
 * The check handle alone does not keep the loop alive (it is unref'd); an
 * in-flight work request does. Jobs queued outside the I/O phase (from a
 * timer, say) would otherwise wait for the poll to return, so while jobs are
 * queued and nothing is in flight an idle handle runs, which makes that poll
 * not block.
 *
 * The store is used only from the threadpool while the writer runs a job,
 * and only one job runs at a time, which is the store's threading rule.
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

enum job_kind { JOB_WRITE, JOB_READ, JOB_SELECT, JOB_TIMELINE, JOB_MESSAGE, JOB_DIGEST, JOB_SNAPSHOT };

/* One queued or running job: a write (ops to append), a read (ops found),
 * or a select, timeline or message job (messages found). */
struct job {
	struct job *next;
	enum job_kind kind;
	struct op_array ops;     /* write: the batch; read: the result */
	struct chat_fact *facts; /* write: one per op of the batch, from the store */
	uint64_t position;       /* write: the store's position after it; snapshot: its upto */
	void *data;              /* snapshot: its bytes */
	size_t len;
	struct op_stream stream; /* read only: what to read */
	uint64_t from, to;
	store_read_fn read_done;
	void *read_arg;          /* the argument of every kind's callback */
	char *hist;              /* select: the history and selection */
	enum store_select sel;
	struct store_anchor a, b;/* copies (msgids owned); timeline: a after, b before;
				  * message: a.msgid the message */
	int has_a, has_b;
	size_t limit;
	struct store_feed *feeds;/* timeline: copies */
	size_t nfeeds;
	int from_end;
	char *person;            /* message: whose like state */
	int liked;               /* message: the answer */
	struct store_msgs found; /* select, timeline, message: the answer */
	store_select_fn select_done;
	store_message_fn message_done;
	store_digest_fn digest_done;
	void (*digest_pinned)(void *arg);
	struct store_pin *pin;   /* digest: the state pinned */
	int status;              /* the store's answer, set on the storage thread */
};

struct store_writer {
	uv_loop_t *loop;
	struct store *store;
	store_done_fn done;
	void *arg;

	uv_check_t check; /* starts jobs, once per turn */
	uv_idle_t idle;   /* active while jobs wait for the check: no blocking poll */
	uv_work_t work;   /* the job in flight */

	uint64_t position;       /* the store's position after the last write reported */
	struct job *head, *tail; /* queued, not yet started */
	size_t queued_ops;       /* ops in the queued write jobs */
	struct job *inflight;    /* the job being run, or NULL */
	int busy;                /* work is queued or running */

	int closing;          /* store_writer_close was called */
	int handles_closing;  /* uv_close was called on check and idle */
	int handles_open;     /* handles whose close callback has not run */
	void (*closed)(void *arg);
	void *closed_arg;
};

/* Appends op to a, taking its strings. */
static void array_take(struct op_array *a, struct op *op)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	op_move(&a->v[a->n++], op);
}

/* Frees the ops' strings and empties a (keeps the allocation). */
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

static void job_free(struct job *j)
{
	array_free(&j->ops);
	free(j->facts);
	free(j->data);
	store_pin_free(j->pin);
	store_msgs_free(&j->found);
	free(j->hist);
	free((char *)j->a.msgid);
	free((char *)j->b.msgid);
	free(j->person);
	for (size_t i = 0; i < j->nfeeds; i++)
		free(j->feeds[i].hist);
	free(j->feeds);
	free(j);
}

static void enqueue(struct store_writer *w, struct job *j)
{
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
}

/* Takes the head job off the queue; a write of more than BATCH_MAX ops gives
 * up only its first BATCH_MAX, as a job of their own. */
static struct job *dequeue(struct store_writer *w)
{
	struct job *j = w->head;
	if (j->kind == JOB_WRITE && j->ops.n > BATCH_MAX) {
		struct job *part = xcalloc(1, sizeof *part);
		struct op_array *p = &j->ops;
		part->ops.cap = part->ops.n = BATCH_MAX;
		part->ops.v = xmalloc(BATCH_MAX * sizeof *p->v);
		memcpy(part->ops.v, p->v, BATCH_MAX * sizeof *p->v);
		memmove(p->v, p->v + BATCH_MAX, (p->n - BATCH_MAX) * sizeof *p->v);
		p->n -= BATCH_MAX;
		w->queued_ops -= BATCH_MAX;
		return part;
	}
	w->head = j->next;
	if (!w->head)
		w->tail = NULL;
	j->next = NULL;
	if (j->kind == JOB_WRITE)
		w->queued_ops -= j->ops.n;
	return j;
}

/* A digest's pass, on the threadpool beside the writer's jobs. */
struct digest_pass {
	uv_work_t work;
	struct store_pin *pin;
	int status;
	char hex[65];
	store_digest_fn done;
	void *arg;
};

static void digest_work_cb(uv_work_t *req)
{
	struct digest_pass *d = req->data;
	d->status = store_pin_digest(d->pin, d->hex);
}

static void digest_after_cb(uv_work_t *req, int uvstatus)
{
	struct digest_pass *d = req->data;
	int status = uvstatus == 0 ? d->status : STORE_EIO;
	d->done(d->arg, status, status == STORE_OK ? d->hex : NULL);
	free(d);
}

/* A digest job's state is pinned (status STORE_OK) or not: its owner hears
 * so at once (every write before it is reported, none after), then the pass
 * runs beside the writer's next jobs. */
static void digest_pinned(struct store_writer *w, struct job *j, int status)
{
	if (status != STORE_OK) {
		j->digest_done(j->read_arg, status, NULL);
		return;
	}
	j->digest_pinned(j->read_arg);
	struct digest_pass *d = xcalloc(1, sizeof *d);
	d->pin = j->pin;
	j->pin = NULL;
	d->done = j->digest_done;
	d->arg = j->read_arg;
	d->work.data = d;
	if (uv_queue_work(w->loop, &d->work, digest_work_cb, digest_after_cb) != 0) {
		d->status = store_pin_digest(d->pin, d->hex); /* cannot happen; do it here then */
		d->done(d->arg, d->status, d->status == STORE_OK ? d->hex : NULL);
		free(d);
	}
}

/* Tells the job's owner how it went (loop thread); a failed read or
 * select reports nothing found. */
static void report(struct store_writer *w, struct job *j, int status)
{
	if (j->kind == JOB_READ)
		j->read_done(j->read_arg, status, j->ops.v, status == STORE_OK ? j->ops.n : 0);
	else if (j->kind == JOB_SELECT || j->kind == JOB_TIMELINE)
		j->select_done(j->read_arg, status, &j->found);
	else if (j->kind == JOB_MESSAGE)
		j->message_done(j->read_arg, status, status == STORE_OK ? &j->found.ops[0] : NULL, j->liked);
	else if (j->kind == JOB_DIGEST)
		digest_pinned(w, j, status);
	else if (j->kind == JOB_SNAPSHOT && status < 0)
		log_warn("store writer: a snapshot could not be kept; the last one stays");
	else if (j->kind == JOB_WRITE) {
		if (status == STORE_OK)
			w->position = j->position;
		w->done(w->arg, status, j->ops.v, status == STORE_OK ? j->facts : NULL, j->ops.n);
	}
}

/* Storage thread: keeps a copy of each op a read finds. */
static int collect_cb(const struct op *op, void *arg)
{
	struct op copy;
	op_copy(&copy, op);
	array_take(arg, &copy);
	return 0;
}

/* Threadpool: runs the job in flight. */
static void work_cb(uv_work_t *req)
{
	struct store_writer *w = req->data;
	struct job *j = w->inflight;
	if (j->kind == JOB_WRITE) {
		j->facts = xcalloc(j->ops.n + 1, sizeof *j->facts);
		j->status = store_append(w->store, j->ops.v, j->ops.n, j->facts);
		j->position = store_position(w->store);
		return;
	}
	if (j->kind == JOB_SELECT) {
		j->status = store_select(w->store, j->hist, j->sel, j->has_a ? &j->a : NULL, &j->b,
					 j->limit, &j->found);
		return;
	}
	if (j->kind == JOB_MESSAGE) {
		j->status = store_message(w->store, j->a.msgid, j->person, &j->found, &j->liked);
		return;
	}
	if (j->kind == JOB_DIGEST) {
		j->status = store_digest_pin(w->store, &j->pin);
		return;
	}
	if (j->kind == JOB_SNAPSHOT) {
		j->status = store_snapshot_put(w->store, j->position, j->data, j->len);
		return;
	}
	if (j->kind == JOB_TIMELINE) {
		j->status = store_timeline(w->store, j->feeds, j->nfeeds, j->has_a ? &j->a : NULL,
					   j->has_b ? &j->b : NULL, j->limit, j->from_end, &j->found);
		return;
	}
	j->status = store_load_range(w->store, &j->stream, j->from, j->to, collect_cb, &j->ops);
	if (j->status > 0) /* collect_cb never stops the load: not a status we know */
		j->status = STORE_EIO;
}

static void after_work_cb(uv_work_t *req, int uvstatus);

/* Starts the next job if there is one and nothing is in flight. */
static void start_job(struct store_writer *w)
{
	if (w->busy || w->closing || !w->head)
		return;
	w->inflight = dequeue(w);
	w->busy = 1;
	w->work.data = w;
	int rc = uv_queue_work(w->loop, &w->work, work_cb, after_work_cb);
	if (rc != 0) {
		/* Cannot happen with valid arguments; fail the job the normal way. */
		struct job *j = w->inflight;
		log_error("store writer: uv_queue_work: %s", uv_strerror(rc));
		w->busy = 0;
		report(w, j, STORE_EIO);
		w->inflight = NULL;
		job_free(j);
	}
}

/* Reports every queued job as failed (closing), in order, including any
 * that a callback adds while being told. */
static void fail_pending(struct store_writer *w)
{
	while (w->head) {
		struct job *j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		if (j->kind == JOB_WRITE)
			w->queued_ops -= j->ops.n;
		j->next = NULL;
		report(w, j, STORE_EIO);
		job_free(j);
	}
}

static void handle_closed_cb(uv_handle_t *h)
{
	struct store_writer *w = h->data;
	if (--w->handles_open > 0)
		return;
	fail_pending(w);
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

/* Loop thread: the job in flight is done. Starts the next job first, so the
 * storage thread commits it while the owner handles this one (applies and
 * fans it out), then reports this one. The store's error text is read
 * before the next job can touch the store. */
static void after_work_cb(uv_work_t *req, int uvstatus)
{
	struct store_writer *w = req->data;
	struct job *j = w->inflight;
	int status = uvstatus == 0 ? j->status : STORE_EIO;
	w->busy = 0;
	w->inflight = NULL;
	if (status < 0)
		log_warn("store writer: %s failed (%d): %s",
			 j->kind == JOB_WRITE ? "batch" : "read", status,
			 uvstatus == 0 ? store_last_error(w->store) : uv_strerror(uvstatus));
	start_job(w);
	report(w, j, status);
	job_free(j);
	if (w->closing) {
		if (!w->busy)
			close_handles(w);
		return;
	}
	start_job(w);
	if (w->busy)
		uv_idle_stop(&w->idle);
}

/* Once per loop turn, after the I/O callbacks. */
static void check_cb(uv_check_t *h)
{
	struct store_writer *w = h->data;
	start_job(w);
	if (w->busy || !w->head)
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
	w->position = store_position(s); /* nothing else uses s yet */
	uv_check_init(loop, &w->check);
	uv_idle_init(loop, &w->idle);
	w->check.data = w;
	w->idle.data = w;
	uv_check_start(&w->check, check_cb);
	uv_unref((uv_handle_t *)&w->check);
	return w;
}

/* A job was queued: make sure a check runs soon. */
static void wake(struct store_writer *w)
{
	if (!w->busy && !w->closing)
		uv_idle_start(&w->idle, idle_cb);
}

/* After close the op is still accepted, and reported failed before closed(). */
void store_writer_submit(struct store_writer *w, struct op *op)
{
	struct job *j = w->tail;
	if (!j || j->kind != JOB_WRITE) {
		j = xcalloc(1, sizeof *j);
		enqueue(w, j);
	}
	array_take(&j->ops, op);
	w->queued_ops++;
	wake(w);
}

/* After close the read is still accepted, and reported failed before closed(). */
void store_writer_read(struct store_writer *w, const struct op_stream *stream, uint64_t from,
		       uint64_t to, store_read_fn done, void *arg)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->kind = JOB_READ;
	j->stream = *stream;
	j->from = from;
	j->to = to;
	j->read_done = done;
	j->read_arg = arg;
	enqueue(w, j);
	wake(w);
}

/* A new select, timeline or message job with copies of anchors a and b
 * (either may be NULL). */
static struct job *anchored_job(enum job_kind kind, const struct store_anchor *a,
				const struct store_anchor *b, size_t limit, store_select_fn done, void *arg)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->kind = kind;
	j->has_a = a != NULL;
	j->has_b = b != NULL;
	if (a) {
		j->a.ms = a->ms;
		j->a.msgid = a->msgid ? xstrdup(a->msgid) : NULL;
	}
	if (b) {
		j->b.ms = b->ms;
		j->b.msgid = b->msgid ? xstrdup(b->msgid) : NULL;
	}
	j->limit = limit;
	j->select_done = done;
	j->read_arg = arg;
	return j;
}

/* After close the select is still accepted, and reported failed before closed(). */
void store_writer_select(struct store_writer *w, const char *hist, enum store_select sel,
			 const struct store_anchor *a, const struct store_anchor *b, size_t limit,
			 store_select_fn done, void *arg)
{
	struct job *j = anchored_job(JOB_SELECT, a, b, limit, done, arg);
	j->hist = xstrdup(hist);
	j->sel = sel;
	enqueue(w, j);
	wake(w);
}

/* As store_writer_select. */
void store_writer_timeline(struct store_writer *w, const struct store_feed *feeds, size_t nfeeds,
			   const struct store_anchor *after, const struct store_anchor *before, size_t limit,
			   int from_end, store_select_fn done, void *arg)
{
	struct job *j = anchored_job(JOB_TIMELINE, after, before, limit, done, arg);
	j->feeds = xcalloc(nfeeds + 1, sizeof *j->feeds);
	for (size_t i = 0; i < nfeeds; i++) {
		j->feeds[i].hist = xstrdup(feeds[i].hist);
		j->feeds[i].from = feeds[i].from;
	}
	j->nfeeds = nfeeds;
	j->from_end = from_end;
	enqueue(w, j);
	wake(w);
}

/* As store_writer_select. */
void store_writer_message(struct store_writer *w, const char *msgid, const char *person,
			  store_message_fn done, void *arg)
{
	struct store_anchor a = {msgid, 0};
	struct job *j = anchored_job(JOB_MESSAGE, &a, NULL, 1, NULL, arg);
	j->person = xstrdup(person);
	j->message_done = done;
	enqueue(w, j);
	wake(w);
}

/* As store_writer_select. */
void store_writer_digest(struct store_writer *w, void (*pinned)(void *arg), store_digest_fn done,
			 void *arg)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->kind = JOB_DIGEST;
	j->digest_pinned = pinned;
	j->digest_done = done;
	j->read_arg = arg;
	enqueue(w, j);
	wake(w);
}

void store_writer_snapshot(struct store_writer *w, uint64_t upto, const void *data, size_t len)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->kind = JOB_SNAPSHOT;
	j->position = upto;
	j->data = xmalloc(len + 1);
	memcpy(j->data, data, len);
	j->len = len;
	enqueue(w, j);
	wake(w);
}

uint64_t store_writer_position(const struct store_writer *w)
{
	return w->position;
}

int store_writer_idle(const struct store_writer *w)
{
	return !w->busy && !w->head;
}

size_t store_writer_backlog(const struct store_writer *w)
{
	size_t n = w->queued_ops;
	if (w->inflight && w->inflight->kind == JOB_WRITE)
		n += w->inflight->ops.n;
	return n;
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
