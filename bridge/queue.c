#include "queue.h"

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "tracker.h"
#include "unrecorded.h"
#include "upstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISPATCH_BATCH 16
#define UPSTREAM_DEPTH 4       /* jobs handed to one upstream at a time */
/*
 * Replies first: an urgent job (one that carries an employee's reply,
 * store.h) may start beyond the depth by this many, so that it never waits
 * for the comments in flight to end before its request is queued (where
 * it leaves first, upstream.h).
 */
#define URGENT_EXTRA 1
#define MAX_ATTEMPTS BR_QUEUE_MAX_ATTEMPTS
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define QUOTA_PAUSE_MS (15 * 60 * 1000)
#define REFUSED_PAUSE_MS (60 * 1000) /* a refused key is tried again each minute (or at a reload) */

struct lane_up {
    char *name;                /* "tracker" or "chatra:<channel>" */
    struct br_upstream *up;
    unsigned running;          /* jobs of this upstream in flight */
    /*
     * The last look found fewer ready jobs than there was room for: the
     * next look can find more only after a job ended, a new job came
     * first in its lane, or a backoff ran out (the tick).  Until then
     * dispatch does not ask the store again (with thousands of jobs
     * waiting behind their lanes' first, asking costs milliseconds).
     */
    bool dry;
};

struct br_queue {
    const struct br_config *cfg; /* the config of env: a job's channel is looked up there */
    struct br_store *store;
    struct br_env *env;        /* what new runs get (the newest generation, env.h) */
    br_queue_start_cb start;
    br_queue_wake_cb wake;
    void *wake_arg;
    struct lane_up **ups;      /* each on its own: a run holds its lane_up while upstreams are added */
    size_t n_ups;
    unsigned running;          /* jobs in flight over all upstreams */
    struct br_run *runs;       /* the jobs running now (their rows say "in flight", rightly) */
    /*
     * Outcomes the store refused, kept until it takes writes again
     * (unrecorded.h); settled_failures is the store's failure count when
     * that was last done.
     */
    struct br_unrecorded *unrecorded;
    uint64_t settled_failures;
    bool closing;
};

struct br_queue *
br_queue_new(const struct br_config *cfg, struct br_store *store, struct br_env *env, br_queue_start_cb start,
             br_queue_wake_cb wake, void *wake_arg)
{
    struct br_queue *q = br_calloc(1, sizeof(*q));

    q->cfg = cfg;
    q->store = store;
    q->env = env;
    q->start = start;
    q->wake = wake;
    q->wake_arg = wake_arg;
    q->unrecorded = br_unrecorded_new();
    /* Counted now: when a first write fails, settling takes it up like any other. */
    q->settled_failures = br_store_failures(store);
    return q;
}

void
br_queue_free(struct br_queue *q)
{
    if (q == NULL)
        return;
    br_unrecorded_free(q->unrecorded);
    for (size_t i = 0; i < q->n_ups; i++) {
        free(q->ups[i]->name);
        free(q->ups[i]);
    }
    free(q->ups);
    free(q);
}

void
br_queue_add_upstream(struct br_queue *q, const char *name, struct br_upstream *up)
{
    struct lane_up *lu = br_calloc(1, sizeof(*lu));

    lu->name = br_strdup(name);
    lu->up = up;
    q->ups = br_realloc(q->ups, (q->n_ups + 1) * sizeof(*q->ups));
    q->ups[q->n_ups++] = lu;
}

void
br_queue_set_env(struct br_queue *q, struct br_env *env, const struct br_config *cfg)
{
    q->env = env;
    q->cfg = cfg;
}

bool
br_queue_holds(const struct br_queue *q, const struct br_env *env)
{
    for (const struct br_run *r = q->runs; r; r = r->next)
        if (r->env == env)
            return true;
    return false;
}

char *
br_queue_lane(char lane_kind, int64_t conv_id)
{
    return br_asprintf("%c:%lld", lane_kind, (long long)conv_id);
}

