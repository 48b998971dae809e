/*
 * upstream.h - one remote API account (the tracker, or one Chatra
 * account) with its own request budget.
 *
 * Requests are queued FIFO and released no faster than the configured
 * requests per second (a token bucket of depth one: Planfix counts
 * requests per second, so a burst would already be a violation), with
 * at most max_inflight at once.  pause_until stops the queue, e.g. when
 * the daily quota is gone.  The upstream owns one uv_timer_t; it never
 * calls back synchronously.
 */
#ifndef BR_UPSTREAM_H
#define BR_UPSTREAM_H

#include "http_client.h"

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
void br_upstream_pause_until(struct br_upstream *u, int64_t until_ms);
int64_t br_upstream_paused_until(const struct br_upstream *u);
size_t br_upstream_queued(const struct br_upstream *u);
size_t br_upstream_inflight(const struct br_upstream *u);
uint64_t br_upstream_sent(const struct br_upstream *u);
long br_upstream_quota_left(const struct br_upstream *u);
/* Its budget (requests per second), and its recent traffic and failures (upstream_stats.h). */
double br_upstream_rps(const struct br_upstream *u);
const struct br_upstream_stats *br_upstream_stats(const struct br_upstream *u);
/* The loop the upstream runs on (still valid while it closes). */
uv_loop_t *br_upstream_loop(const struct br_upstream *u);
/* Fails queued requests with BR_ECANCELED and closes the timer; done fires from the loop. */
void br_upstream_close(struct br_upstream *u, void (*done)(void *arg), void *arg);
void br_upstream_free(struct br_upstream *u);

#endif
