/*
 * GET /healthz: 200 when the loop answers (it is answering this) and the
 * store takes writes; 503 when the store does not answer, or refuses
 * writes (a full disk: webhooks are refused then too), with what is wrong.
 */
#include "handlers.h"

#include "bridge/engine.h"
#include "bridge/store.h"

#include <jansson.h>
#include <stdlib.h>

void
br_handle_health(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                 char **params)
{
    struct br_store_health sh;

    (void)req;
    (void)params;
    if (br_store_ping(h->store) != 0) {
        br_respond_error(res, 503, "store does not answer");
        return;
    }
    br_store_health(h->store, &sh);
    res->status = sh.failing ? 503 : 200;
    res->content_type = "application/json";
    br_buf_reset(&res->body);
    br_buf_puts(&res->body, sh.failing ? "{\"status\":\"error\"" : "{\"status\":\"ok\"");
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
