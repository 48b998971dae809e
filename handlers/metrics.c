/*
 * GET /metrics: the bridge's numbers in the Prometheus text format.
 *
 * First what the registry counted as things happened (bridge/metrics.h:
 * webhooks, job outcomes, upstream requests and latency, rate-limit
 * waits), then what the store and the engine say now: queue depths and
 * the age of the oldest waiting item, dead letters, merges (kept in the
 * store, so they count across restarts), each upstream's pause and
 * failures, the tracker's quota and its daily budget (requests today,
 * kept in the store; the configured quota; the day's projected use).
 *
 * With metrics.token set, only "Authorization: Bearer <token>" may read
 * it (compared in constant time; wrong tokens are slowed down like wrong
 * webhook secrets); without it, anyone who reaches the port may.
 */
#include "handlers.h"

#include "bridge/budget.h"
#include "bridge/config.h"
#include "bridge/engine.h"
#include "bridge/log.h"
#include "bridge/metrics.h"
#include "bridge/store.h"
#include "bridge/upstream.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What the store says of one upstream's jobs. */
struct depth {
    char *upstream;
    int64_t queued, in_flight, dead;
    int64_t oldest_at; /* when the oldest job waiting or under way was made (ms), 0 when none */
};

struct depths {
    struct depth *items;
    size_t n;
};

static struct depth *
depth_of(struct depths *d, const char *upstream)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->items[i].upstream, upstream) == 0)
            return &d->items[i];
    d->items = br_realloc(d->items, (d->n + 1) * sizeof(*d->items));
    d->items[d->n] = (struct depth){.upstream = br_strdup(upstream)};
    return &d->items[d->n++];
}

static void
on_depth(void *arg, const char *upstream, int state, int64_t count, int64_t oldest_at)
{
    struct depth *d = depth_of(arg, upstream ? upstream : "");

    if (state == BR_JOB_QUEUED)
        d->queued = count;
    else if (state == BR_JOB_SENDING)
        d->in_flight = count;
    else if (state == BR_JOB_DEAD)
        d->dead = count;
    /* Only jobs that wait or run have an age that matters (dead and discarded ones keep theirs). */
    if ((state == BR_JOB_QUEUED || state == BR_JOB_SENDING) && oldest_at > 0 &&
        (d->oldest_at == 0 || oldest_at < d->oldest_at))
        d->oldest_at = oldest_at;
}

static double
age_s(int64_t since_ms, int64_t now_ms)
{
    return since_ms > 0 && now_ms > since_ms ? (double)(now_ms - since_ms) / 1000.0 : 0;
}

static void
write_jobs(struct br_buf *out, struct br_handler_ctx *h, bool store_ok, int64_t now)
{
    static const char *const by_upstream[] = {"upstream", NULL};
    struct depths d = {0};

    /*
     * Every upstream the engine has, also without jobs; then any other the
     * store still names.  A store that does not answer says nothing: no
     * sample rather than a wrong 0.
     */
    for (size_t i = 0; store_ok && h->engine != NULL && i < br_engine_upstream_count(h->engine); i++) {
        const char *name;
        br_engine_upstream(h->engine, i, &name);
        depth_of(&d, name);
    }
    if (store_ok && br_store_job_depths(h->store, on_depth, &d) != 0) {
        for (size_t i = 0; i < d.n; i++)
            free(d.items[i].upstream);
        d.n = 0;
    }

    br_metrics_write_family(out, "chatra_bridge_jobs_queued", "gauge", "Jobs waiting to run, by upstream.");
    for (size_t i = 0; i < d.n; i++)
        br_metrics_write_sample(out, "chatra_bridge_jobs_queued", by_upstream, BR_LABELS(d.items[i].upstream),
                                (double)d.items[i].queued);
    br_metrics_write_family(out, "chatra_bridge_jobs_in_flight", "gauge", "Jobs whose request is under way.");
    for (size_t i = 0; i < d.n; i++)
        br_metrics_write_sample(out, "chatra_bridge_jobs_in_flight", by_upstream, BR_LABELS(d.items[i].upstream),
                                (double)d.items[i].in_flight);
    br_metrics_write_family(out, "chatra_bridge_jobs_oldest_age_seconds", "gauge",
                            "Age of the oldest job waiting or under way (0 when none), by upstream.");
    for (size_t i = 0; i < d.n; i++)
        br_metrics_write_sample(out, "chatra_bridge_jobs_oldest_age_seconds", by_upstream,
                                BR_LABELS(d.items[i].upstream), age_s(d.items[i].oldest_at, now));
    br_metrics_write_family(out, "chatra_bridge_dead_letters", "gauge",
                            "Jobs that failed for good and wait for `retry`, by upstream.");
    for (size_t i = 0; i < d.n; i++)
        br_metrics_write_sample(out, "chatra_bridge_dead_letters", by_upstream, BR_LABELS(d.items[i].upstream),
                                (double)d.items[i].dead);
    for (size_t i = 0; i < d.n; i++)
        free(d.items[i].upstream);
    free(d.items);
}

