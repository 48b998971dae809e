/*
 * test_queue.c - the job queue (bridge/queue.c) on a real store in a
 * temporary directory, with no network and no sleeps: lanes run their jobs
 * strictly in order and one at a time, an upstream takes at most a few
 * lanes at once, a job is in flight in the store before it starts, and
 * each way a job ends (done, retried with backoff, dead letter, later,
 * cancelled at shutdown) is written as the queue promises; a store that
 * refuses writes keeps the outcome until br_queue_settle writes it.
 * Replies first: fetch, poll and reply jobs start before the waiting
 * comments of other lanes, and one of them may start with the upstream's
 * depth full.
 *
 * "Time passes" for a job that waits is written into the store directly
 * (its next_at set to 0), never slept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <uv.h>

#include "bridge/config.h"
#include "bridge/log.h"
#include "bridge/queue.h"
#include "bridge/store.h"
#include "bridge/tracker.h"
#include "bridge/upstream.h"
#include "support/tmpdir.h"
#include "support/limit_files.h"

#define MAX_RUNS 64

struct fx {
    char dir[64];
    char *db;
    struct br_config *cfg;
    struct br_store *s;
    uv_loop_t loop;
    struct br_upstream *tracker, *chatra;
    struct br_queue *q;
    struct br_run *runs[MAX_RUNS]; /* started and not yet ended by the test */
    size_t n_runs;
    unsigned started;
    unsigned started_urgent;       /* runs started in the upstream's urgent scope */
    unsigned wakes;
};

/* The start callback has only the run: the fixture of the test running now. */
static struct fx *current;

static const char config_text[] =
    "{\"store\": {\"path\": \"bridge.db\"},\n"
    " \"tracker\": {\"kind\": \"planfix\", \"url\": \"http://127.0.0.1:1/rest\", \"token\": \"t0ken-queue\",\n"
    "             \"webhook_secret\": \"hook-secret-queue-0123\"},\n"
    " \"channels\": [{\"name\": \"shop\", \"webhook_secret\": \"shop-secret-queue-0123\",\n"
    "               \"chatra\": {\"url\": \"http://127.0.0.1:1/api\", \"public_key\": \"pk\", \"secret_key\": \"sk\"},\n"
    "               \"default_agent_id\": \"agent\", \"task\": {\"template_id\": 1, \"closed_status_id\": 3}, \"contact\": {\"template_id\": 1}}]}\n";

static void
on_start(struct br_run *r)
{
    assert_true(current->n_runs < MAX_RUNS);
    current->runs[current->n_runs++] = r;
    current->started++;
    /* Its requests would go first (upstream.h) exactly when the job is urgent. */
    assert_int_equal(br_upstream_urgent_now(), r->job.urgent);
    if (br_upstream_urgent_now())
        current->started_urgent++;
}

