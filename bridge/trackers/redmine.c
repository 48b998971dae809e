/*
 * redmine.c - the Redmine REST driver (see shared/reference/redmine.md;
 * Redmine 5.0 as packaged in Debian 12).
 *
 * Redmine differs from Planfix in ways the driver absorbs:
 *  - no contacts: the contact operations are left NULL, and the engine
 *    puts the visitor's details into the issue;
 *  - texts are Textile, so HTML from the engine is converted and visitor
 *    text is kept literal (br_tpl_textile_escape);
 *  - a note is added with PUT, which answers 204 without an id: the issue
 *    is read back to learn the journal id, which is how the bridge knows
 *    its own notes later (notes cannot carry a source key);
 *  - the bridge's key to find an issue again after a crash is the last
 *    line of the description, searched with the description filter;
 *  - a status change the workflow forbids is silently ignored (still
 *    204), so closing reads the issue back;
 *  - no webhooks: list_recent_comments lists the issues changed since the
 *    last poll, one item per change.
 * Employees are Redmine logins; the driver writes as them with
 * X-Redmine-Switch-User (an admin's key) and maps journal authors back to
 * logins through the user ids it resolves once.  An employee configured
 * with only an e-mail is resolved by that e-mail (login and id).
 */
#include "tracker.h"

#include "config.h"
#include "email.h"
#include "html_text.h"
#include "log.h"
#include "store.h" /* br_now_ms */

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PAGE_SIZE 100
#define MAX_PAGES 20        /* 2,000 changed issues in one poll window is more than any team */
#define RESPONSE_KEEP 2000  /* bytes of an answer kept for the dead-letter list */
#define SUBJECT_MAX 255     /* Redmine's limit, in characters */

struct rm_user {
    char *login;            /* NULL until an employee known by e-mail is found */
    char *email;            /* in normal form: how an employee without a login is found */
    long id;
};

struct rm {
    struct br_tracker base;
    char *key_header;
    bool users_known;       /* self and employees resolved */
    long self_id;
    char *self_login;
    struct rm_user *users;  /* employees, by login */
    size_t n_users;
    bool ahead_known;
    double ahead_s;         /* Redmine's clock is at least this far ahead of ours (may be negative) */
};

struct call;
/* Called with the parsed 2xx answer (NULL for an empty body); returns 1 when it sent another request. */
typedef int (*next_fn)(struct call *c, json_t *answer);

struct call {
    struct rm *rm;
    br_result_cb cb;
    void *arg;
    next_fn next;
    next_fn after_users;    /* what the call does once users are resolved */
    struct br_result res;
    char *task_id;
    char *text;             /* the note as sent (Textile) */
    char *employee;         /* switch-user login, NULL = the key's own user */
    char *path;             /* paged list requests */
    long status_id;
    size_t user_i;
    int page;
    bool lookup;            /* a user lookup: a refusal is a warning, not the call's failure */
    int64_t server_date;    /* Redmine's clock at the last answer (Date header), -1 unknown */
    int64_t answered_ms;    /* our clock when the last answer came */
};

static struct call *
call_new(struct rm *rm, br_result_cb cb, void *arg, next_fn next)
{
    struct call *c = br_calloc(1, sizeof(*c));
    c->rm = rm;
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
    free(c->task_id);
    free(c->text);
    free(c->employee);
    free(c->path);
    free(c);
}

static char *
escape_url(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = br_strdup(e ? e : "");
    curl_free(e);
    return out;
}

static void on_http(void *arg, const struct br_http_result *r);

