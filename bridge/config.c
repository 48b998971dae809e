#include "config.h"

#include "email.h"
#include "tz.h"

#include "log.h"
#include "templates/tpl.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Validation walks the JSON once.  Every getter records a problem in the
 * diag list and returns a safe default, so that one run reports all the
 * problems an admin has to fix.  A "key path" is built as the walk goes
 * ("channels[0].task.title").
 */

void
br_diag_add(struct br_diag *d, const char *fmt, ...)
{
    struct br_buf b;
    va_list ap;

    br_buf_init(&b, 4096);
    va_start(ap, fmt);
    br_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    d->items = br_realloc(d->items, (d->n + 1) * sizeof(*d->items));
    d->items[d->n++] = br_buf_steal(&b);
}

void
br_diag_dispose(struct br_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i]);
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

struct loader {
    struct br_config *cfg;
    struct br_diag *diag;
    const char *file;
};

#define PROBLEM(L, path, ...) problem((L), (path), __VA_ARGS__)

static void __attribute__((format(printf, 3, 4)))
problem(struct loader *L, const char *path, const char *fmt, ...)
{
    struct br_buf b;
    va_list ap;

    br_buf_init(&b, 4096);
    va_start(ap, fmt);
    br_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    br_diag_add(L->diag, "%s: %s: %s", L->file, path, b.data ? b.data : "");
    br_buf_dispose(&b);
}

static char *
join_path(const char *a, const char *b)
{
    return br_asprintf("%s%s%s", a, *a ? "." : "", b);
}

static char *
read_file(const char *path, size_t max, int *err)
{
    FILE *f = fopen(path, "rb");
    struct br_buf b;
    char chunk[4096];
    size_t n;

    *err = 0;
    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    br_buf_init(&b, max);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (br_buf_append(&b, chunk, n)) {
            *err = EFBIG;
            fclose(f);
            br_buf_dispose(&b);
            return NULL;
        }
    }
    fclose(f);
    return br_buf_steal(&b);
}

static char *
resolve_relative(struct loader *L, const char *p)
{
    if (p[0] == '/')
        return br_strdup(p);
    return br_asprintf("%s/%s", L->cfg->dir, p);
}

/*
 * Resolves "env:NAME" / "file:PATH" references.  The value itself is
 * never put in a message: only the name of the variable or file.
 */
static char *
resolve_value(struct loader *L, const char *path, const char *v, bool secret)
{
    char *out = NULL;

    if (strncmp(v, "env:", 4) == 0) {
        const char *e = getenv(v + 4);
        if (v[4] == '\0') {
            PROBLEM(L, path, "\"env:\" needs a variable name");
            return NULL;
        }
        if (e == NULL || *e == '\0') {
            PROBLEM(L, path, "environment variable %s is not set", v + 4);
            return NULL;
        }
        out = br_strdup(e);
    } else if (strncmp(v, "file:", 5) == 0) {
        char *fp = resolve_relative(L, v + 5);
        int err;
        out = read_file(fp, 64 * 1024, &err);
        if (out == NULL) {
            PROBLEM(L, path, "cannot read %s: %s", fp, strerror(err));
            free(fp);
            return NULL;
        }
        free(fp);
        /* Files written by editors end with a newline that is not part of the secret. */
        size_t n = strlen(out);
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
            out[--n] = '\0';
    } else {
        out = br_strdup(v);
    }
    if (secret)
        br_log_add_secret(out);
    return out;
}

