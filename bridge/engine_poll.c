/*
 * engine_poll.c - the tracker poll in the engine: a check every
 * poll_interval_s asks the plan (poll_plan.h) whether to queue a poll job
 * now, from what the store and the engine know.
 */
#include "engine.h"
#include "engine_impl.h"

#include "log.h"
#include "poll_plan.h"
#include "queue.h"
#include "store.h"
#include "tracker.h"

/*
 * The tracker poll: a safety net for reply webhooks that never came
 * (Redmine: the only way).  Every poll_interval_s a check asks the plan
 * (poll_plan.h) whether to poll now; a check that does not poll costs two
 * indexed queries and no request.
 */
static void
on_poll(uv_timer_t *t)
{
    struct br_engine *e = t->data;
    struct br_poll_facts f = {0};
    struct br_poll_plan p;
    int64_t now = br_now_ms(), ended;

    if (e->closing || br_store_failing(e->store) || br_queue_waiting(e->queue, 'p', 0, "poll"))
        return;
    f.interval_ms = (int64_t)e->poll_s * 1000;
    f.polled_only = e->gen->env.tracker->ops->kind->polled_only;
    if (br_store_tasks_open(e->store, now - BR_POLL_ACTIVE_MS, &f.open, &f.active) != 0)
        return;
    f.webhooks = e->webhook_at > 0 && now - e->webhook_at < BR_POLL_ACTIVE_MS;
    /* A poll that went through wrote where it started; "poll_found" the same when it found something new. */
    ended = br_store_meta_int(e->store, "poll_since", 0);
    if (ended != e->poll_counted) {
        f.found = br_store_meta_int(e->store, "poll_found", 0) == ended ? BR_POLL_FOUND_NEW : BR_POLL_FOUND_NOTHING;
        e->poll_counted = ended;
    }
    f.since_ms = e->poll_queued_at > 0 ? now - e->poll_queued_at : -1;
    f.step_ms = e->poll_step_ms;
    p = br_poll_decide(&f);
    if (p.step_ms != e->poll_step_ms) {
        if (p.step_ms == 0)
            br_info("poll: paused: %s", f.open ? "no open task is active" : "no task is open");
        else
            br_log(e->poll_step_ms == 0 ? BR_LOG_INFO : BR_LOG_DEBUG, "poll: every %lld s",
                   (long long)(p.step_ms / 1000));
        e->poll_step_ms = p.step_ms;
    }
    if (p.poll && BR_STORE_TX(e->store, br_env_add_job(&e->gen->env, 'p', "tracker", "poll", 0, json_object())) == 0) {
        e->poll_queued_at = now;
        br_queue_wake(e->queue);
    }
}

/* The poll's check every interval_s seconds (0: none); an unchanged interval keeps its timer's phase. */
void
br_engine_set_poll(struct br_engine *e, long interval_s)
{
    if (interval_s == e->poll_s)
        return;
    e->poll_s = interval_s;
    e->poll_step_ms = 0; /* the plan starts again from the new interval */
    uv_timer_stop(&e->poll);
    if (interval_s > 0)
        uv_timer_start(&e->poll, on_poll, (uint64_t)interval_s * 1000, (uint64_t)interval_s * 1000);
}
