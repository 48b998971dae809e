/*
 * redmine_call.c - one Redmine call (redmine_call.h): its REST target and
 * key, its requests as an employee (X-Redmine-Switch-User), and what
 * Redmine's answers mean beyond their status.
 */
#include "trackers/redmine_call.h"

#include "config.h"
#include "rest.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct br_rest_api redmine_api;

struct call *
br_rm_call_new(struct br_tracker *t, br_result_cb cb, void *arg)
{
    struct rm *rm = (struct rm *)t;
    /* The engine sets t->up after the driver is made: read it per call. */
    struct br_rest_target to = {t->up, t->cfg->tracker_url, rm->key_header, t->cfg->tracker_timeout_ms};
    struct call *c = br_rest_call_new(sizeof(*c), &redmine_api, &to, cb, arg);

    c->rm = rm;
    c->rest.notfound_404 = true;
    return c;
}

static void
call_dispose(struct br_rest_call *rc)
{
    struct call *c = (struct call *)rc;

    free(c->task_id);
    free(c->text);
    free(c->employee);
    free(c->path);
}

char *
br_rm_escape_url(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = br_strdup(e ? e : "");
    curl_free(e);
    return out;
}

/* Sends a request of the call as c->employee (X-Redmine-Switch-User), or as the key's own user. */
static void
send_as(struct call *c, bool first, const char *method, const char *path, json_t *body, br_rest_step_fn step)
{
    char *switch_user = c->employee ? br_asprintf("X-Redmine-Switch-User: %s", c->employee) : NULL;
    struct br_rest_req rq = {.method = method, .path = path, .body = body, .header = switch_user, .as = c->employee};

    if (first)
        br_rest_start(&c->rest, &rq, step);
    else
        br_rest_send(&c->rest, &rq, step);
    free(switch_user);
}

/* The call's first request (rest.h: br_rest_start). */
void
br_rm_start(struct call *c, const char *method, const char *path, json_t *body, br_rest_step_fn step)
{
    send_as(c, true, method, path, body, step);
}

/* The call's next request, from inside a step (rest.h: br_rest_send). */
void
br_rm_again(struct call *c, const char *method, const char *path, json_t *body, br_rest_step_fn step)
{
    send_as(c, false, method, path, body, step);
}

/* Redmine's {"errors": ["Subject cannot be blank", ...]} as one line. */
static char *
errors_line(json_t *answer)
{
    struct br_buf b;
    size_t i;
    json_t *v;

    br_buf_init(&b, 1000);
    json_array_foreach(json_object_get(answer, "errors"), i, v) {
        if (json_is_string(v)) {
            br_buf_puts(&b, i ? "; " : ": ");
            br_buf_puts(&b, json_string_value(v));
        }
    }
    return b.data ? br_buf_steal(&b) : br_strdup("");
}

/*
 * What Redmine's answers mean beyond the status (rest.h decides by it):
 * a 2xx is Redmine's only with a JSON object or no body, and a failure is
 * explained with what Redmine named ("errors") and what to check.
 */
static int
check_answer(struct br_rest_call *rc, const struct br_http_result *r, json_t *answer)
{
    struct call *c = (struct call *)rc;
    char *why;

    if (r->status >= 200 && r->status < 300) {
        if (r->body_len == 0 || json_is_object(answer))
            return 0;
        /* A proxy's page, or not Redmine at all: try again later. */
        rc->res.error = br_asprintf("HTTP %ld with an answer that is not Redmine's JSON", r->status);
        return BR_REST_BY_STATUS;
    }
    if (c->lookup && (r->status == 401 || r->status == 403)) {
        /* Only administrators may list users: go on without the employees' ids (got_user). */
        c->rm->users[c->user_i].id = -1;
        return 0;
    }
    why = errors_line(answer);
    switch (r->status) {
    case 404:
        rc->res.error = br_asprintf("HTTP 404: not found in Redmine");
        break;
    case 412:
        rc->res.error = br_asprintf("HTTP 412: Redmine has no active user with login \"%s\" "
                                    "(employees[].tracker_user), or the API key is not an administrator's",
                                    c->employee ? c->employee : "");
        break;
    case 401:
    case 403:
        rc->res.error = br_asprintf("HTTP %ld: Redmine refused the API key (is the REST API enabled, is the key an "
                                    "administrator's, may it use project %s?)%s",
                                    r->status, c->rm->base.cfg->tracker_project, why);
        break;
    case 422:
        rc->res.error = br_asprintf("HTTP 422: Redmine refused the data%s", why);
        break;
    default:
        rc->res.error = br_asprintf("HTTP %ld%s", r->status, why);
        break;
    }
    free(why);
    return BR_REST_BY_STATUS;
}

static const struct br_rest_api redmine_api = {
    .name = "Redmine",
    .check = check_answer,
    .dispose = call_dispose,
};
