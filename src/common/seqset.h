/*
 * seqset.h: a set of sequence numbers 1, 2, ... of one stream, kept as "every
 * seq up to hi" plus the few above it that came early. A stream's seqs mostly
 * arrive in order, so the set stays one number however many it holds.
 */
#ifndef CHORUS_SEQSET_H
#define CHORUS_SEQSET_H

#include <stddef.h>
#include <stdint.h>

struct seqset {
	uint64_t hi;     /* every seq 1..hi is in the set */
	uint64_t *above; /* the seqs > hi + 1 in the set, ascending */
	size_t nabove, cap;
};

/* 1 if seq is in s. */
int seqset_has(const struct seqset *s, uint64_t seq);
/* Adds seq (>= 1) to s. Returns 1 if it was not in s, 0 if it was (or is 0). */
int seqset_add(struct seqset *s, uint64_t seq);
/* Frees what s holds and empties it. */
void seqset_free(struct seqset *s);

#endif
