/*
 * client.h: what the terminal client `chorus` is made of.
 *
 *   main.c       arguments, the libuv loop, signals, start and stop
 *   replicas.c   the replica list (cluster config file, --replica, `c` targets)
 *   conn.c       one TCP connection: resolve, connect, read lines, write lines
 *   session.c    the IRC session over it: capabilities, login, joining the
 *                room, keep-alive, and failover to another replica
 *   requests.c   labeled requests and their answers; batches
 *   outbox.c     lines sent and not yet answered: sent again after a failover
 *   conversations.c  `d`: the direct conversations and their new lines
 *   history.c    CHATHISTORY: the first lines, gap filling, refresh, `h`
 *   incoming.c   what the server sends that nobody asked for (live lines)
 *   input.c      the input queue: commands run one after another
 *   commands.c   the command table: one entry per user command
 *   room.c       the room model (pure; room.h)
 *   ui_plain.c   line mode for scripts and tests
 *   ui_curses.c  the full-screen interface
 *
 * One libuv loop runs everything. The user's commands go through one queue:
 * a command that needs an answer (connect, log in, join, send, like, ...)
 * holds the queue until the answer comes, so a script's commands run in
 * order and each one's outcome is printed before the next starts.
 */
#ifndef CHORUS_CLIENT_H
#define CHORUS_CLIENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client/room.h"
#include "common/buf.h"
#include "common/util.h"
#include "proto/caps.h"
#include "auth/scram.h"
#include "proto/irc.h"
#include "tls/tls.h"

#define WAIT_TIMEOUT_MS 15000     /* longest wait for an answer before giving up */
#define CONNECT_TIMEOUT_MS 5000   /* longest TCP connect attempt */
#define RETRY_PAUSE_MS 1000       /* pause after every replica failed, while reconnecting */
#define RENICK_PAUSE_MS 300       /* pause before asking for our name again (see session_name_in_use) */
#define RENICK_TRIES 30           /* ... for up to 9 s, while the replicas see the lost link gone */
#define KEEPALIVE_IDLE_MS 30000   /* silence before we PING the replica */
#define KEEPALIVE_DEAD_MS 60000   /* silence before we call the replica gone */
#define HISTORY_PAGE 100          /* CHATHISTORY limit per request (the server's maximum) */

/* ---- replicas.c ---- */

struct replica {
	unsigned id;       /* from the config file, or the position in the list */
	char *host;
	int port;
	int tls_port;      /* its TLS port from the config file, 0 = unknown (then
	                    * --tls speaks TLS to port) */
};

struct replica_list {
	struct replica *v;
	size_t n;
};

/* Reads cluster.replicas from a libconfig file (the one chorusd uses).
 * Returns 0, or -1 with a message in err. */
int replicas_load_config(struct replica_list *l, const char *path, char *err, size_t errlen);
/* Adds "host:port" (or "[v6]:port"). Returns its index, or -1 if malformed;
 * an address already listed is not added twice. */
long replicas_add(struct replica_list *l, const char *spec);
/* The index the argument of `c` names: a replica id, else a 1-based
 * position, else a host:port (added to the list). -1 if none. */
long replicas_pick(struct replica_list *l, const char *arg);
/* The longest "host:port" a replica names, with its NUL. */
#define REPLICA_SPEC_MAX 300
/* Reads "<after>replica <id> at <host:port>" in a replica's text (LINKS,
 * a full or stopping replica's ERROR, a majority refusal): the address
 * ends at ',', ')', a space or the end. Returns 0, or -1 if it is not
 * there. */
int replicas_named(const char *text, const char *after, unsigned *id, char where[REPLICA_SPEC_MAX]);
/* A replica a replica named (LINKS): replica id at spec "host:port". An
 * unknown address is added with that id (or, if an entry has the id by its
 * place, a free one); a known one stays as it is. Returns 1 if added, 0 if
 * known, -1 if spec is malformed. */
int replicas_learn(struct replica_list *l, unsigned id, const char *spec);
void replicas_free(struct replica_list *l);

