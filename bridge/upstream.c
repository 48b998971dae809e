#include "upstream.h"

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "upstream_stats.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUOTA_WAIT_MS (10 * 60 * 1000)

struct pending {
    struct pending *next;
    struct br_upstream *u;
    char *method;
    char *url;
    char **headers;
    char *body;
    long timeout_ms;
    br_http_client_cb cb;
    void *arg;
    uint64_t queued_ns;      /* uv_hrtime when it was queued, and when it was sent */
    uint64_t sent_ns;
    bool held;               /* the rate or a pause kept it waiting (metrics) */
};

/* A FIFO of pending requests. */
struct fifo {
    struct pending *head, *tail;
};

struct br_upstream {
    uv_timer_t timer;
    struct br_http_client *http;
    char *name;
    double spacing_ms;
    unsigned max_inflight;
    unsigned inflight;
    int strict;
    /* Urgent requests (a reply on its way) leave before the normal ones; each queue is FIFO. */
    struct fifo urgent, normal;
    size_t queued;
    double next_allowed;     /* ms, monotonic clock */
    int64_t paused_until;    /* ms, wall clock */
    int64_t held_until;      /* ms, wall clock: the daily budget's hold (br_upstream_hold_until) */
    int64_t refused_until;   /* ms, wall clock: its key was refused (br_upstream_refused_until) */
    void (*on_sent)(void *arg);
    void *on_sent_arg;
    void (*on_left)(void *arg, long left);
    void *on_left_arg;
    uint64_t sent;
    long quota_left;
    /* The run of failed answers (br_upstream_note). */
    unsigned failures;
    int64_t failing_since;
    char *last_error;
    double rps;
    struct br_upstream_stats stats; /* requests over the last minute and hour, for the admin page */
    int closing;
    void (*close_done)(void *);
    void *close_arg;
};

static double
mono_ms(uv_loop_t *loop)
{
    (void)loop;
    return (double)uv_hrtime() / 1e6;
}

static void pump(struct br_upstream *u);

/* Whether requests sent now are urgent (br_upstream_urgent_scope): loop thread only. */
static bool urgent_scope;

bool
br_upstream_urgent_scope(bool urgent)
{
    bool was = urgent_scope;
    urgent_scope = urgent;
    return was;
}

bool
br_upstream_urgent_now(void)
{
    return urgent_scope;
}

static void
fifo_push(struct fifo *f, struct pending *p)
{
    if (f->tail)
        f->tail->next = p;
    else
        f->head = p;
    f->tail = p;
}

static struct pending *
fifo_pop(struct fifo *f)
{
    struct pending *p = f->head;

    if (p) {
        f->head = p->next;
        if (f->head == NULL)
            f->tail = NULL;
        p->next = NULL;
    }
    return p;
}

/* The request that leaves next: the oldest urgent one, else the oldest of the rest. */
static struct pending *
next_pending(struct br_upstream *u)
{
    return u->urgent.head ? u->urgent.head : u->normal.head;
}

/* Every request that ended, by its status ("timeout", "error": no answer), and how long it took. */
static void
count_answer(struct br_upstream *u, const struct pending *p, const struct br_http_result *res)
{
    char status[16];

    if (res->err == BR_ECANCELED)
        return; /* shutting down: nothing was asked of the upstream that counts */
    if (res->err == 0)
        snprintf(status, sizeof(status), "%ld", res->status);
    else
        snprintf(status, sizeof(status), "%s", res->err == BR_ETIMEDOUT ? "timeout" : "error");
    br_metrics_add(BR_METRIC_UPSTREAM_REQUESTS, BR_LABELS(u->name, status), 1);
    if (p->sent_ns != 0)
        br_metrics_observe(BR_METRIC_UPSTREAM_SECONDS, BR_LABELS(u->name), (double)(uv_hrtime() - p->sent_ns) / 1e9);
}

static void
on_timer(uv_timer_t *t)
{
    pump(t->data);
}

/*
 * The gap between two requests.  A small margin keeps it above the limit
 * as the remote end measures it, after network jitter between two
 * requests.
 */
static double
spacing_of(double rps)
{
    return 1000.0 / rps * 1.03 + 2.0;
}

int
br_upstream_new(struct br_upstream **out, uv_loop_t *loop, struct br_http_client *http, const char *name,
                double rps, unsigned max_inflight)
{
    struct br_upstream *u = br_calloc(1, sizeof(*u));

    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->http = http;
    u->name = br_strdup(name);
    u->spacing_ms = spacing_of(rps);
    u->rps = rps;
    u->max_inflight = max_inflight ? max_inflight : 1;
    u->quota_left = -1;
    /* One request at a time, spaced from answer to request (see on_done). */
    u->strict = u->max_inflight == 1;
    /* A restart right after a request must not send the next one too soon. */
    u->next_allowed = mono_ms(loop) + u->spacing_ms;
    *out = u;
    return 0;
}

