/*
 * fetch.c - replies: a task's new comments read (after the tracker's
 * webhook, or found by the poll), and each new one by an employee of the
 * channel queued for the chat as that employee.
 */
#include "jobs/jobs.h"

#include "activity.h"
#include "context.h"
#include "employees.h"
#include "html_text.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/*
 * Who a reply is sent as, into the reply job's payload p: the employee's
 * agent id, else their e-mail and name (send_as_employee), else the
 * channel's default agent (by id, else by e-mail).  Returns the agent as
 * the relay records it: the id, or "email:<address>".
 */
static char *
reply_agent(const struct br_channel *ch, const struct br_employee *emp, json_t *p)
{
    const char *id = NULL, *email = NULL, *name = NULL;

    if (ch->send_as_employee && emp->chatra_agent_id) {
        id = emp->chatra_agent_id;
    } else if (ch->send_as_employee) {
        email = emp->email;
        name = emp->name;
    } else if (ch->default_agent_id) {
        id = ch->default_agent_id;
    } else {
        email = ch->default_agent_email;
        name = ch->default_agent_name;
    }
    if (id) {
        json_object_set_new(p, "agent", json_string(id));
        return br_strdup(id);
    }
    json_object_set_new(p, "agent_email", json_string(email));
    json_object_set_new(p, "agent_name", json_string(name ? name : email));
    return br_asprintf("email:%s", email);
}

/* The reply on the conversation's timeline (activity.h): to the device it goes to, as the employee. */
static int
reply_activity(struct br_run *r, const struct br_employee *emp, const char *comment_id, const char *text, int64_t job)
{
    char *device = br_store_client_shown(r->conv.client_id);
    int rc = br_activity_add(r->env->store, r->conv.id, "reply",
                             json_pack("{s:s, s:s?, s:s, s:s, s:I}", "text", text, "agent", emp->name, "device", device,
                                       "comment_id", comment_id, "job_id", (json_int_t)job));

    free(device);
    return rc;
}

/*
 * Marks each listed comment of r->task_id as seen and queues a reply for
 * each new one by an employee allowed on the channel.  Runs inside the
 * caller's transaction: a reply is queued together with its "seen" mark.
 * A comment whose author may be an employee still being looked up is
 * left unseen (r->undecided): the caller reads it again later.
 */
int
br_jobs_take_comments(struct br_run *r, const struct br_comment_list *comments)
{
    struct br_env *env = r->env;
    char *upname = br_asprintf("chatra:%s", r->ch->name);
    int rc = 0;

    for (size_t i = 0; i < comments->n; i++) {
        const struct br_comment_item *it = &comments->items[i];
        const char *id = it->id;
        const char *author = it->author;
        const struct br_employee *emp = author ? br_employees_by_user(env, r->ch, author) : NULL;
        bool ours = br_store_source_key_is_ours(env->store, it->source_key);
        bool hidden = it->hidden;
        bool relay = emp && !ours && !hidden;
        char *text = NULL;
        bool is_new = false;

        if (id == NULL)
            continue;
        if (emp == NULL && !ours && !hidden && author && br_employees_may_be(r, author) &&
            !br_store_comment_seen(env->store, r->task_id, id)) {
            /* Perhaps an employee whose user is being looked up: not seen yet, read again later. */
            r->undecided = true;
            continue;
        }
        if (relay) {
            text = br_html_to_text(it->html ? it->html : "");
            relay = *text != '\0';
        }
        if (rc == 0 && ours)
            rc = br_store_comment_read_back(env->store, r->task_id, id); /* ours is never relayed */
        else if (rc == 0)
            rc = br_store_comment_mark(env->store, r->task_id, id, relay ? BR_COMMENT_RELAYED : BR_COMMENT_IGNORED,
                                       &is_new);
        if (rc == 0 && is_new && relay) {
            json_t *p = json_pack("{s:s, s:s, s:s}", "comment", id, "task", r->task_id, "text", text);
            char *agent = reply_agent(r->ch, emp, p);
            int64_t job = 0;
            /* Remember what goes into the chat so its copy in the next fragment is not mirrored back. */
            rc = br_store_relay_add(env->store, r->conv.id, agent, text);
            free(agent);
            if (rc == 0)
                rc = br_queue_add_id(env->queue, 'c', upname, "reply", r->conv.id, p, 0, &job);
            else
                json_decref(p);
            if (rc == 0)
                rc = reply_activity(r, emp, id, text, job);
            if (rc == 0)
                br_info("conversation %lld: reply from %s queued for the chat", (long long)r->conv.id, emp->name);
        }
        free(text);
    }
    free(upname);
    return rc;
}