static void
on_wake(void *arg)
{
    ((struct fx *)arg)->wakes++;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct br_diag diag = {0};
    char *cfg_path;
    FILE *fp;

    assert_non_null(f);
    strcpy(f->dir, "/tmp/br-test-queue-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    cfg_path = br_asprintf("%s/bridge.json", f->dir);
    fp = fopen(cfg_path, "w");
    assert_non_null(fp);
    fputs(config_text, fp);
    assert_int_equal(fclose(fp), 0);
    if (br_config_load(cfg_path, &f->cfg, &diag) != 0) {
        for (size_t i = 0; i < diag.n; i++)
            print_message("config: %s\n", diag.items[i]);
        fail();
    }
    br_diag_dispose(&diag);
    free(cfg_path);
    f->db = br_asprintf("%s/bridge.db", f->dir);
    assert_int_equal(br_store_open(&f->s, f->db), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(br_upstream_new(&f->tracker, &f->loop, NULL, "tracker", 1000, 4), 0);
    assert_int_equal(br_upstream_new(&f->chatra, &f->loop, NULL, "chatra:shop", 1000, 4), 0);
    f->q = br_queue_new(f->cfg, f->s, NULL, on_start, on_wake, f);
    br_queue_add_upstream(f->q, "tracker", f->tracker);
    br_queue_add_upstream(f->q, "chatra:shop", f->chatra);
    current = f;
    *state = f;
    return 0;
}

static void
closed(void *arg)
{
    (void)arg;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    /* Runs the test left open end as at shutdown. */
    for (size_t i = 0; i < f->n_runs; i++) {
        struct br_result res = {.err = BR_ECANCELED, .retry_after_s = -1};
        br_run_finish(f->runs[i], &res);
    }
    br_queue_free(f->q);
    br_upstream_close(f->tracker, closed, NULL);
    br_upstream_close(f->chatra, closed, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    br_upstream_free(f->tracker);
    br_upstream_free(f->chatra);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    br_store_free(f->s);
    br_config_free(f->cfg);
    br_log_clear_secrets();
    tmpdir_remove(f->dir);
    free(f->db);
    free(f);
    current = NULL;
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static int64_t
new_conv(struct fx *f, const char *client)
{
    int64_t id = 0;
    assert_int_equal(br_store_conv_create(f->s, "shop", client, &id), 0);
    assert_true(id > 0);
    return id;
}

/* Adds a job of kind to the tracker lane of conv with payload {"n": n}; returns its id. */
static int64_t
add(struct fx *f, const char *upstream, const char *kind, int64_t conv, int n, int64_t delay_ms)
{
    int64_t before = br_store_job_count(f->s, BR_JOB_QUEUED);
    struct br_job j = {0};

    assert_int_equal(br_queue_add(f->q, upstream[0] == 't' ? 't' : 'c', upstream, kind, conv,
                                  json_pack("{s:i}", "n", n), delay_ms), 0);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_QUEUED), before + 1);
    /* The newest job: ids count up from 1 in a new store. */
    for (int64_t id = 1;; id++) {
        if (br_store_job_get(f->s, id, &j) != 0)
            return id - 1;
        br_job_dispose(&j);
    }
}

static struct br_job
job(struct fx *f, int64_t id)
{
    struct br_job j = {0};
    assert_int_equal(br_store_job_get(f->s, id, &j), 0);
    return j;
}

static int
state_of(struct fx *f, int64_t id)
{
    struct br_job j = job(f, id);
    int st = j.state;
    br_job_dispose(&j);
    return st;
}

/* The started run of job id, taken out of the fixture's list (the test ends it). */
static struct br_run *
take(struct fx *f, int64_t id)
{
    for (size_t i = 0; i < f->n_runs; i++) {
        if (f->runs[i]->job.id == id) {
            struct br_run *r = f->runs[i];
            memmove(&f->runs[i], &f->runs[i + 1], (f->n_runs - i - 1) * sizeof(f->runs[0]));
            f->n_runs--;
            return r;
        }
    }
    fail_msg("job %lld is not running", (long long)id);
    return NULL;
}

static bool
running(struct fx *f, int64_t id)
{
    for (size_t i = 0; i < f->n_runs; i++)
        if (f->runs[i]->job.id == id)
            return true;
    return false;
}

/* Time passes for a waiting job: it is due now. */
static void
make_due(struct fx *f, int64_t id)
{
    struct br_job j = job(f, id);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_int_equal(br_store_job_finish(f->s, id, BR_JOB_QUEUED, j.attempts, 0, j.recover, NULL, NULL, NULL), 0);
    br_job_dispose(&j);
    br_queue_undry(f->q);
}

/* A transient failure as a driver reports it. */
static void
fail_transient(struct br_run *r, long status, long retry_after_s, int max_attempts)
{
    struct br_result res = {.err = BR_ERETRY, .status = status, .retry_after_s = retry_after_s,
                            .max_attempts = max_attempts};
    res.error = br_strdup("HTTP 503 from the tracker");
    br_run_finish(r, &res);
    free(res.error);
}

/* ---- tests ----------------------------------------------------------------- */

/* A lane runs its jobs one at a time in id order; other lanes run beside it. */
static void
test_lane_order(void **state)
{
    struct fx *f = *state;
    int64_t c1 = new_conv(f, "dev-1"), c2 = new_conv(f, "dev-2");
    int64_t a1 = add(f, "tracker", "task", c1, 1, 0);
    int64_t a2 = add(f, "tracker", "comment", c1, 2, 0);
    int64_t a3 = add(f, "tracker", "comment", c1, 3, 0);
    int64_t b1 = add(f, "tracker", "task", c2, 1, 0);
    struct br_run *r;

    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 2);
    assert_true(running(f, a1));
    assert_true(running(f, b1));
    assert_false(running(f, a2));
    assert_int_equal(br_queue_running(f->q), 2);

    /* The run carries the job, its payload, its conversation and channel, and the upstream. */
    r = f->runs[0]->job.id == a1 ? f->runs[0] : f->runs[1];
    assert_string_equal(r->job.kind, "task");
    assert_int_equal(json_integer_value(json_object_get(r->payload, "n")), 1);
    assert_int_equal(r->conv.id, c1);
    assert_non_null(r->ch);
    assert_string_equal(r->ch->name, "shop");
    assert_ptr_equal(r->up, f->tracker);

    /* Nothing more while the lanes' first jobs run. */
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 2);

    br_run_ok(take(f, a1));
    assert_int_equal(state_of(f, a1), BR_JOB_DONE);
    assert_true(f->wakes >= 1);
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 3);
    assert_true(running(f, a2));
    assert_false(running(f, a3));

    br_run_ok(take(f, a2));
    br_queue_dispatch(f->q);
    assert_true(running(f, a3));
    br_run_ok(take(f, a3));
    br_run_ok(take(f, b1));
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 4);
    assert_int_equal(br_queue_running(f->q), 0);
    assert_int_equal(br_store_job_count(f->s, BR_JOB_DONE), 4);
}

