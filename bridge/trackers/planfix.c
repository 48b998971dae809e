/*
 * planfix.c - the Planfix REST v2 driver (see shared/reference/planfix.md).
 *
 * Every operation is a small state machine of one or more requests.
 * Planfix reports some failures inside a 2xx ({"result":"fail"}), so the
 * "result" field decides success, never the status alone.  Dates are
 * read and written in the API user's time zone (planfix.h).
 */
#include "planfix.h"

#include "tracker.h"
#include "config.h"
#include "email.h"
#include "log.h"
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
#define RESPONSE_KEEP 2000 /* bytes of an answer kept for the dead-letter list */
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

struct call;
/* Called with the parsed success answer; returns 1 when it sent another request. */
typedef int (*next_fn)(struct call *c, json_t *answer);

struct call {
    struct pf *pf;
    br_result_cb cb;
    void *arg;
    next_fn next;
    struct br_result res;
    char *source_key;
    char *list_path;       /* for paged list requests */
    json_t *request_body;  /* for paged requests */
    int page;
    bool second;           /* a request in two parts is at its second (find_active_task) */
    /* A poll: only comments of this wall-clock window (ms, UTC) are kept (see pf_list_recent_comments). */
    bool windowed;
    int64_t win_from_ms, win_to_ms;
};

static struct call *
call_new(struct pf *pf, br_result_cb cb, void *arg, next_fn next)
{
    struct call *c = br_calloc(1, sizeof(*c));
    c->pf = pf;
    c->cb = cb;
    c->arg = arg;
    c->next = next;
    c->res.retry_after_s = -1;
    return c;
}

