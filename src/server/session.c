/*
 * session.c: one client connection: accepting it, reading lines under flood
 * control, writing with a bounded send queue, PING for idle clients, and
 * closing safely.
 *
 * Limits (docs/LIMITS.md): max_clients connections; a client's unprocessed
 * input may not pass recvq_max ("Excess Flood"); lines are processed at
 * flood_rate per second after a burst of flood_burst (the rest wait, nothing
 * is dropped); output queued to a client may not pass sendq_max ("SendQ
 * exceeded"). Closing is deferred to the end of the loop turn (reaper), so a
 * fan-out never frees a session under the sender.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

#define THROTTLE_TICK_MS 50
#define PING_TICK_MS 5000

static uint64_t now_ms(struct server *srv)
{
	return uv_now(srv->loop);
}

/* One big read buffer for the whole loop: each read is consumed (copied into
 * the session's reader) before the next, so idle connections hold none. */
static char read_buffer[64 * 1024];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = read_buffer;
	buf->len = sizeof read_buffer;
}

/* ---- writing ---- */

struct write_req {
	uv_write_t req;
	struct session *s;
	size_t len;
	char data[];
};

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	w->s->sendq -= w->len;
	free(w);
	(void)status; /* a failed write shows up as a read error or EOF */
}

/* Hands bytes to s's socket: what it takes now is written at once, the rest
 * goes through libuv (counted in sendq until written). */
static void wire_write(struct session *s, const char *data, size_t len)
{
	if (len && s->sendq == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		int n = uv_try_write(&s->conn.stream, &b, 1);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
	if (len) {
		struct write_req *w = xmalloc(sizeof *w + len);
		w->s = s;
		w->len = len;
		memcpy(w->data, data, len);
		uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
		if (uv_write(&w->req, &s->conn.stream, &b, 1, on_written) < 0)
			free(w);
		else
			s->sendq += len;
	}
}

/* Writes out s's queued output (encrypted on a TLS connection). */
static void session_flush(struct session *s)
{
	if (!s->tls) {
		wire_write(s, s->out.data, s->out.len);
	} else if (s->out.len) {
		struct buf wire = {0};
		if (tls_write(s->tls, s->out.data, s->out.len, &wire) < 0)
			session_close(s, "TLS error");
		wire_write(s, wire.data, wire.len);
		buf_free(&wire);
	}
	buf_free(&s->out); /* an idle session keeps no buffer */
}

static void dirty_unlink(struct session *s)
{
	struct session **pp = &s->srv->dirty;
	while (*pp && *pp != s)
		pp = &(*pp)->next_dirty;
	if (*pp)
		*pp = s->next_dirty;
	s->dirty = 0;
}

#define OUT_FLUSH_AT (16 * 1024) /* queued bytes that go out without waiting */

/* Queues data for s. What is queued for a session during one loop turn goes
 * out in one write at the end of the turn (session_flush_all), or as soon as
 * OUT_FLUSH_AT bytes wait: few system calls however many lines fan out to a
 * client. A client whose output the kernel no longer takes, past sendq_max
 * bytes, is closed. */
static void session_write(struct session *s, const char *data, size_t len)
{
	if (s->closing == 2)
		return;
	if (s->sendq + len > s->srv->cfg.sendq_max && !s->closing) {
		metrics_refused(&s->srv->metrics, REFUSED_SENDQ);
		session_close(s, "SendQ exceeded");
		return;
	}
	if (!s->out.cap)
		buf_reserve(&s->out, OUT_FLUSH_AT); /* one allocation for the turn's lines */
	buf_append(&s->out, data, len);
	if (s->out.len >= OUT_FLUSH_AT) {
		session_flush(s);
		return;
	}
	if (!s->dirty) {
		s->dirty = 1;
		s->next_dirty = s->srv->dirty;
		s->srv->dirty = s;
	}
}

/* Writes out every session's output queued during this loop turn. */
static void session_flush_all(struct server *srv)
{
	while (srv->dirty) {
		struct session *s = srv->dirty;
		srv->dirty = s->next_dirty;
		s->dirty = 0;
		session_flush(s);
	}
}

void session_send_raw(struct session *s, const char *line, size_t len)
{
	if (s->closing)
		return;
	if (s->capture) {
		/* A labeled answer is held until the command ends: it counts
		 * against the send queue as if it were queued already. */
		if (s->capture->lines.len + len + s->sendq > s->srv->cfg.sendq_max) {
			metrics_refused(&s->srv->metrics, REFUSED_SENDQ);
			session_close(s, "SendQ exceeded");
			return;
		}
		buf_append(&s->capture->lines, line, len);
		s->capture->count++;
		return;
	}
	session_write(s, line, len);
}

void session_charge(struct session *s, int n)
{
	s->flood.tokens -= n; /* may go below 0: process_lines waits for 1 again */
}

void session_write_done(struct session *s)
{
	if (s->writes && --s->writes == 0 && s->held.len) {
		session_send_raw(s, s->held.data, s->held.len);
		buf_free(&s->held);
	}
}

int session_has_room(const struct session *s)
{
	size_t held = s->sendq + s->out.len + (s->capture ? s->capture->lines.len : 0);
	return !s->closing && held < s->srv->cfg.sendq_max / 2;
}

void session_batch_id(struct session *s, char *buf, size_t len)
{
	snprintf(buf, len, "%u", ++s->batch_seq);
}

struct session *session_find(struct server *srv, uint64_t id)
{
	struct session *s = NULL;
	HASH_FIND(hh, srv->sessions, &id, sizeof id, s);
	return s && !s->closing ? s : NULL;
}

/* ---- connections per address ---- */

struct addr_count {
	char *key;
	unsigned n;
	struct bucket names;     /* the address's new-name allowance (session_may_create) */
	UT_hash_handle hh;
};

int session_may_create(struct session *s)
{
	struct server *srv = s->srv;
	struct addr_count *a = NULL;
	uint64_t now = now_ms(srv);
	double burst = srv->cfg.new_names;
	if (burst <= 0)
		return 1;
	if (s->addr_key[0])
		HASH_FIND_STR(srv->addr_counts, s->addr_key, a);
	if (bucket_refill(&s->names, burst, burst / 60, now) < 1 ||
	    (a && bucket_refill(&a->names, 3 * burst, 3 * burst / 60, now) < 1)) {
		metrics_refused(&srv->metrics, REFUSED_NEW_NAMES);
		return 0;
	}
	s->names.tokens -= 1;
	if (a)
		a->names.tokens -= 1;
	return 1;
}

/* What the per-address limit counts for addr: the address, or for IPv6
 * (not IPv4-mapped) its /64. */
static void addr_key_of(const struct sockaddr_storage *addr, const char *host, char *key, size_t len)
{
	if (addr->ss_family == AF_INET6) {
		const unsigned char *b = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(b, mapped, 12) != 0) {
			snprintf(key, len, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2], b[3], b[4],
				 b[5], b[6], b[7]);
			return;
		}
	}
	snprintf(key, len, "%s", host);
}

