/*
 * html_entities.c - HTML5's named character references, as numeric ones.
 *
 * libxml2's HTML parser decodes HTML 4's 253 entities; an employee's comment
 * may hold any of HTML5's 2125 (&check;, &colon;, &NewLine;, &bigstar;),
 * which libxml2 would show as written.  Before the parse, each named
 * reference of the list (with its ';') becomes the numeric references of its
 * code points, which libxml2 decodes in text and attributes alike.  The scan
 * goes left to right, so "&amp;check;" stays the text "&check;".
 */
#include "html_entities.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 32 /* the longest name of the list is 31 characters */

static const struct entity {
    const char *name;
    uint32_t cp[2]; /* the second is 0 for the names of one code point */
} entities[] = {
#include "html_entities_table.inc"
};

static int
by_name(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct entity *)elem)->name);
}

/* The entity whose name (and ';') starts at s, at most n bytes; its length with the ';' in *len. */
static const struct entity *
lookup(const char *s, size_t n, size_t *len)
{
    char name[MAX_NAME + 1];
    size_t i = 0;

    while (i < n && i < MAX_NAME && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                                     (s[i] >= '0' && s[i] <= '9')))
        i++;
    if (i == 0 || i >= n || s[i] != ';')
        return NULL;
    memcpy(name, s, i);
    name[i] = '\0';
    *len = i + 1;
    return bsearch(name, entities, BR_ARRAY_SIZE(entities), sizeof(entities[0]), by_name);
}

int
br_html_entities_numeric(struct br_buf *out, const char *html, size_t n)
{
    size_t i = 0;

    while (i < n) {
        const char *amp = memchr(html + i, '&', n - i);
        const struct entity *e;
        size_t len = 0;
        size_t run = amp ? (size_t)(amp - html) - i : n - i;

        if (run > 0 && br_buf_append(out, html + i, run) != 0)
            return BR_ELIMIT;
        i += run;
        if (i >= n)
            break;
        e = lookup(html + i + 1, n - i - 1, &len);
        if (e == NULL) {
            if (br_buf_putc(out, '&') != 0)
                return BR_ELIMIT;
            i++;
            continue;
        }
        if (br_buf_printf(out, "&#x%X;", (unsigned)e->cp[0]) != 0 ||
            (e->cp[1] != 0 && br_buf_printf(out, "&#x%X;", (unsigned)e->cp[1]) != 0))
            return BR_ELIMIT;
        i += 1 + len;
    }
    return 0;
}