static void
finish(struct call *c)
{
    c->cb(c->arg, &c->res);
    br_result_dispose(&c->res);
    free(c->source_key);
    free(c->list_path);
    json_decref(c->request_body);
    free(c);
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

static void on_http(void *arg, const struct br_http_result *r);

static int
send_json(struct call *c, const char *method, const char *path, json_t *body)
{
    struct pf *pf = c->pf;
    const char *headers[] = {pf->auth_header, "Content-Type: application/json", "Accept: application/json",
                             NULL};
    char *url = br_asprintf("%s%s", pf->base.cfg->tracker_url, path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc;

    free(c->res.request);
    c->res.request = br_asprintf("%s %s %s", method, path, text ? text : "");
    rc = br_upstream_send(pf->base.up, method, url, headers, text, pf->base.cfg->tracker_timeout_ms, on_http, c);
    free(url);
    free(text);
    return rc;
}

static void
on_http(void *arg, const struct br_http_result *r)
{
    struct call *c = arg;
    json_t *answer = NULL, *result, *code;
    json_error_t je;

    free(c->res.response);
    c->res.response = NULL;
    c->res.retry_after_s = r->retry_after_s;
    c->res.status = r->status;
    if (r->err) {
        c->res.err = r->err == BR_ECANCELED ? BR_ECANCELED : BR_ERETRY;
        free(c->res.error);
        c->res.error = br_asprintf("%s: %s", br_strerror(r->err), r->error ? r->error : "");
        finish(c);
        return;
    }
    c->res.response = br_asprintf("%ld %.*s", r->status, (int)(r->body_len > RESPONSE_KEEP ? RESPONSE_KEEP : r->body_len),
                                  r->body);
    answer = json_loadb(r->body, r->body_len, 0, &je);
    result = json_is_object(answer) ? get_ci(answer, "result") : NULL;
    code = json_is_object(answer) ? get_ci(answer, "code") : NULL;
    if (json_is_string(result) && strcasecmp(json_string_value(result), "success") == 0 &&
        r->status >= 200 && r->status < 300 && c->next == NULL &&
        json_array_size(get_ci(answer, "failures")) > 0) {
        /* An update that Planfix applied only in part (e.g. the status): not done. */
        char *f = json_dumps(get_ci(answer, "failures"), JSON_COMPACT);
        c->res.err = BR_ERETRY;
        free(c->res.error);
        c->res.error = br_asprintf("Planfix applied the update only in part: %.300s", f);
        free(f);
        json_decref(answer);
        finish(c);
        return;
    }
    if (json_is_string(result) && strcasecmp(json_string_value(result), "success") == 0 &&
        r->status >= 200 && r->status < 300) {
        if (c->next == NULL || c->next(c, answer) == 0)
            finish(c);
        json_decref(answer);
        return;
    }
    /* A failure: classify it. */
    {
        long ncode = json_is_integer(code) ? (long)json_integer_value(code) : -1;
        json_t *err = json_is_object(answer) ? get_ci(answer, "error") : NULL;
        free(c->res.error);
        c->res.error = br_asprintf("HTTP %ld%s%ld%s%s", r->status, ncode >= 0 ? ", code " : "",
                                   ncode >= 0 ? ncode : 0L, json_is_string(err) ? ": " : "",
                                   json_is_string(err) ? json_string_value(err) : "");
        if (ncode < 0) {
            /* Drop the ", code 0" that the format above adds when there is no code. */
            free(c->res.error);
            c->res.error = br_asprintf("HTTP %ld%s%s", r->status, json_is_string(err) ? ": " : "",
                                       json_is_string(err) ? json_string_value(err) : " (no Planfix answer)");
        }
        if (ncode == 22) {
            c->res.err = BR_ERETRY;
            c->res.quota_exhausted = 1;
        } else if (ncode == 1000) {
            c->res.err = BR_ENOTFOUND;
        } else if (r->status == 429 || r->status >= 500 || r->status == 408) {
            c->res.err = BR_ERETRY;
        } else if (is_fatal_code(ncode)) {
            c->res.err = BR_EFATAL;
        } else if (ncode >= 0) {
            /*
             * Planfix answered, in a 2xx or a 4xx, with a code it does not
             * document as a validation error: worth a few tries, not more.
             */
            c->res.err = BR_ERETRY;
            c->res.max_attempts = UNKNOWN_CODE_ATTEMPTS;
        } else if (r->status >= 400 && r->status < 500) {
            c->res.err = BR_EFATAL; /* a 4xx without Planfix's answer: the request itself is wrong */
        } else {
            c->res.err = BR_ERETRY; /* a 2xx that is not Planfix's answer (a proxy's page) */
        }
    }
    json_decref(answer);
    finish(c);
}

static int
take_id(struct call *c, json_t *answer)
{
    c->res.id = br_tracker_id(get_ci(answer, "id"));
    if (c->res.id == NULL) {
        c->res.err = BR_EFATAL;
        c->res.error = br_strdup("Planfix answered success without an id");
    }
    return 0;
}

static int
start(struct call *c, const char *method, const char *path, json_t *body)
{
    int rc = send_json(c, method, path, body);
    json_decref(body);
    if (rc) {
        c->res.err = rc;
        c->res.error = br_strdup("cannot queue request");
        /* The contract says never synchronously: a failed queue only happens at shutdown. */
        finish(c);
    }
    return 0;
}

/* ---- contacts ---- */

static int
found_contact(struct call *c, json_t *answer)
{
    json_t *list = get_ci(answer, "contacts");
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v) {
        json_t *k = json_object_get(v, "sourceObjectId");
        if (c->source_key && json_is_string(k) && strcmp(json_string_value(k), c->source_key) == 0) {
            c->res.id = br_tracker_id(json_object_get(v, "id"));
            c->res.items = json_true();
            return 0;
        }
    }
    json_array_foreach(list, i, v) {
        char *id = br_tracker_id(json_object_get(v, "id"));
        if (id) {
            c->res.id = id;
            return 0;
        }
    }
    c->res.err = BR_ENOTFOUND;
    return 0;
}

static int
pf_find_contact(struct br_tracker *t, const char *email, const char *source_key, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, found_contact);
    json_t *body = json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                             "fields", "id,name,lastname,email,sourceObjectId", "filters", "type", 4026, "operator",
                             "equal", "value", email);
    if (source_key)
        c->source_key = br_strdup(source_key);
    return start(c, "POST", "/contact/list", body);
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

static int
pf_create_contact(struct br_tracker *t, const struct br_contact_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, take_id);
    return start(c, "POST", "/contact/", contact_body(s));
}

static int
found_company(struct call *c, json_t *answer)
{
    json_t *list = get_ci(answer, "contacts");
    size_t i;
    json_t *v;

    /* "Part of name" also matches longer names: only the exact domain counts. */
    json_array_foreach(list, i, v) {
        json_t *name = json_object_get(v, "name");
        if (json_is_string(name) && strcasecmp(json_string_value(name), c->source_key) == 0) {
            c->res.id = br_tracker_id(json_object_get(v, "id"));
            if (c->res.id)
                return 0;
        }
    }
    c->res.err = BR_ENOTFOUND;
    return 0;
}

