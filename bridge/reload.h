/*
 * reload.h - what a reload (SIGHUP, `systemctl reload`) may change, and
 * how the bridge changes it without pulling anything from under a job.
 *
 * The daemon (cli/daemon.c) reads the config file again: templates, texts
 * and "file:" secrets from disk; "env:" values are those it started with.
 * A config with problems is refused as a whole: the daemon logs the lines
 * check-config prints and keeps running on the config it has.  A good one
 * takes effect for new work:
 *
 *   - Generations.  A config and what is made from it (the tracker driver,
 *     the employees' tracker users) are one generation, a struct br_env
 *     (env.h).  New work (inbox rows applied, jobs that start) takes the
 *     newest; a running job keeps the generation it started with (its
 *     channel, its texts, its driver) until it ends, so a request in
 *     flight finishes as it began.  The engine frees an older generation
 *     at its first tick after the last job holding it ended.  Configs are
 *     counted (br_config_ref): the daemon holds the newest for the
 *     handlers, each generation its own.
 *   - What outlives generations: the store, the job queue, the upstreams
 *     (the tracker's spacing, pauses and quota go on; a reload changes
 *     only their rates, and adds one for a new channel), the tracker's
 *     daily budget (today's count goes on; a reload sets its quota, which
 *     may lift or start the wait for the next day: engine.c), the HTTP server
 *     and its connections (the body limit applies to requests that start
 *     after the reload).
 *   - The handlers read the daemon's newest config on each request; the
 *     per-address limits are made again only when their settings changed.
 *   - Settings read only at start (the listening address, the store) are
 *     compared here: a change is logged as needing a restart and the
 *     running value stays.  Another tracker kind cannot replace the one
 *     whose tasks the store knows: that reload is refused.
 *   - A removed channel is like one removed before a restart: its waiting
 *     jobs fail ("channel X is no longer configured"), and its webhooks
 *     get 404.
 *
 * Loop thread only; a reload is done whole within one loop callback, so
 * no request is refused meanwhile (it waits the milliseconds it takes).
 */
#ifndef BR_RELOAD_H
#define BR_RELOAD_H

struct br_config;
struct br_diag;

/*
 * Compares next (just loaded) with cur (running).  Logs one line for each
 * setting read only at start that changed, and puts cur's value back into
 * next, so that next says what runs; logs channels added and removed.
 * Returns 0, or BR_EINVAL with the problem in diag when next cannot replace
 * cur without a restart (another tracker kind).
 */
int br_reload_compare(const struct br_config *cur, struct br_config *next, struct br_diag *diag);

#endif
