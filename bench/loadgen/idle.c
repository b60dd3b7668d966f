/*
 * idle.c: the idle-connections scenario. It reads the resident memory of
 * the server processes (--pid), opens --connections registered connections
 * that then say nothing (--concurrency being set up at once), waits for the
 * servers to settle, and reads the memory again: the difference divided by
 * the connections held is the memory an idle connection costs. It stops
 * opening at the first refusal (a full server, a file limit on either side),
 * so "held" is also the most connections the server kept at once, up to
 * --connections.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "loadgen.h"
#include "procstat.h"

#define BASELINE_MS 500       /* quiet time before the first memory reading */
#define SETTLE_MS 1500        /* after the last registration, before the second */
#define STALL_MS 30000        /* no registration for this long: stop opening */
#define CHECK_MS 500

enum idle_phase { IP_BASELINE, IP_OPENING, IP_SETTLING, IP_DONE };

struct idle {
	const struct options *o;
	struct net net;
	struct conn *conns;
	enum idle_phase phase;
	uv_timer_t timer;
	uint32_t launched, inflight, registered, failed, dropped;
	int stop_opening;
	uint64_t rss_before, rss_after;  /* KiB, summed over the pids */
	int rss_ok;
	uint64_t open_start_us, open_end_us, last_progress_us;
	char first_error[300];
};

static uint64_t servers_rss(struct idle *d)
{
	uint64_t total = 0, kib;
	for (unsigned i = 0; i < d->o->npids; i++) {
		if (proc_rss_kib(d->o->pids[i], &kib) < 0)
			d->rss_ok = 0;
		else
			total += kib;
	}
	return total;
}

static void note_error(struct idle *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(struct idle *d, const char *fmt, ...)
{
	if (d->first_error[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->first_error, sizeof d->first_error, fmt, ap);
	va_end(ap);
}

static void on_tick(uv_timer_t *t);

/* Opening is over when nothing more will be launched and nothing is being
 * set up: let the server settle, then measure. */
static void maybe_done_opening(struct idle *d)
{
	if (d->phase != IP_OPENING || d->inflight > 0 ||
	    (!d->stop_opening && d->launched < d->o->connections))
		return;
	d->phase = IP_SETTLING;
	d->open_end_us = now_us();
	uv_timer_start(&d->timer, on_tick, SETTLE_MS, 0);
}

/* ---- connections ---- */

static void launch_more(struct idle *d);

static void on_registered(struct conn *c)
{
	struct idle *d = c->ctx;
	d->registered++;
	d->inflight--;
	d->last_progress_us = now_us();
	launch_more(d);
	maybe_done_opening(d);
}

static void on_line(struct conn *c, struct irc_msg *m, uint64_t now)
{
	(void)c;
	(void)m;
	(void)now; /* the registration burst: nothing to do (PING is answered for us) */
}

static void on_failed(struct conn *c, const char *why)
{
	struct idle *d = c->ctx;
	if (d->phase == IP_DONE)
		return;
	note_error(d, "connection %u: %s", c->id, why);
	d->stop_opening = 1;
	if (c->was_registered) {
		d->dropped++; /* the server let go of one it held */
	} else {
		d->failed++;
		d->inflight--;
	}
	maybe_done_opening(d);
}

static const struct conn_handler handler = {on_registered, on_line, on_failed};

static void launch_more(struct idle *d)
{
	char nick[32];
	while (d->phase == IP_OPENING && !d->stop_opening && d->launched < d->o->connections &&
	       d->inflight < d->o->concurrency) {
		uint32_t i = d->launched;
		const struct target *tg = &d->o->targets[i % d->o->ntargets];
		snprintf(nick, sizeof nick, "%si%u", d->o->prefix, i);
		int rc = conn_start(&d->conns[i], &d->net, i, (const struct sockaddr *)&tg->addr, nick,
				    &handler, d);
		if (rc < 0) {
			note_error(d, "connection %u: generator could not connect: %s", i, uv_strerror(rc));
			d->stop_opening = 1;
			break;
		}
		d->launched++;
		d->inflight++;
	}
}

/* ---- phases ---- */

static void finish(struct idle *d)
{
	d->phase = IP_DONE;
	uv_timer_stop(&d->timer);
	for (uint32_t i = 0; i < d->launched; i++)
		conn_close(&d->conns[i]);
}

static void on_tick(uv_timer_t *t)
{
	struct idle *d = t->data;
	uint64_t now = now_us();
	switch (d->phase) {
	case IP_BASELINE:
		d->rss_before = servers_rss(d);
		d->phase = IP_OPENING;
		d->open_start_us = d->last_progress_us = now;
		launch_more(d);
		uv_timer_start(&d->timer, on_tick, CHECK_MS, CHECK_MS);
		maybe_done_opening(d);
		return;
	case IP_OPENING:
		if (now - d->last_progress_us > (uint64_t)STALL_MS * 1000) {
			note_error(d, "no registration completed for %d s; %u still setting up",
				   STALL_MS / 1000, d->inflight);
			d->stop_opening = 1;
			d->phase = IP_SETTLING;
			d->open_end_us = now;
			uv_timer_start(&d->timer, on_tick, SETTLE_MS, 0);
		}
		return;
	case IP_SETTLING:
		d->rss_after = servers_rss(d);
		finish(d);
		return;
	case IP_DONE:
		return;
	}
}

static void report(const struct idle *d, FILE *out)
{
	uint32_t held = d->registered - d->dropped;
	double per_conn = held && d->rss_ok && d->rss_after >= d->rss_before
				  ? (double)(d->rss_after - d->rss_before) * 1024.0 / held
				  : -1;
	fprintf(out, "{\"mode\":\"idle\",\"label\":");
	json_string(out, d->o->label ? d->o->label : "");
	fprintf(out, ",\"ok\":%s,\"connections\":%u,\"held\":%u,\"failed\":%u,\"dropped\":%u,"
		     "\"first_error\":",
		held > 0 && d->rss_ok ? "true" : "false", d->o->connections, held, d->failed, d->dropped);
	json_string(out, d->first_error);
	fprintf(out, ",\"rss_before_kib\":%llu,\"rss_after_kib\":%llu,\"bytes_per_conn\":%.0f,"
		     "\"open_s\":%.2f,\"bad_lines\":%llu}\n",
		(unsigned long long)d->rss_before, (unsigned long long)d->rss_after, per_conn,
		(double)(d->open_end_us - d->open_start_us) / 1e6, (unsigned long long)d->net.bad_lines);
	fflush(out);
}

int idle_run(const struct options *o, uv_loop_t *loop, FILE *out)
{
	struct idle d;
	memset(&d, 0, sizeof d);
	d.o = o;
	d.rss_ok = o->npids > 0;
	net_init(&d.net, loop, o->quickack);
	d.conns = xcalloc(o->connections, sizeof *d.conns);
	uv_timer_init(loop, &d.timer);
	d.timer.data = &d;
	d.phase = IP_BASELINE;
	uv_timer_start(&d.timer, on_tick, BASELINE_MS, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	if (d.phase != IP_DONE)
		finish(&d);
	uv_close((uv_handle_t *)&d.timer, NULL);
	net_close(&d.net);
	uv_run(loop, UV_RUN_DEFAULT);
	report(&d, out);
	free(d.conns);
	uint32_t held = d.registered - d.dropped;
	if (held == 0 || !d.rss_ok) {
		fprintf(stderr, "chorus-bench: %s\n",
			!d.rss_ok ? "could not read the servers' memory (--pid)" : d.first_error);
		return 1;
	}
	return 0;
}