static int
pf_find_company(struct br_tracker *t, const char *name, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, found_company);
    c->source_key = br_strdup(name);
    return start(c, "POST", "/contact/list",
                 json_pack("{s:i, s:i, s:b, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                           "isCompany", 1, "fields", "id,name", "filters", "type", 4001, "operator", "equal",
                           "value", name));
}

static int
pf_create_company(struct br_tracker *t, const char *name, long template_id, const char *source_key, br_result_cb cb,
                  void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, take_id);
    json_t *body = json_pack("{s:s, s:b, s:s}", "name", name, "isCompany", 1, "site", name);

    if (template_id)
        json_object_set_new(body, "template", json_pack("{s:I}", "id", (json_int_t)template_id));
    if (source_key)
        json_object_set_new(body, "sourceObjectId", json_string(source_key));
    return start(c, "POST", "/contact/", body);
}

static int
pf_update_contact(struct br_tracker *t, const char *contact_id, const struct br_contact_spec *s, br_result_cb cb,
                  void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, NULL);
    char *path = br_asprintf("/contact/%s", contact_id);
    int rc = start(c, "POST", path, contact_body(s));
    free(path);
    return rc;
}

static int
pf_delete_contact(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, NULL);
    char *path = br_asprintf("/contact/%s", contact_id);
    int rc = start(c, "POST", path, json_pack("{s:b}", "isDeleted", 1));
    free(path);
    return rc;
}

/*
 * Looks for the object whose sourceObjectId is c->source_key in a list
 * answer, paging on while pages are full.
 */
static int
found_by_key(struct call *c, json_t *answer, const char *list_key)
{
    json_t *list = get_ci(answer, list_key);
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v) {
        json_t *k = json_object_get(v, "sourceObjectId");
        if (json_is_string(k) && strcmp(json_string_value(k), c->source_key) == 0) {
            c->res.id = br_tracker_id(json_object_get(v, "id"));
            return 0;
        }
    }
    if (json_array_size(list) == PAGE_SIZE && ++c->page < MAX_PAGES) {
        json_object_set_new(c->request_body, "offset", json_integer(c->page * PAGE_SIZE));
        if (send_json(c, "POST", c->list_path, c->request_body) == 0)
            return 1;
        c->res.err = BR_ECANCELED; /* shutting down: unknown, not "not found" */
        return 0;
    }
    c->res.err = BR_ENOTFOUND;
    return 0;
}

static int
found_contact_by_key(struct call *c, json_t *answer)
{
    return found_by_key(c, answer, "contacts");
}

static int
pf_find_contact_by_key(struct br_tracker *t, const char *name, const char *source_key, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, found_contact_by_key);

    /* Planfix has no filter on sourceObjectId: narrow by name (4001, part of name), then match. */
    c->source_key = br_strdup(source_key);
    c->list_path = br_strdup("/contact/list");
    c->request_body = json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                                "fields", "id,name,lastname,email,sourceObjectId", "filters", "type", 4001,
                                "operator", "equal", "value", name);
    return start(c, "POST", "/contact/list", json_incref(c->request_body));
}

/* ---- tasks ---- */

static json_t *
person(const char *prefix, const char *id)
{
    char *full = strchr(id, ':') ? br_strdup(id) : br_asprintf("%s:%s", prefix, id);
    json_t *v = json_pack("{s:s}", "id", full);
    free(full);
    return v;
}

static int
pf_create_task(struct br_tracker *t, const struct br_task_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, take_id);
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
    return start(c, "POST", "/task/", body);
}

static int
found_task(struct call *c, json_t *answer)
{
    return found_by_key(c, answer, "tasks");
}

static int
pf_find_task(struct br_tracker *t, const char *contact_id, const char *source_key, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, found_task);
    char *who = strchr(contact_id, ':') ? br_strdup(contact_id) : br_asprintf("contact:%s", contact_id);

    c->source_key = br_strdup(source_key);
    c->list_path = br_strdup("/task/list");
    c->request_body = json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                                "fields", "id,name,sourceObjectId", "filters", "type", 1, "operator", "equal",
                                "value", who);
    free(who);
    return start(c, "POST", "/task/list", json_incref(c->request_body));
}

/*
 * The contact's active tasks: first those where it is the assigner (filter
 * 1), then the counterparty (filter 7), page by page; the newest active one
 * (the highest number) wins.  c->page counts pages over both filters.
 */
