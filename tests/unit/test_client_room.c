/*
 * test_client_room.c: the terminal client's room model (src/client/room.c):
 * lines kept once per msgid in the server's order, history segments merged
 * at their place (latest, after an anchor, before an anchor) without losing
 * live lines, like counts and our own likes, the refusals of `l`/`r`, the
 * numbering of the last-25 window, participants, the line format; the
 * timeline: its 20-post window, clearing it, and the post format.
 * room.c is compiled in here (the unit tests link chorus_core only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "client/room.c"

/* A line with msgid id, by author, text "t<id>". */
static struct room_msg msg(const char *id, const char *author, int likes)
{
	static char texts[64][32];
	static int next;
	char *t = texts[next++ % 64];
	snprintf(t, 32, "t%s", id);
	return (struct room_msg){id, author, t, 0, likes};
}

/* The room's msgids in order, joined with spaces. */
static const char *order(const struct room *r)
{
	static char out[4096];
	out[0] = '\0';
	for (size_t i = 0; i < r->n; i++) {
		if (i)
			strcat(out, " ");
		strcat(out, r->lines[i]->msgid);
	}
	return out;
}

/* Appends live lines named by the space-separated ids. */
static void live(struct room *r, const char *ids)
{
	char buf[1024], *save = NULL;
	snprintf(buf, sizeof buf, "%s", ids);
	for (char *id = strtok_r(buf, " ", &save); id; id = strtok_r(NULL, " ", &save)) {
		struct room_msg m = msg(id, "bob", -1);
		room_append(r, &m);
	}
}

/* Merges a segment named by the space-separated ids (likes 0). */
static size_t merge(struct room *r, const char *ids, enum room_place where, const char *anchor)
{
	struct room_msg seg[128];
	char buf[1024], *save = NULL;
	size_t n = 0;
	snprintf(buf, sizeof buf, "%s", ids);
	for (char *id = strtok_r(buf, " ", &save); id; id = strtok_r(NULL, " ", &save))
		seg[n++] = msg(id, "bob", 0);
	return room_merge(r, seg, n, where, anchor);
}

TEST(append_dedupes_by_msgid)
{
	struct room *r = room_new("#t");
	struct room_msg a = msg("a", "bob", -1), a2 = msg("a", "carol", -1);
	CHECK_EQ_INT(room_append(r, &a), 1);
	CHECK_EQ_INT(room_append(r, &a2), 0);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_STR(r->lines[0]->author, "bob");
	CHECK(room_find(r, "a") == r->lines[0]);
	CHECK(room_find(r, "zz") == NULL);
	room_free(r);
}

TEST(merge_latest_into_empty_and_again)
{
	struct room *r = room_new("#t");
	CHECK_EQ_INT(merge(r, "a b c", ROOM_LATEST, NULL), 3);
	CHECK_EQ_STR(order(r), "a b c");
	/* The same segment again adds nothing; a later one overlapping adds its new lines. */
	CHECK_EQ_INT(merge(r, "a b c", ROOM_LATEST, NULL), 0);
	CHECK_EQ_INT(merge(r, "b c d e", ROOM_LATEST, NULL), 2);
	CHECK_EQ_STR(order(r), "a b c d e");
	room_free(r);
}

TEST(merge_inserts_lines_earlier)
{
	/* A merge from another partition puts x and y between lines we hold. */
	struct room *r = room_new("#t");
	live(r, "a b c d");
	CHECK_EQ_INT(merge(r, "a x b c y d", ROOM_LATEST, NULL), 2);
	CHECK_EQ_STR(order(r), "a x b c y d");
	room_free(r);
}

TEST(merge_latest_puts_unlisted_lines_before)
{
	/* The answer lists the newest lines the server had: e, held but not
	 * listed, is older than all of them (it came from a merge). */
	struct room *r = room_new("#t");
	live(r, "a b c e");
	merge(r, "b c d", ROOM_LATEST, NULL);
	CHECK_EQ_STR(order(r), "a e b c d");
	/* Lines that come after the answer are appended after it. */
	live(r, "f");
	CHECK_EQ_STR(order(r), "a e b c d f");
	room_free(r);
}

TEST(merge_reorders_to_the_segment)
{
	/* The server's order wins for the lines of the segment. */
	struct room *r = room_new("#t");
	live(r, "a c b");
	merge(r, "a b c", ROOM_LATEST, NULL);
	CHECK_EQ_STR(order(r), "a b c");
	room_free(r);
}