static void
on_merges(void *arg, const char *channel, int64_t joins, int64_t merges)
{
    static const char *const names[] = {"channel", "kind", NULL};
    struct br_buf *out = arg;

    br_metrics_write_sample(out, "chatra_bridge_merges_total", names, BR_LABELS(channel ? channel : "", "device"),
                            (double)joins);
    br_metrics_write_sample(out, "chatra_bridge_merges_total", names,
                            BR_LABELS(channel ? channel : "", "conversation"), (double)merges);
}

/* The tracker's daily budget (budget.h): today's requests, the quota (when set) and the day's projected use. */
static void
write_budget(struct br_buf *out, const struct br_budget *b)
{
    int64_t now = br_now_ms();

    br_metrics_write_family(out, "chatra_bridge_tracker_requests_today", "gauge",
                            "Requests sent to the tracker since the day began (UTC), kept across restarts.");
    br_metrics_write_sample(out, "chatra_bridge_tracker_requests_today", NULL, NULL,
                            (double)br_budget_used_today(b, now));
    br_metrics_write_family(out, "chatra_bridge_tracker_daily_quota", "gauge",
                            "tracker.daily_quota: requests a day the tracker allows (absent when there is no limit).");
    if (br_budget_quota(b) > 0)
        br_metrics_write_sample(out, "chatra_bridge_tracker_daily_quota", NULL, NULL, (double)br_budget_quota(b));
    br_metrics_write_family(out, "chatra_bridge_tracker_requests_projected", "gauge",
                            "Today's requests to the tracker projected to the end of the day: by the hours of the "
                            "7 days before when they sent any, else at the last hour's pace for the next hour and "
                            "the pace since today's first request after it.");
    br_metrics_write_sample(out, "chatra_bridge_tracker_requests_projected", NULL, NULL,
                            br_budget_projected(b, now));
}

static void
write_upstreams(struct br_buf *out, struct br_engine *e)
{
    static const char *const by_upstream[] = {"upstream", NULL};
    size_t n = br_engine_upstream_count(e);
    const char *name;
    long quota;

    br_metrics_write_family(out, "chatra_bridge_upstream_paused", "gauge",
                            "1 while an upstream is paused (429, daily quota), else 0.");
    for (size_t i = 0; i < n; i++) {
        struct br_upstream *u = br_engine_upstream(e, i, &name);
        br_metrics_write_sample(out, "chatra_bridge_upstream_paused", by_upstream, BR_LABELS(name),
                                br_upstream_paused_until(u) ? 1 : 0);
    }
    br_metrics_write_family(out, "chatra_bridge_upstream_failures", "gauge",
                            "Failed answers in a row (0 once an answer is good again), by upstream.");
    for (size_t i = 0; i < n; i++) {
        struct br_upstream *u = br_engine_upstream(e, i, &name);
        struct br_upstream_health uh;
        br_upstream_health(u, &uh);
        br_metrics_write_sample(out, "chatra_bridge_upstream_failures", by_upstream, BR_LABELS(name),
                                (double)uh.failures);
    }
    /* The tracker is the engine's first upstream; its quota is known once an answer has told it. */
    quota = n > 0 ? br_upstream_quota_left(br_engine_upstream(e, 0, NULL)) : -1;
    br_metrics_write_family(out, "chatra_bridge_tracker_quota_left", "gauge",
                            "Requests left in the tracker's daily quota, as its last answer said.");
    if (quota >= 0)
        br_metrics_write_sample(out, "chatra_bridge_tracker_quota_left", NULL, NULL, (double)quota);
    write_budget(out, br_engine_budget(e));
    br_metrics_write_family(out, "chatra_bridge_coalesce_wait_seconds", "gauge",
                            "How long a message queued now waits for the next ones (coalesce_ms, wider while "
                            "the tracker is behind).");
    br_metrics_write_sample(out, "chatra_bridge_coalesce_wait_seconds", NULL, NULL,
                            (double)br_engine_coalesce_wait_ms(e) / 1000.0);
}

