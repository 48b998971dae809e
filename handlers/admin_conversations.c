/*
 * The admin page's conversations:
 *
 *   GET /admin/api/conversations?q=TEXT&limit=50&before=ID   the latest active first, searchable
 *   GET /admin/api/conversations/ID                          one, with its timeline (activity.h)
 *
 * Visitor text is in the JSON as the visitor wrote it (jansson encodes it);
 * the page puts it in the DOM as text.
 */
#include "admin.h"

#include "bridge/activity.h"
#include "bridge/config.h"
#include "bridge/store.h"
#include "bridge/tracker.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 200
#define MAX_QUERY 200
/* Timeline rows in one answer: the latest. */
#define TIMELINE_MAX 2000

/* The tracker's link of a listed conversation's task. */
static void
add_task_url(const struct br_config *cfg, json_t *conv)
{
    json_t *task = json_object_get(conv, "task");
    const char *id = json_string_value(json_object_get(task, "id"));
    char *url;

    if (!json_is_object(task))
        return;
    if (id == NULL || cfg->tracker == NULL || cfg->tracker->task_url == NULL) {
        json_object_set_new(task, "url", json_null());
        return;
    }
    url = cfg->tracker->task_url(cfg, id);
    json_object_set_new(task, "url", json_string(url));
    free(url);
}

/* A query parameter as a number in [min, max], def when absent; false when it is there but not one. */
static bool
query_int(const struct br_http_request *req, const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
    char *v = br_form_value(req->query, strlen(req->query), name), *end;
    long long n;
    bool ok;

    *out = def;
    if (v == NULL || *v == '\0') {
        free(v);
        return true;
    }
    n = strtoll(v, &end, 10);
    ok = *end == '\0' && n >= min && n <= max;
    free(v);
    if (ok)
        *out = n;
    return ok;
}

void
br_handle_admin_conversations(struct br_handler_ctx *h, const struct br_http_request *req,
                              struct br_http_response *res, char **params)
{
    struct br_admin_who who;
    int64_t limit, before;
    json_t *list, *conv;
    bool more;
    char *q;
    size_t i;
    int rc;

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_READ, &who))
        return;
    if (!query_int(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, &limit) ||
        !query_int(req, "before", 0, 1, INT64_MAX, &before)) {
        br_admin_json(res, 400, json_pack("{s:s}", "error", "limit must be 1 to 200, before a conversation id"));
        return;
    }
    q = br_form_value(req->query, strlen(req->query), "q");
    if (q != NULL && strlen(q) > MAX_QUERY) {
        free(q);
        br_admin_json(res, 400, json_pack("{s:s}", "error", "q is too long"));
        return;
    }
    rc = br_store_conversations(h->store, q, before, (size_t)limit, &list, &more);
    free(q);
    if (rc == BR_EINVAL) {
        br_admin_json(res, 400, json_pack("{s:s}", "error", "before names no conversation"));
        return;
    }
    if (rc) {
        br_admin_json(res, 503, json_pack("{s:s}", "error", "the store does not answer"));
        return;
    }
    json_array_foreach(list, i, conv)
        add_task_url(h->cfg, conv);
    conv = json_array_get(list, json_array_size(list) - 1);
    br_admin_json(res, 200, json_pack("{s:o, s:o}", "conversations", list, "next_before",
                                      more && conv != NULL ? json_incref(json_object_get(conv, "id")) : json_null()));
}

void
br_handle_admin_conversation(struct br_handler_ctx *h, const struct br_http_request *req,
                             struct br_http_response *res, char **params)
{
    struct br_admin_who who;
    int64_t id = br_admin_id(params[0]);
    json_t *conv = NULL, *timeline = NULL;
    bool truncated = false;
    int rc;

    if (!br_admin_enter(h, req, res, BR_ADMIN_READ, &who))
        return;
    rc = id > 0 ? br_store_conversation(h->store, id, &conv) : BR_ENOTFOUND;
    if (rc == BR_ENOTFOUND) {
        br_admin_json(res, 404, json_pack("{s:s}", "error", "no such conversation"));
        return;
    }
    if (rc == 0)
        rc = br_store_timeline(h->store, id, TIMELINE_MAX, &timeline, &truncated);
    if (rc) {
        json_decref(conv);
        br_admin_json(res, 503, json_pack("{s:s}", "error", "the store does not answer"));
        return;
    }
    add_task_url(h->cfg, conv);
    br_admin_json(res, 200, json_pack("{s:o, s:o, s:b}", "conversation", conv, "timeline", timeline, "truncated",
                                      truncated));
}
