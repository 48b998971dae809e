/*
 * batching.c - how long a message waits for the next ones (batching.h).
 */
#include "batching.h"

#include "config.h"
#include "log.h"
#include "store.h"

#define REFRESH_MS 1000        /* the backlog is counted at most this often */
#define LOG_EVERY_MS 10000     /* a change of the wait is logged at most this often */

int64_t
br_batching_wait_ms(const struct br_batching_in *in)
{
    int64_t base = in->coalesce_ms > 0 ? in->coalesce_ms : 0;
    int64_t max = in->coalesce_max_ms;
    int64_t wait = base;

    /* coalesce_ms 0 asks for every message at once: it never waits. */
    if (base == 0 || max <= base)
        return base;
    /* The backlog: a message sent now would wait this long behind it anyway. */
    if (in->backlog > 0 && in->rps > 0) {
        double drain = (double)in->backlog * 1000.0 / in->rps;
        if (drain > (double)wait)
            wait = drain >= (double)max ? max : (int64_t)(drain + 0.5);
    }
    /* The budget: from 80% of the quota projected the wait ramps up to the widest at 100%. */
    if (in->quota > 0 && in->projected > 0) {
        double share = in->projected / (double)in->quota;
        int64_t w = base;
        if (share >= BR_BATCHING_QUOTA_FULL)
            w = max;
        else if (share > BR_BATCHING_QUOTA_FROM)
            w = base + (int64_t)((double)(max - base) * (share - BR_BATCHING_QUOTA_FROM) /
                                 (BR_BATCHING_QUOTA_FULL - BR_BATCHING_QUOTA_FROM) + 0.5);
        if (w > wait)
            wait = w;
    }
    return wait > max ? max : wait;
}

static struct br_batching_in
inputs(const struct br_batching *b, const struct br_config *cfg)
{
    struct br_batching_in in = {0};

    in.coalesce_ms = cfg->coalesce_ms;
    in.coalesce_max_ms = (int64_t)cfg->coalesce_max_s * 1000;
    in.rps = cfg->tracker_rps;
    if (b) {
        in.backlog = b->backlog;
        in.projected = b->projected;
        in.quota = b->quota;
    }
    return in;
}

int64_t
br_batching_current_ms(const struct br_batching *b, const struct br_config *cfg)
{
    struct br_batching_in in = inputs(b, cfg);
    return br_batching_wait_ms(&in);
}

void
br_batching_refresh(struct br_batching *b, struct br_store *store, const struct br_config *cfg, int64_t now_ms)
{
    int64_t n = 0, wait;
    bool wide;

    if (b->refreshed_at != 0 && now_ms - b->refreshed_at < REFRESH_MS && now_ms >= b->refreshed_at)
        return;
    b->refreshed_at = now_ms;
    /* A store that cannot answer keeps the last count. */
    if (br_store_job_backlog(store, "tracker", now_ms, &n) == 0)
        b->backlog = n;
    b->projected = 0;
    b->quota = 0;
    if (b->budget)
        b->budget(b->budget_arg, now_ms, &b->projected, &b->quota);
    wait = br_batching_current_ms(b, cfg);
    wide = wait > cfg->coalesce_ms;
    if (wide == b->wide_logged || now_ms - b->logged_at < LOG_EVERY_MS)
        return;
    b->wide_logged = wide;
    b->logged_at = now_ms;
    if (wide && b->quota > 0)
        br_info("batching: the tracker is behind (%lld job(s) ready, %.0f of %ld requests projected today): "
                "messages wait %.1f s for the next ones (coalesce_ms %ld)",
                (long long)b->backlog, b->projected, b->quota, (double)wait / 1000.0, cfg->coalesce_ms);
    else if (wide)
        br_info("batching: the tracker is behind (%lld job(s) ready): messages wait %.1f s for the next ones "
                "(coalesce_ms %ld)", (long long)b->backlog, (double)wait / 1000.0, cfg->coalesce_ms);
    else
        br_info("batching: the tracker keeps up again: messages wait coalesce_ms (%ld ms)", cfg->coalesce_ms);
}
