/*
 * replica.c: chorusd's side of the replica core (src/repl): it opens the
 * store, wires the core to the group (solo or corosync), to the store writer
 * (durable writes and resend reads on the storage thread) and to the
 * sessions: each stored op is fanned out, and the answer to a client's own
 * op (echo, label, FAIL) goes to the session that made it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include "server.h"

#define STORE_RETRY_MS 2000

static void pending_free(struct pending *p)
{
	free(p->label);
	free(p->command);
	free(p);
}

/* The answer p was given: its session owes one write less. */
static void pending_done(struct server *srv, struct pending *p)
{
	struct session *s = session_find(srv, p->session_id);
	if (s)
		session_write_done(s);
	pending_free(p);
}

/* Removes and returns the answer owed for own op. */
static struct pending *pending_take(struct server *srv, const struct op *op)
{
	struct pending *p = NULL;
	HASH_FIND(hh, srv->pending, &op->seq, sizeof op->seq, p);
	if (p)
		HASH_DEL(srv->pending, p);
	return p;
}

/* ---- core callbacks ---- */

static void on_effect(void *arg, const struct op *op, const struct chat_effect *eff, int own)
{
	struct server *srv = arg;
	struct pending *p = own ? pending_take(srv, op) : NULL;
	metrics_applied(&srv->metrics, op->kind);
	fanout_effect(srv, op, eff, p);
	if (p)
		pending_done(srv, p);
}

static void on_store_retry(uv_timer_t *t);

static void on_failed(void *arg, const struct op *op)
{
	struct server *srv = arg;
	if (!op) {
		if (!uv_is_active((uv_handle_t *)&srv->store_retry))
			uv_timer_start(&srv->store_retry, on_store_retry, srv->store_retry_ms, 0);
		return;
	}
	struct pending *p = pending_take(srv, op);
	fanout_store_failed(srv, op, p);
	if (p)
		pending_done(srv, p);
}

static void on_view(void *arg, const struct group_view *v)
{
	struct server *srv = arg;
	struct group_view old = srv->view;
	log_info("view %" PRIu64 ": %zu replica(s)", v->id, v->n);
	srv->view = *v;
	srv->metrics.view_changes++;
	presence_view(srv, &old, v);
}

static void on_soft(void *arg, uint32_t sender, const void *data, size_t len)
{
	presence_receive(arg, sender, data, len);
}

/* ---- io: the store writer ---- */

static void io_write(void *ctx, struct op *op)
{
	struct server *srv = ctx;
	metrics_written(&srv->metrics);
	store_writer_submit(srv->writer, op);
}

static void on_read(void *arg, int status, const struct op *ops, size_t n)
{
	struct server *srv = arg;
	if (status != STORE_OK)
		log_error("store: resend read failed (the store writer logged why)");
	repl_read_done(srv->repl, ops, status == STORE_OK ? n : 0);
}

static void io_read(void *ctx, const struct op_stream *stream, uint64_t from, uint64_t to)
{
	struct server *srv = ctx;
	store_writer_read(srv->writer, stream, from, to, on_read, srv);
}

/* Called from repl_stored, in the writer's done(): the writer's position is
 * that of the batch being reported, so the snapshot holds the ops up to it. */
static void io_snapshot(void *ctx, const void *data, size_t len)
{
	struct server *srv = ctx;
	store_writer_snapshot(srv->writer, store_writer_position(srv->writer), data, len);
}

static void on_stored(void *arg, int status, const struct op *ops, const struct chat_fact *facts,
		      size_t n)
{
	struct server *srv = arg;
	metrics_stored(&srv->metrics, n);
	repl_stored(srv->repl, status, ops, facts, n);
}

/* ---- group ---- */

static void on_deliver(void *arg, uint32_t sender, const void *data, size_t len)
{
	struct server *srv = arg;
	repl_deliver(srv->repl, sender, data, len);
}

static void on_group_view(void *arg, const struct group_view *v)
{
	struct server *srv = arg;
	repl_view(srv->repl, v);
}

/* End of every loop turn: the ops made during it go out together. */
static void on_flush(uv_check_t *h)
{
	struct server *srv = h->data;
	repl_flush(srv->repl);
}

static struct group *make_group(struct server *srv);
static const struct repl_io *io_of(struct server *srv);

/* 1 if the store takes a write that needs fresh space (a 16 KiB probe). */
static int store_has_room(struct store *st)
{
	char *probe = xmalloc(16 * 1024 + 1);
	memset(probe, 'p', 16 * 1024);
	probe[16 * 1024] = '\0';
	int ok = store_meta_set(st, "probe", probe) == STORE_OK && store_meta_set(st, "probe", "") == STORE_OK;
	free(probe);
	return ok;
}

/* While the store refuses writes, tried after STORE_RETRY_MS, then twice as
 * long each time up to a minute: once the writer is idle and the store has
 * room, rebuild from what is stored, start a new stream and rejoin the group
 * so the next sync brings back what this replica lost. */
