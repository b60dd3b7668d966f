/*
 * ui_curses.c: the full-screen interface (ncursesw). From the top:
 *
 *   #lobby | alice bob carol                     header: room, participants
 *   1. bob: hello                                the last 25 lines, numbered,
 *   2. alice: hi  Likes: 1                       wrapped to the width
 *   ...
 *   ! you cannot like your own line              the last NOTES_SHOWN notes
 *   replica 1 (127.0.0.1:6667) connected as alice   status line
 *   > a hello_                                   the command being typed
 *
 * In the timeline the lines are its posts, `bob (14:05) >> text`.
 * Pages (help, view, the whole history) take the place of the lines until
 * Esc or the next command; PgUp/PgDn and the arrows scroll them. Keys come
 * from stdin through a uv_poll handle on the loop; SIGWINCH resizes.
 */
#include <curses.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include "client/client.h"

#define NOTES_SHOWN 4
#define INPUT_MAX 2048

enum { PAIR_ERROR = 1, PAIR_DM, PAIR_INFO };

struct note {
	char *text;
	enum note_kind kind;
};

struct screen {
	uv_poll_t poll;
	uv_signal_t winch;
	int stdin_flags;           /* to give back: uv_poll makes stdin non-blocking */
	int closing_handles;       /* after stop: handles still closing; the last frees this */
	wchar_t input[INPUT_MAX + 1];
	int secret;              /* a password is being typed: show '*' */
	size_t len, cursor;
	struct note notes[NOTES_SHOWN]; /* oldest first */
	size_t nnotes;
	char **page;               /* a page on screen, or NULL */
	size_t npage, page_top;
	char *page_title;
};

/* ---- text ---- */

/* A wide copy of UTF-8 s for drawing: bytes that are not UTF-8, control
 * characters and characters without a width are shown as '?'. */
static wchar_t *widen(const char *s)
{
	size_t n = strlen(s), k = 0;
	wchar_t *w = xcalloc(n + 1, sizeof *w);
	mbstate_t st;
	memset(&st, 0, sizeof st);
	for (const char *p = s; *p;) {
		wchar_t wc;
		size_t r = mbrtowc(&wc, p, (size_t)(s + n - p), &st);
		if (r == (size_t)-1 || r == (size_t)-2 || r == 0) {
			wc = L'?';
			r = 1;
			memset(&st, 0, sizeof st);
		}
		if (wcwidth(wc) < 0)
			wc = L'?';
		w[k++] = wc;
		p += r;
	}
	return w;
}

/* Rows w takes when wrapped at cols columns (at least 1). */
static int rows_of(const wchar_t *w, int cols)
{
	int rows = 1, col = 0;
	for (; *w; w++) {
		int cw = wcwidth(*w);
		if (col + cw > cols) {
			rows++;
			col = 0;
		}
		col += cw;
	}
	return rows;
}

/* Draws w wrapped at cols from screen row y, leaving out its first skip
 * rows and drawing at most max rows. */
static void put_rows(int y, const wchar_t *w, int cols, int skip, int max)
{
	int row = 0, col = 0;
	for (; *w && row < skip + max; w++) {
		int cw = wcwidth(*w);
		if (col + cw > cols) {
			row++;
			col = 0;
			if (row >= skip + max)
				break;
		}
		if (row >= skip)
			mvaddnwstr(y + row - skip, col, w, 1);
		col += cw;
	}
}

/* Draws s on row y, cut to the width, with attr over the whole row. */
static void put_bar(int y, const char *s, int attr)
{
	wchar_t *w = widen(s);
	int col = 0;
	attron(attr);
	mvhline(y, 0, ' ', COLS);
	for (size_t i = 0; w[i]; i++) {
		int cw = wcwidth(w[i]);
		if (col + cw > COLS)
			break;
		mvaddnwstr(y, col, &w[i], 1);
		col += cw;
	}
	attroff(attr);
	free(w);
}

/* ---- drawing ---- */

