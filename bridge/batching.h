/*
 * batching.h - how long a message waits for the ones typed after it
 * before it goes to the tracker (one comment carries them all).
 *
 * When the tracker keeps up, a message waits tracker.coalesce_ms.  When it
 * falls behind (the jobs ready for it would take longer than coalesce_ms
 * to send at its request rate) or the day's projected use nears the daily
 * quota, the wait widens, up to tracker.coalesce_max_s, so that more
 * messages share one request; it narrows again as soon as that passes.
 * br_batching_wait_ms is the rule, pure; struct br_batching is the state
 * it is fed from: the engine owns one, refreshes it from its tick (at most
 * once a second: no count on the webhook's path) and every generation's
 * env points to it.  Loop thread only.
 */
#ifndef BR_BATCHING_H
#define BR_BATCHING_H

#include <stdbool.h>
#include <stdint.h>

struct br_config;
struct br_store;

struct br_batching_in {
    int64_t coalesce_ms;       /* the wait when the tracker keeps up */
    int64_t coalesce_max_ms;   /* the widest (0, or below coalesce_ms: never wider) */
    int64_t backlog;           /* tracker jobs ready and waiting */
    double rps;                /* the tracker's requests per second */
    double projected;          /* today's projected use of the daily quota, requests (0: unknown) */
    long quota;                /* the daily quota, requests (0: none) */
};

/* Where the budget's ramp starts: the wait widens from this share of the quota ... */
#define BR_BATCHING_QUOTA_FROM 0.8
/* ... and is the widest from this one on. */
#define BR_BATCHING_QUOTA_FULL 1.0

/*
 * The wait, in ms: the widest of coalesce_ms, the backlog's drain time at
 * rps and the budget's ramp (coalesce_ms at 80% of the quota projected,
 * coalesce_max at 100% and over, in proportion between), never above
 * coalesce_max.  coalesce_ms 0 (every message at once) is never wider.
 */
int64_t br_batching_wait_ms(const struct br_batching_in *in);

/*
 * The day's budget, when there is one: its projected use (requests) and
 * its quota at now_ms.  Both 0: no budget.
 */
typedef void (*br_batching_budget_cb)(void *arg, int64_t now_ms, double *projected, long *quota);

struct br_batching {
    int64_t backlog;           /* tracker jobs ready and waiting at the last refresh */
    double projected;          /* the budget's figures at the last refresh (0: none) */
    long quota;
    int64_t refreshed_at;      /* ms, 0 never */
    br_batching_budget_cb budget; /* NULL: no budget (the wait follows the backlog only) */
    void *budget_arg;
    bool wide_logged;          /* what the log said last: wider than coalesce_ms or not */
    int64_t logged_at;
};

/*
 * Counts the tracker's ready jobs and asks the budget again, at most once
 * a second; logs (at most every ten seconds) when the wait widens or
 * narrows back.  cfg is the newest config.
 */
void br_batching_refresh(struct br_batching *b, struct br_store *store, const struct br_config *cfg, int64_t now_ms);
/* The wait for a message queued now, with cfg's coalesce_ms and coalesce_max_s (b may be NULL: coalesce_ms). */
int64_t br_batching_current_ms(const struct br_batching *b, const struct br_config *cfg);

#endif