/* ---- conn.c ---- */

struct conn;

struct conn_events {
	void (*connected)(struct conn *cn, void *arg);
	/* One line, CR LF removed, NUL-terminated and writable (for irc_parse). */
	void (*line)(struct conn *cn, char *line, size_t len, void *arg);
	/* The connection failed or ended; called once, never after conn_close. */
	void (*closed)(struct conn *cn, const char *reason, void *arg);
};

/* Starts connecting to host:port, with TLS checked as tls says (NULL: plain
 * TCP). ev->connected comes once the TLS handshake is done. Never NULL: a
 * failure (an untrusted certificate among them) is reported through
 * ev->closed from the loop. */
struct conn *conn_open(uv_loop_t *loop, const char *host, int port, struct tls_client *tls,
		       const struct conn_events *ev, void *arg);
/* Queues "line\r\n". */
void conn_send(struct conn *cn, const char *line);
/* Ends the connection; no callback runs after this. The owner calls it once
 * for every conn_open, also after ev->closed. With flush, what is queued is
 * sent first. The memory goes when libuv has closed the handles. */
void conn_close(struct conn *cn, int flush);

/* ---- the client ---- */

enum link_state {
	LINK_DOWN = 0,     /* no connection */
	LINK_CONNECTING,   /* TCP connect in progress */
	LINK_NEGOTIATING,  /* CAP LS / REQ in progress */
	LINK_READY,        /* capabilities settled: may log in */
	LINK_REGISTERED,   /* logged in (001 received) */
};

enum note_kind {
	NOTE_ERROR, /* a refusal or a failure: "! text" */
	NOTE_INFO,  /* status and information: "* text" */
	NOTE_DM,    /* a direct message: "[dm] from: text" */
};

struct client;

/* The screen. Both implementations draw from the client's state. */
struct ui {
	const char *name;
	/* Starts reading the user's input (client_input / client_input_end).
	 * Returns 0, or -1 with a message on stderr. */
	int (*start)(struct client *c);
	/* Stops reading input and gives the terminal back. */
	void (*stop)(struct client *c);
	/* Draws the room screen: header, last lines, status. */
	void (*redraw)(struct client *c);
	void (*note)(struct client *c, enum note_kind kind, const char *text);
	/* Shows a page of information (help, view, users). */
	void (*page)(struct client *c, const char *title, char *const *lines, size_t n);
	/* Shows the whole history of the current room. */
	void (*history)(struct client *c);
	/* on: the next line typed is a password: do not show it; off: back. */
	void (*secret)(struct client *c, int on);
};

extern const struct ui ui_plain;
extern const struct ui ui_curses;

struct request;
struct batch;

/* Logging in to an account (auth.c). */
enum auth_step { AUTH_IDLE, AUTH_STARTED, AUTH_FIRST_SENT, AUTH_FINAL_SENT, AUTH_ACK };
enum ask { ASK_NONE, ASK_LOGIN, ASK_REGISTER };
struct auth {
	char *password;          /* the account's, once known (file, typed, or registered) */
	char *pending;           /* a REGISTER's password until it succeeds */
	enum ask asking;         /* the next line typed is a password for this */
	enum auth_step step;     /* the SASL exchange under way */
	int user_sent;           /* USER went out already (the 433 path): NICK alone follows */
	struct scram_client scram;
};

struct client {
	uv_loop_t *loop;
	const struct ui *ui;
	void *ui_state;
	struct replica_list replicas;
	char last_dm[64];        /* msgid of the last direct message shown (a DM to
	                          * oneself comes as its echo and as received) */

