#include "budget.h"

#include "br.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
#define HOURS 24

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
    bool unread;            /* the store could not tell b->day's count: b->used counts since */
    struct pace_bucket pace[PACE_BUCKETS];
    uint64_t hours[HOURS];  /* b->day's requests by hour, kept for the days after */
    uint64_t hours_stored[HOURS];
    /*
     * The shape of the days before (br_budget_projected): at each hour of
     * the day, the most requests any of the BR_BUDGET_HISTORY_DAYS days
     * before b->day sent; history is false when none of them sent any.
     */
    uint64_t shape[HOURS];
    bool history;
};

/*
 * A whole number from the environment (the benchmark's scenario clock):
 * true with *out set when `name` holds one from lo to hi; a value that is
 * not one is warned about with `help` and counts as unset.
 */
static bool
env_number(const char *name, long long lo, long long hi, const char *help, long long *out)
{
    const char *v = getenv(name);
    char *end;
    long long n;

    if (v == NULL || *v == '\0')
        return false;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi) {
        br_warn("budget: %s %s", name, help);
        return false;
    }
    *out = n;
    return true;
}

int64_t
br_budget_day_ms(void)
{
    static int64_t day_ms;
    long long s;

    if (day_ms == 0)
        day_ms = env_number("BR_BUDGET_DAY_S", 1, 86400LL * 366,
                            "must be a number of seconds from 1 to 31622400; a day is 86400 s", &s)
                     ? (int64_t)s * 1000
                     : DAY_MS_DEFAULT;
    return day_ms;
}

/*
 * When a day begins: at 00:00 UTC, or (the benchmark's scenario clock) at
 * BR_BUDGET_DAY_FROM_MS, a wall-clock moment in ms since the epoch, and
 * every br_budget_day_ms() before and after it.  Read once.
 */
static int64_t
day_origin_ms(void)
{
    static bool read;
    static int64_t origin;
    long long ms;

    if (!read) {
        read = true;
        if (env_number("BR_BUDGET_DAY_FROM_MS", 0, LLONG_MAX, "must be a time in ms since 1970; days begin at 00:00 UTC",
                       &ms))
            origin = (int64_t)ms;
    }
    return origin;
}

static int64_t
day_of(int64_t now_ms)
{
    int64_t d = br_budget_day_ms(), t = now_ms - day_origin_ms();
    return t >= 0 ? t / d : -((-t + d - 1) / d);
}

/* When day `day` begins (ms, wall clock). */
static int64_t
day_start(int64_t day)
{
    return day_origin_ms() + day * br_budget_day_ms();
}

static int64_t
pace_width(void)
{
    int64_t w = br_budget_day_ms() / PACE_SHARE / PACE_BUCKETS;
    return w > 0 ? w : 1;
}

/* The length of an hour of the budget's day (a 24th of it) and the hour now_ms is in (0 to 23). */
static int64_t
hour_ms(void)
{
    int64_t h = br_budget_day_ms() / HOURS;
    return h > 0 ? h : 1;
}

static int
hour_of(int64_t now_ms)
{
    int64_t h = (now_ms - day_start(day_of(now_ms))) / hour_ms();
    return h < 0 ? 0 : h >= HOURS ? HOURS - 1 : (int)h;
}

/*
 * A store that could not tell the day's count is asked again: what it
 * holds (an earlier run's requests) is added to what was counted since.
 * Until it answers, nothing is written over it.
 */
static bool
reread(struct br_budget *b)
{
    uint64_t n;

    if (b->unread && br_store_usage_get(b->store, b->day, &n) == 0) {
        b->used += n;
        b->stored = n;
        b->unread = false;
    }
    return !b->unread;
}

static void
write_count(struct br_budget *b, int64_t now_ms)
{
    if (!reread(b))
        return;
    /* A store that refuses writes keeps the count dirty: the next try writes it all. */
    if (br_store_usage_put(b->store, b->day, b->used) == 0) {
        b->stored = b->used;
        b->written_at = now_ms;
    }
    for (int h = 0; h < HOURS; h++)
        if (b->hours[h] != b->hours_stored[h] && br_store_usage_hour_put(b->store, b->day, h, b->hours[h]) == 0)
            b->hours_stored[h] = b->hours[h];
}