/* 1 if host is in the comma-separated exempt list. */
static int exempt(const char *list, const char *host)
{
	size_t n = strlen(host);
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, host, n) == 0)
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

/* Counts s against its address; returns how many connections the address
 * has now (0 when it is exempt or there is no limit: not counted). */
static unsigned addr_take(struct session *s)
{
	struct server *srv = s->srv;
	struct addr_count *a;
	if (srv->cfg.per_address <= 0 || exempt(srv->cfg.exempt, s->host)) {
		s->addr_key[0] = '\0';
		return 0;
	}
	HASH_FIND_STR(srv->addr_counts, s->addr_key, a);
	if (!a) {
		a = xcalloc(1, sizeof *a);
		a->key = xstrdup(s->addr_key);
		bucket_init(&a->names, 3.0 * srv->cfg.new_names, now_ms(srv));
		HASH_ADD_KEYPTR(hh, srv->addr_counts, a->key, strlen(a->key), a);
	}
	return ++a->n;
}

static void addr_release(struct session *s)
{
	struct addr_count *a;
	if (!s->addr_key[0])
		return;
	HASH_FIND_STR(s->srv->addr_counts, s->addr_key, a);
	if (a && --a->n == 0) {
		HASH_DEL(s->srv->addr_counts, a);
		free(a->key);
		free(a);
	}
	s->addr_key[0] = '\0';
}

/* ---- closing ---- */

