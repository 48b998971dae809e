/*
 * admin.h - the admin page's server side, shared by its rooms in handlers/:
 * admin_sessions.c (logins kept in memory, each with its CSRF token),
 * admin_auth.c (the gate every admin route passes: off, login, Bearer,
 * CSRF; login, logout, the session; the WebSocket's check), admin_static.c
 * (the routes of the page's files, admin_embedded.c finds them in the
 * binary), and one file per API family
 * (admin_overview.c, admin_conversations.c, admin_identities.c,
 * admin_dead_letters.c).  The page is off, and every /admin/ path answers
 * 404, while the config has no admin.token.  Loop thread only.
 */
#ifndef BR_ADMIN_H
#define BR_ADMIN_H

#include "handlers.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BR_ADMIN_COOKIE "br_admin"
/* Logins kept at once: a new one beyond them ends the one closest to its end. */
#define BR_ADMIN_MAX_SESSIONS 64
/* A session id or CSRF token: 32 random bytes in hex. */
#define BR_ADMIN_SECRET_HEX 64

struct br_admin_session {
    char id[BR_ADMIN_SECRET_HEX + 1];   /* the cookie's value */
    char csrf[BR_ADMIN_SECRET_HEX + 1];
    int64_t expires;                    /* ms; 0: a free slot */
    uint64_t serial;                    /* tells the session's WebSockets (never 0) */
};

struct br_admin {
    const char *version;                /* the bridge's (a string constant), for the overview */
    int64_t started_at;                 /* when the daemon started (ms) */
    struct br_admin_session sessions[BR_ADMIN_MAX_SESSIONS];
    uint64_t serials;                   /* sessions (and Bearer generations) made so far */
    char *token;                        /* the admin.token the sessions were made with (a copy) */
    uint64_t bearer_serial;             /* tells the WebSockets of that token as Bearer (0: no token) */
};

/* ---- admin_sessions.c ---- */

/* n random bytes (getrandom) as 2n hex digits and a NUL in out; BR_EIO when the kernel gives none. */
int br_admin_random_hex(char *out, size_t n);
/* A new session until now + ttl_ms; NULL when no random bytes could be had. */
const struct br_admin_session *br_admin_session_new(struct br_admin *a, int64_t now, int64_t ttl_ms);
/* The live session whose id is id (compared in constant time), or NULL. */
const struct br_admin_session *br_admin_session_find(struct br_admin *a, const char *id, int64_t now);
void br_admin_session_end(struct br_admin *a, const char *id);
/*
 * Sessions belong to the token they were made with: when admin.token is
 * another or none (a reload), every session ends, and its WebSockets with
 * it, as do the WebSockets opened with the old token as Bearer (server may
 * be NULL).  token NULL: the page is off.
 */
void br_admin_sessions_follow(struct br_admin *a, const char *token, struct br_http_server *server);
/* The value of cookie name in a Cookie header, from the start'th byte on: a new string, NULL when none. */
char *br_admin_cookie(const char *header, const char *name, size_t *start);

/* ---- admin_auth.c ---- */

/* What an admin route needs: the page itself, reading the API, or changing something (POST, CSRF). */
enum br_admin_need { BR_ADMIN_PAGE, BR_ADMIN_READ, BR_ADMIN_WRITE };

/* Who passed the gate. */
struct br_admin_who {
    bool bearer;                          /* Authorization: Bearer (no cookie, no CSRF) */
    const struct br_admin_session *session; /* a cookie session (NULL with bearer or for the page) */
};

/*
 * The start of every admin route.  Sets the page's security headers on
 * res, then answers by itself and returns false: 404 when the page is off,
 * 401 {"error":"login required"} without a valid cookie or Bearer token
 * (429 when the address sent too many wrong tokens), 403 when a POST of a
 * cookie session lacks its X-CSRF-Token.  True: go on, with who set.
 */
bool br_admin_enter(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                    enum br_admin_need need, struct br_admin_who *who);
/*
 * The headers every /admin/ answer carries: the page runs only its own
 * script and style, is never framed, sends no referrer, is never cached.
 * (Inline: the route table adds them to its own 404s under /admin/ too.)
 */
static inline void
br_admin_headers(struct br_http_response *res)
{
    br_http_response_header(res, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    br_http_response_header(res, "X-Content-Type-Options", "nosniff");
    br_http_response_header(res, "Referrer-Policy", "no-referrer");
    br_http_response_header(res, "Cache-Control", "no-store");
}
/* o (taken) as the JSON answer, with status. */
void br_admin_json(struct br_http_response *res, int status, json_t *o);
/* A path segment as a positive id; 0 when it is not one. */
int64_t br_admin_id(const char *segment);
/* A request header that hand-made requests may leave NULL. */
static inline const char *
br_admin_hdr(const char *v)
{
    return v != NULL ? v : "";
}

/* ---- admin_embedded.c ---- */

/* The embedded file name (admin_files.h) as the answer, with status; false when there is none. */
bool br_admin_file(struct br_http_response *res, const char *name, int status);

#endif
