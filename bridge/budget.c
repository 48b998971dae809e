#include "budget.h"

#include "br.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>

#define DAY_MS_DEFAULT (86400LL * 1000)
#define WRITE_EVERY_MS 1000
/*
 * The recent pace is counted in PACE_BUCKETS slices of a 1/24 of a day
 * (1-minute slices of the last hour by default), so it costs a fixed
 * array however many requests go out.  An hour, not less: a site's busy
 * ten minutes, taken as the day's pace, would widen the messages' wait
 * (batching.h) on a day far below its quota.
 */
#define PACE_SHARE 24
#define PACE_BUCKETS 60

struct pace_bucket {
    int64_t slot; /* now_ms / slice width when it was filled */
    uint32_t n;
};

struct br_budget {
    struct br_store *store;
    long quota;
    int64_t day;            /* the day b->used counts */
    uint64_t used;
    uint64_t stored;        /* the count last written to the store */
    int64_t written_at;
    long told;              /* the tracker's word on b->day, -1 when none */
    struct pace_bucket pace[PACE_BUCKETS];
};

int64_t
br_budget_day_ms(void)
{
    static int64_t day_ms;

    if (day_ms == 0) {
        const char *v = getenv("BR_BUDGET_DAY_S");
        day_ms = DAY_MS_DEFAULT;
        if (v != NULL && *v != '\0') {
            char *end;
            long s;
            errno = 0;
            s = strtol(v, &end, 10);
            if (errno == 0 && *end == '\0' && s >= 1 && s <= 86400L * 366)
                day_ms = (int64_t)s * 1000;
            else
                br_warn("budget: BR_BUDGET_DAY_S must be a number of seconds from 1 to 31622400; a day is 86400 s");
        }
    }
    return day_ms;
}

static int64_t
day_of(int64_t now_ms)
{
    int64_t d = br_budget_day_ms();
    return now_ms >= 0 ? now_ms / d : -((-now_ms + d - 1) / d);
}

static int64_t
pace_width(void)
{
    int64_t w = br_budget_day_ms() / PACE_SHARE / PACE_BUCKETS;
    return w > 0 ? w : 1;
}

static void
write_count(struct br_budget *b, int64_t now_ms)
{
    /* A store that refuses writes keeps the count dirty: the next try writes it all. */
    if (br_store_usage_put(b->store, b->day, b->used) == 0) {
        b->stored = b->used;
        b->written_at = now_ms;
    }
}

/* Makes b count the day of now_ms: the day before is written, the new one read (a clock set back finds its count). */
static void
roll(struct br_budget *b, int64_t now_ms)
{
    int64_t day = day_of(now_ms);

    if (day == b->day)
        return;
    if (b->used != b->stored)
        write_count(b, now_ms);
    b->day = day;
    b->told = -1;
    if (br_store_usage_get(b->store, day, &b->used) != 0)
        b->used = 0;
    b->stored = b->used;
    br_store_usage_prune(b->store, day - BR_BUDGET_KEEP_DAYS);
}

struct br_budget *
br_budget_new(struct br_store *store, long daily_quota, int64_t now_ms)
{
    struct br_budget *b = br_calloc(1, sizeof(*b));

    b->store = store;
    b->quota = daily_quota > 0 ? daily_quota : 0;
    b->day = day_of(now_ms) - 1; /* roll reads today's count */
    b->told = -1;
    roll(b, now_ms);
    b->written_at = now_ms;
    return b;
}

void
br_budget_free(struct br_budget *b)
{
    if (b == NULL)
        return;
    if (b->used != b->stored)
        write_count(b, br_now_ms());
    free(b);
}

void
br_budget_set_quota(struct br_budget *b, long daily_quota)
{
    b->quota = daily_quota > 0 ? daily_quota : 0;
}

long
br_budget_quota(const struct br_budget *b)
{
    return b->quota;
}

void
br_budget_spend(struct br_budget *b, int64_t now_ms)
{
    int64_t slot = now_ms / pace_width();
    struct pace_bucket *pb = &b->pace[slot % PACE_BUCKETS];

    roll(b, now_ms);
    b->used++;
    if (pb->slot != slot) {
        pb->slot = slot;
        pb->n = 0;
    }
    pb->n++;
    if (now_ms - b->written_at >= WRITE_EVERY_MS || now_ms < b->written_at)
        write_count(b, now_ms);
}

void
br_budget_flush(struct br_budget *b, int64_t now_ms)
{
    roll(b, now_ms);
    if (b->used != b->stored)
        write_count(b, now_ms);
}

void
br_budget_told_left(struct br_budget *b, long left)
{
    b->told = left >= 0 ? left : -1;
}

long
br_budget_told(const struct br_budget *b, int64_t now_ms)
{
    return day_of(now_ms) == b->day ? b->told : -1;
}

uint64_t
br_budget_used_today(const struct br_budget *b, int64_t now_ms)
{
    /* A day the budget has not rolled to yet has had no request. */
    return day_of(now_ms) == b->day ? b->used : 0;
}

long
br_budget_left(const struct br_budget *b, int64_t now_ms)
{
    long told = br_budget_told(b, now_ms);
    uint64_t used = br_budget_used_today(b, now_ms);

    if (told >= 0)
        return told;
    if (b->quota == 0)
        return -1;
    return used >= (uint64_t)b->quota ? 0 : b->quota - (long)used;
}

bool
br_budget_exhausted(const struct br_budget *b, int64_t now_ms)
{
    return b->quota > 0 && br_budget_used_today(b, now_ms) >= (uint64_t)b->quota;
}

double
br_budget_projected(const struct br_budget *b, int64_t now_ms)
{
    int64_t slot = now_ms / pace_width();
    double recent = 0;

    for (size_t i = 0; i < PACE_BUCKETS; i++)
        if (b->pace[i].n > 0 && b->pace[i].slot <= slot && b->pace[i].slot > slot - PACE_BUCKETS)
            recent += b->pace[i].n;
    /*
     * The pace over the window times the rest of the day: with a day of
     * 86,400 s the window is exactly 1/24 of it, so this is recent x 24 x
     * (share of the day left); a short scenario day rounds the window down
     * to whole milliseconds per slice, and the pace is taken over that.
     */
    return (double)br_budget_used_today(b, now_ms) +
           recent / (double)(pace_width() * PACE_BUCKETS) * (double)(br_budget_day_end(b, now_ms) - now_ms);
}

int64_t
br_budget_day_end(const struct br_budget *b, int64_t now_ms)
{
    (void)b;
    return (day_of(now_ms) + 1) * br_budget_day_ms();
}
