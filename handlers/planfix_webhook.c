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
#include <stdlib.h>
#include <string.h>

#define MAX_TASK_DIGITS 19

/* Finds name=value in an application/x-www-form-urlencoded string or a query. */
static char *
form_value(const char *s, size_t len, const char *name)
{
    size_t nl = strlen(name);
    size_t i = 0;

    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != '&')
            end++;
        if (end - i > nl && strncmp(s + i, name, nl) == 0 && s[i + nl] == '=')
            return br_strndup(s + i + nl + 1, end - i - nl - 1);
        i = end + 1;
    }
    return NULL;
}

/* Accepts "123", " 123 ", "%20123" trimmed, and "#123" as Planfix shows numbers. */
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
    return (n == 0 || *p != '\0') ? -1 : 0;
}

void
br_handle_planfix_webhook(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                          char **params)
{
    char task[MAX_TASK_DIGITS + 1];
    char *raw = NULL;
    char *body;
    int rc;

    if (!br_secret_equal(params[0], h->cfg->tracker_webhook_secret)) {
        br_warn("tracker webhook: wrong secret from %s", req->remote_addr);
        br_respond_error(res, 401, "wrong webhook secret");
        return;
    }
    if (req->body_len > 0 && (strstr(req->content_type, "json") || req->body[0] == '{')) {
        json_error_t je;
        json_t *o = json_loadb(req->body, req->body_len, 0, &je);
        json_t *v = json_object_get(o, "task");
        if (o == NULL) {
            json_decref(o);
            br_respond_error(res, 400, "malformed JSON");
            return;
        }
        if (json_is_integer(v))
            raw = br_asprintf("%lld", (long long)json_integer_value(v));
        else if (json_is_string(v))
            raw = br_strdup(json_string_value(v));
        json_decref(o);
    } else if (req->body_len > 0) {
        raw = form_value(req->body, req->body_len, "task");
    }
    if (raw == NULL)
        raw = form_value(req->query, strlen(req->query), "task");
    if (raw == NULL) {
        br_respond_error(res, 400, "the task number is missing (JSON {\"task\":N}, form field task or ?task=N)");
        return;
    }
    rc = task_number(raw, task);
    free(raw);
    if (rc) {
        br_respond_error(res, 400, "the task number must be a positive integer");
        return;
    }
    body = br_asprintf("{\"task\":\"%s\"}", task);
    rc = br_store_inbox_add(h->store, BR_INBOX_TRACKER, "", body, strlen(body), NULL);
    free(body);
    if (rc) {
        br_respond_error(res, 503, "cannot store the event; try again");
        return;
    }
    if (h->engine)
        br_engine_kick(h->engine);
    br_respond_ok(res);
}
