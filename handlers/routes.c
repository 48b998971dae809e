#include "handlers.h"

#include "admin.h"
#include "bridge/config.h"
#include "bridge/engine.h"
#include "bridge/log.h"
#include "bridge/metrics.h"
#include "bridge/notify.h"
#include "bridge/ratelimit.h"
#include "bridge/refusals.h"
#include "bridge/store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 4

/*
 * The route table: one row per inbound route.  A pattern segment ":x"
 * captures one path segment.
 */
static const struct route {
    const char *method;
    const char *pattern;
    void (*fn)(struct br_handler_ctx *, const struct br_http_request *, struct br_http_response *, char **);
} routes[] = {
    {"POST", "/webhooks/chatra/:channel/:secret", br_handle_chatra_webhook},
    {"POST", "/webhooks/planfix/:secret", br_handle_planfix_webhook},
    {"GET", "/healthz", br_handle_health},
    {"GET", "/metrics", br_handle_metrics},
    /* The admin page (admin.h): off, every /admin/ path is a 404. */
    {"GET", "/admin", br_handle_admin_page},
    {"GET", "/admin/login", br_handle_admin_page},
    {"POST", "/admin/login", br_handle_admin_login},
    {"POST", "/admin/logout", br_handle_admin_logout},
    {"GET", "/admin/api/session", br_handle_admin_session},
    {"GET", "/admin/api/overview", br_handle_admin_overview},
    {"GET", "/admin/api/conversations", br_handle_admin_conversations},
    {"GET", "/admin/api/conversations/:id", br_handle_admin_conversation},
    {"GET", "/admin/api/identities", br_handle_admin_identities},
    {"POST", "/admin/api/merges/:id/unmerge", br_handle_admin_unmerge},
    {"GET", "/admin/api/dead-letters", br_handle_admin_dead_letters},
    {"POST", "/admin/api/dead-letters/:id/retry", br_handle_admin_retry},
    {"POST", "/admin/api/dead-letters/:id/discard", br_handle_admin_discard},
    {"GET", "/admin/:file", br_handle_admin_static},
};

/*
 * Webhooks accepted in this loop turn, by route and channel: their answer
 * is 200 or 503 as the turn's commit goes, so they are counted only then
 * (br_handlers_flush).  A handful of entries (one per channel at most).
 */
struct br_held_webhooks {
    struct held {
        const char *source;
        char *channel;
        unsigned n;
    } *items;
    size_t n;
};

void
br_handler_count(struct br_handler_ctx *h, const char *source, const char *channel, const char *result)
{
    struct br_held_webhooks *hw;
    size_t i;

    if (strcmp(result, BR_WEBHOOK_ACCEPTED) != 0) {
        br_metrics_add(BR_METRIC_WEBHOOKS, BR_LABELS(source, channel, result), 1);
        return;
    }
    if (h->held == NULL)
        h->held = br_calloc(1, sizeof(*h->held));
    hw = h->held;
    for (i = 0; i < hw->n; i++)
        if (strcmp(hw->items[i].source, source) == 0 && strcmp(hw->items[i].channel, channel) == 0)
            break;
    if (i == hw->n) {
        hw->items = br_realloc(hw->items, (hw->n + 1) * sizeof(*hw->items));
        hw->items[hw->n++] = (struct held){source, br_strdup(channel), 0};
    }
    hw->items[i].n++;
}

void
br_handlers_dispose(struct br_handler_ctx *h)
{
    struct br_held_webhooks *hw = h->held;

    if (hw == NULL)
        return;
    for (size_t i = 0; i < hw->n; i++)
        free(hw->items[i].channel);
    free(hw->items);
    free(hw);
    h->held = NULL;
}

/* Counts the held webhooks as accepted (stored) or unstored, and forgets them. */
static void
settle_held(struct br_handler_ctx *h, bool stored)
{
    struct br_held_webhooks *hw = h->held;

    for (size_t i = 0; hw != NULL && i < hw->n; i++)
        br_metrics_add(BR_METRIC_WEBHOOKS,
                       BR_LABELS(hw->items[i].source, hw->items[i].channel,
                                 stored ? BR_WEBHOOK_ACCEPTED : BR_WEBHOOK_UNSTORED),
                       hw->items[i].n);
    br_handlers_dispose(h);
}

