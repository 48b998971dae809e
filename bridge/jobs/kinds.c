/*
 * kinds.c - the job kinds by name: adding a kind is one function and one
 * row here (the names are in the store: never rename one).
 */
#include "jobs/jobs.h"

#include "employees.h"

#include <string.h>

static const struct {
    const char *kind;
    void (*run)(struct br_run *r);
} kinds[] = {
    {"contact", br_job_contact},
    {"company", br_job_company},
    {"update_contact", br_job_update_contact},
    {"drop_contact", br_job_drop_contact},
    {"contact_visit", br_job_contact_visit},
    {"profile", br_job_profile},
    {"task", br_job_task},
    {"check", br_job_check},
    {"close", br_job_close},
    {"fields", br_job_fields},
    {"comment", br_job_comment},
    {"note", br_job_note},
    {"fetch", br_job_fetch},
    {"poll", br_job_poll},
    {"reply", br_job_reply},
    {"user", br_job_user},
    {"crm", br_job_crm},
    {"crm_card", br_job_crm_card},
};

void
br_jobs_start(struct br_run *r)
{
    for (size_t i = 0; i < BR_ARRAY_SIZE(kinds); i++) {
        if (strcmp(kinds[i].kind, r->job.kind) == 0) {
            kinds[i].run(r);
            return;
        }
    }
    br_run_fail(r, BR_EFATAL, "unknown job kind %s", r->job.kind);
}
