/*
 * http_client.h - outbound HTTP requests (tracker APIs) with libcurl's
 * multi interface driven by the daemon's libuv loop.
 *
 * Everything happens on the loop thread.  A request's headers and body are
 * copied by br_http_client_send; its callback fires exactly once, from the
 * loop, never inside the call that started it.  Connections are reused
 * between requests to the same host.
 *
 * Shutdown: br_http_client_close() cancels what is in flight (callbacks
 * fire with BR_ECANCELED), closes curl's connections and every uv handle;
 * done(arg) fires from the loop afterwards, and only then may the client be
 * freed with br_http_client_free().
 */
#ifndef BR_HTTP_CLIENT_H
#define BR_HTTP_CLIENT_H

#include "br.h"

#include <stddef.h>
#include <uv.h>

struct br_http_result {
    int err;                 /* 0 when an HTTP answer arrived; BR_ETIMEDOUT, BR_EIO (connect/transport), BR_ECANCELED (closing), BR_ELIMIT (body too large) otherwise */
    long status;             /* HTTP status, 0 when err != 0 */
    const char *body;        /* NUL-terminated, valid only during the callback */
    size_t body_len;
    long retry_after_s;      /* Retry-After header in seconds (delta form, or an HTTP date turned into a delta), -1 when absent */
    long ratelimit_remaining;/* X-RateLimit-Remaining header, -1 when absent */
    int64_t server_date_s;   /* the server's clock (Date header) in seconds since the epoch, -1 when absent */
    const char *error;       /* human text for err (curl's error buffer), "" when none */
};

typedef void (*br_http_client_cb)(void *arg, const struct br_http_result *res);

struct br_http_client;

int br_http_client_new(struct br_http_client **out, uv_loop_t *loop);
/*
 * headers: NULL-terminated array of "Name: value" strings (copied).  body may be NULL for GET.
 * timeout_ms covers the whole transfer (connect timeout = min(timeout, 5000); <= 0 means 30 s).
 * Returns 0 and cb fires exactly once, never synchronously inside this call; or returns
 * BR_EINVAL (bad arguments) / BR_ECANCELED (client closing) and cb never fires.
 * Response bodies over 8 MiB are an error (BR_ELIMIT).  Only http and https URLs are allowed.
 */
int br_http_client_send(struct br_http_client *c, const char *method, const char *url, const char *const *headers,
                        const char *body, size_t body_len, long timeout_ms, br_http_client_cb cb, void *arg);
/* Requests sent whose callback has not fired yet. */
size_t br_http_client_inflight(const struct br_http_client *c);
/* Cancels every transfer (their callbacks fire with BR_ECANCELED), closes uv handles; done(arg) fires from the loop when all handles are closed. */
void br_http_client_close(struct br_http_client *c, void (*done)(void *arg), void *arg);
void br_http_client_free(struct br_http_client *c);

#endif
