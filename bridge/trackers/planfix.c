/*
 * planfix.c - the Planfix REST v2 driver (see shared/reference/planfix.md).
 *
 * Every operation is one REST call (rest.h) of one or more requests; the
 * driver keeps its requests, the steps that read the answers, and how
 * Planfix's answers read: Planfix reports some failures inside a 2xx
 * ({"result":"fail"}), so the "result" field decides success, never the
 * status alone (check_answer).  Dates are read and written in the API
 * user's time zone (planfix.h).
 */
#include "planfix.h"

#include "tracker.h"
#include "config.h"
#include "config_load.h"
#include "email.h"
#include "log.h"
#include "rest.h"
#include "tz.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PAGE_SIZE 100
#define MAX_PAGES 100      /* 10,000 comments on one task is more than any chat */
/*
 * Attempts of a job whose answer is a failure with a code Planfix does
 * not document as a validation error (1001, 2001, 5001...): often a
 * passing fault on Planfix's side, sometimes a lasting one.  With the
 * engine's backoff (1, 2, 4, 8 s) the last try is about 15 s after the
 * first; then the job is a dead letter.
 */
#define UNKNOWN_CODE_ATTEMPTS 5

struct pf {
    struct br_tracker base;
    char *auth_header;
};

/* One operation: the REST call (rest.h) and what Planfix's steps keep. */
struct call {
    struct br_rest_call rest;
    struct pf *pf;
    char *source_key;
    char *list_path;       /* for paged list requests */
    json_t *request_body;  /* for paged requests */
    int page;
    bool second;           /* a request in two parts is at its second (find_active_task) */
    bool closed;           /* create_task asked for a completed status */
    /* A poll: only comments of this wall-clock window (ms, UTC) are kept (see pf_list_recent_comments). */
    bool windowed;
    int64_t win_from_ms, win_to_ms;
    /* A task's comments read newest first, down to one the caller has (see pf_list_comments). */
    struct br_comments_known known;
};

static const struct br_rest_api planfix_api;

static struct call *
call_new(struct br_tracker *t, br_result_cb cb, void *arg)
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
static json_t *
get_ci(json_t *obj, const char *key)
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
    /* bad token, scope denied, invalid JSON, missing parameter, invalid value, invalid e-mail */
    return code == 1 || code == 5 || code == 30 || code == 40 || code == 41 || code == 2004;
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
    json_t *result = json_is_object(answer) ? get_ci(answer, "result") : NULL;
    json_t *code = json_is_object(answer) ? get_ci(answer, "code") : NULL;
    json_t *err = json_is_object(answer) ? get_ci(answer, "error") : NULL;
    long ncode = json_is_integer(code) ? (long)json_integer_value(code) : -1;

    if (json_is_string(result) && strcasecmp(json_string_value(result), "success") == 0 && status >= 200 &&
        status < 300) {
        if (rc->step == NULL && json_array_size(get_ci(answer, "failures")) > 0) {
            /* An update that Planfix applied only in part (e.g. the status): not done. */
            char *f = json_dumps(get_ci(answer, "failures"), JSON_COMPACT);
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

static void
start(struct call *c, const char *method, const char *path, json_t *body, br_rest_step_fn step)
{
    br_rest_start(&c->rest, &(struct br_rest_req){.method = method, .path = path, .body = body}, step);
}

/* Starts a paged list: POST path with body (kept: next_page asks for the next pages with it). */
static void
start_list(struct call *c, const char *path, json_t *body, br_rest_step_fn step)
{
    c->list_path = br_strdup(path);
    c->request_body = body;
    start(c, "POST", path, json_incref(body), step);
}

/* Asks for page c->page of the list, answered to the step running now. */
static void
next_page(struct call *c)
{
    struct br_rest_req rq = {.method = "POST", .path = c->list_path, .body = json_incref(c->request_body)};

    json_object_set_new(c->request_body, "offset", json_integer(c->page * PAGE_SIZE));
    /* Refused (shutting down): the list is incomplete, and the call is cancelled. */
    br_rest_send(&c->rest, &rq, c->rest.step);
}

static void
take_id(struct br_rest_call *rc, json_t *answer)
{
    rc->res.id = br_tracker_id(get_ci(answer, "id"));
    if (rc->res.id == NULL) {
        rc->res.err = BR_EFATAL;
        rc->res.error = br_strdup("Planfix answered success without an id");
    }
}

/* ---- contacts ---- */

static void
found_contact(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = get_ci(answer, "contacts");
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v) {
        json_t *k = json_object_get(v, "sourceObjectId");
        if (c->source_key && json_is_string(k) && strcmp(json_string_value(k), c->source_key) == 0) {
            rc->res.id = br_tracker_id(json_object_get(v, "id"));
            rc->res.made = true;
            return;
        }
    }
    json_array_foreach(list, i, v) {
        char *id = br_tracker_id(json_object_get(v, "id"));
        if (id) {
            rc->res.id = id;
            return;
        }
    }
    rc->res.err = BR_ENOTFOUND;
}

static void
pf_find_contact(struct br_tracker *t, const char *email, const char *source_key, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    json_t *body = json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                             "fields", "id,name,lastname,email,sourceObjectId", "filters", "type", 4026, "operator",
                             "equal", "value", email);
    if (source_key)
        c->source_key = br_strdup(source_key);
    start(c, "POST", "/contact/list", body, found_contact);
}

