/*
 * notify.h - the bus on which the core says that something the admin page
 * shows has changed: a conversation (its timeline, its state), the
 * overview (queues, upstreams), the dead letters.  The core publishes and
 * knows nothing of who listens; a listener (live_updates.c, which pushes
 * to the page's WebSockets) subscribes.  Publishing is a few compares when
 * nobody listens (the store commands, the tests) and never fails.
 *
 * One process-wide registry, on the loop thread only.  A listener is told
 * synchronously, inside the publisher's call (perhaps inside a store
 * transaction): it must only note the change and act later, from the loop.
 */
#ifndef BR_NOTIFY_H
#define BR_NOTIFY_H

#include <stdint.h>

enum br_notify_what { BR_NOTIFY_CONVERSATION, BR_NOTIFY_OVERVIEW, BR_NOTIFY_DEAD_LETTERS };

/* id is the conversation's for BR_NOTIFY_CONVERSATION, 0 otherwise. */
typedef void (*br_notify_cb)(void *arg, enum br_notify_what what, int64_t id);

/* At most BR_NOTIFY_MAX listeners; 0, or BR_ELIMIT when full. */
#define BR_NOTIFY_MAX 4
int br_notify_subscribe(br_notify_cb cb, void *arg);
void br_notify_unsubscribe(br_notify_cb cb, void *arg);

void br_notify_conversation(int64_t conv_id);
void br_notify_overview(void);
void br_notify_dead_letters(void);

#endif
