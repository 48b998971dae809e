/*
 * task.c - the conversation's task: made from the channel's templates (or
 * a known contact's active task joined), checked at a new chat, completed
 * when the visitor leaves, its custom fields filled again (Redmine).
 */
#include "jobs/jobs.h"

#include "context.h"
#include "conversation.h"
#include "crm_card.h"
#include "log.h"
#include "templates/tpl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_WAIT_MS 3000 /* how long a new task waits for Chatra's visitor data and the CRM card */

static void task_created(void *arg, struct br_result *res);

/*
 * The values a template wrote (br_tpl_render_seen), as a sorted list of
 * addresses: which messages the description shows is a question of which
 * of their texts it wrote, whatever the template's conditions.
 */
struct shown {
    const json_t **v;
    size_t n, cap;
};


/* Custom field templates, rendered (plain text: the tracker stores values as given). */
struct br_field_value *
br_jobs_render_fields(const struct br_custom_field *defs, size_t n, json_t *ctx)
{
    struct br_field_value *f = br_calloc(n + 1, sizeof(*f));

    for (size_t i = 0; i < n; i++) {
        struct br_buf b;
        br_buf_init(&b, 64 * 1024);
        if (br_tpl_render(defs[i].value, ctx, BR_TPL_ESCAPE_NONE, &b) != 0)
            br_buf_reset(&b);
        f[i].id = defs[i].id;
        f[i].value = b.data ? br_buf_steal(&b) : br_strdup("");
        br_buf_dispose(&b);
    }
    return f;
}

void
br_jobs_free_fields(struct br_field_value *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)f[i].value);
    free(f);
}

static void
on_shown(void *arg, const json_t *value)
{
    struct shown *sh = arg;
    if (sh->n == sh->cap) {
        sh->cap = sh->cap ? sh->cap * 2 : 64;
        sh->v = br_realloc(sh->v, sh->cap * sizeof(*sh->v));
    }
    sh->v[sh->n++] = value;
}

static int
cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const json_t *const *)a, y = (uintptr_t) * (const json_t *const *)b;
    return x < y ? -1 : x > y;
}

static bool
was_shown(const struct shown *sh, const json_t *v)
{
    return v && sh->n && bsearch(&v, sh->v, sh->n, sizeof(*sh->v), cmp_ptr) != NULL;
}

/*
 * Renders the task's title and description from ctx.  *carried gets the
 * ids (of ids, aligned with chat.messages) of the messages whose text the
 * description shows; *prev_linked whether it shows previous_task.id.
 * A template that cannot render (a huge visitor text) gives way to the
 * fallback texts, which carry no message.
 */
static void
render_task(struct br_run *r, json_t *ctx, json_t *ids, struct br_buf *title, struct br_buf *desc, json_t *carried,
            bool *prev_linked)
{
    const struct br_config *cfg = r->env->cfg;
    struct shown sh = {0};
    json_t *msgs = json_object_get(json_object_get(ctx, "chat"), "messages"), *m;
    size_t i;

    /* An empty title (a template whose values are all missing) is refused by trackers: fall back too. */
    if (br_tpl_render(r->ch->task_title, ctx, BR_TPL_ESCAPE_NONE, title) != 0 ||
        title->len == strspn(title->data ? title->data : "", " \t\r\n")) {
        br_buf_reset(title);
        if (br_texts_render(cfg, BR_TEXT_FALLBACK_TITLE, ctx, title) != 0)
            br_buf_printf(title, "Chat (%s)", r->ch->name);
    }
    if (br_tpl_render_seen(r->ch->task_description, ctx, r->env->tracker->ops->kind->text_format, desc, on_shown, &sh) != 0) {
        sh.n = 0;
        br_buf_reset(desc);
        (void)br_texts_render(cfg, BR_TEXT_FALLBACK_DESCRIPTION, ctx, desc);
    }
    if (sh.n)
        qsort(sh.v, sh.n, sizeof(*sh.v), cmp_ptr);
    json_array_foreach(msgs, i, m) {
        if (was_shown(&sh, json_object_get(m, "text")) || was_shown(&sh, json_object_get(m, "text_html")))
            json_array_append(carried, json_array_get(ids, i));
    }
    *prev_linked = was_shown(&sh, json_object_get(json_object_get(ctx, "previous_task"), "id"));
    free(sh.v);
}

