/*
 * handlers.h - the inbound routes.  Each route is one file in handlers/
 * and one row in the table in routes.c.  Handlers see only the small
 * request/response structs of http_server.h (never libwebsockets), so
 * they are tested in-process without sockets.  They validate and
 * authenticate, commit what must survive to the store, and answer; the
 * work itself happens later in the engine.
 */
#ifndef BR_HANDLERS_H
#define BR_HANDLERS_H

#include "bridge/http_server.h"

#include <stdbool.h>

struct br_config;
struct br_store;
struct br_engine;

struct br_ratelimit;
struct br_refusals;
struct br_held_webhooks;
struct br_admin;

struct br_handler_ctx {
    const struct br_config *cfg;     /* the newest (a reload changes it between requests) */
    struct br_store *store;
    struct br_engine *engine;        /* may be NULL in tests: nothing is kicked */
    struct br_ratelimit *per_address; /* webhook requests per source address (NULL: none) */
    struct br_ratelimit *bad_secret;  /* wrong secrets per source address (NULL: none) */
    struct br_refusals *refusals;     /* where refused requests are logged (NULL: not logged) */
    /* routes.c's own: this loop turn's accepted webhooks, counted once the flush decides them. */
    struct br_held_webhooks *held;
    struct br_admin *admin;           /* the admin page's logins (admin.h); NULL: the page is off */
    struct br_http_server *server;    /* to end a logged-out session's WebSockets (NULL: none) */
};

/* What became of a webhook (the result label of chatra_bridge_webhooks_total, see metrics.h). */
#define BR_WEBHOOK_ACCEPTED "accepted"               /* stored, 200 (or 503 "unstored" when the commit fails) */
#define BR_WEBHOOK_IGNORED "ignored"                 /* 200: an event the bridge has no use for */
#define BR_WEBHOOK_INVALID "invalid"                 /* 400 */
#define BR_WEBHOOK_BAD_SECRET "bad_secret"           /* 401 */
#define BR_WEBHOOK_THROTTLED "throttled"             /* 429: too many requests or wrong secrets */
#define BR_WEBHOOK_UNKNOWN_CHANNEL "unknown_channel" /* 404 */
#define BR_WEBHOOK_DISABLED "disabled"               /* 404: the tracker sends no webhooks (Redmine) */
#define BR_WEBHOOK_UNSTORED "unstored"               /* 503: the store refused the turn's commit */

/*
 * Counts one webhook's answer by route ("chatra", "planfix"), channel (a
 * configured name, "" for none) and result.  An accepted one is held
 * until br_handlers_flush knows whether its commit went through.
 */
void br_handler_count(struct br_handler_ctx *h, const char *source, const char *channel, const char *result);
/* Frees what the context holds of its own (counts no flush took): at shutdown. */
void br_handlers_dispose(struct br_handler_ctx *h);

/*
 * Sets the config the handlers read (borrowed) and makes the limiters it
 * asks for: at start, and at a reload, when only limits whose settings
 * changed are made again.  br_handlers_unconfigure frees the limiters.
 */
void br_handlers_configure(struct br_handler_ctx *h, const struct br_config *cfg);
void br_handlers_unconfigure(struct br_handler_ctx *h);

/*
 * The admin page's state (its logins, kept in memory), made by the daemon
 * whether admin.token is set or not: the page is on while it is.
 */
struct br_admin *br_admin_new(const char *version, int64_t started_at);
void br_admin_free(struct br_admin *a);
/* br_http_server_opts.ws_accept: a WebSocket to /admin/ws with the page's login and from its own origin. */
bool br_handlers_ws_accept(void *ctx, const struct br_http_request *req, uint64_t *tag);

/*
 * Called by a handler that refused a secret; false when the address has
 * tried too many (the handler answers 429 instead of 401 then).
 */
bool br_handler_secret_failed(struct br_handler_ctx *h, const struct br_http_request *req);

