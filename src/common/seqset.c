/*
 * seqset.c: see seqset.h. Adding the seq after hi advances hi over the run of
 * early seqs it joins; any other new seq goes into the sorted "above" array.
 */
#include "seqset.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The index of the first seq >= seq in s->above (binary search). */
static size_t above_pos(const struct seqset *s, uint64_t seq)
{
	size_t lo = 0, hi = s->nabove;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->above[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int seqset_has(const struct seqset *s, uint64_t seq)
{
	if (seq <= s->hi)
		return seq != 0;
	size_t pos = above_pos(s, seq);
	return pos < s->nabove && s->above[pos] == seq;
}

/* seq == hi + 1: moves hi past it and past the early seqs that follow it. */
static void advance(struct seqset *s)
{
	size_t i = 0;
	s->hi++;
	while (i < s->nabove && s->above[i] == s->hi + 1) {
		s->hi++;
		i++;
	}
	if (i) {
		memmove(s->above, s->above + i, (s->nabove - i) * sizeof *s->above);
		s->nabove -= i;
	}
}

int seqset_add(struct seqset *s, uint64_t seq)
{
	if (seq == 0 || seq <= s->hi)
		return 0;
	if (seq == s->hi + 1) {
		advance(s);
		return 1;
	}
	size_t pos = above_pos(s, seq);
	if (pos < s->nabove && s->above[pos] == seq)
		return 0;
	if (s->nabove == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->above = xrealloc(s->above, s->cap * sizeof *s->above);
	}
	memmove(s->above + pos + 1, s->above + pos, (s->nabove - pos) * sizeof *s->above);
	s->above[pos] = seq;
	s->nabove++;
	return 1;
}

void seqset_free(struct seqset *s)
{
	free(s->above);
	memset(s, 0, sizeof *s);
}
