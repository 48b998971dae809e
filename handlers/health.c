/*
 * GET /healthz: how the bridge is, in one word and the details behind it.
 *
 *   "ok"        200  the store takes writes and every upstream answers
 *   "degraded"  200  an upstream (the tracker or a Chatra account) is paused
 *                    or its last answer failed: its entry in
 *                    engine.upstreams says why and since when; webhooks are
 *                    still taken and the jobs wait
 *   "failing"   503  the store does not answer or refuses writes (a full
 *                    disk): webhooks are refused too
 *
 * That the loop answers at all is its own part of the check: a daemon
 * whose loop is stuck answers nothing, and the monitor's timeout says so.
 */
#include "handlers.h"

#include "bridge/engine.h"
#include "bridge/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Whether an upstream is paused or failing. */
static bool
degraded(struct br_engine *e)
{
    for (size_t i = 0; e != NULL && i < br_engine_upstream_count(e); i++)
        if (strcmp(br_engine_upstream_state(br_engine_upstream(e, i, NULL)), "ok") != 0)
            return true;
    return false;
}

void
br_handle_health(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                 char **params)
{
    struct br_store_health sh;

    (void)req;
    (void)params;
    res->content_type = "application/json";
    br_buf_reset(&res->body);
    if (br_store_ping(h->store) != 0) {
        res->status = 503;
        br_buf_puts(&res->body, "{\"status\":\"failing\",\"store\":{\"writable\":false,\"error\":\"the store does not answer\"}}");
        return;
    }
    br_store_health(h->store, &sh);
    res->status = sh.failing ? 503 : 200;
    br_buf_printf(&res->body, "{\"status\":\"%s\"", sh.failing ? "failing" : degraded(h->engine) ? "degraded" : "ok");
    if (sh.failing) {
        json_t *err = json_string(sh.error ? sh.error : "");
        char *text = json_dumps(err, JSON_ENCODE_ANY);
        br_buf_printf(&res->body, ",\"store\":{\"writable\":false,\"error\":%s,\"since\":%lld,\"failed_writes\":%llu}",
                      text ? text : "\"\"", (long long)sh.since, (unsigned long long)sh.failed);
        free(text);
        json_decref(err);
    } else {
        br_buf_puts(&res->body, ",\"store\":{\"writable\":true}");
    }
    if (h->engine) {
        br_buf_puts(&res->body, ",\"engine\":");
        br_engine_status(h->engine, &res->body);
    }
    br_buf_puts(&res->body, "}");
}
