/*
 * engine.c - the bridge's work on the loop: webhooks stored in the inbox
 * are applied, jobs are handed to their upstreams, and the housekeeping
 * tick keeps it all going; config generations (reload.h) and the
 * upstreams live here too.  The daily quota is engine_budget.c, the
 * poll engine_poll.c, what it shows engine_status.c.
 */
#include "engine.h"
#include "engine_impl.h"

#include "budget.h"
#include "config.h"
#include "conversation.h"
#include "crm.h"
#include "employees.h"
#include "env.h"
#include "jobs/jobs.h"
#include "log.h"
#include "queue.h"
#include "store.h"
#include "tracker.h"
#include "upstream.h"

#include <stdlib.h>
#include <string.h>

/*
 * How the engine is driven:
 *  - br_engine_kick (after a webhook was committed) starts the work timer
 *    at once, or, while webhooks keep coming, a little later;
 *  - the housekeeping tick (every TICK_MS) runs the same work: it picks up
 *    jobs whose backoff has expired and inbox rows left by a crash;
 *  - the wake: a job that waits for its time and comes due before the
 *    next tick starts at that time (arm_wake).
 * The work is: apply pending inbox rows (conversation.c), then hand ready
 * jobs to their upstreams (queue.c; each upstream keeps its own rate).
 *
 * Acknowledging a webhook (committing it to the inbox) comes first: it is
 * what the sender waits for.  Applying inbox rows costs more, so while
 * webhooks keep coming it runs in short slices (SLICE_BUSY_MS every
 * BUSY_DELAY_MS, about a tenth of the loop) and catches up at full speed
 * (SLICE_IDLE_MS slices back to back) once they stop.  The inbox is
 * durable, so nothing waits on this but the tracker.
 */
#define TICK_MS 200
#define INBOX_BATCH 256        /* inbox rows applied per work at most */
#define APPLY_BATCH 64         /* inbox rows applied in one transaction */
#define BUSY_WINDOW_MS 100     /* this many webhooks within one or two windows ... */
#define BUSY_EVENTS 20         /* ... (200 a second) mean more are coming */
#define BUSY_DELAY_MS 10
#define SLICE_BUSY_MS 1
#define SLICE_IDLE_MS 50
/*
 * "As soon as possible" is one millisecond: libuv 1.44 runs a timer
 * started with 0 from a timer callback again in the same pass, before any
 * I/O, so the work would starve the webhooks it is meant to leave room for.
 */
#define NEXT_ITERATION_MS 1

/*
 * Applies inbox rows for up to budget_ms; returns 1 when rows are left
 * for the next slice.  Rows are applied APPLY_BATCH to a transaction (one
 * commit for many rows); when a batch fails, its rows are applied again
 * one by one, so that a row that cannot be applied holds up only itself.
 */
static int
process_inbox(struct br_engine *e, uint64_t budget_ms)
{
    uint64_t until = uv_hrtime() + budget_ms * 1000000ULL;
    int total = 0;

    while (total < INBOX_BATCH && !e->closing) {
        int batch = e->inbox_solo > 0 ? 1 : APPLY_BATCH;
        int n = 0, rc = 0, empty = 0;
        int64_t failed = 0;

        if (total > 0 && uv_hrtime() >= until)
            return 1;
        if (br_store_begin(e->store))
            return 0;
        while (n < batch) {
            struct br_inbox_row row;
            rc = br_store_inbox_next(e->store, &row);
            if (rc) {
                empty = rc == BR_ENOTFOUND;
                rc = empty ? 0 : rc;
                break;
            }
            rc = br_conversation_apply(&e->gen->env, &row);
            if (row.kind == BR_INBOX_TRACKER)
                e->webhook_at = br_now_ms(); /* the tracker's webhooks work: the poll may wait longer */
            failed = row.id;
            br_inbox_row_dispose(&row);
            if (rc)
                break;
            n++;
            if (uv_hrtime() >= until)
                break;
        }
        if (rc == 0 && n > 0)
            rc = br_store_commit(e->store);
        else if (rc == 0) {
            br_store_rollback(e->store);
            return 0; /* the inbox is empty */
        }
        if (rc) {
            br_store_rollback(e->store);
            if (batch > 1) {
                e->inbox_solo = n + 1; /* up to the failing row, one by one */
                continue;
            }
            /* A store that refuses writes said so once; the tick takes it up again. */
            br_log(br_store_failing(e->store) ? BR_LOG_DEBUG : BR_LOG_ERROR,
                   "inbox %lld: cannot apply event: %s; will retry", (long long)failed, br_strerror(rc));
            return 0;
        }
        if (e->inbox_solo > 0)
            e->inbox_solo -= n;
        total += n;
        if (empty)
            return 0;
    }
    return 1;
}

