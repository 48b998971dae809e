/*
 * config_file.c - reading the config file: the JSON, its top level and the
 * tracker section (each kind reads its own keys, tracker.h); the
 * employees, channels and templates are read in their own rooms
 * (config_load.h).  config.c has the result's life and lookups.
 */
#include "config.h"

#include "cidr.h"
#include "config_load.h"
#include "tracker.h"
#include "log.h"
#include "templates/tpl.h"
#include "texts.h"

#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The store section: all that the commands reading the store need (br_config_load_store). */
static void
load_store(struct br_conf_loader *L, json_t *root)
{
    static const char *const known_store[] = {"kind", "path", "retention_days", NULL};
    struct br_config *c = L->cfg;
    json_t *o;

    o = br_conf_obj(L, root, "", "store", false);
    br_conf_keys(L, o, "store", known_store);
    c->store_kind = br_conf_str(L, o, "store", "kind", "sqlite", false, false);
    if (c->store_kind && strcmp(c->store_kind, "sqlite") != 0)
        /* Named as written in the file: the value behind an env: or file: reference may be a secret. */
        PROBLEM(L, "store.kind", "\"%s\" is not supported (supported: sqlite)",
                json_string_value(br_conf_get(o, "kind")));
    {
        char *sp = br_conf_str(L, o, "store", "path", "var/bridge.db", false, false);
        if (sp && strcmp(sp, ":memory:") != 0 && sp[0] != '/') {
            c->store_path = br_conf_relative(L, sp);
            free(sp);
        } else {
            c->store_path = sp;
        }
    }

    c->retention_days = br_conf_num(L, o, "store", "retention_days", 0, 0, 36500);
}

/* listen.trusted_proxies: addresses and CIDR ranges, each checked here. */
static void
load_trusted_proxies(struct br_conf_loader *L, json_t *arr)
{
    struct br_config *c = L->cfg;
    size_t i;
    json_t *v;

    if (arr == NULL)
        return;
    if (!json_is_array(arr)) {
        PROBLEM(L, "listen.trusted_proxies", "must be a list of addresses or ranges such as [\"127.0.0.1\", \"10.0.0.0/8\"]");
        return;
    }
    c->trusted_proxies = br_calloc(json_array_size(arr) + 1, sizeof(*c->trusted_proxies));
    json_array_foreach(arr, i, v) {
        char *p = br_asprintf("listen.trusted_proxies[%zu]", i);
        char *s = br_conf_string(L, v, p, false);
        char why[120];

        if (!json_is_string(v)) {
            PROBLEM(L, p, "must be a string: an address or a range such as \"10.0.0.0/8\"");
        } else if (s && br_cidr_parse(s, &c->trusted_proxies[c->n_trusted_proxies], why, sizeof(why)) == 0) {
            c->n_trusted_proxies++;
        } else if (s) {
            char *shown = br_log_escape(s, 60);
            PROBLEM(L, p, "\"%s\" %s", shown, why);
            free(shown);
        }
        free(s);
        free(p);
    }
}