/* A job is in flight in the store from before it starts until it ends. */
static void
test_in_flight_marking(void **state)
{
    struct fx *f = *state;
    int64_t c = new_conv(f, "dev-1");
    int64_t id = add(f, "tracker", "task", c, 1, 0);
    struct br_job j;

    assert_int_equal(state_of(f, id), BR_JOB_QUEUED);
    br_queue_dispatch(f->q);
    assert_true(running(f, id));
    assert_int_equal(state_of(f, id), BR_JOB_SENDING);
    j = job(f, id);
    assert_false(j.recover);
    br_job_dispose(&j);

    /* A crash now: the next start finds it in flight and marks it to look first. */
    {
        int64_t n = 0;
        assert_int_equal(br_store_job_recover_lost(f->s, &id, 1, &n), 0);
        assert_int_equal(n, 0); /* it is running: not lost */
    }
    br_run_ok(take(f, id));
    assert_int_equal(state_of(f, id), BR_JOB_DONE);
}

/* An upstream takes at most four lanes' jobs at once; each upstream has its own room. */
static void
test_upstream_depth(void **state)
{
    struct fx *f = *state;
    int64_t ids[6], chat;

    for (int i = 0; i < 6; i++) {
        char client[16];
        snprintf(client, sizeof(client), "dev-%d", i);
        ids[i] = add(f, "tracker", "task", new_conv(f, client), i, 0);
    }
    chat = add(f, "chatra:shop", "profile", 1, 0, 0);
    br_queue_dispatch(f->q);
    /* Four tracker jobs, and the Chatra job beside them. */
    assert_int_equal(f->started, 5);
    assert_true(running(f, chat));
    assert_false(running(f, ids[4]));
    assert_false(running(f, ids[5]));

    br_run_ok(take(f, ids[0]));
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 6);
    assert_true(running(f, ids[4]));
    assert_false(running(f, ids[5]));
}

/* Adds an urgent job (kind fetch, poll or reply) in lane lane_kind:conv; returns its id. */
static int64_t
add_urgent(struct fx *f, char lane_kind, const char *upstream, const char *kind, int64_t conv)
{
    int64_t id = 0;

    assert_int_equal(br_queue_add_id(f->q, lane_kind, upstream, kind, conv, json_object(), 0, &id), 0);
    return id;
}

