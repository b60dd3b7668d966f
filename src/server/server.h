/*
 * server.h: what a chorus replica (chorusd) is made of.
 *
 *   config.c     configuration file (libconfig) and command-line flags
 *   main.c       start-up and shutdown
 *   replica.c    the operation pipeline: session -> op -> group multicast ->
 *                delivery (lts) -> durable write -> chat_apply -> fan-out
 *   fanout.c     what each change shows the connected clients
 *   session.c    one client connection: reading, writing, limits, closing
 *   presence.c   who is online and in which room (soft state, not stored)
 *   reply.c      formatting lines: tags per capability, numerics, labels, batches
 *   cmd.c        the command table and dispatch; cmd_*.c the commands
 *
 * Everything runs on one libuv loop; only the store's writes run on the
 * storage thread (store_writer).
 */
#ifndef CHORUS_SERVER_H
#define CHORUS_SERVER_H

#include <stdarg.h>
#include <stdint.h>
#include <uv.h>

#include <utarray.h>
#include <uthash.h>

#include "chat/chat.h"
#include "common/buf.h"
#include "common/bucket.h"
#include "common/utf8.h"
#include "common/util.h"
#include "group/group.h"
#include "link/link.h"
#include "proto/caps.h"
#include "proto/irc.h"
#include "repl/repl.h"
#include "store/store.h"
#include "store/store_writer.h"
#include "tls/tls.h"

#define SERVER_NAME_MAX 64
#define ROOM_MAX 50
#define REPLAY_ON_JOIN 25    /* lines replayed on JOIN to clients without chathistory */
#define CHATHISTORY_MAX 100  /* largest CHATHISTORY limit (ISUPPORT CHATHISTORY) */
#define CLUSTER_MAX 32

/* ---- configuration (config.c) ---- */

struct replica_addr {
	uint32_t id;
	char host[64];
	int port;
	int link_port;              /* its catch-up link port (src/link), 0 = none */
	char name[SERVER_NAME_MAX]; /* its server name, or "" for r<id>.chorus */
};

struct config {
	uint32_t id;             /* this replica's id, 1..255 */
	char *listen;            /* client listener address */
	int port;                /* client listener port */
	char *data_dir;
	char *password;          /* server password (PASS), NULL = none */
	char *tls_cert;          /* PEM certificate (chain) for the TLS listener, NULL = none */
	char *tls_key;           /* its private key */
	int tls_port;            /* TLS listener port; default 6697 when a certificate is set */
	int sts_duration;        /* seconds clients keep to TLS (IRCv3 sts); 0 = not advertised */
	char *motd;              /* message of the day text, NULL = none */
	char *server_name;       /* this replica's server name, or NULL (see server_name_of) */
	enum store_sync sync;
	int64_t store_max_bytes; /* 0 = no limit (tests use it to fill the "disk") */
	int index_lag;           /* store_sqlite_options.index_lag; 0 = its default */
	size_t history_cache;    /* chat_set_cache's budget (--history-cache) */
	int snapshot_every;      /* repl_io.snapshot_every; 0 = its default */
	int max_clients;
	size_t sendq_max;        /* bytes queued to one client before it is dropped */
	size_t recvq_max;        /* unprocessed bytes held from one client */
	double flood_rate;       /* lines per second a client may send, sustained */
	double flood_burst;      /* lines it may send at once */
	int ping_interval;       /* seconds idle before we PING */
	int ping_timeout;        /* seconds to answer before we drop */
	int per_address;         /* connections from one address (IPv6: one /64); 0 = no limit */
	char *exempt;            /* addresses the per-address limit skips, comma-separated */
	char *user;              /* started as root: the user to run as, or NULL */
	int register_timeout;    /* seconds a connection may take to register */
	int rooms_per_user;      /* rooms one user may be in at once (405 past it) */
	int members_per_room;    /* users one room may hold (471 past it) */
	int new_names;           /* new rooms and nicks a connection may make known per
	                          * minute (its address: 3 times as many); 0 = no limit */
	char *oper_name;         /* OPER <name> <password> allows the operator verbs; */
	char *oper_verifier;     /* the password's SCRAM verifier (chorusd --make-verifier) */
	int log_level;
	enum repl_mode mode;     /* available (default) or majority */
	enum identity { IDENTITY_ACCOUNTS = 0, IDENTITY_OPEN = 1 } identity;
	                         /* accounts (default): registered names are
	                          * protected by a password; open: a name is a
	                          * person, no passwords (docs/CONFIG.md) */
	enum { GROUP_SOLO = 0, GROUP_COROSYNC = 1 } group;
	char *group_name;        /* the Corosync CPG group (default "chorus") */
	char *link_key;          /* the catch-up links' key file, NULL = no links */
	char *metrics;           /* ADDR:PORT of the metrics endpoint, NULL = none */
	size_t nreplicas;        /* the cluster: replicas clients may be sent to */
	struct replica_addr replicas[CLUSTER_MAX];
};

