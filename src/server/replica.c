/*
 * replica.c: the operation pipeline of one replica.
 *
 *   replica_submit   a session's change becomes an op of this replica's stream
 *   flush (check)    the ops of one loop turn go out in one group multicast
 *   on_deliver       agreed order: new ops get lts = ++clock; to the writer
 *   on_stored        durable: chat_apply, then fan-out (the echo is the ack)
 *
 * Identity: the data directory holds the replica id, a random incarnation and
 * a boot counter. Every start stores boot+1 before anything is multicast, so
 * (id, incarnation, boot) names a fresh stream whose seqs start at 1: a seq
 * sent before a crash is never reused (docs/DESIGN-NOTES.md). A failed store
 * write ends the stream too; the next one starts when the store works again.
 */
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define STORE_RETRY_MS 2000

static void pending_free(struct pending *p)
{
	free(p->label);
	free(p->command);
	free(p);
}

/* Removes and returns the pending answer for seq of our current stream. */
static struct pending *pending_take(struct server *srv, const struct op *op)
{
	struct pending *p = NULL;
	if (op_stream_cmp(&op->stream, &srv->stream) != 0)
		return NULL;
	HASH_FIND(hh, srv->pending, &op->seq, sizeof op->seq, p);
	if (p)
		HASH_DEL(srv->pending, p);
	return p;
}

/* Reads meta key as an unsigned number; returns 0 if absent. */
static int meta_u64(struct store *st, const char *key, uint64_t *out, int hex)
{
	char *v = NULL;
	int rc = store_meta_get(st, key, &v);
	if (rc == STORE_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc != STORE_OK)
		return -1;
	*out = strtoull(v, NULL, hex ? 16 : 10);
	free(v);
	return 0;
}

static int meta_put_u64(struct store *st, const char *key, uint64_t v, int hex)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, hex ? "%016" PRIx64 : "%" PRIu64, v);
	return store_meta_set(st, key, tmp) == STORE_OK ? 0 : -1;
}

/* Takes the identity stored in the data directory (making it on first use)
 * and stores the next boot. Returns 0 or -1 (logged). */
static int take_identity(struct server *srv)
{
	struct store *st = srv->store;
	uint64_t id, inc, boot;

	if (meta_u64(st, "replica_id", &id, 0) < 0 || meta_u64(st, "incarnation", &inc, 1) < 0 ||
	    meta_u64(st, "boot", &boot, 0) < 0) {
		log_error("store: cannot read identity: %s", store_last_error(st));
		return -1;
	}
	if (id && id != srv->cfg.id) {
		log_error("data directory %s belongs to replica %" PRIu64 ", not %" PRIu32,
			  srv->cfg.data_dir, id, srv->cfg.id);
		return -1;
	}
	if (!inc) {
		while (!inc)
			if (RAND_bytes((unsigned char *)&inc, sizeof inc) != 1)
				return -1;
		if (meta_put_u64(st, "replica_id", srv->cfg.id, 0) < 0 ||
		    meta_put_u64(st, "incarnation", inc, 1) < 0)
			goto fail;
		log_info("new data directory %s: incarnation %016" PRIx64, srv->cfg.data_dir, inc);
	}
	if (meta_put_u64(st, "boot", boot + 1, 0) < 0)
		goto fail;
	srv->stream.origin = srv->cfg.id;
	srv->stream.incarnation = inc;
	srv->stream.boot = (uint32_t)(boot + 1);
	srv->next_seq = 1;
	return 0;
fail:
	log_error("store: cannot write identity: %s", store_last_error(st));
	return -1;
}

static int load_one(const struct op *op, void *arg)
{
	struct server *srv = arg;
	struct chat_effect eff;
	if (chat_apply(srv->chat, op, &eff) < 0)
		log_warn("store: skipping a malformed stored operation (kind %d)", op->kind);
	return 0;
}

/* ---- the pipeline ---- */

#define MULTICAST_OPS_MAX 512 /* ops per group message, to bound its size */

/* Multicasts the ops made during this loop turn, MULTICAST_OPS_MAX to a group
 * message. */
static void on_flush(uv_check_t *h)
{
	struct server *srv = h->data;
	struct op_buf buf = {0};
	for (size_t i = 0; i < srv->outgoing_n; i += MULTICAST_OPS_MAX) {
		size_t n = srv->outgoing_n - i < MULTICAST_OPS_MAX ? srv->outgoing_n - i : MULTICAST_OPS_MAX;
		buf.len = 0;
		op_encode(&buf, srv->outgoing + i, n);
		if (group_multicast(srv->group, buf.data, buf.len) < 0)
			log_error("group: multicast of %zu operations failed", n);
	}
	for (size_t i = 0; i < srv->outgoing_n; i++)
		op_clear(&srv->outgoing[i]);
	srv->outgoing_n = 0;
	op_buf_free(&buf);
}

/* Agreed order: gives new ops their Lamport time and hands them to the writer. */
static void on_deliver(void *arg, uint32_t sender, const void *data, size_t len)
{
	struct server *srv = arg;
	struct op *ops;
	size_t n;

	if (op_decode(data, len, &ops, &n) < 0) {
		log_error("group: undecodable message from replica %" PRIu32 " (%zu bytes)", sender, len);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (ops[i].lts == 0)
			ops[i].lts = ++srv->clock;
		else if (ops[i].lts > srv->clock)
			srv->clock = ops[i].lts;
		store_writer_submit(srv->writer, &ops[i]);
	}
	op_free_array(ops, n);
}

static void on_view(void *arg, const struct group_view *v)
{
	struct server *srv = arg;
	srv->view = *v;
	log_info("view %" PRIu64 ": %zu replica(s)", v->id, v->n);
}

