/*
 * admin_sessions.c - the admin page's logins, kept in memory (a restart
 * logs everyone out): a fixed table of sessions, each with a random id
 * (the cookie's value) and its own CSRF token, both 32 bytes from the
 * kernel's random source; and reading a cookie out of a Cookie header.
 */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct br_admin *
br_admin_new(const char *version, int64_t started_at)
{
    struct br_admin *a = br_calloc(1, sizeof(*a));

    a->version = version;
    a->started_at = started_at;
    return a;
}

void
br_admin_free(struct br_admin *a)
{
    if (a == NULL)
        return;
    /* The table holds secrets: gone with the process, but not left in freed memory either. */
    if (a->token != NULL) {
        memset(a->token, 0, strlen(a->token));
        free(a->token);
    }
    memset(a, 0, sizeof(*a));
    free(a);
}

int
br_admin_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[64];
    size_t got = 0;

    if (n > sizeof(buf))
        return BR_EINVAL;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return BR_EIO; /* never a guessable fallback */
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * n] = '\0';
    memset(buf, 0, sizeof(buf));
    return 0;
}

const struct br_admin_session *
br_admin_session_new(struct br_admin *a, int64_t now, int64_t ttl_ms)
{
    struct br_admin_session *slot = NULL;

    /* A free or expired slot, else the one that would end first. */
    for (size_t i = 0; i < BR_ADMIN_MAX_SESSIONS; i++) {
        struct br_admin_session *s = &a->sessions[i];
        if (s->expires <= now) {
            slot = s;
            break;
        }
        if (slot == NULL || s->expires < slot->expires)
            slot = s;
    }
    if (br_admin_random_hex(slot->id, BR_ADMIN_SECRET_HEX / 2) != 0 ||
        br_admin_random_hex(slot->csrf, BR_ADMIN_SECRET_HEX / 2) != 0) {
        memset(slot, 0, sizeof(*slot));
        return NULL;
    }
    slot->expires = now + ttl_ms;
    slot->serial = ++a->serials;
    return slot;
}

const struct br_admin_session *
br_admin_session_find(struct br_admin *a, const char *id, int64_t now)
{
    const struct br_admin_session *found = NULL;

    if (id == NULL || strlen(id) != BR_ADMIN_SECRET_HEX)
        return NULL;
    /* Every live slot is compared in full: the time taken says nothing of which one matched, or how far. */
    for (size_t i = 0; i < BR_ADMIN_MAX_SESSIONS; i++) {
        const struct br_admin_session *s = &a->sessions[i];
        if (s->expires > now && br_secret_equal(id, s->id))
            found = s;
    }
    return found;
}

void
br_admin_session_end(struct br_admin *a, const char *id)
{
    for (size_t i = 0; id != NULL && i < BR_ADMIN_MAX_SESSIONS; i++)
        if (a->sessions[i].expires != 0 && br_secret_equal(id, a->sessions[i].id))
            memset(&a->sessions[i], 0, sizeof(a->sessions[i]));
}

void
br_admin_sessions_follow(struct br_admin *a, const char *token, struct br_http_server *server)
{
    if (a->token == NULL ? token == NULL : token != NULL && strcmp(a->token, token) == 0)
        return;
    for (size_t i = 0; a->token != NULL && i < BR_ADMIN_MAX_SESSIONS; i++) {
        if (a->sessions[i].expires == 0)
            continue;
        br_http_server_ws_drop(server, a->sessions[i].serial);
        memset(&a->sessions[i], 0, sizeof(a->sessions[i]));
    }
    br_http_server_ws_drop(server, a->bearer_serial);
    if (a->token != NULL) {
        memset(a->token, 0, strlen(a->token));
        free(a->token);
    }
    a->token = token != NULL ? br_strdup(token) : NULL;
    a->bearer_serial = token != NULL ? ++a->serials : 0;
}

char *
br_admin_cookie(const char *header, const char *name, size_t *start)
{
    size_t nl = strlen(name);
    const char *p = header + *start;

    /* "a=1; br_admin=...; b=2": pairs split by ';', spaces around them ignored. */
    while (*p != '\0') {
        const char *end = strchr(p, ';'), *eq;
        size_t len;

        while (*p == ' ' || *p == '\t')
            p++;
        if (end == NULL)
            end = p + strlen(p);
        eq = memchr(p, '=', (size_t)(end - p));
        if (eq != NULL && (size_t)(eq - p) == nl && strncmp(p, name, nl) == 0) {
            const char *v = eq + 1;
            len = (size_t)(end - v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
                v++;
                len -= 2;
            }
            *start = (size_t)(*end == ';' ? end + 1 - header : end - header);
            return br_strndup(v, len);
        }
        p = *end == ';' ? end + 1 : end;
    }
    *start = (size_t)(p - header);
    return NULL;
}