/* Fills cfg from defaults, then the file named by --config (if any), then the
 * other flags. Returns 0; 1 if the program should exit 0 now (--help,
 * --version); -1 on an error (already printed). */
int config_load(struct config *cfg, int argc, char **argv);
/* SIGHUP: reads the file and flags again (argc, argv as config_load had)
 * and takes what may change while running: the limits, MOTD, server
 * password, operator, TLS file names and the replica list; what only a
 * restart changes is kept (and a warning logged if it differs). Returns 0,
 * or -1 (logged) with cfg as it was. */
int config_reload(struct config *cfg, int argc, char **argv);
void config_free(struct config *cfg);

/* ---- sessions (session.c) ---- */

struct user;
struct batch_set;
struct sasl;

/* Lines sent to the session while a labeled command runs are held here and
 * sent at the end as one labeled line, a labeled-response batch, or ACK. */
struct capture {
	const char *label;
	struct buf lines;   /* formatted lines, each ending in CR LF */
	int count;
	int deferred;       /* the answer comes later (after storage): no ACK now */
};

struct session {
	uint64_t id;
	UT_hash_handle hh;       /* server.sessions, by id */
	struct server *srv;
	union {                  /* a TCP client, or the control socket's */
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_stream_t stream;
		uv_handle_t handle;
	} conn;
	int control;             /* on the control socket: a local operator's tool */
	int oper;                /* OPER succeeded: the operator verbs are allowed */
	char umodes[8];          /* user modes the client set (i, w), in order */
	char host[64];           /* peer address */
	char addr_key[64];       /* what the per-address limit counts: host, or its /64 */
	uint64_t connected_ms;   /* when it connected (the registration timeout) */
	struct bucket names;     /* new-name allowance (config new_names per minute) */
	struct irc_reader reader;
	unsigned caps;           /* enum irc_cap bits */
	int cap_negotiating;     /* CAP LS/REQ seen, CAP END not yet */
	int registered;
	int pass_ok;
	char *nick;              /* as the client spelled it; NULL before NICK */
	char *account;           /* the registration (OP_REGISTER msgid) s is
	                          * logged in to, NULL = none; its nick is then
	                          * the account's name */
	struct sasl *sasl;       /* an AUTHENTICATE exchange under way, or NULL */
	struct tls_conn *tls;    /* TLS state (a connection to the TLS listener), or NULL */
	char *username;
	char *realname;
	struct user *user;       /* presence, once registered */
	struct session *next_of_user; /* the user's other sessions */
	struct bucket flood;     /* flood control: lines it may send (1 per line, or cost) */
	int throttled;           /* in server.throttled: lines wait for tokens */
	struct session *next_throttled;
	uint64_t last_seen_ms;   /* last line received */
	uint64_t last_spoke_ms;  /* its last PRIVMSG or NOTICE (or connection): WHOIS idle */
	int ping_sent;
	size_t sendq;            /* bytes handed to libuv not yet written */
	struct buf out;          /* output queued this loop turn (freed when written) */
	int dirty;               /* in server.dirty: out is to be written */
	struct session *next_dirty;
	int closing;
	struct session *next_closing;
	char *close_reason;
	unsigned batch_seq;      /* for batch ids */
	struct capture *capture; /* non-NULL while a labeled command runs */
	unsigned writes;         /* its operations not yet answered (stored or failed) */
	struct monitored *monitored; /* the nicks it MONITORs (monitor.c) */
	struct buf held;         /* PONGs held until writes is 0: a PING answers
	                          * after what the commands before it did */
	int waiting;             /* a command waits for the store (a history read):
	                          * the lines after it wait (store_wait_end) */
};

/* Starts listening (and on the TLS port when srv->tls is set); returns 0 or
 * a negative libuv error. */
int session_listen(struct server *srv);
/* Queues a formatted line (which must end in CR LF) for s, honouring the
 * capture of a labeled command. A client whose queue passes sendq_max is
 * closed ("SendQ exceeded"). */
void session_send_raw(struct session *s, const char *line, size_t len);
/* Marks s to close with reason (sent as ERROR); the close happens where the
 * loop is safe, never in the middle of a call chain. Idempotent. */
void session_close(struct session *s, const char *reason);
/* Closes every session and the listener (shutdown). */
void session_close_all(struct server *srv);
/* Whether s may make one more name known to the cluster (a new room or
 * nick: a permanent operation): 1, taking it from the allowances of s and of
 * its address (new_names per minute; 3 times that per address, unless
 * exempt); 0 if either is spent. */
