/*
 * fanout.c: the fan-out scenario. `clients` connections spread over the
 * targets join `rooms` rooms (track.h has the layout); once all have
 * joined, every client sends PRIVMSGs to its room and every other member
 * must receive each one, in order.
 *
 * Two ways to offer load:
 *   - a fixed rate (--rate M): a timerfd ticking every PACE_US sends
 *     whatever is due, round robin over the senders (libuv's own timers
 *     have millisecond steps, which would add up to 2 ms of pacing jitter to
 *     every latency); each message carries the time it was *due*, so a
 *     generator or server that falls behind shows up as latency instead of
 *     hiding it (no coordinated omission);
 *   - saturation (--rate 0): each sender keeps --window messages in flight
 *     (not yet delivered to all of its room) and sends the next one as soon
 *     as one completes: the servers' throughput, with bounded queues.
 *
 * Timeline: warm-up, the measured window (counts, latency, CPU time of the
 * generator and of the servers), then sending stops and the drain waits
 * until every message sent has reached every member. Anything lost,
 * duplicated or misrouted makes the run an error with no figure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/util.h"
#include "loadgen.h"
#include "procstat.h"
#include "track.h"

#define TICK_MS 1
#define PACE_US 250
#define DRAIN_CHECK_MS 100
#define SETTLE_MS 300
#define MAX_SENDS_PER_TICK 5000

enum phase { PH_JOINING, PH_SETTLING, PH_RUNNING, PH_DRAINING, PH_DONE };

struct fanout {
	const struct options *o;
	uv_loop_t *loop;
	struct net net;
	struct conn *conns;
	struct tracker t;
	enum phase phase;
	uint32_t launched, inflight, joined;
	uv_timer_t timer;
	int pace_fd;              /* timerfd of the fixed-rate sender, or -1 */
	uv_poll_t pace;
	uint64_t t0_us;           /* start of sending */
	uint64_t sent_total;      /* messages sent (all senders) */
	uint32_t next_sender;     /* round robin (fixed rate) */
	int sending;
	int window_open, window_closed;
	uint64_t gen_cpu0, gen_cpu1, srv_cpu0, srv_cpu1;
	int srv_cpu_ok;
	uint64_t backlog_at_end;  /* deliveries outstanding when the window closed */
	uint64_t last_missing, last_progress_us;
	uint64_t max_lag_us;      /* how late the rate timer sent, at worst */
	char error[512];
	int status;
};

