/*
 * conn.c: one TCP connection to a replica, on the libuv loop: resolve the
 * host, connect (with a time limit, which covers the TLS handshake too),
 * speak TLS over it if asked (src/tls), split what arrives into lines with
 * the IRC line reader, queue lines out. It knows nothing of IRC beyond lines.
 *
 * Memory: a conn lives until every libuv handle and request it started has
 * called back; conn_close only marks it and starts closing, so a callback
 * that closes the connection from inside a line callback is safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

#define RECVQ_MAX (1 << 20)

struct conn {
	uv_loop_t *loop;
	const struct conn_events *ev;
	void *arg;
	uv_getaddrinfo_t resolve;
	uv_connect_t connect;
	uv_shutdown_t shutdown;
	uv_tcp_t tcp;
	uv_timer_t timer;         /* the connect time limit */
	struct irc_reader reader;
	struct tls_client *tls_client; /* NULL: plain TCP */
	struct tls_conn *tls;     /* the TLS session, once connected */
	char *host;               /* for the certificate's name check */
	int pending;              /* callbacks libuv still owes us */
	int tcp_open, timer_open; /* handles to uv_close */
	int connected;
	int closing;              /* conn_close or the end was reported */
	int early_error;          /* resolving could not even start: reported by the timer */
	char buf[65536];
};

struct write_req {
	uv_write_t req;
	char data[];
};

static void release(struct conn *cn)
{
	if (--cn->pending > 0)
		return;
	irc_reader_free(&cn->reader);
	tls_conn_free(cn->tls);
	free(cn->host);
	free(cn);
}

static void on_handle_closed(uv_handle_t *h)
{
	release(h->data);
}

/* Closes whatever handles are open; memory goes when they have closed. */
static void close_handles(struct conn *cn)
{
	if (cn->timer_open) {
		cn->timer_open = 0;
		uv_close((uv_handle_t *)&cn->timer, on_handle_closed);
	}
	if (cn->tcp_open) {
		cn->tcp_open = 0;
		uv_close((uv_handle_t *)&cn->tcp, on_handle_closed);
	}
}

/* The connection failed or ended: tell the owner once, then close. */
static void fail(struct conn *cn, const char *reason)
{
	if (cn->closing)
		return;
	cn->closing = 1;
	close_handles(cn);
	cn->ev->closed(cn, reason, cn->arg);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *cn = h->data;
	(void)hint;
	*b = uv_buf_init(cn->buf, sizeof cn->buf);
}

static void on_written(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows up as a read error or EOF */
	free(req);
}

/* Queues bytes for the socket. */
static void wire_send(struct conn *cn, const char *data, size_t len)
{
	if (!len)
		return;
	struct write_req *w = xmalloc(sizeof *w + len);
	memcpy(w->data, data, len);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&cn->tcp, &b, 1, on_written) < 0)
		free(w);
}

/* The link is up (TCP, and TLS if asked): the owner may talk. */
static void ready(struct conn *cn)
{
	cn->connected = 1;
	uv_timer_stop(&cn->timer);
	cn->ev->connected(cn, cn->arg);
}

/* Bytes from the socket through TLS: what they carry goes to plain; the
 * handshake's answers go out. Returns 0, or -1 after fail(). */
static int tls_in(struct conn *cn, const char *data, size_t len, struct buf *plain)
{
	struct buf wire = {0};
	int was_ready = tls_ready(cn->tls);
	int rc = tls_read(cn->tls, data, len, plain, &wire);
	wire_send(cn, wire.data, wire.len);
	buf_free(&wire);
	if (rc < 0) {
		char why[256];
		tls_failure(cn->tls, why, sizeof why);
		fail(cn, why);
		return -1;
	}
	if (!was_ready && tls_ready(cn->tls))
		ready(cn);
	return cn->closing ? -1 : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *cn = s->data;
	char *line;
	size_t len;
	int rc;
	if (nread == 0 || cn->closing)
		return;
	if (nread < 0) {
		fail(cn, nread == UV_EOF ? "connection closed by the replica" : uv_strerror((int)nread));
		return;
	}
	if (cn->tls) {
		struct buf plain = {0};
		rc = tls_in(cn, b->base, (size_t)nread, &plain);
		if (rc == 0 && plain.len && irc_reader_feed(&cn->reader, plain.data, plain.len) < 0)
			rc = -2;
		buf_free(&plain);
		if (rc == -2)
			fail(cn, "the replica sent an endless line");
		if (rc < 0)
			return;
	} else if (irc_reader_feed(&cn->reader, b->base, (size_t)nread) < 0) {
		fail(cn, "the replica sent an endless line");
		return;
	}
	while (!cn->closing && (rc = irc_reader_next(&cn->reader, &line, &len)) != 0)
		if (rc == 1)
			cn->ev->line(cn, line, len, cn->arg);
}

