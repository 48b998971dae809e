/*
 * rest.c - one REST call over an upstream (rest.h).  An answer goes
 * through on_http: a transport failure ends the call; otherwise the API's
 * check hook reads it, then the one status rule (br_rest_status_err), and
 * a success goes to the call's step, which may send the next request.
 */
#include "rest.h"

#include "store.h" /* br_now_ms */

#include <stdlib.h>
#include <string.h>

#define RESPONSE_KEEP 2000 /* bytes of an answer kept for the dead-letter list */

void *
br_rest_call_new(size_t size, const struct br_rest_api *api, const struct br_rest_target *to, br_result_cb cb,
                 void *arg)
{
    struct br_rest_call *c = br_calloc(1, size < sizeof(*c) ? sizeof(*c) : size);

    c->api = api;
    c->up = to->up;
    c->base_url = br_strdup(to->base_url);
    c->auth = to->auth ? br_strdup(to->auth) : NULL;
    c->timeout_ms = to->timeout_ms;
    c->res.retry_after_s = -1;
    c->server_date_s = -1;
    c->cb = cb;
    c->arg = arg;
    br_log_ctx_get(&c->log_ctx);
    c->urgent = br_upstream_urgent_now();
    return c;
}

static void
call_free(struct br_rest_call *c)
{
    if (c->api->dispose)
        c->api->dispose(c);
    free(c->base_url);
    free(c->auth);
    free(c->secret);
    free(c->secret_shown);
    free(c);
}

static void
on_later_closed(uv_handle_t *h)
{
    call_free(h->data);
}

/* Hands the outcome over and frees the call (from the loop: an answer, or the later timer). */
static void
finish(struct br_rest_call *c)
{
    c->cb(c->arg, &c->res);
    br_result_dispose(&c->res);
    if (c->later_used)
        uv_close((uv_handle_t *)&c->later, on_later_closed);
    else
        call_free(c);
}

static void
on_later(uv_timer_t *t)
{
    struct br_rest_call *c = t->data;
    struct br_log_ctx saved;

    bool was;

    br_log_ctx_get(&saved);
    br_log_ctx_set(&c->log_ctx);
    was = br_upstream_urgent_scope(c->urgent);
    finish(c);
    br_upstream_urgent_scope(was);
    br_log_ctx_set(&saved);
}

/*
 * Ends a call that has no answer to wait for, from the loop: the upstream
 * refused its first request, or its first step sent nothing.  The timer
 * lives in the call, so nothing else has to outlive it; the upstream's own
 * handles may already be closed (shutdown), the loop is still there.
 */
static void
finish_later(struct br_rest_call *c)
{
    uv_timer_init(br_upstream_loop(c->up), &c->later);
    c->later.data = c;
    c->later_used = true;
    uv_timer_start(&c->later, on_later, 0, 0);
}

int
br_rest_status_err(long status, bool notfound_404)
{
    if (status >= 200 && status < 300)
        return 0;
    if (status == 408 || status == 429 || status >= 500)
        return BR_ERETRY;
    if (status == 404 && notfound_404)
        return BR_ENOTFOUND;
    return BR_EFATAL;
}

void
br_rest_call_hide(struct br_rest_call *c, const char *secret, const char *shown)
{
    free(c->secret);
    free(c->secret_shown);
    c->secret = secret && *secret ? br_strdup(secret) : NULL;
    c->secret_shown = br_strdup(shown ? shown : "");
}

/* The answer as it is kept: the status and the body's first RESPONSE_KEEP bytes, the call's secret hidden. */
static char *
kept_response(const struct br_rest_call *c, const struct br_http_result *r)
{
    size_t k = c->secret ? strlen(c->secret) : 0;
    struct br_buf b;
    char *out;

    if (k == 0)
        return br_asprintf("%ld %.*s", r->status, (int)(r->body_len > RESPONSE_KEEP ? RESPONSE_KEEP : r->body_len),
                           r->body);
    br_buf_init(&b, 0);
    br_buf_printf(&b, "%ld ", r->status);
    for (size_t i = 0; i < r->body_len && b.len < RESPONSE_KEEP;) {
        if (r->body_len - i >= k && memcmp(r->body + i, c->secret, k) == 0) {
            br_buf_puts(&b, c->secret_shown);
            i += k;
        } else {
            br_buf_putc(&b, r->body[i++]);
        }
    }
    out = br_strdup(b.data ? b.data : "");
    br_buf_dispose(&b);
    return out;
}

static void on_http(void *arg, const struct br_http_result *r);

