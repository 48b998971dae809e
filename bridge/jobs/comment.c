/*
 * comment.c - what the bridge writes on a task: the visitor's messages
 * (coalesced into one comment while they come quickly), an agent's
 * message typed in Chatra, and the bridge's own notes, each once: after a
 * crash it looks for the comment before writing it again.
 */
#include "jobs/jobs.h"

#include "context.h"
#include "employees.h"
#include "conversation.h"
#include "html_text.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#define COALESCE_MAX_MSGS 50             /* visitor messages in one comment */
#define COALESCE_MAX_BYTES (32 * 1024)   /* their text in one comment */

static void comment_added(void *arg, struct br_result *res);

/*
 * The visitor messages waiting right behind the first one (and the
 * agents', with mirror_agent_messages "with_visitor"): one comment
 * carries them all.
 */
struct run_of_msgs {
    int64_t first;
    json_t *ids;
    json_t *msgs;     /* the messages' template contexts */
    const json_t *base;
    struct br_run *r;
    bool stopped;
    size_t bytes;
    bool agents;      /* agents' messages join the run */
};


/* Sends r->html as a comment on r->task_id, by r->author_contact or r->author_employee (or the bridge). */
static void
post_comment(struct br_run *r)
{
    struct br_comment_spec spec = {0};

    spec.task_id = r->task_id;
    spec.source_key = r->source_key;
    spec.contact_id = r->author_contact;
    spec.employee = r->author_employee;
    spec.text = r->text;
    r->step = 2;
    r->env->tracker->ops->add_comment(r->env->tracker, &spec, comment_added, r);
}

static void
comment_found(void *arg, struct br_result *res)
{
    struct br_run *r = arg;

    if (res->err == BR_ENOTFOUND) {
        comment_added(r, res); /* the task is gone: handled as when posting */
        return;
    }
    if (res->err) {
        br_run_finish(r, res);
        return;
    }
    for (size_t i = 0; i < res->comments.n; i++) {
        const struct br_comment_item *it = &res->comments.items[i];
        if (it->source_key && strcmp(it->source_key, r->source_key) == 0) {
            /* It was written before the crash: record it instead of writing it again. */
            free(res->id);
            res->id = br_strdup(it->id);
            r->step = 2;
            comment_added(r, res);
            return;
        }
    }
    post_comment(r);
}

/*
 * After a crash, on a tracker whose comments carry no key: a comment with
 * this author and text that the bridge has not recorded is the one the
 * cut-off run wrote (every comment the bridge wrote and saw answered is
 * recorded with its id).
 */
static void
comment_matched(void *arg, struct br_result *res)
{
    struct br_run *r = arg;

    if (res->err == BR_ENOTFOUND) {
        comment_added(r, res);
        return;
    }
    if (res->err) {
        br_run_finish(r, res);
        return;
    }
    for (size_t i = 0; i < res->comments.n; i++) {
        const char *id = res->comments.items[i].id;
        if (id && !br_store_comment_seen(r->env->store, r->task_id, id)) {
            free(res->id);
            res->id = br_strdup(id);
            r->step = 2;
            comment_added(r, res);
            return;
        }
    }
    post_comment(r);
}

static void
comment_added(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    json_t *msg = json_object_get(r->payload, "msg");
    int rc = 0;

    if (res->err == BR_ENOTFOUND && msg) {
        /* The task was deleted in the tracker: the message opens a new one (in either mode). */
        struct br_msg m = {0};
        int gen = -1;
        if (br_store_msg_get(r->env->store, json_integer_value(msg), &m) == 0)
            gen = m.gen;
        br_msg_dispose(&m);
        br_info("conversation %lld: task %s was deleted in the tracker; a new task follows", (long long)r->conv.id,
                r->task_id);
        if (gen >= 0 && gen != r->conv.gen) {
            /* Its task is an old one: the message goes to the current task instead. */
            rc = br_conversation_msg_to_gen(r->env, json_integer_value(msg), r->conv.gen);
            if (rc)
                br_run_fail(r, BR_ERETRY, "cannot move the message: %s", br_strerror(rc));
            else
                br_run_later(r, 0);
            return;
        }
        if (gen < 0 || br_conversation_reopen(r->env, &r->conv, gen) != 0) {
            br_run_fail(r, BR_ERETRY, "cannot open a new task generation");
            return;
        }
        free(r->source_key);
        r->source_key = NULL;
        br_jobs_create_task_inline(r, r->conv.gen);
        return;
    }
    if (res->err == 0 && res->id) {
        bool is_new;
        rc = br_store_begin(r->env->store);
        if (rc == 0)
            rc = br_store_comment_mark(r->env->store, r->task_id, res->id, BR_COMMENT_BRIDGE, &is_new);
        /* Its message, and the others it carried (coalesced). */
        if (rc == 0)
            rc = br_conversation_msgs_mirrored(r->env, msg ? json_integer_value(msg) : 0,
                                               json_object_get(r->payload, "msgs"), res->id);
        if (rc == 0 && res->comments_read) {
            /*
             * The driver read the task's comments to learn this one's id
             * (Redmine): they are taken as a fetch would, and the change
             * they cover is not read again by the next poll.
             */
            rc = br_jobs_take_comments(r, &res->comments);
            if (rc == 0 && r->undecided) {
                /* Some authors are still being looked up: a fetch reads the task again once they are known. */
                rc = br_env_add_fetch(r->env, r->conv.id, r->task_id);
            } else if (rc == 0 && res->change) {
                rc = br_store_comment_mark(r->env->store, r->task_id, res->change, BR_COMMENT_IGNORED, &is_new);
            }
        }
        rc = br_store_end(r->env->store, rc);
        if (rc == 0 && r->recheck)
            br_employees_recheck(r->env, r->ch);
    }
    br_run_recorded(r, res, rc);
}