int
br_queue_add(struct br_queue *q, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
             json_t *payload, int64_t delay_ms)
{
    return br_queue_add_id(q, lane_kind, upstream, kind, conv_id, payload, delay_ms, NULL);
}

int
br_queue_add_id(struct br_queue *q, char lane_kind, const char *upstream, const char *kind, int64_t conv_id,
                json_t *payload, int64_t delay_ms, int64_t *job_id)
{
    char *lane = br_queue_lane(lane_kind, conv_id);
    char *text = json_dumps(payload, JSON_COMPACT);
    int64_t id = 0;
    int rc = br_store_job_add_at(q->store, lane, upstream, kind, conv_id, text,
                                 delay_ms > 0 ? br_now_ms() + delay_ms : 0, &id);

    if (rc == 0 && !br_store_job_blocked(q->store, lane, id)) {
        /* First in its lane: its upstream has something to send. */
        for (size_t i = 0; i < q->n_ups; i++)
            if (strcmp(q->ups[i]->name, upstream) == 0)
                q->ups[i]->dry = false;
    }
    if (job_id != NULL)
        *job_id = id;
    free(text);
    free(lane);
    json_decref(payload);
    return rc;
}

bool
br_queue_waiting(struct br_queue *q, char lane_kind, int64_t conv_id, const char *kind)
{
    char *lane = br_queue_lane(lane_kind, conv_id);
    bool waiting = br_store_job_waiting(q->store, lane, kind);
    free(lane);
    return waiting;
}

void
br_queue_hasten(struct br_queue *q, char lane_kind, int64_t conv_id, const char *kind, int64_t within_ms)
{
    char *lane = br_queue_lane(lane_kind, conv_id);
    int64_t n = 0;

    /* If this fails, the job runs at its time all the same. */
    if (br_store_job_hasten(q->store, lane, kind, br_now_ms(), within_ms, &n) == 0 && n > 0) {
        br_queue_undry(q);
        br_queue_wake(q);
    }
    free(lane);
}

void
br_queue_undry(struct br_queue *q)
{
    for (size_t i = 0; i < q->n_ups; i++)
        q->ups[i]->dry = false;
}

unsigned
br_queue_running(const struct br_queue *q)
{
    return q->running;
}

size_t
br_queue_unrecorded(const struct br_queue *q)
{
    return br_unrecorded_count(q->unrecorded);
}

void
br_queue_wake(struct br_queue *q)
{
    if (!q->closing)
        q->wake(q->wake_arg);
}

void
br_queue_close(struct br_queue *q)
{
    q->closing = true;
}

/* ---- a job's end -------------------------------------------------------- */

/*
 * Writes how a job ended.  When the store refuses, it still shows the job
 * in flight (its lane waits behind it): the outcome is kept until the
 * store takes writes again (br_queue_settle), never only forgotten.
 */
static void
record_outcome(struct br_queue *q, const struct br_job *job, int state, int attempts, int64_t next_at, bool recover,
               const char *error, const char *request, const char *response)
{
    int64_t id = job->id;

    /* The admin page hears of it (the store's trigger wrote an end into the conversation's timeline). */
    br_notify_overview();
    if (state == BR_JOB_DEAD)
        br_notify_dead_letters();
    if (state == BR_JOB_DONE || state == BR_JOB_DEAD)
        br_notify_conversation(job->conv_id);
    if (br_store_job_finish(q->store, id, state, attempts, next_at, recover, error, request, response) == 0)
        return;
    br_debug("job %lld: its outcome is kept until the store takes writes again", (long long)id);
    br_unrecorded_add(q->unrecorded, id, state, attempts, next_at, recover, error, request, response);
}

static void
run_free(struct br_run *r)
{
    struct br_queue *q = r->q;

    if (r->on_free)
        r->on_free(r);
    r->lu->running--;
    q->running--;
    if (r->prev)
        r->prev->next = r->next;
    else
        q->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    br_job_dispose(&r->job);
    json_decref(r->payload);
    br_conv_dispose(&r->conv);
    free(r->task_id);
    free(r->source_key);
    free(r->text);
    json_decref(r->emails);
    free(r->employee_user);
    free(r);
}

