/*
 * poll_plan.c - when the tracker is polled (poll_plan.h).
 */
#include "poll_plan.h"

static int64_t
doubled(int64_t step, int64_t max)
{
    return step >= max / 2 ? max : step * 2;
}

struct br_poll_plan
br_poll_decide(const struct br_poll_facts *f)
{
    struct br_poll_plan p = {false, 0};
    int64_t base = f->interval_ms, step, max;

    if (base <= 0 || !f->open)
        return p; /* off, or no task a reply could come to */
    if (!f->polled_only && !f->active) {
        /*
         * Replies to quiet tasks come by webhook.  A start polls once all
         * the same: what was sent while the bridge was down is read now.
         */
        p.poll = f->since_ms < 0;
        return p;
    }
    step = f->step_ms > 0 ? f->step_ms : base;
    if (f->polled_only) {
        max = base > BR_POLL_QUIET_MAX_MS ? base : BR_POLL_QUIET_MAX_MS;
        if (f->active || f->found == BR_POLL_FOUND_NEW)
            step = base;
        else if (f->found == BR_POLL_FOUND_NOTHING)
            step = doubled(step, max);
    } else {
        /* Without webhooks coming in, nothing shows they work: the poll stays at its interval. */
        max = base * BR_POLL_WEBHOOK_FACTOR;
        if (f->found == BR_POLL_FOUND_NEW || !f->webhooks)
            step = base;
        else if (f->found == BR_POLL_FOUND_NOTHING)
            step = doubled(step, max);
    }
    if (step > max)
        step = max; /* a shorter interval after a reload */
    p.step_ms = step;
    /* Checks come every interval: the one nearest the end of the step polls. */
    p.poll = f->since_ms < 0 || f->since_ms + base / 2 >= step;
    return p;
}
