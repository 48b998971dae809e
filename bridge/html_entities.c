/*
 * html_entities.c - HTML5's named character references, as numeric ones.
 *
 * libxml2's HTML parser decodes HTML 4's 253 entities; an employee's comment
 * may hold any of HTML5's 2125 (&check;, &colon;, &NewLine;, &bigstar;),
 * which libxml2 would show as written.  Before the parse, each named
 * reference of the list becomes the numeric references of its code points,
 * which libxml2 decodes in text and attributes alike: with its ';', or one of
 * the 106 legacy names without it ("&copy 2024", "&lt" at the end), as a
 * browser reads them, but only when what follows is neither a letter, a
 * digit nor '=' (a browser keeps the "&copy=2" of an address as written).
 * The scan goes left to right, so "&amp;check;" stays the text "&check;".
 */
#include "html_entities.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 32 /* the longest name of the list is 31 characters */

static const struct entity {
    const char *name;
    uint32_t cp[2]; /* the second is 0 for the names of one code point */
    bool legacy;    /* also read without the ';' */
} entities[] = {
#include "html_entities_table.inc"
};

static int
by_name(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const struct entity *)elem)->name);
}

static bool
is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The entity whose name starts at s, at most n bytes; its length (with the ';' when it has one) in *len. */
static const struct entity *
lookup(const char *s, size_t n, size_t *len)
{
    char name[MAX_NAME + 1];
    const struct entity *e;
    size_t i = 0;
    bool semicolon;

    while (i < n && i < MAX_NAME && is_name_char(s[i]))
        i++;
    semicolon = i < n && s[i] == ';';
    if (i == 0 || (!semicolon && i < n && (is_name_char(s[i]) || s[i] == '=')))
        return NULL;
    memcpy(name, s, i);
    name[i] = '\0';
    e = bsearch(name, entities, BR_ARRAY_SIZE(entities), sizeof(entities[0]), by_name);
    if (e == NULL || (!semicolon && !e->legacy))
        return NULL;
    *len = i + (semicolon ? 1 : 0);
    return e;
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