/* The route and channel of a webhook refused before its handler ran; NULL for other paths. */
static const char *
webhook_source(struct br_handler_ctx *h, const char *path, const char **channel)
{
    static const char chatra[] = "/webhooks/chatra/";
    const struct br_channel *ch = NULL;

    *channel = "";
    if (strncmp(path, chatra, sizeof(chatra) - 1) == 0) {
        /* Only a configured name becomes a label: never the request's own bytes. */
        char *name = br_strndup(path + sizeof(chatra) - 1, strcspn(path + sizeof(chatra) - 1, "/"));
        ch = br_config_channel(h->cfg, name);
        free(name);
        if (ch != NULL)
            *channel = ch->name;
        return "chatra";
    }
    if (strncmp(path, "/webhooks/planfix/", 18) == 0 || strcmp(path, "/webhooks/planfix") == 0)
        return "planfix";
    return NULL;
}

void
br_respond_error(struct br_http_response *res, int status, const char *msg)
{
    /*
     * The reason may quote untrusted input (a parser's view of a body cut
     * inside a UTF-8 character): only printable ASCII goes into the answer.
     */
    char *clean = br_strdup(msg ? msg : "");
    json_t *o;
    char *text;

    for (char *p = clean; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    o = json_pack("{s:s}", "error", clean);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    res->status = status;
    res->content_type = "application/json";
    br_buf_reset(&res->body);
    br_buf_puts(&res->body, text ? text : "{\"error\":\"bad request\"}");
    free(text);
    json_decref(o);
    free(clean);
}

void
br_respond_ok(struct br_http_response *res)
{
    res->status = 200;
    res->content_type = "application/json";
    br_buf_reset(&res->body);
    br_buf_puts(&res->body, "{\"ok\":true}");
}

int
br_secret_equal(const char *given, const char *expected)
{
    size_t gl = strlen(given), el = strlen(expected);
    unsigned char diff = (unsigned char)(gl != el);

    /* Walk the expected length whatever was given, so timing tells nothing. */
    for (size_t i = 0; i < el; i++)
        diff |= (unsigned char)(expected[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

/* Splits path into segments and matches the pattern; fills params (owned by caller). */
static int
match(const char *pattern, const char *path, char **params, size_t *np)
{
    const char *p = pattern, *s = path;

    *np = 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        const char *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (*p == ':') {
            /* An empty secret must reach the handler, which answers 401 rather than 404. */
            if ((sl == 0 && pe != NULL) || *np == MAX_PARAMS)
                return 0;
            params[(*np)++] = br_strndup(s, sl);
        } else if (pl != sl || strncmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl;
        s += sl;
    }
    /* A trailing slash on the request is forgiven. */
    if (*s == '/' && s[1] == '\0')
        s++;
    /* "/webhooks/planfix/" ends where the pattern wants a last segment: capture it empty. */
    if (*s == '\0' && p[0] == '/' && p[1] == ':' && strchr(p + 1, '/') == NULL && *np < MAX_PARAMS) {
        params[(*np)++] = br_strdup("");
        p += strlen(p);
    }
    return *p == '\0' && *s == '\0';
}

bool
br_handler_secret_failed(struct br_handler_ctx *h, const struct br_http_request *req)
{
    return h->bad_secret == NULL || br_ratelimit_take(h->bad_secret, req->remote_addr, br_now_ms());
}

/*
 * The limiters are made from the config: at start, and again when a
 * reload changes their settings (one kept keeps what each address used).
 */
void
br_handlers_configure(struct br_handler_ctx *h, const struct br_config *cfg)
{
    const struct br_config *old = h->cfg;

    if (old == NULL || old->per_address_rps != cfg->per_address_rps ||
        old->per_address_burst != cfg->per_address_burst) {
        br_ratelimit_free(h->per_address);
        h->per_address =
            cfg->per_address_rps > 0 ? br_ratelimit_new(cfg->per_address_rps, cfg->per_address_burst) : NULL;
    }
    if (old == NULL || old->bad_secrets_per_minute != cfg->bad_secrets_per_minute) {
        br_ratelimit_free(h->bad_secret);
        /* A burst of bad_secrets_per_minute, refilled over a minute: guessing secrets takes forever. */
        h->bad_secret = cfg->bad_secrets_per_minute > 0
                            ? br_ratelimit_new(cfg->bad_secrets_per_minute / 60.0, cfg->bad_secrets_per_minute)
                            : NULL;
    }
    h->cfg = cfg;
    /* A new admin.token, or none, ends the old one's logins and WebSockets at once. */
    if (h->admin != NULL)
        br_admin_sessions_follow(h->admin, cfg->admin_token, h->server);
}

void
br_handlers_unconfigure(struct br_handler_ctx *h)
{
    br_ratelimit_free(h->per_address);
    br_ratelimit_free(h->bad_secret);
    h->per_address = h->bad_secret = NULL;
}

void
br_handler_refused(struct br_handler_ctx *h, const struct br_http_request *req, int status, const char *reason,
                   const char *detail)
{
    br_refusals_note(h->refusals, req->remote_addr, status, reason, detail, br_now_ms());
}

/* "POST /webhooks/chatra/shop/...": a webhook path's last segment (its secret) is left out of the log. */
static char *
shown_request(const struct br_http_request *req)
{
    const char *last = strrchr(req->path, '/');

    if (strncmp(req->path, "/webhooks/", 10) == 0 && last != NULL && last > req->path + 9)
        return br_asprintf("%s %.*s/...", req->method, (int)(last - req->path), req->path);
    return br_asprintf("%s %s", req->method, req->path);
}

void
br_handlers_refused_by_server(void *ctx, const struct br_http_request *req, int status)
{
    char *shown = shown_request(req);

    br_handler_refused(ctx, req, status, status == 413 ? "body too large" : "malformed chunked body", shown);
    free(shown);
}

static void
refuse_request(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
               int status, const char *reason)
{
    char *shown = shown_request(req);

    br_respond_error(res, status, reason);
    br_handler_refused(h, req, status, reason, shown);
    free(shown);
}

/* The route's handler, with a log context of its own (a webhook's handler adds its channel). */
static void
run_route(const struct route *rt, struct br_handler_ctx *h, const struct br_http_request *req,
          struct br_http_response *res, char **params)
{
    struct br_log_ctx saved;

    br_log_ctx_get(&saved);
    br_log_ctx_set(NULL);
    rt->fn(h, req, res, params);
    br_log_ctx_set(&saved);
}

void
br_handlers_dispatch(void *ctx, const struct br_http_request *req, struct br_http_response *res)
{
    struct br_handler_ctx *h = ctx;
    int path_matched = 0;

    /* Webhook routes only: /healthz stays answerable for monitors. */
    if (h->per_address && strncmp(req->path, "/webhooks/", 10) == 0 &&
        !br_ratelimit_take(h->per_address, req->remote_addr, br_now_ms())) {
        const char *channel;
        const char *source = webhook_source(h, req->path, &channel);
        if (source != NULL)
            br_handler_count(h, source, channel, BR_WEBHOOK_THROTTLED);
        refuse_request(h, req, res, 429, "too many requests from this address");
        return;
    }

    for (size_t i = 0; i < BR_ARRAY_SIZE(routes); i++) {
        char *params[MAX_PARAMS] = {0};
        size_t np = 0;
        int ok = match(routes[i].pattern, req->path, params, &np);
        if (ok && strcmp(routes[i].method, req->method) == 0)
            run_route(&routes[i], h, req, res, params);
        else if (ok)
            path_matched = 1;
        for (size_t k = 0; k < np; k++)
            free(params[k]);
        if (ok && strcmp(routes[i].method, req->method) == 0)
            return;
    }
    if (path_matched)
        refuse_request(h, req, res, 405, "method not allowed");
    else
        refuse_request(h, req, res, 404, "no such endpoint");
    /* Every answer under /admin/ carries the page's headers while it is on. */
    if (h->admin != NULL && h->cfg->admin_token != NULL && strncmp(req->path, "/admin/", 7) == 0)
        br_admin_headers(res);
}

int
br_handlers_flush(void *ctx)
{
    struct br_handler_ctx *h = ctx;
    size_t n = 0;
    int rc = br_store_inbox_flush(h->store, &n);

    settle_held(h, rc == 0);
    if (rc) {
        /* A store that refuses writes (disk full) said so once: not a line per refused turn. */
        br_log(br_store_failing(h->store) ? BR_LOG_DEBUG : BR_LOG_ERROR,
               "webhooks: cannot store this turn's events (%s); answered 503, the senders try again", br_strerror(rc));
        return rc;
    }
    if (n > 0 && h->engine)
        br_engine_kick(h->engine, n);
    if (n > 0)
        br_notify_overview(); /* the admin page's inbox count */
    return 0;
}
