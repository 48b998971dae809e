/*
 * config.c - a loaded config's life: its lookups and its release.  It is
 * read by config_file.c and the rooms of config_load.h.
 */
#include "config.h"

#include "templates/tpl.h"
#include "texts.h"

#include <stdlib.h>
#include <string.h>

static void
free_channel(struct br_channel *ch)
{
    free(ch->name);
    free(ch->webhook_secret);
    free(ch->chatra_url);
    free(ch->chatra_public_key);
    free(ch->chatra_secret_key);
    free(ch->default_agent_id);
    free(ch->default_agent_email);
    free(ch->default_agent_name);
    free(ch->employees);
    for (size_t i = 0; i < ch->n_watchers; i++)
        free(ch->watchers[i]);
    free(ch->watchers);
    br_tpl_free(ch->task_title);
    br_tpl_free(ch->task_description);
    for (size_t i = 0; i < ch->n_custom_fields; i++)
        br_tpl_free(ch->custom_fields[i].value);
    free(ch->custom_fields);
    for (size_t i = 0; i < ch->n_contact_fields; i++)
        br_tpl_free(ch->contact_fields[i].value);
    free(ch->contact_fields);
}

struct br_config *
br_config_ref(struct br_config *c)
{
    c->refs++;
    return c;
}

void
br_config_free(struct br_config *c)
{
    if (c == NULL)
        return;
    if (c->refs > 0) {
        c->refs--;
        return;
    }
    free(c->path);
    free(c->dir);
    free(c->listen_host);
    free(c->metrics_token);
    free(c->store_kind);
    free(c->store_path);
    free(c->log_level);
    free(c->log_format);
    free(c->trusted_proxies);
    free(c->language);
    free(c->templates_dir);
    free(c->timezone);
    free(c->tracker_timezone);
    free(c->tracker_kind);
    free(c->tracker_url);
    free(c->tracker_token);
    free(c->tracker_webhook_secret);
    free(c->tracker_project);
    free(c->admin_token);
    free(c->crm_api_key);
    free(c->crm_url);
    for (size_t i = 0; i < c->n_employees; i++) {
        free(c->employees[i].name);
        free(c->employees[i].email);
        free(c->employees[i].tracker_user);
        free(c->employees[i].chatra_agent_id);
    }
    free(c->employees);
    for (size_t i = 0; i < c->n_public_domains; i++)
        free(c->public_domains[i]);
    free(c->public_domains);
    for (size_t i = 0; i < c->n_channels; i++)
        free_channel(&c->channels[i]);
    free(c->channels);
    for (int t = 0; t < BR_TEXT_COUNT; t++)
        br_tpl_free(c->texts[t]);
    br_diag_dispose(&c->notices);
    free(c);
}

const struct br_channel *
br_config_channel(const struct br_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_channels; i++)
        if (c->channels[i].name && strcmp(c->channels[i].name, name) == 0)
            return &c->channels[i];
    return NULL;
}

const struct br_employee *
br_config_employee_by_tracker_user(const struct br_config *c, const char *tracker_user)
{
    for (size_t i = 0; i < c->n_employees; i++)
        if (c->employees[i].tracker_user && strcmp(c->employees[i].tracker_user, tracker_user) == 0)
            return &c->employees[i];
    return NULL;
}

const struct br_employee *
br_channel_employee_by_tracker_user(const struct br_channel *ch, const char *tracker_user)
{
    for (size_t i = 0; i < ch->n_employees; i++)
        if (ch->employees[i]->tracker_user && strcmp(ch->employees[i]->tracker_user, tracker_user) == 0)
            return ch->employees[i];
    return NULL;
}

const struct br_employee *
br_config_employee_by_agent(const struct br_config *c, const char *agent_id)
{
    for (size_t i = 0; i < c->n_employees; i++)
        if (c->employees[i].chatra_agent_id && strcmp(c->employees[i].chatra_agent_id, agent_id) == 0)
            return &c->employees[i];
    return NULL;
}

const struct br_employee *
br_config_employee_by_email(const struct br_config *c, const char *email)
{
    for (size_t i = 0; email && i < c->n_employees; i++)
        if (c->employees[i].email && strcmp(c->employees[i].email, email) == 0)
            return &c->employees[i];
    return NULL;
}