int session_may_create(struct session *s);
/* Takes n more flood tokens from s (a costly command): its next lines wait
 * until the bucket refills. */
void session_charge(struct session *s, int n);
/* A command of a session waiting for the store (a history read, a message
 * lookup): embedded first in what the command keeps for the answer. */
struct store_wait {
	struct server *srv;
	uint64_t session_id;
	char *label;            /* the command's label, or NULL */
};
/* Makes s wait (its next lines are not read) for a store answer to the
 * command it runs, and fills w for it. */
void store_wait_begin(struct session *s, struct store_wait *w);
/* The answer came: the session, with its answer captured under the
 * command's label (until store_wait_end), or NULL if it has gone. */
struct session *store_wait_answer(struct store_wait *w, struct capture *cap);
/* The answer is sent: ends the capture, and s's next lines go on. */
void store_wait_end(struct session *s, struct capture *cap);
/* Frees what w holds (not w), answered or not. */
void store_wait_free(struct store_wait *w);
/* One of s's operations was answered: at the last, the PONGs held for it go. */
void session_write_done(struct session *s);
/* 1 while a long answer (LIST, WHO, USERS) may go on to s: what is queued
 * for it, and held for its labeled answer, is under half its sendq. A long
 * answer that stops ends with reply_truncated. */
int session_has_room(const struct session *s);
/* A new batch id for s ("1", "2", ...) into buf (at least 16 bytes). */
void session_batch_id(struct session *s, char *buf, size_t len);
struct session *session_find(struct server *srv, uint64_t id);

/* ---- presence (presence.c, presence_sync.c): soft state, never stored ---- */

struct membership {
	struct user *user;
	struct room_presence *room;
	UT_hash_handle hh_user;  /* user->rooms, keyed by room pointer */
	UT_hash_handle hh_room;  /* room->members, keyed by user pointer */
};

/* A user online somewhere in this replica's view. Room membership is the
 * user's, shared by all its connections on every replica. */
struct user {
	char *key;               /* casefolded nick */
	char *nick;
	char *username;
	char *realname;
	UT_hash_handle hh;       /* server.users */
	struct session *sessions;/* local sessions, linked by next_of_user */
	struct membership *rooms;
	uint64_t on[4];          /* bit i: online on replica i (0..255) */
	uint32_t home;           /* a replica it is on (for WHO), this one if local */
	char *account;           /* the registration its sessions are logged in
	                          * to, NULL = none (a guest) */
	char *away;              /* its away message, NULL when here */
	int in_timeline;         /* joined &timeline: shared by its sessions on this
	                          * replica only, cleared with the last of them */
};

struct room_presence {
	char *key;               /* casefolded room name */
	char *name;
	UT_hash_handle hh;       /* server.rooms */
	struct membership *members;
};

/* The user named nick (any case) if online in the view, else NULL. */
struct user *presence_user(struct server *srv, const char *nick);
/* The user named nick, created (online nowhere yet) if absent. */
struct user *presence_user_make(struct server *srv, const char *nick);
/* Marks u away with text (NULL or "": back); its co-members here with
 * away-notify are told if it changed. */
void presence_set_away(struct server *srv, struct user *u, const char *text);
/* 1 if a and b are in one room. */
int presence_share_room(struct user *a, struct user *b);
/* Sets what u shows besides its nick (account: a registration or NULL/""). */
void presence_set_details(struct user *u, const char *username, const char *realname,
			  const char *account);
/* Attaches a registered session to the user named s->nick; the first local
 * session tells the other replicas (and sets the user's details from s).
 * Returns the user. */
struct user *presence_attach(struct server *srv, struct session *s);
/* Detaches s from its user. The last local session tells the other
 * replicas; if the user is then online nowhere, co-members get QUIT with
 * reason and the user is freed. Returns 1 if the user is gone. */
int presence_detach(struct server *srv, struct session *s, const char *reason);
/* Marks u online (on = 1) or not on replica id; a user online nowhere is
 * removed (co-members get QUIT with reason, inside batch b if given). */
void presence_set_on(struct server *srv, struct user *u, uint32_t id, int on, const char *reason,
		     struct batch_set *b);
