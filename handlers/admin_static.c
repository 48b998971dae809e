/*
 * admin_static.c - the admin page's files (admin_embedded.c): GET /admin/
 * and /admin/login (the page), GET /admin/<file> (its script and styles).
 * Nothing is read from disk.
 */
#include "admin.h"

#include <string.h>

void
br_handle_admin_page(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                     char **params)
{
    struct br_admin_who who;

    (void)params;
    if (!br_admin_enter(h, req, res, BR_ADMIN_PAGE, &who))
        return;
    /* The cookie is bound to /admin/: the page must be loaded from under it. */
    if (strcmp(req->path, "/admin") == 0) {
        res->status = 308;
        res->content_type = "text/plain; charset=utf-8";
        br_http_response_header(res, "Location", "/admin/");
        br_buf_reset(&res->body);
        return;
    }
    if (!br_admin_file(res, "index.html", 200))
        br_admin_json(res, 404, json_pack("{s:s}", "error", "the admin page was not built in"));
}

void
br_handle_admin_static(struct br_handler_ctx *h, const struct br_http_request *req, struct br_http_response *res,
                       char **params)
{
    struct br_admin_who who;

    if (!br_admin_enter(h, req, res, BR_ADMIN_PAGE, &who))
        return;
    /* Only the embedded files' own names; index.html is the page itself. */
    if (!br_admin_file(res, params[0], 200))
        br_admin_json(res, 404, json_pack("{s:s}", "error", "no such file"));
}
