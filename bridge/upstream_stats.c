/*
 * upstream_stats.c - an upstream's requests over the last minute and hour
 * (see upstream_stats.h).
 *
 * Two rings: 60 per-second slots give the last minute exactly, 60
 * per-minute slots the last hour (to the minute).  A slot is cleared when
 * its time comes round again, so an idle upstream costs nothing.
 */
#include "upstream_stats.h"

#include <string.h>

/* Clears the slots between the newest one counted (last) and now in a ring of n. */
static void
advance(uint32_t *ring, size_t n, int64_t *last, int64_t now)
{
    if (now <= *last)
        return;
    if (now - *last >= (int64_t)n) {
        memset(ring, 0, n * sizeof(*ring));
    } else {
        for (int64_t t = *last + 1; t <= now; t++)
            ring[t % (int64_t)n] = 0;
    }
    *last = now;
}

static void
roll(struct br_upstream_stats *st, int64_t now_ms)
{
    int64_t day = now_ms / 86400000;

    advance(st->per_second, BR_STATS_SECONDS, &st->second, now_ms / 1000);
    advance(st->per_minute, BR_STATS_MINUTES, &st->minute, now_ms / 60000);
    if (day != st->day) {
        st->day = day;
        st->today = 0;
    }
}

void
br_upstream_stats_sent(struct br_upstream_stats *st, int64_t now_ms)
{
    roll(st, now_ms);
    st->per_second[(now_ms / 1000) % BR_STATS_SECONDS]++;
    st->per_minute[(now_ms / 60000) % BR_STATS_MINUTES]++;
    st->today++;
}

void
br_upstream_stats_counts(const struct br_upstream_stats *st, int64_t now_ms, uint64_t *last_minute,
                         uint64_t *last_hour, uint64_t *today)
{
    struct br_upstream_stats now = *st;
    uint64_t m = 0, h = 0;

    /* Counted on a copy rolled to now: reading changes nothing. */
    roll(&now, now_ms);
    for (size_t i = 0; i < BR_STATS_SECONDS; i++)
        m += now.per_second[i];
    for (size_t i = 0; i < BR_STATS_MINUTES; i++)
        h += now.per_minute[i];
    *last_minute = m;
    *last_hour = h;
    *today = now.today;
}
