/*
 * engine_status.c - what the engine shows: its upstreams, their health,
 * the tracker's quota for today and the messages' wait, for /healthz,
 * /metrics and the admin page.
 */
#include "engine.h"
#include "engine_impl.h"

#include "budget.h"
#include "log.h"
#include "queue.h"
#include "store.h"
#include "upstream.h"

#include <jansson.h>
#include <stdlib.h>

size_t
br_engine_upstream_count(const struct br_engine *e)
{
    return e->n_ups;
}

struct br_upstream *
br_engine_upstream(const struct br_engine *e, size_t i, const char **name)
{
    if (i >= e->n_ups)
        return NULL;
    if (name)
        *name = e->ups[i].name;
    return e->ups[i].up;
}

struct br_budget *
br_engine_budget(const struct br_engine *e)
{
    return e->budget;
}

const char *
br_engine_upstream_state(const struct br_upstream *u)
{
    struct br_upstream_health h;

    br_upstream_health(u, &h);
    return br_upstream_paused_until(u) ? "paused" : h.failures > 0 ? "failing" : "ok";
}

/* The tracker's "quota": its daily quota (null: none), today's requests, and what is left (null: unknown). */
static void
budget_status(const struct br_budget *b, struct br_buf *out)
{
    int64_t now = br_now_ms();
    long left = br_budget_left(b, now);

    br_buf_printf(out, ",\"quota\":{\"daily\":");
    if (br_budget_quota(b) > 0)
        br_buf_printf(out, "%ld", br_budget_quota(b));
    else
        br_buf_puts(out, "null");
    br_buf_printf(out, ",\"used_today\":%llu,\"left\":", (unsigned long long)br_budget_used_today(b, now));
    if (left >= 0)
        br_buf_printf(out, "%ld}", left);
    else
        br_buf_puts(out, "null}");
}

void
br_engine_status(struct br_engine *e, struct br_buf *out)
{
    struct br_store *st = e->store;

    br_buf_printf(out, "{\"inbox_pending\":%lld,\"jobs\":{\"queued\":%lld,\"in_flight\":%u,\"dead\":%lld},\"upstreams\":[",
                  (long long)br_store_inbox_pending(st), (long long)br_store_job_count(st, BR_JOB_QUEUED),
                  br_queue_running(e->queue), (long long)br_store_job_count(st, BR_JOB_DEAD));
    for (size_t i = 0; i < e->n_ups; i++) {
        struct engine_up *u = &e->ups[i];
        struct br_upstream_health h;

        br_upstream_health(u->up, &h);
        br_buf_printf(out, "%s{\"name\":\"%s\",\"state\":\"%s\",\"queued\":%zu,\"in_flight\":%zu,\"sent\":%llu,"
                           "\"paused_until\":%lld,\"quota_left\":%ld",
                      i ? "," : "", u->name, br_engine_upstream_state(u->up), br_upstream_queued(u->up),
                      br_upstream_inflight(u->up), (unsigned long long)br_upstream_sent(u->up),
                      (long long)br_upstream_paused_until(u->up), br_upstream_quota_left(u->up));
        if (u->up == e->tracker_up)
            budget_status(e->budget, out);
        if (h.failures > 0) {
            json_t *err = json_string(h.last_error ? h.last_error : "");
            char *text;
            if (err == NULL) {
                /* Not UTF-8 (a proxy's page, say): shown escaped, as the log would. */
                char *safe = br_log_escape(h.last_error, 500);
                err = json_string(safe);
                free(safe);
            }
            text = err ? json_dumps(err, JSON_ENCODE_ANY) : NULL;
            br_buf_printf(out, ",\"last_error\":%s,\"failing_since\":%lld,\"failures\":%u", text ? text : "\"\"",
                          (long long)h.failing_since, h.failures);
            free(text);
            json_decref(err);
        }
        br_buf_puts(out, "}");
    }
    br_buf_puts(out, "]}");
}

int64_t
br_engine_coalesce_wait_ms(const struct br_engine *e)
{
    return br_batching_current_ms(&e->batching, e->gen->cfg);
}

unsigned
br_engine_running(const struct br_engine *e)
{
    return br_queue_running(e->queue);
}
