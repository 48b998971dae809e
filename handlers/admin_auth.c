/*
 * admin_auth.c - who may use the admin page: the gate every admin route
 * passes (off, login, Bearer token, CSRF), and its own routes:
 *
 *   POST /admin/login        token=... (a form) or {"token": ...} (JSON): a session cookie
 *   POST /admin/logout       ends the session and its WebSockets (CSRF)
 *   GET  /admin/api/session  {"csrf": ...}: what the page sends back with each POST
 *
 * and the check of a WebSocket upgrade (br_handlers_ws_accept).  A wrong
 * token (at the login or as a Bearer token) counts against the address
 * like a wrong webhook secret: too many get 429 for a while.  The token is
 * compared in constant time; the session cookie is HttpOnly, SameSite=Strict
 * and bound to /admin/; each session has its own CSRF token, and a POST of
 * a cookie session must carry it in X-CSRF-Token.
 */
#include "admin.h"

#include "bridge/config.h"
#include "bridge/log.h"
#include "bridge/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
br_admin_json(struct br_http_response *res, int status, json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);

    res->status = status;
    res->content_type = "application/json";
    br_buf_reset(&res->body);
    br_buf_puts(&res->body, text != NULL ? text : "{}");
    free(text);
    json_decref(o);
}

int64_t
br_admin_id(const char *segment)
{
    char *end;
    long long v;

    if (segment == NULL || *segment < '1' || *segment > '9' || strlen(segment) > 18)
        return 0;
    v = strtoll(segment, &end, 10);
    return *end == '\0' && v > 0 ? (int64_t)v : 0;
}

static bool
admin_on(const struct br_handler_ctx *h)
{
    return h->admin != NULL && h->cfg->admin_token != NULL;
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *
bearer(const struct br_http_request *req)
{
    const char *a = br_admin_hdr(req->authorization);

    if (strncasecmp(a, "Bearer ", 7) != 0)
        return NULL;
    a += 7;
    while (*a == ' ')
        a++;
    return a;
}

/* The live session named by the request's cookie (several cookies of the name: the first that is live). */
static const struct br_admin_session *
cookie_session(struct br_handler_ctx *h, const struct br_http_request *req)
{
    const char *header = br_admin_hdr(req->cookie);
    const struct br_admin_session *s = NULL;
    size_t at = 0;
    char *id;

    while (s == NULL && (id = br_admin_cookie(header, BR_ADMIN_COOKIE, &at)) != NULL) {
        s = br_admin_session_find(h->admin, id, br_now_ms());
        free(id);
    }
    return s;
}

/* A wrong token: 401, or 429 once the address has sent too many. */
static void
wrong_token(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res, bool form)
{
    bool allowed = br_handler_secret_failed(h, req);
    int status = allowed ? 401 : 429;
    const char *why = allowed ? "wrong token" : "too many wrong tokens from this address; wait a minute";

    br_handler_refused(h, req, status, allowed ? "wrong admin token" : "too many wrong admin tokens", NULL);
    if (form) {
        /* The login page again, saying why. */
        char *text = NULL;
        if (br_admin_file(res, "index.html", status)) {
            const char *mark = strstr(res->body.data, "<!--BR_LOGIN_ERROR-->");
            if (mark != NULL) {
                text = br_asprintf("%.*s<p class=\"login-error\" id=\"login-error\" role=\"alert\">%s</p>%s",
                                   (int)(mark - res->body.data), res->body.data,
                                   allowed ? "Wrong token." : "Too many wrong tokens from this address; wait a minute.",
                                   mark + strlen("<!--BR_LOGIN_ERROR-->"));
                br_buf_reset(&res->body);
                br_buf_puts(&res->body, text);
                free(text);
            }
            return;
        }
    }
    br_admin_json(res, status, json_pack("{s:s}", "error", why));
}

bool
br_admin_enter(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
               enum br_admin_need need, struct br_admin_who *who)
{
    const char *token;

    memset(who, 0, sizeof(*who));
    if (!admin_on(h)) {
        /* As the route table answers a path it does not know. */
        br_respond_error(res, 404, "no such endpoint");
        br_handler_refused(h, req, 404, "no such endpoint", req->path);
        return false;
    }
    br_admin_headers(res);
    /* A new admin.token (a reload) has ended the sessions of the old one. */
    br_admin_sessions_follow(h->admin, h->cfg->admin_token, h->server);
    if (need == BR_ADMIN_PAGE)
        return true;
    if ((token = bearer(req)) != NULL) {
        if (!br_secret_equal(token, h->cfg->admin_token)) {
            wrong_token(h, req, res, false);
            return false;
        }
        who->bearer = true;
        return true;
    }
    who->session = cookie_session(h, req);
    if (who->session == NULL) {
        br_admin_json(res, 401, json_pack("{s:s}", "error", "login required"));
        return false;
    }
    if (need == BR_ADMIN_WRITE && !br_secret_equal(br_admin_hdr(req->csrf_token), who->session->csrf)) {
        br_handler_refused(h, req, 403, "admin request without its CSRF token", req->path);
        br_admin_json(res, 403, json_pack("{s:s}", "error", "CSRF token missing or wrong"));
        return false;
    }
    return true;
}

/* ---- login, logout, session -------------------------------------------------- */

static bool
is_json(const struct br_http_request *req)
{
    return strncasecmp(br_admin_hdr(req->content_type), "application/json", 16) == 0;
}

/* The token the login sent: a form field or a JSON member; NULL when there is none. */
static char *
login_token(const struct br_http_request *req)
{
    json_error_t je;
    json_t *o, *v;
    char *token = NULL;

    if (!is_json(req))
        return br_form_value(req->body, req->body_len, "token");
    o = json_loadb(req->body, req->body_len, 0, &je);
    v = json_object_get(o, "token");
    if (json_is_string(v))
        token = br_strdup(json_string_value(v));
    json_decref(o);
    return token;
}

void
br_handle_admin_login(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                      char **params)
{
    const struct br_admin_session *s;
    struct br_admin_who who;
    char *token, *cookie;
    bool form = !is_json(req);

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_PAGE, &who))
        return;
    token = login_token(req);
    if (token == NULL || !br_secret_equal(token, h->cfg->admin_token)) {
        free(token);
        wrong_token(h, req, res, form);
        return;
    }
    free(token);
    s = br_admin_session_new(h->admin, br_now_ms(), h->cfg->admin_session_ttl_s * 1000);
    if (s == NULL) {
        br_error("admin page: no random bytes for a session");
        br_admin_json(res, 503, json_pack("{s:s}", "error", "cannot make a session now; try again"));
        return;
    }
    /* Secure when the browser reached the proxy over HTTPS; the bridge itself speaks plain HTTP. */
    cookie = br_asprintf("%s=%s; Path=/admin/; Max-Age=%ld; HttpOnly; SameSite=Strict%s", BR_ADMIN_COOKIE, s->id,
                         h->cfg->admin_session_ttl_s,
                         strcmp(br_admin_hdr(req->forwarded_proto), "https") == 0 ? "; Secure" : "");
    br_http_response_header(res, "Set-Cookie", cookie);
    free(cookie);
    br_info("admin page: a login from %s", req->remote_addr);
    if (form) {
        res->status = 303;
        res->content_type = "text/plain; charset=utf-8";
        br_http_response_header(res, "Location", "/admin/");
        br_buf_reset(&res->body);
        return;
    }
    br_admin_json(res, 200, json_pack("{s:b, s:s}", "ok", 1, "csrf", s->csrf));
}