static void
free_pending(struct pending *p)
{
    free(p->method);
    free(p->url);
    for (size_t i = 0; p->headers && p->headers[i]; i++)
        free(p->headers[i]);
    free(p->headers);
    free(p->body);
    free(p);
}

static void
on_done(void *arg, const struct br_http_result *res)
{
    struct pending *p = arg;
    struct br_upstream *u = p->u;

    u->inflight--;
    count_answer(u, p, res);
    if (res->ratelimit_remaining >= 0) {
        u->quota_left = res->ratelimit_remaining;
        if (u->on_left)
            u->on_left(u->on_left_arg, res->ratelimit_remaining);
    }
    /* Planfix refreshes the counter about every 10 minutes: wait for that rather than burn error 22s. */
    if (res->ratelimit_remaining == 0)
        br_upstream_pause_until(u, br_now_ms() + QUOTA_WAIT_MS);
    /*
     * The next request leaves no sooner than one interval after this
     * answer: the remote end counts arrivals, and this request may have
     * arrived late (a slow connect), so spacing the sends is not enough.
     * It costs one round trip per request, well worth it at 1 request/s.
     */
    if (u->strict) {
        double after = mono_ms(u->timer.loop) + u->spacing_ms;
        if (after > u->next_allowed)
            u->next_allowed = after;
    }
    /* A 429 speaks for the whole account, not only for this request. */
    if (res->err == 0 && res->status == 429)
        br_upstream_pause_until(u, br_now_ms() + (res->retry_after_s > 0 ? res->retry_after_s * 1000 : 1000));
    p->cb(p->arg, res);
    free_pending(p);
    if (!u->closing)
        pump(u);
}

/* The latest of its pause, the budget's hold and a refused key's wait (ms, wall clock). */
static int64_t
stopped_until(const struct br_upstream *u)
{
    int64_t until = u->paused_until > u->held_until ? u->paused_until : u->held_until;

    return u->refused_until > until ? u->refused_until : until;
}

static void
pump(struct br_upstream *u)
{
    while (next_pending(u) && !u->closing && u->inflight < u->max_inflight) {
        double now = mono_ms(u->timer.loop);
        int64_t wall = br_now_ms();
        int64_t until = stopped_until(u);
        struct pending *p;

        if (until > wall) {
            next_pending(u)->held = true;
            uv_timer_start(&u->timer, on_timer, (uint64_t)(until - wall), 0);
            return;
        }
        if (now < u->next_allowed) {
            next_pending(u)->held = true;
            uv_timer_start(&u->timer, on_timer, (uint64_t)ceil(u->next_allowed - now), 0);
            return;
        }
        p = fifo_pop(u->urgent.head ? &u->urgent : &u->normal);
        u->queued--;
        u->next_allowed = now + u->spacing_ms;
        u->inflight++;
        u->sent++;
        br_upstream_stats_sent(&u->stats, wall);
        p->sent_ns = uv_hrtime();
        if (p->held) {
            /* Its whole wait in the queue: behind the others, it waited for the same budget. */
            br_metrics_add(BR_METRIC_RATELIMIT_WAITS, BR_LABELS(u->name), 1);
            br_metrics_add(BR_METRIC_RATELIMIT_WAIT_SECONDS, BR_LABELS(u->name),
                           (double)(p->sent_ns - p->queued_ns) / 1e9);
        }
        if (br_http_client_send(u->http, p->method, p->url, (const char *const *)p->headers, p->body,
                                p->body ? strlen(p->body) : 0, p->timeout_ms, on_done, p) != 0) {
            struct br_http_result r = {.err = BR_EIO, .body = "", .retry_after_s = -1,
                                       .ratelimit_remaining = -1, .error = "cannot start request"};
            u->inflight--;
            p->sent_ns = 0;
            count_answer(u, p, &r);
            p->cb(p->arg, &r);
            free_pending(p);
        } else if (u->on_sent) {
            u->on_sent(u->on_sent_arg);
        }
    }
}

int
br_upstream_send(struct br_upstream *u, const char *method, const char *url, const char *const *headers,
                 const char *body, long timeout_ms, br_http_client_cb cb, void *arg)
{
    struct pending *p;
    size_t n = 0;

    if (u->closing)
        return BR_ECANCELED;
    p = br_calloc(1, sizeof(*p));
    p->u = u;
    p->method = br_strdup(method);
    p->url = br_strdup(url);
    while (headers && headers[n])
        n++;
    p->headers = br_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        p->headers[i] = br_strdup(headers[i]);
    p->body = body ? br_strdup(body) : NULL;
    p->timeout_ms = timeout_ms;
    p->cb = cb;
    p->arg = arg;
    p->queued_ns = uv_hrtime();
    fifo_push(urgent_scope ? &u->urgent : &u->normal, p);
    u->queued++;
    /* Never call back or send from inside the caller's stack: let the loop do it. */
    if (!uv_is_active((uv_handle_t *)&u->timer))
        uv_timer_start(&u->timer, on_timer, 0, 0);
    return 0;
}

