/*
 * The admin page's dead letters (jobs that failed for good):
 *
 *   GET  /admin/api/dead-letters               the JSON of `chatra-bridge dead-letters`
 *   POST /admin/api/dead-letters/ID/retry      back in the queue, as `chatra-bridge retry` (CSRF)
 *   POST /admin/api/dead-letters/ID/discard    given up: never run, not counted as dead, kept (CSRF)
 *
 * A retried job runs at once: the engine is woken.  Both write the job's
 * new state into its conversation's timeline (the store's trigger).
 */
#include "admin.h"

#include "bridge/engine.h"
#include "bridge/log.h"
#include "bridge/notify.h"
#include "bridge/store.h"

#include <stdlib.h>

void
br_handle_admin_dead_letters(struct br_handler_ctx *h, const struct br_http_request *req,
                             struct br_http_response *res, char **params)
{
    struct br_admin_who who;
    char *text = NULL;
    json_error_t je;
    json_t *list;

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_READ, &who))
        return;
    if (br_store_dead_letters(h->store, &text) != 0 || (list = json_loads(text, 0, &je)) == NULL) {
        free(text);
        br_admin_json(res, 503, json_pack("{s:s}", "error", "the store does not answer"));
        return;
    }
    free(text);
    br_admin_json(res, 200, list);
}

/* The conversation of dead job id; false (and the answer made) when it is not a dead letter. */
static bool
dead_job(struct br_handler_ctx *h, struct br_http_response *res, int64_t id, int64_t *conv_id)
{
    struct br_job job = {0};
    int rc = id > 0 ? br_store_job_get(h->store, id, &job) : BR_ENOTFOUND;
    bool dead = rc == 0 && job.state == BR_JOB_DEAD;

    *conv_id = job.conv_id;
    br_job_dispose(&job);
    if (rc != 0 && rc != BR_ENOTFOUND)
        br_admin_json(res, 503, json_pack("{s:s}", "error", "the store does not answer"));
    else if (!dead)
        br_admin_json(res, 404, json_pack("{s:s}", "error", "not a dead letter"));
    return dead;
}

static void
changed(struct br_handler_ctx *h, int64_t conv_id)
{
    br_notify_dead_letters();
    br_notify_overview();
    br_notify_conversation(conv_id);
    if (h->engine != NULL)
        br_engine_wake(h->engine);
}

void
br_handle_admin_retry(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                      char **params)
{
    struct br_admin_who who;
    int64_t id = br_admin_id(params[0]), conv = 0, n = 0;

    if (!br_admin_enter(h, req, res, BR_ADMIN_WRITE, &who) || !dead_job(h, res, id, &conv))
        return;
    if (br_store_dead_retry(h->store, id, &n) != 0) {
        br_admin_json(res, 503, json_pack("{s:s}", "error", "cannot put the job back now; try again"));
        return;
    }
    if (n == 0) {
        br_admin_json(res, 404, json_pack("{s:s}", "error", "not a dead letter"));
        return;
    }
    br_info("admin page: dead job %lld back in the queue", (long long)id);
    changed(h, conv);
    br_admin_json(res, 200, json_pack("{s:b}", "ok", 1));
}

void
br_handle_admin_discard(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                        char **params)
{
    struct br_admin_who who;
    int64_t id = br_admin_id(params[0]), conv = 0;
    int rc;

    if (!br_admin_enter(h, req, res, BR_ADMIN_WRITE, &who))
        return;
    rc = id > 0 ? br_store_dead_discard(h->store, id, &conv) : BR_ENOTFOUND;
    if (rc == BR_ENOTFOUND) {
        br_admin_json(res, 404, json_pack("{s:s}", "error", "not a dead letter"));
        return;
    }
    if (rc) {
        br_admin_json(res, 503, json_pack("{s:s}", "error", "cannot discard the job now; try again"));
        return;
    }
    br_info("admin page: dead job %lld discarded (kept in the store, never run again)", (long long)id);
    changed(h, conv);
    br_admin_json(res, 200, json_pack("{s:b}", "ok", 1));
}
