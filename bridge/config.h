/*
 * config.h - the one JSON config file: loading, secret references
 * ("env:NAME", "file:PATH"), validation and the typed result.
 *
 * br_config_load reports every problem it finds through a br_diag list
 * (file:line:col for syntax, the key path for meaning) instead of
 * stopping at the first.  The loaded config owns every string and
 * compiled template in it.  It is counted: br_config_load gives one
 * reference, br_config_ref takes another (a reload keeps the old config
 * for the jobs that started with it, see reload.h), and br_config_free
 * drops one, releasing everything with the last.  Secrets are registered
 * with the logger so that they can never be printed.
 */
#ifndef BR_CONFIG_H
#define BR_CONFIG_H

#include "br.h"
#include "texts.h"

#include <stdbool.h>

struct br_tpl;
struct br_tracker_kind;
struct br_crm_kind;
struct br_cidr;

/* A list of human-readable problems, each one line. */
struct br_diag {
    char **items;
    size_t n;
};

void br_diag_add(struct br_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void br_diag_dispose(struct br_diag *d);

/*
 * An employee is complete with a name and an e-mail: without tracker_user
 * the engine finds the tracker user by that e-mail (and caches it), and
 * without chatra_agent_id replies go to Chatra with the e-mail and name.
 * Explicit ids win.
 */
struct br_employee {
    char *name;
    char *email;            /* in normal form (email.h) */
    char *tracker_user;     /* "user:5" for Planfix, a login for Redmine; NULL: found by e-mail */
    char *chatra_agent_id;  /* NULL: replies are sent with the agent's e-mail and name */
};

/* A custom field (of a task or a contact) the tracker fills from a template. */
struct br_custom_field {
    long id;
    struct br_tpl *value;
};

/* When a new device joins a known person (see the conversation model). */
enum br_merge_policy {
    BR_MERGE_EMAIL = 0,    /* on any e-mail, typed in the chat or set by the site */
    BR_MERGE_VERIFIED = 1, /* only on an e-mail the site set (integration data) */
    BR_MERGE_OFF = 2,      /* never */
};

/* What becomes of an agent's message typed in Chatra (channels[].mirror_agent_messages). */
enum br_mirror_agent {
    BR_MIRROR_AGENT_COMMENT = 0,      /* its own comment, by the employee (the default) */
    BR_MIRROR_AGENT_WITH_VISITOR = 1, /* waits like a visitor's and goes in the same comment, labelled */
    BR_MIRROR_AGENT_OFF = 2,          /* not written to the tracker (the message is skipped) */
};

struct br_channel {
    char *name;
    char *webhook_secret;
    char *chatra_url;          /* without trailing slash */
    char *chatra_public_key;
    char *chatra_secret_key;
    double chatra_rps;
    /* The agent replies come from when send_as_employee is off: by id, or else by e-mail and name. */
    char *default_agent_id;
    char *default_agent_email;
    char *default_agent_name;  /* set whenever default_agent_email is */
    struct br_employee **employees; /* the employees allowed on this channel (borrowed) */
    size_t n_employees;
    char **watchers;
    size_t n_watchers;
    bool send_as_employee;
    bool new_task_if_no_active;
    bool close_on_leave;
    enum br_merge_policy merge_policy;
    enum br_mirror_agent mirror_agent;
    long task_template_id;     /* 0 = none */
    long closed_status_id;
    struct br_tpl *task_title;
    struct br_tpl *task_description;
    struct br_custom_field *custom_fields;
    size_t n_custom_fields;
    long contact_template_id;   /* 0 = none */
    struct br_custom_field *contact_fields; /* Planfix contact custom fields */
    size_t n_contact_fields;
};

struct br_config {
    char *path;
    char *dir;                 /* directory of the config file, for relative paths */
    char *listen_host;
    int listen_port;
    /* Peers whose X-Forwarded-For / Forwarded names the client (forwarded.h); none by default. */
    struct br_cidr *trusted_proxies;
    size_t n_trusted_proxies;
    size_t max_body;
    double per_address_rps;    /* webhook requests per second per source address, 0 = no limit */
    double per_address_burst;
    double bad_secrets_per_minute; /* wrong secrets per source address before 429 */
    char *metrics_token;       /* GET /metrics wants "Authorization: Bearer <it>"; NULL: open */
    char *store_kind;
    char *store_path;          /* absolute or relative to the working directory */
    double retention_days;     /* message texts of chats closed longer ago are removed; 0 = keep */
    char *log_level;
    char *log_format;          /* "text" (default) or "json" */
    char *language;            /* "en" or "ru": the bridge's own words and the default templates */
    char *templates_dir;       /* the default templates (templates/<language>/); NULL when missing */
    char *timezone;            /* IANA name: how times are shown to people (default "UTC") */
    char *tracker_kind;        /* "planfix" or "redmine" */
    const struct br_tracker_kind *tracker; /* that kind (tracker.h); NULL when unknown (a problem) */
    char *tracker_url;         /* without trailing slash */
    char *tracker_token;       /* Planfix's token or Redmine's api_key */
    char *tracker_webhook_secret; /* Planfix only: Redmine has no webhooks */
    char *tracker_project;     /* Redmine: the project's identifier */
    long tracker_closed_status_id; /* the channels' default, 0 = none */
    char *tracker_timezone;    /* IANA zone the tracker reads dates in; NULL: learned from its answers */
    double tracker_rps;
    long tracker_timeout_ms;
    long poll_interval_s;      /* 0 = off */
    long tracker_daily_quota;  /* requests a day the tracker allows (budget.h); 0 = no daily limit */
    long coalesce_ms;          /* a visitor message waits this long for the next ones (one comment) */
    long coalesce_max_s;       /* ... and up to this long while the tracker is behind (batching.h); 0 = never wider */
    bool companies;            /* map e-mail domains to company contacts */
    long company_template_id;
    char **public_domains;     /* mail providers whose domain says nothing of a company */
    size_t n_public_domains;
    struct br_employee *employees;
    size_t n_employees;
    struct br_channel *channels;
    size_t n_channels;
    struct br_tpl *texts[BR_TEXT_COUNT]; /* the bridge's own words (texts.h) */
    char *admin_token;         /* the admin page's token (a secret); NULL: the page is off */
    /* enrich.<provider> (crm.h): the CRM card in the task; crm NULL when off */
    const struct br_crm_kind *crm;
    char *crm_api_key;         /* a secret */
    char *crm_url;             /* without trailing slash */
    double crm_rps;
    long crm_cache_ttl_s;
    long crm_timeout_ms;
    long admin_session_ttl_s;  /* how long an admin page login lasts */
    /*
     * Remarks that are not problems (the bridge runs), e.g. a task
     * description that does not show the chat messages: check-config
     * prints them, the daemon logs them at start.
     */
    struct br_diag notices;
    unsigned refs;             /* references beyond the first (br_config_ref) */
};

/* Returns 0 with *out set, or BR_EINVAL with every problem in diag. */
int br_config_load(const char *path, struct br_config **out, struct br_diag *diag);
/*
 * Only the store section (kind, path, retention_days): for the commands
 * that read or repair the store, which need no secrets.  Every other
 * field is NULL or 0.
 */
int br_config_load_store(const char *path, struct br_config **out, struct br_diag *diag);
/* One more reference to c; returns c. */
struct br_config *br_config_ref(struct br_config *c);
/* Drops one reference; the last one frees c.  NULL: nothing. */
void br_config_free(struct br_config *c);

/* The company domain of an e-mail (lower-case, after '@'), or NULL for public providers / when off. */
const char *br_config_company_domain(const struct br_config *c, const char *email);
const struct br_channel *br_config_channel(const struct br_config *c, const char *name);
const struct br_employee *br_config_employee_by_tracker_user(const struct br_config *c,
                                                             const char *tracker_user);
const struct br_employee *br_channel_employee_by_tracker_user(const struct br_channel *ch,
                                                              const char *tracker_user);
const struct br_employee *br_config_employee_by_agent(const struct br_config *c, const char *agent_id);
/* email in normal form (email.h). */
const struct br_employee *br_config_employee_by_email(const struct br_config *c, const char *email);

/* The schema that templates are checked against (see templates/tpl.h). */
const char *br_config_template_schema(void);

#endif
