/*
 * config_people.c - the config's people and places: employees, channels
 * (their Chatra account, default agent, employees, watchers, task and
 * contact settings, custom fields) and the mail providers that are not
 * companies.
 */
#include "config_load.h"
#include "tracker.h"

#include "log.h"
#include "templates/tpl.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Mail providers: an address there tells nothing about the visitor's company. */
static const char *const default_public_domains[] = {
    "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "outlook.com", "hotmail.com", "live.com",
    "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com",
    "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com", "yandex.ru", "yandex.com", "ya.ru", "mail.ru",
    "inbox.ru", "list.ru", "bk.ru", "rambler.ru", "qq.com", "163.com", "126.com", "naver.com",
};

void
br_conf_load_public_domains(struct br_conf_loader *L, json_t *arr)
{
    struct br_config *c = L->cfg;
    size_t i;
    json_t *v;

    if (arr == NULL) {
        c->public_domains = br_calloc(BR_ARRAY_SIZE(default_public_domains), sizeof(char *));
        for (i = 0; i < BR_ARRAY_SIZE(default_public_domains); i++)
            c->public_domains[c->n_public_domains++] = br_strdup(default_public_domains[i]);
        return;
    }
    if (!json_is_array(arr)) {
        PROBLEM(L, "companies.public_domains", "must be a list of domains such as \"gmail.com\"");
        return;
    }
    c->public_domains = br_calloc(json_array_size(arr) + 1, sizeof(char *));
    json_array_foreach(arr, i, v) {
        char *p = br_asprintf("companies.public_domains[%zu]", i);
        char *d = br_conf_string(L, v, p, false);

        if (json_is_string(v) && d == NULL) {
            /* env: or file: that could not be read: reported */
        } else if (d == NULL || *d == '\0' || strchr(d, '@')) {
            PROBLEM(L, p, "must be a domain such as \"gmail.com\"");
            free(d);
        } else {
            br_conf_lower(d);
            c->public_domains[c->n_public_domains++] = d;
        }
        free(p);
    }
}

const char *
br_config_company_domain(const struct br_config *c, const char *email)
{
    const char *at = email ? strrchr(email, '@') : NULL;

    if (!c->companies || at == NULL || at[1] == '\0')
        return NULL;
    for (size_t i = 0; i < c->n_public_domains; i++)
        if (strcmp(c->public_domains[i], at + 1) == 0)
            return NULL;
    return at + 1;
}

void
br_conf_load_employees(struct br_conf_loader *L, json_t *arr)
{
    static const char *const known[] = {"name", "email", "tracker_user", "chatra_agent_id", NULL};
    struct br_config *c = L->cfg;
    size_t i;
    json_t *e;

    if (arr == NULL)
        return;
    if (!json_is_array(arr)) {
        PROBLEM(L, "employees", "must be a list");
        return;
    }
    c->employees = br_calloc(json_array_size(arr) + 1, sizeof(*c->employees));
    json_array_foreach(arr, i, e) {
        char *base = br_asprintf("employees[%zu]", i);
        struct br_employee *emp = &c->employees[c->n_employees++];
        if (!json_is_object(e)) {
            PROBLEM(L, base, "must be an object");
            free(base);
            continue;
        }
        br_conf_keys(L, e, base, known);
        emp->name = br_conf_str(L, e, base, "name", NULL, true, false);
        emp->email = br_conf_email(br_conf_str(L, e, base, "email", NULL, true, false));
        /* Without it, the tracker user is found by e-mail (the engine asks the tracker once). */
        emp->tracker_user = br_conf_str(L, e, base, "tracker_user", NULL, false, false);
        emp->chatra_agent_id = br_conf_str(L, e, base, "chatra_agent_id", NULL, false, false);
        if (emp->tracker_user && *emp->tracker_user == '\0') {
            char *p = br_conf_path(base, "tracker_user");
            PROBLEM(L, p, "must not be empty (leave it out to find the tracker user by e-mail)");
            free(p);
        } else if (emp->tracker_user && c->tracker && c->tracker->user_problem &&
                   c->tracker->user_problem(emp->tracker_user)) {
            char *p = br_conf_path(base, "tracker_user");
            PROBLEM(L, p, "\"%s\" is not %s", emp->tracker_user, c->tracker->user_problem(emp->tracker_user));
            free(p);
        }
        if (emp->email && strchr(emp->email, '@') == NULL) {
            char *p = br_conf_path(base, "email");
            PROBLEM(L, p, "is not an e-mail address");
            free(p);
        }
        for (size_t j = 0; j + 1 < c->n_employees; j++) {
            if (emp->email && c->employees[j].email && strcmp(emp->email, c->employees[j].email) == 0) {
                char *p = br_conf_path(base, "email");
                PROBLEM(L, p, "is the same as employees[%zu].email", j);
                free(p);
            }
        }
        free(base);
    }
}