/* Custom fields as Planfix takes them: [{"field": {"id": 10}, "value": "text"}]. */
static json_t *
custom_field_data(const struct br_field_value *fields, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:{s:I}, s:s}", "field", "id", (json_int_t)fields[i].id, "value",
                                             fields[i].value));
    return arr;
}

static json_t *
contact_body(const struct br_contact_spec *s)
{
    json_t *body = json_object();

    if (s->template_id)
        json_object_set_new(body, "template", json_pack("{s:I}", "id", (json_int_t)s->template_id));
    if (s->name)
        json_object_set_new(body, "name", json_string(s->name));
    if (s->lastname)
        json_object_set_new(body, "lastname", json_string(s->lastname));
    if (s->email)
        json_object_set_new(body, "email", json_string(s->email));
    if (s->phone)
        json_object_set_new(body, "phones", json_pack("[{s:s, s:i}]", "number", s->phone, "type", 1));
    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    if (s->n_fields)
        json_object_set_new(body, "customFieldData", custom_field_data(s->fields, s->n_fields));
    return body;
}

static void
pf_create_contact(struct br_tracker *t, const struct br_contact_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    start(c, "POST", "/contact/", contact_body(s), take_id);
}

static void
found_company(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = get_ci(answer, "contacts");
    size_t i;
    json_t *v;

    /* "Part of name" also matches longer names: only the exact domain counts. */
    json_array_foreach(list, i, v) {
        json_t *name = json_object_get(v, "name");
        if (json_is_string(name) && strcasecmp(json_string_value(name), c->source_key) == 0) {
            rc->res.id = br_tracker_id(json_object_get(v, "id"));
            if (rc->res.id)
                return;
        }
    }
    rc->res.err = BR_ENOTFOUND;
}

static void
pf_find_company(struct br_tracker *t, const char *name, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    c->source_key = br_strdup(name);
    start(c, "POST", "/contact/list",
                 json_pack("{s:i, s:i, s:b, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                           "isCompany", 1, "fields", "id,name", "filters", "type", 4001, "operator", "equal",
                           "value", name),
                 found_company);
}

static void
pf_create_company(struct br_tracker *t, const char *name, long template_id, const char *source_key, br_result_cb cb,
                  void *arg)
{
    struct call *c = call_new(t, cb, arg);
    json_t *body = json_pack("{s:s, s:b, s:s}", "name", name, "isCompany", 1, "site", name);

    if (template_id)
        json_object_set_new(body, "template", json_pack("{s:I}", "id", (json_int_t)template_id));
    if (source_key)
        json_object_set_new(body, "sourceObjectId", json_string(source_key));
    start(c, "POST", "/contact/", body, take_id);
}

static void
pf_update_contact(struct br_tracker *t, const char *contact_id, const struct br_contact_spec *s, br_result_cb cb,
                  void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *path = br_asprintf("/contact/%s", contact_id);
    start(c, "POST", path, contact_body(s), NULL);
    free(path);
}