/*
 * The status a task is made in when the visitor left before it was made
 * (a transcript marked it closing and a close job waits behind this one):
 * completed at once, which saves the close request.  0: made open.
 */
static long
status_at_birth(struct br_run *r, int gen)
{
    struct br_task t = {0};
    bool closing = br_store_task_get(r->env->store, r->conv.id, gen, &t) == 0 && t.state == BR_TASK_CLOSING;

    br_task_dispose(&t);
    return closing && r->ch->closed_status_id > 0 ? r->ch->closed_status_id : 0;
}

/*
 * Renders the task's title and description, and commits which messages the
 * description carries (and whether it links the previous task) before any
 * request: after a crash, the task found again is known to hold just these.
 * The others stay waiting and go out as comments, in order.  Returns the
 * template context (the caller's), or NULL when the store refused.
 */
static json_t *
render_and_commit(struct br_run *r, struct br_buf *title, struct br_buf *desc)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    json_t *ids = json_array(), *carried = json_array();
    json_t *ctx = br_context_task(r->env->cfg, r->env->store, r->ch, &r->conv, gen, ids);
    const char *prev = br_jobs_str(json_object_get(ctx, "previous_task"), "id");
    bool prev_linked = false;
    char *payload;
    int rc;

    render_task(r, ctx, ids, title, desc, carried, &prev_linked);
    br_crm_card_describe(r->env, r->conv.id, ctx, desc);
    json_object_set_new(r->payload, "msgs", carried);
    if (prev && !prev_linked)
        json_object_set_new(r->payload, "prev_task", json_string(prev));
    else
        json_object_del(r->payload, "prev_task");
    payload = json_dumps(r->payload, JSON_COMPACT);
    rc = br_store_job_payload(r->env->store, r->job.id, payload);
    free(payload);
    json_decref(ids);
    if (rc) {
        json_decref(ctx);
        return NULL;
    }
    return ctx;
}

/* What the task would carry, committed without a request (for a task looked for first). */
static bool
commit_carried(struct br_run *r)
{
    struct br_buf title, desc;
    json_t *ctx;
    bool ok;

    br_buf_init(&title, 4096);
    br_buf_init(&desc, 256 * 1024);
    ctx = render_and_commit(r, &title, &desc);
    ok = ctx != NULL;
    br_buf_dispose(&title);
    br_buf_dispose(&desc);
    json_decref(ctx);
    return ok;
}

static void
create_task(struct br_run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_buf title, desc;
    struct br_task_spec spec = {0};
    struct br_field_value *fields;
    json_t *ctx;

    br_buf_init(&title, 4096);
    br_buf_init(&desc, 256 * 1024);
    if ((ctx = render_and_commit(r, &title, &desc)) == NULL) {
        br_buf_dispose(&title);
        br_buf_dispose(&desc);
        br_run_fail(r, BR_ERETRY, "cannot store which messages the task text carries");
        return;
    }
    /* Titles are one line, without the newline a template file ends with. */
    for (size_t i = 0; i < title.len; i++)
        if (title.data[i] == '\n' || title.data[i] == '\r' || title.data[i] == '\t')
            title.data[i] = ' ';
    while (title.len > 0 && title.data[title.len - 1] == ' ')
        title.data[--title.len] = '\0';
    spec.title = title.data ? title.data + strspn(title.data, " ") : "";
    spec.description = desc.data ? desc.data : "";
    spec.fields = fields = br_jobs_render_fields(r->ch->custom_fields, r->ch->n_custom_fields, ctx);
    spec.n_fields = r->ch->n_custom_fields;
    spec.contact_id = r->conv.contact_id;
    spec.company_id = r->conv.company_id;
    spec.watchers = (const char *const *)r->ch->watchers;
    spec.n_watchers = r->ch->n_watchers;
    spec.template_id = r->ch->task_template_id;
    spec.source_key = r->source_key;
    spec.closed_status_id = status_at_birth(r, gen);
    r->step = 2;
    r->env->tracker->ops->create_task(r->env->tracker, &spec, task_created, r);
    br_buf_dispose(&title);
    br_buf_dispose(&desc);
    br_jobs_free_fields(fields, r->ch->n_custom_fields);
    json_decref(ctx);
}

