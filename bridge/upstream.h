/*
 * upstream.h - one remote API account (the tracker, or one Chatra
 * account) with its own request budget.
 *
 * Requests are queued FIFO and released no faster than the configured
 * requests per second (a token bucket of depth one: Planfix counts
 * requests per second, so a burst would already be a violation), with
 * at most max_inflight at once.  pause_until stops the queue, e.g. when
 * the tracker says its quota is gone; hold_until is the daily budget's
 * own stop (budget.h), which a raised quota lifts.  The upstream owns one uv_timer_t; it never
 * calls back synchronously.
 *
 * Replies first: a request sent while the urgent scope is on (a job that
 * carries an employee's reply: the tracker's comments read, the answer
 * sent to the chat) joins a second FIFO that leaves before every normal
 * request still waiting; the rate and the spacing are the same for both.
 * The queue turns the scope on while it starts an urgent job; the REST
 * layer (rest.c) turns it on again for that call's later requests and its
 * callback.
 *
 * It also keeps how the account is doing, for /healthz: the REST layer
 * notes each answer (br_upstream_note), and a run of failures is kept with
 * its last error and its start until an answer is good again.  Every
 * request is counted for /metrics (metrics.h) by status, with its latency
 * and, when the rate or a pause held it back, how long it waited.
 */
#ifndef BR_UPSTREAM_H
#define BR_UPSTREAM_H

#include "http_client.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct br_upstream;
struct br_upstream_stats;

int br_upstream_new(struct br_upstream **out, uv_loop_t *loop, struct br_http_client *http,
                    const char *name, double rps, unsigned max_inflight);
/*
 * headers is a NULL-terminated list of "Name: value" strings; everything is
 * copied.  Returns 0 and cb fires exactly once, later; or BR_ECANCELED when
 * the upstream is closing, and cb never fires (rest.h reports that later).
 */
int br_upstream_send(struct br_upstream *u, const char *method, const char *url,
                     const char *const *headers, const char *body, long timeout_ms,
                     br_http_client_cb cb, void *arg);
/*
 * A new request rate (a reload): from the next request on.  A slower rate
 * also lengthens the wait for the next request, so that the old rate's
 * shorter gap is never used once more.
 */
void br_upstream_set_rate(struct br_upstream *u, double rps);
/* Requests sent from now on are urgent (or not); returns the scope as it was, to be put back. */
bool br_upstream_urgent_scope(bool urgent);
/* Whether requests sent now are urgent. */
bool br_upstream_urgent_now(void);
/* Stops sending until until_ms (wall clock); a later pause only ever lengthens it. */
void br_upstream_pause_until(struct br_upstream *u, int64_t until_ms);
/*
 * The daily budget's hold: no request leaves before until_ms; unlike a
 * pause it may be shortened, and 0 lifts it (a reload raised the quota).
 */
void br_upstream_hold_until(struct br_upstream *u, int64_t until_ms);
/*
 * The upstream's key was refused (401): nothing more goes until
 * until_ms (wall clock), or until br_upstream_refused_lift (a reload, with
 * perhaps the right key).  A 429's pause and the budget's hold go on.
 */
void br_upstream_refused_until(struct br_upstream *u, int64_t until_ms);
void br_upstream_refused_lift(struct br_upstream *u);
/* The end of the pause or hold now in force, 0 when none is. */
int64_t br_upstream_paused_until(const struct br_upstream *u);
/*
 * Hooks for the tracker's daily budget (set by the engine on the tracker's
 * upstream only): cb fires as each request leaves, and with what each
 * answer's X-RateLimit-Remaining says is left.  Never inside br_upstream_send.
 */
void br_upstream_on_sent(struct br_upstream *u, void (*cb)(void *arg), void *arg);
void br_upstream_on_told_left(struct br_upstream *u, void (*cb)(void *arg, long left), void *arg);
size_t br_upstream_queued(const struct br_upstream *u);
size_t br_upstream_inflight(const struct br_upstream *u);
uint64_t br_upstream_sent(const struct br_upstream *u);
long br_upstream_quota_left(const struct br_upstream *u);

/* How the upstream's answers went lately. */
struct br_upstream_health {
    unsigned failures;       /* failed answers in a row; 0 when the last one was good */
    int64_t failing_since;   /* wall clock (ms) of the first of them, 0 when none */
    const char *last_error;  /* the last failure's text (owned by the upstream), NULL when none */
};
/*
 * An answer's verdict: error NULL when the account answered as it should
 * (an answer that refuses one request's data is such an answer), else
 * why it failed (no answer, a 5xx, a 429, a refused key...).
 */
void br_upstream_note(struct br_upstream *u, const char *error);
void br_upstream_health(const struct br_upstream *u, struct br_upstream_health *out);
/* Its budget (requests per second), and its requests over the last minute and hour (upstream_stats.h). */
double br_upstream_rps(const struct br_upstream *u);
const struct br_upstream_stats *br_upstream_stats(const struct br_upstream *u);
/* The loop the upstream runs on (still valid while it closes). */
uv_loop_t *br_upstream_loop(const struct br_upstream *u);
/* Fails queued requests with BR_ECANCELED and closes the timer; done fires from the loop. */
void br_upstream_close(struct br_upstream *u, void (*done)(void *arg), void *arg);
void br_upstream_free(struct br_upstream *u);

#endif