int presence_is_on(const struct user *u, uint32_t id);
/* The room named name if anyone is in it, else NULL. */
struct room_presence *presence_room(struct server *srv, const char *name);
/* Adds u to room name; returns 1 if u was not in it, 0 if it was. */
int presence_join(struct server *srv, struct user *u, const char *name, struct room_presence **out);
/* Removes u from room r (freeing r when it empties); returns 1 if u was in it. */
int presence_part(struct server *srv, struct user *u, struct room_presence *r);
int presence_in_room(struct user *u, struct room_presence *r);
/* 1 if u is online on a replica other than id. */
int presence_elsewhere(const struct user *u, uint32_t id);
/* u holds two persons: its sessions here, and another on other replicas
 * (an account changed hands in a merge). Moves the sessions here, with
 * u's rooms, to a new user new_nick (free); u stays for the other replicas.
 * Tells no one: the caller does. Returns the new user. */
struct user *presence_split(struct server *srv, struct user *u, const char *new_nick);
/* Renames u (no other user may hold new_nick). */
void presence_rename(struct server *srv, struct user *u, const char *new_nick);
/* Number of members of r. */
unsigned presence_count(struct room_presence *r);

/* Telling the other replicas (presence_sync.c). Each is a no-op alone. */
void presence_send_online(struct server *srv, struct user *u);
void presence_send_offline(struct server *srv, const char *nick, const char *reason);
void presence_send_away(struct server *srv, struct user *u);
void presence_send_kill(struct server *srv, const char *nick, const char *reason);
void presence_send_wallops(struct server *srv, const char *nick, const char *text);
void presence_send_join(struct server *srv, struct user *u, struct room_presence *r);
void presence_send_part(struct server *srv, struct user *u, struct room_presence *r, const char *reason);
/* The view changed: users of replicas that left quit (netsplit batch), and
 * this replica announces its users and their rooms to the view. */
void presence_view(struct server *srv, const struct group_view *old, const struct group_view *v);
/* A presence message from replica sender. */
void presence_receive(struct server *srv, uint32_t sender, const void *data, size_t len);

/* ---- MONITOR (monitor.c) ---- */
void cmd_monitor(struct session *s, struct irc_msg *m);
/* Forgets what s monitors (it closes). */
void monitor_clear(struct session *s);
/* u came online in the view (online 1) or left it: 730 / 731 to whoever
 * monitors its nick. */
void monitor_notify(struct server *srv, const struct user *u, int online);
/* "<u> <line>" to the sessions monitoring u with extended-monitor and caps
 * that share no room with u (those that do hear it as co-members). */
void monitor_tell(struct server *srv, const struct user *u, unsigned caps, const char *line);

/* ---- WHOWAS (whowas.c) ---- */
/* Remembers u as it is now (it leaves, or takes another nick). */
void whowas_add(struct server *srv, const struct user *u);
void whowas_free(struct server *srv);

/* ---- who may do what in a room (room_access.c) ---- */

/* The person u is (chat_person of its nick and account), new. */
char *user_person(const struct user *u);
/* 1 if u is an operator / has voice in room name. */
int room_is_op(struct server *srv, const char *name, const struct user *u);
int room_is_voiced(struct server *srv, const char *name, const struct user *u);
/* 1 if u matches a ban of room name and no exception. */
int room_is_banned(struct server *srv, const char *name, const struct user *u);
/* u's prefix in NAMES and WHO: "@", "+", "" (both "@+" if all). */
const char *room_prefix(struct server *srv, const char *name, const struct user *u, int all);
/* 1 if u may see room name in LIST, WHOIS, NAMES, WHO: not +s, or a member. */
int room_visible(struct server *srv, const char *name, struct user *u);
/* 1 if u may read room name's history: not +i, +k or +s, or a member. */
int room_history_open(struct server *srv, const char *name, struct user *u);
/* 1 if s may join room name with key (NULL: none); else answers (474, 473,
 * 475, 471) and returns 0. Operators pass; an invitation passes +b and +i. */
int room_may_join(struct session *s, const char *name, const char *key);
/* 1 if s may speak in room name (+m: voice or operator; a ban: the same);
 * else answers 404 unless quiet and returns 0. */
int room_may_speak(struct session *s, const char *name, int quiet);

/* ---- the replica (replica.c) ---- */

/* Where the answer to an operation goes once it is stored. */
struct pending {
	uint64_t seq;            /* key: seq in this replica's current stream */
	UT_hash_handle hh;
	uint64_t session_id;
	char *label;             /* labeled-response label, or NULL */
	char *command;           /* "PRIVMSG", "NOTICE", "TAGMSG", "TOPIC", ... */
};

/* A user that left the view or changed nick (whowas.c). */
#define WHOWAS_MAX 1000
struct whowas {
	char *nick, *username, *realname;   /* NULL: an empty slot */
	char server[SERVER_NAME_MAX];
	int64_t left_ms;
};

/* ---- metrics (metrics.c) ---- */

