/*
 * GET /admin/api/overview: the bridge at a glance, for the admin page's
 * first view: each upstream (the tracker, each channel's Chatra account)
 * with its state, traffic, budget, pause and quota; the inbox and the job
 * queue with their oldest item; the dead letters; version, uptime, config.
 */
#include "admin.h"

#include "bridge/budget.h"
#include "bridge/config.h"
#include "bridge/engine.h"
#include "bridge/store.h"
#include "bridge/crm.h"
#include "bridge/upstream.h"
#include "bridge/upstream_stats.h"

#include <string.h>

static json_t *
ms_or_null(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

/*
 * The tracker's daily budget (budget.h): the configured quota, today's
 * requests (kept across restarts) and what is left; other upstreams have no
 * daily quota, only their requests since midnight UTC and what their
 * answers said is left.
 */
static json_t *
quota_json(const struct br_upstream *u, const struct br_budget *budget, uint64_t today, int64_t now)
{
    long left = br_upstream_quota_left(u);

    if (budget != NULL) {
        long daily = br_budget_quota(budget);
        today = br_budget_used_today(budget, now);
        left = br_budget_left(budget, now);
        return json_pack("{s:o, s:I, s:o}", "daily", daily > 0 ? json_integer(daily) : json_null(), "used_today",
                         (json_int_t)today, "left", left >= 0 ? json_integer(left) : json_null());
    }
    return json_pack("{s:n, s:I, s:o}", "daily", "used_today", (json_int_t)today, "left",
                     left >= 0 ? json_integer(left) : json_null());
}

static json_t *
upstream_json(const struct br_config *cfg, const char *name, const struct br_upstream *u,
              const struct br_budget *budget, int64_t now, const struct br_engine *e)
{
    json_t *o;
    const struct br_upstream_stats *st = br_upstream_stats(u);
    struct br_upstream_health health;
    uint64_t minute, hour, today;

    br_upstream_health(u, &health);
    br_upstream_stats_counts(st, now, &minute, &hour, &today);
    /* The same state as /healthz's. */
    o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:o, s:I, s:o}",
                     "name", name,
                     "kind", strcmp(name, "tracker") == 0 ? cfg->tracker_kind
                             : strcmp(name, "crm") == 0        ? (cfg->crm ? cfg->crm->name : "crm")
                                                               : "chatra",
                     "state", br_engine_upstream_state(u),
                     "requests_last_minute", (json_int_t)minute,
                     "requests_last_hour", (json_int_t)hour,
                     "requests_per_second", br_upstream_rps(u),
                     "paused_until", (json_int_t)br_upstream_paused_until(u),
                     "last_error", health.last_error != NULL ? json_string(health.last_error) : json_null(),
                     "failing_since", (json_int_t)health.failing_since,
                     "quota", quota_json(u, budget, today, now));
    /* The tracker's: how long a message queued now waits for the next ones (batching.h). */
    if (strcmp(name, "tracker") == 0)
        json_object_set_new(o, "coalesce_wait_ms", json_integer((json_int_t)br_engine_coalesce_wait_ms(e)));
    return o;
}

void
br_handle_admin_overview(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                         char **params)
{
    struct br_store_overview ov;
    struct br_admin_who who;
    json_t *ups = json_array();
    int64_t now = br_now_ms();

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_READ, &who)) {
        json_decref(ups);
        return;
    }
    if (br_store_overview(h->store, &ov) != 0) {
        json_decref(ups);
        br_admin_json(res, 503, json_pack("{s:s}", "error", "the store does not answer"));
        return;
    }
    for (size_t i = 0; h->engine != NULL && i < br_engine_upstream_count(h->engine); i++) {
        const char *name;
        const struct br_upstream *u = br_engine_upstream(h->engine, i, &name);
        json_array_append_new(ups, upstream_json(h->cfg, name, u,
                                                 strcmp(name, "tracker") == 0 ? br_engine_budget(h->engine) : NULL,
                                                 now, h->engine));
    }
    br_admin_json(res, 200,
                  json_pack("{s:s, s:I, s:s, s:I, s:o, s:{s:I, s:o}, s:{s:I, s:I, s:o}, s:I}",
                            "version", h->admin->version,
                            "uptime_s", (json_int_t)((now - h->admin->started_at) / 1000),
                            "config", h->cfg->path,
                            "started_at", (json_int_t)h->admin->started_at,
                            "upstreams", ups,
                            "inbox", "pending", (json_int_t)ov.inbox_pending, "oldest_at", ms_or_null(ov.inbox_oldest),
                            "jobs", "queued", (json_int_t)ov.jobs_queued, "running",
                            (json_int_t)(h->engine != NULL ? br_engine_running(h->engine) : 0), "oldest_at",
                            ms_or_null(ov.jobs_oldest),
                            "dead_letters", (json_int_t)ov.dead));
}
