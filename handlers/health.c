/* GET /healthz: 200 when the loop answers (it is answering this) and the store does. */
#include "handlers.h"

#include "bridge/engine.h"
#include "bridge/store.h"

void
br_handle_health(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                 char **params)
{
    (void)req;
    (void)params;
    if (br_store_ping(h->store) != 0) {
        br_respond_error(res, 503, "store does not answer");
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    br_buf_reset(&res->body);
    br_buf_puts(&res->body, "{\"status\":\"ok\"");
    if (h->engine) {
        br_buf_puts(&res->body, ",\"engine\":");
        br_engine_status(h->engine, &res->body);
    }
    br_buf_puts(&res->body, "}");
}