int
br_rest_send(struct br_rest_call *c, const struct br_rest_req *rq, br_rest_step_fn step)
{
    const char *headers[] = {c->auth, rq->header, rq->body ? "Content-Type: application/json" : NULL,
                             "Accept: application/json", NULL};
    const char *h[BR_ARRAY_SIZE(headers)];
    size_t n = 0;
    char *url = br_asprintf("%s%s", c->base_url, rq->path);
    char *text = rq->body ? json_dumps(rq->body, JSON_COMPACT) : NULL;
    int rc;

    for (size_t i = 0; i < BR_ARRAY_SIZE(headers); i++)
        if (headers[i])
            h[n++] = headers[i];
    h[n] = NULL;
    /* A read-back after a write keeps the write as the request a dead letter shows. */
    if (c->res.request == NULL || strcmp(rq->method, "GET") != 0 || strncmp(c->res.request, "GET ", 4) == 0) {
        free(c->res.request);
        c->res.request = rq->summary ? br_strdup(rq->summary)
                                     : br_asprintf("%s %s%s%s %s", rq->method, rq->path, rq->as ? " as " : "",
                                                   rq->as ? rq->as : "", text ? text : "");
    }
    c->step = step;
    rc = br_upstream_send(c->up, rq->method, url, h, text, c->timeout_ms, on_http, c);
    free(url);
    free(text);
    json_decref(rq->body);
    if (rc == 0) {
        c->in_flight = true;
        return 0;
    }
    /* The upstream refuses only when it is closing: what was read so far means nothing. */
    c->res.err = BR_ECANCELED;
    free(c->res.error);
    c->res.error = br_strdup("cannot queue request: shutting down");
    free(c->res.id);
    c->res.id = NULL;
    br_comment_list_dispose(&c->res.comments);
    free(c->res.change);
    c->res.change = NULL;
    json_decref(c->res.data);
    c->res.data = NULL;
    return rc;
}

int
br_rest_start(struct br_rest_call *c, const struct br_rest_req *rq, br_rest_step_fn step)
{
    if (br_rest_send(c, rq, step) != 0)
        finish_later(c);
    return 0;
}

int
br_rest_run(struct br_rest_call *c, br_rest_step_fn step)
{
    step(c, NULL);
    if (!c->in_flight)
        finish_later(c);
    return 0;
}

/* The status decides: the one rule, with the API's own words when its check hook gave some. */
static void
by_status(struct br_rest_call *c, long status)
{
    int err = br_rest_status_err(status, c->notfound_404);

    /*
     * A refused key (401) is the account's, not the request's: the job
     * waits for the admin to fix the key, as for a 429.  A 403 may be
     * about one request (an employee without the right in one project):
     * it stays that request's failure.
     */
    if (status == 401) {
        c->res.key_refused = 1;
        err = BR_ERETRY;
    }

    /* A 2xx that is not the API's answer (a proxy's page): try again later. */
    c->res.err = err ? err : BR_ERETRY;
    if (c->res.error == NULL)
        c->res.error = br_asprintf("%s answered HTTP %ld", c->api->name, status);
}

static void read_answer(struct br_rest_call *c, const struct br_http_result *r);

/*
 * An answer (or a transport failure) is read in the log context of the
 * call's maker, and with its urgency: the next request of the call, and
 * any call its callback makes, are as urgent as the first.
 */
static void
on_http(void *arg, const struct br_http_result *r)
{
    struct br_rest_call *c = arg;
    struct br_log_ctx saved;
    bool was;

    br_log_ctx_get(&saved);
    br_log_ctx_set(&c->log_ctx);
    was = br_upstream_urgent_scope(c->urgent);
    read_answer(c, r);
    br_upstream_urgent_scope(was);
    br_log_ctx_set(&saved);
}

static void
read_answer(struct br_rest_call *c, const struct br_http_result *r)
{
    json_t *answer = NULL;
    json_error_t je;
    int verdict;

    c->in_flight = false;
    free(c->res.response);
    c->res.response = NULL;
    free(c->res.error);
    c->res.error = NULL;
    c->res.retry_after_s = r->retry_after_s;
    c->res.status = r->status;
    c->server_date_s = r->err ? -1 : r->server_date_s;
    c->answered_ms = br_now_ms();
    if (r->err) {
        c->res.err = r->err == BR_ECANCELED ? BR_ECANCELED : BR_ERETRY;
        c->res.error = br_asprintf("%s: %s", br_strerror(r->err), r->error ? r->error : "");
        if (r->err != BR_ECANCELED)
            br_upstream_note(c->up, c->res.error);
        finish(c);
        return;
    }
    c->res.response = kept_response(c, r);
    if (r->body_len > 0)
        answer = json_loadb(r->body, r->body_len, 0, &je);
    if (c->api->check)
        verdict = c->api->check(c, r, answer);
    else
        verdict = r->status >= 200 && r->status < 300 ? 0 : BR_REST_BY_STATUS;
    if (verdict == 0) {
        br_upstream_note(c->up, NULL);
        if (c->step)
            c->step(c, answer);
    } else {
        if (verdict == BR_REST_BY_STATUS) {
            by_status(c, r->status);
        } else {
            c->res.err = verdict;
            if (c->res.error == NULL)
                c->res.error = br_asprintf("%s answered HTTP %ld", c->api->name, r->status);
        }
        /*
         * The upstream's health (/healthz): what is retried (no answer, 5xx,
         * 429, the API's passing faults) and a refused key say the account
         * does not work; a refusal of one request's data says it does.
         */
        br_upstream_note(c->up, c->res.err == BR_ERETRY || r->status == 401 || r->status == 403 ? c->res.error : NULL);
    }
    json_decref(answer);
    if (!c->in_flight)
        finish(c);
}