static json_t *
get(json_t *obj, const char *key)
{
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

static char *
get_str(struct loader *L, json_t *obj, const char *base, const char *key, const char *def,
        bool required, bool secret)
{
    json_t *v = get(obj, key);
    char *path = join_path(base, key);
    char *out = NULL;

    if (v == NULL || json_is_null(v)) {
        if (required)
            PROBLEM(L, path, "is required");
        else if (def)
            out = br_strdup(def);
    } else if (!json_is_string(v)) {
        PROBLEM(L, path, "must be a string");
    } else {
        out = resolve_value(L, path, json_string_value(v), secret);
        if (out && required && *out == '\0') {
            PROBLEM(L, path, "must not be empty");
            free(out);
            out = NULL;
        }
    }
    free(path);
    return out;
}

static long
get_int(struct loader *L, json_t *obj, const char *base, const char *key, long def, long min,
        long max, bool required)
{
    json_t *v = get(obj, key);
    char *path = join_path(base, key);
    long out = def;

    if (v == NULL) {
        if (required)
            PROBLEM(L, path, "is required");
    } else if (!json_is_integer(v)) {
        PROBLEM(L, path, "must be an integer");
    } else if (json_integer_value(v) < min || json_integer_value(v) > max) {
        PROBLEM(L, path, "must be between %ld and %ld", min, max);
    } else {
        out = (long)json_integer_value(v);
    }
    free(path);
    return out;
}

static double
get_num(struct loader *L, json_t *obj, const char *base, const char *key, double def, double min,
        double max)
{
    json_t *v = get(obj, key);
    char *path = join_path(base, key);
    double out = def;

    if (v == NULL) {
        /* default */
    } else if (!json_is_number(v)) {
        PROBLEM(L, path, "must be a number");
    } else if (json_number_value(v) < min || json_number_value(v) > max) {
        PROBLEM(L, path, "must be between %g and %g", min, max);
    } else {
        out = json_number_value(v);
    }
    free(path);
    return out;
}

static bool
get_bool(struct loader *L, json_t *obj, const char *base, const char *key, bool def)
{
    json_t *v = get(obj, key);
    bool out = def;

    if (v != NULL) {
        if (json_is_boolean(v)) {
            out = json_is_true(v);
        } else {
            char *path = join_path(base, key);
            PROBLEM(L, path, "must be true or false");
            free(path);
        }
    }
    return out;
}

/* An IANA time zone name ("Europe/Moscow") that this machine's tzdata knows. */
static char *
get_zone(struct loader *L, json_t *obj, const char *base, const char *key, const char *def)
{
    char *z = get_str(L, obj, base, key, def, false, false);
    if (z && !br_tz_known(z)) {
        char *path = join_path(base, key);
        PROBLEM(L, path, "\"%s\" is not a time zone this machine knows (an IANA name such as \"Europe/Moscow\"; "
                         "install tzdata)", z);
        free(path);
        free(z);
        z = NULL;
    }
    return z;
}

/* Reports keys that the schema does not know: typos should not pass silently. */
static void
check_keys(struct loader *L, json_t *obj, const char *base, const char *const *known)
{
    const char *key;
    json_t *v;

    if (!json_is_object(obj))
        return;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; known[i]; i++)
            if (strcmp(key, known[i]) == 0)
                ok = true;
        if (!ok) {
            char *path = join_path(base, key);
            PROBLEM(L, path, "unknown setting");
            free(path);
        }
    }
}

static json_t *
get_obj(struct loader *L, json_t *obj, const char *base, const char *key, bool required)
{
    json_t *v = get(obj, key);
    if (v == NULL) {
        if (required) {
            char *path = join_path(base, key);
            PROBLEM(L, path, "is required");
            free(path);
        }
        return NULL;
    }
    if (!json_is_object(v)) {
        char *path = join_path(base, key);
        PROBLEM(L, path, "must be an object");
        free(path);
        return NULL;
    }
    return v;
}

