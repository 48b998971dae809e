/*
 * budget.h - the tracker's daily budget: how many requests the bridge
 * sent to the tracker today, against tracker.daily_quota, and what the
 * tracker's own answers say is left.
 *
 * Days are UTC days: a day's index is floor(now_ms / day_ms), so with the
 * default length a day starts at 00:00 UTC.  The benchmark's scenario
 * clock shortens the day with BR_BUDGET_DAY_S (seconds) and may move its
 * start with BR_BUDGET_DAY_FROM_MS (a moment a day begins, ms since the
 * epoch; day indexes then count from it); both read once.
 *
 * The count is kept in the store (store_usage.c), so a restart goes on
 * where the day was, with the count of each hour of the day (a 24th of
 * it), which shapes the projection of the days after.  It is written at most once a second while requests
 * are sent (br_budget_spend) and by br_budget_flush (the engine's tick) and
 * br_budget_free, so a crash loses at most the requests of the last second
 * or so.  A store that cannot tell the day's count when the day starts is
 * asked again at each write and flush; what it then holds is added to
 * the requests counted meanwhile, and nothing is written over it before.
 * Days older than BR_BUDGET_KEEP_DAYS are removed.
 *
 * The budget only counts and tells; the engine pauses the tracker's
 * upstream when the day's count reaches the quota.  It borrows the store,
 * which must outlive it.  Loop thread only.
 */
#ifndef BR_BUDGET_H
#define BR_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#define BR_BUDGET_KEEP_DAYS 30
/* The days before today whose hours shape the day's projection. */
#define BR_BUDGET_HISTORY_DAYS 7

struct br_store;
struct br_budget;

/* Loads today's count from the store. */
struct br_budget *br_budget_new(struct br_store *store, long daily_quota, int64_t now_ms);
/* Writes a count not yet kept to the store (still open), then frees; NULL is a no-op. */
void br_budget_free(struct br_budget *b);
void br_budget_set_quota(struct br_budget *b, long daily_quota); /* 0 = none */
long br_budget_quota(const struct br_budget *b);
/* One request left for the tracker: counted, and kept in the store (at most a second later). */
void br_budget_spend(struct br_budget *b, int64_t now_ms);
/* What the tracker's answer said is left (X-RateLimit-Remaining). */
void br_budget_told_left(struct br_budget *b, long left);
/* The tracker's word on what is left today, -1 when it has said nothing this day. */
long br_budget_told(const struct br_budget *b, int64_t now_ms);
uint64_t br_budget_used_today(const struct br_budget *b, int64_t now_ms);
/*
 * Requests left today: the tracker's word when known, else quota - used
 * (never below 0); -1 when neither is known (no quota, nothing told).
 */
long br_budget_left(const struct br_budget *b, int64_t now_ms);
/* Whether a daily quota is set and today's count has reached it. */
bool br_budget_exhausted(const struct br_budget *b, int64_t now_ms);
/*
 * The day's use by its end, projected:
 *  - with no request in the BR_BUDGET_HISTORY_DAYS days before today (a
 *    new bridge, or one that was off): used today + the pace of the last
 *    1/24 of a day (an hour) over the next hour + the pace since today's
 *    first request (at least an hour back) over the rest of the day;
 *  - else the days before give the shape: at each hour of the day the
 *    most any of them sent.  used today + the larger of
 *      the shape's rest of the day x trend, and
 *      the last hour's pace over the next hour + the shape's rest after
 *      that hour x trend,
 *    where trend = (used today + q) / (the shape until now + q), never
 *    below 1, and q = quota / 48 (half an hour at the quota's even pace;
 *    1 with no quota): a day busier than the ones before is projected
 *    that much busier, and a rush counts for the hour it may go on.
 */
double br_budget_projected(const struct br_budget *b, int64_t now_ms);
/* Writes the count to the store when it changed since the last write. */
void br_budget_flush(struct br_budget *b, int64_t now_ms);
/* 86,400,000; or BR_BUDGET_DAY_S x 1000 from the environment (the benchmark's scenario clock; read once). */
int64_t br_budget_day_ms(void);
/* When the current day ends (ms, wall clock). */
int64_t br_budget_day_end(const struct br_budget *b, int64_t now_ms);

#endif
