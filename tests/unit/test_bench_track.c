/*
 * test_bench_track.c: the load generator's receive side (bench/loadgen):
 * server output is split into lines by the project's reader, parsed, and
 * accounted by the tracker. Synthetic streams check that it counts every
 * delivery once, ignores what is not a benchmark message, measures latency
 * only inside the window (and only across targets when there are several),
 * and flags a gap, a duplicate, a misrouted message, a malformed one, and
 * messages that never arrive. Also the latency histogram's quantiles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hist.h"
#include "proto/irc.h"
#include "track.h"

/* Feeds text into a reader in chunks of `chunk` bytes and accounts every
 * line for receiver at now_us. Returns the worst error seen, else TRACK_OK
 * if any line was a delivery, else TRACK_NOT_BENCH. */
static int feed(struct tracker *t, uint32_t receiver, const char *text, size_t chunk, uint64_t now_us)
{
	struct irc_reader r;
	int worst = TRACK_NOT_BENCH, any_ok = 0;
	irc_reader_init(&r, 1 << 20);
	for (size_t off = 0; off < strlen(text); off += chunk) {
		size_t n = strlen(text) - off < chunk ? strlen(text) - off : chunk;
		CHECK_EQ_INT(irc_reader_feed(&r, text + off, n), 0);
		char *line;
		size_t len;
		while (irc_reader_next(&r, &line, &len) == 1) {
			struct irc_msg m;
			if (irc_parse(line, len, &m) != IRC_OK)
				continue;
			int rc = track_receive(t, receiver, &m, now_us, NULL);
			if (rc < worst)
				worst = rc;
			any_ok |= rc == TRACK_OK;
		}
	}
	irc_reader_free(&r);
	return worst < 0 ? worst : any_ok ? TRACK_OK : TRACK_NOT_BENCH;
}

/* Appends to out the line a server relays for sender's next message. */
static void relay(struct tracker *t, uint32_t sender, uint64_t sent_us, char *out, size_t cap)
{
	char body[512];
	CHECK(track_next_body(t, sender, sent_us, 64, body, sizeof body) == 64);
	size_t len = strlen(out);
	snprintf(out + len, cap - len, ":n%u!u@h PRIVMSG #r%u :%s\r\n", sender, t->clients[sender].room, body);
}

TEST(layout)
{
	struct tracker t;
	track_init(&t, 10, 3, 2);
	/* Rooms of 4, 3, 3 members: client i in room i % 3, slot i / 3. */
	CHECK_EQ_INT(t.room_size[0], 4);
	CHECK_EQ_INT(t.room_size[1], 3);
	CHECK_EQ_INT(t.clients[7].room, 1);
	CHECK_EQ_INT(t.clients[7].slot, 2);
	CHECK_EQ_INT(t.clients[7].target, 0);
	CHECK_EQ_INT(t.clients[4].target, 1);
	CHECK_EQ_INT(track_member(&t, 0, 3), 9);
	CHECK_EQ_INT(track_member(&t, 1, 3), UINT32_MAX);
	CHECK(t.cross_only);
	track_free(&t);
}

TEST(body_format)
{
	struct tracker t;
	char out[128];
	track_init(&t, 4, 2, 1);
	CHECK_EQ_INT(track_next_body(&t, 3, 123456, 0, out, sizeof out), (int)strlen("cb 3 0 123456"));
	CHECK_EQ_STR(out, "cb 3 0 123456");
	CHECK_EQ_INT(track_next_body(&t, 3, 7, 40, out, sizeof out), 40);
	CHECK_EQ_INT(strlen(out), 40);
	CHECK(strncmp(out, "cb 3 1 7 xxx", 12) == 0);
	CHECK_EQ_INT(t.clients[3].sent, 2);
	/* Too small a buffer: refused, nothing counted. */
	CHECK_EQ_INT(track_next_body(&t, 3, 7, 0, out, 8), -1);
	CHECK_EQ_INT(track_next_body(&t, 3, 7, 200, out, sizeof out), -1);
	CHECK_EQ_INT(t.clients[3].sent, 2);
	track_free(&t);
}

/* 3 members in one room, every message relayed to the two others, the
 * stream cut into awkward chunks, other server lines mixed in. */