/* A limit that refused a connection or a write. */
enum refusal {
	REFUSED_FULL,             /* --max-clients */
	REFUSED_ADDRESS,          /* --per-address */
	REFUSED_SENDQ,            /* a slow reader's send queue */
	REFUSED_RECVQ,            /* a flood past the receive queue */
	REFUSED_REGISTER_TIMEOUT, /* no registration in time */
	REFUSED_NEW_NAMES,        /* too many new rooms and nicks */
	REFUSED_WRITE,            /* a write refused: majority mode, a store failing */
	REFUSED_COUNT
};

#define METRICS_KINDS 17   /* op kinds counted: 1..16 */
#define METRICS_BUCKETS 10 /* bounded buckets of the write latency histogram */

/* What the replica counts, for the metrics endpoint. */
struct metrics {
	uint64_t applied[METRICS_KINDS];        /* ops applied, by kind */
	uint64_t view_changes;
	uint64_t refused[REFUSED_COUNT];
	uint64_t latency[METRICS_BUCKETS + 1];  /* write latency, per bucket (the last: above all) */
	double latency_sum;
	uint64_t latency_count;
	UT_array *written;                      /* hand-over times (uv_hrtime) of ops not yet stored */
	size_t head;                            /* ... from this index */
	struct MHD_Daemon *mhd;                 /* the endpoint, or NULL */
	uv_poll_t poll;
	uv_timer_t timer;
};

void metrics_init(struct metrics *m);
void metrics_free(struct metrics *m);
/* Counting: an op of kind applied; an op handed to the writer; n ops
 * reported stored (in the order written); a refusal by a limit. */
void metrics_applied(struct metrics *m, int kind);
void metrics_written(struct metrics *m);
void metrics_stored(struct metrics *m, size_t n);
void metrics_refused(struct metrics *m, enum refusal why);
/* The endpoint at cfg.metrics (ADDR:PORT), if set. Returns 0 or -1 (logged). */
int metrics_start(struct server *srv);
void metrics_stop(struct server *srv);

struct server {
	uv_loop_t *loop;
	struct config cfg;
	int argc;                    /* the command line, for a reload (SIGHUP) */
	char **argv;
	char name[SERVER_NAME_MAX];  /* this replica's server name (server_name_of) */
	int64_t started_ms;

	struct repl *repl;           /* the replica core: ops, clock, views, sync */
	struct group_view view;      /* the current view, as presence last saw it */
	struct chat *chat;           /* repl_chat(repl) */
	struct store *store;
	struct store_writer *writer;
	struct group *group;
	struct link_set *links;     /* catch-up links, or NULL (no link key) */
	struct metrics metrics;
	uv_timer_t store_retry;      /* retries a failed store */
	uint64_t store_retry_ms;     /* its next delay (doubles up to a minute) */
	uv_check_t flush;            /* multicasts each loop turn's ops */
	struct pending *pending;
	struct announced *announced; /* rooms and users this replica announced */

	/* clients */
	uv_tcp_t listener;
	uv_tcp_t tls_listener;       /* when tls is set */
	uv_pipe_t control;           /* DATA_DIR/control.sock: chorusctl's way in */
	struct tls_server *tls;      /* certificate and key, or NULL (no TLS listener) */
	struct session *sessions;
	unsigned nsessions;
	unsigned bounces;            /* connections refused as full: whose turn to name */
	uint64_t next_session_id;
	struct session *closing;     /* sessions to close at the end of this turn */
	struct session *dirty;       /* sessions with output queued this turn */
	struct session *throttled;   /* sessions waiting for flood tokens */
	uv_timer_t throttle_timer;
	uv_timer_t ping_timer;
	uv_check_t reaper;
	struct user *users;
	struct room_presence *rooms;
	unsigned max_users_seen;     /* most users in the view at once */
	unsigned local_users;        /* users with a session here (presence_attach/detach;
	                              * a split moves sessions between two users) */
	unsigned max_local_seen;     /* most users with a session here at once */
	struct whowas whowas[WHOWAS_MAX]; /* a ring: users that left or renamed */
	struct monitor_watch *monitors;   /* watched nick -> sessions (monitor.c) */
	size_t whowas_next;          /* where the next one goes */
	struct auth_bucket *auth_buckets; /* failed logins, by account and by address */
	struct addr_count *addr_counts;   /* connections per address (the per-address limit) */
	int stopping;
};

/* Opens the store, takes a new stream (boot), rebuilds chat state from the
 * store, and joins the group. Returns 0, or -1 with the reason logged. */
int replica_start(struct server *srv);
/* The configuration was reloaded (SIGHUP): the majority size and the links'
 * peers follow the replica list. */
