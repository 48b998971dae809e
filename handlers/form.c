/*
 * form.c - fields of an application/x-www-form-urlencoded body or of a
 * query string, for the handlers that take them (the Planfix webhook's
 * task, the admin page's login and search).
 */
#include "handlers.h"

#include <stdlib.h>
#include <string.h>

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' (a space in forms); a malformed escape is kept as it is. */
static char *
url_decode(const char *s, size_t len)
{
    char *out = br_malloc(len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return out;
}

char *
br_form_value(const char *s, size_t len, const char *name)
{
    size_t nl = strlen(name);
    size_t i = 0;

    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != '&')
            end++;
        if (end - i >= nl + 1 && strncmp(s + i, name, nl) == 0 && s[i + nl] == '=')
            return url_decode(s + i + nl + 1, end - i - nl - 1);
        i = end + 1;
    }
    return NULL;
}