/* Posts the prepared comment, or after a crash first looks whether it is already there. */
static void
send_comment(struct br_run *r, enum br_source_kind kind, int64_t key_id)
{
    r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
    br_store_source_key(r->env->store, kind, key_id, r->source_key);
    if (r->job.recover && !r->env->tracker->ops->caps.comment_keys) {
        struct br_comment_spec spec = {0};
        spec.task_id = r->task_id;
        spec.contact_id = r->author_contact;
        spec.employee = r->author_employee;
        spec.text = r->text;
        r->step = 1;
        r->env->tracker->ops->find_comment(r->env->tracker, &spec, comment_matched, r);
        return;
    }
    if (r->job.recover) {
        r->step = 1;
        /* All of them: the comment looked for may be older than comments a fetch has seen since. */
        r->env->tracker->ops->list_comments(r->env->tracker, r->task_id, NULL, comment_found, r);
        return;
    }
    post_comment(r);
}

static void
add_to_run(struct run_of_msgs *ro, const struct br_msg *m)
{
    json_t *item = br_context_message(ro->r->env->cfg, ro->r->env->store, ro->r->ch, ro->base, m);
    json_object_set_new(item, "first", json_boolean(json_array_size(ro->msgs) == 0));
    ro->bytes += strlen(m->text);
    json_array_append_new(ro->ids, json_integer(m->id));
    json_array_append_new(ro->msgs, item);
}

/* The waiting messages from the job's own on (br_store_msg_pending_from), until the run ends. */
static bool
collect_run(void *arg, const struct br_msg *m)
{
    struct run_of_msgs *ro = arg;

    /*
     * An agent's message, unless it joins (with_visitor), ends the run: the
     * order between authors is kept.
     */
    if ((strcmp(m->type, "client") != 0 && !(ro->agents && strcmp(m->type, "agent") == 0)) ||
        json_array_size(ro->ids) >= COALESCE_MAX_MSGS ||
        ro->bytes + strlen(m->text) > COALESCE_MAX_BYTES) {
        ro->stopped = ro->first != m->id;
        if (ro->stopped)
            return false;
    }
    add_to_run(ro, m);
    return true;
}

/*
 * Visitor messages still waiting for the tracker go as one comment (the
 * "messages" text: each on its own line with its time; the tracker allows
 * one request per second, and a burst must not queue up behind it).  The
 * set is fixed in the job's payload before the request, so a retry sends
 * the same comment.  Sets ctx's messages, single and count.
 */
static void
coalesce(struct br_run *r, const struct br_msg *m, json_t *ctx)
{
    json_t *ids = json_object_get(r->payload, "msgs");
    struct run_of_msgs ro = {m->id, json_array(), json_array(), ctx, r, false, 0,
                             r->ch->mirror_agent == BR_MIRROR_AGENT_WITH_VISITOR};
    size_t i;
    json_t *v;

    if (json_is_array(ids)) {
        /* Decided by an earlier attempt: the same messages again. */
        json_array_foreach(ids, i, v) {
            struct br_msg x = {0};
            if (br_store_msg_get(r->env->store, json_integer_value(v), &x) == 0)
                add_to_run(&ro, &x);
            br_msg_dispose(&x);
        }
    } else {
        char *payload;
        br_store_msg_pending_from(r->env->store, r->conv.id, m->gen, m->id, collect_run, &ro);
        json_object_set(r->payload, "msgs", ro.ids);
        payload = json_dumps(r->payload, JSON_COMPACT);
        if (br_store_job_payload(r->env->store, r->job.id, payload) != 0) {
            /* Not fixed in the store: this comment carries only its own message. */
            json_object_del(r->payload, "msgs");
            json_array_clear(ro.ids);
            json_array_clear(ro.msgs);
        }
        free(payload);
    }
    if (json_array_size(ro.msgs) == 0)
        add_to_run(&ro, m);
    json_object_set_new(ctx, "single", json_boolean(json_array_size(ro.msgs) == 1));
    json_object_set_new(ctx, "count", json_integer((json_int_t)json_array_size(ro.msgs)));
    json_object_set_new(ctx, "messages", ro.msgs);
    json_decref(ro.ids);
}

