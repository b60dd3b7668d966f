/*
 * bucket.h: a token bucket: an allowance that refills at a steady rate up
 * to a burst. chorusd uses it for the flood limit, failed logins and new
 * names; each use takes tokens off `tokens` itself.
 */
#ifndef CHORUS_BUCKET_H
#define CHORUS_BUCKET_H

#include <stdint.h>

struct bucket {
	double tokens;   /* may go below 0: a debt the refill pays first */
	uint64_t at_ms;  /* when it was last refilled */
};

/* Makes b full (burst tokens) at now_ms. */
void bucket_init(struct bucket *b, double burst, uint64_t now_ms);
/* Adds rate_per_s tokens per second since b's last refill, up to burst;
 * returns the tokens b holds now. */
double bucket_refill(struct bucket *b, double burst, double rate_per_s, uint64_t now_ms);

#endif
