/*
 * ui_plain.c: line mode, for scripts and tests (and --plain). Input is one
 * command per line on stdin (a terminal, pipe, socket or file); output is
 * plain lines on stdout in the stable format of docs/CLIENT.md:
 *
 *   [room] #lobby                 a redraw of the screen, printed whenever
 *   [participants] alice bob      what it shows changed
 *   [status] replica 1 (127.0.0.1:6667) connected as alice
 *   1. bob: hello
 *   2. alice: hi<TAB>Likes: 1
 *   [end]
 *   bob (14:05) >> text           in the timeline, its posts instead
 *   [view] / [help] / [f] ...     a page: its lines, then [end]
 *   [history] #lobby 42           the whole history: 42 numbered lines, [end]
 *   ! text                        an error or refusal
 *   * text                        information (connected, joined, ...)
 *   [dm] bob: text                a direct message
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "client/client.h"

struct plain {
	union {
		uv_stream_t stream;
		uv_tty_t tty;
		uv_pipe_t pipe;
		uv_tcp_t tcp;
	} in;
	int in_open;        /* in is a stream handle to close */
	int reading;        /* a uv_fs_read is in flight (stdin is a file) */
	int stopped;
	uv_fs_t fs;
	char fsbuf[4096];
	struct buf partial; /* input after the last newline */
	char *last_screen;  /* the last redraw printed, to skip repeats */
	char readbuf[4096];
};

static void emit(const char *text)
{
	fputs(text, stdout);
	fflush(stdout);
}

/* Feeds input bytes: each complete line is a command. */
static void take_input(struct client *c, struct plain *p, const char *data, size_t n)
{
	buf_append(&p->partial, data, n);
	char *start = p->partial.data, *nl;
	while ((nl = memchr(start, '\n', p->partial.len - (size_t)(start - p->partial.data))) != NULL) {
		*nl = '\0';
		client_input(c, start);
		start = nl + 1;
	}
	size_t left = p->partial.len - (size_t)(start - p->partial.data);
	memmove(p->partial.data, start, left);
	p->partial.len = left;
	p->partial.data[left] = '\0';
}

