/*
 * crm_lookup.c - one person over many e-mails (crm_lookup.h).
 */
#include "crm_lookup.h"

#include "log.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* E-mails asked at once: the upstream spaces them at its rate; a match stops the rest. */
#define WINDOW 4

enum { Q_WAIT = 0, Q_ASKED, Q_NOBODY, Q_FOUND, Q_FAILED };

struct item {
    char *email;
    int state;
    json_t *card;
};

struct lookup {
    struct br_crm *crm;
    struct br_store *store;
    br_crm_found_cb cb;
    void *arg;
    struct item *items;
    size_t n;
    size_t next;          /* the first e-mail not asked yet */
    unsigned asking;      /* answers still to come */
    bool done;            /* cb has fired */
    char *error;          /* the last failure */
    uv_timer_t later;     /* ends a lookup the cache answered, from the loop */
};

/* The reply an item carries back (its lookup and which e-mail). */
struct ask {
    struct lookup *l;
    size_t i;
};

static void
lookup_free(struct lookup *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].email);
        json_decref(l->items[i].card);
    }
    free(l->items);
    free(l->error);
    free(l);
}

static void
on_later_closed(uv_handle_t *h)
{
    lookup_free(h->data);
}

/* cb, once; the lookup goes when the last answer still on its way has come. */
static void
deliver(struct lookup *l, int err, const json_t *card)
{
    if (l->done)
        return;
    l->done = true;
    l->cb(l->arg, err, card, l->error);
}

static void ask_more(struct lookup *l);

/*
 * Decides when it can: the first e-mail in order that the CRM knows wins
 * once every e-mail before it has answered.  A match after a failed e-mail
 * is only the best known so far: a failure, with that card.  Returns true
 * when decided.
 */
static bool
decide(struct lookup *l)
{
    bool failed = false;

    for (size_t i = 0; i < l->n; i++) {
        switch (l->items[i].state) {
        case Q_FOUND:
            deliver(l, failed ? BR_ERETRY : 0, l->items[i].card);
            return true;
        case Q_NOBODY:
            continue;
        case Q_FAILED:
            failed = true;
            continue;
        default:
            return false;
        }
    }
    deliver(l, failed ? BR_ERETRY : 0, NULL);
    return true;
}

static void
answered(void *arg, struct br_result *res)
{
    struct ask *a = arg;
    struct lookup *l = a->l;
    struct item *it = &l->items[a->i];
    char *text = NULL;

    free(a);
    l->asking--;
    if (res->err == 0 && json_is_object(res->data)) {
        it->state = Q_FOUND;
        it->card = json_incref(res->data);
        text = json_dumps(it->card, JSON_COMPACT | JSON_SORT_KEYS);
    } else if (res->err == BR_ENOTFOUND) {
        it->state = Q_NOBODY;
    } else {
        it->state = Q_FAILED;
        free(l->error);
        l->error = br_strdup(res->error ? res->error : br_strerror(res->err));
        if (res->err != BR_ECANCELED) {
            char *esc = br_log_escape(l->error, 300);
            br_warn("%s: the look-up failed (%s)", l->crm->kind->label, esc);
            free(esc);
        }
        /* Rate limited: nothing more goes to the CRM before the time it named. */
        if (res->status == 429 && res->retry_after_s > 0)
            br_upstream_pause_until(l->crm->up, br_now_ms() + res->retry_after_s * 1000);
        if (res->err == BR_ECANCELED)
            deliver(l, BR_ECANCELED, NULL);
    }
    if (l->store && (it->state == Q_FOUND || it->state == Q_NOBODY))
        BR_STORE_TX(l->store, br_store_crm_cache_put(l->store, it->email, text, br_now_ms()));
    free(text);
    if (!l->done && !decide(l))
        ask_more(l);
    if (l->done && l->asking == 0)
        lookup_free(l);
}

static void
ask_more(struct lookup *l)
{
    /* An e-mail after a match can never win: nothing beyond it is asked. */
    for (size_t i = 0; i < l->next; i++)
        if (l->items[i].state == Q_FOUND)
            return;
    while (l->asking < WINDOW && l->next < l->n) {
        struct item *it = &l->items[l->next];
        struct ask *a;

        if (it->state != Q_WAIT) {
            l->next++;
            continue;
        }
        a = br_malloc(sizeof(*a));
        a->l = l;
        a->i = l->next++;
        it->state = Q_ASKED;
        l->asking++;
        l->crm->ops->lookup(l->crm, it->email, answered, a);
    }
}

static void
on_later(uv_timer_t *t)
{
    struct lookup *l = t->data;
    decide(l);
    uv_close((uv_handle_t *)&l->later, on_later_closed);
}

void
br_crm_lookup(struct br_crm *crm, struct br_store *store, long ttl_s, const json_t *emails, br_crm_found_cb cb,
              void *arg)
{
    struct lookup *l = br_calloc(1, sizeof(*l));
    int64_t fresh = br_now_ms() - (int64_t)ttl_s * 1000;
    size_t i;
    json_t *e;

    l->crm = crm;
    l->store = store;
    l->cb = cb;
    l->arg = arg;
    l->items = br_calloc(json_array_size(emails) + 1, sizeof(*l->items));
    json_array_foreach(emails, i, e) {
        struct item *it;
        char *card = NULL;
        if (!json_is_string(e))
            continue;
        it = &l->items[l->n++];
        it->email = br_strdup(json_string_value(e));
        if (store && ttl_s > 0 && br_store_crm_cache_get(store, it->email, fresh, &card) == 0) {
            json_t *j = card ? json_loads(card, 0, NULL) : NULL;
            it->state = json_is_object(j) ? Q_FOUND : Q_NOBODY;
            it->card = json_is_object(j) ? j : NULL;
            if (it->card == NULL)
                json_decref(j);
            free(card);
        }
    }
    /* Whatever the cache answers is settled first: a cached match before any unknown e-mail asks nothing. */
    for (i = 0; i < l->n && (l->items[i].state == Q_NOBODY); i++)
        ;
    if (i == l->n || l->items[i].state == Q_FOUND) {
        uv_timer_init(br_upstream_loop(crm->up), &l->later);
        l->later.data = l;
        uv_timer_start(&l->later, on_later, 0, 0);
        return;
    }
    ask_more(l);
}