static void
lower(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* An e-mail in its normal form (see email.h); one that is not an address stays as written. */
static char *
normal_email(char *s)
{
    char *n = s ? br_email_normalize(s, strlen(s)) : NULL;
    if (n == NULL)
        return s;
    free(s);
    return n;
}

static char *
strip_slash(char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

static bool
is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static void
check_url(struct loader *L, const char *base, const char *key, const char *url)
{
    if (url && !is_http_url(url)) {
        char *path = join_path(base, key);
        PROBLEM(L, path, "must start with http:// or https://");
        free(path);
    }
}

static void
check_secret_strength(struct loader *L, const char *base, const char *key, const char *s)
{
    /* Webhook secrets are the only authentication Chatra offers: they must be unguessable. */
    if (s && strlen(s) < 16) {
        char *path = join_path(base, key);
        PROBLEM(L, path, "must be at least 16 characters long (it is the webhook's only authentication)");
        free(path);
    }
    if (s) {
        for (const char *p = s; *p; p++) {
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.' && *p != '~') {
                char *path = join_path(base, key);
                PROBLEM(L, path, "may contain only letters, digits and - _ . ~ (it is part of a URL)");
                free(path);
                break;
            }
        }
    }
}

static const char template_schema[] =
    "{"
    "\"visitor\":{\"name\":\"\",\"email\":\"\",\"phone\":\"\",\"displayed_name\":\"\","
    "\"notes\":\"\",\"city\":\"\",\"country\":\"\",\"pages\":[{\"url\":\"\",\"title\":\"\"}],"
    "\"source\":\"\",\"device\":\"\",\"browser\":\"\",\"os\":\"\",\"ip\":\"\",\"info\":\"*\"},"
    "\"chatra\":\"*\","
    "\"chat\":{\"id\":\"\",\"started_at\":\"\",\"messages\":[{\"author\":\"\",\"text\":\"\","
    "\"text_html\":\"\",\"time\":\"\",\"date\":\"\",\"clock\":\"\",\"type\":\"\",\"is_visitor\":\"\","
    "\"is_agent\":\"\"}]},"
    "\"channel\":{\"name\":\"\"},"
    "\"contact\":{\"id\":\"\"},"
    "\"employee\":{\"name\":\"\",\"email\":\"\"},"
    "\"previous_task\":{\"id\":\"\",\"messages\":[{\"author\":\"\",\"text\":\"\",\"text_html\":\"\",\"time\":\"\","
    "\"date\":\"\",\"clock\":\"\",\"type\":\"\",\"is_visitor\":\"\",\"is_agent\":\"\"}]}"
    "}";

const char *
br_config_template_schema(void)
{
    return template_schema;
}

struct check_ctx {
    struct loader *L;
    const char *where;
};

static void
on_unknown_var(void *arg, const char *var, int line, int col)
{
    struct check_ctx *c = arg;
    br_diag_add(c->L->diag, "%s:%d:%d: unknown template variable \"%s\"", c->where, line, col, var);
}

/*
 * A template comes from an inline field (key) or a file (key_file), or
 * else from the default text shipped in templates/.
 */
static struct br_tpl *
load_template(struct loader *L, json_t *obj, const char *base, const char *key,
              const char *default_file, const char *schema_text)
{
    char *file_key = br_asprintf("%s_file", key);
    char *path = join_path(base, key);
    char *fpath = join_path(base, file_key);
    json_t *inl = get(obj, key);
    json_t *fil = get(obj, file_key);
    char *src = NULL;
    char *where = NULL;
    struct br_tpl *t = NULL;
    int line_off = 0;

    if (inl && fil) {
        PROBLEM(L, path, "set either %s or %s, not both", key, file_key);
    } else if (inl) {
        if (!json_is_string(inl))
            PROBLEM(L, path, "must be a string");
        else {
            src = br_strdup(json_string_value(inl));
            /* Inline templates have no file position of their own: name the key path. */
            where = br_asprintf("%s: %s", L->file, path);
        }
    } else {
        char *file = NULL;
        if (fil) {
            if (!json_is_string(fil))
                PROBLEM(L, fpath, "must be a string");
            else
                file = resolve_relative(L, json_string_value(fil));
        } else if (default_file) {
            file = br_strdup(default_file);
        }
        if (file) {
            int err;
            src = read_file(file, 256 * 1024, &err);
            if (src == NULL)
                PROBLEM(L, fil ? fpath : path, "cannot read template %s: %s", file,
                        err == EFBIG ? "larger than 256 KiB" : strerror(err));
            else
                where = br_strdup(file);
            free(file);
        }
    }
    (void)line_off;
    if (src) {
        struct br_tpl_error te;
        if (br_tpl_compile(&t, src, strlen(src), &te) != 0) {
            br_diag_add(L->diag, "%s:%d:%d: %s", where, te.line, te.col, te.msg);
            t = NULL;
        } else {
            json_error_t je;
            json_t *schema = json_loads(schema_text ? schema_text : template_schema, 0, &je);
            struct check_ctx cc = {L, where};
            br_tpl_check(t, schema, on_unknown_var, &cc);
            json_decref(schema);
        }
    }
    free(src);
    free(where);
    free(file_key);
    free(path);
    free(fpath);
    return t;
}

static bool
is_redmine(const struct br_config *c)
{
    return c->tracker_kind && strcmp(c->tracker_kind, "redmine") == 0;
}

/* The shipped default of a template, in the config's language: templates/<language>/<name>. */
static char *
default_template_path(const struct br_config *c, const char *name)
{
    /* Installed next to the sources; BR_TEMPLATES_DIR is set by CMake. */
    const char *dir = getenv("BR_TEMPLATES_DIR");
    if (dir == NULL || *dir == '\0')
        dir = BR_TEMPLATES_DIR;
    return br_asprintf("%s/%s/%s", dir, c->language && br_texts_language_known(c->language) ? c->language : "en",
                       name);
}

/*
 * A description that does not show the chat messages is fine (each
 * message then goes as a comment), but the admin should know it costs a
 * request per burst; the same for the link to the previous task.
 */
static void
note_description(struct loader *L, const char *base, const struct br_tpl *t)
{
    json_error_t je;
    json_t *schema;

    if (t == NULL)
        return;
    schema = json_loads(template_schema, 0, &je);
    if (!br_tpl_reads(t, schema, "chat.messages[].text") && !br_tpl_reads(t, schema, "chat.messages[].text_html"))
        br_diag_add(&L->cfg->notices,
                    "%s: %s.description does not show the chat messages (chat.messages: text or text_html): "
                    "each message is posted as a comment instead",
                    L->file, base);
    if (!br_tpl_reads(t, schema, "previous_task.id"))
        br_diag_add(&L->cfg->notices,
                    "%s: %s.description does not show previous_task.id: a returning visitor's new task gets a "
                    "comment that links the previous one",
                    L->file, base);
    json_decref(schema);
}

/*
 * texts: the bridge's own words (texts.h), each from "texts.<key>" or
 * "texts.<key>_file", else templates/<language>/<key>.<html|textile|txt>.
 */
static void
load_texts(struct loader *L, json_t *root)
{
    struct br_config *c = L->cfg;
    json_t *texts = get_obj(L, root, "", "texts", false);

    if (texts) {
        const char *key;
        json_t *v;
        json_object_foreach(texts, key, v) {
            bool ok = false;
            for (int t = 0; t < BR_TEXT_COUNT; t++) {
                const char *k = br_text_info(t)->key;
                size_t n = strlen(k);
                if (strcmp(key, k) == 0 || (strncmp(key, k, n) == 0 && strcmp(key + n, "_file") == 0))
                    ok = true;
            }
            if (!ok) {
                char *p = join_path("texts", key);
                PROBLEM(L, p, "unknown text (see templates/en/ for their names)");
                free(p);
            }
        }
    }
    for (int t = 0; t < BR_TEXT_COUNT; t++) {
        const struct br_text_info *info = br_text_info(t);
        char *name = br_asprintf("%s.%s", info->key, !info->rich ? "txt" : is_redmine(c) ? "textile" : "html");
        char *file = default_template_path(c, name);
        c->texts[t] = load_template(L, texts, "texts", info->key, file, info->schema);
        free(name);
        free(file);
    }
}

/* Mail providers: an address there tells nothing about the visitor's company. */
static const char *const default_public_domains[] = {
    "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "outlook.com", "hotmail.com", "live.com",
    "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com",
    "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com", "yandex.ru", "yandex.com", "ya.ru", "mail.ru",
    "inbox.ru", "list.ru", "bk.ru", "rambler.ru", "qq.com", "163.com", "126.com", "naver.com",
};

static void
load_public_domains(struct loader *L, json_t *arr)
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
        if (!json_is_string(v) || json_string_length(v) == 0 || strchr(json_string_value(v), '@')) {
            char *p = br_asprintf("companies.public_domains[%zu]", i);
            PROBLEM(L, p, "must be a domain such as \"gmail.com\"");
            free(p);
            continue;
        }
        c->public_domains[c->n_public_domains] = br_strdup(json_string_value(v));
        lower(c->public_domains[c->n_public_domains++]);
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

static void
load_employees(struct loader *L, json_t *arr)
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
        check_keys(L, e, base, known);
        emp->name = get_str(L, e, base, "name", NULL, true, false);
        emp->email = normal_email(get_str(L, e, base, "email", NULL, true, false));
        /* Without it, the tracker user is found by e-mail (the engine asks the tracker once). */
        emp->tracker_user = get_str(L, e, base, "tracker_user", NULL, false, false);
        emp->chatra_agent_id = get_str(L, e, base, "chatra_agent_id", NULL, false, false);
        if (emp->tracker_user && *emp->tracker_user == '\0') {
            char *p = join_path(base, "tracker_user");
            PROBLEM(L, p, "must not be empty (leave it out to find the tracker user by e-mail)");
            free(p);
        }
        if (emp->email && strchr(emp->email, '@') == NULL) {
            char *p = join_path(base, "email");
            PROBLEM(L, p, "is not an e-mail address");
            free(p);
        }
        for (size_t j = 0; j + 1 < c->n_employees; j++) {
            if (emp->email && c->employees[j].email && strcmp(emp->email, c->employees[j].email) == 0) {
                char *p = join_path(base, "email");
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
load_custom_fields(struct loader *L, json_t *arr, const char *base, struct br_custom_field **out, size_t *n)
{
    static const char *const known[] = {"id", "value", NULL};
    char *p = join_path(base, "custom_fields");
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
                check_keys(L, v, ip, known);
                f->id = get_int(L, v, ip, "id", 0, 1, INT32_MAX, true);
                if (get(v, "value") == NULL)
                    PROBLEM(L, ip, "needs a value template");
                else
                    f->value = load_template(L, v, ip, "value", NULL, NULL);
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
load_default_agent(struct loader *L, json_t *o, const char *base, struct br_channel *ch)
{
    struct br_config *c = L->cfg;
    char *p;

    ch->default_agent_id = get_str(L, o, base, "default_agent_id", NULL, false, false);
    ch->default_agent_email = normal_email(get_str(L, o, base, "default_agent_email", NULL, false, false));
    ch->default_agent_name = get_str(L, o, base, "default_agent_name", NULL, false, false);
    if (ch->default_agent_id && *ch->default_agent_id == '\0') {
        p = join_path(base, "default_agent_id");
        PROBLEM(L, p, "must not be empty");
        free(p);
    }
    if (ch->default_agent_email && strchr(ch->default_agent_email, '@') == NULL) {
        p = join_path(base, "default_agent_email");
        PROBLEM(L, p, "is not an e-mail address");
        free(p);
    } else if (ch->default_agent_email && ch->default_agent_name == NULL) {
        const struct br_employee *emp = br_config_employee_by_email(c, ch->default_agent_email);
        if (emp && emp->name) {
            ch->default_agent_name = br_strdup(emp->name);
        } else {
            p = join_path(base, "default_agent_name");
            PROBLEM(L, p, "is required with default_agent_email (the name the chat shows), unless an employees[] "
                          "entry has that e-mail");
            free(p);
        }
    }
    if (ch->default_agent_id == NULL && ch->default_agent_email == NULL && get(o, "default_agent_id") == NULL &&
        get(o, "default_agent_email") == NULL) {
        p = join_path(base, "default_agent_id");
        PROBLEM(L, p, "is required (or default_agent_email: the Chatra agent's e-mail)");
        free(p);
    }
}

static void
load_channel(struct loader *L, json_t *o, const char *base, struct br_channel *ch)
{
    static const char *const known[] = {"name", "webhook_secret", "chatra", "default_agent_id",
                                        "default_agent_email", "default_agent_name", "employees", "watchers", "send_as_employee",
                                        "new_task_if_no_active", "close_on_leave", "task",
                                        "contact", "merge_policy", NULL};
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

    check_keys(L, o, base, known);
    ch->name = get_str(L, o, base, "name", NULL, true, false);
    if (ch->name) {
        for (const char *s = ch->name; *s; s++) {
            if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') {
                p = join_path(base, "name");
                PROBLEM(L, p, "may contain only letters, digits, - and _ (it is part of the webhook URL)");
                free(p);
                break;
            }
        }
    }
    ch->webhook_secret = get_str(L, o, base, "webhook_secret", NULL, true, true);
    check_secret_strength(L, base, "webhook_secret", ch->webhook_secret);

    p = join_path(base, "chatra");
    chatra = get_obj(L, o, base, "chatra", true);
    check_keys(L, chatra, p, known_chatra);
    if (chatra) {
        ch->chatra_url = strip_slash(get_str(L, chatra, p, "url", "https://app.chatra.io/api", false, false));
        check_url(L, p, "url", ch->chatra_url);
        ch->chatra_public_key = get_str(L, chatra, p, "public_key", NULL, true, true);
        ch->chatra_secret_key = get_str(L, chatra, p, "secret_key", NULL, true, true);
        ch->chatra_rps = get_num(L, chatra, p, "requests_per_second", 5, 0.01, 1000);
    }
    free(p);

    load_default_agent(L, o, base, ch);
    ch->send_as_employee = get_bool(L, o, base, "send_as_employee", true);
    ch->new_task_if_no_active = get_bool(L, o, base, "new_task_if_no_active", true);
    ch->close_on_leave = get_bool(L, o, base, "close_on_leave", true);
    {
        char *mp = get_str(L, o, base, "merge_policy", "email", false, false);
        if (mp && strcmp(mp, "email") == 0)
            ch->merge_policy = BR_MERGE_EMAIL;
        else if (mp && strcmp(mp, "verified") == 0)
            ch->merge_policy = BR_MERGE_VERIFIED;
        else if (mp && strcmp(mp, "off") == 0)
            ch->merge_policy = BR_MERGE_OFF;
        else if (mp) {
            char *path = join_path(base, "merge_policy");
            PROBLEM(L, path, "must be \"email\", \"verified\" or \"off\"");
            free(path);
        }
        free(mp);
    }

    arr = get(o, "employees");
    if (arr && !json_is_array(arr)) {
        p = join_path(base, "employees");
        PROBLEM(L, p, "must be a list of employee e-mails");
        free(p);
    } else if (arr) {
        ch->employees = br_calloc(json_array_size(arr) + 1, sizeof(*ch->employees));
        json_array_foreach(arr, i, v) {
            char *ip = br_asprintf("%s.employees[%zu]", base, i);
            if (!json_is_string(v)) {
                PROBLEM(L, ip, "must be an employee e-mail");
            } else {
                char *email = normal_email(br_strdup(json_string_value(v)));
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

    arr = get(o, "watchers");
    if (arr && !json_is_array(arr)) {
        p = join_path(base, "watchers");
        PROBLEM(L, p, "must be a list of tracker user ids such as \"user:7\"");
        free(p);
    } else if (arr) {
        ch->watchers = br_calloc(json_array_size(arr) + 1, sizeof(*ch->watchers));
        json_array_foreach(arr, i, v) {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                char *ip = br_asprintf("%s.watchers[%zu]", base, i);
                PROBLEM(L, ip, "must be a tracker user id such as \"user:7\"");
                free(ip);
            } else {
                const char *w = json_string_value(v);
                if (is_redmine(c)) {
                    /* Redmine names watchers by numeric user id ("7" or "user:7"). */
                    const char *d = strncmp(w, "user:", 5) == 0 ? w + 5 : w;
                    if (*d == '\0' || strspn(d, "0123456789") != strlen(d)) {
                        char *ip = br_asprintf("%s.watchers[%zu]", base, i);
                        PROBLEM(L, ip, "must be a Redmine user id such as \"7\"");
                        free(ip);
                        continue;
                    }
                    w = d;
                }
                ch->watchers[ch->n_watchers++] = br_strdup(w);
            }
        }
    }

    p = join_path(base, "task");
    task = get_obj(L, o, base, "task", false);
    check_keys(L, task, p, known_task);
    ch->task_template_id = get_int(L, task, p, "template_id", 0, 0, LONG_MAX, false);
    if (ch->task_template_id && is_redmine(c)) {
        char *q = join_path(p, "template_id");
        PROBLEM(L, q, "Redmine has no task templates (the issue is made from title and description)");
        free(q);
    }
    ch->closed_status_id = get_int(L, task, p, "closed_status_id", c->tracker_closed_status_id, 0, LONG_MAX, false);
    if (ch->close_on_leave && ch->closed_status_id == 0) {
        char *q = join_path(p, "closed_status_id");
        PROBLEM(L, q, "is required when close_on_leave is true (a status id of 1 or more; "
                      "tracker.closed_status_id sets it for every channel)");
        free(q);
    }
    load_custom_fields(L, get(task, "custom_fields"), p, &ch->custom_fields, &ch->n_custom_fields);
    {
        char *t1 = default_template_path(c, "task_title.txt");
        /* Planfix texts are HTML; Redmine's are Textile. */
        char *t2 = default_template_path(c, is_redmine(c) ? "task_description.textile" : "task_description.html");
        ch->task_title = load_template(L, task, p, "title", t1, NULL);
        ch->task_description = load_template(L, task, p, "description", t2, NULL);
        free(t1);
        free(t2);
        note_description(L, p, ch->task_description);
    }
    free(p);

    p = join_path(base, "contact");
    contact = get_obj(L, o, base, "contact", false);
    if (contact && is_redmine(c))
        PROBLEM(L, p, "Redmine has no contacts; the visitor's details go into the issue");
    check_keys(L, contact, p, known_contact);
    ch->contact_template_id = get_int(L, contact, p, "template_id", 0, 0, LONG_MAX, false);
    load_custom_fields(L, get(contact, "custom_fields"), p, &ch->contact_fields, &ch->n_contact_fields);
    free(p);
}

static void
load(struct loader *L, json_t *root)
{
    static const char *const known[] = {"listen", "store", "log", "tracker", "employees",
                                        "channels", "limits", "companies", "language", "timezone", "texts", NULL};
    static const char *const known_companies[] = {"enabled", "template_id", "public_domains", NULL};
    static const char *const known_listen[] = {"host", "port", NULL};
    static const char *const known_store[] = {"kind", "path", "retention_days", NULL};
    static const char *const known_log[] = {"level", NULL};
    static const char *const known_tracker[] = {"kind", "url", "token", "webhook_secret",
                                                "requests_per_second", "timeout_ms",
                                                "poll_interval_s", "project", "api_key",
                                                "closed_status_id", "coalesce_ms", "timezone", NULL};
    static const char *const known_limits[] = {"max_body_bytes", "per_address_rps", "per_address_burst",
                                               "bad_secrets_per_minute", NULL};
    struct br_config *c = L->cfg;
    json_t *o, *arr, *v;
    size_t i;

    if (!json_is_object(root)) {
        br_diag_add(L->diag, "%s: the top level must be a JSON object", L->file);
        return;
    }
    check_keys(L, root, "", known);

    o = get_obj(L, root, "", "listen", false);
    check_keys(L, o, "listen", known_listen);
    c->listen_host = get_str(L, o, "listen", "host", "127.0.0.1", false, false);
    c->listen_port = (int)get_int(L, o, "listen", "port", 8080, 0, 65535, false);

    o = get_obj(L, root, "", "limits", false);
    check_keys(L, o, "limits", known_limits);
    c->max_body = (size_t)get_int(L, o, "limits", "max_body_bytes", 1024 * 1024, 1024,
                                  64L * 1024 * 1024, false);
    c->per_address_rps = get_num(L, o, "limits", "per_address_rps", 0, 0, 1e6);
    c->per_address_burst = get_num(L, o, "limits", "per_address_burst", c->per_address_rps * 2, 1, 1e7);
    c->bad_secrets_per_minute = get_num(L, o, "limits", "bad_secrets_per_minute", 20, 0, 1e6);

    o = get_obj(L, root, "", "store", false);
    check_keys(L, o, "store", known_store);
    c->store_kind = get_str(L, o, "store", "kind", "sqlite", false, false);
    if (c->store_kind && strcmp(c->store_kind, "sqlite") != 0)
        /* Named as written in the file: the value behind an env: or file: reference may be a secret. */
        PROBLEM(L, "store.kind", "\"%s\" is not supported (supported: sqlite)",
                json_string_value(get(o, "kind")));
    {
        char *sp = get_str(L, o, "store", "path", "var/bridge.db", false, false);
        if (sp && strcmp(sp, ":memory:") != 0 && sp[0] != '/') {
            c->store_path = resolve_relative(L, sp);
            free(sp);
        } else {
            c->store_path = sp;
        }
    }

    c->retention_days = get_num(L, get_obj(L, root, "", "store", false), "store", "retention_days", 0, 0, 36500);

    o = get_obj(L, root, "", "log", false);
    check_keys(L, o, "log", known_log);
    c->log_level = get_str(L, o, "log", "level", "info", false, false);
    if (c->log_level) {
        enum br_log_level lvl;
        if (br_log_parse_level(c->log_level, &lvl) != 0)
            PROBLEM(L, "log.level", "must be one of debug, info, warn, error");
    }

    c->language = get_str(L, root, "", "language", "en", false, false);
    if (c->language && !br_texts_language_known(c->language))
        PROBLEM(L, "language", "\"%s\" is not supported (supported: en, ru)", json_string_value(get(root, "language")));
    c->timezone = get_zone(L, root, "", "timezone", "UTC");

    o = get_obj(L, root, "", "tracker", true);
    check_keys(L, o, "tracker", known_tracker);
    if (o) {
        bool redmine;
        c->tracker_kind = get_str(L, o, "tracker", "kind", NULL, true, false);
        if (c->tracker_kind && strcmp(c->tracker_kind, "planfix") != 0 && strcmp(c->tracker_kind, "redmine") != 0)
            PROBLEM(L, "tracker.kind", "\"%s\" is not supported (supported: planfix, redmine)",
                    json_string_value(get(o, "kind")));
        redmine = c->tracker_kind && strcmp(c->tracker_kind, "redmine") == 0;
        c->tracker_url = strip_slash(get_str(L, o, "tracker", "url", NULL, true, false));
        check_url(L, "tracker", "url", c->tracker_url);
        if (redmine) {
            /* Redmine: an admin's API key (it writes as the employees), a project, no webhooks. */
            static const char *const planfix_only[] = {"token", "webhook_secret", NULL};
            for (size_t k = 0; planfix_only[k]; k++) {
                if (get(o, planfix_only[k])) {
                    char *p = join_path("tracker", planfix_only[k]);
                    PROBLEM(L, p, "is a Planfix setting; Redmine uses api_key and has no webhooks (replies are polled)");
                    free(p);
                }
            }
            c->tracker_token = get_str(L, o, "tracker", "api_key", NULL, true, true);
            c->tracker_project = get_str(L, o, "tracker", "project", NULL, true, false);
        } else {
            static const char *const redmine_only[] = {"api_key", "project", NULL};
            for (size_t k = 0; redmine_only[k]; k++) {
                if (c->tracker_kind && get(o, redmine_only[k])) {
                    char *p = join_path("tracker", redmine_only[k]);
                    PROBLEM(L, p, "is a Redmine setting (tracker.kind is \"%s\")", c->tracker_kind);
                    free(p);
                }
            }
            c->tracker_token = get_str(L, o, "tracker", "token", NULL, true, true);
            c->tracker_webhook_secret = get_str(L, o, "tracker", "webhook_secret", NULL, true, true);
            check_secret_strength(L, "tracker", "webhook_secret", c->tracker_webhook_secret);
        }
        c->tracker_closed_status_id = get_int(L, o, "tracker", "closed_status_id", 0, 1, LONG_MAX, false);
        c->tracker_timezone = get_zone(L, o, "tracker", "timezone", NULL);
        /* Planfix allows 1 request per second; a self-hosted Redmine takes more. */
        c->tracker_rps = get_num(L, o, "tracker", "requests_per_second", redmine ? 5 : 1, 0.01, 1000);
        c->tracker_timeout_ms = get_int(L, o, "tracker", "timeout_ms", 15000, 100, 600000, false);
        c->coalesce_ms = get_int(L, o, "tracker", "coalesce_ms", 2000, 0, 60000, false);
        /* Redmine has no webhooks: polling is how replies arrive, so it runs more often. */
        c->poll_interval_s = get_int(L, o, "tracker", "poll_interval_s", redmine ? 10 : 60, 0, 86400, false);
        if (redmine && c->poll_interval_s == 0)
            PROBLEM(L, "tracker.poll_interval_s", "must be 1 or more for Redmine: polling is how replies arrive");
    }

    load_texts(L, root);

    o = get_obj(L, root, "", "companies", false);
    check_keys(L, o, "companies", known_companies);
    c->companies = get_bool(L, o, "companies", "enabled", false);
    if (c->companies && is_redmine(c))
        PROBLEM(L, "companies.enabled", "Redmine has no contacts or companies; the visitor's details go into the issue");
    c->company_template_id = get_int(L, o, "companies", "template_id", 0, 0, LONG_MAX, false);
    load_public_domains(L, get(o, "public_domains"));

    load_employees(L, get(root, "employees"));

    arr = get(root, "channels");
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
            load_channel(L, v, base, ch);
        for (size_t j = 0; j + 1 < c->n_channels; j++) {
            if (ch->name && c->channels[j].name && strcmp(ch->name, c->channels[j].name) == 0) {
                char *p = join_path(base, "name");
                PROBLEM(L, p, "\"%s\" is already used by channels[%zu]", ch->name, j);
                free(p);
            }
        }
        free(base);
    }
}

int
br_config_load(const char *path, struct br_config **out, struct br_diag *diag)
{
    struct loader L;
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
    load(&L, root);
    json_decref(root);
    if (diag->n > before) {
        br_config_free(c);
        return BR_EINVAL;
    }
    *out = c;
    return 0;
}

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

void
br_config_free(struct br_config *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->dir);
    free(c->listen_host);
    free(c->store_kind);
    free(c->store_path);
    free(c->log_level);
    free(c->language);
    free(c->timezone);
    free(c->tracker_timezone);
    free(c->tracker_kind);
    free(c->tracker_url);
    free(c->tracker_token);
    free(c->tracker_webhook_secret);
    free(c->tracker_project);
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