static int
send_json(struct call *c, const char *method, const char *path, json_t *body)
{
    struct rm *rm = c->rm;
    char *switch_user = c->employee ? br_asprintf("X-Redmine-Switch-User: %s", c->employee) : NULL;
    const char *headers[] = {rm->key_header, "Content-Type: application/json", "Accept: application/json",
                             switch_user, NULL};
    char *url = br_asprintf("%s%s", rm->base.cfg->tracker_url, path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc;

    /* A read-back after a write keeps the write as the request a dead letter shows. */
    if (c->res.request == NULL || strcmp(method, "GET") != 0 || strncmp(c->res.request, "GET ", 4) == 0) {
        free(c->res.request);
        c->res.request = br_asprintf("%s %s%s%s %s", method, path, c->employee ? " as " : "",
                                     c->employee ? c->employee : "", text ? text : "");
    }
    rc = br_upstream_send(rm->base.up, method, url, headers, text, rm->base.cfg->tracker_timeout_ms, on_http, c);
    free(switch_user);
    free(url);
    free(text);
    return rc;
}

/* Sends the call's next request from inside a step; 1 when sent (the step's contract). */
static int
again(struct call *c, const char *method, const char *path, json_t *body, next_fn next)
{
    int rc;
    c->next = next;
    rc = send_json(c, method, path, body);
    json_decref(body);
    if (rc == 0)
        return 1;
    c->res.err = BR_ECANCELED; /* only at shutdown */
    return 0;
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

static void
on_http(void *arg, const struct br_http_result *r)
{
    struct call *c = arg;
    json_t *answer = NULL;
    json_error_t je;
    char *why;

    free(c->res.response);
    c->res.response = NULL;
    c->res.retry_after_s = r->retry_after_s;
    c->res.status = r->status;
    c->server_date = r->err ? -1 : r->server_date_s;
    c->answered_ms = br_now_ms();
    free(c->res.error);
    c->res.error = NULL;
    if (r->err) {
        c->res.err = r->err == BR_ECANCELED ? BR_ECANCELED : BR_ERETRY;
        c->res.error = br_asprintf("%s: %s", br_strerror(r->err), r->error ? r->error : "");
        finish(c);
        return;
    }
    c->res.response = br_asprintf("%ld %.*s", r->status, (int)(r->body_len > RESPONSE_KEEP ? RESPONSE_KEEP : r->body_len),
                                  r->body);
    if (r->body_len > 0)
        answer = json_loadb(r->body, r->body_len, 0, &je);
    if (r->status >= 200 && r->status < 300) {
        if (r->body_len > 0 && !json_is_object(answer)) {
            /* A proxy's page, or not Redmine at all: try again later. */
            c->res.err = BR_ERETRY;
            c->res.error = br_asprintf("HTTP %ld with an answer that is not Redmine's JSON", r->status);
        } else if (c->next && c->next(c, answer) == 1) {
            json_decref(answer);
            return; /* the call goes on with another request */
        }
        json_decref(answer);
        finish(c);
        return;
    }
    if (c->lookup && (r->status == 401 || r->status == 403)) {
        /* Only administrators may list users: go on without the employees' ids. */
        c->rm->users[c->user_i].id = -1;
        json_decref(answer);
        if (c->next(c, NULL) == 0)
            finish(c);
        return;
    }
    why = errors_line(answer);
    switch (r->status) {
    case 404:
        c->res.err = BR_ENOTFOUND;
        c->res.error = br_asprintf("HTTP 404: not found in Redmine");
        break;
    case 412:
        c->res.err = BR_EFATAL;
        c->res.error = br_asprintf("HTTP 412: Redmine has no active user with login \"%s\" "
                                   "(employees[].tracker_user), or the API key is not an administrator's",
                                   c->employee ? c->employee : "");
        break;
    case 401:
    case 403:
        c->res.err = BR_EFATAL;
        c->res.error = br_asprintf("HTTP %ld: Redmine refused the API key (is the REST API enabled, is the key an "
                                   "administrator's, may it use project %s?)%s",
                                   r->status, c->rm->base.cfg->tracker_project, why);
        break;
    case 422:
        c->res.err = BR_EFATAL;
        c->res.error = br_asprintf("HTTP 422: Redmine refused the data%s", why);
        break;
    default:
        c->res.err = (r->status == 429 || r->status == 408 || r->status >= 500) ? BR_ERETRY : BR_EFATAL;
        c->res.error = br_asprintf("HTTP %ld%s", r->status, why);
        break;
    }
    free(why);
    json_decref(answer);
    finish(c);
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

/* ---- users: the key's own user and the employees' logins, resolved once ---- */

static const char *
login_of(const struct rm *rm, long id)
{
    if (id == rm->self_id)
        return rm->self_login;
    for (size_t i = 0; i < rm->n_users; i++)
        if (rm->users[i].id == id && rm->users[i].login)
            return rm->users[i].login;
    return NULL;
}

static long
id_of(const struct rm *rm, const char *login)
{
    if (login == NULL)
        return rm->self_id;
    for (size_t i = 0; i < rm->n_users; i++)
        if (rm->users[i].id && rm->users[i].login && strcmp(rm->users[i].login, login) == 0)
            return rm->users[i].id;
    return 0;
}

static int resolve_next_user(struct call *c);

/* The user of a /users.json answer whose mail is email (normal form), or NULL. */
static json_t *
user_with_mail(json_t *answer, const char *email)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(answer, "users"), i, v) {
        json_t *mail = json_object_get(v, "mail");
        char *norm = json_is_string(mail) ? br_email_normalize(json_string_value(mail), json_string_length(mail)) : NULL;
        bool same = norm && strcmp(norm, email) == 0;
        free(norm);
        if (same && json_is_string(json_object_get(v, "login")) && json_is_integer(json_object_get(v, "id")))
            return v;
    }
    return NULL;
}

static int
got_user(struct call *c, json_t *answer)
{
    struct rm_user *u = &c->rm->users[c->user_i];
    const char *who = u->login ? u->login : u->email;
    size_t i;
    json_t *v;

    /* The name filter matches parts of logins, names and e-mails: only the exact login (or mail) counts. */
    if (u->login) {
        json_array_foreach(json_object_get(answer, "users"), i, v) {
            const char *login = json_string_value(json_object_get(v, "login"));
            if (login && strcmp(login, u->login) == 0)
                u->id = (long)json_integer_value(json_object_get(v, "id"));
        }
    } else if (u->id != -1 && (v = user_with_mail(answer, u->email)) != NULL) {
        u->login = br_strdup(json_string_value(json_object_get(v, "login")));
        u->id = (long)json_integer_value(json_object_get(v, "id"));
    }
    c->lookup = false;
    if (u->id == -1) {
        u->id = 0;
        br_warn("redmine: the API key may not list users (it must be an administrator's): the notes of employee "
                "\"%s\" are not relayed, and notes written as them fail",
                who);
    } else if (u->id == 0 && u->login) {
        br_warn("redmine: no active user has the login \"%s\" (employees[].tracker_user): that employee's notes "
                "are not relayed, and notes written as them fail",
                u->login);
    } else if (u->id == 0) {
        br_warn("redmine: no active user has the e-mail %s (employees[].email): that employee's notes are not "
                "relayed, and their messages typed in Chatra are written by the bridge",
                u->email);
    }
    c->user_i++;
    return resolve_next_user(c);
}

static int
resolve_next_user(struct call *c)
{
    struct rm *rm = c->rm;
    char *saved = c->employee;
    int sent;

    if (c->user_i >= rm->n_users) {
        rm->users_known = true;
        return c->after_users(c, NULL);
    }
    {
        /* An employee known only by e-mail is found by it (the filter matches mail too). */
        char *q = escape_url(rm->users[c->user_i].login ? rm->users[c->user_i].login : rm->users[c->user_i].email);
        char *path = br_asprintf("/users.json?name=%s&limit=100", q);
        c->employee = NULL; /* the lookup is the admin's own */
        c->lookup = true;
        sent = again(c, "GET", path, NULL, got_user);
        c->employee = saved;
        free(path);
        free(q);
    }
    return sent;
}

static int
got_self(struct call *c, json_t *answer)
{
    json_t *u = json_object_get(answer, "user");
    struct rm *rm = c->rm;

    if (!json_is_integer(json_object_get(u, "id"))) {
        c->res.err = BR_ERETRY;
        c->res.error = br_strdup("Redmine's /users/current.json named no user");
        return 0;
    }
    rm->self_id = (long)json_integer_value(json_object_get(u, "id"));
    free(rm->self_login);
    rm->self_login = br_strdup(json_string_value(json_object_get(u, "login")) ? json_string_value(json_object_get(u, "login")) : "");
    c->user_i = 0;
    return resolve_next_user(c);
}

/* Runs first(c, NULL) once the users are known, resolving them first when needed. */
static int
with_users(struct call *c, next_fn first)
{
    char *saved = c->employee;
    int rc;

    c->after_users = first;
    if (c->rm->users_known) {
        if (first(c, NULL) == 0)
            finish(c);
        return 0;
    }
    c->employee = NULL;
    c->next = got_self;
    rc = send_json(c, "GET", "/users/current.json", NULL);
    c->employee = saved;
    if (rc) {
        c->res.err = rc;
        c->res.error = br_strdup("cannot queue request");
        finish(c);
    }
    return 0;
}

/* Whether a journal's notes are the text the bridge sent (Redmine may store \r\n and trim the end). */
static bool
same_text(const char *stored, const char *sent)
{
    const char *a = stored, *b = sent;
    for (;;) {
        while (*a == '\r')
            a++;
        while (*b == '\r')
            b++;
        if (*a == '\0' || *b == '\0')
            break;
        if (*a != *b)
            return false;
        a++;
        b++;
    }
    while (*a && isspace((unsigned char)*a))
        a++;
    while (*b && isspace((unsigned char)*b))
        b++;
    return *a == '\0' && *b == '\0';
}

/* ---- tasks ---- */

/* The subject: one line, at most SUBJECT_MAX characters (UTF-8 aware). */
static char *
subject_of(const char *title)
{
    size_t bytes = 0, chars = 0;
    char *s;

    while (title[bytes] && chars < SUBJECT_MAX) {
        bytes++;
        while ((title[bytes] & 0xC0) == 0x80)
            bytes++;
        chars++;
    }
    s = br_strndup(title, bytes);
    for (char *q = s; *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t')
            *q = ' ';
    return s;
}

static int
take_issue_id(struct call *c, json_t *answer)
{
    c->res.id = br_tracker_id(json_object_get(json_object_get(answer, "issue"), "id"));
    if (c->res.id == NULL) {
        c->res.err = BR_EFATAL;
        c->res.error = br_strdup("Redmine created the issue but named no id");
    }
    return 0;
}

static json_t *
fields_json(const struct br_field_value *fields, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I, s:s}", "id", (json_int_t)fields[i].id, "value", fields[i].value));
    return arr;
}

static int
rm_create_task(struct br_tracker *t, const struct br_task_spec *s, br_result_cb cb, void *arg)
{
    struct rm *rm = (struct rm *)t;
    struct call *c = call_new(rm, cb, arg, take_issue_id);
    json_t *issue = json_object();
    struct br_buf desc;
    char *subject = subject_of(s->title);

    /* The last line carries the key that finds this issue again after a crash. */
    br_buf_init(&desc, 0);
    br_buf_puts(&desc, s->description ? s->description : "");
    if (s->source_key) {
        br_buf_puts(&desc, "\n\n_Chat bridge reference:_ ");
        br_tpl_textile_escape(&desc, s->source_key, strlen(s->source_key));
    }
    json_object_set_new(issue, "project_id", json_string(rm->base.cfg->tracker_project));
    json_object_set_new(issue, "subject", json_string(subject));
    json_object_set_new(issue, "description", json_string(desc.data ? desc.data : ""));
    if (s->n_watchers) {
        json_t *w = json_array();
        for (size_t i = 0; i < s->n_watchers; i++)
            json_array_append_new(w, json_integer(strtoll(s->watchers[i], NULL, 10)));
        json_object_set_new(issue, "watcher_user_ids", w);
    }
    if (s->n_fields)
        json_object_set_new(issue, "custom_fields", fields_json(s->fields, s->n_fields));
    free(subject);
    br_buf_dispose(&desc);
    return start(c, "POST", "/issues.json", json_pack("{s:o}", "issue", issue));
}

static int
found_issue(struct call *c, json_t *answer)
{
    size_t i;
    json_t *v;

    /* The filter matches parts of descriptions: the key is unique, so any hit is the one. */
    json_array_foreach(json_object_get(answer, "issues"), i, v) {
        const char *d = json_string_value(json_object_get(v, "description"));
        if (d && strstr(d, c->text)) {
            c->res.id = br_tracker_id(json_object_get(v, "id"));
            return 0;
        }
    }
    c->res.err = BR_ENOTFOUND;
    return 0;
}

static int
rm_find_task(struct br_tracker *t, const char *contact_id, const char *source_key, br_result_cb cb, void *arg)
{
    struct rm *rm = (struct rm *)t;
    struct call *c = call_new(rm, cb, arg, found_issue);
    char *proj = escape_url(rm->base.cfg->tracker_project);
    char *filter = br_asprintf("~%s", source_key);
    char *q = escape_url(filter);
    char *path = br_asprintf("/issues.json?project_id=%s&status_id=*&description=%s&limit=%d", proj, q, PAGE_SIZE);
    int rc;

    (void)contact_id;
    c->text = br_strdup(source_key);
    rc = start(c, "GET", path, NULL);
    free(path);
    free(q);
    free(filter);
    free(proj);
    return rc;
}

static int
got_state(struct call *c, json_t *answer)
{
    json_t *status = json_object_get(json_object_get(answer, "issue"), "status");
    c->res.id = br_strdup(json_is_true(json_object_get(status, "is_closed")) ? "inactive" : "active");
    return 0;
}

static int
rm_task_state(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct rm *)t, cb, arg, got_state);
    char *path = br_asprintf("/issues/%s.json", task_id);
    int rc = start(c, "GET", path, NULL);
    free(path);
    return rc;
}