void
br_handle_admin_logout(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                       char **params)
{
    struct br_admin_who who;

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_WRITE, &who))
        return;
    if (who.session != NULL) {
        br_http_server_ws_drop(h->server, who.session->serial);
        br_admin_session_end(h->admin, who.session->id);
        br_http_response_header(res, "Set-Cookie",
                                BR_ADMIN_COOKIE "=; Path=/admin/; Max-Age=0; HttpOnly; SameSite=Strict");
    }
    br_admin_json(res, 200, json_pack("{s:b}", "ok", 1));
}

void
br_handle_admin_session(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                        char **params)
{
    struct br_admin_who who;

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_READ, &who))
        return;
    if (who.bearer) {
        br_admin_json(res, 200, json_pack("{s:n, s:s}", "csrf", "auth", "bearer"));
        return;
    }
    br_admin_json(res, 200, json_pack("{s:s, s:s, s:I}", "csrf", who.session->csrf, "auth", "cookie", "expires_at",
                                      (json_int_t)who.session->expires));
}

/* ---- the WebSocket ----------------------------------------------------------- */

/*
 * An Origin, when the browser sent one, must be the page's own: the
 * scheme, then exactly the Host the request was sent to.  A page of
 * another site cannot open the WebSocket with the admin's cookie.
 */
static bool
same_origin(const struct br_http_request *req)
{
    const char *origin = br_admin_hdr(req->origin), *host = br_admin_hdr(req->host);
    const char *rest;

    if (*origin == '\0')
        return true;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    else
        return false;
    return *host != '\0' && strcasecmp(rest, host) == 0;
}

bool
br_handlers_ws_accept(void *ctx, const struct br_http_request *req, uint64_t *tag)
{
    struct br_handler_ctx *h = ctx;
    struct br_http_response res = {0};
    struct br_admin_who who;
    bool ok;

    if (!admin_on(h))
        return false;
    if (!same_origin(req)) {
        br_handler_refused(h, req, 403, "admin WebSocket from another origin", br_admin_hdr(req->origin));
        return false;
    }
    br_buf_init(&res.body, 0);
    br_buf_init(&res.headers, 0);
    /* A wrong Bearer token counts and is logged there, as at the API. */
    ok = br_admin_enter(h, req, &res, BR_ADMIN_READ, &who);
    /* A session's WebSockets end with it (a logout); a Bearer token's with the token (a reload). */
    *tag = !ok ? 0 : who.session != NULL ? who.session->serial : h->admin->bearer_serial;
    br_buf_dispose(&res.body);
    br_buf_dispose(&res.headers);
    return ok;
}
