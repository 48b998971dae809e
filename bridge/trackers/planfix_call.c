/*
 * planfix_call.c - one Planfix call: its requests, the pages of a list,
 * and how Planfix's answers read.  Planfix reports some failures inside a
 * 2xx ({"result":"fail"}), so the "result" field decides success, never
 * the status alone (check_answer).
 */
#include "trackers/planfix_call.h"

#include "config.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Attempts of a job whose answer is a failure with a code Planfix does
 * not document as a validation error (1001, 2001, 5001...): often a
 * passing fault on Planfix's side, sometimes a lasting one.  With the
 * engine's backoff (1, 2, 4, 8 s) the last try is about 15 s after the
 * first; then the job is a dead letter.
 */
#define UNKNOWN_CODE_ATTEMPTS 5

static const struct br_rest_api planfix_api;

struct call *
br_pf_call_new(struct br_tracker *t, br_result_cb cb, void *arg)
{
    struct pf *pf = (struct pf *)t;
    /* The engine sets t->up after the driver is made: read it per call. */
    struct br_rest_target to = {t->up, t->cfg->tracker_url, pf->auth_header, t->cfg->tracker_timeout_ms};
    struct call *c = br_rest_call_new(sizeof(*c), &planfix_api, &to, cb, arg);

    c->pf = pf;
    return c;
}

static void
call_dispose(struct br_rest_call *rc)
{
    struct call *c = (struct call *)rc;

    free(c->source_key);
    free(c->list_path);
    json_decref(c->request_body);
}

/* Planfix's help pages capitalise keys where the API does not: look both up. */
json_t *
br_pf_get_ci(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    return NULL;
}

static int
is_fatal_code(long code)
{
    /* scope denied, invalid JSON, missing parameter, invalid value, invalid e-mail */
    return code == 5 || code == 30 || code == 40 || code == 41 || code == 2004;
}

/*
 * Planfix's words decide before the status (rest.h): {"result":
 * "success"} in a 2xx is the only success, a failure's code says what it
 * is, and a 2xx can be a failure.
 */
static int
check_answer(struct br_rest_call *rc, const struct br_http_result *r, json_t *answer)
{
    long status = r->status;
    json_t *result = json_is_object(answer) ? br_pf_get_ci(answer, "result") : NULL;
    json_t *code = json_is_object(answer) ? br_pf_get_ci(answer, "code") : NULL;
    json_t *err = json_is_object(answer) ? br_pf_get_ci(answer, "error") : NULL;
    long ncode = json_is_integer(code) ? (long)json_integer_value(code) : -1;

    if (json_is_string(result) && strcasecmp(json_string_value(result), "success") == 0 && status >= 200 &&
        status < 300) {
        if (rc->step == NULL && json_array_size(br_pf_get_ci(answer, "failures")) > 0) {
            /* An update that Planfix applied only in part (e.g. the status): not done. */
            char *f = json_dumps(br_pf_get_ci(answer, "failures"), JSON_COMPACT);
            rc->res.error = br_asprintf("Planfix applied the update only in part: %.300s", f);
            free(f);
            return BR_ERETRY;
        }
        return 0;
    }
    if (ncode >= 0)
        rc->res.error = br_asprintf("HTTP %ld, code %ld%s%s", status, ncode, json_is_string(err) ? ": " : "",
                                    json_is_string(err) ? json_string_value(err) : "");
    else
        rc->res.error = br_asprintf("HTTP %ld%s%s", status, json_is_string(err) ? ": " : "",
                                    json_is_string(err) ? json_string_value(err) : " (no Planfix answer)");
    if (ncode == 22) {
        rc->res.quota_exhausted = 1;
        return BR_ERETRY;
    }
    if (ncode == 1000)
        return BR_ENOTFOUND;
    /* A bad token (1) is the account's, so the jobs wait; one without a scope (5) fails that request. */
    if (ncode == 1) {
        rc->res.key_refused = 1;
        return BR_ERETRY;
    }
    /* 408, 429, 5xx: worth a retry whatever the code says. */
    if (br_rest_status_err(status, false) == BR_ERETRY)
        return BR_REST_BY_STATUS;
    if (is_fatal_code(ncode))
        return BR_EFATAL;
    if (ncode >= 0) {
        /*
         * Planfix answered, in a 2xx or a 4xx, with a code it does not
         * document as a validation error: worth a few tries, not more.
         */
        rc->res.max_attempts = UNKNOWN_CODE_ATTEMPTS;
        return BR_ERETRY;
    }
    /* Not Planfix's answer: a 4xx means the request itself is wrong, a 2xx is a proxy's page. */
    return BR_REST_BY_STATUS;
}

static const struct br_rest_api planfix_api = {
    .name = "Planfix",
    .check = check_answer,
    .dispose = call_dispose,
};

void
br_pf_start(struct call *c, const char *method, const char *path, json_t *body, br_rest_step_fn step)
{
    br_rest_start(&c->rest, &(struct br_rest_req){.method = method, .path = path, .body = body}, step);
}

/* Starts a paged list: POST path with body (kept: next_page asks for the next pages with it). */
void
br_pf_start_list(struct call *c, const char *path, json_t *body, br_rest_step_fn step)
{
    c->list_path = br_strdup(path);
    c->request_body = body;
    br_pf_start(c, "POST", path, json_incref(body), step);
}

/* Asks for page c->page of the list, answered to the step running now. */
void
br_pf_next_page(struct call *c)
{
    struct br_rest_req rq = {.method = "POST", .path = c->list_path, .body = json_incref(c->request_body)};

    json_object_set_new(c->request_body, "offset", json_integer(c->page * PAGE_SIZE));
    /* Refused (shutting down): the list is incomplete, and the call is cancelled. */
    br_rest_send(&c->rest, &rq, c->rest.step);
}

void
br_pf_take_id(struct br_rest_call *rc, json_t *answer)
{
    rc->res.id = br_tracker_id(br_pf_get_ci(answer, "id"));
    if (rc->res.id == NULL) {
        rc->res.err = BR_EFATAL;
        rc->res.error = br_strdup("Planfix answered success without an id");
    }
}

/* "contact:9" for contact 9; an id written with its prefix stays as it is. */
char *
br_pf_ref(const char *prefix, const char *id)
{
    return strchr(id, ':') ? br_strdup(id) : br_asprintf("%s:%s", prefix, id);
}

json_t *
br_pf_person(const char *prefix, const char *id)
{
    char *full = br_pf_ref(prefix, id);
    json_t *v = json_pack("{s:s}", "id", full);
    free(full);
    return v;
}