static void finish(struct fanout *f, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Room name of room r. */
static void room_name(const struct fanout *f, uint32_t r, char *out, size_t len)
{
	snprintf(out, len, "#%sr%u", f->o->prefix, r);
}

/* ---- sending ---- */

/* Sends sender's next message, due at due_us. */
static void send_one(struct fanout *f, uint32_t sender, uint64_t due_us)
{
	char room[64], body[1024];
	struct conn *c = &f->conns[sender];
	int n = track_next_body(&f->t, sender, due_us, f->o->size, body, sizeof body);
	if (n < 0)
		abort(); /* --size is checked at start */
	room_name(f, f->t.clients[sender].room, room, sizeof room);
	conn_sendf(c, "PRIVMSG %s :%s", room, body);
	f->sent_total++;
}

/* Saturation: tops sender up to its window. */
static void refill(struct fanout *f, uint32_t sender)
{
	while (f->sending && track_in_flight(&f->t, sender) < f->o->window)
		send_one(f, sender, now_us());
}

/* Fixed rate: sends what is due by now. Message k is due at
 * t0 + k / rate, so at elapsed time e messages 0 .. floor(e * rate) are due. */
static void send_due(struct fanout *f, uint64_t now)
{
	uint64_t due = (uint64_t)((double)(now - f->t0_us) * f->o->rate / 1e6) + 1;
	unsigned burst = 0;
	while (f->sent_total < due && burst++ < MAX_SENDS_PER_TICK) {
		uint64_t due_us = f->t0_us + (uint64_t)((double)f->sent_total * 1e6 / f->o->rate);
		if (now - due_us > f->max_lag_us)
			f->max_lag_us = now - due_us;
		send_one(f, f->next_sender, due_us);
		f->next_sender = (f->next_sender + 1) % f->o->clients;
	}
}

/* Fixed rate: every PACE_US, whatever is due goes out. */
static void on_pace(uv_poll_t *h, int status, int events)
{
	struct fanout *f = h->data;
	uint64_t expirations;
	(void)status;
	(void)events;
	if (read(f->pace_fd, &expirations, sizeof expirations) < 0) {
		/* EAGAIN: a spurious wake-up; nothing to drain */
	}
	if (f->phase == PH_RUNNING && f->sending)
		send_due(f, now_us());
}

/* Starts the fixed-rate pacer. Returns 0, or -1 (no timerfd). */
static int pace_start(struct fanout *f)
{
	struct itimerspec its = {{0, PACE_US * 1000}, {0, PACE_US * 1000}};
	f->pace_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (f->pace_fd < 0)
		return -1;
	if (timerfd_settime(f->pace_fd, 0, &its, NULL) < 0 ||
	    uv_poll_init(f->loop, &f->pace, f->pace_fd) < 0) {
		close(f->pace_fd);
		f->pace_fd = -1;
		return -1;
	}
	f->pace.data = f;
	uv_poll_start(&f->pace, UV_READABLE, on_pace);
	return 0;
}

static void on_pace_closed(uv_handle_t *h)
{
	struct fanout *f = h->data;
	close(f->pace_fd);
	f->pace_fd = -1;
}

/* Stops the pacer (idempotent); its fd is closed with the handle. */
static void pace_stop(struct fanout *f)
{
	if (f->pace_fd >= 0 && !uv_is_closing((uv_handle_t *)&f->pace))
		uv_close((uv_handle_t *)&f->pace, on_pace_closed);
}

/* ---- the measured window ---- */

static uint64_t servers_cpu(const struct fanout *f, int *ok)
{
	uint64_t total = 0, us;
	*ok = f->o->npids > 0;
	for (unsigned i = 0; i < f->o->npids; i++) {
		if (proc_cpu_us(f->o->pids[i], &us) < 0)
			*ok = 0;
		else
			total += us;
	}
	return total;
}

static void window_open(struct fanout *f)
{
	int ok;
	f->window_open = 1;
	f->gen_cpu0 = self_cpu_us();
	f->srv_cpu0 = servers_cpu(f, &ok);
	f->srv_cpu_ok = ok;
}

static void window_close(struct fanout *f)
{
	int ok;
	f->window_closed = 1;
	f->gen_cpu1 = self_cpu_us();
	f->srv_cpu1 = servers_cpu(f, &ok);
	f->srv_cpu_ok &= ok;
	f->sending = 0;
	pace_stop(f);
	f->backlog_at_end = track_missing(&f->t);
	f->phase = PH_DRAINING;
	f->last_missing = f->backlog_at_end;
	f->last_progress_us = now_us();
}

/* Drain: done when nothing is missing; an error after --drain seconds
 * without progress. */
static void drain_check(struct fanout *f, uint64_t now)
{
	uint64_t missing = track_missing(&f->t);
	if (missing == 0) {
		finish(f, 0, NULL);
		return;
	}
	if (missing < f->last_missing) {
		f->last_missing = missing;
		f->last_progress_us = now;
		return;
	}
	if ((double)(now - f->last_progress_us) > f->o->drain * 1e6)
		finish(f, 2, "LOST: %llu deliveries never arrived (no progress for %.0f s after sending stopped)",
		       (unsigned long long)missing, f->o->drain);
}

static void on_tick(uv_timer_t *h);

/* Everyone has joined and the join bursts have settled: the warm-up starts
 * now, the measured window after it. */
static void start_sending(struct fanout *f, uint64_t now)
{
	f->phase = PH_RUNNING;
	f->t0_us = now;
	f->t.window_start_us = now + (uint64_t)(f->o->warmup * 1e6);
	f->t.window_end_us = f->t.window_start_us + (uint64_t)(f->o->duration * 1e6);
	f->sending = 1;
	if (f->o->rate <= 0) {
		for (uint32_t i = 0; i < f->o->clients; i++)
			refill(f, i);
	} else if (pace_start(f) < 0) {
		finish(f, 1, "timerfd: cannot pace the sends");
		return;
	}
	uv_timer_start(&f->timer, on_tick, TICK_MS, TICK_MS);
}

/* The phase clock: settling, then the window's edges, then the drain. */
static void on_tick(uv_timer_t *h)
{
	struct fanout *f = h->data;
	uint64_t now = now_us();
	switch (f->phase) {
	case PH_SETTLING:
		start_sending(f, now);
		return;
	case PH_RUNNING:
		if (!f->window_open && now >= f->t.window_start_us)
			window_open(f);
		if (now >= f->t.window_end_us) {
			window_close(f);
			uv_timer_start(&f->timer, on_tick, DRAIN_CHECK_MS, DRAIN_CHECK_MS);
		}
		return;
	case PH_DRAINING:
		drain_check(f, now);
		return;
	default:
		return;
	}
}

/* ---- connections ---- */

static void launch_more(struct fanout *f);

static void on_registered(struct conn *c)
{
	struct fanout *f = c->ctx;
	char room[64];
	room_name(f, f->t.clients[c->id].room, room, sizeof room);
	conn_sendf(c, "JOIN %s", room);
}

/* The nick part of a line's source. */
static int source_is(const struct irc_msg *m, const char *nick)
{
	if (!m->source)
		return 0;
	size_t n = strcspn(m->source, "!@");
	return strlen(nick) == n && strncasecmp(m->source, nick, n) == 0;
}

static void on_joined(struct fanout *f, struct conn *c)
{
	f->joined++;
	f->inflight--;
	launch_more(f);
	if (f->joined == f->o->clients) {
		f->phase = PH_SETTLING;
		uv_timer_start(&f->timer, on_tick, SETTLE_MS, 0);
	}
}

/* A line that refuses something the benchmark needs: an error numeric
 * (4xx, 5xx; but 422, "no MOTD", is only information) or an IRCv3 FAIL. */
static int refusal(const struct irc_msg *m)
{
	const char *c = m->command;
	int numeric = strlen(c) == 3 && c[0] >= '0' && c[0] <= '9';
	if (strcasecmp(c, "FAIL") == 0)
		return 1;
	return numeric && (c[0] == '4' || c[0] == '5') && strcmp(c, "422") != 0;
}

static void on_line(struct conn *c, struct irc_msg *m, uint64_t now)
{
	struct fanout *f = c->ctx;
	uint32_t sender;
	int rc = track_receive(&f->t, c->id, m, now, &sender);
	if (rc == TRACK_OK) {
		if (f->sending && f->o->rate <= 0)
			refill(f, sender);
		return;
	}
	if (rc < 0) {
		const char *what = rc == TRACK_GAP ? "LOST: a gap in a sender's sequence"
				 : rc == TRACK_DUP ? "DUPLICATE or reordered message"
				 : rc == TRACK_MISROUTED ? "MISROUTED message"
				 : "MALFORMED benchmark message";
		finish(f, 2, "%s (seen by client %u)", what, c->id);
		return;
	}
	if (f->phase == PH_JOINING && strcasecmp(m->command, "JOIN") == 0 && source_is(m, c->nick))
		on_joined(f, c);
	else if (refusal(m))
		finish(f, 1, "server answered %s %s to client %u", m->command,
		       m->nparams ? m->params[m->nparams - 1] : "", c->id);
}

static void on_failed(struct conn *c, const char *why)
{
	struct fanout *f = c->ctx;
	if (f->phase != PH_DONE)
		finish(f, f->phase >= PH_RUNNING ? 2 : 1, "client %u: %s", c->id, why);
}

static const struct conn_handler handler = {on_registered, on_line, on_failed};

/* Starts connections until --concurrency are setting up at once. */
static void launch_more(struct fanout *f)
{
	char nick[32];
	while (f->phase == PH_JOINING && f->launched < f->o->clients && f->inflight < f->o->concurrency) {
		uint32_t i = f->launched++;
		const struct target *tg = &f->o->targets[f->t.clients[i].target];
		snprintf(nick, sizeof nick, "%sc%u", f->o->prefix, i);
		int rc = conn_start(&f->conns[i], &f->net, i, (const struct sockaddr *)&tg->addr, nick,
				    &handler, f);
		if (rc < 0) {
			finish(f, 1, "client %u: connect to %s:%d: %s", i, tg->host, tg->port, uv_strerror(rc));
			return;
		}
		f->inflight++;
	}
}

/* ---- the end ---- */

static void finish(struct fanout *f, int status, const char *fmt, ...)
{
	if (f->phase == PH_DONE)
		return;
	if (!f->window_closed && f->phase == PH_RUNNING)
		window_close(f);
	f->phase = PH_DONE;
	f->status = status;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(f->error, sizeof f->error, fmt, ap);
		va_end(ap);
	}
	f->sending = 0;
	pace_stop(f);
	uv_timer_stop(&f->timer);
	for (uint32_t i = 0; i < f->launched; i++)
		conn_close(&f->conns[i]);
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

/* One line of JSON with everything measured (or the error). */
static void report(const struct fanout *f, FILE *out)
{
	const struct options *o = f->o;
	const struct track_counts *k = &f->t.c;
	const struct hist *h = &f->t.latency;
	double secs = o->duration;
	double gen_cpu = (double)(f->gen_cpu1 - f->gen_cpu0) / (secs * 1e6);
	double srv_cpu = f->srv_cpu_ok ? (double)(f->srv_cpu1 - f->srv_cpu0) / (secs * 1e6) : -1;
	uint32_t members = o->clients / o->rooms;
	double backlog_s = o->rate > 0 ? (double)f->backlog_at_end / (members - 1) / o->rate : 0;

	fprintf(out, "{\"mode\":\"fanout\",\"label\":");
	json_string(out, o->label ? o->label : "");
	fprintf(out, ",\"ok\":%s,\"error\":", f->status == 0 ? "true" : "false");
	json_string(out, f->error);
	fprintf(out, ",\"targets\":%u,\"clients\":%u,\"rooms\":%u,\"members_per_room\":%u,"
		     "\"rate_offered\":%.0f,\"window\":%u,\"size\":%u,\"warmup_s\":%.1f,\"duration_s\":%.1f,",
		o->ntargets, o->clients, o->rooms, members, o->rate, o->window, o->size, o->warmup, secs);
	fprintf(out, "\"sent_total\":%llu,\"delivered_total\":%llu,\"sent_per_s\":%.1f,"
		     "\"delivered_per_s\":%.1f,",
		(unsigned long long)f->sent_total, (unsigned long long)k->delivered,
		(double)k->sent_window / secs,
		(double)k->delivered_window / secs);
	fprintf(out, "\"latency_ms\":{\"n\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
		     "\"max\":%.3f,\"mean\":%.3f},\"latency_cross_target_only\":%s,\"quickack\":%s,",
		(unsigned long long)h->n, ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.9)),
		ms(hist_quantile(h, 0.99)), ms(hist_quantile(h, 0.999)), ms(h->n ? h->max : 0),
		hist_mean(h) / 1000.0, f->t.cross_only ? "true" : "false", o->quickack ? "true" : "false");
	fprintf(out, "\"overloaded\":%s,\"backlog_at_end_s\":%.3f,\"max_send_lag_ms\":%.3f,",
		o->rate > 0 && backlog_s > 0.5 ? "true" : "false", backlog_s, ms(f->max_lag_us));
	fprintf(out, "\"gen_cpu\":%.3f,\"server_cpu\":%.3f,\"lost\":%llu,\"missing\":%llu,\"dups\":%llu,"
		     "\"misrouted\":%llu,\"malformed\":%llu,\"bad_lines\":%llu}\n",
		gen_cpu, srv_cpu, (unsigned long long)k->lost, (unsigned long long)track_missing(&f->t),
		(unsigned long long)k->dups, (unsigned long long)k->misrouted,
		(unsigned long long)k->malformed, (unsigned long long)f->net.bad_lines);
	fflush(out);
}