static void on_store_retry(uv_timer_t *t)
{
	struct server *srv = t->data;
	if (srv->stopping || !repl_store_failed(srv->repl)) {
		srv->store_retry_ms = STORE_RETRY_MS;
		return;
	}
	if (store_writer_idle(srv->writer) && store_has_room(srv->store) &&
	    repl_recover(srv->repl, srv->store) == 0) {
		log_info("store: writable again; new stream boot %" PRIu32 "; rejoining the group",
			 repl_stream(srv->repl)->boot);
		group_close(srv->group);
		srv->group = make_group(srv);
		repl_attach(srv->repl, srv->group, io_of(srv));
		group_join(srv->group);
		srv->store_retry_ms = STORE_RETRY_MS;
		return;
	}
	if (srv->store_retry_ms < 60000)
		srv->store_retry_ms *= 2;
	uv_timer_start(&srv->store_retry, on_store_retry, srv->store_retry_ms, 0);
}

static struct group *make_group(struct server *srv)
{
	static const struct group_callbacks gcb = {on_deliver, on_group_view};
	if (srv->cfg.group == GROUP_COROSYNC)
		return group_corosync_new(srv->loop, srv->cfg.id, srv->cfg.group_name, &gcb, srv);
	return group_solo_new(srv->loop, srv->cfg.id, &gcb, srv);
}

static int io_direct(void *ctx, uint32_t member, const void *data, size_t len)
{
	struct server *srv = ctx;
	return srv->links ? link_send(srv->links, member, data, len) : -ENOTCONN; /* stopping */
}

static const struct repl_io *io_of(struct server *srv)
{
	static struct repl_io io = {.write = io_write, .read = io_read, .snapshot = io_snapshot};
	io.ctx = srv;
	io.direct = srv->links ? io_direct : NULL;
	io.snapshot_every = (uint64_t)srv->cfg.snapshot_every;
	return &io;
}

/* Takes the data directory's lock (DIR/lock, flock): one chorusd per data
 * directory, since two would write one store as two replicas. The lock lives
 * as long as the process (its fd stays open; the kernel drops it on any
 * exit, kill -9 too). Returns 0, or -1 with the reason logged. */
static int lock_data_dir(struct server *srv)
{
	const char *dir = srv->cfg.data_dir;
	char *path = xasprintf("%s/lock", dir);
	char pid[32] = "";
	int fd = -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_error("data directory %s: %s", dir, strerror(errno));
	} else if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		log_error("data directory %s: cannot open its lock: %s", dir, strerror(errno));
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		log_error("data directory %s is in use by another chorusd%s%s%s: one replica per data directory",
			  dir, *pid ? " (pid " : "", pid, *pid ? ")" : "");
		close(fd);
		fd = -1;
	} else {
		int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
			log_warn("data directory %s: cannot write the pid to its lock", dir);
	}
	free(path);
	return fd < 0 ? -1 : 0; /* fd stays open: it holds the lock */
}

/* The link ports of the cluster list's replicas. */
static void add_link_peers(struct server *srv)
{
	const struct config *cfg = &srv->cfg;
	for (size_t i = 0; i < cfg->nreplicas; i++)
		if (cfg->replicas[i].link_port)
			link_add_peer(srv->links, cfg->replicas[i].id, cfg->replicas[i].host, cfg->replicas[i].link_port);
}

/* With a link key and our link port in the cluster list: listens for
 * catch-up links and knows the other replicas' link ports. Returns 0 (links
 * or none, logged) or -1. */
static int start_links(struct server *srv)
{
	const struct config *cfg = &srv->cfg;
	unsigned char key[TLS_PSK_LEN];
	char err[300];
	int port = 0;
	for (size_t i = 0; i < cfg->nreplicas; i++)
		if (cfg->replicas[i].id == cfg->id)
			port = cfg->replicas[i].link_port;
	if (!cfg->link_key || !port) {
		log_info("catch-up links off (%s): resends go through the group",
			 cfg->link_key ? "no link_port of ours in cluster.replicas" : "no link key");
		return 0;
	}
	if (link_key_load(cfg->link_key, key, err, sizeof err) < 0) {
		log_error("%s", err);
		return -1;
	}
	srv->links = link_new(srv->loop, srv->repl, cfg->id, key);
	OPENSSL_cleanse(key, sizeof key);
	if (!srv->links || link_listen(srv->links, cfg->listen, port) < 0)
		return -1;
	add_link_peers(srv);
	return 0;
}

void replica_reconfigured(struct server *srv)
{
	repl_set_cluster_size(srv->repl, (unsigned)srv->cfg.nreplicas);
	if (srv->links) {
		link_clear_peers(srv->links);
		add_link_peers(srv);
	}
}