static void
pf_delete_contact(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *path = br_asprintf("/contact/%s", contact_id);
    start(c, "POST", path, json_pack("{s:b}", "isDeleted", 1), NULL);
    free(path);
}

/*
 * Looks for the object whose sourceObjectId is c->source_key in a list
 * answer, paging on while pages are full.
 */
static void
found_by_key(struct call *c, json_t *answer, const char *list_key)
{
    json_t *list = get_ci(answer, list_key);
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v) {
        json_t *k = json_object_get(v, "sourceObjectId");
        if (json_is_string(k) && strcmp(json_string_value(k), c->source_key) == 0) {
            c->rest.res.id = br_tracker_id(json_object_get(v, "id"));
            return;
        }
    }
    if (json_array_size(list) == PAGE_SIZE && ++c->page < MAX_PAGES)
        next_page(c);
    else
        c->rest.res.err = BR_ENOTFOUND;
}

static void
found_contact_by_key(struct br_rest_call *rc, json_t *answer)
{
    found_by_key((struct call *)rc, answer, "contacts");
}

static void
pf_find_contact_by_key(struct br_tracker *t, const char *name, const char *source_key, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);

    /* Planfix has no filter on sourceObjectId: narrow by name (4001, part of name), then match. */
    c->source_key = br_strdup(source_key);
    start_list(c, "/contact/list",
                      json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                                "id,name,lastname,email,sourceObjectId", "filters", "type", 4001, "operator", "equal",
                                "value", name),
                      found_contact_by_key);
}

/* ---- tasks ---- */

/* "contact:9" for contact 9; an id written with its prefix stays as it is. */
static char *
ref(const char *prefix, const char *id)
{
    return strchr(id, ':') ? br_strdup(id) : br_asprintf("%s:%s", prefix, id);
}

static json_t *
person(const char *prefix, const char *id)
{
    char *full = ref(prefix, id);
    json_t *v = json_pack("{s:s}", "id", full);
    free(full);
    return v;
}

/*
 * A task made with its status (TaskCreateRequest's "status"): Planfix
 * answers only the id, and an answer of success means the whole request
 * was taken.
 */
static void
take_task_id(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;

    take_id(rc, answer);
    rc->res.closed = rc->res.err == 0 && c->closed && json_array_size(get_ci(answer, "failures")) == 0;
}

static void
pf_create_task(struct br_tracker *t, const struct br_task_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    json_t *body = json_object();

    if (s->template_id)
        json_object_set_new(body, "template", json_pack("{s:I}", "id", (json_int_t)s->template_id));
    json_object_set_new(body, "name", json_string(s->title));
    json_object_set_new(body, "description", json_string(s->description));
    if (s->contact_id)
        json_object_set_new(body, "assigner", person("contact", s->contact_id));
    if (s->company_id || s->contact_id)
        json_object_set_new(body, "counterparty", person("contact", s->company_id ? s->company_id : s->contact_id));
    if (s->n_watchers) {
        json_t *users = json_array();
        for (size_t i = 0; i < s->n_watchers; i++)
            json_array_append_new(users, person("user", s->watchers[i]));
        /* Planfix calls watchers "auditors". */
        json_object_set_new(body, "auditors", json_pack("{s:o}", "users", users));
    }
    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    if (s->n_fields)
        json_object_set_new(body, "customFieldData", custom_field_data(s->fields, s->n_fields));
    if (s->closed_status_id > 0) {
        json_object_set_new(body, "status", json_pack("{s:I}", "id", (json_int_t)s->closed_status_id));
        c->closed = true;
    }
    start(c, "POST", "/task/", body, take_task_id);
}

static void
found_task(struct br_rest_call *rc, json_t *answer)
{
    found_by_key((struct call *)rc, answer, "tasks");
}

static void
pf_find_task(struct br_tracker *t, const char *contact_id, const char *source_key, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *who = ref("contact", contact_id);

    c->source_key = br_strdup(source_key);
    start_list(c, "/task/list",
                    json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                              "id,name,sourceObjectId", "filters", "type", 1, "operator", "equal", "value", who),
                    found_task);
    free(who);
}