TEST(counts_in_order_stream)
{
	struct tracker t;
	static char to1[16384], to2[16384];
	track_init(&t, 3, 1, 1);
	to1[0] = to2[0] = '\0';
	strcat(to1, ":srv 001 n1 :Welcome\r\nPING :srv\r\n:n1!u@h JOIN #r0\r\n");
	strcat(to2, ":n2!u@h JOIN :#r0\r\n:n0!u@h PRIVMSG #r0 :hello, not a benchmark line\r\n");
	for (int i = 0; i < 20; i++) {
		char line0[512] = "";
		relay(&t, 0, 1000 + i, line0, sizeof line0);
		strcat(to1, line0);
		strcat(to2, line0);
		if (i % 2 == 0) {
			char line1[512] = "";
			relay(&t, 1, 2000 + i, line1, sizeof line1);
			strcat(to2, line1);
		}
	}
	CHECK_EQ_INT(track_missing(&t), 20 * 2 + 10 * 2); /* nothing received yet */
	CHECK_EQ_INT(feed(&t, 1, to1, 7, 5000), TRACK_OK);
	CHECK_EQ_INT(feed(&t, 2, to2, 1, 5000), TRACK_OK);
	CHECK_EQ_INT(t.c.delivered, 20 + 20 + 10);
	CHECK_EQ_INT(t.clients[0].delivered_mine, 40);
	CHECK_EQ_INT(t.clients[1].delivered_mine, 10);
	CHECK_EQ_INT(t.c.lost + t.c.dups + t.c.misrouted + t.c.malformed, 0);
	CHECK_EQ_INT(track_missing(&t), 10); /* client 1's 10 messages, never sent on to client 0 */
	CHECK_EQ_INT(track_in_flight(&t, 0), 0);
	/* Counted by deliveries: 10 of 20 made is 5 messages' worth in flight. */
	CHECK_EQ_INT(track_in_flight(&t, 1), 5);
	CHECK_EQ_INT(t.latency.n, 50);
	CHECK_EQ_INT(t.latency.max, 5000 - 1000);
	track_free(&t);
}

TEST(gap_is_loss)
{
	struct tracker t;
	char body[128], line[256];
	struct irc_msg m;
	track_init(&t, 2, 1, 1);
	for (int i = 0; i < 3; i++)
		track_next_body(&t, 0, 10, 0, body, sizeof body); /* seq 0, 1, 2 */
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 0 10");
	CHECK_EQ_INT(irc_parse(line, strlen(line), &m), IRC_OK);
	CHECK_EQ_INT(track_receive(&t, 1, &m, 20, NULL), TRACK_OK);
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 2 10");
	CHECK_EQ_INT(irc_parse(line, strlen(line), &m), IRC_OK);
	uint32_t sender = 99;
	CHECK_EQ_INT(track_receive(&t, 1, &m, 20, &sender), TRACK_GAP);
	CHECK_EQ_INT(sender, 0);
	CHECK_EQ_INT(t.c.lost, 1);
	/* The lost one turning up late is a reordering: still an error. */
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 1 10");
	CHECK_EQ_INT(irc_parse(line, strlen(line), &m), IRC_OK);
	CHECK_EQ_INT(track_receive(&t, 1, &m, 20, NULL), TRACK_DUP);
	CHECK_EQ_INT(t.c.dups, 1);
	CHECK_EQ_INT(track_missing(&t), 0);
	track_free(&t);
}

TEST(duplicate_misrouted_malformed)
{
	struct tracker t;
	char body[128], line[256];
	struct irc_msg m;
	track_init(&t, 4, 2, 1); /* rooms {0,2} and {1,3} */
	track_next_body(&t, 0, 10, 0, body, sizeof body);
	track_next_body(&t, 1, 10, 0, body, sizeof body);

	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 0 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 2, &m, 11, NULL), TRACK_OK);
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 0 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 2, &m, 11, NULL), TRACK_DUP);

	/* Client 1 is in the other room; a message to oneself is not expected either. */
	snprintf(line, sizeof line, ":a PRIVMSG #r1 :cb 1 0 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 2, &m, 11, NULL), TRACK_MISROUTED);
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 0 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 0, &m, 11, NULL), TRACK_MISROUTED);
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 77 0 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 0, &m, 11, NULL), TRACK_MISROUTED);
	/* A sequence number never sent is not a delivery. */
	snprintf(line, sizeof line, ":a PRIVMSG #r1 :cb 1 5 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 3, &m, 11, NULL), TRACK_DUP);
	CHECK_EQ_INT(t.c.misrouted, 3);

	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 x 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 2, &m, 11, NULL), TRACK_MALFORMED);
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cb 0 99999999999999999999999 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 2, &m, 11, NULL), TRACK_MALFORMED);
	/* Not ours: other commands, other words. */
	snprintf(line, sizeof line, ":a NOTICE #r0 :cb 0 0 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 2, &m, 11, NULL), TRACK_NOT_BENCH);
	snprintf(line, sizeof line, ":a PRIVMSG #r0 :cbx 0 0 10");
	irc_parse(line, strlen(line), &m);
	CHECK_EQ_INT(track_receive(&t, 2, &m, 11, NULL), TRACK_NOT_BENCH);
	CHECK_EQ_INT(t.c.delivered, 1);
	track_free(&t);
}