static void
task_created(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    const char *prev = br_jobs_str(r->payload, "prev_task");
    int rc = 0;

    if (r->step == 1 && res->err == BR_ENOTFOUND) {
        /* Not created before the crash: create it now. */
        create_task(r);
        return;
    }
    if (res->err == 0 && res->id) {
        /*
         * Made completed: recorded closed now, so the close job behind
         * ends without a request.  A task found after a crash is recorded
         * as before (closing): that close job completes it, whatever
         * status it was made in.
         */
        bool closed = r->step == 2 && res->closed;
        rc = br_conversation_task_made(r->env, r->conv.id, gen, res->id, json_object_get(r->payload, "msgs"), prev,
                                       closed);
        if (rc == 0)
            br_info("conversation %lld: task %s %s", (long long)r->conv.id, res->id,
                    r->step == 1 ? "found after restart"
                    : closed     ? "created completed (the visitor had left)"
                                 : "created");
    }
    br_run_recorded(r, res, rc);
}

/*
 * The contact's active task found: the chat joins it.  Its description is
 * not the bridge's, so every message goes as a comment, and the bridge
 * never completes it (see run_close).  A task that is already another
 * conversation's stays theirs: this one gets its own.
 */
static void
active_task_found(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_task other = {0};
    bool taken;
    int rc;

    if (res->err == BR_ENOTFOUND) {
        br_job_task(r);
        return;
    }
    if (res->err) {
        br_run_finish(r, res);
        return;
    }
    taken = br_store_task_by_tracker_id(r->env->store, res->id, &other) == 0 && other.conv_id != r->conv.id;
    br_task_dispose(&other);
    if (taken) {
        br_info("conversation %lld: the contact's active task %s belongs to another conversation; a new task follows",
                (long long)r->conv.id, res->id);
        br_job_task(r);
        return;
    }
    rc = br_conversation_task_joined(r->env, r->conv.id, gen, res->id);
    if (rc == 0)
        br_info("conversation %lld: joined the contact's active task %s", (long long)r->conv.id, res->id);
    br_run_recorded(r, res, rc);
}