/* Redmine answers 204 even when the workflow forbids the change: believe only the issue read back. */
static int
close_checked(struct call *c, json_t *answer)
{
    json_t *status = json_object_get(json_object_get(answer, "issue"), "status");
    long now = (long)json_integer_value(json_object_get(status, "id"));

    if (now == c->status_id || json_is_true(json_object_get(status, "is_closed")))
        return 0;
    c->res.err = BR_EFATAL;
    c->res.error = br_asprintf("Redmine kept issue #%s in status \"%s\": its workflow does not let the bridge's user "
                               "set status %ld (the change was answered 204 but not made); allow the transition or "
                               "choose another closed_status_id",
                               c->task_id,
                               json_string_value(json_object_get(status, "name")) ? json_string_value(json_object_get(status, "name")) : "?",
                               c->status_id);
    return 0;
}

static int
close_sent(struct call *c, json_t *answer)
{
    char *path = br_asprintf("/issues/%s.json", c->task_id);
    int sent;
    (void)answer;
    sent = again(c, "GET", path, NULL, close_checked);
    free(path);
    return sent;
}

static int
rm_close_task(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct rm *)t, cb, arg, close_sent);
    char *path = br_asprintf("/issues/%s.json", task_id);
    int rc;

    c->task_id = br_strdup(task_id);
    c->status_id = status_id;
    rc = start(c, "PUT", path, json_pack("{s:{s:I}}", "issue", "status_id", (json_int_t)status_id));
    free(path);
    return rc;
}