/*
 * channels[].task.custom_fields and channels[].contact.custom_fields:
 * [{"id": 3, "value": "{{visitor.email}}"}], templates filled from the
 * visitor's data when the task (issue) or contact is made or updated.
 */
static void
br_conf_load_custom_fields(struct br_conf_loader *L, json_t *arr, const char *base, struct br_custom_field **out, size_t *n)
{
    static const char *const known[] = {"id", "value", NULL};
    char *p = br_conf_path(base, "custom_fields");
    size_t i;
    json_t *v;

    if (arr == NULL) {
        free(p);
        return;
    }
    if (!json_is_array(arr))
        PROBLEM(L, p, "must be a list of {\"id\": <custom field id>, \"value\": \"<template>\"}");
    else {
        *out = br_calloc(json_array_size(arr) + 1, sizeof(**out));
        json_array_foreach(arr, i, v) {
            char *ip = br_asprintf("%s[%zu]", p, i);
            if (!json_is_object(v)) {
                PROBLEM(L, ip, "must be an object with id and value");
            } else {
                struct br_custom_field *f = &(*out)[(*n)++];
                br_conf_keys(L, v, ip, known);
                f->id = br_conf_int(L, v, ip, "id", 0, 1, INT32_MAX, true);
                if (br_conf_get(v, "value") == NULL)
                    PROBLEM(L, ip, "needs a value template");
                else
                    f->value = br_conf_template(L, v, ip, "value", NULL, NULL);
            }
            free(ip);
        }
    }
    free(p);
}

/*
 * The channel's default agent: by Chatra agent id, or by e-mail (Planfix's
 * "the Chatra user through which the chat is conducted") with the name the
 * chat shows, which an employees[] entry with that e-mail may give.  When
 * both are set the id wins.
 */
static void
br_conf_load_default_agent(struct br_conf_loader *L, json_t *o, const char *base, struct br_channel *ch)
{
    struct br_config *c = L->cfg;
    char *p;

    ch->default_agent_id = br_conf_str(L, o, base, "default_agent_id", NULL, false, false);
    ch->default_agent_email = br_conf_email(br_conf_str(L, o, base, "default_agent_email", NULL, false, false));
    ch->default_agent_name = br_conf_str(L, o, base, "default_agent_name", NULL, false, false);
    if (ch->default_agent_id && *ch->default_agent_id == '\0') {
        p = br_conf_path(base, "default_agent_id");
        PROBLEM(L, p, "must not be empty");
        free(p);
    }
    if (ch->default_agent_email && strchr(ch->default_agent_email, '@') == NULL) {
        p = br_conf_path(base, "default_agent_email");
        PROBLEM(L, p, "is not an e-mail address");
        free(p);
    } else if (ch->default_agent_email && ch->default_agent_name == NULL) {
        const struct br_employee *emp = br_config_employee_by_email(c, ch->default_agent_email);
        if (emp && emp->name) {
            ch->default_agent_name = br_strdup(emp->name);
        } else {
            p = br_conf_path(base, "default_agent_name");
            PROBLEM(L, p, "is required with default_agent_email (the name the chat shows), unless an employees[] "
                          "entry has that e-mail");
            free(p);
        }
    }
    if (ch->default_agent_id == NULL && ch->default_agent_email == NULL && br_conf_get(o, "default_agent_id") == NULL &&
        br_conf_get(o, "default_agent_email") == NULL) {
        p = br_conf_path(base, "default_agent_id");
        PROBLEM(L, p, "is required (or default_agent_email: the Chatra agent's e-mail)");
        free(p);
    }
}

