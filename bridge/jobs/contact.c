/*
 * contact.c - the visitor's contact in the tracker (Planfix): found by any
 * of the person's e-mails or made from the contact template; the company
 * contact of their e-mail domain; updates when the visitor tells more;
 * the contact a merge left over removed; each visit on the contact's card.
 */
#include "jobs/jobs.h"

#include "context.h"
#include "conversation.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void contact_created(void *arg, struct br_result *res);

/* The company job's hold on its domain ends with the run. */
static void
release_company(struct br_run *r)
{
    free(r->env->company_busy[r->slot - 1]);
    r->env->company_busy[r->slot - 1] = NULL;
}

/* Splits a full name at its first space; NULL or "" gives the contact_name text (texts.h). */
static void
split_name(struct br_run *r, const char *full, char **first, char **last)
{
    const char *sp = full ? strchr(full, ' ') : NULL;
    if (full == NULL || *full == '\0') {
        json_t *ctx = br_context_conversation(r->env->cfg, r->ch, &r->conv);
        *first = br_texts_string(r->env->cfg, BR_TEXT_CONTACT_NAME, ctx);
        *last = NULL;
        json_decref(ctx);
    } else if (sp) {
        *first = br_strndup(full, (size_t)(sp - full));
        while (*sp == ' ')
            sp++;
        *last = *sp ? br_strdup(sp) : NULL;
    } else {
        *first = br_strdup(full);
        *last = NULL;
    }
}

/* The contact's name as sent to the tracker: the visitor's name or Chatra's displayed name. */
static void
contact_name(struct br_run *r, char **first, char **last)
{
    json_t *ctx = r->conv.name ? NULL : br_context_conversation(r->env->cfg, r->ch, &r->conv);
    split_name(r, r->conv.name ? r->conv.name : br_jobs_str(json_object_get(ctx, "visitor"), "displayed_name"),
               first, last);
    json_decref(ctx);
}

/*
 * What an update of the contact would write from c and the rendered
 * custom fields: the visitor's own name (a placeholder is never written
 * over a name), e-mail, phone and the fields' values.  A contact made or
 * updated with exactly these needs no update.
 */
static json_t *
details_of(const struct br_conv *c, const struct br_field_value *fields, size_t n)
{
    json_t *values = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(values, json_string(fields[i].value));
    return json_pack("{s:s?, s:s?, s:s?, s:o}", "name", c->name, "email", c->email, "phone", c->phone, "fields",
                     values);
}

/*
 * The contact now carries details: the update jobs waiting behind in the
 * lane learn it ("sent" in their payload), so that one whose details are
 * still these ends without a request (a late e-mail that came before the
 * contact was made, two updates in a row).  Caller's transaction.
 */
static int
note_sent(struct br_run *r, json_t *details)
{
    char *text = json_dumps(details, JSON_COMPACT);
    int rc = br_store_job_note_waiting(r->env->store, r->job.lane, "update_contact", "sent", text);

    free(text);
    return rc;
}

static void
create_contact(struct br_run *r)
{
    struct br_contact_spec spec = {0};
    json_t *ctx = br_context_conversation(r->env->cfg, r->ch, &r->conv);
    struct br_field_value *fields;
    char *first, *last;

    contact_name(r, &first, &last);
    spec.name = first;
    spec.lastname = last;
    spec.email = r->conv.email;
    spec.phone = r->conv.phone;
    spec.template_id = r->ch->contact_template_id;
    spec.source_key = r->source_key;
    spec.fields = fields = br_jobs_render_fields(r->ch->contact_fields, r->ch->n_contact_fields, ctx);
    spec.n_fields = r->ch->n_contact_fields;
    /* Kept for contact_created: what this creation writes (in memory only). */
    json_object_set_new(r->payload, "sent", details_of(&r->conv, fields, r->ch->n_contact_fields));
    r->step = 2;
    r->env->tracker->ops->create_contact(r->env->tracker, &spec, contact_created, r);
    br_jobs_free_fields(fields, r->ch->n_contact_fields);
    json_decref(ctx);
    free(first);
    free(last);
}