static int
rm_update_task_fields(struct br_tracker *t, const char *task_id, const struct br_field_value *fields, size_t n,
                      br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct rm *)t, cb, arg, NULL);
    char *path = br_asprintf("/issues/%s.json", task_id);
    int rc = start(c, "PUT", path, json_pack("{s:{s:o}}", "issue", "custom_fields", fields_json(fields, n)));
    free(path);
    return rc;
}

/* ---- notes ---- */

/* How a change of an issue is named: by its update time (the poll lists issues by it). */
static char *
change_id(const char *updated_on)
{
    return br_asprintf("updated:%s", updated_on);
}

/* "2026-12-02T01:07:24Z" in seconds since the epoch, -1 when it is not that form. */
static int64_t
parse_time(const char *s)
{
    struct tm tm = {0};
    char z = 0;

    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec, &z) != 7 || z != 'Z')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/*
 * A time Redmine wrote (an update or journal time) came in an answer: at
 * that moment Redmine's clock was at least that time, which bounds how
 * far it is ahead of ours from below.  The bound only ever rises.
 */
static void
observe_clock(struct call *c, const char *redmine_time)
{
    struct rm *rm = c->rm;
    int64_t t = parse_time(redmine_time);
    double ahead;

    if (t < 0)
        return;
    ahead = (double)t - (double)c->answered_ms / 1000.0;
    if (!rm->ahead_known || ahead > rm->ahead_s) {
        rm->ahead_known = true;
        rm->ahead_s = ahead;
    }
}

