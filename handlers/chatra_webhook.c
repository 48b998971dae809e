/*
 * POST /webhooks/chatra/<channel>/<secret>: a Chatra webhook.  The event
 * is parsed into the bridge's own record (chatra_event.h), committed to the inbox (with the others of the same loop
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
    struct br_chatra_event ev;
    char err[200];
    struct br_log_ctx lc;
    char *record;
    int rc;

    if (ch == NULL) {
        /* The name is the sender's: the log escapes it. */
        br_handler_count(h, "chatra", "", BR_WEBHOOK_UNKNOWN_CHANNEL);
        br_respond_error(res, 404, "unknown channel");
        br_handler_refused(h, req, 404, "unknown channel", params[0]);
        return;
    }
    br_log_ctx_make(&lc, ch->name, 0, 0);
    br_log_ctx_set(&lc);
    if (!br_secret_equal(params[1], ch->webhook_secret)) {
        if (!br_handler_secret_failed(h, req)) {
            br_handler_count(h, "chatra", ch->name, BR_WEBHOOK_THROTTLED);
            br_respond_error(res, 429, "too many wrong secrets from this address; wait a minute");
            br_handler_refused(h, req, 429, "too many wrong secrets", ch->name);
        } else {
            br_handler_count(h, "chatra", ch->name, BR_WEBHOOK_BAD_SECRET);
            br_respond_error(res, 401, "wrong webhook secret");
            br_handler_refused(h, req, 401, "wrong webhook secret", ch->name);
        }
        return;
    }
    rc = br_chatra_event_parse(req->body, req->body_len, &ev, err, sizeof(err));
    if (rc == BR_ENOTFOUND) {
        br_info("chatra webhook (%s): %s; ignored", ch->name, err);
        br_handler_count(h, "chatra", ch->name, BR_WEBHOOK_IGNORED);
        br_respond_ok(res);
        return;
    }
    if (rc) {
        /* The detail is escaped by the refusals' log (at most a line a minute per address). */
        br_handler_refused(h, req, 400, "invalid chatra webhook", err);
        br_handler_count(h, "chatra", ch->name, BR_WEBHOOK_INVALID);
        br_respond_error(res, 400, err);
        return;
    }
    /*
     * Parsed once, here: the bridge's record of the event is what the inbox
     * keeps (with the others of this loop turn, in one commit) and what the
     * engine applies.  Acknowledged only after the commit (503 if it fails).
     */
    record = br_chatra_event_dump(&ev);
    br_chatra_event_dispose(&ev);
    br_store_inbox_queue(h->store, BR_INBOX_CHATRA, ch->name, record, strlen(record));
    free(record);
    br_handler_count(h, "chatra", ch->name, BR_WEBHOOK_ACCEPTED);
    res->after_flush = 1;
    br_respond_ok(res);
}
