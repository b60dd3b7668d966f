/*
 * main.c: the terminal client `chorus`: reads its arguments (the replica
 * list from a cluster config file or --replica flags; line mode or full
 * screen), runs everything on one libuv loop, and quits cleanly on `q`,
 * end of input, SIGINT or SIGTERM.
 */
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: chorus [--config FILE] [--replica HOST:PORT]... [-u NAME] [--plain]\n"
		"              [--tls [--tls-ca FILE | --tls-fingerprint SHA256 | --insecure]]\n"
		"  --config FILE         take the replicas from FILE's cluster.replicas (as chorusd)\n"
		"  --replica HOST:PORT   add a replica (repeat; `c i` picks the i-th)\n"
		"  --tls                 speak TLS: to each replica's tls_port from --config, else\n"
		"                        to the port given; the certificate must be trusted by\n"
		"                        the system's CAs and name the host\n"
		"  --tls-ca FILE         trust the CA certificates in FILE instead (e.g. the\n"
		"                        self-signed run/tls/cert.pem of `make run`)\n"
		"  --tls-fingerprint FP  trust only the certificate with this SHA-256 fingerprint\n"
		"  --insecure            speak TLS without checking the certificate\n"
		"  -u, --user NAME       at start, connect to the first replica and log in as\n"
		"                        NAME (as `c` and `u NAME` would)\n"
		"  --stay                stay on a replica that refuses writes for want of a\n"
		"                        majority (by default the client moves to one it names)\n"
		"  --password-file FILE  the password of the account `u <name>` logs in to\n"
		"                        (its first line); otherwise it is asked for\n"
		"  --plain               line mode even on a terminal (the default when stdin\n"
		"                        or stdout is not a terminal); see docs/CLIENT.md\n"
		"  --help, --version\n"
		"Then type `help` for the commands.\n");
}

/* Reads the first line of path as the account password. Returns 0, or -1
 * (printed). */