static void draw_header(struct client *c, struct screen *s)
{
	struct buf b = {0};
	if (s->page)
		buf_printf(&b, " %s  (Esc closes; PgUp/PgDn scroll; line %zu of %zu)", s->page_title,
			   s->npage ? s->page_top + 1 : 0, s->npage);
	else if (c->room && c->room->timeline)
		buf_printf(&b, " %s | posts of the users you follow: type a line to post, j <room> to leave",
			   c->room->name);
	else if (c->room) {
		buf_printf(&b, " %s | %zu here:", c->room->name, c->room->npeople);
		for (size_t i = 0; i < c->room->npeople; i++)
			buf_printf(&b, " %s", c->room->people[i]);
	} else
		buf_puts(&b, " chorus: no room yet (j <room>)");
	put_bar(0, b.data, A_REVERSE | A_BOLD);
	buf_free(&b);
}

/* Line n of r as drawn: a post in the timeline, else numbered with its
 * likes. Allocated: the caller frees it. */
static char *line_text(const struct room *r, size_t n, const struct room_line *l)
{
	struct buf b = {0};
	if (r->timeline) {
		room_post_format(&b, l);
	} else {
		room_line_format(&b, n, l);
		if (l->likes > 0)
			buf_printf(&b, "  Likes: %d", l->likes);
	}
	return b.data; /* both formats write something */
}