void session_close(struct session *s, const char *reason)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->close_reason = xstrdup(reason);
	s->next_closing = s->srv->closing;
	s->srv->closing = s;
}

static void on_closed(uv_handle_t *h)
{
	struct session *s = h->data;
	irc_reader_free(&s->reader);
	buf_free(&s->out);
	free(s->nick);
	buf_free(&s->held);
	free(s->account);
	sasl_free(s->sasl);
	tls_conn_free(s->tls);
	free(s->username);
	free(s->realname);
	free(s->close_reason);
	free(s);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct session *s = req->data;
	(void)status;
	free(req);
	uv_close(&s->conn.handle, on_closed);
}

static void unthrottle(struct session *s)
{
	struct session **pp = &s->srv->throttled;
	while (*pp && *pp != s)
		pp = &(*pp)->next_throttled;
	if (*pp)
		*pp = s->next_throttled;
	s->throttled = 0;
}

/* Really closes s: tells it why, leaves presence, frees it after libuv is done. */
static void session_finish(struct session *s)
{
	struct server *srv = s->srv;
	char line[600];
	int n = snprintf(line, sizeof line, "ERROR :Closing Link: %s (%s)\r\n",
			 s->host, s->close_reason ? s->close_reason : "Client quit");
	session_write(s, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
	if (s->dirty)
		dirty_unlink(s);
	if (s->sendq <= s->srv->cfg.sendq_max / 2) {
		session_flush(s);
		if (s->tls) {
			struct buf wire = {0};
			tls_close(s->tls, &wire);
			wire_write(s, wire.data, wire.len);
			buf_free(&wire);
		}
	} else {
		buf_free(&s->out); /* a client this far behind gets no more */
	}
	s->closing = 2;
	if (s->throttled)
		unthrottle(s);
	if (s->user)
		presence_detach(srv, s, s->close_reason);
	monitor_clear(s);
	HASH_DEL(srv->sessions, s);
	srv->nsessions--;
	addr_release(s);
	uv_read_stop(&s->conn.stream);
	/* Let the queued lines (and the ERROR) go out first, unless the client
	 * is the reason they pile up. */
	uv_shutdown_t *req = xmalloc(sizeof *req);
	req->data = s;
	if (s->sendq > s->srv->cfg.sendq_max / 2 ||
	    uv_shutdown(req, &s->conn.stream, on_shutdown) < 0) {
		free(req);
		uv_close(&s->conn.handle, on_closed);
	}
}

/* End of each loop turn: writes out what the turn queued, then closes the
 * sessions marked to close. */
static void on_reap(uv_check_t *h)
{
	struct server *srv = h->data;
	session_flush_all(srv);
	while (srv->closing) {
		struct session *s = srv->closing;
		srv->closing = s->next_closing;
		session_finish(s);
	}
}

/* ---- reading ---- */

/* Answers a line that could not be parsed. */
static void reject_line(struct session *s, int status, char *line)
{
	const char *cmd = "*";
	char *sp;
	/* Name the command when it can be found (after tags and source). */
	if (line[0] == '@' && (sp = strchr(line, ' ')))
		line = sp + 1;
	while (*line == ' ')
		line++;
	if (line[0] == ':' && (sp = strchr(line, ' ')))
		line = sp + 1;
	while (*line == ' ')
		line++;
	if (status == IRC_TOO_LONG) {
		reply_num(s, 417, ":Input line was too long");
	} else if (status == IRC_BAD_UTF8 || status == IRC_BAD_CHAR) {
		char name[32];
		size_t n = strcspn(line, " \r");
		if (n == 0 || n >= sizeof name || !utf8_valid(line, n))
			snprintf(name, sizeof name, "%s", cmd);
		else
			snprintf(name, sizeof name, "%.*s", (int)n, line);
		if (status == IRC_BAD_UTF8)
			reply_fail(s, name, "INVALID_UTF8", NULL, "Message rejected: it is not valid UTF-8");
		else
			reply_fail(s, name, "INVALID_TEXT", NULL,
				   "Message rejected: a CR or NUL inside the line (lines end with CR LF)");
	} else {
		reply_fail(s, "*", "INVALID_MESSAGE", NULL, "Malformed message");
	}
}

/* Processes the lines s has sent while its flood bucket allows; returns 1
 * if lines remain waiting. */
static int process_lines(struct session *s)
{
	char *line;
	size_t len;
	int rc;

	bucket_refill(&s->flood, s->srv->cfg.flood_burst, s->srv->cfg.flood_rate, now_ms(s->srv));
	while (!s->closing && !s->waiting && s->flood.tokens >= 1.0) {
		rc = irc_reader_next(&s->reader, &line, &len);
		if (rc == 0)
			return 0;
		s->flood.tokens -= 1.0;
		s->last_seen_ms = now_ms(s->srv);
		s->ping_sent = 0;
		if (rc == IRC_TOO_LONG) {
			reply_num(s, 417, ":Input line was too long");
			continue;
		}
		struct irc_msg m;
		rc = irc_parse(line, len, &m);
		if (rc == IRC_EMPTY)
			continue;
		if (rc != IRC_OK)
			reject_line(s, rc, line);
		else
			cmd_dispatch(s, &m);
	}
	return !s->closing && !s->waiting && irc_reader_pending(&s->reader) > 0;
}

static void throttle(struct session *s)
{
	if (s->throttled)
		return;
	s->throttled = 1;
	s->next_throttled = s->srv->throttled;
	s->srv->throttled = s;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = stream->data;
	if (s->closing)
		return;
	if (nread < 0) {
		session_close(s, nread == UV_EOF ? "Connection closed" : uv_strerror((int)nread));
		return;
	}
	if (s->tls) {
		struct buf plain = {0}, wire = {0};
		int rc = tls_read(s->tls, buf->base, (size_t)nread, &plain, &wire);
		wire_write(s, wire.data, wire.len);
		buf_free(&wire);
		if (rc < 0) {
			buf_free(&plain);
			session_close(s, "TLS error or close");
			return;
		}
		rc = plain.len ? irc_reader_feed(&s->reader, plain.data, plain.len) : 0;
		buf_free(&plain);
		if (rc < 0) {
			metrics_refused(&s->srv->metrics, REFUSED_RECVQ);
			session_close(s, "Excess Flood");
			return;
		}
	} else if (irc_reader_feed(&s->reader, buf->base, (size_t)nread) < 0) {
		metrics_refused(&s->srv->metrics, REFUSED_RECVQ);
		session_close(s, "Excess Flood");
		return;
	}
	if (!s->throttled && process_lines(s))
		throttle(s);
}

void store_wait_begin(struct session *s, struct store_wait *w)
{
	w->srv = s->srv;
	w->session_id = s->id;
	w->label = s->capture && s->capture->label ? xstrdup(s->capture->label) : NULL;
	if (s->capture)
		s->capture->deferred = 1;
	s->waiting = 1;
}

struct session *store_wait_answer(struct store_wait *w, struct capture *cap)
{
	struct session *s = session_find(w->srv, w->session_id);
	if (s)
		reply_capture_begin(s, cap, w->label);
	return s;
}

void store_wait_end(struct session *s, struct capture *cap)
{
	reply_capture_end(s, cap);
	s->waiting = 0;
	if (!s->closing && !s->throttled && process_lines(s))
		throttle(s);
}

void store_wait_free(struct store_wait *w)
{
	free(w->label);
	w->label = NULL;
}

/* Every tick: lets throttled sessions go on with their waiting lines. */
static void on_throttle_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	struct session *s = srv->throttled, *next;
	srv->throttled = NULL;
	for (; s; s = next) {
		next = s->next_throttled;
		s->throttled = 0;
		if (!s->closing && process_lines(s))
			throttle(s);
	}
}

