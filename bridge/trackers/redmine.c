/*
 * redmine.c - the Redmine REST driver (see shared/reference/redmine.md;
 * Redmine 5.0 as packaged in Debian 12).
 *
 * Redmine differs from Planfix in ways the driver absorbs:
 *  - no contacts: the contact operations are left NULL, and the engine
 *    puts the visitor's details into the issue;
 *  - texts are Textile (the engine renders them so, br_redmine_kind's
 *    text_format) and visitor text is kept literal (br_tpl_textile_escape);
 *  - a note is added with PUT, which answers 204 without an id: the issue
 *    is read back to learn the journal id, which is how the bridge knows
 *    its own notes later (notes cannot carry a source key);
 *  - the bridge's key to find an issue again after a crash is the last
 *    line of the description, searched with the description filter;
 *  - a status change the workflow forbids is silently ignored (still
 *    204), so closing reads the issue back;
 *  - no webhooks: list_recent_comments lists the issues changed since the
 *    last poll, one item per change.
 * Requests, answers and their error mapping go through rest.h; the driver
 * adds what Redmine's answers mean (check_answer).
 * Employees are Redmine logins; the driver writes as them with
 * X-Redmine-Switch-User (an admin's key) and maps journal authors back to
 * logins through the user ids it resolves once.  An employee configured
 * with only an e-mail is resolved by that e-mail (login and id).
 */
#include "tracker.h"
#include "trackers/redmine_call.h"

#include "config.h"
#include "config_load.h"
#include "email.h"
#include "html_text.h"
#include "log.h"
#include "rest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PAGE_SIZE 100
#define MAX_PAGES 20        /* 2,000 changed issues in one poll window is more than any team */
#define SUBJECT_MAX 255     /* Redmine's limit, in characters */

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

/*
 * The new issue's id.  Asked for a closed status (c->status_id), only the
 * status the answer shows counts: a workflow that does not allow it at
 * creation leaves the issue in its default status, which the close job
 * that follows then changes (and checks).
 */
static void
take_issue_id(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *status = json_object_get(json_object_get(answer, "issue"), "status");

    rc->res.id = br_tracker_id(json_object_get(json_object_get(answer, "issue"), "id"));
    if (rc->res.id == NULL) {
        rc->res.err = BR_EFATAL;
        rc->res.error = br_strdup("Redmine created the issue but named no id");
        return;
    }
    rc->res.closed = c->status_id > 0 && (json_integer_value(json_object_get(status, "id")) == c->status_id ||
                                          json_is_true(json_object_get(status, "is_closed")));
}

static json_t *
fields_json(const struct br_field_value *fields, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I, s:s}", "id", (json_int_t)fields[i].id, "value", fields[i].value));
    return arr;
}

static void
rm_create_task(struct br_tracker *t, const struct br_task_spec *s, br_result_cb cb, void *arg)
{
    struct rm *rm = (struct rm *)t;
    struct call *c = br_rm_call_new(t, cb, arg);
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
    if (s->closed_status_id > 0) {
        json_object_set_new(issue, "status_id", json_integer((json_int_t)s->closed_status_id));
        c->status_id = s->closed_status_id;
    }
    free(subject);
    br_buf_dispose(&desc);
    br_rm_start(c, "POST", "/issues.json", json_pack("{s:o}", "issue", issue), take_issue_id);
}

static void
found_issue(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    size_t i;
    json_t *v;

    /* The filter matches parts of descriptions: the key is unique, so any hit is the one. */
    json_array_foreach(json_object_get(answer, "issues"), i, v) {
        const char *d = json_string_value(json_object_get(v, "description"));
        if (d && strstr(d, c->text)) {
            rc->res.id = br_tracker_id(json_object_get(v, "id"));
            return;
        }
    }
    rc->res.err = BR_ENOTFOUND;
}

static void
rm_find_task(struct br_tracker *t, const char *contact_id, const char *source_key, br_result_cb cb, void *arg)
{
    struct rm *rm = (struct rm *)t;
    struct call *c = br_rm_call_new(t, cb, arg);
    char *proj = br_rm_escape_url(rm->base.cfg->tracker_project);
    char *filter = br_asprintf("~%s", source_key);
    char *q = br_rm_escape_url(filter);
    char *path = br_asprintf("/issues.json?project_id=%s&status_id=*&description=%s&limit=%d", proj, q, PAGE_SIZE);

    (void)contact_id;
    c->text = br_strdup(source_key);
    br_rm_start(c, "GET", path, NULL, found_issue);
    free(path);
    free(q);
    free(filter);
    free(proj);
}