/*
 * The change an issue read covers, when it is settled: Redmine's update
 * times have whole seconds, so a note written later in the same second
 * would have the same time.  Only a read answered after that second, by
 * Redmine's own clock, covers the change for good.  That clock comes from
 * the Date header when there is one (Puma sends none), else from ours
 * plus the bound observe_clock keeps; NULL when the change may still
 * grow, and the next poll reads the issue again.
 */
static char *
settled_change(struct call *c, json_t *answer)
{
    const char *updated = json_string_value(json_object_get(json_object_get(answer, "issue"), "updated_on"));
    int64_t at = parse_time(updated);
    double redmine_now = (double)c->server_date;

    if (at < 0)
        return NULL;
    observe_clock(c, updated);
    if (c->rm->ahead_known && (double)c->answered_ms / 1000.0 + c->rm->ahead_s > redmine_now)
        redmine_now = (double)c->answered_ms / 1000.0 + c->rm->ahead_s;
    if (redmine_now < (double)(at + 1))
        return NULL;
    return change_id(updated);
}

static json_t *journal_items(struct call *c, json_t *answer);

/* Journals with notes by the expected author and text, oldest first (ids as strings). */
static json_t *
matching_journals(struct call *c, json_t *answer)
{
    long want = id_of(c->rm, c->employee);
    json_t *ids = json_array();
    size_t i;
    json_t *j;

    json_array_foreach(json_object_get(json_object_get(answer, "issue"), "journals"), i, j) {
        const char *notes = json_string_value(json_object_get(j, "notes"));
        long user = (long)json_integer_value(json_object_get(json_object_get(j, "user"), "id"));
        char *id;
        if (notes == NULL || !same_text(notes, c->text) || (want && user != want))
            continue;
        if ((id = br_tracker_id(json_object_get(j, "id"))) != NULL)
            json_array_append_new(ids, json_string(id));
        free(id);
    }
    return ids;
}

