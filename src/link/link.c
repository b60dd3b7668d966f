/*
 * link.c: catch-up links (see link.h).
 */
#include "link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <utlist.h>

#include "common/buf.h"
#include "common/util.h"

#define LINK_READ_CHUNK (64 * 1024)
#define LINK_PAUSE_MS 5
#define LINK_ANSWER_TIMEOUT_MS 15000

enum { LINK_HELLO = 1, LINK_OPS = 2, LINK_ANSWER = 3 };

struct peer_addr {
	uint32_t id;
	char host[256];
	int port;
};

struct link_conn {
	struct link_conn *prev, *next;
	struct link_set *ls;
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_timer_t timer;        /* incoming: reads again after a pause (the writer was
	                          * behind); outgoing: closes the link when the oldest
	                          * unanswered batch waited LINK_ANSWER_TIMEOUT_MS */
	int handles;             /* open libuv handles; freed when 0 after closing */
	struct tls_conn *tls;
	uint32_t peer;           /* outgoing: the member; incoming: from its hello (0 until) */
	int outgoing, connected, closing, paused;
	size_t sent, answered;   /* outgoing: batches sent, answers received */
	size_t taken;            /* incoming: batches taken */
	struct buf in;           /* plaintext received and not yet handled, from in_off */
	size_t in_off;
	struct buf early;        /* TLS bytes made before the connection was up */
};

struct link_set {
	uv_loop_t *loop;
	struct repl *repl;
	uint32_t self;
	struct tls_server *tls_in;
	struct tls_client *tls_out;
	uv_tcp_t listener;
	int listening;
	struct peer_addr peers[GROUP_MAX_MEMBERS];
	size_t npeers;
	struct link_conn *conns;
	uint32_t lost[GROUP_MAX_MEMBERS]; /* members whose link broke, to tell repl */
	size_t nlost;
	uv_timer_t lost_timer;            /* tells it on the next loop turn */
	int closing, handles;             /* handles: open while closing */
};

struct write_req {
	uv_write_t req;
	char data[];
};

/* ---- connections ---- */

static void conn_close(struct link_conn *c, const char *why);

static void on_handle_closed(uv_handle_t *h)
{
	struct link_conn *c = h->data;
	if (--c->handles)
		return;
	tls_conn_free(c->tls);
	buf_free(&c->in);
	buf_free(&c->early);
	free(c);
}

static void on_written(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows as a read error too */
	free(req);
}

/* Writes TLS bytes to c's socket (or holds them until it is connected). */
static void conn_write_wire(struct link_conn *c, const struct buf *wire)
{
	if (!wire->len || c->closing)
		return;
	if (!c->connected) {
		buf_append(&c->early, wire->data, wire->len);
		return;
	}
	struct write_req *w = xmalloc(sizeof *w + wire->len);
	memcpy(w->data, wire->data, wire->len);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)wire->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(w);
		conn_close(c, "write failed");
	}
}

/* Sends one frame: type and payload (len bytes), then flushes. Returns 0 or
 * -1 (c is closing). */
static int conn_send(struct link_conn *c, int type, const void *payload, size_t len)
{
	struct buf frame = {0}, wire = {0};
	uint32_t n = (uint32_t)len + 1;
	unsigned char head[5] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
				 (unsigned char)n, (unsigned char)type};
	buf_reserve(&frame, sizeof head + len);
	buf_append(&frame, head, sizeof head);
	buf_append(&frame, payload, len);
	int rc = tls_write(c->tls, frame.data, frame.len, &wire);
	conn_write_wire(c, &wire);
	buf_free(&frame);
	buf_free(&wire);
	if (rc < 0)
		conn_close(c, "TLS error");
	return rc < 0 || c->closing ? -1 : 0;
}

static int is_lost(const struct link_set *ls, uint32_t member)
{
	for (size_t i = 0; i < ls->nlost; i++)
		if (ls->lost[i] == member)
			return 1;
	return 0;
}

/* Tells repl which links broke: their unanswered batches are lost. Not from
 * inside conn_close: that may run within a call of repl's (link_send). */