void
br_job_task(struct br_run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_task t = {0};
    bool tried;

    if (br_store_task_get(r->env->store, r->conv.id, gen, &t) == 0 && t.task_id) {
        br_task_dispose(&t);
        br_run_ok(r);
        return;
    }
    if ((r->conv.profile_state == BR_PROFILE_PENDING || br_crm_card_pending(r->env, r->conv.id)) &&
        br_now_ms() - json_integer_value(json_object_get(r->payload, "since")) < PROFILE_WAIT_MS) {
        /* Chatra's visitor data (or the CRM card) is on its way: wait a little, never long. */
        br_task_dispose(&t);
        br_run_later(r, BR_TASK_PROFILE_STEP_MS);
        return;
    }
    if (r->conv.contact_id == NULL && br_env_has_contacts(r->env))
        br_warn("conversation %lld: the task is created without a contact (the contact could not be found or made)",
                (long long)r->conv.id);
    /*
     * "A new task if there are no active tasks with this contact": a known
     * contact's active task (one an employee opened by hand too) takes the
     * chat.  A contact the bridge has just made has none; asked before the
     * key is stored, so a task of ours is never mistaken for it.
     */
    if (t.source_key == NULL && r->step == 0 && r->ch->new_task_if_no_active && r->conv.contact_id &&
        r->env->tracker->ops->caps.active_tasks && (!r->conv.contact_made || gen > 1)) {
        br_task_dispose(&t);
        r->step = 3;
        r->env->tracker->ops->find_active_task(r->env->tracker, r->conv.contact_id, active_task_found, r);
        return;
    }
    /*
     * The key is stored with the task before the first request, whichever
     * job makes it (a task job, or a check or comment job that found the
     * old task gone): any later attempt looks for that key first.
     */
    tried = t.source_key != NULL;
    if (tried) {
        r->source_key = t.source_key;
        t.source_key = NULL;
    } else {
        int rc;
        r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
        br_store_source_key(r->env->store, BR_SOURCE_TASK, r->job.id, r->source_key);
        if ((rc = BR_STORE_TX(r->env->store, br_store_task_set_key(r->env->store, r->conv.id, gen, r->source_key)))) {
            br_task_dispose(&t);
            br_run_fail(r, BR_ERETRY, "cannot store the task key: %s", br_strerror(rc));
            return;
        }
    }
    br_task_dispose(&t);
    /*
     * A job marked to look (a backup's copy marks every waiting job so) may
     * have made its task since, outside this store: the key comes from the
     * job's id, so it is the same there, and the job looks for it first.
     */
    if ((tried || r->job.recover) && (r->conv.contact_id || !br_env_has_contacts(r->env))) {
        /* Found, it holds what it would hold now: the messages of the store it was made from. */
        if (!tried && !commit_carried(r)) {
            br_run_fail(r, BR_ERETRY, "cannot store which messages the task text carries");
            return;
        }
        r->step = 1;
        r->env->tracker->ops->find_task(r->env->tracker, r->conv.contact_id, r->source_key, task_created, r);
        return;
    }
    create_task(r);
}

/* Sets r->task_id to the tracker id of (conv, gen); false when it does not exist (yet). */
bool
br_jobs_task_of(struct br_run *r, int64_t conv_id, int gen, char **out)
{
    struct br_task t = {0};
    bool ok = br_store_task_get(r->env->store, conv_id, gen, &t) == 0 && t.task_id;
    if (ok)
        *out = br_strdup(t.task_id);
    br_task_dispose(&t);
    return ok;
}

/* Creates the task of generation gen from inside another job (the lane has no task job for it). */
void
br_jobs_create_task_inline(struct br_run *r, int gen)
{
    int rc = br_conversation_task_slot(r->env, r->conv.id, gen);
    if (rc) {
        br_run_fail(r, BR_ERETRY, "cannot store the task: %s", br_strerror(rc));
        return;
    }
    json_object_set_new(r->payload, "gen", json_integer(gen));
    br_job_task(r);
}

static void
task_checked(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    enum br_task_status status = res->err == BR_ENOTFOUND ? BR_TASK_STATUS_DELETED : res->task_status;

    if (res->err && res->err != BR_ENOTFOUND) {
        br_run_finish(r, res);
        return;
    }
    if (status == BR_TASK_STATUS_ACTIVE || (status == BR_TASK_STATUS_INACTIVE && !r->ch->new_task_if_no_active)) {
        br_run_ok(r);
        return;
    }
    if (r->ch->new_task_if_no_active) {
        /* Only agents have written in the new chat: their greetings wait for the visitor's first message. */
        bool held;
        int rc = br_conversation_gone_before_the_visitor_wrote(r->env, r->conv.id, gen, &held);
        if (rc) {
            br_run_fail(r, BR_ERETRY, "cannot store the task's end: %s", br_strerror(rc));
            return;
        }
        if (held) {
            br_info("conversation %lld: task %s is %s in the tracker; the visitor's first message in the new chat "
                    "opens a new task", (long long)r->conv.id, r->task_id,
                    status == BR_TASK_STATUS_DELETED ? "deleted" : "completed");
            br_run_ok(r);
            return;
        }
    }
    br_info("conversation %lld: task %s is %s in the tracker; the new chat gets a new task", (long long)r->conv.id,
            r->task_id, status == BR_TASK_STATUS_DELETED ? "deleted" : "completed");
    if (br_conversation_reopen(r->env, &r->conv, gen) != 0) {
        br_run_fail(r, BR_ERETRY, "cannot open a new task generation");
        return;
    }
    br_jobs_create_task_inline(r, r->conv.gen);
}