/* Looks the next of the person's e-mails up; false when none is left. */
static bool
find_next_email(struct br_run *r)
{
    const char *email = json_string_value(json_array_get(r->emails, 0));
    char *copy;

    if (email == NULL)
        return false;
    copy = br_strdup(email);
    json_array_remove(r->emails, 0);
    /* Also finds the contact a crashed run of this job created (by its key). */
    r->env->tracker->ops->find_contact(r->env->tracker, copy, r->source_key, contact_created, r);
    free(copy);
    return true;
}

static void
contact_created(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    int rc = 0;

    if (res->err == BR_ENOTFOUND && r->step == 1) {
        /* Not known by this e-mail: the next one, else (or not created before the crash) create it now. */
        if (!find_next_email(r))
            create_contact(r);
        return;
    }
    if (res->err == 0 && res->id) {
        /* Found with our own key: made by this job before a crash, so the bridge's own. */
        bool made = r->step == 2 || res->made;
        rc = br_store_begin(r->env->store);
        if (rc == 0)
            rc = br_store_conv_set_contact(r->env->store, r->conv.id, res->id, made);
        /* Made by this request: its details are known (one found after a crash may be older). */
        if (rc == 0 && r->step == 2)
            rc = note_sent(r, json_object_get(r->payload, "sent"));
        rc = br_store_end(r->env->store, rc);
        if (rc == 0)
            br_info("conversation %lld: contact %s %s", (long long)r->conv.id, res->id, made ? "created" : "found");
    }
    br_run_recorded(r, res, rc);
}

/*
 * The person's e-mails to look the contact up by: the conversation's
 * latest first, then every other one the person gave (a visitor who wrote
 * from work and from home is one customer).  Under merge_policy
 * "verified" only addresses the site set: a typed one could attach a
 * stranger to a real customer's card.
 */
static json_t *
emails_to_try(struct br_run *r)
{
    bool verified_only = r->ch->merge_policy == BR_MERGE_VERIFIED;
    json_t *all = br_store_person_emails(r->env->store, r->conv.person_id, verified_only), *out = json_array(), *v;
    bool verified = false;
    int64_t pid;
    size_t i;

    if (r->conv.email &&
        (!verified_only || (br_store_person_of_email(r->env->store, r->conv.email, &pid, &verified) == 0 && verified)))
        json_array_append_new(out, json_string(r->conv.email));
    json_array_foreach(all, i, v) {
        if (r->conv.email == NULL || strcmp(json_string_value(v), r->conv.email) != 0)
            json_array_append(out, v);
    }
    json_decref(all);
    return out;
}

void
br_job_contact(struct br_run *r)
{
    if (r->conv.contact_id) {
        br_run_ok(r);
        return;
    }
    r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
    br_store_source_key(r->env->store, BR_SOURCE_CONTACT, r->job.id, r->source_key);
    r->step = 1;
    r->emails = emails_to_try(r);
    if (find_next_email(r))
        return;
    if (r->job.recover) {
        char *first, *last;
        contact_name(r, &first, &last);
        r->env->tracker->ops->find_contact_by_key(r->env->tracker, first, r->source_key, contact_created, r);
        free(first);
        free(last);
    } else {
        create_contact(r);
    }
}

