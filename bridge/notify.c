/*
 * notify.c - the change bus (notify.h): a fixed table of listeners.
 */
#include "notify.h"

#include "br.h"

#include <stddef.h>

static struct {
    br_notify_cb cb;
    void *arg;
} listeners[BR_NOTIFY_MAX];

int
br_notify_subscribe(br_notify_cb cb, void *arg)
{
    for (size_t i = 0; i < BR_NOTIFY_MAX; i++) {
        if (listeners[i].cb == NULL) {
            listeners[i].cb = cb;
            listeners[i].arg = arg;
            return 0;
        }
    }
    return BR_ELIMIT;
}

void
br_notify_unsubscribe(br_notify_cb cb, void *arg)
{
    for (size_t i = 0; i < BR_NOTIFY_MAX; i++) {
        if (listeners[i].cb == cb && listeners[i].arg == arg) {
            listeners[i].cb = NULL;
            listeners[i].arg = NULL;
        }
    }
}

static void
publish(enum br_notify_what what, int64_t id)
{
    for (size_t i = 0; i < BR_NOTIFY_MAX; i++)
        if (listeners[i].cb != NULL)
            listeners[i].cb(listeners[i].arg, what, id);
}

void
br_notify_conversation(int64_t conv_id)
{
    if (conv_id > 0)
        publish(BR_NOTIFY_CONVERSATION, conv_id);
}

void
br_notify_overview(void)
{
    publish(BR_NOTIFY_OVERVIEW, 0);
}

void
br_notify_dead_letters(void)
{
    publish(BR_NOTIFY_DEAD_LETTERS, 0);
}