/* Fetch, poll and reply jobs start before older comments of other lanes; a lane's order still holds. */
static void
test_urgent_first(void **state)
{
    struct fx *f = *state;
    int64_t ids[6], fetch, poll, behind, reply, profile;
    int64_t c0 = new_conv(f, "dev-0");
    struct br_job ready[8];
    size_t n = 0;

    for (int i = 0; i < 6; i++) {
        char client[16];
        snprintf(client, sizeof(client), "dev-%d", i + 1);
        ids[i] = add(f, "tracker", "comment", new_conv(f, client), i, 0);
    }
    /* A fetch behind a comment of its own lane waits for it, urgent or not. */
    add(f, "tracker", "comment", c0, 9, 0);
    behind = add_urgent(f, 't', "tracker", "fetch", c0);
    fetch = add_urgent(f, 'f', "tracker", "fetch", new_conv(f, "dev-7"));
    poll = add_urgent(f, 'p', "tracker", "poll", 0);
    profile = add(f, "chatra:shop", "profile", ids[0], 0, 0);
    reply = add_urgent(f, 'c', "chatra:shop", "reply", new_conv(f, "dev-8"));

    /* The store hands the urgent ones out first, each group oldest first. */
    assert_int_equal(br_store_job_ready(f->s, "tracker", br_now_ms(), ready, 3, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ready[0].id, fetch);
    assert_true(ready[0].urgent);
    assert_int_equal(ready[1].id, poll);
    assert_int_equal(ready[2].id, ids[0]);
    assert_false(ready[2].urgent);
    for (size_t i = 0; i < n; i++)
        br_job_dispose(&ready[i]);
    assert_int_equal(br_store_job_ready_urgent(f->s, "tracker", br_now_ms(), ready, 8, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        br_job_dispose(&ready[i]);

    br_queue_dispatch(f->q);
    /* Four on the tracker: the fetch, the poll, then the two oldest comments; on Chatra the reply and the profile. */
    assert_true(running(f, fetch));
    assert_true(running(f, poll));
    assert_true(running(f, ids[0]));
    assert_true(running(f, ids[1]));
    assert_false(running(f, ids[2]));
    assert_false(running(f, behind));
    assert_true(running(f, reply));
    assert_true(running(f, profile));
    assert_int_equal(f->started, 6);
    assert_int_equal(f->started_urgent, 3);
}

/* With the depth full of comments, an urgent job still starts (one place kept), a comment does not. */
static void
test_urgent_reserved(void **state)
{
    struct fx *f = *state;
    int64_t ids[6], fetch1, fetch2;

    for (int i = 0; i < 6; i++) {
        char client[16];
        snprintf(client, sizeof(client), "dev-%d", i);
        ids[i] = add(f, "tracker", "comment", new_conv(f, client), i, 0);
    }
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 4);

    fetch1 = add_urgent(f, 'f', "tracker", "fetch", 1);
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 5);
    assert_true(running(f, fetch1));
    assert_int_equal(br_queue_running(f->q), 5);

    /* The kept place is taken: a second urgent job waits like the comments. */
    fetch2 = add_urgent(f, 'f', "tracker", "fetch", 2);
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 5);
    assert_false(running(f, fetch2));

    /* A comment ends: four run, so only an urgent job may start, and it does. */
    br_run_ok(take(f, ids[0]));
    br_queue_dispatch(f->q);
    assert_true(running(f, fetch2));
    assert_false(running(f, ids[4]));
    assert_int_equal(br_queue_running(f->q), 5);

    /* The fetches end: the comments fill the depth again, no further. */
    br_run_ok(take(f, fetch1));
    br_run_ok(take(f, fetch2));
    br_queue_dispatch(f->q);
    assert_true(running(f, ids[4]));
    assert_false(running(f, ids[5]));
    assert_int_equal(br_queue_running(f->q), 4);
    assert_int_equal(f->started_urgent, 2);
}

/* Transient failures come back later with a growing, jittered delay; the attempts are counted. */
static void
test_retry_backoff(void **state)
{
    struct fx *f = *state;
    int64_t c = new_conv(f, "dev-1");
    int64_t id = add(f, "tracker", "comment", c, 1, 0);
    int64_t next = add(f, "tracker", "comment", c, 2, 0);
    struct br_job j;
    int64_t t0;

    br_queue_dispatch(f->q);
    t0 = br_now_ms();
    fail_transient(take(f, id), 503, -1, 0);
    j = job(f, id);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_int_equal(j.attempts, 1);
    /* The first delay is 1 s, jittered into [0.5 s, 1 s]. */
    assert_true(j.next_at >= t0 + 500);
    assert_true(j.next_at <= br_now_ms() + 1000);
    /* No answer proves nothing was written: the next run looks first. */
    assert_true(j.recover);
    br_job_dispose(&j);

    /* Not due yet, and its lane waits behind it. */
    br_queue_dispatch(f->q);
    assert_false(running(f, id));
    assert_false(running(f, next));

    make_due(f, id);
    br_queue_dispatch(f->q);
    assert_true(running(f, id));
    fail_transient(take(f, id), 503, -1, 0);
    make_due(f, id);
    br_queue_dispatch(f->q);
    t0 = br_now_ms();
    fail_transient(take(f, id), 503, -1, 0);
    /* The third failure waits 4 s, jittered into [2 s, 4 s]. */
    j = job(f, id);
    assert_int_equal(j.attempts, 3);
    assert_true(j.next_at >= t0 + 2000);
    assert_true(j.next_at <= br_now_ms() + 4000);
    br_job_dispose(&j);

    /* Retry-After wins when it is longer. */
    make_due(f, id);
    br_queue_dispatch(f->q);
    t0 = br_now_ms();
    fail_transient(take(f, id), 503, 120, 0);
    j = job(f, id);
    assert_true(j.next_at >= t0 + 120000);
    br_job_dispose(&j);

    /* Success ends it; the lane goes on. */
    make_due(f, id);
    br_queue_dispatch(f->q);
    br_run_ok(take(f, id));
    assert_int_equal(state_of(f, id), BR_JOB_DONE);
    br_queue_dispatch(f->q);
    assert_true(running(f, next));
}

