/*
 * metrics.c: what this replica counts, and the Prometheus text endpoint
 * that shows it (`--metrics ADDR:PORT`, `metrics.listen`; off by default):
 * GET /metrics. libmicrohttpd serves it from the event loop (its epoll fd
 * under a uv_poll, and a timer for its timeouts; no thread of its own), so
 * the counters are read without a lock.
 *
 * The write latency is the time from an op's hand-over to the store writer to
 * its report as stored (the group commit as the loop sees it), one sample per
 * op, in a histogram.
 */
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server.h"

#define METRICS_TIMER_MS 1000

static const char *const kind_names[] = {
	[OP_USER] = "user", [OP_ROOM] = "room", [OP_MSG] = "message", [OP_DM] = "direct",
	[OP_LIKE] = "like", [OP_UNLIKE] = "unlike", [OP_TOPIC] = "topic", [OP_FOLLOW] = "follow",
	[OP_UNFOLLOW] = "unfollow", [OP_POST] = "post", [OP_REGISTER] = "register",
	[OP_PASSWORD] = "password", [OP_UNREGISTER] = "unregister", [OP_MODE] = "mode",
	[OP_KICK] = "kick", [OP_INVITE] = "invite",
};

static const char *const refusal_names[REFUSED_COUNT] = {
	[REFUSED_FULL] = "max_clients", [REFUSED_ADDRESS] = "per_address", [REFUSED_SENDQ] = "sendq",
	[REFUSED_RECVQ] = "recvq", [REFUSED_REGISTER_TIMEOUT] = "register_timeout",
	[REFUSED_NEW_NAMES] = "new_names", [REFUSED_WRITE] = "write",
};

/* Upper bounds of the write latency's buckets, in seconds. */
static const double bounds[METRICS_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1};

static const UT_icd u64_icd = {sizeof(uint64_t), NULL, NULL, NULL};

/* ---- counting ---- */

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof *m);
	utarray_new(m->written, &u64_icd);
}

void metrics_applied(struct metrics *m, int kind)
{
	if (kind > 0 && kind < METRICS_KINDS)
		m->applied[kind]++;
}

void metrics_written(struct metrics *m)
{
	uint64_t now = uv_hrtime();
	utarray_push_back(m->written, &now);
}

void metrics_stored(struct metrics *m, size_t n)
{
	uint64_t now = uv_hrtime();
	size_t left = utarray_len(m->written) - m->head;
	for (size_t i = 0; i < n && i < left; i++) {
		double s = (double)(now - *(uint64_t *)utarray_eltptr(m->written, m->head + i)) / 1e9;
		size_t b = 0;
		while (b < METRICS_BUCKETS && s > bounds[b])
			b++;
		m->latency[b]++;
		m->latency_sum += s;
		m->latency_count++;
	}
	m->head += n < left ? n : left;
	if (m->head == utarray_len(m->written)) {
		utarray_clear(m->written);
		m->head = 0;
	} else if (m->head > 4096 && m->head > utarray_len(m->written) / 2) {
		utarray_erase(m->written, 0, m->head);
		m->head = 0;
	}
}

void metrics_refused(struct metrics *m, enum refusal why)
{
	m->refused[why]++;
}

/* ---- the page ---- */

/* The store's files' bytes (the database and its WAL). */
static long long store_bytes(const struct server *srv)
{
	long long total = 0;
	const char *suffix[] = {"", "-wal"};
	for (size_t i = 0; i < 2; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof path, "%s/chorus.db%s", srv->cfg.data_dir, suffix[i]);
		if (stat(path, &st) == 0)
			total += (long long)st.st_size;
	}
	return total;
}

static void gauge(struct buf *b, const char *name, const char *help, const char *id, double v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s{replica=\"%s\"} %.17g\n", name, help, name, name, id, v);
}