/* Every tick: PINGs idle clients and drops those that did not answer. */
static void on_ping_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	struct session *s, *tmp;
	uint64_t now = now_ms(srv);
	HASH_ITER(hh, srv->sessions, s, tmp) {
		uint64_t idle = now - s->last_seen_ms;
		if (!s->registered && now - s->connected_ms > (uint64_t)srv->cfg.register_timeout * 1000) {
			metrics_refused(&srv->metrics, REFUSED_REGISTER_TIMEOUT);
			session_close(s, "Registration timed out");
			continue;
		}
		if (s->ping_sent && idle > (uint64_t)(srv->cfg.ping_interval + srv->cfg.ping_timeout) * 1000) {
			session_close(s, "Ping timeout");
		} else if (!s->ping_sent && idle > (uint64_t)srv->cfg.ping_interval * 1000) {
			char line[128];
			int n = snprintf(line, sizeof line, "PING :%s\r\n", srv->name);
			session_write(s, line, (size_t)n);
			s->ping_sent = 1;
		}
	}
}

/* ---- accepting ---- */

/* A replica other than this one for "server full", or NULL: the members of
 * our view in turn (they are up, and turns spread the load), else the
 * configured ones in turn. */
static const struct replica_addr *other_replica(struct server *srv)
{
	const struct group_view *v = repl_current_view(srv->repl);
	const struct replica_addr *in_view[CLUSTER_MAX], *any[CLUSTER_MAX];
	size_t nview = 0, nany = 0;
	for (size_t i = 0; i < srv->cfg.nreplicas; i++) {
		const struct replica_addr *a = &srv->cfg.replicas[i];
		if (a->id == srv->cfg.id)
			continue;
		any[nany++] = a;
		for (size_t j = 0; j < v->n; j++)
			if (v->members[j] == a->id)
				in_view[nview++] = a;
	}
	srv->bounces++;
	return nview ? in_view[srv->bounces % nview] : nany ? any[srv->bounces % nany] : NULL;
}