static void on_lost(uv_timer_t *t)
{
	struct link_set *ls = t->data;
	uint32_t lost[GROUP_MAX_MEMBERS];
	size_t n = ls->nlost;
	memcpy(lost, ls->lost, n * sizeof *lost);
	ls->nlost = 0;
	for (size_t i = 0; i < n; i++)
		repl_direct_lost(ls->repl, lost[i]);
}

/* Closes c; an outgoing link's unanswered batches are lost to repl, on the
 * next loop turn (until then, link_send refuses that member). */
static void conn_close(struct link_conn *c, const char *why)
{
	struct link_set *ls = c->ls;
	if (c->closing)
		return;
	c->closing = 1;
	if (c->outgoing) {
		if (c->sent || !ls->closing)
			log_info("link to replica %" PRIu32 " closed (%s) after %zu batches", c->peer, why,
				 c->sent);
		if (!ls->closing && !is_lost(ls, c->peer)) {
			ls->lost[ls->nlost++] = c->peer;
			uv_timer_start(&ls->lost_timer, on_lost, 0, 0);
		}
	} else if (c->peer) {
		log_info("link from replica %" PRIu32 " closed (%s) after %zu batches taken", c->peer, why,
			 c->taken);
	}
	DL_DELETE(ls->conns, c);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_pause_over(uv_timer_t *t);

static void on_answer_late(uv_timer_t *t)
{
	conn_close(t->data, "no answer in time");
}

/* Outgoing: (re)starts the wait for the oldest unanswered batch, or stops it
 * when all are answered. */
static void answer_deadline(struct link_conn *c)
{
	if (c->answered < c->sent)
		uv_timer_start(&c->timer, on_answer_late, LINK_ANSWER_TIMEOUT_MS, 0);
	else
		uv_timer_stop(&c->timer);
}

/* Handles one frame of c (type and its payload). Returns 0, 1 if c pauses
 * before it (the frame stays), -1 if c closed. */
static int handle_frame(struct link_conn *c, int type, const unsigned char *p, size_t len)
{
	struct link_set *ls = c->ls;
	if (!c->outgoing && !c->peer) {
		uint32_t id = len == 4 ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
		if (type != LINK_HELLO || id == 0 || id == ls->self) {
			conn_close(c, "no hello");
			return -1;
		}
		c->peer = id;
		log_info("link from replica %" PRIu32 " open", id);
		return 0;
	}
	if (!c->outgoing && type == LINK_OPS) {
		if (repl_backlog(ls->repl) > LINK_BACKLOG_MAX) {
			c->paused = 1;
			uv_read_stop((uv_stream_t *)&c->tcp);
			uv_timer_start(&c->timer, on_pause_over, LINK_PAUSE_MS, 0);
			return 1;
		}
		unsigned char taken = repl_direct_deliver(ls->repl, c->peer, p, len) == 0;
		c->taken += taken;
		log_debug("link from replica %" PRIu32 ": a batch of %zu bytes %s", c->peer, len,
			  taken ? "taken" : "refused");
		return conn_send(c, LINK_ANSWER, &taken, 1);
	}
	if (c->outgoing && type == LINK_ANSWER && len == 1 && c->answered < c->sent) {
		c->answered++;
		answer_deadline(c);
		repl_direct_answer(ls->repl, c->peer, p[0] == 1);
		return c->closing ? -1 : 0;
	}
	conn_close(c, "unexpected frame");
	return -1;
}

/* Handles every whole frame received; keeps the rest. */
static void handle_frames(struct link_conn *c)
{
	while (!c->closing && c->in.len - c->in_off >= 4) {
		const unsigned char *h = (const unsigned char *)c->in.data + c->in_off;
		uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		if (n == 0 || n > LINK_FRAME_MAX) {
			conn_close(c, "bad frame length");
			return;
		}
		if (c->in.len - c->in_off < 4 + (size_t)n)
			break;
		if (handle_frame(c, h[4], h + 5, n - 1) != 0)
			return;
		c->in_off += 4 + (size_t)n;
	}
	if (c->in_off == c->in.len) {
		buf_reset(&c->in);
		c->in_off = 0;
	} else if (c->in_off > LINK_READ_CHUNK) {
		memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
		c->in.len -= c->in_off;
		c->in_off = 0;
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h, (void)suggested;
	b->base = xmalloc(LINK_READ_CHUNK);
	b->len = LINK_READ_CHUNK;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct link_conn *c = s->data;
	if (nread < 0) {
		conn_close(c, nread == UV_EOF ? "closed by the other end" : uv_strerror((int)nread));
	} else if (nread > 0 && !c->closing) {
		struct buf wire = {0};
		int rc = tls_read(c->tls, b->base, (size_t)nread, &c->in, &wire);
		conn_write_wire(c, &wire);
		buf_free(&wire);
		if (rc < 0)
			conn_close(c, "TLS failed (another link key?)");
		else if (!c->paused)
			handle_frames(c);
	}
	free(b->base);
}

static void on_pause_over(uv_timer_t *t)
{
	struct link_conn *c = t->data;
	c->paused = 0;
	handle_frames(c);
	if (!c->closing && !c->paused)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static struct link_conn *conn_new(struct link_set *ls)
{
	struct link_conn *c = xcalloc(1, sizeof *c);
	c->ls = ls;
	uv_tcp_init(ls->loop, &c->tcp);
	uv_timer_init(ls->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	DL_APPEND(ls->conns, c);
	return c;
}

/* ---- incoming ---- */

static void on_connection(uv_stream_t *server, int status)
{
	struct link_set *ls = server->data;
	if (status < 0 || ls->closing)
		return;
	struct link_conn *c = conn_new(ls);
	c->connected = 1;
	c->tls = tls_conn_new(ls->tls_in);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c, "accept failed");
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- outgoing ---- */

static void on_connected(uv_connect_t *req, int status)
{
	struct link_conn *c = req->data;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c, uv_strerror(status));
		return;
	}
	c->connected = 1;
	uv_tcp_nodelay(&c->tcp, 1);
	struct buf early = c->early;
	memset(&c->early, 0, sizeof c->early);
	conn_write_wire(c, &early);
	buf_free(&early);
	if (!c->closing)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Opens the link to peer p: connects, starts TLS and says hello. NULL if
 * p's address does not resolve (logged). */
static struct link_conn *conn_open(struct link_set *ls, const struct peer_addr *p)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	uv_getaddrinfo_t gai;
	char port[16];
	snprintf(port, sizeof port, "%d", p->port);
	int rc = uv_getaddrinfo(ls->loop, &gai, NULL, p->host, port, &hints);
	if (rc < 0) {
		log_warn("link to replica %" PRIu32 ": %s: %s", p->id, p->host, uv_strerror(rc));
		return NULL;
	}
	struct link_conn *c = conn_new(ls);
	c->outgoing = 1;
	c->peer = p->id;
	c->tls = tls_conn_connect(ls->tls_out, p->host);
	c->connect.data = c;
	rc = uv_tcp_connect(&c->connect, &c->tcp, gai.addrinfo->ai_addr, on_connected);
	uv_freeaddrinfo(gai.addrinfo);
	struct buf plain = {0}, wire = {0};
	tls_read(c->tls, NULL, 0, &plain, &wire); /* the ClientHello */
	conn_write_wire(c, &wire);
	buf_free(&plain);
	buf_free(&wire);
	if (rc < 0) {
		conn_close(c, uv_strerror(rc));
		return NULL;
	}
	unsigned char hello[4] = {(unsigned char)(ls->self >> 24), (unsigned char)(ls->self >> 16),
				  (unsigned char)(ls->self >> 8), (unsigned char)ls->self};
	return conn_send(c, LINK_HELLO, hello, sizeof hello) == 0 ? c : NULL;
}

int link_send(struct link_set *ls, uint32_t member, const void *data, size_t len)
{
	struct link_conn *c;
	if (is_lost(ls, member))
		return -ECONNRESET;
	DL_FOREACH(ls->conns, c)
		if (c->outgoing && c->peer == member && !c->closing)
			break;
	if (!c) {
		const struct peer_addr *p = NULL;
		for (size_t i = 0; i < ls->npeers && !p; i++)
			if (ls->peers[i].id == member)
				p = &ls->peers[i];
		if (!p)
			return -ENOENT;
		if (!(c = conn_open(ls, p)))
			return -EHOSTUNREACH;
		log_info("link to replica %" PRIu32 " (%s:%d) opening", member, p->host, p->port);
	}
	if (len + 1 > LINK_FRAME_MAX || conn_send(c, LINK_OPS, data, len) < 0)
		return -EIO;
	if (c->sent++ == c->answered)
		answer_deadline(c);
	return 0;
}

/* ---- the set ---- */

int link_key_load(const char *path, unsigned char key[TLS_PSK_LEN], char *err, size_t errlen)
{
	unsigned char text[4096];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(text, 1, sizeof text, f) : 0;
	if (!f) {
		snprintf(err, errlen, "link key %s: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	if (n < 16) {
		snprintf(err, errlen, "link key %s: shorter than 16 bytes (chorusctl up makes one)", path);
		return -1;
	}
	SHA256(text, n, key);
	OPENSSL_cleanse(text, sizeof text);
	return 0;
}

struct link_set *link_new(uv_loop_t *loop, struct repl *repl, uint32_t self,
			  const unsigned char key[TLS_PSK_LEN])
{
	struct link_set *ls = xcalloc(1, sizeof *ls);
	ls->loop = loop;
	ls->repl = repl;
	ls->self = self;
	ls->tls_in = tls_psk_server_new(key);
	ls->tls_out = tls_psk_client_new(key);
	if (!ls->tls_in || !ls->tls_out) {
		tls_server_free(ls->tls_in);
		tls_client_free(ls->tls_out);
		free(ls);
		return NULL;
	}
	uv_timer_init(loop, &ls->lost_timer);
	ls->lost_timer.data = ls;
	return ls;
}

int link_listen(struct link_set *ls, const char *addr, int port)
{
	struct sockaddr_storage sa;
	int rc = strchr(addr, ':') ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&sa)
				   : uv_ip4_addr(addr, port, (struct sockaddr_in *)&sa);
	if (rc == 0) {
		uv_tcp_init(ls->loop, &ls->listener);
		ls->listener.data = ls;
		ls->listening = 1;
		rc = uv_tcp_bind(&ls->listener, (const struct sockaddr *)&sa, 0);
	}
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&ls->listener, 16, on_connection);
	if (rc < 0)
		log_error("link port %s:%d: %s", addr, port, uv_strerror(rc));
	else
		log_info("catch-up links on %s:%d", addr, port);
	return rc;
}

void link_add_peer(struct link_set *ls, uint32_t member, const char *host, int port)
{
	if (ls->npeers == GROUP_MAX_MEMBERS || member == ls->self)
		return;
	struct peer_addr *p = &ls->peers[ls->npeers++];
	p->id = member;
	snprintf(p->host, sizeof p->host, "%s", host);
	p->port = port;
}

void link_clear_peers(struct link_set *ls)
{
	ls->npeers = 0;
}

/* One of the set's own handles (its timer, its listener) closed: freed with
 * the last. */
static void on_set_handle_closed(uv_handle_t *h)
{
	struct link_set *ls = h->data;
	if (--ls->handles == 0)
		free(ls);
}

void link_close(struct link_set *ls)
{
	ls->closing = 1;
	while (ls->conns)
		conn_close(ls->conns, "shutting down");
	tls_server_free(ls->tls_in);
	tls_client_free(ls->tls_out);
	ls->tls_in = NULL;
	ls->tls_out = NULL;
	ls->handles = 1 + ls->listening;
	uv_close((uv_handle_t *)&ls->lost_timer, on_set_handle_closed);
	if (ls->listening)
		uv_close((uv_handle_t *)&ls->listener, on_set_handle_closed);
}
