/*
 * crm.c - the CRM card (crm.h) of a conversation's person:
 *   "crm"       on the CRM's own lane and upstream: looks the person up
 *               (crm_lookup.h) and keeps the card found in the conversation;
 *   "crm_card"  on the tracker's lane, after the task: writes the card as a
 *               comment when the task does not show it yet (a card that
 *               came too late for the description, or a changed one).
 * The task job waits for a pending look-up as briefly as for Chatra's
 * profile, and puts a card known by then into the description
 * (crm_card.h).
 */
#include "jobs/jobs.h"

#include "config.h"
#include "context.h"
#include "crm.h"
#include "crm_card.h"
#include "crm_lookup.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* The look-up's outcome, and the card's comment when it is to be written (one transaction). */
static int
record(struct br_run *r, int state, const char *card, bool write)
{
    int rc = br_store_conv_set_crm(r->env->store, r->conv.id, state, card);
    if (rc == 0 && write)
        rc = br_env_add_job(r->env, 't', "tracker", "crm_card", r->conv.id, json_object());
    return rc;
}

static void
found(void *arg, int err, const json_t *card, const char *error)
{
    struct br_run *r = arg;
    char *text = card ? json_dumps(card, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int state = err ? BR_CRM_FAILED : BR_CRM_DONE;
    int cstate, rc;
    char *old = NULL, *shown = NULL;
    const char *keep;
    bool changed;

    if (err == BR_ECANCELED) {
        struct br_result res = {.err = BR_ECANCELED};
        free(text);
        br_run_finish(r, &res);
        return;
    }
    rc = br_store_conv_crm(r->env->store, r->conv.id, &cstate, &old, &shown);
    /* A failure with a card: a later e-mail matched; it is shown until the failed ones answer. */
    keep = err && card == NULL ? old : text;
    changed = (err == 0 || card != NULL) && (shown == NULL || strcmp(shown, br_crm_card_value(text)) != 0);
    /*
     * A failure keeps the card found before (the task stops waiting for
     * this one).  A changed card goes to the tracker's lane, behind the
     * task, whose job writes it unless the task shows it by then.
     */
    if (rc == 0)
        rc = BR_STORE_TX(r->env->store, record(r, state, keep, changed && (card || shown)));
    free(old);
    free(shown);
    free(text);
    if (rc) {
        r->store_refused = true;
        br_run_fail(r, BR_ERETRY, "the CRM card could not be stored (%s)", br_strerror(rc));
        return;
    }
    /* A new task waiting for the card (or for this answer) goes now, not at the end of its step. */
    br_queue_hasten(r->env->queue, 't', r->conv.id, "task", BR_TASK_PROFILE_STEP_MS);
    if (err) {
        /* Tried again with the queue's backoff; a 429's Retry-After has paused the upstream meanwhile. */
        br_run_fail(r, BR_ERETRY, "%s: %s", r->env->crm->kind->label, error ? error : br_strerror(err));
        return;
    }
    br_info("conversation %lld: %s %s", (long long)r->conv.id, r->env->crm->kind->label,
            card ? "found the customer" : "knows no customer with the person's e-mails");
    br_run_ok(r);
}

void
br_job_crm(struct br_run *r)
{
    const struct br_config *cfg = r->env->cfg;
    char *domain = NULL;
    json_t *emails, *e;
    size_t i;

    if (r->env->crm == NULL) {
        /* enrich was removed by a reload: nobody waits for this any more. */
        BR_STORE_TX(r->env->store, br_store_conv_set_crm(r->env->store, r->conv.id, BR_CRM_NONE, NULL));
        br_run_ok(r);
        return;
    }
    emails = br_store_person_emails(r->env->store, r->conv.person_id, false);
    /* The company: the domain of the person's first company address (companies.enabled, not a public one). */
    json_array_foreach(emails, i, e) {
        const char *d = br_config_company_domain(cfg, json_string_value(e));
        if (d) {
            domain = br_strdup(d);
            break;
        }
    }
    json_decref(emails);
    emails = br_store_crm_emails(r->env->store, r->conv.person_id, domain, BR_CRM_COMPANY_EMAILS);
    free(domain);
    if (json_array_size(emails) == 0) {
        /* No e-mail, nothing to ask: the task does not wait, and a later e-mail asks again. */
        json_decref(emails);
        BR_STORE_TX(r->env->store, br_store_conv_set_crm(r->env->store, r->conv.id, BR_CRM_NONE, NULL));
        br_run_ok(r);
        return;
    }
    br_crm_lookup(r->env->crm, r->env->store, cfg->crm_cache_ttl_s, emails, found, r);
    json_decref(emails);
}

void
br_job_crm_card(struct br_run *r)
{
    int state = 0;
    char *card = NULL, *shown = NULL, *task = NULL;
    json_t *ctx;
    bool same;

    if (r->env->crm == NULL || !br_jobs_task_of(r, r->conv.id, r->conv.gen, &task)) {
        /* No task (yet): the task made later puts the card into its description. */
        br_run_ok(r);
        return;
    }
    free(task);
    br_store_conv_crm(r->env->store, r->conv.id, &state, &card, &shown);
    same = shown && strcmp(shown, br_crm_card_value(card)) == 0;
    /* After a crash the comment may be out already: the note looks before it writes again. */
    if (!r->job.recover && (same || (card == NULL && shown == NULL) || state == BR_CRM_PENDING)) {
        free(card);
        free(shown);
        br_run_ok(r);
        return;
    }
    if (!r->job.recover &&
        BR_STORE_TX(r->env->store, br_store_conv_set_crm_shown(r->env->store, r->conv.id, br_crm_card_value(card)))) {
        free(card);
        free(shown);
        br_run_fail(r, BR_ERETRY, "cannot store the CRM card shown");
        return;
    }
    ctx = json_object();
    {
        json_t *parsed = card ? json_loads(card, 0, NULL) : NULL;
        json_object_set_new(ctx, "crm", br_crm_context(parsed));
        json_decref(parsed);
    }
    free(card);
    free(shown);
    /* A note of the crm_card text on the current task: the note job writes (and finds again) comments. */
    json_object_set_new(r->payload, "gen", json_integer(r->conv.gen));
    json_object_set_new(r->payload, "text", json_string(br_text_info(BR_TEXT_CRM_CARD)->key));
    json_object_set_new(r->payload, "ctx", ctx);
    br_job_note(r);
}
