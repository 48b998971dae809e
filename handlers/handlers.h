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
struct br_admin;

struct br_handler_ctx {
    const struct br_config *cfg;
    struct br_store *store;
    struct br_engine *engine;        /* may be NULL in tests: nothing is kicked */
    struct br_ratelimit *per_address; /* webhook requests per source address (NULL: none) */
    struct br_ratelimit *bad_secret;  /* wrong secrets per source address (NULL: none) */
    struct br_refusals *refusals;     /* where refused requests are logged (NULL: not logged) */
    struct br_admin *admin;           /* the admin page's logins (admin.h); NULL: the page is off */
    struct br_http_server *server;    /* to end a logged-out session's WebSockets (NULL: none) */
};

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