static void
got_state(struct br_rest_call *rc, json_t *answer)
{
    json_t *status = json_object_get(json_object_get(answer, "issue"), "status");
    rc->res.task_status = json_is_true(json_object_get(status, "is_closed")) ? BR_TASK_STATUS_INACTIVE
                                                                               : BR_TASK_STATUS_ACTIVE;
}

static void
rm_task_state(struct br_tracker *t, const char *task_id, br_result_cb cb, void *arg)
{
    struct call *c = br_rm_call_new(t, cb, arg);
    char *path = br_asprintf("/issues/%s.json", task_id);
    br_rm_start(c, "GET", path, NULL, got_state);
    free(path);
}

/* Redmine answers 204 even when the workflow forbids the change: believe only the issue read back. */
static void
close_checked(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *status = json_object_get(json_object_get(answer, "issue"), "status");
    long now = (long)json_integer_value(json_object_get(status, "id"));

    if (now == c->status_id || json_is_true(json_object_get(status, "is_closed")))
        return;
    rc->res.err = BR_EFATAL;
    rc->res.error = br_asprintf("Redmine kept issue #%s in status \"%s\": its workflow does not let the bridge's user "
                               "set status %ld (the change was answered 204 but not made); allow the transition or "
                               "choose another closed_status_id",
                               c->task_id,
                               json_string_value(json_object_get(status, "name")) ? json_string_value(json_object_get(status, "name")) : "?",
                               c->status_id);
}

static void
close_sent(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    char *path = br_asprintf("/issues/%s.json", c->task_id);

    (void)answer;
    br_rm_again(c, "GET", path, NULL, close_checked);
    free(path);
}

static void
rm_close_task(struct br_tracker *t, const char *task_id, long status_id, br_result_cb cb, void *arg)
{
    struct call *c = br_rm_call_new(t, cb, arg);
    char *path = br_asprintf("/issues/%s.json", task_id);

    c->task_id = br_strdup(task_id);
    c->status_id = status_id;
    br_rm_start(c, "PUT", path, json_pack("{s:{s:I}}", "issue", "status_id", (json_int_t)status_id), close_sent);
    free(path);
}

static void
rm_update_task_fields(struct br_tracker *t, const char *task_id, const struct br_field_value *fields, size_t n,
                      br_result_cb cb, void *arg)
{
    struct call *c = br_rm_call_new(t, cb, arg);
    char *path = br_asprintf("/issues/%s.json", task_id);
    br_rm_start(c, "PUT", path, json_pack("{s:{s:o}}", "issue", "custom_fields", fields_json(fields, n)), NULL);
    free(path);
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
    ahead = (double)t - (double)c->rest.answered_ms / 1000.0;
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
    double redmine_now = (double)c->rest.server_date_s;

    if (at < 0)
        return NULL;
    observe_clock(c, updated);
    if (c->rm->ahead_known && (double)c->rest.answered_ms / 1000.0 + c->rm->ahead_s > redmine_now)
        redmine_now = (double)c->rest.answered_ms / 1000.0 + c->rm->ahead_s;
    if (redmine_now < (double)(at + 1))
        return NULL;
    return change_id(updated);
}

static void journal_items(struct call *c, json_t *answer, struct br_comment_list *l);

