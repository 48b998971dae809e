/*
 * ratelimit.h - token buckets per source address, for the webhook routes.
 *
 * A fixed table (no growth: a flood of addresses cannot exhaust memory);
 * when it is full, the stalest entry is reused.  Loop thread only.
 */
#ifndef BR_RATELIMIT_H
#define BR_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct br_ratelimit;

/* rate per second and burst; rate <= 0 means "no limit" (every take succeeds). */
struct br_ratelimit *br_ratelimit_new(double rate, double burst);
void br_ratelimit_free(struct br_ratelimit *rl);
/* Takes one token for addr at now_ms; false when the address is over its limit. */
bool br_ratelimit_take(struct br_ratelimit *rl, const char *addr, int64_t now_ms);

#endif