/* "Bearer <token>" with this token (the scheme in any case, RFC 7235). */
static bool
token_given(const char *authorization, const char *token)
{
    const char *p = authorization ? authorization : "";

    if (strncasecmp(p, "Bearer ", 7) != 0)
        return false;
    p += 7;
    while (*p == ' ')
        p++;
    return br_secret_equal(p, token);
}

void
br_handle_metrics(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                  char **params)
{
    struct br_store_health sh = {0};
    bool store_ok;
    int64_t now = br_now_ms();

    (void)params;
    if (h->cfg->metrics_token != NULL && !token_given(req->authorization, h->cfg->metrics_token)) {
        bool allowed = br_handler_secret_failed(h, req);
        br_handler_refused(h, req, allowed ? 401 : 429,
                           allowed ? "wrong or missing metrics token" : "too many wrong metrics tokens", NULL);
        if (!allowed)
            br_respond_error(res, 429, "too many wrong tokens from this address; wait a minute");
        else
            br_respond_error(res, 401, "GET /metrics needs the header Authorization: Bearer <metrics.token>");
        return;
    }
    res->status = 200;
    res->content_type = CONTENT_TYPE;
    br_buf_reset(&res->body);
    br_buf_puts(&res->body, "");

    br_metrics_write(&res->body);

    store_ok = br_store_ping(h->store) == 0;
    if (store_ok)
        br_store_health(h->store, &sh);
    br_metrics_write_family(&res->body, "chatra_bridge_store_writable", "gauge",
                            "1 while the store takes writes, 0 while it refuses them (a full disk) or does not answer.");
    br_metrics_write_sample(&res->body, "chatra_bridge_store_writable", NULL, NULL, store_ok && !sh.failing ? 1 : 0);

    br_metrics_write_family(&res->body, "chatra_bridge_inbox_pending", "gauge",
                            "Webhooks stored and answered, not yet applied.");
    if (store_ok)
        br_metrics_write_sample(&res->body, "chatra_bridge_inbox_pending", NULL, NULL,
                                (double)br_store_inbox_pending(h->store));
    br_metrics_write_family(&res->body, "chatra_bridge_inbox_oldest_age_seconds", "gauge",
                            "Age of the oldest webhook not yet applied (0 when none waits).");
    if (store_ok)
        br_metrics_write_sample(&res->body, "chatra_bridge_inbox_oldest_age_seconds", NULL, NULL,
                                age_s(br_store_inbox_oldest(h->store), now));
    write_jobs(&res->body, h, store_ok, now);

    br_metrics_write_family(&res->body, "chatra_bridge_merges_total", "counter",
                            "Merges the store keeps, undone ones too, by channel and kind: a device that joined a "
                            "known person, or a conversation joined into another.");
    if (store_ok)
        br_store_merge_counts(h->store, on_merges, &res->body);

    if (h->engine != NULL)
        write_upstreams(&res->body, h->engine);
}