/*
 * The contact's active tasks: first those where it is the assigner (filter
 * 1), then the counterparty (filter 7), page by page; the newest active one
 * (the highest number) wins.  c->page counts pages over both filters.
 */
static void
found_active(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = get_ci(answer, "tasks");
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v) {
        json_t *status = json_object_get(v, "status");
        char *id;
        if (json_is_true(json_object_get(v, "isDeleted")) || json_is_false(json_object_get(status, "isActive")))
            continue;
        if ((id = br_tracker_id(json_object_get(v, "id"))) == NULL)
            continue;
        if (rc->res.id == NULL || strtoll(id, NULL, 10) > strtoll(rc->res.id, NULL, 10)) {
            free(rc->res.id);
            rc->res.id = id;
        } else {
            free(id);
        }
    }
    if (json_array_size(list) == PAGE_SIZE && ++c->page < MAX_PAGES) {
        next_page(c);
    } else if (!c->second) {
        /* The assigner's tasks are read: now the counterparty's. */
        c->second = true;
        c->page = 0;
        json_object_set_new(json_array_get(json_object_get(c->request_body, "filters"), 0), "type", json_integer(7));
        next_page(c);
    } else if (rc->res.id == NULL) {
        rc->res.err = BR_ENOTFOUND;
    }
}

static void
pf_find_active_task(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *who = ref("contact", contact_id);
    start_list(c, "/task/list",
                        json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                                  "fields", "id,status,isDeleted", "filters", "type", 1, "operator", "equal", "value",
                                  who),
                        found_active);
    free(who);
}

/* ---- the contact's card ---- */

static void
pf_add_contact_comment(struct br_tracker *t, const char *contact_id, const struct br_comment_spec *s,
                       br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    json_t *body = json_pack("{s:s}", "description", s->text);
    char *path = br_asprintf("/contact/%s/comments/", contact_id);

    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    start(c, "POST", path, body, take_id);
    free(path);
}

static void
pf_close_task(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *path = br_asprintf("/task/%s", task_id);
    start(c, "POST", path, json_pack("{s:{s:I}}", "status", "id", (json_int_t)status_id), NULL);
    free(path);
}

static void
got_task_state(struct br_rest_call *rc, json_t *answer)
{
    json_t *task = get_ci(answer, "task");
    json_t *status = json_object_get(task, "status");

    if (json_is_true(json_object_get(task, "isDeleted")))
        rc->res.task_status = BR_TASK_STATUS_DELETED;
    else if (json_is_false(json_object_get(status, "isActive")))
        rc->res.task_status = BR_TASK_STATUS_INACTIVE;
    else
        rc->res.task_status = BR_TASK_STATUS_ACTIVE;
}

static void
pf_task_state(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *path = br_asprintf("/task/%s?fields=id,status,isDeleted", task_id);
    start(c, "GET", path, NULL, got_task_state);
    free(path);
}

/* Learns the API user's offset from an answer's TimePoint; the newest answer wins (DST). */
static void
learn_clock(struct pf *pf, int64_t utc_ms, long offset_s)
{
    struct br_tracker_clock *clk = &pf->base.clock;
    int64_t now = (int64_t)time(NULL) * 1000;

    /* A comment dated in the future would otherwise outrank every answer until then. */
    if (utc_ms > now)
        utc_ms = now;
    if (utc_ms < clk->learned_at_ms)
        return;
    if (clk->learned_at_ms == 0 || clk->utc_offset_s != offset_s)
        br_info("planfix: the API user's clock is at UTC%c%02ld:%02ld (from Planfix's answers)%s",
                offset_s < 0 ? '-' : '+', labs(offset_s) / 3600, labs(offset_s) % 3600 / 60,
                pf->base.cfg->tracker_timezone ? "; tracker.timezone is set and wins" : "");
    clk->learned_at_ms = utc_ms;
    clk->utc_offset_s = offset_s;
}

/* ---- comments ---- */