int fanout_run(const struct options *o, uv_loop_t *loop, FILE *out)
{
	struct fanout f;
	memset(&f, 0, sizeof f);
	f.o = o;
	f.loop = loop;
	f.pace_fd = -1;
	net_init(&f.net, loop, o->quickack);
	track_init(&f.t, o->clients, o->rooms, o->ntargets);
	f.conns = xcalloc(o->clients, sizeof *f.conns);
	uv_timer_init(loop, &f.timer);
	f.timer.data = &f;
	f.phase = PH_JOINING;
	launch_more(&f);
	uv_run(loop, UV_RUN_DEFAULT);

	if (f.phase != PH_DONE)
		finish(&f, 1, "the loop stopped early");
	uv_close((uv_handle_t *)&f.timer, NULL);
	net_close(&f.net);
	uv_run(loop, UV_RUN_DEFAULT);
	if (f.status == 0 && f.t.c.lost + f.t.c.dups + f.t.c.misrouted + f.t.c.malformed > 0) {
		f.status = 2;
		snprintf(f.error, sizeof f.error, "LOST or corrupted messages");
	}
	report(&f, out);
	if (f.status != 0)
		fprintf(stderr, "chorus-bench: %s\n", f.error);
	track_free(&f.t);
	free(f.conns);
	return f.status;
}