/* The metrics section: who may read GET /metrics. */
static void
load_metrics(struct br_conf_loader *L, json_t *root)
{
    static const char *const known_metrics[] = {"token", NULL};
    struct br_config *c = L->cfg;
    const char *t;
    json_t *o;

    o = br_conf_obj(L, root, "", "metrics", false);
    br_conf_keys(L, o, "metrics", known_metrics);
    t = c->metrics_token = br_conf_str(L, o, "metrics", "token", NULL, false, true);
    if (t == NULL)
        return;
    /* A bearer token, as Prometheus's authorization setting sends it (RFC 6750's characters). */
    if (strlen(t) < 16)
        PROBLEM(L, "metrics.token", "must be at least 16 characters long");
    if (strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") != strlen(t))
        PROBLEM(L, "metrics.token", "may contain only letters, digits and - . _ ~ + / =");
}

/* The admin page (handlers/admin_*.c): off unless a token is set. */
static void
load_admin(struct br_conf_loader *L, json_t *root)
{
    static const char *const known_admin[] = {"token", "session_ttl_s", NULL};
    struct br_config *c = L->cfg;
    json_t *o = br_conf_obj(L, root, "", "admin", false);

    br_conf_keys(L, o, "admin", known_admin);
    c->admin_token = br_conf_str(L, o, "admin", "token", NULL, false, true);
    if (c->admin_token && strlen(c->admin_token) < 16)
        PROBLEM(L, "admin.token", "must be at least 16 characters long (it is the admin page's only password)");
    c->admin_session_ttl_s = br_conf_int(L, o, "admin", "session_ttl_s", 43200, 60, 30L * 86400, false);
}

static void
load(struct br_conf_loader *L, json_t *root)
{
    static const char *const known[] = {"listen", "store", "log", "tracker", "employees", "channels", "limits",
                                        "companies", "language", "timezone", "texts", "templates_dir", "metrics",
                                        "admin", "enrich", NULL};
    static const char *const known_companies[] = {"enabled", "template_id", "public_domains", NULL};
    static const char *const known_listen[] = {"host", "port", "trusted_proxies", NULL};
    static const char *const known_log[] = {"level", "format", NULL};
    /* The tracker section's keys every kind shares; each kind adds its own (br_tracker_kind_keys). */
    static const char *const known_tracker[] = {"kind", "url", "requests_per_second", "timeout_ms",
                                                "poll_interval_s", "closed_status_id", "coalesce_ms",
                                                "coalesce_max_s",
                                                "timezone", "daily_quota", NULL};
    static const char *const known_limits[] = {"max_body_bytes", "per_address_rps", "per_address_burst",
                                               "bad_secrets_per_minute", NULL};
    struct br_config *c = L->cfg;
    json_t *o, *arr, *v;
    size_t i;

    if (!json_is_object(root)) {
        br_diag_add(L->diag, "%s: the top level must be a JSON object", L->file);
        return;
    }
    br_conf_keys(L, root, "", known);

    o = br_conf_obj(L, root, "", "listen", false);
    br_conf_keys(L, o, "listen", known_listen);
    c->listen_host = br_conf_str(L, o, "listen", "host", "127.0.0.1", false, false);
    c->listen_port = (int)br_conf_int(L, o, "listen", "port", 8080, 0, 65535, false);
    load_trusted_proxies(L, br_conf_get(o, "trusted_proxies"));

    o = br_conf_obj(L, root, "", "limits", false);
    br_conf_keys(L, o, "limits", known_limits);
    c->max_body = (size_t)br_conf_int(L, o, "limits", "max_body_bytes", 1024 * 1024, 1024,
                                  64L * 1024 * 1024, false);
    c->per_address_rps = br_conf_num(L, o, "limits", "per_address_rps", 0, 0, 1e6);
    c->per_address_burst = br_conf_num(L, o, "limits", "per_address_burst", c->per_address_rps * 2, 1, 1e7);
    c->bad_secrets_per_minute = br_conf_num(L, o, "limits", "bad_secrets_per_minute", 20, 0, 1e6);

    load_store(L, root);
    load_metrics(L, root);
    load_admin(L, root);

    o = br_conf_obj(L, root, "", "log", false);
    br_conf_keys(L, o, "log", known_log);
    c->log_level = br_conf_str(L, o, "log", "level", "info", false, false);
    if (c->log_level) {
        enum br_log_level lvl;
        if (br_log_parse_level(c->log_level, &lvl) != 0)
            PROBLEM(L, "log.level", "must be one of debug, info, warn, error");
    }
    c->log_format = br_conf_str(L, o, "log", "format", "text", false, false);
    if (c->log_format) {
        enum br_log_format fmt;
        if (br_log_parse_format(c->log_format, &fmt) != 0)
            PROBLEM(L, "log.format", "must be \"text\" or \"json\"");
    }

    c->language = br_conf_str(L, root, "", "language", "en", false, false);
    if (c->language && !br_texts_language_known(c->language))
        PROBLEM(L, "language", "\"%s\" is not supported (supported: en, ru)", json_string_value(br_conf_get(root, "language")));
    c->timezone = br_conf_zone(L, root, "", "timezone", "UTC");
    br_conf_load_templates_dir(L, root);

    o = br_conf_obj(L, root, "", "tracker", true);
    {
        /* Those and every kind's own: another kind's key gets its own message below. */
        const char *known[64];
        size_t n = 0;
        for (const char *const *k = known_tracker; *k && n < 63; k++)
            known[n++] = *k;
        for (const char *const *k = br_tracker_kind_keys(); *k && n < 63; k++)
            known[n++] = *k;
        known[n] = NULL;
        br_conf_keys(L, o, "tracker", known);
    }
    if (o) {
        const struct br_tracker_kind *kind;
        c->tracker_kind = br_conf_str(L, o, "tracker", "kind", NULL, true, false);
        kind = c->tracker = c->tracker_kind ? br_tracker_kind(c->tracker_kind) : NULL;
        if (c->tracker_kind && kind == NULL)
            PROBLEM(L, "tracker.kind", "\"%s\" is not supported (supported: %s)",
                    json_string_value(br_conf_get(o, "kind")), br_tracker_kind_names());
        c->tracker_url = br_conf_strip_slash(br_conf_str(L, o, "tracker", "url", NULL, true, false));
        br_conf_check_url(L, "tracker", "url", c->tracker_url);
        /*
         * The kind's own keys (its credentials, its project): its driver
         * reads them.  Without a kind, Planfix's (the default) are asked for
         * too, so that one run reports all there is to fix.
         */
        if (kind)
            kind->load(L, o);
        else if (c->tracker_kind == NULL)
            br_planfix_kind.load(L, o);
        c->tracker_closed_status_id = br_conf_int(L, o, "tracker", "closed_status_id", 0, 1, LONG_MAX, false);
        c->tracker_timezone = br_conf_zone(L, o, "tracker", "timezone", NULL);
        /* Planfix allows 1 request per second; a self-hosted Redmine takes more. */
        c->tracker_rps = br_conf_num(L, o, "tracker", "requests_per_second", kind ? kind->default_rps : 1, 0.01, 1000);
        c->tracker_timeout_ms = br_conf_int(L, o, "tracker", "timeout_ms", 15000, 100, 600000, false);
        /* Planfix counts requests a day per account (its plan's quota); Redmine does not. */
        c->tracker_daily_quota = br_conf_int(L, o, "tracker", "daily_quota", kind ? kind->default_daily_quota : 20000,
                                             0, 10000000, false);
        c->coalesce_ms = br_conf_int(L, o, "tracker", "coalesce_ms", 2000, 0, 60000, false);
        /* The widest wait while the tracker is behind (batching.h); 0 keeps coalesce_ms always. */
        c->coalesce_max_s = br_conf_int(L, o, "tracker", "coalesce_max_s", 300, 0, 3600, false);
        if (c->coalesce_max_s > 0 && c->coalesce_max_s * 1000 < c->coalesce_ms)
            PROBLEM(L, "tracker.coalesce_max_s",
                    "is %ld s, shorter than coalesce_ms (%ld ms): set 0 (never wider) or at least %ld",
                    c->coalesce_max_s, c->coalesce_ms, (c->coalesce_ms + 999) / 1000);
        /* A tracker without webhooks (Redmine) is polled for replies, so more often. */
        c->poll_interval_s =
            br_conf_int(L, o, "tracker", "poll_interval_s", kind ? kind->default_poll_s : 60, 0, 86400, false);
        if (kind && kind->polled_only && c->poll_interval_s == 0)
            PROBLEM(L, "tracker.poll_interval_s", "must be 1 or more for %s: polling is how replies arrive",
                    kind->label);
    }

    br_conf_load_texts(L, root);

    o = br_conf_obj(L, root, "", "companies", false);
    br_conf_keys(L, o, "companies", known_companies);
    c->companies = br_conf_bool(L, o, "companies", "enabled", false);
    if (c->companies && c->tracker && !c->tracker->ops->caps.contacts)
        PROBLEM(L, "companies.enabled", "%s has no contacts or companies; the visitor's details go into the %s",
                c->tracker->label, c->tracker->task_word);
    c->company_template_id = br_conf_int(L, o, "companies", "template_id", 0, 0, LONG_MAX, false);
    br_conf_load_public_domains(L, br_conf_get(o, "public_domains"));

    br_conf_load_enrich(L, root);
    br_conf_load_employees(L, br_conf_get(root, "employees"));

    arr = br_conf_get(root, "channels");
    if (arr == NULL || !json_is_array(arr) || json_array_size(arr) == 0) {
        PROBLEM(L, "channels", "must be a non-empty list of channels");
        return;
    }
    c->channels = br_calloc(json_array_size(arr), sizeof(*c->channels));
    json_array_foreach(arr, i, v) {
        char *base = br_asprintf("channels[%zu]", i);
        struct br_channel *ch = &c->channels[c->n_channels++];
        if (!json_is_object(v))
            PROBLEM(L, base, "must be an object");
        else
            br_conf_load_channel(L, v, base, ch);
        for (size_t j = 0; j + 1 < c->n_channels; j++) {
            if (ch->name && c->channels[j].name && strcmp(ch->name, c->channels[j].name) == 0) {
                char *p = br_conf_path(base, "name");
                PROBLEM(L, p, "\"%s\" is already used by channels[%zu]", ch->name, j);
                free(p);
            }
        }
        free(base);
    }
}

/* Reads the file and runs load_fn over it: one loader for the whole config and for its store section. */
static int
load_file(const char *path, struct br_config **out, struct br_diag *diag,
          void (*load_fn)(struct br_conf_loader *L, json_t *root))
{
    struct br_conf_loader L;
    struct br_config *c = br_calloc(1, sizeof(*c));
    json_error_t je;
    json_t *root;
    char *tmp;
    size_t before = diag->n;

    *out = NULL;
    c->path = br_strdup(path);
    tmp = br_strdup(path);
    c->dir = br_strdup(dirname(tmp));
    free(tmp);
    L.cfg = c;
    L.diag = diag;
    L.file = path;

    root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        /* jansson quotes the input near the error, which may be a secret: keep only the reason. */
        char *near = strstr(je.text, " near '");
        if (near)
            *near = '\0';
        if (je.line <= 0)
            br_diag_add(diag, "%s: %s", path, je.text);
        else
            br_diag_add(diag, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        br_config_free(c);
        return BR_EINVAL;
    }
    if (load_fn == load_store && !json_is_object(root))
        br_diag_add(diag, "%s: the top level must be a JSON object", path);
    else
        load_fn(&L, root);
    json_decref(root);
    if (diag->n > before) {
        br_config_free(c);
        return BR_EINVAL;
    }
    *out = c;
    return 0;
}

int
br_config_load(const char *path, struct br_config **out, struct br_diag *diag)
{
    return load_file(path, out, diag, load);
}

int
br_config_load_store(const char *path, struct br_config **out, struct br_diag *diag)
{
    return load_file(path, out, diag, load_store);
}