/* Refuses a connection past max_clients: RPL_BOUNCE (010) naming another
 * replica, then ERROR. */
static void refuse_full(struct session *s)
{
	const struct replica_addr *other = other_replica(s->srv);
	char reason[160];
	if (other) {
		struct line_tags t = LINE_TAGS_INIT;
		reply_line(s, &t, s->srv->name, "010 * %s %d :Server full: try replica %u", other->host,
			   other->port, other->id);
		snprintf(reason, sizeof reason, "Server full: try replica %u at %s:%d", other->id,
			 other->host, other->port);
	} else {
		snprintf(reason, sizeof reason, "Server full");
	}
	session_close(s, reason);
}

/* Sets up a new session s on the accepted stream: limits, the reader, the
 * tables; reading starts unless a limit closes it at once. */
static void session_start(struct server *srv, struct session *s)
{
	irc_reader_init(&s->reader, srv->cfg.recvq_max);
	bucket_init(&s->flood, srv->cfg.flood_burst, now_ms(srv));
	s->last_seen_ms = now_ms(srv);
	s->connected_ms = s->last_spoke_ms = now_ms(srv);
	bucket_init(&s->names, srv->cfg.new_names, now_ms(srv));
	HASH_ADD(hh, srv->sessions, id, sizeof s->id, s);
	srv->nsessions++;
	if (srv->nsessions > (unsigned)srv->cfg.max_clients) {
		metrics_refused(&srv->metrics, REFUSED_FULL);
		refuse_full(s);
		return;
	}
	if (!s->control && addr_take(s) > (unsigned)srv->cfg.per_address) {
		char reason[96];
		snprintf(reason, sizeof reason, "Too many connections from your address (%d)", srv->cfg.per_address);
		metrics_refused(&srv->metrics, REFUSED_ADDRESS);
		session_close(s, reason);
		return;
	}
	uv_read_start(&s->conn.stream, on_alloc, on_read);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	int tls = listener == (uv_stream_t *)&srv->tls_listener;
	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	struct session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->id = ++srv->next_session_id;
	uv_tcp_init(srv->loop, &s->conn.tcp);
	s->conn.tcp.data = s;
	if (uv_accept(listener, &s->conn.stream) < 0) {
		uv_close(&s->conn.handle, on_closed);
		return;
	}
	uv_tcp_nodelay(&s->conn.tcp, 1);
	struct sockaddr_storage addr;
	int alen = sizeof addr;
	snprintf(s->host, sizeof s->host, "unknown");
	if (uv_tcp_getpeername(&s->conn.tcp, (struct sockaddr *)&addr, &alen) == 0) {
		if (addr.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&addr, s->host, sizeof s->host);
		else
			uv_ip4_name((struct sockaddr_in *)&addr, s->host, sizeof s->host);
		addr_key_of(&addr, s->host, s->addr_key, sizeof s->addr_key);
	}
	if (tls)
		s->tls = tls_conn_new(srv->tls);
	session_start(srv, s);
}

/* A connection to the control socket: a local operator's tool (chorusctl),
 * trusted with the operator verbs without OPER. */