static void
pf_add_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    json_t *body = json_object();
    char *path = br_asprintf("/task/%s/comments/", s->task_id);

    json_object_set_new(body, "description", json_string(s->text));
    if (s->contact_id)
        json_object_set_new(body, "owner", person("contact", s->contact_id));
    else if (s->employee)
        json_object_set_new(body, "owner", person("user", s->employee));
    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    start(c, "POST", path, body, take_id);
    free(path);
}

/* A comment id as Planfix's number, or -1. */
static long long
id_number(const char *id)
{
    char *end;
    long long n;

    if (id == NULL || *id < '0' || *id > '9')
        return -1;
    n = strtoll(id, &end, 10);
    return *end == '\0' ? n : -1;
}

static long long
comment_number(json_t *id)
{
    return json_is_integer(id) ? json_integer_value(id) : id_number(json_string_value(id));
}

/*
 * Whether a page of a read newest first is the last one needed: it is
 * full (a shorter one is the last anyway), its ids fall strictly from the
 * first to the last (an order Planfix ignored proves nothing: the read
 * goes on as without known), and its last, oldest comment is one the
 * caller has.  Older comments than that are the caller's already.
 */
static bool
page_reaches_known(struct call *c, json_t *list)
{
    size_t i, n = json_array_size(list);
    long long prev = -1;
    char *last;
    bool has;

    if (n != PAGE_SIZE)
        return false;
    for (i = 0; i < n; i++) {
        long long id = comment_number(json_object_get(json_array_get(list, i), "id"));
        if (id < 0 || (i > 0 && id >= prev))
            return false;
        prev = id;
    }
    last = br_tracker_id(json_object_get(json_array_get(list, n - 1), "id"));
    has = last != NULL && c->known.has(c->known.arg, last);
    free(last);
    return has;
}

/* qsort: by Planfix's id, the order comments were made in. */
static int
oldest_first(const void *a, const void *b)
{
    const struct br_comment_item *x = a, *y = b;
    long long nx = id_number(x->id), ny = id_number(y->id);

    if (nx >= 0 && ny >= 0)
        return nx < ny ? -1 : nx > ny;
    return strcmp(x->id, y->id);
}

static void
got_comments(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = get_ci(answer, "comments");
    size_t i;
    json_t *v;
    /* Whether the page proves it is newest first, and how old its last comment is. */
    int64_t first_ms = -1, prev_ms = -1, last_ms = -1;
    bool newest_first = true;
    int64_t win_from = c->win_from_ms - c->win_from_ms % 60000;

    json_array_foreach(list, i, v) {
        json_t *owner = json_object_get(v, "owner");
        json_t *desc = json_object_get(v, "description");
        json_t *key = json_object_get(v, "sourceObjectId");
        char *id = br_tracker_id(json_object_get(v, "id"));
        struct br_comment_item *item;
        int64_t at_ms;
        long off;

        if (br_planfix_time_point(json_object_get(v, "dateTime"), &at_ms, &off) == 0) {
            learn_clock(c->pf, at_ms, off);
            if (first_ms < 0)
                first_ms = at_ms;
            if (prev_ms >= 0 && at_ms > prev_ms)
                newest_first = false;
            prev_ms = last_ms = at_ms;
            /* The filter was wider than the window (see br_planfix_filter_dates): keep the window. */
            if (c->windowed && (at_ms < win_from || at_ms > c->win_to_ms)) {
                free(id);
                continue;
            }
        }
        if (id == NULL)
            continue;
        item = br_comment_list_add(&rc->res.comments);
        item->id = id;
        item->author = br_strdup(json_is_string(json_object_get(owner, "id")) ? json_string_value(json_object_get(owner, "id")) : "");
        item->author_name = br_strdup(json_is_string(json_object_get(owner, "name"))
                                          ? json_string_value(json_object_get(owner, "name")) : "");
        item->html = br_strdup(json_is_string(desc) ? json_string_value(desc) : "");
        item->hidden = json_is_true(json_object_get(v, "isHidden"));
        item->source_key = json_is_string(key) && json_string_length(key) ? br_strdup(json_string_value(key)) : NULL;
        item->task = br_tracker_id(json_object_get(json_object_get(v, "task"), "id"));
    }
    /*
     * A poll asks for the newest first; a page that is so (strictly, so
     * that a page of one minute or an order Planfix ignored proves
     * nothing) and ends before the window has the rest of the window.
     */
    if (c->windowed && newest_first && first_ms > last_ms && last_ms < win_from)
        return;
    if (c->known.has != NULL && page_reaches_known(c, list))
        goto done;
    if (json_array_size(list) == PAGE_SIZE && ++c->page < MAX_PAGES) {
        next_page(c);
        return;
    }
done:
    if (c->known.has != NULL && rc->res.comments.n > 1)
        qsort(rc->res.comments.items, rc->res.comments.n, sizeof(rc->res.comments.items[0]), oldest_first);
}

