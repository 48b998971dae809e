/*
 * rest.h - one REST call over an upstream, shared by every remote API
 * client (trackers/planfix.c, trackers/redmine.c, chatra.c).
 *
 * A call is one operation of a driver: one or more JSON requests whose
 * outcome is one struct br_result.  This layer owns what every call needs
 * (the result being built, the request summary and the answer kept for the
 * dead-letter list, Retry-After, the status) and maps transport failures
 * and HTTP statuses to the bridge's codes in one place:
 *
 *   connection errors, timeouts   BR_ERETRY (BR_ECANCELED when shutting down)
 *   408, 429, 5xx                 BR_ERETRY, with the answer's Retry-After
 *   404                           BR_ENOTFOUND when the call says so, else as other 4xx
 *   other 4xx (and 1xx, 3xx)      BR_EFATAL
 *   2xx                           success: the answer goes to the call's step
 *
 * A driver keeps only what is its own: an API description (struct
 * br_rest_api) whose check hook reads answers in the API's terms before the
 * status does (Planfix's {"result":"fail"} inside a 2xx, Redmine's error
 * lines), its requests, and steps that read success answers.  A step may
 * send another request on the same call (paging, read-backs).
 *
 * Ownership: br_rest_call_new allocates the call (drivers embed struct
 * br_rest_call as the first member of their own call struct); the layer
 * frees it after the callback, calling api->dispose for the driver's own
 * fields first.  The callback fires exactly once and never synchronously
 * inside br_rest_start or br_rest_run, also when the upstream refuses the
 * request (shutdown).  Everything runs on the upstream's loop thread.
 */
#ifndef BR_REST_H
#define BR_REST_H

#include "log.h"
#include "tracker.h"
#include "upstream.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct br_rest_call;

/*
 * Reads a success answer (NULL when the body was empty or not JSON).  It
 * either sends another request with br_rest_send, or leaves c->res as the
 * call's outcome (setting id, items, or err and error): the call ends when
 * a step returns without a request in flight.
 */
typedef void (*br_rest_step_fn)(struct br_rest_call *c, json_t *answer);

/* A check hook's verdict when the status is to decide (see struct br_rest_api). */
#define BR_REST_BY_STATUS 1

/* What a driver says about its API, once (a static const). */
struct br_rest_api {
    const char *name; /* "Planfix": names the API in error lines */
    /*
     * Optional: reads each HTTP answer r (answer is its parsed body,
     * NULL when empty or not JSON) before the status rule.  Returns 0 when the
     * answer is a success (the step gets it), a negative code when the
     * API's own words decide the failure (set c->res.error, and
     * quota_exhausted or max_attempts when they apply), or
     * BR_REST_BY_STATUS to let the status decide as the table above says
     * (c->res.error may be set first: else "<name> answered HTTP <status>").
     * With BR_REST_BY_STATUS a 2xx is not the API's answer (a proxy's
     * page): BR_ERETRY.  Without the hook every 2xx is a success.
     */
    int (*check)(struct br_rest_call *c, const struct br_http_result *r, json_t *answer);
    /* Optional: frees the fields the driver's call struct adds (not the call itself). */
    void (*dispose)(struct br_rest_call *c);
};

/* Where a call's requests go; copied by br_rest_call_new. */
struct br_rest_target {
    struct br_upstream *up;
    const char *base_url; /* request paths are appended to it */
    const char *auth;     /* a "Name: value" header sent with every request, or NULL */
    long timeout_ms;
};

/* One request.  Strings are borrowed for the call of br_rest_send/br_rest_start only. */
struct br_rest_req {
    const char *method;
    const char *path;     /* after the target's base URL (query included) */
    json_t *body;         /* sent as compact JSON; the request takes this reference.  NULL: no body */
    const char *header;   /* one more "Name: value" header for this request, or NULL */
    const char *as;       /* the user the request acts as, shown in its summary, or NULL */
    /*
     * What the dead-letter list shows instead of "METHOD path[ as AS] body"
     * (a secret such as Chatra's bound client id left out), or NULL.
     */
    const char *summary;
};

/*
 * The call.  Drivers read every field; they set the ones marked "driver",
 * and res's id, items, err, error, quota_exhausted and max_attempts.
 */
struct br_rest_call {
    const struct br_rest_api *api;
    struct br_upstream *up;
    char *base_url;               /* copies of the target's */
    char *auth;
    long timeout_ms;
    bool notfound_404;            /* driver: a 404 is BR_ENOTFOUND, not BR_EFATAL */
    struct br_result res;         /* the outcome being built */
    br_rest_step_fn step;         /* where the answer of the request in flight goes */
    int64_t server_date_s;        /* the last answer's Date header (seconds), -1 when none */
    int64_t answered_ms;          /* the wall clock when the last answer came */
    /* The layer's own. */
    br_result_cb cb;
    void *arg;
    bool in_flight;               /* a request was queued and its answer has not come */
    bool later_used;              /* later is initialised: free only in its close callback */
    uv_timer_t later;             /* ends the call from the loop (br_rest_start/br_rest_run) */
    /* The log context when the call was made (a job's): its answers are read in it. */
    struct br_log_ctx log_ctx;
    /* Made in the urgent scope (upstream.h): its requests go first, its answers are read in it. */
    bool urgent;
    /* A value the answers kept for the dead-letter list never show (br_rest_call_hide), or NULL. */
    char *secret;
    char *secret_shown;
};

/*
 * A new call of size bytes (at least sizeof(struct br_rest_call)), zeroed
 * beyond the layer's part, whose outcome goes to cb(arg, res).
 */
void *br_rest_call_new(size_t size, const struct br_rest_api *api, const struct br_rest_target *to,
                       br_result_cb cb, void *arg);

/*
 * Keeps secret (Chatra's bound client id) out of the answers the call keeps
 * for the dead-letter list and the admin page: each occurrence is written
 * as shown there.  Both are copied.
 */
void br_rest_call_hide(struct br_rest_call *c, const char *secret, const char *shown);

/*
 * Starts the call with its first request, whose success answer goes to
 * step (NULL: the call ends with it).  Always returns 0: when the upstream
 * refuses the request (shutdown) the callback fires later with BR_ECANCELED.
 */
int br_rest_start(struct br_rest_call *c, const struct br_rest_req *rq, br_rest_step_fn step);

/*
 * Starts the call by running step(c, NULL) now, for calls whose first
 * request depends on state the driver may already have (Redmine's users).
 * When the step sends nothing, the call ends from the loop.  Returns 0.
 */
int br_rest_run(struct br_rest_call *c, br_rest_step_fn step);

/*
 * Sends the call's next request from inside a step.  0 when it is queued;
 * BR_ECANCELED when the upstream refuses it (shutdown): then the call's
 * result is that cancellation (id and items dropped, as partial answers
 * mean nothing) and it ends when the step returns.
 */
int br_rest_send(struct br_rest_call *c, const struct br_rest_req *rq, br_rest_step_fn step);

/*
 * The status rule alone: 0 for a 2xx, else the code the table at the top
 * of this file gives.  Exposed for the unit tests.
 */
int br_rest_status_err(long status, bool notfound_404);

#endif