/* Renders text kind t with ctx into r->text; false (and the job failed) when it cannot. */
bool
br_jobs_render(struct br_run *r, enum br_text t, const json_t *ctx)
{
    struct br_buf b;
    int rc;

    br_buf_init(&b, 4 * 1024 * 1024);
    rc = br_texts_render(r->env->cfg, t, ctx, &b);
    if (rc == 0 && b.len == 0)
        rc = BR_EINVAL;
    if (rc) {
        br_buf_dispose(&b);
        br_run_fail(r, BR_EFATAL, "the %s text renders %s (texts.%s)", br_text_info(t)->key,
                 rc == BR_ELIMIT ? "too long" : "empty", br_text_info(t)->key);
        return false;
    }
    r->text = br_buf_steal(&b);
    return true;
}

void
br_job_comment(struct br_run *r)
{
    int64_t mid = json_integer_value(json_object_get(r->payload, "msg"));
    struct br_msg m = {0};
    json_t *ctx;
    bool ok;

    if (br_store_msg_get(r->env->store, mid, &m) != 0) {
        br_run_fail(r, BR_EFATAL, "message %lld is not in the store", (long long)mid);
        return;
    }
    /*
     * Sent already, skipped, or held for the task the visitor's first
     * message will open (a greeting after the task ended: conversation.c
     * queues it again then).
     */
    if (m.state != BR_MSG_PENDING || m.gen > r->conv.gen) {
        br_msg_dispose(&m);
        br_run_ok(r);
        return;
    }
    if (!br_jobs_task_of(r, r->conv.id, m.gen, &r->task_id)) {
        /*
         * Lane order runs a generation's task job before its comments, so
         * a missing task here was opened by a job that was cut off (a
         * check or a comment that found the old task gone): make it now.
         */
        int gen = m.gen;
        br_msg_dispose(&m);
        br_jobs_create_task_inline(r, gen);
        return;
    }
    ctx = br_context_conversation(r->env->cfg, r->ch, &r->conv);
    /*
     * An agent's message is its own comment, by that employee; with
     * mirror_agent_messages "with_visitor" it goes with the visitor's, in
     * their comment, labelled with the employee's name.  (One queued
     * before a reload turned mirroring off is still written: it was taken.)
     */
    if (strcmp(m.type, "agent") == 0 && r->ch->mirror_agent != BR_MIRROR_AGENT_WITH_VISITOR) {
        const struct br_employee *emp = br_context_agent_employee(r->env->cfg, r->env->store, r->ch, m.agent_id);
        const char *user = emp ? br_employees_user(r->env, emp) : NULL;
        json_t *item;
        if (emp && user == NULL && br_employees_pending(r->env, emp)) {
            /* Their tracker user is being looked up: the comment is theirs once it is known. */
            json_decref(ctx);
            br_msg_dispose(&m);
            br_run_later(r, BR_EMPLOYEES_WAIT_MS);
            return;
        }
        item = br_context_message(r->env->cfg, r->env->store, r->ch, ctx, &m);
        /*
         * An agent no employee with a tracker user maps to: the bridge's own
         * user writes, naming the agent (the employee's name, or else the
         * agent_label text, as the item's author has it).
         */
        if (user)
            r->author_employee = r->employee_user = br_strdup(user);
        json_object_set_new(item, "agent", json_pack("{s:s?, s:O?, s:b}", "id", m.agent_id, "name",
                                                      json_object_get(item, "author"), "employee", user != NULL));
        json_object_update(ctx, item);
        json_decref(item);
        ok = br_jobs_render(r, BR_TEXT_AGENT_MESSAGE, ctx);
    } else {
        r->author_contact = r->conv.contact_id;
        coalesce(r, &m, ctx);
        ok = br_jobs_render(r, BR_TEXT_MESSAGES, ctx);
    }
    json_decref(ctx);
    br_msg_dispose(&m);
    if (ok)
        send_comment(r, BR_SOURCE_COMMENT, mid);
}