/* Journals with notes by the expected author and text, oldest first (ids as strings). */
static json_t *
matching_journals(struct call *c, json_t *answer)
{
    long want = br_rm_id_of(c->rm, c->employee);
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

static void
note_read_back(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *ids = matching_journals(c, answer);
    size_t n = json_array_size(ids);

    if (n > 0) {
        rc->res.id = br_strdup(json_string_value(json_array_get(ids, n - 1)));
        /* The notes read: the engine takes them as a fetch, and the poll need not read a settled change again. */
        journal_items(c, answer, &rc->res.comments);
        rc->res.comments_read = true;
        rc->res.change = settled_change(c, answer);
    } else {
        /* Written (204) but not found: never write it twice; the id is a placeholder. */
        br_warn("redmine: the note just added to issue #%s is not among its journals; recorded without its id",
                c->task_id);
        rc->res.id = br_asprintf("unread:%s", c->task_id);
    }
    json_decref(ids);
}

/* Reads the issue's journals, answered to step. */
static void
get_journals(struct call *c, br_rest_step_fn step)
{
    char *path = br_asprintf("/issues/%s.json?include=journals", c->task_id);
    char *as = c->employee;

    c->employee = NULL; /* reading is the key's own user's */
    br_rm_again(c, "GET", path, NULL, step);
    c->employee = as;
    free(path);
}

/* After the 204: read the journals back to learn the note's id (the author is checked by id). */
static void
note_sent(struct br_rest_call *rc, json_t *answer)
{
    (void)answer;
    get_journals((struct call *)rc, note_read_back);
}

static void
put_note(struct br_rest_call *rc, json_t *unused)
{
    struct call *c = (struct call *)rc;
    char *path = br_asprintf("/issues/%s.json", c->task_id);

    (void)unused;
    br_rm_again(c, "PUT", path, json_pack("{s:{s:s}}", "issue", "notes", c->text), note_sent);
    free(path);
}

static struct call *
note_call(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    struct call *c = br_rm_call_new(t, cb, arg);
    c->task_id = br_strdup(s->task_id);
    c->text = br_strdup(s->text ? s->text : "");
    c->employee = s->employee ? br_strdup(s->employee) : NULL;
    return c;
}

static void
rm_add_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    /* The users first: reading the note back checks its author by id. */
    br_rm_with_users(note_call(t, s, cb, arg), put_note);
}

static void
comment_matches(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *ids = matching_journals(c, answer);
    size_t i;
    json_t *v;

    json_array_foreach(ids, i, v)
        br_comment_list_add(&rc->res.comments)->id = br_strdup(json_string_value(v));
    json_decref(ids);
}

static void
find_comment_start(struct br_rest_call *rc, json_t *unused)
{
    (void)unused;
    get_journals((struct call *)rc, comment_matches);
}

static void
rm_find_comment(struct br_tracker *t, const struct br_comment_spec *s, br_result_cb cb, void *arg)
{
    br_rm_with_users(note_call(t, s, cb, arg), find_comment_start);
}

/* The issue's notes as the engine's comment items (see list_comments in tracker.h), into l. */
static void
journal_items(struct call *c, json_t *answer, struct br_comment_list *l)
{
    json_t *issue = json_object_get(answer, "issue");
    size_t i;
    json_t *j;

    json_array_foreach(json_object_get(issue, "journals"), i, j) {
        const char *notes = json_string_value(json_object_get(j, "notes"));
        json_t *user = json_object_get(j, "user");
        long uid = (long)json_integer_value(json_object_get(user, "id"));
        const char *login = br_rm_login_of(c->rm, uid);
        const char *name = json_string_value(json_object_get(user, "name"));
        char *id = br_tracker_id(json_object_get(j, "id"));
        struct br_comment_item *item;

        observe_clock(c, json_string_value(json_object_get(j, "created_on")));
        /* A journal without notes is a field change, not a comment. */
        if (id == NULL || notes == NULL || *notes == '\0') {
            free(id);
            continue;
        }
        item = br_comment_list_add(l);
        item->id = id;
        item->author = login && *login ? br_strdup(login) : br_asprintf("id:%ld", uid);
        item->author_name = br_strdup(name ? name : "");
        /* The engine reads every tracker's comments as HTML: this one turns back into the note as written. */
        item->html = br_html_from_text(notes);
        item->hidden = json_is_true(json_object_get(j, "private_notes"));
        item->task = br_strdup(c->task_id);
    }
}

static void
got_journals(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    journal_items(c, answer, &rc->res.comments);
    rc->res.change = settled_change(c, answer);
}

static void
list_start(struct br_rest_call *rc, json_t *unused)
{
    (void)unused;
    get_journals((struct call *)rc, got_journals);
}

/* One request reads every journal: known has nothing to save. */
static void
rm_list_comments(struct br_tracker *t, const char *task_id, const struct br_comments_known *known, br_result_cb cb,
                 void *arg)
{
    (void)known;
    struct call *c = br_rm_call_new(t, cb, arg);
    c->task_id = br_strdup(task_id);
    br_rm_with_users(c, list_start);
}