static void input_ended(struct client *c, struct plain *p)
{
	if (p->partial.len)
		client_input(c, p->partial.data);
	buf_reset(&p->partial);
	client_input_end(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct client *c = h->data;
	struct plain *p = c->ui_state;
	(void)hint;
	*b = uv_buf_init(p->readbuf, sizeof p->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct client *c = s->data;
	struct plain *p = c->ui_state;
	if (n > 0) {
		take_input(c, p, b->base, (size_t)n);
	} else if (n < 0) {
		uv_read_stop(s);
		input_ended(c, p);
	}
}

static void read_file(struct client *c);

static void on_file_read(uv_fs_t *req)
{
	struct client *c = req->data;
	struct plain *p = c->ui_state;
	ssize_t n = req->result;
	uv_fs_req_cleanup(req);
	p->reading = 0;
	if (p->stopped) {
		free(p);
		return;
	}
	if (n > 0) {
		take_input(c, p, p->fsbuf, (size_t)n);
		read_file(c);
	} else {
		input_ended(c, p);
	}
}

static void read_file(struct client *c)
{
	struct plain *p = c->ui_state;
	if (p->stopped)
		return;
	uv_buf_t b = uv_buf_init(p->fsbuf, sizeof p->fsbuf);
	p->fs.data = c;
	if (uv_fs_read(c->loop, &p->fs, 0, &b, 1, -1, on_file_read) == 0)
		p->reading = 1;
	else
		input_ended(c, p);
}

/* Opens stdin as the stream libuv says it is. Returns 0 or -1. */
static int open_stdin(struct client *c, struct plain *p)
{
	int rc;
	switch (uv_guess_handle(0)) {
	case UV_TTY:
		rc = uv_tty_init(c->loop, &p->in.tty, 0, 1);
		break;
	case UV_NAMED_PIPE:
		rc = uv_pipe_init(c->loop, &p->in.pipe, 0);
		if (rc == 0 && (rc = uv_pipe_open(&p->in.pipe, 0)) < 0)
			uv_close((uv_handle_t *)&p->in.pipe, NULL);
		break;
	case UV_TCP:
		rc = uv_tcp_init(c->loop, &p->in.tcp);
		if (rc == 0 && (rc = uv_tcp_open(&p->in.tcp, 0)) < 0)
			uv_close((uv_handle_t *)&p->in.tcp, NULL);
		break;
	case UV_FILE:
		read_file(c);
		return 0;
	default:
		rc = UV_EINVAL;
		break;
	}
	if (rc < 0) {
		fprintf(stderr, "chorus: cannot read stdin: %s\n", uv_strerror(rc));
		return -1;
	}
	p->in_open = 1;
	p->in.stream.data = c;
	uv_read_start(&p->in.stream, on_alloc, on_read);
	return 0;
}

static int plain_start(struct client *c)
{
	struct plain *p = xcalloc(1, sizeof *p);
	c->ui_state = p;
	return open_stdin(c, p);
}

static void on_in_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Stops reading; the state goes when libuv is done with it: at the input
 * handle's close, at the end of a file read in flight, or now. */
static void plain_stop(struct client *c)
{
	struct plain *p = c->ui_state;
	if (!p)
		return;
	c->ui_state = NULL;
	p->stopped = 1;
	buf_free(&p->partial);
	free(p->last_screen);
	p->last_screen = NULL;
	if (p->in_open) {
		p->in.stream.data = p;
		uv_close((uv_handle_t *)&p->in.stream, on_in_closed);
	} else if (!p->reading) {
		free(p);
	}
}

/* Appends line n of r and a newline: a post in the timeline, else a
 * numbered line with its likes. */
static void put_line(struct buf *b, const struct room *r, size_t n, const struct room_line *l)
{
	if (r->timeline) {
		room_post_format(b, l);
	} else {
		room_line_format(b, n, l);
		if (l->likes > 0)
			buf_printf(b, "\tLikes: %d", l->likes);
	}
	buf_putc(b, '\n');
}

static void plain_redraw(struct client *c)
{
	struct plain *p = c->ui_state;
	struct room *r = c->room;
	struct buf b = {0};
	size_t first, n;
	if (!p || !r || !r->ready)
		return;
	n = room_show(r, &first);
	buf_printf(&b, "[room] %s\n[participants]", r->name);
	for (size_t i = 0; i < r->npeople; i++)
		buf_printf(&b, " %s", r->people[i]);
	buf_puts(&b, "\n[status] ");
	client_status(c, &b);
	buf_putc(&b, '\n');
	for (size_t i = 0; i < n; i++)
		put_line(&b, r, i + 1, r->lines[first + i]);
	buf_puts(&b, "[end]\n");
	if (!p->last_screen || strcmp(p->last_screen, b.data) != 0) {
		emit(b.data);
		free(p->last_screen);
		p->last_screen = b.data;
	} else {
		buf_free(&b);
	}
}

static void plain_note(struct client *c, enum note_kind kind, const char *text)
{
	static const char *prefix[] = {"! ", "* ", "[dm] "};
	struct buf b = {0};
	(void)c;
	buf_printf(&b, "%s%s\n", prefix[kind], text);
	for (size_t i = 0; i + 1 < b.len; i++) /* one note, one line */
		if ((unsigned char)b.data[i] < 0x20)
			b.data[i] = '?';
	emit(b.data);
	buf_free(&b);
}

static void plain_page(struct client *c, const char *title, char *const *lines, size_t n)
{
	struct buf b = {0};
	(void)c;
	buf_printf(&b, "[%s]\n", title);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s\n", lines[i]);
	buf_puts(&b, "[end]\n");
	emit(b.data);
	buf_free(&b);
}

static void plain_history(struct client *c)
{
	struct room *r = c->room;
	struct buf b = {0};
	buf_printf(&b, "[history] %s %zu\n", r->name, r->n);
	for (size_t i = 0; i < r->n; i++)
		put_line(&b, r, i + 1, r->lines[i]);
	buf_puts(&b, "[end]\n");
	emit(b.data);
	buf_free(&b);
}

/* A password is typed next: the terminal (if stdin is one) stops echoing. */
static void plain_secret(struct client *c, int on)
{
	struct termios t;
	(void)c;
	if (!isatty(0) || tcgetattr(0, &t) < 0)
		return;
	if (on)
		t.c_lflag &= ~(tcflag_t)ECHO;
	else
		t.c_lflag |= ECHO;
	tcsetattr(0, TCSANOW, &t);
}

const struct ui ui_plain = {
	"plain", plain_start, plain_stop, plain_redraw, plain_note, plain_page, plain_history, plain_secret,
};