	/* The link to a replica. */
	struct conn *conn;
	struct tls_client *tls;  /* --tls: how replicas' certificates are checked, or NULL */
	enum link_state link;
	long replica;            /* index in replicas of the current or last link, -1 none */
	long round_start;        /* the first replica tried in this round */
	size_t tried;            /* replicas tried in this round */
	unsigned rounds;         /* rounds that failed before this one */
	unsigned link_token;     /* the wait released when the link is back in full */
	int keep_trying;         /* after a lost link: retry until a replica answers */
	int session_wanted;      /* the user connected once: keep a link up */
	unsigned caps_acked;     /* CAP_* bits the replica accepted */
	char *ls_caps;           /* CAP LS so far (302 may span lines) */
	int64_t last_rx_ms;
	int ping_sent;
	uv_timer_t tick;         /* keep-alive, wait deadlines */
	uv_timer_t retry;        /* the pause between failover rounds */
	uv_timer_t renick;       /* the pause before asking for our name again */
	unsigned renick_tries;   /* 433s met logging in again after a lost link */
	int relogin;             /* logging in again by ourselves (after a lost link) */
	long move_to;            /* a replica (index) to move to on this loop turn: this
	                          * one refused a write for want of a majority; -1 none */
	int stay;                /* --stay: never move for that */
	long bounce;             /* a replica (index) a full one named (RPL_BOUNCE), -1 none */

	/* Who and where. */
	char *nick;              /* the name asked with `u` (NULL before) */
	struct auth auth;
	struct room *room;       /* the room on screen, NULL before `j` */
	int joined;              /* the server has us in room */
	char *pending_join;      /* a JOIN we sent and wait for */

	/* Conversations (conversations.c): the latest line of each shown, and
	 * the `d` under way. */
	struct seen_mark *seen;
	size_t nseen;
	struct listing *listing;

	/* Lines sent and not yet answered (outbox.c). */
	struct outbox_line *outbox;
	size_t noutbox;

	/* Requests and batches in flight (requests.c). */
	struct request *requests;
	unsigned next_label;
	struct batch *batches;

	/* The command queue, and the commands that run ahead of it. */
	char **queue;
	size_t nqueue, capqueue;
	char **urgent;
	size_t nurgent, capurgent;
	unsigned waiting;        /* token of the wait holding the queue, 0 = none */
	char *wait_what;         /* what we wait for, for the status line */
	int64_t wait_deadline;   /* 0: no deadline (reconnecting) */
	unsigned next_token;
	int input_done;          /* the user's input ended: quit when the queue is empty */

	int dirty;               /* the screen needs a redraw */
	int pump;                /* queued commands may run */
	uv_idle_t idle;          /* redraws and runs commands once per loop turn */
	uv_signal_t sigint, sigterm;
	int quitting;
};


/* auth.c */
/* Starts a SASL login with the known password, before NICK/USER (which
 * follow when it succeeds). Returns 1 if it did, 0 if no password is known. */
int auth_login(struct client *c);
/* The replica refused c->nick as registered (433): asks for its password. */
void auth_name_registered(struct client *c);
/* `reg`: registers c->nick with password (NULL: asks for it). */
void auth_register(struct client *c, const char *password);
/* A line the user typed while a password is asked for: takes it as the
 * password (1), or 0 if none is asked for. */
int auth_take_input(struct client *c, const char *line);
/* AUTHENTICATE, REGISTER, FAIL REGISTER and 90x lines from the replica. */
void auth_line(struct client *c, struct irc_msg *m);
void auth_free(struct client *c);