static void on_control(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	if (status < 0) {
		log_warn("control accept: %s", uv_strerror(status));
		return;
	}
	struct session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->id = ++srv->next_session_id;
	s->control = 1;
	snprintf(s->host, sizeof s->host, "control");
	uv_pipe_init(srv->loop, &s->conn.pipe, 0);
	s->conn.pipe.data = s;
	if (uv_accept(listener, &s->conn.stream) < 0) {
		uv_close(&s->conn.handle, on_closed);
		return;
	}
	session_start(srv, s);
}

/* Listens on DATA_DIR/control.sock (owner only). Returns 0 (a failure is
 * logged, not fatal). */
static int listen_control(struct server *srv)
{
	char *path = xasprintf("%s/control.sock", srv->cfg.data_dir);
	int rc;
	unlink(path); /* one left by a replica that died: the data directory's lock is ours */
	uv_pipe_init(srv->loop, &srv->control, 0);
	srv->control.data = srv;
	mode_t old = umask(077);
	rc = uv_pipe_bind(&srv->control, path);
	umask(old);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&srv->control, 16, on_control);
	if (rc < 0) /* e.g. a path too long for a socket: chorusd serves on, without it */
		log_warn("control socket %s: %s: chorusctl status/digest cannot reach this replica",
			 path, uv_strerror(rc));
	free(path);
	return 0;
}

/* Listens on the configured address at port with listener. Returns 0 or a
 * negative libuv error. */
static int listen_on(struct server *srv, uv_tcp_t *listener, int port)
{
	struct sockaddr_storage addr;
	int rc;
	if (strchr(srv->cfg.listen, ':'))
		rc = uv_ip6_addr(srv->cfg.listen, port, (struct sockaddr_in6 *)&addr);
	else
		rc = uv_ip4_addr(srv->cfg.listen, port, (struct sockaddr_in *)&addr);
	if (rc < 0)
		return rc;
	uv_tcp_init(srv->loop, listener);
	listener->data = srv;
	if ((rc = uv_tcp_bind(listener, (struct sockaddr *)&addr, 0)) < 0 ||
	    (rc = uv_listen((uv_stream_t *)listener, 511, on_connection)) < 0)
		return rc;
	return 0;
}

int session_listen(struct server *srv)
{
	int rc = listen_on(srv, &srv->listener, srv->cfg.port);
	if (rc == 0 && srv->tls)
		rc = listen_on(srv, &srv->tls_listener, srv->cfg.tls_port);
	if (rc == 0)
		rc = listen_control(srv);
	if (rc < 0)
		return rc;

	uv_check_init(srv->loop, &srv->reaper);
	srv->reaper.data = srv;
	uv_check_start(&srv->reaper, on_reap);
	uv_unref((uv_handle_t *)&srv->reaper);
	uv_timer_init(srv->loop, &srv->throttle_timer);
	srv->throttle_timer.data = srv;
	uv_timer_start(&srv->throttle_timer, on_throttle_tick, THROTTLE_TICK_MS, THROTTLE_TICK_MS);
	uv_timer_init(srv->loop, &srv->ping_timer);
	srv->ping_timer.data = srv;
	uv_timer_start(&srv->ping_timer, on_ping_tick, PING_TICK_MS, PING_TICK_MS);
	return 0;
}

void session_close_all(struct server *srv)
{
	struct session *s, *tmp;
	HASH_ITER(hh, srv->sessions, s, tmp) {
		/* each client told where to go: the members of our view in turn */
		const struct replica_addr *other = other_replica(srv);
		char reason[200];
		if (other)
			snprintf(reason, sizeof reason, "Server shutting down: try replica %u at %s:%d", other->id,
				 other->host, other->port);
		else
			snprintf(reason, sizeof reason, "Server shutting down");
		session_close(s, reason);
	}
	on_reap(&srv->reaper);
	uv_close((uv_handle_t *)&srv->listener, NULL);
	if (srv->tls)
		uv_close((uv_handle_t *)&srv->tls_listener, NULL);
	uv_close((uv_handle_t *)&srv->control, NULL);
	uv_close((uv_handle_t *)&srv->reaper, NULL);
	uv_close((uv_handle_t *)&srv->throttle_timer, NULL);
	uv_close((uv_handle_t *)&srv->ping_timer, NULL);
}
