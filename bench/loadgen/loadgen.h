/*
 * loadgen.h: chorus-bench, the load generator of the benchmark suite. One
 * process, one libuv loop, many IRC client connections to one or more
 * servers (replicas). It speaks plain IRC (no capabilities), so the same
 * run can be pointed at chorus and at other IRC servers.
 *
 *   main.c      options, running a scenario, the JSON report
 *   conn.c      one client connection: connect, register, line I/O
 *   fanout.c    the fan-out scenario: rooms, paced or saturating senders,
 *               delivered messages/s and end-to-end latency, loss checks
 *   idle.c      the idle scenario: memory per idle registered connection
 *               and how many connections a server holds
 *   track.c     sequence and latency bookkeeping (no I/O; unit-tested)
 *   hist.c      the latency histogram
 *   procstat.c  RSS and CPU time of the servers (by pid) and of itself
 */
#ifndef CHORUS_BENCH_LOADGEN_H
#define CHORUS_BENCH_LOADGEN_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "common/buf.h"
#include "proto/irc.h"

#define BENCH_MAX_TARGETS 64
#define BENCH_MAX_PIDS 64

struct target {
	char host[64];
	int port;
	struct sockaddr_storage addr;
};

enum bench_mode { MODE_FANOUT, MODE_IDLE };

struct options {
	enum bench_mode mode;
	struct target targets[BENCH_MAX_TARGETS];
	unsigned ntargets;
	pid_t pids[BENCH_MAX_PIDS];   /* server processes to measure */
	unsigned npids;
	unsigned clients;             /* fan-out: connections */
	unsigned rooms;               /* fan-out: rooms (clients / rooms members each) */
	double rate;                  /* fan-out: messages sent per second; 0 = saturate */
	unsigned window;              /* saturation: messages in flight per sender */
	unsigned size;                /* bytes of message text */
	double warmup, duration;      /* seconds */
	double drain;                 /* seconds without progress before giving up */
	unsigned connections;         /* idle: connections to open */
	unsigned concurrency;         /* connections being set up at once */
	int quickack;                 /* ACK every read at once (TCP_QUICKACK) */
	char prefix[16];              /* of nicks and room names, unique per run */
	const char *label;
};

/* ---- connections (conn.c) ---- */

struct net; /* the loop-wide state of connections */
struct conn;

/* What a scenario is told about a connection. Every callback may close c. */
struct conn_handler {
	void (*registered)(struct conn *c);               /* 001 arrived */
	void (*line)(struct conn *c, struct irc_msg *m, uint64_t now_us); /* any other line */
	void (*failed)(struct conn *c, const char *why);  /* refused, ERROR, closed, broken */
};

enum conn_state { CONN_NEW, CONN_CONNECTING, CONN_REGISTERING, CONN_REGISTERED, CONN_CLOSED };

struct conn {
	uv_tcp_t tcp;
	uv_connect_t connect_req;
	struct net *net;
	const struct conn_handler *h;
	void *ctx;                 /* the scenario's */
	uint32_t id;
	enum conn_state state;
	int was_registered;        /* 001 arrived (stays set after closing) */
	int handle_open;           /* tcp was initialised and not yet closed */
	char nick[32];
	struct irc_reader reader;
	struct buf out;            /* bytes not yet handed to libuv */
	int writing;               /* a uv_write of ours is in flight */
	int dirty;                 /* on net's flush list */
	struct conn *next_dirty;
};

struct net {
	uv_loop_t *loop;
	uv_check_t flush;          /* hands queued output to the sockets each loop turn */
	struct conn *dirty;
	uint64_t open_handles;
	uint64_t bad_lines;        /* lines from servers that did not parse */
	int quickack;              /* re-arm TCP_QUICKACK after every read */
};

/* Sets up net on loop; with quickack, every connection ACKs what it reads at
 * once instead of delaying the ACK (see conn.c). */
void net_init(struct net *net, uv_loop_t *loop, int quickack);
/* Closes net's own handle (after every connection is closed). */
void net_close(struct net *net);
/*
 * Connects c to addr and registers as nick (NICK, USER). Callbacks go to h
 * with c->ctx = ctx. Returns 0, or a negative libuv error (no callback is
 * made then and c needs no closing).
 */
int conn_start(struct conn *c, struct net *net, uint32_t id, const struct sockaddr *addr,
	       const char *nick, const struct conn_handler *h, void *ctx);
/* Queues len bytes (whole lines with CR LF) for c; they go out at the end of
 * this loop turn. Nothing happens once c is closed. */
void conn_send(struct conn *c, const char *data, size_t len);
/* Queues a formatted line; CR LF is added. */
void conn_sendf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Closes c (idempotent); no callback is made for it afterwards. */
void conn_close(struct conn *c);
/* Microseconds on the generator's monotonic clock. */
uint64_t now_us(void);

/* Writes s to out as a JSON string (quotes and escapes included). */
void json_string(FILE *out, const char *s);

/* ---- scenarios ---- */

/* Each runs on loop until done, prints its JSON report line to out, and
 * returns the exit status: 0 a figure, 2 a lost/duplicate/misrouted
 * message (no figure), 1 any other failure. */
int fanout_run(const struct options *o, uv_loop_t *loop, FILE *out);
int idle_run(const struct options *o, uv_loop_t *loop, FILE *out);

#endif
