/*
 * live_updates.h - the admin page's live updates: what the change bus
 * (notify.h) says, coalesced and pushed as JSON text messages to every
 * WebSocket of the HTTP server:
 *
 *   {"type":"conversation","id":N}   at most one per conversation every 250 ms
 *   {"type":"dead_letters"}          at most one every 250 ms
 *   {"type":"overview"}              at most one a second
 *
 * The page fetches what it shows again when told.  Nothing is kept or
 * built while no WebSocket is open.  Owned by the daemon; it owns one
 * uv_timer_t, and borrows the server (which must outlive it).  Loop
 * thread only.
 */
#ifndef BR_LIVE_UPDATES_H
#define BR_LIVE_UPDATES_H

#include "br.h"

#include <uv.h>

struct br_http_server;
struct br_live_updates;

int br_live_updates_new(struct br_live_updates **out, uv_loop_t *loop, struct br_http_server *server);
/* Stops listening and closes the timer; done(arg) fires from the loop.  Then free. */
void br_live_updates_close(struct br_live_updates *l, void (*done)(void *arg), void *arg);
void br_live_updates_free(struct br_live_updates *l);

#endif
