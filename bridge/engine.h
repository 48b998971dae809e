/*
 * engine.h - the conversation engine: it turns committed inbox events
 * into durable jobs and runs those jobs against the tracker and Chatra.
 *
 *   inbox row --(one transaction)--> conversation, messages, jobs
 *   job --(upstream, rate limited)--> tracker / Chatra --> result written back
 *
 * Jobs of one lane (one conversation and one upstream) run strictly in
 * order, one at a time, so a comment never overtakes its task.  A job is
 * marked in flight before its first request; after a crash such a job
 * first looks for what it may already have created (Planfix
 * sourceObjectId) before writing again.
 *
 * Everything runs on the loop thread.  The engine borrows the store and
 * the HTTP client; it owns its upstreams and timers, and holds a
 * reference to each config it was given (br_config_ref) for as long as a
 * job runs with it (reload.h).
 */
#ifndef BR_ENGINE_H
#define BR_ENGINE_H

#include "br.h"

#include <uv.h>

struct br_config;
struct br_store;
struct br_http_client;
struct br_upstream;
struct br_budget;
struct br_engine;

int br_engine_new(struct br_engine **out, uv_loop_t *loop, struct br_config *cfg,
                  struct br_store *store, struct br_http_client *http);
/*
 * A reload: new work (inbox rows, jobs that start from now on) uses cfg;
 * jobs running now finish with the config they started with, which is
 * released after the last of them.  The upstreams stay (their pauses and
 * spacing go on) with cfg's rates; a new channel gets its own.  Fails
 * only when cfg's tracker driver cannot be made: then nothing changed.
 */
int br_engine_reload(struct br_engine *e, struct br_config *cfg);
/* events new rows are in the inbox: process them soon (never synchronously; in slices while many come). */
void br_engine_kick(struct br_engine *e, size_t events);
/* Appends a JSON object describing queues and upstreams (for /healthz). */
void br_engine_status(struct br_engine *e, struct br_buf *out);
/*
 * The engine's upstreams, "tracker" first, then "chatra:<channel>" in the
 * config's order (for /healthz and /metrics): the i-th, with its name.
 */
size_t br_engine_upstream_count(const struct br_engine *e);
struct br_upstream *br_engine_upstream(const struct br_engine *e, size_t i, const char **name);
/* The tracker's daily budget (budget.h): its requests today, for /healthz, /metrics and the admin page. */
struct br_budget *br_engine_budget(const struct br_engine *e);
/* The state /healthz gives an upstream: "paused", "failing" (its last answer failed) or "ok". */
const char *br_engine_upstream_state(const struct br_upstream *u);
/* How long a message queued now waits for the next ones, ms (batching.h; /metrics, the admin page). */
int64_t br_engine_coalesce_wait_ms(const struct br_engine *e);
/* Jobs running now (the admin page's overview). */
unsigned br_engine_running(const struct br_engine *e);
/* Jobs were put back or changed outside the engine's own work (the admin page): look for ready ones soon. */
void br_engine_wake(struct br_engine *e);
/* Stops timers and upstreams; in-flight jobs stay in the store for the next start. */
void br_engine_close(struct br_engine *e, void (*done)(void *arg), void *arg);
void br_engine_free(struct br_engine *e);

#endif