/* The window's lines, newest at the bottom of rows top..top+rows-1. */
static void draw_room(struct client *c, int top, int rows)
{
	struct room *r = c->room;
	size_t first, n;
	if (!r)
		return;
	n = room_show(r, &first);
	wchar_t **w = xcalloc(n + 1, sizeof *w);
	for (size_t i = 0; i < n; i++) {
		char *text = line_text(r, i + 1, r->lines[first + i]);
		w[i] = widen(text);
		free(text);
	}
	int y = top + rows;
	for (size_t i = n; i-- > 0 && y > top;) {
		int h = rows_of(w[i], COLS);
		int skip = y - h < top ? top - (y - h) : 0;
		y -= h;
		put_rows(y + skip, w[i], COLS, skip, h - skip);
	}
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

static void draw_page(struct screen *s, int top, int rows)
{
	int y = top;
	for (size_t i = s->page_top; i < s->npage && y < top + rows; i++) {
		wchar_t *w = widen(s->page[i]);
		int h = rows_of(w, COLS);
		put_rows(y, w, COLS, 0, top + rows - y);
		y += h;
		free(w);
	}
}

static void draw_notes(struct screen *s, int top)
{
	static const char *prefix[] = {"! ", "* ", "[dm] "};
	static const int pair[] = {PAIR_ERROR, PAIR_INFO, PAIR_DM};
	for (size_t i = 0; i < s->nnotes; i++) {
		struct buf b = {0};
		buf_printf(&b, "%s%s", prefix[s->notes[i].kind], s->notes[i].text);
		put_bar(top + (int)i, b.data, has_colors() ? COLOR_PAIR(pair[s->notes[i].kind]) : A_NORMAL);
		buf_free(&b);
	}
}

/* The input row, scrolled so that the cursor shows; leaves the cursor there. */
static void draw_input(struct screen *s, int y)
{
	int width = 0, start = 0, avail = COLS - 3;
	for (size_t i = 0; i < s->cursor; i++)
		width += s->secret ? 1 : wcwidth(s->input[i]);
	while (width > avail && start < (int)s->cursor)
		width -= s->secret ? 1 : wcwidth(s->input[start++]);
	mvaddstr(y, 0, "> ");
	int col = 2, cursor_col = 2;
	for (size_t i = (size_t)start; i < s->len; i++) {
		int cw = s->secret ? 1 : wcwidth(s->input[i]);
		if (i == s->cursor)
			cursor_col = col;
		if (col + cw > COLS)
			break;
		if (s->secret)
			mvaddch(y, col, '*');
		else
			mvaddnwstr(y, col, &s->input[i], 1);
		col += cw;
	}
	if (s->cursor == s->len)
		cursor_col = col;
	move(y, cursor_col < COLS ? cursor_col : COLS - 1);
}

static void draw(struct client *c)
{
	struct screen *s = c->ui_state;
	struct buf status = {0};
	if (!s)
		return;
	erase();
	if (LINES < NOTES_SHOWN + 5 || COLS < 20) {
		mvaddstr(0, 0, "chorus: the terminal is too small");
		refresh();
		return;
	}
	int body_rows = LINES - 3 - NOTES_SHOWN;
	draw_header(c, s);
	if (s->page)
		draw_page(s, 1, body_rows);
	else
		draw_room(c, 1, body_rows);
	draw_notes(s, 1 + body_rows);
	buf_putc(&status, ' ');
	client_status(c, &status);
	if (c->waiting)
		buf_printf(&status, " | waiting: %s", c->wait_what);
	put_bar(LINES - 2, status.data, A_REVERSE);
	buf_free(&status);
	draw_input(s, LINES - 1);
	refresh();
}

/* ---- pages ---- */

static void page_close(struct screen *s)
{
	for (size_t i = 0; i < s->npage; i++)
		free(s->page[i]);
	free(s->page);
	free(s->page_title);
	s->page = NULL;
	s->npage = s->page_top = 0;
	s->page_title = NULL;
}

static void page_open(struct screen *s, const char *title, char **lines, size_t n)
{
	page_close(s);
	s->page = lines;
	s->npage = n;
	s->page_title = xstrdup(title);
}

static void page_scroll(struct screen *s, long by)
{
	long top = (long)s->page_top + by, max = (long)s->npage - 1;
	s->page_top = (size_t)(top < 0 ? 0 : top > max ? (max < 0 ? 0 : max) : top);
}

/* ---- input ---- */

static void submit(struct client *c, struct screen *s)
{
	size_t cap = s->len * MB_CUR_MAX + 1;
	char *line = xmalloc(cap);
	s->input[s->len] = L'\0';
	size_t n = wcstombs(line, s->input, cap);
	if (n == (size_t)-1)
		line[0] = '\0';
	s->len = s->cursor = 0;
	page_close(s);
	client_input(c, line);
	free(line);
}

static void edit(struct screen *s, wint_t ch)
{
	if (ch < 0x20 || s->len >= INPUT_MAX || wcwidth((wchar_t)ch) < 0)
		return;
	memmove(&s->input[s->cursor + 1], &s->input[s->cursor], (s->len - s->cursor) * sizeof(wchar_t));
	s->input[s->cursor++] = (wchar_t)ch;
	s->len++;
}

static void backspace(struct screen *s)
{
	if (!s->cursor)
		return;
	memmove(&s->input[s->cursor - 1], &s->input[s->cursor], (s->len - s->cursor) * sizeof(wchar_t));
	s->cursor--;
	s->len--;
}

/* A function key (KEY_*). */
static void key(struct client *c, struct screen *s, wint_t k)
{
	int page_rows = LINES - 3 - NOTES_SHOWN;
	switch (k) {
	case KEY_ENTER: submit(c, s); break;
	case KEY_BACKSPACE: backspace(s); break;
	case KEY_LEFT: if (s->cursor) s->cursor--; break;
	case KEY_RIGHT: if (s->cursor < s->len) s->cursor++; break;
	case KEY_HOME: s->cursor = 0; break;
	case KEY_END: s->cursor = s->len; break;
	case KEY_PPAGE: page_scroll(s, -page_rows); break;
	case KEY_NPAGE: page_scroll(s, page_rows); break;
	case KEY_UP: page_scroll(s, -1); break;
	case KEY_DOWN: page_scroll(s, 1); break;
	default: break;
	}
}

/* A character (control keys edit). */
static void character(struct client *c, struct screen *s, wint_t ch)
{
	switch (ch) {
	case '\n': case '\r': submit(c, s); break;
	case 127: case 8: backspace(s); break;
	case 21: s->len = s->cursor = 0; break;  /* ^U */
	case 1: s->cursor = 0; break;            /* ^A */
	case 5: s->cursor = s->len; break;       /* ^E */
	case 12: clearok(curscr, TRUE); break;   /* ^L */
	case 27: page_close(s); break;           /* Esc */
	default: edit(s, ch); break;
	}
}

static void on_keys(uv_poll_t *p, int status, int events)
{
	struct client *c = p->data;
	wint_t ch;
	int r;
	(void)status;
	(void)events;
	while (c->ui_state && (r = get_wch(&ch)) != ERR) {
		struct screen *s = c->ui_state;
		if (r == KEY_CODE_YES)
			key(c, s, ch);
		else
			character(c, s, ch);
	}
	draw(c);
}

static void on_winch(uv_signal_t *h, int signum)
{
	struct client *c = h->data;
	struct winsize ws;
	(void)signum;
	if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
		resize_term(ws.ws_row, ws.ws_col);
	draw(c);
}

/* ---- the interface ---- */

static int curses_start(struct client *c)
{
	struct screen *s = xcalloc(1, sizeof *s);
	if (!initscr()) {
		free(s);
		return -1;
	}
	c->ui_state = s;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(PAIR_ERROR, COLOR_RED, -1);
		init_pair(PAIR_DM, COLOR_CYAN, -1);
		init_pair(PAIR_INFO, COLOR_GREEN, -1);
	}
	s->stdin_flags = fcntl(0, F_GETFL);
	uv_poll_init(c->loop, &s->poll, 0);
	s->poll.data = c;
	uv_poll_start(&s->poll, UV_READABLE, on_keys);
	uv_signal_init(c->loop, &s->winch);
	s->winch.data = c;
	uv_signal_start(&s->winch, on_winch, SIGWINCH);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct screen *s = h->data;
	if (--s->closing_handles == 0)
		free(s);
}

