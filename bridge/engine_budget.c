/*
 * engine_budget.c - the tracker's daily quota in the engine: every
 * request the tracker's upstream sends is counted (budget.h); once
 * today's count reaches tracker.daily_quota the upstream is held until
 * the day ends, and the day's projected use widens the messages' wait
 * (batching.h).
 */
#include "engine.h"
#include "engine_impl.h"

#include "budget.h"
#include "config.h"
#include "log.h"
#include "queue.h"
#include "upstream.h"

#include <time.h>

/* The budget's figures for the messages' wait (batching.h's budget hook). */
static void
batching_budget(void *arg, int64_t now_ms, double *projected, long *quota)
{
    struct br_engine *e = arg;

    *projected = br_budget_projected(e->budget, now_ms);
    *quota = br_budget_quota(e->budget);
}

/*
 * Holds the tracker's upstream until the day ends once today's requests
 * reach tracker.daily_quota, and lifts the hold when a reload raised the
 * quota.  Jobs wait meanwhile: the queue starts none on a held upstream,
 * and a request already queued in it waits there; no attempt is counted.
 */
void
br_engine_check_budget(struct br_engine *e, int64_t now)
{
    if (e->budget_hold != 0 && now >= e->budget_hold) {
        br_info("tracker: a new day: requests go to %s again", e->gen->cfg->tracker->label);
        e->budget_hold = 0;
    }
    if (br_budget_exhausted(e->budget, now)) {
        int64_t end = br_budget_day_end(e->budget, now);
        if (e->budget_hold != end) {
            time_t t = (time_t)(end / 1000);
            struct tm tm;
            char when[32];
            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            e->budget_hold = end;
            br_upstream_hold_until(e->tracker_up, end);
            br_warn("tracker: %llu request(s) today reach tracker.daily_quota (%ld): nothing more goes to %s "
                    "until the day ends, at %s (in %lld s); jobs wait",
                    (unsigned long long)br_budget_used_today(e->budget, now), br_budget_quota(e->budget),
                    e->gen->cfg->tracker->label, when, (long long)((end - now + 999) / 1000));
        }
    } else if (e->budget_hold != 0) {
        br_info("tracker: tracker.daily_quota (%ld) is above today's %llu request(s): requests go on",
                br_budget_quota(e->budget), (unsigned long long)br_budget_used_today(e->budget, now));
        e->budget_hold = 0;
        br_upstream_hold_until(e->tracker_up, 0);
        br_queue_undry(e->queue);
        br_queue_wake(e->queue);
    }
}

/* The tracker's upstream sent a request: it counts. */
static void
on_tracker_sent(void *arg)
{
    struct br_engine *e = arg;
    int64_t now = br_now_ms();

    br_budget_spend(e->budget, now);
    br_engine_check_budget(e, now);
}

static void
on_tracker_told_left(void *arg, long left)
{
    struct br_engine *e = arg;

    br_budget_told_left(e->budget, left);
}

void
br_engine_budget_attach(struct br_engine *e, const struct br_config *cfg)
{
    /* Only the tracker's requests count against its daily quota. */
    e->budget = br_budget_new(e->store, cfg->tracker_daily_quota, br_now_ms());
    br_upstream_on_sent(e->tracker_up, on_tracker_sent, e);
    br_upstream_on_told_left(e->tracker_up, on_tracker_told_left, e);
    /* The messages' wait widens as the day's projected use nears the quota (batching.h). */
    e->batching.budget = batching_budget;
    e->batching.budget_arg = e;
}