/* The text kind a note job names, or -1 for a name this version does not know. */
static int
text_by_key(const char *key)
{
    for (int t = 0; key && t < BR_TEXT_COUNT; t++)
        if (strcmp(br_text_info(t)->key, key) == 0)
            return t;
    return -1;
}

/* The visitor of the conversation a note points to (a new reference). */
static json_t *
ref_visitor_of(struct br_run *r, const struct br_conv *ref)
{
    json_t *ctx = br_context_conversation(r->env->cfg, r->ch, ref);
    json_t *v = json_incref(json_object_get(ctx, "visitor"));

    json_decref(ctx);
    return v;
}

void
br_job_note(struct br_run *r)
{
    int gen = (int)json_integer_value(json_object_get(r->payload, "gen"));
    int64_t ref = json_integer_value(json_object_get(r->payload, "ref_conv"));
    int text = text_by_key(br_jobs_str(r->payload, "text"));
    char *ref_task = NULL;
    json_t *ctx, *ref_visitor = NULL;
    bool ok;

    if (gen == 0) {
        /*
         * A visit note of the current task: dropped when the check before it
         * found that task ended (the next task's text describes the visit).
         */
        struct br_task t = {0};
        bool ended = br_store_task_get(r->env->store, r->conv.id, r->conv.gen, &t) == 0 && t.state == BR_TASK_CLOSED;
        br_task_dispose(&t);
        if (ended || r->conv.gen != (int)json_integer_value(json_object_get(r->payload, "gen_at"))) {
            br_run_ok(r);
            return;
        }
        gen = r->conv.gen;
    } else if (gen == BR_GEN_CURRENT) {
        gen = r->conv.gen;
    }
    if (text < 0 && br_jobs_str(r->payload, "html") == NULL) {
        br_run_fail(r, BR_EFATAL, "note of an unknown kind (%s)", br_jobs_str(r->payload, "text") ? br_jobs_str(r->payload, "text") : "none");
        return;
    }
    if (!br_jobs_task_of(r, r->conv.id, gen, &r->task_id)) {
        br_run_fail(r, BR_ERETRY, "the task for this note does not exist yet");
        return;
    }
    if (ref) {
        struct br_conv rc = {0};
        bool found = br_store_conv_get(r->env->store, ref, &rc) == 0 && br_jobs_task_of(r, rc.id, rc.gen, &ref_task);
        /*
         * The thread goes on there: its visitor is the person as now known,
         * with the details of the very webhook that joined the threads.
         */
        if (found && text >= 0)
            ref_visitor = ref_visitor_of(r, &rc);
        br_conv_dispose(&rc);
        if (!found) {
            br_run_fail(r, BR_ERETRY, "the task this note points to does not exist yet");
            return;
        }
    }
    if (text < 0) {
        /*
         * A note queued by a version before the texts were templates: its
         * HTML, with %TASK% for the task it points to (plain text on Redmine).
         */
        const char *html = br_jobs_str(r->payload, "html");
        struct br_buf b;
        const char *p, *hit;
        br_buf_init(&b, 0);
        for (p = html; ref_task && (hit = strstr(p, "%TASK%")) != NULL; p = hit + 6) {
            br_buf_append(&b, p, (size_t)(hit - p));
            br_buf_puts(&b, ref_task);
        }
        br_buf_puts(&b, p);
        if (r->env->tracker->ops->kind->text_format != BR_TPL_ESCAPE_HTML)
            r->text = br_html_to_text(b.data ? b.data : "");
        else
            r->text = b.data ? br_buf_steal(&b) : br_strdup("");
        br_buf_dispose(&b);
        free(ref_task);
        send_comment(r, BR_SOURCE_NOTE, r->job.id);
        return;
    }
    /* The conversation's context, then the note's own (device, e-mail ...), then the task it points to. */
    ctx = br_context_conversation(r->env->cfg, r->ch, &r->conv);
    if (json_is_object(json_object_get(r->payload, "ctx")))
        json_object_update(ctx, json_object_get(r->payload, "ctx"));
    if (ref_task)
        json_object_set_new(ctx, "task", json_pack("{s:s}", "id", ref_task));
    if (ref_visitor)
        json_object_set_new(ctx, "visitor", ref_visitor);
    ok = br_jobs_render(r, (enum br_text)text, ctx);
    json_decref(ctx);
    free(ref_task);
    if (ok)
        send_comment(r, BR_SOURCE_NOTE, r->job.id);
}
