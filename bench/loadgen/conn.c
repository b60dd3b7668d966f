/*
 * conn.c: one IRC client connection of the load generator. Output is
 * gathered per connection during a loop turn and handed to the socket once
 * at the end of it (uv_try_write first, a queued uv_write for the rest), so
 * a burst of messages costs one system call, not one per line. Input goes
 * through the project's line reader and parser (src/proto/irc.h); PING is
 * answered here, registration (001) and failures (ERROR, a refused nick, a
 * closed socket) are reported to the scenario, every other line is passed
 * on to it.
 *
 * With quickack, TCP_QUICKACK is set again after every read, so the
 * generator ACKs each segment at once. Linux otherwise delays an ACK up to
 * 40 ms; a server that leaves Nagle's algorithm on (no TCP_NODELAY) then
 * holds its next small write until that ACK comes, and the measured latency
 * is the ACK timer's rather than the server's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/util.h"
#include "loadgen.h"

#define READER_MAX (4u << 20) /* unparsed input held per connection */

uint64_t now_us(void)
{
	return uv_hrtime() / 1000u;
}

/* ---- writing ---- */

struct write_req {
	uv_write_t req;
	struct conn *c;
	char *data;
};

static void flush_one(struct conn *c);

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct conn *c = w->c;
	free(w->data);
	free(w);
	c->writing = 0;
	if (status < 0 || c->state == CONN_CLOSED)
		return; /* a broken socket shows up as a read error too */
	flush_one(c);
}

/* Hands c's queued output to the socket: what it takes at once, then one
 * queued write for the rest (its buffer moves into the request). */
static void flush_one(struct conn *c)
{
	if (c->writing || c->out.len == 0 || c->state == CONN_CLOSED || c->state == CONN_CONNECTING)
		return;
	uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == (int)c->out.len) {
		buf_reset(&c->out);
		return;
	}
	size_t done = n > 0 ? (size_t)n : 0;
	struct write_req *w = xmalloc(sizeof *w);
	w->c = c;
	w->data = xmalloc(c->out.len - done);
	memcpy(w->data, c->out.data + done, c->out.len - done);
	b = uv_buf_init(w->data, (unsigned)(c->out.len - done));
	buf_reset(&c->out);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(w->data);
		free(w);
		return;
	}
	c->writing = 1;
}

/* End of every loop turn: flushes the connections that queued output. */
static void on_flush(uv_check_t *h)
{
	struct net *net = h->data;
	struct conn *c = net->dirty;
	net->dirty = NULL;
	while (c) {
		struct conn *next = c->next_dirty;
		c->dirty = 0;
		flush_one(c);
		c = next;
	}
}

void conn_send(struct conn *c, const char *data, size_t len)
{
	if (c->state == CONN_CLOSED || c->state == CONN_NEW)
		return;
	buf_append(&c->out, data, len);
	if (!c->dirty) {
		c->dirty = 1;
		c->next_dirty = c->net->dirty;
		c->net->dirty = c;
	}
}

void conn_sendf(struct conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof line - 2)
		abort(); /* the generator never formats lines this long */
	line[n++] = '\r';
	line[n++] = '\n';
	conn_send(c, line, (size_t)n);
}

/* ---- closing ---- */

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->net->open_handles--;
	irc_reader_free(&c->reader);
	buf_free(&c->out);
}

void conn_close(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;
	if (c->handle_open) {
		c->handle_open = 0;
		uv_close((uv_handle_t *)&c->tcp, on_closed);
	}
}

/* Closes c and tells the scenario why. */
static void conn_fail(struct conn *c, const char *why)
{
	if (c->state == CONN_CLOSED)
		return;
	conn_close(c);
	c->h->failed(c, why);
}

/* ---- reading ---- */

static char read_buffer[256 * 1024];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = read_buffer;
	buf->len = sizeof read_buffer;
}