void
br_upstream_set_rate(struct br_upstream *u, double rps)
{
    double spacing = spacing_of(rps);

    u->rps = rps;
    if (spacing == u->spacing_ms)
        return;
    if (spacing > u->spacing_ms)
        u->next_allowed += spacing - u->spacing_ms;
    u->spacing_ms = spacing;
    /* A faster rate: the timer may be set for the old, later time. */
    if (next_pending(u) && !u->closing)
        uv_timer_start(&u->timer, on_timer, 0, 0);
}

void
br_upstream_pause_until(struct br_upstream *u, int64_t until_ms)
{
    if (until_ms > u->paused_until) {
        u->paused_until = until_ms;
        br_warn("upstream %s: paused for %lld s", u->name, (long long)((until_ms - br_now_ms()) / 1000));
    }
}

int64_t
br_upstream_paused_until(const struct br_upstream *u)
{
    int64_t until = stopped_until(u);

    return until > br_now_ms() ? until : 0;
}

void
br_upstream_refused_until(struct br_upstream *u, int64_t until_ms)
{
    if (until_ms > u->refused_until) {
        u->refused_until = until_ms;
        br_warn("upstream %s: its key was refused; tried again in %lld s, or at a reload",
                u->name, (long long)((until_ms - br_now_ms()) / 1000));
    }
}

void
br_upstream_refused_lift(struct br_upstream *u)
{
    if (u->refused_until == 0)
        return;
    u->refused_until = 0;
    if (next_pending(u) && !u->closing)
        uv_timer_start(&u->timer, on_timer, 0, 0);
}

void
br_upstream_hold_until(struct br_upstream *u, int64_t until_ms)
{
    u->held_until = until_ms;
    /* A hold lifted or shortened: the timer may be set for the old, later time. */
    if (next_pending(u) && !u->closing)
        uv_timer_start(&u->timer, on_timer, 0, 0);
}

void
br_upstream_on_sent(struct br_upstream *u, void (*cb)(void *arg), void *arg)
{
    u->on_sent = cb;
    u->on_sent_arg = arg;
}

void
br_upstream_on_told_left(struct br_upstream *u, void (*cb)(void *arg, long left), void *arg)
{
    u->on_left = cb;
    u->on_left_arg = arg;
}

size_t
br_upstream_queued(const struct br_upstream *u)
{
    return u->queued;
}

size_t
br_upstream_inflight(const struct br_upstream *u)
{
    return u->inflight;
}

uint64_t
br_upstream_sent(const struct br_upstream *u)
{
    return u->sent;
}

long
br_upstream_quota_left(const struct br_upstream *u)
{
    return u->quota_left;
}

void
br_upstream_note(struct br_upstream *u, const char *error)
{
    if (error == NULL) {
        if (u->failures > 0)
            br_info("upstream %s: answers again, after %u failed answer(s) over %lld s", u->name, u->failures,
                    (long long)((br_now_ms() - u->failing_since) / 1000));
        u->failures = 0;
        u->failing_since = 0;
        free(u->last_error);
        u->last_error = NULL;
        return;
    }
    if (u->failures++ == 0)
        u->failing_since = br_now_ms();
    free(u->last_error);
    u->last_error = br_strdup(error);
}

void
br_upstream_health(const struct br_upstream *u, struct br_upstream_health *out)
{
    out->failures = u->failures;
    out->failing_since = u->failing_since;
    out->last_error = u->last_error;
}

double
br_upstream_rps(const struct br_upstream *u)
{
    return u->rps;
}

const struct br_upstream_stats *
br_upstream_stats(const struct br_upstream *u)
{
    return &u->stats;
}

uv_loop_t *
br_upstream_loop(const struct br_upstream *u)
{
    return u->timer.loop;
}

static void
on_close(uv_handle_t *h)
{
    struct br_upstream *u = h->data;
    if (u->close_done)
        u->close_done(u->close_arg);
}

void
br_upstream_close(struct br_upstream *u, void (*done)(void *arg), void *arg)
{
    struct pending *p;
    struct br_http_result r = {.err = BR_ECANCELED, .body = "", .retry_after_s = -1,
                               .ratelimit_remaining = -1, .error = "shutting down"};

    u->closing = 1;
    u->close_done = done;
    u->close_arg = arg;
    while ((p = fifo_pop(u->urgent.head ? &u->urgent : &u->normal)) != NULL) {
        u->queued--;
        p->cb(p->arg, &r);
        free_pending(p);
    }
    uv_close((uv_handle_t *)&u->timer, on_close);
}

void
br_upstream_free(struct br_upstream *u)
{
    if (u == NULL)
        return;
    free(u->name);
    free(u->last_error);
    free(u);
}