static void
company_known(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    const char *domain = br_config_company_domain(r->env->cfg, r->conv.email);
    int rc = 0;

    if (res->err == BR_ENOTFOUND && r->step == 1) {
        r->step = 2;
        r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
        br_store_source_key(r->env->store, BR_SOURCE_CONTACT, r->job.id, r->source_key);
        r->env->tracker->ops->create_company(r->env->tracker, domain, r->env->cfg->company_template_id, r->source_key,
                                           company_known, r);
        return;
    }
    if (res->err == 0 && res->id) {
        rc = br_store_begin(r->env->store);
        if (rc == 0)
            rc = br_store_company_set(r->env->store, domain, res->id);
        if (rc == 0)
            rc = br_store_conv_set_company(r->env->store, r->conv.id, res->id);
        if ((rc = br_store_end(r->env->store, rc)) == 0)
            br_info("conversation %lld: company %s %s", (long long)r->conv.id, res->id,
                    r->step == 1 ? "found" : "created");
    } else if (res->err == BR_EFATAL) {
        /* A company is a nicety: the task goes ahead without it. */
        br_warn("conversation %lld: no company contact (%s)", (long long)r->conv.id, res->error ? res->error : "");
        res->err = 0;
    }
    br_run_recorded(r, res, rc);
}

void
br_job_company(struct br_run *r)
{
    const char *domain = br_config_company_domain(r->env->cfg, r->conv.email);
    char *known = NULL;
    int rc;

    if (domain == NULL || r->conv.company_id) {
        br_run_ok(r);
        return;
    }
    for (size_t i = 0; i < BR_ENV_COMPANY_SLOTS; i++) {
        if (r->env->company_busy[i] && strcmp(r->env->company_busy[i], domain) == 0) {
            /* A colleague's job is finding or making this company: use its answer. */
            br_run_later(r, 200);
            return;
        }
    }
    if (br_store_company_get(r->env->store, domain, &known) == 0) {
        rc = BR_STORE_TX(r->env->store, br_store_conv_set_company(r->env->store, r->conv.id, known));
        free(known);
        if (rc)
            br_run_fail(r, BR_ERETRY, "cannot store the company: %s", br_strerror(rc));
        else
            br_run_ok(r);
        return;
    }
    for (size_t i = 0; i < BR_ENV_COMPANY_SLOTS; i++) {
        if (r->env->company_busy[i] == NULL) {
            r->env->company_busy[i] = br_strdup(domain);
            r->slot = (int)i + 1;
            r->on_free = release_company;
            break;
        }
    }
    if (r->slot == 0) {
        br_run_later(r, 200); /* many domains at once: wait for a free slot */
        return;
    }
    /* Looking first also finds a company this job made before a crash. */
    r->step = 1;
    r->env->tracker->ops->find_company(r->env->tracker, domain, company_known, r);
}

static void
contact_visit_posted(void *arg, struct br_result *res)
{
    struct br_run *r = arg;

    if (res->err == BR_ENOTFOUND)
        res->err = 0; /* the contact is gone: there is no card to write on */
    br_run_finish(r, res);
}

static void
contact_visit_found(void *arg, struct br_result *res)
{
    struct br_run *r = arg;
    struct br_comment_spec spec = {0};

    if (res->err) {
        contact_visit_posted(r, res);
        return;
    }
    for (size_t i = 0; i < res->comments.n; i++) {
        const char *key = res->comments.items[i].source_key;
        if (key && strcmp(key, r->source_key) == 0) {
            br_run_ok(r); /* written before the crash */
            return;
        }
    }
    spec.text = r->text;
    spec.source_key = r->source_key;
    r->env->tracker->ops->add_contact_comment(r->env->tracker, r->conv.contact_id, &spec, contact_visit_posted, r);
}

void
br_job_contact_visit(struct br_run *r)
{
    struct br_result none = {0};
    char *task = NULL;
    json_t *ctx;
    bool ok;

    if (r->conv.contact_id == NULL) {
        br_run_ok(r); /* no contact card (it could not be found or made) */
        return;
    }
    ctx = br_context_conversation(r->env->cfg, r->ch, &r->conv);
    if (json_is_object(json_object_get(r->payload, "ctx")))
        json_object_update(ctx, json_object_get(r->payload, "ctx"));
    if (br_jobs_task_of(r, r->conv.id, r->conv.gen, &task))
        json_object_set_new(ctx, "task", json_pack("{s:s}", "id", task));
    free(task);
    ok = br_jobs_render(r, BR_TEXT_CONTACT_VISIT, ctx);
    json_decref(ctx);
    if (!ok)
        return;
    r->source_key = br_malloc(BR_SOURCE_KEY_LEN + 1);
    br_store_source_key(r->env->store, BR_SOURCE_NOTE, r->job.id, r->source_key);
    if (r->job.recover) {
        r->env->tracker->ops->list_contact_comments(r->env->tracker, r->conv.contact_id, contact_visit_found, r);
        return;
    }
    contact_visit_found(r, &none);
}