/* Rolls the webhook count over to a new window when the current one is over. */
static void
intake_roll(struct br_engine *e, uint64_t now)
{
    if (now - e->intake_window >= BUSY_WINDOW_MS) {
        e->intake_prev = now - e->intake_window < 2 * BUSY_WINDOW_MS ? e->intake_n : 0;
        e->intake_n = 0;
        e->intake_window = now;
    }
}

static bool
intake_busy(struct br_engine *e)
{
    intake_roll(e, uv_now(e->loop));
    return e->intake_n + e->intake_prev >= BUSY_EVENTS;
}

static void on_work(uv_timer_t *t);
static void arm_wake(struct br_engine *e);

static void
work(struct br_engine *e)
{
    bool busy;

    /*
     * While the store refuses writes, applying events and starting jobs
     * would only fail: the tick tries the store and takes up from there.
     */
    if (e->closing || br_store_failing(e->store))
        return;
    busy = intake_busy(e);
    if (process_inbox(e, busy ? SLICE_BUSY_MS : SLICE_IDLE_MS))
        uv_timer_start(&e->work, on_work, busy ? BUSY_DELAY_MS : NEXT_ITERATION_MS, 0);
    br_queue_dispatch(e->queue);
    arm_wake(e);
}

static void
on_wake(uv_timer_t *t)
{
    struct br_engine *e = t->data;

    br_queue_undry(e->queue); /* its time has come: the store is asked again */
    work(e);
}

/*
 * A job that waits for its time (a burst's coalesce_ms, a backoff, a new
 * task's short wait for Chatra's visitor data) starts when it comes due,
 * not at the next tick: the wake is set for the earliest one due before
 * the tick.  One indexed look per upstream.
 */
static void
arm_wake(struct br_engine *e)
{
    int64_t now = br_now_ms();
    int64_t due = br_queue_next_due(e->queue, now);

    if (due > 0 && due - now < TICK_MS)
        uv_timer_start(&e->wake, on_wake, (uint64_t)(due - now), 0);
}

static void
on_work(uv_timer_t *t)
{
    work(t->data);
}

/*
 * Work as soon as the loop is free, or, while webhooks keep coming, at
 * the next slice (a work already due stays where it is).
 */
static void
schedule_work(struct br_engine *e)
{
    if (e->closing)
        return;
    if (!intake_busy(e))
        uv_timer_start(&e->work, on_work, NEXT_ITERATION_MS, 0);
    else if (!uv_is_active((uv_handle_t *)&e->work))
        uv_timer_start(&e->work, on_work, BUSY_DELAY_MS, 0);
}

/* The queue's wake: a job ended or was added, its lane may have a next one. */
static void
on_queue_wake(void *arg)
{
    schedule_work(arg);
}

void
br_engine_kick(struct br_engine *e, size_t events)
{
    intake_roll(e, uv_now(e->loop));
    e->intake_n += (unsigned)events;
    schedule_work(e);
}

/* ---- generations (reload.h) ------------------------------------------------ */

