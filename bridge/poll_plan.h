/*
 * poll_plan.h - when the tracker is polled for replies, decided without
 * a store, a loop or a server (tests/unit/test_poll_plan.c).  The engine
 * asks at each check (every tracker.poll_interval_s) with what it knows,
 * keeps the interval the answer puts in force, and queues a poll job when
 * the answer says so.
 *
 * The poll costs nothing when nothing happens:
 *  - no task open in the tracker: no poll at all;
 *  - a tracker with reply webhooks (Planfix): polled only while an open
 *    task's conversation was active within BR_POLL_ACTIVE_MS (a message,
 *    a reply, a tracker webhook), and once after a start (the webhooks
 *    sent while the bridge was down are lost).  While tracker webhooks
 *    come in, the interval doubles after each poll that found nothing
 *    they had not brought, up to BR_POLL_WEBHOOK_FACTOR intervals; a poll
 *    that finds what no webhook brought sets it back to poll_interval_s;
 *  - a tracker without webhooks (Redmine): polled while any task is open,
 *    every poll_interval_s while one is active, otherwise doubling after
 *    each poll that found nothing, up to BR_POLL_QUIET_MAX_MS, so that a
 *    late reply still arrives within that time.
 * Each poll reads from where the last one that went through ended
 * (jobs/fetch.c), so a pause or a long interval misses nothing.
 *
 * Pure functions, any thread.
 */
#ifndef BR_POLL_PLAN_H
#define BR_POLL_PLAN_H

#include <stdbool.h>
#include <stdint.h>

/* How long a conversation counts as active after its last message, reply or tracker webhook. */
#define BR_POLL_ACTIVE_MS (60 * 60 * 1000)
/* With webhooks: the longest interval, in poll_interval_s. */
#define BR_POLL_WEBHOOK_FACTOR 16
/* Without webhooks: the longest interval while no open task is active (or poll_interval_s if longer). */
#define BR_POLL_QUIET_MAX_MS (15 * 60 * 1000)

/* What the last poll found, once it has ended. */
enum br_poll_found {
    BR_POLL_FOUND_UNKNOWN = 0, /* no poll ended since the last decision */
    BR_POLL_FOUND_NOTHING,     /* nothing the webhooks (or earlier reads) had not already brought */
    BR_POLL_FOUND_NEW,         /* a comment or change nothing else had brought */
};

/* What the engine knows at a check. */
struct br_poll_facts {
    int64_t interval_ms;       /* tracker.poll_interval_s (0: the poll is off) */
    bool polled_only;          /* replies arrive by polling alone (the kind's polled_only) */
    bool open;                 /* some conversation's task is open in the tracker */
    bool active;               /* ... and one of those was active within BR_POLL_ACTIVE_MS */
    bool webhooks;             /* a tracker webhook arrived within BR_POLL_ACTIVE_MS */
    enum br_poll_found found;  /* what the poll that ended since the last decision found */
    int64_t since_ms;          /* since the last poll was queued (-1: none since the bridge started) */
    int64_t step_ms;           /* the interval in force (0: not polling) */
};

struct br_poll_plan {
    bool poll;                 /* queue a poll now */
    int64_t step_ms;           /* the interval in force from now on (0: not polling) */
};

struct br_poll_plan br_poll_decide(const struct br_poll_facts *f);

#endif
