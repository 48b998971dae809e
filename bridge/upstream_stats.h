/*
 * upstream_stats.h - what the admin page shows of one upstream's traffic:
 * requests sent in the last minute and hour (a ring of per-second counts
 * and one of per-minute counts) and today's (UTC).  How its answers went
 * is the upstream's own (br_upstream_health).  Embedded in the upstream
 * (upstream.c); plain counting, no I/O.  Loop thread only.
 */
#ifndef BR_UPSTREAM_STATS_H
#define BR_UPSTREAM_STATS_H

#include <stdint.h>

#define BR_STATS_SECONDS 60
#define BR_STATS_MINUTES 60

struct br_upstream_stats {
    uint32_t per_second[BR_STATS_SECONDS];
    uint32_t per_minute[BR_STATS_MINUTES];
    int64_t second, minute;   /* the second and the minute (since the epoch) the newest slots count */
    int64_t day;              /* the UTC day today counts */
    uint64_t today;
};

/* A request left for the upstream at now_ms (wall clock). */
void br_upstream_stats_sent(struct br_upstream_stats *st, int64_t now_ms);
/* Requests in the 60 s and the 3600 s before now_ms, and since 00:00 UTC. */
void br_upstream_stats_counts(const struct br_upstream_stats *st, int64_t now_ms, uint64_t *last_minute,
                              uint64_t *last_hour, uint64_t *today);

#endif
