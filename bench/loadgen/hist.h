/*
 * hist.h: a latency histogram for the load generator. Values are unsigned
 * integers (the generator records microseconds); values below 64 have a
 * bucket each, larger ones fall into 64 buckets per power of two, so a
 * reported quantile is within 1/64 (about 1.6 %) of the true value. Fixed
 * size, no allocation: adding a value is a few instructions, cheap enough to
 * do for every delivered message.
 */
#ifndef CHORUS_BENCH_HIST_H
#define CHORUS_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
/* One linear range below HIST_SUB, then one range per power 2^6 .. 2^63. */
#define HIST_BUCKETS (HIST_SUB * (64 - HIST_SUB_BITS + 1))

struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t n;        /* values added */
	uint64_t min, max; /* exact; min is UINT64_MAX while n == 0 */
	double sum;        /* for the mean */
};

/* Empties h. */
void hist_init(struct hist *h);
/* Adds one value. */
void hist_add(struct hist *h, uint64_t v);
/* Adds every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/*
 * The value at quantile q (0 < q <= 1): the highest value of the bucket that
 * holds the ceil(q * n)-th smallest value, never above the exact maximum.
 * Returns 0 when h is empty.
 */
uint64_t hist_quantile(const struct hist *h, double q);
/* Mean of the values, 0 when empty. */
double hist_mean(const struct hist *h);

#endif