/*
 * A task's comments.  With known (a fetch after a reply webhook or a
 * poll), newest first: a long chat's task costs one page a read, not one
 * per hundred comments it ever had.  Either way they come oldest first.
 */
static void
pf_list_comments(struct br_tracker *t, const char *task_id, const struct br_comments_known *known, br_result_cb cb,
                 void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *path = br_asprintf("/task/%s/comments/list", task_id);
    json_t *body = json_pack("{s:i, s:i, s:s, s:s}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                             "id,dateTime,description,owner,isHidden,type,sourceObjectId", "typeList", "Comments");

    if (known != NULL && known->has != NULL) {
        c->known = *known;
        json_object_set_new(body, "resultOrder", json_pack("[{s:s, s:s}]", "field", "id", "direction", "Desc"));
    }
    start_list(c, path, body, got_comments);
    free(path);
}

static void
pf_list_contact_comments(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);
    char *path = br_asprintf("/contact/%s/comments/list", contact_id);

    start_list(c, path,
                    json_pack("{s:i, s:i, s:s}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                              "id,dateTime,description,owner,sourceObjectId"),
                    got_comments);
    free(path);
}

static void
pf_list_recent_comments(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb, void *arg)
{
    struct pf *pf = (struct pf *)t;
    struct call *c = call_new(t, cb, arg);
    struct br_planfix_zone zone = {pf->base.cfg->tracker_timezone, pf->base.clock.learned_at_ms > 0,
                                   pf->base.clock.utc_offset_s};
    char from[32], to[32];

    /*
     * Planfix reads the dates in the API user's zone.  Until that is
     * known (a first start without tracker.timezone) the filter spans
     * every zone; newest first, the paging stops at the window's start,
     * and got_comments keeps only the window, so a wider filter costs no
     * more requests and relays nothing twice.
     */
    br_planfix_filter_dates(&zone, from_ms, to_ms, from, to);
    c->windowed = true;
    c->win_from_ms = from_ms;
    c->win_to_ms = to_ms;
    start_list(c, "/comment/list",
                      json_pack("{s:i, s:i, s:s, s:s, s:[{s:i, s:s, s:{s:s, s:s, s:s}}], s:[{s:s, s:s}]}", "offset",
                                0, "pageSize", PAGE_SIZE, "fields",
                                "id,dateTime,description,owner,isHidden,type,sourceObjectId,task", "typeList",
                                "Comments", "filters", "type", 3000, "operator", "equal", "value", "dateType",
                                "otherRange_withTime", "dateFrom", from, "dateTo", to, "resultOrder", "field",
                                "dateTime", "direction", "Desc"),
                      got_comments);
}

/* ---- users ---- */

/* Planfix answers user ids as numbers, or as "user:5" with prefixedId. */
static char *
user_ref(json_t *v)
{
    char *id = br_tracker_id(v);
    char *out;

    if (id == NULL || strchr(id, ':'))
        return id;
    out = br_asprintf("user:%s", id);
    free(id);
    return out;
}

static void
found_user(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = get_ci(answer, "users");
    size_t i;
    json_t *v;

    /* The filter is "equal"; an e-mail in the answer still has to be the one asked for. */
    json_array_foreach(list, i, v) {
        json_t *mail = json_object_get(v, "email");
        char *norm = json_is_string(mail) ? br_email_normalize(json_string_value(mail), json_string_length(mail)) : NULL;
        bool same = mail == NULL || (norm && strcmp(norm, c->source_key) == 0);
        free(norm);
        if (same && (rc->res.id = user_ref(json_object_get(v, "id"))) != NULL)
            return;
    }
    rc->res.err = BR_ENOTFOUND;
}

static void
pf_find_user(struct br_tracker *t, const char *email, br_result_cb cb, void *arg)
{
    struct call *c = call_new(t, cb, arg);

    c->source_key = br_strdup(email);
    start(c, "POST", "/user/list",
                 json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                           "id,name,lastname,email", "filters", "type", 9003, "operator", "equal", "value", email),
                 found_user);
}