/* A job ended and its lane may have a next one: dispatch soon. */
static void
ended(struct br_queue *q, bool wake)
{
    br_queue_undry(q);
    if (wake && !q->closing)
        q->wake(q->wake_arg);
}

/*
 * Transient failures come back after exponential backoff with jitter
 * (Retry-After wins when it is longer); permanent ones go to the
 * dead-letter list with the request and the answer.
 */
void
br_run_finish(struct br_run *r, struct br_result *res)
{
    struct br_queue *q = r->q;
    int err = res ? res->err : 0;
    int state = BR_JOB_DONE;
    int attempts = r->job.attempts;
    bool recover;
    int64_t next_at = br_now_ms();

    if (err == BR_ECANCELED) {
        /* Shutting down: the job stays in flight in the store and is recovered at the next start. */
        run_free(r);
        return;
    }
    if (err == BR_ERETRY || err == BR_ETIMEDOUT || err == BR_EIO) {
        int64_t delay = 1000;
        int limit = MAX_ATTEMPTS;
        attempts++;
        for (int i = 1; i < attempts && delay < BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > BACKOFF_MAX_MS)
            delay = BACKOFF_MAX_MS;
        delay = delay / 2 + (int64_t)((double)rand() / RAND_MAX * (double)(delay / 2));
        if (res->retry_after_s > 0 && res->retry_after_s * 1000 > delay)
            delay = res->retry_after_s * 1000;
        if (res->quota_exhausted) {
            br_upstream_pause_until(r->up, br_now_ms() + QUOTA_PAUSE_MS);
            attempts--; /* waiting for the quota is not the job's fault */
        } else if (res->key_refused) {
            br_upstream_refused_until(r->up, br_now_ms() + REFUSED_PAUSE_MS);
            attempts--; /* nor is waiting for the admin to fix the key (a reload tries again at once) */
        }
        next_at += delay;
        /* A failure the driver does not understand is worth a few attempts, not MAX_ATTEMPTS. */
        if (res->max_attempts > 0 && res->max_attempts < limit)
            limit = res->max_attempts;
        state = attempts >= limit ? BR_JOB_DEAD : BR_JOB_QUEUED;
        /* A store that refuses writes said so once, not once a job. */
        br_log(r->store_refused && br_store_failing(q->store) ? BR_LOG_DEBUG : BR_LOG_WARN, "job %lld (%s): %s; %s",
               (long long)r->job.id, r->job.kind, res->error ? res->error : br_strerror(err),
               state == BR_JOB_DEAD ? "giving up" : "will retry");
    } else if (err) {
        state = BR_JOB_DEAD;
        br_error("job %lld (%s): %s; moved to dead letters", (long long)r->job.id, r->job.kind,
                 res->error ? res->error : br_strerror(err));
    }
    /*
     * Only a clear "no" from the upstream (429, quota) proves nothing was
     * written; after any other transient failure the next run looks first.
     * Once set, the mark stays until the job ends: a 429 to the lookup
     * proves nothing about the write before it.
     */
    recover = state == BR_JOB_QUEUED &&
              (r->job.recover || !(res && (res->quota_exhausted || res->key_refused || res->status == 429)));
    br_metrics_add(BR_METRIC_JOBS,
                   BR_LABELS(r->job.kind, state == BR_JOB_DONE ? "done" : state == BR_JOB_DEAD ? "dead" : "retry"), 1);
    record_outcome(q, &r->job, state, attempts, next_at, recover,
                   state == BR_JOB_DONE ? NULL : (res && res->error ? res->error : br_strerror(err)),
                   res ? res->request : NULL, res ? res->response : NULL);
    run_free(r);
    ended(q, true);
}