/* main.c */
void client_quit(struct client *c);
void client_note(struct client *c, enum note_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Asks for a redraw at the end of this loop turn. */
void client_dirty(struct client *c);
/* Asks for the command queue to be run at the end of this loop turn. */
void client_pump(struct client *c);
/* The status line: which replica and whether it is reachable. */
void client_status(const struct client *c, struct buf *b);

/* input.c: the user's input queue. */
void client_input(struct client *c, const char *line);
void client_input_end(struct client *c);
/* Holds the command queue until client_unwait(token); what is shown while
 * waiting. With timeout, gives up after WAIT_TIMEOUT_MS. Returns the token. */
unsigned client_wait(struct client *c, const char *what, int timeout);
/* Releases the queue if token still holds it, and runs queued commands. */
void client_unwait(struct client *c, unsigned token);
/* Runs queued commands while nothing holds the queue. */
void input_pump(struct client *c);
/* Gives up a wait past its deadline. */
void input_tick(struct client *c);
void input_free(struct client *c);

/* commands.c: the command table. */
/* Runs one command line now. */
void commands_run(struct client *c, const char *line);
/* 1 if line runs at once, ahead of the queue: `q` (`Leave`) and `c` while
 * the client is reconnecting (a wait with no end of its own). */
int commands_urgent(const struct client *c, const char *line);

/* session.c */
void session_init(struct client *c);
/* Connects to replica index i (closing any current link); token is the
 * wait released once the link is ready (and, if a name and a room were
 * set, logged in and back in the room). */
void session_connect(struct client *c, long i, unsigned token);
/* Logs in as c->nick (the link must be READY). */
void session_login(struct client *c, unsigned token);
/* Joins room (with rejoin, the current room again, keeping its lines and
 * filling the gap). */
void session_join(struct client *c, const char *room, int rejoin, unsigned token);
/* Leaves the room on screen (or the timeline, or a conversation): the
 * screen shows none after (`lv`, `exit` in the timeline); token is released
 * when it is done. */
void session_leave(struct client *c, unsigned token);
/* Shows the direct conversation with nick like a room (`d <nick>`): its
 * latest lines, then live ones, likes; the room shown before is left. */
void session_show_conversation(struct client *c, const char *nick, unsigned token);
/* Reads the room on screen again after a reconnect: a room or the timeline
 * is joined again (JOIN) and its gap filled, a conversation only read (its
 * gap after its last line). */
void session_rejoin(struct client *c, unsigned token);
/* Sends a line if the link is up. */
void session_send(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The link broke (or a replica answered with ERROR): tell, then fail over. */
void session_lost(struct client *c, const char *reason);
void session_close(struct client *c);
void session_tick(struct client *c);
/* 1 if nick is us. */
int session_is_me(const struct client *c, const char *nick);
/* Called by incoming.c on 001, and on a refused name before it. */
void session_registered(struct client *c, const char *nick);
void session_login_refused(struct client *c, const char *why);
/* A write was refused with FAIL ... MAJORITY_REQUIRED and text (which names
 * the replicas that can take it): unless --stay, moves to the first of them
 * on this loop turn (session_connect, keeping the session), where the
 * waiting lines go again. */
void session_majority_refused(struct client *c, const char *text);
/* Runs a move that session_majority_refused asked for (from the loop). */
void session_move_now(struct client *c);
/* The replica sends the client to another, at spec "host:port" (RPL_BOUNCE
 * of a full replica, or the ERROR of one shutting down), for why: the
 * client goes there when the replica closes the link. */
void session_bounced(struct client *c, const char *spec, const char *why);
/* The port c connects to on r: its TLS port with --tls when the config
 * gives one, else its port. */
int session_port(const struct client *c, const struct replica *r);
/* 433 "in use" while logging in again after a lost link: our own name,
 * still online from the lost link until the replicas see it gone. Asks
 * again after RENICK_PAUSE_MS, up to RENICK_TRIES times; returns 1 if it
 * will, 0 if the refusal stands. */
int session_name_in_use(struct client *c);
/* CAP lines during negotiation. */
void session_cap(struct client *c, struct irc_msg *m);
/* Our JOIN (switch) and our PART of a room seen from the server. */
void session_self_join(struct client *c, const char *room);
void session_self_part(struct client *c, const char *room, const char *why);

/* requests.c */
struct request {
	char label[16];
	unsigned token;          /* the wait this request belongs to (0: none) */
	/* A line of the answer; returns 1 if it handled the line (nothing else
	 * should), 0 to let incoming.c process it as usual. May be NULL. */
	int (*on_line)(struct client *c, struct request *q, struct irc_msg *m);
	/* The lines of a chathistory batch in the answer. May be NULL. */
	void (*on_history)(struct client *c, struct request *q, struct room_msg *lines, size_t n);
	/* The answer is complete (not called if the link drops first). */
	void (*on_done)(struct client *c, struct request *q);
	char *room;              /* the room asked about */
	char *ref;               /* a msgid: liked line, history anchor */
	char *next_ref;          /* history: the anchor of the next page */
	char *what;              /* a command name, or a post's text, for messages */
	char *who;               /* the user a command names (f, uf) */
	int mode;                /* a kind of history request, a like or unlike, ... */
	int page;                /* history: pages fetched before this one */
	size_t count;            /* history: lines in this page */
	size_t added;            /* history: lines new to the room, this page and before */
	int failed;              /* an error line was part of the answer */
	int replayed;            /* join: the answer carried the latest lines (&timeline) */
	int again;               /* refresh: another merge came meanwhile: read once more */
	char **lines;            /* collected lines (LINKS, USERS) */
	size_t nlines;
	struct request *next;
};

/* A request with a fresh label; the caller fills the handlers and sends
 * its command with request_send. */
struct request *request_new(struct client *c, unsigned token);
/* Sends "@label=<label>[;tags] <line>". tags may be NULL. */
void request_send(struct client *c, struct request *q, const char *tags, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void request_keep_line(struct request *q, const char *text);
/* Drops every request and batch (the link is gone). */
void requests_drop(struct client *c);
/* Handles one line from the server: batches, labels, then incoming.c. */
void requests_line(struct client *c, struct irc_msg *m);

/* 1 if m is an error: FAIL or a numeric from 400 on. */
int request_is_error(const struct irc_msg *m);

/* outbox.c */
#define OUTBOX_ID_LEN 16 /* hex digits of a line's client id */
/* Sends text to target (PRIVMSG) with a new client id and keeps it until
 * its answer; token (0: none) is the wait released when the answer is in. */
void outbox_send(struct client *c, const char *target, const char *text, unsigned token);
/* The client is back on a replica (logged in, in its room): sends every
 * waiting line again, with its id, in order. */
void outbox_resend(struct client *c);
void outbox_free(struct client *c);

/* conversations.c */
/* `d`: the list of conversations with their new lines, as a page; token is
 * released when it is shown. */
void conversations_list(struct client *c, unsigned token);
/* A line of the conversation with peer, of time ms, was shown. */
void conversations_seen(struct client *c, const char *peer, int64_t ms);
void conversations_free(struct client *c);

/* history.c */
enum history_mode {
	HISTORY_FIRST,    /* LATEST * 25: the lines on joining */
	HISTORY_REFRESH,  /* LATEST * 100: after a merge batch */
	HISTORY_GAP,      /* AFTER msgid=<last>: after a reconnect */
	HISTORY_FULL,     /* LATEST then BEFORE until empty: `h` */
};
/* Asks for history of the current room (anchor: a msgid for GAP and for
 * the later pages of FULL); token is the wait released when it is all in.
 * Returns the request, or NULL without a room. */
struct request *history_fetch(struct client *c, enum history_mode mode, const char *anchor,
			      unsigned token);
/* A chathistory or netjoin batch nobody asked for ended: lines may have
 * been merged in earlier; fetch and redraw. */
void history_merged(struct client *c, const char *target);
/* The timeline on screen changed as a whole (we unfollowed someone): drop
 * its posts and read the latest again. */
void history_reload(struct client *c);

/* incoming.c */
void incoming_line(struct client *c, struct irc_msg *m);
/* Reads a PRIVMSG/NOTICE (to a room or a person) into m (pointers into
 * msg, the author into nick[len]). Returns 0, or -1 if it is not such a line
 * with a msgid. */
int incoming_room_msg(struct irc_msg *msg, struct room_msg *m, char *nick, size_t len);
/* 1 if target names a room ('#' or '&'). */
int is_room_name(const char *target);
/* Trailing text of m (its last parameter), "" if none. */
const char *msg_text(const struct irc_msg *m);
/* The nick in a "nick!user@host" source. Writes into buf. */
const char *source_nick(const struct irc_msg *m, char *buf, size_t len);

#endif