/* Numerics that end a registration attempt. */
static int refused_numeric(const char *cmd)
{
	static const char *const refused[] = {"431", "432", "433", "436", "437", "464", "465", NULL};
	for (const char *const *p = refused; *p; p++)
		if (strcmp(cmd, *p) == 0)
			return 1;
	return 0;
}

/* Handles one parsed line: what every connection does, then the scenario. */
static void handle_line(struct conn *c, struct irc_msg *m, uint64_t now)
{
	char why[300];
	if (strcasecmp(m->command, "PING") == 0) {
		conn_sendf(c, "PONG :%s", m->nparams ? m->params[0] : "");
		return;
	}
	if (strcasecmp(m->command, "ERROR") == 0) {
		snprintf(why, sizeof why, "ERROR from server: %s", m->nparams ? m->params[0] : "");
		conn_fail(c, why);
		return;
	}
	if (c->state == CONN_REGISTERING) {
		if (strcmp(m->command, "001") == 0) {
			c->state = CONN_REGISTERED;
			c->was_registered = 1;
			c->h->registered(c);
			return;
		}
		if (refused_numeric(m->command)) {
			snprintf(why, sizeof why, "registration refused: %s %s", m->command,
				 m->nparams ? m->params[m->nparams - 1] : "");
			conn_fail(c, why);
			return;
		}
	}
	c->h->line(c, m, now);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	char *line;
	size_t len;
	int rc;

	if (nread < 0) {
		conn_fail(c, nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread));
		return;
	}
	if (c->net->quickack) {
		uv_os_fd_t fd;
		int one = 1;
		if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
			setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
	}
	if (irc_reader_feed(&c->reader, buf->base, (size_t)nread) < 0) {
		conn_fail(c, "generator: input backlog too large");
		return;
	}
	uint64_t now = now_us();
	while (c->state != CONN_CLOSED && (rc = irc_reader_next(&c->reader, &line, &len)) != 0) {
		struct irc_msg m;
		if (rc < 0 || (rc = irc_parse(line, len, &m)) < 0) {
			c->net->bad_lines++;
			continue;
		}
		if (rc == IRC_OK)
			handle_line(c, &m, now);
	}
}

/* ---- connecting ---- */

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	char why[128];
	if (c->state == CONN_CLOSED)
		return;
	if (status < 0) {
		snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
		conn_fail(c, why);
		return;
	}
	c->state = CONN_REGISTERING;
	uv_tcp_nodelay(&c->tcp, 1);
	if ((status = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) < 0) {
		snprintf(why, sizeof why, "read: %s", uv_strerror(status));
		conn_fail(c, why);
		return;
	}
	conn_sendf(c, "NICK %s", c->nick);
	conn_sendf(c, "USER %s 0 * :chorus-bench", c->nick);
}

int conn_start(struct conn *c, struct net *net, uint32_t id, const struct sockaddr *addr,
	       const char *nick, const struct conn_handler *h, void *ctx)
{
	int rc;
	memset(c, 0, sizeof *c);
	c->net = net;
	c->h = h;
	c->ctx = ctx;
	c->id = id;
	snprintf(c->nick, sizeof c->nick, "%s", nick);
	irc_reader_init(&c->reader, READER_MAX);
	if ((rc = uv_tcp_init(net->loop, &c->tcp)) < 0)
		return rc;
	c->tcp.data = c;
	c->connect_req.data = c;
	c->handle_open = 1;
	net->open_handles++;
	c->state = CONN_CONNECTING;
	if ((rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect)) < 0) {
		conn_close(c);
		return rc;
	}
	return 0;
}

void net_init(struct net *net, uv_loop_t *loop, int quickack)
{
	memset(net, 0, sizeof *net);
	net->loop = loop;
	net->quickack = quickack;
	uv_check_init(loop, &net->flush);
	net->flush.data = net;
	uv_check_start(&net->flush, on_flush);
	uv_unref((uv_handle_t *)&net->flush);
}

void net_close(struct net *net)
{
	uv_close((uv_handle_t *)&net->flush, NULL);
}