/* A generation for cfg: its tracker driver is made first, as nothing else of it can fail. */
static int
gen_new(struct br_engine *e, struct br_config *cfg, struct generation **out)
{
    struct generation *g = br_calloc(1, sizeof(*g));
    int rc = br_tracker_new(&g->env.tracker, cfg, e->tracker_up);

    if (rc) {
        free(g);
        return rc;
    }
    g->cfg = br_config_ref(cfg);
    g->env.cfg = cfg;
    g->env.store = e->store;
    g->env.company_busy = e->company_busy;
    g->env.batching = &e->batching;
    *out = g;
    return 0;
}

static void
gen_free(struct generation *g)
{
    br_tracker_free(g->env.tracker);
    br_crm_free(g->env.crm);
    br_employees_free(g->env.employees);
    br_config_free(g->cfg);
    free(g);
}

/*
 * Makes g the generation of new work.  What the tracker driver learned of
 * the tracker's clock goes on from the generation before (at start: from
 * the store); the employees' users are read from the store's cache, and
 * those without one are looked up again.  The generation before is
 * retired: the jobs running with it finish with it.
 */
static void
gen_start(struct br_engine *e, struct generation *g)
{
    struct generation *prev = e->gen;

    g->env.queue = e->queue;
    g->env.tracker->up = e->tracker_up;
    if (g->cfg->crm && e->crm_up)
        br_crm_new(&g->env.crm, g->cfg, e->crm_up);
    if (prev)
        g->env.tracker->clock = prev->env.tracker->clock;
    else
        br_jobs_load_tracker_clock(&g->env);
    br_queue_set_env(e->queue, &g->env, g->cfg);
    if (prev) {
        prev->next = e->retired;
        e->retired = prev;
    }
    e->gen = g;
    br_employees_new(&g->env);
}

/* Frees the retired generations that no running job holds any more. */
static void
sweep(struct br_engine *e)
{
    struct generation **pp = &e->retired;

    while (*pp) {
        struct generation *g = *pp;
        if (br_queue_holds(e->queue, &g->env)) {
            pp = &g->next;
            continue;
        }
        *pp = g->next;
        br_debug("engine: an older config is released: no job runs with it any more");
        gen_free(g);
    }
}

/*
 * Housekeeping, every TICK_MS:
 *  - frees the configs of earlier generations once no job holds them
 *    (here, not when their last job ends: the driver that called the job
 *    back may still be on the stack then);
 *  - after the store refused a write, tries it until it takes writes
 *    again, then takes up what it could not record (br_queue_settle);
 *    until then nothing else is done;
 *  - the tracker's count of requests today goes to the store (at most a
 *    second late), and its hold for a spent quota ends with the day;
 *  - retries whose backoff expired and anything a kick missed (work);
 *  - retention: texts of chats closed longer ago than retention_days go,
 *    checked every tenth of the retention period, at most once a minute;
 *  - employees' tracker users found by e-mail are confirmed once a week;
 *  - the CRM's answers older than enrich's cache_ttl_s are removed, once a minute;
 *  - the tracker's backlog is counted for the messages' wait (batching.h), once a second.
 */
static void
on_tick(uv_timer_t *t)
{
    struct br_engine *e = t->data;
    const struct br_config *cfg = e->gen->cfg;

    sweep(e);
    if (br_queue_settle(e->queue) != 0)
        return;
    if (!e->closing) {
        int64_t now = br_now_ms();
        br_budget_flush(e->budget, now);
        br_engine_check_budget(e, now);
    }
    br_queue_undry(e->queue); /* backoffs may have run out */
    work(e);
    if (!e->closing)
        br_batching_refresh(&e->batching, e->store, cfg, br_now_ms());
    if (!e->closing)
        br_employees_refresh(&e->gen->env);
    if (cfg->retention_days > 0 && !e->closing) {
        int64_t keep = (int64_t)(cfg->retention_days * 86400.0 * 1000.0);
        int64_t every = keep / 10 < 60000 ? keep / 10 : 60000;
        int64_t now = br_now_ms();
        if (now - e->last_retention >= every) {
            int64_t n = 0;
            e->last_retention = now;
            if (br_store_forget_before(e->store, now - keep, &n) == 0 && n > 0)
                br_info("retention: removed the texts of %lld message(s) of chats closed over %g days ago",
                        (long long)n, cfg->retention_days);
        }
    }
    if (!e->closing && br_now_ms() - e->last_crm_prune >= 60000) {
        /* Without enrich nothing is kept any longer. */
        e->last_crm_prune = br_now_ms();
        BR_STORE_TX(e->store, br_store_crm_cache_prune(e->store, e->last_crm_prune -
                                                              (cfg->crm ? (int64_t)cfg->crm_cache_ttl_s * 1000 : 0)));
    }
}