int replica_start(struct server *srv)
{
	struct store_sqlite_options opt = {
		.sync = srv->cfg.sync, .max_bytes = srv->cfg.store_max_bytes, .index_lag = srv->cfg.index_lag};
	struct repl_callbacks cb = {
		.effect = on_effect, .failed = on_failed, .view = on_view, .soft = on_soft, .arg = srv};
	char *err = NULL;

	if (lock_data_dir(srv) < 0)
		return -1;

	srv->store = store_sqlite_open(srv->cfg.data_dir, &opt, &err);
	if (!srv->store) {
		log_error("store: %s", err ? err : "cannot open");
		free(err);
		return -1;
	}
	srv->repl = repl_new(srv->cfg.id, srv->cfg.mode, (unsigned)srv->cfg.nreplicas, &cb);
	chat_set_cache(repl_chat(srv->repl), srv->cfg.history_cache, REPLAY_ON_JOIN);
	if (repl_open(srv->repl, srv->store, &err) < 0) {
		log_error("store %s: %s", srv->cfg.data_dir, err);
		free(err);
		return -1;
	}
	srv->chat = repl_chat(srv->repl);
	log_info("replica %" PRIu32 " boot %" PRIu32 ": %" PRIu64 " operations loaded", srv->cfg.id,
		 repl_stream(srv->repl)->boot, chat_op_count(srv->chat));

	srv->writer = store_writer_new(srv->loop, srv->store, on_stored, srv);
	uv_timer_init(srv->loop, &srv->store_retry);
	srv->store_retry.data = srv;
	srv->store_retry_ms = STORE_RETRY_MS;
	uv_check_init(srv->loop, &srv->flush);
	srv->flush.data = srv;
	uv_check_start(&srv->flush, on_flush);
	uv_unref((uv_handle_t *)&srv->flush);

	if (start_links(srv) < 0)
		return -1;
	srv->group = make_group(srv);
	if (!srv->group)
		return -1;
	repl_attach(srv->repl, srv->group, io_of(srv));
	return group_join(srv->group);
}

int replica_submit(struct server *srv, struct session *s, const char *command, struct op *op)
{
	if (s && !op->account)
		op->account = xstrdup(s->account ? s->account : "");
	int why = repl_writable(srv->repl);
	if (why != REPL_OK || repl_submit(srv->repl, op) < 0) {
		op_clear(op);
		return why ? why : REPL_STORE_FAILED;
	}
	if (s) {
		struct pending *p = xcalloc(1, sizeof *p);
		p->seq = op->seq;
		p->session_id = s->id;
		p->label = s->capture && s->capture->label ? xstrdup(s->capture->label) : NULL;
		p->command = xstrdup(command);
		HASH_ADD(hh, srv->pending, seq, sizeof p->seq, p);
		s->writes++;
		if (s->capture)
			s->capture->deferred = 1;
	}
	return 0;
}

/* A room or user name (casefolded, behind its kind) announced by us. */
struct announced {
	char *key;
	char *person;   /* its author with account: a room's founder */
	UT_hash_handle hh;
};

static char *announced_key(int kind, const char *name)
{
	char *fold = chat_casefold(name), *key = xasprintf("%d %s", kind, fold);
	free(fold);
	return key;
}

const char *replica_announced_by(struct server *srv, const char *room)
{
	struct announced *a = NULL;
	char *key = announced_key(OP_ROOM, room);
	HASH_FIND_STR(srv->announced, key, a);
	free(key);
	return a ? a->person : NULL;
}

void replica_announce(struct server *srv, int kind, const char *name, const char *author,
		      const char *account, int founder)
{
	int known = kind == OP_ROOM ? chat_room_find(srv->chat, name) != NULL : chat_user_known(srv->chat, name);
	struct announced *a = NULL;
	char *key = announced_key(kind, name);
	HASH_FIND_STR(srv->announced, key, a);
	if (known || a) {
		free(key);
		return;
	}
	a = xcalloc(1, sizeof *a);
	a->key = key;
	a->person = founder ? chat_person(author, account) : NULL;
	HASH_ADD_KEYPTR(hh, srv->announced, a->key, strlen(a->key), a);
	struct op op = {0};
	op.kind = (uint8_t)kind;
	op.target = xstrdup(kind == OP_ROOM ? name : "");
	op.author = xstrdup(author);
	op.account = xstrdup(account ? account : "");
	replica_submit(srv, NULL, kind == OP_ROOM ? "JOIN" : "NICK", &op);
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
	if (srv->links)
		link_close(srv->links);
	srv->links = NULL;
	uv_close((uv_handle_t *)&srv->flush, NULL);
	uv_close((uv_handle_t *)&srv->store_retry, NULL);
	if (srv->writer)
		store_writer_close(srv->writer, on_writer_closed, srv);
	HASH_ITER(hh, srv->pending, p, tmp) {
		HASH_DEL(srv->pending, p);
		pending_free(p);
	}
	struct announced *a, *atmp;
	HASH_ITER(hh, srv->announced, a, atmp) {
		HASH_DEL(srv->announced, a);
		free(a->key);
		free(a->person);
		free(a);
	}
}