/* A 429 proves nothing was written: no recover mark; the quota pauses the upstream without counting. */
static void
test_rate_limited_and_quota(void **state)
{
    struct fx *f = *state;
    int64_t c1 = new_conv(f, "dev-1"), c2 = new_conv(f, "dev-2");
    int64_t id = add(f, "tracker", "comment", c1, 1, 0);
    int64_t other = add(f, "tracker", "comment", c2, 1, 0);
    struct br_result res = {.err = BR_ERETRY, .retry_after_s = -1, .quota_exhausted = 1, .status = 200};
    struct br_job j;

    br_queue_dispatch(f->q);
    fail_transient(take(f, id), 429, 5, 0);
    j = job(f, id);
    assert_int_equal(j.attempts, 1);
    assert_false(j.recover);
    br_job_dispose(&j);

    assert_int_equal(br_upstream_paused_until(f->tracker), 0);
    res.error = br_strdup("the daily quota is used up");
    br_run_finish(take(f, other), &res);
    free(res.error);
    j = job(f, other);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_false(j.recover);
    br_job_dispose(&j);
    assert_true(br_upstream_paused_until(f->tracker) > br_now_ms() + 10 * 60 * 1000);

    /* A paused upstream is not given jobs, even due ones; the others still are. */
    make_due(f, id);
    make_due(f, other);
    add(f, "chatra:shop", "profile", c1, 0, 0);
    f->started = 0;
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 1);
    assert_ptr_equal(f->runs[0]->up, f->chatra);
}

/* Permanent failures, and transient ones past their bound, are dead letters; the lane stops behind them. */
static void
test_dead_letter(void **state)
{
    struct fx *f = *state;
    int64_t c1 = new_conv(f, "dev-1"), c2 = new_conv(f, "dev-2");
    int64_t dead = add(f, "tracker", "task", c1, 1, 0);
    int64_t behind = add(f, "tracker", "comment", c1, 2, 0);
    int64_t bounded = add(f, "tracker", "task", c2, 1, 0);
    struct br_result res = {.err = BR_EFATAL, .retry_after_s = -1, .status = 400};
    char *letters = NULL;
    json_t *list;
    int64_t n = 0;

    br_queue_dispatch(f->q);
    res.error = br_strdup("HTTP 400: template 1 does not exist");
    res.request = br_strdup("POST /task/ {\"template\":{\"id\":1}}");
    res.response = br_strdup("400 {\"error\":\"no template\"}");
    br_run_finish(take(f, dead), &res);
    free(res.error);
    free(res.request);
    free(res.response);
    assert_int_equal(state_of(f, dead), BR_JOB_DEAD);

    /* An answer the driver does not understand is worth max_attempts tries. */
    fail_transient(take(f, bounded), 200, -1, 2);
    assert_int_equal(state_of(f, bounded), BR_JOB_QUEUED);
    make_due(f, bounded);
    br_queue_dispatch(f->q);
    fail_transient(take(f, bounded), 200, -1, 2);
    assert_int_equal(state_of(f, bounded), BR_JOB_DEAD);

    /* The job behind a dead one waits (order is kept) until the dead one is retried. */
    br_queue_dispatch(f->q);
    assert_false(running(f, behind));
    assert_int_equal(f->n_runs, 0);

    assert_int_equal(br_store_dead_letters(f->s, &letters), 0);
    list = json_loads(letters, 0, NULL);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 2);
    {
        json_t *first = json_array_get(list, 0);
        json_t *second = json_array_get(list, 1);
        json_t *d = json_integer_value(json_object_get(first, "id")) == dead ? first : second;
        assert_string_equal(json_string_value(json_object_get(d, "error")), "HTTP 400: template 1 does not exist");
        assert_non_null(strstr(json_string_value(json_object_get(d, "request")), "POST /task/"));
        assert_non_null(strstr(json_string_value(json_object_get(d, "response")), "no template"));
    }
    json_decref(list);
    free(letters);

    assert_int_equal(br_store_dead_retry(f->s, dead, &n), 0);
    assert_int_equal(n, 1);
    br_queue_undry(f->q);
    br_queue_dispatch(f->q);
    assert_true(running(f, dead));
    br_run_ok(take(f, dead));
    br_queue_dispatch(f->q);
    assert_true(running(f, behind));
}