static int
found_active(struct call *c, json_t *answer)
{
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
        if (c->res.id == NULL || strtoll(id, NULL, 10) > strtoll(c->res.id, NULL, 10)) {
            free(c->res.id);
            c->res.id = id;
        } else {
            free(id);
        }
    }
    if (json_array_size(list) == PAGE_SIZE && ++c->page < MAX_PAGES) {
        json_object_set_new(c->request_body, "offset", json_integer(c->page * PAGE_SIZE));
    } else if (!c->second) {
        /* The assigner's tasks are read: now the counterparty's. */
        c->second = true;
        c->page = 0;
        json_object_set_new(json_array_get(json_object_get(c->request_body, "filters"), 0), "type", json_integer(7));
        json_object_set_new(c->request_body, "offset", json_integer(0));
    } else {
        if (c->res.id == NULL)
            c->res.err = BR_ENOTFOUND;
        return 0;
    }
    if (send_json(c, "POST", "/task/list", c->request_body) == 0)
        return 1;
    free(c->res.id);
    c->res.id = NULL;
    c->res.err = BR_ECANCELED; /* shutting down: unknown, not "none" */
    return 0;
}

static int
pf_find_active_task(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, found_active);
    char *who = strchr(contact_id, ':') ? br_strdup(contact_id) : br_asprintf("contact:%s", contact_id);

    c->request_body = json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                                "fields", "id,status,isDeleted", "filters", "type", 1, "operator", "equal",
                                "value", who);
    free(who);
    return start(c, "POST", "/task/list", json_incref(c->request_body));
}

/* ---- the contact's card ---- */

static int
pf_add_contact_comment(struct br_tracker *t, const char *contact_id, const struct br_comment_spec *s,
                       br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, take_id);
    json_t *body = json_pack("{s:s}", "description", s->text);
    char *path = br_asprintf("/contact/%s/comments/", contact_id);
    int rc;

    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    rc = start(c, "POST", path, body);
    free(path);
    return rc;
}

static int
pf_close_task(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, NULL);
    char *path = br_asprintf("/task/%s", task_id);
    int rc = start(c, "POST", path, json_pack("{s:{s:I}}", "status", "id", (json_int_t)status_id));
    free(path);
    return rc;
}

static int
got_task_state(struct call *c, json_t *answer)
{
    json_t *task = get_ci(answer, "task");
    json_t *status = json_object_get(task, "status");

    if (json_is_true(json_object_get(task, "isDeleted")))
        c->res.id = br_strdup("deleted");
    else if (json_is_false(json_object_get(status, "isActive")))
        c->res.id = br_strdup("inactive");
    else
        c->res.id = br_strdup("active");
    return 0;
}

static int
pf_task_state(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, got_task_state);
    char *path = br_asprintf("/task/%s?fields=id,status,isDeleted", task_id);
    int rc = start(c, "GET", path, NULL);
    free(path);
    return rc;
}

/* ---- dates ---- */

/* sscanf that must consume all of text; n is the number of conversions before the final %n. */
#define SCAN_ALL(text, n, fmt, ...) \
    (used = -1, sscanf((text), fmt "%n", __VA_ARGS__, &used) == (n) && used > 0 && (text)[used] == '\0')

static bool
valid_tm(int year, int mon, int day, int hour, int min, int sec)
{
    return year >= 1970 && year <= 9999 && mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour >= 0 &&
           hour <= 23 && min >= 0 && min <= 59 && sec >= 0 && sec <= 59;
}

static int64_t
utc_seconds(int year, int mon, int day, int hour, int min, int sec)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm);
}