void
br_conf_load_channel(struct br_conf_loader *L, json_t *o, const char *base, struct br_channel *ch)
{
    static const char *const known[] = {"name", "webhook_secret", "chatra", "default_agent_id",
                                        "default_agent_email", "default_agent_name", "employees", "watchers", "send_as_employee",
                                        "new_task_if_no_active", "close_on_leave", "task",
                                        "contact", "merge_policy", "mirror_agent_messages", NULL};
    static const char *const known_chatra[] = {"url", "public_key", "secret_key",
                                               "requests_per_second", NULL};
    static const char *const known_task[] = {"template_id", "closed_status_id", "title",
                                             "title_file", "description", "description_file",
                                             "custom_fields", NULL};
    static const char *const known_contact[] = {"template_id", "custom_fields", NULL};
    struct br_config *c = L->cfg;
    json_t *chatra, *task, *contact, *arr, *v;
    char *p;
    size_t i;

    br_conf_keys(L, o, base, known);
    ch->name = br_conf_str(L, o, base, "name", NULL, true, false);
    if (ch->name) {
        for (const char *s = ch->name; *s; s++) {
            if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') {
                p = br_conf_path(base, "name");
                PROBLEM(L, p, "may contain only letters, digits, - and _ (it is part of the webhook URL)");
                free(p);
                break;
            }
        }
    }
    ch->webhook_secret = br_conf_str(L, o, base, "webhook_secret", NULL, true, true);
    br_conf_check_secret(L, base, "webhook_secret", ch->webhook_secret);

    p = br_conf_path(base, "chatra");
    chatra = br_conf_obj(L, o, base, "chatra", true);
    br_conf_keys(L, chatra, p, known_chatra);
    if (chatra) {
        ch->chatra_url = br_conf_strip_slash(br_conf_str(L, chatra, p, "url", "https://app.chatra.io/api", false, false));
        br_conf_check_url(L, p, "url", ch->chatra_url);
        ch->chatra_public_key = br_conf_str(L, chatra, p, "public_key", NULL, true, true);
        ch->chatra_secret_key = br_conf_str(L, chatra, p, "secret_key", NULL, true, true);
        ch->chatra_rps = br_conf_num(L, chatra, p, "requests_per_second", 5, 0.01, 1000);
    }
    free(p);

    br_conf_load_default_agent(L, o, base, ch);
    ch->send_as_employee = br_conf_bool(L, o, base, "send_as_employee", true);
    ch->new_task_if_no_active = br_conf_bool(L, o, base, "new_task_if_no_active", true);
    ch->close_on_leave = br_conf_bool(L, o, base, "close_on_leave", true);
    {
        char *mp = br_conf_str(L, o, base, "merge_policy", "email", false, false);
        if (mp && strcmp(mp, "email") == 0)
            ch->merge_policy = BR_MERGE_EMAIL;
        else if (mp && strcmp(mp, "verified") == 0)
            ch->merge_policy = BR_MERGE_VERIFIED;
        else if (mp && strcmp(mp, "off") == 0)
            ch->merge_policy = BR_MERGE_OFF;
        else if (mp) {
            char *path = br_conf_path(base, "merge_policy");
            PROBLEM(L, path, "must be \"email\", \"verified\" or \"off\"");
            free(path);
        }
        free(mp);
    }
    {
        char *ma = br_conf_str(L, o, base, "mirror_agent_messages", "comment", false, false);
        if (ma && strcmp(ma, "comment") == 0)
            ch->mirror_agent = BR_MIRROR_AGENT_COMMENT;
        else if (ma && strcmp(ma, "with_visitor") == 0)
            ch->mirror_agent = BR_MIRROR_AGENT_WITH_VISITOR;
        else if (ma && strcmp(ma, "off") == 0)
            ch->mirror_agent = BR_MIRROR_AGENT_OFF;
        else if (ma) {
            char *path = br_conf_path(base, "mirror_agent_messages");
            PROBLEM(L, path, "must be \"comment\", \"with_visitor\" or \"off\"");
            free(path);
        }
        free(ma);
    }

    arr = br_conf_get(o, "employees");
    if (arr && !json_is_array(arr)) {
        p = br_conf_path(base, "employees");
        PROBLEM(L, p, "must be a list of employee e-mails");
        free(p);
    } else if (arr) {
        ch->employees = br_calloc(json_array_size(arr) + 1, sizeof(*ch->employees));
        json_array_foreach(arr, i, v) {
            char *ip = br_asprintf("%s.employees[%zu]", base, i);
            char *item = br_conf_string(L, v, ip, false);
            if (!json_is_string(v)) {
                PROBLEM(L, ip, "must be an employee e-mail");
            } else if (item) {
                char *email = br_conf_email(item);
                struct br_employee *found = NULL;
                for (size_t k = 0; k < c->n_employees; k++)
                    if (c->employees[k].email && strcmp(c->employees[k].email, email) == 0)
                        found = &c->employees[k];
                if (found == NULL)
                    PROBLEM(L, ip, "\"%s\" is not in the top-level employees list", email);
                else
                    ch->employees[ch->n_employees++] = found;
                free(email);
            }
            free(ip);
        }
    }

    arr = br_conf_get(o, "watchers");
    if (arr && !json_is_array(arr)) {
        p = br_conf_path(base, "watchers");
        PROBLEM(L, p, "must be a list of tracker user ids such as \"user:7\"");
        free(p);
    } else if (arr) {
        ch->watchers = br_calloc(json_array_size(arr) + 1, sizeof(*ch->watchers));
        json_array_foreach(arr, i, v) {
            char *ip = br_asprintf("%s.watchers[%zu]", base, i);
            char *item = br_conf_string(L, v, ip, false);
            const char *w = item;

            if (json_is_string(v) && item == NULL) {
                /* env: or file: that could not be read: reported */
            } else if (item == NULL || *item == '\0') {
                PROBLEM(L, ip, "must be a tracker user id such as \"user:7\"");
            } else if (c->tracker && c->tracker->numeric_watchers) {
                /* Redmine names watchers by numeric user id ("7" or "user:7"). */
                const char *d = strncmp(w, "user:", 5) == 0 ? w + 5 : w;
                if (*d == '\0' || strspn(d, "0123456789") != strlen(d))
                    PROBLEM(L, ip, "must be a %s user id such as \"7\"", c->tracker->label);
                else
                    ch->watchers[ch->n_watchers++] = br_strdup(d);
            } else {
                ch->watchers[ch->n_watchers++] = br_strdup(w);
            }
            free(item);
            free(ip);
        }
    }

    p = br_conf_path(base, "task");
    task = br_conf_obj(L, o, base, "task", false);
    br_conf_keys(L, task, p, known_task);
    ch->task_template_id = br_conf_int(L, task, p, "template_id", 0, 0, LONG_MAX, false);
    if (ch->task_template_id && c->tracker && !c->tracker->task_templates) {
        char *q = br_conf_path(p, "template_id");
        PROBLEM(L, q, "%s has no task templates (the %s is made from title and description)", c->tracker->label,
                c->tracker->task_word);
        free(q);
    }
    ch->closed_status_id = br_conf_int(L, task, p, "closed_status_id", c->tracker_closed_status_id, 0, LONG_MAX, false);
    if (ch->close_on_leave && ch->closed_status_id == 0) {
        char *q = br_conf_path(p, "closed_status_id");
        PROBLEM(L, q, "is required when close_on_leave is true (a status id of 1 or more; "
                      "tracker.closed_status_id sets it for every channel)");
        free(q);
    }
    br_conf_load_custom_fields(L, br_conf_get(task, "custom_fields"), p, &ch->custom_fields, &ch->n_custom_fields);
    {
        char *t1 = br_conf_default_template(c, "task_title.txt");
        /* In the tracker's text format: Planfix's are HTML, Redmine's Textile. */
        char *name = br_asprintf("task_description.%s", c->tracker ? c->tracker->text_ext : "html");
        char *t2 = br_conf_default_template(c, name);
        free(name);
        ch->task_title = br_conf_template(L, task, p, "title", t1, NULL);
        ch->task_description = br_conf_template(L, task, p, "description", t2, NULL);
        free(t1);
        free(t2);
        br_conf_note_description(L, p, ch->task_description);
    }
    free(p);

    p = br_conf_path(base, "contact");
    contact = br_conf_obj(L, o, base, "contact", false);
    if (contact && c->tracker && !c->tracker->ops->caps.contacts)
        PROBLEM(L, p, "%s has no contacts; the visitor's details go into the %s", c->tracker->label,
                c->tracker->task_word);
    br_conf_keys(L, contact, p, known_contact);
    ch->contact_template_id = br_conf_int(L, contact, p, "template_id", 0, 0, LONG_MAX, false);
    br_conf_load_custom_fields(L, br_conf_get(contact, "custom_fields"), p, &ch->contact_fields, &ch->n_contact_fields);
    free(p);
}

