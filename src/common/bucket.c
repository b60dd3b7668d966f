/*
 * bucket.c: see bucket.h.
 */
#include "bucket.h"

void bucket_init(struct bucket *b, double burst, uint64_t now_ms)
{
	b->tokens = burst;
	b->at_ms = now_ms;
}

double bucket_refill(struct bucket *b, double burst, double rate_per_s, uint64_t now_ms)
{
	b->tokens += (double)(now_ms - b->at_ms) * rate_per_s / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->at_ms = now_ms;
	return b->tokens;
}