int
br_planfix_time_point(json_t *tp, int64_t *utc_ms, long *offset_s)
{
    const char *date = json_string_value(json_object_get(tp, "date"));
    const char *hm = json_string_value(json_object_get(tp, "time"));
    const char *dt = json_string_value(json_object_get(tp, "datetime"));
    int d, mo, y, h, mi, uy, umo, ud, uh, umi, us = 0, used = -1;
    int64_t local, utc;
    long off;

    if (date == NULL || hm == NULL || dt == NULL)
        return BR_EINVAL;
    if (!SCAN_ALL(date, 3, "%2d-%2d-%4d", &d, &mo, &y) || !SCAN_ALL(hm, 2, "%2d:%2d", &h, &mi) ||
        !valid_tm(y, mo, d, h, mi, 0))
        return BR_EINVAL;
    /* "2022-06-12T12:15Z", seconds allowed. */
    if (!SCAN_ALL(dt, 5, "%4d-%2d-%2dT%2d:%2dZ", &uy, &umo, &ud, &uh, &umi) &&
        !SCAN_ALL(dt, 6, "%4d-%2d-%2dT%2d:%2d:%2dZ", &uy, &umo, &ud, &uh, &umi, &us))
        return BR_EINVAL;
    if (!valid_tm(uy, umo, ud, uh, umi, us))
        return BR_EINVAL;
    local = utc_seconds(y, mo, d, h, mi, 0);
    utc = utc_seconds(uy, umo, ud, uh, umi, 0);
    off = (long)(local - utc);
    /* Every zone's offset is a multiple of 15 minutes (Nepal +5:45); anything else is not a zone. */
    if (off < BR_PLANFIX_MIN_OFFSET_S || off > BR_PLANFIX_MAX_OFFSET_S || off % (15 * 60) != 0)
        return BR_EINVAL;
    *utc_ms = (utc + us) * 1000;
    *offset_s = off;
    return 0;
}

static void
format_date(int64_t local_s, char out[32])
{
    time_t t = (time_t)local_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%d-%m-%Y %H:%M", &tm);
}

void
br_planfix_filter_dates(const struct br_planfix_zone *z, int64_t from_ms, int64_t to_ms, char from[32], char to[32])
{
    int64_t from_s = from_ms / 1000, to_s = (to_ms + 999) / 1000;
    long off_from, off_to;

    if (z->name) {
        /*
         * The offset at each end, and the one an hour later (earlier): in
         * the hour a clock is put back, a local time names two instants,
         * and Planfix may take the other one.
         */
        long a = br_tz_offset(z->name, from_s), b = br_tz_offset(z->name, from_s + 3600);
        long c = br_tz_offset(z->name, to_s), d = br_tz_offset(z->name, to_s - 3600);
        off_from = a < b ? a : b;
        off_to = c > d ? c : d;
    } else if (z->learned) {
        /* The clock may have moved for DST since the answer it was learned from. */
        off_from = z->offset_s - 3600;
        off_to = z->offset_s + 3600;
    } else {
        off_from = BR_PLANFIX_MIN_OFFSET_S;
        off_to = BR_PLANFIX_MAX_OFFSET_S;
    }
    format_date(from_s + off_from, from);
    /* Planfix filters by the minute: the last minute counts whole. */
    format_date(to_s + off_to + 59, to);
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

static int
pf_add_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, take_id);
    json_t *body = json_object();
    char *path = br_asprintf("/task/%s/comments/", s->task_id);
    int rc;

    json_object_set_new(body, "description", json_string(s->text));
    if (s->contact_id)
        json_object_set_new(body, "owner", person("contact", s->contact_id));
    else if (s->employee)
        json_object_set_new(body, "owner", person("user", s->employee));
    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    rc = start(c, "POST", path, body);
    free(path);
    return rc;
}

static int
got_comments(struct call *c, json_t *answer)
{
    json_t *list = get_ci(answer, "comments");
    size_t i;
    json_t *v;
    /* Whether the page proves it is newest first, and how old its last comment is. */
    int64_t first_ms = -1, prev_ms = -1, last_ms = -1;
    bool newest_first = true;
    int64_t win_from = c->win_from_ms - c->win_from_ms % 60000;

    if (c->res.items == NULL)
        c->res.items = json_array();
    json_array_foreach(list, i, v) {
        json_t *owner = json_object_get(v, "owner");
        json_t *desc = json_object_get(v, "description");
        json_t *key = json_object_get(v, "sourceObjectId");
        char *id = br_tracker_id(json_object_get(v, "id"));
        json_t *item;
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
        item = json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "author",
                         json_is_string(json_object_get(owner, "id")) ? json_string_value(json_object_get(owner, "id")) : "",
                         "author_name",
                         json_is_string(json_object_get(owner, "name")) ? json_string_value(json_object_get(owner, "name")) : "",
                         "html", json_is_string(desc) ? json_string_value(desc) : "", "hidden",
                         json_is_true(json_object_get(v, "isHidden")));
        json_object_set_new(item, "source_key", json_is_string(key) && json_string_length(key) ? json_copy(key) : json_null());
        {
            char *task = br_tracker_id(json_object_get(json_object_get(v, "task"), "id"));
            if (task)
                json_object_set_new(item, "task", json_string(task));
            free(task);
        }
        json_array_append_new(c->res.items, item);
        free(id);
    }
    /*
     * A poll asks for the newest first; a page that is so (strictly, so
     * that a page of one minute or an order Planfix ignored proves
     * nothing) and ends before the window has the rest of the window.
     */
    if (c->windowed && newest_first && first_ms > last_ms && last_ms < win_from)
        return 0;
    if (json_array_size(list) == PAGE_SIZE && ++c->page < MAX_PAGES) {
        json_object_set_new(c->request_body, "offset", json_integer(c->page * PAGE_SIZE));
        if (send_json(c, "POST", c->list_path, c->request_body) == 0)
            return 1;
        c->res.err = BR_ECANCELED; /* shutting down: the list is incomplete */
    }
    return 0;
}