/*
 * At the start of a new chat: is the conversation's task still active
 * in the tracker?  Employees complete or delete tasks there.
 */
void
br_job_check(struct br_run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));

    if (r->conv.gen != gen) {
        /* A crash after the new generation was opened: finish what this job started. */
        br_jobs_create_task_inline(r, r->conv.gen);
        return;
    }
    if (!br_jobs_task_of(r, r->conv.id, gen, &r->task_id)) {
        /* This job opened the generation and was cut off (crash, timeout): finish it. */
        br_jobs_create_task_inline(r, gen);
        return;
    }
    r->env->tracker->ops->task_state(r->env->tracker, r->task_id, task_checked, r);
}

/* A task that is gone needs no fields. */
static void
fields_done(void *arg, struct br_result *res)
{
    if (res->err == BR_ENOTFOUND)
        res->err = 0;
    br_run_finish(arg, res);
}

void
br_job_fields(struct br_run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_field_value *fields;
    json_t *ctx;

    if (!br_jobs_task_of(r, r->conv.id, gen, &r->task_id)) {
        br_run_fail(r, BR_ERETRY, "the task for these fields does not exist yet");
        return;
    }
    ctx = br_context_task(r->env->cfg, r->env->store, r->ch, &r->conv, gen, NULL);
    fields = br_jobs_render_fields(r->ch->custom_fields, r->ch->n_custom_fields, ctx);
    r->env->tracker->ops->update_task_fields(r->env->tracker, r->task_id, fields, r->ch->n_custom_fields, fields_done, r);
    br_jobs_free_fields(fields, r->ch->n_custom_fields);
    json_decref(ctx);
}

static void
task_closed(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));

    int rc = 0;

    if (res->err == BR_ENOTFOUND)
        res->err = 0; /* deleted in the tracker: there is nothing left to complete */
    if (res->err == 0) {
        rc = br_conversation_task_closed(r->env, r->conv.id, gen);
        if (rc == 0)
            br_info("conversation %lld: task %s completed", (long long)r->conv.id, r->task_id);
    }
    br_run_recorded(r, res, rc);
}

void
br_job_close(struct br_run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    struct br_task t = {0};

    if (br_store_task_get(r->env->store, r->conv.id, gen, &t) != 0 || t.task_id == NULL) {
        br_task_dispose(&t);
        br_run_fail(r, BR_EFATAL, "no task to complete");
        return;
    }
    if (t.state == BR_TASK_CLOSED) {
        /* Made completed (the visitor had left before it was made), or found completed: nothing to send. */
        br_debug("conversation %lld: task %s is completed already", (long long)r->conv.id, t.task_id);
        br_task_dispose(&t);
        br_run_ok(r);
        return;
    }
    if (t.source_key == NULL) {
        /*
         * A task the chat joined (the contact's active task, made by an
         * employee): it is theirs to complete.  Only the conversation's
         * link to it ends.
         */
        int rc = br_conversation_task_closed(r->env, r->conv.id, gen);
        br_info("conversation %lld: task %s was not made by the bridge; it stays open in the tracker",
                (long long)r->conv.id, t.task_id);
        br_task_dispose(&t);
        if (rc)
            br_run_fail(r, BR_ERETRY, "cannot store the task's state: %s", br_strerror(rc));
        else
            br_run_ok(r);
        return;
    }
    r->task_id = br_strdup(t.task_id);
    br_task_dispose(&t);
    r->env->tracker->ops->close_task(r->env->tracker, r->task_id, r->ch->closed_status_id, task_closed, r);
}
