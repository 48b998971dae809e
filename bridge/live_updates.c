/*
 * live_updates.c - the change bus coalesced into WebSocket messages (see
 * live_updates.h).  Changes are noted in a small set while a 250 ms
 * window runs; when it ends, one message goes for each.
 */
#include "live_updates.h"

#include "http_server.h"
#include "log.h"
#include "notify.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MS 250
#define OVERVIEW_EVERY_MS 1000
/* Conversations noted in one window; beyond them the page hears of the overview only. */
#define MAX_PENDING 512

struct br_live_updates {
    uv_timer_t timer;
    struct br_http_server *server;
    int64_t pending[MAX_PENDING];
    size_t n_pending;
    bool overview, dead_letters;
    uint64_t overview_sent;    /* uv_now of the last overview message */
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
};

static void
send_text(struct br_live_updates *l, const char *text)
{
    br_http_server_ws_send(l->server, text, strlen(text));
}

static void
on_window(uv_timer_t *t)
{
    struct br_live_updates *l = t->data;
    uint64_t now = uv_now(t->loop);
    char msg[64];

    if (br_http_server_ws_clients(l->server) == 0) {
        l->n_pending = 0;
        l->overview = l->dead_letters = false;
        return;
    }
    for (size_t i = 0; i < l->n_pending; i++) {
        snprintf(msg, sizeof(msg), "{\"type\":\"conversation\",\"id\":%lld}", (long long)l->pending[i]);
        send_text(l, msg);
    }
    l->n_pending = 0;
    if (l->dead_letters)
        send_text(l, "{\"type\":\"dead_letters\"}");
    l->dead_letters = false;
    if (l->overview && now - l->overview_sent >= OVERVIEW_EVERY_MS) {
        send_text(l, "{\"type\":\"overview\"}");
        l->overview = false;
        l->overview_sent = now;
    }
    /* An overview held back for its second: sent when that is over (changes meanwhile keep their window). */
    if (l->overview) {
        uint64_t wait = OVERVIEW_EVERY_MS - (now - l->overview_sent);
        uv_timer_start(&l->timer, on_window, wait < WINDOW_MS ? wait : WINDOW_MS, 0);
    }
}

static void
on_change(void *arg, enum br_notify_what what, int64_t id)
{
    struct br_live_updates *l = arg;
    size_t i;

    if (l->closing || br_http_server_ws_clients(l->server) == 0)
        return;
    switch (what) {
    case BR_NOTIFY_CONVERSATION:
        for (i = 0; i < l->n_pending && l->pending[i] != id; i++)
            ;
        if (i == l->n_pending && l->n_pending < MAX_PENDING)
            l->pending[l->n_pending++] = id;
        else if (i == l->n_pending)
            l->overview = true;
        break;
    case BR_NOTIFY_OVERVIEW:
        l->overview = true;
        break;
    case BR_NOTIFY_DEAD_LETTERS:
        l->dead_letters = true;
        break;
    }
    if (!uv_is_active((uv_handle_t *)&l->timer))
        uv_timer_start(&l->timer, on_window, WINDOW_MS, 0);
}

int
br_live_updates_new(struct br_live_updates **out, uv_loop_t *loop, struct br_http_server *server)
{
    struct br_live_updates *l = br_calloc(1, sizeof(*l));
    int rc;

    l->server = server;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    if ((rc = br_notify_subscribe(on_change, l)) != 0) {
        /* Only a programming error fills the table: the handle is closed by the caller's close. */
        br_error("live updates: cannot listen for changes: %s", br_strerror(rc));
        l->closing = true;
    }
    *out = l;
    return rc;
}

static void
on_closed(uv_handle_t *h)
{
    struct br_live_updates *l = h->data;

    if (l->done != NULL)
        l->done(l->done_arg);
}

void
br_live_updates_close(struct br_live_updates *l, void (*done)(void *arg), void *arg)
{
    br_notify_unsubscribe(on_change, l);
    l->closing = true;
    l->done = done;
    l->done_arg = arg;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_closed);
}

void
br_live_updates_free(struct br_live_updates *l)
{
    free(l);
}