TEST(merge_latest_without_overlap_goes_after)
{
	struct room *r = room_new("#t");
	live(r, "a b");
	merge(r, "c d", ROOM_LATEST, NULL);
	CHECK_EQ_STR(order(r), "a b c d");
	room_free(r);
}

TEST(merge_after_anchor_fills_a_gap)
{
	/* Reconnected: we held up to c; f came live on the new link before
	 * the AFTER answer, which is d e f. */
	struct room *r = room_new("#t");
	live(r, "a b c f");
	CHECK_EQ_INT(merge(r, "d e f", ROOM_AFTER, "c"), 2);
	CHECK_EQ_STR(order(r), "a b c d e f");
	/* A second page that overlaps nothing new changes nothing. */
	CHECK_EQ_INT(merge(r, "e f", ROOM_AFTER, "d"), 0);
	CHECK_EQ_STR(order(r), "a b c d e f");
	room_free(r);
}

TEST(merge_after_full_page_keeps_newer_live_lines_last)
{
	/* The page is full (d e): z, live, is newer than the page's end. */
	struct room *r = room_new("#t");
	live(r, "a b c z");
	merge(r, "d e", ROOM_AFTER, "c");
	CHECK_EQ_STR(order(r), "a b c d e z");
	merge(r, "f g", ROOM_AFTER, "e");
	CHECK_EQ_STR(order(r), "a b c d e f g z");
	merge(r, "h z", ROOM_AFTER, "g");
	CHECK_EQ_STR(order(r), "a b c d e f g h z");
	room_free(r);
}

TEST(merge_after_unknown_anchor_appends)
{
	struct room *r = room_new("#t");
	live(r, "a b");
	merge(r, "c d", ROOM_AFTER, "nope");
	CHECK_EQ_STR(order(r), "a b c d");
	room_free(r);
}

TEST(merge_before_anchor_pages_backwards)
{
	struct room *r = room_new("#t");
	live(r, "e f g");
	CHECK_EQ_INT(merge(r, "c d", ROOM_BEFORE, "e"), 2);
	CHECK_EQ_STR(order(r), "c d e f g");
	CHECK_EQ_INT(merge(r, "a b", ROOM_BEFORE, "c"), 2);
	CHECK_EQ_STR(order(r), "a b c d e f g");
	CHECK_EQ_INT(merge(r, "", ROOM_BEFORE, "a"), 0);
	CHECK_EQ_STR(order(r), "a b c d e f g");
	room_free(r);
}

TEST(merge_large_history)
{
	/* Pages of 100 backwards over 1000 lines, as `h` does. */
	struct room *r = room_new("#t");
	static char ids[1000][8];
	struct room_msg seg[100];
	for (int i = 0; i < 1000; i++)
		snprintf(ids[i], sizeof ids[i], "m%03d", i);
	for (int page = 9; page >= 0; page--) {
		for (int i = 0; i < 100; i++)
			seg[i] = msg(ids[page * 100 + i], "bob", 0);
		room_merge(r, seg, 100, page == 9 ? ROOM_LATEST : ROOM_BEFORE,
			   page == 9 ? NULL : ids[(page + 1) * 100]);
	}
	CHECK_EQ_INT(r->n, 1000);
	int sorted = 1;
	for (size_t i = 0; i < r->n; i++)
		sorted &= strcmp(r->lines[i]->msgid, ids[i]) == 0;
	CHECK(sorted);
	room_free(r);
}

TEST(likes_counts_and_merges)
{
	struct room *r = room_new("#t");
	live(r, "a b");
	CHECK_EQ_INT(r->lines[0]->likes, 0);
	CHECK_EQ_INT(room_set_likes(r, "a", 2), 1);
	CHECK_EQ_INT(room_set_likes(r, "a", 2), 0); /* no change, no redraw */
	CHECK_EQ_INT(room_set_likes(r, "zz", 1), 0);
	CHECK_EQ_INT(room_find(r, "a")->likes, 2);
	/* Our own like survives a merge; the count comes from the segment. */
	room_set_mine(r, "a", MINE_LIKED);
	struct room_msg seg[2] = {msg("a", "bob", 3), msg("b", "bob", -1)};
	room_merge(r, seg, 2, ROOM_LATEST, NULL);
	CHECK_EQ_INT(room_find(r, "a")->likes, 3);
	CHECK_EQ_INT(room_find(r, "a")->mine, MINE_LIKED);
	CHECK_EQ_INT(room_find(r, "b")->likes, 0); /* -1: no tag, count kept */
	room_forget_mine(r);
	CHECK_EQ_INT(room_find(r, "a")->mine, MINE_UNKNOWN);
	room_free(r);
}