/* br_run_fail writes the job's own error as a dead letter; a damaged job or a removed channel is dead. */
static void
test_fail_and_damaged(void **state)
{
    struct fx *f = *state;
    int64_t c = new_conv(f, "dev-1");
    int64_t own = add(f, "tracker", "task", c, 1, 0);
    int64_t orphan = add(f, "tracker", "task", 9999, 1, 0); /* no such conversation */
    int64_t gone, lane_job;
    char *letters = NULL;

    br_queue_dispatch(f->q);
    assert_false(running(f, orphan));
    assert_int_equal(state_of(f, orphan), BR_JOB_DEAD);
    br_run_fail(take(f, own), BR_EFATAL, "task template %d is %s", 12, "missing");
    assert_int_equal(state_of(f, own), BR_JOB_DEAD);

    /* A conversation of a channel that is no longer configured. */
    assert_int_equal(br_store_conv_create(f->s, "closed-shop", "dev-9", &gone), 0);
    lane_job = add(f, "tracker", "task", gone, 1, 0);
    br_queue_dispatch(f->q);
    assert_false(running(f, lane_job));
    assert_int_equal(state_of(f, lane_job), BR_JOB_DEAD);

    assert_int_equal(br_store_dead_letters(f->s, &letters), 0);
    assert_non_null(strstr(letters, "task template 12 is missing"));
    assert_non_null(strstr(letters, "job data is damaged"));
    assert_non_null(strstr(letters, "channel closed-shop is no longer configured"));
    free(letters);
}

/* later: again after a delay, no attempt counted; a delay of 0 asks for a dispatch at once. */
static void
test_later(void **state)
{
    struct fx *f = *state;
    int64_t c = new_conv(f, "dev-1");
    int64_t id = add(f, "tracker", "task", c, 1, 0);
    struct br_job j;
    unsigned wakes;
    int64_t t0;

    br_queue_dispatch(f->q);
    wakes = f->wakes;
    t0 = br_now_ms();
    br_run_later(take(f, id), 60000);
    j = job(f, id);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_true(j.next_at >= t0 + 60000);
    assert_true(j.next_at <= br_now_ms() + 60000);
    br_job_dispose(&j);
    assert_int_equal(f->wakes, wakes);
    br_queue_dispatch(f->q);
    assert_false(running(f, id));

    make_due(f, id);
    br_queue_dispatch(f->q);
    assert_true(running(f, id));
    br_run_later(take(f, id), 0);
    assert_int_equal(f->wakes, wakes + 1);
    br_queue_dispatch(f->q);
    assert_true(running(f, id));
    br_run_ok(take(f, id));
}

/* A job added with a delay is not ready before it. */
static void
test_delayed_add(void **state)
{
    struct fx *f = *state;
    int64_t c = new_conv(f, "dev-1");
    int64_t id = add(f, "tracker", "comment", c, 1, 30000);
    struct br_job j = job(f, id);

    assert_true(j.next_at > br_now_ms() + 20000);
    br_job_dispose(&j);
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 0);
    make_due(f, id);
    br_queue_dispatch(f->q);
    assert_true(running(f, id));
}

