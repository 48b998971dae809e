/*
 * config_values.c - reading the config's values: "env:NAME" and
 * "file:PATH" references, typed getters that report every problem and go
 * on, and the checks of common value shapes (see config_load.h).
 */
#include "config_load.h"

#include "email.h"
#include "log.h"
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void __attribute__((format(printf, 3, 4)))
br_conf_problem(struct br_conf_loader *L, const char *path, const char *fmt, ...)
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

char *
br_conf_path(const char *a, const char *b)
{
    return br_asprintf("%s%s%s", a, *a ? "." : "", b);
}

char *
br_conf_read_file(const char *path, size_t max, int *err)
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

char *
br_conf_relative(struct br_conf_loader *L, const char *p)
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
br_conf_resolve(struct br_conf_loader *L, const char *path, const char *v, bool secret)
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
        char *fp = br_conf_relative(L, v + 5);
        int err;
        out = br_conf_read_file(fp, 64 * 1024, &err);
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

char *
br_conf_string(struct br_conf_loader *L, json_t *v, const char *path, bool secret)
{
    return json_is_string(v) ? br_conf_resolve(L, path, json_string_value(v), secret) : NULL;
}

json_t *
br_conf_get(json_t *obj, const char *key)
{
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

char *
br_conf_str(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, const char *def,
        bool required, bool secret)
{
    json_t *v = br_conf_get(obj, key);
    char *path = br_conf_path(base, key);
    char *out = NULL;

    if (v == NULL || json_is_null(v)) {
        if (required)
            PROBLEM(L, path, "is required");
        else if (def)
            out = br_strdup(def);
    } else if (!json_is_string(v)) {
        PROBLEM(L, path, "must be a string");
    } else {
        out = br_conf_resolve(L, path, json_string_value(v), secret);
        if (out && required && *out == '\0') {
            PROBLEM(L, path, "must not be empty");
            free(out);
            out = NULL;
        }
    }
    free(path);
    return out;
}

long
br_conf_int(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, long def, long min,
        long max, bool required)
{
    json_t *v = br_conf_get(obj, key);
    char *path = br_conf_path(base, key);
    long out = def;

    if (v == NULL) {
        if (required)
            PROBLEM(L, path, "is required");
    } else if (!json_is_integer(v)) {
        PROBLEM(L, path, "must be an integer");
    } else if (json_integer_value(v) < min || json_integer_value(v) > max) {
        if (max == LONG_MAX)
            PROBLEM(L, path, "must be %ld or more", min);
        else
            PROBLEM(L, path, "must be between %ld and %ld", min, max);
    } else {
        out = (long)json_integer_value(v);
    }
    free(path);
    return out;
}

double
br_conf_num(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, double def, double min,
        double max)
{
    json_t *v = br_conf_get(obj, key);
    char *path = br_conf_path(base, key);
    double out = def;

    if (v == NULL) {
        /* default */
    } else if (!json_is_number(v)) {
        PROBLEM(L, path, "must be a number");
    } else if (json_number_value(v) < min || json_number_value(v) > max) {
        PROBLEM(L, path, "must be between %.15g and %.15g", min, max);
    } else {
        out = json_number_value(v);
    }
    free(path);
    return out;
}

bool
br_conf_bool(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, bool def)
{
    json_t *v = br_conf_get(obj, key);
    bool out = def;

    if (v != NULL) {
        if (json_is_boolean(v)) {
            out = json_is_true(v);
        } else {
            char *path = br_conf_path(base, key);
            PROBLEM(L, path, "must be true or false");
            free(path);
        }
    }
    return out;
}

/* An IANA time zone name ("Europe/Moscow") that this machine's tzdata knows. */
char *
br_conf_zone(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, const char *def)
{
    char *z = br_conf_str(L, obj, base, key, def, false, false);
    if (z && !br_tz_known(z)) {
        char *path = br_conf_path(base, key);
        PROBLEM(L, path, "\"%s\" is not a time zone this machine knows (an IANA name such as \"Europe/Moscow\"; "
                         "install tzdata)", z);
        free(path);
        free(z);
        z = NULL;
    }
    return z;
}

/* Reports keys that the schema does not know: typos should not pass silently. */
void
br_conf_keys(struct br_conf_loader *L, json_t *obj, const char *base, const char *const *known)
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
            char *path = br_conf_path(base, key);
            PROBLEM(L, path, "unknown setting");
            free(path);
        }
    }
}

/* Reports each of keys that obj holds, with why: a setting of another kind. */
void
br_conf_refuse(struct br_conf_loader *L, json_t *obj, const char *base, const char *const *keys, const char *why)
{
    for (size_t i = 0; keys[i]; i++) {
        if (br_conf_get(obj, keys[i])) {
            char *path = br_conf_path(base, keys[i]);
            PROBLEM(L, path, "%s", why);
            free(path);
        }
    }
}

json_t *
br_conf_obj(struct br_conf_loader *L, json_t *obj, const char *base, const char *key, bool required)
{
    json_t *v = br_conf_get(obj, key);
    if (v == NULL) {
        if (required) {
            char *path = br_conf_path(base, key);
            PROBLEM(L, path, "is required");
            free(path);
        }
        return NULL;
    }
    if (!json_is_object(v)) {
        char *path = br_conf_path(base, key);
        PROBLEM(L, path, "must be an object");
        free(path);
        return NULL;
    }
    return v;
}

void
br_conf_lower(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* An e-mail in its normal form (see email.h); one that is not an address stays as written. */
char *
br_conf_email(char *s)
{
    char *n = s ? br_email_normalize(s, strlen(s)) : NULL;
    if (n == NULL)
        return s;
    free(s);
    return n;
}

char *
br_conf_strip_slash(char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

static bool
br_conf_is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

void
br_conf_check_url(struct br_conf_loader *L, const char *base, const char *key, const char *url)
{
    if (url && !br_conf_is_http_url(url)) {
        char *path = br_conf_path(base, key);
        PROBLEM(L, path, "must start with http:// or https://");
        free(path);
    }
}

void
br_conf_check_secret(struct br_conf_loader *L, const char *base, const char *key, const char *s)
{
    /* Webhook secrets are the only authentication Chatra offers: they must be unguessable. */
    if (s && strlen(s) < 16) {
        char *path = br_conf_path(base, key);
        PROBLEM(L, path, "must be at least 16 characters long (it is the webhook's only authentication)");
        free(path);
    }
    if (s) {
        for (const char *p = s; *p; p++) {
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.' && *p != '~') {
                char *path = br_conf_path(base, key);
                PROBLEM(L, path, "may contain only letters, digits and - _ . ~ (it is part of a URL)");
                free(path);
                break;
            }
        }
    }
}