static int
note_read_back(struct call *c, json_t *answer)
{
    json_t *ids = matching_journals(c, answer);
    size_t n = json_array_size(ids);

    if (n > 0) {
        char *change = settled_change(c, answer);
        c->res.id = br_strdup(json_string_value(json_array_get(ids, n - 1)));
        /* The notes read: the engine takes them as a fetch, and the poll need not read a settled change again. */
        c->res.items = json_pack("{s:o}", "comments", journal_items(c, answer));
        if (change)
            json_object_set_new(c->res.items, "change", json_string(change));
        free(change);
    } else {
        /* Written (204) but not found: never write it twice; the id is a placeholder. */
        br_warn("redmine: the note just added to issue #%s is not among its journals; recorded without its id",
                c->task_id);
        c->res.id = br_asprintf("unread:%s", c->task_id);
    }
    json_decref(ids);
    return 0;
}

static int get_journals(struct call *c, json_t *unused);

/* After the 204: read the journals back to learn the note's id (the author is checked by id). */
static int
note_sent(struct call *c, json_t *answer)
{
    c->next = note_read_back;
    return get_journals(c, answer);
}

static int
put_note(struct call *c, json_t *unused)
{
    char *path = br_asprintf("/issues/%s.json", c->task_id);
    int sent;
    (void)unused;
    sent = again(c, "PUT", path, json_pack("{s:{s:s}}", "issue", "notes", c->text), note_sent);
    free(path);
    return sent;
}

static struct call *
note_call(struct rm *rm, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = call_new(rm, cb, arg, NULL);
    c->task_id = br_strdup(s->task_id);
    c->text = br_strdup(s->text ? s->text : "");
    c->employee = s->employee ? br_strdup(s->employee) : NULL;
    return c;
}