TEST(like_refusals)
{
	struct room *r = room_new("#t");
	struct room_line *l;
	struct room_msg mine = msg("m", "Alice", -1), other = msg("o", "bob", -1), liked = msg("k", "bob", 2);
	room_append(r, &mine);
	room_append(r, &other);
	room_append(r, &liked);
	CHECK_EQ_INT(room_like_check(r, 1, "alice", 1, &l), LIKE_NOT_SHOWN); /* never drawn yet */
	CHECK_EQ_INT(room_show(r, NULL), 3);
	CHECK_EQ_INT(room_like_check(r, 0, "alice", 1, &l), LIKE_NOT_SHOWN);
	CHECK_EQ_INT(room_like_check(r, 4, "alice", 1, &l), LIKE_NOT_SHOWN);
	CHECK(l == NULL);
	CHECK_EQ_INT(room_like_check(r, 1, "alice", 1, &l), LIKE_OWN_LINE); /* names ignore case */
	CHECK_EQ_INT(room_like_check(r, 1, "alice", 0, &l), LIKE_OWN_LINE);
	CHECK_EQ_INT(room_like_check(r, 2, "alice", 1, &l), LIKE_OK);
	CHECK_EQ_STR(l->msgid, "o");
	/* Nobody likes o: unliking it is refused without asking the server. */
	CHECK_EQ_INT(room_like_check(r, 2, "alice", 0, &l), LIKE_NOT_LIKED);
	/* k has likes but we do not know whose: the server decides. */
	CHECK_EQ_INT(room_like_check(r, 3, "alice", 0, &l), LIKE_OK);
	room_set_mine(r, "k", MINE_NOT_LIKED); /* FAIL NOT_LIKED told us */
	CHECK_EQ_INT(room_like_check(r, 3, "alice", 0, &l), LIKE_NOT_LIKED);
	room_set_mine(r, "o", MINE_LIKED); /* the echo of our like */
	room_set_likes(r, "o", 1);
	CHECK_EQ_INT(room_like_check(r, 2, "alice", 1, &l), LIKE_ALREADY);
	CHECK_EQ_INT(room_like_check(r, 2, "alice", 0, &l), LIKE_OK);
	room_free(r);
}

TEST(window_numbers_the_last_25)
{
	struct room *r = room_new("#t");
	char id[16];
	size_t first;
	for (int i = 1; i <= 30; i++) {
		snprintf(id, sizeof id, "L%d", i);
		struct room_msg m = msg(id, "bob", -1);
		room_append(r, &m);
	}
	CHECK_EQ_INT(room_show(r, &first), ROOM_WINDOW);
	CHECK_EQ_INT(first, 5);
	CHECK_EQ_STR(room_shown(r, 1)->msgid, "L6");
	CHECK_EQ_STR(room_shown(r, 25)->msgid, "L30");
	CHECK(room_shown(r, 26) == NULL);
	CHECK(room_shown(r, 0) == NULL);
	/* A new line does not renumber what is on screen until the next draw. */
	struct room_msg m = msg("L31", "bob", -1);
	room_append(r, &m);
	CHECK_EQ_STR(room_shown(r, 1)->msgid, "L6");
	room_show(r, &first);
	CHECK_EQ_STR(room_shown(r, 1)->msgid, "L7");
	CHECK_EQ_STR(room_shown(r, 25)->msgid, "L31");
	/* A merge that inserts earlier shifts the window by what it inserted. */
	struct room_msg seg[4] = {msg("L29", "bob", 0), msg("X", "carol", 0), msg("L30", "bob", 0),
				  msg("L31", "bob", 0)};
	room_merge(r, seg, 4, ROOM_LATEST, NULL);
	room_show(r, &first);
	CHECK_EQ_STR(room_shown(r, 1)->msgid, "L8");
	CHECK_EQ_STR(room_shown(r, 23)->msgid, "X");
	CHECK_EQ_STR(room_shown(r, 25)->msgid, "L31");
	room_free(r);
}

