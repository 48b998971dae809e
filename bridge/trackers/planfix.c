/*
 * planfix.c - the Planfix REST v2 driver (see shared/reference/planfix.md):
 * contacts, companies, tasks and users, and the driver's table.  One
 * call's requests and how Planfix's answers read are planfix_call.c's;
 * comments are planfix_comments.c's.  Dates are read and written in the
 * API user's time zone (planfix.h).
 */
#include "planfix.h"
#include "trackers/planfix_call.h"

#include "tracker.h"
#include "config.h"
#include "config_load.h"
#include "email.h"
#include "log.h"
#include "rest.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- contacts ---- */

static void
found_contact(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = br_pf_get_ci(answer, "contacts");
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
    struct call *c = br_pf_call_new(t, cb, arg);
    json_t *body = json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                             "fields", "id,name,lastname,email,sourceObjectId", "filters", "type", 4026, "operator",
                             "equal", "value", email);
    if (source_key)
        c->source_key = br_strdup(source_key);
    br_pf_start(c, "POST", "/contact/list", body, found_contact);
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
    struct call *c = br_pf_call_new(t, cb, arg);
    br_pf_start(c, "POST", "/contact/", contact_body(s), br_pf_take_id);
}

static void
found_company(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *list = br_pf_get_ci(answer, "contacts");
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
    struct call *c = br_pf_call_new(t, cb, arg);
    c->source_key = br_strdup(name);
    br_pf_start(c, "POST", "/contact/list",
                 json_pack("{s:i, s:i, s:b, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE,
                           "isCompany", 1, "fields", "id,name", "filters", "type", 4001, "operator", "equal",
                           "value", name),
                 found_company);
}

static void
pf_create_company(struct br_tracker *t, const char *name, long template_id, const char *source_key, br_result_cb cb,
                  void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    json_t *body = json_pack("{s:s, s:b, s:s}", "name", name, "isCompany", 1, "site", name);

    if (template_id)
        json_object_set_new(body, "template", json_pack("{s:I}", "id", (json_int_t)template_id));
    if (source_key)
        json_object_set_new(body, "sourceObjectId", json_string(source_key));
    br_pf_start(c, "POST", "/contact/", body, br_pf_take_id);
}

static void
pf_update_contact(struct br_tracker *t, const char *contact_id, const struct br_contact_spec *s, br_result_cb cb,
                  void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    char *path = br_asprintf("/contact/%s", contact_id);
    br_pf_start(c, "POST", path, contact_body(s), NULL);
    free(path);
}

static void
pf_delete_contact(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    char *path = br_asprintf("/contact/%s", contact_id);
    br_pf_start(c, "POST", path, json_pack("{s:b}", "isDeleted", 1), NULL);
    free(path);
}

/*
 * Looks for the object whose sourceObjectId is c->source_key in a list
 * answer, paging on while pages are full.
 */
static void
found_by_key(struct call *c, json_t *answer, const char *list_key)
{
    json_t *list = br_pf_get_ci(answer, list_key);
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
        br_pf_next_page(c);
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
    struct call *c = br_pf_call_new(t, cb, arg);

    /* Planfix has no filter on sourceObjectId: narrow by name (4001, part of name), then match. */
    c->source_key = br_strdup(source_key);
    br_pf_start_list(c, "/contact/list",
                      json_pack("{s:i, s:i, s:s, s:[{s:i, s:s, s:s}]}", "offset", 0, "pageSize", PAGE_SIZE, "fields",
                                "id,name,lastname,email,sourceObjectId", "filters", "type", 4001, "operator", "equal",
                                "value", name),
                      found_contact_by_key);
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

    br_pf_take_id(rc, answer);
    rc->res.closed = rc->res.err == 0 && c->closed && json_array_size(br_pf_get_ci(answer, "failures")) == 0;
}