void replica_reconfigured(struct server *srv);
void replica_stop(struct server *srv);
/*
 * Makes an operation from a session's command (repl_submit) and queues it for
 * multicast at the end of this loop turn; an op from s carries s's account
 * unless op->account is set. The answer (echo, label, or FAIL) goes to
 * session s (may be NULL) when the op is stored. Takes ownership of op's
 * strings. Returns 0, or an enum repl_refusal if this replica refuses
 * writes now: the caller answers with reply_refused.
 */
int replica_submit(struct server *srv, struct session *s, const char *command, struct op *op);
/* Makes a room (kind OP_ROOM) or a user (OP_USER) named name known to the
 * cluster, unless it is known already or this replica announced it before
 * (its op may still be on the way); author with account (NULL: none) made
 * it. founder: the room had nobody in it, so until the op lands the author
 * is taken as its founder here (replica_announced_by). */
void replica_announce(struct server *srv, int kind, const char *name, const char *author,
		      const char *account, int founder);
/* The person who announced room here (its founder while its OP_ROOM is on
 * the way), or NULL. */
const char *replica_announced_by(struct server *srv, const char *room);

/* ---- accounts (accounts.c; commands in cmd_account.c) ---- */

/* 1 if server.identity is accounts. */
int accounts_enabled(const struct server *srv);
/* 1 if s may read direct-message history: with accounts, only logged in
 * (a guest never sees any, not even of the name it holds). */
int dm_history_allowed(const struct session *s);
/* The person (chat.h) s acts as: its nick with its account; new. */
char *session_person(const struct session *s);
/* The account name to show for an op or user of nick made with account
 * regid: the name, if regid is the registration in force for nick; else
 * NULL (none, or one void or removed since). */
const char *account_shown(const struct server *srv, const char *nick, const char *regid);
/* The name the ops of a registration regid of name show under once it is no
 * longer the name's (void after a merge, or removed): "<name>-<4 hex>", the
 * same on every replica; its sessions are renamed to it too. */
void former_nick(const char *name, const char *regid, char out[CHAT_NICK_MAX + 1]);
/* Who op shows as: its author, or former_nick for an op made under an
 * account no longer in force, into name. Returns the account tag to show
 * (the account's name), or NULL. */
const char *author_shown(const struct server *srv, const struct op *op, char name[CHAT_NICK_MAX + 1]);
/* Whether s may take nick (accounts only): 0, or -1 after answering 433. */
int account_nick_check(struct session *s, const char *nick);
/* Logs s in to a (900); a registered session takes the account's name. */
void account_login(struct session *s, const struct chat_account *a);
/* The account name changed (CHAT_ACCOUNT_CHANGED): the sessions here that
 * lost it are logged out, those holding a name now registered to someone
 * else are renamed, with a FAIL or NOTE saying why. */
void accounts_changed(struct server *srv, const char *name);
/* Failed logins: 1 if a login to account from s's address may be tried now
 * (AUTH_FAIL_BURST at once, then AUTH_FAIL_RATE per second, per account
 * and per address); auth_failed counts one failure. */
int auth_allowed(struct session *s, const char *account);
void auth_failed(struct session *s, const char *account);
/* Drops the failure counts that are back to full (all of them if all). */
void auth_buckets_prune(struct server *srv, int all);
/* Answers s for its stored account op (REGISTER SUCCESS and login, or why
 * not; NOTE ACCOUNT ...). */
void account_answer(struct server *srv, const struct op *op, struct session *s);
/* Frees an AUTHENTICATE exchange (NULL is fine). */
void sasl_free(struct sasl *x);

/* ---- fan-out (fanout.c) ---- */

/* Shows the effect of one stored op to the local clients; p (may be NULL) is
 * where the op's answer goes. */
void fanout_effect(struct server *srv, const struct op *op, const struct chat_effect *eff,
		   struct pending *p);
/* Tells p's session that its op could not be stored. */
void fanout_store_failed(struct server *srv, const struct op *op, struct pending *p);
/* Sends s the replay of msgs (n, ascending) as a chathistory batch for target. */
void fanout_history(struct session *s, const char *target, const struct chat_msg **msgs, size_t n);
/* fanout_history of what the store found, but its messages of lts above
 * upto (applied after the read was asked for, so shown live already). */
void fanout_stored(struct session *s, const char *target, const struct store_msgs *found,
		   uint64_t upto);

/* ---- formatting (reply.c) ---- */

/* Optional tags of one outgoing line. */
struct line_tags {
	int64_t time_ms;         /* server-time; 0 = now */
	const char *msgid;       /* msgid tag (message-tags clients) */
	const char *batch;       /* batch reference */
	const char *client_tags; /* raw already-escaped "+a=b;+c" (message-tags clients) */
	int likes;               /* chorus/likes=<n> when >= 0 (message-tags clients) */
	const char *label;       /* label tag */
	const char *account;     /* account tag (account-tag clients), or NULL */
};