TEST(participants)
{
	struct room *r = room_new("#t");
	room_names_reply(r, "carol @bob +Alice");
	room_names_reply(r, "dave");
	room_names_end(r);
	CHECK_EQ_INT(r->npeople, 4);
	CHECK_EQ_STR(r->people[0], "Alice");
	CHECK_EQ_STR(r->people[1], "bob");
	CHECK_EQ_STR(r->people[3], "dave");
	room_person_add(r, "BOB"); /* same name */
	CHECK_EQ_INT(r->npeople, 4);
	room_person_remove(r, "CAROL");
	CHECK(!room_person_has(r, "carol"));
	room_person_rename(r, "dave", "aaron");
	CHECK_EQ_STR(r->people[0], "aaron");
	room_person_rename(r, "nobody", "zed"); /* not here: nothing */
	CHECK(!room_person_has(r, "zed"));
	/* A new reply replaces the list. */
	room_names_reply(r, "erin");
	room_names_end(r);
	CHECK_EQ_INT(r->npeople, 1);
	CHECK_EQ_STR(r->people[0], "erin");
	room_free(r);
}

TEST(line_format)
{
	struct room *r = room_new("#t");
	struct room_msg m = {"id", "bob", "tab\there\x1b[31m", 0, 0};
	struct buf b = {0};
	room_append(r, &m);
	room_line_format(&b, 7, r->lines[0]);
	CHECK_EQ_STR(b.data, "7. bob: tab?here?[31m");
	buf_free(&b);
	room_free(r);
}

TEST(timeline_window_and_clear)
{
	struct room *r = room_new("&TimeLine"), *room = room_new("#t");
	char id[16];
	size_t first;
	CHECK(r->timeline);
	CHECK(!room->timeline);
	CHECK_EQ_INT(room->window, ROOM_WINDOW);
	room_names_reply(r, "alice");
	room_names_end(r);
	for (int i = 1; i <= 30; i++) {
		snprintf(id, sizeof id, "P%d", i);
		struct room_msg m = msg(id, "bob", -1);
		room_append(r, &m);
	}
	CHECK_EQ_INT(room_show(r, &first), TIMELINE_WINDOW);
	CHECK_EQ_INT(first, 10);
	CHECK_EQ_STR(room_shown(r, 1)->msgid, "P11");
	CHECK_EQ_STR(room_shown(r, 20)->msgid, "P30");
	/* Cleared: no lines, nothing shown, not ready; the name and people stay. */
	r->ready = 1;
	room_clear(r);
	CHECK_EQ_INT(r->n, 0);
	CHECK_EQ_INT(r->nshown, 0);
	CHECK(!r->ready);
	CHECK(room_find(r, "P30") == NULL);
	CHECK_EQ_STR(r->name, "&TimeLine");
	CHECK(room_person_has(r, "alice"));
	/* ... and holds lines again, a msgid seen before included. */
	CHECK_EQ_INT(merge(r, "P29 P30", ROOM_LATEST, NULL), 2);
	CHECK_EQ_STR(order(r), "P29 P30");
	room_free(r);
	room_free(room);
}

TEST(post_format)
{
	struct room *r = room_new(ROOM_TIMELINE);
	/* 2024-01-01T23:45:10Z, shown at UTC+5:30: the next day, 05:15. */
	struct room_msg m = {"p1", "bob", "tab\there\x1b[31m", 1704152710000LL, -1};
	struct room_msg untimed = {"p2", "b\x01" "b", "no time", 0, -1};
	struct buf b = {0};
	setenv("TZ", "CHR-5:30", 1);
	tzset();
	room_append(r, &m);
	room_append(r, &untimed);
	room_post_format(&b, r->lines[0]);
	CHECK_EQ_STR(b.data, "bob (05:15) >> tab?here?[31m");
	buf_reset(&b);
	room_post_format(&b, r->lines[1]);
	CHECK_EQ_STR(b.data, "b?b (--:--) >> no time");
	buf_free(&b);
	room_free(r);
}

int main(void)
{
	RUN(append_dedupes_by_msgid);
	RUN(merge_latest_into_empty_and_again);
	RUN(merge_inserts_lines_earlier);
	RUN(merge_latest_puts_unlisted_lines_before);
	RUN(merge_reorders_to_the_segment);
	RUN(merge_latest_without_overlap_goes_after);
	RUN(merge_after_anchor_fills_a_gap);
	RUN(merge_after_full_page_keeps_newer_live_lines_last);
	RUN(merge_after_unknown_anchor_appends);
	RUN(merge_before_anchor_pages_backwards);
	RUN(merge_large_history);
	RUN(likes_counts_and_merges);
	RUN(like_refusals);
	RUN(window_numbers_the_last_25);
	RUN(participants);
	RUN(line_format);
	RUN(timeline_window_and_clear);
	RUN(post_format);
	return CHECK_DONE();
}
