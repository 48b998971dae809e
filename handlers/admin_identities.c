/*
 * The admin page's identity map:
 *
 *   GET  /admin/api/identities?q=TEXT      the JSON of `chatra-bridge identities` (persons with
 *                                          their e-mails, conversations, devices and merges); q keeps
 *                                          the persons with an e-mail, contact, task or conversation
 *                                          that contains it
 *   POST /admin/api/merges/ID/unmerge      undoes a merge, as `chatra-bridge unmerge` does (CSRF)
 */
#include "admin.h"

#include "bridge/log.h"
#include "bridge/notify.h"
#include "bridge/store.h"

#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unistr.h>

#define MAX_QUERY 200

/* s in Unicode case folding (a new string); s itself copied when it is not UTF-8. */
static char *
folded(const char *s)
{
    size_t n = 0;
    uint8_t *f = u8_check((const uint8_t *)s, strlen(s)) == NULL
                     ? u8_casefold((const uint8_t *)s, strlen(s), NULL, NULL, NULL, &n)
                     : NULL;
    char *out = f != NULL ? br_strndup((const char *)f, n) : br_strdup(s);

    free(f);
    return out;
}

static bool
contains(const char *hay, const char *needle)
{
    char *f;
    bool found;

    if (hay == NULL)
        return false;
    f = folded(hay);
    found = strstr(f, needle) != NULL;
    free(f);
    return found;
}

/* Whether any string in person p (e-mails, contact, tasks, conversation numbers) contains needle. */
static bool
person_matches(json_t *p, const char *needle)
{
    size_t i;
    json_t *v;
    char num[32];

    json_array_foreach(json_object_get(p, "emails"), i, v)
        if (contains(json_string_value(json_object_get(v, "email")), needle))
            return true;
    if (contains(json_string_value(json_object_get(p, "contact")), needle))
        return true;
    json_array_foreach(json_object_get(p, "conversations"), i, v) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(json_object_get(v, "conversation")));
        if (strcmp(num, needle) == 0 || contains(json_string_value(json_object_get(v, "task")), needle))
            return true;
    }
    return false;
}

void
br_handle_admin_identities(struct br_handler_ctx *h, const struct br_http_request *req,
                           struct br_http_response *res, char **params)
{
    struct br_admin_who who;
    char *text = NULL, *q;
    json_error_t je;
    json_t *list;

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_READ, &who))
        return;
    q = br_form_value(req->query, strlen(req->query), "q");
    if (q != NULL && strlen(q) > MAX_QUERY) {
        free(q);
        br_admin_json(res, 400, json_pack("{s:s}", "error", "q is too long"));
        return;
    }
    if (br_store_identities(h->store, NULL, &text) != 0 || (list = json_loads(text, 0, &je)) == NULL) {
        free(text);
        free(q);
        br_admin_json(res, 503, json_pack("{s:s}", "error", "the store does not answer"));
        return;
    }
    free(text);
    if (q != NULL && *q != '\0') {
        char *needle = folded(q);
        for (size_t i = json_array_size(list); i-- > 0;)
            if (!person_matches(json_array_get(list, i), needle))
                json_array_remove(list, i);
        free(needle);
    }
    free(q);
    br_admin_json(res, 200, list);
}

void
br_handle_admin_unmerge(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                        char **params)
{
    struct br_admin_who who;
    int64_t id = br_admin_id(params[0]), survivor = 0, merged = 0, conv = 0;
    int rc;

    if (!br_admin_enter(h, req, res, BR_ADMIN_WRITE, &who))
        return;
    rc = id > 0 ? br_store_merge_sides(h->store, id, &survivor, &merged) : BR_ENOTFOUND;
    if (rc == 0)
        rc = BR_STORE_TX(h->store, br_store_unmerge(h->store, id, &conv));
    if (rc == BR_ENOTFOUND) {
        br_admin_json(res, 404, json_pack("{s:s}", "error", "no such merge"));
        return;
    }
    if (rc == BR_EEXIST) {
        br_admin_json(res, 409, json_pack("{s:s}", "error", "this merge was already undone"));
        return;
    }
    if (rc) {
        br_admin_json(res, 503, json_pack("{s:s}", "error", "cannot undo the merge now; try again"));
        return;
    }
    br_info("admin page: merge %lld undone: conversation %lld has its own devices and e-mails again", (long long)id,
            (long long)conv);
    br_notify_conversation(survivor);
    br_notify_conversation(conv);
    br_admin_json(res, 200, json_pack("{s:b, s:I}", "ok", 1, "conversation", (json_int_t)conv));
}
