/*
 * jobs.h - the job kinds: what each job of the queue does, one family per
 * file (contact.c, task.c, comment.c, fetch.c, chatra.c; the employees'
 * user lookups are employees.c's), found by name in kinds.c's table as
 * handlers are in handlers/routes.c.
 *
 * A job kind gets a br_run (queue.h) with its payload, conversation and
 * channel loaded, does its requests through the tracker driver or the
 * Chatra client, changes task and message states only through
 * conversation.h, and ends the run with exactly one br_run_* call.
 * Internal to bridge/; loop thread only.
 */
#ifndef BR_JOBS_H
#define BR_JOBS_H

#include "config.h"
#include "env.h"
#include "queue.h"
#include "store.h"
#include "texts.h"
#include "tracker.h"

#include <jansson.h>
#include <stdbool.h>

/* Runs r by its kind (the table in kinds.c): the queue's start callback. */
void br_jobs_start(struct br_run *r);

/* The kinds, by the name the store keeps. */
void br_job_contact(struct br_run *r);        /* "contact": find or make the visitor's contact */
void br_job_company(struct br_run *r);        /* "company": the counterparty for the e-mail domain */
void br_job_update_contact(struct br_run *r); /* "update_contact": the visitor told more */
void br_job_drop_contact(struct br_run *r);   /* "drop_contact": a merge left a contact over */
void br_job_contact_visit(struct br_run *r);  /* "contact_visit": a visit on the contact's card */
void br_job_task(struct br_run *r);           /* "task": make (or join) the task */
/*
 * A new task waits for Chatra's visitor data and the CRM card in steps of
 * this many ms (at most 3 s in all); their arrival ends the step at once.
 */
#define BR_TASK_PROFILE_STEP_MS 100
void br_job_check(struct br_run *r);          /* "check": a new chat: is the task still active? */
void br_job_close(struct br_run *r);          /* "close": the visitor left */
void br_job_fields(struct br_run *r);         /* "fields": the custom fields again */
void br_job_comment(struct br_run *r);        /* "comment": a message (or a burst) on the task */
void br_job_note(struct br_run *r);           /* "note": the bridge's own words on the task */
void br_job_fetch(struct br_run *r);          /* "fetch": the task's new comments, replies queued */
void br_job_poll(struct br_run *r);           /* "poll": comments no webhook announced */
void br_job_profile(struct br_run *r);        /* "profile": Chatra's data of the visitor */
void br_job_reply(struct br_run *r);          /* "reply": an employee's answer into the chat */
void br_job_crm(struct br_run *r);            /* "crm": the person looked up in the CRM (crm.c) */
void br_job_crm_card(struct br_run *r);       /* "crm_card": the CRM card as a comment on the task */

/* ---- shared by the kinds ---- */

static inline const char *
br_jobs_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Sets *out to the tracker id of (conv_id, gen)'s task; false when it does not exist (yet). */
bool br_jobs_task_of(struct br_run *r, int64_t conv_id, int gen, char **out);
/* Makes the task of generation gen from inside another job (the lane has no task job for it). */
void br_jobs_create_task_inline(struct br_run *r, int gen);
/* Renders text kind t with ctx into r->text; false (and the run failed) when it cannot. */
bool br_jobs_render(struct br_run *r, enum br_text t, const json_t *ctx);
/* Custom field templates rendered with ctx (plain text); free with br_jobs_free_fields. */
struct br_field_value *br_jobs_render_fields(const struct br_custom_field *defs, size_t n, json_t *ctx);
void br_jobs_free_fields(struct br_field_value *f, size_t n);
/*
 * Marks each listed comment of r->task_id as seen and queues a reply for
 * each new one by an employee allowed on the channel, inside the caller's
 * transaction (fetch.c).
 */
int br_jobs_take_comments(struct br_run *r, const struct br_comment_list *comments);
/* What the driver learned of the tracker's clock, from the store (fetch.c). */
void br_jobs_load_tracker_clock(struct br_env *env);

#endif