void
br_run_later(struct br_run *r, int64_t delay_ms)
{
    struct br_queue *q = r->q;

    br_metrics_add(BR_METRIC_JOBS, BR_LABELS(r->job.kind, "later"), 1);
    record_outcome(q, &r->job, BR_JOB_QUEUED, r->job.attempts, br_now_ms() + delay_ms, r->job.recover, NULL, NULL,
                   NULL);
    run_free(r);
    ended(q, delay_ms == 0);
}

void
br_run_ok(struct br_run *r)
{
    struct br_result res = {0};
    res.retry_after_s = -1;
    br_run_finish(r, &res);
}

void
br_run_fail(struct br_run *r, int err, const char *fmt, ...)
{
    struct br_result res = {0};
    struct br_buf b;
    va_list ap;

    br_buf_init(&b, 4096);
    va_start(ap, fmt);
    br_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    res.err = err;
    res.retry_after_s = -1;
    res.error = br_buf_steal(&b);
    br_run_finish(r, &res);
    free(res.error);
}

/*
 * When the store refused the result of a write that succeeded, the job
 * runs again and looks in the tracker before it writes (its recover mark).
 */
void
br_run_recorded(struct br_run *r, struct br_result *res, int store_rc)
{
    if (store_rc) {
        r->job.recover = true;
        r->store_refused = true;
        br_run_fail(r, BR_ERETRY, "the result could not be stored (%s); the job checks before writing again",
                    br_strerror(store_rc));
        return;
    }
    br_run_finish(r, res);
}

/* ---- starting jobs ------------------------------------------------------- */

static void begin(struct br_queue *q, struct br_run *r);

static void
start_job(struct br_queue *q, struct lane_up *lu, struct br_job *job)
{
    struct br_run *r = br_calloc(1, sizeof(*r));
    struct br_log_ctx saved, lc;
    bool was;

    r->q = q;
    r->env = q->env;
    r->lu = lu;
    r->up = lu->up;
    r->job = *job;
    memset(job, 0, sizeof(*job));
    lu->running++;
    q->running++;
    r->next = q->runs;
    if (q->runs)
        q->runs->prev = r;
    q->runs = r;
    br_notify_overview();
    /* In flight from here on: after a crash this job first checks what it already did. */
    if (br_store_job_start(q->store, r->job.id) != 0) {
        /* Still queued in the store, as if it had not been picked: it starts once the store takes writes. */
        run_free(r);
        return;
    }
    /* The job's log lines name it, its conversation and channel (the REST layer keeps them for its answers). */
    br_log_ctx_get(&saved);
    br_log_ctx_make(&lc, NULL, r->job.conv_id, r->job.id);
    br_log_ctx_set(&lc);
    /* An urgent job's requests go before the others waiting for the upstream (rest.c keeps that for the call). */
    was = br_upstream_urgent_scope(r->job.urgent);
    begin(q, r);
    br_upstream_urgent_scope(was);
    br_log_ctx_set(&saved);
}

/* Loads what the job works with and hands it to its kind. */
static void
begin(struct br_queue *q, struct br_run *r)
{
    json_error_t je;
    int rc = 0;

    r->payload = json_loads(r->job.payload, 0, &je);
    /* Jobs of no conversation (conv_id 0, e.g. the poll) have no channel either. */
    if (r->payload != NULL && r->job.conv_id != 0)
        rc = br_store_conv_get(q->store, r->job.conv_id, &r->conv);
    if (r->payload == NULL || rc == BR_ENOTFOUND) {
        br_run_fail(r, BR_EFATAL, "job data is damaged");
        return;
    }
    if (rc) {
        /* The store could not be read: nothing wrong with the job. */
        r->store_refused = true;
        br_run_fail(r, BR_ERETRY, "cannot read the conversation: %s", br_strerror(rc));
        return;
    }
    if (r->job.conv_id != 0) {
        struct br_log_ctx lc;

        br_log_ctx_make(&lc, r->conv.channel, r->job.conv_id, r->job.id);
        br_log_ctx_set(&lc);
    }
    r->ch = r->job.conv_id ? br_config_channel(q->cfg, r->conv.channel) : NULL;
    if (r->job.conv_id != 0 && r->ch == NULL) {
        br_run_fail(r, BR_EFATAL, "channel %s is no longer configured", r->conv.channel);
        return;
    }
    q->start(r);
}