static void on_store_retry(uv_timer_t *t);

/* Ends the current stream after a failed write: our ops of that batch were
 * never stored anywhere, so their seqs must not be followed by others. */
static void store_failed(struct server *srv, const char *why)
{
	if (!srv->store_failed)
		log_error("store: write failed (%s): refusing writes until it recovers", why);
	srv->store_failed = 1;
	uv_timer_start(&srv->store_retry, on_store_retry, STORE_RETRY_MS, 0);
}

/* Durable: apply in order and show the result. */
static void on_stored(void *arg, int status, const struct op *ops, size_t n)
{
	struct server *srv = arg;
	for (size_t i = 0; i < n; i++) {
		struct pending *p = pending_take(srv, &ops[i]);
		if (status != STORE_OK) {
			fanout_store_failed(srv, &ops[i], p);
		} else {
			struct chat_effect eff;
			if (chat_apply(srv->chat, &ops[i], &eff) == 0)
				fanout_effect(srv, &ops[i], &eff, p);
			else
				log_warn("dropping a malformed operation of kind %d", ops[i].kind);
		}
		if (p)
			pending_free(p);
	}
	if (status != STORE_OK)
		store_failed(srv, store_last_error(srv->store));
}

/* Retries a failed store: once a write goes through, starts a new stream and
 * accepts writes again. */
static void on_store_retry(uv_timer_t *t)
{
	struct server *srv = t->data;
	if (!srv->store_failed || srv->stopping)
		return;
	if (store_writer_backlog(srv->writer) == 0 &&
	    meta_put_u64(srv->store, "boot", (uint64_t)srv->stream.boot + 1, 0) == 0) {
		srv->stream.boot++;
		srv->next_seq = 1;
		srv->store_failed = 0;
		log_info("store: writable again; new stream boot %" PRIu32, srv->stream.boot);
		return;
	}
	uv_timer_start(&srv->store_retry, on_store_retry, STORE_RETRY_MS, 0);
}

int replica_start(struct server *srv)
{
	struct store_sqlite_options opt = {srv->cfg.sync, srv->cfg.store_max_bytes};
	char *err = NULL;

	srv->store = store_sqlite_open(srv->cfg.data_dir, &opt, &err);
	if (!srv->store) {
		log_error("store: %s", err ? err : "cannot open");
		free(err);
		return -1;
	}
	if (take_identity(srv) < 0)
		return -1;
	srv->chat = chat_new();
	if (store_load(srv->store, load_one, srv) != 0) {
		log_error("store: cannot load: %s", store_last_error(srv->store));
		return -1;
	}
	srv->clock = chat_max_lts(srv->chat);
	log_info("replica %" PRIu32 " boot %" PRIu32 ": %" PRIu64 " operations loaded", srv->cfg.id,
		 srv->stream.boot, chat_op_count(srv->chat));

	srv->writer = store_writer_new(srv->loop, srv->store, on_stored, srv);
	uv_timer_init(srv->loop, &srv->store_retry);
	srv->store_retry.data = srv;
	uv_check_init(srv->loop, &srv->flush);
	srv->flush.data = srv;
	uv_check_start(&srv->flush, on_flush);
	uv_unref((uv_handle_t *)&srv->flush);

	static const struct group_callbacks cb = {on_deliver, on_view};
	srv->group = group_solo_new(srv->loop, srv->cfg.id, &cb, srv);
	return group_join(srv->group);
}

int replica_writable(struct server *srv)
{
	return !srv->store_failed && !srv->stopping;
}

int replica_submit(struct server *srv, struct session *s, const char *command, struct op *op)
{
	if (!replica_writable(srv)) {
		op_clear(op);
		return -1;
	}
	op->stream = srv->stream;
	op->seq = srv->next_seq++;
	op->lts = 0;
	op->wall_ms = wall_ms();
	op_fill_empty(op);
	if (s) {
		struct pending *p = xcalloc(1, sizeof *p);
		p->seq = op->seq;
		p->session_id = s->id;
		p->label = s->capture && s->capture->label ? xstrdup(s->capture->label) : NULL;
		p->command = xstrdup(command);
		HASH_ADD(hh, srv->pending, seq, sizeof p->seq, p);
		if (s->capture)
			s->capture->deferred = 1;
	}
	if (srv->outgoing_n == srv->outgoing_cap) {
		srv->outgoing_cap = srv->outgoing_cap ? srv->outgoing_cap * 2 : 64;
		srv->outgoing = xrealloc(srv->outgoing, srv->outgoing_cap * sizeof *srv->outgoing);
	}
	srv->outgoing[srv->outgoing_n++] = *op; /* takes the strings */
	memset(op, 0, sizeof *op);
	return 0;
}

static void on_writer_closed(void *arg)
{
	(void)arg;
}

void replica_stop(struct server *srv)
{
	struct pending *p, *tmp;
	srv->stopping = 1;
	if (srv->group)
		group_close(srv->group);
	uv_close((uv_handle_t *)&srv->flush, NULL);
	uv_close((uv_handle_t *)&srv->store_retry, NULL);
	if (srv->writer)
		store_writer_close(srv->writer, on_writer_closed, srv);
	HASH_ITER(hh, srv->pending, p, tmp) {
		HASH_DEL(srv->pending, p);
		pending_free(p);
	}
	for (size_t i = 0; i < srv->outgoing_n; i++)
		op_clear(&srv->outgoing[i]);
	free(srv->outgoing);
	srv->outgoing = NULL;
	srv->outgoing_n = 0;
}
