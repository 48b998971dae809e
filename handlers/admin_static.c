/*
 * admin_static.c - the admin page's files, embedded in the binary at
 * build time (admin_files.h): GET /admin/ and /admin/login (the page),
 * GET /admin/<file> (its script and styles).  Nothing is read from disk.
 */
#include "admin.h"
#include "admin_files.h"

#include <string.h>

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *
type_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot != NULL && i < BR_ARRAY_SIZE(types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

bool
br_admin_file(struct br_http_response *res, const char *name, int status)
{
    for (const struct br_admin_file *f = br_admin_files; f->name != NULL; f++) {
        if (strcmp(f->name, name) != 0)
            continue;
        res->status = status;
        res->content_type = type_of(f->name);
        br_buf_reset(&res->body);
        br_buf_append(&res->body, f->data, f->len);
        return true;
    }
    return false;
}

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