static int read_password(struct client *c, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");
	if (!f || !fgets(line, sizeof line, f)) {
		fprintf(stderr, "chorus: cannot read a password from %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	free(c->auth.password);
	c->auth.password = xstrdup(line);
	memset(line, 0, sizeof line);
	return 0;
}

/* Fills c->replicas, c->tls, *plain and *user (-u, or NULL) from argv.
 * Returns 0 to run, 1 to exit 0 (--help, --version), -1 on an error
 * (printed). */
static int parse_args(struct client *c, int argc, char **argv, int *plain, const char **user)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'C'},
		{"replica", required_argument, NULL, 'r'},
		{"plain", no_argument, NULL, 'p'},
		{"tls", no_argument, NULL, 't'},
		{"tls-ca", required_argument, NULL, 'A'},
		{"tls-fingerprint", required_argument, NULL, 'F'},
		{"insecure", no_argument, NULL, 'I'},
		{"password-file", required_argument, NULL, 'P'},
		{"user", required_argument, NULL, 'u'},
		{"stay", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	char err[512];
	const char *ca = NULL, *fingerprint = NULL;
	int o, tls = 0, insecure = 0;
	while ((o = getopt_long(argc, argv, "C:r:u:phV", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			*user = optarg;
			break;
		case 's':
			c->stay = 1;
			break;
		case 't':
			tls = 1;
			break;
		case 'A':
			ca = optarg;
			tls = 1;
			break;
		case 'F':
			fingerprint = optarg;
			tls = 1;
			break;
		case 'I':
			insecure = tls = 1;
			break;
		case 'P':
			if (read_password(c, optarg) < 0)
				return -1;
			break;
		case 'C':
			if (replicas_load_config(&c->replicas, optarg, err, sizeof err) < 0) {
				fprintf(stderr, "chorus: %s\n", err);
				return -1;
			}
			break;
		case 'r':
			if (replicas_add(&c->replicas, optarg) < 0) {
				fprintf(stderr, "chorus: --replica %s: expected HOST:PORT\n", optarg);
				return -1;
			}
			break;
		case 'p':
			*plain = 1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("chorus %s\n", CHORUS_VERSION);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	if (tls && (ca != NULL) + (fingerprint != NULL) + insecure > 1) {
		fprintf(stderr, "chorus: give one of --tls-ca, --tls-fingerprint and --insecure\n");
		return -1;
	}
	if (tls && !(c->tls = tls_client_new(ca, fingerprint, insecure)))
		return -1;
	if (*user && !c->replicas.n) {
		fprintf(stderr, "chorus: -u %s: no replica to log in to (give --config or --replica)\n", *user);
		return -1;
	}
	return 0;
}

void client_note(struct client *c, enum note_kind kind, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	c->ui->note(c, kind, b.data);
	buf_free(&b);
}

static void on_idle(uv_idle_t *h)
{
	struct client *c = h->data;
	uv_idle_stop(h);
	if (c->quitting)
		return;
	if (c->dirty) {
		c->dirty = 0;
		c->ui->redraw(c); /* first: a queued `l n` means the line n just drawn */
	}
	if (c->move_to >= 0) /* before the next command: it goes to the new replica */
		session_move_now(c);
	if (c->pump) {
		c->pump = 0;
		input_pump(c);
	}
}

void client_dirty(struct client *c)
{
	c->dirty = 1;
	if (!c->quitting)
		uv_idle_start(&c->idle, on_idle);
}

void client_pump(struct client *c)
{
	c->pump = 1;
	if (!c->quitting)
		uv_idle_start(&c->idle, on_idle);
}

void client_status(const struct client *c, struct buf *b)
{
	const struct replica *r =
		c->replica >= 0 && (size_t)c->replica < c->replicas.n ? &c->replicas.v[c->replica] : NULL;
	if (!r) {
		buf_puts(b, "not connected: c <i|host:port> to connect");
	} else {
		buf_printf(b, "replica %u (%s:%d) ", r->id, r->host, session_port(c, r));
		switch (c->link) {
		case LINK_DOWN:
			buf_puts(b, c->keep_trying ? "unreachable: reconnecting" : "not connected");
			break;
		case LINK_CONNECTING:
			buf_puts(b, "connecting");
			break;
		case LINK_NEGOTIATING:
			buf_puts(b, "reachable: negotiating");
			break;
		case LINK_READY:
			buf_puts(b, "connected: not logged in");
			break;
		case LINK_REGISTERED:
			buf_printf(b, "connected as %s", c->nick);
			break;
		}
	}
	if (c->noutbox)
		buf_printf(b, ", %zu line(s) waiting for the replica", c->noutbox);
}

static void on_tick(uv_timer_t *t)
{
	struct client *c = t->data;
	session_tick(c);
	input_tick(c);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	client_quit(s->data);
}

void client_quit(struct client *c)
{
	if (c->quitting)
		return;
	c->quitting = 1;
	session_close(c);
	c->ui->stop(c);
	uv_close((uv_handle_t *)&c->tick, NULL);
	uv_close((uv_handle_t *)&c->idle, NULL);
	uv_close((uv_handle_t *)&c->sigint, NULL);
	uv_close((uv_handle_t *)&c->sigterm, NULL);
}

static void client_free(struct client *c)
{
	room_free(c->room);
	replicas_free(&c->replicas);
	tls_client_free(c->tls);
	auth_free(c);
	input_free(c);
	outbox_free(c);
	conversations_free(c);
	free(c->nick);
	free(c->ls_caps);
	free(c->pending_join);
}

/* Starts the loop's handles: tick, idle, signals. */
static void client_start(struct client *c)
{
	session_init(c);
	uv_timer_init(c->loop, &c->tick);
	c->tick.data = c;
	uv_timer_start(&c->tick, on_tick, 1000, 1000);
	uv_idle_init(c->loop, &c->idle);
	c->idle.data = c;
	uv_signal_init(c->loop, &c->sigint);
	uv_signal_init(c->loop, &c->sigterm);
	c->sigint.data = c->sigterm.data = c;
	uv_signal_start(&c->sigint, on_signal, SIGINT);
	uv_signal_start(&c->sigterm, on_signal, SIGTERM);
}

int main(int argc, char **argv)
{
	struct client c = {0};
	uv_loop_t loop;
	int plain = 0;
	const char *user = NULL;

	setlocale(LC_ALL, "");
	signal(SIGPIPE, SIG_IGN);
	int rc = parse_args(&c, argc, argv, &plain, &user);
	if (rc != 0) {
		client_free(&c);
		return rc < 0 ? 2 : 0;
	}
	c.ui = plain || !isatty(0) || !isatty(1) ? &ui_plain : &ui_curses;
	uv_loop_init(&loop);
	c.loop = &loop;
	client_start(&c);
	if (c.ui->start(&c) < 0) {
		client_quit(&c);
		rc = 1;
	} else {
		client_note(&c, NOTE_INFO, "chorus %s: %zu replica%s known; c <i|host:port> to connect, help for commands",
			    CHORUS_VERSION, c.replicas.n, c.replicas.n == 1 ? "" : "s");
		client_dirty(&c);
		if (user) { /* -u: as if the user typed them first */
			char *connect = xasprintf("c %u", c.replicas.v[0].id), *login = xasprintf("u %s", user);
			client_input(&c, connect);
			client_input(&c, login);
			free(connect);
			free(login);
		}
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		fprintf(stderr, "chorus: the loop still had handles at exit\n");
	client_free(&c);
	return rc;
}