/* Starts the jobs picked for lu (all, or none when the store refuses writes). */
static void
start_jobs(struct br_queue *q, struct lane_up *lu, struct br_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* A store that refuses writes cannot mark a job in flight: the rest waits too. */
        if (q->closing || br_store_failing(q->store)) {
            br_job_dispose(&jobs[i]);
            continue;
        }
        start_job(q, lu, &jobs[i]);
    }
}

/*
 * Up to UPSTREAM_DEPTH jobs of an upstream run at once, the urgent ones
 * first; with the depth full, an urgent job still takes one of the
 * URGENT_EXTRA places kept for it.
 */
void
br_queue_dispatch(struct br_queue *q)
{
    int64_t now = br_now_ms();

    for (size_t u = 0; u < q->n_ups && !q->closing; u++) {
        struct lane_up *lu = q->ups[u];
        struct br_job jobs[DISPATCH_BATCH];
        size_t n = 0;
        size_t room;

        if (lu->dry || lu->running >= UPSTREAM_DEPTH + URGENT_EXTRA || br_upstream_paused_until(lu->up))
            continue;
        if (lu->running < UPSTREAM_DEPTH) {
            room = UPSTREAM_DEPTH - lu->running;
            if (room > DISPATCH_BATCH)
                room = DISPATCH_BATCH;
            br_store_job_ready(q->store, lu->name, now, jobs, room, &n);
            lu->dry = n < room;
            start_jobs(q, lu, jobs, n);
            /* Fewer than the room: every urgent job that was ready has started. */
            if (lu->dry || q->closing)
                continue;
        }
        if (lu->running >= UPSTREAM_DEPTH && lu->running < UPSTREAM_DEPTH + URGENT_EXTRA) {
            room = UPSTREAM_DEPTH + URGENT_EXTRA - lu->running;
            br_store_job_ready_urgent(q->store, lu->name, now, jobs, room, &n);
            /* Nothing urgent: the others wait for a job to end, which looks again (ended). */
            lu->dry = n == 0;
            start_jobs(q, lu, jobs, n);
        }
    }
}

int64_t
br_queue_next_due(struct br_queue *q, int64_t now)
{
    int64_t next = 0;

    for (size_t u = 0; u < q->n_ups && !q->closing; u++) {
        struct lane_up *lu = q->ups[u];
        int64_t at;

        /* A full upstream looks again when a job ends; a paused one when its pause ends (the tick). */
        if (lu->running >= UPSTREAM_DEPTH || br_upstream_paused_until(lu->up))
            continue;
        at = br_store_job_next_due(q->store, lu->name, now);
        if (at > 0 && (next == 0 || at < next))
            next = at;
    }
    return next;
}

int
br_queue_settle(struct br_queue *q)
{
    int64_t ids[64], *running = ids, written, requeued;
    size_t n = 0;
    int rc;

    if (br_store_failures(q->store) == q->settled_failures && br_unrecorded_count(q->unrecorded) == 0 &&
        !br_store_failing(q->store))
        return 0;
    if (q->running > BR_ARRAY_SIZE(ids))
        running = br_malloc(q->running * sizeof(*running));
    for (struct br_run *r = q->runs; r; r = r->next)
        running[n++] = r->job.id;
    rc = br_unrecorded_settle(q->unrecorded, q->store, running, n, &written, &requeued);
    if (running != ids)
        free(running);
    if (rc)
        return rc;
    q->settled_failures = br_store_failures(q->store);
    if (written || requeued)
        br_info("engine: the store takes writes again: %lld job outcome(s) written, %lld job(s) left in flight "
                "queued again (they look in the tracker before writing)", (long long)written, (long long)requeued);
    br_queue_undry(q);
    return 0;
}