/* Reads b->day's hours (a restart goes on counting them) and the shape of the days before. */
static void
load_hours(struct br_budget *b)
{
    uint64_t past[(BR_BUDGET_HISTORY_DAYS + 1) * HOURS];
    const uint64_t *today = past + BR_BUDGET_HISTORY_DAYS * HOURS;

    memset(b->shape, 0, sizeof(b->shape));
    b->history = false;
    /* A store that cannot answer: no history (the projection is the recent pace's) and today from 0. */
    if (br_store_usage_hours(b->store, b->day - BR_BUDGET_HISTORY_DAYS, BR_BUDGET_HISTORY_DAYS + 1, past) != 0)
        memset(past, 0, sizeof(past));
    for (int d = 0; d < BR_BUDGET_HISTORY_DAYS; d++)
        for (int h = 0; h < HOURS; h++) {
            uint64_t n = past[d * HOURS + h];
            if (n > b->shape[h])
                b->shape[h] = n;
            if (n > 0)
                b->history = true;
        }
    memcpy(b->hours, today, sizeof(b->hours));
    memcpy(b->hours_stored, today, sizeof(b->hours_stored));
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
    b->unread = br_store_usage_get(b->store, day, &b->used) != 0;
    if (b->unread)
        b->used = 0; /* asked again at the next request and at each flush (reread) */
    b->stored = b->used;
    load_hours(b);
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
    b->hours[hour_of(now_ms)]++;
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
    if (b->unread || b->used != b->stored)
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

/* The shape's requests from the start of the day to now_ms (the hour now_ms is in pro rata). */
static double
shape_until(const struct br_budget *b, int64_t now_ms)
{
    int64_t into = now_ms - day_start(day_of(now_ms));
    int h = hour_of(now_ms);
    double part = (double)(into - (int64_t)h * hour_ms()) / (double)hour_ms(), n = 0;

    for (int i = 0; i < h; i++)
        n += (double)b->shape[i];
    return n + (double)b->shape[h] * (part < 0 ? 0 : part > 1 ? 1 : part);
}

double
br_budget_projected(const struct br_budget *b, int64_t now_ms)
{
    int64_t slot = now_ms / pace_width(), end = br_budget_day_end(b, now_ms), rest = end - now_ms;
    double recent = 0, pace, used = (double)br_budget_used_today(b, now_ms), whole = 0, so_far, smooth, trend;
    double near, rest_now, rest_after;

    for (size_t i = 0; i < PACE_BUCKETS; i++)
        if (b->pace[i].n > 0 && b->pace[i].slot <= slot && b->pace[i].slot > slot - PACE_BUCKETS)
            recent += b->pace[i].n;
    /*
     * The pace over the window, per ms: with a day of 86,400 s the window
     * is exactly 1/24 of it; a short scenario day rounds the window down
     * to whole milliseconds per slice, and the pace is taken over that.
     */
    pace = recent / (double)(pace_width() * PACE_BUCKETS);
    near = pace * (double)(rest < hour_ms() ? rest : hour_ms());
    /* The budget is still on yesterday (nothing sent today yet): the recent pace for the rest of the day. */
    if (day_of(now_ms) != b->day)
        return used + pace * (double)rest;
    if (!b->history) {
        /*
         * No day before to go by: the next hour at the recent pace, the
         * rest at the pace seen since the start of the hour of today's
         * first request (the day is kept in whole hours; at least an hour
         * back): a rush counts for the hour it may go on, not for the
         * whole day.
         */
        double seen = 0;
        int64_t first = -1, span;
        for (int h = 0; h < HOURS; h++) {
            if (b->hours[h] > 0 && first < 0)
                first = h;
            seen += (double)b->hours[h];
        }
        if (first < 0 || rest <= hour_ms())
            return used + near;
        span = now_ms - (day_start(day_of(now_ms)) + first * hour_ms());
        if (span < hour_ms())
            span = hour_ms();
        return used + near + seen / (double)span * (double)(rest - hour_ms());
    }
    /*
     * The days before: the rest of the day as the shape has it, times how
     * much busier today has been so far (never less than the shape; a
     * smoothing of half an hour of the quota's even pace keeps the first
     * few requests of a morning from making a large factor); the next
     * hour at the recent pace when that says more (a rush, or a day
     * unlike the others).
     */
    for (int h = 0; h < HOURS; h++)
        whole += (double)b->shape[h];
    so_far = shape_until(b, now_ms);
    smooth = b->quota > 0 ? (double)b->quota / 48.0 : 1.0;
    trend = (used + smooth) / (so_far + smooth);
    if (trend < 1.0)
        trend = 1.0;
    rest_now = (whole - so_far) * trend;
    rest_after = rest <= hour_ms() ? 0 : (whole - shape_until(b, now_ms + hour_ms())) * trend;
    return used + (near + rest_after > rest_now ? near + rest_after : rest_now);
}

int64_t
br_budget_day_end(const struct br_budget *b, int64_t now_ms)
{
    (void)b;
    return day_start(day_of(now_ms) + 1);
}