static int
pf_list_comments(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, got_comments);
    char *path = br_asprintf("/task/%s/comments/list", task_id);
    int rc;

    c->list_path = br_strdup(path);
    c->request_body = json_pack("{s:i, s:i, s:s, s:s}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                                "id,dateTime,description,owner,isHidden,type,sourceObjectId", "typeList", "Comments");
    rc = start(c, "POST", path, json_incref(c->request_body));
    free(path);
    return rc;
}

static int
pf_list_contact_comments(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, got_comments);
    char *path = br_asprintf("/contact/%s/comments/list", contact_id);
    int rc;

    c->list_path = br_strdup(path);
    c->request_body = json_pack("{s:i, s:i, s:s}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                                "id,dateTime,description,owner,sourceObjectId");
    rc = start(c, "POST", path, json_incref(c->request_body));
    free(path);
    return rc;
}

static int
pf_list_recent_comments(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb, void *arg)
{
    struct pf *pf = (struct pf *)t;
    struct call *c = call_new(pf, cb, arg, got_comments);
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
    c->list_path = br_strdup("/comment/list");
    c->request_body = json_pack("{s:i, s:i, s:s, s:s, s:[{s:i, s:s, s:{s:s, s:s, s:s}}], s:[{s:s, s:s}]}", "offset",
                                0, "pageSize", PAGE_SIZE, "fields",
                                "id,dateTime,description,owner,isHidden,type,sourceObjectId,task", "typeList",
                                "Comments", "filters", "type", 3000, "operator", "equal", "value", "dateType",
                                "otherRange_withTime", "dateFrom", from, "dateTo", to, "resultOrder", "field",
                                "dateTime", "direction", "Desc");
    return start(c, "POST", "/comment/list", json_incref(c->request_body));
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

static int
found_user(struct call *c, json_t *answer)
{
    json_t *list = get_ci(answer, "users");
    size_t i;
    json_t *v;

    /* The filter is "equal"; an e-mail in the answer still has to be the one asked for. */
    json_array_foreach(list, i, v) {
        json_t *mail = json_object_get(v, "email");
        char *norm = json_is_string(mail) ? br_email_normalize(json_string_value(mail), json_string_length(mail)) : NULL;
        bool same = mail == NULL || (norm && strcmp(norm, c->source_key) == 0);
        free(norm);
        if (same && (c->res.id = user_ref(json_object_get(v, "id"))) != NULL)
            return 0;
    }
    c->res.err = BR_ENOTFOUND;
    return 0;
}

static int
pf_find_user(struct br_tracker *t, const char *email, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct pf *)t, cb, arg, found_user);

    c->source_key = br_strdup(email);
    return start(c, "POST", "/user/list",
                 json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                           "id,name,lastname,email", "filters", "type", 9003, "operator", "equal", "value", email));
}

static void
pf_free(struct br_tracker *t)
{
    struct pf *pf = (struct pf *)t;
    free(pf->auth_header);
    free(pf);
}

static const struct br_tracker_ops planfix_ops = {
    .kind = "planfix",
    .text_escape = BR_TPL_ESCAPE_HTML,
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

int
br_planfix_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up)
{
    struct pf *pf = br_calloc(1, sizeof(*pf));
    pf->base.ops = &planfix_ops;
    pf->base.up = up;
    pf->base.cfg = cfg;
    pf->auth_header = br_asprintf("Authorization: Bearer %s", cfg->tracker_token);
    *out = &pf->base;
    return 0;
}