/* ---- poll: the issues changed since the last poll ---- */

static void
got_changed(struct br_rest_call *rc, json_t *answer)
{
    struct call *c = (struct call *)rc;
    json_t *issues = json_object_get(answer, "issues");
    json_int_t total = json_integer_value(json_object_get(answer, "total_count"));
    size_t i;
    json_t *v;

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
        {
            struct br_comment_item *item = br_comment_list_add(&rc->res.comments);
            item->task = id;
            item->id = change;
            item->change = true;
        }
    }
    if (json_array_size(issues) == PAGE_SIZE && (json_int_t)((c->page + 1) * PAGE_SIZE) < total &&
        ++c->page < MAX_PAGES) {
        char *path = br_asprintf("%s&offset=%d", c->path, c->page * PAGE_SIZE);
        br_rm_again(c, "GET", path, NULL, got_changed);
        free(path);
    }
}

static void
rm_list_recent_comments(struct br_tracker *t, int64_t from_ms, int64_t to_ms, br_result_cb cb, void *arg)
{
    struct rm *rm = (struct rm *)t;
    struct call *c = br_rm_call_new(t, cb, arg);
    time_t from = (time_t)(from_ms / 1000);
    struct tm tm;
    char when[40];
    char *proj = br_rm_escape_url(rm->base.cfg->tracker_project);
    char *filter, *q;

    (void)to_ms;
    gmtime_r(&from, &tm);
    strftime(when, sizeof(when), ">=%Y-%m-%dT%H:%M:%SZ", &tm);
    q = br_rm_escape_url(when);
    filter = br_asprintf("/issues.json?project_id=%s&status_id=*&updated_on=%s&sort=updated_on:desc&limit=%d", proj, q,
                         PAGE_SIZE);
    c->path = br_strdup(filter);
    br_rm_start(c, "GET", filter, NULL, got_changed);
    free(filter);
    free(q);
    free(proj);
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
    .kind = &br_redmine_kind,
    .caps = {.task_fields = true, .users = true},
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
    .find_user = br_rm_find_user,
    .free = rm_free,
};

static int
rm_new(struct br_tracker **out, const struct br_config *cfg, struct br_upstream *up)
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

/* Redmine's own keys: an admin's API key (it writes as the employees), a project; no webhooks. */
static void
rm_load(struct br_conf_loader *L, json_t *o)
{
    static const char *const planfix_only[] = {"token", "webhook_secret", NULL};
    struct br_config *c = L->cfg;

    br_conf_refuse(L, o, "tracker", planfix_only,
                   "is a Planfix setting; Redmine uses api_key and has no webhooks (replies are polled)");
    c->tracker_token = br_conf_str(L, o, "tracker", "api_key", NULL, true, true);
    c->tracker_project = br_conf_str(L, o, "tracker", "project", NULL, true, false);
}

static const char *const rm_keys[] = {"api_key", "project", NULL};

static char *
rm_task_url(const struct br_config *cfg, const char *task_id)
{
    return br_asprintf("%s/issues/%s", cfg->tracker_url, task_id);
}

/* employees[].tracker_user: a login as Redmine allows one (X-Redmine-Switch-User names it). */
static const char *
rm_user_problem(const char *user)
{
    static const char login_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-@.";
    size_t n = strlen(user);

    if (n <= 60 && strspn(user, login_chars) == n)
        return NULL;
    return "a Redmine login (at most 60 letters, digits and _ - @ .)";
}

const struct br_tracker_kind br_redmine_kind = {
    .name = "redmine",
    .label = "Redmine",
    .task_word = "issue",
    .text_format = BR_TPL_ESCAPE_TEXTILE,
    .text_ext = "textile",
    .default_rps = 5,     /* a self-hosted Redmine takes more than Planfix */
    .default_poll_s = 10, /* no webhooks: polling is how replies arrive */
    .default_daily_quota = 0,     /* a self-hosted Redmine counts no requests a day */
    .polled_only = true,
    .numeric_watchers = true,
    .ops = &redmine_ops,
    .keys = rm_keys,
    .load = rm_load,
    .user_problem = rm_user_problem,
    .create = rm_new,
    .task_url = rm_task_url,
};