static void
pf_free(struct br_tracker *t)
{
    struct pf *pf = (struct pf *)t;
    free(pf->auth_header);
    free(pf);
}

static const struct br_tracker_ops planfix_ops = {
    .kind = &br_planfix_kind,
    .caps = {.contacts = true, .contact_comments = true, .active_tasks = true, .users = true, .comment_keys = true},
    .poll_overlap_ms = 10 * 60 * 1000, /* Planfix filters by the minute */
    .find_contact = pf_find_contact,
    .create_contact = pf_create_contact,
    .find_contact_by_key = pf_find_contact_by_key,
    .update_contact = pf_update_contact,
    .find_company = pf_find_company,
    .create_company = pf_create_company,
    .delete_contact = pf_delete_contact,
    .create_task = pf_create_task,
    .find_task = pf_find_task,
    .add_comment = pf_add_comment,
    .list_comments = pf_list_comments,
    .close_task = pf_close_task,
    .list_recent_comments = pf_list_recent_comments,
    .task_state = pf_task_state,
    .find_active_task = pf_find_active_task,
    .add_contact_comment = pf_add_contact_comment,
    .list_contact_comments = pf_list_contact_comments,
    .find_user = pf_find_user,
    .free = pf_free,
};

static int
pf_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up)
{
    struct pf *pf = br_calloc(1, sizeof(*pf));
    pf->base.ops = &planfix_ops;
    pf->base.up = up;
    pf->base.cfg = cfg;
    pf->auth_header = br_asprintf("Authorization: Bearer %s", cfg->tracker_token);
    *out = &pf->base;
    return 0;
}

/* Planfix's own keys: a token, the secret of its webhooks' URL. */
static void
pf_load(struct br_conf_loader *L, json_t *o)
{
    static const char *const redmine_only[] = {"api_key", "project", NULL};
    struct br_config *c = L->cfg;

    if (c->tracker == &br_planfix_kind) /* not when the kind is missing */
        br_conf_refuse(L, o, "tracker", redmine_only, "is a Redmine setting (tracker.kind is \"planfix\")");
    c->tracker_token = br_conf_str(L, o, "tracker", "token", NULL, true, true);
    c->tracker_webhook_secret = br_conf_str(L, o, "tracker", "webhook_secret", NULL, true, true);
    br_conf_check_secret(L, "tracker", "webhook_secret", c->tracker_webhook_secret);
}

static const char *const pf_keys[] = {"token", "webhook_secret", NULL};

/* tracker.url is the REST API's, https://ACCOUNT.planfix.com/rest: tasks are shown at /task/N beside it. */
static char *
pf_task_url(const struct br_config *cfg, const char *task_id)
{
    const char *url = cfg->tracker_url;
    size_t n = strlen(url);

    if (n >= 5 && strcmp(url + n - 5, "/rest") == 0)
        n -= 5;
    return br_asprintf("%.*s/task/%s", (int)n, url, task_id);
}

const struct br_tracker_kind br_planfix_kind = {
    .name = "planfix",
    .label = "Planfix",
    .task_word = "task",
    .text_format = BR_TPL_ESCAPE_HTML,
    .text_ext = "html",
    .default_rps = 1,     /* Planfix allows 1 request per second */
    .default_poll_s = 60, /* webhooks bring replies; the poll only catches what they miss */
    .default_daily_quota = 20000, /* the smallest plan's requests a day */
    .ops = &planfix_ops,
    .task_templates = true,
    .keys = pf_keys,
    .load = pf_load,
    .create = pf_new,
    .task_url = pf_task_url,
};
