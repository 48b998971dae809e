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
 * Everything runs on the loop thread.  The engine borrows the config,
 * the store and the HTTP client; it owns its upstreams and timers.
 */
#ifndef BR_ENGINE_H
#define BR_ENGINE_H

#include "br.h"

#include <uv.h>

struct br_config;
struct br_store;
struct br_http_client;
struct br_engine;

int br_engine_new(struct br_engine **out, uv_loop_t *loop, const struct br_config *cfg,
                  struct br_store *store, struct br_http_client *http);
/* events new rows are in the inbox: process them soon (never synchronously; in slices while many come). */
void br_engine_kick(struct br_engine *e, size_t events);
/* Appends a JSON object describing queues and upstreams (for /healthz). */
void br_engine_status(struct br_engine *e, struct br_buf *out);
/*
 * What the admin page's overview reads: the upstreams the engine made
 * (the tracker first, then each channel's Chatra account), by index below
 * br_engine_upstream_count, with their names; and the jobs running now.
 */
struct br_upstream;
size_t br_engine_upstream_count(const struct br_engine *e);
const struct br_upstream *br_engine_upstream(const struct br_engine *e, size_t i, const char **name);
unsigned br_engine_running(const struct br_engine *e);
/* Jobs were put back or changed outside the engine's own work (the admin page): look for ready ones soon. */
void br_engine_wake(struct br_engine *e);
/* Stops timers and upstreams; in-flight jobs stay in the store for the next start. */
void br_engine_close(struct br_engine *e, void (*done)(void *arg), void *arg);
void br_engine_free(struct br_engine *e);

#endif