static void on_connect_timeout(uv_timer_t *t)
{
	struct conn *cn = t->data;
	fail(cn, cn->early_error ? uv_strerror(cn->early_error) : "no answer (connect timed out)");
}

static void on_connected(uv_connect_t *req, int status)
{
	struct conn *cn = req->data;
	if (!cn->closing) {
		if (status < 0) {
			fail(cn, uv_strerror(status));
		} else {
			uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);
			if (!cn->tls_client) {
				ready(cn);
			} else {
				struct buf none = {0};
				cn->tls = tls_conn_connect(cn->tls_client, cn->host);
				tls_in(cn, NULL, 0, &none); /* the ClientHello */
				buf_free(&none);
			}
		}
	}
	release(cn);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *cn = req->data;
	if (!cn->closing) {
		int rc = status;
		if (rc == 0) {
			uv_tcp_init(cn->loop, &cn->tcp);
			cn->tcp.data = cn;
			cn->tcp_open = 1;
			cn->pending++;
			rc = uv_tcp_connect(&cn->connect, &cn->tcp, res->ai_addr, on_connected);
			if (rc == 0)
				cn->pending++;
		}
		if (rc < 0)
			fail(cn, uv_strerror(rc));
	}
	uv_freeaddrinfo(res);
	release(cn);
}

struct conn *conn_open(uv_loop_t *loop, const char *host, int port, struct tls_client *tls,
		       const struct conn_events *ev, void *arg)
{
	struct conn *cn = xcalloc(1, sizeof *cn);
	cn->tls_client = tls;
	cn->host = xstrdup(host);
	struct addrinfo hints = {0};
	char service[16];
	cn->loop = loop;
	cn->ev = ev;
	cn->arg = arg;
	cn->pending = 1; /* ours, given up by conn_close or the end */
	irc_reader_init(&cn->reader, RECVQ_MAX);
	cn->resolve.data = cn->connect.data = cn->shutdown.data = cn->timer.data = cn;
	uv_timer_init(loop, &cn->timer);
	cn->timer_open = 1;
	cn->pending++;
	uv_timer_start(&cn->timer, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof service, "%d", port);
	int rc = uv_getaddrinfo(loop, &cn->resolve, on_resolved, host, service, &hints);
	if (rc == 0) {
		cn->pending++;
	} else { /* report it from the loop, never from inside conn_open */
		cn->early_error = rc;
		uv_timer_start(&cn->timer, on_connect_timeout, 0, 0);
	}
	return cn;
}

void conn_send(struct conn *cn, const char *line)
{
	if (cn->closing || !cn->connected)
		return;
	struct buf out = {0}, wire = {0};
	buf_puts(&out, line);
	buf_puts(&out, "\r\n");
	if (!cn->tls) {
		wire_send(cn, out.data, out.len);
	} else if (tls_write(cn->tls, out.data, out.len, &wire) == 0) {
		wire_send(cn, wire.data, wire.len);
	}
	buf_free(&out);
	buf_free(&wire);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *cn = req->data;
	(void)status;
	close_handles(cn);
	release(cn);
}

void conn_close(struct conn *cn, int flush)
{
	if (!cn)
		return;
	cn->closing = 1;
	if (flush && cn->connected && cn->tls && cn->tcp_open) {
		struct buf wire = {0};
		tls_close(cn->tls, &wire);
		wire_send(cn, wire.data, wire.len);
		buf_free(&wire);
	}
	if (flush && cn->connected && cn->tcp_open &&
	    uv_shutdown(&cn->shutdown, (uv_stream_t *)&cn->tcp, on_shutdown) == 0)
		cn->pending++;
	else
		close_handles(cn);
	release(cn);
}