static int
rm_add_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    /* The users first: reading the note back checks its author by id. */
    return with_users(note_call((struct rm *)t, s, cb, arg), put_note);
}

static int
comment_matches(struct call *c, json_t *answer)
{
    c->res.items = matching_journals(c, answer);
    return 0;
}

static int
get_journals(struct call *c, json_t *unused)
{
    char *path = br_asprintf("/issues/%s.json?include=journals", c->task_id);
    char *as = c->employee;
    int sent;
    (void)unused;
    c->employee = NULL; /* reading is the key's own user's */
    sent = again(c, "GET", path, NULL, c->next);
    c->employee = as;
    free(path);
    return sent;
}

static int
find_comment_start(struct call *c, json_t *unused)
{
    c->next = comment_matches;
    return get_journals(c, unused);
}

static int
rm_find_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    return with_users(note_call((struct rm *)t, s, cb, arg), find_comment_start);
}

/* The issue's notes as the engine's comment items (see list_comments in tracker.h). */
static json_t *
journal_items(struct call *c, json_t *answer)
{
    json_t *issue = json_object_get(answer, "issue");
    json_t *items = json_array();
    size_t i;
    json_t *j;

    json_array_foreach(json_object_get(issue, "journals"), i, j) {
        const char *notes = json_string_value(json_object_get(j, "notes"));
        json_t *user = json_object_get(j, "user");
        long uid = (long)json_integer_value(json_object_get(user, "id"));
        const char *login = login_of(c->rm, uid);

        observe_clock(c, json_string_value(json_object_get(j, "created_on")));
        const char *name = json_string_value(json_object_get(user, "name"));
        char *id = br_tracker_id(json_object_get(j, "id"));
        char *author, *html;

        /* A journal without notes is a field change, not a comment. */
        if (id == NULL || notes == NULL || *notes == '\0') {
            free(id);
            continue;
        }
        author = login && *login ? br_strdup(login) : br_asprintf("id:%ld", uid);
        /* The engine reads every tracker's comments as HTML: this one turns back into the note as written. */
        html = br_html_from_text(notes);
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:b, s:n, s:s}", "id", id, "author", author,
                                               "author_name", name ? name : "", "html", html, "hidden",
                                               json_is_true(json_object_get(j, "private_notes")), "source_key",
                                               "task", c->task_id));
        free(author);
        free(html);
        free(id);
    }
    return items;
}

static int
got_journals(struct call *c, json_t *answer)
{
    c->res.items = journal_items(c, answer);
    c->res.id = settled_change(c, answer);
    return 0;
}

static int
list_start(struct call *c, json_t *unused)
{
    c->next = got_journals;
    return get_journals(c, unused);
}

static int
rm_list_comments(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct rm *)t, cb, arg, NULL);
    c->task_id = br_strdup(task_id);
    return with_users(c, list_start);
}

/* ---- poll: the issues changed since the last poll ---- */

static int
got_changed(struct call *c, json_t *answer)
{
    json_t *issues = json_object_get(answer, "issues");
    json_int_t total = json_integer_value(json_object_get(answer, "total_count"));
    size_t i;
    json_t *v;

    if (c->res.items == NULL)
        c->res.items = json_array();
    json_array_foreach(issues, i, v) {
        char *id = br_tracker_id(json_object_get(v, "id"));
        const char *updated = json_string_value(json_object_get(v, "updated_on"));
        char *change;
        if (id == NULL || updated == NULL) {
            free(id);
            continue;
        }
        observe_clock(c, updated);
        /* One item per change: the engine reads the issue's journals once for it. */
        change = change_id(updated);
        json_array_append_new(c->res.items, json_pack("{s:s, s:s, s:b}", "task", id, "id", change, "change", 1));
        free(change);
        free(id);
    }
    if (json_array_size(issues) == PAGE_SIZE && (json_int_t)((c->page + 1) * PAGE_SIZE) < total &&
        ++c->page < MAX_PAGES) {
        char *path = br_asprintf("%s&offset=%d", c->path, c->page * PAGE_SIZE);
        int sent = again(c, "GET", path, NULL, got_changed);
        free(path);
        return sent;
    }
    return 0;
}