static struct br_upstream *
find_upstream(struct br_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_ups; i++)
        if (strcmp(e->ups[i].name, name) == 0)
            return e->ups[i].up;
    return NULL;
}

/* The upstream name at rps: made when new, else its rate changed (its pauses and spacing go on). */
static struct br_upstream *
set_upstream(struct br_engine *e, const char *name, double rps, int depth)
{
    struct br_upstream *up = find_upstream(e, name);
    struct engine_up *u;

    if (up) {
        br_upstream_set_rate(up, rps);
        /* A reload may bring the right key: a refused one is tried again at once. */
        br_upstream_refused_lift(up);
        return up;
    }
    e->ups = br_realloc(e->ups, (e->n_ups + 1) * sizeof(*e->ups));
    u = &e->ups[e->n_ups++];
    u->name = br_strdup(name);
    br_upstream_new(&u->up, e->loop, e->http, name, rps, depth);
    br_queue_add_upstream(e->queue, name, u->up);
    return u->up;
}

static void
on_crm_depth(void *arg, const char *upstream, int state, int64_t count, int64_t oldest_at)
{
    (void)oldest_at;
    if (strcmp(upstream, "crm") == 0 && state != BR_JOB_DEAD && count > 0)
        *(bool *)arg = true;
}

/* The tracker's upstream and each channel's Chatra upstream, as cfg says. */
static void
set_upstreams(struct br_engine *e, const struct br_config *cfg)
{
    e->tracker_up = set_upstream(e, "tracker", cfg->tracker_rps, 1);
    /*
     * The CRM's own budget: its look-ups never take the tracker's.  Without
     * enrich it is made only for look-ups an earlier run left (they end at
     * once, asking nothing).
     */
    if (cfg->crm) {
        e->crm_up = set_upstream(e, "crm", cfg->crm_rps, 4);
    } else if (e->crm_up == NULL) {
        bool left = false;
        br_store_job_depths(e->store, on_crm_depth, &left);
        if (left)
            e->crm_up = set_upstream(e, "crm", 1, 4);
    }
    for (size_t i = 0; i < cfg->n_channels; i++) {
        char *name = br_asprintf("chatra:%s", cfg->channels[i].name);
        set_upstream(e, name, cfg->channels[i].chatra_rps, 2);
        free(name);
    }
}

int
br_engine_new(struct br_engine **out, uv_loop_t *loop, struct br_config *cfg, struct br_store *store,
              struct br_http_client *http)
{
    struct br_engine *e = br_calloc(1, sizeof(*e));
    struct generation *g;
    int64_t recovered = 0;
    int rc;