/* Sent but never delivered: track_missing says how many, per receiver. */
TEST(missing_tail)
{
	struct tracker t;
	static char to1[8192];
	track_init(&t, 3, 1, 1);
	to1[0] = '\0';
	for (int i = 0; i < 5; i++)
		relay(&t, 0, 100, to1, sizeof to1);
	/* Client 1 gets all 5, client 2 gets none: 5 missing. */
	CHECK_EQ_INT(feed(&t, 1, to1, 64, 200), TRACK_OK);
	CHECK_EQ_INT(track_missing(&t), 5);
	CHECK_EQ_INT(track_in_flight(&t, 0), 5 - 2); /* 5 of 10 deliveries: ceil(5/2) done */
	track_free(&t);
}

TEST(latency_window_and_cross_target)
{
	struct tracker t;
	static char to[8192];
	track_init(&t, 4, 1, 2); /* clients 0,2 on target 0; 1,3 on target 1 */
	t.window_start_us = 1000;
	t.window_end_us = 2000;
	to[0] = '\0';
	relay(&t, 0, 500, to, sizeof to);  /* due before the window */
	relay(&t, 0, 1500, to, sizeof to); /* inside */
	relay(&t, 0, 2500, to, sizeof to); /* after */
	CHECK_EQ_INT(t.c.sent_window, 1);
	CHECK_EQ_INT(feed(&t, 2, to, 13, 1600), TRACK_OK); /* same target: no latency */
	CHECK_EQ_INT(t.latency.n, 0);
	CHECK_EQ_INT(feed(&t, 1, to, 13, 1600), TRACK_OK); /* other target: one in the window */
	CHECK_EQ_INT(t.latency.n, 1);
	CHECK_EQ_INT(t.latency.max, 100);
	CHECK_EQ_INT(t.c.delivered_window, 6);
	track_free(&t);
}

TEST(histogram)
{
	struct hist h, g;
	hist_init(&h);
	CHECK_EQ_INT(hist_quantile(&h, 0.5), 0);
	for (uint64_t v = 1; v <= 100000; v++)
		hist_add(&h, v);
	CHECK_EQ_INT(h.n, 100000);
	CHECK_EQ_INT(h.min, 1);
	CHECK_EQ_INT(h.max, 100000);
	uint64_t p50 = hist_quantile(&h, 0.5), p99 = hist_quantile(&h, 0.99);
	CHECK(p50 >= 50000 && p50 <= 50000 + 50000 / 64);
	CHECK(p99 >= 99000 && p99 <= 99000 + 99000 / 64);
	CHECK_EQ_INT(hist_quantile(&h, 1.0), 100000);
	CHECK_EQ_INT(hist_quantile(&h, 0.00001), 1);
	/* Small values are exact. */
	hist_init(&g);
	hist_add(&g, 3);
	hist_add(&g, 3);
	hist_add(&g, 40);
	CHECK_EQ_INT(hist_quantile(&g, 0.5), 3);
	CHECK_EQ_INT(hist_quantile(&g, 0.99), 40);
	/* Huge values do not overflow the buckets. */
	hist_add(&g, UINT64_MAX);
	CHECK(hist_quantile(&g, 1.0) == UINT64_MAX);
	hist_merge(&h, &g);
	CHECK_EQ_INT(h.n, 100004);
	CHECK_EQ_INT(h.min, 1);
}

int main(void)
{
	RUN(layout);
	RUN(body_format);
	RUN(counts_in_order_stream);
	RUN(gap_is_loss);
	RUN(duplicate_misrouted_malformed);
	RUN(missing_tail);
	RUN(latency_window_and_cross_target);
	RUN(histogram);
	return CHECK_DONE();
}