/* A contact that is gone needs neither an update nor a removal. */
static void
contact_done(void *arg, struct br_result *res)
{
    if (res->err == BR_ENOTFOUND)
        res->err = 0;
    br_run_finish(arg, res);
}

/* Updated: the update jobs waiting behind learn what the contact now carries. */
static void
contact_updated(void *arg, struct br_result *res)
{
    struct br_run *r = arg;

    if (res->err == 0 && BR_STORE_TX(r->env->store, note_sent(r, json_object_get(r->payload, "sent"))) != 0)
        br_warn("conversation %lld: cannot note the contact's details for the updates behind (they send them again)",
                (long long)r->conv.id);
    contact_done(r, res);
}

void
br_job_update_contact(struct br_run *r)
{
    struct br_contact_spec spec = {0};
    json_t *details;
    char *first, *last;

    if (r->conv.contact_id == NULL || !r->conv.contact_made) {
        /*
         * Not created yet (the creation uses the new details), or a contact
         * the bridge found: that card belongs to the team, and a visitor's
         * typing must not rewrite it.
         */
        br_run_ok(r);
        return;
    }
    /* Only what the visitor told: a placeholder must not overwrite a name set in the tracker. */
    first = last = NULL;
    if (r->conv.name)
        split_name(r, r->conv.name, &first, &last);
    json_t *ctx = br_context_conversation(r->env->cfg, r->ch, &r->conv);
    struct br_field_value *fields = br_jobs_render_fields(r->ch->contact_fields, r->ch->n_contact_fields, ctx);

    details = details_of(&r->conv, fields, r->ch->n_contact_fields);
    if (json_equal(details, json_object_get(r->payload, "sent"))) {
        /* The contact was made (or updated) with just these details: nothing to write. */
        br_debug("conversation %lld: contact %s carries these details already", (long long)r->conv.id,
                 r->conv.contact_id);
        json_decref(details);
        br_jobs_free_fields(fields, r->ch->n_contact_fields);
        json_decref(ctx);
        free(first);
        free(last);
        br_run_ok(r);
        return;
    }
    json_object_set_new(r->payload, "sent", details);
    spec.name = first;
    spec.lastname = last;
    spec.email = r->conv.email;
    spec.phone = r->conv.phone;
    spec.fields = fields;
    spec.n_fields = r->ch->n_contact_fields;
    r->env->tracker->ops->update_contact(r->env->tracker, r->conv.contact_id, &spec, contact_updated, r);
    br_jobs_free_fields(fields, r->ch->n_contact_fields);
    json_decref(ctx);
    free(first);
    free(last);
}

void
br_job_drop_contact(struct br_run *r)
{
    struct br_conv sc = {0};
    int64_t survivor = json_integer_value(json_object_get(r->payload, "survivor"));
    bool drop;

    if (br_store_conv_get(r->env->store, survivor, &sc) != 0) {
        br_run_fail(r, BR_EFATAL, "the surviving conversation is gone");
        return;
    }
    /*
     * Only a contact the bridge made for this device: a customer's contact
     * found by e-mail stays, and so does one shared with the survivor.
     */
    drop = r->conv.contact_id && r->conv.contact_made &&
           (sc.contact_id == NULL || strcmp(sc.contact_id, r->conv.contact_id) != 0);
    br_conv_dispose(&sc);
    if (!drop) {
        br_run_ok(r);
        return;
    }
    r->env->tracker->ops->delete_contact(r->env->tracker, r->conv.contact_id, contact_done, r);
}
