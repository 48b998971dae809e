/*
 * chatra.c - the jobs on a channel's Chatra upstream: the visitor's
 * profile (GET /clients/{id}) for the first task, and replies into the
 * chat.
 */
#include "jobs/jobs.h"

#include "chatra.h"
#include "chatra_event.h"
#include "context.h"
#include "employees.h"
#include "log.h"

#include <stdlib.h>

static void
profile_got(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    char *json;
    int rc;

    if (res->err == BR_ECANCELED) {
        br_run_finish(r, res);
        return;
    }
    if (res->err == 0) {
        /* The bridge's record of what Chatra told (chatra_event.h reads Chatra's keys), the answer beside it. */
        json_t *visitor = br_chatra_visitor(res->data, true);
        json = br_context_record(visitor, res->data);
        json_decref(visitor);
        rc = BR_STORE_TX(r->env->store, br_store_conv_set_profile(r->env->store, r->conv.id, BR_PROFILE_DONE, json));
        free(json);
    } else {
        /* Never a reason to hold the task back: it is made with what the webhook said. */
        br_warn("conversation %lld: Chatra's visitor details are missing (%s); the task shows what the webhook had",
                (long long)r->conv.id, res->error ? res->error : br_strerror(res->err));
        rc = BR_STORE_TX(r->env->store, br_store_conv_set_profile(r->env->store, r->conv.id, BR_PROFILE_FAILED, NULL));
    }
    if (rc) {
        /* Not stored: asked again (a read), rather than the task waiting for an answer already lost. */
        r->store_refused = true;
        br_run_fail(r, BR_ERETRY, "the visitor's details could not be stored (%s)", br_strerror(rc));
        return;
    }
    /* The new task waiting for these details goes now, not at the end of its step. */
    br_queue_hasten(r->env->queue, 't', r->conv.id, "task", BR_TASK_PROFILE_STEP_MS);
    br_run_ok(r);
}

void
br_job_profile(struct br_run *r)
{
    if (br_chatra_get_client(r->up, r->ch, r->conv.client_id, profile_got, r) != 0)
        br_run_fail(r, BR_ERETRY, "cannot queue the Chatra request");
}

static void
reply_sent(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    if (res->err == 0)
        br_info("conversation %lld: reply delivered to the chat", (long long)r->conv.id);
    br_run_finish(r, res);
}

void
br_job_reply(struct br_run *r)
{
    struct br_chatra_agent agent = {
        br_jobs_str(r->payload, "agent"), br_jobs_str(r->payload, "agent_email"), br_jobs_str(r->payload, "agent_name"),
        br_employees_tracker_label(r->env),
    };
    int rc = br_chatra_send_message(r->up, r->ch, r->conv.client_id, br_jobs_str(r->payload, "text"), &agent,
                                    reply_sent, r);
    if (rc)
        br_run_fail(r, BR_ERETRY, "cannot queue the Chatra request");
}
