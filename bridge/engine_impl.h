/*
 * engine_impl.h - what the engine's files share: the engine itself and
 * the calls one of them makes into another.  Internal to the engine
 * (engine.c: the work, the tick, generations and upstreams;
 * engine_budget.c: the tracker's daily quota; engine_poll.c: the
 * tracker poll; engine_status.c: what /healthz and the admin page read).
 * Everything else uses engine.h.  Loop thread only.
 */
#ifndef BR_ENGINE_IMPL_H
#define BR_ENGINE_IMPL_H

#include "batching.h"
#include "env.h"

#include <stdint.h>
#include <uv.h>

/*
 * An upstream the engine made: the tracker's or a channel's Chatra
 * account.  They outlive generations: a reload keeps their pauses and
 * spacing and only changes their rates; a channel a reload adds gets its
 * own, and one it removes keeps its own until the next start.
 */
struct engine_up {
    char *name;                /* "tracker" or "chatra:<channel>" */
    struct br_upstream *up;
};

/*
 * A config generation (see reload.h): the config, one reference held, and
 * the env made from it (env.h).  New work takes e->gen; the older ones
 * wait in e->retired until no running job holds them (the tick frees them).
 */
struct generation {
    struct br_env env;
    struct br_config *cfg;
    struct generation *next;   /* in e->retired */
};

struct br_engine {
    uv_loop_t *loop;
    struct br_http_client *http;
    uv_timer_t work;
    uv_timer_t tick;
    uv_timer_t wake;           /* the next job waiting for its time, when it comes before the tick */
    uv_timer_t poll;           /* the poll's check (poll_plan.h), every poll_interval_s */
    long poll_s;               /* that interval (0: the poll is off) */
    int64_t poll_step_ms;      /* the poll's interval in force (0: not polling) */
    int64_t poll_queued_at;    /* when the last poll was queued (0: none since the start) */
    int64_t poll_counted;      /* the last poll (its "poll_since") whose findings the plan has had */
    int64_t webhook_at;        /* when the last tracker webhook was applied (0: none since the start) */
    struct br_store *store;
    struct br_queue *queue;
    struct generation *gen;    /* the config and what is made from it, for new work */
    struct generation *retired; /* older generations that running jobs still hold */
    struct br_upstream *tracker_up;
    struct br_budget *budget;  /* the tracker's requests today, against tracker.daily_quota */
    int64_t budget_hold;       /* the end of the day the tracker is held for its spent quota, 0: not held */
    struct br_upstream *crm_up;   /* enrich's CRM, made when a config first has one */
    char *company_busy[BR_ENV_COMPANY_SLOTS]; /* env.h: shared by every generation */
    /*
     * How long messages wait for the next ones (batching.h), shared by
     * every generation.  Its budget hook (batching.budget) is where the
     * day's quota comes in; without it the wait follows the backlog only.
     */
    struct br_batching batching;
    struct engine_up *ups;
    size_t n_ups;
    int closing;
    int pending_closes;
    int64_t last_retention;
    int64_t last_crm_prune;
    uint64_t intake_window;    /* start of the current BUSY_WINDOW_MS window */
    unsigned intake_n, intake_prev; /* webhooks in this window and in the one before */
    int inbox_solo;            /* rows still to apply one at a time after a failed batch */
    void (*close_done)(void *);
    void *close_arg;
};

/* The budget made for cfg and hooked to the tracker's upstream and the messages' wait (engine_budget.c). */
void br_engine_budget_attach(struct br_engine *e, const struct br_config *cfg);
/* Holds the tracker while today's quota is spent, and lifts the hold when it is not (engine_budget.c). */
void br_engine_check_budget(struct br_engine *e, int64_t now);

/* The poll's check every interval_s seconds, 0: none (engine_poll.c). */
void br_engine_set_poll(struct br_engine *e, long interval_s);

#endif