/*
 * Notes a refused request for the log (refusals.h): status and reason (a
 * constant) with req's address are the key; detail is untrusted text or NULL.
 */
void br_handler_refused(struct br_handler_ctx *h, const struct br_http_request *req, int status, const char *reason,
                        const char *detail);
/* br_http_server_opts.refused: the server's own 413s and 400s, logged as the handlers' refusals are. */
void br_handlers_refused_by_server(void *ctx, const struct br_http_request *req, int status);

/* The br_http_handler_fn of the daemon: routes by method and path. */
void br_handlers_dispatch(void *ctx, const struct br_http_request *req, struct br_http_response *res);
/*
 * The HTTP server's flush (br_http_server_opts.flush): commits the inbox
 * rows the webhook handlers queued in this loop turn, in one transaction,
 * then wakes the engine.  0 when they are stored; otherwise none is, and
 * their answers become 503 (the sender tries again).
 */
int br_handlers_flush(void *ctx);

/* Route handlers; params are the path segments the route captured. */
void br_handle_chatra_webhook(struct br_handler_ctx *h, const struct br_http_request *req,
                              struct br_http_response *res, char **params);
void br_handle_planfix_webhook(struct br_handler_ctx *h, const struct br_http_request *req,
                               struct br_http_response *res, char **params);
void br_handle_health(struct br_handler_ctx *h, const struct br_http_request *req,
                      struct br_http_response *res, char **params);
void br_handle_metrics(struct br_handler_ctx *h, const struct br_http_request *req,
                       struct br_http_response *res, char **params);
/* The admin page (admin.h): its files, access, and API under /admin/api/. */
void br_handle_admin_page(struct br_handler_ctx *h, const struct br_http_request *req,
                          struct br_http_response *res, char **params);
void br_handle_admin_static(struct br_handler_ctx *h, const struct br_http_request *req,
                            struct br_http_response *res, char **params);
void br_handle_admin_login(struct br_handler_ctx *h, const struct br_http_request *req,
                           struct br_http_response *res, char **params);
void br_handle_admin_logout(struct br_handler_ctx *h, const struct br_http_request *req,
                            struct br_http_response *res, char **params);
void br_handle_admin_session(struct br_handler_ctx *h, const struct br_http_request *req,
                             struct br_http_response *res, char **params);
void br_handle_admin_overview(struct br_handler_ctx *h, const struct br_http_request *req,
                              struct br_http_response *res, char **params);
void br_handle_admin_conversations(struct br_handler_ctx *h, const struct br_http_request *req,
                                   struct br_http_response *res, char **params);
void br_handle_admin_conversation(struct br_handler_ctx *h, const struct br_http_request *req,
                                  struct br_http_response *res, char **params);
void br_handle_admin_identities(struct br_handler_ctx *h, const struct br_http_request *req,
                                struct br_http_response *res, char **params);
void br_handle_admin_unmerge(struct br_handler_ctx *h, const struct br_http_request *req,
                             struct br_http_response *res, char **params);
void br_handle_admin_dead_letters(struct br_handler_ctx *h, const struct br_http_request *req,
                                  struct br_http_response *res, char **params);
void br_handle_admin_retry(struct br_handler_ctx *h, const struct br_http_request *req,
                           struct br_http_response *res, char **params);
void br_handle_admin_discard(struct br_handler_ctx *h, const struct br_http_request *req,
                             struct br_http_response *res, char **params);

/* Helpers shared by the handlers. */
void br_respond_error(struct br_http_response *res, int status, const char *msg);
void br_respond_ok(struct br_http_response *res);
/* Compares a secret in time that depends only on the expected length. */
int br_secret_equal(const char *given, const char *expected);
/*
 * The value of name in an application/x-www-form-urlencoded body or a
 * query string (len bytes at s), decoded (%XX, '+'); NULL when absent
 * (form.c).
 */
char *br_form_value(const char *s, size_t len, const char *name);

#endif
