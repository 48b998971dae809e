#include "unrecorded.h"

#include "store.h"

#include <stdlib.h>

/*
 * Outcomes kept at most.  Runs end unrecorded only while the store fails,
 * and no job starts then, so a full list means a store that failed and
 * recovered many times between two ticks; what does not fit is recovered
 * from the store alone.
 */
#define UNRECORDED_MAX 64

struct outcome {
    int64_t id;
    int state;
    int attempts;
    int64_t next_at;
    bool recover;
    char *error, *request, *response;
};

struct br_unrecorded {
    struct outcome *items;
    size_t n, cap;
};

static char *
dup_or_null(const char *s)
{
    return s ? br_strdup(s) : NULL;
}

static void
outcome_dispose(struct outcome *o)
{
    free(o->error);
    free(o->request);
    free(o->response);
}

struct br_unrecorded *
br_unrecorded_new(void)
{
    return br_calloc(1, sizeof(struct br_unrecorded));
}

void
br_unrecorded_free(struct br_unrecorded *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n; i++)
        outcome_dispose(&u->items[i]);
    free(u->items);
    free(u);
}

void
br_unrecorded_add(struct br_unrecorded *u, int64_t id, int state, int attempts, int64_t next_at, bool recover,
                  const char *error, const char *request, const char *response)
{
    struct outcome *o = NULL;

    for (size_t i = 0; i < u->n && o == NULL; i++)
        if (u->items[i].id == id)
            o = &u->items[i];
    if (o) {
        outcome_dispose(o);
    } else {
        if (u->n == UNRECORDED_MAX)
            return;
        if (u->n == u->cap) {
            u->cap = u->cap ? u->cap * 2 : 8;
            u->items = br_realloc(u->items, u->cap * sizeof(*u->items));
        }
        o = &u->items[u->n++];
    }
    o->id = id;
    o->state = state;
    o->attempts = attempts;
    o->next_at = next_at;
    o->recover = recover;
    o->error = dup_or_null(error);
    o->request = dup_or_null(request);
    o->response = dup_or_null(response);
}

size_t
br_unrecorded_count(const struct br_unrecorded *u)
{
    return u->n;
}

int
br_unrecorded_settle(struct br_unrecorded *u, struct br_store *s, const int64_t *running, size_t n_running,
                     int64_t *written, int64_t *requeued)
{
    int rc = br_store_begin(s);

    *written = *requeued = 0;
    /* Whether or not anything else is to be written, this proves the disk takes writes. */
    if (rc == 0)
        rc = br_store_touch(s);
    for (size_t i = 0; i < u->n && rc == 0; i++) {
        const struct outcome *o = &u->items[i];
        rc = br_store_job_finish(s, o->id, o->state, o->attempts, o->next_at, o->recover, o->error, o->request,
                                 o->response);
    }
    if (rc == 0)
        rc = br_store_job_recover_lost(s, running, n_running, requeued);
    if (rc == 0)
        rc = br_store_commit(s);
    if (rc) {
        br_store_rollback(s);
        *requeued = 0;
        return rc;
    }
    *written = (int64_t)u->n;
    for (size_t i = 0; i < u->n; i++)
        outcome_dispose(&u->items[i]);
    u->n = 0;
    return 0;
}