/*
 * The next time a waiting job comes due, for the engine's wake: the
 * earliest over the upstreams that could start it; not a job due already,
 * not an upstream whose depth is full.
 */
static void
test_next_due(void **state)
{
    struct fx *f = *state;
    int64_t now = br_now_ms();
    int64_t soon, later, due, chatra;
    struct br_job j;

    assert_int_equal(br_queue_next_due(f->q, now), 0);
    later = add(f, "tracker", "comment", new_conv(f, "dev-1"), 1, 30000);
    soon = add(f, "tracker", "comment", new_conv(f, "dev-2"), 2, 150);
    chatra = add(f, "chatra:shop", "reply", new_conv(f, "dev-3"), 3, 90000);
    due = add(f, "tracker", "comment", new_conv(f, "dev-4"), 4, 0);
    j = job(f, soon);
    assert_int_equal(br_queue_next_due(f->q, br_now_ms()), j.next_at);
    br_job_dispose(&j);
    /* Once it is due, the next one is the later comment. */
    make_due(f, soon);
    j = job(f, later);
    assert_int_equal(br_queue_next_due(f->q, br_now_ms()), j.next_at);
    br_job_dispose(&j);
    /* The tracker's depth full: only Chatra's job can start when it comes due. */
    for (int i = 0; i < 4; i++)
        add(f, "tracker", "comment", new_conv(f, "dev-full"), 10 + i, 0);
    br_queue_dispatch(f->q);
    assert_true(running(f, due));
    assert_true(running(f, soon));
    j = job(f, chatra);
    assert_int_equal(br_queue_next_due(f->q, br_now_ms()), j.next_at);
    br_job_dispose(&j);
}

/*
 * Hasten: a job in a short step (a new task waiting for the visitor's
 * details) runs at once when what it waited for came; a longer wait (a
 * burst's) and other kinds and lanes stay.
 */
static void
test_hasten(void **state)
{
    struct fx *f = *state;
    int64_t c = new_conv(f, "dev-1"), other = new_conv(f, "dev-2");
    int64_t step = add(f, "tracker", "task", c, 1, 5000);
    int64_t burst = add(f, "tracker", "task", other, 2, 30000);
    int64_t comment = add(f, "tracker", "comment", c, 3, 5000);
    unsigned wakes = f->wakes;

    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 0);
    br_queue_hasten(f->q, 't', c, "task", 10000);
    assert_int_equal(f->wakes, wakes + 1);
    br_queue_hasten(f->q, 't', other, "task", 10000);
    assert_int_equal(f->wakes, wakes + 1); /* nothing changed: no wake */
    br_queue_dispatch(f->q);
    assert_true(running(f, step));
    assert_false(running(f, burst));
    assert_false(running(f, comment));
    assert_int_equal(f->started, 1);
    br_run_ok(take(f, step));
}

/* waiting: a job of that kind is still to run in that lane. */
static void
test_waiting(void **state)
{
    struct fx *f = *state;
    int64_t c1 = new_conv(f, "dev-1"), c2 = new_conv(f, "dev-2");
    int64_t id = add(f, "tracker", "close", c1, 1, 0);
    char *lane;

    assert_true(br_queue_waiting(f->q, 't', c1, "close"));
    assert_false(br_queue_waiting(f->q, 't', c1, "comment"));
    assert_false(br_queue_waiting(f->q, 't', c2, "close"));
    assert_false(br_queue_waiting(f->q, 'c', c1, "close"));
    br_queue_dispatch(f->q);
    br_run_ok(take(f, id));
    assert_false(br_queue_waiting(f->q, 't', c1, "close"));

    lane = br_queue_lane('c', 42);
    assert_string_equal(lane, "c:42");
    free(lane);
}