/* The text exposition of srv's counters into b. */
static void render(struct server *srv, struct buf *b)
{
	const struct metrics *m = &srv->metrics;
	char id[16];
	snprintf(id, sizeof id, "%" PRIu32, srv->cfg.id);
	gauge(b, "chorus_sessions", "Client sessions on this replica.", id, srv->nsessions);
	buf_puts(b, "# HELP chorus_ops_applied_total Operations stored and applied here, by kind.\n"
		    "# TYPE chorus_ops_applied_total counter\n");
	for (int k = 1; k < METRICS_KINDS; k++)
		buf_printf(b, "chorus_ops_applied_total{replica=\"%s\",kind=\"%s\"} %" PRIu64 "\n", id, kind_names[k],
			   m->applied[k]);
	buf_puts(b, "# HELP chorus_write_seconds Time from an operation's hand-over to the store writer to its "
		    "report as stored.\n# TYPE chorus_write_seconds histogram\n");
	uint64_t below = 0;
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		below += m->latency[i];
		buf_printf(b, "chorus_write_seconds_bucket{replica=\"%s\",le=\"%g\"} %" PRIu64 "\n", id, bounds[i], below);
	}
	buf_printf(b, "chorus_write_seconds_bucket{replica=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", id, m->latency_count);
	buf_printf(b, "chorus_write_seconds_sum{replica=\"%s\"} %.9f\n", id, m->latency_sum);
	buf_printf(b, "chorus_write_seconds_count{replica=\"%s\"} %" PRIu64 "\n", id, m->latency_count);
	gauge(b, "chorus_view_members", "Replicas in this replica's view.", id, (double)srv->view.n);
	buf_printf(b, "# HELP chorus_view_changes_total Views this replica has been in.\n"
		      "# TYPE chorus_view_changes_total counter\nchorus_view_changes_total{replica=\"%s\"} %" PRIu64 "\n",
		   id, m->view_changes);
	gauge(b, "chorus_syncing", "1 while this view's sync (rows and resends) goes on.", id,
	      repl_syncing(srv->repl));
	gauge(b, "chorus_backlog", "Operations held, not yet stored, or to resend.", id, (double)repl_backlog(srv->repl));
	gauge(b, "chorus_store_bytes", "Bytes of the store's files.", id, (double)store_bytes(srv));
	buf_puts(b, "# HELP chorus_refusals_total Connections and writes refused by a limit, by limit.\n"
		    "# TYPE chorus_refusals_total counter\n");
	for (int r = 0; r < REFUSED_COUNT; r++)
		buf_printf(b, "chorus_refusals_total{replica=\"%s\",limit=\"%s\"} %" PRIu64 "\n", id, refusal_names[r],
			   m->refused[r]);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct server *srv = cls;
	(void)version, (void)upload, (void)upload_size, (void)state;
	struct buf b = {0};
	unsigned status = MHD_HTTP_OK;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		buf_puts(&b, "GET /metrics\n");
	} else if (strcmp(url, "/metrics") != 0) {
		status = MHD_HTTP_NOT_FOUND;
		buf_puts(&b, "chorus serves /metrics here\n");
	} else {
		render(srv, &b);
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.data ? b.data : "", MHD_RESPMEM_MUST_COPY);
	buf_free(&b);
	MHD_add_response_header(r, "Content-Type", status == MHD_HTTP_OK ? "text/plain; version=0.0.4" : "text/plain");
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* ---- driving libmicrohttpd from the loop ---- */

static void drive(struct metrics *m)
{
	MHD_run(m->mhd);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status, (void)events;
	drive(p->data);
}

static void on_timer(uv_timer_t *t)
{
	drive(t->data);
}

int metrics_start(struct server *srv)
{
	struct metrics *m = &srv->metrics;
	char host[256];
	int port = 0, n = 0;
	const char *spec = srv->cfg.metrics;
	if (!spec)
		return 0;
	if (sscanf(spec, "%255[^:]:%d%n", host, &port, &n) != 2 || spec[n] || port <= 0 || port > 65535) {
		log_error("metrics: %s: expected ADDR:PORT", spec);
		return -1;
	}
	struct sockaddr_in sa;
	if (uv_ip4_addr(host, port, &sa) != 0) {
		log_error("metrics: %s: not an IPv4 address", host);
		return -1;
	}
	m->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, on_request, srv,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64U,
				  MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
	const union MHD_DaemonInfo *info = m->mhd ? MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		log_error("metrics: cannot listen on %s", spec);
		if (m->mhd)
			MHD_stop_daemon(m->mhd);
		m->mhd = NULL;
		return -1;
	}
	uv_poll_init(srv->loop, &m->poll, info->epoll_fd);
	m->poll.data = m;
	uv_poll_start(&m->poll, UV_READABLE, on_poll);
	uv_timer_init(srv->loop, &m->timer);
	m->timer.data = m;
	uv_timer_start(&m->timer, on_timer, METRICS_TIMER_MS, METRICS_TIMER_MS);
	log_info("metrics on http://%s/metrics", spec);
	return 0;
}

void metrics_stop(struct server *srv)
{
	struct metrics *m = &srv->metrics;
	if (m->mhd) {
		uv_close((uv_handle_t *)&m->poll, NULL);
		uv_close((uv_handle_t *)&m->timer, NULL);
		MHD_stop_daemon(m->mhd);
		m->mhd = NULL;
	}
}

void metrics_free(struct metrics *m)
{
	utarray_free(m->written);
	m->written = NULL;
}
