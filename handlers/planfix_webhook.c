/*
 * POST /webhooks/planfix/<secret>: a Planfix automation says a comment was
 * added to a task.  Only the task number comes (JSON {"task":N}, form
 * field task=N, or ?task=N); the engine reads the comments itself.
 * Planfix retries a non-200 after 15 minutes and pauses its requests, so
 * this answers at once.
 */
#include "handlers.h"

#include "bridge/config.h"
#include "bridge/engine.h"
#include "bridge/log.h"
#include "bridge/store.h"

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TASK_DIGITS 19

/* Accepts "123", " 123 " and "#123" (as Planfix shows numbers); 0 is no task. */
static int
task_number(const char *in, char out[MAX_TASK_DIGITS + 1])
{
    size_t n = 0;
    const char *p = in;

    while (*p == ' ' || *p == '+' || *p == '#')
        p++;
    while (isdigit((unsigned char)*p)) {
        if (n == MAX_TASK_DIGITS)
            return -1;
        out[n++] = *p++;
    }
    while (*p == ' ' || *p == '+')
        p++;
    out[n] = '\0';
    if (n == 0 || *p != '\0' || strspn(out, "0") == n)
        return -1;
    return 0;
}

/*
 * A JSON object, whatever the content type says: Planfix's request action
 * sends its body field as typed, perhaps on lines of its own or as a form.
 */
static bool
looks_like_json(const struct br_http_request *req)
{
    size_t i;

    if (strstr(req->content_type, "json"))
        return true;
    i = strspn(req->body, " \t\r\n");
    return i < req->body_len && req->body[i] == '{';
}

void
br_handle_planfix_webhook(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                          char **params)
{
    char task[MAX_TASK_DIGITS + 1];
    char *raw = NULL;
    char *body;
    int rc;

    if (h->cfg->tracker_webhook_secret == NULL) {
        /* Redmine sends no webhooks: its replies are polled. */
        br_handler_count(h, "planfix", "", BR_WEBHOOK_DISABLED);
        br_respond_error(res, 404, "this bridge's tracker sends no webhooks");
        br_handler_refused(h, req, 404, "tracker webhook, but the tracker sends none", NULL);
        return;
    }

    if (!br_secret_equal(params[0], h->cfg->tracker_webhook_secret)) {
        if (!br_handler_secret_failed(h, req)) {
            br_handler_count(h, "planfix", "", BR_WEBHOOK_THROTTLED);
            br_respond_error(res, 429, "too many wrong secrets from this address; wait a minute");
            br_handler_refused(h, req, 429, "too many wrong secrets", "tracker webhook");
        } else {
            br_handler_count(h, "planfix", "", BR_WEBHOOK_BAD_SECRET);
            br_respond_error(res, 401, "wrong webhook secret");
            br_handler_refused(h, req, 401, "wrong webhook secret", "tracker webhook");
        }
        return;
    }
    if (req->body_len > 0 && looks_like_json(req)) {
        json_error_t je;
        json_t *o = json_loadb(req->body, req->body_len, 0, &je);
        json_t *v = json_object_get(o, "task");
        if (o == NULL) {
            json_decref(o);
            br_handler_refused(h, req, 400, "invalid tracker webhook", "malformed JSON");
            br_handler_count(h, "planfix", "", BR_WEBHOOK_INVALID);
            br_respond_error(res, 400, "malformed JSON");
            return;
        }
        if (json_is_integer(v))
            raw = br_asprintf("%lld", (long long)json_integer_value(v));
        else if (json_is_string(v))
            raw = br_strdup(json_string_value(v));
        json_decref(o);
    } else if (req->body_len > 0) {
        raw = br_form_value(req->body, req->body_len, "task");
    }
    if (raw == NULL)
        raw = br_form_value(req->query, strlen(req->query), "task");
    if (raw == NULL) {
        br_handler_refused(h, req, 400, "invalid tracker webhook", "no task number");
        br_handler_count(h, "planfix", "", BR_WEBHOOK_INVALID);
        br_respond_error(res, 400, "the task number is missing (JSON {\"task\":N}, form field task or ?task=N)");
        return;
    }
    rc = task_number(raw, task);
    free(raw);
    if (rc) {
        br_handler_refused(h, req, 400, "invalid tracker webhook", "the task number is not a positive integer");
        br_handler_count(h, "planfix", "", BR_WEBHOOK_INVALID);
        br_respond_error(res, 400, "the task number must be a positive integer");
        return;
    }
    body = br_asprintf("{\"task\":\"%s\"}", task);
    /* Acknowledged after this loop turn's commit, like Chatra's webhooks. */
    br_store_inbox_queue(h->store, BR_INBOX_TRACKER, "", body, strlen(body));
    free(body);
    br_handler_count(h, "planfix", "", BR_WEBHOOK_ACCEPTED);
    res->after_flush = 1;
    br_respond_ok(res);
}