/* After close nothing starts and nobody is woken; a cancelled job stays in flight for the next start. */
static void
test_close(void **state)
{
    struct fx *f = *state;
    int64_t c1 = new_conv(f, "dev-1"), c2 = new_conv(f, "dev-2");
    int64_t id = add(f, "tracker", "task", c1, 1, 0);
    int64_t later = add(f, "tracker", "task", c2, 1, 0);
    struct br_result cancel = {.err = BR_ECANCELED, .retry_after_s = -1};
    int64_t n = 0;
    unsigned wakes;

    /* Only the first lane's job is due now. */
    assert_int_equal(br_store_job_finish(f->s, later, BR_JOB_QUEUED, 0, br_now_ms() + 60000, false, NULL, NULL,
                                         NULL), 0);
    br_queue_dispatch(f->q);
    assert_true(running(f, id));
    br_queue_close(f->q);
    wakes = f->wakes;
    br_queue_wake(f->q);
    assert_int_equal(f->wakes, wakes);
    make_due(f, later);
    br_queue_dispatch(f->q);
    assert_false(running(f, later));

    br_run_finish(take(f, id), &cancel);
    assert_int_equal(f->wakes, wakes);
    assert_int_equal(br_queue_running(f->q), 0);
    assert_int_equal(state_of(f, id), BR_JOB_SENDING);
    /* The next start puts it back, marked to look in the tracker first. */
    assert_int_equal(br_store_job_recover_inflight(f->s, &n), 0);
    assert_int_equal(n, 1);
    {
        struct br_job j = job(f, id);
        assert_int_equal(j.state, BR_JOB_QUEUED);
        assert_true(j.recover);
        br_job_dispose(&j);
    }
}

/* A result the store refused: the tracker did it, the job runs again and looks first. */
static void
test_recorded_refused(void **state)
{
    struct fx *f = *state;
    int64_t c = new_conv(f, "dev-1");
    int64_t id = add(f, "tracker", "task", c, 1, 0);
    struct br_result res = {.retry_after_s = -1};
    struct br_job j;

    br_queue_dispatch(f->q);
    br_run_recorded(take(f, id), &res, BR_EIO);
    j = job(f, id);
    assert_int_equal(j.state, BR_JOB_QUEUED);
    assert_true(j.recover);
    assert_int_equal(j.attempts, 1);
    br_job_dispose(&j);

    make_due(f, id);
    br_queue_dispatch(f->q);
    assert_true(running(f, id));
    assert_true(f->runs[0]->job.recover);
    br_run_recorded(take(f, id), &res, 0);
    assert_int_equal(state_of(f, id), BR_JOB_DONE);
}

/* The store refuses writes: outcomes are kept, nothing starts; settle writes them once it takes writes. */
static void
test_settle(void **state)
{
    struct fx *f = *state;
    int64_t c1 = new_conv(f, "dev-1"), c2 = new_conv(f, "dev-2");
    int64_t a = add(f, "tracker", "task", c1, 1, 0);
    int64_t b = add(f, "tracker", "task", c2, 1, 0);
    int64_t c = add(f, "chatra:shop", "profile", c1, 0, 0);
    int64_t d;

    assert_int_equal(br_queue_settle(f->q), 0); /* nothing to settle */
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 3);
    /* Ready, but added after the dispatch. */
    d = add(f, "tracker", "task", new_conv(f, "dev-3"), 1, 0);

    limit_files(f->db, true);
    br_run_ok(take(f, a));
    assert_true(br_store_failing(f->s));
    assert_int_equal(br_queue_unrecorded(f->q), 1);
    assert_int_equal(state_of(f, a), BR_JOB_SENDING);
    /* Settling while the store still refuses keeps the outcome. */
    assert_int_not_equal(br_queue_settle(f->q), 0);
    assert_int_equal(br_queue_unrecorded(f->q), 1);
    /* A job ends while nothing can be written: kept as well. */
    br_run_later(take(f, c), 0);
    assert_int_equal(br_queue_unrecorded(f->q), 2);
    /* Nothing starts while the store refuses writes. */
    br_queue_undry(f->q);
    br_queue_dispatch(f->q);
    assert_int_equal(f->started, 3);
    limit_files(f->db, false);

    assert_int_equal(br_queue_settle(f->q), 0);
    assert_int_equal(br_queue_unrecorded(f->q), 0);
    assert_int_equal(state_of(f, a), BR_JOB_DONE);
    assert_int_equal(state_of(f, c), BR_JOB_QUEUED);
    /* b still runs: settling left it in flight. */
    assert_int_equal(state_of(f, b), BR_JOB_SENDING);
    br_run_ok(take(f, b));
    assert_int_equal(state_of(f, b), BR_JOB_DONE);
    assert_int_equal(state_of(f, d), BR_JOB_QUEUED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lane_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_flight_marking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgent_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgent_reserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited_and_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_and_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hasten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle, setup, teardown),
    };
    br_log_set_level(BR_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