#define LINE_TAGS_INIT {0, NULL, NULL, NULL, -1, NULL, NULL}

/* A batch opened lazily per session (netsplit, netjoin): batch_for opens
 * it on first use for a session with the batch capability. */
struct batch_set {
	const char *type;      /* "netsplit", "netjoin", "chathistory" */
	const char *params;    /* after the type, e.g. "r1.chorus r2.chorus" */
	struct batch_open *open;
};

/* The batch id to tag lines to s with (opening it), or NULL when s has no
 * batch capability or b is NULL. */
const char *batch_for(struct batch_set *b, struct session *s);
/* Closes every batch opened in b. */
void batch_set_close(struct batch_set *b);

/* Sends s one line: tags per its capabilities, ":source " if source is
 * non-NULL, then the printf-formatted rest. */
void reply_line(struct session *s, const struct line_tags *t, const char *source,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Appends to line (CRLF included) what reply_line would send a session whose
 * capabilities are caps. */
void reply_format(unsigned caps, const struct line_tags *t, const char *source, struct buf *line,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The server name of replica id: --server-name for this one, else the
 * cluster list's name for it, else "r<id>.chorus". */
void server_name_of(const struct server *srv, uint32_t id, char out[SERVER_NAME_MAX]);

/* Runs as user name (its uid, primary group, no other groups) from now on,
 * and gives it data_dir; once the store and listeners are open, before any
 * client is served (privileges.c). Returns 0, or -1 logged. */
int become_user(const char *name, const char *data_dir);

/* Sends a numeric: ":server NNN <nick> " + formatted rest. */
void reply_num(struct session *s, int num, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Tells s that left lines of its long answer to command were left out
 * (416, as ircu's ERR_QUERYTOOLONG); nothing when left is 0. */
void reply_truncated(struct session *s, const char *command, size_t left);
/* Answers a write refused by replica_submit (why: enum repl_refusal). */
void reply_refused(struct session *s, const char *command, const char *target, int why);
/* Sends "FAIL <command> <code> [context] :text". */
void reply_fail(struct session *s, const char *command, const char *code, const char *context,
		const char *text);
/* "nick!user@host" of a user for line sources, into buf. */
const char *reply_source(const char *nick, char *buf, size_t len);
/* Starts a labeled command's capture on s (label may be NULL: no capture). */
void reply_capture_begin(struct session *s, struct capture *c, const char *label);
/* Ends the capture and sends its lines as the labeled response. */
void reply_capture_end(struct session *s, struct capture *c);
/* Sends the registration burst: 001-005, LUSERS, MOTD. */
void reply_welcome(struct session *s);
void reply_lusers(struct session *s);
void reply_motd(struct session *s);

/* ---- commands (cmd.c, cmd_*.c) ---- */

struct command {
	const char *name;
	int min_params;
	int needs_registration;
	void (*exec)(struct session *s, struct irc_msg *m);
	int cost;                /* flood tokens it takes (a plain line: 1) */
};

/* Runs one parsed line from s. */
void cmd_dispatch(struct session *s, struct irc_msg *m);

/* The commands, by file. */
void cmd_cap(struct session *s, struct irc_msg *m);
void cmd_pass(struct session *s, struct irc_msg *m);
void cmd_nick(struct session *s, struct irc_msg *m);
void cmd_user(struct session *s, struct irc_msg *m);
void cmd_ping(struct session *s, struct irc_msg *m);
void cmd_pong(struct session *s, struct irc_msg *m);
void cmd_quit(struct session *s, struct irc_msg *m);
void cmd_setname(struct session *s, struct irc_msg *m);
void cmd_join(struct session *s, struct irc_msg *m);
void cmd_part(struct session *s, struct irc_msg *m);
void cmd_names(struct session *s, struct irc_msg *m);
void cmd_who(struct session *s, struct irc_msg *m);
void cmd_list(struct session *s, struct irc_msg *m);
void cmd_topic(struct session *s, struct irc_msg *m);
void cmd_privmsg(struct session *s, struct irc_msg *m);
void cmd_notice(struct session *s, struct irc_msg *m);
void cmd_tagmsg(struct session *s, struct irc_msg *m);
void cmd_chathistory(struct session *s, struct irc_msg *m);
/* Queues a store read of person's timeline: store_writer_timeline over the
 * feeds chat_timeline_feeds gives now. */
void history_read_timeline(struct server *srv, const char *person, const struct store_anchor *after,
			   const struct store_anchor *before, size_t limit, int from_end,
			   store_select_fn done, void *arg);
void cmd_motd(struct session *s, struct irc_msg *m);
void cmd_lusers(struct session *s, struct irc_msg *m);
void cmd_links(struct session *s, struct irc_msg *m);
void cmd_digest(struct session *s, struct irc_msg *m);
void cmd_syncstate(struct session *s, struct irc_msg *m);
void cmd_version(struct session *s, struct irc_msg *m);
void cmd_follow(struct session *s, struct irc_msg *m);
void cmd_unfollow(struct session *s, struct irc_msg *m);
void cmd_users(struct session *s, struct irc_msg *m);
void cmd_register(struct session *s, struct irc_msg *m);
void cmd_authenticate(struct session *s, struct irc_msg *m);
void cmd_account(struct session *s, struct irc_msg *m);
void cmd_whois(struct session *s, struct irc_msg *m);
void cmd_oper(struct session *s, struct irc_msg *m);
void cmd_mode(struct session *s, struct irc_msg *m);
void cmd_time(struct session *s, struct irc_msg *m);
void cmd_kill(struct session *s, struct irc_msg *m);
void cmd_wallops(struct session *s, struct irc_msg *m);
void cmd_help(struct session *s, struct irc_msg *m);
/* 1 if name (any case) is a command chorus answers. */
int cmd_known(const char *name);
void cmd_admin(struct session *s, struct irc_msg *m);
/* "<from> WALLOPS :text" to every session here with user mode w. */
void user_wallops(struct server *srv, const char *from, const char *text);
/* Closes the sessions here of the user nick with reason (a KILL). */
void user_kill(struct server *srv, const char *nick, const char *reason);
void cmd_whowas(struct session *s, struct irc_msg *m);
void cmd_away(struct session *s, struct irc_msg *m);
void cmd_userhost(struct session *s, struct irc_msg *m);
void cmd_ison(struct session *s, struct irc_msg *m);
void cmd_info(struct session *s, struct irc_msg *m);
void cmd_kick(struct session *s, struct irc_msg *m);
void cmd_invite(struct session *s, struct irc_msg *m);

/* Called by cmd_user/cmd_nick/cmd_cap when registration may complete. */
void cmd_try_register(struct session *s);
/* Moves registered s to the nick new_nick (allowed already): a rename of its
 * user, or joining the user online under that name. */
void cmd_change_nick(struct session *s, const char *new_nick);
/* Renames u and all its sessions here to new_nick (free), telling its
 * sessions, co-members and the other replicas. */
void cmd_rename_user(struct server *srv, struct user *u, const char *new_nick);
/* Sends "<src> <text>" once to each session (having every cap bit in caps)
 * of every other user sharing a room with u, inside batch b if given. */
void cmd_tell_co_members(struct user *u, unsigned caps, const char *src, const char *text,
			 struct batch_set *b);
/* Tells every session sharing a room with u that u quit, with reason,
 * inside batch b if given. */
void cmd_user_gone(struct server *srv, struct user *u, const char *reason, struct batch_set *b);
/* u joined room r (locally or on another replica): its members see JOIN
 * (inside batch b if given) and u's local sessions get the burst. */
void cmd_room_joined(struct server *srv, struct user *u, struct room_presence *r, struct batch_set *b);
/* u left room r: its members see PART; then u is removed from r. */
void cmd_room_parted(struct server *srv, struct user *u, struct room_presence *r, const char *reason);
/* Sends s the JOIN burst of room r: topic, names, and (without chathistory)
 * the last lines. */
void cmd_join_burst(struct session *s, struct room_presence *r);
/* Validity of room names (stricter than chat_apply's, for new rooms). */
int valid_room(const char *name);

/* The timeline (cmd_follow.c): &timeline is a pseudo-room per user, not a
 * presence room; being in it is the user's soft state on this replica. */
#define TIMELINE_REPLAY 20   /* posts replayed on JOIN &timeline */
/* 1 if name is &timeline (any case). */
int is_timeline(const char *name);
/* JOIN &timeline from s: the user's sessions get JOIN and the latest posts
 * (only s if the user is in it already). */
void cmd_timeline_join(struct session *s);
/* PART &timeline from s: the user's sessions get PART; 442 if not in it. */
void cmd_timeline_part(struct session *s, const char *reason);
/* Sends s the JOIN line of &timeline, then, once the store has read them,
 * the TIMELINE_REPLAY latest posts of its user's timeline (a chathistory
 * batch; s does not wait: posts applied meanwhile go out live and are left
 * out of it). */
void cmd_timeline_burst(struct session *s);

#endif