static void curses_stop(struct client *c)
{
	struct screen *s = c->ui_state;
	if (!s)
		return;
	c->ui_state = NULL;
	endwin();
	if (s->stdin_flags >= 0)
		fcntl(0, F_SETFL, s->stdin_flags);
	page_close(s);
	for (size_t i = 0; i < s->nnotes; i++)
		free(s->notes[i].text);
	s->poll.data = s->winch.data = s;
	s->closing_handles = 2;
	uv_close((uv_handle_t *)&s->poll, on_closed);
	uv_close((uv_handle_t *)&s->winch, on_closed);
}

static void curses_redraw(struct client *c)
{
	draw(c);
}

static void curses_note(struct client *c, enum note_kind kind, const char *text)
{
	struct screen *s = c->ui_state;
	if (!s)
		return;
	if (s->nnotes == NOTES_SHOWN) {
		free(s->notes[0].text);
		memmove(s->notes, s->notes + 1, (NOTES_SHOWN - 1) * sizeof *s->notes);
		s->nnotes--;
	}
	s->notes[s->nnotes].text = xstrdup(text);
	s->notes[s->nnotes++].kind = kind;
	draw(c);
}

static void curses_page(struct client *c, const char *title, char *const *lines, size_t n)
{
	struct screen *s = c->ui_state;
	if (!s)
		return;
	char **copy = xcalloc(n + 1, sizeof *copy);
	for (size_t i = 0; i < n; i++)
		copy[i] = xstrdup(lines[i]);
	page_open(s, title, copy, n);
	draw(c);
}

static void curses_history(struct client *c)
{
	struct screen *s = c->ui_state;
	struct room *r = c->room;
	if (!s || !r)
		return;
	char **lines = xcalloc(r->n + 1, sizeof *lines);
	for (size_t i = 0; i < r->n; i++)
		lines[i] = line_text(r, i + 1, r->lines[i]);
	char *title = xasprintf("history of %s: %zu lines", r->name, r->n);
	page_open(s, title, lines, r->n);
	free(title);
	/* Start at the end: the newest lines, as on the room screen. */
	page_scroll(s, (long)r->n - (LINES - 3 - NOTES_SHOWN));
	draw(c);
}

/* A password is typed next: the input row shows '*' for each character. */
static void curses_secret(struct client *c, int on)
{
	struct screen *s = c->ui_state;
	s->secret = on;
	client_dirty(c);
}

const struct ui ui_curses = {
	"curses", curses_start, curses_stop, curses_redraw, curses_note, curses_page, curses_history,
	curses_secret,
};
