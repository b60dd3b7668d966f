/*
 * hist.c: the log-linear latency histogram of hist.h. A value's bucket is
 * found from its highest set bit (which power of two it lies in) and the
 * next HIST_SUB_BITS bits below it (where in that power).
 */
#include <math.h>
#include <string.h>

#include "hist.h"

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

/* The bucket that holds v. */
static unsigned bucket_of(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned top = 63u - (unsigned)__builtin_clzll(v); /* v is in [2^top, 2^(top+1)) */
	unsigned shift = top - HIST_SUB_BITS;
	unsigned sub = (unsigned)(v >> shift) - HIST_SUB; /* 0 .. HIST_SUB-1 */
	return HIST_SUB + shift * HIST_SUB + sub;
}

/* The highest value that falls into bucket b. */
static uint64_t bucket_high(unsigned b)
{
	if (b < HIST_SUB)
		return b;
	unsigned shift = (b - HIST_SUB) / HIST_SUB;
	uint64_t sub = (b - HIST_SUB) % HIST_SUB;
	uint64_t low = (HIST_SUB + sub) << shift;
	return low + ((uint64_t)1 << shift) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
	h->counts[bucket_of(v)]++;
	h->n++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->n += src->n;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->n == 0)
		return 0;
	if (q <= 0)
		return h->min;
	uint64_t rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen >= rank) {
			uint64_t v = bucket_high(b);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->n ? h->sum / (double)h->n : 0.0;
}