static int
rm_list_recent_comments(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb, void *arg)
{
    struct rm *rm = (struct rm *)t;
    struct call *c = call_new(rm, cb, arg, got_changed);
    time_t from = (time_t)(from_ms / 1000);
    struct tm tm;
    char when[40];
    char *proj = escape_url(rm->base.cfg->tracker_project);
    char *filter, *q;
    int rc;

    (void)to_ms;
    gmtime_r(&from, &tm);
    strftime(when, sizeof(when), ">=%Y-%m-%dT%H:%M:%SZ", &tm);
    q = escape_url(when);
    filter = br_asprintf("/issues.json?project_id=%s&status_id=*&updated_on=%s&sort=updated_on:desc&limit=%d", proj, q,
                         PAGE_SIZE);
    c->path = br_strdup(filter);
    rc = start(c, "GET", filter, NULL);
    free(filter);
    free(q);
    free(proj);
    return rc;
}

/* ---- find_user: an employee known only by e-mail ---- */

static int
found_user(struct call *c, json_t *answer)
{
    struct rm *rm = c->rm;
    json_t *v = user_with_mail(answer, c->text);

    if (v == NULL) {
        c->res.err = BR_ENOTFOUND;
        return 0;
    }
    c->res.id = br_strdup(json_string_value(json_object_get(v, "login")));
    /* The journals of this login are the employee's from now on. */
    for (size_t i = 0; i < rm->n_users; i++) {
        struct rm_user *u = &rm->users[i];
        if (u->login == NULL && u->email && strcmp(u->email, c->text) == 0) {
            u->login = br_strdup(c->res.id);
            u->id = (long)json_integer_value(json_object_get(v, "id"));
        }
    }
    return 0;
}

static int
rm_find_user(struct br_tracker *t, const char *email, br_result_cb cb, void *arg)
{
    struct call *c = call_new((struct rm *)t, cb, arg, found_user);
    char *q = escape_url(email);
    char *path = br_asprintf("/users.json?name=%s&limit=100", q);
    int rc;

    c->text = br_strdup(email);
    rc = start(c, "GET", path, NULL);
    free(path);
    free(q);
    return rc;
}

static void
rm_free(struct br_tracker *t)
{
    struct rm *rm = (struct rm *)t;
    for (size_t i = 0; i < rm->n_users; i++) {
        free(rm->users[i].login);
        free(rm->users[i].email);
    }
    free(rm->users);
    free(rm->self_login);
    free(rm->key_header);
    free(rm);
}

static const struct br_tracker_ops redmine_ops = {
    .kind = "redmine",
    .text_escape = BR_TPL_ESCAPE_TEXTILE,
    /* Second resolution; the margin covers clocks of the two machines that disagree. */
    .poll_overlap_ms = 2 * 60 * 1000,
    .create_task = rm_create_task,
    .find_task = rm_find_task,
    .add_comment = rm_add_comment,
    .find_comment = rm_find_comment,
    .list_comments = rm_list_comments,
    .list_recent_comments = rm_list_recent_comments,
    .close_task = rm_close_task,
    .task_state = rm_task_state,
    .update_task_fields = rm_update_task_fields,
    .find_user = rm_find_user,
    .free = rm_free,
};

int
br_redmine_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up)
{
    struct rm *rm = br_calloc(1, sizeof(*rm));

    rm->base.ops = &redmine_ops;
    rm->base.up = up;
    rm->base.cfg = cfg;
    rm->key_header = br_asprintf("X-Redmine-API-Key: %s", cfg->tracker_token);
    rm->users = br_calloc(cfg->n_employees + 1, sizeof(*rm->users));
    for (size_t i = 0; i < cfg->n_employees; i++) {
        struct rm_user *u = &rm->users[rm->n_users];
        if (cfg->employees[i].tracker_user)
            u->login = br_strdup(cfg->employees[i].tracker_user);
        else if (cfg->employees[i].email)
            u->email = br_strdup(cfg->employees[i].email);
        else
            continue;
        rm->n_users++;
    }
    *out = &rm->base;
    return 0;
}