static void
comments_listed(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    int rc;

    if (res->err) {
        br_run_finish(r, res);
        return;
    }
    rc = br_store_begin(r->env->store);
    if (rc == 0)
        rc = br_jobs_take_comments(r, &res->comments);
    if (rc == 0 && res->change && !r->undecided) {
        /* The change of the task these comments settle (Redmine): the poll does not read it again. */
        bool is_new;
        rc = br_store_comment_mark(r->env->store, r->task_id, res->change, BR_COMMENT_IGNORED, &is_new);
    }
    if (rc == 0 && r->undecided) {
        /*
         * Read again, all of it: a comment left unseen here may be older
         * than the comments taken since, where a read newest first stops.
         */
        char *payload;
        json_object_set_new(r->payload, "whole", json_true());
        payload = json_dumps(r->payload, JSON_COMPACT);
        rc = br_store_job_payload(r->env->store, r->job.id, payload);
        free(payload);
    }
    /* All or nothing: a reply is either queued together with its "seen" mark, or read again. */
    rc = br_store_end(r->env->store, rc);
    if (rc == 0 && r->undecided) {
        /* An author may be an employee still being looked up: read the rest again once that is known. */
        if (r->recheck)
            br_employees_recheck(r->env, r->ch);
        br_run_later(r, BR_EMPLOYEES_WAIT_MS);
        return;
    }
    br_run_recorded(r, res, rc);
}

/* A comment of the task this fetch reads that an earlier read has taken (list_comments may stop there). */
static bool
comment_taken(void *arg, const char *comment_id)
{
    struct br_run *r = arg;

    return br_store_comment_taken(r->env->store, r->task_id, comment_id);
}

void
br_job_fetch(struct br_run *r)
{
    struct br_comments_known known = {comment_taken, r};
    bool whole = json_is_true(json_object_get(r->payload, "whole"));

    if (br_employees_channel_pending(r->env, r->ch)) {
        /* Whose comments are whose is not known yet: look when the lookup has answered. */
        br_run_later(r, BR_EMPLOYEES_WAIT_MS);
        return;
    }
    r->task_id = br_strdup(br_jobs_str(r->payload, "task") ? br_jobs_str(r->payload, "task") : "");
    r->env->tracker->ops->list_comments(r->env->tracker, r->task_id, whole ? NULL : &known, comments_listed, r);
}

/*
 * What the driver learned of the tracker's clock (Planfix: the zone its
 * date filters are read in) is kept in the store with each poll, so that
 * the first poll after a restart is as narrow as the last one.
 */
void
br_jobs_load_tracker_clock(struct br_env *env)
{
    env->tracker->clock.learned_at_ms = br_store_meta_int(env->store, "tracker_clock_at", 0);
    env->tracker->clock.utc_offset_s = (long)br_store_meta_int(env->store, "tracker_utc_offset_s", 0);
}

static int
save_tracker_clock(struct br_env *env)
{
    const struct br_tracker_clock *clk = &env->tracker->clock;
    int rc = 0;

    if (clk->learned_at_ms > 0 && clk->learned_at_ms != br_store_meta_int(env->store, "tracker_clock_at", 0)) {
        rc = br_store_meta_set_int(env->store, "tracker_utc_offset_s", clk->utc_offset_s);
        if (rc == 0)
            rc = br_store_meta_set_int(env->store, "tracker_clock_at", clk->learned_at_ms);
    }
    return rc;
}

static void
polled(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    struct br_env *env = r->env;
    int64_t started = json_integer_value(json_object_get(r->payload, "started"));
    size_t queued = 0;
    int rc;

    if (res->err) {
        br_run_finish(r, res);
        return;
    }
    rc = br_store_begin(env->store);
    for (size_t i = 0; i < res->comments.n; i++) {
        const char *task = res->comments.items[i].task;
        struct br_task t = {0};
        if (rc || task == NULL || br_store_comment_seen(env->store, task, res->comments.items[i].id) ||
            br_store_task_by_tracker_id(env->store, task, &t) != 0)
            continue;
        /* The task's own fetch decides what to relay, exactly as after a webhook. */
        if (!br_queue_waiting(env->queue, br_env_fetch_lane(env), t.conv_id, "fetch")) {
            rc = br_env_add_fetch(env, t.conv_id, task);
            queued++;
        }
        br_task_dispose(&t);
    }
    if (rc == 0)
        rc = br_store_meta_set_int(env->store, "poll_since", started);
    /* Found what no webhook had brought: the engine polls at poll_interval_s again (poll_plan.h). */
    if (rc == 0 && queued)
        rc = br_store_meta_set_int(env->store, "poll_found", started);
    if (rc == 0)
        rc = save_tracker_clock(env);
    rc = br_store_end(env->store, rc);
    if (rc == 0 && queued)
        br_info("poll: %zu task(s) have comments no webhook announced; reading them", queued);
    br_run_recorded(r, res, rc);
}

void
br_job_poll(struct br_run *r)
{
    int64_t now = br_now_ms();
    int64_t since = br_store_meta_int(r->env->store, "poll_since", now - r->env->cfg->poll_interval_s * 1000);

    json_object_set_new(r->payload, "started", json_integer(now));
    r->env->tracker->ops->list_recent_comments(r->env->tracker, since - r->env->tracker->ops->poll_overlap_ms, now + 60 * 1000, polled, r);
}