static void
pf_create_task(struct br_tracker *t, const struct br_task_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    json_t *body = json_object();

    if (s->template_id)
        json_object_set_new(body, "template", json_pack("{s:I}", "id", (json_int_t)s->template_id));
    json_object_set_new(body, "name", json_string(s->title));
    json_object_set_new(body, "description", json_string(s->description));
    if (s->contact_id)
        json_object_set_new(body, "assigner", br_pf_person("contact", s->contact_id));
    if (s->company_id || s->contact_id)
        json_object_set_new(body, "counterparty", br_pf_person("contact", s->company_id ? s->company_id : s->contact_id));
    if (s->n_watchers) {
        json_t *users = json_array();
        for (size_t i = 0; i < s->n_watchers; i++)
            json_array_append_new(users, br_pf_person("user", s->watchers[i]));
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
    br_pf_start(c, "POST", "/task/", body, take_task_id);
}

static void
found_task(struct br_rest_call *rc, json_t *answer)
{
    found_by_key((struct call *)rc, answer, "tasks");
}

static void
pf_find_task(struct br_tracker *t, const char *contact_id, const char *source_key, br_result_cb cb, void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    char *who = br_pf_ref("contact", contact_id);

    c->source_key = br_strdup(source_key);
    br_pf_start_list(c, "/task/list",
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
    json_t *list = br_pf_get_ci(answer, "tasks");
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
        br_pf_next_page(c);
    } else if (!c->second) {
        /* The assigner's tasks are read: now the counterparty's. */
        c->second = true;
        c->page = 0;
        json_object_set_new(json_array_get(json_object_get(c->request_body, "filters"), 0), "type", json_integer(7));
        br_pf_next_page(c);
    } else if (rc->res.id == NULL) {
        rc->res.err = BR_ENOTFOUND;
    }
}

static void
pf_find_active_task(struct br_tracker *t, const char *contact_id, br_result_cb cb, void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    char *who = br_pf_ref("contact", contact_id);
    br_pf_start_list(c, "/task/list",
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
    struct call *c = br_pf_call_new(t, cb, arg);
    json_t *body = json_pack("{s:s}", "description", s->text);
    char *path = br_asprintf("/contact/%s/comments/", contact_id);

    if (s->source_key)
        json_object_set_new(body, "sourceObjectId", json_string(s->source_key));
    br_pf_start(c, "POST", path, body, br_pf_take_id);
    free(path);
}

static void
pf_close_task(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb, void *arg)
{
    struct call *c = br_pf_call_new(t, cb, arg);
    char *path = br_asprintf("/task/%s", task_id);
    br_pf_start(c, "POST", path, json_pack("{s:{s:I}}", "status", "id", (json_int_t)status_id), NULL);
    free(path);
}

static void
got_task_state(struct br_rest_call *rc, json_t *answer)
{
    json_t *task = br_pf_get_ci(answer, "task");
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
    struct call *c = br_pf_call_new(t, cb, arg);
    char *path = br_asprintf("/task/%s?fields=id,status,isDeleted", task_id);
    br_pf_start(c, "GET", path, NULL, got_task_state);
    free(path);
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
    json_t *list = br_pf_get_ci(answer, "users");
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
    struct call *c = br_pf_call_new(t, cb, arg);

    c->source_key = br_strdup(email);
    br_pf_start(c, "POST", "/user/list",
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
    .add_comment = br_pf_add_comment,
    .list_comments = br_pf_list_comments,
    .close_task = pf_close_task,
    .list_recent_comments = br_pf_list_recent_comments,
    .task_state = pf_task_state,
    .find_active_task = pf_find_active_task,
    .add_contact_comment = pf_add_contact_comment,
    .list_contact_comments = br_pf_list_contact_comments,
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

/* employees[].tracker_user: Planfix names its users "user:5" (comments' owners are compared with it). */
static const char *
pf_user_problem(const char *user)
{
    const char *id = strncmp(user, "user:", 5) == 0 ? user + 5 : "";

    if (*id != '\0' && strspn(id, "0123456789") == strlen(id))
        return NULL;
    return "a Planfix user id such as \"user:5\"";
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
    .user_problem = pf_user_problem,
    .create = pf_new,
    .task_url = pf_task_url,
};
