/*
 * POST /webhooks/chatra/<channel>/<secret>: a Chatra webhook.  The event
 * is normalised, committed to the inbox (with the others of the same loop
 * turn, see br_handlers_flush), and only then acknowledged.
 */
#include "handlers.h"

#include "bridge/config.h"
#include "bridge/engine.h"
#include "bridge/log.h"
#include "bridge/store.h"
#include "bridge/chatra_event.h"

#include <stdlib.h>
#include <string.h>

void
br_handle_chatra_webhook(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                         char **params)
{
    const struct br_channel *ch = br_config_channel(h->cfg, params[0]);
    char err[200];
    json_t *ev = NULL;
    int rc;

    if (ch == NULL) {
        br_respond_error(res, 404, "unknown channel");
        return;
    }
    if (!br_secret_equal(params[1], ch->webhook_secret)) {
        br_warn("chatra webhook: wrong secret for channel %s from %s", ch->name, req->remote_addr);
        if (!br_handler_secret_failed(h, req))
            br_respond_error(res, 429, "too many wrong secrets from this address; wait a minute");
        else
            br_respond_error(res, 401, "wrong webhook secret");
        return;
    }
    rc = br_chatra_event_parse(req->body, req->body_len, &ev, err, sizeof(err));
    if (rc == BR_ENOTFOUND) {
        br_info("chatra webhook (%s): %s; ignored", ch->name, err);
        br_respond_ok(res);
        return;
    }
    if (rc) {
        char *safe = br_log_escape(err, 200);
        br_warn("chatra webhook (%s): rejected: %s", ch->name, safe);
        free(safe);
        br_respond_error(res, 400, err);
        return;
    }
    json_decref(ev);
    /*
     * The body as received (it was checked above; the engine normalises it
     * again when applying it), stored with the others of this loop turn in
     * one commit, and acknowledged only after it (503 if it fails).
     */
    br_store_inbox_queue(h->store, BR_INBOX_CHATRA_RAW, ch->name, req->body, req->body_len);
    res->after_flush = 1;
    br_respond_ok(res);
}
