/*
 * admin_embedded.c - the admin page's files as the binary holds them
 * (admin_files.h, written at build time from admin/), found by name and
 * answered with their type.
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