    e->loop = loop;
    e->http = http;
    e->store = store;
    /* The driver first: nothing is registered with the loop yet if it cannot be made. */
    if ((rc = gen_new(e, cfg, &g)) != 0) {
        free(e);
        return rc;
    }
    e->queue = br_queue_new(cfg, store, NULL, br_jobs_start, on_queue_wake, e);
    set_upstreams(e, cfg);
    br_engine_budget_attach(e, cfg);
    uv_timer_init(loop, &e->work);
    uv_timer_init(loop, &e->tick);
    uv_timer_init(loop, &e->wake);
    e->work.data = e;
    e->tick.data = e;
    e->wake.data = e;
    br_store_job_recover_inflight(store, &recovered);
    if (recovered)
        br_info("engine: %lld job(s) were in flight when the bridge stopped; they check before writing again",
                (long long)recovered);
    gen_start(e, g);
    br_engine_check_budget(e, br_now_ms()); /* a restart on a day whose quota is spent */
    uv_timer_start(&e->tick, on_tick, TICK_MS, TICK_MS);
    uv_timer_init(loop, &e->poll);
    e->poll.data = e;
    /* The last poll before the stop is not news (the plan polls once after a start when a task is open). */
    e->poll_counted = br_store_meta_int(store, "poll_since", 0);
    br_engine_set_poll(e, cfg->poll_interval_s);
    uv_timer_start(&e->work, on_work, 0, 0);
    *out = e;
    return 0;
}

int
br_engine_reload(struct br_engine *e, struct br_config *cfg)
{
    struct generation *g;
    int rc;

    if (e->closing)
        return BR_ECANCELED;
    if ((rc = gen_new(e, cfg, &g)) != 0)
        return rc;
    set_upstreams(e, cfg);
    gen_start(e, g);
    if (cfg->tracker_daily_quota != br_budget_quota(e->budget)) {
        br_info("reload: tracker.daily_quota %ld -> %ld", br_budget_quota(e->budget), cfg->tracker_daily_quota);
        br_budget_set_quota(e->budget, cfg->tracker_daily_quota);
        br_engine_check_budget(e, br_now_ms());
    }
    br_engine_set_poll(e, cfg->poll_interval_s);
    /* A new channel's jobs, or a faster rate: look at every upstream again. */
    br_queue_undry(e->queue);
    schedule_work(e);
    return 0;
}

void
br_engine_wake(struct br_engine *e)
{
    br_queue_undry(e->queue);
    schedule_work(e);
}

static void
closed_one(void *arg)
{
    struct br_engine *e = arg;
    if (--e->pending_closes == 0 && e->close_done)
        e->close_done(e->close_arg);
}

static void
closed_handle(uv_handle_t *h)
{
    closed_one(h->data);
}

void
br_engine_close(struct br_engine *e, void (*done)(void *arg), void *arg)
{
    /* Outcomes still kept go to the store now if it takes them; else the next start recovers those jobs. */
    if (br_queue_settle(e->queue) != 0 && br_queue_unrecorded(e->queue) > 0)
        br_warn("engine: the store still refuses writes: %zu job outcome(s) are lost; those jobs look in the tracker "
                "before writing again at the next start", br_queue_unrecorded(e->queue));
    e->closing = 1;
    br_queue_close(e->queue);
    e->close_done = done;
    e->close_arg = arg;
    e->pending_closes = 4 + (int)e->n_ups;
    uv_close((uv_handle_t *)&e->poll, closed_handle);
    uv_close((uv_handle_t *)&e->work, closed_handle);
    uv_close((uv_handle_t *)&e->tick, closed_handle);
    uv_close((uv_handle_t *)&e->wake, closed_handle);
    for (size_t i = 0; i < e->n_ups; i++)
        br_upstream_close(e->ups[i].up, closed_one, e);
}

void
br_engine_free(struct br_engine *e)
{
    if (e == NULL)
        return;
    /* The loop has ended: no job runs, every generation goes. */
    while (e->retired) {
        struct generation *g = e->retired;
        e->retired = g->next;
        gen_free(g);
    }
    if (e->gen)
        gen_free(e->gen);
    br_queue_free(e->queue);
    br_budget_free(e->budget); /* the last requests' count, to the store */
    for (size_t i = 0; i < BR_ARRAY_SIZE(e->company_busy); i++)
        free(e->company_busy[i]);
    for (size_t i = 0; i < e->n_ups; i++) {
        br_upstream_free(e->ups[i].up);
        free(e->ups[i].name);
    }
    free(e->ups);
    free(e);
}
